/* exec_threads: runs orders thread-per-request. Each order gets a thread
 * of its own, made when it is submitted (no queue for a worker), which
 * runs it as a blocking worker does (order_runner.h: the row, the steps
 * one after another, the outcome) through its own context of the blocking
 * services; the statements borrow a connection from a shared blocking pool
 * (worker_io.h with a sync_pool), waiting for one with a deadline.
 *
 * What it pays, on purpose visible: a thread and its stack per order in
 * flight, and the context switches of thousands of threads. Its bounds:
 * at most max_threads at once, and a refused pthread_create (EAGAIN: the
 * process's or the system's limit): either way the order fails at once
 * with OERR_OVERLOAD (503, Retry-After) before its row's INSERT, so a
 * refused order leaves no row. Each thread's stack is stack_kb KiB
 * (pthread_attr_setstacksize; glibc's default would be 8 MiB of address
 * space each). */
#ifndef COFFEE_EXEC_THREADS_H
#define COFFEE_EXEC_THREADS_H

#include "exec_blocking.h"

#include <stddef.h>

struct evloop;
struct order;
struct sync_pool;
struct exec_threads;
struct executor_stats;
struct executor_limits;

#define EXEC_THREADS_STACK_KB 256 /* the default stack of an order's thread */

struct exec_threads_options {
    long step_slack_ms;   /* a step fails this long after its planned duration */
    long db_timeout_ms;   /* bound on the row's INSERT and UPDATE */
    double row_budget_ms; /* the row's deadline, beyond the steps' planned time */
    int max_threads;      /* orders (threads) at once; over it OERR_OVERLOAD */
    int stack_kb;         /* each thread's stack, KiB (at least 64) */
    long join_wait_ms;    /* exec_threads_free waits this long at most for threads still running */
};

/* Returns new, or NULL with err. io is copied; its ctx is borrowed and
 * must outlive it. pool (borrowed, may be NULL) is the shared pool io's
 * statements borrow from: its figures are the executor's connections. */
struct exec_threads *exec_threads_new(struct evloop *loop, const struct blocking_io *io, struct sync_pool *pool,
                                      const struct exec_threads_options *opt, char *err, size_t errlen);
/* Waits (at most join_wait_ms) for its threads to end, then frees ex and
 * returns 0; accepts NULL. If some are still running then, ex is left
 * allocated for them (logged) and their number returned: the caller must
 * not free what they use (the loop, the services' context). */
int exec_threads_free(struct exec_threads *ex);
/* Starts o's thread, or fails o (OERR_OVERLOAD, or OERR_SHUTDOWN once
 * cancelled) with its end on a later pass. Loop thread. */
void exec_threads_submit(struct exec_threads *ex, struct order *o);
/* Running orders stop at their next step and record themselves as
 * failed (OERR_SHUTDOWN); new ones are refused. Thread-safe. */
void exec_threads_cancel_all(struct exec_threads *ex);
/* As cancel_all, and every blocking call in flight or yet to come is cut
 * short (io's abort: the watchdog, the pool's waits). Thread-safe. */
void exec_threads_abort_all(struct exec_threads *ex);
/* Its threads (workers: running now; threads_peak), the pool's
 * connections, and the cost of its ended threads plus nothing of the
 * running ones (their getrusage is taken as each ends). */
void exec_threads_stats(struct exec_threads *ex, struct executor_stats *out);
/* Its row budget: the blocking executor's (the same runner), plus the
 * pool's wait before each of the row's statements and the brew. */
double exec_threads_row_budget_ms(const struct executor_limits *lim);

#endif
