/* kitchen: the simulated appliances. GET /kettle|/grinder|/toaster?ms=N
 * answers after N ms, on a loop timer: a waiting request costs a suspended
 * connection and a timer, never a thread. */
#ifndef COFFEE_KITCHEN_H
#define COFFEE_KITCHEN_H

#include <microhttpd.h>

struct evloop;
struct httpd;
struct kitchen;

#define KITCHEN_MAX_MS 60000

/* Returns new, or NULL when out of memory. */
struct kitchen *kitchen_new(struct evloop *loop);
/* Frees k; accepts NULL. No request may be pending. */
void kitchen_free(struct kitchen *k);
/* Tells k which daemon its connections belong to (for resuming them). */
void kitchen_attach(struct kitchen *k, struct httpd *h);
/* The MHD access handler and completion callback; arg is the kitchen. */
enum MHD_Result kitchen_handler(void *arg, struct MHD_Connection *c, const char *url, const char *method,
                                const char *version, const char *upload_data, size_t *upload_data_size,
                                void **con_cls);
void kitchen_completed(void *arg, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe);
/* Answers every waiting request with 503 now; once the last one is gone,
 * stops the loop. */
void kitchen_shutdown(struct kitchen *k);
/* Requests waiting on a timer. */
unsigned kitchen_pending(const struct kitchen *k);

#endif
