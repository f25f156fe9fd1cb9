/* Integration: GET /workflow serves the workflow and the mode table, the
 * one copy the page and the bench scripts read: the steps with their I/O
 * kind, dependencies and durations, the critical path (4000 ms at scale 1)
 * and the sequential sum (6900 ms), every mode with its executor, lesson
 * and expected elapsed, at the asked scale; bad input is a JSON 400. The
 * server runs with a default scale and a subset of modes of its own, so
 * that what it says of itself is seen to come from its flags. */
#include "harness.h"

#include "workflow.h"

#include <CUnit/Basic.h>
#include <stdio.h>
#include <string.h>

static struct stack st;
static PGconn *db;

static int setup(void)
{
    static const char *const args[] = {"--scale", "0.5", "--modes", "blocking,async,naive", NULL};
    return stack_setup(&st, args, &db);
}
static int teardown(void)
{
    return stack_teardown(&st, db);
}

static json_t *get(const char *query, long *status)
{
    char url[200];
    snprintf(url, sizeof url, "%s/workflow%s", st.server.base_url, query);
    return http_get_json(url, status);
}

/* The element of array whose "name" is name, or NULL. */
static json_t *named(const json_t *array, const char *name)
{
    size_t i;
    json_t *v;
    json_array_foreach(array, i, v) if (!strcmp(jstr(v, "name"), name)) return v;
    return NULL;
}

static void test_scale_1(void)
{
    long status;
    json_t *w = get("", &status);
    CU_ASSERT_EQUAL(status, 200);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    CU_ASSERT_DOUBLE_EQUAL(jnum(w, "scale"), 1.0, 1e-9); /* not the server's default: the facts at 1 */
    CU_ASSERT_DOUBLE_EQUAL(jnum(w, "default_scale"), 0.5, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(jnum(w, "scale_max"), 10.0, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(jnum(w, "critical_path_ms"), 4000.0, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(jnum(w, "sequential_ms"), 6900.0, 1e-9);

    /* The steps, in table order, each as the table says. */
    json_t *steps = json_object_get(w, "steps");
    CU_ASSERT_FATAL(json_is_array(steps));
    CU_ASSERT_EQUAL_FATAL((int)json_array_size(steps), wf_coffee.nsteps);
    for (int i = 0; i < wf_coffee.nsteps; i++) {
        json_t *s = json_array_get(steps, (size_t)i);
        CU_ASSERT_STRING_EQUAL(jstr(s, "name"), wf_coffee.steps[i].name);
        CU_ASSERT_STRING_EQUAL(jstr(s, "io"), wf_coffee.steps[i].io == IO_HTTP ? "http" : "sql");
        CU_ASSERT_DOUBLE_EQUAL(jnum(s, "planned_ms"), wf_coffee.steps[i].planned_ms, 1e-9);
    }
    CU_ASSERT_DOUBLE_EQUAL(jnum(named(steps, "boil_water"), "planned_ms"), 3000.0, 1e-9);
    CU_ASSERT_STRING_EQUAL(jstr(named(steps, "brew_coffee"), "io"), "sql");
    json_t *after = json_object_get(named(steps, "toast_bread"), "after");
    CU_ASSERT_EQUAL(json_array_size(after), 2);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(after, 0)), "boil_water");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(after, 1)), "grind_coffee_bean");
    CU_ASSERT_EQUAL(json_array_size(json_object_get(named(steps, "boil_water"), "after")), 0);

    /* Every mode, in table order; --modes decides which are offered. */
    static const struct {
        const char *name, *executor;
        int deps, blocks, offered;
        double expected_ms;
    } modes[] = {{"blocking", "blocking", 1, 0, 1, 6900}, {"async", "async", 1, 0, 1, 4000},
                 {"naive", "async", 0, 0, 1, 3000},       {"mixed", "async", 1, 1, 0, 4900},
                 {"threads", "threads", 1, 0, 0, 6900},   {"offload", "async", 1, 0, 0, 4000}};
    json_t *ms = json_object_get(w, "modes");
    CU_ASSERT_EQUAL_FATAL((int)json_array_size(ms), wf_nmodes);
    CU_ASSERT_EQUAL_FATAL(wf_nmodes, (int)(sizeof modes / sizeof modes[0]));
    for (int i = 0; i < wf_nmodes; i++) {
        json_t *m = json_array_get(ms, (size_t)i);
        CU_ASSERT_STRING_EQUAL(jstr(m, "name"), modes[i].name);
        CU_ASSERT_STRING_EQUAL(jstr(m, "executor"), modes[i].executor);
        CU_ASSERT_EQUAL(json_is_true(json_object_get(m, "respects_dependencies")), modes[i].deps);
        CU_ASSERT_EQUAL(json_is_true(json_object_get(m, "blocks_loop")), modes[i].blocks);
        CU_ASSERT_EQUAL(json_is_true(json_object_get(m, "offered")), modes[i].offered);
        CU_ASSERT_DOUBLE_EQUAL(jnum(m, "expected_ms"), modes[i].expected_ms, 1e-9);
        CU_ASSERT_STRING_EQUAL(jstr(m, "lesson"), wf_modes[i].lesson);
        CU_ASSERT(strlen(jstr(m, "lesson")) > 20);
    }
    json_t *cmp = json_object_get(w, "compare_default");
    CU_ASSERT_EQUAL(json_array_size(cmp), 2);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(cmp, 0)), "blocking");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(cmp, 1)), "async");
    json_decref(w);
}

/* ?scale=S multiplies every duration, as it does for an order. */
static void test_scaled(void)
{
    long status;
    json_t *w = get("?scale=0.25", &status);
    CU_ASSERT_EQUAL(status, 200);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    CU_ASSERT_DOUBLE_EQUAL(jnum(w, "scale"), 0.25, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(jnum(w, "critical_path_ms"), 1000.0, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(jnum(w, "sequential_ms"), 1725.0, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(jnum(named(json_object_get(w, "steps"), "toast_bread"), "planned_ms"), 225.0, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(jnum(named(json_object_get(w, "modes"), "mixed"), "expected_ms"), 1225.0, 1e-9);
    json_decref(w);
}

/* What /workflow says an order plans is what the order's answer says. */
static void test_matches_an_order(void)
{
    char url[200];
    long status;
    snprintf(url, sizeof url, "%s/make-coffee?mode=async&scale=0.05", st.server.base_url);
    json_t *o = http_get_json(url, &status);
    json_t *w = get("?scale=0.05", &status);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    CU_ASSERT_DOUBLE_EQUAL(jnum(w, "critical_path_ms"), jnum(o, "critical_path_ms"), 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(jnum(w, "sequential_ms"), jnum(o, "sequential_ms"), 1e-9);
    for (int i = 0; i < wf_coffee.nsteps; i++)
        CU_ASSERT_DOUBLE_EQUAL(jnum(jstep(o, wf_coffee.steps[i].name), "planned_ms"),
                               jnum(named(json_object_get(w, "steps"), wf_coffee.steps[i].name), "planned_ms"), 1e-9);
    json_decref(o);
    json_decref(w);
}

static void test_bad_input(void)
{
    static const char *const queries[] = {"?scale=11", "?scale=-1",        "?scale=fast",
                                          "?scale",    "?scale=1&scale=2", "?mode=async"};
    for (size_t i = 0; i < sizeof queries / sizeof queries[0]; i++) {
        long status;
        json_t *e = get(queries[i], &status);
        CU_ASSERT_EQUAL(status, 400);
        CU_ASSERT_PTR_NOT_NULL(e);
        CU_ASSERT(json_is_string(json_object_get(e, "error")));
        json_decref(e);
    }
    /* GET only, as everywhere. */
    char url[200];
    struct http_result r;
    snprintf(url, sizeof url, "%s/workflow", st.server.base_url);
    CU_ASSERT_EQUAL_FATAL(http_request("POST", url, &r), 0);
    CU_ASSERT_EQUAL(r.status, 405);
    http_result_free(&r);
}

int main(void)
{
    static const struct harness_test tests[] = {
        {"/workflow at scale 1: steps, 4000 ms, 6900 ms, every mode", test_scale_1},
        {"/workflow?scale= scales every figure", test_scaled},
        {"/workflow plans what an order plans", test_matches_an_order},
        {"/workflow: bad input is a JSON 400", test_bad_input},
        {NULL, NULL},
    };
    return harness_main("facts", setup, teardown, tests);
}
