/* params: request-parameter validation (numbers: num.c).
 * Owns nothing, allocates nothing, does no I/O: safe to fuzz. */
#include "params.h"

#include "recipe.h"
#include "workflow.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Finds key among args. Returns 0 if absent, 1 if once (value in *value),
 * -1 with a message if repeated. */
static int lookup_once(const struct query_arg *args, size_t n, const char *key, const char **value, char *err,
                       size_t errlen)
{
    int found = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(args[i].key, key) != 0)
            continue;
        if (found) {
            snprintf(err, errlen, "parameter '%s' is given more than once", key);
            return -1;
        }
        found = 1;
        *value = args[i].value;
    }
    return found;
}

static int check_known(const struct query_arg *args, size_t n, const char *const *known, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        int ok = 0;
        for (const char *const *k = known; *k; k++)
            ok |= !strcmp(args[i].key, *k);
        if (!ok) {
            snprintf(err, errlen, "unknown parameter '%.64s'", args[i].key);
            return -1;
        }
    }
    return 0;
}

static int parse_scale(const struct query_arg *args, size_t n, double default_scale, double *scale, char *err,
                       size_t errlen)
{
    const char *v = NULL;
    int found = lookup_once(args, n, "scale", &v, err, errlen);
    if (found < 0)
        return -1;
    if (!found) {
        *scale = default_scale;
        return 0;
    }
    double s;
    if (!v || parse_double(v, &s) != 0) {
        snprintf(err, errlen, "scale must be a number from 0 to %g, got '%.32s'", SCALE_MAX, v ? v : "");
        return -1;
    }
    if (s < 0 || s > SCALE_MAX) {
        snprintf(err, errlen, "scale must be from 0 to %g, got %.32s", SCALE_MAX, v);
        return -1;
    }
    *scale = s == 0 ? 0.0 : s; /* "-0" is 0: no -0.0 in answers and rows */
    return 0;
}

/* recipe (optional, once): a recipe's name (recipe_name_ok), borrowed from
 * args; "coffee" when absent. Whether it is known is the front's to say. */
static int parse_recipe(const struct query_arg *args, size_t n, const char **recipe, char *err, size_t errlen)
{
    const char *v = NULL;
    int found = lookup_once(args, n, "recipe", &v, err, errlen);
    if (found < 0)
        return -1;
    if (found && !recipe_name_ok(v)) {
        snprintf(err, errlen, "recipe must be a name of 1 to %d letters, digits, _ or -, got '%.40s'", RECIPE_NAME_MAX,
                 v ? v : "");
        return -1;
    }
    *recipe = found ? v : "coffee";
    return 0;
}

int params_make_coffee(const struct query_arg *args, size_t nargs, double default_scale, struct order_params *out,
                       char *err, size_t errlen)
{
    static const char *const known[] = {"mode", "scale", "recipe", NULL};
    if (check_known(args, nargs, known, err, errlen) != 0)
        return -1;
    const char *m = NULL;
    int found = lookup_once(args, nargs, "mode", &m, err, errlen);
    if (found < 0)
        return -1;
    if (!found || !m || !*m) {
        snprintf(err, errlen, "missing mode: use mode=%s", wf_mode_names());
        return -1;
    }
    int mode = wf_mode_lookup(m);
    if (mode < 0) {
        snprintf(err, errlen, "unknown mode '%.32s': use mode=%s", m, wf_mode_names());
        return -1;
    }
    out->mode = mode;
    if (parse_recipe(args, nargs, &out->recipe, err, errlen) != 0)
        return -1;
    return parse_scale(args, nargs, default_scale, &out->scale, err, errlen);
}

/* Parses "m1,m2,..." (at least min of them) into modes[]/nmodes. Returns 0
 * or -1 with err; what names the need for min. */
static int parse_mode_list(const char *list, int modes[WF_MAX_MODES], int *nmodes, int min, const char *what, char *err,
                           size_t errlen)
{
    *nmodes = 0;
    for (const char *p = list;; p++) {
        size_t len = strcspn(p, ",");
        char name[32];
        int mode = -1;
        if (len > 0 && len < sizeof name) {
            memcpy(name, p, len);
            name[len] = '\0';
            mode = wf_mode_lookup(name);
        }
        if (mode < 0) {
            snprintf(err, errlen, "modes: '%.*s' is not a mode: use a list of %s, e.g. modes=blocking,async",
                     (int)(len < 32 ? len : 32), p, wf_mode_names());
            return -1;
        }
        for (int i = 0; i < *nmodes; i++) {
            if (modes[i] == mode) {
                snprintf(err, errlen, "modes: '%s' is given more than once", name);
                return -1;
            }
        }
        /* Distinct known modes: never more than the table holds. */
        modes[(*nmodes)++] = mode;
        p += len;
        if (!*p)
            break;
    }
    if (*nmodes < min) {
        snprintf(err, errlen, "modes: %s, e.g. modes=blocking,async", what);
        return -1;
    }
    return 0;
}

int params_mode_set(const char *list, unsigned *mask, char *err, size_t errlen)
{
    int modes[WF_MAX_MODES], n;
    if (parse_mode_list(list, modes, &n, 1, "give one mode or more", err, errlen) != 0)
        return -1;
    *mask = 0;
    for (int i = 0; i < n; i++)
        *mask |= 1u << modes[i];
    return 0;
}

/* Parses /compare's list: two modes or more. */
static int parse_modes(const char *list, struct compare_params *out, char *err, size_t errlen)
{
    return parse_mode_list(list, out->modes, &out->nmodes, 2, "compare needs two modes or more", err, errlen);
}

int params_compare(const struct query_arg *args, size_t nargs, double default_scale, struct compare_params *out,
                   char *err, size_t errlen)
{
    static const char *const known[] = {"modes", "scale", "recipe", NULL};
    if (check_known(args, nargs, known, err, errlen) != 0)
        return -1;
    const char *list = NULL;
    int found = lookup_once(args, nargs, "modes", &list, err, errlen);
    if (found < 0)
        return -1;
    if (parse_modes(found ? (list ? list : "") : PARAMS_COMPARE_DEFAULT, out, err, errlen) != 0)
        return -1;
    if (parse_recipe(args, nargs, &out->recipe, err, errlen) != 0)
        return -1;
    return parse_scale(args, nargs, default_scale, &out->scale, err, errlen);
}

int params_workflow(const struct query_arg *args, size_t nargs, double *scale, const char **recipe, char *err,
                    size_t errlen)
{
    static const char *const known[] = {"scale", "recipe", NULL};
    if (check_known(args, nargs, known, err, errlen) != 0)
        return -1;
    if (parse_recipe(args, nargs, recipe, err, errlen) != 0)
        return -1;
    return parse_scale(args, nargs, 1.0, scale, err, errlen);
}

int params_rush(const struct query_arg *args, size_t nargs, double default_scale, struct rush_params *out, char *err,
                size_t errlen)
{
    static const char *const known[] = {"modes", "customers", "scale", "recipe", NULL};
    if (check_known(args, nargs, known, err, errlen) != 0)
        return -1;
    const char *list = NULL, *n = NULL;
    int found = lookup_once(args, nargs, "modes", &list, err, errlen);
    if (found < 0)
        return -1;
    if (!found || !list || !*list) {
        snprintf(err, errlen, "missing modes: use modes=blocking,async (any of %s)", wf_mode_names());
        return -1;
    }
    if (parse_mode_list(list, out->modes, &out->nmodes, 1, "a rush needs one mode or more", err, errlen) != 0)
        return -1;
    found = lookup_once(args, nargs, "customers", &n, err, errlen);
    if (found < 0)
        return -1;
    int64_t customers;
    if (!found || !n || parse_int64(n, 1, RUSH_MAX_CUSTOMERS, &customers) != 0) {
        snprintf(err, errlen, "customers must be a whole number from 1 to %d, got '%.32s'", RUSH_MAX_CUSTOMERS,
                 found && n ? n : "");
        return -1;
    }
    out->customers = (int)customers;
    if (parse_recipe(args, nargs, &out->recipe, err, errlen) != 0)
        return -1;
    return parse_scale(args, nargs, default_scale, &out->scale, err, errlen);
}

int params_stats(const struct query_arg *args, size_t nargs, const char **since, char *err, size_t errlen)
{
    static const char *const known[] = {"since", NULL};
    if (check_known(args, nargs, known, err, errlen) != 0)
        return -1;
    const char *v = NULL;
    int found = lookup_once(args, nargs, "since", &v, err, errlen);
    if (found < 0)
        return -1;
    *since = NULL;
    if (!found)
        return 0;
    size_t len = v ? strlen(v) : 0;
    if (len == 0 || len > 40 || strspn(v, "0123456789-:.+ TZtz") != len) {
        snprintf(err, errlen, "since must be a timestamp like 2026-11-25T15:00:00Z, got '%.40s'", v ? v : "");
        return -1;
    }
    *since = v;
    return 0;
}

int params_order_id(const char *s, int64_t *id, char *err, size_t errlen)
{
    /* Digits only: no sign, no spaces, 1..INT64_MAX. */
    int digits = s && *s;
    for (const char *p = s; digits && *p; p++)
        digits = isdigit((unsigned char)*p) != 0;
    if (!digits || parse_int64(s, 1, INT64_MAX, id) != 0) {
        snprintf(err, errlen, "order id must be a whole number from 1 to %lld, got '%.32s'", (long long)INT64_MAX,
                 s ? s : "");
        return -1;
    }
    return 0;
}

int params_method(const char *url, const char *method, const char **allow, char *err, size_t errlen)
{
    int orders = !strcmp(url, "/make-coffee") || !strcmp(url, "/compare") || !strcmp(url, "/rush");
    if (!strcmp(method, "GET") || (!strcmp(method, "HEAD") && !orders))
        return 0;
    *allow = orders ? "GET" : "GET, HEAD";
    if (!strcmp(method, "HEAD"))
        snprintf(err, errlen, "HEAD would place orders: use GET");
    else
        snprintf(err, errlen, "method %.20s not allowed: use GET", method);
    return -1;
}
