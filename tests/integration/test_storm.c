/* Integration: a connection storm. Opens COFFEE_STORM_N TCP connections
 * (default 2000; scripts/storm runs 20,000) to the server on loopback, each
 * with an unfinished request head, holds them while the service must still
 * answer /livez and an order, then closes them; five times. Checks the
 * server's RSS (VmRSS) against its per-connection memory bound at the
 * peak, that its fds come back after each round, and that the peak settles
 * instead of growing by a storm's worth each round (nothing kept per
 * connection). */
#include "harness.h"

#include "clock.h"
#include "proc.h"

#include <CUnit/Basic.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* MHD's memory pool per connection (16 KB in the server) plus its
 * connection struct: a connection may cost at most this much resident
 * memory. */
#define PER_CONN_KB 40
#define ROUND_BOUND_S 120
/* The server's own fds move by a few while idle (a client connection of
 * the previous check still closing, pooled kitchen connections): counts of
 * its fds are compared with this much slack. */
#define FD_SLACK 8

/* Built with a sanitizer (the server is built with the same flags), RSS
 * measures the sanitizer's allocator: ASan keeps freed blocks in a
 * quarantine (up to 256 MB) to catch use after free, so RSS grows by what
 * each storm freed. There, leak detection at exit does the checking. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define RSS_CHECKED 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define RSS_CHECKED 0
#endif
#endif
#ifndef RSS_CHECKED
#define RSS_CHECKED 1
#endif

static struct stack st;
static PGconn *db;
static int n_conns;
static char max_conns[16];

static int setup(void)
{
    const char *env = getenv("COFFEE_STORM_N");
    n_conns = env ? (int)strtol(env, NULL, 10) : 2000;
    if (n_conns < 1 || n_conns > 30000)
        n_conns = 2000;
    /* This process holds one fd per connection: where the hard limit is
     * lower (no CAP_SYS_RESOURCE), the storm shrinks to fit, and says so. */
    int limit = proc_raise_nofile(n_conns + 1000);
    if (limit < n_conns + 300) {
        fprintf(stderr, "test_storm: fd limit %d: %d connections instead of %d\n", limit, limit - 300, n_conns);
        n_conns = limit - 300;
    }
    if (n_conns < 200)
        return -1;
    /* Room for the storm and for the checks made during it. */
    snprintf(max_conns, sizeof max_conns, "%d", n_conns + 100);
    const char *const args[] = {"--max-connections", max_conns, NULL};
    return stack_setup(&st, args, &db);
}
static int teardown(void)
{
    return stack_teardown(&st, db);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Polls the server's open fds until at least (or, with at_most, at most)
 * want, within the deadline. Returns the last count. */
static int wait_fds(int want, int at_most, int64_t deadline)
{
    int n;
    while ((n = child_fds(&st.server)) >= 0 && (at_most ? n > want : n < want) && clock_mono_ns() < deadline)
        sleep_ms(20); /* polling /proc, not synchronisation */
    return n;
}

struct round {
    long rss_before, rss_peak, rss_after; /* kB */
    int fds_before, fds_peak, fds_after;
    int connected;
    double connect_ms, livez_ms;
    int livez, order;
};

/* One storm: connects n sockets (non-blocking), sends each an unfinished
 * request head, waits until the server holds them all, checks the service,
 * closes them and waits until the server let them go. */
static void storm(struct round *r)
{
    static const char head[] = "GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\n"; /* no blank line: unfinished */
    int64_t deadline = clock_mono_ns() + (int64_t)ROUND_BOUND_S * NS_PER_SEC;
    memset(r, 0, sizeof *r);
    r->rss_before = child_rss_kb(&st.server);
    r->fds_before = child_fds(&st.server);
    int *fds = malloc(sizeof *fds * (size_t)n_conns);
    struct pollfd *pfds = calloc((size_t)n_conns, sizeof *pfds);
    CU_ASSERT_PTR_NOT_NULL_FATAL(fds);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pfds);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)st.server.port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int64_t t0 = clock_mono_ns();
    for (int i = 0; i < n_conns; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fds[i] >= 0 && connect(fds[i], (struct sockaddr *)&sa, sizeof sa) != 0 && errno != EINPROGRESS) {
            close(fds[i]);
            fds[i] = -1;
        }
        pfds[i] = (struct pollfd){.fd = fds[i], .events = POLLOUT};
    }
    /* Each connection, once established, sends its unfinished head. */
    int pending = n_conns;
    while (pending > 0 && clock_mono_ns() < deadline) {
        if (poll(pfds, (nfds_t)n_conns, 100) <= 0)
            continue;
        for (int i = 0; i < n_conns; i++) {
            if (pfds[i].fd < 0 || !pfds[i].revents)
                continue;
            int err = 0;
            socklen_t len = sizeof err;
            getsockopt(pfds[i].fd, SOL_SOCKET, SO_ERROR, &err, &len);
            if (!err && send(pfds[i].fd, head, sizeof head - 1, MSG_NOSIGNAL) == (ssize_t)(sizeof head - 1))
                r->connected++;
            pfds[i].fd = -1; /* done with it either way */
            pending--;
        }
    }
    r->connect_ms = ns_to_ms(clock_mono_ns() - t0);
    /* The server holds them all (its fds), then: RSS at the peak. */
    r->fds_peak = wait_fds(r->fds_before + r->connected - FD_SLACK, 0, deadline);
    r->rss_peak = child_rss_kb(&st.server);

    /* The service answers while the storm holds its connections. */
    char url[160];
    struct http_result h;
    snprintf(url, sizeof url, "%s/livez", st.server.base_url);
    r->livez = http_get(url, &h) == 0 && h.status == 200;
    r->livez_ms = h.total_ms;
    http_result_free(&h);
    r->order = order_done(&st.server, "async", 0);

    /* A reset, not a FIN: no TIME_WAIT left to hold the client's ports
     * (a second round of 20,000 needs them again). */
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    for (int i = 0; i < n_conns; i++) {
        if (fds[i] >= 0) {
            setsockopt(fds[i], SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
            close(fds[i]);
        }
    }
    free(fds);
    free(pfds);
    /* Let go of: back to where it was, give or take a few pooled kitchen
     * and database connections. */
    r->fds_after = wait_fds(r->fds_before + FD_SLACK, 1, deadline);
    /* The server hands the storm's memory back within about a second of
     * the connections closing (httpd.c, on_trim_timer): poll for it, up to
     * 3 s (the first round keeps the tables it grew: it waits them all). */
    int64_t trimmed_by = clock_mono_ns() + 3 * NS_PER_SEC;
    do {
        r->rss_after = child_rss_kb(&st.server);
        if (r->rss_after <= r->rss_before + 1024)
            break;
        struct timespec ts = {0, 50 * 1000 * 1000}; /* polling period */
        nanosleep(&ts, NULL);
    } while (clock_mono_ns() < trimmed_by);
}

static void report(const char *name, const struct round *r)
{
    printf("\n  %s: %d/%d connected in %.0f ms; server fds %d -> %d -> %d; RSS %ld -> %ld -> %ld kB"
           " (%.1f kB per connection); /livez %s in %.1f ms, order %s",
           name, r->connected, n_conns, r->connect_ms, r->fds_before, r->fds_peak, r->fds_after, r->rss_before,
           r->rss_peak, r->rss_after, r->connected ? (double)(r->rss_peak - r->rss_before) / r->connected : 0.0,
           r->livez ? "ok" : "FAILED", r->livez_ms, r->order ? "ok" : "FAILED");
}

static void check_round(const struct round *r)
{
    CU_ASSERT_EQUAL(r->connected, n_conns);
    CU_ASSERT(r->fds_peak >= r->fds_before + r->connected - FD_SLACK);
    CU_ASSERT(r->livez);
    CU_ASSERT(r->order);
    if (RSS_CHECKED)
        CU_ASSERT(r->rss_peak - r->rss_before <= (long)PER_CONN_KB * n_conns);
    CU_ASSERT(r->fds_after <= r->fds_before + FD_SLACK);
}

#define ROUNDS 5

static void test_storm(void)
{
    CU_ASSERT_FATAL(order_done(&st.server, "async", 0)); /* warm: the pools and caches exist */
    struct round r[ROUNDS];
    for (int i = 0; i < ROUNDS; i++) {
        char name[32];
        snprintf(name, sizeof name, "round %d", i + 1);
        storm(&r[i]);
        report(name, &r[i]);
        check_round(&r[i]);
    }
    /* Nothing kept per connection: the server trims its heap once the
     * connections fell (httpd.c, on_trim_timer), so after every storm the
     * RSS is back within 1 MB of where the first one left it (the first
     * grows MHD's and the loop's own tables once), and the peaks do not
     * creep up: a leak, or a fragmented heap kept, would add to both every
     * round. */
    long storm_kb = r[0].rss_peak - r[0].rss_before;
    long creep = r[ROUNDS - 1].rss_peak - r[ROUNDS - 3].rss_peak;
    printf("\n  one storm takes %ld kB; the peak grew %ld kB over the last three rounds%s\n", storm_kb, creep,
           RSS_CHECKED ? "" : " (not checked: built with a sanitizer)");
    if (!RSS_CHECKED)
        return;
    for (int i = 1; i < ROUNDS; i++)
        CU_ASSERT(r[i].rss_after <= r[0].rss_after + 1024);
    CU_ASSERT(creep <= storm_kb / 4 + 1024);
}

int main(void)
{
    static const struct harness_test tests[] = {
        {"a storm of connections, five times: bounded memory, fds back, still serving", test_storm},
        {NULL, NULL},
    };
    return harness_main("storm", setup, teardown, tests);
}
