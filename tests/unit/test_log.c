/* Unit tests for log: the exact lines of both formats, logfmt quoting of
 * awkward values, levels, and the format names. stderr is pointed at a
 * temporary file for each check and read back. */
#include "harness.h"
#include "log.h"

#include <CUnit/Basic.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char path[] = "/tmp/coffee-test-log.XXXXXX";
static int saved_stderr = -1;

/* Starts capturing stderr into an empty file. */
static void capture(void)
{
    int fd = open(path, O_WRONLY | O_TRUNC);
    CU_ASSERT_FATAL(fd >= 0);
    saved_stderr = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    close(fd);
}

/* Stops capturing; returns what was written (static buffer). */
static const char *captured(void)
{
    static char buf[4096];
    dup2(saved_stderr, STDERR_FILENO);
    close(saved_stderr);
    FILE *f = fopen(path, "r");
    CU_ASSERT_FATAL(f != NULL);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static int setup(void)
{
    int fd = mkstemp(path);
    if (fd < 0)
        return -1;
    close(fd);
    log_init("coffee-test", LOG_INFO);
    return 0;
}

static int teardown(void)
{
    return unlink(path);
}

static void test_logfmt_line(void)
{
    log_set_format(LOG_FORMAT_LOGFMT);
    const struct log_field f[] = {
        {"order_id", "17"}, {"mode", "async"}, {"skipped", NULL},           {"error", "kitchen said \"no\""},
        {"empty", ""},      {"eq", "a=b"},     {"nl", "two\nlines\tand\\"}, {"ctl", "bell\a"},
    };
    capture();
    log_event(LOG_WARN, "order", "order ended", f, sizeof f / sizeof f[0]);
    const char *out = captured();
    /* time=YYYY-MM-DDTHH:MM:SS.mmmZ first, then the rest exactly. */
    CU_ASSERT_EQUAL(strncmp(out, "time=", 5), 0);
    CU_ASSERT(strlen(out) > 29 && out[15] == 'T' && out[28] == 'Z' && out[29] == ' ');
    CU_ASSERT_STRING_EQUAL(out + 30, "level=warn component=order msg=\"order ended\" order_id=17 mode=async"
                                     " error=\"kitchen said \\\"no\\\"\" empty=\"\" eq=\"a=b\""
                                     " nl=\"two\\nlines\\tand\\\\\" ctl=\"bell?\"\n");
}

static void test_text_line(void)
{
    log_set_format(LOG_FORMAT_TEXT);
    const struct log_field f[] = {{"order_id", "17"}, {"error", "a b"}};
    capture();
    log_event(LOG_INFO, "order", "order ended", f, 2);
    log_msg(LOG_ERROR, "plain %d", 42);
    const char *out = captured();
    /* "HH:MM:SS.mmm coffee-test info: order: order ended order_id=17 error=\"a b\"" */
    CU_ASSERT(strlen(out) > 13 && out[2] == ':' && out[5] == ':' && out[8] == '.' && out[12] == ' ');
    const char *second = strchr(out, '\n');
    CU_ASSERT_FATAL(second != NULL);
    CU_ASSERT_EQUAL(strncmp(out + 13, "coffee-test info: order: order ended order_id=17 error=\"a b\"\n", 61), 0);
    CU_ASSERT_STRING_EQUAL(second + 1 + 13, "coffee-test error: plain 42\n");
}

static void test_levels_and_names(void)
{
    log_set_format(LOG_FORMAT_LOGFMT);
    capture();
    log_debug("not shown at info");
    log_msg(LOG_INFO, "shown");
    const char *out = captured();
    CU_ASSERT_PTR_NULL(strstr(out, "not shown"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, " level=info component=coffee-test msg=shown\n"));
    CU_ASSERT(!log_enabled(LOG_DEBUG) && log_enabled(LOG_WARN));

    /* A line longer than the buffer is cut, still one line. */
    char big[5000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    capture();
    log_msg(LOG_INFO, "%s", big);
    out = captured();
    CU_ASSERT(strlen(out) < 2100 && out[strlen(out) - 1] == '\n' && strchr(out, '\n') == out + strlen(out) - 1);

    enum log_format f;
    CU_ASSERT(log_format_parse("text", &f) == 0 && f == LOG_FORMAT_TEXT);
    CU_ASSERT(log_format_parse("logfmt", &f) == 0 && f == LOG_FORMAT_LOGFMT);
    CU_ASSERT_EQUAL(log_format_parse("json", &f), -1);
    CU_ASSERT_EQUAL(log_format_parse("", &f), -1);
    CU_ASSERT_EQUAL(log_format_parse(NULL, &f), -1);
}

int main(void)
{
    static const struct harness_test tests[] = {
        {"logfmt: the exact line, awkward values quoted", test_logfmt_line},
        {"text: the readable line", test_text_line},
        {"levels, long lines, format names", test_levels_and_names},
        {NULL, NULL},
    };
    return harness_main("log", setup, teardown, tests);
}
