/* exec_blocking: the blocking executor (see exec_blocking.h).
 *
 * Owns: the worker threads, each with its own easy handle and PGconn, and
 * the FIFO of orders waiting for a worker (not the orders: they go back to
 * the loop thread through evloop_post when done).
 * Must never: run on the loop thread, or share a handle between workers. */
#include "exec_blocking.h"

#include "clock.h"
#include "db.h"
#include "evloop.h"
#include "kitchen_client.h"
#include "log.h"
#include "order.h"
#include "watchdog.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct worker {
    struct exec_blocking *ex;
    int index;
    pthread_t thread;
    int started;
    CURL *easy;
    struct db_sync db;
    struct kc_response resp;
};

struct exec_blocking {
    struct evloop *loop;
    struct exec_blocking_options opt;
    pthread_mutex_t lock; /* guards the queue, busy and stopping */
    pthread_cond_t cond;
    struct order *head, *tail;
    int queued;
    int busy;
    int stopping;
    atomic_int cancelling; /* 1 cancel, 2 abort: read by workers between steps and by curl */
    struct worker *workers;
};

static const char cancel_msg[] = "cancelled: the server is shutting down";

/* curl's progress callback: a non-zero return aborts the transfer. */
static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    return atomic_load((atomic_int *)arg);
}

/* Performs step i of o and records its outcome. */
static void run_step(struct worker *w, struct order *o, int i)
{
    const struct step_def *d = &wf_steps[i];
    long limit_ms = order_step_limit_ms(o, i, w->ex->opt.step_slack_ms);
    char result[WF_RESULT_MAX] = "", msg[200] = "";
    const char *why = msg;
    int err = 0;
    order_step_start(o, i, clock_mono_ns());
    if (d->io == IO_HTTP) {
        char url[512];
        kc_set_trace(&w->resp, o->traceparent);
        if (kc_url(d, w->ex->opt.kitchen_url, o->scale, url, sizeof url) != 0 ||
            kc_prepare(w->easy, url, limit_ms, &w->resp) != 0) {
            err = OERR_KITCHEN;
            snprintf(msg, sizeof msg, "cannot prepare the kitchen request");
        } else {
            CURLcode code = curl_easy_perform(w->easy);
            err = kc_result(w->easy, code, &w->resp, result, sizeof result, msg, sizeof msg);
            if (code == CURLE_ABORTED_BY_CALLBACK) {
                err = OERR_SHUTDOWN;
                why = cancel_msg;
            }
        }
    } else {
        struct db_stmt st;
        PGresult *r = NULL;
        /* A connection the server closed since the order's INSERT (a
         * restart, a terminated backend) is replaced before the brew goes
         * out: nothing was sent on it, so nothing is lost. */
        if (db_stmt_brew(&st, o, i) != 0) {
            err = OERR_INTERNAL;
            why = "ingredients too long";
        } else if (db_sync_ensure(&w->db, msg, sizeof msg) != 0) {
            err = OERR_DB;
        } else if ((r = db_sync_run(&w->db, &st, limit_ms, &err, msg, sizeof msg)) != NULL) {
            err = db_brew_result(r, result, sizeof result, &why);
        }
        PQclear(r);
        db_stmt_release(&st);
    }
    order_step_end(o, i, err, result, why, clock_mono_ns());
}

/* Writes the order's outcome to its row. A connection lost meanwhile
 * (the database restarted, the backend was terminated) is replaced once:
 * the UPDATE sets the same values whenever it runs, so running it again is
 * safe, and no row is left running because its first connection died. */
static void record_outcome(struct worker *w, struct order *o)
{
    char err[260] = "";
    int kind = OERR_DB;
    struct db_stmt st;
    if (db_stmt_finish(&st, o, w->ex->opt.db_timeout_ms) != 0) {
        order_fail(o, OERR_INTERNAL, "out of memory");
        return;
    }
    PGresult *r = NULL;
    for (int attempt = 0; attempt < 2 && !r; attempt++) {
        if (atomic_load(&w->ex->cancelling) == 2) {
            snprintf(err, sizeof err, "the server is stopping");
            break;
        }
        if (db_sync_ensure(&w->db, err, sizeof err) != 0)
            break;
        r = db_sync_run(&w->db, &st, w->ex->opt.db_timeout_ms, &kind, err, sizeof err);
        if (!r && db_sync_ok(&w->db))
            break; /* the statement failed, not the connection */
    }
    if (!r)
        order_not_recorded(o, err);
    else if (!db_finish_applied(r)) /* it ran past its deadline (db.h): the row is not written */
        order_not_recorded(o, "the row's update ran past its deadline");
    PQclear(r);
    db_stmt_release(&st);
}

/* Runs a whole order, blocking: row, steps in table order, outcome. */
static void run_order(struct worker *w, struct order *o)
{
    char err[260];
    int kind = OERR_DB;
    o->queued_ns += clock_mono_ns() - o->arrived_ns; /* waited for a worker */

    struct db_stmt st;
    PGresult *r = NULL;
    db_stmt_insert_order(&st, o, wf_sequential_ms(o->scale) + w->ex->opt.row_budget_ms);
    if (db_sync_ensure(&w->db, err, sizeof err) != 0 ||
        (r = db_sync_run(&w->db, &st, w->ex->opt.db_timeout_ms, &kind, err, sizeof err)) == NULL ||
        db_result_id(r, &o->id) != 0) {
        PQclear(r);
        order_not_recorded(o, r ? "no id returned" : err);
        order_end_steps(o, clock_mono_ns());
        return;
    }
    PQclear(r);

    /* One ready step at a time, lowest index first: the table's order. */
    unsigned ready;
    while ((ready = order_ready(o)) != 0) {
        if (atomic_load(&w->ex->cancelling)) {
            order_fail(o, OERR_SHUTDOWN, cancel_msg);
            break;
        }
        run_step(w, o, __builtin_ctz(ready));
    }
    order_end_steps(o, clock_mono_ns());
    record_outcome(w, o);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct exec_blocking *ex = w->ex;
    char err[260];
    /* Connect now, so the first order does not pay for it. */
    if (!atomic_load(&ex->cancelling) && db_sync_ensure(&w->db, err, sizeof err) != 0)
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

void exec_blocking_cancel(struct exec_blocking *ex)
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

void exec_blocking_abort(struct exec_blocking *ex)
{
    atomic_store(&ex->cancelling, 2);
    watchdog_fire_all(ex->opt.wd);
    exec_blocking_cancel(ex);
}

void exec_blocking_stats(struct exec_blocking *ex, struct exec_blocking_stats *out)
{
    pthread_mutex_lock(&ex->lock);
    out->workers = ex->opt.workers;
    out->busy = ex->busy;
    out->queued = ex->queued;
    pthread_mutex_unlock(&ex->lock);
}

struct exec_blocking *exec_blocking_new(struct evloop *loop, const struct db_config *db,
                                        const struct exec_blocking_options *opt, char *err, size_t errlen)
{
    struct exec_blocking *ex = calloc(1, sizeof *ex);
    if (!ex) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    ex->loop = loop;
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
        w->db.config = db;
        w->db.wd = opt->wd;
        w->db.connect_timeout_ms = opt->connect_timeout_ms;
        w->easy = curl_easy_init();
        if (!w->easy || kc_setup(w->easy) != 0 || curl_easy_setopt(w->easy, CURLOPT_NOPROGRESS, 0L) != CURLE_OK ||
            curl_easy_setopt(w->easy, CURLOPT_XFERINFOFUNCTION, on_progress) != CURLE_OK ||
            curl_easy_setopt(w->easy, CURLOPT_XFERINFODATA, &ex->cancelling) != CURLE_OK) {
            snprintf(err, errlen, "cannot create a curl handle");
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
        curl_easy_cleanup(w->easy);
        db_sync_close(&w->db);
    }
    free(ex->workers);
    pthread_cond_destroy(&ex->cond);
    pthread_mutex_destroy(&ex->lock);
    free(ex);
}
