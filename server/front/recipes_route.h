/* recipes_route: the recipes over HTTP. GET /recipes lists them; GET
 * /workflow[?recipe=NAME][&scale=S] serves one (workflow_json), coffee when
 * no name is given; an unknown name is a JSON 404.
 * Loop thread only. */
#ifndef COFFEE_RECIPES_ROUTE_H
#define COFFEE_RECIPES_ROUTE_H

#include "params.h"

#include <microhttpd.h>
#include <stddef.h>

struct front;
struct recipe;

/* Answers GET /recipes and GET /workflow (args borrowed). */
enum MHD_Result recipes_route(struct front *f, struct MHD_Connection *c, const char *url, const struct query_arg *args,
                              size_t nargs);
/* The recipe called name that f knows (a built-in, or one stored and
 * known here), or NULL. Borrowed: an order that uses it is held by
 * front_submit until front_order_ended. */
const struct recipe *front_recipe(struct front *f, const char *name);
/* Queues the JSON 404 of a recipe nobody knows. */
enum MHD_Result recipes_respond_unknown(struct MHD_Connection *c, const char *name);

#endif
