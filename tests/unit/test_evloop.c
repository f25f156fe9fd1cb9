/* Unit tests for evloop: timers, deferred and posted tasks, fd watchers, timer precision. */
#define _GNU_SOURCE
#include "clock.h"
#include "evloop.h"
#include "harness.h"

#include <CUnit/Basic.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <string.h>
#include <unistd.h>

#define GUARD_NS (5 * NS_PER_SEC) /* a test whose loop is still running by then has failed */

/* What the callbacks saw; reset by new_loop(). Callbacks count, tests assert after the run. */
static struct {
    pthread_t loop_thread;
    int passes; /* before-sleep hook calls: one per loop pass */
    int guard_fired;
    int fires[4];
    int order[8], norder, pass_of[8];
    int ran_inside_call, in_timer_cb, off_thread, events;
    char byte;
    int64_t fired_ns;
    int rfd[2], wfd[2];
} g;

static void count_pass(struct evloop *loop, void *arg)
{
    (void)loop;
    (void)arg;
    g.passes++;
}

static void on_guard(struct evloop *loop, struct ev_timer *t)
{
    (void)t;
    g.guard_fired = 1;
    evloop_stop(loop);
}

static struct evloop *new_loop(void)
{
    memset(&g, 0, sizeof g);
    g.loop_thread = pthread_self();
    struct evloop *loop = evloop_new(1024);
    CU_ASSERT_PTR_NOT_NULL_FATAL(loop);
    CU_ASSERT_EQUAL(evloop_add_before_sleep(loop, count_pass, NULL), 0);
    return loop;
}

/* Runs loop until a callback stops it, failing if the guard has to. */
static void run(struct evloop *loop)
{
    struct ev_timer guard = {.cb = on_guard};
    CU_ASSERT_EQUAL(evloop_timer_start(loop, &guard, GUARD_NS), 0);
    CU_ASSERT_EQUAL(evloop_run(loop), 0);
    evloop_timer_stop(loop, &guard);
    CU_ASSERT_FALSE(g.guard_fired);
}

/* ---- timers ------------------------------------------------------------- */

static struct ev_timer timers[4];

static void on_ordered(struct evloop *loop, struct ev_timer *t)
{
    int i = (int)(t - timers);
    g.fires[i]++;
    g.order[g.norder++] = i;
    if (g.norder == 3)
        evloop_stop(loop);
}

static void test_timer_order(void)
{
    struct evloop *loop = new_loop();
    static const int delay_ms[3] = {30, 10, 20};
    for (int i = 0; i < 3; i++) {
        timers[i] = (struct ev_timer){.cb = on_ordered};
        CU_ASSERT_EQUAL(evloop_timer_start(loop, &timers[i], delay_ms[i] * NS_PER_MS), 0);
        CU_ASSERT_TRUE(evloop_timer_active(&timers[i]));
    }
    run(loop);
    CU_ASSERT_EQUAL(g.norder, 3);
    CU_ASSERT_EQUAL(g.order[0], 1);
    CU_ASSERT_EQUAL(g.order[1], 2);
    CU_ASSERT_EQUAL(g.order[2], 0);
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL(g.fires[i], 1);
        CU_ASSERT_FALSE(evloop_timer_active(&timers[i])); /* a fired timer is inactive */
    }
    evloop_free(loop);
}

/* timers[0] stops timers[1]; timers[2] ends the run; timers[3] is stopped before it. */
static void on_stopper(struct evloop *loop, struct ev_timer *t)
{
    g.fires[t - timers]++;
    evloop_timer_stop(loop, &timers[1]);
}

static void on_counted(struct evloop *loop, struct ev_timer *t)
{
    (void)loop;
    g.fires[t - timers]++;
}

static void on_stop_loop(struct evloop *loop, struct ev_timer *t)
{
    g.fires[t - timers]++;
    evloop_stop(loop);
}

static void test_stopped_timer_does_not_fire(void)
{
    struct evloop *loop = new_loop();
    struct ev_timer never_started = {.cb = on_counted};
    timers[0] = (struct ev_timer){.cb = on_stopper};
    timers[1] = timers[3] = (struct ev_timer){.cb = on_counted};
    timers[2] = (struct ev_timer){.cb = on_stop_loop};
    /* Stopped before the loop runs. */
    CU_ASSERT_EQUAL(evloop_timer_start(loop, &timers[3], 1 * NS_PER_MS), 0);
    evloop_timer_stop(loop, &timers[3]);
    CU_ASSERT_FALSE(evloop_timer_active(&timers[3]));
    evloop_timer_stop(loop, &never_started); /* a no-op */
    /* Both due in the same pass; the first stops the second. */
    CU_ASSERT_EQUAL(evloop_timer_start(loop, &timers[0], 0), 0);
    CU_ASSERT_EQUAL(evloop_timer_start(loop, &timers[1], 0), 0);
    CU_ASSERT_EQUAL(evloop_timer_start(loop, &timers[2], 15 * NS_PER_MS), 0);
    run(loop);
    CU_ASSERT_EQUAL(g.fires[0], 1);
    CU_ASSERT_EQUAL(g.fires[1], 0);
    CU_ASSERT_EQUAL(g.fires[2], 1);
    CU_ASSERT_EQUAL(g.fires[3], 0);
    evloop_free(loop);
}

static void on_restart(struct evloop *loop, struct ev_timer *t)
{
    g.pass_of[g.fires[0]++] = g.passes;
    if (g.fires[0] < 3) {
        CU_ASSERT_EQUAL(evloop_timer_start(loop, t, 0), 0);
    } else {
        evloop_stop(loop);
    }
}

static void test_timer_restart_from_callback(void)
{
    struct evloop *loop = new_loop();
    struct ev_timer t = {.cb = on_restart};
    CU_ASSERT_EQUAL(evloop_timer_start(loop, &t, 0), 0);
    run(loop);
    CU_ASSERT_EQUAL(g.fires[0], 3);
    /* Each firing in its own pass: restarting with 0 waits for the next. */
    CU_ASSERT(g.pass_of[0] >= 1);
    CU_ASSERT(g.pass_of[1] > g.pass_of[0]);
    CU_ASSERT(g.pass_of[2] > g.pass_of[1]);
    evloop_free(loop);
}

static void on_precise(struct evloop *loop, struct ev_timer *t)
{
    g.fired_ns = clock_mono_ns();
    CU_ASSERT_FALSE(evloop_timer_active(t)); /* removed before its callback runs */
    evloop_stop(loop);
}

static void test_timer_precision(void)
{
    struct evloop *loop = new_loop();
    struct ev_timer t = {.cb = on_precise};
    int64_t start = clock_mono_ns();
    CU_ASSERT_EQUAL(evloop_timer_start(loop, &t, 20 * NS_PER_MS), 0);
    run(loop);
    int64_t waited = g.fired_ns - start;
    CU_ASSERT(waited >= 20 * NS_PER_MS);
    CU_ASSERT(waited < 200 * NS_PER_MS); /* generous: a loaded 2-core machine */
    evloop_free(loop);
}

/* ---- deferred tasks ----------------------------------------------------- */

static struct ev_task tasks[3];

static void on_second_task(struct evloop *loop, struct ev_task *task)
{
    g.pass_of[1] = g.passes;
    g.order[g.norder++] = (int)(task - tasks);
    evloop_stop(loop);
}

static void on_first_task(struct evloop *loop, struct ev_task *task)
{
    g.pass_of[0] = g.passes;
    g.order[g.norder++] = (int)(task - tasks);
    tasks[1].fn = on_second_task;
    evloop_defer(loop, &tasks[1]);
    g.ran_inside_call |= g.norder != 1;
}

static void test_defer_runs_later(void)
{
    struct evloop *loop = new_loop();
    tasks[0].fn = on_first_task;
    evloop_defer(loop, &tasks[0]);
    CU_ASSERT_EQUAL(g.norder, 0); /* not inside evloop_defer */
    run(loop);
    CU_ASSERT_EQUAL(g.norder, 2);
    CU_ASSERT_EQUAL(g.order[0], 0);
    CU_ASSERT_EQUAL(g.order[1], 1);
    CU_ASSERT_FALSE(g.ran_inside_call);
    CU_ASSERT(g.pass_of[0] >= 1);
    CU_ASSERT(g.pass_of[1] > g.pass_of[0]); /* deferred from a task: a later pass */
    evloop_free(loop);
}

static void on_task_after_timer(struct evloop *loop, struct ev_task *task)
{
    g.ran_inside_call |= g.in_timer_cb;
    g.order[g.norder++] = (int)(task - tasks);
    evloop_stop(loop);
}

static void on_deferring_timer(struct evloop *loop, struct ev_timer *t)
{
    (void)t;
    g.in_timer_cb = 1;
    tasks[2].fn = on_task_after_timer;
    evloop_defer(loop, &tasks[2]);
    g.fires[0] = g.norder; /* tasks run so far, right after evloop_defer */
    g.in_timer_cb = 0;
}

static void test_defer_from_timer(void)
{
    struct evloop *loop = new_loop();
    struct ev_timer t = {.cb = on_deferring_timer};
    CU_ASSERT_EQUAL(evloop_timer_start(loop, &t, 1 * NS_PER_MS), 0);
    run(loop);
    CU_ASSERT_EQUAL(g.fires[0], 0);
    CU_ASSERT_EQUAL(g.norder, 1);
    CU_ASSERT_EQUAL(g.order[0], 2);
    CU_ASSERT_FALSE(g.ran_inside_call);
    evloop_free(loop);
}

/* ---- posted tasks ------------------------------------------------------- */

static sem_t loop_sleeping;
static struct ev_task posted[3];

static void signal_sleeping(struct evloop *loop, void *arg)
{
    (void)loop;
    int *signalled = arg;
    if (!*signalled) {
        *signalled = 1;
        sem_post(&loop_sleeping);
    }
}

static void on_posted(struct evloop *loop, struct ev_task *task)
{
    g.off_thread |= !pthread_equal(pthread_self(), g.loop_thread);
    g.order[g.norder++] = (int)(task - posted);
    if (g.norder == 3)
        evloop_stop(loop);
}

static void *poster(void *arg)
{
    struct evloop *loop = arg;
    while (sem_wait(&loop_sleeping) != 0 && errno == EINTR)
        ;
    for (int i = 0; i < 3; i++) {
        posted[i].fn = on_posted;
        evloop_post(loop, &posted[i]);
    }
    return NULL;
}

static void test_post_from_thread(void)
{
    struct evloop *loop = new_loop();
    CU_ASSERT_EQUAL_FATAL(sem_init(&loop_sleeping, 0, 0), 0);
    /* Post only once the loop is about to sleep with nothing else to do. */
    int signalled = 0;
    CU_ASSERT_EQUAL(evloop_add_before_sleep(loop, signal_sleeping, &signalled), 0);
    pthread_t th;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, poster, loop), 0);
    run(loop);
    CU_ASSERT_EQUAL(pthread_join(th, NULL), 0);
    CU_ASSERT_EQUAL(g.norder, 3);
    CU_ASSERT_FALSE(g.off_thread); /* ran on the loop thread */
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(g.order[i], i); /* in posting order */
    sem_destroy(&loop_sleeping);
    evloop_free(loop);
}

/* ---- fd watchers -------------------------------------------------------- */

static void on_readable(struct evloop *loop, int fd, int events, void *arg)
{
    g.events = events;
    g.order[g.norder++] = *(int *)arg;
    if (read(fd, &g.byte, 1) != 1)
        g.byte = 0;
    evloop_io_del(loop, fd);
    close(fd);
    evloop_stop(loop);
}

static void on_write_byte(struct evloop *loop, struct ev_timer *t)
{
    (void)loop;
    (void)t;
    g.order[g.norder++] = 0;
    CU_ASSERT_EQUAL(write(g.wfd[0], "x", 1), 1);
}

static void test_pipe_read(void)
{
    struct evloop *loop = new_loop();
    int p[2];
    CU_ASSERT_EQUAL_FATAL(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    g.wfd[0] = p[1];
    int id = 1;
    CU_ASSERT_EQUAL(evloop_io_set(loop, p[0], EV_READ, on_readable, &id), 0);
    CU_ASSERT_EQUAL(evloop_io_count(loop), 1);
    /* The byte is written by a timer, so the watcher must wait for it. */
    struct ev_timer t = {.cb = on_write_byte};
    CU_ASSERT_EQUAL(evloop_timer_start(loop, &t, 0), 0);
    run(loop);
    CU_ASSERT_EQUAL(g.norder, 2);
    CU_ASSERT_EQUAL(g.order[0], 0); /* the write ... */
    CU_ASSERT_EQUAL(g.order[1], 1); /* ... then the read callback */
    CU_ASSERT(g.events & EV_READ);
    CU_ASSERT_EQUAL(g.byte, 'x');
    CU_ASSERT_EQUAL(evloop_io_count(loop), 0);
    close(p[1]);
    evloop_free(loop);
}

/* Whichever pipe is seen first removes and closes both read ends. */
static void on_either(struct evloop *loop, int fd, int events, void *arg)
{
    (void)fd;
    (void)arg;
    g.events |= events;
    g.norder++;
    for (int i = 0; i < 2; i++) {
        evloop_io_del(loop, g.rfd[i]);
        close(g.rfd[i]);
    }
    evloop_stop(loop);
}

static void test_io_del_then_close(void)
{
    struct evloop *loop = new_loop();
    for (int i = 0; i < 2; i++) {
        int p[2];
        CU_ASSERT_EQUAL_FATAL(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
        g.rfd[i] = p[0];
        g.wfd[i] = p[1];
        CU_ASSERT_EQUAL(write(p[1], "y", 1), 1);
        CU_ASSERT_EQUAL(evloop_io_set(loop, p[0], EV_READ, on_either, NULL), 0);
    }
    CU_ASSERT_EQUAL(evloop_io_count(loop), 2);
    /* Both are ready in the same batch: the second event is stale and ignored. */
    run(loop);
    CU_ASSERT_EQUAL(g.norder, 1);
    CU_ASSERT(g.events & EV_READ);
    CU_ASSERT_EQUAL(evloop_io_count(loop), 0);
    /* Removing again, or an fd never registered, is a no-op. */
    evloop_io_del(loop, g.rfd[0]);
    evloop_io_del(loop, 1000);
    evloop_io_del(loop, -1);
    CU_ASSERT_EQUAL(evloop_io_count(loop), 0);
    CU_ASSERT_EQUAL(evloop_io_set(loop, 1024, EV_READ, on_either, NULL), -EMFILE);
    for (int i = 0; i < 2; i++)
        close(g.wfd[i]);
    evloop_free(loop);
}

/* ---- the loop-thread precondition (check.h) ------------------------------ */

static void *defer_off_thread(void *arg)
{
    static struct ev_task task;
    evloop_defer(arg, &task);
    return NULL;
}

static void *post_off_thread(void *arg)
{
    static struct ev_task task = {.fn = NULL};
    evloop_post(arg, &task);
    return NULL;
}

/* In the child: a loop made here, then called from a new thread. */
static void call_from_thread(void *(*fn)(void *))
{
    struct evloop *loop = evloop_new(16);
    pthread_t th;
    if (!loop || pthread_create(&th, NULL, fn, loop) != 0)
        return;
    pthread_join(th, NULL);
}

static void defer_from_thread(void *arg)
{
    (void)arg;
    call_from_thread(defer_off_thread);
}
static void post_from_thread(void *arg)
{
    (void)arg;
    call_from_thread(post_off_thread);
}

static void test_off_thread_aborts(void)
{
#if COFFEE_CHECKS
    CU_ASSERT_EQUAL(harness_aborts(defer_from_thread, NULL), 1);
#endif
    /* evloop_post is the cross-thread entry point: no check there. */
    CU_ASSERT_EQUAL(harness_aborts(post_from_thread, NULL), 0);
}

int main(void)
{
    static const struct harness_test tests[] = {
        {"timers fire in deadline order", test_timer_order},
        {"a stopped timer does not fire", test_stopped_timer_does_not_fire},
        {"restart with 0 from its callback waits a pass", test_timer_restart_from_callback},
        {"a 20 ms timer fires after 20 ms, well before 200", test_timer_precision},
        {"evloop_defer runs the task later", test_defer_runs_later},
        {"evloop_defer from a timer runs after it returns", test_defer_from_timer},
        {"evloop_post from a thread wakes the loop", test_post_from_thread},
        {"a pipe's read callback fires with EV_READ", test_pipe_read},
        {"evloop_io_del then close is safe", test_io_del_then_close},
        {"a loop-thread call from another thread aborts (check)", test_off_thread_aborts},
        {NULL, NULL},
    };
    return harness_main("evloop", NULL, NULL, tests);
}
