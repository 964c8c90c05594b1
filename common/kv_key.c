/* SPDX-License-Identifier: Apache-2.0 */
/* kv_key: the KV key codec. See kv_key.h and docs/kv-schema.md. */
#include "kv_key.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool kv_valid_segment(const char *s)
{
    if (!s || !s[0] || strcmp(s, ".") == 0 || strcmp(s, "..") == 0 || strlen(s) > KV_KEY_SEG_MAX)
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p == '/' || *p < 0x20 || *p == 0x7f)
            return false;
    return true;
}

bool kv_valid_cluster(const char *s)
{
    size_t len = s ? strlen(s) : 0;
    if (len == 0 || len > KV_CLUSTER_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
            return false;
    return kv_valid_segment(s);
}

char *kv_key_printf(const char *fmt, ...)
{
    char *out = NULL;
    va_list ap;
    va_start(ap, fmt);
    int rc = vasprintf(&out, fmt, ap);
    va_end(ap);
    return rc < 0 ? NULL : out;
}

int kv_root_normalise(const char *root, char **out)
{
    if (!root)
        root = KV_DEFAULT_ROOT;
    if (root[0] == '/')
        return -EINVAL;
    size_t rl = strlen(root);
    *out = kv_key_printf("%s%s", root, rl && root[rl - 1] != '/' ? "/" : "");
    return *out ? 0 : -ENOMEM;
}

int kv_key_split(const char *s, char seg[][KV_KEY_SEG_MAX + 1], int max)
{
    int k = 0;
    for (;;) {
        const char *slash = strchr(s, '/');
        size_t len = slash ? (size_t)(slash - s) : strlen(s);
        if (k == max || len == 0 || len > KV_KEY_SEG_MAX)
            return -1;
        memcpy(seg[k], s, len);
        seg[k][len] = '\0';
        k++;
        if (!slash)
            return k;
        s = slash + 1;
    }
}

static bool starts(const char *s, const char *prefix, const char **rest)
{
    size_t n = strlen(prefix);
    if (strncmp(s, prefix, n) != 0)
        return false;
    *rest = s + n;
    return true;
}

/* "<cluster>/" at the start of s: cluster into seg0, rest after it. */
static bool cluster_prefix(const char *s, char *seg0, const char **rest)
{
    const char *slash = strchr(s, '/');
    size_t len = slash ? (size_t)(slash - s) : 0;
    if (!slash || len == 0 || len > KV_KEY_SEG_MAX)
        return false;
    memcpy(seg0, s, len);
    seg0[len] = '\0';
    *rest = slash + 1;
    return true;
}

#define NODE_SHARD_DIR "node-shards"

unsigned kv_key_node_shard(const char *node)
{
    uint32_t h = 2166136261u; /* FNV-1a 32: tiny, and trivial to write again in any language */
    for (const unsigned char *p = (const unsigned char *)node; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h % KV_NODE_SHARDS;
}

/* seg (a shard segment) is the shard of node: two lowercase hex digits. */
static bool is_node_shard(const char *seg, const char *node)
{
    char want[3];
    snprintf(want, sizeof(want), "%02x", kv_key_node_shard(node));
    return strcmp(seg, want) == 0;
}

static void parse_kube(const char *rest, struct kv_key *k)
{
    char seg[5][KV_KEY_SEG_MAX + 1];
    int n = kv_key_split(rest, seg, 5);
    if (n == 2 && (!strcmp(seg[1], "meta") || !strcmp(seg[1], "leader"))) {
        k->kind = !strcmp(seg[1], "meta") ? KV_KEY_KUBE_META : KV_KEY_KUBE_LEADER;
        k->n = 1;
        memcpy(k->seg[0], seg[0], sizeof(seg[0]));
        return;
    }
    if (n < 2 || (strcmp(seg[1], "services") != 0 && strcmp(seg[1], "nodes") != 0 &&
                  strcmp(seg[1], NODE_SHARD_DIR) != 0))
        return;
    memcpy(k->seg[0], seg[0], sizeof(seg[0]));
    k->n = 1;
    if (n == 5 && strcmp(seg[1], "services") == 0) {
        k->kind = KV_KEY_KUBE_SERVICE;
        for (int i = 2; i < 5; i++)
            memcpy(k->seg[i - 1], seg[i], sizeof(seg[i]));
        k->n = 4;
    } else if ((n == 3 && strcmp(seg[1], "nodes") == 0) ||
               (n == 4 && strcmp(seg[1], NODE_SHARD_DIR) == 0 && is_node_shard(seg[2], seg[3]))) {
        /* a node in a shard not its own is malformed: a writer hashing
         * differently would hide it from readers watching the right one */
        k->kind = KV_KEY_KUBE_NODE;
        k->node_sharded = n == 4;
        memcpy(k->seg[1], seg[n - 1], sizeof(seg[n - 1]));
        k->n = 2;
    } else {
        k->kind = KV_KEY_KUBE_MALFORMED;
    }
}

static void parse_haproxy(const char *rest, struct kv_key *k)
{
    char seg[5][KV_KEY_SEG_MAX + 1];
    const char *below;
    if (!cluster_prefix(rest, k->seg[0], &below))
        return;
    int n = kv_key_split(below, seg, 5);
    if (n == 1 && strcmp(seg[0], KV_HAPROXY_FORCE_KV_LOSS) == 0) {
        k->kind = KV_KEY_HAPROXY_FORCE_KV_LOSS;
        k->n = 1;
        return;
    }
    if (n == 2 && strcmp(seg[0], "services") == 0)
        k->kind = KV_KEY_HAPROXY_SERVICE;
    else if (n == 2 && strcmp(seg[0], "force-removal") == 0)
        k->kind = KV_KEY_HAPROXY_FORCE;
    else
        return;
    memcpy(k->seg[1], seg[1], sizeof(seg[1]));
    k->n = 2;
}

void kv_key_parse(const char *root, const char *key, struct kv_key *k)
{
    const char *rel, *rest;
    memset(k, 0, sizeof(*k));
    k->kind = KV_KEY_OTHER;
    if (!starts(key, root, &rel))
        return;
    size_t len = strlen(rel);
    if (len == 0 || rel[len - 1] == '/')
        return; /* a folder key (Consul's UI makes them; they keep a prefix
                 * from being empty): no record */
    k->rel = rel;
    if (starts(rel, "kube/", &rest)) {
        parse_kube(rest, k);
    } else if (starts(rel, "haproxy/", &rest)) {
        parse_haproxy(rest, k);
    } else if (starts(rel, "maintenance/", &rest)) {
        k->kind = KV_KEY_MAINTENANCE;
        k->rel = rest;
    } else if (starts(rel, "director/", &rest)) {
        if (cluster_prefix(rest, k->seg[0], &k->rel)) {
            k->kind = KV_KEY_DIRECTOR;
            k->n = 1;
        }
    } else if (starts(rel, "audit/", &rest) && *rest) {
        k->kind = KV_KEY_AUDIT;
        k->rel = rest;
    } else if (starts(rel, "status/", &rest)) {
        k->kind = KV_KEY_STATUS;
        k->rel = rest;
    }
    if (k->kind == KV_KEY_OTHER)
        k->rel = NULL;
}

char *kv_key_kube_own(const char *root, const char *cluster)
{
    return kv_valid_cluster(cluster) ? kv_key_printf("%skube/%s/", root, cluster) : NULL;
}

char *kv_key_kube_service(const char *root, const char *cluster, const char *ns, const char *svc,
                          const char *port)
{
    if (!kv_valid_segment(cluster) || !kv_valid_segment(ns) || !kv_valid_segment(svc) ||
        !kv_valid_segment(port))
        return NULL;
    return kv_key_printf("%skube/%s/services/%s/%s/%s", root, cluster, ns, svc, port);
}

char *kv_key_kube_node(const char *root, const char *cluster, const char *node)
{
    if (!kv_valid_segment(cluster) || !kv_valid_segment(node))
        return NULL;
    return kv_key_printf("%skube/%s/" NODE_SHARD_DIR "/%02x/%s", root, cluster,
                         kv_key_node_shard(node), node);
}

char *kv_key_kube_node_flat(const char *root, const char *cluster, const char *node)
{
    if (!kv_valid_segment(cluster) || !kv_valid_segment(node))
        return NULL;
    return kv_key_printf("%skube/%s/nodes/%s", root, cluster, node);
}

char *kv_key_kube_node_shard_prefix(const char *root, const char *cluster, unsigned shard)
{
    if (!kv_valid_segment(cluster) || shard >= KV_NODE_SHARDS)
        return NULL;
    return kv_key_printf("%skube/%s/" NODE_SHARD_DIR "/%02x/", root, cluster, shard);
}

char *kv_key_kube_node_flat_prefix(const char *root, const char *cluster)
{
    return kv_valid_segment(cluster) ? kv_key_printf("%skube/%s/nodes/", root, cluster) : NULL;
}

char *kv_key_kube_meta(const char *root, const char *cluster)
{
    return kv_valid_cluster(cluster) ? kv_key_printf("%skube/%s/meta", root, cluster) : NULL;
}

char *kv_key_kube_leader(const char *root, const char *cluster)
{
    return kv_valid_cluster(cluster) ? kv_key_printf("%skube/%s/leader", root, cluster) : NULL;
}
