/* Integration: every malformed request we could think of, one table. Each
 * gets the right status and a JSON {"error": ...} body with Content-Type
 * application/json, or, where libmicrohttpd 0.9.75 answers before our
 * handler ever runs, exactly what MHD does (see docs/reliability.md); and
 * the server answers /livez after each one. Raw sockets: libcurl would
 * refuse, or repair, most of these requests. */
#include "harness.h"

#include "clock.h"

#include <CUnit/Basic.h>
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

/* The server closes connections idle this long; a request MHD cannot parse
 * (too many arguments for its per-connection memory) gets no answer and
 * is closed by it (see test_too_many_arguments). */
#define IDLE_TIMEOUT_S 2
#define WAIT_MS 10000

static struct stack st;
static PGconn *db;

static int setup(void)
{
    static const char *const args[] = {"--idle-timeout-s", "2", NULL};
    return stack_setup(&st, args, &db);
}
static int teardown(void)
{
    return stack_teardown(&st, db);
}

/* ---- a raw HTTP exchange ------------------------------------------------- */

struct raw_answer {
    int status; /* 0: the connection closed without an answer */
    int closed; /* the server closed the connection within the wait */
    char content_type[64];
    char allow[64];
    char *body; /* malloc'd, NUL-terminated (may hold NULs before) */
    size_t body_len;
    double ms; /* until the close (or the wait ran out) */
};

static void raw_answer_free(struct raw_answer *a)
{
    free(a->body);
    a->body = NULL;
}

/* The value of header name in the head [head, end), into out. */
static void header_value(const char *head, const char *end, const char *name, char *out, size_t outlen)
{
    size_t n = strlen(name);
    out[0] = '\0';
    for (const char *p = head; p && p < end; p = memchr(p, '\n', (size_t)(end - p)), p = p ? p + 1 : NULL) {
        if ((size_t)(end - p) > n + 1 && !strncasecmp(p, name, n) && p[n] == ':') {
            const char *v = p + n + 1, *eol = memchr(v, '\r', (size_t)(end - v));
            while (v < end && *v == ' ')
                v++;
            size_t len = eol ? (size_t)(eol - v) : 0;
            snprintf(out, outlen, "%.*s", (int)len, v);
            return;
        }
    }
}

/* Sends req (len bytes) on a new connection and reads until the server
 * closes it or wait_ms pass. Every request says "Connection: close", so a
 * well-behaved answer always ends in a close. 0, or -1 if no connection. */
static int raw_exchange(const char *req, size_t len, int wait_ms, struct raw_answer *a)
{
    memset(a, 0, sizeof *a);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)st.server.port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    int64_t t0 = clock_mono_ns(), deadline = t0 + (int64_t)wait_ms * 1000000;
    /* The server may answer and close before it read everything (a 414
     * for a huge URL): a failed send is then expected, not an error. */
    for (size_t off = 0; off < len;) {
        ssize_t n = send(fd, req + off, len - off, MSG_NOSIGNAL);
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    size_t cap = 4096, got = 0;
    char *buf = malloc(cap + 1);
    while (buf && clock_mono_ns() < deadline) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int left = (int)((deadline - clock_mono_ns()) / 1000000) + 1;
        if (poll(&pfd, 1, left) <= 0)
            continue;
        if (got == cap) {
            char *b = realloc(buf, cap * 2 + 1);
            if (!b)
                break;
            buf = b;
            cap *= 2;
        }
        ssize_t n = recv(fd, buf + got, cap - got, 0);
        if (n <= 0) { /* EOF, or a reset: either way the server closed it */
            a->closed = 1;
            break;
        }
        got += (size_t)n;
    }
    a->ms = ns_to_ms(clock_mono_ns() - t0);
    close(fd);
    if (!buf)
        return -1;
    buf[got] = '\0';
    const char *end = strstr(buf, "\r\n\r\n");
    if (got > 12 && !strncmp(buf, "HTTP/1.", 7) && end) {
        a->status = (int)strtol(buf + 9, NULL, 10); /* "HTTP/1.1 NNN" */
        header_value(buf, end, "Content-Type", a->content_type, sizeof a->content_type);
        header_value(buf, end, "Allow", a->allow, sizeof a->allow);
        a->body_len = got - (size_t)(end + 4 - buf);
        a->body = malloc(a->body_len + 1);
        if (a->body) {
            memcpy(a->body, end + 4, a->body_len);
            a->body[a->body_len] = '\0';
        }
    }
    if (!a->body)
        a->body = strdup("");
    free(buf);
    return 0;
}

static void check_livez(const char *after)
{
    char url[128];
    snprintf(url, sizeof url, "%s/livez", st.server.base_url);
    struct http_result r;
    int rc = http_get(url, &r);
    if (rc != 0 || r.status != 200)
        fprintf(stderr, "  /livez after %s: %ld\n", after, r.status);
    CU_ASSERT(rc == 0 && r.status == 200);
    http_result_free(&r);
}

/* ---- the table ----------------------------------------------------------- */

enum expect {
    E_ERROR,  /* status, application/json, {"error": "..."} */
    E_OK,     /* status 200, application/json, an object without "error" */
    E_HEAD,   /* status, application/json, no body (HEAD) */
    E_MHD,    /* MHD's own answer: status, no Content-Type, its HTML body */
    E_CLOSED, /* MHD closes the connection without an answer */
};

enum gen {
    G_NONE,
    G_QUERY_10K,   /* a 10 KB query: fits MHD's per-connection memory */
    G_QUERY_100K,  /* a 100 KB query: does not */
    G_PATH_10K,    /* a 10 KB path */
    G_HEADER_64K,  /* one 64 KB header */
    G_HEADERS_400, /* 400 headers of 100 bytes */
    G_PARAMS_17,   /* one more than the front takes */
    G_PARAMS_200,  /* many, still within MHD's memory */
};

struct bad_case {
    const char *method; /* NULL: the request line is given whole in target */
    const char *target;
    const char *extra; /* more header lines, each ending in \r\n, or NULL */
    const char *body;  /* sent after the head, or NULL */
    enum gen gen;
    int status;
    enum expect kind;
};

#define MC "/make-coffee?mode=async"

static const struct bad_case cases[] = {
    /* mode */
    {"GET", "/make-coffee", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", "/make-coffee?mode=", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", "/make-coffee?mode", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", "/make-coffee?mode=turbo", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", "/make-coffee?mode=Async", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", "/make-coffee?MODE=async", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", "/make-coffee?mode=async&mode=async", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", "/make-coffee?mode=async&mode=blocking", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", "/make-coffee?mode=asyncx", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", "/make-coffee?mode=async+", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", "/make-coffee?=async", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", "/make-coffee?&&mode=async&&scale=0", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", "/make-coffee?mode=1", NULL, NULL, G_NONE, 400, E_ERROR},
    /* scale */
    {"GET", MC "&scale=", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", MC "&scale", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", MC "&scale=1&scale=1", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", MC "&scale=abc", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", MC "&scale=NaN", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", MC "&scale=nan", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", MC "&scale=inf", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", MC "&scale=-inf", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", MC "&scale=Infinity", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", MC "&scale=-1", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", MC "&scale=-0.001", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", MC "&scale=10.000001", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", MC "&scale=1e309", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", MC "&scale=-1e309", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", MC "&scale=1e-400", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", MC "&scale=1e2", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", MC "&scale=0x1", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", MC "&scale=1x", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", MC "&scale=1abc", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", MC "&scale=1..2", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", MC "&scale=1-1", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", MC "&scale=1e", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", MC "&scale=e", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", MC "&scale=-", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", MC "&scale=.", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", MC "&scale=%201", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", MC "&scale=1%20", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", MC "&scale=1,5", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", MC "&extra=1", NULL, NULL, G_NONE, 400, E_ERROR},
    /* percent-encoding: valid encodings are decoded (the first two are
     * good orders), invalid ones are left as they came, and %00 is never
     * decoded (it would cut the value short for every C comparison). */
    {"GET", "/make-coffee?mode=%61sync&scale=%30", NULL, NULL, G_NONE, 200, E_OK},
    {"GET", "/make-coffee?mode=async&scale=-0", NULL, NULL, G_NONE, 200, E_OK},
    {"GET", "/make-coffee?mode=%61sync&scale=%2D1", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", "/make-coffee?mode=%zz", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", "/make-coffee?mode=%", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", "/make-coffee?mode=%4", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", "/make-coffee?mode=%%", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", "/make-coffee?mode=async%2526scale=0", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", "/make-coffee?mode=%C3%A9", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", "/make-coffee?mode=\xc3\xa9", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", "/make-coffee?mode=async%00", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", "/make-coffee?mode=async%00junk&scale=0", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", MC "&scale=0%00", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", "/make-coffee?mode%00=async", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", "/livez%00", NULL, NULL, G_NONE, 404, E_ERROR},
    {"GET", "/orders/1%00", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", "/li%00vez", NULL, NULL, G_NONE, 404, E_ERROR},
    /* sizes and counts */
    {"GET", NULL, NULL, NULL, G_QUERY_10K, 400, E_ERROR},
    {"GET", NULL, NULL, NULL, G_PATH_10K, 404, E_ERROR},
    {"GET", NULL, NULL, NULL, G_PARAMS_17, 400, E_ERROR},
    {"GET", NULL, NULL, NULL, G_PARAMS_200, 400, E_ERROR},
    {"GET", NULL, NULL, NULL, G_QUERY_100K, 414, E_MHD},
    {"GET", "/livez", NULL, NULL, G_HEADER_64K, 431, E_MHD},
    {"GET", "/livez", NULL, NULL, G_HEADERS_400, 431, E_MHD},
    /* methods: only GET and HEAD */
    {"POST", MC, "Content-Type: application/json\r\nContent-Length: 11\r\n", "{\"a\": true}", G_NONE, 405, E_ERROR},
    {"POST", MC, "Content-Length: 100000\r\n", "only the start of a body", G_NONE, 405, E_ERROR},
    {"POST", MC, "Transfer-Encoding: chunked\r\n", "5\r\nhello\r\n0\r\n\r\n", G_NONE, 405, E_ERROR},
    {"POST", MC, "Expect: 100-continue\r\nContent-Length: 5\r\n", NULL, G_NONE, 405, E_ERROR},
    {"PUT", "/compare", "Content-Length: 2\r\n", "{}", G_NONE, 405, E_ERROR},
    {"DELETE", "/orders/1", NULL, NULL, G_NONE, 405, E_ERROR},
    {"PATCH", "/orders/1", "Content-Length: 2\r\n", "{}", G_NONE, 405, E_ERROR},
    {"OPTIONS", "*", NULL, NULL, G_NONE, 405, E_ERROR},
    {"OPTIONS", "/make-coffee", NULL, NULL, G_NONE, 405, E_ERROR},
    {"TRACE", "/livez", NULL, NULL, G_NONE, 405, E_ERROR},
    {"CONNECT", "127.0.0.1:80", NULL, NULL, G_NONE, 405, E_ERROR},
    {"BREW", "/make-coffee", NULL, NULL, G_NONE, 405, E_ERROR},
    {"get", "/livez", NULL, NULL, G_NONE, 405, E_ERROR},
    /* The method is echoed in the error: it must not inject JSON or break it. */
    {"X\",\"a\":\"1", "/livez", NULL, NULL, G_NONE, 405, E_ERROR},
    {"A\\B", "/livez", NULL, NULL, G_NONE, 405, E_ERROR},
    {"\xff\xfe", "/livez", NULL, NULL, G_NONE, 405, E_ERROR},
    /* Values echoed in errors that are not valid UTF-8 still get an answer. */
    {"GET", "/make-coffee?mode=%FF", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", "/make-coffee?mode=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa%C3%A9", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", "/compare?modes=async,%FF", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", MC "&scale=%FF", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", "/orders/%FF", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", "/stats?since=%FF", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", "/make-coffee?%FF=async", NULL, NULL, G_NONE, 400, E_ERROR},
    {"HEAD", "/livez", NULL, NULL, G_NONE, 200, E_HEAD},
    {"HEAD", "/nope", NULL, NULL, G_NONE, 404, E_HEAD},
    /* HEAD on a route that places orders is refused before its arguments are read */
    {"HEAD", "/make-coffee?mode=turbo", NULL, NULL, G_NONE, 405, E_HEAD},
    /* paths */
    {"GET", "/index.htm", NULL, NULL, G_NONE, 404, E_ERROR}, /* "/" is the page */
    {"GET", "/nope", NULL, NULL, G_NONE, 404, E_ERROR},
    {"GET", "/make-coffee/", NULL, NULL, G_NONE, 404, E_ERROR},
    {"GET", "/MAKE-COFFEE?mode=async", NULL, NULL, G_NONE, 404, E_ERROR},
    {"GET", "/livez/x", NULL, NULL, G_NONE, 404, E_ERROR},
    {"GET", "livez", NULL, NULL, G_NONE, 404, E_ERROR},
    {"GET", "/orders", NULL, NULL, G_NONE, 404, E_ERROR},
    /* /orders/{id} */
    {"GET", "/orders/", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", "/orders/abc", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", "/orders/1a", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", "/orders/+1", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", "/orders/-1", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", "/orders/0", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", "/orders/1.0", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", "/orders/1e3", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", "/orders/%201", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", "/orders/1/2", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", "/orders/9223372036854775808", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", "/orders/18446744073709551615", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", "/orders/18446744073709551616", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", "/orders/99999999999999999999999999999999", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", "/orders/9223372036854775807", NULL, NULL, G_NONE, 404, E_ERROR},
    /* /compare?modes= */
    {"GET", "/compare?modes=", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", "/compare?modes", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", "/compare?modes=async", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", "/compare?modes=async,async", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", "/compare?modes=async,", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", "/compare?modes=,async", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", "/compare?modes=async,,blocking", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", "/compare?modes=async;blocking", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", "/compare?modes=async,turbo", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", "/compare?modes=blocking,async,naive,mixed,async", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", "/compare?modes=async&modes=blocking", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", "/compare?modes=async,blocking&scale=11", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", "/compare?mode=async", NULL, NULL, G_NONE, 400, E_ERROR},
    /* /stats?since= */
    {"GET", "/stats?since=bad", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", "/stats?since=", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", "/stats?since", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", "/stats?since=1&since=2", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", "/stats?since=x%27;DROP%20TABLE%20orders;--", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", "/stats?since=2026-13-45", NULL, NULL, G_NONE, 400, E_ERROR}, /* PostgreSQL says no */
    {"GET", "/stats?since=1", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", "/stats?since=99999999999999999999999999999", NULL, NULL, G_NONE, 400, E_ERROR},
    {"GET", "/stats?x=1", NULL, NULL, G_NONE, 400, E_ERROR},
    /* what MHD answers before our handler: its own canned HTML, or a close */
    {NULL, "GET / HTTP/9.9", NULL, NULL, G_NONE, 505, E_MHD},
    {NULL, "GET /livez HTTP/1.1", "NoColonHere\r\n", NULL, G_NONE, 400, E_MHD},
    {NULL, "GET", NULL, NULL, G_NONE, 0, E_CLOSED},
    {NULL, "GARBAGE", NULL, NULL, G_NONE, 0, E_CLOSED},
    {NULL, "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", NULL, NULL, G_NONE, 0, E_CLOSED}, /* TLS hello */
};

/* Appends printf output to a growing buffer. */
struct sbuf {
    char *p;
    size_t len, cap;
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->len + n + 1) * 2;
        char *p = realloc(b->p, cap);
        CU_ASSERT_PTR_NOT_NULL_FATAL(p);
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_str(struct sbuf *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

static void sb_repeat(struct sbuf *b, char c, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sb_add(b, &c, 1);
}

/* The whole request of case c, and a short name for messages. */
static void build(const struct bad_case *c, struct sbuf *req, char *name, size_t namelen)
{
    char num[32];
    if (c->method) {
        sb_str(req, c->method);
        sb_str(req, " ");
    }
    switch (c->gen) {
    case G_QUERY_10K:
    case G_QUERY_100K:
        sb_str(req, MC "&x=");
        sb_repeat(req, 'a', c->gen == G_QUERY_10K ? 10 * 1024 : 100 * 1024);
        break;
    case G_PATH_10K:
        sb_str(req, "/");
        sb_repeat(req, 'p', 10 * 1024);
        break;
    case G_PARAMS_17:
    case G_PARAMS_200:
        sb_str(req, "/make-coffee?mode=async");
        for (int i = 1; i < (c->gen == G_PARAMS_17 ? 17 : 200); i++) {
            snprintf(num, sizeof num, "&k%d=v", i);
            sb_str(req, num);
        }
        break;
    default:
        sb_str(req, c->target);
    }
    snprintf(name, namelen, "%s %.60s%s", c->method ? c->method : "(raw)",
             req->p + (c->method ? strlen(c->method) + 1 : 0), req->len > 70 ? "..." : "");
    if (c->gen == G_QUERY_10K || c->gen == G_QUERY_100K || c->gen == G_PATH_10K || c->gen == G_PARAMS_17 ||
        c->gen == G_PARAMS_200)
        snprintf(name + strlen(name), namelen - strlen(name), " (%zu bytes)", req->len);
    sb_str(req, c->method ? " HTTP/1.1\r\n" : "\r\n");
    sb_str(req, "Host: 127.0.0.1\r\nConnection: close\r\n");
    if (c->gen == G_HEADER_64K) {
        sb_str(req, "X-Big: ");
        sb_repeat(req, 'h', 64 * 1024);
        sb_str(req, "\r\n");
        snprintf(name + strlen(name), namelen - strlen(name), " with a 64 KB header");
    } else if (c->gen == G_HEADERS_400) {
        for (int i = 0; i < 400; i++) {
            snprintf(num, sizeof num, "X-H%d: ", i);
            sb_str(req, num);
            sb_repeat(req, 'h', 100);
            sb_str(req, "\r\n");
        }
        snprintf(name + strlen(name), namelen - strlen(name), " with 400 headers");
    }
    if (c->extra)
        sb_str(req, c->extra);
    sb_str(req, "\r\n");
    if (c->body)
        sb_str(req, c->body);
}

/* Sends case c's request req and checks the answer against it. */
static int check_case(const struct bad_case *c, const struct sbuf *req, const char *name)
{
    struct raw_answer a;
    int ok = raw_exchange(req->p, req->len, WAIT_MS, &a) == 0 && a.closed && a.status == c->status;
    json_t *j = json_loads(a.body, 0, NULL);
    const char *ct = "application/json";
    switch (c->kind) {
    case E_ERROR:
        /* {"error": "..."} and nothing else: no key injected by an echo. */
        ok = ok && !strcmp(a.content_type, ct) && json_is_string(json_object_get(j, "error")) &&
             *json_string_value(json_object_get(j, "error")) && json_object_size(j) == 1;
        /* The routes that place orders take GET alone (a HEAD would place
         * them); the others GET and HEAD. */
        if (c->status == 405)
            ok = ok && !strcmp(a.allow, strncmp(c->target, "/make-coffee", 12) && strncmp(c->target, "/compare", 8) &&
                                                strncmp(c->target, "/rush", 5)
                                            ? "GET, HEAD"
                                            : "GET");
        break;
    case E_OK:
        ok = ok && !strcmp(a.content_type, ct) && json_is_object(j) && !json_object_get(j, "error");
        /* "-0" reads as 0, and no -0.0 comes back. */
        ok = ok && (!json_object_get(j, "scale") || !signbit(jnum(j, "scale")));
        break;
    case E_HEAD:
        ok = ok && !strcmp(a.content_type, ct) && a.body_len == 0;
        break;
    case E_MHD:
        /* MHD 0.9.75's canned answer: HTML without a Content-Type. Its
         * bodies are compiled in; no option replaces them. */
        ok = ok && a.content_type[0] == '\0' && !strncmp(a.body, "<html>", 6);
        break;
    case E_CLOSED:
        ok = ok && a.body_len == 0;
        break;
    }
    if (!ok)
        fprintf(stderr, "  %s: got %d%s, Content-Type '%s', %.120s\n", name, a.status, a.closed ? "" : " (not closed)",
                a.content_type, a.body);
    json_decref(j);
    raw_answer_free(&a);
    return ok;
}

static void test_table(void)
{
    int failed = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct sbuf req = {0};
        char name[160];
        build(&cases[i], &req, name, sizeof name);
        int ok = check_case(&cases[i], &req, name);
        free(req.p);
        CU_ASSERT(ok);
        failed += !ok;
        check_livez(name);
    }
    printf("\n  %zu requests, %d answered wrongly\n", sizeof cases / sizeof cases[0], failed);
}

/* So many arguments that MHD runs out of its per-connection memory while
 * parsing them (a 40 KB pool; ~48 bytes per argument): MHD 0.9.75 logs
 * "Not enough memory in pool to allocate header record!", never calls our
 * handler, sends nothing and leaves the socket open until its next pass
 * over the connection. The idle timeout (--idle-timeout-s) bounds that. */
static void test_too_many_arguments(void)
{
    struct sbuf req = {0};
    sb_str(&req, "GET /make-coffee?mode=async");
    for (int i = 1; i < 1000; i++) {
        char kv[32];
        snprintf(kv, sizeof kv, "&k%d=v", i);
        sb_str(&req, kv);
    }
    sb_str(&req, " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    struct raw_answer a;
    CU_ASSERT_EQUAL_FATAL(raw_exchange(req.p, req.len, (IDLE_TIMEOUT_S + 8) * 1000, &a), 0);
    printf("\n  1000 arguments (%zu bytes): status %d, closed %d after %.0f ms\n", req.len, a.status, a.closed, a.ms);
    CU_ASSERT(a.closed);
    /* Nothing, or an error status: never a success. */
    CU_ASSERT(a.status == 0 || a.status >= 400);
    CU_ASSERT(a.ms < (IDLE_TIMEOUT_S + 8) * 1000);
    raw_answer_free(&a);
    free(req.p);
    check_livez("1000 arguments");
}

/* After the table, an order still works end to end. */
static void test_still_serves(void)
{
    CU_ASSERT(order_done(&st.server, "async", 0));
}

int main(void)
{
    static const struct harness_test tests[] = {
        {"every malformed request: status, JSON error (or MHD's answer), /livez after", test_table},
        {"1000 arguments: no success, closed within the idle timeout", test_too_many_arguments},
        {"an order still works afterwards", test_still_serves},
        {NULL, NULL},
    };
    return harness_main("badinput", setup, teardown, tests);
}
