/* hgrm: coffee-client's --hgrm files (see hgrm.h). Owns nothing past a
 * call: a histogram built for a tally is freed before it returns. */
#include "hgrm.h"

#include "tally.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int hgrm_write(const char *prefix, const char *mode, double rate, const char *what, const struct hist *h)
{
    char path[1024], r[32] = "";
    if (rate >= 0)
        snprintf(r, sizeof r, "-%g", rate);
    int n = snprintf(path, sizeof path, "%s-%s%s%s%s.hgrm", prefix, mode, r, what ? "-" : "", what ? what : "");
    if (n < 0 || (size_t)n >= sizeof path)
        errno = ENAMETOOLONG;
    FILE *f = n > 0 && (size_t)n < sizeof path ? fopen(path, "w") : NULL;
    int rc = f ? hist_write_hgrm(h, f, 1000.0, 5) : -1;
    if (f && fclose(f) != 0)
        rc = -1;
    if (rc != 0)
        fprintf(stderr, "coffee-client: --hgrm: cannot write %s: %s\n", path, f ? "write error" : strerror(errno));
    else
        fprintf(stderr, "coffee-client: wrote %s (%llu latencies)\n", path, (unsigned long long)h->n);
    return rc;
}

int tally_write_hgrm(const char *prefix, const struct tally *t)
{
    struct hist *h = malloc(sizeof *h);
    if (!h) {
        fprintf(stderr, "coffee-client: out of memory\n");
        return -1;
    }
    hist_init(h);
    for (size_t i = 0; i < t->ok; i++)
        hist_record(h, t->lat[i] > 0 ? (uint64_t)llround(t->lat[i] * 1000) : 0);
    int rc = hgrm_write(prefix, t->mode, -1, NULL, h);
    free(h);
    return rc;
}
