/* SPDX-License-Identifier: Apache-2.0 */
/*
 * drover-watcher (HAProxy side): Consul KV -> HAProxy with zero-reload
 * churn, checked reloads and fail-static. This file only wires modules
 * (docs/watcher.md has the whole picture):
 *
 *   options -> struct haproxy_engine_opts / kv_model_opts / consul config;
 *   consul_feed (complete reads -> snapshots) -> haproxy_engine (plans,
 *   guards, runtime applies, checked installs and reloads, agent state and
 *   snapshot files); readiness (/readyz, sd_notify) once the engine
 *   applied a snapshot; SIGHUP reloads the templates into the engine,
 *   SIGTERM stops it; the metrics server.
 *
 * Subcommands: run (default), render --diff, render --snapshot FILE --out DIR;
 * `director ...` hands over to director_main() (the director side).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "atomic_file.h"
#include "config.h"
#include "consul.h"
#include "consul_options.h"
#include "daemon.h"
#include "errmsg.h"
#include "file_diff.h"
#include "consul_feed.h"
#include "anycast_main.h"
#include "director_main.h"
#include "haproxy_answers.h"
#include "haproxy_engine.h"
#include "host_status.h"
#include "http_server.h"
#include "kv_key.h"
#include "kv_status.h"
#include "haproxy_value.h"
#include "log.h"
#include "loop_lag.h"
#include "director_metrics.h"
#include "director_publish.h"
#include "metrics.h"
#include "render.h"
#include "render_files.h"
#include "sdnotify.h"
#include "slots.h"
#include "snapshot.h"
#include "str_affix.h"
#include "tls_files.h"
#include "version.h"

/* where haproxy-templates/ is installed (set by CMake from the prefix) */
#ifndef DROVER_TEMPLATE_DIR
#define DROVER_TEMPLATE_DIR "/usr/local/share/drover/haproxy-templates"
#endif

struct options {
    struct consul_options consul;
    char *haproxy_cluster;
    struct config_strlist kube_clusters;
    char *zone;
    char *template_dir, *config_dir, *haproxy_bin;
    char *master_socket, *stats_socket, *state_file;
    char *agent_state_file, *agent_addr;
    int64_t agent_port, agent_interval_ms;
    char *snapshot_file;
    int64_t wait_min_ms, wait_max_ms, runtime_wait_ms;
    double max_removal_share;
    char *metrics_addr;
    int64_t maxconn, timeout_connect_ms, timeout_client_ms, timeout_server_ms;
    int64_t consul_wait_ms;
    int64_t service_watches;
    int64_t resync_ms;
    char *host_name;
    int64_t status_ttl_ms;
    char *decap_dev, *pin_root;
    bool run_haproxy;
    int64_t probe_ms;
    int64_t cert_poll_ms;
};

static struct options opt;

static const struct config_option options[] = {
    CONFIG_OPT_STRING("haproxy-cluster", &opt.haproxy_cluster, NULL,
                      "proxy-fleet cluster served: reads haproxy/<cluster>/ (required)"),
    CONFIG_OPT_STRLIST(
        "kube-cluster", &opt.kube_clusters, NULL,
        "Kubernetes cluster whose kube/<cluster>/ entries are consumed (repeatable)"),
    CONFIG_OPT_STRING("zone", &opt.zone, NULL,
                      "this proxy host's zone: backends with prefer_local_zone send traffic to "
                      "nodes whose zone is this one, the others are backups"),
    CONFIG_OPT_STRING("template-dir", &opt.template_dir, DROVER_TEMPLATE_DIR,
                      "mustache templates (NAME.mustache, partials/)"),
    CONFIG_OPT_STRING("config-dir", &opt.config_dir, RENDER_CONFIG_DIR_DEFAULT,
                      "where <service>.cfg files are installed"),
    CONFIG_OPT_STRING("haproxy-bin", &opt.haproxy_bin, "haproxy", "haproxy binary for -c checks"),
    CONFIG_OPT_STRING("haproxy-master-socket", &opt.master_socket,
                      "/run/drover/haproxy-{service}.master",
                      "master CLI socket (-S) of each service's HAProxy; {service} = its name"),
    CONFIG_OPT_STRING("haproxy-stats-socket", &opt.stats_socket,
                      "/run/drover/haproxy-{service}.sock",
                      "admin stats socket of each service's HAProxy (rendered into the config)"),
    CONFIG_OPT_STRING("haproxy-state-file", &opt.state_file,
                      "/var/lib/drover/haproxy-{service}.state",
                      "server-state file written before every reload"),
    CONFIG_OPT_STRING("agent-state-file", &opt.agent_state_file,
                      "/var/lib/drover/agent-checker/state.json",
                      "agent-checker state file (JSON, atomic writes)"),
    CONFIG_OPT_STRING("agent-addr", &opt.agent_addr, "127.0.0.1",
                      "address HAProxy's agent checks connect to"),
    CONFIG_OPT_INT("agent-port", &opt.agent_port, "5555", 1, 65535, "agent-checker port"),
    CONFIG_OPT_DURATION("agent-interval", &opt.agent_interval_ms, "2s", "agent-inter"),
    CONFIG_OPT_STRING("snapshot-file", &opt.snapshot_file, "/var/lib/drover/watcher/snapshot.pb",
                      "last good snapshot (protobuf), loaded at start when Consul is down"),
    CONFIG_OPT_DURATION("wait-min", &opt.wait_min_ms, "200ms",
                        "structural changes: quiet time before render + reload"),
    CONFIG_OPT_DURATION("wait-max", &opt.wait_max_ms, "2s",
                        "structural changes: longest delay of a burst"),
    CONFIG_OPT_DURATION("runtime-wait", &opt.runtime_wait_ms, "2ms",
                        "runtime-API changes: coalescing window (a change that finds no "
                        "apply in flight and none this recent goes out at once)"),
    CONFIG_OPT_DOUBLE("max-removal-share", &opt.max_removal_share, "0.5",
                      "hold changes removing more than this share of a backend's servers"),
    CONFIG_OPT_STRING("metrics-addr", &opt.metrics_addr, "127.0.0.1:9108",
                      "address for /metrics, /healthz and /readyz; empty = none"),
    CONFIG_OPT_INT("haproxy-maxconn", &opt.maxconn, "50000", 1, 10000000, "global maxconn"),
    CONFIG_OPT_DURATION("timeout-connect", &opt.timeout_connect_ms, "5s",
                        "default timeout connect"),
    CONFIG_OPT_DURATION("timeout-client", &opt.timeout_client_ms, "30s", "default timeout client"),
    CONFIG_OPT_DURATION("timeout-server", &opt.timeout_server_ms, "30s", "default timeout server"),
    CONFIG_OPT_DURATION("consul-wait", &opt.consul_wait_ms, "5m", "blocking query wait"),
    CONFIG_OPT_INT("service-watches", &opt.service_watches, "32", 0, 150,
                   "most referenced kube services watched one by one (then per namespace, then "
                   "kube/<cluster>/services/ whole); 0 = always whole"),
    CONFIG_OPT_DURATION("resync-interval", &opt.resync_ms, "1m",
                        "re-apply every placement this often (HAProxy restarted or changed by "
                        "hand); 0 = never"),
    {.name = "host-name",
     .alias = "status-host",
     .type = CONFIG_STRING,
     .target.str = &opt.host_name,
     .help = "name of this host in its status entry status/<host>/haproxy (default: the "
             "hostname; --status-host is the former name)"},
    CONFIG_OPT_STRING("decap-dev", &opt.decap_dev, NULL,
                      "device with drover-director's decap program: its counters on /metrics "
                      "(drover_decap_*; empty = none)"),
    CONFIG_OPT_STRING("pin-root", &opt.pin_root, DIRECTOR_PIN_ROOT,
                      "bpffs pin root of --decap-dev's maps (<pin-root>/<dev>)"),
    CONFIG_OPT_DURATION("status-ttl", &opt.status_ttl_ms, "15s",
                        "session TTL of the status entry (10s..24h): it disappears this long "
                        "(Consul: up to twice as long) after the host stops renewing it"),
    CONFIG_OPT_BOOL("haproxy-run", &opt.run_haproxy, "false",
                    "start each service's HAProxy (-W -S) from its installed config and start it "
                    "again when it dies (hosts without systemd; with systemd use "
                    "haproxy@.service)"),
    CONFIG_OPT_DURATION("haproxy-probe-interval", &opt.probe_ms, "200ms",
                        "`show proc` on every HAProxy (and `show info` on its worker, which must "
                        "answer within 4 intervals) this often: a death is noticed (logged, "
                        "counted, /readyz) within it; 0 = no probing"),
    CONFIG_OPT_DURATION("cert-poll-interval", &opt.cert_poll_ms, "1s",
                        "stat the certificate files of TLS frontends this often; a changed one "
                        "is swapped through the runtime API (no reload); 0 = not watched"),
    CONFIG_OPT_END,
};

static const struct config_group groups[] = {
    CONSUL_OPTION_GROUP(&opt.consul),
    CONFIG_GROUP_END,
};

/* render's own flags */
static struct {
    bool diff;
    char *snapshot, *out;
} ropt;

static const struct config_option render_options[] = {
    CONFIG_OPT_BOOL("diff", &ropt.diff, "false",
                    "render from Consul and diff against the installed configs (exit 3: differ)"),
    {.name = "snapshot",
     .type = CONFIG_STRING,
     .target.str = &ropt.snapshot,
     .metavar = "FILE",
     .help = "render from this snapshot file instead of Consul"},
    {.name = "out",
     .type = CONFIG_STRING,
     .target.str = &ropt.out,
     .metavar = "DIR",
     .help = "write <service>.cfg and agent-state.json into DIR"},
    CONFIG_OPT_END,
};

enum { CMD_RUN, CMD_RENDER, CMD_DIRECTOR, CMD_ANYCAST };
static const struct config_command commands[] = {
    [CMD_RUN] = {.name = "run", .summary = "watch Consul and drive HAProxy (the default)"},
    [CMD_RENDER] = {.name = "render",
                    .args_usage = "--diff | [--snapshot FILE] --out DIR",
                    .summary = "render and check every service's config once, then exit",
                    .options = render_options},
    [CMD_DIRECTOR] = {.name = "director",
                      .args_usage = "[OPTIONS] [run | status]",
                      .summary = "the director side (first word; `director --help`)",
                      .own_args = true},
    [CMD_ANYCAST] = {.name = "anycast",
                     .args_usage = "[OPTIONS] [run]",
                     .summary = "front door of an anycast proxy host: VIPs through BIRD 2 while "
                                "served (first word; `anycast --help`)",
                     .own_args = true},
    CONFIG_COMMAND_END,
};

static const struct config_program program = {
    .name = "drover-watcher",
    .summary = "Drive HAProxy (runtime API, checked reloads) and the agent-checker from Consul KV.",
    .options = options,
    .groups = groups,
    .commands = commands,
};

/* built from opt.consul once the options are parsed */
static struct consul_config consul_cfg;

/* The daemon: the feed, the engine and the plumbing around them. */
struct watcher {
    uv_loop_t *loop;
    struct kv_model_opts model;
    struct haproxy_engine_opts eo;
    struct haproxy_engine *engine;
    struct consul_client *consul;
    struct consul_feed *feed;
    struct http_server *http;
    struct metrics_registry *metrics;
    struct sdnotify_watchdog *watchdog;
    struct daemon_signals sig;
    bool ready, stopping;
    struct host_status *status; /* R status/<host>/haproxy */
    int64_t started_unix, status_unix;
    char last_error[KV_STATUS_ERROR_MAX];
    bool haproxy_down;        /* a probed HAProxy instance is down */
    char haproxy_reason[256]; /* which one */
    struct metrics_counter *m_consul_errors, *m_tpl_reloads, *m_tpl_reload_failures;
    struct metrics_gauge *m_ready, *m_last_apply;
    char decap_pin_dir[512]; /* --decap-dev's pins; "" = none */
    struct metrics_histogram *m_change_apply;
    uint64_t change_since; /* uv_hrtime() of the first snapshot not yet applied; 0: none */
};

static void model_opts(struct kv_model_opts *m)
{
    m->root = opt.consul.kv_prefix;
    m->haproxy_cluster = opt.haproxy_cluster;
    m->kube_clusters = (const char *const *)opt.kube_clusters.items;
    m->n_kube_clusters = opt.kube_clusters.count;
    m->zone = opt.zone && *opt.zone ? opt.zone : NULL;
}

/* The engine's options from the command line (strings borrowed from opt). */
static void engine_opts(struct haproxy_engine_opts *eo, const struct kv_model_opts *m)
{
    *eo = (struct haproxy_engine_opts){
        .model = m,
        .haproxy_cluster = opt.haproxy_cluster,
        .config_dir = opt.config_dir,
        .haproxy_bin = opt.haproxy_bin,
        .master_socket = opt.master_socket,
        .stats_socket = opt.stats_socket,
        .state_file = opt.state_file,
        .agent_state_file = opt.agent_state_file,
        .agent_addr = opt.agent_addr,
        .agent_port = (uint16_t)opt.agent_port,
        .agent_interval_ms = opt.agent_interval_ms,
        .snapshot_file = opt.snapshot_file,
        .wait_min_ms = opt.wait_min_ms,
        .wait_max_ms = opt.wait_max_ms,
        .runtime_wait_ms = opt.runtime_wait_ms,
        .max_removal_share = opt.max_removal_share,
        .maxconn = opt.maxconn,
        .timeout_connect_ms = opt.timeout_connect_ms,
        .timeout_client_ms = opt.timeout_client_ms,
        .timeout_server_ms = opt.timeout_server_ms,
        .resync_ms = opt.resync_ms,
        .run_haproxy = opt.run_haproxy,
        .probe_ms = opt.probe_ms,
        .cert_poll_ms = opt.cert_poll_ms,
        /* the status entry's renewal cadence: the counters it reports are
         * at most that old, and they add at most one write per period */
        .errors_ms = opt.status_ttl_ms / 3,
    };
}

struct refused_detail {
    char text[1024];
    size_t len;
};

static void add_refused(void *arg, const struct haproxy_engine_service_status *s)
{
    struct refused_detail *d = arg;
    if (!s->refused || d->len >= sizeof(d->text))
        return;
    int n = snprintf(d->text + d->len, sizeof(d->text) - d->len, "%sservice %s: %s",
                     d->len ? "; " : "", s->name, s->error ? s->error : "definition refused");
    d->len += n > 0 ? (size_t)n : 0;
}

/* /readyz and drover_watcher_ready: a snapshot applied and every HAProxy
 * instance up (the director's health check of this proxy host can point
 * here: docs/director-watcher.md). READY=1 to systemd needs the snapshot
 * only: haproxy@.service starts after the watcher. A refused definition
 * leaves the host serving (its running config gets the server changes):
 * a detail line, not unreadiness. */
static void update_ready(struct watcher *w)
{
    struct refused_detail d = {.len = 0};
    daemon_set_ready(w->http, w->m_ready, w->ready && !w->haproxy_down,
                     !w->ready ? "no snapshot applied yet" : w->haproxy_reason);
    if (!w->http)
        return;
    if (w->engine)
        haproxy_engine_each_service(w->engine, add_refused, &d);
    if (d.len && d.len < sizeof(d.text))
        snprintf(d.text + d.len, sizeof(d.text) - d.len,
                 " (the running config stays and gets server changes)");
    http_server_set_ready_detail(w->http, d.text);
}

static void on_engine_health(void *arg, bool all_up, const char *reason)
{
    struct watcher *w = arg;
    w->haproxy_down = !all_up;
    snprintf(w->haproxy_reason, sizeof(w->haproxy_reason), "%s", reason ? reason : "");
    update_ready(w);
}

/* The engine applied (part of) a snapshot: ready from the first one on. */
static void on_engine_applied(void *arg, const struct snapshot *snap)
{
    struct watcher *w = arg;
    metrics_gauge_set(w->m_last_apply, (double)time(NULL));
    if (w->change_since) {
        metrics_histogram_observe(w->m_change_apply, (double)(uv_hrtime() - w->change_since) / 1e9);
        w->change_since = 0;
    }
    if (!w->ready) {
        w->ready = true;
        update_ready(w);
        sdnotify_ready();
        log_info("watcher: first snapshot applied; ready");
    }
    sdnotify_status("serving snapshot %016llx (%zu services)",
                    (unsigned long long)snap->inputs_hash, snap->n_services);
}

/* ---- status entry (R status/<host>/haproxy) ---- */

static void on_engine_status(void *arg)
{
    struct watcher *w = arg;
    w->status_unix = time(NULL);
    host_status_changed(w->status);
    update_ready(w); /* a refusal's detail line */
}

struct status_fill {
    struct watcher *w;
    struct kv_status_rec r;
    char (*hashes)[17];
    size_t cap_svcs, cap_guards;
    bool oom;
};

/* The committed slots of service's static servers ("slots" of its status
 * entry: droverctl status <backend>/<server> shows them). Strings owned by
 * the returned array (slot_list_free). */
static struct kv_status_slot *static_slots(const struct watcher *w, const char *service, size_t *n)
{
    const struct snapshot *snap = haproxy_engine_snapshot(w->engine);
    const struct snapshot_service *ss = NULL;
    struct kv_status_slot *out = NULL;
    size_t cap = 0;

    *n = 0;
    for (size_t i = 0; snap && i < snap->n_services && !ss; i++)
        if (!strcmp(snap->services[i].def->name, service))
            ss = &snap->services[i];
    for (size_t b = 0; ss && b < ss->n_backends; b++) {
        const struct snapshot_backend *be = &ss->backends[b];
        const struct slot_assignment *a = haproxy_engine_committed(w->engine, be->def->name);
        for (size_t k = 0; a && k < be->n_servers; k++) {
            long at = be->servers[k].static_name ? slot_assignment_find(a, be->servers[k].id) : -1;
            char slot[32];
            if (at < 0 || slots_name((size_t)at, slot, sizeof(slot)) < 0)
                continue;
            if (*n == cap) {
                cap = cap ? cap * 2 : 8;
                struct kv_status_slot *g = realloc(out, cap * sizeof(*out));
                if (!g)
                    break;
                out = g;
            }
            out[*n].server = kv_key_printf("%s/%s", be->def->name, be->servers[k].static_name);
            out[*n].slot = strdup(slot);
            (*n)++;
        }
    }
    return out;
}

static void slot_list_free(struct kv_status_slot *l, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(l[i].server);
        free(l[i].slot);
    }
    free(l);
}

static int64_t clamp_i64(uint64_t v)
{
    return v > INT64_MAX ? INT64_MAX : (int64_t)v;
}

static void fill_service(void *arg, const struct haproxy_engine_service_status *s)
{
    struct status_fill *f = arg;
    if (f->r.n_services == f->cap_svcs) {
        size_t cap = f->cap_svcs ? f->cap_svcs * 2 : 8;
        void *a = realloc(f->r.services, cap * sizeof(*f->r.services));
        void *b = a ? realloc(f->hashes, cap * sizeof(*f->hashes)) : NULL;
        if (a)
            f->r.services = a;
        if (b)
            f->hashes = b;
        if (!a || !b) {
            f->oom = true;
            return;
        }
        f->cap_svcs = cap;
    }
    char path[PATH_MAX], *buf = NULL, *hex = f->hashes[f->r.n_services];
    size_t len = 0;
    hex[0] = '\0';
    snprintf(path, sizeof(path), "%s/%s.cfg", opt.config_dir, s->name);
    if (render_read_file(path, &buf, &len) == 0)
        kv_hash64_hex(buf ? buf : "", len, hex);
    free(buf);
    struct kv_status_service *out = &f->r.services[f->r.n_services++];
    *out = (struct kv_status_service){.name = (char *)s->name,
                                      .definition = (char *)s->definition,
                                      .config_hash = hex,
                                      .reloads = s->reloads,
                                      .error = (char *)s->error};
    if (s->errors) {
        out->have_errors = true;
        out->errors = (struct kv_status_errors){.requests = clamp_i64(s->errors->requests),
                                                .req_errors = clamp_i64(s->errors->req_errors),
                                                .conn_errors = clamp_i64(s->errors->conn_errors),
                                                .resp_errors = clamp_i64(s->errors->resp_errors),
                                                .http_5xx = clamp_i64(s->errors->http_5xx)};
    }
    out->slots = static_slots(f->w, s->name, &out->n_slots);
    for (size_t i = 0; i < out->n_slots; i++)
        if (!out->slots[i].server || !out->slots[i].slot)
            f->oom = true;
}

/* Add a held guard (text taken over). */
static void push_guard(struct status_fill *f, char *text)
{
    if (text && f->r.n_guards + 1 > f->cap_guards) {
        size_t cap = f->cap_guards ? f->cap_guards * 2 : 8;
        char **g = realloc(f->r.guards, cap * sizeof(*g));
        if (g) {
            f->r.guards = g;
            f->cap_guards = cap;
        }
    }
    if (!text || f->r.n_guards + 1 > f->cap_guards) {
        free(text);
        f->oom = true;
        return;
    }
    f->r.guards[f->r.n_guards++] = text;
}

static void fill_held_maint(void *arg, const char *id)
{
    push_guard(arg, kv_key_printf("maintenance-held:%s", id));
}

static void fill_guard(void *arg, const char *backend)
{
    push_guard(arg, kv_key_printf("removal:%s", backend));
}

static json_t *status_fill(void *arg)
{
    struct watcher *w = arg;
    const struct snapshot *snap = haproxy_engine_snapshot(w->engine);
    struct haproxy_engine_stats st;
    char snap_hex[17] = "";
    struct status_fill f = {.w = w,
                            .r = {.host = opt.host_name,
                                  .role = KV_STATUS_ROLE_HAPROXY,
                                  .cluster = opt.haproxy_cluster,
                                  .version = (char *)drover_version(),
                                  .started_unix = w->started_unix,
                                  .updated_unix = w->status_unix,
                                  .snapshot = snap_hex,
                                  .last_error = w->last_error[0] ? w->last_error : NULL}};
    json_t *out = NULL;
    if (snap)
        snprintf(snap_hex, sizeof(snap_hex), "%016llx", (unsigned long long)snap->inputs_hash);
    if (w->feed) {
        struct consul_feed_stats fs;
        consul_feed_get_stats(w->feed, &fs);
        f.r.kv_index = fs.kv_index;
        f.r.canary_version = fs.canary_version;
    }
    haproxy_engine_each_service(w->engine, fill_service, &f);
    haproxy_engine_each_held(w->engine, fill_guard, &f);
    haproxy_engine_get_stats(w->engine, &st);
    if (st.service_removal_held)
        push_guard(&f, strdup("service-removal"));
    if (st.kv_loss)
        push_guard(&f, strdup("kv-loss"));
    if (st.kv_loss_forced)
        push_guard(&f, strdup("kv-loss-forced"));
    haproxy_engine_each_held_maint(w->engine, fill_held_maint, &f);
    if (!f.oom)
        out = kv_status_encode(&f.r);
    for (size_t i = 0; i < f.r.n_guards; i++)
        free(f.r.guards[i]);
    free(f.r.guards);
    for (size_t i = 0; i < f.r.n_services; i++)
        slot_list_free(f.r.services[i].slots, f.r.services[i].n_slots);
    free(f.r.services);
    free(f.hashes);
    return out;
}

/* ---- snapshots in ---- */

static void on_feed_snapshot(void *arg, struct snapshot *snap)
{
    struct watcher *w = arg;
    /* a burst coalesced by quiescence counts from its first change */
    if (!w->change_since)
        w->change_since = uv_hrtime();
    /* the feed delivers only once every prefix was read completely */
    haproxy_engine_take_snapshot(w->engine, snap, true);
}

static const struct snapshot *feed_current(void *arg)
{
    return haproxy_engine_snapshot(((struct watcher *)arg)->engine);
}

static void on_feed_error(void *arg, const char *prefix, int err, const char *msg)
{
    struct watcher *w = arg;
    metrics_counter_inc(w->m_consul_errors);
    snprintf(w->last_error, sizeof(w->last_error), "consul %s: %s", prefix ? prefix : "",
             msg ? msg : strerror(-err));
    on_engine_status(w);
}

/* The host status session is gone: Consul lost its state (restarted
 * empty, restored) or the session expired. A restart that no watch saw
 * fail (each next query reached the new Consul on its old index) is
 * caught here, within a renewal (--status-ttl / 3). */
static void on_session_lost(void *arg)
{
    struct watcher *w = arg;
    consul_feed_reread(w->feed, "the host status session is gone");
}

/* ---- daemon plumbing ---- */

/* SIGHUP: load the template directory again. The new set is loaded and
 * checked (template_set_check, through render_load_templates) before it
 * replaces the one in use, so a bad set never reaches a render; renders
 * are synchronous, so nothing else holds the old set. Every service is
 * then rendered again in the structural window: a changed text is checked
 * and reloaded, an unchanged one installs nothing. */
static void on_hup(void *arg)
{
    struct watcher *w = arg;
    struct template_set *set = NULL;
    char err[512];
    if (w->stopping)
        return;
    if (render_load_templates(opt.template_dir, &set, err, sizeof(err)) < 0) {
        metrics_counter_inc(w->m_tpl_reload_failures);
        log_error("watcher: SIGHUP: %s; keeping the templates in use", err);
        return;
    }
    metrics_counter_inc(w->m_tpl_reloads);
    log_info("watcher: SIGHUP: templates reloaded from %s; re-rendering every service",
             opt.template_dir);
    haproxy_engine_set_templates(w->engine, set);
}

static void status_stopped(void *arg)
{
    struct watcher *w = arg;
    consul_client_free(w->consul);
    w->consul = NULL;
}

/* The first SIGTERM/SIGINT (daemon_signals logged it and sent STOPPING=1). */
static void on_stop(void *arg, int signum)
{
    struct watcher *w = arg;
    (void)signum;
    w->stopping = true;
    haproxy_engine_stop(w->engine);
    consul_feed_stop(w->feed);
    w->feed = NULL;
    /* the session goes first: Consul deletes the status entry with it */
    host_status_stop(w->status, status_stopped, w);
    w->status = NULL;
    http_server_close(w->http);
    w->http = NULL;
    sdnotify_watchdog_stop(w->watchdog);
    w->watchdog = NULL;
    daemon_signals_close(&w->sig);
}

/* The decap program's counters (--decap-dev). */
static void collect_decap(struct metrics_emitter *em, void *arg)
{
    struct watcher *w = arg;
    director_metrics_emit(em, w->decap_pin_dir, opt.decap_dev, true);
}

/* Where the watcher stands: what it has seen of KV and whether it has
 * finished with it. Operators see a watcher that is behind; tests wait for
 * "decided" instead of sleeping: once kv_index covers their write and idle
 * is 1 in the same scrape, everything that write causes has happened. */
static void collect_progress(struct metrics_emitter *em, void *arg)
{
    struct watcher *w = arg;
    struct consul_feed_stats fs = {0};

    if (w->feed)
        consul_feed_get_stats(w->feed, &fs);
    metrics_emit(em, "drover_watcher_kv_index",
                 "Highest ModifyIndex among the KV entries of the last snapshot read.",
                 METRICS_GAUGE, (double)fs.kv_index, NULL);
    metrics_emit(em, "drover_watcher_idle",
                 "1 while nothing is pending: no quiescence window, check, install, reload or "
                 "runtime apply.",
                 METRICS_GAUGE, w->engine && haproxy_engine_idle(w->engine) ? 1.0 : 0.0, NULL);
}

/* The Consul client's counters, as drover_watcher_haproxy_consul_<field>_total
 * (the director and anycast roles name theirs alike; not _watcher_consul_:
 * drover_watcher_consul_errors_total is the feed's own counter). */
static void collect_consul(struct metrics_emitter *em, void *arg)
{
    struct watcher *w = arg;
    if (w->consul)
        consul_stats_emit(consul_client_stats(w->consul), em, "watcher_haproxy");
}

static void setup_metrics(struct watcher *w)
{
    struct metrics_registry *r = w->metrics;
    metrics_add_collector(r, collect_progress, w);
    w->m_consul_errors = metrics_counter(r, "drover_watcher_consul_errors_total",
                                         "Failed Consul watch attempts (fail static).", NULL);
    w->m_tpl_reloads = metrics_counter(r, "drover_watcher_template_reloads_total",
                                       "Template directory reloads on SIGHUP.", NULL);
    w->m_tpl_reload_failures =
        metrics_counter(r, "drover_watcher_template_reload_failures_total",
                        "SIGHUP template reloads refused (the old set stays).", NULL);
    w->m_ready = metrics_gauge(
        r, "drover_watcher_ready",
        "1 once a snapshot was applied and while every HAProxy instance is up.", NULL);
    w->m_last_apply = metrics_gauge(r, "drover_watcher_last_apply_timestamp_seconds",
                                    "When a snapshot was last applied.", NULL);
    w->m_change_apply = metrics_histogram(
        r, "drover_watcher_change_apply_seconds",
        "From a KV change reaching the watcher (a new snapshot) to its apply through the runtime "
        "API or a reload, quiescence included.",
        NULL, metrics_latency_buckets, metrics_latency_buckets_n);
    metrics_add_collector(r, collect_consul, w);
    if (w->decap_pin_dir[0])
        metrics_add_collector(r, collect_decap, w);
}

static int run_daemon(void)
{
    struct watcher w = {0};
    struct template_set *templates = NULL;
    char err[512];
    int rc;

    w.loop = uv_default_loop();
    model_opts(&w.model);
    w.metrics = metrics_registry_new();
    if (!w.metrics)
        return 1;
    if (opt.decap_dev && *opt.decap_dev &&
        director_pin_dir(opt.pin_root, opt.decap_dev, w.decap_pin_dir, sizeof(w.decap_pin_dir)) <
            0) {
        log_error("watcher: --decap-dev \"%s\": not a device name; cannot start", opt.decap_dev);
        return 1;
    }
    setup_metrics(&w);
    if ((rc = render_load_templates(opt.template_dir, &templates, err, sizeof(err))) < 0) {
        log_error("watcher: %s; cannot start", err);
        return 1;
    }
    /* one stall measurement of the loop for every service's HAProxy
     * client and the Consul client (each keeps a reference) */
    struct loop_lag *lag = NULL;
    if ((rc = loop_lag_new(w.loop, &lag)) < 0) {
        log_error("watcher: cannot start: %s", strerror(-rc));
        return 1;
    }
    engine_opts(&w.eo, &w.model);
    w.eo.loop_lag = lag;
    w.eo.metrics = w.metrics;
    w.eo.on_applied = on_engine_applied;
    w.eo.on_status = on_engine_status;
    w.eo.on_health = on_engine_health;
    w.eo.arg = &w;
    if ((rc = haproxy_engine_new(w.loop, &w.eo, templates, &w.engine)) == -EWOULDBLOCK) {
        log_error("watcher: --config-dir %s is another watcher's (above); cannot start",
                  w.eo.config_dir);
        return 1;
    } else if (rc < 0) {
        log_error("watcher: cannot create the HAProxy engine: %s; cannot start", strerror(-rc));
        return 1;
    }
    if (daemon_metrics_start(w.loop, "watcher", opt.metrics_addr, w.metrics, w.m_ready,
                             "no snapshot applied yet", &w.http) < 0)
        return 1;
    consul_cfg.loop_lag = lag;
    rc = consul_client_new(w.loop, &consul_cfg, &w.consul);
    loop_lag_unref(lag); /* the engine's and the client's references remain */
    if (rc < 0) {
        log_error("watcher: consul client for %s: %s; cannot start", consul_cfg.address,
                  strerror(-rc));
        return 1;
    }
    consul_client_observe_latency(w.consul, w.metrics, "watcher"); /* fails only without memory */
    char *skey = kv_status_key(w.model.root, opt.host_name, KV_STATUS_ROLE_HAPROXY);
    struct host_status_opts hso = {.key = skey,
                                   .ttl_s = (unsigned)(opt.status_ttl_ms / 1000),
                                   .fill = status_fill,
                                   .session_lost = on_session_lost,
                                   .arg = &w};
    w.started_unix = w.status_unix = time(NULL);
    if (!skey || (rc = host_status_start(w.loop, w.consul, &hso, &w.status)) < 0) {
        log_error("watcher: status entry for host %s: %s; cannot start", opt.host_name,
                  skey ? strerror(-rc) : "not a valid key segment");
        free(skey);
        return 1;
    }
    free(skey);
    haproxy_engine_load_saved(w.engine);
    struct consul_feed_opts fo = {
        .loop = w.loop,
        .model = &w.model,
        .wait_s = (unsigned)(opt.consul_wait_ms / 1000),
        .service_watches = (unsigned)opt.service_watches,
        .on_snapshot = on_feed_snapshot,
        .on_error = on_feed_error,
        .current = feed_current,
        .host = opt.host_name,
        .on_canary = on_engine_status,
        .arg = &w,
    };
    if ((rc = consul_feed_start(w.consul, &fo, &w.feed)) < 0) {
        log_error("watcher: cannot start the Consul watches: %s", strerror(-rc));
        return 1;
    }
    sdnotify_watchdog_start(w.loop, &w.watchdog);
    struct daemon_signal_opts so = {.component = "watcher",
                                    .stop_note = "(HAProxy keeps running as it is)",
                                    .on_stop = on_stop,
                                    .on_hup = on_hup,
                                    .arg = &w};
    if (daemon_signals_start(w.loop, &w.sig, &so) < 0)
        return 1;
    log_info("watcher: running (haproxy cluster %s, %zu kube clusters, config dir %s)",
             opt.haproxy_cluster, opt.kube_clusters.count, opt.config_dir);
    uv_run(w.loop, UV_RUN_DEFAULT);

    haproxy_engine_free(w.engine);
    metrics_registry_free(w.metrics);
    uv_loop_close(w.loop);
    return 0;
}

/* ---- render subcommands ---- */

struct fetch {
    size_t pending;
    struct consul_kv_list **lists;
    int err;
    char errmsg[512];
};

struct fetch_one {
    struct fetch *f;
    size_t i;
};

static void on_fetched(void *arg, struct consul_response *resp)
{
    struct fetch_one *o = arg;
    struct fetch *f = o->f;
    if (resp->err) {
        f->err = resp->err;
        snprintf(f->errmsg, sizeof(f->errmsg), "%s", resp->errmsg ? resp->errmsg : "error");
    } else {
        f->lists[o->i] = resp->kv;
        resp->kv = NULL;
    }
    f->pending--;
    free(o);
}

/* Read prefixes[0..n) at once into lists[0..n) (NULL: empty) and wait
 * for all answers. 0 or the first error (named in the log). */
static int fetch_lists(uv_loop_t *loop, struct consul_client *c, char **prefixes, size_t n,
                       struct consul_kv_list **lists)
{
    struct fetch f = {.lists = lists};
    for (size_t i = 0; i < n; i++) {
        struct fetch_one *o = calloc(1, sizeof(*o));
        int rc = -ENOMEM;
        if (o) {
            o->f = &f;
            o->i = i;
            rc = consul_kv_get_prefix(c, prefixes[i], on_fetched, o);
        }
        if (rc < 0) {
            free(o);
            f.err = rc;
            snprintf(f.errmsg, sizeof(f.errmsg), "GET %s: %s", prefixes[i], strerror(-rc));
            break;
        }
        f.pending++;
    }
    while (f.pending && uv_run(loop, UV_RUN_ONCE))
        ;
    if (f.err)
        log_error("watcher: reading Consul: %s", f.errmsg);
    return f.err;
}

static void strv_free(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

/* Read once what the daemon's feed watches (consul_feed.h: the fixed
 * prefixes, then the kube services the definitions reference - not
 * kube/<c>/ whole) and build a snapshot. */
static int fetch_snapshot(const struct kv_model_opts *m, struct snapshot **out)
{
    uv_loop_t loop;
    struct consul_client *c = NULL;
    char **prefixes = NULL, **services = NULL;
    size_t n = 0, n_svc = 0;
    struct consul_kv_list **lists = NULL;
    int rc;

    uv_loop_init(&loop);
    uint64_t t0 = uv_hrtime();
    if ((rc = consul_feed_fixed_prefixes(m, &prefixes, &n)) < 0 ||
        (rc = consul_client_new(&loop, &consul_cfg, &c)) < 0)
        goto out;
    /* the fixed prefixes, then the services: one array of answers */
    if (!(lists = calloc(n + 1, sizeof(*lists)))) {
        rc = -ENOMEM;
        goto out;
    }
    if ((rc = fetch_lists(&loop, c, prefixes, n, lists)) < 0)
        goto out;
    /* lists[0] is haproxy/<cluster>/, the definitions */
    if ((rc = consul_feed_service_prefixes(m, NULL, (unsigned)opt.service_watches, lists[0], NULL,
                                           &services, &n_svc)) < 0)
        goto out;
    struct consul_kv_list **more = realloc(lists, (n + n_svc + 1) * sizeof(*lists));
    if (!more) {
        rc = -ENOMEM;
        goto out;
    }
    lists = more;
    memset(lists + n, 0, (n_svc + 1) * sizeof(*lists));
    for (size_t i = 0; i < n_svc; i++)
        log_debug("render: reading %s", services[i]);
    if ((rc = fetch_lists(&loop, c, services, n_svc, lists + n)) < 0)
        goto out;

    struct snapshot_entry *e = NULL;
    size_t ne = 0;
    uint64_t t1 = uv_hrtime();
    rc = consul_feed_entries((const struct consul_kv_list *const *)lists, n + n_svc, &e, &ne);
    if (rc == 0)
        rc = snapshot_build(m, e, ne, (int64_t)time(NULL), NULL, out);
    /* bench/watcher reads these (the render split) */
    log_info("render: timing: consul_read_ms=%.1f snapshot_ms=%.1f keys=%zu prefixes=%zu",
             (double)(t1 - t0) / 1e6, (double)(uv_hrtime() - t1) / 1e6, ne, n + n_svc);
out:
    for (size_t i = 0; lists && i < n + n_svc; i++)
        if (lists[i])
            consul_kv_list_free(lists[i]);
    free(lists);
    strv_free(prefixes, n);
    strv_free(services, n_svc);
    consul_client_free(c);
    uv_run(&loop, UV_RUN_NOWAIT);
    uv_loop_close(&loop);
    return rc;
}

struct saved_view {
    struct snapshot_saved_slots *v;
    size_t n;
};

static const struct slot_assignment *saved_slots(void *arg, const char *backend)
{
    struct saved_view *s = arg;
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i].backend, backend) == 0)
            return &s->v[i].a;
    return NULL;
}

/* `diff -u old new` on stdout (old: /dev/null when it is not there);
 * *status 3 when they differ, 1 when diff cannot tell (logged: diff
 * missing, or failed). */
static void show_diff(const char *old, const char *new, int *status)
{
    char err[PATH_MAX * 2 + 128];
    struct file_diff_opts o = {0};
    int rc = file_diff_unified(old, new, &o, err, sizeof(err));
    if (rc < 0) {
        log_error("render: %s", err);
        *status = 1;
    } else if (rc == 1 && *status == 0) {
        *status = 3;
    }
}

/* --diff: each route map of d as installed in config_dir against the one
 * staged in dir. */
static void diff_maps(const struct kvm_service *d, const char *config_dir, const char *dir,
                      int *status)
{
    for (size_t i = 0; i < d->n_frontends; i++) {
        char *installed = snapshot_map_path(config_dir, d, &d->frontends[i]);
        char *staged = snapshot_map_path(dir, d, &d->frontends[i]);
        if (installed && staged)
            show_diff(installed, staged, status);
        free(installed);
        free(staged);
    }
}

static bool show_pruned_map(void *status, const char *path)
{
    show_diff(path, "/dev/null", status);
    return true;
}

/* --diff: the route maps in config_dir of frontends d no longer has,
 * which the daemon removes once d's config is installed: each against an
 * empty file, as `droverctl config diff` shows a removed frontend's. */
static void diff_pruned_maps(const struct kvm_service *d, const char *config_dir, int *status)
{
    render_files_each_map_to_prune(config_dir, d, show_pruned_map, status);
}

/* The crt-list of frontend f that the installed config text names:
 * "<list dir>/<frontend>.<16 hex>.crtlist" found in it, malloc'd; NULL
 * when it names none. */
static char *installed_crt_list(const char *text, const char *list_dir, const char *frontend)
{
    char prefix[PATH_MAX];
    const char *suffix = ".crtlist";
    size_t n = (size_t)snprintf(prefix, sizeof(prefix), "%s/%s.", list_dir, frontend);
    for (const char *p = text; n < sizeof(prefix) && (p = strstr(p, prefix)); p += n) {
        const char *h = p + n;
        if (strspn(h, "0123456789abcdef") == 16 && str_has_prefix(h + 16, suffix))
            return strndup(p, n + 16 + strlen(suffix));
    }
    return NULL;
}

/* --diff: each new crt-list of d (staged in dir, not in config_dir yet)
 * against the one the installed config names, so a changed entry (a
 * certificate, an SNI filter, ALPN) shows, not only the list's new name. */
static void diff_crt_lists(const struct kvm_service *d, const char *config_dir, const char *dir,
                           const char *installed_cfg, int *status)
{
    char *text = NULL, *list_dir = snapshot_crt_list_dir(config_dir, d->name);
    size_t len = 0;
    if (render_read_file(installed_cfg, &text, &len) < 0)
        text = NULL; /* a new service: every list is new */
    for (size_t i = 0; list_dir && i < d->n_frontends; i++) {
        char *live = snapshot_crt_list_path(config_dir, d, &d->frontends[i]);
        char *staged = snapshot_crt_list_path(dir, d, &d->frontends[i]);
        char *old = live && text ? installed_crt_list(text, list_dir, d->frontends[i].name) : NULL;
        if (live && staged && access(live, F_OK) < 0)
            show_diff(old ? old : "/dev/null", staged, status);
        free(old);
        free(live);
        free(staged);
    }
    free(list_dir);
    free(text);
}

/* What every service of one `render` run shares. */
struct render_run {
    const struct snapshot *snap;
    struct saved_view *sv;
    const struct template_set *set;
    const struct haproxy_engine_opts *eo;
};

/* The configuration text of svc naming its maps and crt-lists in map_dir,
 * into buf; *data_ns (may be NULL) gets uv_hrtime() once its template data
 * is built. 0 or a negative errno with err. */
static int render_service_text(const struct render_run *r, const struct snapshot_service *svc,
                               const char *map_dir, struct template_buf *buf, uint64_t *data_ns,
                               char *err, size_t errlen)
{
    struct snapshot_render_opts ro;
    char *stats, *state;
    json_t *data = NULL;
    haproxy_engine_render_opts(r->eo, svc->def->name, &ro, &stats, &state);
    ro.map_dir = map_dir;
    int rc = snapshot_service_json(r->snap, svc, &ro, saved_slots, r->sv, false, &data);
    if (rc == -ENOSPC) /* saved placement too small: default placement */
        rc = snapshot_service_json(r->snap, svc, &ro, NULL, NULL, false, &data);
    free(stats);
    free(state);
    if (data_ns)
        *data_ns = uv_hrtime();
    if (rc < 0)
        errmsg_set(err, errlen, "template data: %s", strerror(-rc));
    else
        rc = render_text(r->set, svc->def->template_name, data, buf, err, errlen);
    json_decref(data);
    return rc;
}

/* buf into path (atomically). 0 or a negative errno with err. */
static int write_text(const char *path, const struct template_buf *buf, char *err, size_t errlen)
{
    int rc = atomic_file_write(path, buf->data, buf->len, 0644);
    if (rc < 0)
        errmsg_set(err, errlen, "%s: %s", path, strerror(-rc));
    return rc;
}

/* Render svc into "<dir>/<service>.cfg" with its route maps and crt-lists
 * written into dir and named there, and check it with `haproxy -c`: the
 * check reads exactly the files the configuration names. 0 or a negative
 * errno (err). bench/watcher reads the timing line. */
static int render_checked(const struct render_run *r, const struct snapshot_service *svc,
                          const char *dir, char *err, size_t errlen)
{
    struct template_buf buf = {0};
    char path[PATH_MAX];
    uint64_t t0 = uv_hrtime(), t1 = t0, t2, t3;
    int rc;
    snprintf(path, sizeof(path), "%s/%s.cfg", dir, svc->def->name);
    if ((rc = render_files_write(dir, svc->def, err, errlen)) < 0 ||
        (rc = render_service_text(r, svc, dir, &buf, &t1, err, errlen)) < 0)
        goto out;
    t2 = uv_hrtime();
    if ((rc = write_text(path, &buf, err, errlen)) < 0)
        goto out;
    t3 = uv_hrtime();
    if ((rc = render_check_file(opt.haproxy_bin, path, err, errlen)) < 0)
        goto out;
    log_info("render: timing: service=%s data_ms=%.1f template_ms=%.1f write_ms=%.1f "
             "check_ms=%.1f bytes=%zu",
             svc->def->name, (double)(t1 - t0) / 1e6, (double)(t2 - t1) / 1e6,
             (double)(t3 - t2) / 1e6, (double)(uv_hrtime() - t3) / 1e6, buf.len);
out:
    template_buf_free(&buf);
    return rc;
}

/* --diff for svc: checked in the private directory tmp (its maps and
 * crt-lists there), then rendered as the daemon would install it (naming
 * them in --config-dir) and compared with the installed files. Nothing is
 * written into --config-dir. */
static void diff_service(const struct render_run *r, const struct snapshot_service *svc,
                         const char *tmp, int *status)
{
    char err[2048], path[PATH_MAX], running[PATH_MAX];
    struct template_buf buf = {0};
    int rc = render_checked(r, svc, tmp, err, sizeof(err));
    snprintf(path, sizeof(path), "%s/%s.cfg", tmp, svc->def->name);
    /* the text installed names the files in --config-dir; without any
     * such file it is the text just checked */
    if (rc == 0 && render_files_any(svc->def) &&
        (rc = render_service_text(r, svc, opt.config_dir, &buf, NULL, err, sizeof(err))) == 0)
        rc = write_text(path, &buf, err, sizeof(err));
    if (rc < 0) {
        log_error("render: service %s: %s", svc->def->name, err);
        *status = 1;
    } else {
        snprintf(running, sizeof(running), "%s/%s.cfg", opt.config_dir, svc->def->name);
        show_diff(running, path, status);
        diff_maps(svc->def, opt.config_dir, tmp, status);
        diff_pruned_maps(svc->def, opt.config_dir, status);
        diff_crt_lists(svc->def, opt.config_dir, tmp, running, status);
    }
    render_files_remove(tmp, svc->def);
    unlink(path);
    template_buf_free(&buf);
}

/* --out: "<map>: ok" for each route map of d written into dir, as before
 * its config's line (render_files wrote them). */
static void print_route_maps(const struct kvm_service *d, const char *dir)
{
    for (size_t i = 0; i < d->n_frontends; i++) {
        char *path = snapshot_map_path(dir, d, &d->frontends[i]);
        if (path)
            printf("%s: ok\n", path);
        free(path);
    }
}

/* render --snapshot FILE --out DIR / render --diff */
static int run_render(void)
{
    const char *snap_file = ropt.snapshot, *out_dir = ropt.out;
    bool diff = ropt.diff;
    struct kv_model_opts m;
    struct haproxy_engine_opts eo;
    struct snapshot *snap = NULL;
    struct saved_view sv = {0};
    struct template_set *set = NULL;
    char err[2048], tmp[] = "/tmp/drover-render-diff.XXXXXX";
    int rc, status = 0;

    if (!diff && !out_dir) {
        fprintf(stderr, "drover-watcher render: use --diff or --out DIR\n");
        return 2;
    }
    model_opts(&m);
    engine_opts(&eo, &m);
    if ((rc = render_load_templates(opt.template_dir, &set, err, sizeof(err))) < 0) {
        log_error("render: %s", err);
        return 1;
    }
    if (snap_file) {
        rc = snapshot_load(snap_file, &m, (int64_t)time(NULL), &snap, &sv.v, &sv.n, err,
                           sizeof(err));
        if (rc < 0)
            log_error("render: %s", err);
    } else {
        rc = fetch_snapshot(&m, &snap);
        /* use the running watcher's slot placement when it is readable */
        struct snapshot *ignored = NULL;
        if (rc == 0 && snapshot_load(opt.snapshot_file, &m, (int64_t)time(NULL), &ignored, &sv.v,
                                     &sv.n, err, sizeof(err)) == 0)
            snapshot_free(ignored);
    }
    if (rc < 0) {
        template_set_free(set);
        return 1;
    }
    if (diff) {
        if (!mkdtemp(tmp)) {
            log_error("render: cannot create a private directory %s: %s", tmp, strerror(errno));
            status = 1;
            goto done;
        }
    } else if ((rc = atomic_file_make_dirs(out_dir, 0755)) < 0) {
        log_error("render: --out %s: cannot create it: %s; nothing written", out_dir,
                  strerror(-rc));
        status = 1;
        goto done;
    }
    if (snap->n_services == 0)
        log_warn("render: the snapshot has no HAProxy service for cluster %s; nothing rendered",
                 opt.haproxy_cluster);
    struct render_run r = {.snap = snap, .sv = &sv, .set = set, .eo = &eo};
    for (size_t i = 0; i < snap->n_services; i++) {
        const struct snapshot_service *svc = &snap->services[i];
        /* the files its TLS names, as the daemon checks them before a
         * reload */
        if (tls_files_check(svc->def, err, sizeof(err)) < 0) {
            log_error("render: service %s (key %s): %s; not rendered", svc->def->name,
                      svc->def->key, err);
            status = 1;
        } else if (diff) {
            diff_service(&r, svc, tmp, &status);
        } else if (render_checked(&r, svc, out_dir, err, sizeof(err)) < 0) {
            log_error("render: service %s: %s", svc->def->name, err);
            status = 1;
        } else {
            print_route_maps(svc->def, out_dir);
            printf("%s/%s.cfg: ok\n", out_dir, svc->def->name);
        }
    }
    if (!diff) {
        char *text = NULL, path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/agent-state.json", out_dir);
        if (snapshot_agent_state(snap, saved_slots, &sv, (int64_t)time(NULL), &text) == 0)
            atomic_file_write(path, text, strlen(text), 0644);
        free(text);
    }
done:
    if (diff)
        rmdir(tmp);
    snapshot_saved_slots_free(sv.v, sv.n);
    snapshot_free(snap);
    template_set_free(set);
    return status;
}

int main(int argc, char **argv)
{
    char err[512];
    int cmd = -1, rc;

    /* the director side has its own options (docs/director-watcher.md) */
    if (argc > 1 && strcmp(argv[1], "director") == 0)
        return director_main(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "anycast") == 0)
        return anycast_main(argc - 1, argv + 1);
    log_set_component("watcher");
    rc = config_parse_command(&program, argc, argv, &cmd, NULL, err, sizeof(err));
    if (rc == CONFIG_HELP_SHOWN)
        return 0;
    if (rc == 0 && cmd == CMD_DIRECTOR) {
        snprintf(err, sizeof(err),
                 "'director' must be the first word: drover-watcher director "
                 "[OPTIONS] [run | status]");
        rc = -EINVAL;
    }
    if (rc == 0 && (!opt.haproxy_cluster || !*opt.haproxy_cluster)) {
        snprintf(err, sizeof(err), "--haproxy-cluster is required");
        rc = -EINVAL;
    }
    const char *why = NULL;
    if (rc == 0 && opt.zone && *opt.zone &&
        haproxy_value_check(HAPROXY_VALUE_NAME, opt.zone, strlen(opt.zone), &why) < 0) {
        snprintf(err, sizeof(err), "--zone \"%s\": %s (a zone label value is expected)", opt.zone,
                 why);
        rc = -EINVAL;
    }
    if (rc == 0 && cmd != CMD_RENDER)
        rc = host_status_check_opts(&opt.host_name, opt.status_ttl_ms, err, sizeof(err));
    if (rc == 0)
        rc = consul_options_config(&opt.consul, &consul_cfg, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "drover-watcher: %s\n", err);
        config_free(&program);
        return 2;
    }
    rc = cmd == CMD_RENDER ? run_render() : run_daemon();
    config_free(&program);
    return rc;
}
