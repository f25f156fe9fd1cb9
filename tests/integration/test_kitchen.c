/* Integration: coffee-kitchen on a free port. Answers after the asked
 * delay, rejects bad input, and holds 10,000 waiting requests on one
 * thread. */
#include "harness.h"

#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct child kitchen;

static int setup(void)
{
    return child_start(&kitchen, "coffee-kitchen", NULL);
}
static int teardown(void)
{
    return child_stop(&kitchen, 10) == 0 ? 0 : -1;
}

static void check_appliance(const char *path, const char *appliance, const char *result)
{
    char url[192];
    snprintf(url, sizeof url, "%s%s%sms=120", kitchen.base_url, path, strchr(path, '?') ? "&" : "?");
    struct http_result r;
    CU_ASSERT_EQUAL_FATAL(http_get(url, &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_STRING_EQUAL(r.content_type, "application/json");
    /* Not before the delay; well within it plus a loaded machine's slack. */
    CU_ASSERT(r.total_ms >= 120.0);
    CU_ASSERT(r.total_ms < 220.0);
    json_t *j = json_loads(r.body, 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "appliance")), appliance);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "result")), result);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(j, "ms")), 120);
    json_decref(j);
    http_result_free(&r);
}

static void test_appliances(void)
{
    check_appliance("/kettle", "kettle", "Boiled water");
    check_appliance("/grinder", "grinder", "Ground coffee");
    check_appliance("/toaster", "toaster", "Toast bread ready!");
    /* A task answers the result it is given (decoded), after its delay. */
    check_appliance("/task?result=A1", "task", "A1");
    check_appliance("/task?result=Do%20other%20work%20here...", "task", "Do other work here...");
    check_appliance("/task?result=123456789012345678901234567890123456789012345678", "task",
                    "123456789012345678901234567890123456789012345678"); /* 48: the longest */
}

static void test_zero_delay(void)
{
    char url[128];
    snprintf(url, sizeof url, "%s/kettle?ms=0", kitchen.base_url);
    struct http_result r;
    CU_ASSERT_EQUAL_FATAL(http_get(url, &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(r.total_ms < 50.0);
    http_result_free(&r);
}

static void test_bad_input(void)
{
    static const struct {
        const char *method, *path;
        long status;
    } cases[] = {
        {"GET", "/kettle", 400},
        {"GET", "/kettle?ms=", 400},
        {"GET", "/kettle?ms=-1", 400},
        {"GET", "/kettle?ms=60001", 400},
        {"GET", "/kettle?ms=abc", 400},
        {"GET", "/kettle?ms=1&ms=2", 400},
        {"GET", "/kettle?ms=1.5", 400},
        {"GET", "/kettle?ms=99999999999999999999", 400},
        {"GET", "/kettle?ms=%2031", 400},
        {"GET", "/fridge?ms=1", 404},
        {"POST", "/kettle?ms=1", 405},
        {"DELETE", "/toaster?ms=1", 405},
        /* a task: its result once, 1 to 48 printable characters but " and \ */
        {"GET", "/task?ms=1", 400},
        {"GET", "/task?ms=1&result=", 400},
        {"GET", "/task?ms=1&result=a&result=b", 400},
        {"GET", "/task?ms=1&result=1234567890123456789012345678901234567890123456789", 400},
        {"GET", "/task?ms=1&result=%22", 400},
        {"GET", "/task?ms=1&result=a%5Cb", 400},
        {"GET", "/task?ms=1&result=a%0Ab", 400},
        {"GET", "/task?ms=1&result=%C3%A9", 400},
        {"GET", "/task?ms=60001&result=A1", 400},
        {"GET", "/task?result=A1", 400},
        {"GET", "/kettle?ms=1&result=A1", 400}, /* an appliance says its own */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char url[160];
        snprintf(url, sizeof url, "%s%s", kitchen.base_url, cases[i].path);
        struct http_result r;
        CU_ASSERT_EQUAL_FATAL(http_request(cases[i].method, url, &r), 0);
        if (r.status != cases[i].status)
            fprintf(stderr, "  %s %s: got %ld, want %ld\n", cases[i].method, cases[i].path, r.status, cases[i].status);
        CU_ASSERT_EQUAL(r.status, cases[i].status);
        json_t *j = json_loads(r.body, 0, NULL);
        CU_ASSERT(json_is_string(json_object_get(j, "error")));
        json_decref(j);
        http_result_free(&r);
    }
}

/* 10,000 requests waiting at once: all answered after their delay, on the
 * kitchen's one thread, and the whole batch takes about one delay. */
static void test_ten_thousand_waiting(void)
{
    enum { N = 10000, DELAY_MS = 2000 };
    int threads_before = child_threads(&kitchen);
    char url[128];
    snprintf(url, sizeof url, "%s/toaster?ms=%d", kitchen.base_url, DELAY_MS);
    const char **urls = calloc(N, sizeof *urls);
    struct http_result *res = calloc(N, sizeof *res);
    CU_ASSERT_PTR_NOT_NULL_FATAL(urls);
    CU_ASSERT_PTR_NOT_NULL_FATAL(res);
    for (int i = 0; i < N; i++)
        urls[i] = url;
    CU_ASSERT_EQUAL(http_get_many(urls, N, res), 0);
    int ok = 0;
    double slowest = 0;
    for (int i = 0; i < N; i++) {
        ok += res[i].status == 200 && strstr(res[i].body, "Toast bread ready!") != NULL;
        if (res[i].total_ms > slowest)
            slowest = res[i].total_ms;
        http_result_free(&res[i]);
    }
    printf("\n  %d/%d answered 200, slowest %.0f ms, threads %d -> %d\n", ok, N, slowest, threads_before,
           child_threads(&kitchen));
    CU_ASSERT_EQUAL(ok, N);
    /* Timers, not threads: the batch ends near one delay, not N of them. */
    CU_ASSERT(slowest < DELAY_MS + 8000);
    CU_ASSERT_EQUAL(threads_before, 1);
    CU_ASSERT_EQUAL(child_threads(&kitchen), threads_before);
    free(urls);
    free(res);
}

/* The server's kitchen calls reuse their connections: the kitchen keeps
 * them open, also after a delayed (suspended and resumed) answer. */
static void test_keepalive(void)
{
    char kettle[160], toaster[160];
    snprintf(kettle, sizeof kettle, "%s/kettle?ms=20", kitchen.base_url);
    snprintf(toaster, sizeof toaster, "%s/toaster?ms=0", kitchen.base_url);
    CU_ASSERT_EQUAL(http_keepalive(kettle, toaster), 1);
    CU_ASSERT_EQUAL(http_keepalive(toaster, kettle), 1);
}

int main(void)
{
    static const struct harness_test tests[] = {
        {"appliances answer after the delay", test_appliances},
        {"ms=0 answers at once", test_zero_delay},
        {"bad input gets 400/404/405 with JSON", test_bad_input},
        {"10,000 concurrent waiting requests on one thread", test_ten_thousand_waiting},
        {"keep-alive: connections are reused", test_keepalive},
        {NULL, NULL},
    };
    return harness_main("kitchen", setup, teardown, tests);
}
