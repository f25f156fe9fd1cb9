/* coffee-kitchen: wires the loop, the HTTP daemon and the appliances.
 * One thread serves every request; delays run on loop timers. */
#include "config.h"
#include "evloop.h"
#include "httpd.h"
#include "kitchen.h"
#include "log.h"
#include "proc.h"

#include <stdio.h>
#include <stdlib.h>

struct kitchen_main {
    struct kitchen *kitchen;
    struct httpd *httpd;
};

static void on_signal(struct evloop *loop, int signo, void *arg)
{
    (void)loop;
    struct kitchen_main *m = arg;
    log_info("signal %d: answering waiting requests and stopping", signo);
    httpd_quiesce(m->httpd);
    kitchen_shutdown(m->kitchen);
}

int main(int argc, char **argv)
{
    const char *bind = "127.0.0.1";
    int port = 8081;
    int max_conn = 16384;
    const char *faults = NULL;
    int allow_faults = 0;
    const char *log_format = NULL;
    int verbose = 0;
    const struct opt opts[] = {
        {"port", "PORT", OPT_INT, &port, 0, 65535, "TCP port to listen on (0 = any free port)"},
        {"bind", "BIND", OPT_STRING, &bind, 0, 0, "numeric address to listen on"},
        {"max-connections", "MAX_CONNECTIONS", OPT_INT, &max_conn, 1, 1000000,
         "concurrent connections accepted (file descriptor limit raised to fit)"},
        {"faults", "KITCHEN_FAULTS", OPT_STRING, &faults, 0, 0,
         "inject faults, e.g. kettle=500,toaster=hang (kinds: none, 500, garbage, close, hang)"},
        {"allow-faults", "KITCHEN_ALLOW_FAULTS", OPT_FLAG, &allow_faults, 0, 1,
         "let POST /faults?kettle=500&... change the faults at run time (for tests)"},
        {"log-format", "LOG_FORMAT", OPT_STRING, &log_format, 0, 0,
         "text or logfmt (default: text when stderr is a terminal, logfmt otherwise)"},
        {"verbose", "VERBOSE", OPT_FLAG, &verbose, 0, 1, "log every request (appliance, ms, traceparent)"},
    };
    char err[256];
    int rc = config_parse(opts, sizeof opts / sizeof opts[0], argc, argv,
                          "usage: coffee-kitchen [options]\n"
                          "Simulated appliances: GET /kettle|/grinder|/toaster?ms=N answers after N ms.\n"
                          "GET /faults shows injected faults; POST /faults?kettle=500&... sets them (--allow-faults).",
                          err, sizeof err);
    if (rc == CONFIG_HELP)
        return 0;
    if (rc != CONFIG_OK) {
        fprintf(stderr, "coffee-kitchen: %s\n", err);
        return 2;
    }
    enum log_format lf = log_format_default();
    if (log_format && log_format_parse(log_format, &lf) != 0) {
        fprintf(stderr, "coffee-kitchen: --log-format: '%s' is not text or logfmt\n", log_format);
        return 2;
    }
    log_set_format(lf);
    log_init("coffee-kitchen", verbose ? LOG_DEBUG : LOG_INFO);
    proc_ignore_sigpipe();
    int nofile = proc_raise_nofile(max_conn + 64);
    if (nofile < max_conn + 64) {
        log_warn("file descriptor limit is %d: lowering --max-connections to %d", nofile, nofile - 64);
        max_conn = nofile - 64;
    }

    struct kitchen_main m = {0};
    struct evloop *loop = evloop_new(nofile);
    if (!loop) {
        log_error("cannot create the event loop");
        return 1;
    }
    if (evloop_watch_signals(loop, on_signal, &m) != 0)
        log_warn("cannot watch SIGINT/SIGTERM");
    m.kitchen = kitchen_new(loop, allow_faults);
    if (m.kitchen && faults && kitchen_set_faults(m.kitchen, faults, err, sizeof err) != 0) {
        fprintf(stderr, "coffee-kitchen: --faults: %s\n", err);
        kitchen_free(m.kitchen);
        evloop_free(loop);
        return 2;
    }
    struct httpd_options hopt = {
        .bind = bind,
        .port = port,
        .conn_limit = (unsigned)max_conn,
        .conn_memory = 8192,
        .handler = kitchen_handler,
        .handler_arg = m.kitchen,
        .completed = kitchen_completed,
        .completed_arg = m.kitchen,
    };
    if (m.kitchen)
        m.httpd = httpd_start(loop, &hopt, err, sizeof err);
    if (!m.httpd) {
        log_error("%s", m.kitchen ? err : "out of memory");
        kitchen_free(m.kitchen);
        evloop_free(loop);
        return 1;
    }
    kitchen_attach(m.kitchen, m.httpd);
    proc_announce("coffee-kitchen", bind, httpd_port(m.httpd));
    rc = evloop_run(loop);
    if (rc != 0)
        log_error("event loop failed: %d", rc);
    httpd_free(m.httpd);
    kitchen_free(m.kitchen);
    evloop_free(loop);
    return rc == 0 ? 0 : 1;
}
