/* workflow_json: GET /workflow's document, built from the tables in
 * workflow.c (see workflow_json.h).
 * Owns only the jansson values it returns; pure otherwise: no I/O. */
#include "workflow_json.h"

#include <string.h>

json_t *wfjson_step(const struct recipe *r, const struct step_def *step, double scale)
{
    json_t *after = json_array();
    for (int j = 0; after && j < r->nsteps; j++)
        if ((step->after & (1u << j)) && json_array_append_new(after, json_string(r->steps[j].name)) != 0) {
            json_decref(after);
            return NULL;
        }
    /* "o" steals after, also when the pack fails. */
    return json_pack("{s:s, s:s, s:o, s:f}", "name", step->name, "io", wf_io_name(step->io), "after", after,
                     "planned_ms", (double)wf_step_ms(step, scale));
}

/* A step as the document (and POST /recipes) has it: wfjson_step, and what
 * it calls ("calls": the appliance's path, or "brew_coffee") and, for a
 * task, with what result ("returns"). Returns new. */
static json_t *recipe_step(const struct recipe *r, const struct step_def *step, double scale)
{
    json_t *j = wfjson_step(r, step, scale);
    const char *calls = step->io == IO_SQL ? "brew_coffee" : step->target;
    if (j && json_object_set_new(j, "calls", json_string(calls)) != 0)
        goto fail;
    if (j && step->result && json_object_set_new(j, "returns", json_string(step->result)) != 0)
        goto fail;
    return j;
fail:
    json_decref(j);
    return NULL;
}

static json_t *mode_json(const struct recipe *r, int i, double scale, const struct wfjson_server *server)
{
    const struct mode_def *m = &wf_modes[i];
    return json_pack("{s:s, s:s, s:b, s:b, s:f, s:b, s:s}", "name", m->name, "executor", wf_exec_name(m->exec),
                     "respects_dependencies", !m->ignore_deps, "blocks_loop", wf_mode_blocks_loop(m), "expected_ms",
                     wf_expected_ms(r, m, scale), "offered", (int)((server->modes >> i) & 1u), "lesson", m->lesson);
}

/* WF_COMPARE_DEFAULT as a JSON array of names. */
static json_t *compare_default(void)
{
    json_t *a = json_array();
    const char *p = WF_COMPARE_DEFAULT;
    while (a && *p) {
        size_t n = strcspn(p, ",");
        if (json_array_append_new(a, json_stringn(p, n)) != 0) {
            json_decref(a);
            return NULL;
        }
        p += n + (p[n] == ',');
    }
    return a;
}

json_t *wfjson_document(const struct recipe *r, double scale, const struct wfjson_server *server)
{
    json_t *steps = json_array(), *modes = json_array();
    for (int i = 0; steps && i < r->nsteps; i++)
        if (json_array_append_new(steps, recipe_step(r, &r->steps[i], scale)) != 0)
            goto fail;
    for (int i = 0; modes && i < wf_nmodes; i++)
        if (json_array_append_new(modes, mode_json(r, i, scale, server)) != 0)
            goto fail;
    if (!steps || !modes)
        goto fail;
    return json_pack("{s:s, s:s, s:f, s:f, s:f, s:o, s:f, s:f, s:o, s:o}", "name", r->name, "lesson", r->lesson,
                     "scale", scale, "default_scale", server->default_scale, "scale_max", WF_SCALE_MAX, "steps", steps,
                     "critical_path_ms", wf_critical_path_ms(r, scale), "sequential_ms", wf_sequential_ms(r, scale),
                     "modes", modes, "compare_default", compare_default());
fail:
    json_decref(steps);
    json_decref(modes);
    return NULL;
}
