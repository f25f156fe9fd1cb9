/* hgrm_parse: the .hgrm text read back (see hgrm_parse.h). */
#include "hgrm_parse.h"

#include <string.h>

/* Parses what hist_write_hgrm wrote, as HdrHistogram's plotter reads it:
 * the header, then a row per line until the "#[" lines. 0 or -1. */
int hgrm_parse(FILE *f, struct hgrm *g)
{
    char line[256], a[32], b[32], c[32], d[32];
    memset(g, 0, sizeof *g);
    rewind(f);
    if (!fgets(line, sizeof line, f) || sscanf(line, "%31s %31s %31s %31s", a, b, c, d) != 4 || strcmp(a, "Value") ||
        strcmp(b, "Percentile") || strcmp(c, "TotalCount") || strcmp(d, "1/(1-Percentile)"))
        return -1;
    if (!fgets(line, sizeof line, f) || strcmp(line, "\n") != 0)
        return -1;
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "#[Mean", 6)) {
            g->footer += sscanf(line, "#[Mean = %lf, StdDeviation = %lf]", &g->mean, &g->stddev) == 2;
        } else if (!strncmp(line, "#[Max", 5)) {
            g->footer += sscanf(line, "#[Max = %lf, Total count = %llu]", &g->max, &g->total) == 2;
        } else if (!strncmp(line, "#[Buckets", 9)) {
            g->footer++;
        } else {
            if (g->nrows == (int)(sizeof g->row / sizeof g->row[0]))
                return -1;
            struct hgrm_row *r = &g->row[g->nrows++];
            r->ncols = sscanf(line, "%lf %lf %llu %lf", &r->value, &r->pct, &r->count, &r->inv);
            if (r->ncols < 3)
                return -1;
        }
    }
    return 0;
}

int hgrm_parse_file(const char *path, struct hgrm *g)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    int rc = hgrm_parse(f, g);
    fclose(f);
    return rc;
}
