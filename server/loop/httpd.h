/* httpd: a libmicrohttpd daemon driven by an evloop (external epoll mode).
 *
 * MHD's own epoll fd is watched by the loop; MHD_run happens on the loop
 * thread only, when that fd is readable, when MHD's timeout expires, and
 * before the loop sleeps after a connection was resumed (MHD 0.9.75 in
 * external mode has no wake-up of its own for resumes). Shared by
 * coffee-server and coffee-kitchen. */
#ifndef COFFEE_HTTPD_H
#define COFFEE_HTTPD_H

#include <microhttpd.h>
#include <stddef.h>

struct evloop;
struct httpd;

struct httpd_options {
    const char *bind;        /* numeric IPv4/IPv6 address */
    int port;                /* 0 = any free port */
    unsigned conn_limit;     /* MHD_OPTION_CONNECTION_LIMIT */
    size_t conn_memory;      /* per-connection memory pool, bytes (0 = MHD's) */
    unsigned conn_timeout_s; /* idle connection timeout (0 = none) */
    long header_timeout_ms;  /* a request (its headers, and a body if any) must all arrive within
                                this, counted from the connection's start or its previous
                                request's end; else the connection is closed (0 = no deadline).
                                Needs handlers that pass httpd_request_read's gate. */
    unsigned per_ip_limit;   /* connections one client address may hold (0 = no limit) */
    MHD_AccessHandlerCallback handler;
    void *handler_arg;
    MHD_RequestCompletedCallback completed; /* may be NULL */
    void *completed_arg;
};

/* Starts a daemon on loop. Returns new, or NULL with a message in err. */
struct httpd *httpd_start(struct evloop *loop, const struct httpd_options *opt, char *err, size_t errlen);
/* Stops accepting new connections (MHD_quiesce_daemon); existing ones go on. */
void httpd_quiesce(struct httpd *h);
/* Stops the daemon and frees h; accepts NULL. No connection may be
 * suspended any more (resume them and let the loop run first). */
void httpd_free(struct httpd *h);
/* The port actually bound. */
int httpd_port(const struct httpd *h);
/* Closes every connection that is not suspended (after a run of the daemon,
 * so that answers already resumed are written first): what it still had to
 * send is lost. For shutdown, against clients that stopped reading. Returns
 * how many it closed; MHD completes them on its next run. Loop thread only. */
int httpd_close_unsuspended(struct httpd *h);
/* Resumes a suspended connection and makes sure MHD processes it before
 * the loop next sleeps. Loop thread only. */
void httpd_resume(struct httpd *h, struct MHD_Connection *c);

/* The gate every access handler passes first. MHD calls the handler as
 * soon as a request's headers are read, again for each piece of its body,
 * and once more when it was read to its end; 0.9.75 closes the connection
 * (no keep-alive) after an answer queued before that last call. Returns 0
 * while the handler should just return MHD_YES (a body is consumed and
 * ignored: no endpoint takes one), 1 once the request may be answered:
 * then *con_cls is NULL, or the context the handler stored (a resumed
 * request). */
int httpd_request_read(void **con_cls, size_t *upload_data_size);
/* Hands a resumed request back to the gate as if it had just been read
 * whole: the next httpd_request_read passes it (with *con_cls NULL) to
 * the handler's routes, which may suspend it again. */
void httpd_request_reread(void **con_cls);
/* Whether con_cls (in a completion callback) is the gate's own mark: a
 * request that ended before it was read whole, with no context to free. */
int httpd_request_unread(const void *con_cls);

/* Queues a response whose body is copied from body (JSON). Extra headers
 * are given as name/value pairs ending in NULL. Returns MHD_YES/MHD_NO. */
enum MHD_Result httpd_respond(struct MHD_Connection *c, unsigned status, const char *body, size_t len, ...);
/* Queues body with content_type. mode says who owns body:
 * MHD_RESPMEM_MUST_FREE takes it (malloc'd; freed by MHD, or here on
 * failure), MHD_RESPMEM_MUST_COPY copies it, MHD_RESPMEM_PERSISTENT
 * borrows it for good (static data). */
enum MHD_Result httpd_respond_as(struct MHD_Connection *c, unsigned status, const char *content_type, void *body,
                                 size_t len, enum MHD_ResponseMemoryMode mode);
/* httpd_respond_as for JSON that takes body; a 503 gets Retry-After: 1,
 * as every 503 of ours does. */
enum MHD_Result httpd_respond_take(struct MHD_Connection *c, unsigned status, char *body, size_t len);
/* {"error": msg} as JSON text (returns new, malloc'd; NULL out of memory).
 * msg may be any bytes: what is not valid UTF-8 becomes '?', so the
 * answer can always be encoded. */
char *httpd_error_json(const char *msg);
/* Queues {"error": msg} with status (and Retry-After: 1 for 503). */
enum MHD_Result httpd_respond_error(struct MHD_Connection *c, unsigned status, const char *msg);
/* The same with one extra header (e.g. Allow for 405), instead of the
 * default Retry-After. */
enum MHD_Result httpd_respond_error_with(struct MHD_Connection *c, unsigned status, const char *msg, const char *header,
                                         const char *value);

#endif
