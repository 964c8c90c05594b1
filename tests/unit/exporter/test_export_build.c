/* SPDX-License-Identifier: Apache-2.0 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "export_build.h"
#include "fixture.h"
#include "../common/suite_main.h"

static struct kv_layout layout;
static struct export_options sopts = {.cluster = "dc1"};
static struct node_options nopts;
static struct kube_store *svcs, *nodes;
static struct export_state *state;

static void put(struct kube_store *s, json_t *obj, const char *rv)
{
    json_object_set_new(json_object_get(obj, "metadata"), "resourceVersion", json_string(rv));
    struct kube_event ev = {.type = KUBE_EVENT_MODIFIED, .object = obj, .resource_version = rv};
    ck_assert_int_ge(kube_store_apply(s, &ev), 0);
    json_decref(obj);
}

static json_t *node_named(const char *name)
{
    json_t *n = fixture_json("node-dualstack.json");
    json_object_set_new(json_object_get(n, "metadata"), "name", json_string(name));
    return n;
}

static void set_ready(json_t *node, const char *status)
{
    json_t *conds = json_object_get(json_object_get(node, "status"), "conditions");
    json_object_set_new(json_array_get(conds, 3), "status", json_string(status));
}

static void setup(void)
{
    ck_assert_int_eq(kv_layout_init(&layout, NULL, "dc1", "kse"), 0);
    svcs = kube_store_new("services", true);
    nodes = kube_store_new("nodes", false);
    state = export_state_new();
    put(svcs, fixture_json("svc-lb-local.json"), "10");
    put(svcs, fixture_json("svc-nodeport-kse.json"), "11");
    put(svcs, fixture_json("svc-udp-unnamed.json"), "12");
    put(svcs, fixture_json("svc-clusterip.json"), "13");
    json_t *bad = fixture_json("svc-udp-unnamed.json");
    json_object_set_new(json_object_get(bad, "metadata"), "name", json_string("bad"));
    fixture_annotate(bad, "drover.io/health-check-port", "99999");
    put(svcs, bad, "14");
    put(nodes, node_named("n1"), "20");
    put(nodes, node_named("n2"), "21");
    json_t *cordoned = node_named("n3");
    json_object_set_new(json_object_get(cordoned, "spec"), "unschedulable", json_true());
    put(nodes, cordoned, "22");
}

static void teardown(void)
{
    export_state_free(state);
    kube_store_free(svcs);
    kube_store_free(nodes);
    kv_layout_clear(&layout);
}

struct skips {
    int n;
    char key[64];
    char reason[32];
};

static void on_skip(const char *kind, const char *key, const struct kube_reason *why, void *arg)
{
    struct skips *s = arg;
    s->n++;
    snprintf(s->key, sizeof(s->key), "%s %s", kind, key);
    snprintf(s->reason, sizeof(s->reason), "%s", why->reason);
}

static void build(int64_t now, struct kv_map *m, struct export_build_result *res, struct skips *sk)
{
    struct export_build_params p = {
        .layout = &layout, .service_opts = &sopts, .node_opts = &nopts, .now = now, .grace = 30000};
    kv_map_init(m);
    ck_assert_int_eq(export_build_desired(&p, svcs, nodes, state, m, res, on_skip, sk), 0);
    ck_assert_int_eq(kv_map_sort(m), 0);
}

START_TEST(test_build_counts_and_noop)
{
    struct kv_map m, current;
    struct export_build_result res;
    struct skips sk = {0};
    build(0, &m, &res, &sk);
    ck_assert_uint_eq(res.services, 3);
    ck_assert_uint_eq(res.service_ports, 4);
    ck_assert_uint_eq(res.not_exported, 1);
    ck_assert_uint_eq(res.skipped_services, 1);
    ck_assert_uint_eq(res.kept_services, 1); /* its would-be keys are protected */
    ck_assert_uint_eq(res.nodes, 3);
    ck_assert_uint_eq(res.eligible_nodes, 2);
    ck_assert_uint_eq(res.nodes_in_grace, 0);
    ck_assert_int_eq(res.recheck_at, INT64_MAX);
    ck_assert_int_eq(sk.n, 1);
    ck_assert_str_eq(sk.key, "Service infra/bad");
    ck_assert_str_eq(sk.reason, "InvalidAnnotation");
    /* 4 ports x 2 layouts + 3 nodes + KSE node array + infra/bad's keep,
     * and the folder keys of the node shards and the flat nodes/ */
    ck_assert_uint_eq(m.n, 13 + KV_NODE_SHARDS + 1);
    ck_assert_ptr_nonnull(kv_map_find(&m, "drover/v1/kube/dc1/node-shards/06/n3"));
    ck_assert_uint_eq(export_state_nodes(state), 3);

    kv_map_init(&current);
    for (size_t i = 0; i < m.n; i++)
        if (m.v[i].value) /* keep entries are not values */
            kv_map_put(&current, m.v[i].key, m.v[i].value, 1);
    kv_map_clear(&m);
    build(5, &m, &res, &sk);
    ck_assert_int_eq(sk.n, 1); /* not reported again */
    ck_assert_uint_eq(res.skipped_services, 1);
    struct kv_ops ops;
    ck_assert_int_eq(kv_layout_diff(&layout, &m, &current, true, &ops), 0);
    ck_assert_uint_eq(ops.n, 0);
    kv_ops_clear(&ops);
    kv_map_clear(&m);
    kv_map_clear(&current);
}
END_TEST

/* A node whose name Kubernetes would never make is neither written nor
 * counted: res (what meta reports) counts what is exported. */
START_TEST(test_bad_node_name_not_counted)
{
    struct kv_map m;
    struct export_build_result res;
    struct skips sk = {0};
    put(nodes, node_named("%2e%2e%2f"), "23");
    put(nodes, node_named("a b?c=1&d"), "24");
    build(0, &m, &res, &sk);
    ck_assert_uint_eq(res.nodes, 3);
    ck_assert_uint_eq(res.skipped_nodes, 2);
    ck_assert_uint_eq(res.eligible_nodes, 2);
    for (size_t i = 0; i < m.n; i++)
        ck_assert_msg(!strstr(m.v[i].key, "%2e") && !strchr(m.v[i].key, ' '), "%s", m.v[i].key);
    ck_assert_str_eq(sk.reason, "InvalidObject");
    kv_map_clear(&m);
}
END_TEST

static const char *value_of(const struct kv_map *m, const char *key)
{
    const struct kv_entry *e = kv_map_find(m, key);
    ck_assert_msg(e != NULL, "no key %s", key);
    return e->value;
}

START_TEST(test_service_cache_by_resource_version)
{
    const char *key = "drover/v1/kube/dc1/services/infra/resolver/53";
    struct kv_map m;
    struct export_build_result res;
    struct skips sk = {0};
    build(0, &m, &res, &sk);
    ck_assert_uint_eq(export_state_services(state), 5);
    ck_assert_ptr_null(strstr(value_of(&m, key), "dns_name"));
    kv_map_clear(&m);

    /* new content at a new resourceVersion: recomputed */
    json_t *svc = fixture_json("svc-udp-unnamed.json");
    fixture_annotate(svc, "drover.io/dns-name", "dns.example.com");
    put(svcs, json_deep_copy(svc), "40");
    build(1, &m, &res, &sk);
    ck_assert_ptr_nonnull(strstr(value_of(&m, key), "\"dns_name\":\"dns.example.com\""));
    kv_map_clear(&m);

    /* the same resourceVersion is the same content: the cache answers,
     * no stored object is even parsed */
    uint64_t svc_loads = kube_store_loads(svcs), node_loads = kube_store_loads(nodes);
    build(2, &m, &res, &sk);
    ck_assert_uint_eq(kube_store_loads(svcs), svc_loads);
    ck_assert_uint_eq(kube_store_loads(nodes), node_loads);
    ck_assert_ptr_nonnull(strstr(value_of(&m, key), "dns.example.com"));
    ck_assert_uint_eq(res.services, 3);
    kv_map_clear(&m);
    /* one changed Service: exactly one object parsed */
    json_t *again = fixture_json("svc-udp-unnamed.json");
    fixture_annotate(again, "drover.io/dns-name", "dns2.example.com");
    put(svcs, again, "41");
    build(3, &m, &res, &sk);
    ck_assert_uint_eq(kube_store_loads(svcs), svc_loads + 1);
    ck_assert_ptr_nonnull(strstr(value_of(&m, key), "dns2.example.com"));
    kv_map_clear(&m);

    /* a skipped Service is reported once per version, not on every build */
    ck_assert_int_eq(sk.n, 1);
    ck_assert_uint_eq(res.skipped_services, 1);

    /* deleted Services leave the cache */
    struct kube_event ev = {.type = KUBE_EVENT_DELETED, .object = svc};
    ck_assert_int_eq(kube_store_apply(svcs, &ev), 1);
    build(4, &m, &res, &sk);
    ck_assert_uint_eq(export_state_services(state), 4);
    ck_assert_ptr_null(kv_map_find(&m, key));
    kv_map_clear(&m);
    json_decref(svc);
}
END_TEST

/* A Service whose new version is invalid keeps its last good entries. */
START_TEST(test_invalid_version_keeps_last_good)
{
    struct kv_map m, current;
    struct export_build_result res;
    struct skips sk = {0};
    struct kv_ops ops;
    build(0, &m, &res, &sk);
    kv_map_init(&current);
    for (size_t i = 0; i < m.n; i++)
        if (m.v[i].value) /* keep entries are not values */
            kv_map_put(&current, m.v[i].key, m.v[i].value, 1);
    kv_map_clear(&m);

    json_t *bad = fixture_json("svc-lb-local.json");
    fixture_annotate(bad, "drover.io/dns-name", "not a dns name");
    put(svcs, json_deep_copy(bad), "50");
    build(1, &m, &res, &sk);
    ck_assert_uint_eq(res.skipped_services, 2); /* infra/bad and shop/web */
    ck_assert_uint_eq(res.kept_services, 2);
    ck_assert_uint_eq(res.services, 2);
    ck_assert_str_eq(sk.key, "Service shop/web");
    ck_assert_str_eq(sk.reason, "InvalidAnnotation");
    ck_assert_int_eq(kv_layout_diff(&layout, &m, &current, true, &ops), 0);
    /* neither rewritten nor deleted: drover and KSE keys of both ports */
    ck_assert_uint_eq(ops.n, 0);
    kv_ops_clear(&ops);
    kv_map_clear(&m);

    /* after a restart (empty state) the drover keys are still kept */
    export_state_free(state);
    state = export_state_new();
    build(2, &m, &res, &sk);
    ck_assert_int_eq(kv_layout_diff(&layout, &m, &current, true, &ops), 0);
    for (size_t i = 0; i < ops.n; i++)
        ck_assert_msg(strncmp(ops.v[i].key, "drover/v1/", 10) != 0, "%s touched", ops.v[i].key);
    /* only the KSE keys, unknown without the last good state, go */
    ck_assert_uint_eq(ops.deletes, 2);
    ck_assert_uint_eq(ops.sets, 0);
    kv_ops_clear(&ops);
    kv_map_clear(&m);

    /* fixed again: written normally */
    fixture_annotate(bad, "drover.io/dns-name", "shop.example.net");
    put(svcs, json_deep_copy(bad), "51");
    build(3, &m, &res, &sk);
    ck_assert_uint_eq(res.kept_services, 1); /* only infra/bad */
    ck_assert_ptr_nonnull(strstr(
        kv_map_find(&m, "drover/v1/kube/dc1/services/shop/web/http")->value, "shop.example.net"));
    kv_map_clear(&m);

    /* opting out removes the entries, invalid or not */
    fixture_annotate(bad, "drover.io/exported", "false");
    put(svcs, json_deep_copy(bad), "52");
    build(4, &m, &res, &sk);
    ck_assert_int_eq(kv_layout_diff(&layout, &m, &current, true, &ops), 0);
    ck_assert_ptr_null(kv_map_find(&m, "drover/v1/kube/dc1/services/shop/web/http"));
    size_t web_deletes = 0;
    for (size_t i = 0; i < ops.n; i++)
        web_deletes += ops.v[i].kind == KV_OP_DELETE && strstr(ops.v[i].key, "web") != NULL;
    ck_assert_uint_eq(web_deletes, 4);
    kv_ops_clear(&ops);
    kv_map_clear(&m);
    kv_map_clear(&current);
    json_decref(bad);
}
END_TEST

static bool node_eligible(const struct kv_map *m, const char *name)
{
    char *key = kv_key_kube_node("drover/v1/", "dc1", name);
    const struct kv_entry *e = kv_map_find(m, key);
    free(key);
    ck_assert_ptr_nonnull(e);
    return strstr(e->value, "\"eligible\":true") != NULL;
}

START_TEST(test_grace_across_builds)
{
    struct kv_map m;
    struct export_build_result res;
    struct skips sk = {0};
    build(0, &m, &res, &sk);
    ck_assert(node_eligible(&m, "n1"));
    kv_map_clear(&m);

    json_t *down = node_named("n1");
    set_ready(down, "False");
    put(nodes, down, "30");
    build(1000, &m, &res, &sk);
    ck_assert(node_eligible(&m, "n1"));
    ck_assert_uint_eq(res.nodes_in_grace, 1);
    ck_assert_uint_eq(res.eligible_nodes, 2);
    ck_assert_int_eq(res.recheck_at, 31000);
    const struct kv_entry *e = kv_map_find(&m, "kse/nodes/dc1");
    ck_assert_ptr_nonnull(strstr(e->value, "\"Name\":\"n1\""));
    kv_map_clear(&m);

    build(30999, &m, &res, &sk);
    ck_assert(node_eligible(&m, "n1"));
    kv_map_clear(&m);
    build(31000, &m, &res, &sk);
    ck_assert(!node_eligible(&m, "n1"));
    ck_assert_uint_eq(res.nodes_in_grace, 0);
    ck_assert_uint_eq(res.eligible_nodes, 1);
    ck_assert_int_eq(res.recheck_at, INT64_MAX);
    e = kv_map_find(&m, "kse/nodes/dc1");
    ck_assert_ptr_null(strstr(e->value, "\"Name\":\"n1\""));
    kv_map_clear(&m);

    /* a deleted node's grace state goes with it */
    json_t *gone = node_named("n2");
    struct kube_event ev = {.type = KUBE_EVENT_DELETED, .object = gone};
    ck_assert_int_eq(kube_store_apply(nodes, &ev), 1);
    json_decref(gone);
    build(40000, &m, &res, &sk);
    ck_assert_uint_eq(export_state_nodes(state), 2);
    ck_assert_ptr_null(kv_map_find(&m, "drover/v1/kube/dc1/nodes/n2"));
    kv_map_clear(&m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("export_build");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_build_counts_and_noop);
    tcase_add_test(tc, test_bad_node_name_not_counted);
    tcase_add_test(tc, test_grace_across_builds);
    tcase_add_test(tc, test_service_cache_by_resource_version);
    tcase_add_test(tc, test_invalid_version_keeps_last_good);
    suite_add_tcase(s, tc);
    return suite_main_run(s);
}
