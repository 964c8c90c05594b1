/* SPDX-License-Identifier: Apache-2.0 */
/*
 * drover-exporter: Kubernetes Services and Nodes into Consul KV. This file
 * wires the modules together: options, the Kubernetes client with one
 * reflector per resource (kube_client), the reconciler (sync), leader
 * election (leader), Prometheus metrics, /healthz + /readyz, systemd
 * notification and signals (SIGTERM/SIGINT stop, SIGHUP resyncs).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "config.h"
#include "consul.h"
#include "consul_options.h"
#include "curl_uv.h"
#include "daemon.h"
#include "http_server.h"
#include "kube_client.h"
#include "kube_objects.h"
#include "kube_store.h"
#include "kv_layout.h"
#include "label_selector.h"
#include "leader.h"
#include "log.h"
#include "loop_lag.h"
#include "metrics.h"
#include "sdnotify.h"
#include "sync.h"

#ifndef DROVER_VERSION
#define DROVER_VERSION "0.1.0"
#endif

struct options {
    char *kube_api;
    char *kube_token_file;
    char *kube_ca_file;
    bool kube_insecure;
    int64_t kube_page_size;
    int64_t watch_timeout_min_ms, watch_timeout_max_ms;
    struct consul_options consul;
    char *cluster;
    bool kse_compat;
    char *kse_prefix;
    char *metrics_addr;
    char *node_selector;
    int64_t node_grace_ms;
    char *node_address_type;
    bool export_by_default;
    int64_t resync_ms;
    int64_t coalesce_ms;
    bool leader_elect;
    int64_t leader_ttl_ms;
    int64_t leader_lock_delay_ms;
    char *holder;
    struct config_strlist service_labels, node_labels;
    uint64_t kube_list_max_bytes;
};

static struct options opt;

static const struct config_option options[] = {
    CONFIG_OPT_STRING("kube-api", &opt.kube_api, NULL,
                      "Kubernetes API URL; default: in-cluster (KUBERNETES_SERVICE_HOST/PORT)"),
    CONFIG_OPT_STRING("kube-token-file", &opt.kube_token_file, NULL,
                      "bearer token file (re-read on 401 and every minute); in-cluster: the "
                      "service-account token"),
    CONFIG_OPT_STRING("kube-ca-file", &opt.kube_ca_file, NULL,
                      "CA bundle of the API server; in-cluster: the service-account ca.crt"),
    CONFIG_OPT_BOOL("kube-insecure-skip-tls-verify", &opt.kube_insecure, "false",
                    "do not verify the API server's certificate (tests only)"),
    CONFIG_OPT_INT("kube-page-size", &opt.kube_page_size, "500", 1, 100000,
                   "items per list page (limit/continue)"),
    CONFIG_OPT_SIZE("kube-list-max-bytes", &opt.kube_list_max_bytes, "64MiB",
                    "largest list page body accepted (refused unparsed and retried above it)"),
    CONFIG_OPT_DURATION("watch-timeout-min", &opt.watch_timeout_min_ms, "5m",
                        "shortest watch (timeoutSeconds is random between min and max)"),
    CONFIG_OPT_DURATION("watch-timeout-max", &opt.watch_timeout_max_ms, "10m", "longest watch"),
    {.name = "kube-cluster",
     .alias = "cluster",
     .type = CONFIG_STRING,
     .target.str = &opt.cluster,
     .metavar = "NAME",
     .help = "name of this Kubernetes cluster in KV (required; [A-Za-z0-9._-], 1-63)"},
    CONFIG_OPT_BOOL("kse-compat", &opt.kse_compat, "false",
                    "also write GitHub kube-service-exporter's KV layout"),
    CONFIG_OPT_STRING("kse-prefix", &opt.kse_prefix, KV_LAYOUT_DEFAULT_KSE_PREFIX,
                      "KV prefix of the kube-service-exporter layout"),
    CONFIG_OPT_STRING("metrics-addr", &opt.metrics_addr, ":9105",
                      "address for /metrics, /healthz and /readyz; empty = none"),
    CONFIG_OPT_STRING("node-selector", &opt.node_selector, NULL,
                      "label selector of the load-balancing nodes (empty = every node)"),
    CONFIG_OPT_DURATION("node-grace", &opt.node_grace_ms, "30s",
                        "a node that turns NotReady stays eligible this long"),
    CONFIG_OPT_STRING("node-address-type", &opt.node_address_type, "InternalIP",
                      "node address type exported (InternalIP, ExternalIP, ...)"),
    CONFIG_OPT_BOOL("export-by-default", &opt.export_by_default, "false",
                    "export NodePort/LoadBalancer Services without an `exported` annotation"),
    CONFIG_OPT_DURATION("resync-interval", &opt.resync_ms, "5m",
                        "re-read Consul and repair drift this often (0 = never)"),
    CONFIG_OPT_DURATION("coalesce", &opt.coalesce_ms, "5ms",
                        "wait this long after a change before writing (batches bursts)"),
    CONFIG_OPT_BOOL("leader-elect", &opt.leader_elect, "true",
                    "elect a leader among replicas through a Consul session lock"),
    CONFIG_OPT_DURATION("leader-ttl", &opt.leader_ttl_ms, "20s",
                        "a dead leader's lock is free within this (20s..2h; the Consul "
                        "session TTL is half of it)"),
    CONFIG_OPT_DURATION("leader-lock-delay", &opt.leader_lock_delay_ms, "0s",
                        "Consul lock-delay after a leader's session is invalidated (writes "
                        "are fenced by check-session, so none is needed)"),
    CONFIG_OPT_STRLIST("service-labels", &opt.service_labels, NULL,
                       "Service label keys copied into each service entry (repeat the flag; a "
                       "comma list in DROVER_*)"),
    CONFIG_OPT_STRLIST(
        "node-labels", &opt.node_labels, NULL,
        "Node label keys copied into each node entry (repeat the flag; a comma list in DROVER_*)"),
    CONFIG_OPT_STRING("holder-name", &opt.holder, NULL,
                      "name written into the leader key; default $POD_NAME or the host name"),
    CONFIG_OPT_END,
};

static const struct config_group groups[] = {
    CONSUL_OPTION_GROUP(&opt.consul),
    CONFIG_GROUP_END,
};

static const struct config_program program = {
    .name = "drover-exporter",
    .summary = "Export Kubernetes Services and Nodes into Consul KV for drover.",
    .options = options,
    .groups = groups,
};

#define N_REASONS 8
static const char *const reason_names[N_REASONS] = {
    "InvalidAnnotation",
    "InvalidObject",
    "MissingNodePort",
    "Other",
};

struct daemon {
    uv_loop_t *loop;
    struct curl_uv *cu;
    struct consul_client *consul;
    struct kube_client *kube;
    struct kube_store *services, *nodes;
    struct kube_reflector *rsvc, *rnode;
    struct sync *sync;
    struct leader *leader;
    struct http_server *http;
    struct metrics_registry *metrics;
    struct sdnotify_watchdog *watchdog;
    struct label_selector *selector;
    struct kv_layout layout;
    struct export_options sopts;
    struct node_options nopts;
    struct daemon_signals sigs;
    uv_timer_t stop_timer;
    bool leader_now;
    bool follower_decided;
    bool synced_as_leader;
    uint64_t leader_transitions;
    uint64_t skipped[N_REASONS];
    char holder[256];
};

/* ---- readiness ---- */

static void update_ready(struct daemon *d)
{
    bool ready;
    const char *why;
    if (!opt.leader_elect || d->leader_now) {
        ready = d->synced_as_leader;
        why = ready ? "leader, synced" : "leader, first full sync pending";
    } else {
        ready = d->follower_decided && leader_session_ok(d->leader);
        why = ready                 ? "following"
              : d->follower_decided ? "no live Consul session (Consul unreachable?)"
                                    : "leader election pending";
    }
    if (d->http)
        http_server_set_ready(d->http, ready, why);
    sdnotify_status("%s", why);
}

static void on_synced(void *arg)
{
    struct daemon *d = arg;
    if (!d->synced_as_leader) {
        const struct sync_stats *st = sync_stats(d->sync);
        log_info("exporter: KV in sync for cluster %s: %zu services (%zu ports), %zu nodes "
                 "(%zu eligible)",
                 opt.cluster, st->last.services, st->last.service_ports, st->last.nodes,
                 st->last.eligible_nodes);
    }
    d->synced_as_leader = true;
    update_ready(d);
}

static void on_skip(const char *kind, const char *key, const struct kube_reason *why, void *arg)
{
    struct daemon *d = arg;
    int i;
    for (i = 0; i < N_REASONS - 1 && reason_names[i]; i++)
        if (strcmp(reason_names[i], why->reason) == 0)
            break;
    if (!reason_names[i])
        i = 3;
    d->skipped[i]++;
    log_warn("exporter: %s %s not exported: %s: %s", kind, key, why->reason, why->message);
}

static void on_leader(void *arg, bool leader, uint64_t generation)
{
    struct daemon *d = arg;
    if (leader != d->leader_now)
        d->leader_transitions++;
    d->leader_now = leader;
    d->follower_decided = true;
    if (!leader)
        d->synced_as_leader = false;
    sync_set_writer(d->sync, leader, generation, leader ? leader_session(d->leader) : NULL);
    update_ready(d);
}

/* Consul refused a fenced write: the lock is not ours any more. */
static void on_fence_lost(void *arg)
{
    struct daemon *d = arg;
    if (d->leader)
        leader_recheck(d->leader, "Consul refused a write fenced by the lock's session");
}

static void on_store_change(void *arg, bool changed)
{
    struct daemon *d = arg;
    (void)changed;
    sync_kick(d->sync);
}

/* ---- metrics ---- */

static void emit_resource(struct metrics_emitter *em, const char *res,
                          const struct kube_reflector_stats *s)
{
    metrics_emit(em, "drover_exporter_lists_total", "Complete lists of a resource.",
                 METRICS_COUNTER, (double)s->lists, "resource", res, NULL);
    metrics_emit(em, "drover_exporter_relists_total",
                 "Lists after the first (expired resourceVersion, lost events).", METRICS_COUNTER,
                 (double)s->relists, "resource", res, NULL);
    metrics_emit(em, "drover_exporter_list_restarts_total",
                 "Lists restarted from the first page (expired continue token, errors).",
                 METRICS_COUNTER, (double)s->list_restarts, "resource", res, NULL);
    metrics_emit(em, "drover_exporter_watch_restarts_total",
                 "Watches started again after one ended (timeout, drop, error).", METRICS_COUNTER,
                 (double)s->watch_restarts, "resource", res, NULL);
    for (int t = 0; t < 5; t++)
        metrics_emit(em, "drover_exporter_events_total", "Watch events received, by type.",
                     METRICS_COUNTER, (double)s->events[t], "resource", res, "type",
                     kube_event_type_name((enum kube_event_type)t), NULL);
    static const char *const h = "Failed Kubernetes API requests, by kind.";
    metrics_emit(em, "drover_exporter_kube_errors_total", h, METRICS_COUNTER, (double)s->expired,
                 "resource", res, "kind", "expired", NULL);
    metrics_emit(em, "drover_exporter_kube_errors_total", h, METRICS_COUNTER,
                 (double)s->unauthorized, "resource", res, "kind", "unauthorized", NULL);
    metrics_emit(em, "drover_exporter_kube_errors_total", h, METRICS_COUNTER, (double)s->throttled,
                 "resource", res, "kind", "throttled", NULL);
    metrics_emit(em, "drover_exporter_kube_errors_total", h, METRICS_COUNTER,
                 (double)s->server_errors, "resource", res, "kind", "server", NULL);
    metrics_emit(em, "drover_exporter_kube_errors_total", h, METRICS_COUNTER,
                 (double)s->transport_errors, "resource", res, "kind", "transport", NULL);
    metrics_emit(em, "drover_exporter_kube_errors_total", h, METRICS_COUNTER,
                 (double)s->list_too_large, "resource", res, "kind", "list_too_large", NULL);
    metrics_emit(em, "drover_exporter_kube_stall_retries_total",
                 "Kubernetes list pages and watches that timed out while the exporter could not "
                 "act (stopped, starved), sent again instead of counted as API errors.",
                 METRICS_COUNTER, (double)s->stall_retries, "resource", res, NULL);
    metrics_emit(em, "drover_exporter_kube_outages_total",
                 "Kubernetes API outages begun (first failure after answers; logged once, the "
                 "retries at debug level).",
                 METRICS_COUNTER, (double)s->outages, "resource", res, NULL);
}

static void collect(struct metrics_emitter *em, void *arg)
{
    struct daemon *d = arg;
    emit_resource(em, "services", kube_reflector_stats(d->rsvc));
    emit_resource(em, "nodes", kube_reflector_stats(d->rnode));
    metrics_emit(em, "drover_exporter_token_reloads_total",
                 "Kubernetes bearer token re-reads that found a new token.", METRICS_COUNTER,
                 (double)kube_client_token_reloads(d->kube), NULL);
    const struct sync_stats *s = sync_stats(d->sync);
    metrics_emit(em, "drover_exporter_kv_writes_total", "KV entries written, by operation.",
                 METRICS_COUNTER, (double)s->kv_sets, "op", "set", NULL);
    metrics_emit(em, "drover_exporter_kv_writes_total", "KV entries written, by operation.",
                 METRICS_COUNTER, (double)s->kv_deletes, "op", "delete", NULL);
    metrics_emit(em, "drover_exporter_txn_total", "/v1/txn batches committed.", METRICS_COUNTER,
                 (double)s->txns, NULL);
    metrics_emit(em, "drover_exporter_txn_failures_total",
                 "/v1/txn batches that failed (conflicts included).", METRICS_COUNTER,
                 (double)s->txn_failures, NULL);
    metrics_emit(em, "drover_exporter_txn_conflicts_total",
                 "/v1/txn batches refused by a check-and-set (someone else wrote).",
                 METRICS_COUNTER, (double)s->txn_conflicts, NULL);
    metrics_emit(em, "drover_exporter_txn_fence_refusals_total",
                 "/v1/txn batches refused because the leader lock is not held by our session.",
                 METRICS_COUNTER, (double)s->fence_refusals, NULL);
    metrics_emit(em, "drover_exporter_txn_splits_total",
                 "/v1/txn batches Consul refused as too large (413) and split in halves.",
                 METRICS_COUNTER, (double)s->txn_splits, NULL);
    metrics_emit(em, "drover_exporter_kv_refused_total",
                 "KV entries Consul refused on their own as too large (413); skipped, the rest "
                 "written.",
                 METRICS_COUNTER, (double)s->kv_refused, NULL);
    metrics_emit(em, "drover_exporter_kv_refused_entries",
                 "KV entries currently not written because Consul refused their value.",
                 METRICS_GAUGE, (double)s->kv_refused_now, NULL);
    metrics_emit(em, "drover_exporter_sync_rounds_total", "Build + diff rounds.", METRICS_COUNTER,
                 (double)s->rounds, NULL);
    metrics_emit(em, "drover_exporter_sync_noop_rounds_total",
                 "Rounds that found nothing to write.", METRICS_COUNTER, (double)s->noop_rounds,
                 NULL);
    metrics_emit(em, "drover_exporter_kv_reads_total", "Full reads of the cluster's KV prefixes.",
                 METRICS_COUNTER, (double)s->reads, NULL);
    metrics_emit(em, "drover_exporter_kv_read_failures_total", "Failed full reads.",
                 METRICS_COUNTER, (double)s->read_failures, NULL);
    metrics_emit(em, "drover_exporter_last_sync_timestamp_seconds",
                 "Unix time of the last round that left KV equal to a complete view (0: never).",
                 METRICS_GAUGE, (double)s->last_sync_unix, NULL);
    for (int i = 0; i < N_REASONS && reason_names[i]; i++)
        metrics_emit(em, "drover_exporter_export_errors_total",
                     "Services or Nodes refused (not exported), by reason.", METRICS_COUNTER,
                     (double)d->skipped[i], "reason", reason_names[i], NULL);
    metrics_emit(em, "drover_exporter_services", "Services exported (last build).", METRICS_GAUGE,
                 (double)s->last.services, NULL);
    metrics_emit(em, "drover_exporter_service_ports", "Service entries (last build).",
                 METRICS_GAUGE, (double)s->last.service_ports, NULL);
    metrics_emit(em, "drover_exporter_nodes", "Node entries (last build).", METRICS_GAUGE,
                 (double)s->last.nodes, NULL);
    metrics_emit(em, "drover_exporter_eligible_nodes", "Eligible nodes, grace included.",
                 METRICS_GAUGE, (double)s->last.eligible_nodes, NULL);
    metrics_emit(em, "drover_exporter_nodes_in_grace",
                 "NotReady nodes kept eligible by the grace period.", METRICS_GAUGE,
                 (double)s->last.nodes_in_grace, NULL);
    metrics_emit(em, "drover_exporter_leader", "1 while this replica holds the leader lock.",
                 METRICS_GAUGE, d->leader_now ? 1.0 : 0.0, NULL);
    metrics_emit(em, "drover_exporter_leader_transitions_total",
                 "Times this replica became or stopped being leader.", METRICS_COUNTER,
                 (double)d->leader_transitions, NULL);
    consul_stats_emit(consul_client_stats(d->consul), em, "exporter");
}

/* ---- shutdown ---- */

static void on_closed(uv_handle_t *h)
{
    (void)h;
}

/* Free every module (in this order: callbacks of the Consul client's
 * teardown must find sync and leader still allocated but stopped). */
static void release_modules(struct daemon *d)
{
    sync_stop(d->sync);
    kube_reflector_free(d->rsvc);
    kube_reflector_free(d->rnode);
    d->rsvc = d->rnode = NULL;
    kube_client_free(d->kube);
    d->kube = NULL;
    leader_free(d->leader);
    d->leader = NULL;
    consul_client_free(d->consul);
    d->consul = NULL;
    sync_free(d->sync);
    d->sync = NULL;
    curl_uv_free(d->cu);
    d->cu = NULL;
    daemon_serving_stop(&d->http, &d->watchdog);
}

static void finish_stop(struct daemon *d)
{
    uv_timer_stop(&d->stop_timer);
    uv_close((uv_handle_t *)&d->stop_timer, on_closed);
    release_modules(d);
    daemon_signals_close(&d->sigs);
}

static void on_leader_released(void *arg)
{
    struct daemon *d = arg;
    if (d->cu)
        finish_stop(d);
}

static void on_stop_timer(uv_timer_t *t)
{
    struct daemon *d = t->data;
    log_warn("exporter: releasing the leader lock took too long, stopping anyway");
    finish_stop(d);
}

static void on_stop(void *arg, int signum)
{
    struct daemon *d = arg;
    (void)signum;
    sync_stop(d->sync);
    if (d->leader) {
        uv_timer_start(&d->stop_timer, on_stop_timer, 3000, 0);
        leader_shutdown(d->leader, on_leader_released, d);
        return;
    }
    finish_stop(d);
}

static void on_hup(void *arg)
{
    struct daemon *d = arg;
    log_info("exporter: SIGHUP: re-reading Consul and the token, resyncing");
    kube_client_reload_token(d->kube);
    sync_resync(d->sync);
}

/* ---- setup ---- */

static int setup(struct daemon *d)
{
    char err[512], urlbuf[512];
    int rc;

    if (!opt.cluster || !*opt.cluster) {
        log_error("exporter: --kube-cluster (DROVER_KUBE_CLUSTER) is required, exiting");
        return -EINVAL;
    }
    struct consul_config ccfg = {0};
    if ((rc = consul_options_config(&opt.consul, &ccfg, err, sizeof(err))) < 0) {
        log_error("exporter: %s, exiting", err);
        return rc;
    }
    if (kv_layout_init(&d->layout, opt.consul.kv_prefix, opt.cluster,
                       opt.kse_compat ? opt.kse_prefix : NULL) < 0)
        return -EINVAL;
    if (opt.node_selector && *opt.node_selector) {
        rc = label_selector_parse(opt.node_selector, &d->selector, err, sizeof(err));
        if (rc < 0) {
            log_error("exporter: --node-selector '%s': %s, exiting", opt.node_selector, err);
            return rc;
        }
    }
    d->sopts = (struct export_options){
        .cluster = opt.cluster,
        .export_by_default = opt.export_by_default,
        .label_keys = (const char *const *)opt.service_labels.items,
        .n_label_keys = opt.service_labels.count,
    };
    d->nopts = (struct node_options){
        .address_type = opt.node_address_type,
        .selector = d->selector,
        .label_keys = (const char *const *)opt.node_labels.items,
        .n_label_keys = opt.node_labels.count,
    };

    if (opt.holder && *opt.holder)
        snprintf(d->holder, sizeof(d->holder), "%s", opt.holder);
    else if (getenv("POD_NAME") && *getenv("POD_NAME"))
        snprintf(d->holder, sizeof(d->holder), "%s", getenv("POD_NAME"));
    else if (gethostname(d->holder, sizeof(d->holder) - 1) < 0)
        snprintf(d->holder, sizeof(d->holder), "pid-%d", (int)getpid());

    if (curl_uv_new(d->loop, &d->cu) < 0) {
        log_error("exporter: cannot set up libcurl on libuv, exiting");
        return -EIO;
    }
    /* one stall measurement of the loop for the Consul and the Kubernetes
     * client (each keeps a reference) */
    struct loop_lag *lag = NULL;
    if ((rc = loop_lag_new(d->loop, &lag)) < 0) {
        log_error("exporter: cannot measure the loop's stalls: %s, exiting", strerror(-rc));
        return rc;
    }
    ccfg.loop_lag = lag;
    rc = consul_client_new(d->loop, &ccfg, &d->consul);
    if (rc < 0) {
        log_error("exporter: Consul client for %s: %s, exiting", ccfg.address, strerror(-rc));
        loop_lag_unref(lag);
        return rc;
    }

    struct kube_client_config kcfg = {
        .api_url = opt.kube_api && *opt.kube_api ? opt.kube_api : NULL,
        .token_file = opt.kube_token_file && *opt.kube_token_file ? opt.kube_token_file : NULL,
        .ca_file = opt.kube_ca_file && *opt.kube_ca_file ? opt.kube_ca_file : NULL,
        .insecure_skip_tls = opt.kube_insecure,
        .page_limit = (unsigned)opt.kube_page_size,
        .max_list_bytes = (size_t)opt.kube_list_max_bytes,
        .watch_min_s = (unsigned)(opt.watch_timeout_min_ms / 1000),
        .watch_max_s = (unsigned)(opt.watch_timeout_max_ms / 1000),
        .loop_lag = lag,
    };
    if (!kcfg.api_url && (rc = kube_client_config_in_cluster(&kcfg, urlbuf, sizeof(urlbuf))) < 0) {
        loop_lag_unref(lag);
        return rc;
    }
    rc = kube_client_new(d->loop, d->cu, &kcfg, &d->kube);
    loop_lag_unref(lag); /* the clients' references remain */
    if (rc < 0) {
        log_error("exporter: Kubernetes client for %s: %s, exiting", kcfg.api_url, strerror(-rc));
        return rc;
    }
    if (kcfg.insecure_skip_tls)
        log_warn("exporter: not verifying the API server's certificate "
                 "(--kube-insecure-skip-tls-verify)");

    d->services = kube_store_new("services", true);
    d->nodes = kube_store_new("nodes", false);
    if (!d->services || !d->nodes)
        return -ENOMEM;
    kube_store_set_slim(d->services, kube_service_slim);
    kube_store_set_slim(d->nodes, kube_node_slim);

    struct sync_config scfg = {
        .layout = &d->layout,
        .service_opts = &d->sopts,
        .node_opts = &d->nopts,
        .grace_ms = opt.node_grace_ms,
        .coalesce_ms = (unsigned)opt.coalesce_ms,
        .resync_ms = opt.resync_ms,
        .version = DROVER_VERSION,
    };
    if (!scfg.coalesce_ms)
        scfg.coalesce_ms = 1;
    char *fence_key = NULL;
    if (opt.leader_elect) {
        /* every write batch is fenced by check-session on the leader key */
        if (!(fence_key = kv_layout_leader_key(&d->layout)))
            return -ENOMEM;
        scfg.fence_key = fence_key;
        scfg.on_fence_lost = on_fence_lost;
    }
    rc =
        sync_new(d->loop, d->consul, d->services, d->nodes, &scfg, on_skip, on_synced, d, &d->sync);
    free(fence_key);
    if (rc < 0)
        return rc;
    rc = kube_reflector_new(d->kube, "/api/v1/services", d->services, on_store_change, d, &d->rsvc);
    if (rc == 0)
        rc = kube_reflector_new(d->kube, "/api/v1/nodes", d->nodes, on_store_change, d, &d->rnode);
    if (rc < 0)
        return rc;

    d->metrics = metrics_registry_new();
    if (!d->metrics || metrics_add_collector(d->metrics, collect, d) < 0 ||
        consul_client_observe_latency(d->consul, d->metrics, "exporter") < 0)
        return -ENOMEM;
    if ((rc = daemon_http_start(d->loop, "exporter", opt.metrics_addr, d->metrics, &d->http)) < 0)
        return rc;

    if (opt.leader_elect) {
        char *key = kv_layout_leader_key(&d->layout);
        struct leader_config lcfg = {
            .key = key,
            .holder = d->holder,
            .version = DROVER_VERSION,
            .ttl_s = (unsigned)(opt.leader_ttl_ms / 1000),
            .lock_delay_s = (unsigned)(opt.leader_lock_delay_ms / 1000),
        };
        rc = key ? leader_new(d->loop, d->consul, &lcfg, on_leader, d, &d->leader) : -ENOMEM;
        free(key);
        if (rc < 0)
            return rc;
    } else {
        sync_set_writer(d->sync, true, 1, NULL); /* no election: unfenced */
    }
    update_ready(d);

    uv_timer_init(d->loop, &d->stop_timer);
    d->stop_timer.data = d;
    struct daemon_signal_opts sopts = {
        .component = "exporter", .on_stop = on_stop, .on_hup = on_hup, .arg = d};
    if ((rc = daemon_signals_start(d->loop, &d->sigs, &sopts)) < 0)
        return rc;
    sdnotify_watchdog_start(d->loop, &d->watchdog);

    log_info("exporter: cluster %s, KV %s%s, Kubernetes API %s, Consul %s, holder %s", opt.cluster,
             d->layout.own, opt.kse_compat ? " (+ kube-service-exporter layout)" : "", kcfg.api_url,
             ccfg.address, d->holder);
    kube_reflector_start(d->rsvc);
    kube_reflector_start(d->rnode);
    if (d->leader)
        leader_start(d->leader);
    /* Started = serving and trying; not "synced": a Consul or API server
     * that is down at boot must not make systemd fail and restart us in a
     * loop. STATUS= and /readyz tell how far it got. */
    sdnotify_ready();
    return 0;
}

int main(int argc, char **argv)
{
    struct daemon d = {0};
    int rc;

    if (!daemon_config_parse(&program, "exporter", argc, argv, &rc))
        return rc;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        log_error("exporter: libcurl initialisation failed, exiting");
        return 1;
    }
    d.loop = uv_default_loop();
    rc = setup(&d);
    if (rc < 0)
        release_modules(&d); /* nothing started yet needs a graceful stop */
    uv_run(d.loop, UV_RUN_DEFAULT);
    kube_store_free(d.services);
    kube_store_free(d.nodes);
    label_selector_free(d.selector);
    kv_layout_clear(&d.layout);
    metrics_registry_free(d.metrics);
    config_free(&program);
    curl_global_cleanup();
    if (rc < 0)
        return rc == -EINVAL ? 2 : 1;
    uv_loop_close(d.loop);
    log_info("exporter: stopped");
    return 0;
}
