/* procstat: the standard process metrics every Prometheus client exports,
 * read from /proc/self at scrape time, and coffee_build_info (version,
 * commit, library versions as labels). Shared by server and kitchen.
 * Cost: a few small /proc reads and a walk of /proc/self/fd (one entry per
 * open fd), on the caller's thread; never blocks on anything but procfs. */
#ifndef COFFEE_PROCSTAT_H
#define COFFEE_PROCSTAT_H

struct text_buf;

/* Threads of this process now (num_threads of /proc/self/stat), or -1. */
int procstat_threads(void);
/* Appends the process_* families and coffee_build_info to b. */
void procstat_render(struct text_buf *b);

#endif
