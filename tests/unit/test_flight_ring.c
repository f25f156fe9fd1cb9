/* Unit tests for flight: the ring keeps at most FLIGHT_RING_ENTRIES
 * entries and says how many it dropped; an order's overlapping steps go to
 * lanes of their own (async slices on one id must nest); a slice of a
 * loop callback is recorded only from FLIGHT_SLICE_MIN_NS; nothing is
 * recorded when recording is off. */
#include "clock.h"
#include "flight.h"
#include "harness.h"

#include <CUnit/Basic.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *trace(int seconds)
{
    struct text_buf b;
    text_buf_init(&b, 1 << 16);
    flight_write_trace(&b, seconds);
    char *text = text_buf_finish(&b);
    json_t *j = text ? json_loads(text, 0, NULL) : NULL;
    free(text);
    return j;
}

/* Events of phase ph (and name, if not NULL) in t. */
static int count(const json_t *t, const char *ph, const char *name)
{
    size_t i;
    const json_t *e;
    int n = 0;
    json_array_foreach(json_object_get(t, "traceEvents"), i, e) n +=
        !strcmp(jstr(e, "ph"), ph) && (!name || !strcmp(jstr(e, "name"), name));
    return n;
}

static void test_ring_bound(void)
{
    CU_ASSERT_EQUAL_FATAL(flight_init(1, 50), 0);
    flight_thread_name("unit");
    int64_t t0 = clock_mono_ns();
    for (int i = 0; i < FLIGHT_RING_ENTRIES + 100; i++)
        flight_slice("s", i + 1, t0);
    json_t *t = trace(60);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_EQUAL(count(t, "X", "s"), FLIGHT_RING_ENTRIES);
    CU_ASSERT_EQUAL(jnum(json_object_get(t, "otherData"), "dropped_events"), 100);
    CU_ASSERT_EQUAL(count(t, "M", "thread_name"), 1);
    json_decref(t);
    flight_shutdown();
}

static void test_order_lanes(void)
{
    CU_ASSERT_EQUAL_FATAL(flight_init(1, 50), 0);
    int64_t t0 = clock_mono_ns() - 10 * NS_PER_MS;
    /* Two overlapping steps, then one after both: the second goes to lane 1. */
    struct flight_order o = {
        .id = 7, .mode = "async", .status = "done", .arrived_ns = t0, .end_ns = t0 + 9 * NS_PER_MS, .nsteps = 3};
    snprintf(o.steps[0].name, sizeof o.steps[0].name, "a"), o.steps[0].start_ns = t0,
                                                            o.steps[0].end_ns = t0 + 3 * NS_PER_MS;
    snprintf(o.steps[1].name, sizeof o.steps[1].name, "b"), o.steps[1].start_ns = t0,
                                                            o.steps[1].end_ns = t0 + 2 * NS_PER_MS;
    snprintf(o.steps[2].name, sizeof o.steps[2].name, "c"), o.steps[2].start_ns = t0 + 3 * NS_PER_MS,
                                                            o.steps[2].end_ns = t0 + 9 * NS_PER_MS;
    o.steps[2].queued_ns = NS_PER_MS;
    flight_order(&o);
    json_t *t = trace(10);
    size_t i;
    const json_t *e;
    json_array_foreach(json_object_get(t, "traceEvents"), i, e)
    {
        const char *name = jstr(e, "name");
        if (!strcmp(jstr(e, "ph"), "b") && (!strcmp(name, "a") || !strcmp(name, "c")))
            CU_ASSERT_STRING_EQUAL(jstr(e, "id"), "7");
        if (!strcmp(jstr(e, "ph"), "b") && !strcmp(name, "b"))
            CU_ASSERT_STRING_EQUAL(jstr(e, "id"), "7.1");
    }
    CU_ASSERT_EQUAL(count(t, "b", NULL), 5); /* order, a, b, c, c's wait */
    CU_ASSERT_EQUAL(count(t, "e", NULL), 5);
    CU_ASSERT_EQUAL(count(t, "b", "waiting for a connection"), 1);
    json_decref(t);
    flight_shutdown();
}

static void test_loop_threshold_and_off(void)
{
    CU_ASSERT_EQUAL_FATAL(flight_init(1, 1000), 0);
    int64_t now = clock_mono_ns();
    flight_loop_callback("io", 5, now - FLIGHT_SLICE_MIN_NS / 2, now, NULL, NULL);
    flight_label("brew", 9, "mixed", "brew_coffee");
    flight_loop_callback("task", -1, now - 2 * FLIGHT_SLICE_MIN_NS, now, NULL, NULL);
    flight_loop_callback("timer", -1, now - 2 * FLIGHT_SLICE_MIN_NS, now, NULL, NULL); /* label cleared */
    json_t *t = trace(10);
    CU_ASSERT_EQUAL(count(t, "X", "io"), 0);
    CU_ASSERT_EQUAL(count(t, "X", "brew"), 1);
    CU_ASSERT_EQUAL(count(t, "X", "timer"), 1);
    json_decref(t);
    flight_shutdown();

    CU_ASSERT_EQUAL_FATAL(flight_init(0, 1000), 0);
    flight_slice("off", 1, clock_mono_ns());
    t = trace(10);
    CU_ASSERT_EQUAL(count(t, "X", NULL), 0);
    CU_ASSERT(json_is_false(json_object_get(json_object_get(t, "otherData"), "recording")));
    json_decref(t);
}

int main(void)
{
    static const struct harness_test tests[] = {
        {"the ring keeps its bound and counts what it dropped", test_ring_bound},
        {"an order's overlapping steps go to lanes of their own", test_order_lanes},
        {"loop slices from the threshold, labels cleared, nothing when off", test_loop_threshold_and_off},
        {NULL, NULL},
    };
    return harness_main("flight", NULL, NULL, tests);
}
