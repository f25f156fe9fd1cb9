/* store_pgpool: the order store and the pool's brew over a pgpool (see
 * store_pgpool.h).
 *
 * Owns: one struct pg_call per request in flight (its query and its
 * statement), allocated when the request starts and freed just before its
 * done runs or when it is abandoned. Turns the pool's outcome (a status
 * and a PGresult) into a store-neutral io_result.
 * Must never: block, or call done inside a start or abandon. */
#include "store_pgpool.h"

#include "db.h"
#include "order.h"
#include "pgpool.h"

#include <stdio.h>
#include <stdlib.h>

struct store_pgpool {
    struct pgpool *pool;
    struct io_later later;
};

enum call_kind { CALL_INSERT, CALL_BREW, CALL_FINISH };

struct pg_call {
    struct io_req *req;
    enum call_kind kind;
    struct pgq q;
    struct db_stmt st;
};

static void on_pg_done(struct pgq *q, int status, const PGresult *res, const char *err)
{
    struct pg_call *c = container_of(q, struct pg_call, q);
    struct io_req *r = c->req;
    char text[WF_RESULT_MAX], msg[sizeof q->err];
    const char *why = NULL;
    struct io_result out = {.waited_ns = q->waited_ns};
    if (status != PGQ_OK) {
        out.error = status == PGQ_TIMEOUT ? OERR_TIMEOUT : OERR_DB;
        out.lost = status == PGQ_UNAVAILABLE;
        snprintf(msg, sizeof msg, "%s", err ? err : "the database failed");
        out.msg = msg;
    } else if (c->kind == CALL_INSERT) {
        if (db_result_id(res, &out.id) != 0)
            out.id = 0;
    } else if (c->kind == CALL_BREW) {
        if (db_brew_result(res, text, sizeof text, &why) == 0)
            out.text = text;
    } else if (!db_finish_applied(res)) { /* it ran past its deadline (db.h): the row is not written */
        out.error = OERR_DB;
        out.msg = "the row's update ran past its deadline";
    }
    /* Freed before done: done may start r again. */
    db_stmt_release(&c->st);
    free(c);
    r->impl = NULL;
    r->done(r, &out);
}

/* A new call for r, or NULL (then r fails on a later pass). */
static struct pg_call *call_new(struct store_pgpool *sp, struct io_req *r, enum call_kind kind)
{
    struct pg_call *c = calloc(1, sizeof *c);
    if (!c) {
        io_later_fail(&sp->later, r, OERR_INTERNAL, "out of memory");
        return NULL;
    }
    c->req = r;
    c->kind = kind;
    r->impl = c;
    return c;
}

static void call_submit(struct store_pgpool *sp, struct pg_call *c, enum pgq_class cls, long timeout_ms)
{
    c->q = (struct pgq){.stmt = &c->st, .cls = cls, .cb = on_pg_done, .timeout_ms = timeout_ms};
    pgpool_submit(sp->pool, &c->q);
}

static void store_insert(void *ctx, struct io_req *r, const struct order *o, double budget_ms, long timeout_ms)
{
    struct pg_call *c = call_new(ctx, r, CALL_INSERT);
    if (!c)
        return;
    db_stmt_insert_order(&c->st, o, budget_ms);
    call_submit(ctx, c, PGQ_SHORT, timeout_ms);
}

static void store_finish(void *ctx, struct io_req *r, struct order *o, long timeout_ms)
{
    struct pg_call *c = call_new(ctx, r, CALL_FINISH);
    if (!c)
        return;
    if (db_stmt_finish(&c->st, o, timeout_ms) != 0) {
        free(c);
        io_later_fail(&((struct store_pgpool *)ctx)->later, r, OERR_INTERNAL, "out of memory");
        return;
    }
    call_submit(ctx, c, PGQ_SHORT, timeout_ms);
}

static void brew_start(void *ctx, struct io_req *r, const struct order *o, int step, long timeout_ms)
{
    struct pg_call *c = call_new(ctx, r, CALL_BREW);
    if (!c)
        return;
    if (db_stmt_brew(&c->st, o, step) != 0) {
        /* Cannot happen with the kitchen's short results; let the
         * database reject it so that it still ends on a later pass. */
        c->st = (struct db_stmt){.what = "brew", .sql = "SELECT brew_coffee(NULL, NULL, NULL)"};
    }
    call_submit(ctx, c, PGQ_LONG, timeout_ms);
}

static void call_abandon(void *ctx, struct io_req *r)
{
    struct store_pgpool *sp = ctx;
    struct pg_call *c = r->impl;
    if (!c) {
        io_later_cancel(r);
        return;
    }
    pgpool_abandon(sp->pool, &c->q);
    db_stmt_release(&c->st);
    free(c);
    r->impl = NULL;
}

static int connections_busy(void *ctx)
{
    struct store_pgpool *sp = ctx;
    struct pgpool_stats ps;
    pgpool_stats(sp->pool, &ps);
    return ps.busy;
}

struct store_pgpool *store_pgpool_new(struct evloop *loop, struct pgpool *pool)
{
    struct store_pgpool *sp = calloc(1, sizeof *sp);
    if (!sp)
        return NULL;
    sp->pool = pool;
    io_later_init(&sp->later, loop);
    return sp;
}

void store_pgpool_free(struct store_pgpool *sp)
{
    free(sp);
}

struct order_store store_pgpool_store(struct store_pgpool *sp)
{
    return (struct order_store){.insert = store_insert,
                                .finish = store_finish,
                                .abandon = call_abandon,
                                .connections_busy = connections_busy,
                                .ctx = sp};
}

struct brew_service store_pgpool_brew(struct store_pgpool *sp)
{
    return (struct brew_service){.start = brew_start, .abandon = call_abandon, .holds_loop = 0, .ctx = sp};
}
