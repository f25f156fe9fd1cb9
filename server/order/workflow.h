/* workflow: the recipes (workflows as data) and the modes that run them.
 *
 * A recipe's step table is the one definition of its workflow: both
 * executors walk the table of the order's recipe (o->recipe). It knows nothing of HTTP, JSON or SQL: what a step says
 * to the kitchen is kitchen_client's, to the database db's, and how the I/O is performed (blocking or on the loop) is
 * the executor's business only. */
#ifndef COFFEE_WORKFLOW_H
#define COFFEE_WORKFLOW_H

#include <stddef.h>

#define WF_MAX_STEPS 16 /* a recipe's steps: its bit masks are unsigned */
#define WF_MAX_MODES 8
#define WF_RESULT_MAX 64 /* longest result string kept, NUL included */

enum step_io {
    IO_HTTP, /* a kitchen appliance (kitchen_client says how it is called) */
    IO_SQL   /* the database's brew (db says how) */
};

struct step_def {
    const char *name;
    enum step_io io;
    unsigned after;     /* bit mask of the steps this one depends on */
    double planned_ms;  /* at scale 1 */
    const char *target; /* IO_HTTP: the appliance's path at the kitchen */
    const char *result; /* IO_HTTP to "/task": what the kitchen's task answers
                           (NULL: the appliance says its own) */
};

/* A recipe: a named step table. Table order is a topological order (every
 * step comes after the steps it depends on); the blocking executor runs
 * the steps in exactly this order. An order borrows its recipe, which
 * outlives it (the built-ins are static; a teacher's: recipe.h). */
struct recipe {
    const char *name;
    int nsteps; /* 1..WF_MAX_STEPS */
    const struct step_def *steps;
    const char *lesson; /* what it shows, a sentence (may be "") */
};

/* The built-in recipes, coffee first (the default of an order). */
extern const struct recipe wf_coffee;
extern const struct recipe *const wf_recipes[];
extern const int wf_nrecipes;
/* The built-in recipe called name, or NULL. */
const struct recipe *wf_recipe_builtin(const char *name);
/* The bit mask of all of r's steps. */
unsigned wf_all_steps(const struct recipe *r);

/* How a mode runs the workflow. */
enum exec_kind {
    EXEC_BLOCKING, /* one worker thread runs the steps in table order */
    EXEC_ASYNC,    /* the event loop runs them as their dependencies end */
    EXEC_THREADS,  /* a thread of its own per order runs them in table order */
    EXEC_KINDS
};

/* How a mode brews (its IO_SQL step): each kind is one brew service of
 * the executors (server/exec/io.h), the async executor's chosen by this
 * column alone. */
enum brew_kind {
    BREW_WORKER,  /* blocking libpq on the blocking worker's own connection */
    BREW_POOL,    /* the async pool's connections, never blocking the loop */
    BREW_ON_LOOP, /* blocking libpq ON the loop thread (the seed's blocked
                     pourover): the loop stalls, a mistake on purpose */
    BREW_SHARED,  /* blocking libpq on the order's thread, on a connection
                     borrowed from a shared pool (threads) */
    BREW_OFFLOAD, /* blocking libpq on an offload thread that the loop
                     awaits (asyncio's to_thread): the loop runs on */
    BREW_KINDS
};

/* A mode is a row: its executor, its brew, whether it respects the steps'
 * dependencies, and what it teaches. */
struct mode_def {
    const char *name;
    enum exec_kind exec;
    enum brew_kind brew;
    int ignore_deps;    /* start every step at once (the seed's make_coffee_wrong) */
    const char *lesson; /* what the mode teaches, a sentence or two: served
                           at GET /workflow, shown by the page */
};

extern const struct mode_def wf_modes[];
extern const int wf_nmodes;

/* Index of the mode called name, or -1. */
int wf_mode_lookup(const char *name);
/* Index of r's step called name (e.g. "boil_water"), or -1. */
int wf_step_lookup(const struct recipe *r, const char *name);
/* "blocking|async|..." (static storage), for error messages. */
const char *wf_mode_names(void);

/* "http" or "sql" (static storage). */
const char *wf_io_name(enum step_io io);
/* "blocking", "async" or "threads" (static storage). */
const char *wf_exec_name(enum exec_kind exec);
/* Whether mode's brew holds the event loop while it runs (BREW_ON_LOOP):
 * GET /workflow's blocks_loop, and what --max-mixed bounds. */
int wf_mode_blocks_loop(const struct mode_def *mode);

/* Steps not yet started whose dependencies are all done (or all steps not
 * yet started, when ignore_deps). */
unsigned wf_ready(const struct recipe *r, unsigned done, unsigned started, int ignore_deps);
/* Duration of step at scale, in whole milliseconds (what is asked of the
 * kitchen or the database). */
int wf_step_ms(const struct step_def *step, double scale);
/* r's longest dependency chain, in ms at scale. */
double wf_critical_path_ms(const struct recipe *r, double scale);
/* All of r's steps one after another, in ms at scale. */
double wf_sequential_ms(const struct recipe *r, double scale);
/* The elapsed time to expect of an order of recipe r in mode at scale, in
 * ms: the workflow played out on paper as the mode's executor runs it. A step
 * that blocks (every step of EXEC_BLOCKING, the SQL steps of a mode
 * that wf_mode_blocks_loop) holds its thread until it ends, so nothing else starts
 * or is seen to end meanwhile; the others overlap. Ready steps start in
 * table order. blocking: the sequential sum; async: the critical path;
 * naive: the longest step; mixed: the critical path plus what waited
 * behind the blocking brew. */
double wf_expected_ms(const struct recipe *r, const struct mode_def *mode, double scale);

#endif
