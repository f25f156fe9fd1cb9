/* tally: what the client learns from the server's answers. Parses an
 * order's JSON timeline into a compact view, and sums up one mode's run:
 * ok/total, client latencies, errors by kind, mean time per step, mean
 * queued and elapsed times as the server reported them. No I/O. */
#ifndef COFFEE_CLIENT_TALLY_H
#define COFFEE_CLIENT_TALLY_H

#include "fetch.h"

#include <jansson.h>
#include <stddef.h>

#define TALLY_MAX_STEPS 8
#define TALLY_NAME_MAX 32
#define TALLY_MAX_KINDS 12

/* Step names in the order first seen, shared by every mode of a run so that
 * rows line up. */
struct step_names {
    int n;
    char name[TALLY_MAX_STEPS][TALLY_NAME_MAX];
    char io[TALLY_MAX_STEPS][8];
};

/* One step of one order, in ms since the order arrived at the server. */
struct step_view {
    int name;           /* index into step_names */
    int started, ended; /* start_ms / end_ms were not null */
    int done;           /* state "done" */
    double start_ms;    /* became ready */
    double queued_ms;   /* of which waiting for a turn (db connection) */
    double end_ms;
    const char *state;  /* borrowed from the document; NULL in stored copies */
    const char *result; /* borrowed from the document, or NULL */
};

/* One order's timeline as the server reported it. */
struct order_view {
    long long id;
    int done; /* status "done" */
    double elapsed_ms, queued_ms, critical_ms, sequential_ms;
    double latency_ms; /* client-measured, filled in by the caller */
    int nsteps;
    struct step_view step[TALLY_MAX_STEPS];
};

/* Fills v from the order document j (borrowed; v's strings point into it)
 * and adds unknown step names to names. Returns 0, or -1 with err when a
 * field the client needs is missing or has the wrong type. */
int order_view_parse(const json_t *j, struct step_names *names, struct order_view *v, char *err, size_t errlen);
/* Returns a new JSON object for v, or NULL when out of memory. */
json_t *order_view_json(const struct order_view *v, const struct step_names *names);

/* Errors of one kind: "HTTP 503", "connection refused", "bad answer". */
struct err_kind {
    char kind[40];
    size_t count;
    char example[160]; /* the first message seen */
};

/* One mode's run. The caller owns it; tally_free releases what tally_init
 * allocated. */
struct tally {
    const char *mode; /* borrowed, static */
    size_t total, ok;
    double wall_ms;           /* first request start to last answer */
    double *lat;              /* latencies of ok orders, ms; sorted by tally_finish */
    struct order_view *views; /* ok orders, in completion order */
    size_t cap;
    struct err_kind kinds[TALLY_MAX_KINDS];
    int nkinds;
    double step_sum[TALLY_MAX_STEPS]; /* end - start of each step name */
    size_t step_n[TALLY_MAX_STEPS];
    double queued_sum, elapsed_sum;
    /* The client's wait minus the server's elapsed, over ok orders: time
     * before the server's clock started (a frozen loop) and the network. */
    double gap_sum, gap_max;
    size_t gap_big;           /* orders whose gap is large (tally_gap_is_big) */
    struct step_names *names; /* borrowed, shared with other modes */
};

/* Whether a client wait of latency_ms for an order the server says took
 * elapsed_ms is a large difference: over 50 ms and over 5% of the wait
 * ("waited for the loop before the server saw it"). The page uses the same
 * rule. */
int tally_gap_is_big(double latency_ms, double elapsed_ms);

/* Prepares t for up to n orders of mode. Returns 0 or -1 (out of memory). */
int tally_init(struct tally *t, const char *mode, size_t n, struct step_names *names);
/* Releases t's memory; accepts a zeroed tally. */
void tally_free(struct tally *t);
/* Takes in one answer to GET /make-coffee?mode=t->mode. Returns 0 or -1
 * (more answers than tally_init was told). */
int tally_add(struct tally *t, const struct fetch_result *r);
/* Counts one error of kind, keeping example when it is the first. */
void tally_error(struct tally *t, const char *kind, const char *example);
/* Sorts the latencies; call once after the last tally_add. */
void tally_finish(struct tally *t, double wall_ms);

/* The p-th percentile (nearest rank, 0 < p <= 100) of the ok latencies,
 * or -1 when there are none. */
double tally_percentile(const struct tally *t, double p);
/* The ok order whose latency is the median, or NULL when none. Borrowed. */
const struct order_view *tally_median_order(const struct tally *t);
/* Mean of a step's end - start over ok orders, or -1 when it never ran. */
double tally_step_mean(const struct tally *t, int name);

/* Returns a new JSON object with t's results, or NULL (out of memory). */
json_t *tally_json(const struct tally *t);

/* Reads {"error": "..."} from a body, into buf; "" when there is none. */
const char *tally_error_message(const char *body, char *buf, size_t len);

#endif
