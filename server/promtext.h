/* promtext: a growing text buffer for the Prometheus text exposition
 * format 0.0.4, shared by the server's, the kitchen's and the process's
 * metrics. Appending never fails loudly: running out of memory marks the
 * buffer, and promtext_finish then returns NULL. */
#ifndef COFFEE_PROMTEXT_H
#define COFFEE_PROMTEXT_H

#include <stddef.h>

struct promtext {
    char *p;
    size_t len, cap;
    int oom;
};

/* Starts an empty buffer of about cap bytes (grown as needed). */
void promtext_init(struct promtext *b, size_t cap);
/* Appends printf-formatted text. */
void promtext_put(struct promtext *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends the "# HELP" and "# TYPE" lines of a metric family. */
void promtext_header(struct promtext *b, const char *name, const char *type, const char *help);
/* Appends s as a label value: \\, \" and \n escaped (no quotes added). */
void promtext_label_value(struct promtext *b, const char *s);
/* Returns the text (new: free() it), or NULL if memory ran out (then the
 * buffer is freed). */
char *promtext_finish(struct promtext *b);

#endif
