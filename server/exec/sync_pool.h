/* sync_pool: a shared pool of blocking database connections for threads
 * that borrow one per statement (the threads mode), as HikariCP,
 * psycopg_pool or Go's database/sql do: a fixed number of slots, each a
 * db_sync (db.h) opened on first use by the thread that borrowed it and
 * kept open for the next; a thread that finds every slot taken waits on a
 * condition variable (CLOCK_MONOTONIC) until one is returned or its
 * deadline passes, and then gets an error: no wait is unbounded.
 * Thread-safe. */
#ifndef COFFEE_SYNC_POOL_H
#define COFFEE_SYNC_POOL_H

#include <stddef.h>

struct db_config;
struct db_sync;
struct watchdog;
struct sync_pool;

struct sync_pool_stats {
    int size;
    int busy;      /* slots lent now */
    int opened;    /* slots holding an open connection now */
    int peak;      /* the most slots lent at once */
    int waiting;   /* threads waiting for a slot now */
    long timeouts; /* waits that ended at their deadline */
};

/* Returns new with size slots, none connected, or NULL. config and wd are
 * borrowed and must outlive it; connect_timeout_ms bounds each connect. */
struct sync_pool *sync_pool_new(int size, const struct db_config *config, struct watchdog *wd, long connect_timeout_ms);
/* Closes every connection and frees p; accepts NULL. Nothing may be lent. */
void sync_pool_free(struct sync_pool *p);
/* Borrows a slot, waiting at most wait_ms for one: returns it (borrowed
 * until sync_pool_put; it may be unconnected: db_sync_ensure it), or NULL
 * with msg when the wait passed its deadline or the pool was cancelled. */
struct db_sync *sync_pool_get(struct sync_pool *p, long wait_ms, char *msg, size_t mlen);
/* Returns d to the pool (a closed one is reopened by its next borrower). */
void sync_pool_put(struct sync_pool *p, struct db_sync *d);
/* From now on no thread waits for a slot: waiting ones and later ones get
 * NULL at once (a shutdown). */
void sync_pool_cancel(struct sync_pool *p);
void sync_pool_stats(struct sync_pool *p, struct sync_pool_stats *out);

#endif
