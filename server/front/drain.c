/* drain: the front's shutdown state machine (see drain.h). Owns its
 * timer; the orders and requests are the front's. */
#include "drain.h"

#include "check.h"
#include "clock.h"
#include "list.h"
#include "log.h"

static const char *const drain_state_names[] = {"serving", "waiting", "cancelled", "aborted", "closed"};

const char *drain_state_name(enum drain_state s)
{
    return drain_state_names[s];
}

/* serving -> waiting -> cancelled -> aborted, each but serving -> closed;
 * waiting -> aborted too (a second signal). Closed is final. */
static int drain_change_ok(enum drain_state from, enum drain_state to)
{
    switch (to) {
    case DRAIN_WAITING:
        return from == DRAIN_SERVING;
    case DRAIN_CANCELLED:
        return from == DRAIN_WAITING;
    case DRAIN_ABORTED:
        return from != DRAIN_CLOSED;
    case DRAIN_CLOSED:
        return from != DRAIN_SERVING && from != DRAIN_CLOSED;
    default:
        return 0;
    }
}

static void drain_set_state(struct drain *d, enum drain_state next)
{
    CHECK(drain_change_ok(d->state, next));
    log_debug("front: %s -> %s", drain_state_names[d->state], drain_state_names[next]);
    d->state = next;
}

void drain_abort(struct drain *d)
{
    evloop_timer_stop(d->loop, &d->timer);
    if (d->state == DRAIN_CLOSED)
        return;
    drain_set_state(d, DRAIN_ABORTED);
    d->hooks.abort(d->hooks.arg);
}

/* The drain's deadlines: first cancel, then, if orders still wait (their
 * rows cannot be written: a frozen database), abandon them. */
static void on_timeout(struct evloop *loop, struct ev_timer *t)
{
    struct drain *d = container_of(t, struct drain, timer);
    if (d->state == DRAIN_WAITING) {
        log_warn("drain timeout");
        drain_set_state(d, DRAIN_CANCELLED);
        d->hooks.cancel(d->hooks.arg);
        if (evloop_timer_start(loop, t, d->grace_ms * NS_PER_MS) == 0)
            return;
    }
    drain_abort(d);
}

void drain_init(struct drain *d, struct evloop *loop, long grace_ms, const struct drain_hooks *hooks)
{
    *d = (struct drain){
        .state = DRAIN_SERVING, .loop = loop, .grace_ms = grace_ms, .hooks = *hooks, .timer = {.cb = on_timeout}};
}

void drain_release(struct drain *d)
{
    evloop_timer_stop(d->loop, &d->timer);
}

void drain_start(struct drain *d, long timeout_ms, void (*done)(void *), void *arg)
{
    drain_set_state(d, DRAIN_WAITING);
    d->done = done;
    d->done_arg = arg;
    if (evloop_timer_start(d->loop, &d->timer, (int64_t)timeout_ms * NS_PER_MS) != 0)
        drain_abort(d); /* no memory for a timer: do not wait unbounded */
}

void drain_idle(struct drain *d)
{
    if (d->state == DRAIN_SERVING || d->state == DRAIN_CLOSED || !d->done)
        return;
    drain_set_state(d, DRAIN_CLOSED);
    evloop_timer_stop(d->loop, &d->timer);
    void (*done)(void *) = d->done;
    d->done = NULL;
    done(d->done_arg);
}
