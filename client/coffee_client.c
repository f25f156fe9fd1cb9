/* coffee-client: the project's load client. Checks that the server is up,
 * then either runs N orders per mode at concurrency C and prints the modes
 * side by side (table and timelines), or calls /compare once and draws the
 * two orders it answers. Only wires things together: fetch.c keeps the
 * requests in flight, tally.c reads the answers, render.c draws them.
 * Never exits from below main: every failure comes back as a return code. */
#include "clock.h"
#include "config.h"
#include "fetch.h"
#include "hgrm.h"
#include "openloop.h"
#include "params.h"
#include "proc.h"
#include "recipe.h"
#include "render.h"
#include "tally.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum {
    EXIT_ALL_OK = 0,     /* every order answered 200 and done */
    EXIT_FAILED = 1,     /* an order failed, the server answered errors, or we ran out of memory */
    EXIT_USAGE = 2,      /* bad flags or environment */
    EXIT_UNREACHABLE = 3 /* GET /livez did not answer 200 */
};

#define MAX_BODY (1024 * 1024) /* an order's JSON is ~1 KB; anything near this is wrong */
#define PROBE_TIMEOUT_MS 5000L
#define URL_MAX 1024
#define OPENLOOP_MAX_RATE 100000.0
#define OPENLOOP_INFLIGHT 1000 /* a send past this waits, charged from its intended time */

struct settings {
    const char *url;
    const char *mode;   /* blocking, async or both */
    const char *recipe; /* the server's recipe to order (GET /recipes) */
    int orders;
    int concurrency;
    double scale;
    int timeout_ms;
    int width;
    int compare;
    int json;
    int ascii;
    const char *rate; /* open loop: "R" or "a:b:step", or NULL */
    double duration_s;
    const char *arrivals;
    const char *hgrm; /* prefix of the .hgrm files to write, or NULL */
    double rates[OPENLOOP_MAX_RATES];
    int nrates;
    char base[URL_MAX];            /* url without its trailing slashes */
    char rq[RECIPE_NAME_MAX + 16]; /* "&recipe=NAME", or "" for coffee */
};

static const char usage_head[] =
    "usage: coffee-client [options]\n"
    "Load client of coffee-server: runs orders in the blocking and the async mode and prints them side by\n"
    "side (latencies, errors, time per step, and a timeline of one order of each mode).\n"
    "Exit status: 0 all orders ok; 1 an order failed or the server answered errors; 2 bad usage;\n"
    "3 the server cannot be reached.";

/* Parses flags and environment into st and checks what the table cannot.
 * Returns CONFIG_OK, CONFIG_HELP, or CONFIG_ERROR after printing why. */
static int parse_settings(struct settings *st, int argc, char **argv)
{
    const struct opt opts[] = {
        {"url", "COFFEE_URL", OPT_STRING, &st->url, 0, 0, "base URL of coffee-server"},
        {"mode", "COFFEE_MODE", OPT_STRING, &st->mode, 0, 0,
         "blocking, async, naive, mixed, threads, offload, or both (blocking then async)"},
        {"recipe", "COFFEE_RECIPE", OPT_STRING, &st->recipe, 0, 0,
         "the recipe to order: coffee, gather, create_tasks, hello, or one posted to /recipes"},
        {"orders", "COFFEE_ORDERS", OPT_INT, &st->orders, 1, 100000, "orders per mode"},
        {"concurrency", "COFFEE_CONCURRENCY", OPT_INT, &st->concurrency, 1, 100000,
         "requests kept in flight (raise ulimit -n for more than ~1000)"},
        {"scale", "COFFEE_SCALE", OPT_DOUBLE, &st->scale, 0, SCALE_MAX,
         "multiplies every step's duration (1 = 3 s of boiling)"},
        {"timeout-ms", "COFFEE_TIMEOUT_MS", OPT_INT, &st->timeout_ms, 1, 3600000, "per-request timeout"},
        {"width", "COFFEE_WIDTH", OPT_INT, &st->width, RENDER_MIN_WIDTH, RENDER_MAX_WIDTH,
         "terminal columns for the timelines"},
        {"compare", "COFFEE_COMPARE", OPT_FLAG, &st->compare, 0, 1,
         "call /compare once and draw its two orders side by side (ignores --orders, --concurrency, --mode)"},
        {"json", "COFFEE_JSON", OPT_FLAG, &st->json, 0, 1, "print the results as one JSON document"},
        {"ascii", "COFFEE_ASCII", OPT_FLAG, &st->ascii, 0, 1, "draw bars with '#' and '.' instead of blocks"},
        {"rate", "COFFEE_RATE", OPT_STRING, &st->rate, 0, 0,
         "open loop: send R orders/s at fixed intended times for --duration (ignores --orders, --concurrency), "
         "latency measured from each intended send time; a:b:step sweeps the rates"},
        {"duration", "COFFEE_DURATION", OPT_DOUBLE, &st->duration_s, 0.1, 3600, "open loop: seconds per rate and mode"},
        {"arrivals", "COFFEE_ARRIVALS", OPT_STRING, &st->arrivals, 0, 0, "open loop: uniform or poisson"},
        {"hgrm", "COFFEE_HGRM", OPT_STRING, &st->hgrm, 0, 0,
         "write each mode's latencies as HdrHistogram's percentile distribution (what wrk2 --latency prints and "
         "HdrHistogram's plotter loads) to PREFIX-MODE.hgrm; open loop: PREFIX-MODE[-RATE].hgrm, corrected, and "
         "PREFIX-MODE[-RATE]-uncorrected.hgrm"},
    };
    char err[300];
    int rc = config_parse(opts, sizeof opts / sizeof opts[0], argc, argv, usage_head, err, sizeof err);
    if (rc != CONFIG_OK) {
        if (rc == CONFIG_ERROR)
            fprintf(stderr, "coffee-client: %s\n", err);
        return rc;
    }
    if (strcmp(st->mode, "both") != 0 && wf_mode_lookup(st->mode) < 0) {
        fprintf(stderr, "coffee-client: --mode: '%s' is not one of %s, both\n", st->mode, wf_mode_names());
        return CONFIG_ERROR;
    }
    if (!recipe_name_ok(st->recipe)) {
        fprintf(stderr, "coffee-client: --recipe: '%s' is not a recipe's name (1 to %d letters, digits, _ or -)\n",
                st->recipe, RECIPE_NAME_MAX);
        return CONFIG_ERROR;
    }
    if (strcmp(st->recipe, "coffee") != 0)
        snprintf(st->rq, sizeof st->rq, "&recipe=%s", st->recipe);
    if (strncmp(st->url, "http://", 7) != 0 && strncmp(st->url, "https://", 8) != 0) {
        fprintf(stderr, "coffee-client: --url: '%s' does not start with http:// or https://\n", st->url);
        return CONFIG_ERROR;
    }
    if (strcmp(st->arrivals, "uniform") != 0 && strcmp(st->arrivals, "poisson") != 0) {
        fprintf(stderr, "coffee-client: --arrivals: '%s' is not uniform or poisson\n", st->arrivals);
        return CONFIG_ERROR;
    }
    if (st->rate) {
        char rerr[160];
        st->nrates = openloop_parse_rates(st->rate, OPENLOOP_MAX_RATE, st->rates, rerr, sizeof rerr);
        if (st->nrates < 0) {
            fprintf(stderr, "coffee-client: %s\n", rerr);
            return CONFIG_ERROR;
        }
    }
    size_t len = strlen(st->url);
    while (len > 0 && st->url[len - 1] == '/')
        len--;
    /* Room for the longest path and query we append. */
    if (len + 64 >= sizeof st->base || strchr(st->url, '?') || strchr(st->url, '#')) {
        fprintf(stderr, "coffee-client: --url: '%s' is too long or has a query\n", st->url);
        return CONFIG_ERROR;
    }
    memcpy(st->base, st->url, len);
    st->base[len] = '\0';
    return CONFIG_OK;
}

/* ---- one request ------------------------------------------------------------- */

/* The outcome of a single GET, with its body copied out. */
struct answer {
    struct fetch_result r; /* its body and len point at body below */
    char *body;            /* owned; freed by answer_free */
    char errmsg[200];      /* transport failure in words, or "" */
};

static int on_answer(const struct fetch_result *r, void *arg)
{
    struct answer *a = arg;
    a->body = malloc(r->len + 1);
    if (!a->body)
        return -1;
    memcpy(a->body, r->body, r->len);
    a->body[r->len] = '\0';
    a->r = *r;
    a->r.body = a->body;
    if (r->code != CURLE_OK)
        fetch_strerror(r, a->errmsg, sizeof a->errmsg);
    return 0;
}

static void answer_free(struct answer *a)
{
    free(a->body);
    a->body = NULL;
}

/* GETs base + path into a. Returns 0 when there was an outcome (answer or
 * transport failure, see a->errmsg), or -1 after printing why not. */
static int get_one(const char *url, long timeout_ms, struct answer *a)
{
    struct fetch_options opt = {.concurrency = 1, .timeout_ms = timeout_ms, .max_body = MAX_BODY};
    char err[200];
    memset(a, 0, sizeof *a);
    if (fetch_run(url, 1, &opt, on_answer, a, err, sizeof err) != 0) {
        fprintf(stderr, "coffee-client: %s\n", err);
        answer_free(a);
        return -1;
    }
    return 0;
}

/* GET /livez: is anything there, and is it a live coffee-server? */
static int probe(const struct settings *st)
{
    char url[URL_MAX + 16];
    struct answer a;
    snprintf(url, sizeof url, "%s/livez", st->base);
    long timeout = st->timeout_ms < PROBE_TIMEOUT_MS ? st->timeout_ms : PROBE_TIMEOUT_MS;
    if (get_one(url, timeout, &a) != 0)
        return EXIT_FAILED;
    int rc = EXIT_ALL_OK;
    if (a.errmsg[0]) {
        fprintf(stderr, "coffee-client: cannot reach %s: %s\n", st->base, a.errmsg);
        rc = EXIT_UNREACHABLE;
    } else if (a.r.status != 200) {
        fprintf(stderr, "coffee-client: %s answered HTTP %ld: is coffee-server running there?\n", url, a.r.status);
        rc = EXIT_UNREACHABLE;
    }
    answer_free(&a);
    return rc;
}

/* ---- --compare ------------------------------------------------------------------- */

/* Prints the /compare page: header, lesson, both timelines, the steps. */
static void print_compare(const struct settings *st, const struct render_style *rs, const json_t *doc,
                          const struct timeline tl[2], const struct step_names *names, double client_ms)
{
    const char *dot = render_dot(rs);
    const json_t *speedup = json_object_get(doc, "speedup");
    printf("\n  coffee-server at %s %s /compare %s scale %g %s answered in %.0f ms\n", st->base, dot, dot, st->scale,
           dot, client_ms);
    printf("  one order of each mode, started at the same moment\n\n");
    printf("  %s %.1f ms   %s   %s %.1f ms   %s   ", tl[0].title, tl[0].v->elapsed_ms, dot, tl[1].title,
           tl[1].v->elapsed_ms, dot);
    if (json_is_number(speedup))
        printf("speedup %.2fx (%.0f ms saved)\n", json_number_value(speedup),
               tl[0].v->elapsed_ms - tl[1].v->elapsed_ms);
    else
        printf("speedup -\n");
    if (!st->rq[0])
        printf("  async overlaps the waits: boil and grind at once, brew and toast at once\n\n");
    else
        printf("  recipe %s: async overlaps the waits its steps allow; blocking adds them up\n\n", st->recipe);
    render_side_by_side(rs, tl, names);
    fputc('\n', stdout);
}

static int run_compare(const struct settings *st, const struct render_style *rs)
{
    char url[URL_MAX + 128];
    struct answer a;
    snprintf(url, sizeof url, "%s/compare?scale=%.15g%s", st->base, st->scale, st->rq);
    if (get_one(url, st->timeout_ms, &a) != 0)
        return EXIT_FAILED;
    int rc = EXIT_FAILED;
    char msg[200];
    json_t *doc = NULL;
    if (a.errmsg[0]) {
        fprintf(stderr, "coffee-client: GET %s: %s\n", url, a.errmsg);
        goto free_answer;
    }
    doc = json_loads(a.body, 0, NULL);
    if (!json_is_object(doc)) {
        fprintf(stderr, "coffee-client: GET %s answered HTTP %ld without a JSON object\n", url, a.r.status);
        goto free_doc;
    }
    struct step_names names = {0};
    struct order_view views[2];
    struct timeline tl[2] = {{"blocking", &views[0]}, {"async", &views[1]}};
    int parsed = 1;
    for (int i = 0; i < 2 && parsed; i++)
        parsed = order_view_parse(json_object_get(doc, tl[i].title), &names, &views[i], msg, sizeof msg) == 0;
    int all_done = parsed && views[0].done && views[1].done;
    if (st->json) {
        if (json_object_set_new(doc, "url", json_string(st->base)) != 0 ||
            json_object_set_new(doc, "client_ms", json_real(a.r.latency_ms)) != 0 ||
            json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(10)) != 0) {
            fprintf(stderr, "coffee-client: cannot write the JSON document\n");
            goto free_doc;
        }
        fputc('\n', stdout);
    } else if (parsed) {
        print_compare(st, rs, doc, tl, &names, a.r.latency_ms);
    }
    if (a.r.status != 200 || !all_done) {
        const char *why = json_string_value(json_object_get(doc, "error"));
        fprintf(stderr, "coffee-client: /compare answered HTTP %ld: %s\n", a.r.status,
                why      ? why
                : parsed ? "an order did not finish"
                         : msg);
        goto free_doc;
    }
    rc = EXIT_ALL_OK;
free_doc:
    json_decref(doc);
free_answer:
    answer_free(&a);
    return rc;
}

/* ---- --rate: open loop ---------------------------------------------------------- */

static double us_ms(uint64_t us)
{
    return (double)us / 1000.0;
}

static json_t *hist_json(const struct hist *h)
{
    return json_pack("{s:f, s:f, s:f, s:f, s:f, s:f, s:f}", "p50", us_ms(hist_percentile(h, 50)), "p90",
                     us_ms(hist_percentile(h, 90)), "p99", us_ms(hist_percentile(h, 99)), "p99.9",
                     us_ms(hist_percentile(h, 99.9)), "max", us_ms(hist_percentile(h, 100)), "mean",
                     hist_mean(h) / 1000.0, "rel_error", HIST_REL_ERROR);
}

static void print_openloop_row(const char *mode, double rate, const struct openloop_result *r)
{
    const struct hist *l = &r->latency;
    const struct hist *u = &r->uncorrected;
    printf("  %8.1f  %-9s %6llu %6llu %5llu %9.1f %9.1f %9.1f %9.1f %9.1f %9.1f %9.1f %9.1f %9.1f %8.1f\n", rate, mode,
           (unsigned long long)r->sent, (unsigned long long)r->ok, (unsigned long long)r->failed,
           us_ms(hist_percentile(l, 50)), us_ms(hist_percentile(l, 90)), us_ms(hist_percentile(l, 99)),
           us_ms(hist_percentile(l, 99.9)), us_ms(hist_percentile(l, 100)), us_ms(hist_percentile(u, 50)),
           us_ms(hist_percentile(u, 99)), us_ms(hist_percentile(&r->server, 50)),
           us_ms(hist_percentile(&r->server, 99)), us_ms(hist_percentile(&r->send_lag, 100)));
    fflush(stdout);
}

/* Runs every rate for every mode; text rows as they come, or one JSON
 * document at the end. */
static int run_openloop(const struct settings *st)
{
    static const char *const both[] = {"blocking", "async"};
    const char *one[] = {st->mode};
    const char *const *modes = strcmp(st->mode, "both") ? one : both;
    int nm = strcmp(st->mode, "both") ? 1 : 2;
    struct openloop_result *res = malloc(sizeof *res);
    json_t *runs = st->json ? json_array() : NULL;
    int rc = EXIT_FAILED;
    if (!res || (st->json && !runs)) {
        fprintf(stderr, "coffee-client: out of memory\n");
        goto out;
    }
    if (!st->json) {
        printf("coffee-client: open loop, %s arrivals, %g s per rate and mode, scale %g, against %s\n"
               "  latency from each order's intended send time (coordinated omission corrected), ms; unc = from\n"
               "  its actual send time (uncorrected, wrk2's -U); percentiles from a log-linear histogram within\n"
               "  %.1f%%; srv = the elapsed_ms the server reported\n\n",
               st->arrivals, st->duration_s, st->scale, st->base, 100 * HIST_REL_ERROR);
        printf("  %8s  %-9s %6s %6s %5s %9s %9s %9s %9s %9s %9s %9s %9s %9s %8s\n", "rate/s", "mode", "sent", "ok",
               "fail", "p50", "p90", "p99", "p99.9", "max", "unc p50", "unc p99", "srv p50", "srv p99", "lag max");
    }
    rc = EXIT_ALL_OK;
    for (int k = 0; k < st->nrates; k++) {
        for (int i = 0; i < nm; i++) {
            char url[URL_MAX + 128], err[200];
            snprintf(url, sizeof url, "%s/make-coffee?mode=%s&scale=%.15g%s", st->base, modes[i], st->scale, st->rq);
            struct openloop_options o = {.url = url,
                                         .rate = st->rates[k],
                                         .duration_s = st->duration_s,
                                         .kind = strcmp(st->arrivals, "poisson") ? ARRIVE_UNIFORM : ARRIVE_POISSON,
                                         .seed = (uint64_t)(k * 2 + i + 1),
                                         .timeout_ms = st->timeout_ms,
                                         .max_inflight = OPENLOOP_INFLIGHT};
            if (openloop_run(&o, res, err, sizeof err) != 0) {
                fprintf(stderr, "coffee-client: %s at %g/s: %s\n", modes[i], st->rates[k], err);
                rc = EXIT_FAILED;
                goto out;
            }
            if (res->failed) {
                rc = EXIT_FAILED;
                fprintf(stderr, "coffee-client: %s at %g/s: %llu failed, e.g. %s\n", modes[i], st->rates[k],
                        (unsigned long long)res->failed, res->first_error);
            }
            double rate_tag = st->nrates > 1 ? st->rates[k] : -1;
            if (st->hgrm && (hgrm_write(st->hgrm, modes[i], rate_tag, NULL, &res->latency) != 0 ||
                             hgrm_write(st->hgrm, modes[i], rate_tag, "uncorrected", &res->uncorrected) != 0)) {
                rc = EXIT_FAILED;
                goto out;
            }
            if (!st->json) {
                print_openloop_row(modes[i], st->rates[k], res);
            } else {
                json_t *j = json_pack("{s:s, s:f, s:I, s:I, s:I, s:f, s:o, s:o, s:o, s:o}", "mode", modes[i], "rate",
                                      st->rates[k], "sent", (json_int_t)res->sent, "ok", (json_int_t)res->ok, "failed",
                                      (json_int_t)res->failed, "wall_ms", res->wall_ms, "latency_ms",
                                      hist_json(&res->latency), "uncorrected_latency_ms", hist_json(&res->uncorrected),
                                      "server_ms", hist_json(&res->server), "send_lag_ms", hist_json(&res->send_lag));
                if (json_array_append_new(runs, j) != 0) {
                    fprintf(stderr, "coffee-client: out of memory\n");
                    rc = EXIT_FAILED;
                    goto out;
                }
            }
        }
    }
    if (st->json) {
        json_t *doc = json_pack("{s:s, s:f, s:s, s:f, s:O}", "url", st->base, "scale", st->scale, "arrivals",
                                st->arrivals, "duration_s", st->duration_s, "runs", runs);
        if (!doc || json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(10)) != 0) {
            fprintf(stderr, "coffee-client: cannot write the JSON document\n");
            rc = EXIT_FAILED;
        }
        fputc('\n', stdout);
        json_decref(doc);
    }
out:
    json_decref(runs);
    free(res);
    return rc;
}

/* ---- the load run ---------------------------------------------------------------- */

struct progress {
    struct tally *t;
    size_t n;
    int show; /* stderr is a terminal */
};

static int on_order(const struct fetch_result *r, void *arg)
{
    struct progress *p = arg;
    if (tally_add(p->t, r) != 0)
        return -1;
    if (p->show)
        fprintf(stderr, "\r  %s: %zu/%zu answered, %zu ok ", p->t->mode, p->t->total, p->n, p->t->ok);
    return 0;
}

/* Runs st->orders orders of t->mode. Returns 0, or -1 after printing why. */
static int run_mode(const struct settings *st, struct tally *t)
{
    char url[URL_MAX + 128], err[200];
    snprintf(url, sizeof url, "%s/make-coffee?mode=%s&scale=%.15g%s", st->base, t->mode, st->scale, st->rq);
    struct fetch_options opt = {.concurrency = st->concurrency, .timeout_ms = st->timeout_ms, .max_body = MAX_BODY};
    struct progress p = {.t = t, .n = (size_t)st->orders, .show = isatty(STDERR_FILENO)};
    int64_t t0 = clock_mono_ns();
    int rc = fetch_run(url, (size_t)st->orders, &opt, on_order, &p, err, sizeof err);
    if (p.show)
        fprintf(stderr, "\r\033[K");
    tally_finish(t, ns_to_ms(clock_mono_ns() - t0));
    if (rc != 0)
        fprintf(stderr, "coffee-client: %s mode: %s\n", t->mode, err);
    return rc;
}

/* Prints the tallies as one JSON document. Returns 0 or -1. */
static int print_json(const struct settings *st, struct tally *t, int nt)
{
    json_t *modes = json_array();
    for (int i = 0; modes && i < nt; i++) {
        if (json_array_append_new(modes, tally_json(&t[i])) != 0) {
            json_decref(modes);
            modes = NULL;
        }
    }
    /* "o" steals modes even when packing fails; NULL makes it fail. */
    json_t *doc = json_pack("{s:s, s:f, s:i, s:i, s:i, s:o}", "url", st->base, "scale", st->scale, "orders", st->orders,
                            "concurrency", st->concurrency, "timeout_ms", st->timeout_ms, "modes", modes);
    int rc = doc && json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(10)) == 0 ? 0 : -1;
    json_decref(doc);
    if (rc == 0)
        fputc('\n', stdout);
    else
        fprintf(stderr, "coffee-client: cannot build the JSON document (out of memory)\n");
    return rc;
}

static void print_text(const struct render_style *rs, struct tally *t, int nt, const struct step_names *names)
{
    const struct tally *cols[2] = {&t[0], nt > 1 ? &t[1] : NULL};
    struct timeline tl[2];
    int ntl = 0;
    printf("\n");
    render_summary(rs, cols, nt, names);
    for (int i = 0; i < nt; i++) {
        const struct order_view *v = tally_median_order(&t[i]);
        if (v)
            tl[ntl++] = (struct timeline){t[i].mode, v};
    }
    if (ntl == 0) {
        printf("\n  no order succeeded: no timeline to draw\n");
        return;
    }
    printf("\n  the median order of %s, on one time axis:\n\n", ntl > 1 ? "each mode" : "the run");
    render_timelines(rs, tl, ntl, names);
}

/* Every order of a mode answered 404: most likely --url is not a
 * coffee-server (the kitchen answers /livez too). */
static void hint_wrong_server(const struct settings *st, const struct tally *t)
{
    for (int k = 0; k < t->nkinds; k++) {
        if (t->total > 0 && t->kinds[k].count == t->total && !strcmp(t->kinds[k].kind, "HTTP 404")) {
            fprintf(stderr, "coffee-client: every %s order answered HTTP 404: is %s a coffee-server?\n", t->mode,
                    st->base);
            return;
        }
    }
}

static int run_load(const struct settings *st, const struct render_style *rs)
{
    static const char *const both[] = {"blocking", "async"};
    const char *one[] = {st->mode};
    const char *const *modes = strcmp(st->mode, "both") ? one : both;
    int nt = strcmp(st->mode, "both") ? 1 : 2;
    struct step_names names = {0};
    struct tally t[2] = {{0}};
    int rc = EXIT_FAILED;

    for (int i = 0; i < nt; i++) {
        if (tally_init(&t[i], modes[i], (size_t)st->orders, &names) != 0) {
            fprintf(stderr, "coffee-client: out of memory for %d orders\n", st->orders);
            goto free_tallies;
        }
    }
    if (!st->json) {
        printf("coffee-client: %d order%s per mode, %d at a time, scale %g, against %s\n", st->orders,
               st->orders == 1 ? "" : "s", st->concurrency, st->scale, st->base);
        fflush(stdout);
    }
    for (int i = 0; i < nt; i++)
        if (run_mode(st, &t[i]) != 0 || (st->hgrm && tally_write_hgrm(st->hgrm, &t[i]) != 0))
            goto free_tallies;
    if (st->json) {
        if (print_json(st, t, nt) != 0)
            goto free_tallies;
    } else {
        print_text(rs, t, nt, &names);
    }
    rc = EXIT_ALL_OK;
    for (int i = 0; i < nt; i++) {
        if (t[i].ok < t[i].total)
            rc = EXIT_FAILED;
        hint_wrong_server(st, &t[i]);
    }
free_tallies:
    for (int i = 0; i < nt; i++)
        tally_free(&t[i]);
    return rc;
}

int main(int argc, char **argv)
{
    struct settings st = {
        .url = "http://127.0.0.1:8080",
        .mode = "both",
        .recipe = "coffee",
        .orders = 20,
        .concurrency = 4,
        .scale = 0.25,
        .timeout_ms = 60000,
        .width = 100,
        .duration_s = 10,
        .arrivals = "uniform",
    };
    int rc = parse_settings(&st, argc, argv);
    if (rc != CONFIG_OK)
        return rc == CONFIG_HELP ? EXIT_ALL_OK : EXIT_USAGE;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "coffee-client: cannot initialise libcurl\n");
        return EXIT_FAILED;
    }
    /* One socket per request in flight, plus a few. */
    int want = (st.rate ? OPENLOOP_INFLIGHT : st.concurrency) + 64;
    int nofile = proc_raise_nofile(want);
    if (nofile < want)
        fprintf(stderr, "coffee-client: warning: the file descriptor limit is %d; --concurrency %d may fail\n", nofile,
                st.concurrency);
    struct render_style rs = {.out = stdout, .width = st.width, .ascii = st.ascii};
    rc = probe(&st);
    if (rc == EXIT_ALL_OK)
        rc = st.compare ? run_compare(&st, &rs) : st.rate ? run_openloop(&st) : run_load(&st, &rs);
    curl_global_cleanup();
    return rc;
}
