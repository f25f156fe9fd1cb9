/* sync_pool: blocking connections shared by threads (see sync_pool.h).
 *
 * Owns: the slots and their connections (closed by sync_pool_free).
 * Must never: wait without a deadline, lend one slot twice, or connect
 * while holding the lock (a connect is the borrower's, after get). */
#include "sync_pool.h"

#include "clock.h"
#include "db.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

struct sync_pool {
    pthread_mutex_t lock;
    pthread_cond_t freed; /* a slot came back, or the pool was cancelled */
    struct db_sync *slots;
    int *lent; /* [size]: 1 while slot i is borrowed */
    int size, busy, peak, waiting, cancelled;
    long timeouts;
};

struct sync_pool *sync_pool_new(int size, const struct db_config *config, struct watchdog *wd, long connect_timeout_ms)
{
    struct sync_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->slots = calloc((size_t)size, sizeof *p->slots);
    p->lent = calloc((size_t)size, sizeof *p->lent);
    pthread_condattr_t ca;
    int ok = p->slots && p->lent && pthread_condattr_init(&ca) == 0;
    if (ok) {
        ok = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 && pthread_cond_init(&p->freed, &ca) == 0;
        pthread_condattr_destroy(&ca);
    }
    if (!ok) {
        free(p->slots);
        free(p->lent);
        free(p);
        return NULL;
    }
    pthread_mutex_init(&p->lock, NULL);
    p->size = size;
    for (int i = 0; i < size; i++)
        p->slots[i] = (struct db_sync){.config = config, .wd = wd, .connect_timeout_ms = connect_timeout_ms};
    return p;
}

void sync_pool_free(struct sync_pool *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->size; i++)
        db_sync_close(&p->slots[i]);
    pthread_cond_destroy(&p->freed);
    pthread_mutex_destroy(&p->lock);
    free(p->slots);
    free(p->lent);
    free(p);
}

/* A free slot, connected ones first (so that the pool opens no more
 * connections than it needs at once), or -1. Under the lock. */
static int free_slot(const struct sync_pool *p)
{
    int unconnected = -1;
    for (int i = 0; i < p->size; i++) {
        if (p->lent[i])
            continue;
        if (p->slots[i].conn)
            return i;
        if (unconnected < 0)
            unconnected = i;
    }
    return unconnected;
}

struct db_sync *sync_pool_get(struct sync_pool *p, long wait_ms, char *msg, size_t mlen)
{
    int64_t deadline_ns = clock_mono_ns() + (int64_t)wait_ms * NS_PER_MS; /* CLOCK_MONOTONIC */
    struct timespec until = {.tv_sec = deadline_ns / NS_PER_SEC, .tv_nsec = deadline_ns % NS_PER_SEC};
    struct db_sync *d = NULL;
    int timed_out = 0;
    pthread_mutex_lock(&p->lock);
    int i = -1;
    while (!p->cancelled && (i = free_slot(p)) < 0) {
        p->waiting++;
        /* The wait's bound: past it the statement is not sent, and the
         * order fails with a 503 (the caller says so). */
        int rc = pthread_cond_timedwait(&p->freed, &p->lock, &until);
        p->waiting--;
        if (rc == ETIMEDOUT && free_slot(p) < 0) {
            timed_out = 1;
            p->timeouts++;
            break;
        }
    }
    if (p->cancelled) {
        snprintf(msg, mlen, "the server is shutting down");
    } else if (timed_out) {
        snprintf(msg, mlen, "no database connection free in %ld ms (pool of %d)", wait_ms, p->size);
    } else {
        p->lent[i] = 1;
        d = &p->slots[i];
        if (++p->busy > p->peak)
            p->peak = p->busy;
    }
    pthread_mutex_unlock(&p->lock);
    return d;
}

void sync_pool_put(struct sync_pool *p, struct db_sync *d)
{
    pthread_mutex_lock(&p->lock);
    p->lent[d - p->slots] = 0;
    p->busy--;
    pthread_cond_signal(&p->freed);
    pthread_mutex_unlock(&p->lock);
}

void sync_pool_cancel(struct sync_pool *p)
{
    pthread_mutex_lock(&p->lock);
    p->cancelled = 1;
    pthread_cond_broadcast(&p->freed);
    pthread_mutex_unlock(&p->lock);
}

void sync_pool_stats(struct sync_pool *p, struct sync_pool_stats *out)
{
    pthread_mutex_lock(&p->lock);
    *out = (struct sync_pool_stats){
        .size = p->size, .busy = p->busy, .peak = p->peak, .waiting = p->waiting, .timeouts = p->timeouts};
    /* A lent slot is its borrower's (connected or connecting): counted
     * as open, its conn not read. */
    out->opened = p->busy;
    for (int i = 0; i < p->size; i++)
        out->opened += !p->lent[i] && p->slots[i].conn != NULL;
    pthread_mutex_unlock(&p->lock);
}
