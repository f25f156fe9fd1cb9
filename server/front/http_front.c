/* http_front: routes, validation and answers (see http_front.h; the routes
 * a probe answers are in probe_routes.c, the inside both share in
 * front_int.h).
 *
 * Owns: one struct req per request that waits (orders, a stored-order
 * look-up, a readiness probe). It is created in the handler, which
 * suspends the connection before any work starts, and freed only in
 * front_completed; the work's callbacks fill in the answer and resume.
 * Must never: block, answer from a callback (only the handler queues
 * responses), or resume a connection twice. */
#include "http_front.h"
#include "front_int.h"

#include "clock.h"
#include "drain.h"
#include "evloop.h"
#include "executor.h"
#include "httpd.h"
#include "list.h"
#include "log.h"
#include "metrics.h"
#include "order.h"
#include "order_log.h"
#include "params.h"
#include "pgpool.h"
#include "probes.h"
#include "procstat.h"
#include "recipes_route.h"
#include "report.h"
#include "rush.h"
#include "trace.h"
#include "trace_route.h"
#include "web.h"
#include "workflow_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ARGS 16

/* The HTTP status for an order_error: the one place errors become statuses. */
static unsigned front_status_for(int order_error)
{
    switch (order_error) {
    case OERR_NONE:
        return MHD_HTTP_OK;
    case OERR_KITCHEN:
        return MHD_HTTP_BAD_GATEWAY;
    case OERR_TIMEOUT:
        return MHD_HTTP_GATEWAY_TIMEOUT;
    case OERR_DB:
    case OERR_SHUTDOWN:
    case OERR_OVERLOAD:
        return MHD_HTTP_SERVICE_UNAVAILABLE;
    default:
        return MHD_HTTP_INTERNAL_SERVER_ERROR;
    }
}

/* ---- answering ----------------------------------------------------------- */

/* Sets the answer (taking body) and resumes the connection. */
void req_answer(struct req *r, unsigned status, char *body)
{
    r->status = status;
    r->body = body;
    httpd_resume(r->f->httpd, r->conn);
}

char *error_body(const char *msg)
{
    return httpd_error_json(msg);
}

static void check_drained(struct front *f)
{
    if (f->nreqs == 0)
        drain_idle(&f->drain);
}

/* ---- orders -------------------------------------------------------------- */

static unsigned order_status_code(const struct order *o)
{
    return o->status == ORDER_DONE ? MHD_HTTP_OK : front_status_for(o->error);
}

static void answer_orders(struct req *r)
{
    unsigned status = order_status_code(r->orders[0]);
    char *body;
    if (r->kind == REQ_ORDER) {
        /* Built once, when the row was finished (db_stmt_finish). */
        const char *text = report_order_text(r->orders[0]);
        body = text ? strdup(text) : NULL;
    } else {
        /* Its status is the first failed order's, with that order's error. */
        const struct order *bad = NULL;
        json_t *j = report_compare((const struct order *const *)r->orders, r->norders, &bad);
        status = bad ? order_status_code(bad) : MHD_HTTP_OK;
        body = report_dumps(j);
        json_decref(j);
    }
    if (!body) {
        status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        body = error_body("out of memory");
    }
    req_answer(r, status, body);
}

void front_order_ended(struct front *f, const struct order *o)
{
    f->inflight--;
    f->mixed -= wf_mode_blocks_loop(&wf_modes[o->mode]);
    recipes_release(f->opt.recipes, o->recipe);
    metrics_order_ended(f->metrics, o);
    order_log_ended(o);
}

static void on_order_done(struct order *o, void *arg)
{
    struct req *r = arg;
    front_order_ended(r->f, o);
    if (--r->pending == 0)
        answer_orders(r);
}

void front_submit(struct front *f, struct order *o)
{
    o->instance = f->opt.instance;
    if (!o->traceparent[0]) /* a root of its own when the caller set none */
        trace_child(NULL, o->traceparent, sizeof o->traceparent);
    f->inflight++;
    f->mixed += wf_mode_blocks_loop(&wf_modes[o->mode]);
    recipes_hold(f->opt.recipes, o->recipe);
    metrics_order_started(f->metrics, o->mode);
    const struct executor *x = front_executor(f, o->mode);
    x->ops->submit(x->ex, o);
}

const struct executor *front_executor(const struct front *f, int mode)
{
    return &f->execs[wf_modes[mode].exec];
}

void front_gauges(struct front *f, struct metrics_gauges *g)
{
    struct pgpool_stats ps;
    pgpool_stats(f->pool, &ps);
    *g = (struct metrics_gauges){.pool_size = ps.size,
                                 .pool_connected = ps.connected,
                                 .pool_busy = ps.busy,
                                 .pool_waiting = ps.waiting,
                                 .threads = procstat_threads()};
    for (int k = 0; k < EXEC_KINDS; k++) {
        struct executor_stats es;
        f->execs[k].ops->stats(f->execs[k].ex, &g->exec[k]);
        es = g->exec[k];
        g->workers += es.workers;
        g->workers_busy += es.workers_busy;
        g->workers_queued += es.queued;
    }
}

static enum MHD_Result answer_metrics(struct front *f, struct MHD_Connection *c)
{
    struct metrics_gauges g;
    front_gauges(f, &g);
    char *text = metrics_render(f->metrics, &g);
    if (!text)
        return httpd_respond_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
    return httpd_respond_as(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", text, strlen(text),
                            MHD_RESPMEM_MUST_FREE);
}

/* ---- routing ------------------------------------------------------------- */

struct args {
    struct query_arg a[MAX_ARGS];
    size_t n;
    int overflow;
};

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    struct args *args = cls;
    if (args->n == MAX_ARGS) {
        args->overflow = 1;
        return MHD_NO;
    }
    args->a[args->n++] = (struct query_arg){key, value};
    return MHD_YES;
}

struct req *req_new(struct front *f, struct MHD_Connection *c, enum req_kind kind)
{
    struct req *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->f = f;
    r->conn = c;
    r->kind = kind;
    f->nreqs++;
    return r;
}

/* Frees r and everything it owns. */
static void req_free(struct req *r)
{
    for (int i = 0; i < r->norders; i++)
        order_free(r->orders[i]);
    probe_release(&r->probe);
    free(r->body);
    r->f->nreqs--;
    free(r);
}

/* Suspends c and records r as its context: from here on, r's work may
 * finish (on a later pass) and resume it. */
enum MHD_Result req_suspend(struct req *r, void **con_cls)
{
    *con_cls = r;
    MHD_suspend_connection(r->conn);
    return MHD_YES;
}

int front_admit(struct front *f, const int *modes, int nmodes, int each, char *why, size_t whylen)
{
    if (!drain_taking_orders(&f->drain)) {
        metrics_order_rejected(f->metrics, REJECT_DRAINING);
        snprintf(why, whylen, "server is shutting down");
        return FRONT_DRAINING;
    }
    int nmixed = 0;
    for (int i = 0; i < nmodes; i++) {
        if (!(f->opt.modes & (1u << modes[i]))) {
            snprintf(why, whylen, "mode '%s' is not offered by this server (--modes)", wf_modes[modes[i]].name);
            return FRONT_MODE_OFF;
        }
        nmixed += wf_mode_blocks_loop(&wf_modes[modes[i]]) * each;
    }
    if (each > (f->opt.max_inflight - f->inflight) / nmodes) {
        metrics_order_rejected(f->metrics, REJECT_OVERLOAD);
        if (each * nmodes > 1)
            snprintf(why, whylen, "%d orders at once would pass the server's in-flight limit (%d); retry later",
                     each * nmodes, f->opt.max_inflight);
        else
            snprintf(why, whylen, "too many orders in flight; retry later");
        return FRONT_OVERLOADED;
    }
    if (nmixed && f->mixed + nmixed > f->opt.max_mixed) {
        metrics_order_rejected(f->metrics, REJECT_OVERLOAD);
        if (f->mixed > 0)
            snprintf(why, whylen, "a mixed order is already freezing the event loop (--max-mixed %d); retry later",
                     f->opt.max_mixed);
        else /* a rush of them */
            snprintf(why, whylen,
                     "%d mixed orders at once would freeze the event loop %d times over "
                     "(--max-mixed %d); ask for fewer",
                     nmixed, nmixed, f->opt.max_mixed);
        return FRONT_LOOP_TAKEN;
    }
    return FRONT_ADMITTED;
}

unsigned front_admission_status(int admission)
{
    return admission == FRONT_MODE_OFF ? MHD_HTTP_BAD_REQUEST : MHD_HTTP_SERVICE_UNAVAILABLE;
}

/* Starts one order of the recipe called rname per mode in modes[0..n) for
 * one request (2 or more make a comparison) and suspends the connection
 * until all have ended. */
static enum MHD_Result start_orders(struct front *f, struct MHD_Connection *c, void **con_cls, const int *modes,
                                    int norders, double scale, const char *rname)
{
    const struct recipe *recipe = front_recipe(f, rname);
    if (!recipe)
        return recipes_respond_unknown(c, rname);
    char why[200];
    int admitted = front_admit(f, modes, norders, 1, why, sizeof why);
    if (admitted != FRONT_ADMITTED)
        return httpd_respond_error(c, front_admission_status(admitted), why);
    struct req *r = req_new(f, c, norders > 1 ? REQ_COMPARE : REQ_ORDER);
    if (!r)
        return httpd_respond_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
    /* The client's trace, continued (a new one when it sent none, or a bad one). */
    struct trace_ctx parent;
    int traced = trace_parse(MHD_lookup_connection_value(c, MHD_HEADER_KIND, "traceparent"), &parent) == 0;
    r->norders = norders;
    for (int i = 0; i < norders; i++) {
        if (!(r->orders[i] = order_new(modes[i], scale, on_order_done, r))) {
            req_free(r);
            return httpd_respond_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
        }
        r->orders[i]->recipe = recipe;
        trace_child(traced ? &parent : NULL, r->orders[i]->traceparent, sizeof r->orders[i]->traceparent);
    }
    r->pending = norders;
    enum MHD_Result ret = req_suspend(r, con_cls);
    for (int i = 0; i < norders; i++)
        front_submit(f, r->orders[i]);
    return ret;
}

static enum MHD_Result route_make_coffee(struct front *f, struct MHD_Connection *c, void **con_cls,
                                         const struct args *args)
{
    struct order_params p;
    char err[200];
    if (params_make_coffee(args->a, args->n, f->opt.default_scale, &p, err, sizeof err) != 0)
        return httpd_respond_error(c, MHD_HTTP_BAD_REQUEST, err);
    return start_orders(f, c, con_cls, &p.mode, 1, p.scale, p.recipe);
}

static enum MHD_Result route_compare(struct front *f, struct MHD_Connection *c, void **con_cls, const struct args *args)
{
    struct compare_params p;
    char err[200];
    if (params_compare(args->a, args->n, f->opt.default_scale, &p, err, sizeof err) != 0)
        return httpd_respond_error(c, MHD_HTTP_BAD_REQUEST, err);
    return start_orders(f, c, con_cls, p.modes, p.nmodes, p.scale, p.recipe);
}

enum MHD_Result front_handler(void *arg, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    (void)version, (void)upload_data;
    struct front *f = arg;
    enum MHD_Result res; /* /recipes, and a recipe to look up first: recipes_route.h */
    if (recipes_intercept(f, c, url, method, upload_data, upload_data_size, con_cls, &res))
        return res;
    /* A method refused is answered at once, without reading a body; a
     * HEAD refused once its request was read, so the connection stays. */
    const char *allow;
    char msg[80];
    int refused = params_method(url, method, &allow, msg, sizeof msg) != 0;
    if (refused && strcmp(method, "HEAD") != 0)
        return httpd_respond_error_with(c, MHD_HTTP_METHOD_NOT_ALLOWED, msg, "Allow", allow);
    if (!httpd_request_read(con_cls, upload_data_size))
        return MHD_YES;
    struct req *r = *con_cls;
    if (r) { /* resumed: the answer is ready */
        char *body = r->body;
        r->body = NULL;
        if (!body)
            return httpd_respond_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
        return httpd_respond_take(c, r->status, body, strlen(body));
    }
    if (refused)
        return httpd_respond_error_with(c, MHD_HTTP_METHOD_NOT_ALLOWED, msg, "Allow", allow);
    if (!strcmp(url, "/livez"))
        return httpd_respond(c, MHD_HTTP_OK, "{\"status\":\"ok\"}", 15, NULL);
    if (!strcmp(url, "/metrics"))
        return answer_metrics(f, c);
    size_t page_len;
    const char *page = web_page(url, &page_len);
    if (page) /* static storage: MHD borrows it for good and never writes it */
        return httpd_respond_as(c, MHD_HTTP_OK, WEB_CONTENT_TYPE, (void *)page, page_len, MHD_RESPMEM_PERSISTENT);

    /* Drained: the daemon is about to stop, and MHD must not find a
     * connection suspended then. */
    if (drain_closed(&f->drain))
        return httpd_respond_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "server is shutting down");

    struct args args = {0};
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, collect_arg, &args);
    if (args.overflow)
        return httpd_respond_error(c, MHD_HTTP_BAD_REQUEST, "too many query parameters");
    if (!strcmp(url, "/make-coffee"))
        return route_make_coffee(f, c, con_cls, &args);
    if (!strcmp(url, "/compare"))
        return route_compare(f, c, con_cls, &args);
    if (!strcmp(url, "/rush"))
        return rush_route(f, c, args.a, args.n);
    if (!strcmp(url, "/trace"))
        return trace_route(c, args.a, args.n);
    if (!strcmp(url, "/readyz"))
        return route_ready(f, c, con_cls);
    if (!strcmp(url, "/stats"))
        return route_stats(f, c, con_cls, args.a, args.n);
    if (!strcmp(url, "/workflow") || !strcmp(url, "/recipes"))
        return recipes_route(f, c, url, args.a, args.n);
    if (!strncmp(url, "/orders/", 8))
        return route_lookup(f, c, con_cls, url + 8);
    return httpd_respond_error(
        c, MHD_HTTP_NOT_FOUND,
        "no such path: try / (the page), /make-coffee?mode=async, /compare, /rush, /orders/{id}, "
        "/stats, /workflow, /recipes, /metrics, /trace, /livez, /readyz");
}

void front_completed(void *arg, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    (void)c;
    struct front *f = arg;
    struct req *r = *con_cls;
    if (!r || httpd_request_unread(r) || recipes_completed(f, con_cls))
        return;
    *con_cls = NULL;
    if (r->pending) {
        log_error("request completed with work pending (code %d); leaking it to stay safe", (int)toe);
        f->nreqs--;
    } else {
        req_free(r);
    }
    check_drained(f);
}

/* The drain's hooks: cancel every running order (its deadline passed),
 * or abandon them (the grace ran out, or a second signal). */
static void cancel_orders(void *arg)
{
    struct front *f = arg;
    if (f->inflight == 0)
        return;
    log_warn("cancelling %d orders in flight", f->inflight);
    for (int k = 0; k < EXEC_KINDS; k++)
        f->execs[k].ops->cancel_all(f->execs[k].ex);
}

static void abort_orders(void *arg)
{
    struct front *f = arg;
    if (f->inflight == 0)
        return;
    log_warn("abandoning %d orders in flight: not waiting for the database or the kitchen any more", f->inflight);
    for (int k = 0; k < EXEC_KINDS; k++)
        f->execs[k].ops->abort_all(f->execs[k].ex);
}

void front_abort(struct front *f)
{
    drain_abort(&f->drain);
}

void front_drain(struct front *f, long timeout_ms, void (*done)(void *), void *arg)
{
    drain_start(&f->drain, timeout_ms, done, arg);
    check_drained(f);
}

int front_inflight(const struct front *f)
{
    return f->inflight;
}

void front_hold(struct front *f)
{
    f->nreqs++;
}

void front_release(struct front *f)
{
    f->nreqs--;
    check_drained(f);
}

struct evloop *front_loop(const struct front *f)
{
    return f->loop;
}
struct httpd *front_httpd(const struct front *f)
{
    return f->httpd;
}
double front_default_scale(const struct front *f)
{
    return f->opt.default_scale;
}
unsigned front_modes(const struct front *f)
{
    return f->opt.modes;
}
struct recipes *front_recipes(const struct front *f)
{
    return f->opt.recipes;
}
int front_closing(const struct front *f)
{
    return !drain_taking_orders(&f->drain);
}

struct front *front_new(struct evloop *loop, struct pgpool *pool, struct curl_loop *http, const struct executor *execs,
                        const struct front_options *opt)
{
    struct front *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->loop = loop;
    f->pool = pool;
    f->http = http;
    memcpy(f->execs, execs, sizeof f->execs); /* EXEC_KINDS of them */
    f->opt = *opt;
    struct drain_hooks hooks = {.cancel = cancel_orders, .abort = abort_orders, .arg = f};
    drain_init(&f->drain, loop, FRONT_CANCEL_GRACE_MS, &hooks);
    f->metrics = metrics_new();
    if (!f->metrics || metrics_watch_loop(f->metrics, loop) != 0) {
        front_free(f);
        return NULL;
    }
    metrics_gauge_source(f->metrics, front_gauges, f); /* the flight recorder's counters */
    return f;
}

void front_free(struct front *f)
{
    if (!f)
        return;
    drain_release(&f->drain);
    metrics_free(f->metrics);
    free(f);
}

void front_attach(struct front *f, struct httpd *h)
{
    f->httpd = h;
}
