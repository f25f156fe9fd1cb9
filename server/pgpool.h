/* pgpool: a pool of non-blocking libpq connections driven by an evloop.
 *
 * Connections are opened with PQconnectStartParams/PQconnectPoll, queries
 * sent with PQsendQueryParams and read with PQconsumeInput/PQisBusy/
 * PQgetResult: nothing here ever blocks the loop. A query that finds every
 * connection busy waits in a FIFO on the loop; short statements (order
 * bookkeeping) go ahead of long ones (brews) so that a finished order is not
 * held behind other orders' brews. Lost connections are reopened; while the
 * database is unreachable, queries fail at once instead of waiting. */
#ifndef COFFEE_PGPOOL_H
#define COFFEE_PGPOOL_H

#include "list.h"

#include <libpq-fe.h>
#include <stdint.h>

struct evloop;
struct db_config;
struct db_stmt;
struct pgpool;
struct pgslot;

enum pgq_status {
    PGQ_OK = 0,
    PGQ_UNAVAILABLE = -1, /* no connection could be had, or it was lost */
    PGQ_FAILED = -2,      /* the statement failed (the connection is fine) */
    PGQ_TIMEOUT = -3      /* ran longer than timeout_ms; its connection was reset */
};

enum pgq_class {
    PGQ_SHORT, /* quick bookkeeping: served first */
    PGQ_LONG   /* holds a connection for long (brew) */
};

struct pgq;
/* Called on the loop thread, once per submit unless abandoned. res is
 * borrowed (valid during the call only); NULL unless status is PGQ_OK.
 * err describes a failure. */
typedef void (*pgq_cb)(struct pgq *q, int status, const PGresult *res, const char *err);

/* A query: the caller owns it (usually embedded in its own state) and
 * keeps it and its statement alive until the callback ran or it called
 * pgpool_abandon(). */
struct pgq {
    const struct db_stmt *stmt;
    enum pgq_class cls;
    pgq_cb cb;
    int64_t timeout_ms; /* from when it starts running; 0 = none */
    int64_t waited_ns; /* out: time spent waiting for a connection */

    /* private to the pool */
    struct list_node link;
    int where;
    struct pgslot *slot;
    int64_t submitted_ns;
};

struct pgpool_stats {
    int size;      /* connections configured */
    int connected; /* open and usable */
    int busy;      /* running a query */
    int waiting;   /* queries waiting for a connection */
    int healthy;   /* 0 while the database is known unreachable */
};

/* Returns a new pool that starts opening size connections at once, or
 * NULL when out of memory. config is borrowed and must outlive the pool. */
struct pgpool *pgpool_new(struct evloop *loop, const struct db_config *config, int size);
/* Closes every connection and frees the pool; accepts NULL. Queries still
 * waiting are dropped without a callback. */
void pgpool_free(struct pgpool *p);
/* Queues q. Its callback runs on a later loop pass, never inside this
 * call, also when it fails at once. */
void pgpool_submit(struct pgpool *p, struct pgq *q);
/* Withdraws q: no callback will run. A query already running costs its
 * connection, which is closed and reopened (its state is unknown). */
void pgpool_abandon(struct pgpool *p, struct pgq *q);
void pgpool_stats(const struct pgpool *p, struct pgpool_stats *out);

#endif
