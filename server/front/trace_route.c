/* trace_route: GET /trace (see trace_route.h). Owns the answer's text until
 * MHD takes it. Builds the whole trace on the loop thread: a 10 s trace at
 * a rush of 1,000 is a few MB, written in tens of ms; a full ring ~20 MB in
 * ~0.1 s; the trace shows that slice like any other, named GET /trace. */
#include "trace_route.h"

#include "flight.h"
#include "httpd.h"
#include "text.h"

#include <string.h>

#define TRACE_DEFAULT_SECONDS 10

enum MHD_Result trace_route(struct MHD_Connection *c, const struct query_arg *args, size_t nargs)
{
    int64_t seconds = TRACE_DEFAULT_SECONDS;
    for (size_t i = 0; i < nargs; i++) {
        if (strcmp(args[i].key, "seconds") != 0)
            continue;
        if (parse_int64(args[i].value, 1, FLIGHT_MAX_SECONDS, &seconds) != 0)
            return httpd_respond_error(c, MHD_HTTP_BAD_REQUEST, "seconds must be a whole number from 1 to 60");
    }
    /* A full ring is ~20 MB of JSON, ~0.1 s of this loop: its slice (and
     * its stall, if it is one) says so. */
    flight_label("GET /trace", 0, NULL, NULL);
    struct text_buf b;
    text_buf_init(&b, 1 << 16);
    flight_write_trace(&b, (int)seconds);
    char *text = text_buf_finish(&b);
    if (!text)
        return httpd_respond_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
    return httpd_respond_take(c, MHD_HTTP_OK, text, strlen(text));
}
