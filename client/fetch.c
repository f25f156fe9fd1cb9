/* fetch: GETs kept in flight with curl_multi_perform/curl_multi_poll (see
 * fetch.h). Owns one easy handle and one body buffer per slot, created and
 * freed in fetch_run only; a slot is reused for the next request as soon as
 * its transfer is drained, so connections stay warm when the server keeps
 * them. Never retries: a load client must report what happened. */
#include "fetch.h"

#include "xfer.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One request in flight. */
struct slot {
    CURL *easy;
    int added;    /* in the multi handle */
    size_t index; /* which request it is running */
    struct xfer_body body;
};

/* Makes the slot's easy handle. Returns 0 or -1. */
static int slot_init(struct slot *s, const char *url, const struct fetch_options *opt)
{
    s->body.max = opt->max_body;
    s->easy = xfer_easy(url, opt->timeout_ms, "coffee-client/1", &s->body, s);
    return s->easy ? 0 : -1;
}

/* Starts request index on an idle slot. Returns 0 or -1. */
static int slot_start(CURLM *multi, struct slot *s, size_t index)
{
    s->index = index;
    xfer_body_reset(&s->body);
    if (curl_multi_add_handle(multi, s->easy) != CURLM_OK)
        return -1;
    s->added = 1;
    return 0;
}

/* Takes in one finished transfer: describes it to the callback. */
static int slot_finish(CURLM *multi, struct slot *s, CURLcode code, fetch_cb cb, void *arg, long timeout_ms)
{
    struct fetch_result r = {.index = s->index, .code = code, .timeout_ms = timeout_ms};
    long os_errno = 0;
    curl_off_t total_us = 0;
    curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &r.status);
    curl_easy_getinfo(s->easy, CURLINFO_OS_ERRNO, &os_errno);
    curl_easy_getinfo(s->easy, CURLINFO_TOTAL_TIME_T, &total_us);
    curl_multi_remove_handle(multi, s->easy);
    s->added = 0;
    if (s->body.oom)
        return -1;
    r.os_errno = (int)os_errno;
    r.too_large = s->body.too_large;
    r.body = xfer_body_text(&s->body);
    r.len = s->body.len;
    r.latency_ms = (double)total_us / 1e3;
    if (code != CURLE_OK)
        r.status = 0; /* a partial answer is no answer */
    return cb(&r, arg);
}

int fetch_run(const char *url, size_t n, const struct fetch_options *opt, fetch_cb cb, void *arg, char *err,
              size_t errlen)
{
    size_t nslots = opt->concurrency > 0 ? (size_t)opt->concurrency : 1;
    if (nslots > n)
        nslots = n;
    if (n == 0)
        return 0;
    int rc = -1;
    CURLM *multi = curl_multi_init();
    struct slot *slots = calloc(nslots, sizeof *slots);
    if (!multi || !slots) {
        snprintf(err, errlen, "out of memory");
        goto cleanup;
    }
    for (size_t i = 0; i < nslots; i++) {
        if (slot_init(&slots[i], url, opt) != 0) {
            snprintf(err, errlen, "cannot set up a curl handle for %s", url);
            goto cleanup;
        }
    }
    size_t next = 0, active = 0;
    for (; next < nslots; next++, active++) {
        if (slot_start(multi, &slots[next], next) != 0) {
            snprintf(err, errlen, "cannot start a transfer");
            goto cleanup;
        }
    }
    while (active > 0) {
        int running = 0;
        CURLMcode mc = curl_multi_perform(multi, &running);
        if (mc != CURLM_OK) {
            snprintf(err, errlen, "curl: %s", curl_multi_strerror(mc));
            goto cleanup;
        }
        CURLMsg *msg;
        int queued;
        while ((msg = curl_multi_info_read(multi, &queued)) != NULL) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            struct slot *s = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
            /* msg is invalid once the handle is removed: copy first. */
            CURLcode code = msg->data.result;
            if (slot_finish(multi, s, code, cb, arg, opt->timeout_ms) != 0) {
                snprintf(err, errlen, "%s", s->body.oom ? "out of memory" : "stopped by the caller");
                goto cleanup;
            }
            active--;
            if (next < n) {
                if (slot_start(multi, s, next++) != 0) {
                    snprintf(err, errlen, "cannot start a transfer");
                    goto cleanup;
                }
                active++;
            }
        }
        if (active > 0 && (mc = curl_multi_poll(multi, NULL, 0, 1000, NULL)) != CURLM_OK) {
            snprintf(err, errlen, "curl: %s", curl_multi_strerror(mc));
            goto cleanup;
        }
    }
    rc = 0;

cleanup:
    for (size_t i = 0; slots && i < nslots; i++) {
        if (slots[i].added)
            curl_multi_remove_handle(multi, slots[i].easy);
        if (slots[i].easy)
            curl_easy_cleanup(slots[i].easy);
        xfer_body_free(&slots[i].body);
    }
    free(slots);
    if (multi)
        curl_multi_cleanup(multi);
    return rc;
}

const char *fetch_strerror(const struct fetch_result *r, char *buf, size_t len)
{
    if (r->too_large)
        snprintf(buf, len, "response too large");
    else if (r->code == CURLE_OPERATION_TIMEDOUT)
        snprintf(buf, len, "timed out after %ld ms", r->timeout_ms);
    else if (r->code == CURLE_GOT_NOTHING)
        snprintf(buf, len, "empty reply from server");
    else if (r->os_errno != 0)
        snprintf(buf, len, "%s", strerror(r->os_errno));
    else
        snprintf(buf, len, "%s", curl_easy_strerror(r->code));
    return buf;
}
