/* Integration: the flight recorder, read from the outside. After
 * /compare?modes=blocking,async,mixed, GET /trace is Chrome trace-event
 * JSON: named thread tracks (the loop, the workers), X slices that nest on
 * each thread, async b/e pairs that match by id, each order as a track,
 * mixed's brew as a slice on the loop at least its planned length, and the
 * kitchen calls as slices on a worker. The brew's stall is logged at warn
 * with its order, mode and step and counted in coffee_loop_stall_seconds.
 * Bad `seconds` are answered 400. */
#include "harness.h"

#include <CUnit/Basic.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SCALE 0.2
#define BREW_PLANNED_US (1000.0 * SCALE * 1000.0) /* brew_coffee: 1000 ms at scale 1 */

static struct child kitchen, server;
static char dir[] = "/tmp/coffee-flight.XXXXXX";
static char slog[64];

static int setup(void)
{
    if (!mkdtemp(dir))
        return -1;
    snprintf(slog, sizeof slog, "%s/server.log", dir);
    if (child_start(&kitchen, "coffee-kitchen", NULL) != 0)
        return -1;
    const char *sargs[] = {"--kitchen-url",
                           kitchen.base_url,
                           "--log-format",
                           "logfmt",
                           "--workers",
                           "2",
                           "--db-pool",
                           "2",
                           "--stall-ms",
                           "50",
                           NULL};
    if (child_start_log(&server, "coffee-server", sargs, slog) != 0 || child_wait_ready(&server, 15) != 0)
        return -1;
    return 0;
}

static int teardown(void)
{
    int a = server.pid > 0 ? child_stop(&server, 30) : 0;
    int b = kitchen.pid > 0 ? child_stop(&kitchen, 10) : 0;
    unlink(slog);
    rmdir(dir);
    return a == 0 && b == 0 ? 0 : -1;
}

static json_t *get_trace(const char *query, long *status)
{
    char url[160];
    snprintf(url, sizeof url, "%s/trace%s", server.base_url, query);
    return http_get_json(url, status);
}

/* The tid of the thread track whose name contains part, or -1 (the first). */
static json_int_t track_tid(const json_t *events, const char *part)
{
    size_t i;
    const json_t *e;
    json_array_foreach(events, i, e)
    {
        const char *name = jstr(json_object_get(e, "args"), "name");
        if (!strcmp(jstr(e, "ph"), "M") && !strcmp(jstr(e, "name"), "thread_name") && name && strstr(name, part))
            return json_integer_value(json_object_get(e, "tid"));
    }
    return -1;
}

static int is_tid(const json_t *e, json_int_t tid)
{
    return json_integer_value(json_object_get(e, "tid")) == tid;
}

/* Every X slice of one thread nests in or stays clear of every other
 * (overlapping X slices that do not nest are mis-drawn). */
static int x_slices_nest(const json_t *events)
{
    size_t i, k;
    const json_t *a, *b;
    json_array_foreach(events, i, a)
    {
        if (strcmp(jstr(a, "ph"), "X"))
            continue;
        double a0 = jnum(a, "ts"), a1 = a0 + jnum(a, "dur");
        json_array_foreach(events, k, b)
        {
            if (k <= i || strcmp(jstr(b, "ph"), "X") || !is_tid(b, json_integer_value(json_object_get(a, "tid"))))
                continue;
            double b0 = jnum(b, "ts"), b1 = b0 + jnum(b, "dur");
            int clear = a1 <= b0 + 0.001 || b1 <= a0 + 0.001;
            int nest = (a0 <= b0 + 0.001 && b1 <= a1 + 0.001) || (b0 <= a0 + 0.001 && a1 <= b1 + 0.001);
            if (!clear && !nest) {
                fprintf(stderr, "X slices %s and %s overlap\n", jstr(a, "name"), jstr(b, "name"));
                return 0;
            }
        }
    }
    return 1;
}

/* Async events: per id, in the order written, each e closes the last open
 * b of the same name, no earlier than it, and inside its parent; every b
 * is closed. Returns the number of pairs, or -1. */
static int async_pairs(const json_t *events)
{
    size_t i;
    const json_t *e;
    int pairs = 0;
    json_t *open = json_object(); /* id -> array of open b events */
    json_array_foreach(events, i, e)
    {
        const char *ph = jstr(e, "ph");
        if (strcmp(ph, "b") && strcmp(ph, "e"))
            continue;
        const char *id = jstr(e, "id");
        if (!id || strcmp(jstr(e, "cat"), "order")) {
            pairs = -1;
            break;
        }
        json_t *stack = json_object_get(open, id);
        if (!stack) {
            stack = json_array();
            json_object_set_new(open, id, stack);
        }
        if (!strcmp(ph, "b")) {
            size_t n = json_array_size(stack);
            if (n && jnum(e, "ts") < jnum(json_array_get(stack, n - 1), "ts")) {
                pairs = -1;
                break;
            }
            json_array_append(stack, (json_t *)e);
            continue;
        }
        size_t n = json_array_size(stack);
        const json_t *b = n ? json_array_get(stack, n - 1) : NULL;
        if (!b || strcmp(jstr(b, "name"), jstr(e, "name")) || jnum(e, "ts") < jnum(b, "ts")) {
            fprintf(stderr, "async e %s (id %s) has no matching b\n", jstr(e, "name"), id);
            pairs = -1;
            break;
        }
        json_array_remove(stack, n - 1);
        pairs++;
    }
    const char *id;
    json_t *stack;
    json_object_foreach(open, id, stack) if (pairs >= 0 && json_array_size(stack))
    {
        fprintf(stderr, "async id %s left open\n", id);
        pairs = -1;
    }
    json_decref(open);
    return pairs;
}

/* The X slice named name on thread tid for order id (borrowed), or NULL. */
static const json_t *find_slice(const json_t *events, json_int_t tid, const char *name, json_int_t id)
{
    size_t i;
    const json_t *e;
    json_array_foreach(events, i, e)
    {
        if (!strcmp(jstr(e, "ph"), "X") && (tid < 0 || is_tid(e, tid)) && !strcmp(jstr(e, "name"), name) &&
            json_integer_value(json_object_get(json_object_get(e, "args"), "order_id")) == id)
            return e;
    }
    return NULL;
}

static void test_trace_structure(void)
{
    char url[200];
    snprintf(url, sizeof url, "%s/compare?modes=blocking,async,mixed&scale=%g", server.base_url, SCALE);
    long status;
    json_t *cmp = http_get_json(url, &status);
    CU_ASSERT_EQUAL_FATAL(status, 200);
    json_int_t ids[3];
    const char *modes[] = {"blocking", "async", "mixed"};
    for (int m = 0; m < 3; m++)
        ids[m] = (json_int_t)jnum(json_object_get(cmp, modes[m]), "order_id");
    json_decref(cmp);

    json_t *t = get_trace("?seconds=60", &status);
    CU_ASSERT_EQUAL_FATAL(status, 200);
    json_t *ev = json_object_get(t, "traceEvents");
    CU_ASSERT_FATAL(json_is_array(ev) && json_array_size(ev) > 10);

    /* Every event has ph, pid, tid; B and E balance per thread (none are
     * written: X slices), X durations are not negative. */
    size_t i;
    const json_t *e;
    int bad = 0, be = 0, counters = 0;
    json_array_foreach(ev, i, e)
    {
        const char *ph = jstr(e, "ph");
        bad += !ph || !json_is_integer(json_object_get(e, "pid")) || !json_is_integer(json_object_get(e, "tid"));
        if (ph && !strcmp(ph, "X"))
            bad += !(jnum(e, "dur") >= 0) || !(jnum(e, "ts") > 0);
        be += ph && !strcmp(ph, "B");
        be -= ph && !strcmp(ph, "E");
        counters += ph && !strcmp(ph, "C") && !strcmp(jstr(e, "name"), "orders in flight");
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(be, 0);
    CU_ASSERT(counters > 0);
    CU_ASSERT(x_slices_nest(ev));
    CU_ASSERT(async_pairs(ev) >= 3 * 5); /* each order and its four steps at least */

    json_int_t loop = track_tid(ev, "loop"), worker = track_tid(ev, "worker");
    CU_ASSERT(loop > 0);
    CU_ASSERT(worker > 0);

    /* Each order is an async track, opened with its id. */
    for (int m = 0; m < 3; m++) {
        char prefix[48];
        int found = 0;
        snprintf(prefix, sizeof prefix, "order %lld (%s", (long long)ids[m], modes[m]);
        json_array_foreach(ev, i, e) found +=
            !strcmp(jstr(e, "ph"), "b") && !strncmp(jstr(e, "name"), prefix, strlen(prefix));
        CU_ASSERT_EQUAL(found, 1);
    }

    /* mixed's brew held the loop: a slice on the loop's track, as long as
     * the brew was planned at least (pg_sleep). */
    const json_t *brew = find_slice(ev, loop, "brew", ids[2]);
    CU_ASSERT_PTR_NOT_NULL(brew);
    if (brew) {
        CU_ASSERT(jnum(brew, "dur") >= BREW_PLANNED_US);
        CU_ASSERT_STRING_EQUAL(jstr(json_object_get(brew, "args"), "mode"), "mixed");
    }
    /* The blocking order's kitchen calls: slices on a worker's track, each
     * its planned length at least. */
    const char *kitchen_steps[] = {"boil_water", "grind_coffee_bean", "toast_bread"};
    const double planned_ms[] = {3000, 2000, 900};
    for (int k = 0; k < 3; k++) {
        const json_t *s = find_slice(ev, -1, kitchen_steps[k], ids[0]);
        CU_ASSERT_PTR_NOT_NULL(s);
        if (!s)
            continue;
        json_int_t tid = json_integer_value(json_object_get(s, "tid"));
        CU_ASSERT(tid != loop && tid > 0);
        CU_ASSERT(jnum(s, "dur") >= planned_ms[k] * SCALE * 1000.0 * 0.99);
    }
    /* The ring's bound and what it dropped are said. */
    json_t *other = json_object_get(t, "otherData");
    CU_ASSERT(json_is_integer(json_object_get(other, "dropped_events")));
    CU_ASSERT(jnum(other, "ring_entries") > 0);
    json_decref(t);
}

/* The whole file as a new string, or NULL. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    size_t cap = 1 << 20, len = 0;
    char *s = malloc(cap);
    if (s) {
        len = fread(s, 1, cap - 1, f);
        s[len] = '\0';
    }
    fclose(f);
    return s;
}

static void test_stall_logged_and_counted(void)
{
    double before = http_metric(&server, "coffee_loop_stall_seconds_count");
    CU_ASSERT_FATAL(!isnan(before));
    long status;
    json_t *o = make_coffee(&server, "mixed", SCALE, &status, NULL);
    CU_ASSERT_EQUAL_FATAL(status, 200);
    char want[64];
    snprintf(want, sizeof want, "order_id=%lld ", (long long)jnum(o, "order_id"));
    json_decref(o);
    /* The warn event is written on the loop before the order's answer. */
    char *log = slurp(slog);
    CU_ASSERT_PTR_NOT_NULL_FATAL(log);
    int found = 0;
    for (const char *line = log; line && *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        const char *need[] = {"level=warn", "msg=\"loop stall", "ran=brew", want,
                              "mode=mixed", "step=brew_coffee", "waiting=", "ms="};
        int all = 1;
        for (size_t k = 0; k < sizeof need / sizeof need[0] && all; k++) {
            const char *hit = strstr(line, need[k]);
            all = hit && (size_t)(hit - line) < len;
        }
        found += all;
        line = end ? end + 1 : NULL;
    }
    free(log);
    CU_ASSERT_EQUAL(found, 1);
    double after = http_metric(&server, "coffee_loop_stall_seconds_count");
    CU_ASSERT(after >= before + 1);
    /* A stall of at least the brew's planned 200 ms is not in the 0.1 s bucket. */
    double over = after - http_metric(&server, "coffee_loop_stall_seconds_bucket{le=\"0.1\"}");
    CU_ASSERT(over >= 1);
}

static void test_bad_seconds(void)
{
    const char *bad[] = {
        "?seconds=0", "?seconds=61", "?seconds=x", "?seconds=", "?seconds", "?seconds=-1", "?seconds=1.5"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        long status;
        json_t *j = get_trace(bad[k], &status);
        CU_ASSERT_EQUAL(status, 400);
        CU_ASSERT_PTR_NOT_NULL(jstr(j, "error"));
        json_decref(j);
    }
    const char *good[] = {"", "?seconds=1", "?seconds=60"};
    for (size_t k = 0; k < sizeof good / sizeof good[0]; k++) {
        long status;
        json_t *j = get_trace(good[k], &status);
        CU_ASSERT_EQUAL(status, 200);
        CU_ASSERT(json_is_array(json_object_get(j, "traceEvents")));
        json_decref(j);
    }
}

int main(void)
{
    static const struct harness_test tests[] = {
        {"after /compare: threads, slices, orders as async tracks, mixed's brew on the loop", test_trace_structure},
        {"a mixed order's brew is logged as a stall and counted", test_stall_logged_and_counted},
        {"seconds outside 1..60 or not a number: 400", test_bad_seconds},
        {NULL, NULL},
    };
    return harness_main("flight", setup, teardown, tests);
}
