/* pgpool_int: the pool's inside, shared by its three files and by no other
 * module (as Redis' ae.c and ae_epoll.c share aeEventLoop):
 *  - pgpool.c: the wait queues, dispatch, the completion queue, the pool's
 *    life and its health;
 *  - pgpool_conn.c: one connection (a slot): connect, set up, run one query
 *    at a time, close, replace;
 *  - pgpool_pipe.c: a slot in pipeline mode, many short queries in flight.
 * docs/internals/PIPELINE.md tells why pipeline mode works as it does.
 *
 * Three state machines, each an enum with a names table and one setter
 * that can log the change: a query's place (enum pgq_place, pgpool.h;
 * pool_set_place), a slot's state (slot_set_state), and what a pipelined
 * slot reads next for its oldest query (pipe_set_read). */
#ifndef COFFEE_PGPOOL_INT_H
#define COFFEE_PGPOOL_INT_H

#include "db_conn.h"
#include "evloop.h"
#include "list.h"
#include "pgpool.h"

#include <libpq-fe.h>

#define PIPE_DEPTH 64 /* short queries in flight at once on one pipelined connection */

enum slot_state {
    SLOT_DOWN,       /* no connection; the retry timer runs */
    SLOT_CONNECTING, /* PQconnectPoll in progress; the deadline timer runs */
    SLOT_SETUP,      /* running the setup SQL (schema, session); same deadline */
    SLOT_IDLE,       /* open, nothing in flight (plain only) */
    SLOT_BUSY,       /* one query in flight (plain only); the query's own timer runs */
    SLOT_PIPELINE    /* open in pipeline mode: 0..PIPE_DEPTH short queries in flight */
};

/* What a pipelined slot waits for next about its oldest query. */
enum pipe_read {
    PIPE_READ_RESULTS, /* its result(s), until the NULL that ends them */
    PIPE_READ_SYNC     /* the PGRES_PIPELINE_SYNC of its own Sync */
};

/* A pipelined slot's queries in flight, in send order: a ring from head.
 * An entry is NULL once its query was abandoned: its results still arrive
 * in their turn and are thrown away. */
struct pgslot_pipe {
    struct pgq *ring[PIPE_DEPTH];
    int head, n;
    enum pipe_read read;
};

struct pgslot {
    struct pgpool *pool;
    int index;
    enum slot_state state;
    PGconn *conn;
    int ending; /* its backend said FATAL while idle (db_conn_watch) */
    int fd;
    int flushing;            /* PQflush said more to send: also watch WRITABLE */
    int setup_step;          /* SETUP: the step running */
    PGresult *res;           /* the result kept for the callback (PIPELINE: the oldest query's) */
    struct ev_timer timer;   /* connect and setup deadline, or retry delay */
    int pipelined;           /* opened to serve in pipeline mode */
    struct pgq *q;           /* plain, BUSY: the query in flight */
    struct pgslot_pipe pipe; /* pipelined, PIPELINE: the queries in flight */
};

struct pgpool {
    struct evloop *loop;
    const struct db_config *config;
    struct pgpool_options opt;
    struct pgslot *slots;
    int *idle; /* stack of idle slot indexes */
    int nidle;
    int nconnected;
    int nlong;      /* slots running a long query */
    int npipelined; /* slots 0..npipelined-1 are pipelined */
    int healthy;
    int nwaiting;
    struct list_node waiting[2]; /* by pgq_class, FIFO */
    struct list_node completed;  /* outcomes not yet called back */
    struct ev_task kick;         /* dispatch and deliver, after the current callback */
    int kick_pending;
};

/* ---- pgpool.c: the pool, for its slots --------------------------------- */

/* The one way a query's place changes. */
void pool_set_place(struct pgq *q, enum pgq_place next);
/* Records q's outcome (taking res) for the completion task. Never calls
 * back: this may run inside pgpool_submit or pgpool_abandon. */
void pool_complete(struct pgpool *p, struct pgq *q, int status, PGresult *res, const char *err);
/* Dispatches and delivers once the current callback has returned. */
void pool_kick(struct pgpool *p);
/* The idle stack: s became idle, or stops being idle. */
void pool_idle_push(struct pgpool *p, struct pgslot *s);
void pool_idle_pop(struct pgpool *p, struct pgslot *s);
/* A slot is open and set up: the database is reachable. */
void pool_conn_up(struct pgpool *p);
/* A connection attempt failed (the slot retries later): when none is open,
 * the database counts as unreachable, and the waiting queries fail now
 * rather than at their deadline unless another attempt is under way. */
void pool_conn_failed(struct pgpool *p, const char *why);

/* ---- pgpool_conn.c: one connection -------------------------------------- */

/* Zeroed s becomes slot index of p, down; pgpool_new connects it. */
void slot_init(struct pgslot *s, struct pgpool *p, int index, int pipelined);
/* The one way a slot's state changes. */
void slot_set_state(struct pgslot *s, enum slot_state next);
/* Starts opening a connection (down slot). */
void slot_connect(struct pgslot *s);
/* Closes the connection (stopping the watcher first) and forgets it; the
 * queries on it must have been taken off. */
void slot_close(struct pgslot *s);
/* The connection is gone (why): a setup fails as a connect attempt, and a
 * serving slot is replaced, ending the queries it carried. */
void slot_lost(struct pgslot *s, const char *why);
/* s's connection is unusable and a new one is opened at once. Its queries
 * end: timed_out (if not NULL) with PGQ_TIMEOUT and msg, every other one
 * with PGQ_UNAVAILABLE (msg, or on a timeout that its connection had to
 * go). None is sent again: it may have run and committed already. */
void slot_replace(struct pgslot *s, struct pgq *timed_out, const char *msg);
/* Takes every query off s, in send order, into out (PIPE_DEPTH entries):
 * the one of a plain slot, or those a pipelined slot carries (abandoned
 * ones left out). Returns how many. */
int slot_take_queries(struct pgslot *s, struct pgq **out);
/* Before a query goes to s: whether its backend is still there when
 * nothing is in flight (one that is gone is replaced here: 0). */
int slot_still_there(struct pgslot *s);
/* Runs q (taken off its wait queue, its run bound started) on idle plain s. */
void slot_run(struct pgslot *s, struct pgq *q);
/* Withdraws running q from its slot: a pipelined one keeps its connection,
 * a plain one is closed and reopened. */
void slot_drop_query(struct pgslot *s, struct pgq *q);
/* Sends what libpq still holds; watches WRITABLE only while it holds some.
 * 0, or -1 when the connection was lost (s has been replaced). */
int slot_flush(struct pgslot *s);
/* Reads what the socket holds into libpq and sends what libpq still
 * holds. 0, or -1 when the connection was lost (s has been replaced). */
int slot_consume(struct pgslot *s);
/* Keeps r as s's result: the last one, unless an earlier one failed (a
 * multi-statement setup reports one per statement). Takes r. */
void slot_keep_result(struct pgslot *s, PGresult *r);
/* Hands res (taken) to q's callback: PGQ_OK when it succeeded, PGQ_FAILED
 * with its message otherwise. */
void slot_hand_out(struct pgslot *s, struct pgq *q, PGresult *res);

/* ---- pgpool_pipe.c: a slot in pipeline mode ----------------------------- */

/* Runs q (taken off its wait queue, its run bound started) on pipelined s,
 * which has room. */
void pipe_run(struct pgslot *s, struct pgq *q);
/* Reads what arrived on pipelined s and hands out what is complete. */
void pipe_read(struct pgslot *s);
/* Withdraws running q from pipelined s: its entry stays, so that its
 * results are recognised and dropped when they arrive. */
void pipe_abandon(struct pgslot *s, struct pgq *q);
/* Takes every query off pipelined s into out, in send order (abandoned ones
 * left out); returns how many. */
int pipe_take_all(struct pgslot *s, struct pgq **out);

#endif
