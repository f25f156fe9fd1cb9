/* Unit tests for the client's log-linear histogram (client/hist.c) and the
 * open-loop schedule (client/openloop.c): percentiles against the exact
 * nearest-rank values of known data, within the stated relative error;
 * intended send times (uniform exact, Poisson with the right mean and no
 * drift) and latency measured from the intended time; and the exact
 * nearest-rank percentiles of server/base/stats.c (/rush's, the tally's). */
#include "harness.h"
#include "hgrm_parse.h"
#include "hist.h"
#include "openloop.h"
#include "stats.h"

#include <CUnit/Basic.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Exact nearest rank of sorted v[0..n). */
static uint64_t exact(const uint64_t *v, size_t n, double p)
{
    size_t rank = (size_t)ceil(p / 100.0 * (double)n);
    return v[rank < 1 ? 0 : rank - 1];
}

/* Every percentile of v within HIST_REL_ERROR of the exact one. */
static void check_data(uint64_t *v, size_t n, const char *what)
{
    static struct hist h;
    hist_init(&h);
    for (size_t i = 0; i < n; i++)
        hist_record(&h, v[i]);
    qsort(v, n, sizeof *v, cmp_u64);
    static const double ps[] = {1, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.99, 100};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) {
        double want = (double)exact(v, n, ps[i]), got = (double)hist_percentile(&h, ps[i]);
        double err = fabs(got - want);
        if (err > want * HIST_REL_ERROR)
            fprintf(stderr, "  %s p%g: got %.0f, want %.0f\n", what, ps[i], got, want);
        CU_ASSERT(err <= want * HIST_REL_ERROR);
    }
    CU_ASSERT_EQUAL(hist_percentile(&h, 100), v[n - 1]);
    CU_ASSERT_EQUAL(h.min, v[0]);
    CU_ASSERT_EQUAL(h.n, n);
}

static void test_buckets(void)
{
    /* Contiguous, each bucket's values map back to it, widths bounded. */
    uint64_t prev_end = 0;
    for (unsigned i = 0; i < HIST_NBUCKETS; i++) {
        uint64_t lo, w;
        hist_bucket(i, &lo, &w);
        CU_ASSERT_EQUAL(lo, prev_end);
        prev_end = lo + w;
        CU_ASSERT_EQUAL(hist_index(lo), i);
        CU_ASSERT_EQUAL(hist_index(lo + w - 1), i);
        if (i >= 2 * HIST_SUB)
            CU_ASSERT(w * HIST_SUB <= lo);
    }
    CU_ASSERT_EQUAL(prev_end - 1, HIST_MAX);
    CU_ASSERT_EQUAL(hist_index(HIST_MAX + 12345), HIST_NBUCKETS - 1);
}

static void test_exact_small(void)
{
    /* Below 2 * HIST_SUB every value has its own bucket: exact. */
    struct hist *h = malloc(sizeof *h);
    CU_ASSERT_FATAL(h != NULL);
    hist_init(h);
    CU_ASSERT_EQUAL(hist_percentile(h, 50), 0);
    for (uint64_t v = 1; v <= 100; v++)
        hist_record(h, v);
    CU_ASSERT_EQUAL(hist_percentile(h, 50), 50);
    CU_ASSERT_EQUAL(hist_percentile(h, 99), 99);
    CU_ASSERT_EQUAL(hist_percentile(h, 99.9), 100);
    CU_ASSERT_EQUAL(hist_percentile(h, 100), 100);
    CU_ASSERT_EQUAL(hist_percentile(h, 0.5), 1);
    CU_ASSERT_DOUBLE_EQUAL(hist_mean(h), 50.5, 1e-9);
    free(h);
}

static void test_uniform_data(void)
{
    size_t n = 100000;
    uint64_t *v = malloc(n * sizeof *v);
    CU_ASSERT_FATAL(v != NULL);
    for (size_t i = 0; i < n; i++)
        v[i] = 1000 + i * 37; /* 1 ms to ~3.7 s in us */
    check_data(v, n, "uniform");
    free(v);
}

static void test_skewed_data(void)
{
    /* A long tail: log-uniform over 6 decades, plus a few huge outliers. */
    size_t n = 50000;
    uint64_t *v = malloc(n * sizeof *v);
    CU_ASSERT_FATAL(v != NULL);
    unsigned seed = 12345;
    for (size_t i = 0; i < n; i++)
        v[i] = (uint64_t)pow(10, 1 + 6.0 * rand_r(&seed) / RAND_MAX);
    v[0] = 3600ull * 1000 * 1000; /* an hour */
    v[1] = 0;
    check_data(v, n, "skewed");
    free(v);
}

static void test_uniform_schedule(void)
{
    struct schedule s;
    schedule_init(&s, ARRIVE_UNIFORM, 40, 0);
    for (int i = 0; i < 1000; i++)
        CU_ASSERT_EQUAL(schedule_next(&s), (int64_t)i * 25000000); /* exactly i / 40 s: no drift */
    schedule_init(&s, ARRIVE_UNIFORM, 3, 0);
    CU_ASSERT_EQUAL(schedule_next(&s), 0);
    CU_ASSERT_EQUAL(schedule_next(&s), 333333333);
    CU_ASSERT_EQUAL(schedule_next(&s), 666666667);
    CU_ASSERT_EQUAL(schedule_next(&s), 1000000000);
}

static void test_poisson_schedule(void)
{
    struct schedule s;
    schedule_init(&s, ARRIVE_POISSON, 100, 7);
    int n = 20000;
    int64_t prev = schedule_next(&s), last = prev;
    CU_ASSERT_EQUAL(prev, 0);
    double sum = 0, sumsq = 0;
    for (int i = 1; i < n; i++) {
        last = schedule_next(&s);
        CU_ASSERT(last >= prev);
        double gap = (double)(last - prev) / 1e9;
        sum += gap;
        sumsq += gap * gap;
        prev = last;
    }
    double mean = sum / (n - 1), sd = sqrt(sumsq / (n - 1) - mean * mean);
    /* Exponential gaps: mean = sd = 1/R; 20000 samples put both within 3%. */
    CU_ASSERT(fabs(mean - 0.01) < 0.0003);
    CU_ASSERT(fabs(sd - 0.01) < 0.0003);
    /* The same seed gives the same schedule. */
    struct schedule a, b;
    schedule_init(&a, ARRIVE_POISSON, 5, 99);
    schedule_init(&b, ARRIVE_POISSON, 5, 99);
    for (int i = 0; i < 100; i++)
        CU_ASSERT_EQUAL(schedule_next(&a), schedule_next(&b));
}

static void test_latency_from_intended(void)
{
    /* A request meant at 1.000 s that could only go at 1.400 s (the client
     * or the server stalled) and was answered at 1.450 s took 450 ms, not
     * 50: coordinated omission corrected. */
    CU_ASSERT_EQUAL(openloop_latency_us(1000000000, 1450000000), 450000);
    CU_ASSERT_EQUAL(openloop_latency_us(1000000000, 1000000499), 0);
    CU_ASSERT_EQUAL(openloop_latency_us(1000000000, 1000000500), 1);
    CU_ASSERT_EQUAL(openloop_latency_us(5, 1), 0);
}

static void test_rate_specs(void)
{
    double r[OPENLOOP_MAX_RATES];
    char err[200];
    CU_ASSERT_EQUAL(openloop_parse_rates("40", 1000, r, err, sizeof err), 1);
    CU_ASSERT_EQUAL(r[0], 40);
    CU_ASSERT_EQUAL(openloop_parse_rates("10:50:10", 1000, r, err, sizeof err), 5);
    CU_ASSERT_EQUAL(r[4], 50);
    CU_ASSERT_EQUAL(openloop_parse_rates("0.5:1.5:0.5", 1000, r, err, sizeof err), 3);
    CU_ASSERT_DOUBLE_EQUAL(r[2], 1.5, 1e-12);
    static const char *const bad[] = {"",        "0",       "-3",       "x",    "10:",  "10:20",
                                      "20:10:1", "1:2:3:4", "1:1000:1", "2000", "10::2"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        CU_ASSERT_EQUAL(openloop_parse_rates(bad[i], 1000, r, err, sizeof err), -1);
        CU_ASSERT(err[0] != '\0');
    }
}

/* Exact percentiles: nearest rank of the sorted sample, "empty" for none. */
static void test_exact_percentiles(void)
{
    double v[] = {5, 1, 4, 2, 3, 3.5, 0.5, 2.5, 4.5, 1.5};
    size_t n = sizeof v / sizeof v[0];
    stats_sort(v, n);
    for (size_t i = 1; i < n; i++)
        CU_ASSERT(v[i - 1] <= v[i]);
    CU_ASSERT_DOUBLE_EQUAL(stats_percentile(v, n, 50, -1), 2.5, 1e-12); /* rank 5 */
    CU_ASSERT_DOUBLE_EQUAL(stats_percentile(v, n, 51, -1), 3.0, 1e-12); /* rank 6 */
    CU_ASSERT_DOUBLE_EQUAL(stats_percentile(v, n, 99, -1), 5.0, 1e-12); /* rank 10 */
    CU_ASSERT_DOUBLE_EQUAL(stats_percentile(v, n, 100, -1), 5.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(stats_percentile(v, n, 10, -1), 0.5, 1e-12);   /* rank 1 */
    CU_ASSERT_DOUBLE_EQUAL(stats_percentile(v, n, 0.01, -1), 0.5, 1e-12); /* rank 1, not 0 */
    CU_ASSERT_DOUBLE_EQUAL(stats_percentile(v, 1, 99, -1), 0.5, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(stats_percentile(v, 0, 50, -1), -1, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(stats_percentile(NULL, 0, 50, 0), 0, 1e-12);
}

static void test_hgrm(void)
{
    enum { N = 10000 };
    static struct hist h;
    hist_init(&h);
    for (uint64_t v = 1; v <= N; v++) /* 1 us .. 10 ms */
        hist_record(&h, v);
    FILE *f = tmpfile();
    CU_ASSERT_FATAL(f != NULL);
    CU_ASSERT_EQUAL(hist_write_hgrm(&h, f, 1000.0, 5), 0);
    static struct hgrm g;
    CU_ASSERT_EQUAL_FATAL(hgrm_parse(f, &g), 0);
    fclose(f);
    CU_ASSERT(g.nrows > 40);
    CU_ASSERT_EQUAL(g.footer, 3);
    CU_ASSERT_DOUBLE_EQUAL(g.mean, (N + 1) / 2.0 / 1000.0, 0.001);
    CU_ASSERT_DOUBLE_EQUAL(g.max, N / 1000.0, 1e-9);
    CU_ASSERT_EQUAL(g.total, N);
    CU_ASSERT(g.stddev > 2.8 && g.stddev < 2.95); /* uniform on 10 ms: 10/sqrt(12) = 2.887 */
    CU_ASSERT_EQUAL(g.row[0].pct, 0.0);
    int seen50 = 0, seen90 = 0, seen99 = 0;
    for (int i = 0; i < g.nrows; i++) {
        const struct hgrm_row *r = &g.row[i];
        int last = i == g.nrows - 1;
        CU_ASSERT_EQUAL(r->ncols, last ? 3 : 4);
        if (i > 0) {
            CU_ASSERT(r->pct > g.row[i - 1].pct);
            CU_ASSERT(r->value >= g.row[i - 1].value);
            CU_ASSERT(r->count >= g.row[i - 1].count);
        }
        if (last) {
            CU_ASSERT_EQUAL(r->pct, 1.0);
            CU_ASSERT_EQUAL(r->count, N);
            CU_ASSERT_DOUBLE_EQUAL(r->value, N / 1000.0, 1e-9);
            break;
        }
        CU_ASSERT_DOUBLE_EQUAL(r->inv, 1.0 / (1.0 - r->pct), 0.006);
        /* The row's value is the highest of the bucket where the count
         * reached the level: at or above that rank's exact value, within
         * a bucket (the values are 1..N, so rank k is k us). */
        double want = ceil(r->pct * N) / 1000.0;
        CU_ASSERT(r->value + 1e-9 >= want);
        CU_ASSERT(r->value <= want * (1 + 2 * HIST_REL_ERROR) + 0.001);
        CU_ASSERT((double)r->count >= r->pct * N);
        seen50 += fabs(r->pct - 0.5) < 1e-12;
        seen90 += fabs(r->pct - 0.9) < 1e-12;
        seen99 += fabs(r->pct - 0.990625) < 1e-12; /* HdrHistogram's levels: 0.984375, 0.9859375, ... */
    }
    CU_ASSERT(seen50 == 1 && seen90 == 1 && seen99 == 1);

    /* Empty: header and footer only. One value: a row at 0, then 1.0. */
    hist_init(&h);
    f = tmpfile();
    CU_ASSERT_EQUAL(hist_write_hgrm(&h, f, 1000.0, 5), 0);
    CU_ASSERT_EQUAL(hgrm_parse(f, &g), 0);
    CU_ASSERT_EQUAL(g.nrows, 0);
    CU_ASSERT_EQUAL(g.total, 0);
    fclose(f);
    hist_record(&h, 4200);
    f = tmpfile();
    CU_ASSERT_EQUAL(hist_write_hgrm(&h, f, 1000.0, 5), 0);
    CU_ASSERT_EQUAL(hgrm_parse(f, &g), 0);
    CU_ASSERT_EQUAL(g.nrows, 2);
    CU_ASSERT_DOUBLE_EQUAL(g.row[0].value, 4.2, 1e-9);
    CU_ASSERT_EQUAL(g.row[1].pct, 1.0);
    fclose(f);
}

int main(void)
{
    static const struct harness_test tests[] = {
        {"buckets: contiguous, bounded width, values map back", test_buckets},
        {"small values are exact", test_exact_small},
        {"percentiles of uniform data within the stated error", test_uniform_data},
        {"percentiles of long-tailed data within the stated error", test_skewed_data},
        {"uniform schedule: i / R exactly", test_uniform_schedule},
        {"Poisson schedule: exponential gaps of mean 1/R, reproducible", test_poisson_schedule},
        {"latency from the intended send time", test_latency_from_intended},
        {"rate specs: R and a:b:step", test_rate_specs},
        {"exact nearest-rank percentiles (stats.h)", test_exact_percentiles},
        {".hgrm: HdrHistogram's percentile distribution, parsed back", test_hgrm},
        {NULL, NULL},
    };
    return harness_main("hist", NULL, NULL, tests);
}
