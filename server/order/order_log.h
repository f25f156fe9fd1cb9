/* order_log: the one log event of an ended order (component "order"):
 * order_id, mode, status, elapsed_ms, queued_ms, instance, trace_id, and on
 * failure error and failed_step. A done order is logged at debug level
 * (--verbose: under load one line per order would cost the service's own
 * CPU), a failed one at warn. */
#ifndef COFFEE_ORDER_LOG_H
#define COFFEE_ORDER_LOG_H

struct order;

/* Logs o (borrowed), which has ended. */
void order_log_ended(const struct order *o);

#endif
