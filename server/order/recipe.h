/* recipe: a teacher's own recipe, read from JSON and checked, and the book
 * of recipes a server knows (the built-ins of workflow.h and the stored).
 *
 * The JSON is the shape GET /workflow?recipe=NAME serves (wfjson_document):
 * {"name": "...", "lesson": "...", "steps": [{"name", "io", "after",
 * "planned_ms", "calls", "returns"}, ...]}; the document's other members
 * (scale, modes, ...) are ignored, so a recipe fetched can be edited and
 * posted back. planned_ms are at scale 1 (fetch it without ?scale).
 *
 * Errors: 0 or -1 with a sentence in the caller's buffer (a 400's text).
 * The book is the loop thread's: not locked. */
#ifndef COFFEE_RECIPE_H
#define COFFEE_RECIPE_H

#include "workflow.h"

#include <stddef.h>

#define RECIPE_NAME_MAX 32      /* a recipe's or a step's name, in bytes */
#define RECIPE_RESULT_MAX 48    /* a task's result (the kitchen's KITCHEN_RESULT_MAX) */
#define RECIPE_LESSON_MAX 200   /* its lesson, in bytes */
#define RECIPE_STEP_MS_MAX 6000 /* a step's planned ms at scale 1: at the largest scale, the kitchen's 60000 */
#define RECIPE_BREW_MS_MAX 1000 /* a brew_coffee step's: no longer than coffee's (the database's statement bound) */
#define RECIPE_JSON_MAX 16384   /* the body of POST /recipes, in bytes */
#define RECIPE_BOOK_MAX 64      /* the teachers' recipes a server keeps in memory */

/* Whether name is a recipe's or a step's name: 1..RECIPE_NAME_MAX of
 * [A-Za-z0-9_-]. */
int recipe_name_ok(const char *name);

/* Reads and checks the recipe in text (len bytes): at most WF_MAX_STEPS
 * steps, unique names, known dependencies (named in any order: the table
 * is sorted so each step comes after those it waits for, keeping the given
 * order where it can), no cycle (named in err), durations within the bounds above, "io"
 * "http" calling "/task" with "returns" (or an appliance: "/kettle",
 * "/grinder", "/toaster") or "sql" calling "brew_coffee". A built-in's
 * name is refused. Returns a new recipe (recipe_free), or NULL with err. */
struct recipe *recipe_parse(const char *text, size_t len, char *err, size_t errlen);
/* Frees a recipe of recipe_parse; accepts NULL. */
void recipe_free(struct recipe *r);
/* The recipe's JSON as recipe_parse reads it (its steps at scale 1).
 * Returns new (malloc'd), or NULL out of memory. */
char *recipe_json(const struct recipe *r);

/* ---- The book -------------------------------------------------------- */

struct recipe_book;
/* Returns new, or NULL. */
struct recipe_book *recipe_book_new(void);
/* Frees b and its recipes; accepts NULL. No order may still borrow one. */
void recipe_book_free(struct recipe_book *b);
/* The recipe called name: a built-in, or one of b's not deleted; NULL. */
const struct recipe *recipe_book_find(const struct recipe_book *b, const char *name);
/* Stores r (takes it) as of stamp (the caller's clock), replacing a recipe of the same name (which stays
 * alive while orders hold it). A full book forgets a recipe no order holds
 * (the table still has it). Returns 0, or -1 when every slot is held (r is
 * freed then). */
int recipe_book_put(struct recipe_book *b, struct recipe *r, long long stamp);
/* The stamp the stored recipe called name was put with, or -1 when b
 * stores none of that name (a built-in's included). */
long long recipe_book_stamp(const struct recipe_book *b, const char *name);
/* Forgets the recipe called name (orders holding it keep it until they
 * release it). Returns 1 if it was known, else 0. */
int recipe_book_delete(struct recipe_book *b, const char *name);
/* An order borrows r from submit to end: hold, then release, once each
 * (no-ops for the built-ins). */
void recipe_book_hold(struct recipe_book *b, const struct recipe *r);
void recipe_book_release(struct recipe_book *b, const struct recipe *r);
/* The names of b's stored recipes (not the built-ins), up to max; returns
 * how many. Borrowed until b changes. */
int recipe_book_names(const struct recipe_book *b, const char **names, int max);

#endif
