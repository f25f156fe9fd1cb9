/* brew_on_loop: the mixed mode's blocking brew on the loop (see
 * brew_on_loop.h).
 *
 * Owns: its blocking connection, and one struct loop_brew per brew
 * started, freed when its deferred task has run (an abandoned one too: it
 * then runs nothing).
 * Must never: be used for anything but the mistake it shows. Its
 * blocking calls are the only ones on the loop thread, marked loop-ok. */
#include "brew_on_loop.h"

#include "db.h"
#include "flight.h"
#include "order.h"

#include <stdlib.h>

struct brew_on_loop {
    struct db_sync db;
    struct evloop *loop;
    struct io_later later;
};

struct loop_brew {
    struct brew_on_loop *b;
    struct io_req *req; /* NULL once abandoned */
    struct ev_task task;
    struct db_stmt st;
    long timeout_ms;
    const struct order *o; /* borrowed while req is set (abandon clears it first) */
    int step;
};

/* PQexecPrepared on the loop thread. Nothing else on the loop runs until
 * it returns; that stall is what the mode shows. */
static void run_brew(struct evloop *loop, struct ev_task *task)
{
    (void)loop;
    struct loop_brew *lb = container_of(task, struct loop_brew, task);
    struct io_req *r = lb->req;
    struct brew_on_loop *b = lb->b;
    if (!r) { /* abandoned before it ran */
        db_stmt_release(&lb->st);
        free(lb);
        return;
    }
    char result[WF_RESULT_MAX], msg[260];
    const char *why = msg;
    int kind = OERR_DB;
    PGresult *res = NULL;
    /* The flight recorder names this callback, the stall it is. */
    flight_label("brew", lb->o->id, wf_modes[lb->o->mode].name, lb->o->recipe->steps[lb->step].name);
    if (db_sync_ensure(&b->db, msg, sizeof msg) == 0) /* loop-ok: mixed blocks on purpose */
        res = db_sync_run(&b->db, &lb->st, lb->timeout_ms, &kind, msg, sizeof msg); /* loop-ok: the same */
    struct io_result out = {0};
    if (!res) {
        out.error = kind;
        out.msg = why;
    } else if (db_brew_result(res, result, sizeof result, &why) == 0) {
        out.text = result;
    }
    db_stmt_release(&lb->st);
    free(lb);
    r->impl = NULL;
    r->done(r, &out);
    PQclear(res);
}

static void brew_start(void *ctx, struct io_req *r, const struct order *o, int step, long timeout_ms)
{
    struct brew_on_loop *b = ctx;
    struct loop_brew *lb = calloc(1, sizeof *lb);
    if (!lb) {
        io_later_fail(&b->later, r, OERR_INTERNAL, "out of memory");
        return;
    }
    *lb =
        (struct loop_brew){.b = b, .req = r, .task = {.fn = run_brew}, .timeout_ms = timeout_ms, .o = o, .step = step};
    if (db_stmt_brew(&lb->st, o, step) != 0) /* as the pool's brew: the database rejects it */
        lb->st = (struct db_stmt){.what = "brew", .sql = "SELECT brew_coffee(NULL, NULL, NULL)"};
    r->impl = lb;
    evloop_defer(b->loop, &lb->task);
}

static void brew_abandon(void *ctx, struct io_req *r)
{
    (void)ctx;
    struct loop_brew *lb = r->impl;
    if (!lb) {
        io_later_cancel(r);
        return;
    }
    lb->req = NULL; /* its task still runs, and frees it */
    r->impl = NULL;
}

struct brew_on_loop *brew_on_loop_new(struct evloop *loop, const struct db_config *config, struct watchdog *wd,
                                      long connect_timeout_ms)
{
    struct brew_on_loop *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->db.config = config;
    b->db.wd = wd;
    b->db.connect_timeout_ms = connect_timeout_ms;
    b->loop = loop;
    io_later_init(&b->later, loop);
    return b;
}

void brew_on_loop_free(struct brew_on_loop *b)
{
    if (!b)
        return;
    db_sync_close(&b->db);
    free(b);
}

struct brew_service brew_on_loop_service(struct brew_on_loop *b)
{
    return (struct brew_service){.start = brew_start, .abandon = brew_abandon, .holds_loop = 1, .ctx = b};
}
