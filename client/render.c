/* render: tables and timelines as text (see render.h).
 * A bar row is an array of cells, each one glyph (one column wide), filled
 * by time spans and printed between two '|'. Every timeline drawn in one
 * call shares one axis, so equal lengths mean equal times. Owns nothing;
 * never allocates: rows live in fixed buffers bounded by RENDER_MAX_WIDTH. */
#include "render.h"

#include <math.h>
#include <string.h>
#include <strings.h>

struct glyphs {
    const char *io, *queued, *failed, *guide, *guide_end, *dot;
};

static const struct glyphs glyphs_utf8 = {"\u2588", "\u2591", "\u2593", "\u2500", "\u2524", "\u00b7"};
static const struct glyphs glyphs_ascii = {"#", ".", "x", "-", "+", "-"};

static const struct glyphs *glyphs_of(const struct render_style *st)
{
    return st->ascii ? &glyphs_ascii : &glyphs_utf8;
}

const char *render_dot(const struct render_style *st)
{
    return glyphs_of(st)->dot;
}

#define WAIT_ROW "waiting to start"
#define LABEL_W 20 /* room right of a stacked bar for "1234.5-12345.6 ms" */
#define GAP 4      /* between side-by-side bars */

/* ---- text helpers --------------------------------------------------------- */

/* Display columns of a UTF-8 string whose characters are one column wide. */
static int columns(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

/* Prints s cut or padded to exactly w columns. */
static void put_padded(FILE *out, const char *s, int w)
{
    int n = 0;
    for (; *s && n < w; n++) {
        const char *next = s + 1;
        while (((unsigned char)*next & 0xC0) == 0x80)
            next++;
        fwrite(s, 1, (size_t)(next - s), out);
        s = next;
    }
    fprintf(out, "%*s", w - n, "");
}

/* Copies s into line at pos (no NUL), within len. */
static void put_at(char *line, int len, int pos, const char *s)
{
    for (int i = 0; s[i] && pos + i < len; i++)
        if (pos + i >= 0)
            line[pos + i] = s[i];
}

static int name_width(const struct step_names *names)
{
    int w = (int)strlen(WAIT_ROW);
    for (int i = 0; i < names->n; i++)
        if ((int)strlen(names->name[i]) > w)
            w = (int)strlen(names->name[i]);
    return w + 2;
}

static int clamp(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* ---- bars ----------------------------------------------------------------- */

struct bar {
    int w;
    double axis_ms; /* the time at the right edge */
    const char *cell[RENDER_MAX_WIDTH];
};

static void bar_init(struct bar *b, int w, double axis_ms)
{
    b->w = w;
    b->axis_ms = axis_ms;
    for (int i = 0; i < w; i++)
        b->cell[i] = " ";
}

static int bar_col(const struct bar *b, double ms)
{
    double x = ms / b->axis_ms * b->w;
    return x <= 0 ? 0 : x >= b->w ? b->w : (int)lround(x);
}

/* Paints [from, to) with glyph; visible spans get at least one cell when
 * min1, so that a 1 ms step on a 4 s axis still shows. */
static void bar_span(struct bar *b, double from, double to, const char *glyph, int min1)
{
    if (!(to > from))
        return;
    int c0 = bar_col(b, from), c1 = bar_col(b, to);
    if (min1 && c1 <= c0) {
        c0 = c0 >= b->w ? b->w - 1 : c0;
        c1 = c0 + 1;
    }
    for (int c = c0; c < c1; c++)
        b->cell[c] = glyph;
}

static void bar_print(FILE *out, const struct bar *b)
{
    fputc('|', out);
    for (int i = 0; i < b->w; i++)
        fputs(b->cell[i], out);
    fputc('|', out);
}

/* A guide from 0 to ms ending in a tick: the critical path, all in a row. */
static void bar_guide(struct bar *b, const struct glyphs *g, double ms)
{
    bar_span(b, 0, ms, g->guide, 1);
    int end = bar_col(b, ms);
    b->cell[clamp(end - 1, 0, b->w - 1)] = g->guide_end;
}

static const struct step_view *find_step(const struct order_view *v, int name)
{
    for (int i = 0; v && i < v->nsteps; i++)
        if (v->step[i].name == name)
            return &v->step[i];
    return NULL;
}

/* Paints one step: queued time, then I/O (or a failure) to its end. */
static void bar_step(struct bar *b, const struct glyphs *g, const struct step_view *s)
{
    if (!s || !s->started || !s->ended)
        return;
    double io_from = s->start_ms + s->queued_ms;
    if (io_from > s->end_ms)
        io_from = s->end_ms;
    bar_span(b, s->start_ms, io_from, g->queued, 0);
    bar_span(b, io_from, s->end_ms, s->done ? g->io : g->failed, 1);
}

/* When the first step started: the time before it is the order's wait for
 * a worker (blocking) and the recording of the order. */
static double first_start(const struct order_view *v)
{
    double t = -1;
    for (int i = 0; v && i < v->nsteps; i++)
        if (v->step[i].started && (t < 0 || v->step[i].start_ms < t))
            t = v->step[i].start_ms;
    return t < 0 ? 0 : t;
}

/* Largest time any timeline reaches, rounded up to two significant digits
 * so the axis labels read well. */
static double axis_for(const struct timeline tl[], int n)
{
    double m = 0;
    for (int i = 0; i < n; i++) {
        const struct order_view *v = tl[i].v;
        if (!v)
            continue;
        m = fmax(m, fmax(v->elapsed_ms, fmax(v->critical_ms, v->sequential_ms)));
        for (int k = 0; k < v->nsteps; k++)
            if (v->step[k].ended)
                m = fmax(m, v->step[k].end_ms);
    }
    if (!(m > 0))
        return 1;
    double unit = pow(10, floor(log10(m)) - 1);
    return ceil(m / unit - 1e-9) * unit;
}

/* Writes the axis labels (0, the middle, the end) over a bar of width w
 * into line, which holds w + 2 characters and a NUL. */
static void axis_labels(char *line, int w, double axis_ms)
{
    int len = w + 2;
    char mid[32], end[40];
    memset(line, ' ', (size_t)len);
    line[len] = '\0';
    snprintf(mid, sizeof mid, "%g", axis_ms / 2);
    snprintf(end, sizeof end, "%g ms", axis_ms);
    int end_at = len - (int)strlen(end), mid_at = 1 + w / 2 - (int)strlen(mid) / 2;
    put_at(line, len, 1, "0");
    if (mid_at > 2 && mid_at + (int)strlen(mid) < end_at - 1)
        put_at(line, len, mid_at, mid);
    put_at(line, len, end_at > 2 ? end_at : 2, end);
}

static int any_failed(const struct timeline tl[], int n)
{
    for (int i = 0; i < n; i++)
        for (int k = 0; tl[i].v && k < tl[i].v->nsteps; k++)
            if (tl[i].v->step[k].ended && !tl[i].v->step[k].done)
                return 1;
    return 0;
}

/* Whether the wait before the first step is worth a row: one cell or more. */
static int wait_visible(const struct timeline tl[], int n, double axis_ms, int w)
{
    for (int i = 0; i < n; i++)
        if (tl[i].v && first_start(tl[i].v) >= axis_ms / w)
            return 1;
    return 0;
}

/* Prints the legend's items, wrapped to the terminal's width. */
static void legend(const struct render_style *st, const struct timeline tl[], int n)
{
    const struct glyphs *g = glyphs_of(st);
    char items[4][96];
    int nitems = 0;
    snprintf(items[nitems++], sizeof items[0], "%s I/O", g->io);
    snprintf(items[nitems++], sizeof items[0], "%s waiting for a turn (worker or db connection)", g->queued);
    if (any_failed(tl, n))
        snprintf(items[nitems++], sizeof items[0], "%s failed or abandoned", g->failed);
    snprintf(items[nitems++], sizeof items[0], "%s%s critical path / all steps in a row", g->guide, g->guide_end);
    int col = 0;
    for (int i = 0; i < nitems; i++) {
        int w = columns(items[i]);
        if (col > 0 && col + 3 + w > st->width) {
            fputc('\n', st->out);
            col = 0;
        }
        fputs(col ? "   " : "  ", st->out);
        col += col ? 3 : 2;
        fputs(items[i], st->out);
        col += w;
    }
    fputc('\n', st->out);
}

/* ---- stacked timelines ------------------------------------------------------ */

static void print_row(const struct render_style *st, int namew, const char *name, const struct bar *b,
                      const char *label)
{
    fprintf(st->out, "  %-*s", namew, name);
    bar_print(st->out, b);
    fprintf(st->out, " %s\n", label);
}

static void step_label(const struct step_view *s, char *buf, size_t len)
{
    if (!s || !s->started)
        snprintf(buf, len, "not started");
    else if (!s->ended)
        snprintf(buf, len, "%.1f- ms", s->start_ms);
    else
        snprintf(buf, len, "%.1f-%.1f ms%s", s->start_ms, s->end_ms, s->done ? "" : " failed");
}

static void stacked_block(const struct render_style *st, const struct timeline *t, const struct step_names *names,
                          int namew, int w, double axis_ms, int show_wait)
{
    const struct glyphs *g = glyphs_of(st);
    const struct order_view *v = t->v;
    char line[RENDER_MAX_WIDTH + 8], label[64];
    struct bar b;
    fprintf(st->out, "  %s %s order %lld %s server %.1f ms", t->title, g->dot, v->id, g->dot, v->elapsed_ms);
    if (v->latency_ms > 0)
        fprintf(st->out, " %s client waited %.1f ms%s", g->dot, v->latency_ms,
                tally_gap_is_big(v->latency_ms, v->elapsed_ms) ? " (waited for the loop before the server saw it)"
                                                               : "");
    if (v->queued_ms >= 0.05)
        fprintf(st->out, " %s queued %.1f ms", g->dot, v->queued_ms);
    axis_labels(line, w, axis_ms);
    fprintf(st->out, "\n  %-*s%s\n", namew, "", line);
    if (show_wait) {
        bar_init(&b, w, axis_ms);
        bar_span(&b, 0, first_start(v), g->queued, 0);
        snprintf(label, sizeof label, "0-%.1f ms", first_start(v));
        print_row(st, namew, WAIT_ROW, &b, label);
    }
    for (int k = 0; k < names->n; k++) {
        const struct step_view *s = find_step(v, k);
        bar_init(&b, w, axis_ms);
        bar_step(&b, g, s);
        step_label(s, label, sizeof label);
        print_row(st, namew, names->name[k], &b, label);
    }
}

void render_timelines(const struct render_style *st, const struct timeline tl[], int n, const struct step_names *names)
{
    const struct glyphs *g = glyphs_of(st);
    int namew = name_width(names);
    int w = clamp(st->width - 2 - namew - 3 - LABEL_W, 10, RENDER_MAX_WIDTH);
    double axis_ms = axis_for(tl, n);
    int show_wait = wait_visible(tl, n, axis_ms, w);
    const struct order_view *ref = NULL;
    for (int i = 0; i < n; i++) {
        if (!tl[i].v)
            continue;
        stacked_block(st, &tl[i], names, namew, w, axis_ms, show_wait);
        fputc('\n', st->out);
        ref = tl[i].v;
    }
    if (!ref)
        return;
    struct bar b;
    char label[64];
    if (ref->critical_ms > 0) {
        bar_init(&b, w, axis_ms);
        bar_guide(&b, g, ref->critical_ms);
        snprintf(label, sizeof label, "%.1f ms", ref->critical_ms);
        print_row(st, namew, "critical path", &b, label);
    }
    if (ref->sequential_ms > 0) {
        bar_init(&b, w, axis_ms);
        bar_guide(&b, g, ref->sequential_ms);
        snprintf(label, sizeof label, "%.1f ms", ref->sequential_ms);
        print_row(st, namew, "all in a row", &b, label);
    }
    legend(st, tl, n);
}

/* ---- side by side ------------------------------------------------------------ */

static void pair_row(const struct render_style *st, int namew, const char *name, const struct bar b[2])
{
    fprintf(st->out, "  %-*s", namew, name);
    bar_print(st->out, &b[0]);
    fprintf(st->out, "%*s", GAP, "");
    bar_print(st->out, &b[1]);
    fputc('\n', st->out);
}

static void guide_pair(const struct render_style *st, int namew, const char *name, int w, double axis_ms, double ms)
{
    struct bar b[2];
    for (int i = 0; i < 2; i++) {
        bar_init(&b[i], w, axis_ms);
        bar_guide(&b[i], glyphs_of(st), ms);
    }
    pair_row(st, namew, name, b);
}

static void range(char *buf, size_t len, const struct step_view *s)
{
    if (!s || !s->started)
        snprintf(buf, len, "-");
    else if (!s->ended)
        snprintf(buf, len, "%7.1f -", s->start_ms);
    else
        snprintf(buf, len, "%7.1f - %7.1f", s->start_ms, s->end_ms);
}

/* What a step came to: its result, else its state. */
static const char *outcome(const struct step_view *s)
{
    if (!s)
        return "-";
    return s->result ? s->result : s->state ? s->state : s->done ? "done" : "-";
}

/* Each step's times in both orders, and what it answered. */
static void step_table(const struct render_style *st, const struct timeline tl[2], const struct step_names *names,
                       int namew)
{
    char r0[48], r1[48];
    fprintf(st->out, "  %-*s%-6s%-20s%-20s%s\n", namew, "step", "io", tl[0].title, tl[1].title, "result");
    for (int k = 0; k < names->n; k++) {
        const struct step_view *a = find_step(tl[0].v, k), *b = find_step(tl[1].v, k);
        range(r0, sizeof r0, a);
        range(r1, sizeof r1, b);
        const char *oa = outcome(a), *ob = outcome(b);
        fprintf(st->out, "  %-*s%-6s%-20s%-20s", namew, names->name[k], names->io[k], r0, r1);
        if (strcmp(oa, ob) != 0)
            fprintf(st->out, "%s / %s\n", oa, ob);
        else
            fprintf(st->out, "%s\n", oa);
    }
}

void render_side_by_side(const struct render_style *st, const struct timeline tl[2], const struct step_names *names)
{
    const struct glyphs *g = glyphs_of(st);
    int namew = name_width(names);
    int w = clamp((st->width - 2 - namew - 4 - GAP) / 2, 10, RENDER_MAX_WIDTH);
    double axis_ms = axis_for(tl, 2);
    char line[RENDER_MAX_WIDTH + 8], title[128];
    struct bar b[2];

    fprintf(st->out, "  %-*s", namew, "");
    for (int i = 0; i < 2; i++) {
        /* Over each bar, from its first column; shortened when narrow. */
        snprintf(title, sizeof title, "%s %s order %lld %s %.1f ms", tl[i].title, g->dot, tl[i].v->id, g->dot,
                 tl[i].v->elapsed_ms);
        if (columns(title) > w + GAP - 1)
            snprintf(title, sizeof title, "%s %.1f ms", tl[i].title, tl[i].v->elapsed_ms);
        fputc(' ', st->out);
        if (i == 0) {
            put_padded(st->out, title, w + GAP - 1);
            fputs("  ", st->out);
        } else {
            put_padded(st->out, title, columns(title) < w + 1 ? columns(title) : w + 1);
        }
    }
    fprintf(st->out, "\n  %-*s", namew, "");
    for (int i = 0; i < 2; i++) {
        axis_labels(line, w, axis_ms);
        fprintf(st->out, "%s%*s", line, i == 0 ? GAP : 0, "");
    }
    fputc('\n', st->out);
    if (wait_visible(tl, 2, axis_ms, w)) {
        for (int i = 0; i < 2; i++) {
            bar_init(&b[i], w, axis_ms);
            bar_span(&b[i], 0, first_start(tl[i].v), g->queued, 0);
        }
        pair_row(st, namew, WAIT_ROW, b);
    }
    for (int k = 0; k < names->n; k++) {
        for (int i = 0; i < 2; i++) {
            bar_init(&b[i], w, axis_ms);
            bar_step(&b[i], g, find_step(tl[i].v, k));
        }
        pair_row(st, namew, names->name[k], b);
    }
    const struct order_view *ref = tl[1].v;
    if (ref->critical_ms > 0)
        guide_pair(st, namew, "critical path", w, axis_ms, ref->critical_ms);
    if (ref->sequential_ms > 0)
        guide_pair(st, namew, "all in a row", w, axis_ms, ref->sequential_ms);
    legend(st, tl, 2);
    fputc('\n', st->out);
    step_table(st, tl, names, namew);
}

/* ---- summary table -------------------------------------------------------------- */

#define ROW_LABEL_W 30
#define COL_W 14

/* Prints a row of numbers with that many decimals; a negative value prints
 * as "-". */
static void num_row(const struct render_style *st, const char *label, const double *v, int n, int decimals)
{
    char cell[48];
    fprintf(st->out, "  %-*s", ROW_LABEL_W, label);
    for (int i = 0; i < n; i++) {
        if (v[i] < 0)
            snprintf(cell, sizeof cell, "-");
        else
            snprintf(cell, sizeof cell, "%.*f", decimals, v[i]);
        fprintf(st->out, "%*s", COL_W, cell);
    }
    fputc('\n', st->out);
}

static size_t kind_count(const struct tally *t, const char *kind)
{
    for (int i = 0; i < t->nkinds; i++)
        if (!strcmp(t->kinds[i].kind, kind))
            return t->kinds[i].count;
    return 0;
}

/* Whether kind already had its row (it appeared in an earlier tally, or
 * earlier in this one). */
static int kind_seen(const struct tally *const t[], int ti, int ki)
{
    const char *kind = t[ti]->kinds[ki].kind;
    for (int i = 0; i <= ti; i++)
        for (int k = 0; k < (i == ti ? ki : t[i]->nkinds); k++)
            if (!strcmp(t[i]->kinds[k].kind, kind))
                return 1;
    return 0;
}

static void error_rows(const struct render_style *st, const struct tally *const t[], int nt)
{
    double v[8] = {0};
    size_t errors = 0;
    for (int i = 0; i < nt; i++) {
        v[i] = (double)(t[i]->total - t[i]->ok);
        errors += t[i]->total - t[i]->ok;
    }
    num_row(st, "errors", v, nt, 0);
    for (int i = 0; i < nt; i++) {
        for (int k = 0; k < t[i]->nkinds; k++) {
            if (kind_seen(t, i, k))
                continue;
            char label[64];
            snprintf(label, sizeof label, "  %s", t[i]->kinds[k].kind);
            for (int j = 0; j < nt; j++)
                v[j] = (double)kind_count(t[j], t[i]->kinds[k].kind);
            num_row(st, label, v, nt, 0);
        }
    }
    if (!errors)
        return;
    fprintf(st->out, "\n  first error of each kind:\n");
    for (int i = 0; i < nt; i++)
        for (int k = 0; k < t[i]->nkinds; k++) {
            const struct err_kind *e = &t[i]->kinds[k];
            fprintf(st->out, "    %-9s %s x%zu", t[i]->mode, e->kind, e->count);
            /* The example adds nothing when it only repeats the kind. */
            if (e->example[0] && strcasecmp(e->example, e->kind) != 0)
                fprintf(st->out, ": %s", e->example);
            fputc('\n', st->out);
        }
}

void render_summary(const struct render_style *st, const struct tally *const t[], int nt,
                    const struct step_names *names)
{
    double v[8] = {0};
    char cell[48], label[64];
    nt = nt > 8 ? 8 : nt;
    fprintf(st->out, "  %-*s", ROW_LABEL_W, "");
    for (int i = 0; i < nt; i++)
        fprintf(st->out, "%*s", COL_W, t[i]->mode);
    fprintf(st->out, "\n  %-*s", ROW_LABEL_W, "orders ok/total");
    for (int i = 0; i < nt; i++) {
        snprintf(cell, sizeof cell, "%zu/%zu", t[i]->ok, t[i]->total);
        fprintf(st->out, "%*s", COL_W, cell);
    }
    fputc('\n', st->out);
    for (int i = 0; i < nt; i++)
        v[i] = t[i]->wall_ms > 0 ? (double)t[i]->ok / (t[i]->wall_ms / 1e3) : -1;
    num_row(st, "orders/s", v, nt, 2);
    for (int i = 0; i < nt; i++)
        v[i] = t[i]->wall_ms;
    num_row(st, "wall time (ms)", v, nt, 0);

    static const struct {
        const char *label;
        double p;
    } pct[] = {{"latency p50 (ms)", 50}, {"latency p90 (ms)", 90}, {"latency p99 (ms)", 99}, {"latency max (ms)", 100}};
    for (size_t p = 0; p < sizeof pct / sizeof pct[0]; p++) {
        for (int i = 0; i < nt; i++)
            v[i] = tally_percentile(t[i], pct[p].p);
        num_row(st, pct[p].label, v, nt, 1);
    }
    for (int i = 0; i < nt; i++)
        v[i] = t[i]->ok ? t[i]->elapsed_sum / (double)t[i]->ok : -1;
    num_row(st, "server elapsed, mean (ms)", v, nt, 1);
    for (int i = 0; i < nt; i++)
        v[i] = t[i]->ok ? t[i]->queued_sum / (double)t[i]->ok : -1;
    num_row(st, "server queued, mean (ms)", v, nt, 1);
    for (int i = 0; i < nt; i++)
        v[i] = t[i]->ok ? t[i]->gap_sum / (double)t[i]->ok : -1;
    num_row(st, "client - server, mean (ms)", v, nt, 1);
    for (int i = 0; i < nt; i++)
        v[i] = t[i]->ok ? t[i]->gap_max : -1;
    num_row(st, "client - server, max (ms)", v, nt, 1);
    for (int k = 0; k < names->n; k++) {
        for (int i = 0; i < nt; i++)
            v[i] = tally_step_mean(t[i], k);
        snprintf(label, sizeof label, "%s, mean (ms)", names->name[k]);
        num_row(st, label, v, nt, 1);
    }
    error_rows(st, t, nt);
    for (int i = 0; i < nt; i++)
        if (t[i]->gap_big)
            fprintf(st->out,
                    "\n  %s: %zu order%s waited for the loop before the server saw %s: the client's wait passed the "
                    "server's elapsed by up to %.0f ms\n",
                    t[i]->mode, t[i]->gap_big, t[i]->gap_big == 1 ? "" : "s", t[i]->gap_big == 1 ? "it" : "them",
                    t[i]->gap_max);
}
