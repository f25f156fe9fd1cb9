/* Integration: many orders at once. 200 async orders share one loop
 * thread and a database pool of 100 (the brews go through it in waves);
 * blocking orders beyond the workers wait their turn, visibly; a slow
 * blocking order never delays the HTTP front. */
#include "harness.h"

#include "clock.h"

#include <CUnit/Basic.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POOL 100
#define WORKERS 4

static struct stack st;
static PGconn *db;

static int setup(void)
{
    static const char *const args[] = {"--db-pool", "100", "--workers", "4", NULL};
    return stack_setup(&st, args, &db);
}

static int teardown(void)
{
    return stack_teardown(&st, db);
}

/* Samples the server's thread count while a batch runs. */
struct sampler {
    pthread_t thread;
    atomic_int stop;
    int max_threads;
};

static void *sample(void *arg)
{
    struct sampler *s = arg;
    while (!atomic_load(&s->stop)) {
        int n = child_threads(&st.server);
        if (n > s->max_threads)
            s->max_threads = n;
        struct timespec ts = {0, 10 * 1000 * 1000}; /* sampling period, not synchronisation */
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static int row_is_done(long long id)
{
    char status[16];
    db_row_status(db, id, status, sizeof status);
    return !strcmp(status, "done");
}

static void test_200_async(void)
{
    enum { N = 200 };
    const double scale = 0.25;
    /* Boil (0.75 s) bounds the start of the brews; then waves of 0.25 s
     * brews through the pool, less the one connection kept for short
     * statements (pgpool's reserve). */
    const double bound_ms = 750 + ceil((double)N / (POOL - 1)) * 250;
    char url[160];
    snprintf(url, sizeof url, "%s/make-coffee?mode=async&scale=%g", st.server.base_url, scale);
    const char *urls[N];
    struct http_result res[N];
    for (int i = 0; i < N; i++)
        urls[i] = url;

    int idle_threads = child_threads(&st.server);
    struct sampler s = {.max_threads = idle_threads};
    atomic_init(&s.stop, 0);
    pthread_create(&s.thread, NULL, sample, &s);
    int64_t t0 = clock_mono_ns();
    CU_ASSERT_EQUAL(http_get_many(urls, N, res), 0);
    double batch_ms = ns_to_ms(clock_mono_ns() - t0);
    atomic_store(&s.stop, 1);
    pthread_join(s.thread, NULL);

    int ok = 0, rows = 0;
    double max_elapsed = 0, max_first = 0, max_brew_wait = 0, max_client = 0;
    for (int i = 0; i < N; i++) {
        json_t *o = json_loads(res[i].body, 0, NULL);
        ok += res[i].status == 200;
        max_elapsed = fmax(max_elapsed, jnum(o, "elapsed_ms"));
        max_first = fmax(max_first, jnum(jstep(o, "boil_water"), "start_ms"));
        max_brew_wait = fmax(max_brew_wait, jnum(jstep(o, "brew_coffee"), "queued_ms"));
        max_client = fmax(max_client, res[i].total_ms);
        rows += o && row_is_done((long long)json_integer_value(json_object_get(o, "order_id")));
        json_decref(o);
        http_result_free(&res[i]);
    }
    printf("\n  %d/%d ok, %d rows done, batch %.0f ms (bound %.0f ms), threads idle %d, max %d\n", ok, N, rows,
           batch_ms, bound_ms, idle_threads, s.max_threads);
    printf("  slowest: elapsed %.1f ms, first step start %.1f ms, brew wait %.1f ms, client %.1f ms\n", max_elapsed,
           max_first, max_brew_wait, max_client);
    CU_ASSERT_EQUAL(ok, N);
    CU_ASSERT_EQUAL(rows, N);
    CU_ASSERT_EQUAL(s.max_threads, idle_threads);
    CU_ASSERT(batch_ms >= 4000 * scale);
    CU_ASSERT(batch_ms <= bound_ms + harness_slack(bound_ms * 0.25));
}

/* 8 blocking orders on 4 workers: 4 start at once, 4 wait a whole order. */
static void test_blocking_queueing(void)
{
    enum { N = 8 };
    const double scale = 0.1, seq_ms = 6900 * scale;
    char url[160];
    snprintf(url, sizeof url, "%s/make-coffee?mode=blocking&scale=%g", st.server.base_url, scale);
    const char *urls[N];
    struct http_result res[N];
    for (int i = 0; i < N; i++)
        urls[i] = url;
    CU_ASSERT_EQUAL(http_get_many(urls, N, res), 0);
    int ok = 0, waited = 0, prompt = 0;
    for (int i = 0; i < N; i++) {
        json_t *o = json_loads(res[i].body, 0, NULL);
        ok += res[i].status == 200;
        double q = jnum(o, "queued_ms");
        waited += q > 0.8 * seq_ms;
        prompt += q < 0.2 * seq_ms;
        /* Queued time is on the timeline: the first step starts after it. */
        CU_ASSERT(jnum(jstep(o, "boil_water"), "start_ms") >= q);
        json_decref(o);
        http_result_free(&res[i]);
    }
    printf("\n  %d ok, %d started at once, %d waited for a worker\n", ok, prompt, waited);
    CU_ASSERT_EQUAL(ok, N);
    CU_ASSERT_EQUAL(prompt, WORKERS);
    CU_ASSERT_EQUAL(waited, N - WORKERS);
}

/* While every worker is busy with slow blocking orders, the front still
 * answers at once and an async order still takes its critical path. */
static void test_front_never_waits(void)
{
    enum { N = 6 };
    char burl[160], aurl[160], lurl[160];
    snprintf(burl, sizeof burl, "%s/make-coffee?mode=blocking&scale=0.5", st.server.base_url);
    snprintf(aurl, sizeof aurl, "%s/make-coffee?mode=async&scale=0.1", st.server.base_url);
    snprintf(lurl, sizeof lurl, "%s/livez", st.server.base_url);
    const char *urls[N] = {burl, burl, burl, burl, aurl, lurl};
    struct http_result res[N];
    CU_ASSERT_EQUAL(http_get_many(urls, N, res), 0);
    for (int i = 0; i < N; i++)
        CU_ASSERT_EQUAL(res[i].status, 200);
    printf("\n  blocking %.0f ms, async %.0f ms, livez %.1f ms\n", res[0].total_ms, res[4].total_ms, res[5].total_ms);
    CU_ASSERT(res[4].total_ms < 400 + harness_slack(250));
    CU_ASSERT(res[5].total_ms < harness_slack(100));
    CU_ASSERT(res[0].total_ms >= 3450);
    for (int i = 0; i < N; i++)
        http_result_free(&res[i]);
}

/* Over --max-inflight: a fast 503 with Retry-After, counted in /metrics;
 * the orders already running are unaffected. */
static void test_overload(void)
{
    struct child server;
    const char *args[] = {"--kitchen-url", st.kitchen.base_url, "--max-inflight", "3", NULL};
    CU_ASSERT_EQUAL_FATAL(child_start(&server, "coffee-server", args), 0);
    enum { N = 6 };
    char url[160];
    snprintf(url, sizeof url, "%s/make-coffee?mode=async&scale=0.2", server.base_url);
    const char *urls[N];
    struct http_result res[N];
    for (int i = 0; i < N; i++)
        urls[i] = url;
    CU_ASSERT_EQUAL(http_get_many(urls, N, res), 0);
    int ok = 0, refused = 0;
    for (int i = 0; i < N; i++) {
        if (res[i].status == 200) {
            ok++;
        } else if (res[i].status == 503) {
            refused++;
            CU_ASSERT_STRING_EQUAL(res[i].retry_after, "1");
            CU_ASSERT(strstr(res[i].body, "too many orders") != NULL);
            CU_ASSERT(res[i].total_ms < harness_slack(200)); /* refused, not queued */
        }
        http_result_free(&res[i]);
    }
    printf("\n  max-inflight 3: %d ok, %d refused\n", ok, refused);
    CU_ASSERT_EQUAL(ok, 3);
    CU_ASSERT_EQUAL(refused, N - 3);
    snprintf(url, sizeof url, "%s/metrics", server.base_url);
    struct http_result m;
    CU_ASSERT_EQUAL(http_get(url, &m), 0);
    CU_ASSERT(strstr(m.body, "coffee_orders_rejected_total{reason=\"overload\"} 3\n") != NULL);
    http_result_free(&m);
    CU_ASSERT_EQUAL(child_stop(&server, 10), 0);
}

/* 50 blocking orders at once on 4 workers (scale 0.02: 138 ms each), with
 * /metrics scraped meanwhile (it reads the pool's counters under its
 * lock): all done with their rows, and the pool idle afterwards. Under
 * ThreadSanitizer (scripts/test --tsan) this is the pool's race check. */
static void test_blocking_50(void)
{
    enum { N = 50, SCRAPES = 10 };
    char ourl[160], murl[160];
    snprintf(ourl, sizeof ourl, "%s/make-coffee?mode=blocking&scale=0.02", st.server.base_url);
    snprintf(murl, sizeof murl, "%s/metrics", st.server.base_url);
    const char *urls[N + SCRAPES];
    struct http_result res[N + SCRAPES];
    for (int i = 0; i < N + SCRAPES; i++)
        urls[i] = i < N ? ourl : murl;
    CU_ASSERT_EQUAL(http_get_many(urls, N + SCRAPES, res), 0);
    int ok = 0, rows = 0, scrapes = 0;
    for (int i = 0; i < N + SCRAPES; i++) {
        if (i < N) {
            json_t *o = json_loads(res[i].body, 0, NULL);
            ok += res[i].status == 200;
            rows += o && row_is_done((long long)json_integer_value(json_object_get(o, "order_id")));
            json_decref(o);
        } else {
            scrapes += res[i].status == 200 && strstr(res[i].body, "coffee_blocking_queue") != NULL;
        }
        http_result_free(&res[i]);
    }
    printf("\n  %d/%d blocking orders ok, %d rows done, %d/%d scrapes ok\n", ok, N, rows, scrapes, SCRAPES);
    CU_ASSERT_EQUAL(ok, N);
    CU_ASSERT_EQUAL(rows, N);
    CU_ASSERT_EQUAL(scrapes, SCRAPES);
    CU_ASSERT_EQUAL(http_metric(&st.server, "coffee_blocking_workers{state=\"busy\"}"), 0);
    CU_ASSERT_EQUAL(http_metric(&st.server, "coffee_blocking_queue"), 0);
    CU_ASSERT_EQUAL(http_metric(&st.server, "coffee_orders_in_flight{mode=\"blocking\"}"), 0);
}

int main(void)
{
    static const struct harness_test tests[] = {
        {"200 concurrent async orders: one thread, pool-bound waves", test_200_async},
        {"8 blocking orders on 4 workers show queued_ms", test_blocking_queueing},
        {"slow blocking orders never delay the front", test_front_never_waits},
        {"over --max-inflight: a fast 503 with Retry-After", test_overload},
        {"50 blocking orders at once, /metrics scraped meanwhile", test_blocking_50},
        {NULL, NULL},
    };
    return harness_main("concurrency", setup, teardown, tests);
}
