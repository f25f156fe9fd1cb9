/* front_int: the inside of the HTTP front that its files share
 * (http_front.c: routing, orders, the answer; probe_routes.c: the routes a
 * probe answers), as pgpool_int.h joins the pool's files. Not for other
 * modules: they speak http_front.h. */
#ifndef COFFEE_FRONT_INT_H
#define COFFEE_FRONT_INT_H

#include "drain.h"
#include "executor.h"
#include "http_front.h"
#include "httpd.h"
#include "params.h"
#include "probes.h"
#include "workflow.h"

enum req_kind {
    REQ_ORDER,   /* /make-coffee: one order */
    REQ_COMPARE, /* /compare: one order per asked mode, at once */
    REQ_LOOKUP,  /* /orders/{id} */
    REQ_STATS,   /* /stats */
    REQ_READY    /* /readyz */
};

struct req {
    struct front *f;
    struct MHD_Connection *conn;
    enum req_kind kind;
    int pending;                        /* work still running */
    int norders;                        /* REQ_ORDER: 1; REQ_COMPARE: 2 or more */
    struct order *orders[WF_MAX_MODES]; /* one per mode, in the asked order */
    struct probe probe;                 /* REQ_LOOKUP, REQ_STATS, REQ_READY */
    unsigned status;                    /* the answer, once pending is 0 */
    char *body;
};

struct front {
    struct evloop *loop;
    struct httpd *httpd;
    struct pgpool *pool;
    struct curl_loop *http;
    struct executor execs[EXEC_KINDS];
    struct metrics *metrics;
    struct front_options opt;
    int inflight;       /* orders */
    int mixed;          /* of which mixed (each freezes the loop once) */
    int nreqs;          /* struct req alive */
    struct drain drain; /* serving, draining, ..., closed */
};

/* ---- http_front.c, for probe_routes.c ------------------------------------ */

/* A new request of f on c, counted in f->nreqs; NULL when out of memory. */
struct req *req_new(struct front *f, struct MHD_Connection *c, enum req_kind kind);
/* Suspends r's connection until req_answer (MHD_suspend_connection). */
enum MHD_Result req_suspend(struct req *r, void **con_cls);
/* Sets the answer (taking body, which may be NULL: out of memory) and
 * resumes the connection. */
void req_answer(struct req *r, unsigned status, char *body);
/* {"error": msg} as JSON text: returns new, or NULL. */
char *error_body(const char *msg);

/* ---- probe_routes.c: the routes one probe answers ------------------------- */

/* GET /orders/{id} (idtext: what follows the slash). */
enum MHD_Result route_lookup(struct front *f, struct MHD_Connection *c, void **con_cls, const char *idtext);
/* GET /stats[?since=...]. */
enum MHD_Result route_stats(struct front *f, struct MHD_Connection *c, void **con_cls, const struct query_arg *args,
                            size_t nargs);
/* GET /readyz: the database and the kitchen asked, the pool's figures. */
enum MHD_Result route_ready(struct front *f, struct MHD_Connection *c, void **con_cls);

#endif
