/* order_runner: the blocking per-order runner (see order_runner.h).
 *
 * Owns: nothing; the order is the caller's, the context the io's.
 * Must never: run on the loop thread (every call here blocks). */
#include "order_runner.h"

#include "clock.h"
#include "finish_retry.h"
#include "flight.h"
#include "io.h"
#include "order.h"

#include <stdio.h>

static const char cancel_msg[] = "cancelled: the server is shutting down";

/* Performs step i of o and records its outcome. */
static void run_step(const struct order_runner *r, struct order *o, int i)
{
    const struct step_def *d = &o->recipe->steps[i];
    long limit_ms = order_step_limit_ms(o, i, r->step_slack_ms);
    char result[WF_RESULT_MAX] = "", msg[260] = "";
    int err;
    int64_t t0 = clock_mono_ns(); /* flight recorder: the blocking call's slice */
    order_step_start(o, i, t0);
    if (d->io == IO_HTTP) {
        struct kitchen_args a = {.step = d, .scale = o->scale, .timeout_ms = limit_ms, .traceparent = o->traceparent};
        err = r->io->kitchen(r->w, &a, result, sizeof result, msg, sizeof msg);
    } else {
        err = r->io->brew(r->w, o, i, limit_ms, result, sizeof result, msg, sizeof msg);
    }
    flight_slice(d->name, o->id, t0); /* flight recorder: the blocking call's slice */
    order_step_end(o, i, err, result, msg, clock_mono_ns());
}

/* Writes the order's outcome to its row, sent once more when the
 * connection it went out on was lost (finish_retry.h). */
static void record_outcome(const struct order_runner *r, struct order *o)
{
    char msg[260] = "";
    int err = 0, lost = 0, sent = 0;
    do {
        if (atomic_load(r->cancelling) == 2) {
            err = OERR_DB;
            snprintf(msg, sizeof msg, "the server is stopping");
            break;
        }
        err = r->io->finish(r->w, o, r->db_timeout_ms, &lost, msg, sizeof msg);
        sent++;
    } while (err && finish_send_again(lost, sent, atomic_load(r->cancelling) == 2));
    if (err == OERR_INTERNAL)
        order_fail(o, OERR_INTERNAL, msg);
    else if (err)
        order_not_recorded(o, msg);
}

void order_run_blocking(const struct order_runner *r, struct order *o)
{
    char msg[260] = "";
    int64_t id = 0, t0 = clock_mono_ns(); /* flight recorder: the INSERT's slice */
    /* The row's deadline: the recipe's steps one after another, each with
     * its slack, and the executor's own budget beyond them. */
    double budget_ms =
        wf_sequential_ms(o->recipe, o->scale) + (double)o->recipe->nsteps * r->step_slack_ms + r->row_budget_ms;
    int err = r->io->insert(r->w, o, budget_ms, r->db_timeout_ms, &id, msg, sizeof msg);
    flight_slice("insert order", id, t0); /* flight recorder */
    if (err || id <= 0) {
        order_not_recorded(o, err ? msg : "no id returned");
        order_end_steps(o, clock_mono_ns());
        return;
    }
    o->id = id;

    /* One ready step at a time, lowest index first: the table's order. */
    unsigned ready;
    while ((ready = order_ready(o)) != 0) {
        if (atomic_load(r->cancelling)) {
            order_fail(o, OERR_SHUTDOWN, cancel_msg);
            break;
        }
        run_step(r, o, __builtin_ctz(ready));
    }
    order_end_steps(o, clock_mono_ns());
    t0 = clock_mono_ns(); /* flight recorder: the UPDATE's slice */
    record_outcome(r, o);
    flight_slice("record outcome", o->id, t0); /* flight recorder */
}
