/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench_export_build: the exporter's own CPU work in a converge, without
 * the network: the list pages saved by pages.py (the fixture's bytes) are
 * parsed into the two kube_stores as kube_client does (store phase), then
 * one first build: export_build_desired() + kv_layout_diff() against an
 * empty Consul + kv_ops_to_txn() (build phase), as sync does on its first
 * round. Rebuild = the same build again with the state of the first (no
 * change: the daemon's cost per resync).
 *
 * usage: bench_export_build DIR [repeats=5]   CPU times, min and median
 *        bench_export_build DIR once          one store + one build, for
 *                                             callgrind.sh (--toggle-collect)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "export_build.h"
#include "kube_objects.h"
#include "kube_prune.h"
#include "kube_store.h"
#include "kube_watch_stream.h"
#include "kv_layout.h"
#include "log.h"

struct page {
    char *body;
    size_t len;
};

struct pages {
    struct page *v;
    size_t n;
};

static int read_file(const char *path, struct page *out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -errno;
    int rc = 0;
    if (fseek(f, 0, SEEK_END) < 0 || (out->len = (size_t)ftell(f), fseek(f, 0, SEEK_SET) < 0)) {
        rc = -errno;
    } else if (!(out->body = malloc(out->len ? out->len : 1))) {
        rc = -ENOMEM;
    } else if (fread(out->body, 1, out->len, f) != out->len) {
        rc = -EIO;
    }
    fclose(f);
    return rc;
}

/* DIR/NAME-000.json, -001, ... until one is missing. */
static int load_pages(const char *dir, const char *name, struct pages *out)
{
    memset(out, 0, sizeof(*out));
    for (;;) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s-%03zu.json", dir, name, out->n);
        struct page p = {0};
        int rc = read_file(path, &p);
        if (rc == -ENOENT)
            break;
        if (rc < 0) {
            fprintf(stderr, "bench_export_build: %s: %s\n", path, strerror(-rc));
            return rc;
        }
        struct page *v = realloc(out->v, (out->n + 1) * sizeof(*v));
        if (!v)
            return -ENOMEM;
        out->v = v;
        out->v[out->n++] = p;
    }
    if (out->n == 0) {
        fprintf(stderr, "bench_export_build: no %s/%s-000.json (run pages.py first)\n", dir, name);
        return -ENOENT;
    }
    return 0;
}

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* What kube_client does with each page of a list. */
static int list_into(struct kube_store *s, const struct pages *p)
{
    char err[256];
    int rc = kube_store_list_begin(s);
    for (size_t i = 0; rc == 0 && i < p->n; i++) {
        struct kube_list page;
        /* as kube_client does: prune the received body in place, parse */
        size_t len = p->v[i].len;
        char *body = malloc(len ? len : 1);
        if (!body)
            return -ENOMEM;
        memcpy(body, p->v[i].body, len);
        if (kube_store_slimmed(s))
            (void)kube_list_prune(body, &len);
        rc = kube_list_parse(body, len, &page, err, sizeof(err));
        free(body);
        if (rc < 0) {
            fprintf(stderr, "bench_export_build: page %zu: %s\n", i, err);
            return rc;
        }
        rc = kube_store_list_page(s, &page);
        if (rc == 0 && i + 1 == p->n)
            rc = kube_store_list_end(s, page.resource_version) < 0 ? -EINVAL : 0;
        kube_list_clear(&page);
    }
    return rc;
}

struct bench {
    struct pages svc_pages, node_pages;
    struct kube_store *services, *nodes;
    struct kv_layout layout;
    struct export_options sopts;
    struct node_options nopts;
    struct export_state *state;
    size_t sets;
};

/* Not inlined: callgrind.sh counts instructions inside these two. */
__attribute__((noinline)) int bench_store_phase(struct bench *b)
{
    kube_store_free(b->services);
    kube_store_free(b->nodes);
    b->services = kube_store_new("services", true);
    b->nodes = kube_store_new("nodes", false);
    if (!b->services || !b->nodes)
        return -ENOMEM;
    kube_store_set_slim(b->services, kube_service_slim);
    kube_store_set_slim(b->nodes, kube_node_slim);
    int rc = list_into(b->services, &b->svc_pages);
    return rc ? rc : list_into(b->nodes, &b->node_pages);
}

__attribute__((noinline)) int bench_build_phase(struct bench *b)
{
    struct export_build_params p = {
        .layout = &b->layout, .service_opts = &b->sopts, .node_opts = &b->nopts, .now = 1};
    struct export_build_result res;
    struct kv_map desired, current;
    struct kv_ops ops;
    struct consul_txn_op *txn = NULL;
    kv_map_init(&desired);
    kv_map_init(&current);
    int rc = export_build_desired(&p, b->services, b->nodes, b->state, &desired, &res, NULL, NULL);
    if (rc == 0)
        rc = kv_layout_diff(&b->layout, &desired, &current, true, &ops);
    if (rc == 0) {
        rc = kv_ops_to_txn(&ops, &txn);
        b->sets = ops.sets;
        kv_ops_clear(&ops);
    }
    free(txn);
    kv_map_clear(&desired);
    kv_map_clear(&current);
    return rc;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *what, double *t, int n)
{
    qsort(t, n, sizeof(*t), cmp_double);
    printf("  %-8s min %7.1f ms  median %7.1f ms  (CPU, %d runs)\n", what, t[0] * 1e3,
           t[n / 2] * 1e3, n);
}

static int run(struct bench *b, int repeats)
{
    double *ts = calloc(repeats, sizeof(double)), *tb = calloc(repeats, sizeof(double)),
           *tr = calloc(repeats, sizeof(double));
    int rc = ts && tb && tr ? 0 : -ENOMEM;
    for (int i = 0; rc == 0 && i < repeats; i++) {
        double t0 = cpu_now();
        rc = bench_store_phase(b);
        double t1 = cpu_now();
        export_state_free(b->state);
        b->state = export_state_new();
        if (rc == 0)
            rc = b->state ? bench_build_phase(b) : -ENOMEM;
        double t2 = cpu_now();
        if (rc == 0)
            rc = bench_build_phase(b);
        double t3 = cpu_now();
        ts[i] = t1 - t0;
        tb[i] = t2 - t1;
        tr[i] = t3 - t2;
    }
    if (rc == 0) {
        printf("%zu services, %zu nodes -> %zu sets\n", kube_store_count(b->services),
               kube_store_count(b->nodes), b->sets);
        report("store", ts, repeats);
        report("build", tb, repeats);
        report("rebuild", tr, repeats);
        qsort(tb, repeats, sizeof(*tb), cmp_double);
        qsort(ts, repeats, sizeof(*ts), cmp_double);
        printf("BENCH export_store_cpu_ms %.1f\n", ts[repeats / 2] * 1e3);
        printf("BENCH export_build_cpu_ms %.1f\n", tb[repeats / 2] * 1e3);
    }
    free(ts);
    free(tb);
    free(tr);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR [repeats|once]\n", argv[0]);
        return 2;
    }
    log_set_level(LOGL_WARN);
    struct bench b = {
        .sopts = {.cluster = "bench"},
        .nopts = {.address_type = "InternalIP"},
    };
    bool once = argc > 2 && strcmp(argv[2], "once") == 0;
    int repeats = argc > 2 && !once ? atoi(argv[2]) : 5;
    if (repeats < 1)
        repeats = 1;
    int rc = load_pages(argv[1], "services", &b.svc_pages);
    if (rc == 0)
        rc = load_pages(argv[1], "nodes", &b.node_pages);
    if (rc == 0)
        rc = kv_layout_init(&b.layout, NULL, "bench", NULL);
    if (rc == 0 && !(b.state = export_state_new()))
        rc = -ENOMEM;
    if (rc == 0 && once) {
        rc = bench_store_phase(&b);
        if (rc == 0)
            rc = bench_build_phase(&b);
        if (rc == 0)
            printf("%zu sets\n", b.sets);
    } else if (rc == 0) {
        rc = run(&b, repeats);
    }
    if (rc < 0)
        fprintf(stderr, "bench_export_build: %s\n", strerror(-rc));
    export_state_free(b.state);
    kube_store_free(b.services);
    kube_store_free(b.nodes);
    kv_layout_clear(&b.layout);
    for (size_t i = 0; i < b.svc_pages.n; i++)
        free(b.svc_pages.v[i].body);
    for (size_t i = 0; i < b.node_pages.n; i++)
        free(b.node_pages.v[i].body);
    free(b.svc_pages.v);
    free(b.node_pages.v);
    return rc < 0 ? 1 : 0;
}
