/* httpd: libmicrohttpd on our evloop (see httpd.h).
 *
 * Owns: the MHD daemon and the loop watcher on its epoll fd, one timer for
 * MHD's timeout, one struct hconn per open connection (made in MHD's
 * connection notification, freed when it says the connection closed) and
 * the timer that enforces the header deadline. Must never: call MHD_run from inside an MHD callback (it is
 * not re-entrant); it only marks the daemon for a run before the loop sleeps. */
#include "httpd.h"

#include "clock.h"
#include "evloop.h"
#include "list.h"
#include "log.h"
#include "text.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <malloc.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* One open connection: when its request's headers became due. */
struct hconn {
    struct list_node link; /* httpd.conns */
    struct MHD_Connection *c;
    int64_t since_ns; /* waiting for a request's headers since then */
    int waiting;      /* no request of it reached the handler since since_ns */
    int closing;      /* its socket was shut down: MHD closes it */
};

struct httpd {
    struct evloop *loop;
    struct MHD_Daemon *daemon;
    int epoll_fd;
    int port;
    int run_pending; /* a connection was resumed: run before sleeping */
    struct ev_timer timer;
    struct ev_timer trim_timer;
    unsigned nconns;           /* connections open now */
    unsigned conn_peak;        /* connections at their highest since the last trim */
    struct list_node conns;    /* struct hconn, oldest first */
    int64_t header_timeout_ns; /* 0: no header deadline */
    struct ev_timer header_timer;
    MHD_AccessHandlerCallback handler;
    void *handler_arg;
    MHD_RequestCompletedCallback completed;
    void *completed_arg;
};

static void run_daemon(struct httpd *h)
{
    h->run_pending = 0;
    MHD_run(h->daemon);
}

static void on_epoll_fd(struct evloop *loop, int fd, int events, void *arg)
{
    (void)loop, (void)fd, (void)events;
    run_daemon(arg);
}

static void on_timer(struct evloop *loop, struct ev_timer *t)
{
    (void)loop;
    struct httpd *h = container_of(t, struct httpd, timer);
    run_daemon(h);
}

/* Before the loop sleeps: run resumed connections, then set MHD's timeout,
 * which is a hard bound on when MHD_run must be called next. */
static void before_sleep(struct evloop *loop, void *arg)
{
    struct httpd *h = arg;
    if (h->run_pending)
        run_daemon(h);
    MHD_UNSIGNED_LONG_LONG ms;
    if (MHD_get_timeout(h->daemon, &ms) == MHD_YES) {
        if (evloop_timer_start(loop, &h->timer, (int64_t)ms * 1000000LL) != 0)
            h->run_pending = 1; /* no memory for a timer: poll next pass */
    } else {
        evloop_timer_stop(loop, &h->timer);
    }
}

/* MHD's own unescaper (%HH), except that a value holding "%00" is left as
 * it came: decoded, its NUL would hide the rest of it from every C-string
 * comparison ("async%00junk" would read as "async", "/livez%00" as
 * "/livez"). Left encoded, it fails validation like any other bad value. */
static size_t unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls, (void)c;
    if (strstr(s, "%00"))
        return strlen(s);
    return MHD_http_unescape(s);
}

#define TRIM_PERIOD_NS NS_PER_SEC
#define TRIM_MIN_DROP 256u

/* Once a second: after a storm of connections has closed, hands the memory
 * they used back to the system. MHD's per-connection allocations, freed in
 * any order, leave glibc's heap fragmented, and glibc keeps a fragmented
 * heap's free pages; malloc_trim returns them. Only when the connections
 * fell to half their peak or less, by TRIM_MIN_DROP at least: the trim
 * walks the heap, which is cheap but not free. */
static void on_trim_timer(struct evloop *loop, struct ev_timer *t)
{
    struct httpd *h = container_of(t, struct httpd, trim_timer);
    if (h->conn_peak - h->nconns >= TRIM_MIN_DROP && h->nconns <= h->conn_peak / 2) {
        malloc_trim(0);
        h->conn_peak = h->nconns;
    }
    if (evloop_timer_start(loop, t, TRIM_PERIOD_NS) != 0)
        log_warn("no memory for the trim timer: memory freed after a storm of connections may stay");
}

/* MHD's connection notification: counts the connections open and tracks
 * each one (for the header deadline and httpd_close_unsuspended). A
 * connection we have no memory to track is counted but never timed out. */
static void on_connection(void *arg, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode what)
{
    struct httpd *h = arg;
    if (what == MHD_CONNECTION_NOTIFY_STARTED) {
        if (++h->nconns > h->conn_peak)
            h->conn_peak = h->nconns;
        struct hconn *hc = calloc(1, sizeof *hc);
        if (hc) {
            *hc = (struct hconn){.c = c, .since_ns = clock_mono_ns(), .waiting = 1};
            list_push_back(&h->conns, &hc->link);
        }
        *socket_context = hc;
        return;
    }
    if (h->nconns > 0)
        h->nconns--;
    /* 0.9.75 stops listening at its connection limit and starts again only
     * on its next run: without one, nothing would wake it (no fd ready, no
     * timeout with no connection left), and no client would be accepted. */
    h->run_pending = 1;
    struct hconn *hc = *socket_context;
    if (hc) {
        list_remove(&hc->link);
        free(hc);
        *socket_context = NULL;
    }
}

static struct hconn *conn_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* Shuts c's socket down: MHD sees the end on its next run and closes the
 * connection as if the client had (its completion callbacks run then). */
static void conn_shut(struct hconn *hc)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(hc->c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci && !hc->closing) {
        hc->closing = 1;
        shutdown(ci->connect_fd, SHUT_RDWR);
    }
}

/* Every access handler call. Once the request has been read whole (its
 * headers, and a body if it came with one: the gate, httpd_request_read,
 * no longer marks it unread) or answered, it is no longer waited for: a
 * client trickling a body is bounded like one trickling headers. */
static enum MHD_Result on_request(void *arg, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    struct httpd *h = arg;
    enum MHD_Result ret = h->handler(h->handler_arg, c, url, method, version, upload_data, upload_data_size, con_cls);
    struct hconn *hc = conn_of(c);
    if (hc && !httpd_request_unread(*con_cls))
        hc->waiting = 0;
    return ret;
}

/* A request ended: the next one's headers are due from now. */
static void on_completed(void *arg, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    struct httpd *h = arg;
    struct hconn *hc = conn_of(c);
    if (hc) {
        hc->waiting = 1;
        hc->since_ns = clock_mono_ns();
    }
    if (h->completed)
        h->completed(h->completed_arg, c, con_cls, toe);
}

/* The header deadline: closes the connections whose request's headers did
 * not all arrive within header_timeout_ns (a client trickling them, or one
 * that connected and says nothing). Checked a few times per deadline, so a
 * connection is closed at most a quarter of it late. */
static void on_header_timer(struct evloop *loop, struct ev_timer *t)
{
    struct httpd *h = container_of(t, struct httpd, header_timer);
    int64_t now = clock_mono_ns();
    int n = 0;
    for (struct list_node *i = h->conns.next; i != &h->conns; i = i->next) {
        struct hconn *hc = container_of(i, struct hconn, link);
        if (hc->waiting && !hc->closing && now - hc->since_ns >= h->header_timeout_ns) {
            conn_shut(hc);
            n++;
        }
    }
    if (n)
        log_info("closed %d connections whose request headers did not arrive within %lld ms", n,
                 (long long)(h->header_timeout_ns / NS_PER_MS));
    if (evloop_timer_start(loop, t, h->header_timeout_ns / 4) != 0)
        log_warn("no memory for the header-deadline timer: slow clients are bounded by the idle timeout only");
}

static int parse_bind(const char *bind, int port, struct sockaddr_storage *ss, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_PASSIVE, .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai = NULL;
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    int rc = getaddrinfo(bind, portstr, &hints, &ai); /* loop-ok: AI_NUMERICHOST never waits */
    if (rc != 0 || !ai) {
        snprintf(err, errlen, "bad bind address '%s': %s (want a numeric IPv4 or IPv6 address)", bind,
                 gai_strerror(rc));
        return -1;
    }
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo(ai);
    return 0;
}

struct httpd *httpd_start(struct evloop *loop, const struct httpd_options *opt, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    if (parse_bind(opt->bind, opt->port, &ss, err, errlen) != 0)
        return NULL;
    struct httpd *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    h->loop = loop;
    h->timer.cb = on_timer;
    h->trim_timer.cb = on_trim_timer;
    h->header_timer.cb = on_header_timer;
    h->header_timeout_ns = (int64_t)opt->header_timeout_ms * NS_PER_MS;
    h->handler = opt->handler;
    h->handler_arg = opt->handler_arg;
    h->completed = opt->completed;
    h->completed_arg = opt->completed_arg;
    list_init(&h->conns);
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    h->daemon = MHD_start_daemon(flags, (uint16_t)opt->port, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR,
                                 (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT, opt->conn_limit,
                                 MHD_OPTION_CONNECTION_MEMORY_LIMIT, opt->conn_memory ? opt->conn_memory : 32768,
                                 MHD_OPTION_CONNECTION_TIMEOUT, opt->conn_timeout_s, MHD_OPTION_LISTEN_BACKLOG_SIZE,
                                 4096u, MHD_OPTION_PER_IP_CONNECTION_LIMIT, opt->per_ip_limit,
                                 MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, MHD_OPTION_NOTIFY_CONNECTION,
                                 on_connection, h, MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL, MHD_OPTION_END);
    if (!h->daemon) {
        snprintf(err, errlen, "cannot listen on %s:%d (address in use, or not permitted)", opt->bind, opt->port);
        goto free_h;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    h->epoll_fd = info ? info->epoll_fd : -1;
    info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : opt->port;
    if (h->epoll_fd < 0 || evloop_io_set(loop, h->epoll_fd, EV_READ, on_epoll_fd, h) != 0) {
        snprintf(err, errlen, "cannot watch the HTTP daemon's epoll fd");
        goto stop_daemon;
    }
    if (evloop_add_before_sleep(loop, before_sleep, h) != 0) {
        snprintf(err, errlen, "too many before-sleep hooks on the loop");
        goto unwatch;
    }
    if (evloop_timer_start(loop, &h->trim_timer, TRIM_PERIOD_NS) != 0)
        log_warn("no memory for the trim timer: memory freed after a storm of connections may stay");
    if (h->header_timeout_ns > 0 && evloop_timer_start(loop, &h->header_timer, h->header_timeout_ns / 4) != 0)
        log_warn("no memory for the header-deadline timer: slow clients are bounded by the idle timeout only");
    return h;

unwatch:
    evloop_io_del(loop, h->epoll_fd);
stop_daemon:
    MHD_stop_daemon(h->daemon);
free_h:
    free(h);
    return NULL;
}

void httpd_quiesce(struct httpd *h)
{
    /* The listening socket is now ours (MHD_stop_daemon will not close a
     * quiesced one): closing it makes new connections fail at once instead
     * of waiting in the backlog until the process exits. */
    MHD_socket s = MHD_quiesce_daemon(h->daemon);
    if (s != MHD_INVALID_SOCKET)
        close(s);
}

void httpd_free(struct httpd *h)
{
    if (!h)
        return;
    evloop_timer_stop(h->loop, &h->timer);
    evloop_timer_stop(h->loop, &h->trim_timer);
    evloop_timer_stop(h->loop, &h->header_timer);
    evloop_io_del(h->loop, h->epoll_fd);
    evloop_remove_before_sleep(h->loop, before_sleep, h);
    MHD_stop_daemon(h->daemon);
    free(h);
}

int httpd_port(const struct httpd *h)
{
    return h->port;
}

int httpd_close_unsuspended(struct httpd *h)
{
    run_daemon(h); /* answers resumed since the last run are written first */
    int n = 0;
    for (struct list_node *i = h->conns.next; i != &h->conns; i = i->next) {
        struct hconn *hc = container_of(i, struct hconn, link);
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(hc->c, MHD_CONNECTION_INFO_CONNECTION_SUSPENDED);
        if (hc->closing || (ci && ci->suspended))
            continue;
        conn_shut(hc);
        n++;
    }
    return n;
}

/* Marks a request whose end has not been read yet. */
static const char reading_mark;

int httpd_request_read(void **con_cls, size_t *upload_data_size)
{
    if (!*con_cls) { /* headers only */
        *con_cls = (void *)&reading_mark;
        return 0;
    }
    if (*con_cls != &reading_mark)
        return 1; /* the handler's own context: a resumed request */
    if (*upload_data_size) {
        *upload_data_size = 0;
        return 0;
    }
    *con_cls = NULL;
    return 1;
}

int httpd_request_unread(const void *con_cls)
{
    return con_cls == &reading_mark;
}

void httpd_request_reread(void **con_cls)
{
    *con_cls = (void *)&reading_mark;
}

void httpd_resume(struct httpd *h, struct MHD_Connection *c)
{
    MHD_resume_connection(c);
    h->run_pending = 1;
}

/* Adds content_type and the name/value pairs of ap (ending in NULL; ap
 * may be NULL), queues r and drops our reference to it. */
static enum MHD_Result queue(struct MHD_Connection *c, unsigned status, struct MHD_Response *r,
                             const char *content_type, va_list *ap)
{
    enum MHD_Result ok = MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    const char *name;
    while (ap && ok == MHD_YES && (name = va_arg(*ap, const char *)) != NULL)
        ok = MHD_add_response_header(r, name, va_arg(*ap, const char *));
    if (ok == MHD_YES)
        ok = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ok;
}

enum MHD_Result httpd_respond(struct MHD_Connection *c, unsigned status, const char *body, size_t len, ...)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    va_list ap;
    va_start(ap, len);
    enum MHD_Result ok = queue(c, status, r, "application/json", &ap);
    va_end(ap);
    return ok;
}

enum MHD_Result httpd_respond_as(struct MHD_Connection *c, unsigned status, const char *content_type, void *body,
                                 size_t len, enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
    if (!r) {
        if (mode == MHD_RESPMEM_MUST_FREE)
            free(body);
        return MHD_NO;
    }
    return queue(c, status, r, content_type, NULL);
}

enum MHD_Result httpd_respond_take(struct MHD_Connection *c, unsigned status, char *body, size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    if (status == MHD_HTTP_SERVICE_UNAVAILABLE && MHD_add_response_header(r, "Retry-After", "1") != MHD_YES) {
        MHD_destroy_response(r);
        return MHD_NO;
    }
    return queue(c, status, r, "application/json", NULL);
}

char *httpd_error_json(const char *msg)
{
    char safe[512];
    text_copy_utf8(safe, sizeof safe, msg);
    json_t *o = json_pack("{s:s}", "error", safe);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return text;
}

enum MHD_Result httpd_respond_error_with(struct MHD_Connection *c, unsigned status, const char *msg, const char *header,
                                         const char *value)
{
    char *text = httpd_error_json(msg);
    if (!text)
        return MHD_NO;
    if (!header && status == MHD_HTTP_SERVICE_UNAVAILABLE)
        header = "Retry-After", value = "1";
    enum MHD_Result ok = header ? httpd_respond(c, status, text, strlen(text), header, value, NULL)
                                : httpd_respond(c, status, text, strlen(text), NULL);
    free(text);
    return ok;
}

enum MHD_Result httpd_respond_error(struct MHD_Connection *c, unsigned status, const char *msg)
{
    return httpd_respond_error_with(c, status, msg, NULL, NULL);
}
