/* Integration: mode offload, the async executor with the blocking brew on
 * an offload thread that the loop awaits. One order takes the critical
 * path (toast overlaps the brew), keeps its row and says its coffee; an
 * async order sent while an offload brew runs in the database answers in
 * its own time (the loop did not stall, as mixed's would); a brew that
 * finds every offload thread busy waits no longer than its own bound. */
#include "harness.h"

#include "clock.h"

#include <CUnit/Basic.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

static void pause_ms(long ms) /* between polls of the database, not synchronisation */
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void test_one_order(void)
{
    long status;
    json_t *o = make_coffee(&st.server, "offload", 0.2, &status, NULL);
    CU_ASSERT_EQUAL_FATAL(status, 200);
    CU_ASSERT_STRING_EQUAL(jstr(o, "status"), "done");
    double elapsed = jnum(o, "elapsed_ms");
    CU_ASSERT(elapsed >= 800);
    CU_ASSERT(elapsed < 800 + harness_slack(200));
    json_t *brew = jstep(o, "brew_coffee"), *toast = jstep(o, "toast_bread");
    CU_ASSERT_STRING_EQUAL(jstr(brew, "result"), "Coffee ready!");
    CU_ASSERT(jnum(toast, "start_ms") < jnum(brew, "end_ms")); /* they overlap */
    char row[16];
    db_row_status(db, (long long)jnum(o, "order_id"), row, sizeof row);
    CU_ASSERT_STRING_EQUAL(row, "done");
    json_decref(o);
}

/* Whether a brew runs in the database now (pg_stat_activity), polled up
 * to timeout_ms. */
static int brew_running(long timeout_ms)
{
    int64_t t0 = clock_mono_ns();
    while (ns_to_ms(clock_mono_ns() - t0) < timeout_ms) {
        if (db_count(db, "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE "
                         "'%brew_coffee%' AND pid <> pg_backend_pid()") > 0)
            return 1;
        pause_ms(10);
    }
    return 0;
}

static void test_no_stall(void)
{
    char url[160];
    snprintf(url, sizeof url, "%s/make-coffee?mode=offload&scale=1", st.server.base_url);
    struct http_batch b = {.n = 1, .urls = {url}};
    CU_ASSERT_EQUAL_FATAL(http_batch_start(&b), 0);
    /* Its brew runs from 3,000 to 4,000 ms. */
    CU_ASSERT_FATAL(brew_running(6000));
    long status;
    double ms;
    json_t *a = make_coffee(&st.server, "async", 0.1, &status, &ms);
    int64_t async_answered = clock_mono_ns();
    http_batch_wait(&b);
    int64_t offload_answered = clock_mono_ns();
    CU_ASSERT_EQUAL(status, 200);
    CU_ASSERT_EQUAL(b.res[0].status, 200);
    printf("\n  an async order (400 ms) sent during an offload brew answered in %.0f ms, %.0f ms before the "
           "offload order\n",
           ms, ns_to_ms(offload_answered - async_answered));
    /* Its own 400 ms, not the rest of the brew (up to 1,000 ms) besides. */
    CU_ASSERT(ms < 400 + harness_slack(250));
    CU_ASSERT(jnum(a, "elapsed_ms") < 400 + harness_slack(150));
    CU_ASSERT(offload_answered > async_answered); /* it was answered during the brew */
    json_decref(a);
    http_result_free(&b.res[0]);
}

/* One offload thread, three brews at once, each bounded by 1,300 ms (1,000
 * planned and --step-timeout-ms 300): the first brews; the third finds the
 * thread busy past its bound and fails 504 at it, not after the others. */
static void test_queue_bound(void)
{
    struct child server;
    const char *args[] = {
        "--kitchen-url", st.kitchen.base_url, "--offload-threads", "1", "--step-timeout-ms", "300", NULL};
    CU_ASSERT_EQUAL_FATAL(child_start(&server, "coffee-server", args), 0);
    char url[160];
    snprintf(url, sizeof url, "%s/make-coffee?mode=offload&scale=1", server.base_url);
    const char *urls[] = {url, url, url};
    struct http_result res[3];
    CU_ASSERT_EQUAL_FATAL(http_get_many(urls, 3, res), 0);
    int ok = 0, queue_bound = 0;
    for (int i = 0; i < 3; i++) {
        json_t *o = json_loads(res[i].body ? res[i].body : "", 0, NULL);
        if (res[i].status == 200) {
            ok++;
        } else {
            CU_ASSERT_EQUAL(res[i].status, 504);
            const char *err = jstr(o, "error");
            if (err && strstr(err, "no offload thread free in 1300 ms")) {
                json_t *brew = jstep(o, "brew_coffee");
                double took = jnum(brew, "end_ms") - jnum(brew, "start_ms");
                CU_ASSERT(took >= 1300);
                CU_ASSERT(took < 1300 + harness_slack(200));
                queue_bound++;
            }
        }
        char row[16];
        db_row_status(db, (long long)jnum(o, "order_id"), row, sizeof row);
        CU_ASSERT_STRING_EQUAL(row, res[i].status == 200 ? "done" : "failed");
        json_decref(o);
        http_result_free(&res[i]);
    }
    CU_ASSERT_EQUAL(ok, 1);
    CU_ASSERT_EQUAL(queue_bound, 1);
    CU_ASSERT_EQUAL(child_stop(&server, 10), 0);
}

/* /compare takes the new modes: threads (the sequential sum) against
 * offload (the critical path), one order each at the same moment. */
static void test_compare(void)
{
    char url[200];
    long status;
    snprintf(url, sizeof url, "%s/compare?modes=threads,offload&scale=0.1", st.server.base_url);
    json_t *c = http_get_json(url, &status);
    CU_ASSERT_EQUAL_FATAL(status, 200);
    json_t *t = json_object_get(c, "threads"), *o = json_object_get(c, "offload");
    CU_ASSERT_FATAL(t && o);
    CU_ASSERT_STRING_EQUAL(jstr(t, "status"), "done");
    CU_ASSERT_STRING_EQUAL(jstr(o, "status"), "done");
    CU_ASSERT(jnum(t, "elapsed_ms") >= 690);
    CU_ASSERT(jnum(o, "elapsed_ms") >= 400 && jnum(o, "elapsed_ms") < 400 + harness_slack(150));
    CU_ASSERT(jnum(c, "speedup") > 1.4); /* 690 / 400 = 1.7 */
    json_decref(c);
}

static void test_clean_exit(void)
{
    CU_ASSERT_EQUAL(child_stop(&st.server, 30), 0);
}

int main(void)
{
    static const struct harness_test tests[] = {
        {"one offload order: the critical path, toast beside the brew, its row done", test_one_order},
        {"an async order sent during an offload brew is not stalled", test_no_stall},
        {"a brew waits for an offload thread no longer than its bound", test_queue_bound},
        {"/compare?modes=threads,offload: the sum against the critical path", test_compare},
        {"the server exits 0", test_clean_exit},
        {NULL, NULL},
    };
    return harness_main("offload", setup, teardown, tests);
}
