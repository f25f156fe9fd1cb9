/* config: command-line flags with an environment variable each, described
 * once in a table that also prints --help. A flag wins over its variable,
 * which wins over the default already stored in the destination. */
#ifndef COFFEE_CONFIG_H
#define COFFEE_CONFIG_H

#include <stddef.h>
#include <stdio.h>

enum opt_type {
    OPT_INT,    /* int *dst, bounded by [min, max] */
    OPT_DOUBLE, /* double *dst, finite, bounded by [min, max] */
    OPT_STRING, /* const char **dst, borrowed from argv/environ */
    OPT_FLAG    /* int *dst set to 1 by the flag; the variable accepts 1/0/true/false */
};

struct opt {
    const char *name; /* long flag without the dashes */
    const char *env;  /* environment variable, or NULL */
    enum opt_type type;
    void *dst;
    double min, max;
    const char *help;
};

enum {
    CONFIG_OK = 0,
    CONFIG_HELP = 1,  /* --help was given; usage already printed (not an
                         error: the one positive value, named here) */
    CONFIG_ERROR = -1 /* message in err */
};

/* Applies the environment, then argv, to the destinations. Returns one of
 * CONFIG_*. Unknown flags, missing values, bad numbers and stray arguments
 * are errors. */
int config_parse(const struct opt *opts, size_t nopts, int argc, char **argv, const char *usage_head, char *err,
                 size_t errlen);
/* Prints usage_head and one line per option, with its current value as the
 * default (call before parsing for the true defaults). */
void config_usage(FILE *out, const char *usage_head, const struct opt *opts, size_t nopts);

#endif
