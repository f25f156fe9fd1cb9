/* xfer: what the client's two load drivers (fetch: closed loop, openloop:
 * open loop) share about one GET: an easy handle set up for a multi
 * handle, and its answer in a growing buffer with a bound. */
#ifndef COFFEE_XFER_H
#define COFFEE_XFER_H

#include <curl/curl.h>
#include <stddef.h>

/* An answer so far: buf is NUL-terminated once anything arrived (NULL
 * before); the caller owns buf (xfer_body_free). */
struct xfer_body {
    char *buf;
    size_t len, cap;
    size_t max;    /* bound on len */
    int too_large; /* the answer passed max: the transfer fails (CURLE_WRITE_ERROR) */
    int oom;       /* buf could not grow: the transfer fails the same way */
};

/* Makes an easy handle that GETs url within timeout_ms, as user agent
 * agent, without signals (a multi handle's rule), writing the answer into
 * b and carrying priv as CURLOPT_PRIVATE. NULL if curl refused. */
CURL *xfer_easy(const char *url, long timeout_ms, const char *agent, struct xfer_body *b, void *priv);
/* Empties b for the next answer (keeps its buffer). */
void xfer_body_reset(struct xfer_body *b);
/* The answer as a string ("" when none arrived). */
const char *xfer_body_text(const struct xfer_body *b);
void xfer_body_free(struct xfer_body *b);

#endif
