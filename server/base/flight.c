/* flight: the flight recorder's ring and its Chrome trace-event JSON (see
 * flight.h).
 * Owns: the ring (one allocation, made by flight_init, freed by
 * flight_shutdown), the thread table and the stall statistics.
 * Must never: allocate or format while holding the ring's lock (writers
 * copy one entry in; the reader copies the ring out, then formats). */
#define _GNU_SOURCE
#include "flight.h"

#include "clock.h"
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_THREADS 128
#define MAX_SERIES 4

enum entry_kind { E_SLICE, E_ORDER, E_COUNTER };

struct flight_entry {
    enum entry_kind kind;
    pid_t tid;
    int64_t ts_ns, end_ns; /* end_ns: the slice's or the order's end; ts_ns for a counter */
    union {
        struct {
            const char *name, *mode;
            char step[FLIGHT_NAME_MAX]; /* copied: it may be a teacher's recipe's */
            int64_t order_id;
            int fd;
            int on_loop;
        } slice;
        struct {
            const char *name;
            int n;
            const char *keys[MAX_SERIES];
            double values[MAX_SERIES];
        } counter;
        struct flight_order order;
    } u;
};

struct thread_track {
    pid_t tid;
    char name[32];
};

/* Stall histogram bounds, in seconds (+Inf implied). */
static const double stall_bounds[] = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
#define NSTALL (sizeof stall_bounds / sizeof stall_bounds[0])

struct stall {
    double wall_s, ms;
    const char *what, *mode;
    char step[FLIGHT_NAME_MAX]; /* copied, as in an entry */
    int64_t order_id;
    int fd, waiting;
};

_Thread_local struct flight_label flight_cur_label;
static _Thread_local pid_t my_tid;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER; /* guards ring, total, threads */
static struct flight_entry *ring;
static uint64_t total; /* entries ever written; the next goes to ring[total % N] */
static struct thread_track threads[MAX_THREADS];
static int nthreads;
static atomic_int recording;
static int64_t stall_ns = 50 * NS_PER_MS;

/* Loop thread only. */
static uint64_t stall_counts[NSTALL + 1];
static uint64_t stall_n;
static double stall_sum;
static struct stall stalls[FLIGHT_STALLS_KEPT];
static uint64_t nstalls;

int flight_init(int on, long stall_ms)
{
    stall_ns = (int64_t)stall_ms * NS_PER_MS;
    pthread_mutex_lock(&lock);
    if (on && !ring) {
        ring = calloc(FLIGHT_RING_ENTRIES, sizeof *ring);
        total = 0;
    }
    pthread_mutex_unlock(&lock);
    atomic_store(&recording, on && ring);
    return on && !ring ? -1 : 0;
}

void flight_shutdown(void)
{
    atomic_store(&recording, 0);
    pthread_mutex_lock(&lock);
    free(ring);
    ring = NULL;
    pthread_mutex_unlock(&lock);
}

int flight_recording(void)
{
    return atomic_load_explicit(&recording, memory_order_relaxed);
}

int64_t flight_loop_min_ns(void)
{
    return stall_ns < FLIGHT_SLICE_MIN_NS ? stall_ns : FLIGHT_SLICE_MIN_NS;
}

static pid_t tid_self(void)
{
    if (!my_tid)
        my_tid = gettid();
    return my_tid;
}

void flight_thread_name(const char *fmt, ...)
{
    char name[32];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    pid_t tid = tid_self();
    /* The main thread's kernel name is the process's (ps, top, pgrep): it
     * stays the program's; the others are renamed (15 bytes kept). */
    if (tid != getpid()) {
        char kernel[16];
        memcpy(kernel, name, sizeof kernel - 1);
        kernel[sizeof kernel - 1] = '\0';
        (void)pthread_setname_np(pthread_self(), kernel);
    }
    pthread_mutex_lock(&lock);
    int i = 0;
    while (i < nthreads && threads[i].tid != tid)
        i++;
    if (i < MAX_THREADS) {
        threads[i].tid = tid;
        memcpy(threads[i].name, name, sizeof name);
        if (i == nthreads)
            nthreads++;
    }
    pthread_mutex_unlock(&lock);
}

/* Copies e into the ring, overwriting the oldest entry when it is full. */
static void put(const struct flight_entry *e)
{
    pthread_mutex_lock(&lock);
    if (ring)
        ring[total++ % FLIGHT_RING_ENTRIES] = *e;
    pthread_mutex_unlock(&lock);
}

void flight_slice(const char *name, int64_t order_id, int64_t start_ns)
{
    if (!flight_recording())
        return;
    struct flight_entry e = {.kind = E_SLICE, .tid = tid_self(), .ts_ns = start_ns, .end_ns = clock_mono_ns()};
    e.u.slice.name = name;
    e.u.slice.order_id = order_id;
    e.u.slice.fd = -1;
    put(&e);
}

void flight_counter(const char *name, int n, const char *const keys[], const double values[])
{
    if (!flight_recording())
        return;
    struct flight_entry e = {.kind = E_COUNTER, .tid = tid_self(), .ts_ns = clock_mono_ns()};
    e.end_ns = e.ts_ns;
    e.u.counter.name = name;
    e.u.counter.n = n < MAX_SERIES ? n : MAX_SERIES;
    for (int i = 0; i < e.u.counter.n; i++) {
        e.u.counter.keys[i] = keys[i];
        e.u.counter.values[i] = values[i];
    }
    put(&e);
}

void flight_order(const struct flight_order *o)
{
    if (!flight_recording())
        return;
    struct flight_entry e = {.kind = E_ORDER, .tid = tid_self(), .ts_ns = o->arrived_ns, .end_ns = o->end_ns};
    e.u.order = *o;
    put(&e);
}

static void stall_report(const struct flight_label *l, const char *kind, int fd, int64_t start_ns, int64_t end_ns,
                         int waiting)
{
    double s = (double)(end_ns - start_ns) / 1e9;
    size_t b = 0;
    while (b < NSTALL && s > stall_bounds[b])
        b++;
    stall_counts[b]++;
    stall_n++;
    stall_sum += s;
    struct stall *st = &stalls[nstalls++ % FLIGHT_STALLS_KEPT];
    *st = (struct stall){.wall_s = clock_wall_s(),
                         .ms = s * 1e3,
                         .what = l->what ? l->what : kind,
                         .mode = l->mode,
                         .order_id = l->order_id,
                         .fd = fd,
                         .waiting = waiting};
    if (l->step)
        snprintf(st->step, sizeof st->step, "%s", l->step);
    char ms[32], order[24], fdtext[16], wait[16];
    snprintf(ms, sizeof ms, "%.1f", st->ms);
    snprintf(order, sizeof order, "%lld", (long long)l->order_id);
    snprintf(fdtext, sizeof fdtext, "%d", fd);
    snprintf(wait, sizeof wait, "%d", waiting);
    struct log_field f[] = {{"ms", ms},        {"ran", st->what}, {"order_id", l->what ? order : NULL},
                            {"mode", l->mode}, {"step", l->step}, {"fd", fd >= 0 ? fdtext : NULL},
                            {"waiting", wait}};
    log_event(LOG_WARN, "loop", "loop stall: one callback held the loop", f, sizeof f / sizeof f[0]);
}

void flight_loop_callback(const char *kind, int fd, int64_t start_ns, int64_t end_ns, int (*count_waiting)(void *),
                          void *arg)
{
    struct flight_label l = flight_cur_label;
    flight_cur_label.what = NULL;
    int64_t d = end_ns - start_ns;
    if (d >= FLIGHT_SLICE_MIN_NS && flight_recording()) {
        struct flight_entry e = {.kind = E_SLICE, .tid = tid_self(), .ts_ns = start_ns, .end_ns = end_ns};
        e.u.slice.name = l.what ? l.what : kind;
        e.u.slice.order_id = l.what ? l.order_id : 0;
        e.u.slice.mode = l.what ? l.mode : NULL;
        if (l.what && l.step)
            snprintf(e.u.slice.step, sizeof e.u.slice.step, "%s", l.step);
        e.u.slice.fd = fd;
        e.u.slice.on_loop = 1;
        put(&e);
    }
    if (d >= stall_ns)
        stall_report(&l, kind, fd, start_ns, end_ns, count_waiting ? count_waiting(arg) : -1);
}

/* ---- output ---------------------------------------------------------------- */

/* A JSON string of s (static names and thread names: escapes the few
 * characters JSON needs). */
static void put_str(struct text_buf *b, const char *s)
{
    s = s ? s : "";
    size_t plain = strcspn(s, "\"\\\x01\x02\x03\x04\x05\x06\x07\x08\t\n\x0b\x0c\r\x0e\x0f\x10\x11\x12\x13"
                              "\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f");
    if (!s[plain]) { /* the usual case: nothing to escape */
        text_buf_put(b, "\"%s\"", s);
        return;
    }
    text_buf_put(b, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            text_buf_put(b, "\\%c", c);
        else if (c < 0x20)
            text_buf_put(b, "\\u%04x", c);
        else
            text_buf_put(b, "%c", c);
    }
    text_buf_put(b, "\"");
}

static double us(int64_t ns)
{
    return (double)ns / 1e3;
}

static void write_slice(struct text_buf *b, pid_t pid, const struct flight_entry *e)
{
    text_buf_put(b, ",\n{\"ph\":\"X\",\"cat\":\"%s\",\"pid\":%d,\"tid\":%d,\"ts\":%.3f,\"dur\":%.3f,\"name\":",
                 e->u.slice.on_loop ? "loop" : "blocking", (int)pid, (int)e->tid, us(e->ts_ns),
                 us(e->end_ns - e->ts_ns));
    put_str(b, e->u.slice.name);
    text_buf_put(b, ",\"args\":{\"fd\":%d", e->u.slice.fd);
    if (e->u.slice.order_id)
        text_buf_put(b, ",\"order_id\":%lld", (long long)e->u.slice.order_id);
    if (e->u.slice.mode) {
        text_buf_put(b, ",\"mode\":");
        put_str(b, e->u.slice.mode);
    }
    if (e->u.slice.step[0]) {
        text_buf_put(b, ",\"step\":");
        put_str(b, e->u.slice.step);
    }
    text_buf_put(b, "}}");
}

static void write_counter(struct text_buf *b, pid_t pid, const struct flight_entry *e)
{
    text_buf_put(b, ",\n{\"ph\":\"C\",\"pid\":%d,\"tid\":%d,\"ts\":%.3f,\"name\":", (int)pid, (int)e->tid,
                 us(e->ts_ns));
    put_str(b, e->u.counter.name);
    text_buf_put(b, ",\"args\":{");
    for (int i = 0; i < e->u.counter.n; i++) {
        text_buf_put(b, "%s", i ? "," : "");
        put_str(b, e->u.counter.keys[i]);
        text_buf_put(b, ":%.6g", e->u.counter.values[i]);
    }
    text_buf_put(b, "}}");
}

/* One async event of order track id ("17" or "17.2"). */
static void async_ev(struct text_buf *b, pid_t pid, pid_t tid, char ph, const char *id, const char *name, int64_t ns,
                     const struct flight_order *o, int with_args)
{
    text_buf_put(b, ",\n{\"ph\":\"%c\",\"cat\":\"order\",\"id\":\"%s\",\"pid\":%d,\"tid\":%d,\"ts\":%.3f,\"name\":", ph,
                 id, (int)pid, (int)tid, us(ns));
    put_str(b, name);
    if (ph == 'b' && with_args) {
        text_buf_put(b, ",\"args\":{\"order_id\":%lld,\"mode\":", (long long)o->id);
        put_str(b, o->mode);
        text_buf_put(b, "}");
    }
    text_buf_put(b, "}");
}

/* An order as async tracks: lane 0 (id "N") holds the order, its queued
 * time before its first step, and each step that does not overlap the one
 * before it there; a step that overlaps goes to the first lane free at its
 * start (id "N.k"), since async slices on one track must nest. */
static void write_order(struct text_buf *b, pid_t pid, const struct flight_entry *e)
{
    const struct flight_order *o = &e->u.order;
    char id[48], name[64];
    int64_t lane_free[FLIGHT_MAX_STEPS + 1];
    snprintf(name, sizeof name, "order %lld (%s, %s)", (long long)o->id, o->mode, o->status);
    snprintf(id, sizeof id, "%lld", (long long)o->id);
    async_ev(b, pid, e->tid, 'b', id, name, o->arrived_ns, o, 1);
    lane_free[0] = o->arrived_ns;
    if (o->lead_queued_ns > 0) {
        int64_t q_end = o->arrived_ns + o->lead_queued_ns;
        q_end = q_end < o->end_ns ? q_end : o->end_ns;
        async_ev(b, pid, e->tid, 'b', id, "queued", o->arrived_ns, o, 0);
        async_ev(b, pid, e->tid, 'e', id, "queued", q_end, o, 0);
        lane_free[0] = q_end;
    }
    int nlanes = 1;
    for (int i = 0; i < o->nsteps && i < FLIGHT_MAX_STEPS; i++) {
        int64_t s = o->steps[i].start_ns, t = o->steps[i].end_ns;
        if (!s)
            continue;
        t = t < s ? s : t;
        t = t > o->end_ns ? o->end_ns : t;
        int lane = 0;
        while (lane < nlanes && lane_free[lane] > s)
            lane++;
        if (lane == nlanes)
            lane_free[nlanes++] = s;
        lane_free[lane] = t;
        char sid[48];
        if (lane)
            snprintf(sid, sizeof sid, "%lld.%d", (long long)o->id, lane);
        else
            snprintf(sid, sizeof sid, "%s", id);
        async_ev(b, pid, e->tid, 'b', sid, o->steps[i].name, s, o, 0);
        if (o->steps[i].queued_ns > 0) {
            int64_t q_end = s + o->steps[i].queued_ns < t ? s + o->steps[i].queued_ns : t;
            async_ev(b, pid, e->tid, 'b', sid, "waiting for a connection", s, o, 0);
            async_ev(b, pid, e->tid, 'e', sid, "waiting for a connection", q_end, o, 0);
        }
        async_ev(b, pid, e->tid, 'e', sid, o->steps[i].name, t, o, 0);
    }
    async_ev(b, pid, e->tid, 'e', id, name, o->end_ns, o, 1);
}

void flight_write_stalls(struct text_buf *b)
{
    text_buf_put(b, "[");
    uint64_t n = nstalls < FLIGHT_STALLS_KEPT ? nstalls : FLIGHT_STALLS_KEPT;
    for (uint64_t k = 0; k < n; k++) {
        const struct stall *s = &stalls[(nstalls - 1 - k) % FLIGHT_STALLS_KEPT];
        text_buf_put(b, "%s{\"at\":%.3f,\"ms\":%.1f,\"ran\":", k ? "," : "", s->wall_s, s->ms);
        put_str(b, s->what);
        if (s->order_id)
            text_buf_put(b, ",\"order_id\":%lld", (long long)s->order_id);
        if (s->mode) {
            text_buf_put(b, ",\"mode\":");
            put_str(b, s->mode);
        }
        if (s->step[0]) {
            text_buf_put(b, ",\"step\":");
            put_str(b, s->step);
        }
        text_buf_put(b, ",\"waiting\":%d}", s->waiting);
    }
    text_buf_put(b, "]");
}

void flight_write_trace(struct text_buf *b, int seconds)
{
    pid_t pid = getpid();
    int64_t now = clock_mono_ns(), since = now - (int64_t)seconds * NS_PER_SEC;
    struct thread_track tracks[MAX_THREADS];
    struct flight_entry *copy = NULL;
    size_t n = 0;
    uint64_t dropped = 0;

    pthread_mutex_lock(&lock);
    int ntracks = nthreads;
    memcpy(tracks, threads, sizeof tracks);
    if (ring) {
        n = total < FLIGHT_RING_ENTRIES ? (size_t)total : FLIGHT_RING_ENTRIES;
        dropped = total - n;
        copy = malloc(n ? n * sizeof *copy : 1);
        if (copy) {
            size_t first = (size_t)((total - n) % FLIGHT_RING_ENTRIES);
            size_t k = n < FLIGHT_RING_ENTRIES - first ? n : FLIGHT_RING_ENTRIES - first;
            memcpy(copy, ring + first, k * sizeof *copy);
            memcpy(copy + k, ring, (n - k) * sizeof *copy);
        } else {
            n = 0;
        }
    }
    pthread_mutex_unlock(&lock);

    text_buf_put(b,
                 "{\"traceEvents\":[\n{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":%d,\"tid\":%d,"
                 "\"args\":{\"name\":\"coffee-server\"}}",
                 (int)pid, (int)pid);
    for (int i = 0; i < ntracks; i++) {
        text_buf_put(b, ",\n{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":%d,\"tid\":%d,\"args\":{\"name\":", (int)pid,
                     (int)tracks[i].tid);
        put_str(b, tracks[i].name);
        text_buf_put(b, "}}");
    }
    for (size_t i = 0; i < n; i++) {
        const struct flight_entry *e = &copy[i];
        if (e->end_ns < since)
            continue;
        if (e->kind == E_SLICE)
            write_slice(b, pid, e);
        else if (e->kind == E_COUNTER)
            write_counter(b, pid, e);
        else
            write_order(b, pid, e);
    }
    free(copy);
    text_buf_put(b,
                 "\n],\"displayTimeUnit\":\"ms\",\"otherData\":{\"seconds\":%d,\"now_us\":%.3f,\"recording\":%s,"
                 "\"ring_entries\":%d,\"dropped_events\":%llu,\"slice_min_ms\":%.3f,\"stall_ms\":%.3f,\"stalls\":",
                 seconds, us(now), flight_recording() ? "true" : "false", FLIGHT_RING_ENTRIES,
                 (unsigned long long)dropped, (double)FLIGHT_SLICE_MIN_NS / 1e6, (double)stall_ns / 1e6);
    flight_write_stalls(b);
    text_buf_put(b, "}}\n");
}

void flight_write_metrics(struct text_buf *b)
{
    text_buf_put(b, "# HELP coffee_loop_stall_seconds Loop callbacks that held the loop for --stall-ms or more.\n"
                    "# TYPE coffee_loop_stall_seconds histogram\n");
    uint64_t cum = 0;
    for (size_t i = 0; i < NSTALL; i++) {
        cum += stall_counts[i];
        text_buf_put(b, "coffee_loop_stall_seconds_bucket{le=\"%g\"} %llu\n", stall_bounds[i], (unsigned long long)cum);
    }
    cum += stall_counts[NSTALL];
    text_buf_put(b, "coffee_loop_stall_seconds_bucket{le=\"+Inf\"} %llu\n", (unsigned long long)cum);
    text_buf_put(b, "coffee_loop_stall_seconds_sum %.9g\ncoffee_loop_stall_seconds_count %llu\n", stall_sum,
                 (unsigned long long)stall_n);
}
