/* executor: what the front and the rush know of an executor, one ops
 * table per executor (exec_blocking.c, exec_async.c), as Redis's ae.c
 * knows an event-loop backend only through its ae_api* functions.
 *
 * The front picks the executor of an order's mode (wf_modes[].exec, an
 * index into exec_executors[]) and calls it only through these functions;
 * server_main.c creates the instances and pairs each with its ops. Every
 * executor keeps the contracts below; how it runs an order (worker
 * threads, the event loop) is its own business. */
#ifndef COFFEE_EXECUTOR_H
#define COFFEE_EXECUTOR_H

#include "workflow.h"

#include <stdint.h>

struct order;

/* What an executor says of itself, sampled by /metrics and /rush. */
struct executor_stats {
    int workers;        /* threads of its own (0 when it runs on the loop) */
    int workers_busy;   /* of them, running an order */
    int queued;         /* orders waiting for one of its threads */
    int db_connections; /* database connections its orders hold now */
    /* What serving its orders has cost (the threads it runs them on and
     * the connections it holds), since it started: */
    int threads;              /* threads of its own serving orders now (the loop counts one) */
    int threads_peak;         /* the most at once */
    int64_t context_switches; /* voluntary + involuntary, of those threads (getrusage(RUSAGE_THREAD)) */
    int64_t cpu_ns;           /* user + system CPU of those threads */
    int db_connections_peak;  /* the most database connections it held (or kept open) at once */
};

/* The server's bounds an executor's row budget is made of (its flags). */
struct executor_limits {
    long step_slack_ms;      /* --step-timeout-ms: a step's bound beyond its planned time */
    long db_wait_ms;         /* --db-wait-ms: a query's wait for a pool connection */
    long db_timeout_ms;      /* --db-timeout-ms: a row's statement once sent */
    long connect_timeout_ms; /* a database connect and its setup */
};

struct executor_ops {
    const char *name; /* as GET /workflow names it: wf_exec_name() */
    /* What its stats' db_connections are, as /rush's summary says it. */
    const char *db_connections_kind;
    /* Runs o; o->on_done runs once, on the loop thread, on a later pass,
     * after the order's row was written (or could not be). Loop thread. */
    void (*submit)(void *ex, struct order *o);
    /* Fails every order it holds with OERR_SHUTDOWN: each stops at its
     * next wait, its row written as failed within the database's bounds;
     * their on_done run as usual, never inside this call. Loop thread. */
    void (*cancel_all)(void *ex);
    /* As cancel_all, and nothing is waited for any more: rows not written
     * are failed by the sweep later. Loop thread. */
    void (*abort_all)(void *ex);
    void (*stats)(void *ex, struct executor_stats *out);
    /* How long an order's row may stay running beyond the steps' planned
     * time and their slack (step_slack_ms each, which the executor adds
     * per order, for its recipe's steps), whatever the database does, when
     * this executor runs it: past it the sweep fails the row as abandoned. */
    double (*row_budget_ms)(const struct executor_limits *lim);
};

/* An executor: its ops and its instance (borrowed). */
struct executor {
    const struct executor_ops *ops;
    void *ex;
};

/* The executors' ops tables (each defined in its executor's file). */
extern const struct executor_ops exec_blocking_ops, exec_async_ops, exec_threads_ops;
/* Every executor's ops, indexed by enum exec_kind (wf_modes[].exec). */
extern const struct executor_ops *const exec_executors[EXEC_KINDS];

#endif
