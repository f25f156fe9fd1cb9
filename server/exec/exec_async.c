/* exec_async: the non-blocking executor (see exec_async.h).
 *
 * Owns: one struct aorder per running order (freed when the order ends,
 * before on_done), holding a slot per step for its in-flight I/O and its
 * timeout timer. An order is an explicit state machine; every change goes
 * through ao_set_state(), which can log it.
 * Its I/O goes through the two services it was handed (ex->db,
 * ex->kitchen); only the adapters at the end of this file name pgpool and
 * curl_loop.
 * Must never: block (no curl_easy_perform, PQexec, sleep), or free an
 * aorder whose I/O is still registered with a service. The one
 * exception is deliberate and confined to run_brew_on_loop(): the mixed
 * mode's blocking brew, the mistake that mode exists to show. */
#include "exec_async.h"

#include "check.h"
#include "clock.h"
#include "db.h"
#include "evloop.h"
#include "kitchen_client.h"
#include "list.h"
#include "log.h"
#include "order.h"
#include "pgpool.h"
#include "watchdog.h"

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

/* The I/O of one step: exactly one of call/q is in use, per the step's io. */
struct astep {
    struct aorder *ao;
    int index;
    int inflight;
    struct kc_call call;
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
    int finish_resent; /* the finish went out again after its connection was lost */
    /* wf_nsteps of them, not WF_MAX_STEPS: an astep is ~1.7 KB, and ten
     * thousand orders in flight each hold one aorder. */
    struct astep steps[];
};

struct exec_async {
    struct evloop *loop;
    struct exec_async_db db;
    struct exec_async_kitchen kitchen;
    struct exec_async_options opt;
    struct list_node orders; /* running aorders */
    struct db_sync blocking_db; /* mixed mode only, opened on first use */
    int aborting; /* exec_async_abort_all was called: nothing waits any more */
};

/* The order's states in sequence; any may end at once (a failed insert,
 * an abort). */
static void ao_set_state(struct aorder *ao, enum ao_state next)
{
    CHECK(ao->state != AO_ENDED && (next == ao->state + 1 || next == AO_ENDED));
    log_debug("order %lld (async): %s -> %s", (long long)ao->o->id, ao_state_names[ao->state],
              ao_state_names[next]);
    ao->state = next;
}

/* Frees the executor's state and hands the order back on a later pass:
 * on_done never runs inside an exec_async_* call. */
static void ao_end(struct aorder *ao)
{
    struct order *o = ao->o;
    struct evloop *loop = ao->ex->loop;
    ao_set_state(ao, AO_ENDED);
    list_remove(&ao->link);
    db_stmt_release(&ao->stmt);
    free(ao);
    o->exec = NULL;
    order_end_later(loop, o);
}

/* What a database outcome means for the order, by pgpool status. */
static int db_error(int status)
{
    return status == PGQ_TIMEOUT ? OERR_TIMEOUT : OERR_DB;
}

static void finish_send(struct aorder *ao);

static void on_finished(struct pgq *q, int status, const PGresult *res, const char *err)
{
    struct aorder *ao = container_of(q, struct aorder, q);
    /* Lost with its connection (a restart, a terminated backend): the
     * UPDATE sets the same values whenever it runs, so it goes out once
     * more, as the blocking executor's does, and no row is left running
     * because the connection it went out on died. */
    if (status == PGQ_UNAVAILABLE && !ao->finish_resent && !ao->ex->aborting) {
        ao->finish_resent = 1;
        finish_send(ao);
        return;
    }
    if (status != PGQ_OK)
        order_not_recorded(ao->o, err);
    else if (!db_finish_applied(res)) /* it ran past its deadline (db.h): the row is not written */
        order_not_recorded(ao->o, "the row's update ran past its deadline");
    ao_end(ao);
}

static void finish_send(struct aorder *ao)
{
    ao->q = (struct pgq){.stmt = &ao->stmt, .cls = PGQ_SHORT, .cb = on_finished,
                         .timeout_ms = ao->ex->opt.db_timeout_ms};
    ao->ex->db.submit(ao->ex->db.ctx, &ao->q);
}

/* Every step has ended (or the order failed and the others were
 * abandoned): write the outcome. */
static void ao_finish(struct aorder *ao)
{
    struct order *o = ao->o;
    order_end_steps(o, clock_mono_ns());
    ao_set_state(ao, AO_FINISHING);
    db_stmt_release(&ao->stmt);
    if (db_stmt_finish(&ao->stmt, o, ao->ex->opt.db_timeout_ms) != 0) {
        order_fail(o, OERR_INTERNAL, "out of memory");
        ao_end(ao);
        return;
    }
    finish_send(ao);
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
            ex->kitchen.abandon(ex->kitchen.ctx, &s->call);
        else
            ex->db.abandon(ex->db.ctx, &s->q);
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
    order_step_end(ao->o, s->index, err, result, msg, now);
    if (err)
        abandon_steps(ao);
    else
        launch_ready(ao);
    /* While the row is still being inserted, its callback finishes. */
    if (!steps_inflight(ao) && ao->state == AO_STEPS)
        ao_finish(ao);
}

/* The mixed mode's brew: PQexecPrepared on the loop thread. Nothing else on
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
        if (ex->aborting) {
            ex->db.abandon(ex->db.ctx, &ao->q);
            order_end_steps(ao->o, clock_mono_ns());
            ao_end(ao);
        } else if (!steps_inflight(ao) && ao->state == AO_STEPS) {
            ao_finish(ao);
        }
        return;
    }
    long limit_ms = order_step_limit_ms(ao->o, s->index, ex->opt.step_slack_ms);
    PGresult *r = NULL;
    if (db_sync_ensure(&ex->blocking_db, msg, sizeof msg) == 0) /* loop-ok: mixed blocks on purpose */
        r = db_sync_run(&ex->blocking_db, &s->stmt, limit_ms, &kind, msg, sizeof msg); /* loop-ok: the same */
    const char *why = msg;
    int err = r ? db_brew_result(r, result, sizeof result, &why) : kind;
    step_ended(s, err, result, why);
    PQclear(r);
}

static void on_kitchen_done(struct kc_call *c, int err, const char *result, const char *msg)
{
    step_ended(container_of(c, struct astep, call), err, result, msg);
}

static void on_sql_done(struct pgq *q, int status, const PGresult *res, const char *errmsg)
{
    struct astep *s = container_of(q, struct astep, q);
    char result[WF_RESULT_MAX];
    const char *why = errmsg;
    order_step_queued(s->ao->o, s->index, q->waited_ns);
    int err = status == PGQ_OK ? db_brew_result(res, result, sizeof result, &why) : db_error(status);
    step_ended(s, err, result, why);
}

/* Starts the I/O of one step. Outcomes arrive through step_ended on a
 * later pass, failures to start included. */
static void start_step(struct aorder *ao, int i)
{
    struct exec_async *ex = ao->ex;
    struct astep *s = &ao->steps[i];
    const struct step_def *d = &wf_steps[i];
    long limit_ms = order_step_limit_ms(ao->o, i, ex->opt.step_slack_ms);
    order_step_start(ao->o, i, clock_mono_ns());
    s->inflight = 1;
    if (d->io == IO_HTTP) {
        struct kc_call_args a = {.kitchen_url = ex->opt.kitchen_url, .step = d, .scale = ao->o->scale,
                                 .timeout_ms = limit_ms, .traceparent = ao->o->traceparent};
        s->call.cb = on_kitchen_done;
        ex->kitchen.start(ex->kitchen.ctx, &s->call, &a);
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
    order_step_waiting(ao->o, i);
    ex->db.submit(ex->db.ctx, &s->q);
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
        order_not_recorded(o, status == PGQ_OK ? "no id returned" : err);
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
    list_push_back(&ex->orders, &ao->link);
    ao->ex = ex;
    ao->o = o;
    o->exec = ao;
    for (int i = 0; i < wf_nsteps; i++) {
        ao->steps[i].ao = ao;
        ao->steps[i].index = i;
    }
    ao->state = AO_STARTING;
    db_stmt_insert_order(&ao->stmt, o, wf_sequential_ms(o->scale) + ex->opt.row_budget_ms);
    ao->q = (struct pgq){.stmt = &ao->stmt, .cls = PGQ_SHORT, .cb = on_inserted, .timeout_ms = ex->opt.db_timeout_ms};
    ex->db.submit(ex->db.ctx, &ao->q);
    /* The kitchen does not need the row: start now, overlapping it. */
    launch_ready(ao);
}

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

void exec_async_abort_all(struct exec_async *ex)
{
    ex->aborting = 1;
    struct list_node *n = ex->orders.next, *next;
    for (; n != &ex->orders; n = next) {
        next = n->next;
        struct aorder *ao = container_of(n, struct aorder, link);
        order_fail(ao->o, OERR_SHUTDOWN, "cancelled: the server is shutting down");
        abandon_steps(ao);
        /* A blocking brew already deferred (mixed) owns a task on the
         * loop: that task ends the order when it runs, this same pass. */
        if (blocking_brew_due(ao))
            continue;
        ex->db.abandon(ex->db.ctx, &ao->q);
        order_end_steps(ao->o, clock_mono_ns());
        ao_end(ao);
    }
}

struct exec_async *exec_async_new(struct evloop *loop, const struct exec_async_db *db,
                                  const struct exec_async_kitchen *kitchen, const struct exec_async_options *opt)
{
    struct exec_async *ex = calloc(1, sizeof *ex);
    if (!ex)
        return NULL;
    ex->loop = loop;
    ex->db = *db;
    ex->kitchen = *kitchen;
    ex->opt = *opt;
    list_init(&ex->orders);
    ex->blocking_db.config = opt->db;
    ex->blocking_db.wd = opt->wd;
    ex->blocking_db.connect_timeout_ms = opt->connect_timeout_ms;
    return ex;
}

void exec_async_free(struct exec_async *ex)
{
    if (!ex)
        return;
    db_sync_close(&ex->blocking_db);
    free(ex);
}

/* ---- The real services: thin adapters over pgpool and kitchen calls -------- */

static void pool_submit(void *pool, struct pgq *q) { pgpool_submit(pool, q); }
static void pool_abandon(void *pool, struct pgq *q) { pgpool_abandon(pool, q); }

struct exec_async_db exec_async_pgpool(struct pgpool *pool)
{
    return (struct exec_async_db){.submit = pool_submit, .abandon = pool_abandon, .ctx = pool};
}

static void kitchen_start(void *http, struct kc_call *c, const struct kc_call_args *a) { kc_call_start(http, c, a); }
static void kitchen_abandon(void *http, struct kc_call *c) { kc_call_abandon(http, c); }

struct exec_async_kitchen exec_async_curl(struct curl_loop *http)
{
    return (struct exec_async_kitchen){.start = kitchen_start, .abandon = kitchen_abandon, .ctx = http};
}
