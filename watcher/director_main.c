/* SPDX-License-Identifier: Apache-2.0 */
/*
 * drover-watcher director: the watcher's director side (docs/director-watcher.md).
 *
 *   director run      Consul KV director/<cluster>/ (director_feed) + own
 *                     health checks (director_health, optionally Consul
 *                     health) -> director_apply: table, moved-share guard,
 *                     publish into the maps drover-director pinned,
 *                     verify, snapshot. Without Consul it re-applies the
 *                     snapshot and keeps forwarding with it.
 *   director status   [--json] what the kernel forwards with (pinned maps)
 *                     and what was applied (snapshot); works from any
 *                     process on the host.
 *
 * Entry point: director_main(), called by watcher/main.c for
 * `drover-watcher director ...`. This file holds the options and the
 * wiring of `run` (metrics, status entry, front door, signals) and
 * `frontdoor-guard`; the apply state machine is director_main_apply.c,
 * `status` is director_main_status.c (shared: director_main_internal.h).
 */
#include "director_main.h"
#include "director_main_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "backoff.h"
#include "config.h"
#include "consul.h"
#include "consul_options.h"
#include "curl_uv.h"
#include "daemon.h"
#include "director_apply.h"
#include "director_feed.h"
#include "director_health.h"
#include "director_loader.h"
#include "director_metrics.h"
#include "director_publish.h"
#include "frontdoor_agent.h"
#include "host_status.h"
#include "http_server.h"
#include "kv_frontdoor.h"
#include "kv_status.h"
#include "log.h"
#include "loop_lag.h"
#include "metrics.h"
#include "sdnotify.h"
#include "timefmt.h"
#include "version.h"

struct dopts {
    struct consul_options consul;
    char *cluster;
    char *dev, *pin_root, *snapshot_file, *metrics_addr;
    int64_t health_port, health_interval_ms, health_timeout_ms, health_rise, health_fall;
    char *health_path, *consul_health_service;
    double max_moved_share;
    int64_t wait_ms, verify_ms, consul_wait_ms;
    bool json;
    /* the front door (docs/frontdoor.md) */
    char *bird_socket, *bird_include, *bird_bin, *frontdoor_state, *host_name;
    int64_t frontdoor_interval_ms, frontdoor_rise, frontdoor_fall, frontdoor_drain_ms,
        frontdoor_lease_ms, frontdoor_half_life_ms;
    int64_t status_ttl_ms;
};

static struct dopts dopt;

static const struct config_option doptions[] = {
    CONFIG_OPT_STRING("director-cluster", &dopt.cluster, NULL,
                      "director cluster: reads director/<cluster>/ (required for run)"),
    CONFIG_OPT_STRING("dev", &dopt.dev, NULL,
                      "device drover-director is attached to (its maps are pinned under "
                      "<pin-root>/<dev>)"),
    CONFIG_OPT_STRING("pin-root", &dopt.pin_root, DIRECTOR_PIN_ROOT, "bpffs pin root"),
    CONFIG_OPT_STRING("director-snapshot-file", &dopt.snapshot_file,
                      "/var/lib/drover/watcher/director.pb",
                      "last applied table inputs (protobuf), re-applied at start"),
    CONFIG_OPT_STRING("metrics-addr", &dopt.metrics_addr, "127.0.0.1:9109",
                      "address for /metrics, /healthz, /readyz; empty = none"),
    CONFIG_OPT_INT("health-port", &dopt.health_port, "80", 1, 65535,
                   "proxy health-check port when the KV entry has none"),
    CONFIG_OPT_STRING("health-path", &dopt.health_path, "/healthz",
                      "proxy health-check path when the KV entry has none"),
    CONFIG_OPT_DURATION("health-interval", &dopt.health_interval_ms, "2s", "check interval"),
    CONFIG_OPT_DURATION("health-timeout", &dopt.health_timeout_ms, "1s", "check timeout"),
    CONFIG_OPT_INT("health-rise", &dopt.health_rise, "3", 1, 100,
                   "consecutive successes to come back"),
    CONFIG_OPT_INT("health-fall", &dopt.health_fall, "3", 1, 100,
                   "consecutive failures to go down"),
    CONFIG_OPT_STRING("consul-health-service", &dopt.consul_health_service, NULL,
                      "also take Consul's health of this service (critical = unhealthy)"),
    CONFIG_OPT_DOUBLE("max-moved-share", &dopt.max_moved_share, "0.5",
                      "hold KV changes moving more than this share of rows (config may override)"),
    CONFIG_OPT_DURATION("apply-wait", &dopt.wait_ms, "100ms",
                        "coalesce changes this long before building a table"),
    CONFIG_OPT_DURATION("verify-interval", &dopt.verify_ms, "10s",
                        "re-check (and repair) the maps this often"),
    CONFIG_OPT_DURATION("consul-wait", &dopt.consul_wait_ms, "5m", "blocking query wait"),
    CONFIG_OPT_BOOL("json", &dopt.json, "false", "status: JSON output"),
    CONFIG_OPT_STRING("bird-socket", &dopt.bird_socket, NULL,
                      "front door: BIRD 2 control socket; announce the VIPs through BIRD only "
                      "while this host serves them (empty = no front door)"),
    CONFIG_OPT_STRING("bird-include", &dopt.bird_include, "/etc/bird/drover/vips.conf",
                      "front door: the include file drover owns (bird.conf includes it)"),
    CONFIG_OPT_STRING("bird-bin", &dopt.bird_bin, "bird",
                      "front door: bird binary that checks the include (bird -p -c)"),
    CONFIG_OPT_STRING("frontdoor-state", &dopt.frontdoor_state, "/run/drover/frontdoor.json",
                      "front door: state file, rewritten every round (the guard's lease)"),
    CONFIG_OPT_DURATION("frontdoor-interval", &dopt.frontdoor_interval_ms, "1s",
                        "front door: evaluate the serving conditions this often"),
    CONFIG_OPT_INT("frontdoor-rise", &dopt.frontdoor_rise, "2", 1, 100,
                   "front door: good rounds before a withdrawn VIP is announced again"),
    CONFIG_OPT_INT("frontdoor-fall", &dopt.frontdoor_fall, "2", 1, 100,
                   "front door: bad rounds before an announced VIP is withdrawn"),
    CONFIG_OPT_DURATION("frontdoor-flap-half-life", &dopt.frontdoor_half_life_ms, "30s",
                        "front door: half-life of a VIP's flap penalty (1000 per change; held "
                        "withdrawn above 2500 until below 1000)"),
    CONFIG_OPT_DURATION("frontdoor-drain-withdraw", &dopt.frontdoor_drain_ms, "10s",
                        "front door: graceful shutdown (65535:0) this long before a drained "
                        "host withdraws"),
    {.name = "host-name",
     .alias = "status-host",
     .type = CONFIG_STRING,
     .target.str = &dopt.host_name,
     .help = "this host's name: its status entry status/<host>/director and, with the front "
             "door, frontdoor/hosts/<host> (drain) (default: the hostname; --status-host is the "
             "former name)"},
    CONFIG_OPT_DURATION("frontdoor-lease", &dopt.frontdoor_lease_ms, "3s",
                        "frontdoor-guard: the daemon counts as dead when its state file is older"),
    CONFIG_OPT_DURATION("status-ttl", &dopt.status_ttl_ms, "15s",
                        "session TTL of the status entry (10s..24h)"),
    CONFIG_OPT_END,
};

static const struct config_group dgroups[] = {
    CONSUL_OPTION_GROUP(&dopt.consul),
    CONFIG_GROUP_END,
};

enum { DCMD_RUN, DCMD_STATUS, DCMD_GUARD };
static const struct config_command dcommands[] = {
    [DCMD_RUN] = {.name = "run",
                  .summary = "forwarding tables from Consul KV and health into the maps (the "
                             "default); needs --director-cluster and --dev"},
    [DCMD_STATUS] = {.name = "status",
                     .args_usage = "[--json]",
                     .summary = "what the kernel forwards with (pinned maps); needs --dev"},
    [DCMD_GUARD] = {.name = "frontdoor-guard",
                    .summary = "withdraw every VIP from BIRD when the daemon is dead (state file "
                               "older than --frontdoor-lease) and the XDP director is not "
                               "attached to --dev; run by a timer and on unit stop"},
    CONFIG_COMMAND_END,
};

static const struct config_program dprogram = {
    .name = "drover-watcher director",
    .summary = "Director side: forwarding tables from Consul KV and health into the XDP maps.",
    .options = doptions,
    .groups = dgroups,
    .commands = dcommands,
};

/* built from dopt.consul once the options are parsed */
static struct consul_config dconsul_cfg;

/* The maps drover-director pinned for --dev (director_pin_dir); NULL
 * without a usable --dev. */
static char *pin_dir(void)
{
    char buf[4096];

    if (director_pin_dir(dopt.pin_root, dopt.dev, buf, sizeof(buf)) < 0)
        return NULL;
    return strdup(buf);
}

/* ---- run ---- */

static json_t *status_fill(void *arg)
{
    struct dw *w = arg;
    const struct director_apply_stats *st = director_apply_get_stats(w->apply);
    size_t n_vips = w->in ? w->in->n_vips : 0;
    char snap[17] = "", *guards[2] = {"moved-share", NULL};
    char **vips = calloc(n_vips + 1, sizeof(*vips));
    struct kv_status_rec r = {.host = dopt.host_name,
                              .role = KV_STATUS_ROLE_DIRECTOR,
                              .cluster = dopt.cluster,
                              .version = (char *)drover_version(),
                              .started_unix = w->started_unix,
                              .updated_unix = w->status_unix,
                              .snapshot = snap,
                              .guards = guards,
                              .n_guards = st && st->held_now ? 1 : 0,
                              .last_error = w->last_error[0] ? w->last_error : NULL,
                              .table_checksum = w->have_table ? w->checksum : NULL,
                              .vips = vips,
                              .n_vips = n_vips};
    if (!vips)
        return NULL;
    if (w->in)
        snprintf(snap, sizeof(snap), "%016llx", (unsigned long long)w->in->hash);
    for (size_t i = 0; i < n_vips; i++)
        vips[i] = w->in->vips[i].address;
    json_t *out = kv_status_encode(&r);
    free(vips);
    return out;
}

static void collect(struct metrics_emitter *em, void *arg)
{
    struct dw *w = arg;
    struct director_health_status *hs = NULL;
    size_t nh = w->health ? director_health_list(w->health, &hs) : 0;

    if (w->have_table) {
        metrics_emit(em, "drover_watcher_director_table_info",
                     "The applied table: checksum (equal on every director with the same inputs), "
                     "tier.",
                     METRICS_GAUGE, 1.0, "checksum", w->checksum, "tier", w->tier, NULL);
        metrics_emit(em, "drover_watcher_director_table_balance",
                     "Max over mean rows per primary-eligible proxy.", METRICS_GAUGE, w->balance,
                     NULL);
        for (uint32_t i = 0; i < w->n_rows; i++) {
            metrics_emit(em, "drover_watcher_director_rows", "Table rows per proxy and role.",
                         METRICS_GAUGE, (double)w->rows[i].primary, "proxy", w->rows[i].id, "role",
                         "primary", NULL);
            metrics_emit(em, "drover_watcher_director_rows", "Table rows per proxy and role.",
                         METRICS_GAUGE, (double)w->rows[i].secondary, "proxy", w->rows[i].id,
                         "role", "secondary", NULL);
        }
    }
    for (size_t i = 0; i < nh; i++) {
        metrics_emit(em, "drover_watcher_director_proxy_healthy",
                     "Effective health of a proxy (1 healthy, 0 not).", METRICS_GAUGE,
                     hs[i].healthy ? 1.0 : 0.0, "proxy", hs[i].host, NULL);
        metrics_emit(em, "drover_watcher_director_proxy_suppressed",
                     "1 while a flapping proxy is held unhealthy.", METRICS_GAUGE,
                     hs[i].suppressed ? 1.0 : 0.0, "proxy", hs[i].host, NULL);
        metrics_emit(em, "drover_watcher_director_health_checks_total",
                     "Health checks run per proxy.", METRICS_COUNTER, (double)hs[i].checks, "proxy",
                     hs[i].host, NULL);
        metrics_emit(em, "drover_watcher_director_health_failures_total",
                     "Failed health checks per proxy.", METRICS_COUNTER, (double)hs[i].failures,
                     "proxy", hs[i].host, NULL);
        metrics_emit(em, "drover_watcher_director_health_checks_late_total",
                     "Health checks not judged because this process stalled during them "
                     "(stopped, starved, busy loop).",
                     METRICS_COUNTER, (double)hs[i].late, "proxy", hs[i].host, NULL);
    }
    metrics_emit(em, "drover_watcher_director_last_change_timestamp_seconds",
                 "When the applied table last changed.", METRICS_GAUGE, (double)w->last_change,
                 NULL);
    metrics_emit(em, "drover_watcher_director_generation", "Active generation written by us.",
                 METRICS_GAUGE, (double)w->generation, NULL);
    if (w->consul)
        consul_stats_emit(consul_client_stats(w->consul), em, "watcher_director");
    if (w->pin_dir)
        director_metrics_emit(em, w->pin_dir, dopt.dev, false);
}

static void setup_metrics(struct dw *w)
{
    struct metrics_registry *r = w->metrics;
    w->m_applies =
        metrics_counter(r, "drover_watcher_director_applies_total",
                        "Generations published into the director maps and verified.", NULL);
    w->m_held = metrics_counter(r, "drover_watcher_director_held_total",
                                "Apply runs that held a KV change back (moved-share guard).", NULL);
    w->m_errors = metrics_counter(r, "drover_watcher_director_apply_errors_total",
                                  "Apply runs that failed (maps kept their generation).", NULL);
    w->m_verify = metrics_counter(r, "drover_watcher_director_verifies_total",
                                  "Periodic checks of the maps against the applied table.", NULL);
    w->m_bad = metrics_counter(r, "drover_watcher_director_kv_bad_entries_total",
                               "Bad director KV entries skipped or kept at their last good value.",
                               "prefix=\"director\"");
    w->m_held_now = metrics_gauge(r, "drover_watcher_director_held",
                                  "1 while a KV change is held back by the guard.", NULL);
    w->m_moved = metrics_gauge(r, "drover_watcher_director_held_moved_share",
                               "Share of rows the held change would move.", NULL);
    w->m_ready =
        metrics_gauge(r, "drover_watcher_director_ready",
                      "1 once a table was applied or verified and its snapshot written.", NULL);
    w->m_snap_errors =
        metrics_counter(r, "drover_watcher_director_snapshot_errors_total",
                        "Snapshot writes that failed (not ready while failing).", NULL);
    metrics_add_collector(r, collect, w);
}

static void status_stopped(void *arg)
{
    struct dw *w = arg;
    consul_client_free(w->consul);
    w->consul = NULL;
}

/* The first SIGTERM/SIGINT (daemon_signals logged it and sent STOPPING=1). */
static void on_stop(void *arg, int signum)
{
    struct dw *w = arg;
    (void)signum;
    w->stopping = true;
    director_feed_stop(w->feed);
    w->feed = NULL;
    if (w->chealth)
        consul_watch_stop(w->chealth);
    w->chealth = NULL;
    frontdoor_kv_stop(w->fd_kv);
    /* the session goes first: Consul deletes the status entry with it */
    host_status_stop(w->status, status_stopped, w);
    w->status = NULL;
    director_health_free(w->health);
    w->health = NULL;
    curl_uv_free(w->cu);
    w->cu = NULL;
    daemon_serving_stop(&w->http, &w->wd);
    uv_close((uv_handle_t *)&w->due, NULL);
    uv_close((uv_handle_t *)&w->verify, NULL);
    if (w->frontdoor) {
        /* the routes stay: the host forwards with the table in force; the
         * guard withdraws them if XDP goes away while we are not running */
        uv_close((uv_handle_t *)&w->fd_timer, NULL);
        frontdoor_agent_free(w->frontdoor);
        w->frontdoor = NULL;
    }
    daemon_signals_close(&w->sig);
}

/* ---- front door ---- */

static int64_t mono_ms(void)
{
    return (int64_t)uv_hrtime() / 1000000;
}

/* Is drover's director program attached to --dev? why says what is not. */
static bool xdp_attached(char *why, size_t len)
{
    struct director_attach_opts ao = {.dev = dopt.dev, .pin_root = dopt.pin_root};
    __u32 attached = 0, ours = 0;
    int rc = director_loader_prog_ids(&ao, DIRECTOR_PROG_PIN, &attached, &ours);

    if (rc < 0)
        snprintf(why, len, "cannot query XDP on %s: %s", dopt.dev, strerror(-rc));
    else if (!attached)
        snprintf(why, len, "XDP director not attached to %s", dopt.dev);
    else if (attached != ours)
        snprintf(why, len, "XDP program %u on %s is not drover's director", attached, dopt.dev);
    else
        return true;
    return false;
}

/* The inputs the front door judges: those of the table in force. While
 * Consul's are held back (empty after a restart, invalid, over the shrink
 * guard) the table keeps serving the applied ones, and so do the routes;
 * the latest KV inputs only before anything was applied. */
static const struct director_inputs *inputs_in_force(const struct dw *w)
{
    return w->applied ? w->applied : w->in;
}

/* The director host's serving conditions, the same for every VIP: XDP
 * attached, the generation in force is the one built from Consul's inputs
 * (and verified), at least one proxy of the inputs in force healthy. While
 * Consul is unreachable or comes back empty the inputs in force are the
 * last good ones (or the snapshot), so an outage never withdraws anything
 * by itself (fail static holds for routes too). */
static bool director_serving(struct dw *w, char *why, size_t len)
{
    const struct director_inputs *in = inputs_in_force(w);
    struct director_live l = {0};
    size_t healthy = 0;

    if (!xdp_attached(why, len))
        return false;
    if (!w->applied_ok) {
        snprintf(why, len, "no table applied and verified yet");
        return false;
    }
    if (director_live_read(w->pin_dir, false, &l) < 0) {
        snprintf(why, len, "cannot read the generation in force from %s", w->pin_dir);
        return false;
    }
    uint64_t live = l.checksum;
    director_live_free(&l);
    if (live != w->gen_checksum) {
        snprintf(why, len, "generation in force %016llx is not the one built from Consul %016llx",
                 (unsigned long long)live, (unsigned long long)w->gen_checksum);
        return false;
    }
    for (size_t i = 0; in && i < in->n_proxies; i++)
        if (in->proxies[i].state != DIRECTOR_PROXY_INACTIVE &&
            director_health_healthy(w->health, in->proxies[i].host))
            healthy++;
    if (!healthy) {
        snprintf(why, len, "no healthy proxy");
        return false;
    }
    return true;
}

/* R frontdoor/status/<host> (frontdoor_kv): what this host announces and
 * why, its table checksum (directors of a cluster must agree) and its
 * packet counter (droverctl host drain --wait). */
static void publish_status(struct dw *w)
{
    struct director_stat stats[DIRECTOR_STATS_MAX];
    size_t ns = DIRECTOR_STATS_MAX;
    uint64_t packets = 0;

    if (!w->fd_kv)
        return;
    if (director_stats_read_pinned(w->pin_dir, false, stats, &ns) == 0)
        for (size_t i = 0; i < ns; i++)
            if (!strcmp(stats[i].name, "encap_v4") || !strcmp(stats[i].name, "encap_v6"))
                packets += stats[i].value;
    frontdoor_kv_publish(w->fd_kv, dopt.cluster, w->have_table ? w->checksum : "", packets);
}

static void on_frontdoor(uv_timer_t *t)
{
    struct dw *w = t->data;
    struct frontdoor_verdict *v = NULL;
    char why[256];
    const struct director_inputs *in = inputs_in_force(w);
    size_t n = in ? in->n_vips : 0;

    if (w->stopping || !w->health)
        return;
    bool ok = director_serving(w, why, sizeof(why));
    if (n && !(v = calloc(n, sizeof(*v)))) {
        log_error("frontdoor: out of memory; keeping the routes this round");
        return;
    }
    for (size_t i = 0; i < n; i++)
        v[i] = (struct frontdoor_verdict){
            .address = in->vips[i].address, .ok = ok, .reason = ok ? NULL : why};
    frontdoor_agent_round(w->frontdoor, v, n, mono_ms());
    free(v);
    publish_status(w);
}

static struct frontdoor_agent_opts frontdoor_opts(void)
{
    return (struct frontdoor_agent_opts){
        .bird_socket = dopt.bird_socket,
        .bird_include = dopt.bird_include,
        .bird_bin = dopt.bird_bin,
        .state_file = dopt.frontdoor_state,
        .params = {.rise = (unsigned)dopt.frontdoor_rise,
                   .fall = (unsigned)dopt.frontdoor_fall,
                   .drain_withdraw_ms = dopt.frontdoor_drain_ms,
                   .flap_half_life_ms = dopt.frontdoor_half_life_ms},
    };
}

static int frontdoor_start(struct dw *w)
{
    struct frontdoor_agent_opts o = frontdoor_opts();
    int rc;

    if (!dopt.bird_socket || !*dopt.bird_socket)
        return 0;
    if ((rc = frontdoor_agent_new(w->loop, &o, w->metrics, &w->frontdoor)) < 0) {
        log_error("frontdoor: cannot start: %s", strerror(-rc));
        return rc;
    }
    struct frontdoor_kv_opts ko = {
        .kv_prefix = dopt.consul.kv_prefix,
        .host = dopt.host_name, /* host_status_check_opts() gave it its default */
        .wait_s = (unsigned)(dopt.consul_wait_ms / 1000),
        .agent = w->frontdoor,
        .m_bad = w->m_bad,
    };
    if ((rc = frontdoor_kv_start(w->consul, &ko, &w->fd_kv)) < 0) {
        log_error("frontdoor: drain and status records: %s; cannot start", strerror(-rc));
        return rc;
    }
    uv_timer_init(w->loop, &w->fd_timer);
    w->fd_timer.data = w;
    uv_timer_start(&w->fd_timer, on_frontdoor, (uint64_t)dopt.frontdoor_interval_ms,
                   (uint64_t)dopt.frontdoor_interval_ms);
    log_info("frontdoor: announcing VIPs through BIRD %s (include %s) every %lld ms, rise %lld, "
             "fall %lld",
             dopt.bird_socket, dopt.bird_include, (long long)dopt.frontdoor_interval_ms,
             (long long)dopt.frontdoor_rise, (long long)dopt.frontdoor_fall);
    return 0;
}

/* `frontdoor-guard`: who withdraws when the daemon is dead (docs/frontdoor.md). */
static int frontdoor_guard(void)
{
    struct frontdoor_agent_opts o = frontdoor_opts();
    char why[256], err[2048];
    bool acted = false;

    if (!dopt.dev || !*dopt.dev) {
        fprintf(stderr, "drover-watcher director frontdoor-guard: --dev is required\n");
        return 2;
    }
    if (!dopt.bird_socket || !*dopt.bird_socket) {
        log_debug("frontdoor-guard: no --bird-socket: the front door is off, nothing to guard");
        return 0;
    }
    bool serving = xdp_attached(why, sizeof(why));
    int rc = frontdoor_agent_guard(&o, dopt.frontdoor_lease_ms, serving, &acted, err, sizeof(err));
    if (rc < 0) {
        log_error("frontdoor-guard: cannot withdraw the VIPs (%s): %s; the next run retries", why,
                  err);
        return 1;
    }
    if (acted)
        log_warn("frontdoor-guard: daemon not running (state %s older than %lld ms) and %s: every "
                 "VIP withdrawn from BIRD",
                 dopt.frontdoor_state, (long long)dopt.frontdoor_lease_ms, why);
    return 0;
}

static int run(void)
{
    struct dw w = {0};
    int rc;
    char *dir = pin_dir();

    if (!dopt.cluster || !*dopt.cluster || !dopt.dev || !*dopt.dev) {
        fprintf(stderr, "drover-watcher director run: --director-cluster and --dev are required\n");
        free(dir);
        return 2;
    }
    w.loop = uv_default_loop();
    w.metrics = metrics_registry_new();
    if (!w.metrics || !dir)
        return 1;
    setup_metrics(&w);
    backoff_init(&w.retry, 250, 30000, BACKOFF_DECORRELATED);
    char *prefix = NULL;
    if (asprintf(&prefix, "%sdirector/%s/", dopt.consul.kv_prefix, dopt.cluster) < 0)
        return 1;
    struct director_apply_opts ao = {
        .pin_dir = dir,
        .snapshot_path = dopt.snapshot_file && *dopt.snapshot_file ? dopt.snapshot_file : NULL,
        .kv_root = dopt.consul.kv_prefix,
        .cluster = dopt.cluster,
        .dev = dopt.dev,
        .default_max_moved_share = dopt.max_moved_share,
    };
    /* one stall measurement of the loop for both the health checks and
     * the Consul client (each keeps a reference) */
    struct loop_lag *lag = NULL;
    if ((rc = director_apply_new(&ao, &w.apply)) < 0 || (rc = curl_uv_new(w.loop, &w.cu)) < 0 ||
        (rc = loop_lag_new(w.loop, &lag)) < 0) {
        log_error("director: cannot start: %s", strerror(-rc));
        return 1;
    }
    struct director_health_opts ho = {
        .params = {.interval_ms = dopt.health_interval_ms,
                   .timeout_ms = dopt.health_timeout_ms,
                   .rise = (unsigned)dopt.health_rise,
                   .fall = (unsigned)dopt.health_fall},
        .default_port = (uint16_t)dopt.health_port,
        .default_path = dopt.health_path,
        .on_change = director_main_on_health_change,
        .arg = &w,
        .loop_lag = lag,
    };
    if ((rc = director_health_new(w.loop, w.cu, &ho, &w.health)) < 0)
        return 1;
    uv_timer_init(w.loop, &w.due);
    uv_timer_init(w.loop, &w.verify);
    w.due.data = w.verify.data = &w;
    w.wait_ms = (uint64_t)dopt.wait_ms;
    if (daemon_metrics_start(w.loop, "director", dopt.metrics_addr, w.metrics, w.m_ready,
                             "no table applied yet", &w.http) < 0)
        return 1;
    dconsul_cfg.loop_lag = lag;
    rc = consul_client_new(w.loop, &dconsul_cfg, &w.consul);
    loop_lag_unref(lag); /* the health checks' and the client's references remain */
    if (rc < 0) {
        log_error("director: consul client for %s: %s; cannot start", dconsul_cfg.address,
                  strerror(-rc));
        return 1;
    }
    consul_client_observe_latency(w.consul, w.metrics,
                                  "watcher_director"); /* fails only without memory */
    char *skey = kv_status_key(dopt.consul.kv_prefix, dopt.host_name, KV_STATUS_ROLE_DIRECTOR);
    struct host_status_opts hso = {.key = skey,
                                   .ttl_s = (unsigned)(dopt.status_ttl_ms / 1000),
                                   .fill = status_fill,
                                   .arg = &w};
    w.started_unix = w.status_unix = time(NULL);
    if (!skey || (rc = host_status_start(w.loop, w.consul, &hso, &w.status)) < 0) {
        log_error("director: status entry for host %s: %s; cannot start", dopt.host_name,
                  skey ? strerror(-rc) : "not a valid key segment");
        free(skey);
        return 1;
    }
    free(skey);
    director_main_load_snapshot(&w, dopt.snapshot_file);
    struct director_feed_opts fo = {
        .prefix = prefix,
        .wait_s = (unsigned)(dopt.consul_wait_ms / 1000),
        .on_inputs = director_main_on_inputs,
        .on_error = director_main_on_feed_error,
        .current = director_main_feed_current,
        .arg = &w,
    };
    if ((rc = director_feed_start(w.consul, &fo, &w.feed)) < 0) {
        log_error("director: cannot start the Consul watch on %s: %s", prefix, strerror(-rc));
        return 1;
    }
    if (dopt.consul_health_service && *dopt.consul_health_service) {
        struct consul_watch_opts wo = {
            .kind = CONSUL_WATCH_HEALTH_SERVICE,
            .target = dopt.consul_health_service,
            .wait_s = (unsigned)(dopt.consul_wait_ms / 1000),
            .on_change = director_main_on_consul_health,
            .arg = &w,
        };
        if ((rc = consul_watch_start(w.consul, &wo, &w.chealth)) < 0)
            log_warn("director: cannot watch Consul health of %s: %s; using own checks only",
                     dopt.consul_health_service, strerror(-rc));
    }
    uv_timer_start(&w.verify, director_main_on_verify, (uint64_t)dopt.verify_ms,
                   (uint64_t)dopt.verify_ms);
    w.pin_dir = dir;
    if (frontdoor_start(&w) < 0)
        return 1;
    sdnotify_watchdog_start(w.loop, &w.wd);
    struct daemon_signal_opts so = {.component = "director",
                                    .stop_note =
                                        "(the director keeps forwarding with the table in force)",
                                    .on_stop = on_stop,
                                    .arg = &w};
    if (daemon_signals_start(w.loop, &w.sig, &so) < 0)
        return 1;
    log_info("director: running (cluster %s, KV %s, maps %s)", dopt.cluster, prefix, dir);
    uv_run(w.loop, UV_RUN_DEFAULT);

    director_inputs_free(w.in);
    director_inputs_free(w.applied);
    director_apply_free(w.apply);
    free(w.rows);
    metrics_registry_free(w.metrics);
    uv_loop_close(w.loop);
    frontdoor_kv_free(w.fd_kv);
    free(prefix);
    free(dir);
    return 0;
}

int director_main(int argc, char **argv)
{
    char err[512];
    int cmd = -1, rc;

    log_set_component("watcher-director");
    log_route_libbpf();
    /* argv[0] is "director"; options may come before and after the verb */
    rc = config_parse_command(&dprogram, argc, argv, &cmd, NULL, err, sizeof(err));
    if (rc == CONFIG_HELP_SHOWN)
        return 0;
    if (rc == 0)
        rc = consul_options_config(&dopt.consul, &dconsul_cfg, err, sizeof(err));
    if (rc == 0 && cmd != DCMD_STATUS)
        rc = host_status_check_opts(&dopt.host_name, dopt.status_ttl_ms, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "drover-watcher director: %s\n", err);
        config_free(&dprogram);
        return 2;
    }
    rc = cmd == DCMD_STATUS
             ? director_main_status(dopt.dev, dopt.pin_root, dopt.snapshot_file, dopt.json)
         : cmd == DCMD_GUARD ? frontdoor_guard()
                             : run();
    config_free(&dprogram);
    return rc;
}
