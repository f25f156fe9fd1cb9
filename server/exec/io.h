/* io: the async executor's I/O services, as interfaces that speak no
 * library's types: the order store (an order's row), the kitchen (a
 * step's call) and the brew (the SQL step). A completion carries an
 * order_error, an id or a result text, and a message; which database,
 * pool, protocol or thread serves it is the implementation's business
 * (store_pgpool.c: the pool; brew_on_loop.c: a blocking brew on the loop;
 * kitchen_client.c: curl on the loop; tests/unit/test_exec_async.c:
 * fakes). Another store is another implementation of these tables.
 *
 * Every implementation keeps one contract (libuv's): the caller owns the
 * request (struct io_req, usually embedded in its own state) and keeps it
 * alive until its done callback ran or it abandoned it; done runs exactly
 * once, on the loop thread, on a later pass than the call that started it
 * (never inside start or abandon), failures to start included, unless
 * abandon came first; after done or abandon the service touches the
 * request no more, and the caller may start it again. What a request
 * needs beyond io_req the service allocates, and frees before done. */
#ifndef COFFEE_IO_H
#define COFFEE_IO_H

#include "evloop.h"
#include "list.h"

#include <stdint.h>

struct order;
struct step_def;
struct executor_stats;

/* How a request ended. text and msg are borrowed for the callback only. */
struct io_result {
    int error;         /* 0, or the order_error it failed with (OERR_DB, OERR_TIMEOUT, ...) */
    int lost;          /* error: the connection it went out on was lost; it may have run or not */
    int64_t id;        /* an insert's: the row's id (0: none came back) */
    const char *text;  /* a brew's or a kitchen call's result (NULL: none came back) */
    const char *msg;   /* error: what went wrong */
    int64_t waited_ns; /* of its time, waiting for a connection */
};

struct io_req;
/* May free r, or start it again. */
typedef void (*io_done_fn)(struct io_req *r, const struct io_result *res);

struct io_req {
    io_done_fn done; /* set by the caller */
    /* private to the service that holds it */
    void *impl;
    struct list_node link; /* on an io_later while it fails later */
    int failing;
    int fail_error;
    const char *fail_msg;
};

/* The order's row. */
struct order_store {
    /* INSERTs o's row (running), its deadline budget_ms from now, within
     * timeout_ms once sent; done's id is the row's. */
    void (*insert)(void *ctx, struct io_req *r, const struct order *o, double budget_ms, long timeout_ms);
    /* Writes o's outcome and timeline to its row (o's id), within
     * timeout_ms once sent. The same values whenever it runs: starting it
     * again after a lost connection is safe. */
    void (*finish)(void *ctx, struct io_req *r, struct order *o, long timeout_ms);
    /* Withdraws r (an insert or a finish): no done will run. */
    void (*abandon)(void *ctx, struct io_req *r);
    /* Connections running a request now, for the executor's stats (NULL: 0). */
    int (*connections_busy)(void *ctx);
    void *ctx;
};

/* The brew: step (an IO_SQL step) of o, with the results of the steps it
 * comes after as its ingredients, within timeout_ms; done's text is the
 * coffee. */
struct brew_service {
    void (*start)(void *ctx, struct io_req *r, const struct order *o, int step, long timeout_ms);
    void (*abandon)(void *ctx, struct io_req *r);
    /* Once it runs, it holds the loop thread until it ends: nothing else
     * on the loop runs meanwhile, so the executor starts no step after it
     * in the recipe's table until it ended (wf_expected_ms plays it out so). */
    int holds_loop;
    /* Adds the threads and connections of its own that serve brews, and
     * what they cost, to an executor's stats (executor.h); any thread.
     * NULL: it has none (it runs on the loop, on the store's pool). */
    void (*stats)(void *ctx, struct executor_stats *add);
    void *ctx;
};

/* A kitchen call: what to call (borrowed during start only). */
struct kitchen_args {
    const struct step_def *step; /* an IO_HTTP step of the order's recipe */
    double scale;
    long timeout_ms;         /* the whole call's bound */
    const char *traceparent; /* sent with the call (NULL or "" = none) */
};
struct kitchen_service {
    void (*start)(void *ctx, struct io_req *r, const struct kitchen_args *a);
    void (*abandon)(void *ctx, struct io_req *r);
    void *ctx;
};

/* ---- for implementations: failing a request on a later pass ------------- */

/* The requests a service could not start (no memory), failed on a later
 * pass by one deferred task of the service's. Embed one in the service
 * (it must outlive the loop's passes while requests fail). */
struct io_later {
    struct evloop *loop;
    struct list_node failed;
    struct ev_task task;
    int deferred;
};
void io_later_init(struct io_later *l, struct evloop *loop);
/* r's done runs on a later pass with error and msg (static storage). */
void io_later_fail(struct io_later *l, struct io_req *r, int error, const char *msg);
/* Withdraws r if it is failing later; returns whether it was. */
int io_later_cancel(struct io_req *r);

#endif
