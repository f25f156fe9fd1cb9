/* report: builds the JSON of an order (see report.h).
 * Owns only the jansson values it returns. */
#include "report.h"

#include "order.h"
#include "workflow_json.h"

#include <math.h>
#include <stdio.h>

double report_ms(long long ns)
{
    return round((double)ns / 1e3) / 1e3;
}

static json_t *ms_since(const struct order *o, int64_t t)
{
    return t ? json_real(report_ms(t - o->arrived_ns)) : json_null();
}

/* A step's definition (as GET /workflow gives it) and what it did. */
static json_t *step_json(const struct order *o, int i)
{
    const struct step_run *s = &o->steps[i];
    json_t *j = wfjson_step(o->recipe, &o->recipe->steps[i], o->scale);
    int bad = !j;
    bad = bad || json_object_set_new(j, "start_ms", ms_since(o, s->start_ns)) != 0;
    bad = bad || json_object_set_new(j, "queued_ms", json_real(report_ms(s->queued_ns))) != 0;
    bad = bad || json_object_set_new(j, "end_ms", ms_since(o, s->end_ns)) != 0;
    bad = bad || json_object_set_new(j, "state", json_string(step_state_name(s->state))) != 0;
    bad = bad || json_object_set_new(j, "result", s->state == STEP_DONE ? json_string(s->result) : json_null()) != 0;
    if (bad) {
        json_decref(j);
        return NULL;
    }
    return j;
}

json_t *report_steps(const struct order *o)
{
    json_t *steps = json_array();
    for (int i = 0; steps && i < o->recipe->nsteps; i++) {
        if (json_array_append_new(steps, step_json(o, i)) != 0) {
            json_decref(steps);
            return NULL;
        }
    }
    return steps;
}

/* The names of the steps done, in the order they ended. Returns new. */
static json_t *completed_json(const struct order *o)
{
    int done[WF_MAX_STEPS];
    int n = order_completed(o, done);
    json_t *a = json_array();
    for (int i = 0; a && i < n; i++)
        if (json_array_append_new(a, json_string(o->recipe->steps[done[i]].name)) != 0) {
            json_decref(a);
            return NULL;
        }
    return a;
}

json_t *report_order(const struct order *o)
{
    json_t *results = json_array();
    for (int i = 0; results && i < o->recipe->nsteps; i++)
        if (o->steps[i].state == STEP_DONE)
            json_array_append_new(results, json_string(o->steps[i].result));
    json_t *j =
        json_pack("{s:I, s:s, s:f, s:s, s:f, s:f, s:f, s:f, s:o, s:o}", "order_id", (json_int_t)o->id, "mode",
                  wf_modes[o->mode].name, "scale", o->scale, "status", order_status_name(o->status), "elapsed_ms",
                  report_ms(o->steps_end_ns - o->arrived_ns), "queued_ms", report_ms(o->queued_ns), "critical_path_ms",
                  wf_critical_path_ms(o->recipe, o->scale), "sequential_ms", wf_sequential_ms(o->recipe, o->scale),
                  "steps", report_steps(o), "result", results);
    /* An order of another recipe than coffee names it and the order its
     * steps ended in (coffee's answer stays as it was). */
    if (j && o->recipe != &wf_coffee) {
        json_object_set_new(j, "recipe", json_string(o->recipe->name));
        json_object_set_new(j, "completed", completed_json(o));
    }
    if (j && o->traceparent[0])
        json_object_set_new(j, "traceparent", json_string(o->traceparent));
    if (j && o->instance)
        json_object_set_new(j, "instance", json_string(o->instance));
    if (j && o->status == ORDER_FAILED) {
        json_object_set_new(j, "error", json_string(o->errmsg));
        json_object_set_new(j, "failed_step",
                            o->failed_step >= 0 ? json_string(o->recipe->steps[o->failed_step].name) : json_null());
    }
    return j;
}

const char *report_order_text(struct order *o)
{
    if (!o->report) {
        json_t *j = report_order(o);
        o->report = report_dumps(j);
        json_decref(j);
    }
    return o->report;
}

char *report_dumps(const json_t *j)
{
    return j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(12)) : NULL;
}

json_t *report_compare(const struct order *const orders[], int n, const struct order **bad)
{
    json_t *j = json_object();
    *bad = NULL;
    for (int i = 0; j && i < n; i++) {
        const struct order *o = orders[i];
        if (json_object_set_new(j, wf_modes[o->mode].name, report_order(o)) != 0) {
            json_decref(j);
            return NULL;
        }
        if (!*bad && o->status != ORDER_DONE)
            *bad = o;
    }
    if (!j)
        return NULL;
    const struct order *first = orders[0], *last = orders[n - 1];
    double fe = report_ms(first->steps_end_ns - first->arrived_ns),
           le = report_ms(last->steps_end_ns - last->arrived_ns);
    json_t *speedup = !*bad && le > 0 ? json_real(round(fe / le * 1000) / 1000) : json_null();
    if (json_object_set_new(j, "speedup", speedup) != 0) {
        json_decref(j);
        return NULL;
    }
    if (*bad) {
        char msg[260];
        snprintf(msg, sizeof msg, "%s order failed: %s", wf_modes[(*bad)->mode].name, (*bad)->errmsg);
        if (json_object_set_new(j, "error", json_string(msg)) != 0) {
            json_decref(j);
            return NULL;
        }
    }
    return j;
}
