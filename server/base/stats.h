/* stats: order statistics of a sample of doubles, exact (the sample is
 * kept and sorted): /rush's summaries and the client's tally. For a
 * stream too long to keep, client/hist.h is the bounded-error kind. Pure:
 * no I/O, no allocation. */
#ifndef COFFEE_STATS_H
#define COFFEE_STATS_H

#include <stddef.h>

/* Sorts v[0..n) ascending. */
void stats_sort(double *v, size_t n);
/* The p-th percentile (0 < p <= 100, nearest rank) of sorted v[0..n);
 * empty when n is 0 (returned then). */
double stats_percentile(const double *sorted, size_t n, double p, double empty);

#endif
