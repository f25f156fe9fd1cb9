/* probes: the front's own queries and readiness checks (see probes.h).
 * Owns: a probe's answer text and statement until probe_release. Must
 * never: block, or call back inside a probe_* call (pgpool and curl_loop
 * never do). */
#include "probes.h"

#include "list.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* /orders/{id} and /stats: one row of JSON text, or an outcome. */
static void on_lookup(struct pgq *q, int status, const PGresult *res, const char *err)
{
    struct probe *p = container_of(q, struct probe, q);
    p->pending = 0;
    db_stmt_release(&p->stmt);
    if (status == PGQ_FAILED && p->stats) {
        /* The statement is fixed: only the since it was given can fail it. */
        p->outcome = PROBE_BAD_INPUT;
        snprintf(p->msg, sizeof p->msg, "bad since: %s", err);
    } else if (status != PGQ_OK) {
        p->outcome = PROBE_UNAVAILABLE;
        snprintf(p->msg, sizeof p->msg, "database unavailable: %s", err);
    } else if (PQntuples(res) == 0) {
        p->outcome = PROBE_NOT_FOUND;
    } else if (!(p->text = strdup(PQgetvalue(res, 0, 0)))) {
        p->outcome = PROBE_UNAVAILABLE;
        snprintf(p->msg, sizeof p->msg, "out of memory");
    } else {
        p->outcome = PROBE_FOUND;
    }
    p->cb(p);
}

static void start_lookup(struct probe *p, struct pgpool *pool)
{
    p->pool = pool;
    p->text = NULL;
    p->pending = 1;
    p->q = (struct pgq){
        .stmt = &p->stmt, .cls = PGQ_SHORT, .cb = on_lookup, .wait_ms = PROBE_QUERY_MS, .timeout_ms = PROBE_QUERY_MS};
    pgpool_submit(pool, &p->q);
}

void probe_order(struct probe *p, struct pgpool *pool, int64_t id)
{
    db_stmt_get_order(&p->stmt, id);
    p->stats = 0;
    start_lookup(p, pool);
}

void probe_stats(struct probe *p, struct pgpool *pool, const char *since)
{
    db_stmt_stats(&p->stmt, since);
    p->stats = 1;
    start_lookup(p, pool);
}

static void ready_part_done(struct probe *p)
{
    if (--p->pending > 0)
        return;
    p->ready = !strcmp(p->db_state, "ok") && !strcmp(p->kitchen_state, "ok");
    p->cb(p);
}

static void on_ready_db(struct pgq *q, int status, const PGresult *res, const char *err)
{
    (void)res;
    struct probe *p = container_of(q, struct probe, q);
    snprintf(p->db_state, sizeof p->db_state, "%s", status == PGQ_OK ? "ok" : err);
    q->stmt = NULL; /* done with it */
    ready_part_done(p);
}

static void on_ready_kitchen(struct hreq *h, CURLcode code)
{
    struct probe *p = container_of(h, struct probe, http);
    long http = 0;
    curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &http);
    if (code != CURLE_OK)
        snprintf(p->kitchen_state, sizeof p->kitchen_state, "unreachable: %s", curl_easy_strerror(code));
    else if (http != 200)
        snprintf(p->kitchen_state, sizeof p->kitchen_state, "answered HTTP %ld", http);
    else
        snprintf(p->kitchen_state, sizeof p->kitchen_state, "ok");
    p->curl = NULL; /* done with it */
    ready_part_done(p);
}

static int prepare_livez(CURL *e, void *arg)
{
    struct probe *p = arg;
    char url[512];
    int n = snprintf(url, sizeof url, "%s/livez", p->kitchen_url);
    if (n < 0 || (size_t)n >= sizeof url)
        return -1;
    return kc_prepare(e, url, 2 * PROBE_READY_MS, &p->resp);
}

void probe_ready(struct probe *p, struct pgpool *pool, struct curl_loop *curl, const char *kitchen_url)
{
    p->pool = pool;
    p->curl = curl;
    p->kitchen_url = kitchen_url;
    p->text = NULL;
    p->pending = 2;
    db_stmt_ping(&p->stmt);
    p->q = (struct pgq){
        .stmt = &p->stmt, .cls = PGQ_SHORT, .cb = on_ready_db, .wait_ms = PROBE_READY_MS, .timeout_ms = PROBE_READY_MS};
    p->http.cb = on_ready_kitchen;
    pgpool_submit(pool, &p->q);
    curl_loop_start(curl, &p->http, prepare_livez, p);
}

void probe_release(struct probe *p)
{
    free(p->text);
    p->text = NULL;
    db_stmt_release(&p->stmt);
}
