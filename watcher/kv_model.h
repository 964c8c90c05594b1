/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kv_model: the typed view of the Consul KV entries drover-watcher reads
 * (contract: docs/kv-schema.md). Keys are classified by kv_key.h and each
 * value decoded by its schema module (kv_haproxy.h, kv_kube.h,
 * kv_maint.h); the model collects
 *
 *   R haproxy/<cluster>/services/<name>          HAProxy service definitions
 *   R haproxy/<cluster>/force-removal/<backend>  mass-removal overrides
 *   R haproxy/<cluster>/force-kv-loss            ends a KV-loss episode early
 *   R kube/<cluster>/services/<ns>/<svc>/<port>  exporter service ports
 *   R kube/<cluster>/nodes/<node>                exporter nodes
 *   R maintenance/{node,addr,server}/...         droverctl maintenance
 *
 * A bad entry
 * is skipped and counted per prefix (never failing the whole model); keys
 * the watcher does not consume (meta, leader, other clusters) are ignored.
 *
 * A model is filled entry by entry (kv_model_add) and then only read.
 * Strings are owned by the model; kv_model_free releases everything.
 */
#ifndef DROVER_WATCHER_KV_MODEL_H
#define DROVER_WATCHER_KV_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kv_haproxy.h"
#include "kv_kube.h"
#include "kv_maint.h"

/* Which keys this watcher consumes. Strings are borrowed. */
struct kv_model_opts {
    const char *root;            /* "drover/v1/" (ends in '/') */
    const char *haproxy_cluster; /* <cluster> of haproxy/<cluster>/ */
    const char *const *kube_clusters;
    size_t n_kube_clusters;
    /* the proxy host's zone (--zone), NULL: none, so no server is local */
    const char *zone;
};

/* Bad-entry counters by prefix (metric label "prefix"). */
enum kvm_prefix {
    KVM_PREFIX_HAPROXY = 0,
    KVM_PREFIX_KUBE,
    KVM_PREFIX_MAINTENANCE,
    KVM_PREFIX_COUNT,
};
const char *kvm_prefix_name(enum kvm_prefix p);

struct kv_model {
    struct kvm_service *services;
    size_t n_services, cap_services;
    struct kvm_kube_service *kube_services;
    size_t n_kube_services, cap_kube_services;
    struct kvm_node *nodes;
    size_t n_nodes, cap_nodes;
    struct kvm_maint *maint;
    size_t n_maint, cap_maint;
    struct kvm_force *forces;
    size_t n_forces, cap_forces;
    /* haproxy/<cluster>/force-kv-loss while it has not expired (backend
     * NULL): a KV-loss episode ends, and none starts */
    struct kvm_force kv_loss_force;
    bool has_kv_loss_force;
    uint64_t bad[KVM_PREFIX_COUNT];
    uint64_t ignored;      /* keys not consumed (meta, leader, foreign) */
    uint64_t bad_selected; /* selected kube entries refused (also in bad[KVM_PREFIX_KUBE]) */
};

void kv_model_init(struct kv_model *m);
void kv_model_clear(struct kv_model *m);

/*
 * Parse one KV entry (value: len bytes, may be NULL) at wall-clock time now
 * (unix seconds; expired maintenance and force entries are dropped).
 * Returns 1 when the entry was added, 0 when the key is not one the
 * watcher consumes (or an expired entry), -EINVAL for a bad entry (counted
 * in m->bad, message naming the key in err), -ENOMEM.
 */
int kv_model_add(struct kv_model *m, const struct kv_model_opts *o, const char *key,
                 const char *value, size_t len, int64_t now, char *err, size_t errlen);

/*
 * Add to m a copy of prev's (a finished model) record of kube node
 * (cluster, name), instead of decoding a value again: the caller has
 * checked that the key prev decoded that record from holds byte for byte
 * the same value (snapshot.c remembers per entry which record it made, so
 * the key is not parsed again either). Done for kube nodes only, the one
 * kind a fleet holds by the hundreds and re-reads whole on every node
 * change (docs/scaling.md). 1 when copied; 0 when prev holds no such
 * record (decode the value with kv_model_add); -ENOMEM.
 */
int kv_model_reuse_node(struct kv_model *m, const struct kv_model *prev, const char *cluster,
                        const char *name);

/* Sort every array by its key so equal inputs give equal models whatever
 * order Consul listed them in, then expand class selectors: every kube
 * service port a selector of a definition picks becomes a generated backend
 * "<namespace>.<service>.<port>" (one per port, its kube entries of every
 * cluster merged) and, with a dns_name, its route in the selector's
 * frontend. A picked entry whose fields cannot be rendered is refused,
 * logged and counted (bad[KVM_PREFIX_KUBE], bad_selected); nothing of it is
 * generated. Call once after the last kv_model_add. 0 or -ENOMEM. */
int kv_model_finish(struct kv_model *m);

/* Lookups on a finished model (NULL if absent). */
const struct kvm_kube_service *kv_model_kube_service(const struct kv_model *m, const char *cluster,
                                                     const char *ns, const char *svc,
                                                     const char *port);
const struct kvm_force *kv_model_force(const struct kv_model *m, const char *backend);

#endif
