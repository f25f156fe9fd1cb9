/* worker_io: a blocking worker's kitchen call and statements (see
 * worker_io.h).
 *
 * Owns: per worker, its easy handle, its response buffer and its
 * connection (struct wio), freed by worker_free.
 * Must never: run on the loop thread (every call here blocks), or share a
 * handle between workers. */
#include "worker_io.h"

#include "db.h"
#include "io.h"
#include "kitchen_client.h"
#include "order.h"
#include "sync_pool.h"
#include "watchdog.h"

#include <stdio.h>
#include <stdlib.h>

static const char cancel_msg[] = "cancelled: the server is shutting down";

struct wio {
    const struct worker_io_config *cfg;
    CURL *easy;
    struct db_sync db;
    struct kc_response resp;
};

/* curl's progress callback: a non-zero return aborts the transfer. */
static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    return atomic_load((const atomic_int *)arg);
}

static void worker_free(void *arg)
{
    struct wio *w = arg;
    if (!w)
        return;
    curl_easy_cleanup(w->easy);
    db_sync_close(&w->db);
    free(w);
}

static void *worker_new(void *ctx, int index, const atomic_int *cancelling, char *err, size_t errlen)
{
    (void)index;
    const struct worker_io_config *cfg = ctx;
    struct wio *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    w->cfg = cfg;
    w->db.config = cfg->db;
    w->db.wd = cfg->wd;
    w->db.connect_timeout_ms = cfg->connect_timeout_ms;
    w->easy = curl_easy_init();
    if (!w->easy || kc_setup(w->easy) != 0 || curl_easy_setopt(w->easy, CURLOPT_NOPROGRESS, 0L) != CURLE_OK ||
        curl_easy_setopt(w->easy, CURLOPT_XFERINFOFUNCTION, on_progress) != CURLE_OK ||
        curl_easy_setopt(w->easy, CURLOPT_XFERINFODATA, (void *)cancelling) != CURLE_OK) {
        snprintf(err, errlen, "cannot create a curl handle");
        worker_free(w);
        return NULL;
    }
    return w;
}

static int worker_connect(void *arg, char *msg, size_t len)
{
    struct wio *w = arg;
    return db_sync_ensure(&w->db, msg, len);
}

static int kitchen_call(void *arg, const struct kitchen_args *a, char *result, size_t rlen, char *msg, size_t mlen)
{
    struct wio *w = arg;
    char url[512];
    kc_set_trace(&w->resp, a->traceparent);
    if (kc_url(a->step, w->cfg->kitchen_url, a->scale, url, sizeof url) != 0 ||
        kc_prepare(w->easy, url, a->timeout_ms, &w->resp) != 0) {
        snprintf(msg, mlen, "cannot prepare the kitchen request");
        return OERR_KITCHEN;
    }
    CURLcode code = curl_easy_perform(w->easy);
    int err = kc_result(w->easy, code, &w->resp, result, rlen, msg, mlen);
    if (code == CURLE_ABORTED_BY_CALLBACK) {
        snprintf(msg, mlen, "%s", cancel_msg);
        return OERR_SHUTDOWN;
    }
    return err;
}

/* Runs st on w's connection, or on one borrowed from the shared pool for
 * this statement only (connecting first when it is not, or was closed by
 * the server since: nothing was sent on it, so nothing is lost). Returns
 * the result (PQclear it), or NULL with *err an order_error, msg set, and
 * *lost when the connection went away. */
static PGresult *run(struct wio *w, const struct db_stmt *st, long timeout_ms, int *err, int *lost, char *msg,
                     size_t mlen)
{
    *err = OERR_DB;
    *lost = 0;
    struct sync_pool *pool = w->cfg->pool;
    struct db_sync *d = pool ? sync_pool_get(pool, w->cfg->pool_wait_ms, msg, mlen) : &w->db;
    if (!d)
        return NULL; /* no connection free in time: nothing was sent */
    PGresult *r = NULL;
    if (db_sync_ensure(d, msg, mlen) == 0) {
        r = db_sync_run(d, st, timeout_ms, err, msg, mlen);
        if (!r)
            *lost = !db_sync_ok(d);
    }
    if (pool)
        sync_pool_put(pool, d);
    return r;
}

static int insert(void *arg, const struct order *o, double budget_ms, long timeout_ms, int64_t *id, char *msg,
                  size_t mlen)
{
    struct db_stmt st;
    int err, lost;
    db_stmt_insert_order(&st, o, budget_ms);
    PGresult *r = run(arg, &st, timeout_ms, &err, &lost, msg, mlen);
    if (!r)
        return err;
    if (db_result_id(r, id) != 0)
        *id = 0;
    PQclear(r);
    return 0;
}

static int brew(void *arg, const struct order *o, int step, long timeout_ms, char *result, size_t rlen, char *msg,
                size_t mlen)
{
    struct db_stmt st;
    int err, lost;
    if (db_stmt_brew(&st, o, step) != 0) {
        snprintf(msg, mlen, "ingredients too long");
        return OERR_INTERNAL;
    }
    PGresult *r = run(arg, &st, timeout_ms, &err, &lost, msg, mlen);
    if (r) {
        const char *why = NULL;
        err = db_brew_result(r, result, rlen, &why);
        if (err)
            snprintf(msg, mlen, "%s", why);
    }
    PQclear(r);
    db_stmt_release(&st);
    return err;
}

static int finish(void *arg, struct order *o, long timeout_ms, int *lost, char *msg, size_t mlen)
{
    struct db_stmt st;
    int err;
    *lost = 0;
    if (db_stmt_finish(&st, o, timeout_ms) != 0) {
        snprintf(msg, mlen, "out of memory");
        return OERR_INTERNAL;
    }
    PGresult *r = run(arg, &st, timeout_ms, &err, lost, msg, mlen);
    if (r && db_finish_applied(r)) {
        err = 0;
    } else if (r) { /* it ran past its deadline (db.h): the row is not written */
        err = OERR_DB;
        snprintf(msg, mlen, "the row's update ran past its deadline");
    }
    PQclear(r);
    db_stmt_release(&st);
    return err;
}

static void abort_all(void *ctx)
{
    const struct worker_io_config *cfg = ctx;
    watchdog_fire_all(cfg->wd);
    if (cfg->pool) /* nobody waits for a connection any more */
        sync_pool_cancel(cfg->pool);
}

struct blocking_io worker_io(const struct worker_io_config *cfg)
{
    return (struct blocking_io){.worker_new = worker_new,
                                .worker_free = worker_free,
                                .kitchen = kitchen_call,
                                .insert = insert,
                                .brew = brew,
                                .finish = finish,
                                .abort = abort_all,
                                .ctx = (void *)cfg,
                                .connect = cfg->pool ? NULL : worker_connect};
}
