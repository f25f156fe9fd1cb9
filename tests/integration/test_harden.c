/* Integration: what an adversarial client cannot do (issue 21).
 *
 * A /rush client that stops reading cannot hold the shutdown past its
 * bound (drain + 2 s), and a second signal ends it at once; clients that
 * trickle their headers cannot hold every connection slot (the header
 * deadline), and one address holds at most --max-connections-per-ip; HEAD
 * on a route that places orders is refused (405, Allow: GET), places
 * none, and leaves a pipelined request after it readable. Raw sockets: a
 * client that misbehaves is the point. */
#include "harness.h"

#include "clock.h"

#include <CUnit/Basic.h>
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

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

static void pause_ms(long ms) /* a client's own pace (trickling), not synchronisation */
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A blocking TCP connection to 127.0.0.1:port, with a receive buffer of
 * rcvbuf bytes when not 0 (set before the connect, so the window is
 * small from the start). -1 on failure. */
static int tcp_connect(int port, int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    if (rcvbuf)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int send_all(int fd, const char *s)
{
    size_t len = strlen(s), off = 0;
    while (off < len) {
        ssize_t n = send(fd, s + off, len - off, MSG_NOSIGNAL);
        if (n <= 0)
            return -1;
        off += (size_t)n;
    }
    return 0;
}

/* Reads into buf (NUL-terminated) until it holds `until`, the peer closes,
 * or timeout_ms pass. Returns the bytes read, or -1 on an error before any. */
static ssize_t recv_until(int fd, char *buf, size_t cap, const char *until, long timeout_ms)
{
    size_t len = 0;
    int64_t end = clock_mono_ns() + timeout_ms * NS_PER_MS;
    buf[0] = '\0';
    while (len + 1 < cap && !(until && strstr(buf, until))) {
        long left = (long)((end - clock_mono_ns()) / NS_PER_MS);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, (int)left) != 1)
            break;
        ssize_t n = recv(fd, buf + len, cap - 1 - len, 0);
        if (n <= 0)
            return len ? (ssize_t)len : -1;
        len += (size_t)n;
        buf[len] = '\0';
    }
    return (ssize_t)len;
}

/* Whether the peer closed fd (EOF or reset) within timeout_ms. */
static int closed_within(int fd, long timeout_ms)
{
    char b[4096];
    int64_t end = clock_mono_ns() + timeout_ms * NS_PER_MS;
    for (;;) {
        long left = (long)((end - clock_mono_ns()) / NS_PER_MS);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, (int)left) != 1)
            return 0;
        ssize_t n = recv(fd, b, sizeof b, 0);
        if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
            return 1;
    }
}

/* GET /livez on a connection of its own: 1 if it answered 200 within
 * timeout_ms. */
static int livez_once(int port, long timeout_ms)
{
    int fd = tcp_connect(port, 0);
    if (fd < 0)
        return 0;
    char buf[1024];
    int ok = send_all(fd, "GET /livez HTTP/1.1\r\nHost: t\r\n\r\n") == 0 &&
             recv_until(fd, buf, sizeof buf, "{\"status\":\"ok\"}", timeout_ms) > 0 &&
             !strncmp(buf, "HTTP/1.1 200", 12) && strstr(buf, "{\"status\":\"ok\"}");
    close(fd);
    return ok;
}

/* ---- shutdown with a client that stopped reading ------------------------- */

/* Orders ended on server (every mode of a rush here), or -1 without an answer. */
static int ended(const struct child *server)
{
    static const char *const modes[] = {"async", "naive", "blocking"};
    int n = 0;
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        for (int ok = 0; ok < 2; ok++) {
            char series[96];
            snprintf(series, sizeof series, "coffee_orders_total{mode=\"%s\",status=\"%s\"}", modes[i],
                     ok ? "done" : "failed");
            double v = http_metric(server, series);
            if (isnan(v))
                return -1;
            n += (int)v;
        }
    }
    return n;
}

#define RUSH_REQUEST "GET /rush?modes=async,naive,blocking&customers=1000&scale=0 HTTP/1.1\r\nHost: t\r\n\r\n"
#define RUSH_ORDERS 3000

/* A server with drain_ms, and a client with a tiny receive window that
 * asks for a 3,000-order rush (~3 MB of events: more than the server's
 * send buffer, 4 MB at most here, holds with its overhead) and reads
 * nothing. Returns the client's socket once every order has ended: the
 * stalled stream is then all the server still holds. */
static int stalled_rush(struct child *server, const char *drain_ms)
{
    const char *args[] = {"--drain-timeout-ms", drain_ms, "--idle-timeout-s", "0", NULL};
    if (server_start(server, &st.kitchen, args) != 0)
        return -1;
    int fd = tcp_connect(server->port, 2048);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL_FATAL(send_all(fd, RUSH_REQUEST), 0);
    int64_t t0 = clock_mono_ns();
    int n = -1;
    while (ns_to_ms(clock_mono_ns() - t0) < harness_slack(60000) && (n = ended(server)) < RUSH_ORDERS)
        pause_ms(50); /* polling period */
    CU_ASSERT_EQUAL(n, RUSH_ORDERS);
    return fd;
}

static void test_stalled_reader_drain(void)
{
    struct child server;
    int fd = stalled_rush(&server, "1000");
    CU_ASSERT_FATAL(fd >= 0);
    double ms;
    int rc = child_stop_within(&server, SIGTERM, (int)harness_slack(1000 + 2000 + 2000), &ms);
    fprintf(stderr, "\n    stalled /rush reader, --drain-timeout-ms 1000: exited %d after %.0f ms\n", rc, ms);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT(ms < harness_slack(1000 + 2000 + 1000));
    close(fd);
}

static void test_stalled_reader_second_signal(void)
{
    struct child server;
    int fd = stalled_rush(&server, "60000");
    CU_ASSERT_FATAL(fd >= 0);
    kill(server.pid, SIGTERM);
    /* The first signal was taken once the server stopped listening (it
     * closes its socket); its drain would wait 60 s for the stream. */
    int64_t t0 = clock_mono_ns();
    int listening = 1, probe;
    while (listening && ns_to_ms(clock_mono_ns() - t0) < harness_slack(5000)) {
        if ((probe = tcp_connect(server.port, 0)) < 0)
            listening = 0;
        else
            close(probe);
        pause_ms(10); /* polling period */
    }
    CU_ASSERT_FATAL(!listening);
    double ms;
    int rc = child_stop_within(&server, SIGTERM, (int)harness_slack(5000), &ms);
    fprintf(stderr, "\n    stalled /rush reader, second SIGTERM: exited %d after %.0f ms\n", rc, ms);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT(ms < harness_slack(1000));
    close(fd);
}

/* ---- slowloris ----------------------------------------------------------- */

#define TRICKLERS 30

struct tricklers {
    int fd[TRICKLERS];
    int n;
    volatile int stop;
    pthread_t thread;
};

/* One header line every 500 ms on each connection, never the blank line
 * that ends them: never idle, never a request. Stops after 12 s. */
static void *trickle(void *arg)
{
    struct tricklers *t = arg;
    int64_t t0 = clock_mono_ns();
    while (!t->stop && ns_to_ms(clock_mono_ns() - t0) < 12000) {
        pause_ms(500);
        for (int i = 0; i < t->n; i++)
            if (t->fd[i] >= 0 && send_all(t->fd[i], "X-Slow: 1\r\n") != 0) {
                close(t->fd[i]);
                t->fd[i] = -1;
            }
    }
    return NULL;
}

static void test_slowloris(void)
{
    struct child server;
    const char *args[] = {"--max-connections", "20", "--idle-timeout-s", "2", "--header-timeout-ms", "1500", NULL};
    CU_ASSERT_EQUAL_FATAL(server_start(&server, &st.kitchen, args), 0);
    struct tricklers t = {.n = TRICKLERS};
    for (int i = 0; i < TRICKLERS; i++) {
        t.fd[i] = tcp_connect(server.port, 0);
        if (t.fd[i] >= 0 && send_all(t.fd[i], "GET /livez HTTP/1.1\r\n") != 0) {
            close(t.fd[i]);
            t.fd[i] = -1;
        }
    }
    CU_ASSERT_EQUAL_FATAL(pthread_create(&t.thread, NULL, trickle, &t), 0);
    /* Every slot is taken at first; the header deadline frees them. */
    int64_t t0 = clock_mono_ns();
    int answered = 0;
    while (!answered && ns_to_ms(clock_mono_ns() - t0) < harness_slack(1500 + 3000))
        answered = livez_once(server.port, 500);
    double ms = ns_to_ms(clock_mono_ns() - t0);
    fprintf(stderr, "\n    %d trickling clients, 20 slots, 1.5 s header deadline: /livez %s after %.0f ms\n", TRICKLERS,
            answered ? "answered" : "unanswered", ms);
    CU_ASSERT(answered);
    t.stop = 1;
    pthread_join(t.thread, NULL);
    for (int i = 0; i < TRICKLERS; i++)
        if (t.fd[i] >= 0)
            close(t.fd[i]);
    CU_ASSERT_EQUAL(child_stop(&server, 10), 0);
}

/* A keep-alive connection that sends its next request in time is not cut
 * by the deadline: the deadline is for headers, not for the connection. */
static void test_header_deadline_spares_requests(void)
{
    struct child server;
    const char *args[] = {"--header-timeout-ms", "1000", NULL};
    CU_ASSERT_EQUAL_FATAL(server_start(&server, &st.kitchen, args), 0);
    int fd = tcp_connect(server.port, 0);
    CU_ASSERT_FATAL(fd >= 0);
    char buf[1024];
    int ok = 0;
    int64_t t0 = clock_mono_ns();
    for (int i = 0; i < 6; i++) { /* 6 x 400 ms: past the deadline counted from the connect */
        ok += send_all(fd, "GET /livez HTTP/1.1\r\nHost: t\r\n\r\n") == 0 &&
              recv_until(fd, buf, sizeof buf, "{\"status\":\"ok\"}", 1000) > 0 && !strncmp(buf, "HTTP/1.1 200", 12);
        pause_ms(400);
    }
    CU_ASSERT(ns_to_ms(clock_mono_ns() - t0) > 2000);
    CU_ASSERT_EQUAL(ok, 6);
    /* Idle past the deadline: closed. */
    CU_ASSERT(closed_within(fd, (long)harness_slack(1000 + 1000)));
    close(fd);
    CU_ASSERT_EQUAL(child_stop(&server, 10), 0);
}

/* A body trickled after whole headers is bounded the same way: the
 * request has not been read until its body has. */
static void test_trickled_body(void)
{
    struct child server;
    const char *args[] = {"--header-timeout-ms", "1000", NULL};
    CU_ASSERT_EQUAL_FATAL(server_start(&server, &st.kitchen, args), 0);
    int fd = tcp_connect(server.port, 0);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(send_all(fd, "GET /livez HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n"), 0);
    int64_t t0 = clock_mono_ns();
    int closed = 0;
    while (!closed && ns_to_ms(clock_mono_ns() - t0) < harness_slack(1000 + 2000)) {
        /* One byte of body every 200 ms: never idle, never done. */
        closed = send_all(fd, "x") != 0 || closed_within(fd, 200);
    }
    double ms = ns_to_ms(clock_mono_ns() - t0);
    fprintf(stderr, "\n    a body trickled, 1 s deadline: %s after %.0f ms\n", closed ? "closed" : "still open", ms);
    CU_ASSERT(closed);
    close(fd);
    CU_ASSERT_EQUAL(child_stop(&server, 10), 0);
}

static void test_per_ip_limit(void)
{
    struct child server;
    const char *args[] = {"--max-connections-per-ip", "4", NULL};
    CU_ASSERT_EQUAL_FATAL(server_start(&server, &st.kitchen, args), 0);
    /* Four connections, each answering (so that the server counts them,
     * and no longer the harness's own), then a fifth: closed at once. The
     * first four still answer. */
    int fd[5];
    char buf[1024];
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 4; i++) {
            if (round == 0)
                fd[i] = tcp_connect(server.port, 0);
            CU_ASSERT(fd[i] >= 0 && send_all(fd[i], "GET /livez HTTP/1.1\r\nHost: t\r\n\r\n") == 0 &&
                      recv_until(fd[i], buf, sizeof buf, "{\"status\":\"ok\"}", 2000) > 0 &&
                      !strncmp(buf, "HTTP/1.1 200", 12));
        }
        if (round == 0) {
            fd[4] = tcp_connect(server.port, 0);
            CU_ASSERT(fd[4] >= 0 && closed_within(fd[4], (long)harness_slack(2000)));
        }
    }
    for (int i = 0; i < 5; i++)
        if (fd[i] >= 0)
            close(fd[i]);
    CU_ASSERT_EQUAL(child_stop(&server, 10), 0);
}

/* ---- HEAD ---------------------------------------------------------------- */

/* Skips one response without a body at *p (a HEAD's): its status, or 0. */
static int head_response(const char **p)
{
    int status = 0;
    if (sscanf(*p, "HTTP/1.1 %d", &status) != 1)
        return 0;
    const char *end = strstr(*p, "\r\n\r\n");
    if (!end)
        return 0;
    if (!strstr(*p, "Allow: GET\r\n") || strstr(*p, "Allow: GET\r\n") > end)
        status = -status; /* no Allow header */
    *p = end + 4;
    return status;
}

static void test_head(void)
{
    struct child server;
    char instance[64];
    snprintf(instance, sizeof instance, "harden-head-%d", (int)getpid());
    const char *args[] = {"--instance", instance, NULL};
    CU_ASSERT_EQUAL_FATAL(server_start(&server, &st.kitchen, args), 0);
    int fd = tcp_connect(server.port, 0);
    CU_ASSERT_FATAL(fd >= 0);
    /* Pipelined: three HEADs, then a GET whose answer must parse. */
    CU_ASSERT_EQUAL(send_all(fd, "HEAD /make-coffee?mode=async&scale=0 HTTP/1.1\r\nHost: t\r\n\r\n"
                                 "HEAD /compare?scale=0 HTTP/1.1\r\nHost: t\r\n\r\n"
                                 "HEAD /rush?modes=async&customers=3&scale=0 HTTP/1.1\r\nHost: t\r\n\r\n"
                                 "GET /livez HTTP/1.1\r\nHost: t\r\n\r\n"),
                    0);
    static char buf[65536];
    CU_ASSERT(recv_until(fd, buf, sizeof buf, "{\"status\":\"ok\"}", (long)harness_slack(5000)) > 0);
    close(fd);
    const char *p = buf;
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(head_response(&p), 405);
    int status = 0;
    CU_ASSERT(sscanf(p, "HTTP/1.1 %d", &status) == 1 && status == 200);
    const char *body = strstr(p, "\r\n\r\n");
    CU_ASSERT(body && !strcmp(body + 4, "{\"status\":\"ok\"}"));
    CU_ASSERT_EQUAL(child_stop(&server, 10), 0);
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM orders WHERE instance = '%s'", instance);
    CU_ASSERT_EQUAL(db_count(db, sql), 0);
}

/* ---- an answer and its row agree ------------------------------------------ */

/* The pid of the pipelined connection's backend, from the server's log
 * ("pipelined, backend pid N"), or -1. */
static int pipelined_pid(const char *log_path)
{
    FILE *f = fopen(log_path, "r");
    if (!f)
        return -1;
    char line[1024];
    int pid = -1;
    while (fgets(line, sizeof line, f)) {
        const char *p = strstr(line, "pipelined, backend pid ");
        if (p)
            pid = (int)strtol(p + strlen("pipelined, backend pid "), NULL, 10);
    }
    fclose(f);
    return pid;
}

/* Whether backend pid has gone or waits for its client (every statement
 * it had been sent has run). */
static int backend_settled(int pid)
{
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM pg_stat_activity WHERE pid = %d AND state <> 'idle'", pid);
    return db_count(db, sql) == 0;
}

#define FROZEN_ORDERS 16

/* Only the pipelined connection's backend frozen (SIGSTOP) for longer than
 * --db-timeout-ms under async orders: their rows' final UPDATEs time out
 * and are answered 503 while still queued at the backend; after the thaw
 * they run, and must write nothing. No order answered other than 200 has
 * a done row; every 200 has one. */
static void test_frozen_pipeline(void)
{
    struct child server;
    char log_path[64], instance[64];
    snprintf(log_path, sizeof log_path, "/tmp/test_harden_%d.log", (int)getpid());
    snprintf(instance, sizeof instance, "harden-pipe-%d", (int)getpid());
    remove(log_path);
    const char *args[] = {
        "--kitchen-url", st.kitchen.base_url, "--db-pool", "4", "--db-pipelines", "1", "--db-timeout-ms",
        "1000",          "--instance",        instance,    NULL};
    CU_ASSERT_EQUAL_FATAL(child_start_log(&server, "coffee-server", args, log_path), 0);
    CU_ASSERT_EQUAL_FATAL(child_wait_ready(&server, 15), 0);
    int pid = -1;
    int64_t t0 = clock_mono_ns();
    while (ns_to_ms(clock_mono_ns() - t0) < harness_slack(15000) && (pid = pipelined_pid(log_path)) <= 0)
        pause_ms(20); /* polling period: the pipelined connection may open after /readyz answers */
    if (pid <= 0) {   /* stop the server before giving up on the test */
        child_stop(&server, 10);
        CU_FAIL_FATAL("no pipelined backend pid in the server's log");
    }
    /* Orders whose steps (0.6 s of them) are running when the freeze begins:
     * their rows' INSERTs are done, their final UPDATEs come during it. */
    struct http_batch b = {.n = FROZEN_ORDERS};
    char url[160];
    snprintf(url, sizeof url, "%s/make-coffee?mode=async&scale=0.2", server.base_url);
    for (int i = 0; i < b.n; i++)
        b.urls[i] = url;
    CU_ASSERT_EQUAL_FATAL(http_batch_start(&b), 0);
    t0 = clock_mono_ns();
    while (ns_to_ms(clock_mono_ns() - t0) < harness_slack(5000) &&
           http_metric(&server, "coffee_orders_in_flight{mode=\"async\"}") < FROZEN_ORDERS)
        pause_ms(10); /* polling period */
    /* Every row inserted: the freeze then catches the final UPDATEs. */
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM orders WHERE instance = '%s'", instance);
    while (ns_to_ms(clock_mono_ns() - t0) < harness_slack(5000) && db_count(db, sql) < FROZEN_ORDERS)
        pause_ms(10); /* polling period */
    CU_ASSERT_EQUAL(kill(pid, SIGSTOP), 0);
    pause_ms(2500); /* the fault's duration: longer than --db-timeout-ms */
    CU_ASSERT_EQUAL(kill(pid, SIGCONT), 0);
    http_batch_wait(&b);
    /* Whatever was queued at the backend has run once it is idle (or gone). */
    t0 = clock_mono_ns();
    while (ns_to_ms(clock_mono_ns() - t0) < harness_slack(10000) && !backend_settled(pid))
        pause_ms(20); /* polling period */
    CU_ASSERT(backend_settled(pid));
    int refused = 0, disagree = 0, ok = 0;
    for (int i = 0; i < b.n; i++) {
        json_error_t e;
        json_t *j = b.res[i].body ? json_loads(b.res[i].body, 0, &e) : NULL;
        double id = jnum(j, "order_id");
        char row[32] = "";
        if (!isnan(id))
            db_row_status(db, (long long)id, row, sizeof row);
        if (b.res[i].status == 200) {
            ok++;
            disagree += strcmp(row, "done") != 0;
        } else if (!isnan(id)) {
            refused++;
            disagree += !strcmp(row, "done");
        }
        json_decref(j);
        http_result_free(&b.res[i]);
    }
    fprintf(stderr,
            "\n    pipelined backend frozen 2.5 s (--db-timeout-ms 1000): %d answered 200, %d refused with a row, "
            "%d rows disagree\n",
            ok, refused, disagree);
    CU_ASSERT(refused > 0); /* the fault bit */
    CU_ASSERT_EQUAL(disagree, 0);
    CU_ASSERT_EQUAL(child_stop(&server, 10), 0);
    remove(log_path);
}

int main(void)
{
    static const struct harness_test tests[] = {
        {"HEAD on /make-coffee, /compare and /rush: 405, no order, a pipelined GET after it reads", test_head},
        {"trickling clients on every slot: /livez answers once the header deadline frees them", test_slowloris},
        {"the header deadline spares a keep-alive connection that keeps asking", test_header_deadline_spares_requests},
        {"a body trickled after whole headers: closed at the deadline", test_trickled_body},
        {"--max-connections-per-ip: one address holds at most that many", test_per_ip_limit},
        {"a /rush client that stopped reading: SIGTERM ends within drain + 2 s", test_stalled_reader_drain},
        {"a /rush client that stopped reading: a second SIGTERM ends at once", test_stalled_reader_second_signal},
        {"the pipelined backend frozen past --db-timeout-ms: no order answered non-200 ends done",
         test_frozen_pipeline},
        {NULL, NULL}};
    return harness_main("harden", setup, teardown, tests);
}
