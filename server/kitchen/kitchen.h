/* kitchen: the simulated appliances. GET /kettle|/grinder|/toaster?ms=N
 * answers after N ms, on a loop timer: a waiting request costs a suspended
 * connection and a timer, never a thread.
 *
 * Fault injection, for tests of the server's error handling: each
 * appliance can be made to fail every request (after its delay) in one of
 * the ways of enum kitchen_fault. Set at start (--faults) or, when allowed,
 * at run time with POST /faults?kettle=500&toaster=hang (no arguments:
 * clear all); GET /faults shows them.
 *
 * GET /metrics: requests by appliance, in flight, faults injected, and the
 * process metrics (Prometheus text format). */
#ifndef COFFEE_KITCHEN_H
#define COFFEE_KITCHEN_H

#include <microhttpd.h>
#include <stddef.h>

struct evloop;
struct httpd;
struct kitchen;

#define KITCHEN_MAX_MS 60000
/* The longest result a task (GET /task?ms=N&result=TEXT) answers, in
 * bytes; each printable ASCII but " and \ (so the answer needs no escape). */
#define KITCHEN_RESULT_MAX 48

enum kitchen_fault {
    FAULT_NONE,    /* answer normally */
    FAULT_500,     /* answer HTTP 500 with a JSON error */
    FAULT_GARBAGE, /* answer 200 with a body that is not JSON */
    FAULT_CLOSE,   /* close the connection without answering */
    FAULT_HANG     /* never answer (until the client gives up or shutdown) */
};

/* Returns new, or NULL when out of memory. allow_fault_api enables
 * POST /faults. */
struct kitchen *kitchen_new(struct evloop *loop, int allow_fault_api);
/* Sets faults from "appliance=kind,..." (kinds: none, 500, garbage, close,
 * hang); appliances not named keep theirs. Returns 0, or -1 with err and
 * nothing changed. */
int kitchen_set_faults(struct kitchen *k, const char *spec, char *err, size_t errlen);
/* Frees k; accepts NULL. No request may be pending. */
void kitchen_free(struct kitchen *k);
/* Tells k which daemon its connections belong to (for resuming them). */
void kitchen_attach(struct kitchen *k, struct httpd *h);
/* The MHD access handler and completion callback; arg is the kitchen. */
enum MHD_Result kitchen_handler(void *arg, struct MHD_Connection *c, const char *url, const char *method,
                                const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls);
void kitchen_completed(void *arg, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe);
/* Answers every waiting request with 503 now; once the last one is gone,
 * stops the loop. */
void kitchen_shutdown(struct kitchen *k);

#endif
