/* Unit tests for exec_threads alone, its services (struct blocking_io)
 * fakes: an order over --max-threads ends at once (on a later pass, never
 * inside submit) with OERR_OVERLOAD and never reaches its INSERT; each
 * order gets a thread of its own (they all wait in the kitchen at once);
 * the stats count the threads and, once they ended, their cost; a cancel
 * stops threads waiting in a kitchen call, and an order submitted after it
 * is refused before its row. */
#include "clock.h"
#include "evloop.h"
#include "exec_threads.h"
#include "executor.h"
#include "harness.h"
#include "io.h"
#include "order.h"

#include <CUnit/Basic.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HANG_LIMIT_NS (5 * NS_PER_SEC)

static struct {
    pthread_mutex_t lock;
    int inserts, kitchens_waiting, released;
    int hang_expired;
    int done, want;
    struct evloop *loop;
} g = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void *fake_new(void *ctx, int index, const atomic_int *cancelling, char *err, size_t errlen)
{
    (void)ctx, (void)index, (void)err, (void)errlen;
    return (void *)cancelling; /* the context is the cancel flag */
}
static void fake_free(void *w)
{
    (void)w;
}

/* Waits (bounded) until released or cancelled, as a kitchen transfer. */
static int fake_kitchen(void *w, const struct kitchen_args *a, char *result, size_t rlen, char *msg, size_t mlen)
{
    (void)a;
    const atomic_int *cancelling = w;
    pthread_mutex_lock(&g.lock);
    g.kitchens_waiting++;
    int64_t deadline = clock_mono_ns() + HANG_LIMIT_NS;
    int cancelled = 0;
    while (!g.released && !(cancelled = atomic_load(cancelling) != 0)) {
        if (clock_mono_ns() > deadline) {
            g.hang_expired = 1;
            break;
        }
        pthread_mutex_unlock(&g.lock);
        struct timespec ts = {0, 1000000}; /* the fake's own polling, as curl's progress callback */
        nanosleep(&ts, NULL);
        pthread_mutex_lock(&g.lock);
    }
    g.kitchens_waiting--;
    pthread_mutex_unlock(&g.lock);
    if (cancelled) {
        snprintf(msg, mlen, "cancelled");
        return OERR_SHUTDOWN;
    }
    snprintf(result, rlen, "ok");
    return 0;
}

static int fake_insert(void *w, const struct order *o, double budget_ms, long timeout_ms, int64_t *id, char *msg,
                       size_t mlen)
{
    (void)w, (void)o, (void)budget_ms, (void)timeout_ms, (void)msg, (void)mlen;
    pthread_mutex_lock(&g.lock);
    *id = ++g.inserts;
    pthread_mutex_unlock(&g.lock);
    return 0;
}

static int fake_brew(void *w, const struct order *o, int step, long timeout_ms, char *result, size_t rlen, char *msg,
                     size_t mlen)
{
    (void)w, (void)o, (void)step, (void)timeout_ms, (void)msg, (void)mlen;
    snprintf(result, rlen, "Coffee ready!");
    return 0;
}

static int fake_finish(void *w, struct order *o, long timeout_ms, int *lost, char *msg, size_t mlen)
{
    (void)w, (void)o, (void)timeout_ms, (void)msg, (void)mlen;
    *lost = 0;
    return 0;
}

static const struct blocking_io fake_io = {.worker_new = fake_new,
                                           .worker_free = fake_free,
                                           .kitchen = fake_kitchen,
                                           .insert = fake_insert,
                                           .brew = fake_brew,
                                           .finish = fake_finish};

static void on_done(struct order *o, void *arg)
{
    (void)o, (void)arg;
    if (++g.done == g.want)
        evloop_stop(g.loop);
}

static void on_guard(struct evloop *loop, struct ev_timer *t)
{
    (void)t;
    evloop_stop(loop);
}

/* Runs the loop until want orders ended (or 5 s passed). */
static void run_until(int want)
{
    g.want = want;
    struct ev_timer guard = {.cb = on_guard};
    evloop_timer_start(g.loop, &guard, 5 * NS_PER_SEC);
    if (g.done < want)
        evloop_run(g.loop);
    evloop_timer_stop(g.loop, &guard);
}

/* Waits (bounded, polling) until n kitchen calls wait at once. */
static int kitchens_waiting(int n)
{
    int64_t deadline = clock_mono_ns() + HANG_LIMIT_NS;
    for (;;) {
        pthread_mutex_lock(&g.lock);
        int k = g.kitchens_waiting;
        pthread_mutex_unlock(&g.lock);
        if (k == n)
            return 1;
        if (clock_mono_ns() > deadline)
            return 0;
        struct timespec ts = {0, 1000000}; /* polling period */
        nanosleep(&ts, NULL);
    }
}

static struct exec_threads *setup(int max_threads)
{
    pthread_mutex_lock(&g.lock);
    g.inserts = g.kitchens_waiting = g.released = g.hang_expired = g.done = 0;
    pthread_mutex_unlock(&g.lock);
    g.loop = evloop_new(64);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g.loop);
    struct exec_threads_options opt = {.step_slack_ms = 1000,
                                       .db_timeout_ms = 1000,
                                       .row_budget_ms = 1000,
                                       .max_threads = max_threads,
                                       .stack_kb = 128,
                                       .join_wait_ms = 5000};
    char err[200];
    struct exec_threads *ex = exec_threads_new(g.loop, &fake_io, NULL, &opt, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ex);
    return ex;
}

static void test_max_threads(void)
{
    struct exec_threads *ex = setup(2);
    struct order *o[3];
    for (int i = 0; i < 3; i++) {
        o[i] = order_new(wf_mode_lookup("threads"), 0, on_done, NULL);
        CU_ASSERT_PTR_NOT_NULL_FATAL(o[i]);
        exec_threads_submit(ex, o[i]);
    }
    CU_ASSERT_EQUAL(g.done, 0);     /* never inside submit */
    CU_ASSERT(kitchens_waiting(2)); /* two threads, at once */
    run_until(1);                   /* the third, refused */
    CU_ASSERT_EQUAL(o[2]->status, ORDER_FAILED);
    CU_ASSERT_EQUAL(o[2]->error, OERR_OVERLOAD);
    CU_ASSERT_PTR_NOT_NULL(strstr(o[2]->errmsg, "--max-threads"));
    CU_ASSERT_EQUAL(o[2]->id, 0);
    struct executor_stats s;
    exec_threads_stats(ex, &s);
    CU_ASSERT_EQUAL(s.threads, 2);
    CU_ASSERT_EQUAL(s.threads_peak, 2);
    pthread_mutex_lock(&g.lock);
    CU_ASSERT_EQUAL(g.inserts, 2); /* the refused order never reached its row */
    g.released = 1;
    pthread_mutex_unlock(&g.lock);
    run_until(3);
    CU_ASSERT_EQUAL(o[0]->status, ORDER_DONE);
    CU_ASSERT_EQUAL(o[1]->status, ORDER_DONE);
    exec_threads_stats(ex, &s);
    CU_ASSERT_EQUAL(s.threads_peak, 2);
    CU_ASSERT(s.context_switches > 0); /* each thread slept in its kitchen call */
    CU_ASSERT_FALSE(g.hang_expired);
    CU_ASSERT_EQUAL(exec_threads_free(ex), 0);
    for (int i = 0; i < 3; i++)
        order_free(o[i]);
    evloop_free(g.loop);
}

static void test_cancel(void)
{
    struct exec_threads *ex = setup(100);
    enum { N = 20 };
    struct order *o[N + 1];
    for (int i = 0; i < N; i++) {
        o[i] = order_new(wf_mode_lookup("threads"), 0, on_done, NULL);
        CU_ASSERT_PTR_NOT_NULL_FATAL(o[i]);
        exec_threads_submit(ex, o[i]);
    }
    CU_ASSERT(kitchens_waiting(N)); /* a thread each, all waiting at once */
    exec_threads_cancel_all(ex);
    o[N] = order_new(wf_mode_lookup("threads"), 0, on_done, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o[N]);
    exec_threads_submit(ex, o[N]);
    run_until(N + 1);
    for (int i = 0; i <= N; i++) {
        CU_ASSERT_EQUAL(o[i]->status, ORDER_FAILED);
        CU_ASSERT_EQUAL(o[i]->error, OERR_SHUTDOWN);
    }
    CU_ASSERT_EQUAL(o[N]->id, 0); /* refused before its row */
    pthread_mutex_lock(&g.lock);
    CU_ASSERT_EQUAL(g.inserts, N);
    pthread_mutex_unlock(&g.lock);
    CU_ASSERT_FALSE(g.hang_expired);
    CU_ASSERT_EQUAL(exec_threads_free(ex), 0);
    for (int i = 0; i <= N; i++)
        order_free(o[i]);
    evloop_free(g.loop);
}

int main(void)
{
    static const struct harness_test tests[] = {
        {"over max_threads: OERR_OVERLOAD on a later pass, no row", test_max_threads},
        {"cancel stops every thread; later orders are refused before their row", test_cancel},
        {NULL, NULL},
    };
    return harness_main("exec_threads", NULL, NULL, tests);
}
