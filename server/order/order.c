/* order: the order record and its timeline (see order.h).
 * Owns nothing but the order itself. Runs on whichever thread executes the
 * order; an order is only ever touched by one thread at a time.
 * Two state machines live here, a step's and the order's; every change of
 * either goes through step_set() or status_set(), which CHECK (check.h)
 * that the change is legal. */
#include "order.h"

#include "check.h"
#include "clock.h"
#include "list.h"
#include "order_flight.h"
#include "text.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A step: pending -> running (-> waiting for a connection) -> done, failed
 * or abandoned; the last three are final. */
static int step_change_ok(enum step_state from, enum step_state to)
{
    switch (to) {
    case STEP_RUNNING:
        return from == STEP_PENDING;
    case STEP_WAITING:
        return from == STEP_RUNNING;
    case STEP_DONE:
    case STEP_FAILED:
    case STEP_ABANDONED:
        return from == STEP_RUNNING || from == STEP_WAITING;
    default:
        return 0;
    }
}

static void step_set(struct order *o, int step, enum step_state next)
{
    CHECK(step >= 0 && step < o->recipe->nsteps);
    CHECK(step_change_ok(o->steps[step].state, next));
    o->steps[step].state = next;
}

/* The order: running -> done or failed; done -> failed when its outcome
 * cannot be recorded (or it is aborted while recording). Failed is final. */
static void status_set(struct order *o, enum order_status next)
{
    CHECK((o->status == ORDER_RUNNING && next != ORDER_RUNNING) || (o->status == ORDER_DONE && next == ORDER_FAILED));
    o->status = next;
}

struct order *order_new(int mode, double scale, order_done_fn on_done, void *done_arg)
{
    struct order *o = calloc(1, sizeof *o);
    if (!o)
        return NULL;
    o->mode = mode;
    o->recipe = &wf_coffee;
    o->scale = scale;
    o->arrived_ns = clock_mono_ns();
    o->started_wall = clock_wall_s();
    o->failed_step = -1;
    o->on_done = on_done;
    o->done_arg = done_arg;
    return o;
}

/* The answer's text, once built, is out of date as soon as anything is
 * recorded: every recording function below calls this first. */
static void forget_report(struct order *o)
{
    free(o->report);
    o->report = NULL;
}

void order_free(struct order *o)
{
    if (o)
        forget_report(o);
    free(o);
}

void order_step_start(struct order *o, int step, int64_t now)
{
    forget_report(o);
    CHECK(o->status == ORDER_RUNNING); /* order_ready() said so */
    step_set(o, step, STEP_RUNNING);
    o->started |= 1u << step;
    o->steps[step].start_ns = now;
}

void order_step_waiting(struct order *o, int step)
{
    forget_report(o);
    step_set(o, step, STEP_WAITING);
}

void order_step_queued(struct order *o, int step, int64_t waited_ns)
{
    forget_report(o);
    o->steps[step].queued_ns += waited_ns;
    o->queued_ns += waited_ns;
}

void order_step_done(struct order *o, int step, const char *result, int64_t now)
{
    struct step_run *s = &o->steps[step];
    forget_report(o);
    step_set(o, step, STEP_DONE);
    o->done |= 1u << step;
    s->end_ns = now;
    text_copy_utf8(s->result, sizeof s->result, result);
}

void order_fail(struct order *o, enum order_error error, const char *msg)
{
    if (o->status == ORDER_FAILED)
        return; /* the first failure is the one reported */
    forget_report(o);
    status_set(o, ORDER_FAILED);
    o->error = error;
    text_copy_utf8(o->errmsg, sizeof o->errmsg, msg);
}

void order_step_fail(struct order *o, int step, enum order_error error, const char *msg, int64_t now)
{
    forget_report(o);
    step_set(o, step, STEP_FAILED);
    o->steps[step].end_ns = now;
    if (o->status != ORDER_FAILED)
        o->failed_step = step;
    order_fail(o, error, msg);
}

long order_step_limit_ms(const struct order *o, int step, long slack_ms)
{
    return wf_step_ms(&o->recipe->steps[step], o->scale) + slack_ms;
}

void order_step_end(struct order *o, int step, int err, const char *result, const char *msg, int64_t now)
{
    if (!err) {
        order_step_done(o, step, result, now);
        return;
    }
    char full[240];
    snprintf(full, sizeof full, "%s: %s", o->recipe->steps[step].name, msg ? msg : "failed");
    order_step_fail(o, step, (enum order_error)err, full, now);
}

void order_not_recorded(struct order *o, const char *why)
{
    char msg[300];
    snprintf(msg, sizeof msg, "could not record the order: %s", why);
    order_fail(o, OERR_DB, msg);
}

void order_abandon_steps(struct order *o, int64_t now)
{
    forget_report(o);
    for (int i = 0; i < o->recipe->nsteps; i++) {
        struct step_run *s = &o->steps[i];
        if (s->state == STEP_RUNNING || s->state == STEP_WAITING) {
            step_set(o, i, STEP_ABANDONED);
            s->end_ns = now;
        }
    }
}

unsigned order_ready(const struct order *o)
{
    if (o->status == ORDER_FAILED)
        return 0;
    return wf_ready(o->recipe, o->done, o->started, wf_modes[o->mode].ignore_deps);
}

void order_results(const struct order *o, const char *results[WF_MAX_STEPS])
{
    for (int i = 0; i < o->recipe->nsteps; i++)
        results[i] = o->steps[i].state == STEP_DONE ? o->steps[i].result : NULL;
}

int order_completed(const struct order *o, int out[WF_MAX_STEPS])
{
    int n = 0;
    for (int i = 0; i < o->recipe->nsteps; i++) {
        if (o->steps[i].state != STEP_DONE)
            continue;
        /* Insertion: a stable sort by end time, at most WF_MAX_STEPS. */
        int j = n++;
        for (; j > 0 && o->steps[out[j - 1]].end_ns > o->steps[i].end_ns; j--)
            out[j] = out[j - 1];
        out[j] = i;
    }
    return n;
}

void order_end_steps(struct order *o, int64_t now)
{
    forget_report(o);
    CHECK(o->status != ORDER_DONE); /* once per order */
    o->steps_end_ns = now;
    if (o->status == ORDER_RUNNING && o->done == wf_all_steps(o->recipe))
        status_set(o, ORDER_DONE);
    order_flight_record(o); /* flight recorder: the finished timeline */
}

static void run_done(struct evloop *loop, struct ev_task *task)
{
    (void)loop;
    struct order *o = container_of(task, struct order, done_task);
    o->on_done(o, o->done_arg);
}

void order_end_later(struct evloop *loop, struct order *o)
{
    o->done_task.fn = run_done;
    evloop_defer(loop, &o->done_task);
}

void order_end_posted(struct evloop *loop, struct order *o)
{
    o->done_task.fn = run_done;
    evloop_post(loop, &o->done_task);
}

const char *order_status_name(enum order_status s)
{
    static const char *const names[] = {"running", "done", "failed"};
    return names[s];
}

const char *step_state_name(enum step_state s)
{
    static const char *const names[] = {"pending", "waiting", "running", "done", "failed", "abandoned"};
    return names[s];
}
