/* loadgen: open-loop GETs at a fixed rate, every one recorded (see
 * loadgen.h). Owns one thread, one multi handle and one transfer (easy
 * handle and body) per request in flight, freed when its completion is
 * drained; the request records belong to the load until load_free. Only
 * the load's thread touches curl; the caller reads the records after
 * load_stop joined it. */
#include "loadgen.h"

#include "clock.h"
#include "xfer.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOAD_MAX_BODY (256 * 1024) /* an order's timeline is ~1.5 KB */
#define LOAD_MAX_INFLIGHT 8000     /* far above rate x timeout of any run here */

struct transfer {
    CURL *easy;
    size_t idx; /* into reqs */
    struct xfer_body body;
};

struct load {
    char *url;
    double rate;
    long timeout_ms;
    CURLM *multi;
    pthread_t thread;
    int started; /* the thread runs (or ran) */
    atomic_int stop;
    int failed;
    int inflight;
    struct load_req *reqs;
    size_t n, cap;
};

/* Starts the next request. 0, or -1 (out of memory, curl refused). */
static int start_one(struct load *l, int64_t now)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 1024;
        struct load_req *r = realloc(l->reqs, cap * sizeof *r);
        if (!r)
            return -1;
        l->reqs = r;
        l->cap = cap;
    }
    struct transfer *x = calloc(1, sizeof *x);
    if (!x)
        return -1;
    x->idx = l->n;
    x->body.max = LOAD_MAX_BODY; /* a body that large is no order: curl fails it */
    x->easy = xfer_easy(l->url, l->timeout_ms, "coffee-tests/loadgen", &x->body, x);
    if (!x->easy || curl_multi_add_handle(l->multi, x->easy) != CURLM_OK) {
        curl_easy_cleanup(x->easy);
        free(x);
        return -1;
    }
    l->reqs[l->n++] = (struct load_req){.start_ns = now};
    l->inflight++;
    return 0;
}

/* The order id of a 200 whose body is a done order, else 0. */
static long long done_order_id(const char *body)
{
    json_t *j = json_loads(body ? body : "", 0, NULL);
    const char *st = json_string_value(json_object_get(j, "status"));
    long long id = st && !strcmp(st, "done") ? json_integer_value(json_object_get(j, "order_id")) : 0;
    json_decref(j);
    return id;
}

/* A non-200's {"error": "..."} into r->error (cut to fit). */
static void error_text(struct load_req *r, const char *body)
{
    json_t *j = json_loads(body ? body : "", 0, NULL);
    const char *e = json_string_value(json_object_get(j, "error"));
    snprintf(r->error, sizeof r->error, "%s", e ? e : "(no JSON error in the body)");
    json_decref(j);
}

/* Records every transfer that ended and frees it. */
static void drain(struct load *l)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(l->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        struct transfer *x;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        struct load_req *r = &l->reqs[x->idx];
        r->end_ns = clock_mono_ns();
        r->code = msg->data.result;
        if (r->code == CURLE_OK)
            curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &r->status);
        if (r->code != CURLE_OK)
            snprintf(r->error, sizeof r->error, "%s", curl_easy_strerror(r->code));
        else if (r->status == 200)
            r->order_id = done_order_id(xfer_body_text(&x->body));
        else
            error_text(r, xfer_body_text(&x->body));
        for (char *c = r->error; *c; c++) /* one line, for messages and CSV */
            if (*c == '\n' || *c == '\r' || *c == '"')
                *c = *c == '"' ? '\'' : ' ';
        curl_multi_remove_handle(l->multi, x->easy);
        curl_easy_cleanup(x->easy);
        xfer_body_free(&x->body);
        free(x);
        l->inflight--;
    }
}

static void *load_main(void *arg)
{
    struct load *l = arg;
    const int64_t t0 = clock_mono_ns();
    const double period_ns = 1e9 / l->rate;
    for (;;) {
        int stopping = atomic_load(&l->stop);
        int64_t now = clock_mono_ns();
        /* Every request that is due starts now, late ones included: the
         * arrival times do not depend on how the server answers. */
        while (!stopping && !l->failed && t0 + (int64_t)((double)l->n * period_ns) <= now) {
            if (l->inflight >= LOAD_MAX_INFLIGHT || start_one(l, now) != 0) {
                l->failed = 1;
                break;
            }
        }
        int running;
        if (curl_multi_perform(l->multi, &running) != CURLM_OK)
            l->failed = 1;
        drain(l);
        if ((stopping || l->failed) && l->inflight == 0)
            break;
        if (l->failed && running == 0)
            break; /* nothing left that could end */
        int64_t next = t0 + (int64_t)((double)l->n * period_ns);
        int wait_ms = stopping ? 100 : (int)((next - clock_mono_ns()) / NS_PER_MS);
        if (wait_ms < 0)
            wait_ms = 0;
        if (wait_ms > 100)
            wait_ms = 100;
        curl_multi_poll(l->multi, NULL, 0, wait_ms, NULL); /* woken by load_stop */
    }
    return NULL;
}

struct load *load_start(const char *url, double rate, long timeout_ms)
{
    if (!(rate > 0) || timeout_ms < 1)
        return NULL;
    struct load *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->url = strdup(url);
    l->rate = rate;
    l->timeout_ms = timeout_ms;
    l->multi = curl_multi_init();
    atomic_init(&l->stop, 0);
    if (!l->url || !l->multi)
        goto fail;
    /* No cap on connections to the server: every order in flight has its own. */
    curl_multi_setopt(l->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 0L);
    if (pthread_create(&l->thread, NULL, load_main, l) != 0)
        goto fail;
    l->started = 1;
    return l;
fail:
    load_free(l);
    return NULL;
}

void load_halt(struct load *l)
{
    if (!l || !l->started)
        return;
    atomic_store(&l->stop, 1);
    curl_multi_wakeup(l->multi);
}

void load_stop(struct load *l)
{
    if (!l || !l->started)
        return;
    load_halt(l);
    pthread_join(l->thread, NULL); /* bounded: every transfer has its timeout */
    l->started = 0;
}

const struct load_req *load_reqs(const struct load *l, size_t *n)
{
    *n = l->n;
    return l->reqs;
}

int load_failed(const struct load *l)
{
    return l->failed;
}

void load_free(struct load *l)
{
    if (!l)
        return;
    load_stop(l);
    if (l->multi)
        curl_multi_cleanup(l->multi);
    free(l->reqs);
    free(l->url);
    free(l);
}
