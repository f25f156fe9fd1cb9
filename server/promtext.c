/* promtext: see promtext.h. Owns its buffer until promtext_finish hands it
 * over. */
#include "promtext.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void promtext_init(struct promtext *b, size_t cap)
{
    b->p = malloc(cap);
    b->len = 0;
    b->cap = b->p ? cap : 0;
    b->oom = !b->p;
}

void promtext_put(struct promtext *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap * 2 + (size_t)n;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
}

void promtext_header(struct promtext *b, const char *name, const char *type, const char *help)
{
    promtext_put(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void promtext_label_value(struct promtext *b, const char *s)
{
    for (; s && *s; s++) {
        if (*s == '\\')
            promtext_put(b, "\\\\");
        else if (*s == '"')
            promtext_put(b, "\\\"");
        else if (*s == '\n')
            promtext_put(b, "\\n");
        else
            promtext_put(b, "%c", *s);
    }
}

char *promtext_finish(struct promtext *b)
{
    if (b->oom) {
        free(b->p);
        b->p = NULL;
        return NULL;
    }
    return b->p;
}
