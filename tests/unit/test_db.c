/* Unit tests for what needs no database: db_config_new's connection
 * parameters (every host resolved up front, the session's bounds in
 * options) and text_copy_utf8 (what any echoed bytes become in JSON). */
#include "clock.h"
#include "db.h"
#include "harness.h"
#include "order.h"
#include "text.h"

#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *param(const struct db_config *c, const char *key)
{
    for (int i = 0; c->keys[i]; i++)
        if (!strcmp(c->keys[i], key))
            return c->values[i];
    return NULL;
}

static struct db_config *config(const char *url)
{
    char err[300];
    struct db_config *c = db_config_new(url, 15000, err, sizeof err);
    if (!c)
        fprintf(stderr, "  %s\n", err);
    return c;
}

/* A host list is resolved entry by entry: no connect ever runs DNS on the
 * loop, whichever host libpq tries. */
static void test_host_list_resolved(void)
{
    struct db_config *c = config("host=localhost,127.0.0.1,/tmp port=5432,5433,5434 dbname=x");
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    const char *addrs = param(c, "hostaddr");
    CU_ASSERT_PTR_NOT_NULL_FATAL(addrs);
    /* localhost resolved; the numeric one and the socket directory left
     * empty (libpq then uses host as it is). */
    const char *comma1 = strchr(addrs, ','), *comma2 = comma1 ? strchr(comma1 + 1, ',') : NULL;
    CU_ASSERT_PTR_NOT_NULL(comma2);
    CU_ASSERT(comma1 && comma1 > addrs); /* localhost: an address */
    CU_ASSERT(comma2 && comma2 == comma1 + 1 && comma2[1] == '\0');
    db_config_free(c);

    c = config("host=127.0.0.1 dbname=x");
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_PTR_NULL(param(c, "hostaddr")); /* nothing to resolve */
    db_config_free(c);

    char err[300];
    CU_ASSERT_PTR_NULL(db_config_new("host=localhost,no-such-host.invalid", 15000, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "no-such-host.invalid"));
}

/* Every session gets statement_timeout and client_connection_check_interval,
 * after options the URL gave; and a connect bound for blocking connects. */
static void test_session_bounds(void)
{
    struct db_config *c = config("postgresql://u@127.0.0.1/x?options=-c%20work_mem%3D8MB");
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    const char *o = param(c, "options");
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_PTR_NOT_NULL(strstr(o, "-c work_mem=8MB"));
    CU_ASSERT_PTR_NOT_NULL(strstr(o, "-c statement_timeout=15000"));
    CU_ASSERT_PTR_NOT_NULL(strstr(o, "-c client_connection_check_interval="));
    CU_ASSERT_PTR_NOT_NULL(param(c, "connect_timeout"));
    int n = 0;
    for (int i = 0; c->keys[i]; i++)
        n += !strcmp(c->keys[i], "options");
    CU_ASSERT_EQUAL(n, 1);
    db_config_free(c);
}

/* The setup: the schema first (until applied), then one prepared statement
 * a step; each statement is its own text. */
static void test_setup_steps(void)
{
    const char *name, *sql;
    CU_ASSERT_EQUAL(db_setup_step(NULL, 0, &name, &sql), 0);
    CU_ASSERT_PTR_NULL(name);
    CU_ASSERT_PTR_NOT_NULL(sql && strstr(sql, "CREATE TABLE IF NOT EXISTS orders"));
    int prepared = 0;
    for (int i = 1; db_setup_step(NULL, i, &name, &sql) == 0; i++) {
        CU_ASSERT_PTR_NOT_NULL(name);
        CU_ASSERT_PTR_NULL(strchr(sql, ';'));
        prepared++;
    }
    CU_ASSERT_EQUAL(prepared, 3);
    db_setup_done(NULL, 1, NULL);
    CU_ASSERT_EQUAL(db_setup_step(NULL, 0, &name, &sql), 0);
    CU_ASSERT_PTR_NULL(sql); /* applied: skipped from now on */
}

/* The final UPDATE carries its deadline: now + the timeout less the
 * margin (a quarter, at most 1 s), and a result that updated no row is
 * not applied. */
static void test_finish_deadline(void)
{
    CU_ASSERT_EQUAL(db_finish_margin_ms(5000), 1000);
    CU_ASSERT_EQUAL(db_finish_margin_ms(1000), 250);
    CU_ASSERT_EQUAL(db_finish_margin_ms(1), 0);
    struct order *o = order_new(1, 0.0, NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    struct db_stmt st;
    double before = clock_wall_s();
    CU_ASSERT_EQUAL_FATAL(db_stmt_finish(&st, o, 2000), 0);
    double after = clock_wall_s();
    CU_ASSERT_EQUAL(st.nparams, 8);
    double write_by = strtod(st.values[7], NULL);
    CU_ASSERT(write_by >= before + 1.5 - 0.001 && write_by <= after + 1.5 + 0.001);
    CU_ASSERT_PTR_NOT_NULL(strstr(st.sql ? st.sql : "", "clock_timestamp() < to_timestamp($8)"));
    db_stmt_release(&st);
    order_free(o);
    PGresult *r = PQmakeEmptyPGresult(NULL, PGRES_COMMAND_OK);
    CU_ASSERT(db_finish_applied(r)); /* no command tag: nothing says it was not */
    PQclear(r);
    CU_ASSERT(!db_finish_applied(NULL));
}

static void test_utf8_copy(void)
{
    char out[32];
    CU_ASSERT_EQUAL(text_copy_utf8(out, sizeof out, "caf\xc3\xa9"), 5);
    CU_ASSERT_STRING_EQUAL(out, "caf\xc3\xa9");
    text_copy_utf8(out, sizeof out,
                   "a\xff"
                   "b\xfe");
    CU_ASSERT_STRING_EQUAL(out, "a?b?");
    /* overlong, surrogate, beyond U+10FFFF, a lone continuation, cut */
    text_copy_utf8(out, sizeof out, "\xc0\xaf|\xed\xa0\x80|\xf4\x90\x80\x80|\x80|\xe2\x82");
    CU_ASSERT_STRING_EQUAL(out, "??|???|????|?|??");
    /* never cut inside a character: 4 bytes of room, a 2-byte one at 3 */
    char small[5];
    CU_ASSERT_EQUAL(text_copy_utf8(small, sizeof small, "abc\xc3\xa9"), 3);
    CU_ASSERT_STRING_EQUAL(small, "abc");
    char one[1];
    CU_ASSERT_EQUAL(text_copy_utf8(one, sizeof one, "x"), 0);
    CU_ASSERT_STRING_EQUAL(one, "");
    /* what jansson takes */
    json_t *j = json_string(out);
    CU_ASSERT_PTR_NOT_NULL(j);
    json_decref(j);
}

int main(void)
{
    static const struct harness_test tests[] = {
        {"every host of a list is resolved up front", test_host_list_resolved},
        {"sessions get their bounds after the URL's options", test_session_bounds},
        {"connection setup: schema, then one statement per step", test_setup_steps},
        {"text_copy_utf8: any bytes become valid UTF-8", test_utf8_copy},
        {"the final UPDATE carries its deadline", test_finish_deadline},
        {NULL, NULL},
    };
    return harness_main("db", NULL, NULL, tests);
}
