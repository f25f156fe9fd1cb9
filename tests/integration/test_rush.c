/* Integration: GET /rush, rush hour as Server-Sent Events. A rush of 30
 * customers in two modes streams a start event, one order event per order
 * (its /make-coffee JSON, a row in the database for each), then one summary
 * per mode and an end; bad arguments answer JSON 400, a rush over the
 * in-flight limit 503 with Retry-After and starts nothing; a client that
 * hangs up mid-rush stops nothing (every order ends and keeps its row) and
 * the server lets go of its connection. */
#include "harness.h"

#include "clock.h"

#include <CUnit/Basic.h>
#include <curl/curl.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CUSTOMERS 30
#define SCALE 0.05
#define MAX_INFLIGHT 120
#define WORKERS 8
#define MAX_EVENTS 256
#define BOUND_S 60

static struct stack st;
static PGconn *db;

static int setup(void)
{
    static const char *const args[] = {"--max-inflight", "120", "--workers", "8", NULL};
    return stack_setup(&st, args, &db);
}
static int teardown(void)
{
    return stack_teardown(&st, db);
}

/* ---- a streaming GET ------------------------------------------------------- */

struct stream {
    CURL *easy;
    unsigned long inode; /* the server's socket of this stream, found at the hang-up */
    char *buf;
    size_t len, cap;
    const char *stop_after; /* hang up once this text arrived (NULL: read to the end) */
    int hung_up;
};

/* The inode of the server's end of e's connection (from /proc/net/tcp:
 * local port the server's, remote port e's), or 0. */
static unsigned long server_socket_inode(CURL *e)
{
    long mine = 0;
    curl_easy_getinfo(e, CURLINFO_LOCAL_PORT, &mine);
    FILE *f = fopen("/proc/net/tcp", "r");
    if (!f)
        return 0;
    char line[512];
    unsigned long inode = 0;
    while (!inode && fgets(line, sizeof line, f)) {
        unsigned lport, rport;
        unsigned long ino;
        /* sl local rem st tx:rx tr:when retrnsmt uid timeout inode */
        if (sscanf(line, " %*d: %*x:%x %*x:%x %*x %*x:%*x %*x:%*x %*x %*u %*u %lu", &lport, &rport, &ino) == 3 &&
            (int)lport == st.server.port && (long)rport == mine)
            inode = ino;
    }
    fclose(f);
    return inode;
}

/* Whether the server process still has a descriptor for socket inode. */
static int server_has_socket(unsigned long inode)
{
    char dir[64], want[64];
    snprintf(dir, sizeof dir, "/proc/%d/fd", (int)st.server.pid);
    snprintf(want, sizeof want, "socket:[%lu]", inode);
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int found = 0;
    struct dirent *de;
    while (!found && (de = readdir(d)) != NULL) {
        char path[320], link[64];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        ssize_t n = readlink(path, link, sizeof link - 1);
        if (n > 0) {
            link[n] = '\0';
            found = !strcmp(link, want);
        }
    }
    closedir(d);
    return found;
}

static size_t on_data(char *p, size_t size, size_t nmemb, void *arg)
{
    struct stream *s = arg;
    size_t n = size * nmemb;
    if (s->len + n + 1 > s->cap) {
        size_t cap = (s->cap ? s->cap * 2 : 65536) + n;
        char *b = realloc(s->buf, cap);
        if (!b)
            return 0;
        s->buf = b;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, p, n);
    s->len += n;
    s->buf[s->len] = '\0';
    if (s->stop_after && strstr(s->buf, s->stop_after)) {
        s->hung_up = 1;
        s->inode = server_socket_inode(s->easy);
        return 0; /* curl aborts the transfer and closes the connection */
    }
    return n;
}

/* GETs url into s; returns the HTTP status (0 on a transport failure other
 * than our own hang-up). */
static long stream_get(const char *url, struct stream *s, char *ctype, size_t ctlen)
{
    CURL *e = curl_easy_init();
    if (!e)
        return 0;
    s->easy = e;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)harness_slack(BOUND_S * 1000));
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    CURLcode rc = curl_easy_perform(e);
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    char *ct = NULL;
    curl_easy_getinfo(e, CURLINFO_CONTENT_TYPE, &ct);
    snprintf(ctype, ctlen, "%s", ct ? ct : "");
    curl_easy_cleanup(e);
    return rc == CURLE_OK || (rc == CURLE_WRITE_ERROR && s->hung_up) ? status : 0;
}

struct event {
    int id; /* -1 when none */
    char name[32];
    json_t *data; /* new reference, or NULL */
};

/* Splits an SSE stream into events (comments skipped). Returns how many. */
static int parse_events(char *text, struct event *ev, int max, int *comments)
{
    int n = 0;
    *comments = 0;
    char *save = NULL;
    for (char *block = strtok_r(text, "\n", &save); block && n < max;) {
        struct event e = {.id = -1};
        int any = 0;
        /* One event: lines until an empty one (strtok_r folds the empty
         * lines away, so an event ends at its data line). */
        for (; block; block = strtok_r(NULL, "\n", &save)) {
            if (block[0] == ':') {
                (*comments)++;
                continue;
            }
            any = 1;
            if (!strncmp(block, "id: ", 4)) {
                e.id = (int)strtol(block + 4, NULL, 10);
            } else if (!strncmp(block, "event: ", 7)) {
                snprintf(e.name, sizeof e.name, "%s", block + 7);
            } else if (!strncmp(block, "data: ", 6)) {
                e.data = json_loads(block + 6, 0, NULL);
                block = strtok_r(NULL, "\n", &save);
                break;
            }
        }
        if (any)
            ev[n++] = e;
    }
    return n;
}

static long long count_rows(const char *where_ids)
{
    char q[65536];
    snprintf(q, sizeof q,
             "SELECT count(*) FROM orders WHERE id IN (%s) AND status = 'done'"
             " AND instance IS NOT NULL AND traceparent IS NOT NULL",
             where_ids);
    PGresult *r = PQexec(db, q);
    long long n = PQresultStatus(r) == PGRES_TUPLES_OK ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : -1;
    PQclear(r);
    return n;
}

/* ---- tests ------------------------------------------------------------------- */

static void test_stream(void)
{
    char url[256], ctype[64];
    snprintf(url, sizeof url, "%s/rush?modes=blocking,async&customers=%d&scale=%g", st.server.base_url, CUSTOMERS,
             SCALE);
    struct stream s = {0};
    long status = stream_get(url, &s, ctype, sizeof ctype);
    CU_ASSERT_EQUAL_FATAL(status, 200);
    CU_ASSERT_STRING_EQUAL(ctype, "text/event-stream");
    CU_ASSERT_FATAL(s.buf != NULL);

    /* The keys of an order as /make-coffee answers it. */
    long st1;
    char murl[128];
    snprintf(murl, sizeof murl, "%s/make-coffee?mode=async&scale=0", st.server.base_url);
    json_t *ref = http_get_json(murl, &st1);
    CU_ASSERT_FATAL(ref != NULL && st1 == 200);

    static struct event ev[MAX_EVENTS];
    int comments, n = parse_events(s.buf, ev, MAX_EVENTS, &comments);
    CU_ASSERT_EQUAL_FATAL(n, 1 + 2 * CUSTOMERS + 2 + 1);
    CU_ASSERT_STRING_EQUAL(ev[0].name, "start");
    CU_ASSERT_EQUAL(jnum(ev[0].data, "customers"), CUSTOMERS);
    CU_ASSERT_EQUAL(jnum(ev[0].data, "workers"), WORKERS);

    int seen[2 * CUSTOMERS] = {0}, per_mode[2] = {0};
    char ids[8192];
    size_t off = 0;
    for (int i = 1; i <= 2 * CUSTOMERS; i++) {
        CU_ASSERT_STRING_EQUAL(ev[i].name, "order");
        CU_ASSERT_FATAL(ev[i].data != NULL);
        CU_ASSERT(ev[i].id >= 0 && ev[i].id < 2 * CUSTOMERS);
        if (ev[i].id >= 0 && ev[i].id < 2 * CUSTOMERS)
            seen[ev[i].id]++;
        const char *mode = json_string_value(json_object_get(ev[i].data, "mode"));
        CU_ASSERT_FATAL(mode != NULL);
        /* Arrival order interleaves the modes: even ids blocking, odd async. */
        CU_ASSERT_STRING_EQUAL(mode, ev[i].id % 2 ? "async" : "blocking");
        per_mode[!strcmp(mode, "async")]++;
        CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(ev[i].data, "status")), "done");
        CU_ASSERT_EQUAL(json_array_size(json_object_get(ev[i].data, "steps")), 4);
        CU_ASSERT_EQUAL(jnum(ev[i].data, "scale"), SCALE);
        const char *key;
        json_t *v;
        json_object_foreach(ref, key, v) CU_ASSERT(json_object_get(ev[i].data, key) != NULL);
        CU_ASSERT_EQUAL(json_object_size(ev[i].data), json_object_size(ref));
        off += (size_t)snprintf(ids + off, sizeof ids - off, "%s%lld", off ? "," : "",
                                (long long)jnum(ev[i].data, "order_id"));
    }
    for (int i = 0; i < 2 * CUSTOMERS; i++)
        CU_ASSERT_EQUAL(seen[i], 1);
    CU_ASSERT_EQUAL(per_mode[0], CUSTOMERS);
    CU_ASSERT_EQUAL(per_mode[1], CUSTOMERS);
    /* Every order of the rush has its row, committed before its event,
     * stamped with the instance and a trace as /make-coffee's are. */
    CU_ASSERT_EQUAL(count_rows(ids), 2 * CUSTOMERS);

    const json_t *sb = ev[1 + 2 * CUSTOMERS].data, *sa = ev[2 + 2 * CUSTOMERS].data;
    CU_ASSERT_STRING_EQUAL(ev[1 + 2 * CUSTOMERS].name, "summary");
    CU_ASSERT_STRING_EQUAL(ev[2 + 2 * CUSTOMERS].name, "summary");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(sb, "mode")), "blocking");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(sa, "mode")), "async");
    for (int k = 0; k < 2; k++) {
        const json_t *sm = k ? sa : sb;
        CU_ASSERT_EQUAL(jnum(sm, "ok"), CUSTOMERS);
        CU_ASSERT_EQUAL(jnum(sm, "failed"), 0);
        CU_ASSERT(jnum(sm, "orders_per_s") > 0);
        CU_ASSERT(jnum(sm, "p50_ms") <= jnum(sm, "p99_ms") && jnum(sm, "p99_ms") <= jnum(sm, "max_ms"));
        CU_ASSERT(jnum(sm, "queued_mean_ms") <= jnum(sm, "queued_max_ms"));
        CU_ASSERT(jnum(sm, "db_connections_used") >= 1);
        CU_ASSERT_EQUAL(jnum(sm, "peak_in_flight"), CUSTOMERS);
        /* The server's thread count does not grow with load. */
        CU_ASSERT_EQUAL(jnum(sm, "threads_during"), jnum(sm, "threads_before"));
    }
    /* 30 blocking orders on 8 workers: 4 waves, the last ones queued for
     * three waves at least; async's 30 fit the pool in one wave. */
    double wave_ms = 6900 * SCALE;
    CU_ASSERT(jnum(sb, "queued_max_ms") >= 3 * wave_ms * 0.95);
    CU_ASSERT(jnum(sb, "max_ms") >= 4 * wave_ms * 0.95);
    CU_ASSERT(jnum(sb, "db_connections_used") <= WORKERS);
    CU_ASSERT(jnum(sa, "max_ms") < jnum(sb, "max_ms"));
    CU_ASSERT_STRING_EQUAL(ev[n - 1].name, "end");
    printf("\n  blocking: max %.0f ms, queued max %.0f ms; async: max %.0f ms; %d keep-alive comments\n",
           jnum(sb, "max_ms"), jnum(sb, "queued_max_ms"), jnum(sa, "max_ms"), comments);
    for (int i = 0; i < n; i++)
        json_decref(ev[i].data);
    json_decref(ref);
    free(s.buf);
}

static void test_bad_input(void)
{
    static const char *const bad[] = {
        "customers=3",
        "modes=async",
        "modes=async&customers=0",
        "modes=async&customers=1001",
        "modes=async&customers=abc",
        "modes=async&customers=3&customers=4",
        "modes=tea&customers=3",
        "modes=async,async&customers=3",
        "modes=&customers=3",
        "modes=async&customers=3&scale=11",
        "modes=async&customers=3&extra=1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char url[256];
        snprintf(url, sizeof url, "%s/rush?%s", st.server.base_url, bad[i]);
        struct http_result r;
        CU_ASSERT_FATAL(http_get(url, &r) == 0);
        json_t *j = json_loads(r.body, 0, NULL);
        if (r.status != 400 || !json_is_string(json_object_get(j, "error")))
            fprintf(stderr, "  /rush?%s answered %ld %s\n", bad[i], r.status, r.body);
        CU_ASSERT_EQUAL(r.status, 400);
        CU_ASSERT_STRING_EQUAL(r.content_type, "application/json");
        CU_ASSERT(json_is_string(json_object_get(j, "error")));
        json_decref(j);
        http_result_free(&r);
    }
}

static void test_over_limit(void)
{
    double rejected0 = http_metric(&st.server, "coffee_orders_rejected_total{reason=\"overload\"}");
    char url[256];
    /* 2 x 61 = 122 orders: over --max-inflight 120. */
    snprintf(url, sizeof url, "%s/rush?modes=blocking,async&customers=%d&scale=0", st.server.base_url,
             MAX_INFLIGHT / 2 + 1);
    struct http_result r;
    CU_ASSERT_FATAL(http_get(url, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 503);
    CU_ASSERT_STRING_EQUAL(r.retry_after, "1");
    json_t *j = json_loads(r.body, 0, NULL);
    CU_ASSERT(json_is_string(json_object_get(j, "error")));
    json_decref(j);
    http_result_free(&r);
    CU_ASSERT_EQUAL(http_metric(&st.server, "coffee_orders_in_flight{mode=\"async\"}"), 0);
    CU_ASSERT_EQUAL(http_metric(&st.server, "coffee_orders_in_flight{mode=\"blocking\"}"), 0);
    CU_ASSERT_EQUAL(http_metric(&st.server, "coffee_orders_rejected_total{reason=\"overload\"}"), rejected0 + 1);
}

/* --max-mixed (1 here) bounds a rush too: two mixed customers would
 * freeze the loop twice over. */
static void test_over_mixed(void)
{
    double rejected0 = http_metric(&st.server, "coffee_orders_rejected_total{reason=\"overload\"}");
    char url[256];
    snprintf(url, sizeof url, "%s/rush?modes=async,mixed&customers=2&scale=0", st.server.base_url);
    struct http_result r;
    CU_ASSERT_FATAL(http_get(url, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 503);
    CU_ASSERT_STRING_EQUAL(r.retry_after, "1");
    json_t *j = json_loads(r.body, 0, NULL);
    CU_ASSERT(jstr(j, "error") && strstr(jstr(j, "error"), "--max-mixed"));
    json_decref(j);
    http_result_free(&r);
    CU_ASSERT_EQUAL(http_metric(&st.server, "coffee_orders_in_flight{mode=\"async\"}"), 0);
    CU_ASSERT_EQUAL(http_metric(&st.server, "coffee_orders_rejected_total{reason=\"overload\"}"), rejected0 + 1);
}

static double ended(const char *mode)
{
    char a[128], b[128];
    snprintf(a, sizeof a, "coffee_orders_total{mode=\"%s\",status=\"done\"}", mode);
    snprintf(b, sizeof b, "coffee_orders_total{mode=\"%s\",status=\"failed\"}", mode);
    return http_metric(&st.server, a) + http_metric(&st.server, b);
}

static long long max_order_id(void)
{
    PGresult *r = PQexec(db, "SELECT coalesce(max(id), 0) FROM orders");
    long long id = PQresultStatus(r) == PGRES_TUPLES_OK ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : -1;
    PQclear(r);
    return id;
}

static void pause_ms(long ms) /* between polls of a metric, not synchronisation */
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

static void test_hangup(void)
{
    const int n = 40;
    const double scale = 0.3; /* 1.2 s per async order: all still running at the hang-up */
    double ended0 = ended("async");
    long long id0 = max_order_id();
    CU_ASSERT_FATAL(!isnan(ended0) && id0 >= 0);

    char url[256], ctype[64];
    snprintf(url, sizeof url, "%s/rush?modes=async&customers=%d&scale=%g", st.server.base_url, n, scale);
    struct stream s = {.stop_after = "event: start"};
    CU_ASSERT_EQUAL(stream_get(url, &s, ctype, sizeof ctype), 200);
    CU_ASSERT(s.hung_up);
    CU_ASSERT(s.inode != 0);
    double inflight_at_hangup = http_metric(&st.server, "coffee_orders_in_flight{mode=\"async\"}");
    free(s.buf);

    /* Every order runs to its end; the server lets go of the connection. */
    int64_t deadline = clock_mono_ns() + (int64_t)harness_slack(BOUND_S * 1000) * NS_PER_MS;
    double now_ended = ended0;
    int held = -1;
    while (clock_mono_ns() < deadline) {
        now_ended = ended("async");
        held = s.inode ? server_has_socket(s.inode) : -1;
        if (now_ended - ended0 >= n && held == 0)
            break;
        pause_ms(50);
    }
    char q[200];
    snprintf(q, sizeof q,
             "SELECT count(*) FROM orders WHERE id > %lld AND mode = 'async' AND status = 'done' AND scale = %g", id0,
             scale);
    PGresult *r = PQexec(db, q);
    long rows = PQresultStatus(r) == PGRES_TUPLES_OK ? strtol(PQgetvalue(r, 0, 0), NULL, 10) : -1;
    PQclear(r);
    printf("\n  %.0f in flight at the hang-up; %.0f ended, %ld rows done; the stream's socket %s\n", inflight_at_hangup,
           now_ended - ended0, rows, held == 0 ? "closed by the server" : "still open");
    CU_ASSERT_EQUAL(inflight_at_hangup, n);
    CU_ASSERT_EQUAL(now_ended - ended0, n);
    CU_ASSERT_EQUAL(rows, n);
    CU_ASSERT_EQUAL(held, 0);
    CU_ASSERT(order_done(&st.server, "async", 0));
}

static void test_clean_exit(void)
{
    int rc = child_stop(&st.server, 30);
    CU_ASSERT_EQUAL(rc, 0);
}

int main(void)
{
    static const struct harness_test tests[] = {
        {"a rush of 30 in two modes: start, 60 orders with their rows, two summaries, end", test_stream},
        {"bad arguments answer JSON 400", test_bad_input},
        {"a rush over the in-flight limit answers 503 with Retry-After and starts nothing", test_over_limit},
        {"a rush of more mixed customers than --max-mixed answers 503 and starts nothing", test_over_mixed},
        {"a client that hangs up mid-rush: every order ends with its row; the connection is let go", test_hangup},
        {"the server exits 0", test_clean_exit},
        {NULL, NULL},
    };
    return harness_main("rush", setup, teardown, tests);
}
