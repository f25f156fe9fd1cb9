/* probe_routes: the HTTP front's routes that one probe answers:
 * /orders/{id}, /stats and /readyz (probes.c runs the queries and the
 * kitchen call; this file turns their outcome into an answer).
 *
 * Owns: nothing of its own; each request is a struct req of http_front.c's
 * (front_int.h), suspended while its probe runs.
 * Must never: block, or answer a request twice. */
#include "front_int.h"

#include "pgpool.h"
#include "report.h"

#include <jansson.h>
#include <stdlib.h>

/* /orders/{id} and /stats: the probe's JSON text, or an error. */
static void on_lookup(struct probe *p)
{
    struct req *r = container_of(p, struct req, probe);
    r->pending = 0;
    switch (p->outcome) {
    case PROBE_FOUND:
        req_answer(r, MHD_HTTP_OK, p->text);
        p->text = NULL; /* the answer took it */
        break;
    case PROBE_NOT_FOUND:
        req_answer(r, MHD_HTTP_NOT_FOUND, error_body("no order with that id"));
        break;
    case PROBE_BAD_INPUT:
        req_answer(r, MHD_HTTP_BAD_REQUEST, error_body(p->msg));
        break;
    case PROBE_UNAVAILABLE:
        req_answer(r, MHD_HTTP_SERVICE_UNAVAILABLE, error_body(p->msg));
        break;
    }
}

static void on_ready(struct probe *p)
{
    struct req *r = container_of(p, struct req, probe);
    r->pending = 0;
    struct pgpool_stats ps;
    pgpool_stats(r->f->pool, &ps);
    /* brews: how many brews may hold a connection at once (the rest are
     * kept for rows and probes): async capacity is that many over the
     * brew's time. */
    json_t *j = json_pack("{s:s, s:s, s:s, s:{s:i, s:i, s:i, s:i, s:i}}", "status", p->ready ? "ready" : "not ready",
                          "database", p->db_state, "kitchen", p->kitchen_state, "db_pool", "size", ps.size, "brews",
                          ps.long_max, "connected", ps.connected, "busy", ps.busy, "waiting", ps.waiting);
    char *body = report_dumps(j);
    json_decref(j);
    req_answer(r, p->ready ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, body);
}

/* A request that one probe answers: r, suspended, its probe's callback
 * set; the caller starts the probe. NULL when out of memory. */
static struct req *probe_req(struct front *f, struct MHD_Connection *c, void **con_cls, enum req_kind kind, probe_cb cb)
{
    struct req *r = req_new(f, c, kind);
    if (!r)
        return NULL;
    r->probe.cb = cb;
    r->pending = 1;
    req_suspend(r, con_cls);
    return r;
}

enum MHD_Result route_lookup(struct front *f, struct MHD_Connection *c, void **con_cls, const char *idtext)
{
    int64_t id;
    char err[200];
    if (params_order_id(idtext, &id, err, sizeof err) != 0)
        return httpd_respond_error(c, MHD_HTTP_BAD_REQUEST, err);
    struct req *r = probe_req(f, c, con_cls, REQ_LOOKUP, on_lookup);
    if (!r)
        return httpd_respond_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
    probe_order(&r->probe, f->pool, id);
    return MHD_YES;
}

enum MHD_Result route_stats(struct front *f, struct MHD_Connection *c, void **con_cls, const struct query_arg *args,
                            size_t nargs)
{
    const char *since;
    char err[200];
    if (params_stats(args, nargs, &since, err, sizeof err) != 0)
        return httpd_respond_error(c, MHD_HTTP_BAD_REQUEST, err);
    struct req *r = probe_req(f, c, con_cls, REQ_STATS, on_lookup);
    if (!r)
        return httpd_respond_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
    /* since points into MHD's copy of the request, alive while it is. */
    probe_stats(&r->probe, f->pool, since);
    return MHD_YES;
}

enum MHD_Result route_ready(struct front *f, struct MHD_Connection *c, void **con_cls)
{
    struct req *r = probe_req(f, c, con_cls, REQ_READY, on_ready);
    if (!r)
        return httpd_respond_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
    probe_ready(&r->probe, f->pool, f->http, f->opt.kitchen_url);
    return MHD_YES;
}
