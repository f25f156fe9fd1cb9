/* Unit tests for the threads mode's shared blocking pool (exec/sync_pool.c),
 * without a database (a slot is connected by its borrower, so lending
 * needs none): a slot is lent to one borrower at a time; a borrower that
 * finds none waits at most its deadline and then gets NULL with a message
 * (and not before the deadline); a slot returned meanwhile ends the wait
 * at once; cancel ends every wait now and later; the stats count lent,
 * peak, waiting and timeouts. */
#include "harness.h"

#include "clock.h"
#include "sync_pool.h"

#include <CUnit/Basic.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

static void test_deadline(void)
{
    struct sync_pool *p = sync_pool_new(1, NULL, NULL, 1000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    char msg[200] = "";
    struct db_sync *a = sync_pool_get(p, 100, msg, sizeof msg);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    int64_t t0 = clock_mono_ns();
    CU_ASSERT_PTR_NULL(sync_pool_get(p, 150, msg, sizeof msg));
    double ms = ns_to_ms(clock_mono_ns() - t0);
    CU_ASSERT(ms >= 150);
    CU_ASSERT(ms < harness_slack(400));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "no database connection free in 150 ms (pool of 1)"));
    struct sync_pool_stats s;
    sync_pool_stats(p, &s);
    CU_ASSERT_EQUAL(s.size, 1);
    CU_ASSERT_EQUAL(s.busy, 1);
    CU_ASSERT_EQUAL(s.peak, 1);
    CU_ASSERT_EQUAL(s.timeouts, 1);
    CU_ASSERT_EQUAL(s.waiting, 0);
    sync_pool_put(p, a);
    struct db_sync *b = sync_pool_get(p, 0, msg, sizeof msg); /* free now: no wait needed */
    CU_ASSERT_PTR_EQUAL(b, a);
    sync_pool_put(p, b);
    sync_pool_free(p);
}

struct borrower {
    struct sync_pool *p;
    long wait_ms;
    struct db_sync *got;
    double waited_ms;
    char msg[200];
};

static void *borrow(void *arg)
{
    struct borrower *b = arg;
    int64_t t0 = clock_mono_ns();
    b->got = sync_pool_get(b->p, b->wait_ms, b->msg, sizeof b->msg);
    b->waited_ms = ns_to_ms(clock_mono_ns() - t0);
    return NULL;
}

/* Waits (polling the stats, bounded) until n borrowers wait. */
static int wait_for_waiters(struct sync_pool *p, int n)
{
    struct sync_pool_stats s = {0};
    int64_t t0 = clock_mono_ns();
    while (ns_to_ms(clock_mono_ns() - t0) < 5000) {
        sync_pool_stats(p, &s);
        if (s.waiting == n)
            return 1;
        struct timespec ts = {0, 1000000}; /* polling period */
        nanosleep(&ts, NULL);
    }
    return 0;
}

static void test_handed_over(void)
{
    struct sync_pool *p = sync_pool_new(2, NULL, NULL, 1000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    char msg[200];
    struct db_sync *a = sync_pool_get(p, 100, msg, sizeof msg), *b = sync_pool_get(p, 100, msg, sizeof msg);
    CU_ASSERT_FATAL(a && b && a != b);
    struct borrower w = {.p = p, .wait_ms = 10000};
    pthread_t t;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, borrow, &w), 0);
    CU_ASSERT(wait_for_waiters(p, 1));
    sync_pool_put(p, b); /* the waiter gets it at once, long before its deadline */
    pthread_join(t, NULL);
    CU_ASSERT_PTR_EQUAL(w.got, b);
    CU_ASSERT(w.waited_ms < 10000);
    sync_pool_put(p, w.got);
    sync_pool_put(p, a);
    sync_pool_free(p);
}

static void test_cancel(void)
{
    struct sync_pool *p = sync_pool_new(1, NULL, NULL, 1000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    char msg[200];
    struct db_sync *a = sync_pool_get(p, 100, msg, sizeof msg);
    struct borrower w = {.p = p, .wait_ms = 60000};
    pthread_t t;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, borrow, &w), 0);
    CU_ASSERT(wait_for_waiters(p, 1));
    sync_pool_cancel(p);
    pthread_join(t, NULL);
    CU_ASSERT_PTR_NULL(w.got);
    CU_ASSERT(w.waited_ms < harness_slack(1000));
    CU_ASSERT_PTR_NOT_NULL(strstr(w.msg, "shutting down"));
    sync_pool_put(p, a);
    CU_ASSERT_PTR_NULL(sync_pool_get(p, 60000, msg, sizeof msg)); /* later ones too, at once */
    sync_pool_free(p);
}

int main(void)
{
    static const struct harness_test tests[] = {
        {"a borrower waits its deadline and no longer", test_deadline},
        {"a returned slot ends a wait at once", test_handed_over},
        {"cancel ends every wait", test_cancel},
        {NULL, NULL},
    };
    return harness_main("sync_pool", NULL, NULL, tests);
}
