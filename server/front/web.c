/* web: which paths answer the compiled-in page (see web.h).
 * Owns nothing; the bytes live in the generated web_index_html.c. */
#include "web.h"

#include <string.h>

const char *web_page(const char *url, size_t *len)
{
    if (strcmp(url, "/") != 0 && strcmp(url, "/index.html") != 0)
        return NULL;
    return web_index_html(len);
}
