/* kitchen_client: how a step talks to the kitchen, shared by both
 * executors: the easy-handle options, the response buffer and the reading
 * of the answer. Only who drives the transfer differs (curl_easy_perform on
 * a worker, curl_multi on the loop: kc_call_start below).
 *
 * Errors: kc_url, kc_parse_result, kc_setup, kc_prepare return 0 or -1
 * (detail, where there is one, in the caller's buffer). The exception is
 * the outcome of a call (kc_result, kc_call_cb): 0, or the order_error the
 * step fails with, because that is what both executors record. */
#ifndef COFFEE_KITCHEN_CLIENT_H
#define COFFEE_KITCHEN_CLIENT_H

#include "curl_loop.h"

#include <curl/curl.h>
#include <stddef.h>

#define KC_BODY_MAX 1024
#define KC_TRACEPARENT_SIZE 56

struct kc_response {
    char body[KC_BODY_MAX];
    size_t len;
    int overflow; /* the answer did not fit: the transfer was stopped */
    /* Sent as the request's traceparent header when not "" (kc_set_trace);
     * the header and its one-element list live here, with the transfer. */
    char traceparent[KC_TRACEPARENT_SIZE];
    char header[KC_TRACEPARENT_SIZE + 16];
    struct curl_slist header_list;
};

struct step_def;

/* Writes the kitchen URL of an HTTP step ({kitchen}{target}?ms=N, the
 * step's duration at scale, and &result=R, percent-encoded, for a task
 * step with a result) into buf. Returns 0 or -1 if it does not fit. */
int kc_url(const struct step_def *step, const char *kitchen_url, double scale, char *buf, size_t len);
/* Extracts "result" from a kitchen answer. Returns 0, or -1 with err. */
int kc_parse_result(const char *body, size_t len, char *out, size_t outlen, char *err, size_t errlen);
/* Sets the options every kitchen transfer uses (no signals, keep-alive,
 * TCP_NODELAY, connect timeout, a 1 KB receive buffer). Returns 0 or -1. */
int kc_setup(CURL *e);
/* Sets the traceparent the next kc_prepare with resp sends (NULL or "" =
 * none); copied. */
void kc_set_trace(struct kc_response *resp, const char *traceparent);
/* Points e at url, writing the answer into resp, bounded by timeout_ms
 * (0 = none), with resp's traceparent header if it has one. Resets resp's
 * answer (not its traceparent). Returns 0 or -1. */
int kc_prepare(CURL *e, const char *url, long timeout_ms, struct kc_response *resp);
/* Reads a finished transfer: 0 with the step's result, or an order_error
 * (OERR_KITCHEN, OERR_TIMEOUT) with a message naming what went wrong. */
int kc_result(CURL *e, CURLcode code, const struct kc_response *resp, char *result, size_t rlen, char *err,
              size_t errlen);

/* ---- One step's call on the loop (the async executor), over a curl_loop. */

struct kc_call;
/* Called on the loop thread, on a later pass than kc_call_start, once
 * unless the call was abandoned: err 0 with the step's result, or an
 * order_error (OERR_KITCHEN, OERR_TIMEOUT) with msg saying what went wrong.
 * result and msg are borrowed for the call. The callback may free c. */
typedef void (*kc_call_cb)(struct kc_call *c, int err, const char *result, const char *msg);

/* What to call; borrowed during kc_call_start only. */
struct kc_call_args {
    const char *kitchen_url;
    const struct step_def *step; /* an IO_HTTP step of the order's recipe */
    double scale;
    long timeout_ms;         /* the whole transfer's bound */
    const char *traceparent; /* sent as the traceparent header (NULL or "" = none) */
};

/* One call. The caller owns it (usually embedded in its own state) and
 * keeps it alive until cb ran or it called kc_call_abandon(). */
struct kc_call {
    kc_call_cb cb;
    /* private */
    struct hreq http;
    struct kc_response resp;
};

/* Starts the call a describes. cb runs on a later pass, also when the call
 * cannot start (an URL that does not fit, no easy handle). */
void kc_call_start(struct curl_loop *cl, struct kc_call *c, const struct kc_call_args *a);
/* Stops c: no callback will run, none runs inside this call. */
void kc_call_abandon(struct curl_loop *cl, struct kc_call *c);

/* ---- The kitchen service (io.h) of the async executor: kc_calls on a
 * curl_loop, one allocated per call. */

struct kitchen_service;
struct kc_service;
/* Returns new, or NULL. cl and kitchen_url are borrowed and must outlive it. */
struct kc_service *kc_service_new(struct evloop *loop, struct curl_loop *cl, const char *kitchen_url);
/* Frees ks; accepts NULL. No call may be pending. */
void kc_service_free(struct kc_service *ks);
/* Its kitchen service; ks is borrowed. */
struct kitchen_service kc_service(struct kc_service *ks);

#endif
