/* worker_io: the blocking executors' real services (exec_blocking.h's
 * struct blocking_io): per worker (or per thread of the threads mode),
 * one reused curl easy handle
 * (curl_easy_perform, cut short by the executor's cancelling flag through
 * curl's progress callback) and one PGconn (db.h's db_sync, every
 * statement bounded by the watchdog). Worker threads only, but for
 * worker_io_new/free. */
#ifndef COFFEE_WORKER_IO_H
#define COFFEE_WORKER_IO_H

#include "exec_blocking.h"

struct db_config;
struct sync_pool;
struct watchdog;

struct worker_io_config {
    const char *kitchen_url;    /* borrowed */
    const struct db_config *db; /* borrowed */
    struct watchdog *wd;        /* borrowed: bounds every blocking database call */
    long connect_timeout_ms;    /* bound on a connect and its setup */
    /* NULL: each context keeps a PGconn of its own (the blocking
     * workers'). Else every statement borrows a connection from this
     * shared pool (borrowed) for its own time only, waiting at most
     * pool_wait_ms for one (the threads mode's): no connect ahead. */
    struct sync_pool *pool;
    long pool_wait_ms;
};

/* The real services over cfg (borrowed: it must outlive every worker). */
struct blocking_io worker_io(const struct worker_io_config *cfg);

#endif
