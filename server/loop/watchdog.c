/* watchdog: one thread enforcing the deadlines of blocking calls (see
 * watchdog.h).
 *
 * Owns: the thread and the list of watched calls (not the calls).
 * Must never: close a caller's fd (only shut it down, while the caller is
 * known to be inside its call: wd_end takes the same lock), or sleep
 * without a bound other than the earliest deadline. */
#include "watchdog.h"

#include "clock.h"
#include "flight.h"
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

struct watchdog {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond; /* on CLOCK_MONOTONIC */
    struct list_node calls;
    int firing_all;
    int stopping;
};

static void fire(struct wd_call *c)
{
    c->fired = 1;
    list_remove(&c->link);
    if (shutdown(c->fd, SHUT_RDWR) != 0 && errno != ENOTCONN)
        log_warn("watchdog: shutdown of fd %d failed", c->fd);
}

static void *watchdog_main(void *arg)
{
    struct watchdog *wd = arg;
    flight_thread_name("watchdog"); /* flight recorder: the thread's track */
    pthread_mutex_lock(&wd->lock);
    while (!wd->stopping) {
        int64_t now = clock_mono_ns(), next = INT64_MAX;
        struct list_node *n = wd->calls.next, *following;
        for (; n != &wd->calls; n = following) {
            following = n->next;
            struct wd_call *c = container_of(n, struct wd_call, link);
            if (wd->firing_all || c->deadline_ns <= now)
                fire(c);
            else if (c->deadline_ns < next)
                next = c->deadline_ns;
        }
        if (next == INT64_MAX) {
            pthread_cond_wait(&wd->cond, &wd->lock);
        } else {
            struct timespec ts = {.tv_sec = next / NS_PER_SEC, .tv_nsec = next % NS_PER_SEC};
            pthread_cond_timedwait(&wd->cond, &wd->lock, &ts);
        }
    }
    pthread_mutex_unlock(&wd->lock);
    return NULL;
}

struct watchdog *watchdog_new(void)
{
    struct watchdog *wd = calloc(1, sizeof *wd);
    if (!wd)
        return NULL;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_mutex_init(&wd->lock, NULL);
    pthread_cond_init(&wd->cond, &attr);
    pthread_condattr_destroy(&attr);
    list_init(&wd->calls);
    int rc = pthread_create(&wd->thread, NULL, watchdog_main, wd);
    if (rc != 0) {
        pthread_cond_destroy(&wd->cond);
        pthread_mutex_destroy(&wd->lock);
        free(wd);
        errno = rc;
        return NULL;
    }
    return wd;
}

void watchdog_free(struct watchdog *wd)
{
    if (!wd)
        return;
    pthread_mutex_lock(&wd->lock);
    wd->stopping = 1;
    pthread_cond_signal(&wd->cond);
    pthread_mutex_unlock(&wd->lock);
    pthread_join(wd->thread, NULL);
    pthread_cond_destroy(&wd->cond);
    pthread_mutex_destroy(&wd->lock);
    free(wd);
}

void wd_begin(struct watchdog *wd, struct wd_call *c, int fd, long timeout_ms)
{
    c->fd = fd;
    c->fired = 0;
    c->deadline_ns = clock_mono_ns() + (int64_t)timeout_ms * NS_PER_MS;
    pthread_mutex_lock(&wd->lock);
    list_push_back(&wd->calls, &c->link);
    pthread_cond_signal(&wd->cond); /* it may be the earliest deadline now */
    pthread_mutex_unlock(&wd->lock);
}

int wd_end(struct watchdog *wd, struct wd_call *c)
{
    pthread_mutex_lock(&wd->lock);
    if (!c->fired)
        list_remove(&c->link);
    int fired = c->fired;
    pthread_mutex_unlock(&wd->lock);
    return fired;
}

void watchdog_fire_all(struct watchdog *wd)
{
    pthread_mutex_lock(&wd->lock);
    wd->firing_all = 1;
    pthread_cond_signal(&wd->cond);
    pthread_mutex_unlock(&wd->lock);
}
