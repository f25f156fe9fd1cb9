/* order_runner: one order run the blocking way, from its row to its
 * outcome, on the calling thread, through a blocking_io context: the row's
 * INSERT, the steps one after another in table order (each bounded by its
 * planned time and the slack), and the row's UPDATE, sent once more when
 * its connection was lost (finish_retry.h). The one copy of that loop:
 * the blocking executor's workers (exec_blocking.c) and the threads
 * executor's thread per order (exec_threads.c) both call it. */
#ifndef COFFEE_ORDER_RUNNER_H
#define COFFEE_ORDER_RUNNER_H

#include "exec_blocking.h"

#include <stdatomic.h>

struct order;

struct order_runner {
    const struct blocking_io *io; /* borrowed */
    void *w;                      /* the calling thread's context of io */
    const atomic_int *cancelling; /* 1 cancel (stop at the next step), 2 abort (write nothing more) */
    long step_slack_ms;           /* a step fails this long after its planned duration */
    long db_timeout_ms;           /* bound on the row's INSERT and UPDATE */
    double row_budget_ms;         /* the row's deadline, beyond the steps' planned time */
};

/* Runs o to its end, blocking; o's timeline and status say how it went
 * (an INSERT that fails leaves no row and fails the order with OERR_DB).
 * The caller posts o's end to the loop afterwards. */
void order_run_blocking(const struct order_runner *r, struct order *o);

#endif
