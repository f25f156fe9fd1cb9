/* brew_offload: the offload mode's brew (BREW_OFFLOAD), a brew service
 * (io.h) that hands the blocking brew (libpq's PQexecPrepared, as a
 * library with no async API would do it) to a thread of a small pool and
 * lets the loop await it, as asyncio's to_thread / run_in_executor does:
 * the loop runs on meanwhile, and the result comes back through
 * evloop_post.
 *
 * Its bounds: `threads` threads, each with its own blocking connection
 * (opened on its first brew, kept; each statement bounded by the
 * watchdog, the connect by connect_timeout_ms); a brew waits in the queue
 * for a thread no longer than its own timeout, then fails with
 * OERR_TIMEOUT (the order's 504), on the loop, by a timer: no wait is
 * unbounded. */
#ifndef COFFEE_BREW_OFFLOAD_H
#define COFFEE_BREW_OFFLOAD_H

#include "io.h"

#include <stddef.h>

struct evloop;
struct db_config;
struct watchdog;
struct executor_stats;
struct brew_offload;

/* Starts the threads. Returns new, or NULL with err. config and wd are
 * borrowed and must outlive it. */
struct brew_offload *brew_offload_new(struct evloop *loop, const struct db_config *config, struct watchdog *wd,
                                      long connect_timeout_ms, int threads, char *err, size_t errlen);
/* Stops and joins the threads (each ends its brew first: bounded by the
 * watchdog), closes their connections, frees b; accepts NULL. No brew
 * may be pending on the loop. */
void brew_offload_free(struct brew_offload *b);
/* Its brew service (not holds_loop); b is borrowed. */
struct brew_service brew_offload_service(struct brew_offload *b);
/* Adds what its threads cost to out: threads busy now (threads), the
 * most busy at once (threads_peak), their context switches and CPU so far,
 * the connections brewing now and the most open at once. Any thread. */
void brew_offload_stats(void *ctx, struct executor_stats *out);

#endif
