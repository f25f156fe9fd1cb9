/* params: strict parsing and validation of numbers and request parameters.
 * Pure functions with no I/O: unit-tested and fuzzed. */
#ifndef COFFEE_PARAMS_H
#define COFFEE_PARAMS_H

#include "num.h" /* parse_double, parse_int64 */
#include "workflow.h"
#include "workflow_json.h" /* WF_SCALE_MAX, WF_COMPARE_DEFAULT */

#include <stddef.h>
#include <stdint.h>

/* A query string's key/value pairs as seen by the HTTP front; values are
 * already percent-decoded; a key without '=' has value NULL. */
struct query_arg {
    const char *key;
    const char *value;
};

/* One parsed /make-coffee request. */
struct order_params {
    int mode;           /* index into the mode table (workflow.h) */
    double scale;       /* 0..10 */
    const char *recipe; /* its name (borrowed from args): "coffee" when not given */
};

/* Validates /make-coffee's arguments: mode (required, once, a known mode),
 * scale (optional, once, 0..10; default_scale when absent), recipe
 * (optional, once, a name as recipe_name_ok says; "coffee" when absent:
 * whether such a recipe exists is the front's to say). Unknown keys
 * are rejected so typos do not pass silently. Returns 0, or -1 with a
 * message for a 400 in err. */
int params_make_coffee(const struct query_arg *args, size_t nargs, double default_scale, struct order_params *out,
                       char *err, size_t errlen);
/* One parsed /compare request. */
struct compare_params {
    int modes[WF_MAX_MODES]; /* indexes into the mode table, distinct, in the asked order */
    int nmodes;              /* 2..wf_nmodes */
    double scale;
    const char *recipe; /* as for /make-coffee */
};

/* The modes plain /compare runs, in its order (also served at /workflow). */
#define PARAMS_COMPARE_DEFAULT WF_COMPARE_DEFAULT

/* Validates /compare's arguments: modes (optional, once, a comma-separated
 * list of 2 or more distinct known modes; default PARAMS_COMPARE_DEFAULT),
 * scale and recipe (as for /make-coffee). Same contract as params_make_coffee. */
int params_compare(const struct query_arg *args, size_t nargs, double default_scale, struct compare_params *out,
                   char *err, size_t errlen);
/* One parsed /rush request. */
#define RUSH_MAX_CUSTOMERS 1000
struct rush_params {
    int modes[WF_MAX_MODES]; /* distinct, in the asked order */
    int nmodes;              /* 1..wf_nmodes */
    int customers;           /* orders per mode, 1..RUSH_MAX_CUSTOMERS */
    double scale;
    const char *recipe; /* as for /make-coffee */
};
/* Validates /rush's arguments: modes (required, once, one or more distinct
 * known modes), customers (required, once, 1..RUSH_MAX_CUSTOMERS), scale
 * and recipe (as for /make-coffee). Same contract as params_make_coffee. */
int params_rush(const struct query_arg *args, size_t nargs, double default_scale, struct rush_params *out, char *err,
                size_t errlen);
/* Validates /stats' arguments: since (optional, once) is a timestamp as
 * PostgreSQL reads timestamptz, e.g. 2026-11-25T15:00:00Z; only its
 * characters and length are checked here. *since is NULL when absent
 * (borrowed from args otherwise). Returns 0, or -1 with err. */
int params_stats(const struct query_arg *args, size_t nargs, const char **since, char *err, size_t errlen);
/* Parses a comma-separated list of distinct known modes (one or more)
 * into a bit mask of wf_modes indexes. Returns 0, or -1 with err. */
int params_mode_set(const char *list, unsigned *mask, char *err, size_t errlen);
/* Validates /workflow's arguments: scale (optional, once, 0..10; 1 when
 * absent: the facts at scale 1) and recipe (as for /make-coffee). Returns
 * 0, or -1 with err. */
int params_workflow(const struct query_arg *args, size_t nargs, double *scale, const char **recipe, char *err,
                    size_t errlen);
/* Whether method may be asked of url: GET always; HEAD (headers only)
 * except on the routes that place orders (/make-coffee, /compare, /rush:
 * a HEAD would place them, and /rush's chunked end would follow the
 * headers). 0, or -1 with the message and *allow, the Allow header's
 * value (static storage). */
int params_method(const char *url, const char *method, const char **allow, char *err, size_t errlen);
/* Parses the {id} of /orders/{id}: 1..INT64_MAX. Returns 0 or -1 with err. */
int params_order_id(const char *s, int64_t *id, char *err, size_t errlen);

#define SCALE_MAX WF_SCALE_MAX

#endif
