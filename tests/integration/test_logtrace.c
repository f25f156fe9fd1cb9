/* Integration: trace context and structured logs, read from the outside.
 * A W3C traceparent sent to the server is continued: the order's JSON and
 * row carry the same trace id with the order's own span id, and the kitchen
 * received that traceparent on every step's call (its --verbose log says
 * so). Both programs' logs are logfmt, one event per line, with time,
 * level, component, msg, and the order's fields on the order's line. */
#include "harness.h"

#include "trace.h"

#include <CUnit/Basic.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct child kitchen, server;
static PGconn *db;
static char dir[] = "/tmp/coffee-trace.XXXXXX";
static char klog[64], slog[64];

static const char *const client_tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

static int setup(void)
{
    if (!mkdtemp(dir))
        return -1;
    snprintf(klog, sizeof klog, "%s/kitchen.log", dir);
    snprintf(slog, sizeof slog, "%s/server.log", dir);
    static const char *const kargs[] = {"--verbose", "--log-format", "logfmt", "--allow-faults", NULL};
    if (child_start_log(&kitchen, "coffee-kitchen", kargs, klog) != 0)
        return -1;
    const char *sargs[] = {"--kitchen-url", kitchen.base_url, "--verbose", "--log-format", "logfmt", "--instance",
                           "trace-test",    "--workers",      "2",         "--db-pool",    "2",      NULL};
    if (child_start_log(&server, "coffee-server", sargs, slog) != 0 || child_wait_ready(&server, 15) != 0)
        return -1;
    db = db_open();
    return db ? 0 : -1;
}

static int teardown(void)
{
    PQfinish(db);
    int a = server.pid > 0 ? child_stop(&server, 30) : 0;
    int b = kitchen.pid > 0 ? child_stop(&kitchen, 10) : 0;
    unlink(klog);
    unlink(slog);
    rmdir(dir);
    return a == 0 && b == 0 ? 0 : -1;
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    json_t **j = arg;
    json_decref(*j);
    *j = json_loadb(p, size * n, 0, NULL); /* the answers here come in one piece */
    return size * n;
}

/* GET path from the server with a traceparent header (NULL = none); the
 * JSON answer (new reference) and its status. */
static json_t *get_traced(const char *path, const char *traceparent, long *status)
{
    char url[200], header[120];
    snprintf(url, sizeof url, "%s%s", server.base_url, path);
    snprintf(header, sizeof header, "traceparent: %s", traceparent ? traceparent : "");
    json_t *j = NULL;
    *status = 0;
    CURL *e = curl_easy_init();
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    struct curl_slist *h = traceparent ? curl_slist_append(NULL, header) : NULL;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &j);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 30000L);
    if (curl_easy_perform(e) == CURLE_OK)
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, status);
    curl_slist_free_all(h);
    curl_easy_cleanup(e);
    return j;
}

/* The whole file as a new string, or NULL. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, len = 0;
    char *s = malloc(cap);
    while (s) {
        len += fread(s + len, 1, cap - len - 1, f);
        if (len < cap - 1)
            break;
        char *bigger = realloc(s, cap * 2);
        if (!bigger) {
            free(s);
            s = NULL;
            break;
        }
        s = bigger;
        cap *= 2;
    }
    fclose(f);
    if (s)
        s[len] = '\0';
    return s;
}

/* Lines of text that contain every one of the NULL-terminated needles. */
static int count_lines(const char *text, const char *const needles[])
{
    int n = 0;
    for (const char *line = text; line && *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        int all = 1;
        for (int i = 0; needles[i] && all; i++) {
            const char *hit = strstr(line, needles[i]);
            all = hit && (size_t)(hit - line) < len;
        }
        n += all;
        line = end ? end + 1 : NULL;
    }
    return n;
}

/* One logfmt line into up to max key/value pairs (pointers into buf, which
 * is modified). Returns the number of pairs, or -1 if the line is not
 * logfmt (a bare word, an unterminated quote, an empty key). */
static int logfmt_parse(char *buf, char *keys[], char *values[], int max)
{
    int n = 0;
    char *p = buf;
    while (*p) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        char *key = p;
        while (*p && *p != '=' && *p != ' ')
            p++;
        if (*p != '=' || p == key || n == max)
            return -1;
        *p++ = '\0';
        char *value = p;
        if (*p == '"') {
            char *out = ++value;
            for (p++;; p++) {
                if (!*p)
                    return -1;
                if (*p == '\\' && p[1]) {
                    *out++ = p[1];
                    p++;
                } else if (*p == '"') {
                    p++;
                    break;
                } else {
                    *out++ = *p;
                }
            }
            *out = '\0';
            if (*p && *p != ' ')
                return -1;
            if (*p)
                p++;
        } else {
            while (*p && *p != ' ')
                p++;
            if (*p)
                *p++ = '\0';
        }
        keys[n] = key;
        values[n] = value;
        n++;
    }
    return n;
}

/* Every line of the log at path is logfmt with time, level, component and
 * msg first. Returns the number of lines. */
static int check_logfmt_file(const char *path)
{
    char *text = slurp(path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    int lines = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char copy[2048];
        snprintf(copy, sizeof copy, "%s", line);
        char *k[32] = {0}, *v[32] = {0};
        int n = logfmt_parse(line, k, v, 32);
        if (n < 4)
            fprintf(stderr, "\n  not a logfmt event: %s\n", copy);
        CU_ASSERT_FATAL(n >= 4);
        if (strcmp(k[0], "time") || strcmp(k[1], "level") || strcmp(k[2], "component") || strcmp(k[3], "msg"))
            fprintf(stderr, "\n  not a logfmt event: %s\n", copy);
        CU_ASSERT_STRING_EQUAL(k[0], "time");
        CU_ASSERT_STRING_EQUAL(k[1], "level");
        CU_ASSERT_STRING_EQUAL(k[2], "component");
        CU_ASSERT_STRING_EQUAL(k[3], "msg");
        /* RFC 3339 in UTC with milliseconds: 2026-12-02T09:49:56.123Z */
        CU_ASSERT(strlen(v[0]) == 24 && v[0][10] == 'T' && v[0][19] == '.' && v[0][23] == 'Z');
        CU_ASSERT(!strcmp(v[1], "debug") || !strcmp(v[1], "info") || !strcmp(v[1], "warn") || !strcmp(v[1], "error"));
        lines++;
    }
    free(text);
    return lines;
}

static void check_continued(const char *mode)
{
    char path[100];
    long status;
    snprintf(path, sizeof path, "/make-coffee?mode=%s&scale=0.01", mode);
    json_t *o = get_traced(path, client_tp, &status);
    CU_ASSERT_EQUAL(status, 200);
    const char *tp = json_string_value(json_object_get(o, "traceparent"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(tp);
    struct trace_ctx got, sent;
    CU_ASSERT_EQUAL_FATAL(trace_parse(tp, &got), 0);
    CU_ASSERT_EQUAL_FATAL(trace_parse(client_tp, &sent), 0);
    CU_ASSERT_STRING_EQUAL(got.trace_id, sent.trace_id);   /* the client's trace */
    CU_ASSERT_STRING_NOT_EQUAL(got.span_id, sent.span_id); /* the order's own span */
    CU_ASSERT_STRING_EQUAL(got.flags, "01");

    /* The row keeps it. */
    char id[32];
    snprintf(id, sizeof id, "%lld", (long long)json_integer_value(json_object_get(o, "order_id")));
    const char *params[] = {id};
    PGresult *r = PQexecParams(db, "SELECT traceparent FROM orders WHERE id = $1", 1, NULL, params, NULL, NULL, 0);
    CU_ASSERT_EQUAL_FATAL(PQresultStatus(r), PGRES_TUPLES_OK);
    CU_ASSERT_EQUAL_FATAL(PQntuples(r), 1);
    CU_ASSERT_STRING_EQUAL(PQgetvalue(r, 0, 0), tp);
    PQclear(r);

    /* The kitchen got it with each of the three calls: its request lines
     * are written before it answers, so before the order could end. */
    char *klines = slurp(klog);
    char want_tp[80];
    snprintf(want_tp, sizeof want_tp, "traceparent=%s", tp);
    const char *const all[] = {"component=kitchen", want_tp, NULL};
    const char *const kettle[] = {want_tp, "appliance=kettle", NULL};
    const char *const grinder[] = {want_tp, "appliance=grinder", NULL};
    const char *const toaster[] = {want_tp, "appliance=toaster", NULL};
    CU_ASSERT_EQUAL(count_lines(klines, all), 3);
    CU_ASSERT_EQUAL(count_lines(klines, kettle), 1);
    CU_ASSERT_EQUAL(count_lines(klines, grinder), 1);
    CU_ASSERT_EQUAL(count_lines(klines, toaster), 1);
    free(klines);

    /* The server's line for the order: logged before the answer was sent. */
    char *slines = slurp(slog);
    char want_id[48], want_trace[64];
    snprintf(want_id, sizeof want_id, " order_id=%s ", id);
    snprintf(want_trace, sizeof want_trace, " trace_id=%s", sent.trace_id);
    char want_mode[64];
    snprintf(want_mode, sizeof want_mode, " mode=%s ", mode);
    const char *const order_line[] = {"component=order",       want_id,    want_mode, " status=done ", " elapsed_ms=",
                                      " instance=trace-test ", want_trace, NULL};
    CU_ASSERT_EQUAL(count_lines(slines, order_line), 1);
    free(slines);
    json_decref(o);
}

static void test_continued_blocking(void)
{
    check_continued("blocking");
}
static void test_continued_async(void)
{
    check_continued("async");
}

static void test_started_when_absent_or_bad(void)
{
    long status;
    struct trace_ctx a, b, sent;
    CU_ASSERT_EQUAL_FATAL(trace_parse(client_tp, &sent), 0);
    json_t *o1 = get_traced("/make-coffee?mode=async&scale=0", NULL, &status);
    CU_ASSERT_EQUAL(status, 200);
    json_t *o2 = get_traced("/make-coffee?mode=async&scale=0",
                            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", &status);
    CU_ASSERT_EQUAL(status, 200);
    CU_ASSERT_EQUAL_FATAL(trace_parse(json_string_value(json_object_get(o1, "traceparent")), &a), 0);
    CU_ASSERT_EQUAL_FATAL(trace_parse(json_string_value(json_object_get(o2, "traceparent")), &b), 0);
    CU_ASSERT_STRING_NOT_EQUAL(a.trace_id, b.trace_id);
    CU_ASSERT_STRING_NOT_EQUAL(b.trace_id, sent.trace_id);
    CU_ASSERT_STRING_NOT_EQUAL(b.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    json_decref(o1);
    json_decref(o2);

    /* /compare: both orders in the client's trace, each its own span. */
    json_t *c = get_traced("/compare?scale=0", client_tp, &status);
    CU_ASSERT_EQUAL(status, 200);
    CU_ASSERT_EQUAL_FATAL(
        trace_parse(json_string_value(json_object_get(json_object_get(c, "blocking"), "traceparent")), &a), 0);
    CU_ASSERT_EQUAL_FATAL(
        trace_parse(json_string_value(json_object_get(json_object_get(c, "async"), "traceparent")), &b), 0);
    CU_ASSERT_STRING_EQUAL(a.trace_id, sent.trace_id);
    CU_ASSERT_STRING_EQUAL(b.trace_id, sent.trace_id);
    CU_ASSERT_STRING_NOT_EQUAL(a.span_id, b.span_id);
    json_decref(c);
}

/* A failed order is a warn event with what failed. */
static void test_failed_order_logged(void)
{
    char url[160];
    struct http_result r;
    snprintf(url, sizeof url, "%s/faults?kettle=500", kitchen.base_url);
    CU_ASSERT_EQUAL_FATAL(http_request("POST", url, &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    http_result_free(&r);
    long status;
    json_t *o = get_traced("/make-coffee?mode=async&scale=0", NULL, &status);
    CU_ASSERT_EQUAL(status, 502);
    char id[40];
    snprintf(id, sizeof id, " order_id=%lld ", (long long)json_integer_value(json_object_get(o, "order_id")));
    json_decref(o);
    snprintf(url, sizeof url, "%s/faults", kitchen.base_url);
    CU_ASSERT_EQUAL(http_request("POST", url, &r), 0);
    http_result_free(&r);

    char *slines = slurp(slog);
    const char *const line[] = {"level=warn ",
                                "component=order",
                                id,
                                " status=failed ",
                                " failed_step=boil_water ",
                                " error=\"boil_water: kitchen answered HTTP 500\"",
                                NULL};
    CU_ASSERT_EQUAL(count_lines(slines, line), 1);
    free(slines);
}

/* Every line either program wrote is a logfmt event. */
static void test_every_line_logfmt(void)
{
    int s = check_logfmt_file(slog), k = check_logfmt_file(klog);
    printf("\n  %d server and %d kitchen log lines, all logfmt\n", s, k);
    CU_ASSERT(s >= 4); /* start-up, and the orders above */
    CU_ASSERT(k >= 6);
}

/* --log-format text: the readable line; anything else is refused. */
static void test_text_format(void)
{
    char path[80];
    snprintf(path, sizeof path, "%s/text.log", dir);
    struct child k;
    static const char *const args[] = {"--log-format", "text", NULL};
    CU_ASSERT_EQUAL_FATAL(child_start_log(&k, "coffee-kitchen", args, path), 0);
    CU_ASSERT_EQUAL(child_stop(&k, 10), 0);
    char *text = slurp(path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    /* "09:49:56.123 coffee-kitchen info: signal 15: ..." */
    CU_ASSERT(strlen(text) > 13 && text[2] == ':' && text[8] == '.');
    CU_ASSERT_PTR_NOT_NULL(strstr(text, " coffee-kitchen info: signal 15"));
    CU_ASSERT_PTR_NULL(strstr(text, "level="));
    free(text);
    unlink(path);

    static const char *const bad[] = {"--log-format", "json", NULL};
    CU_ASSERT_NOT_EQUAL(child_start_log(&k, "coffee-kitchen", bad, path), 0); /* exits 2 before listening */
    unlink(path);
}

int main(void)
{
    static const struct harness_test tests[] = {
        {"a client's traceparent is continued (blocking): JSON, row, kitchen, log", test_continued_blocking},
        {"a client's traceparent is continued (async): JSON, row, kitchen, log", test_continued_async},
        {"a new trace when none or a bad one is sent; /compare shares it", test_started_when_absent_or_bad},
        {"a failed order is logged at warn with its error", test_failed_order_logged},
        {"every log line is logfmt with time, level, component, msg", test_every_line_logfmt},
        {"--log-format text is readable; an unknown format is refused", test_text_format},
        {NULL, NULL},
    };
    return harness_main("logtrace", setup, teardown, tests);
}
