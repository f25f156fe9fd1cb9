/* hist: log-linear latency histogram (see hist.h). Owns nothing but the
 * struct; every function is O(1) except hist_percentile (one pass over the
 * buckets). */
#include "hist.h"

#include <math.h>
#include <string.h>

void hist_init(struct hist *h)
{
    memset(h, 0, sizeof *h);
    h->min = UINT64_MAX;
}

unsigned hist_index(uint64_t v)
{
    if (v > HIST_MAX)
        v = HIST_MAX;
    if (v < 2 * HIST_SUB)
        return (unsigned)v;
    unsigned top = 63u - (unsigned)__builtin_clzll(v); /* >= HIST_SUB_BITS + 1 */
    unsigned shift = top - HIST_SUB_BITS;
    return shift * HIST_SUB + (unsigned)(v >> shift); /* v >> shift in [HIST_SUB, 2*HIST_SUB) */
}

void hist_bucket(unsigned i, uint64_t *lowest, uint64_t *width)
{
    if (i < 2 * HIST_SUB) {
        *lowest = i;
        *width = 1;
        return;
    }
    unsigned shift = i / HIST_SUB - 1;
    uint64_t sub = i - shift * HIST_SUB;
    *lowest = sub << shift;
    *width = UINT64_C(1) << shift;
}

void hist_record(struct hist *h, uint64_t v)
{
    if (v > HIST_MAX)
        v = HIST_MAX;
    h->counts[hist_index(v)]++;
    h->n++;
    h->sum += (double)v;
    if (v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
}

uint64_t hist_percentile(const struct hist *h, double p)
{
    if (h->n == 0)
        return 0;
    if (p >= 100)
        return h->max;
    uint64_t rank = (uint64_t)ceil(p / 100.0 * (double)h->n);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_NBUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            uint64_t lo, w;
            hist_bucket(i, &lo, &w);
            uint64_t mid = lo + (w - 1) / 2;
            return mid < h->min ? h->min : mid > h->max ? h->max : mid;
        }
    }
    return h->max;
}

double hist_mean(const struct hist *h)
{
    return h->n ? h->sum / (double)h->n : 0;
}

/* HdrHistogram's percentile iterator: the next level after level (in %),
 * ticks_per_half levels per halving of the distance to 100. */
static double next_level(double level, int ticks_per_half)
{
    double ticks = ticks_per_half * pow(2, floor(log2(100.0 / (100.0 - level))) + 1);
    return level + 100.0 / ticks;
}

/* The value a row reports for bucket i: its highest, within [min, max]. */
static uint64_t row_value(const struct hist *h, unsigned i)
{
    uint64_t lo, w;
    hist_bucket(i, &lo, &w);
    uint64_t v = lo + w - 1;
    return v < h->min ? h->min : v > h->max ? h->max : v;
}

/* The standard deviation from the buckets' midpoints, as HdrHistogram
 * computes it from its equivalent values. */
static double hist_stddev(const struct hist *h)
{
    if (h->n == 0)
        return 0;
    double mean = hist_mean(h), sq = 0;
    for (unsigned i = 0; i < HIST_NBUCKETS; i++) {
        if (!h->counts[i])
            continue;
        uint64_t lo, w;
        hist_bucket(i, &lo, &w);
        double d = (double)lo + (double)(w - 1) / 2.0 - mean;
        sq += d * d * (double)h->counts[i];
    }
    return sqrt(sq / (double)h->n);
}

int hist_write_hgrm(const struct hist *h, FILE *f, double unit, int ticks_per_half)
{
    fprintf(f, "%12s %14s %10s %14s\n\n", "Value", "Percentile", "TotalCount", "1/(1-Percentile)");
    uint64_t seen = 0;
    double level = 0;
    for (unsigned i = 0; i < HIST_NBUCKETS && seen < h->n; i++) {
        if (!h->counts[i])
            continue;
        seen += h->counts[i];
        double v = (double)row_value(h, i) / unit;
        /* Every level this bucket reaches is a row (a bucket can reach
         * several; the last bucket reaches them all, and gives one, as
         * HdrHistogram's iterator does before its 100% row). */
        while (100.0 * (double)seen / (double)h->n >= level) {
            double p = level / 100.0;
            fprintf(f, "%12.3f %2.12f %10llu %14.2f\n", v, p, (unsigned long long)seen, 1.0 / (1.0 - p));
            level = next_level(level, ticks_per_half);
            if (seen == h->n)
                break;
        }
        if (seen == h->n)
            fprintf(f, "%12.3f %2.12f %10llu\n", (double)h->max / unit, 1.0, (unsigned long long)seen);
    }
    fprintf(f, "#[Mean    = %12.3f, StdDeviation   = %12.3f]\n", hist_mean(h) / unit, hist_stddev(h) / unit);
    fprintf(f, "#[Max     = %12.3f, Total count    = %12llu]\n", (double)(h->n ? h->max : 0) / unit,
            (unsigned long long)h->n);
    fprintf(f, "#[Buckets = %12d, SubBuckets     = %12u]\n", HIST_TOP_BIT - HIST_SUB_BITS + 1, 2 * HIST_SUB);
    return ferror(f) ? -1 : 0;
}
