/* exec_async: runs orders on the event loop. Every wait of every order
 * (kitchen calls, database queries, the pool's connects) is driven by the
 * loop thread; a step starts as soon as the steps it depends on end.
 *
 * Its seams: the I/O services it uses (io.h: the order store, the
 * kitchen, one brew service per brew kind) are handed to it at creation;
 * an order's brew is the service of its mode's brew kind (wf_modes[].brew),
 * so a mode is a row, not a branch here. server_main.c wires the real ones
 * (store_pgpool.h, kitchen_client.h's kc_service, brew_on_loop.h);
 * tests/unit/test_exec_async.c hands it fakes and drives an order through
 * every state and failure without a database or a kitchen.
 *
 * Errors: nothing here returns one. Whatever goes wrong with an order is
 * recorded in it (o->error, an order_error, and o->errmsg) and reported
 * through its on_done; only the HTTP front turns that into a status.
 * Preconditions (check.h): loop thread only (evloop checks it), and the
 * order's own state machine (order.h). */
#ifndef COFFEE_EXEC_ASYNC_H
#define COFFEE_EXEC_ASYNC_H

#include "io.h"
#include "workflow.h"

struct evloop;
struct order;
struct exec_async;
struct executor_stats;
struct executor_limits;

struct exec_async_services {
    struct order_store store;
    struct kitchen_service kitchen;
    /* By enum brew_kind: every kind an EXEC_ASYNC mode names must have a
     * start (exec_async_new checks); the others may be zero. */
    struct brew_service brew[BREW_KINDS];
};

struct exec_async_options {
    long step_slack_ms;   /* a step fails with a timeout this long after its planned duration */
    long db_timeout_ms;   /* bound on the row's INSERT and UPDATE once sent */
    double row_budget_ms; /* the row's deadline, beyond the steps' planned time and slack */
};

/* Returns new, or NULL (no memory, or a mode whose brew has no service).
 * svc and opt are copied; what they point at (the services' contexts) is
 * borrowed and must outlive it. */
struct exec_async *exec_async_new(struct evloop *loop, const struct exec_async_services *svc,
                                  const struct exec_async_options *opt);
/* Frees ex; accepts NULL. No order may be running. */
void exec_async_free(struct exec_async *ex);
/* Starts o. o->on_done runs on a later loop pass, once, after the order's
 * row was written (or could not be). Loop thread only. */
void exec_async_submit(struct exec_async *ex, struct order *o);
/* Fails every running order with OERR_SHUTDOWN: their in-flight I/O is
 * abandoned, their rows are written as failed (within the database's
 * bounds), and their on_done runs on a later pass as usual. Loop thread
 * only; no callback runs inside this call. */
void exec_async_cancel_all(struct exec_async *ex);
/* Ends every running order now, failed with OERR_SHUTDOWN: all their I/O
 * is abandoned, rows being written included (a row left running is failed
 * by the sweep later). on_done runs on a later pass. For a shutdown that
 * cannot wait any more. Loop thread only. */
void exec_async_abort_all(struct exec_async *ex);
/* No workers of its own; db_connections: its store's connections_busy
 * (and its peak as sampled by these calls); its threads and their cost:
 * the loop's (getrusage of the calling thread: call it on the loop),
 * plus what its brew services add (brew_service.stats). Loop thread. */
void exec_async_stats(struct exec_async *ex, struct executor_stats *out);
/* Its row budget (executor.h): every step's slack, the brew's wait for a
 * connection and the finish's wait and run, twice (it goes out again if
 * its connection was lost), and a second of margin. */
double exec_async_row_budget_ms(const struct executor_limits *lim);

#endif
