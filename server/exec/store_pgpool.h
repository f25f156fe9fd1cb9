/* store_pgpool: the order store and the pool's brew (io.h) over a pgpool:
 * an order's INSERT, brew and UPDATE as the pool's queries (db.h's
 * statements), short ones ahead of brews. The only file of the async
 * executor's that names pgpool or libpq. Loop thread only. */
#ifndef COFFEE_STORE_PGPOOL_H
#define COFFEE_STORE_PGPOOL_H

#include "io.h"

struct evloop;
struct pgpool;
struct store_pgpool;

/* Returns new, or NULL. pool is borrowed and must outlive it. */
struct store_pgpool *store_pgpool_new(struct evloop *loop, struct pgpool *pool);
/* Frees sp; accepts NULL. No request may be pending. */
void store_pgpool_free(struct store_pgpool *sp);
/* Its order store and its brew (BREW_POOL); sp is borrowed by both. */
struct order_store store_pgpool_store(struct store_pgpool *sp);
struct brew_service store_pgpool_brew(struct store_pgpool *sp);

#endif
