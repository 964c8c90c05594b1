/* SPDX-License-Identifier: Apache-2.0 */
/*
 * haproxy_engine: snapshots -> HAProxy (see haproxy_engine.h). This file:
 * helpers over the engine state, planning (placements and both removal
 * guards), services removed from KV, snapshots in, lifecycle and
 * observation. The HAProxy side of a plan (runtime applies, render +
 * check + install + reload) is haproxy_engine_apply.c.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "atomic_file.h"
#include "dir_lock.h"
#include "haproxy_engine_internal.h"
#include "kv_kube.h"
#include "kv_status.h"
#include "log.h"
#include "loop_lag.h"
#include "render.h"
#include "str_affix.h"
#include "tls_files.h"

/* ---- helpers ---- */

char *haproxy_engine_expand(const char *pattern, const char *name)
{
    const char *p = strstr(pattern, "{service}");
    char *out = NULL;
    if (!p)
        return strdup(pattern);
    if (asprintf(&out, "%.*s%s%s", (int)(p - pattern), pattern, name, p + 9) < 0)
        return NULL;
    return out;
}

static struct backend_state *backend_state(struct haproxy_engine *e, const char *name)
{
    for (size_t i = 0; i < e->n_bes; i++)
        if (strcmp(e->bes[i].name, name) == 0)
            return &e->bes[i];
    struct backend_state *p = realloc(e->bes, (e->n_bes + 1) * sizeof(*p));
    if (!p)
        return NULL;
    e->bes = p;
    struct backend_state *b = &e->bes[e->n_bes];
    memset(b, 0, sizeof(*b));
    if (!(b->name = strdup(name)))
        return NULL;
    slot_assignment_init(&b->a);
    e->n_bes++;
    return b;
}

struct service_state *engine_service_state(const struct haproxy_engine *e, const char *name)
{
    for (size_t i = 0; i < e->n_svcs; i++)
        if (strcmp(e->svcs[i]->name, name) == 0)
            return e->svcs[i];
    return NULL;
}

const struct slot_assignment *engine_committed_slots(void *arg, const char *backend)
{
    const struct haproxy_engine *e = arg;
    for (size_t i = 0; i < e->n_bes; i++)
        if (e->bes[i].have && strcmp(e->bes[i].name, backend) == 0)
            return &e->bes[i].a;
    return NULL;
}

int haproxy_engine_render_opts(const struct haproxy_engine_opts *o, const char *service,
                               struct snapshot_render_opts *ro, char **stats, char **state)
{
    *stats = haproxy_engine_expand(o->stats_socket, service);
    *state = haproxy_engine_expand(o->state_file, service);
    *ro = (struct snapshot_render_opts){
        .haproxy_cluster = o->haproxy_cluster,
        .stats_socket = *stats ? *stats : "",
        .server_state_file = *state ? *state : "",
        .maxconn = o->maxconn,
        .agent_addr = o->agent_addr,
        .agent_port = o->agent_port,
        .agent_inter_ms = o->agent_interval_ms,
        .timeout_connect_ms = o->timeout_connect_ms,
        .timeout_client_ms = o->timeout_client_ms,
        .timeout_server_ms = o->timeout_server_ms,
        .map_dir = o->config_dir,
    };
    return *stats && *state ? 0 : -ENOMEM;
}

/* Structure (or full, structure_only=false) template data of a service
 * with the committed slots. */
int engine_service_json(struct haproxy_engine *e, const struct snapshot_service *svc,
                        bool structure_only, json_t **out)
{
    struct snapshot_render_opts ro;
    char *stats, *state;
    haproxy_engine_render_opts(&e->o, svc->def->name, &ro, &stats, &state);
    int rc =
        snapshot_service_json(e->snap, svc, &ro, engine_committed_slots, e, structure_only, out);
    free(stats);
    free(state);
    return rc;
}

/* The agent-checker state file from the committed slots, renamed into
 * place without fsync on the agent writer's thread (an fsync costs ~6 ms
 * and even the rename ~1 ms, tens under I/O load, that the loop must not
 * wait for): visible before then(e, status) runs, made durable in the
 * structural window; a restarted watcher rewrites it anyway. 0 when then
 * will run; 1 when nothing is written (KV-loss episode: the file keeps the
 * last good state, then is not called); negative errno (logged, then not
 * called). */
int engine_write_agent_state(struct haproxy_engine *e, file_writer_done_fn then)
{
    const char *path = e->o.agent_state_file;
    char *text = NULL;
    /* during a KV-loss episode the file keeps the last good state: a tree
     * without the services (or their maintenance) must not empty the
     * agent-checker's answers - a drained node would be served again */
    if (e->kv_loss)
        return 1;
    int rc = snapshot_agent_state(e->snap, engine_committed_slots, e, (int64_t)time(NULL), &text);
    if (rc == 0)
        rc = file_writer_replace_then(e->agent_writer, path, text, strlen(text), 0644, then, e);
    if (rc == 0)
        e->agent_writes_pending++; /* then() counts it down */
    if (rc < 0)
        log_error("watcher: agent state file %s: %s; the agent-checker keeps the previous "
                  "state",
                  path, strerror(-rc));
    free(text);
    return rc;
}

void engine_agent_state_failed(struct haproxy_engine *e, int status)
{
    log_error("watcher: agent state file %s: %s; the agent-checker keeps the previous state",
              e->o.agent_state_file, strerror(-status));
}

void engine_save_snapshot(struct haproxy_engine *e)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    /* the file keeps the last good snapshot through a KV-loss episode */
    if (!e->o.snapshot_file || !*e->o.snapshot_file || e->kv_loss)
        return;
    /* encoded here (it reads the engine's state), written and fsynced off
     * the loop (file_writer.h) */
    if (snapshot_encode(e->snap, e->o.model, engine_committed_slots, e, (int64_t)time(NULL), &buf,
                        &len) < 0 ||
        file_writer_write(e->writer, e->o.snapshot_file, buf, len, 0600) < 0)
        log_error("watcher: snapshot file %s: out of memory; a restart without Consul would use "
                  "an older snapshot",
                  e->o.snapshot_file);
    free(buf);
}

void engine_mark_applied(struct haproxy_engine *e)
{
    e->applied = true;
    if (e->o.on_applied)
        e->o.on_applied(e->o.arg, e->snap);
}

/* ---- planning ---- */

/* Place the servers of every backend of svc into slots starting from the
 * committed placement (growing the slot count when more servers are
 * desired than slots exist). Held backends keep their committed
 * placement. Returns 0 or -ENOMEM; commits the new placements. */
static int plan_service(struct haproxy_engine *e, const struct snapshot_service *svc)
{
    for (size_t i = 0; i < svc->n_backends; i++) {
        const struct snapshot_backend *b = &svc->backends[i];
        struct backend_state *bs = backend_state(e, b->def->name);
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
        rc = snapshot_assign(b, bs->have ? &bs->a : NULL, desired, nslots, &next, &need);
        if (rc == 0 && need) {
            slot_assignment_free(&next);
            slot_assignment_init(&next);
            rc = snapshot_assign(b, bs->have ? &bs->a : NULL, desired, need, &next, &need);
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
            double share =
                b->max_removal_share >= 0 ? b->max_removal_share : e->o.max_removal_share;
            struct slots_guard_result g =
                slots_guard(active, removed, slot_assignment_used(&next), share, b->force_removal);
            if (g.hold) {
                if (!bs->held) {
                    log_warn("watcher: backend %s: change removing %zu of %zu servers held back "
                             "(%s); write haproxy/%s/force-removal/%s to let it through",
                             b->def->name, g.removed, g.active, g.reason, e->o.haproxy_cluster,
                             b->def->name);
                    metrics_counter_inc(e->m_held_total);
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

/* The config dir and the directories of the files the watcher writes, made
 * at start (a fresh host has none of them). A directory that cannot be made
 * is logged; the write into it fails later with its own message and retry. */
static void make_own_dirs(const struct haproxy_engine_opts *o)
{
    const char *files[] = {o->state_file, o->agent_state_file, o->snapshot_file};
    int rc;

    if ((rc = atomic_file_make_dirs(o->config_dir, 0755)) < 0)
        log_warn("watcher: cannot create config dir %s: %s; installs into it will fail",
                 o->config_dir, strerror(-rc));
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        const char *f = files[i], *slash = f ? strrchr(f, '/') : NULL;
        /* A {service} in the directory part is made per service: skip. */
        if (!slash || memchr(f, '{', (size_t)(slash - f)))
            continue;
        if ((rc = atomic_file_make_parent_dirs(f, 0755)) < 0)
            log_warn("watcher: cannot create the directory of %s: %s; writing it will fail", f,
                     strerror(-rc));
    }
}

/* One watcher per config dir: the lock file in it, held until the
 * process exits. A second watcher on the same dir would remove the first
 * one's route maps and crt-lists at its start as "claimed by no service"
 * (and overwrite its configs): it refuses to start instead. */
static int lock_config_dir(struct haproxy_engine *e)
{
    char err[PATH_MAX + 128];
    long holder;
    int rc = dir_lock_take(e->o.config_dir, HAPROXY_ENGINE_LOCK_FILE, &e->lock_fd, &holder, err,
                           sizeof(err));
    if (rc == -EWOULDBLOCK)
        log_error("watcher: config dir %s; two watchers on one config dir would remove each "
                  "other's route maps and crt-lists: give each its own --config-dir",
                  err);
    else if (rc < 0)
        log_error("watcher: config dir: %s", err);
    else if (err[0])
        log_warn("watcher: %s", err); /* locked; only the pid for a refused one is missing */
    return rc;
}

/* The files the engine writes into its config dir: configs (and the one
 * kept for a rollback) and route maps. */
static bool config_dir_target(const char *target, void *arg)
{
    (void)arg;
    return str_has_suffix(target, ".cfg") || str_has_suffix(target, ".cfg.prev") ||
           str_has_suffix(target, ".map");
}

/* A state file's name: arg is the base name of its option, where
 * "{service}" stands for any service. */
static bool state_file_target(const char *target, void *arg)
{
    const char *pattern = arg, *w = strstr(pattern, "{service}");
    if (!w)
        return strcmp(target, pattern) == 0;
    size_t pre = (size_t)(w - pattern), post = strlen(w + 9), n = strlen(target);
    return n > pre + post && strncmp(target, pattern, pre) == 0 &&
           strcmp(target + n - post, w + 9) == 0;
}

/* Adds a sweep's count (negative: the directory cannot be read) to *removed. */
static void sweep_count(int n, int *removed)
{
    if (n > 0)
        *removed += n;
}

/* Sweep dir (when it can be read) with want; adds to *removed. */
static void sweep_dir(const char *dir, atomic_file_target_fn want, void *arg, int *removed)
{
    sweep_count(atomic_file_sweep(dir, want, arg, true), removed);
}

/* Temp files of the engine's writers (atomic_file.h) that a watcher
 * killed mid-write left in the directories it owns: the config dir, its
 * crt-list directories and those of its state files; and the staging
 * directories of its config checks (render.h). Only at start, under
 * the config dir's lock, before anything is written: a temp of our own
 * pid is then a former process's too; a temp of another live process is
 * kept. */
static void sweep_temp_files(const struct haproxy_engine_opts *o)
{
    const char *files[] = {o->state_file, o->agent_state_file, o->snapshot_file};
    char dir[PATH_MAX];
    int removed = 0;
    sweep_dir(o->config_dir, config_dir_target, NULL, &removed);
    removed += tls_files_sweep_temps(o->config_dir, true);
    /* the staging directories of config checks a killed watcher ran */
    sweep_count(render_sweep_staging(RENDER_STAGING_DIR, true), &removed);
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        const char *f = files[i], *slash = f ? strrchr(f, '/') : NULL;
        /* a {service} in the directory part: one directory per service */
        if (!f || (slash && memchr(f, '{', (size_t)(slash - f))))
            continue;
        snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - f) : 1, slash ? f : ".");
        sweep_dir(slash == f ? "/" : dir, state_file_target, (void *)(slash ? slash + 1 : f),
                  &removed);
    }
    if (removed > 0)
        log_info("watcher: %d temporary file%s removed, left by a watcher stopped while writing "
                 "or checking them",
                 removed, removed == 1 ? "" : "s");
}

static void update_gauges(struct haproxy_engine *e)
{
    struct haproxy_engine_stats st;
    haproxy_engine_get_stats(e, &st);
    metrics_gauge_set(e->m_held, (double)st.backends_held);
    metrics_gauge_set(e->m_servers, (double)st.servers);
    /* Served = not retired: a service whose removal the guard holds is still
     * served, though the snapshot no longer defines it. */
    double served = 0;
    for (size_t i = 0; i < e->n_svcs; i++)
        served += !e->svcs[i]->retired;
    metrics_gauge_set(e->m_services, served);
}

static int ensure_service(struct haproxy_engine *e, const char *name)
{
    if (engine_service_state(e, name))
        return 0;
    struct service_state **p = realloc(e->svcs, (e->n_svcs + 1) * sizeof(*p));
    if (!p)
        return -ENOMEM;
    e->svcs = p;
    struct service_state *s = calloc(1, sizeof(*s));
    if (!s || !(s->name = strdup(name))) {
        free(s);
        return -ENOMEM;
    }
    s->e = e;
    e->svcs[e->n_svcs++] = s;
    engine_supervise_service(e, s);
    char *stats = haproxy_engine_expand(e->o.stats_socket, name),
         *master = haproxy_engine_expand(e->o.master_socket, name),
         *state = haproxy_engine_expand(e->o.state_file, name);
    int rc = stats && master && state
                 ? haproxy_runtime_new(e->loop, stats, master, state, e->o.loop_lag, &s->rt)
                 : -ENOMEM;
    if (rc < 0)
        log_error("watcher: service %s: cannot create the HAProxy client: %s", name, strerror(-rc));
    else { /* its state file written after every apply: never on the loop */
        haproxy_runtime_set_writer(s->rt, e->writer);
        haproxy_runtime_set_stall_counter(s->rt, e->m_stall_retries);
    }
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

static void update_refused(struct haproxy_engine *e);

/* The service is gone from a complete read of haproxy/<cluster>/: move its
 * config aside, tell its HAProxy to stop serving its frontends (the process
 * itself belongs to systemd / the operator), forget its placements, so a
 * service of the same name that comes back starts from scratch, and remove
 * its crt-lists and route maps once the config is durably aside. */
static void retire_service(struct haproxy_engine *e, struct service_state *s)
{
    char err[512];
    const char *cmds[64];
    size_t n = 0;
    json_t *fe;
    size_t i;
    int rc = render_retire(e->o.config_dir, s->name, err, sizeof(err));

    metrics_counter_inc(e->m_svc_removed);
    log_warn("watcher: service %s: removed from haproxy/%s/services/ (complete read); config "
             "%s",
             s->name, e->o.haproxy_cluster,
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
    for (i = 0; i < e->n_bes; i++) {
        struct backend_state *bs = &e->bes[i];
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
    json_decref(s->refused);
    s->refused = NULL;
    update_refused(e);
    s->reload_pending = s->file_stale = false;
    s->retired = true; /* before its files go: served services keep theirs */
    if (rc == 0 || rc == -ENOENT) {
        /* no config HAProxy can load names its crt-lists or route maps any
         * more: the rename is on disk (fsynced) before a file goes */
        engine_remove_crt_lists(e, s);
        engine_remove_maps(e, s);
    } else {
        engine_free_maps(s); /* a service defined again writes them anew */
    }
}

/* Services served so far that the snapshot no longer defines. Removed only
 * on a snapshot from a complete, successful Consul read (a snapshot loaded
 * from the file, or Consul errors, never remove anything), and under the
 * mass-removal guard over services: more than max_removal_share of them,
 * or all of them, at once is held unless every one of them has a
 * force-removal entry haproxy/<cluster>/force-removal/<service>.
 *
 * The guard judges against the last good state, not the last step: a
 * complete read with no service at all after some were served starts a
 * KV-loss episode (Consul restarted empty, the tree deleted). During it
 * no service is retired - the services served when it began stay, so a
 * restore key by key never retires what is not back yet - until every one
 * of them is defined again (the episode ends) or each missing one has a
 * force-removal entry (they are retired, the episode ends). */
static void retire_removed(struct haproxy_engine *e)
{
    size_t active = 0, removed = 0;
    bool forced = true;
    /* droverctl kv-loss force: the tree as it is is what the operator wants */
    const struct kvm_force *kf =
        e->snap->model.has_kv_loss_force ? &e->snap->model.kv_loss_force : NULL;

    if (!e->snap_from_feed)
        return;
    for (size_t i = 0; i < e->n_svcs; i++) {
        struct service_state *s = e->svcs[i];
        if (s->retired)
            continue;
        active++;
        if (!snapshot_service(e->snap, s->name)) {
            removed++;
            forced &= kv_model_force(&e->snap->model, s->name) != NULL;
        }
    }
    forced |= kf != NULL;
    if (!e->kv_loss && !kf && active && e->snap->n_services == 0) {
        e->kv_loss = true;
        e->kv_loss_since_unix = (int64_t)time(NULL);
        log_warn("watcher: KV-loss episode: haproxy/%s/services/ is empty after %zu services "
                 "were served; no service is removed until all of them are back or forced "
                 "(haproxy/%s/force-removal/<service>)",
                 e->o.haproxy_cluster, active, e->o.haproxy_cluster);
    }
    if (e->kv_loss && (removed == 0 || forced)) {
        log_info("watcher: KV-loss episode over after %lld s: %s%s%s%s%s",
                 (long long)((int64_t)time(NULL) - e->kv_loss_since_unix),
                 removed == 0 ? "every service is defined again"
                 : kf         ? "forced (haproxy/<cluster>/force-kv-loss)"
                              : "the missing services are forced",
                 kf && removed ? " by " : "", kf && removed && kf->author ? kf->author : "",
                 kf && removed && kf->reason ? ": " : "",
                 kf && removed && kf->reason ? kf->reason : "");
        e->kv_loss = false;
    }
    metrics_gauge_set(e->m_kv_loss_forced, kf != NULL);
    metrics_gauge_set(e->m_kv_loss, e->kv_loss);
    if (e->kv_loss) {
        metrics_gauge_set(e->m_svc_removals_held, 1);
        if (!e->svc_removal_held)
            metrics_counter_inc(e->m_svc_removals_held_total);
        e->svc_removal_held = true;
        return;
    }
    struct slots_guard_result g =
        slots_guard(active, removed, active - removed, e->o.max_removal_share, removed && forced);
    metrics_gauge_set(e->m_svc_removals_held, g.hold);
    if (g.hold) {
        if (!e->svc_removal_held) {
            log_warn("watcher: removal of %zu of %zu services held back (%s); their configs "
                     "stay; write haproxy/%s/force-removal/<service> to let it through",
                     removed, active,
                     removed == active ? "it would remove every service"
                                       : "more than --max-removal-share of the services",
                     e->o.haproxy_cluster);
            metrics_counter_inc(e->m_svc_removals_held_total);
        }
        e->svc_removal_held = true;
        return;
    }
    e->svc_removal_held = false;
    for (size_t i = 0; removed && i < e->n_svcs; i++) {
        struct service_state *s = e->svcs[i];
        if (s->retired || snapshot_service(e->snap, s->name))
            continue;
        if (s->busy || s->checking) {
            s->replan = true; /* retired once its install/reload is done */
            continue;
        }
        retire_service(e, s);
    }
}

/* The services planned for a runtime apply, and those whose agents an
 * apply left off, once the agent state file shows their slots. */
static void run_wanted_applies(struct haproxy_engine *e)
{
    for (size_t i = 0; e->snap && i < e->n_svcs; i++) {
        struct service_state *s = e->svcs[i];
        const struct snapshot_service *svc;
        if (!s->apply_wanted && !s->owed)
            continue;
        s->apply_wanted = false;
        if (!s->reload_pending && !s->busy && (svc = snapshot_service(e->snap, s->name)))
            engine_apply_service(e, s, svc);
    }
}

bool engine_agent_write_done(struct haproxy_engine *e, int status)
{
    if (e->agent_writes_pending)
        e->agent_writes_pending--;
    if (status < 0)
        engine_agent_state_failed(e, status);
    if (e->stopping)
        return false;
    /* a newer write still queued: its own callback applies (the file
     * shows older placements until then); after a failure the applies go
     * out anyway, as with the file unchanged */
    if (engine_agent_file_current(e))
        run_wanted_applies(e);
    return status == 0;
}

static void on_agent_state_visible(void *arg, int status)
{
    engine_agent_write_done(arg, status);
}

/* Runtime quiescence fired: place servers, apply what needs no reload,
 * queue the rest for the structural window. */
static void on_runtime_due(void *arg)
{
    struct haproxy_engine *e = arg;
    bool structural = false, any_runtime = false;

    if (!e->snap || e->stopping)
        return;
    e->plans++;
    e->planned_hash = e->snap->inputs_hash;
    log_debug("watcher: planning snapshot %016llx", (unsigned long long)e->snap->inputs_hash);
    for (size_t i = 0; i < e->snap->n_services; i++) {
        const struct snapshot_service *svc = &e->snap->services[i];
        struct service_state *s;
        json_t *st = NULL;
        if (ensure_service(e, svc->def->name) < 0 || !(s = engine_service_state(e, svc->def->name)))
            continue;
        if (s->retired) {
            log_info("watcher: service %s: defined again; rendering it", s->name);
            s->retired = false;
        }
        if (s->busy) {
            s->replan = true; /* replanned when the reload is done */
            continue;
        }
        if (plan_service(e, svc) < 0)
            continue;
        if (engine_service_json(e, svc, true, &st) < 0) {
            log_error("watcher: service %s: cannot build its template data; keeping HAProxy as "
                      "it is",
                      svc->def->name);
            continue;
        }
        if (s->refused && json_equal(st, s->refused)) {
            /* refused already: nothing new to check; the servers go on
             * changing on the running config, if one runs (issue 13,
             * item 5) */
            any_runtime |= s->structure != NULL;
        } else if (!s->structure || !json_equal(st, s->structure)) {
            s->reload_pending = true;
            structural = true;
            /* certificate and CA files checked, crt-lists written: before
             * haproxy -c reads them */
            if (engine_prepare_tls(e, s, svc, st) < 0)
                any_runtime |= s->structure != NULL;
        } else {
            if (s->refused)
                engine_service_accepted(e, s, "its definition renders to the running config again");
            any_runtime = true;
            s->file_stale = true;
            structural = true; /* refresh the file in the quiet window, no reload */
        }
        engine_sync_maps(e, s, svc, !s->reload_pending);
        json_decref(st);
    }
    retire_removed(e);
    if (!e->crt_lists_swept) { /* every served service is known by now */
        e->crt_lists_swept = true;
        engine_sweep_crt_lists(e);
        engine_sweep_maps(e);
    }
    update_gauges(e);
    e->snapshot_dirty = true;
    structural = true;
    for (size_t i = 0; any_runtime && i < e->snap->n_services; i++) {
        struct service_state *s = engine_service_state(e, e->snap->services[i].def->name);
        if (s && !s->reload_pending && !s->busy) {
            s->apply_wanted = true;
            engine_service_applied(e, s, &e->snap->services[i]);
        }
    }
    /* the agent must read "ready" for a filled slot before its agent is
     * enabled: that waits for the file, the rest goes out meanwhile */
    if (engine_write_agent_state(e, on_agent_state_visible) != 0)
        run_wanted_applies(e);
    else /* what needs no agent file goes out while it is written */
        engine_apply_early(e);
    engine_status_changed(e); /* guards */
    if (any_runtime)
        engine_mark_applied(e);
    if (structural)
        quiesce_timer_kick(e->struct_q);
}

/* ---- snapshots in ---- */

/* Rebuild the snapshot in force from its own inputs: maintenance and
 * force-removal entries that expired since drop out (a force-removal that
 * ends re-arms the guard) without waiting for a KV change. */
static void on_expiry(uv_timer_t *t)
{
    struct haproxy_engine *e = t->data;
    struct snapshot_entry *en;
    struct snapshot *snap = NULL;
    if (!e->snap || e->stopping)
        return;
    if (!(en = calloc(e->snap->n_entries + 1, sizeof(*en))))
        return;
    for (size_t i = 0; i < e->snap->n_entries; i++) {
        const struct snapshot_entry *s = &e->snap->entries[i];
        en[i].key = strdup(s->key);
        en[i].value = malloc(s->len + 1);
        if (!en[i].key || !en[i].value) {
            snapshot_entries_free(en, i + 1);
            return;
        }
        memcpy(en[i].value, s->value ? s->value : "", s->len);
        en[i].value[s->len] = '\0';
        en[i].len = s->len;
    }
    if (snapshot_build(e->o.model, en, e->snap->n_entries, (int64_t)time(NULL), e->snap, &snap) ==
        0) {
        log_info("watcher: a maintenance or force-removal entry expired; re-planning");
        haproxy_engine_take_snapshot(e, snap, false);
    }
}

static void arm_expiry(struct haproxy_engine *e)
{
    int64_t next = 0, now = (int64_t)time(NULL);
    const struct kv_model *m = &e->snap->model;
    for (size_t i = 0; i < m->n_maint; i++)
        if (m->maint[i].expires && (!next || m->maint[i].expires < next))
            next = m->maint[i].expires;
    for (size_t i = 0; i < m->n_forces; i++)
        if (m->forces[i].expires && (!next || m->forces[i].expires < next))
            next = m->forces[i].expires;
    if (m->has_kv_loss_force && (!next || m->kv_loss_force.expires < next))
        next = m->kv_loss_force.expires;
    uv_timer_stop(&e->expiry);
    if (next)
        uv_timer_start(&e->expiry, on_expiry, (uint64_t)(next > now ? next - now : 0) * 1000 + 100,
                       0);
}

static bool is_maint_key(const struct haproxy_engine *e, const char *key)
{
    size_t r = strlen(e->o.model->root);
    return strncmp(key, e->o.model->root, r) == 0 && strncmp(key + r, "maintenance/", 12) == 0;
}

/* Maintenance entries are operator intent, not discovered state: during a
 * KV-loss episode (the services tree empty after some were served, see
 * retire_removed) a read without any keeps the last known ones, so a
 * drained node stays drained while Consul is restored. Returns snap or
 * the rebuilt snapshot (snap is consumed). */
static struct snapshot *hold_maintenance(struct haproxy_engine *e, struct snapshot *snap)
{
    const struct snapshot *old = e->snap;
    size_t n_old = 0, n = 0;
    struct snapshot_entry *en;
    struct snapshot *merged = NULL;

    if (!old || snap->model.n_maint || !old->model.n_maint || snap->model.has_kv_loss_force ||
        !(e->kv_loss || (snap->n_services == 0 && old->n_services > 0)))
        return snap;
    for (size_t i = 0; i < old->n_entries; i++)
        n_old += is_maint_key(e, old->entries[i].key);
    if (!(en = calloc(snap->n_entries + n_old + 1, sizeof(*en))))
        return snap;
    for (size_t k = 0; k < 2; k++) {
        const struct snapshot *from = k ? old : snap;
        for (size_t i = 0; i < from->n_entries; i++) {
            const struct snapshot_entry *s = &from->entries[i];
            if (k && !is_maint_key(e, s->key))
                continue;
            en[n].key = strdup(s->key);
            en[n].value = malloc(s->len + 1);
            en[n].len = s->len;
            if (!en[n].key || !en[n].value) {
                snapshot_entries_free(en, n + 1);
                return snap;
            }
            memcpy(en[n].value, s->value ? s->value : "", s->len);
            en[n].value[s->len] = '\0';
            n++;
        }
    }
    if (snapshot_build(e->o.model, en, n, (int64_t)time(NULL), old, &merged) < 0)
        return snap;
    if (!e->maint_held)
        log_warn("watcher: KV-loss episode: maintenance/ is empty; holding the %zu maintenance "
                 "entries known before (operator intent) until the episode is over",
                 merged->model.n_maint);
    e->maint_held = merged->model.n_maint;
    snapshot_free(snap);
    return merged;
}

void haproxy_engine_take_snapshot(struct haproxy_engine *e, struct snapshot *snap,
                                  bool complete_read)
{
    uint64_t bad = 0;
    if (e->stopping) {
        snapshot_free(snap);
        return;
    }
    size_t held_before = e->maint_held;
    e->maint_held = 0;
    if (complete_read)
        snap = hold_maintenance(e, snap);
    else
        e->maint_held = held_before;
    if (held_before && !e->maint_held)
        log_info("watcher: maintenance entries no longer held (KV has its own again or the "
                 "KV-loss episode is over)");
    metrics_gauge_set(e->m_maint_held, (double)e->maint_held);
    if (complete_read)
        e->snap_from_feed = true;
    for (int p = 0; p < KVM_PREFIX_COUNT; p++) {
        metrics_gauge_set(e->m_bad[p], (double)snap->model.bad[p]);
        bad += snap->model.bad[p];
    }
    metrics_counter_add(e->m_bad_total, bad);
    metrics_counter_inc(e->m_snapshots);
    log_info("watcher: snapshot %016llx: %zu services, %zu kube services, %zu nodes, %zu "
             "maintenance entries, %llu bad entries",
             (unsigned long long)snap->inputs_hash, snap->n_services, snap->model.n_kube_services,
             snap->model.n_nodes, snap->model.n_maint, (unsigned long long)bad);
    snapshot_free(e->snap);
    e->snap = snap;
    quiesce_timer_kick(e->runtime_q);
    arm_expiry(e);
}

const struct snapshot *haproxy_engine_snapshot(const struct haproxy_engine *e)
{
    return e->snap;
}

int haproxy_engine_load_saved(struct haproxy_engine *e)
{
    struct snapshot *snap = NULL;
    struct snapshot_saved_slots *saved = NULL;
    size_t n_saved = 0;
    char err[512];
    const char *path = e->o.snapshot_file ? e->o.snapshot_file : "";
    int rc = snapshot_load(path, e->o.model, (int64_t)time(NULL), &snap, &saved, &n_saved, err,
                           sizeof(err));
    if (rc == -ENOENT) {
        log_info("watcher: no snapshot file %s yet; waiting for Consul before rendering anything",
                 path);
        return rc;
    }
    if (rc < 0) {
        log_warn("watcher: %s; ignoring it, waiting for Consul", err);
        return rc;
    }
    for (size_t i = 0; i < n_saved; i++) {
        struct backend_state *bs = backend_state(e, saved[i].backend);
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
             (unsigned long long)snap->inputs_hash, path, snap->n_services);
    haproxy_engine_take_snapshot(e, snap, false);
    return 0;
}

void haproxy_engine_set_templates(struct haproxy_engine *e, struct template_set *set)
{
    template_set_free(e->templates);
    e->templates = set;
    if (e->stopping)
        return;
    for (size_t i = 0; i < e->n_svcs; i++)
        e->svcs[i]->reload_pending = !e->svcs[i]->retired;
    quiesce_timer_kick(e->struct_q);
}

/* ---- lifecycle ---- */

static void setup_metrics(struct haproxy_engine *e)
{
    struct metrics_registry *r = e->o.metrics;
    char labels[64];
    e->m_snapshots = metrics_counter(r, "drover_watcher_snapshots_total",
                                     "Snapshots built from changed KV inputs.", NULL);
    e->m_reloads = metrics_counter(r, "drover_watcher_reloads_total",
                                   "HAProxy reloads confirmed with show proc.", NULL);
    e->m_route_updates =
        metrics_counter(r, "drover_watcher_route_updates_total",
                        "Route map changes applied through the runtime API (no reload).", NULL);
    e->m_cert_swaps =
        metrics_counter(r, "drover_watcher_cert_swaps_total",
                        "Certificates swapped through the runtime API (no reload).", NULL);
    e->m_cert_checks =
        metrics_counter(r, "drover_watcher_cert_checks_total",
                        "Looks at the TLS files the configs name (poll or file event).", NULL);
    e->m_cert_failures = metrics_counter(r, "drover_watcher_cert_swap_failures_total",
                                         "Certificate files refused (do not parse, key does not "
                                         "match, or HAProxy refused them); the old one serves.",
                                         NULL);
    e->m_reload_failures = metrics_counter(r, "drover_watcher_reload_failures_total",
                                           "Reloads that failed (config rolled back).", NULL);
    e->m_reload_seconds = metrics_histogram(
        r, "drover_watcher_reload_duration_seconds",
        "HAProxy reloads through the master CLI, from the state dump to the new worker "
        "confirmed by show proc or to the failure.",
        NULL, metrics_latency_buckets, metrics_latency_buckets_n);
    e->m_render_failures = metrics_counter(
        r, "drover_watcher_render_failures_total",
        "Renders refused (template/value error or haproxy -c); nothing installed.", NULL);
    e->m_applies =
        metrics_counter(r, "drover_watcher_runtime_applies_total",
                        "Backends brought to their slots through the runtime API.", NULL);
    e->m_apply_failures = metrics_counter(r, "drover_watcher_runtime_apply_failures_total",
                                          "Runtime API applies that failed.", NULL);
    e->m_apply_retries =
        metrics_counter(r, "drover_watcher_runtime_apply_retries_total",
                        "Placements applied again after a failed runtime apply (backoff).", NULL);
    e->m_stall_retries = metrics_counter(
        r, "drover_watcher_haproxy_stall_retries_total",
        "HAProxy stats socket / master CLI exchanges and reload confirmations that timed out "
        "while the watcher could not act (stopped, starved), given one more timeout instead of "
        "failing.",
        NULL);
    e->m_held_total = metrics_counter(r, "drover_watcher_removals_held_total",
                                      "Changes held back by the mass-removal guard.", NULL);
    e->m_held = metrics_gauge(r, "drover_watcher_removals_held",
                              "Backends whose latest change is held by the removal guard.", NULL);
    e->m_svc_removed = metrics_counter(r, "drover_watcher_services_removed_total",
                                       "Services removed from KV: config moved aside, frontends "
                                       "disabled.",
                                       NULL);
    e->m_svc_removals_held_total =
        metrics_counter(r, "drover_watcher_service_removals_held_total",
                        "Service removals held back by the mass-removal guard.", NULL);
    e->m_svc_removals_held =
        metrics_gauge(r, "drover_watcher_service_removals_held",
                      "1 while the latest service removal is held by the guard.", NULL);
    e->m_kv_loss = metrics_gauge(r, "drover_watcher_kv_loss_episode",
                                 "1 while a KV-loss episode freezes service removals (the "
                                 "services tree went empty; see docs/watcher.md).",
                                 NULL);
    e->m_kv_loss_forced = metrics_gauge(r, "drover_watcher_kv_loss_forced",
                                        "1 while haproxy/<cluster>/force-kv-loss is in force "
                                        "(no KV-loss episode; removals let through).",
                                        NULL);
    e->m_refused = metrics_gauge(r, "drover_watcher_services_refused",
                                 "Services whose latest definition haproxy -c (or the template) "
                                 "refused; their running config keeps getting server changes.",
                                 NULL);
    e->m_maint_held = metrics_gauge(r, "drover_watcher_maintenance_held",
                                    "Maintenance entries kept from before a KV-loss episode "
                                    "while KV has none.",
                                    NULL);
    e->m_bad_total = metrics_counter(r, "drover_watcher_kv_bad_entries_total",
                                     "Bad KV entries skipped, summed over snapshots.", NULL);
    for (int p = 0; p < KVM_PREFIX_COUNT; p++) {
        metrics_format_labels(labels, sizeof(labels), "prefix", kvm_prefix_name(p), NULL);
        e->m_bad[p] = metrics_gauge(r, "drover_watcher_kv_bad_entries",
                                    "Bad KV entries skipped in the current snapshot.", labels);
    }
    e->m_state_saves = metrics_counter(
        r, "drover_watcher_state_file_writes_total",
        "Server-state files written between reloads (after runtime applies).", NULL);
    e->m_state_save_failures =
        metrics_counter(r, "drover_watcher_state_file_write_failures_total",
                        "Server-state file writes between reloads that failed.", NULL);
    e->m_services = metrics_gauge(r, "drover_watcher_services", "HAProxy services served.", NULL);
    e->m_servers =
        metrics_gauge(r, "drover_watcher_servers", "Servers placed in slots, all backends.", NULL);
}

int haproxy_engine_new(uv_loop_t *loop, const struct haproxy_engine_opts *o,
                       struct template_set *templates, struct haproxy_engine **out)
{
    struct haproxy_engine *e;
    int rc;
    if (!loop || !o || !o->model || !o->metrics || !o->config_dir || !o->haproxy_bin ||
        !o->master_socket || !o->stats_socket || !o->state_file || !o->agent_state_file) {
        template_set_free(templates);
        return -EINVAL;
    }
    if (!(e = calloc(1, sizeof(*e)))) {
        template_set_free(templates);
        return -ENOMEM;
    }
    e->loop = loop;
    e->o = *o;
    e->templates = templates;
    e->lock_fd = -1;
    if ((rc = file_writer_new(loop, &e->writer)) < 0 ||
        (rc = file_writer_new(loop, &e->agent_writer)) < 0)
        goto fail;
    make_own_dirs(o);
    /* before anything is removed from the config dir: it may be another
     * watcher's */
    if ((rc = lock_config_dir(e)) < 0)
        goto fail;
    sweep_temp_files(o);
    setup_metrics(e);
    if ((rc = quiesce_timer_new(loop, o->runtime_wait_ms, o->runtime_wait_ms * 5 / 2,
                                on_runtime_due, e, &e->runtime_q)) < 0 ||
        (rc = quiesce_timer_new(loop, o->wait_min_ms, o->wait_max_ms, engine_on_struct_due, e,
                                &e->struct_q)) < 0 ||
        (rc = engine_state_timer_new(e)) < 0)
        goto fail;
    quiesce_timer_set_leading(e->runtime_q, engine_runtime_busy, e);
    uv_timer_init(loop, &e->expiry);
    e->expiry.data = e;
    uv_timer_init(loop, &e->resync);
    e->resync.data = e;
    engine_repair_init(e);
    if (o->resync_ms > 0)
        uv_timer_start(&e->resync, engine_on_resync, (uint64_t)o->resync_ms,
                       (uint64_t)o->resync_ms);
    engine_supervise_init(e);
    engine_certs_init(e);
    engine_errors_init(e);
    if (o->loop_lag)
        e->o.loop_lag = loop_lag_ref(o->loop_lag);
    *out = e;
    return 0;
fail:
    /* timers close on the loop (freed by their close callbacks); the
     * writers have nothing queued yet, so they go at once */
    quiesce_timer_free(e->runtime_q);
    quiesce_timer_free(e->struct_q);
    quiesce_timer_free(e->state_q);
    file_writer_close(e->agent_writer);
    file_writer_close(e->writer);
    dir_lock_release(e->lock_fd);
    template_set_free(e->templates);
    free(e);
    return rc;
}

void haproxy_engine_stop(struct haproxy_engine *e)
{
    if (!e || e->stopping)
        return;
    e->stopping = true;
    if (e->snapshot_dirty && e->snap)
        engine_save_snapshot(e);
    /* the clients first: they cancel what waits for the writer */
    for (size_t i = 0; i < e->n_svcs; i++) {
        haproxy_runtime_free(e->svcs[i]->rt);
        e->svcs[i]->rt = NULL;
    }
    /* written now, or after the write in flight: the loop runs on */
    file_writer_close(e->agent_writer);
    file_writer_close(e->writer);
    e->writer = e->agent_writer = NULL;
    quiesce_timer_free(e->runtime_q);
    quiesce_timer_free(e->struct_q);
    quiesce_timer_free(e->state_q);
    e->runtime_q = e->struct_q = e->state_q = NULL;
    uv_close((uv_handle_t *)&e->expiry, NULL);
    uv_close((uv_handle_t *)&e->resync, NULL);
    engine_repair_stop(e);
    engine_supervise_stop(e);
    engine_certs_stop(e);
    engine_errors_stop(e);
}

void haproxy_engine_free(struct haproxy_engine *e)
{
    if (!e)
        return;
    snapshot_free(e->snap);
    for (size_t i = 0; i < e->n_bes; i++) {
        free(e->bes[i].name);
        free(e->bes[i].service);
        slot_assignment_free(&e->bes[i].a);
    }
    free(e->bes);
    for (size_t i = 0; i < e->n_svcs; i++) {
        free(e->svcs[i]->name);
        free(e->svcs[i]->error);
        json_decref(e->svcs[i]->structure);
        json_decref(e->svcs[i]->refused);
        engine_free_maps(e->svcs[i]);
        engine_free_certs(e->svcs[i]);
        free(e->svcs[i]);
    }
    free(e->svcs);
    template_set_free(e->templates);
    loop_lag_unref(e->o.loop_lag);
    dir_lock_release(e->lock_fd); /* last: the files of the config dir are written */
    free(e);
}

/* ---- observation ---- */

void engine_status_changed(struct haproxy_engine *e)
{
    if (e->o.on_status && !e->stopping)
        e->o.on_status(e->o.arg);
}

void engine_service_applied(struct haproxy_engine *e, struct service_state *s,
                            const struct snapshot_service *svc)
{
    if (s->refused) {
        /* server changes applied on the running config: the definition
         * in force and the refusal (status, /readyz) stay as they are */
        engine_status_changed(e);
        return;
    }
    if (!svc && e->snap) /* installed while HAProxy was down: what was rendered */
        svc = snapshot_service(e->snap, s->name);
    for (size_t i = 0; svc && e->snap && i < e->snap->n_entries; i++)
        if (strcmp(e->snap->entries[i].key, svc->def->key) == 0)
            kv_hash64_hex(e->snap->entries[i].value, e->snap->entries[i].len, s->applied_def);
    free(s->error);
    s->error = NULL;
    engine_status_changed(e);
}

void engine_service_failed(struct haproxy_engine *e, struct service_state *s, const char *what,
                           const char *msg)
{
    char buf[KV_STATUS_ERROR_MAX];
    snprintf(buf, sizeof(buf), "%s: %s", what, msg ? msg : "failed");
    free(s->error);
    s->error = strdup(buf);
    engine_status_changed(e);
}

static void update_refused(struct haproxy_engine *e)
{
    size_t n = 0;
    for (size_t i = 0; i < e->n_svcs; i++)
        n += e->svcs[i]->refused != NULL;
    metrics_gauge_set(e->m_refused, (double)n);
}

void engine_service_refused(struct haproxy_engine *e, struct service_state *s, json_t *structure,
                            const char *what, const char *msg)
{
    char buf[KV_STATUS_ERROR_MAX];
    snprintf(buf, sizeof(buf), "%s: %s", what, msg ? msg : "failed");
    bool same =
        s->refused && json_equal(s->refused, structure) && s->error && strcmp(s->error, buf) == 0;
    json_decref(s->refused);
    s->refused = structure;
    if (!same) {
        const struct snapshot_service *svc = e->snap ? snapshot_service(e->snap, s->name) : NULL;
        metrics_counter_inc(e->m_render_failures);
        log_error("watcher: service %s (key %s): %s; the running config stays and keeps getting "
                  "server changes through the runtime API",
                  s->name, svc ? svc->def->key : "?", buf);
        free(s->error);
        s->error = strdup(buf);
    }
    update_refused(e);
    engine_status_changed(e);
}

void engine_service_accepted(struct haproxy_engine *e, struct service_state *s, const char *why)
{
    if (!s->refused)
        return;
    log_info("watcher: service %s: no definition refused any more (%s)", s->name, why);
    json_decref(s->refused);
    s->refused = NULL;
    free(s->error);
    s->error = NULL;
    update_refused(e);
}

void haproxy_engine_each_service(const struct haproxy_engine *e,
                                 void (*fn)(void *arg,
                                            const struct haproxy_engine_service_status *s),
                                 void *arg)
{
    for (size_t i = 0; i < e->n_svcs; i++) {
        const struct service_state *s = e->svcs[i];
        if (s->retired)
            continue;
        struct haproxy_engine_service_status st = {.name = s->name,
                                                   .definition = s->applied_def,
                                                   .reloads = s->reloads,
                                                   .error = s->error,
                                                   .refused = s->refused != NULL,
                                                   .errors = s->have_errors ? &s->errors : NULL};
        fn(arg, &st);
    }
}

void haproxy_engine_each_held_maint(const struct haproxy_engine *e,
                                    void (*fn)(void *arg, const char *id), void *arg)
{
    size_t r = strlen(e->o.model->root) + strlen("maintenance/");
    /* while held, every maintenance entry in force is one kept from before */
    for (size_t i = 0; e->maint_held && e->snap && i < e->snap->n_entries; i++)
        if (is_maint_key(e, e->snap->entries[i].key))
            fn(arg, e->snap->entries[i].key + r);
}

void haproxy_engine_each_held(const struct haproxy_engine *e,
                              void (*fn)(void *arg, const char *backend), void *arg)
{
    for (size_t i = 0; i < e->n_bes; i++)
        if (e->bes[i].held)
            fn(arg, e->bes[i].name);
}

void haproxy_engine_get_stats(const struct haproxy_engine *e, struct haproxy_engine_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->services = e->n_svcs;
    for (size_t i = 0; i < e->n_svcs; i++)
        out->services_retired += e->svcs[i]->retired;
    for (size_t i = 0; i < e->n_bes; i++) {
        out->backends_held += e->bes[i].held;
        out->servers += e->bes[i].have ? slot_assignment_used(&e->bes[i].a) : 0;
    }
    out->service_removal_held = e->svc_removal_held;
    out->kv_loss = e->kv_loss;
    out->kv_loss_forced = e->snap && e->snap->model.has_kv_loss_force;
    out->maint_held = e->maint_held;
    for (size_t i = 0; i < e->n_svcs; i++)
        out->services_refused += e->svcs[i]->refused != NULL;
    out->snapshots = metrics_counter_value(e->m_snapshots);
    out->plans = e->plans;
    out->installs = e->installs;
    out->refreshes = e->refreshes;
    out->route_updates = e->route_updates;
    out->cert_swaps = e->cert_swaps;
    out->cert_failures = e->cert_failures;
    out->reloads = metrics_counter_value(e->m_reloads);
    out->reload_failures = metrics_counter_value(e->m_reload_failures);
    out->render_failures = metrics_counter_value(e->m_render_failures);
    out->applies = metrics_counter_value(e->m_applies);
    out->apply_failures = metrics_counter_value(e->m_apply_failures);
    out->apply_retries = metrics_counter_value(e->m_apply_retries);
    out->removals_held_total = metrics_counter_value(e->m_held_total);
    out->services_removed = metrics_counter_value(e->m_svc_removed);
    out->service_removals_held_total = metrics_counter_value(e->m_svc_removals_held_total);
}

const struct slot_assignment *haproxy_engine_committed(const struct haproxy_engine *e,
                                                       const char *backend)
{
    return engine_committed_slots((void *)e, backend);
}

bool haproxy_engine_backend_held(const struct haproxy_engine *e, const char *backend)
{
    for (size_t i = 0; i < e->n_bes; i++)
        if (strcmp(e->bes[i].name, backend) == 0)
            return e->bes[i].held;
    return false;
}

bool haproxy_engine_service_retired(const struct haproxy_engine *e, const char *name)
{
    const struct service_state *s = engine_service_state(e, name);
    return s && s->retired;
}

bool haproxy_engine_idle(const struct haproxy_engine *e)
{
    if (e->applies_in_flight || (e->runtime_q && quiesce_timer_pending(e->runtime_q)) ||
        (e->struct_q && quiesce_timer_pending(e->struct_q)) ||
        (e->state_q && quiesce_timer_pending(e->state_q)))
        return false;
    if ((e->agent_writer && !file_writer_idle(e->agent_writer)))
        return false;
    for (size_t i = 0; i < e->n_svcs; i++)
        if (e->svcs[i]->busy || e->svcs[i]->checking || e->svcs[i]->apply_wanted)
            return false;
    return true;
}
