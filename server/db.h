/* db: what both executors say to PostgreSQL, defined once.
 *
 * Connection parameters (resolved once at start so that no connect ever
 * runs DNS on the loop thread), the schema, and the statements of an
 * order's life: insert its row, brew, finish the row, read it back. Only
 * parameterised statements; no SQL text is built from input. */
#ifndef COFFEE_DB_H
#define COFFEE_DB_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

struct order;

/* Connection parameters, immutable once made. */
struct db_config {
    const char *keys[40];
    const char *values[40];
    char *storage; /* owned copies of every value */
    char describe[160]; /* "host=... port=... dbname=..." for messages */
};

/* Returns a new config from database_url (URI or key=value; NULL or "" =
 * libpq's PG* variables), or NULL with err. A host name is resolved here,
 * once, into hostaddr. */
struct db_config *db_config_new(const char *database_url, char *err, size_t errlen);
void db_config_free(struct db_config *c);
/* Connects, blocking (for worker threads and tools, never the loop).
 * Returns a connection in CONNECTION_OK state, or NULL with err. */
PGconn *db_connect_blocking(const struct db_config *c, char *err, size_t errlen);

/* The schema (sql/schema.sql, compiled in). */
const char *db_schema_sql(void);
/* Whether this process applied the schema already (thread-safe). */
int db_schema_applied(void);
void db_schema_mark_applied(void);
/* Applies the schema on c, blocking, unless already applied. 0 or -1. */
int db_schema_apply_blocking(PGconn *c, char *err, size_t errlen);

/* One statement with its parameters, built in place. */
struct db_stmt {
    const char *what; /* for messages: "insert order", "brew", ... */
    const char *sql;
    int nparams;
    const char *values[8];
    char num[4][40];
    char array[256];
    char *json; /* owned */
};

/* INSERT the order's row (status running); returns its id. */
void db_stmt_insert_order(struct db_stmt *st, const struct order *o);
/* SELECT brew_coffee(id, ms, ingredients) for step. 0, or -1 if the
 * ingredients do not fit. */
int db_stmt_brew(struct db_stmt *st, const struct order *o, int step);
/* UPDATE the row with the outcome and the timeline. 0, or -1 out of memory. */
int db_stmt_finish(struct db_stmt *st, const struct order *o);
/* SELECT the stored order as JSON text. */
void db_stmt_get_order(struct db_stmt *st, int64_t id);
/* SELECT per-mode statistics of ended orders as JSON text: count, failed,
 * and the mean, p50, p95 and p99 of elapsed_ms of done orders (computed
 * by PostgreSQL), and per instance (replica) count and failed ("instances";
 * "" for rows that name none), of orders started at or after since (NULL =
 * all); since is borrowed. */
void db_stmt_stats(struct db_stmt *st, const char *since);
/* SELECT 1: a readiness probe. */
void db_stmt_ping(struct db_stmt *st);
/* Frees what st owns; st may be reused after. */
void db_stmt_release(struct db_stmt *st);

/* Runs st on c, blocking. Returns the result (PQclear it), never NULL. */
PGresult *db_exec_blocking(PGconn *c, const struct db_stmt *st);

/* A blocking connection and the statement_timeout set on it: a worker
 * thread's, or the mixed mode's deliberate one on the loop thread. Zero it,
 * set config, and db_sync_close() it at the end. */
struct db_sync {
    const struct db_config *config; /* borrowed */
    PGconn *conn;
    long stmt_timeout_ms; /* as set on conn; 0 = not known */
};
/* Connects (and applies the schema once per process) unless connected.
 * Blocks. 0, or -1 with err. */
int db_sync_ensure(struct db_sync *d, char *err, size_t errlen);
/* Runs st, blocking, bounded by timeout_ms (0 = keep the bound last set).
 * Returns the result (PQclear it), or NULL with err and *kind set to
 * OERR_TIMEOUT (the statement ran out of time) or OERR_DB. */
PGresult *db_sync_run(struct db_sync *d, const struct db_stmt *st, long timeout_ms, int *kind, char *err,
                      size_t errlen);
/* Whether the connection is open and usable. */
int db_sync_ok(const struct db_sync *d);
/* Closes the connection; d may be ensured again. */
void db_sync_close(struct db_sync *d);
/* Whether r is a successful result. */
int db_result_ok(const PGresult *r);
/* The first column of the first row as an id (insert). 0 or -1. */
int db_result_id(const PGresult *r, int64_t *id);
/* The first column of the first row as text into out. 0 or -1 (no row). */
int db_result_text(const PGresult *r, char *out, size_t len);

#endif
