/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target for the KV schema library's parsers of outside input (keys
 * and values read from Consul). Input: "<key>\n<value>", key relative to
 * the root "drover/v1/". Every key goes through kv_key_parse (and, below
 * maintenance/, kv_maint_id_parse; below director/<c>/,
 * kv_director_key_parse); every value that is JSON goes through every
 * record decoder. Properties: no crash, no leak, whatever the bytes; a
 * decoded node's server address and a maintenance id's address are
 * canonical IP text; an accepted kube service's health check path is a
 * valid `path` value; a decoded status entry, staged change or config
 * version encodes and decodes again to the same JSON.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "haproxy_value.h"
#include "kv_deploy.h"
#include "kv_director.h"
#include "kv_haproxy.h"
#include "kv_key.h"
#include "kv_kube.h"
#include "kv_maint.h"
#include "kv_status.h"

static void assert_ip(const char *ip)
{
    unsigned char b[16];
    if (inet_pton(AF_INET, ip, b) != 1 && inet_pton(AF_INET6, ip, b) != 1)
        abort();
}

/* A staged change or a version: what decodes, encodes, and decodes again
 * to the same JSON (the watcher and droverctl both read these). */
static void deploy_roundtrip(const json_t *v, bool staged)
{
    char err[512], *text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
    struct kv_deploy_rec r, again;
    if (!text)
        return;
    if (kv_deploy_decode(text, strlen(text), "k", staged, &r, err, sizeof(err)) == 0) {
        json_t *once = kv_deploy_encode(&r);
        char *t1 = once ? json_dumps(once, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        if (t1 && kv_deploy_decode(t1, strlen(t1), "k", staged, &again, err, sizeof(err)) != 0)
            abort(); /* what the encoder writes, the decoder takes */
        if (t1) {
            json_t *twice = kv_deploy_encode(&again);
            if (twice && !json_equal(once, twice))
                abort();
            json_decref(twice);
            kv_deploy_clear(&again);
        }
        free(t1);
        json_decref(once);
        kv_deploy_clear(&r);
    }
    free(text);
}

static void decode_all(const json_t *v)
{
    deploy_roundtrip(v, true);
    deploy_roundtrip(v, false);
    char err[512];
    const char *why;
    struct kvm_kube_service ks = {0};
    if (kvm_kube_service_decode(v, "c", "ns", "s", "p", &ks, err, sizeof(err)) == 0 &&
        ks.health_check_path &&
        haproxy_value_check(HAPROXY_VALUE_PATH, ks.health_check_path, strlen(ks.health_check_path),
                            &why) < 0)
        abort();
    kvm_kube_service_clear(&ks);
    struct kvm_node nd = {0};
    if (kvm_node_decode(v, "c", "n", &nd, err, sizeof(err)) == 0 && kvm_node_server_address(&nd))
        assert_ip(kvm_node_server_address(&nd));
    kvm_node_clear(&nd);
    struct kvm_service s = {0};
    (void)kvm_service_decode(v, "svc", &s, err, sizeof(err));
    kvm_service_clear(&s);
    struct kvm_force f = {0};
    (void)kvm_force_decode(v, &f, err, sizeof(err));
    kvm_force_clear(&f);
    struct kvm_maint x = {0};
    (void)kvm_maint_decode(v, &x, err, sizeof(err));
    kvm_maint_clear(&x);
    struct kv_director_proxy p;
    (void)kv_director_proxy_decode(v, "p", "proxies/p", &p, err, sizeof(err));
    kv_director_proxy_clear(&p);
    struct kv_director_vip vip;
    (void)kv_director_vip_decode(v, "v", "vips/v", &vip, err, sizeof(err));
    kv_director_vip_clear(&vip);
    struct kv_director_config c;
    (void)kv_director_config_decode(v, "config", &c, err, sizeof(err));
    struct kv_director_force df;
    (void)kv_director_force_decode(v, "force", &df, err, sizeof(err));
    kv_director_force_clear(&df);
    struct kv_status_rec st;
    if (kv_status_decode(v, &st, err, sizeof(err)) == 0) {
        json_t *once = kv_status_encode(&st), *twice = NULL;
        struct kv_status_rec again;
        if (once && kv_status_decode(once, &again, err, sizeof(err)) == 0) {
            twice = kv_status_encode(&again);
            kv_status_free(&again);
        } else if (once) {
            abort(); /* what the encoder writes, the decoder takes */
        }
        if (once && twice && !json_equal(once, twice))
            abort();
        json_decref(once);
        json_decref(twice);
    }
    kv_status_free(&st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *nl = memchr(data, '\n', size);
    size_t klen = nl ? (size_t)(nl - (const char *)data) : size;
    char *key = malloc(klen + 11);
    if (!key)
        return 0;
    memcpy(key, "drover/v1/", 10);
    memcpy(key + 10, data, klen);
    key[klen + 10] = '\0';
    if (strlen(key) == klen + 10) { /* no NUL inside */
        struct kv_key k;
        kv_key_parse("drover/v1/", key, &k);
        if (k.kind == KV_KEY_MAINTENANCE) {
            struct kv_maint_id id;
            if (kv_maint_id_parse(k.rel, &id, NULL, 0) == 0 && id.kind == KVM_MAINT_ADDR)
                assert_ip(id.a);
        } else if (k.kind == KV_KEY_DIRECTOR) {
            const char *name;
            (void)kv_director_key_parse(k.rel, &name);
        } else if (k.kind == KV_KEY_STATUS) {
            char host[256], role[16];
            (void)kv_status_key_parse(k.rel, host, role);
        }
    }
    free(key);
    if (nl) {
        json_error_t je;
        size_t off = klen + 1;
        json_t *v = json_loadb((const char *)data + off, size - off, JSON_REJECT_DUPLICATES, &je);
        if (v)
            decode_all(v);
        json_decref(v);
    }
    return 0;
}
