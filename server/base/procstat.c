/* procstat: /proc/self figures and the build info (see procstat.h). Owns
 * nothing. COFFEE_VERSION and COFFEE_COMMIT come from CMake. */
#define _GNU_SOURCE /* RUSAGE_THREAD */
#include "procstat.h"

#include "promtext.h"

#include <curl/curl.h>
#include <dirent.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#ifndef COFFEE_VERSION
#define COFFEE_VERSION "unknown"
#endif
#ifndef COFFEE_COMMIT
#define COFFEE_COMMIT "unknown"
#endif

struct procstat {
    double cpu_seconds; /* user + system */
    double start_time;  /* seconds since the epoch */
    double resident_bytes;
    double virtual_bytes;
    int open_fds;
    double max_fds; /* soft RLIMIT_NOFILE */
};

/* The build: version (CMake project), git commit ("unknown" when not
 * built from a git checkout), both static strings. */
static const char *build_version(void)
{
    return COFFEE_VERSION;
}
static const char *build_commit(void)
{
    return COFFEE_COMMIT[0] ? COFFEE_COMMIT : "unknown";
}

/* The boot time (btime of /proc/stat), or -1. */
static double boot_time(void)
{
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return -1;
    char line[256];
    double bt = -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "btime ", 6)) {
            bt = strtod(line + 6, NULL);
            break;
        }
    fclose(f);
    return bt;
}

/* utime, stime (fields 14, 15, clock ticks), num_threads (20) and
 * starttime (22, clock ticks) of /proc/self/stat. 0 or -1. */
static int read_stat(unsigned long long *utime, unsigned long long *stime, unsigned long long *threads,
                     unsigned long long *start)
{
    FILE *f = fopen("/proc/self/stat", "r");
    if (!f)
        return -1;
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name (field 2) may hold spaces and ')': skip past the last ')'. */
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    p++;
    /* Fields 3.. follow; field k is the (k-2)th after the ')'. */
    unsigned long long v[21] = {0};
    for (int k = 3; k <= 22; k++) {
        while (*p == ' ')
            p++;
        char *end;
        if (k == 3) { /* state: a letter */
            end = strchr(p, ' ');
            if (!end)
                return -1;
        } else {
            v[k - 3] = strtoull(p, &end, 10);
            if (end == p)
                return -1;
        }
        p = end;
    }
    *utime = v[14 - 3];
    *stime = v[15 - 3];
    *threads = v[20 - 3];
    *start = v[22 - 3];
    return 0;
}

int thread_usage_self(struct thread_usage *u)
{
    struct rusage ru;
    if (getrusage(RUSAGE_THREAD, &ru) != 0)
        return -1;
    u->context_switches = (int64_t)ru.ru_nvcsw + ru.ru_nivcsw;
    u->cpu_ns = ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000 +
                ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
    return 0;
}

int procstat_threads(void)
{
    unsigned long long ut, st, threads, start;
    if (read_stat(&ut, &st, &threads, &start) != 0 || threads == 0 || threads > 1000000)
        return -1;
    return (int)threads;
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory's own fd */
}

/* Reads the process's figures into ps. 0, or -1 if /proc is not there
 * (then ps holds what could be read, -1 elsewhere). */
static int procstat_read(struct procstat *ps)
{
    *ps = (struct procstat){-1, -1, -1, -1, -1, -1};
    int rc = 0;
    double tick = (double)sysconf(_SC_CLK_TCK);
    unsigned long long ut, st, threads, start;
    if (tick > 0 && read_stat(&ut, &st, &threads, &start) == 0) {
        ps->cpu_seconds = (double)(ut + st) / tick;
        double bt = boot_time();
        if (bt > 0)
            ps->start_time = bt + (double)start / tick;
    } else {
        rc = -1;
    }
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long size, resident;
    if (f && fscanf(f, "%llu %llu", &size, &resident) == 2) {
        double page = (double)sysconf(_SC_PAGESIZE);
        ps->virtual_bytes = (double)size * page;
        ps->resident_bytes = (double)resident * page;
    } else {
        rc = -1;
    }
    if (f)
        fclose(f);
    ps->open_fds = count_fds();
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        ps->max_fds = rl.rlim_cur == RLIM_INFINITY ? -1 : (double)rl.rlim_cur;
    return ps->open_fds < 0 ? -1 : rc;
}

/* One sample; precision 0 for whole numbers, 2 for seconds. */
static void gauge(struct text_buf *b, const char *name, const char *type, const char *help, double v, int precision)
{
    if (v < 0)
        return; /* not known here: left out rather than invented */
    promtext_header(b, name, type, help);
    text_buf_put(b, "%s %.*f\n", name, precision, v);
}

static void label(struct text_buf *b, const char *name, const char *value, const char *sep)
{
    text_buf_put(b, "%s=\"", name);
    promtext_label_value(b, value);
    text_buf_put(b, "\"%s", sep);
}

void procstat_render(struct text_buf *b)
{
    struct procstat ps;
    procstat_read(&ps);
    gauge(b, "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.", ps.cpu_seconds,
          2);
    gauge(b, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", ps.resident_bytes, 0);
    gauge(b, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", ps.virtual_bytes, 0);
    gauge(b, "process_open_fds", "gauge", "Number of open file descriptors.", ps.open_fds, 0);
    gauge(b, "process_max_fds", "gauge", "Maximum number of open file descriptors.", ps.max_fds, 0);
    gauge(b, "process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.",
          ps.start_time, 2);

    char pq[32];
    int v = PQlibVersion();
    snprintf(pq, sizeof pq, "%d.%d", v / 10000, v % 10000);
    promtext_header(b, "coffee_build_info", "gauge",
                    "The build: version, git commit and the versions of the libraries in use; always 1.");
    text_buf_put(b, "coffee_build_info{");
    label(b, "version", build_version(), ",");
    label(b, "commit", build_commit(), ",");
    label(b, "libmicrohttpd", MHD_get_version(), ",");
    label(b, "libcurl", curl_version_info(CURLVERSION_NOW)->version, ",");
    label(b, "libpq", pq, ",");
    label(b, "jansson", jansson_version_str(), "");
    text_buf_put(b, "} 1\n");
}
