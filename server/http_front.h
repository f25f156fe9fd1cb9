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
struct exec_async;
struct exec_blocking;
struct front;

struct front_options {
    const char *kitchen_url;
    double default_scale;
    int max_inflight; /* orders in flight before a 503 */
};

/* Returns new, or NULL. Everything passed is borrowed. */
struct front *front_new(struct evloop *loop, struct pgpool *pool, struct curl_loop *http, struct exec_async *async,
                        struct exec_blocking *blocking, const struct front_options *opt);
void front_free(struct front *f);
void front_attach(struct front *f, struct httpd *h);
/* MHD callbacks; arg is the front. */
enum MHD_Result front_handler(void *arg, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls);
void front_completed(void *arg, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe);
/* Stops taking orders; calls done(arg) on the loop thread once every
 * request that was waiting has been answered and completed. Orders still
 * running after timeout_ms are cancelled (answered 503) and recorded as
 * failed. */
void front_drain(struct front *f, long timeout_ms, void (*done)(void *), void *arg);
/* Cancels every running order now (a second signal, or the drain's
 * timeout). Loop thread only. */
void front_cancel_orders(struct front *f);
/* Orders in flight. */
int front_inflight(const struct front *f);

/* ---- placing orders from other modules (rush.c) ------------------------
 * The same admission, executors, rows and metrics as /make-coffee. Loop
 * thread only. */
struct order;
struct metrics_gauges;

enum front_admission {
    FRONT_ADMITTED = 0,
    FRONT_DRAINING = -1,  /* shutting down: answer 503 */
    FRONT_OVERLOADED = -2 /* over --max-inflight: answer 503 with Retry-After */
};
/* Whether norders more orders may start now; a refusal is counted in the
 * metrics as /make-coffee's are. Returns enum front_admission. */
int front_admit(struct front *f, int norders);
/* Counts o (borrowed until its on_done ran) as in flight and hands it to
 * its mode's executor. o->on_done runs once, on a later loop pass, and
 * must call front_order_ended(f, o) before anything else. */
void front_submit(struct front *f, struct order *o);
/* Counts o (borrowed) as ended: in flight, metrics. */
void front_order_ended(struct front *f, const struct order *o);
/* A request that waits outside struct req (a rush stream): front_drain
 * waits until every hold is released. */
void front_hold(struct front *f);
void front_release(struct front *f);
/* The gauges /metrics samples from the pool and the workers. */
void front_gauges(struct front *f, struct metrics_gauges *g);
/* What such a module needs of the front (borrowed). */
struct evloop *front_loop(const struct front *f);
struct httpd *front_httpd(const struct front *f);
double front_default_scale(const struct front *f);

/* The HTTP status for an order_error. */
unsigned front_status_for(int order_error);

#endif
