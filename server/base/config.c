/* config: flags and environment variables from one table (see config.h).
 * Owns nothing: string values are borrowed from argv and environ. */
#include "config.h"

#include "num.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int parse_bool(const char *s, int *out)
{
    if (!strcmp(s, "1") || !strcasecmp(s, "true") || !strcasecmp(s, "yes") || !strcasecmp(s, "on"))
        *out = 1;
    else if (!strcmp(s, "0") || !strcasecmp(s, "false") || !strcasecmp(s, "no") || !strcasecmp(s, "off"))
        *out = 0;
    else
        return -1;
    return 0;
}

/* Stores value into o's destination. origin names where it came from. */
static int assign(const struct opt *o, const char *value, const char *origin, char *err, size_t errlen)
{
    switch (o->type) {
    case OPT_INT: {
        int64_t v;
        if (parse_int64(value, (int64_t)o->min, (int64_t)o->max, &v) != 0) {
            snprintf(err, errlen, "%s: '%s' is not a whole number from %.0f to %.0f", origin, value, o->min, o->max);
            return -1;
        }
        *(int *)o->dst = (int)v;
        return 0;
    }
    case OPT_DOUBLE: {
        double v;
        if (parse_double(value, &v) != 0 || v < o->min || v > o->max) {
            snprintf(err, errlen, "%s: '%s' is not a number from %g to %g", origin, value, o->min, o->max);
            return -1;
        }
        *(double *)o->dst = v;
        return 0;
    }
    case OPT_STRING:
        if (!*value) {
            snprintf(err, errlen, "%s: empty value", origin);
            return -1;
        }
        *(const char **)o->dst = value;
        return 0;
    case OPT_FLAG:
        if (parse_bool(value, (int *)o->dst) != 0) {
            snprintf(err, errlen, "%s: '%s' is not one of 1, 0, true, false", origin, value);
            return -1;
        }
        return 0;
    }
    return -1;
}

static const struct opt *find(const struct opt *opts, size_t n, const char *name, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(opts[i].name) == len && !strncmp(opts[i].name, name, len))
            return &opts[i];
    return NULL;
}

int config_parse(const struct opt *opts, size_t nopts, int argc, char **argv, const char *usage_head, char *err,
                 size_t errlen)
{
    char origin[96];
    /* --help first, so that it shows the defaults, not the environment. */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            config_usage(stdout, usage_head, opts, nopts);
            return CONFIG_HELP;
        }
    }
    for (size_t i = 0; i < nopts; i++) {
        const char *v = opts[i].env ? getenv(opts[i].env) : NULL;
        if (v && *v) {
            snprintf(origin, sizeof origin, "environment variable %s", opts[i].env);
            if (assign(&opts[i], v, origin, err, errlen) != 0)
                return CONFIG_ERROR;
        }
    }
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strncmp(arg, "--", 2) != 0 || !arg[2]) {
            snprintf(err, errlen, "unexpected argument '%s' (see --help)", arg);
            return CONFIG_ERROR;
        }
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const struct opt *o = find(opts, nopts, name, len);
        if (!o) {
            snprintf(err, errlen, "unknown option '%.*s' (see --help)", (int)(len + 2), arg);
            return CONFIG_ERROR;
        }
        const char *value;
        if (eq)
            value = eq + 1;
        else if (o->type == OPT_FLAG)
            value = "1";
        else if (i + 1 < argc)
            value = argv[++i];
        else {
            snprintf(err, errlen, "option --%s needs a value", o->name);
            return CONFIG_ERROR;
        }
        snprintf(origin, sizeof origin, "--%s", o->name);
        if (assign(o, value, origin, err, errlen) != 0)
            return CONFIG_ERROR;
    }
    return CONFIG_OK;
}

static void format_value(const struct opt *o, char *buf, size_t len)
{
    switch (o->type) {
    case OPT_INT:
        snprintf(buf, len, "%d", *(int *)o->dst);
        break;
    case OPT_DOUBLE:
        snprintf(buf, len, "%g", *(double *)o->dst);
        break;
    case OPT_STRING: {
        const char *s = *(const char **)o->dst;
        snprintf(buf, len, "%s", s ? s : "(unset)");
        break;
    }
    case OPT_FLAG:
        snprintf(buf, len, "%s", *(int *)o->dst ? "on" : "off");
        break;
    }
}

void config_usage(FILE *out, const char *usage_head, const struct opt *opts, size_t nopts)
{
    fprintf(out, "%s\nOptions (each also read from the environment variable shown; a flag wins):\n", usage_head);
    for (size_t i = 0; i < nopts; i++) {
        char def[128], flag[64];
        format_value(&opts[i], def, sizeof def);
        snprintf(flag, sizeof flag, "--%s%s", opts[i].name, opts[i].type == OPT_FLAG ? "" : " V");
        fprintf(out, "  %-24s %s\n  %-24s [%s%sdefault: %s]\n", flag, opts[i].help, "", opts[i].env ? opts[i].env : "",
                opts[i].env ? ", " : "", def);
    }
    fprintf(out, "  %-24s %s\n", "--help", "show this help and exit");
}
