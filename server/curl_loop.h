/* curl_loop: HTTP GETs with the curl multi socket API on an evloop.
 *
 * curl tells the loop which sockets to watch and when to wake it
 * (CURLMOPT_SOCKETFUNCTION/TIMERFUNCTION); the loop hands events back with
 * curl_multi_socket_action and drains finished transfers after every call.
 * Easy handles are pooled, so their connections to the kitchen stay alive
 * in the multi handle's shared cache. */
#ifndef COFFEE_CURL_LOOP_H
#define COFFEE_CURL_LOOP_H

#include "kitchen_client.h"
#include "list.h"

#include <curl/curl.h>

struct evloop;
struct curl_loop;
struct hreq;

/* Called on the loop thread when the transfer ended (code) or could not
 * start. r->easy is valid during the call, for kc_result(). */
typedef void (*hreq_cb)(struct hreq *r, CURLcode code);

/* One GET. The caller owns it and keeps it alive until its callback ran or
 * it called curl_loop_abandon(). */
struct hreq {
    hreq_cb cb;
    struct kc_response resp; /* the answer */
    CURL *easy;              /* private */
    struct list_node link;   /* private: the failed-at-start list */
    int where;               /* private */
};

/* Returns a new curl_loop, or NULL. maxconnects bounds the idle
 * connection cache; max_total bounds the connections open at once (0 = no
 * bound): transfers over it wait inside curl for a connection, and that
 * wait counts against their timeout. */
struct curl_loop *curl_loop_new(struct evloop *loop, long maxconnects, long max_total);
/* Frees cl; accepts NULL. No request may be in flight. */
void curl_loop_free(struct curl_loop *cl);
/* Starts GET url (timeout_ms 0 = none). The callback runs on a later loop
 * pass, also when the transfer cannot start. */
void curl_loop_get(struct curl_loop *cl, struct hreq *r, const char *url, long timeout_ms);
/* Stops r: no callback will run. */
void curl_loop_abandon(struct curl_loop *cl, struct hreq *r);
/* Transfers in flight. */
int curl_loop_active(const struct curl_loop *cl);

#endif
