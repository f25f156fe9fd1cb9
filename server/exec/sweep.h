/* sweep: closes rows whose server died. A server killed with SIGKILL (or a
 * crashed host) leaves its orders' rows 'running' for ever; every row
 * carries a deadline (db_stmt_insert_order), and this periodic statement
 * fails the rows still running past theirs, as "abandoned". Each row's
 * deadline is its own, so several servers sharing one database sweep each
 * other's rows correctly whatever their settings. */
#ifndef COFFEE_SWEEP_H
#define COFFEE_SWEEP_H

struct evloop;
struct pgpool;
struct sweep;

/* Starts sweeping every interval_ms (the first run soon after start).
 * Returns new, or NULL. loop and pool are borrowed. */
struct sweep *sweep_start(struct evloop *loop, struct pgpool *pool, long interval_ms);
/* Stops and frees; accepts NULL. */
void sweep_free(struct sweep *sw);

#endif
