/* Unit tests for recipe: a teacher's recipe read from JSON and checked
 * (every fault a sentence, nothing built), its round trip through
 * recipe_json, and the book's lifetimes (a deleted recipe stays alive
 * while orders hold it). */
#include "harness.h"
#include "recipe.h"
#include "workflow.h"

#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))

static const char breakfast[] =
    "{\"name\":\"breakfast\",\"lesson\":\"eggs wait for the pan\",\"steps\":["
    "{\"name\":\"eggs\",\"io\":\"http\",\"after\":[\"pan\"],\"planned_ms\":3000,\"calls\":\"/"
    "task\",\"returns\":\"Eggs\"},"
    "{\"name\":\"pan\",\"io\":\"http\",\"after\":[],\"planned_ms\":1000,\"calls\":\"/task\",\"returns\":\"Hot pan\"},"
    "{\"name\":\"kettle\",\"io\":\"http\",\"planned_ms\":2500,\"calls\":\"/kettle\"},"
    "{\"name\":\"brew\",\"io\":\"sql\",\"after\":[\"kettle\"],\"planned_ms\":500,\"calls\":\"brew_coffee\"}],"
    "\"scale\":1,\"modes\":[]}";

static struct recipe *parse(const char *text, char *err, size_t errlen)
{
    return recipe_parse(text, strlen(text), err, errlen);
}

static void test_good(void)
{
    char err[200] = "";
    struct recipe *r = parse(breakfast, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_STRING_EQUAL(r->name, "breakfast");
    CU_ASSERT_STRING_EQUAL(r->lesson, "eggs wait for the pan");
    CU_ASSERT_EQUAL_FATAL(r->nsteps, 4);
    /* Sorted so each step comes after those it waits for: pan before eggs. */
    CU_ASSERT_STRING_EQUAL(r->steps[0].name, "pan");
    CU_ASSERT_STRING_EQUAL(r->steps[1].name, "eggs");
    CU_ASSERT_STRING_EQUAL(r->steps[2].name, "kettle");
    CU_ASSERT_STRING_EQUAL(r->steps[3].name, "brew");
    CU_ASSERT_EQUAL(r->steps[1].after, 1u);
    CU_ASSERT_EQUAL(r->steps[3].after, 1u << 2);
    CU_ASSERT_STRING_EQUAL(r->steps[1].target, "/task");
    CU_ASSERT_STRING_EQUAL(r->steps[1].result, "Eggs");
    CU_ASSERT_STRING_EQUAL(r->steps[2].target, "/kettle");
    CU_ASSERT_PTR_NULL(r->steps[2].result);
    CU_ASSERT_EQUAL(r->steps[3].io, IO_SQL);
    CU_ASSERT_DOUBLE_EQUAL(wf_critical_path_ms(r, 1.0), 4000, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(wf_sequential_ms(r, 1.0), 7000, 1e-9);

    /* Its JSON reads back to the same table. */
    char *text = recipe_json(r);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    struct recipe *again = parse(text, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(again);
    CU_ASSERT_EQUAL(again->nsteps, r->nsteps);
    for (int i = 0; i < r->nsteps; i++) {
        CU_ASSERT_STRING_EQUAL(again->steps[i].name, r->steps[i].name);
        CU_ASSERT_EQUAL(again->steps[i].after, r->steps[i].after);
        CU_ASSERT_DOUBLE_EQUAL(again->steps[i].planned_ms, r->steps[i].planned_ms, 1e-9);
    }
    free(text);
    recipe_free(again);
    recipe_free(r);
}

/* Sixteen steps is the most; seventeen is refused. */
static void steps_json(char *buf, size_t len, int n)
{
    size_t off = (size_t)snprintf(buf, len, "{\"name\":\"many\",\"steps\":[");
    for (int i = 0; i < n; i++)
        off += (size_t)snprintf(buf + off, len - off,
                                "%s{\"name\":\"s%d\",\"io\":\"http\",\"planned_ms\":10,"
                                "\"calls\":\"/task\",\"returns\":\"r%d\"}",
                                i ? "," : "", i, i);
    snprintf(buf + off, len - off, "]}");
}

static void test_bad(void)
{
    static const struct {
        const char *json, *want; /* want: a piece of the message */
    } cases[] = {
        {"", "not JSON"},
        {"{\"name\":\"x\",\"steps\":[", "not JSON"},
        {"[]", "JSON object"},
        {"{\"steps\":[]}", "name must be"},
        {"{\"name\":42,\"steps\":[]}", "name must be"},
        {"{\"name\":\"has space\",\"steps\":[]}", "name must be"},
        {"{\"name\":\"coffee\",\"steps\":[{\"name\":\"a\",\"io\":\"http\",\"planned_ms\":1,\"returns\":\"x\"}]}",
         "built-in"},
        {"{\"name\":\"x\",\"steps\":[]}", "1 to 16 steps"},
        {"{\"name\":\"x\",\"steps\":{}}", "1 to 16 steps"},
        {"{\"name\":\"x\",\"steps\":[42]}", "must be an object"},
        {"{\"name\":\"x\",\"steps\":[{\"name\":\"a\",\"io\":\"ftp\",\"planned_ms\":1}]}", "io must be"},
        {"{\"name\":\"x\",\"steps\":[{\"name\":\"a\",\"io\":\"http\",\"planned_ms\":\"1\",\"returns\":\"x\"}]}",
         "planned_ms must be"},
        {"{\"name\":\"x\",\"steps\":[{\"name\":\"a\",\"io\":\"http\",\"planned_ms\":6001,\"returns\":\"x\"}]}",
         "planned_ms must be"},
        {"{\"name\":\"x\",\"steps\":[{\"name\":\"a\",\"io\":\"http\",\"planned_ms\":1e300,\"returns\":\"x\"}]}",
         "planned_ms must be"},
        {"{\"name\":\"x\",\"steps\":[{\"name\":\"a\",\"io\":\"http\",\"planned_ms\":-1,\"returns\":\"x\"}]}",
         "planned_ms must be"},
        {"{\"name\":\"x\",\"steps\":[{\"name\":\"a\",\"io\":\"sql\",\"planned_ms\":1001}]}", "from 0 to 1000"},
        {"{\"name\":\"x\",\"steps\":[{\"name\":\"a\",\"io\":\"http\",\"planned_ms\":1}]}", "needs \"returns\""},
        {"{\"name\":\"x\",\"steps\":[{\"name\":\"a\",\"io\":\"http\",\"planned_ms\":1,\"calls\":\"/fridge\"}]}",
         "an http step calls"},
        {"{\"name\":\"x\",\"steps\":[{\"name\":\"a\",\"io\":\"http\",\"planned_ms\":1,\"calls\":\"/kettle\","
         "\"returns\":\"x\"}]}",
         "says its own"},
        {"{\"name\":\"x\",\"steps\":[{\"name\":\"a\",\"io\":\"http\",\"planned_ms\":1,\"returns\":\"a\\\"b\"}]}",
         "returns must be"},
        {"{\"name\":\"x\",\"steps\":[{\"name\":\"a\",\"io\":\"http\",\"planned_ms\":1,\"returns\":"
         "\"1234567890123456789012345678901234567890123456789\"}]}",
         "returns must be"},
        {"{\"name\":\"x\",\"steps\":[{\"name\":\"a\",\"io\":\"http\",\"planned_ms\":1,\"returns\":\"x\"},"
         "{\"name\":\"a\",\"io\":\"http\",\"planned_ms\":1,\"returns\":\"y\"}]}",
         "two steps are called a"},
        {"{\"name\":\"x\",\"steps\":[{\"name\":\"a\",\"io\":\"http\",\"planned_ms\":1,\"returns\":\"x\","
         "\"after\":[\"b\"]}]}",
         "unknown step 'b'"},
        {"{\"name\":\"x\",\"steps\":[{\"name\":\"a\",\"io\":\"http\",\"planned_ms\":1,\"returns\":\"x\","
         "\"after\":\"b\"}]}",
         "after must be an array"},
        {"{\"name\":\"x\",\"steps\":[{\"name\":\"a\",\"io\":\"http\",\"planned_ms\":1,\"returns\":\"x\","
         "\"after\":[\"a\"]}]}",
         "after itself"},
        {"{\"name\":\"x\",\"steps\":[{\"name\":\"a\",\"io\":\"http\",\"planned_ms\":1,\"returns\":\"x\",\"after\":["
         "\"c\"]},"
         "{\"name\":\"b\",\"io\":\"http\",\"planned_ms\":1,\"returns\":\"x\",\"after\":[\"a\"]},"
         "{\"name\":\"c\",\"io\":\"http\",\"planned_ms\":1,\"returns\":\"x\",\"after\":[\"b\"]},"
         "{\"name\":\"d\",\"io\":\"http\",\"planned_ms\":1,\"returns\":\"x\"}]}",
         "cycle: c after b after a after c"},
        {"{\"name\":\"x\",\"name\":\"y\",\"steps\":[]}", "not JSON"}, /* duplicate key */
        {"{\"name\":\"x\",\"lesson\":7,\"steps\":[]}", "lesson must be"},
    };
    for (size_t i = 0; i < NELEMS(cases); i++) {
        char err[200] = "";
        struct recipe *r = parse(cases[i].json, err, sizeof err);
        if (r || !strstr(err, cases[i].want))
            fprintf(stderr, "  case %zu: got '%s', want '%s'\n", i, r ? "(a recipe)" : err, cases[i].want);
        CU_ASSERT_PTR_NULL(r);
        CU_ASSERT(strstr(err, cases[i].want) != NULL);
        recipe_free(r);
    }
    char buf[4096], err[200] = "";
    steps_json(buf, sizeof buf, 16);
    struct recipe *r = parse(buf, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL(r);
    CU_ASSERT(r && r->nsteps == 16 && wf_all_steps(r) == 0xffffu);
    recipe_free(r);
    steps_json(buf, sizeof buf, 17);
    CU_ASSERT_PTR_NULL(parse(buf, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "1 to 16 steps"));
    /* Too big a body, whatever it holds. */
    char *big = malloc(RECIPE_JSON_MAX + 2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(big);
    memset(big, ' ', RECIPE_JSON_MAX + 1);
    big[RECIPE_JSON_MAX + 1] = '\0';
    CU_ASSERT_PTR_NULL(parse(big, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "at most"));
    free(big);
}

static void test_book(void)
{
    char err[200];
    struct recipe_book *b = recipe_book_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_PTR_EQUAL(recipe_book_find(b, "coffee"), &wf_coffee);
    CU_ASSERT_PTR_NOT_NULL(recipe_book_find(b, "gather"));
    CU_ASSERT_PTR_NULL(recipe_book_find(b, "breakfast"));
    struct recipe *r = parse(breakfast, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_EQUAL(recipe_book_stamp(b, "breakfast"), -1);
    CU_ASSERT_EQUAL(recipe_book_put(b, r, 42), 0);
    CU_ASSERT_PTR_EQUAL(recipe_book_find(b, "breakfast"), r);
    CU_ASSERT_EQUAL(recipe_book_stamp(b, "breakfast"), 42);
    CU_ASSERT_EQUAL(recipe_book_stamp(b, "coffee"), -1);
    const char *names[4];
    CU_ASSERT_EQUAL(recipe_book_names(b, names, 4), 1);
    CU_ASSERT_STRING_EQUAL(names[0], "breakfast");
    /* An order holds it; deleting it hides it but keeps it (ASan would
     * see a use after free below otherwise). */
    recipe_book_hold(b, r);
    CU_ASSERT_EQUAL(recipe_book_delete(b, "breakfast"), 1);
    CU_ASSERT_PTR_NULL(recipe_book_find(b, "breakfast"));
    CU_ASSERT_EQUAL(recipe_book_delete(b, "breakfast"), 0);
    CU_ASSERT_STRING_EQUAL(r->steps[0].name, "pan");
    recipe_book_release(b, r);       /* freed now */
    recipe_book_hold(b, &wf_coffee); /* the built-ins: no-ops */
    recipe_book_release(b, &wf_coffee);
    /* A full book forgets one no order holds. */
    for (int i = 0; i < RECIPE_BOOK_MAX + 3; i++) {
        char text[300];
        snprintf(text, sizeof text,
                 "{\"name\":\"r%d\",\"steps\":[{\"name\":\"a\",\"io\":\"http\",\"planned_ms\":1,\"returns\":\"x\"}]}",
                 i);
        struct recipe *ri = parse(text, err, sizeof err);
        CU_ASSERT_PTR_NOT_NULL_FATAL(ri);
        CU_ASSERT_EQUAL(recipe_book_put(b, ri, i), 0);
        CU_ASSERT_PTR_EQUAL(recipe_book_find(b, ri->name), ri);
    }
    recipe_book_free(b);
    recipe_book_free(NULL);
}

int main(void)
{
    static const struct harness_test tests[] = {
        {"a good recipe, sorted, and its JSON round trip", test_good},
        {"every bad recipe: a sentence, nothing built", test_bad},
        {"the book: find, put, delete while held, full", test_book},
        {NULL, NULL},
    };
    return harness_main("recipe", NULL, NULL, tests);
}
