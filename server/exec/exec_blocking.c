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
#include "finish_retry.h"
#include "io.h"
#include "log.h"
#include "order.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct worker {
    struct exec_blocking *ex;
    int index;
    pthread_t thread;
    int started;
    void *io; /* its services' context */
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

/* Performs step i of o and records its outcome. */
static void run_step(struct worker *w, struct order *o, int i)
{
    const struct step_def *d = &o->recipe->steps[i];
    const struct blocking_io *io = &w->ex->io;
    long limit_ms = order_step_limit_ms(o, i, w->ex->opt.step_slack_ms);
    char result[WF_RESULT_MAX] = "", msg[260] = "";
    int err;
    int64_t t0 = clock_mono_ns(); /* flight recorder: the blocking call's slice */
    order_step_start(o, i, t0);
    if (d->io == IO_HTTP) {
        struct kitchen_args a = {.step = d, .scale = o->scale, .timeout_ms = limit_ms,
                                 .traceparent = o->traceparent};
        err = io->kitchen(w->io, &a, result, sizeof result, msg, sizeof msg);
    } else {
        err = io->brew(w->io, o, i, limit_ms, result, sizeof result, msg, sizeof msg);
    }
    flight_slice(d->name, o->id, t0); /* flight recorder: the blocking call's slice */
    order_step_end(o, i, err, result, msg, clock_mono_ns());
}

/* Writes the order's outcome to its row, sent once more when the
 * connection it went out on was lost (finish_retry.h). */
static void record_outcome(struct worker *w, struct order *o)
{
    struct exec_blocking *ex = w->ex;
    char msg[260] = "";
    int err = 0, lost = 0, sent = 0;
    do {
        if (atomic_load(&ex->cancelling) == 2) {
            err = OERR_DB;
            snprintf(msg, sizeof msg, "the server is stopping");
            break;
        }
        err = ex->io.finish(w->io, o, ex->opt.db_timeout_ms, &lost, msg, sizeof msg);
        sent++;
    } while (err && finish_send_again(lost, sent, atomic_load(&ex->cancelling) == 2));
    if (err == OERR_INTERNAL)
        order_fail(o, OERR_INTERNAL, msg);
    else if (err)
        order_not_recorded(o, msg);
}

/* Runs a whole order, blocking: row, steps in table order, outcome. */
static void run_order(struct worker *w, struct order *o)
{
    struct exec_blocking *ex = w->ex;
    char msg[260] = "";
    o->queued_ns += clock_mono_ns() - o->arrived_ns; /* waited for a worker */

    int64_t id = 0, t0 = clock_mono_ns(); /* flight recorder: the INSERT's slice */
    double budget_ms = wf_sequential_ms(o->recipe, o->scale) + (double)o->recipe->nsteps * ex->opt.step_slack_ms +
                       ex->opt.row_budget_ms;
    int err = ex->io.insert(w->io, o, budget_ms, ex->opt.db_timeout_ms, &id, msg, sizeof msg);
    flight_slice("insert order", id, t0); /* flight recorder */
    if (err || id <= 0) {
        order_not_recorded(o, err ? msg : "no id returned");
        order_end_steps(o, clock_mono_ns());
        return;
    }
    o->id = id;

    /* One ready step at a time, lowest index first: the table's order. */
    unsigned ready;
    while ((ready = order_ready(o)) != 0) {
        if (atomic_load(&ex->cancelling)) {
            order_fail(o, OERR_SHUTDOWN, cancel_msg);
            break;
        }
        run_step(w, o, __builtin_ctz(ready));
    }
    order_end_steps(o, clock_mono_ns());
    t0 = clock_mono_ns(); /* flight recorder: the UPDATE's slice */
    record_outcome(w, o);
    flight_slice("record outcome", o->id, t0); /* flight recorder */
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
    pthread_mutex_lock(&ex->lock);
    out->workers = ex->opt.workers;
    out->workers_busy = ex->busy;
    out->queued = ex->queued;
    out->db_connections = ex->busy;
    pthread_mutex_unlock(&ex->lock);
}

double exec_blocking_row_budget_ms(const struct executor_limits *lim)
{
    (void)lim->step_slack_ms; /* per step: added per order, for its recipe (run_order) */
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

static void ops_submit(void *ex, struct order *o) { exec_blocking_submit(ex, o); }
static void ops_cancel_all(void *ex) { exec_blocking_cancel_all(ex); }
static void ops_abort_all(void *ex) { exec_blocking_abort_all(ex); }
static void ops_stats(void *ex, struct executor_stats *out) { exec_blocking_stats(ex, out); }

const struct executor_ops exec_blocking_ops = {
    .name = "blocking",
    .db_connections_kind = "worker's own",
    .submit = ops_submit,
    .cancel_all = ops_cancel_all,
    .abort_all = ops_abort_all,
    .stats = ops_stats,
    .row_budget_ms = exec_blocking_row_budget_ms,
};
