/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The machine-readable KV schema (kv_schema.h) against the kv_* modules
 * that implement it, and against the checked-in docs/kv-schema.json:
 *
 *  - every record's example decodes with the record's decoder; leaving out
 *    a field marked required makes the decoder refuse it, naming the
 *    field; leaving out any other field does not;
 *  - what the encoders write has exactly the fields marked `always`
 *    (optional ones unset) or all fields (everything set);
 *  - every example field has the declared type;
 *  - docs/kv-schema.json equals the generated document. To regenerate:
 *      KV_SCHEMA_WRITE=1 build/default/tests/unit/common/common_kv_schema
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv_audit.h"
#include "kv_deploy.h"
#include "kv_director.h"
#include "kv_frontdoor.h"
#include "kv_haproxy.h"
#include "kv_key.h"
#include "kv_kube.h"
#include "kv_maint.h"
#include "kv_schema.h"
#include "kv_servers.h"
#include "kv_status.h"
#include "suite_main.h"

#define SCHEMA_FILE DROVER_SOURCE_DIR "/docs/kv-schema.json"

/* Decode v as record name: 0, -EINVAL (message in err), or 1 when the
 * record has no decoder in the library. */
static int decode(const char *name, const json_t *v, char *err, size_t errlen)
{
    int rc = 1;
    if (!strcmp(name, "kube_service")) {
        struct kvm_kube_service k = {0};
        rc = kvm_kube_service_decode(v, "c", "ns", "svc", "p", &k, err, errlen);
        kvm_kube_service_clear(&k);
    } else if (!strcmp(name, "kube_node")) {
        struct kvm_node n = {0};
        rc = kvm_node_decode(v, "c", "n", &n, err, errlen);
        kvm_node_clear(&n);
    } else if (!strcmp(name, "haproxy_service")) {
        struct kvm_service s = {0};
        rc = kvm_service_decode(v, "web", &s, err, errlen);
        kvm_service_clear(&s);
    } else if (!strcmp(name, "haproxy_force_removal") || !strcmp(name, "haproxy_force_kv_loss")) {
        struct kvm_force f = {0};
        rc = kvm_force_decode(v, &f, err, errlen);
        kvm_force_clear(&f);
    } else if (!strcmp(name, "maintenance")) {
        struct kvm_maint x = {0};
        rc = kvm_maint_decode(v, &x, err, errlen);
        kvm_maint_clear(&x);
    } else if (!strcmp(name, "director_proxy")) {
        struct kv_director_proxy p;
        rc = kv_director_proxy_decode(v, "p1", "proxies/p1", &p, err, errlen);
        kv_director_proxy_clear(&p);
    } else if (!strcmp(name, "director_vip")) {
        struct kv_director_vip x;
        rc = kv_director_vip_decode(v, "v1", "vips/v1", &x, err, errlen);
        kv_director_vip_clear(&x);
    } else if (!strcmp(name, "director_config")) {
        struct kv_director_config c;
        rc = kv_director_config_decode(v, "config", &c, err, errlen);
    } else if (!strcmp(name, "director_force")) {
        struct kv_director_force f;
        rc = kv_director_force_decode(v, "force", &f, err, errlen);
        kv_director_force_clear(&f);
    } else if (!strncmp(name, "frontdoor_", 10)) {
        char *text = json_dumps(v, JSON_COMPACT);
        if (!text)
            return -ENOMEM;
        if (!strcmp(name, "frontdoor_host")) {
            struct kv_frontdoor_host h;
            rc = kv_frontdoor_host_decode(text, strlen(text), &h, err, errlen);
            if (rc == 0)
                kv_frontdoor_host_clear(&h);
        } else {
            struct kv_frontdoor_status st;
            rc = kv_frontdoor_status_decode(text, strlen(text), &st, err, errlen);
            if (rc == 0)
                kv_frontdoor_status_clear(&st);
        }
        free(text);
        if (rc == -EBADMSG)
            rc = -EINVAL;
    } else if (!strcmp(name, "status")) {
        struct kv_status_rec st;
        rc = kv_status_decode(v, &st, err, errlen);
        kv_status_free(&st);
    } else if (!strncmp(name, "deploy_", 7)) {
        char *text = json_dumps(v, JSON_COMPACT);
        struct kv_deploy_rec d;
        if (!text)
            return -ENOMEM;
        rc = kv_deploy_decode(text, strlen(text), name, !strcmp(name, "deploy_staged"), &d, err,
                              errlen);
        free(text);
        kv_deploy_clear(&d);
    }
    return rc;
}

static bool type_ok(const char *type, const json_t *v)
{
    char buf[64];
    snprintf(buf, sizeof(buf), "%s", type);
    for (char *save = NULL, *t = strtok_r(buf, "|", &save); t; t = strtok_r(NULL, "|", &save)) {
        if ((!strcmp(t, "string") && json_is_string(v)) ||
            (!strcmp(t, "integer") && json_is_integer(v)) ||
            (!strcmp(t, "number") && json_is_number(v)) ||
            (!strcmp(t, "boolean") && json_is_boolean(v)) ||
            (!strcmp(t, "object") && json_is_object(v)) ||
            (!strcmp(t, "array") && json_is_array(v)) || (!strcmp(t, "null") && json_is_null(v)))
            return true;
    }
    return false;
}

START_TEST(test_examples_and_required_fields)
{
    char err[512];
    size_t decoded = 0;
    for (size_t i = 0; i < kv_schema_n_records; i++) {
        const struct kv_schema_record *r = &kv_schema_records[i];
        if (r->reserved)
            continue;
        json_error_t je;
        json_t *ex = json_loads(r->example, JSON_REJECT_DUPLICATES, &je);
        ck_assert_msg(ex, "%s: example: %s", r->name, je.text);
        /* the example uses only declared fields, each with its type */
        const char *k;
        json_t *val;
        json_object_foreach(ex, k, val)
        {
            const struct kv_schema_field *f = NULL;
            for (size_t j = 0; j < r->n_fields && !f; j++)
                if (!strcmp(r->fields[j].name, k))
                    f = &r->fields[j];
            ck_assert_msg(f, "%s: example field %s is not declared", r->name, k);
            ck_assert_msg(type_ok(f->type, val), "%s.%s: not a %s", r->name, k, f->type);
        }
        int rc = decode(r->name, ex, err, sizeof(err));
        if (rc == 1) {
            json_decref(ex);
            continue;
        }
        decoded++;
        ck_assert_msg(rc == 0, "%s: example refused: %s", r->name, err);
        for (size_t j = 0; j < r->n_fields; j++) {
            const struct kv_schema_field *f = &r->fields[j];
            json_t *v = json_deep_copy(ex);
            ck_assert_msg(json_object_get(v, f->name), "%s: example lacks %s", r->name, f->name);
            json_object_del(v, f->name);
            err[0] = '\0';
            rc = decode(r->name, v, err, sizeof(err));
            if (f->required) {
                ck_assert_msg(rc == -EINVAL, "%s: accepted without required %s", r->name, f->name);
                ck_assert_msg(strstr(err, f->name), "%s: message '%s' does not name %s", r->name,
                              err, f->name);
            } else {
                ck_assert_msg(rc == 0, "%s: refused without optional %s: %s", r->name, f->name,
                              err);
            }
            json_decref(v);
        }
        json_decref(ex);
    }
    ck_assert_uint_eq(decoded, 15);
}
END_TEST

/* The keys of o equal the fields of record name (always ones only when
 * always_only). */
static void assert_fields(const char *name, json_t *o, bool always_only)
{
    const struct kv_schema_record *r = kv_schema_record(name);
    ck_assert_ptr_nonnull(r);
    ck_assert_ptr_nonnull(o);
    size_t want = 0;
    for (size_t j = 0; j < r->n_fields; j++) {
        const struct kv_schema_field *f = &r->fields[j];
        if (always_only && !f->always)
            continue;
        want++;
        ck_assert_msg(json_object_get(o, f->name), "%s: encoder leaves out %s", name, f->name);
        ck_assert_msg(type_ok(f->type, json_object_get(o, f->name)), "%s.%s: not a %s", name,
                      f->name, f->type);
    }
    ck_assert_msg(json_object_size(o) == want, "%s: encoder writes %zu fields, schema %zu", name,
                  json_object_size(o), want);
    json_decref(o);
}

static json_t *from_text(char *text)
{
    ck_assert_ptr_nonnull(text);
    json_t *o = json_loads(text, 0, NULL);
    free(text);
    return o;
}

START_TEST(test_encoders_write_the_schema)
{
    json_t *labels = json_object();
    struct kv_kube_service_rec s = {.cluster = "c",
                                    .namespace = "n",
                                    .service = "s",
                                    .port_name = "http",
                                    .type = "NodePort",
                                    .protocol = "TCP",
                                    .port = 80,
                                    .node_port = 30080,
                                    .health_check_port = 30080,
                                    .health_check_source = "nodePort",
                                    .hash = "0123456789abcdef"};
    assert_fields("kube_service", kv_kube_service_json(&s, true), true);
    s.health_check_path = "/hz";
    s.load_balancer_class = "public";
    s.dns_name = "a.example.com";
    s.listen_port = 8080;
    s.labels = labels;
    assert_fields("kube_service", kv_kube_service_json(&s, true), false);

    const char *addrs[] = {"10.0.0.1"};
    struct kv_kube_node_rec n = {.name = "n", .cluster = "c", .eligible = true};
    assert_fields("kube_node", from_text(kv_kube_node_encode(&n)), true);
    n.addresses = addrs;
    n.n_addresses = 1;
    n.zone = "dc1-a";
    assert_fields("kube_node", from_text(kv_kube_node_encode(&n)), false);

    struct kv_frontdoor_host fh = {.drained = true};
    assert_fields("frontdoor_host", from_text(kv_frontdoor_host_encode(&fh)), true);
    fh.author = "alice";
    fh.reason = "upgrade";
    fh.since = "2026-11-23T15:04:05Z";
    assert_fields("frontdoor_host", from_text(kv_frontdoor_host_encode(&fh)), false);
    struct kv_frontdoor_status fs = {.cluster = "dc1"};
    assert_fields("frontdoor_status", from_text(kv_frontdoor_status_encode(&fs)), true);

    struct kv_kube_meta_rec m = {.cluster = "c", .last_full_sync_unix = 1795957200};
    assert_fields("kube_meta", from_text(kv_kube_meta_encode(&m)), false);

    struct kv_maint_rec x = {.target = "addr/10.0.0.1",
                             .admin = KVM_ADMIN_DRAIN,
                             .weight = -1,
                             .author = "alice",
                             .created = 1795957200};
    assert_fields("maintenance", kv_maint_encode(&x), true);
    x.weight = 50;
    x.reason = "disk";
    x.expires = 1795960800;
    assert_fields("maintenance", kv_maint_encode(&x), false);

    struct kv_audit_rec a = {.time_ms = 1795957200000,
                             .author = "alice",
                             .source = "cli",
                             .action = "drain",
                             .target = "addr/10.0.0.1"};
    assert_fields("audit", kv_audit_encode(&a), true);
    a.reason = "disk";
    a.force = 1;
    a.after = labels;
    assert_fields("audit", kv_audit_encode(&a), false);

    struct kv_status_rec st = {.host = "proxy-a",
                               .role = KV_STATUS_ROLE_HAPROXY,
                               .cluster = "edge",
                               .version = "0.1.0",
                               .started_unix = 1795957200,
                               .updated_unix = 1795957201};
    assert_fields("status", kv_status_encode(&st), true);
    /* a service with a static server's slot, through encode and decode */
    struct kv_status_slot slot = {.server = "be_web/s1", .slot = "slot2"};
    struct kv_status_service svc = {.name = "web",
                                    .definition = "3f9c0a6e5b7d2c18",
                                    .config_hash = "9c1e0b7a55d2e301",
                                    .slots = &slot,
                                    .n_slots = 1};
    st.services = &svc;
    st.n_services = 1;
    json_t *enc = kv_status_encode(&st);
    struct kv_status_rec back;
    char err[256];
    ck_assert_int_eq(kv_status_decode(enc, &back, err, sizeof(err)), 0);
    ck_assert_uint_eq(back.n_services, 1);
    ck_assert_uint_eq(back.services[0].n_slots, 1);
    ck_assert_str_eq(back.services[0].slots[0].server, "be_web/s1");
    ck_assert_str_eq(back.services[0].slots[0].slot, "slot2");
    kv_status_free(&back);
    json_object_set_new(json_object_get(json_object_get(enc, "services"), "web"), "slots",
                        json_pack("{s:i}", "be_web/s1", 2));
    ck_assert_int_eq(kv_status_decode(enc, &back, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "slots.be_web/s1"));
    json_decref(enc);
    /* HAProxy's error counters, through encode and decode; a negative one is refused */
    svc.n_slots = 0;
    svc.have_errors = true;
    svc.errors = (struct kv_status_errors){.requests = 10, .http_5xx = 3, .conn_errors = 2};
    enc = kv_status_encode(&st);
    ck_assert_int_eq(kv_status_decode(enc, &back, err, sizeof(err)), 0);
    ck_assert(back.services[0].have_errors);
    ck_assert_int_eq(back.services[0].errors.requests, 10);
    ck_assert_int_eq(back.services[0].errors.http_5xx, 3);
    ck_assert_int_eq(back.services[0].errors.conn_errors, 2);
    kv_status_free(&back);
    json_object_set_new(
        json_object_get(json_object_get(json_object_get(enc, "services"), "web"), "errors"),
        "resp_errors", json_integer(-1));
    ck_assert_int_eq(kv_status_decode(enc, &back, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "services.web.errors"));
    json_decref(enc);
    st.services = NULL;
    st.n_services = 0;
    char *vips[] = {"192.0.2.10", NULL};
    st.role = KV_STATUS_ROLE_DIRECTOR;
    st.last_error = "no table";
    st.table_checksum = "0123456789abcdef";
    st.vips = vips;
    st.n_vips = 1;
    st.canary_version = 3;
    assert_fields("status", kv_status_encode(&st), false);

    char *hosts[] = {"proxy-a", NULL};
    json_t *keys = json_pack("{s:{}}", "haproxy/edge/services/web");
    json_t *base = json_pack("{s:i}", "haproxy/edge/services/web", 7);
    struct kv_deploy_rec d = {.staged = true,
                              .version = 2,
                              .cluster = "edge",
                              .canary = hosts,
                              .n_canary = 1,
                              .author = "alice",
                              .time_unix = 1795957200,
                              .keys = keys,
                              .base = base};
    assert_fields("deploy_staged", kv_deploy_encode(&d), true);
    d.reason = "why";
    d.rollback_of = 1;
    assert_fields("deploy_staged", kv_deploy_encode(&d), false);
    d.staged = false;
    d.base = NULL;
    assert_fields("deploy_version", kv_deploy_encode(&d), false);
    d.reason = NULL;
    d.rollback_of = 0;
    assert_fields("deploy_version", kv_deploy_encode(&d), true);
    json_decref(keys);
    json_decref(base);
    json_decref(labels);
}
END_TEST

/* The service value written field by field (kv_kube_service_encode) is
 * byte for byte what the jansson object gives (kv_canonical of
 * kv_kube_service_json), for every combination of optional fields and
 * for strings that need escaping; invalid UTF-8 fails both. */
static void assert_same_service_bytes(const struct kv_kube_service_rec *s)
{
    json_t *o = kv_kube_service_json(s, true);
    char *want = o ? kv_canonical(o) : NULL;
    char *got = kv_kube_service_encode(s);
    if (!want)
        ck_assert_ptr_null(got);
    else
        ck_assert_msg(got && strcmp(got, want) == 0, "encode: %s\njansson: %s", got ? got : "NULL",
                      want);
    char h[17];
    if (want) {
        json_object_del(o, "hash");
        char *nohash = kv_canonical(o);
        char expect[17];
        kv_hash64_hex(nohash, strlen(nohash), expect);
        ck_assert_int_eq(kv_kube_service_hash(s, h), 0);
        ck_assert_str_eq(h, expect);
        free(nohash);
    }
    free(got);
    free(want);
    json_decref(o);
}

START_TEST(test_service_encode_matches_canonical)
{
    char all_ascii[128];
    for (int c = 1; c < 128; c++)
        all_ascii[c - 1] = (char)c;
    all_ascii[127] = '\0';
    const char *strings[] = {
        "plain",        "",
        "a/b\"c\\d",    "tab\there\nnl\r\b\f",
        all_ascii,      "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xe2\x80\xa8",
        "\x7f\x1f\x01",
    };
    json_t *labels =
        json_pack("{s:s, s:s, s:{s:[i,b,n]}}", "z", "last", "a/b", "x\"y", "m", "k", 1, 1);
    json_t *attrs = json_pack("{s:s}", "caf\xc3\xa9", "\x01");
    json_t *empty = json_object();
    for (unsigned mask = 0; mask < 256; mask++) {
        for (size_t k = 0; k < sizeof(strings) / sizeof(strings[0]); k++) {
            const char *t = strings[k];
            struct kv_kube_service_rec s = {
                .cluster = "c",
                .namespace = mask & 1 ? t : "ns",
                .service = "svc",
                .port_name = mask & 2 ? t : "http",
                .type = "LoadBalancer",
                .protocol = "UDP",
                .port = 65535,
                .node_port = 30080,
                .health_check_port = mask & 4 ? 0 : 31000,
                .health_check_source = "annotation",
                .health_check_path = mask & 8 ? t : NULL,
                .load_balancer_class = mask & 16 ? t : NULL,
                .backend_protocol = mask & 32 ? t : NULL,
                .proxy_protocol = mask & 64,
                .dns_name = mask & 128 ? t : NULL,
                .listen_port = mask & 4 ? 8443 : 0,
                .labels = mask & 1 ? labels : (mask & 2 ? empty : NULL),
                .custom_attrs = mask & 8 ? attrs : NULL,
                .hash = "0123456789abcdef",
            };
            assert_same_service_bytes(&s);
        }
    }
    const char *bad[] = {"\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                         "a\xff"
                         "b"};
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        struct kv_kube_service_rec s = {.cluster = "c",
                                        .namespace = "n",
                                        .service = "s",
                                        .port_name = "p",
                                        .type = "NodePort",
                                        .protocol = "TCP",
                                        .health_check_source = "nodePort",
                                        .dns_name = bad[k],
                                        .hash = "0123456789abcdef"};
        ck_assert_ptr_null(kv_kube_service_encode(&s));
        assert_same_service_bytes(&s);
    }
    json_decref(labels);
    json_decref(attrs);
    json_decref(empty);
}
END_TEST

START_TEST(test_schema_file_current)
{
    json_t *doc = kv_schema_json();
    ck_assert_ptr_nonnull(doc);
    char *want = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(doc);
    ck_assert_ptr_nonnull(want);
    size_t wl = strlen(want);
    if (getenv("KV_SCHEMA_WRITE")) {
        FILE *f = fopen(SCHEMA_FILE, "w");
        ck_assert_msg(f, "cannot write %s", SCHEMA_FILE);
        fprintf(f, "%s\n", want);
        fclose(f);
    }
    FILE *f = fopen(SCHEMA_FILE, "r");
    ck_assert_msg(f, "cannot read %s", SCHEMA_FILE);
    char *have = calloc(1, wl + 64);
    size_t hl = fread(have, 1, wl + 63, f);
    fclose(f);
    ck_assert_msg(hl == wl + 1 && memcmp(have, want, wl) == 0 && have[wl] == '\n',
                  "docs/kv-schema.json differs from common/kv_schema.c; regenerate it with "
                  "KV_SCHEMA_WRITE=1 build/default/tests/unit/common/common_kv_schema and "
                  "update docs/kv-schema.md to match");
    free(have);
    free(want);
}
END_TEST

START_TEST(test_keys)
{
    struct kv_key k;
    kv_key_parse("drover/v1/", "drover/v1/kube/dc1/services/shop/web/https", &k);
    ck_assert_int_eq(k.kind, KV_KEY_KUBE_SERVICE);
    ck_assert_str_eq(k.seg[3], "https");
    kv_key_parse("drover/v1/", "drover/v1/kube/dc1/nodes/n1", &k);
    ck_assert_int_eq(k.kind, KV_KEY_KUBE_NODE);
    kv_key_parse("drover/v1/", "drover/v1/kube/dc1/nodes/n1/x", &k);
    ck_assert_int_eq(k.kind, KV_KEY_KUBE_MALFORMED);
    kv_key_parse("drover/v1/", "drover/v1/kube/dc1/meta", &k);
    ck_assert_int_eq(k.kind, KV_KEY_KUBE_META);
    kv_key_parse("drover/v1/", "drover/v1/haproxy/edge/services/web", &k);
    ck_assert_int_eq(k.kind, KV_KEY_HAPROXY_SERVICE);
    ck_assert_str_eq(k.seg[0], "edge");
    kv_key_parse("drover/v1/", "drover/v1/haproxy/edge/services/", &k);
    ck_assert_int_eq(k.kind, KV_KEY_OTHER);
    kv_key_parse("drover/v1/", "drover/v1/director/d1/proxies/p1", &k);
    ck_assert_int_eq(k.kind, KV_KEY_DIRECTOR);
    ck_assert_str_eq(k.rel, "proxies/p1");
    kv_key_parse("drover/v1/", "other/kube/dc1/nodes/n1", &k);
    ck_assert_int_eq(k.kind, KV_KEY_OTHER);
    /* folder keys are no records, under any prefix */
    static const char *const folders[] = {
        "drover/v1/maintenance/", "drover/v1/maintenance/node/", "drover/v1/kube/dc1/nodes/",
        "drover/v1/director/d1/", "drover/v1/frontdoor/hosts/",  "drover/v1/"};
    for (size_t i = 0; i < sizeof(folders) / sizeof(folders[0]); i++) {
        kv_key_parse("drover/v1/", folders[i], &k);
        ck_assert_msg(k.kind == KV_KEY_OTHER, "%s: kind %d, want a folder key (other)", folders[i],
                      k.kind);
    }

    struct kv_maint_id id;
    ck_assert_int_eq(kv_maint_id_parse("addr/2001:DB8::0:1", &id, NULL, 0), 0);
    ck_assert_str_eq(id.id, "addr/2001:db8::1");
    ck_assert_int_eq(kv_maint_id_parse("server/be/slot3", &id, NULL, 0), 0);
    ck_assert_int_eq(id.kind, KVM_MAINT_SERVER);
    ck_assert_int_eq(kv_maint_id_parse("addr/banana", &id, NULL, 0), -EINVAL);
    ck_assert_int_eq(kv_maint_id_parse("node/c", &id, NULL, 0), -EINVAL);
    ck_assert_int_eq(kv_maint_id_parse("node/c/n/x", &id, NULL, 0), -EINVAL);
}
END_TEST

/* The node shard (kv_key.h): the same vectors as tests/unit/kv/test_schema_docs.py
 * checks against tests/lib/kv_schema.py, so C and Python writers agree. */
START_TEST(test_node_shards)
{
    static const struct {
        const char *node;
        unsigned shard;
    } v[] = {{"", 0x05},          {"n1", 0x00},        {"worker-a1.dc1.example.net", 0x07},
             {"node-0000", 0x00}, {"node-0499", 0x02}, {"a", 0x0c}};
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
        ck_assert_msg(kv_key_node_shard(v[i].node) == v[i].shard, "shard of \"%s\": %u, want %u",
                      v[i].node, kv_key_node_shard(v[i].node), v[i].shard);

    char *key = kv_key_kube_node("drover/v1/", "dc1", "worker-a1.dc1.example.net");
    ck_assert_str_eq(key, "drover/v1/kube/dc1/node-shards/07/worker-a1.dc1.example.net");
    struct kv_key k;
    kv_key_parse("drover/v1/", key, &k);
    ck_assert_int_eq(k.kind, KV_KEY_KUBE_NODE);
    ck_assert(k.node_sharded);
    ck_assert_str_eq(k.seg[0], "dc1");
    ck_assert_str_eq(k.seg[1], "worker-a1.dc1.example.net");
    free(key);
    key = kv_key_kube_node_flat("drover/v1/", "dc1", "n1");
    ck_assert_str_eq(key, "drover/v1/kube/dc1/nodes/n1");
    kv_key_parse("drover/v1/", key, &k);
    ck_assert_int_eq(k.kind, KV_KEY_KUBE_NODE);
    ck_assert(!k.node_sharded);
    free(key);
    ck_assert_ptr_null(kv_key_kube_node("drover/v1/", "dc1", "a/b"));
    ck_assert_ptr_null(kv_key_kube_node_shard_prefix("drover/v1/", "dc1", KV_NODE_SHARDS));
    key = kv_key_kube_node_shard_prefix("drover/v1/", "dc1", 15);
    ck_assert_str_eq(key, "drover/v1/kube/dc1/node-shards/0f/");
    free(key);

    /* a node in another node's shard, or in no shard, is malformed: a
     * reader watching its real shard would never see it */
    static const char *const bad[] = {"drover/v1/kube/dc1/node-shards/00/worker-a1.dc1.example.net",
                                      "drover/v1/kube/dc1/node-shards/7/worker-a1.dc1.example.net",
                                      "drover/v1/kube/dc1/node-shards/07",
                                      "drover/v1/kube/dc1/node-shards/07/n/x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        kv_key_parse("drover/v1/", bad[i], &k);
        ck_assert_msg(k.kind == KV_KEY_KUBE_MALFORMED, "%s: kind %d, want malformed", bad[i],
                      k.kind);
    }
    kv_key_parse("drover/v1/", "drover/v1/kube/dc1/node-shards/07/", &k);
    ck_assert_int_eq(k.kind, KV_KEY_OTHER); /* a folder key */
}
END_TEST

static const void *find_first(void *arg, enum kvm_maint_kind kind, const char *a, const char *b)
{
    const char *const *have = arg; /* "kind:a:b" strings */
    char want[300];
    snprintf(want, sizeof(want), "%d:%s:%s", (int)kind, a, b ? b : "");
    for (size_t i = 0; have[i]; i++)
        if (!strcmp(have[i], want))
            return have[i];
    return NULL;
}

START_TEST(test_precedence)
{
    const char *all[] = {"0:c:n1", "1:10.0.0.1:", "2:be:slot1", "2:be:static-1", NULL};
    const char *names[] = {"slot1", "static-1"};
    ck_assert_str_eq(kv_maint_resolve(find_first, all, "be", names, 2, "10.0.0.1", "c", "n1"),
                     "2:be:slot1");
    ck_assert_str_eq(kv_maint_resolve(find_first, all, "be", names + 1, 1, "10.0.0.1", "c", "n1"),
                     "2:be:static-1");
    ck_assert_str_eq(kv_maint_resolve(find_first, all, "be", NULL, 0, "10.0.0.1", "c", "n1"),
                     "1:10.0.0.1:");
    ck_assert_str_eq(kv_maint_resolve(find_first, all, "be", NULL, 0, "10.0.0.2", "c", "n1"),
                     "0:c:n1");
    ck_assert_ptr_null(kv_maint_resolve(find_first, all, "be", NULL, 0, "10.0.0.2", NULL, NULL));
}
END_TEST

static const struct kvm_kube_service port_a = {.cluster = "c", .node_port = 30080};

static const struct kvm_kube_service *lookup(void *arg, const struct kvm_kube_ref *r)
{
    (void)arg;
    return !strcmp(r->service, "a") ? &port_a : NULL;
}

START_TEST(test_servers)
{
    char *a1[] = {"10.0.0.1", "fd00::1"}, *a2[] = {"10.0.0.2"}, *a3[] = {"10.0.0.3"};
    struct kvm_node nodes[] = {
        {.cluster = "c", .name = "n1", .addresses = a1, .n_addresses = 2, .eligible = true},
        {.cluster = "c", .name = "n2", .addresses = a2, .n_addresses = 1, .eligible = false},
        {.cluster = "other", .name = "n3", .addresses = a3, .n_addresses = 1, .eligible = true},
        {.cluster = "c", .name = "n4", .eligible = true},
    };
    struct kvm_kube_ref refs[] = {{.cluster = "c", .service = "a"},
                                  {.cluster = "c", .service = "gone"},
                                  {.cluster = "c", .service = "a"}};
    struct kvm_static_server st[] = {
        {.name = "s1", .address = "10.0.0.1", .port = 30080, .weight = 7}};
    struct kvm_backend be = {
        .name = "be", .kube = refs, .n_kube = 3, .servers = st, .n_servers = 1};
    struct kv_server *v;
    size_t n;
    ck_assert_int_eq(kv_backend_servers(&be, lookup, NULL, nodes, 4, &v, &n), 0);
    /* n1 at addresses[0] only, the same id as static s1: the static one
     * stands; n2 ineligible, n3 another cluster, n4 no address */
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(v[0].id, "10.0.0.1:30080");
    ck_assert_str_eq(v[0].static_name, "s1");
    ck_assert_int_eq(v[0].weight, 7);
    free(v);
    be.n_servers = 0;
    ck_assert_int_eq(kv_backend_servers(&be, lookup, NULL, nodes, 4, &v, &n), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(v[0].node, "n1");
    ck_assert_int_eq(v[0].weight, KV_HAPROXY_DEFAULT_WEIGHT);
    free(v);
}
END_TEST

/* kv_server_id formats by hand: the same text as snprintf, truncation too */
START_TEST(test_server_id)
{
    static const char *const addrs[] = {"10.0.0.1", "fd00::1", "", "255.255.255.255"};
    static const uint16_t ports[] = {0, 7, 80, 30080, 65535};
    for (size_t a = 0; a < sizeof(addrs) / sizeof(addrs[0]); a++)
        for (size_t p = 0; p < sizeof(ports) / sizeof(ports[0]); p++)
            for (size_t len = 1; len <= 24; len++) {
                char got[24], want[24];
                memset(got, 'x', sizeof(got));
                kv_server_id(addrs[a], ports[p], got, len);
                snprintf(want, len, strchr(addrs[a], ':') ? "[%s]:%u" : "%s:%u", addrs[a],
                         ports[p]);
                ck_assert_msg(strcmp(got, want) == 0, "%s port %u len %zu: %s, want %s", addrs[a],
                              ports[p], len, got, want);
            }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("kv_schema");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_examples_and_required_fields);
    tcase_add_test(tc, test_encoders_write_the_schema);
    tcase_add_test(tc, test_service_encode_matches_canonical);
    tcase_add_test(tc, test_schema_file_current);
    tcase_add_test(tc, test_keys);
    tcase_add_test(tc, test_node_shards);
    tcase_add_test(tc, test_precedence);
    tcase_add_test(tc, test_servers);
    tcase_add_test(tc, test_server_id);
    suite_add_tcase(s, tc);
    return suite_main_run(s);
}
