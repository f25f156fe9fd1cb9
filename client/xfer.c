/* xfer: an easy handle and its bounded answer (see xfer.h). Owns nothing:
 * the caller owns the handle and the body's buffer. */
#include "xfer.h"

#include <stdlib.h>
#include <string.h>

/* CURLOPT_WRITEFUNCTION: appends to the body, bounded. A short count makes
 * curl fail the transfer with CURLE_WRITE_ERROR. */
static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    struct xfer_body *b = arg;
    size_t n = size * nmemb;
    if (n > b->max - b->len) {
        b->too_large = 1;
        return 0;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->buf, cap);
        if (!p) {
            b->oom = 1;
            return 0;
        }
        b->buf = p;
        b->cap = cap;
    }
    memcpy(b->buf + b->len, data, n);
    b->len += n;
    b->buf[b->len] = '\0';
    return n;
}

CURL *xfer_easy(const char *url, long timeout_ms, const char *agent, struct xfer_body *b, void *priv)
{
    CURL *e = curl_easy_init();
    if (!e)
        return NULL;
    CURLcode c = curl_easy_setopt(e, CURLOPT_URL, url);
    if (c == CURLE_OK)
        c = curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
    if (c == CURLE_OK) /* curl's resolver must not use signals: we are multi-handle */
        c = curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    if (c == CURLE_OK)
        c = curl_easy_setopt(e, CURLOPT_USERAGENT, agent);
    if (c == CURLE_OK)
        c = curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    if (c == CURLE_OK)
        c = curl_easy_setopt(e, CURLOPT_WRITEDATA, b);
    if (c == CURLE_OK)
        c = curl_easy_setopt(e, CURLOPT_PRIVATE, priv);
    if (c != CURLE_OK) {
        curl_easy_cleanup(e);
        return NULL;
    }
    return e;
}

void xfer_body_reset(struct xfer_body *b)
{
    b->len = 0;
    b->too_large = 0;
    b->oom = 0;
    if (b->buf)
        b->buf[0] = '\0';
}

const char *xfer_body_text(const struct xfer_body *b)
{
    return b->buf ? b->buf : "";
}

void xfer_body_free(struct xfer_body *b)
{
    free(b->buf);
    b->buf = NULL;
    b->len = b->cap = 0;
}
