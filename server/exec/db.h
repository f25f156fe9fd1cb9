/* db: what both executors say to PostgreSQL, defined once.
 *
 * Connection parameters (resolved once at start so that no connect ever
 * runs DNS on the loop thread), the schema, and the statements of an
 * order's life: insert its row, brew, finish the row, read it back. Only
 * parameterised statements; no SQL text is built from input. */
#ifndef COFFEE_DB_H
#define COFFEE_DB_H

#include "db_conn.h" /* struct db_config, struct db_stmt, db_conn_alive, db_result_ok */

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

struct order;

/* Returns a new config from database_url (URI or key=value; NULL or "" =
 * libpq's PG* variables), or NULL with err. Host names (one or a list) are
 * resolved here, once, into hostaddr, so that no connect runs DNS on the
 * loop. Every session the config opens gets statement_timeout =
 * statement_timeout_ms (the longest statement the server ever waits for;
 * the database then ends whatever outlives it) and
 * client_connection_check_interval (so a backend whose client closed the
 * connection, an abandoned brew, stops within DB_CHECK_INTERVAL_MS instead
 * of running on: PostgreSQL 14 or newer). */
#define DB_CHECK_INTERVAL_MS 500
struct db_config *db_config_new(const char *database_url, long statement_timeout_ms, char *err, size_t errlen);
void db_config_free(struct db_config *c);

/* What a new connection runs before it serves (both executors), step by
 * step: step 0 applies the schema (sql/schema.sql, compiled in) until one
 * connection of the process has, then each step prepares one statement of
 * an order's life. Step i (from 0) is either a text for the simple
 * protocol (*name NULL; *sql NULL when there is nothing to do) or a
 * statement to prepare as *name. Returns 0 with the step, or -1 past the
 * last. For pgpool_setup: arg is the config (unused). */
int db_setup_step(void *config, int i, const char **name, const char **sql);
/* Records a connection's setup outcome (the schema counts as applied once
 * one succeeded). */
void db_setup_done(void *config, int ok, const char *err);
/* The schema alone (sql/schema.sql). */
const char *db_schema_sql(void);

/* Writes the ingredients of step (the results of the steps it comes after,
 * in table order) as a PostgreSQL text[] literal. results[i] is step i's
 * result or NULL when it has none. Returns 0 or -1 if it does not fit. */
struct recipe;
struct step_def;
int db_ingredients_literal(const struct recipe *r, const struct step_def *step, const char *const results[], char *buf,
                           size_t len);
/* INSERT the order's row (status running); returns its id. The row's
 * deadline is budget_ms from now: past it, a row still running belongs to
 * a server that died, and db_stmt_sweep fails it. */
void db_stmt_insert_order(struct db_stmt *st, const struct order *o, double budget_ms);
/* SELECT brew_coffee(id, ms, ingredients) for step. 0, or -1 if the
 * ingredients do not fit. */
int db_stmt_brew(struct db_stmt *st, const struct order *o, int step);
/* UPDATE the row with the outcome and the timeline. 0, or -1 out of memory.
 * The stored steps are taken from the order's answer (report_order_text,
 * built here once and kept in o for /make-coffee's answer); st owns a
 * copy, so the order may change (and its answer be rebuilt) meanwhile. */
int db_stmt_finish(struct db_stmt *st, struct order *o, long db_timeout_ms);
/* The finish writes the row only while the database's clock is before its
 * sending + db_timeout_ms - db_finish_margin_ms (a quarter of the timeout,
 * at most DB_FINISH_MARGIN_MAX_MS): a caller whose wait of db_timeout_ms
 * for it ended knows the row was not written, and will not be, even if the
 * statement still sits at a frozen backend. The margin covers the skew of
 * the server's and the database's clocks. */
#define DB_FINISH_MARGIN_MAX_MS 1000L
long db_finish_margin_ms(long db_timeout_ms);
/* Whether a finish that succeeded wrote the row (1), or ran past its
 * deadline and wrote nothing (0): then the order was not recorded. */
int db_finish_applied(const PGresult *r);
/* SELECT the stored order as JSON text. */
void db_stmt_get_order(struct db_stmt *st, int64_t id);
/* SELECT per-mode statistics of ended orders as JSON text: count, failed,
 * abandoned (failed by the sweep), and the mean, p50, p95 and p99 of
 * elapsed_ms of done orders (computed by PostgreSQL), and per instance
 * (replica) count and failed ("instances"; "" for rows that name none), of
 * orders started at or after since (NULL = all); since is borrowed. */
void db_stmt_stats(struct db_stmt *st, const char *since);
/* SELECT 1: a readiness probe. */
void db_stmt_ping(struct db_stmt *st);
/* UPDATE every row still running past its deadline to failed, "abandoned"
 * (its server died: killed, crashed). Correct with several servers on one
 * database: each row carries its own deadline. */
void db_stmt_sweep(struct db_stmt *st);
/* Frees what st owns; st may be reused after. */
void db_stmt_release(struct db_stmt *st);

/* A blocking connection: a worker thread's, or the mixed mode's deliberate
 * one on the loop thread. Zero it, set config and wd, and db_sync_close()
 * it at the end. Every call on it is bounded: the connect by
 * connect_timeout, each statement by the watchdog. */
struct watchdog;
struct db_sync {
    const struct db_config *config; /* borrowed */
    struct watchdog *wd;            /* borrowed */
    long connect_timeout_ms;        /* also bounds the setup */
    PGconn *conn;
    int ending; /* conn's backend said FATAL while idle (db_conn_watch) */
};
/* Connects and sets the session up unless connected to a server that is
 * still there (a connection the server closed meanwhile, after a restart
 * or pg_terminate_backend, is noticed here and replaced). Blocks. 0, or -1
 * with err. */
int db_sync_ensure(struct db_sync *d, char *err, size_t errlen);
/* Runs st, blocking, for at most timeout_ms. Returns the result (PQclear
 * it), or NULL with err and *kind set to OERR_TIMEOUT (no answer in time:
 * the connection was shut down and is closed) or OERR_DB. */
PGresult *db_sync_run(struct db_sync *d, const struct db_stmt *st, long timeout_ms, int *kind, char *err,
                      size_t errlen);
/* Whether the connection is open and usable. */
int db_sync_ok(const struct db_sync *d);
/* Closes the connection; d may be ensured again. */
void db_sync_close(struct db_sync *d);
/* The first column of the first row as an id (insert). 0 or -1. */
int db_result_id(const PGresult *r, int64_t *id);
/* Reads a brew's result into out: 0, or OERR_DB with *err set ("brew
 * returned no row"). */
int db_brew_result(const PGresult *r, char *out, size_t len, const char **err);

#endif
