/* openloop: intended-time load with curl multi (see openloop.h).
 * Owns: one easy handle and body buffer per slot, made on demand up to
 * max_inflight and freed at the end of openloop_run; idle slots are reused
 * (keep-alive). Never retries, never skips an intended request: a request
 * that cannot go at its time goes as soon as it can and is charged from
 * its intended time. */
#include "openloop.h"

#include "clock.h"
#include "params.h"
#include "xfer.h"

#include <curl/curl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BODY 65536

void schedule_init(struct schedule *s, enum arrivals kind, double rate, uint64_t seed)
{
    *s = (struct schedule){.kind = kind, .rate = rate, .rng = seed ? seed : 0x9e3779b97f4a7c15ULL};
}

/* xorshift64*: a uniform double in (0, 1]. */
static double uniform01(struct schedule *s)
{
    s->rng ^= s->rng >> 12;
    s->rng ^= s->rng << 25;
    s->rng ^= s->rng >> 27;
    uint64_t r = s->rng * 0x2545F4914F6CDD1DULL;
    return ((double)(r >> 11) + 1.0) / 9007199254740992.0; /* 2^53 */
}

int64_t schedule_next(struct schedule *s)
{
    double t;
    if (s->kind == ARRIVE_UNIFORM) {
        t = (double)s->i / s->rate;
    } else {
        t = s->next_s;
        s->next_s += -log(uniform01(s)) / s->rate;
    }
    s->i++;
    return (int64_t)llround(t * 1e9);
}

uint64_t openloop_latency_us(int64_t intended_ns, int64_t done_ns)
{
    return done_ns > intended_ns ? (uint64_t)((done_ns - intended_ns + 500) / 1000) : 0;
}

int openloop_parse_rates(const char *spec, double max_rate, double rates[OPENLOOP_MAX_RATES], char *err, size_t errlen)
{
    char part[3][32];
    int n = 0;
    for (const char *p = spec;; n++) {
        size_t len = strcspn(p, ":");
        if (n == 3 || len == 0 || len >= sizeof part[0]) {
            snprintf(err, errlen, "--rate: '%.40s' is not R or a:b:step (numbers per second)", spec);
            return -1;
        }
        memcpy(part[n], p, len);
        part[n][len] = '\0';
        p += len;
        if (!*p++) {
            n++;
            break;
        }
    }
    double v[3];
    for (int i = 0; i < n; i++) {
        if (parse_double(part[i], &v[i]) != 0 || !(v[i] > 0) || v[i] > max_rate) {
            snprintf(err, errlen, "--rate: '%s' is not a rate from above 0 to %g per second", part[i], max_rate);
            return -1;
        }
    }
    if (n == 1) {
        rates[0] = v[0];
        return 1;
    }
    if (n != 3 || v[1] < v[0]) {
        snprintf(err, errlen, "--rate: a sweep is a:b:step with a <= b, got '%.40s'", spec);
        return -1;
    }
    int k = 0;
    for (double r = v[0]; r <= v[1] * (1 + 1e-9); r = v[0] + k * v[2]) {
        if (k == OPENLOOP_MAX_RATES) {
            snprintf(err, errlen, "--rate: a sweep of more than %d rates; use a bigger step", OPENLOOP_MAX_RATES);
            return -1;
        }
        rates[k++] = r;
    }
    return k;
}

/* ---- the run ------------------------------------------------------------- */

struct slot {
    CURL *easy;
    int busy;
    int64_t intended_ns, sent_ns; /* absolute, monotonic */
    struct xfer_body body;
};

static int slot_make(struct slot *s, const struct openloop_options *opt)
{
    s->body.max = MAX_BODY;
    s->easy = xfer_easy(opt->url, opt->timeout_ms, "coffee-client/1 (open loop)", &s->body, s);
    return s->easy ? 0 : -1;
}

/* Reads one ended transfer into res. */
static void finish(struct openloop_result *res, struct slot *s, CURLcode code, int64_t now)
{
    long status = 0;
    curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
    json_t *j = code == CURLE_OK && status == 200 ? json_loadb(s->body.buf, s->body.len, 0, NULL) : NULL;
    const char *st = json_string_value(json_object_get(j, "status"));
    json_t *el = json_object_get(j, "elapsed_ms");
    if (st && !strcmp(st, "done") && json_is_number(el)) {
        res->ok++;
        hist_record(&res->latency, openloop_latency_us(s->intended_ns, now));
        hist_record(&res->uncorrected, openloop_latency_us(s->sent_ns, now));
        double e = json_number_value(el);
        hist_record(&res->server, e > 0 ? (uint64_t)llround(e * 1000) : 0);
    } else {
        res->failed++;
        if (!res->first_error[0]) {
            if (code != CURLE_OK)
                snprintf(res->first_error, sizeof res->first_error, "%s", curl_easy_strerror(code));
            else
                snprintf(res->first_error, sizeof res->first_error, "HTTP %ld: %.120s", status,
                         xfer_body_text(&s->body));
        }
    }
    json_decref(j);
    s->busy = 0;
}

/* Starts the request intended at intended_ns on a free slot, making one
 * if needed. Returns 0, 1 when every slot is busy, or -1. */
static int send_one(CURLM *m, struct slot *slots, int *nslots, const struct openloop_options *opt, int64_t intended_ns,
                    int64_t now, struct openloop_result *res)
{
    struct slot *s = NULL;
    for (int i = 0; i < *nslots && !s; i++)
        if (!slots[i].busy)
            s = &slots[i];
    if (!s) {
        if (*nslots == opt->max_inflight)
            return 1;
        s = &slots[(*nslots)++];
        if (slot_make(s, opt) != 0)
            return -1;
    }
    s->busy = 1;
    xfer_body_reset(&s->body);
    s->intended_ns = intended_ns;
    s->sent_ns = now;
    hist_record(&res->send_lag, openloop_latency_us(intended_ns, now));
    res->sent++;
    return curl_multi_add_handle(m, s->easy) == CURLM_OK ? 0 : -1;
}

int openloop_run(const struct openloop_options *opt, struct openloop_result *res, char *err, size_t errlen)
{
    memset(res, 0, sizeof *res);
    hist_init(&res->latency);
    hist_init(&res->uncorrected);
    hist_init(&res->server);
    hist_init(&res->send_lag);
    struct slot *slots = calloc((size_t)opt->max_inflight, sizeof *slots);
    CURLM *m = curl_multi_init();
    int nslots = 0, rc = -1;
    if (!slots || !m) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    struct schedule sch;
    schedule_init(&sch, opt->kind, opt->rate, opt->seed);
    const int64_t start = clock_mono_ns(), end = start + (int64_t)(opt->duration_s * 1e9);
    int64_t next = start + schedule_next(&sch);
    int running = 0;
    for (;;) {
        int64_t now = clock_mono_ns();
        /* Every request whose time has come goes now (late ones too). */
        while (next < end && next <= now) {
            int sent = send_one(m, slots, &nslots, opt, next, now, res);
            if (sent < 0) {
                snprintf(err, errlen, "cannot start a request (out of memory or curl)");
                goto out;
            }
            if (sent > 0)
                break; /* all busy: it goes when one frees, charged from its time */
            next = start + schedule_next(&sch);
        }
        if (curl_multi_perform(m, &running) != CURLM_OK) {
            snprintf(err, errlen, "curl_multi_perform failed");
            goto out;
        }
        CURLMsg *msg;
        int left;
        now = clock_mono_ns();
        while ((msg = curl_multi_info_read(m, &left)) != NULL) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            struct slot *s;
            CURL *e = msg->easy_handle;
            CURLcode code = msg->data.result;
            curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&s);
            curl_multi_remove_handle(m, e);
            finish(res, s, code, now);
        }
        if (next >= end && running == 0)
            break;
        long wait_ms = 100;
        if (next < end) {
            int64_t until = (next - clock_mono_ns()) / 1000000;
            wait_ms = until < 0 ? 0 : until < wait_ms ? (long)until : wait_ms;
        }
        if (curl_multi_poll(m, NULL, 0, (int)wait_ms, NULL) != CURLM_OK) {
            snprintf(err, errlen, "curl_multi_poll failed");
            goto out;
        }
    }
    res->wall_ms = (double)(clock_mono_ns() - start) / 1e6;
    rc = 0;
out:
    for (int i = 0; i < nslots; i++) {
        if (slots[i].busy)
            curl_multi_remove_handle(m, slots[i].easy);
        curl_easy_cleanup(slots[i].easy);
        xfer_body_free(&slots[i].body);
    }
    free(slots);
    curl_multi_cleanup(m);
    return rc;
}
