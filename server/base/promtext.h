/* promtext: what the Prometheus text exposition format 0.0.4 adds to a
 * text buffer (text.h), shared by the server's, the kitchen's and the
 * process's metrics. */
#ifndef COFFEE_PROMTEXT_H
#define COFFEE_PROMTEXT_H

#include "text.h"

/* Appends the "# HELP" and "# TYPE" lines of a metric family. */
void promtext_header(struct text_buf *b, const char *name, const char *type, const char *help);
/* Appends s as a label value: \\, \" and \n escaped (no quotes added). */
void promtext_label_value(struct text_buf *b, const char *s);

#endif
