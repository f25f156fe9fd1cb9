/* drain: the front's way out, one state machine. Serving, then (SIGTERM)
 * waiting for the requests in flight until a deadline, then cancelling
 * the orders still running and waiting a grace more, then aborting what
 * still waits; closed once nothing waits any more. Every change goes
 * through one setter that checks and logs it. Loop thread only. */
#ifndef COFFEE_DRAIN_H
#define COFFEE_DRAIN_H

#include "evloop.h"

enum drain_state {
    DRAIN_SERVING,   /* taking orders */
    DRAIN_WAITING,   /* no new orders; those in flight run on until the drain's deadline */
    DRAIN_CANCELLED, /* the deadline passed: orders cancelled, their rows written within a grace */
    DRAIN_ABORTED,   /* nothing is waited for any more (a second signal, or the grace ran out) */
    DRAIN_CLOSED     /* every waiting request answered: nothing may suspend any more (final) */
};

/* What the drain does to the orders, the front's (arg). */
struct drain_hooks {
    void (*cancel)(void *arg); /* fail every order in flight, rows written */
    void (*abort)(void *arg);  /* end every order in flight now */
    void *arg;
};

struct drain {
    enum drain_state state;
    struct evloop *loop;
    long grace_ms;
    struct drain_hooks hooks;
    struct ev_timer timer;
    void (*done)(void *);
    void *done_arg;
};

/* Serving; hooks copied; loop borrowed. */
void drain_init(struct drain *d, struct evloop *loop, long grace_ms, const struct drain_hooks *hooks);
/* Stops its timer (the front is being freed). */
void drain_release(struct drain *d);
/* Stops taking orders and waits up to timeout_ms; done(arg) runs once
 * drain_idle finds nothing waiting. */
void drain_start(struct drain *d, long timeout_ms, void (*done)(void *), void *arg);
/* Nothing waits any more: once draining, closes and calls done. */
void drain_idle(struct drain *d);
/* Waits for nothing any more (hooks.abort), unless closed already. */
void drain_abort(struct drain *d);
const char *drain_state_name(enum drain_state s);
static inline int drain_taking_orders(const struct drain *d)
{
    return d->state == DRAIN_SERVING;
}
static inline int drain_closed(const struct drain *d)
{
    return d->state == DRAIN_CLOSED;
}

#endif
