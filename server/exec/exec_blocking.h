/* exec_blocking: runs orders the blocking way, on a fixed pool of worker
 * threads. Each worker owns one reused curl easy handle and one PGconn and
 * performs the steps one after another with curl_easy_perform and
 * PQexecPrepared. Orders beyond the pool wait in a FIFO; the wait shows as
 * the order's queued_ms. */
#ifndef COFFEE_EXEC_BLOCKING_H
#define COFFEE_EXEC_BLOCKING_H

#include <stddef.h>

struct evloop;
struct db_config;
struct order;
struct exec_blocking;

struct watchdog;

struct exec_blocking_options {
    const char *kitchen_url;
    long step_slack_ms;     /* a step fails this long after its planned duration */
    long db_timeout_ms;     /* bound on the row's INSERT and UPDATE */
    long connect_timeout_ms; /* bound on a connect and its setup */
    double row_budget_ms;   /* the row's deadline, beyond the steps' planned time */
    int workers;
    struct watchdog *wd;    /* bounds every blocking database call */
};

/* Starts the workers. Returns new, or NULL with err. Borrowed arguments
 * must outlive it. */
struct exec_blocking *exec_blocking_new(struct evloop *loop, const struct db_config *db,
                                        const struct exec_blocking_options *opt, char *err, size_t errlen);
/* Stops the workers once the queue is empty and joins them; accepts NULL. */
void exec_blocking_free(struct exec_blocking *ex);
/* Queues o for a worker. o->on_done runs later on the loop thread.
 * Thread-safe. */
void exec_blocking_submit(struct exec_blocking *ex, struct order *o);

/* Stops waiting: orders still queued end now, failed with OERR_SHUTDOWN;
 * running ones stop at their next step (a kitchen transfer is aborted at
 * once; a query runs to its end, within its bound) and record themselves
 * as failed. Their on_done runs on the loop thread as usual. Thread-safe. */
void exec_blocking_cancel_all(struct exec_blocking *ex);
/* Stops at once: exec_blocking_cancel_all, and every blocking call in
 * flight or yet to come is cut short (the watchdog fires them all), rows
 * are not written any more (the sweep fails them later). For a shutdown
 * that must end now. Thread-safe. */
void exec_blocking_abort_all(struct exec_blocking *ex);

/* Its workers, busy and queued; each busy worker holds its own database
 * connection (db_connections). */
struct executor_stats;
void exec_blocking_stats(struct exec_blocking *ex, struct executor_stats *out);

/* Its row budget (executor.h): every step's slack, a reconnect (connect,
 * then setup) before the brew and two before the finish's UPDATEs, two
 * UPDATEs, and a second of margin. */
struct executor_limits;
double exec_blocking_row_budget_ms(const struct executor_limits *lim);

#endif
