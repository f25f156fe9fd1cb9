/* log: one event per line on stderr. Thread-safe (one write per line).
 *
 * Two formats (--log-format): "text", readable, for a terminal
 *   09:49:56.123 coffee-server info: kitchen http://... order_id=17
 * and "logfmt", for jq-like tools and log shippers: key=value pairs with
 * time (RFC 3339, UTC, ms), level, component (the program, or the part of
 * it that speaks: "order", "kitchen"), msg, then the event's own fields
 *   time=2026-12-02T09:49:56.123Z level=info component=order msg="order ended" order_id=17 mode=async ...
 * Values with spaces, quotes, '=' or control characters are quoted, with
 * \" \\ \n \t escapes. The default is text when stderr is a terminal, logfmt
 * otherwise (a container, a file, a pipe). */
#ifndef COFFEE_LOG_H
#define COFFEE_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };
enum log_format { LOG_FORMAT_TEXT, LOG_FORMAT_LOGFMT };

/* One field of an event; value NULL = left out. */
struct log_field {
    const char *key;
    const char *value;
};

/* Sets the program name (the default component) and the lowest level
 * printed (default LOG_INFO). The format stays as set. */
void log_init(const char *prog, enum log_level min);
/* Sets the format (default: log_format_default()). */
void log_set_format(enum log_format f);
/* "text" or "logfmt" into *f: 0, or -1 for anything else (NULL included). */
int log_format_parse(const char *name, enum log_format *f);
/* Text when stderr is a terminal, logfmt otherwise. */
enum log_format log_format_default(void);
/* Whether level would be printed (to skip building an event's fields). */
int log_enabled(enum log_level level);

/* One event: msg and n fields (borrowed), from component (NULL = the
 * program). */
void log_event(enum log_level level, const char *component, const char *msg, const struct log_field *fields, size_t n);
/* An event with a printf-formatted msg and no fields, from the program. */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
