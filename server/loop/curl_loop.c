/* curl_loop: curl multi on our loop (see curl_loop.h).
 *
 * Owns: the multi handle, a stack of idle easy handles, one timer. Three
 * levels of context as in curl's examples: the curl_loop (global), the
 * hreq via CURLOPT_PRIVATE (per transfer), the fd table of the loop (per
 * socket: no allocation of ours).
 * Must never: call a curl_multi_* function from inside a curl callback
 * (CURLM_RECURSIVE_API_CALL), call a request's callback inside
 * curl_loop_start, or touch a request after its callback. */
#include "curl_loop.h"

#include "evloop.h"
#include "list.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>

enum { R_NONE, R_RUNNING, R_FAILED };

struct curl_loop {
    struct evloop *loop;
    CURLM *multi;
    struct ev_timer timer;
    CURL **idle;
    int nidle, idle_cap;
    int (*setup)(CURL *e);
    struct list_node failed; /* could not start: called back by fail_task */
    struct ev_task fail_task;
    int fail_pending;
};

static void drain(struct curl_loop *cl);

static void put_easy(struct curl_loop *cl, CURL *e)
{
    if (cl->nidle < cl->idle_cap)
        cl->idle[cl->nidle++] = e;
    else
        curl_easy_cleanup(e);
}

static CURL *get_easy(struct curl_loop *cl)
{
    if (cl->nidle > 0)
        return cl->idle[--cl->nidle];
    CURL *e = curl_easy_init();
    if (e && cl->setup && cl->setup(e) != 0) {
        curl_easy_cleanup(e);
        e = NULL;
    }
    return e;
}

static void on_io(struct evloop *loop, int fd, int events, void *arg)
{
    (void)loop;
    struct curl_loop *cl = arg;
    int flags = (events & EV_READ ? CURL_CSELECT_IN : 0) | (events & EV_WRITE ? CURL_CSELECT_OUT : 0) |
                (events & EV_ERROR ? CURL_CSELECT_ERR : 0);
    int running;
    CURLMcode mc = curl_multi_socket_action(cl->multi, fd, flags, &running);
    if (mc != CURLM_OK && mc != CURLM_BAD_SOCKET)
        log_error("curl_multi_socket_action: %s", curl_multi_strerror(mc));
    drain(cl);
}

static void on_timer(struct evloop *loop, struct ev_timer *t)
{
    (void)loop;
    struct curl_loop *cl = container_of(t, struct curl_loop, timer);
    int running;
    CURLMcode mc = curl_multi_socket_action(cl->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    if (mc != CURLM_OK)
        log_error("curl_multi_socket_action(timeout): %s", curl_multi_strerror(mc));
    drain(cl); /* also after timer-driven actions, or a DONE is missed */
}

/* CURLMOPT_SOCKETFUNCTION: set the interest mask for s. */
static int socket_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)e, (void)socketp;
    struct curl_loop *cl = userp;
    if (what == CURL_POLL_REMOVE) {
        evloop_io_del(cl->loop, s);
        return 0;
    }
    int mask = (what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0);
    if (evloop_io_set(cl->loop, s, mask, on_io, cl) != 0)
        log_error("cannot watch curl socket %d", (int)s);
    return 0;
}

/* CURLMOPT_TIMERFUNCTION: one non-repeating timer; -1 deletes it. Never
 * calls curl from here: the timer fires on a later pass. */
static int timer_cb(CURLM *m, long timeout_ms, void *userp)
{
    (void)m;
    struct curl_loop *cl = userp;
    if (timeout_ms < 0) {
        evloop_timer_stop(cl->loop, &cl->timer);
        return 0;
    }
    return evloop_timer_start(cl->loop, &cl->timer, (int64_t)timeout_ms * 1000000LL) == 0 ? 0 : -1;
}

/* Hands every finished transfer to its owner. */
static void drain(struct curl_loop *cl)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(cl->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *e = msg->easy_handle;
        CURLcode code = msg->data.result; /* msg is invalid after remove */
        struct hreq *r = NULL;
        curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&r);
        curl_multi_remove_handle(cl->multi, e);
        r->where = R_NONE;
        r->cb(r, code); /* may free r: not touched after this */
        put_easy(cl, e);
    }
}

static void on_fail_task(struct evloop *loop, struct ev_task *task)
{
    (void)loop;
    struct curl_loop *cl = container_of(task, struct curl_loop, fail_task);
    cl->fail_pending = 0;
    struct list_node *n;
    while ((n = list_first(&cl->failed)) != NULL) {
        struct hreq *r = container_of(n, struct hreq, link);
        list_remove(n);
        r->where = R_NONE;
        r->cb(r, CURLE_FAILED_INIT);
    }
}

void curl_loop_start(struct curl_loop *cl, struct hreq *r, hreq_prepare prepare, void *arg)
{
    list_init(&r->link);
    r->easy = get_easy(cl);
    if (r->easy && prepare(r->easy, arg) == 0 && curl_easy_setopt(r->easy, CURLOPT_PRIVATE, (char *)r) == CURLE_OK &&
        curl_multi_add_handle(cl->multi, r->easy) == CURLM_OK) {
        r->where = R_RUNNING;
        return;
    }
    /* Report it on a later pass, like any other outcome. */
    if (r->easy)
        put_easy(cl, r->easy);
    r->easy = NULL;
    r->where = R_FAILED;
    list_push_back(&cl->failed, &r->link);
    if (!cl->fail_pending) {
        cl->fail_pending = 1;
        evloop_defer(cl->loop, &cl->fail_task);
    }
}

void curl_loop_abandon(struct curl_loop *cl, struct hreq *r)
{
    if (r->where == R_RUNNING) {
        curl_multi_remove_handle(cl->multi, r->easy);
        put_easy(cl, r->easy);
        r->easy = NULL;
    } else if (r->where == R_FAILED) {
        list_remove(&r->link);
    }
    r->where = R_NONE;
}

struct curl_loop *curl_loop_new(struct evloop *loop, long maxconnects, long max_total, int (*setup)(CURL *e))
{
    struct curl_loop *cl = calloc(1, sizeof *cl);
    if (!cl)
        return NULL;
    cl->loop = loop;
    cl->setup = setup;
    cl->timer.cb = on_timer;
    cl->fail_task.fn = on_fail_task;
    list_init(&cl->failed);
    cl->idle_cap = 4096;
    cl->idle = calloc((size_t)cl->idle_cap, sizeof *cl->idle);
    cl->multi = curl_multi_init();
    if (!cl->idle || !cl->multi)
        goto fail;
    CURLMcode c = CURLM_OK;
    c |= curl_multi_setopt(cl->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    c |= curl_multi_setopt(cl->multi, CURLMOPT_SOCKETDATA, cl);
    c |= curl_multi_setopt(cl->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    c |= curl_multi_setopt(cl->multi, CURLMOPT_TIMERDATA, cl);
    c |= curl_multi_setopt(cl->multi, CURLMOPT_MAXCONNECTS, maxconnects);
    c |= curl_multi_setopt(cl->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, max_total);
    if (c != CURLM_OK)
        goto fail;
    return cl;
fail:
    curl_multi_cleanup(cl->multi);
    free(cl->idle);
    free(cl);
    return NULL;
}

void curl_loop_free(struct curl_loop *cl)
{
    if (!cl)
        return;
    /* cleanup may still call socket_cb with REMOVE: the loop is alive. */
    curl_multi_cleanup(cl->multi);
    evloop_timer_stop(cl->loop, &cl->timer);
    for (int i = 0; i < cl->nidle; i++)
        curl_easy_cleanup(cl->idle[i]);
    free(cl->idle);
    free(cl);
}
