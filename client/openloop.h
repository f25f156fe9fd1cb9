/* openloop: open-loop load, as wrk2 runs it. Requests are sent at intended
 * times fixed in advance (uniform, or Poisson arrivals) at R per second,
 * whatever the answers do, and each latency is measured from its intended
 * send time, not from when it could be sent: a server that stalls is
 * charged for every request that should have gone out meanwhile (the
 * coordinated-omission correction). Latencies go into log-linear
 * histograms (hist.h). Requires curl_global_init; openloop_run blocks the
 * caller for about the duration, plus the last answers (bounded by the
 * per-request timeout). */
#ifndef COFFEE_CLIENT_OPENLOOP_H
#define COFFEE_CLIENT_OPENLOOP_H

#include "hist.h"

#include <stddef.h>
#include <stdint.h>

enum arrivals {
    ARRIVE_UNIFORM, /* one every 1/R s */
    ARRIVE_POISSON  /* exponential gaps of mean 1/R s */
};

/* The intended send times. */
struct schedule {
    enum arrivals kind;
    double rate;   /* per second, > 0 */
    uint64_t rng;  /* xorshift64* state, never 0 */
    uint64_t i;    /* requests scheduled so far */
    double next_s; /* Poisson: the next intended time, s from the start */
};

/* Starts a schedule at time 0. seed 0 picks a fixed one. */
void schedule_init(struct schedule *s, enum arrivals kind, double rate, uint64_t seed);
/* The intended send time of the next request, ns from the start, and
 * advances. Uniform: i / R exactly (no drift); Poisson: the running sum of
 * exponential gaps. */
int64_t schedule_next(struct schedule *s);
/* The latency of a request meant to go at intended_ns and answered at
 * done_ns (same clock), in microseconds: from the intended time. */
uint64_t openloop_latency_us(int64_t intended_ns, int64_t done_ns);

struct openloop_options {
    const char *url;   /* GET'd at every intended time */
    double rate;       /* per second */
    double duration_s; /* requests intended in [0, duration) */
    enum arrivals kind;
    uint64_t seed;
    long timeout_ms;  /* per request */
    int max_inflight; /* a send past this waits (and is charged for it) */
};

struct openloop_result {
    uint64_t sent, ok, failed; /* ok: 200 with an order done */
    struct hist latency;       /* from intended send time, ok orders */
    struct hist uncorrected;   /* from actual send time, ok orders (wrk2's -U: what a
                                  client that waits before sending would report) */
    struct hist server;        /* the server's elapsed_ms, ok orders */
    struct hist send_lag;      /* actual send - intended */
    double wall_ms;            /* first intended time to last answer */
    char first_error[160];
};

#define OPENLOOP_MAX_RATES 64
/* Parses a rate spec: "R" (one rate) or "a:b:step" (a, a+step, ... up to
 * b), each > 0 and at most max_rate, into rates[]. Returns how many
 * (1..OPENLOOP_MAX_RATES), or -1 with err. */
int openloop_parse_rates(const char *spec, double max_rate, double rates[OPENLOOP_MAX_RATES], char *err, size_t errlen);

/* Runs the load into *res (the caller's memory; ~110 KB). Returns 0, or -1
 * with err when it could not run (out of memory, curl failure). Failed
 * requests are counted, not fatal. */
int openloop_run(const struct openloop_options *opt, struct openloop_result *res, char *err, size_t errlen);

#endif
