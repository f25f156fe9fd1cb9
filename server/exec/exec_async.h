/* exec_async: runs orders on the event loop. Every wait of every order
 * (kitchen calls, database queries, the pool's connects) is driven by the
 * loop thread; a step starts as soon as the steps it depends on end.
 *
 * Two modes of the mode table run here to show mistakes from the seed:
 * ignore_deps starts every step at once (the brew then gets no
 * ingredients), and sql_blocks_loop runs the brew with blocking libpq ON
 * the loop thread, stalling every other order on the loop while it runs.
 *
 * Its seams: the two I/O services it uses are handed to it at creation,
 * each a table of functions and its context (exec_async_db,
 * exec_async_kitchen). server_main.c wires the real ones (a pgpool and
 * kitchen calls on a curl_loop: exec_async_pgpool, exec_async_curl);
 * tests/unit/test_exec_async.c hands it fakes and drives an order through
 * every state and failure without a database or a kitchen. (The mixed mode's blocking brew is the one I/O that does not go
 * through them: it is the deliberate mistake.)
 *
 * Errors: nothing here returns one. Whatever goes wrong with an order is
 * recorded in it (o->error, an order_error, and o->errmsg) and reported
 * through its on_done; only the HTTP front turns that into a status.
 * Preconditions (check.h): loop thread only (evloop checks it), and the
 * order's own state machine (order.h). */
#ifndef COFFEE_EXEC_ASYNC_H
#define COFFEE_EXEC_ASYNC_H

struct evloop;
struct db_config;
struct order;
struct exec_async;
struct pgpool;
struct curl_loop;
struct pgq;
struct kc_call;
struct kc_call_args;
struct watchdog;

/* An implementation of either service keeps the real one's contract
 * (pgpool.h, kitchen_client.h): the caller owns the request and keeps it
 * alive; its callback runs exactly once, on the loop thread, on a later
 * pass than the call that started it (never inside submit/start or
 * abandon), unless abandon came first; after its callback or abandon the
 * service touches it no more. */
struct exec_async_db {
    void (*submit)(void *ctx, struct pgq *q);  /* pgpool_submit */
    void (*abandon)(void *ctx, struct pgq *q); /* pgpool_abandon */
    int (*connections_busy)(void *ctx);        /* connections running a query now (NULL: 0) */
    void *ctx;
};
struct exec_async_kitchen {
    /* kc_call_start; a is borrowed during the call only */
    void (*start)(void *ctx, struct kc_call *c, const struct kc_call_args *a);
    void (*abandon)(void *ctx, struct kc_call *c); /* kc_call_abandon */
    void *ctx;
};
/* The real services: pool (borrowed) and kitchen calls on http (borrowed). */
struct exec_async_db exec_async_pgpool(struct pgpool *pool);
struct exec_async_kitchen exec_async_curl(struct curl_loop *http);

struct exec_async_options {
    const char *kitchen_url;
    const struct db_config *db; /* for the mixed mode's blocking connection */
    struct watchdog *wd;        /* bounds that connection's blocking calls */
    long step_slack_ms; /* a step fails with a timeout this long after its planned duration */
    long db_timeout_ms; /* bound on the row's INSERT and UPDATE once sent */
    long connect_timeout_ms; /* the mixed mode's blocking connect and setup */
    double row_budget_ms; /* the row's deadline, beyond the steps' planned time */
};

/* Returns new, or NULL. db, kitchen and opt are copied; what they point
 * at (the services' contexts, opt's config and watchdog) is borrowed and
 * must outlive it. */
struct exec_async *exec_async_new(struct evloop *loop, const struct exec_async_db *db,
                                  const struct exec_async_kitchen *kitchen, const struct exec_async_options *opt);
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
/* No workers of its own; db_connections: its database service's
 * connections_busy. */
struct executor_stats;
void exec_async_stats(struct exec_async *ex, struct executor_stats *out);
/* Its row budget (executor.h): every step's slack, the brew's wait for a
 * connection and the finish's wait and run, twice (it goes out again if
 * its connection was lost), and a second of margin. */
struct executor_limits;
double exec_async_row_budget_ms(const struct executor_limits *lim);

#endif
