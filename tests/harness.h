/* harness: what the integration tests share. Starts the real programs on
 * free ports (they announce the port on stdout), talks HTTP to them with
 * libcurl and reads the database with libpq. Blocking on purpose: tests
 * are clients, not the system under test. */
#ifndef COFFEE_HARNESS_H
#define COFFEE_HARNESS_H

#include <CUnit/CUnit.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <sys/types.h>

struct child {
    pid_t pid;
    int port;
    char base_url[64];
};

/* Starts COFFEE_BIN_DIR/prog with args (NULL-terminated; --port 0 is
 * added) and waits up to 10 s for its "listening on" line. 0 or -1. */
int child_start(struct child *c, const char *prog, const char *const args[]);
/* child_start with the program's stderr appended to the file log_path
 * (created if missing; NULL = the test's stderr). 0 or -1. */
int child_start_log(struct child *c, const char *prog, const char *const args[], const char *log_path);
/* Waits up to timeout_s for c's /readyz to answer 200. 0 or -1. */
int child_wait_ready(const struct child *c, int timeout_s);
/* Sends SIGTERM and waits up to timeout_s; SIGKILL after. Returns the
 * exit status (0..255), or -1 if it had to be killed or died of a signal. */
int child_stop(struct child *c, int timeout_s);
/* Sends sig (SIGTERM, SIGKILL, ...) and waits up to timeout_ms for the
 * exit; *ms (may be NULL) gets how long it took. Returns the exit status,
 * or -1 if it had to be killed or died of a signal. */
int child_stop_within(struct child *c, int sig, int timeout_ms, double *ms);
/* Threads of the process now (from /proc/PID/status), or -1. */
int child_threads(const struct child *c);

/* A kitchen and a server wired to it and to DATABASE_URL. */
struct stack {
    struct child kitchen;
    struct child server;
};
/* Extra arguments for the kitchen of the next stack_start (NULL-terminated),
 * or NULL (the default). */
extern const char *const *harness_kitchen_args;
/* A file that the stderr of servers started by server_start (and
 * stack_start) is appended to, or NULL (the default: the test's stderr). */
extern const char *harness_server_log;
/* Starts a server wired to kitchen and DATABASE_URL with extra args
 * (NULL-terminated, may be NULL); waits until /readyz answers 200 with the
 * whole pool connected (up to 15 s). 0 or -1. */
int server_start(struct child *server, const struct child *kitchen, const char *const server_args[]);
/* Starts both; extra server args (NULL-terminated) may be NULL. Waits until
 * /readyz answers 200 (up to 15 s). 0 or -1. */
int stack_start(struct stack *s, const char *const server_args[]);
/* Stops both (the server unless a test stopped it already); returns 0 if
 * both exited 0, and says which did not on stderr. */
int stack_stop(struct stack *s);
/* Suite set-up on a stack: stack_start, then a database connection in
 * *db for checking rows. 0 or -1 (CUnit then skips the suite's tests). */
int stack_setup(struct stack *s, const char *const server_args[], PGconn **db);
/* Suite tear-down: closes db, stops the stack. 0 if both exited 0. */
int stack_teardown(struct stack *s, PGconn *db);

struct http_result {
    long status;     /* 0 on transport error */
    char *body;      /* malloc'd, NUL-terminated */
    double total_ms; /* client-measured */
    char content_type[64];
    char retry_after[16];
};
/* GET url. 0 on transport success (any status), -1 otherwise. */
int http_get(const char *url, struct http_result *r);
/* POST body (len bytes, as JSON) to url. 0 on transport success. */
int http_post(const char *url, const char *body, size_t len, struct http_result *r);
/* Any method, for 405 checks. */
int http_request(const char *method, const char *url, struct http_result *r);
void http_result_free(struct http_result *r);
/* GET url and parse the body as JSON (new reference, or NULL). */
json_t *http_get_json(const char *url, long *status);
/* GET /make-coffee?mode=M&scale=S on server: its JSON (new, NULL if none),
 * its HTTP status (0 without an answer) and, when ms is not NULL, the
 * client's wait. */
json_t *make_coffee(const struct child *server, const char *mode, double scale, long *status, double *ms);
/* GETs first, then second on the same curl handle. Returns 1 if both
 * answered 200 and the second reused the first's connection (HTTP
 * keep-alive), 0 if it had to connect again, -1 on a failure. */
int http_keepalive(const char *first, const char *second);
/* GETs n urls all at once (curl multi) and fills results[i]. 0 or -1. */
int http_get_many(const char *const *urls, int n, struct http_result *results);

/* GETs of several urls at once, run on a thread of their own so that the
 * test can act while they are in flight. */
#define HTTP_BATCH_MAX 16
struct http_batch {
    int n;
    const char *urls[HTTP_BATCH_MAX]; /* borrowed */
    struct http_result res[HTTP_BATCH_MAX];
    pthread_t thread;
};
/* Starts b's n GETs on a new thread. 0 or -1. */
int http_batch_start(struct http_batch *b);
/* Waits until every GET of b ended; then b->res holds the answers. */
void http_batch_wait(struct http_batch *b);
/* The value of one sample of the server's /metrics, the series given
 * exactly as it appears (name and labels), or NaN if absent or no answer. */
double http_metric(const struct child *server, const char *series);
/* Reads /proc/PID/stat into buf (len bytes) and returns what follows the
 * command's closing parenthesis (state, ppid, ...), or NULL. */
const char *proc_stat_after_comm(long pid, char *buf, size_t len);
/* The process's resident set size (VmRSS, kB), or -1. */
long child_rss_kb(const struct child *c);
/* The process's open file descriptors (/proc/PID/fd), or -1. */
int child_fds(const struct child *c);

/* A connection to DATABASE_URL, or NULL (CU assertion message printed). */
PGconn *db_open(void);
/* The status of order id's row into out ("" when it has none). */
void db_row_status(PGconn *db, long long id, char *out, size_t len);
/* The one number a query answers (SELECT count(*) ...), or -1. */
long db_count(PGconn *db, const char *sql);
/* pg_terminate_backend of the backends that `where` (an SQL condition on
 * pg_stat_activity, e.g. "application_name = 'coffee-server'") selects,
 * all at once, then polls until their processes have exited (their
 * sockets closed; the tests run on the cluster's machine), up to
 * timeout_ms. Returns
 * how many were terminated, or -1; *left (if not NULL) how many were still
 * there at the end (0: all gone). The selection is MATERIALIZED first: in
 * a WHERE beside the condition the planner may run pg_terminate_backend
 * on every backend, db's own too. */
long db_terminate(PGconn *db, const char *where, long timeout_ms, long *left);
/* The pid of the postmaster of db's cluster (from its data directory's
 * postmaster.pid; the tests run as its owner or root), or -1. */
int db_postmaster_pid(PGconn *db);
/* Sends sig to the postmaster and every process it started: SIGSTOP
 * freezes the database as a hung host would (no RST, no FIN), SIGCONT
 * thaws it. 0 or -1. */
int db_cluster_signal(int postmaster, int sig);

struct harness_test {
    const char *name;
    void (*fn)(void);
};
/* Registers one suite with tests (ending in {NULL, NULL}), runs it and
 * returns the process exit code: 0 only if every test ran and passed. */
int harness_main(const char *suite, CU_InitializeFunc setup, CU_CleanupFunc teardown, const struct harness_test *tests);

/* Runs fn(arg) in a forked child (stderr silenced): 1 if it aborted
 * (SIGABRT: a failed CHECK), 0 if it returned, -1 if fork failed. For the
 * run-time preconditions of check.h; only from a single-threaded test. */
int harness_aborts(void (*fn)(void *), void *arg);

/* How many times slower than a plain build this build runs the service
 * (the server is built with the same flags as the test): 1, 3 under
 * AddressSanitizer, 4 under ThreadSanitizer; COFFEE_TIMING_SLACK (>= 1)
 * overrides it. Only upper time bounds are multiplied by it: lower bounds
 * (a wait really took its time) and structural checks never are. */
double harness_slowdown(void);
/* A timing tolerance: ms * harness_slowdown(). */
double harness_slack(double ms);

/* Orders one coffee of mode at scale from server: 1 if it answered 200 and
 * the order is done, else 0. */
int order_done(const struct child *server, const char *mode, double scale);

/* Convenience: number from a JSON object path, NaN if absent. */
double jnum(const json_t *obj, const char *key);
/* Convenience: string from a JSON object (borrowed), NULL if absent. */
const char *jstr(const json_t *obj, const char *key);
/* The step called name in an order's "steps" array (borrowed) or NULL. */
json_t *jstep(const json_t *order, const char *name);

#endif
