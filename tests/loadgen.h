/* loadgen: an open-loop load for the chaos test. GETs one URL at a fixed
 * rate (request i starts at i / rate seconds, whatever became of the
 * earlier ones: orders keep arriving while a dependency is down), on a
 * thread of its own with the curl multi interface, and records every
 * request: when it started and ended, its status or transport error, and
 * the order id of a 200. Never retries. Requires curl_global_init. */
#ifndef COFFEE_TEST_LOADGEN_H
#define COFFEE_TEST_LOADGEN_H

#include <curl/curl.h>
#include <stddef.h>
#include <stdint.h>

/* One request, times from clock_mono_ns(). */
struct load_req {
    int64_t start_ns, end_ns;
    long status;        /* HTTP status; 0 when no answer was read */
    CURLcode code;      /* CURLE_OK, or the transport error */
    long long order_id; /* of a 200 whose body says "status": "done"; else 0 */
    char error[96];     /* a non-200's "error", or the transport error, cut */
};

struct load;

/* Starts GETs of url (copied) at rate per second, each bounded by
 * timeout_ms (a request still unanswered then counts as hung: code
 * CURLE_OPERATION_TIMEDOUT). Returns a new load, or NULL. */
struct load *load_start(const char *url, double rate, long timeout_ms);
/* Stops starting requests, without waiting. */
void load_halt(struct load *l);
/* Stops starting requests and waits for those in flight: each ends by its
 * own timeout at the latest, so this returns within timeout_ms (plus a
 * loop turn). Then load_reqs holds every request. Idempotent. */
void load_stop(struct load *l);
/* Requests started so far, in start order (borrowed; valid until
 * load_free). Read it only after load_stop. */
const struct load_req *load_reqs(const struct load *l, size_t *n);
/* Nonzero if the load could not run as asked (out of memory, curl
 * failure): its figures are then incomplete. */
int load_failed(const struct load *l);
/* Stops l if needed and frees it. Accepts NULL. */
void load_free(struct load *l);

#endif
