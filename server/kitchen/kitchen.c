/* kitchen: the appliances' request handling (see kitchen.h).
 *
 * Owns: one struct kreq per request that reached the handler, freed only in
 * kitchen_completed. A request waits suspended with a timer; the timer
 * resumes it and the handler, called again, queues the answer.
 * Must never: sleep, or resume a connection that is not suspended. */
#define _GNU_SOURCE /* POLLRDHUP */
#include "kitchen.h"

#include "evloop.h"
#include "httpd.h"
#include "list.h"
#include "log.h"
#include "num.h"
#include "procstat.h"
#include "promtext.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How often a hanging request looks whether its client is still there. */
#define HANG_CHECK_NS (250 * 1000000LL)
/* A request's status once its client hung up. */
#define STATUS_GONE 0u

struct appliance {
    const char *path;
    const char *name;
    const char *result;
};

static const struct appliance appliances[] = {
    {"/kettle", "kettle", "Boiled water"},
    {"/grinder", "grinder", "Ground coffee"},
    {"/toaster", "toaster", "Toast bread ready!"},
    {"/task", "task", NULL}, /* answers the result it is given (a recipe's timed task) */
};
#define NAPPLIANCES (sizeof appliances / sizeof appliances[0])

static const char *const fault_names[] = {"none", "500", "garbage", "close", "hang"};
#define NFAULTS (sizeof fault_names / sizeof fault_names[0])

struct kreq {
    struct kitchen *k;
    struct MHD_Connection *conn;
    const struct appliance *app;
    int ms;
    char result[KITCHEN_RESULT_MAX + 1]; /* a task's; "" for an appliance */
    enum kitchen_fault fault;            /* as set when the request arrived */
    int suspended;
    unsigned status; /* set when the answer is ready */
    struct ev_timer timer;
    struct list_node link; /* on the kitchen's waiting list while suspended */
};

struct kitchen {
    struct evloop *loop;
    struct httpd *httpd;
    struct list_node waiting; /* suspended requests, timer running */
    unsigned nrequests;       /* contexts alive */
    int shutting_down;
    int allow_fault_api;
    enum kitchen_fault faults[NAPPLIANCES];
    /* For /metrics: requests accepted, waiting now, and answered with an
     * injected fault, per appliance (and per fault kind). */
    unsigned long long requests[NAPPLIANCES];
    unsigned inflight[NAPPLIANCES];
    unsigned long long faulted[NAPPLIANCES][NFAULTS];
};

struct kitchen *kitchen_new(struct evloop *loop, int allow_fault_api)
{
    struct kitchen *k = calloc(1, sizeof *k);
    if (k) {
        k->loop = loop;
        k->allow_fault_api = allow_fault_api;
        list_init(&k->waiting);
    }
    return k;
}

static int lookup(const char *const *names, size_t n, const char *name, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(names[i]) == len && !strncmp(names[i], name, len))
            return (int)i;
    return -1;
}

static int appliance_index(const char *name, size_t len)
{
    for (size_t i = 0; i < NAPPLIANCES; i++)
        if (strlen(appliances[i].name) == len && !strncmp(appliances[i].name, name, len))
            return (int)i;
    return -1;
}

/* Parses one "appliance=kind" of len bytes into faults. 0 or -1 with err. */
static int parse_fault(const char *pair, size_t len, enum kitchen_fault faults[], char *err, size_t errlen)
{
    const char *eq = memchr(pair, '=', len);
    int app = eq ? appliance_index(pair, (size_t)(eq - pair)) : -1;
    int kind = eq ? lookup(fault_names, NFAULTS, eq + 1, len - (size_t)(eq - pair) - 1) : -1;
    if (app < 0 || kind < 0) {
        snprintf(err, errlen, "bad fault '%.*s': want kettle|grinder|toaster|task=none|500|garbage|close|hang",
                 (int)(len < 64 ? len : 64), pair);
        return -1;
    }
    faults[app] = (enum kitchen_fault)kind;
    return 0;
}

int kitchen_set_faults(struct kitchen *k, const char *spec, char *err, size_t errlen)
{
    enum kitchen_fault faults[NAPPLIANCES];
    memcpy(faults, k->faults, sizeof faults);
    for (const char *p = spec; *p;) {
        size_t len = strcspn(p, ",");
        if (parse_fault(p, len, faults, err, errlen) != 0)
            return -1;
        p += len + (p[len] == ',');
    }
    memcpy(k->faults, faults, sizeof faults);
    return 0;
}

void kitchen_free(struct kitchen *k)
{
    free(k);
}

void kitchen_attach(struct kitchen *k, struct httpd *h)
{
    k->httpd = h;
}

static void unlink_waiting(struct kreq *r)
{
    list_remove(&r->link);
    r->k->inflight[r->app - appliances]--;
}

/* The one place a waiting request is answered: stop its timer, take it off
 * the list and resume it with status. */
static void finish_waiting(struct kreq *r, unsigned status)
{
    evloop_timer_stop(r->k->loop, &r->timer);
    unlink_waiting(r);
    r->status = status;
    r->suspended = 0;
    httpd_resume(r->k->httpd, r->conn);
}

/* Whether the client of r closed its side. MHD does not watch a suspended
 * connection, so a hanging request looks for itself. Never waits. */
static int client_gone(const struct kreq *r)
{
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!info)
        return 1;
    struct pollfd pfd = {.fd = info->connect_fd, .events = POLLRDHUP};
    return poll(&pfd, 1, 0) < 0 || (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

static void on_timer(struct evloop *loop, struct ev_timer *t)
{
    struct kreq *r = container_of(t, struct kreq, timer);
    if (r->fault != FAULT_HANG) {
        finish_waiting(r, MHD_HTTP_OK);
    } else if (client_gone(r)) {
        finish_waiting(r, STATUS_GONE); /* answered, then completed: frees r */
    } else if (evloop_timer_start(loop, &r->timer, HANG_CHECK_NS) != 0) {
        finish_waiting(r, MHD_HTTP_SERVICE_UNAVAILABLE);
    }
}

static const struct appliance *find_appliance(const char *url)
{
    for (size_t i = 0; i < sizeof appliances / sizeof appliances[0]; i++)
        if (!strcmp(url, appliances[i].path))
            return &appliances[i];
    return NULL;
}

struct fault_args {
    enum kitchen_fault faults[NAPPLIANCES];
    char err[160];
};

static enum MHD_Result count_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind, (void)value;
    int *n = cls;
    if (!strcmp(key, "ms"))
        n[0]++;
    else if (!strcmp(key, "result"))
        n[1]++;
    return MHD_YES;
}

/* Whether text is a result a task may answer (KITCHEN_RESULT_MAX). */
static int result_ok(const char *text)
{
    size_t n = text ? strlen(text) : 0;
    if (n == 0 || n > KITCHEN_RESULT_MAX)
        return 0;
    for (const char *p = text; *p; p++)
        if (*p < 0x20 || *p > 0x7e || *p == '"' || *p == '\\')
            return 0;
    return 1;
}

static enum MHD_Result answer(struct kreq *r)
{
    char body[160];
    if (r->status == STATUS_GONE) /* nobody reads it: MHD closes the connection */
        return httpd_respond_error(r->conn, MHD_HTTP_SERVICE_UNAVAILABLE, "the client hung up");
    if (r->status != MHD_HTTP_OK)
        return httpd_respond_error(r->conn, r->status, "kitchen is shutting down");
    switch (r->fault) {
    case FAULT_500:
        return httpd_respond_error(r->conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "injected fault: the appliance broke");
    case FAULT_GARBAGE:
        return httpd_respond(r->conn, MHD_HTTP_OK, "<html>not JSON", 14, NULL);
    case FAULT_CLOSE:
        return MHD_NO; /* MHD closes the connection without an answer */
    default:
        break;
    }
    int n = snprintf(body, sizeof body, "{\"appliance\":\"%s\",\"ms\":%d,\"result\":\"%s\"}", r->app->name, r->ms,
                     r->app->result ? r->app->result : r->result);
    return httpd_respond(r->conn, MHD_HTTP_OK, body, (size_t)n, NULL);
}

static enum MHD_Result add_fault(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    struct fault_args *fa = cls;
    int app = appliance_index(key, strlen(key));
    int f = value ? lookup(fault_names, NFAULTS, value, strlen(value)) : -1;
    if (app < 0 || f < 0) {
        snprintf(fa->err, sizeof fa->err,
                 "bad fault '%.40s=%.40s': want kettle|grinder|toaster|task=none|500|garbage|close|hang", key,
                 value ? value : "");
        return MHD_NO;
    }
    fa->faults[app] = (enum kitchen_fault)f;
    return MHD_YES;
}

/* GET /faults shows the faults; POST /faults?appliance=kind&... sets them
 * (no arguments: clears all), when the API is allowed. */
static enum MHD_Result route_faults(struct kitchen *k, struct MHD_Connection *c, const char *method)
{
    if (!strcmp(method, "POST")) {
        if (!k->allow_fault_api)
            return httpd_respond_error(c, MHD_HTTP_FORBIDDEN, "fault injection is off: start with --allow-faults");
        struct fault_args fa = {.err = ""};
        if (MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, add_fault, &fa) > 0 && fa.err[0])
            return httpd_respond_error(c, MHD_HTTP_BAD_REQUEST, fa.err);
        memcpy(k->faults, fa.faults, sizeof k->faults); /* unnamed appliances: none */
    }
    char body[160];
    int n = snprintf(body, sizeof body, "{\"kettle\":\"%s\",\"grinder\":\"%s\",\"toaster\":\"%s\",\"task\":\"%s\"}",
                     fault_names[k->faults[0]], fault_names[k->faults[1]], fault_names[k->faults[2]],
                     fault_names[k->faults[3]]);
    return httpd_respond(c, MHD_HTTP_OK, body, (size_t)n, NULL);
}

/* GET /metrics: the appliances' counters, the process's, the build. */
static enum MHD_Result answer_metrics(const struct kitchen *k, struct MHD_Connection *c)
{
    struct text_buf b;
    text_buf_init(&b, 4096);
    promtext_header(&b, "coffee_kitchen_requests_total", "counter", "Appliance requests accepted, by appliance.");
    for (size_t i = 0; i < NAPPLIANCES; i++)
        text_buf_put(&b, "coffee_kitchen_requests_total{appliance=\"%s\"} %llu\n", appliances[i].name, k->requests[i]);
    promtext_header(&b, "coffee_kitchen_requests_in_flight", "gauge", "Appliance requests waiting now, by appliance.");
    for (size_t i = 0; i < NAPPLIANCES; i++)
        text_buf_put(&b, "coffee_kitchen_requests_in_flight{appliance=\"%s\"} %u\n", appliances[i].name,
                     k->inflight[i]);
    promtext_header(&b, "coffee_kitchen_faults_injected_total", "counter",
                    "Requests that met an injected fault, by appliance and fault.");
    for (size_t i = 0; i < NAPPLIANCES; i++)
        for (size_t f = 1; f < NFAULTS; f++)
            text_buf_put(&b, "coffee_kitchen_faults_injected_total{appliance=\"%s\",fault=\"%s\"} %llu\n",
                         appliances[i].name, fault_names[f], k->faulted[i][f]);
    procstat_render(&b);
    char *text = text_buf_finish(&b);
    if (!text)
        return httpd_respond_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "kitchen out of memory");
    return httpd_respond_as(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", text, strlen(text),
                            MHD_RESPMEM_MUST_FREE);
}

enum MHD_Result kitchen_handler(void *arg, struct MHD_Connection *c, const char *url, const char *method,
                                const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    (void)version, (void)upload_data;
    struct kitchen *k = arg;
    /* A method refused is answered at once, without reading a body. */
    int faults = !strcmp(url, "/faults");
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0 && !(faults && !strcmp(method, "POST")))
        return httpd_respond_error(c, MHD_HTTP_METHOD_NOT_ALLOWED,
                                   faults ? "use GET or POST /faults" : "only GET is supported");
    if (!httpd_request_read(con_cls, upload_data_size))
        return MHD_YES;
    if (*con_cls)
        return answer(*con_cls); /* resumed: the answer is ready */
    if (faults)
        return route_faults(k, c, method);
    if (!strcmp(url, "/metrics"))
        return answer_metrics(k, c);
    if (!strcmp(url, "/livez"))
        return httpd_respond(c, MHD_HTTP_OK, "{\"status\":\"ok\"}", 15, NULL);
    const struct appliance *app = find_appliance(url);
    if (!app)
        return httpd_respond_error(c, MHD_HTTP_NOT_FOUND,
                                   "no such appliance: use /kettle, /grinder, /toaster or /task");
    int nargs[2] = {0, 0}; /* ms, result */
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, count_arg, nargs);
    const char *ms_text = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "ms");
    int64_t ms;
    if (nargs[0] != 1 || parse_int64(ms_text, 0, KITCHEN_MAX_MS, &ms) != 0)
        return httpd_respond_error(c, MHD_HTTP_BAD_REQUEST, "ms must be given once, a whole number from 0 to 60000");
    const char *result = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "result");
    if (app->result && nargs[1])
        return httpd_respond_error(c, MHD_HTTP_BAD_REQUEST, "result is for /task only: an appliance says its own");
    if (!app->result && (nargs[1] != 1 || !result_ok(result)))
        return httpd_respond_error(c, MHD_HTTP_BAD_REQUEST,
                                   "result must be given once, 1 to 48 printable ASCII characters but \" and \\");
    if (k->shutting_down)
        return httpd_respond_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "kitchen is shutting down");
    if (log_enabled(LOG_DEBUG)) {
        const struct log_field fields[] = {
            {"appliance", app->name},
            {"ms", ms_text},
            {"fault", fault_names[k->faults[app - appliances]]},
            {"traceparent", MHD_lookup_connection_value(c, MHD_HEADER_KIND, "traceparent")},
        };
        log_event(LOG_DEBUG, "kitchen", "request", fields, sizeof fields / sizeof fields[0]);
    }

    struct kreq *r = calloc(1, sizeof *r);
    if (!r)
        return httpd_respond_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "kitchen out of memory");
    r->k = k;
    r->conn = c;
    r->app = app;
    r->ms = (int)ms;
    if (!app->result)
        snprintf(r->result, sizeof r->result, "%s", result);
    r->fault = k->faults[app - appliances];
    r->timer.cb = on_timer;
    /* A hanging request never answers: its timer only looks, every
     * HANG_CHECK_NS, whether the client hung up; then it is freed. */
    int64_t delay = r->fault == FAULT_HANG ? HANG_CHECK_NS : ms * 1000000LL;
    if (evloop_timer_start(k->loop, &r->timer, delay) != 0) {
        free(r);
        return httpd_respond_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "kitchen out of memory");
    }
    *con_cls = r;
    k->nrequests++;
    list_push_back(&k->waiting, &r->link);
    k->requests[app - appliances]++;
    k->inflight[app - appliances]++;
    if (r->fault != FAULT_NONE)
        k->faulted[app - appliances][r->fault]++;
    /* Suspend now, in the handler; the timer can only fire on a later
     * loop pass, so the resume always comes after this suspend. */
    MHD_suspend_connection(c);
    r->suspended = 1;
    return MHD_YES;
}

void kitchen_completed(void *arg, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    (void)c, (void)toe;
    struct kitchen *k = arg;
    struct kreq *r = *con_cls;
    if (!r || httpd_request_unread(r))
        return;
    *con_cls = NULL;
    if (r->suspended) { /* cannot happen while MHD honours suspension */
        evloop_timer_stop(k->loop, &r->timer);
        unlink_waiting(r);
    }
    free(r);
    k->nrequests--;
    if (k->shutting_down && k->nrequests == 0)
        evloop_stop(k->loop);
}

void kitchen_shutdown(struct kitchen *k)
{
    k->shutting_down = 1;
    struct list_node *n;
    while ((n = list_first(&k->waiting)) != NULL)
        finish_waiting(container_of(n, struct kreq, link), MHD_HTTP_SERVICE_UNAVAILABLE);
    if (k->nrequests == 0)
        evloop_stop(k->loop);
}
