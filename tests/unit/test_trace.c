/* Unit tests for trace: traceparent parsing (the specification's valid and
 * invalid shapes) and new spans (same trace, new span id, well formed). */
#include "harness.h"
#include "trace.h"

#include <CUnit/Basic.h>
#include <string.h>

static const char *const good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

static void test_parse_valid(void)
{
    struct trace_ctx t;
    CU_ASSERT_EQUAL_FATAL(trace_parse(good, &t), 0);
    CU_ASSERT_STRING_EQUAL(t.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    CU_ASSERT_STRING_EQUAL(t.span_id, "00f067aa0ba902b7");
    CU_ASSERT_STRING_EQUAL(t.flags, "01");
    /* A later version with more fields is read as version 00. */
    CU_ASSERT_EQUAL(trace_parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-extra", &t), 0);
    CU_ASSERT_STRING_EQUAL(t.flags, "00");
}

static void test_parse_invalid(void)
{
    static const char *const bad[] = {
        "",
        "00",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", /* 00 has exactly four fields */
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",       /* version ff is invalid */
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",       /* all-zero trace id */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",       /* all-zero parent id */
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",       /* upper case */
        "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",       /* dashes misplaced */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",       /* not hex */
        "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x", /* later version, no '-' after */
    };
    struct trace_ctx t;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (trace_parse(bad[i], &t) == 0)
            fprintf(stderr, "\n  accepted '%s'\n", bad[i]);
        CU_ASSERT_EQUAL(trace_parse(bad[i], &t), -1);
    }
    CU_ASSERT_EQUAL(trace_parse(NULL, &t), -1);
}

static void test_child(void)
{
    struct trace_ctx parent, c1, c2;
    char a[TRACEPARENT_SIZE], b[TRACEPARENT_SIZE], small[20];
    CU_ASSERT_EQUAL_FATAL(trace_parse(good, &parent), 0);
    CU_ASSERT_EQUAL(trace_child(&parent, a, sizeof a), 0);
    CU_ASSERT_EQUAL(trace_child(&parent, b, sizeof b), 0);
    CU_ASSERT_EQUAL(strlen(a), TRACEPARENT_LEN);
    CU_ASSERT_EQUAL_FATAL(trace_parse(a, &c1), 0);
    CU_ASSERT_EQUAL_FATAL(trace_parse(b, &c2), 0);
    /* Same trace and flags, a span id of its own. */
    CU_ASSERT_STRING_EQUAL(c1.trace_id, parent.trace_id);
    CU_ASSERT_STRING_EQUAL(c1.flags, "01");
    CU_ASSERT_STRING_NOT_EQUAL(c1.span_id, parent.span_id);
    CU_ASSERT_STRING_NOT_EQUAL(c1.span_id, c2.span_id);
    /* No parent: a new trace. */
    CU_ASSERT_EQUAL(trace_child(NULL, a, sizeof a), 0);
    CU_ASSERT_EQUAL(trace_child(NULL, b, sizeof b), 0);
    CU_ASSERT_EQUAL_FATAL(trace_parse(a, &c1), 0);
    CU_ASSERT_EQUAL_FATAL(trace_parse(b, &c2), 0);
    CU_ASSERT_STRING_NOT_EQUAL(c1.trace_id, c2.trace_id);
    CU_ASSERT_STRING_NOT_EQUAL(c1.trace_id, parent.trace_id);
    CU_ASSERT_EQUAL(trace_child(NULL, small, sizeof small), -1);
}

int main(void)
{
    static const struct harness_test tests[] = {
        {"traceparent: valid headers parsed", test_parse_valid},
        {"traceparent: invalid headers refused", test_parse_invalid},
        {"traceparent: child spans", test_child},
        {NULL, NULL},
    };
    return harness_main("trace", NULL, NULL, tests);
}
