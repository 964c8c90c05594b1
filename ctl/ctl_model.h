/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ctl_model: droverctl's read-only view of the KV the watcher reads
 * (docs/kv-schema.md): kube nodes and service ports, the backends of the
 * HAProxy service definitions, and the maintenance entries. From it
 * droverctl
 *
 *   - resolves a TARGET (node/<cluster>/<node>, a bare kube node name,
 *     addr/<ip> or a bare IP, <backend>/<server> or
 *     server/<backend>/<server>) to its maintenance key, refusing targets
 *     the KV does not know;
 *   - enumerates a backend's servers the way the watcher builds them (one
 *     per eligible node, at its first address, and kube service port, plus
 *     static servers) and decides which are out of service (drain, maint or
 *     weight 0, precedence server > addr > node, expired entries ignored);
 *   - computes, for a proposed change of one maintenance entry, the share
 *     of each backend's servers out of service before and after.
 *
 * Entries are classified by kv_key.h and decoded by the schema modules
 * (kv_kube.h, kv_haproxy.h, kv_maint.h) the watcher uses, and servers are
 * enumerated and maintenance resolved by kv_servers.h / kv_maint.h, so
 * droverctl sees what the watcher sees; a bad entry is skipped with a
 * message (never failing the whole model). A model is filled with
 * ctl_model_add and then only read; it owns all its strings.
 */
#ifndef DROVER_CTL_MODEL_H
#define DROVER_CTL_MODEL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kv_haproxy.h"
#include "kv_kube.h"
#include "kv_maint.h"

/* Numbered as kvm_maint_kind and kvm_admin (kv_maint.h). */
enum ctl_target_kind {
    CTL_TARGET_NODE = 0, /* a = cluster, b = node */
    CTL_TARGET_ADDR,     /* a = canonical IP text, b = NULL */
    CTL_TARGET_SERVER,   /* a = backend, b = server */
};

enum ctl_state {
    CTL_STATE_READY = 0,
    CTL_STATE_DRAIN,
    CTL_STATE_MAINT,
};

/* One backend of an HAProxy service definition (decoded by kv_haproxy.h,
 * exactly as the watcher does). */
struct ctl_backend {
    const char *service;           /* haproxy service name */
    const char *name;              /* def->name */
    const struct kvm_backend *def; /* owned by the model's services */
};

/* A maintenance entry as stored (value kept so before/after go into the
 * audit trail verbatim). */
struct ctl_maint {
    char *id; /* key below maintenance/, e.g. "node/prod-a/node-a" */
    enum ctl_target_kind kind;
    char *a, *b;
    enum ctl_state state;
    int weight; /* -1 = unset */
    char *reason, *author, *created, *expires;
    int64_t expires_unix; /* 0 = never */
    uint64_t modify_index;
    json_t *value;
};

struct ctl_model {
    int64_t now; /* unix seconds: expiry reference */
    struct kvm_node *nodes;
    size_t n_nodes;
    struct kvm_kube_service *ports;
    size_t n_ports;
    struct kvm_service **services; /* each allocated on its own: backends point into them */
    size_t n_services;
    struct ctl_backend *backends;
    size_t n_backends;
    struct ctl_maint *maint;
    size_t n_maint;
    size_t bad; /* entries skipped */
};

/* A resolved target: its kind, parts and maintenance id. */
struct ctl_target {
    enum ctl_target_kind kind;
    char a[256], b[256];
    char id[600]; /* "node/<c>/<n>", "addr/<ip>", "server/<b>/<s>" */
};

void ctl_model_init(struct ctl_model *m, int64_t now);
void ctl_model_clear(struct ctl_model *m);

/*
 * Add one KV entry (key with the root, value of len bytes, may be NULL).
 * haproxy_cluster: NULL or "" = backends of every haproxy/<cluster>/.
 * 1 = added, 0 = key not used by droverctl (or a flat node entry whose
 * node is in its shard too, kv_key.h), -EINVAL = bad entry (counted,
 * message naming the key in err), -ENOMEM.
 */
int ctl_model_add(struct ctl_model *m, const char *root, const char *haproxy_cluster,
                  const char *key, const char *value, size_t len, uint64_t modify_index, char *err,
                  size_t errlen);

/* Parse a maintenance value (for the entry at id). 0 or -EINVAL. The
 * entry owns its strings; free with ctl_maint_clear. */
int ctl_maint_parse(const char *id, const char *value, size_t len, struct ctl_maint *out, char *err,
                    size_t errlen);
void ctl_maint_clear(struct ctl_maint *e);
const char *ctl_state_name(enum ctl_state s);
bool ctl_maint_expired(const struct ctl_maint *e, int64_t now);

/*
 * Resolve TARGET text. clusters (n) limit where a bare kube node name is
 * looked up (n == 0: every cluster in the model). 0, or -ENOENT (unknown
 * target) / -EINVAL (malformed) / -EEXIST (ambiguous node name) with a
 * message saying what was refused and why.
 */
int ctl_model_resolve(const struct ctl_model *m, const char *text, char *const *clusters, size_t n,
                      struct ctl_target *out, char *err, size_t errlen);

/* Parse a maintenance id ("node/c/n", "addr/ip", "server/b/s"), no KV
 * lookups. 0 or -EINVAL. */
int ctl_target_from_id(const char *id, struct ctl_target *out);

const struct ctl_maint *ctl_model_maint(const struct ctl_model *m, const char *id);

/* A proposed change: the entry with this id replaced by entry (NULL =
 * removed). */
struct ctl_override {
    const char *id;
    const struct ctl_maint *entry;
};

struct ctl_share {
    const char *backend; /* borrowed from the model */
    size_t total, out_before, out_after;
};

/*
 * Count servers and out-of-service servers of backend be without and with
 * ov (ov may be NULL: both counts are the current state).
 */
void ctl_model_backend_share(const struct ctl_model *m, const struct ctl_backend *be,
                             const struct ctl_override *ov, struct ctl_share *out);

/*
 * Would ov leave any backend with more than max_share of its servers out
 * of service while increasing the number out? Returns 1 and fills *worst
 * with the most affected such backend, or 0.
 */
int ctl_model_check_share(const struct ctl_model *m, const struct ctl_override *ov,
                          double max_share, struct ctl_share *worst);

/* Call fn for every server (backend, server description) target t
 * affects. Descriptions: "static-1 10.1.2.3:8080", "node-a 10.0.0.1:30080",
 * or the slot name ("slot3") for a server/<backend>/slot<k> entry. */
typedef void (*ctl_affect_fn)(void *arg, const char *backend, const char *server);
void ctl_model_affected(const struct ctl_model *m, const struct ctl_target *t, ctl_affect_fn fn,
                        void *arg);

#endif
