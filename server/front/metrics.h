/* metrics: the server's counters and histograms, and their Prometheus text
 * exposition (format 0.0.4) for GET /metrics.
 *
 * Updated and read on the loop thread only: orders of both executors end
 * there, and gauges owned by other modules (pool, workers) are sampled by
 * the caller at scrape time. Also owns the loop-lag probe: a repeating
 * timer whose lateness is how long the loop was kept from its work. */
#ifndef COFFEE_METRICS_H
#define COFFEE_METRICS_H

#include "executor.h"
#include <stdint.h>

struct evloop;
struct front;
struct order;
struct metrics;

/* Why an order was refused before it started. */
enum metrics_reject {
    REJECT_OVERLOAD, /* over --max-inflight */
    REJECT_DRAINING, /* shutting down */
    REJECT_NREASONS
};

/* What the caller samples from other modules at scrape time. */
struct metrics_gauges {
    int pool_size, pool_connected, pool_busy, pool_waiting;
    int workers, workers_busy, workers_queued;
    int threads;                            /* of the process, or -1 */
    struct executor_stats exec[EXEC_KINDS]; /* each executor's, cost included (cost.h) */
};

/* Returns new, or NULL when out of memory. */
struct metrics *metrics_new(void);
/* Stops the lag probe and frees m; accepts NULL. */
void metrics_free(struct metrics *m);
/* Starts the loop-lag probe on loop. Returns 0, or -1 (out of memory). */
int metrics_watch_loop(struct metrics *m, struct evloop *loop);

/* Where the probe samples the gauges for the flight recorder's counters
 * (orders in flight, pool and workers busy, loop lag), every probe period
 * while it records. fn(f, out) fills out; f is borrowed. */
void metrics_gauge_source(struct metrics *m, void (*fn)(struct front *, struct metrics_gauges *), struct front *f);

void metrics_order_started(struct metrics *m, int mode);
/* Counts o (borrowed) as ended: status, error, durations, queued time. */
void metrics_order_ended(struct metrics *m, const struct order *o);
void metrics_order_rejected(struct metrics *m, enum metrics_reject why);

/* Returns new text (free() it) with every metric, or NULL when out of
 * memory. */
char *metrics_render(const struct metrics *m, const struct metrics_gauges *g);

#endif
