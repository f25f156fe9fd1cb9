/* evloop: single-threaded epoll loop. See evloop.h for the contract.
 *
 * Owns: the epoll fd, one timerfd (earliest timer deadline), one eventfd
 * (wake-up for evloop_post), an optional signalfd, the fd table and the
 * timer heap. It never owns the watched fds or the timer/task memory.
 * Must never: block anywhere but in epoll_wait, or call a callback from
 * inside the function that registered it.
 * Checks (check.h): every function the header says is for the loop thread
 * CHECKs that it runs there (ON_LOOP).
 * Timing (flight.h): every callback is timed with the monotonic clock (two
 * reads, tens of ns); one that held the loop for FLIGHT_SLICE_MIN_NS or
 * --stall-ms goes to the flight recorder (TIMED/timed_end). */
#define _GNU_SOURCE
#include "evloop.h"

#include "check.h"
#include "clock.h"
#include "flight.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define MAX_EVENTS 256
#define MAX_HOOKS 4

struct io_slot {
    int mask; /* EV_READ|EV_WRITE currently asked for; -1 = not registered */
    evloop_io_cb cb;
    void *arg;
};

struct hook {
    void (*fn)(struct evloop *, void *);
    void *arg;
};

struct evloop {
    int epfd;
    int timerfd;
    int wakefd;
    int sigfd;
    int max_fds;
    struct io_slot *slots; /* indexed by fd */
    int nregistered;

    struct ev_timer **heap; /* min-heap on (deadline, seq) */
    size_t heap_len, heap_cap;
    uint64_t timer_seq;
    int64_t armed_ns; /* deadline the timerfd is armed for; INT64_MAX = off */

    struct ev_task *defer_head, *defer_tail; /* loop thread only */

    pthread_mutex_t inbox_lock; /* guards inbox_* */
    struct ev_task *inbox_head, *inbox_tail;

    struct hook hooks[MAX_HOOKS];
    int nhooks;

    void (*sig_cb)(struct evloop *, int, void *);
    void *sig_arg;

    atomic_int stopping;
    int64_t timed_min_ns; /* callbacks this long go to the flight recorder */
    int64_t busy_ns;      /* time spent in callbacks, all told */
    uint64_t callbacks;   /* callbacks run, all told */
    pthread_t owner;      /* the loop thread: the one that made the loop */
};

static int count_waiting(void *arg);

/* Times one callback: TIMED(loop, kind, fd, call) runs call and hands the
 * flight recorder what took long (flight_loop_callback). */
static inline void timed_end(struct evloop *loop, const char *kind, int fd, int64_t t0)
{
    int64_t t1 = clock_mono_ns();
    loop->busy_ns += t1 - t0;
    loop->callbacks++;
    if (t1 - t0 >= loop->timed_min_ns)
        flight_loop_callback(kind, fd, t0, t1, count_waiting, loop);
    else
        flight_cur_label.what = NULL;
}
#define TIMED(loop, kind, fd, call)                                                                                    \
    do {                                                                                                               \
        int64_t t0_ = clock_mono_ns();                                                                                 \
        call;                                                                                                          \
        timed_end(loop, kind, fd, t0_);                                                                                \
    } while (0)

/* The loop-thread precondition of everything but evloop_post/evloop_stop. */
#define ON_LOOP(loop) CHECK(pthread_equal(pthread_self(), (loop)->owner))

/* ---- timer heap -------------------------------------------------------- */

static int timer_less(const struct ev_timer *a, const struct ev_timer *b)
{
    if (a->deadline_ns != b->deadline_ns)
        return a->deadline_ns < b->deadline_ns;
    return a->seq < b->seq;
}

static void heap_set(struct evloop *loop, size_t i, struct ev_timer *t)
{
    loop->heap[i] = t;
    t->heap_index = i + 1;
}

static void heap_up(struct evloop *loop, size_t i)
{
    struct ev_timer *t = loop->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!timer_less(t, loop->heap[parent]))
            break;
        heap_set(loop, i, loop->heap[parent]);
        i = parent;
    }
    heap_set(loop, i, t);
}

static void heap_down(struct evloop *loop, size_t i)
{
    struct ev_timer *t = loop->heap[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= loop->heap_len)
            break;
        if (child + 1 < loop->heap_len && timer_less(loop->heap[child + 1], loop->heap[child]))
            child++;
        if (!timer_less(loop->heap[child], t))
            break;
        heap_set(loop, i, loop->heap[child]);
        i = child;
    }
    heap_set(loop, i, t);
}

static void heap_remove(struct evloop *loop, struct ev_timer *t)
{
    size_t i = t->heap_index - 1;
    struct ev_timer *last = loop->heap[--loop->heap_len];
    t->heap_index = 0;
    if (last == t)
        return;
    heap_set(loop, i, last);
    heap_up(loop, i);
    heap_down(loop, last->heap_index - 1);
}

void evloop_timer_stop(struct evloop *loop, struct ev_timer *t)
{
    ON_LOOP(loop);
    if (t->heap_index)
        heap_remove(loop, t);
}

int evloop_timer_start(struct evloop *loop, struct ev_timer *t, int64_t delay_ns)
{
    ON_LOOP(loop);
    evloop_timer_stop(loop, t);
    if (loop->heap_len == loop->heap_cap) {
        /* The heap never shrinks: a loop that once held N timers can hold
         * N again without allocating. */
        size_t cap = loop->heap_cap ? loop->heap_cap * 2 : 64;
        struct ev_timer **heap = realloc(loop->heap, cap * sizeof *heap);
        if (!heap)
            return -ENOMEM;
        loop->heap = heap;
        loop->heap_cap = cap;
    }
    if (delay_ns < 0)
        delay_ns = 0;
    t->deadline_ns = clock_mono_ns() + delay_ns;
    t->seq = ++loop->timer_seq;
    loop->heap[loop->heap_len] = t;
    t->heap_index = ++loop->heap_len;
    heap_up(loop, loop->heap_len - 1);
    return 0;
}

/* Arms the timerfd for the earliest deadline, only when it changed. */
static void arm_timerfd(struct evloop *loop)
{
    int64_t want = loop->heap_len ? loop->heap[0]->deadline_ns : INT64_MAX;
    if (want == loop->armed_ns)
        return;
    struct itimerspec its;
    memset(&its, 0, sizeof its);
    if (want != INT64_MAX) {
        /* An all-zero it_value disarms; 1 ns means "now". */
        int64_t at = want > 0 ? want : 1;
        its.it_value.tv_sec = at / NS_PER_SEC;
        its.it_value.tv_nsec = at % NS_PER_SEC;
    }
    if (timerfd_settime(loop->timerfd, TFD_TIMER_ABSTIME, &its, NULL) == 0)
        loop->armed_ns = want;
}

/* Runs the timers due now that were started before this pass began, so a
 * timer restarted with 0 from its own callback waits for the next pass. */
static void run_timers(struct evloop *loop)
{
    uint64_t seq_limit = loop->timer_seq;
    int64_t now = clock_mono_ns();
    while (loop->heap_len) {
        struct ev_timer *t = loop->heap[0];
        if (t->deadline_ns > now || t->seq > seq_limit)
            break;
        heap_remove(loop, t);
        TIMED(loop, "timer", -1, t->cb(loop, t));
    }
}

/* ---- tasks --------------------------------------------------------------- */

void evloop_defer(struct evloop *loop, struct ev_task *task)
{
    ON_LOOP(loop);
    task->next = NULL;
    if (loop->defer_tail)
        loop->defer_tail->next = task;
    else
        loop->defer_head = task;
    loop->defer_tail = task;
}

static void run_task_list(struct evloop *loop, struct ev_task *task, const char *kind)
{
    while (task) {
        struct ev_task *next = task->next;
        TIMED(loop, kind, -1, task->fn(loop, task));
        task = next;
    }
}

static void run_deferred(struct evloop *loop)
{
    /* Take the list first: tasks deferred by these tasks run next pass. */
    struct ev_task *head = loop->defer_head;
    loop->defer_head = loop->defer_tail = NULL;
    run_task_list(loop, head, "task");
}

static void wake(struct evloop *loop)
{
    uint64_t one = 1;
    /* EAGAIN means the counter is already non-zero: the loop will wake. */
    ssize_t n = write(loop->wakefd, &one, sizeof one);
    (void)n;
}

void evloop_post(struct evloop *loop, struct ev_task *task)
{
    task->next = NULL;
    pthread_mutex_lock(&loop->inbox_lock);
    int was_empty = loop->inbox_head == NULL;
    if (loop->inbox_tail)
        loop->inbox_tail->next = task;
    else
        loop->inbox_head = task;
    loop->inbox_tail = task;
    pthread_mutex_unlock(&loop->inbox_lock);
    if (was_empty)
        wake(loop);
}

static void drain_inbox(struct evloop *loop)
{
    uint64_t n;
    while (read(loop->wakefd, &n, sizeof n) > 0)
        ;
    pthread_mutex_lock(&loop->inbox_lock);
    struct ev_task *head = loop->inbox_head;
    loop->inbox_head = loop->inbox_tail = NULL;
    pthread_mutex_unlock(&loop->inbox_lock);
    run_task_list(loop, head, "posted");
}

void evloop_stop(struct evloop *loop)
{
    atomic_store(&loop->stopping, 1);
    wake(loop);
}

int evloop_add_before_sleep(struct evloop *loop, void (*fn)(struct evloop *, void *), void *arg)
{
    ON_LOOP(loop);
    if (loop->nhooks == MAX_HOOKS)
        return -ENOSPC;
    loop->hooks[loop->nhooks++] = (struct hook){fn, arg};
    return 0;
}

void evloop_remove_before_sleep(struct evloop *loop, void (*fn)(struct evloop *, void *), void *arg)
{
    ON_LOOP(loop);
    for (int i = 0; i < loop->nhooks; i++) {
        if (loop->hooks[i].fn == fn && loop->hooks[i].arg == arg) {
            loop->hooks[i] = loop->hooks[--loop->nhooks];
            return;
        }
    }
}

/* ---- fds ----------------------------------------------------------------- */

static uint32_t to_epoll(int mask)
{
    return (mask & EV_READ ? EPOLLIN : 0) | (mask & EV_WRITE ? EPOLLOUT : 0);
}

int evloop_io_set(struct evloop *loop, int fd, int mask, evloop_io_cb cb, void *arg)
{
    ON_LOOP(loop);
    if (fd < 0 || fd >= loop->max_fds)
        return -EMFILE;
    struct io_slot *s = &loop->slots[fd];
    struct epoll_event ev = {.events = to_epoll(mask), .data.fd = fd};
    if (s->mask < 0) {
        if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
            /* The fd number was closed and reused while still registered
             * (libpq and curl may close before telling us): modify. */
            if (errno != EEXIST || epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ev) != 0)
                return -errno;
        }
        loop->nregistered++;
    } else if (s->mask != mask) {
        if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ev) != 0) {
            /* Closed and reopened under us: the old registration died with
             * the old file, so add it afresh. */
            if (errno != ENOENT || epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) != 0)
                return -errno;
        }
    }
    s->mask = mask;
    s->cb = cb;
    s->arg = arg;
    return 0;
}

void evloop_io_del(struct evloop *loop, int fd)
{
    ON_LOOP(loop);
    if (fd < 0 || fd >= loop->max_fds || loop->slots[fd].mask < 0)
        return;
    /* EBADF/ENOENT: the fd was already closed, which removed it. */
    (void)epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
    loop->slots[fd] = (struct io_slot){.mask = -1};
    loop->nregistered--;
}

void evloop_busy(const struct evloop *loop, int64_t *busy_ns, uint64_t *callbacks)
{
    ON_LOOP(loop);
    *busy_ns = loop->busy_ns;
    *callbacks = loop->callbacks;
}

int evloop_io_count(const struct evloop *loop)
{
    ON_LOOP(loop);
    return loop->nregistered;
}

/* What waited while a callback stalled the loop: the fds ready now
 * (level-triggered, so a look with no timeout takes nothing from the next
 * epoll_wait), the timers overdue and the tasks deferred. */
static int count_waiting(void *arg)
{
    struct evloop *loop = arg;
    struct epoll_event events[MAX_EVENTS];
    int n = epoll_wait(loop->epfd, events, MAX_EVENTS, 0);
    n = n < 0 ? 0 : n;
    int64_t now = clock_mono_ns();
    for (size_t i = 0; i < loop->heap_len; i++)
        n += loop->heap[i]->deadline_ns <= now;
    for (struct ev_task *t = loop->defer_head; t; t = t->next)
        n++;
    return n;
}

/* ---- signals ------------------------------------------------------------- */

int evloop_watch_signals(struct evloop *loop, void (*cb)(struct evloop *, int, void *), void *arg)
{
    ON_LOOP(loop);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    int err = pthread_sigmask(SIG_BLOCK, &set, NULL);
    if (err)
        return -err;
    loop->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (loop->sigfd < 0)
        return -errno;
    loop->sig_cb = cb;
    loop->sig_arg = arg;
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = loop->sigfd};
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->sigfd, &ev) != 0)
        return -errno;
    return 0;
}

static void read_signals(struct evloop *loop)
{
    struct signalfd_siginfo si;
    while (read(loop->sigfd, &si, sizeof si) == (ssize_t)sizeof si)
        loop->sig_cb(loop, (int)si.ssi_signo, loop->sig_arg);
}

/* ---- lifecycle ----------------------------------------------------------- */

struct evloop *evloop_new(int max_fds)
{
    struct evloop *loop = calloc(1, sizeof *loop);
    if (!loop)
        return NULL;
    loop->epfd = loop->timerfd = loop->wakefd = loop->sigfd = -1;
    loop->max_fds = max_fds;
    loop->armed_ns = INT64_MAX;
    loop->timed_min_ns = flight_loop_min_ns();
    loop->owner = pthread_self();
    atomic_init(&loop->stopping, 0);
    if (pthread_mutex_init(&loop->inbox_lock, NULL) != 0)
        goto free_loop;
    loop->slots = malloc((size_t)max_fds * sizeof *loop->slots);
    if (!loop->slots)
        goto destroy_lock;
    for (int i = 0; i < max_fds; i++)
        loop->slots[i].mask = -1;
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epfd < 0)
        goto free_slots;
    loop->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (loop->timerfd < 0)
        goto close_ep;
    loop->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (loop->wakefd < 0)
        goto close_timer;
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = loop->timerfd};
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->timerfd, &ev) != 0)
        goto close_wake;
    ev.data.fd = loop->wakefd;
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->wakefd, &ev) != 0)
        goto close_wake;
    return loop;

close_wake:
    close(loop->wakefd);
close_timer:
    close(loop->timerfd);
close_ep:
    close(loop->epfd);
free_slots:
    free(loop->slots);
destroy_lock:
    pthread_mutex_destroy(&loop->inbox_lock);
free_loop:
    free(loop);
    return NULL;
}

void evloop_free(struct evloop *loop)
{
    if (!loop)
        return;
    ON_LOOP(loop);
    if (loop->sigfd >= 0)
        close(loop->sigfd);
    close(loop->wakefd);
    close(loop->timerfd);
    close(loop->epfd);
    free(loop->slots);
    free(loop->heap);
    pthread_mutex_destroy(&loop->inbox_lock);
    free(loop);
}

static void dispatch(struct evloop *loop, const struct epoll_event *e)
{
    int fd = e->data.fd;
    if (fd == loop->timerfd) {
        uint64_t expirations;
        ssize_t n = read(loop->timerfd, &expirations, sizeof expirations);
        (void)n;
        loop->armed_ns = INT64_MAX; /* a fired timerfd is disarmed */
        return;                     /* timers run after the batch */
    }
    if (fd == loop->wakefd) {
        drain_inbox(loop);
        return;
    }
    if (fd == loop->sigfd) {
        read_signals(loop);
        return;
    }
    struct io_slot *s = &loop->slots[fd];
    if (s->mask <= 0)
        return; /* stale event: removed earlier in this batch */
    int ev = 0;
    if (e->events & (EPOLLIN | EPOLLRDHUP))
        ev |= EV_READ;
    if (e->events & EPOLLOUT)
        ev |= EV_WRITE;
    if (e->events & (EPOLLERR | EPOLLHUP))
        ev |= EV_ERROR | (s->mask & (EV_READ | EV_WRITE));
    TIMED(loop, "io", fd, s->cb(loop, fd, ev, s->arg));
}

int evloop_run(struct evloop *loop)
{
    ON_LOOP(loop);
    struct epoll_event events[MAX_EVENTS];
    while (!atomic_load(&loop->stopping)) {
        for (int i = 0; i < loop->nhooks; i++)
            TIMED(loop, "before-sleep", -1, loop->hooks[i].fn(loop, loop->hooks[i].arg));
        arm_timerfd(loop);
        int due_now = loop->defer_head != NULL || (loop->heap_len && loop->heap[0]->deadline_ns <= clock_mono_ns());
        int n = epoll_wait(loop->epfd, events, MAX_EVENTS, due_now ? 0 : -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        for (int i = 0; i < n; i++)
            dispatch(loop, &events[i]);
        run_timers(loop);
        run_deferred(loop);
    }
    atomic_store(&loop->stopping, 0); /* consumed: the loop may run again */
    return 0;
}
