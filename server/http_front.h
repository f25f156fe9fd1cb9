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
    int max_mixed;    /* mixed orders in flight before a 503: each freezes the loop */
    unsigned modes;   /* bit mask of the wf_modes offered; others get 400 */
    const char *instance; /* this replica's name, stored with each order (borrowed, outlives the front) */
};

/* After the drain's timeout, orders are cancelled; this much later,
 * whatever still waits is abandoned and the server stops. */
#define FRONT_CANCEL_GRACE_MS 2000

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

#endif
