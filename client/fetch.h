/* fetch: the client's load generator. Runs GETs of one URL, keeping up to
 * `concurrency` of them in flight with the curl multi interface, and hands
 * every answer (or transport failure) to a callback as it completes.
 * Requires curl_global_init. Blocks the caller until every request ended. */
#ifndef COFFEE_CLIENT_FETCH_H
#define COFFEE_CLIENT_FETCH_H

#include <curl/curl.h>
#include <stddef.h>

struct fetch_options {
    int concurrency; /* requests in flight at once, >= 1 */
    long timeout_ms; /* per request, connect to last byte */
    size_t max_body; /* answers longer than this fail as "response too large" */
};

/* One ended request. Every pointer is borrowed and valid only during the
 * callback. */
struct fetch_result {
    size_t index;     /* 0..n-1, in the order the requests were started */
    long status;      /* HTTP status; 0 when no answer was read */
    CURLcode code;    /* CURLE_OK, or the transport error */
    int os_errno;     /* the system error behind code, or 0 */
    int too_large;    /* the answer passed max_body (code is then an error) */
    const char *body; /* the answer, NUL-terminated; "" when none */
    size_t len;
    double latency_ms; /* measured by curl: request start to last byte */
    long timeout_ms;   /* the limit that applied, for messages */
};

/* Called once per request, in completion order. Returns 0 to go on, or -1
 * to stop the run (fetch_run then returns -1 with the callback's reason
 * "stopped by the caller"). */
typedef int (*fetch_cb)(const struct fetch_result *r, void *arg);

/* Runs n GETs of url at opt->concurrency. Returns 0 when all n ended
 * (whatever their outcome), or -1 with err when the run could not be set up
 * or went on (out of memory, curl multi failure, callback said stop). */
int fetch_run(const char *url, size_t n, const struct fetch_options *opt, fetch_cb cb, void *arg, char *err,
              size_t errlen);

/* Describes r's transport failure in words, e.g. "Connection refused" or
 * "timed out after 60000 ms", into buf. Returns buf. */
const char *fetch_strerror(const struct fetch_result *r, char *buf, size_t len);

#endif
