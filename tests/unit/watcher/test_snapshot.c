/* SPDX-License-Identifier: Apache-2.0 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kv_key.h"
#include "snapshot.h"
#include "template.h"
#include "../common/suite_main.h"

static const char *const clusters[] = {"prod-a"};
static const struct kv_model_opts opts = {
    .root = "drover/v1/",
    .haproxy_cluster = "edge",
    .kube_clusters = clusters,
    .n_kube_clusters = 1,
};

#define NOW 1795438800 /* 2026-11-23T13:00:00Z */

static const struct snapshot_render_opts ro = {
    .haproxy_cluster = "edge",
    .stats_socket = "/run/drover/web.sock",
    .server_state_file = "/var/lib/drover/web.state",
    .maxconn = 1000,
    .agent_addr = "127.0.0.1",
    .agent_port = 5555,
    .agent_inter_ms = 2000,
    .timeout_connect_ms = 5000,
    .timeout_client_ms = 30000,
    .timeout_server_ms = 30000,
};

static const char *svc =
    "{\"template\":\"http\",\"frontends\":[{\"name\":\"fe_web\",\"bind\":[\"127.0.0.1:8080\"],"
    "\"routes\":[{\"host\":\"www.example.com\",\"backend\":\"be_web\"},{\"host\":\"example.com\","
    "\"backend\":\"be_web\"}],\"default_backend\":\"be_static\"}],\"backends\":[{\"name\":"
    "\"be_web\",\"slots\":4,\"kube\":[{\"cluster\":\"prod-a\",\"namespace\":\"default\","
    "\"service\":\"web\",\"port\":\"http\"}]},{\"name\":\"be_static\",\"servers\":[{\"name\":"
    "\"s1\",\"address\":\"10.9.0.1\",\"port\":8080,\"weight\":20}],\"check\":{\"type\":\"none\"}}]"
    "}";

struct kvpair {
    const char *k, *v;
};

static struct snapshot *build_prev(const struct kvpair *kv, size_t n, const struct snapshot *prev)
{
    struct snapshot_entry *e = calloc(n, sizeof(*e));
    for (size_t i = 0; i < n; i++) {
        e[i].key = strdup(kv[i].k);
        e[i].value = strdup(kv[i].v);
        e[i].len = strlen(kv[i].v);
    }
    struct snapshot *s = NULL;
    ck_assert_int_eq(snapshot_build(&opts, e, n, NOW, prev, &s), 0);
    return s;
}

static struct snapshot *build(const struct kvpair *kv, size_t n)
{
    return build_prev(kv, n, NULL);
}

static const struct kvpair base[] = {
    {"drover/v1/haproxy/edge/services/web", NULL},
    {"drover/v1/kube/prod-a/services/default/web/http",
     "{\"node_port\":30080,\"health_check_port\":31999,\"health_check_path\":\"/healthz\"}"},
    {"drover/v1/kube/prod-a/nodes/n2", "{\"addresses\":[\"10.0.0.2\"],\"eligible\":true}"},
    {"drover/v1/kube/prod-a/nodes/n1", "{\"addresses\":[\"10.0.0.1\"],\"eligible\":true}"},
    {"drover/v1/kube/prod-a/nodes/n3", "{\"addresses\":[\"10.0.0.3\"],\"eligible\":false}"},
    {"drover/v1/kube/prod-a/nodes/n4", "{\"addresses\":[\"fd00::4\"],\"eligible\":true}"},
    {"drover/v1/maintenance/node/prod-a/n1", "{\"state\":\"drain\",\"reason\":\"disk swap\","
                                             "\"author\":\"alice\"}"},
    {"drover/v1/maintenance/addr/10.0.0.1", "{\"state\":\"ready\",\"weight\":50}"},
    {"drover/v1/maintenance/addr/10.0.0.2", "{\"state\":\"drain\"}"},
    {"drover/v1/maintenance/server/be_web/slot2", "{\"state\":\"maint\",\"reason\":\"x\"}"},
    {"drover/v1/maintenance/node/prod-a/n4",
     "{\"state\":\"maint\",\"expires\":\"2026-11-23T14:00:00Z\"}"},
};

static struct snapshot *build_base(void)
{
    struct kvpair kv[sizeof(base) / sizeof(base[0])];
    memcpy(kv, base, sizeof(base));
    kv[0].v = svc;
    return build(kv, sizeof(kv) / sizeof(kv[0]));
}

START_TEST(test_servers_from_eligible_nodes)
{
    struct snapshot *s = build_base();
    ck_assert_uint_eq(s->n_services, 1);
    const struct snapshot_backend *b = snapshot_backend(s, "be_web");
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_eq(b->n_servers, 3); /* n3 is not eligible */
    ck_assert_str_eq(b->servers[0].id, "10.0.0.1:30080");
    ck_assert_str_eq(b->servers[1].id, "10.0.0.2:30080");
    ck_assert_str_eq(b->servers[2].id, "[fd00::4]:30080");
    ck_assert_str_eq(b->servers[0].node, "n1");
    /* kube health check applied: healthCheckNodePort + path */
    ck_assert_int_eq(b->check_type, KVM_CHECK_HTTP);
    ck_assert_int_eq(b->check_port, 31999);
    ck_assert_str_eq(b->check_path, "/healthz");
    const struct snapshot_backend *st = snapshot_backend(s, "be_static");
    ck_assert_uint_eq(st->n_servers, 1);
    ck_assert_str_eq(st->servers[0].static_name, "s1");
    ck_assert_int_eq(st->check_type, KVM_CHECK_OFF);
    snapshot_free(s);
}
END_TEST

/* A static server and a kube node at the same address:port are one server
 * (the static one, added first), however many nodes and in any order. */
START_TEST(test_duplicate_servers_keep_the_first)
{
    static const char *dup_svc =
        "{\"template\":\"tcp\",\"frontends\":[{\"name\":\"fe\",\"bind\":[\"127.0.0.1:81\"],"
        "\"default_backend\":\"be\"}],\"backends\":[{\"name\":\"be\",\"servers\":[{\"name\":"
        "\"st\",\"address\":\"10.0.0.2\",\"port\":30080,\"weight\":7}],\"kube\":[{"
        "\"cluster\":\"prod-a\",\"namespace\":\"default\",\"service\":\"web\",\"port\":"
        "\"http\"}]}]}";
    struct kvpair kv[] = {
        {"drover/v1/haproxy/edge/services/dup", dup_svc},
        {"drover/v1/kube/prod-a/services/default/web/http", "{\"node_port\":30080}"},
        {"drover/v1/kube/prod-a/nodes/n3", "{\"addresses\":[\"10.0.0.3\"],\"eligible\":true}"},
        {"drover/v1/kube/prod-a/nodes/n2", "{\"addresses\":[\"10.0.0.2\"],\"eligible\":true}"},
        {"drover/v1/kube/prod-a/nodes/n1", "{\"addresses\":[\"10.0.0.1\"],\"eligible\":true}"},
        {"drover/v1/kube/prod-a/nodes/n2b", "{\"addresses\":[\"10.0.0.2\"],\"eligible\":true}"},
    };
    struct snapshot *s = build(kv, sizeof(kv) / sizeof(kv[0]));
    const struct snapshot_backend *b = snapshot_backend(s, "be");
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_eq(b->n_servers, 3);
    ck_assert_str_eq(b->servers[0].id, "10.0.0.1:30080");
    ck_assert_str_eq(b->servers[1].id, "10.0.0.2:30080");
    ck_assert_str_eq(b->servers[2].id, "10.0.0.3:30080");
    ck_assert_ptr_nonnull(b->servers[1].static_name);
    ck_assert_str_eq(b->servers[1].static_name, "st");
    ck_assert_int_eq(b->servers[1].weight, 7);
    ck_assert_ptr_null(b->servers[1].node);
    snapshot_free(s);
}
END_TEST

/* An unchanged node reuses the decoded record of the snapshot in force:
 * the model is the one a fresh decode gives, node by node. */
static void assert_same_nodes(const struct kv_model *a, const struct kv_model *b)
{
    ck_assert_uint_eq(a->n_nodes, b->n_nodes);
    for (size_t i = 0; i < a->n_nodes; i++) {
        ck_assert_str_eq(a->nodes[i].cluster, b->nodes[i].cluster);
        ck_assert_str_eq(a->nodes[i].name, b->nodes[i].name);
        ck_assert_int_eq(a->nodes[i].eligible, b->nodes[i].eligible);
        ck_assert_uint_eq(a->nodes[i].n_addresses, b->nodes[i].n_addresses);
        for (size_t j = 0; j < a->nodes[i].n_addresses; j++)
            ck_assert_str_eq(a->nodes[i].addresses[j], b->nodes[i].addresses[j]);
    }
}

START_TEST(test_unchanged_nodes_reused)
{
    struct snapshot *prev = build_base();
    struct kvpair kv[sizeof(base) / sizeof(base[0]) + 1];
    memcpy(kv, base, sizeof(base));
    kv[0].v = svc;
    /* n1 changes (out), n3 comes back, n5 is new, the rest stays */
    kv[3].v = "{\"addresses\":[\"10.0.0.1\"],\"eligible\":false}";
    kv[4].v = "{\"addresses\":[\"10.0.0.3\"],\"eligible\":true}";
    size_t n = sizeof(base) / sizeof(base[0]);
    kv[n].k = "drover/v1/kube/prod-a/nodes/n5";
    kv[n].v = "{\"addresses\":[\"10.0.0.5\",\"fd00::5\"],\"eligible\":true}";
    struct snapshot *reused = build_prev(kv, n + 1, prev);
    struct snapshot *fresh = build_prev(kv, n + 1, NULL);
    ck_assert_uint_eq(reused->inputs_hash, fresh->inputs_hash);
    assert_same_nodes(&reused->model, &fresh->model);
    const struct snapshot_backend *b = snapshot_backend(reused, "be_web");
    ck_assert_uint_eq(b->n_servers, 4); /* n2, n3, n4, n5 */
    ck_assert_str_eq(b->servers[0].id, "10.0.0.2:30080");
    /* a node that was bad keeps being decoded (and counted) */
    kv[5].v = "{\"addresses\":\"nope\"}";
    struct snapshot *bad = build_prev(kv, n + 1, NULL);
    uint64_t bad_kube = bad->model.bad[KVM_PREFIX_KUBE];
    ck_assert_uint_ge(bad_kube, 1);
    struct snapshot *again = build_prev(kv, n + 1, bad);
    ck_assert_uint_eq(again->model.bad[KVM_PREFIX_KUBE], bad_kube);
    assert_same_nodes(&again->model, &bad->model);
    snapshot_free(again);
    snapshot_free(bad);
    snapshot_free(fresh);
    snapshot_free(reused);
    snapshot_free(prev);
}
END_TEST

/* What a build remembers per entry (hash share, node record) carries
 * through a chain of builds, also over a bad value that fell back to its
 * last good one: every link equals a fresh build of the same inputs. */
START_TEST(test_chain_equals_fresh)
{
    struct kvpair kv[sizeof(base) / sizeof(base[0])];
    size_t n = sizeof(base) / sizeof(base[0]);
    memcpy(kv, base, sizeof(base));
    kv[0].v = svc;
    const char *n1 = kv[3].v;
    const char *steps[] = {n1, "{\"addresses\":\"nope\"}", n1,
                           "{\"addresses\":[\"10.0.0.1\"],\"eligible\":false}", n1};
    struct snapshot *prev = build_prev(kv, n, NULL);
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        kv[3].v = steps[i];
        struct snapshot *next = build_prev(kv, n, prev);
        struct snapshot *fresh = build_prev(kv, n, NULL);
        bool fell_back = i == 1; /* the stored value is n1's last good one */
        if (!fell_back) {
            ck_assert_msg(next->inputs_hash == fresh->inputs_hash, "step %zu: hash differs", i);
            assert_same_nodes(&next->model, &fresh->model);
        } else {
            ck_assert_uint_eq(next->model.bad[KVM_PREFIX_KUBE], 1);
            assert_same_nodes(&next->model, &prev->model);
        }
        snapshot_free(fresh);
        snapshot_free(prev);
        prev = next;
    }
    snapshot_free(prev);
}
END_TEST

/* The node entries of kv (flat keys) moved to their shards, the first
 * `moved` of them; the moved keys are malloc'd into keys[]. */
static size_t shard_nodes(struct kvpair *kv, size_t n, size_t moved, char **keys)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k < moved; i++) {
        const char *node = strstr(kv[i].k, "/nodes/");
        if (!node)
            continue;
        keys[k] = kv_key_kube_node("drover/v1/", "prod-a", node + strlen("/nodes/"));
        kv[i].k = keys[k++];
    }
    return k;
}

/* The same nodes make the same snapshot in either layout, or half in
 * each (a fleet while its exporter moves to the shards), and a node in
 * both counts once, as its shard says. */
START_TEST(test_node_layouts_same_snapshot)
{
    size_t n = sizeof(base) / sizeof(base[0]);
    struct kvpair kv[sizeof(base) / sizeof(base[0]) + 1];
    char *keys[8] = {0};
    struct snapshot *flat = build_base();
    for (size_t moved = 1; moved <= 4; moved += 3) {
        memcpy(kv, base, sizeof(base));
        kv[0].v = svc;
        ck_assert_uint_eq(shard_nodes(kv, n, moved, keys), moved);
        struct snapshot *s = build(kv, n);
        ck_assert_uint_eq(s->inputs_hash, flat->inputs_hash);
        assert_same_nodes(&s->model, &flat->model);
        ck_assert_uint_eq(snapshot_backend(s, "be_web")->n_servers,
                          snapshot_backend(flat, "be_web")->n_servers);
        snapshot_free(s);
        for (size_t i = 0; i < moved; i++)
            free(keys[i]);
    }

    /* n2 in both: its shard (ineligible) wins over the flat entry */
    memcpy(kv, base, sizeof(base));
    kv[0].v = svc;
    kv[n].k = keys[0] = kv_key_kube_node("drover/v1/", "prod-a", "n2");
    kv[n].v = "{\"addresses\":[\"10.0.0.2\"],\"eligible\":false}";
    struct snapshot *both = build(kv, n + 1);
    ck_assert_uint_eq(both->model.n_nodes, flat->model.n_nodes);
    ck_assert_uint_eq(both->model.bad[KVM_PREFIX_KUBE], 0);
    ck_assert_uint_eq(snapshot_backend(both, "be_web")->n_servers,
                      snapshot_backend(flat, "be_web")->n_servers - 1);
    kv[2] = kv[n]; /* n2 only in its shard, ineligible: the same snapshot */
    struct snapshot *only = build(kv, n);
    ck_assert_uint_eq(both->inputs_hash, only->inputs_hash);
    ck_assert_uint_ne(both->inputs_hash, flat->inputs_hash);
    free(keys[0]);
    snapshot_free(only);
    snapshot_free(both);
    snapshot_free(flat);
}
END_TEST

START_TEST(test_inputs_hash_order_independent)
{
    struct kvpair kv[sizeof(base) / sizeof(base[0])], rev[sizeof(base) / sizeof(base[0])];
    size_t n = sizeof(base) / sizeof(base[0]);
    memcpy(kv, base, sizeof(base));
    kv[0].v = svc;
    for (size_t i = 0; i < n; i++)
        rev[i] = kv[n - 1 - i];
    struct snapshot *a = build(kv, n), *b = build(rev, n);
    ck_assert_uint_eq(a->inputs_hash, b->inputs_hash);
    kv[2].v = "{\"addresses\":[\"10.0.0.2\"],\"eligible\":false}";
    struct snapshot *c = build(kv, n);
    ck_assert_uint_ne(a->inputs_hash, c->inputs_hash);
    ck_assert_uint_eq(snapshot_backend(c, "be_web")->n_servers, 2);
    snapshot_free(a);
    snapshot_free(b);
    snapshot_free(c);
}
END_TEST

static const struct slot_assignment *fixed_slots(void *arg, const char *backend)
{
    return strcmp(backend, "be_web") == 0 ? arg : NULL;
}

/* An assignment with n slots holding keys occ[i] (NULL = free). */
static struct slot_assignment *mk_slots(struct slot_assignment *a, const char *const *occ, size_t n)
{
    a->nslots = n;
    a->slots = calloc(n, sizeof(*a->slots));
    for (size_t i = 0; i < n; i++) {
        a->slots[i].used = occ[i] != NULL;
        a->slots[i].srv.key = (char *)occ[i];
    }
    return a;
}

/* The shipped templates (haproxy-templates/), strict variables as the
 * watcher renders them. Caller frees with template_set_free. */
static struct template_set *shipped_templates(void)
{
    struct template_options to;
    struct template_set *set;
    struct template_error terr;
    template_options_init(&to);
    to.strict_variables = true;
    ck_assert_int_eq(template_set_new(&to, &set), 0);
    ck_assert_int_eq(template_set_load_dir(set, DROVER_TEMPLATE_DIR, &terr), 0);
    return set;
}

/* A service with "metrics": the template data names the frontend and its
 * binds, it is part of the structure (so adding it reloads), and the
 * shipped template renders the exporter frontend; without it, none. */
START_TEST(test_metrics_frontend)
{
    struct kvpair kv[sizeof(base) / sizeof(base[0])];
    memcpy(kv, base, sizeof(base));
    char *with = strdup(svc);
    with[strlen(with) - 1] = '\0'; /* drop the closing brace */
    char *value = NULL;
    ck_assert_int_ne(
        asprintf(&value, "%s,\"metrics\":{\"bind\":[\"127.0.0.1:8405\",\"[::1]:8406\"]}}", with),
        -1);
    kv[0].v = value;
    struct snapshot *s = build(kv, sizeof(kv) / sizeof(kv[0])), *plain = build_base();
    json_t *data = NULL, *structure = NULL, *plain_structure = NULL, *plain_data = NULL;
    ck_assert_int_eq(snapshot_service_json(s, &s->services[0], &ro, NULL, NULL, false, &data), 0);
    json_t *m = json_object_get(data, "metrics");
    ck_assert_str_eq(json_string_value(json_object_get(m, "name")), "drover_metrics");
    json_t *b1 = json_array_get(json_object_get(m, "binds"), 1);
    ck_assert_str_eq(json_string_value(json_object_get(b1, "addr")), "::1");
    ck_assert_int_eq(json_integer_value(json_object_get(b1, "port")), 8406);
    ck_assert_int_eq(snapshot_service_json(s, &s->services[0], &ro, NULL, NULL, true, &structure),
                     0);
    ck_assert_int_eq(
        snapshot_service_json(plain, &plain->services[0], &ro, NULL, NULL, true, &plain_structure),
        0);
    ck_assert_ptr_nonnull(json_object_get(structure, "metrics"));
    ck_assert_ptr_null(json_object_get(plain_structure, "metrics"));
    ck_assert(!json_equal(structure, plain_structure));

    struct template_set *set = shipped_templates();
    struct template_error terr;
    struct template_buf out = {0};
    ck_assert_int_eq(template_render(set, "tcp", data, &out, &terr), 0);
    ck_assert_ptr_nonnull(strstr(out.data, "frontend drover_metrics\n    mode http\n"));
    ck_assert_ptr_nonnull(strstr(out.data, "    bind 127.0.0.1:8405\n    bind [::1]:8406\n"));
    ck_assert_ptr_nonnull(
        strstr(out.data, "http-request use-service prometheus-exporter if { path /metrics }"));
    template_buf_free(&out);
    ck_assert_int_eq(
        snapshot_service_json(plain, &plain->services[0], &ro, NULL, NULL, false, &plain_data), 0);
    ck_assert_int_eq(template_render(set, "tcp", plain_data, &out, &terr), 0);
    ck_assert_ptr_null(strstr(out.data, "drover_metrics"));
    template_buf_free(&out);
    template_set_free(set);
    json_decref(data);
    json_decref(structure);
    json_decref(plain_structure);
    json_decref(plain_data);
    snapshot_free(s);
    snapshot_free(plain);
    free(value);
    free(with);
}
END_TEST

/* TLS: the frontend binds with its crt-list (named by its content under
 * the config dir; without a dir, crt FILE words), the entries are part of
 * the structure (a changed list reloads); a backend with server_tls
 * verifies its servers, one without keeps verify none. */
START_TEST(test_tls_render)
{
    static const char *tsvc =
        "{\"frontends\":[{\"name\":\"fe\",\"bind\":[\"127.0.0.1:8443\"],\"default_backend\":"
        "\"be_v\",\"tls\":{\"certs\":[\"/etc/drover/a.pem\",{\"file\":\"/etc/drover/b.pem\","
        "\"sni\":[\"b.example.com\",\"c.example.com\"],\"alpn\":[\"http/1.1\"]}]}}],"
        "\"backends\":[{\"name\":\"be_v\",\"servers\":[{\"name\":\"s1\",\"address\":\"10.9.0.1\","
        "\"port\":443}],\"server_tls\":{\"ca_file\":\"/etc/drover/ca.pem\",\"verify_name\":"
        "\"api.internal\"}},{\"name\":\"be_ca\",\"servers\":[{\"name\":\"s1\",\"address\":"
        "\"10.9.0.2\",\"port\":443}],\"server_tls\":{\"ca_file\":\"/etc/drover/ca.pem\"}}]}";
    struct kvpair kv[] = {{"drover/v1/haproxy/edge/services/web", tsvc}};
    struct snapshot *s = build(kv, 1);
    struct snapshot_render_opts rod = ro;
    rod.map_dir = "/etc/haproxy/drover";
    json_t *data = NULL, *nodir = NULL;
    ck_assert_uint_eq(s->n_services, 1);
    ck_assert_int_eq(snapshot_service_json(s, &s->services[0], &rod, NULL, NULL, false, &data), 0);
    ck_assert_int_eq(snapshot_service_json(s, &s->services[0], &ro, NULL, NULL, false, &nodir), 0);
    const struct kvm_frontend *f = &s->services[0].def->frontends[0];
    char *list = snapshot_crt_list_path(rod.map_dir, s->services[0].def, f);
    char *text = snapshot_crt_list_text(f);
    ck_assert_str_eq(text, "/etc/drover/a.pem\n/etc/drover/b.pem [alpn http/1.1] b.example.com "
                           "c.example.com\n");
    ck_assert_ptr_eq(strstr(list, "/etc/haproxy/drover/web.crt-lists/fe."), list);
    ck_assert_ptr_nonnull(strstr(list, ".crtlist"));

    struct template_set *set = shipped_templates();
    struct template_error terr;
    struct template_buf out = {0};
    char want[512];
    ck_assert_int_eq(template_render(set, "http", data, &out, &terr), 0);
    snprintf(want, sizeof(want), "bind 127.0.0.1:8443 ssl crt-list %s alpn h2,http/1.1\n", list);
    ck_assert_msg(strstr(out.data, want), "%s", out.data);
    ck_assert_ptr_nonnull(strstr(out.data, " ssl verify required ca-file /etc/drover/ca.pem sni "
                                           "str(api.internal) verifyhost api.internal check-sni "
                                           "api.internal"));
    ck_assert_ptr_nonnull(strstr(out.data, " ssl verify required ca-file /etc/drover/ca.pem\n"));
    ck_assert_ptr_null(strstr(out.data, "verify none"));
    template_buf_free(&out);
    ck_assert_int_eq(template_render(set, "http", nodir, &out, &terr), 0);
    ck_assert_ptr_nonnull(
        strstr(out.data, "bind 127.0.0.1:8443 ssl crt /etc/drover/a.pem crt /etc/drover/b.pem "
                         "alpn h2,http/1.1\n"));
    template_buf_free(&out);

    /* another SNI filter: another list file, another structure */
    char *other = strdup(tsvc);
    memcpy(strstr(other, "c.example.com"), "d", 1);
    struct kvpair kv2[] = {{"drover/v1/haproxy/edge/services/web", other}};
    struct snapshot *s2 = build(kv2, 1);
    json_t *st1 = NULL, *st2 = NULL;
    ck_assert_int_eq(snapshot_service_json(s, &s->services[0], &rod, NULL, NULL, true, &st1), 0);
    ck_assert_int_eq(snapshot_service_json(s2, &s2->services[0], &rod, NULL, NULL, true, &st2), 0);
    ck_assert(!json_equal(st1, st2));
    char *list2 = snapshot_crt_list_path(rod.map_dir, s2->services[0].def,
                                         &s2->services[0].def->frontends[0]);
    ck_assert_str_ne(list, list2);

    template_set_free(set);
    json_decref(data);
    json_decref(nodir);
    json_decref(st1);
    json_decref(st2);
    free(list);
    free(list2);
    free(text);
    free(other);
    snapshot_free(s);
    snapshot_free(s2);
}
END_TEST

/* prefer_local_zone: the node of the watcher's zone in the first half of
 * the slots, the others (another zone, no zone) in the second, rendered
 * `backup`, and `option allbackups`; also without an assignment. */
START_TEST(test_zone_pools)
{
    static const char *zsvc =
        "{\"frontends\":[{\"name\":\"fe\",\"bind\":[\"127.0.0.1:8080\"],\"default_backend\":"
        "\"be_web\"}],\"backends\":[{\"name\":\"be_web\",\"slots\":2,\"prefer_local_zone\":true,"
        "\"kube\":[{\"cluster\":\"prod-a\",\"namespace\":\"default\",\"service\":\"web\","
        "\"port\":\"http\"}]}]}";
    const struct kvpair kv[] = {
        {"drover/v1/haproxy/edge/services/web", zsvc},
        {"drover/v1/kube/prod-a/services/default/web/http", "{\"node_port\":30080}"},
        {"drover/v1/kube/prod-a/nodes/n1",
         "{\"addresses\":[\"10.0.0.1\"],\"eligible\":true,\"zone\":\"za\"}"},
        {"drover/v1/kube/prod-a/nodes/n2",
         "{\"addresses\":[\"10.0.0.2\"],\"eligible\":true,\"zone\":\"zb\"}"},
        {"drover/v1/kube/prod-a/nodes/n4", "{\"addresses\":[\"fd00::4\"],\"eligible\":true}"},
        {"drover/v1/kube/prod-a/nodes/n5",
         "{\"addresses\":[\"10.0.0.5\"],\"eligible\":true,\"zone\":\"bad zone\"}"},
    };
    struct kv_model_opts zo = opts;
    zo.zone = "za";
    size_t n = sizeof(kv) / sizeof(kv[0]);
    struct snapshot_entry *e = calloc(n, sizeof(*e));
    for (size_t i = 0; i < n; i++) {
        e[i].key = strdup(kv[i].k);
        e[i].value = strdup(kv[i].v);
        e[i].len = strlen(kv[i].v);
    }
    struct snapshot *s = NULL;
    ck_assert_int_eq(snapshot_build(&zo, e, n, NOW, NULL, &s), 0);
    ck_assert_uint_eq(s->model.bad[KVM_PREFIX_KUBE], 1); /* n5's zone is not a name */
    const struct snapshot_backend *b = snapshot_backend(s, "be_web");
    ck_assert_uint_eq(b->slots, 4);
    ck_assert(b->servers[0].local && !b->servers[1].local && !b->servers[2].local);
    json_t *data = NULL;
    ck_assert_int_eq(snapshot_service_json(s, &s->services[0], &ro, NULL, NULL, false, &data), 0);
    struct template_set *set = shipped_templates();
    struct template_error terr;
    struct template_buf out = {0};
    ck_assert_int_eq(template_render(set, "http", data, &out, &terr), 0);
    ck_assert_ptr_nonnull(strstr(out.data, "    option allbackups\n"));
    ck_assert_ptr_nonnull(strstr(out.data, "server slot1 10.0.0.1:30080 id 1 weight"));
    ck_assert_ptr_nonnull(strstr(out.data, "server slot2 0.0.0.0:1 id 2 disabled"));
    ck_assert_ptr_nonnull(strstr(out.data, "server slot3 10.0.0.2:30080 id 3 weight 100 backup"));
    ck_assert_ptr_nonnull(strstr(out.data, "server slot4 [fd00::4]:30080 id 4 weight 100 backup"));
    ck_assert_ptr_null(strstr(out.data, "10.0.0.1:30080 id 1 weight 100 backup"));
    template_buf_free(&out);
    template_set_free(set);
    json_decref(data);
    snapshot_free(s);
}
END_TEST

START_TEST(test_template_data_and_render)
{
    struct snapshot *s = build_base();
    json_t *data = NULL, *structure = NULL, *structure2 = NULL;
    ck_assert_int_eq(snapshot_service_json(s, &s->services[0], &ro, NULL, NULL, false, &data), 0);
    json_t *be = json_array_get(json_object_get(data, "backends"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(be, "name")), "be_web");
    json_t *servers = json_object_get(be, "servers");
    ck_assert_uint_eq(json_array_size(servers), 4);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(servers, 0), "name")),
                     "slot1");
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(servers, 3), "addr")),
                     "0.0.0.0");
    ck_assert_ptr_null(json_object_get(json_array_get(servers, 3), "enabled"));
    /* routes grouped per backend */
    json_t *routes =
        json_object_get(json_array_get(json_object_get(data, "frontends"), 0), "routes");
    ck_assert_uint_eq(json_array_size(routes), 1);
    ck_assert_uint_eq(json_array_size(json_object_get(json_array_get(routes, 0), "hosts")), 2);

    /* the shipped template renders it; haproxy -c runs in the integration tests */
    struct template_set *set = shipped_templates();
    struct template_error terr;
    struct template_buf out = {0};
    ck_assert_int_eq(template_render(set, "http", data, &out, &terr), 0);
    ck_assert_ptr_nonnull(strstr(out.data, "server slot1 10.0.0.1:30080 id 1 weight 100"));
    ck_assert_ptr_nonnull(strstr(out.data, "server slot3 [fd00::4]:30080 id 3 weight 100"));
    ck_assert_ptr_nonnull(strstr(out.data, "server slot4 0.0.0.0:1 id 4 disabled"));
    ck_assert_ptr_nonnull(strstr(out.data, "agent-send \"be_web/slot2\\n\""));
    ck_assert_ptr_nonnull(strstr(out.data, "port 31999"));
    ck_assert_ptr_nonnull(strstr(out.data, "use_backend be_web if { hdr(host),field(1,:) -i "
                                           "www.example.com example.com }"));
    template_buf_free(&out);
    template_set_free(set);

    /* structure render: does not depend on which server sits where */
    const char *occ[] = {NULL, "[fd00::4]:30080", "10.0.0.1:30080", "10.0.0.2:30080"};
    struct slot_assignment sl;
    mk_slots(&sl, occ, 4);
    ck_assert_int_eq(snapshot_service_json(s, &s->services[0], &ro, NULL, NULL, true, &structure),
                     0);
    ck_assert_int_eq(
        snapshot_service_json(s, &s->services[0], &ro, fixed_slots, &sl, true, &structure2), 0);
    ck_assert(json_equal(structure, structure2));
    json_decref(structure2);
    /* more slots: structure changes */
    const char *occ5[] = {NULL, "[fd00::4]:30080", "10.0.0.1:30080", "10.0.0.2:30080", NULL};
    struct slot_assignment sl5;
    mk_slots(&sl5, occ5, 5);
    ck_assert_int_eq(
        snapshot_service_json(s, &s->services[0], &ro, fixed_slots, &sl5, true, &structure2), 0);
    ck_assert(!json_equal(structure, structure2));
    json_decref(structure2);
    /* too few slots for the servers, none free */
    const char *occ2[] = {"10.0.0.1:30080", "10.0.0.2:30080"};
    struct slot_assignment sl2;
    mk_slots(&sl2, occ2, 2);
    ck_assert_int_eq(
        snapshot_service_json(s, &s->services[0], &ro, fixed_slots, &sl2, false, &structure2),
        -ENOSPC);
    free(sl.slots);
    free(sl5.slots);
    free(sl2.slots);
    json_decref(structure);
    json_decref(data);
    snapshot_free(s);
}
END_TEST

START_TEST(test_agent_state)
{
    struct snapshot *s = build_base();
    const char *occ[] = {"10.0.0.1:30080", "10.0.0.2:30080", NULL, "[fd00::4]:30080"};
    struct slot_assignment sl;
    mk_slots(&sl, occ, 4);
    char *text = NULL;
    ck_assert_int_eq(snapshot_agent_state(s, fixed_slots, &sl, NOW, &text), 0);
    json_error_t jerr;
    json_t *root = json_loads(text, 0, &jerr);
    ck_assert_ptr_nonnull(root);
    /* canonical: the bytes jansson writes for it (compact, keys sorted) */
    char *canonical = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
    ck_assert_str_eq(text, canonical);
    free(canonical);
    ck_assert_int_eq(json_integer_value(json_object_get(root, "version")), 1);
    ck_assert_str_eq(json_string_value(json_object_get(root, "generated")), "2026-11-23T13:00:00Z");
    json_t *servers = json_object_get(root, "servers");
    /* slot 1 = 10.0.0.1 on n1: addr entry (ready, 50%) beats node drain */
    json_t *e = json_object_get(servers, "be_web/slot1");
    ck_assert_str_eq(json_string_value(json_object_get(e, "admin")), "ready");
    ck_assert_int_eq(json_integer_value(json_object_get(e, "weight")), 50);
    /* slot 2: server entry (maint) beats addr drain */
    e = json_object_get(servers, "be_web/slot2");
    ck_assert_str_eq(json_string_value(json_object_get(e, "admin")), "maint");
    ck_assert_str_eq(json_string_value(json_object_get(e, "reason")), "x");
    /* no weight of its own: full weight, so an earlier 50 % does not stick */
    ck_assert_int_eq(json_integer_value(json_object_get(e, "weight")), 100);
    /* free slot */
    e = json_object_get(servers, "be_web/slot3");
    ck_assert_str_eq(json_string_value(json_object_get(e, "admin")), "maint");
    ck_assert_str_eq(json_string_value(json_object_get(e, "reason")), "free slot");
    /* node entry with expiry */
    e = json_object_get(servers, "be_web/slot4");
    ck_assert_str_eq(json_string_value(json_object_get(e, "admin")), "maint");
    ck_assert_str_eq(json_string_value(json_object_get(e, "expires")), "2026-11-23T14:00:00Z");
    /* static server without maintenance: ready */
    e = json_object_get(servers, "be_static/slot1");
    ck_assert_str_eq(json_string_value(json_object_get(e, "admin")), "ready");
    ck_assert_str_eq(json_string_value(json_object_get(e, "health")), "up");
    ck_assert_int_eq(json_integer_value(json_object_get(e, "weight")), 100);
    /* the default (servers not listed) owns the weight too */
    e = json_object_get(root, "default");
    ck_assert_str_eq(json_string_value(json_object_get(e, "admin")), "ready");
    ck_assert_int_eq(json_integer_value(json_object_get(e, "weight")), 100);
    json_decref(root);
    free(text);
    free(sl.slots);
    snapshot_free(s);
}
END_TEST

/* A removal held by the guard keeps servers the snapshot no longer has:
 * they stay occupied (rendered and "ready" for the agent), not free. */
START_TEST(test_held_servers_stay_occupied)
{
    struct snapshot *s = build_base();
    const char *occ[] = {"10.0.0.1:30080", NULL, "10.0.0.77:30080", NULL};
    struct slot_assignment sl;
    mk_slots(&sl, occ, 4);
    sl.slots[2].srv.address = "10.0.0.77";
    sl.slots[2].srv.port = 30080;
    sl.slots[2].srv.weight = 100;
    json_t *data = NULL;
    ck_assert_int_eq(snapshot_service_json(s, &s->services[0], &ro, fixed_slots, &sl, false, &data),
                     0);
    json_t *srv = json_array_get(
        json_object_get(json_array_get(json_object_get(data, "backends"), 0), "servers"), 2);
    ck_assert_str_eq(json_string_value(json_object_get(srv, "addr")), "10.0.0.77");
    ck_assert(json_is_true(json_object_get(srv, "enabled")));
    json_decref(data);
    char *text = NULL;
    ck_assert_int_eq(snapshot_agent_state(s, fixed_slots, &sl, NOW, &text), 0);
    json_t *root = json_loads(text, 0, NULL);
    json_t *e = json_object_get(json_object_get(root, "servers"), "be_web/slot3");
    ck_assert_str_eq(json_string_value(json_object_get(e, "admin")), "ready");
    json_decref(root);
    free(text);
    free(sl.slots);
    snapshot_free(s);
}
END_TEST

START_TEST(test_bad_entries_skipped)
{
    struct kvpair kv[] = {
        {"drover/v1/haproxy/edge/services/web", NULL},
        {"drover/v1/haproxy/edge/services/evil",
         "{\"frontends\":[{\"name\":\"fe\",\"bind\":[\"1.2.3.4:80\"],\"default_backend\":\"b\"}],"
         "\"backends\":[{\"name\":\"b\",\"servers\":[{\"name\":\"s\",\"address\":\"10.0.0.1\","
         "\"port\":80,\"weight\":\"100\\n  stats enable\"}]}]}"},
        /* duplicate backend name across services: second service skipped */
        {"drover/v1/haproxy/edge/services/zz",
         "{\"frontends\":[{\"name\":\"fe\",\"bind\":[\"1.2.3.4:81\"],\"default_backend\":"
         "\"be_web\"}],\"backends\":[{\"name\":\"be_web\",\"servers\":[{\"name\":\"s\","
         "\"address\":\"10.0.0.1\",\"port\":80}]}]}"},
        {"drover/v1/kube/prod-a/nodes/n1", "{\"addresses\":[\"10.0.0.1\"]}"},
    };
    kv[0].v = svc;
    struct snapshot *s = build(kv, 4);
    ck_assert_uint_eq(s->n_services, 1);
    ck_assert_str_eq(s->services[0].def->name, "web");
    ck_assert_uint_eq(s->model.bad[KVM_PREFIX_HAPROXY], 2);
    ck_assert_uint_eq(s->model.bad[KVM_PREFIX_KUBE], 1);
    ck_assert_uint_eq(s->skipped_services, 1);
    snapshot_free(s);
}
END_TEST

/* A live service whose definition turns bad keeps its last good value. */
START_TEST(test_bad_update_keeps_last_good)
{
    struct kvpair kv[] = {
        {"drover/v1/haproxy/edge/services/web", NULL},
        {"drover/v1/maintenance/addr/10.0.0.1", "{\"state\":\"drain\"}"},
    };
    kv[0].v = svc;
    struct snapshot *a = build(kv, 2);
    kv[0].v = "{\"frontends\":[{\"name\":\"fe\",\"bind\":[\"1.2.3.4:80\"],\"default_backend\":"
              "\"b\"}],\"backends\":[{\"name\":\"b\",\"balance\":\"x\\nstats enable\",\"servers\":"
              "[{\"name\":\"s\",\"address\":\"10.0.0.1\",\"port\":80}]}]}";
    kv[1].v = "{\"state\":\"sleep\"}";
    struct snapshot *b = build_prev(kv, 2, a);
    ck_assert_uint_eq(b->n_services, 1);
    ck_assert_ptr_nonnull(snapshot_backend(b, "be_web"));
    ck_assert_uint_eq(b->model.n_maint, 1);
    ck_assert_uint_eq(b->model.bad[KVM_PREFIX_HAPROXY], 1);
    ck_assert_uint_eq(b->model.bad[KVM_PREFIX_MAINTENANCE], 1);
    /* the stored entry is the good one, so a restart serves the same */
    ck_assert_str_eq(b->entries[0].value, svc);
    /* without a good previous value the entry is just skipped, counted once */
    struct snapshot *c = build_prev(kv, 2, NULL);
    ck_assert_uint_eq(c->n_services, 0);
    ck_assert_uint_eq(c->model.bad[KVM_PREFIX_HAPROXY], 1);
    struct snapshot *d = build_prev(kv, 2, c);
    ck_assert_uint_eq(d->model.bad[KVM_PREFIX_HAPROXY], 1);
    snapshot_free(a);
    snapshot_free(b);
    snapshot_free(c);
    snapshot_free(d);
}
END_TEST

START_TEST(test_persist_roundtrip)
{
    struct snapshot *s = build_base(), *l = NULL;
    struct slot_assignment sl;
    const char *occ[] = {"10.0.0.2:30080", NULL, "10.0.0.1:30080", "[fd00::4]:30080"};
    mk_slots(&sl, occ, 4);
    sl.slots[0].srv.address = "10.0.0.2";
    sl.slots[0].srv.port = 30080;
    sl.slots[0].srv.weight = 100;
    sl.slots[2].srv.address = "10.0.0.1";
    sl.slots[3].srv.address = "fd00::4";
    char dir[] = "/tmp/test_snapshot.XXXXXX", path[64], err[256] = "";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/snap.pb", dir);
    ck_assert_int_eq(snapshot_save(s, &opts, fixed_slots, &sl, path, NOW, err, sizeof(err)), 0);
    struct snapshot_saved_slots *saved = NULL;
    size_t n_saved = 0;
    ck_assert_int_eq(snapshot_load(path, &opts, NOW, &l, &saved, &n_saved, err, sizeof(err)), 0);
    ck_assert_uint_eq(l->inputs_hash, s->inputs_hash);
    ck_assert_uint_eq(l->n_entries, s->n_entries);
    ck_assert_uint_eq(snapshot_backend(l, "be_web")->n_servers, 3);
    ck_assert_uint_eq(n_saved, 1);
    ck_assert_str_eq(saved[0].backend, "be_web");
    ck_assert_uint_eq(saved[0].a.nslots, 4);
    ck_assert(saved[0].a.slots[0].used && !saved[0].a.slots[1].used);
    ck_assert_str_eq(saved[0].a.slots[0].srv.key, "10.0.0.2:30080");
    ck_assert_str_eq(saved[0].a.slots[0].srv.address, "10.0.0.2");
    ck_assert_int_eq(saved[0].a.slots[0].srv.port, 30080);
    ck_assert_str_eq(saved[0].a.slots[3].srv.key, "[fd00::4]:30080");
    snapshot_saved_slots_free(saved, n_saved);
    snapshot_free(l);

    /* garbage and missing files are refused with a reason */
    FILE *f = fopen(path, "w");
    fputs("not a protobuf \xff\xff\xff", f);
    fclose(f);
    ck_assert_int_eq(snapshot_load(path, &opts, NOW, &l, &saved, &n_saved, err, sizeof(err)),
                     -EBADMSG);
    ck_assert_ptr_nonnull(strstr(err, path));
    unlink(path);
    ck_assert_int_eq(snapshot_load(path, &opts, NOW, &l, &saved, &n_saved, err, sizeof(err)),
                     -ENOENT);
    rmdir(dir);
    free(sl.slots);
    snapshot_free(s);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("snapshot");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_servers_from_eligible_nodes);
    tcase_add_test(tc, test_inputs_hash_order_independent);
    tcase_add_test(tc, test_node_layouts_same_snapshot);
    tcase_add_test(tc, test_duplicate_servers_keep_the_first);
    tcase_add_test(tc, test_template_data_and_render);
    tcase_add_test(tc, test_metrics_frontend);
    tcase_add_test(tc, test_tls_render);
    tcase_add_test(tc, test_zone_pools);
    tcase_add_test(tc, test_agent_state);
    tcase_add_test(tc, test_bad_entries_skipped);
    tcase_add_test(tc, test_held_servers_stay_occupied);
    tcase_add_test(tc, test_persist_roundtrip);
    tcase_add_test(tc, test_bad_update_keeps_last_good);
    tcase_add_test(tc, test_unchanged_nodes_reused);
    tcase_add_test(tc, test_chain_equals_fresh);
    suite_add_tcase(s, tc);
    return suite_main_run(s);
}
