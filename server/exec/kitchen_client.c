/* kitchen_client: the kitchen's protocol, the URL of a step, transfer
 * options and the reading of an answer (see kitchen_client.h). Owns
 * nothing but the kitchen service's calls in flight; does no I/O itself: a
 * call on the loop is curl_loop's transfer. */
#include "kitchen_client.h"

#include "io.h"
#include "list.h"
#include "order.h"
#include "trace.h"
#include "workflow.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* curl's receive buffer per easy handle (its minimum; the default is 16 KB). */
#define KC_RECV_BUFFER 1024L

_Static_assert(KC_TRACEPARENT_SIZE == TRACEPARENT_SIZE, "one traceparent size");

static size_t on_write(char *data, size_t size, size_t nmemb, void *arg)
{
    struct kc_response *r = arg;
    size_t n = size * nmemb;
    if (r->len + n >= sizeof r->body) {
        r->overflow = 1;
        return 0; /* stops the transfer with CURLE_WRITE_ERROR */
    }
    memcpy(r->body + r->len, data, n);
    r->len += n;
    r->body[r->len] = '\0';
    return n;
}

int kc_url(const struct step_def *step, const char *kitchen_url, double scale, char *buf, size_t len)
{
    size_t base = strlen(kitchen_url);
    while (base > 0 && kitchen_url[base - 1] == '/')
        base--;
    int n = snprintf(buf, len, "%.*s%s?ms=%d", (int)base, kitchen_url, step->target, wf_step_ms(step, scale));
    if (n < 0 || (size_t)n >= len)
        return -1;
    if (!step->result)
        return 0;
    /* &result=, every byte but the unreserved ones percent-encoded. */
    size_t off = (size_t)n;
    int m = snprintf(buf + off, len - off, "&result=");
    if (m < 0 || (size_t)m >= len - off)
        return -1;
    off += (size_t)m;
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)step->result; *p; p++) {
        int plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                    strchr("-._~", *p) != NULL;
        if (off + (plain ? 1 : 3) >= len)
            return -1;
        if (plain) {
            buf[off++] = (char)*p;
        } else {
            buf[off++] = '%';
            buf[off++] = hex[*p >> 4];
            buf[off++] = hex[*p & 15];
        }
    }
    buf[off] = '\0';
    return 0;
}

int kc_parse_result(const char *body, size_t len, char *out, size_t outlen, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *root = json_loadb(body, len, 0, &jerr);
    const char *result = root ? json_string_value(json_object_get(root, "result")) : NULL;
    int rc = 0;
    if (!root)
        snprintf(err, errlen, "kitchen answered invalid JSON: %s", jerr.text);
    else if (!result)
        snprintf(err, errlen, "kitchen answer has no \"result\" string");
    else if (strlen(result) >= outlen)
        snprintf(err, errlen, "kitchen result is too long");
    else
        snprintf(out, outlen, "%s", result);
    if (!root || !result || strlen(result) >= outlen)
        rc = -1;
    json_decref(root);
    return rc;
}

int kc_setup(CURL *e)
{
    CURLcode c = CURLE_OK;
    c |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    c |= curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    c |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    c |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    c |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    c |= curl_easy_setopt(e, CURLOPT_USERAGENT, "coffee-server");
    /* The receive buffer is allocated per handle at its first transfer and
     * kept with it (16 KB by default); a kitchen answer is ~200 bytes with
     * its headers, and thousands of handles may be in flight at once. */
    c |= curl_easy_setopt(e, CURLOPT_BUFFERSIZE, KC_RECV_BUFFER);
    return c == CURLE_OK ? 0 : -1;
}

void kc_set_trace(struct kc_response *resp, const char *traceparent)
{
    snprintf(resp->traceparent, sizeof resp->traceparent, "%s", traceparent ? traceparent : "");
}

int kc_prepare(CURL *e, const char *url, long timeout_ms, struct kc_response *resp)
{
    resp->len = 0;
    resp->overflow = 0;
    resp->body[0] = '\0';
    CURLcode c = CURLE_OK;
    /* A pooled handle keeps the last list it was given: always set it. The
     * list is resp's own element, not curl_slist_append's: nothing to free. */
    struct curl_slist *headers = NULL;
    if (resp->traceparent[0]) {
        snprintf(resp->header, sizeof resp->header, "traceparent: %s", resp->traceparent);
        resp->header_list = (struct curl_slist){.data = resp->header, .next = NULL};
        headers = &resp->header_list;
    }
    c |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
    c |= curl_easy_setopt(e, CURLOPT_URL, url);
    c |= curl_easy_setopt(e, CURLOPT_WRITEDATA, resp);
    c |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
    return c == CURLE_OK ? 0 : -1;
}

int kc_result(CURL *e, CURLcode code, const struct kc_response *resp, char *result, size_t rlen, char *err,
              size_t errlen)
{
    char perr[160];
    long status = 0;
    if (code == CURLE_OPERATION_TIMEDOUT) {
        snprintf(err, errlen, "kitchen did not answer in time");
        return OERR_TIMEOUT;
    }
    if (resp->overflow) {
        snprintf(err, errlen, "kitchen answer is larger than %d bytes", KC_BODY_MAX);
        return OERR_KITCHEN;
    }
    if (code != CURLE_OK) {
        snprintf(err, errlen, "kitchen unreachable: %s", curl_easy_strerror(code));
        return OERR_KITCHEN;
    }
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200) {
        snprintf(err, errlen, "kitchen answered HTTP %ld", status);
        return OERR_KITCHEN;
    }
    if (kc_parse_result(resp->body, resp->len, result, rlen, perr, sizeof perr) != 0) {
        snprintf(err, errlen, "%s", perr);
        return OERR_KITCHEN;
    }
    return 0;
}

/* What kc_call_start hands its prepare hook, which curl_loop runs inside
 * curl_loop_start: the arguments are still alive then. */
struct call_start {
    struct kc_call *c;
    const struct kc_call_args *a;
};

static int prepare_call(CURL *e, void *arg)
{
    const struct call_start *cs = arg;
    char url[512];
    if (kc_url(cs->a->step, cs->a->kitchen_url, cs->a->scale, url, sizeof url) != 0)
        return -1; /* the transfer fails on a later pass */
    kc_set_trace(&cs->c->resp, cs->a->traceparent);
    return kc_prepare(e, url, cs->a->timeout_ms, &cs->c->resp);
}

static void on_call_done(struct hreq *r, CURLcode code)
{
    struct kc_call *c = container_of(r, struct kc_call, http);
    char result[WF_RESULT_MAX], msg[200];
    int err = kc_result(r->easy, code, &c->resp, result, sizeof result, msg, sizeof msg);
    c->cb(c, err, result, msg); /* may free c */
}

void kc_call_start(struct curl_loop *cl, struct kc_call *c, const struct kc_call_args *a)
{
    struct call_start cs = {.c = c, .a = a};
    c->http.cb = on_call_done;
    curl_loop_start(cl, &c->http, prepare_call, &cs);
}

void kc_call_abandon(struct curl_loop *cl, struct kc_call *c)
{
    curl_loop_abandon(cl, &c->http);
}

/* ---- the kitchen service ---------------------------------------------------- */

struct kc_service {
    struct curl_loop *cl;
    const char *kitchen_url;
    struct io_later later;
};

/* One call of the service: owned by it from start until done or abandon. */
struct kc_loop_call {
    struct kc_call call;
    struct io_req *req;
};

static void on_service_call_done(struct kc_call *c, int err, const char *result, const char *msg)
{
    struct kc_loop_call *k = container_of(c, struct kc_loop_call, call);
    struct io_req *r = k->req;
    /* result and msg are on_call_done's, not the call's: alive after free. */
    struct io_result out = {.error = err, .text = err ? NULL : result, .msg = err ? msg : NULL};
    free(k);
    r->impl = NULL;
    r->done(r, &out);
}

static void service_start(void *ctx, struct io_req *r, const struct kitchen_args *a)
{
    struct kc_service *ks = ctx;
    struct kc_loop_call *k = calloc(1, sizeof *k);
    if (!k) {
        io_later_fail(&ks->later, r, OERR_INTERNAL, "out of memory");
        return;
    }
    k->req = r;
    k->call.cb = on_service_call_done;
    r->impl = k;
    struct kc_call_args ca = {.kitchen_url = ks->kitchen_url,
                              .step = a->step,
                              .scale = a->scale,
                              .timeout_ms = a->timeout_ms,
                              .traceparent = a->traceparent};
    kc_call_start(ks->cl, &k->call, &ca);
}

static void service_abandon(void *ctx, struct io_req *r)
{
    struct kc_service *ks = ctx;
    struct kc_loop_call *k = r->impl;
    if (!k) {
        io_later_cancel(r);
        return;
    }
    kc_call_abandon(ks->cl, &k->call);
    free(k);
    r->impl = NULL;
}

struct kc_service *kc_service_new(struct evloop *loop, struct curl_loop *cl, const char *kitchen_url)
{
    struct kc_service *ks = calloc(1, sizeof *ks);
    if (!ks)
        return NULL;
    ks->cl = cl;
    ks->kitchen_url = kitchen_url;
    io_later_init(&ks->later, loop);
    return ks;
}

void kc_service_free(struct kc_service *ks)
{
    free(ks);
}

struct kitchen_service kc_service(struct kc_service *ks)
{
    return (struct kitchen_service){.start = service_start, .abandon = service_abandon, .ctx = ks};
}
