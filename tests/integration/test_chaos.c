/* Integration: chaos under load (issue 13, section 6). While an open-loop
 * load runs at about 80% of capacity in both modes at once (async: the
 * connections brews may hold over the brew time; blocking: the workers over the
 * sequential time), each fault is injected in turn: the database
 * restarted, the server's backends terminated, the database frozen
 * (SIGSTOP of the whole cluster) then continued, only the backend of the
 * server's pipelined connection frozen (SIGSTOP of its pid, found in the
 * server's log) then continued, the kitchen killed and
 * restarted on its port, the server SIGKILLed and started again on its
 * port. For each fault and mode it records every order (200, failed fast
 * 502/503, timed out 504, transport errors, hung: no answer within the
 * bound), the longest answer during the fault, the time to the first
 * success and to full recovery once the dependency is back, and checks
 * that every 200 has its done row and no other answer has one. Then, in a short run of its own, that
 * SIGTERM ends a server with orders in flight within --drain-timeout-ms
 * plus 3 s while the fault holds. At the end, after the server's sweep of
 * abandoned rows, that no row of the run is left 'running'. Prints the
 * results as a Markdown table (also written to $CHAOS_TABLE).
 *
 * It stops, freezes and restarts the shared PostgreSQL: it runs alone
 * (RUN_SERIAL), through scripts/with-postgres (COFFEE_PG_STOP, _START,
 * _FREEZE, _THAW); without them the restart and freeze are skipped.
 *
 * Settings (environment; defaults are CI-sized, scripts/chaos passes
 * bigger ones): CHAOS_SCALE 0.25, CHAOS_DB_POOL 8, CHAOS_WORKERS 4,
 * CHAOS_LOAD 0.8 (fraction of capacity), CHAOS_RATE_ASYNC and
 * CHAOS_RATE_BLOCKING (orders/s; default CHAOS_LOAD x the computed
 * capacity), CHAOS_PRE_S 2 (load before a fault), CHAOS_POST_S 5 (load
 * after it), CHAOS_DOWN_S 1 (how long a restarted thing stays down),
 * CHAOS_FREEZE_S 5, CHAOS_PIPELINE_FREEZE_S 7 (longer than the server's
 * --db-timeout-ms, 5 s: rows' final UPDATEs time out while queued at the
 * frozen backend), CHAOS_HANG_S 30 (an order unanswered this long hangs),
 * CHAOS_DRAIN_MS 1000 (the SIGTERM runs' --drain-timeout-ms),
 * CHAOS_SWEEP_WAIT_S 90, CHAOS_GRACE_MS 0 (orders started this soon after
 * the dependency is back may fail), CHAOS_FAULTS (comma-separated, default
 * all: restart,terminate,freeze,pipeline,kitchen,server), CHAOS_LOG (the
 * file the servers' stderr goes to: default /tmp/test_chaos_PID.log, the
 * pipeline fault reads its pids there), CHAOS_SERVER_ARGS (extra
 * server flags, split on spaces; default "--sweep-interval-ms 1000" when
 * the server's --help lists that flag, else none), CHAOS_TABLE (a file for
 * the table), CHAOS_DUMP (a directory for every request, as CSV). */
#include "harness.h"
#include "loadgen.h"

#include "clock.h"

#include <CUnit/Basic.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum fault { F_RESTART, F_TERMINATE, F_FREEZE, F_PIPELINE, F_KITCHEN, F_SERVER, F_N };
static const char *const fault_names[F_N] = {"restart", "terminate", "freeze", "pipeline", "kitchen", "server"};
static const char *const fault_titles[F_N] = {"database restarted",        "backends terminated",
                                              "database frozen",           "pipelined backend alone frozen",
                                              "kitchen killed, restarted", "server SIGKILLed, restarted"};

enum { M_ASYNC, M_BLOCKING, M_N };
static const char *const mode_names[M_N] = {"async", "blocking"};

static struct {
    double scale, load, rate[M_N];
    int pool, workers, drain_ms;
    double pre_s, post_s, down_s, freeze_s, pipe_freeze_s, hang_s, sweep_wait_s, grace_ms;
    const char *faults, *table;
    char log[128];       /* the main server's stderr (CHAOS_LOG) */
    char log_other[140]; /* the other servers' (CHAOS_LOG.other) */
    char extra[512];     /* CHAOS_SERVER_ARGS, split in place */
    const char *server_args[32];
    char pool_s[16], workers_s[16], drain_s[16];
} cfg;

/* One fault in one mode. */
struct row {
    size_t orders, ok, fast, timeout, other, conn, hung, failed_after, missing_rows;
    size_t disagree_rows;                 /* answered other than 200, yet their row is done */
    double longest_ms, first_ms, full_ms; /* -1: none */
    long long running;                    /* after the sweep; -1 not checked */
    char first_failure[160];
};

struct phase {
    int ran;
    char note[200]; /* what happened, or why it was skipped */
    long long id_lo, id_hi;
    double fault_ms;
    int sigterm_status; /* exit status; -1 killed at the bound */
    double sigterm_ms;
    struct row row[M_N];
};

static struct stack st;
static PGconn *db;
static struct phase phases[F_N];
static long long first_id;

/* ---- small helpers ------------------------------------------------------- */

static double env_num(const char *name, double def)
{
    const char *v = getenv(name);
    char *end;
    double d = v && *v ? strtod(v, &end) : def;
    return v && *v && *end == '\0' ? d : def;
}

/* The failed checks, said again at the very end (a CI log may keep only
 * its tail). */
static char failures[8][440];
static int nfailures;

/* A check that says what went wrong, in words, in CUnit's report. */
static void check(int ok, unsigned line, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!ok) {
        printf("\n  FAILED: %s", msg);
        if (nfailures < (int)(sizeof failures / sizeof failures[0]))
            snprintf(failures[nfailures], sizeof failures[0], "line %u: %s", line, msg);
        nfailures++;
    }
    CU_assertImplementation(ok ? CU_TRUE : CU_FALSE, line, msg, __FILE__, "", CU_FALSE);
}
#define CHECK(ok, ...) check((ok), __LINE__, __VA_ARGS__)

/* Holds a fault (or the load before and after it) for ms: the length of
 * the experiment, not a wait for something to happen. */
static void hold_ms(double ms)
{
    int64_t end = clock_mono_ns() + (int64_t)(ms * NS_PER_MS);
    int64_t now;
    while ((now = clock_mono_ns()) < end) {
        int64_t left = end - now;
        struct timespec ts = {(time_t)(left / NS_PER_SEC), (long)(left % NS_PER_SEC)};
        nanosleep(&ts, NULL);
    }
}

static void nap_ms(long ms) /* the period of a bounded polling loop */
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A query on the checking connection, reconnecting once when the database
 * was restarted under it. The result is new (PQclear it). */
static PGresult *query(const char *sql, int n, const char *const *params)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!db || PQstatus(db) != CONNECTION_OK) {
            PQfinish(db);
            db = db_open();
        }
        if (!db)
            return NULL;
        PGresult *r = PQexecParams(db, sql, n, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(r) == PGRES_TUPLES_OK)
            return r;
        fprintf(stderr, "test_chaos: query failed: %s", PQerrorMessage(db));
        PQclear(r);
        PQfinish(db);
        db = NULL;
    }
    return NULL;
}

/* The first value of a one-number query, or -1. */
static long long query_ll(const char *sql, int n, const char *const *params)
{
    PGresult *r = query(sql, n, params);
    long long v = r && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0) ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : -1;
    PQclear(r);
    return v;
}

static long long max_id(void)
{
    return query_ll("SELECT coalesce(max(id), 0) FROM orders", 0, NULL);
}

static int run_cmd(const char *env)
{
    const char *cmd = getenv(env);
    int rc = cmd ? system(cmd) : -1;
    CHECK(rc == 0, "%s (%s) failed: %d", env, cmd ? cmd : "unset", rc);
    return rc;
}

/* Orders in flight on server (async and blocking), from /metrics; -1 if it
 * does not answer. */
static int inflight(const struct child *server)
{
    double a = http_metric(server, "coffee_orders_in_flight{mode=\"async\"}");
    double b = http_metric(server, "coffee_orders_in_flight{mode=\"blocking\"}");
    return isnan(a) || isnan(b) ? -1 : (int)(a + b);
}

/* Polls until /readyz of server answers 200, up to ms. 1 if it did. */
static int wait_ready(const struct child *server, double ms)
{
    char url[128];
    snprintf(url, sizeof url, "%s/readyz", server->base_url);
    int64_t t0 = clock_mono_ns();
    do {
        long status;
        json_t *j = http_get_json(url, &status);
        json_decref(j);
        if (status == 200)
            return 1;
        nap_ms(50);
    } while (ns_to_ms(clock_mono_ns() - t0) < ms);
    return 0;
}

/* ---- the stack ------------------------------------------------------------ */

/* Server flags of every server here: the pool, the workers, then
 * CHAOS_SERVER_ARGS (or the sweep interval when the server has it). */
static void server_args_init(void)
{
    const char *extra = getenv("CHAOS_SERVER_ARGS");
    if (!extra) {
        char cmd[600];
        const char *dir = getenv("COFFEE_BIN_DIR");
        snprintf(cmd, sizeof cmd, "%s/coffee-server --help", dir ? dir : ".");
        FILE *f = popen(cmd, "r");
        char line[256];
        int has = 0;
        while (f && fgets(line, sizeof line, f))
            has |= strstr(line, "--sweep-interval-ms") != NULL;
        if (f)
            pclose(f);
        extra = has ? "--sweep-interval-ms 1000" : "";
        if (!has)
            printf("\n  the server has no --sweep-interval-ms yet: rows are swept only if it sweeps by default");
    }
    snprintf(cfg.extra, sizeof cfg.extra, "%s", extra);
    int n = 0;
    snprintf(cfg.pool_s, sizeof cfg.pool_s, "%d", cfg.pool);
    snprintf(cfg.workers_s, sizeof cfg.workers_s, "%d", cfg.workers);
    snprintf(cfg.drain_s, sizeof cfg.drain_s, "%d", cfg.drain_ms);
    cfg.server_args[n++] = "--db-pool";
    cfg.server_args[n++] = cfg.pool_s;
    cfg.server_args[n++] = "--workers";
    cfg.server_args[n++] = cfg.workers_s;
    /* The pipeline fault freezes the pipelined connection's backend: the
     * server needs one (--db-pipelines is 0 by default, docs/bench.md). */
    cfg.server_args[n++] = "--db-pipelines";
    cfg.server_args[n++] = "1";
    for (char *p = cfg.extra; *p && n < 24;) { /* split on spaces, in place */
        while (*p == ' ')
            *p++ = '\0';
        if (!*p)
            break;
        cfg.server_args[n++] = p;
        while (*p && *p != ' ')
            p++;
    }
    cfg.server_args[n] = NULL;
}

/* Starts a server wired to the stack's kitchen with the common flags,
 * then more (NULL-terminated, may be NULL). 0 or -1. */
static int chaos_server_start(struct child *c, const char *const more[])
{
    const char *args[40];
    int n = 0;
    args[n++] = "--kitchen-url";
    args[n++] = st.kitchen.base_url;
    for (int i = 0; cfg.server_args[i]; i++)
        args[n++] = cfg.server_args[i];
    for (int i = 0; more && more[i] && n < 28; i++)
        args[n++] = more[i];
    args[n] = NULL;
    return child_start_log(c, "coffee-server", args, c == &st.server ? cfg.log : cfg.log_other);
}

/* The pid of the backend of server's pipelined connection: the last one
 * its log says (a server logs "pipelined, backend pid N" when that
 * connection opens; the other servers' log holds the newest one's last),
 * polled up to 5 s; -1 if none. */
static int pipelined_backend(const struct child *server)
{
    const char *path = server == &st.server ? cfg.log : cfg.log_other;
    int64_t t0 = clock_mono_ns();
    int pid = -1;
    while (pid < 0 && ns_to_ms(clock_mono_ns() - t0) < 5000) {
        FILE *f = fopen(path, "r");
        char line[1024];
        const char *key = "pipelined, backend pid ";
        while (f && fgets(line, sizeof line, f)) {
            const char *p = strstr(line, key);
            if (p)
                pid = (int)strtol(p + strlen(key), NULL, 10);
        }
        if (f)
            fclose(f);
        if (pid < 0)
            nap_ms(50);
    }
    return pid;
}

/* SIGKILL, reaped. */
static void child_kill(struct child *c)
{
    if (c->pid > 0) {
        kill(c->pid, SIGKILL);
        waitpid(c->pid, NULL, 0);
    }
    c->pid = 0;
}

/* Starts c's program again on the port it had. */
static int restart_on_port(struct child *c, const char *prog)
{
    char port[16];
    snprintf(port, sizeof port, "%d", c->port);
    const char *more[] = {"--port", port, NULL};
    int rc = !strcmp(prog, "coffee-server") ? chaos_server_start(c, more) : child_start(c, prog, more);
    CHECK(rc == 0, "%s did not start again on port %s", prog, port);
    return rc;
}

static int setup(void)
{
    cfg.scale = env_num("CHAOS_SCALE", 0.25);
    cfg.load = env_num("CHAOS_LOAD", 0.8);
    cfg.pool = (int)env_num("CHAOS_DB_POOL", 8);
    cfg.workers = (int)env_num("CHAOS_WORKERS", 4);
    cfg.pre_s = env_num("CHAOS_PRE_S", 2);
    cfg.post_s = env_num("CHAOS_POST_S", 5);
    cfg.down_s = env_num("CHAOS_DOWN_S", 1);
    cfg.freeze_s = env_num("CHAOS_FREEZE_S", 5);
    cfg.pipe_freeze_s = env_num("CHAOS_PIPELINE_FREEZE_S", 7);
    cfg.hang_s = env_num("CHAOS_HANG_S", 30);
    cfg.drain_ms = (int)env_num("CHAOS_DRAIN_MS", 1000);
    cfg.sweep_wait_s = env_num("CHAOS_SWEEP_WAIT_S", 90);
    cfg.grace_ms = env_num("CHAOS_GRACE_MS", 0);
    cfg.faults = getenv("CHAOS_FAULTS");
    cfg.table = getenv("CHAOS_TABLE");
    if (!(cfg.scale > 0) || cfg.pool < 1 || cfg.workers < 1) {
        fprintf(stderr, "test_chaos: CHAOS_SCALE must be > 0, CHAOS_DB_POOL and CHAOS_WORKERS >= 1\n");
        return -1;
    }
    const char *log = getenv("CHAOS_LOG");
    if (log)
        snprintf(cfg.log, sizeof cfg.log, "%s", log);
    else
        snprintf(cfg.log, sizeof cfg.log, "/tmp/test_chaos_%d.log", (int)getpid());
    snprintf(cfg.log_other, sizeof cfg.log_other, "%s.other", cfg.log);
    remove(cfg.log);
    remove(cfg.log_other);
    harness_server_log = cfg.log;
    printf("\n  the servers log to %s and %s", cfg.log, cfg.log_other);
    server_args_init();
    if (stack_setup(&st, cfg.server_args, &db) != 0)
        return -1;
    /* Capacity: async orders are bound by the connections brews may hold
     * (the server's /readyz says how many: one of the pool is kept for
     * rows and probes), each for 1000 ms x scale; blocking ones by the
     * workers, each held for the whole 6900 ms x scale. */
    char url[160];
    long status;
    snprintf(url, sizeof url, "%s/readyz", st.server.base_url);
    json_t *ready = http_get_json(url, &status);
    int brews = (int)json_integer_value(json_object_get(json_object_get(ready, "db_pool"), "brews"));
    json_decref(ready);
    if (brews < 1) {
        fprintf(stderr, "test_chaos: /readyz did not say how many brews the pool holds (status %ld)\n", status);
        stack_teardown(&st, db);
        return -1;
    }
    double cap[M_N] = {brews / (1.0 * cfg.scale), cfg.workers / (6.9 * cfg.scale)};
    cfg.rate[M_ASYNC] = env_num("CHAOS_RATE_ASYNC", cfg.load * cap[M_ASYNC]);
    cfg.rate[M_BLOCKING] = env_num("CHAOS_RATE_BLOCKING", cfg.load * cap[M_BLOCKING]);
    printf("\n  scale %g; capacity async %.1f orders/s (%d of %d pool connections for brews), blocking %.2f orders/s"
           " (%d workers); load async %.1f/s, blocking %.2f/s; server flags:",
           cfg.scale, cap[M_ASYNC], brews, cfg.pool, cap[M_BLOCKING], cfg.workers, cfg.rate[M_ASYNC],
           cfg.rate[M_BLOCKING]);
    for (int i = 0; cfg.server_args[i]; i++)
        printf(" %s", cfg.server_args[i]);
    printf("\n");
    first_id = max_id();
    return first_id < 0 ? -1 : 0;
}

static int teardown(void)
{
    int rc = stack_teardown(&st, db);
    if (nfailures)
        printf("\n  test_chaos: %d check(s) failed:", nfailures);
    for (int i = 0; i < nfailures && i < (int)(sizeof failures / sizeof failures[0]); i++)
        printf("\n    %s", failures[i]);
    printf("\n");
    return rc;
}

/* ---- faults --------------------------------------------------------------- */

static int fault_wanted(enum fault f)
{
    if (!cfg.faults)
        return 1;
    const char *p = strstr(cfg.faults, fault_names[f]);
    size_t len = strlen(fault_names[f]);
    return p && (p == cfg.faults || p[-1] == ',') && (p[len] == '\0' || p[len] == ',');
}

/* Why fault f cannot run here, or NULL. */
static const char *fault_unavailable(enum fault f)
{
    if (!fault_wanted(f))
        return "not in CHAOS_FAULTS";
    if (f == F_RESTART && (!getenv("COFFEE_PG_STOP") || !getenv("COFFEE_PG_START")))
        return "needs COFFEE_PG_STOP and COFFEE_PG_START (scripts/with-postgres)";
    if (f == F_FREEZE && (!getenv("COFFEE_PG_FREEZE") || !getenv("COFFEE_PG_THAW")))
        return "needs COFFEE_PG_FREEZE and COFFEE_PG_THAW (scripts/with-postgres)";
    return NULL;
}

/* pg_terminate_backend of every connection of the servers, all at once,
 * then polled (up to 5 s) until each backend is gone: the fault ends when
 * they have. Returns how many, or -1. */
static long long terminate_backends(void)
{
    long left = -1;
    long n = db ? db_terminate(db, "application_name = 'coffee-server'", 5000, &left) : -1;
    CHECK(n < 0 || left == 0, "terminate: %ld of %ld backends still there 5 s after pg_terminate_backend", left, n);
    return n;
}

static int frozen_pid = -1; /* the pipeline fault's backend, while frozen */

/* Takes the dependency away (restart, freeze, kitchen, server: and holds
 * it away); for terminate it is all there is. server is the one to kill. */
static void fault_inject(enum fault f, struct child *server, char *note, size_t len)
{
    long long n;
    switch (f) {
    case F_RESTART:
        run_cmd("COFFEE_PG_STOP");
        break;
    case F_TERMINATE:
        n = terminate_backends();
        snprintf(note, len, "%lld backends terminated", n);
        CHECK(n > 0, "terminate: no backend of coffee-server found to terminate");
        break;
    case F_FREEZE:
        run_cmd("COFFEE_PG_FREEZE");
        break;
    case F_PIPELINE:
        frozen_pid = pipelined_backend(server);
        CHECK(frozen_pid > 0, "pipeline: no pipelined backend pid in the server's log");
        if (frozen_pid > 0) {
            CHECK(kill(frozen_pid, SIGSTOP) == 0, "pipeline: cannot stop backend %d", frozen_pid);
            snprintf(note, len, "backend %d frozen", frozen_pid);
        }
        break;
    case F_KITCHEN:
        child_kill(&st.kitchen);
        break;
    case F_SERVER:
        child_kill(server);
        break;
    case F_N:
        break;
    }
}

/* Gives it back (after the fault's time). */
static void fault_restore(enum fault f, struct child *server)
{
    switch (f) {
    case F_RESTART:
        run_cmd("COFFEE_PG_START");
        break;
    case F_FREEZE:
        run_cmd("COFFEE_PG_THAW");
        break;
    case F_PIPELINE:
        if (frozen_pid > 0)
            kill(frozen_pid, SIGCONT);
        frozen_pid = -1;
        break;
    case F_KITCHEN:
        restart_on_port(&st.kitchen, "coffee-kitchen");
        break;
    case F_SERVER:
        if (restart_on_port(server, "coffee-server") == 0)
            CHECK(wait_ready(server, harness_slack(15000)), "the restarted server never became ready");
        break;
    case F_TERMINATE:
    case F_N:
        break;
    }
}

static double fault_hold_ms(enum fault f)
{
    if (f == F_PIPELINE)
        return cfg.pipe_freeze_s * 1000;
    return f == F_FREEZE ? cfg.freeze_s * 1000 : f == F_TERMINATE ? 0 : cfg.down_s * 1000;
}

/* ---- figures -------------------------------------------------------------- */

static int req_ok(const struct load_req *q)
{
    return q->status == 200 && q->order_id > 0;
}
static double req_ms(const struct load_req *q)
{
    return ns_to_ms(q->end_ns - q->start_ns);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The median latency of the 200s that ended before the fault, or the
 * planned latency when there are none. */
static double normal_ms(const struct load_req *q, size_t n, int64_t t_inj, int mode)
{
    double *v = malloc((n ? n : 1) * sizeof *v);
    size_t k = 0;
    for (size_t i = 0; v && i < n; i++)
        if (req_ok(&q[i]) && q[i].end_ns < t_inj)
            v[k++] = req_ms(&q[i]);
    double med = (mode == M_ASYNC ? 4000 : 6900) * cfg.scale;
    if (k) {
        qsort(v, k, sizeof *v, cmp_double);
        med = v[k / 2];
    }
    free(v);
    return med;
}

/* Fills r from the requests of one mode's load; the fault held from
 * t_inj to t_res (the moment the dependency was back). */
static void row_figures(struct row *r, const struct load_req *q, size_t n, int64_t t_inj, int64_t t_res, int mode)
{
    memset(r, 0, sizeof *r);
    r->longest_ms = r->first_ms = r->full_ms = -1;
    r->running = -1;
    r->orders = n;
    /* Normal: within twice the usual latency (and 250 ms of it at least). */
    double base = normal_ms(q, n, t_inj, mode);
    double normal = fmax(2 * base, base + 250);
    int64_t grace = t_res + (int64_t)(cfg.grace_ms * NS_PER_MS);
    int64_t last_bad = -1; /* start of the last abnormal answer that the fault touched */
    for (size_t i = 0; i < n; i++) {
        const struct load_req *x = &q[i];
        int ok = req_ok(x);
        if (ok)
            r->ok++;
        else if (x->code == CURLE_OPERATION_TIMEDOUT)
            r->hung++;
        else if (x->code != CURLE_OK)
            r->conn++;
        else if (x->status == 502 || x->status == 503)
            r->fast++;
        else if (x->status == 504)
            r->timeout++;
        else
            r->other++;
        int during = x->start_ns <= t_res && x->end_ns >= t_inj;
        if (during && x->code != CURLE_OPERATION_TIMEDOUT)
            r->longest_ms = fmax(r->longest_ms, req_ms(x));
        if (x->start_ns >= t_res && ok && (r->first_ms < 0 || ns_to_ms(x->end_ns - t_res) < r->first_ms))
            r->first_ms = ns_to_ms(x->end_ns - t_res);
        /* Failed while everything was up: started once the dependency was
         * back, or before this fault and ended before it (what the
         * previous fault left behind). */
        int up = x->start_ns >= grace || x->end_ns < t_inj;
        if (up && !ok && r->failed_after++ == 0)
            snprintf(r->first_failure, sizeof r->first_failure, "%s %.0f ms: %s%ld %s",
                     x->start_ns >= grace ? "started after it was back, at +" : "before the fault, at",
                     ns_to_ms(x->start_ns - (x->start_ns >= grace ? t_res : t_inj)),
                     x->code != CURLE_OK ? "transport error " : "HTTP ", x->status, x->error);
        if (x->end_ns >= t_inj && (!ok || req_ms(x) > normal))
            last_bad = x->start_ns;
    }
    /* Full recovery: the first normal answer started after the last
     * abnormal one, counted from the moment the dependency was back. */
    for (size_t i = 0; i < n; i++) {
        const struct load_req *x = &q[i];
        if (x->start_ns > last_bad && req_ok(x) && req_ms(x) <= normal && x->end_ns >= t_res) {
            r->full_ms = ns_to_ms(x->end_ns - t_res);
            break;
        }
    }
}

/* With CHAOS_DUMP (a directory), every request of a fault's load as CSV,
 * times in ms from the fault's start. */
static void dump(enum fault f, int m, const struct load_req *q, size_t n, int64_t t_inj, int64_t t_res)
{
    const char *dir = getenv("CHAOS_DUMP");
    char path[512];
    if (!dir)
        return;
    snprintf(path, sizeof path, "%s/%s-%s.csv", dir, fault_names[f], mode_names[m]);
    FILE *out = fopen(path, "w");
    CHECK(out != NULL, "cannot write %s", path);
    if (!out)
        return;
    fprintf(out, "# fault from 0 to %.1f ms\nstart_ms,latency_ms,status,curl_code,order_id,error\n",
            ns_to_ms(t_res - t_inj));
    for (size_t i = 0; i < n; i++)
        fprintf(out, "%.1f,%.1f,%ld,%d,%lld,\"%s\"\n", ns_to_ms(q[i].start_ns - t_inj), req_ms(&q[i]), q[i].status,
                (int)q[i].code, q[i].order_id, q[i].error);
    fclose(out);
}

/* Answers 200 without a done row; their ids into out (up to len). */
static size_t missing_rows(const struct load_req *q, size_t n, char *out, size_t len)
{
    size_t cap = 16 + n * 21, used = 0, ids = 0;
    char *arr = malloc(cap);
    CHECK(arr != NULL, "out of memory");
    if (!arr)
        return 0;
    used += (size_t)snprintf(arr, cap, "{");
    for (size_t i = 0; i < n; i++)
        if (req_ok(&q[i])) {
            used += (size_t)snprintf(arr + used, cap - used, "%s%lld", ids ? "," : "", q[i].order_id);
            ids++;
        }
    snprintf(arr + used, cap - used, "}");
    const char *params[] = {arr};
    long long done =
        query_ll("SELECT count(*) FROM orders WHERE id = ANY($1::bigint[]) AND status = 'done'", 1, params);
    out[0] = '\0';
    size_t missing = done < 0 ? ids : ids - (size_t)done;
    if (missing) {
        PGresult *r = query("SELECT string_agg(u.x || '=' || coalesce(o.status, 'no row'), ', ')"
                            " FROM unnest($1::bigint[]) u(x) LEFT JOIN orders o ON o.id = u.x"
                            " WHERE o.status IS DISTINCT FROM 'done'",
                            1, params);
        snprintf(out, len, "%s", r && PQntuples(r) == 1 ? PQgetvalue(r, 0, 0) : "?");
        PQclear(r);
    }
    free(arr);
    return missing;
}

/* Answered other than 200 with an order id, yet their row is done: the
 * client was told the order failed, the row says it did not. */
static size_t disagree_rows(const struct load_req *q, size_t n)
{
    size_t cap = 16 + n * 21, used = 0;
    char *arr = malloc(cap);
    CHECK(arr != NULL, "out of memory");
    if (!arr)
        return 0;
    used += (size_t)snprintf(arr, cap, "{");
    for (size_t i = 0, ids = 0; i < n; i++)
        if (q[i].status != 200 && q[i].order_id > 0)
            used += (size_t)snprintf(arr + used, cap - used, "%s%lld", ids++ ? "," : "", q[i].order_id);
    snprintf(arr + used, cap - used, "}");
    const char *params[] = {arr};
    long long done =
        query_ll("SELECT count(*) FROM orders WHERE id = ANY($1::bigint[]) AND status = 'done'", 1, params);
    free(arr);
    CHECK(done >= 0, "cannot count the rows of failed orders");
    return done < 0 ? 0 : (size_t)done;
}

/* ---- SIGTERM while the fault holds ------------------------------------------ */

/* Polls (up to 5 s) until a brew of a server runs in the database. */
static int wait_brewing(void)
{
    int64_t t0 = clock_mono_ns();
    while (ns_to_ms(clock_mono_ns() - t0) < 5000) {
        if (query_ll("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'coffee-server'"
                     " AND state = 'active' AND query LIKE 'SELECT brew_coffee%'",
                     0, NULL) > 0)
            return 1;
        nap_ms(10);
    }
    return 0;
}

/* Starts b: two orders of each mode at scale 0.5 on server; returns once
 * they are in flight (polling, bounded). */
static void orders_in_flight(struct child *server, struct http_batch *b)
{
    static char aurl[160], burl[160];
    snprintf(aurl, sizeof aurl, "%s/make-coffee?mode=async&scale=0.5", server->base_url);
    snprintf(burl, sizeof burl, "%s/make-coffee?mode=blocking&scale=0.5", server->base_url);
    b->n = 4;
    for (int i = 0; i < b->n; i++)
        b->urls[i] = i % 2 ? burl : aurl;
    CU_ASSERT_EQUAL_FATAL(http_batch_start(b), 0);
    int64_t t0 = clock_mono_ns();
    while (ns_to_ms(clock_mono_ns() - t0) < 5000 && inflight(server) < b->n)
        nap_ms(10);
}

static void batch_done(struct http_batch *b)
{
    http_batch_wait(b); /* bounded: the server is gone, or harness timeouts */
    for (int i = 0; i < b->n; i++)
        http_result_free(&b->res[i]);
}

/* A server of its own with orders in flight, the fault injected (and, for
 * the server fault, the server killed and started again with new orders),
 * SIGTERM: it must exit 0 within --drain-timeout-ms plus 3 s. */
static void sigterm_under(enum fault f, struct phase *p)
{
    struct child srv;
    const char *more[] = {"--drain-timeout-ms", cfg.drain_s, NULL};
    CU_ASSERT_EQUAL_FATAL(chaos_server_start(&srv, more), 0);
    struct http_batch b, b2;
    orders_in_flight(&srv, &b);
    if (f == F_RESTART || f == F_TERMINATE || f == F_FREEZE || f == F_PIPELINE)
        wait_brewing();
    char note[80];
    fault_inject(f, &srv, note, sizeof note);
    if (f == F_SERVER) {
        batch_done(&b);
        char port[16];
        snprintf(port, sizeof port, "%d", srv.port);
        const char *again[] = {"--drain-timeout-ms", cfg.drain_s, "--port", port, NULL};
        CU_ASSERT_EQUAL_FATAL(chaos_server_start(&srv, again), 0);
        orders_in_flight(&srv, &b2);
    }
    double bound = cfg.drain_ms + harness_slack(3000);
    int64_t t0 = clock_mono_ns();
    p->sigterm_status = child_stop(&srv, (int)ceil(bound / 1000));
    p->sigterm_ms = ns_to_ms(clock_mono_ns() - t0);
    if (f != F_SERVER)
        fault_restore(f, &srv);
    batch_done(f == F_SERVER ? &b2 : &b);
    CHECK(p->sigterm_status != -1, "%s: SIGTERM with orders in flight did not end the server within %.0f ms (killed)",
          fault_names[f], bound);
    CHECK(p->sigterm_status <= 0, "%s: after SIGTERM the server exited %d, not 0", fault_names[f], p->sigterm_status);
}

/* ---- one fault under load ------------------------------------------------------ */

static void report_row(enum fault f, int m, const struct row *r, const char *missing)
{
    printf("\n  %-9s %-8s %4zu orders: %zu ok, %zu fast 502/503, %zu 504, %zu other, %zu transport, %zu hung;"
           " longest in the fault %.0f ms; first success %.0f ms, full recovery %.0f ms after it was back;"
           " %zu failed once back; %zu 200s without a done row; %zu failures with a done row",
           fault_names[f], mode_names[m], r->orders, r->ok, r->fast, r->timeout, r->other, r->conn, r->hung,
           r->longest_ms, r->first_ms, r->full_ms, r->failed_after, r->missing_rows, r->disagree_rows);
    const char *what = fault_names[f], *mode = mode_names[m];
    CHECK(r->hung == 0, "%s/%s: %zu orders hung (no answer within %.0f s)", what, mode, r->hung, cfg.hang_s);
    CHECK(r->missing_rows == 0, "%s/%s: %zu orders answered 200 without their done row (id=status: %s)", what, mode,
          r->missing_rows, missing);
    CHECK(r->disagree_rows == 0, "%s/%s: %zu orders answered other than 200 have a done row", what, mode,
          r->disagree_rows);
    CHECK(r->failed_after == 0, "%s/%s: %zu orders failed while every dependency was up, the first %s", what, mode,
          r->failed_after, r->first_failure);
    CHECK(r->first_ms >= 0, "%s/%s: no order succeeded in the %.0f s after the fault", what, mode, cfg.post_s);
}

static void run_fault(enum fault f)
{
    struct phase *p = &phases[f];
    const char *why = fault_unavailable(f);
    if (why) {
        snprintf(p->note, sizeof p->note, "skipped: %s", why);
        printf("\n  %s %s\n", fault_names[f], p->note);
        return;
    }
    CHECK(wait_ready(&st.server, harness_slack(10000)), "%s: the server is not ready before the fault", fault_names[f]);
    p->ran = 1;
    p->id_lo = max_id();
    struct load *load[M_N];
    for (int m = 0; m < M_N; m++) {
        char url[200];
        snprintf(url, sizeof url, "%s/make-coffee?mode=%s&scale=%g", st.server.base_url, mode_names[m], cfg.scale);
        load[m] = load_start(url, cfg.rate[m], (long)(cfg.hang_s * 1000));
        CU_ASSERT_PTR_NOT_NULL_FATAL(load[m]);
    }
    hold_ms(cfg.pre_s * 1000);
    int64_t t_inj = clock_mono_ns();
    fault_inject(f, &st.server, p->note, sizeof p->note);
    hold_ms(fault_hold_ms(f));
    fault_restore(f, &st.server);
    int64_t t_res = clock_mono_ns();
    p->fault_ms = ns_to_ms(t_res - t_inj);
    hold_ms(cfg.post_s * 1000);
    for (int m = 0; m < M_N; m++)
        load_halt(load[m]);
    for (int m = 0; m < M_N; m++) {
        load_stop(load[m]); /* within the hang bound */
        CHECK(!load_failed(load[m]), "%s/%s: the load generator failed", fault_names[f], mode_names[m]);
        size_t n;
        const struct load_req *q = load_reqs(load[m], &n);
        struct row *r = &p->row[m];
        row_figures(r, q, n, t_inj, t_res, m);
        dump(f, m, q, n, t_inj, t_res);
        char missing[200];
        r->missing_rows = missing_rows(q, n, missing, sizeof missing);
        r->disagree_rows = disagree_rows(q, n);
        report_row(f, m, r, missing);
        load_free(load[m]);
    }
    sigterm_under(f, p);
    p->id_hi = max_id();
    printf("\n  %s: fault held %.0f ms%s%s; SIGTERM under it: exit %d after %.0f ms\n", fault_names[f], p->fault_ms,
           p->note[0] ? "; " : "", p->note, p->sigterm_status, p->sigterm_ms);
}

static void test_restart(void)
{
    run_fault(F_RESTART);
}
static void test_terminate(void)
{
    run_fault(F_TERMINATE);
}
static void test_freeze(void)
{
    run_fault(F_FREEZE);
}
static void test_pipeline(void)
{
    run_fault(F_PIPELINE);
}
static void test_kitchen(void)
{
    run_fault(F_KITCHEN);
}
static void test_server(void)
{
    run_fault(F_SERVER);
}

/* ---- rows after the sweep, and the table ------------------------------------------- */

static void write_table(FILE *f)
{
    fprintf(
        f,
        "| fault | mode | load (orders/s) | orders | 200 | 502/503 | 504 | other | transport errors | hung |"
        " longest answer in the fault (ms) | first success (ms) | full recovery (ms) | failed once back |"
        " 200 without done row | non-200 with done row | left running after the sweep | SIGTERM under the fault |\n");
    fprintf(f, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|\n");
    for (int i = 0; i < F_N; i++) {
        const struct phase *p = &phases[i];
        if (!p->ran) {
            fprintf(f, "| %s | - | | | | | | | | | | | | | | | | %s |\n", fault_titles[i], p->note);
            continue;
        }
        for (int m = 0; m < M_N; m++) {
            const struct row *r = &p->row[m];
            char first[24], full[24], sig[48], longest[24];
            snprintf(longest, sizeof longest, r->longest_ms < 0 ? "-" : "%.0f", r->longest_ms);
            snprintf(first, sizeof first, r->first_ms < 0 ? "never" : "%.0f", r->first_ms);
            snprintf(full, sizeof full, r->full_ms < 0 ? "not within %.0f s" : "%.0f",
                     r->full_ms < 0 ? cfg.post_s : r->full_ms);
            if (p->sigterm_status == -1)
                snprintf(sig, sizeof sig, "no exit in %.0f ms: killed", p->sigterm_ms);
            else
                snprintf(sig, sizeof sig, "exit %d in %.0f ms", p->sigterm_status, p->sigterm_ms);
            fprintf(f,
                    "| %s (%.1f s) | %s | %.1f | %zu | %zu | %zu | %zu | %zu | %zu | %zu | %s | %s | %s | %zu | %zu |"
                    " %zu | %lld | %s |\n",
                    fault_titles[i], p->fault_ms / 1000, mode_names[m], cfg.rate[m], r->orders, r->ok, r->fast,
                    r->timeout, r->other, r->conn, r->hung, longest, first, full, r->failed_after, r->missing_rows,
                    r->disagree_rows, r->running, m == M_ASYNC ? sig : "(the same run)");
        }
    }
}

static void test_sweep(void)
{
    /* The sweep marks rows 'running' past their own deadline as failed: a
     * killed server's rows need it. Polled, bounded. */
    char lo[32];
    snprintf(lo, sizeof lo, "%lld", first_id);
    const char *p1[] = {lo};
    PGresult *left = query("SELECT coalesce(string_agg(id || ' ' || mode || ' since ' || started_at::time(0), ', '"
                           " ORDER BY id), 'none') FROM orders WHERE id > $1 AND status = 'running'",
                           1, p1);
    printf("\n  rows of this run 'running' before the sweep: %s",
           left && PQntuples(left) ? PQgetvalue(left, 0, 0) : "?");
    PQclear(left);
    int64_t t0 = clock_mono_ns();
    long long running;
    while ((running = query_ll("SELECT count(*) FROM orders WHERE id > $1 AND status = 'running'", 1, p1)) != 0 &&
           ns_to_ms(clock_mono_ns() - t0) < cfg.sweep_wait_s * 1000)
        nap_ms(250);
    printf("\n  rows of this run still 'running' after %.1f s: %lld", ns_to_ms(clock_mono_ns() - t0) / 1000, running);
    for (int i = 0; i < F_N; i++) {
        struct phase *p = &phases[i];
        for (int m = 0; p->ran && m < M_N; m++) {
            char a[32], b[32];
            snprintf(a, sizeof a, "%lld", p->id_lo);
            snprintf(b, sizeof b, "%lld", p->id_hi);
            const char *params[] = {a, b, mode_names[m]};
            p->row[m].running = query_ll("SELECT count(*) FROM orders WHERE id > $1 AND id <= $2 AND mode = $3"
                                         " AND status = 'running'",
                                         3, params);
            CHECK(p->row[m].running == 0, "%s/%s: %lld rows still 'running' %.0f s after the run", fault_names[i],
                  mode_names[m], p->row[m].running, cfg.sweep_wait_s);
        }
    }
    printf("\n\n");
    write_table(stdout);
    if (cfg.table) {
        FILE *f = fopen(cfg.table, "w");
        CHECK(f != NULL, "cannot write CHAOS_TABLE %s", cfg.table);
        if (f) {
            write_table(f);
            fclose(f);
        }
    }
}

int main(void)
{
    static const struct harness_test tests[] = {
        {"database restarted under load", test_restart},
        {"server backends terminated under load", test_terminate},
        {"database frozen (SIGSTOP) under load, then continued", test_freeze},
        {"the pipelined connection's backend alone frozen under load, then continued", test_pipeline},
        {"kitchen killed under load, restarted on its port", test_kitchen},
        {"server SIGKILLed under load, started again on its port", test_server},
        {"no row left 'running' after the sweep; the table", test_sweep},
        {NULL, NULL},
    };
    return harness_main("chaos", setup, teardown, tests);
}
