/* hgrm_parse: reads back the .hgrm text that hist_write_hgrm writes (and
 * wrk2 --latency and HdrHistogram print), as HdrHistogram's plotter reads
 * it: the header, a row per line, the "#[" footer. For the tests. */
#ifndef COFFEE_TESTS_HGRM_PARSE_H
#define COFFEE_TESTS_HGRM_PARSE_H

#include <stdio.h>

struct hgrm_row {
    double value, pct, inv;
    unsigned long long count;
    int ncols; /* 4, or 3 on the last row (percentile 1.0) */
};
struct hgrm {
    struct hgrm_row row[400];
    int nrows;
    double mean, stddev, max;
    unsigned long long total;
    int footer; /* footer lines read */
};

/* Parses f from its start into *g. 0, or -1 when it is not that text. */
int hgrm_parse(FILE *f, struct hgrm *g);
/* hgrm_parse of the file at path. 0 or -1. */
int hgrm_parse_file(const char *path, struct hgrm *g);

#endif
