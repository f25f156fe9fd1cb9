/* workflow: the built-in recipes, the mode table and the dependency logic.
 * Pure data and pure functions: no I/O, no allocation. The tables here are
 * the one copy of these facts: GET /workflow serves them (workflow_json),
 * the page and the bench scripts read them from there. */
#include "workflow.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

enum { BOIL, GRIND, BREW, TOAST };

#define NSTEPS(t) ((int)(sizeof(t) / sizeof(t)[0]))

/* Table order is a topological order: every step comes after the steps it
 * depends on (a unit test checks it). The blocking executor runs the steps
 * in exactly this order. */
static const struct step_def coffee_steps[] = {
    {"boil_water", IO_HTTP, 0, 3000.0, "/kettle", NULL},
    {"grind_coffee_bean", IO_HTTP, 0, 2000.0, "/grinder", NULL},
    {"brew_coffee", IO_SQL, (1u << BOIL) | (1u << GRIND), 1000.0, NULL, NULL},
    {"toast_bread", IO_HTTP, (1u << BOIL) | (1u << GRIND), 900.0, "/toaster", NULL},
};
const struct recipe wf_coffee = {"coffee", NSTEPS(coffee_steps), coffee_steps,
                                 "The seed's breakfast: water and beans at once, then brew and toast."};

/* The seed's first lessons are awaits of timers: kitchen tasks. */
static const struct step_def gather_steps[] = {
    {"A", IO_HTTP, 0, 2000.0, "/task", "A1"},
    {"B", IO_HTTP, 0, 4000.0, "/task", "B2"},
    {"C", IO_HTTP, 0, 1000.0, "/task", "C3"},
};
static const struct recipe wf_gather = {
    "gather", NSTEPS(gather_steps), gather_steps,
    "gather_tasks.py: A, B and C at once. The results come in the order they were asked for (A1, B2, C3); the "
    "steps end in time order (C, A, B)."};

static const struct step_def create_tasks_steps[] = {
    {"A", IO_HTTP, 0, 2000.0, "/task", "A1"},
    {"B", IO_HTTP, 0, 4000.0, "/task", "B2"},
    {"other_work", IO_HTTP, 0, 0.0, "/task", "Do other work here..."},
};
static const struct recipe wf_create_tasks = {
    "create_tasks", NSTEPS(create_tasks_steps), create_tasks_steps,
    "create_tasks.py: A and B are created, the other work is done at once, then both are awaited."};

static const struct step_def hello_steps[] = {
    {"sleep", IO_HTTP, 0, 1000.0, "/task", "... World!"},
};
static const struct recipe wf_hello = {"hello", NSTEPS(hello_steps), hello_steps,
                                       "hello_async.py: one wait of a second on the event loop."};

const struct recipe *const wf_recipes[] = {&wf_coffee, &wf_gather, &wf_create_tasks, &wf_hello};
const int wf_nrecipes = NSTEPS(wf_recipes);

const struct mode_def wf_modes[] = {
    {"blocking", EXEC_BLOCKING, BREW_WORKER, 0,
     "One step after another on a worker thread: every wait adds up. Orders beyond the worker pool queue for a "
     "turn."},
    {"async", EXEC_ASYNC, BREW_POOL, 0,
     "The waits overlap on one event loop; brew and toast still wait for water and beans. Elapsed is close to the "
     "critical path."},
    {"naive", EXEC_ASYNC, BREW_POOL, 1,
     "Everything at once, dependencies ignored: fastest, but brew starts without water and beans, so the coffee "
     "is not ready."},
    {"mixed", EXEC_ASYNC, BREW_ON_LOOP, 0,
     "Async, but brew uses blocking libpq on the loop thread: the loop freezes, toast and every other async "
     "order stall."},
    {"threads", EXEC_THREADS, BREW_SHARED, 0,
     "Blocking calls one after another, but a thread of its own per order: no queue for a worker, so a crowd "
     "finishes in one order's time. The bill: a thread, its stack and context switches per order in flight, "
     "and statements that queue for a shared connection pool."},
    {"offload", EXEC_ASYNC, BREW_OFFLOAD, 0,
     "Async, with the blocking brew handed to a worker thread that the loop awaits (asyncio's to_thread): the "
     "loop keeps running, nothing stalls; each brew in flight costs a thread of a bounded pool."},
};
const int wf_nmodes = (int)(sizeof wf_modes / sizeof wf_modes[0]);
_Static_assert(sizeof wf_modes / sizeof wf_modes[0] <= WF_MAX_MODES, "raise WF_MAX_MODES");
_Static_assert(sizeof coffee_steps / sizeof coffee_steps[0] <= WF_MAX_STEPS, "raise WF_MAX_STEPS");
_Static_assert(WF_MAX_STEPS <= 8 * sizeof(unsigned), "a recipe's steps are bits of an unsigned");

const struct recipe *wf_recipe_builtin(const char *name)
{
    for (int i = 0; i < wf_nrecipes; i++)
        if (!strcmp(wf_recipes[i]->name, name))
            return wf_recipes[i];
    return NULL;
}

unsigned wf_all_steps(const struct recipe *r)
{
    return r->nsteps >= (int)(8 * sizeof(unsigned)) ? ~0u : (1u << r->nsteps) - 1u;
}

int wf_mode_lookup(const char *name)
{
    for (int i = 0; i < wf_nmodes; i++)
        if (!strcmp(wf_modes[i].name, name))
            return i;
    return -1;
}

int wf_step_lookup(const struct recipe *r, const char *name)
{
    for (int i = 0; i < r->nsteps; i++)
        if (!strcmp(r->steps[i].name, name))
            return i;
    return -1;
}

const char *wf_mode_names(void)
{
    static char names[128];
    if (!names[0]) {
        size_t off = 0;
        for (int i = 0; i < wf_nmodes && off < sizeof names; i++)
            off += (size_t)snprintf(names + off, sizeof names - off, "%s%s", i ? "|" : "", wf_modes[i].name);
    }
    return names;
}

unsigned wf_ready(const struct recipe *r, unsigned done, unsigned started, int ignore_deps)
{
    unsigned ready = 0;
    for (int i = 0; i < r->nsteps; i++) {
        unsigned bit = 1u << i;
        if (!(started & bit) && (ignore_deps || (r->steps[i].after & done) == r->steps[i].after))
            ready |= bit;
    }
    return ready;
}

int wf_step_ms(const struct step_def *step, double scale)
{
    return (int)lround(step->planned_ms * scale);
}

double wf_critical_path_ms(const struct recipe *r, double scale)
{
    double finish[WF_MAX_STEPS];
    double longest = 0;
    for (int i = 0; i < r->nsteps; i++) {
        double start = 0;
        for (int j = 0; j < i; j++)
            if ((r->steps[i].after & (1u << j)) && finish[j] > start)
                start = finish[j];
        finish[i] = start + wf_step_ms(&r->steps[i], scale);
        if (finish[i] > longest)
            longest = finish[i];
    }
    return longest;
}

double wf_sequential_ms(const struct recipe *r, double scale)
{
    double sum = 0;
    for (int i = 0; i < r->nsteps; i++)
        sum += wf_step_ms(&r->steps[i], scale);
    return sum;
}

const char *wf_io_name(enum step_io io)
{
    return io == IO_HTTP ? "http" : "sql";
}

const char *wf_exec_name(enum exec_kind exec)
{
    static const char *const names[EXEC_KINDS] = {"blocking", "async", "threads"};
    return names[exec];
}

int wf_mode_blocks_loop(const struct mode_def *mode)
{
    return mode->brew == BREW_ON_LOOP;
}

/* Whether step blocks the thread that runs it in mode (see wf_expected_ms). */
static int step_blocks(const struct mode_def *mode, const struct step_def *step)
{
    return mode->exec != EXEC_ASYNC || (wf_mode_blocks_loop(mode) && step->io == IO_SQL);
}

double wf_expected_ms(const struct recipe *r, const struct mode_def *mode, double scale)
{
    double end[WF_MAX_STEPS], now = 0;
    unsigned done = 0, started = 0;
    /* Each pass starts what is ready (a blocking step runs to its end on
     * the spot), then moves the clock to the next end of an overlapping
     * step. Every pass starts or ends at least one step: at most 2n. */
    for (int pass = 0; done != wf_all_steps(r) && pass < 2 * r->nsteps; pass++) {
        unsigned ready = wf_ready(r, done, started, mode->ignore_deps);
        for (int i = 0; i < r->nsteps; i++) {
            if (!(ready & (1u << i)))
                continue;
            started |= 1u << i;
            end[i] = now + wf_step_ms(&r->steps[i], scale);
            if (step_blocks(mode, &r->steps[i])) {
                now = end[i];
                done |= 1u << i;
            }
        }
        double next = -1;
        for (int i = 0; i < r->nsteps; i++)
            if ((started & ~done & (1u << i)) && (next < 0 || end[i] < next))
                next = end[i];
        if (next < 0)
            continue;
        /* An end seen late (the thread was blocked past it) is seen now. */
        now = fmax(now, next);
        for (int i = 0; i < r->nsteps; i++)
            if ((started & ~done & (1u << i)) && end[i] <= now)
                done |= 1u << i;
    }
    return now;
}
