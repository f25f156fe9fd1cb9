/* Integration: several replicas of the server on one database and one
 * kitchen, as behind the balancer of the compose "scale" stack. Each order
 * names the replica that ran it (--instance, default the host name): in
 * its JSON, in its row, and in the per-instance counts of /stats. */
#include "harness.h"

#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct stack st;     /* kitchen + replica "replica-a" */
static struct child second; /* a replica without --instance */
static PGconn *db;
static char hostname[256];

static int setup(void)
{
    static const char *const args[] = {"--instance", "replica-a", "--workers", "2", "--db-pool", "2", NULL};
    if (gethostname(hostname, sizeof hostname - 1) != 0)
        return -1;
    if (stack_setup(&st, args, &db) != 0)
        return -1;
    const char *args2[] = {"--kitchen-url", st.kitchen.base_url, "--workers", "2", "--db-pool", "2", NULL};
    if (child_start(&second, "coffee-server", args2) != 0 || child_wait_ready(&second, 15) != 0)
        return -1;
    return 0;
}

static int teardown(void)
{
    int rc = second.pid > 0 ? child_stop(&second, 30) : 0;
    return stack_teardown(&st, db) == 0 && rc == 0 ? 0 : -1;
}

/* One order on server; returns its JSON (new reference) after asserting a
 * 200 and the instance it names. */
static json_t *order_on(const struct child *server, const char *mode, const char *instance)
{
    char url[200];
    long status;
    snprintf(url, sizeof url, "%s/make-coffee?mode=%s&scale=0", server->base_url, mode);
    json_t *o = http_get_json(url, &status);
    CU_ASSERT_EQUAL(status, 200);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    const char *got = json_string_value(json_object_get(o, "instance"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    CU_ASSERT_STRING_EQUAL(got, instance);
    return o;
}

static void test_rows_name_their_replica(void)
{
    PGresult *now = PQexec(db, "SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')");
    CU_ASSERT_EQUAL_FATAL(PQresultStatus(now), PGRES_TUPLES_OK);
    char since[64];
    snprintf(since, sizeof since, "%s", PQgetvalue(now, 0, 0));
    PQclear(now);

    json_t *a = order_on(&st.server, "async", "replica-a");
    json_t *b1 = order_on(&second, "blocking", hostname);
    json_t *b2 = order_on(&second, "async", hostname);

    /* The row of each order says which replica ran it. */
    json_t *orders[] = {a, b1, b2};
    const char *want[] = {"replica-a", hostname, hostname};
    for (int i = 0; i < 3; i++) {
        char id[32];
        snprintf(id, sizeof id, "%lld", (long long)json_integer_value(json_object_get(orders[i], "order_id")));
        const char *params[] = {id};
        PGresult *r = PQexecParams(db, "SELECT instance FROM orders WHERE id = $1", 1, NULL, params, NULL, NULL, 0);
        CU_ASSERT_EQUAL_FATAL(PQresultStatus(r), PGRES_TUPLES_OK);
        CU_ASSERT_EQUAL_FATAL(PQntuples(r), 1);
        CU_ASSERT_STRING_EQUAL(PQgetvalue(r, 0, 0), want[i]);
        PQclear(r);
        json_decref(orders[i]);
    }

    /* /stats counts them per instance, from either replica. */
    char url[200];
    long status;
    snprintf(url, sizeof url, "%s/stats?since=%s", st.server.base_url, since);
    json_t *j = http_get_json(url, &status);
    CU_ASSERT_EQUAL(status, 200);
    json_t *inst = json_object_get(j, "instances");
    CU_ASSERT_FATAL(json_is_object(inst));
    CU_ASSERT_EQUAL(json_object_size(inst), 2);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(json_object_get(inst, "replica-a"), "count")), 1);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(json_object_get(inst, hostname), "count")), 2);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(json_object_get(inst, hostname), "failed")), 0);
    /* The per-mode part is as before. */
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(json_object_get(json_object_get(j, "modes"), "async"), "count")),
                    2);
    json_decref(j);

    /* /orders/{id} reads the instance back from the row. */
    PGresult *last = PQexec(db, "SELECT max(id) FROM orders WHERE instance = 'replica-a'");
    CU_ASSERT_EQUAL_FATAL(PQresultStatus(last), PGRES_TUPLES_OK);
    snprintf(url, sizeof url, "%s/orders/%s", second.base_url, PQgetvalue(last, 0, 0));
    PQclear(last);
    j = http_get_json(url, &status);
    CU_ASSERT_EQUAL(status, 200);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "instance")), "replica-a");
    json_decref(j);
}

int main(void)
{
    static const struct harness_test tests[] = {
        {"each order names its replica: JSON, row, /stats, /orders/{id}", test_rows_name_their_replica},
        {NULL, NULL},
    };
    return harness_main("replicas", setup, teardown, tests);
}
