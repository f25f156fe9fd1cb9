/* hgrm: coffee-client's --hgrm files: a run's latencies written as
 * HdrHistogram's percentile distribution (hist_write_hgrm), one file per
 * mode (and rate), named from the user's prefix. */
#ifndef COFFEE_CLIENT_HGRM_H
#define COFFEE_CLIENT_HGRM_H

#include "hist.h"

struct tally;

/* Writes h (microseconds, written in ms) to PREFIX-MODE[-RATE][-what].hgrm
 * (rate < 0 and what NULL leave them out) and says so on stderr. Returns
 * 0, or -1 after saying why. */
int hgrm_write(const char *prefix, const char *mode, double rate, const char *what, const struct hist *h);
/* The ok orders' client latencies of t as PREFIX-MODE.hgrm. 0 or -1. */
int tally_write_hgrm(const char *prefix, const struct tally *t);

#endif
