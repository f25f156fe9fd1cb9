/* Integration: coffee-client against the real stack, for what only the
 * client computes: --hgrm writes each mode's latencies as HdrHistogram's
 * percentile distribution (read back here as HdrHistogram's plotter reads
 * it), closed loop and open loop, and the open loop reports the
 * uncorrected latency (from the actual send) beside the corrected one
 * (from the intended send), which can only be smaller. */
#include "harness.h"
#include "hgrm_parse.h"

#include <CUnit/Basic.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static struct stack st;
static PGconn *db;
static char dir[] = "/tmp/coffee-client-test.XXXXXX";

static int setup(void)
{
    if (!mkdtemp(dir))
        return -1;
    return stack_setup(&st, NULL, &db);
}

static int teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "  could not remove %s\n", dir);
    return stack_teardown(&st, db);
}

/* Runs coffee-client with args (NULL-terminated; --url is added), its
 * stdout into out_path. Returns its exit status, or -1. The client ends
 * by itself: every run here is bounded by its --orders or --duration. */
static int run_client(const char *const args[], const char *out_path)
{
    const char *bin = getenv("COFFEE_BIN_DIR");
    char path[512];
    snprintf(path, sizeof path, "%s/coffee-client", bin ? bin : ".");
    const char *argv[32] = {path, "--url", st.server.base_url};
    int n = 3;
    for (int i = 0; args[i] && n < 31; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    pid_t pid;
    int rc = posix_spawn(&pid, path, &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    int status;
    if (rc != 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}

/* The file's rows are a distribution of total values: percentiles and
 * counts rising, the last row 1.0 with the total, the footer agreeing. */
static void check_distribution(const struct hgrm *g, unsigned long long total)
{
    CU_ASSERT(g->nrows >= 2);
    CU_ASSERT_EQUAL(g->footer, 3);
    CU_ASSERT_EQUAL(g->total, total);
    if (g->nrows < 2)
        return;
    const struct hgrm_row *last = &g->row[g->nrows - 1];
    CU_ASSERT_EQUAL(last->pct, 1.0);
    CU_ASSERT_EQUAL(last->count, total);
    CU_ASSERT_EQUAL(last->ncols, 3);
    CU_ASSERT_DOUBLE_EQUAL(last->value, g->max, 1e-9);
    CU_ASSERT_EQUAL(g->row[0].pct, 0.0);
    for (int i = 1; i < g->nrows; i++) {
        CU_ASSERT(g->row[i].pct > g->row[i - 1].pct);
        CU_ASSERT(g->row[i].value >= g->row[i - 1].value);
    }
    CU_ASSERT(g->mean > 0 && g->mean <= g->max);
}

static void test_closed_loop_hgrm(void)
{
    char prefix[256], out[256], file[320];
    snprintf(prefix, sizeof prefix, "%s/closed", dir);
    snprintf(out, sizeof out, "%s/closed.out", dir);
    const char *args[] = {"--mode", "both",   "--orders", "6", "--concurrency", "3", "--scale",
                          "0.02",   "--hgrm", prefix,     NULL};
    CU_ASSERT_EQUAL_FATAL(run_client(args, out), 0);
    static struct hgrm g;
    static const char *const modes[] = {"blocking", "async"};
    for (int i = 0; i < 2; i++) {
        snprintf(file, sizeof file, "%s-%s.hgrm", prefix, modes[i]);
        CU_ASSERT_EQUAL_FATAL(hgrm_parse_file(file, &g), 0);
        check_distribution(&g, 6);
        /* An order of scale 0.02 takes at least its critical path (80 ms). */
        CU_ASSERT(g.row[0].value >= 80.0 * 0.9);
    }
}

static void test_open_loop_hgrm_and_uncorrected(void)
{
    char prefix[256], out[256], file[320];
    snprintf(prefix, sizeof prefix, "%s/open", dir);
    snprintf(out, sizeof out, "%s/open.out", dir);
    const char *args[] = {"--mode",  "async", "--rate", "20",   "--duration", "1",
                          "--scale", "0",     "--hgrm", prefix, "--json",     NULL};
    CU_ASSERT_EQUAL_FATAL(run_client(args, out), 0);
    static struct hgrm corrected, uncorrected;
    snprintf(file, sizeof file, "%s-async.hgrm", prefix);
    CU_ASSERT_EQUAL_FATAL(hgrm_parse_file(file, &corrected), 0);
    snprintf(file, sizeof file, "%s-async-uncorrected.hgrm", prefix);
    CU_ASSERT_EQUAL_FATAL(hgrm_parse_file(file, &uncorrected), 0);
    check_distribution(&corrected, 20);
    check_distribution(&uncorrected, 20);
    /* Each latency from the actual send is at most the one from the
     * intended send, so the uncorrected max and mean are no bigger. */
    CU_ASSERT(uncorrected.max <= corrected.max + 1e-9);
    CU_ASSERT(uncorrected.mean <= corrected.mean + 1e-9);

    json_error_t jerr;
    json_t *doc = json_load_file(out, 0, &jerr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    json_t *run = json_array_get(json_object_get(doc, "runs"), 0);
    json_t *u = json_object_get(run, "uncorrected_latency_ms"), *l = json_object_get(run, "latency_ms");
    CU_ASSERT(json_is_object(u) && json_is_object(l));
    CU_ASSERT(jnum(u, "max") <= jnum(l, "max") + 1e-9);
    json_decref(doc);

    /* The text table has the uncorrected columns. */
    const char *text_args[] = {"--mode", "async", "--rate", "10", "--duration", "0.5", "--scale", "0", NULL};
    CU_ASSERT_EQUAL_FATAL(run_client(text_args, out), 0);
    FILE *f = fopen(out, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    char line[512];
    int header = 0;
    while (fgets(line, sizeof line, f))
        header |= strstr(line, "unc p50") && strstr(line, "unc p99");
    fclose(f);
    CU_ASSERT(header);
}

static void test_hgrm_unwritable(void)
{
    char out[256];
    snprintf(out, sizeof out, "%s/bad.out", dir);
    const char *args[] = {"--mode", "async", "--orders", "1", "--scale", "0", "--hgrm", "/nonexistent-dir/x", NULL};
    CU_ASSERT_EQUAL(run_client(args, out), 1);
}

int main(void)
{
    static const struct harness_test tests[] = {
        {"--hgrm, closed loop: a distribution per mode", test_closed_loop_hgrm},
        {"--hgrm, open loop: corrected and uncorrected", test_open_loop_hgrm_and_uncorrected},
        {"--hgrm to a place that cannot be written: exit 1", test_hgrm_unwritable},
        {NULL, NULL},
    };
    return harness_main("client", setup, teardown, tests);
}
