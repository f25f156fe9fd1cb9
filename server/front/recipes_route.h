/* recipes_route: the recipes over HTTP, and where a server finds them.
 *
 *   GET /recipes             the built-ins, then the stored ones (from the
 *                            table; those this server knows when the
 *                            database does not answer, with "error")
 *   GET /workflow[?recipe=NAME][&scale=S]   one recipe's document
 *   POST /recipes            a teacher's recipe (JSON, recipe.h): 201
 *                            {"name"}, or a JSON 400 saying what is wrong
 *   DELETE /recipes/NAME     200 {"deleted"}, 404 if unknown
 *
 * A stored recipe lives in PostgreSQL (the recipes table), so every
 * replica serves it: a request naming a recipe this server does not know
 * (or knew more than RECIPES_FRESH_MS ago) waits while it is looked up in
 * the table through the async pool (PROBE_QUERY_MS for a connection and as
 * long for the query; 503 past that), then is routed as usual; a name the
 * table does not have is a JSON 404. Loop thread only. */
#ifndef COFFEE_RECIPES_ROUTE_H
#define COFFEE_RECIPES_ROUTE_H

#include "params.h"

#include <microhttpd.h>
#include <stddef.h>

/* How long a server trusts its copy of a stored recipe before it looks
 * the table up again (another replica may have replaced or deleted it). */
#define RECIPES_FRESH_MS 5000

struct front;
struct pgpool;
struct recipe;
struct recipes;

/* Returns new (with an empty book of stored recipes), or NULL. pool is
 * borrowed and must outlive it. */
struct recipes *recipes_new(struct pgpool *pool);
/* Frees rs; accepts NULL. No request and no order may still use it. */
void recipes_free(struct recipes *rs);

/* The front's first hook, with its access handler's arguments: returns 1
 * when the request is this module's (answered, or held: *res is what the
 * handler returns), 0 when the front routes it as usual (also a request
 * whose recipe was just looked up). */
int recipes_intercept(struct front *f, struct MHD_Connection *c, const char *url, const char *method,
                      const char *upload_data, size_t *upload_data_size, void **con_cls, enum MHD_Result *res);
/* The front's completion hook: 1 if *con_cls was this module's (then it
 * is freed and *con_cls is NULL), else 0. */
int recipes_completed(struct front *f, void **con_cls);

/* Answers GET /workflow (args borrowed). */
enum MHD_Result recipes_route(struct front *f, struct MHD_Connection *c, const char *url, const struct query_arg *args,
                              size_t nargs);
/* The recipe called name that f knows (a built-in, or one stored), or
 * NULL. Borrowed: an order that uses it is held from front_submit to
 * front_order_ended (recipes_hold, recipes_release). */
const struct recipe *front_recipe(struct front *f, const char *name);
void recipes_hold(struct recipes *rs, const struct recipe *r);
void recipes_release(struct recipes *rs, const struct recipe *r);
/* Queues the JSON 404 of a recipe nobody knows. */
enum MHD_Result recipes_respond_unknown(struct MHD_Connection *c, const char *name);

#endif
