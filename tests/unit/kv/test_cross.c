/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Cross-decoding: every record kind encoded by its writer (drover-exporter
 * through kv_layout, droverctl through its command code) is decoded with
 * drover-watcher's model and droverctl's model, and both see the same
 * thing: the same fields, the same servers per backend, the same
 * maintenance entry per server.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "director_feed.h"
#include "ctl_model.h"
#include "kv_audit.h"
#include "kv_key.h"
#include "kv_layout.h"
#include "kv_model.h"
#include "log.h"
#include "snapshot.h"
#include "../common/suite_main.h"

#define R   "drover/v1/"
#define NOW 1795957200

static const char *const clusters[] = {"dc1"};
static const struct kv_model_opts wopts = {
    .root = R, .haproxy_cluster = "edge", .kube_clusters = clusters, .n_kube_clusters = 1};

static json_t *jparse(const char *text)
{
    json_error_t je;
    json_t *v = json_loads(text, 0, &je);
    ck_assert_msg(v, "fixture JSON: %s", je.text);
    return v;
}

/* Exporter side: one LoadBalancer/Local Service with two ports and four
 * nodes (dual stack, ineligible, no address), through kv_layout. */
static void exporter_entries(struct kv_map *m)
{
    struct kv_layout l;
    ck_assert_int_eq(kv_layout_init(&l, R, "dc1", NULL), 0);
    kv_map_init(m);

    json_t *svc = jparse(
        "{\"metadata\":{\"name\":\"web\",\"namespace\":\"shop\",\"uid\":\"u1\","
        "\"annotations\":{\"drover.io/exported\":\"true\",\"drover.io/proxy-protocol\":\"true\","
        "\"drover.io/backend-protocol\":\"http\"}},"
        "\"spec\":{\"type\":\"LoadBalancer\",\"externalTrafficPolicy\":\"Local\","
        "\"healthCheckNodePort\":31999,\"ports\":[{\"name\":\"https\",\"port\":443,"
        "\"nodePort\":30443,\"protocol\":\"TCP\"},{\"name\":\"http\",\"port\":80,"
        "\"nodePort\":30080}]}}");
    struct export_options eo = {.cluster = "dc1"};
    struct export_record *recs;
    size_t n;
    struct kube_reason why;
    ck_assert_int_eq(kube_service_to_records(svc, &eo, &recs, &n, &why), 0);
    ck_assert_uint_eq(n, 2);
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(kv_layout_add_service(&l, m, &recs[i]), 0);
    export_records_free(recs, n);
    json_decref(svc);

    static const char *const nodes[] = {
        "{\"metadata\":{\"name\":\"n1\"},\"status\":{\"conditions\":[{\"type\":\"Ready\","
        "\"status\":\"True\"}],\"addresses\":[{\"type\":\"InternalIP\",\"address\":\"10.0.0.1\"},"
        "{\"type\":\"InternalIP\",\"address\":\"fd00::1\"}]}}",
        "{\"metadata\":{\"name\":\"n2\"},\"status\":{\"conditions\":[{\"type\":\"Ready\","
        "\"status\":\"True\"}],\"addresses\":[{\"type\":\"InternalIP\",\"address\":"
        "\"fd00:0:0::2\"}]}}",
        "{\"metadata\":{\"name\":\"n3\"},\"spec\":{\"unschedulable\":true},\"status\":{"
        "\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}],\"addresses\":[{\"type\":"
        "\"InternalIP\",\"address\":\"10.0.0.3\"}]}}",
        "{\"metadata\":{\"name\":\"n4\"},\"status\":{\"conditions\":[{\"type\":\"Ready\","
        "\"status\":\"True\"}],\"addresses\":[]}}",
    };
    struct node_record nr[4];
    struct node_options no = {0};
    for (size_t i = 0; i < 4; i++) {
        json_t *j = jparse(nodes[i]);
        ck_assert_int_eq(kube_node_to_record(j, &no, &nr[i], &why), 0);
        json_decref(j);
    }
    ck_assert_int_eq(kv_layout_add_nodes(&l, m, nr, 4), 0);
    for (size_t i = 0; i < 4; i++)
        node_record_clear(&nr[i]);

    struct kv_meta meta = {.exporter_version = "0.1.0", .last_full_sync_unix = NOW};
    ck_assert_int_eq(kv_map_put_take(m, kv_layout_meta_key(&l), kv_layout_meta_value(&l, &meta), 0),
                     0);
    kv_layout_clear(&l);
}

/* The operators' HAProxy service: kube web/https of dc1 + one static
 * server that shares n1's address. */
static const char *const haproxy_service =
    "{\"frontends\":[{\"name\":\"fe\",\"bind\":[\"0.0.0.0:443\"],\"default_backend\":\"be_web\"}],"
    "\"backends\":[{\"name\":\"be_web\",\"kube\":[{\"cluster\":\"dc1\",\"namespace\":\"shop\","
    "\"service\":\"web\",\"port\":\"https\"},{\"cluster\":\"dc1\",\"namespace\":\"shop\","
    "\"service\":\"web\",\"port\":\"https\"}],\"servers\":[{\"name\":\"static-1\",\"address\":"
    "\"10.0.0.1\",\"port\":8443}]}]}";

struct both {
    struct kv_model w;
    struct ctl_model c;
};

static void decode_both(struct both *b, const char *key, const char *value, int want_w, int want_c)
{
    char err[512] = "";
    size_t len = value ? strlen(value) : 0;
    int rc = kv_model_add(&b->w, &wopts, key, value, len, NOW, err, sizeof(err));
    ck_assert_msg(rc == want_w, "watcher %s: rc %d, want %d (%s)", key, rc, want_w, err);
    err[0] = '\0';
    rc = ctl_model_add(&b->c, R, "edge", key, value, len, 1, err, sizeof(err));
    ck_assert_msg(rc == want_c, "droverctl %s: rc %d, want %d (%s)", key, rc, want_c, err);
}

static const struct kvm_node *wnode(const struct kv_model *m, const char *name)
{
    for (size_t i = 0; i < m->n_nodes; i++)
        if (!strcmp(m->nodes[i].name, name))
            return &m->nodes[i];
    return NULL;
}

static const struct kvm_node *cnode(const struct ctl_model *m, const char *name)
{
    for (size_t i = 0; i < m->n_nodes; i++)
        if (!strcmp(m->nodes[i].name, name))
            return &m->nodes[i];
    return NULL;
}

static void assert_same_node(const struct kvm_node *a, const struct kvm_node *b)
{
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_str_eq(a->cluster, b->cluster);
    ck_assert_int_eq(a->eligible, b->eligible);
    ck_assert_uint_eq(a->n_addresses, b->n_addresses);
    for (size_t i = 0; i < a->n_addresses; i++)
        ck_assert_str_eq(a->addresses[i], b->addresses[i]);
}

START_TEST(test_exporter_records)
{
    struct kv_map m;
    struct both b;
    exporter_entries(&m);
    kv_model_init(&b.w);
    ctl_model_init(&b.c, NOW);
    size_t ports = 0, nodes = 0, meta = 0;
    for (size_t i = 0; i < m.n; i++) {
        struct kv_key k;
        kv_key_parse(R, m.v[i].key, &k);
        bool consumed = k.kind == KV_KEY_KUBE_SERVICE || k.kind == KV_KEY_KUBE_NODE;
        ports += k.kind == KV_KEY_KUBE_SERVICE;
        nodes += k.kind == KV_KEY_KUBE_NODE;
        meta += k.kind == KV_KEY_KUBE_META;
        decode_both(&b, m.v[i].key, m.v[i].value, consumed, consumed);
    }
    ck_assert_uint_eq(ports, 2);
    ck_assert_uint_eq(nodes, 4);
    ck_assert_uint_eq(meta, 1);
    kv_model_finish(&b.w);

    /* service ports: same fields in both */
    ck_assert_uint_eq(b.w.n_kube_services, 2);
    ck_assert_uint_eq(b.c.n_ports, 2);
    for (size_t i = 0; i < b.c.n_ports; i++) {
        const struct kvm_kube_service *c = &b.c.ports[i];
        const struct kvm_kube_service *w =
            kv_model_kube_service(&b.w, c->cluster, c->namespace, c->service, c->port_name);
        ck_assert_ptr_nonnull(w);
        ck_assert_uint_eq(w->node_port, c->node_port);
        ck_assert_uint_eq(w->health_check_port, 31999);
        ck_assert_uint_eq(c->health_check_port, 31999);
        ck_assert_str_eq(w->health_check_path, "/healthz");
        ck_assert_str_eq(c->health_check_path, "/healthz");
        ck_assert(w->proxy_protocol && c->proxy_protocol);
    }
    const struct kvm_kube_service *https =
        kv_model_kube_service(&b.w, "dc1", "shop", "web", "https");
    ck_assert_ptr_nonnull(https);
    ck_assert_uint_eq(https->node_port, 30443);

    /* nodes: the one rule (addresses in order, first = server address) */
    const char *names[] = {"n1", "n2", "n3", "n4"};
    for (size_t i = 0; i < 4; i++)
        assert_same_node(wnode(&b.w, names[i]), cnode(&b.c, names[i]));
    ck_assert_str_eq(kvm_node_server_address(wnode(&b.w, "n1")), "10.0.0.1");
    ck_assert_str_eq(kvm_node_server_address(wnode(&b.w, "n2")), "fd00::2");
    ck_assert(!wnode(&b.w, "n3")->eligible);
    ck_assert(!wnode(&b.w, "n4")->eligible);
    ck_assert_ptr_null(kvm_node_server_address(wnode(&b.w, "n4")));
    ck_assert_uint_eq(b.w.bad[KVM_PREFIX_KUBE], 0);
    ck_assert_uint_eq(b.c.bad, 0);

    kv_model_clear(&b.w);
    ctl_model_clear(&b.c);
    kv_map_clear(&m);
}
END_TEST

/* Entries of every writer, as a snapshot input list. */
struct inputs {
    struct snapshot_entry *e;
    size_t n;
};

static void input(struct inputs *in, const char *key, const char *value)
{
    in->e = realloc(in->e, (in->n + 1) * sizeof(*in->e));
    ck_assert_ptr_nonnull(in->e);
    in->e[in->n++] = (struct snapshot_entry){strdup(key), strdup(value), strlen(value)};
}

/* droverctl's maintenance value for verb on id. */
static char *ctl_value(enum ctl_verb verb, const char *id, int weight, int64_t ttl_ms)
{
    struct ctl_command cmd = {
        .verb = verb, .weight = weight, .ttl_ms = ttl_ms, .reason = "disk swap"};
    json_t *v = NULL;
    ck_assert_int_eq(ctl_maint_next(&cmd, id, NULL, "alice", NOW, &v), 1);
    char *text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(v);
    return text;
}

struct want_entry {
    const char *id;
    enum ctl_verb verb;
    int weight;
};

START_TEST(test_servers_and_maintenance_agree)
{
    struct kv_map m;
    struct inputs in = {0};
    struct ctl_model c;
    char err[512];

    exporter_entries(&m);
    for (size_t i = 0; i < m.n; i++)
        input(&in, m.v[i].key, m.v[i].value);
    kv_map_clear(&m);
    input(&in, R "haproxy/edge/services/web", haproxy_service);

    /* maintenance, written by droverctl: node < addr < server */
    static const struct want_entry ents[] = {
        {"node/dc1/n1", CTL_VERB_DRAIN, -1},
        {"addr/fd00:0::2", CTL_VERB_MAINT, -1},
        {"server/be_web/static-1", CTL_VERB_WEIGHT, 50},
        {"addr/10.0.0.1", CTL_VERB_WEIGHT, 0},
    };
    for (size_t i = 0; i < sizeof(ents) / sizeof(ents[0]); i++) {
        struct ctl_target t;
        ck_assert_int_eq(ctl_target_from_id(ents[i].id, &t), 0);
        char key[700];
        snprintf(key, sizeof(key), R "maintenance/%s", t.id);
        char *v = ctl_value(ents[i].verb, t.id, ents[i].weight, 3600 * 1000);
        input(&in, key, v);
        /* droverctl reads back what it wrote */
        struct ctl_maint e;
        ck_assert_int_eq(ctl_maint_parse(t.id, v, strlen(v), &e, err, sizeof(err)), 0);
        ck_assert_int_eq(e.expires_unix, NOW + 3600);
        ck_assert_str_eq(e.reason, "disk swap");
        ctl_maint_clear(&e);
        free(v);
    }

    ctl_model_init(&c, NOW);
    for (size_t i = 0; i < in.n; i++)
        ck_assert_int_ge(ctl_model_add(&c, R, "edge", in.e[i].key, in.e[i].value, in.e[i].len, 1,
                                       err, sizeof(err)),
                         0);
    struct snapshot *s = NULL;
    ck_assert_int_eq(snapshot_build(&wopts, in.e, in.n, NOW, NULL, &s), 0);
    ck_assert_uint_eq(s->model.bad[KVM_PREFIX_HAPROXY] + s->model.bad[KVM_PREFIX_KUBE] +
                          s->model.bad[KVM_PREFIX_MAINTENANCE],
                      0);
    ck_assert_uint_eq(s->model.n_maint, 4);

    /* the same servers: static-1 10.0.0.1:8443, n1 10.0.0.1:30443, n2
     * [fd00::2]:30443 (the kube reference listed twice counts once; n3 is
     * cordoned, n4 has no address) */
    const struct snapshot_backend *sb = snapshot_backend(s, "be_web");
    ck_assert_ptr_nonnull(sb);
    ck_assert_uint_eq(sb->n_servers, 3);
    ck_assert_str_eq(sb->servers[0].id, "10.0.0.1:30443");
    ck_assert_str_eq(sb->servers[1].id, "10.0.0.1:8443");
    ck_assert_str_eq(sb->servers[2].id, "[fd00::2]:30443");
    ck_assert_uint_eq(c.n_backends, 1);
    struct ctl_share share;
    ctl_model_backend_share(&c, &c.backends[0], NULL, &share);
    ck_assert_uint_eq(share.total, sb->n_servers);

    /* the same entry per server: static-1 its server entry (weight 50, in
     * service), n1's server the addr entry (weight 0: out) over the node
     * drain, n2 its addr entry (maint: out) */
    const struct kvm_maint *x0 = snapshot_maint_for(s, "be_web", "slot1", &sb->servers[0]);
    const struct kvm_maint *x1 = snapshot_maint_for(s, "be_web", "slot2", &sb->servers[1]);
    const struct kvm_maint *x2 = snapshot_maint_for(s, "be_web", "slot3", &sb->servers[2]);
    ck_assert(x0 && x0->kind == KVM_MAINT_ADDR && x0->weight == 0);
    ck_assert(x1 && x1->kind == KVM_MAINT_SERVER && x1->weight == 50);
    ck_assert(x2 && x2->kind == KVM_MAINT_ADDR && x2->admin == KVM_ADMIN_MAINT);
    ck_assert_str_eq(x2->a, "fd00::2");
    size_t out = 0;
    for (size_t i = 0; i < sb->n_servers; i++) {
        const struct kvm_maint *x = snapshot_maint_for(s, "be_web", NULL, &sb->servers[i]);
        out += x && kvm_maint_takes_out(x->admin, x->weight);
    }
    ck_assert_uint_eq(share.out_before, out);
    ck_assert_uint_eq(out, 2);

    snapshot_free(s);
    ctl_model_clear(&c);
}
END_TEST

START_TEST(test_keys_of_other_writers)
{
    char key[400];
    unsigned char rnd[4] = {1, 2, 3, 0xab};
    struct kv_key k;
    struct both b;

    kv_audit_key(R, (int64_t)NOW * 1000 + 123, rnd, key, sizeof(key));
    kv_key_parse(R, key, &k);
    ck_assert_int_eq(k.kind, KV_KEY_AUDIT);
    ck_assert_str_eq(k.rel, "20261129T130000.123Z-010203ab");
    kv_model_init(&b.w);
    ctl_model_init(&b.c, NOW);
    /* audit, director and status keys are nobody's business here */
    decode_both(&b, key, "{\"action\":\"drain\"}", 0, 0);
    decode_both(&b, R "director/d1/proxies/p1", "{\"address\":\"10.0.1.2\"}", 0, 0);
    decode_both(&b, R "status/x", "{}", 0, 0);
    /* a node without "eligible" is bad for both (no guessing) */
    decode_both(&b, R "kube/dc1/nodes/x", "{\"addresses\":[\"10.0.0.9\"]}", -EINVAL, -EINVAL);
    /* "address" alone (older writers) is read by both; addresses[0] wins */
    decode_both(&b, R "kube/dc1/nodes/y", "{\"address\":\"10.0.0.8\",\"eligible\":true}", 1, 1);
    decode_both(&b, R "kube/dc1/nodes/z",
                "{\"address\":\"10.0.0.7\",\"addresses\":[\"10.0.0.6\"],\"eligible\":true}", 1, 1);
    ck_assert_str_eq(kvm_node_server_address(wnode(&b.w, "y")), "10.0.0.8");
    ck_assert_str_eq(kvm_node_server_address(cnode(&b.c, "y")), "10.0.0.8");
    ck_assert_str_eq(kvm_node_server_address(wnode(&b.w, "z")), "10.0.0.6");
    ck_assert_str_eq(kvm_node_server_address(cnode(&b.c, "z")), "10.0.0.6");
    /* an invalid service definition is skipped by both */
    decode_both(&b, R "haproxy/edge/services/bad", "{\"backends\":[]}", -EINVAL, -EINVAL);
    kv_model_clear(&b.w);
    ctl_model_clear(&b.c);
}
END_TEST

/* droverctl's director commands write `state` with the names the director
 * watcher reads, in the order droverctl allows. */
START_TEST(test_director_states)
{
    static const enum director_proxy_state want[] = {
        [CTL_DIR_FILL] = DIRECTOR_PROXY_FILLING,
        [CTL_DIR_ACTIVATE] = DIRECTOR_PROXY_ACTIVE,
        [CTL_DIR_DRAIN] = DIRECTOR_PROXY_DRAINING,
        [CTL_DIR_DEACTIVATE] = DIRECTOR_PROXY_INACTIVE,
    };
    for (int a = CTL_DIR_FILL; a <= CTL_DIR_DEACTIVATE; a++) {
        char value[200], err[512];
        const char *to = ctl_director_target_state((enum ctl_director_action)a);
        struct director_inputs in = {0};
        snprintf(value, sizeof(value), "{\"address\":\"10.0.1.2\",\"state\":\"%s\",\"weight\":100}",
                 to);
        ck_assert_int_eq(
            director_inputs_add_entry(&in, "proxies/p1", value, strlen(value), err, sizeof(err)),
            0);
        ck_assert_uint_eq(in.n_proxies, 1);
        ck_assert_int_eq(in.proxies[0].state, want[a]);
        free(in.proxies[0].host);
        free(in.proxies[0].address);
        free(in.proxies);
        /* a proxy already in `to` makes no step */
        ck_assert(!ctl_director_step_allowed(to, (enum ctl_director_action)a));
    }
    ck_assert(ctl_director_step_allowed("inactive", CTL_DIR_FILL));
    ck_assert(ctl_director_step_allowed("filling", CTL_DIR_ACTIVATE));
    ck_assert(ctl_director_step_allowed("active", CTL_DIR_DRAIN));
    ck_assert(ctl_director_step_allowed("draining", CTL_DIR_DEACTIVATE));
    ck_assert(!ctl_director_step_allowed("active", CTL_DIR_FILL));
}
END_TEST

int main(void)
{
    log_set_level(LOGL_ERROR);
    Suite *s = suite_create("kv_cross");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_exporter_records);
    tcase_add_test(tc, test_servers_and_maintenance_agree);
    tcase_add_test(tc, test_keys_of_other_writers);
    tcase_add_test(tc, test_director_states);
    suite_add_tcase(s, tc);
    return suite_main_run(s);
}
