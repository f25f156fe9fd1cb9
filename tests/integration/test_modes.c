/* Integration: the seed's other two lessons, as modes. naive starts every
 * step at once (about 3000 ms x scale, and the brew gets no ingredients);
 * mixed brews with blocking libpq on the loop thread (about 4900 ms x
 * scale) and so stalls every other async order on the loop meanwhile. And
 * /compare over any modes. */
#include "harness.h"

#include <CUnit/Basic.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* Elapsed may exceed the plan by this much on a loaded 2-core machine. */
#define SLACK_MS 250.0

static struct stack st;
static PGconn *db;

static int setup(void)
{
    return stack_setup(&st, NULL, &db);
}
static int teardown(void)
{
    return stack_teardown(&st, db);
}

static double step_start(const json_t *o, const char *step)
{
    return jnum(jstep(o, step), "start_ms");
}
static double step_end(const json_t *o, const char *step)
{
    return jnum(jstep(o, step), "end_ms");
}

static void test_naive(void)
{
    const double scale = 0.2;
    long status;
    json_t *o = make_coffee(&st.server, "naive", scale, &status, NULL);
    CU_ASSERT_EQUAL(status, 200);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_STRING_EQUAL(jstr(o, "mode"), "naive");
    CU_ASSERT_STRING_EQUAL(jstr(o, "status"), "done");
    /* Every step starts before the shortest one (toast) ends: none waited
     * for its dependencies. */
    const char *steps[] = {"boil_water", "grind_coffee_bean", "brew_coffee", "toast_bread"};
    for (int i = 0; i < 4; i++)
        CU_ASSERT(step_start(o, steps[i]) < step_end(o, "toast_bread"));
    CU_ASSERT(step_start(o, "brew_coffee") < step_end(o, "grind_coffee_bean"));
    /* So the brew got no ingredients, as in the seed's make_coffee_wrong. */
    CU_ASSERT_STRING_EQUAL(jstr(jstep(o, "brew_coffee"), "result"), "Coffee not ready!");
    CU_ASSERT_STRING_EQUAL(jstr(jstep(o, "boil_water"), "result"), "Boiled water");
    double elapsed = jnum(o, "elapsed_ms");
    CU_ASSERT(elapsed >= 3000 * scale);
    CU_ASSERT(elapsed < 3000 * scale + harness_slack(SLACK_MS));
    json_decref(o);
}

static void test_mixed(void)
{
    const double scale = 0.2;
    long status;
    json_t *o = make_coffee(&st.server, "mixed", scale, &status, NULL);
    CU_ASSERT_EQUAL(status, 200);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_STRING_EQUAL(jstr(o, "status"), "done");
    CU_ASSERT_STRING_EQUAL(jstr(jstep(o, "brew_coffee"), "result"), "Coffee ready!");
    /* Dependencies respected, boil and grind overlapped (async)... */
    double ready = fmax(step_end(o, "boil_water"), step_end(o, "grind_coffee_bean"));
    CU_ASSERT(step_start(o, "brew_coffee") >= ready);
    CU_ASSERT(step_start(o, "grind_coffee_bean") < step_end(o, "boil_water"));
    /* ...but the toast's I/O could only run once the blocking brew let go
     * of the loop: it ends a whole toast after the brew. */
    CU_ASSERT(step_end(o, "toast_bread") >= step_end(o, "brew_coffee") + 900 * scale - 1);
    double elapsed = jnum(o, "elapsed_ms");
    CU_ASSERT(elapsed >= 4900 * scale);
    CU_ASSERT(elapsed < 4900 * scale + harness_slack(SLACK_MS));
    json_decref(o);
}

/* A mixed order at scale 0.5 blocks the loop from about 1500 to 2000 ms.
 * An async order at scale 0.4 started with it would end at 1600 ms; its
 * brew and toast answers arrive during the stall and are only read after
 * it, so it ends near 2000 ms: delayed by another order's blocking call. */
static void test_mixed_stalls_async(void)
{
    char murl[160], aurl[160];
    snprintf(murl, sizeof murl, "%s/make-coffee?mode=mixed&scale=0.5", st.server.base_url);
    snprintf(aurl, sizeof aurl, "%s/make-coffee?mode=async&scale=0.4", st.server.base_url);
    const char *urls[2] = {murl, aurl};
    struct http_result res[2];
    CU_ASSERT_EQUAL_FATAL(http_get_many(urls, 2, res), 0);
    json_t *m = json_loads(res[0].body, 0, NULL), *a = json_loads(res[1].body, 0, NULL);
    CU_ASSERT_EQUAL(res[0].status, 200);
    CU_ASSERT_EQUAL(res[1].status, 200);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    double brew_end = step_end(m, "brew_coffee"), async_elapsed = jnum(a, "elapsed_ms");
    printf("\n  mixed brew %.1f-%.1f ms; async (planned 1600 ms) took %.1f ms\n", step_start(m, "brew_coffee"),
           brew_end, async_elapsed);
    /* The stall is most of the brew (500 ms): at least 300 ms of delay. */
    CU_ASSERT(async_elapsed >= 1600 + 300);
    /* Its last answers were read only once the brew let the loop go (the
     * orders arrived within a few ms of each other). */
    CU_ASSERT(async_elapsed >= brew_end - 50);
    json_decref(m);
    json_decref(a);
    http_result_free(&res[0]);
    http_result_free(&res[1]);
}

static void test_compare_modes(void)
{
    char url[200];
    long status;
    snprintf(url, sizeof url, "%s/compare?modes=async,naive&scale=0.1", st.server.base_url);
    json_t *c = http_get_json(url, &status);
    CU_ASSERT_EQUAL(status, 200);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    json_t *a = json_object_get(c, "async"), *n = json_object_get(c, "naive");
    CU_ASSERT_STRING_EQUAL(jstr(a, "mode"), "async");
    CU_ASSERT_STRING_EQUAL(jstr(n, "mode"), "naive");
    CU_ASSERT_PTR_NULL(json_object_get(c, "blocking"));
    CU_ASSERT_DOUBLE_EQUAL(jnum(c, "speedup"), jnum(a, "elapsed_ms") / jnum(n, "elapsed_ms"), 0.002);
    CU_ASSERT_EQUAL(json_object_size(c), 3);
    json_decref(c);

    snprintf(url, sizeof url, "%s/compare?modes=async,turbo", st.server.base_url);
    c = http_get_json(url, &status);
    CU_ASSERT_EQUAL(status, 400);
    CU_ASSERT(json_is_string(json_object_get(c, "error")));
    json_decref(c);
}

int main(void)
{
    static const struct harness_test tests[] = {
        {"naive: every step at once, coffee not ready", test_naive},
        {"mixed: the blocking brew holds the toast back", test_mixed},
        {"mixed stalls an async order on the same loop", test_mixed_stalls_async},
        {"compare takes modes=", test_compare_modes},
        {NULL, NULL},
    };
    return harness_main("modes", setup, teardown, tests);
}
