/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench_consul ADDR [CHANGES] [TXNS]: two figures of the Consul client
 * against a real agent.
 *
 *  1. Wake-up latency: one client watches prefix bench/wake/ with a
 *     blocking query (wait 5 min); a second client on the same loop PUTs
 *     bench/wake/k = <i>. Latency = from the moment the PUT is handed to
 *     the client until on_change delivers value <i>. The next PUT starts
 *     from that callback, CHANGES times; p50/p99 reported.
 *  2. Txn throughput: TXNS transactions of 64 SET ops each (one batch),
 *     4 in flight at a time, ops/s = 64 * TXNS / wall time.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consul.h"
#include "log.h"

#define TXN_OPS      CONSUL_TXN_MAX_OPS
#define TXN_PARALLEL 4

static uv_loop_t loop;
static struct consul_client *watcher, *writer;
static unsigned n_changes = 1000, n_txns = 200;
static unsigned sent, seen;
static uint64_t put_start;
static double *lat_ms;
static int failures;

static void put_next(void);

static void on_put(void *arg, struct consul_response *r)
{
    if (r->err) {
        fprintf(stderr, "bench_consul: %s\n", r->errmsg);
        failures++;
        uv_stop(&loop);
    }
}

static void on_change(void *arg, struct consul_response *r)
{
    if (r->kv->n != 1 || !r->kv->items[0].value)
        return; /* the initial empty read */
    unsigned v = (unsigned)strtoul((char *)r->kv->items[0].value, NULL, 10);
    if (v != sent)
        return; /* coalesced or stale: wait for ours */
    lat_ms[seen++] = (double)(uv_hrtime() - put_start) / 1e6;
    if (seen == n_changes) {
        uv_stop(&loop);
        return;
    }
    put_next();
}

static void put_next(void)
{
    char val[32];
    int len = snprintf(val, sizeof(val), "%u", ++sent);
    put_start = uv_hrtime();
    if (consul_kv_put(writer, "bench/wake/k", val, (size_t)len, NULL, on_put, NULL) != 0) {
        failures++;
        uv_stop(&loop);
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double percentile(const double *sorted, unsigned n, double p)
{
    unsigned idx = (unsigned)(p * (n - 1) + 0.5);
    return sorted[idx];
}

/* ---- txn ---- */

static struct consul_txn_op ops[TXN_OPS];
static char keys[TXN_OPS][64];
static unsigned txn_started, txn_done;

static void txn_next(void);

static void on_txn(void *arg, struct consul_response *r)
{
    if (r->err) {
        fprintf(stderr, "bench_consul: txn: %s\n", r->errmsg);
        failures++;
        uv_stop(&loop);
        return;
    }
    if (++txn_done == n_txns)
        uv_stop(&loop);
    else
        txn_next();
}

static void txn_next(void)
{
    if (txn_started >= n_txns)
        return;
    txn_started++;
    if (consul_txn(writer, ops, TXN_OPS, on_txn, NULL) != 0) {
        failures++;
        uv_stop(&loop);
    }
}

static void on_first(void *arg, struct consul_response *r)
{
    bool *ready = arg;
    *ready = true;
    uv_stop(&loop);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_consul ADDR [CHANGES] [TXNS]\n");
        return 2;
    }
    if (argc > 2)
        n_changes = (unsigned)strtoul(argv[2], NULL, 10);
    if (argc > 3)
        n_txns = (unsigned)strtoul(argv[3], NULL, 10);
    if (n_changes == 0 || n_txns == 0)
        return 2;
    log_set_component("bench_consul");
    log_set_level(LOGL_WARN);
    uv_loop_init(&loop);
    struct consul_config cfg = {.address = argv[1]};
    if (consul_client_new(&loop, &cfg, &watcher) || consul_client_new(&loop, &cfg, &writer))
        return 1;
    lat_ms = calloc(n_changes, sizeof(*lat_ms));

    printf("method: wake-up latency = time from handing a KV PUT of bench/wake/k to the\n"
           "  client until the blocking-query watch on bench/wake/ (wait 300s, separate\n"
           "  client, same libuv loop) delivers that value; %u sequential changes, the next\n"
           "  PUT issued from the delivery callback. Includes the PUT round trip, the Raft\n"
           "  commit of the dev agent (in memory) and the watch's HTTP answer + parse.\n",
           n_changes);
    printf("method: txn throughput = %u transactions of %d SET ops (one /v1/txn batch\n"
           "  each, keys bench/txn/k00..k63, 8-byte values), %d in flight, ops/s =\n"
           "  ops / wall time from first request to last answer.\n",
           n_txns, TXN_OPS, TXN_PARALLEL);

    /* the watch must have done its first read before we start measuring */
    struct consul_watch *w;
    bool ready = false;
    struct consul_watch_opts o = {.kind = CONSUL_WATCH_KV_PREFIX,
                                  .target = "bench/wake/",
                                  .wait_s = 300,
                                  .on_change = on_first,
                                  .arg = &ready};
    if (consul_watch_start(watcher, &o, &w) != 0)
        return 1;
    uv_run(&loop, UV_RUN_DEFAULT);
    consul_watch_stop(w);
    o.on_change = on_change;
    o.arg = NULL;
    if (consul_watch_start(watcher, &o, &w) != 0)
        return 1;
    /* first delivery is the current (empty) state; then start */
    put_next();
    uv_run(&loop, UV_RUN_DEFAULT);
    consul_watch_stop(w);
    if (failures || seen != n_changes) {
        fprintf(stderr, "bench_consul: wake-up run failed (%u of %u changes seen)\n", seen,
                n_changes);
        return 1;
    }
    qsort(lat_ms, n_changes, sizeof(*lat_ms), cmp_double);

    for (int i = 0; i < TXN_OPS; i++) {
        snprintf(keys[i], sizeof(keys[i]), "bench/txn/k%02d", i);
        ops[i] = (struct consul_txn_op){
            .verb = CONSUL_TXN_SET, .key = keys[i], .value = "12345678", .value_len = 8};
    }
    uint64_t t0 = uv_hrtime();
    for (int i = 0; i < TXN_PARALLEL; i++)
        txn_next();
    uv_run(&loop, UV_RUN_DEFAULT);
    double secs = (double)(uv_hrtime() - t0) / 1e9;
    if (failures || txn_done != n_txns) {
        fprintf(stderr, "bench_consul: txn run failed\n");
        return 1;
    }
    const struct consul_stats *st = consul_client_stats(watcher);
    printf("info: watch wake-ups %" PRIu64 ", unchanged %" PRIu64 ", deliveries %" PRIu64
           ", min %.3f ms, max %.3f ms\n",
           st->watch_wakeups, st->watch_unchanged, st->watch_deliveries, lat_ms[0],
           lat_ms[n_changes - 1]);
    printf("BENCH consul_wake_p50_ms %.3f\n", percentile(lat_ms, n_changes, 0.50));
    printf("BENCH consul_wake_p99_ms %.3f\n", percentile(lat_ms, n_changes, 0.99));
    printf("BENCH consul_txn_ops_per_s %.0f\n", (double)n_txns * TXN_OPS / secs);

    consul_client_free(watcher);
    consul_client_free(writer);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    free(lat_ms);
    return 0;
}
