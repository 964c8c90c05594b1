/* SPDX-License-Identifier: Apache-2.0 */
/*
 * drover-watcher (HAProxy side): Consul KV -> HAProxy with zero-reload
 * churn, checked reloads and fail-static. This file wires the modules
 * together (docs/watcher.md has the whole picture):
 *
 *   consul_feed  -> snapshot (immutable) -> plan:
 *     slots_assign per backend (stable slots), slots_guard (mass removal),
 *     snapshot_service_json(structure_only) compared with what is
 *     installed: equal -> runtime apply at once (runtime quiescence of a
 *     few ms); different -> structural quiescence (--wait-min/--wait-max),
 *     render + haproxy -c + atomic install + reload via the master CLI,
 *     rollback when the reload fails;
 *   the agent-checker state file is written before every runtime apply
 *   (a filled slot must read "ready" before its agent is enabled), the
 *   snapshot file after every applied snapshot.
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
#include "consul_feed.h"
#include "director_main.h"
#include "haproxy_runtime.h"
#include "http_server.h"
#include "log.h"
#include "metrics.h"
#include "quiesce.h"
#include "render.h"
#include "sdnotify.h"
#include "slots.h"
#include "snapshot.h"

/* where haproxy-templates/ is installed (set by CMake from the prefix) */
#ifndef DROVER_TEMPLATE_DIR
#define DROVER_TEMPLATE_DIR "/usr/local/share/drover/haproxy-templates"
#endif

struct options {
    struct consul_options consul;
    char *haproxy_cluster;
    struct config_strlist kube_clusters;
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
    int64_t resync_ms;
};

static struct options opt;

static const struct config_option options[] = {
    CONFIG_OPT_STRING("haproxy-cluster", &opt.haproxy_cluster, NULL,
                      "proxy-fleet cluster served: reads haproxy/<cluster>/ (required)"),
    CONFIG_OPT_STRLIST(
        "kube-cluster", &opt.kube_clusters, NULL,
        "Kubernetes cluster whose kube/<cluster>/ entries are consumed (repeatable)"),
    CONFIG_OPT_STRING("template-dir", &opt.template_dir, DROVER_TEMPLATE_DIR,
                      "mustache templates (NAME.mustache, partials/)"),
    CONFIG_OPT_STRING("config-dir", &opt.config_dir, "/etc/haproxy/drover",
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
                        "runtime-API changes: coalescing window"),
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
    CONFIG_OPT_DURATION("resync-interval", &opt.resync_ms, "1m",
                        "re-apply every placement this often (HAProxy restarted or changed by "
                        "hand); 0 = never"),
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

enum { CMD_RUN, CMD_RENDER, CMD_DIRECTOR };
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

/* One backend's slot placement as served. */
struct backend_state {
    char *name;
    char *service;
    struct slot_assignment a; /* committed (applied or installed) */
    bool have;
    bool held; /* last plan held back by the removal guard */
};

/* One HAProxy instance (= one HAProxy service). */
struct service_state {
    char *name;
    struct watcher *w;
    struct haproxy_runtime *rt;
    json_t *structure; /* structure render of the installed config; NULL = unknown */
    bool reload_pending;
    bool file_stale; /* runtime changes not yet in the file (refreshed without reload) */
    bool checking;   /* a render check is running */
    bool busy;       /* a structural install + reload is in flight */
    bool replan;     /* a snapshot arrived while busy */
    bool retired;    /* removed from KV: config moved aside, frontends disabled */
};

struct watcher {
    uv_loop_t *loop;
    struct kv_model_opts model;
    struct consul_client *consul;
    struct consul_feed *feed;
    struct http_server *http;
    struct metrics_registry *metrics;
    struct sdnotify_watchdog *watchdog;
    struct template_set *templates;
    struct quiesce_timer *runtime_q, *struct_q;
    struct daemon_signals sig;
    uv_timer_t expiry;     /* next maintenance / force-removal expiry */
    uv_timer_t resync;     /* periodic re-apply against HAProxy's live state */
    struct snapshot *snap; /* newest snapshot (served as far as possible) */
    struct backend_state *bes;
    size_t n_bes;
    struct service_state **svcs; /* individually allocated: callbacks hold pointers */
    size_t n_svcs;
    bool ready, stopping;
    bool snap_from_feed;   /* w->snap comes from a complete Consul read (not the file) */
    bool svc_removal_held; /* the latest service removal is held by the guard */
    bool snapshot_dirty;   /* saved in the structural window, off the apply path */
    size_t applies_in_flight;
    /* metrics */
    struct metrics_counter *m_snapshots, *m_reloads, *m_reload_failures, *m_render_failures,
        *m_applies, *m_apply_failures, *m_held_total, *m_consul_errors, *m_bad_total,
        *m_tpl_reloads, *m_tpl_reload_failures, *m_svc_removed, *m_svc_removals_held_total;
    struct metrics_gauge *m_held, *m_svc_removals_held, *m_ready, *m_bad[KVM_PREFIX_COUNT],
        *m_last_apply, *m_services, *m_servers;
};

/* ---- helpers ---- */

/* Replace "{service}" in pattern by name. Caller frees. */
static char *expand(const char *pattern, const char *name)
{
    const char *p = strstr(pattern, "{service}");
    char *out = NULL;
    if (!p)
        return strdup(pattern);
    if (asprintf(&out, "%.*s%s%s", (int)(p - pattern), pattern, name, p + 9) < 0)
        return NULL;
    return out;
}

static struct backend_state *backend_state(struct watcher *w, const char *name)
{
    for (size_t i = 0; i < w->n_bes; i++)
        if (strcmp(w->bes[i].name, name) == 0)
            return &w->bes[i];
    struct backend_state *p = realloc(w->bes, (w->n_bes + 1) * sizeof(*p));
    if (!p)
        return NULL;
    w->bes = p;
    struct backend_state *b = &w->bes[w->n_bes];
    memset(b, 0, sizeof(*b));
    if (!(b->name = strdup(name)))
        return NULL;
    slot_assignment_init(&b->a);
    w->n_bes++;
    return b;
}

static struct service_state *service_state(struct watcher *w, const char *name)
{
    for (size_t i = 0; i < w->n_svcs; i++)
        if (strcmp(w->svcs[i]->name, name) == 0)
            return w->svcs[i];
    return NULL;
}

static const struct slot_assignment *committed_slots(void *arg, const char *backend)
{
    struct watcher *w = arg;
    for (size_t i = 0; i < w->n_bes; i++)
        if (w->bes[i].have && strcmp(w->bes[i].name, backend) == 0)
            return &w->bes[i].a;
    return NULL;
}

static void render_opts(const char *service, struct snapshot_render_opts *ro, char **stats,
                        char **state)
{
    *stats = expand(opt.stats_socket, service);
    *state = expand(opt.state_file, service);
    *ro = (struct snapshot_render_opts){
        .haproxy_cluster = opt.haproxy_cluster,
        .stats_socket = *stats ? *stats : "",
        .server_state_file = *state ? *state : "",
        .maxconn = opt.maxconn,
        .agent_addr = opt.agent_addr,
        .agent_port = (uint16_t)opt.agent_port,
        .agent_inter_ms = opt.agent_interval_ms,
        .timeout_connect_ms = opt.timeout_connect_ms,
        .timeout_client_ms = opt.timeout_client_ms,
        .timeout_server_ms = opt.timeout_server_ms,
    };
}

/* Structure (or full, structure_only=false) template data of a service
 * with the committed slots. */
static int service_json(struct watcher *w, const struct snapshot_service *svc, bool structure_only,
                        json_t **out)
{
    struct snapshot_render_opts ro;
    char *stats, *state;
    render_opts(svc->def->name, &ro, &stats, &state);
    int rc = snapshot_service_json(w->snap, svc, &ro, committed_slots, w, structure_only, out);
    free(stats);
    free(state);
    return rc;
}

/* Replace path by rename without fsync: visible at once, not yet durable.
 * On the runtime path the agent-checker must see a filled slot as "ready"
 * before its agent is enabled, and an fsync costs ~6 ms there; the durable
 * copy (atomic_file_write) follows in the structural window, and a
 * restarted watcher rewrites the file from its snapshot anyway. */
static int write_visible(const char *path, const char *text, size_t len)
{
    char tmp[PATH_MAX];
    int rc = 0;
    snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
    FILE *f = fopen(tmp, "we");
    if (!f)
        return -errno;
    if (fwrite(text, 1, len, f) != len)
        rc = -EIO;
    if (fclose(f) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) < 0)
        rc = -errno;
    if (rc < 0)
        unlink(tmp);
    return rc;
}

static int write_agent_state(struct watcher *w, bool durable)
{
    char *text = NULL;
    int rc = snapshot_agent_state(w->snap, committed_slots, w, (int64_t)time(NULL), &text);
    if (rc == 0)
        rc = durable ? atomic_file_write(opt.agent_state_file, text, strlen(text), 0644)
                     : write_visible(opt.agent_state_file, text, strlen(text));
    if (rc < 0)
        log_error("watcher: agent state file %s: %s; the agent-checker keeps the previous "
                  "state",
                  opt.agent_state_file, strerror(-rc));
    free(text);
    return rc;
}

static void save_snapshot(struct watcher *w)
{
    char err[512];
    if (!opt.snapshot_file || !*opt.snapshot_file)
        return;
    if (snapshot_save(w->snap, &w->model, committed_slots, w, opt.snapshot_file,
                      (int64_t)time(NULL), err, sizeof(err)) < 0)
        log_error("watcher: %s; a restart without Consul would use an older snapshot", err);
}

static void mark_applied(struct watcher *w)
{
    metrics_gauge_set(w->m_last_apply, (double)time(NULL));
    if (!w->ready) {
        w->ready = true;
        metrics_gauge_set(w->m_ready, 1);
        if (w->http)
            http_server_set_ready(w->http, true, NULL);
        sdnotify_ready();
        log_info("watcher: first snapshot applied; ready");
    }
    sdnotify_status("serving snapshot %016llx (%zu services)",
                    (unsigned long long)w->snap->inputs_hash, w->snap->n_services);
}

/* ---- runtime apply ---- */

struct apply_ctx {
    struct watcher *w;
    struct service_state *s;
};

static void on_applied(struct haproxy_runtime *rt, const struct haproxy_apply_result *res,
                       void *arg)
{
    struct apply_ctx *c = arg;
    struct watcher *w = c->w;
    (void)rt;
    w->applies_in_flight--;
    if (res->status == 0) {
        metrics_counter_inc(w->m_applies);
        log_debug("watcher: service %s: runtime apply done, %zu commands", c->s->name,
                  res->commands);
    } else {
        /* -ENOENT is either "no stats socket" (HAProxy not running: wait
         * for it) or "no such server" (the config lacks slots: reload) */
        char *sock = expand(opt.stats_socket, c->s->name);
        bool lacks_slots = res->status == -ENOENT && sock && access(sock, F_OK) == 0;
        free(sock);
        metrics_counter_inc(w->m_apply_failures);
        log_warn("watcher: service %s: runtime apply failed: %s; %s", c->s->name, res->message,
                 lacks_slots ? "config lacks slots, a reload will add them"
                             : "retried with the next change");
        if (lacks_slots && !w->stopping) {
            json_decref(c->s->structure);
            c->s->structure = NULL;
            c->s->reload_pending = true;
            quiesce_timer_kick(w->struct_q);
        }
    }
    free(c);
}

static void apply_service(struct watcher *w, struct service_state *s,
                          const struct snapshot_service *svc)
{
    for (size_t i = 0; i < svc->n_backends; i++) {
        const struct slot_assignment *a = committed_slots(w, svc->backends[i].def->name);
        struct apply_ctx *c;
        if (!a || !s->rt || !(c = calloc(1, sizeof(*c))))
            continue;
        c->w = w;
        c->s = s;
        if (haproxy_runtime_apply(s->rt, svc->backends[i].def->name, a, on_applied, c) < 0) {
            free(c);
            metrics_counter_inc(w->m_apply_failures);
            continue;
        }
        w->applies_in_flight++;
    }
}

/* The runtime diff compares with HAProxy's live state, so re-applying the
 * placements in force is a no-op when nothing drifted and repairs a
 * HAProxy that was restarted from its file or changed by hand. */
static void on_resync(uv_timer_t *t)
{
    struct watcher *w = t->data;
    if (!w->snap || w->stopping || !w->ready)
        return;
    for (size_t i = 0; i < w->snap->n_services; i++) {
        struct service_state *s = service_state(w, w->snap->services[i].def->name);
        if (s && !s->busy && !s->reload_pending)
            apply_service(w, s, &w->snap->services[i]);
    }
}

/* ---- planning ---- */

/* Place the servers of every backend of svc into slots starting from the
 * committed placement. *structural: a backend needs more slots than its
 * config has. Held backends keep their committed placement. Returns
 * 0 or -ENOMEM; commits the new placements. */
static int plan_service(struct watcher *w, const struct snapshot_service *svc)
{
    for (size_t i = 0; i < svc->n_backends; i++) {
        const struct snapshot_backend *b = &svc->backends[i];
        struct backend_state *bs = backend_state(w, b->def->name);
        struct slot_server *desired = NULL;
        struct slot_assignment next;
        size_t need = 0, nslots;
        int rc;

        if (!bs || snapshot_desired(b, &desired) < 0)
            return -ENOMEM;
        free(bs->service);
        bs->service = strdup(svc->def->name);
        nslots = bs->have ? bs->a.nslots : 0;
        if (nslots < b->slots)
            nslots = b->slots;
        slot_assignment_init(&next);
        rc = slots_assign(bs->have ? &bs->a : NULL, desired, b->n_servers, nslots, &next, &need);
        if (rc == 0 && need) {
            slot_assignment_free(&next);
            slot_assignment_init(&next);
            rc = slots_assign(bs->have ? &bs->a : NULL, desired, b->n_servers, need, &next, &need);
        }
        free(desired);
        if (rc < 0) {
            log_error("watcher: backend %s: slot placement failed: %s; keeping its current "
                      "servers",
                      b->def->name, strerror(-rc));
            continue;
        }
        if (bs->have) {
            size_t active = slot_assignment_used(&bs->a);
            size_t removed = slots_count_removed(&bs->a, &next);
            double share = b->max_removal_share >= 0 ? b->max_removal_share : opt.max_removal_share;
            struct slots_guard_result g =
                slots_guard(active, removed, slot_assignment_used(&next), share, b->force_removal);
            if (g.hold) {
                if (!bs->held) {
                    log_warn("watcher: backend %s: change removing %zu of %zu servers held back "
                             "(%s); write haproxy/%s/force-removal/%s to let it through",
                             b->def->name, g.removed, g.active, g.reason, opt.haproxy_cluster,
                             b->def->name);
                    metrics_counter_inc(w->m_held_total);
                }
                bs->held = true;
                slot_assignment_free(&next);
                continue;
            }
        }
        bs->held = false;
        slot_assignment_free(&bs->a);
        bs->a = next;
        bs->have = true;
    }
    return 0;
}

static void update_gauges(struct watcher *w)
{
    double held = 0, servers = 0;
    for (size_t i = 0; i < w->n_bes; i++) {
        held += w->bes[i].held;
        servers += w->bes[i].have ? (double)slot_assignment_used(&w->bes[i].a) : 0;
    }
    metrics_gauge_set(w->m_held, held);
    metrics_gauge_set(w->m_servers, servers);
    metrics_gauge_set(w->m_services, w->snap ? (double)w->snap->n_services : 0);
}

static int ensure_service(struct watcher *w, const char *name)
{
    if (service_state(w, name))
        return 0;
    struct service_state **p = realloc(w->svcs, (w->n_svcs + 1) * sizeof(*p));
    if (!p)
        return -ENOMEM;
    w->svcs = p;
    struct service_state *s = calloc(1, sizeof(*s));
    if (!s || !(s->name = strdup(name))) {
        free(s);
        return -ENOMEM;
    }
    s->w = w;
    w->svcs[w->n_svcs++] = s;
    char *stats = expand(opt.stats_socket, name), *master = expand(opt.master_socket, name),
         *state = expand(opt.state_file, name);
    int rc = stats && master && state ? haproxy_runtime_new(w->loop, stats, master, state, &s->rt)
                                      : -ENOMEM;
    if (rc < 0)
        log_error("watcher: service %s: cannot create the HAProxy client: %s", name, strerror(-rc));
    free(stats);
    free(master);
    free(state);
    return rc;
}

/* ---- services removed from KV ---- */

static void on_frontends_disabled(struct haproxy_runtime *rt, int status,
                                  const char *const *answers, size_t n, const char *errmsg,
                                  void *arg)
{
    char *name = arg, err[512];
    (void)rt;
    if (status < 0)
        log_warn("watcher: service %s: cannot disable its frontends: %s; its HAProxy may "
                 "still serve them until it is stopped",
                 name, errmsg ? errmsg : strerror(-status));
    for (size_t i = 0; status == 0 && i < n; i++)
        if (haproxy_runtime_check_answer("disable frontend", answers[i], err, sizeof(err)) < 0)
            log_warn("watcher: service %s: %s", name, err);
    free(name);
}

/* The service is gone from a complete read of haproxy/<cluster>/: move its
 * config aside, tell its HAProxy to stop serving its frontends (the process
 * itself belongs to systemd / the operator) and forget its placements, so
 * a service of the same name that comes back starts from scratch. */
static void retire_service(struct watcher *w, struct service_state *s)
{
    char err[512];
    const char *cmds[64];
    size_t n = 0;
    json_t *fe;
    size_t i;
    int rc = render_retire(opt.config_dir, s->name, err, sizeof(err));

    metrics_counter_inc(w->m_svc_removed);
    log_warn("watcher: service %s: removed from haproxy/%s/services/ (complete read); config "
             "%s",
             s->name, opt.haproxy_cluster,
             rc == 0         ? "moved to <name>.cfg.removed, disabling its frontends"
             : rc == -ENOENT ? "file already gone, disabling its frontends"
                             : "could not be moved aside, disabling its frontends");
    if (rc < 0 && rc != -ENOENT)
        log_error("watcher: %s; HAProxy would load it again on its next start", err);
    /* the frontends of the installed config (its structure render) */
    json_array_foreach(json_object_get(s->structure, "frontends"), i, fe)
    {
        const char *fname = json_string_value(json_object_get(fe, "name"));
        char *cmd = NULL;
        if (fname && n < 64 && asprintf(&cmd, "disable frontend %s", fname) >= 0)
            cmds[n++] = cmd;
    }
    char *arg = strdup(s->name);
    if (n && s->rt && arg &&
        haproxy_runtime_exec(s->rt, HAPROXY_SOCKET_STATS, cmds, n, on_frontends_disabled, arg) == 0)
        arg = NULL;
    else if (n)
        log_warn("watcher: service %s: cannot queue `disable frontend`; stop its HAProxy by hand",
                 s->name);
    free(arg);
    for (i = 0; i < n; i++)
        free((char *)cmds[i]);
    for (i = 0; i < w->n_bes; i++) {
        struct backend_state *bs = &w->bes[i];
        if (!bs->service || strcmp(bs->service, s->name) != 0)
            continue;
        if (s->rt)
            haproxy_runtime_forget(s->rt, bs->name);
        slot_assignment_free(&bs->a);
        slot_assignment_init(&bs->a);
        bs->have = bs->held = false;
    }
    json_decref(s->structure);
    s->structure = NULL;
    s->reload_pending = s->file_stale = false;
    s->retired = true;
}

/* Services served so far that the snapshot no longer defines. Removed only
 * on a snapshot from a complete, successful Consul read (a snapshot loaded
 * from the file, or Consul errors, never remove anything), and under the
 * mass-removal guard over services: more than --max-removal-share of them,
 * or all of them, at once is held unless every one of them has a
 * force-removal entry haproxy/<cluster>/force-removal/<service>. */
static void retire_removed(struct watcher *w)
{
    size_t active = 0, removed = 0;
    bool forced = true;
    struct consul_feed_stats fs = {0};

    if (w->feed)
        consul_feed_get_stats(w->feed, &fs);
    if (!w->snap_from_feed || !fs.complete)
        return;
    for (size_t i = 0; i < w->n_svcs; i++) {
        struct service_state *s = w->svcs[i];
        if (s->retired)
            continue;
        active++;
        if (!snapshot_service(w->snap, s->name)) {
            removed++;
            forced &= kv_model_force(&w->snap->model, s->name) != NULL;
        }
    }
    struct slots_guard_result g =
        slots_guard(active, removed, active - removed, opt.max_removal_share, removed && forced);
    metrics_gauge_set(w->m_svc_removals_held, g.hold);
    if (g.hold) {
        if (!w->svc_removal_held) {
            log_warn("watcher: removal of %zu of %zu services held back (%s); their configs "
                     "stay; write haproxy/%s/force-removal/<service> to let it through",
                     removed, active,
                     removed == active ? "it would remove every service"
                                       : "more than --max-removal-share of the services",
                     opt.haproxy_cluster);
            metrics_counter_inc(w->m_svc_removals_held_total);
        }
        w->svc_removal_held = true;
        return;
    }
    w->svc_removal_held = false;
    for (size_t i = 0; removed && i < w->n_svcs; i++) {
        struct service_state *s = w->svcs[i];
        if (s->retired || snapshot_service(w->snap, s->name))
            continue;
        if (s->busy || s->checking) {
            s->replan = true; /* retired once its install/reload is done */
            continue;
        }
        retire_service(w, s);
    }
}

/* Runtime quiescence fired: place servers, apply what needs no reload,
 * queue the rest for the structural window. */
static void on_runtime_due(void *arg)
{
    struct watcher *w = arg;
    bool structural = false, any_runtime = false;

    if (!w->snap || w->stopping)
        return;
    log_debug("watcher: planning snapshot %016llx", (unsigned long long)w->snap->inputs_hash);
    for (size_t i = 0; i < w->snap->n_services; i++) {
        const struct snapshot_service *svc = &w->snap->services[i];
        struct service_state *s;
        json_t *st = NULL;
        if (ensure_service(w, svc->def->name) < 0 || !(s = service_state(w, svc->def->name)))
            continue;
        if (s->retired) {
            log_info("watcher: service %s: defined again; rendering it", s->name);
            s->retired = false;
        }
        if (s->busy) {
            s->replan = true; /* replanned when the reload is done */
            continue;
        }
        if (plan_service(w, svc) < 0)
            continue;
        if (service_json(w, svc, true, &st) < 0) {
            log_error("watcher: service %s: cannot build its template data; keeping HAProxy as "
                      "it is",
                      svc->def->name);
            continue;
        }
        if (!s->structure || !json_equal(st, s->structure)) {
            s->reload_pending = true;
            structural = true;
        } else {
            any_runtime = true;
            s->file_stale = true;
            structural = true; /* refresh the file in the quiet window, no reload */
        }
        json_decref(st);
    }
    retire_removed(w);
    update_gauges(w);
    /* the agent must read "ready" for a filled slot before its agent is
     * enabled, and "maint" for a freed one */
    write_agent_state(w, false);
    w->snapshot_dirty = true;
    structural = true;
    for (size_t i = 0; any_runtime && i < w->snap->n_services; i++) {
        struct service_state *s = service_state(w, w->snap->services[i].def->name);
        if (s && !s->reload_pending && !s->busy)
            apply_service(w, s, &w->snap->services[i]);
    }
    if (any_runtime)
        mark_applied(w);
    if (structural)
        quiesce_timer_kick(w->struct_q);
}

/* ---- structural: render, check, install, reload ---- */

static void finish_service(struct watcher *w, struct service_state *s,
                           const struct snapshot_service *svc, json_t *structure)
{
    json_decref(s->structure);
    s->structure = structure;
    s->reload_pending = false;
    if (svc)
        apply_service(w, s, svc);
    mark_applied(w);
}

struct reload_ctx {
    struct watcher *w;
    struct service_state *s;
    json_t *structure;
};

static void on_reloaded(struct haproxy_runtime *rt, const struct haproxy_reload_result *res,
                        void *arg)
{
    struct reload_ctx *c = arg;
    struct watcher *w = c->w;
    struct service_state *s = c->s;
    char err[512];
    (void)rt;
    s->busy = false;
    if (res->status == -ECANCELED || w->stopping) {
        json_decref(c->structure);
        free(c);
        return;
    }
    if (res->status == 0) {
        metrics_counter_inc(w->m_reloads);
        log_info("watcher: service %s: reloaded (worker %d, reload %d -> %d, %llu ms)", s->name,
                 res->new_worker_pid, res->reloads_before, res->reloads_after,
                 (unsigned long long)res->elapsed_ms);
        const struct snapshot_service *svc = w->snap ? snapshot_service(w->snap, s->name) : NULL;
        finish_service(w, s, svc, c->structure);
    } else if (res->status == -ENOENT || res->status == -ECONNREFUSED) {
        /* no HAProxy running: the checked file stays; it starts with it */
        log_warn("watcher: service %s: HAProxy master not reachable (%s); the checked config "
                 "stays installed for its next start",
                 s->name, res->message);
        finish_service(w, s, NULL, c->structure);
    } else {
        metrics_counter_inc(w->m_reload_failures);
        log_error("watcher: service %s: reload failed: %s; rolling back the config", s->name,
                  res->message);
        if (render_rollback(opt.config_dir, s->name, err, sizeof(err)) < 0)
            log_error("watcher: %s", err);
        json_decref(c->structure);
    }
    if (!w->stopping && s->replan) {
        s->replan = false;
        quiesce_timer_kick(w->runtime_q);
    }
    free(c);
}

struct install_ctx {
    struct watcher *w;
    struct service_state *s;
    json_t *structure;
    bool refresh_only;
};

static void on_installed(void *arg, int status, bool changed, const char *errmsg)
{
    struct install_ctx *c = arg;
    struct watcher *w = c->w;
    struct service_state *s = c->s;
    const struct snapshot_service *svc = w->snap ? snapshot_service(w->snap, s->name) : NULL;
    int rc;

    s->checking = false;
    if (w->stopping)
        goto out;
    if (status < 0) {
        metrics_counter_inc(w->m_render_failures);
        log_error("watcher: service %s (key %s): %s; the running config stays", s->name,
                  svc ? svc->def->key : "?", errmsg ? errmsg : strerror(-status));
        if (!c->refresh_only) {
            s->busy = false;
            s->reload_pending = false;
        }
        goto out;
    }
    if (c->refresh_only) {
        /* HAProxy already runs this through the runtime API; the file
         * follows so a restart (or our own restart) starts from it */
        if (changed)
            log_debug("watcher: service %s: config file refreshed, no reload", s->name);
        goto out;
    }
    if (!changed || !s->rt) {
        log_info("watcher: service %s: installed config already matches; no reload", s->name);
        s->busy = false;
        finish_service(w, s, svc, c->structure);
        c->structure = NULL;
        goto out;
    }
    struct reload_ctx *rc_ctx = calloc(1, sizeof(*rc_ctx));
    if (!rc_ctx) {
        s->busy = false;
        goto out;
    }
    rc_ctx->w = w;
    rc_ctx->s = s;
    rc_ctx->structure = c->structure;
    c->structure = NULL;
    log_info("watcher: service %s: config installed, reloading", s->name);
    /* the placements the config was rendered from (frozen while busy):
     * the runtime keeps only state-file lines that agree with them */
    struct haproxy_placement pl[64];
    size_t npl = 0;
    for (size_t i = 0; svc && i < svc->n_backends && npl < 64; i++) {
        const struct slot_assignment *a = committed_slots(w, svc->backends[i].def->name);
        if (a)
            pl[npl++] = (struct haproxy_placement){svc->backends[i].def->name, a};
    }
    rc = npl && npl == (svc ? svc->n_backends : 0)
             ? haproxy_runtime_reload_placed(s->rt, pl, npl, on_reloaded, rc_ctx)
             : haproxy_runtime_reload(s->rt, on_reloaded, rc_ctx);
    if (rc < 0) {
        s->busy = false;
        log_error("watcher: service %s: cannot start the reload: %s", s->name, strerror(-rc));
        json_decref(rc_ctx->structure);
        free(rc_ctx);
    }
out:
    /* work that arrived while this one ran */
    if (!w->stopping && (s->reload_pending || s->file_stale))
        quiesce_timer_kick(w->struct_q);
    if (!w->stopping && s->replan && !s->busy) {
        s->replan = false;
        quiesce_timer_kick(w->runtime_q);
    }
    json_decref(c->structure);
    free(c);
}

static void on_struct_due(void *arg)
{
    struct watcher *w = arg;
    char err[2048];

    if (!w->snap || w->stopping)
        return;
    if (w->snapshot_dirty) {
        /* placements and inputs for a restart without Consul; written in
         * the quiet window because its fsync would delay runtime applies */
        w->snapshot_dirty = false;
        save_snapshot(w);
        write_agent_state(w, true);
    }
    for (size_t i = 0; i < w->snap->n_services; i++) {
        const struct snapshot_service *svc = &w->snap->services[i];
        struct service_state *s = service_state(w, svc->def->name);
        json_t *data = NULL, *st = NULL;
        struct template_buf buf = {0};
        struct install_ctx *c = NULL;
        int rc;

        if (!s || (!s->reload_pending && !s->file_stale) || s->busy || s->checking)
            continue;
        bool refresh_only = !s->reload_pending;
        s->file_stale = false;
        if ((rc = service_json(w, svc, false, &data)) < 0 ||
            (rc = service_json(w, svc, true, &st)) < 0) {
            log_error("watcher: service %s: template data: %s; nothing installed", s->name,
                      strerror(-rc));
            goto next;
        }
        if ((rc = render_text(w->templates, svc->def->template_name, data, &buf, err,
                              sizeof(err))) < 0) {
            metrics_counter_inc(w->m_render_failures);
            log_error("watcher: service %s (key %s): %s; the running config stays", s->name,
                      svc->def->key, err);
            s->reload_pending = false;
            goto next;
        }
        if (!(c = calloc(1, sizeof(*c))))
            goto next;
        c->w = w;
        c->s = s;
        c->structure = st;
        c->refresh_only = refresh_only;
        st = NULL;
        s->checking = true;
        if (!refresh_only) {
            s->busy = true; /* until reloaded: runtime planning waits */
            s->reload_pending = false;
        }
        if ((rc = render_install_async(w->loop, opt.haproxy_bin, opt.config_dir, s->name,
                                       buf.data ? buf.data : "", buf.len, on_installed, c)) < 0) {
            log_error("watcher: service %s: cannot start the config check: %s", s->name,
                      strerror(-rc));
            s->checking = false;
            s->busy = false;
            json_decref(c->structure);
            free(c);
        }
    next:
        template_buf_free(&buf);
        json_decref(data);
        json_decref(st);
    }
}

/* ---- snapshots in ---- */

static void take_snapshot(struct watcher *w, struct snapshot *snap);

/* Rebuild the snapshot in force from its own inputs: maintenance and
 * force-removal entries that expired since drop out (a force-removal that
 * ends re-arms the guard) without waiting for a KV change. */
static void on_expiry(uv_timer_t *t)
{
    struct watcher *w = t->data;
    struct snapshot_entry *e;
    struct snapshot *snap = NULL;
    if (!w->snap || w->stopping)
        return;
    if (!(e = calloc(w->snap->n_entries + 1, sizeof(*e))))
        return;
    for (size_t i = 0; i < w->snap->n_entries; i++) {
        const struct snapshot_entry *s = &w->snap->entries[i];
        e[i].key = strdup(s->key);
        e[i].value = malloc(s->len + 1);
        if (!e[i].key || !e[i].value) {
            snapshot_entries_free(e, i + 1);
            return;
        }
        memcpy(e[i].value, s->value ? s->value : "", s->len);
        e[i].value[s->len] = '\0';
        e[i].len = s->len;
    }
    if (snapshot_build(&w->model, e, w->snap->n_entries, (int64_t)time(NULL), w->snap, &snap) ==
        0) {
        log_info("watcher: a maintenance or force-removal entry expired; re-planning");
        take_snapshot(w, snap);
    }
}

static void arm_expiry(struct watcher *w)
{
    int64_t next = 0, now = (int64_t)time(NULL);
    const struct kv_model *m = &w->snap->model;
    for (size_t i = 0; i < m->n_maint; i++)
        if (m->maint[i].expires && (!next || m->maint[i].expires < next))
            next = m->maint[i].expires;
    for (size_t i = 0; i < m->n_forces; i++)
        if (m->forces[i].expires && (!next || m->forces[i].expires < next))
            next = m->forces[i].expires;
    uv_timer_stop(&w->expiry);
    if (next)
        uv_timer_start(&w->expiry, on_expiry, (uint64_t)(next > now ? next - now : 0) * 1000 + 100,
                       0);
}

static void take_snapshot(struct watcher *w, struct snapshot *snap)
{
    uint64_t bad = 0;
    for (int p = 0; p < KVM_PREFIX_COUNT; p++) {
        metrics_gauge_set(w->m_bad[p], (double)snap->model.bad[p]);
        bad += snap->model.bad[p];
    }
    metrics_counter_add(w->m_bad_total, bad);
    metrics_counter_inc(w->m_snapshots);
    log_info("watcher: snapshot %016llx: %zu services, %zu kube services, %zu nodes, %zu "
             "maintenance entries, %llu bad entries",
             (unsigned long long)snap->inputs_hash, snap->n_services, snap->model.n_kube_services,
             snap->model.n_nodes, snap->model.n_maint, (unsigned long long)bad);
    snapshot_free(w->snap);
    w->snap = snap;
    quiesce_timer_kick(w->runtime_q);
    arm_expiry(w);
}

static void on_feed_snapshot(void *arg, struct snapshot *snap)
{
    ((struct watcher *)arg)->snap_from_feed = true;
    take_snapshot(arg, snap);
}

static const struct snapshot *feed_current(void *arg)
{
    return ((struct watcher *)arg)->snap;
}

static void on_feed_error(void *arg, const char *prefix, int err, const char *msg)
{
    struct watcher *w = arg;
    (void)prefix;
    (void)err;
    (void)msg;
    metrics_counter_inc(w->m_consul_errors);
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
    template_set_free(w->templates);
    w->templates = set;
    metrics_counter_inc(w->m_tpl_reloads);
    log_info("watcher: SIGHUP: templates reloaded from %s; re-rendering every service",
             opt.template_dir);
    for (size_t i = 0; i < w->n_svcs; i++)
        w->svcs[i]->reload_pending = !w->svcs[i]->retired;
    quiesce_timer_kick(w->struct_q);
}

/* The first SIGTERM/SIGINT (daemon_signals logged it and sent STOPPING=1). */
static void on_stop(void *arg, int signum)
{
    struct watcher *w = arg;
    (void)signum;
    w->stopping = true;
    if (w->snapshot_dirty && w->snap)
        save_snapshot(w);
    consul_feed_stop(w->feed);
    w->feed = NULL;
    consul_client_free(w->consul);
    w->consul = NULL;
    for (size_t i = 0; i < w->n_svcs; i++) {
        haproxy_runtime_free(w->svcs[i]->rt);
        w->svcs[i]->rt = NULL;
    }
    quiesce_timer_free(w->runtime_q);
    quiesce_timer_free(w->struct_q);
    w->runtime_q = w->struct_q = NULL;
    http_server_close(w->http);
    w->http = NULL;
    sdnotify_watchdog_stop(w->watchdog);
    w->watchdog = NULL;
    uv_close((uv_handle_t *)&w->expiry, NULL);
    uv_close((uv_handle_t *)&w->resync, NULL);
    daemon_signals_close(&w->sig);
}

static void setup_metrics(struct watcher *w)
{
    struct metrics_registry *r = w->metrics;
    char labels[64];
    w->m_snapshots = metrics_counter(r, "drover_watcher_snapshots_total",
                                     "Snapshots built from changed KV inputs.", NULL);
    w->m_reloads = metrics_counter(r, "drover_watcher_reloads_total",
                                   "HAProxy reloads confirmed with show proc.", NULL);
    w->m_reload_failures = metrics_counter(r, "drover_watcher_reload_failures_total",
                                           "Reloads that failed (config rolled back).", NULL);
    w->m_render_failures = metrics_counter(
        r, "drover_watcher_render_failures_total",
        "Renders refused (template/value error or haproxy -c); nothing installed.", NULL);
    w->m_applies =
        metrics_counter(r, "drover_watcher_runtime_applies_total",
                        "Backends brought to their slots through the runtime API.", NULL);
    w->m_apply_failures = metrics_counter(r, "drover_watcher_runtime_apply_failures_total",
                                          "Runtime API applies that failed.", NULL);
    w->m_held_total = metrics_counter(r, "drover_watcher_removals_held_total",
                                      "Changes held back by the mass-removal guard.", NULL);
    w->m_held = metrics_gauge(r, "drover_watcher_removals_held",
                              "Backends whose latest change is held by the removal guard.", NULL);
    w->m_svc_removed = metrics_counter(r, "drover_watcher_services_removed_total",
                                       "Services removed from KV: config moved aside, frontends "
                                       "disabled.",
                                       NULL);
    w->m_svc_removals_held_total =
        metrics_counter(r, "drover_watcher_service_removals_held_total",
                        "Service removals held back by the mass-removal guard.", NULL);
    w->m_svc_removals_held =
        metrics_gauge(r, "drover_watcher_service_removals_held",
                      "1 while the latest service removal is held by the guard.", NULL);
    w->m_consul_errors = metrics_counter(r, "drover_watcher_consul_errors_total",
                                         "Failed Consul watch attempts (fail static).", NULL);
    w->m_bad_total = metrics_counter(r, "drover_watcher_kv_bad_entries_total",
                                     "Bad KV entries skipped, summed over snapshots.", NULL);
    w->m_tpl_reloads = metrics_counter(r, "drover_watcher_template_reloads_total",
                                       "Template directory reloads on SIGHUP.", NULL);
    w->m_tpl_reload_failures =
        metrics_counter(r, "drover_watcher_template_reload_failures_total",
                        "SIGHUP template reloads refused (the old set stays).", NULL);
    for (int p = 0; p < KVM_PREFIX_COUNT; p++) {
        metrics_format_labels(labels, sizeof(labels), "prefix", kvm_prefix_name(p), NULL);
        w->m_bad[p] = metrics_gauge(r, "drover_watcher_kv_bad_entries",
                                    "Bad KV entries skipped in the current snapshot.", labels);
    }
    w->m_ready = metrics_gauge(r, "drover_watcher_ready", "1 once a snapshot was applied.", NULL);
    w->m_last_apply = metrics_gauge(r, "drover_watcher_last_apply_timestamp_seconds",
                                    "When a snapshot was last applied.", NULL);
    w->m_services = metrics_gauge(r, "drover_watcher_services", "HAProxy services served.", NULL);
    w->m_servers =
        metrics_gauge(r, "drover_watcher_servers", "Servers placed in slots, all backends.", NULL);
}

static void model_opts(struct kv_model_opts *m)
{
    m->root = opt.consul.kv_prefix;
    m->haproxy_cluster = opt.haproxy_cluster;
    m->kube_clusters = (const char *const *)opt.kube_clusters.items;
    m->n_kube_clusters = opt.kube_clusters.count;
}

static void load_saved(struct watcher *w)
{
    struct snapshot *snap = NULL;
    struct snapshot_saved_slots *saved = NULL;
    size_t n_saved = 0;
    char err[512];
    int rc = snapshot_load(opt.snapshot_file, &w->model, (int64_t)time(NULL), &snap, &saved,
                           &n_saved, err, sizeof(err));
    if (rc == -ENOENT) {
        log_info("watcher: no snapshot file %s yet; waiting for Consul before rendering anything",
                 opt.snapshot_file);
        return;
    }
    if (rc < 0) {
        log_warn("watcher: %s; ignoring it, waiting for Consul", err);
        return;
    }
    for (size_t i = 0; i < n_saved; i++) {
        struct backend_state *bs = backend_state(w, saved[i].backend);
        if (!bs)
            continue;
        slot_assignment_free(&bs->a);
        bs->a = saved[i].a;
        slot_assignment_init(&saved[i].a);
        bs->have = true;
    }
    snapshot_saved_slots_free(saved, n_saved);
    log_info("watcher: loaded snapshot %016llx from %s (%zu services); serving it until Consul "
             "answers",
             (unsigned long long)snap->inputs_hash, opt.snapshot_file, snap->n_services);
    take_snapshot(w, snap);
}

static int run_daemon(void)
{
    struct watcher w = {0};
    char err[512];
    int rc;

    w.loop = uv_default_loop();
    model_opts(&w.model);
    w.metrics = metrics_registry_new();
    if (!w.metrics)
        return 1;
    setup_metrics(&w);
    if ((rc = render_load_templates(opt.template_dir, &w.templates, err, sizeof(err))) < 0) {
        log_error("watcher: %s; cannot start", err);
        return 1;
    }
    if (mkdir(opt.config_dir, 0755) < 0 && errno != EEXIST)
        log_warn("watcher: config dir %s: %s", opt.config_dir, strerror(errno));
    if (quiesce_timer_new(w.loop, opt.runtime_wait_ms, opt.runtime_wait_ms * 5 / 2, on_runtime_due,
                          &w, &w.runtime_q) < 0 ||
        quiesce_timer_new(w.loop, opt.wait_min_ms, opt.wait_max_ms, on_struct_due, &w,
                          &w.struct_q) < 0)
        return 1;
    if (daemon_http_start(w.loop, "watcher", opt.metrics_addr, w.metrics, &w.http) < 0)
        return 1;
    if (w.http)
        http_server_set_ready(w.http, false, "no snapshot applied yet");
    if ((rc = consul_client_new(w.loop, &consul_cfg, &w.consul)) < 0) {
        log_error("watcher: consul client for %s: %s; cannot start", consul_cfg.address,
                  strerror(-rc));
        return 1;
    }
    uv_timer_init(w.loop, &w.expiry);
    w.expiry.data = &w;
    uv_timer_init(w.loop, &w.resync);
    w.resync.data = &w;
    if (opt.resync_ms > 0)
        uv_timer_start(&w.resync, on_resync, (uint64_t)opt.resync_ms, (uint64_t)opt.resync_ms);
    load_saved(&w);
    struct consul_feed_opts fo = {
        .model = &w.model,
        .wait_s = (unsigned)(opt.consul_wait_ms / 1000),
        .on_snapshot = on_feed_snapshot,
        .on_error = on_feed_error,
        .current = feed_current,
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

    snapshot_free(w.snap);
    for (size_t i = 0; i < w.n_bes; i++) {
        free(w.bes[i].name);
        free(w.bes[i].service);
        slot_assignment_free(&w.bes[i].a);
    }
    free(w.bes);
    for (size_t i = 0; i < w.n_svcs; i++) {
        free(w.svcs[i]->name);
        json_decref(w.svcs[i]->structure);
        free(w.svcs[i]);
    }
    free(w.svcs);
    template_set_free(w.templates);
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

/* Read the watched prefixes once and build a snapshot. */
static int fetch_snapshot(const struct kv_model_opts *m, struct snapshot **out)
{
    uv_loop_t loop;
    struct consul_client *c = NULL;
    char **prefixes = NULL;
    size_t n = 0;
    struct fetch f = {0};
    int rc;

    uv_loop_init(&loop);
    if ((rc = consul_feed_prefixes(m, &prefixes, &n)) < 0 ||
        (rc = consul_client_new(&loop, &consul_cfg, &c)) < 0)
        goto out;
    f.lists = calloc(n, sizeof(*f.lists));
    for (size_t i = 0; f.lists && i < n; i++) {
        struct fetch_one *o = calloc(1, sizeof(*o));
        if (!o)
            break;
        o->f = &f;
        o->i = i;
        if (consul_kv_get_prefix(c, prefixes[i], on_fetched, o) == 0)
            f.pending++;
        else
            free(o);
    }
    uint64_t t0 = uv_hrtime();
    while (f.pending && uv_run(&loop, UV_RUN_ONCE))
        ;
    if (f.err) {
        log_error("watcher: reading Consul: %s", f.errmsg);
        rc = f.err;
    } else {
        struct snapshot_entry *e = NULL;
        size_t ne = 0;
        uint64_t t1 = uv_hrtime();
        rc = consul_feed_entries((const struct consul_kv_list *const *)f.lists, n, &e, &ne);
        if (rc == 0)
            rc = snapshot_build(m, e, ne, (int64_t)time(NULL), NULL, out);
        /* bench/watcher reads these (the render split) */
        log_info("render: timing: consul_read_ms=%.1f snapshot_ms=%.1f keys=%zu",
                 (double)(t1 - t0) / 1e6, (double)(uv_hrtime() - t1) / 1e6, ne);
    }
out:
    for (size_t i = 0; i < n; i++) {
        free(prefixes[i]);
        if (f.lists && f.lists[i])
            consul_kv_list_free(f.lists[i]);
    }
    free(prefixes);
    free(f.lists);
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

/* render --snapshot FILE --out DIR / render --diff */
static int run_render(void)
{
    const char *snap_file = ropt.snapshot, *out_dir = ropt.out;
    bool diff = ropt.diff;
    struct kv_model_opts m;
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
            status = 1;
            goto done;
        }
        out_dir = tmp;
    } else if (mkdir(out_dir, 0755) < 0 && errno != EEXIST) {
        log_error("render: --out %s: %s", out_dir, strerror(errno));
        status = 1;
        goto done;
    }
    if (snap->n_services == 0)
        log_warn("render: the snapshot has no HAProxy service for cluster %s; nothing rendered",
                 opt.haproxy_cluster);
    for (size_t i = 0; i < snap->n_services; i++) {
        const struct snapshot_service *svc = &snap->services[i];
        struct snapshot_render_opts ro;
        char *stats, *state, path[PATH_MAX];
        json_t *data = NULL;
        struct template_buf buf = {0};
        uint64_t t0 = uv_hrtime();
        render_opts(svc->def->name, &ro, &stats, &state);
        rc = snapshot_service_json(snap, svc, &ro, saved_slots, &sv, false, &data);
        if (rc == -ENOSPC) /* saved placement too small: default placement */
            rc = snapshot_service_json(snap, svc, &ro, NULL, NULL, false, &data);
        free(stats);
        free(state);
        snprintf(path, sizeof(path), "%s/%s.cfg", out_dir, svc->def->name);
        uint64_t t1 = uv_hrtime(), t2 = 0, t3 = 0;
        if (rc < 0 || render_text(set, svc->def->template_name, data, &buf, err, sizeof(err)) < 0 ||
            (t2 = uv_hrtime(), atomic_file_write(path, buf.data, buf.len, 0644) < 0) ||
            (t3 = uv_hrtime(), render_check_file(opt.haproxy_bin, path, err, sizeof(err)) < 0)) {
            log_error("render: service %s: %s", svc->def->name, rc < 0 ? strerror(-rc) : err);
            status = 1;
        } else {
            log_info("render: timing: service=%s data_ms=%.1f template_ms=%.1f write_ms=%.1f "
                     "check_ms=%.1f bytes=%zu",
                     svc->def->name, (double)(t1 - t0) / 1e6, (double)(t2 - t1) / 1e6,
                     (double)(t3 - t2) / 1e6, (double)(uv_hrtime() - t3) / 1e6, buf.len);
            if (!diff)
                printf("%s: ok\n", path);
        }
        if (diff) {
            char cmd[PATH_MAX * 2 + 64], running[PATH_MAX];
            snprintf(running, sizeof(running), "%s/%s.cfg", opt.config_dir, svc->def->name);
            if (access(running, R_OK) < 0)
                snprintf(running, sizeof(running), "/dev/null");
            snprintf(cmd, sizeof(cmd), "diff -u '%s' '%s'", running, path);
            fflush(stdout);
            int d = system(cmd);
            if (d != 0 && status == 0)
                status = 3; /* differences */
            unlink(path);
        }
        template_buf_free(&buf);
        json_decref(data);
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
