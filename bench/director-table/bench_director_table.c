/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench_director_table: build time, balance and disruption of the director
 * forwarding table (xdp-lb/director_table.c) for 16 ... 1,024 proxies.
 *
 * For each size N (proxies "proxy-0000" ... with addresses 10.x.y.z, all
 * active and healthy, weight 100, a fixed 16-byte seed):
 *   - build time: median wall time of RUNS full builds (CLOCK_MONOTONIC);
 *   - balance: max over proxies of primary rows / (65,536 / N);
 *   - movement: for CHANGES different single changes (remove one proxy,
 *     add one new proxy) the rows whose primary changed, minus the share
 *     that must move (65,536 / N, N the larger table), as % of all rows; the worst is
 *     reported, and secondary moves alongside;
 *   - transitions of one proxy: flows broken (old primary is neither new
 *     primary nor new secondary) for inactive->filling->active->draining->
 *     inactive.
 * Then the worst case: build time (median of SHAPE_RUNS) and the builder's
 * work counter over a sweep of fleet shapes - unequal weights, draining and
 * filling proxies far heavier than the active ones (issue 19: one active
 * proxy of weight 1 and one draining of weight 63 took 22-25 s), dominant
 * proxies among many light ones, tight load factors, health failures, the
 * fuzz seeds that found the blow-up - next to the typical shape (1,000
 * equal active proxies).
 * Builds use the builder's default thread count (what the watcher gets:
 * online CPUs, at most 4); the sweep also times one-thread builds,
 * alternating with those, so the speed-up shows in one run.
 * Output: human tables, then BENCH lines. Argument "worst": the sweep only.
 * Arguments "shape K [T]": build shape K of the sweep once (with T threads,
 * default the builder's) and print its work counter and checksum, for
 * instruction counts under valgrind --tool=callgrind (stable on a loaded
 * host, unlike times; bench/director-table/callgrind.sh runs it).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "director_table.h"
#include "fleet_shapes.h"

#define RUNS    7
#define CHANGES 5

static const uint8_t seed[16] = "drover-bench-k1";

struct fleet {
    size_t n;
    char (*ids)[32];
    char (*addrs)[32];
    struct director_proxy_input *in;
};

static int fleet_init(struct fleet *f, size_t n)
{
    f->n = n;
    f->ids = calloc(n + 1, sizeof(*f->ids));
    f->addrs = calloc(n + 1, sizeof(*f->addrs));
    f->in = calloc(n + 1, sizeof(*f->in));
    if (!f->ids || !f->addrs || !f->in)
        return -ENOMEM;
    for (size_t i = 0; i <= n; i++) {
        snprintf(f->ids[i], sizeof(f->ids[i]), "proxy-%04zu", i);
        snprintf(f->addrs[i], sizeof(f->addrs[i]), "10.%zu.%zu.%zu", i >> 16, (i >> 8) & 255,
                 i & 255);
        f->in[i] = (struct director_proxy_input){.id = f->ids[i],
                                                 .address = f->addrs[i],
                                                 .state = DIRECTOR_PROXY_ACTIVE,
                                                 .healthy = true};
    }
    return 0;
}

static void fleet_free(struct fleet *f)
{
    free(f->ids);
    free(f->addrs);
    free(f->in);
}

static double clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* The three load averages, "?" if unknown. */
static void load_average(char *out, size_t len)
{
    FILE *lf = fopen("/proc/loadavg", "r");
    snprintf(out, len, "?\n");
    if (lf) {
        if (!fgets(out, (int)len, lf))
            snprintf(out, len, "?\n");
        fclose(lf);
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static struct director_table *build(const struct director_proxy_input *in, size_t n)
{
    struct director_table_config cfg = {.seed = seed, .seed_len = sizeof(seed)};
    struct director_table *t = NULL;
    char err[256];
    int rc = director_table_build(&cfg, in, n, &t, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "bench: build of %zu proxies failed: %s (%s)\n", n, err, strerror(-rc));
        exit(1);
    }
    return t;
}

struct size_result {
    double build_ms, build_cpu_ms, balance, moved_excess_pct, sec_moved_pct;
    unsigned broken[4];
};

static void measure(size_t n, struct size_result *res)
{
    struct fleet f;
    double times[RUNS], cpu[RUNS];

    if (fleet_init(&f, n) < 0) {
        fprintf(stderr, "bench: out of memory\n");
        exit(1);
    }
    struct director_table *base = NULL;
    for (int i = 0; i < RUNS; i++) {
        double t0 = clock_ms(CLOCK_MONOTONIC), c0 = clock_ms(CLOCK_PROCESS_CPUTIME_ID);
        struct director_table *t = build(f.in, n);
        times[i] = clock_ms(CLOCK_MONOTONIC) - t0;
        cpu[i] = clock_ms(CLOCK_PROCESS_CPUTIME_ID) - c0;
        if (base)
            director_table_free(t);
        else
            base = t;
    }
    qsort(times, RUNS, sizeof(times[0]), cmp_double);
    qsort(cpu, RUNS, sizeof(cpu[0]), cmp_double);
    res->build_ms = times[RUNS / 2];
    res->build_cpu_ms = cpu[RUNS / 2];
    res->balance = base->balance_max_over_mean;

    /* single changes: remove proxy k (spread over the fleet), add proxy n */
    res->moved_excess_pct = -100;
    res->sec_moved_pct = 0;
    for (int c = 0; c < 2 * CHANGES; c++) {
        struct director_table *t;
        struct director_table *from = base;
        if (c < CHANGES) {
            /* remove proxy k: N -> N-1 */
            size_t k = (size_t)c * n / CHANGES;
            struct director_proxy_input saved = f.in[k];
            f.in[k] = f.in[n - 1];
            t = build(f.in, n - 1);
            f.in[k] = saved;
        } else {
            /* add a new proxy (a different one each time): N-1 -> N */
            from = build(f.in, n - 1);
            struct director_proxy_input saved = f.in[n - 1];
            snprintf(f.ids[n], sizeof(f.ids[n]), "proxy-new-%d", c);
            f.in[n - 1] = f.in[n];
            t = build(f.in, n);
            f.in[n - 1] = saved;
        }
        struct director_table_diff d;
        director_table_diff(from, t, &d);
        if (from != base)
            director_table_free(from);
        double must = (double)DIRECTOR_TABLE_ROWS / (double)n;
        double excess = 100.0 * (d.primary_moved - must) / DIRECTOR_TABLE_ROWS;
        if (excess > res->moved_excess_pct)
            res->moved_excess_pct = excess;
        double sec = 100.0 * d.secondary_moved / DIRECTOR_TABLE_ROWS;
        if (sec > res->sec_moved_pct)
            res->sec_moved_pct = sec;
        director_table_free(t);
    }

    /* lifecycle of one proxy among N-1 others */
    static const enum director_proxy_state steps[] = {DIRECTOR_PROXY_FILLING, DIRECTOR_PROXY_ACTIVE,
                                                      DIRECTOR_PROXY_DRAINING,
                                                      DIRECTOR_PROXY_INACTIVE};
    snprintf(f.ids[n], sizeof(f.ids[n]), "proxy-cycle");
    f.in[n - 1] = f.in[n];
    f.in[n - 1].state = DIRECTOR_PROXY_INACTIVE;
    struct director_table *prev = build(f.in, n);
    for (int s = 0; s < 4; s++) {
        f.in[n - 1].state = steps[s];
        struct director_table *t = build(f.in, n);
        struct director_table_diff d;
        director_table_diff(prev, t, &d);
        res->broken[s] = d.flows_broken;
        director_table_free(prev);
        prev = t;
    }
    director_table_free(prev);
    director_table_free(base);
    fleet_free(&f);
}

/* ---- worst case over fleet shapes ---------------------------------- */

#define SHAPE_RUNS 5

/* Per shape, the builder's default thread count (what the watcher gets)
 * and one thread, timed alternately in the same run. */
struct shape_result {
    double ms, cpu_ms;     /* default threads: wall, CPU of all threads */
    double own_cpu_ms;     /* ... CPU of the calling thread alone */
    double ms_1, cpu_ms_1; /* threads = 1 */
    double work_per_row;   /* default threads */
    double work_per_row_1; /* threads = 1: no copy for the cascades, fewer steps repeated */
    uint64_t work;         /* default threads, the whole build */
    uint32_t threads;      /* the default's thread count */
    uint64_t checksum;     /* of the table built: equal before and after a speed-up */
};

/* One build of the fleet in[0..n): wall and CPU (all threads) ms into
 * *ms and *cpu; exits on failure. */
static struct director_table *timed_build(const struct director_table_config *cfg,
                                          const struct director_proxy_input *in, size_t n,
                                          const char *name, double *ms, double *cpu,
                                          double *own_cpu)
{
    struct director_table *t = NULL;
    char err[256];
    double t0 = clock_ms(CLOCK_MONOTONIC), c0 = clock_ms(CLOCK_PROCESS_CPUTIME_ID);
    double o0 = clock_ms(CLOCK_THREAD_CPUTIME_ID);
    int rc = director_table_build(cfg, in, n, &t, err, sizeof(err));
    *ms = clock_ms(CLOCK_MONOTONIC) - t0;
    *cpu = clock_ms(CLOCK_PROCESS_CPUTIME_ID) - c0;
    *own_cpu = clock_ms(CLOCK_THREAD_CPUTIME_ID) - o0;
    if (rc < 0 && rc != -ENOENT) {
        fprintf(stderr, "bench: shape \"%s\": %s (%s)\n", name, err, strerror(-rc));
        exit(1);
    }
    return t;
}

static double median(double *v, int n)
{
    qsort(v, n, sizeof(v[0]), cmp_double);
    return v[n / 2];
}

/* runs builds with `threads` (0: the builder's default) and, if
 * also_one, as many with one thread, alternating. */
static void measure_shape_runs(const struct fleet_shape *sh, struct shape_result *res, int runs,
                               unsigned threads, bool also_one)
{
    static char ids[DIRECTOR_TABLE_MAX_PROXIES][32], addrs[DIRECTOR_TABLE_MAX_PROXIES][32];
    static struct director_proxy_input in[DIRECTOR_TABLE_MAX_PROXIES];
    size_t n = 0;

    for (int g = 0; g < FLEET_SHAPE_MAX_GROUPS && sh->g[g].count; g++) {
        for (unsigned k = 0; k < sh->g[g].count && n < DIRECTOR_TABLE_MAX_PROXIES; k++, n++) {
            snprintf(ids[n], sizeof(ids[n]), "proxy-%04zu", n);
            snprintf(addrs[n], sizeof(addrs[n]), "10.1.%zu.%zu", n >> 8, n & 255);
            in[n] = (struct director_proxy_input){.id = ids[n],
                                                  .address = addrs[n],
                                                  .state = sh->g[g].state,
                                                  .healthy = sh->g[g].healthy,
                                                  .weight = sh->g[g].weight};
        }
    }
    struct director_table_config cfg = {.seed = seed,
                                        .seed_len = sizeof(seed),
                                        .load_permille = sh->load_permille,
                                        .draw_per_row = sh->draw_per_row};
    if (sh->seed) {
        cfg.seed = (const uint8_t *)sh->seed;
        cfg.seed_len = strlen(sh->seed);
    }
    double times[SHAPE_RUNS], cpu[SHAPE_RUNS], own[SHAPE_RUNS];
    double times_1[SHAPE_RUNS], cpu_1[SHAPE_RUNS], own_1;
    for (int i = 0; i < runs; i++) {
        cfg.threads = threads;
        struct director_table *t = timed_build(&cfg, in, n, sh->name, &times[i], &cpu[i], &own[i]);
        res->work_per_row = (double)t->work / DIRECTOR_TABLE_ROWS;
        res->work = t->work;
        res->checksum = t->checksum;
        res->threads = t->threads;
        director_table_free(t);
        if (!also_one)
            continue;
        cfg.threads = 1;
        t = timed_build(&cfg, in, n, sh->name, &times_1[i], &cpu_1[i], &own_1);
        if (t->checksum != res->checksum) {
            fprintf(stderr,
                    "bench: shape \"%s\": %u threads gave checksum %016llx, 1 thread %016llx\n",
                    sh->name, res->threads, (unsigned long long)res->checksum,
                    (unsigned long long)t->checksum);
            exit(1);
        }
        res->work_per_row_1 = (double)t->work / DIRECTOR_TABLE_ROWS;
        director_table_free(t);
    }
    res->ms = median(times, runs);
    res->cpu_ms = median(cpu, runs);
    res->own_cpu_ms = median(own, runs);
    res->ms_1 = also_one ? median(times_1, runs) : 0;
    res->cpu_ms_1 = also_one ? median(cpu_1, runs) : 0;
}

static void measure_shape(const struct fleet_shape *sh, struct shape_result *res)
{
    measure_shape_runs(sh, res, SHAPE_RUNS, 0, true);
}

/* Build shape `k` once (no timing) with `threads` (NULL: the default),
 * for callgrind: returns 2 if k or threads is out of range. */
static int one_shape(const char *arg, const char *threads)
{
    size_t nshapes = sizeof(fleet_shapes) / sizeof(fleet_shapes[0]);
    char *end;
    unsigned long k = strtoul(arg, &end, 10);
    if (*arg == '\0' || *end != '\0' || k >= nshapes) {
        fprintf(stderr, "bench: shape \"%s\": want a shape number 0..%zu\n", arg, nshapes - 1);
        return 2;
    }
    unsigned long th = threads ? strtoul(threads, &end, 10) : 0;
    if (threads && (*threads == '\0' || *end != '\0' || th > DIRECTOR_TABLE_MAX_THREADS)) {
        fprintf(stderr, "bench: threads \"%s\": want 0..%u\n", threads, DIRECTOR_TABLE_MAX_THREADS);
        return 2;
    }
    struct shape_result res;
    measure_shape_runs(&fleet_shapes[k], &res, 1, (unsigned)th, false);
    printf("shape %lu: %s: work/row %.1f (work %llu), checksum %016llx\n", k, fleet_shapes[k].name,
           res.work_per_row, (unsigned long long)res.work, (unsigned long long)res.checksum);
    return 0;
}

static void worst_case(void)
{
    size_t nshapes = sizeof(fleet_shapes) / sizeof(fleet_shapes[0]), worst = 0, worst_1 = 0,
           worst_work = 0;
    size_t worst_own = 0, worst_1cpu = 0, worst_work_1 = 0;
    struct shape_result res[sizeof(fleet_shapes) / sizeof(fleet_shapes[0])];

    printf("\nworst case over fleet shapes: median of %d builds with the builder's\n"
           "  default threads (wall, CPU of all threads), and of %d builds with one\n"
           "  thread run alternately with them (1thr_*; same checksum checked);\n"
           "  own_cpu = CPU of the calling thread alone, a lower bound of the wall\n"
           "  time when the other cores idle (an estimate that load disturbs less);\n"
           "  work = the builder's step counter per row (draws, list reads, scans);\n"
           "  1thr_work: with one thread (the cascades share one copy of the lists)\n",
           SHAPE_RUNS, SHAPE_RUNS);
    printf("%9s %8s %8s %9s %9s %7s %9s %9s  %s\n", "build_ms", "cpu_ms", "own_cpu", "1thr_ms",
           "1thr_cpu", "threads", "work/row", "1thr_work", "shape");
    for (size_t i = 0; i < nshapes; i++) {
        measure_shape(&fleet_shapes[i], &res[i]);
        printf("%9.2f %8.2f %8.2f %9.2f %9.2f %7u %9.1f %9.1f  %s\n", res[i].ms, res[i].cpu_ms,
               res[i].own_cpu_ms, res[i].ms_1, res[i].cpu_ms_1, res[i].threads, res[i].work_per_row,
               res[i].work_per_row_1, fleet_shapes[i].name);
        if (res[i].ms > res[worst].ms)
            worst = i;
        if (res[i].ms_1 > res[worst_1].ms_1)
            worst_1 = i;
        if (res[i].own_cpu_ms > res[worst_own].own_cpu_ms)
            worst_own = i;
        if (res[i].cpu_ms_1 > res[worst_1cpu].cpu_ms_1)
            worst_1cpu = i;
        if (res[i].work_per_row > res[worst_work].work_per_row)
            worst_work = i;
        if (res[i].work_per_row_1 > res[worst_work_1].work_per_row_1)
            worst_work_1 = i;
    }
    char load[64];
    load_average(load, sizeof(load));
    printf("worst time: %s; most work: %s; load average at end %s\n", fleet_shapes[worst].name,
           fleet_shapes[worst_work].name, load);
    printf("BENCH director_table_threads %u\n", res[0].threads);
    printf("BENCH director_table_typical_ms %.2f\n", res[0].ms);
    printf("BENCH director_table_typical_cpu_ms %.2f\n", res[0].cpu_ms);
    printf("BENCH director_table_typical_own_cpu_ms %.2f\n", res[0].own_cpu_ms);
    printf("BENCH director_table_typical_1thread_ms %.2f\n", res[0].ms_1);
    printf("BENCH director_table_typical_1thread_cpu_ms %.2f\n", res[0].cpu_ms_1);
    printf("BENCH director_table_worst_ms %.2f\n", res[worst].ms);
    printf("BENCH director_table_worst_cpu_ms %.2f\n", res[worst].cpu_ms);
    printf("BENCH director_table_worst_own_cpu_ms %.2f\n", res[worst_own].own_cpu_ms);
    printf("BENCH director_table_worst_1thread_ms %.2f\n", res[worst_1].ms_1);
    printf("BENCH director_table_worst_1thread_cpu_ms %.2f\n", res[worst_1cpu].cpu_ms_1);
    printf("BENCH director_table_worst_work_per_row %.1f\n", res[worst_work].work_per_row);
    printf("BENCH director_table_worst_1thread_work_per_row %.1f\n",
           res[worst_work_1].work_per_row_1);
}

int main(int argc, char **argv)
{
    static const size_t sizes[] = {16, 32, 64, 128, 256, 512, 1000, 1024};
    struct size_result res[sizeof(sizes) / sizeof(sizes[0])];
    double worst_excess = -100;

    if (argc > 2 && strcmp(argv[1], "shape") == 0)
        return one_shape(argv[2], argc > 3 ? argv[3] : NULL);
    char load[64];
    load_average(load, sizeof(load));
    printf("method: director_table_build() on N active healthy proxies, weight 100,\n"
           "  fixed seed, the builder's default threads; build time = median of %d\n"
           "  builds (wall, and CPU time of the process: every drawing thread,\n"
           "  which other load on the host disturbs less);\n"
           "  balance = max primary rows /\n"
           "  (65536/N); moved excess = worst over %d removals + %d additions of\n"
           "  (rows whose primary changed - 65536/N) in %% of rows; broken = rows\n"
           "  whose old primary is neither new primary nor secondary, for one extra\n"
           "  proxy going inactive->filling->active->draining->inactive.\n",
           RUNS, CHANGES, CHANGES);
    printf("host: %ld CPUs online, load average at start %s\n", sysconf(_SC_NPROCESSORS_ONLN),
           load);
    if (argc > 1 && strcmp(argv[1], "worst") == 0) { /* the sweep of shapes only */
        worst_case();
        return 0;
    }
    printf("%6s %9s %8s %9s %11s %11s %s\n", "N", "build_ms", "cpu_ms", "max/mean", "moved_exc%",
           "sec_moved%", "broken fill/act/drain/inact");
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        measure(sizes[i], &res[i]);
        printf("%6zu %9.2f %8.2f %9.4f %11.3f %11.3f %u/%u/%u/%u\n", sizes[i], res[i].build_ms,
               res[i].build_cpu_ms, res[i].balance, res[i].moved_excess_pct, res[i].sec_moved_pct,
               res[i].broken[0], res[i].broken[1], res[i].broken[2], res[i].broken[3]);
        if (res[i].moved_excess_pct > worst_excess)
            worst_excess = res[i].moved_excess_pct;
    }
    worst_case();
    printf("BENCH table_build_1000_ms %.2f\n", res[6].build_ms);
    printf("BENCH table_build_1000_cpu_ms %.2f\n", res[6].build_cpu_ms);
    printf("BENCH table_balance_max_over_mean_256 %.4f\n", res[4].balance);
    printf("BENCH table_balance_max_over_mean_1024 %.4f\n", res[7].balance);
    printf("BENCH table_moved_excess_pct %.3f\n", worst_excess);
    return 0;
}
