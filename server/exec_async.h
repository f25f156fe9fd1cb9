/* exec_async: runs orders on the event loop. Every wait of every order
 * (kitchen calls, database queries, the pool's connects) is driven by the
 * loop thread; a step starts as soon as the steps it depends on end.
 *
 * Two modes of the mode table run here to show mistakes from the seed:
 * ignore_deps starts every step at once (the brew then gets no
 * ingredients), and sql_blocks_loop runs the brew with blocking libpq ON
 * the loop thread, stalling every other order on the loop while it runs. */
#ifndef COFFEE_EXEC_ASYNC_H
#define COFFEE_EXEC_ASYNC_H

struct evloop;
struct db_config;
struct pgpool;
struct curl_loop;
struct order;
struct exec_async;

struct watchdog;

struct exec_async_options {
    const char *kitchen_url;
    const struct db_config *db; /* for the mixed mode's blocking connection */
    struct watchdog *wd;        /* bounds that connection's blocking calls */
    long step_slack_ms; /* a step fails with a timeout this long after its planned duration */
    long db_timeout_ms; /* bound on the row's INSERT and UPDATE once sent */
    long connect_timeout_ms; /* the mixed mode's blocking connect and setup */
    double row_budget_ms; /* the row's deadline, beyond the steps' planned time */
};

/* Returns new, or NULL. Everything passed is borrowed and must outlive it. */
struct exec_async *exec_async_new(struct evloop *loop, struct pgpool *pool, struct curl_loop *http,
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

#endif
