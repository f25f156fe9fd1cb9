/* exec_blocking: runs orders the blocking way, on a fixed pool of worker
 * threads. Each worker performs the steps one after another through its
 * blocking services (a kitchen call, the order's statements); orders
 * beyond the pool wait in a FIFO, and the wait shows as the order's
 * queued_ms. The FIFO has no deadline of its own: --max-inflight bounds
 * its length, and a drain's cancel ends every order still in it.
 *
 * Its seam: the services are handed to it at creation (struct
 * blocking_io), one context per worker. worker_io.h gives the real ones (a
 * reused curl easy handle and a PGconn per worker);
 * tests/unit/test_exec_blocking.c hands it fakes. */
#ifndef COFFEE_EXEC_BLOCKING_H
#define COFFEE_EXEC_BLOCKING_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct evloop;
struct order;
struct exec_blocking;
struct executor_stats;
struct executor_limits;
struct kitchen_args;

/* What a worker does, blocking, on its own thread, with its own context
 * (w). Each call returns 0 or the order_error it failed with, a message
 * in msg; every call is bounded (its timeout_ms, the connect's bound). */
struct blocking_io {
    /* A new context for worker index, or NULL with err. cancelling (1
     * cancel, 2 abort) is the executor's and outlives the context: a call
     * in flight that can be cut short (a kitchen transfer) ends with
     * OERR_SHUTDOWN once it is set. */
    void *(*worker_new)(void *ctx, int index, const atomic_int *cancelling, char *err, size_t errlen);
    void (*worker_free)(void *w); /* accepts NULL */
    /* Connects ahead, so that the first order does not pay for it; NULL: none. 0 or -1. */
    int (*connect)(void *w, char *msg, size_t len);
    /* The step's appliance; result on success. */
    int (*kitchen)(void *w, const struct kitchen_args *a, char *result, size_t rlen, char *msg, size_t mlen);
    /* INSERTs o's row, its deadline budget_ms from now; *id is its id (0: none came back). */
    int (*insert)(void *w, const struct order *o, double budget_ms, long timeout_ms, int64_t *id, char *msg,
                  size_t mlen);
    /* Brews step of o; result is the coffee. */
    int (*brew)(void *w, const struct order *o, int step, long timeout_ms, char *result, size_t rlen, char *msg,
                size_t mlen);
    /* Writes o's outcome to its row, once; *lost: failed because its
     * connection was lost (finish_retry.h decides whether it goes again). */
    int (*finish)(void *w, struct order *o, long timeout_ms, int *lost, char *msg, size_t mlen);
    /* Cuts every call in flight or yet to come short (the abort). Any thread. */
    void (*abort)(void *ctx);
    void *ctx;
};

struct exec_blocking_options {
    long step_slack_ms;   /* a step fails this long after its planned duration */
    long db_timeout_ms;   /* bound on the row's INSERT and UPDATE */
    double row_budget_ms; /* the row's deadline, beyond the steps' planned time and slack */
    int workers;
};

/* Starts the workers. Returns new, or NULL with err. io is copied; its
 * ctx is borrowed and must outlive it. */
struct exec_blocking *exec_blocking_new(struct evloop *loop, const struct blocking_io *io,
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
 * flight or yet to come is cut short (io's abort), rows are not written
 * any more (the sweep fails them later). For a shutdown that must end
 * now. Thread-safe. */
void exec_blocking_abort_all(struct exec_blocking *ex);

/* Its workers, busy and queued; each busy worker holds its own database
 * connection (db_connections). */
void exec_blocking_stats(struct exec_blocking *ex, struct executor_stats *out);

/* Its row budget (executor.h): every step's slack, a reconnect (connect,
 * then setup) before the brew and two before the finish's UPDATEs, two
 * UPDATEs, and a second of margin. */
double exec_blocking_row_budget_ms(const struct executor_limits *lim);

#endif
