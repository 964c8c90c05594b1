/* SPDX-License-Identifier: Apache-2.0 */
/*
 * haproxy_engine, the HAProxy side of applying a plan: runtime-API
 * applies of committed placements (and the periodic resync), and the
 * structural path of a service: render, `haproxy -c` + atomic install,
 * reload through the master CLI, rollback when the reload fails.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "haproxy_engine_internal.h"
#include "log.h"
#include "render.h"

/* ---- runtime apply ---- */

struct apply_ctx {
    struct haproxy_engine *e;
    struct service_state *s;
    uint64_t planned;  /* the plan it carries (debug log: the latency split) */
    bool agents_later; /* the agent file was not current: agents of filled slots left off */
};

static void save_state(struct service_state *s);

/* A refresh of the config file without reload (the running structure,
 * servers placed at runtime) runs `haproxy -c`, tens of ms of CPU that the
 * runtime applies of a steady stream of changes wait for on a small
 * machine. It waits for the stream to end, but not longer than this. */
#define ENGINE_REFRESH_MAX_STALE_MS 30000

/* A failed apply that a retry can fix (the socket refused, timed out,
 * closed; HAProxy not running) is retried after this backoff, so the
 * agents an earlier apply left off are switched on without waiting for
 * the next change or the periodic resync. */
#define ENGINE_REPAIR_MIN_MS 100
#define ENGINE_REPAIR_MAX_MS 5000

static void save_state_soon(struct service_state *s)
{
    s->state_due = true;
    if (s->e->state_q)
        quiesce_timer_kick(s->e->state_q);
}

int engine_state_timer_new(struct haproxy_engine *e)
{
    return quiesce_timer_new(e->loop, HAPROXY_ENGINE_STATE_QUIET_MS, HAPROXY_ENGINE_STATE_MAX_MS,
                             engine_on_state_due, e, &e->state_q);
}

bool engine_runtime_busy(void *arg)
{
    const struct haproxy_engine *e = arg;
    return e->applies_in_flight > 0;
}

bool engine_agent_file_current(const struct haproxy_engine *e)
{
    return e->agent_writes_pending == 0;
}

void engine_on_state_due(void *arg)
{
    struct haproxy_engine *e = arg;
    if (e->stopping)
        return;
    for (size_t i = 0; i < e->n_svcs; i++) {
        struct service_state *s = e->svcs[i];
        if (s->state_due) {
            s->state_due = false;
            save_state(s);
        }
    }
}

/* The service's placements may be applied now (no reload owns them). */
static const struct snapshot_service *appliable(struct haproxy_engine *e, struct service_state *s)
{
    if (s->busy || s->reload_pending || !s->rt || !e->snap || e->stopping)
        return NULL;
    return snapshot_service(e->snap, s->name);
}

static void on_repair(uv_timer_t *t)
{
    struct haproxy_engine *e = t->data;
    e->repair_armed = false;
    for (size_t i = 0; i < e->n_svcs; i++) {
        struct service_state *s = e->svcs[i];
        if (s->owed && s->batch_retry && !s->applying) {
            metrics_counter_inc(e->m_apply_retries);
            engine_resync_service(e, s, false);
        }
    }
}

static void repair_arm(struct haproxy_engine *e)
{
    if (e->repair_armed || e->stopping)
        return;
    e->repair_armed = true;
    uv_timer_start(&e->repair, on_repair, backoff_next(&e->repair_backoff), 0);
}

void engine_repair_init(struct haproxy_engine *e)
{
    uv_timer_init(e->loop, &e->repair);
    e->repair.data = e;
    backoff_init(&e->repair_backoff, ENGINE_REPAIR_MIN_MS, ENGINE_REPAIR_MAX_MS, BACKOFF_FULL);
}

void engine_repair_stop(struct haproxy_engine *e)
{
    uv_close((uv_handle_t *)&e->repair, NULL);
}

/* The service's batch of applies is done: what it left owed, and what
 * comes next. Placements committed while it ran go out now, in one apply
 * from the newest placements (a service waiting for or in a reload gets
 * them from the reload's own apply); agents it left off are enabled at
 * once if the agent file is in place by now (else when it is: see
 * haproxy_engine.c, run_wanted_applies); a failure a retry can fix arms
 * the repair timer. The server-state file follows later (save_state_soon). */
static void batch_done(struct haproxy_engine *e, struct service_state *s, uint64_t planned)
{
    const struct snapshot_service *svc = appliable(e, s);
    s->owed = s->batch_deferred || s->batch_failed;
    if (!s->owed)
        backoff_reset(&e->repair_backoff);
    /* all of the plan went out, or it failed in a way only a new plan
     * (or HAProxy's restart) changes: no full apply follows for it */
    if (!s->owed || (s->batch_failed && !s->batch_retry))
        s->plan_done = planned;
    if (s->failing && !s->batch_failed)
        log_info("watcher: service %s: runtime apply works again", s->name);
    s->failing = s->batch_failed;
    if (e->stopping)
        return;
    if (s->apply_again && svc) {
        s->apply_again = false;
        engine_apply_service(e, s, svc);
        return;
    }
    s->apply_again = false;
    if (s->batch_deferred && !s->batch_failed && svc && engine_agent_file_current(e)) {
        engine_apply_service(e, s, svc);
        return;
    }
    if (s->batch_retry)
        repair_arm(e);
    /* after the applies: a HAProxy that starts cold loads what runs now,
     * with the drains and maintenance in force from its first packet */
    save_state_soon(s);
}

/* A failed apply of c: logged (at debug while the service keeps failing), and whether
 * a retry can fix it. */
static bool apply_failed(struct apply_ctx *c, const struct haproxy_apply_result *res)
{
    struct haproxy_engine *e = c->e;
    /* -ENOENT is either "no stats socket" (HAProxy not running: wait
     * for it; the supervisor's probe resyncs it once it runs) or "no such
     * server" (the config lacks slots: reload) */
    char *sock = haproxy_engine_expand(e->o.stats_socket, c->s->name);
    bool lacks_slots = res->status == -ENOENT && sock && access(sock, F_OK) == 0;
    /* a command HAProxy refused, slots the config lacks or no HAProxy at
     * all fail again; a socket that refused, timed out or closed (HAProxy
     * died and left it, or was busy) is retried */
    bool retry = res->status != -ENOENT && res->status != -EINVAL && !e->stopping;
    free(sock);
    metrics_counter_inc(e->m_apply_failures);
    log_msg(c->s->failing ? LOGL_DEBUG : LOGL_WARN,
            "watcher: service %s: runtime apply failed: %s; %s", c->s->name, res->message,
            lacks_slots ? "config lacks slots, a reload will add them"
            : retry     ? "retried after a backoff (at most 5 s) or with the next change"
                        : "retried with the next change or once HAProxy runs");
    if (lacks_slots && c->s->refused)
        log_warn("watcher: service %s: the running config lacks slots the refused "
                 "definition places servers in; they wait for a definition that passes",
                 c->s->name);
    else if (lacks_slots && !e->stopping) {
        json_decref(c->s->structure);
        c->s->structure = NULL;
        c->s->reload_pending = true;
        quiesce_timer_kick(e->struct_q);
    }
    return retry;
}

static void on_applied(struct haproxy_runtime *rt, const struct haproxy_apply_result *res,
                       void *arg)
{
    struct apply_ctx *c = arg;
    struct haproxy_engine *e = c->e;
    struct service_state *s = c->s;
    (void)rt;
    e->applies_in_flight--;
    s->applying--;
    s->batch_deferred |= res->status == 0 && res->agents_deferred > 0;
    if (res->status == 0) {
        metrics_counter_inc(e->m_applies);
        /* the plan's hash stays the last word (the bench's split reads it) */
        log_debug("watcher: service %s: runtime apply done, %zu commands, %zu agents later, plan "
                  "%016llx",
                  s->name, res->commands, res->agents_deferred, (unsigned long long)c->planned);
    } else {
        s->batch_failed = true;
        s->batch_retry |= apply_failed(c, res);
    }
    if (!s->applying)
        batch_done(e, s, c->planned);
    free(c);
}

/* ---- the server-state file between reloads ---- */

static enum haproxy_admin engine_admin(void *arg, const char *backend, const char *server)
{
    const struct service_state *s = arg;
    int a = snapshot_slot_admin(s->e->snap, engine_committed_slots, s->e, backend, server);
    switch (a) {
    case KVM_ADMIN_READY:
        return HAPROXY_ADMIN_READY;
    case KVM_ADMIN_DRAIN:
        return HAPROXY_ADMIN_DRAIN;
    case KVM_ADMIN_MAINT:
        return HAPROXY_ADMIN_MAINT;
    default:
        return HAPROXY_ADMIN_KEEP;
    }
}

static void on_state_saved(struct haproxy_runtime *rt, int status, size_t changed, const char *err,
                           void *arg)
{
    struct service_state *s = arg;
    struct haproxy_engine *e = s->e;
    (void)rt;
    s->state_saving = false;
    if (status == -ECANCELED)
        return;
    if (status < 0) {
        metrics_counter_inc(e->m_state_save_failures);
        log_warn("watcher: service %s: %s; a cold start of its HAProxy would load an older "
                 "state (retried with the next change)",
                 s->name, err);
    } else {
        metrics_counter_inc(e->m_state_saves);
        log_debug("watcher: service %s: server-state file written, %zu admin state(s) set", s->name,
                  changed);
    }
    if (s->state_again && !e->stopping) {
        s->state_again = false;
        save_state(s);
    }
}

/* Write the server-state file from the live state once what is queued now
 * ran (one write queued at a time; a request meanwhile queues one more). */
static void save_state(struct service_state *s)
{
    if (!s->rt)
        return;
    if (s->state_saving) {
        s->state_again = true;
        return;
    }
    int rc = haproxy_runtime_save_state(s->rt, engine_admin, on_state_saved, s);
    if (rc < 0) {
        metrics_counter_inc(s->e->m_state_save_failures);
        log_warn("watcher: service %s: cannot queue the server-state file write: %s", s->name,
                 strerror(-rc));
        return;
    }
    s->state_saving = true;
}

/* Queue one apply per backend of svc, one batch: agents_later while the
 * agent file is not current (the agents of filled slots left off);
 * s->applying counts them. */
static void apply_backends(struct haproxy_engine *e, struct service_state *s,
                           const struct snapshot_service *svc, bool agents_later)
{
    s->batch_deferred = s->batch_failed = s->batch_retry = false;
    s->plan_done = 0;
    for (size_t i = 0; i < svc->n_backends; i++) {
        const struct slot_assignment *a = engine_committed_slots(e, svc->backends[i].def->name);
        struct apply_ctx *c;
        if (!a)
            continue;
        if (!(c = calloc(1, sizeof(*c)))) {
            s->batch_failed = true;
            continue;
        }
        c->e = e;
        c->s = s;
        c->planned = e->planned_hash;
        c->agents_later = agents_later;
        e->applies_in_flight++; /* before: on_applied counts them down */
        s->applying++;
        const char *be = svc->backends[i].def->name;
        if ((agents_later ? haproxy_runtime_apply_agents_later(s->rt, be, a, on_applied, c)
                          : haproxy_runtime_apply(s->rt, be, a, on_applied, c)) < 0) {
            e->applies_in_flight--;
            s->applying--;
            free(c);
            s->batch_failed = true;
            metrics_counter_inc(e->m_apply_failures);
        }
    }
    if (!s->applying) { /* nothing queued: what is owed stays owed */
        s->owed |= s->batch_failed;
        save_state_soon(s);
    }
}

void engine_apply_service(struct haproxy_engine *e, struct service_state *s,
                          const struct snapshot_service *svc)
{
    /* One apply per service in the runtime queue at a time. At a steady
     * rate of changes (100/s) an apply per snapshot queued them faster than
     * HAProxy's socket answered, and each one waited behind all the older
     * ones; now what arrives meanwhile waits for one apply at most and goes
     * out in one, from the newest placements (batch_done). */
    if (s->applying) {
        s->apply_again = true;
        return;
    }
    if (!s->rt)
        return;
    if (!s->apply_forced && s->plan_done && s->plan_done == e->planned_hash) {
        /* a batch while the agent file was written did it all (no slot
         * was filled), or failed for good */
        save_state_soon(s);
        return;
    }
    s->apply_forced = false;
    /* the agent of a filled slot is enabled only once the agent file
     * shows the slot's occupant: an agent answering from the older file
     * (maint: the slot was free) would take it out */
    apply_backends(e, s, svc, !engine_agent_file_current(e));
}

void engine_apply_early(struct haproxy_engine *e)
{
    for (size_t i = 0; e->snap && i < e->n_svcs; i++) {
        struct service_state *s = e->svcs[i];
        const struct snapshot_service *svc;
        /* one in flight: the full apply follows it (apply_again) */
        if (!s->apply_wanted || s->applying || !(svc = appliable(e, s)))
            continue;
        apply_backends(e, s, svc, true);
    }
}

void engine_resync_service(struct haproxy_engine *e, struct service_state *s, bool forget_applied)
{
    const struct snapshot_service *svc = appliable(e, s);
    if (!svc || !e->applied)
        return;
    /* drift is what this looks for: read HAProxy now */
    haproxy_runtime_drop_live(s->rt);
    for (size_t i = 0; forget_applied && i < svc->n_backends; i++)
        haproxy_runtime_forget(s->rt, svc->backends[i].def->name);
    s->apply_forced = true; /* never skipped, also as a follow-up */
    engine_apply_service(e, s, svc);
}

/* The runtime diff compares with HAProxy's live state, so re-applying the
 * placements in force is a no-op when nothing drifted and repairs a
 * HAProxy that was restarted from its file or changed by hand. Only once
 * a snapshot was applied. */
void engine_on_resync(uv_timer_t *t)
{
    struct haproxy_engine *e = t->data;
    if (!e->snap || e->stopping || !e->applied)
        return;
    for (size_t i = 0; i < e->snap->n_services; i++) {
        struct service_state *s = engine_service_state(e, e->snap->services[i].def->name);
        if (s)
            engine_resync_service(e, s, false);
    }
}

/* ---- structural: render, check, install, reload ---- */

static void finish_service(struct haproxy_engine *e, struct service_state *s,
                           const struct snapshot_service *svc, json_t *structure)
{
    json_decref(s->structure);
    s->structure = structure;
    s->reload_pending = false;
    engine_prune_maps(e, s, structure);
    engine_service_accepted(e, s, "a definition passed and runs");
    if (svc) {
        s->apply_forced = true; /* the reloaded worker gets the whole placement */
        engine_apply_service(e, s, svc);
    }
    engine_service_applied(e, s, svc);
    engine_mark_applied(e);
}

struct reload_ctx {
    struct haproxy_engine *e;
    struct service_state *s;
    json_t *structure;
};

static void on_reloaded(struct haproxy_runtime *rt, const struct haproxy_reload_result *res,
                        void *arg)
{
    struct reload_ctx *c = arg;
    struct haproxy_engine *e = c->e;
    struct service_state *s = c->s;
    char err[512];
    (void)rt;
    s->busy = false;
    if (res->status == -ECANCELED || e->stopping) {
        json_decref(c->structure);
        free(c);
        return;
    }
    if (res->status != -ENOENT && res->status != -ECONNREFUSED) /* an HAProxy answered */
        metrics_histogram_observe(e->m_reload_seconds, (double)res->elapsed_ms / 1000.0);
    if (res->status == 0) {
        metrics_counter_inc(e->m_reloads);
        s->reloads = res->reloads_after;
        /* the new worker counts errors from 0: report none until it is read,
         * never the old worker's beside the new reload count */
        s->have_errors = false;
        log_info("watcher: service %s: reloaded (worker %d, reload %d -> %d, %llu ms)", s->name,
                 res->new_worker_pid, res->reloads_before, res->reloads_after,
                 (unsigned long long)res->elapsed_ms);
        const struct snapshot_service *svc = e->snap ? snapshot_service(e->snap, s->name) : NULL;
        finish_service(e, s, svc, c->structure);
    } else if (res->status == -ENOENT || res->status == -ECONNREFUSED) {
        /* no HAProxy running: the checked file stays; it starts with it */
        log_warn("watcher: service %s: HAProxy master not reachable (%s); the checked config "
                 "stays installed for its next start",
                 s->name, res->message);
        finish_service(e, s, NULL, c->structure);
    } else {
        metrics_counter_inc(e->m_reload_failures);
        log_error("watcher: service %s: reload failed: %s; rolling back the config", s->name,
                  res->message);
        engine_service_failed(e, s, "reload", res->message);
        if (render_rollback(e->o.config_dir, s->name, err, sizeof(err)) < 0)
            log_error("watcher: %s", err);
        json_decref(c->structure);
    }
    if (!e->stopping && s->replan) {
        s->replan = false;
        quiesce_timer_kick(e->runtime_q);
    }
    free(c);
}

struct install_ctx {
    struct haproxy_engine *e;
    struct service_state *s;
    json_t *structure;
    bool refresh_only;
};

/* Reload s for the config just installed, from the placements it was
 * rendered from (frozen while busy): the runtime keeps only state-file
 * lines that agree with them. Takes structure over. 0 or negative errno
 * (s->busy cleared, structure freed). */
static int reload_service(struct haproxy_engine *e, struct service_state *s,
                          const struct snapshot_service *svc, json_t *structure)
{
    struct reload_ctx *c = calloc(1, sizeof(*c));
    struct haproxy_placement pl[64];
    size_t npl = 0;
    int rc;

    if (!c) {
        s->busy = false;
        json_decref(structure);
        return -ENOMEM;
    }
    c->e = e;
    c->s = s;
    c->structure = structure;
    log_info("watcher: service %s: config installed, reloading", s->name);
    for (size_t i = 0; svc && i < svc->n_backends && npl < 64; i++) {
        const struct slot_assignment *a = engine_committed_slots(e, svc->backends[i].def->name);
        if (a)
            pl[npl++] = (struct haproxy_placement){svc->backends[i].def->name, a};
    }
    rc = npl && npl == (svc ? svc->n_backends : 0)
             ? haproxy_runtime_reload_placed(s->rt, pl, npl, on_reloaded, c)
             : haproxy_runtime_reload(s->rt, on_reloaded, c);
    if (rc < 0) {
        s->busy = false;
        log_error("watcher: service %s: cannot start the reload: %s", s->name, strerror(-rc));
        json_decref(c->structure);
        free(c);
    }
    return rc;
}

static void on_installed(void *arg, int status, bool changed, const char *errmsg)
{
    struct install_ctx *c = arg;
    struct haproxy_engine *e = c->e;
    struct service_state *s = c->s;
    const struct snapshot_service *svc = e->snap ? snapshot_service(e->snap, s->name) : NULL;

    s->checking = false;
    if (e->stopping)
        goto out;
    if (status < 0 && c->refresh_only) {
        /* the running config's own file: not a new definition */
        metrics_counter_inc(e->m_render_failures);
        log_error("watcher: service %s (key %s): config file refresh: %s; the running config "
                  "stays",
                  s->name, svc ? svc->def->key : "?", errmsg ? errmsg : strerror(-status));
        goto out;
    }
    if (status < 0) {
        s->busy = false;
        s->reload_pending = false;
        engine_service_refused(e, s, c->structure, "check", errmsg ? errmsg : strerror(-status));
        c->structure = NULL;
        /* placed while the check ran: applied on the running config */
        s->replan |= s->structure != NULL;
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
        finish_service(e, s, svc, c->structure);
        c->structure = NULL;
        goto out;
    }
    reload_service(e, s, svc, c->structure);
    c->structure = NULL;
out:
    /* work that arrived while this one ran */
    if (!e->stopping && (s->reload_pending || s->file_stale))
        quiesce_timer_kick(e->struct_q);
    if (!e->stopping && s->replan && !s->busy) {
        s->replan = false;
        quiesce_timer_kick(e->runtime_q);
    }
    json_decref(c->structure);
    free(c);
}

/* Render svc and start its check + install (+ reload unless refresh_only). */
static void install_service(struct haproxy_engine *e, struct service_state *s,
                            const struct snapshot_service *svc, bool refresh_only)
{
    char err[2048];
    json_t *data = NULL, *st = NULL;
    struct template_buf buf = {0};
    struct install_ctx *c = NULL;
    int rc;

    if ((rc = engine_service_json(e, svc, false, &data)) < 0 ||
        (rc = engine_service_json(e, svc, true, &st)) < 0) {
        log_error("watcher: service %s: template data: %s; nothing installed", s->name,
                  strerror(-rc));
        goto out;
    }
    if ((rc = render_text(e->templates, svc->def->template_name, data, &buf, err, sizeof(err))) <
        0) {
        s->reload_pending = false;
        engine_service_refused(e, s, st, "render", err);
        st = NULL;
        if (s->structure) /* the servers go on through the runtime API */
            quiesce_timer_kick(e->runtime_q);
        goto out;
    }
    if (!(c = calloc(1, sizeof(*c))))
        goto out;
    c->e = e;
    c->s = s;
    c->structure = st;
    c->refresh_only = refresh_only;
    st = NULL;
    s->checking = true;
    if (!refresh_only) {
        s->busy = true; /* until reloaded: runtime planning waits */
        s->reload_pending = false;
    }
    if (refresh_only)
        e->refreshes++;
    else
        e->installs++;
    if ((rc = render_install_async(e->loop, e->o.haproxy_bin, e->o.config_dir, s->name,
                                   buf.data ? buf.data : "", buf.len, on_installed, c)) < 0) {
        log_error("watcher: service %s: cannot start the config check: %s", s->name, strerror(-rc));
        s->checking = false;
        s->busy = false;
        json_decref(c->structure);
        free(c);
    }
out:
    template_buf_free(&buf);
    json_decref(data);
    json_decref(st);
}

static void on_agent_state_for_sync(void *arg, int status)
{
    struct haproxy_engine *e = arg;
    if (engine_agent_write_done(e, status))
        file_writer_sync(e->writer, e->o.agent_state_file);
}

/* Whether s's config file refresh waits for the end of the stream of
 * runtime changes that cut this burst (ENGINE_REFRESH_MAX_STALE_MS at
 * most). The structural timer is kicked again, so the end of the stream
 * is seen even if no change follows. */
static bool refresh_put_off(struct haproxy_engine *e, struct service_state *s)
{
    uint64_t now = uv_now(e->loop);
    if (quiesce_timer_fired_quiet(e->struct_q))
        return false;
    if (!s->stale_ms)
        s->stale_ms = now ? now : 1; /* 0 means none */
    if (now - s->stale_ms >= ENGINE_REFRESH_MAX_STALE_MS)
        return false;
    quiesce_timer_kick(e->struct_q);
    return true;
}

void engine_on_struct_due(void *arg)
{
    struct haproxy_engine *e = arg;

    if (!e->snap || e->stopping)
        return;
    if (e->snapshot_dirty) {
        /* placements and inputs for a restart without Consul; written in
         * the quiet window because its fsync would delay runtime applies */
        e->snapshot_dirty = false;
        engine_save_snapshot(e);
        /* renamed by the agent writer, then made durable by the writer:
         * only the agent writer ever puts content there */
        engine_write_agent_state(e, on_agent_state_for_sync);
    }
    for (size_t i = 0; i < e->snap->n_services; i++) {
        const struct snapshot_service *svc = &e->snap->services[i];
        struct service_state *s = engine_service_state(e, svc->def->name);

        if (s)
            engine_persist_maps(s); /* route maps changed at runtime */
        if (!s || (!s->reload_pending && !s->file_stale) || s->busy || s->checking)
            continue;
        bool refresh_only = !s->reload_pending;
        if (refresh_only && refresh_put_off(e, s))
            continue;
        s->file_stale = false;
        s->stale_ms = 0;
        install_service(e, s, svc, refresh_only);
    }
}
