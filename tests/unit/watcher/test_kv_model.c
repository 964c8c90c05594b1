/* SPDX-License-Identifier: Apache-2.0 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv_model.h"
#include "../common/suite_main.h"

static const char *const clusters[] = {"prod-a"};
static const struct kv_model_opts opts = {
    .root = "drover/v1/",
    .haproxy_cluster = "edge",
    .kube_clusters = clusters,
    .n_kube_clusters = 1,
};

#define NOW 1795438800 /* 2026-11-23T13:00:00Z */

static const char *svc_web =
    "{\"template\":\"http\",\"frontends\":[{\"name\":\"fe_web\",\"bind\":[\"0.0.0.0:80\","
    "\"[::]:80\"],\"mode\":\"http\",\"routes\":[{\"host\":\"www.example.com\",\"backend\":"
    "\"be_web\"},{\"sni\":\"api.example.com\",\"backend\":\"be_api\"}],\"default_backend\":"
    "\"be_web\",\"maxconn\":10000}],\"backends\":[{\"name\":\"be_web\",\"balance\":\"roundrobin\","
    "\"kube\":[{\"cluster\":\"prod-a\",\"namespace\":\"default\",\"service\":\"web\",\"port\":"
    "\"http\"}],\"check\":{\"type\":\"http\",\"path\":\"/healthz\",\"interval\":\"2s\",\"rise\":3,"
    "\"fall\":3},\"agent\":{\"port\":5555,\"interval\":\"2s\"},\"slots\":16,\"timeouts\":{"
    "\"connect\":\"5s\"},\"max_removal_share\":0.5},{\"name\":\"be_api\",\"servers\":[{\"name\":"
    "\"static-1\",\"address\":\"10.1.2.3\",\"port\":8080,\"weight\":100}]}],\"timeouts\":{"
    "\"client\":\"30s\",\"connect\":\"5s\",\"server\":\"30s\"},\"unknown\":{\"ignored\":1},"
    "\"metrics\":{\"bind\":[\"127.0.0.1:8405\",\"[::1]:8405\"]}}";

static int add(struct kv_model *m, const char *key, const char *value, char *err, size_t errlen)
{
    return kv_model_add(m, &opts, key, value, value ? strlen(value) : 0, NOW, err, errlen);
}

START_TEST(test_service_parsed)
{
    struct kv_model m;
    char err[300] = "";
    kv_model_init(&m);
    ck_assert_int_eq(add(&m, "drover/v1/haproxy/edge/services/web", svc_web, err, sizeof(err)), 1);
    kv_model_finish(&m);
    ck_assert_uint_eq(m.n_services, 1);
    const struct kvm_service *s = &m.services[0];
    ck_assert_str_eq(s->name, "web");
    ck_assert_str_eq(s->template_name, "http");
    ck_assert_uint_eq(s->n_frontends, 1);
    ck_assert_uint_eq(s->frontends[0].n_binds, 2);
    ck_assert_str_eq(s->frontends[0].binds[1].addr, "::");
    ck_assert_uint_eq(s->frontends[0].binds[1].port, 80);
    ck_assert_uint_eq(s->frontends[0].n_routes, 2);
    ck_assert(s->frontends[0].routes[1].sni);
    ck_assert_int_eq(s->frontends[0].maxconn, 10000);
    ck_assert_uint_eq(s->n_backends, 2);
    const struct kvm_backend *b = &s->backends[0];
    ck_assert_str_eq(b->kube[0].port, "http");
    ck_assert_int_eq(b->check.type, KVM_CHECK_HTTP);
    ck_assert_str_eq(b->check.path, "/healthz");
    ck_assert_int_eq(b->check.inter_ms, 2000);
    ck_assert_int_eq(b->agent_port, 5555);
    ck_assert_int_eq(b->slots, 16);
    ck_assert_int_eq(b->timeout_connect_ms, 5000);
    ck_assert(b->max_removal_share == 0.5);
    ck_assert_int_eq(s->backends[1].n_servers, 1);
    ck_assert_int_eq(s->backends[1].max_removal_share < 0, 1);
    ck_assert_int_eq(s->timeout_client_ms, 30000);
    ck_assert_uint_eq(s->n_metrics_binds, 2);
    ck_assert_str_eq(s->metrics_binds[0].addr, "127.0.0.1");
    ck_assert_str_eq(s->metrics_binds[1].addr, "::1");
    ck_assert_uint_eq(s->metrics_binds[1].port, 8405);
    ck_assert_uint_eq(s->frontends[0].n_tls_certs, 0);
    kv_model_clear(&m);
}
END_TEST

/* frontends[].tls: certificate files; ALPN h2,http/1.1 by default in mode
 * http, none in mode tcp, or as given. */
START_TEST(test_service_tls)
{
    static const struct {
        const char *mode, *alpn_field, *alpn;
    } cases[] = {{"http", "", "h2,http/1.1"},
                 {"tcp", "", NULL},
                 {"http", ",\"alpn\":[\"http/1.1\"]", "http/1.1"},
                 {"tcp", ",\"alpn\":[\"h2\",\"http/1.1\"]", "h2,http/1.1"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct kv_model m;
        char v[1024], err[300] = "";
        snprintf(
            v, sizeof(v),
            "{\"template\":\"%s\",\"frontends\":[{\"name\":\"fe\",\"mode\":\"%s\",\"bind\":["
            "\"0.0.0.0:443\"],\"default_backend\":\"b\",\"tls\":{\"certs\":[\"/etc/drover/a.pem\","
            "\"/etc/drover/b.pem\"]%s}}],\"backends\":[{\"name\":\"b\",\"mode\":\"%s\",\"servers\":"
            "[{\"name\":\"s\",\"address\":\"10.0.0.1\",\"port\":80}]}]}",
            cases[i].mode, cases[i].mode, cases[i].alpn_field, cases[i].mode);
        kv_model_init(&m);
        ck_assert_int_eq(add(&m, "drover/v1/haproxy/edge/services/web", v, err, sizeof(err)), 1);
        const struct kvm_frontend *f = &m.services[0].frontends[0];
        ck_assert_uint_eq(f->n_tls_certs, 2);
        ck_assert_str_eq(f->tls_certs[1].file, "/etc/drover/b.pem");
        ck_assert_uint_eq(f->tls_certs[1].n_sni, 0);
        ck_assert_ptr_null(f->tls_certs[1].alpn);
        if (cases[i].alpn)
            ck_assert_str_eq(f->alpn, cases[i].alpn);
        else
            ck_assert_ptr_null(f->alpn);
        kv_model_clear(&m);
    }
}
END_TEST

/* tls.certs[] entries as objects: SNI filters and an ALPN of their own
 * (crt-list options); strings and objects mix. */
START_TEST(test_service_crt_list_entries)
{
    struct kv_model m;
    char err[300] = "";
    const char *v =
        "{\"frontends\":[{\"name\":\"fe\",\"bind\":[\"0.0.0.0:443\"],\"default_backend\":\"b\","
        "\"tls\":{\"certs\":[\"/etc/drover/default.pem\",{\"file\":\"/etc/drover/shop.pem\","
        "\"sni\":[\"shop.example.com\",\"www.shop.example.com\"],\"alpn\":[\"http/1.1\"]}]}}],"
        "\"backends\":[{\"name\":\"b\",\"servers\":[{\"name\":\"s\",\"address\":\"10.0.0.1\","
        "\"port\":443}],\"server_tls\":{\"ca_file\":\"/etc/drover/ca.pem\",\"verify_name\":"
        "\"api.internal\"}}]}";
    kv_model_init(&m);
    ck_assert_int_eq(add(&m, "drover/v1/haproxy/edge/services/web", v, err, sizeof(err)), 1);
    const struct kvm_frontend *f = &m.services[0].frontends[0];
    ck_assert_uint_eq(f->n_tls_certs, 2);
    ck_assert_str_eq(f->tls_certs[0].file, "/etc/drover/default.pem");
    ck_assert_str_eq(f->tls_certs[1].file, "/etc/drover/shop.pem");
    ck_assert_uint_eq(f->tls_certs[1].n_sni, 2);
    ck_assert_str_eq(f->tls_certs[1].sni[1], "www.shop.example.com");
    ck_assert_str_eq(f->tls_certs[1].alpn, "http/1.1");
    const struct kvm_backend *b = &m.services[0].backends[0];
    ck_assert_str_eq(b->server_tls.ca_file, "/etc/drover/ca.pem");
    ck_assert_str_eq(b->server_tls.verify_name, "api.internal");
    kv_model_clear(&m);
}
END_TEST

/* Each bad value is refused with a message naming the key and the field. */
START_TEST(test_service_bad_values)
{
    static const struct {
        const char *value;
        const char *needle;
    } cases[] = {
        {"{\"frontends\":[{\"name\":\"fe\",\"bind\":[\"1.2.3.4:80\"],\"default_backend\":\"b\"}],"
         "\"backends\":[{\"name\":\"b\",\"balance\":\"roundrobin\\n  stats enable\",\"servers\":"
         "[{\"name\":\"s\",\"address\":\"10.0.0.1\",\"port\":80}]}]}",
         "backends[0].balance"},
        {"{\"frontends\":[{\"name\":\"fe x\",\"bind\":[\"1.2.3.4:80\"],\"default_backend\":\"b\"}],"
         "\"backends\":[{\"name\":\"b\",\"servers\":[{\"name\":\"s\",\"address\":\"10.0.0.1\","
         "\"port\":80}]}]}",
         "frontends[0].name"},
        {"{\"frontends\":[{\"name\":\"fe\",\"bind\":[\"1.2.3.4:80\"],\"default_backend\":\"b\"}],"
         "\"backends\":[{\"name\":\"b\",\"servers\":[{\"name\":\"s\",\"address\":\"10.0.0.1\\n"
         "\",\"port\":80}]}]}",
         "backends[0].servers[0].address"},
        {"{\"frontends\":[{\"name\":\"fe\",\"bind\":[\"1.2.3.4\"],\"default_backend\":\"b\"}],"
         "\"backends\":[{\"name\":\"b\",\"servers\":[{\"name\":\"s\",\"address\":\"10.0.0.1\","
         "\"port\":80}]}]}",
         "frontends[0].bind[0]"},
        {"{\"frontends\":[{\"name\":\"fe\",\"bind\":[\"1.2.3.4:80\"],\"default_backend\":\"nope\"}]"
         ","
         "\"backends\":[{\"name\":\"b\",\"servers\":[{\"name\":\"s\",\"address\":\"10.0.0.1\","
         "\"port\":80}]}]}",
         "no backend named 'nope'"},
        {"{\"frontends\":[{\"name\":\"fe\",\"bind\":[\"1.2.3.4:80\"],\"routes\":[{\"host\":\"a b\","
         "\"backend\":\"b\"}]}],\"backends\":[{\"name\":\"b\",\"servers\":[{\"name\":\"s\","
         "\"address\":\"10.0.0.1\",\"port\":80}]}]}",
         "routes[0].host"},
        {"{\"frontends\":[{\"name\":\"fe\",\"bind\":[\"1.2.3.4:80\"],\"default_backend\":\"b\"}],"
         "\"backends\":[{\"name\":\"b\",\"check\":{\"type\":\"http\",\"path\":\"/x y\"},"
         "\"servers\":[{\"name\":\"s\",\"address\":\"10.0.0.1\",\"port\":80}]}]}",
         "backends[0].check.path"},
        {"{\"frontends\":[{\"name\":\"fe\",\"bind\":[\"1.2.3.4:80\"],\"default_backend\":\"b\"}],"
         "\"backends\":[{\"name\":\"b\",\"timeouts\":{\"server\":\"forever\"},\"servers\":[{"
         "\"name\":\"s\",\"address\":\"10.0.0.1\",\"port\":80}]}]}",
         "timeouts.server"},
        {"{\"frontends\":[{\"name\":\"fe\",\"bind\":[\"1.2.3.4:80\"],\"default_backend\":\"b\"}],"
         "\"backends\":[{\"name\":\"b\"}]}",
         "needs \"kube\" services or static \"servers\""},
        {"{\"frontends\":[{\"name\":\"fe\",\"bind\":[\"1.2.3.4:443\"],\"default_backend\":\"b\","
         "\"tls\":{\"certs\":[\"certs/shop.pem\"]}}],\"backends\":[{\"name\":\"b\",\"servers\":[{"
         "\"name\":\"s\",\"address\":\"10.0.0.1\",\"port\":80}]}]}",
         "frontends[0].tls.certs[0]: expected an absolute file path"},
        {"{\"frontends\":[{\"name\":\"fe\",\"bind\":[\"1.2.3.4:443\"],\"default_backend\":\"b\","
         "\"tls\":{\"certs\":[\"/a.pem crt /etc/shadow\"]}}],\"backends\":[{\"name\":\"b\","
         "\"servers\":[{\"name\":\"s\",\"address\":\"10.0.0.1\",\"port\":80}]}]}",
         "frontends[0].tls.certs[0]"},
        {"{\"frontends\":[{\"name\":\"fe\",\"bind\":[\"1.2.3.4:443\"],\"default_backend\":\"b\","
         "\"tls\":{\"certs\":[]}}],\"backends\":[{\"name\":\"b\",\"servers\":[{\"name\":\"s\","
         "\"address\":\"10.0.0.1\",\"port\":80}]}]}",
         "frontends[0].tls.certs: needs 1 to"},
        {"{\"frontends\":[{\"name\":\"fe\",\"bind\":[\"1.2.3.4:443\"],\"default_backend\":\"b\","
         "\"tls\":{\"certs\":[\"/a.pem\"],\"alpn\":[\"spdy/3\"]}}],\"backends\":[{\"name\":"
         "\"b\",\"servers\":[{\"name\":\"s\",\"address\":\"10.0.0.1\",\"port\":80}]}]}",
         "frontends[0].tls.alpn[0]"},
        {"{\"frontends\":[{\"name\":\"fe\",\"bind\":[\"1.2.3.4:443\"],\"default_backend\":\"b\","
         "\"tls\":{\"certs\":[{\"file\":\"/a.pem\",\"sni\":[\"a "
         "b.example.com\"]}]}}],\"backends\":[{\"name\":\"b\",\"servers\":[{\"name\":\"s\","
         "\"address\":\"10.0.0.1\",\"port\":80}]}]}",
         "frontends[0].tls.certs[0].sni[0]"},
        {"{\"frontends\":[{\"name\":\"fe\",\"bind\":[\"1.2.3.4:443\"],\"default_backend\":\"b\","
         "\"tls\":{\"certs\":[{\"file\":\"/a.pem\",\"sni\":[\"a.example.com\\n/etc/"
         "shadow\"]}]}}],\"backends\":[{\"name\":\"b\",\"servers\":[{\"name\":\"s\",\"address\":"
         "\"10.0.0.1\",\"port\":80}]}]}",
         "frontends[0].tls.certs[0].sni[0]"},
        {"{\"frontends\":[{\"name\":\"fe\",\"bind\":[\"1.2.3.4:443\"],\"default_backend\":\"b\","
         "\"tls\":{\"certs\":[{\"file\":\"/"
         "a.pem\",\"sni\":[\"a.example.com]\"]}]}}],\"backends\":[{\"name\":\"b\",\"servers\":[{"
         "\"name\":\"s\",\"address\":\"10.0.0.1\",\"port\":80}]}]}",
         "frontends[0].tls.certs[0].sni[0]"},
        {"{\"frontends\":[{\"name\":\"fe\",\"bind\":[\"1.2.3.4:443\"],\"default_backend\":\"b\","
         "\"tls\":{\"certs\":[{\"file\":\"/a.pem [verify "
         "none]\"}]}}],\"backends\":[{\"name\":\"b\",\"servers\":[{\"name\":\"s\",\"address\":\"10."
         "0.0.1\",\"port\":80}]}]}",
         "frontends[0].tls.certs[0].file"},
        {"{\"frontends\":[{\"name\":\"fe\",\"bind\":[\"1.2.3.4:443\"],\"default_backend\":\"b\","
         "\"tls\":{\"certs\":[{\"sni\":[\"a.example.com\"]}]}}],\"backends\":[{\"name\":\"b\","
         "\"servers\":[{\"name\":\"s\",\"address\":\"10.0.0.1\",\"port\":80}]}]}",
         "frontends[0].tls.certs[0].file"},
        {"{\"frontends\":[{\"name\":\"fe\",\"bind\":[\"1.2.3.4:443\"],\"default_backend\":\"b\","
         "\"tls\":{\"certs\":[{\"file\":\"/"
         "a.pem\",\"alpn\":[\"h2]\"]}]}}],\"backends\":[{\"name\":\"b\",\"servers\":[{\"name\":"
         "\"s\",\"address\":\"10.0.0.1\",\"port\":80}]}]}",
         "frontends[0].tls.certs[0].alpn[0]"},
        {"{\"frontends\":[{\"name\":\"fe\",\"bind\":[\"1.2.3.4:443\"],\"default_backend\":\"b\","
         "\"tls\":{\"certs\":[{\"file\":\"/"
         "a.pem\",\"sni\":\"a.example.com\"}]}}],\"backends\":[{\"name\":\"b\",\"servers\":[{"
         "\"name\":\"s\",\"address\":\"10.0.0.1\",\"port\":80}]}]}",
         "frontends[0].tls.certs[0].sni"},
        {"{\"frontends\":[{\"name\":\"fe\",\"bind\":[\"1.2.3.4:80\"],\"default_backend\":\"b\"}],"
         "\"backends\":[{\"name\":\"b\",\"servers\":[{\"name\":\"s\",\"address\":\"10.0.0.1\","
         "\"port\":443}],\"server_tls\":{\"ca_file\":\"ca.pem\"}}]}",
         "backends[0].server_tls.ca_file"},
        {"{\"frontends\":[{\"name\":\"fe\",\"bind\":[\"1.2.3.4:80\"],\"default_backend\":\"b\"}],"
         "\"backends\":[{\"name\":\"b\",\"servers\":[{\"name\":\"s\",\"address\":\"10.0.0.1\","
         "\"port\":443}],\"server_tls\":{\"ca_file\":\"/ca.pem verify none\"}}]}",
         "backends[0].server_tls.ca_file"},
        {"{\"frontends\":[{\"name\":\"fe\",\"bind\":[\"1.2.3.4:80\"],\"default_backend\":\"b\"}],"
         "\"backends\":[{\"name\":\"b\",\"servers\":[{\"name\":\"s\",\"address\":\"10.0.0.1\","
         "\"port\":443}],\"server_tls\":{\"verify_name\":\"a.example.com\"}}]}",
         "backends[0].server_tls.ca_file"},
        {"{\"frontends\":[{\"name\":\"fe\",\"bind\":[\"1.2.3.4:80\"],\"default_backend\":\"b\"}],"
         "\"backends\":[{\"name\":\"b\",\"servers\":[{\"name\":\"s\",\"address\":\"10.0.0.1\","
         "\"port\":443}],\"server_tls\":{\"ca_file\":\"/"
         "ca.pem\",\"verify_name\":\"a.example.com\\n  stats enable\"}}]}",
         "backends[0].server_tls.verify_name"},
        {"{\"frontends\":[{\"name\":\"fe\",\"bind\":[\"1.2.3.4:80\"],\"default_backend\":\"b\"}],"
         "\"backends\":[{\"name\":\"b\",\"servers\":[{\"name\":\"s\",\"address\":\"10.0.0.1\","
         "\"port\":443}],\"server_tls\":{\"ca_file\":\"/ca.pem\",\"verify_name\":\"a\\\")\"}}]}",
         "backends[0].server_tls.verify_name"},
        {"{\"frontends\":[{\"name\":\"fe\",\"bind\":[\"1.2.3.4:80\"],\"default_backend\":\"b\"}],"
         "\"backends\":[{\"name\":\"b\",\"servers\":[{\"name\":\"s\",\"address\":\"10.0.0.1\","
         "\"port\":443}],\"server_tls\":\"/ca.pem\"}]}",
         "backends[0].server_tls"},
        {"{\"frontends\":[{\"name\":\"fe\",\"bind\":[\"1.2.3.4:80\"]}],\"backends\":[],\"select\":["
         "{\"class\":\"c\",\"frontend\":\"fe\",\"server_tls\":{\"ca_file\":\"/ca.pem\\n\"}}]}",
         "select[0].server_tls.ca_file"},
        {"{\"frontends\":[],\"backends\":[]}", "at least one frontend"},
        {"{\"frontends\":[{\"name\":\"fe\",\"bind\":[\"1.2.3.4:80\"],\"default_backend\":\"b\"}],"
         "\"backends\":[{\"name\":\"b\",\"servers\":[{\"name\":\"s\",\"address\":\"10.0.0.1\","
         "\"port\":80}]}],\"metrics\":{\"bind\":[]}}",
         "metrics.bind: needs at least one address"},
        {"{\"frontends\":[{\"name\":\"fe\",\"bind\":[\"1.2.3.4:80\"],\"default_backend\":\"b\"}],"
         "\"backends\":[{\"name\":\"b\",\"servers\":[{\"name\":\"s\",\"address\":\"10.0.0.1\","
         "\"port\":80}]}],\"metrics\":{\"bind\":[\"127.0.0.1:8405\\n  stats enable\"]}}",
         "metrics.bind[0]"},
        {"{\"frontends\":[{\"name\":\"drover_metrics\",\"bind\":[\"1.2.3.4:80\"],"
         "\"default_backend\":\"b\"}],\"backends\":[{\"name\":\"b\",\"servers\":[{\"name\":\"s\","
         "\"address\":\"10.0.0.1\",\"port\":80}]}]}",
         "frontends[0].name: 'drover_metrics' is the name of the metrics frontend"},
        {"[1,2]", "expected a JSON object"},
        {"{\"frontends\":", "drover/v1/haproxy/edge/services/x"},
        {"{\"frontends\":[{\"name\":\"fe\",\"bind\":[\"1.2.3.4:80\"],\"default_backend\":\"b\"}],"
         "\"backends\":[{\"name\":\"b\",\"servers\":[{\"name\":\"s\",\"address\":\"10.0.0.1\","
         "\"port\":80}]},{\"name\":\"b\",\"servers\":[{\"name\":\"s\",\"address\":\"10.0.0.1\","
         "\"port\":80}]}]}",
         "defined twice"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct kv_model m;
        char err[400] = "";
        kv_model_init(&m);
        ck_assert_int_eq(
            add(&m, "drover/v1/haproxy/edge/services/x", cases[i].value, err, sizeof(err)),
            -EINVAL);
        ck_assert_msg(strstr(err, "drover/v1/haproxy/edge/services/x") &&
                          strstr(err, cases[i].needle),
                      "case %zu: '%s' lacks '%s'", i, err, cases[i].needle);
        ck_assert_uint_eq(m.n_services, 0);
        ck_assert_uint_eq(m.bad[KVM_PREFIX_HAPROXY], 1);
        kv_model_clear(&m);
    }
}
END_TEST

START_TEST(test_kube_entries)
{
    struct kv_model m;
    char err[300] = "";
    kv_model_init(&m);
    ck_assert_int_eq(
        add(&m, "drover/v1/kube/prod-a/services/default/web/http",
            "{\"cluster\":\"prod-a\",\"namespace\":\"default\",\"service\":\"web\","
            "\"port_name\":\"http\",\"node_port\":30080,\"health_check_port\":31999,"
            "\"health_check_path\":\"/healthz\",\"proxy_protocol\":true,\"hash\":\"x\"}",
            err, sizeof(err)),
        1);
    ck_assert_int_eq(
        add(&m, "drover/v1/kube/prod-a/nodes/n1",
            "{\"name\":\"n1\",\"addresses\":[\"10.0.0.1\",\"fd00::1\"],\"eligible\":true}", err,
            sizeof(err)),
        1);
    ck_assert_int_eq(add(&m, "drover/v1/kube/prod-a/nodes/n2",
                         "{\"name\":\"n2\",\"address\":\"10.0.0.2\",\"eligible\":false}", err,
                         sizeof(err)),
                     1);
    /* not consumed: other cluster, meta, leader, other prefixes */
    ck_assert_int_eq(add(&m, "drover/v1/kube/prod-b/nodes/n1", "{}", err, sizeof(err)), 0);
    ck_assert_int_eq(add(&m, "drover/v1/kube/prod-a/meta", "{}", err, sizeof(err)), 0);
    ck_assert_int_eq(add(&m, "drover/v1/kube/prod-a/leader", "x", err, sizeof(err)), 0);
    ck_assert_int_eq(add(&m, "drover/v1/director/x/config", "{}", err, sizeof(err)), 0);
    ck_assert_int_eq(add(&m, "other/kube/prod-a/nodes/n1", "{}", err, sizeof(err)), 0);
    /* bad ones */
    ck_assert_int_eq(add(&m, "drover/v1/kube/prod-a/nodes/n3",
                         "{\"eligible\":true,\"addresses\":[\"10.0.0.3\\n\"]}", err, sizeof(err)),
                     -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "nodes/n3"));
    ck_assert_int_eq(add(&m, "drover/v1/kube/prod-a/services/default/web/https",
                         "{\"node_port\":70000}", err, sizeof(err)),
                     -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "node_port"));
    ck_assert_int_eq(add(&m, "drover/v1/kube/prod-a/services/default/web", "{}", err, sizeof(err)),
                     -EINVAL);
    /* a node in its shard counts; in another node's shard it is bad
     * (n4 is in shard 0f: kv_key_node_shard) */
    ck_assert_int_eq(add(&m, "drover/v1/kube/prod-a/node-shards/0f/n4",
                         "{\"name\":\"n4\",\"addresses\":[\"10.0.0.4\"],\"eligible\":true}", err,
                         sizeof(err)),
                     1);
    ck_assert_int_eq(add(&m, "drover/v1/kube/prod-a/node-shards/00/n4",
                         "{\"addresses\":[\"10.0.0.4\"],\"eligible\":true}", err, sizeof(err)),
                     -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "the node's own shard"));
    kv_model_finish(&m);
    ck_assert_uint_eq(m.bad[KVM_PREFIX_KUBE], 4);
    ck_assert_uint_eq(m.n_nodes, 3);
    ck_assert_uint_eq(m.nodes[0].n_addresses, 2);
    ck_assert_str_eq(m.nodes[0].addresses[1], "fd00::1");
    ck_assert(!m.nodes[1].eligible);
    ck_assert_str_eq(m.nodes[1].addresses[0], "10.0.0.2");
    const struct kvm_kube_service *k =
        kv_model_kube_service(&m, "prod-a", "default", "web", "http");
    ck_assert_ptr_nonnull(k);
    ck_assert_int_eq(k->node_port, 30080);
    ck_assert_int_eq(k->health_check_port, 31999);
    ck_assert(k->proxy_protocol);
    ck_assert_ptr_null(kv_model_kube_service(&m, "prod-a", "default", "web", "https"));
    kv_model_clear(&m);
}
END_TEST

START_TEST(test_maintenance)
{
    struct kv_model m;
    char err[300] = "";
    kv_model_init(&m);
    ck_assert_int_eq(add(&m, "drover/v1/maintenance/node/prod-a/n1",
                         "{\"target\":\"node/prod-a/n1\",\"state\":\"drain\",\"reason\":\"disk\","
                         "\"author\":\"alice\",\"created\":\"2026-11-23T12:00:00Z\"}",
                         err, sizeof(err)),
                     1);
    ck_assert_int_eq(add(&m, "drover/v1/maintenance/addr/2001:DB8::0:1",
                         "{\"state\":\"ready\",\"weight\":50,\"expires\":\"2026-11-23T14:00:00Z\"}",
                         err, sizeof(err)),
                     1);
    ck_assert_int_eq(add(&m, "drover/v1/maintenance/server/be_web/be_web-3",
                         "{\"state\":\"maint\"}", err, sizeof(err)),
                     1);
    /* expired: ignored, not bad */
    ck_assert_int_eq(add(&m, "drover/v1/maintenance/addr/10.0.0.9",
                         "{\"state\":\"maint\",\"expires\":\"2026-11-23T12:59:59Z\"}", err,
                         sizeof(err)),
                     0);
    ck_assert_int_eq(
        add(&m, "drover/v1/maintenance/addr/10.0.0.10", "{\"state\":\"off\"}", err, sizeof(err)),
        -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "state"));
    ck_assert_int_eq(
        add(&m, "drover/v1/maintenance/addr/not-an-ip", "{\"state\":\"maint\"}", err, sizeof(err)),
        -EINVAL);
    ck_assert_int_eq(add(&m, "drover/v1/maintenance/addr/10.0.0.11",
                         "{\"state\":\"drain\",\"weight\":300}", err, sizeof(err)),
                     -EINVAL);
    ck_assert_int_eq(add(&m, "drover/v1/maintenance/addr/10.0.0.12",
                         "{\"state\":\"drain\",\"expires\":\"tomorrow\"}", err, sizeof(err)),
                     -EINVAL);
    ck_assert_int_eq(
        add(&m, "drover/v1/maintenance/bogus/x", "{\"state\":\"drain\"}", err, sizeof(err)),
        -EINVAL);
    kv_model_finish(&m);
    ck_assert_uint_eq(m.bad[KVM_PREFIX_MAINTENANCE], 5);
    ck_assert_uint_eq(m.n_maint, 3);
    ck_assert_int_eq(m.maint[0].kind, KVM_MAINT_NODE);
    ck_assert_int_eq(m.maint[0].admin, KVM_ADMIN_DRAIN);
    ck_assert_str_eq(m.maint[0].author, "alice");
    ck_assert_int_eq(m.maint[1].kind, KVM_MAINT_ADDR);
    ck_assert_str_eq(m.maint[1].a, "2001:db8::1"); /* canonical */
    ck_assert_int_eq(m.maint[1].weight, 50);
    ck_assert_int_eq(m.maint[1].expires, NOW + 3600);
    ck_assert_int_eq(m.maint[2].kind, KVM_MAINT_SERVER);
    ck_assert_str_eq(m.maint[2].b, "be_web-3");
    kv_model_clear(&m);
}
END_TEST

START_TEST(test_force_removal)
{
    struct kv_model m;
    char err[300] = "";
    kv_model_init(&m);
    ck_assert_int_eq(add(&m, "drover/v1/haproxy/edge/force-removal/be_web",
                         "{\"expires\":\"2026-11-23T13:10:00Z\",\"author\":\"bob\"}", err,
                         sizeof(err)),
                     1);
    ck_assert_int_eq(add(&m, "drover/v1/haproxy/edge/force-removal/be_old",
                         "{\"expires\":\"2026-11-23T12:10:00Z\"}", err, sizeof(err)),
                     0);
    ck_assert_int_eq(add(&m, "drover/v1/haproxy/edge/force-removal/be_x", "{}", err, sizeof(err)),
                     -EINVAL);
    /* other haproxy cluster: not ours */
    ck_assert_int_eq(add(&m, "drover/v1/haproxy/core/services/web", svc_web, err, sizeof(err)), 0);
    kv_model_finish(&m);
    ck_assert_ptr_nonnull(kv_model_force(&m, "be_web"));
    ck_assert_ptr_null(kv_model_force(&m, "be_old"));
    kv_model_clear(&m);
}
END_TEST

/* Class selectors: selected entries become backends and routes; every
 * injection attempt through a selected entry's fields is refused per entry,
 * counted, and nothing of it generated. */
static const char *svc_public =
    "{\"frontends\":[{\"name\":\"fe\",\"bind\":[\"127.0.0.1:80\"]}],\"backends\":[],"
    "\"select\":[{\"class\":\"public\",\"frontend\":\"fe\",\"labels\":{\"team\":\"shop\"}}]}";

static char *kube_entry(const char *extra)
{
    char *v = NULL;
    ck_assert_int_gt(asprintf(&v,
                              "{\"node_port\":30080,\"load_balancer_class\":\"public\","
                              "\"labels\":{\"team\":\"shop\"}%s}",
                              extra),
                     0);
    return v;
}

/* A selector's server_tls reaches the generated backends that speak TLS
 * to their servers (https, h2) and only those. */
START_TEST(test_selector_server_tls)
{
    static const struct {
        const char *key, *proto;
        bool verified;
    } entries[] = {{"shop/a/https", "https", true},
                   {"shop/b/h2", "h2", true},
                   {"shop/c/http", "http", false},
                   {"shop/d/h2c", "h2c", false}};
    const char *svc =
        "{\"frontends\":[{\"name\":\"fe\",\"bind\":[\"127.0.0.1:80\"]}],\"backends\":[],"
        "\"select\":[{\"class\":\"public\",\"frontend\":\"fe\",\"server_tls\":{\"ca_file\":"
        "\"/etc/drover/kube-ca.pem\"}}]}";
    struct kv_model m;
    char err[300] = "", key[128], extra[96];
    kv_model_init(&m);
    ck_assert_int_eq(add(&m, "drover/v1/haproxy/edge/services/public", svc, err, sizeof(err)), 1);
    for (size_t i = 0; i < sizeof(entries) / sizeof(entries[0]); i++) {
        snprintf(extra, sizeof(extra), ",\"backend_protocol\":\"%s\"", entries[i].proto);
        char *v = kube_entry(extra);
        snprintf(key, sizeof(key), "drover/v1/kube/prod-a/services/%s", entries[i].key);
        ck_assert_msg(add(&m, key, v, err, sizeof(err)) == 1, "%s: %s", key, err);
        free(v);
    }
    ck_assert_int_eq(kv_model_finish(&m), 0);
    const struct kvm_service *s = &m.services[0];
    ck_assert_uint_eq(s->n_backends, 4);
    for (size_t i = 0; i < s->n_backends; i++) {
        const struct kvm_backend *b = &s->backends[i];
        bool want = !strcmp(b->protocol, "https") || !strcmp(b->protocol, "h2");
        ck_assert_msg((b->server_tls.ca_file != NULL) == want, "%s", b->name);
        if (want)
            ck_assert_str_eq(b->server_tls.ca_file, "/etc/drover/kube-ca.pem");
        ck_assert_ptr_null(b->server_tls.verify_name);
    }
    kv_model_clear(&m);
}
END_TEST

START_TEST(test_selectors)
{
    static const struct {
        const char *key, *extra;
        bool generated;
    } entries[] = {
        {"shop/web/http", ",\"backend_protocol\":\"http\",\"dns_name\":\"Shop.Example.com.\"",
         true},
        {"shop/api/http", ",\"backend_protocol\":\"http\"", true}, /* no route */
        {"shop/bad1/http", ",\"backend_protocol\":\"http\",\"dns_name\":\"a b.example.com\"",
         false},
        {"shop/bad2/http",
         ",\"backend_protocol\":\"http\",\"dns_name\":\"a.example.com\\n  "
         "stats enable\"",
         false},
        {"shop/bad3/http", ",\"backend_protocol\":\"http\",\"listen_port\":70000", false},
        {"shop/bad4/http", ",\"backend_protocol\":\"tcp\",\"dns_name\":\"t.example.com\"", false},
        {"shop/zdup/http", ",\"backend_protocol\":\"http\",\"dns_name\":\"shop.example.com\"",
         false},
        {"shop/bad5/http", ",\"backend_protocol\":\"http\",\"dns_name\":7", false},
    };
    struct kv_model m;
    char err[300] = "", key[128];
    kv_model_init(&m);
    ck_assert_int_eq(
        add(&m, "drover/v1/haproxy/edge/services/public", svc_public, err, sizeof(err)), 1);
    for (size_t i = 0; i < sizeof(entries) / sizeof(entries[0]); i++) {
        char *v = kube_entry(entries[i].extra);
        snprintf(key, sizeof(key), "drover/v1/kube/prod-a/services/%s", entries[i].key);
        ck_assert_msg(add(&m, key, v, err, sizeof(err)) == 1, "%s: %s", key, err);
        free(v);
    }
    /* not selected: other class, other label, label with a quote */
    ck_assert_int_eq(add(&m, "drover/v1/kube/prod-a/services/shop/other/http",
                         "{\"node_port\":30081,\"load_balancer_class\":\"private\","
                         "\"labels\":{\"team\":\"shop\"},\"dns_name\":\"o.example.com\"}",
                         err, sizeof(err)),
                     1);
    ck_assert_int_eq(add(&m, "drover/v1/kube/prod-a/services/shop/quote/http",
                         "{\"node_port\":30082,\"load_balancer_class\":\"public\","
                         "\"labels\":{\"team\":\"shop\\\"\"},\"dns_name\":\"q.example.com\"}",
                         err, sizeof(err)),
                     1);
    ck_assert_int_eq(kv_model_finish(&m), 0);
    const struct kvm_service *s = &m.services[0];
    ck_assert_uint_eq(s->n_explicit_backends, 0);
    ck_assert_uint_eq(s->n_backends, 2);
    ck_assert_str_eq(s->backends[0].name, "shop.api.http");
    ck_assert_str_eq(s->backends[1].name, "shop.web.http");
    ck_assert_str_eq(s->backends[1].mode, "http");
    ck_assert_uint_eq(s->backends[1].n_kube, 1);
    ck_assert_str_eq(s->backends[1].kube[0].service, "web");
    ck_assert_uint_eq(s->frontends[0].n_routes, 1);
    ck_assert_str_eq(s->frontends[0].routes[0].host, "shop.example.com");
    ck_assert_str_eq(s->frontends[0].routes[0].backend, "shop.web.http");
    ck_assert_uint_eq(m.bad_selected, 6);
    ck_assert_uint_eq(m.bad[KVM_PREFIX_KUBE], 6);
    kv_model_clear(&m);

    /* listen_port: a dedicated frontend on the selector frontend's
     * addresses; a port already bound is refused; backend_protocol kept
     * for the server side (h2 = TLS + ALPN h2) */
    static const struct {
        const char *key, *extra;
    } lp[] = {
        {"shop/a/grpc", ",\"backend_protocol\":\"h2\",\"listen_port\":8443"},
        {"shop/b/grpc", ",\"backend_protocol\":\"h2\",\"listen_port\":8443"}, /* taken */
        {"shop/c/http", ",\"backend_protocol\":\"http\",\"listen_port\":80"}, /* fe's */
        {"shop/d/http", ",\"backend_protocol\":\"spdy\""},
    };
    kv_model_init(&m);
    ck_assert_int_eq(
        add(&m, "drover/v1/haproxy/edge/services/public", svc_public, err, sizeof(err)), 1);
    for (size_t i = 0; i < sizeof(lp) / sizeof(lp[0]); i++) {
        char *v = kube_entry(lp[i].extra);
        snprintf(key, sizeof(key), "drover/v1/kube/prod-a/services/%s", lp[i].key);
        ck_assert_msg(add(&m, key, v, err, sizeof(err)) == 1, "%s: %s", key, err);
        free(v);
    }
    ck_assert_int_eq(kv_model_finish(&m), 0);
    s = &m.services[0];
    ck_assert_uint_eq(m.bad_selected, 3);
    ck_assert_uint_eq(s->n_backends, 1);
    ck_assert_str_eq(s->backends[0].name, "shop.a.grpc");
    ck_assert_str_eq(s->backends[0].protocol, "h2");
    ck_assert_str_eq(s->backends[0].mode, "http");
    ck_assert_uint_eq(s->n_frontends, 2);
    const struct kvm_frontend *g = &s->frontends[1];
    ck_assert(g->generated);
    ck_assert_str_eq(g->name, "fe.shop.a.grpc");
    ck_assert_str_eq(g->mode, "http");
    ck_assert_str_eq(g->default_backend, "shop.a.grpc");
    ck_assert_uint_eq(g->n_binds, 1);
    ck_assert_str_eq(g->binds[0].addr, "127.0.0.1");
    ck_assert_uint_eq(g->binds[0].port, 8443);
    kv_model_clear(&m);

    /* selector errors make the definition bad */
    static const char *const bad_defs[] = {
        "{\"frontends\":[{\"name\":\"fe\",\"bind\":[\"127.0.0.1:80\"]}],\"backends\":[],"
        "\"select\":[{\"class\":\"public\",\"frontend\":\"nope\"}]}",
        "{\"frontends\":[{\"name\":\"fe\",\"bind\":[\"127.0.0.1:80\"]}],\"backends\":[],"
        "\"select\":[{\"class\":\"pub lic\",\"frontend\":\"fe\"}]}",
        "{\"frontends\":[{\"name\":\"fe\",\"bind\":[\"127.0.0.1:80\"]}],\"backends\":[],"
        "\"select\":[{\"class\":\"public\",\"frontend\":\"fe\",\"labels\":{\"t\":\"a\\\"b\"}}]}",
        "{\"frontends\":[{\"name\":\"fe\",\"bind\":[\"127.0.0.1:80\"]}],\"backends\":[]}",
    };
    for (size_t i = 0; i < sizeof(bad_defs) / sizeof(bad_defs[0]); i++) {
        kv_model_init(&m);
        ck_assert_int_eq(
            add(&m, "drover/v1/haproxy/edge/services/public", bad_defs[i], err, sizeof(err)),
            -EINVAL);
        ck_assert_ptr_nonnull(strstr(err, "haproxy/edge/services/public"));
        kv_model_clear(&m);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("kv_model");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_service_parsed);
    tcase_add_test(tc, test_service_tls);
    tcase_add_test(tc, test_service_crt_list_entries);
    tcase_add_test(tc, test_selector_server_tls);
    tcase_add_test(tc, test_service_bad_values);
    tcase_add_test(tc, test_kube_entries);
    tcase_add_test(tc, test_maintenance);
    tcase_add_test(tc, test_force_removal);
    tcase_add_test(tc, test_selectors);
    suite_add_tcase(s, tc);
    return suite_main_run(s);
}
