/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench_fanout: one KV change -> N watchers (issue 21, docs/scaling.md).
 *
 * Runs N watchers in one process, each the daemon's own Consul side: a
 * consul_client of its own (own connections, like one host each) and a
 * consul_feed building snapshots (libwatcher: the code drover-watcher
 * runs, without HAProxy behind it), spread over T threads with one libuv
 * loop each and over the Consul servers given. It seeds the KV of a large
 * cluster (services x nodes), waits until every watcher holds the same
 * snapshot, then makes single changes one at a time - a node flapping
 * (ineligible, then eligible again) and a port added to (then removed
 * from) the service the watchers use - and measures for each the time
 * from the write until all N hold the new snapshot (same inputs hash
 * everywhere), the bytes Consul sent to the watchers, the watchers' CPU
 * and the Consul servers' CPU (/proc/PID/stat of --consul-pids). Optional
 * --unrelated changes touch services nobody uses and measure what they
 * cost the watchers. Nodes live in their shards with every node prefix's
 * folder key, as the exporter writes them (docs/kv-schema.md); --flat-nodes
 * keeps them under the deprecated flat kube/<c>/nodes/ instead (the layout
 * before the shards, for a comparison in one run of the same binary).
 *
 * Exit 0 when every change converged, 1 when one did not (the message
 * says how many watchers held what), 2 on usage or setup errors.
 */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include "consul.h"
#include "consul_feed.h"
#include "kv_key.h"
#include "log.h"
#include "snapshot.h"

#define ROOT      "drover/v1/"
#define CLUSTER   "bench"
#define MAX_ADDRS 8

struct bw {
    struct worker *wk;
    struct consul_client *c;
    struct consul_feed *feed;
    struct snapshot *snap;
    _Atomic uint64_t hash;
    _Atomic uint64_t at_ns;     /* uv_hrtime of the last delivery */
    _Atomic unsigned snapshots; /* deliveries so far */
};

struct worker {
    pthread_t th;
    uv_loop_t loop;
    uv_async_t stop;
    struct bw **w;
    size_t n;
};

static struct {
    const char *addrs[MAX_ADDRS];
    size_t n_addrs;
    unsigned watchers, changes, threads, nodes, services, unrelated;
    unsigned max_stale_ms, service_watches;
    bool gzip, seed, maintenance_folder, flat_nodes;
    int pids[MAX_ADDRS];
    size_t n_pids;
} cfg = {.watchers = 200,
         .changes = 100,
         .threads = 2,
         .nodes = 500,
         .services = 5000,
         .max_stale_ms = 2000,
         .service_watches = CONSUL_FEED_SERVICE_WATCHES_DEFAULT,
         .gzip = true,
         .seed = true,
         .maintenance_folder = true};

static const char *const kube_clusters[] = {CLUSTER};
static const struct kv_model_opts model = {
    .root = ROOT, .haproxy_cluster = CLUSTER, .kube_clusters = kube_clusters, .n_kube_clusters = 1};

static struct bw *all[100000];

/* Per-change timeline (ns after the write was sent), filled by converge():
 * when the write was acknowledged (committed and applied on the leader),
 * when the coordinator first saw each watcher's Consul client count a new
 * blocking-query answer (wake), and when each watcher held the new
 * snapshot. Wake times are polled (1 ms) by the coordinator thread, so
 * they are late by its own scheduling delay on a loaded machine. */
struct timeline {
    uint64_t ack;
    uint64_t *woke;     /* [watchers]; 0 = no answer seen */
    uint64_t *wakeups0; /* [watchers]: answers counted before the write */
    uint64_t requests0; /* all watchers' requests before the write */
    uint64_t requests;  /* ... and started until all held the snapshot */
};

/* ---- watchers (worker threads) ---- */

static void on_snapshot(void *arg, struct snapshot *snap)
{
    struct bw *w = arg;
    snapshot_free(w->snap);
    w->snap = snap;
    atomic_store(&w->at_ns, uv_hrtime());
    atomic_store(&w->hash, snap->inputs_hash);
    atomic_fetch_add(&w->snapshots, 1);
}

static const struct snapshot *current(void *arg)
{
    return ((struct bw *)arg)->snap;
}

static void on_stop(uv_async_t *a)
{
    struct worker *wk = a->data;
    for (size_t i = 0; i < wk->n; i++) {
        consul_feed_stop(wk->w[i]->feed);
        consul_client_free(wk->w[i]->c);
        wk->w[i]->feed = NULL;
        wk->w[i]->c = NULL;
    }
    uv_close((uv_handle_t *)a, NULL);
}

static void *worker_main(void *arg)
{
    struct worker *wk = arg;
    uv_run(&wk->loop, UV_RUN_DEFAULT);
    return NULL;
}

/* ---- coordinator ---- */

static double cpu_s_self(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

/* CPU seconds of Consul server i (/proc/PID/stat utime + stime); 0 when gone. */
static double cpu_s_server(size_t i)
{
    char path[64], buf[1024];
    unsigned long ut = 0, st = 0;
    snprintf(path, sizeof(path), "/proc/%d/stat", cfg.pids[i]);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    /* after "pid (comm)": state and 10 fields, then utime stime */
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return 0;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double cpu_s_consul(double *per)
{
    double total = 0;
    for (size_t i = 0; i < cfg.n_pids; i++) {
        per[i] = cpu_s_server(i);
        total += per[i];
    }
    return total;
}

/* CPU-seconds the whole machine spent busy so far (/proc/stat, all CPUs:
 * everything but idle and iowait); 0 when unreadable. */
static double cpu_s_machine(void)
{
    unsigned long long v[8] = {0};
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return 0;
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                   &v[4], &v[5], &v[6], &v[7]);
    fclose(f);
    if (n != 8)
        return 0;
    /* user nice system idle iowait irq softirq steal */
    return (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (double)sysconf(_SC_CLK_TCK);
}

/* The 1-minute load average as text, for the method line. */
static const char *loadavg(void)
{
    static char buf[32];
    FILE *f = fopen("/proc/loadavg", "r");
    if (!f || fscanf(f, "%31s", buf) != 1)
        snprintf(buf, sizeof(buf), "?");
    if (f)
        fclose(f);
    return buf;
}

static uint64_t bytes_all(void)
{
    uint64_t b = 0;
    for (unsigned i = 0; i < cfg.watchers; i++)
        b += consul_client_stats(all[i]->c)->bytes_received; /* racy read of a counter */
    return b;
}

static uint64_t stale_retries_all(void)
{
    uint64_t b = 0;
    for (unsigned i = 0; i < cfg.watchers; i++)
        b += consul_client_stats(all[i]->c)->stale_retries;
    return b;
}

static void timeline_poll(struct timeline *tl, uint64_t t0);

struct writer {
    uv_loop_t loop;
    struct consul_client *c;
    uv_timer_t poll;     /* while a change is written: timeline_poll */
    struct timeline *tl; /* NULL: no timeline (seeding) */
    uint64_t t0;         /* when the change was sent */
    bool done;
    int err;
    char msg[512];
};

static void on_written(void *arg, struct consul_response *r)
{
    struct writer *wr = arg;
    wr->done = true;
    wr->err = r->err ? r->err : (r->txn || r->ok ? 0 : -ECANCELED);
    if (r->err)
        snprintf(wr->msg, sizeof(wr->msg), "%s", r->errmsg);
}

static void on_poll(uv_timer_t *t)
{
    struct writer *wr = t->data;
    timeline_poll(wr->tl, wr->t0);
}

/* Run the writer's loop until the write is answered; with a timeline,
 * watchers answered before the leader acknowledged are noted too. */
static int wait_written(struct writer *wr)
{
    if (wr->tl)
        uv_timer_start(&wr->poll, on_poll, 1, 1);
    while (!wr->done)
        uv_run(&wr->loop, UV_RUN_ONCE);
    uv_timer_stop(&wr->poll);
    if (wr->tl)
        wr->tl->ack = uv_hrtime() - wr->t0;
    wr->done = false;
    return wr->err;
}

static char *node_value(unsigned i, bool eligible)
{
    char *s = NULL;
    if (asprintf(
            &s,
            "{\"address\":\"10.%u.%u.%u\",\"addresses\":[\"10.%u.%u.%u\"],\"cluster\":\"" CLUSTER
            "\",\"eligible\":%s,\"excluded\":false,\"labels\":{\"node.kubernetes.io/"
            "instance-type\":\"m5.2xlarge\",\"topology.kubernetes.io/zone\":\"zone-%c\"},"
            "\"name\":\"node-%04u.bench.example.net\",\"ready\":%s,\"schedulable\":true,"
            "\"selected\":true}",
            20 + i / 65536, (i / 256) % 256, i % 256, 20 + i / 65536, (i / 256) % 256, i % 256,
            eligible ? "true" : "false", 'a' + (char)(i % 3), i, eligible ? "true" : "false") < 0)
        return NULL;
    return s;
}

static char *service_value(unsigned i, const char *port_name, unsigned node_port)
{
    char *s = NULL;
    if (asprintf(
            &s,
            "{\"backend_protocol\":\"http\",\"cluster\":\"" CLUSTER
            "\",\"custom_attrs\":{},\"dns_name\":\"svc-%04u.ns-%02u.bench.example.com\","
            "\"hash\":\"%016x\",\"health_check_path\":\"/healthz\",\"health_check_port\":%u,"
            "\"health_check_source\":\"healthCheckNodePort\",\"labels\":{\"app\":\"svc-%04u\","
            "\"team\":\"team-%02u\"},\"load_balancer_class\":\"public\",\"namespace\":\"ns-%02u\","
            "\"node_port\":%u,\"port\":443,\"port_name\":\"%s\",\"protocol\":\"TCP\","
            "\"proxy_protocol\":false,\"service\":\"svc-%04u\",\"type\":\"LoadBalancer\"}",
            i, i / 50, i * 2654435761u, 30000 + (i + 1) % 2700, i, i % 37, i / 50, node_port,
            port_name, i) < 0)
        return NULL;
    return s;
}

static char *service_key(unsigned i, const char *port_name)
{
    char *k = NULL;
    if (asprintf(&k, ROOT "kube/" CLUSTER "/services/ns-%02u/svc-%04u/%s", i / 50, i, port_name) <
        0)
        return NULL;
    return k;
}

static const char definition[] =
    "{\"template\":\"http\",\"frontends\":[{\"name\":\"fe_web\",\"bind\":[\"127.0.0.1:8080\"],"
    "\"default_backend\":\"be_web\"}],\"backends\":[{\"name\":\"be_web\",\"balance\":"
    "\"roundrobin\",\"slots\":1024,\"kube\":[{\"cluster\":\"" CLUSTER "\",\"namespace\":\"ns-00\","
    "\"service\":\"svc-0000\",\"port\":\"http\"}]}]}";

/* Node i's key in the layout benched (malloc'd; NULL on ENOMEM). */
static char *node_key(unsigned i)
{
    char name[32];
    snprintf(name, sizeof(name), "node-%04u", i);
    return cfg.flat_nodes ? kv_key_kube_node_flat(ROOT, CLUSTER, name)
                          : kv_key_kube_node(ROOT, CLUSTER, name);
}

static int seed(struct writer *wr)
{
    size_t n = cfg.nodes + cfg.services + 3 + KV_NODE_SHARDS, k = 0;
    struct consul_txn_op *ops = calloc(n, sizeof(*ops));
    char **strs = calloc(2 * n, sizeof(*strs));
    int rc = -ENOMEM;
    if (!ops || !strs)
        goto out;
    for (unsigned i = 0; i < cfg.nodes; i++, k++) {
        if (!(strs[2 * k] = node_key(i)) || !(strs[2 * k + 1] = node_value(i, true)))
            goto out;
    }
    /* the node prefixes' folder keys, as the exporter writes them */
    for (unsigned s = 0; s <= KV_NODE_SHARDS; s++, k++)
        if (!(strs[2 * k] = s < KV_NODE_SHARDS ? kv_key_kube_node_shard_prefix(ROOT, CLUSTER, s)
                                               : kv_key_kube_node_flat_prefix(ROOT, CLUSTER)) ||
            !(strs[2 * k + 1] = strdup("")))
            goto out;
    for (unsigned i = 0; i < cfg.services; i++, k++) {
        if (!(strs[2 * k] = service_key(i, "http")) ||
            !(strs[2 * k + 1] = service_value(i, "http", 30000 + i % 2700)))
            goto out;
    }
    if (!(strs[2 * k] = strdup(ROOT "haproxy/" CLUSTER "/services/web")) ||
        !(strs[2 * k + 1] = strdup(definition)))
        goto out;
    k++;
    /* The folder key droverctl writes with any maintenance entry
     * (docs/kv-schema.md): without it the empty prefix would answer with
     * the whole KV's index and wake every watcher on every write. */
    if (cfg.maintenance_folder) {
        if (!(strs[2 * k] = strdup(ROOT "maintenance/")) || !(strs[2 * k + 1] = strdup("")))
            goto out;
        k++;
    }
    for (size_t i = 0; i < k; i++)
        ops[i] = (struct consul_txn_op){.verb = CONSUL_TXN_SET,
                                        .key = strs[2 * i],
                                        .value = strs[2 * i + 1],
                                        .value_len = strlen(strs[2 * i + 1])};
    if ((rc = consul_txn(wr->c, ops, k, on_written, wr)) == 0)
        rc = wait_written(wr);
out:
    for (size_t i = 0; strs && i < 2 * n; i++)
        free(strs[i]);
    free(strs);
    free(ops);
    return rc;
}

/* Write change i (see top); 0 or negative errno. */
static int make_change(struct writer *wr, unsigned i, bool unrelated)
{
    char *key = NULL, *val = NULL;
    int rc;
    if (unrelated) { /* a port added to a service nobody uses */
        char port[32];
        snprintf(port, sizeof(port), "extra-%u", i);
        unsigned svc = 1 + i % (cfg.services - 1);
        key = service_key(svc, port);
        val = service_value(svc, port, 31000 + i % 1000);
    } else if (i % 2 == 0) { /* node flap: down on even flaps, up again on odd */
        unsigned flap = i / 2, node = (flap / 2) % cfg.nodes;
        key = node_key(node);
        val = node_value(node, flap % 2 == 1);
    } else { /* a port added to the used service, removed the next time */
        unsigned step = i / 2;
        char port[32];
        snprintf(port, sizeof(port), "extra-%u", step / 2);
        key = service_key(0, port);
        if (step % 2 == 1) {
            rc = key ? consul_kv_delete(wr->c, key, false, false, 0, on_written, wr) : -ENOMEM;
            free(key);
            return rc ? rc : wait_written(wr);
        }
        val = service_value(0, port, 31000 + step % 1000);
    }
    rc = key && val ? consul_kv_put(wr->c, key, val, strlen(val), NULL, on_written, wr) : -ENOMEM;
    free(key);
    free(val);
    return rc ? rc : wait_written(wr);
}

/* One line on watcher i's state and its Consul client's counters. */
static void print_watcher(unsigned i, const char *what)
{
    const struct consul_stats *st = consul_client_stats(all[i]->c);
    fprintf(stderr,
            "bench_fanout: watcher %u (Consul %s) %s: holds %016" PRIx64 " after %u snapshot(s); "
            "its client: %" PRIu64 " requests, %" PRIu64 " errors, %" PRIu64
            " index resets, %" PRIu64 " stale retries, %" PRIu64 " stale answers behind, %" PRIu64
            " wake-ups\n",
            i, cfg.addrs[i % cfg.n_addrs], what, atomic_load(&all[i]->hash),
            atomic_load(&all[i]->snapshots), st->requests, st->errors, st->index_resets,
            st->stale_retries, st->stale_behind, st->watch_wakeups);
}

static uint64_t requests_all(void)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < cfg.watchers; i++)
        n += consul_client_stats(all[i]->c)->requests;
    return n;
}

/* Before the write: what converge() compares the timeline against. */
static void timeline_arm(struct timeline *tl)
{
    tl->ack = 0;
    for (unsigned i = 0; i < cfg.watchers; i++) {
        tl->woke[i] = 0;
        tl->wakeups0[i] = consul_client_stats(all[i]->c)->watch_wakeups;
    }
    tl->requests0 = requests_all();
}

/* Note the watchers whose client counted a new answer since the write. */
static void timeline_poll(struct timeline *tl, uint64_t t0)
{
    uint64_t now = uv_hrtime();
    for (unsigned i = 0; i < cfg.watchers; i++)
        if (!tl->woke[i] && consul_client_stats(all[i]->c)->watch_wakeups > tl->wakeups0[i])
            tl->woke[i] = now > t0 ? now - t0 : 1;
}

/* Poll (1 ms) until every watcher holds one hash different from prev;
 * *lat_ns: latest delivery - t0; per-watcher latencies into per[]; wake
 * times into tl (may be NULL). false after timeout_ms. */
static bool converge(uint64_t prev, uint64_t t0, uint64_t timeout_ms, uint64_t *hash,
                     uint64_t *lat_ns, uint64_t *per, struct timeline *tl)
{
    uint64_t deadline = uv_hrtime() + timeout_ms * 1000000ull;
    for (;;) {
        if (tl)
            timeline_poll(tl, t0);
        uint64_t h0 = atomic_load(&all[0]->hash), last = 0;
        unsigned same = 0;
        for (unsigned i = 0; i < cfg.watchers; i++) {
            uint64_t h = atomic_load(&all[i]->hash);
            if (h == h0 && h != prev && atomic_load(&all[i]->at_ns) != 0)
                same++;
        }
        if (same == cfg.watchers) {
            for (unsigned i = 0; i < cfg.watchers; i++) {
                uint64_t at = atomic_load(&all[i]->at_ns);
                if (per)
                    per[i] = at > t0 ? at - t0 : 0;
                if (at > last)
                    last = at;
            }
            if (tl)
                tl->requests = requests_all() - tl->requests0;
            *hash = h0;
            *lat_ns = last > t0 ? last - t0 : 0;
            return true;
        }
        if (uv_hrtime() > deadline) {
            fprintf(stderr,
                    "bench_fanout: %u of %u watchers hold snapshot %016" PRIx64 " after %" PRIu64
                    " ms (previous %016" PRIx64 ")\n",
                    same, cfg.watchers, h0, timeout_ms, prev);
            for (unsigned i = 0, shown = 0; i < cfg.watchers && shown < 10; i++)
                if (atomic_load(&all[i]->hash) != h0) {
                    print_watcher(i, "does not hold it");
                    shown++;
                }
            return false;
        }
        usleep(1000);
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(uint64_t *v, size_t n, double p)
{
    qsort(v, n, sizeof(*v), cmp_u64);
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return (double)v[i < n ? i : n - 1] / 1e6;
}

/* Timeline phases over all changes, ns after the write. */
struct phases {
    uint64_t *ack, *first, *median, *last, *snap; /* [changes] */
    uint64_t *turn;           /* [changes * watchers]: its answer -> its snapshot */
    uint64_t *unseen;         /* [changes]: watchers whose answer was not seen */
    uint64_t *srv[MAX_ADDRS]; /* [changes]: first answer from watchers of server s */
    uint64_t requests;        /* all changes */
    size_t n_turn;
};

static int phases_alloc(struct phases *ph)
{
    size_t k = cfg.changes + 1;
    uint64_t **arrs[] = {&ph->ack, &ph->first, &ph->median, &ph->last, &ph->snap, &ph->unseen};
    for (size_t i = 0; i < sizeof(arrs) / sizeof(arrs[0]); i++)
        if (!(*arrs[i] = calloc(k, sizeof(uint64_t))))
            return -ENOMEM;
    for (size_t s = 0; s < cfg.n_addrs; s++)
        if (!(ph->srv[s] = calloc(k, sizeof(uint64_t))))
            return -ENOMEM;
    ph->turn = calloc(k * cfg.watchers, sizeof(uint64_t));
    return ph->turn ? 0 : -ENOMEM;
}

static void phases_free(struct phases *ph)
{
    uint64_t *arrs[] = {ph->ack, ph->first, ph->median, ph->last, ph->snap, ph->unseen, ph->turn};
    for (size_t i = 0; i < sizeof(arrs) / sizeof(arrs[0]); i++)
        free(arrs[i]);
    for (size_t s = 0; s < MAX_ADDRS; s++)
        free(ph->srv[s]);
}

static void phases_add(struct phases *ph, unsigned i, const struct timeline *tl, uint64_t snap,
                       const uint64_t *per)
{
    uint64_t *woke = malloc(cfg.watchers * sizeof(*woke));
    size_t n = 0;
    ph->ack[i] = tl->ack;
    ph->snap[i] = snap;
    ph->requests += tl->requests;
    for (size_t s = 0; s < cfg.n_addrs; s++)
        ph->srv[s][i] = UINT64_MAX;
    for (unsigned w = 0; w < cfg.watchers; w++) {
        if (!tl->woke[w]) {
            ph->unseen[i]++;
            continue;
        }
        if (woke)
            woke[n++] = tl->woke[w];
        if (tl->woke[w] < ph->srv[w % cfg.n_addrs][i])
            ph->srv[w % cfg.n_addrs][i] = tl->woke[w];
        ph->turn[ph->n_turn++] = per[w] > tl->woke[w] ? per[w] - tl->woke[w] : 0;
    }
    if (woke && n) {
        qsort(woke, n, sizeof(*woke), cmp_u64);
        ph->first[i] = woke[0];
        ph->median[i] = woke[n / 2];
        ph->last[i] = woke[n - 1];
    }
    free(woke);
}

/* The per-change timeline: where the time between the write and the last
 * watcher's snapshot goes. */
static void phases_print(struct phases *ph)
{
    size_t k = cfg.changes;
    uint64_t unseen = 0;
    for (size_t i = 0; i < k; i++)
        unseen += ph->unseen[i];
    printf("timeline, ms after the write (p50 / p99 over %zu changes):\n", k);
    printf("  write acknowledged by the leader     %8.1f / %8.1f\n", pct(ph->ack, k, 0.5),
           pct(ph->ack, k, 0.99));
    for (size_t s = 0; s < cfg.n_addrs; s++)
        printf("  first answer from %-22s %6.1f / %8.1f\n", cfg.addrs[s], pct(ph->srv[s], k, 0.5),
               pct(ph->srv[s], k, 0.99));
    printf("  first watcher answered               %8.1f / %8.1f\n", pct(ph->first, k, 0.5),
           pct(ph->first, k, 0.99));
    printf("  half of the watchers answered        %8.1f / %8.1f\n", pct(ph->median, k, 0.5),
           pct(ph->median, k, 0.99));
    printf("  last watcher answered                %8.1f / %8.1f\n", pct(ph->last, k, 0.5),
           pct(ph->last, k, 0.99));
    printf("  last watcher holds the snapshot      %8.1f / %8.1f\n", pct(ph->snap, k, 0.5),
           pct(ph->snap, k, 0.99));
    printf("  per watcher, answer -> snapshot      %8.1f / %8.1f (over %zu)\n",
           pct(ph->turn, ph->n_turn, 0.5), pct(ph->turn, ph->n_turn, 0.99), ph->n_turn);
    printf("  requests per watcher per change      %8.2f (answers not seen: %" PRIu64 ")\n",
           (double)ph->requests / (double)(k ? k : 1) / cfg.watchers, unseen);
    printf("BENCH fanout_last_answer_p99_ms %.1f\n", pct(ph->last, k, 0.99));
    printf("BENCH fanout_answer_to_snapshot_p99_ms %.1f\n", pct(ph->turn, ph->n_turn, 0.99));
}

/* What the changes of one kind cost (node flaps, service port changes):
 * each change's interval, write to the next write, counted to its kind. */
struct kind_cost {
    const char *name;
    uint64_t *lats;
    size_t n;
    double bytes, consul_s, self_s;
};

static void kind_cost_print(struct kind_cost *kc)
{
    if (!kc->n)
        return;
    double n = (double)kc->n;
    printf("%s changes (%zu): p50 / p99 %.1f / %.1f ms, %.0f bytes per watcher, Consul %.4f "
           "CPU-s, watchers %.3f ms CPU each, per change\n",
           kc->name, kc->n, pct(kc->lats, kc->n, 0.50), pct(kc->lats, kc->n, 0.99),
           kc->bytes / n / cfg.watchers, kc->consul_s / n, kc->self_s * 1000.0 / n / cfg.watchers);
    printf("BENCH fanout_%s_p99_ms %.1f\n", kc->name, pct(kc->lats, kc->n, 0.99));
    printf("BENCH fanout_%s_bytes_per_watcher_per_change %.0f\n", kc->name,
           kc->bytes / n / cfg.watchers);
    if (cfg.n_pids)
        printf("BENCH fanout_%s_consul_cpu_s_per_change %.4f\n", kc->name, kc->consul_s / n);
    printf("BENCH fanout_%s_watcher_cpu_ms_per_change %.3f\n", kc->name,
           kc->self_s * 1000.0 / n / cfg.watchers);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_fanout --addrs URL[,URL...] [--watchers N] [--changes K] [--threads T]\n"
            "       [--nodes N] [--services N] [--unrelated K] [--no-gzip] [--max-stale-ms MS]\n"
            "       [--service-watches N] [--consul-pids PID[,PID...]] [--no-seed]\n"
            "       [--empty-maintenance] [--flat-nodes]\n");
}

static void split(char *s, const char **out, size_t *n)
{
    for (char *tok = strtok(s, ","); tok && *n < MAX_ADDRS; tok = strtok(NULL, ","))
        out[(*n)++] = tok;
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {{"addrs", 1, 0, 'a'},
                                       {"watchers", 1, 0, 'n'},
                                       {"changes", 1, 0, 'k'},
                                       {"threads", 1, 0, 't'},
                                       {"nodes", 1, 0, 'N'},
                                       {"services", 1, 0, 'S'},
                                       {"unrelated", 1, 0, 'u'},
                                       {"no-gzip", 0, 0, 'g'},
                                       {"max-stale-ms", 1, 0, 's'},
                                       {"service-watches", 1, 0, 'w'},
                                       {"consul-pids", 1, 0, 'p'},
                                       {"no-seed", 0, 0, 'x'},
                                       {"empty-maintenance", 0, 0, 'm'},
                                       {"flat-nodes", 0, 0, 'f'},
                                       {0, 0, 0, 0}};
    const char *pids[MAX_ADDRS];
    int o;
    while ((o = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (o) {
        case 'a':
            split(optarg, cfg.addrs, &cfg.n_addrs);
            break;
        case 'n':
            cfg.watchers = (unsigned)atoi(optarg);
            break;
        case 'k':
            cfg.changes = (unsigned)atoi(optarg);
            break;
        case 't':
            cfg.threads = (unsigned)atoi(optarg);
            break;
        case 'N':
            cfg.nodes = (unsigned)atoi(optarg);
            break;
        case 'S':
            cfg.services = (unsigned)atoi(optarg);
            break;
        case 'u':
            cfg.unrelated = (unsigned)atoi(optarg);
            break;
        case 'g':
            cfg.gzip = false;
            break;
        case 's':
            cfg.max_stale_ms = (unsigned)atoi(optarg);
            break;
        case 'w':
            cfg.service_watches = (unsigned)atoi(optarg);
            break;
        case 'p':
            split(optarg, pids, &cfg.n_pids);
            break;
        case 'x':
            cfg.seed = false;
            break;
        case 'm':
            cfg.maintenance_folder = false;
            break;
        case 'f':
            cfg.flat_nodes = true;
            break;
        default:
            usage();
            return 2;
        }
    }
    if (!cfg.n_addrs || !cfg.watchers || cfg.watchers > sizeof(all) / sizeof(all[0]) ||
        !cfg.threads || cfg.threads > cfg.watchers || cfg.services < 2 || !cfg.nodes) {
        usage();
        return 2;
    }
    for (size_t i = 0; i < cfg.n_pids; i++)
        cfg.pids[i] = atoi(pids[i]);
    setvbuf(stdout, NULL, _IOLBF, 0); /* progress lines as they come */
    log_set_component("bench_fanout");
    log_set_level(LOGL_ERROR);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    json_object_seed(0);

    struct writer wr = {0};
    uv_loop_init(&wr.loop);
    uv_timer_init(&wr.loop, &wr.poll);
    wr.poll.data = &wr;
    struct consul_config wcfg = {.address = cfg.addrs[0], .request_timeout_ms = 60000};
    if (consul_client_new(&wr.loop, &wcfg, &wr.c) < 0) {
        fprintf(stderr, "bench_fanout: cannot create the writer's Consul client for %s\n",
                cfg.addrs[0]);
        return 2;
    }
    double t_seed = (double)uv_hrtime();
    if (cfg.seed && seed(&wr) < 0) {
        fprintf(stderr, "bench_fanout: seeding the KV failed: %s\n", wr.msg);
        return 2;
    }
    printf("setup: %u watchers on %u threads over %zu Consul server(s); KV %u service ports x %u "
           "nodes (seeded in %.1f s, %s); gzip %s, stale reads %s (max %u ms), service watches "
           "%u, maintenance/ %s\n",
           cfg.watchers, cfg.threads, cfg.n_addrs, cfg.services, cfg.nodes,
           ((double)uv_hrtime() - t_seed) / 1e9,
           cfg.flat_nodes ? "nodes under the flat nodes/" : "nodes in 16 shards",
           cfg.gzip ? "on" : "off", cfg.max_stale_ms ? "on" : "off", cfg.max_stale_ms,
           cfg.service_watches, cfg.maintenance_folder ? "has its folder key" : "empty");

    struct worker *wks = calloc(cfg.threads, sizeof(*wks));
    for (unsigned t = 0; t < cfg.threads; t++) {
        uv_loop_init(&wks[t].loop);
        uv_async_init(&wks[t].loop, &wks[t].stop, on_stop);
        wks[t].stop.data = &wks[t];
        wks[t].w = calloc(cfg.watchers / cfg.threads + 1, sizeof(*wks[t].w));
    }
    double t_start = (double)uv_hrtime();
    for (unsigned i = 0; i < cfg.watchers; i++) {
        struct worker *wk = &wks[i % cfg.threads];
        struct bw *w = calloc(1, sizeof(*w));
        struct consul_config cc = {.address = cfg.addrs[i % cfg.n_addrs],
                                   .max_stale_ms = cfg.max_stale_ms,
                                   .no_gzip = !cfg.gzip};
        struct consul_feed_opts fo = {.loop = &wk->loop,
                                      .model = &model,
                                      .wait_s = 300,
                                      .service_watches = cfg.service_watches,
                                      .on_snapshot = on_snapshot,
                                      .current = current,
                                      .arg = w};
        w->wk = wk;
        if (consul_client_new(&wk->loop, &cc, &w->c) < 0 ||
            consul_feed_start(w->c, &fo, &w->feed) < 0) {
            fprintf(stderr, "bench_fanout: cannot start watcher %u\n", i);
            return 2;
        }
        wk->w[wk->n++] = w;
        all[i] = w;
    }
    for (unsigned t = 0; t < cfg.threads; t++)
        pthread_create(&wks[t].th, NULL, worker_main, &wks[t]);

    int status = 0;
    struct timeline tl = {0};
    struct phases ph = {0};
    uint64_t hash = 0, lat = 0;
    if (!converge(0, (uint64_t)t_start, 180000, &hash, &lat, NULL, NULL)) {
        fprintf(stderr, "bench_fanout: the watchers never agreed on a first snapshot\n");
        status = 1;
        goto stop;
    }
    printf("start: all %u watchers hold snapshot %016" PRIx64 " %.0f ms after start\n",
           cfg.watchers, hash, (double)lat / 1e6);
    usleep(300000); /* let the initial reads settle before measuring */

    uint64_t *lats = calloc(cfg.changes + 1, sizeof(*lats));
    uint64_t *per = calloc((size_t)cfg.watchers * (cfg.changes + 1), sizeof(*per));
    tl.woke = calloc(cfg.watchers, sizeof(uint64_t));
    tl.wakeups0 = calloc(cfg.watchers, sizeof(uint64_t));
    if (!tl.woke || !tl.wakeups0 || phases_alloc(&ph) < 0) {
        fprintf(stderr, "bench_fanout: out of memory for the timeline\n");
        status = 2;
        goto stop;
    }
    uint64_t b0 = bytes_all(), sr0 = stale_retries_all();
    double ks0[MAX_ADDRS], ks1[MAX_ADDRS];
    double c0 = cpu_s_self(), k0 = cpu_s_consul(ks0), m0 = cpu_s_machine();
    uint64_t wall0 = uv_hrtime();
    struct kind_cost kinds[2] = {
        {.name = "node_flap", .lats = calloc(cfg.changes + 1, sizeof(uint64_t))},
        {.name = "service_port", .lats = calloc(cfg.changes + 1, sizeof(uint64_t))}};
    uint64_t kb = b0;
    double kc = c0, kk = k0;
    for (unsigned i = 0; i < cfg.changes; i++) {
        timeline_arm(&tl);
        wr.tl = &tl;
        uint64_t t0 = wr.t0 = uv_hrtime();
        int rc = make_change(&wr, i, false);
        wr.tl = NULL;
        if (rc < 0) {
            fprintf(stderr, "bench_fanout: change %u: write failed: %s %s\n", i, strerror(-rc),
                    wr.msg);
            status = 2;
            goto stop;
        }
        if (!converge(hash, t0, 30000, &hash, &lats[i], per + (size_t)i * cfg.watchers, &tl)) {
            fprintf(stderr, "bench_fanout: change %u (%s) did not reach every watcher\n", i,
                    i % 2 ? "service port" : "node flap");
            status = 1;
            goto stop;
        }
        /* the content too: the flapped node is out of be_web while down */
        const struct snapshot_backend *be = snapshot_backend(all[0]->snap, "be_web");
        size_t want = cfg.nodes - ((i / 2) % 2 == 0 ? 1 : 0);
        if (!be || be->n_servers != want) {
            fprintf(stderr, "bench_fanout: change %u: be_web has %zu servers, want %zu\n", i,
                    be ? be->n_servers : 0, want);
            status = 1;
            goto stop;
        }
        phases_add(&ph, i, &tl, lats[i], per + (size_t)i * cfg.watchers);
        usleep(20000);
        struct kind_cost *kd = &kinds[i % 2]; /* make_change: even = node flap */
        uint64_t nb = bytes_all();
        double nc = cpu_s_self(), nk = cpu_s_consul(ks1);
        if (kd->lats)
            kd->lats[kd->n++] = lats[i];
        kd->bytes += (double)(nb - kb);
        kd->self_s += nc - kc;
        kd->consul_s += nk - kk;
        kb = nb;
        kc = nc;
        kk = nk;
    }
    uint64_t b1 = bytes_all(), sr1 = stale_retries_all();
    double c1 = cpu_s_self(), k1 = cpu_s_consul(ks1), m1 = cpu_s_machine();
    double wall_s = (double)(uv_hrtime() - wall0) / 1e9;
    double changes = cfg.changes ? cfg.changes : 1;
    printf("method: %u single changes one at a time (node flaps and a port added to / removed "
           "from the used service); latency = write sent -> every watcher holds the new snapshot; "
           "bytes = headers + bodies as Consul sent them to all watchers; CPU from getrusage "
           "(watchers, this process) and /proc/PID/stat (Consul servers)\n",
           cfg.changes);
    if (cfg.changes) {
        printf("BENCH fanout_watchers %u\n", cfg.watchers);
        printf("BENCH fanout_p50_ms %.1f\n", pct(lats, cfg.changes, 0.50));
        printf("BENCH fanout_p99_ms %.1f\n", pct(lats, cfg.changes, 0.99));
        printf("BENCH fanout_watcher_p99_ms %.1f\n",
               pct(per, (size_t)cfg.watchers * cfg.changes, 0.99));
        printf("BENCH fanout_bytes_per_change %.0f\n", (double)(b1 - b0) / changes);
        printf("BENCH fanout_bytes_per_watcher_per_change %.0f\n",
               (double)(b1 - b0) / changes / cfg.watchers);
        if (cfg.n_pids) {
            double busiest = 0;
            printf("BENCH fanout_consul_cpu_s_per_change %.4f\n", (k1 - k0) / changes);
            for (size_t i = 0; i < cfg.n_pids; i++) {
                printf("consul server %zu (pid %d): %.4f s CPU per change\n", i + 1, cfg.pids[i],
                       (ks1[i] - ks0[i]) / changes);
                if (ks1[i] - ks0[i] > busiest)
                    busiest = ks1[i] - ks0[i];
            }
            printf("BENCH fanout_consul_busiest_server_cpu_s_per_change %.4f\n", busiest / changes);
        }
        printf("BENCH fanout_watcher_cpu_ms_per_change %.3f\n",
               (c1 - c0) * 1000.0 / changes / cfg.watchers);
        printf("BENCH fanout_stale_retries %" PRIu64 "\n", sr1 - sr0);
        for (int k = 0; k < 2; k++)
            kind_cost_print(&kinds[k]);
        phases_print(&ph);
        /* The machine's floor: every CPU-second a change costs (servers and
         * watchers, all on this machine) spread perfectly over its CPUs. */
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        double cpu_s = (cfg.n_pids ? (k1 - k0) / changes : 0) + (c1 - c0) / changes;
        double floor_ms = cpu_s * 1000.0 / (double)(ncpu > 0 ? ncpu : 1);
        printf("floor: %.3f CPU-s per change (Consul servers %.3f + watchers %.3f) over %ld "
               "CPUs\n",
               cpu_s, cfg.n_pids ? (k1 - k0) / changes : 0, (c1 - c0) / changes, ncpu);
        printf("BENCH fanout_cpu_floor_ms %.1f\n", floor_ms);
        /* What else ran: the CPUs the machine spent on other programs
         * while the changes ran were not ours to use. */
        double ours = (k1 - k0) + (c1 - c0), others = m1 - m0 - ours;
        if (others < 0)
            others = 0;
        double free_cpus = (double)ncpu - others / wall_s;
        printf("machine: %.1f s of changes; busy %.1f CPU-s: ours %.1f (servers + watchers), "
               "other programs %.1f (%.2f CPUs on average, load %s)\n",
               wall_s, m1 - m0, ours, others, others / wall_s, loadavg());
        printf("BENCH fanout_other_programs_cpus %.2f\n", others / wall_s);
        if (free_cpus > 0.05)
            printf("BENCH fanout_cpu_floor_left_ms %.1f\n", cpu_s * 1000.0 / free_cpus);
        printf("BENCH fanout_p99_over_floor %.2f\n",
               floor_ms > 0 ? pct(lats, cfg.changes, 0.99) / floor_ms : 0);
    }
    if (cfg.unrelated) {
        b0 = bytes_all();
        c0 = cpu_s_self();
        k0 = cpu_s_consul(ks0);
        unsigned *snaps0 = calloc(cfg.watchers, sizeof(*snaps0));
        for (unsigned i = 0; snaps0 && i < cfg.watchers; i++)
            snaps0[i] = atomic_load(&all[i]->snapshots);
        for (unsigned i = 0; i < cfg.unrelated; i++) {
            int rc = make_change(&wr, i, true);
            if (rc < 0) {
                fprintf(stderr, "bench_fanout: unrelated change %u: %s\n", i, strerror(-rc));
                status = 2;
                goto stop;
            }
            usleep(200000); /* no snapshot changes: give any wake-up time to land */
        }
        b1 = bytes_all();
        c1 = cpu_s_self();
        k1 = cpu_s_consul(ks1);
        printf("BENCH fanout_unrelated_bytes_per_change %.0f\n", (double)(b1 - b0) / cfg.unrelated);
        if (cfg.n_pids)
            printf("BENCH fanout_unrelated_consul_cpu_s_per_change %.4f\n",
                   (k1 - k0) / cfg.unrelated);
        printf("BENCH fanout_unrelated_watcher_cpu_ms_per_change %.3f\n",
               (c1 - c0) * 1000.0 / cfg.unrelated / cfg.watchers);
        /* nothing they use changed: no watcher took a new snapshot, not
         * even for a while (a step back to an older view and forth again) */
        for (unsigned i = 0; i < cfg.watchers; i++) {
            unsigned took = atomic_load(&all[i]->snapshots) - (snaps0 ? snaps0[i] : 0);
            if (atomic_load(&all[i]->hash) != hash || took) {
                char what[128];
                snprintf(what, sizeof(what),
                         "took %u snapshot(s) on unrelated changes (want none and %016" PRIx64 ")",
                         took, hash);
                print_watcher(i, what);
                status = 1;
            }
        }
        free(snaps0);
    }
    printf("BENCH fanout_converged_hash %016" PRIx64 "\n", hash);
    free(kinds[0].lats);
    free(kinds[1].lats);
stop:
    free(tl.woke);
    free(tl.wakeups0);
    phases_free(&ph);
    for (unsigned t = 0; t < cfg.threads; t++)
        uv_async_send(&wks[t].stop);
    for (unsigned t = 0; t < cfg.threads; t++) {
        pthread_join(wks[t].th, NULL);
        uv_loop_close(&wks[t].loop);
    }
    for (unsigned i = 0; i < cfg.watchers; i++) {
        snapshot_free(all[i]->snap);
        free(all[i]);
    }
    consul_client_free(wr.c);
    uv_close((uv_handle_t *)&wr.poll, NULL);
    uv_run(&wr.loop, UV_RUN_DEFAULT);
    return status;
}
