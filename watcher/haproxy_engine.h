/* SPDX-License-Identifier: Apache-2.0 */
/*
 * haproxy_engine: the watcher's HAProxy apply engine. It takes snapshots
 * (snapshot.h) and brings every HAProxy service they define to them:
 *
 *   snapshot in -> runtime quiescence (--runtime-wait) -> plan:
 *     slots_assign per backend starting from the committed placement,
 *     slots_guard per backend (mass removal, force-removal entries),
 *     the structure render (every slot free) compared with the installed
 *     one: equal -> runtime-API apply at once, file refreshed later
 *     without a reload; different -> structural quiescence (--wait-min /
 *     --wait-max), render + `haproxy -c` + atomic install + reload through
 *     the master CLI, rollback when the reload fails;
 *   services gone from a complete Consul read are retired (config moved
 *     aside, frontends disabled) under a guard over services;
 *   the agent-checker state file is written before every runtime apply (a
 *     filled slot must read "ready" before its agent is enabled), the
 *     snapshot file in the structural window after every planned snapshot;
 *   maintenance and force-removal entries that expire re-plan by
 *   themselves; a periodic resync re-applies the placements in force;
 *   the server-state file is written after every runtime apply (a cold
 *   start loads the drains in force);
 *   certificate files of TLS frontends are polled and a changed one is
 *     swapped through the runtime API (set/commit ssl cert, no reload);
 *   every HAProxy is probed (`show proc`): deaths and restarts are logged,
 *   counted and reported (on_health); with run_haproxy the engine starts
 *   each service's HAProxy itself and again when it dies.
 *
 * It owns the per-backend placements (what was committed), the per-service
 * install/reload state and one haproxy_runtime client per service, and its
 * metrics (registered in the registry it is given). It reads no global
 * options and knows nothing of Consul: the caller hands it snapshots and
 * says whether they come from a complete read (only those may retire
 * services). docs/watcher.md has the whole picture.
 *
 * Everything runs on the caller's libuv loop. Nothing waits for HAProxy
 * or for `haproxy -c` (sockets and the check child are asynchronous);
 * renders and the file writes (agent state, snapshot, retire) are
 * synchronous.
 */
#ifndef DROVER_WATCHER_HAPROXY_ENGINE_H
#define DROVER_WATCHER_HAPROXY_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "kv_model.h"
#include "metrics.h"
#include "slots.h"
#include "snapshot.h"
#include "template.h"

struct haproxy_engine;
struct haproxy_error_counters; /* haproxy_answers.h */

/* Called after every snapshot (or part of one) was applied to HAProxy. */
typedef void (*haproxy_engine_applied_fn)(void *arg, const struct snapshot *snap);

/* Every HAProxy instance up (all_up) or one down (reason names it). */
typedef void (*haproxy_engine_health_fn)(void *arg, bool all_up, const char *reason);

/* The engine's options. Strings and model are borrowed and must outlive
 * the engine. Socket and file patterns may hold "{service}", replaced by
 * each service's name. */
struct haproxy_engine_opts {
    const struct kv_model_opts *model; /* what snapshots are built with */
    const char *haproxy_cluster;
    const char *config_dir;                                /* <service>.cfg installed here */
    const char *haproxy_bin;                               /* for `haproxy -c` */
    const char *master_socket, *stats_socket, *state_file; /* patterns */
    const char *agent_state_file;
    const char *agent_addr;
    uint16_t agent_port;
    int64_t agent_interval_ms;
    const char *snapshot_file; /* NULL or "": none saved */
    int64_t wait_min_ms, wait_max_ms, runtime_wait_ms;
    double max_removal_share;
    int64_t maxconn, timeout_connect_ms, timeout_client_ms, timeout_server_ms;
    int64_t resync_ms;                /* 0: no periodic resync */
    struct metrics_registry *metrics; /* required: the engine's metrics go here */
    bool run_haproxy;                 /* start each service's HAProxy and again when it dies */
    int64_t probe_ms;                 /* show proc on every HAProxy this often; 0: no supervision */
    int64_t cert_poll_ms;             /* stat the certificate files this often; 0: not watched */
    int64_t errors_ms; /* read each HAProxy's error counters this often; 0: not read */
    haproxy_engine_applied_fn on_applied; /* may be NULL */
    haproxy_engine_health_fn on_health;   /* may be NULL */
    /* what haproxy_engine_service_status reports changed (a service applied
     * a definition or failed, a guard was taken or released); may be NULL */
    void (*on_status)(void *arg);
    void *arg;
    /* The loop's stall measurement (loop_lag.h), shared with the other
     * modules on the loop; the engine keeps a reference and hands it to
     * every service's HAProxy client. NULL: each client measures the loop
     * itself. */
    struct loop_lag *loop_lag;
};

/*
 * Create the engine on loop. templates is taken over (freed with the
 * engine). Creates config_dir if missing (a failure is logged: the install
 * names it later), locks it (HAPROXY_ENGINE_LOCK_FILE) and removes the
 * temporary files a watcher killed mid-write left in it and in the
 * directories of its state files. 0, -EINVAL, -ENOMEM, -EWOULDBLOCK (the
 * config dir is another process's) or the errno of a lock file that
 * cannot be opened (templates freed in every failure).
 */
int haproxy_engine_new(uv_loop_t *loop, const struct haproxy_engine_opts *o,
                       struct template_set *templates, struct haproxy_engine **out);

/*
 * Serve snap from now on (taken over). complete_read: snap was built from a
 * complete, successful read of every watched prefix; from the first such
 * snapshot on (and for snapshots rebuilt from its inputs) services missing
 * from a snapshot are retired. A snapshot loaded from the file retires
 * nothing. Planning runs after the runtime quiescence.
 */
void haproxy_engine_take_snapshot(struct haproxy_engine *e, struct snapshot *snap,
                                  bool complete_read);

/* The snapshot in force, or NULL. Owned by the engine. */
const struct snapshot *haproxy_engine_snapshot(const struct haproxy_engine *e);

/*
 * Load the snapshot file (o->snapshot_file) with its placements and serve
 * it (not a complete read). A missing or bad file is logged and ignored.
 * 0, -ENOENT (no file) or another negative errno (logged).
 */
int haproxy_engine_load_saved(struct haproxy_engine *e);

/* Use a new template set (taken over; the old one is freed) and render
 * every service again in the structural window: a changed text is checked
 * and reloaded, an unchanged one installs nothing. */
void haproxy_engine_set_templates(struct haproxy_engine *e, struct template_set *set);

/* Stop: save a snapshot not yet saved, cancel HAProxy requests in flight
 * (HAProxy keeps running as it is), close timers. The loop must run once
 * more to close handles before haproxy_engine_free. Idempotent. */
void haproxy_engine_stop(struct haproxy_engine *e);

/* Free everything (after haproxy_engine_stop and the loop ran). NULL ok. */
void haproxy_engine_free(struct haproxy_engine *e);

/* ---- observation (metrics mirror these; tests assert on them) ---- */

struct haproxy_engine_stats {
    size_t services;         /* known, retired ones included */
    size_t services_retired; /* removed from KV */
    size_t backends_held;    /* latest change held by the removal guard */
    size_t servers;          /* placed in slots, all backends */
    bool service_removal_held;
    bool kv_loss;            /* a KV-loss episode is in force (service removals frozen) */
    size_t maint_held;       /* maintenance entries held through it */
    bool kv_loss_forced;     /* haproxy/<cluster>/force-kv-loss in force */
    size_t services_refused; /* latest definition refused (render or haproxy -c) */
    uint64_t snapshots;      /* taken */
    uint64_t plans;          /* runtime quiescence windows planned */
    uint64_t installs;       /* structural installs started (render + check + reload) */
    uint64_t refreshes;      /* config file refreshes without a reload started */
    uint64_t route_updates;  /* route map changes applied through the runtime API */
    uint64_t cert_swaps;     /* certificates swapped through the runtime API */
    uint64_t cert_failures;  /* certificates refused (by the watcher or HAProxy) */
    uint64_t reloads, reload_failures, render_failures;
    uint64_t applies, apply_failures; /* runtime-API applies (per backend) */
    uint64_t apply_retries;           /* services applied again after a failure (backoff) */
    uint64_t removals_held_total, services_removed, service_removals_held_total;
};
void haproxy_engine_get_stats(const struct haproxy_engine *e, struct haproxy_engine_stats *out);

/* The committed placement of backend (applied or installed), or NULL.
 * Owned by the engine, valid until the next plan. */
const struct slot_assignment *haproxy_engine_committed(const struct haproxy_engine *e,
                                                       const char *backend);

/* The latest plan of backend was held by the removal guard. */
bool haproxy_engine_backend_held(const struct haproxy_engine *e, const char *backend);

/* Service name is known and retired (removed from KV). */
bool haproxy_engine_service_retired(const struct haproxy_engine *e, const char *name);

/* A service as the host's status entry reports it (kv_status.h). */
struct haproxy_engine_service_status {
    const char *name;
    const char *definition; /* kv_hash64_hex of the raw definition applied; "" none yet */
    int64_t reloads;        /* HAProxy's reload counter after our last verified reload */
    const char *error;      /* latest render/check/reload failure; NULL after a success */
    bool refused;           /* the latest definition was refused; the running one stays in force */
    /* HAProxy's error counters of the running worker (last read every
     * errors_ms); NULL: not read (yet), or its HAProxy did not answer */
    const struct haproxy_error_counters *errors;
};
/* fn for every known service that is not retired. */
void haproxy_engine_each_service(const struct haproxy_engine *e,
                                 void (*fn)(void *arg,
                                            const struct haproxy_engine_service_status *s),
                                 void *arg);
/* fn for every maintenance entry held through a KV-loss episode (id: the
 * key below maintenance/). */
void haproxy_engine_each_held_maint(const struct haproxy_engine *e,
                                    void (*fn)(void *arg, const char *id), void *arg);
/* fn for every backend whose latest change the removal guard holds. */
void haproxy_engine_each_held(const struct haproxy_engine *e,
                              void (*fn)(void *arg, const char *backend), void *arg);

/* The server-state file between reloads only serves a HAProxy that starts
 * cold (a reload writes its own right before it): it follows the runtime
 * applies HAPROXY_ENGINE_STATE_QUIET_MS after the last one, and at least
 * every HAPROXY_ENGINE_STATE_MAX_MS under a steady stream. Written after
 * every apply, its `show servers state` exchange held HAProxy's socket
 * about half the time at 100 changes/s, and the next apply waited behind
 * it. */
#define HAPROXY_ENGINE_STATE_QUIET_MS 100
#define HAPROXY_ENGINE_STATE_MAX_MS   1000

/* The lock file of the config dir (dir_lock.h): one engine per config dir
 * at a time, held from haproxy_engine_new until haproxy_engine_free (or
 * the process's end). haproxy_engine_new fails with -EWOULDBLOCK, the
 * holder's pid logged, when another process holds it. */
#define HAPROXY_ENGINE_LOCK_FILE ".drover-watcher.lock"

/* Nothing to do: no quiescence pending, no check, install, reload or
 * runtime apply in flight. */
bool haproxy_engine_idle(const struct haproxy_engine *e);

/* ---- shared with the render subcommands ---- */

/*
 * Template render options of service from o; *stats and *state are the
 * expanded socket and state-file paths that ro points to (caller frees
 * both; on -ENOMEM ro holds "" for them). 0 or -ENOMEM.
 */
int haproxy_engine_render_opts(const struct haproxy_engine_opts *o, const char *service,
                               struct snapshot_render_opts *ro, char **stats, char **state);

/* pattern with its first "{service}" replaced by name; caller frees. NULL
 * on -ENOMEM. */
char *haproxy_engine_expand(const char *pattern, const char *name);

#endif
