/* flight: the flight recorder. What the server's threads did in the last
 * minute, kept in one ring buffer of fixed-size entries and written out as
 * Chrome trace-event JSON (GET /trace), which Perfetto, chrome://tracing
 * and speedscope read.
 *
 * What goes in (each a single ring entry, taken under one mutex):
 *   - a slice on a thread: a loop callback that held the loop for at least
 *     FLIGHT_SLICE_MIN_NS (evloop times every callback), or a blocking call
 *     on a worker (the kitchen GET, a statement);
 *   - an order's finished timeline (its steps, its queued time), recorded
 *     once at its end: the recorder adds nothing while an order runs;
 *   - a counter sample (orders in flight, pool and workers busy, loop lag).
 * Threads are named with flight_thread_name(), which also sets the kernel's
 * name (pthread_setname_np: /proc/PID/task/TID/comm, top -H), but for the
 * main thread's, which is the process's name (ps, pgrep) and stays so.
 *
 * Memory: FLIGHT_RING_ENTRIES entries of sizeof(struct flight_entry)
 * (about 15 MiB: an entry has room for an order of 16 steps, their
 * names copied), allocated once by flight_init; the oldest entry is
 * overwritten when the ring is full, and the trace says how many were
 * (otherData.dropped_events).
 *
 * Loop stalls: a callback that held the loop for --stall-ms or more is
 * logged as a warn event (how long, what ran, how many events waited),
 * counted in a histogram (coffee_loop_stall_seconds) and kept among the
 * last FLIGHT_STALLS_KEPT, with or without recording.
 *
 * Thread-safe, but for the stall functions, which are loop thread only. */
#ifndef COFFEE_FLIGHT_H
#define COFFEE_FLIGHT_H

#include "text.h"

#include <stdint.h>

#define FLIGHT_RING_ENTRIES 16384
#define FLIGHT_SLICE_MIN_NS 1000000LL /* 1 ms: shorter loop callbacks are not recorded */
#define FLIGHT_MAX_STEPS 16
#define FLIGHT_NAME_MAX 32 /* a step name, copied: a teacher's recipe may go before the ring forgets it */
#define FLIGHT_STALLS_KEPT 8
#define FLIGHT_MAX_SECONDS 60

/* An order's finished timeline, as the recorder keeps it (monotonic ns;
 * mode and status are static strings; step names are copied, cut to
 * FLIGHT_NAME_MAX - 1 bytes). */
struct flight_order {
    int64_t id;
    const char *mode, *status;
    int64_t arrived_ns, end_ns;
    int64_t lead_queued_ns; /* waited before its first step (for a worker) */
    int nsteps;
    struct {
        char name[FLIGHT_NAME_MAX];
        int64_t start_ns, end_ns, queued_ns; /* start 0 = never started */
    } steps[FLIGHT_MAX_STEPS];
};

/* What a loop callback was doing, for its slice and its stall: set by the
 * code that runs inside it (flight_label), read and cleared by the loop. */
struct flight_label {
    const char *what; /* static string, NULL = nothing said */
    int64_t order_id;
    const char *mode, *step; /* step: borrowed while the callback runs; the recorder copies it */
};
extern _Thread_local struct flight_label flight_cur_label;

/* Sets up the recorder: recording on or off, the stall threshold in ms.
 * Call once, before the threads start. Returns 0, or -1 when out of memory
 * (recording is then off; stalls are still reported). */
int flight_init(int recording, long stall_ms);
/* Frees the ring (at exit); recording stops. */
void flight_shutdown(void);
/* Whether entries are being recorded. */
int flight_recording(void);

/* Names the calling thread (printf-style; at most 15 bytes are kept by the
 * kernel, 31 by the trace) and registers it as a track of the trace. */
void flight_thread_name(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Says what the current loop callback runs (borrowed static strings). */
static inline void flight_label(const char *what, int64_t order_id, const char *mode, const char *step)
{
    flight_cur_label = (struct flight_label){what, order_id, mode, step};
}

/* A slice on the calling thread: name (static), from start_ns to now;
 * order_id 0 = none. */
void flight_slice(const char *name, int64_t order_id, int64_t start_ns);
/* The loop's side: a callback of kind (static: "io", "timer", "task",
 * "posted", "before-sleep") on fd (-1 = none) ran from start_ns to end_ns,
 * at least flight_loop_min_ns() long. Records it as a slice if it reached
 * FLIGHT_SLICE_MIN_NS; if it reached the stall threshold, reports the
 * stall (loop thread: the warn event, the histogram, the list), with
 * count_waiting(arg) as the events that waited. Clears the label. */
void flight_loop_callback(const char *kind, int fd, int64_t start_ns, int64_t end_ns, int (*count_waiting)(void *),
                          void *arg);
/* The shortest callback flight_loop_callback wants to hear of. */
int64_t flight_loop_min_ns(void);
/* A counter sample now: name (static) and up to 4 series (keys static). */
void flight_counter(const char *name, int n, const char *const keys[], const double values[]);
/* An order's finished timeline (copied). */
void flight_order(const struct flight_order *o);

/* The last `seconds` seconds (1..FLIGHT_MAX_SECONDS) as Chrome trace-event
 * JSON appended to b. */
void flight_write_trace(struct text_buf *b, int seconds);
/* Appends the coffee_loop_stall_seconds histogram (Prometheus text). */
void flight_write_metrics(struct text_buf *b);
/* Appends the last stalls as a JSON array (newest first). */
void flight_write_stalls(struct text_buf *b);

#endif
