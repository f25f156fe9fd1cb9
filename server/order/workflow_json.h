/* workflow_json: the workflow and the mode table as one JSON document, the
 * answer of GET /workflow. The page and the bench scripts read the modes,
 * lessons, steps and durations from it instead of keeping copies.
 *
 * Ownership as in jansson: every function returns a new reference (NULL
 * out of memory). */
#ifndef COFFEE_WORKFLOW_JSON_H
#define COFFEE_WORKFLOW_JSON_H

#include "workflow.h"

#include <jansson.h>

/* The largest scale of a step's duration (params.h: SCALE_MAX). */
#define WF_SCALE_MAX 10.0
/* The modes plain /compare runs, in its order (params.h:
 * PARAMS_COMPARE_DEFAULT); the document's compare_default. */
#define WF_COMPARE_DEFAULT "blocking,async"

/* What a server says of itself beside the tables. */
struct wfjson_server {
    double default_scale; /* the scale of an order that names none */
    unsigned modes;       /* bit mask of the wf_modes offered (--modes) */
};

/* One step of r's at scale: {"name", "io", "after": [names], "planned_ms"}
 * (an order's steps say this of themselves). Returns new. */
json_t *wfjson_step(const struct recipe *r, const struct step_def *step, double scale);
/* Recipe r's whole document at scale: name, lesson, scale, default_scale,
 * scale_max, steps (each as wfjson_step, with "calls" and, for a task,
 * "returns": the shape POST /recipes takes), critical_path_ms,
 * sequential_ms, modes (each: name, executor, respects_dependencies,
 * blocks_loop, expected_ms, offered, lesson) and compare_default. Returns
 * new. */
json_t *wfjson_document(const struct recipe *r, double scale, const struct wfjson_server *server);

#endif
