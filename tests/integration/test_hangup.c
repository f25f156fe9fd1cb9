/* Integration: clients that hang up. 200 clients start async orders
 * (scale 0.5) and close their connections 50 ms later, half with a FIN and
 * half with a reset, while every order is still suspended in the server.
 * Each order still runs to its end and commits its row, the server's
 * in-flight count comes back to zero, it still serves, and it exits 0 when
 * stopped (under scripts/test --sanitize: no leak, no error at exit). */
#include "harness.h"

#include "clock.h"

#include <CUnit/Basic.h>
#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define N 200
#define SCALE 0.5
#define HANGUP_MS 50
/* 200 orders of 2 s each at scale 0.5, their brews going through a pool of
 * 32 in waves of 0.5 s: about 5 s. The bound leaves room for a loaded
 * 2-core machine under the sanitizers. */
#define DRAIN_BOUND_S 60

static struct stack st;
static PGconn *db;

static int setup(void)
{
    return stack_setup(&st, NULL, &db);
}
static int teardown(void)
{
    return stack_teardown(&st, db);
}

static const char *const INFLIGHT = "coffee_orders_in_flight{mode=\"async\"}";

static double ended_async(void)
{
    return http_metric(&st.server, "coffee_orders_total{mode=\"async\",status=\"done\"}") +
           http_metric(&st.server, "coffee_orders_total{mode=\"async\",status=\"failed\"}");
}

static long long max_order_id(void)
{
    PGresult *r = PQexec(db, "SELECT coalesce(max(id), 0) FROM orders");
    long long id = PQresultStatus(r) == PGRES_TUPLES_OK ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : -1;
    PQclear(r);
    return id;
}

static int connect_server(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)st.server.port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

static void test_hangups(void)
{
    double ended0 = ended_async();
    long long id0 = max_order_id();
    CU_ASSERT_FATAL(!isnan(ended0) && id0 >= 0);
    CU_ASSERT_EQUAL(http_metric(&st.server, INFLIGHT), 0);

    char req[200];
    int len =
        snprintf(req, sizeof req, "GET /make-coffee?mode=async&scale=%g HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", SCALE);
    int fds[N], sent = 0;
    for (int i = 0; i < N; i++) {
        fds[i] = connect_server();
        if (fds[i] >= 0 && send(fds[i], req, (size_t)len, MSG_NOSIGNAL) == len)
            sent++;
    }
    CU_ASSERT_EQUAL(sent, N);
    /* The clients' patience: the scenario itself, not a synchronisation. */
    struct timespec patience = {0, HANGUP_MS * 1000 * 1000};
    nanosleep(&patience, NULL);
    /* Seen from outside: orders in flight while their clients are gone. */
    double inflight_at_hangup = http_metric(&st.server, INFLIGHT);
    for (int i = 0; i < N; i++) {
        if (fds[i] < 0)
            continue;
        if (i % 2) { /* a reset instead of a FIN */
            struct linger lg = {.l_onoff = 1, .l_linger = 0};
            setsockopt(fds[i], SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        }
        close(fds[i]);
    }

    /* Poll until every started order has ended, within the bound. */
    int64_t t0 = clock_mono_ns(), deadline = t0 + (int64_t)DRAIN_BOUND_S * NS_PER_SEC;
    double inflight = NAN;
    while (clock_mono_ns() < deadline) {
        inflight = http_metric(&st.server, INFLIGHT);
        if (inflight == 0)
            break;
        struct timespec period = {0, 50 * 1000 * 1000}; /* polling the metric, not synchronisation */
        nanosleep(&period, NULL);
    }
    double drain_ms = ns_to_ms(clock_mono_ns() - t0);
    double started = ended_async() - ended0;

    /* Every order the server took ran to its end and committed its row. */
    char q[200];
    snprintf(q, sizeof q, "SELECT count(*) FROM orders WHERE id > %lld AND mode = 'async' AND status = 'done'", id0);
    PGresult *r = PQexec(db, q);
    long rows = PQresultStatus(r) == PGRES_TUPLES_OK ? strtol(PQgetvalue(r, 0, 0), NULL, 10) : -1;
    PQclear(r);
    printf("\n  %d sent, %.0f in flight at the hang-up, %.0f orders ended, %ld rows done; in flight 0 after %.0f ms\n",
           sent, inflight_at_hangup, started, rows, drain_ms);
    CU_ASSERT_EQUAL(inflight, 0);
    /* The server had taken (nearly) all of them before the hang-up. */
    CU_ASSERT(inflight_at_hangup >= N * 0.9);
    CU_ASSERT(started >= inflight_at_hangup);
    CU_ASSERT_EQUAL(rows, (long)started);
}

static void test_still_serves(void)
{
    CU_ASSERT(order_done(&st.server, "async", 0));
    CU_ASSERT_EQUAL(http_metric(&st.server, INFLIGHT), 0);
}

/* SIGTERM: the server drains and exits 0. Under ASan+UBSan with leak
 * detection, any leak of the hung-up requests makes this non-zero. */
static void test_clean_exit(void)
{
    int rc = child_stop(&st.server, 30);
    if (rc != 0)
        fprintf(stderr, "  coffee-server exit status %d (want 0; see its stderr above)\n", rc);
    CU_ASSERT_EQUAL(rc, 0);
}

int main(void)
{
    static const struct harness_test tests[] = {
        {"200 async orders whose clients hang up after 50 ms: in flight back to 0, rows done", test_hangups},
        {"the server still serves", test_still_serves},
        {"the server exits 0 (no leak under the sanitizers)", test_clean_exit},
        {NULL, NULL},
    };
    return harness_main("hangup", setup, teardown, tests);
}
