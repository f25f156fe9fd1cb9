/* pgpool_conn: one connection of the pool, a slot (see pgpool_int.h).
 *
 * Owns: its PGconn, its watcher and timer, and the result of its query
 * until it is handed out. A slot is a state machine (enum slot_state);
 * every change goes through slot_set_state(), which can log it. A plain
 * slot carries one query at a time; a pipelined one (pgpool_pipe.c) many
 * short ones. Must never: call PQexec, PQconnectdb, PQreset or PQcancel
 * (they block), call a query's callback (pool_complete queues it), or
 * watch WRITABLE when libpq has nothing to write (the loop would spin). */
#include "pgpool_int.h"

#include "check.h"
#include "clock.h"
#include "log.h"

#include <stdio.h>
#include <string.h>

#define RETRY_NS (500 * NS_PER_MS)

static const char *const slot_state_names[] = {"down", "connecting", "setup", "idle", "busy", "pipeline"};

void slot_set_state(struct pgslot *s, enum slot_state next)
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

static void slot_idle(struct pgslot *s)
{
    slot_set_state(s, SLOT_IDLE);
    pool_idle_push(s->pool, s);
    watch(s, EV_READ); /* notice a server-side close while idle */
}

/* Takes the plain query off s (it is no longer running there). */
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

int slot_take_queries(struct pgslot *s, struct pgq **out)
{
    int n = 0;
    if (s->q)
        out[n++] = slot_take_query(s);
    return n + pipe_take_all(s, out + n);
}

void slot_close(struct pgslot *s)
{
    struct pgpool *p = s->pool;
    CHECK(!s->q && s->pipe.n == 0);
    if (s->state == SLOT_IDLE)
        pool_idle_pop(p, s);
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

/* A connection attempt failed: close, retry later, and tell the pool. */
static void slot_connect_failed(struct pgslot *s, const char *why)
{
    char msg[300];
    snprintf(msg, sizeof msg, "%s", why); /* why may be the connection's own text, gone once closed */
    slot_close(s);
    if (evloop_timer_start(s->pool->loop, &s->timer, RETRY_NS) != 0)
        log_error("db slot %d: out of memory for its retry timer", s->index);
    pool_conn_failed(s->pool, msg);
}

void slot_replace(struct pgslot *s, struct pgq *timed_out, const char *msg)
{
    struct pgq *qs[PIPE_DEPTH];
    int n = slot_take_queries(s, qs);
    slot_close(s);
    slot_connect(s);
    for (int i = 0; i < n; i++) {
        if (qs[i] == timed_out)
            pool_complete(s->pool, qs[i], PGQ_TIMEOUT, NULL, msg);
        else if (timed_out)
            pool_complete(s->pool, qs[i], PGQ_UNAVAILABLE, NULL,
                          "database connection replaced: a statement before this one on it timed out");
        else
            pool_complete(s->pool, qs[i], PGQ_UNAVAILABLE, NULL, msg);
    }
}

void slot_lost(struct pgslot *s, const char *why)
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

void slot_init(struct pgslot *s, struct pgpool *p, int index, int pipelined)
{
    s->pool = p;
    s->index = index;
    s->fd = -1;
    s->timer.cb = on_slot_timer;
    s->pipelined = pipelined;
}

void slot_connect(struct pgslot *s)
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
    evloop_timer_stop(s->pool->loop, &s->timer);
    pool_conn_up(s->pool);
    if (s->pipelined && PQenterPipelineMode(s->conn)) {
        /* Its backend's pid: an operator (or a test) can find it in pg_stat_activity. */
        log_info("db slot %d: pipelined, backend pid %d", s->index, PQbackendPID(s->conn));
        slot_set_state(s, SLOT_PIPELINE);
        watch(s, EV_READ);
    } else {
        if (s->pipelined)
            log_warn("db slot %d: cannot enter pipeline mode; serving one query at a time", s->index);
        slot_idle(s);
    }
    pool_kick(s->pool);
}

/* ---- setup: the caller's steps, under the connect deadline -------------- */

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

/* Sends the first setup step from s->setup_step on (skipping empty ones),
 * or ends the setup when none is left. */
static void setup_next(struct pgslot *s)
{
    struct pgpool *p = s->pool;
    const char *name, *sql;
    for (; p->opt.setup.step && p->opt.setup.step(p->opt.setup.arg, s->setup_step, &name, &sql) == 0; s->setup_step++) {
        if (!sql)
            continue;
        if (slot_send(s, NULL, name, sql) != 0)
            slot_lost(s, PQerrorMessage(s->conn));
        return;
    }
    setup_done(s, 1, NULL);
}

/* The error text of res (or of s's connection when res is NULL), on one
 * line. */
static void result_error(const struct pgslot *s, const PGresult *res, char *err, size_t len)
{
    snprintf(err, len, "%s", res ? PQresultErrorMessage(res) : PQerrorMessage(s->conn));
    err[strcspn(err, "\n")] = '\0';
}

/* A setup step on s has all its results: the next one, or the end. */
static void setup_complete(struct pgslot *s, PGresult *res)
{
    int ok = db_result_ok(res);
    char err[300] = "";
    if (!ok)
        result_error(s, res, err, sizeof err);
    PQclear(res);
    if (!ok) {
        setup_done(s, 0, err);
        return;
    }
    s->setup_step++;
    setup_next(s);
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

/* ---- one query at a time ------------------------------------------------- */

void slot_hand_out(struct pgslot *s, struct pgq *q, PGresult *res)
{
    if (db_result_ok(res)) {
        pool_complete(s->pool, q, PGQ_OK, res, NULL);
        return;
    }
    char err[300];
    result_error(s, res, err, sizeof err);
    PQclear(res);
    pool_complete(s->pool, q, PGQ_FAILED, NULL, err);
}

/* The setup step or the query on s has all its results: hand them out. */
static void slot_complete(struct pgslot *s)
{
    PGresult *res = s->res;
    s->res = NULL;
    if (s->state == SLOT_SETUP) {
        setup_complete(s, res);
        return;
    }
    struct pgq *q = slot_take_query(s);
    /* Before the connection may go: a failure's text may be its. */
    slot_hand_out(s, q, res);
    /* Back to the pool, unless the connection is not reusable. */
    if (PQstatus(s->conn) != CONNECTION_OK || PQtransactionStatus(s->conn) != PQTRANS_IDLE) {
        slot_close(s);
        slot_connect(s);
    } else {
        slot_idle(s);
    }
    pool_kick(s->pool);
}

int slot_flush(struct pgslot *s)
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

int slot_consume(struct pgslot *s)
{
    if (!PQconsumeInput(s->conn)) {
        slot_lost(s, PQerrorMessage(s->conn));
        return -1;
    }
    return s->flushing ? slot_flush(s) : 0;
}

void slot_keep_result(struct pgslot *s, PGresult *r)
{
    if (!s->res || db_result_ok(s->res)) {
        PQclear(s->res);
        s->res = r;
    } else {
        PQclear(r);
    }
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
        slot_keep_result(s, r);
    }
}

void slot_run(struct pgslot *s, struct pgq *q)
{
    CHECK(s->state == SLOT_IDLE && !s->q);
    pool_idle_pop(s->pool, s);
    pool_set_place(q, PGQ_RUNNING);
    q->slot = s;
    s->q = q;
    if (q->cls == PGQ_LONG)
        s->pool->nlong++;
    slot_set_state(s, SLOT_BUSY);
    if (slot_send(s, q->stmt, NULL, NULL) != 0)
        slot_lost(s, PQerrorMessage(s->conn));
}

/* One that was just terminated may have sent its FATAL notice, read on an
 * earlier pass, and the close that follows may not have been seen yet: a
 * query sent now would fail though it never reached the database. Such a
 * connection is replaced here, with nothing lost, and the query waits for
 * another. With queries in flight, a close ends them all (slot_replace)
 * and this one with them. */
int slot_still_there(struct pgslot *s)
{
    if (s->pipe.n > 0 || db_conn_alive(s->conn, &s->ending))
        return 1;
    slot_lost(s, "closed by the server while idle");
    return 0;
}

void slot_drop_query(struct pgslot *s, struct pgq *q)
{
    if (s->state == SLOT_PIPELINE) {
        /* The connection stays: the answer is dropped when it comes. */
        pipe_abandon(s, q);
        return;
    }
    /* Its answer would arrive on a connection in an unknown state: close
     * it and open a new one. A failure of that is recorded for the waiting
     * queries' callbacks, which run on a later pass. */
    slot_take_query(s);
    slot_close(s);
    slot_connect(s);
}

static void on_io(struct evloop *loop, int fd, int events, void *arg)
{
    (void)loop, (void)fd;
    struct pgslot *s = arg;
    int flush_only = (events & EV_WRITE) && s->flushing && !(events & EV_READ);
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
        if (flush_only)
            slot_flush(s);
        else
            read_results(s);
        break;
    case SLOT_PIPELINE:
        if (flush_only)
            slot_flush(s);
        else
            pipe_read(s);
        break;
    case SLOT_DOWN:
        break;
    }
}
