/* Unit tests for exec_async alone: its I/O services (io.h: the order
 * store, the kitchen, the brews) are fakes here, so an order is driven
 * through every state and every failure without a database or a kitchen;
 * the fakes speak only io.h (no libpq). They keep the real contracts: a
 * request's done runs once, from a timer (a later loop pass), never inside
 * start/abandon, and never after abandon. As in libuv's tests, callbacks
 * only count; the tests assert the counts after the loop ran, then free
 * everything so that ASan sees leaks and late callbacks. */
#include "brew_offload.h"
#include "brew_on_loop.h"
#include "clock.h"
#include "evloop.h"
#include "exec_async.h"
#include "harness.h"
#include "io.h"
#include "order.h"
#include "store_pgpool.h"
#include "workflow.h"

#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GUARD_NS (5 * NS_PER_SEC) /* a test whose loop still runs by then has failed */
#define MAX_PENDING 32
#define HANG (-1) /* a delay: the fake never answers (until abandoned) */

/* ---- what a fake answers -------------------------------------------------- */

enum q_kind { Q_INSERT, Q_BREW, Q_FINISH, Q_KINDS };

struct db_outcome {
    int delay_ms; /* HANG = never */
    int error;    /* 0 or an order_error */
    int lost;     /* the error is a lost connection */
    int rows;     /* no error: 1 = the id or the coffee (value), 0 = none came back */
    const char *value;
};

struct kitchen_outcome {
    int delay_ms; /* HANG = never */
    int err;      /* 0 or an order_error */
    const char *result_or_msg;
};

/* One test's script: every outcome defaults to a quick success. */
static struct {
    struct db_outcome db[Q_KINDS];
    struct kitchen_outcome kitchen[WF_MAX_STEPS];
    int finish_lost;             /* the first this many finishes end lost with their connection */
    const struct recipe *recipe; /* the orders' recipe (NULL: coffee) */
} script;

/* The recipe the fakes check the executor's calls against. */
static const struct recipe *recipe(void)
{
    return script.recipe ? script.recipe : &wf_coffee;
}

/* A request a fake holds until it answers or is abandoned. */
struct pending {
    int active;
    struct io_req *r;
    int db;   /* a database request (else a kitchen call) */
    int kind; /* db: enum q_kind; else the step's index */
    struct ev_timer timer;
};

/* What the fakes and the order's callback saw; reset by setup(). */
static struct {
    struct evloop *loop;
    int in_call; /* inside an exec_async_* call, or a fake's start/abandon */
    struct pending pending[MAX_PENDING];
    int submits[Q_KINDS], db_answers[Q_KINDS], db_abandons[Q_KINDS];
    int starts[WF_MAX_STEPS], kitchen_answers[WF_MAX_STEPS], kitchen_abandons[WF_MAX_STEPS];
    long kitchen_timeout_ms[WF_MAX_STEPS];
    char kitchen_trace[WF_MAX_STEPS][TRACEPARENT_SIZE];
    int brew_after_insert; /* the brew was submitted once the row existed */
    int toast_during_brew; /* toast started while a brew was pending */
    int misuse;            /* a request submitted twice, a call inside a call, ... */
    int done_calls, done_inside_call, done_with_io_pending;
    int want_done;
    int guard_fired;
} g;

static int step_index(const char *name)
{
    for (int i = 0; i < wf_coffee.nsteps; i++)
        if (strcmp(wf_coffee.steps[i].name, name) == 0)
            return i;
    CU_FAIL_FATAL("no such step");
    return -1;
}

static int npending(void)
{
    int n = 0;
    for (int i = 0; i < MAX_PENDING; i++)
        n += g.pending[i].active;
    return n;
}

/* Registers r as pending, answered by cb after delay_ms. */
static struct pending *new_pending(struct io_req *r, int db, int kind, void (*cb)(struct evloop *, struct ev_timer *),
                                   int delay_ms)
{
    for (int i = 0; i < MAX_PENDING; i++)
        if (g.pending[i].active && g.pending[i].r == r)
            g.misuse++; /* started while still pending */
    for (int i = 0; i < MAX_PENDING; i++) {
        struct pending *p = &g.pending[i];
        if (p->active)
            continue;
        *p = (struct pending){.active = 1, .r = r, .db = db, .kind = kind, .timer = {.cb = cb}};
        if (delay_ms != HANG)
            CU_ASSERT_EQUAL(evloop_timer_start(g.loop, &p->timer, (int64_t)delay_ms * NS_PER_MS), 0);
        return p;
    }
    CU_FAIL_FATAL("raise MAX_PENDING");
    return NULL;
}

/* ---- the fake store and brews ------------------------------------------------ */

static void db_answer(struct evloop *loop, struct ev_timer *t)
{
    (void)loop;
    struct pending *p = container_of(t, struct pending, timer);
    const struct db_outcome lost = {.error = OERR_DB, .lost = 1};
    const struct db_outcome *out = &script.db[p->kind];
    p->active = 0; /* before the callback: it may start the request again */
    if (p->kind == Q_FINISH && g.db_answers[Q_FINISH] < script.finish_lost)
        out = &lost;
    g.db_answers[p->kind]++;
    struct io_result res = {.error = out->error, .lost = out->lost};
    if (out->error)
        res.msg = "the fake database says no";
    else if (out->rows && p->kind == Q_INSERT)
        res.id = strtoll(out->value, NULL, 10);
    else if (out->rows && p->kind == Q_BREW)
        res.text = out->value;
    p->r->done(p->r, &res);
}

static void db_start(void *ctx, struct io_req *r, enum q_kind k)
{
    CU_ASSERT_PTR_EQUAL(ctx, &g);
    g.in_call++;
    if (k == Q_BREW) {
        g.brew_after_insert = g.db_answers[Q_INSERT] > 0 && g.submits[Q_FINISH] == 0;
    }
    g.submits[k]++;
    new_pending(r, 1, k, db_answer, script.db[k].delay_ms);
    g.in_call--;
}

static void fake_insert(void *ctx, struct io_req *r, const struct order *o, double budget_ms, long timeout_ms)
{
    (void)o;
    CU_ASSERT(budget_ms > 0 && timeout_ms > 0);
    db_start(ctx, r, Q_INSERT);
}

static void fake_finish(void *ctx, struct io_req *r, struct order *o, long timeout_ms)
{
    (void)timeout_ms;
    CU_ASSERT(o->id > 0);
    db_start(ctx, r, Q_FINISH);
}

static void fake_brew(void *ctx, struct io_req *r, const struct order *o, int step, long timeout_ms)
{
    CU_ASSERT_EQUAL(recipe()->steps[step].io, IO_SQL);
    CU_ASSERT(o->id > 0);
    CU_ASSERT_EQUAL(timeout_ms, order_step_limit_ms(o, step, 700));
    db_start(ctx, r, Q_BREW);
}

/* Withdraws the pending answer to r, counting it in abandons[kind]; a
 * no-op for one not pending (already answered). */
static void drop_pending(const struct io_req *r, int abandons[])
{
    g.in_call++;
    for (int i = 0; i < MAX_PENDING; i++) {
        struct pending *p = &g.pending[i];
        if (p->active && p->r == r) {
            evloop_timer_stop(g.loop, &p->timer);
            p->active = 0;
            abandons[p->kind]++;
        }
    }
    g.in_call--;
}

static void fake_db_abandon(void *ctx, struct io_req *r)
{
    CU_ASSERT_PTR_EQUAL(ctx, &g);
    drop_pending(r, g.db_abandons);
}

static int brew_pending(void)
{
    for (int i = 0; i < MAX_PENDING; i++)
        if (g.pending[i].active && g.pending[i].db && g.pending[i].kind == Q_BREW)
            return 1;
    return 0;
}

/* ---- the fake kitchen ------------------------------------------------------- */

static void kitchen_answer(struct evloop *loop, struct ev_timer *t)
{
    (void)loop;
    struct pending *p = container_of(t, struct pending, timer);
    const struct kitchen_outcome *out = &script.kitchen[p->kind];
    p->active = 0;
    g.kitchen_answers[p->kind]++;
    struct io_result res = {
        .error = out->err, .text = out->err ? NULL : out->result_or_msg, .msg = out->err ? out->result_or_msg : NULL};
    p->r->done(p->r, &res);
}

static void fake_start(void *ctx, struct io_req *r, const struct kitchen_args *a)
{
    CU_ASSERT_PTR_EQUAL(ctx, &g);
    g.in_call++;
    const struct recipe *rc = recipe();
    int step = (int)(a->step - rc->steps);
    CU_ASSERT_FATAL(step >= 0 && step < rc->nsteps && rc->steps[step].io == IO_HTTP);
    if (rc == &wf_coffee && step == step_index("toast_bread") && brew_pending())
        g.toast_during_brew = 1;
    g.starts[step]++;
    g.kitchen_timeout_ms[step] = a->timeout_ms;
    snprintf(g.kitchen_trace[step], sizeof g.kitchen_trace[step], "%s", a->traceparent ? a->traceparent : "");
    new_pending(r, 0, step, kitchen_answer, script.kitchen[step].delay_ms);
    g.in_call--;
}

static void fake_kitchen_abandon(void *ctx, struct io_req *r)
{
    CU_ASSERT_PTR_EQUAL(ctx, &g);
    drop_pending(r, g.kitchen_abandons);
}

/* ---- running an order --------------------------------------------------------- */

/* The fakes as exec_async's services: the pool's brew and the one that
 * holds the loop (mixed's) are the same fake but for holds_loop. */
static struct exec_async_services fake_services(void)
{
    struct exec_async_services svc = {
        .store = {.insert = fake_insert, .finish = fake_finish, .abandon = fake_db_abandon, .ctx = &g},
        .kitchen = {.start = fake_start, .abandon = fake_kitchen_abandon, .ctx = &g},
    };
    svc.brew[BREW_POOL] = (struct brew_service){.start = fake_brew, .abandon = fake_db_abandon, .ctx = &g};
    svc.brew[BREW_ON_LOOP] = svc.brew[BREW_POOL];
    svc.brew[BREW_ON_LOOP].holds_loop = 1;
    svc.brew[BREW_OFFLOAD] = svc.brew[BREW_POOL];
    return svc;
}
static const struct exec_async_options opt = {.step_slack_ms = 700, .db_timeout_ms = 1000, .row_budget_ms = 1000};

static void on_done(struct order *o, void *arg)
{
    (void)o, (void)arg;
    g.done_calls++;
    if (g.in_call)
        g.done_inside_call++;
    /* An order is handed back only once none of its I/O is registered. */
    if (npending())
        g.done_with_io_pending++;
    if (g.done_calls == g.want_done)
        evloop_stop(g.loop);
}

static void on_guard(struct evloop *loop, struct ev_timer *t)
{
    (void)t;
    g.guard_fired = 1;
    evloop_stop(loop);
}

/* Resets what the fakes saw; every outcome a quick success. */
static struct exec_async *setup(void)
{
    memset(&g, 0, sizeof g);
    memset(&script, 0, sizeof script);
    script.db[Q_INSERT] = (struct db_outcome){.delay_ms = 2, .rows = 1, .value = "42"};
    script.db[Q_BREW] = (struct db_outcome){.delay_ms = 5, .rows = 1, .value = "coffee"};
    script.db[Q_FINISH] = (struct db_outcome){.delay_ms = 2, .rows = 0, .value = ""};
    for (int i = 0; i < wf_coffee.nsteps; i++)
        script.kitchen[i] = (struct kitchen_outcome){.delay_ms = 5, .err = 0, .result_or_msg = wf_coffee.steps[i].name};
    g.loop = evloop_new(64);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g.loop);
    struct exec_async_services svc = fake_services();
    struct exec_async *ex = exec_async_new(g.loop, &svc, &opt);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ex);
    return ex;
}

static struct order *new_order(const char *mode)
{
    struct order *o = order_new(wf_mode_lookup(mode), 0.01, on_done, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    snprintf(o->traceparent, sizeof o->traceparent, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    return o;
}

static void submit(struct exec_async *ex, struct order *o)
{
    g.in_call++;
    exec_async_submit(ex, o);
    g.in_call--;
}

/* Runs the loop until want_done orders ended (or the guard fires). */
static void run_until_done(int want_done)
{
    g.want_done = want_done;
    struct ev_timer guard = {.cb = on_guard};
    CU_ASSERT_EQUAL(evloop_timer_start(g.loop, &guard, GUARD_NS), 0);
    CU_ASSERT_EQUAL(evloop_run(g.loop), 0);
    evloop_timer_stop(g.loop, &guard);
    CU_ASSERT_FALSE(g.guard_fired);
}

/* Runs the loop for ms, whatever ends meanwhile. */
static void on_pause(struct evloop *loop, struct ev_timer *t)
{
    (void)t;
    evloop_stop(loop);
}
static void run_for(int ms)
{
    struct ev_timer t = {.cb = on_pause};
    CU_ASSERT_EQUAL(evloop_timer_start(g.loop, &t, (int64_t)ms * NS_PER_MS), 0);
    CU_ASSERT_EQUAL(evloop_run(g.loop), 0);
    evloop_timer_stop(g.loop, &t);
}

/* What every test asserts at its end: the order came back exactly once,
 * never inside the call that caused it, with nothing left registered; no
 * request was misused; then everything is freed. */
static void teardown(struct exec_async *ex, struct order *o)
{
    CU_ASSERT_EQUAL(g.done_calls, 1);
    CU_ASSERT_EQUAL(g.done_inside_call, 0);
    CU_ASSERT_EQUAL(g.done_with_io_pending, 0);
    CU_ASSERT_EQUAL(npending(), 0);
    CU_ASSERT_EQUAL(g.misuse, 0);
    CU_ASSERT_PTR_NULL(o->exec);
    run_for(20); /* nothing else may arrive late */
    CU_ASSERT_EQUAL(g.done_calls, 1);
    exec_async_free(ex);
    order_free(o);
    evloop_free(g.loop);
}

static int starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* ---- the tests ---------------------------------------------------------------- */

/* gather's lesson through the executor: A, B and C start at once (while
 * the row is inserted), end in time order (C, A, B), and the results stay
 * in the table's order. */
static void test_other_recipe(void)
{
    struct exec_async *ex = setup();
    script.recipe = wf_recipe_builtin("gather");
    CU_ASSERT_PTR_NOT_NULL_FATAL(script.recipe);
    static const int delay[] = {20, 40, 10};
    static const char *const result[] = {"A1", "B2", "C3"};
    for (int i = 0; i < 3; i++)
        script.kitchen[i] = (struct kitchen_outcome){.delay_ms = delay[i], .result_or_msg = result[i]};
    struct order *o = new_order("async");
    o->recipe = script.recipe;
    submit(ex, o);
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(g.starts[i], 1); /* all at once */
    run_until_done(1);
    CU_ASSERT_EQUAL(o->status, ORDER_DONE);
    int done[WF_MAX_STEPS];
    CU_ASSERT_EQUAL_FATAL(order_completed(o, done), 3);
    CU_ASSERT(done[0] == 2 && done[1] == 0 && done[2] == 1);
    for (int i = 0; i < 3; i++)
        CU_ASSERT_STRING_EQUAL(o->steps[i].result, result[i]);
    CU_ASSERT_EQUAL(g.submits[Q_BREW], 0);
    CU_ASSERT_EQUAL(g.submits[Q_FINISH], 1);
    teardown(ex, o);
}

static void test_all_steps_done(void)
{
    struct exec_async *ex = setup();
    struct order *o = new_order("async");
    submit(ex, o);
    /* The kitchen's steps start at once, overlapping the row's insert;
     * nothing has been answered yet. */
    CU_ASSERT_EQUAL(g.submits[Q_INSERT], 1);
    CU_ASSERT_EQUAL(g.starts[step_index("boil_water")], 1);
    CU_ASSERT_EQUAL(g.starts[step_index("grind_coffee_bean")], 1);
    CU_ASSERT_EQUAL(g.starts[step_index("toast_bread")], 0); /* after boil and grind */
    CU_ASSERT_EQUAL(g.submits[Q_BREW], 0);
    CU_ASSERT_EQUAL(g.done_calls, 0);
    run_until_done(1);
    CU_ASSERT_EQUAL(o->status, ORDER_DONE);
    CU_ASSERT_EQUAL(o->error, OERR_NONE);
    CU_ASSERT_EQUAL(o->id, 42);
    CU_ASSERT_EQUAL(o->failed_step, -1);
    for (int i = 0; i < wf_coffee.nsteps; i++) {
        CU_ASSERT_EQUAL(o->steps[i].state, STEP_DONE);
        if (wf_coffee.steps[i].io == IO_HTTP) {
            CU_ASSERT_EQUAL(g.starts[i], 1);
            CU_ASSERT_EQUAL(g.kitchen_answers[i], 1);
            CU_ASSERT_STRING_EQUAL(o->steps[i].result, wf_coffee.steps[i].name);
            CU_ASSERT_EQUAL(g.kitchen_timeout_ms[i], order_step_limit_ms(o, i, opt.step_slack_ms));
            CU_ASSERT_STRING_EQUAL(g.kitchen_trace[i], o->traceparent);
        }
    }
    CU_ASSERT_STRING_EQUAL(o->steps[step_index("brew_coffee")].result, "coffee");
    CU_ASSERT_TRUE(g.brew_after_insert);
    for (int k = 0; k < Q_KINDS; k++) {
        CU_ASSERT_EQUAL(g.submits[k], 1);
        CU_ASSERT_EQUAL(g.db_answers[k], 1);
        CU_ASSERT_EQUAL(g.db_abandons[k], 0);
    }
    teardown(ex, o);
}

/* The row cannot be inserted: the order fails with OERR_DB, its kitchen
 * calls are abandoned, no brew and no finish is sent. */
static void insert_fails(int error, int lost, int rows, const char *msg_part)
{
    struct exec_async *ex = setup();
    script.db[Q_INSERT] = (struct db_outcome){.delay_ms = 2, .error = error, .lost = lost, .rows = rows, .value = "42"};
    script.kitchen[step_index("boil_water")].delay_ms = 50;
    script.kitchen[step_index("grind_coffee_bean")].delay_ms = 50;
    struct order *o = new_order("async");
    submit(ex, o);
    run_until_done(1);
    CU_ASSERT_EQUAL(o->status, ORDER_FAILED);
    CU_ASSERT_EQUAL(o->error, OERR_DB);
    CU_ASSERT_EQUAL(o->failed_step, -1);
    CU_ASSERT_TRUE(starts_with(o->errmsg, "could not record the order: "));
    CU_ASSERT_PTR_NOT_NULL(strstr(o->errmsg, msg_part));
    CU_ASSERT_EQUAL(g.kitchen_abandons[step_index("boil_water")], 1);
    CU_ASSERT_EQUAL(g.kitchen_abandons[step_index("grind_coffee_bean")], 1);
    CU_ASSERT_EQUAL(o->steps[step_index("boil_water")].state, STEP_ABANDONED);
    CU_ASSERT_EQUAL(o->steps[step_index("brew_coffee")].state, STEP_PENDING);
    CU_ASSERT_EQUAL(g.submits[Q_BREW], 0);
    CU_ASSERT_EQUAL(g.submits[Q_FINISH], 0);
    teardown(ex, o);
}

/* The pool's outcomes as store_pgpool hands them on: a failed statement
 * and a wait for a connection past its bound are OERR_DB, a run past its
 * bound OERR_TIMEOUT, a lost connection OERR_DB and lost; every one fails
 * the order with OERR_DB (its row could not be written). */
static void test_insert_fails(void)
{
    insert_fails(OERR_DB, 0, 1, "the fake database says no");
}
static void test_insert_busy(void)
{
    insert_fails(OERR_DB, 0, 0, "the fake database says no");
}
static void test_insert_timeout(void)
{
    insert_fails(OERR_TIMEOUT, 0, 1, "the fake database says no");
}
static void test_insert_unavailable(void)
{
    insert_fails(OERR_DB, 1, 1, "the fake database says no");
}
static void test_insert_no_id(void)
{
    insert_fails(0, 0, 0, "no id returned");
}

/* A kitchen step fails (or times out) after the row exists: the order
 * fails with the step's error, the other call in flight is abandoned, the
 * brew is never sent, and the row is finished as failed. */
static void kitchen_fails(int err, const char *msg)
{
    struct exec_async *ex = setup();
    int grind = step_index("grind_coffee_bean"), boil = step_index("boil_water");
    script.kitchen[grind] = (struct kitchen_outcome){.delay_ms = 10, .err = err, .result_or_msg = msg};
    script.kitchen[boil].delay_ms = 100;
    struct order *o = new_order("async");
    submit(ex, o);
    run_until_done(1);
    CU_ASSERT_EQUAL(o->status, ORDER_FAILED);
    CU_ASSERT_EQUAL(o->error, err);
    CU_ASSERT_EQUAL(o->failed_step, grind);
    char want[200];
    snprintf(want, sizeof want, "grind_coffee_bean: %s", msg);
    CU_ASSERT_STRING_EQUAL(o->errmsg, want);
    CU_ASSERT_EQUAL(o->steps[grind].state, STEP_FAILED);
    CU_ASSERT_EQUAL(o->steps[boil].state, STEP_ABANDONED);
    CU_ASSERT_EQUAL(g.kitchen_abandons[boil], 1);
    CU_ASSERT_EQUAL(g.kitchen_answers[boil], 0);
    CU_ASSERT_EQUAL(g.starts[step_index("toast_bread")], 0);
    CU_ASSERT_EQUAL(g.submits[Q_BREW], 0);
    CU_ASSERT_EQUAL(g.submits[Q_FINISH], 1); /* the failure is recorded */
    CU_ASSERT_EQUAL(g.db_answers[Q_FINISH], 1);
    teardown(ex, o);
}

static void test_kitchen_fails(void)
{
    kitchen_fails(OERR_KITCHEN, "kitchen answered HTTP 500");
}
static void test_kitchen_times_out(void)
{
    kitchen_fails(OERR_TIMEOUT, "kitchen did not answer in time");
}

/* Every kitchen step fails while the row is still being inserted: the
 * insert's answer, not the failure, finishes the order. */
static void test_kitchen_fails_before_row(void)
{
    struct exec_async *ex = setup();
    script.db[Q_INSERT].delay_ms = 40;
    int boil = step_index("boil_water");
    script.kitchen[boil] = (struct kitchen_outcome){.delay_ms = 2, .err = OERR_KITCHEN, .result_or_msg = "down"};
    struct order *o = new_order("async");
    submit(ex, o);
    run_for(20);
    CU_ASSERT_EQUAL(g.done_calls, 0);
    CU_ASSERT_EQUAL(g.submits[Q_FINISH], 0); /* no id yet to finish */
    run_until_done(1);
    CU_ASSERT_EQUAL(o->error, OERR_KITCHEN);
    CU_ASSERT_EQUAL(o->failed_step, boil);
    CU_ASSERT_EQUAL(g.submits[Q_FINISH], 1);
    CU_ASSERT_EQUAL(g.kitchen_abandons[step_index("grind_coffee_bean")], 1);
    teardown(ex, o);
}

/* The brew fails: no row from brew_coffee, a timeout, no connection. */
static void brew_fails(int error, int rows, int want_error, const char *want_msg)
{
    struct exec_async *ex = setup();
    script.db[Q_BREW] = (struct db_outcome){.delay_ms = 5, .error = error, .rows = rows, .value = "coffee"};
    script.kitchen[step_index("toast_bread")].delay_ms = 100;
    struct order *o = new_order("async");
    submit(ex, o);
    run_until_done(1);
    int brew = step_index("brew_coffee");
    CU_ASSERT_EQUAL(o->status, ORDER_FAILED);
    CU_ASSERT_EQUAL(o->error, want_error);
    CU_ASSERT_EQUAL(o->failed_step, brew);
    CU_ASSERT_STRING_EQUAL(o->errmsg, want_msg);
    CU_ASSERT_EQUAL(o->steps[brew].state, STEP_FAILED);
    CU_ASSERT_EQUAL(o->steps[step_index("toast_bread")].state, STEP_ABANDONED);
    CU_ASSERT_EQUAL(g.kitchen_abandons[step_index("toast_bread")], 1);
    CU_ASSERT_EQUAL(g.submits[Q_FINISH], 1);
    teardown(ex, o);
}

static void test_brew_no_row(void)
{
    brew_fails(0, 0, OERR_DB, "brew_coffee: brew returned no row");
}
static void test_brew_timeout(void)
{
    brew_fails(OERR_TIMEOUT, 0, OERR_TIMEOUT, "brew_coffee: the fake database says no");
}
static void test_brew_busy(void)
{
    brew_fails(OERR_DB, 0, OERR_DB, "brew_coffee: the fake database says no");
}

/* Every step done, but the outcome cannot be written: never a success.
 * Lost with its connection, the UPDATE goes out once more (it sets the
 * same values whenever it runs), not again and again; any other failure
 * (a timeout, an error) is not resent. */
static void finish_fails(int error, int lost, int want_submits)
{
    struct exec_async *ex = setup();
    script.db[Q_FINISH].error = error;
    script.db[Q_FINISH].lost = lost;
    struct order *o = new_order("async");
    submit(ex, o);
    run_until_done(1);
    CU_ASSERT_EQUAL(g.submits[Q_FINISH], want_submits);
    CU_ASSERT_EQUAL(o->status, ORDER_FAILED);
    CU_ASSERT_EQUAL(o->error, OERR_DB);
    CU_ASSERT_EQUAL(o->failed_step, -1);
    CU_ASSERT_TRUE(starts_with(o->errmsg, "could not record the order: "));
    for (int i = 0; i < wf_coffee.nsteps; i++)
        CU_ASSERT_EQUAL(o->steps[i].state, STEP_DONE);
    teardown(ex, o);
}
static void test_finish_fails(void)
{
    finish_fails(OERR_DB, 1, 2);
}
static void test_finish_times_out(void)
{
    finish_fails(OERR_TIMEOUT, 0, 1);
}
static void test_finish_statement_fails(void)
{
    finish_fails(OERR_DB, 0, 1);
}

/* The finish's connection is lost once (a terminated backend): sent
 * again, it writes the row, and the order is done. */
static void test_finish_lost_once(void)
{
    struct exec_async *ex = setup();
    script.finish_lost = 1;
    struct order *o = new_order("async");
    submit(ex, o);
    run_until_done(1);
    CU_ASSERT_EQUAL(g.submits[Q_FINISH], 2);
    CU_ASSERT_EQUAL(g.db_answers[Q_FINISH], 2);
    CU_ASSERT_EQUAL(o->status, ORDER_DONE);
    CU_ASSERT_EQUAL(g.done_calls, 1);
    teardown(ex, o);
}

/* naive (ignore_deps): every kitchen step starts at once; the brew still
 * waits for the row (it needs the id), and then gets no ingredients. */
static void test_naive_starts_everything(void)
{
    struct exec_async *ex = setup();
    struct order *o = new_order("naive");
    submit(ex, o);
    for (int i = 0; i < wf_coffee.nsteps; i++)
        CU_ASSERT_EQUAL(g.starts[i], wf_coffee.steps[i].io == IO_HTTP ? 1 : 0);
    CU_ASSERT_EQUAL(g.submits[Q_BREW], 0);
    run_until_done(1);
    CU_ASSERT_EQUAL(g.submits[Q_BREW], 1);
    CU_ASSERT_EQUAL(o->status, ORDER_DONE);
    teardown(ex, o);
}

/* A brew service that holds the loop (mixed's): the steps after the brew
 * in the table (toast) start only once it ended, as wf_expected_ms plays
 * it out; with the pool's brew, toast overlaps the brew. */
static void brew_holding_loop(const char *mode, int want_toast_during_brew)
{
    struct exec_async *ex = setup();
    struct order *o = new_order(mode);
    submit(ex, o);
    run_until_done(1);
    CU_ASSERT_EQUAL(o->status, ORDER_DONE);
    CU_ASSERT_EQUAL(g.submits[Q_BREW], 1);
    CU_ASSERT_EQUAL(g.starts[step_index("toast_bread")], 1);
    CU_ASSERT_EQUAL(g.toast_during_brew, want_toast_during_brew);
    int brew = step_index("brew_coffee"), toast = step_index("toast_bread");
    if (want_toast_during_brew) {
        CU_ASSERT(o->steps[toast].start_ns < o->steps[brew].end_ns);
    } else {
        CU_ASSERT(o->steps[toast].start_ns >= o->steps[brew].end_ns);
    }
    teardown(ex, o);
}
static void test_mixed_toast_after_brew(void)
{
    brew_holding_loop("mixed", 0);
}
static void test_async_toast_during_brew(void)
{
    brew_holding_loop("async", 1);
}

/* A mode whose brew kind has no service: the executor is not made. */
static void test_missing_brew_service(void)
{
    struct evloop *loop = evloop_new(16);
    CU_ASSERT_PTR_NOT_NULL_FATAL(loop);
    struct exec_async_services svc = fake_services();
    svc.brew[BREW_ON_LOOP] = (struct brew_service){0};
    CU_ASSERT_PTR_NULL(exec_async_new(loop, &svc, &opt));
    svc = fake_services();
    struct exec_async *ex = exec_async_new(loop, &svc, &opt);
    CU_ASSERT_PTR_NOT_NULL(ex);
    exec_async_free(ex);
    evloop_free(loop);
}

/* The real brew services say what the mode table says of their kind:
 * only BREW_ON_LOOP's holds the loop (wf_mode_blocks_loop, which GET
 * /workflow serves and wf_expected_ms plays out). Neither connects here. */
static void test_real_brews_agree(void)
{
    struct evloop *loop = evloop_new(16);
    struct store_pgpool *sp = store_pgpool_new(loop, NULL);
    struct brew_on_loop *bl = brew_on_loop_new(loop, NULL, NULL, 1000);
    char err[200];
    struct brew_offload *bo = brew_offload_new(loop, NULL, NULL, 1000, 1, err, sizeof err);
    CU_ASSERT_FATAL(loop && sp && bl && bo);
    CU_ASSERT_FALSE(store_pgpool_brew(sp).holds_loop);
    CU_ASSERT_TRUE(brew_on_loop_service(bl).holds_loop);
    CU_ASSERT_FALSE(brew_offload_service(bo).holds_loop); /* offload: the loop runs on */
    CU_ASSERT_FALSE(wf_mode_blocks_loop(&wf_modes[wf_mode_lookup("offload")]));
    for (int m = 0; m < wf_nmodes; m++)
        if (wf_modes[m].exec == EXEC_ASYNC)
            CU_ASSERT_EQUAL(wf_mode_blocks_loop(&wf_modes[m]), wf_modes[m].brew == BREW_ON_LOOP);
    CU_ASSERT_TRUE(wf_mode_blocks_loop(&wf_modes[wf_mode_lookup("mixed")]));
    CU_ASSERT_FALSE(wf_mode_blocks_loop(&wf_modes[wf_mode_lookup("async")]));
    brew_on_loop_free(bl);
    brew_offload_free(bo);
    store_pgpool_free(sp);
    evloop_free(loop);
}

static void cancel_all(struct exec_async *ex)
{
    g.in_call++;
    exec_async_cancel_all(ex);
    g.in_call--;
}

static void abort_all(struct exec_async *ex)
{
    g.in_call++;
    exec_async_abort_all(ex);
    g.in_call--;
}

/* Cancelled while the row is being inserted: the kitchen calls are
 * abandoned at once; once the insert answers, the row is finished failed. */
static void test_cancel_while_starting(void)
{
    struct exec_async *ex = setup();
    script.db[Q_INSERT].delay_ms = 30;
    script.kitchen[step_index("boil_water")].delay_ms = HANG;
    script.kitchen[step_index("grind_coffee_bean")].delay_ms = HANG;
    struct order *o = new_order("async");
    submit(ex, o);
    run_for(10);
    cancel_all(ex);
    CU_ASSERT_EQUAL(g.done_calls, 0);
    CU_ASSERT_EQUAL(g.kitchen_abandons[step_index("boil_water")], 1);
    CU_ASSERT_EQUAL(g.kitchen_abandons[step_index("grind_coffee_bean")], 1);
    CU_ASSERT_EQUAL(g.db_abandons[Q_INSERT], 0); /* the row is still wanted */
    run_until_done(1);
    CU_ASSERT_EQUAL(o->status, ORDER_FAILED);
    CU_ASSERT_EQUAL(o->error, OERR_SHUTDOWN);
    CU_ASSERT_EQUAL(o->failed_step, -1);
    CU_ASSERT_EQUAL(o->steps[step_index("boil_water")].state, STEP_ABANDONED);
    CU_ASSERT_EQUAL(g.submits[Q_BREW], 0);
    CU_ASSERT_EQUAL(g.submits[Q_FINISH], 1);
    CU_ASSERT_EQUAL(g.db_answers[Q_FINISH], 1);
    teardown(ex, o);
}

/* Cancelled while the brew runs: it is abandoned, the row finished failed. */
static void test_cancel_during_steps(void)
{
    struct exec_async *ex = setup();
    script.db[Q_BREW].delay_ms = HANG;
    script.kitchen[step_index("toast_bread")].delay_ms = HANG;
    struct order *o = new_order("async");
    submit(ex, o);
    run_for(30); /* boil, grind done; brew and toast in flight */
    CU_ASSERT_EQUAL(g.submits[Q_BREW], 1);
    cancel_all(ex);
    CU_ASSERT_EQUAL(g.done_calls, 0);
    CU_ASSERT_EQUAL(g.db_abandons[Q_BREW], 1);
    CU_ASSERT_EQUAL(g.kitchen_abandons[step_index("toast_bread")], 1);
    run_until_done(1);
    CU_ASSERT_EQUAL(o->error, OERR_SHUTDOWN);
    CU_ASSERT_EQUAL(o->steps[step_index("brew_coffee")].state, STEP_ABANDONED);
    CU_ASSERT_EQUAL(o->steps[step_index("boil_water")].state, STEP_DONE);
    CU_ASSERT_EQUAL(g.submits[Q_FINISH], 1);
    teardown(ex, o);
}

/* Cancelled while its outcome is being written: it ends as it would have. */
static void test_cancel_while_finishing(void)
{
    struct exec_async *ex = setup();
    script.db[Q_FINISH].delay_ms = 40;
    struct order *o = new_order("async");
    submit(ex, o);
    run_for(30);
    CU_ASSERT_EQUAL(g.submits[Q_FINISH], 1);
    cancel_all(ex);
    run_until_done(1);
    CU_ASSERT_EQUAL(o->status, ORDER_DONE);
    CU_ASSERT_EQUAL(g.db_abandons[Q_FINISH], 0);
    teardown(ex, o);
}

/* Aborted (the shutdown that cannot wait): every request is abandoned,
 * the row's included, and the order ends on a later pass. */
static void abort_at(int insert_ms, int finish_ms, int run_ms, enum q_kind abandoned)
{
    struct exec_async *ex = setup();
    script.db[Q_INSERT].delay_ms = insert_ms;
    script.db[Q_FINISH].delay_ms = finish_ms;
    struct order *o = new_order("async");
    submit(ex, o);
    run_for(run_ms);
    CU_ASSERT_EQUAL(g.done_calls, 0);
    abort_all(ex);
    CU_ASSERT_EQUAL(g.done_calls, 0);
    CU_ASSERT_EQUAL(npending(), 0);
    CU_ASSERT_EQUAL(g.db_abandons[abandoned], 1);
    run_until_done(1);
    CU_ASSERT_EQUAL(o->status, ORDER_FAILED);
    CU_ASSERT_EQUAL(o->error, OERR_SHUTDOWN);
    teardown(ex, o);
}

static void test_abort_while_starting(void)
{
    abort_at(HANG, 2, 10, Q_INSERT);
}
static void test_abort_while_finishing(void)
{
    abort_at(2, HANG, 40, Q_FINISH);
}

/* Two orders, one failing, one not: outcomes do not leak across orders. */
static void test_two_orders_apart(void)
{
    struct exec_async *ex = setup();
    struct order *a = new_order("async"), *b = new_order("async");
    submit(ex, a);
    submit(ex, b);
    run_until_done(2);
    CU_ASSERT_EQUAL(g.done_calls, 2);
    CU_ASSERT_EQUAL(a->status, ORDER_DONE);
    CU_ASSERT_EQUAL(b->status, ORDER_DONE);
    CU_ASSERT_EQUAL(g.submits[Q_FINISH], 2);
    CU_ASSERT_EQUAL(g.done_inside_call, 0);
    CU_ASSERT_EQUAL(npending(), 0);
    exec_async_free(ex);
    order_free(a);
    order_free(b);
    evloop_free(g.loop);
}

int main(void)
{
    static const struct harness_test tests[] = {
        {"an order of another recipe: its own table, ends in time order", test_other_recipe},
        {"every step done: the order is done, each callback once", test_all_steps_done},
        {"insert fails: OERR_DB, kitchen calls abandoned", test_insert_fails},
        {"insert waits too long for a connection (busy)", test_insert_busy},
        {"insert times out", test_insert_timeout},
        {"insert finds the database unavailable", test_insert_unavailable},
        {"insert returns no id", test_insert_no_id},
        {"a kitchen step fails: 502's error, the row finished", test_kitchen_fails},
        {"a kitchen step times out: 504's error", test_kitchen_times_out},
        {"a kitchen step fails before the row exists", test_kitchen_fails_before_row},
        {"brew returns no row", test_brew_no_row},
        {"brew times out", test_brew_timeout},
        {"brew waits too long for a connection", test_brew_busy},
        {"finish lost with its connection twice: never a success, sent twice", test_finish_fails},
        {"finish times out: never a success, not sent again", test_finish_times_out},
        {"finish fails (the statement, not the connection): not sent again", test_finish_statement_fails},
        {"finish lost with its connection once: sent again, the order done", test_finish_lost_once},
        {"naive starts every kitchen step at once", test_naive_starts_everything},
        {"mixed: a brew that holds the loop, toast after it", test_mixed_toast_after_brew},
        {"async: the pool's brew, toast overlapping it", test_async_toast_during_brew},
        {"a mode's brew kind without a service: no executor", test_missing_brew_service},
        {"the real brews hold the loop as the mode table says", test_real_brews_agree},
        {"cancel while the row is inserted", test_cancel_while_starting},
        {"cancel while the brew runs", test_cancel_during_steps},
        {"cancel while the outcome is written", test_cancel_while_finishing},
        {"abort while the row is inserted", test_abort_while_starting},
        {"abort while the outcome is written", test_abort_while_finishing},
        {"two orders at once stay apart", test_two_orders_apart},
        {NULL, NULL},
    };
    return harness_main("exec_async", NULL, NULL, tests);
}
