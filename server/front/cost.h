/* cost: what serving a mode's orders cost, told from its executor's stats
 * (executor.h): the threads it ran them on (the most at once), their
 * context switches and CPU time, and the database connections it held.
 * /rush's summary says it of each mode's orders (a difference between the
 * rush's start and its end, peaks sampled meanwhile); /metrics says it of
 * each executor since the server started.
 *
 * Attribution is by executor: modes that share one (async, naive, mixed
 * and offload share the event loop) share its figures, and the loop
 * thread's also count the HTTP front's work for every mode. Loop thread. */
#ifndef COFFEE_COST_H
#define COFFEE_COST_H

#include "executor.h"

#include <jansson.h>

struct text_buf;

struct mode_cost {
    struct executor_stats before; /* at the start */
    int threads_peak;             /* sampled */
    int db_connections_peak;      /* sampled */
};

/* Starts counting x's cost now. */
void cost_begin(struct mode_cost *c, const struct executor *x);
/* Samples x's gauges into the peaks. */
void cost_sample(struct mode_cost *c, const struct executor *x);
/* Sets threads_peak, context_switches, cpu_ms, db_connections_used and
 * cost_scope (the executor's name) on j, for x since cost_begin.
 * 0 or -1 (no memory). */
int cost_json(const struct mode_cost *c, const struct executor *x, json_t *j);
/* Appends the per-executor families (coffee_executor_threads,
 * ..._threads_peak, ..._context_switches_total, ..._cpu_seconds_total,
 * ..._db_connections, ..._db_connections_peak) for n executors. */
void cost_render(struct text_buf *b, const struct executor_stats *stats, const char *const *names, int n);

#endif
