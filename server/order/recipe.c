/* recipe: a teacher's recipe from JSON, checked, and the book of recipes
 * (see recipe.h).
 * Owns: each parsed recipe (one allocation: the table and its strings) and
 * the book's slots. Pure otherwise: no I/O, no clock. */
#include "recipe.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A recipe of recipe_parse: the struct recipe first, so that the pointer
 * handed out is this allocation's. */
struct own {
    struct recipe r;
    struct step_def steps[WF_MAX_STEPS];
    char name[RECIPE_NAME_MAX + 1];
    char lesson[RECIPE_LESSON_MAX + 1];
    char step_names[WF_MAX_STEPS][RECIPE_NAME_MAX + 1];
    char results[WF_MAX_STEPS][RECIPE_RESULT_MAX + 1];
};

static const char *const appliances[] = {"/kettle", "/grinder", "/toaster", "/task"};
#define NAPPLIANCES (sizeof appliances / sizeof appliances[0])

int recipe_name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > RECIPE_NAME_MAX)
        return 0;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_' ||
              *p == '-'))
            return 0;
    return 1;
}

/* What a task may answer: the kitchen's bound (printable ASCII but " and \). */
static int result_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > RECIPE_RESULT_MAX)
        return 0;
    for (; *s; s++)
        if (*s < 0x20 || *s > 0x7e || *s == '"' || *s == '\\')
            return 0;
    return 1;
}

/* One step as given, before the table is sorted. */
struct raw {
    const char *name, *calls, *returns;
    enum step_io io;
    double ms;
    unsigned after; /* bits of the given order */
};

static int read_step(json_t *s, int i, struct raw *out, char *err, size_t errlen)
{
    if (!json_is_object(s)) {
        snprintf(err, errlen, "steps[%d] must be an object", i);
        return -1;
    }
    json_t *name = json_object_get(s, "name"), *io = json_object_get(s, "io"), *ms = json_object_get(s, "planned_ms");
    json_t *calls = json_object_get(s, "calls"), *returns = json_object_get(s, "returns");
    if (!json_is_string(name) || !recipe_name_ok(json_string_value(name))) {
        snprintf(err, errlen, "steps[%d].name must be a string of 1 to %d letters, digits, _ or -", i, RECIPE_NAME_MAX);
        return -1;
    }
    out->name = json_string_value(name);
    const char *ios = json_is_string(io) ? json_string_value(io) : "";
    if (strcmp(ios, "http") != 0 && strcmp(ios, "sql") != 0) {
        snprintf(err, errlen, "step %s: io must be \"http\" or \"sql\"", out->name);
        return -1;
    }
    out->io = ios[0] == 'h' ? IO_HTTP : IO_SQL;
    double max = out->io == IO_SQL ? RECIPE_BREW_MS_MAX : RECIPE_STEP_MS_MAX;
    if (!json_is_number(ms) || !(json_number_value(ms) >= 0 && json_number_value(ms) <= max)) {
        snprintf(err, errlen, "step %s: planned_ms must be a number from 0 to %g (at scale 1)", out->name, max);
        return -1;
    }
    out->ms = json_number_value(ms);
    out->calls = json_is_string(calls) ? json_string_value(calls) : NULL;
    out->returns = NULL;
    if (returns && !json_is_null(returns)) {
        if (!json_is_string(returns) || !result_ok(json_string_value(returns))) {
            snprintf(err, errlen, "step %s: returns must be 1 to %d printable ASCII characters but \" and \\",
                     out->name, RECIPE_RESULT_MAX);
            return -1;
        }
        out->returns = json_string_value(returns);
    }
    if (out->io == IO_SQL) {
        if (out->calls && strcmp(out->calls, "brew_coffee") != 0) {
            snprintf(err, errlen, "step %s: an sql step calls \"brew_coffee\"", out->name);
            return -1;
        }
        if (out->returns) {
            snprintf(err, errlen, "step %s: brew_coffee says its own result: no \"returns\"", out->name);
            return -1;
        }
        return 0;
    }
    if (!out->calls)
        out->calls = "/task";
    int known = 0;
    for (size_t k = 0; k < NAPPLIANCES; k++)
        known |= !strcmp(out->calls, appliances[k]);
    if (!known) {
        snprintf(err, errlen, "step %s: an http step calls \"/task\", \"/kettle\", \"/grinder\" or \"/toaster\"",
                 out->name);
        return -1;
    }
    int task = !strcmp(out->calls, "/task");
    if (task != (out->returns != NULL)) {
        snprintf(err, errlen,
                 task ? "step %s: a /task needs \"returns\": what it answers"
                      : "step %s: an appliance says its own result: no \"returns\"",
                 out->name);
        return -1;
    }
    return 0;
}

static int index_of(const struct raw *raw, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(raw[i].name, name))
            return i;
    return -1;
}

static int read_after(json_t *s, struct raw *raw, int i, int n, char *err, size_t errlen)
{
    json_t *after = json_object_get(s, "after");
    if (!after || json_is_null(after))
        return 0;
    if (!json_is_array(after)) {
        snprintf(err, errlen, "step %s: after must be an array of step names", raw[i].name);
        return -1;
    }
    for (size_t k = 0; k < json_array_size(after); k++) {
        json_t *a = json_array_get(after, k);
        int j = json_is_string(a) ? index_of(raw, n, json_string_value(a)) : -1;
        if (j < 0) {
            snprintf(err, errlen, "step %s: after names an unknown step '%.32s'", raw[i].name,
                     json_is_string(a) ? json_string_value(a) : "(not a string)");
            return -1;
        }
        if (j == i) {
            snprintf(err, errlen, "step %s comes after itself: a cycle", raw[i].name);
            return -1;
        }
        raw[i].after |= 1u << j;
    }
    return 0;
}

/* Names a cycle among the steps left (each waits for another left). */
static void name_cycle(const struct raw *raw, int n, unsigned left, char *err, size_t errlen)
{
    int at = 0;
    while (!(left & (1u << at)))
        at++;
    /* Walk n steps along dependencies left: then at is on the cycle. */
    for (int k = 0; k < n; k++) {
        int next = 0;
        while (!(raw[at].after & left & (1u << next)))
            next++;
        at = next;
    }
    size_t off = (size_t)snprintf(err, errlen, "the steps wait for each other in a cycle: %s", raw[at].name);
    int from = at;
    do {
        int next = 0;
        while (!(raw[at].after & left & (1u << next)))
            next++;
        at = next;
        if (off < errlen)
            off += (size_t)snprintf(err + off, errlen - off, " after %s", raw[at].name);
    } while (at != from);
}

/* Orders the steps so each comes after those it waits for, keeping the
 * given order where it can (Kahn's, lowest index first): order[k] is the
 * k-th step's given index. -1 with the cycle named. */
static int sort_steps(const struct raw *raw, int n, int order[], char *err, size_t errlen)
{
    unsigned placed = 0, all = n >= 32 ? ~0u : (1u << n) - 1u;
    for (int k = 0; k < n; k++) {
        int pick = -1;
        for (int i = 0; i < n && pick < 0; i++)
            if (!(placed & (1u << i)) && (raw[i].after & placed) == raw[i].after)
                pick = i;
        if (pick < 0) {
            name_cycle(raw, n, all & ~placed, err, errlen);
            return -1;
        }
        order[k] = pick;
        placed |= 1u << pick;
    }
    return 0;
}

static void build(struct own *o, const struct raw *raw, int n, const int order[])
{
    int pos[WF_MAX_STEPS];
    for (int k = 0; k < n; k++)
        pos[order[k]] = k;
    for (int k = 0; k < n; k++) {
        const struct raw *s = &raw[order[k]];
        struct step_def *d = &o->steps[k];
        snprintf(o->step_names[k], sizeof o->step_names[k], "%s", s->name);
        d->name = o->step_names[k];
        d->io = s->io;
        d->planned_ms = s->ms;
        d->after = 0;
        for (int j = 0; j < n; j++)
            if (s->after & (1u << j))
                d->after |= 1u << pos[j];
        d->target = s->io == IO_HTTP ? s->calls : NULL;
        for (size_t a = 0; d->target && a < NAPPLIANCES; a++)
            if (!strcmp(d->target, appliances[a]))
                d->target = appliances[a]; /* static: the JSON goes away */
        d->result = NULL;
        if (s->returns) {
            snprintf(o->results[k], sizeof o->results[k], "%s", s->returns);
            d->result = o->results[k];
        }
    }
    o->r = (struct recipe){.name = o->name, .nsteps = n, .steps = o->steps, .lesson = o->lesson};
}

static struct recipe *parse_root(json_t *root, char *err, size_t errlen)
{
    if (!json_is_object(root)) {
        snprintf(err, errlen, "a recipe is a JSON object with name and steps");
        return NULL;
    }
    json_t *name = json_object_get(root, "name"), *steps = json_object_get(root, "steps");
    json_t *lesson = json_object_get(root, "lesson");
    if (!json_is_string(name) || !recipe_name_ok(json_string_value(name))) {
        snprintf(err, errlen, "name must be a string of 1 to %d letters, digits, _ or -", RECIPE_NAME_MAX);
        return NULL;
    }
    if (wf_recipe_builtin(json_string_value(name))) {
        snprintf(err, errlen, "'%s' is a built-in recipe: choose another name", json_string_value(name));
        return NULL;
    }
    if (lesson && !json_is_null(lesson) &&
        (!json_is_string(lesson) || json_string_length(lesson) > RECIPE_LESSON_MAX)) {
        snprintf(err, errlen, "lesson must be a string of at most %d bytes", RECIPE_LESSON_MAX);
        return NULL;
    }
    size_t n = json_array_size(steps);
    if (!json_is_array(steps) || n < 1 || n > WF_MAX_STEPS) {
        snprintf(err, errlen, "steps must be an array of 1 to %d steps%s", WF_MAX_STEPS,
                 json_is_array(steps) && n ? " (this one has more)" : "");
        return NULL;
    }
    struct raw raw[WF_MAX_STEPS] = {{0}};
    for (size_t i = 0; i < n; i++) {
        if (read_step(json_array_get(steps, i), (int)i, &raw[i], err, errlen) != 0)
            return NULL;
        if (index_of(raw, (int)i, raw[i].name) >= 0) {
            snprintf(err, errlen, "two steps are called %s: names must be unique", raw[i].name);
            return NULL;
        }
    }
    for (size_t i = 0; i < n; i++)
        if (read_after(json_array_get(steps, i), raw, (int)i, (int)n, err, errlen) != 0)
            return NULL;
    int order[WF_MAX_STEPS];
    if (sort_steps(raw, (int)n, order, err, errlen) != 0)
        return NULL;
    struct own *o = calloc(1, sizeof *o);
    if (!o) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    snprintf(o->name, sizeof o->name, "%s", json_string_value(name));
    snprintf(o->lesson, sizeof o->lesson, "%s", json_is_string(lesson) ? json_string_value(lesson) : "");
    build(o, raw, (int)n, order);
    return &o->r;
}

struct recipe *recipe_parse(const char *text, size_t len, char *err, size_t errlen)
{
    if (len > RECIPE_JSON_MAX) {
        snprintf(err, errlen, "a recipe is at most %d bytes of JSON", RECIPE_JSON_MAX);
        return NULL;
    }
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        snprintf(err, errlen, "not JSON: %s (line %d, column %d)", jerr.text, jerr.line, jerr.column);
        return NULL;
    }
    struct recipe *r = parse_root(root, err, errlen);
    json_decref(root);
    return r;
}

void recipe_free(struct recipe *r)
{
    free(r); /* the struct own it begins */
}

char *recipe_json(const struct recipe *r)
{
    json_t *steps = json_array();
    for (int i = 0; steps && i < r->nsteps; i++) {
        const struct step_def *s = &r->steps[i];
        json_t *after = json_array();
        for (int j = 0; after && j < r->nsteps; j++)
            if (s->after & (1u << j))
                json_array_append_new(after, json_string(r->steps[j].name));
        json_t *j = json_pack("{s:s, s:s, s:o, s:f, s:s}", "name", s->name, "io", wf_io_name(s->io), "after", after,
                              "planned_ms", s->planned_ms, "calls", s->io == IO_SQL ? "brew_coffee" : s->target);
        if (j && s->result)
            json_object_set_new(j, "returns", json_string(s->result));
        if (json_array_append_new(steps, j) != 0) {
            json_decref(steps);
            return NULL;
        }
    }
    json_t *root = steps ? json_pack("{s:s, s:s, s:o}", "name", r->name, "lesson", r->lesson, "steps", steps) : NULL;
    char *text = root ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    return text;
}

/* ---- the book ------------------------------------------------------------ */

struct slot {
    struct recipe *r; /* NULL: free */
    int deleted;      /* not found any more; freed when no order holds it */
    int held;         /* orders borrowing it */
    long long stamp;  /* recipe_book_put's */
};

struct recipe_book {
    struct slot slots[RECIPE_BOOK_MAX];
};

struct recipe_book *recipe_book_new(void)
{
    return calloc(1, sizeof(struct recipe_book));
}

void recipe_book_free(struct recipe_book *b)
{
    if (!b)
        return;
    for (int i = 0; i < RECIPE_BOOK_MAX; i++)
        recipe_free(b->slots[i].r);
    free(b);
}

static struct slot *slot_named(const struct recipe_book *b, const char *name)
{
    for (int i = 0; i < RECIPE_BOOK_MAX; i++) {
        const struct slot *s = &b->slots[i];
        if (s->r && !s->deleted && !strcmp(s->r->name, name))
            return (struct slot *)s;
    }
    return NULL;
}

static struct slot *slot_of(const struct recipe_book *b, const struct recipe *r)
{
    for (int i = 0; r && i < RECIPE_BOOK_MAX; i++)
        if (b->slots[i].r == r)
            return (struct slot *)&b->slots[i];
    return NULL;
}

/* Frees s's recipe if it is deleted and no order holds it. */
static void slot_reclaim(struct slot *s)
{
    if (s->r && s->deleted && s->held == 0) {
        recipe_free(s->r);
        *s = (struct slot){0};
    }
}

const struct recipe *recipe_book_find(const struct recipe_book *b, const char *name)
{
    const struct recipe *r = wf_recipe_builtin(name);
    if (r || !b)
        return r;
    struct slot *s = slot_named(b, name);
    return s ? s->r : NULL;
}

int recipe_book_delete(struct recipe_book *b, const char *name)
{
    struct slot *s = slot_named(b, name);
    if (!s)
        return 0;
    s->deleted = 1;
    slot_reclaim(s);
    return 1;
}

long long recipe_book_stamp(const struct recipe_book *b, const char *name)
{
    struct slot *s = b ? slot_named(b, name) : NULL;
    return s ? s->stamp : -1;
}

int recipe_book_put(struct recipe_book *b, struct recipe *r, long long stamp)
{
    recipe_book_delete(b, r->name);
    for (int i = 0; i < RECIPE_BOOK_MAX; i++) {
        if (!b->slots[i].r) {
            b->slots[i] = (struct slot){.r = r, .stamp = stamp};
            return 0;
        }
    }
    for (int i = 0; i < RECIPE_BOOK_MAX; i++) {
        if (b->slots[i].held == 0 && !b->slots[i].deleted) {
            recipe_free(b->slots[i].r);
            b->slots[i] = (struct slot){.r = r, .stamp = stamp};
            return 0;
        }
    }
    recipe_free(r);
    return -1;
}

void recipe_book_hold(struct recipe_book *b, const struct recipe *r)
{
    struct slot *s = b ? slot_of(b, r) : NULL;
    if (s)
        s->held++;
}

void recipe_book_release(struct recipe_book *b, const struct recipe *r)
{
    struct slot *s = b ? slot_of(b, r) : NULL;
    if (s && s->held > 0) {
        s->held--;
        slot_reclaim(s);
    }
}

int recipe_book_names(const struct recipe_book *b, const char **names, int max)
{
    int n = 0;
    for (int i = 0; b && i < RECIPE_BOOK_MAX && n < max; i++)
        if (b->slots[i].r && !b->slots[i].deleted)
            names[n++] = b->slots[i].r->name;
    return n;
}
