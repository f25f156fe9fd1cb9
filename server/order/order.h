/* order: one coffee order and its timeline, as both executors record it.
 *
 * All times are monotonic nanoseconds; the report turns them into
 * milliseconds since the order arrived. Recording goes through the
 * functions here so that both executors write the timeline the same way.
 *
 * A step and the order are state machines (below: enum step_state, enum
 * order_status) and only these functions change them. Each change is
 * CHECKed (check.h): a step started twice, a result for a step not
 * running, a done order ended again, abort the process. Those are
 * executor bugs, never input; a failure from the outside (a kitchen, the
 * database, a client) is recorded with order_step_end/order_fail. */
#ifndef COFFEE_ORDER_H
#define COFFEE_ORDER_H

#include "evloop.h"
#include "trace.h"
#include "workflow.h"

#include <stdint.h>

/* pending -> running [-> waiting] -> done | failed | abandoned (final). */
enum step_state {
    STEP_PENDING,  /* dependencies not done yet */
    STEP_WAITING,  /* started, waiting for a database connection */
    STEP_RUNNING,  /* its I/O is in flight */
    STEP_DONE,     /* result recorded */
    STEP_FAILED,   /* the I/O failed or timed out */
    STEP_ABANDONED /* stopped because another step failed */
};

struct step_run {
    enum step_state state;
    int64_t start_ns;  /* became ready (0 = never started) */
    int64_t queued_ns; /* of which waiting for a database connection */
    int64_t end_ns;
    char result[WF_RESULT_MAX];
};

/* running -> done | failed; done -> failed (its outcome could not be
 * recorded); failed is final (the first failure stands). */
enum order_status { ORDER_RUNNING, ORDER_DONE, ORDER_FAILED };

/* Why an order failed, recorded in it (error, with errmsg for the detail);
 * the HTTP front alone maps these to statuses (front_status_for). The
 * named exception to the project's "0 or a negative code": these are
 * positive, because they index tables (names, metrics), and a few
 * functions return one as a step's outcome (0 = none): kc_result,
 * kc_call_cb's err, db_brew_result, order_step_end's err. */
enum order_error {
    OERR_NONE,
    OERR_KITCHEN,  /* a kitchen step failed: 502 */
    OERR_TIMEOUT,  /* a step timed out: 504 */
    OERR_DB,       /* the database failed or is unavailable: 503 */
    OERR_INTERNAL, /* out of memory and the like: 500 */
    OERR_SHUTDOWN, /* cancelled: the server stopped waiting for it: 503 */
    OERR_OVERLOAD, /* no room for it (a thread refused, --max-threads): 503, before its row */
    OERR_COUNT
};

struct order;
typedef void (*order_done_fn)(struct order *o, void *arg);

struct order {
    int64_t id;                  /* from the database; 0 until the row exists */
    int mode;                    /* index into wf_modes */
    const struct recipe *recipe; /* borrowed, outlives the order: its steps (order_new: &wf_coffee) */
    double scale;
    double started_wall;                /* seconds since the epoch, for started_at */
    const char *instance;               /* borrowed, outlives the order: the replica running it (NULL = none) */
    char traceparent[TRACEPARENT_SIZE]; /* W3C trace context of the order ("" = none) */
    int64_t arrived_ns;
    int64_t queued_ns;      /* waiting for a worker or a connection, all told */
    int64_t steps_end_ns;   /* when the last step ended: elapsed_ms */
    unsigned started, done; /* step bit masks */
    struct step_run steps[WF_MAX_STEPS];
    enum order_status status;
    enum order_error error;
    int failed_step; /* -1 when none */
    char errmsg[200];
    char *report; /* the answer's JSON text once built (report_order_text), owned; NULL = not built */

    /* Called once on the loop thread when the order has ended and its row
     * is written (or cannot be). */
    order_done_fn on_done;
    void *done_arg;
    struct ev_task done_task; /* used to get on_done onto the loop thread */

    void *exec;         /* the executor's private state */
    struct order *next; /* the executor's queue link */
};

/* Returns a new order of the coffee recipe that arrived now, or NULL (set
 * o->recipe before submitting it for another). */
struct order *order_new(int mode, double scale, order_done_fn on_done, void *done_arg);
/* Frees o; accepts NULL. The executor must be done with it. */
void order_free(struct order *o);

/* Recording, in the one way both executors share. A step starts from
 * pending, while the order runs; waiting (for a database connection) only
 * from running; done/fail only while running or waiting. */
void order_step_start(struct order *o, int step, int64_t now);
void order_step_waiting(struct order *o, int step);
void order_step_queued(struct order *o, int step, int64_t waited_ns);
void order_step_done(struct order *o, int step, const char *result, int64_t now);
/* Marks step failed and the order failed with error and message. */
void order_step_fail(struct order *o, int step, enum order_error error, const char *msg, int64_t now);
/* What a step's outcome means, in one place for both executors: its time
 * limit (its planned duration at the order's scale plus slack_ms), and the
 * recording of how it ended: err 0 records result; otherwise the step and
 * the order fail with err (an order_error) and msg, prefixed with the
 * step's name. */
long order_step_limit_ms(const struct order *o, int step, long slack_ms);
void order_step_end(struct order *o, int step, int err, const char *result, const char *msg, int64_t now);
/* The order's row could not be written (why): the order fails with
 * OERR_DB, unless it failed already (its first error stands). An order
 * whose outcome is not recorded is never answered as a success. */
void order_not_recorded(struct order *o, const char *why);
/* Marks the order failed for a reason that is not a step's (e.g. the
 * database was unavailable before any step ran). */
void order_fail(struct order *o, enum order_error error, const char *msg);
/* Marks every running or waiting step abandoned at now. */
void order_abandon_steps(struct order *o, int64_t now);
/* Steps that may start now (dependencies done, not yet started), while
 * the order has not failed. */
unsigned order_ready(const struct order *o);
/* The results of the steps, for the ingredients of step (NULL where none). */
void order_results(const struct order *o, const char *results[WF_MAX_STEPS]);
/* The indexes of the steps done, in the order they ended (ties: table
 * order); returns how many. */
int order_completed(const struct order *o, int out[WF_MAX_STEPS]);
/* Ends the timeline, once: status done when every step is done. */
void order_end_steps(struct order *o, int64_t now);

/* Calls o->on_done on a later pass of loop (loop thread only). */
void order_end_later(struct evloop *loop, struct order *o);
/* Calls o->on_done on loop's thread (from any thread). */
void order_end_posted(struct evloop *loop, struct order *o);

const char *order_status_name(enum order_status s);
const char *step_state_name(enum step_state s);

#endif
