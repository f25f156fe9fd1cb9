/* Unit tests for params: strict number parsing and request-parameter validation. */
#include "harness.h"
#include "params.h"
#include "workflow.h"

#include <CUnit/Basic.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* Records one table case; the message names the case so a failure says which. */
static void check_case(int ok, unsigned line, const char *what, const char *input)
{
    char msg[200];
    snprintf(msg, sizeof msg, "%s [case: %s]", what, input ? input : "(null)");
    CU_assertImplementation(ok ? CU_TRUE : CU_FALSE, line, msg, __FILE__, "", CU_FALSE);
}
#define CHECK_CASE(cond, input) check_case((cond), __LINE__, #cond, (input))

/* ---- parse_double ------------------------------------------------------- */

static void test_parse_double_accepts(void)
{
    static const struct {
        const char *s;
        double want;
    } cases[] = {{"1", 1.0}, {"0.25", 0.25}, {"1e-1", 0.1}, {"10", 10.0}, {"-2.5", -2.5}, {"0", 0.0}};
    for (size_t i = 0; i < NELEMS(cases); i++) {
        double v = -12345.0;
        CHECK_CASE(parse_double(cases[i].s, &v) == 0, cases[i].s);
        CHECK_CASE(v == cases[i].want, cases[i].s);
    }
}

static void test_parse_double_rejects(void)
{
    static const char *const bad[] = {"",     " 1",   "1 ",  "abc", "nan", "inf", "-inf", "1e309",
                                      "0x10", "1.5x", "++1", "1e",  ".",   "-",   "1..2", "\t1"};
    for (size_t i = 0; i < NELEMS(bad); i++) {
        double v = 0;
        CHECK_CASE(parse_double(bad[i], &v) == -1, bad[i]);
    }
    double v = 0;
    CU_ASSERT_EQUAL(parse_double(NULL, &v), -1);
}

/* ---- parse_int64 -------------------------------------------------------- */

static void test_parse_int64(void)
{
    static const struct {
        const char *s;
        int64_t min, max;
        int ok;
        int64_t want;
    } cases[] = {
        {"0", 0, 10, 1, 0},
        {"10", 0, 10, 1, 10},
        {"11", 0, 10, 0, 0},
        {"-1", 0, 10, 0, 0},
        {"-5", -10, 10, 1, -5},
        {"+7", 0, 10, 1, 7},
        {"-11", -10, 10, 0, 0},
        {"9223372036854775807", INT64_MIN, INT64_MAX, 1, INT64_MAX},
        {"-9223372036854775808", INT64_MIN, INT64_MAX, 1, INT64_MIN},
        {"9223372036854775808", INT64_MIN, INT64_MAX, 0, 0},
        {"-9223372036854775809", INT64_MIN, INT64_MAX, 0, 0},
        {"99999999999999999999", INT64_MIN, INT64_MAX, 0, 0},
        {"", INT64_MIN, INT64_MAX, 0, 0},
        {"-", INT64_MIN, INT64_MAX, 0, 0},
        {"+", INT64_MIN, INT64_MAX, 0, 0},
        {"abc", INT64_MIN, INT64_MAX, 0, 0},
        {"12abc", INT64_MIN, INT64_MAX, 0, 0},
        {" 1", INT64_MIN, INT64_MAX, 0, 0},
        {"1 ", INT64_MIN, INT64_MAX, 0, 0},
        {"1.0", INT64_MIN, INT64_MAX, 0, 0},
        {"--1", INT64_MIN, INT64_MAX, 0, 0},
        {"0x10", INT64_MIN, INT64_MAX, 0, 0},
    };
    for (size_t i = 0; i < NELEMS(cases); i++) {
        int64_t v = 12345;
        int rc = parse_int64(cases[i].s, cases[i].min, cases[i].max, &v);
        CHECK_CASE(rc == (cases[i].ok ? 0 : -1), cases[i].s);
        if (cases[i].ok)
            CHECK_CASE(v == cases[i].want, cases[i].s);
    }
    int64_t v;
    CU_ASSERT_EQUAL(parse_int64(NULL, 0, 10, &v), -1);
}

/* ---- params_make_coffee ------------------------------------------------- */

#define DEFAULT_SCALE 0.5

struct mc_case {
    const char *name;
    struct query_arg args[3];
    size_t nargs;
    const char *mode; /* expected mode name, or NULL when the call must fail */
    double scale;
};

static const struct mc_case mc_cases[] = {
    {"async, default scale", {{"mode", "async"}}, 1, "async", DEFAULT_SCALE},
    {"blocking, default scale", {{"mode", "blocking"}}, 1, "blocking", DEFAULT_SCALE},
    {"async with scale", {{"mode", "async"}, {"scale", "2"}}, 2, "async", 2.0},
    {"scale first", {{"scale", "0.25"}, {"mode", "blocking"}}, 2, "blocking", 0.25},
    {"scale 0", {{"mode", "async"}, {"scale", "0"}}, 2, "async", 0.0},
    {"scale 10", {{"mode", "async"}, {"scale", "10"}}, 2, "async", 10.0},
    {"scale -0 is 0", {{"mode", "async"}, {"scale", "-0"}}, 2, "async", 0.0},
    {"no arguments", {{NULL, NULL}}, 0, NULL, 0},
    {"missing mode", {{"scale", "1"}}, 1, NULL, 0},
    {"empty mode", {{"mode", ""}}, 1, NULL, 0},
    {"unknown mode", {{"mode", "turbo"}}, 1, NULL, 0},
    {"repeated mode", {{"mode", "async"}, {"mode", "async"}}, 2, NULL, 0},
    {"repeated scale", {{"mode", "async"}, {"scale", "1"}, {"scale", "1"}}, 3, NULL, 0},
    {"scale empty", {{"mode", "async"}, {"scale", ""}}, 2, NULL, 0},
    {"scale negative", {{"mode", "async"}, {"scale", "-1"}}, 2, NULL, 0},
    {"scale above 10", {{"mode", "async"}, {"scale", "10.5"}}, 2, NULL, 0},
    {"scale NaN", {{"mode", "async"}, {"scale", "nan"}}, 2, NULL, 0},
    {"scale inf", {{"mode", "async"}, {"scale", "inf"}}, 2, NULL, 0},
    {"scale 1e309", {{"mode", "async"}, {"scale", "1e309"}}, 2, NULL, 0},
    {"scale trailing garbage", {{"mode", "async"}, {"scale", "1abc"}}, 2, NULL, 0},
    {"unknown key", {{"mode", "async"}, {"sacle", "1"}}, 2, NULL, 0},
    {"mode without value", {{"mode", NULL}}, 1, NULL, 0},
    {"scale without value", {{"mode", "async"}, {"scale", NULL}}, 2, NULL, 0},
    {"unknown key without value", {{"mode", "async"}, {"verbose", NULL}}, 2, NULL, 0},
};

static void test_make_coffee_table(void)
{
    for (size_t i = 0; i < NELEMS(mc_cases); i++) {
        const struct mc_case *c = &mc_cases[i];
        struct order_params p = {.mode = -7, .scale = -7};
        char err[256] = "";
        int rc = params_make_coffee(c->args, c->nargs, DEFAULT_SCALE, &p, err, sizeof err);
        if (c->mode) {
            CHECK_CASE(rc == 0, c->name);
            CHECK_CASE(p.mode == wf_mode_lookup(c->mode), c->name);
            CHECK_CASE(p.scale == c->scale, c->name);
            CHECK_CASE(!signbit(p.scale), c->name);
        } else {
            CHECK_CASE(rc == -1, c->name);
            CHECK_CASE(err[0] != '\0', c->name);
        }
    }
}

static void test_make_coffee_err_truncated(void)
{
    /* The message must respect errlen even when it is long. */
    char buf[16];
    memset(buf, 'X', sizeof buf);
    const struct query_arg args[] = {{"mode", "a-very-long-unknown-mode-name"}};
    struct order_params p;
    CU_ASSERT_EQUAL(params_make_coffee(args, 1, 1.0, &p, buf, 8), -1);
    CU_ASSERT_EQUAL(buf[7], '\0');
    CU_ASSERT_EQUAL(buf[8], 'X');
    CU_ASSERT_NOT_EQUAL(buf[0], '\0');
}

/* ---- params_compare ----------------------------------------------------- */

static void test_compare(void)
{
    static const struct {
        const char *name;
        struct query_arg args[2];
        size_t nargs;
        int ok;
        double scale;
        const char *modes; /* expected, comma-separated */
    } cases[] = {
        {"no arguments", {{NULL, NULL}}, 0, 1, DEFAULT_SCALE, "blocking,async"},
        {"scale 3", {{"scale", "3"}}, 1, 1, 3.0, "blocking,async"},
        {"scale 0", {{"scale", "0"}}, 1, 1, 0.0, "blocking,async"},
        {"modes in the asked order", {{"modes", "async,naive,mixed"}}, 1, 1, DEFAULT_SCALE, "async,naive,mixed"},
        {"every mode",
         {{"modes", "blocking,async,naive,mixed"}, {"scale", "0.5"}},
         2,
         1,
         0.5,
         "blocking,async,naive,mixed"},
        {"mode is not a compare parameter", {{"mode", "async"}}, 1, 0, 0, NULL},
        {"one mode only", {{"modes", "async"}}, 1, 0, 0, NULL},
        {"a mode twice", {{"modes", "async,async"}}, 1, 0, 0, NULL},
        {"unknown mode", {{"modes", "async,turbo"}}, 1, 0, 0, NULL},
        {"empty element", {{"modes", "async,"}}, 1, 0, 0, NULL},
        {"leading comma", {{"modes", ",async,blocking"}}, 1, 0, 0, NULL},
        {"empty modes", {{"modes", ""}}, 1, 0, 0, NULL},
        {"modes without value", {{"modes", NULL}}, 1, 0, 0, NULL},
        {"repeated modes", {{"modes", "async,blocking"}, {"modes", "async,blocking"}}, 2, 0, 0, NULL},
        {"over-long name", {{"modes", "asyncasyncasyncasyncasyncasyncasyncasync,blocking"}}, 1, 0, 0, NULL},
        {"scale not a number", {{"scale", "x"}}, 1, 0, 0, NULL},
        {"scale out of range", {{"scale", "11"}}, 1, 0, 0, NULL},
        {"repeated scale", {{"scale", "1"}, {"scale", "2"}}, 2, 0, 0, NULL},
        {"scale without value", {{"scale", NULL}}, 1, 0, 0, NULL},
    };
    for (size_t i = 0; i < NELEMS(cases); i++) {
        struct compare_params p = {.scale = -7};
        char err[256] = "";
        int rc = params_compare(cases[i].args, cases[i].nargs, DEFAULT_SCALE, &p, err, sizeof err);
        CHECK_CASE(rc == (cases[i].ok ? 0 : -1), cases[i].name);
        if (cases[i].ok) {
            char got[128] = "";
            size_t off = 0;
            for (int m = 0; m < p.nmodes; m++)
                off += (size_t)snprintf(got + off, sizeof got - off, "%s%s", m ? "," : "", wf_modes[p.modes[m]].name);
            CHECK_CASE(p.scale == cases[i].scale, cases[i].name);
            CHECK_CASE(!strcmp(got, cases[i].modes), cases[i].name);
        } else {
            CHECK_CASE(err[0] != '\0', cases[i].name);
        }
    }
}

/* ---- params_rush -------------------------------------------------------- */

static void test_rush(void)
{
    static const struct {
        const char *name;
        struct query_arg args[3];
        size_t nargs;
        int ok;
        int customers;
        const char *modes;
    } cases[] = {
        {"two modes", {{"modes", "blocking,async"}, {"customers", "100"}}, 2, 1, 100, "blocking,async"},
        {"one mode, scale", {{"modes", "mixed"}, {"customers", "1"}, {"scale", "0.1"}}, 3, 1, 1, "mixed"},
        {"the bound", {{"modes", "async"}, {"customers", "1000"}}, 2, 1, 1000, "async"},
        {"over the bound", {{"modes", "async"}, {"customers", "1001"}}, 2, 0, 0, NULL},
        {"zero customers", {{"modes", "async"}, {"customers", "0"}}, 2, 0, 0, NULL},
        {"customers not a number", {{"modes", "async"}, {"customers", "ten"}}, 2, 0, 0, NULL},
        {"customers missing", {{"modes", "async"}}, 1, 0, 0, NULL},
        {"modes missing", {{"customers", "3"}}, 1, 0, 0, NULL},
        {"unknown mode", {{"modes", "tea"}, {"customers", "3"}}, 2, 0, 0, NULL},
        {"a mode twice", {{"modes", "async,async"}, {"customers", "3"}}, 2, 0, 0, NULL},
        {"unknown parameter", {{"modes", "async"}, {"customers", "3"}, {"mode", "async"}}, 3, 0, 0, NULL},
    };
    for (size_t i = 0; i < NELEMS(cases); i++) {
        struct rush_params p = {.customers = -1};
        char err[256] = "";
        int rc = params_rush(cases[i].args, cases[i].nargs, DEFAULT_SCALE, &p, err, sizeof err);
        CHECK_CASE(rc == (cases[i].ok ? 0 : -1), cases[i].name);
        if (cases[i].ok) {
            char got[128] = "";
            size_t off = 0;
            for (int m = 0; m < p.nmodes; m++)
                off += (size_t)snprintf(got + off, sizeof got - off, "%s%s", m ? "," : "", wf_modes[p.modes[m]].name);
            CHECK_CASE(p.customers == cases[i].customers, cases[i].name);
            CHECK_CASE(!strcmp(got, cases[i].modes), cases[i].name);
        } else {
            CHECK_CASE(err[0] != '\0', cases[i].name);
        }
    }
}

/* ---- params_stats ------------------------------------------------------- */

static void test_stats(void)
{
    static const struct {
        const char *name;
        struct query_arg args[2];
        size_t nargs;
        int ok;
        const char *since; /* expected, NULL = none */
    } cases[] = {
        {"no arguments", {{NULL, NULL}}, 0, 1, NULL},
        {"an ISO time", {{"since", "2026-11-25T15:00:00Z"}}, 1, 1, "2026-11-25T15:00:00Z"},
        {"a date and an offset", {{"since", "2026-11-25 15:00:00.5+01:00"}}, 1, 1, "2026-11-25 15:00:00.5+01:00"},
        {"empty", {{"since", ""}}, 1, 0, NULL},
        {"no value", {{"since", NULL}}, 1, 0, NULL},
        {"words", {{"since", "yesterday"}}, 1, 0, NULL},
        {"quote", {{"since", "2026'--"}}, 1, 0, NULL},
        {"too long", {{"since", "2026-11-25T15:00:00.000000000000000000000000Z"}}, 1, 0, NULL},
        {"repeated", {{"since", "2026-11-25"}, {"since", "2026-11-25"}}, 2, 0, NULL},
        {"unknown key", {{"until", "2026-11-25"}}, 1, 0, NULL},
    };
    for (size_t i = 0; i < NELEMS(cases); i++) {
        const char *since = "unset";
        char err[256] = "";
        int rc = params_stats(cases[i].args, cases[i].nargs, &since, err, sizeof err);
        CHECK_CASE(rc == (cases[i].ok ? 0 : -1), cases[i].name);
        if (cases[i].ok)
            CHECK_CASE(cases[i].since ? since && !strcmp(since, cases[i].since) : since == NULL, cases[i].name);
        else
            CHECK_CASE(err[0] != '\0', cases[i].name);
    }
}

/* ---- params_workflow ---------------------------------------------------- */

static void test_workflow(void)
{
    static const struct {
        const char *name;
        struct query_arg args[2];
        size_t nargs;
        int ok;
        double scale;
    } cases[] = {
        {"no arguments: scale 1", {{NULL, NULL}}, 0, 1, 1.0},
        {"a scale", {{"scale", "0.25"}}, 1, 1, 0.25},
        {"scale 0", {{"scale", "0"}}, 1, 1, 0.0},
        {"scale 10", {{"scale", "10"}}, 1, 1, 10.0},
        {"over 10", {{"scale", "11"}}, 1, 0, 0},
        {"negative", {{"scale", "-1"}}, 1, 0, 0},
        {"not a number", {{"scale", "fast"}}, 1, 0, 0},
        {"no value", {{"scale", NULL}}, 1, 0, 0},
        {"repeated", {{"scale", "1"}, {"scale", "2"}}, 2, 0, 0},
        {"unknown key", {{"mode", "async"}}, 1, 0, 0},
        {"a recipe", {{"recipe", "gather"}}, 1, 1, 1.0},
        {"a recipe's name: any letters", {{"recipe", "My-own_2"}}, 1, 1, 1.0},
        {"a recipe named twice", {{"recipe", "gather"}, {"recipe", "hello"}}, 2, 0, 0},
        {"a recipe without a name", {{"recipe", ""}}, 1, 0, 0},
        {"a recipe without a value", {{"recipe", NULL}}, 1, 0, 0},
        {"a recipe name with a space", {{"recipe", "a b"}}, 1, 0, 0},
        {"a recipe name too long", {{"recipe", "abcdefghijklmnopqrstuvwxyz0123456"}}, 1, 0, 0},
    };
    for (size_t i = 0; i < NELEMS(cases); i++) {
        double scale = -7;
        const char *recipe = NULL;
        char err[256] = "";
        int rc = params_workflow(cases[i].args, cases[i].nargs, &scale, &recipe, err, sizeof err);
        CHECK_CASE(rc == (cases[i].ok ? 0 : -1), cases[i].name);
        if (cases[i].ok)
            CHECK_CASE(scale == cases[i].scale && recipe &&
                           !strcmp(recipe, cases[i].args[0].key && !strcmp(cases[i].args[0].key, "recipe")
                                               ? cases[i].args[0].value
                                               : "coffee"),
                       cases[i].name);
        else
            CHECK_CASE(err[0] != '\0', cases[i].name);
    }
}

/* ---- params_order_id ---------------------------------------------------- */

static void test_order_id(void)
{
    static const struct {
        const char *s;
        int ok;
        int64_t want;
    } cases[] = {
        {"1", 1, 1},
        {"42", 1, 42},
        {"9223372036854775807", 1, INT64_MAX},
        {"0", 0, 0},
        {"-1", 0, 0},
        {"abc", 0, 0},
        {"", 0, 0},
        {"9223372036854775808", 0, 0},
        {"1.0", 0, 0},
        {" 1", 0, 0},
        {"1 ", 0, 0},
        {"+1", 0, 0},
        {"1e3", 0, 0},
    };
    for (size_t i = 0; i < NELEMS(cases); i++) {
        int64_t id = -7;
        char err[256] = "";
        int rc = params_order_id(cases[i].s, &id, err, sizeof err);
        CHECK_CASE(rc == (cases[i].ok ? 0 : -1), cases[i].s);
        if (cases[i].ok)
            CHECK_CASE(id == cases[i].want, cases[i].s);
        else
            CHECK_CASE(err[0] != '\0', cases[i].s);
    }
    int64_t id;
    char err[64] = "";
    CU_ASSERT_EQUAL(params_order_id(NULL, &id, err, sizeof err), -1);
    CU_ASSERT_NOT_EQUAL(err[0], '\0');
}

int main(void)
{
    static const struct harness_test tests[] = {
        {"parse_double accepts plain decimals", test_parse_double_accepts},
        {"parse_double rejects everything else", test_parse_double_rejects},
        {"parse_int64 bounds, sign, garbage, overflow", test_parse_int64},
        {"params_make_coffee table", test_make_coffee_table},
        {"params_make_coffee error respects errlen", test_make_coffee_err_truncated},
        {"params_compare table", test_compare},
        {"params_rush table", test_rush},
        {"params_stats table", test_stats},
        {"params_workflow table", test_workflow},
        {"params_order_id table", test_order_id},
        {NULL, NULL},
    };
    return harness_main("params", NULL, NULL, tests);
}
