/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kv_layout: where exporter records live in Consul KV and what their
 * values are (docs/kv-schema.md is the contract), plus the diff between
 * the desired entries and what Consul holds.
 *
 * drover layout (always), under root R (default "drover/v1/"):
 *   R kube/<cluster>/services/<namespace>/<service>/<port>  one per port
 *   R kube/<cluster>/node-shards/<shard>/<node>              one per node
 *   R kube/<cluster>/node-shards/<shard>/, .../nodes/       folder keys
 *   R kube/<cluster>/meta                                    summary
 * kube-service-exporter layout (--kse-compat), under prefix P:
 *   P/services/<id>/clusters/<cluster>   id = [<cluster>-]<ns>-<svc>-<port>
 *   P/nodes/<cluster>                    [{"Name","Address"}...] eligible only
 *
 * Values are compact JSON with keys sorted at every depth, so equal
 * content is equal bytes and a resync that changes nothing diffs to zero
 * operations. The diff only ever touches keys this exporter owns: drover
 * keys under R kube/<cluster>/services/, .../node-shards/ and .../nodes/
 * (the flat node layout of older exporters, deleted as its nodes move to
 * their shards), and the KSE keys
 * of this cluster; `meta`, `leader` and any other cluster's keys are never
 * set or deleted by it.
 */
#ifndef DROVER_EXPORTER_KV_LAYOUT_H
#define DROVER_EXPORTER_KV_LAYOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "consul.h"
#include "kube_objects.h"
#include "kv_key.h"
#include "kv_kube.h"

#define KV_LAYOUT_DEFAULT_ROOT       KV_DEFAULT_ROOT
#define KV_LAYOUT_DEFAULT_KSE_PREFIX "kube-service-exporter"
#define KV_LAYOUT_SCHEMA_VERSION     KV_SCHEMA_VERSION

struct kv_layout {
    char *root; /* normalised to end in '/' ("" allowed: keys at the top) */
    char *cluster;
    char *own;        /* root "kube/" cluster "/" */
    char *kse_prefix; /* NULL unless KSE compat; no trailing '/' */
};

/* cluster: 1-63 characters of [A-Za-z0-9._-] (it becomes a key segment).
 * kse_prefix NULL disables the KSE layout. -EINVAL with a log line on a
 * bad cluster or prefix. */
int kv_layout_init(struct kv_layout *l, const char *root, const char *cluster,
                   const char *kse_prefix);
void kv_layout_clear(struct kv_layout *l);

/* True for keys the diff may set or delete (see above). */
bool kv_layout_owns(const struct kv_layout *l, const char *key);

struct kv_entry {
    char *key;
    char *value;
    uint64_t modify_index; /* from Consul for current entries; 0 for desired */
};

/* A set of entries; kv_map_sort() orders by key and rejects duplicates. */
struct kv_map {
    struct kv_entry *v;
    size_t n, cap;
};

void kv_map_init(struct kv_map *m);
void kv_map_clear(struct kv_map *m);
/* Copies key and value. */
int kv_map_put(struct kv_map *m, const char *key, const char *value, uint64_t modify_index);
/* Takes ownership of key and value (freed on failure too). */
int kv_map_put_take(struct kv_map *m, char *key, char *value, uint64_t modify_index);
/* A "keep" entry in a desired map (value NULL): the diff neither sets nor
 * deletes this key, whatever Consul holds. Used to keep the last good
 * entries of a Service whose new version is invalid. Copies key. */
int kv_map_put_keep(struct kv_map *m, const char *key);
/* Sort by key; -EEXIST (the map stays sorted) if a key appears twice. */
int kv_map_sort(struct kv_map *m);
/* On a sorted map. */
const struct kv_entry *kv_map_find(const struct kv_map *m, const char *key);

/* Add the entries of one Service port record: the drover key and, with
 * KSE compat, the KSE key. -EINVAL (nothing added, nothing logged) if a
 * name cannot be a key segment. */
int kv_layout_add_service(const struct kv_layout *l, struct kv_map *desired,
                          const struct export_record *r);

/* Add one node entry per record (eligible = effective_eligible) in its
 * shard, the folder keys of every node shard and of the flat nodes/, and, with
 * KSE compat, the cluster's KSE node array (effectively eligible nodes
 * only, one element per address, sorted by Name then Address). Call once
 * with every node of a complete view. */
int kv_layout_add_nodes(const struct kv_layout *l, struct kv_map *desired,
                        const struct node_record *nodes, size_t n);

/* Key names (caller frees). */
char *kv_layout_service_key(const struct kv_layout *l, const struct export_record *r);
char *kv_layout_node_key(const struct kv_layout *l, const char *node);
char *kv_layout_meta_key(const struct kv_layout *l);
char *kv_layout_leader_key(const struct kv_layout *l);
/* NULL without KSE compat. */
char *kv_layout_kse_service_key(const struct kv_layout *l, const struct export_record *r);
char *kv_layout_kse_nodes_key(const struct kv_layout *l);

/* Values (caller frees). */
char *kv_layout_service_value(const struct export_record *r);
char *kv_layout_kse_service_value(const struct export_record *r);
char *kv_layout_node_value(const struct kv_layout *l, const struct node_record *n);

struct kv_meta {
    const char *exporter_version;
    int64_t last_full_sync_unix; /* seconds */
    size_t services;             /* exported Services */
    size_t service_ports;        /* service entries (one per port) */
    size_t nodes;
    size_t eligible_nodes;
    size_t skipped_services; /* invalid annotations / objects */
};
char *kv_layout_meta_value(const struct kv_layout *l, const struct kv_meta *m);
/* The meta write policy (docs/kv-schema.md): write when the round writes
 * anything else (data_ops > 0), or when the stored meta (current, NULL if
 * absent) is missing, unreadable, or differs in anything but the sync
 * time. So a no-change resync writes nothing at all. */
bool kv_layout_meta_needs_write(const struct kv_layout *l, const char *current,
                                const struct kv_meta *m, size_t data_ops);

enum kv_op_kind {
    KV_OP_SET,
    KV_OP_DELETE,
};

struct kv_op {
    enum kv_op_kind kind;
    const char *key;       /* borrowed from the desired/current maps */
    const char *value;     /* SET only */
    uint64_t modify_index; /* DELETE: the current entry's index (for cas) */
};

struct kv_ops {
    struct kv_op *v;
    size_t n, cap;
    size_t sets, deletes;
    size_t conflicts; /* keys claimed by several records: neither set nor deleted */
};

void kv_ops_clear(struct kv_ops *ops);

/* Append a recursive read (GET /v1/kv/PREFIX?recurse) to m: keys, values
 * (a key without value counts as ""), ModifyIndex. -ENOMEM. */
int kv_map_add_consul(struct kv_map *m, const struct consul_kv_list *list);

/* The ops as /v1/txn operations, check-and-set against what was read: a
 * SET becomes CAS with the entry's ModifyIndex (0 = create only), a
 * DELETE becomes DELETE_CAS. A 409 then means someone else wrote in
 * between: re-read and diff again. *out (n = ops->n entries) borrows the
 * strings of the maps; free only the array. -ENOMEM. */
int kv_ops_to_txn(const struct kv_ops *ops, struct consul_txn_op **out);

/*
 * desired: every entry this exporter wants (all owned keys); current: a
 * recursive read of the root and/or KSE prefix (any keys: foreign ones are
 * ignored). Both are sorted here. Produces SETs for missing or different
 * values, then, only if complete is true, DELETEs for owned current keys
 * that are not desired. Ops point into the maps: keep them alive.
 * A key that several desired entries claim (KSE ids can collide) is
 * logged, counted in ops->conflicts, and neither set nor deleted; desired
 * is compacted accordingly. Keep entries (kv_map_put_keep) are neither
 * set nor deleted either; a keep entry next to a real one for the same
 * key is not a conflict: the real one wins. -EINVAL (logged) if desired holds a key this
 * exporter does not own; nothing is produced then.
 */
int kv_layout_diff(const struct kv_layout *l, struct kv_map *desired, struct kv_map *current,
                   bool complete, struct kv_ops *ops);

#endif
