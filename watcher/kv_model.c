/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kv_model: parsing and validation of the KV entries drover-watcher
 * consumes. See kv_model.h; the field-by-field contract is
 * docs/kv-schema.md.
 */
#include "kv_model.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "errmsg.h"
#include "haproxy_value.h"
#include "json_util.h"
#include "timefmt.h"

#define DEFAULT_SLOTS 16
#define MAX_SLOTS     4096
#define MAX_ITEMS     4096 /* frontends, backends, binds, routes, servers per list */

static const char *const prefix_names[KVM_PREFIX_COUNT] = {"haproxy", "kube", "maintenance"};

const char *kvm_prefix_name(enum kvm_prefix p)
{
    return p < KVM_PREFIX_COUNT ? prefix_names[p] : "?";
}

const char *kvm_admin_name(enum kvm_admin a)
{
    switch (a) {
    case KVM_ADMIN_DRAIN:
        return "drain";
    case KVM_ADMIN_MAINT:
        return "maint";
    default:
        return "ready";
    }
}

void kv_model_init(struct kv_model *m)
{
    memset(m, 0, sizeof(*m));
}

/* ---- freeing ---- */

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
}

static void free_frontend(struct kvm_frontend *f)
{
    free(f->name);
    free(f->mode);
    for (size_t i = 0; i < f->n_binds; i++)
        free(f->binds[i].addr);
    free(f->binds);
    for (size_t i = 0; i < f->n_routes; i++) {
        free(f->routes[i].host);
        free(f->routes[i].backend);
    }
    free(f->routes);
    free(f->default_backend);
}

static void free_service(struct kvm_service *s)
{
    free(s->key);
    free(s->name);
    free(s->template_name);
    for (size_t i = 0; i < s->n_frontends; i++)
        free_frontend(&s->frontends[i]);
    free(s->frontends);
    for (size_t i = 0; i < s->n_backends; i++)
        free_backend(&s->backends[i]);
    free(s->backends);
    memset(s, 0, sizeof(*s));
}

static void free_kube_service(struct kvm_kube_service *k)
{
    free(k->cluster);
    free(k->namespace);
    free(k->service);
    free(k->port_name);
    free(k->health_check_path);
}

static void free_node(struct kvm_node *n)
{
    free(n->cluster);
    free(n->name);
    for (size_t i = 0; i < n->n_addresses; i++)
        free(n->addresses[i]);
    free(n->addresses);
}

static void free_maint(struct kvm_maint *x)
{
    free(x->a);
    free(x->b);
    free(x->reason);
    free(x->author);
}

static void free_force(struct kvm_force *f)
{
    free(f->backend);
    free(f->author);
    free(f->reason);
}

void kv_model_clear(struct kv_model *m)
{
    for (size_t i = 0; i < m->n_services; i++)
        free_service(&m->services[i]);
    free(m->services);
    for (size_t i = 0; i < m->n_kube_services; i++)
        free_kube_service(&m->kube_services[i]);
    free(m->kube_services);
    for (size_t i = 0; i < m->n_nodes; i++)
        free_node(&m->nodes[i]);
    free(m->nodes);
    for (size_t i = 0; i < m->n_maint; i++)
        free_maint(&m->maint[i]);
    free(m->maint);
    for (size_t i = 0; i < m->n_forces; i++)
        free_force(&m->forces[i]);
    free(m->forces);
    kv_model_init(m);
}

/* ---- helpers ---- */

/* Grow *arr (element size sz) so one more fits. 0 or -ENOMEM. */
static int grow(void **arr, size_t *cap, size_t n, size_t sz)
{
    if (n < *cap)
        return 0;
    size_t nc = *cap ? *cap * 2 : 8;
    void *p = realloc(*arr, nc * sz);
    if (!p)
        return -ENOMEM;
    *arr = p;
    *cap = nc;
    return 0;
}

/* A string field checked against a value kind; *out is a malloc'd copy of
 * the canonical text (NULL when absent and optional). 1, 0 or -EINVAL. */
static int get_kind(const json_t *obj, const char *where, const char *field,
                    enum haproxy_value_kind kind, bool required, char **out, char *err,
                    size_t errlen)
{
    const char *s = NULL, *why = NULL;
    int rc = json_get_string(obj, where, field, &s, required, err, errlen);
    if (rc <= 0)
        return rc;
    size_t len = strlen(s);
    size_t cap = haproxy_value_format_size(len);
    char *buf = malloc(cap);
    size_t olen;
    if (!buf)
        return -ENOMEM;
    if (haproxy_value_format(kind, s, len, buf, cap, &olen, &why) < 0) {
        errmsg_set(err, errlen, "%s%s%s: %s (expected %s)", where ? where : "", where ? "." : "",
                   field, why, haproxy_value_kind_name(kind));
        free(buf);
        return -EINVAL;
    }
    /* ip: canonical text without brackets; others unchanged */
    *out = buf;
    return 1;
}

static int get_duration(const json_t *obj, const char *where, const char *field, int64_t *out,
                        char *err, size_t errlen)
{
    const char *s;
    int rc = json_get_string(obj, where, field, &s, false, err, errlen);
    if (rc <= 0)
        return rc;
    int64_t ms;
    if (config_parse_duration_ms(s, &ms) < 0 || ms <= 0 || ms > INT32_MAX) {
        errmsg_set(err, errlen, "%s%s%s: bad duration '%.40s' (expected e.g. \"200ms\", \"2s\")",
                   where ? where : "", where ? "." : "", field, s);
        return -EINVAL;
    }
    *out = ms;
    return 1;
}

static int get_one_of(const json_t *obj, const char *where, const char *field,
                      const char *const *allowed, const char *def, char **out, char *err,
                      size_t errlen)
{
    const char *s = def;
    int rc = json_get_string(obj, where, field, &s, false, err, errlen);
    if (rc < 0)
        return rc;
    for (size_t i = 0; allowed[i]; i++) {
        if (strcmp(s, allowed[i]) == 0) {
            *out = strdup(s);
            return *out ? 1 : -ENOMEM;
        }
    }
    errmsg_set(err, errlen, "%s%s%s: '%.40s' is not one of the allowed values", where ? where : "",
               where ? "." : "", field, s);
    return -EINVAL;
}

/* "1.2.3.4:80" or "[::1]:80" into a canonical address and port. */
static int parse_hostport(const char *text, char **addr, uint16_t *port)
{
    const char *colon, *a = text;
    size_t alen;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close || close[1] != ':')
            return -EINVAL;
        a = text + 1;
        alen = (size_t)(close - a);
        colon = close + 1;
    } else {
        colon = strrchr(text, ':');
        if (!colon || memchr(text, ':', (size_t)(colon - text)))
            return -EINVAL;
        alen = (size_t)(colon - text);
    }
    const char *why;
    char pbuf[8];
    size_t plen = strlen(colon + 1);
    if (plen == 0 || plen >= sizeof(pbuf) ||
        haproxy_value_check(HAPROXY_VALUE_PORT, colon + 1, plen, &why) < 0)
        return -EINVAL;
    char *buf = malloc(haproxy_value_format_size(alen));
    size_t olen;
    if (!buf)
        return -ENOMEM;
    if (haproxy_value_format(HAPROXY_VALUE_IP, a, alen, buf, haproxy_value_format_size(alen), &olen,
                             &why) < 0) {
        free(buf);
        return -EINVAL;
    }
    *addr = buf;
    *port = (uint16_t)atoi(colon + 1);
    return 0;
}

/* Iterate a JSON array field; returns the array (borrowed) or NULL and the
 * count in *n. rc as json_get_array. */
static int get_list(const json_t *obj, const char *where, const char *field, bool required,
                    json_t **arr, size_t *n, char *err, size_t errlen)
{
    *arr = NULL;
    *n = 0;
    int rc = json_get_array(obj, where, field, arr, required, err, errlen);
    if (rc <= 0)
        return rc;
    *n = json_array_size(*arr);
    if (*n > MAX_ITEMS) {
        errmsg_set(err, errlen, "%s%s%s: more than %d elements", where ? where : "",
                   where ? "." : "", field, MAX_ITEMS);
        return -EINVAL;
    }
    return 1;
}

/* ---- haproxy/<cluster>/services/<name> ---- */

static const char *const modes[] = {"http", "tcp", NULL};
static const char *const balances[] = {"roundrobin", "static-rr", "leastconn", "first",
                                       "source",     "random",    NULL};

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
    if ((rc = get_kind(fj, where, "name", HAPROXY_VALUE_NAME, true, &f->name, err, errlen)) < 0 ||
        (rc = get_one_of(fj, where, "mode", modes, "http", &f->mode, err, errlen)) < 0 ||
        (rc = json_get_int(fj, where, "maxconn", &f->maxconn, 1, 10000000, false, err, errlen)) <
            0 ||
        (rc = get_kind(fj, where, "default_backend", HAPROXY_VALUE_NAME, false, &f->default_backend,
                       err, errlen)) < 0)
        return rc;
    if ((rc = get_list(fj, where, "bind", true, &arr, &n, err, errlen)) < 0)
        return rc;
    if (n == 0) {
        errmsg_set(err, errlen, "%s.bind: needs at least one address", where);
        return -EINVAL;
    }
    if (!(f->binds = calloc(n, sizeof(*f->binds))))
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        json_t *b = json_array_get(arr, i);
        if (!json_is_string(b) ||
            parse_hostport(json_string_value(b), &f->binds[i].addr, &f->binds[i].port) < 0) {
            errmsg_set(err, errlen, "%s.bind[%zu]: expected \"IPv4:port\" or \"[IPv6]:port\"",
                       where, i);
            return -EINVAL;
        }
        f->n_binds++;
    }
    if ((rc = get_list(fj, where, "routes", false, &arr, &n, err, errlen)) < 0)
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
        if ((rc = get_kind(r, w, "backend", HAPROXY_VALUE_NAME, true, &rt->backend, err, errlen)) <
                0 ||
            (rc = get_kind(r, w, "host", HAPROXY_VALUE_HOST, false, &rt->host, err, errlen)) < 0)
            return rc;
        if (!rt->host) {
            if ((rc = get_kind(r, w, "sni", HAPROXY_VALUE_HOST, false, &rt->host, err, errlen)) < 0)
                return rc;
            rt->sni = true;
        }
        if (!rt->host) {
            errmsg_set(err, errlen, "%s: needs \"host\" or \"sni\"", w);
            return -EINVAL;
        }
    }
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
    if ((rc = get_one_of(cj, w, "type", types, "tcp", &type, err, errlen)) < 0)
        return rc;
    c->type = !strcmp(type, "http")    ? KVM_CHECK_HTTP
              : !strcmp(type, "mysql") ? KVM_CHECK_MYSQL
              : !strcmp(type, "none")  ? KVM_CHECK_OFF
                                       : KVM_CHECK_TCP;
    free(type);
    if ((rc = json_get_int(cj, w, "port", &port, 0, 65535, false, err, errlen)) < 0 ||
        (rc = get_duration(cj, w, "interval", &c->inter_ms, err, errlen)) < 0 ||
        (rc = json_get_int(cj, w, "rise", &c->rise, 1, 1000, false, err, errlen)) < 0 ||
        (rc = json_get_int(cj, w, "fall", &c->fall, 1, 1000, false, err, errlen)) < 0)
        return rc;
    c->port = (uint16_t)port;
    if (c->type == KVM_CHECK_HTTP) {
        if ((rc = get_kind(cj, w, "path", HAPROXY_VALUE_PATH, false, &c->path, err, errlen)) < 0)
            return rc;
        if (!c->path && !(c->path = strdup("/")))
            return -ENOMEM;
    }
    if (c->type == KVM_CHECK_MYSQL &&
        (rc = get_kind(cj, w, "user", HAPROXY_VALUE_NAME, true, &c->user, err, errlen)) < 0)
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
    b->slots = DEFAULT_SLOTS;
    if (!json_is_object(bj)) {
        errmsg_set(err, errlen, "%s: expected object, got %s", where, json_type_desc(bj));
        return -EINVAL;
    }
    if ((rc = get_kind(bj, where, "name", HAPROXY_VALUE_NAME, true, &b->name, err, errlen)) < 0 ||
        (rc = get_one_of(bj, where, "mode", modes, "http", &b->mode, err, errlen)) < 0 ||
        (rc = get_one_of(bj, where, "balance", balances, "roundrobin", &b->balance, err, errlen)) <
            0 ||
        (rc = json_get_int(bj, where, "slots", &b->slots, 1, MAX_SLOTS, false, err, errlen)) < 0 ||
        (rc = json_get_double(bj, where, "max_removal_share", &b->max_removal_share, false, err,
                              errlen)) < 0)
        return rc;
    /* slot names are "<backend>-<n>": keep them valid names */
    if (strlen(b->name) > HAPROXY_VALUE_NAME_MAX - 6) {
        errmsg_set(err, errlen, "%s.name: longer than %d characters", where,
                   HAPROXY_VALUE_NAME_MAX - 6);
        return -EINVAL;
    }
    if (rc == 1 && (b->max_removal_share < 0 || b->max_removal_share > 1)) {
        errmsg_set(err, errlen, "%s.max_removal_share: expected a number in 0..1", where);
        return -EINVAL;
    }
    if ((rc = get_list(bj, where, "kube", false, &arr, &n, err, errlen)) < 0)
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
        if ((rc = get_kind(k, w, "cluster", HAPROXY_VALUE_NAME, true, &r->cluster, err, errlen)) <
                0 ||
            (rc = get_kind(k, w, "namespace", HAPROXY_VALUE_NAME, true, &r->namespace, err,
                           errlen)) < 0 ||
            (rc = get_kind(k, w, "service", HAPROXY_VALUE_NAME, true, &r->service, err, errlen)) <
                0)
            return rc;
        /* port: a name or a number */
        json_t *p = json_object_get(k, "port");
        if (json_is_integer(p) && json_integer_value(p) > 0 && json_integer_value(p) < 65536) {
            char num[8];
            snprintf(num, sizeof(num), "%d", (int)json_integer_value(p));
            if (!(r->port = strdup(num)))
                return -ENOMEM;
        } else if ((rc = get_kind(k, w, "port", HAPROXY_VALUE_NAME, true, &r->port, err, errlen)) <
                   0) {
            return rc;
        }
    }
    if ((rc = get_list(bj, where, "servers", false, &arr, &n, err, errlen)) < 0)
        return rc;
    if (n && !(b->servers = calloc(n, sizeof(*b->servers))))
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_array_get(arr, i);
        struct kvm_static_server *sv = &b->servers[i];
        int64_t port = 0, weight = 100;
        snprintf(w, sizeof(w), "%s.servers[%zu]", where, i);
        if (!json_is_object(s)) {
            errmsg_set(err, errlen, "%s: expected object, got %s", w, json_type_desc(s));
            return -EINVAL;
        }
        b->n_servers++;
        if ((rc = get_kind(s, w, "name", HAPROXY_VALUE_NAME, true, &sv->name, err, errlen)) < 0 ||
            (rc = get_kind(s, w, "address", HAPROXY_VALUE_IP, true, &sv->address, err, errlen)) <
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
            (rc = get_duration(obj, w, "interval", &b->agent_inter_ms, err, errlen)) < 0)
            return rc;
        b->agent_port = (uint16_t)port;
    }
    if ((rc = json_get_object(bj, where, "timeouts", &obj, false, err, errlen)) < 0)
        return rc;
    if (rc == 1) {
        snprintf(w, sizeof(w), "%s.timeouts", where);
        if ((rc = get_duration(obj, w, "connect", &b->timeout_connect_ms, err, errlen)) < 0 ||
            (rc = get_duration(obj, w, "server", &b->timeout_server_ms, err, errlen)) < 0 ||
            (rc = get_duration(obj, w, "check", &b->timeout_check_ms, err, errlen)) < 0)
            return rc;
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

static int parse_service(json_t *root, const char *name, struct kvm_service *s, char *err,
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
    if ((rc = get_kind(root, NULL, "template", HAPROXY_VALUE_NAME, false, &s->template_name, err,
                       errlen)) < 0)
        return rc;
    if (!s->template_name && !(s->template_name = strdup("http")))
        return -ENOMEM;
    if ((rc = get_list(root, NULL, "backends", true, &arr, &n, err, errlen)) < 0)
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
    if ((rc = get_list(root, NULL, "frontends", true, &arr, &n, err, errlen)) < 0)
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
        if (!f->default_backend && f->n_routes == 0) {
            errmsg_set(err, errlen, "%s: needs \"default_backend\" or \"routes\"", w);
            return -EINVAL;
        }
    }
    if ((rc = json_get_object(root, NULL, "timeouts", &obj, false, err, errlen)) < 0)
        return rc;
    if (rc == 1 &&
        ((rc = get_duration(obj, "timeouts", "client", &s->timeout_client_ms, err, errlen)) < 0 ||
         (rc = get_duration(obj, "timeouts", "connect", &s->timeout_connect_ms, err, errlen)) < 0 ||
         (rc = get_duration(obj, "timeouts", "server", &s->timeout_server_ms, err, errlen)) < 0))
        return rc;
    return 0;
}

/* ---- kube/<cluster>/... ---- */

static int parse_kube_service(json_t *root, const char *cluster, const char *ns, const char *svc,
                              const char *port, struct kvm_kube_service *k, char *err,
                              size_t errlen)
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
        (rc = get_kind(root, NULL, "health_check_path", HAPROXY_VALUE_PATH, false,
                       &k->health_check_path, err, errlen)) < 0)
        return rc;
    k->node_port = (uint16_t)np;
    k->health_check_port = (uint16_t)hp;
    k->proxy_protocol = pp;
    return 0;
}

static int parse_node(json_t *root, const char *cluster, const char *name, struct kvm_node *nd,
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
        (rc = get_list(root, NULL, "addresses", false, &arr, &n, err, errlen)) < 0)
        return rc;
    if (n && !(nd->addresses = calloc(n, sizeof(char *))))
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        json_t *a = json_array_get(arr, i);
        const char *why;
        const char *s = json_is_string(a) ? json_string_value(a) : NULL;
        size_t len = s ? strlen(s) : 0;
        char *buf;
        size_t olen;
        if (!s) {
            errmsg_set(err, errlen, "addresses[%zu]: expected string, got %s", i,
                       json_type_desc(a));
            return -EINVAL;
        }
        if (!(buf = malloc(haproxy_value_format_size(len))))
            return -ENOMEM;
        if (haproxy_value_format(HAPROXY_VALUE_IP, s, len, buf, haproxy_value_format_size(len),
                                 &olen, &why) < 0) {
            free(buf);
            errmsg_set(err, errlen, "addresses[%zu]: %s", i, why);
            return -EINVAL;
        }
        nd->addresses[nd->n_addresses++] = buf;
    }
    if (nd->n_addresses == 0) {
        /* older writers: only "address" */
        char *one = NULL;
        if ((rc = get_kind(root, NULL, "address", HAPROXY_VALUE_IP, false, &one, err, errlen)) < 0)
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

/* ---- maintenance/... and force-removal ---- */

static int parse_common_times(json_t *root, int64_t *expires, char **author, char **reason,
                              char *err, size_t errlen)
{
    const char *s = NULL;
    int rc;
    if ((rc = json_get_string(root, NULL, "expires", &s, false, err, errlen)) < 0)
        return rc;
    if (rc == 1 && timefmt_parse_rfc3339(s, expires) < 0) {
        errmsg_set(err, errlen, "expires: '%.40s' is not an RFC 3339 time", s);
        return -EINVAL;
    }
    s = NULL;
    if ((rc = json_get_string(root, NULL, "author", &s, false, err, errlen)) < 0)
        return rc;
    if (s && !(*author = strdup(s)))
        return -ENOMEM;
    s = NULL;
    if ((rc = json_get_string(root, NULL, "reason", &s, false, err, errlen)) < 0)
        return rc;
    if (s && !(*reason = strdup(s)))
        return -ENOMEM;
    return 0;
}

static int parse_maint(json_t *root, struct kvm_maint *x, char *err, size_t errlen)
{
    static const char *const states[] = {"ready", "drain", "maint", NULL};
    char *state = NULL;
    int64_t weight = -1;
    int rc;
    if (!json_is_object(root)) {
        errmsg_set(err, errlen, "expected a JSON object, got %s", json_type_desc(root));
        return -EINVAL;
    }
    if (!json_object_get(root, "state")) {
        errmsg_set(err, errlen, "state: required field missing");
        return -EINVAL;
    }
    if ((rc = get_one_of(root, NULL, "state", states, "ready", &state, err, errlen)) < 0)
        return rc;
    x->admin = !strcmp(state, "maint")   ? KVM_ADMIN_MAINT
               : !strcmp(state, "drain") ? KVM_ADMIN_DRAIN
                                         : KVM_ADMIN_READY;
    free(state);
    if ((rc = json_get_int(root, NULL, "weight", &weight, 0, 256, false, err, errlen)) < 0)
        return rc;
    x->weight = (int)weight;
    return parse_common_times(root, &x->expires, &x->author, &x->reason, err, errlen);
}

/* ---- dispatch ---- */

/* Split s at '/' into at most max non-empty segments of < 256 bytes each.
 * Returns the number of segments, or -1 when there are more than max or a
 * segment is empty or too long. */
static int split(const char *s, char seg[][256], int max)
{
    int k = 0;
    for (;;) {
        const char *slash = strchr(s, '/');
        size_t len = slash ? (size_t)(slash - s) : strlen(s);
        if (k == max || len == 0 || len >= 256)
            return -1;
        memcpy(seg[k], s, len);
        seg[k][len] = '\0';
        k++;
        if (!slash)
            return k;
        s = slash + 1;
    }
}

static bool starts(const char *s, const char *prefix, const char **rest)
{
    size_t n = strlen(prefix);
    if (strncmp(s, prefix, n) != 0)
        return false;
    *rest = s + n;
    return true;
}

static bool consumed_cluster(const struct kv_model_opts *o, const char *c)
{
    for (size_t i = 0; i < o->n_kube_clusters; i++)
        if (strcmp(o->kube_clusters[i], c) == 0)
            return true;
    return false;
}

int kv_model_add(struct kv_model *m, const struct kv_model_opts *o, const char *key,
                 const char *value, size_t len, int64_t now, char *err, size_t errlen)
{
    const char *rest, *why;
    char hx[512];
    json_t *root = NULL;
    enum kvm_prefix pfx;
    int rc = 0;

    if (!starts(key, o->root, &rest)) {
        m->ignored++;
        return 0;
    }
    const char *rel = rest;
    snprintf(hx, sizeof(hx), "haproxy/%s/", o->haproxy_cluster);
    if (starts(rel, hx, &rest)) {
        pfx = KVM_PREFIX_HAPROXY;
    } else if (starts(rel, "kube/", &rest)) {
        pfx = KVM_PREFIX_KUBE;
    } else if (starts(rel, "maintenance/", &rest)) {
        pfx = KVM_PREFIX_MAINTENANCE;
    } else {
        m->ignored++;
        return 0;
    }

    /* Decide whether the key is ours before looking at the value. */
    enum { K_SERVICE, K_FORCE, K_KSVC, K_NODE, K_M_NODE, K_M_ADDR, K_M_SERVER } kind;
    char seg[5][256];
    int ns = split(rest, seg, 5);
    if (pfx == KVM_PREFIX_HAPROXY) {
        if (ns == 2 && strcmp(seg[0], "services") == 0)
            kind = K_SERVICE;
        else if (ns == 2 && strcmp(seg[0], "force-removal") == 0)
            kind = K_FORCE;
        else {
            m->ignored++;
            return 0;
        }
    } else if (pfx == KVM_PREFIX_KUBE) {
        if (ns < 2 || !consumed_cluster(o, seg[0]) ||
            (strcmp(seg[1], "services") != 0 && strcmp(seg[1], "nodes") != 0)) {
            m->ignored++;
            return 0;
        }
        if (ns == 5 && strcmp(seg[1], "services") == 0) {
            kind = K_KSVC;
        } else if (ns == 3 && strcmp(seg[1], "nodes") == 0) {
            kind = K_NODE;
        } else {
            errmsg_set(err, errlen,
                       "key %s: expected kube/<cluster>/services/<namespace>/<service>/<port> or "
                       "kube/<cluster>/nodes/<node>",
                       key);
            rc = -EINVAL;
            goto bad;
        }
    } else {
        if (ns == 3 && strcmp(seg[0], "node") == 0)
            kind = K_M_NODE;
        else if (ns == 2 && strcmp(seg[0], "addr") == 0)
            kind = K_M_ADDR;
        else if (ns == 3 && strcmp(seg[0], "server") == 0)
            kind = K_M_SERVER;
        else {
            errmsg_set(err, errlen,
                       "key %s: expected maintenance/node/<cluster>/<node>, maintenance/addr/<ip> "
                       "or maintenance/server/<backend>/<server>",
                       key);
            rc = -EINVAL;
            goto bad;
        }
    }

    char jerr[200];
    if (!value || len == 0 || json_from_buffer(value, len, key, &root, jerr, sizeof(jerr)) < 0) {
        errmsg_set(err, errlen, "key %s: %s", key, value && len ? jerr : "empty value");
        rc = -EINVAL;
        goto bad;
    }

    char msg[300];
    msg[0] = '\0';
    switch (kind) {
    case K_SERVICE: {
        struct kvm_service s = {0};
        rc = parse_service(root, seg[1], &s, msg, sizeof(msg));
        if (rc == 0 && !(s.key = strdup(key)))
            rc = -ENOMEM;
        if (rc == 0 &&
            (rc = grow((void **)&m->services, &m->cap_services, m->n_services, sizeof(s))) == 0)
            m->services[m->n_services++] = s;
        else
            free_service(&s);
        break;
    }
    case K_FORCE: {
        struct kvm_force f = {0};
        rc = parse_common_times(root, &f.expires, &f.author, &f.reason, msg, sizeof(msg));
        if (rc == 0 && f.expires == 0) {
            errmsg_set(msg, sizeof(msg), "expires: required field missing");
            rc = -EINVAL;
        }
        if (rc == 0 && f.expires <= now) {
            free_force(&f);
            json_decref(root);
            return 0;
        }
        if (rc == 0 && !(f.backend = strdup(seg[1])))
            rc = -ENOMEM;
        if (rc == 0 &&
            (rc = grow((void **)&m->forces, &m->cap_forces, m->n_forces, sizeof(f))) == 0)
            m->forces[m->n_forces++] = f;
        else
            free_force(&f);
        break;
    }
    case K_KSVC: {
        struct kvm_kube_service k = {0};
        rc = parse_kube_service(root, seg[0], seg[2], seg[3], seg[4], &k, msg, sizeof(msg));
        if (rc == 0 && (rc = grow((void **)&m->kube_services, &m->cap_kube_services,
                                  m->n_kube_services, sizeof(k))) == 0)
            m->kube_services[m->n_kube_services++] = k;
        else
            free_kube_service(&k);
        break;
    }
    case K_NODE: {
        struct kvm_node nd = {0};
        rc = parse_node(root, seg[0], seg[2], &nd, msg, sizeof(msg));
        if (rc == 0 && (rc = grow((void **)&m->nodes, &m->cap_nodes, m->n_nodes, sizeof(nd))) == 0)
            m->nodes[m->n_nodes++] = nd;
        else
            free_node(&nd);
        break;
    }
    default: {
        struct kvm_maint x = {0};
        x.kind = kind == K_M_NODE   ? KVM_MAINT_NODE
                 : kind == K_M_ADDR ? KVM_MAINT_ADDR
                                    : KVM_MAINT_SERVER;
        rc = parse_maint(root, &x, msg, sizeof(msg));
        if (rc == 0 && x.kind == KVM_MAINT_ADDR) {
            size_t l = strlen(seg[1]);
            char *ip = malloc(haproxy_value_format_size(l));
            size_t olen;
            if (!ip) {
                rc = -ENOMEM;
            } else if (haproxy_value_format(HAPROXY_VALUE_IP, seg[1], l, ip,
                                            haproxy_value_format_size(l), &olen, &why) < 0) {
                errmsg_set(msg, sizeof(msg), "address '%.60s' in the key: %s", seg[1], why);
                free(ip);
                rc = -EINVAL;
            } else {
                x.a = ip;
            }
        } else if (rc == 0) {
            if (!(x.a = strdup(seg[1])) || !(x.b = strdup(seg[2])))
                rc = -ENOMEM;
        }
        if (rc == 0 && x.expires && x.expires <= now) {
            free_maint(&x);
            json_decref(root);
            return 0;
        }
        if (rc == 0 && (rc = grow((void **)&m->maint, &m->cap_maint, m->n_maint, sizeof(x))) == 0)
            m->maint[m->n_maint++] = x;
        else
            free_maint(&x);
        break;
    }
    }
    json_decref(root);
    if (rc == -ENOMEM)
        return rc;
    if (rc < 0) {
        errmsg_set(err, errlen, "key %s: %s", key, msg);
        goto bad;
    }
    return 1;
bad:
    m->bad[pfx]++;
    return -EINVAL;
}

/* ---- ordering and lookups ---- */

static int cmp_service(const void *a, const void *b)
{
    return strcmp(((const struct kvm_service *)a)->name, ((const struct kvm_service *)b)->name);
}

static int cmp_strs(const char *a1, const char *a2, const char *a3, const char *a4, const char *b1,
                    const char *b2, const char *b3, const char *b4)
{
    int c;
    if ((c = strcmp(a1 ? a1 : "", b1 ? b1 : "")) || (c = strcmp(a2 ? a2 : "", b2 ? b2 : "")) ||
        (c = strcmp(a3 ? a3 : "", b3 ? b3 : "")))
        return c;
    return strcmp(a4 ? a4 : "", b4 ? b4 : "");
}

static int cmp_ksvc(const void *a, const void *b)
{
    const struct kvm_kube_service *x = a, *y = b;
    return cmp_strs(x->cluster, x->namespace, x->service, x->port_name, y->cluster, y->namespace,
                    y->service, y->port_name);
}

static int cmp_node(const void *a, const void *b)
{
    const struct kvm_node *x = a, *y = b;
    return cmp_strs(x->cluster, x->name, NULL, NULL, y->cluster, y->name, NULL, NULL);
}

static int cmp_maint(const void *a, const void *b)
{
    const struct kvm_maint *x = a, *y = b;
    if (x->kind != y->kind)
        return (int)x->kind - (int)y->kind;
    return cmp_strs(x->a, x->b, NULL, NULL, y->a, y->b, NULL, NULL);
}

static int cmp_force(const void *a, const void *b)
{
    return strcmp(((const struct kvm_force *)a)->backend, ((const struct kvm_force *)b)->backend);
}

void kv_model_finish(struct kv_model *m)
{
    if (m->n_services)
        qsort(m->services, m->n_services, sizeof(*m->services), cmp_service);
    if (m->n_kube_services)
        qsort(m->kube_services, m->n_kube_services, sizeof(*m->kube_services), cmp_ksvc);
    if (m->n_nodes)
        qsort(m->nodes, m->n_nodes, sizeof(*m->nodes), cmp_node);
    if (m->n_maint)
        qsort(m->maint, m->n_maint, sizeof(*m->maint), cmp_maint);
    if (m->n_forces)
        qsort(m->forces, m->n_forces, sizeof(*m->forces), cmp_force);
}

const struct kvm_kube_service *kv_model_kube_service(const struct kv_model *m, const char *cluster,
                                                     const char *ns, const char *svc,
                                                     const char *port)
{
    struct kvm_kube_service key = {.cluster = (char *)cluster,
                                   .namespace = (char *)ns,
                                   .service = (char *)svc,
                                   .port_name = (char *)port};
    if (!m->n_kube_services)
        return NULL;
    return bsearch(&key, m->kube_services, m->n_kube_services, sizeof(key), cmp_ksvc);
}

const struct kvm_force *kv_model_force(const struct kv_model *m, const char *backend)
{
    struct kvm_force key = {.backend = (char *)backend};
    if (!m->n_forces)
        return NULL;
    return bsearch(&key, m->forces, m->n_forces, sizeof(key), cmp_force);
}
