/* trace_route: GET /trace?seconds=S, the flight recorder's last S seconds
 * (1..60, default 10) as Chrome trace-event JSON (flight.h says what is in
 * it); any other seconds (0, 61, x, empty) is a JSON 400. Loop thread. */
#ifndef COFFEE_TRACE_ROUTE_H
#define COFFEE_TRACE_ROUTE_H

#include "params.h"

#include <microhttpd.h>
#include <stddef.h>

/* Answers one /trace request; args are borrowed. */
enum MHD_Result trace_route(struct MHD_Connection *c, const struct query_arg *args, size_t nargs);

#endif
