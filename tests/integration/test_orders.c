/* Integration: one order at a time against the real kitchen and a real
 * PostgreSQL, the same assertions run for both modes where they are
 * shared: the JSON contract, results through I/O, dependency order,
 * overlap, elapsed time, and the committed row. Plus the error answers. */
#include "harness.h"

#include <CUnit/Basic.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCALE 0.2
/* Elapsed may exceed the plan by this much on a loaded 2-core machine; it
 * can never be below it (every wait is real). */
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

/* The contract of one order's JSON, shared by both modes. */
static void check_contract(const json_t *o, const char *mode, double scale)
{
    CU_ASSERT(json_integer_value(json_object_get(o, "order_id")) > 0);
    CU_ASSERT_STRING_EQUAL(jstr(o, "mode"), mode);
    CU_ASSERT_STRING_EQUAL(jstr(o, "status"), "done");
    CU_ASSERT_DOUBLE_EQUAL(jnum(o, "scale"), scale, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(jnum(o, "critical_path_ms"), 4000 * scale, 0.5);
    CU_ASSERT_DOUBLE_EQUAL(jnum(o, "sequential_ms"), 6900 * scale, 0.5);
    CU_ASSERT(jnum(o, "queued_ms") >= 0);
    static const struct {
        const char *name, *io, *result;
        double ms;
        int nafter;
    } want[] = {
        {"boil_water", "http", "Boiled water", 3000, 0},
        {"grind_coffee_bean", "http", "Ground coffee", 2000, 0},
        {"brew_coffee", "sql", "Coffee ready!", 1000, 2},
        {"toast_bread", "http", "Toast bread ready!", 900, 2},
    };
    json_t *steps = json_object_get(o, "steps");
    CU_ASSERT_EQUAL_FATAL(json_array_size(steps), 4);
    for (size_t i = 0; i < 4; i++) {
        json_t *s = json_array_get(steps, i);
        CU_ASSERT_STRING_EQUAL(jstr(s, "name"), want[i].name);
        CU_ASSERT_STRING_EQUAL(jstr(s, "io"), want[i].io);
        CU_ASSERT_STRING_EQUAL(jstr(s, "state"), "done");
        CU_ASSERT_STRING_EQUAL(jstr(s, "result"), want[i].result);
        CU_ASSERT_DOUBLE_EQUAL(jnum(s, "planned_ms"), want[i].ms * scale, 0.5);
        CU_ASSERT_EQUAL(json_array_size(json_object_get(s, "after")), (size_t)want[i].nafter);
        double start = jnum(s, "start_ms"), end = jnum(s, "end_ms"), queued = jnum(s, "queued_ms");
        CU_ASSERT(start >= 0 && queued >= 0);
        /* The step's I/O really took its planned time. */
        CU_ASSERT(end - start - queued >= want[i].ms * scale - 0.5);
        CU_ASSERT(json_string_value(json_array_get(json_object_get(o, "result"), i)) != NULL);
    }
    /* Brewed with both ingredients: the dependency carried data. */
    CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(json_object_get(o, "result"), 2)), "Coffee ready!");
}

/* Brew and toast start only after boil and grind ended. */
static void check_dependencies(const json_t *o)
{
    double ready = fmax(jnum(jstep(o, "boil_water"), "end_ms"), jnum(jstep(o, "grind_coffee_bean"), "end_ms"));
    CU_ASSERT(jnum(jstep(o, "brew_coffee"), "start_ms") >= ready);
    CU_ASSERT(jnum(jstep(o, "toast_bread"), "start_ms") >= ready);
}

static int overlap(const json_t *a, const json_t *b)
{
    return jnum(a, "start_ms") < jnum(b, "end_ms") && jnum(b, "start_ms") < jnum(a, "end_ms");
}

/* The order's row is committed, done, and agrees with the answer. */
static void check_row(const json_t *o)
{
    char id[32];
    snprintf(id, sizeof id, "%lld", (long long)json_integer_value(json_object_get(o, "order_id")));
    const char *params[] = {id};
    PGresult *r = PQexecParams(db,
                               "SELECT mode, status, elapsed_ms, jsonb_array_length(steps),"
                               " steps->2->>'result' FROM orders WHERE id = $1",
                               1, NULL, params, NULL, NULL, 0);
    CU_ASSERT_EQUAL_FATAL(PQresultStatus(r), PGRES_TUPLES_OK);
    CU_ASSERT_EQUAL_FATAL(PQntuples(r), 1);
    CU_ASSERT_STRING_EQUAL(PQgetvalue(r, 0, 0), jstr(o, "mode"));
    CU_ASSERT_STRING_EQUAL(PQgetvalue(r, 0, 1), "done");
    CU_ASSERT_DOUBLE_EQUAL(strtod(PQgetvalue(r, 0, 2), NULL), jnum(o, "elapsed_ms"), 0.01);
    CU_ASSERT_STRING_EQUAL(PQgetvalue(r, 0, 3), "4");
    CU_ASSERT_STRING_EQUAL(PQgetvalue(r, 0, 4), "Coffee ready!");
    PQclear(r);

    /* And /orders/{id} serves it. */
    char url[160];
    long status;
    snprintf(url, sizeof url, "%s/orders/%s", st.server.base_url, id);
    json_t *stored = http_get_json(url, &status);
    CU_ASSERT_EQUAL(status, 200);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(stored, "order_id")),
                    json_integer_value(json_object_get(o, "order_id")));
    CU_ASSERT_STRING_EQUAL(jstr(stored, "status"), "done");
    CU_ASSERT_EQUAL(json_array_size(json_object_get(stored, "steps")), 4);
    json_decref(stored);
}

/* One test body, both modes. */
static void run_mode(const char *mode)
{
    long status;
    json_t *o = make_coffee(&st.server, mode, SCALE, &status, NULL);
    CU_ASSERT_EQUAL(status, 200);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    check_contract(o, mode, SCALE);
    check_dependencies(o);
    check_row(o);
    json_t *boil = jstep(o, "boil_water"), *grind = jstep(o, "grind_coffee_bean");
    json_t *brew = jstep(o, "brew_coffee"), *toast = jstep(o, "toast_bread");
    double elapsed = jnum(o, "elapsed_ms");
    if (!strcmp(mode, "async")) {
        /* The waits overlap: boil with grind, brew with toast. */
        CU_ASSERT(overlap(boil, grind));
        CU_ASSERT(overlap(brew, toast));
        CU_ASSERT(elapsed >= 4000 * SCALE);
        CU_ASSERT(elapsed < 4000 * SCALE + harness_slack(SLACK_MS));
    } else {
        /* One after another: no two steps overlap. */
        json_t *all[] = {boil, grind, brew, toast};
        for (int i = 0; i < 4; i++)
            for (int j = i + 1; j < 4; j++)
                CU_ASSERT(!overlap(all[i], all[j]));
        CU_ASSERT(elapsed >= 6900 * SCALE);
        CU_ASSERT(elapsed < 6900 * SCALE + harness_slack(SLACK_MS));
    }
    json_decref(o);
}

static void test_async(void)
{
    run_mode("async");
}
static void test_blocking(void)
{
    run_mode("blocking");
}

static void test_scale_zero(void)
{
    const char *modes[] = {"async", "blocking"};
    for (int i = 0; i < 2; i++) {
        long status;
        json_t *o = make_coffee(&st.server, modes[i], 0, &status, NULL);
        CU_ASSERT_EQUAL(status, 200);
        CU_ASSERT_PTR_NOT_NULL_FATAL(o);
        check_contract(o, modes[i], 0);
        check_dependencies(o);
        CU_ASSERT(jnum(o, "elapsed_ms") < harness_slack(200));
        json_decref(o);
    }
}

static void test_compare(void)
{
    char url[160];
    long status;
    snprintf(url, sizeof url, "%s/compare?scale=%g", st.server.base_url, SCALE);
    json_t *c = http_get_json(url, &status);
    CU_ASSERT_EQUAL(status, 200);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    json_t *b = json_object_get(c, "blocking"), *a = json_object_get(c, "async");
    check_contract(b, "blocking", SCALE);
    check_contract(a, "async", SCALE);
    double speedup = jnum(c, "speedup");
    CU_ASSERT_DOUBLE_EQUAL(speedup, jnum(b, "elapsed_ms") / jnum(a, "elapsed_ms"), 0.002);
    /* 6900/4000 = 1.725 without overheads; each mode's own overhead moves
     * it a little either way. */
    CU_ASSERT(speedup > 1.45 && speedup < 2.0);
    json_decref(c);
}

static void test_errors(void)
{
    static const struct {
        const char *method, *path;
        long status;
    } cases[] = {
        {"GET", "/make-coffee", 400},
        {"GET", "/make-coffee?mode=", 400},
        {"GET", "/make-coffee?mode=turbo", 400},
        {"GET", "/make-coffee?mode=async&mode=async", 400},
        {"GET", "/make-coffee?mode=async&scale=abc", 400},
        {"GET", "/make-coffee?mode=async&scale=-1", 400},
        {"GET", "/make-coffee?mode=async&scale=10.5", 400},
        {"GET", "/make-coffee?mode=async&scale=nan", 400},
        {"GET", "/make-coffee?mode=async&scale=inf", 400},
        {"GET", "/make-coffee?mode=async&scale=1e309", 400},
        {"GET", "/make-coffee?mode=async&scale=1x", 400},
        {"GET", "/make-coffee?mode=async&scale=", 400},
        {"GET", "/make-coffee?mode=async&scale=1&scale=1", 400},
        {"GET", "/make-coffee?mode=async&extra=1", 400},
        {"GET", "/make-coffee?mode=%61sync&scale=%2D1", 400},
        {"GET", "/compare?scale=11", 400},
        {"GET", "/orders/abc", 400},
        {"GET", "/orders/-1", 400},
        {"GET", "/orders/0", 400},
        {"GET", "/orders/99999999999999999999", 400},
        {"GET", "/orders/9223372036854775807", 404},
        {"GET", "/nope", 404},
        {"POST", "/make-coffee?mode=async", 405},
        {"PUT", "/compare", 405},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char url[200];
        snprintf(url, sizeof url, "%s%s", st.server.base_url, cases[i].path);
        struct http_result r;
        CU_ASSERT_EQUAL_FATAL(http_request(cases[i].method, url, &r), 0);
        if (r.status != cases[i].status)
            fprintf(stderr, "  %s %s: got %ld, want %ld: %s\n", cases[i].method, cases[i].path, r.status,
                    cases[i].status, r.body);
        CU_ASSERT_EQUAL(r.status, cases[i].status);
        CU_ASSERT_STRING_EQUAL(r.content_type, "application/json");
        json_t *j = json_loads(r.body, 0, NULL);
        CU_ASSERT(json_is_string(json_object_get(j, "error")));
        json_decref(j);
        http_result_free(&r);
    }
}

static void test_health(void)
{
    char url[160];
    long status;
    snprintf(url, sizeof url, "%s/livez", st.server.base_url);
    json_t *j = http_get_json(url, &status);
    CU_ASSERT_EQUAL(status, 200);
    json_decref(j);
    snprintf(url, sizeof url, "%s/readyz", st.server.base_url);
    j = http_get_json(url, &status);
    CU_ASSERT_EQUAL(status, 200);
    CU_ASSERT_STRING_EQUAL(jstr(j, "database"), "ok");
    CU_ASSERT_STRING_EQUAL(jstr(j, "kitchen"), "ok");
    json_decref(j);
}

/* Connections stay open between requests (MHD closes them after an
 * answer queued before the request was read to its end: the handler waits
 * for that), also after an order that was suspended and resumed. */
static void test_keepalive(void)
{
    char order_url[160], livez[160], page[160];
    snprintf(order_url, sizeof order_url, "%s/make-coffee?mode=async&scale=0", st.server.base_url);
    snprintf(livez, sizeof livez, "%s/livez", st.server.base_url);
    snprintf(page, sizeof page, "%s/", st.server.base_url);
    CU_ASSERT_EQUAL(http_keepalive(livez, livez), 1);
    CU_ASSERT_EQUAL(http_keepalive(order_url, order_url), 1);
    CU_ASSERT_EQUAL(http_keepalive(order_url, page), 1);
}

int main(void)
{
    static const struct harness_test tests[] = {
        {"livez and readyz", test_health},
        {"async order: contract, overlap, critical path, row", test_async},
        {"blocking order: contract, no overlap, sequential sum, row", test_blocking},
        {"scale=0 in both modes", test_scale_zero},
        {"compare runs both and reports the speedup", test_compare},
        {"bad requests get JSON errors with the right status", test_errors},
        {"keep-alive: connections are reused", test_keepalive},
        {NULL, NULL},
    };
    return harness_main("orders", setup, teardown, tests);
}
