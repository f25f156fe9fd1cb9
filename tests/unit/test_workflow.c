/* Unit tests for workflow (the step table, dependency logic, durations) and for the step I/O that kitchen_client (URLs,
 * answers) and db (ingredients) own. */
#include "db.h"
#include "harness.h"
#include "kitchen_client.h"
#include "workflow.h"

#include <CUnit/Basic.h>
#include <stdio.h>
#include <string.h>

#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* Index of the step called name, or -1. */
static int step_index(const char *name)
{
    for (int i = 0; i < wf_coffee.nsteps; i++)
        if (!strcmp(wf_coffee.steps[i].name, name))
            return i;
    return -1;
}

static unsigned bit(const char *name)
{
    int i = step_index(name);
    CU_ASSERT_FATAL(i >= 0);
    return 1u << i;
}

/* ---- the step table ----------------------------------------------------- */

static void test_table_is_topological(void)
{
    CU_ASSERT_FATAL(wf_coffee.nsteps > 0 && wf_coffee.nsteps <= WF_MAX_STEPS);
    for (int i = 0; i < wf_coffee.nsteps; i++) {
        /* Every dependency has a lower index: no bit at i or above. */
        CU_ASSERT_EQUAL(wf_coffee.steps[i].after >> i, 0u);
        CU_ASSERT_PTR_NOT_NULL(wf_coffee.steps[i].name);
        CU_ASSERT(wf_coffee.steps[i].planned_ms > 0);
        /* HTTP steps need a kitchen target; SQL steps have none. */
        if (wf_coffee.steps[i].io == IO_HTTP)
            CU_ASSERT(wf_coffee.steps[i].target && wf_coffee.steps[i].target[0] == '/');
    }
}

static void test_names_unique(void)
{
    for (int i = 0; i < wf_coffee.nsteps; i++)
        for (int j = i + 1; j < wf_coffee.nsteps; j++)
            CU_ASSERT_STRING_NOT_EQUAL(wf_coffee.steps[i].name, wf_coffee.steps[j].name);
    for (int i = 0; i < wf_nmodes; i++)
        for (int j = i + 1; j < wf_nmodes; j++)
            CU_ASSERT_STRING_NOT_EQUAL(wf_modes[i].name, wf_modes[j].name);
}

static void test_expected_steps(void)
{
    const unsigned boil = bit("boil_water"), grind = bit("grind_coffee_bean");
    CU_ASSERT_EQUAL(wf_coffee.nsteps, 4);
    CU_ASSERT_EQUAL(wf_coffee.steps[step_index("brew_coffee")].after, boil | grind);
    CU_ASSERT_EQUAL(wf_coffee.steps[step_index("brew_coffee")].io, IO_SQL);
    CU_ASSERT_EQUAL(wf_coffee.steps[step_index("toast_bread")].after, boil | grind);
    CU_ASSERT_EQUAL(wf_all_steps(&wf_coffee), 0xfu);
}

/* ---- wf_ready ----------------------------------------------------------- */

static void test_ready(void)
{
    const unsigned boil = bit("boil_water"), grind = bit("grind_coffee_bean");
    const unsigned brew = bit("brew_coffee"), toast = bit("toast_bread");
    /* Nothing done: the two independent steps are ready. */
    CU_ASSERT_EQUAL(wf_ready(&wf_coffee, 0, 0, 0), boil | grind);
    /* Started steps are excluded. */
    CU_ASSERT_EQUAL(wf_ready(&wf_coffee, 0, boil, 0), grind);
    CU_ASSERT_EQUAL(wf_ready(&wf_coffee, 0, boil | grind, 0), 0u);
    /* Boil done only: nothing new becomes ready. */
    CU_ASSERT_EQUAL(wf_ready(&wf_coffee, boil, boil | grind, 0), 0u);
    CU_ASSERT_EQUAL(wf_ready(&wf_coffee, grind, boil | grind, 0), 0u);
    /* Both done: brew and toast. */
    CU_ASSERT_EQUAL(wf_ready(&wf_coffee, boil | grind, boil | grind, 0), brew | toast);
    CU_ASSERT_EQUAL(wf_ready(&wf_coffee, boil | grind, boil | grind | brew, 0), toast);
    CU_ASSERT_EQUAL(wf_ready(&wf_coffee, wf_all_steps(&wf_coffee), wf_all_steps(&wf_coffee), 0), 0u);
    /* Ignoring dependencies (naive): every step not started is ready. */
    CU_ASSERT_EQUAL(wf_ready(&wf_coffee, 0, 0, 1), wf_all_steps(&wf_coffee));
    CU_ASSERT_EQUAL(wf_ready(&wf_coffee, 0, boil, 1), grind | brew | toast);
}

/* ---- durations ---------------------------------------------------------- */

static void test_path_lengths(void)
{
    CU_ASSERT_DOUBLE_EQUAL(wf_critical_path_ms(&wf_coffee, 1.0), 4000.0, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(wf_sequential_ms(&wf_coffee, 1.0), 6900.0, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(wf_critical_path_ms(&wf_coffee, 0.0), 0.0, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(wf_sequential_ms(&wf_coffee, 0.0), 0.0, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(wf_critical_path_ms(&wf_coffee, 0.25), 1000.0, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(wf_sequential_ms(&wf_coffee, 0.25), 1725.0, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(wf_critical_path_ms(&wf_coffee, 10.0), 40000.0, 1e-9);
}

/* The elapsed each mode should show, played out from the table: the
 * figures the README, the page and the bench quote (6.9 s, 4.0 s, 3.0 s,
 * 4.9 s at scale 1). */
static void test_expected(void)
{
    static const struct {
        const char *mode;
        double ms; /* at scale 1 */
    } cases[] = {{"blocking", 6900}, {"async", 4000},   {"naive", 3000},
                 {"mixed", 4900},    {"threads", 6900}, {"offload", 4000}};
    CU_ASSERT_EQUAL(wf_nmodes, (int)NELEMS(cases));
    for (size_t i = 0; i < NELEMS(cases); i++) {
        int m = wf_mode_lookup(cases[i].mode);
        CU_ASSERT_FATAL(m >= 0);
        CU_ASSERT_DOUBLE_EQUAL(wf_expected_ms(&wf_coffee, &wf_modes[m], 1.0), cases[i].ms, 1e-9);
        CU_ASSERT_DOUBLE_EQUAL(wf_expected_ms(&wf_coffee, &wf_modes[m], 0.1), cases[i].ms / 10, 1e-9);
        CU_ASSERT_DOUBLE_EQUAL(wf_expected_ms(&wf_coffee, &wf_modes[m], 0.0), 0.0, 1e-9);
        CU_ASSERT_PTR_NOT_NULL(wf_modes[m].lesson);
    }
    /* The two executors' figures are the two path lengths. */
    CU_ASSERT_DOUBLE_EQUAL(wf_expected_ms(&wf_coffee, &wf_modes[wf_mode_lookup("blocking")], 0.25),
                           wf_sequential_ms(&wf_coffee, 0.25), 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(wf_expected_ms(&wf_coffee, &wf_modes[wf_mode_lookup("async")], 0.25),
                           wf_critical_path_ms(&wf_coffee, 0.25), 1e-9);
    CU_ASSERT_STRING_EQUAL(wf_exec_name(EXEC_BLOCKING), "blocking");
    CU_ASSERT_STRING_EQUAL(wf_exec_name(EXEC_ASYNC), "async");
    CU_ASSERT_STRING_EQUAL(wf_exec_name(EXEC_THREADS), "threads");
    /* threads runs blocking's steps, its own thread per order: the same sum. */
    CU_ASSERT_DOUBLE_EQUAL(wf_expected_ms(&wf_coffee, &wf_modes[wf_mode_lookup("threads")], 0.25),
                           wf_sequential_ms(&wf_coffee, 0.25), 1e-9);
    CU_ASSERT_STRING_EQUAL(wf_io_name(IO_HTTP), "http");
    CU_ASSERT_STRING_EQUAL(wf_io_name(IO_SQL), "sql");
}

static void test_step_ms_rounding(void)
{
    /* Scales chosen so the products are exact in binary. */
    static const struct {
        double planned, scale;
        int want;
    } cases[] = {
        {3000, 1.0, 3000},   {900, 0.125, 113},       /* 112.5 rounds away from zero */
        {1000, 0.0625, 63},                           /* 62.5 */
        {900, 0.0625, 56},                            /* 56.25 */
        {2000, 0.0, 0},      {900, 0.00048828125, 0}, /* 0.439... */
        {1000, 10.0, 10000},
    };
    for (size_t i = 0; i < NELEMS(cases); i++) {
        struct step_def d = {"x", IO_HTTP, 0, cases[i].planned, "/x", NULL};
        CU_ASSERT_EQUAL(wf_step_ms(&d, cases[i].scale), cases[i].want);
    }
}

/* ---- modes -------------------------------------------------------------- */

static void test_mode_lookup(void)
{
    int b = wf_mode_lookup("blocking"), a = wf_mode_lookup("async");
    CU_ASSERT_FATAL(b >= 0 && b < wf_nmodes);
    CU_ASSERT_FATAL(a >= 0 && a < wf_nmodes);
    CU_ASSERT_EQUAL(wf_modes[b].exec, EXEC_BLOCKING);
    CU_ASSERT_EQUAL(wf_modes[a].exec, EXEC_ASYNC);
    CU_ASSERT_EQUAL(wf_modes[wf_mode_lookup("threads")].exec, EXEC_THREADS);
    CU_ASSERT_EQUAL(wf_mode_lookup("turbo"), -1);
    CU_ASSERT_EQUAL(wf_mode_lookup(""), -1);
    CU_ASSERT_EQUAL(wf_mode_lookup("Async"), -1);
    CU_ASSERT_STRING_EQUAL(wf_mode_names(), "blocking|async|naive|mixed|threads|offload");
}

/* ---- kitchen URLs and answers ------------------------------------------- */

static void test_http_url(void)
{
    const struct step_def *boil = &wf_coffee.steps[step_index("boil_water")];
    char buf[128];
    CU_ASSERT_EQUAL(kc_url(boil, "http://127.0.0.1:8081", 1.0, buf, sizeof buf), 0);
    CU_ASSERT_STRING_EQUAL(buf, "http://127.0.0.1:8081/kettle?ms=3000");
    CU_ASSERT_EQUAL(kc_url(boil, "http://127.0.0.1:8081/", 0.25, buf, sizeof buf), 0);
    CU_ASSERT_STRING_EQUAL(buf, "http://127.0.0.1:8081/kettle?ms=750");
    CU_ASSERT_EQUAL(kc_url(boil, "http://k//", 0.0, buf, sizeof buf), 0);
    CU_ASSERT_STRING_EQUAL(buf, "http://k/kettle?ms=0");

    const char *want = "http://k/kettle?ms=3000";
    size_t n = strlen(want);
    CU_ASSERT_EQUAL(kc_url(boil, "http://k", 1.0, buf, n + 1), 0); /* exact fit */
    CU_ASSERT_STRING_EQUAL(buf, want);
    CU_ASSERT_EQUAL(kc_url(boil, "http://k", 1.0, buf, n), -1); /* one short */
    CU_ASSERT_EQUAL(kc_url(boil, "http://k", 1.0, buf, 4), -1);
}

/* A task step's URL carries its result, percent-encoded but for the
 * unreserved bytes; one that does not fit fails whole. */
static void test_task_url(void)
{
    struct step_def t = {"other", IO_HTTP, 0, 2000, "/task", "Do other work: 1+1 ~ \"2\""};
    char buf[160];
    CU_ASSERT_EQUAL(kc_url(&t, "http://k/", 0.5, buf, sizeof buf), 0);
    CU_ASSERT_STRING_EQUAL(buf, "http://k/task?ms=1000&result=Do%20other%20work%3A%201%2B1%20~%20%222%22");
    const char *want = "http://k/task?ms=1000&result=Do%20other%20work%3A%201%2B1%20~%20%222%22";
    CU_ASSERT_EQUAL(kc_url(&t, "http://k", 0.5, buf, strlen(want) + 1), 0);  /* exact fit */
    CU_ASSERT_EQUAL(kc_url(&t, "http://k", 0.5, buf, strlen(want)), -1);     /* one short */
    CU_ASSERT_EQUAL(kc_url(&t, "http://k", 0.5, buf, strlen(want) - 1), -1); /* inside a %XX */
    struct step_def a = {"A", IO_HTTP, 0, 2000, "/task", "A1"};
    CU_ASSERT_EQUAL(kc_url(&a, "http://k", 0.001, buf, sizeof buf), 0);
    CU_ASSERT_STRING_EQUAL(buf, "http://k/task?ms=2&result=A1");
}

/* The seed's programs as recipes: their figures are the blog post's. */
static void test_builtin_recipes(void)
{
    static const struct {
        const char *name;
        int nsteps;
        double critical, sequential; /* ms at scale 1 */
    } cases[] = {
        {"coffee", 4, 4000, 6900},
        {"gather", 3, 4000, 7000},
        {"create_tasks", 3, 4000, 6000},
        {"hello", 1, 1000, 1000},
    };
    CU_ASSERT_EQUAL(wf_nrecipes, (int)NELEMS(cases));
    CU_ASSERT_PTR_EQUAL(wf_recipes[0], &wf_coffee);
    for (size_t i = 0; i < NELEMS(cases); i++) {
        const struct recipe *r = wf_recipe_builtin(cases[i].name);
        CU_ASSERT_PTR_NOT_NULL_FATAL(r);
        CU_ASSERT_STRING_EQUAL(r->name, cases[i].name);
        CU_ASSERT_EQUAL(r->nsteps, cases[i].nsteps);
        CU_ASSERT_DOUBLE_EQUAL(wf_critical_path_ms(r, 1.0), cases[i].critical, 1e-9);
        CU_ASSERT_DOUBLE_EQUAL(wf_sequential_ms(r, 1.0), cases[i].sequential, 1e-9);
        CU_ASSERT_DOUBLE_EQUAL(wf_expected_ms(r, &wf_modes[wf_mode_lookup("blocking")], 0.1), cases[i].sequential / 10,
                               1e-9);
        CU_ASSERT_DOUBLE_EQUAL(wf_expected_ms(r, &wf_modes[wf_mode_lookup("async")], 0.1), cases[i].critical / 10,
                               1e-9);
        CU_ASSERT_EQUAL(wf_all_steps(r), (1u << cases[i].nsteps) - 1u);
        for (int s = 0; s < r->nsteps; s++) {
            CU_ASSERT_EQUAL(wf_step_lookup(r, r->steps[s].name), s);
            CU_ASSERT_EQUAL(r->steps[s].after >> s, 0u); /* topological */
            if (r != &wf_coffee)
                CU_ASSERT(r->steps[s].io == IO_HTTP && !strcmp(r->steps[s].target, "/task") && r->steps[s].result);
        }
    }
    const struct recipe *g = wf_recipe_builtin("gather");
    CU_ASSERT_STRING_EQUAL(g->steps[0].result, "A1");
    CU_ASSERT_STRING_EQUAL(g->steps[1].result, "B2");
    CU_ASSERT_STRING_EQUAL(g->steps[2].result, "C3");
    CU_ASSERT_EQUAL(wf_ready(g, 0, 0, 0), 7u); /* all at once */
    CU_ASSERT_PTR_NULL(wf_recipe_builtin("tea"));
    CU_ASSERT_PTR_NULL(wf_recipe_builtin(""));
    CU_ASSERT_EQUAL(wf_step_lookup(g, "boil_water"), -1);
}

static void test_parse_http_result(void)
{
    static const struct {
        const char *body;
        size_t outlen;
        const char *want; /* NULL: must fail */
    } cases[] = {
        {"{\"result\":\"Boiled water\",\"ms\":3000}", WF_RESULT_MAX, "Boiled water"},
        {"{\"result\":\"\"}", WF_RESULT_MAX, ""},
        {"{\"result\":\"1234567\"}", 8, "1234567"}, /* exactly fits with its NUL */
        {"{\"result\":\"12345678\"}", 8, NULL},     /* too long */
        {"not json", WF_RESULT_MAX, NULL},
        {"{\"result\":", WF_RESULT_MAX, NULL},
        {"", WF_RESULT_MAX, NULL},
        {"{\"ms\":3000}", WF_RESULT_MAX, NULL},
        {"{\"result\":42}", WF_RESULT_MAX, NULL},
        {"{\"result\":null}", WF_RESULT_MAX, NULL},
        {"[\"result\"]", WF_RESULT_MAX, NULL},
    };
    for (size_t i = 0; i < NELEMS(cases); i++) {
        char out[WF_RESULT_MAX] = "unchanged", err[256] = "";
        int rc = kc_parse_result(cases[i].body, strlen(cases[i].body), out, cases[i].outlen, err, sizeof err);
        if (cases[i].want) {
            CU_ASSERT_EQUAL(rc, 0);
            CU_ASSERT_STRING_EQUAL(out, cases[i].want);
        } else {
            CU_ASSERT_EQUAL(rc, -1);
            CU_ASSERT_NOT_EQUAL(err[0], '\0');
        }
    }
    /* len bounds the body: a valid prefix followed by garbage parses. */
    const char *body = "{\"result\":\"Toast\"}garbage";
    char out[WF_RESULT_MAX], err[128] = "";
    CU_ASSERT_EQUAL(kc_parse_result(body, strlen(body) - 7, out, sizeof out, err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(out, "Toast");
}

/* ---- ingredients -------------------------------------------------------- */

static void test_ingredients(void)
{
    const struct step_def *brew = &wf_coffee.steps[step_index("brew_coffee")];
    const int b = step_index("boil_water"), g = step_index("grind_coffee_bean");
    const char *results[WF_MAX_STEPS] = {NULL};
    char buf[256];

    results[b] = "Boiled water";
    results[g] = "Ground coffee";
    CU_ASSERT_EQUAL(db_ingredients_literal(&wf_coffee, brew, results, buf, sizeof buf), 0);
    CU_ASSERT_STRING_EQUAL(buf, "{\"Boiled water\",\"Ground coffee\"}");

    /* Results of steps brew does not depend on are not ingredients. */
    results[step_index("toast_bread")] = "Toast";
    CU_ASSERT_EQUAL(db_ingredients_literal(&wf_coffee, brew, results, buf, sizeof buf), 0);
    CU_ASSERT_STRING_EQUAL(buf, "{\"Boiled water\",\"Ground coffee\"}");

    results[b] = "say \"hi\"";
    results[g] = "back\\slash";
    CU_ASSERT_EQUAL(db_ingredients_literal(&wf_coffee, brew, results, buf, sizeof buf), 0);
    CU_ASSERT_STRING_EQUAL(buf, "{\"say \\\"hi\\\"\",\"back\\\\slash\"}");

    results[b] = NULL;
    results[g] = "Ground coffee";
    CU_ASSERT_EQUAL(db_ingredients_literal(&wf_coffee, brew, results, buf, sizeof buf), 0);
    CU_ASSERT_STRING_EQUAL(buf, "{\"Ground coffee\"}");

    results[g] = NULL;
    CU_ASSERT_EQUAL(db_ingredients_literal(&wf_coffee, brew, results, buf, sizeof buf), 0);
    CU_ASSERT_STRING_EQUAL(buf, "{}");
}

static void test_ingredients_too_small(void)
{
    const struct step_def *brew = &wf_coffee.steps[step_index("brew_coffee")];
    const char *results[WF_MAX_STEPS] = {NULL};
    results[step_index("boil_water")] = "Boiled water";
    results[step_index("grind_coffee_bean")] = "Ground \"coffee\"";
    const char *want = "{\"Boiled water\",\"Ground \\\"coffee\\\"\"}";
    size_t n = strlen(want);
    char buf[128];
    CU_ASSERT_EQUAL(db_ingredients_literal(&wf_coffee, brew, results, buf, n + 1), 0); /* exact fit */
    CU_ASSERT_STRING_EQUAL(buf, want);
    for (size_t len = 0; len <= n; len++)
        CU_ASSERT_EQUAL(db_ingredients_literal(&wf_coffee, brew, results, buf, len), -1);
    const char *none[WF_MAX_STEPS] = {NULL};
    CU_ASSERT_EQUAL(db_ingredients_literal(&wf_coffee, brew, none, buf, 2), -1); /* "{}" needs 3 */
    CU_ASSERT_EQUAL(db_ingredients_literal(&wf_coffee, brew, none, buf, 3), 0);
    CU_ASSERT_STRING_EQUAL(buf, "{}");
}

int main(void)
{
    static const struct harness_test tests[] = {
        {"step table is topologically ordered", test_table_is_topological},
        {"step and mode names are unique", test_names_unique},
        {"the coffee workflow's shape", test_expected_steps},
        {"wf_ready", test_ready},
        {"critical path and sequential durations", test_path_lengths},
        {"wf_expected_ms per mode", test_expected},
        {"the built-in recipes (the seed's programs)", test_builtin_recipes},
        {"a task step's URL", test_task_url},
        {"wf_step_ms rounds to nearest", test_step_ms_rounding},
        {"wf_mode_lookup", test_mode_lookup},
        {"kc_url (kitchen_client)", test_http_url},
        {"kc_parse_result (kitchen_client)", test_parse_http_result},
        {"wf_ingredients_literal", test_ingredients},
        {"wf_ingredients_literal buffer too small", test_ingredients_too_small},
        {NULL, NULL},
    };
    return harness_main("workflow", NULL, NULL, tests);
}
