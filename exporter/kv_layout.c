/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kv_layout: keys, values and the desired-vs-current diff of the
 * exporter's KV entries. See kv_layout.h and docs/kv-schema.md.
 */
#include "kv_layout.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array_grow.h"
#include "kv_key.h"
#include "kv_kube.h"
#include "log.h"
#include "str_affix.h"

int kv_layout_init(struct kv_layout *l, const char *root, const char *cluster,
                   const char *kse_prefix)
{
    memset(l, 0, sizeof(*l));
    if (!root)
        root = KV_LAYOUT_DEFAULT_ROOT;
    if (!kv_valid_cluster(cluster)) {
        log_error("kv layout: cluster name \"%s\" is invalid (1-63 characters of "
                  "[A-Za-z0-9._-]); not starting",
                  cluster ? cluster : "");
        return -EINVAL;
    }
    if (root[0] == '/') {
        log_error("kv layout: KV prefix \"%s\" must not start with '/'", root);
        return -EINVAL;
    }
    if (kv_root_normalise(root, &l->root) < 0)
        goto nomem;
    l->cluster = strdup(cluster);
    if (!l->cluster)
        goto nomem;
    l->own = kv_key_kube_own(l->root, cluster);
    if (!l->own)
        goto nomem;
    if (kse_prefix) {
        size_t kl = strlen(kse_prefix);
        while (kl && kse_prefix[kl - 1] == '/')
            kl--;
        if (kl == 0 || kse_prefix[0] == '/') {
            log_error("kv layout: kube-service-exporter prefix \"%s\" is invalid (empty or "
                      "starting with '/'); not starting",
                      kse_prefix);
            kv_layout_clear(l);
            return -EINVAL;
        }
        l->kse_prefix = strndup(kse_prefix, kl);
        if (!l->kse_prefix)
            goto nomem;
    }
    return 0;
nomem:
    kv_layout_clear(l);
    return -ENOMEM;
}

void kv_layout_clear(struct kv_layout *l)
{
    free(l->root);
    free(l->cluster);
    free(l->own);
    free(l->kse_prefix);
    memset(l, 0, sizeof(*l));
}

/* key == prefix + one valid segment */
static bool one_segment_under(const char *key, const char *prefix)
{
    if (!str_has_prefix(key, prefix))
        return false;
    const char *rest = key + strlen(prefix);
    return rest[0] && !strchr(rest, '/');
}

/* "<shard>/" or "<shard>/<node>" below node-shards/: any one segment as
 * shard, so a key a reader refuses (wrong shard) is still the exporter's
 * to delete */
static bool owns_shard_key(const char *rest)
{
    const char *slash = strchr(rest, '/');
    if (!slash || slash == rest)
        return false;
    return slash[1] == '\0' || !strchr(slash + 1, '/');
}

bool kv_layout_owns(const struct kv_layout *l, const char *key)
{
    if (str_has_prefix(key, l->own)) {
        const char *rest = key + strlen(l->own);
        if (str_has_prefix(rest, "services/"))
            return rest[9] != '\0';
        if (str_has_prefix(rest, "nodes/")) /* the flat layout and its folder key */
            return strcmp(rest, "nodes/") == 0 || one_segment_under(rest, "nodes/");
        if (str_has_prefix(rest, "node-shards/")) /* "<shard>/" folder keys and nodes */
            return owns_shard_key(rest + strlen("node-shards/"));
        return false; /* meta, leader, future keys: not the diff's business */
    }
    if (!l->kse_prefix)
        return false;
    size_t pl = strlen(l->kse_prefix);
    if (strncmp(key, l->kse_prefix, pl) != 0 || key[pl] != '/')
        return false;
    const char *rest = key + pl + 1;
    if (str_has_prefix(rest, "nodes/"))
        return strcmp(rest + 6, l->cluster) == 0;
    if (!str_has_prefix(rest, "services/"))
        return false;
    const char *id = rest + 9;
    const char *slash = strchr(id, '/');
    if (!slash || slash == id)
        return false;
    return str_has_prefix(slash, "/clusters/") && strcmp(slash + 10, l->cluster) == 0;
}

/* ---- kv_map ------------------------------------------------------------- */

void kv_map_init(struct kv_map *m)
{
    memset(m, 0, sizeof(*m));
}

void kv_map_clear(struct kv_map *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->v[i].key);
        free(m->v[i].value);
    }
    free(m->v);
    memset(m, 0, sizeof(*m));
}

int kv_map_put_take(struct kv_map *m, char *key, char *value, uint64_t modify_index)
{
    if (!key || !value || array_grow((void **)&m->v, &m->cap, m->n, sizeof(m->v[0])) < 0)
        goto fail;
    m->v[m->n++] = (struct kv_entry){.key = key, .value = value, .modify_index = modify_index};
    return 0;
fail:
    free(key);
    free(value);
    return -ENOMEM;
}

int kv_map_put(struct kv_map *m, const char *key, const char *value, uint64_t modify_index)
{
    return kv_map_put_take(m, strdup(key), strdup(value ? value : ""), modify_index);
}

int kv_map_put_keep(struct kv_map *m, const char *key)
{
    char *k = strdup(key);
    if (!k || array_grow((void **)&m->v, &m->cap, m->n, sizeof(m->v[0])) < 0) {
        free(k);
        return -ENOMEM;
    }
    m->v[m->n++] = (struct kv_entry){.key = k, .value = NULL};
    return 0;
}

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const struct kv_entry *)a)->key, ((const struct kv_entry *)b)->key);
}

int kv_map_sort(struct kv_map *m)
{
    /* A map is often sorted already (a Consul read; the current view on
     * every later round): one pass tells, and finds duplicates too. */
    bool dup = false;
    size_t i = 1;
    for (; i < m->n; i++) {
        int c = strcmp(m->v[i - 1].key, m->v[i].key);
        if (c > 0)
            break;
        dup = dup || c == 0;
    }
    if (i >= m->n)
        return dup ? -EEXIST : 0;
    qsort(m->v, m->n, sizeof(m->v[0]), entry_cmp);
    for (i = 1; i < m->n; i++)
        if (strcmp(m->v[i - 1].key, m->v[i].key) == 0)
            return -EEXIST;
    return 0;
}

const struct kv_entry *kv_map_find(const struct kv_map *m, const char *key)
{
    struct kv_entry probe = {.key = (char *)key};
    if (m->n == 0)
        return NULL;
    return bsearch(&probe, m->v, m->n, sizeof(m->v[0]), entry_cmp);
}

/* ---- keys --------------------------------------------------------------- */

static bool record_segments_ok(const struct export_record *r)
{
    return kv_valid_segment(r->namespace) && kv_valid_segment(r->service) &&
           kv_valid_segment(r->port_name);
}

char *kv_layout_service_key(const struct kv_layout *l, const struct export_record *r)
{
    return kv_key_kube_service(l->root, l->cluster, r->namespace, r->service, r->port_name);
}

char *kv_layout_node_key(const struct kv_layout *l, const char *node)
{
    return kv_key_kube_node(l->root, l->cluster, node);
}

char *kv_layout_meta_key(const struct kv_layout *l)
{
    return kv_key_kube_meta(l->root, l->cluster);
}

char *kv_layout_leader_key(const struct kv_layout *l)
{
    return kv_key_kube_leader(l->root, l->cluster);
}

char *kv_layout_kse_service_key(const struct kv_layout *l, const struct export_record *r)
{
    if (!l->kse_prefix || !record_segments_ok(r))
        return NULL;
    /* kube-service-exporter's ExportedService.Id():
     * [<id-prefix>-][<cluster>-]<namespace>-<service>-<port> */
    const char *pfx = r->kse_id_prefix ? r->kse_id_prefix : "";
    return kv_key_printf("%s/services/%s%s%s%s%s-%s-%s/clusters/%s", l->kse_prefix, pfx,
                         pfx[0] ? "-" : "", r->kse_service_per_cluster ? l->cluster : "",
                         r->kse_service_per_cluster ? "-" : "", r->namespace, r->service,
                         r->port_name, l->cluster);
}

char *kv_layout_kse_nodes_key(const struct kv_layout *l)
{
    if (!l->kse_prefix)
        return NULL;
    return kv_key_printf("%s/nodes/%s", l->kse_prefix, l->cluster);
}

/* ---- values ------------------------------------------------------------- */

static char *dump_and_free(json_t *o)
{
    char *s = o ? kv_canonical(o) : NULL;
    json_decref(o);
    return s;
}

char *kv_layout_service_value(const struct export_record *r)
{
    return export_record_value(r);
}

char *kv_layout_kse_service_value(const struct export_record *r)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    int rc = 0;
    /* Field names and omitempty behaviour as kube-service-exporter writes
     * them; consul-template users read these. */
    rc |= json_object_set_new(o, "ClusterName", json_string(r->cluster));
    rc |= json_object_set_new(o, "port", json_integer(r->node_port));
    rc |= json_object_set_new(o, "health_check_port", json_integer(r->health_check_port));
    rc |= json_object_set_new(o, "backend_protocol",
                              json_string(r->backend_protocol ? r->backend_protocol : "http"));
    rc |= json_object_set(o, "custom_attrs", r->custom_attrs);
    if (r->kse_service_per_cluster)
        rc |= json_object_set_new(o, "service_per_cluster", json_true());
    if (r->proxy_protocol)
        rc |= json_object_set_new(o, "proxy_protocol", json_true());
    if (r->health_check_path)
        rc |= json_object_set_new(o, "health_check_path", json_string(r->health_check_path));
    if (r->dns_name)
        rc |= json_object_set_new(o, "dns_name", json_string(r->dns_name));
    if (r->load_balancer_class)
        rc |= json_object_set_new(o, "load_balancer_class", json_string(r->load_balancer_class));
    if (r->listen_port)
        rc |= json_object_set_new(o, "load_balancer_listen_port", json_integer(r->listen_port));
    char *text = rc ? NULL : kv_canonical(o);
    if (!text) {
        json_decref(o);
        return NULL;
    }
    char hash[17];
    kv_hash64_hex(text, strlen(text), hash);
    free(text);
    if (json_object_set_new(o, "hash", json_string(hash)) < 0) {
        json_decref(o);
        return NULL;
    }
    return dump_and_free(o);
}

char *kv_layout_node_value(const struct kv_layout *l, const struct node_record *n)
{
    struct kv_kube_node_rec rec = {
        .name = n->name,
        .cluster = l->cluster,
        .addresses = (const char *const *)n->addresses,
        .n_addresses = n->n_addresses,
        .ready = n->ready,
        .schedulable = n->schedulable,
        .excluded = n->excluded,
        .selected = n->selected,
        .eligible = n->effective_eligible,
        .labels = n->labels,
        .zone = n->zone,
    };
    return kv_kube_node_encode(&rec);
}

char *kv_layout_meta_value(const struct kv_layout *l, const struct kv_meta *m)
{
    struct kv_kube_meta_rec rec = {
        .cluster = l->cluster,
        .exporter_version = m->exporter_version,
        .last_full_sync_unix = m->last_full_sync_unix,
        .services = m->services,
        .service_ports = m->service_ports,
        .nodes = m->nodes,
        .eligible_nodes = m->eligible_nodes,
        .skipped_services = m->skipped_services,
        .kse_compat = l->kse_prefix != NULL,
    };
    return kv_kube_meta_encode(&rec);
}

bool kv_layout_meta_needs_write(const struct kv_layout *l, const char *current,
                                const struct kv_meta *m, size_t data_ops)
{
    if (data_ops > 0 || !current)
        return true;
    char *want = kv_layout_meta_value(l, m);
    json_t *a = want ? json_loads(want, 0, NULL) : NULL;
    json_t *b = json_loads(current, 0, NULL);
    bool differ = true;
    if (json_is_object(a) && json_is_object(b)) {
        /* the sync time alone never justifies a write */
        json_object_del(a, "last_full_sync");
        json_object_del(a, "last_full_sync_unix");
        json_object_del(b, "last_full_sync");
        json_object_del(b, "last_full_sync_unix");
        differ = !json_equal(a, b);
    }
    json_decref(a);
    json_decref(b);
    free(want);
    return differ;
}

/* ---- adding records ----------------------------------------------------- */

int kv_layout_add_service(const struct kv_layout *l, struct kv_map *desired,
                          const struct export_record *r)
{
    char *key = kv_layout_service_key(l, r);
    if (!key)
        return -EINVAL; /* the caller reports the Service as skipped */
    int rc = kv_map_put_take(desired, key, kv_layout_service_value(r), 0);
    if (rc || !l->kse_prefix)
        return rc;
    return kv_map_put_take(desired, kv_layout_kse_service_key(l, r), kv_layout_kse_service_value(r),
                           0);
}

struct kse_node {
    const char *name;
    const char *address;
};

static int kse_node_cmp(const void *a, const void *b)
{
    const struct kse_node *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->address, y->address);
}

static char *kse_nodes_value(const struct node_record *nodes, size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        if (nodes[i].effective_eligible)
            total += nodes[i].n_addresses;
    struct kse_node *list = calloc(total ? total : 1, sizeof(*list));
    json_t *arr = json_array();
    char *out = NULL;
    if (!list || !arr)
        goto done;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!nodes[i].effective_eligible)
            continue;
        for (size_t j = 0; j < nodes[i].n_addresses; j++)
            list[k++] = (struct kse_node){nodes[i].name, nodes[i].addresses[j]};
    }
    qsort(list, total, sizeof(*list), kse_node_cmp);
    for (size_t i = 0; i < total; i++) {
        json_t *e = json_pack("{s:s, s:s}", "Name", list[i].name, "Address", list[i].address);
        if (!e || json_array_append_new(arr, e) < 0)
            goto done;
    }
    out = kv_canonical(arr);
done:
    json_decref(arr);
    free(list);
    return out;
}

/* The folder key of every node prefix a watcher watches: an empty prefix
 * wakes its watchers on every KV write anywhere (docs/kv-schema.md), and
 * the flat nodes/ is empty once its entries moved to the shards. */
static int add_node_folders(const struct kv_layout *l, struct kv_map *desired)
{
    int rc =
        kv_map_put_take(desired, kv_key_kube_node_flat_prefix(l->root, l->cluster), strdup(""), 0);
    for (unsigned s = 0; rc == 0 && s < KV_NODE_SHARDS; s++)
        rc = kv_map_put_take(desired, kv_key_kube_node_shard_prefix(l->root, l->cluster, s),
                             strdup(""), 0);
    return rc;
}

int kv_layout_add_nodes(const struct kv_layout *l, struct kv_map *desired,
                        const struct node_record *nodes, size_t n)
{
    int rc = add_node_folders(l, desired);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++) {
        char *key = kv_layout_node_key(l, nodes[i].name);
        if (!key) {
            log_warn("kv layout: node \"%s\" cannot form a KV key; not exported",
                     nodes[i].name ? nodes[i].name : "");
            continue;
        }
        rc = kv_map_put_take(desired, key, kv_layout_node_value(l, &nodes[i]), 0);
        if (rc)
            return rc;
    }
    if (!l->kse_prefix)
        return 0;
    return kv_map_put_take(desired, kv_layout_kse_nodes_key(l), kse_nodes_value(nodes, n), 0);
}

/* ---- diff --------------------------------------------------------------- */

void kv_ops_clear(struct kv_ops *ops)
{
    free(ops->v);
    memset(ops, 0, sizeof(*ops));
}

static int ops_push(struct kv_ops *ops, struct kv_op op)
{
    if (array_grow((void **)&ops->v, &ops->cap, ops->n, sizeof(ops->v[0])) < 0)
        return -ENOMEM;
    ops->v[ops->n++] = op;
    if (op.kind == KV_OP_SET)
        ops->sets++;
    else
        ops->deletes++;
    return 0;
}

/* Two records mapping to one key (possible only in the KSE layout, whose
 * ids join names with '-': "a-b"/"c" and "a"/"b-c") cannot both be
 * written, and picking one would flap with the list order. Drop every
 * claimant and keep whatever Consul holds for the key (see diff). */
static void resolve_conflicts(struct kv_map *m, struct kv_ops *ops)
{
    size_t out = 0;
    for (size_t i = 0; i < m->n;) {
        size_t j = i + 1;
        while (j < m->n && strcmp(m->v[j].key, m->v[i].key) == 0)
            j++;
        size_t real = 0, pick = i;
        for (size_t k = i; k < j; k++) {
            if (m->v[k].value) {
                real++;
                pick = k;
            }
        }
        if (j - i == 1) {
            m->v[out++] = m->v[i];
        } else if (real <= 1) {
            /* keep entries plus at most one real entry: the real one (or
             * one keep entry) stands, no conflict */
            struct kv_entry stand = m->v[pick];
            for (size_t k = i; k < j; k++) {
                if (k == pick)
                    continue;
                free(m->v[k].key);
                free(m->v[k].value);
            }
            m->v[out++] = stand; /* out <= i: only freed slots are overwritten */
        } else {
            log_error("kv layout: %zu records map to the key %s; writing none of them and "
                      "leaving its current value (rename one of the Services)",
                      real, m->v[i].key);
            ops->conflicts++;
            /* keep the key (value NULL) so the delete pass leaves it alone */
            free(m->v[i].value);
            m->v[i].value = NULL;
            m->v[out++] = m->v[i];
            for (size_t k = i + 1; k < j; k++) {
                free(m->v[k].key);
                free(m->v[k].value);
            }
        }
        i = j;
    }
    m->n = out;
}

/* key is a flat node entry (kube/<c>/nodes/<node>) whose node this
 * round writes to its shard for the first time. Its delete waits for the
 * next round, once Consul holds the shard's entry: a watcher reads the
 * flat prefix and the shard by separate queries, and a delete seen before
 * the set would take the node out of its backends for a moment. */
static bool flat_node_moving(const struct kv_layout *l, const struct kv_map *desired,
                             const struct kv_map *current, const char *key)
{
    struct kv_key k;
    kv_key_parse(l->root, key, &k);
    if (k.kind != KV_KEY_KUBE_NODE || k.node_sharded)
        return false;
    char *sharded = kv_key_kube_node(l->root, k.seg[0], k.seg[1]);
    bool moving = sharded && kv_map_find(desired, sharded) && !kv_map_find(current, sharded);
    free(sharded);
    return moving;
}

int kv_layout_diff(const struct kv_layout *l, struct kv_map *desired, struct kv_map *current,
                   bool complete, struct kv_ops *ops)
{
    int rc;

    memset(ops, 0, sizeof(*ops));
    if (kv_map_sort(desired) < 0)
        resolve_conflicts(desired, ops);
    for (size_t i = 0; i < desired->n; i++) {
        if (!kv_layout_owns(l, desired->v[i].key)) {
            log_error("kv layout: desired key %s is outside this exporter's keys (cluster %s); "
                      "writing nothing this round",
                      desired->v[i].key, l->cluster);
            return -EINVAL;
        }
    }
    /* Consul keys are unique; a duplicate here is harmless for the merge. */
    (void)kv_map_sort(current);

    size_t i = 0, j = 0;
    /* SETs first: a rename lands before its old key goes away */
    while (i < desired->n) {
        const struct kv_entry *d = &desired->v[i];
        while (j < current->n && strcmp(current->v[j].key, d->key) < 0)
            j++;
        const struct kv_entry *c =
            j < current->n && strcmp(current->v[j].key, d->key) == 0 ? &current->v[j] : NULL;
        if (d->value && (!c || strcmp(c->value, d->value) != 0)) {
            rc = ops_push(ops, (struct kv_op){.kind = KV_OP_SET,
                                              .key = d->key,
                                              .value = d->value,
                                              .modify_index = c ? c->modify_index : 0});
            if (rc)
                goto fail;
        }
        i++;
    }
    if (!complete)
        return 0;
    for (j = 0; j < current->n; j++) {
        const struct kv_entry *c = &current->v[j];
        if (!kv_layout_owns(l, c->key) || kv_map_find(desired, c->key) ||
            flat_node_moving(l, desired, current, c->key))
            continue;
        rc = ops_push(
            ops,
            (struct kv_op){.kind = KV_OP_DELETE, .key = c->key, .modify_index = c->modify_index});
        if (rc)
            goto fail;
    }
    return 0;
fail:
    kv_ops_clear(ops);
    return rc;
}

int kv_map_add_consul(struct kv_map *m, const struct consul_kv_list *list)
{
    for (size_t i = 0; list && i < list->n; i++) {
        const struct consul_kv *kv = &list->items[i];
        int rc = kv_map_put(m, kv->key, kv->value ? (const char *)kv->value : "", kv->modify_index);
        if (rc)
            return rc;
    }
    return 0;
}

int kv_ops_to_txn(const struct kv_ops *ops, struct consul_txn_op **out)
{
    *out = calloc(ops->n ? ops->n : 1, sizeof(**out));
    if (!*out)
        return -ENOMEM;
    for (size_t i = 0; i < ops->n; i++) {
        const struct kv_op *op = &ops->v[i];
        struct consul_txn_op *t = &(*out)[i];
        t->key = op->key;
        t->index = op->modify_index;
        if (op->kind == KV_OP_SET) {
            t->verb = CONSUL_TXN_CAS;
            t->value = op->value;
            t->value_len = strlen(op->value);
        } else {
            t->verb = CONSUL_TXN_DELETE_CAS;
        }
    }
    return 0;
}
