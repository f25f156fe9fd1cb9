/* probes: what the HTTP front asks for itself, as opposed to orders: a
 * stored order, the statistics, and whether the database and the kitchen
 * answer. Each runs on the loop with its own bounds (so none waits behind a
 * pool full of brews for long), and ends through one callback, on a later
 * pass, with an outcome that says nothing of HTTP: the front maps it. */
#ifndef COFFEE_PROBES_H
#define COFFEE_PROBES_H

#include "curl_loop.h"
#include "db.h"
#include "kitchen_client.h"
#include "pgpool.h"

/* Bounds: the look-ups wait at most PROBE_QUERY_MS for a connection and as
 * long for their query; readiness half as long for each, so that /readyz
 * answers within about 2 s whatever the database does. */
#define PROBE_QUERY_MS 2000
#define PROBE_READY_MS 1000

enum probe_outcome {
    PROBE_FOUND,      /* text holds the answer (JSON) */
    PROBE_NOT_FOUND,  /* no such order */
    PROBE_BAD_INPUT,  /* the database refused the input (since); msg says why */
    PROBE_UNAVAILABLE /* the database failed or did not answer in time; msg */
};

struct probe;
typedef void (*probe_cb)(struct probe *p);

/* One probe: the caller owns it (usually embedded in its request) and
 * keeps it alive until its callback ran. */
struct probe {
    probe_cb cb;
    /* out, once cb runs */
    enum probe_outcome outcome;
    char *text;         /* PROBE_FOUND: owned (probe_release frees it) */
    char msg[300];      /* the look-ups' failure */
    int ready;          /* readiness: both answered */
    char db_state[200]; /* readiness: "ok" or what went wrong */
    char kitchen_state[200];
    /* private */
    int pending;
    int stats; /* a /stats look-up: a failed statement means a bad since */
    struct pgq q;
    struct db_stmt stmt;
    struct hreq http;
    struct kc_response resp;
    const char *kitchen_url;
    struct pgpool *pool;
    struct curl_loop *curl;
};

/* The order with id, as JSON text. */
void probe_order(struct probe *p, struct pgpool *pool, int64_t id);
/* Per-mode statistics since (NULL = all; borrowed until cb), JSON text. */
void probe_stats(struct probe *p, struct pgpool *pool, const char *since);
/* SELECT 1 on the pool and GET {kitchen_url}/livez (borrowed until cb). */
void probe_ready(struct probe *p, struct pgpool *pool, struct curl_loop *curl, const char *kitchen_url);
/* Frees what p owns (text, statement); p may be reused. */
void probe_release(struct probe *p);

#endif
