/* Unit tests for exec_blocking alone: its services (struct blocking_io:
 * the kitchen call and the order's statements, per worker) are fakes
 * here, so an order is driven through every outcome, a cancel, an abort
 * and the worker queue without a database or a kitchen. The fakes run on
 * the worker threads as the real ones do; one that "hangs" waits, with a
 * deadline, until the test releases it or (a kitchen transfer, which curl's
 * progress callback cuts short) the executor cancels. Counts are taken
 * under a lock and asserted after the loop ran; orders come back through
 * the loop (on_done), as in the server. */
#include "clock.h"
#include "evloop.h"
#include "exec_blocking.h"
#include "executor.h"
#include "finish_retry.h"
#include "harness.h"
#include "io.h"
#include "order.h"
#include "workflow.h"

#include <CUnit/Basic.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GUARD_NS (5 * NS_PER_SEC) /* a test whose loop still runs by then has failed */
#define HANG_LIMIT_NS (5 * NS_PER_SEC)
#define SLACK_MS 700
#define MAX_CALLS 32

enum call { C_INSERT, C_BREW, C_FINISH, C_KITCHEN, C_CALLS };

/* One test's script: everything succeeds at once unless told. */
static struct {
    int insert_error; /* 0 or an order_error */
    int64_t insert_id;
    int kitchen_error[WF_MAX_STEPS];
    int hang_kitchen[WF_MAX_STEPS]; /* until released or cancelled */
    int brew_error;
    int hang_brew;               /* until released (a query runs to its end whatever the cancel) */
    int finish_lost;             /* the first this many finishes fail with their connection lost */
    int finish_error;            /* the finishes after those fail so (0: succeed) */
    int finish_lost_too;         /* and say their connection was lost */
    const struct recipe *recipe; /* the orders' recipe (NULL: coffee) */
} script;

/* The recipe the fakes check the executor's calls against. */
static const struct recipe *recipe(void)
{
    return script.recipe ? script.recipe : &wf_coffee;
}

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct evloop *loop;
    int calls[C_CALLS];
    int step_seq[MAX_CALLS]; /* steps in the order they ran, all orders */
    int nseq;
    int64_t insert_order[MAX_CALLS]; /* which order (its scale) inserted, in order */
    long kitchen_timeout_ms[WF_MAX_STEPS];
    char kitchen_trace[WF_MAX_STEPS][TRACEPARENT_SIZE];
    int released;
    int hang_expired; /* a hang passed its deadline: the test failed */
    int bad_args;     /* a fake was called with what the executor should not pass */
    int aborts;
    int workers_made, workers_freed;
    struct ev_task hang_task; /* posted when a fake starts hanging */
    int hang_posted;
    int done_calls, want_done;
    int guard_fired;
} g;

struct fake_worker {
    int index;
    const atomic_int *cancelling;
};

static int step_index(const char *name)
{
    int i = wf_step_lookup(&wf_coffee, name);
    CU_ASSERT_FATAL(i >= 0);
    return i;
}

/* ---- the fake services (worker threads) --------------------------------- */

static void on_hang(struct evloop *loop, struct ev_task *task)
{
    (void)task;
    evloop_stop(loop);
}

/* Blocks until the test releases the hang or, when cancellable, the
 * executor cancels. Returns 1 when cancelled. Called with g.lock held. */
static int hang(const struct fake_worker *w, int cancellable)
{
    if (!g.hang_posted) {
        g.hang_posted = 1;
        evloop_post(g.loop, &g.hang_task);
    }
    int64_t deadline = clock_mono_ns() + HANG_LIMIT_NS;
    while (!g.released) {
        if (cancellable && atomic_load(w->cancelling))
            return 1;
        if (clock_mono_ns() > deadline) {
            g.hang_expired = 1;
            return 0;
        }
        /* A bounded wait: the cancel is a flag, read as curl's progress
         * callback reads it, between waits. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 2 * NS_PER_MS;
        if (ts.tv_nsec >= NS_PER_SEC) {
            ts.tv_sec++;
            ts.tv_nsec -= NS_PER_SEC;
        }
        pthread_cond_timedwait(&g.cond, &g.lock, &ts);
    }
    return 0;
}

static void *fake_worker_new(void *ctx, int index, const atomic_int *cancelling, char *err, size_t errlen)
{
    struct fake_worker *w = calloc(1, sizeof *w);
    if (!w || ctx != &g) {
        snprintf(err, errlen, "fake worker: %s", w ? "wrong context" : "out of memory");
        free(w);
        return NULL;
    }
    *w = (struct fake_worker){.index = index, .cancelling = cancelling};
    pthread_mutex_lock(&g.lock);
    g.workers_made++;
    pthread_mutex_unlock(&g.lock);
    return w;
}

static void fake_worker_free(void *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&g.lock);
    g.workers_freed++;
    pthread_mutex_unlock(&g.lock);
    free(w);
}

static void seq_add(int step)
{
    if (g.nseq < MAX_CALLS)
        g.step_seq[g.nseq++] = step;
}

static int fake_kitchen(void *arg, const struct kitchen_args *a, char *result, size_t rlen, char *msg, size_t mlen)
{
    struct fake_worker *w = arg;
    const struct recipe *r = recipe();
    int step = (int)(a->step - r->steps);
    pthread_mutex_lock(&g.lock);
    if (step < 0 || step >= r->nsteps || r->steps[step].io != IO_HTTP) {
        g.bad_args++;
        pthread_mutex_unlock(&g.lock);
        return OERR_INTERNAL;
    }
    g.calls[C_KITCHEN]++;
    seq_add(step);
    g.kitchen_timeout_ms[step] = a->timeout_ms;
    snprintf(g.kitchen_trace[step], sizeof g.kitchen_trace[step], "%s", a->traceparent ? a->traceparent : "");
    int cancelled = script.hang_kitchen[step] && hang(w, 1);
    int err = script.kitchen_error[step];
    pthread_mutex_unlock(&g.lock);
    if (cancelled) {
        snprintf(msg, mlen, "cancelled: the server is shutting down");
        return OERR_SHUTDOWN;
    }
    if (err) {
        snprintf(msg, mlen, "kitchen answered HTTP 500");
        return err;
    }
    snprintf(result, rlen, "%s done", a->step->name);
    return 0;
}

static int fake_insert(void *arg, const struct order *o, double budget_ms, long timeout_ms, int64_t *id, char *msg,
                       size_t mlen)
{
    (void)arg;
    pthread_mutex_lock(&g.lock);
    g.bad_args += !(o->recipe == recipe() && budget_ms > wf_sequential_ms(recipe(), o->scale) && timeout_ms == 1000);
    int n = g.calls[C_INSERT]++;
    if (n < MAX_CALLS)
        g.insert_order[n] = llround(o->scale * 1000);
    pthread_mutex_unlock(&g.lock);
    if (script.insert_error) {
        snprintf(msg, mlen, "the fake database says no");
        return script.insert_error;
    }
    *id = script.insert_id;
    return 0;
}

static int fake_brew(void *arg, const struct order *o, int step, long timeout_ms, char *result, size_t rlen, char *msg,
                     size_t mlen)
{
    struct fake_worker *w = arg;
    pthread_mutex_lock(&g.lock);
    g.bad_args +=
        !(recipe()->steps[step].io == IO_SQL && o->id > 0 && timeout_ms == order_step_limit_ms(o, step, SLACK_MS));
    g.calls[C_BREW]++;
    seq_add(step);
    if (script.hang_brew)
        hang(w, 0);
    pthread_mutex_unlock(&g.lock);
    if (script.brew_error) {
        snprintf(msg, mlen, "the fake database says no");
        return script.brew_error;
    }
    snprintf(result, rlen, "coffee");
    return 0;
}

static int fake_finish(void *arg, struct order *o, long timeout_ms, int *lost, char *msg, size_t mlen)
{
    (void)arg;
    pthread_mutex_lock(&g.lock);
    g.bad_args += !(o->id > 0 && timeout_ms == 1000);
    int n = g.calls[C_FINISH]++;
    pthread_mutex_unlock(&g.lock);
    if (n < script.finish_lost) {
        *lost = 1;
        snprintf(msg, mlen, "server closed the connection unexpectedly");
        return OERR_DB;
    }
    if (script.finish_error) {
        *lost = script.finish_lost_too;
        snprintf(msg, mlen, "the fake database says no");
        return script.finish_error;
    }
    return 0;
}

static void fake_abort(void *ctx)
{
    pthread_mutex_lock(&g.lock);
    g.bad_args += ctx != &g;
    g.aborts++;
    pthread_mutex_unlock(&g.lock);
}

static const struct blocking_io fake_io = {.worker_new = fake_worker_new,
                                           .worker_free = fake_worker_free,
                                           .connect = NULL,
                                           .kitchen = fake_kitchen,
                                           .insert = fake_insert,
                                           .brew = fake_brew,
                                           .finish = fake_finish,
                                           .abort = fake_abort,
                                           .ctx = &g};

/* ---- running orders ------------------------------------------------------- */

static void on_done(struct order *o, void *arg)
{
    (void)o, (void)arg;
    g.done_calls++;
    if (g.done_calls == g.want_done)
        evloop_stop(g.loop);
}

static void on_guard(struct evloop *loop, struct ev_timer *t)
{
    (void)t;
    g.guard_fired = 1;
    evloop_stop(loop);
}

static struct exec_blocking *setup(int workers)
{
    memset(&script, 0, sizeof script);
    script.insert_id = 42;
    pthread_mutex_lock(&g.lock);
    g.loop = evloop_new(64);
    memset(g.calls, 0, sizeof g.calls);
    g.nseq = g.released = g.hang_expired = g.bad_args = g.aborts = g.workers_made = g.workers_freed = g.hang_posted = 0;
    g.done_calls = g.want_done = g.guard_fired = 0;
    g.hang_task = (struct ev_task){.fn = on_hang};
    pthread_mutex_unlock(&g.lock);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g.loop);
    struct exec_blocking_options opt = {
        .step_slack_ms = SLACK_MS, .db_timeout_ms = 1000, .row_budget_ms = 1000, .workers = workers};
    char err[200];
    struct exec_blocking *ex = exec_blocking_new(g.loop, &fake_io, &opt, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ex);
    return ex;
}

static struct order *new_order(const char *mode, double scale)
{
    struct order *o = order_new(wf_mode_lookup(mode), scale, on_done, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    snprintf(o->traceparent, sizeof o->traceparent, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    return o;
}

/* Runs the loop until want orders ended, or a fake started hanging
 * (want 0), or the guard fires. */
static void run_until(int want)
{
    g.want_done = want;
    struct ev_timer guard = {.cb = on_guard};
    CU_ASSERT_EQUAL(evloop_timer_start(g.loop, &guard, GUARD_NS), 0);
    if (!want || g.done_calls < want)
        CU_ASSERT_EQUAL(evloop_run(g.loop), 0);
    evloop_timer_stop(g.loop, &guard);
    CU_ASSERT_FALSE(g.guard_fired);
}

static void release(void)
{
    pthread_mutex_lock(&g.lock);
    g.released = 1;
    pthread_cond_broadcast(&g.cond);
    pthread_mutex_unlock(&g.lock);
}

/* Frees everything; the workers are joined, their contexts freed. */
static void teardown(struct exec_blocking *ex, struct order **o, int n)
{
    release();
    exec_blocking_free(ex);
    CU_ASSERT_EQUAL(g.workers_freed, g.workers_made);
    CU_ASSERT_FALSE(g.hang_expired);
    CU_ASSERT_EQUAL(g.bad_args, 0);
    for (int i = 0; i < n; i++)
        order_free(o[i]);
    evloop_free(g.loop);
}

static int starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* ---- the tests ------------------------------------------------------------ */

static void test_all_steps_done(void)
{
    struct exec_blocking *ex = setup(2);
    CU_ASSERT_EQUAL(g.workers_made, 2);
    struct order *o = new_order("blocking", 0.01);
    exec_blocking_submit(ex, o);
    run_until(1);
    CU_ASSERT_EQUAL(o->status, ORDER_DONE);
    CU_ASSERT_EQUAL(o->id, 42);
    CU_ASSERT_EQUAL(o->failed_step, -1);
    /* One step at a time, in table order. */
    CU_ASSERT_EQUAL_FATAL(g.nseq, wf_coffee.nsteps);
    for (int i = 0; i < wf_coffee.nsteps; i++) {
        CU_ASSERT_EQUAL(g.step_seq[i], i);
        CU_ASSERT_EQUAL(o->steps[i].state, STEP_DONE);
        if (wf_coffee.steps[i].io == IO_HTTP) {
            CU_ASSERT_EQUAL(g.kitchen_timeout_ms[i], order_step_limit_ms(o, i, SLACK_MS));
            CU_ASSERT_STRING_EQUAL(g.kitchen_trace[i], o->traceparent);
        }
    }
    CU_ASSERT_STRING_EQUAL(o->steps[step_index("brew_coffee")].result, "coffee");
    CU_ASSERT_STRING_EQUAL(o->steps[step_index("toast_bread")].result, "toast_bread done");
    CU_ASSERT_EQUAL(g.calls[C_INSERT], 1);
    CU_ASSERT_EQUAL(g.calls[C_BREW], 1);
    CU_ASSERT_EQUAL(g.calls[C_FINISH], 1);
    teardown(ex, &o, 1);
}

/* An order of another recipe (gather): the runner walks o->recipe's table,
 * not coffee's: its three kitchen tasks in table order, no brew. */
static void test_other_recipe(void)
{
    struct exec_blocking *ex = setup(1);
    script.recipe = wf_recipe_builtin("gather");
    CU_ASSERT_PTR_NOT_NULL_FATAL(script.recipe);
    struct order *o = new_order("blocking", 0.01);
    o->recipe = script.recipe;
    exec_blocking_submit(ex, o);
    run_until(1);
    CU_ASSERT_EQUAL(o->status, ORDER_DONE);
    CU_ASSERT_EQUAL_FATAL(g.nseq, 3);
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL(g.step_seq[i], i);
        CU_ASSERT_EQUAL(o->steps[i].state, STEP_DONE);
        CU_ASSERT_EQUAL(g.kitchen_timeout_ms[i], order_step_limit_ms(o, i, SLACK_MS));
    }
    CU_ASSERT_STRING_EQUAL(o->steps[2].result, "C done");
    CU_ASSERT_EQUAL(g.calls[C_KITCHEN], 3);
    CU_ASSERT_EQUAL(g.calls[C_BREW], 0);
    CU_ASSERT_EQUAL(g.calls[C_FINISH], 1);
    teardown(ex, &o, 1);
}

/* The row cannot be inserted (or gives no id): nothing runs, nothing is
 * finished, and the order says why. */
static void insert_fails(int error, int64_t id, const char *msg_part)
{
    struct exec_blocking *ex = setup(1);
    script.insert_error = error;
    script.insert_id = id;
    struct order *o = new_order("blocking", 0.01);
    exec_blocking_submit(ex, o);
    run_until(1);
    CU_ASSERT_EQUAL(o->status, ORDER_FAILED);
    CU_ASSERT_EQUAL(o->error, OERR_DB);
    CU_ASSERT_TRUE(starts_with(o->errmsg, "could not record the order: "));
    CU_ASSERT_PTR_NOT_NULL(strstr(o->errmsg, msg_part));
    CU_ASSERT_EQUAL(g.nseq, 0);
    CU_ASSERT_EQUAL(g.calls[C_FINISH], 0);
    teardown(ex, &o, 1);
}
static void test_insert_fails(void)
{
    insert_fails(OERR_DB, 42, "the fake database says no");
}
static void test_insert_times_out(void)
{
    insert_fails(OERR_TIMEOUT, 42, "the fake database says no");
}
static void test_insert_no_id(void)
{
    insert_fails(0, 0, "no id returned");
}

/* A step fails: the steps after it never run, the failure is written. */
static void test_kitchen_fails(void)
{
    struct exec_blocking *ex = setup(1);
    int grind = step_index("grind_coffee_bean");
    script.kitchen_error[grind] = OERR_KITCHEN;
    struct order *o = new_order("blocking", 0.01);
    exec_blocking_submit(ex, o);
    run_until(1);
    CU_ASSERT_EQUAL(o->status, ORDER_FAILED);
    CU_ASSERT_EQUAL(o->error, OERR_KITCHEN);
    CU_ASSERT_EQUAL(o->failed_step, grind);
    CU_ASSERT_STRING_EQUAL(o->errmsg, "grind_coffee_bean: kitchen answered HTTP 500");
    CU_ASSERT_EQUAL(g.calls[C_BREW], 0);
    CU_ASSERT_EQUAL(o->steps[step_index("toast_bread")].state, STEP_PENDING);
    CU_ASSERT_EQUAL(g.calls[C_FINISH], 1);
    teardown(ex, &o, 1);
}

static void test_brew_times_out(void)
{
    struct exec_blocking *ex = setup(1);
    script.brew_error = OERR_TIMEOUT;
    struct order *o = new_order("blocking", 0.01);
    exec_blocking_submit(ex, o);
    run_until(1);
    CU_ASSERT_EQUAL(o->error, OERR_TIMEOUT);
    CU_ASSERT_EQUAL(o->failed_step, step_index("brew_coffee"));
    CU_ASSERT_STRING_EQUAL(o->errmsg, "brew_coffee: the fake database says no");
    CU_ASSERT_EQUAL(o->steps[step_index("toast_bread")].state, STEP_PENDING);
    CU_ASSERT_EQUAL(g.calls[C_FINISH], 1);
    teardown(ex, &o, 1);
}

/* The finish: sent once more only when its connection was lost, never a
 * third time, never after another failure (finish_retry.h). */
static void finish_case(int lost_first, int error, int error_lost, int want_sent, int want_status, int want_error)
{
    struct exec_blocking *ex = setup(1);
    script.finish_lost = lost_first;
    script.finish_error = error;
    script.finish_lost_too = error_lost;
    struct order *o = new_order("blocking", 0.01);
    exec_blocking_submit(ex, o);
    run_until(1);
    CU_ASSERT_EQUAL(g.calls[C_FINISH], want_sent);
    CU_ASSERT_EQUAL(o->status, want_status);
    CU_ASSERT_EQUAL(o->error, want_error);
    if (want_error == OERR_DB)
        CU_ASSERT_TRUE(starts_with(o->errmsg, "could not record the order: "));
    teardown(ex, &o, 1);
}
static void test_finish_lost_once(void)
{
    finish_case(1, 0, 0, 2, ORDER_DONE, OERR_NONE);
}
static void test_finish_lost_twice(void)
{
    finish_case(2, 0, 0, FINISH_SENDS_MAX, ORDER_FAILED, OERR_DB);
}
static void test_finish_fails(void)
{
    finish_case(0, OERR_DB, 0, 1, ORDER_FAILED, OERR_DB);
}
static void test_finish_times_out_lost(void)
{
    finish_case(0, OERR_TIMEOUT, 1, 2, ORDER_FAILED, OERR_DB);
}
static void test_finish_out_of_memory(void)
{
    finish_case(0, OERR_INTERNAL, 0, 1, ORDER_FAILED, OERR_INTERNAL);
}

/* Cancelled during a kitchen transfer: it is cut short, the steps after
 * it never run, the row is written as failed. */
static void test_cancel_during_kitchen(void)
{
    struct exec_blocking *ex = setup(1);
    int boil = step_index("boil_water");
    script.hang_kitchen[boil] = 1;
    struct order *o = new_order("blocking", 0.01);
    exec_blocking_submit(ex, o);
    run_until(0); /* boil hangs */
    CU_ASSERT_EQUAL(g.done_calls, 0);
    exec_blocking_cancel_all(ex);
    run_until(1);
    CU_ASSERT_EQUAL(o->status, ORDER_FAILED);
    CU_ASSERT_EQUAL(o->error, OERR_SHUTDOWN);
    CU_ASSERT_EQUAL(o->failed_step, boil);
    CU_ASSERT_EQUAL(g.calls[C_KITCHEN], 1);
    CU_ASSERT_EQUAL(g.calls[C_BREW], 0);
    CU_ASSERT_EQUAL(g.calls[C_FINISH], 1);
    CU_ASSERT_EQUAL(g.aborts, 0);
    teardown(ex, &o, 1);
}

/* Cancelled during the brew, which runs to its end (a query is not cut
 * short by a cancel): the order stops at its next step. */
static void test_cancel_during_brew(void)
{
    struct exec_blocking *ex = setup(1);
    script.hang_brew = 1;
    struct order *o = new_order("blocking", 0.01);
    exec_blocking_submit(ex, o);
    run_until(0);
    exec_blocking_cancel_all(ex);
    release();
    run_until(1);
    CU_ASSERT_EQUAL(o->status, ORDER_FAILED);
    CU_ASSERT_EQUAL(o->error, OERR_SHUTDOWN);
    CU_ASSERT_EQUAL(o->steps[step_index("brew_coffee")].state, STEP_DONE);
    CU_ASSERT_EQUAL(o->steps[step_index("toast_bread")].state, STEP_PENDING);
    CU_ASSERT_EQUAL(g.calls[C_FINISH], 1);
    teardown(ex, &o, 1);
}

/* Aborted: the services cut every call short, and rows are not written. */
static void test_abort_during_kitchen(void)
{
    struct exec_blocking *ex = setup(1);
    script.hang_kitchen[step_index("grind_coffee_bean")] = 1;
    struct order *o = new_order("blocking", 0.01);
    exec_blocking_submit(ex, o);
    run_until(0);
    exec_blocking_abort_all(ex);
    run_until(1);
    CU_ASSERT_EQUAL(g.aborts, 1);
    CU_ASSERT_EQUAL(o->error, OERR_SHUTDOWN);
    CU_ASSERT_EQUAL(g.calls[C_FINISH], 0);
    teardown(ex, &o, 1);
}

/* The queue: one worker, three orders. While the first holds the worker
 * the others wait, in order; a cancel ends the waiting ones at once,
 * without a row, their wait counted as queued. */
static void test_queue_cancelled(void)
{
    struct exec_blocking *ex = setup(1);
    script.hang_kitchen[step_index("boil_water")] = 1;
    struct order *o[3] = {new_order("blocking", 0.01), new_order("blocking", 0.02), new_order("blocking", 0.03)};
    for (int i = 0; i < 3; i++)
        exec_blocking_submit(ex, o[i]);
    run_until(0);
    struct executor_stats st;
    exec_blocking_stats(ex, &st);
    CU_ASSERT_EQUAL(st.workers, 1);
    CU_ASSERT_EQUAL(st.workers_busy, 1);
    CU_ASSERT_EQUAL(st.queued, 2);
    CU_ASSERT_EQUAL(st.db_connections, 1);
    exec_blocking_cancel_all(ex);
    exec_blocking_stats(ex, &st);
    CU_ASSERT_EQUAL(st.queued, 0);
    run_until(3);
    CU_ASSERT_EQUAL(g.calls[C_INSERT], 1); /* the waiting ones never got a row */
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL(o[i]->status, ORDER_FAILED);
        CU_ASSERT_EQUAL(o[i]->error, OERR_SHUTDOWN);
    }
    CU_ASSERT(o[1]->queued_ns > 0 && o[2]->queued_ns > 0);
    CU_ASSERT_EQUAL(o[1]->id, 0);
    teardown(ex, o, 3);
}

/* First in, first out; the wait for the worker is the order's queued_ms. */
static void test_queue_fifo(void)
{
    struct exec_blocking *ex = setup(1);
    script.hang_kitchen[step_index("boil_water")] = 1;
    struct order *o[3] = {new_order("blocking", 0.01), new_order("blocking", 0.02), new_order("blocking", 0.03)};
    for (int i = 0; i < 3; i++)
        exec_blocking_submit(ex, o[i]);
    run_until(0);
    release();
    run_until(3);
    CU_ASSERT_EQUAL_FATAL(g.calls[C_INSERT], 3);
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL(g.insert_order[i], (int64_t)((i + 1) * 10));
        CU_ASSERT_EQUAL(o[i]->status, ORDER_DONE);
    }
    /* Each waited until the one before it had ended its steps (and
     * written its row): its wait for the worker is its queued time. */
    for (int i = 1; i < 3; i++)
        CU_ASSERT(o[i]->arrived_ns + o[i]->queued_ns >= o[i - 1]->steps_end_ns);
    teardown(ex, o, 3);
}

int main(void)
{
    pthread_mutex_init(&g.lock, NULL);
    pthread_cond_init(&g.cond, NULL);
    static const struct harness_test tests[] = {
        {"every step done, one at a time in table order", test_all_steps_done},
        {"an order of another recipe: its own table", test_other_recipe},
        {"insert fails: nothing runs, OERR_DB", test_insert_fails},
        {"insert times out: nothing runs, OERR_DB", test_insert_times_out},
        {"insert returns no id", test_insert_no_id},
        {"a kitchen step fails: the rest never runs, the row finished", test_kitchen_fails},
        {"the brew times out", test_brew_times_out},
        {"finish lost once: sent again, the order done", test_finish_lost_once},
        {"finish lost twice: never a success, sent twice", test_finish_lost_twice},
        {"finish fails (the statement): not sent again", test_finish_fails},
        {"finish times out, its connection closed: sent again once", test_finish_times_out_lost},
        {"finish out of memory: OERR_INTERNAL, not sent again", test_finish_out_of_memory},
        {"cancel during a kitchen call: cut short, the row finished", test_cancel_during_kitchen},
        {"cancel during the brew: it ends, the next step never starts", test_cancel_during_brew},
        {"abort during a kitchen call: cut short, no row written", test_abort_during_kitchen},
        {"the queue: waiting orders end at once when cancelled", test_queue_cancelled},
        {"the queue: first in, first out, the wait is queued_ms", test_queue_fifo},
        {NULL, NULL},
    };
    return harness_main("exec_blocking", NULL, NULL, tests);
}
