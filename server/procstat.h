/* procstat: the standard process metrics every Prometheus client exports,
 * read from /proc/self at scrape time, and coffee_build_info (version,
 * commit, library versions as labels). Shared by server and kitchen.
 * Cost: a few small /proc reads and a walk of /proc/self/fd (one entry per
 * open fd), on the caller's thread; never blocks on anything but procfs. */
#ifndef COFFEE_PROCSTAT_H
#define COFFEE_PROCSTAT_H

struct text_buf;

struct procstat {
    double cpu_seconds; /* user + system */
    double start_time;  /* seconds since the epoch */
    double resident_bytes;
    double virtual_bytes;
    int open_fds;
    double max_fds; /* soft RLIMIT_NOFILE */
};

/* Reads the process's figures into ps. 0, or -1 if /proc is not there
 * (then ps holds what could be read, -1 elsewhere). */
int procstat_read(struct procstat *ps);
/* Threads of this process now (num_threads of /proc/self/stat), or -1. */
int procstat_threads(void);
/* Appends the process_* families and coffee_build_info to b. */
void procstat_render(struct text_buf *b);

/* The build: version (CMake project), git commit ("unknown" when not
 * built from a git checkout), both static strings. */
const char *build_version(void);
const char *build_commit(void);

#endif
