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

double hist_mean(const struct hist *h) { return h->n ? h->sum / (double)h->n : 0; }
