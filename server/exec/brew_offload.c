/* brew_offload: the blocking brew on an offload thread (see brew_offload.h).
 *
 * Owns: its threads, each with its blocking connection, and one struct
 * job per brew started, freed on the loop thread: by the task its thread
 * posts when the brew ended, by its queue timer, or by an abandon while it
 * was still queued.
 * Must never: run a blocking call on the loop thread, complete a request
 * inside start or abandon, or touch a request after it was abandoned. */
#include "brew_offload.h"

#include "clock.h"
#include "db.h"
#include "evloop.h"
#include "executor.h"
#include "flight.h"
#include "order.h"
#include "procstat.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum job_state {
    JOB_QUEUED,  /* waiting for a thread (its timer armed) */
    JOB_RUNNING, /* on a thread */
    JOB_ENDED    /* its result posted to the loop */
};

struct job {
    struct brew_offload *b;
    struct io_req *req;   /* NULL once abandoned; loop thread only */
    enum job_state state; /* guarded by b->lock */
    struct job *next;     /* the queue */
    struct db_stmt st;
    long timeout_ms;
    int64_t queued_at_ns, waited_ns;
    struct ev_timer timer; /* the queue's bound: the brew's own timeout */
    struct ev_task done_task;
    /* the outcome, written by its thread before it posts */
    int error;
    int has_text;
    char text[WF_RESULT_MAX];
    char msg[260];
};

struct offload_thread {
    struct brew_offload *b;
    pthread_t thread;
    int started;
    struct db_sync db;
    struct thread_usage usage; /* after its last brew (guarded by b->lock) */
    int open;                  /* its connection was open after its last brew (guarded by b->lock) */
};

struct brew_offload {
    struct evloop *loop;
    struct io_later later;
    pthread_mutex_t lock; /* guards the queue, states, busy, peaks, usage, stopping */
    pthread_cond_t work;
    struct job *head, *tail;
    int busy, busy_peak, open_peak, stopping;
    int nthreads;
    struct offload_thread *threads;
};

/* ---- the loop's side ------------------------------------------------------ */

/* Completes j's request (unless abandoned) and frees j. Loop thread. */
static void job_complete(struct job *j)
{
    struct io_req *r = j->req;
    struct io_result out = {
        .error = j->error, .msg = j->msg, .waited_ns = j->waited_ns, .text = j->has_text ? j->text : NULL};
    evloop_timer_stop(j->b->loop, &j->timer);
    if (r) {
        r->impl = NULL;
        r->done(r, &out);
    }
    db_stmt_release(&j->st);
    free(j);
}

static void on_job_posted(struct evloop *loop, struct ev_task *task)
{
    (void)loop;
    job_complete(container_of(task, struct job, done_task));
}

/* Unlinks j from the queue if it is still there. Under the lock. */
static int unqueue(struct brew_offload *b, struct job *j)
{
    if (j->state != JOB_QUEUED)
        return 0;
    for (struct job **p = &b->head; *p; p = &(*p)->next) {
        if (*p == j) {
            *p = j->next;
            if (b->tail == j) {
                b->tail = NULL;
                for (struct job *t = b->head; t; t = t->next)
                    b->tail = t;
            }
            return 1;
        }
    }
    return 0;
}

/* The queue's bound: no thread took the brew within its timeout. */
static void on_queue_timeout(struct evloop *loop, struct ev_timer *t)
{
    (void)loop;
    struct job *j = container_of(t, struct job, timer);
    struct brew_offload *b = j->b;
    pthread_mutex_lock(&b->lock);
    int was_queued = unqueue(b, j);
    pthread_mutex_unlock(&b->lock);
    if (!was_queued) /* running: the watchdog bounds it, its result comes */
        return;
    j->error = OERR_TIMEOUT;
    j->waited_ns = clock_mono_ns() - j->queued_at_ns;
    snprintf(j->msg, sizeof j->msg, "no offload thread free in %ld ms (%d threads)", j->timeout_ms, b->nthreads);
    job_complete(j);
}

static void brew_start(void *ctx, struct io_req *r, const struct order *o, int step, long timeout_ms)
{
    struct brew_offload *b = ctx;
    struct job *j = calloc(1, sizeof *j);
    if (!j) {
        io_later_fail(&b->later, r, OERR_INTERNAL, "out of memory");
        return;
    }
    *j = (struct job){.b = b,
                      .req = r,
                      .timeout_ms = timeout_ms,
                      .queued_at_ns = clock_mono_ns(),
                      .timer = {.cb = on_queue_timeout},
                      .done_task = {.fn = on_job_posted}};
    if (db_stmt_brew(&j->st, o, step) != 0) /* as the pool's brew: the database rejects it */
        j->st = (struct db_stmt){.what = "brew", .sql = "SELECT brew_coffee(NULL, NULL, NULL)"};
    if (evloop_timer_start(b->loop, &j->timer, (int64_t)timeout_ms * NS_PER_MS) != 0) {
        db_stmt_release(&j->st);
        free(j);
        io_later_fail(&b->later, r, OERR_INTERNAL, "out of memory");
        return;
    }
    r->impl = j;
    pthread_mutex_lock(&b->lock);
    if (b->tail)
        b->tail->next = j;
    else
        b->head = j;
    b->tail = j;
    pthread_cond_signal(&b->work);
    pthread_mutex_unlock(&b->lock);
}

static void brew_abandon(void *ctx, struct io_req *r)
{
    struct brew_offload *b = ctx;
    struct job *j = r->impl;
    if (!j) {
        io_later_cancel(r);
        return;
    }
    r->impl = NULL;
    pthread_mutex_lock(&b->lock);
    int was_queued = unqueue(b, j);
    pthread_mutex_unlock(&b->lock);
    if (was_queued) { /* no thread saw it: free it now, no done */
        evloop_timer_stop(b->loop, &j->timer);
        db_stmt_release(&j->st);
        free(j);
        return;
    }
    j->req = NULL; /* its thread posts its end, which frees it and calls nothing */
}

/* ---- the threads' side ---------------------------------------------------- */

/* Runs j's brew on t's connection, blocking, within what is left of its
 * timeout. */
static void run_job(struct offload_thread *t, struct job *j)
{
    long left_ms = j->timeout_ms - (long)(j->waited_ns / NS_PER_MS);
    if (left_ms < 1)
        left_ms = 1;
    int kind = OERR_DB;
    PGresult *res = NULL;
    if (db_sync_ensure(&t->db, j->msg, sizeof j->msg) == 0)
        res = db_sync_run(&t->db, &j->st, left_ms, &kind, j->msg, sizeof j->msg);
    if (!res) {
        j->error = kind;
        return;
    }
    const char *why = NULL;
    if (db_brew_result(res, j->text, sizeof j->text, &why) == 0)
        j->has_text = 1;
    else
        snprintf(j->msg, sizeof j->msg, "%s", why);
    PQclear(res);
}

static void *offload_main(void *arg)
{
    struct offload_thread *t = arg;
    struct brew_offload *b = t->b;
    flight_thread_name("offload-%d", (int)(t - b->threads)); /* flight recorder: the thread's track */
    for (;;) {
        pthread_mutex_lock(&b->lock);
        while (!b->head && !b->stopping)
            pthread_cond_wait(&b->work, &b->lock);
        struct job *j = b->head;
        if (!j) {
            pthread_mutex_unlock(&b->lock);
            break;
        }
        b->head = j->next;
        if (!b->head)
            b->tail = NULL;
        j->state = JOB_RUNNING;
        if (++b->busy > b->busy_peak)
            b->busy_peak = b->busy;
        pthread_mutex_unlock(&b->lock);

        j->waited_ns = clock_mono_ns() - j->queued_at_ns;
        run_job(t, j);
        struct thread_usage u;
        int have = thread_usage_self(&u) == 0;

        pthread_mutex_lock(&b->lock);
        b->busy--;
        j->state = JOB_ENDED;
        if (have)
            t->usage = u;
        t->open = 1; /* it was open for this brew (closed since only if lost) */
        int open = 0;
        for (int i = 0; i < b->nthreads; i++)
            open += b->threads[i].open;
        if (open > b->open_peak)
            b->open_peak = open;
        pthread_mutex_unlock(&b->lock);
        evloop_post(b->loop, &j->done_task);
    }
    return NULL;
}

void brew_offload_stats(void *ctx, struct executor_stats *out)
{
    struct brew_offload *b = ctx;
    pthread_mutex_lock(&b->lock);
    out->threads += b->busy;
    out->threads_peak += b->busy_peak;
    out->db_connections += b->busy;
    out->db_connections_peak += b->open_peak;
    for (int i = 0; i < b->nthreads; i++) {
        out->context_switches += b->threads[i].usage.context_switches;
        out->cpu_ns += b->threads[i].usage.cpu_ns;
    }
    pthread_mutex_unlock(&b->lock);
}

struct brew_offload *brew_offload_new(struct evloop *loop, const struct db_config *config, struct watchdog *wd,
                                      long connect_timeout_ms, int threads, char *err, size_t errlen)
{
    struct brew_offload *b = calloc(1, sizeof *b);
    if (!b || !(b->threads = calloc((size_t)threads, sizeof *b->threads))) {
        free(b);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    b->loop = loop;
    b->nthreads = threads;
    io_later_init(&b->later, loop);
    pthread_mutex_init(&b->lock, NULL);
    pthread_cond_init(&b->work, NULL);
    for (int i = 0; i < threads; i++) {
        struct offload_thread *t = &b->threads[i];
        *t = (struct offload_thread){.b = b,
                                     .db = {.config = config, .wd = wd, .connect_timeout_ms = connect_timeout_ms}};
        int rc = pthread_create(&t->thread, NULL, offload_main, t);
        if (rc != 0) {
            snprintf(err, errlen, "cannot start an offload thread: %s", strerror(rc));
            brew_offload_free(b);
            return NULL;
        }
        t->started = 1;
    }
    return b;
}

void brew_offload_free(struct brew_offload *b)
{
    if (!b)
        return;
    pthread_mutex_lock(&b->lock);
    b->stopping = 1;
    pthread_cond_broadcast(&b->work);
    pthread_mutex_unlock(&b->lock);
    for (int i = 0; i < b->nthreads; i++) {
        if (b->threads[i].started)
            pthread_join(b->threads[i].thread, NULL);
        db_sync_close(&b->threads[i].db);
    }
    free(b->threads);
    pthread_cond_destroy(&b->work);
    pthread_mutex_destroy(&b->lock);
    free(b);
}

struct brew_service brew_offload_service(struct brew_offload *b)
{
    return (struct brew_service){
        .start = brew_start, .abandon = brew_abandon, .holds_loop = 0, .ctx = b, .stats = brew_offload_stats};
}
