/* rush: rush hour as a stream of Server-Sent Events (see rush.h).
 *
 * Owns: one struct rush per stream, with its orders, its output buffer and
 * a sampling timer. Two holders keep it alive: the MHD response (until
 * MHD's free callback) and the orders still running; whichever lets go
 * last frees it (rush_maybe_free), so a client that hangs up frees the
 * stream's buffer at once and the orders later.
 * Must never: block, resume a connection that is not suspended, write to
 * the stream after MHD let go of it, or stop an order it placed. */
#include "rush.h"

#include "check.h"
#include "clock.h"
#include "cost.h"
#include "evloop.h"
#include "executor.h"
#include "http_front.h"
#include "httpd.h"
#include "list.h"
#include "log.h"
#include "metrics.h"
#include "order.h"
#include "procstat.h"
#include "recipe.h"
#include "recipes_route.h"
#include "report.h"
#include "stats.h"
#include "text.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TICK_NS (250 * NS_PER_MS) /* gauge sampling */
#define KEEPALIVE_TICKS 4         /* a comment line every second of silence */
#define BLOCK_SIZE 4096

struct rush;

/* The stream's life. Made, then streaming while MHD holds the response
 * (suspended by us whenever nothing is left to send), finished once the
 * summaries and the end are in the buffer; closed when MHD let go of it,
 * its orders running on to their ends, or dropped if it let go before
 * any order was submitted. */
enum rush_state {
    RUSH_MADE,      /* orders made, not submitted; the response being queued */
    RUSH_STREAMING, /* orders submitted; MHD reads the buffer */
    RUSH_SUSPENDED, /* nothing to send: the connection suspended by us until wake() */
    RUSH_FINISHED,  /* every order ended: summaries and end in the buffer */
    RUSH_CLOSED,    /* MHD let go of the stream; freed once every order ended */
    RUSH_DROPPED    /* MHD let go before the orders were submitted; freed now */
};

static const char *const rush_state_names[] = {"made", "streaming", "suspended", "finished", "closed", "dropped"};

/* One placed order. */
struct rush_slot {
    struct rush *r;
    struct order *o; /* owned until it ended */
    int seq;         /* arrival order */
    int k;           /* index into the rush's modes */
};

/* What one mode's orders did. */
struct rush_mode {
    int ended, ok;
    double *elapsed_ms; /* [ended], server-measured */
    double queued_sum_ms, queued_max_ms;
    int64_t last_end_ns;
    int db_connections_max; /* its executor's, sampled */
    struct mode_cost cost;  /* its executor's threads, switches, CPU (cost.h) */
};

struct rush {
    struct front *f;
    struct MHD_Connection *conn;
    struct httpd *httpd;
    struct evloop *loop;
    struct rush_params p;
    char recipe[RECIPE_NAME_MAX + 1]; /* p.recipe's copy: the request's arguments go first */
    int total, ended;
    enum rush_state state;
    int64_t start_ns;
    int threads_before, threads_max;
    int ticks_quiet;
    struct ev_timer tick;
    struct rush_slot *slots; /* [total] */
    struct rush_mode modes[WF_MAX_MODES];
    struct text_buf out; /* bytes not yet handed to MHD: out.p[off..out.len); out.oom ends the stream */
    size_t off;
};

static int rush_change_ok(enum rush_state from, enum rush_state to)
{
    switch (to) {
    case RUSH_STREAMING:
        return from == RUSH_MADE || from == RUSH_SUSPENDED;
    case RUSH_SUSPENDED:
    case RUSH_FINISHED:
        return from == RUSH_STREAMING;
    case RUSH_CLOSED:
        return from == RUSH_STREAMING || from == RUSH_SUSPENDED || from == RUSH_FINISHED;
    case RUSH_DROPPED:
        return from == RUSH_MADE;
    default:
        return 0;
    }
}

static void rush_set_state(struct rush *r, enum rush_state next)
{
    CHECK(rush_change_ok(r->state, next));
    log_debug("rush: %s -> %s", rush_state_names[r->state], rush_state_names[next]);
    r->state = next;
}

/* Whether MHD holds the stream (a client may read it). */
static int stream_open(const struct rush *r)
{
    return r->state < RUSH_CLOSED;
}

/* ---- output --------------------------------------------------------------- */

/* Appends s to the stream while a client reads it. */
static void out_text(struct rush *r, const char *s)
{
    if (stream_open(r))
        text_buf_put(&r->out, "%s", s);
}

/* One event whose data is j (a new reference, taken). */
static void out_event(struct rush *r, const char *name, int seq, json_t *j)
{
    char *text = report_dumps(j);
    json_decref(j);
    if (!text) {
        r->out.oom = 1;
        return;
    }
    if (!stream_open(r)) { /* the client is gone: nothing to write */
        free(text);
        return;
    }
    if (seq >= 0)
        text_buf_put(&r->out, "id: %d\n", seq);
    text_buf_put(&r->out, "event: %s\ndata: %s\n\n", name, text);
    free(text);
}

/* Lets MHD send what the buffer holds (or see the end). */
static void wake(struct rush *r)
{
    if (r->state == RUSH_SUSPENDED) {
        rush_set_state(r, RUSH_STREAMING);
        httpd_resume(r->httpd, r->conn);
    }
}

/* ---- gauges and the summary ---------------------------------------------- */

static void sample(struct rush *r)
{
    for (int k = 0; k < r->p.nmodes; k++) {
        const struct executor *x = front_executor(r->f, r->p.modes[k]);
        struct executor_stats es;
        x->ops->stats(x->ex, &es);
        if (es.db_connections > r->modes[k].db_connections_max)
            r->modes[k].db_connections_max = es.db_connections;
        cost_sample(&r->modes[k].cost, x);
    }
    int t = procstat_threads();
    if (t > r->threads_max)
        r->threads_max = t;
}

static double round3(double v)
{
    return round(v * 1000) / 1000;
}

/* Returns new: the summary of the k-th mode. */
static json_t *summary_json(struct rush *r, int k)
{
    struct rush_mode *m = &r->modes[k];
    int mode = r->p.modes[k];
    const struct executor_ops *x = front_executor(r->f, mode)->ops;
    stats_sort(m->elapsed_ms, (size_t)m->ended);
    double wall_ms = report_ms(m->last_end_ns - r->start_ns);
    json_t *j = json_object();
    if (!j)
        return NULL;
    int bad = 0;
    bad |= json_object_set_new(j, "mode", json_string(wf_modes[mode].name));
    bad |= json_object_set_new(j, "recipe", json_string(r->recipe));
    bad |= json_object_set_new(j, "customers", json_integer(r->p.customers));
    bad |= json_object_set_new(j, "ok", json_integer(m->ok));
    bad |= json_object_set_new(j, "failed", json_integer(m->ended - m->ok));
    bad |= json_object_set_new(j, "scale", json_real(r->p.scale));
    bad |= json_object_set_new(j, "wall_ms", json_real(wall_ms));
    bad |= json_object_set_new(j, "orders_per_s", json_real(wall_ms > 0 ? round3(m->ok / (wall_ms / 1000)) : 0));
    bad |=
        json_object_set_new(j, "p50_ms", json_real(round3(stats_percentile(m->elapsed_ms, (size_t)m->ended, 50, 0))));
    bad |=
        json_object_set_new(j, "p99_ms", json_real(round3(stats_percentile(m->elapsed_ms, (size_t)m->ended, 99, 0))));
    bad |= json_object_set_new(j, "max_ms", json_real(round3(m->ended ? m->elapsed_ms[m->ended - 1] : 0)));
    bad |= json_object_set_new(j, "queued_mean_ms", json_real(round3(m->ended ? m->queued_sum_ms / m->ended : 0)));
    bad |= json_object_set_new(j, "queued_max_ms", json_real(round3(m->queued_max_ms)));
    /* Every order of the rush was placed at the same instant. */
    bad |= json_object_set_new(j, "peak_in_flight", json_integer(r->p.customers));
    bad |= json_object_set_new(j, "threads_before", json_integer(r->threads_before));
    bad |= json_object_set_new(j, "threads_during", json_integer(r->threads_max));
    /* A blocking worker holds its own PGconn; async orders share the pool. */
    bad |= json_object_set_new(j, "db_connections_used", json_integer(m->db_connections_max));
    bad |= json_object_set_new(j, "db_connections_kind", json_string(x->db_connections_kind));
    bad |= cost_json(&m->cost, front_executor(r->f, mode), j);
    if (bad) {
        json_decref(j);
        return NULL;
    }
    return j;
}

static void finish(struct rush *r)
{
    sample(r);
    for (int k = 0; k < r->p.nmodes; k++)
        out_event(r, "summary", -1, summary_json(r, k));
    out_text(r, "event: end\ndata: {}\n\n");
    rush_set_state(r, RUSH_FINISHED);
}

/* ---- lifetime ------------------------------------------------------------- */

static void rush_free(struct rush *r)
{
    evloop_timer_stop(r->loop, &r->tick);
    for (int i = 0; i < r->total; i++)
        order_free(r->slots[i].o); /* only orders never submitted are left */
    for (int k = 0; k < r->p.nmodes; k++)
        free(r->modes[k].elapsed_ms);
    free(r->slots);
    free(text_buf_finish(&r->out));
    struct front *f = r->f;
    free(r);
    front_release(f);
}

static void rush_maybe_free(struct rush *r)
{
    if (r->state == RUSH_DROPPED || (r->state == RUSH_CLOSED && r->ended == r->total))
        rush_free(r);
}

/* MHD's free callback of the response: MHD is done with the stream. */
static void on_stream_freed(void *cls)
{
    struct rush *r = cls;
    rush_set_state(r, r->state == RUSH_MADE ? RUSH_DROPPED : RUSH_CLOSED);
    free(text_buf_finish(&r->out));
    r->off = 0;
    evloop_timer_stop(r->loop, &r->tick);
    if (r->ended < r->total && r->state == RUSH_CLOSED)
        log_info("rush stream closed with %d of %d orders running; they finish and keep their rows",
                 r->total - r->ended, r->total);
    rush_maybe_free(r);
}

/* MHD's content reader: what the buffer holds, else suspend until more. */
static ssize_t on_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct rush *r = cls;
    if (r->out.oom)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    if (r->off < r->out.len) {
        size_t n = r->out.len - r->off < max ? r->out.len - r->off : max;
        memcpy(buf, r->out.p + r->off, n);
        r->off += n;
        if (r->off == r->out.len)
            r->off = r->out.len = 0;
        r->ticks_quiet = 0;
        return (ssize_t)n;
    }
    if (r->state == RUSH_FINISHED)
        return MHD_CONTENT_READER_END_OF_STREAM;
    /* Allowed from the content reader; resumed by wake(). */
    MHD_suspend_connection(r->conn);
    rush_set_state(r, RUSH_SUSPENDED);
    return 0;
}

static void on_tick(struct evloop *loop, struct ev_timer *t)
{
    struct rush *r = container_of(t, struct rush, tick);
    sample(r);
    if (++r->ticks_quiet >= KEEPALIVE_TICKS && r->out.len == 0) {
        out_text(r, ": keep-alive\n\n");
        r->ticks_quiet = 0;
        wake(r);
    }
    if (evloop_timer_start(loop, t, TICK_NS) != 0)
        log_warn("rush: no memory for the sampling timer; the summary's peaks are sampled at order ends only");
}

static void on_order_done(struct order *o, void *arg)
{
    struct rush_slot *s = arg;
    struct rush *r = s->r;
    front_order_ended(r->f, o);
    struct rush_mode *m = &r->modes[s->k];
    double q = report_ms(o->queued_ns);
    m->elapsed_ms[m->ended++] = report_ms(o->steps_end_ns - o->arrived_ns);
    m->ok += o->status == ORDER_DONE;
    m->queued_sum_ms += q;
    if (q > m->queued_max_ms)
        m->queued_max_ms = q;
    int64_t now = clock_mono_ns();
    if (now > m->last_end_ns)
        m->last_end_ns = now;
    sample(r);
    if (stream_open(r))
        out_event(r, "order", s->seq, report_order(o));
    order_free(o);
    s->o = NULL;
    if (stream_open(r)) {
        wake(r);
        if (++r->ended == r->total)
            finish(r);
    } else {
        r->ended++;
    }
    rush_maybe_free(r);
}

/* ---- the request ---------------------------------------------------------- */

/* Returns new, with every order made (not submitted), or NULL. */
/* recipe: borrowed, outlives the rush's orders (front_submit holds it). */
static struct rush *rush_new(struct front *f, struct MHD_Connection *c, const struct rush_params *p,
                             const struct recipe *recipe)
{
    struct rush *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->f = f;
    r->conn = c;
    r->httpd = front_httpd(f);
    r->loop = front_loop(f);
    r->p = *p;
    snprintf(r->recipe, sizeof r->recipe, "%s", recipe->name);
    r->p.recipe = r->recipe;
    r->start_ns = clock_mono_ns(); /* before the first order arrives */
    r->total = p->customers * p->nmodes;
    r->tick.cb = on_tick;
    r->state = RUSH_MADE;
    front_hold(f);
    r->slots = calloc((size_t)r->total, sizeof *r->slots);
    if (!r->slots)
        goto fail;
    for (int k = 0; k < p->nmodes; k++)
        if (!(r->modes[k].elapsed_ms = calloc((size_t)p->customers, sizeof(double))))
            goto fail;
    /* Interleaved (a, b, a, b, ...): no mode is ahead in the queues. */
    for (int i = 0; i < r->total; i++) {
        struct rush_slot *s = &r->slots[i];
        *s = (struct rush_slot){.r = r, .seq = i, .k = i % p->nmodes};
        if (!(s->o = order_new(p->modes[s->k], p->scale, on_order_done, s)))
            goto fail;
        s->o->recipe = recipe;
    }
    return r;
fail:
    rush_free(r);
    return NULL;
}

static json_t *start_json(struct rush *r)
{
    struct metrics_gauges g;
    front_gauges(r->f, &g);
    json_t *modes = json_array();
    for (int k = 0; modes && k < r->p.nmodes; k++) {
        if (json_array_append_new(modes, json_string(wf_modes[r->p.modes[k]].name)) != 0) {
            json_decref(modes);
            modes = NULL;
        }
    }
    return json_pack("{s:o, s:s, s:i, s:f, s:i, s:i, s:i}", "modes", modes, "recipe", r->recipe, "customers",
                     r->p.customers, "scale", r->p.scale, "workers", g.workers, "db_pool", g.pool_size,
                     "threads_before", r->threads_before);
}

enum MHD_Result rush_route(struct front *f, struct MHD_Connection *c, const struct query_arg *args, size_t nargs)
{
    struct rush_params p;
    char err[200];
    if (params_rush(args, nargs, front_default_scale(f), &p, err, sizeof err) != 0)
        return httpd_respond_error(c, MHD_HTTP_BAD_REQUEST, err);
    const struct recipe *recipe = front_recipe(f, p.recipe);
    if (!recipe)
        return recipes_respond_unknown(c, p.recipe);
    int admitted = front_admit(f, p.modes, p.nmodes, p.customers, err, sizeof err);
    if (admitted != FRONT_ADMITTED)
        return httpd_respond_error(c, front_admission_status(admitted), err);
    struct rush *r = rush_new(f, c, &p, recipe);
    if (!r)
        return httpd_respond_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
    r->threads_before = r->threads_max = procstat_threads();
    out_event(r, "start", -1, start_json(r));
    /* From here on the response owns r's stream half: destroying it (on a
     * failure below too) calls on_stream_freed. */
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, BLOCK_SIZE, on_read, r, on_stream_freed);
    if (!resp) {
        rush_free(r);
        return httpd_respond_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
    }
    enum MHD_Result ok = MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    if (ok == MHD_YES)
        ok = MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (ok == MHD_YES)
        ok = MHD_queue_response(c, MHD_HTTP_OK, resp);
    if (ok == MHD_YES) {
        rush_set_state(r, RUSH_STREAMING);
        for (int k = 0; k < p.nmodes; k++)
            cost_begin(&r->modes[k].cost, front_executor(f, p.modes[k]));
        for (int i = 0; i < r->total; i++)
            front_submit(f, r->slots[i].o);
        if (evloop_timer_start(r->loop, &r->tick, TICK_NS) != 0)
            log_warn("rush: no memory for the sampling timer; no keep-alive comments");
    }
    MHD_destroy_response(resp); /* MHD keeps its own reference while queued */
    return ok;
}
