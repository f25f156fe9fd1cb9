/* db: connection parameters, schema state and the order's statements
 * (see db.h). Owns a db_config's copies of its values and a statement's
 * JSON text. Blocking calls here are for worker threads and start-up only. */
#define _GNU_SOURCE /* POLLRDHUP */
#include "db.h"

#include "clock.h"
#include "log.h"
#include "order.h"
#include "report.h"
#include "watchdog.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <poll.h>
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

/* Sets key to value: replaces its value if it is there, else appends it. */
static int set_param(struct db_config *c, int *n, size_t *off, size_t cap, const char *key, const char *value)
{
    for (int i = 0; i < *n; i++) {
        if (!strcmp(c->keys[i], key)) {
            int last = *n;
            if (add_param(c, n, off, cap, key, value) != 0)
                return -1;
            c->values[i] = c->values[last]; /* the new copy, in the old place */
            c->keys[last] = c->values[last] = NULL;
            *n = last;
            return 0;
        }
    }
    return add_param(c, n, off, cap, key, value);
}

/* A host that is neither a socket directory nor a numeric address needs
 * DNS; do it now, once, so that PQconnectStartParams never has to. Returns
 * 1 with addr set, 0 when the host needs no resolving (addr empty), or -1. */
static int resolve_host(const char *host, char *addr, size_t len, char *err, size_t errlen)
{
    unsigned char buf[sizeof(struct in6_addr)];
    addr[0] = '\0';
    if (!*host || host[0] == '/' || host[0] == '@' || inet_pton(AF_INET, host, buf) == 1 ||
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

/* Resolves every host of a comma-separated list (libpq tries them in
 * turn) into a hostaddr list of the same length, an empty entry where a
 * host needs no resolving. Returns 1 with out set when any host was
 * resolved, 0 when none needed it, or -1 with err. */
static int resolve_hosts(const char *hosts, char *out, size_t len, char *err, size_t errlen)
{
    int resolved = 0;
    size_t used = 0;
    out[0] = '\0';
    for (const char *h = hosts;;) {
        size_t n = strcspn(h, ",");
        char one[256], addr[INET6_ADDRSTRLEN];
        if (n >= sizeof one) {
            snprintf(err, errlen, "database host name too long");
            return -1;
        }
        memcpy(one, h, n);
        one[n] = '\0';
        int rc = resolve_host(one, addr, sizeof addr, err, errlen);
        if (rc < 0)
            return -1;
        resolved |= rc;
        int w = snprintf(out + used, len - used, "%s%s", used || h != hosts ? "," : "", addr);
        if (w < 0 || (size_t)w >= len - used) {
            snprintf(err, errlen, "too many database hosts");
            return -1;
        }
        used += (size_t)w;
        if (!h[n])
            break;
        h += n + 1;
    }
    return resolved;
}

/* The statements of an order's life, prepared once per connection. */
static const struct {
    const char *name, *sql;
} prepared[] = {
    {"coffee_insert", "INSERT INTO orders (mode, scale, started_at, deadline_at, instance, traceparent)"
                      " VALUES ($1, $2, to_timestamp($3), now() + make_interval(secs => $4), $5, $6) RETURNING id"},
    {"coffee_brew", "SELECT brew_coffee($1, $2, $3)"},
    {"coffee_finish", "UPDATE orders SET status = $2, elapsed_ms = $3, queued_ms = $4, failed_step = $5,"
                      " error = $6, steps = $7::jsonb -> 'steps', recipe = $7::jsonb ->> 'recipe'"
                      " WHERE id = $1 AND clock_timestamp() < to_timestamp($8)"},
};
enum { PREP_INSERT, PREP_BREW, PREP_FINISH, PREP_COUNT };

struct db_config *db_config_new(const char *database_url, long statement_timeout_ms, char *err, size_t errlen)
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
    if (!find_param(c, "gssencmode") && !getenv("PGGSSENCMODE") && add_param(c, &n, &off, cap, "gssencmode", "disable"))
        goto too_long;
    const char *host = find_param(c, "host");
    if (!host)
        host = getenv("PGHOST");
    if (host && *host && !find_param(c, "hostaddr") && !getenv("PGHOSTADDR")) {
        char addrs[1024];
        int rc = resolve_hosts(host, addrs, sizeof addrs, err, errlen);
        if (rc < 0)
            goto fail;
        if (rc > 0 && add_param(c, &n, &off, cap, "hostaddr", addrs))
            goto too_long;
    }
    /* Blocking connects (workers) honour it; the pool runs its own. */
    if (!find_param(c, "connect_timeout") && add_param(c, &n, &off, cap, "connect_timeout", "5"))
        goto too_long;
    /* The session's bounds, after whatever options the URL gave. */
    const char *given = find_param(c, "options");
    if (!given && getenv("PGOPTIONS") && *getenv("PGOPTIONS"))
        given = getenv("PGOPTIONS");
    char options[600];
    snprintf(options, sizeof options, "%s%s-c statement_timeout=%ld -c client_connection_check_interval=%d",
             given ? given : "", given ? " " : "", statement_timeout_ms, DB_CHECK_INTERVAL_MS);
    if (set_param(c, &n, &off, cap, "options", options))
        goto too_long;
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

int db_setup_step(void *config, int i, const char **name, const char **sql)
{
    (void)config;
    if (i == 0) {
        *name = NULL;
        *sql = atomic_load(&schema_applied) ? NULL : db_schema_sql();
        return 0;
    }
    if (i > PREP_COUNT)
        return -1;
    *name = prepared[i - 1].name;
    *sql = prepared[i - 1].sql;
    return 0;
}

void db_setup_done(void *config, int ok, const char *err)
{
    (void)config, (void)err;
    if (ok)
        atomic_store(&schema_applied, 1);
}

/* ---- statements ------------------------------------------------------- */

static void stmt_init(struct db_stmt *st, const char *what, const char *sql, int nparams)
{
    st->what = what;
    st->name = NULL;
    st->sql = sql;
    st->nparams = nparams;
    st->json = NULL;
}

static void stmt_prepared(struct db_stmt *st, const char *what, int which, int nparams)
{
    stmt_init(st, what, prepared[which].sql, nparams);
    st->name = prepared[which].name;
}

/* Appends c to buf, keeping room for the final NUL. */
static int put(char *buf, size_t len, size_t *off, char c)
{
    if (*off + 1 >= len)
        return -1;
    buf[(*off)++] = c;
    return 0;
}

int db_ingredients_literal(const struct recipe *r, const struct step_def *step, const char *const results[], char *buf,
                           size_t len)
{
    size_t off = 0;
    int first = 1;
    if (put(buf, len, &off, '{'))
        return -1;
    for (int i = 0; i < r->nsteps; i++) {
        if (!(step->after & (1u << i)) || !results[i])
            continue;
        if (!first && put(buf, len, &off, ','))
            return -1;
        first = 0;
        /* Double-quote every element and escape " and \ inside it. */
        if (put(buf, len, &off, '"'))
            return -1;
        for (const char *p = results[i]; *p; p++) {
            if ((*p == '"' || *p == '\\') && put(buf, len, &off, '\\'))
                return -1;
            if (put(buf, len, &off, *p))
                return -1;
        }
        if (put(buf, len, &off, '"'))
            return -1;
    }
    if (put(buf, len, &off, '}'))
        return -1;
    buf[off] = '\0';
    return 0;
}

void db_stmt_insert_order(struct db_stmt *st, const struct order *o, double budget_ms)
{
    stmt_prepared(st, "insert order", PREP_INSERT, 6);
    snprintf(st->num[0], sizeof st->num[0], "%.17g", o->scale);
    snprintf(st->num[1], sizeof st->num[1], "%.6f", o->started_wall);
    snprintf(st->num[2], sizeof st->num[2], "%.3f", budget_ms / 1000.0);
    st->values[0] = wf_modes[o->mode].name;
    st->values[1] = st->num[0];
    st->values[2] = st->num[1];
    st->values[3] = st->num[2];
    st->values[4] = o->instance;
    st->values[5] = o->traceparent[0] ? o->traceparent : NULL;
}

int db_stmt_brew(struct db_stmt *st, const struct order *o, int step)
{
    const char *results[WF_MAX_STEPS];
    stmt_prepared(st, "brew", PREP_BREW, 3);
    order_results(o, results);
    if (db_ingredients_literal(o->recipe, &o->recipe->steps[step], results, st->array, sizeof st->array) != 0)
        return -1;
    snprintf(st->num[0], sizeof st->num[0], "%lld", (long long)o->id);
    snprintf(st->num[1], sizeof st->num[1], "%d", wf_step_ms(&o->recipe->steps[step], o->scale));
    st->values[0] = st->num[0];
    st->values[1] = st->num[1];
    st->values[2] = st->array;
    return 0;
}

long db_finish_margin_ms(long db_timeout_ms)
{
    long quarter = db_timeout_ms / 4;
    return quarter < DB_FINISH_MARGIN_MAX_MS ? quarter : DB_FINISH_MARGIN_MAX_MS;
}

int db_stmt_finish(struct db_stmt *st, struct order *o, long db_timeout_ms)
{
    stmt_prepared(st, "finish order", PREP_FINISH, 8);
    /* $7 is the whole answer; the database keeps its "steps". */
    const char *answer = report_order_text(o);
    st->json = answer ? strdup(answer) : NULL;
    if (!st->json)
        return -1;
    snprintf(st->num[0], sizeof st->num[0], "%lld", (long long)o->id);
    snprintf(st->num[1], sizeof st->num[1], "%.3f", report_ms(o->steps_end_ns - o->arrived_ns));
    snprintf(st->num[2], sizeof st->num[2], "%.3f", report_ms(o->queued_ns));
    st->values[0] = st->num[0];
    st->values[1] = order_status_name(o->status);
    st->values[2] = st->num[1];
    st->values[3] = st->num[2];
    st->values[4] = o->failed_step >= 0 ? o->recipe->steps[o->failed_step].name : NULL;
    st->values[5] = o->status == ORDER_FAILED ? o->errmsg : NULL;
    st->values[6] = st->json;
    /* The last instant, by the database's clock, at which the UPDATE may
     * still write the row: the caller waits db_timeout_ms from after this,
     * so when its wait ends the row can no longer change (the rule in
     * docs/reliability.md). Wall clock: the database's is the other. */
    double write_by = clock_wall_s() + (double)(db_timeout_ms - db_finish_margin_ms(db_timeout_ms)) / 1000.0;
    snprintf(st->num[3], sizeof st->num[3], "%.3f", write_by);
    st->values[7] = st->num[3];
    return 0;
}

int db_finish_applied(const PGresult *r)
{
    /* "UPDATE 0": past its deadline. (A result without a command tag,
     * as a unit test's fake, says nothing against it.) */
    return r && strcmp(PQcmdTuples((PGresult *)r), "0") != 0;
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

#define ABANDONED "abandoned: its server stopped before the order ended (killed or crashed)"

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
              "  'abandoned', count(*) FILTER (WHERE status = 'failed' AND error = '" ABANDONED "'),"
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

void db_stmt_ping(struct db_stmt *st)
{
    stmt_init(st, "ping", "SELECT 1", 0);
}

void db_stmt_sweep(struct db_stmt *st)
{
    stmt_init(st, "sweep",
              "UPDATE orders SET status = 'failed', error = '" ABANDONED "'"
              " WHERE status = 'running' AND deadline_at < now()",
              0);
}

void db_stmt_release(struct db_stmt *st)
{
    free(st->json);
    st->json = NULL;
}

/* The first column of the first row as text into out. 0 or -1 (no row). */
static int db_result_text(const PGresult *r, char *out, size_t len)
{
    if (!db_result_ok(r) || PQntuples(r) < 1 || PQnfields(r) < 1 || PQgetisnull(r, 0, 0))
        return -1;
    snprintf(out, len, "%s", PQgetvalue(r, 0, 0));
    return 0;
}

int db_brew_result(const PGresult *r, char *out, size_t len, const char **err)
{
    if (db_result_text(r, out, len) == 0)
        return 0;
    *err = "brew returned no row";
    return OERR_DB;
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

int db_sync_ok(const struct db_sync *d)
{
    return d->conn && PQstatus(d->conn) == CONNECTION_OK;
}

void db_sync_close(struct db_sync *d)
{
    PQfinish(d->conn);
    d->conn = NULL;
}

/* Runs st, or (st NULL) prepares sql as name or runs sql when name is
 * NULL, on d's connection within timeout_ms. */
static PGresult *sync_exec(struct db_sync *d, const struct db_stmt *st, const char *name, const char *sql,
                           long timeout_ms, int *fired)
{
    struct wd_call call;
    wd_begin(d->wd, &call, PQsocket(d->conn), timeout_ms);
    PGresult *r;
    if (!st)
        r = name ? PQprepare(d->conn, name, sql, 0, NULL) : PQexec(d->conn, sql);
    else if (st->name)
        r = PQexecPrepared(d->conn, st->name, st->nparams, st->values, NULL, NULL, 0);
    else
        r = PQexecParams(d->conn, st->sql, st->nparams, NULL, st->values, NULL, NULL, 0);
    *fired = wd_end(d->wd, &call);
    return r;
}

int db_sync_ensure(struct db_sync *d, char *err, size_t errlen)
{
    if (d->conn && db_conn_alive(d->conn, &d->ending))
        return 0;
    db_sync_close(d);
    /* Bounded by connect_timeout (db_config_new adds it). */
    d->conn = PQconnectdbParams(d->config->keys, d->config->values, 0);
    if (!d->conn) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (PQstatus(d->conn) != CONNECTION_OK) {
        snprintf(err, errlen, "database unavailable (%s): %s", d->config->describe, PQerrorMessage(d->conn));
        err[strcspn(err, "\n")] = '\0';
        db_sync_close(d);
        return -1;
    }
    db_conn_watch(d->conn, &d->ending);
    /* The setup, each step under what remains of the connect bound. */
    int64_t deadline = clock_mono_ns() + (int64_t)d->connect_timeout_ms * NS_PER_MS;
    const char *name, *sql;
    int ok = 1, fired = 0;
    PGresult *r = NULL;
    for (int i = 0; ok && db_setup_step((void *)d->config, i, &name, &sql) == 0; i++) {
        if (!sql)
            continue;
        long left = (long)((deadline - clock_mono_ns()) / NS_PER_MS);
        PQclear(r);
        r = sync_exec(d, NULL, name, sql, left > 0 ? left : 1, &fired);
        ok = db_result_ok(r);
    }
    db_setup_done((void *)d->config, ok, NULL);
    if (!ok)
        snprintf(err, errlen, "cannot set up the database connection: %s",
                 fired ? "no answer within the connect timeout"
                 : r   ? PQresultErrorMessage(r)
                       : PQerrorMessage(d->conn));
    err[strcspn(err, "\n")] = '\0';
    PQclear(r);
    if (!ok)
        db_sync_close(d);
    return ok ? 0 : -1;
}

PGresult *db_sync_run(struct db_sync *d, const struct db_stmt *st, long timeout_ms, int *kind, char *err, size_t errlen)
{
    if (!db_sync_ok(d)) {
        *kind = OERR_DB;
        snprintf(err, errlen, "not connected to the database");
        return NULL;
    }
    int fired;
    PGresult *r = sync_exec(d, st, NULL, NULL, timeout_ms, &fired);
    if (db_result_ok(r))
        return r;
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    if (fired) {
        *kind = OERR_TIMEOUT;
        snprintf(err, errlen, "the database did not answer within %ld ms", timeout_ms);
    } else {
        *kind = state && !strcmp(state, "57014") ? OERR_TIMEOUT : OERR_DB; /* 57014: query_canceled */
        snprintf(err, errlen, "%s", r ? PQresultErrorMessage(r) : PQerrorMessage(d->conn));
        err[strcspn(err, "\n")] = '\0';
    }
    PQclear(r);
    if (fired || PQstatus(d->conn) != CONNECTION_OK)
        db_sync_close(d); /* shut down, or lost: the next ensure reconnects */
    return NULL;
}
