/* num: strict parsing of decimal numbers, for flags (config.c) and
 * request parameters (params.c). Pure functions with no I/O. */
#ifndef COFFEE_NUM_H
#define COFFEE_NUM_H

#include <stdint.h>

/* Parses all of s as a finite decimal double. No leading/trailing space,
 * no hex, no inf/nan. Returns 0 or -1. */
int parse_double(const char *s, double *out);
/* Parses all of s as a decimal integer in [min, max]. Returns 0 or -1. */
int parse_int64(const char *s, int64_t min, int64_t max, int64_t *out);

#endif
