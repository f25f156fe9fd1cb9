/* curl_loop: transfers with the curl multi socket API on an evloop.
 *
 * curl tells the loop which sockets to watch and when to wake it
 * (CURLMOPT_SOCKETFUNCTION/TIMERFUNCTION); the loop hands events back with
 * curl_multi_socket_action and drains finished transfers after every call.
 * Easy handles are pooled, so their connections stay alive in the multi
 * handle's shared cache. A transport only: what a transfer asks and where
 * its answer goes are its caller's (a setup hook for new handles, a prepare
 * hook per transfer), so it knows none of its clients. Every callback runs
 * on a later loop pass than the call that started the transfer. */
#ifndef COFFEE_CURL_LOOP_H
#define COFFEE_CURL_LOOP_H

#include "list.h"

#include <curl/curl.h>

struct evloop;
struct curl_loop;
struct hreq;

/* Called on the loop thread when the transfer ended (code) or could not
 * start (CURLE_FAILED_INIT). r->easy is valid during the call (for
 * curl_easy_getinfo). The callback may free r. code is curl's own
 * CURLcode, the one exception here to "0 or a negative code": the caller
 * reads it (kitchen_client's kc_result turns it into a step's outcome). */
typedef void (*hreq_cb)(struct hreq *r, CURLcode code);
/* Points an easy handle at one transfer (URL, where the answer goes, its
 * timeout). 0, or -1: the transfer then fails on a later pass. */
typedef int (*hreq_prepare)(CURL *e, void *arg);

/* One transfer. The caller owns it and keeps it (and what prepare pointed
 * the handle at) alive until its callback ran or it called
 * curl_loop_abandon(). */
struct hreq {
    hreq_cb cb;
    CURL *easy;            /* private, but valid during cb */
    struct list_node link; /* private: the failed-at-start list */
    int where;             /* private */
};

/* Returns a new curl_loop, or NULL. setup(e) sets the options of every new
 * easy handle and returns 0 or -1. maxconnects bounds the idle connection cache;
 * max_total bounds the connections open at once (0 = no bound): transfers
 * over it wait inside curl for a connection, and that wait counts against
 * their timeout. */
struct curl_loop *curl_loop_new(struct evloop *loop, long maxconnects, long max_total, int (*setup)(CURL *e));
/* Frees cl; accepts NULL. No request may be in flight. */
void curl_loop_free(struct curl_loop *cl);
/* Starts the transfer prepare(e, arg) describes; prepare runs inside this
 * call (what arg points at need only live that long), the callback on a
 * later loop pass, also when the transfer cannot start. */
void curl_loop_start(struct curl_loop *cl, struct hreq *r, hreq_prepare prepare, void *arg);
/* Stops r: no callback will run. */
void curl_loop_abandon(struct curl_loop *cl, struct hreq *r);

#endif
