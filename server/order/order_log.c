/* order_log: see order_log.h. Owns nothing; formats into stack buffers. */
#include "order_log.h"

#include "log.h"
#include "order.h"
#include "report.h"
#include "workflow.h"

#include <stdio.h>

void order_log_ended(const struct order *o)
{
    enum log_level level = o->status == ORDER_DONE ? LOG_DEBUG : LOG_WARN;
    if (!log_enabled(level))
        return;
    char id[24], elapsed[32], queued[32], trace_id[40] = "";
    snprintf(id, sizeof id, "%lld", (long long)o->id);
    snprintf(elapsed, sizeof elapsed, "%.3f", report_ms(o->steps_end_ns - o->arrived_ns));
    snprintf(queued, sizeof queued, "%.3f", report_ms(o->queued_ns));
    if (o->traceparent[0]) /* "00-<trace id>-<span id>-<flags>" */
        snprintf(trace_id, sizeof trace_id, "%.32s", o->traceparent + 3);
    int failed = o->status != ORDER_DONE;
    const struct log_field fields[] = {
        {"order_id", o->id ? id : NULL},
        {"mode", wf_modes[o->mode].name},
        {"recipe", o->recipe != &wf_coffee ? o->recipe->name : NULL},
        {"status", order_status_name(o->status)},
        {"elapsed_ms", elapsed},
        {"queued_ms", queued},
        {"instance", o->instance},
        {"trace_id", trace_id[0] ? trace_id : NULL},
        {"traceparent", o->traceparent[0] ? o->traceparent : NULL},
        {"failed_step", failed && o->failed_step >= 0 ? o->recipe->steps[o->failed_step].name : NULL},
        {"error", failed ? o->errmsg : NULL},
    };
    log_event(level, "order", "order ended", fields, sizeof fields / sizeof fields[0]);
}
