/* text: valid UTF-8 out of any bytes, and a growing buffer (see text.h).
 * A text_buf owns its p until text_buf_finish hands it over. */
#include "text.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The length of the well-formed UTF-8 sequence at s (RFC 3629: no
 * overlong forms, no surrogates, nothing above U+10FFFF), or 0. */
static size_t sequence_len(const unsigned char *s)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    size_t n;
    unsigned min;
    unsigned cp;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2, min = 0x80, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3, min = 0x800, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4, min = 0x10000, cp = c & 0x07;
    else
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) /* also stops at the NUL */
            return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

size_t text_copy_utf8(char *dst, size_t cap, const char *src)
{
    const unsigned char *s = (const unsigned char *)src;
    size_t out = 0;
    while (*s) {
        size_t n = sequence_len(s);
        size_t take = n ? n : 1;
        if (out + take >= cap)
            break;
        if (n)
            memcpy(dst + out, s, n);
        else
            dst[out] = '?';
        out += take;
        s += take;
    }
    dst[out] = '\0';
    return out;
}

void text_buf_init(struct text_buf *b, size_t cap)
{
    b->p = malloc(cap);
    b->len = 0;
    b->cap = b->p ? cap : 0;
    b->oom = !b->p;
    if (b->p)
        b->p[0] = '\0';
}

void text_buf_put(struct text_buf *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    for (;;) {
        int n = 0;
        if (b->cap > 0) { /* never a NULL + 0 pointer for vsnprintf */
            va_list ap;
            va_start(ap, fmt);
            n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
            va_end(ap);
            if (n < 0) {
                b->oom = 1;
                return;
            }
            if ((size_t)n < b->cap - b->len) {
                b->len += (size_t)n;
                return;
            }
        }
        size_t cap = b->cap * 2 + (size_t)n + 64;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
}

char *text_buf_finish(struct text_buf *b)
{
    char *p = b->oom ? NULL : b->p ? b->p : strdup("");
    if (b->oom)
        free(b->p);
    *b = (struct text_buf){0};
    return p;
}
