/* tally: parsing order timelines and summing up a mode's run (see tally.h).
 * Owns the latency and view arrays of each tally (freed in tally_free) and
 * nothing else: documents are the caller's, borrowed only for the duration
 * of a call. Does no I/O. */
#include "tally.h"

#include "stats.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- one order ---------------------------------------------------------- */

/* Reads the number at key: 0 when it is a number, 1 when null or absent,
 * -1 when it has another type. */
static int get_ms(const json_t *j, const char *key, double *out)
{
    const json_t *v = json_object_get(j, key);
    if (!v || json_is_null(v))
        return 1;
    if (!json_is_number(v))
        return -1;
    *out = json_number_value(v);
    return 0;
}

/* Index of name in names, added when new; -1 when the table is full. */
static int name_index(struct step_names *names, const char *name, const char *io)
{
    for (int i = 0; i < names->n; i++)
        if (!strcmp(names->name[i], name))
            return i;
    if (names->n == TALLY_MAX_STEPS)
        return -1;
    snprintf(names->name[names->n], TALLY_NAME_MAX, "%s", name);
    snprintf(names->io[names->n], sizeof names->io[0], "%s", io ? io : "?");
    return names->n++;
}

static int step_parse(const json_t *js, struct step_names *names, struct step_view *s, char *err, size_t errlen)
{
    const char *name = json_string_value(json_object_get(js, "name"));
    if (!name) {
        snprintf(err, errlen, "a step has no name");
        return -1;
    }
    s->name = name_index(names, name, json_string_value(json_object_get(js, "io")));
    if (s->name < 0) {
        snprintf(err, errlen, "more than %d different steps", TALLY_MAX_STEPS);
        return -1;
    }
    int a = get_ms(js, "start_ms", &s->start_ms), b = get_ms(js, "end_ms", &s->end_ms),
        c = get_ms(js, "queued_ms", &s->queued_ms);
    if (a < 0 || b < 0 || c < 0) {
        snprintf(err, errlen, "step %s: a time is not a number", name);
        return -1;
    }
    s->started = a == 0;
    s->ended = b == 0 && s->started;
    if (c != 0 || !s->started)
        s->queued_ms = 0;
    s->state = json_string_value(json_object_get(js, "state"));
    s->result = json_string_value(json_object_get(js, "result"));
    /* Older answers have no state: a result means the step is done. */
    s->done = s->state ? !strcmp(s->state, "done") : s->result != NULL;
    return 0;
}

int order_view_parse(const json_t *j, struct step_names *names, struct order_view *v, char *err, size_t errlen)
{
    memset(v, 0, sizeof *v);
    v->critical_ms = v->sequential_ms = v->queued_ms = -1;
    const json_t *id = json_object_get(j, "order_id");
    const char *status = json_string_value(json_object_get(j, "status"));
    const json_t *steps = json_object_get(j, "steps");
    if (!json_is_object(j) || !json_is_array(steps)) {
        snprintf(err, errlen, "not an order: no steps");
        return -1;
    }
    v->id = json_is_integer(id) ? (long long)json_integer_value(id) : 0;
    if (get_ms(j, "elapsed_ms", &v->elapsed_ms) != 0) {
        snprintf(err, errlen, "not an order: no elapsed_ms");
        return -1;
    }
    if (get_ms(j, "queued_ms", &v->queued_ms) < 0 || get_ms(j, "critical_path_ms", &v->critical_ms) < 0 ||
        get_ms(j, "sequential_ms", &v->sequential_ms) < 0) {
        snprintf(err, errlen, "an order's time is not a number");
        return -1;
    }
    if (json_array_size(steps) > TALLY_MAX_STEPS) {
        snprintf(err, errlen, "more than %d steps", TALLY_MAX_STEPS);
        return -1;
    }
    size_t i;
    const json_t *js;
    json_array_foreach(steps, i, js)
    {
        if (step_parse(js, names, &v->step[i], err, errlen) != 0)
            return -1;
        v->nsteps++;
    }
    v->done = status && !strcmp(status, "done");
    return 0;
}

static json_t *ms_or_null(int present, double ms)
{
    return present ? json_real(ms) : json_null();
}

json_t *order_view_json(const struct order_view *v, const struct step_names *names)
{
    json_t *steps = json_array();
    for (int i = 0; steps && i < v->nsteps; i++) {
        const struct step_view *s = &v->step[i];
        json_t *js = json_pack("{s:s, s:o, s:f, s:o}", "name", names->name[s->name], "start_ms",
                               ms_or_null(s->started, s->start_ms), "queued_ms", s->queued_ms, "end_ms",
                               ms_or_null(s->ended, s->end_ms));
        if (json_array_append_new(steps, js) != 0) {
            json_decref(steps);
            steps = NULL;
        }
    }
    return json_pack("{s:I, s:f, s:f, s:o, s:o}", "order_id", (json_int_t)v->id, "latency_ms", v->latency_ms,
                     "elapsed_ms", v->elapsed_ms, "queued_ms", ms_or_null(v->queued_ms >= 0, v->queued_ms), "steps",
                     steps);
}

/* ---- one mode's run ----------------------------------------------------- */

int tally_init(struct tally *t, const char *mode, size_t n, struct step_names *names)
{
    memset(t, 0, sizeof *t);
    t->mode = mode;
    t->names = names;
    t->cap = n;
    t->lat = calloc(n ? n : 1, sizeof *t->lat);
    t->views = calloc(n ? n : 1, sizeof *t->views);
    if (!t->lat || !t->views) {
        tally_free(t);
        return -1;
    }
    return 0;
}

void tally_free(struct tally *t)
{
    free(t->lat);
    free(t->views);
    t->lat = NULL;
    t->views = NULL;
}

void tally_error(struct tally *t, const char *kind, const char *example)
{
    int i;
    for (i = 0; i < t->nkinds; i++)
        if (!strcmp(t->kinds[i].kind, kind))
            break;
    if (i == t->nkinds) {
        if (t->nkinds == TALLY_MAX_KINDS) {
            i = TALLY_MAX_KINDS - 1; /* the last kind becomes "other" */
            snprintf(t->kinds[i].kind, sizeof t->kinds[i].kind, "other");
        } else {
            t->nkinds++;
            snprintf(t->kinds[i].kind, sizeof t->kinds[i].kind, "%s", kind);
            snprintf(t->kinds[i].example, sizeof t->kinds[i].example, "%s", example ? example : "");
        }
    }
    t->kinds[i].count++;
}

const char *tally_error_message(const char *body, char *buf, size_t len)
{
    buf[0] = '\0';
    json_t *j = json_loads(body, 0, NULL);
    const char *msg = json_string_value(json_object_get(j, "error"));
    if (msg)
        snprintf(buf, len, "%s", msg);
    json_decref(j);
    return buf;
}

int tally_gap_is_big(double latency_ms, double elapsed_ms)
{
    double gap = latency_ms - elapsed_ms;
    return gap > 50 && gap > 0.05 * latency_ms;
}

/* Records an ok order's view and sums. */
static void add_ok(struct tally *t, const struct order_view *v, double latency_ms)
{
    struct order_view *kept = &t->views[t->ok];
    *kept = *v;
    kept->latency_ms = latency_ms;
    for (int i = 0; i < kept->nsteps; i++) {
        struct step_view *s = &kept->step[i];
        s->state = s->result = NULL; /* the document goes away */
        if (s->started && s->ended) {
            t->step_sum[s->name] += s->end_ms - s->start_ms;
            t->step_n[s->name]++;
        }
    }
    t->queued_sum += v->queued_ms > 0 ? v->queued_ms : 0;
    t->elapsed_sum += v->elapsed_ms;
    double gap = latency_ms - v->elapsed_ms;
    t->gap_sum += gap;
    if (gap > t->gap_max)
        t->gap_max = gap;
    t->gap_big += tally_gap_is_big(latency_ms, v->elapsed_ms) != 0;
    t->lat[t->ok++] = latency_ms;
}

/* Checks an answered 200 and records it as ok or as an error. */
static void add_answer(struct tally *t, const struct fetch_result *r)
{
    json_error_t je;
    json_t *j = json_loadb(r->body, r->len, 0, &je);
    if (!j) {
        tally_error(t, "bad answer", je.text);
        return;
    }
    struct order_view v;
    char err[160];
    const char *mode = json_string_value(json_object_get(j, "mode"));
    if (order_view_parse(j, t->names, &v, err, sizeof err) != 0) {
        tally_error(t, "bad answer", err);
    } else if (!v.done) {
        const char *status = json_string_value(json_object_get(j, "status"));
        snprintf(err, sizeof err, "order %lld answered 200 with status '%s'", v.id, status ? status : "(none)");
        tally_error(t, "order not done", err);
    } else if (!mode || strcmp(mode, t->mode) != 0) {
        snprintf(err, sizeof err, "asked for %s, got %s", t->mode, mode ? mode : "no mode");
        tally_error(t, "wrong mode", err);
    } else {
        add_ok(t, &v, r->latency_ms);
    }
    json_decref(j);
}

int tally_add(struct tally *t, const struct fetch_result *r)
{
    if (t->total == t->cap)
        return -1;
    t->total++;
    char msg[160], kind[40];
    if (r->code != CURLE_OK) {
        fetch_strerror(r, msg, sizeof msg);
        if (r->code == CURLE_OPERATION_TIMEDOUT)
            snprintf(kind, sizeof kind, "timeout");
        else
            snprintf(kind, sizeof kind, "%.39s", msg);
        kind[0] = (char)tolower((unsigned char)kind[0]);
        tally_error(t, kind, msg);
    } else if (r->status != 200) {
        snprintf(kind, sizeof kind, "HTTP %ld", r->status);
        tally_error(t, kind, tally_error_message(r->body, msg, sizeof msg));
    } else {
        add_answer(t, r);
    }
    return 0;
}

void tally_finish(struct tally *t, double wall_ms)
{
    t->wall_ms = wall_ms;
    stats_sort(t->lat, t->ok);
}

double tally_percentile(const struct tally *t, double p)
{
    return stats_percentile(t->lat, t->ok, p, -1);
}

const struct order_view *tally_median_order(const struct tally *t)
{
    double p50 = tally_percentile(t, 50);
    const struct order_view *best = NULL;
    for (size_t i = 0; i < t->ok; i++)
        if (!best || fabs(t->views[i].latency_ms - p50) < fabs(best->latency_ms - p50))
            best = &t->views[i];
    return best;
}

double tally_step_mean(const struct tally *t, int name)
{
    return t->step_n[name] ? t->step_sum[name] / (double)t->step_n[name] : -1;
}

static json_t *num_or_null(double v)
{
    return v >= 0 ? json_real(v) : json_null();
}

json_t *tally_json(const struct tally *t)
{
    json_t *errors = json_array(), *steps = json_object();
    for (int i = 0; errors && i < t->nkinds; i++) {
        const struct err_kind *k = &t->kinds[i];
        if (json_array_append_new(errors, json_pack("{s:s, s:I, s:s}", "kind", k->kind, "count", (json_int_t)k->count,
                                                    "example", k->example)) != 0) {
            json_decref(errors);
            errors = NULL;
        }
    }
    for (int i = 0; steps && i < t->names->n; i++) {
        if (json_object_set_new(steps, t->names->name[i], num_or_null(tally_step_mean(t, i))) != 0) {
            json_decref(steps);
            steps = NULL;
        }
    }
    const struct order_view *median = tally_median_order(t);
    double n = (double)t->ok;
    json_t *latency =
        t->ok ? json_pack("{s:f, s:f, s:f, s:f}", "p50", tally_percentile(t, 50), "p90", tally_percentile(t, 90), "p99",
                          tally_percentile(t, 99), "max", tally_percentile(t, 100))
              : json_null();
    json_t *gap =
        t->ok ? json_pack("{s:f, s:f, s:I}", "mean", t->gap_sum / n, "max", t->gap_max, "large", (json_int_t)t->gap_big)
              : json_null();
    return json_pack("{s:s, s:I, s:I, s:f, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "mode", t->mode, "ok",
                     (json_int_t)t->ok, "total", (json_int_t)t->total, "wall_ms", t->wall_ms, "orders_per_s",
                     num_or_null(t->wall_ms > 0 ? n / (t->wall_ms / 1e3) : -1), "latency_ms", latency, "errors", errors,
                     "step_mean_ms", steps, "mean_queued_ms", num_or_null(t->ok ? t->queued_sum / n : -1),
                     "mean_elapsed_ms", num_or_null(t->ok ? t->elapsed_sum / n : -1), "client_minus_server_ms", gap,
                     "median_order", median ? order_view_json(median, t->names) : json_null());
}
