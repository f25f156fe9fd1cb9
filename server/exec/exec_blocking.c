/* exec_blocking: the blocking executor (see exec_blocking.h).
 *
 * Owns: the worker threads, each with its services' context, and the FIFO
 * of orders waiting for a worker (not the orders: they go back to the loop
 * thread through evloop_post when done).
 * Must never: run an order on the loop thread, or share a worker's
 * context between workers. Its blocking calls are its services'. */
#include "exec_blocking.h"

#include "clock.h"
#include "evloop.h"
#include "executor.h"
#include "flight.h"
#include "log.h"
#include "order.h"
#include "order_runner.h"
#include "procstat.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct worker {
    struct exec_blocking *ex;
    int index;
    pthread_t thread;
    int started;
    void *io;                  /* its services' context */
    struct thread_usage usage; /* its thread's, after its last order (guarded by the lock) */
};

struct exec_blocking {
    struct evloop *loop;
    struct blocking_io io;
    struct exec_blocking_options opt;
    pthread_mutex_t lock; /* guards the queue, busy and stopping */
    pthread_cond_t cond;
    struct order *head, *tail;
    int queued;
    int busy;
    int stopping;
    atomic_int cancelling; /* 1 cancel, 2 abort: read by workers between steps and by their services */
    struct worker *workers;
};

static const char cancel_msg[] = "cancelled: the server is shutting down";

/* Runs a whole order, blocking (order_runner.h), after its wait for a
 * worker. */
static void run_order(struct worker *w, struct order *o)
{
    struct exec_blocking *ex = w->ex;
    o->queued_ns += clock_mono_ns() - o->arrived_ns; /* waited for a worker */
    struct order_runner r = {.io = &ex->io,
                             .w = w->io,
                             .cancelling = &ex->cancelling,
                             .step_slack_ms = ex->opt.step_slack_ms,
                             .db_timeout_ms = ex->opt.db_timeout_ms,
                             .row_budget_ms = ex->opt.row_budget_ms};
    order_run_blocking(&r, o);
}

/* The worker's own cost so far (its thread's getrusage), for stats. */
static void note_usage(struct worker *w)
{
    struct thread_usage u;
    if (thread_usage_self(&u) != 0)
        return;
    pthread_mutex_lock(&w->ex->lock);
    w->usage = u;
    pthread_mutex_unlock(&w->ex->lock);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct exec_blocking *ex = w->ex;
    char err[260];
    flight_thread_name("worker-%d", w->index); /* flight recorder: the thread's track */
    /* Connect now, so the first order does not pay for it. */
    if (!atomic_load(&ex->cancelling) && ex->io.connect && ex->io.connect(w->io, err, sizeof err) != 0)
        log_warn("worker %d: %s (will retry with the next order)", w->index, err);
    note_usage(w);
    for (;;) {
        pthread_mutex_lock(&ex->lock);
        while (!ex->head && !ex->stopping)
            pthread_cond_wait(&ex->cond, &ex->lock);
        struct order *o = ex->head;
        if (!o) {
            pthread_mutex_unlock(&ex->lock);
            break;
        }
        ex->head = o->next;
        if (!ex->head)
            ex->tail = NULL;
        ex->queued--;
        ex->busy++;
        pthread_mutex_unlock(&ex->lock);

        run_order(w, o);
        note_usage(w); /* before the end is posted: a summary made then counts it */

        pthread_mutex_lock(&ex->lock);
        ex->busy--;
        pthread_mutex_unlock(&ex->lock);
        order_end_posted(ex->loop, o);
    }
    return NULL;
}

void exec_blocking_submit(struct exec_blocking *ex, struct order *o)
{
    o->next = NULL;
    pthread_mutex_lock(&ex->lock);
    if (ex->tail)
        ex->tail->next = o;
    else
        ex->head = o;
    ex->tail = o;
    ex->queued++;
    pthread_cond_signal(&ex->cond);
    pthread_mutex_unlock(&ex->lock);
}

void exec_blocking_cancel_all(struct exec_blocking *ex)
{
    pthread_mutex_lock(&ex->lock);
    int zero = 0;
    atomic_compare_exchange_strong(&ex->cancelling, &zero, 1);
    struct order *o = ex->head;
    ex->head = ex->tail = NULL;
    ex->queued = 0;
    pthread_mutex_unlock(&ex->lock);
    while (o) {
        struct order *next = o->next;
        o->queued_ns += clock_mono_ns() - o->arrived_ns;
        order_fail(o, OERR_SHUTDOWN, cancel_msg);
        order_end_steps(o, clock_mono_ns());
        order_end_posted(ex->loop, o);
        o = next;
    }
}

void exec_blocking_abort_all(struct exec_blocking *ex)
{
    atomic_store(&ex->cancelling, 2);
    if (ex->io.abort)
        ex->io.abort(ex->io.ctx);
    exec_blocking_cancel_all(ex);
}

void exec_blocking_stats(struct exec_blocking *ex, struct executor_stats *out)
{
    *out = (struct executor_stats){0};
    pthread_mutex_lock(&ex->lock);
    out->workers = ex->opt.workers;
    out->workers_busy = ex->busy;
    out->queued = ex->queued;
    out->db_connections = ex->busy;
    /* Each worker keeps its own connection, open or not: as many as workers. */
    out->db_connections_peak = ex->opt.workers;
    out->threads = out->threads_peak = ex->opt.workers;
    for (int i = 0; ex->workers && i < ex->opt.workers; i++) {
        out->context_switches += ex->workers[i].usage.context_switches;
        out->cpu_ns += ex->workers[i].usage.cpu_ns;
    }
    pthread_mutex_unlock(&ex->lock);
}

double exec_blocking_row_budget_ms(const struct executor_limits *lim)
{
    (void)lim->step_slack_ms; /* per step: added per order, for its recipe (order_runner.c) */
    return 6.0 * lim->connect_timeout_ms + 2.0 * lim->db_timeout_ms + 1000;
}

struct exec_blocking *exec_blocking_new(struct evloop *loop, const struct blocking_io *io,
                                        const struct exec_blocking_options *opt, char *err, size_t errlen)
{
    struct exec_blocking *ex = calloc(1, sizeof *ex);
    if (!ex) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    ex->loop = loop;
    ex->io = *io;
    ex->opt = *opt;
    atomic_init(&ex->cancelling, 0);
    pthread_mutex_init(&ex->lock, NULL);
    pthread_cond_init(&ex->cond, NULL);
    ex->workers = calloc((size_t)opt->workers, sizeof *ex->workers);
    if (!ex->workers) {
        snprintf(err, errlen, "out of memory");
        exec_blocking_free(ex);
        return NULL;
    }
    for (int i = 0; i < opt->workers; i++) {
        struct worker *w = &ex->workers[i];
        w->ex = ex;
        w->index = i;
        if (!(w->io = io->worker_new(io->ctx, i, &ex->cancelling, err, errlen))) {
            exec_blocking_free(ex);
            return NULL;
        }
        int rc = pthread_create(&w->thread, NULL, worker_main, w);
        if (rc != 0) {
            snprintf(err, errlen, "cannot start worker thread: %s", strerror(rc));
            exec_blocking_free(ex);
            return NULL;
        }
        w->started = 1;
    }
    return ex;
}

void exec_blocking_free(struct exec_blocking *ex)
{
    if (!ex)
        return;
    pthread_mutex_lock(&ex->lock);
    ex->stopping = 1;
    pthread_cond_broadcast(&ex->cond);
    pthread_mutex_unlock(&ex->lock);
    for (int i = 0; ex->workers && i < ex->opt.workers; i++) {
        struct worker *w = &ex->workers[i];
        if (w->started)
            pthread_join(w->thread, NULL);
        ex->io.worker_free(w->io);
    }
    free(ex->workers);
    pthread_cond_destroy(&ex->cond);
    pthread_mutex_destroy(&ex->lock);
    free(ex);
}

static void ops_submit(void *ex, struct order *o)
{
    exec_blocking_submit(ex, o);
}
static void ops_cancel_all(void *ex)
{
    exec_blocking_cancel_all(ex);
}
static void ops_abort_all(void *ex)
{
    exec_blocking_abort_all(ex);
}
static void ops_stats(void *ex, struct executor_stats *out)
{
    exec_blocking_stats(ex, out);
}

const struct executor_ops exec_blocking_ops = {
    .name = "blocking",
    .db_connections_kind = "worker's own",
    .submit = ops_submit,
    .cancel_all = ops_cancel_all,
    .abort_all = ops_abort_all,
    .stats = ops_stats,
    .row_budget_ms = exec_blocking_row_budget_ms,
};
