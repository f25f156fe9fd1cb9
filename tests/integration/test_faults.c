/* Integration: a failing kitchen. The kitchen injects faults (HTTP 500, an
 * answer that is not JSON, a closed connection, no answer at all); the
 * server answers 502 naming the step, or 504 once the step's timeout
 * passed, abandons the order's other steps, records the order as failed
 * with the step, and serves normally again once the fault is gone. The
 * same assertions run in both modes. */
#include "harness.h"

#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STEP_TIMEOUT_MS 300
/* Answers may come later than planned by this much on a loaded machine. */
#define SLACK_MS 400.0

static struct stack st;
static PGconn *db;

static int setup(void)
{
    static const char *const kitchen_args[] = {"--allow-faults", NULL};
    static const char *const server_args[] = {"--step-timeout-ms", "300", NULL};
    harness_kitchen_args = kitchen_args;
    return stack_setup(&st, server_args, &db);
}
static int teardown(void)
{
    return stack_teardown(&st, db);
}

/* POST /faults?spec on the kitchen ("" clears every fault). */
static void set_faults(const char *spec)
{
    char url[200];
    struct http_result r;
    snprintf(url, sizeof url, "%s/faults%s%s", st.kitchen.base_url, *spec ? "?" : "", spec);
    CU_ASSERT_EQUAL_FATAL(http_request("POST", url, &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    http_result_free(&r);
}

/* The order's row says failed, at step, with an error. */
static void check_failed_row(const json_t *o, const char *step)
{
    char id[32];
    snprintf(id, sizeof id, "%lld", (long long)json_integer_value(json_object_get(o, "order_id")));
    const char *params[] = {id};
    PGresult *r =
        PQexecParams(db, "SELECT status, failed_step, error FROM orders WHERE id = $1", 1, NULL, params, NULL, NULL, 0);
    CU_ASSERT_EQUAL_FATAL(PQresultStatus(r), PGRES_TUPLES_OK);
    CU_ASSERT_EQUAL_FATAL(PQntuples(r), 1);
    CU_ASSERT_STRING_EQUAL(PQgetvalue(r, 0, 0), "failed");
    CU_ASSERT_STRING_EQUAL(PQgetvalue(r, 0, 1), step);
    CU_ASSERT(strstr(PQgetvalue(r, 0, 2), step) != NULL);
    PQclear(r);
}

/* One faulty order: its status, the step named, the error's words. */
static json_t *faulty_order(const char *mode, double scale, long want_status, const char *step, const char *words)
{
    long status;
    double ms;
    json_t *o = make_coffee(&st.server, mode, scale, &status, &ms);
    CU_ASSERT_EQUAL(status, want_status);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    const char *err = jstr(o, "error");
    if (!err || !strstr(err, step) || !strstr(err, words))
        fprintf(stderr, "  %s: error '%s' should name %s and say '%s'\n", mode, err ? err : "(none)", step, words);
    CU_ASSERT(err && strstr(err, step) && strstr(err, words));
    CU_ASSERT_STRING_EQUAL(jstr(o, "status"), "failed");
    CU_ASSERT_STRING_EQUAL(jstr(o, "failed_step"), step);
    CU_ASSERT_STRING_EQUAL(jstr(jstep(o, step), "state"), "failed");
    check_failed_row(o, step);
    return o;
}

static void fault_500(const char *mode)
{
    set_faults("kettle=500");
    json_decref(faulty_order(mode, 0.1, 502, "boil_water", "HTTP 500"));
    set_faults("");
}

static void fault_garbage(const char *mode)
{
    set_faults("grinder=garbage");
    json_decref(faulty_order(mode, 0.1, 502, "grind_coffee_bean", "invalid JSON"));
    set_faults("");
}

static void fault_close(const char *mode)
{
    set_faults("toaster=close");
    json_decref(faulty_order(mode, 0.1, 502, "toast_bread", "unreachable"));
    set_faults("");
}

/* The grinder never answers: the step times out STEP_TIMEOUT_MS after its
 * planned 1000 ms (scale 0.5). Async: boil (1500 ms) was still running and
 * is abandoned; the answer comes at about 1300 ms. Blocking: the grind
 * starts after the boil, so about 2800 ms. */
static void fault_hang(const char *mode)
{
    const int async = !strcmp(mode, "async");
    set_faults("grinder=hang");
    long status;
    double ms;
    json_t *o = make_coffee(&st.server, mode, 0.5, &status, &ms);
    CU_ASSERT_EQUAL(status, 504);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_STRING_EQUAL(jstr(o, "failed_step"), "grind_coffee_bean");
    CU_ASSERT_STRING_EQUAL(jstr(jstep(o, "grind_coffee_bean"), "state"), "failed");
    CU_ASSERT_STRING_EQUAL(jstr(jstep(o, "boil_water"), "state"), async ? "abandoned" : "done");
    /* Nothing after the failure started. */
    CU_ASSERT_STRING_EQUAL(jstr(jstep(o, "brew_coffee"), "state"), "pending");
    CU_ASSERT_STRING_EQUAL(jstr(jstep(o, "toast_bread"), "state"), "pending");
    double want = (async ? 1000 : 2500) + STEP_TIMEOUT_MS;
    printf("\n  %s: 504 after %.0f ms (planned %.0f)\n", mode, ms, want);
    CU_ASSERT(ms >= want - 5);
    CU_ASSERT(ms < want + harness_slack(SLACK_MS));
    check_failed_row(o, "grind_coffee_bean");
    json_decref(o);
    set_faults("");
}

/* With the faults gone, orders succeed again (connections to the kitchen
 * that were dropped are made anew). */
static void recovers(const char *mode)
{
    long status;
    double ms;
    json_t *o = make_coffee(&st.server, mode, 0.1, &status, &ms);
    CU_ASSERT_EQUAL(status, 200);
    CU_ASSERT_STRING_EQUAL(jstr(o, "status"), "done");
    json_decref(o);
}

static void run_all(const char *mode)
{
    fault_500(mode);
    fault_garbage(mode);
    fault_close(mode);
    fault_hang(mode);
    recovers(mode);
}

static void test_async(void)
{
    run_all("async");
}
static void test_blocking(void)
{
    run_all("blocking");
}

/* Kitchen API: bad fault specs are refused. */
static void test_fault_api(void)
{
    static const char *const bad[] = {"kettle=melt", "fridge=500", "kettle"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char url[200];
        struct http_result r;
        snprintf(url, sizeof url, "%s/faults?%s", st.kitchen.base_url, bad[i]);
        CU_ASSERT_EQUAL_FATAL(http_request("POST", url, &r), 0);
        CU_ASSERT_EQUAL(r.status, 400);
        http_result_free(&r);
    }
}

int main(void)
{
    static const struct harness_test tests[] = {
        {"async: 500, garbage, close, hang; then recovery", test_async},
        {"blocking: 500, garbage, close, hang; then recovery", test_blocking},
        {"kitchen refuses bad fault specs", test_fault_api},
        {NULL, NULL},
    };
    return harness_main("faults", setup, teardown, tests);
}
