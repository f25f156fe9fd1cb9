/* cost: a mode's cost from its executor's stats (see cost.h). Owns
 * nothing; reads the executors through their ops only. */
#include "cost.h"

#include "promtext.h"
#include "text.h"

#include <math.h>

void cost_begin(struct mode_cost *c, const struct executor *x)
{
    *c = (struct mode_cost){0};
    x->ops->stats(x->ex, &c->before);
    cost_sample(c, x);
}

void cost_sample(struct mode_cost *c, const struct executor *x)
{
    struct executor_stats es;
    x->ops->stats(x->ex, &es);
    if (es.threads > c->threads_peak)
        c->threads_peak = es.threads;
    if (es.db_connections > c->db_connections_peak)
        c->db_connections_peak = es.db_connections;
}

int cost_json(const struct mode_cost *c, const struct executor *x, json_t *j)
{
    struct executor_stats now;
    x->ops->stats(x->ex, &now);
    double cpu_ms = round((double)(now.cpu_ns - c->before.cpu_ns) / 1e3) / 1e3;
    int bad = 0;
    bad |= json_object_set_new(j, "threads_peak", json_integer(c->threads_peak));
    bad |= json_object_set_new(j, "context_switches", json_integer(now.context_switches - c->before.context_switches));
    bad |= json_object_set_new(j, "cpu_ms", json_real(cpu_ms));
    bad |= json_object_set_new(j, "db_connections_used", json_integer(c->db_connections_peak));
    bad |= json_object_set_new(j, "cost_scope", json_string(x->ops->name));
    return bad ? -1 : 0;
}

void cost_render(struct text_buf *b, const struct executor_stats *stats, const char *const *names, int n)
{
    promtext_header(b, "coffee_executor_threads", "gauge",
                    "Threads serving an executor's orders now (the loop counts one; offload's and threads' only "
                    "while busy).");
    for (int k = 0; k < n; k++)
        text_buf_put(b, "coffee_executor_threads{executor=\"%s\"} %d\n", names[k], stats[k].threads);
    promtext_header(b, "coffee_executor_threads_peak", "gauge", "The most threads an executor used at once.");
    for (int k = 0; k < n; k++)
        text_buf_put(b, "coffee_executor_threads_peak{executor=\"%s\"} %d\n", names[k], stats[k].threads_peak);
    promtext_header(b, "coffee_executor_context_switches_total", "counter",
                    "Voluntary and involuntary context switches of an executor's threads (getrusage per thread).");
    for (int k = 0; k < n; k++)
        text_buf_put(b, "coffee_executor_context_switches_total{executor=\"%s\"} %lld\n", names[k],
                     (long long)stats[k].context_switches);
    promtext_header(b, "coffee_executor_cpu_seconds_total", "counter", "User and system CPU of an executor's threads.");
    for (int k = 0; k < n; k++)
        text_buf_put(b, "coffee_executor_cpu_seconds_total{executor=\"%s\"} %.6f\n", names[k],
                     (double)stats[k].cpu_ns / 1e9);
    promtext_header(b, "coffee_executor_db_connections", "gauge",
                    "Database connections an executor's orders hold now.");
    for (int k = 0; k < n; k++)
        text_buf_put(b, "coffee_executor_db_connections{executor=\"%s\"} %d\n", names[k], stats[k].db_connections);
    promtext_header(b, "coffee_executor_db_connections_peak", "gauge",
                    "The most database connections an executor held (or kept open) at once.");
    for (int k = 0; k < n; k++)
        text_buf_put(b, "coffee_executor_db_connections_peak{executor=\"%s\"} %d\n", names[k],
                     stats[k].db_connections_peak);
}
