/* clock: the one place that reads time. Monotonic nanoseconds for every
 * duration; wall-clock seconds only for an order's started_at. */
#ifndef COFFEE_CLOCK_H
#define COFFEE_CLOCK_H

#include <stdint.h>

#define NS_PER_MS 1000000LL
#define NS_PER_SEC 1000000000LL

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t clock_mono_ns(void);
/* CLOCK_REALTIME in seconds since the epoch, with sub-second precision. */
double clock_wall_s(void);

static inline double ns_to_ms(int64_t ns)
{
    return (double)ns / 1e6;
}

#endif
