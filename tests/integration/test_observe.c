/* Integration: what the service says about itself. /metrics of server and
 * kitchen in the Prometheus text format (checked by promtool, and by value
 * after known orders), the process metrics against /proc seen from outside,
 * coffee_build_info, and /stats computed by PostgreSQL from the orders
 * table. */
#include "harness.h"

#include <CUnit/Basic.h>
#include <curl/curl.h>
#include <jansson.h>
#include <math.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct stack st;
static PGconn *db;

static int setup(void)
{
    static const char *const args[] = {"--workers", "2", "--db-pool", "4", NULL};
    static const char *const kargs[] = {"--allow-faults", NULL};
    harness_kitchen_args = kargs;
    return stack_setup(&st, args, &db);
}
static int teardown(void)
{
    return stack_teardown(&st, db);
}

/* GETs path into r; asserts a transport success. */
static void get(const char *path, struct http_result *r)
{
    char url[200];
    snprintf(url, sizeof url, "%s%s", st.server.base_url, path);
    CU_ASSERT_EQUAL_FATAL(http_get(url, r), 0);
}

/* One sample of the server's /metrics (NaN if absent or not answered). */
static double metric(const char *series)
{
    return http_metric(&st.server, series);
}

static void order(const char *mode, double scale)
{
    char path[100];
    struct http_result r;
    snprintf(path, sizeof path, "/make-coffee?mode=%s&scale=%g", mode, scale);
    get(path, &r);
    CU_ASSERT_EQUAL(r.status, 200);
    http_result_free(&r);
}

/* promtool check metrics on c's /metrics. */
static void promtool_ok(const struct child *c)
{
    struct http_result r;
    char url[200];
    snprintf(url, sizeof url, "%s/metrics", c->base_url);
    CU_ASSERT_EQUAL_FATAL(http_get(url, &r), 0);
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

static void test_promtool(void)
{
    promtool_ok(&st.server);
    promtool_ok(&st.kitchen);
}

/* utime + stime of pid in seconds, from its /proc/PID/stat, or -1. */
static double proc_cpu_seconds(pid_t pid)
{
    char buf[1024];
    const char *p = proc_stat_after_comm((long)pid, buf, sizeof buf);
    unsigned long long ut, stime;
    /* after ")": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
    if (!p || sscanf(p, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &stime) != 2)
        return -1;
    return (double)(ut + stime) / (double)sysconf(_SC_CLK_TCK);
}

/* The process metrics agree with what /proc says from outside. */
static void check_process_metrics(const struct child *c)
{
    double fds = http_metric(c, "process_open_fds"), max = http_metric(c, "process_max_fds");
    double rss = http_metric(c, "process_resident_memory_bytes"), start = http_metric(c, "process_start_time_seconds");
    double cpu = http_metric(c, "process_cpu_seconds_total");
    int seen_fds = child_fds(c);
    long seen_rss = child_rss_kb(c);
    double seen_cpu = proc_cpu_seconds(c->pid);
    printf("\n  pid %d: fds %.0f (/proc %d), max %.0f, rss %.0f (/proc %ld kB), cpu %.2f s (/proc %.2f)", (int)c->pid,
           fds, seen_fds, max, rss, seen_rss, cpu, seen_cpu);
    CU_ASSERT(fds >= 3 && fabs(fds - seen_fds) <= 8); /* the scrape's own socket comes and goes */
    CU_ASSERT(max >= 1024 && max > fds);
    CU_ASSERT(rss > 1e6 && fabs(rss - seen_rss * 1024.0) <= 0.25 * rss);
    CU_ASSERT(cpu >= 0 && seen_cpu >= 0 && cpu <= seen_cpu + 0.05 && cpu >= seen_cpu - 0.5);
    double now = (double)time(NULL);
    CU_ASSERT(start > now - 600 && start <= now + 2); /* started by this test run */
}

static void test_process_metrics(void)
{
    check_process_metrics(&st.server);
    check_process_metrics(&st.kitchen);
}

/* coffee_build_info names the libraries this process links (the same as
 * the test's own) and a commit. */
static void test_build_info(void)
{
    struct http_result r;
    get("/metrics", &r);
    CU_ASSERT_EQUAL_FATAL(r.status, 200);
    const char *line = strstr(r.body, "\ncoffee_build_info{");
    CU_ASSERT_PTR_NOT_NULL_FATAL(line);
    char want[200];
    snprintf(want, sizeof want, "libmicrohttpd=\"%s\",libcurl=\"%s\"", MHD_get_version(),
             curl_version_info(CURLVERSION_NOW)->version);
    const char *end = strchr(line + 1, '\n');
    CU_ASSERT_FATAL(end != NULL);
    char copy[512];
    snprintf(copy, sizeof copy, "%.*s", (int)(end - line - 1), line + 1);
    printf("\n  %s", copy);
    CU_ASSERT_PTR_NOT_NULL(strstr(copy, want));
    snprintf(want, sizeof want, "jansson=\"%s\"} 1", jansson_version_str());
    CU_ASSERT_PTR_NOT_NULL(strstr(copy, want));
    CU_ASSERT_PTR_NOT_NULL(strstr(copy, "version=\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(copy, ",libpq=\"1"));
    const char *commit = strstr(copy, "commit=\"");
    CU_ASSERT_PTR_NOT_NULL_FATAL(commit);
    commit += 8;
    size_t n = strspn(commit, "0123456789abcdef");
    CU_ASSERT((n == 12 && commit[12] == '"') || !strncmp(commit, "unknown\"", 8));
    http_result_free(&r);
}

/* The kitchen counts what the orders asked of it, and injected faults. */
static void test_kitchen_metrics(void)
{
    const char *kettle = "coffee_kitchen_requests_total{appliance=\"kettle\"}";
    const char *toaster = "coffee_kitchen_requests_total{appliance=\"toaster\"}";
    const char *fault = "coffee_kitchen_faults_injected_total{appliance=\"toaster\",fault=\"500\"}";
    double k0 = http_metric(&st.kitchen, kettle), t0 = http_metric(&st.kitchen, toaster);
    double f0 = http_metric(&st.kitchen, fault);
    CU_ASSERT(!isnan(k0) && !isnan(t0) && f0 == 0);
    order("async", 0);
    order("blocking", 0);
    CU_ASSERT_EQUAL(http_metric(&st.kitchen, kettle), k0 + 2);
    CU_ASSERT_EQUAL(http_metric(&st.kitchen, toaster), t0 + 2);

    char url[160];
    struct http_result r;
    snprintf(url, sizeof url, "%s/faults?toaster=500", st.kitchen.base_url);
    CU_ASSERT_EQUAL_FATAL(http_request("POST", url, &r), 0);
    http_result_free(&r);
    snprintf(url, sizeof url, "%s/make-coffee?mode=async&scale=0", st.server.base_url);
    CU_ASSERT_EQUAL(http_get(url, &r), 0);
    CU_ASSERT_EQUAL(r.status, 502);
    http_result_free(&r);
    snprintf(url, sizeof url, "%s/faults", st.kitchen.base_url);
    CU_ASSERT_EQUAL(http_request("POST", url, &r), 0);
    http_result_free(&r);
    CU_ASSERT_EQUAL(http_metric(&st.kitchen, fault), 1);
    CU_ASSERT_EQUAL(http_metric(&st.kitchen, "coffee_kitchen_requests_in_flight{appliance=\"kettle\"}"), 0);
    CU_ASSERT_EQUAL(http_metric(&st.kitchen, "coffee_kitchen_requests_in_flight{appliance=\"toaster\"}"), 0);
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

    static const char *const bad[] = {"/stats?since=yesterday", "/stats?since=2026-13-45",
                                      "/stats?since=", "/stats?since=1&since=2", "/stats?until=1"};
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
        {"/metrics of server and kitchen pass promtool check metrics", test_promtool},
        {"process metrics agree with /proc", test_process_metrics},
        {"coffee_build_info names version, commit and libraries", test_build_info},
        {"/metrics counts known orders", test_counts_after_orders},
        {"/metrics shows the loop lag of a blocking call on the loop", test_loop_lag},
        {"/stats: per-mode percentiles from PostgreSQL, since a time", test_stats},
        {"the kitchen's /metrics count requests and faults (an async order fails here)", test_kitchen_metrics},
        {NULL, NULL},
    };
    return harness_main("observe", setup, teardown, tests);
}
