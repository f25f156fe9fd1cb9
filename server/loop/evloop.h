/* evloop: a small single-threaded epoll event loop (fd watchers, timers,
 * deferred tasks, a thread-safe inbox, signals).
 *
 * Modelled on Redis' ae.c: one watcher per fd, kept in a table indexed by
 * the fd, so a stale event for an fd that was removed earlier in the same
 * epoll batch finds no interest and is ignored instead of touching freed
 * memory. Timers live in a binary min-heap and are delivered through one
 * timerfd armed at the earliest deadline, so delays are precise to tens of
 * microseconds rather than to the millisecond of epoll_wait's timeout.
 *
 * The loop thread is the thread that made the loop (evloop_new): it runs
 * it, and everything here must be called on it except evloop_post() and
 * evloop_stop(), which any thread may call (and evloop_timer_active(),
 * which only reads its argument). That precondition is checked at run
 * time (check.h): a call from another thread is a programmer error, and
 * aborts, in every build made with COFFEE_CHECKS (the default).
 *
 * Errors: 0 or a negative errno; evloop_new returns NULL with errno set. */
#ifndef COFFEE_EVLOOP_H
#define COFFEE_EVLOOP_H

#include <stddef.h>
#include <stdint.h>

struct evloop;

enum {
    EV_READ = 1,  /* wait for readable */
    EV_WRITE = 2, /* wait for writable */
    EV_ERROR = 4  /* delivered only: the fd reported EPOLLERR/EPOLLHUP */
};

/* Called on the loop thread with the events that fired (EV_*). */
typedef void (*evloop_io_cb)(struct evloop *loop, int fd, int events, void *arg);

/* A timer. The caller owns the memory (usually embedded in a bigger struct);
 * it must stay valid while the timer is active. Zero-initialise it. */
struct ev_timer {
    int64_t deadline_ns; /* monotonic */
    uint64_t seq;        /* start order: ties and same-pass protection */
    size_t heap_index;   /* position in the heap + 1; 0 = not active */
    void (*cb)(struct evloop *loop, struct ev_timer *t);
};

/* A task for evloop_defer() (loop thread) or evloop_post() (any thread).
 * The caller owns the memory; it must stay valid until fn has run. */
struct ev_task {
    struct ev_task *next;
    void (*fn)(struct evloop *loop, struct ev_task *task);
};

/* Returns a new loop or NULL (errno set). max_fds bounds the fd table. */
struct evloop *evloop_new(int max_fds);
/* Frees the loop; accepts NULL. Watchers must already be removed. */
void evloop_free(struct evloop *loop);

/* Runs until evloop_stop() (one made before this call counts too). Returns
 * 0, or a negative errno on a fatal epoll failure; the loop may then be
 * run again. */
int evloop_run(struct evloop *loop);
/* Makes evloop_run() return after the current pass; thread-safe. */
void evloop_stop(struct evloop *loop);

/* Sets the interest mask (EV_READ|EV_WRITE) for fd and its callback. A mask
 * of 0 keeps the fd registered with no interest. Returns 0 or -errno. */
int evloop_io_set(struct evloop *loop, int fd, int mask, evloop_io_cb cb, void *arg);
/* Forgets fd. Safe if fd was already closed or never registered. */
void evloop_io_del(struct evloop *loop, int fd);

/* Starts (or restarts) t to fire once after delay_ns (0 = next pass).
 * Returns 0, or -ENOMEM if the heap could not grow (t is then inactive). */
int evloop_timer_start(struct evloop *loop, struct ev_timer *t, int64_t delay_ns);
/* Stops t if active; a no-op otherwise. */
void evloop_timer_stop(struct evloop *loop, struct ev_timer *t);
static inline int evloop_timer_active(const struct ev_timer *t)
{
    return t->heap_index != 0;
}

/* Runs task->fn once the current callback has returned, before the loop
 * sleeps again; never inside this call. A task deferred by a deferred task
 * runs on the next pass. Loop thread only. */
void evloop_defer(struct evloop *loop, struct ev_task *task);
/* Thread-safe: queues task to run on the loop thread and wakes the loop.
 * Posts are coalesced into one wake-up; order is preserved. */
void evloop_post(struct evloop *loop, struct ev_task *task);

/* Registers a hook run once per pass right before the loop sleeps
 * (MHD uses it to run resumed connections). At most 4 hooks: returns 0,
 * or -ENOSPC. */
int evloop_add_before_sleep(struct evloop *loop, void (*fn)(struct evloop *, void *), void *arg);

/* Removes a hook added with the same fn and arg; a no-op if absent. */
void evloop_remove_before_sleep(struct evloop *loop, void (*fn)(struct evloop *, void *), void *arg);

/* Delivers SIGINT and SIGTERM to cb on the loop thread (signalfd). The
 * signals are blocked in the calling thread: call this before starting
 * other threads so they inherit the mask. Returns 0 or -errno. */
int evloop_watch_signals(struct evloop *loop, void (*cb)(struct evloop *, int signo, void *), void *arg);

/* Time spent in callbacks and callbacks run since the loop was made (every
 * callback is timed); for the flight recorder's loop counters. */
void evloop_busy(const struct evloop *loop, int64_t *busy_ns, uint64_t *callbacks);

/* Number of fds with a watcher; for tests and metrics. */
int evloop_io_count(const struct evloop *loop);

#endif
