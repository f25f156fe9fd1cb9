/* harness: processes, HTTP and database helpers for integration tests
 * (see harness.h). */
#define _GNU_SOURCE
#include "harness.h"

#include "clock.h"
#include "proc.h"

#include <CUnit/Basic.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

int child_start(struct child *c, const char *prog, const char *const args[])
{
    return child_start_log(c, prog, args, NULL);
}

int child_wait_ready(const struct child *c, int timeout_s)
{
    char url[128];
    snprintf(url, sizeof url, "%s/readyz", c->base_url);
    int64_t deadline = clock_mono_ns() + (int64_t)timeout_s * NS_PER_SEC;
    while (clock_mono_ns() < deadline) {
        long status;
        json_t *j = http_get_json(url, &status);
        json_decref(j);
        if (status == 200)
            return 0;
        struct timespec ts = {0, 100 * 1000 * 1000}; /* polling readiness */
        nanosleep(&ts, NULL);
    }
    return -1;
}

int child_start_log(struct child *c, const char *prog, const char *const args[], const char *log_path)
{
    const char *dir = getenv("COFFEE_BIN_DIR");
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir ? dir : ".", prog);
    const char *argv[32];
    int n = 0;
    argv[n++] = path;
    argv[n++] = "--port";
    argv[n++] = "0";
    for (int i = 0; args && args[i] && n < 30; i++)
        argv[n++] = args[i];
    argv[n] = NULL;

    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
    if (log_path)
        posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
    int rc = posix_spawn(&c->pid, path, &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (rc != 0) {
        fprintf(stderr, "harness: cannot start %s: %s\n", path, strerror(rc));
        close(fds[0]);
        return -1;
    }
    /* Read stdout until the "listening on" line, up to 10 s. */
    char buf[512];
    size_t len = 0;
    int64_t deadline = clock_mono_ns() + 10 * NS_PER_SEC;
    c->port = 0;
    while (!c->port && clock_mono_ns() < deadline && len < sizeof buf - 1) {
        struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
        if (poll(&pfd, 1, 100) <= 0)
            continue;
        ssize_t got = read(fds[0], buf + len, sizeof buf - 1 - len);
        if (got <= 0)
            break;
        len += (size_t)got;
        buf[len] = '\0';
        const char *colon = strstr(buf, "listening on http://");
        const char *nl = colon ? strchr(colon, '\n') : NULL;
        if (nl) {
            const char *p = nl;
            while (p > colon && p[-1] != ':')
                p--;
            c->port = (int)strtol(p, NULL, 10);
        }
    }
    close(fds[0]); /* later output goes nowhere: the programs log to stderr */
    if (!c->port) {
        fprintf(stderr, "harness: %s did not announce its port\n", prog);
        kill(c->pid, SIGKILL);
        waitpid(c->pid, NULL, 0);
        return -1;
    }
    snprintf(c->base_url, sizeof c->base_url, "http://127.0.0.1:%d", c->port);
    return 0;
}

int child_stop_within(struct child *c, int sig, int timeout_ms, double *ms)
{
    if (c->pid <= 0)
        return -1;
    /* A pidfd becomes readable when the process exits: wait on it. */
    int pidfd = (int)syscall(SYS_pidfd_open, c->pid, 0);
    int64_t t0 = clock_mono_ns();
    kill(c->pid, sig);
    int exited = 0;
    if (pidfd >= 0) {
        struct pollfd pfd = {.fd = pidfd, .events = POLLIN};
        exited = poll(&pfd, 1, timeout_ms) == 1;
        close(pidfd);
    }
    if (ms)
        *ms = ns_to_ms(clock_mono_ns() - t0);
    int status = 0;
    if (!exited) {
        kill(c->pid, SIGKILL);
        waitpid(c->pid, &status, 0);
        c->pid = 0;
        return -1;
    }
    waitpid(c->pid, &status, 0);
    c->pid = 0;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int child_stop(struct child *c, int timeout_s)
{
    return child_stop_within(c, SIGTERM, timeout_s * 1000, NULL);
}

/* The number after "field:" in /proc/PID/status (e.g. "Threads"), or -1. */
static long proc_status(const struct child *c, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)c->pid);
    FILE *f = fopen(path, "r");
    long v = -1;
    size_t len = strlen(field);
    while (f && fgets(line, sizeof line, f)) {
        if (!strncmp(line, field, len) && line[len] == ':') {
            v = strtol(line + len + 1, NULL, 10);
            break;
        }
    }
    if (f)
        fclose(f);
    return v;
}

int child_threads(const struct child *c)
{
    return (int)proc_status(c, "Threads");
}

const char *const *harness_kitchen_args;
const char *harness_server_log;

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
    (void)p, (void)arg;
    return size * n;
}

int http_keepalive(const char *first, const char *second)
{
    CURL *e = curl_easy_init();
    if (!e)
        return -1;
    long status[2] = {0, 0}, connects = -1;
    int rc = curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard) == CURLE_OK &&
                     curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 10000L) == CURLE_OK
                 ? 0
                 : -1;
    const char *urls[2] = {first, second};
    for (int i = 0; rc == 0 && i < 2; i++) {
        if (curl_easy_setopt(e, CURLOPT_URL, urls[i]) != CURLE_OK || curl_easy_perform(e) != CURLE_OK)
            rc = -1;
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status[i]);
    }
    if (rc == 0)
        curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &connects);
    curl_easy_cleanup(e);
    if (rc != 0 || status[0] != 200 || status[1] != 200)
        return -1;
    return connects == 0 ? 1 : 0;
}

static void *batch_main(void *arg)
{
    struct http_batch *b = arg;
    http_get_many(b->urls, b->n, b->res);
    return NULL;
}

int http_batch_start(struct http_batch *b)
{
    if (b->n < 1 || b->n > HTTP_BATCH_MAX)
        return -1;
    return pthread_create(&b->thread, NULL, batch_main, b) == 0 ? 0 : -1;
}

void http_batch_wait(struct http_batch *b)
{
    pthread_join(b->thread, NULL);
}

double harness_slack(double ms)
{
    return ms * harness_slowdown();
}

long child_rss_kb(const struct child *c)
{
    return proc_status(c, "VmRSS");
}

int child_fds(const struct child *c)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)c->pid);
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

int server_start(struct child *server, const struct child *kitchen, const char *const server_args[])
{
    const char *args[32];
    int n = 0;
    args[n++] = "--kitchen-url";
    args[n++] = kitchen->base_url;
    for (int i = 0; server_args && server_args[i] && n < 30; i++)
        args[n++] = server_args[i];
    args[n] = NULL;
    if (child_start_log(server, "coffee-server", args, harness_server_log) != 0)
        return -1;
    char url[128];
    snprintf(url, sizeof url, "%s/readyz", server->base_url);
    int64_t deadline = clock_mono_ns() + 15 * NS_PER_SEC;
    while (clock_mono_ns() < deadline) {
        /* Ready, and the whole database pool connected: tests measure a
         * warm service. */
        long status;
        json_t *j = http_get_json(url, &status);
        json_t *pool = json_object_get(j, "db_pool");
        int ok = status == 200 && json_integer_value(json_object_get(pool, "connected")) ==
                                      json_integer_value(json_object_get(pool, "size"));
        json_decref(j);
        if (ok)
            return 0;
        struct timespec ts = {0, 100 * 1000 * 1000}; /* polling readiness */
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "harness: server never became ready (is DATABASE_URL set?)\n");
    child_stop(server, 10);
    return -1;
}

int stack_start(struct stack *s, const char *const server_args[])
{
    memset(s, 0, sizeof *s);
    if (child_start(&s->kitchen, "coffee-kitchen", harness_kitchen_args) != 0)
        return -1;
    if (server_start(&s->server, &s->kitchen, server_args) != 0) {
        child_stop(&s->kitchen, 5);
        return -1;
    }
    return 0;
}

int stack_stop(struct stack *s)
{
    int a = s->server.pid > 0 ? child_stop(&s->server, 30) : 0; /* 0: a test stopped it already */
    int b = child_stop(&s->kitchen, 10);
    if (a != 0 || b != 0)
        fprintf(stderr, "harness: exit status: coffee-server %d, coffee-kitchen %d (want 0; -1: killed)\n", a, b);
    return a == 0 && b == 0 ? 0 : -1;
}

int stack_setup(struct stack *s, const char *const server_args[], PGconn **db)
{
    if (stack_start(s, server_args) != 0)
        return -1;
    *db = db_open();
    return *db ? 0 : -1;
}

int stack_teardown(struct stack *s, PGconn *db)
{
    PQfinish(db);
    return stack_stop(s);
}

struct membuf {
    char *data;
    size_t len;
};

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    struct membuf *m = arg;
    size_t add = size * n;
    char *d = realloc(m->data, m->len + add + 1);
    if (!d)
        return 0;
    memcpy(d + m->len, p, add);
    m->data = d;
    m->len += add;
    d[m->len] = '\0';
    return add;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    struct http_result *r = arg;
    size_t len = size * n;
    if (len > 14 && !strncasecmp(p, "Content-Type:", 13))
        sscanf(p + 13, " %63[^\r\n]", r->content_type);
    if (len > 13 && !strncasecmp(p, "Retry-After:", 12))
        sscanf(p + 12, " %15[^\r\n]", r->retry_after);
    return len;
}

static CURL *make_easy(const char *method, const char *url, struct http_result *r, struct membuf *m)
{
    memset(r, 0, sizeof *r);
    CURL *e = curl_easy_init();
    if (!e)
        return NULL;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 120000L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, m);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    if (strcmp(method, "GET") != 0)
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    return e;
}

static void finish(CURL *e, CURLcode code, struct http_result *r, struct membuf *m)
{
    double t = 0;
    curl_easy_getinfo(e, CURLINFO_TOTAL_TIME, &t);
    r->total_ms = t * 1000;
    if (code == CURLE_OK)
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r->status);
    r->body = m->data ? m->data : strdup("");
}

int http_request(const char *method, const char *url, struct http_result *r)
{
    struct membuf m = {0};
    CURL *e = make_easy(method, url, r, &m);
    if (!e)
        return -1;
    CURLcode code = curl_easy_perform(e);
    finish(e, code, r, &m);
    curl_easy_cleanup(e);
    return code == CURLE_OK ? 0 : -1;
}

int http_get(const char *url, struct http_result *r)
{
    return http_request("GET", url, r);
}

int http_post(const char *url, const char *body, size_t len, struct http_result *r)
{
    struct membuf m = {0};
    CURL *e = make_easy("POST", url, r, &m);
    if (!e)
        return -1;
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)len);
    CURLcode code = curl_easy_perform(e);
    finish(e, code, r, &m);
    curl_easy_cleanup(e);
    curl_slist_free_all(h);
    return code == CURLE_OK ? 0 : -1;
}

void http_result_free(struct http_result *r)
{
    free(r->body);
    r->body = NULL;
}

json_t *http_get_json(const char *url, long *status)
{
    struct http_result r;
    json_t *j = NULL;
    if (http_get(url, &r) == 0)
        j = json_loads(r.body, 0, NULL);
    *status = r.status;
    http_result_free(&r);
    return j;
}

json_t *make_coffee(const struct child *server, const char *mode, double scale, long *status, double *ms)
{
    char url[200];
    struct http_result r;
    json_t *j = NULL;
    snprintf(url, sizeof url, "%s/make-coffee?mode=%s&scale=%g", server->base_url, mode, scale);
    *status = 0;
    if (http_get(url, &r) == 0) {
        j = json_loads(r.body ? r.body : "", 0, NULL);
        *status = r.status;
        if (ms)
            *ms = r.total_ms;
    }
    http_result_free(&r);
    return j;
}

int http_get_many(const char *const *urls, int n, struct http_result *results)
{
    CURLM *m = curl_multi_init();
    CURL **easies = calloc((size_t)n, sizeof *easies);
    struct membuf *bufs = calloc((size_t)n, sizeof *bufs);
    int rc = m && easies && bufs ? 0 : -1;
    for (int i = 0; rc == 0 && i < n; i++) {
        easies[i] = make_easy("GET", urls[i], &results[i], &bufs[i]);
        if (!easies[i] || curl_multi_add_handle(m, easies[i]) != CURLM_OK)
            rc = -1;
        else
            curl_easy_setopt(easies[i], CURLOPT_PRIVATE, (char *)(intptr_t)i);
    }
    curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, 0L);
    int running = 1;
    while (rc == 0 && running) {
        if (curl_multi_perform(m, &running) != CURLM_OK)
            rc = -1;
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left)) != NULL) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            char *priv;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
            int i = (int)(intptr_t)priv;
            finish(msg->easy_handle, msg->data.result, &results[i], &bufs[i]);
        }
        if (running)
            curl_multi_poll(m, NULL, 0, 100, NULL);
    }
    for (int i = 0; easies && i < n; i++) {
        if (!easies[i])
            continue;
        curl_multi_remove_handle(m, easies[i]);
        curl_easy_cleanup(easies[i]);
        if (!results[i].body) /* never finished */
            results[i].body = bufs[i].data ? bufs[i].data : strdup("");
    }
    curl_multi_cleanup(m);
    free(easies);
    free(bufs);
    return rc;
}

double http_metric(const struct child *server, const char *series)
{
    char url[128];
    snprintf(url, sizeof url, "%s/metrics", server->base_url);
    struct http_result r;
    double v = NAN;
    size_t len = strlen(series);
    if (http_get(url, &r) == 0 && r.status == 200) {
        for (const char *line = r.body; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
            if (!strncmp(line, series, len) && line[len] == ' ') {
                v = strtod(line + len + 1, NULL);
                break;
            }
    }
    http_result_free(&r);
    return v;
}

PGconn *db_open(void)
{
    const char *url = getenv("DATABASE_URL");
    PGconn *c = PQconnectdb(url ? url : "");
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "harness: cannot connect to DATABASE_URL: %s", PQerrorMessage(c));
        PQfinish(c);
        return NULL;
    }
    return c;
}

void db_row_status(PGconn *db, long long id, char *out, size_t len)
{
    char text[32];
    snprintf(text, sizeof text, "%lld", id);
    const char *params[] = {text};
    PGresult *r = PQexecParams(db, "SELECT status FROM orders WHERE id = $1", 1, NULL, params, NULL, NULL, 0);
    snprintf(out, len, "%s", PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 ? PQgetvalue(r, 0, 0) : "");
    PQclear(r);
}

long db_count(PGconn *db, const char *sql)
{
    PGresult *r = PQexec(db, sql);
    long n = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 ? strtol(PQgetvalue(r, 0, 0), NULL, 10) : -1;
    PQclear(r);
    return n;
}

long db_terminate(PGconn *db, const char *where, long timeout_ms, long *left)
{
    char sql[1024];
    snprintf(sql, sizeof sql,
             "WITH s AS MATERIALIZED (SELECT pid FROM pg_stat_activity WHERE %s)"
             " SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)), coalesce(array_agg(pid)::text, '{}')"
             " FROM s",
             where);
    PGresult *r = PQexec(db, sql);
    if (left)
        *left = -1;
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        PQclear(r);
        return -1;
    }
    long n = strtol(PQgetvalue(r, 0, 0), NULL, 10);
    char *pids = strdup(PQgetvalue(r, 0, 1)); /* "{1,2,3}" */
    PQclear(r);
    if (!pids)
        return -1;
    /* Gone: the process has exited (so its socket is closed), seen from
     * here, on the cluster's machine. pg_stat_activity drops a backend a
     * moment before its close. */
    long still = 0;
    for (int64_t t0 = clock_mono_ns();;) {
        still = 0;
        for (char *p = pids + 1; *p && *p != '}'; p += *p == ',') {
            char *end;
            long pid = strtol(p, &end, 10);
            if (end == p)
                break;
            still += kill((pid_t)pid, 0) == 0;
            p = end;
        }
        if (still == 0 || ns_to_ms(clock_mono_ns() - t0) >= timeout_ms)
            break;
        struct timespec ts = {0, 2 * 1000 * 1000}; /* polling period */
        nanosleep(&ts, NULL);
    }
    free(pids);
    if (left)
        *left = still;
    return n;
}

int db_postmaster_pid(PGconn *db)
{
    PGresult *r = PQexec(db, "SELECT setting FROM pg_settings WHERE name = 'data_directory'");
    char path[512] = "";
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        snprintf(path, sizeof path, "%s/postmaster.pid", PQgetvalue(r, 0, 0));
    PQclear(r);
    FILE *f = path[0] ? fopen(path, "r") : NULL;
    if (!f)
        return -1;
    long pid = -1;
    if (fscanf(f, "%ld", &pid) != 1)
        pid = -1;
    fclose(f);
    return pid > 0 ? (int)pid : -1;
}

const char *proc_stat_after_comm(long pid, char *buf, size_t len)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    size_t n = fread(buf, 1, len - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the command may hold spaces */
    return p ? p + 1 : NULL;
}

/* The parent pid of pid (from /proc/PID/stat), or -1. */
static long parent_of(const char *pid)
{
    char buf[512];
    const char *p = proc_stat_after_comm(strtol(pid, NULL, 10), buf, sizeof buf);
    char state;
    long ppid;
    return p && sscanf(p, " %c %ld", &state, &ppid) == 2 ? ppid : -1;
}

int db_cluster_signal(int postmaster, int sig)
{
    if (postmaster <= 0)
        return -1;
    /* The postmaster first on SIGCONT, last on SIGSTOP: it cannot start a
     * process that escapes the freeze meanwhile. */
    if (sig == SIGCONT && kill(postmaster, sig) != 0)
        return -1;
    DIR *d = opendir("/proc");
    if (!d)
        return -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] >= '1' && e->d_name[0] <= '9' && parent_of(e->d_name) == postmaster)
            kill((pid_t)strtol(e->d_name, NULL, 10), sig);
    closedir(d);
    if (sig != SIGCONT && kill(postmaster, sig) != 0)
        return -1;
    return 0;
}

int harness_main(const char *suite, CU_InitializeFunc setup, CU_CleanupFunc teardown, const struct harness_test *tests)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite(suite, setup, teardown);
    for (const struct harness_test *t = tests; s && t->name; t++) {
        if (!CU_add_test(s, t->name, t->fn))
            s = NULL;
    }
    if (!s) {
        CU_cleanup_registry();
        return 1;
    }
    proc_raise_nofile(32768); /* the concurrency tests open many sockets */
    curl_global_init(CURL_GLOBAL_ALL);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    /* A suite whose tear-down failed (a program that did not exit 0: under
     * the sanitizers, a leak or an error found at exit) fails the run. */
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed() + CU_get_number_of_suites_failed();
    unsigned run = CU_get_number_of_tests_run();
    CU_cleanup_registry();
    curl_global_cleanup();
    return failed || run == 0 ? 1 : 0;
}

double harness_slowdown(void)
{
    const char *v = getenv("COFFEE_TIMING_SLACK");
    double f = v ? strtod(v, NULL) : 0;
    if (f >= 1.0)
        return f;
#if defined(__SANITIZE_THREAD__)
    return 4.0;
#elif defined(__SANITIZE_ADDRESS__)
    return 3.0;
#else
    return 1.0;
#endif
}

int order_done(const struct child *server, const char *mode, double scale)
{
    char url[160];
    long status;
    snprintf(url, sizeof url, "%s/make-coffee?mode=%s&scale=%g", server->base_url, mode, scale);
    json_t *o = http_get_json(url, &status);
    const char *st = json_string_value(json_object_get(o, "status"));
    int ok = status == 200 && st && !strcmp(st, "done");
    json_decref(o);
    return ok;
}

double jnum(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

const char *jstr(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

json_t *jstep(const json_t *order, const char *name)
{
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(order, "steps"), i, s)
    {
        if (!strcmp(json_string_value(json_object_get(s, "name")) ? json_string_value(json_object_get(s, "name")) : "",
                    name))
            return s;
    }
    return NULL;
}

int harness_aborts(void (*fn)(void *), void *arg)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0)
            dup2(devnull, STDERR_FILENO);
        fn(arg);
        _exit(0);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
}
