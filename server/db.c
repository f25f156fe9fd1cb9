/* db: connection parameters, schema state and the order's statements
 * (see db.h). Owns a db_config's copies of its values and a statement's
 * JSON text. Blocking calls here are for worker threads and start-up only. */
#include "db.h"

#include "order.h"
#include "report.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define MAX_PARAMS 39

static atomic_int schema_applied;

/* Appends key=value (value copied into storage at *off). */
static int add_param(struct db_config *c, int *n, size_t *off, size_t cap, const char *key, const char *value)
{
    size_t len = strlen(value) + 1;
    if (*n >= MAX_PARAMS || *off + len > cap)
        return -1;
    memcpy(c->storage + *off, value, len);
    c->keys[*n] = key;
    c->values[*n] = c->storage + *off;
    *off += len;
    (*n)++;
    return 0;
}

static const char *find_param(const struct db_config *c, const char *key)
{
    for (int i = 0; c->keys[i]; i++)
        if (!strcmp(c->keys[i], key))
            return c->values[i];
    return NULL;
}

/* A host that is neither a socket directory nor a numeric address needs
 * DNS; do it now, once, so that PQconnectStartParams never has to. */
static int resolve_host(const char *host, char *addr, size_t len, char *err, size_t errlen)
{
    unsigned char buf[sizeof(struct in6_addr)];
    if (host[0] == '/' || host[0] == '@' || strchr(host, ',') || inet_pton(AF_INET, host, buf) == 1 ||
        inet_pton(AF_INET6, host, buf) == 1)
        return 0;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    int rc = getaddrinfo(host, NULL, &hints, &ai);
    if (rc != 0 || !ai) {
        snprintf(err, errlen, "cannot resolve database host '%s': %s", host, gai_strerror(rc));
        return -1;
    }
    void *sa = ai->ai_family == AF_INET6 ? (void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr
                                         : (void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr;
    inet_ntop(ai->ai_family, sa, addr, (socklen_t)len);
    freeaddrinfo(ai);
    return 1;
}

struct db_config *db_config_new(const char *database_url, char *err, size_t errlen)
{
    const size_t cap = 8192;
    struct db_config *c = calloc(1, sizeof *c);
    if (!c || !(c->storage = malloc(cap))) {
        free(c);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(database_url ? database_url : "", &perr);
    if (!opts) {
        snprintf(err, errlen, "bad DATABASE_URL: %s", perr ? perr : "out of memory");
        PQfreemem(perr);
        goto fail;
    }
    int n = 0;
    size_t off = 0;
    for (PQconninfoOption *o = opts; o->keyword; o++)
        if (o->val && *o->val && add_param(c, &n, &off, cap, o->keyword, o->val) != 0)
            goto too_long;
    PQconninfoFree(opts);
    opts = NULL;
    if (!find_param(c, "application_name") && add_param(c, &n, &off, cap, "application_name", "coffee-server"))
        goto too_long;
    /* GSSAPI negotiation can stall a connect; this demo never uses it. */
    if (!find_param(c, "gssencmode") && !getenv("PGGSSENCMODE") &&
        add_param(c, &n, &off, cap, "gssencmode", "disable"))
        goto too_long;
    const char *host = find_param(c, "host");
    if (!host)
        host = getenv("PGHOST");
    if (host && *host && !find_param(c, "hostaddr") && !getenv("PGHOSTADDR")) {
        char addr[INET6_ADDRSTRLEN];
        int rc = resolve_host(host, addr, sizeof addr, err, errlen);
        if (rc < 0)
            goto fail;
        if (rc > 0 && add_param(c, &n, &off, cap, "hostaddr", addr))
            goto too_long;
    }
    const char *port = find_param(c, "port");
    const char *dbname = find_param(c, "dbname");
    snprintf(c->describe, sizeof c->describe, "host=%s port=%s dbname=%s", host && *host ? host : "(default)",
             port ? port : (getenv("PGPORT") ? getenv("PGPORT") : "(default)"),
             dbname ? dbname : (getenv("PGDATABASE") ? getenv("PGDATABASE") : "(default)"));
    c->keys[n] = c->values[n] = NULL;
    return c;

too_long:
    snprintf(err, errlen, "DATABASE_URL has too many or too long parameters");
fail:
    PQconninfoFree(opts);
    db_config_free(c);
    return NULL;
}

void db_config_free(struct db_config *c)
{
    if (!c)
        return;
    free(c->storage);
    free(c);
}

PGconn *db_connect_blocking(const struct db_config *c, char *err, size_t errlen)
{
    /* Same parameters, plus a bound on how long a worker may wait. */
    const char *keys[42], *values[42];
    int n = 0;
    for (; c->keys[n]; n++) {
        keys[n] = c->keys[n];
        values[n] = c->values[n];
    }
    if (!find_param(c, "connect_timeout")) {
        keys[n] = "connect_timeout";
        values[n++] = "5";
    }
    keys[n] = values[n] = NULL;
    PGconn *conn = PQconnectdbParams(keys, values, 0);
    if (!conn) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        snprintf(err, errlen, "cannot connect to the database (%s): %s", c->describe, PQerrorMessage(conn));
        PQfinish(conn);
        return NULL;
    }
    return conn;
}

int db_schema_applied(void) { return atomic_load(&schema_applied); }

void db_schema_mark_applied(void) { atomic_store(&schema_applied, 1); }

int db_schema_apply_blocking(PGconn *c, char *err, size_t errlen)
{
    if (db_schema_applied())
        return 0;
    PGresult *r = PQexec(c, db_schema_sql());
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok)
        snprintf(err, errlen, "cannot apply the schema: %s", PQerrorMessage(c));
    PQclear(r);
    if (ok)
        db_schema_mark_applied();
    return ok ? 0 : -1;
}

/* ---- statements ------------------------------------------------------- */

static void stmt_init(struct db_stmt *st, const char *what, const char *sql, int nparams)
{
    st->what = what;
    st->sql = sql;
    st->nparams = nparams;
    st->json = NULL;
}

void db_stmt_insert_order(struct db_stmt *st, const struct order *o)
{
    stmt_init(st, "insert order",
              "INSERT INTO orders (mode, scale, started_at, instance, traceparent)"
              " VALUES ($1, $2, to_timestamp($3), $4, $5) RETURNING id",
              5);
    snprintf(st->num[0], sizeof st->num[0], "%.17g", o->scale);
    snprintf(st->num[1], sizeof st->num[1], "%.6f", o->started_wall);
    st->values[0] = wf_modes[o->mode].name;
    st->values[1] = st->num[0];
    st->values[2] = st->num[1];
    st->values[3] = o->instance;
    st->values[4] = o->traceparent[0] ? o->traceparent : NULL;
}

int db_stmt_brew(struct db_stmt *st, const struct order *o, int step)
{
    const char *results[WF_MAX_STEPS];
    stmt_init(st, "brew", "SELECT brew_coffee($1, $2, $3)", 3);
    order_results(o, results);
    if (wf_ingredients_literal(&wf_steps[step], results, st->array, sizeof st->array) != 0)
        return -1;
    snprintf(st->num[0], sizeof st->num[0], "%lld", (long long)o->id);
    snprintf(st->num[1], sizeof st->num[1], "%d", wf_step_ms(&wf_steps[step], o->scale));
    st->values[0] = st->num[0];
    st->values[1] = st->num[1];
    st->values[2] = st->array;
    return 0;
}

int db_stmt_finish(struct db_stmt *st, const struct order *o)
{
    stmt_init(st, "finish order",
              "UPDATE orders SET status = $2, elapsed_ms = $3, queued_ms = $4, failed_step = $5, error = $6,"
              " steps = $7::jsonb WHERE id = $1",
              7);
    json_t *steps = report_steps(o);
    st->json = report_dumps(steps);
    json_decref(steps);
    if (!st->json)
        return -1;
    snprintf(st->num[0], sizeof st->num[0], "%lld", (long long)o->id);
    snprintf(st->num[1], sizeof st->num[1], "%.3f", report_ms(o->steps_end_ns - o->arrived_ns));
    snprintf(st->num[2], sizeof st->num[2], "%.3f", report_ms(o->queued_ns));
    st->values[0] = st->num[0];
    st->values[1] = order_status_name(o->status);
    st->values[2] = st->num[1];
    st->values[3] = st->num[2];
    st->values[4] = o->failed_step >= 0 ? wf_steps[o->failed_step].name : NULL;
    st->values[5] = o->status == ORDER_FAILED ? o->errmsg : NULL;
    st->values[6] = st->json;
    return 0;
}

void db_stmt_get_order(struct db_stmt *st, int64_t id)
{
    stmt_init(st, "get order",
              "SELECT json_build_object('order_id', id, 'mode', mode, 'scale', scale, 'started_at', started_at,"
              " 'status', status, 'elapsed_ms', elapsed_ms, 'queued_ms', queued_ms, 'failed_step', failed_step,"
              " 'error', error, 'instance', instance, 'traceparent', traceparent,"
              " 'steps', steps)::text FROM orders WHERE id = $1",
              1);
    snprintf(st->num[0], sizeof st->num[0], "%lld", (long long)id);
    st->values[0] = st->num[0];
}

void db_stmt_stats(struct db_stmt *st, const char *since)
{
    stmt_init(st, "stats",
              "SELECT json_build_object('since', $1::timestamptz, 'modes', coalesce(json_object_agg(mode, s"
              " ORDER BY mode), '{}'), 'instances', (SELECT coalesce(json_object_agg(coalesce(instance, ''),"
              " json_build_object('count', done, 'failed', failed) ORDER BY instance), '{}') FROM ("
              "  SELECT instance, count(*) FILTER (WHERE status = 'done') AS done,"
              "   count(*) FILTER (WHERE status = 'failed') AS failed FROM orders"
              "  WHERE status <> 'running' AND ($1::timestamptz IS NULL OR started_at >= $1::timestamptz)"
              "  GROUP BY instance) AS per_instance))::text FROM ("
              " SELECT mode, json_build_object("
              "  'count', count(*) FILTER (WHERE status = 'done'),"
              "  'failed', count(*) FILTER (WHERE status = 'failed'),"
              "  'mean_ms', round((avg(elapsed_ms) FILTER (WHERE status = 'done'))::numeric, 3),"
              "  'p50_ms', round((percentile_cont(0.50) WITHIN GROUP (ORDER BY elapsed_ms)"
              "   FILTER (WHERE status = 'done'))::numeric, 3),"
              "  'p95_ms', round((percentile_cont(0.95) WITHIN GROUP (ORDER BY elapsed_ms)"
              "   FILTER (WHERE status = 'done'))::numeric, 3),"
              "  'p99_ms', round((percentile_cont(0.99) WITHIN GROUP (ORDER BY elapsed_ms)"
              "   FILTER (WHERE status = 'done'))::numeric, 3)) AS s"
              " FROM orders WHERE status <> 'running' AND ($1::timestamptz IS NULL OR started_at >= $1::timestamptz)"
              " GROUP BY mode) AS per_mode",
              1);
    st->values[0] = since;
}

void db_stmt_ping(struct db_stmt *st) { stmt_init(st, "ping", "SELECT 1", 0); }

void db_stmt_release(struct db_stmt *st)
{
    free(st->json);
    st->json = NULL;
}

PGresult *db_exec_blocking(PGconn *c, const struct db_stmt *st)
{
    return PQexecParams(c, st->sql, st->nparams, NULL, st->values, NULL, NULL, 0);
}

int db_result_ok(const PGresult *r)
{
    ExecStatusType s = PQresultStatus(r);
    return r && (s == PGRES_TUPLES_OK || s == PGRES_COMMAND_OK);
}

int db_result_text(const PGresult *r, char *out, size_t len)
{
    if (!db_result_ok(r) || PQntuples(r) < 1 || PQnfields(r) < 1 || PQgetisnull(r, 0, 0))
        return -1;
    snprintf(out, len, "%s", PQgetvalue(r, 0, 0));
    return 0;
}

int db_result_id(const PGresult *r, int64_t *id)
{
    char text[32];
    if (db_result_text(r, text, sizeof text) != 0)
        return -1;
    char *end;
    long long v = strtoll(text, &end, 10);
    if (*end || v <= 0)
        return -1;
    *id = v;
    return 0;
}

/* ---- blocking connections ---------------------------------------------- */

int db_sync_ok(const struct db_sync *d) { return d->conn && PQstatus(d->conn) == CONNECTION_OK; }

void db_sync_close(struct db_sync *d)
{
    PQfinish(d->conn);
    d->conn = NULL;
    d->stmt_timeout_ms = 0;
}

int db_sync_ensure(struct db_sync *d, char *err, size_t errlen)
{
    /* A connection the server closed meanwhile (restart, terminated
     * backend) still says CONNECTION_OK until it is read: read what is
     * there (libpq's socket is non-blocking, so this never waits) so that
     * it is replaced now, not found dead by the order's first statement. */
    if (d->conn && PQconsumeInput(d->conn) == 1 && db_sync_ok(d)) {
        PGresult *r;
        while ((r = PQgetResult(d->conn)) != NULL) /* e.g. the FATAL notice, already read */
            PQclear(r);
        if (db_sync_ok(d))
            return 0;
    }
    db_sync_close(d);
    d->conn = db_connect_blocking(d->config, err, errlen);
    if (!d->conn)
        return -1;
    if (db_schema_apply_blocking(d->conn, err, errlen) != 0) {
        db_sync_close(d);
        return -1;
    }
    return 0;
}

/* Runs st; the result, or NULL with kind and err. */
static PGresult *sync_exec(struct db_sync *d, const struct db_stmt *st, int *kind, char *err, size_t errlen)
{
    PGresult *r = db_exec_blocking(d->conn, st);
    if (db_result_ok(r))
        return r;
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    *kind = state && !strcmp(state, "57014") ? OERR_TIMEOUT : OERR_DB; /* 57014: query_canceled */
    snprintf(err, errlen, "%s", r ? PQresultErrorMessage(r) : PQerrorMessage(d->conn));
    err[strcspn(err, "\n")] = '\0';
    PQclear(r);
    return NULL;
}

PGresult *db_sync_run(struct db_sync *d, const struct db_stmt *st, long timeout_ms, int *kind, char *err,
                      size_t errlen)
{
    if (!db_sync_ok(d)) {
        *kind = OERR_DB;
        snprintf(err, errlen, "not connected to the database");
        return NULL;
    }
    /* Blocking libpq has no timeout of its own: the server enforces one,
     * sent only when the bound changes. */
    if (timeout_ms > 0 && timeout_ms != d->stmt_timeout_ms) {
        char text[32];
        snprintf(text, sizeof text, "%ld", timeout_ms);
        struct db_stmt set = {.what = "set statement_timeout",
                              .sql = "SELECT set_config('statement_timeout', $1, false)",
                              .nparams = 1,
                              .values = {text}};
        PGresult *r = sync_exec(d, &set, kind, err, errlen);
        if (!r)
            return NULL;
        PQclear(r);
        d->stmt_timeout_ms = timeout_ms;
    }
    return sync_exec(d, st, kind, err, errlen);
}
