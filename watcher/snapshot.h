/* SPDX-License-Identifier: Apache-2.0 */
/*
 * snapshot: one immutable view of everything drover-watcher drives on the
 * HAProxy side, built from the raw KV entries of its watched prefixes:
 * HAProxy services x eligible kube nodes (+ static servers) x maintenance.
 *
 * It owns
 *  - the raw inputs (key, value) it was built from, so the same snapshot can
 *    be persisted (protobuf, proto/snapshot.proto) and rebuilt identically
 *    after a restart while Consul is down;
 *  - the desired servers of every backend (address, port, weight, the node
 *    they run on), which the slot module turns into slot assignments;
 *  - the template data model of one HAProxy service (docs/templates.md),
 *    for a given slot assignment, and its "structure" variant in which every
 *    slot is free: two assignments whose structure renders are equal differ
 *    only in what the runtime API can change (no reload needed);
 *  - the agent-checker state file (docs/agent-checker.md) for a given slot
 *    assignment: free slots maint, maintenance entries resolved per server
 *    with precedence server > addr > node.
 *
 * A snapshot is never modified after snapshot_build(); share it read-only.
 */
#ifndef DROVER_WATCHER_SNAPSHOT_H
#define DROVER_WATCHER_SNAPSHOT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kv_model.h"
#include "slots.h"

/* One raw KV input (value NUL-terminated, len without the NUL). */
struct snapshot_entry {
    char *key;
    char *value;
    size_t len;
};

/* What a build learnt about one entry as stored (after a bad value fell
 * back to its last good one). */
struct snapshot_entry_memo {
    uint64_t hash;            /* entry_hash (snapshot.c) */
    const char *node_cluster; /* the kube node record decoded from it */
    const char *node_name;    /* (strings of model.nodes), NULL: none */
};

struct snapshot_server {
    char *id;   /* "addr:port" (IPv6 as "[addr]:port"): identity for slots */
    char *addr; /* canonical IP */
    uint16_t port;
    int weight;
    const char *node;         /* kube node name, NULL for a static server */
    const char *node_cluster; /* its cluster */
    const char *static_name;  /* static server name, NULL for kube */
    bool local;               /* its node is in the proxy host's zone (kv_model_opts.zone) */
};

struct snapshot_backend {
    const struct kvm_backend *def;
    const struct kvm_service *service;
    struct snapshot_server *servers; /* sorted by id */
    size_t n_servers;
    size_t slots;             /* configured slot count (>= 1) */
    double max_removal_share; /* < 0: the daemon's default applies */
    bool force_removal;       /* an unexpired force-removal entry exists */
    /* health check after kube defaults were applied */
    enum kvm_check_type check_type;
    uint16_t check_port;
    const char *check_path;
    bool send_proxy;
};

struct snapshot_service {
    const struct kvm_service *def;
    struct snapshot_backend *backends;
    size_t n_backends;
};

struct snapshot {
    struct kv_model model;
    struct snapshot_service *services;
    size_t n_services;
    struct snapshot_entry *entries; /* sorted by key */
    size_t n_entries;
    uint64_t inputs_hash; /* sum of each entry's FNV-1a (entry_hash in snapshot.c) */
    /* per entry, what the next build takes over when the entry did not
     * change: [i] of entries[i] (snapshot.c) */
    struct snapshot_entry_memo *memo;
    int64_t built_unix;
    uint64_t skipped_services; /* services refused at snapshot level (backend name clash) */
};

/*
 * Build a snapshot from entries[0..n) (taken over: freed with the snapshot,
 * also on failure). Bad entries are logged and counted in snap->model.bad;
 * when prev (may be NULL) holds a good value for the same key, that value
 * is used instead (and stored in the new snapshot's entries), so a typo in
 * a live service definition keeps the service as it was rather than
 * removing it. now: unix seconds (maintenance expiry). 0 or -ENOMEM.
 */
int snapshot_build(const struct kv_model_opts *o, struct snapshot_entry *entries, size_t n,
                   int64_t now, const struct snapshot *prev, struct snapshot **out);
void snapshot_free(struct snapshot *s);
void snapshot_entries_free(struct snapshot_entry *e, size_t n);

/* Lookups (NULL if absent). */
const struct snapshot_service *snapshot_service(const struct snapshot *s, const char *name);
const struct snapshot_backend *snapshot_backend(const struct snapshot *s, const char *name);

/* Returns the slot assignment (slots.h; keys are snapshot_server ids) of a
 * backend, or NULL: then servers fill slots in id order (what an offline
 * render uses). */
typedef const struct slot_assignment *(*snapshot_slots_fn)(void *arg, const char *backend);

/* The desired servers of b as slots_assign input: *out is a malloc'd array
 * of b->n_servers whose strings are borrowed from the snapshot (free only
 * the array). 0 or -ENOMEM. */
int snapshot_desired(const struct snapshot_backend *b, struct slot_server **out);
/* Place desired (from snapshot_desired(b)) into nslots slots from prev:
 * slots_assign, or slots_assign_zoned for a zone-aware backend. */
int snapshot_assign(const struct snapshot_backend *b, const struct slot_assignment *prev,
                    const struct slot_server *desired, size_t nslots, struct slot_assignment *out,
                    size_t *need_slots);

/* What the template data needs besides KV. Strings borrowed. */
struct snapshot_render_opts {
    const char *haproxy_cluster;
    const char *stats_socket;      /* this service's HAProxy stats socket */
    const char *server_state_file; /* this service's server-state file */
    int64_t maxconn;               /* global maxconn */
    const char *agent_addr;        /* agent-checker address */
    uint16_t agent_port;
    int64_t agent_inter_ms;
    int64_t timeout_connect_ms, timeout_client_ms, timeout_server_ms; /* defaults */
    const char *map_dir; /* route maps and crt-lists live here (--config-dir); NULL: none */
};

/* The route map of frontend f of definition d (a frontend some class
 * selector routes into): "<map_dir>/<service>.<frontend>.map", malloc'd;
 * NULL when f has none (or no memory). */
char *snapshot_map_path(const char *map_dir, const struct kvm_service *d,
                        const struct kvm_frontend *f);
/* The map file text of f: one "host backend" line per generated route,
 * sorted by host. malloc'd, NULL without memory. */
char *snapshot_map_text(const struct kvm_frontend *f);

/* The directory of the crt-lists of service `service`:
 * "<dir>/<service>.crt-lists", malloc'd; NULL when dir is NULL. */
char *snapshot_crt_list_dir(const char *dir, const char *service);
/* The crt-list of TLS frontend f of definition d:
 * "<dir>/<service>.crt-lists/<frontend>.<hash>.crtlist", where hash is
 * kv_hash64_hex of its text (snapshot_crt_list_text): a changed list is a
 * new file, so the config naming it changes (a reload) and the running
 * config's own list stays for a restart while `haproxy -c` checks the new
 * one. malloc'd; NULL when f does not terminate TLS or dir is NULL (or no
 * memory). */
char *snapshot_crt_list_path(const char *dir, const struct kvm_service *d,
                             const struct kvm_frontend *f);
/* The crt-list text of f: one "FILE [alpn X] SNI..." line per
 * certificate, in definition order (the first is the default
 * certificate). malloc'd, NULL without memory. */
char *snapshot_crt_list_text(const struct kvm_frontend *f);

/*
 * Template data model (docs/templates.md) of service svc. structure_only:
 * every slot rendered free (see top). *out is a new reference.
 * 0, -ENOMEM, or -ENOSPC when an assignment has fewer slots than the
 * backend has servers (the caller must grow slots first).
 */
int snapshot_service_json(const struct snapshot *s, const struct snapshot_service *svc,
                          const struct snapshot_render_opts *ro, snapshot_slots_fn slots,
                          void *slots_arg, bool structure_only, json_t **out);

/*
 * Agent-checker state file (version 1) for every backend of every service:
 * servers["<backend>/slot<n>"] = {admin, health, weight?,
 * reason?, author?, expires?}; free slots are maint. *out is malloc'd
 * compact JSON text. 0 or -ENOMEM.
 */
int snapshot_agent_state(const struct snapshot *s, snapshot_slots_fn slots, void *slots_arg,
                         int64_t now, char **out);

/* The admin state the agent state gives server (a slot name) of backend:
 * enum kvm_admin (a free slot is maint), or -ENOENT (no such backend or
 * slot). */
int snapshot_slot_admin(const struct snapshot *s, snapshot_slots_fn slots, void *slots_arg,
                        const char *backend, const char *server);

/* Resolve the maintenance entry applying to one server (server > addr >
 * node), NULL if none. server_name: slot or static name. */
const struct kvm_maint *snapshot_maint_for(const struct snapshot *s, const char *backend,
                                           const char *server_name,
                                           const struct snapshot_server *srv);

/* ---- persistence (snapshot_store.c, proto/snapshot.proto) ---- */

/* One backend's slot placement as loaded from a snapshot file. */
struct snapshot_saved_slots {
    char *backend;
    struct slot_assignment a;
};
void snapshot_saved_slots_free(struct snapshot_saved_slots *v, size_t n);

/*
 * Write s's raw inputs and the slot placement of each of its backends
 * (slots(arg, backend); NULL = none saved) to path, atomically (protobuf,
 * WatcherSnapshot). 0 or negative errno (message in err).
 */
int snapshot_save(const struct snapshot *s, const struct kv_model_opts *o, snapshot_slots_fn slots,
                  void *slots_arg, const char *path, int64_t now, char *err, size_t errlen);

/* What snapshot_save writes, as a malloc'd buffer (*out, caller frees).
 * 0 or -ENOMEM. */
int snapshot_encode(const struct snapshot *s, const struct kv_model_opts *o,
                    snapshot_slots_fn slots, void *slots_arg, int64_t now, uint8_t **out,
                    size_t *out_len);

/*
 * Read path and rebuild the snapshot from its inputs with the current
 * options o (keys they do not select are ignored again). *slots and *n_slots:
 * the saved placements (caller frees with snapshot_saved_slots_free).
 * 0; -ENOENT (no file); -EBADMSG (not a snapshot: err says why); -ENOMEM.
 */
int snapshot_load(const char *path, const struct kv_model_opts *o, int64_t now,
                  struct snapshot **out, struct snapshot_saved_slots **slots, size_t *n_slots,
                  char *err, size_t errlen);

/* Format milliseconds as an HAProxy duration ("2s", "250ms"). */
void snapshot_format_ms(int64_t ms, char *buf, size_t len);

#endif
