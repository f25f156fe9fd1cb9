/* trace: traceparent parsing and new span ids (see trace.h). Owns nothing.
 * Ids come from getrandom(2), which never blocks once the kernel's pool is
 * initialised (GRND_NONBLOCK: a clock-seeded generator before that). */
#include "trace.h"

#include "clock.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

static int is_lower_hex(const char *s, size_t n)
{
    int nonzero = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return -1;
        nonzero |= c != '0';
    }
    return nonzero;
}

int trace_parse(const char *h, struct trace_ctx *ctx)
{
    if (!h)
        return -1;
    size_t len = strlen(h);
    /* version 00 is exactly 55 characters; a later version may add fields
     * after a '-'. */
    if (len < TRACEPARENT_LEN || h[2] != '-' || h[35] != '-' || h[52] != '-')
        return -1;
    if (is_lower_hex(h, 2) < 0 || !strncmp(h, "ff", 2))
        return -1;
    if (!strncmp(h, "00", 2) ? len != TRACEPARENT_LEN : (len > TRACEPARENT_LEN && h[TRACEPARENT_LEN] != '-'))
        return -1;
    if (is_lower_hex(h + 3, 32) != 1 || is_lower_hex(h + 36, 16) != 1 || is_lower_hex(h + 53, 2) < 0)
        return -1;
    memcpy(ctx->trace_id, h + 3, 32);
    ctx->trace_id[32] = '\0';
    memcpy(ctx->span_id, h + 36, 16);
    ctx->span_id[16] = '\0';
    memcpy(ctx->flags, h + 53, 2);
    ctx->flags[2] = '\0';
    return 0;
}

/* n random bytes into out; never all zeros. */
static void random_bytes(unsigned char *out, size_t n)
{
    ssize_t got = getrandom(out, n, GRND_NONBLOCK);
    if (got < 0 || (size_t)got < n) {
        /* splitmix64 from the clock and a counter: unique enough for ids. */
        static _Atomic uint64_t counter;
        const uint64_t golden = 0x9e3779b97f4a7c15ULL;
        uint64_t x = (uint64_t)clock_mono_ns() ^ (atomic_fetch_add(&counter, golden) + golden);
        for (size_t i = 0; i < n; i++) {
            x += 0x9e3779b97f4a7c15ULL;
            uint64_t z = x;
            z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
            z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
            out[i] = (unsigned char)(z ^ (z >> 31));
        }
    }
    out[0] |= out[0] ? 0 : 1; /* an all-zero id is invalid */
}

static void to_hex(const unsigned char *b, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
}

int trace_child(const struct trace_ctx *parent, char *out, size_t len)
{
    if (len < TRACEPARENT_SIZE)
        return -1;
    unsigned char span[8], trace[16];
    char span_hex[17], trace_hex[33];
    random_bytes(span, sizeof span);
    to_hex(span, sizeof span, span_hex);
    if (!parent) {
        random_bytes(trace, sizeof trace);
        to_hex(trace, sizeof trace, trace_hex);
    }
    snprintf(out, len, "00-%s-%s-%s", parent ? parent->trace_id : trace_hex, span_hex, parent ? parent->flags : "01");
    return 0;
}
