/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kv_key: the key codec of the KV schema (docs/kv-schema.md). Every key
 * lives under a root R (default "drover/v1/"); below it one prefix per
 * schema module:
 *
 *   R kube/<cluster>/services/<ns>/<svc>/<port>   kv_kube.h
 *   R kube/<cluster>/node-shards/<shard>/<node>   kv_kube.h (the flat
 *   R kube/<cluster>/nodes/<node>                 layout is still read)
 *   R kube/<cluster>/{meta,leader}                kv_kube.h (meta) / exporter leader
 *   R haproxy/<cluster>/services/<name>           kv_haproxy.h
 *   R haproxy/<cluster>/force-removal/<backend>   kv_haproxy.h
 *   R maintenance/{node,addr,server}/...          kv_maint.h
 *   R director/<cluster>/...                      kv_director.h
 *   R audit/<timestamp>-<id>                      kv_audit.h
 *   R status/<host>/<role>                        kv_status.h
 *
 * kv_key_parse() classifies a full key and splits its segments, so every
 * reader decides "is this key mine, and which record is it" the same way.
 */
#ifndef DROVER_KV_KEY_H
#define DROVER_KV_KEY_H

#include <stdbool.h>
#include <stddef.h>

#define KV_DEFAULT_ROOT     "drover/v1/"
#define KV_KEY_SEG_MAX      255 /* bytes per key segment */
#define KV_CLUSTER_NAME_MAX 63

/* A cluster name: 1-63 of [A-Za-z0-9._-] (it becomes one key segment). */
bool kv_valid_cluster(const char *s);
/* One key segment a writer may produce: non-empty, not "." or "..", no
 * '/', no control characters. */
bool kv_valid_segment(const char *s);

/* The root normalised to end in '/' ("" allowed: keys at the top); NULL
 * root = KV_DEFAULT_ROOT. *out malloc'd. 0, -EINVAL (starts with '/'),
 * -ENOMEM. */
int kv_root_normalise(const char *root, char **out);

/* Split s at '/' into at most max non-empty segments of at most
 * KV_KEY_SEG_MAX bytes. Returns the count, or -1 when there are more than
 * max or a segment is empty or too long. */
int kv_key_split(const char *s, char seg[][KV_KEY_SEG_MAX + 1], int max);

/* haproxy/<cluster>/<this>: ends a KV-loss episode early (docs/kv-schema.md). */
#define KV_HAPROXY_FORCE_KV_LOSS "force-kv-loss"

enum kv_key_kind {
    KV_KEY_OTHER = 0,             /* not under a known prefix, or a folder key */
    KV_KEY_KUBE_SERVICE,          /* seg: cluster, namespace, service, port */
    KV_KEY_KUBE_NODE,             /* seg: cluster, node */
    KV_KEY_KUBE_META,             /* seg: cluster */
    KV_KEY_KUBE_LEADER,           /* seg: cluster */
    KV_KEY_KUBE_MALFORMED,        /* under kube/<c>/services|nodes, wrong shape; seg: cluster */
    KV_KEY_HAPROXY_SERVICE,       /* seg: cluster, name */
    KV_KEY_HAPROXY_FORCE,         /* seg: cluster, backend or service */
    KV_KEY_HAPROXY_FORCE_KV_LOSS, /* seg: cluster (haproxy/<c>/force-kv-loss) */
    KV_KEY_MAINTENANCE,           /* rel: the maintenance id (kv_maint_id_parse) */
    KV_KEY_DIRECTOR,              /* seg: cluster; rel: below director/<cluster>/ */
    KV_KEY_AUDIT,                 /* rel: <timestamp>-<id> */
    KV_KEY_STATUS,                /* rel: below status/ (kv_status_key_parse) */
};

struct kv_key {
    enum kv_key_kind kind;
    int n;             /* segments in seg */
    bool node_sharded; /* KV_KEY_KUBE_NODE under node-shards/ (else the flat nodes/) */
    char seg[4][KV_KEY_SEG_MAX + 1];
    const char *rel; /* points into the parsed key */
};

/* Classify key (a full key starting with root, which ends in '/'). Keys
 * not under root are KV_KEY_OTHER. */
void kv_key_parse(const char *root, const char *key, struct kv_key *out);

/*
 * Node shards. A blocking query answers with its whole prefix, so node
 * entries are spread over KV_NODE_SHARDS prefixes by a hash of the node
 * name and a node change makes a watcher re-read one shard, not every
 * node (docs/kv-schema.md, "What a watcher watches"). The shard of a node
 * is FNV-1a (32 bit) of its name modulo KV_NODE_SHARDS, written as two
 * lowercase hex digits: every writer and reader (C here, Python in
 * tests/lib/kv_schema.py) computes it identically. The count is part of
 * the layout: changing it is a new prefix, not a new value.
 */
#define KV_NODE_SHARDS 16
unsigned kv_key_node_shard(const char *node);

/* Key builders (malloc'd; NULL when a segment is invalid or on ENOMEM).
 * root ends in '/'. kv_key_kube_node() is where a node's entry is
 * written (its shard); kv_key_kube_node_flat() the deprecated flat key
 * that readers still accept. */
char *kv_key_kube_service(const char *root, const char *cluster, const char *ns, const char *svc,
                          const char *port);
char *kv_key_kube_node(const char *root, const char *cluster, const char *node);
char *kv_key_kube_node_flat(const char *root, const char *cluster, const char *node);
/* "R kube/<cluster>/node-shards/<shard>/" (shard < KV_NODE_SHARDS) and
 * "R kube/<cluster>/nodes/": the node prefixes a reader watches, each
 * kept non-empty by its folder key. */
char *kv_key_kube_node_shard_prefix(const char *root, const char *cluster, unsigned shard);
char *kv_key_kube_node_flat_prefix(const char *root, const char *cluster);
char *kv_key_kube_own(const char *root, const char *cluster); /* "R kube/<cluster>/" */
char *kv_key_kube_meta(const char *root, const char *cluster);
char *kv_key_kube_leader(const char *root, const char *cluster);
/* Any key from a format (malloc'd; NULL on ENOMEM), for layouts outside
 * this contract (the exporter's KSE compatibility keys). */
char *kv_key_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
