/* SPDX-License-Identifier: Apache-2.0 */
/*
 * haproxy_engine, supervision of the HAProxy instances (one per service):
 *
 *   every --haproxy-probe-interval: `show proc` on each service's master CLI
 *     (a service whose config is installed) -> up (master answers, a
 *     worker listed) or down (socket gone, refused, no worker, or the
 *     newest worker stopped: SIGSTOP; the master still lists it and its
 *     listening socket still queues connections nobody answers);
 *   every probe of a service that is up: a ping (`show info`) on its stats
 *     socket, answered by the worker that takes connections, within
 *     ping_bound_ms (4 probe intervals, 100 ms to the command timeout).
 *     HAPROXY_PING_MISSES misses in a row -> the service is mute: not
 *     serving whatever the worker is stuck in (D state, a loop below
 *     HAProxy's watchdog, a blocking call) - its socket still queues
 *     connections nobody answers, and /proc says nothing for those. One
 *     answer: serving again. Counted in drover_watcher_haproxy_ping_misses_
 *     total{service}. A ping has its own lane in the client (never behind
 *     an apply), yet never runs beside a reload, which runs alone, so an
 *     old worker draining and a new one starting never read as a miss;
 *     a timeout after the watcher's own stall is waited out once more
 *     (haproxy_runtime.h), not counted;
 *   up -> down (or mute): logged, drover_watcher_haproxy_up{service} 0,
 *     readiness (on_health) false;
 *   up again with another master pid than before (restarted by systemd,
 *     by hand or by this watcher): drover_watcher_haproxy_restarts_total
 *     {service} counted, logged;
 *   with run_haproxy (--haproxy-run, hosts without systemd): a service
 *     found down is started here (`haproxy -W -S <master> -f <config>`,
 *     detached: it outlives the watcher), and a child that exits is started
 *     again at once; one that dies again within 10 s of its start waits
 *     100 ms, then twice as long each time, up to 5 s. HAProxy loads the installed
 *     config and the server-state file the engine keeps current, so a
 *     drained server stays drained.
 * The HAProxy a master CLI reports is never stopped or signalled here.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "haproxy_engine_internal.h"
#include "log.h"
#include "proc_stat.h"

#define RESTART_MIN_MS 100
#define RESTART_MAX_MS 5000
#define STABLE_MS      10000 /* ran this long: the next death restarts at once */
/* Pings missed in a row before a service is mute: one miss can be a
 * worker busy for a moment (a large map load, a burst of handshakes). */
#define HAPROXY_PING_MISSES 3
#define PING_MIN_MS         100 /* a worker answers `show info` in well under this */

static void supervise_start(struct service_state *s);

static bool config_installed(const struct haproxy_engine *e, const struct service_state *s)
{
    char path[PATH_MAX];
    int n = snprintf(path, sizeof(path), "%s/%s.cfg", e->o.config_dir, s->name);
    return n > 0 && (size_t)n < sizeof(path) && access(path, F_OK) == 0;
}

/* every service with an installed config that is not retired is up */
static void update_health(struct haproxy_engine *e)
{
    const struct service_state *down = NULL;
    for (size_t i = 0; i < e->n_svcs && !down; i++) {
        const struct service_state *s = e->svcs[i];
        if (!s->retired && s->probed && (!s->up || s->mute))
            down = s;
    }
    bool all_up = down == NULL;
    if (all_up == e->all_up)
        return;
    e->all_up = all_up;
    if (e->o.on_health) {
        char reason[256];
        snprintf(reason, sizeof(reason), "HAProxy of service %s %s", down ? down->name : "",
                 down && down->up ? "does not answer its stats socket" : "is down");
        e->o.on_health(e->o.arg, all_up, all_up ? NULL : reason);
    }
}

static void set_up(struct service_state *s, bool up)
{
    s->up = up;
    s->probed = true;
    metrics_gauge_set(s->m_up, up && !s->mute ? 1 : 0);
    update_health(s->e);
}

/* How long a ping waits for its answer: long enough that only a worker
 * whose event loop does not run misses it, short enough that
 * HAPROXY_PING_MISSES misses take seconds, not the command timeout each. */
static uint64_t ping_bound_ms(const struct haproxy_engine *e)
{
    uint64_t ms = 4 * (uint64_t)e->o.probe_ms;
    if (ms < PING_MIN_MS)
        ms = PING_MIN_MS;
    return ms > HAPROXY_RUNTIME_CMD_TIMEOUT_MS ? HAPROXY_RUNTIME_CMD_TIMEOUT_MS : ms;
}

static void set_mute(struct service_state *s, bool mute)
{
    s->mute = mute;
    set_up(s, s->up);
}

static void ping_missed(struct service_state *s, const char *err)
{
    metrics_counter_inc(s->m_ping_misses);
    if (++s->ping_misses < HAPROXY_PING_MISSES || s->mute) {
        log_debug("watcher: service %s: ping %u missed: %s", s->name, s->ping_misses, err);
        return;
    }
    char *sock = haproxy_engine_expand(s->e->o.stats_socket, s->name);
    log_warn("watcher: service %s: HAProxy worker does not answer on %s: %u pings in a row "
             "missed, %llu ms each (last: %s); not ready until it answers",
             s->name, sock ? sock : "its stats socket", s->ping_misses,
             (unsigned long long)ping_bound_ms(s->e), err);
    free(sock);
    set_mute(s, true);
}

static void on_ping(struct haproxy_runtime *rt, int status, const char *const *answers, size_t n,
                    const char *err, void *arg)
{
    struct service_state *s = arg;
    (void)rt, (void)answers, (void)n;
    s->pinging = false;
    if (status == -ECANCELED || s->e->stopping)
        return;
    if (status < 0) {
        ping_missed(s, err);
        return;
    }
    s->ping_misses = 0;
    if (!s->mute)
        return;
    log_info("watcher: service %s: HAProxy worker answers its stats socket again", s->name);
    set_mute(s, false);
    /* applies sent while it did not answer timed out: bring it to the
     * placements */
    engine_resync_service(s->e, s, false);
}

static void ping(struct service_state *s)
{
    if (s->pinging || !s->up)
        return;
    if (haproxy_runtime_ping(s->rt, ping_bound_ms(s->e), on_ping, s) == 0)
        s->pinging = true;
}

/* The worker is stopped (SIGSTOP, a debugger): its /proc entry says 'T' or
 * 't' and its parent is the master, so a pid from another pid namespace
 * (HAProxy in a container) is never taken for it. Unknown: not stopped. */
static bool worker_stopped(int pid, int master_pid)
{
    char state;
    int ppid;
    return proc_stat_read(pid, &state, &ppid) == 0 && ppid == master_pid &&
           (state == 'T' || state == 't');
}

/* The worker that takes new connections: the one that lived through the
 * fewest reloads (older ones only finish their connections). n_workers > 0. */
static const struct haproxy_proc *newest_worker(const struct haproxy_proc_list *procs)
{
    const struct haproxy_proc *w = &procs->workers[0];
    for (size_t i = 1; i < procs->n_workers; i++)
        if (procs->workers[i].reloads < w->reloads)
            w = &procs->workers[i];
    return w;
}

static void on_proc(struct haproxy_runtime *rt, int status, const struct haproxy_proc_list *procs,
                    const char *err, void *arg)
{
    struct service_state *s = arg;
    struct haproxy_engine *e = s->e;
    (void)rt;
    s->probing = false;
    if (status == -ECANCELED || e->stopping)
        return;
    bool up = status == 0 && procs->n_workers > 0;
    const struct haproxy_proc *serving = up ? newest_worker(procs) : NULL;
    if (serving && worker_stopped(serving->pid, procs->master.pid)) {
        if (s->up || !s->probed)
            log_warn("watcher: service %s: HAProxy worker (pid %d) is stopped: not ready until "
                     "it runs again",
                     s->name, serving->pid);
        s->ping_misses = 0; /* said already; the /proc probe answers for it */
        set_up(s, false);
        return; /* its master runs: nothing to start */
    }
    if (up) {
        bool restarted = s->master_pid && procs->master.pid != s->master_pid;
        if (restarted) {
            metrics_counter_inc(s->m_restarts);
            log_warn("watcher: service %s: HAProxy runs again (master pid %d, was %d)", s->name,
                     procs->master.pid, s->master_pid);
        } else if (!s->up && s->probed) {
            log_info("watcher: service %s: HAProxy answers again", s->name);
        }
        s->master_pid = procs->master.pid;
        /* it started from its files (the server-state file can be up to a
         * second old, and carry agents an apply had left off), or missed
         * applies while it did not answer: bring it to the placements */
        if (restarted || (!s->up && s->probed))
            engine_resync_service(e, s, restarted);
    } else {
        s->ping_misses = 0; /* what a dead HAProxy missed says nothing of the next one */
    }
    if (!up && (s->up || !s->probed)) {
        log_warn("watcher: service %s: HAProxy is not running (%s); %s", s->name,
                 status < 0 ? err : "master without a worker",
                 e->o.run_haproxy ? "starting it" : "waiting for its supervisor to start it");
    }
    set_up(s, up);
    if (!up && e->o.run_haproxy && !s->child && !s->restart_armed)
        supervise_start(s);
}

static void on_probe(uv_timer_t *t)
{
    struct haproxy_engine *e = t->data;
    if (e->stopping)
        return;
    for (size_t i = 0; i < e->n_svcs; i++) {
        struct service_state *s = e->svcs[i];
        if (s->retired || !s->rt || s->probing || !config_installed(e, s))
            continue;
        if (haproxy_runtime_show_proc(s->rt, on_proc, s) == 0)
            s->probing = true;
        ping(s);
    }
}

static void free_handle(uv_handle_t *h)
{
    free(h);
}

static void on_restart_due(uv_timer_t *t)
{
    struct service_state *s = t->data;
    s->restart_armed = false;
    if (!s->e->stopping && !s->child && !s->retired)
        supervise_start(s);
}

static void schedule_start(struct service_state *s, uint64_t delay_ms)
{
    if (!s->restart) {
        s->restart = malloc(sizeof(*s->restart));
        if (!s->restart || uv_timer_init(s->e->loop, s->restart) < 0) {
            free(s->restart);
            s->restart = NULL;
            log_error("watcher: service %s: cannot arm the HAProxy restart timer; the next probe "
                      "starts it",
                      s->name);
            return;
        }
        s->restart->data = s;
    }
    s->restart_armed = true;
    uv_timer_start(s->restart, on_restart_due, delay_ms, 0);
}

static void on_child_exit(uv_process_t *p, int64_t exit_status, int term_signal)
{
    struct service_state *s = p->data;
    struct haproxy_engine *e = s->e;
    uint64_t ran = uv_now(e->loop) - s->started_ms;
    int pid = p->pid;
    uv_close((uv_handle_t *)p, free_handle);
    s->child = NULL;
    if (e->stopping)
        return;
    /* the first death in a while restarts at once; each further one within
     * STABLE_MS of its start waits twice as long as the one before */
    s->quick_deaths = ran >= STABLE_MS ? 1 : s->quick_deaths + 1;
    s->backoff_ms = s->quick_deaths <= 1 ? 0 : RESTART_MIN_MS << (s->quick_deaths - 2);
    if (s->quick_deaths > 8 || s->backoff_ms > RESTART_MAX_MS)
        s->backoff_ms = RESTART_MAX_MS;
    log_warn("watcher: service %s: HAProxy (pid %d) exited after %llu ms (status %lld, signal "
             "%d); starting it again in %lld ms",
             s->name, pid, (unsigned long long)ran, (long long)exit_status, term_signal,
             (long long)s->backoff_ms);
    if (s->up)
        set_up(s, false);
    schedule_start(s, (uint64_t)s->backoff_ms);
}

/* Start the service's HAProxy from its installed config (run_haproxy). */
static void supervise_start(struct service_state *s)
{
    struct haproxy_engine *e = s->e;
    char cfg[PATH_MAX];
    int n = snprintf(cfg, sizeof(cfg), "%s/%s.cfg", e->o.config_dir, s->name);
    char *master = haproxy_engine_expand(e->o.master_socket, s->name);
    uv_process_t *p = calloc(1, sizeof(*p));
    if (!master || !p || n < 0 || (size_t)n >= sizeof(cfg)) {
        log_error("watcher: service %s: cannot start HAProxy: out of memory or path too long; "
                  "the next probe tries again",
                  s->name);
        free(master);
        free(p);
        return;
    }
    char *args[] = {(char *)e->o.haproxy_bin, "-W", "-S", master, "-f", cfg, NULL};
    uv_stdio_container_t io[3] = {
        {.flags = UV_IGNORE},
        {.flags = UV_INHERIT_FD, .data.fd = 1},
        {.flags = UV_INHERIT_FD, .data.fd = 2},
    };
    uv_process_options_t po = {
        .exit_cb = on_child_exit,
        .file = e->o.haproxy_bin,
        .args = args,
        .flags = UV_PROCESS_DETACHED,
        .stdio_count = 3,
        .stdio = io,
    };
    p->data = s;
    int rc = uv_spawn(e->loop, p, &po);
    if (rc < 0) {
        uv_close((uv_handle_t *)p, free_handle);
        s->backoff_ms = s->backoff_ms ? s->backoff_ms : RESTART_MIN_MS;
        log_error("watcher: service %s: cannot run %s: %s; trying again in %lld ms", s->name,
                  e->o.haproxy_bin, uv_strerror(rc), (long long)s->backoff_ms);
        schedule_start(s, (uint64_t)s->backoff_ms);
    } else {
        s->child = p;
        s->started_ms = uv_now(e->loop);
        log_info("watcher: service %s: HAProxy started (pid %d): %s -W -S %s -f %s", s->name,
                 p->pid, e->o.haproxy_bin, master, cfg);
    }
    free(master);
}

void engine_supervise_service(struct haproxy_engine *e, struct service_state *s)
{
    char labels[200];
    metrics_format_labels(labels, sizeof(labels), "service", s->name, NULL);
    s->m_restarts = metrics_counter(e->o.metrics, "drover_watcher_haproxy_restarts_total",
                                    "HAProxy instances seen running again with a new master "
                                    "after they died.",
                                    labels);
    s->m_up = metrics_gauge(e->o.metrics, "drover_watcher_haproxy_up",
                            "1 while the service's HAProxy master CLI lists a worker, "
                            "that worker is not stopped and it answers its stats socket.",
                            labels);
    s->m_ping_misses = metrics_counter(e->o.metrics, "drover_watcher_haproxy_ping_misses_total",
                                       "Pings (show info) the service's HAProxy worker did not "
                                       "answer on its stats socket in time.",
                                       labels);
}

void engine_supervise_init(struct haproxy_engine *e)
{
    e->all_up = true;
    uv_timer_init(e->loop, &e->probe);
    e->probe.data = e;
    if (e->o.probe_ms > 0)
        uv_timer_start(&e->probe, on_probe, (uint64_t)e->o.probe_ms, (uint64_t)e->o.probe_ms);
}

void engine_supervise_stop(struct haproxy_engine *e)
{
    for (size_t i = 0; i < e->n_svcs; i++) {
        struct service_state *s = e->svcs[i];
        if (s->child) /* HAProxy keeps running (detached) */
            uv_close((uv_handle_t *)s->child, free_handle);
        if (s->restart)
            uv_close((uv_handle_t *)s->restart, free_handle);
        s->child = NULL;
        s->restart = NULL;
    }
    uv_close((uv_handle_t *)&e->probe, NULL);
}
