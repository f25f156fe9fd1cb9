/* pgpool: non-blocking PostgreSQL connections on the loop (see pgpool.h):
 * the pool itself, its queues, dispatch and life. One connection is
 * pgpool_conn.c, pipeline mode pgpool_pipe.c; pgpool_int.h joins them.
 *
 * Owns: the slots, the wait queues and the completion queue (not the
 * queries in them), and each completed query's result until its callback
 * returned. A query's place is a state machine (enum pgq_place); every
 * change goes through pool_set_place(), which can log it. Must never: call
 * a query's callback anywhere but deliver_completed() (a task of its own). */
#include "pgpool_int.h"

#include "check.h"
#include "clock.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const pgq_place_names[] = {"nowhere", "waiting", "running", "done"};

void pool_set_place(struct pgq *q, enum pgq_place next)
{
    /* A query submitted for the first time comes with what its owner put
     * in the field: zero, or anything. */
    unsigned from = (unsigned)q->where;
    log_debug("db query (%s): %s -> %s", q->stmt ? q->stmt->what : "?",
              from <= PGQ_DONE ? pgq_place_names[from] : "new", pgq_place_names[next]);
    q->where = next;
}

/* ---- the one way outcomes reach callers -------------------------------- */

void pool_complete(struct pgpool *p, struct pgq *q, int status, PGresult *res, const char *err)
{
    evloop_timer_stop(p->loop, &q->timer);
    q->status = status;
    q->res = res;
    snprintf(q->err, sizeof q->err, "%s", err ? err : "");
    q->err[strcspn(q->err, "\n")] = '\0';
    q->slot = NULL;
    pool_set_place(q, PGQ_DONE);
    list_push_back(&p->completed, &q->link);
    pool_kick(p);
}

static void deliver_completed(struct pgpool *p)
{
    struct list_node *n;
    while ((n = list_first(&p->completed)) != NULL) {
        struct pgq *q = container_of(n, struct pgq, link);
        list_remove(n);
        pool_set_place(q, PGQ_NOWHERE);
        PGresult *res = q->res; /* the callback may submit q again, or free it */
        q->res = NULL;
        q->cb(q, q->status, res, q->err);
        PQclear(res);
    }
}

/* ---- wait queues ------------------------------------------------------- */

static void unqueue(struct pgpool *p, struct pgq *q)
{
    list_remove(&q->link);
    p->nwaiting--;
    pool_set_place(q, PGQ_NOWHERE);
    q->waited_ns = clock_mono_ns() - q->submitted_ns;
}

/* The next query a free connection may take: short ones first; a long one
 * only while `reserve` connections stay free for short ones. */
static struct pgq *next_waiting(struct pgpool *p)
{
    struct list_node *n = list_first(&p->waiting[PGQ_SHORT]);
    if (!n && p->nlong < p->opt.size - p->opt.reserve)
        n = list_first(&p->waiting[PGQ_LONG]);
    return n ? container_of(n, struct pgq, link) : NULL;
}

static void fail_waiting(struct pgpool *p, const char *err)
{
    for (int c = PGQ_SHORT; c <= PGQ_LONG; c++) {
        struct list_node *n;
        while ((n = list_first(&p->waiting[c])) != NULL) {
            struct pgq *q = container_of(n, struct pgq, link);
            unqueue(p, q);
            pool_complete(p, q, PGQ_UNAVAILABLE, NULL, err);
        }
    }
}

/* A query's own deadline: first for waiting, then for running. */
static void on_query_timer(struct evloop *loop, struct ev_timer *t)
{
    (void)loop;
    struct pgq *q = container_of(t, struct pgq, timer);
    struct pgpool *p = q->pool;
    char msg[160];
    if (q->where == PGQ_WAITING) {
        unqueue(p, q);
        snprintf(msg, sizeof msg, "no database connection free within %lld ms", (long long)(q->waited_ns / NS_PER_MS));
        pool_complete(p, q, PGQ_BUSY, NULL, msg);
    } else if (q->where == PGQ_RUNNING) {
        /* Its connection is in an unknown state: replace it (PQcancel
         * would block; the server ends the statement once it notices). */
        snprintf(msg, sizeof msg, "the database did not answer within %lld ms", (long long)q->timeout_ms);
        log_warn("db slot %d: %s (%s)", q->slot->index, msg, q->stmt->what);
        slot_replace(q->slot, q, msg);
    }
}

/* ---- the slots, as the pool sees them ------------------------------------ */

void pool_idle_push(struct pgpool *p, struct pgslot *s)
{
    p->idle[p->nidle++] = s->index;
}

void pool_idle_pop(struct pgpool *p, struct pgslot *s)
{
    for (int i = 0; i < p->nidle; i++) {
        if (p->idle[i] == s->index) {
            p->idle[i] = p->idle[--p->nidle];
            return;
        }
    }
}

void pool_conn_up(struct pgpool *p)
{
    p->nconnected++;
    if (!p->healthy)
        log_info("database reachable again");
    p->healthy = 1;
}

/* Whether a connection attempt is in progress (its outcome decides the
 * waiting queries' fate). */
static int attempt_under_way(const struct pgpool *p)
{
    for (int i = 0; i < p->opt.size; i++)
        if (p->slots[i].state == SLOT_CONNECTING || p->slots[i].state == SLOT_SETUP)
            return 1;
    return 0;
}

void pool_conn_failed(struct pgpool *p, const char *why)
{
    if (p->nconnected > 0)
        return;
    char msg[300];
    snprintf(msg, sizeof msg, "database unavailable (%s): %s", p->config->describe, why);
    if (p->healthy)
        log_warn("%s", msg);
    p->healthy = 0;
    if (!attempt_under_way(p))
        fail_waiting(p, msg);
}

/* The pipelined connection with the fewest queries in flight and room for
 * one more, or NULL. */
static struct pgslot *pipe_with_room(struct pgpool *p)
{
    struct pgslot *best = NULL;
    for (int i = 0; i < p->npipelined; i++) {
        struct pgslot *s = &p->slots[i];
        if (s->state == SLOT_PIPELINE && s->pipe.n < PIPE_DEPTH && (!best || s->pipe.n < best->pipe.n))
            best = s;
    }
    return best;
}

/* ---- dispatch ------------------------------------------------------------ */

/* Takes q off its wait queue and starts its run bound. 0, or -1 when q
 * has failed (out of memory for the timer). */
static int start_running(struct pgpool *p, struct pgq *q)
{
    unqueue(p, q);
    if (q->timeout_ms <= 0)
        q->timeout_ms = p->opt.query_timeout_ms;
    if (evloop_timer_start(p->loop, &q->timer, q->timeout_ms * NS_PER_MS) != 0) {
        pool_complete(p, q, PGQ_UNAVAILABLE, NULL, "out of memory for the query's deadline");
        return -1;
    }
    return 0;
}

/* Known unreachable: rather than fail at once, or wait for the next retry,
 * try now; the queries wait for that attempt (a refused one ends in a
 * millisecond), so none fails once the database is back. */
static void dispatch_unhealthy(struct pgpool *p)
{
    if (p->nwaiting == 0 || attempt_under_way(p))
        return;
    for (int i = 0; i < p->opt.size; i++) {
        if (p->slots[i].state == SLOT_DOWN) {
            evloop_timer_stop(p->loop, &p->slots[i].timer);
            slot_connect(&p->slots[i]);
            return;
        }
    }
    char msg[300];
    snprintf(msg, sizeof msg, "database unavailable (%s)", p->config->describe);
    fail_waiting(p, msg);
}

/* Short queries go to a pipelined connection while one has room, then to
 * an idle one; long ones only ever to an idle one. */
static void dispatch(struct pgpool *p)
{
    if (!p->healthy) {
        dispatch_unhealthy(p);
        return;
    }
    struct pgq *q;
    while ((q = next_waiting(p)) != NULL) {
        struct pgslot *s = q->cls == PGQ_SHORT ? pipe_with_room(p) : NULL;
        if (s) {
            if (slot_still_there(s) && start_running(p, q) == 0)
                pipe_run(s, q);
        } else if (p->nidle > 0) {
            s = &p->slots[p->idle[p->nidle - 1]];
            if (slot_still_there(s) && start_running(p, q) == 0)
                slot_run(s, q);
        } else {
            break;
        }
    }
}

static void on_kick(struct evloop *loop, struct ev_task *task)
{
    (void)loop;
    struct pgpool *p = container_of(task, struct pgpool, kick);
    p->kick_pending = 0;
    dispatch(p);
    deliver_completed(p);
}

void pool_kick(struct pgpool *p)
{
    if (!p->kick_pending) {
        p->kick_pending = 1;
        evloop_defer(p->loop, &p->kick);
    }
}

void pgpool_submit(struct pgpool *p, struct pgq *q)
{
    q->pool = p;
    q->submitted_ns = clock_mono_ns();
    q->waited_ns = 0;
    q->slot = NULL;
    q->res = NULL;
    q->timer.cb = on_query_timer;
    pool_set_place(q, PGQ_WAITING);
    list_push_back(&p->waiting[q->cls == PGQ_LONG], &q->link);
    p->nwaiting++;
    int64_t wait_ms = q->wait_ms > 0 ? q->wait_ms : p->opt.wait_timeout_ms;
    if (evloop_timer_start(p->loop, &q->timer, wait_ms * NS_PER_MS) != 0) {
        unqueue(p, q);
        pool_complete(p, q, PGQ_UNAVAILABLE, NULL, "out of memory for the query's deadline");
        return;
    }
    pool_kick(p);
}

void pgpool_abandon(struct pgpool *p, struct pgq *q)
{
    evloop_timer_stop(p->loop, &q->timer);
    if (q->where == PGQ_WAITING) {
        unqueue(p, q);
    } else if (q->where == PGQ_DONE) {
        list_remove(&q->link);
        PQclear(q->res);
        q->res = NULL;
    } else if (q->where == PGQ_RUNNING) {
        slot_drop_query(q->slot, q);
    }
    if (q->where != PGQ_NOWHERE)
        pool_set_place(q, PGQ_NOWHERE);
}

/* ---- lifecycle ----------------------------------------------------------- */

struct pgpool *pgpool_new(struct evloop *loop, const struct db_config *config, const struct pgpool_options *opt)
{
    struct pgpool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->slots = calloc((size_t)opt->size, sizeof *p->slots);
    p->idle = calloc((size_t)opt->size, sizeof *p->idle);
    if (!p->slots || !p->idle) {
        free(p->slots);
        free(p->idle);
        free(p);
        return NULL;
    }
    p->loop = loop;
    p->config = config;
    p->opt = *opt;
    if (p->opt.reserve < 0 || p->opt.reserve >= p->opt.size)
        p->opt.reserve = 0;
    /* At least one connection stays plain, for the long queries. */
    p->npipelined = p->opt.pipelined < 0 ? 0 : p->opt.pipelined >= p->opt.size ? p->opt.size - 1 : p->opt.pipelined;
    p->healthy = 1; /* until a first attempt says otherwise */
    p->kick.fn = on_kick;
    list_init(&p->waiting[PGQ_SHORT]);
    list_init(&p->waiting[PGQ_LONG]);
    list_init(&p->completed);
    for (int i = 0; i < p->opt.size; i++)
        slot_init(&p->slots[i], p, i, i < p->npipelined);
    for (int i = 0; i < p->opt.size; i++)
        slot_connect(&p->slots[i]);
    return p;
}

void pgpool_free(struct pgpool *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->opt.size; i++) {
        struct pgq *qs[PIPE_DEPTH];
        int n = slot_take_queries(&p->slots[i], qs);
        for (int j = 0; j < n; j++) {
            evloop_timer_stop(p->loop, &qs[j]->timer);
            pool_set_place(qs[j], PGQ_NOWHERE);
        }
        slot_close(&p->slots[i]);
    }
    for (int c = PGQ_SHORT; c <= PGQ_LONG; c++) {
        struct list_node *n;
        while ((n = list_first(&p->waiting[c])) != NULL) {
            struct pgq *q = container_of(n, struct pgq, link);
            evloop_timer_stop(p->loop, &q->timer);
            unqueue(p, q);
        }
    }
    struct list_node *n;
    while ((n = list_first(&p->completed)) != NULL) {
        struct pgq *q = container_of(n, struct pgq, link);
        list_remove(n);
        PQclear(q->res);
        q->res = NULL;
        pool_set_place(q, PGQ_NOWHERE);
    }
    free(p->slots);
    free(p->idle);
    free(p);
}

void pgpool_stats(const struct pgpool *p, struct pgpool_stats *out)
{
    int busy = 0;
    for (int i = 0; i < p->opt.size; i++)
        busy += p->slots[i].state == SLOT_BUSY || p->slots[i].pipe.n > 0;
    out->size = p->opt.size;
    out->long_max = p->opt.size - p->opt.reserve;
    out->connected = p->nconnected;
    out->busy = busy;
    out->waiting = p->nwaiting;
    out->healthy = p->healthy;
}
