/* hist: a log-linear latency histogram, HdrHistogram's layout.
 *
 * Values (microseconds, 0..HIST_MAX) fall in buckets that are exact below
 * 2^(HIST_SUB_BITS+1) and, above, HIST_SUB half-buckets per power of two:
 * a bucket is never wider than 1/HIST_SUB of its lower bound. A percentile
 * is reported as its bucket's midpoint (clamped to the exact min and max),
 * so it is within 1/(2*HIST_SUB) = 0.4% of the value of that rank.
 * Fixed size (35 KB), recording never allocates; no I/O. */
#ifndef COFFEE_CLIENT_HIST_H
#define COFFEE_CLIENT_HIST_H

#include <stdint.h>
#include <stdio.h>

#define HIST_SUB_BITS 7
#define HIST_SUB (1u << HIST_SUB_BITS) /* 128 */
#define HIST_TOP_BIT 39                /* values below 2^40 us (12 days) */
#define HIST_MAX ((UINT64_C(1) << (HIST_TOP_BIT + 1)) - 1)
#define HIST_NBUCKETS ((HIST_TOP_BIT - HIST_SUB_BITS) * HIST_SUB + 2 * HIST_SUB)
/* The bound on a percentile's relative error. */
#define HIST_REL_ERROR (1.0 / (2.0 * HIST_SUB))

struct hist {
    uint64_t counts[HIST_NBUCKETS];
    uint64_t n;
    uint64_t min, max; /* exact; min is UINT64_MAX while empty */
    double sum;
};

/* Empties h. */
void hist_init(struct hist *h);
/* Counts v once (values over HIST_MAX count as HIST_MAX). */
void hist_record(struct hist *h, uint64_t v);
/* The p-th percentile (0 < p <= 100, nearest rank) within HIST_REL_ERROR;
 * p = 100 is the exact max. 0 when h is empty. */
uint64_t hist_percentile(const struct hist *h, double p);
/* Mean of the values counted, or 0. */
double hist_mean(const struct hist *h);
/* Writes h as HdrHistogram's percentile distribution (the text of its
 * outputPercentileDistribution, and of wrk2's --latency spectrum, which
 * HdrHistogram's plotter loads): a header, then rows "Value Percentile
 * TotalCount 1/(1-Percentile)" at percentile levels that halve their
 * distance to 100% every ticks_per_half rows (HdrHistogram's iterator; 5
 * is what wrk2 prints), the last row at 1.0 without its fourth column,
 * then the "#[Mean", "#[Max" and "#[Buckets" lines. Values are divided by
 * unit (1000 writes microseconds as ms) and are each bucket's highest
 * value, clamped to the exact min and max. An empty h writes the header
 * and the footer only. Returns 0, or -1 on a write error. */
int hist_write_hgrm(const struct hist *h, FILE *f, double unit, int ticks_per_half);

/* Which bucket v falls in, and the lowest value and width of bucket i
 * (exposed for the unit test). */
unsigned hist_index(uint64_t v);
void hist_bucket(unsigned i, uint64_t *lowest, uint64_t *width);

#endif
