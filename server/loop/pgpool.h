/* pgpool: a pool of non-blocking libpq connections driven by an evloop.
 *
 * Connections are opened with PQconnectStartParams/PQconnectPoll, queries
 * sent with PQsendQueryParams (or PQsendQueryPrepared) and read with
 * PQconsumeInput/PQisBusy/PQgetResult: nothing here ever blocks the loop.
 *
 * Two rules hold for every query, whatever happens to the database:
 *  - Every wait has a deadline. A query waits at most wait_ms for a
 *    connection (then PGQ_BUSY), runs at most timeout_ms once sent (then
 *    PGQ_TIMEOUT, and its connection, whose state is unknown, is replaced),
 *    and a connect gives up after connect_timeout_ms.
 *  - Callbacks run on a later loop turn, never inside a pgpool_* call:
 *    every outcome, failures found while submitting or abandoning included,
 *    goes through one completion queue that a deferred task drains.
 *
 * A query that finds every connection busy waits in a FIFO on the loop;
 * short statements (order bookkeeping, probes) go ahead of long ones
 * (brews), and `reserve` connections are kept from long ones, so that a
 * probe or a finished order is never held behind other orders' brews.
 * Lost connections are reopened; while the database is unreachable, a
 * query triggers a connection attempt at once and fails as soon as that
 * attempt does, so no query fails once the database answers again.
 *
 * Pipeline mode (options.pipelined connections, none by default). Without
 * it, a connection carries one query at a time: every short statement
 * costs a write, a wake-up of a backend that was asleep, and a read. A
 * pipelined connection (libpq's pipeline mode) carries up to 64 short
 * queries of many callers at once; a backend that finds several waiting
 * runs them one after another without sleeping in between, and their
 * answers come back together. Long queries (brews) never go there: a
 * backend runs one statement at a time, and everything behind a sleeping
 * brew would wait. Short queries take a pipelined connection with room
 * first (the one with the fewest in flight), then an idle plain one.
 *  - Each query is followed by its own Sync, so it is its own transaction:
 *    it commits alone, and it fails alone (an error aborts the pipeline
 *    only up to the next Sync, so PGRES_PIPELINE_ABORTED never reaches a
 *    neighbour). Its callback sees exactly what a plain connection gives.
 *  - The run bound counts from the send, so it includes the wait behind
 *    the queries ahead on the connection. When one query overruns it, the
 *    connection is replaced as for a plain one; every other query on it
 *    ends with PGQ_UNAVAILABLE and is NOT sent again: it may have run and
 *    committed already (an INSERT twice is worse than a 503).
 *  - A lost connection ends every query it carried with PGQ_UNAVAILABLE,
 *    through the completion queue as always.
 *  - pgpool_abandon of a query in flight on a pipelined connection keeps
 *    the connection: the query's place in the line stays, and its result
 *    is dropped when it arrives.
 *  - libpq 15's PQpipelineSync flushes, so each query is still one write
 *    (libpq 17's PQsendPipelineSync does not); the saving is in the
 *    backend's wake-ups and in the reads.
 *  - Pipelined connections count as kept from long queries. With one
 *    (--db-pipelines 1) the server pipelines the connection it keeps from
 *    brews anyway, so brews keep size - 1 connections; while it is being replaced,
 *    short queries take idle plain ones, and may wait for one (within
 *    their wait bound) if brews hold them all. */
#ifndef COFFEE_PGPOOL_H
#define COFFEE_PGPOOL_H

#include "evloop.h"
#include "list.h"

#include <libpq-fe.h>
#include <stdint.h>

struct db_config;
struct db_stmt;
struct pgpool;
struct pgslot;

enum pgq_status {
    PGQ_OK = 0,
    PGQ_UNAVAILABLE = -1, /* no connection could be had, or it was lost */
    PGQ_FAILED = -2,      /* the statement failed (the connection is fine) */
    PGQ_TIMEOUT = -3,     /* ran longer than its timeout; its connection was replaced */
    PGQ_BUSY = -4         /* waited longer than its wait bound for a connection */
};

enum pgq_class {
    PGQ_SHORT, /* quick bookkeeping: served first */
    PGQ_LONG   /* holds a connection for long (brew) */
};

struct pgq;
/* Called on the loop thread, on a later pass than the call that caused it,
 * once per submit unless abandoned. res is borrowed (valid during the call
 * only); NULL unless status is PGQ_OK. err describes a failure, borrowed
 * for the call (an exception to the caller-buffer convention: the text is
 * the pool's or libpq's). The callback may submit q again or free it. */
typedef void (*pgq_cb)(struct pgq *q, int status, const PGresult *res, const char *err);

/* A query: the caller owns it (usually embedded in its own state) and
 * keeps it and its statement alive until the callback ran or it called
 * pgpool_abandon(). */
struct pgq {
    const struct db_stmt *stmt;
    enum pgq_class cls;
    pgq_cb cb;
    int64_t timeout_ms; /* bound once it runs; 0 = the pool's query timeout */
    int64_t wait_ms;    /* bound on waiting for a connection; 0 = the pool's */
    int64_t waited_ns;  /* out: time spent waiting for a connection */

    /* private to the pool */
    struct pgpool *pool;
    struct list_node link; /* a wait queue, or the completion queue */
    int where;
    struct pgslot *slot;
    int64_t submitted_ns;
    struct ev_timer timer; /* the wait bound, then the run bound */
    int status;
    PGresult *res;
    char err[240];
};

/* What every new connection runs before it serves, step by step: step(arg,
 * i, ...) gives step i (from 0) as a text for the simple protocol (*name
 * NULL; *sql NULL to skip the step) or a statement to prepare as *name, and
 * returns -1 past the last. done then says whether all succeeded. Both on
 * the loop thread; the connect deadline bounds the whole setup. */
struct pgpool_setup {
    int (*step)(void *arg, int i, const char **name, const char **sql);
    void (*done)(void *arg, int ok, const char *err);
    void *arg;
};

struct pgpool_options {
    int size;                /* connections */
    int reserve;             /* connections long queries may not take */
    int pipelined;           /* connections in pipeline mode, for short queries only
                                (at most size - 1; 0 = none) */
    long connect_timeout_ms; /* a connect attempt's bound */
    long wait_timeout_ms;    /* default bound on waiting for a connection */
    long query_timeout_ms;   /* default bound on a query once sent */
    struct pgpool_setup setup;
};

struct pgpool_stats {
    int size;      /* connections configured */
    int long_max;  /* of them, how many long queries may hold at once (size - reserve) */
    int connected; /* open and usable */
    int busy;      /* running a query */
    int waiting;   /* queries waiting for a connection */
    int healthy;   /* 0 while the database is known unreachable */
};

/* Returns a new pool that starts opening its connections at once, or NULL
 * when out of memory. config is borrowed and must outlive the pool. */
struct pgpool *pgpool_new(struct evloop *loop, const struct db_config *config, const struct pgpool_options *opt);
/* Closes every connection and frees the pool; accepts NULL. Queries still
 * waiting or completed but not yet called back are dropped without a
 * callback. */
void pgpool_free(struct pgpool *p);
/* Queues q. Its callback runs on a later loop pass, never inside this
 * call, also when it fails at once. */
void pgpool_submit(struct pgpool *p, struct pgq *q);
/* Withdraws q: no callback will run, none runs inside this call. A query
 * already running costs its connection, which is closed (the server ends
 * the statement: see db.h, client_connection_check_interval) and reopened. */
void pgpool_abandon(struct pgpool *p, struct pgq *q);
void pgpool_stats(const struct pgpool *p, struct pgpool_stats *out);

#endif
