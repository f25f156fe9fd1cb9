/* render: the client's text output. A side-by-side table of the modes'
 * results, and timelines of orders drawn as bars on one time axis, so that
 * the modes compare at a glance. Writes to the FILE it is given; owns
 * nothing. */
#ifndef COFFEE_CLIENT_RENDER_H
#define COFFEE_CLIENT_RENDER_H

#include "tally.h"

#include <stdio.h>

#define RENDER_MIN_WIDTH 60
#define RENDER_MAX_WIDTH 1000

struct render_style {
    FILE *out;
    int width; /* terminal columns, RENDER_MIN_WIDTH..RENDER_MAX_WIDTH */
    int ascii; /* '#' and '.' instead of block characters */
};

/* An order to draw, with its title (e.g. "blocking"). Both borrowed. */
struct timeline {
    const char *title;
    const struct order_view *v;
};

/* Prints one column per tally: ok/total, orders/s, latencies, server
 * times, mean time per step, errors by kind (and an example of each). */
void render_summary(const struct render_style *st, const struct tally *const t[], int nt,
                    const struct step_names *names);

/* Prints each timeline as a block of rows, one per step, every block on the
 * same time axis; then the critical path and all-steps-in-a-row guides. */
void render_timelines(const struct render_style *st, const struct timeline tl[], int n, const struct step_names *names);

/* Prints two timelines side by side on the same axis, then a table of each
 * step's start-end in both and its result. */
void render_side_by_side(const struct render_style *st, const struct timeline tl[2], const struct step_names *names);

/* The separator of titles: a middle dot, or '-' in ASCII. */
const char *render_dot(const struct render_style *st);

#endif
