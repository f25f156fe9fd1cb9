/* metrics: counters, histograms and the loop-lag probe (see metrics.h).
 * Owns: the metric values and the probe's timer. Renders into a growing
 * buffer; fixed-size state otherwise, so recording never allocates. */
#include "metrics.h"
#include "cost.h"

#include "clock.h"
#include "evloop.h"
#include "flight.h"
#include "list.h"
#include "order.h"
#include "procstat.h"
#include "promtext.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Upper bounds of the duration buckets, in seconds (+Inf is implied). */
static const double duration_bounds[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
#define NDUR (sizeof duration_bounds / sizeof duration_bounds[0])
static const double lag_bounds[] = {0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5};
#define NLAG (sizeof lag_bounds / sizeof lag_bounds[0])
#define MAX_BUCKETS 16
_Static_assert(NDUR <= MAX_BUCKETS && NLAG <= MAX_BUCKETS, "raise MAX_BUCKETS");

#define LAG_PERIOD_NS (100 * NS_PER_MS)
#define LAG_WINDOW_NS (5 * NS_PER_SEC)

struct histogram {
    uint64_t counts[MAX_BUCKETS + 1]; /* per bucket (not cumulative); last = +Inf */
    uint64_t n;
    double sum;
};

/* Errors an order can end with, as label values (index = enum order_error). */
static const char *const error_names[] = {"none", "kitchen", "timeout", "database", "internal", "shutdown", "overload"};
#define NERRORS (sizeof error_names / sizeof error_names[0])
_Static_assert(NERRORS == OERR_COUNT, "one name per enum order_error");
static const char *const reject_names[] = {"overload", "draining"};

struct mode_metrics {
    uint64_t done, failed;
    uint64_t errors[NERRORS];
    int inflight;
    struct histogram elapsed, queued;
    struct histogram steps[WF_MAX_STEPS];
};

struct metrics {
    struct mode_metrics modes[WF_MAX_MODES];
    uint64_t rejected[REJECT_NREASONS];
    struct evloop *loop;
    struct ev_timer probe;
    int64_t probe_due_ns;
    struct histogram lag;
    int64_t lag_max_ns[2]; /* this window and the one before */
    int64_t window_start_ns;
    int64_t busy_ns, busy_at_ns; /* the loop's busy time at the last sample, and when */
    uint64_t callbacks;
    void (*gauges)(struct front *, struct metrics_gauges *); /* NULL = none */
    struct front *gauges_arg;
};

static void observe(struct histogram *h, const double *bounds, size_t nb, double v)
{
    size_t i = 0;
    while (i < nb && v > bounds[i])
        i++;
    h->counts[i]++;
    h->n++;
    h->sum += v;
}

struct metrics *metrics_new(void)
{
    return calloc(1, sizeof(struct metrics));
}

void metrics_free(struct metrics *m)
{
    if (!m)
        return;
    if (m->loop)
        evloop_timer_stop(m->loop, &m->probe);
    free(m);
}

void metrics_gauge_source(struct metrics *m, void (*fn)(struct front *, struct metrics_gauges *), struct front *f)
{
    m->gauges = fn;
    m->gauges_arg = f;
}

/* The flight recorder's counters, sampled with the lag probe. */
static void flight_sample(struct metrics *m, int64_t lag_ns)
{
    const char *keys[4];
    double v[4];
    int n = 0;
    for (int i = 0; i < wf_nmodes && n < 4; i++, n++) {
        keys[n] = wf_modes[i].name;
        v[n] = m->modes[i].inflight;
    }
    flight_counter("orders in flight", n, keys, v);
    /* The loop's share of the last period spent in callbacks, and how many
     * ran: the thousands of short ones no slice shows. */
    int64_t busy, now = clock_mono_ns();
    uint64_t calls;
    evloop_busy(m->loop, &busy, &calls);
    if (m->busy_at_ns && now > m->busy_at_ns) {
        keys[0] = "lag ms", keys[1] = "busy %", keys[2] = "callbacks/s";
        v[0] = (double)lag_ns / 1e6;
        v[1] = 100.0 * (double)(busy - m->busy_ns) / (double)(now - m->busy_at_ns);
        v[2] = (double)(calls - m->callbacks) * 1e9 / (double)(now - m->busy_at_ns);
        flight_counter("loop", 3, keys, v);
    }
    m->busy_ns = busy, m->callbacks = calls, m->busy_at_ns = now;
    if (m->gauges) {
        struct metrics_gauges g;
        m->gauges(m->gauges_arg, &g);
        const char *const pk[] = {"pool busy", "pool waiting", "workers busy", "workers queued"};
        const double pv[] = {g.pool_busy, g.pool_waiting, g.workers_busy, g.workers_queued};
        flight_counter("pool and workers", 4, pk, pv);
    }
}

/* The probe fires every LAG_PERIOD_NS; how late it fires is the loop lag. */
static void on_probe(struct evloop *loop, struct ev_timer *t)
{
    struct metrics *m = container_of(t, struct metrics, probe);
    int64_t now = clock_mono_ns(), lag = now - m->probe_due_ns;
    if (lag < 0)
        lag = 0;
    observe(&m->lag, lag_bounds, NLAG, (double)lag / 1e9);
    if (now - m->window_start_ns >= LAG_WINDOW_NS) {
        m->lag_max_ns[1] = m->lag_max_ns[0];
        m->lag_max_ns[0] = 0;
        m->window_start_ns = now;
    }
    if (lag > m->lag_max_ns[0])
        m->lag_max_ns[0] = lag;
    if (flight_recording())
        flight_sample(m, lag);
    m->probe_due_ns = now + LAG_PERIOD_NS;
    if (evloop_timer_start(loop, t, LAG_PERIOD_NS) != 0)
        m->loop = NULL; /* no memory for the heap: the probe stops */
}

int metrics_watch_loop(struct metrics *m, struct evloop *loop)
{
    m->loop = loop;
    m->probe.cb = on_probe;
    m->window_start_ns = clock_mono_ns();
    m->probe_due_ns = m->window_start_ns + LAG_PERIOD_NS;
    if (evloop_timer_start(loop, &m->probe, LAG_PERIOD_NS) != 0) {
        m->loop = NULL;
        return -1;
    }
    return 0;
}

void metrics_order_started(struct metrics *m, int mode)
{
    m->modes[mode].inflight++;
}

void metrics_order_ended(struct metrics *m, const struct order *o)
{
    struct mode_metrics *mm = &m->modes[o->mode];
    mm->inflight--;
    if (o->status == ORDER_DONE)
        mm->done++;
    else
        mm->failed++;
    if ((size_t)o->error < NERRORS)
        mm->errors[o->error]++;
    observe(&mm->elapsed, duration_bounds, NDUR, (double)(o->steps_end_ns - o->arrived_ns) / 1e9);
    observe(&mm->queued, duration_bounds, NDUR, (double)o->queued_ns / 1e9);
    /* The steps' histograms are coffee's (their labels name its steps). */
    for (int i = 0; o->recipe == &wf_coffee && i < wf_coffee.nsteps; i++) {
        const struct step_run *s = &o->steps[i];
        if (s->state == STEP_DONE)
            observe(&mm->steps[i], duration_bounds, NDUR, (double)(s->end_ns - s->start_ns) / 1e9);
    }
}

void metrics_order_rejected(struct metrics *m, enum metrics_reject why)
{
    m->rejected[why]++;
}

/* ---- rendering ------------------------------------------------------------ */

/* One histogram's series; labels is "" or 'mode="async",...' */
static void histogram(struct text_buf *b, const char *name, const char *labels, const struct histogram *h,
                      const double *bounds, size_t nb)
{
    uint64_t cum = 0;
    const char *sep = labels[0] ? "," : "";
    for (size_t i = 0; i < nb; i++) {
        cum += h->counts[i];
        text_buf_put(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, bounds[i], (unsigned long long)cum);
    }
    cum += h->counts[nb];
    text_buf_put(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep, (unsigned long long)cum);
    text_buf_put(b, "%s_sum%s%s%s %.9g\n", name, labels[0] ? "{" : "", labels, labels[0] ? "}" : "", h->sum);
    text_buf_put(b, "%s_count%s%s%s %llu\n", name, labels[0] ? "{" : "", labels, labels[0] ? "}" : "",
                 (unsigned long long)h->n);
}

static void render_orders(struct text_buf *b, const struct metrics *m)
{
    char labels[96];
    promtext_header(b, "coffee_orders_total", "counter", "Orders ended, by mode and status.");
    for (int i = 0; i < wf_nmodes; i++) {
        text_buf_put(b, "coffee_orders_total{mode=\"%s\",status=\"done\"} %llu\n", wf_modes[i].name,
                     (unsigned long long)m->modes[i].done);
        text_buf_put(b, "coffee_orders_total{mode=\"%s\",status=\"failed\"} %llu\n", wf_modes[i].name,
                     (unsigned long long)m->modes[i].failed);
    }
    promtext_header(b, "coffee_order_errors_total", "counter", "Failed orders, by mode and what failed.");
    for (int i = 0; i < wf_nmodes; i++)
        for (size_t e = 1; e < NERRORS; e++)
            text_buf_put(b, "coffee_order_errors_total{mode=\"%s\",error=\"%s\"} %llu\n", wf_modes[i].name,
                         error_names[e], (unsigned long long)m->modes[i].errors[e]);
    promtext_header(b, "coffee_orders_rejected_total", "counter", "Orders refused with 503 before they started.");
    for (int r = 0; r < REJECT_NREASONS; r++)
        text_buf_put(b, "coffee_orders_rejected_total{reason=\"%s\"} %llu\n", reject_names[r],
                     (unsigned long long)m->rejected[r]);
    promtext_header(b, "coffee_orders_in_flight", "gauge", "Orders running now, by mode.");
    for (int i = 0; i < wf_nmodes; i++)
        text_buf_put(b, "coffee_orders_in_flight{mode=\"%s\"} %d\n", wf_modes[i].name, m->modes[i].inflight);

    promtext_header(b, "coffee_order_duration_seconds", "histogram", "Elapsed time of ended orders, by mode.");
    for (int i = 0; i < wf_nmodes; i++) {
        snprintf(labels, sizeof labels, "mode=\"%s\"", wf_modes[i].name);
        histogram(b, "coffee_order_duration_seconds", labels, &m->modes[i].elapsed, duration_bounds, NDUR);
    }
    promtext_header(b, "coffee_order_queued_seconds", "histogram",
                    "Time an order waited for a blocking worker or a free database connection, by mode.");
    for (int i = 0; i < wf_nmodes; i++) {
        snprintf(labels, sizeof labels, "mode=\"%s\"", wf_modes[i].name);
        histogram(b, "coffee_order_queued_seconds", labels, &m->modes[i].queued, duration_bounds, NDUR);
    }
    promtext_header(b, "coffee_step_duration_seconds", "histogram",
                    "Duration of completed steps of coffee orders (end - start), by mode and step.");
    for (int i = 0; i < wf_nmodes; i++) {
        for (int s = 0; s < wf_coffee.nsteps; s++) {
            snprintf(labels, sizeof labels, "mode=\"%s\",step=\"%s\"", wf_modes[i].name, wf_coffee.steps[s].name);
            histogram(b, "coffee_step_duration_seconds", labels, &m->modes[i].steps[s], duration_bounds, NDUR);
        }
    }
}

static void render_gauges(struct text_buf *b, const struct metrics *m, const struct metrics_gauges *g)
{
    promtext_header(b, "coffee_db_pool_connections", "gauge",
                    "The async database pool: configured, open, and running a query.");
    text_buf_put(b, "coffee_db_pool_connections{state=\"size\"} %d\n", g->pool_size);
    text_buf_put(b, "coffee_db_pool_connections{state=\"connected\"} %d\n", g->pool_connected);
    text_buf_put(b, "coffee_db_pool_connections{state=\"busy\"} %d\n", g->pool_busy);
    promtext_header(b, "coffee_db_pool_waiting", "gauge", "Queries waiting for a free database connection.");
    text_buf_put(b, "coffee_db_pool_waiting %d\n", g->pool_waiting);
    promtext_header(b, "coffee_blocking_workers", "gauge", "Blocking worker threads: all, and running an order.");
    text_buf_put(b, "coffee_blocking_workers{state=\"total\"} %d\n", g->workers);
    text_buf_put(b, "coffee_blocking_workers{state=\"busy\"} %d\n", g->workers_busy);
    promtext_header(b, "coffee_blocking_queue", "gauge", "Blocking orders waiting for a worker.");
    text_buf_put(b, "coffee_blocking_queue %d\n", g->workers_queued);

    const char *names[EXEC_KINDS];
    for (int k = 0; k < EXEC_KINDS; k++)
        names[k] = exec_executors[k]->name;
    cost_render(b, g->exec, names, EXEC_KINDS);

    if (g->threads >= 0) {
        promtext_header(b, "coffee_process_threads", "gauge", "Threads of the server process.");
        text_buf_put(b, "coffee_process_threads %d\n", g->threads);
    }

    promtext_header(b, "coffee_loop_lag_seconds", "histogram",
                    "How late the event loop ran a 100 ms probe timer: time it was kept from its work.");
    histogram(b, "coffee_loop_lag_seconds", "", &m->lag, lag_bounds, NLAG);
    promtext_header(b, "coffee_loop_lag_max_seconds", "gauge", "The worst loop lag in the last 5 to 10 seconds.");
    int64_t max = m->lag_max_ns[0] > m->lag_max_ns[1] ? m->lag_max_ns[0] : m->lag_max_ns[1];
    text_buf_put(b, "coffee_loop_lag_max_seconds %.6f\n", (double)max / 1e9);
    flight_write_metrics(b);
}

char *metrics_render(const struct metrics *m, const struct metrics_gauges *g)
{
    struct text_buf b;
    text_buf_init(&b, 16384);
    render_orders(&b, m);
    render_gauges(&b, m, g);
    procstat_render(&b);
    return text_buf_finish(&b);
}
