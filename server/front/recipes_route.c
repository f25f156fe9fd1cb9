/* recipes_route: GET /recipes and GET /workflow (see recipes_route.h).
 * Owns only the JSON it builds for an answer; never blocks. */
#include "recipes_route.h"

#include "http_front.h"
#include "httpd.h"
#include "recipe.h"
#include "report.h"
#include "workflow_json.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

const struct recipe *front_recipe(struct front *f, const char *name)
{
    return recipe_book_find(front_recipes(f), name);
}

enum MHD_Result recipes_respond_unknown(struct MHD_Connection *c, const char *name)
{
    char msg[160];
    snprintf(msg, sizeof msg, "no recipe called '%.40s': GET /recipes lists them", name);
    return httpd_respond_error(c, MHD_HTTP_NOT_FOUND, msg);
}

static enum MHD_Result respond_json(struct MHD_Connection *c, json_t *j)
{
    char *body = report_dumps(j);
    json_decref(j);
    if (!body)
        return httpd_respond_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
    return httpd_respond_take(c, MHD_HTTP_OK, body, strlen(body));
}

/* One line of the list: name, lesson, builtin, steps, and its figures at
 * scale 1. Returns new. */
static json_t *summary(const struct recipe *r, int builtin)
{
    return json_pack("{s:s, s:s, s:b, s:i, s:f, s:f}", "name", r->name, "lesson", r->lesson, "builtin", builtin,
                     "steps", r->nsteps, "critical_path_ms", wf_critical_path_ms(r, 1.0), "sequential_ms",
                     wf_sequential_ms(r, 1.0));
}

/* GET /recipes: the built-ins, then the stored ones this server knows. */
static enum MHD_Result route_list(struct front *f, struct MHD_Connection *c)
{
    json_t *list = json_array();
    for (int i = 0; list && i < wf_nrecipes; i++)
        if (json_array_append_new(list, summary(wf_recipes[i], 1)) != 0)
            goto fail;
    const char *names[RECIPE_BOOK_MAX];
    int n = recipe_book_names(front_recipes(f), names, RECIPE_BOOK_MAX);
    for (int i = 0; list && i < n; i++)
        if (json_array_append_new(list, summary(recipe_book_find(front_recipes(f), names[i]), 0)) != 0)
            goto fail;
    return respond_json(c, list ? json_pack("{s:o}", "recipes", list) : NULL);
fail:
    json_decref(list);
    return httpd_respond_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
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
    return respond_json(c, wfjson_document(r, scale, &server));
}

enum MHD_Result recipes_route(struct front *f, struct MHD_Connection *c, const char *url, const struct query_arg *args,
                              size_t nargs)
{
    if (!strcmp(url, "/workflow"))
        return route_workflow(f, c, args, nargs);
    if (nargs > 0)
        return httpd_respond_error(c, MHD_HTTP_BAD_REQUEST, "GET /recipes takes no parameters");
    return route_list(f, c);
}
