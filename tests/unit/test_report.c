/* Unit tests for report (and the order timeline it reads): the JSON of done and failed orders. */
#include "clock.h"
#include "harness.h"
#include "order.h"
#include "report.h"
#include "workflow.h"

#include <CUnit/Basic.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* Arrival time of every test order; step times are offsets from it. */
#define T0 (5 * NS_PER_SEC)

/* The steps' indices, from the real table (set by the suite's setup). */
static int BOIL, GRIND, BREW, TOAST;

static int find_steps(void)
{
    BOIL = wf_step_lookup(&wf_coffee, "boil_water");
    GRIND = wf_step_lookup(&wf_coffee, "grind_coffee_bean");
    BREW = wf_step_lookup(&wf_coffee, "brew_coffee");
    TOAST = wf_step_lookup(&wf_coffee, "toast_bread");
    return BOIL < 0 || GRIND < 0 || BREW < 0 || TOAST < 0 ? -1 : 0;
}

/* Returns a new async order at scale 1 that arrived at T0. */
static struct order *new_order(void)
{
    int mode = wf_mode_lookup("async");
    CU_ASSERT_FATAL(mode >= 0);
    struct order *o = order_new(mode, 1.0, NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    o->id = 42;
    o->arrived_ns = T0;
    return o;
}

/* The whole workflow, done, with times that exercise the rounding. */
static struct order *done_order(void)
{
    struct order *o = new_order();
    order_step_start(o, BOIL, T0 + 1000);
    order_step_start(o, GRIND, T0 + 2000);
    order_step_done(o, GRIND, "Ground coffee", T0 + 2000498000);
    order_step_done(o, BOIL, "Boiled water", T0 + 3001234567);
    order_step_start(o, BREW, T0 + 3001300000);
    order_step_queued(o, BREW, 1234567);
    order_step_start(o, TOAST, T0 + 3001400000);
    order_step_done(o, TOAST, "Toast", T0 + 3901400000);
    order_step_done(o, BREW, "Coffee", T0 + 4002000000);
    order_end_steps(o, T0 + 4002000000);
    return o;
}

static json_t *step_at(json_t *report, int i)
{
    json_t *steps = json_object_get(report, "steps");
    CU_ASSERT_FATAL(json_is_array(steps));
    json_t *s = json_array_get(steps, (size_t)i);
    CU_ASSERT_FATAL(json_is_object(s));
    return s;
}

static double real_at(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    CU_ASSERT(json_is_number(v));
    return json_number_value(v);
}

static const char *str_at(json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    return s;
}

static void test_report_ms(void)
{
    CU_ASSERT_DOUBLE_EQUAL(report_ms(1234567), 1.235, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(report_ms(1234499), 1.234, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(report_ms(0), 0.0, 0);
    CU_ASSERT_DOUBLE_EQUAL(report_ms(3000000000LL), 3000.0, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(report_ms(999), 0.001, 1e-12);
}

static void test_done_order_fields(void)
{
    struct order *o = done_order();
    CU_ASSERT_EQUAL(o->status, ORDER_DONE);
    json_t *r = report_order(o);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);

    CU_ASSERT(json_is_integer(json_object_get(r, "order_id")));
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(r, "order_id")), 42);
    CU_ASSERT_STRING_EQUAL(str_at(r, "mode"), "async");
    CU_ASSERT_DOUBLE_EQUAL(real_at(r, "scale"), 1.0, 0);
    CU_ASSERT_STRING_EQUAL(str_at(r, "status"), "done");
    CU_ASSERT_DOUBLE_EQUAL(real_at(r, "elapsed_ms"), 4002.0, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(real_at(r, "queued_ms"), 1.235, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(real_at(r, "critical_path_ms"), 4000.0, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(real_at(r, "sequential_ms"), 6900.0, 1e-9);
    CU_ASSERT_PTR_NULL(json_object_get(r, "error"));
    CU_ASSERT_PTR_NULL(json_object_get(r, "failed_step"));

    /* The results, in table order (not completion order). */
    json_t *res = json_object_get(r, "result");
    CU_ASSERT_FATAL(json_is_array(res) && json_array_size(res) == 4);
    const char *want[] = {"Boiled water", "Ground coffee", "Coffee", "Toast"};
    for (size_t i = 0; i < 4; i++)
        CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(res, i)), want[i]);
    json_decref(r);
    order_free(o);
}

static void test_done_order_steps(void)
{
    struct order *o = done_order();
    json_t *r = report_order(o);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_EQUAL(json_array_size(json_object_get(r, "steps")), 4);

    static const struct {
        const char *name, *io;
        size_t nafter;
        double planned, start, queued, end;
        const char *result;
    } want[] = {
        {"boil_water", "http", 0, 3000, 0.001, 0, 3001.235, "Boiled water"},
        {"grind_coffee_bean", "http", 0, 2000, 0.002, 0, 2000.498, "Ground coffee"},
        {"brew_coffee", "sql", 2, 1000, 3001.3, 1.235, 4002.0, "Coffee"},
        {"toast_bread", "http", 2, 900, 3001.4, 0, 3901.4, "Toast"},
    };
    for (int i = 0; i < 4; i++) {
        json_t *s = step_at(r, i);
        CU_ASSERT_STRING_EQUAL(str_at(s, "name"), want[i].name);
        CU_ASSERT_STRING_EQUAL(str_at(s, "io"), want[i].io);
        json_t *after = json_object_get(s, "after");
        CU_ASSERT(json_is_array(after) && json_array_size(after) == want[i].nafter);
        CU_ASSERT_DOUBLE_EQUAL(real_at(s, "planned_ms"), want[i].planned, 1e-9);
        CU_ASSERT_DOUBLE_EQUAL(real_at(s, "start_ms"), want[i].start, 1e-9);
        CU_ASSERT_DOUBLE_EQUAL(real_at(s, "queued_ms"), want[i].queued, 1e-9);
        CU_ASSERT_DOUBLE_EQUAL(real_at(s, "end_ms"), want[i].end, 1e-9);
        CU_ASSERT_STRING_EQUAL(str_at(s, "state"), "done");
        CU_ASSERT_STRING_EQUAL(str_at(s, "result"), want[i].result);
    }
    json_t *after = json_object_get(step_at(r, BREW), "after");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(after, 0)), "boil_water");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(after, 1)), "grind_coffee_bean");

    /* report_steps is the same array on its own. */
    json_t *steps = report_steps(o);
    CU_ASSERT(json_equal(steps, json_object_get(r, "steps")));
    json_decref(steps);
    json_decref(r);
    order_free(o);
}

static void test_failed_order(void)
{
    struct order *o = new_order();
    CU_ASSERT_EQUAL(order_ready(o), (1u << BOIL) | (1u << GRIND));
    order_step_start(o, BOIL, T0 + 1000);
    order_step_start(o, GRIND, T0 + 1000);
    order_step_done(o, BOIL, "Boiled water", T0 + 3000000000LL);
    order_step_fail(o, GRIND, OERR_KITCHEN, "grinder jammed", T0 + 1500000000LL);
    /* A second failure does not replace the first. */
    order_fail(o, OERR_DB, "database down");
    order_end_steps(o, T0 + 3000000000LL);

    CU_ASSERT_EQUAL(o->status, ORDER_FAILED);
    CU_ASSERT_EQUAL(o->error, OERR_KITCHEN);
    CU_ASSERT_EQUAL(order_ready(o), 0u);

    json_t *r = report_order(o);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_STRING_EQUAL(str_at(r, "status"), "failed");
    CU_ASSERT_STRING_EQUAL(str_at(r, "error"), "grinder jammed");
    CU_ASSERT_STRING_EQUAL(str_at(r, "failed_step"), "grind_coffee_bean");
    CU_ASSERT_DOUBLE_EQUAL(real_at(r, "elapsed_ms"), 3000.0, 1e-9);

    json_t *res = json_object_get(r, "result");
    CU_ASSERT_FATAL(json_is_array(res) && json_array_size(res) == 1);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(res, 0)), "Boiled water");

    json_t *g = step_at(r, GRIND);
    CU_ASSERT_STRING_EQUAL(str_at(g, "state"), "failed");
    CU_ASSERT_DOUBLE_EQUAL(real_at(g, "end_ms"), 1500.0, 1e-9);
    CU_ASSERT(json_is_null(json_object_get(g, "result")));

    /* Steps that never started: pending, with null times and result. */
    for (int i = BREW; i <= TOAST; i++) {
        json_t *s = step_at(r, i);
        CU_ASSERT_STRING_EQUAL(str_at(s, "state"), "pending");
        CU_ASSERT(json_is_null(json_object_get(s, "start_ms")));
        CU_ASSERT(json_is_null(json_object_get(s, "end_ms")));
        CU_ASSERT(json_is_null(json_object_get(s, "result")));
        CU_ASSERT_DOUBLE_EQUAL(real_at(s, "queued_ms"), 0.0, 0);
    }
    json_decref(r);
    order_free(o);
}

static void test_order_fail_without_step(void)
{
    struct order *o = new_order();
    order_step_start(o, BOIL, T0 + 10);
    order_fail(o, OERR_DB, "database unavailable");
    order_abandon_steps(o, T0 + 2000000);
    order_end_steps(o, T0 + 2000000);
    CU_ASSERT_EQUAL(order_ready(o), 0u);
    json_t *r = report_order(o);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_STRING_EQUAL(str_at(r, "error"), "database unavailable");
    CU_ASSERT(json_is_null(json_object_get(r, "failed_step")));
    CU_ASSERT_STRING_EQUAL(str_at(step_at(r, BOIL), "state"), "abandoned");
    CU_ASSERT_DOUBLE_EQUAL(real_at(step_at(r, BOIL), "end_ms"), 2.0, 1e-9);
    CU_ASSERT_EQUAL(json_array_size(json_object_get(r, "result")), 0);
    json_decref(r);
    order_free(o);
}

static void test_dumps_round_trip(void)
{
    struct order *o = done_order();
    json_t *r = report_order(o);
    char *text = report_dumps(r);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    CU_ASSERT_PTR_NULL(strchr(text, '\n')); /* compact */
    /* Microsecond rounding shows in the text itself. */
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"queued_ms\":1.235"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"end_ms\":3001.235"));

    json_error_t jerr;
    json_t *back = json_loads(text, 0, &jerr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(back);
    CU_ASSERT(json_equal(back, r));
    CU_ASSERT_DOUBLE_EQUAL(real_at(back, "queued_ms"), 1.235, 0);
    CU_ASSERT_DOUBLE_EQUAL(real_at(step_at(back, BOIL), "end_ms"), 3001.235, 0);
    CU_ASSERT_DOUBLE_EQUAL(real_at(step_at(back, BOIL), "start_ms"), 0.001, 0);
    json_decref(back);
    free(text);
    CU_ASSERT_PTR_NULL(report_dumps(NULL));
    json_decref(r);
    order_free(o);
}

static void test_order_results(void)
{
    struct order *o = new_order();
    order_step_start(o, BOIL, T0);
    order_step_done(o, BOIL, "Boiled water", T0 + 1);
    order_step_start(o, GRIND, T0);
    const char *results[WF_MAX_STEPS];
    order_results(o, results);
    CU_ASSERT_STRING_EQUAL(results[BOIL], "Boiled water");
    CU_ASSERT_PTR_NULL(results[GRIND]);
    CU_ASSERT_PTR_NULL(results[BREW]);
    /* A step still running keeps the order running. */
    order_end_steps(o, T0 + 2);
    CU_ASSERT_EQUAL(o->status, ORDER_RUNNING);
    CU_ASSERT_EQUAL(order_ready(o), 0u);
    order_free(o);
    order_free(NULL);
}

/* The answer's text is built once and kept until the order changes: the
 * finish statement and the answer share it, and a change recorded after
 * (the row could not be written) is never answered from a stale copy. */
static void test_order_text_built_once(void)
{
    struct order *o = done_order();
    const char *first = report_order_text(o);
    CU_ASSERT_PTR_NOT_NULL_FATAL(first);
    json_t *r = report_order(o);
    char *fresh = report_dumps(r);
    CU_ASSERT_STRING_EQUAL(first, fresh); /* the same text report_order dumps */
    free(fresh);
    json_decref(r);
    CU_ASSERT_PTR_EQUAL(report_order_text(o), first); /* kept, not rebuilt */

    order_not_recorded(o, "database gone");
    const char *after = report_order_text(o);
    CU_ASSERT_PTR_NOT_NULL_FATAL(after);
    json_t *j = json_loads(after, 0, NULL);
    CU_ASSERT_STRING_EQUAL(str_at(j, "status"), "failed");
    CU_ASSERT_STRING_EQUAL(str_at(j, "error"), "could not record the order: database gone");
    json_decref(j);
    order_free(o); /* frees the text too (ASan checks) */
}

/* gather_tasks.py's lesson: results in the order asked for (A1, B2, C3),
 * completions in time order (C, A, B); coffee's answer has neither
 * "recipe" nor "completed" (it stays as it was). */
static void test_recipe_order(void)
{
    struct order *o = new_order();
    o->recipe = wf_recipe_builtin("gather");
    CU_ASSERT_PTR_NOT_NULL_FATAL(o->recipe);
    for (int i = 0; i < 3; i++)
        order_step_start(o, i, T0 + 1000);
    order_step_done(o, 2, "C3", T0 + 1000000000);
    order_step_done(o, 0, "A1", T0 + 2000000000);
    order_step_done(o, 1, "B2", T0 + 4000000000LL);
    order_end_steps(o, T0 + 4000000000LL);
    int done[WF_MAX_STEPS];
    CU_ASSERT_EQUAL(order_completed(o, done), 3);
    CU_ASSERT(done[0] == 2 && done[1] == 0 && done[2] == 1);
    json_t *r = report_order(o);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_STRING_EQUAL(str_at(r, "status"), "done");
    CU_ASSERT_STRING_EQUAL(str_at(r, "recipe"), "gather");
    static const char *const results[] = {"A1", "B2", "C3"}, *const completed[] = {"C", "A", "B"};
    json_t *res = json_object_get(r, "result"), *comp = json_object_get(r, "completed");
    CU_ASSERT_EQUAL_FATAL(json_array_size(res), 3);
    CU_ASSERT_EQUAL_FATAL(json_array_size(comp), 3);
    for (size_t i = 0; i < 3; i++) {
        CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(res, i)), results[i]);
        CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(comp, i)), completed[i]);
    }
    CU_ASSERT_DOUBLE_EQUAL(json_real_value(json_object_get(r, "critical_path_ms")), 4000, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(json_real_value(json_object_get(r, "sequential_ms")), 7000, 1e-9);
    CU_ASSERT_EQUAL(json_array_size(json_object_get(r, "steps")), 3);
    json_decref(r);
    order_free(o);

    o = done_order();
    r = report_order(o);
    CU_ASSERT_PTR_NULL(json_object_get(r, "recipe"));
    CU_ASSERT_PTR_NULL(json_object_get(r, "completed"));
    CU_ASSERT_EQUAL(order_completed(o, done), 4); /* grind, boil, toast, brew */
    CU_ASSERT(done[0] == GRIND && done[1] == BOIL && done[2] == TOAST && done[3] == BREW);
    json_decref(r);
    order_free(o);
}

int main(void)
{
    static const struct harness_test tests[] = {
        {"report_ms rounds to the microsecond", test_report_ms},
        {"done order: top-level fields", test_done_order_fields},
        {"done order: steps", test_done_order_steps},
        {"failed order: error, failed_step, pending steps", test_failed_order},
        {"order failed without a step", test_order_fail_without_step},
        {"report_dumps round trip", test_dumps_round_trip},
        {"order_results and a running order", test_order_results},
        {"report_order_text: built once, forgotten when the order changes", test_order_text_built_once},
        {"an order of another recipe: its results in table order, its completions in time order", test_recipe_order},
        {NULL, NULL},
    };
    return harness_main("report", find_steps, NULL, tests);
}
