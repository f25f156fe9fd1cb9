/* web: the page served at / (source: server/front/web/index.html, compiled into
 * the program by CMake, so the server needs no files at run time). */
#ifndef COFFEE_WEB_H
#define COFFEE_WEB_H

#include <stddef.h>

#define WEB_CONTENT_TYPE "text/html; charset=utf-8"

/* The page's bytes (static storage, not NUL-terminated; *len set). */
const char *web_index_html(size_t *len);
/* The page if url is one of its paths ("/", "/index.html"), else NULL.
 * Borrowed (static storage); *len set when not NULL. */
const char *web_page(const char *url, size_t *len);

#endif
