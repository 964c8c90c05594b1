/* SPDX-License-Identifier: Apache-2.0 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "kv_layout.h"
#include "log.h"
#include "../common/suite_main.h"

static struct export_record *records(const char *fixture, size_t *n)
{
    struct export_options o = {.cluster = "dc1"};
    struct export_record *r;
    struct kube_reason why;
    json_t *svc = fixture_json(fixture);
    ck_assert_int_eq(kube_service_to_records(svc, &o, &r, n, &why), 0);
    ck_assert_uint_gt(*n, 0);
    json_decref(svc);
    return r;
}

static void node(struct node_record *r, const char *name, const char *a1, const char *a2,
                 bool eligible)
{
    memset(r, 0, sizeof(*r));
    r->name = strdup(name);
    r->addresses = calloc(2, sizeof(char *));
    r->addresses[r->n_addresses++] = strdup(a1);
    if (a2)
        r->addresses[r->n_addresses++] = strdup(a2);
    r->ready = r->schedulable = r->selected = true;
    r->eligible = r->effective_eligible = eligible;
    r->ready = eligible;
    r->labels = json_object();
}

/* Fills desired with every fixture service plus three nodes. */
static void build_desired(const struct kv_layout *l, struct kv_map *m)
{
    static const char *const fixtures[] = {"svc-lb-local.json", "svc-nodeport-kse.json",
                                           "svc-udp-unnamed.json"};
    kv_map_init(m);
    for (size_t f = 0; f < 3; f++) {
        size_t n;
        struct export_record *r = records(fixtures[f], &n);
        for (size_t i = 0; i < n; i++)
            ck_assert_int_eq(kv_layout_add_service(l, m, &r[i]), 0);
        export_records_free(r, n);
    }
    struct node_record nodes[3];
    node(&nodes[0], "worker-b", "10.0.0.2", "fd00::2", true);
    node(&nodes[1], "worker-a", "10.0.0.1", NULL, true);
    node(&nodes[2], "worker-c", "10.0.0.3", NULL, false);
    ck_assert_int_eq(kv_layout_add_nodes(l, m, nodes, 3), 0);
    for (int i = 0; i < 3; i++)
        node_record_clear(&nodes[i]);
}

static void assert_canonical(const char *value)
{
    json_t *v = json_loads(value, 0, NULL);
    ck_assert_ptr_nonnull(v);
    char *again = kv_canonical(v);
    ck_assert_str_eq(again, value);
    free(again);
    json_decref(v);
}

START_TEST(test_keys)
{
    struct kv_layout l;
    ck_assert_int_eq(kv_layout_init(&l, "drover/v1", "dc1", "kube-service-exporter/"), 0);
    ck_assert_str_eq(l.root, "drover/v1/");
    ck_assert_str_eq(l.kse_prefix, "kube-service-exporter");
    size_t n;
    struct export_record *r = records("svc-lb-local.json", &n);
    char *k = kv_layout_service_key(&l, &r[1]);
    ck_assert_str_eq(k, "drover/v1/kube/dc1/services/shop/web/https");
    free(k);
    /* KSE default: one service per cluster, id prefixed with the cluster */
    k = kv_layout_kse_service_key(&l, &r[1]);
    ck_assert_str_eq(k, "kube-service-exporter/services/dc1-shop-web-https/clusters/dc1");
    free(k);
    export_records_free(r, n);
    r = records("svc-nodeport-kse.json", &n);
    k = kv_layout_kse_service_key(&l, &r[0]); /* service-per-cluster "false" */
    ck_assert_str_eq(k, "kube-service-exporter/services/decepticons-megatron-http/clusters/dc1");
    free(k);
    r[0].kse_id_prefix = strdup("a1");
    k = kv_layout_kse_service_key(&l, &r[0]);
    ck_assert_str_eq(k, "kube-service-exporter/services/a1-decepticons-megatron-http/clusters/dc1");
    free(k);
    r[0].kse_service_per_cluster = true;
    k = kv_layout_kse_service_key(&l, &r[0]);
    ck_assert_str_eq(
        k, "kube-service-exporter/services/a1-dc1-decepticons-megatron-http/clusters/dc1");
    free(k);
    export_records_free(r, n);
    r = records("svc-udp-unnamed.json", &n);
    k = kv_layout_service_key(&l, &r[0]);
    ck_assert_str_eq(k, "drover/v1/kube/dc1/services/infra/resolver/53");
    free(k);
    export_records_free(r, n);

    k = kv_layout_node_key(&l, "worker-a1.dc1.example.net");
    ck_assert_str_eq(k, "drover/v1/kube/dc1/node-shards/07/worker-a1.dc1.example.net");
    free(k);
    ck_assert_ptr_null(kv_layout_node_key(&l, "a/b"));
    ck_assert_ptr_null(kv_layout_node_key(&l, ".."));
    k = kv_layout_meta_key(&l);
    ck_assert_str_eq(k, "drover/v1/kube/dc1/meta");
    free(k);
    k = kv_layout_leader_key(&l);
    ck_assert_str_eq(k, "drover/v1/kube/dc1/leader");
    free(k);
    k = kv_layout_kse_nodes_key(&l);
    ck_assert_str_eq(k, "kube-service-exporter/nodes/dc1");
    free(k);
    kv_layout_clear(&l);

    ck_assert_int_eq(kv_layout_init(&l, NULL, "dc1", NULL), 0);
    ck_assert_str_eq(l.root, "drover/v1/");
    ck_assert_ptr_null(kv_layout_kse_nodes_key(&l));
    kv_layout_clear(&l);
    ck_assert_int_eq(kv_layout_init(&l, "", "dc1", NULL), 0);
    ck_assert_str_eq(l.own, "kube/dc1/");
    kv_layout_clear(&l);

    log_set_level(LOGL_ERROR + 1);
    ck_assert_int_eq(kv_layout_init(&l, NULL, "a/b", NULL), -EINVAL);
    ck_assert_int_eq(kv_layout_init(&l, NULL, "", NULL), -EINVAL);
    ck_assert_int_eq(kv_layout_init(&l, NULL, "..", NULL), -EINVAL);
    ck_assert_int_eq(kv_layout_init(&l, "/abs", "dc1", NULL), -EINVAL);
    ck_assert_int_eq(kv_layout_init(&l, NULL, "dc1", "/"), -EINVAL);
    log_set_level(LOGL_INFO);
}
END_TEST

START_TEST(test_owns)
{
    struct kv_layout l;
    ck_assert_int_eq(kv_layout_init(&l, "drover/v1/", "dc1", "kse"), 0);
    ck_assert(kv_layout_owns(&l, "drover/v1/kube/dc1/services/ns/svc/http"));
    ck_assert(kv_layout_owns(&l, "drover/v1/kube/dc1/nodes/n1"));
    ck_assert(kv_layout_owns(&l, "drover/v1/kube/dc1/nodes/"));
    ck_assert(kv_layout_owns(&l, "drover/v1/kube/dc1/node-shards/00/n1"));
    ck_assert(kv_layout_owns(&l, "drover/v1/kube/dc1/node-shards/00/"));
    ck_assert(kv_layout_owns(&l, "drover/v1/kube/dc1/node-shards/0f/n1")); /* wrong shard: ours */
    ck_assert(kv_layout_owns(&l, "kse/services/dc1-ns-svc-http/clusters/dc1"));
    ck_assert(kv_layout_owns(&l, "kse/services/ns-svc-http/clusters/dc1"));
    ck_assert(kv_layout_owns(&l, "kse/nodes/dc1"));

    ck_assert(!kv_layout_owns(&l, "drover/v1/kube/dc1/meta"));
    ck_assert(!kv_layout_owns(&l, "drover/v1/kube/dc1/leader"));
    ck_assert(!kv_layout_owns(&l, "drover/v1/kube/dc1/services/"));
    ck_assert(!kv_layout_owns(&l, "drover/v1/kube/dc1/nodes/a/b"));
    ck_assert(!kv_layout_owns(&l, "drover/v1/kube/dc1/node-shards/"));
    ck_assert(!kv_layout_owns(&l, "drover/v1/kube/dc1/node-shards/00/a/b"));
    ck_assert(!kv_layout_owns(&l, "drover/v1/kube/dc2/node-shards/00/n1"));
    ck_assert(!kv_layout_owns(&l, "drover/v1/kube/dc10/services/ns/svc/http"));
    ck_assert(!kv_layout_owns(&l, "drover/v1/kube/dc2/nodes/n1"));
    ck_assert(!kv_layout_owns(&l, "drover/v1/haproxy/dc1/services/web"));
    ck_assert(!kv_layout_owns(&l, "drover/v1/maintenance/n1"));
    ck_assert(!kv_layout_owns(&l, "kse/services/ns-svc-http/clusters/dc2"));
    ck_assert(!kv_layout_owns(&l, "kse/services/ns-svc-http/clusters/dc10"));
    ck_assert(!kv_layout_owns(&l, "kse/services//clusters/dc1"));
    ck_assert(!kv_layout_owns(&l, "kse/services/a/b/clusters/dc1"));
    ck_assert(!kv_layout_owns(&l, "kse/nodes/dc2"));
    ck_assert(!kv_layout_owns(&l, "kse2/nodes/dc1"));
    ck_assert(!kv_layout_owns(&l, "kse/leader"));
    kv_layout_clear(&l);
}
END_TEST

START_TEST(test_values)
{
    struct kv_layout l;
    ck_assert_int_eq(kv_layout_init(&l, NULL, "dc1", "kube-service-exporter"), 0);
    size_t n;
    struct export_record *r = records("svc-nodeport-kse.json", &n);

    char *v = kv_layout_service_value(&r[0]);
    assert_canonical(v);
    json_t *o = json_loads(v, 0, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(o, "cluster")), "dc1");
    ck_assert_str_eq(json_string_value(json_object_get(o, "namespace")), "decepticons");
    ck_assert_str_eq(json_string_value(json_object_get(o, "service")), "megatron");
    ck_assert_str_eq(json_string_value(json_object_get(o, "port_name")), "http");
    ck_assert_int_eq(json_integer_value(json_object_get(o, "node_port")), 32046);
    ck_assert_int_eq(json_integer_value(json_object_get(o, "port")), 8080);
    ck_assert_str_eq(json_string_value(json_object_get(o, "hash")), r[0].hash);
    ck_assert(json_is_true(json_object_get(o, "proxy_protocol")));
    json_decref(o);
    free(v);

    /* kube-service-exporter's field names, exactly */
    v = kv_layout_kse_service_value(&r[0]);
    assert_canonical(v);
    o = json_loads(v, 0, NULL);
    char hash[32];
    snprintf(hash, sizeof(hash), "%s", json_string_value(json_object_get(o, "hash")));
    ck_assert_uint_eq(strlen(hash), 16);
    json_object_del(o, "hash");
    char *without = kv_canonical(o);
    ck_assert_str_eq(without,
                     "{\"ClusterName\":\"dc1\",\"backend_protocol\":\"tcp\",\"custom_attrs\":"
                     "{\"allowed_ips\":[\"10.0.0.0/8\",\"172.16.0.0/12\"],\"owner\":\"robots\"},"
                     "\"dns_name\":\"robots.example.net\",\"health_check_path\":\"/status\","
                     "\"health_check_port\":32047,\"load_balancer_class\":\"internal\","
                     "\"port\":32046,\"proxy_protocol\":true}");
    char expect[17];
    kv_hash64_hex(without, strlen(without), expect);
    ck_assert_str_eq(hash, expect);
    free(without);
    json_decref(o);
    free(v);
    export_records_free(r, n);

    /* defaults: KSE says http when unset, drover says tcp */
    r = records("svc-lb-local.json", &n);
    free(r[0].backend_protocol);
    r[0].backend_protocol = NULL;
    v = kv_layout_kse_service_value(&r[0]);
    o = json_loads(v, 0, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(o, "backend_protocol")), "http");
    ck_assert(json_is_true(json_object_get(o, "service_per_cluster")));
    ck_assert_ptr_null(json_object_get(o, "proxy_protocol"));
    ck_assert_int_eq(json_integer_value(json_object_get(o, "health_check_port")), 31999);
    ck_assert_str_eq(json_string_value(json_object_get(o, "health_check_path")), "/healthz");
    ck_assert_uint_eq(json_object_size(json_object_get(o, "custom_attrs")), 0);
    json_decref(o);
    free(v);
    v = kv_layout_service_value(&r[0]);
    o = json_loads(v, 0, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(o, "backend_protocol")), "tcp");
    ck_assert_str_eq(json_string_value(json_object_get(o, "health_check_source")),
                     "healthCheckNodePort");
    json_decref(o);
    free(v);
    export_records_free(r, n);

    struct node_record nd;
    node(&nd, "worker-b", "10.0.0.2", "fd00::2", true);
    v = kv_layout_node_value(&l, &nd);
    ck_assert_str_eq(v, "{\"address\":\"10.0.0.2\",\"addresses\":[\"10.0.0.2\",\"fd00::2\"],"
                        "\"cluster\":\"dc1\",\"eligible\":true,\"excluded\":false,\"labels\":{},"
                        "\"name\":\"worker-b\",\"ready\":true,\"schedulable\":true,"
                        "\"selected\":true}");
    free(v);
    /* in the grace period: NotReady but still eligible */
    nd.ready = false;
    nd.eligible = false;
    v = kv_layout_node_value(&l, &nd);
    ck_assert_ptr_nonnull(strstr(v, "\"eligible\":true"));
    ck_assert_ptr_nonnull(strstr(v, "\"ready\":false"));
    free(v);
    /* a record built without labels still gets an object */
    json_decref(nd.labels);
    nd.labels = NULL;
    v = kv_layout_node_value(&l, &nd);
    ck_assert_ptr_nonnull(strstr(v, "\"labels\":{}"));
    free(v);
    node_record_clear(&nd);

    struct kv_meta meta = {.exporter_version = "0.1.0",
                           .last_full_sync_unix = 1795957200,
                           .services = 3,
                           .service_ports = 4,
                           .nodes = 3,
                           .eligible_nodes = 2};
    v = kv_layout_meta_value(&l, &meta);
    assert_canonical(v);
    ck_assert_str_eq(v, "{\"cluster\":\"dc1\",\"eligible_nodes\":2,\"exporter_version\":\"0.1.0\","
                        "\"kse_compat\":true,\"last_full_sync\":\"2026-11-29T13:00:00Z\","
                        "\"last_full_sync_unix\":1795957200,\"nodes\":3,\"schema\":1,"
                        "\"service_ports\":4,\"services\":3,\"skipped_services\":0}");

    /* meta write policy: the sync time alone never causes a write */
    struct kv_meta later = meta;
    later.last_full_sync_unix += 600;
    ck_assert(!kv_layout_meta_needs_write(&l, v, &later, 0));
    ck_assert(kv_layout_meta_needs_write(&l, v, &later, 1));
    ck_assert(kv_layout_meta_needs_write(&l, NULL, &later, 0));
    ck_assert(kv_layout_meta_needs_write(&l, "not json", &later, 0));
    later.eligible_nodes = 1;
    ck_assert(kv_layout_meta_needs_write(&l, v, &later, 0));
    later = meta;
    later.exporter_version = "0.2.0";
    ck_assert(kv_layout_meta_needs_write(&l, v, &later, 0));
    free(v);
    kv_layout_clear(&l);
}
END_TEST

/* kv_map_sort: sorted input is left as is (one pass), unsorted input is
 * sorted, and a duplicate is found either way. */
START_TEST(test_map_sort_sorted_and_duplicates)
{
    static const char *const cases[][4] = {
        {"a", "b", "c", NULL}, {"c", "a", "b", NULL}, {"a", "b", "b", NULL},
        {"b", "a", "b", NULL}, {"a", "a", NULL},      {"x", NULL},
    };
    static const int want[] = {0, 0, -EEXIST, -EEXIST, -EEXIST, 0};
    for (size_t k = 0; k < sizeof(want) / sizeof(want[0]); k++) {
        struct kv_map m;
        kv_map_init(&m);
        for (size_t i = 0; cases[k][i]; i++)
            ck_assert_int_eq(kv_map_put(&m, cases[k][i], "v", 0), 0);
        ck_assert_int_eq(kv_map_sort(&m), want[k]);
        for (size_t i = 1; i < m.n; i++)
            ck_assert_int_le(strcmp(m.v[i - 1].key, m.v[i].key), 0);
        kv_map_clear(&m);
    }
}
END_TEST

START_TEST(test_kse_nodes_sorted_eligible_only)
{
    struct kv_layout l;
    ck_assert_int_eq(kv_layout_init(&l, NULL, "dc1", "kse"), 0);
    struct kv_map m;
    kv_map_init(&m);
    struct node_record nodes[3];
    node(&nodes[0], "worker-b", "fd00::2", "10.0.0.2", true);
    node(&nodes[1], "worker-a", "10.0.0.1", NULL, true);
    node(&nodes[2], "worker-0", "10.0.0.3", NULL, false);
    ck_assert_int_eq(kv_layout_add_nodes(&l, &m, nodes, 3), 0);
    ck_assert_int_eq(kv_map_sort(&m), 0);
    /* three drover node keys (ineligible too) + KSE array + folder keys */
    ck_assert_uint_eq(m.n, 4 + KV_NODE_SHARDS + 1);
    const struct kv_entry *e = kv_map_find(&m, "kse/nodes/dc1");
    ck_assert_ptr_nonnull(e);
    ck_assert_str_eq(e->value, "[{\"Address\":\"10.0.0.1\",\"Name\":\"worker-a\"},"
                               "{\"Address\":\"10.0.0.2\",\"Name\":\"worker-b\"},"
                               "{\"Address\":\"fd00::2\",\"Name\":\"worker-b\"}]");
    e = kv_map_find(&m, "drover/v1/kube/dc1/node-shards/0a/worker-0");
    ck_assert_ptr_nonnull(e);
    ck_assert_ptr_nonnull(strstr(e->value, "\"eligible\":false"));
    kv_map_clear(&m);

    /* no eligible node: an empty array, not null */
    kv_map_init(&m);
    ck_assert_int_eq(kv_layout_add_nodes(&l, &m, &nodes[2], 1), 0);
    ck_assert_int_eq(kv_map_sort(&m), 0);
    ck_assert_str_eq(kv_map_find(&m, "kse/nodes/dc1")->value, "[]");
    kv_map_clear(&m);
    for (int i = 0; i < 3; i++)
        node_record_clear(&nodes[i]);
    kv_layout_clear(&l);
}
END_TEST

/* What Consul holds after applying ops to current. */
static void apply(struct kv_map *current, const struct kv_ops *ops)
{
    struct kv_map next;
    kv_map_init(&next);
    for (size_t i = 0; i < current->n; i++) {
        bool touched = false;
        for (size_t j = 0; j < ops->n; j++)
            touched = touched || strcmp(ops->v[j].key, current->v[i].key) == 0;
        if (!touched)
            kv_map_put(&next, current->v[i].key, current->v[i].value, current->v[i].modify_index);
    }
    for (size_t j = 0; j < ops->n; j++)
        if (ops->v[j].kind == KV_OP_SET)
            kv_map_put(&next, ops->v[j].key, ops->v[j].value, 1000 + j);
    kv_map_clear(current);
    *current = next;
}

START_TEST(test_diff_initial_then_noop)
{
    struct kv_layout l;
    ck_assert_int_eq(kv_layout_init(&l, NULL, "dc1", "kube-service-exporter"), 0);
    struct kv_map desired, current;
    struct kv_ops ops;
    build_desired(&l, &desired);
    kv_map_init(&current);
    /* someone else's data next to ours */
    kv_map_put(&current, "drover/v1/kube/dc2/services/shop/web/http", "{}", 7);
    kv_map_put(&current, "drover/v1/kube/dc1/leader", "", 8);

    ck_assert_int_eq(kv_layout_diff(&l, &desired, &current, true, &ops), 0);
    /* 4 service ports x (drover + KSE) + 3 nodes + KSE node list + the
     * folder keys of 16 node shards and the flat nodes/ */
    ck_assert_uint_eq(desired.n, 12 + KV_NODE_SHARDS + 1);
    ck_assert_uint_eq(ops.sets, 12 + KV_NODE_SHARDS + 1);
    ck_assert_uint_eq(ops.deletes, 0);
    apply(&current, &ops);
    kv_ops_clear(&ops);
    kv_map_clear(&desired);

    /* a resync from scratch that finds nothing changed writes nothing */
    build_desired(&l, &desired);
    ck_assert_int_eq(kv_layout_diff(&l, &desired, &current, true, &ops), 0);
    ck_assert_uint_eq(ops.n, 0);
    kv_ops_clear(&ops);
    kv_map_clear(&desired);
    kv_map_clear(&current);
    kv_layout_clear(&l);
}
END_TEST

/* An exporter upgraded over the flat layout: its first round writes every
 * node to its shard and deletes no flat entry of a node it moves (a
 * watcher could see the delete before the set); the next round, with the
 * shards in Consul, deletes them. A flat entry of a node that is gone
 * goes at once. */
START_TEST(test_diff_moves_flat_nodes)
{
    struct kv_layout l;
    ck_assert_int_eq(kv_layout_init(&l, NULL, "dc1", NULL), 0);
    struct kv_map desired, current;
    struct kv_ops ops;
    build_desired(&l, &desired);
    kv_map_init(&current);
    static const char *const flat[] = {"drover/v1/kube/dc1/nodes/worker-a",
                                       "drover/v1/kube/dc1/nodes/worker-b",
                                       "drover/v1/kube/dc1/nodes/worker-c"};
    for (size_t i = 0; i < 3; i++)
        kv_map_put(&current, flat[i], "{}", 10 + i);
    kv_map_put(&current, "drover/v1/kube/dc1/nodes/worker-z", "{}", 20);

    ck_assert_int_eq(kv_layout_diff(&l, &desired, &current, true, &ops), 0);
    ck_assert_uint_eq(ops.deletes, 1);
    ck_assert_str_eq(ops.v[ops.n - 1].key, "drover/v1/kube/dc1/nodes/worker-z");
    ck_assert_ptr_nonnull(kv_map_find(&desired, "drover/v1/kube/dc1/node-shards/0d/worker-a"));
    apply(&current, &ops);
    kv_ops_clear(&ops);
    kv_map_clear(&desired);

    build_desired(&l, &desired);
    ck_assert_int_eq(kv_layout_diff(&l, &desired, &current, true, &ops), 0);
    ck_assert_uint_eq(ops.sets, 0);
    ck_assert_uint_eq(ops.deletes, 3);
    for (size_t i = 0; i < 3; i++)
        ck_assert_str_eq(ops.v[i].key, flat[i]);
    apply(&current, &ops);
    kv_ops_clear(&ops);
    /* the flat prefix keeps its folder key: an empty prefix wakes its
     * watchers on every KV write */
    ck_assert_ptr_nonnull(kv_map_find(&current, "drover/v1/kube/dc1/nodes/"));
    ck_assert_ptr_nonnull(kv_map_find(&current, "drover/v1/kube/dc1/node-shards/0f/"));
    kv_map_clear(&desired);
    kv_map_clear(&current);
    kv_layout_clear(&l);
}
END_TEST

START_TEST(test_diff_changes_and_deletes)
{
    struct kv_layout l;
    ck_assert_int_eq(kv_layout_init(&l, NULL, "dc1", "kse"), 0);
    struct kv_map desired, current;
    struct kv_ops ops;
    build_desired(&l, &desired);
    ck_assert_int_eq(kv_map_sort(&desired), 0);
    kv_map_init(&current);
    for (size_t i = 0; i < desired.n; i++)
        kv_map_put(&current, desired.v[i].key, desired.v[i].value, 100 + i);
    /* one changed value */
    const char *changed = "drover/v1/kube/dc1/node-shards/0d/worker-a";
    for (size_t i = 0; i < current.n; i++) {
        if (strcmp(current.v[i].key, changed) == 0) {
            free(current.v[i].value);
            current.v[i].value = strdup("{\"old\":true}");
            current.v[i].modify_index = 555;
        }
    }
    /* stale keys of ours */
    kv_map_put(&current, "drover/v1/kube/dc1/services/shop/gone/http", "{}", 11);
    kv_map_put(&current, "drover/v1/kube/dc1/nodes/worker-z", "{}", 12);
    kv_map_put(&current, "kse/services/dc1-shop-gone-http/clusters/dc1", "{}", 13);
    /* keys we must never touch */
    static const char *const foreign[] = {
        "drover/v1/kube/dc1/meta",
        "drover/v1/kube/dc1/leader",
        "drover/v1/kube/dc2/services/shop/gone/http",
        "drover/v1/kube/dc2/nodes/worker-z",
        "drover/v1/kube/dc10/nodes/worker-z",
        "drover/v1/haproxy/dc1/services/web",
        "drover/v1/maintenance/worker-a",
        "kse/services/dc2-shop-gone-http/clusters/dc2",
        "kse/services/shop-web-http/clusters/dc2",
        "kse/nodes/dc2",
        "other/app/key",
    };
    for (size_t i = 0; i < sizeof(foreign) / sizeof(foreign[0]); i++)
        kv_map_put(&current, foreign[i], "x", 1);

    /* partial view: only sets */
    ck_assert_int_eq(kv_layout_diff(&l, &desired, &current, false, &ops), 0);
    ck_assert_uint_eq(ops.n, 1);
    ck_assert_int_eq(ops.v[0].kind, KV_OP_SET);
    ck_assert_str_eq(ops.v[0].key, changed);
    ck_assert_uint_eq(ops.v[0].modify_index, 555);
    kv_ops_clear(&ops);

    /* complete view: the stale keys go, sets come first */
    ck_assert_int_eq(kv_layout_diff(&l, &desired, &current, true, &ops), 0);
    ck_assert_uint_eq(ops.sets, 1);
    ck_assert_uint_eq(ops.deletes, 3);
    ck_assert_int_eq(ops.v[0].kind, KV_OP_SET);
    ck_assert_str_eq(ops.v[1].key, "drover/v1/kube/dc1/nodes/worker-z");
    ck_assert_uint_eq(ops.v[1].modify_index, 12);
    ck_assert_str_eq(ops.v[2].key, "drover/v1/kube/dc1/services/shop/gone/http");
    ck_assert_str_eq(ops.v[3].key, "kse/services/dc1-shop-gone-http/clusters/dc1");
    for (size_t i = 0; i < ops.n; i++)
        for (size_t f = 0; f < sizeof(foreign) / sizeof(foreign[0]); f++)
            ck_assert_str_ne(ops.v[i].key, foreign[f]);
    apply(&current, &ops);
    kv_ops_clear(&ops);
    ck_assert_int_eq(kv_layout_diff(&l, &desired, &current, true, &ops), 0);
    ck_assert_uint_eq(ops.n, 0);
    for (size_t f = 0; f < sizeof(foreign) / sizeof(foreign[0]); f++)
        ck_assert_ptr_nonnull(kv_map_find(&current, foreign[f]));
    kv_ops_clear(&ops);

    /* an empty complete view deletes all of ours and nothing else */
    struct kv_map none;
    kv_map_init(&none);
    ck_assert_int_eq(kv_layout_diff(&l, &none, &current, true, &ops), 0);
    ck_assert_uint_eq(ops.sets, 0);
    ck_assert_uint_eq(ops.deletes, desired.n);
    kv_ops_clear(&ops);
    ck_assert_int_eq(kv_layout_diff(&l, &none, &current, false, &ops), 0);
    ck_assert_uint_eq(ops.n, 0);
    kv_ops_clear(&ops);

    kv_map_clear(&none);
    kv_map_clear(&desired);
    kv_map_clear(&current);
    kv_layout_clear(&l);
}
END_TEST

START_TEST(test_diff_refuses_foreign_desired)
{
    struct kv_layout l;
    ck_assert_int_eq(kv_layout_init(&l, NULL, "dc1", NULL), 0);
    struct kv_map desired, current;
    struct kv_ops ops;
    kv_map_init(&desired);
    kv_map_init(&current);
    kv_map_put(&desired, "drover/v1/kube/dc1/nodes/a", "{}", 0);
    kv_map_put(&desired, "drover/v1/kube/dc2/nodes/a", "{}", 0);
    log_set_level(LOGL_ERROR + 1);
    ck_assert_int_eq(kv_layout_diff(&l, &desired, &current, true, &ops), -EINVAL);
    ck_assert_uint_eq(ops.n, 0);
    kv_map_clear(&desired);

    log_set_level(LOGL_INFO);
    kv_map_clear(&desired);
    kv_map_clear(&current);
    kv_layout_clear(&l);
}
END_TEST

/* "a-b"/"c" and "a"/"b-c" share the KSE id a-b-c-http */
START_TEST(test_diff_kse_id_collision)
{
    struct kv_layout l;
    ck_assert_int_eq(kv_layout_init(&l, NULL, "dc1", "kse"), 0);
    size_t n;
    struct export_record *r1 = records("svc-lb-local.json", &n);
    struct export_record *r2 = records("svc-lb-local.json", &n);
    free(r1[0].namespace);
    free(r1[0].service);
    free(r2[0].namespace);
    free(r2[0].service);
    r1[0].namespace = strdup("a-b");
    r1[0].service = strdup("c");
    r2[0].namespace = strdup("a");
    r2[0].service = strdup("b-c");
    struct kv_map desired, current;
    kv_map_init(&desired);
    kv_map_init(&current);
    ck_assert_int_eq(kv_layout_add_service(&l, &desired, &r1[0]), 0);
    ck_assert_int_eq(kv_layout_add_service(&l, &desired, &r2[0]), 0);
    ck_assert_uint_eq(desired.n, 4);
    const char *kse_key = "kse/services/dc1-a-b-c-http/clusters/dc1";
    kv_map_put(&current, kse_key, "{\"old\":1}", 9);
    log_set_level(LOGL_ERROR + 1);
    struct kv_ops ops;
    ck_assert_int_eq(kv_layout_diff(&l, &desired, &current, true, &ops), 0);
    log_set_level(LOGL_INFO);
    ck_assert_uint_eq(ops.conflicts, 1);
    /* both drover keys are written; the shared KSE key is neither set nor deleted */
    ck_assert_uint_eq(ops.sets, 2);
    ck_assert_uint_eq(ops.deletes, 0);
    for (size_t i = 0; i < ops.n; i++)
        ck_assert_str_ne(ops.v[i].key, kse_key);
    kv_ops_clear(&ops);
    export_records_free(r1, n);
    export_records_free(r2, n);
    kv_map_clear(&desired);
    kv_map_clear(&current);
    kv_layout_clear(&l);
}
END_TEST

START_TEST(test_keep_entries)
{
    struct kv_layout l;
    ck_assert_int_eq(kv_layout_init(&l, NULL, "dc1", NULL), 0);
    struct kv_map desired, current;
    kv_map_init(&desired);
    kv_map_init(&current);
    kv_map_put(&current, "drover/v1/kube/dc1/services/a/b/http", "{\"old\":1}", 5);
    kv_map_put(&current, "drover/v1/kube/dc1/services/a/c/http", "{\"old\":1}", 6);
    ck_assert_int_eq(kv_map_put_keep(&desired, "drover/v1/kube/dc1/services/a/b/http"), 0);
    ck_assert_int_eq(kv_map_put_keep(&desired, "drover/v1/kube/dc1/services/a/b/https"), 0);
    /* a keep entry next to a real one: the real one wins, no conflict */
    ck_assert_int_eq(kv_map_put_keep(&desired, "drover/v1/kube/dc1/services/a/c/http"), 0);
    kv_map_put(&desired, "drover/v1/kube/dc1/services/a/c/http", "{\"new\":1}", 0);
    struct kv_ops ops;
    ck_assert_int_eq(kv_layout_diff(&l, &desired, &current, true, &ops), 0);
    ck_assert_uint_eq(ops.conflicts, 0);
    ck_assert_uint_eq(ops.n, 1);
    ck_assert_int_eq(ops.v[0].kind, KV_OP_SET);
    ck_assert_str_eq(ops.v[0].key, "drover/v1/kube/dc1/services/a/c/http");
    ck_assert_str_eq(ops.v[0].value, "{\"new\":1}");
    kv_ops_clear(&ops);
    kv_map_clear(&desired);
    kv_map_clear(&current);
    kv_layout_clear(&l);
}
END_TEST

START_TEST(test_consul_glue)
{
    struct kv_layout l;
    ck_assert_int_eq(kv_layout_init(&l, NULL, "dc1", NULL), 0);
    struct consul_kv items[] = {
        {.key = "drover/v1/kube/dc1/nodes/a",
         .value = (unsigned char *)"{}",
         .value_len = 2,
         .modify_index = 41},
        {.key = "drover/v1/kube/dc1/nodes/gone",
         .value = (unsigned char *)"{}",
         .value_len = 2,
         .modify_index = 42},
        {.key = "drover/v1/kube/dc1/leader", .value = NULL, .modify_index = 7},
    };
    struct consul_kv_list list = {.items = items, .n = 3};
    struct kv_map current, desired;
    kv_map_init(&current);
    kv_map_init(&desired);
    ck_assert_int_eq(kv_map_add_consul(&current, &list), 0);
    ck_assert_uint_eq(current.n, 3);
    kv_map_put(&desired, "drover/v1/kube/dc1/nodes/a", "{\"x\":1}", 0);
    kv_map_put(&desired, "drover/v1/kube/dc1/nodes/new", "{}", 0);
    struct kv_ops ops;
    ck_assert_int_eq(kv_layout_diff(&l, &desired, &current, true, &ops), 0);
    ck_assert_uint_eq(ops.n, 3);
    struct consul_txn_op *txn;
    ck_assert_int_eq(kv_ops_to_txn(&ops, &txn), 0);
    ck_assert_int_eq(txn[0].verb, CONSUL_TXN_CAS);
    ck_assert_str_eq(txn[0].key, "drover/v1/kube/dc1/nodes/a");
    ck_assert_uint_eq(txn[0].index, 41);
    ck_assert_uint_eq(txn[0].value_len, 7);
    ck_assert_int_eq(memcmp(txn[0].value, "{\"x\":1}", 7), 0);
    ck_assert_int_eq(txn[1].verb, CONSUL_TXN_CAS);
    ck_assert_uint_eq(txn[1].index, 0); /* create only */
    ck_assert_int_eq(txn[2].verb, CONSUL_TXN_DELETE_CAS);
    ck_assert_str_eq(txn[2].key, "drover/v1/kube/dc1/nodes/gone");
    ck_assert_uint_eq(txn[2].index, 42);
    free(txn);
    kv_ops_clear(&ops);
    kv_map_clear(&current);
    kv_map_clear(&desired);
    kv_layout_clear(&l);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("kv_layout");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_keys);
    tcase_add_test(tc, test_owns);
    tcase_add_test(tc, test_values);
    tcase_add_test(tc, test_kse_nodes_sorted_eligible_only);
    tcase_add_test(tc, test_map_sort_sorted_and_duplicates);
    tcase_add_test(tc, test_diff_initial_then_noop);
    tcase_add_test(tc, test_diff_changes_and_deletes);
    tcase_add_test(tc, test_diff_moves_flat_nodes);
    tcase_add_test(tc, test_diff_refuses_foreign_desired);
    tcase_add_test(tc, test_diff_kse_id_collision);
    tcase_add_test(tc, test_keep_entries);
    tcase_add_test(tc, test_consul_glue);
    suite_add_tcase(s, tc);
    return suite_main_run(s);
}
