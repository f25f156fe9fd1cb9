/* Integration: what the service says about itself. /metrics in the
 * Prometheus text format (checked by promtool, and by value after known
 * orders), and /stats computed by PostgreSQL from the orders table. */
#include "harness.h"

#include <CUnit/Basic.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct stack st;
static PGconn *db;

static int setup(void)
{
    static const char *const args[] = {"--workers", "2", "--db-pool", "4", NULL};
    return stack_setup(&st, args, &db);
}
static int teardown(void) { return stack_teardown(&st, db); }

/* GETs path into r; asserts a transport success. */
static void get(const char *path, struct http_result *r)
{
    char url[200];
    snprintf(url, sizeof url, "%s%s", st.server.base_url, path);
    CU_ASSERT_EQUAL_FATAL(http_get(url, r), 0);
}

/* One sample of the server's /metrics (NaN if absent or not answered). */
static double metric(const char *series) { return http_metric(&st.server, series); }

static void order(const char *mode, double scale)
{
    char path[100];
    struct http_result r;
    snprintf(path, sizeof path, "/make-coffee?mode=%s&scale=%g", mode, scale);
    get(path, &r);
    CU_ASSERT_EQUAL(r.status, 200);
    http_result_free(&r);
}

static void test_promtool(void)
{
    struct http_result r;
    get("/metrics", &r);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_STRING_EQUAL(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
    char path[] = "/tmp/coffee-metrics.XXXXXX";
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs(r.body, f);
    fclose(f);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "promtool check metrics < %s", path);
    int rc = system(cmd);
    if (rc != 0)
        fprintf(stderr, "  promtool check metrics failed (%d): is the prometheus package installed?\n", rc);
    CU_ASSERT_EQUAL(rc, 0);
    unlink(path);
    http_result_free(&r);
}

static void test_counts_after_orders(void)
{
    double a0 = metric("coffee_orders_total{mode=\"async\",status=\"done\"}");
    double b0 = metric("coffee_orders_total{mode=\"blocking\",status=\"done\"}");
    double h0 = metric("coffee_order_duration_seconds_count{mode=\"async\"}");
    double s0 = metric("coffee_step_duration_seconds_count{mode=\"blocking\",step=\"brew_coffee\"}");
    CU_ASSERT(!isnan(a0) && !isnan(b0) && !isnan(h0) && !isnan(s0));
    order("async", 0);
    order("async", 0);
    order("blocking", 0.05);
    CU_ASSERT_EQUAL(metric("coffee_orders_total{mode=\"async\",status=\"done\"}"), a0 + 2);
    CU_ASSERT_EQUAL(metric("coffee_orders_total{mode=\"blocking\",status=\"done\"}"), b0 + 1);
    CU_ASSERT_EQUAL(metric("coffee_order_duration_seconds_count{mode=\"async\"}"), h0 + 2);
    CU_ASSERT_EQUAL(metric("coffee_step_duration_seconds_count{mode=\"blocking\",step=\"brew_coffee\"}"), s0 + 1);
    /* The blocking order took at least its sequential 345 ms: it is not in
     * the 0.25 s bucket. */
    CU_ASSERT(metric("coffee_order_duration_seconds_sum{mode=\"blocking\"}") >= 0.345);
    CU_ASSERT_EQUAL(metric("coffee_orders_in_flight{mode=\"async\"}"), 0);
    CU_ASSERT_EQUAL(metric("coffee_blocking_workers{state=\"total\"}"), 2);
    CU_ASSERT_EQUAL(metric("coffee_db_pool_connections{state=\"size\"}"), 4);
    CU_ASSERT_EQUAL(metric("coffee_orders_total{mode=\"async\",status=\"failed\"}"), 0);
}

/* The mixed mode's brew holds the loop for 500 ms at scale 0.5: the lag
 * probe sees it. */
static void test_loop_lag(void)
{
    double n0 = metric("coffee_loop_lag_seconds_count");
    CU_ASSERT(n0 > 0); /* the probe runs */
    order("mixed", 0.5);
    double lag = metric("coffee_loop_lag_max_seconds");
    printf("\n  loop lag max after a mixed order: %.3f s\n", lag);
    CU_ASSERT(lag >= 0.3);
    CU_ASSERT(metric("coffee_loop_lag_seconds_bucket{le=\"0.25\"}") < metric("coffee_loop_lag_seconds_count"));
}

static void test_stats(void)
{
    /* Orders from now on, by the database's clock (it stamps started_at
     * from the server's clock, on the same machine). */
    PGresult *now = PQexec(db, "SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')");
    CU_ASSERT_EQUAL_FATAL(PQresultStatus(now), PGRES_TUPLES_OK);
    char path[120];
    snprintf(path, sizeof path, "/stats?since=%s", PQgetvalue(now, 0, 0));
    PQclear(now);
    order("naive", 0.1);
    order("naive", 0.1);
    order("naive", 0.2);

    struct http_result r;
    get(path, &r);
    CU_ASSERT_EQUAL(r.status, 200);
    json_t *j = json_loads(r.body, 0, NULL);
    json_t *naive = json_object_get(json_object_get(j, "modes"), "naive");
    CU_ASSERT_PTR_NOT_NULL_FATAL(naive);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(naive, "count")), 3);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(naive, "failed")), 0);
    double mean = jnum(naive, "mean_ms"), p50 = jnum(naive, "p50_ms"), p95 = jnum(naive, "p95_ms"),
           p99 = jnum(naive, "p99_ms");
    /* 300, 300 and 600 ms planned: the median is a 300 ms order, the tail
     * the 600 ms one, the mean in between. */
    CU_ASSERT(p50 >= 300 && p50 < 450);
    CU_ASSERT(p95 >= 540 && p95 <= p99);
    CU_ASSERT(p99 >= 580);
    CU_ASSERT(mean > p50 && mean < p99);
    /* Only orders since then: nothing else ran in the naive mode. */
    CU_ASSERT_EQUAL(json_object_size(json_object_get(j, "modes")), 1);
    json_decref(j);
    http_result_free(&r);

    get("/stats", &r);
    CU_ASSERT_EQUAL(r.status, 200);
    j = json_loads(r.body, 0, NULL);
    CU_ASSERT(json_integer_value(json_object_get(json_object_get(json_object_get(j, "modes"), "async"), "count")) >= 2);
    json_decref(j);
    http_result_free(&r);

    static const char *const bad[] = {"/stats?since=yesterday", "/stats?since=2026-13-45", "/stats?since=",
                                      "/stats?since=1&since=2", "/stats?until=1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        get(bad[i], &r);
        CU_ASSERT_EQUAL(r.status, 400);
        j = json_loads(r.body, 0, NULL);
        CU_ASSERT(json_is_string(json_object_get(j, "error")));
        json_decref(j);
        http_result_free(&r);
    }
}

int main(void)
{
    static const struct harness_test tests[] = {
        {"/metrics passes promtool check metrics", test_promtool},
        {"/metrics counts known orders", test_counts_after_orders},
        {"/metrics shows the loop lag of a blocking call on the loop", test_loop_lag},
        {"/stats: per-mode percentiles from PostgreSQL, since a time", test_stats},
        {NULL, NULL},
    };
    return harness_main("observe", setup, teardown, tests);
}
