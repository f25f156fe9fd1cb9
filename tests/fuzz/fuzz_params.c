/* fuzz_params: a libFuzzer target for the request parsing and validation
 * of params.c (params_make_coffee, params_compare, params_stats,
 * params_order_id, parse_double, parse_int64). The input is read as a
 * query string: '&' separates pairs, the first '=' a key from its value (a
 * pair without '=' has a NULL value, as the HTTP front passes it). Besides
 * crashes (built with ASan+UBSan), it checks each function's contract: what
 * an accepted request holds, and an error message that is non-empty and
 * stays within the buffer it was given. Run it with scripts/fuzz. */
#include "params.h"
#include "workflow.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ARGS 16 /* what the HTTP front passes at most */
#define ERRLEN 200

/* A failed contract: abort, so that libFuzzer saves the input. */
#define CHECK(cond)                                                                                                    \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            fprintf(stderr, "fuzz_params: %s:%d: contract broken: %s\n", __FILE__, __LINE__, #cond);                   \
            abort();                                                                                                   \
        }                                                                                                              \
    } while (0)

/* err after a call that returned rc: a message on failure (empty only in
 * a buffer of one byte), and never a byte written past errlen (the canary
 * after it survives). */
static void check_err(int rc, const char *err, size_t errlen)
{
    CHECK(err[errlen] == '#');
    if (rc != 0) {
        CHECK(memchr(err, '\0', errlen) != NULL);
        CHECK(errlen == 1 || err[0] != '\0');
    }
}

static void check_scale(double s)
{
    CHECK(isfinite(s) && s >= 0 && s <= SCALE_MAX && !signbit(s));
}

static void fuzz_pairs(const struct query_arg *args, size_t n, size_t errlen)
{
    char err[ERRLEN + 1];

    struct order_params op;
    memset(err, '#', sizeof err);
    int rc = params_make_coffee(args, n, 1.0, &op, err, errlen);
    check_err(rc, err, errlen);
    if (rc == 0) {
        CHECK(op.mode >= 0 && op.mode < wf_nmodes);
        check_scale(op.scale);
    }

    struct compare_params cp;
    memset(err, '#', sizeof err);
    rc = params_compare(args, n, 1.0, &cp, err, errlen);
    check_err(rc, err, errlen);
    if (rc == 0) {
        CHECK(cp.nmodes >= 2 && cp.nmodes <= wf_nmodes);
        for (int i = 0; i < cp.nmodes; i++) {
            CHECK(cp.modes[i] >= 0 && cp.modes[i] < wf_nmodes);
            for (int j = 0; j < i; j++)
                CHECK(cp.modes[i] != cp.modes[j]);
        }
        check_scale(cp.scale);
    }

    const char *since = (const char *)1;
    memset(err, '#', sizeof err);
    rc = params_stats(args, n, &since, err, errlen);
    check_err(rc, err, errlen);
    if (rc == 0 && since) {
        /* Borrowed from one of the values, and only timestamp characters. */
        int found = 0;
        for (size_t i = 0; i < n; i++)
            found |= since == args[i].value;
        CHECK(found);
        CHECK(strlen(since) > 0 && strlen(since) <= 40);
        CHECK(strspn(since, "0123456789-:.+ TZtz") == strlen(since));
    }
}

static void fuzz_value(const char *v, size_t errlen)
{
    double d;
    if (parse_double(v, &d) == 0)
        CHECK(isfinite(d));

    int64_t x;
    static const int64_t bounds[][2] = {{0, 10}, {-5, 5}, {1, INT64_MAX}, {INT64_MIN, INT64_MAX}};
    for (size_t i = 0; i < sizeof bounds / sizeof bounds[0]; i++)
        if (parse_int64(v, bounds[i][0], bounds[i][1], &x) == 0)
            CHECK(x >= bounds[i][0] && x <= bounds[i][1]);

    char err[ERRLEN + 1];
    memset(err, '#', sizeof err);
    int64_t id = 0;
    int rc = params_order_id(v, &id, err, errlen);
    check_err(rc, err, errlen);
    if (rc == 0) {
        CHECK(id >= 1);
        CHECK(strspn(v, "0123456789") == strlen(v)); /* digits only, no sign */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 8192)
        return 0;
    /* The first byte picks the error buffer's size (1..ERRLEN), so that
     * truncated messages are exercised too. */
    size_t errlen = 1 + data[0] % ERRLEN;
    /* A copy of exactly the input, NUL-terminated: ASan sees any read
     * past it. Pairs are cut in place. */
    char *text = malloc(size);
    if (!text)
        return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';

    struct query_arg args[MAX_ARGS];
    size_t n = 0;
    for (char *p = text; n < MAX_ARGS;) {
        char *amp = strchr(p, '&');
        if (amp)
            *amp = '\0';
        char *eq = strchr(p, '=');
        if (eq)
            *eq = '\0';
        args[n++] = (struct query_arg){p, eq ? eq + 1 : NULL};
        if (!amp)
            break;
        p = amp + 1;
    }
    fuzz_pairs(args, n, errlen);
    for (size_t i = 0; i < n; i++) {
        fuzz_value(args[i].key, errlen);
        if (args[i].value)
            fuzz_value(args[i].value, errlen);
    }
    free(text);
    return 0;
}
