/* promtext: see promtext.h. Owns nothing. */
#include "promtext.h"

#include <stdio.h>

void promtext_header(struct text_buf *b, const char *name, const char *type, const char *help)
{
    text_buf_put(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void promtext_label_value(struct text_buf *b, const char *s)
{
    for (; s && *s; s++) {
        if (*s == '\\')
            text_buf_put(b, "\\\\");
        else if (*s == '"')
            text_buf_put(b, "\\\"");
        else if (*s == '\n')
            text_buf_put(b, "\\n");
        else
            text_buf_put(b, "%c", *s);
    }
}
