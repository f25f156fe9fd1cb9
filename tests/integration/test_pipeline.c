/* Integration: pgpool's pipelined connection (pgpool.h, "Pipeline mode")
 * against the real PostgreSQL. A pool of two (one pipelined, one plain)
 * carries several short queries at once on one backend; each commits and
 * fails alone; a lost connection ends every query it carried; a run-bound
 * timeout replaces the connection and ends the others on it without
 * sending them again; an abandoned query's result is dropped while the
 * connection stays. Callbacks are counted as in test_callbacks: none runs
 * inside the call that caused it, each runs once (or never, abandoned). */
#include "harness.h"

#include "clock.h"
#include "db.h"
#include "evloop.h"
#include "pgpool.h"

#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GUARD_NS (10 * NS_PER_SEC)
#define MAXQ 50

static PGconn *db;

static int setup(void)
{
    db = db_open();
    if (!db)
        return -1;
    PGresult *r = PQexec(
        db,
        "SET client_min_messages = warning; DROP TABLE IF EXISTS pipeline_rows; CREATE TABLE pipeline_rows (v int)");
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    return ok ? 0 : -1;
}

static int teardown(void)
{
    PQclear(PQexec(db, "DROP TABLE IF EXISTS pipeline_rows"));
    PQfinish(db);
    return 0;
}

/* One query and what its callback saw. */
struct tq {
    struct pgq q;
    struct db_stmt st;
    int calls;
    int status;
    char value[64]; /* first column of the first row */
    char err[240];
    int64_t ended_ns;
};

static struct {
    struct evloop *loop;
    int calls, want, guard_fired;
} g;

static void on_tq(struct pgq *q, int status, const PGresult *res, const char *err)
{
    struct tq *t = container_of(q, struct tq, q);
    t->calls++;
    t->status = status;
    t->ended_ns = clock_mono_ns();
    snprintf(t->err, sizeof t->err, "%s", err ? err : "");
    if (res && PQntuples(res) > 0)
        snprintf(t->value, sizeof t->value, "%s", PQgetvalue(res, 0, 0));
    if (++g.calls >= g.want)
        evloop_stop(g.loop);
}

static void on_guard(struct evloop *loop, struct ev_timer *t)
{
    (void)t;
    g.guard_fired = 1;
    evloop_stop(loop);
}

/* Runs the loop until want callbacks in all were counted, or the guard. */
static void run_until(int want)
{
    g.want = want;
    if (g.calls >= want)
        return;
    struct ev_timer guard = {.cb = on_guard};
    CU_ASSERT_EQUAL(evloop_timer_start(g.loop, &guard, GUARD_NS), 0);
    CU_ASSERT_EQUAL(evloop_run(g.loop), 0);
    evloop_timer_stop(g.loop, &guard);
    CU_ASSERT_FALSE(g.guard_fired);
}

static void on_tick(struct evloop *loop, struct ev_timer *t)
{
    (void)t;
    evloop_stop(loop);
}

static void run_for(int64_t ms)
{
    struct ev_timer t = {.cb = on_tick};
    CU_ASSERT_EQUAL(evloop_timer_start(g.loop, &t, ms * NS_PER_MS), 0);
    evloop_run(g.loop);
    evloop_timer_stop(g.loop, &t);
}

static struct db_config *config;

/* A pool of two, one of them pipelined, with both connections open. */
static struct pgpool *pool_new(void)
{
    memset(&g, 0, sizeof g);
    g.loop = evloop_new(1024);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g.loop);
    char err[300];
    config = db_config_new(getenv("DATABASE_URL"), 10000, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(config);
    struct pgpool_options opt = {
        .size = 2, .pipelined = 1, .connect_timeout_ms = 5000, .wait_timeout_ms = 5000, .query_timeout_ms = 5000};
    struct pgpool *p = pgpool_new(g.loop, config, &opt);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    struct pgpool_stats ps = {0};
    for (int i = 0; i < 500 && ps.connected < 2; i++) {
        run_for(10);
        pgpool_stats(p, &ps);
    }
    CU_ASSERT_EQUAL_FATAL(ps.connected, 2);
    return p;
}

static void pool_free(struct pgpool *p)
{
    pgpool_free(p);
    db_config_free(config);
    evloop_free(g.loop);
}

/* Readies t to run sql with up to one parameter (NULL = none). */
static void tq_init(struct tq *t, const char *sql, const char *param)
{
    memset(t, 0, sizeof *t);
    t->st = (struct db_stmt){.what = "test", .sql = sql, .nparams = param ? 1 : 0};
    if (param) {
        snprintf(t->st.num[0], sizeof t->st.num[0], "%s", param);
        t->st.values[0] = t->st.num[0];
    }
    t->q = (struct pgq){.stmt = &t->st, .cls = PGQ_SHORT, .cb = on_tq};
}

/* Runs one query to its end; returns its value (static). */
static const char *one(struct pgpool *p, const char *sql)
{
    static struct tq t;
    tq_init(&t, sql, NULL);
    int before = g.calls;
    pgpool_submit(p, &t.q);
    run_until(before + 1);
    CU_ASSERT_EQUAL(t.status, PGQ_OK);
    return t.value;
}

/* MAXQ queries submitted on one pass travel together on the pipelined
 * connection: one backend answers them all, each with its own result. */
static void test_many_on_one_connection(void)
{
    struct pgpool *p = pool_new();
    static struct tq t[MAXQ];
    for (int i = 0; i < MAXQ; i++) {
        char v[16];
        snprintf(v, sizeof v, "%d", i);
        tq_init(&t[i], "SELECT $1::int * 10, pg_backend_pid()", v);
        pgpool_submit(p, &t[i].q);
    }
    CU_ASSERT_EQUAL(g.calls, 0);
    run_for(0);
    struct pgpool_stats ps;
    pgpool_stats(p, &ps);
    CU_ASSERT_EQUAL(ps.waiting, 0); /* all sent at once: none waits */
    run_until(MAXQ);
    int pid_count = 0;
    char pid[64] = "";
    for (int i = 0; i < MAXQ; i++) {
        char want[16];
        snprintf(want, sizeof want, "%d", i * 10);
        CU_ASSERT_EQUAL(t[i].calls, 1);
        CU_ASSERT_EQUAL(t[i].status, PGQ_OK);
        CU_ASSERT_STRING_EQUAL(t[i].value, want);
    }
    /* Again, reading each one's backend: all the same one. */
    for (int i = 0; i < MAXQ; i++) {
        tq_init(&t[i], "SELECT pg_backend_pid()", NULL);
        pgpool_submit(p, &t[i].q);
    }
    run_until(2 * MAXQ);
    snprintf(pid, sizeof pid, "%s", t[0].value);
    for (int i = 0; i < MAXQ; i++)
        pid_count += t[i].status == PGQ_OK && !strcmp(t[i].value, pid);
    printf("\n  %d queries at once: %d of them on backend %s", MAXQ, pid_count, pid);
    CU_ASSERT_EQUAL(pid_count, MAXQ);
    pool_free(p);
}

static long rows_with(const char *values)
{
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM pipeline_rows WHERE v IN (%s)", values);
    PGresult *r = PQexec(db, sql);
    long n = PQresultStatus(r) == PGRES_TUPLES_OK ? strtol(PQgetvalue(r, 0, 0), NULL, 10) : -1;
    PQclear(r);
    return n;
}

/* A failing statement between two good ones on the pipeline fails alone:
 * the ones around it commit (each has its own Sync), and the connection
 * goes on serving. */
static void test_failure_alone(void)
{
    struct pgpool *p = pool_new();
    const char *pid = one(p, "SELECT pg_backend_pid()");
    char pid_before[64];
    snprintf(pid_before, sizeof pid_before, "%s", pid);
    static struct tq t[3];
    tq_init(&t[0], "INSERT INTO pipeline_rows VALUES ($1::int) RETURNING v", "1");
    tq_init(&t[1], "INSERT INTO pipeline_rows VALUES (1 / ($1::int - 2)) RETURNING v", "2"); /* division by zero */
    tq_init(&t[2], "INSERT INTO pipeline_rows VALUES ($1::int) RETURNING v", "3");
    int before = g.calls;
    for (int i = 0; i < 3; i++)
        pgpool_submit(p, &t[i].q);
    run_until(before + 3);
    CU_ASSERT_EQUAL(t[0].status, PGQ_OK);
    CU_ASSERT_EQUAL(t[1].status, PGQ_FAILED);
    CU_ASSERT_PTR_NOT_NULL(strstr(t[1].err, "division by zero"));
    CU_ASSERT_EQUAL(t[2].status, PGQ_OK);
    CU_ASSERT_STRING_EQUAL(t[2].value, "3");
    CU_ASSERT_EQUAL(rows_with("1, 3"), 2);
    printf("\n  ok, failed (%s), ok: rows 1 and 3 committed", t[1].err);
    CU_ASSERT_STRING_EQUAL(one(p, "SELECT pg_backend_pid()"), pid_before); /* same connection */
    pool_free(p);
}

/* The pipelined backend is terminated with several queries in flight:
 * every one of them ends with PGQ_UNAVAILABLE, on a later pass, and the
 * pool serves again on a new connection. */
static void test_connection_lost(void)
{
    struct pgpool *p = pool_new();
    char pid[64];
    snprintf(pid, sizeof pid, "%s", one(p, "SELECT pg_backend_pid()"));
    enum { N = 5 };
    static struct tq t[N];
    int before = g.calls;
    for (int i = 0; i < N; i++) {
        tq_init(&t[i], "SELECT pg_sleep(2)", NULL);
        pgpool_submit(p, &t[i].q);
    }
    run_for(100); /* all sent; the first one sleeps */
    CU_ASSERT_EQUAL(g.calls, before);
    char sql[120];
    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%s)", pid);
    PGresult *r = PQexec(db, sql);
    CU_ASSERT(PQresultStatus(r) == PGRES_TUPLES_OK && !strcmp(PQgetvalue(r, 0, 0), "t"));
    PQclear(r);
    int64_t t0 = clock_mono_ns();
    run_until(before + N);
    for (int i = 0; i < N; i++) {
        CU_ASSERT_EQUAL(t[i].calls, 1);
        CU_ASSERT_EQUAL(t[i].status, PGQ_UNAVAILABLE);
    }
    printf("\n  backend %s terminated: %d in flight ended in %.0f ms: %s", pid, N, ns_to_ms(clock_mono_ns() - t0),
           t[N - 1].err);
    CU_ASSERT(ns_to_ms(clock_mono_ns() - t0) < 1500); /* not at the sleeps' end */
    const char *again = one(p, "SELECT pg_backend_pid()");
    CU_ASSERT(strcmp(again, pid) != 0);
    pool_free(p);
}

/* Both backends of the pool are terminated while it has nothing in flight
 * (db_terminate waits until their processes have exited), and the loop
 * has not run since: their FATAL notices and closes wait in the sockets. A short
 * and a long query submitted now both succeed, on new connections: a
 * connection whose backend is gone is noticed before anything is sent on
 * it, not by losing the query sent there. */
static void test_idle_backend_gone(void)
{
    struct pgpool *p = pool_new();
    char pids[2][64];
    static struct tq brew;
    snprintf(pids[0], sizeof pids[0], "%s", one(p, "SELECT pg_backend_pid()"));
    tq_init(&brew, "SELECT pg_backend_pid()", NULL);
    brew.q.cls = PGQ_LONG;
    int before = g.calls;
    pgpool_submit(p, &brew.q);
    run_until(before + 1);
    CU_ASSERT_EQUAL_FATAL(brew.status, PGQ_OK);
    snprintf(pids[1], sizeof pids[1], "%s", brew.value);
    char where[160];
    snprintf(where, sizeof where, "pid IN (%s, %s)", pids[0], pids[1]);
    long left;
    CU_ASSERT_EQUAL(db_terminate(db, where, 5000, &left), 2);
    CU_ASSERT_EQUAL(left, 0);
    static struct tq ping, brew2;
    tq_init(&ping, "SELECT pg_backend_pid()", NULL);
    tq_init(&brew2, "SELECT pg_backend_pid()", NULL);
    brew2.q.cls = PGQ_LONG;
    before = g.calls;
    pgpool_submit(p, &ping.q);
    pgpool_submit(p, &brew2.q);
    run_until(before + 2);
    printf("\n  backends %s and %s terminated while idle; then: %d (%s) on %s, %d (%s) on %s", pids[0], pids[1],
           ping.status, ping.err, ping.value, brew2.status, brew2.err, brew2.value);
    CU_ASSERT_EQUAL(ping.status, PGQ_OK);
    CU_ASSERT_EQUAL(brew2.status, PGQ_OK);
    for (int i = 0; i < 2; i++) {
        CU_ASSERT(strcmp(ping.value, pids[i]) != 0);
        CU_ASSERT(strcmp(brew2.value, pids[i]) != 0);
    }
    pool_free(p);
}

/* One pipelined query overruns its run bound: it ends with PGQ_TIMEOUT,
 * the one behind it with PGQ_UNAVAILABLE at the same time (not sent
 * again: the row it writes must not be written twice), and the
 * connection is replaced. */
static void test_timeout_replaces(void)
{
    struct pgpool *p = pool_new();
    char pid[64];
    snprintf(pid, sizeof pid, "%s", one(p, "SELECT pg_backend_pid()"));
    static struct tq slow, behind;
    tq_init(&slow, "SELECT pg_sleep(1)", NULL);
    slow.q.timeout_ms = 200;
    tq_init(&behind, "INSERT INTO pipeline_rows VALUES ($1::int) RETURNING v", "10");
    int before = g.calls;
    int64_t t0 = clock_mono_ns();
    pgpool_submit(p, &slow.q);
    pgpool_submit(p, &behind.q);
    run_until(before + 2);
    double slow_ms = ns_to_ms(slow.ended_ns - t0), behind_ms = ns_to_ms(behind.ended_ns - t0);
    printf("\n  timed out after %.0f ms (%s); the one behind: %d after %.0f ms (%s)", slow_ms, slow.err, behind.status,
           behind_ms, behind.err);
    CU_ASSERT_EQUAL(slow.status, PGQ_TIMEOUT);
    CU_ASSERT(slow_ms >= 190 && slow_ms < 900);
    CU_ASSERT_EQUAL(behind.status, PGQ_UNAVAILABLE);
    CU_ASSERT(behind_ms < 900);
    const char *again = one(p, "SELECT pg_backend_pid()");
    CU_ASSERT(strcmp(again, pid) != 0); /* replaced */
    /* Not resent: once the old backend has gone (it was asleep, then
     * notices its client left) its row is there at most once. */
    run_for(1500);
    CU_ASSERT(rows_with("10") <= 1);
    pool_free(p);
}

/* A query abandoned while in flight on the pipeline is never called back;
 * its result, when it arrives, is dropped (not taken for the next one's),
 * and the connection stays. */
static void test_abandon_keeps_connection(void)
{
    struct pgpool *p = pool_new();
    char pid[64];
    snprintf(pid, sizeof pid, "%s", one(p, "SELECT pg_backend_pid()"));
    static struct tq gone, next;
    tq_init(&gone, "SELECT 'abandoned', pg_sleep(0.3)", NULL);
    tq_init(&next, "SELECT $1::text", "next");
    int before = g.calls;
    pgpool_submit(p, &gone.q);
    pgpool_submit(p, &next.q);
    run_for(50); /* both in flight */
    struct pgpool_stats ps;
    pgpool_stats(p, &ps);
    CU_ASSERT_EQUAL(ps.waiting, 0);
    pgpool_abandon(p, &gone.q);
    CU_ASSERT_EQUAL(g.calls, before); /* nothing inside the call */
    run_until(before + 1);
    CU_ASSERT_EQUAL(gone.calls, 0);
    CU_ASSERT_EQUAL(next.calls, 1);
    CU_ASSERT_EQUAL(next.status, PGQ_OK);
    CU_ASSERT_STRING_EQUAL(next.value, "next");
    run_for(100);
    CU_ASSERT_EQUAL(gone.calls, 0);
    CU_ASSERT_STRING_EQUAL(one(p, "SELECT pg_backend_pid()"), pid); /* kept */
    printf("\n  abandoned in flight: never called, the next one got its own result, backend %s kept", pid);
    pool_free(p);
}

/* Long queries never go to the pipelined connection: with the plain one
 * busy with a long query, a second long one waits, while short ones are
 * answered at once on the pipeline. */
static void test_long_stays_off(void)
{
    struct pgpool *p = pool_new();
    static struct tq brew1, brew2, ping;
    tq_init(&brew1, "SELECT pg_sleep(0.5)", NULL);
    tq_init(&brew2, "SELECT pg_sleep(0.5)", NULL);
    brew1.q.cls = brew2.q.cls = PGQ_LONG;
    tq_init(&ping, "SELECT 1", NULL);
    int64_t t0 = clock_mono_ns();
    pgpool_submit(p, &brew1.q);
    pgpool_submit(p, &brew2.q);
    pgpool_submit(p, &ping.q);
    run_until(3);
    double ping_ms = ns_to_ms(ping.ended_ns - t0), brew2_ms = ns_to_ms(brew2.ended_ns - t0);
    printf("\n  ping %.0f ms; second brew %.0f ms (after the first)", ping_ms, brew2_ms);
    CU_ASSERT_EQUAL(ping.status, PGQ_OK);
    CU_ASSERT(ping_ms < 400);
    CU_ASSERT_EQUAL(brew1.status, PGQ_OK);
    CU_ASSERT_EQUAL(brew2.status, PGQ_OK);
    CU_ASSERT(brew2_ms >= 950);
    pool_free(p);
}

int main(void)
{
    static const struct harness_test tests[] = {
        {"pipeline: many short queries at once on one backend, each its own result", test_many_on_one_connection},
        {"pipeline: a failing statement fails alone; its neighbours commit", test_failure_alone},
        {"pipeline: connection lost with queries in flight: all PGQ_UNAVAILABLE", test_connection_lost},
        {"pool: backends gone while idle: the next queries go to new connections", test_idle_backend_gone},
        {"pipeline: a run-bound timeout replaces the connection; the others end, not resent", test_timeout_replaces},
        {"pipeline: abandon in flight drops the result and keeps the connection", test_abandon_keeps_connection},
        {"pipeline: long queries stay off the pipelined connection", test_long_stays_off},
        {NULL, NULL},
    };
    return harness_main("pipeline", setup, teardown, tests);
}
