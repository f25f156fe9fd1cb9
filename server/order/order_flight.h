/* order_flight: an order's finished timeline into the flight recorder
 * (flight.h), as one entry: the trace draws it as async tracks. */
#ifndef COFFEE_ORDER_FLIGHT_H
#define COFFEE_ORDER_FLIGHT_H

struct order;

/* Records o (borrowed; its steps ended) if the recorder is on. Any thread. */
void order_flight_record(const struct order *o);

#endif
