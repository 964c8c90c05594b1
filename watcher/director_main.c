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
 * `drover-watcher director ...`.
 */
#include "director_main.h"

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
#include "director_publish.h"
#include "director_snapshot.h"
#include "frontdoor_agent.h"
#include "host_status.h"
#include "http_server.h"
#include "kv_frontdoor.h"
#include "kv_status.h"
#include "log.h"
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
    char *status_host;
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
    CONFIG_OPT_STRING("host-name", &dopt.host_name, NULL,
                      "front door: this host's name in frontdoor/hosts/<host> (drain); default "
                      "the system's host name"),
    CONFIG_OPT_DURATION("frontdoor-lease", &dopt.frontdoor_lease_ms, "3s",
                        "frontdoor-guard: the daemon counts as dead when its state file is older"),
    CONFIG_OPT_STRING("status-host", &dopt.status_host, NULL,
                      "name of this host in its status entry status/<host>/director (default: "
                      "the hostname)"),
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

struct dw {
    uv_loop_t *loop;
    struct consul_client *consul;
    struct curl_uv *cu;
    struct director_feed *feed;
    struct consul_watch *chealth;
    struct director_health *health;
    struct director_apply *apply;
    struct director_inputs *in; /* latest inputs (KV or snapshot) */
    /* the inputs in force (held changes leave them), copied on the loop
     * after each job: their proxies stay health-checked and looked up */
    struct director_inputs *applied;
    bool from_kv;
    uv_timer_t due, verify;
    struct daemon_signals sig;
    struct backoff retry;
    bool stopping, failing;
    struct http_server *http;
    struct metrics_registry *metrics;
    struct metrics_counter *m_applies, *m_held, *m_errors, *m_bad, *m_verify, *m_snap_errors;
    struct metrics_gauge *m_held_now, *m_ready, *m_moved;
    struct sdnotify_watchdog *wd;
    bool busy, again; /* an apply job runs on the thread pool; run again after it */
    uint64_t held_seen, snap_errors_seen;
    /* what the collector shows, copied after each job (see cache_table) */
    struct {
        char id[DIRECTOR_TABLE_ID_MAX + 1];
        uint32_t primary, secondary;
    } * rows;
    uint32_t n_rows;
    char checksum[17];
    const char *tier;
    double balance;
    bool have_table;
    int64_t last_change;
    uint32_t generation;
    /* front door */
    struct frontdoor_agent *frontdoor;
    uv_timer_t fd_timer;
    struct consul_watch *fd_drain;
    char *fd_drain_key, *fd_status_key;
    char *fd_published; /* last status put (without packets and time) */
    int64_t fd_published_ms;
    bool fd_put_busy;
    uint64_t gen_checksum; /* generation the last good apply put in force */
    bool applied_ok;
    char *pin_dir;
    /* the status entry R status/<host>/director */
    struct host_status *status;
    int64_t started_unix, status_unix;
    char last_error[512];
};

static void status_changed(struct dw *w)
{
    w->status_unix = time(NULL);
    host_status_changed(w->status);
}

static json_t *status_fill(void *arg)
{
    struct dw *w = arg;
    const struct director_apply_stats *st = director_apply_get_stats(w->apply);
    size_t n_vips = w->in ? w->in->n_vips : 0;
    char snap[17] = "", *guards[2] = {"moved-share", NULL};
    char **vips = calloc(n_vips + 1, sizeof(*vips));
    struct kv_status_rec r = {.host = dopt.status_host,
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

/* One apply on the thread pool: table builds take tens of milliseconds for
 * a thousand proxies (far more under sanitizers), and the loop must keep
 * answering health checks and Consul meanwhile. The job owns copies of the
 * inputs and of the health it was started with; the applier is touched by
 * the worker only while w->busy. */
struct job {
    uv_work_t req;
    struct dw *w;
    struct director_inputs *in;
    char **hosts;
    bool *healthy;
    size_t n;
    int rc;
    enum director_apply_outcome out;
};

static bool job_lookup(void *arg, const char *host)
{
    const struct job *j = arg;
    for (size_t i = 0; i < j->n; i++)
        if (strcmp(j->hosts[i], host) == 0)
            return j->healthy[i];
    return true;
}

static void job_free(struct job *j)
{
    for (size_t i = 0; i < j->n; i++)
        free(j->hosts[i]);
    free(j->hosts);
    free(j->healthy);
    director_inputs_free(j->in);
    free(j);
}

static void work_cb(uv_work_t *req)
{
    struct job *j = req->data;
    j->rc = director_apply_run(j->w->apply, j->in, job_lookup, j, (int64_t)time(NULL), &j->out);
}

static void on_due(uv_timer_t *t);
static void schedule(struct dw *w, uint64_t ms);

/* Copy what the metrics collector shows, on the loop, between jobs. */
static void cache_table(struct dw *w)
{
    const struct director_table *t = director_apply_table(w->apply);

    if (!t)
        return;
    void *p = realloc(w->rows, (t->proxy_count + 1) * sizeof(*w->rows));
    if (!p)
        return;
    w->rows = p;
    w->n_rows = t->proxy_count;
    for (uint32_t i = 0; i < t->proxy_count; i++) {
        snprintf(w->rows[i].id, sizeof(w->rows[i].id), "%s", t->proxies[i].id);
        w->rows[i].primary = t->proxies[i].primary_rows;
        w->rows[i].secondary = t->proxies[i].secondary_rows;
    }
    snprintf(w->checksum, sizeof(w->checksum), "%016llx", (unsigned long long)t->checksum);
    w->tier = director_table_tier_name(t->tier);
    w->balance = t->balance_max_over_mean;
    w->have_table = true;
}

static void after_work(uv_work_t *req, int status)
{
    struct job *j = req->data;
    struct dw *w = j->w;
    const struct director_apply_stats *st = director_apply_get_stats(w->apply);

    w->busy = false;
    if (status < 0 || w->stopping) {
        job_free(j);
        return;
    }
    metrics_gauge_set(w->m_held_now, st->held_now ? 1 : 0);
    metrics_gauge_set(w->m_moved, st->held_moved_share);
    if (st->held > w->held_seen)
        metrics_counter_add(w->m_held, st->held - w->held_seen);
    w->held_seen = st->held;
    if (st->snapshot_errors > w->snap_errors_seen)
        metrics_counter_add(w->m_snap_errors, st->snapshot_errors - w->snap_errors_seen);
    w->snap_errors_seen = st->snapshot_errors;
    w->last_change = st->last_change_unix;
    w->generation = st->generation;
    w->gen_checksum = st->generation_checksum;
    w->applied_ok = j->rc == 0 && st->generation_checksum != 0;
    cache_table(w);
    const struct director_inputs *force_in = director_apply_inputs(w->apply);
    if (force_in && (!w->applied || w->applied->hash != force_in->hash)) {
        struct director_inputs *copy = director_inputs_dup(force_in);
        if (copy) {
            director_inputs_free(w->applied);
            w->applied = copy;
            if (director_health_set_targets(w->health, w->in, w->applied) < 0)
                log_error(
                    "director: out of memory updating the health checks; keeping the old set");
        }
    }
    if (j->rc < 0)
        snprintf(w->last_error, sizeof(w->last_error), "apply: %s", st->last_error);
    status_changed(w);
    if (j->rc < 0) {
        metrics_counter_inc(w->m_errors);
        uint64_t d = backoff_next(&w->retry);
        log_warn("director: apply failed; retry in %llu ms", (unsigned long long)d);
        schedule(w, d);
        if (w->http)
            http_server_set_ready(w->http, false, st->last_error);
    } else {
        /* forwarding by the table in force goes on (fail static), but
         * while its snapshot cannot be written a restart without Consul
         * could not re-apply it: not ready, no READY=1, until a write
         * succeeds (every run, at least each verify, retries it) */
        bool ready = !st->snapshot_error[0];
        backoff_reset(&w->retry);
        if (j->out == DIRECTOR_APPLY_APPLIED)
            metrics_counter_inc(w->m_applies);
        metrics_gauge_set(w->m_ready, ready ? 1 : 0);
        if (w->http)
            http_server_set_ready(w->http, ready, ready ? NULL : st->snapshot_error);
        if (ready)
            sdnotify_ready();
    }
    job_free(j);
    if (w->again) {
        w->again = false;
        schedule(w, 0);
    }
}

static void schedule(struct dw *w, uint64_t ms)
{
    if (w->stopping)
        return;
    /* an earlier due time wins: never postpone a pending apply */
    uint64_t left =
        uv_is_active((uv_handle_t *)&w->due) ? uv_timer_get_due_in(&w->due) : UINT64_MAX;
    if (ms < left)
        uv_timer_start(&w->due, on_due, ms, 0);
}

static void run_apply(struct dw *w)
{
    struct job *j;

    if (!w->in || w->stopping)
        return;
    if (w->busy) {
        w->again = true; /* inputs changed while a job runs: once more after it */
        return;
    }
    size_t n_applied = w->applied ? w->applied->n_proxies : 0;
    j = calloc(1, sizeof(*j));
    if (!j || !(j->in = director_inputs_dup(w->in)) ||
        !(j->hosts = calloc(w->in->n_proxies + n_applied + 1, sizeof(*j->hosts))) ||
        !(j->healthy = calloc(w->in->n_proxies + n_applied + 1, sizeof(*j->healthy)))) {
        log_error("director: out of memory starting an apply; retrying");
        if (j)
            job_free(j);
        schedule(w, 1000);
        return;
    }
    /* the health of the proxies in KV and of those in force: a held
     * change (or an emptied director/) is built from the latter */
    for (size_t i = 0; i < w->in->n_proxies + n_applied; i++) {
        const char *host = i < w->in->n_proxies ? w->in->proxies[i].host
                                                : w->applied->proxies[i - w->in->n_proxies].host;
        if (i >= w->in->n_proxies && director_inputs_proxy(w->in, host))
            continue;
        if (!(j->hosts[j->n] = strdup(host)))
            break;
        j->healthy[j->n++] = director_health_healthy(w->health, host);
    }
    j->w = w;
    j->req.data = j;
    if (uv_queue_work(w->loop, &j->req, work_cb, after_work) < 0) {
        job_free(j);
        schedule(w, 1000);
        return;
    }
    w->busy = true;
}

static void on_due(uv_timer_t *t)
{
    run_apply(t->data);
}

static void on_verify(uv_timer_t *t)
{
    struct dw *w = t->data;
    metrics_counter_inc(w->m_verify);
    run_apply(w);
}

static const struct director_inputs *feed_current(void *arg)
{
    struct dw *w = arg;
    return w->from_kv ? w->in : NULL;
}

static void on_inputs(void *arg, struct director_inputs *in, unsigned bad)
{
    struct dw *w = arg;

    metrics_counter_add(w->m_bad, bad);
    if (w->in && w->from_kv && w->in->hash == in->hash) {
        director_inputs_free(in);
        return; /* same content: spurious wake-up */
    }
    log_info("director: KV inputs %016llx: %zu proxies, %zu VIPs, config %s, force %s, %u bad "
             "entries",
             (unsigned long long)in->hash, in->n_proxies, in->n_vips,
             in->config.present ? "ok" : "missing", in->force.present ? "present" : "absent", bad);
    director_inputs_free(w->in);
    w->in = in;
    w->from_kv = true;
    if (director_health_set_targets(w->health, in, w->applied) < 0)
        log_error("director: out of memory updating the health checks; keeping the old set");
    schedule(w, (uint64_t)dopt.wait_ms);
}

static void on_feed_error(void *arg, int err, const char *msg)
{
    struct dw *w = arg;
    (void)err;
    snprintf(w->last_error, sizeof(w->last_error), "consul: %s", msg);
    status_changed(w);
    /* counted by the Consul client (drover_watcher_director_consul_errors_total) */
    log_warn("director: %s; forwarding with the table in force", msg);
}

static void on_health_change(void *arg, const char *host, bool healthy)
{
    (void)host;
    (void)healthy;
    /* within the interval: the next loop turn builds the new table */
    schedule(arg, 0);
}

static void on_consul_health(void *arg, struct consul_response *resp)
{
    struct dw *w = arg;
    director_health_set_consul(w->health, resp->health);
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
    }
    metrics_emit(em, "drover_watcher_director_last_change_timestamp_seconds",
                 "When the applied table last changed.", METRICS_GAUGE, (double)w->last_change,
                 NULL);
    metrics_emit(em, "drover_watcher_director_generation", "Active generation written by us.",
                 METRICS_GAUGE, (double)w->generation, NULL);
    if (w->consul)
        consul_stats_emit(consul_client_stats(w->consul), em, "watcher_director");
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
    if (w->fd_drain)
        consul_watch_stop(w->fd_drain);
    w->fd_drain = NULL;
    /* the session goes first: Consul deletes the status entry with it */
    host_status_stop(w->status, status_stopped, w);
    w->status = NULL;
    director_health_free(w->health);
    w->health = NULL;
    curl_uv_free(w->cu);
    w->cu = NULL;
    http_server_close(w->http);
    w->http = NULL;
    sdnotify_watchdog_stop(w->wd);
    w->wd = NULL;
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

/* The director host's serving conditions, the same for every VIP: XDP
 * attached, the generation in force is the one built from Consul's inputs
 * (and verified), at least one proxy healthy. While Consul is unreachable
 * the inputs are the last good ones (or the snapshot), so an outage never
 * withdraws anything by itself (fail static holds for routes too). */
static bool director_serving(struct dw *w, char *why, size_t len)
{
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
    for (size_t i = 0; w->in && i < w->in->n_proxies; i++)
        if (w->in->proxies[i].state != DIRECTOR_PROXY_INACTIVE &&
            director_health_healthy(w->health, w->in->proxies[i].host))
            healthy++;
    if (!healthy) {
        snprintf(why, len, "no healthy proxy");
        return false;
    }
    return true;
}

static void on_status_put(void *arg, struct consul_response *resp)
{
    struct dw *w = arg;
    w->fd_put_busy = false;
    if (resp->err) {
        /* counted by the Consul client; the next round tries again */
        log_debug("frontdoor: PUT %s: %s", w->fd_status_key, resp->errmsg);
        free(w->fd_published);
        w->fd_published = NULL;
    }
}

/* R frontdoor/status/<host>: what this host announces and why, its table
 * checksum (directors of a cluster must agree) and its packet counter
 * (droverctl host drain --wait). Put when it changed, else every 2 s
 * (the counter moves). */
static void publish_status(struct dw *w)
{
    struct kv_frontdoor_status st = {0};
    const struct frontdoor_vip_status *vs;
    struct director_stat stats[DIRECTOR_STATS_MAX];
    size_t n = frontdoor_agent_list(w->frontdoor, &vs), ns = DIRECTOR_STATS_MAX;
    char updated[40];
    int64_t now = (int64_t)time(NULL);

    if (!w->consul || w->fd_put_busy || !w->fd_status_key)
        return;
    struct kv_frontdoor_vip *v = calloc(n + 1, sizeof(*v));
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        v[i] = (struct kv_frontdoor_vip){.vip = (char *)vs[i].address,
                                         .route = (char *)frontdoor_route_name(vs[i].route),
                                         .reason = (char *)vs[i].reason};
    st.cluster = dopt.cluster;
    st.table_checksum = w->have_table ? w->checksum : "";
    st.drained = frontdoor_agent_drained(w->frontdoor);
    st.bird_in_sync = frontdoor_agent_in_sync(w->frontdoor);
    st.vips = v;
    st.n_vips = n;
    char *same = kv_frontdoor_status_encode(&st);
    if (director_stats_read_pinned(w->pin_dir, false, stats, &ns) == 0)
        for (size_t i = 0; i < ns; i++)
            if (!strcmp(stats[i].name, "encap_v4") || !strcmp(stats[i].name, "encap_v6"))
                st.packets += stats[i].value;
    timefmt_format_rfc3339(now, updated, sizeof(updated));
    st.updated = updated;
    char *value = kv_frontdoor_status_encode(&st);
    free(v);
    bool changed = !w->fd_published || !same || strcmp(same, w->fd_published) != 0;
    if (value && same && (changed || mono_ms() - w->fd_published_ms >= 2000) &&
        consul_kv_put(w->consul, w->fd_status_key, value, strlen(value), NULL, on_status_put, w) ==
            0) {
        w->fd_put_busy = true;
        w->fd_published_ms = mono_ms();
        free(w->fd_published);
        w->fd_published = same;
        same = NULL;
    }
    free(same);
    free(value);
}

static void on_frontdoor(uv_timer_t *t)
{
    struct dw *w = t->data;
    struct frontdoor_verdict *v = NULL;
    char why[256];
    size_t n = w->in ? w->in->n_vips : 0;

    if (w->stopping || !w->health)
        return;
    bool ok = director_serving(w, why, sizeof(why));
    if (n && !(v = calloc(n, sizeof(*v)))) {
        log_error("frontdoor: out of memory; keeping the routes this round");
        return;
    }
    for (size_t i = 0; i < n; i++)
        v[i] = (struct frontdoor_verdict){
            .address = w->in->vips[i].address, .ok = ok, .reason = ok ? NULL : why};
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

/* frontdoor/hosts/<host>: drained or not. A bad record keeps the last
 * good state; no record is not drained. */
static void on_drain_record(void *arg, struct consul_response *resp)
{
    struct dw *w = arg;
    struct kv_frontdoor_host rec;
    bool drained = false;
    char err[256];

    for (size_t i = 0; resp->kv && i < resp->kv->n; i++) {
        const struct consul_kv *kv = &resp->kv->items[i];
        if (strcmp(kv->key, w->fd_drain_key) != 0)
            continue;
        if (kv_frontdoor_host_decode(kv->value ? (const char *)kv->value : "",
                                     kv->value ? kv->value_len : 0, &rec, err, sizeof(err)) < 0) {
            metrics_counter_inc(w->m_bad);
            log_warn("frontdoor: KV %s: %s; keeping the drain state as it was", kv->key, err);
            return;
        }
        drained = rec.drained;
        kv_frontdoor_host_clear(&rec);
    }
    frontdoor_agent_set_drain(w->frontdoor, drained, mono_ms());
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
    char host[256] = "";
    if (dopt.host_name && *dopt.host_name)
        snprintf(host, sizeof(host), "%s", dopt.host_name);
    else
        gethostname(host, sizeof(host) - 1);
    if (asprintf(&w->fd_drain_key, "%s" KV_FRONTDOOR_HOSTS "%s", dopt.consul.kv_prefix, host) < 0 ||
        asprintf(&w->fd_status_key, "%s" KV_FRONTDOOR_STATUS "%s", dopt.consul.kv_prefix, host) < 0)
        return -ENOMEM;
    struct consul_watch_opts wo = {
        .kind = CONSUL_WATCH_KV_PREFIX,
        .target = w->fd_drain_key,
        .wait_s = (unsigned)(dopt.consul_wait_ms / 1000),
        .on_change = on_drain_record,
        .arg = w,
    };
    if ((rc = consul_watch_start(w->consul, &wo, &w->fd_drain)) < 0)
        log_warn("frontdoor: cannot watch %s: %s; drains of this host are not seen",
                 w->fd_drain_key, strerror(-rc));
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

static void load_snapshot(struct dw *w)
{
    struct director_inputs *in = NULL;
    bool *healthy = NULL;
    int rc = director_apply_load(w->apply, &in, &healthy);

    if (rc == -ENOENT) {
        log_info("director: no snapshot %s yet; waiting for Consul", dopt.snapshot_file);
        return;
    }
    if (rc < 0)
        return;
    for (size_t i = 0; i < in->n_proxies; i++)
        director_health_seed(w->health, in->proxies[i].host, healthy[i]);
    free(healthy);
    w->in = in;
    w->from_kv = false;
    director_health_set_targets(w->health, in, NULL);
    log_info("director: re-applying the snapshot until Consul answers");
    run_apply(w);
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
    if ((rc = director_apply_new(&ao, &w.apply)) < 0 || (rc = curl_uv_new(w.loop, &w.cu)) < 0) {
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
        .on_change = on_health_change,
        .arg = &w,
    };
    if ((rc = director_health_new(w.loop, w.cu, &ho, &w.health)) < 0)
        return 1;
    uv_timer_init(w.loop, &w.due);
    uv_timer_init(w.loop, &w.verify);
    w.due.data = w.verify.data = &w;
    if (daemon_http_start(w.loop, "director", dopt.metrics_addr, w.metrics, &w.http) < 0)
        return 1;
    if (w.http)
        http_server_set_ready(w.http, false, "no table applied yet");
    if ((rc = consul_client_new(w.loop, &dconsul_cfg, &w.consul)) < 0) {
        log_error("director: consul client for %s: %s; cannot start", dconsul_cfg.address,
                  strerror(-rc));
        return 1;
    }
    char *skey = kv_status_key(dopt.consul.kv_prefix, dopt.status_host, KV_STATUS_ROLE_DIRECTOR);
    struct host_status_opts hso = {.key = skey,
                                   .ttl_s = (unsigned)(dopt.status_ttl_ms / 1000),
                                   .fill = status_fill,
                                   .arg = &w};
    w.started_unix = w.status_unix = time(NULL);
    if (!skey || (rc = host_status_start(w.loop, w.consul, &hso, &w.status)) < 0) {
        log_error("director: status entry for host %s: %s; cannot start", dopt.status_host,
                  skey ? strerror(-rc) : "not a valid key segment");
        free(skey);
        return 1;
    }
    free(skey);
    load_snapshot(&w);
    struct director_feed_opts fo = {
        .prefix = prefix,
        .wait_s = (unsigned)(dopt.consul_wait_ms / 1000),
        .on_inputs = on_inputs,
        .on_error = on_feed_error,
        .current = feed_current,
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
            .on_change = on_consul_health,
            .arg = &w,
        };
        if ((rc = consul_watch_start(w.consul, &wo, &w.chealth)) < 0)
            log_warn("director: cannot watch Consul health of %s: %s; using own checks only",
                     dopt.consul_health_service, strerror(-rc));
    }
    uv_timer_start(&w.verify, on_verify, (uint64_t)dopt.verify_ms, (uint64_t)dopt.verify_ms);
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
    free(w.fd_drain_key);
    free(w.fd_status_key);
    free(w.fd_published);
    free(prefix);
    free(dir);
    return 0;
}

/* ---- status ---- */

/* A proxy of the live generation with what the snapshot knows of it. */
struct live_proxy {
    const struct director_live_proxy *live;
    const struct director_proxy_spec *spec;
    const struct director_saved_proxy *saved;
};

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

/* The status page says "never" for a time not yet reached (0). */
static void fmt_time(int64_t t, char *buf, size_t len)
{
    if (t <= 0 || timefmt_format_rfc3339(t, buf, len) < 0)
        snprintf(buf, len, "never");
}

static int status(void)
{
    struct director_saved s = {0};
    struct director_live l = {0};
    struct live_proxy *lp = calloc(DIRECTOR_TABLE_MAX_PROXIES, sizeof(*lp));
    char err[512], *dir = NULL;
    bool have_maps = false, have_snap = false;
    int rc = 1;

    if (!lp)
        goto out;
    if (!dopt.dev || !*dopt.dev) {
        fprintf(stderr, "drover-watcher director status: --dev is required\n");
        rc = 2;
        goto out;
    }
    if (!(dir = pin_dir())) {
        fprintf(stderr, "drover-watcher director status: --dev '%s' names no pin directory\n",
                dopt.dev);
        rc = 2;
        goto out;
    }
    if (director_snapshot_load(dopt.snapshot_file, &s, err, sizeof(err)) == 0)
        have_snap = true;
    else if (!dopt.json)
        fprintf(stderr, "note: %s\n", err);
    if (director_live_read(dir, false, &l) == 0) {
        have_maps = true;
        for (uint32_t i = 0; i < l.n_listed; i++) {
            lp[i].live = &l.proxies[i];
            for (size_t k = 0; have_snap && k < s.inputs->n_proxies; k++) {
                if (strcmp(s.inputs->proxies[k].address, l.proxies[i].address) == 0 &&
                    s.inputs->proxies[k].state != DIRECTOR_PROXY_INACTIVE) {
                    lp[i].spec = &s.inputs->proxies[k];
                    lp[i].saved = &s.proxies[k];
                }
            }
        }
    } else if (!dopt.json) {
        fprintf(stderr, "note: no director maps pinned in %s\n", dir);
    }
    if (!have_maps && !have_snap) {
        fprintf(stderr, "drover-watcher director status: neither maps in %s nor snapshot %s\n", dir,
                dopt.snapshot_file);
        goto out;
    }
    bool in_sync = have_maps && have_snap && l.checksum == s.generation_checksum;
    char applied[32], changed[32], held_since[32];
    fmt_time(s.applied_unix, applied, sizeof(applied));
    fmt_time(s.last_change_unix, changed, sizeof(changed));
    fmt_time(s.held_since_unix, held_since, sizeof(held_since));
    uint32_t n = have_maps ? l.n_listed : 0;
    if (dopt.json) {
        FILE *f = stdout;
        fprintf(f, "{\"dev\":");
        json_str(f, dopt.dev);
        fprintf(f, ",\"maps\":%s", have_maps ? "true" : "false");
        if (have_maps)
            fprintf(f,
                    ",\"generation\":%u,\"generation_checksum\":\"%016llx\",\"gue_port\":%u,"
                    "\"rows_without_proxy\":%u",
                    l.generation, (unsigned long long)l.checksum, l.gue_port, l.rows_without_proxy);
        fprintf(f, ",\"snapshot\":%s", have_snap ? "true" : "false");
        if (have_snap) {
            fprintf(f, ",\"cluster\":");
            json_str(f, s.cluster);
            fprintf(f, ",\"table_checksum\":\"%016llx\",\"in_sync\":%s,\"tier\":",
                    (unsigned long long)s.table_checksum, in_sync ? "true" : "false");
            json_str(f, s.tier);
            fprintf(f,
                    ",\"balance\":%.4f,\"applied\":\"%s\",\"last_change\":\"%s\",\"held\":%s,"
                    "\"held_moved_share\":%.4f,\"held_since\":\"%s\",\"last_error\":",
                    s.balance, applied, changed, s.held ? "true" : "false", s.held_moved_share,
                    held_since);
            json_str(f, s.last_error);
            fprintf(f, ",\"vips\":%zu", s.inputs->n_vips);
        }
        fprintf(f, ",\"proxies\":[");
        bool first = true;
        for (uint32_t i = 0; i < n; i++) {
            fprintf(f, "%s{\"host\":", first ? "" : ",");
            first = false;
            json_str(f, lp[i].spec ? lp[i].spec->host : "");
            fprintf(f,
                    ",\"address\":\"%s\",\"state\":\"%s\",\"healthy\":%s,"
                    "\"primary_rows\":%u,\"secondary_rows\":%u}",
                    lp[i].live->address, lp[i].live->state,
                    lp[i].saved ? (lp[i].saved->healthy ? "true" : "false") : "null",
                    lp[i].live->primary_rows, lp[i].live->secondary_rows);
        }
        /* proxies that are in KV but not in the maps (inactive) */
        for (size_t k = 0; have_snap && k < s.inputs->n_proxies; k++) {
            const struct director_proxy_spec *p = &s.inputs->proxies[k];
            bool listed = false;
            for (uint32_t i = 0; i < n && !listed; i++)
                listed = lp[i].spec == p;
            if (listed)
                continue;
            fprintf(f, "%s{\"host\":", first ? "" : ",");
            first = false;
            json_str(f, p->host);
            fprintf(f,
                    ",\"address\":\"%s\",\"state\":\"%s\",\"healthy\":%s,"
                    "\"primary_rows\":0,\"secondary_rows\":0}",
                    p->address, director_proxy_state_name(p->state),
                    s.proxies[k].healthy ? "true" : "false");
        }
        fprintf(f, "]}\n");
    } else {
        printf("dev %s\n", dopt.dev);
        if (have_maps)
            printf("generation %u\ngeneration_checksum %016llx\nrows_without_proxy %u\n",
                   l.generation, (unsigned long long)l.checksum, l.rows_without_proxy);
        if (have_snap) {
            printf("cluster %s\ntable_checksum %016llx\nin_sync %s\ntier %s\nbalance %.4f\n"
                   "applied %s\nlast_change %s\nheld %s",
                   s.cluster, (unsigned long long)s.table_checksum, in_sync ? "yes" : "no", s.tier,
                   s.balance, applied, changed, s.held ? "yes" : "no");
            if (s.held)
                printf(" (would move %.1f%% of rows, since %s)", 100 * s.held_moved_share,
                       held_since);
            printf("\nvips %zu\n", s.inputs->n_vips);
            if (s.last_error && *s.last_error)
                printf("last_error %s\n", s.last_error);
        }
        printf("%-24s %-40s %-9s %-8s %8s %8s\n", "HOST", "ADDRESS", "STATE", "HEALTH", "PRIMARY",
               "SECOND");
        for (uint32_t i = 0; i < n; i++)
            printf("%-24s %-40s %-9s %-8s %8u %8u\n", lp[i].spec ? lp[i].spec->host : "-",
                   lp[i].live->address, lp[i].live->state,
                   lp[i].saved ? (lp[i].saved->healthy ? "up" : "down") : "?",
                   lp[i].live->primary_rows, lp[i].live->secondary_rows);
        for (size_t k = 0; have_snap && k < s.inputs->n_proxies; k++) {
            const struct director_proxy_spec *p = &s.inputs->proxies[k];
            bool listed = false;
            for (uint32_t i = 0; i < n && !listed; i++)
                listed = lp[i].spec == p;
            if (!listed)
                printf("%-24s %-40s %-9s %-8s %8u %8u\n", p->host, p->address,
                       director_proxy_state_name(p->state), s.proxies[k].healthy ? "up" : "down",
                       0u, 0u);
        }
    }
    rc = 0;
out:
    director_saved_clear(&s);
    director_live_free(&l);
    free(lp);
    free(dir);
    return rc;
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
        rc = host_status_check_opts(&dopt.status_host, dopt.status_ttl_ms, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "drover-watcher director: %s\n", err);
        config_free(&dprogram);
        return 2;
    }
    rc = cmd == DCMD_STATUS ? status() : cmd == DCMD_GUARD ? frontdoor_guard() : run();
    config_free(&dprogram);
    return rc;
}
