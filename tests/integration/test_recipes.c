/* Integration: the seed's first lessons as recipes, and a teacher's own
 * (POST /recipes, stored in PostgreSQL, served by a second replica too),
 * on the real kitchen and database. gather_tasks.py: A (2 s), B (4 s), C (1 s) at once take the
 * longest (4.0 s x scale) on the loop and the sum (7.0 s x scale) on a
 * blocking worker; either way the results come in the order they were
 * asked for (A1, B2, C3), while the steps end in time order (C, A, B) on
 * the loop and in table order on the worker. create_tasks.py and
 * hello_async.py likewise; GET /recipes and /workflow?recipe=; recipe= on
 * /compare and /rush. */
#include "harness.h"

#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

/* Elapsed may exceed the plan by this much on a loaded 2-core machine. */
#define SLACK_MS 250.0
#define SCALE 0.1

static struct stack st;
static struct child second; /* another replica on the same database and kitchen */
static PGconn *db;

static int setup(void)
{
    if (stack_setup(&st, NULL, &db) != 0)
        return -1;
    const char *args[] = {"--kitchen-url", st.kitchen.base_url, "--workers", "2", "--db-pool", "2", NULL};
    if (child_start(&second, "coffee-server", args) != 0 || child_wait_ready(&second, 15) != 0)
        return -1;
    return 0;
}

static int teardown(void)
{
    int rc = second.pid > 0 ? child_stop(&second, 30) : 0;
    return stack_teardown(&st, db) == 0 && rc == 0 ? 0 : -1;
}

/* GET {server}{path}; the JSON (new) and its status. */
static json_t *get(const char *path, long *status)
{
    char url[512];
    snprintf(url, sizeof url, "%s%s", st.server.base_url, path);
    return http_get_json(url, status);
}

/* Whether the strings of array a are want[0..n), in that order. */
static int names_are(const json_t *a, const char *const want[], size_t n)
{
    if (!json_is_array(a) || json_array_size(a) != n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(a, i));
        if (!s || strcmp(s, want[i]) != 0)
            return 0;
    }
    return 1;
}

static void check_order(const json_t *o, const char *recipe, const char *mode, const char *const results[],
                        const char *const completed[], size_t n, double expected_ms)
{
    CU_ASSERT_STRING_EQUAL(jstr(o, "status"), "done");
    CU_ASSERT_STRING_EQUAL(jstr(o, "recipe"), recipe);
    CU_ASSERT_STRING_EQUAL(jstr(o, "mode"), mode);
    CU_ASSERT(names_are(json_object_get(o, "result"), results, n));
    CU_ASSERT(names_are(json_object_get(o, "completed"), completed, n));
    double elapsed = jnum(o, "elapsed_ms");
    if (elapsed < expected_ms || elapsed > expected_ms + harness_slack(SLACK_MS))
        fprintf(stderr, "  %s %s: %.1f ms, want %.1f\n", recipe, mode, elapsed, expected_ms);
    CU_ASSERT(elapsed >= expected_ms);
    CU_ASSERT(elapsed < expected_ms + harness_slack(SLACK_MS));
}

static json_t *order(const char *recipe, const char *mode)
{
    char path[160];
    long status;
    snprintf(path, sizeof path, "/make-coffee?mode=%s&scale=%g&recipe=%s", mode, SCALE, recipe);
    json_t *o = get(path, &status);
    CU_ASSERT_EQUAL(status, 200);
    return o;
}

static void test_gather(void)
{
    static const char *const results[] = {"A1", "B2", "C3"};
    static const char *const by_time[] = {"C", "A", "B"}, *const in_table[] = {"A", "B", "C"};
    static const struct {
        const char *mode;
        const char *const *completed;
        double ms;
    } cases[] = {
        {"async", by_time, 4000 * SCALE},
        {"naive", by_time, 4000 * SCALE},
        {"mixed", by_time, 4000 * SCALE},
        {"blocking", in_table, 7000 * SCALE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *o = order("gather", cases[i].mode);
        CU_ASSERT_PTR_NOT_NULL_FATAL(o);
        check_order(o, "gather", cases[i].mode, results, cases[i].completed, 3, cases[i].ms);
        CU_ASSERT_DOUBLE_EQUAL(jnum(o, "critical_path_ms"), 4000 * SCALE, 1e-6);
        CU_ASSERT_DOUBLE_EQUAL(jnum(o, "sequential_ms"), 7000 * SCALE, 1e-6);
        json_decref(o);
    }
}

static void test_create_tasks_and_hello(void)
{
    static const char *const results[] = {"A1", "B2", "Do other work here..."};
    static const char *const by_time[] = {"other_work", "A", "B"}, *const in_table[] = {"A", "B", "other_work"};
    json_t *o = order("create_tasks", "async");
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    check_order(o, "create_tasks", "async", results, by_time, 3, 4000 * SCALE);
    json_decref(o);
    o = order("create_tasks", "blocking");
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    check_order(o, "create_tasks", "blocking", results, in_table, 3, 6000 * SCALE);
    json_decref(o);
    static const char *const world[] = {"... World!"}, *const sleep[] = {"sleep"};
    for (int m = 0; m < 2; m++) {
        o = order("hello", m ? "blocking" : "async");
        CU_ASSERT_PTR_NOT_NULL_FATAL(o);
        check_order(o, "hello", m ? "blocking" : "async", world, sleep, 1, 1000 * SCALE);
        json_decref(o);
    }
}

/* Coffee stays as it was: no "recipe", no "completed", recipe=coffee the same. */
static void test_coffee_unchanged(void)
{
    json_t *o = order("coffee", "async");
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_STRING_EQUAL(jstr(o, "status"), "done");
    CU_ASSERT_PTR_NULL(json_object_get(o, "recipe"));
    CU_ASSERT_PTR_NULL(json_object_get(o, "completed"));
    CU_ASSERT_EQUAL(json_array_size(json_object_get(o, "steps")), 4);
    json_decref(o);
}

static void test_list_and_workflow(void)
{
    long status;
    json_t *l = get("/recipes", &status);
    CU_ASSERT_EQUAL(status, 200);
    json_t *list = json_object_get(l, "recipes");
    static const char *const names[] = {"coffee", "gather", "create_tasks", "hello"};
    CU_ASSERT_FATAL(json_array_size(list) >= 4);
    for (size_t i = 0; i < 4; i++) {
        json_t *r = json_array_get(list, i);
        CU_ASSERT_STRING_EQUAL(jstr(r, "name"), names[i]);
        CU_ASSERT(json_is_true(json_object_get(r, "builtin")));
    }
    CU_ASSERT_DOUBLE_EQUAL(jnum(json_array_get(list, 1), "critical_path_ms"), 4000, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(jnum(json_array_get(list, 1), "sequential_ms"), 7000, 1e-9);
    json_decref(l);

    json_t *w = get("/workflow?recipe=gather&scale=0.5", &status);
    CU_ASSERT_EQUAL(status, 200);
    CU_ASSERT_STRING_EQUAL(jstr(w, "name"), "gather");
    CU_ASSERT_DOUBLE_EQUAL(jnum(w, "critical_path_ms"), 2000, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(jnum(w, "sequential_ms"), 3500, 1e-9);
    json_t *a = jstep(w, "A");
    CU_ASSERT_STRING_EQUAL(jstr(a, "calls"), "/task");
    CU_ASSERT_STRING_EQUAL(jstr(a, "returns"), "A1");
    CU_ASSERT_DOUBLE_EQUAL(jnum(a, "planned_ms"), 1000, 1e-9);
    /* The modes' expectations are the recipe's. */
    json_t *modes = json_object_get(w, "modes");
    for (size_t i = 0; i < json_array_size(modes); i++) {
        json_t *m = json_array_get(modes, i);
        int one_by_one = !strcmp(jstr(m, "name"), "blocking") || !strcmp(jstr(m, "name"), "threads");
        CU_ASSERT_DOUBLE_EQUAL(jnum(m, "expected_ms"), one_by_one ? 3500 : 2000, 1e-9);
    }
    json_decref(w);

    /* Unknown: a JSON 404, on every route that takes a recipe. */
    static const char *const unknown[] = {"/workflow?recipe=tea", "/make-coffee?mode=async&recipe=tea",
                                          "/compare?recipe=tea", "/rush?modes=async&customers=1&recipe=tea"};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        json_t *e = get(unknown[i], &status);
        CU_ASSERT_EQUAL(status, 404);
        CU_ASSERT(json_is_string(json_object_get(e, "error")));
        json_decref(e);
    }
    json_t *e = get("/make-coffee?mode=async&recipe=not%20a%20name", &status);
    CU_ASSERT_EQUAL(status, 400);
    json_decref(e);
}

static void test_compare(void)
{
    long status;
    json_t *c = get("/compare?modes=blocking,async&recipe=gather&scale=0.1", &status);
    CU_ASSERT_EQUAL(status, 200);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    static const char *const results[] = {"A1", "B2", "C3"};
    static const char *const by_time[] = {"C", "A", "B"}, *const in_table[] = {"A", "B", "C"};
    check_order(json_object_get(c, "blocking"), "gather", "blocking", results, in_table, 3, 7000 * SCALE);
    check_order(json_object_get(c, "async"), "gather", "async", results, by_time, 3, 4000 * SCALE);
    /* 7/4, within what the slack allows. */
    CU_ASSERT(jnum(c, "speedup") > 1.3 && jnum(c, "speedup") < 1.8);
    json_decref(c);
}

/* /rush?recipe=: every order of the stream is the recipe's. */
static void test_rush(void)
{
    char url[256];
    snprintf(url, sizeof url, "%s/rush?modes=async,blocking&customers=2&scale=0.05&recipe=gather", st.server.base_url);
    struct http_result r;
    CU_ASSERT_EQUAL_FATAL(http_get(url, &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    int orders = 0;
    for (const char *p = r.body; (p = strstr(p, "event: order\ndata: ")) != NULL; orders++) {
        p += strlen("event: order\ndata: ");
        json_t *o = json_loadb(p, strcspn(p, "\n"), 0, NULL);
        CU_ASSERT_PTR_NOT_NULL_FATAL(o);
        CU_ASSERT_STRING_EQUAL(jstr(o, "recipe"), "gather");
        CU_ASSERT_STRING_EQUAL(jstr(o, "status"), "done");
        CU_ASSERT_EQUAL(json_array_size(json_object_get(o, "completed")), 3);
        json_decref(o);
    }
    CU_ASSERT_EQUAL(orders, 4);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"recipe\":\"gather\",\"customers\":2"));
    http_result_free(&r);
}

/* coffee-client --recipe gather: every order of both modes is gather's. */
static void test_client(void)
{
    const char *dir = getenv("COFFEE_BIN_DIR");
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "%s/coffee-client --url %s --recipe gather --orders 2 --concurrency 2 --scale 0.02 --json",
             dir ? dir : ".", st.server.base_url);
    static const char gathered[] =
        "SELECT count(*) FROM orders WHERE recipe = 'gather' AND steps -> 0 ->> 'result' = 'A1'";
    long before = db_count(db, gathered);
    FILE *p = popen(cmd, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    char out[65536];
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    int rc = pclose(p);
    CU_ASSERT_EQUAL(rc, 0); /* every order ok */
    json_t *doc = json_loads(out, 0, NULL);
    CU_ASSERT_PTR_NOT_NULL(doc);
    json_decref(doc);
    /* The server ran gather's steps: the kitchen's task, not the kettle. */
    CU_ASSERT_EQUAL(db_count(db, gathered) - before, 4); /* 2 orders in each of 2 modes */
    snprintf(cmd, sizeof cmd, "%s/coffee-client --url %s --recipe 'no such' 2>/dev/null", dir ? dir : ".",
             st.server.base_url);
    CU_ASSERT_EQUAL(WEXITSTATUS(system(cmd)), 2); /* bad usage */
}

/* ---- a teacher's own ----------------------------------------------------- */

/* POST body to /recipes on server; the answer's JSON (new) and status. */
static json_t *post(const struct child *server, const char *body, long *status)
{
    char url[256];
    snprintf(url, sizeof url, "%s/recipes", server->base_url);
    struct http_result r;
    json_t *j = NULL;
    *status = 0;
    if (http_post(url, body, strlen(body), &r) == 0) {
        j = json_loads(r.body, 0, NULL);
        *status = r.status;
    }
    http_result_free(&r);
    return j;
}

static long stored(void)
{
    return db_count(db, "SELECT count(*) FROM recipes");
}

#define STEP(name, extra) "{\"name\":\"" name "\",\"io\":\"http\",\"planned_ms\":100,\"returns\":\"x\"" extra "}"

static void test_bad_recipes(void)
{
    char many[4096], big[20000];
    size_t off = (size_t)snprintf(many, sizeof many, "{\"name\":\"many\",\"steps\":[");
    for (int i = 0; i < 17; i++)
        off += (size_t)snprintf(many + off, sizeof many - off,
                                "%s{\"name\":\"s%d\",\"io\":\"http\","
                                "\"planned_ms\":1,\"returns\":\"r\"}",
                                i ? "," : "", i);
    snprintf(many + off, sizeof many - off, "]}");
    memset(big, ' ', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    memcpy(big, "{\"name\":\"big\",\"steps\":[]}", 25); /* then spaces: valid JSON, too big */
    const struct {
        const char *body, *want;
    } cases[] = {
        {"{\"name\":\"x\",\"steps\":[" STEP("a", ",\"after\":[\"b\"]") "," STEP("b", ",\"after\":[\"a\"]") "]}",
         "cycle"},
        {"{\"name\":\"x\",\"steps\":[" STEP("a", ",\"after\":[\"ghost\"]") "]}", "unknown step 'ghost'"},
        {many, "1 to 16 steps"},
        {"{\"name\":\"x\",\"steps\":[{\"name\":\"a\",\"io\":\"http\",\"planned_ms\":1e9,\"returns\":\"x\"}]}",
         "planned_ms"},
        {"{\"name\":\"x\",\"steps\":[" STEP("a", "") ",", "not JSON"},
        {"{\"name\":[],\"steps\":[]}", "name must be"},
        {"{\"name\":\"x\",\"steps\":[{\"name\":\"a\",\"io\":1,\"planned_ms\":1}]}", "io must be"},
        {"{\"name\":\"x\",\"steps\":[" STEP("a", ",\"after\":\"b\"") "]}", "after must be"},
        {"{\"name\":\"x\",\"steps\":[" STEP("a", "") "," STEP("a", "") "]}", "two steps are called a"},
        {"{\"name\":\"gather\",\"steps\":[" STEP("a", "") "]}", "built-in"},
        {big, "at most 16384 bytes"},
        {"", "not JSON"},
    };
    long before = stored();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        long status;
        json_t *e = post(&st.server, cases[i].body, &status);
        const char *msg = json_string_value(json_object_get(e, "error"));
        if (status != 400 || !msg || !strstr(msg, cases[i].want))
            fprintf(stderr, "  case %zu: %ld %s, want 400 with '%s'\n", i, status, msg ? msg : "(no error)",
                    cases[i].want);
        CU_ASSERT_EQUAL(status, 400);
        CU_ASSERT(msg && strstr(msg, cases[i].want));
        json_decref(e);
    }
    CU_ASSERT_EQUAL(stored(), before); /* nothing stored */
}

/* A breakfast: the eggs wait for the pan; the kettle's water goes to a brew. */
static const char breakfast[] =
    "{\"name\":\"breakfast\",\"lesson\":\"the eggs wait for the pan\",\"steps\":["
    "{\"name\":\"eggs\",\"io\":\"http\",\"after\":[\"pan\"],\"planned_ms\":2000,\"calls\":\"/task\","
    "\"returns\":\"Eggs\"},"
    "{\"name\":\"pan\",\"io\":\"http\",\"planned_ms\":1000,\"calls\":\"/task\",\"returns\":\"Hot pan\"},"
    "{\"name\":\"kettle\",\"io\":\"http\",\"planned_ms\":1500,\"calls\":\"/kettle\"},"
    "{\"name\":\"brew\",\"io\":\"sql\",\"after\":[\"kettle\"],\"planned_ms\":500,\"calls\":\"brew_coffee\"}]}";

/* One order of breakfast on server in mode: done, in about what
 * /workflow?recipe=breakfast expects of the mode; returns its id. */
static long long breakfast_order(const struct child *server, const char *mode)
{
    char path[256];
    long status;
    snprintf(path, sizeof path, "%s/workflow?recipe=breakfast&scale=%g", server->base_url, SCALE);
    json_t *w = http_get_json(path, &status);
    CU_ASSERT_EQUAL_FATAL(status, 200);
    double expected = -1;
    json_t *modes = json_object_get(w, "modes");
    for (size_t i = 0; i < json_array_size(modes); i++)
        if (!strcmp(jstr(json_array_get(modes, i), "name"), mode))
            expected = jnum(json_array_get(modes, i), "expected_ms");
    json_decref(w);
    snprintf(path, sizeof path, "%s/make-coffee?mode=%s&scale=%g&recipe=breakfast", server->base_url, mode, SCALE);
    json_t *o = http_get_json(path, &status);
    CU_ASSERT_EQUAL(status, 200);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_STRING_EQUAL(jstr(o, "status"), "done");
    CU_ASSERT_STRING_EQUAL(jstr(o, "recipe"), "breakfast");
    /* In table order (sorted: the pan before the eggs), whatever ended first. */
    static const char *const pan_first[] = {"Hot pan", "Eggs", "Boiled water"};
    json_t *res = json_object_get(o, "result");
    CU_ASSERT_EQUAL(json_array_size(res), 4);
    for (size_t i = 0; i < 3; i++)
        CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(res, i)), pan_first[i]);
    /* The brew is real: the kettle's water alone makes no coffee. */
    CU_ASSERT_STRING_EQUAL(jstr(jstep(o, "brew"), "result"), "Coffee not ready!");
    CU_ASSERT_EQUAL(json_array_size(json_object_get(o, "completed")), 4);
    double elapsed = jnum(o, "elapsed_ms");
    if (elapsed < expected || elapsed > expected + harness_slack(SLACK_MS))
        fprintf(stderr, "  breakfast %s: %.1f ms, want %.1f\n", mode, elapsed, expected);
    CU_ASSERT(expected > 0 && elapsed >= expected && elapsed < expected + harness_slack(SLACK_MS));
    long long id = (long long)jnum(o, "order_id");
    json_decref(o);
    return id;
}

static void test_custom_recipe(void)
{
    long status;
    json_t *a = post(&st.server, breakfast, &status);
    CU_ASSERT_EQUAL(status, 201);
    CU_ASSERT_STRING_EQUAL(jstr(a, "name"), "breakfast");
    json_decref(a);
    CU_ASSERT_EQUAL(db_count(db, "SELECT count(*) FROM recipes WHERE name = 'breakfast'"), 1);

    /* Listed; its document in the shape it was posted in, at scale 1. */
    json_t *l = get("/recipes", &status);
    json_t *list = json_object_get(l, "recipes");
    int listed = 0;
    for (size_t i = 0; i < json_array_size(list); i++)
        listed += !strcmp(jstr(json_array_get(list, i), "name"), "breakfast") &&
                  json_is_false(json_object_get(json_array_get(list, i), "builtin"));
    CU_ASSERT_EQUAL(listed, 1);
    json_decref(l);
    json_t *w = get("/workflow?recipe=breakfast", &status);
    CU_ASSERT_EQUAL(status, 200);
    CU_ASSERT_DOUBLE_EQUAL(jnum(w, "critical_path_ms"), 3000, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(jnum(w, "sequential_ms"), 5000, 1e-9);
    CU_ASSERT_STRING_EQUAL(jstr(jstep(w, "eggs"), "returns"), "Eggs");
    /* ...which posts back as it is (a fetched recipe, edited, is a new one). */
    json_object_set_new(w, "name", json_string("breakfast2"));
    char *again = json_dumps(w, JSON_COMPACT);
    json_decref(w);
    CU_ASSERT_PTR_NOT_NULL_FATAL(again);
    json_decref(post(&st.server, again, &status));
    CU_ASSERT_EQUAL(status, 201);
    free(again);

    static const char *const modes[] = {"async", "blocking", "naive", "mixed"};
    long long id = 0;
    for (size_t m = 0; m < 4; m++)
        id = breakfast_order(&st.server, modes[m]);
    /* Another replica knows it from the table. */
    breakfast_order(&second, "async");
    breakfast_order(&second, "blocking");

    /* Deleted: no more orders of it here, but those made stay readable. */
    char url[256];
    snprintf(url, sizeof url, "%s/recipes/breakfast", st.server.base_url);
    struct http_result r;
    CU_ASSERT_EQUAL_FATAL(http_request("DELETE", url, &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    http_result_free(&r);
    CU_ASSERT_EQUAL(db_count(db, "SELECT count(*) FROM recipes WHERE name = 'breakfast'"), 0);
    json_t *e = get("/make-coffee?mode=async&recipe=breakfast", &status);
    CU_ASSERT_EQUAL(status, 404);
    json_decref(e);
    char path[64];
    snprintf(path, sizeof path, "/orders/%lld", id);
    json_t *o = get(path, &status);
    CU_ASSERT_EQUAL(status, 200);
    CU_ASSERT_STRING_EQUAL(jstr(o, "status"), "done");
    CU_ASSERT_EQUAL(json_array_size(json_object_get(o, "steps")), 4);
    json_decref(o);
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM orders WHERE id = %lld AND recipe = 'breakfast'", id);
    CU_ASSERT_EQUAL(db_count(db, sql), 1);
    CU_ASSERT_EQUAL_FATAL(http_request("DELETE", url, &r), 0);
    CU_ASSERT_EQUAL(r.status, 404);
    http_result_free(&r);
}

/* A recipe deleted while orders of it run: they run to their end with it
 * (the server frees it only then: ASan would see otherwise), the next
 * order of it is a 404. */
static void test_delete_while_running(void)
{
    static const char slow[] = "{\"name\":\"slow\",\"steps\":[{\"name\":\"wait\",\"io\":\"http\",\"planned_ms\":1500,"
                               "\"calls\":\"/task\",\"returns\":\"waited\"}]}";
    long status;
    json_decref(post(&st.server, slow, &status));
    CU_ASSERT_EQUAL_FATAL(status, 201);
    long running = db_count(db, "SELECT count(*) FROM orders WHERE status = 'running'");
    char a[256], b[256];
    snprintf(a, sizeof a, "%s/make-coffee?mode=async&scale=1&recipe=slow", st.server.base_url);
    snprintf(b, sizeof b, "%s/make-coffee?mode=blocking&scale=1&recipe=slow", st.server.base_url);
    struct http_batch batch = {.n = 2, .urls = {a, b}};
    CU_ASSERT_EQUAL_FATAL(http_batch_start(&batch), 0);
    /* Both rows exist once both orders were submitted (each holds the recipe). */
    for (int i = 0; i < 400 && db_count(db, "SELECT count(*) FROM orders WHERE status = 'running'") < running + 2;
         i++) {
        struct timespec ts = {0, 5 * 1000000L};
        nanosleep(&ts, NULL); /* polling a condition, bounded: 2 s */
    }
    CU_ASSERT_EQUAL(db_count(db, "SELECT count(*) FROM orders WHERE status = 'running'"), running + 2);
    char url[256];
    snprintf(url, sizeof url, "%s/recipes/slow", st.server.base_url);
    struct http_result r;
    CU_ASSERT_EQUAL_FATAL(http_request("DELETE", url, &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    http_result_free(&r);
    http_batch_wait(&batch);
    for (int i = 0; i < 2; i++) {
        CU_ASSERT_EQUAL(batch.res[i].status, 200);
        json_t *o = json_loads(batch.res[i].body, 0, NULL);
        CU_ASSERT_STRING_EQUAL(jstr(o, "recipe"), "slow");
        CU_ASSERT_STRING_EQUAL(jstr(o, "status"), "done");
        CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(json_object_get(o, "result"), 0)), "waited");
        json_decref(o);
        http_result_free(&batch.res[i]);
    }
    json_t *e = get("/make-coffee?mode=async&recipe=slow", &status);
    CU_ASSERT_EQUAL(status, 404);
    json_decref(e);
}

int main(void)
{
    static const struct harness_test tests[] = {
        {"gather in every mode: A1 B2 C3, ends C A B on the loop", test_gather},
        {"create_tasks and hello", test_create_tasks_and_hello},
        {"coffee's answer unchanged", test_coffee_unchanged},
        {"GET /recipes, /workflow?recipe=, unknown names", test_list_and_workflow},
        {"/compare?recipe=gather", test_compare},
        {"/rush?recipe=gather", test_rush},
        {"coffee-client --recipe gather", test_client},
        {"bad recipes: a JSON 400 each, nothing stored", test_bad_recipes},
        {"a teacher's recipe: stored, in every mode, on a second replica, deleted", test_custom_recipe},
        {"a recipe deleted while orders of it run", test_delete_while_running},
        {NULL, NULL},
    };
    return harness_main("recipes", setup, teardown, tests);
}
