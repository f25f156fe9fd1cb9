/* trace: W3C Trace Context (https://www.w3.org/TR/trace-context/), the
 * `traceparent` header only: "00-<32 hex trace id>-<16 hex parent id>-<2 hex
 * flags>". The server continues the trace a client sent (or starts one),
 * gives each order a span id of its own, and sends the order's traceparent
 * with every kitchen call, so that one order can be followed across
 * processes. Pure functions but for the random ids; thread-safe. */
#ifndef COFFEE_TRACE_H
#define COFFEE_TRACE_H

#include <stddef.h>

#define TRACEPARENT_LEN 55 /* "00-" 32 "-" 16 "-" 2 */
#define TRACEPARENT_SIZE (TRACEPARENT_LEN + 1)

struct trace_ctx {
    char trace_id[33]; /* lowercase hex, not all zeros */
    char span_id[17];  /* lowercase hex, not all zeros */
    char flags[3];
};

/* Parses a traceparent header value. Returns 0 with ctx filled, or -1 when
 * header is NULL or not valid (version ff, wrong lengths, upper-case or
 * non-hex digits, all-zero ids). A version above 00 is read as 00, as the
 * specification asks, when its first four fields have 00's shape. */
int trace_parse(const char *header, struct trace_ctx *ctx);
/* A new span under parent (NULL: a new trace, flags 01) into out as a
 * traceparent value (out must hold TRACEPARENT_SIZE bytes). Returns 0, or
 * -1 if len is too small. */
int trace_child(const struct trace_ctx *parent, char *out, size_t len);

#endif
