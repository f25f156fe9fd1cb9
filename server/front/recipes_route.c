/* recipes_route: the recipes over HTTP and their table (see recipes_route.h).
 *
 * Owns: the book of stored recipes this server knows, and one struct rreq
 * per request it holds (a POST's body, a DELETE, a GET /recipes, a look-up
 * of a recipe named by another route), on rs->reqs from the handler's
 * first call to front_completed (recipes_completed frees it). A request
 * waits suspended while its statement runs; the statement's callback sets
 * the answer and resumes it; the handler, called again, queues it.
 * Must never: block, answer from a callback, or resume a connection twice. */
#include "recipes_route.h"

#include "clock.h"
#include "http_front.h"
#include "httpd.h"
#include "list.h"
#include "log.h"
#include "pgpool.h"
#include "probes.h" /* PROBE_QUERY_MS */
#include "recipe.h"
#include "report.h"
#include "workflow_json.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct recipes {
    struct pgpool *pool;
    struct recipe_book *book;
    struct list_node reqs; /* struct rreq alive */
};

enum rreq_kind {
    RR_POST,   /* POST /recipes: store the body's recipe */
    RR_DELETE, /* DELETE /recipes/NAME */
    RR_LIST,   /* GET /recipes: the table's recipes */
    RR_LOOKUP  /* another route names a recipe not known here: fetch it */
};

enum rreq_state {
    RR_READING, /* the request is being read (a POST's body) */
    RR_WAITING, /* suspended: its statement runs */
    RR_ANSWER,  /* resumed with an answer to queue */
    RR_REROUTE, /* resumed: the front routes it as usual now */
    RR_ANSWERED /* answer queued: waits for front_completed */
};

struct rreq {
    struct list_node link; /* on rs->reqs */
    struct recipes *rs;
    struct front *f;
    struct MHD_Connection *conn;
    enum rreq_kind kind;
    enum rreq_state state;
    char name[RECIPE_NAME_MAX + 1];
    char *body; /* RR_POST: what was read, NUL-terminated */
    size_t len;
    int too_big;
    struct recipe *parsed; /* RR_POST: stored in the book once the table has it */
    struct pgq q;
    struct db_stmt stmt;
    unsigned status; /* RR_ANSWER */
    char *answer;    /* RR_ANSWER: JSON text, owned */
};

struct recipes *recipes_new(struct pgpool *pool)
{
    struct recipes *rs = calloc(1, sizeof *rs);
    if (!rs)
        return NULL;
    rs->pool = pool;
    list_init(&rs->reqs);
    if (!(rs->book = recipe_book_new())) {
        free(rs);
        return NULL;
    }
    return rs;
}

void recipes_free(struct recipes *rs)
{
    if (!rs)
        return;
    recipe_book_free(rs->book);
    free(rs);
}

const struct recipe *front_recipe(struct front *f, const char *name)
{
    return recipe_book_find(front_recipes(f)->book, name);
}

void recipes_hold(struct recipes *rs, const struct recipe *r)
{
    recipe_book_hold(rs->book, r);
}
void recipes_release(struct recipes *rs, const struct recipe *r)
{
    recipe_book_release(rs->book, r);
}

enum MHD_Result recipes_respond_unknown(struct MHD_Connection *c, const char *name)
{
    char msg[160];
    snprintf(msg, sizeof msg, "no recipe called '%.40s': GET /recipes lists them", name);
    return httpd_respond_error(c, MHD_HTTP_NOT_FOUND, msg);
}

static enum MHD_Result respond_json(struct MHD_Connection *c, unsigned status, json_t *j)
{
    char *body = report_dumps(j);
    json_decref(j);
    if (!body)
        return httpd_respond_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
    return httpd_respond_take(c, status, body, strlen(body));
}

/* GET /workflow[?recipe=NAME][&scale=S]: the recipe's steps and the modes. */
static enum MHD_Result route_workflow(struct front *f, struct MHD_Connection *c, const struct query_arg *args,
                                      size_t nargs)
{
    double scale;
    const char *name;
    char err[200];
    if (params_workflow(args, nargs, &scale, &name, err, sizeof err) != 0)
        return httpd_respond_error(c, MHD_HTTP_BAD_REQUEST, err);
    const struct recipe *r = front_recipe(f, name);
    if (!r)
        return recipes_respond_unknown(c, name);
    struct wfjson_server server = {.default_scale = front_default_scale(f), .modes = front_modes(f)};
    return respond_json(c, MHD_HTTP_OK, wfjson_document(r, scale, &server));
}

enum MHD_Result recipes_route(struct front *f, struct MHD_Connection *c, const char *url, const struct query_arg *args,
                              size_t nargs)
{
    (void)url;
    return route_workflow(f, c, args, nargs);
}

/* ---- requests held ------------------------------------------------------- */

static void rreq_free(struct rreq *r)
{
    list_remove(&r->link);
    db_stmt_release(&r->stmt);
    recipe_free(r->parsed);
    free(r->body);
    free(r->answer);
    front_release(r->f);
    free(r);
}

/* Sets the answer (JSON text, taken; NULL = out of memory) and resumes r
 * if it waits (else the handler's call under way queues it). */
static void rreq_answer(struct rreq *r, unsigned status, char *answer)
{
    int waiting = r->state == RR_WAITING;
    r->state = RR_ANSWER;
    r->status = status;
    r->answer = answer;
    if (waiting)
        httpd_resume(front_httpd(r->f), r->conn);
}

static void rreq_error(struct rreq *r, unsigned status, const char *msg)
{
    rreq_answer(r, status, httpd_error_json(msg));
}

/* The statement failed: the database's 503, with what went wrong. */
static void rreq_unavailable(struct rreq *r, const char *err)
{
    char msg[300];
    snprintf(msg, sizeof msg, "database unavailable: %s", err ? err : "no answer");
    rreq_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, msg);
}

static void submit(struct rreq *r, const char *what, const char *sql, int nparams, pgq_cb cb)
{
    r->stmt.what = what;
    r->stmt.name = NULL;
    r->stmt.sql = sql;
    r->stmt.nparams = nparams;
    r->q = (struct pgq){
        .stmt = &r->stmt, .cls = PGQ_SHORT, .cb = cb, .wait_ms = PROBE_QUERY_MS, .timeout_ms = PROBE_QUERY_MS};
    r->state = RR_WAITING;
    MHD_suspend_connection(r->conn);
    pgpool_submit(r->rs->pool, &r->q);
}

/* Reads a stored body into the book (as of now). Returns it, or NULL. */
static const struct recipe *learn(struct recipes *rs, const char *body)
{
    char err[200];
    struct recipe *rec = recipe_parse(body, strlen(body), err, sizeof err);
    if (!rec) { /* written by an older or newer server: not ours to serve */
        log_warn("recipes: a stored recipe does not read: %s", err);
        return NULL;
    }
    const char *name = rec->name;
    char copy[RECIPE_NAME_MAX + 1];
    snprintf(copy, sizeof copy, "%s", name);
    if (recipe_book_put(rs->book, rec, (long long)clock_mono_ns()) != 0)
        return NULL;
    return recipe_book_find(rs->book, copy);
}

/* ---- POST /recipes --------------------------------------------------------- */

static void on_stored(struct pgq *q, int status, const PGresult *res, const char *err)
{
    (void)res;
    struct rreq *r = container_of(q, struct rreq, q);
    db_stmt_release(&r->stmt);
    if (status != PGQ_OK) {
        rreq_unavailable(r, err);
        return;
    }
    struct recipe *rec = r->parsed;
    r->parsed = NULL;
    int full = recipe_book_put(r->rs->book, rec, (long long)clock_mono_ns()) != 0;
    if (full) /* stored all the same: looked up again when asked for */
        log_warn("recipes: the book is full of recipes in use; %s is looked up when asked for", r->name);
    json_t *j = json_pack("{s:s, s:b}", "name", r->name, "stored", 1);
    rreq_answer(r, MHD_HTTP_CREATED, report_dumps(j));
    json_decref(j);
}

static void start_post(struct rreq *r)
{
    char err[240];
    if (r->too_big) {
        snprintf(err, sizeof err, "a recipe is at most %d bytes of JSON", RECIPE_JSON_MAX);
        rreq_error(r, MHD_HTTP_BAD_REQUEST, err);
        return;
    }
    r->parsed = recipe_parse(r->body ? r->body : "", r->len, err, sizeof err);
    if (!r->parsed) {
        rreq_error(r, MHD_HTTP_BAD_REQUEST, err);
        return;
    }
    snprintf(r->name, sizeof r->name, "%s", r->parsed->name);
    if (!(r->stmt.json = recipe_json(r->parsed))) {
        rreq_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
        return;
    }
    r->stmt.values[0] = r->name;
    r->stmt.values[1] = r->stmt.json;
    submit(r, "store recipe",
           "INSERT INTO recipes (name, body) VALUES ($1, $2::jsonb)"
           " ON CONFLICT (name) DO UPDATE SET body = EXCLUDED.body, created_at = now()",
           2, on_stored);
}

/* ---- DELETE /recipes/NAME -------------------------------------------------- */

static void on_deleted(struct pgq *q, int status, const PGresult *res, const char *err)
{
    struct rreq *r = container_of(q, struct rreq, q);
    if (status != PGQ_OK) {
        rreq_unavailable(r, err);
        return;
    }
    recipe_book_delete(r->rs->book, r->name); /* orders running keep it until they end */
    if (strcmp(PQcmdTuples((PGresult *)res), "0") == 0) {
        char msg[120];
        snprintf(msg, sizeof msg, "no stored recipe called '%s'", r->name);
        rreq_answer(r, MHD_HTTP_NOT_FOUND, httpd_error_json(msg));
        return;
    }
    json_t *j = json_pack("{s:s}", "deleted", r->name);
    rreq_answer(r, MHD_HTTP_OK, report_dumps(j));
    json_decref(j);
}

static void start_delete(struct rreq *r)
{
    if (!r->name[0]) {
        rreq_error(r, MHD_HTTP_NOT_FOUND, "no stored recipe by that name: a name is 1 to 32 letters, digits, _ or -");
        return;
    }
    r->stmt.values[0] = r->name;
    submit(r, "delete recipe", "DELETE FROM recipes WHERE name = $1", 1, on_deleted);
}

/* ---- GET /recipes ---------------------------------------------------------- */

/* One line of the list: name, lesson, builtin, steps, and its figures at
 * scale 1. Returns new. */
static json_t *summary(const struct recipe *r, int builtin)
{
    return json_pack("{s:s, s:s, s:b, s:i, s:f, s:f}", "name", r->name, "lesson", r->lesson, "builtin", builtin,
                     "steps", r->nsteps, "critical_path_ms", wf_critical_path_ms(r, 1.0), "sequential_ms",
                     wf_sequential_ms(r, 1.0));
}

/* The list: the built-ins, then the book's (refreshed from the table when
 * it answered); err says why the table did not. */
static char *list_json(struct recipes *rs, const char *err)
{
    json_t *list = json_array();
    for (int i = 0; list && i < wf_nrecipes; i++)
        if (json_array_append_new(list, summary(wf_recipes[i], 1)) != 0)
            goto fail;
    const char *names[RECIPE_BOOK_MAX];
    int n = recipe_book_names(rs->book, names, RECIPE_BOOK_MAX);
    for (int i = 0; list && i < n; i++)
        if (json_array_append_new(list, summary(recipe_book_find(rs->book, names[i]), 0)) != 0)
            goto fail;
    json_t *j = list ? json_pack("{s:o}", "recipes", list) : NULL;
    if (j && err)
        json_object_set_new(j, "error", json_string(err));
    char *text = report_dumps(j);
    json_decref(j);
    return text;
fail:
    json_decref(list);
    return NULL;
}

static void on_listed(struct pgq *q, int status, const PGresult *res, const char *err)
{
    struct rreq *r = container_of(q, struct rreq, q);
    char why[300] = "";
    if (status != PGQ_OK)
        snprintf(why, sizeof why, "the stored recipes are not listed: database unavailable: %s", err);
    for (int i = 0; status == PGQ_OK && i < PQntuples(res); i++)
        learn(r->rs, PQgetvalue(res, i, 0));
    rreq_answer(r, MHD_HTTP_OK, list_json(r->rs, why[0] ? why : NULL));
}

static void start_list(struct rreq *r)
{
    submit(r, "list recipes",
           "SELECT body::text FROM recipes ORDER BY name LIMIT "
           "64",
           0, on_listed);
}
_Static_assert(RECIPE_BOOK_MAX == 64, "the list's LIMIT is the book's size");

/* ---- a recipe named by another route --------------------------------------- */

static void on_fetched(struct pgq *q, int status, const PGresult *res, const char *err)
{
    struct rreq *r = container_of(q, struct rreq, q);
    if (status != PGQ_OK) {
        rreq_unavailable(r, err);
        return;
    }
    if (PQntuples(res) == 0) {
        recipe_book_delete(r->rs->book, r->name); /* deleted elsewhere */
        char msg[160];
        snprintf(msg, sizeof msg, "no recipe called '%.40s': GET /recipes lists them", r->name);
        rreq_answer(r, MHD_HTTP_NOT_FOUND, httpd_error_json(msg));
        return;
    }
    if (!learn(r->rs, PQgetvalue(res, 0, 0))) {
        rreq_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "the stored recipe could not be read (see the log)");
        return;
    }
    r->state = RR_REROUTE;
    httpd_resume(front_httpd(r->f), r->conn);
}

static void start_lookup(struct rreq *r)
{
    r->stmt.values[0] = r->name;
    submit(r, "get recipe", "SELECT body::text FROM recipes WHERE name = $1", 1, on_fetched);
}

/* ---- the hooks ------------------------------------------------------------- */

/* Which kind of request this module takes, or -1; name gets the recipe's. */
static int kind_of(struct recipes *rs, struct MHD_Connection *c, const char *url, const char *method, char *name)
{
    int get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    if (!strcmp(url, "/recipes") && !strcmp(method, "POST"))
        return RR_POST;
    if (!strcmp(url, "/recipes") && get)
        return RR_LIST;
    if (!strncmp(url, "/recipes/", 9) && !strcmp(method, "DELETE")) {
        if (recipe_name_ok(url + 9)) /* else "": a 404 */
            snprintf(name, RECIPE_NAME_MAX + 1, "%s", url + 9);
        return RR_DELETE;
    }
    int takes_recipe =
        !strcmp(url, "/make-coffee") || !strcmp(url, "/compare") || !strcmp(url, "/rush") || !strcmp(url, "/workflow");
    const char *v = get && takes_recipe ? MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "recipe") : NULL;
    if (!v || !recipe_name_ok(v) || wf_recipe_builtin(v))
        return -1; /* a bad name is the route's 400 */
    long long stamp = recipe_book_stamp(rs->book, v);
    if (stamp >= 0 && clock_mono_ns() - stamp < RECIPES_FRESH_MS * NS_PER_MS)
        return -1;
    snprintf(name, RECIPE_NAME_MAX + 1, "%s", v);
    return RR_LOOKUP;
}

static struct rreq *rreq_of(struct recipes *rs, void *ctx)
{
    for (struct list_node *n = rs->reqs.next; ctx && n != &rs->reqs; n = n->next)
        if (container_of(n, struct rreq, link) == ctx)
            return ctx;
    return NULL;
}

/* The handler's call for a request of ours. */
static int step(struct rreq *r, const char *data, size_t *size, void **con_cls, enum MHD_Result *res)
{
    *res = MHD_YES;
    switch (r->state) {
    case RR_READING:
        if (*size) { /* a piece of the body: keep it, up to the bound */
            if (r->kind == RR_POST && !r->too_big && r->len + *size <= RECIPE_JSON_MAX) {
                char *b = realloc(r->body, r->len + *size + 1);
                if (b) {
                    memcpy(b + r->len, data, *size);
                    r->body = b;
                    r->len += *size;
                    b[r->len] = '\0';
                }
                r->too_big |= !b;
            } else {
                r->too_big = 1;
            }
            *size = 0;
            return 1;
        }
        if (r->kind == RR_POST)
            start_post(r);
        else if (r->kind == RR_DELETE)
            start_delete(r);
        else if (r->kind == RR_LIST)
            start_list(r);
        else
            start_lookup(r);
        if (r->state != RR_ANSWER) /* else: answered at once, below */
            return 1;
        /* fall through */
    case RR_ANSWER: {
        char *answer = r->answer;
        r->answer = NULL;
        r->state = RR_ANSWERED;
        if (!answer) {
            *res = httpd_respond_error(r->conn, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
            return 1;
        }
        *res = httpd_respond_take(r->conn, r->status, answer, strlen(answer));
        return 1;
    }
    case RR_REROUTE:
        rreq_free(r);
        httpd_request_reread(con_cls);
        return 0;
    default:
        return 1; /* nothing to do until it is resumed */
    }
}

int recipes_intercept(struct front *f, struct MHD_Connection *c, const char *url, const char *method,
                      const char *upload_data, size_t *upload_data_size, void **con_cls, enum MHD_Result *res)
{
    struct recipes *rs = front_recipes(f);
    struct rreq *r = rreq_of(rs, *con_cls);
    if (r)
        return step(r, upload_data, upload_data_size, con_cls, res);
    if (*con_cls)
        return 0; /* the front's own, or its gate's */
    char name[RECIPE_NAME_MAX + 1] = "";
    int kind = kind_of(rs, c, url, method, name);
    if (kind < 0)
        return 0;
    if (front_closing(f)) {
        *res = httpd_respond_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "server is shutting down");
        return 1;
    }
    if (!(r = calloc(1, sizeof *r))) {
        *res = httpd_respond_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
        return 1;
    }
    *r = (struct rreq){.rs = rs, .f = f, .conn = c, .kind = (enum rreq_kind)kind, .state = RR_READING};
    memcpy(r->name, name, sizeof r->name);
    list_push_back(&rs->reqs, &r->link);
    front_hold(f); /* the drain waits for it */
    *con_cls = r;
    *res = MHD_YES;
    return 1;
}

int recipes_completed(struct front *f, void **con_cls)
{
    struct rreq *r = rreq_of(front_recipes(f), *con_cls);
    if (!r)
        return 0;
    *con_cls = NULL;
    if (r->state == RR_WAITING) { /* cannot happen while MHD honours suspension */
        log_error("recipes: request completed with its statement running; leaking it to stay safe");
        list_remove(&r->link);
        return 1;
    }
    rreq_free(r);
    return 1;
}
