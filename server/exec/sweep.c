/* sweep: a timer and one statement (see sweep.h).
 * Owns: its timer, query and statement. Must never: run two sweeps at once
 * (the next is timed from the end of the last). */
#include "sweep.h"

#include "clock.h"
#include "db.h"
#include "evloop.h"
#include "list.h"
#include "log.h"
#include "pgpool.h"

#include <stdlib.h>
#include <string.h>

#define FIRST_SWEEP_NS (1000 * NS_PER_MS)

struct sweep {
    struct evloop *loop;
    struct pgpool *pool;
    int64_t interval_ns;
    struct ev_timer timer;
    struct pgq q;
    struct db_stmt stmt;
    int running;
};

static void on_swept(struct pgq *q, int status, const PGresult *res, const char *err)
{
    struct sweep *sw = container_of(q, struct sweep, q);
    sw->running = 0;
    if (status == PGQ_OK) {
        const char *n = PQcmdTuples((PGresult *)res);
        if (n && *n && strcmp(n, "0") != 0)
            log_warn("sweep: %s orders left running by a server that stopped are now failed (abandoned)", n);
    } else {
        log_debug("sweep: %s", err);
    }
    if (evloop_timer_start(sw->loop, &sw->timer, sw->interval_ns) != 0)
        log_error("sweep: no memory for its timer; sweeping stops");
}

static void on_timer(struct evloop *loop, struct ev_timer *t)
{
    (void)loop;
    struct sweep *sw = container_of(t, struct sweep, timer);
    db_stmt_sweep(&sw->stmt);
    sw->q = (struct pgq){.stmt = &sw->stmt, .cls = PGQ_SHORT, .cb = on_swept};
    sw->running = 1;
    pgpool_submit(sw->pool, &sw->q);
}

struct sweep *sweep_start(struct evloop *loop, struct pgpool *pool, long interval_ms)
{
    struct sweep *sw = calloc(1, sizeof *sw);
    if (!sw)
        return NULL;
    sw->loop = loop;
    sw->pool = pool;
    sw->interval_ns = (int64_t)interval_ms * NS_PER_MS;
    sw->timer.cb = on_timer;
    int64_t first = sw->interval_ns < FIRST_SWEEP_NS ? sw->interval_ns : FIRST_SWEEP_NS;
    if (evloop_timer_start(loop, &sw->timer, first) != 0) {
        free(sw);
        return NULL;
    }
    return sw;
}

void sweep_free(struct sweep *sw)
{
    if (!sw)
        return;
    evloop_timer_stop(sw->loop, &sw->timer);
    if (sw->running)
        pgpool_abandon(sw->pool, &sw->q);
    db_stmt_release(&sw->stmt);
    free(sw);
}
