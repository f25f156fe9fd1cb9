/* http_front: the coffee-server's HTTP API on libmicrohttpd.
 *
 * Routes requests, validates parameters, hands orders to the executor of
 * their mode, and answers when they end. A request that waits is a
 * suspended connection: the front itself never waits, so a slow blocking
 * order cannot delay the answer to anything else. Maps order errors to HTTP
 * statuses (and nothing else does). */
#ifndef COFFEE_HTTP_FRONT_H
#define COFFEE_HTTP_FRONT_H

#include <microhttpd.h>

struct evloop;
struct httpd;
struct pgpool;
struct curl_loop;
struct executor;
struct front;
struct recipes;

struct front_options {
    const char *kitchen_url;
    double default_scale;
    int max_inflight;        /* orders in flight before a 503 */
    int max_mixed;           /* mixed orders in flight before a 503: each freezes the loop */
    unsigned modes;          /* bit mask of the wf_modes offered; others get 400 */
    const char *instance;    /* this replica's name, stored with each order (borrowed, outlives the front) */
    struct recipes *recipes; /* the stored recipes and their routes (recipes_route.h; borrowed, outlives the front) */
};

/* After the drain's timeout, orders are cancelled; this much later,
 * whatever still waits is abandoned and the server stops. */
#define FRONT_CANCEL_GRACE_MS 2000

/* Returns new, or NULL. Everything passed is borrowed; execs[k] is the
 * executor of enum exec_kind k (executor.h), copied. */
struct front *front_new(struct evloop *loop, struct pgpool *pool, struct curl_loop *http, const struct executor *execs,
                        const struct front_options *opt);
void front_free(struct front *f);
void front_attach(struct front *f, struct httpd *h);
/* MHD callbacks; arg is the front. */
enum MHD_Result front_handler(void *arg, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls);
void front_completed(void *arg, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe);
/* Stops taking orders; calls done(arg) on the loop thread once every
 * request that was waiting has been answered and completed (after that,
 * nothing is suspended any more: requests that would wait get a 503).
 * Orders still running after timeout_ms are cancelled (answered 503) and
 * recorded as failed; FRONT_CANCEL_GRACE_MS later, whatever still waits
 * (a frozen database) is abandoned: front_abort. */
void front_drain(struct front *f, long timeout_ms, void (*done)(void *), void *arg);
/* Ends every running order now, answering 503, without waiting for any
 * database or kitchen (a second signal, or the cancel's grace ran out);
 * rows not written are failed by the sweep later. Loop thread only. */
void front_abort(struct front *f);
/* Orders in flight. */
int front_inflight(const struct front *f);

/* ---- placing orders from other modules (rush.c) ------------------------
 * The same admission, executors, rows and metrics as /make-coffee. Loop
 * thread only. */
struct order;
struct metrics_gauges;

enum front_admission {
    FRONT_ADMITTED = 0,
    FRONT_DRAINING = -1,   /* shutting down: 503 */
    FRONT_OVERLOADED = -2, /* over --max-inflight: 503 */
    FRONT_MODE_OFF = -3,   /* a mode this server does not offer (--modes): 400 */
    FRONT_LOOP_TAKEN = -4  /* over --max-mixed (orders that freeze the loop): 503 */
};
/* Whether `each` more orders of every mode in modes[0..nmodes) may start
 * now. Returns enum front_admission; a refusal puts the client's message
 * in why and is counted in the metrics as /make-coffee's are. */
int front_admit(struct front *f, const int *modes, int nmodes, int each, char *why, size_t whylen);
/* The HTTP status for a refusal of front_admit. */
unsigned front_admission_status(int admission);
/* Counts o (borrowed until its on_done ran) as in flight, stamps it with
 * the server's instance (and a trace of its own when it has none) and
 * hands it to its mode's executor. o->on_done runs once, on a later loop
 * pass, and must call front_order_ended(f, o) before anything else. */
void front_submit(struct front *f, struct order *o);
/* Counts o (borrowed) as ended: in flight, metrics, the order's log line. */
void front_order_ended(struct front *f, const struct order *o);
/* A request that waits outside struct req (a rush stream): front_drain
 * waits until every hold is released. */
void front_hold(struct front *f);
void front_release(struct front *f);
/* The gauges /metrics samples from the pool and the executors. */
void front_gauges(struct front *f, struct metrics_gauges *g);
/* The executor that runs orders of mode (borrowed). */
const struct executor *front_executor(const struct front *f, int mode);
/* What such a module needs of the front (borrowed). */
struct evloop *front_loop(const struct front *f);
struct httpd *front_httpd(const struct front *f);
double front_default_scale(const struct front *f);
/* The bit mask of the modes offered (--modes). */
unsigned front_modes(const struct front *f);
/* The recipes this front knows (front_options.recipes), borrowed. */
struct recipes *front_recipes(const struct front *f);
/* Whether the front has stopped taking work (draining). */
int front_closing(const struct front *f);

#endif
