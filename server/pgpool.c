/* pgpool: non-blocking PostgreSQL connections on the loop (see pgpool.h).
 *
 * Owns: the PGconns and their slots, the wait queues (not the queries in
 * them). Each slot is a small state machine; every state change goes
 * through slot_set_state(), which can log it.
 * Must never: call PQexec, PQconnectdb, PQreset or PQcancel (they block),
 * run a callback inside pgpool_submit, or watch WRITABLE when libpq has
 * nothing to write (the loop would spin). */
#include "pgpool.h"

#include "clock.h"
#include "db.h"
#include "evloop.h"
#include "list.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONNECT_TIMEOUT_NS (5 * NS_PER_SEC)
#define RETRY_NS (500 * NS_PER_MS)

enum slot_state {
    SLOT_DOWN,       /* no connection; the retry timer runs */
    SLOT_CONNECTING, /* PQconnectPoll in progress; the deadline timer runs */
    SLOT_SCHEMA,     /* applying the schema (first connection of the process) */
    SLOT_IDLE,       /* open, nothing in flight */
    SLOT_BUSY        /* a query in flight */
};

static const char *const slot_state_names[] = {"down", "connecting", "schema", "idle", "busy"};

enum { Q_NONE, Q_WAITING, Q_RUNNING };

struct pgslot {
    struct pgpool *pool;
    int index;
    enum slot_state state;
    PGconn *conn;
    int fd;
    int flushing;       /* PQflush said more to send: also watch WRITABLE */
    struct pgq *q;      /* the query in flight (BUSY) */
    PGresult *res;      /* the result kept for the callback */
    struct ev_timer timer; /* connect deadline, retry delay or query timeout */
};


struct pgpool {
    struct evloop *loop;
    const struct db_config *config;
    int size;
    struct pgslot *slots;
    int *idle; /* stack of idle slot indexes */
    int nidle;
    int nconnected;
    int healthy;
    int schema_running;
    int nwaiting;
    struct list_node waiting[2]; /* by pgq_class, FIFO */
    struct ev_task kick;
    int kick_pending;
};

static void slot_connect(struct pgslot *s);
static void dispatch(struct pgpool *p);

/* ---- wait queues ------------------------------------------------------- */

static struct pgq *take_waiting(struct pgpool *p)
{
    for (int c = PGQ_SHORT; c <= PGQ_LONG; c++) {
        struct list_node *n = list_first(&p->waiting[c]);
        if (n) {
            struct pgq *q = container_of(n, struct pgq, link);
            list_remove(n);
            p->nwaiting--;
            q->where = Q_NONE;
            return q;
        }
    }
    return NULL;
}

static void fail_waiting(struct pgpool *p, const char *err)
{
    struct pgq *q;
    while ((q = take_waiting(p)) != NULL) {
        q->waited_ns = clock_mono_ns() - q->submitted_ns;
        q->cb(q, PGQ_UNAVAILABLE, NULL, err);
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

/* Closes the connection (stopping the watcher first) and forgets it. */
static void slot_close(struct pgslot *s)
{
    struct pgpool *p = s->pool;
    if (s->state == SLOT_IDLE)
        pop_idle(s);
    if (s->state == SLOT_SCHEMA)
        p->schema_running = 0;
    if (s->state >= SLOT_SCHEMA)
        p->nconnected--;
    evloop_timer_stop(p->loop, &s->timer);
    if (s->fd >= 0)
        evloop_io_del(p->loop, s->fd);
    s->fd = -1;
    PQclear(s->res);
    s->res = NULL;
    PQfinish(s->conn);
    s->conn = NULL;
    s->q = NULL;
    s->flushing = 0;
    slot_set_state(s, SLOT_DOWN);
}

static void slot_retry_later(struct pgslot *s)
{
    slot_close(s);
    if (evloop_timer_start(s->pool->loop, &s->timer, RETRY_NS) != 0)
        log_error("db slot %d: out of memory for its retry timer", s->index);
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
        fail_waiting(p, msg);
    }
}

/* An open connection broke: fail its query and open a new one now. */
static void slot_lost(struct pgslot *s, const char *why)
{
    struct pgq *q = s->q;
    char msg[300];
    snprintf(msg, sizeof msg, "database connection lost: %s", why);
    log_warn("db slot %d: %s", s->index, msg);
    slot_close(s);
    slot_connect(s);
    if (q) {
        q->where = Q_NONE;
        q->cb(q, PGQ_UNAVAILABLE, NULL, msg);
    }
}

/* The query ran past its timeout: its connection is in an unknown state,
 * so close it (PQcancel would block) and open a new one. */
static void slot_timed_out(struct pgslot *s)
{
    struct pgq *q = s->q;
    char msg[120];
    snprintf(msg, sizeof msg, "query did not finish within %lld ms", (long long)q->timeout_ms);
    slot_close(s);
    slot_connect(s);
    q->where = Q_NONE;
    q->cb(q, PGQ_TIMEOUT, NULL, msg);
}

static void on_timer(struct evloop *loop, struct ev_timer *t)
{
    (void)loop;
    struct pgslot *s = container_of(t, struct pgslot, timer);
    if (s->state == SLOT_CONNECTING)
        slot_connect_failed(s, "connect timed out");
    else if (s->state == SLOT_DOWN)
        slot_connect(s);
    else if (s->state == SLOT_BUSY && s->q)
        slot_timed_out(s);
}

static void slot_connect(struct pgslot *s)
{
    struct pgpool *p = s->pool;
    s->conn = PQconnectStartParams(p->config->keys, p->config->values, 0);
    if (!s->conn || PQstatus(s->conn) == CONNECTION_BAD) {
        slot_connect_failed(s, s->conn ? PQerrorMessage(s->conn) : "out of memory");
        return;
    }
    s->fd = PQsocket(s->conn);
    slot_set_state(s, SLOT_CONNECTING);
    /* Before the first PQconnectPoll, act as if it had said WRITING. */
    watch(s, EV_WRITE);
    if (evloop_timer_start(p->loop, &s->timer, CONNECT_TIMEOUT_NS) != 0)
        log_error("db slot %d: out of memory for its connect deadline", s->index);
}

/* Sends text on an open slot and watches for the answer. 0 or -1. */
static int slot_send(struct pgslot *s, const struct db_stmt *st)
{
    int ok = st ? PQsendQueryParams(s->conn, st->sql, st->nparams, NULL, st->values, NULL, NULL, 0)
                : PQsendQuery(s->conn, db_schema_sql());
    if (!ok)
        return -1;
    int f = PQflush(s->conn);
    if (f < 0)
        return -1;
    s->flushing = f == 1;
    watch(s, EV_READ | (s->flushing ? EV_WRITE : 0));
    return 0;
}

static void slot_connected(struct pgslot *s)
{
    struct pgpool *p = s->pool;
    evloop_timer_stop(p->loop, &s->timer);
    PQsetnonblocking(s->conn, 1);
    p->nconnected++;
    if (!p->healthy)
        log_info("database reachable again");
    p->healthy = 1;
    if (!db_schema_applied() && !p->schema_running) {
        p->schema_running = 1;
        slot_set_state(s, SLOT_SCHEMA);
        if (slot_send(s, NULL) != 0)
            slot_lost(s, PQerrorMessage(s->conn));
        return;
    }
    push_idle(s);
    dispatch(p);
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

/* The query (or schema) on s has all its results: hand them out. */
static void slot_complete(struct pgslot *s)
{
    struct pgpool *p = s->pool;
    PGresult *res = s->res;
    struct pgq *q = s->q;
    s->res = NULL;
    s->q = NULL;
    evloop_timer_stop(p->loop, &s->timer);
    int ok = db_result_ok(res);
    char err[300] = "";
    if (!ok)
        snprintf(err, sizeof err, "%s", res ? PQresultErrorMessage(res) : PQerrorMessage(s->conn));
    err[strcspn(err, "\n")] = '\0';

    if (s->state == SLOT_SCHEMA) {
        p->schema_running = 0;
        if (ok) {
            db_schema_mark_applied();
            log_info("database schema applied");
        } else {
            log_error("cannot apply the database schema: %s", err);
        }
    }
    /* Back to the pool first, unless the connection is not reusable. */
    if (PQstatus(s->conn) != CONNECTION_OK || PQtransactionStatus(s->conn) != PQTRANS_IDLE) {
        slot_close(s);
        slot_connect(s);
    } else {
        push_idle(s);
    }
    if (q) {
        q->where = Q_NONE;
        q->cb(q, ok ? PGQ_OK : PGQ_FAILED, ok ? res : NULL, err);
    } else if (!ok) {
        char msg[340];
        snprintf(msg, sizeof msg, "cannot apply the database schema: %s", err);
        fail_waiting(p, msg);
    }
    PQclear(res);
    dispatch(p);
}

/* Sends what libpq still holds; watches WRITABLE only while it holds some.
 * 0, or -1 when the connection was lost (s has been reset). */
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

static void read_results(struct pgslot *s)
{
    if (!PQconsumeInput(s->conn)) {
        slot_lost(s, PQerrorMessage(s->conn));
        return;
    }
    if (s->flushing && slot_flush(s) != 0)
        return;
    while (!PQisBusy(s->conn)) {
        PGresult *r = PQgetResult(s->conn);
        if (!r) {
            slot_complete(s);
            return;
        }
        /* Keep the last result (a multi-statement schema reports one per
         * statement) unless an earlier one failed. */
        if (!s->res || db_result_ok(s->res)) {
            PQclear(s->res);
            s->res = r;
        } else {
            PQclear(r);
        }
    }
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
        /* Nothing was asked: readable means a notice or a close. */
        if (!PQconsumeInput(s->conn) || PQstatus(s->conn) != CONNECTION_OK)
            slot_lost(s, "closed by the server while idle");
        break;
    case SLOT_SCHEMA:
    case SLOT_BUSY:
        if ((events & EV_WRITE) && s->flushing && !(events & EV_READ))
            slot_flush(s);
        else
            read_results(s);
        break;
    case SLOT_DOWN:
        break;
    }
}

/* ---- dispatch ------------------------------------------------------------ */

static void run_on(struct pgslot *s, struct pgq *q)
{
    pop_idle(s);
    q->waited_ns = clock_mono_ns() - q->submitted_ns;
    q->where = Q_RUNNING;
    q->slot = s;
    s->q = q;
    slot_set_state(s, SLOT_BUSY);
    if (q->timeout_ms > 0 && evloop_timer_start(s->pool->loop, &s->timer, q->timeout_ms * NS_PER_MS) != 0)
        log_warn("db slot %d: no memory for a query timeout; it runs without one", s->index);
    if (slot_send(s, q->stmt) != 0)
        slot_lost(s, PQerrorMessage(s->conn));
}

static void dispatch(struct pgpool *p)
{
    if (!p->healthy) {
        char msg[300];
        snprintf(msg, sizeof msg, "database unavailable (%s)", p->config->describe);
        fail_waiting(p, msg);
        return;
    }
    if (!db_schema_applied()) {
        if (!p->schema_running && p->nidle > 0 && p->nwaiting > 0) {
            struct pgslot *s = &p->slots[p->idle[p->nidle - 1]];
            pop_idle(s);
            p->schema_running = 1;
            slot_set_state(s, SLOT_SCHEMA);
            if (slot_send(s, NULL) != 0)
                slot_lost(s, PQerrorMessage(s->conn));
        }
        return; /* queries wait until the schema is there */
    }
    while (p->nidle > 0 && p->nwaiting > 0) {
        struct pgslot *s = &p->slots[p->idle[p->nidle - 1]];
        run_on(s, take_waiting(p));
    }
}

static void on_kick(struct evloop *loop, struct ev_task *task)
{
    (void)loop;
    struct pgpool *p = container_of(task, struct pgpool, kick);
    p->kick_pending = 0;
    dispatch(p);
}

void pgpool_submit(struct pgpool *p, struct pgq *q)
{
    q->submitted_ns = clock_mono_ns();
    q->waited_ns = 0;
    q->slot = NULL;
    q->where = Q_WAITING;
    list_push_back(&p->waiting[q->cls == PGQ_LONG], &q->link);
    p->nwaiting++;
    if (!p->kick_pending) {
        p->kick_pending = 1;
        evloop_defer(p->loop, &p->kick);
    }
}

void pgpool_abandon(struct pgpool *p, struct pgq *q)
{
    if (q->where == Q_WAITING) {
        list_remove(&q->link);
        p->nwaiting--;
    } else if (q->where == Q_RUNNING) {
        /* Its answer would arrive on a connection in an unknown state:
         * close it (PQcancel would block) and open a new one. */
        struct pgslot *s = q->slot;
        s->q = NULL;
        slot_close(s);
        slot_connect(s);
    }
    q->where = Q_NONE;
}

/* ---- lifecycle ----------------------------------------------------------- */

struct pgpool *pgpool_new(struct evloop *loop, const struct db_config *config, int size)
{
    struct pgpool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->slots = calloc((size_t)size, sizeof *p->slots);
    p->idle = calloc((size_t)size, sizeof *p->idle);
    if (!p->slots || !p->idle) {
        free(p->slots);
        free(p->idle);
        free(p);
        return NULL;
    }
    p->loop = loop;
    p->config = config;
    p->size = size;
    p->healthy = 1; /* until a first attempt says otherwise */
    p->kick.fn = on_kick;
    list_init(&p->waiting[PGQ_SHORT]);
    list_init(&p->waiting[PGQ_LONG]);
    for (int i = 0; i < size; i++) {
        struct pgslot *s = &p->slots[i];
        s->pool = p;
        s->index = i;
        s->fd = -1;
        s->state = SLOT_DOWN;
        s->timer.cb = on_timer;
    }
    for (int i = 0; i < size; i++)
        slot_connect(&p->slots[i]);
    return p;
}

void pgpool_free(struct pgpool *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->size; i++)
        slot_close(&p->slots[i]);
    free(p->slots);
    free(p->idle);
    free(p);
}

void pgpool_stats(const struct pgpool *p, struct pgpool_stats *out)
{
    int busy = 0;
    for (int i = 0; i < p->size; i++)
        busy += p->slots[i].state == SLOT_BUSY;
    out->size = p->size;
    out->connected = p->nconnected;
    out->busy = busy;
    out->waiting = p->nwaiting;
    out->healthy = p->healthy;
}
