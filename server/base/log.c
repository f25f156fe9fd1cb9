/* log: see log.h. Owns nothing but three static settings, set at start
 * before any thread runs. Lines are built in a stack buffer (cut at 2 KB)
 * and written with one write(2), so lines of threads never interleave. */
#include "log.h"

#include "check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 2048

static const char *log_prog = "coffee";
static enum log_level log_min = LOG_INFO;
static int log_fmt = -1; /* -1: not chosen yet, log_format_default() */

void log_init(const char *prog, enum log_level min)
{
    log_prog = prog;
    log_min = min;
}

void log_set_format(enum log_format f)
{
    log_fmt = (int)f;
}

int log_format_parse(const char *name, enum log_format *f)
{
    if (name && !strcmp(name, "text"))
        *f = LOG_FORMAT_TEXT;
    else if (name && !strcmp(name, "logfmt"))
        *f = LOG_FORMAT_LOGFMT;
    else
        return -1;
    return 0;
}

enum log_format log_format_default(void)
{
    return isatty(STDERR_FILENO) ? LOG_FORMAT_TEXT : LOG_FORMAT_LOGFMT;
}

int log_enabled(enum log_level level)
{
    return level >= log_min;
}

struct line {
    char p[LINE_MAX_BYTES];
    size_t len;
};

static void add(struct line *l, const char *s, size_t n)
{
    size_t room = sizeof l->p - 1 - l->len; /* one byte kept for the newline */
    if (n > room)
        n = room;
    memcpy(l->p + l->len, s, n);
    l->len += n;
}

static void adds(struct line *l, const char *s)
{
    add(l, s, strlen(s));
}

/* A logfmt value: bare when it can be, else quoted with escapes. */
static void add_value(struct line *l, const char *v)
{
    int bare = *v != '\0';
    for (const char *c = v; *c && bare; c++)
        bare = (unsigned char)*c > ' ' && *c != '"' && *c != '=' && *c != '\\' && (unsigned char)*c != 0x7f;
    if (bare) {
        adds(l, v);
        return;
    }
    adds(l, "\"");
    for (const char *c = v; *c; c++) {
        switch (*c) {
        case '"':
            adds(l, "\\\"");
            break;
        case '\\':
            adds(l, "\\\\");
            break;
        case '\n':
            adds(l, "\\n");
            break;
        case '\t':
            adds(l, "\\t");
            break;
        case '\r':
            adds(l, "\\r");
            break;
        default:
            if ((unsigned char)*c < ' ' || (unsigned char)*c == 0x7f)
                adds(l, "?");
            else
                add(l, c, 1);
        }
    }
    adds(l, "\"");
}

static void add_field(struct line *l, const char *key, const char *value)
{
    adds(l, " ");
    adds(l, key);
    adds(l, "=");
    add_value(l, value);
}

void log_event(enum log_level level, const char *component, const char *msg, const struct log_field *fields, size_t n)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    if (level < log_min)
        return;
    struct line l = {.len = 0};
    char stamp[96];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int fmt = log_fmt >= 0 ? log_fmt : (int)log_format_default();
    if (fmt == LOG_FORMAT_LOGFMT) {
        snprintf(stamp, sizeof stamp, "time=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
        adds(&l, stamp);
        add_field(&l, "level", names[level]);
        add_field(&l, "component", component ? component : log_prog);
        add_field(&l, "msg", msg);
    } else {
        snprintf(stamp, sizeof stamp, "%02d:%02d:%02d.%03ld ", tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
        adds(&l, stamp);
        adds(&l, log_prog);
        adds(&l, " ");
        adds(&l, names[level]);
        adds(&l, ": ");
        if (component) {
            adds(&l, component);
            adds(&l, ": ");
        }
        adds(&l, msg);
    }
    for (size_t i = 0; i < n; i++)
        if (fields[i].value)
            add_field(&l, fields[i].key, fields[i].value);
    l.p[l.len++] = '\n';
    /* One write per line; a short write to a full pipe is not retried. */
    ssize_t w = write(STDERR_FILENO, l.p, l.len);
    (void)w;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    if (level < log_min)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_event(level, NULL, msg, NULL, 0);
}

/* check.h's one reporter: a programmer error, so the process stops here. */
void check_failed(const char *what, const char *file, int line, const char *func)
{
    log_error("check failed: %s (%s:%d, %s)", what, file, line, func);
    abort();
}
