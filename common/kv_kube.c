/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kv_kube: encoding and decoding of kube/<cluster>/... entries. See
 * kv_kube.h and docs/kv-schema.md.
 */
#include "kv_kube.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "errmsg.h"
#include "haproxy_value.h"
#include "hex.h"
#include "json_util.h"
#include "json_writer.h"
#include "kv_field.h"
#include "timefmt.h"

char *kv_canonical(const json_t *v)
{
    return json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
}

void kv_hash64_hex(const void *data, size_t len, char hex[17])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen < 8)
        memset(md, 0, 8); /* cannot happen with the built-in provider */
    hex_encode(md, 8, hex);
}

static char *dump_and_free(json_t *o)
{
    char *s = o ? kv_canonical(o) : NULL;
    json_decref(o);
    return s;
}

/* ---- service ports ---- */

json_t *kv_kube_service_json(const struct kv_kube_service_rec *r, bool with_hash)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    int rc = 0;
    rc |= json_object_set_new(o, "cluster", json_string(r->cluster));
    rc |= json_object_set_new(o, "namespace", json_string(r->namespace));
    rc |= json_object_set_new(o, "service", json_string(r->service));
    rc |= json_object_set_new(o, "port_name", json_string(r->port_name));
    rc |= json_object_set_new(o, "type", json_string(r->type));
    rc |= json_object_set_new(o, "protocol", json_string(r->protocol));
    rc |= json_object_set_new(o, "port", json_integer(r->port));
    rc |= json_object_set_new(o, "node_port", json_integer(r->node_port));
    rc |= json_object_set_new(o, "health_check_port", json_integer(r->health_check_port));
    rc |= json_object_set_new(o, "health_check_source", json_string(r->health_check_source));
    if (r->health_check_path)
        rc |= json_object_set_new(o, "health_check_path", json_string(r->health_check_path));
    if (r->load_balancer_class)
        rc |= json_object_set_new(o, "load_balancer_class", json_string(r->load_balancer_class));
    rc |= json_object_set_new(o, "backend_protocol",
                              json_string(r->backend_protocol ? r->backend_protocol : "tcp"));
    rc |= json_object_set_new(o, "proxy_protocol", json_boolean(r->proxy_protocol));
    if (r->dns_name)
        rc |= json_object_set_new(o, "dns_name", json_string(r->dns_name));
    if (r->listen_port)
        rc |= json_object_set_new(o, "listen_port", json_integer(r->listen_port));
    rc |= json_object_set_new(o, "labels",
                              r->labels ? json_incref((json_t *)r->labels) : json_object());
    rc |= json_object_set_new(o, "custom_attrs",
                              r->custom_attrs ? json_incref((json_t *)r->custom_attrs)
                                              : json_object());
    if (with_hash)
        rc |= json_object_set_new(o, "hash", json_string(r->hash));
    if (rc) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* A "key": of the service value, with the comma before every key but
 * the first (backend_protocol is always present and sorts first). */
static void service_key(struct json_writer *w, const char *key, bool first)
{
    if (!first)
        json_writer_raw(w, ",", 1);
    json_writer_string(w, key);
    json_writer_raw(w, ":", 1);
}

/* labels and custom_attrs: NULL is written as {} */
static void service_object(struct json_writer *w, const json_t *v)
{
    if (v)
        json_writer_value(w, v);
    else
        json_writer_raw(w, "{}", 2);
}

/* The bytes kv_canonical(kv_kube_service_json(r, with_hash)) gives, written
 * field by field in sorted key order: building and sorting a jansson
 * object per port cost most of a 5,000-Service build (docs/exporter.md).
 * test_kv_schema compares the two for every optional field and for
 * strings that need escaping. */
static char *service_encode(const struct kv_kube_service_rec *r, bool with_hash)
{
    struct json_writer w;
    json_writer_init(&w);
    json_writer_raw(&w, "{", 1);
    service_key(&w, "backend_protocol", true);
    json_writer_string(&w, r->backend_protocol ? r->backend_protocol : "tcp");
    service_key(&w, "cluster", false);
    json_writer_string(&w, r->cluster);
    service_key(&w, "custom_attrs", false);
    service_object(&w, r->custom_attrs);
    if (r->dns_name) {
        service_key(&w, "dns_name", false);
        json_writer_string(&w, r->dns_name);
    }
    if (with_hash) {
        service_key(&w, "hash", false);
        json_writer_string(&w, r->hash);
    }
    if (r->health_check_path) {
        service_key(&w, "health_check_path", false);
        json_writer_string(&w, r->health_check_path);
    }
    service_key(&w, "health_check_port", false);
    json_writer_int(&w, r->health_check_port);
    service_key(&w, "health_check_source", false);
    json_writer_string(&w, r->health_check_source);
    service_key(&w, "labels", false);
    service_object(&w, r->labels);
    if (r->listen_port) {
        service_key(&w, "listen_port", false);
        json_writer_int(&w, r->listen_port);
    }
    if (r->load_balancer_class) {
        service_key(&w, "load_balancer_class", false);
        json_writer_string(&w, r->load_balancer_class);
    }
    service_key(&w, "namespace", false);
    json_writer_string(&w, r->namespace);
    service_key(&w, "node_port", false);
    json_writer_int(&w, r->node_port);
    service_key(&w, "port", false);
    json_writer_int(&w, r->port);
    service_key(&w, "port_name", false);
    json_writer_string(&w, r->port_name);
    service_key(&w, "protocol", false);
    json_writer_string(&w, r->protocol);
    service_key(&w, "proxy_protocol", false);
    json_writer_bool(&w, r->proxy_protocol);
    service_key(&w, "service", false);
    json_writer_string(&w, r->service);
    service_key(&w, "type", false);
    json_writer_string(&w, r->type);
    json_writer_raw(&w, "}", 1);
    return json_writer_take(&w);
}

char *kv_kube_service_encode(const struct kv_kube_service_rec *r)
{
    return service_encode(r, true);
}

int kv_kube_service_hash(const struct kv_kube_service_rec *r, char hex[17])
{
    char *text = service_encode(r, false);
    if (!text)
        return -ENOMEM;
    kv_hash64_hex(text, strlen(text), hex);
    free(text);
    return 0;
}

void kvm_kube_service_clear(struct kvm_kube_service *k)
{
    free(k->cluster);
    free(k->namespace);
    free(k->service);
    free(k->port_name);
    free(k->health_check_path);
    free(k->load_balancer_class);
    free(k->backend_protocol);
    free(k->dns_name);
    json_decref(k->labels);
    memset(k, 0, sizeof(*k));
}

/* The fields class selectors use, as written (checked when selected; a
 * field of the wrong JSON type is kept as an impossible value so that
 * selection refuses the entry instead of guessing). 0 or -ENOMEM. */
static int kube_selection_fields(const json_t *root, struct kvm_kube_service *k)
{
    static const char *const names[] = {"load_balancer_class", "backend_protocol", "dns_name"};
    char **dst[] = {&k->load_balancer_class, &k->backend_protocol, &k->dns_name};
    for (size_t i = 0; i < 3; i++) {
        json_t *v = json_object_get(root, names[i]);
        if (!v)
            continue;
        if (!(*dst[i] = strdup(json_is_string(v) ? json_string_value(v) : "\n(not a string)")))
            return -ENOMEM;
    }
    json_t *lp = json_object_get(root, "listen_port");
    if (lp)
        k->listen_port = json_is_integer(lp) ? json_integer_value(lp) : -1;
    json_t *labels = json_object_get(root, "labels");
    if (json_is_object(labels))
        k->labels = json_incref(labels);
    return 0;
}

int kvm_kube_service_decode(const json_t *root, const char *cluster, const char *ns,
                            const char *svc, const char *port, struct kvm_kube_service *k,
                            char *err, size_t errlen)
{
    int64_t np = 0, hp = 0;
    bool pp = false;
    int rc;
    if (!json_is_object(root)) {
        errmsg_set(err, errlen, "expected a JSON object, got %s", json_type_desc(root));
        return -EINVAL;
    }
    if (!(k->cluster = strdup(cluster)) || !(k->namespace = strdup(ns)) ||
        !(k->service = strdup(svc)) || !(k->port_name = strdup(port)))
        return -ENOMEM;
    if ((rc = json_get_int(root, NULL, "node_port", &np, 1, 65535, true, err, errlen)) < 0 ||
        (rc = json_get_int(root, NULL, "health_check_port", &hp, 1, 65535, false, err, errlen)) <
            0 ||
        (rc = json_get_bool(root, NULL, "proxy_protocol", &pp, false, err, errlen)) < 0 ||
        (rc = kv_get_kind(root, NULL, "health_check_path", HAPROXY_VALUE_PATH, false,
                          &k->health_check_path, err, errlen)) < 0)
        return rc;
    k->node_port = (uint16_t)np;
    k->health_check_port = (uint16_t)hp;
    k->proxy_protocol = pp;
    return kube_selection_fields(root, k);
}

/* ---- nodes ---- */

char *kv_kube_node_encode(const struct kv_kube_node_rec *n)
{
    json_t *o = json_object();
    json_t *addrs = json_array();
    if (!o || !addrs) {
        json_decref(o);
        json_decref(addrs);
        return NULL;
    }
    int rc = 0;
    for (size_t i = 0; i < n->n_addresses; i++)
        rc |= json_array_append_new(addrs, json_string(n->addresses[i]));
    rc |= json_object_set_new(o, "addresses", addrs);
    if (n->n_addresses)
        rc |= json_object_set_new(o, "address", json_string(n->addresses[0]));
    rc |= json_object_set_new(o, "name", json_string(n->name));
    rc |= json_object_set_new(o, "cluster", json_string(n->cluster));
    rc |= json_object_set_new(o, "ready", json_boolean(n->ready));
    rc |= json_object_set_new(o, "schedulable", json_boolean(n->schedulable));
    rc |= json_object_set_new(o, "excluded", json_boolean(n->excluded));
    rc |= json_object_set_new(o, "selected", json_boolean(n->selected));
    rc |= json_object_set_new(o, "eligible", json_boolean(n->eligible));
    rc |= json_object_set_new(o, "labels",
                              n->labels ? json_incref((json_t *)n->labels) : json_object());
    if (n->zone)
        rc |= json_object_set_new(o, "zone", json_string(n->zone));
    if (rc) {
        json_decref(o);
        return NULL;
    }
    return dump_and_free(o);
}

void kvm_node_clear(struct kvm_node *nd)
{
    free(nd->cluster);
    free(nd->name);
    for (size_t i = 0; i < nd->n_addresses; i++)
        free(nd->addresses[i]);
    free(nd->addresses);
    free(nd->zone);
    memset(nd, 0, sizeof(*nd));
}

const char *kvm_node_server_address(const struct kvm_node *nd)
{
    return nd->n_addresses ? nd->addresses[0] : NULL;
}

bool kvm_node_has_address(const struct kvm_node *nd, const char *ip)
{
    for (size_t i = 0; i < nd->n_addresses; i++)
        if (strcmp(nd->addresses[i], ip) == 0)
            return true;
    return false;
}

int kvm_node_decode(const json_t *root, const char *cluster, const char *name, struct kvm_node *nd,
                    char *err, size_t errlen)
{
    json_t *arr;
    size_t n;
    int rc;
    if (!json_is_object(root)) {
        errmsg_set(err, errlen, "expected a JSON object, got %s", json_type_desc(root));
        return -EINVAL;
    }
    if (!(nd->cluster = strdup(cluster)) || !(nd->name = strdup(name)))
        return -ENOMEM;
    if ((rc = json_get_bool(root, NULL, "eligible", &nd->eligible, true, err, errlen)) < 0 ||
        (rc = kv_get_list(root, NULL, "addresses", false, &arr, &n, err, errlen)) < 0 ||
        (rc = kv_get_kind(root, NULL, "zone", HAPROXY_VALUE_NAME, false, &nd->zone, err, errlen)) <
            0)
        return rc;
    if (n && !(nd->addresses = calloc(n, sizeof(char *))))
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        json_t *a = json_array_get(arr, i);
        const char *why = NULL;
        const char *s = json_is_string(a) ? json_string_value(a) : NULL;
        if (!s) {
            errmsg_set(err, errlen, "addresses[%zu]: expected string, got %s", i,
                       json_type_desc(a));
            return -EINVAL;
        }
        if ((rc = kv_canon_ip(s, strlen(s), &nd->addresses[nd->n_addresses], &why)) < 0) {
            if (rc == -EINVAL)
                errmsg_set(err, errlen, "addresses[%zu]: %s", i, why);
            return rc;
        }
        nd->n_addresses++;
    }
    if (nd->n_addresses == 0) {
        /* older writers: only "address" */
        char *one = NULL;
        if ((rc = kv_get_kind(root, NULL, "address", HAPROXY_VALUE_IP, false, &one, err, errlen)) <
            0)
            return rc;
        if (one && !(nd->addresses = calloc(1, sizeof(char *)))) {
            free(one);
            return -ENOMEM;
        }
        if (one)
            nd->addresses[nd->n_addresses++] = one;
    }
    return 0;
}

/* ---- meta ---- */

char *kv_kube_meta_encode(const struct kv_kube_meta_rec *m)
{
    char ts[TIMEFMT_BUF_SIZE];
    timefmt_format_rfc3339(m->last_full_sync_unix, ts, sizeof(ts)); /* "" when out of range */
    json_t *o =
        json_pack("{s:s, s:i, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:b}", "cluster", m->cluster,
                  "schema", KV_SCHEMA_VERSION, "exporter_version",
                  m->exporter_version ? m->exporter_version : "unknown", "last_full_sync", ts,
                  "last_full_sync_unix", (json_int_t)m->last_full_sync_unix, "services",
                  (json_int_t)m->services, "service_ports", (json_int_t)m->service_ports, "nodes",
                  (json_int_t)m->nodes, "eligible_nodes", (json_int_t)m->eligible_nodes,
                  "skipped_services", (json_int_t)m->skipped_services, "kse_compat", m->kse_compat);
    return dump_and_free(o);
}
