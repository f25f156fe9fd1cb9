/* exec_async: the non-blocking executor (see exec_async.h).
 *
 * Owns: one struct aorder per running order (freed when the order ends,
 * before on_done), holding a slot per step for its in-flight request. An
 * order is an explicit state machine; every change goes through
 * ao_set_state(), which can log it.
 * Its I/O goes through the services it was handed (ex->svc, io.h): it
 * names no database, pool, HTTP library or mode; an order's brew is the
 * service of its mode's brew kind.
 * Must never: block (no curl_easy_perform, PQexec, sleep), or free an
 * aorder whose I/O is still registered with a service. */
#include "exec_async.h"

#include "check.h"
#include "clock.h"
#include "evloop.h"
#include "executor.h"
#include "finish_retry.h"
#include "list.h"
#include "log.h"
#include "order.h"
#include "procstat.h"

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

/* The I/O of one step: a kitchen call or a brew, per the step's io. */
struct astep {
    struct aorder *ao;
    int index;
    int inflight;
    int holds_loop; /* in flight through a service that holds the loop once it runs */
    struct io_req io;
};

struct aorder {
    struct exec_async *ex;
    struct list_node link; /* on ex->orders while running */
    struct order *o;
    enum ao_state state;
    struct io_req row;    /* the row's insert or finish */
    int finish_sent;      /* times the finish went out */
    struct astep steps[]; /* one per step of the order's recipe */
};

struct exec_async {
    struct evloop *loop;
    struct exec_async_services svc;
    struct exec_async_options opt;
    struct list_node orders; /* running aorders */
    int aborting;            /* exec_async_abort_all was called: nothing waits any more */
    int db_peak;             /* the most store connections busy, as sampled by stats */
};

/* The order's states in sequence; any may end at once (a failed insert,
 * an abort). */
static void ao_set_state(struct aorder *ao, enum ao_state next)
{
    CHECK(ao->state != AO_ENDED && (next == ao->state + 1 || next == AO_ENDED));
    log_debug("order %lld (async): %s -> %s", (long long)ao->o->id, ao_state_names[ao->state], ao_state_names[next]);
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
    free(ao);
    o->exec = NULL;
    order_end_later(loop, o);
}

/* The brew service of o's mode. */
static const struct brew_service *brew_of(const struct exec_async *ex, const struct order *o)
{
    return &ex->svc.brew[wf_modes[o->mode].brew];
}

static void finish_send(struct aorder *ao);

static void on_finished(struct io_req *r, const struct io_result *res)
{
    struct aorder *ao = container_of(r, struct aorder, row);
    if (res->error && finish_send_again(res->lost, ao->finish_sent, ao->ex->aborting)) {
        finish_send(ao);
        return;
    }
    if (res->error == OERR_INTERNAL)
        order_fail(ao->o, OERR_INTERNAL, res->msg);
    else if (res->error)
        order_not_recorded(ao->o, res->msg);
    ao_end(ao);
}

static void finish_send(struct aorder *ao)
{
    struct exec_async *ex = ao->ex;
    ao->finish_sent++;
    ao->row.done = on_finished;
    ex->svc.store.finish(ex->svc.store.ctx, &ao->row, ao->o, ex->opt.db_timeout_ms);
}

/* Every step has ended (or the order failed and the others were
 * abandoned): write the outcome. */
static void ao_finish(struct aorder *ao)
{
    order_end_steps(ao->o, clock_mono_ns());
    ao_set_state(ao, AO_FINISHING);
    finish_send(ao);
}

static int steps_inflight(const struct aorder *ao)
{
    int n = 0;
    for (int i = 0; i < ao->o->recipe->nsteps; i++)
        n += ao->steps[i].inflight;
    return n;
}

/* Whether a step in flight holds the loop once it runs: the steps after
 * it in the table start when it has ended (as in the seed, where
 * toast_bread() was only awaited after the blocking brew_coffee()). */
static int loop_held(const struct aorder *ao)
{
    for (int i = 0; i < ao->o->recipe->nsteps; i++)
        if (ao->steps[i].inflight && ao->steps[i].holds_loop)
            return 1;
    return 0;
}

/* Stops the I/O of every step still in flight (the order failed). */
static void abandon_steps(struct aorder *ao)
{
    struct exec_async *ex = ao->ex;
    for (int i = 0; i < ao->o->recipe->nsteps; i++) {
        struct astep *s = &ao->steps[i];
        if (!s->inflight)
            continue;
        if (ao->o->recipe->steps[i].io == IO_HTTP) {
            ex->svc.kitchen.abandon(ex->svc.kitchen.ctx, &s->io);
        } else {
            const struct brew_service *b = brew_of(ex, ao->o);
            b->abandon(b->ctx, &s->io);
        }
        s->inflight = s->holds_loop = 0;
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
    s->inflight = s->holds_loop = 0;
    order_step_end(ao->o, s->index, err, result, msg, now);
    if (err)
        abandon_steps(ao);
    else
        launch_ready(ao);
    /* While the row is still being inserted, its callback finishes. */
    if (!steps_inflight(ao) && ao->state == AO_STEPS)
        ao_finish(ao);
}

static void on_kitchen_done(struct io_req *r, const struct io_result *res)
{
    step_ended(container_of(r, struct astep, io), res->error, res->text, res->msg);
}

static void on_brew_done(struct io_req *r, const struct io_result *res)
{
    struct astep *s = container_of(r, struct astep, io);
    order_step_queued(s->ao->o, s->index, res->waited_ns);
    if (!res->error && !res->text)
        step_ended(s, OERR_DB, NULL, "brew returned no row");
    else
        step_ended(s, res->error, res->text, res->msg);
}

/* Starts the I/O of one step. Outcomes arrive through step_ended on a
 * later pass, failures to start included. */
static void start_step(struct aorder *ao, int i)
{
    struct exec_async *ex = ao->ex;
    struct astep *s = &ao->steps[i];
    const struct step_def *d = &ao->o->recipe->steps[i];
    long limit_ms = order_step_limit_ms(ao->o, i, ex->opt.step_slack_ms);
    order_step_start(ao->o, i, clock_mono_ns());
    s->inflight = 1;
    if (d->io == IO_HTTP) {
        struct kitchen_args a = {
            .step = d, .scale = ao->o->scale, .timeout_ms = limit_ms, .traceparent = ao->o->traceparent};
        s->io.done = on_kitchen_done;
        ex->svc.kitchen.start(ex->svc.kitchen.ctx, &s->io, &a);
        return;
    }
    const struct brew_service *b = brew_of(ex, ao->o);
    order_step_waiting(ao->o, i);
    s->holds_loop = b->holds_loop;
    s->io.done = on_brew_done;
    b->start(b->ctx, &s->io, ao->o, i, limit_ms);
}

static void launch_ready(struct aorder *ao)
{
    unsigned ready = order_ready(ao->o);
    for (int i = 0; i < ao->o->recipe->nsteps; i++) {
        if (!(ready & (1u << i)))
            continue;
        /* The brew is called with the order's id: it waits for the row. */
        if (ao->o->recipe->steps[i].io == IO_SQL && ao->state != AO_STEPS)
            continue;
        if (loop_held(ao))
            break;
        start_step(ao, i);
    }
}

static void on_inserted(struct io_req *r, const struct io_result *res)
{
    struct aorder *ao = container_of(r, struct aorder, row);
    struct order *o = ao->o;
    if (res->error || res->id <= 0) {
        /* No row, so nothing to finish: stop the steps and answer. */
        order_not_recorded(o, res->error ? res->msg : "no id returned");
        abandon_steps(ao);
        order_end_steps(o, clock_mono_ns());
        ao_end(ao);
        return;
    }
    o->id = res->id;
    ao_set_state(ao, AO_STEPS);
    launch_ready(ao);
    if (!steps_inflight(ao))
        ao_finish(ao); /* a step failed while the row was being written */
}

void exec_async_submit(struct exec_async *ex, struct order *o)
{
    struct aorder *ao = calloc(1, sizeof *ao + (size_t)o->recipe->nsteps * sizeof ao->steps[0]);
    if (!ao) {
        order_fail(o, OERR_INTERNAL, "out of memory");
        order_end_later(ex->loop, o);
        return;
    }
    list_push_back(&ex->orders, &ao->link);
    ao->ex = ex;
    ao->o = o;
    o->exec = ao;
    for (int i = 0; i < o->recipe->nsteps; i++) {
        ao->steps[i].ao = ao;
        ao->steps[i].index = i;
    }
    ao->state = AO_STARTING;
    ao->row.done = on_inserted;
    /* The row's deadline: the steps' planned time and slack, and the rest. */
    double budget_ms = wf_sequential_ms(o->recipe, o->scale) + (double)o->recipe->nsteps * ex->opt.step_slack_ms +
                       ex->opt.row_budget_ms;
    ex->svc.store.insert(ex->svc.store.ctx, &ao->row, o, budget_ms, ex->opt.db_timeout_ms);
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
        ex->svc.store.abandon(ex->svc.store.ctx, &ao->row);
        order_end_steps(ao->o, clock_mono_ns());
        ao_end(ao);
    }
}

void exec_async_stats(struct exec_async *ex, struct executor_stats *out)
{
    const struct order_store *st = &ex->svc.store;
    int busy = st->connections_busy ? st->connections_busy(st->ctx) : 0;
    if (busy > ex->db_peak)
        ex->db_peak = busy;
    /* Its own thread is the loop, the caller's (the HTTP front's too: the
     * front's work on the loop is counted here, for every mode). */
    struct thread_usage u = {0};
    (void)thread_usage_self(&u);
    *out = (struct executor_stats){.db_connections = busy,
                                   .db_connections_peak = ex->db_peak,
                                   .threads = 1,
                                   .threads_peak = 1,
                                   .context_switches = u.context_switches,
                                   .cpu_ns = u.cpu_ns};
    /* And the threads its brew services keep (offload's pool). */
    for (int k = 0; k < BREW_KINDS; k++)
        if (ex->svc.brew[k].stats)
            ex->svc.brew[k].stats(ex->svc.brew[k].ctx, out);
}

double exec_async_row_budget_ms(const struct executor_limits *lim)
{
    (void)lim->step_slack_ms; /* per step: added per order, for its recipe (exec_async_submit) */
    return 3.0 * lim->db_wait_ms + 2.0 * lim->db_timeout_ms + 1000;
}

struct exec_async *exec_async_new(struct evloop *loop, const struct exec_async_services *svc,
                                  const struct exec_async_options *opt)
{
    for (int m = 0; m < wf_nmodes; m++) {
        if (wf_modes[m].exec == EXEC_ASYNC && !svc->brew[wf_modes[m].brew].start) {
            log_error("exec_async: mode %s names a brew kind with no service", wf_modes[m].name);
            return NULL;
        }
    }
    struct exec_async *ex = calloc(1, sizeof *ex);
    if (!ex)
        return NULL;
    ex->loop = loop;
    ex->svc = *svc;
    ex->opt = *opt;
    list_init(&ex->orders);
    return ex;
}

void exec_async_free(struct exec_async *ex)
{
    free(ex);
}

static void ops_submit(void *ex, struct order *o)
{
    exec_async_submit(ex, o);
}
static void ops_cancel_all(void *ex)
{
    exec_async_cancel_all(ex);
}
static void ops_abort_all(void *ex)
{
    exec_async_abort_all(ex);
}
static void ops_stats(void *ex, struct executor_stats *out)
{
    exec_async_stats(ex, out);
}

const struct executor_ops exec_async_ops = {
    .name = "async",
    .db_connections_kind = "async pool",
    .submit = ops_submit,
    .cancel_all = ops_cancel_all,
    .abort_all = ops_abort_all,
    .stats = ops_stats,
    .row_budget_ms = exec_async_row_budget_ms,
};
