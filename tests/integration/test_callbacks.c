/* Integration: no callback runs inside the call that caused it. For each
 * entry point of the loop's services (pgpool_submit, pgpool_abandon,
 * curl_loop_start, curl_loop_abandon, exec_async_submit, _cancel_all,
 * _abort_all), the test counts callbacks, asserts none ran before the call
 * returned, then runs the loop and asserts each ran exactly once (or not
 * at all, once abandoned). Failures found at once are the interesting
 * case: an unreachable database, a Unix socket that vanished between a
 * connection and its replacement, a URL that cannot start. Real
 * PostgreSQL and the real kitchen; run under AddressSanitizer, a callback
 * that frees its request also proves the caller never touches it after. */
#include "brew_offload.h"
#include "brew_on_loop.h"
#include "harness.h"

#include "clock.h"
#include "curl_loop.h"
#include "db.h"
#include "evloop.h"
#include "exec_async.h"
#include "kitchen_client.h"
#include "order.h"
#include "pgpool.h"
#include "store_pgpool.h"
#include "watchdog.h"

#include <CUnit/Basic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define GUARD_NS (10 * NS_PER_SEC)

static struct child kitchen;
static PGconn *db;

static int setup(void)
{
    if (child_start(&kitchen, "coffee-kitchen", NULL) != 0)
        return -1;
    db = db_open();
    return db ? 0 : -1;
}

static int teardown(void)
{
    PQfinish(db);
    return child_stop(&kitchen, 10) == 0 ? 0 : -1;
}

/* What the callbacks saw. */
static struct {
    int calls[4];
    int status[4];
    int guard_fired;
    int want; /* the loop stops once this many calls were counted */
} g;

static int total_calls(void)
{
    return g.calls[0] + g.calls[1] + g.calls[2] + g.calls[3];
}

static void on_guard(struct evloop *loop, struct ev_timer *t)
{
    (void)t;
    g.guard_fired = 1;
    evloop_stop(loop);
}

static void count(struct evloop *loop, int i, int status)
{
    g.calls[i]++;
    g.status[i] = status;
    if (total_calls() >= g.want)
        evloop_stop(loop);
}

/* Runs loop until want callbacks were counted, or the guard fires. */
static void run_until(struct evloop *loop, int want)
{
    g.want = want;
    if (total_calls() >= want)
        return;
    struct ev_timer guard = {.cb = on_guard};
    CU_ASSERT_EQUAL(evloop_timer_start(loop, &guard, GUARD_NS), 0);
    CU_ASSERT_EQUAL(evloop_run(loop), 0);
    evloop_timer_stop(loop, &guard);
    CU_ASSERT_FALSE(g.guard_fired);
}

/* ---- pgpool ------------------------------------------------------------- */

static struct evloop *the_loop;

struct counted_q {
    struct pgq q;
    int index;
};

static void on_q(struct pgq *q, int status, const PGresult *res, const char *err)
{
    (void)res, (void)err;
    struct counted_q *c = container_of(q, struct counted_q, q);
    count(the_loop, c->index, status);
}

static struct db_config *config_for(const char *conninfo)
{
    char err[300];
    struct db_config *c = db_config_new(conninfo, 10000, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL(c);
    if (!c)
        fprintf(stderr, "  %s\n", err);
    return c;
}

static struct pgpool *pool_of(struct evloop *loop, struct db_config *c, int size)
{
    struct pgpool_options opt = {
        .size = size, .connect_timeout_ms = 5000, .wait_timeout_ms = 5000, .query_timeout_ms = 5000};
    struct pgpool *p = pgpool_new(loop, c, &opt);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    return p;
}

/* An unreachable database fails a query at once: on a later pass. */
static void test_submit_unreachable(void)
{
    memset(&g, 0, sizeof g);
    the_loop = evloop_new(1024);
    struct db_config *c = config_for("host=/nonexistent-coffee-socket-dir dbname=x");
    struct pgpool *p = pool_of(the_loop, c, 1);
    struct db_stmt st = {.what = "ping", .sql = "SELECT 1"};
    struct counted_q q = {.q = {.stmt = &st, .cb = on_q}, .index = 0};
    pgpool_submit(p, &q.q);
    CU_ASSERT_EQUAL(total_calls(), 0); /* not inside the call */
    run_until(the_loop, 1);
    CU_ASSERT_EQUAL(g.calls[0], 1);
    CU_ASSERT_EQUAL(g.status[0], PGQ_UNAVAILABLE);
    pgpool_free(p);
    db_config_free(c);
    evloop_free(the_loop);
}

static void on_tick(struct evloop *loop, struct ev_timer *t)
{
    (void)t;
    evloop_stop(loop);
}

/* Runs the loop for about ms. */
static void run_for(struct evloop *loop, int64_t ms)
{
    struct ev_timer t = {.cb = on_tick};
    CU_ASSERT_EQUAL(evloop_timer_start(loop, &t, ms * NS_PER_MS), 0);
    evloop_run(loop);
    evloop_timer_stop(loop, &t);
}

/* Abandoning a running query replaces its connection; when that reconnect
 * fails at once (here: its Unix socket vanished), the queries waiting fail
 * too, and their callbacks must run later, not inside pgpool_abandon. */
static void test_abandon_with_failing_reconnect(void)
{
    memset(&g, 0, sizeof g);
    PGresult *r = PQexec(db, "SELECT split_part(current_setting('unix_socket_directories'), ',', 1),"
                             " current_setting('port')");
    CU_ASSERT_FATAL(PQresultStatus(r) == PGRES_TUPLES_OK);
    char dir[] = "/tmp/coffee-sock.XXXXXX", target[600], link_path[600], conninfo[800];
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    snprintf(target, sizeof target, "%s/.s.PGSQL.%s", PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1));
    snprintf(link_path, sizeof link_path, "%s/.s.PGSQL.%s", dir, PQgetvalue(r, 0, 1));
    snprintf(conninfo, sizeof conninfo, "host=%s port=%s user=%s dbname=%s", dir, PQgetvalue(r, 0, 1), PQuser(db),
             PQdb(db));
    PQclear(r);
    CU_ASSERT_EQUAL_FATAL(symlink(target, link_path), 0);

    the_loop = evloop_new(1024);
    struct db_config *c = config_for(conninfo);
    struct pgpool *p = pool_of(the_loop, c, 1);
    struct db_stmt sleep2 = {.what = "sleep", .sql = "SELECT pg_sleep(2)"};
    struct db_stmt ping = {.what = "ping", .sql = "SELECT 1"};
    struct counted_q running = {.q = {.stmt = &sleep2, .cls = PGQ_LONG, .cb = on_q}, .index = 0};
    struct counted_q waiting = {.q = {.stmt = &ping, .cb = on_q}, .index = 1};
    pgpool_submit(p, &running.q);
    struct pgpool_stats ps = {0};
    for (int i = 0; i < 200 && ps.busy == 0; i++) { /* until the sleep runs (bounded) */
        run_for(the_loop, 10);
        pgpool_stats(p, &ps);
    }
    CU_ASSERT_EQUAL_FATAL(ps.busy, 1);
    pgpool_submit(p, &waiting.q);
    run_for(the_loop, 10);
    pgpool_stats(p, &ps);
    CU_ASSERT_EQUAL(ps.waiting, 1);
    CU_ASSERT_EQUAL(total_calls(), 0);
    CU_ASSERT_EQUAL(unlink(link_path), 0);
    pgpool_abandon(p, &running.q);
    CU_ASSERT_EQUAL(total_calls(), 0); /* the waiting one failed, but not inside the call */
    run_until(the_loop, 1);
    CU_ASSERT_EQUAL(g.calls[0], 0); /* abandoned: never called */
    CU_ASSERT_EQUAL(g.calls[1], 1);
    CU_ASSERT_EQUAL(g.status[1], PGQ_UNAVAILABLE);
    pgpool_free(p);
    db_config_free(c);
    evloop_free(the_loop);
    rmdir(dir);
}

/* A query abandoned after its outcome was recorded, before its callback
 * ran: never called. */
static void test_abandon_completed(void)
{
    memset(&g, 0, sizeof g);
    the_loop = evloop_new(1024);
    struct db_config *c = config_for("host=/nonexistent-coffee-socket-dir dbname=x");
    struct pgpool *p = pool_of(the_loop, c, 1);
    struct db_stmt st = {.what = "ping", .sql = "SELECT 1"};
    struct counted_q a = {.q = {.stmt = &st, .cb = on_q}, .index = 0};
    struct counted_q b = {.q = {.stmt = &st, .cb = on_q}, .index = 1};
    pgpool_submit(p, &a.q);
    pgpool_submit(p, &b.q);
    pgpool_abandon(p, &a.q);
    run_until(the_loop, 1);
    CU_ASSERT_EQUAL(g.calls[0], 0);
    CU_ASSERT_EQUAL(g.calls[1], 1);
    pgpool_free(p);
    db_config_free(c);
    evloop_free(the_loop);
}

/* ---- curl_loop ------------------------------------------------------------ */

struct counted_h {
    struct hreq h;
    struct kc_response resp;
    const char *url;
    int index;
};

static int prepare(CURL *e, void *arg)
{
    struct counted_h *c = arg;
    return c->url[0] ? kc_prepare(e, c->url, 5000, &c->resp) : -1;
}

/* Frees its request, as an order that ends does: the loop must not touch
 * it after the call. */
static void on_h(struct hreq *h, CURLcode code)
{
    struct counted_h *c = container_of(h, struct counted_h, h);
    int i = c->index;
    free(c);
    count(the_loop, i, (int)code);
}

static struct counted_h *new_h(int index)
{
    struct counted_h *c = calloc(1, sizeof *c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    c->h.cb = on_h;
    c->index = index;
    return c;
}

static void test_curl_get_and_abandon(void)
{
    memset(&g, 0, sizeof g);
    the_loop = evloop_new(1024);
    struct curl_loop *cl = curl_loop_new(the_loop, 4, 0, kc_setup);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cl);
    char url[160];
    snprintf(url, sizeof url, "%s/kettle?ms=10", kitchen.base_url);
    struct counted_h *ok = new_h(0), *bad = new_h(1), *dropped = new_h(2);
    ok->url = dropped->url = url;
    bad->url = ""; /* cannot start */
    curl_loop_start(cl, &ok->h, prepare, ok);
    curl_loop_start(cl, &bad->h, prepare, bad);
    curl_loop_start(cl, &dropped->h, prepare, dropped);
    CU_ASSERT_EQUAL(total_calls(), 0);
    curl_loop_abandon(cl, &dropped->h);
    CU_ASSERT_EQUAL(total_calls(), 0);
    free(dropped);
    run_until(the_loop, 2);
    CU_ASSERT_EQUAL(g.calls[0], 1);
    CU_ASSERT_EQUAL(g.status[0], CURLE_OK);
    CU_ASSERT_EQUAL(g.calls[1], 1);
    CU_ASSERT_NOT_EQUAL(g.status[1], CURLE_OK);
    CU_ASSERT_EQUAL(g.calls[2], 0);
    curl_loop_free(cl);
    evloop_free(the_loop);
}

/* ---- exec_async ----------------------------------------------------------- */

static void on_order(struct order *o, void *arg)
{
    (void)arg;
    int i = (int)(intptr_t)o->done_arg;
    count(the_loop, i, o->status);
}

/* submit, cancel_all and abort_all never end an order inside the call. */
static void test_exec_async_entry_points(void)
{
    memset(&g, 0, sizeof g);
    the_loop = evloop_new(1024);
    struct db_config *c = config_for(getenv("DATABASE_URL"));
    struct pgpool_setup setup = {.step = db_setup_step, .done = db_setup_done, .arg = c};
    struct pgpool_options popt = {
        .size = 2, .connect_timeout_ms = 5000, .wait_timeout_ms = 5000, .query_timeout_ms = 5000, .setup = setup};
    struct pgpool *p = pgpool_new(the_loop, c, &popt);
    struct curl_loop *cl = curl_loop_new(the_loop, 4, 0, kc_setup);
    struct watchdog *wd = watchdog_new();
    CU_ASSERT_FATAL(p && cl && wd);
    struct exec_async_options opt = {.step_slack_ms = 5000, .db_timeout_ms = 5000, .row_budget_ms = 60000};
    struct store_pgpool *store = store_pgpool_new(the_loop, p);
    struct brew_on_loop *loop_brew = brew_on_loop_new(the_loop, c, wd, 5000);
    struct kc_service *ks = kc_service_new(the_loop, cl, kitchen.base_url);
    char err[200];
    struct brew_offload *offload = brew_offload_new(the_loop, c, wd, 5000, 1, err, sizeof err);
    CU_ASSERT_FATAL(store && loop_brew && ks && offload);
    struct exec_async_services svc = {.store = store_pgpool_store(store), .kitchen = kc_service(ks)};
    svc.brew[BREW_POOL] = store_pgpool_brew(store);
    svc.brew[BREW_ON_LOOP] = brew_on_loop_service(loop_brew);
    svc.brew[BREW_OFFLOAD] = brew_offload_service(offload);
    struct exec_async *ex = exec_async_new(the_loop, &svc, &opt);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ex);
    int mode = wf_mode_lookup("async");
    struct order *o[3];
    for (int i = 0; i < 3; i++) {
        o[i] = order_new(mode, 0.2, on_order, (void *)(intptr_t)i);
        CU_ASSERT_PTR_NOT_NULL_FATAL(o[i]);
    }
    exec_async_submit(ex, o[0]);
    exec_async_submit(ex, o[1]);
    CU_ASSERT_EQUAL(total_calls(), 0);
    run_for(the_loop, 100); /* both under way: rows inserted, kitchen calls in flight */
    exec_async_cancel_all(ex);
    CU_ASSERT_EQUAL(total_calls(), 0);
    run_until(the_loop, 2);
    CU_ASSERT_EQUAL(g.calls[0], 1);
    CU_ASSERT_EQUAL(g.calls[1], 1);
    CU_ASSERT_EQUAL(g.status[0], ORDER_FAILED);
    CU_ASSERT_EQUAL(o[0]->error, OERR_SHUTDOWN);
    exec_async_submit(ex, o[2]);
    run_for(the_loop, 50);
    exec_async_abort_all(ex);
    CU_ASSERT_EQUAL(g.calls[2], 0);
    run_until(the_loop, 3);
    CU_ASSERT_EQUAL(g.calls[2], 1);
    CU_ASSERT_EQUAL(o[2]->error, OERR_SHUTDOWN);
    run_for(the_loop, 50); /* let the abandoned connections be replaced */
    for (int i = 0; i < 3; i++)
        order_free(o[i]);
    exec_async_free(ex);
    kc_service_free(ks);
    brew_on_loop_free(loop_brew);
    brew_offload_free(offload);
    store_pgpool_free(store);
    curl_loop_free(cl);
    pgpool_free(p);
    watchdog_free(wd);
    db_config_free(c);
    evloop_free(the_loop);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_ALL);
    static const struct harness_test tests[] = {
        {"pgpool_submit to an unreachable database: called back later", test_submit_unreachable},
        {"pgpool_abandon whose reconnect fails at once: waiting queries called back later",
         test_abandon_with_failing_reconnect},
        {"pgpool_abandon of a completed query: never called back", test_abandon_completed},
        {"curl_loop_start (also failing at start) and curl_loop_abandon", test_curl_get_and_abandon},
        {"exec_async submit, cancel_all, abort_all: on_done never inside the call", test_exec_async_entry_points},
        {NULL, NULL},
    };
    int rc = harness_main("callbacks", setup, teardown, tests);
    curl_global_cleanup();
    return rc;
}
