/* pgpool: non-blocking PostgreSQL connections on the loop (see pgpool.h).
 *
 * Owns: the PGconns and their slots, the wait queues and the completion
 * queue (not the queries in them), and each completed query's result until
 * its callback returned. Each slot is a small state machine; every state
 * change goes through slot_set_state(), which can log it.
 * Must never: call PQexec, PQconnectdb, PQreset or PQcancel (they block),
 * call a query's callback anywhere but deliver_completed() (a task of its
 * own), or watch WRITABLE when libpq has nothing to write (the loop would
 * spin). */
#include "pgpool.h"

#include "check.h"
#include "clock.h"
#include "db.h"
#include "evloop.h"
#include "list.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RETRY_NS (500 * NS_PER_MS)
#define PIPE_DEPTH 64 /* short queries in flight at once on one pipelined connection */

enum slot_state {
    SLOT_DOWN,       /* no connection; the retry timer runs */
    SLOT_CONNECTING, /* PQconnectPoll in progress; the deadline timer runs */
    SLOT_SETUP,      /* running the setup SQL (schema, session); same deadline */
    SLOT_IDLE,       /* open, nothing in flight */
    SLOT_BUSY,       /* a query in flight; the query's own timer runs */
    SLOT_PIPELINE    /* open in pipeline mode: 0..PIPE_DEPTH short queries in flight */
};

static const char *const slot_state_names[] = {"down", "connecting", "setup", "idle", "busy", "pipeline"};

enum { Q_NONE, Q_WAITING, Q_RUNNING, Q_DONE };

struct pgslot {
    struct pgpool *pool;
    int index;
    enum slot_state state;
    PGconn *conn;
    int ending; /* its backend said FATAL while idle (db_conn_watch) */
    int fd;
    int flushing;       /* PQflush said more to send: also watch WRITABLE */
    int setup_step;     /* SETUP: the step running */
    struct pgq *q;      /* the query in flight (BUSY) */
    PGresult *res;      /* the result kept for the callback (PIPELINE: the head's) */
    struct ev_timer timer; /* connect and setup deadline, or retry delay */

    /* A pipelined slot: the queries in flight in send order, a ring from
     * pipe_head. An entry is NULL once its query was abandoned: its
     * results still arrive in their turn and are thrown away. */
    int pipelined;
    struct pgq *pipe[PIPE_DEPTH];
    int pipe_head, pipe_n;
    int head_ended; /* the head query's results ended (NULL seen): its Sync's result is next */
};

struct pgpool {
    struct evloop *loop;
    const struct db_config *config;
    struct pgpool_options opt;
    struct pgslot *slots;
    int *idle; /* stack of idle slot indexes */
    int nidle;
    int nconnected;
    int nlong; /* slots running a long query */
    int npipelined; /* slots 0..npipelined-1 are pipelined */
    int healthy;
    int nwaiting;
    struct list_node waiting[2]; /* by pgq_class, FIFO */
    struct list_node completed;  /* outcomes not yet called back */
    struct ev_task kick;         /* dispatch and deliver, after the current callback */
    int kick_pending;
};

static void slot_connect(struct pgslot *s);
static void kick(struct pgpool *p);

/* ---- the one way outcomes reach callers -------------------------------- */

/* Records q's outcome (taking res) for the completion task. Never calls
 * back: this may run inside pgpool_submit or pgpool_abandon. */
static void complete(struct pgpool *p, struct pgq *q, int status, PGresult *res, const char *err)
{
    evloop_timer_stop(p->loop, &q->timer);
    q->status = status;
    q->res = res;
    snprintf(q->err, sizeof q->err, "%s", err ? err : "");
    q->err[strcspn(q->err, "\n")] = '\0';
    q->slot = NULL;
    q->where = Q_DONE;
    list_push_back(&p->completed, &q->link);
    kick(p);
}

static void deliver_completed(struct pgpool *p)
{
    struct list_node *n;
    while ((n = list_first(&p->completed)) != NULL) {
        struct pgq *q = container_of(n, struct pgq, link);
        list_remove(n);
        q->where = Q_NONE;
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
    q->where = Q_NONE;
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
            complete(p, q, PGQ_UNAVAILABLE, NULL, err);
        }
    }
}

/* ---- slot state ---------------------------------------------------------- */

static void slot_set_state(struct pgslot *s, enum slot_state next)
{
    log_debug("db slot %d: %s -> %s", s->index, slot_state_names[s->state], slot_state_names[next]);
    s->state = next;
}

static void on_io(struct evloop *loop, int fd, int events, void *arg);

static void watch(struct pgslot *s, int mask)
{
    if (evloop_io_set(s->pool->loop, s->fd, mask, on_io, s) != 0)
        log_warn("db slot %d: cannot watch fd %d", s->index, s->fd);
}

static void push_idle(struct pgslot *s)
{
    slot_set_state(s, SLOT_IDLE);
    s->pool->idle[s->pool->nidle++] = s->index;
    watch(s, EV_READ); /* notice a server-side close while idle */
}

static void pop_idle(struct pgslot *s)
{
    struct pgpool *p = s->pool;
    for (int i = 0; i < p->nidle; i++) {
        if (p->idle[i] == s->index) {
            p->idle[i] = p->idle[--p->nidle];
            return;
        }
    }
}

/* Takes the query off s (it is no longer running there). */
static struct pgq *slot_take_query(struct pgslot *s)
{
    struct pgq *q = s->q;
    if (q) {
        if (q->cls == PGQ_LONG)
            s->pool->nlong--;
        q->slot = NULL;
        s->q = NULL;
    }
    return q;
}

/* Takes every query off s, in send order, into out (PIPE_DEPTH entries):
 * the one of a plain slot, or those a pipelined slot carries (abandoned
 * ones left out). Returns how many. */
static int slot_take_queries(struct pgslot *s, struct pgq **out)
{
    int n = 0;
    if (s->q)
        out[n++] = slot_take_query(s);
    for (; s->pipe_n > 0; s->pipe_n--) {
        struct pgq *q = s->pipe[s->pipe_head];
        s->pipe[s->pipe_head] = NULL;
        s->pipe_head = (s->pipe_head + 1) % PIPE_DEPTH;
        if (q) {
            q->slot = NULL;
            out[n++] = q;
        }
    }
    s->head_ended = 0;
    return n;
}

/* Closes the connection (stopping the watcher first) and forgets it. The
 * query on it, if any, must have been taken off already. */
static void slot_close(struct pgslot *s)
{
    struct pgpool *p = s->pool;
    CHECK(!s->q && s->pipe_n == 0);
    if (s->state == SLOT_IDLE)
        pop_idle(s);
    if (s->state >= SLOT_IDLE)
        p->nconnected--;
    evloop_timer_stop(p->loop, &s->timer);
    if (s->fd >= 0)
        evloop_io_del(p->loop, s->fd);
    s->fd = -1;
    PQclear(s->res);
    s->res = NULL;
    /* Closing is what ends an abandoned statement in the database: the
     * backend notices at its next client_connection_check_interval. */
    PQfinish(s->conn);
    s->conn = NULL;
    s->flushing = 0;
    slot_set_state(s, SLOT_DOWN);
}

static void slot_retry_later(struct pgslot *s)
{
    slot_close(s);
    if (evloop_timer_start(s->pool->loop, &s->timer, RETRY_NS) != 0)
        log_error("db slot %d: out of memory for its retry timer", s->index);
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

/* A connection attempt failed: when none is open, the database counts as
 * unreachable and waiting queries fail now rather than at their deadline. */
static void slot_connect_failed(struct pgslot *s, const char *why)
{
    struct pgpool *p = s->pool;
    char msg[300];
    snprintf(msg, sizeof msg, "database unavailable (%s): %s", p->config->describe, why);
    slot_retry_later(s);
    if (p->nconnected == 0) {
        if (p->healthy)
            log_warn("%s", msg);
        p->healthy = 0;
        if (!attempt_under_way(p))
            fail_waiting(p, msg);
    }
}

/* s's connection is unusable and a new one is opened at once. Its queries
 * end: timed_out (if not NULL) with PGQ_TIMEOUT and msg, every other one
 * with PGQ_UNAVAILABLE (msg, or on a timeout that its connection had to
 * go). None is sent again: it may have run and committed already. */
static void slot_replace(struct pgslot *s, struct pgq *timed_out, const char *msg)
{
    struct pgq *qs[PIPE_DEPTH];
    int n = slot_take_queries(s, qs);
    slot_close(s);
    slot_connect(s);
    for (int i = 0; i < n; i++) {
        if (qs[i] == timed_out)
            complete(s->pool, qs[i], PGQ_TIMEOUT, NULL, msg);
        else if (timed_out)
            complete(s->pool, qs[i], PGQ_UNAVAILABLE, NULL,
                     "database connection replaced: a statement before this one on it timed out");
        else
            complete(s->pool, qs[i], PGQ_UNAVAILABLE, NULL, msg);
    }
}

static void slot_lost(struct pgslot *s, const char *why)
{
    char msg[300];
    snprintf(msg, sizeof msg, "database connection lost: %s", why);
    log_warn("db slot %d: %s", s->index, msg);
    if (s->state == SLOT_SETUP) {
        slot_connect_failed(s, msg);
        return;
    }
    slot_replace(s, NULL, msg);
}

static void on_slot_timer(struct evloop *loop, struct ev_timer *t)
{
    (void)loop;
    struct pgslot *s = container_of(t, struct pgslot, timer);
    if (s->state == SLOT_CONNECTING || s->state == SLOT_SETUP)
        slot_connect_failed(s, "no answer within the connect timeout");
    else if (s->state == SLOT_DOWN)
        slot_connect(s);
}

/* A query's own deadline: first for waiting, then for running. */
static void on_query_timer(struct evloop *loop, struct ev_timer *t)
{
    (void)loop;
    struct pgq *q = container_of(t, struct pgq, timer);
    struct pgpool *p = q->pool;
    char msg[160];
    if (q->where == Q_WAITING) {
        unqueue(p, q);
        snprintf(msg, sizeof msg, "no database connection free within %lld ms",
                 (long long)(q->waited_ns / NS_PER_MS));
        complete(p, q, PGQ_BUSY, NULL, msg);
    } else if (q->where == Q_RUNNING) {
        /* Its connection is in an unknown state: replace it (PQcancel
         * would block; the server ends the statement once it notices). */
        snprintf(msg, sizeof msg, "the database did not answer within %lld ms", (long long)q->timeout_ms);
        log_warn("db slot %d: %s (%s)", q->slot->index, msg, q->stmt->what);
        slot_replace(q->slot, q, msg);
    }
}

static void slot_connect(struct pgslot *s)
{
    struct pgpool *p = s->pool;
    s->conn = PQconnectStartParams(p->config->keys, p->config->values, 0);
    if (!s->conn || PQstatus(s->conn) == CONNECTION_BAD) {
        slot_connect_failed(s, s->conn ? PQerrorMessage(s->conn) : "out of memory");
        return;
    }
    db_conn_watch(s->conn, &s->ending);
    s->fd = PQsocket(s->conn);
    slot_set_state(s, SLOT_CONNECTING);
    /* Before the first PQconnectPoll, act as if it had said WRITING. */
    watch(s, EV_WRITE);
    if (evloop_timer_start(p->loop, &s->timer, p->opt.connect_timeout_ms * NS_PER_MS) != 0)
        log_error("db slot %d: out of memory for its connect deadline", s->index);
}

/* Sends st, or (st NULL) the setup step name/sql, and watches for the
 * answer. 0 or -1. */
static int slot_send(struct pgslot *s, const struct db_stmt *st, const char *name, const char *sql)
{
    int ok;
    if (!st)
        ok = name ? PQsendPrepare(s->conn, name, sql, 0, NULL) : PQsendQuery(s->conn, sql);
    else if (st->name)
        ok = PQsendQueryPrepared(s->conn, st->name, st->nparams, st->values, NULL, NULL, 0);
    else
        ok = PQsendQueryParams(s->conn, st->sql, st->nparams, NULL, st->values, NULL, NULL, 0);
    if (!ok)
        return -1;
    int f = PQflush(s->conn);
    if (f < 0)
        return -1;
    s->flushing = f == 1;
    watch(s, EV_READ | (s->flushing ? EV_WRITE : 0));
    return 0;
}

/* Open and set up: serve. */
static void slot_ready(struct pgslot *s)
{
    struct pgpool *p = s->pool;
    evloop_timer_stop(p->loop, &s->timer);
    p->nconnected++;
    if (!p->healthy)
        log_info("database reachable again");
    p->healthy = 1;
    if (s->pipelined && PQenterPipelineMode(s->conn)) {
        /* Its backend's pid: an operator (or a test) can find it in pg_stat_activity. */
        log_info("db slot %d: pipelined, backend pid %d", s->index, PQbackendPID(s->conn));
        slot_set_state(s, SLOT_PIPELINE);
        watch(s, EV_READ);
    } else {
        if (s->pipelined)
            log_warn("db slot %d: cannot enter pipeline mode; serving one query at a time", s->index);
        push_idle(s);
    }
    kick(p);
}

static void setup_done(struct pgslot *s, int ok, const char *err);

/* Sends the first setup step from s->setup_step on (skipping empty ones),
 * or ends the setup when none is left. Still under the connect deadline. */
static void setup_next(struct pgslot *s)
{
    struct pgpool *p = s->pool;
    const char *name, *sql;
    for (; p->opt.setup.step && p->opt.setup.step(p->opt.setup.arg, s->setup_step, &name, &sql) == 0;
         s->setup_step++) {
        if (!sql)
            continue;
        if (slot_send(s, NULL, name, sql) != 0)
            slot_lost(s, PQerrorMessage(s->conn));
        return;
    }
    setup_done(s, 1, NULL);
}

static void slot_connected(struct pgslot *s)
{
    PQsetnonblocking(s->conn, 1);
    slot_set_state(s, SLOT_SETUP);
    s->setup_step = 0;
    setup_next(s);
}

static void connect_poll(struct pgslot *s)
{
    PostgresPollingStatusType st = PQconnectPoll(s->conn);
    /* libpq opens a new socket per address it tries: follow it. */
    int fd = PQsocket(s->conn);
    if (fd != s->fd) {
        evloop_io_del(s->pool->loop, s->fd);
        s->fd = fd;
    }
    switch (st) {
    case PGRES_POLLING_READING:
        watch(s, EV_READ);
        break;
    case PGRES_POLLING_WRITING:
        watch(s, EV_WRITE);
        break;
    case PGRES_POLLING_OK:
        slot_connected(s);
        break;
    default:
        slot_connect_failed(s, PQerrorMessage(s->conn));
        break;
    }
}

static void setup_done(struct pgslot *s, int ok, const char *err)
{
    struct pgpool *p = s->pool;
    if (p->opt.setup.done)
        p->opt.setup.done(p->opt.setup.arg, ok, err);
    if (!ok) {
        char msg[340];
        snprintf(msg, sizeof msg, "cannot set up the connection: %s", err);
        slot_connect_failed(s, msg);
        return;
    }
    slot_ready(s);
}

/* A setup step on s has all its results: the next one, or the end. */
static void setup_complete(struct pgslot *s, PGresult *res)
{
    int ok = db_result_ok(res);
    char err[300] = "";
    if (!ok)
        snprintf(err, sizeof err, "%s", res ? PQresultErrorMessage(res) : PQerrorMessage(s->conn));
    err[strcspn(err, "\n")] = '\0';
    PQclear(res);
    if (!ok) {
        setup_done(s, 0, err);
        return;
    }
    s->setup_step++;
    setup_next(s);
}

/* The query on s has all its results: hand them out. */
static void slot_complete(struct pgslot *s)
{
    PGresult *res = s->res;
    s->res = NULL;
    if (s->state == SLOT_SETUP) {
        setup_complete(s, res);
        return;
    }
    struct pgq *q = slot_take_query(s);
    int ok = db_result_ok(res);
    char err[300] = "";
    if (!ok)
        snprintf(err, sizeof err, "%s", res ? PQresultErrorMessage(res) : PQerrorMessage(s->conn));
    /* Back to the pool, unless the connection is not reusable. */
    if (PQstatus(s->conn) != CONNECTION_OK || PQtransactionStatus(s->conn) != PQTRANS_IDLE) {
        slot_close(s);
        slot_connect(s);
    } else {
        push_idle(s);
    }
    if (ok) {
        complete(s->pool, q, PGQ_OK, res, NULL);
    } else {
        PQclear(res);
        complete(s->pool, q, PGQ_FAILED, NULL, err);
    }
    kick(s->pool);
}

/* Sends what libpq still holds; watches WRITABLE only while it holds some.
 * 0, or -1 when the connection was lost (s has been replaced). */
static int slot_flush(struct pgslot *s)
{
    int f = PQflush(s->conn);
    if (f < 0) {
        slot_lost(s, PQerrorMessage(s->conn));
        return -1;
    }
    s->flushing = f == 1;
    watch(s, EV_READ | (s->flushing ? EV_WRITE : 0));
    return 0;
}

/* Reads what the socket holds into libpq and sends what libpq still
 * holds. 0, or -1 when the connection was lost (s has been replaced). */
static int slot_consume(struct pgslot *s)
{
    if (!PQconsumeInput(s->conn)) {
        slot_lost(s, PQerrorMessage(s->conn));
        return -1;
    }
    return s->flushing ? slot_flush(s) : 0;
}

static void read_results(struct pgslot *s)
{
    if (slot_consume(s) != 0)
        return;
    while (!PQisBusy(s->conn)) {
        PGresult *r = PQgetResult(s->conn);
        if (!r) {
            slot_complete(s);
            return;
        }
        /* Keep the last result (a multi-statement setup reports one per
         * statement) unless an earlier one failed. */
        if (!s->res || db_result_ok(s->res)) {
            PQclear(s->res);
            s->res = r;
        } else {
            PQclear(r);
        }
    }
}

/* ---- pipeline mode ------------------------------------------------------- */

/* The head query of pipelined s has all its results and its Sync's: hand
 * them to its caller, or drop them if it was abandoned. */
static void pipe_complete_head(struct pgslot *s)
{
    struct pgq *q = s->pipe[s->pipe_head];
    s->pipe[s->pipe_head] = NULL;
    s->pipe_head = (s->pipe_head + 1) % PIPE_DEPTH;
    s->pipe_n--;
    s->head_ended = 0;
    PGresult *res = s->res;
    s->res = NULL;
    if (!q) {
        PQclear(res); /* abandoned while in flight */
    } else if (db_result_ok(res)) {
        q->slot = NULL;
        complete(s->pool, q, PGQ_OK, res, NULL);
    } else {
        /* An error, or PGRES_PIPELINE_ABORTED (which cannot happen with a
         * Sync after every query: an error aborts only up to its Sync). */
        char err[300];
        snprintf(err, sizeof err, "%s", res ? PQresultErrorMessage(res) : PQerrorMessage(s->conn));
        PQclear(res);
        q->slot = NULL;
        complete(s->pool, q, PGQ_FAILED, NULL, err);
    }
    kick(s->pool); /* room for a waiting query */
}

/* Reads what arrived on pipelined s. Each query's results come in send
 * order as: its result(s), NULL, then PGRES_PIPELINE_SYNC for its Sync.
 * PQgetResult must not be called with nothing in flight (it returns NULL
 * at once), hence the count. */
static void pipe_read(struct pgslot *s)
{
    if (slot_consume(s) != 0)
        return;
    while (s->pipe_n > 0 && PQstatus(s->conn) == CONNECTION_OK && !PQisBusy(s->conn)) {
        PGresult *r = PQgetResult(s->conn);
        if (!s->head_ended) {
            if (!r)
                s->head_ended = 1;
            else if (!s->res || db_result_ok(s->res)) {
                PQclear(s->res);
                s->res = r; /* as read_results: the last, unless one failed */
            } else {
                PQclear(r);
            }
            continue;
        }
        if (!r)
            break; /* the Sync's result has not arrived yet */
        int sync = PQresultStatus(r) == PGRES_PIPELINE_SYNC;
        PQclear(r);
        if (!sync) {
            slot_lost(s, "unexpected result in the pipeline");
            return;
        }
        pipe_complete_head(s);
    }
    if (PQstatus(s->conn) != CONNECTION_OK)
        slot_lost(s, "closed by the server");
}

/* Sends q on pipelined s followed by its own Sync, so that it commits, or
 * fails, alone. libpq 15's PQpipelineSync also flushes: one write per
 * query (libpq 17's PQsendPipelineSync would let one write carry many). */
static void run_pipelined(struct pgslot *s, struct pgq *q)
{
    struct pgpool *p = s->pool;
    unqueue(p, q);
    if (q->timeout_ms <= 0)
        q->timeout_ms = p->opt.query_timeout_ms;
    /* The run bound counts from here: it includes the wait behind the
     * queries ahead of q on the connection (at most PIPE_DEPTH - 1 short
     * ones). */
    if (evloop_timer_start(p->loop, &q->timer, q->timeout_ms * NS_PER_MS) != 0) {
        complete(p, q, PGQ_UNAVAILABLE, NULL, "out of memory for the query's deadline");
        return;
    }
    q->where = Q_RUNNING;
    q->slot = s;
    s->pipe[(s->pipe_head + s->pipe_n) % PIPE_DEPTH] = q;
    s->pipe_n++;
    const struct db_stmt *st = q->stmt;
    int ok = st->name ? PQsendQueryPrepared(s->conn, st->name, st->nparams, st->values, NULL, NULL, 0)
                      : PQsendQueryParams(s->conn, st->sql, st->nparams, NULL, st->values, NULL, NULL, 0);
    if (!ok || !PQpipelineSync(s->conn)) {
        slot_lost(s, PQerrorMessage(s->conn)); /* q with the others */
        return;
    }
    slot_flush(s);
}

/* The pipelined connection with the fewest queries in flight and room for
 * one more, or NULL. */
static struct pgslot *pipe_with_room(struct pgpool *p)
{
    struct pgslot *best = NULL;
    for (int i = 0; i < p->npipelined; i++) {
        struct pgslot *s = &p->slots[i];
        if (s->state == SLOT_PIPELINE && s->pipe_n < PIPE_DEPTH && (!best || s->pipe_n < best->pipe_n))
            best = s;
    }
    return best;
}

/* Withdraws running q from pipelined s: its entry stays, so that its
 * results are recognised and dropped when they arrive. */
static void pipe_abandon(struct pgslot *s, struct pgq *q)
{
    for (int i = 0; i < s->pipe_n; i++) {
        int at = (s->pipe_head + i) % PIPE_DEPTH;
        if (s->pipe[at] == q)
            s->pipe[at] = NULL;
    }
    q->slot = NULL;
}

static void on_io(struct evloop *loop, int fd, int events, void *arg)
{
    (void)loop, (void)fd;
    struct pgslot *s = arg;
    switch (s->state) {
    case SLOT_CONNECTING:
        connect_poll(s);
        break;
    case SLOT_IDLE:
        /* Nothing was asked: readable means a notice or a close (a FATAL
         * notice, then the close: either ends the connection). */
        if (!db_conn_alive(s->conn, &s->ending))
            slot_lost(s, "closed by the server while idle");
        break;
    case SLOT_SETUP:
    case SLOT_BUSY:
        if ((events & EV_WRITE) && s->flushing && !(events & EV_READ))
            slot_flush(s);
        else
            read_results(s);
        break;
    case SLOT_PIPELINE:
        if ((events & EV_WRITE) && s->flushing && !(events & EV_READ))
            slot_flush(s);
        else
            pipe_read(s);
        break;
    case SLOT_DOWN:
        break;
    }
}

/* ---- dispatch ------------------------------------------------------------ */

static void run_on(struct pgslot *s, struct pgq *q)
{
    struct pgpool *p = s->pool;
    pop_idle(s);
    unqueue(p, q);
    q->where = Q_RUNNING;
    q->slot = s;
    s->q = q;
    if (q->cls == PGQ_LONG)
        p->nlong++;
    slot_set_state(s, SLOT_BUSY);
    if (q->timeout_ms <= 0)
        q->timeout_ms = p->opt.query_timeout_ms;
    if (evloop_timer_start(p->loop, &q->timer, q->timeout_ms * NS_PER_MS) != 0) {
        slot_take_query(s);
        push_idle(s);
        complete(p, q, PGQ_UNAVAILABLE, NULL, "out of memory for the query's deadline");
        return;
    }
    if (slot_send(s, q->stmt, NULL, NULL) != 0)
        slot_lost(s, PQerrorMessage(s->conn));
}

/* Before a query goes to s: when nothing is in flight there, whether its
 * backend is still there. One that was just terminated may have sent its
 * FATAL notice, read on an earlier pass, and the close that follows may
 * not have been seen yet: a query sent now would fail though it never
 * reached the database. Such a connection is replaced here, with nothing
 * lost, and the query waits for another. With queries in flight, a close
 * ends them all (slot_replace) and this one with them. */
static int slot_still_there(struct pgslot *s)
{
    if (s->pipe_n > 0 || db_conn_alive(s->conn, &s->ending))
        return 1;
    slot_lost(s, "closed by the server while idle");
    return 0;
}

static void dispatch(struct pgpool *p)
{
    if (!p->healthy) {
        /* Known unreachable: rather than fail at once, or wait for the next
         * retry, try now; the queries wait for that attempt (a refused one
         * ends in a millisecond), so none fails once the database is back. */
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
        return;
    }
    /* Short queries go to a pipelined connection while one has room, then
     * to an idle one; long ones only ever to an idle one. */
    struct pgq *q;
    while ((q = next_waiting(p)) != NULL) {
        struct pgslot *s = q->cls == PGQ_SHORT ? pipe_with_room(p) : NULL;
        if (s) {
            if (slot_still_there(s))
                run_pipelined(s, q);
        } else if (p->nidle > 0) {
            s = &p->slots[p->idle[p->nidle - 1]];
            if (slot_still_there(s))
                run_on(s, q);
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

/* Dispatches and delivers once the current callback has returned. */
static void kick(struct pgpool *p)
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
    q->where = Q_WAITING;
    list_push_back(&p->waiting[q->cls == PGQ_LONG], &q->link);
    p->nwaiting++;
    int64_t wait_ms = q->wait_ms > 0 ? q->wait_ms : p->opt.wait_timeout_ms;
    if (evloop_timer_start(p->loop, &q->timer, wait_ms * NS_PER_MS) != 0) {
        unqueue(p, q);
        complete(p, q, PGQ_UNAVAILABLE, NULL, "out of memory for the query's deadline");
        return;
    }
    kick(p);
}

void pgpool_abandon(struct pgpool *p, struct pgq *q)
{
    evloop_timer_stop(p->loop, &q->timer);
    if (q->where == Q_WAITING) {
        unqueue(p, q);
    } else if (q->where == Q_DONE) {
        list_remove(&q->link);
        PQclear(q->res);
        q->res = NULL;
    } else if (q->where == Q_RUNNING && q->slot->state == SLOT_PIPELINE) {
        /* The connection stays: the answer is dropped when it comes. */
        pipe_abandon(q->slot, q);
    } else if (q->where == Q_RUNNING) {
        /* Its answer would arrive on a connection in an unknown state:
         * close it and open a new one. A failure of that is recorded for
         * the waiting queries' callbacks, which run on a later pass. */
        struct pgslot *s = q->slot;
        slot_take_query(s);
        slot_close(s);
        slot_connect(s);
    }
    q->where = Q_NONE;
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
    for (int i = 0; i < p->opt.size; i++) {
        struct pgslot *s = &p->slots[i];
        s->pool = p;
        s->index = i;
        s->fd = -1;
        s->state = SLOT_DOWN;
        s->timer.cb = on_slot_timer;
        s->pipelined = i < p->npipelined;
    }
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
            qs[j]->where = Q_NONE;
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
        q->where = Q_NONE;
    }
    free(p->slots);
    free(p->idle);
    free(p);
}

void pgpool_stats(const struct pgpool *p, struct pgpool_stats *out)
{
    int busy = 0;
    for (int i = 0; i < p->opt.size; i++)
        busy += p->slots[i].state == SLOT_BUSY || p->slots[i].pipe_n > 0;
    out->size = p->opt.size;
    out->long_max = p->opt.size - p->opt.reserve;
    out->connected = p->nconnected;
    out->busy = busy;
    out->waiting = p->nwaiting;
    out->healthy = p->healthy;
}
