/* Integration: mode threads, a thread per order, against the real stack.
 * One order runs its steps one after another (about the sequential sum)
 * and keeps its row; 300 at once finish in about one order's time (no
 * queue for a worker, unlike blocking's pool); past --max-threads an order
 * gets a JSON 503 with Retry-After and never a row; a statement that waits
 * for the shared pool past its deadline fails its order with 503, and the
 * row still ends failed; a server with 1,500 threads in flight drains,
 * cancels and exits 0; /rush's summaries and /metrics say what each
 * mode cost (threads, context switches, CPU, connections). */
#include "harness.h"

#include "clock.h"

#include <CUnit/Basic.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct stack st;
static PGconn *db;

static int setup(void)
{
    static const char *const args[] = {"--max-inflight", "5000", NULL};
    return stack_setup(&st, args, &db);
}
static int teardown(void)
{
    return stack_teardown(&st, db);
}

/* A server of its own on st's kitchen, with extra args (NULL-terminated). */
static void start_server(struct child *server, const char *const *extra)
{
    const char *args[24] = {"--kitchen-url", st.kitchen.base_url};
    int n = 2;
    for (int i = 0; extra[i] && n < 23; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    CU_ASSERT_EQUAL_FATAL(child_start(server, "coffee-server", args), 0);
}

/* n GETs of one url at once on a thread of their own. */
struct crowd {
    int n;
    const char **urls;
    struct http_result *res;
    pthread_t thread;
    int rc;
};
static void *crowd_main(void *arg)
{
    struct crowd *c = arg;
    c->rc = http_get_many(c->urls, c->n, c->res);
    return NULL;
}
static int crowd_start(struct crowd *c, const char *url, int n)
{
    c->n = n;
    c->urls = calloc((size_t)n, sizeof *c->urls);
    c->res = calloc((size_t)n, sizeof *c->res);
    if (!c->urls || !c->res)
        return -1;
    for (int i = 0; i < n; i++)
        c->urls[i] = url;
    return pthread_create(&c->thread, NULL, crowd_main, c) == 0 ? 0 : -1;
}
static void crowd_wait(struct crowd *c)
{
    pthread_join(c->thread, NULL);
}
static void crowd_free(struct crowd *c)
{
    for (int i = 0; i < c->n; i++)
        http_result_free(&c->res[i]);
    free(c->res);
    free(c->urls);
}

static void pause_ms(long ms) /* between polls of a metric, not synchronisation */
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* One order: the steps one after another, in table order, the sum of
 * their times; the row done. */
static void test_one_order(void)
{
    long status;
    json_t *o = make_coffee(&st.server, "threads", 0.2, &status, NULL);
    CU_ASSERT_EQUAL_FATAL(status, 200);
    CU_ASSERT_STRING_EQUAL(jstr(o, "status"), "done");
    double elapsed = jnum(o, "elapsed_ms");
    CU_ASSERT(elapsed >= 1380);
    CU_ASSERT(elapsed < 1380 + harness_slack(300));
    static const char *const names[] = {"boil_water", "grind_coffee_bean", "brew_coffee", "toast_bread"};
    double prev_end = 0;
    for (int i = 0; i < 4; i++) {
        json_t *s = jstep(o, names[i]);
        CU_ASSERT_FATAL(s != NULL);
        CU_ASSERT(jnum(s, "start_ms") >= prev_end); /* one after another */
        prev_end = jnum(s, "end_ms");
    }
    CU_ASSERT_STRING_EQUAL(jstr(jstep(o, "brew_coffee"), "result"), "Coffee ready!");
    char row[16];
    db_row_status(db, (long long)jnum(o, "order_id"), row, sizeof row);
    CU_ASSERT_STRING_EQUAL(row, "done");
    json_decref(o);
}

/* 300 orders at once: a thread each, so all finish in about one order's
 * time (blocking's 8 workers would take 38 turns of it). */
static void test_crowd(void)
{
    enum { N = 300 };
    char url[160];
    snprintf(url, sizeof url, "%s/make-coffee?mode=threads&scale=0.1", st.server.base_url);
    struct crowd c;
    int64_t t0 = clock_mono_ns();
    CU_ASSERT_EQUAL_FATAL(crowd_start(&c, url, N), 0);
    crowd_wait(&c);
    double wall = ns_to_ms(clock_mono_ns() - t0);
    int ok = 0;
    double worst = 0;
    for (int i = 0; i < N; i++) {
        json_t *o = json_loads(c.res[i].body ? c.res[i].body : "", 0, NULL);
        ok += c.res[i].status == 200 && jstr(o, "status") && !strcmp(jstr(o, "status"), "done");
        double e = jnum(o, "elapsed_ms");
        if (e > worst)
            worst = e;
        json_decref(o);
    }
    printf("\n  %d threads orders at once (690 ms each): %d done, the slowest %.0f ms, all in %.0f ms\n", N, ok, worst,
           wall);
    CU_ASSERT_EQUAL(ok, N);
    /* One order's time and the crowd's overhead, not 38 turns of it. */
    CU_ASSERT(wall < harness_slack(690 * 4));
    crowd_free(&c);
}

/* Past --max-threads: a JSON 503 with Retry-After, and no row for it. */
static void test_over_max_threads(void)
{
    enum { N = 8, MAX = 5 };
    struct child server;
    static const char *const extra[] = {"--max-threads", "5", "--instance", "threads-over-max", NULL};
    start_server(&server, extra);
    char url[160];
    snprintf(url, sizeof url, "%s/make-coffee?mode=threads&scale=0.3", server.base_url);
    struct crowd c;
    CU_ASSERT_EQUAL_FATAL(crowd_start(&c, url, N), 0);
    crowd_wait(&c);
    int ok = 0, refused = 0;
    for (int i = 0; i < N; i++) {
        json_t *o = json_loads(c.res[i].body ? c.res[i].body : "", 0, NULL);
        if (c.res[i].status == 200) {
            ok++;
        } else {
            CU_ASSERT_EQUAL(c.res[i].status, 503);
            CU_ASSERT_STRING_EQUAL(c.res[i].retry_after, "1");
            CU_ASSERT_STRING_EQUAL(c.res[i].content_type, "application/json");
            const char *err = jstr(o, "error");
            CU_ASSERT(err && strstr(err, "--max-threads"));
            CU_ASSERT(jnum(o, "order_id") == 0 || isnan(jnum(o, "order_id")));
            refused++;
        }
        json_decref(o);
    }
    CU_ASSERT_EQUAL(ok, MAX);
    CU_ASSERT_EQUAL(refused, N - MAX);
    /* A row for each order answered 200, done; none for the refused. */
    CU_ASSERT_EQUAL(db_count(db, "SELECT count(*) FROM orders WHERE instance = 'threads-over-max'"), MAX);
    CU_ASSERT_EQUAL(db_count(db, "SELECT count(*) FROM orders WHERE instance = 'threads-over-max' AND "
                                 "status = 'done'"),
                    MAX);
    CU_ASSERT_EQUAL(http_metric(&server, "coffee_order_errors_total{mode=\"threads\",error=\"overload\"}"), N - MAX);
    crowd_free(&c);
    CU_ASSERT_EQUAL(child_stop(&server, 10), 0);
}

/* One shared connection and a 400 ms wait: of two orders brewing at the
 * same time (600 ms each), the second waits 400 ms for the connection and
 * fails with 503; its row still ends failed (its UPDATE gets the
 * connection when the first brew ends, inside its own wait). */
static void test_pool_deadline(void)
{
    struct child server;
    static const char *const extra[] = {"--threads-db-pool", "1", "--db-wait-ms", "400", NULL};
    start_server(&server, extra);
    char url[160];
    snprintf(url, sizeof url, "%s/make-coffee?mode=threads&scale=0.6", server.base_url);
    const char *urls[] = {url, url};
    struct http_result res[2];
    CU_ASSERT_EQUAL_FATAL(http_get_many(urls, 2, res), 0);
    int ok = 0, timed_out = 0;
    for (int i = 0; i < 2; i++) {
        json_t *o = json_loads(res[i].body ? res[i].body : "", 0, NULL);
        if (res[i].status == 200) {
            ok++;
        } else {
            CU_ASSERT_EQUAL(res[i].status, 503);
            const char *err = jstr(o, "error");
            CU_ASSERT(err && strstr(err, "no database connection free in 400 ms"));
            json_t *brew = jstep(o, "brew_coffee");
            /* It waited its 400 ms, not the other brew's 600. */
            double waited = jnum(brew, "end_ms") - jnum(brew, "start_ms");
            CU_ASSERT(waited >= 400);
            CU_ASSERT(waited < 400 + harness_slack(150));
            timed_out++;
        }
        long long id = (long long)jnum(o, "order_id");
        char row[16];
        db_row_status(db, id, row, sizeof row);
        CU_ASSERT_STRING_EQUAL(row, res[i].status == 200 ? "done" : "failed");
        json_decref(o);
        http_result_free(&res[i]);
    }
    CU_ASSERT_EQUAL(ok, 1);
    CU_ASSERT_EQUAL(timed_out, 1);
    CU_ASSERT_EQUAL(child_stop(&server, 10), 0);
}

/* 1,500 orders in flight, a thread each: SIGTERM drains for 300 ms, then
 * cancels; every order answers, none is left running, exit 0. */
static void test_shutdown_many(void)
{
    enum { N = 1500 };
    struct child server;
    static const char *const extra[] = {
        "--drain-timeout-ms", "300", "--max-inflight", "5000", "--max-threads", "5000", "--instance",
        "threads-shutdown",   NULL};
    start_server(&server, extra);
    char url[160];
    snprintf(url, sizeof url, "%s/make-coffee?mode=threads&scale=2", server.base_url);
    struct crowd c;
    CU_ASSERT_EQUAL_FATAL(crowd_start(&c, url, N), 0);
    int64_t t0 = clock_mono_ns();
    double n = 0;
    while (ns_to_ms(clock_mono_ns() - t0) < 20000 &&
           (n = http_metric(&server, "coffee_orders_in_flight{mode=\"threads\"}")) < N)
        pause_ms(50);
    CU_ASSERT_EQUAL(n, N);
    int threads = child_threads(&server);
    CU_ASSERT(threads > N);
    int64_t t1 = clock_mono_ns();
    double ms = -1;
    int rc = child_stop_within(&server, SIGTERM, 30000, &ms);
    crowd_wait(&c);
    printf("\n  %d threads in flight (%d threads in the process): exit %d %.0f ms after SIGTERM\n", N, threads, rc,
           ns_to_ms(clock_mono_ns() - t1));
    CU_ASSERT_EQUAL(rc, 0);
    int answered = 0;
    for (int i = 0; i < N; i++)
        answered += c.res[i].status == 503 || c.res[i].status == 200;
    CU_ASSERT_EQUAL(answered, N);
    CU_ASSERT_EQUAL(db_count(db, "SELECT count(*) FROM orders WHERE instance = 'threads-shutdown' AND "
                                 "status = 'running'"),
                    0);
    crowd_free(&c);
}

/* The summary of mode in a /rush stream's text (new), or NULL. */
static json_t *summary_of(const char *text, const char *mode)
{
    const char *p = text;
    while ((p = strstr(p, "event: summary\ndata: ")) != NULL) {
        p += strlen("event: summary\ndata: ");
        const char *end = strchr(p, '\n');
        json_t *j = json_loadb(p, end ? (size_t)(end - p) : strlen(p), 0, NULL);
        if (j && jstr(j, "mode") && !strcmp(jstr(j, "mode"), mode))
            return j;
        json_decref(j);
    }
    return NULL;
}

/* /rush?modes=threads,async: each summary says what its mode cost; the
 * threads lane a thread per order in flight, the async lane the loop's
 * one; /metrics says the same per executor. */
static void test_cost_fields(void)
{
    char url[200];
    snprintf(url, sizeof url, "%s/rush?modes=threads,async&customers=50&scale=0.1", st.server.base_url);
    struct http_result r;
    CU_ASSERT_EQUAL_FATAL(http_get(url, &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    json_t *t = summary_of(r.body, "threads"), *a = summary_of(r.body, "async");
    CU_ASSERT_FATAL(t && a);
    printf("\n  threads: %.0f threads, %.0f switches, %.1f ms CPU, %.0f connections; async: %.0f, %.0f, %.1f, %.0f\n",
           jnum(t, "threads_peak"), jnum(t, "context_switches"), jnum(t, "cpu_ms"), jnum(t, "db_connections_used"),
           jnum(a, "threads_peak"), jnum(a, "context_switches"), jnum(a, "cpu_ms"), jnum(a, "db_connections_used"));
    CU_ASSERT_EQUAL(jnum(t, "ok"), 50);
    CU_ASSERT_EQUAL(jnum(t, "threads_peak"), 50); /* all 50 in flight at once, a thread each */
    CU_ASSERT(jnum(t, "context_switches") >= 50); /* each thread blocked at least once */
    CU_ASSERT(jnum(t, "cpu_ms") > 0);
    CU_ASSERT(jnum(t, "db_connections_used") >= 1 && jnum(t, "db_connections_used") <= 32);
    CU_ASSERT_STRING_EQUAL(jstr(t, "cost_scope"), "threads");
    CU_ASSERT_EQUAL(jnum(a, "ok"), 50);
    CU_ASSERT(jnum(a, "threads_peak") >= 1 && jnum(a, "threads_peak") < 50); /* the loop (and busy offload threads) */
    CU_ASSERT(jnum(a, "context_switches") > 0);
    CU_ASSERT(jnum(a, "cpu_ms") > 0);
    CU_ASSERT_STRING_EQUAL(jstr(a, "cost_scope"), "async");
    CU_ASSERT(http_metric(&st.server, "coffee_executor_threads_peak{executor=\"threads\"}") >= 50);
    CU_ASSERT(http_metric(&st.server, "coffee_executor_context_switches_total{executor=\"threads\"}") >=
              jnum(t, "context_switches"));
    CU_ASSERT(http_metric(&st.server, "coffee_executor_cpu_seconds_total{executor=\"async\"}") > 0);
    json_decref(t);
    json_decref(a);
    http_result_free(&r);
}

static void test_clean_exit(void)
{
    CU_ASSERT_EQUAL(child_stop(&st.server, 30), 0);
}

int main(void)
{
    static const struct harness_test tests[] = {
        {"one threads order: the steps one after another, its row done", test_one_order},
        {"300 threads orders at once finish in about one order's time", test_crowd},
        {"over --max-threads: JSON 503 with Retry-After, and no row", test_over_max_threads},
        {"the shared pool's wait has a deadline: 503, the row failed", test_pool_deadline},
        {"1,500 threads in flight: drain, cancel, exit 0", test_shutdown_many},
        {"/rush and /metrics say what threads and async cost", test_cost_fields},
        {"the server exits 0", test_clean_exit},
        {NULL, NULL},
    };
    return harness_main("threads", setup, teardown, tests);
}
