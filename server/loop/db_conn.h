/* db_conn: what the loop layer knows of a PostgreSQL connection, shared by
 * the pool (pgpool) and the blocking connections of the executors (db.h):
 * its parameters, a statement as sent on it, and whether it still works.
 * The names keep db.h's prefix: db.h builds these (db_config_new, the
 * db_stmt_* builders) and includes this header; the pool only reads them. */
#ifndef COFFEE_DB_CONN_H
#define COFFEE_DB_CONN_H

#include <libpq-fe.h>

/* Connection parameters, immutable once made (db_config_new). */
struct db_config {
    const char *keys[40];
    const char *values[40];
    char *storage;      /* owned copies of every value */
    char describe[160]; /* "host=... port=... dbname=..." for messages */
};

/* One statement with its parameters, built in place (db.h's db_stmt_*). */
struct db_stmt {
    const char *what; /* for messages: "insert order", "brew", ... */
    const char *name; /* the prepared statement's name (db_setup_sql), or NULL */
    const char *sql;
    int nparams;
    const char *values[8];
    char num[4][40];
    char array[256];
    char *json; /* owned */
};

/* Watches conn's notices: *ending is set when its backend says FATAL (or
 * PANIC) while nothing is in flight, which is how a backend that is ending
 * (a restart, pg_terminate_backend) says so before it closes. libpq takes
 * that message as a notice and says CONNECTION_OK until a later read sees
 * the close. Other notices are logged at debug. ending must outlive conn. */
void db_conn_watch(PGconn *conn, int *ending);
/* Whether the server is still at the other end of conn, watched with
 * ending and with nothing in flight: reads what arrived, then says no if
 * the backend said FATAL or the socket shows the close. Never waits (poll
 * with a zero timeout): safe on the loop. */
int db_conn_alive(PGconn *conn, const int *ending);
/* Whether r is a successful result. */
int db_result_ok(const PGresult *r);

#endif
