/* coffee-server: wires configuration, the loop, the database pool, the
 * kitchen client, both executors and the HTTP front together; then runs
 * the loop until SIGINT/SIGTERM and the drain of in-flight requests. */
#include "brew_offload.h"
#include "brew_on_loop.h"
#include "clock.h"
#include "config.h"
#include "curl_loop.h"
#include "db.h"
#include "evloop.h"
#include "exec_async.h"
#include "exec_blocking.h"
#include "exec_threads.h"
#include "executor.h"
#include "flight.h"
#include "http_front.h"
#include "httpd.h"
#include "kitchen_client.h"
#include "list.h"
#include "log.h"
#include "params.h"
#include "pgpool.h"
#include "proc.h"
#include "recipes_route.h"
#include "store_pgpool.h"
#include "sweep.h"
#include "sync_pool.h"
#include "watchdog.h"
#include "worker_io.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* MHD's memory pool per HTTP connection: request line and headers, answer
 * headers; a URL or header up to about this size reaches the handler. One
 * per client connection held open, so per order in flight (bench S4: 44 KB
 * of memory per order in flight with 16 KB). */
#define HTTP_CONN_MEMORY 16384
/* A database connect (and its session set-up) gives up after this. The
 * blocking workers' libpq connect_timeout says the same (db.c). */
#define DB_CONNECT_TIMEOUT_MS 5000
/* The default query bound of the pool, for statements that give none. */
#define DB_QUERY_TIMEOUT_MS 5000

struct settings {
    const char *bind;
    int port;
    const char *kitchen_url;
    const char *database_url;
    int workers;
    int db_pool;
    int db_pipelines;
    double scale;
    int step_slack_ms;
    int max_inflight;
    int max_connections;
    int kitchen_keepalive;
    int drain_timeout_ms;
    int idle_timeout_s;
    int header_timeout_ms;
    int max_conns_per_ip;
    int kitchen_connections;
    int db_wait_ms;
    int db_timeout_ms;
    int max_mixed;
    int max_threads;
    int threads_db_pool;
    int threads_stack_kb;
    int offload_threads;
    const char *modes;
    int sweep_interval_ms;
    const char *instance;
    const char *log_format;
    int verbose;
    int stall_ms; /* flight recorder: a callback this long is a stall */
    int no_trace; /* flight recorder: record nothing (GET /trace answers an empty trace) */
};

/* After the drain's end, connections that are not suspended (waiting for
 * an order) are closed this often, until the loop stops: a client that
 * stopped reading a stream cannot hold the shutdown past its bound. */
#define CLOSE_PERIOD_MS 100

struct server {
    struct evloop *loop;
    struct httpd *httpd;
    struct front *front;
    int stopping;
    long drain_timeout_ms;
    struct ev_timer close_timer;
};

/* Closes the connections that are not waiting for an order (their answers
 * already written): past the drain's end, those are the clients that do
 * not read what they were sent. */
static void on_close_timer(struct evloop *loop, struct ev_timer *t)
{
    struct server *s = container_of(t, struct server, close_timer);
    int n = httpd_close_unsuspended(s->httpd);
    if (n)
        log_info("shutdown: closed %d connections that were not reading their answers", n);
    if (evloop_timer_start(loop, t, CLOSE_PERIOD_MS * NS_PER_MS) != 0)
        log_warn("no memory for the shutdown's close timer");
}

static void on_drained(void *arg)
{
    struct server *s = arg;
    log_info("all requests answered; stopping");
    evloop_stop(s->loop);
}

static void on_signal(struct evloop *loop, int signo, void *arg)
{
    (void)loop;
    struct server *s = arg;
    if (s->stopping) {
        log_info("signal %d again: ending the %d orders in flight now", signo, front_inflight(s->front));
        front_abort(s->front);
        on_close_timer(loop, &s->close_timer); /* closing starts now, and goes on */
        return;
    }
    s->stopping = 1;
    log_info("signal %d: no new orders; waiting up to %ld ms for %d in flight (a second signal ends them now)", signo,
             s->drain_timeout_ms, front_inflight(s->front));
    httpd_quiesce(s->httpd);
    front_drain(s->front, s->drain_timeout_ms, on_drained, s);
    if (evloop_timer_start(loop, &s->close_timer, (int64_t)s->drain_timeout_ms * NS_PER_MS) != 0)
        log_warn("no memory for the shutdown's close timer");
}

static int parse_settings(struct settings *st, int argc, char **argv)
{
    const struct opt opts[] = {
        {"port", "PORT", OPT_INT, &st->port, 0, 65535, "TCP port to listen on (0 = any free port)"},
        {"bind", "BIND", OPT_STRING, &st->bind, 0, 0, "numeric address to listen on"},
        {"kitchen-url", "KITCHEN_URL", OPT_STRING, &st->kitchen_url, 0, 0, "base URL of coffee-kitchen"},
        {"database-url", "DATABASE_URL", OPT_STRING, &st->database_url, 0, 0,
         "libpq URI or key=value string (unset: libpq's PG* variables)"},
        {"workers", "WORKERS", OPT_INT, &st->workers, 1, 256, "blocking worker threads (each with one PGconn)"},
        {"db-pool", "DB_POOL", OPT_INT, &st->db_pool, 1, 1000, "async database connections"},
        {"db-pipelines", "DB_PIPELINES", OPT_INT, &st->db_pipelines, 0, 1000,
         "of those, connections in libpq pipeline mode carrying the short statements of many orders at once "
         "(never brews; at most db-pool - 1; 0 = one statement per connection at a time)"},
        {"scale", "SCALE", OPT_DOUBLE, &st->scale, 0, SCALE_MAX, "default scale of every step's duration"},
        {"step-timeout-ms", "STEP_TIMEOUT_MS", OPT_INT, &st->step_slack_ms, 1, 600000,
         "a step fails (504) when it runs this much longer than planned"},
        {"max-inflight", "MAX_INFLIGHT", OPT_INT, &st->max_inflight, 1, 1000000,
         "orders in flight before new ones get 503"},
        {"max-connections", "MAX_CONNECTIONS", OPT_INT, &st->max_connections, 1, 1000000,
         "concurrent HTTP connections accepted"},
        {"idle-timeout-s", "IDLE_TIMEOUT_S", OPT_INT, &st->idle_timeout_s, 0, 86400,
         "close an HTTP connection idle this long (0 = never; orders in flight never count as idle)"},
        {"header-timeout-ms", "HEADER_TIMEOUT_MS", OPT_INT, &st->header_timeout_ms, 0, 3600000,
         "close a connection whose request headers have not all arrived this long after it opened or its "
         "previous request ended (0 = never)"},
        {"max-connections-per-ip", "MAX_CONNECTIONS_PER_IP", OPT_INT, &st->max_conns_per_ip, 0, 1000000,
         "HTTP connections one client address may hold (0 = no limit: behind a balancer every client has "
         "its address)"},
        {"kitchen-keepalive", "KITCHEN_KEEPALIVE", OPT_INT, &st->kitchen_keepalive, 1, 100000,
         "idle kitchen connections kept open by the async executor"},
        {"drain-timeout-ms", "DRAIN_TIMEOUT_MS", OPT_INT, &st->drain_timeout_ms, 0, 3600000,
         "on SIGTERM/SIGINT, wait this long for orders in flight, then cancel them (503)"},
        {"kitchen-connections", "KITCHEN_CONNECTIONS", OPT_INT, &st->kitchen_connections, 0, 1000000,
         "kitchen connections the async executor opens at once (0 = no limit); calls over it wait for one, "
         "and the wait counts against the step's timeout"},
        {"db-wait-ms", "DB_WAIT_MS", OPT_INT, &st->db_wait_ms, 1, 3600000,
         "an async query (or a threads-mode statement) waits this long at most for a free database connection, "
         "then 503 with Retry-After"},
        {"db-timeout-ms", "DB_TIMEOUT_MS", OPT_INT, &st->db_timeout_ms, 1, 600000,
         "bound on writing an order's row (INSERT, final UPDATE), both modes; past it 503"},
        {"max-mixed", "MAX_MIXED", OPT_INT, &st->max_mixed, 0, 1000,
         "mixed orders in flight at once (each freezes the event loop for its brew); over it 503"},
        {"max-threads", "MAX_THREADS", OPT_INT, &st->max_threads, 1, 100000,
         "threads-mode orders (one thread each) in flight at once; over it, or when the system refuses a "
         "thread, 503 with Retry-After and no row"},
        {"threads-db-pool", "THREADS_DB_POOL", OPT_INT, &st->threads_db_pool, 1, 1000,
         "the threads mode's shared blocking database connections; a statement waits --db-wait-ms at most for "
         "one, then 503"},
        {"threads-stack-kb", "THREADS_STACK_KB", OPT_INT, &st->threads_stack_kb, 64, 65536,
         "stack of each threads-mode order's thread, KiB (default 256; glibc's default is 8192)"},
        {"offload-threads", "OFFLOAD_THREADS", OPT_INT, &st->offload_threads, 1, 1000,
         "the offload mode's brew threads (each with its own PGconn); a brew waits for one no longer than its "
         "own timeout"},
        {"modes", "MODES", OPT_STRING, &st->modes, 0, 0, "the modes this server offers, comma-separated"},
        {"sweep-interval-ms", "SWEEP_INTERVAL_MS", OPT_INT, &st->sweep_interval_ms, 0, 3600000,
         "how often rows left running past their deadline (by a server that died) are failed; 0 = never"},
        {"instance", "INSTANCE", OPT_STRING, &st->instance, 0, 0,
         "this replica's name, stored with every order it runs (default: the host name)"},
        {"log-format", "LOG_FORMAT", OPT_STRING, &st->log_format, 0, 0,
         "text or logfmt (default: text when stderr is a terminal, logfmt otherwise)"},
        {"verbose", "VERBOSE", OPT_FLAG, &st->verbose, 0, 1, "log every state change and every order that ended"},
        {"stall-ms", "STALL_MS", OPT_INT, &st->stall_ms, 1, 600000,
         "a loop callback this long is a stall: logged (warn), counted in coffee_loop_stall_seconds"},
        {"no-trace", "NO_TRACE", OPT_FLAG, &st->no_trace, 0, 1, "turn the flight recorder (GET /trace) off"},
    };
    char err[300];
    int rc =
        config_parse(opts, sizeof opts / sizeof opts[0], argc, argv,
                     "usage: coffee-server [options]\n"
                     "Makes coffee with blocking calls (on a pool of worker threads, or a thread per order\n"
                     "with a 256 KiB stack: --threads-stack-kb) or with non-blocking I/O on one event loop.\n"
                     "Endpoints: /make-coffee?mode=blocking|async|naive|mixed|threads|offload[&scale=S],\n"
                     "           /compare[?modes=M1,M2,...][&scale=S], /rush?modes=M1[,M2...]&customers=N[&scale=S],\n"
                     "           /orders/{id}, /stats, /metrics, /trace[?seconds=S], /livez, /readyz\n"
                     "Every wait is bounded: a kitchen step by its planned time plus --step-timeout-ms, a\n"
                     "database connection by --db-wait-ms, a row's statements by --db-timeout-ms, a brew\n"
                     "like a step; SIGTERM drains for --drain-timeout-ms, then cancels, and ends in at most\n"
                     "2 s more whatever the dependencies do; a second SIGTERM ends at once.",
                     err, sizeof err);
    if (rc == CONFIG_ERROR)
        fprintf(stderr, "coffee-server: %s\n", err);
    return rc;
}

int main(int argc, char **argv)
{
    struct settings st = {
        .bind = "127.0.0.1",
        .port = 8080,
        .kitchen_url = "http://127.0.0.1:8081",
        .workers = 8,
        .db_pool = 32,
        .db_pipelines = 0, /* on a durable database, commits group across connections: docs/bench.md */
        .scale = 1.0,
        .step_slack_ms = 5000,
        .max_inflight = 4096,
        .max_connections = 4096,
        .kitchen_keepalive = 1024,
        .drain_timeout_ms = 10000,
        .idle_timeout_s = 60,
        .header_timeout_ms = 10000,
        .db_wait_ms = 10000,
        .db_timeout_ms = 5000,
        .max_mixed = 1,
        .max_threads = 2000,
        .threads_db_pool = 32,
        .threads_stack_kb = EXEC_THREADS_STACK_KB,
        .offload_threads = 8,
        .modes = "blocking,async,naive,mixed,threads,offload",
        .sweep_interval_ms = 10000,
        .stall_ms = 50,
    };
    /* The host name is the default instance: a container's is its id, so
     * every replica of a compose service has its own. */
    char hostname[256] = "";
    if (gethostname(hostname, sizeof hostname - 1) == 0 && hostname[0])
        st.instance = hostname;
    int rc = parse_settings(&st, argc, argv);
    if (rc != CONFIG_OK)
        return rc == CONFIG_HELP ? 0 : 2;
    enum log_format lf = log_format_default();
    if (st.log_format && log_format_parse(st.log_format, &lf) != 0) {
        fprintf(stderr, "coffee-server: --log-format: '%s' is not text or logfmt\n", st.log_format);
        return 2;
    }
    log_set_format(lf);
    log_init("coffee-server", st.verbose ? LOG_DEBUG : LOG_INFO);

    /* The kitchen URL without a trailing slash: paths are appended. */
    char kitchen[400];
    if (snprintf(kitchen, sizeof kitchen, "%s", st.kitchen_url) >= (int)sizeof kitchen) {
        fprintf(stderr, "coffee-server: --kitchen-url is too long\n");
        return 2;
    }
    for (size_t n = strlen(kitchen); n > 0 && kitchen[n - 1] == '/'; n--)
        kitchen[n - 1] = '\0';

    proc_ignore_sigpipe();
    /* Each order in flight holds a client connection (counted in
     * max_connections) and up to two kitchen connections, unless those are
     * bounded. */
    int kitchen_fds = st.kitchen_connections ? st.kitchen_connections : 2 * st.max_inflight + st.kitchen_keepalive;
    int want_fds = st.max_connections + kitchen_fds + st.db_pool + st.workers * 2 + st.max_threads +
                   st.threads_db_pool + st.offload_threads + 64;
    int nofile = proc_raise_nofile(want_fds);
    if (nofile < want_fds)
        log_warn("file descriptor limit is %d (wanted %d): lower --max-inflight/--max-connections or raise it", nofile,
                 want_fds);
    if (curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK) {
        log_error("curl_global_init failed");
        return 1;
    }

    char err[300];
    unsigned modes;
    if (params_mode_set(st.modes, &modes, err, sizeof err) != 0) {
        fprintf(stderr, "coffee-server: --modes: %s\n", err);
        return 2;
    }
    /* The longest statement the server ever waits for: a brew at the
     * largest scale and its slack. The database ends anything longer. */
    long longest_ms = st.db_timeout_ms > DB_QUERY_TIMEOUT_MS ? st.db_timeout_ms : DB_QUERY_TIMEOUT_MS;
    for (int r = 0; r < wf_nrecipes; r++)
        for (int i = 0; i < wf_recipes[r]->nsteps; i++) {
            const struct step_def *s = &wf_recipes[r]->steps[i];
            if (s->io == IO_SQL && wf_step_ms(s, SCALE_MAX) + st.step_slack_ms > longest_ms)
                longest_ms = wf_step_ms(s, SCALE_MAX) + st.step_slack_ms;
        }
    /* How long an order's row may stay running beyond the steps' planned
     * time: each executor says so of its own (executor.h), and each row
     * gets its executor's (the sweep reads the row's own deadline_at). */
    struct executor_limits limits = {.step_slack_ms = st.step_slack_ms,
                                     .db_wait_ms = st.db_wait_ms,
                                     .db_timeout_ms = st.db_timeout_ms,
                                     .connect_timeout_ms = DB_CONNECT_TIMEOUT_MS};
    struct db_config *db = db_config_new(st.database_url, longest_ms, err, sizeof err);
    if (!db) {
        log_error("%s", err);
        return 2;
    }
    struct server srv = {.drain_timeout_ms = st.drain_timeout_ms, .close_timer.cb = on_close_timer};
    struct watchdog *wd = NULL;
    struct pgpool *pool = NULL;
    struct curl_loop *http = NULL;
    struct store_pgpool *store = NULL;
    struct brew_on_loop *loop_brew = NULL;
    struct brew_offload *offload = NULL;
    struct kc_service *kitchen_calls = NULL;
    struct exec_async *async = NULL;
    struct exec_blocking *blocking = NULL;
    struct sweep *sweep = NULL;
    struct recipes *recipes = NULL;
    struct sync_pool *threads_pool = NULL;
    struct exec_threads *threads = NULL;
    rc = 1;
    if (flight_init(!st.no_trace, st.stall_ms) != 0) /* before the loop: it reads the thresholds */
        log_warn("no memory for the flight recorder: GET /trace will be empty");
    flight_thread_name("loop"); /* the loop runs on this thread */
    srv.loop = evloop_new(nofile);
    if (!srv.loop) {
        log_error("cannot create the event loop");
        goto out;
    }
    /* Before any thread starts, so that they inherit the blocked signals. */
    if (evloop_watch_signals(srv.loop, on_signal, &srv) != 0)
        log_warn("cannot watch SIGINT/SIGTERM");
    wd = watchdog_new();
    if (!wd) {
        log_error("cannot start the watchdog thread");
        goto out;
    }
    struct pgpool_options popt = {
        .size = st.db_pool,
        /* Brews may not take the last connection: probes and the rows'
         * statements never wait behind a pool full of brews. With
         * --db-pipelines 1 that connection is the pipelined one
         * (pgpool.h), so brews keep db_pool - 1 connections either way. */
        .reserve = st.db_pool >= 2 ? 1 : 0,
        .pipelined = st.db_pipelines,
        .connect_timeout_ms = DB_CONNECT_TIMEOUT_MS,
        .wait_timeout_ms = st.db_wait_ms,
        .query_timeout_ms = DB_QUERY_TIMEOUT_MS,
        .setup = {.step = db_setup_step, .done = db_setup_done, .arg = db},
    };
    pool = pgpool_new(srv.loop, db, &popt);
    http = curl_loop_new(srv.loop, st.kitchen_keepalive, st.kitchen_connections, kc_setup);
    struct exec_async_options aopt = {.step_slack_ms = st.step_slack_ms,
                                      .db_timeout_ms = st.db_timeout_ms,
                                      .row_budget_ms = exec_executors[EXEC_ASYNC]->row_budget_ms(&limits)};
    /* The async executor's services, the real ones: a brew service per
     * brew kind that an async mode names (wf_modes[].brew). */
    store = pool ? store_pgpool_new(srv.loop, pool) : NULL;
    loop_brew = brew_on_loop_new(srv.loop, db, wd, DB_CONNECT_TIMEOUT_MS);
    kitchen_calls = http ? kc_service_new(srv.loop, http, kitchen) : NULL;
    offload = brew_offload_new(srv.loop, db, wd, DB_CONNECT_TIMEOUT_MS, st.offload_threads, err, sizeof err);
    if (!offload) {
        log_error("%s", err);
        goto out;
    }
    if (store && loop_brew && kitchen_calls) {
        struct exec_async_services svc = {.store = store_pgpool_store(store), .kitchen = kc_service(kitchen_calls)};
        svc.brew[BREW_POOL] = store_pgpool_brew(store);
        svc.brew[BREW_ON_LOOP] = brew_on_loop_service(loop_brew);
        svc.brew[BREW_OFFLOAD] = brew_offload_service(offload);
        async = exec_async_new(srv.loop, &svc, &aopt);
    }
    if (!async) {
        log_error("out of memory");
        goto out;
    }
    struct exec_blocking_options bopt = {.step_slack_ms = st.step_slack_ms,
                                         .db_timeout_ms = st.db_timeout_ms,
                                         .row_budget_ms = exec_executors[EXEC_BLOCKING]->row_budget_ms(&limits),
                                         .workers = st.workers};
    /* The blocking executor's services, the real ones: per worker an easy
     * handle and a PGconn. */
    struct worker_io_config wcfg = {
        .kitchen_url = kitchen, .db = db, .wd = wd, .connect_timeout_ms = DB_CONNECT_TIMEOUT_MS};
    struct blocking_io wio = worker_io(&wcfg);
    blocking = exec_blocking_new(srv.loop, &wio, &bopt, err, sizeof err);
    if (!blocking) {
        log_error("%s", err);
        goto out;
    }
    /* The threads mode's: a thread per order, its statements on the
     * shared blocking pool. */
    threads_pool = sync_pool_new(st.threads_db_pool, db, wd, DB_CONNECT_TIMEOUT_MS);
    if (!threads_pool) {
        log_error("out of memory");
        goto out;
    }
    struct worker_io_config tcfg = wcfg;
    tcfg.pool = threads_pool;
    tcfg.pool_wait_ms = st.db_wait_ms;
    struct blocking_io tio = worker_io(&tcfg);
    struct exec_threads_options topt = {.step_slack_ms = st.step_slack_ms,
                                        .db_timeout_ms = st.db_timeout_ms,
                                        .row_budget_ms = exec_executors[EXEC_THREADS]->row_budget_ms(&limits),
                                        .max_threads = st.max_threads,
                                        .stack_kb = st.threads_stack_kb,
                                        .join_wait_ms = 5000};
    threads = exec_threads_new(srv.loop, &tio, threads_pool, &topt, err, sizeof err);
    if (!threads) {
        log_error("%s", err);
        goto out;
    }
    if (st.sweep_interval_ms > 0 && !(sweep = sweep_start(srv.loop, pool, st.sweep_interval_ms))) {
        log_error("out of memory");
        goto out;
    }
    if (!(recipes = recipes_new(pool))) {
        log_error("out of memory");
        goto out;
    }
    struct front_options fopt = {.kitchen_url = kitchen,
                                 .default_scale = st.scale,
                                 .max_inflight = st.max_inflight,
                                 .max_mixed = st.max_mixed,
                                 .modes = modes,
                                 .instance = st.instance,
                                 .recipes = recipes};
    struct executor execs[EXEC_KINDS] = {[EXEC_BLOCKING] = {exec_executors[EXEC_BLOCKING], blocking},
                                         [EXEC_ASYNC] = {exec_executors[EXEC_ASYNC], async},
                                         [EXEC_THREADS] = {exec_executors[EXEC_THREADS], threads}};
    srv.front = front_new(srv.loop, pool, http, execs, &fopt);
    if (!srv.front) {
        log_error("out of memory");
        goto out;
    }
    struct httpd_options hopt = {
        .bind = st.bind,
        .port = st.port,
        .conn_limit = (unsigned)st.max_connections,
        .conn_memory = HTTP_CONN_MEMORY,
        .conn_timeout_s = (unsigned)st.idle_timeout_s,
        .header_timeout_ms = st.header_timeout_ms,
        .per_ip_limit = (unsigned)st.max_conns_per_ip,
        .handler = front_handler,
        .handler_arg = srv.front,
        .completed = front_completed,
        .completed_arg = srv.front,
    };
    srv.httpd = httpd_start(srv.loop, &hopt, err, sizeof err);
    if (!srv.httpd) {
        log_error("%s", err);
        goto out;
    }
    front_attach(srv.front, srv.httpd);
    log_info("instance %s, kitchen %s, database %s, %d workers, db pool %d", st.instance ? st.instance : "(none)",
             kitchen, db->describe, st.workers, st.db_pool);
    proc_announce("coffee-server", st.bind, httpd_port(srv.httpd));
    rc = evloop_run(srv.loop) == 0 ? 0 : 1;

out:
    if (srv.loop)
        evloop_timer_stop(srv.loop, &srv.close_timer);
    httpd_free(srv.httpd);
    exec_blocking_free(blocking);       /* joins the workers */
    if (exec_threads_free(threads) > 0) /* they still post to the loop: end now, freeing nothing */
        return rc;
    sync_pool_free(threads_pool);
    sweep_free(sweep);
    front_free(srv.front);
    exec_async_free(async);
    recipes_free(recipes); /* after the executors: no order borrows a recipe */
    kc_service_free(kitchen_calls);
    brew_on_loop_free(loop_brew);
    brew_offload_free(offload);
    store_pgpool_free(store);
    curl_loop_free(http);
    pgpool_free(pool);
    watchdog_free(wd);
    evloop_free(srv.loop);
    db_config_free(db);
    flight_shutdown();
    curl_global_cleanup();
    return rc;
}
