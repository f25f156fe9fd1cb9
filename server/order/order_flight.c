/* order_flight: an order's timeline, copied into one flight entry (see
 * order_flight.h). Owns nothing; never allocates. */
#include "order_flight.h"

#include "flight.h"
#include "order.h"

#include <stdio.h>

_Static_assert(WF_MAX_STEPS <= FLIGHT_MAX_STEPS, "the flight entry holds every step");

void order_flight_record(const struct order *o)
{
    if (!flight_recording())
        return;
    struct flight_order f = {.id = o->id,
                             .mode = wf_modes[o->mode].name,
                             .status = order_status_name(o->status),
                             .arrived_ns = o->arrived_ns,
                             .end_ns = o->steps_end_ns,
                             .nsteps = o->recipe->nsteps};
    int64_t in_steps = 0;
    for (int i = 0; i < o->recipe->nsteps; i++) {
        const struct step_run *s = &o->steps[i];
        snprintf(f.steps[i].name, sizeof f.steps[i].name, "%s", o->recipe->steps[i].name);
        f.steps[i].start_ns = s->start_ns;
        f.steps[i].end_ns = s->end_ns ? s->end_ns : o->steps_end_ns;
        f.steps[i].queued_ns = s->queued_ns;
        in_steps += s->queued_ns;
    }
    /* What is left of the order's queued time was spent before any step
     * (a blocking order waiting for a worker). */
    f.lead_queued_ns = o->queued_ns - in_steps;
    flight_order(&f);
}
