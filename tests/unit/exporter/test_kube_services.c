/* SPDX-License-Identifier: Apache-2.0 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "kube_objects.h"
#include "../common/suite_main.h"

static const char *const LABEL_KEYS[] = {"team", "app.kubernetes.io/name"};

static struct export_options opts(bool by_default)
{
    return (struct export_options){.cluster = "dc1-prod",
                                   .export_by_default = by_default,
                                   .label_keys = LABEL_KEYS,
                                   .n_label_keys = 2};
}

/* Converts svc, expecting success with n records. */
static struct export_record *convert(json_t *svc, bool by_default, size_t expect_n)
{
    struct export_options o = opts(by_default);
    struct export_record *recs = NULL;
    size_t n = 99;
    struct kube_reason why;
    int rc = kube_service_to_records(svc, &o, &recs, &n, &why);
    ck_assert_msg(rc == 0, "unexpected %d: %s %s", rc, why.reason, why.message);
    ck_assert_uint_eq(n, expect_n);
    if (expect_n == 0)
        ck_assert_ptr_null(recs);
    return recs;
}

/* Expects the Service to be rejected with reason and a message holding
 * each non-NULL fragment. */
static void rejected(json_t *svc, const char *reason, const char *frag1, const char *frag2)
{
    struct export_options o = opts(false);
    struct export_record *recs = (void *)1;
    size_t n = 99;
    struct kube_reason why;
    ck_assert_int_eq(kube_service_to_records(svc, &o, &recs, &n, &why), -EINVAL);
    ck_assert_ptr_null(recs);
    ck_assert_uint_eq(n, 0);
    ck_assert_str_eq(why.reason, reason);
    if (frag1)
        ck_assert_msg(strstr(why.message, frag1), "\"%s\" lacks \"%s\"", why.message, frag1);
    if (frag2)
        ck_assert_msg(strstr(why.message, frag2), "\"%s\" lacks \"%s\"", why.message, frag2);
}

static void not_exported(json_t *svc, bool by_default, const char *reason)
{
    struct export_options o = opts(by_default);
    struct export_record *recs = NULL;
    size_t n = 99;
    struct kube_reason why;
    ck_assert_int_eq(kube_service_to_records(svc, &o, &recs, &n, &why), 0);
    ck_assert_uint_eq(n, 0);
    ck_assert_str_eq(why.reason, reason);
}

START_TEST(test_loadbalancer_local_multiport)
{
    json_t *svc = fixture_json("svc-lb-local.json");
    struct export_record *r = convert(svc, false, 2);
    ck_assert_str_eq(r[0].cluster, "dc1-prod");
    ck_assert_str_eq(r[0].namespace, "shop");
    ck_assert_str_eq(r[0].service, "web");
    ck_assert_str_eq(r[0].port_name, "http");
    ck_assert_str_eq(r[1].port_name, "https");
    ck_assert_str_eq(r[0].type, "LoadBalancer");
    ck_assert_str_eq(r[0].protocol, "TCP");
    ck_assert_int_eq(r[0].port, 80);
    ck_assert_int_eq(r[0].node_port, 30080);
    ck_assert_int_eq(r[1].port, 443);
    ck_assert_int_eq(r[1].node_port, 30443);
    for (int i = 0; i < 2; i++) {
        /* kube-proxy's health check: 200 only on nodes with local endpoints */
        ck_assert_int_eq(r[i].health_check_port, 31999);
        ck_assert_str_eq(r[i].health_check_path, "/healthz");
        ck_assert_str_eq(r[i].health_check_source, "healthCheckNodePort");
        ck_assert_str_eq(r[i].load_balancer_class, "public");
        ck_assert_str_eq(r[i].backend_protocol, "http");
        ck_assert_str_eq(r[i].dns_name, "shop.example.com");
        ck_assert(!r[i].proxy_protocol);
        ck_assert_int_eq(r[i].listen_port, 0);
        ck_assert(r[i].kse_service_per_cluster);
        ck_assert_uint_eq(json_object_size(r[i].custom_attrs), 0);
        ck_assert_uint_eq(json_object_size(r[i].labels), 2);
        ck_assert_str_eq(json_string_value(json_object_get(r[i].labels, "team")), "storefront");
        ck_assert_uint_eq(strlen(r[i].hash), 16);
        ck_assert_uint_eq(strspn(r[i].hash, "0123456789abcdef"), 16);
    }
    ck_assert_str_ne(r[0].hash, r[1].hash);
    export_records_free(r, 2);

    /* the annotation overrides healthCheckNodePort, and then no path is implied */
    fixture_annotate(svc, "drover.io/health-check-port", "30080");
    r = convert(svc, false, 2);
    ck_assert_int_eq(r[0].health_check_port, 30080);
    ck_assert_ptr_null(r[0].health_check_path);
    ck_assert_str_eq(r[0].health_check_source, "annotation");
    export_records_free(r, 2);

    /* externalTrafficPolicy Cluster: the NodePort itself is checked */
    fixture_annotate(svc, "drover.io/health-check-port", NULL);
    json_object_set_new(json_object_get(svc, "spec"), "externalTrafficPolicy",
                        json_string("Cluster"));
    r = convert(svc, false, 2);
    ck_assert_int_eq(r[0].health_check_port, 30080);
    ck_assert_int_eq(r[1].health_check_port, 30443);
    ck_assert_ptr_null(r[0].health_check_path);
    ck_assert_str_eq(r[0].health_check_source, "nodePort");
    export_records_free(r, 2);
    json_decref(svc);
}
END_TEST

START_TEST(test_kse_annotations)
{
    json_t *svc = fixture_json("svc-nodeport-kse.json");
    struct export_record *r = convert(svc, false, 1);
    ck_assert_str_eq(r->type, "NodePort");
    ck_assert_str_eq(r->port_name, "http");
    ck_assert_int_eq(r->node_port, 32046);
    ck_assert_str_eq(r->load_balancer_class, "internal");
    ck_assert_str_eq(r->backend_protocol, "tcp");
    ck_assert(r->proxy_protocol); /* "*" */
    ck_assert_str_eq(r->dns_name, "robots.example.net");
    ck_assert_str_eq(r->health_check_path, "/status");
    ck_assert_int_eq(r->health_check_port, 32047);
    ck_assert_str_eq(r->health_check_source, "annotation");
    ck_assert(!r->kse_service_per_cluster);
    json_t *ips = json_object_get(r->custom_attrs, "allowed_ips");
    ck_assert_uint_eq(json_array_size(ips), 2);
    ck_assert_str_eq(json_string_value(json_array_get(ips, 1)), "172.16.0.0/12");
    ck_assert_str_eq(json_string_value(json_object_get(r->custom_attrs, "owner")), "robots");
    ck_assert_str_eq(json_string_value(json_object_get(r->labels, "team")), "robots");
    ck_assert_ptr_null(r->kse_id_prefix);
    export_records_free(r, 1);
    fixture_annotate(svc, KUBE_ANN_KSE_PREFIX "id-prefix", "00-first");
    r = convert(svc, false, 1);
    ck_assert_str_eq(r->kse_id_prefix, "00-first");
    export_records_free(r, 1);
    json_decref(svc);
}
END_TEST

START_TEST(test_drover_annotations_win)
{
    json_t *svc = fixture_json("svc-nodeport-kse.json");
    fixture_annotate(svc, "drover.io/load-balancer-class", "public");
    fixture_annotate(svc, "drover.io/backend-protocol", "https");
    fixture_annotate(svc, "drover.io/proxy-protocol", "false");
    fixture_annotate(svc, "drover.io/dns-name", "drover.example.org");
    fixture_annotate(svc, "drover.io/health-check-path", "/ready");
    fixture_annotate(svc, "drover.io/health-check-port", "31000");
    fixture_annotate(svc, "drover.io/custom-attrs", "{\"tier\":\"gold\"}");
    fixture_annotate(svc, "drover.io/listen-port", "8443");
    struct export_record *r = convert(svc, false, 1);
    ck_assert_str_eq(r->load_balancer_class, "public");
    ck_assert_str_eq(r->backend_protocol, "https");
    ck_assert(!r->proxy_protocol);
    ck_assert_str_eq(r->dns_name, "drover.example.org");
    ck_assert_str_eq(r->health_check_path, "/ready");
    ck_assert_int_eq(r->health_check_port, 31000);
    ck_assert_int_eq(r->listen_port, 8443);
    ck_assert_uint_eq(json_object_size(r->custom_attrs), 1);
    ck_assert_str_eq(json_string_value(json_object_get(r->custom_attrs, "tier")), "gold");
    export_records_free(r, 1);

    /* opt-in: drover's annotation decides when both are present */
    fixture_annotate(svc, "drover.io/exported", "false");
    not_exported(svc, true, "NotExported");
    fixture_annotate(svc, "drover.io/exported", "true");
    fixture_annotate(svc, KUBE_ANN_KSE_PREFIX "exported", "false");
    export_records_free(convert(svc, false, 1), 1);
    /* only the winning annotation is validated */
    fixture_annotate(svc, KUBE_ANN_KSE_PREFIX "exported", "not-a-bool");
    fixture_annotate(svc, KUBE_ANN_KSE_PREFIX "load-balancer-health-check-port", "bogus");
    export_records_free(convert(svc, false, 1), 1);
    json_decref(svc);
}
END_TEST

START_TEST(test_opt_in)
{
    json_t *svc = fixture_json("svc-lb-local.json");
    fixture_annotate(svc, "drover.io/exported", NULL);
    not_exported(svc, false, "NotExported");
    export_records_free(convert(svc, true, 2), 2);
    fixture_annotate(svc, "drover.io/exported", "False");
    not_exported(svc, true, "NotExported");
    fixture_annotate(svc, "drover.io/exported", "1");
    export_records_free(convert(svc, false, 2), 2);
    fixture_annotate(svc, "drover.io/exported", NULL);
    fixture_annotate(svc, KUBE_ANN_KSE_PREFIX "exported", "true");
    export_records_free(convert(svc, false, 2), 2);
    fixture_annotate(svc, KUBE_ANN_KSE_PREFIX "exported", "false");
    not_exported(svc, true, "NotExported");
    /* a Service that is not exported is not validated further */
    fixture_annotate(svc, "drover.io/dns-name", "not a name");
    not_exported(svc, false, "NotExported");
    json_decref(svc);

    /* ClusterIP (and ExternalName) are never exported, even opted in */
    svc = fixture_json("svc-clusterip.json");
    not_exported(svc, true, "UnsupportedType");
    json_object_del(json_object_get(svc, "spec"), "type"); /* defaults to ClusterIP */
    not_exported(svc, true, "UnsupportedType");
    json_decref(svc);
}
END_TEST

START_TEST(test_unnamed_udp_port)
{
    json_t *svc = fixture_json("svc-udp-unnamed.json");
    struct export_record *r = convert(svc, false, 1);
    /* the service port, which is the same in every cluster, not the nodePort */
    ck_assert_str_eq(r->port_name, "53");
    ck_assert_str_eq(r->protocol, "UDP");
    ck_assert_int_eq(r->port, 53);
    ck_assert_int_eq(r->node_port, 30053);
    ck_assert_int_eq(r->health_check_port, 30053);
    ck_assert_str_eq(r->health_check_source, "nodePort");
    ck_assert_ptr_null(r->health_check_path);
    ck_assert_ptr_null(r->load_balancer_class);
    ck_assert_ptr_null(r->dns_name);
    ck_assert_uint_eq(json_object_size(r->labels), 0);
    export_records_free(r, 1);
    /* a port without protocol is TCP (the API default) */
    json_object_del(json_array_get(json_object_get(json_object_get(svc, "spec"), "ports"), 0),
                    "protocol");
    r = convert(svc, false, 1);
    ck_assert_str_eq(r->protocol, "TCP");
    export_records_free(r, 1);
    json_decref(svc);
}
END_TEST

struct bad_ann {
    const char *name;
    const char *value;
};

static const struct bad_ann BAD[] = {
    {"drover.io/exported", "yes"},
    {"drover.io/exported", ""},
    {"drover.io/health-check-port", "0"},
    {"drover.io/health-check-port", "65536"},
    {"drover.io/health-check-port", "80a"},
    {"drover.io/health-check-port", "-1"},
    {"drover.io/health-check-port", ""},
    {"drover.io/health-check-port", "http"},
    {"drover.io/health-check-path", "healthz"},
    {"drover.io/health-check-path", "/health z"},
    {"drover.io/health-check-path", ""},
    {"drover.io/health-check-path", "/a\"b"},
    {"drover.io/health-check-path", "/50%"},
    {"drover.io/health-check-path", "/a#frag"},
    {"drover.io/health-check-path", "/$x"},
    {"drover.io/proxy-protocol", "maybe"},
    {"drover.io/proxy-protocol", "**"},
    {"drover.io/custom-attrs", "[1,2]"},
    {"drover.io/custom-attrs", "{\"a\":"},
    {"drover.io/custom-attrs", "\"text\""},
    {"drover.io/custom-attrs", "{\"a\":1,\"a\":2}"},
    {"drover.io/dns-name", "-bad.example.com"},
    {"drover.io/dns-name", "a..example.com"},
    {"drover.io/dns-name", "has space.example.com"},
    {"drover.io/dns-name", "under_score.example.com"},
    {"drover.io/dns-name", ""},
    {"drover.io/backend-protocol", "ftp"},
    {"drover.io/backend-protocol", "HTTP"},
    {"drover.io/load-balancer-class", ""},
    {"drover.io/load-balancer-class", "has space"},
    {"drover.io/load-balancer-class", "-x"},
    {"drover.io/listen-port", "70000"},
    {KUBE_ANN_KSE_PREFIX "exported", "yes"},
    {KUBE_ANN_KSE_PREFIX "load-balancer-health-check-port", "abc"},
    {KUBE_ANN_KSE_PREFIX "load-balancer-health-check-path", "status"},
    {KUBE_ANN_KSE_PREFIX "load-balancer-proxy-protocol", "yes"},
    {KUBE_ANN_KSE_PREFIX "load-balancer-dns-name", "bad..name"},
    {KUBE_ANN_KSE_PREFIX "load-balancer-backend-protocol", "udp"},
    {KUBE_ANN_KSE_PREFIX "load-balancer-class", "a/b"},
    {KUBE_ANN_KSE_PREFIX "custom-attrs", "[]"},
    {KUBE_ANN_KSE_PREFIX "load-balancer-service-per-cluster", "nope"},
    {KUBE_ANN_KSE_PREFIX "load-balancer-listen-port", "x"},
    {KUBE_ANN_KSE_PREFIX "id-prefix", "a/b"},
};

START_TEST(test_invalid_annotation)
{
    const struct bad_ann *b = &BAD[_i];
    json_t *svc = fixture_json("svc-udp-unnamed.json");
    if (strncmp(b->name, KUBE_ANN_KSE_PREFIX, strlen(KUBE_ANN_KSE_PREFIX)) == 0) {
        /* drover's annotations would win over the KSE one under test */
        fixture_annotate(svc, "drover.io/exported", NULL);
        fixture_annotate(svc, "drover.io/backend-protocol", NULL);
        fixture_annotate(svc, KUBE_ANN_KSE_PREFIX "exported", "true");
    }
    fixture_annotate(svc, b->name, b->value);
    char quoted[160];
    snprintf(quoted, sizeof(quoted), "%s=\"%s\"", b->name, b->value);
    rejected(svc, "InvalidAnnotation", "infra/resolver", quoted);
    json_decref(svc);
}
END_TEST

START_TEST(test_valid_annotation_values)
{
    static const struct bad_ann GOOD[] = {
        {"drover.io/dns-name", "*.example.com"},
        {"drover.io/dns-name", "Example.COM."},
        {"drover.io/dns-name", "a"},
        {"drover.io/proxy-protocol", "true"},
        {"drover.io/proxy-protocol", "*"},
        {"drover.io/proxy-protocol", "0"},
        {"drover.io/backend-protocol", "h2c"},
        {"drover.io/backend-protocol", "tls"},
        {"drover.io/health-check-port", "65535"},
        {"drover.io/health-check-path", "/healthz?full=1"},
        {"drover.io/health-check-path", "/a%20b/~x:y@z"},
        {"drover.io/load-balancer-class", "corp.internal_v2"},
        {"drover.io/custom-attrs", "{}"},
        {KUBE_ANN_KSE_PREFIX "load-balancer-service-per-cluster", "true"},
    };
    for (size_t i = 0; i < sizeof(GOOD) / sizeof(GOOD[0]); i++) {
        json_t *svc = fixture_json("svc-udp-unnamed.json");
        fixture_annotate(svc, GOOD[i].name, GOOD[i].value);
        export_records_free(convert(svc, false, 1), 1);
        json_decref(svc);
    }
    json_t *svc = fixture_json("svc-udp-unnamed.json");
    fixture_annotate(svc, "drover.io/proxy-protocol", "True");
    struct export_record *r = convert(svc, false, 1);
    ck_assert(r->proxy_protocol);
    export_records_free(r, 1);
    json_decref(svc);
}
END_TEST

START_TEST(test_non_string_annotation)
{
    json_t *svc = fixture_json("svc-udp-unnamed.json");
    json_t *anns = json_object_get(json_object_get(svc, "metadata"), "annotations");
    json_object_set_new(anns, "drover.io/health-check-port", json_integer(8080));
    rejected(svc, "InvalidAnnotation", "drover.io/health-check-port", "not a plain string");
    json_object_set_new(anns, "drover.io/health-check-port",
                        json_stringn("80\0"
                                     "81",
                                     5));
    rejected(svc, "InvalidAnnotation", "drover.io/health-check-port", NULL);
    json_decref(svc);
}
END_TEST

START_TEST(test_invalid_objects)
{
    json_t *svc = fixture_json("svc-lb-local.json");
    json_t *spec = json_object_get(svc, "spec");
    json_t *ports = json_object_get(spec, "ports");

    /* allocateLoadBalancerNodePorts=false: nothing to balance to */
    json_object_del(json_array_get(ports, 1), "nodePort");
    rejected(svc, "MissingNodePort", "shop/web", "spec.ports[1]");
    json_object_set_new(json_array_get(ports, 1), "nodePort", json_integer(70000));
    rejected(svc, "MissingNodePort", "spec.ports[1]", NULL);
    json_object_set_new(json_array_get(ports, 1), "nodePort", json_integer(30443));

    /* names Kubernetes never makes never become KV key segments */
    json_object_set_new(json_array_get(ports, 1), "name", json_string("%2e%2e%2f"));
    rejected(svc, "InvalidObject", "spec.ports[1].name \"%2e%2e%2f\" is not a DNS-1123 label",
             NULL);
    json_object_set_new(json_array_get(ports, 1), "name", json_string("a b"));
    rejected(svc, "InvalidObject", "DNS-1123", NULL);
    json_t *meta = json_object_get(svc, "metadata");
    json_object_set_new(meta, "name", json_string("web?a=1&b=2"));
    rejected(svc, "InvalidObject", "namespace and name must be DNS-1123 labels", NULL);
    json_object_set_new(meta, "name", json_string("web"));
    json_object_set_new(meta, "namespace", json_string("../etc"));
    rejected(svc, "InvalidObject", "namespace and name must be DNS-1123 labels", NULL);
    json_object_set_new(meta, "namespace", json_string("shop"));

    json_object_set_new(json_array_get(ports, 1), "name", json_string("http"));
    rejected(svc, "InvalidObject", "two ports named \"http\"", NULL);
    json_object_set_new(json_array_get(ports, 1), "name", json_string("https"));

    json_object_del(spec, "healthCheckNodePort");
    rejected(svc, "InvalidObject", "healthCheckNodePort", NULL);
    json_object_set_new(spec, "healthCheckNodePort", json_integer(31999));

    json_object_set_new(spec, "ports", json_array());
    rejected(svc, "InvalidObject", "no spec.ports", NULL);

    json_object_set_new(json_object_get(svc, "metadata"), "annotations", json_string("x"));
    rejected(svc, "InvalidObject", "metadata.annotations", NULL);
    json_object_del(svc, "metadata");
    rejected(svc, "InvalidObject", "metadata.namespace", NULL);
    json_decref(svc);

    json_t *arr = json_array();
    rejected(arr, "InvalidObject", NULL, NULL);
    json_decref(arr);
}
END_TEST

/* Kubernetes' name rules, case by case. */
START_TEST(test_dns1123_names)
{
    static const struct {
        const char *s;
        bool label, subdomain;
    } cases[] = {
        {"a", true, true},
        {"web-1", true, true},
        {"0abc", true, true}, /* DNS-1123 (not 1035): digits may lead */
        {"worker-1.example.com", false, true},
        {"-a", false, false},
        {"a-", false, false},
        {"A", false, false},
        {"a_b", false, false},
        {"a b", false, false},
        {"%2e%2e%2f", false, false},
        {"..", false, false},
        {"a..b", false, false},
        {".a", false, false},
        {"a.", false, false},
        {"a?b=1&c", false, false},
        {"", false, false},
        {"caf\xc3\xa9", false, false},
        {"a.-b", false, false},
    };
    char long63[64], long64[65], sub253[254], sub254[255];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ck_assert_msg(kube_name_is_dns1123_label(cases[i].s) == cases[i].label, "label \"%s\"",
                      cases[i].s);
        ck_assert_msg(kube_name_is_dns1123_subdomain(cases[i].s) == cases[i].subdomain,
                      "subdomain \"%s\"", cases[i].s);
    }
    ck_assert(!kube_name_is_dns1123_label(NULL));
    ck_assert(!kube_name_is_dns1123_subdomain(NULL));
    memset(long63, 'a', 63);
    long63[63] = '\0';
    memset(long64, 'a', 64);
    long64[64] = '\0';
    ck_assert(kube_name_is_dns1123_label(long63));
    ck_assert(!kube_name_is_dns1123_label(long64));
    memset(sub253, 'a', 253);
    sub253[253] = '\0';
    for (size_t i = 50; i < 253; i += 51)
        sub253[i] = '.';
    memcpy(sub254, sub253, 253);
    sub254[253] = 'a';
    sub254[254] = '\0';
    ck_assert(kube_name_is_dns1123_subdomain(sub253));
    ck_assert(!kube_name_is_dns1123_subdomain(sub254));
}
END_TEST

static void hash_of(json_t *svc, char out[17])
{
    struct export_record *r = convert(svc, false, 1);
    memcpy(out, r->hash, 17);
    export_records_free(r, 1);
}

START_TEST(test_hash_is_content_only)
{
    char h0[17], h1[17];
    json_t *svc = fixture_json("svc-nodeport-kse.json");
    hash_of(svc, h0);
    hash_of(svc, h1);
    ck_assert_str_eq(h0, h1);

    /* API bookkeeping, status and unselected labels do not change it */
    json_t *meta = json_object_get(svc, "metadata");
    json_object_set_new(meta, "resourceVersion", json_string("99999"));
    json_object_set_new(json_object_get(meta, "labels"), "build", json_string("1234"));
    json_object_set_new(json_object_get(svc, "status"), "loadBalancer",
                        json_pack("{s:[{s:s}]}", "ingress", "ip", "192.0.2.7"));
    /* nor does key order inside custom-attrs */
    fixture_annotate(svc, KUBE_ANN_KSE_PREFIX "custom-attrs",
                     "{\"owner\":\"robots\",\"allowed_ips\":[\"10.0.0.0/8\",\"172.16.0.0/12\"]}");
    hash_of(svc, h1);
    ck_assert_str_eq(h0, h1);

    /* content does */
    fixture_annotate(svc, KUBE_ANN_KSE_PREFIX "load-balancer-dns-name", "other.example.net");
    hash_of(svc, h1);
    ck_assert_str_ne(h0, h1);
    json_decref(svc);

    /* the hash is over the record's canonical JSON without the hash */
    svc = fixture_json("svc-udp-unnamed.json");
    struct export_record *r = convert(svc, false, 1);
    json_t *o = export_record_to_json(r, false);
    char *canon = kv_canonical(o);
    char expect[17];
    kv_hash64_hex(canon, strlen(canon), expect);
    ck_assert_str_eq(r->hash, expect);
    ck_assert_ptr_null(json_object_get(o, "hash"));
    free(canon);
    json_decref(o);
    o = export_record_to_json(r, true);
    ck_assert_str_eq(json_string_value(json_object_get(o, "hash")), r->hash);
    json_decref(o);
    export_records_free(r, 1);
    json_decref(svc);

    /* known SHA-256 prefix: sha256("abc") = ba7816bf8f01cfea... */
    kv_hash64_hex("abc", 3, expect);
    ck_assert_str_eq(expect, "ba7816bf8f01cfea");
}
END_TEST

/* Records from the slim copy equal those from the full object. */
START_TEST(test_slim_copy_same_records)
{
    static const char *const fixtures[] = {"svc-lb-local.json", "svc-nodeport-kse.json",
                                           "svc-udp-unnamed.json", "svc-clusterip.json"};
    for (size_t f = 0; f < 4; f++) {
        json_t *full = fixture_json(fixtures[f]);
        fixture_annotate(full, "drover.io/custom-attrs", "{\"k\":[1,2]}");
        json_t *slim = kube_service_slim(full);
        ck_assert_ptr_nonnull(slim);
        struct export_options o = opts(true);
        struct export_record *a, *b;
        size_t na, nb;
        struct kube_reason wa, wb;
        int ra = kube_service_to_records(full, &o, &a, &na, &wa);
        int rb = kube_service_to_records(slim, &o, &b, &nb, &wb);
        ck_assert_int_eq(ra, rb);
        ck_assert_uint_eq(na, nb);
        ck_assert_str_eq(wa.reason, wb.reason);
        for (size_t i = 0; i < na; i++)
            ck_assert_str_eq(a[i].hash, b[i].hash);
        export_records_free(a, na);
        export_records_free(b, nb);
        /* and it is much smaller */
        char *tf = json_dumps(full, JSON_COMPACT), *ts = json_dumps(slim, JSON_COMPACT);
        ck_assert_uint_lt(strlen(ts), strlen(tf));
        ck_assert_ptr_null(strstr(ts, "managedFields"));
        ck_assert_ptr_null(strstr(ts, "last-applied-configuration"));
        free(tf);
        free(ts);
        json_decref(slim);
        json_decref(full);
    }
    /* invalid inputs stay invalid */
    json_t *svc = fixture_json("svc-udp-unnamed.json");
    json_object_set_new(json_object_get(svc, "metadata"), "annotations", json_string("x"));
    json_t *slim = kube_service_slim(svc);
    rejected(slim, "InvalidObject", "metadata.annotations", NULL);
    json_decref(slim);
    json_object_set_new(json_object_get(svc, "spec"), "ports", json_pack("[i]", 5));
    json_object_del(json_object_get(svc, "metadata"), "annotations");
    fixture_annotate(svc, "drover.io/exported", "true");
    slim = kube_service_slim(svc);
    rejected(slim, "InvalidObject", "spec.ports[0]", NULL);
    json_decref(slim);
    json_decref(svc);
    ck_assert_ptr_null(kube_service_slim(NULL));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("kube_services");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_loadbalancer_local_multiport);
    tcase_add_test(tc, test_kse_annotations);
    tcase_add_test(tc, test_drover_annotations_win);
    tcase_add_test(tc, test_opt_in);
    tcase_add_test(tc, test_unnamed_udp_port);
    tcase_add_loop_test(tc, test_invalid_annotation, 0, (int)(sizeof(BAD) / sizeof(BAD[0])));
    tcase_add_test(tc, test_valid_annotation_values);
    tcase_add_test(tc, test_non_string_annotation);
    tcase_add_test(tc, test_invalid_objects);
    tcase_add_test(tc, test_dns1123_names);
    tcase_add_test(tc, test_hash_is_content_only);
    tcase_add_test(tc, test_slim_copy_same_records);
    suite_add_tcase(s, tc);
    return suite_main_run(s);
}
