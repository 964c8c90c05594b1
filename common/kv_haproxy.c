/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kv_haproxy: decoding and validation of haproxy/<cluster>/services/<name>
 * and force-removal/<backend>. See kv_haproxy.h and docs/kv-schema.md.
 */
#include "kv_haproxy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errmsg.h"
#include "haproxy_value.h"
#include "json_util.h"
#include "kv_field.h"

void kvm_tls_cert_clear(struct kvm_tls_cert *c)
{
    free(c->file);
    for (size_t i = 0; i < c->n_sni; i++)
        free(c->sni[i]);
    free(c->sni);
    free(c->alpn);
    memset(c, 0, sizeof(*c));
}

int kvm_tls_cert_copy(const struct kvm_tls_cert *c, struct kvm_tls_cert *out)
{
    memset(out, 0, sizeof(*out));
    if (!(out->file = strdup(c->file)) || (c->alpn && !(out->alpn = strdup(c->alpn))) ||
        (c->n_sni && !(out->sni = calloc(c->n_sni, sizeof(*out->sni)))))
        goto fail;
    for (; out->n_sni < c->n_sni; out->n_sni++)
        if (!(out->sni[out->n_sni] = strdup(c->sni[out->n_sni])))
            goto fail;
    return 0;
fail:
    kvm_tls_cert_clear(out);
    return -ENOMEM;
}

void kvm_server_tls_clear(struct kvm_server_tls *t)
{
    free(t->ca_file);
    free(t->verify_name);
    memset(t, 0, sizeof(*t));
}

int kvm_server_tls_copy(const struct kvm_server_tls *t, struct kvm_server_tls *out)
{
    memset(out, 0, sizeof(*out));
    if ((t->ca_file && !(out->ca_file = strdup(t->ca_file))) ||
        (t->verify_name && !(out->verify_name = strdup(t->verify_name)))) {
        kvm_server_tls_clear(out);
        return -ENOMEM;
    }
    return 0;
}

static void free_backend(struct kvm_backend *b)
{
    free(b->name);
    free(b->mode);
    free(b->balance);
    for (size_t i = 0; i < b->n_kube; i++) {
        free(b->kube[i].cluster);
        free(b->kube[i].namespace);
        free(b->kube[i].service);
        free(b->kube[i].port);
    }
    free(b->kube);
    for (size_t i = 0; i < b->n_servers; i++) {
        free(b->servers[i].name);
        free(b->servers[i].address);
    }
    free(b->servers);
    free(b->check.path);
    free(b->check.user);
    free(b->protocol);
    kvm_server_tls_clear(&b->server_tls);
}

static void free_binds(struct kvm_bind *binds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(binds[i].addr);
    free(binds);
}

static void free_frontend(struct kvm_frontend *f)
{
    free(f->name);
    free(f->mode);
    free_binds(f->binds, f->n_binds);
    for (size_t i = 0; i < f->n_routes; i++) {
        free(f->routes[i].host);
        free(f->routes[i].backend);
    }
    free(f->routes);
    free(f->default_backend);
    for (size_t i = 0; i < f->n_tls_certs; i++)
        kvm_tls_cert_clear(&f->tls_certs[i]);
    free(f->tls_certs);
    free(f->alpn);
}

static void free_selector(struct kvm_selector *x)
{
    free(x->lb_class);
    free(x->namespace);
    for (size_t i = 0; i < x->n_labels; i++) {
        free(x->label_keys[i]);
        free(x->label_values[i]);
    }
    free(x->label_keys);
    free(x->label_values);
    free(x->frontend);
    free(x->balance);
    kvm_server_tls_clear(&x->server_tls);
}

void kvm_service_clear(struct kvm_service *s)
{
    for (size_t i = 0; i < s->n_selectors; i++)
        free_selector(&s->selectors[i]);
    free(s->selectors);
    free(s->key);
    free(s->name);
    free(s->template_name);
    for (size_t i = 0; i < s->n_frontends; i++)
        free_frontend(&s->frontends[i]);
    free(s->frontends);
    for (size_t i = 0; i < s->n_backends; i++)
        free_backend(&s->backends[i]);
    free(s->backends);
    free_binds(s->metrics_binds, s->n_metrics_binds);
    memset(s, 0, sizeof(*s));
}

void kvm_force_clear(struct kvm_force *f)
{
    free(f->backend);
    free(f->author);
    free(f->reason);
    memset(f, 0, sizeof(*f));
}

int kvm_force_decode(const json_t *root, struct kvm_force *f, char *err, size_t errlen)
{
    if (!json_is_object(root)) {
        errmsg_set(err, errlen, "expected a JSON object, got %s", json_type_desc(root));
        return -EINVAL;
    }
    int rc = kv_get_expiry_fields(root, &f->expires, &f->author, &f->reason, err, errlen);
    if (rc == 0 && f->expires == 0) {
        errmsg_set(err, errlen, "expires: required field missing");
        rc = -EINVAL;
    }
    return rc;
}

/* ---- haproxy/<cluster>/services/<name> ---- */

static const char *const modes[] = {"http", "tcp", NULL};
static const char *const balances[] = {"roundrobin", "static-rr", "leastconn", "first",
                                       "source",     "random",    NULL};

/* The "bind" list of obj (at where): at least one "IPv4:port" or
 * "[IPv6]:port". *binds is filled in part on failure; the caller frees it
 * with free_binds either way. */
static int parse_binds(json_t *obj, const char *where, struct kvm_bind **binds, size_t *n_binds,
                       char *err, size_t errlen)
{
    json_t *arr;
    size_t n;
    int rc;

    if ((rc = kv_get_list(obj, where, "bind", true, &arr, &n, err, errlen)) < 0)
        return rc;
    if (n == 0) {
        errmsg_set(err, errlen, "%s.bind: needs at least one address", where);
        return -EINVAL;
    }
    if (!(*binds = calloc(n, sizeof(**binds))))
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        json_t *b = json_array_get(arr, i);
        struct kvm_bind *kb = &(*binds)[i];
        if (!json_is_string(b) ||
            kv_parse_hostport(json_string_value(b), &kb->addr, &kb->port) < 0) {
            errmsg_set(err, errlen, "%s.bind[%zu]: expected \"IPv4:port\" or \"[IPv6]:port\"",
                       where, i);
            return -EINVAL;
        }
        (*n_binds)++;
    }
    return 0;
}

#define KV_HAPROXY_MAX_CERTS 256
/* SNI filters of one crt-list entry: a certificate answers a handful of
 * names; more is a typo or an attempt to blow up the file */
#define KV_HAPROXY_MAX_SNI 64

/* An "alpn" list (of "h2", "http/1.1") at where into *out ("h2,http/1.1"
 * style, NULL for an empty list). 0, -EINVAL or -ENOMEM. */
static int parse_alpn(json_t *alpn, const char *where, char **out, char *err, size_t errlen)
{
    static const char *const protos[] = {"h2", "http/1.1", NULL};
    if (!json_is_array(alpn) || json_array_size(alpn) > 2) {
        errmsg_set(err, errlen, "%s.alpn: expected a list of \"h2\" and/or \"http/1.1\"", where);
        return -EINVAL;
    }
    char buf[32] = "";
    for (size_t i = 0; i < json_array_size(alpn); i++) {
        const char *v = json_string_value(json_array_get(alpn, i));
        size_t k = 0;
        while (v && protos[k] && strcmp(protos[k], v) != 0)
            k++;
        if (!v || !protos[k]) {
            errmsg_set(err, errlen, "%s.alpn[%zu]: expected \"h2\" or \"http/1.1\"", where, i);
            return -EINVAL;
        }
        if (i)
            strcat(buf, ",");
        strcat(buf, v);
    }
    if (buf[0] && !(*out = strdup(buf)))
        return -ENOMEM;
    return 0;
}

/* An absolute file path (the `file` kind) at where into *out. */
static int parse_file(json_t *v, const char *where, char **out, char *err, size_t errlen)
{
    const char *p = json_string_value(v), *why = "not a string";
    if (!p || haproxy_value_check(HAPROXY_VALUE_FILE, p, strlen(p), &why) < 0) {
        errmsg_set(err, errlen, "%s: expected an absolute file path: %s", where, why);
        return -EINVAL;
    }
    return (*out = strdup(p)) ? 0 : -ENOMEM;
}

/* tls.certs[i]: a file path, or {"file", "sni"?: [HOST, ...], "alpn"?:
 * [...]} (one crt-list entry with its SNI filters and its own ALPN). */
static int parse_cert_entry(json_t *cj, const char *where, struct kvm_tls_cert *c, char *err,
                            size_t errlen)
{
    char w[200];
    json_t *arr;
    size_t n;
    int rc;

    if (!json_is_object(cj))
        return parse_file(cj, where, &c->file, err, errlen);
    snprintf(w, sizeof(w), "%s.file", where);
    if ((rc = parse_file(json_object_get(cj, "file"), w, &c->file, err, errlen)) < 0)
        return rc;
    json_t *alpn = json_object_get(cj, "alpn");
    if (alpn && (rc = parse_alpn(alpn, where, &c->alpn, err, errlen)) < 0)
        return rc;
    if ((rc = kv_get_list(cj, where, "sni", false, &arr, &n, err, errlen)) < 0)
        return rc;
    if (n > KV_HAPROXY_MAX_SNI) {
        errmsg_set(err, errlen, "%s.sni: at most %d names", where, KV_HAPROXY_MAX_SNI);
        return -EINVAL;
    }
    if (n && !(c->sni = calloc(n, sizeof(*c->sni))))
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const char *v = json_string_value(json_array_get(arr, i)), *why = "not a string";
        if (!v || haproxy_value_check(HAPROXY_VALUE_HOST, v, strlen(v), &why) < 0) {
            errmsg_set(err, errlen, "%s.sni[%zu]: expected a host name: %s", where, i, why);
            return -EINVAL;
        }
        if (!(c->sni[c->n_sni] = strdup(v)))
            return -ENOMEM;
        c->n_sni++;
    }
    return 0;
}

/* frontends[i].tls: {"certs": [FILE | {"file", "sni"?, "alpn"?}, ...],
 * "alpn"?: ["h2", "http/1.1"]}. ALPN defaults to h2,http/1.1 in mode http
 * and to none in mode tcp (a TCP service terminating TLS speaks its own
 * protocol). */
static int parse_tls(json_t *tj, const char *where, struct kvm_frontend *f, char *err,
                     size_t errlen)
{
    json_t *arr;
    size_t n;
    int rc;
    char w[128], we[160];

    snprintf(w, sizeof(w), "%s.tls", where);
    if (!json_is_object(tj)) {
        errmsg_set(err, errlen, "%s: expected object, got %s", w, json_type_desc(tj));
        return -EINVAL;
    }
    if ((rc = kv_get_list(tj, w, "certs", true, &arr, &n, err, errlen)) < 0)
        return rc;
    if (n == 0 || n > KV_HAPROXY_MAX_CERTS) {
        errmsg_set(err, errlen, "%s.certs: needs 1 to %d certificate files", w,
                   KV_HAPROXY_MAX_CERTS);
        return -EINVAL;
    }
    if (!(f->tls_certs = calloc(n, sizeof(*f->tls_certs))))
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        snprintf(we, sizeof(we), "%s.certs[%zu]", w, i);
        f->n_tls_certs++; /* cleared with the frontend even if half parsed */
        if ((rc = parse_cert_entry(json_array_get(arr, i), we, &f->tls_certs[i], err, errlen)) < 0)
            return rc;
    }
    json_t *alpn = json_object_get(tj, "alpn");
    if (!alpn) {
        if (strcmp(f->mode, "http") == 0 && !(f->alpn = strdup("h2,http/1.1")))
            return -ENOMEM;
        return 0;
    }
    return parse_alpn(alpn, w, &f->alpn, err, errlen);
}

/* "server_tls" of a backend or a selector: {"ca_file": FILE,
 * "verify_name"?: HOST}. */
static int parse_server_tls(json_t *obj, const char *where, struct kvm_server_tls *t, char *err,
                            size_t errlen)
{
    json_t *tj;
    char w[200];
    int rc;

    if ((rc = json_get_object(obj, where, "server_tls", &tj, false, err, errlen)) <= 0)
        return rc;
    snprintf(w, sizeof(w), "%s.server_tls", where);
    if ((rc = kv_get_kind(tj, w, "ca_file", HAPROXY_VALUE_FILE, true, &t->ca_file, err, errlen)) <
            0 ||
        (rc = kv_get_kind(tj, w, "verify_name", HAPROXY_VALUE_HOST, false, &t->verify_name, err,
                          errlen)) < 0)
        return rc;
    return 0;
}

static int parse_frontend(json_t *fj, const char *where, struct kvm_frontend *f, char *err,
                          size_t errlen)
{
    json_t *arr;
    size_t n;
    int rc;
    char w[96];

    if (!json_is_object(fj)) {
        errmsg_set(err, errlen, "%s: expected object, got %s", where, json_type_desc(fj));
        return -EINVAL;
    }
    if ((rc = kv_get_kind(fj, where, "name", HAPROXY_VALUE_NAME, true, &f->name, err, errlen)) <
            0 ||
        (rc = kv_get_one_of(fj, where, "mode", modes, "http", &f->mode, err, errlen)) < 0 ||
        (rc = json_get_int(fj, where, "maxconn", &f->maxconn, 1, 10000000, false, err, errlen)) <
            0 ||
        (rc = kv_get_kind(fj, where, "default_backend", HAPROXY_VALUE_NAME, false,
                          &f->default_backend, err, errlen)) < 0)
        return rc;
    if ((rc = parse_binds(fj, where, &f->binds, &f->n_binds, err, errlen)) < 0)
        return rc;
    if ((rc = kv_get_list(fj, where, "routes", false, &arr, &n, err, errlen)) < 0)
        return rc;
    if (n && !(f->routes = calloc(n, sizeof(*f->routes))))
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        json_t *r = json_array_get(arr, i);
        struct kvm_route *rt = &f->routes[i];
        snprintf(w, sizeof(w), "%s.routes[%zu]", where, i);
        if (!json_is_object(r)) {
            errmsg_set(err, errlen, "%s: expected object, got %s", w, json_type_desc(r));
            return -EINVAL;
        }
        f->n_routes++;
        if ((rc = kv_get_kind(r, w, "backend", HAPROXY_VALUE_NAME, true, &rt->backend, err,
                              errlen)) < 0 ||
            (rc = kv_get_kind(r, w, "host", HAPROXY_VALUE_HOST, false, &rt->host, err, errlen)) < 0)
            return rc;
        if (!rt->host) {
            if ((rc = kv_get_kind(r, w, "sni", HAPROXY_VALUE_HOST, false, &rt->host, err, errlen)) <
                0)
                return rc;
            rt->sni = true;
        }
        if (!rt->host) {
            errmsg_set(err, errlen, "%s: needs \"host\" or \"sni\"", w);
            return -EINVAL;
        }
    }
    json_t *tls = json_object_get(fj, "tls");
    if (tls && (rc = parse_tls(tls, where, f, err, errlen)) < 0)
        return rc;
    return 0;
}

static int parse_check(json_t *cj, const char *where, struct kvm_check *c, char *err, size_t errlen)
{
    static const char *const types[] = {"tcp", "http", "mysql", "none", NULL};
    char *type = NULL;
    int64_t port = 0;
    int rc;
    char w[128];

    snprintf(w, sizeof(w), "%s.check", where);
    c->inter_ms = 2000;
    c->rise = 2;
    c->fall = 3;
    if (!json_is_object(cj)) {
        errmsg_set(err, errlen, "%s: expected object, got %s", w, json_type_desc(cj));
        return -EINVAL;
    }
    if ((rc = kv_get_one_of(cj, w, "type", types, "tcp", &type, err, errlen)) < 0)
        return rc;
    c->type = !strcmp(type, "http")    ? KVM_CHECK_HTTP
              : !strcmp(type, "mysql") ? KVM_CHECK_MYSQL
              : !strcmp(type, "none")  ? KVM_CHECK_OFF
                                       : KVM_CHECK_TCP;
    free(type);
    if ((rc = json_get_int(cj, w, "port", &port, 0, 65535, false, err, errlen)) < 0 ||
        (rc = kv_get_duration(cj, w, "interval", &c->inter_ms, err, errlen)) < 0 ||
        (rc = json_get_int(cj, w, "rise", &c->rise, 1, 1000, false, err, errlen)) < 0 ||
        (rc = json_get_int(cj, w, "fall", &c->fall, 1, 1000, false, err, errlen)) < 0)
        return rc;
    c->port = (uint16_t)port;
    if (c->type == KVM_CHECK_HTTP) {
        if ((rc = kv_get_kind(cj, w, "path", HAPROXY_VALUE_PATH, false, &c->path, err, errlen)) < 0)
            return rc;
        if (!c->path && !(c->path = strdup("/")))
            return -ENOMEM;
    }
    if (c->type == KVM_CHECK_MYSQL &&
        (rc = kv_get_kind(cj, w, "user", HAPROXY_VALUE_NAME, true, &c->user, err, errlen)) < 0)
        return rc;
    return 0;
}

static int parse_backend(json_t *bj, const char *where, struct kvm_backend *b, char *err,
                         size_t errlen)
{
    json_t *arr, *obj;
    size_t n;
    int rc;
    char w[128];

    b->max_removal_share = -1;
    b->slots = KV_HAPROXY_DEFAULT_SLOTS;
    if (!json_is_object(bj)) {
        errmsg_set(err, errlen, "%s: expected object, got %s", where, json_type_desc(bj));
        return -EINVAL;
    }
    if ((rc = kv_get_kind(bj, where, "name", HAPROXY_VALUE_NAME, true, &b->name, err, errlen)) <
            0 ||
        (rc = kv_get_one_of(bj, where, "mode", modes, "http", &b->mode, err, errlen)) < 0 ||
        (rc = kv_get_one_of(bj, where, "balance", balances, "roundrobin", &b->balance, err,
                            errlen)) < 0 ||
        (rc = json_get_int(bj, where, "slots", &b->slots, 1, KV_HAPROXY_MAX_SLOTS, false, err,
                           errlen)) < 0 ||
        (rc = json_get_double(bj, where, "max_removal_share", &b->max_removal_share, false, err,
                              errlen)) < 0)
        return rc;
    bool share_given = rc == 1;
    if ((rc = json_get_bool(bj, where, "prefer_local_zone", &b->prefer_local_zone, false, err,
                            errlen)) < 0 ||
        (rc = parse_server_tls(bj, where, &b->server_tls, err, errlen)) < 0)
        return rc;
    /* slot names are "<backend>-<n>": keep them valid names */
    if (strlen(b->name) > HAPROXY_VALUE_NAME_MAX - 6) {
        errmsg_set(err, errlen, "%s.name: longer than %d characters", where,
                   HAPROXY_VALUE_NAME_MAX - 6);
        return -EINVAL;
    }
    if (share_given && (b->max_removal_share < 0 || b->max_removal_share > 1)) {
        errmsg_set(err, errlen, "%s.max_removal_share: expected a number in 0..1", where);
        return -EINVAL;
    }
    if ((rc = kv_get_list(bj, where, "kube", false, &arr, &n, err, errlen)) < 0)
        return rc;
    if (n && !(b->kube = calloc(n, sizeof(*b->kube))))
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        json_t *k = json_array_get(arr, i);
        struct kvm_kube_ref *r = &b->kube[i];
        snprintf(w, sizeof(w), "%s.kube[%zu]", where, i);
        if (!json_is_object(k)) {
            errmsg_set(err, errlen, "%s: expected object, got %s", w, json_type_desc(k));
            return -EINVAL;
        }
        b->n_kube++;
        if ((rc = kv_get_kind(k, w, "cluster", HAPROXY_VALUE_NAME, true, &r->cluster, err,
                              errlen)) < 0 ||
            (rc = kv_get_kind(k, w, "namespace", HAPROXY_VALUE_NAME, true, &r->namespace, err,
                              errlen)) < 0 ||
            (rc = kv_get_kind(k, w, "service", HAPROXY_VALUE_NAME, true, &r->service, err,
                              errlen)) < 0)
            return rc;
        /* port: a name or a number */
        json_t *p = json_object_get(k, "port");
        if (json_is_integer(p) && json_integer_value(p) > 0 && json_integer_value(p) < 65536) {
            char num[8];
            snprintf(num, sizeof(num), "%d", (int)json_integer_value(p));
            if (!(r->port = strdup(num)))
                return -ENOMEM;
        } else if ((rc = kv_get_kind(k, w, "port", HAPROXY_VALUE_NAME, true, &r->port, err,
                                     errlen)) < 0) {
            return rc;
        }
    }
    if ((rc = kv_get_list(bj, where, "servers", false, &arr, &n, err, errlen)) < 0)
        return rc;
    if (n && !(b->servers = calloc(n, sizeof(*b->servers))))
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_array_get(arr, i);
        struct kvm_static_server *sv = &b->servers[i];
        int64_t port = 0, weight = KV_HAPROXY_DEFAULT_WEIGHT;
        snprintf(w, sizeof(w), "%s.servers[%zu]", where, i);
        if (!json_is_object(s)) {
            errmsg_set(err, errlen, "%s: expected object, got %s", w, json_type_desc(s));
            return -EINVAL;
        }
        b->n_servers++;
        if ((rc = kv_get_kind(s, w, "name", HAPROXY_VALUE_NAME, true, &sv->name, err, errlen)) <
                0 ||
            (rc = kv_get_kind(s, w, "address", HAPROXY_VALUE_IP, true, &sv->address, err, errlen)) <
                0 ||
            (rc = json_get_int(s, w, "port", &port, 1, 65535, true, err, errlen)) < 0 ||
            (rc = json_get_int(s, w, "weight", &weight, 0, 256, false, err, errlen)) < 0)
            return rc;
        sv->port = (uint16_t)port;
        sv->weight = (int)weight;
    }
    if (b->n_kube == 0 && b->n_servers == 0) {
        errmsg_set(err, errlen, "%s: needs \"kube\" services or static \"servers\"", where);
        return -EINVAL;
    }
    if ((int64_t)b->n_servers > b->slots)
        b->slots = (int64_t)b->n_servers;
    if ((rc = json_get_object(bj, where, "check", &obj, false, err, errlen)) < 0)
        return rc;
    if (rc == 1 && (rc = parse_check(obj, where, &b->check, err, errlen)) < 0)
        return rc;
    if ((rc = json_get_object(bj, where, "agent", &obj, false, err, errlen)) < 0)
        return rc;
    if (rc == 1) {
        int64_t port = 0;
        snprintf(w, sizeof(w), "%s.agent", where);
        if ((rc = json_get_int(obj, w, "port", &port, 1, 65535, false, err, errlen)) < 0 ||
            (rc = kv_get_duration(obj, w, "interval", &b->agent_inter_ms, err, errlen)) < 0)
            return rc;
        b->agent_port = (uint16_t)port;
    }
    if ((rc = json_get_object(bj, where, "timeouts", &obj, false, err, errlen)) < 0)
        return rc;
    if (rc == 1) {
        snprintf(w, sizeof(w), "%s.timeouts", where);
        if ((rc = kv_get_duration(obj, w, "connect", &b->timeout_connect_ms, err, errlen)) < 0 ||
            (rc = kv_get_duration(obj, w, "server", &b->timeout_server_ms, err, errlen)) < 0 ||
            (rc = kv_get_duration(obj, w, "check", &b->timeout_check_ms, err, errlen)) < 0)
            return rc;
    }
    return 0;
}

/* select[i]: {"class", "namespace"?, "labels"?, "frontend", "balance"?,
 * "slots"?}. Label keys and values are single HAProxy words (they are only
 * compared, but a quote or a newline in a selector is a typo to report). */
static int parse_selector(json_t *xj, const char *where, struct kvm_selector *x, char *err,
                          size_t errlen)
{
    json_t *labels;
    int rc;

    x->slots = KV_HAPROXY_DEFAULT_SLOTS;
    if (!json_is_object(xj)) {
        errmsg_set(err, errlen, "%s: expected object, got %s", where, json_type_desc(xj));
        return -EINVAL;
    }
    if ((rc = kv_get_kind(xj, where, "class", HAPROXY_VALUE_NAME, true, &x->lb_class, err,
                          errlen)) < 0 ||
        (rc = kv_get_kind(xj, where, "namespace", HAPROXY_VALUE_NAME, false, &x->namespace, err,
                          errlen)) < 0 ||
        (rc = kv_get_kind(xj, where, "frontend", HAPROXY_VALUE_NAME, true, &x->frontend, err,
                          errlen)) < 0 ||
        (rc = kv_get_one_of(xj, where, "balance", balances, "roundrobin", &x->balance, err,
                            errlen)) < 0 ||
        (rc = json_get_int(xj, where, "slots", &x->slots, 1, KV_HAPROXY_MAX_SLOTS, false, err,
                           errlen)) < 0 ||
        (rc = json_get_bool(xj, where, "prefer_local_zone", &x->prefer_local_zone, false, err,
                            errlen)) < 0 ||
        (rc = parse_server_tls(xj, where, &x->server_tls, err, errlen)) < 0 ||
        (rc = json_get_object(xj, where, "labels", &labels, false, err, errlen)) < 0)
        return rc;
    if (rc == 0)
        return 0;
    size_t n = json_object_size(labels);
    if (n && (!(x->label_keys = calloc(n, sizeof(char *))) ||
              !(x->label_values = calloc(n, sizeof(char *)))))
        return -ENOMEM;
    const char *k;
    json_t *v;
    json_object_foreach(labels, k, v)
    {
        const char *why = NULL;
        if (haproxy_value_check(HAPROXY_VALUE_WORD, k, strlen(k), &why) < 0 || !*k) {
            errmsg_set(err, errlen, "%s.labels: key '%.60s': %s", where, k, why ? why : "is empty");
            return -EINVAL;
        }
        if (!json_is_string(v) || haproxy_value_check(HAPROXY_VALUE_WORD, json_string_value(v),
                                                      json_string_length(v), &why) < 0) {
            errmsg_set(err, errlen, "%s.labels.%.60s: %s", where, k,
                       json_is_string(v) ? why : "expected a string");
            return -EINVAL;
        }
        if (!(x->label_keys[x->n_labels] = strdup(k)) ||
            !(x->label_values[x->n_labels++] = strdup(json_string_value(v))))
            return -ENOMEM;
    }
    return 0;
}

static bool has_backend(const struct kvm_service *s, const char *name)
{
    for (size_t i = 0; i < s->n_backends; i++)
        if (strcmp(s->backends[i].name, name) == 0)
            return true;
    return false;
}

static bool selects_into(const struct kvm_service *s, const char *frontend)
{
    for (size_t i = 0; i < s->n_selectors; i++)
        if (strcmp(s->selectors[i].frontend, frontend) == 0)
            return true;
    return false;
}

static bool has_frontend(const struct kvm_service *s, const char *name)
{
    for (size_t i = 0; i < s->n_frontends; i++)
        if (strcmp(s->frontends[i].name, name) == 0)
            return true;
    return false;
}

int kvm_service_decode(const json_t *root, const char *name, struct kvm_service *s, char *err,
                       size_t errlen)
{
    json_t *arr, *obj;
    size_t n;
    int rc;
    char w[64];
    const char *why;

    if (haproxy_value_check(HAPROXY_VALUE_NAME, name, strlen(name), &why) < 0 ||
        strchr(name, '/')) {
        errmsg_set(err, errlen, "service name '%.60s' in the key: %s", name,
                   why ? why : "contains '/'");
        return -EINVAL;
    }
    if (!(s->name = strdup(name)))
        return -ENOMEM;
    if (!json_is_object(root)) {
        errmsg_set(err, errlen, "expected a JSON object, got %s", json_type_desc(root));
        return -EINVAL;
    }
    if ((rc = kv_get_kind(root, NULL, "template", HAPROXY_VALUE_NAME, false, &s->template_name, err,
                          errlen)) < 0)
        return rc;
    if (!s->template_name && !(s->template_name = strdup("http")))
        return -ENOMEM;
    if ((rc = kv_get_list(root, NULL, "backends", true, &arr, &n, err, errlen)) < 0)
        return rc;
    if (n && !(s->backends = calloc(n, sizeof(*s->backends))))
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        snprintf(w, sizeof(w), "backends[%zu]", i);
        s->n_backends++;
        if ((rc = parse_backend(json_array_get(arr, i), w, &s->backends[i], err, errlen)) < 0)
            return rc;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(s->backends[j].name, s->backends[i].name) == 0) {
                errmsg_set(err, errlen, "%s.name: backend '%s' defined twice", w,
                           s->backends[i].name);
                return -EINVAL;
            }
        }
    }
    s->n_explicit_backends = s->n_backends;
    if ((rc = kv_get_list(root, NULL, "select", false, &arr, &n, err, errlen)) < 0)
        return rc;
    if (n && !(s->selectors = calloc(n, sizeof(*s->selectors))))
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        snprintf(w, sizeof(w), "select[%zu]", i);
        s->n_selectors++;
        if ((rc = parse_selector(json_array_get(arr, i), w, &s->selectors[i], err, errlen)) < 0)
            return rc;
    }
    if ((rc = kv_get_list(root, NULL, "frontends", true, &arr, &n, err, errlen)) < 0)
        return rc;
    if (n == 0) {
        errmsg_set(err, errlen, "frontends: needs at least one frontend");
        return -EINVAL;
    }
    if (!(s->frontends = calloc(n, sizeof(*s->frontends))))
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        struct kvm_frontend *f = &s->frontends[i];
        snprintf(w, sizeof(w), "frontends[%zu]", i);
        s->n_frontends++;
        if ((rc = parse_frontend(json_array_get(arr, i), w, f, err, errlen)) < 0)
            return rc;
        if (f->default_backend && !has_backend(s, f->default_backend)) {
            errmsg_set(err, errlen, "%s.default_backend: no backend named '%s'", w,
                       f->default_backend);
            return -EINVAL;
        }
        for (size_t j = 0; j < f->n_routes; j++) {
            if (!has_backend(s, f->routes[j].backend)) {
                errmsg_set(err, errlen, "%s.routes[%zu].backend: no backend named '%s'", w, j,
                           f->routes[j].backend);
                return -EINVAL;
            }
        }
        if (strcmp(f->name, KV_HAPROXY_METRICS_FRONTEND) == 0) {
            errmsg_set(err, errlen, "%s.name: '%s' is the name of the metrics frontend", w,
                       f->name);
            return -EINVAL;
        }
        if (!f->default_backend && f->n_routes == 0 && !selects_into(s, f->name)) {
            errmsg_set(err, errlen, "%s: needs \"default_backend\", \"routes\" or a selector", w);
            return -EINVAL;
        }
    }
    for (size_t i = 0; i < s->n_selectors; i++) {
        if (!has_frontend(s, s->selectors[i].frontend)) {
            errmsg_set(err, errlen, "select[%zu].frontend: no frontend named '%s'", i,
                       s->selectors[i].frontend);
            return -EINVAL;
        }
    }
    if ((rc = json_get_object(root, NULL, "metrics", &obj, false, err, errlen)) < 0 ||
        (rc == 1 && (rc = parse_binds(obj, "metrics", &s->metrics_binds, &s->n_metrics_binds, err,
                                      errlen)) < 0))
        return rc;
    if ((rc = json_get_object(root, NULL, "timeouts", &obj, false, err, errlen)) < 0)
        return rc;
    if (rc == 1 &&
        ((rc = kv_get_duration(obj, "timeouts", "client", &s->timeout_client_ms, err, errlen)) <
             0 ||
         (rc = kv_get_duration(obj, "timeouts", "connect", &s->timeout_connect_ms, err, errlen)) <
             0 ||
         (rc = kv_get_duration(obj, "timeouts", "server", &s->timeout_server_ms, err, errlen)) < 0))
        return rc;
    return 0;
}
