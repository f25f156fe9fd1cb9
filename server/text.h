/* text: copying text that goes into JSON. jansson refuses a string that is
 * not valid UTF-8, and an answer that cannot be encoded would be lost:
 * everything echoed from outside (a request's value, a kitchen's answer, a
 * database's message) passes through here first. */
#ifndef COFFEE_TEXT_H
#define COFFEE_TEXT_H

#include <stddef.h>

/* Copies src into dst (cap bytes, NUL included; cap > 0) as valid UTF-8:
 * each byte that does not start a well-formed sequence becomes '?', and
 * the copy is cut at a character boundary, never inside one. Returns the
 * bytes written, NUL excluded. */
size_t text_copy_utf8(char *dst, size_t cap, const char *src);

#endif
