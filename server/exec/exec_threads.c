/* exec_threads: thread-per-request (see exec_threads.h).
 *
 * Owns: the attributes its threads are made with, the count of threads
 * running and the usage of the ended ones. Each thread owns its services'
 * context (made and freed on it); the order goes back to the loop thread
 * through evloop_post when done.
 * Must never: run an order on the loop thread, make a thread past
 * max_threads, or INSERT a row for an order whose thread was refused. */
#include "exec_threads.h"

#include "clock.h"
#include "evloop.h"
#include "executor.h"
#include "log.h"
#include "order.h"
#include "order_runner.h"
#include "procstat.h"
#include "sync_pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct exec_threads {
    struct evloop *loop;
    struct blocking_io io;
    struct sync_pool *pool; /* borrowed, for stats; may be NULL */
    struct exec_threads_options opt;
    pthread_attr_t attr;  /* detached, opt.stack_kb of stack */
    pthread_mutex_t lock; /* guards live, peak, ended */
    pthread_cond_t gone;  /* live reached 0 */
    int live, peak;
    struct thread_usage ended; /* summed over the threads that ended */
    atomic_int cancelling;     /* 1 cancel, 2 abort */
};

static const char cancel_msg[] = "cancelled: the server is shutting down";

/* An order thread: its context, the order, its end. */
static void *order_thread(void *arg)
{
    struct order *o = arg;
    struct exec_threads *ex = o->exec;
    struct evloop *loop = ex->loop;
    char err[260];
    o->queued_ns += clock_mono_ns() - o->arrived_ns; /* the thread's start */
    void *w = ex->io.worker_new(ex->io.ctx, 0, &ex->cancelling, err, sizeof err);
    if (!w) {
        order_fail(o, OERR_INTERNAL, err); /* before its row: there is none */
        order_end_steps(o, clock_mono_ns());
    } else {
        struct order_runner r = {.io = &ex->io,
                                 .w = w,
                                 .cancelling = &ex->cancelling,
                                 .step_slack_ms = ex->opt.step_slack_ms,
                                 .db_timeout_ms = ex->opt.db_timeout_ms,
                                 .row_budget_ms = ex->opt.row_budget_ms};
        order_run_blocking(&r, o);
        ex->io.worker_free(w);
    }
    /* Its cost, counted before its end is posted: a summary made then
     * counts it. */
    struct thread_usage u = {0};
    (void)thread_usage_self(&u);
    pthread_mutex_lock(&ex->lock);
    ex->ended.context_switches += u.context_switches;
    ex->ended.cpu_ns += u.cpu_ns;
    pthread_mutex_unlock(&ex->lock);
    order_end_posted(loop, o);
    /* The last touch of ex: exec_threads_free waits for live to reach 0. */
    pthread_mutex_lock(&ex->lock);
    if (--ex->live == 0)
        pthread_cond_broadcast(&ex->gone);
    pthread_mutex_unlock(&ex->lock);
    return NULL;
}

/* o ends on a later pass, failed before its row was written. */
static void refuse(struct exec_threads *ex, struct order *o, enum order_error error, const char *msg)
{
    order_fail(o, error, msg);
    order_end_steps(o, clock_mono_ns());
    order_end_later(ex->loop, o);
}

void exec_threads_submit(struct exec_threads *ex, struct order *o)
{
    char msg[200];
    if (atomic_load(&ex->cancelling)) {
        refuse(ex, o, OERR_SHUTDOWN, cancel_msg);
        return;
    }
    pthread_mutex_lock(&ex->lock);
    int live = ex->live;
    if (live < ex->opt.max_threads && ++ex->live > ex->peak)
        ex->peak = ex->live;
    pthread_mutex_unlock(&ex->lock);
    if (live >= ex->opt.max_threads) {
        snprintf(msg, sizeof msg, "no thread for this order: %d running (--max-threads); retry later", live);
        refuse(ex, o, OERR_OVERLOAD, msg);
        return;
    }
    o->exec = ex;
    pthread_t t;
    int rc = pthread_create(&t, &ex->attr, order_thread, o);
    if (rc != 0) { /* EAGAIN: RLIMIT_NPROC, threads-max, or no memory for a stack */
        pthread_mutex_lock(&ex->lock);
        if (--ex->live == 0)
            pthread_cond_broadcast(&ex->gone);
        pthread_mutex_unlock(&ex->lock);
        snprintf(msg, sizeof msg, "the system refused a thread for this order (%s, %d running); retry later",
                 strerror(rc), live);
        refuse(ex, o, OERR_OVERLOAD, msg);
    }
}

void exec_threads_cancel_all(struct exec_threads *ex)
{
    int zero = 0;
    atomic_compare_exchange_strong(&ex->cancelling, &zero, 1);
}

void exec_threads_abort_all(struct exec_threads *ex)
{
    atomic_store(&ex->cancelling, 2);
    if (ex->io.abort)
        ex->io.abort(ex->io.ctx);
}

void exec_threads_stats(struct exec_threads *ex, struct executor_stats *out)
{
    *out = (struct executor_stats){0};
    pthread_mutex_lock(&ex->lock);
    out->threads = ex->live; /* no fixed pool: workers stays 0 */
    out->threads_peak = ex->peak;
    out->context_switches = ex->ended.context_switches;
    out->cpu_ns = ex->ended.cpu_ns;
    pthread_mutex_unlock(&ex->lock);
    if (ex->pool) {
        struct sync_pool_stats ps;
        sync_pool_stats(ex->pool, &ps);
        out->db_connections = ps.busy;
        out->db_connections_peak = ps.peak;
    }
}

double exec_threads_row_budget_ms(const struct executor_limits *lim)
{
    return exec_blocking_row_budget_ms(lim) + 3.0 * lim->db_wait_ms;
}

struct exec_threads *exec_threads_new(struct evloop *loop, const struct blocking_io *io, struct sync_pool *pool,
                                      const struct exec_threads_options *opt, char *err, size_t errlen)
{
    struct exec_threads *ex = calloc(1, sizeof *ex);
    if (!ex) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    *ex = (struct exec_threads){.loop = loop, .io = *io, .pool = pool, .opt = *opt};
    atomic_init(&ex->cancelling, 0);
    int rc = pthread_attr_init(&ex->attr);
    if (rc == 0)
        rc = pthread_attr_setdetachstate(&ex->attr, PTHREAD_CREATE_DETACHED);
    if (rc == 0)
        rc = pthread_attr_setstacksize(&ex->attr, (size_t)opt->stack_kb * 1024);
    if (rc != 0) {
        snprintf(err, errlen, "cannot set a %d KiB thread stack: %s", opt->stack_kb, strerror(rc));
        pthread_attr_destroy(&ex->attr);
        free(ex);
        return NULL;
    }
    pthread_mutex_init(&ex->lock, NULL);
    pthread_cond_init(&ex->gone, NULL);
    return ex;
}

int exec_threads_free(struct exec_threads *ex)
{
    if (!ex)
        return 0;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until); /* pthread_cond_timedwait's default clock */
    until.tv_sec += ex->opt.join_wait_ms / 1000;
    until.tv_nsec += (ex->opt.join_wait_ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&ex->lock);
    int rc = 0;
    while (ex->live > 0 && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&ex->gone, &ex->lock, &until);
    int live = ex->live;
    pthread_mutex_unlock(&ex->lock);
    if (live > 0) { /* they still use ex: left to them */
        log_warn("exec_threads: %d order threads still running at exit; not freed", live);
        return live;
    }
    pthread_cond_destroy(&ex->gone);
    pthread_mutex_destroy(&ex->lock);
    pthread_attr_destroy(&ex->attr);
    free(ex);
    return 0;
}

static void ops_submit(void *ex, struct order *o)
{
    exec_threads_submit(ex, o);
}
static void ops_cancel_all(void *ex)
{
    exec_threads_cancel_all(ex);
}
static void ops_abort_all(void *ex)
{
    exec_threads_abort_all(ex);
}
static void ops_stats(void *ex, struct executor_stats *out)
{
    exec_threads_stats(ex, out);
}

const struct executor_ops exec_threads_ops = {
    .name = "threads",
    .db_connections_kind = "shared blocking pool",
    .submit = ops_submit,
    .cancel_all = ops_cancel_all,
    .abort_all = ops_abort_all,
    .stats = ops_stats,
    .row_budget_ms = exec_threads_row_budget_ms,
};
