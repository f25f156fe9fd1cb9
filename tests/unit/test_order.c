/* Unit tests for order: the step and order state machines. Legal changes
 * record the timeline; an illegal one (an executor bug) fails a CHECK and
 * aborts, which each test sees from a forked child (harness_aborts). */
#include "harness.h"
#include "order.h"
#include "workflow.h"

#include <CUnit/Basic.h>
#include <string.h>

static void noop_done(struct order *o, void *arg)
{
    (void)o, (void)arg;
}

static struct order *new_order(void)
{
    struct order *o = order_new(wf_mode_lookup("async"), 0.01, noop_done, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    return o;
}

/* Every step run and done, in table order: the order is done. */
static void test_all_done(void)
{
    struct order *o = new_order();
    for (int i = 0; i < wf_coffee.nsteps; i++) {
        CU_ASSERT_TRUE(order_ready(o) & (1u << i));
        order_step_start(o, i, 1);
        if (wf_coffee.steps[i].io == IO_SQL) {
            order_step_waiting(o, i);
            CU_ASSERT_EQUAL(o->steps[i].state, STEP_WAITING);
        }
        order_step_end(o, i, 0, "ok", NULL, 2);
        CU_ASSERT_EQUAL(o->steps[i].state, STEP_DONE);
    }
    order_end_steps(o, 3);
    CU_ASSERT_EQUAL(o->status, ORDER_DONE);
    /* Done, but the row could not be written: failed, never a success. */
    order_not_recorded(o, "database down");
    CU_ASSERT_EQUAL(o->status, ORDER_FAILED);
    CU_ASSERT_EQUAL(o->error, OERR_DB);
    order_free(o);
}

/* The first failure stands; running steps are abandoned; a failed order
 * starts nothing more. */
static void test_first_failure_stands(void)
{
    struct order *o = new_order();
    order_step_start(o, 0, 1);
    order_step_start(o, 1, 1);
    order_step_end(o, 1, OERR_KITCHEN, NULL, "no beans", 2);
    order_fail(o, OERR_SHUTDOWN, "later");
    order_abandon_steps(o, 3);
    CU_ASSERT_EQUAL(o->status, ORDER_FAILED);
    CU_ASSERT_EQUAL(o->error, OERR_KITCHEN);
    CU_ASSERT_EQUAL(o->failed_step, 1);
    CU_ASSERT_STRING_EQUAL(o->errmsg, "grind_coffee_bean: no beans");
    CU_ASSERT_EQUAL(o->steps[0].state, STEP_ABANDONED);
    CU_ASSERT_EQUAL(o->steps[1].state, STEP_FAILED);
    CU_ASSERT_EQUAL(order_ready(o), 0u);
    order_end_steps(o, 4);
    CU_ASSERT_EQUAL(o->status, ORDER_FAILED);
    order_free(o);
}

/* ---- illegal changes (each run in a child, which must abort) ------------ */

static void start_twice(void *arg)
{
    (void)arg;
    struct order *o = new_order();
    order_step_start(o, 0, 1);
    order_step_start(o, 0, 2);
}

static void done_while_pending(void *arg)
{
    (void)arg;
    order_step_done(new_order(), 0, "ok", 1);
}

static void done_twice(void *arg)
{
    (void)arg;
    struct order *o = new_order();
    order_step_start(o, 0, 1);
    order_step_done(o, 0, "ok", 2);
    order_step_done(o, 0, "ok", 3);
}

static void done_after_abandoned(void *arg)
{
    (void)arg;
    struct order *o = new_order();
    order_step_start(o, 0, 1);
    order_fail(o, OERR_SHUTDOWN, "cancelled");
    order_abandon_steps(o, 2);
    order_step_done(o, 0, "ok", 3);
}

static void waiting_while_pending(void *arg)
{
    (void)arg;
    order_step_waiting(new_order(), 2);
}

static void start_after_failure(void *arg)
{
    (void)arg;
    struct order *o = new_order();
    order_fail(o, OERR_DB, "no row");
    order_step_start(o, 0, 1);
}

static void ended_twice_done(void *arg)
{
    (void)arg;
    struct order *o = new_order();
    for (int i = 0; i < wf_coffee.nsteps; i++) {
        order_step_start(o, i, 1);
        order_step_done(o, i, "ok", 2);
    }
    order_end_steps(o, 3);
    order_end_steps(o, 4);
}

static void legal_sequence(void *arg)
{
    (void)arg;
    test_all_done();
}

static void test_illegal_changes_abort(void)
{
#if COFFEE_CHECKS
    static const struct {
        const char *what;
        void (*fn)(void *);
    } cases[] = {
        {"a step started twice", start_twice},
        {"a result for a step never started", done_while_pending},
        {"a step done twice", done_twice},
        {"a result for an abandoned step", done_after_abandoned},
        {"waiting for a step not running", waiting_while_pending},
        {"a step started after the order failed", start_after_failure},
        {"a done order ended again", ended_twice_done},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int aborted = harness_aborts(cases[i].fn, NULL);
        if (aborted != 1)
            fprintf(stderr, "\n    did not abort: %s\n", cases[i].what);
        CU_ASSERT_EQUAL(aborted, 1);
    }
#endif
    CU_ASSERT_EQUAL(harness_aborts(legal_sequence, NULL), 0);
}

int main(void)
{
    static const struct harness_test tests[] = {
        {"every step done: done; not recorded: failed", test_all_done},
        {"the first failure stands", test_first_failure_stands},
        {"illegal state changes abort (check)", test_illegal_changes_abort},
        {NULL, NULL},
    };
    return harness_main("order", NULL, NULL, tests);
}
