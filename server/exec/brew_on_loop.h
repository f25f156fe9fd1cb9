/* brew_on_loop: the mixed mode's brew (BREW_ON_LOOP), a brew service
 * (io.h) that runs the brew with blocking libpq ON the loop thread, on a
 * pass after it was started: nothing else on the loop runs until it
 * returns. The seed's blocked pourover, kept as a mistake on purpose; its
 * one connection is opened on first use and bounded like a worker's (the
 * connect by connect_timeout_ms, each statement by the watchdog). */
#ifndef COFFEE_BREW_ON_LOOP_H
#define COFFEE_BREW_ON_LOOP_H

#include "io.h"

struct evloop;
struct db_config;
struct watchdog;
struct brew_on_loop;

/* Returns new, or NULL. config and wd are borrowed and must outlive it. */
struct brew_on_loop *brew_on_loop_new(struct evloop *loop, const struct db_config *config, struct watchdog *wd,
                                      long connect_timeout_ms);
/* Closes its connection and frees b; accepts NULL. No brew may be pending. */
void brew_on_loop_free(struct brew_on_loop *b);
/* Its brew service (holds_loop); b is borrowed. */
struct brew_service brew_on_loop_service(struct brew_on_loop *b);

#endif
