/* watchdog: a deadline for blocking calls.
 *
 * A thread blocked in PQexecPrepared has no timeout of its own: against a
 * database that stops answering without closing anything (a frozen host, a
 * partition) it waits for ever, and statement_timeout cannot help, since
 * the server is the one that stopped. The watchdog is one thread that
 * holds the deadlines of the blocking calls in flight; when one passes, it
 * shuts the call's socket down (shutdown(2), not close: the fd stays the
 * caller's), so the blocked read returns at once with an error, and the
 * caller knows from wd_end() that it was the deadline.
 *
 * Used by the blocking workers and by the mixed mode's one blocking call
 * on the loop thread; thread-safe. */
#ifndef COFFEE_WATCHDOG_H
#define COFFEE_WATCHDOG_H

#include "list.h"

#include <stdint.h>

struct watchdog;

/* One watched call; the caller owns it (usually on its stack). */
struct wd_call {
    struct list_node link;
    int fd;
    int64_t deadline_ns;
    int fired;
};

/* Starts the thread. Returns new, or NULL (errno set). */
struct watchdog *watchdog_new(void);
/* Stops the thread and frees wd; accepts NULL. No call may be watched. */
void watchdog_free(struct watchdog *wd);
/* Watches the blocking call about to run on fd for timeout_ms. */
void wd_begin(struct watchdog *wd, struct wd_call *c, int fd, long timeout_ms);
/* Stops watching c; returns 1 if its deadline passed (fd was shut down),
 * 0 otherwise. The caller may close fd only after this. */
int wd_end(struct watchdog *wd, struct wd_call *c);
/* From now on, shuts every watched call down at once, and every call that
 * begins later too (shutdown: nobody waits any more). */
void watchdog_fire_all(struct watchdog *wd);

#endif
