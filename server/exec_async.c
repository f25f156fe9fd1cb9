/* exec_async: the non-blocking executor (see exec_async.h).
 *
 * Owns: one struct aorder per running order (freed when the order ends,
 * before on_done), holding a slot per step for its in-flight I/O and its
 * timeout timer. An order is an explicit state machine; every change goes
 * through ao_set_state(), which can log it.
 * Must never: block (no curl_easy_perform, PQexec, sleep), or free an
 * aorder whose I/O is still registered with the pool or curl. The one
 * exception is deliberate and confined to run_brew_on_loop(): the mixed
 * mode's blocking brew, the mistake that mode exists to show. */
#include "exec_async.h"

#include "clock.h"
#include "curl_loop.h"
#include "db.h"
#include "evloop.h"
#include "list.h"
#include "log.h"
#include "order.h"
#include "pgpool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum ao_state {
    AO_STARTING,  /* inserting the order's row, which gives its id; the
                     steps that need no id (the kitchen's) already run */
    AO_STEPS,     /* row written: steps run as their dependencies end */
    AO_FINISHING, /* every step ended: writing the outcome to the row */
    AO_ENDED      /* handed back through on_done */
};

static const char *const ao_state_names[] = {"starting", "steps", "finishing", "ended"};

struct aorder;

/* The I/O of one step: exactly one of http/q is in use, per the step's io. */
struct astep {
    struct aorder *ao;
    int index;
    int inflight;
    struct hreq http;
    struct pgq q;
    struct db_stmt stmt;
    struct ev_task on_loop; /* mixed mode: the blocking brew, deferred */
};

struct aorder {
    struct exec_async *ex;
    struct list_node link; /* on ex->orders while running */
    struct order *o;
    enum ao_state state;
    struct pgq q; /* the row's insert or finish */
    struct db_stmt stmt;
    /* wf_nsteps of them, not WF_MAX_STEPS: an astep is ~1.7 KB, and ten
     * thousand orders in flight each hold one aorder. */
    struct astep steps[];
};

struct exec_async {
    struct evloop *loop;
    struct pgpool *pool;
    struct curl_loop *http;
    struct exec_async_options opt;
    int inflight;
    struct list_node orders; /* running aorders */
    struct db_sync blocking_db; /* mixed mode only, opened on first use */
};

static void ao_set_state(struct aorder *ao, enum ao_state next)
{
    log_debug("order %lld (async): %s -> %s", (long long)ao->o->id, ao_state_names[ao->state],
              ao_state_names[next]);
    ao->state = next;
}

/* Hands the order back and frees the executor's state. */
static void ao_end(struct aorder *ao)
{
    struct order *o = ao->o;
    ao_set_state(ao, AO_ENDED);
    ao->ex->inflight--;
    list_remove(&ao->link);
    db_stmt_release(&ao->stmt);
    free(ao);
    o->exec = NULL;
    o->on_done(o, o->done_arg);
}

static void on_finished(struct pgq *q, int status, const PGresult *res, const char *err)
{
    (void)res;
    struct aorder *ao = container_of(q, struct aorder, q);
    if (status != PGQ_OK && ao->o->status == ORDER_DONE) {
        /* The row does not say how the order ended: it must not be
         * answered as a success. (A failed order keeps its first error.) */
        char msg[300];
        snprintf(msg, sizeof msg, "could not record the order: %s", err);
        ao->o->status = ORDER_RUNNING;
        order_fail(ao->o, OERR_DB, msg);
    }
    ao_end(ao);
}

/* Every step has ended (or the order failed and the others were
 * abandoned): write the outcome. */
static void ao_finish(struct aorder *ao)
{
    struct order *o = ao->o;
    order_end_steps(o, clock_mono_ns());
    ao_set_state(ao, AO_FINISHING);
    db_stmt_release(&ao->stmt);
    if (db_stmt_finish(&ao->stmt, o) != 0) {
        order_fail(o, OERR_INTERNAL, "out of memory");
        ao_end(ao);
        return;
    }
    ao->q = (struct pgq){.stmt = &ao->stmt, .cls = PGQ_SHORT, .cb = on_finished};
    pgpool_submit(ao->ex->pool, &ao->q);
}

static int steps_inflight(const struct aorder *ao)
{
    int n = 0;
    for (int i = 0; i < wf_nsteps; i++)
        n += ao->steps[i].inflight;
    return n;
}

/* Stops the I/O of every step still in flight (the order failed). */
static void abandon_steps(struct aorder *ao)
{
    struct exec_async *ex = ao->ex;
    for (int i = 0; i < wf_nsteps; i++) {
        struct astep *s = &ao->steps[i];
        /* A deferred blocking brew cannot be withdrawn: it sees the
         * failure when it runs and ends there. */
        if (!s->inflight || s->on_loop.fn)
            continue;
        if (wf_steps[i].io == IO_HTTP)
            curl_loop_abandon(ex->http, &s->http);
        else
            pgpool_abandon(ex->pool, &s->q);
        db_stmt_release(&s->stmt);
        s->inflight = 0;
    }
    order_abandon_steps(ao->o, clock_mono_ns());
}

static void launch_ready(struct aorder *ao);

/* The one place a step's outcome is taken in: err 0 = result holds the
 * step's result; else an order_error with msg. */
static void step_ended(struct astep *s, int err, const char *result, const char *msg)
{
    struct aorder *ao = s->ao;
    int64_t now = clock_mono_ns();
    s->inflight = 0;
    db_stmt_release(&s->stmt);
    if (err) {
        char full[240];
        snprintf(full, sizeof full, "%s: %s", wf_steps[s->index].name, msg);
        order_step_fail(ao->o, s->index, err, full, now);
        abandon_steps(ao);
    } else {
        order_step_done(ao->o, s->index, result, now);
        launch_ready(ao);
    }
    /* While the row is still being inserted, its callback finishes. */
    if (!steps_inflight(ao) && ao->state == AO_STEPS)
        ao_finish(ao);
}

/* The mixed mode's brew: PQexecParams on the loop thread. Nothing else on
 * the loop runs until it returns; that stall is what the mode shows. */
static void run_brew_on_loop(struct evloop *loop, struct ev_task *task)
{
    (void)loop;
    struct astep *s = container_of(task, struct astep, on_loop);
    struct aorder *ao = s->ao;
    struct exec_async *ex = ao->ex;
    char result[WF_RESULT_MAX], msg[260];
    int kind = OERR_DB;
    s->on_loop.fn = NULL;
    if (ao->o->status == ORDER_FAILED) { /* abandoned before it ran */
        s->inflight = 0;
        db_stmt_release(&s->stmt);
        if (!steps_inflight(ao) && ao->state == AO_STEPS)
            ao_finish(ao);
        return;
    }
    long limit_ms = wf_step_ms(&wf_steps[s->index], ao->o->scale) + ex->opt.step_slack_ms;
    PGresult *r = NULL;
    if (db_sync_ensure(&ex->blocking_db, msg, sizeof msg) == 0)
        r = db_sync_run(&ex->blocking_db, &s->stmt, limit_ms, &kind, msg, sizeof msg);
    if (r && db_result_text(r, result, sizeof result) == 0)
        step_ended(s, 0, result, NULL);
    else
        step_ended(s, r ? OERR_DB : kind, NULL, r ? "brew returned no row" : msg);
    PQclear(r);
}

static void on_http_done(struct hreq *r, CURLcode code)
{
    struct astep *s = container_of(r, struct astep, http);
    char result[WF_RESULT_MAX], msg[200];
    int err = kc_result(r->easy, code, &r->resp, result, sizeof result, msg, sizeof msg);
    step_ended(s, err, result, msg);
}

static void on_sql_done(struct pgq *q, int status, const PGresult *res, const char *errmsg)
{
    struct astep *s = container_of(q, struct astep, q);
    char result[WF_RESULT_MAX];
    order_step_queued(s->ao->o, s->index, q->waited_ns);
    if (status == PGQ_OK && db_result_text(res, result, sizeof result) == 0)
        step_ended(s, 0, result, NULL);
    else if (status == PGQ_TIMEOUT)
        step_ended(s, OERR_TIMEOUT, NULL, errmsg);
    else
        step_ended(s, OERR_DB, NULL, status == PGQ_OK ? "brew returned no row" : errmsg);
}

/* Starts the I/O of one step. Outcomes arrive through step_ended on a
 * later pass, failures to start included. */
static void start_step(struct aorder *ao, int i)
{
    struct exec_async *ex = ao->ex;
    struct astep *s = &ao->steps[i];
    const struct step_def *d = &wf_steps[i];
    int64_t limit_ms = wf_step_ms(d, ao->o->scale) + ex->opt.step_slack_ms;
    order_step_start(ao->o, i, clock_mono_ns());
    s->inflight = 1;
    if (d->io == IO_HTTP) {
        char url[512];
        s->http.cb = on_http_done;
        /* An URL that does not fit fails the transfer at its start. */
        if (wf_http_url(d, ex->opt.kitchen_url, ao->o->scale, url, sizeof url) != 0)
            url[0] = '\0';
        kc_set_trace(&s->http.resp, ao->o->traceparent);
        curl_loop_get(ex->http, &s->http, url, (long)limit_ms);
        return;
    }
    s->q = (struct pgq){.stmt = &s->stmt, .cls = PGQ_LONG, .cb = on_sql_done, .timeout_ms = limit_ms};
    if (db_stmt_brew(&s->stmt, ao->o, i) != 0) {
        /* Cannot happen with the kitchen's short results; let the
         * database reject it so that it still ends on a later pass. */
        s->stmt = (struct db_stmt){.what = "brew", .sql = "SELECT brew_coffee(NULL, NULL, NULL)"};
    }
    if (wf_modes[ao->o->mode].sql_blocks_loop) {
        s->on_loop.fn = run_brew_on_loop;
        evloop_defer(ex->loop, &s->on_loop);
        return;
    }
    ao->o->steps[i].state = STEP_WAITING;
    pgpool_submit(ex->pool, &s->q);
}

/* Whether a blocking brew (mixed mode) is due on this pass. */
static int blocking_brew_due(const struct aorder *ao)
{
    for (int i = 0; i < wf_nsteps; i++)
        if (ao->steps[i].on_loop.fn)
            return 1;
    return 0;
}

static void launch_ready(struct aorder *ao)
{
    unsigned ready = order_ready(ao->o);
    for (int i = 0; i < wf_nsteps; i++) {
        if (!(ready & (1u << i)))
            continue;
        /* The brew is called with the order's id: it waits for the row. */
        if (wf_steps[i].io == IO_SQL && ao->state != AO_STEPS)
            continue;
        /* Mixed mode: the loop is about to sit inside the blocking brew, so
         * the steps after it in the table (the toast) start once it
         * returns, as in the seed, where toast_bread() is only awaited
         * after brew_coffee() came back. */
        if (blocking_brew_due(ao))
            break;
        start_step(ao, i);
    }
}

static void on_inserted(struct pgq *q, int status, const PGresult *res, const char *err)
{
    struct aorder *ao = container_of(q, struct aorder, q);
    struct order *o = ao->o;
    if (status != PGQ_OK || db_result_id(res, &o->id) != 0) {
        /* No row, so nothing to finish: stop the steps and answer. */
        char msg[300];
        snprintf(msg, sizeof msg, "could not record the order: %s", status == PGQ_OK ? "no id returned" : err);
        order_fail(o, OERR_DB, msg);
        abandon_steps(ao);
        order_end_steps(o, clock_mono_ns());
        ao_end(ao);
        return;
    }
    ao_set_state(ao, AO_STEPS);
    launch_ready(ao);
    if (!steps_inflight(ao))
        ao_finish(ao); /* a step failed while the row was being written */
}

void exec_async_submit(struct exec_async *ex, struct order *o)
{
    struct aorder *ao = calloc(1, sizeof *ao + (size_t)wf_nsteps * sizeof ao->steps[0]);
    if (!ao) {
        order_fail(o, OERR_INTERNAL, "out of memory");
        order_end_later(ex->loop, o);
        return;
    }
    ex->inflight++;
    list_push_back(&ex->orders, &ao->link);
    ao->ex = ex;
    ao->o = o;
    o->exec = ao;
    for (int i = 0; i < wf_nsteps; i++) {
        ao->steps[i].ao = ao;
        ao->steps[i].index = i;
    }
    ao->state = AO_STARTING;
    db_stmt_insert_order(&ao->stmt, o);
    ao->q = (struct pgq){.stmt = &ao->stmt, .cls = PGQ_SHORT, .cb = on_inserted};
    pgpool_submit(ex->pool, &ao->q);
    /* The kitchen does not need the row: start now, overlapping it. */
    launch_ready(ao);
}

int exec_async_inflight(const struct exec_async *ex) { return ex->inflight; }

void exec_async_cancel_all(struct exec_async *ex)
{
    struct list_node *n = ex->orders.next, *next;
    for (; n != &ex->orders; n = next) {
        next = n->next; /* ao_finish may end (and unlink) ao */
        struct aorder *ao = container_of(n, struct aorder, link);
        if (ao->state != AO_STARTING && ao->state != AO_STEPS)
            continue; /* already writing its outcome */
        order_fail(ao->o, OERR_SHUTDOWN, "cancelled: the server is shutting down");
        abandon_steps(ao);
        /* While the row is still being inserted, on_inserted finishes it. */
        if (ao->state == AO_STEPS && !steps_inflight(ao))
            ao_finish(ao);
    }
}

struct exec_async *exec_async_new(struct evloop *loop, struct pgpool *pool, struct curl_loop *http,
                                  const struct exec_async_options *opt)
{
    struct exec_async *ex = calloc(1, sizeof *ex);
    if (!ex)
        return NULL;
    ex->loop = loop;
    ex->pool = pool;
    ex->http = http;
    ex->opt = *opt;
    list_init(&ex->orders);
    ex->blocking_db.config = opt->db;
    return ex;
}

void exec_async_free(struct exec_async *ex)
{
    if (!ex)
        return;
    db_sync_close(&ex->blocking_db);
    free(ex);
}
