/* SPDX-License-Identifier: Apache-2.0 */
/*
 * haproxy_engine internals, shared by its two files only:
 * haproxy_engine.c (snapshots in, planning, removal guards, lifecycle) and
 * haproxy_engine_apply.c (runtime-API applies, render + check + install +
 * reload). Nothing outside the engine includes this.
 */
#ifndef DROVER_WATCHER_HAPROXY_ENGINE_INTERNAL_H
#define DROVER_WATCHER_HAPROXY_ENGINE_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <uv.h>

#include "backoff.h"
#include "file_writer.h"
#include "haproxy_engine.h"
#include "haproxy_runtime.h"
#include "quiesce.h"

/* One backend's slot placement as served. */
struct backend_state {
    char *name;
    char *service;
    struct slot_assignment a; /* committed (applied or installed) */
    bool have;
    bool held; /* last plan held back by the removal guard */
};

/* A route map file and the text HAProxy serves from it. */
struct service_map {
    char *path;
    char *text;           /* snapshot_map_text() last written */
    bool durable_pending; /* renamed into place, not yet fsynced */
    bool visible_pending; /* its rename on the loop failed: written again with the fsync */
};

/* One certificate file of a service and what HAProxy serves from it. */
struct service_cert {
    char *path;
    bool seen;            /* in the installed structure at the last poll */
    bool known;           /* sent (or refused) content is `hash` */
    bool in_flight;       /* a set/commit exchange is running */
    struct stat st;       /* stat of the file when last read */
    char hash[17];        /* content last sent successfully */
    char refused[17];     /* content last refused (logged once) */
    char pending[17];     /* content of the exchange in flight */
    uint64_t detected_ns; /* when the change in flight was seen */
};

/* A directory holding certificate files, watched for changes (inotify). */
struct cert_dir {
    char *path;
    uv_fs_event_t *h; /* freed by its close callback */
};

/* One HAProxy instance (= one HAProxy service). */
struct service_state {
    struct haproxy_engine *e;
    char *name;
    struct haproxy_runtime *rt;
    json_t *structure; /* structure render of the installed config; NULL = unknown */
    /* Structure render haproxy -c (or the template) refused last, NULL
     * none: while the definition still renders to it, no new check is
     * tried and server changes go to the running config through the
     * runtime API (haproxy_engine.c, plan_runtime_or_reload). */
    json_t *refused;
    bool reload_pending;
    bool file_stale;   /* runtime changes not yet in the file (refreshed without reload) */
    bool checking;     /* a render check is running */
    bool busy;         /* a structural install + reload is in flight */
    bool replan;       /* a snapshot arrived while busy */
    bool retired;      /* removed from KV: config moved aside, frontends disabled */
    bool state_saving; /* a server-state file write is queued */
    bool state_again;  /* and another one was asked for meanwhile */
    bool state_due;    /* applied since the last write: one waits in state_q */
    uint64_t stale_ms; /* uv_now when a file refresh was first put off; 0 none */
    size_t applying;   /* backends of this service whose runtime apply is queued */
    bool apply_again;  /* placements committed meanwhile: apply once more after */
    bool apply_wanted; /* planned for a runtime apply once the agent state file is in place */
    /* A full apply of the committed placements is owed: the last batch
     * of applies left the agents of filled slots off (agent file not in
     * place yet) or failed, so HAProxy may run filled slots without their
     * agent. Carried by the next apply, by the full apply once the agent
     * file is in place, or (after a failure a retry can fix) by the
     * repair timer; cleared by a batch that leaves nothing behind. */
    bool owed;
    /* the batch in flight (all backends of one apply_backends call) */
    bool batch_deferred, batch_failed, batch_retry;
    bool failing;       /* the last batch failed: further failures log at debug */
    uint64_t plan_done; /* the plan a batch applied completely (no full apply follows), 0 none */
    bool apply_forced;  /* resync or reload: the next full apply is never skipped */
    /* supervision (haproxy_supervise.c) */
    uv_process_t *child; /* the HAProxy this watcher started, while it runs */
    uv_timer_t *restart; /* delayed start (NULL until first needed) */
    struct metrics_counter *m_restarts;
    struct metrics_gauge *m_up;
    struct metrics_counter *m_ping_misses;
    int master_pid; /* last seen in show proc; 0 none yet */
    bool up, probed, probing, restart_armed;
    /* liveness (haproxy_supervise.c): pings of the stats socket missed in a
     * row; mute: HAPROXY_PING_MISSES of them, not serving until one answers */
    bool pinging, mute;
    unsigned ping_misses;
    uint64_t started_ms;
    int64_t backoff_ms;
    unsigned quick_deaths; /* deaths within STABLE_MS of their start, in a row */
    /* what the host's status entry reports (haproxy_engine_service_status) */
    char applied_def[17]; /* kv_hash64_hex of the definition applied ("" none yet) */
    int64_t reloads;      /* HAProxy's reload counter after our last verified reload */
    char *error;          /* latest render/check/reload failure, NULL after a success */
    struct haproxy_error_counters errors; /* last `show stat` read (haproxy_engine_errors.c) */
    bool have_errors;                     /* errors holds a read of the running worker */
    bool errors_reading;                  /* a `show stat` exchange is queued */
    struct service_map *maps;             /* route maps of selected frontends */
    size_t n_maps;
    struct service_cert *certs; /* certificates of the installed config */
    size_t n_certs;
};

struct haproxy_engine {
    uv_loop_t *loop;
    struct haproxy_engine_opts o;
    struct template_set *templates;
    struct file_writer *writer; /* fsyncs off the loop (snapshot, agent state, maps) */
    /* the agent state file renamed into place (no fsync) before runtime
     * applies: its own queue, never behind the writer's fsyncs */
    struct file_writer *agent_writer;
    int lock_fd; /* the config dir's lock (HAPROXY_ENGINE_LOCK_FILE), -1 when none */
    struct quiesce_timer *runtime_q, *struct_q;
    /* server-state file writes between reloads (haproxy_engine_apply.c) */
    struct quiesce_timer *state_q;
    uv_timer_t expiry;      /* next maintenance / force-removal expiry */
    uv_timer_t resync;      /* periodic re-apply against HAProxy's live state */
    uv_timer_t probe;       /* show proc on every HAProxy (haproxy_supervise.c) */
    uv_timer_t cert_poll;   /* certificate files (haproxy_engine_certs.c) */
    uv_timer_t cert_kick;   /* a certificate directory changed: check soon */
    uv_timer_t errors_poll; /* show stat on every HAProxy (haproxy_engine_errors.c) */
    bool cert_event;        /* checking after a directory event: read every file */
    struct cert_dir *cert_dirs;
    size_t n_cert_dirs;
    bool all_up;           /* every probed HAProxy is up */
    struct snapshot *snap; /* newest snapshot (served as far as possible) */
    struct backend_state *bes;
    size_t n_bes;
    struct service_state **svcs; /* individually allocated: callbacks hold pointers */
    size_t n_svcs;
    bool stopping;
    bool applied;          /* something was applied (or installed) once */
    bool snap_from_feed;   /* e->snap comes from a complete Consul read (not the file) */
    bool svc_removal_held; /* the latest service removal is held by the guard */
    /* KV-loss episode: a complete read with no service at all after some
     * were served; until every service served then is defined again (or
     * the missing ones are forced), no service is retired */
    bool kv_loss;
    bool crt_lists_swept; /* engine_sweep_crt_lists and _maps ran (once per start) */
    int64_t kv_loss_since_unix;
    size_t maint_held;   /* maintenance entries kept through the episode */
    bool snapshot_dirty; /* saved in the structural window, off the apply path */
    size_t applies_in_flight;
    /* agent state file writes queued and not yet done: while any is, the
     * file may not show the committed placements, so applies leave the
     * agents of filled slots off (engine_agent_file_current) */
    size_t agent_writes_pending;
    uv_timer_t repair; /* retries a failed apply (haproxy_engine_apply.c) */
    bool repair_armed;
    struct backoff repair_backoff;
    uint64_t plans, installs, refreshes;
    uint64_t planned_hash;  /* inputs_hash of the snapshot planned last (debug log) */
    uint64_t route_updates; /* route map updates applied through the runtime API */
    uint64_t cert_swaps, cert_failures;
    /* metrics */
    struct metrics_counter *m_snapshots, *m_reloads, *m_reload_failures, *m_render_failures,
        *m_applies, *m_apply_failures, *m_apply_retries, *m_held_total, *m_bad_total,
        *m_svc_removed, *m_svc_removals_held_total, *m_state_saves, *m_state_save_failures,
        *m_route_updates, *m_cert_swaps, *m_cert_failures, *m_cert_checks;
    /* HAProxy exchanges that timed out while the watcher stalled, given a
     * second timeout (haproxy_runtime.h); shared by every service's client */
    struct metrics_counter *m_stall_retries;
    struct metrics_histogram *m_reload_seconds;
    struct metrics_gauge *m_held, *m_svc_removals_held, *m_bad[KVM_PREFIX_COUNT], *m_services,
        *m_servers, *m_kv_loss, *m_maint_held, *m_refused, *m_kv_loss_forced;
};

/* haproxy_engine.c */
struct service_state *engine_service_state(const struct haproxy_engine *e, const char *name);
/* snapshot_slots_fn over the committed placements (arg: the engine). */
const struct slot_assignment *engine_committed_slots(void *arg, const char *backend);
/* Structure (or full, structure_only=false) template data of a service
 * with the committed slots; *out is a new reference. */
int engine_service_json(struct haproxy_engine *e, const struct snapshot_service *svc,
                        bool structure_only, json_t **out);
/* The agent-checker state file from the committed slots, renamed into
 * place off the loop, then then(e, status). 0 (then will run), 1 (nothing
 * to write: KV-loss episode) or negative errno (logged); then is not
 * called unless 0. */
int engine_write_agent_state(struct haproxy_engine *e, file_writer_done_fn then);
/* Log a failed agent state write (status: negative errno). */
void engine_agent_state_failed(struct haproxy_engine *e, int status);
/* Every engine_write_agent_state callback starts here: the write is done
 * (status 0 or its failure, logged); once no newer one is queued the
 * applies that waited for the file go out. Whether the caller goes on
 * (written, engine not stopping). */
bool engine_agent_write_done(struct haproxy_engine *e, int status);
void engine_save_snapshot(struct haproxy_engine *e);
/* Something was applied: tell the owner (readiness, status). */
void engine_mark_applied(struct haproxy_engine *e);

/* haproxy_supervise.c */
/* Per-service metrics (called once the service exists). */
void engine_supervise_service(struct haproxy_engine *e, struct service_state *s);
/* Probe timer (engine creation) and handles closed (engine stop). */
void engine_supervise_init(struct haproxy_engine *e);
void engine_supervise_stop(struct haproxy_engine *e);

/* haproxy_engine_apply.c */
/* Apply the committed placements of svc's backends through the runtime API. */
void engine_apply_service(struct haproxy_engine *e, struct service_state *s,
                          const struct snapshot_service *svc);
/* While the agent state file of a plan is being written, apply what needs
 * no agent file now (haproxy_runtime_apply_agents_later) for every
 * service planned for a runtime apply (apply_wanted) with none in flight;
 * the agents of slots being filled are enabled by the full apply that
 * follows once the file is in place, and a plan that fills no slot needs
 * no full apply. Any apply made while the file is not current is such an
 * apply (engine_apply_service), so no follow-up, resync or reload apply
 * enables an agent before the file shows its slot. */
void engine_apply_early(struct haproxy_engine *e);
/* Resync timer: re-apply every placement in force. */
void engine_on_resync(uv_timer_t *t);
/* Re-apply s's placements in force against HAProxy's live state, never
 * skipped (resync; forget_applied: its HAProxy was restarted, so what this
 * client applied before says nothing about what runs now). */
void engine_resync_service(struct haproxy_engine *e, struct service_state *s, bool forget_applied);
/* The agent state file shows the committed placements (no write queued
 * that is not done yet). */
bool engine_agent_file_current(const struct haproxy_engine *e);
/* The repair timer (engine creation) and its handle closed (engine stop). */
void engine_repair_init(struct haproxy_engine *e);
void engine_repair_stop(struct haproxy_engine *e);
/* Structural quiescence fired: save the snapshot, render + install what
 * is pending. */
void engine_on_struct_due(void *arg);
/* Make e->state_q. 0 or -ENOMEM. */
int engine_state_timer_new(struct haproxy_engine *e);
/* The runtime window's leading-edge test (quiesce_timer_set_leading): an
 * apply is in flight, so a change now waits for the window and goes out
 * with what else arrives meanwhile. */
bool engine_runtime_busy(void *arg);
/* state_q fired: write the server-state file of every service applied
 * since its last write. */
void engine_on_state_due(void *arg);

/* The status of s changed (haproxy_engine_opts.on_status): it applied
 * svc (NULL: the one of the snapshot in force), or `what` failed. */
void engine_service_applied(struct haproxy_engine *e, struct service_state *s,
                            const struct snapshot_service *svc);
void engine_service_failed(struct haproxy_engine *e, struct service_state *s, const char *what,
                           const char *msg);
/* The definition of s rendered to structure (reference taken over) and
 * `what` refused it with msg: logged and counted when the refusal is new
 * (a structure or message not refused before), kept until a structure
 * passes or the definition renders to the running one again. */
void engine_service_refused(struct haproxy_engine *e, struct service_state *s, json_t *structure,
                            const char *what, const char *msg);
/* s runs a definition that passed again: the refusal is over. */
void engine_service_accepted(struct haproxy_engine *e, struct service_state *s, const char *why);
void engine_status_changed(struct haproxy_engine *e);

/* haproxy_engine_maps.c */
/* Write the route maps of svc whose routes changed and, when runtime (no
 * reload coming), send the difference through the runtime API. */
void engine_sync_maps(struct haproxy_engine *e, struct service_state *s,
                      const struct snapshot_service *svc, bool runtime);
/* Make the maps written without fsync durable (off the loop): each map
 * changed since, once; the file is written again only when its rename on
 * the loop failed, else only fsynced. */
void engine_persist_maps(struct service_state *s);
/* Once s's config rendered from structure is installed (HAProxy reloaded
 * with it, or starts with it): remove the route maps of frontends it no
 * longer names, unless s's newest definition has them again. Never
 * before: a HAProxy (re)started from the previous config reads them. */
void engine_prune_maps(struct haproxy_engine *e, struct service_state *s, const json_t *structure);
void engine_free_maps(struct service_state *s);
/* A retired service's route maps removed (render_files_remove_maps, made
 * durable through the engine's writer), at the moment its crt-lists go;
 * the maps it sent are forgotten, so a service of the same name that
 * comes back writes them anew. */
void engine_remove_maps(struct haproxy_engine *e, struct service_state *s);
/* Once, at the engine's first plan, next to engine_sweep_crt_lists: the
 * route maps of services with no config that the engine does not serve. */
void engine_sweep_maps(struct haproxy_engine *e);

/* haproxy_engine_certs.c */
/* Poll timer (engine creation) and its handle closed (engine stop). */
void engine_certs_init(struct haproxy_engine *e);
/* haproxy_engine_errors.c: the error counters' timer (engine creation)
 * and its handle closed (engine stop). */
void engine_errors_init(struct haproxy_engine *e);
void engine_errors_stop(struct haproxy_engine *e);
void engine_certs_stop(struct haproxy_engine *e);
/* Send every changed certificate of the installed configs. */
void engine_check_certs(struct haproxy_engine *e);
void engine_free_certs(struct service_state *s);
/* A structural change of s to structure st (borrowed) is coming: check
 * the certificate and CA files of svc's definition and write its
 * crt-lists (tls_files.h). On failure the structure is refused
 * (engine_service_refused, reload_pending cleared; retried by the
 * certificate poll once the files are good) and a negative errno is
 * returned. */
int engine_prepare_tls(struct haproxy_engine *e, struct service_state *s,
                       const struct snapshot_service *svc, json_t *st);
/* A retired service's crt-lists directory removed: only once its
 * <service>.cfg is durably moved aside (render_retire), so no config
 * HAProxy can load names the lists. A failure is logged; the start sweep
 * below removes it later. */
void engine_remove_crt_lists(struct haproxy_engine *e, const struct service_state *s);
/* Once, at the engine's first plan: the crt-list directories of services
 * that have no <service>.cfg and that the engine does not serve (a watcher
 * stopped between retiring a service and removing its lists). */
void engine_sweep_crt_lists(struct haproxy_engine *e);
/* tls_files_in_use_fn: a service the engine serves (installed, or about
 * to be; arg is the engine) keeps its crt-lists and route maps whether
 * its config is installed yet or not. */
bool engine_service_served(void *arg, const char *service);
/* The runtime commands taking map path from text old to new. 0, -ENOMEM. */
int engine_map_commands(const char *path, const char *old, const char *new, char ***cmds,
                        size_t *n);

#endif
