/* rush: GET /rush?modes=M1[,M2...]&customers=N[&scale=S][&recipe=R], rush hour.
 *
 * The server places N orders of each asked mode at the same instant,
 * through the front's admission, executors, rows and metrics (exactly as N
 * clients of /make-coffee would), and streams their ends as Server-Sent
 * Events. A browser opens only about six HTTP/1.1 connections to one
 * server, so a page cannot be N customers itself: the server places them.
 *
 * The stream (text/event-stream):
 *   event: start    data: {"modes":[...],"customers":N,"scale":S,"workers":W,
 *                          "db_pool":P,"threads_before":T}
 *   id: SEQ         (arrival order of the order, 0..N*modes-1; modes interleaved)
 *   event: order    data: the order's JSON, as /make-coffee answers it
 *   ... one per order, as each ends ...
 *   event: summary  data: one per mode, in the asked order (rush_summary_json)
 *   event: end      data: {}
 * and comment lines (": keep-alive") every second while nothing else is
 * sent: they let MHD notice a client that went away.
 *
 * A client that closes the stream stops nothing: every order runs to its
 * end and keeps its row; the stream's memory is freed once MHD has let go
 * of the response and the last order ended. Loop thread only. */
#ifndef COFFEE_RUSH_H
#define COFFEE_RUSH_H

#include "params.h"

#include <microhttpd.h>
#include <stddef.h>

struct front;

/* Answers one /rush request (the access handler's last call for it, the
 * request read): 400 for bad arguments, 503 (Retry-After) when the front
 * refuses the orders, else 200 and the stream. args are borrowed. */
enum MHD_Result rush_route(struct front *f, struct MHD_Connection *c, const struct query_arg *args, size_t nargs);

#endif
