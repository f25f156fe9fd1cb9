/* text: copying text that goes into JSON, and a growing text buffer.
 * jansson refuses a string that is not valid UTF-8, and an answer that
 * cannot be encoded would be lost: everything echoed from outside (a
 * request's value, a kitchen's answer, a database's message) passes
 * through text_copy_utf8 first. */
#ifndef COFFEE_TEXT_H
#define COFFEE_TEXT_H

#include <stddef.h>

/* Copies src into dst (cap bytes, NUL included; cap > 0) as valid UTF-8:
 * each byte that does not start a well-formed sequence becomes '?', and
 * the copy is cut at a character boundary, never inside one. Returns the
 * bytes written, NUL excluded. */
size_t text_copy_utf8(char *dst, size_t cap, const char *src);

/* A growing buffer of text (the metrics' exposition, a rush's stream).
 * Appending never fails loudly: running out of memory sets oom, later
 * appends do nothing, and text_buf_finish returns NULL. A zeroed struct
 * is an empty buffer; p is NUL-terminated once anything was appended. */
struct text_buf {
    char *p;
    size_t len, cap;
    int oom;
};

/* Starts an empty buffer of about cap bytes (grown as needed). */
void text_buf_init(struct text_buf *b, size_t cap);
/* Appends printf-formatted text. */
void text_buf_put(struct text_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Returns the text (the caller frees it; "" if nothing was appended), or
 * NULL if memory ran out; the buffer is empty after either. */
char *text_buf_finish(struct text_buf *b);

#endif
