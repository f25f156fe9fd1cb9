/* Integration: SIGTERM. The server stops accepting, lets the orders in
 * flight finish (up to --drain-timeout-ms), answers them, and exits 0;
 * past the timeout it cancels them with a 503, records them as failed, and
 * still exits 0. */
#include "harness.h"

#include "clock.h"

#include <CUnit/Basic.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct stack st; /* its kitchen serves the servers started here */
static PGconn *db;

static int setup(void)
{
    return stack_setup(&st, NULL, &db);
}
static int teardown(void)
{
    return stack_teardown(&st, db);
}

/* Orders in flight on server, every mode, from its /metrics; -1 without
 * an answer. */
static int inflight(const struct child *server)
{
    static const char *const series[] = {
        "coffee_orders_in_flight{mode=\"blocking\"}", "coffee_orders_in_flight{mode=\"async\"}",
        "coffee_orders_in_flight{mode=\"naive\"}", "coffee_orders_in_flight{mode=\"mixed\"}"};
    int n = 0;
    for (size_t i = 0; i < sizeof series / sizeof series[0]; i++) {
        double v = http_metric(server, series[i]);
        if (isnan(v))
            return -1;
        n += (int)v;
    }
    return n;
}

/* Starts a server with extra args and a batch of orders on it; returns once
 * all of them are in flight (polling, bounded). */
static void start_batch(struct child *server, const char *drain_ms, struct http_batch *b, int nasync, double ascale,
                        int nblocking, double bscale)
{
    const char *args[] = {"--kitchen-url", st.kitchen.base_url, "--workers", "2", "--drain-timeout-ms", drain_ms, NULL};
    CU_ASSERT_EQUAL_FATAL(child_start(server, "coffee-server", args), 0);
    static char aurl[160], burl[160];
    snprintf(aurl, sizeof aurl, "%s/make-coffee?mode=async&scale=%g", server->base_url, ascale);
    snprintf(burl, sizeof burl, "%s/make-coffee?mode=blocking&scale=%g", server->base_url, bscale);
    b->n = nasync + nblocking;
    for (int i = 0; i < b->n; i++)
        b->urls[i] = i < nasync ? aurl : burl;
    CU_ASSERT_EQUAL_FATAL(http_batch_start(b), 0);
    int64_t t0 = clock_mono_ns();
    int n = 0;
    while (ns_to_ms(clock_mono_ns() - t0) < 5000 && (n = inflight(server)) < b->n) {
        struct timespec ts = {0, 10 * 1000 * 1000}; /* polling period */
        nanosleep(&ts, NULL);
    }
    CU_ASSERT_EQUAL(n, b->n);
}

/* A new connection after SIGTERM is refused at once (the listening socket
 * is closed): polled, since the signal is handled on the server's own time. */
static void check_no_new_orders(const struct child *server)
{
    char url[160];
    snprintf(url, sizeof url, "%s/livez", server->base_url);
    int64_t t0 = clock_mono_ns();
    int refused = 0;
    while (!refused && ns_to_ms(clock_mono_ns() - t0) < 2000) {
        struct http_result r;
        refused = http_get(url, &r) != 0;
        http_result_free(&r);
    }
    CU_ASSERT(refused);
    CU_ASSERT(ns_to_ms(clock_mono_ns() - t0) < 500);
}

static void test_drain(void)
{
    struct child server;
    struct http_batch b;
    start_batch(&server, "10000", &b, 3, 0.3, 2, 0.2);
    int64_t t0 = clock_mono_ns();
    CU_ASSERT_EQUAL(kill(server.pid, SIGTERM), 0);
    check_no_new_orders(&server);
    http_batch_wait(&b);
    double ms = ns_to_ms(clock_mono_ns() - t0);
    for (int i = 0; i < b.n; i++) {
        CU_ASSERT_EQUAL(b.res[i].status, 200);
        http_result_free(&b.res[i]);
    }
    printf("\n  every order in flight answered 200, %.0f ms after SIGTERM\n", ms);
    CU_ASSERT_EQUAL(child_stop(&server, 10), 0);
}

static void test_drain_timeout(void)
{
    struct child server;
    struct http_batch b;
    /* Two workers: one of the three blocking orders waits in the queue. */
    start_batch(&server, "300", &b, 2, 2, 3, 2);
    int64_t t0 = clock_mono_ns();
    CU_ASSERT_EQUAL(kill(server.pid, SIGTERM), 0);
    http_batch_wait(&b);
    double ms = ns_to_ms(clock_mono_ns() - t0);
    int ids = 0;
    for (int i = 0; i < b.n; i++) {
        json_t *o = json_loads(b.res[i].body ? b.res[i].body : "", 0, NULL);
        CU_ASSERT_EQUAL(b.res[i].status, 503);
        const char *err = json_string_value(json_object_get(o, "error"));
        CU_ASSERT(err && strstr(err, "shutting down"));
        long long id = json_integer_value(json_object_get(o, "order_id"));
        if (id > 0) { /* it got a row: the row says failed */
            char status[16];
            db_row_status(db, id, status, sizeof status);
            CU_ASSERT_STRING_EQUAL(status, "failed");
            ids++;
        }
        json_decref(o);
        http_result_free(&b.res[i]);
    }
    printf("\n  cancelled %d orders (%d with a row) %.0f ms after SIGTERM (drain timeout 300 ms)\n", b.n, ids, ms);
    CU_ASSERT_EQUAL(ids, b.n - 1); /* the queued blocking order never reached the database */
    /* 300 ms, then a kitchen transfer notices within about a second. */
    CU_ASSERT(ms >= 300);
    CU_ASSERT(ms < 300 + harness_slack(1500));
    CU_ASSERT_EQUAL(child_stop(&server, 10), 0);
}

int main(void)
{
    static const struct harness_test tests[] = {
        {"SIGTERM: in-flight orders finish, no new ones, exit 0", test_drain},
        {"SIGTERM past --drain-timeout-ms: orders cancelled with 503, rows failed, exit 0", test_drain_timeout},
        {NULL, NULL},
    };
    return harness_main("shutdown", setup, teardown, tests);
}
