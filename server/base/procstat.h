/* procstat: the standard process metrics every Prometheus client exports,
 * read from /proc/self at scrape time, and coffee_build_info (version,
 * commit, library versions as labels). Shared by server and kitchen.
 * Cost: a few small /proc reads and a walk of /proc/self/fd (one entry per
 * open fd), on the caller's thread; never blocks on anything but procfs. */
#ifndef COFFEE_PROCSTAT_H
#define COFFEE_PROCSTAT_H

#include <stdint.h>

struct text_buf;

/* What one thread has cost so far (getrusage(RUSAGE_THREAD)). */
struct thread_usage {
    int64_t context_switches; /* voluntary + involuntary */
    int64_t cpu_ns;           /* user + system */
};
/* The calling thread's usage: 0, or -1 (errno set). */
int thread_usage_self(struct thread_usage *u);

/* Threads of this process now (num_threads of /proc/self/stat), or -1. */
int procstat_threads(void);
/* Appends the process_* families and coffee_build_info to b. */
void procstat_render(struct text_buf *b);

#endif
