/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kv_model: the KV entries drover-watcher consumes, classified by kv_key
 * and decoded by the kv_* schema modules. See kv_model.h; the
 * field-by-field contract is docs/kv-schema.md.
 */
#include "kv_model.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errmsg.h"
#include "haproxy_value.h"
#include "json_util.h"
#include "kv_key.h"
#include "log.h"

static const char *const prefix_names[KVM_PREFIX_COUNT] = {"haproxy", "kube", "maintenance"};

const char *kvm_prefix_name(enum kvm_prefix p)
{
    return p < KVM_PREFIX_COUNT ? prefix_names[p] : "?";
}

void kv_model_init(struct kv_model *m)
{
    memset(m, 0, sizeof(*m));
}

void kv_model_clear(struct kv_model *m)
{
    for (size_t i = 0; i < m->n_services; i++)
        kvm_service_clear(&m->services[i]);
    free(m->services);
    for (size_t i = 0; i < m->n_kube_services; i++)
        kvm_kube_service_clear(&m->kube_services[i]);
    free(m->kube_services);
    for (size_t i = 0; i < m->n_nodes; i++)
        kvm_node_clear(&m->nodes[i]);
    free(m->nodes);
    kvm_force_clear(&m->kv_loss_force);
    for (size_t i = 0; i < m->n_maint; i++)
        kvm_maint_clear(&m->maint[i]);
    free(m->maint);
    for (size_t i = 0; i < m->n_forces; i++)
        kvm_force_clear(&m->forces[i]);
    free(m->forces);
    kv_model_init(m);
}

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
    json_t *root = NULL;
    enum kvm_prefix pfx;
    struct kv_key k;
    struct kv_maint_id mid;
    char msg[300];
    int rc = 0;

    kv_key_parse(o->root, key, &k);
    switch (k.kind) {
    case KV_KEY_HAPROXY_SERVICE:
    case KV_KEY_HAPROXY_FORCE:
    case KV_KEY_HAPROXY_FORCE_KV_LOSS:
        if (strcmp(k.seg[0], o->haproxy_cluster) != 0) {
            m->ignored++;
            return 0;
        }
        pfx = KVM_PREFIX_HAPROXY;
        break;
    case KV_KEY_KUBE_SERVICE:
    case KV_KEY_KUBE_NODE:
    case KV_KEY_KUBE_MALFORMED:
        if (!consumed_cluster(o, k.seg[0])) {
            m->ignored++;
            return 0;
        }
        pfx = KVM_PREFIX_KUBE;
        if (k.kind == KV_KEY_KUBE_MALFORMED) {
            errmsg_set(err, errlen,
                       "key %s: expected kube/<cluster>/services/<namespace>/<service>/<port>, "
                       "kube/<cluster>/node-shards/<shard>/<node> with the node's own shard, or "
                       "kube/<cluster>/nodes/<node>",
                       key);
            rc = -EINVAL;
            goto bad;
        }
        break;
    case KV_KEY_MAINTENANCE:
        pfx = KVM_PREFIX_MAINTENANCE;
        /* Decide whether the key is good before looking at the value. */
        if (kv_maint_id_parse(k.rel, &mid, msg, sizeof(msg)) < 0) {
            errmsg_set(err, errlen, "key %s: %s", key, msg);
            rc = -EINVAL;
            goto bad;
        }
        break;
    default:
        m->ignored++;
        return 0;
    }

    char jerr[200];
    if (!value || len == 0 || json_from_buffer(value, len, key, &root, jerr, sizeof(jerr)) < 0) {
        errmsg_set(err, errlen, "key %s: %s", key, value && len ? jerr : "empty value");
        rc = -EINVAL;
        goto bad;
    }

    msg[0] = '\0';
    switch (k.kind) {
    case KV_KEY_HAPROXY_SERVICE: {
        struct kvm_service s = {0};
        rc = kvm_service_decode(root, k.seg[1], &s, msg, sizeof(msg));
        if (rc == 0 && !(s.key = strdup(key)))
            rc = -ENOMEM;
        if (rc == 0 &&
            (rc = grow((void **)&m->services, &m->cap_services, m->n_services, sizeof(s))) == 0)
            m->services[m->n_services++] = s;
        else
            kvm_service_clear(&s);
        break;
    }
    case KV_KEY_HAPROXY_FORCE: {
        struct kvm_force f = {0};
        rc = kvm_force_decode(root, &f, msg, sizeof(msg));
        if (rc == 0 && f.expires <= now) {
            kvm_force_clear(&f);
            json_decref(root);
            return 0;
        }
        if (rc == 0 && !(f.backend = strdup(k.seg[1])))
            rc = -ENOMEM;
        if (rc == 0 &&
            (rc = grow((void **)&m->forces, &m->cap_forces, m->n_forces, sizeof(f))) == 0)
            m->forces[m->n_forces++] = f;
        else
            kvm_force_clear(&f);
        break;
    }
    case KV_KEY_HAPROXY_FORCE_KV_LOSS: {
        struct kvm_force f = {0};
        rc = kvm_force_decode(root, &f, msg, sizeof(msg));
        if (rc == 0 && f.expires > now) {
            kvm_force_clear(&m->kv_loss_force);
            m->kv_loss_force = f;
            m->has_kv_loss_force = true;
        } else {
            kvm_force_clear(&f);
        }
        break;
    }
    case KV_KEY_KUBE_SERVICE: {
        struct kvm_kube_service ks = {0};
        rc = kvm_kube_service_decode(root, k.seg[0], k.seg[1], k.seg[2], k.seg[3], &ks, msg,
                                     sizeof(msg));
        if (rc == 0 && (rc = grow((void **)&m->kube_services, &m->cap_kube_services,
                                  m->n_kube_services, sizeof(ks))) == 0)
            m->kube_services[m->n_kube_services++] = ks;
        else
            kvm_kube_service_clear(&ks);
        break;
    }
    case KV_KEY_KUBE_NODE: {
        struct kvm_node nd = {0};
        rc = kvm_node_decode(root, k.seg[0], k.seg[1], &nd, msg, sizeof(msg));
        if (rc == 0 && (rc = grow((void **)&m->nodes, &m->cap_nodes, m->n_nodes, sizeof(nd))) == 0)
            m->nodes[m->n_nodes++] = nd;
        else
            kvm_node_clear(&nd);
        break;
    }
    default: {
        struct kvm_maint x = {0};
        x.kind = mid.kind;
        rc = kvm_maint_decode(root, &x, msg, sizeof(msg));
        if (rc == 0 && !(x.a = strdup(mid.a)))
            rc = -ENOMEM;
        if (rc == 0 && x.kind != KVM_MAINT_ADDR && !(x.b = strdup(mid.b)))
            rc = -ENOMEM;
        if (rc == 0 && kvm_maint_expired(x.expires, now)) {
            kvm_maint_clear(&x);
            json_decref(root);
            return 0;
        }
        if (rc == 0 && (rc = grow((void **)&m->maint, &m->cap_maint, m->n_maint, sizeof(x))) == 0)
            m->maint[m->n_maint++] = x;
        else
            kvm_maint_clear(&x);
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

/* ---- class selectors (kv_haproxy.h struct kvm_selector) ---- */

static bool selector_matches(const struct kvm_selector *x, const struct kvm_kube_service *k)
{
    if (!k->load_balancer_class || strcmp(k->load_balancer_class, x->lb_class) != 0)
        return false;
    if (x->namespace && strcmp(x->namespace, k->namespace) != 0)
        return false;
    for (size_t i = 0; i < x->n_labels; i++) {
        json_t *v = k->labels ? json_object_get(k->labels, x->label_keys[i]) : NULL;
        /* the selector's value is a checked word: equality checks the entry's */
        if (!json_is_string(v) || strcmp(json_string_value(v), x->label_values[i]) != 0)
            return false;
    }
    return true;
}

static struct kvm_frontend *find_frontend(struct kvm_service *s, const char *name)
{
    for (size_t i = 0; i < s->n_frontends; i++)
        if (strcmp(s->frontends[i].name, name) == 0)
            return &s->frontends[i];
    return NULL;
}

static struct kvm_backend *find_backend(struct kvm_service *s, const char *name)
{
    for (size_t i = 0; i < s->n_backends; i++)
        if (strcmp(s->backends[i].name, name) == 0)
            return &s->backends[i];
    return NULL;
}

/* What one selected kube service port becomes, every word checked. */
struct selected {
    char backend[HAPROXY_VALUE_NAME_MAX + 1];
    char listen_frontend[HAPROXY_VALUE_NAME_MAX + 4]; /* "fe.<backend>" (listen_port) */
    char host[256];                                   /* "" = no route */
    const char *mode;
    const char *protocol; /* backend_protocol, "tcp" when unset */
};

/* The frontend of s that binds port, or NULL. */
static const char *port_bound_by(const struct kvm_service *s, uint16_t port)
{
    for (size_t i = 0; i < s->n_frontends; i++)
        for (size_t j = 0; j < s->frontends[i].n_binds; j++)
            if (s->frontends[i].binds[j].port == port)
                return s->frontends[i].name;
    for (size_t j = 0; j < s->n_metrics_binds; j++)
        if (s->metrics_binds[j].port == port)
            return "drover_metrics";
    return NULL;
}

/* Check the fields of k that reach the configuration for frontend f of
 * s. 0, or -EINVAL with err naming the field. */
static int selected_check(const struct kvm_service *s, const struct kvm_kube_service *k,
                          const struct kvm_frontend *f, struct selected *out, char *err,
                          size_t errlen)
{
    const char *why = NULL;
    const char *proto = k->backend_protocol ? k->backend_protocol : "tcp";
    int n = snprintf(out->backend, sizeof(out->backend), "%s.%s.%s", k->namespace, k->service,
                     k->port_name);
    if (n < 0 || n > HAPROXY_VALUE_NAME_MAX - 6 ||
        haproxy_value_check(HAPROXY_VALUE_NAME, out->backend, (size_t)n, &why) < 0) {
        errmsg_set(err, errlen, "generated backend name '%.60s': %s", out->backend,
                   why ? why : "too long");
        return -EINVAL;
    }
    if (!strcmp(proto, "http") || !strcmp(proto, "https") || !strcmp(proto, "h2") ||
        !strcmp(proto, "h2c"))
        out->mode = "http";
    else if (!strcmp(proto, "tcp") || !strcmp(proto, "tls"))
        out->mode = "tcp";
    else {
        errmsg_set(err, errlen,
                   "backend_protocol '%.40s': one of http, https, h2, h2c, tcp, tls expected",
                   proto);
        return -EINVAL;
    }
    out->protocol = proto;
    if (strcmp(out->mode, f->mode) != 0) {
        errmsg_set(err, errlen, "backend_protocol '%s' does not fit %s frontend '%s'", proto,
                   f->mode, f->name);
        return -EINVAL;
    }
    if (k->listen_port < 0 || k->listen_port > 65535) {
        errmsg_set(err, errlen, "listen_port %lld: not a port number (1-65535)",
                   (long long)k->listen_port);
        return -EINVAL;
    }
    snprintf(out->listen_frontend, sizeof(out->listen_frontend), "fe.%s", out->backend);
    const char *clash = k->listen_port ? port_bound_by(s, (uint16_t)k->listen_port) : NULL;
    if (clash && strcmp(clash, out->listen_frontend) != 0) {
        errmsg_set(err, errlen, "listen_port %lld: already bound by frontend '%s'",
                   (long long)k->listen_port, clash);
        return -EINVAL;
    }
    out->host[0] = '\0';
    if (k->dns_name) {
        size_t len = strlen(k->dns_name);
        if (len && k->dns_name[len - 1] == '.')
            len--; /* the absolute form names the same host */
        if (len >= sizeof(out->host) ||
            haproxy_value_check(HAPROXY_VALUE_HOST, k->dns_name, len, &why) < 0) {
            errmsg_set(err, errlen, "dns_name '%.60s': %s", k->dns_name, why ? why : "too long");
            return -EINVAL;
        }
        for (size_t i = 0; i < len; i++) /* Host matching is case-insensitive */
            out->host[i] =
                (char)(k->dns_name[i] >= 'A' && k->dns_name[i] <= 'Z' ? k->dns_name[i] - 'A' + 'a'
                                                                      : k->dns_name[i]);
        out->host[len] = '\0';
    }
    return 0;
}

static const struct kvm_route *find_route(const struct kvm_service *s, const char *host)
{
    for (size_t i = 0; i < s->n_frontends; i++)
        for (size_t j = 0; j < s->frontends[i].n_routes; j++)
            if (strcasecmp(s->frontends[i].routes[j].host, host) == 0)
                return &s->frontends[i].routes[j];
    return NULL;
}

static int generate_backend(struct kvm_service *s, const struct kvm_selector *x,
                            const struct selected *sel, struct kvm_backend **out)
{
    void *p = realloc(s->backends, (s->n_backends + 1) * sizeof(*s->backends));
    if (!p)
        return -ENOMEM;
    s->backends = p;
    struct kvm_backend *b = &s->backends[s->n_backends];
    memset(b, 0, sizeof(*b));
    b->max_removal_share = -1;
    b->slots = x->slots;
    b->prefer_local_zone = x->prefer_local_zone;
    s->n_backends++; /* cleared with the service even if half built */
    if (!(b->name = strdup(sel->backend)) || !(b->mode = strdup(sel->mode)) ||
        !(b->balance = strdup(x->balance)) || !(b->protocol = strdup(sel->protocol)))
        return -ENOMEM;
    /* the selector's CA verifies the servers of the backends that speak
     * TLS to them; the others have no TLS to verify */
    bool tls = !strcmp(sel->protocol, "https") || !strcmp(sel->protocol, "h2");
    if (tls && kvm_server_tls_copy(&x->server_tls, &b->server_tls) < 0)
        return -ENOMEM;
    *out = b;
    return 0;
}

static int add_kube_ref(struct kvm_backend *b, const struct kvm_kube_service *k)
{
    void *p = realloc(b->kube, (b->n_kube + 1) * sizeof(*b->kube));
    if (!p)
        return -ENOMEM;
    b->kube = p;
    struct kvm_kube_ref *r = &b->kube[b->n_kube];
    memset(r, 0, sizeof(*r));
    b->n_kube++;
    if (!(r->cluster = strdup(k->cluster)) || !(r->namespace = strdup(k->namespace)) ||
        !(r->service = strdup(k->service)) || !(r->port = strdup(k->port_name)))
        return -ENOMEM;
    return 0;
}

static int add_route(struct kvm_frontend *f, const char *host, const char *backend)
{
    void *p = realloc(f->routes, (f->n_routes + 1) * sizeof(*f->routes));
    if (!p)
        return -ENOMEM;
    f->routes = p;
    struct kvm_route *r = &f->routes[f->n_routes];
    memset(r, 0, sizeof(*r));
    f->n_routes++;
    r->sni = strcmp(f->mode, "tcp") == 0;
    r->generated = true;
    if (!(r->host = strdup(host)) || !(r->backend = strdup(backend)))
        return -ENOMEM;
    return 0;
}

/* The dedicated frontend of a selected port with a listen_port: the
 * binds of the selector's frontend f (its addresses, port replaced), its
 * mode and TLS termination, the generated backend as default. Appended
 * to s->frontends (f may move: the caller looks it up again). */
static int add_listen_frontend(struct kvm_service *s, const struct kvm_frontend *f,
                               const struct selected *sel, uint16_t port)
{
    size_t fi = (size_t)(f - s->frontends);
    void *p = realloc(s->frontends, (s->n_frontends + 1) * sizeof(*s->frontends));
    if (!p)
        return -ENOMEM;
    s->frontends = p;
    f = &s->frontends[fi];
    struct kvm_frontend *g = &s->frontends[s->n_frontends];
    memset(g, 0, sizeof(*g));
    s->n_frontends++; /* cleared with the service even if half built */
    g->generated = true;
    if (!(g->name = strdup(sel->listen_frontend)) || !(g->mode = strdup(f->mode)) ||
        !(g->default_backend = strdup(sel->backend)) ||
        !(g->binds = calloc(f->n_binds, sizeof(*g->binds))) ||
        (f->alpn && !(g->alpn = strdup(f->alpn))) ||
        (f->n_tls_certs && !(g->tls_certs = calloc(f->n_tls_certs, sizeof(*g->tls_certs)))))
        return -ENOMEM;
    for (size_t i = 0; i < f->n_binds; i++, g->n_binds++) {
        if (!(g->binds[i].addr = strdup(f->binds[i].addr)))
            return -ENOMEM;
        g->binds[i].port = port;
    }
    for (size_t i = 0; i < f->n_tls_certs; i++, g->n_tls_certs++)
        if (kvm_tls_cert_copy(&f->tls_certs[i], &g->tls_certs[i]) < 0)
            return -ENOMEM;
    return 0;
}

/* One selected entry k for selector x of s: refused (logged, counted) or
 * merged into s. 0 or -ENOMEM. */
static int select_one(struct kv_model *m, struct kvm_service *s, const struct kvm_selector *x,
                      const struct kvm_kube_service *k)
{
    struct kvm_frontend *f = find_frontend(s, x->frontend);
    struct selected sel;
    char err[300];
    int rc;

    if (!f)
        return 0; /* decode checked it */
    rc = selected_check(s, k, f, &sel, err, sizeof(err));
    struct kvm_backend *b = rc == 0 ? find_backend(s, sel.backend) : NULL;
    if (b && (size_t)(b - s->backends) < s->n_explicit_backends) {
        errmsg_set(err, sizeof(err), "generated backend name '%s' is a backend of the definition",
                   sel.backend);
        rc = -EINVAL;
    }
    const struct kvm_route *r = rc == 0 && sel.host[0] ? find_route(s, sel.host) : NULL;
    if (r && strcmp(r->backend, sel.backend) != 0) {
        errmsg_set(err, sizeof(err), "dns_name '%s' is already routed to backend '%s'", sel.host,
                   r->backend);
        rc = -EINVAL;
    }
    if (rc < 0) {
        log_warn("watcher: key kube/%s/services/%s/%s/%s selected by class '%s' of service %s: "
                 "%s; entry not rendered",
                 k->cluster, k->namespace, k->service, k->port_name, x->lb_class, s->name, err);
        m->bad[KVM_PREFIX_KUBE]++;
        m->bad_selected++;
        return 0;
    }
    if (!b && (rc = generate_backend(s, x, &sel, &b)) < 0)
        return rc;
    for (size_t i = 0; i < b->n_kube; i++)
        if (!strcmp(b->kube[i].cluster, k->cluster))
            return 0; /* a second selector picked the same entry */
    if ((rc = add_kube_ref(b, k)) < 0)
        return rc;
    if (sel.host[0] && !r && (rc = add_route(f, sel.host, sel.backend)) < 0)
        return rc;
    if (k->listen_port && !find_frontend(s, sel.listen_frontend) &&
        (rc = add_listen_frontend(s, f, &sel, (uint16_t)k->listen_port)) < 0)
        return rc;
    return 0;
}

static int expand_selectors(struct kv_model *m)
{
    for (size_t i = 0; i < m->n_services; i++) {
        struct kvm_service *s = &m->services[i];
        for (size_t j = 0; j < s->n_selectors; j++) {
            for (size_t k = 0; k < m->n_kube_services; k++) {
                if (!selector_matches(&s->selectors[j], &m->kube_services[k]))
                    continue;
                int rc = select_one(m, s, &s->selectors[j], &m->kube_services[k]);
                if (rc < 0)
                    return rc;
            }
        }
    }
    return 0;
}

int kv_model_finish(struct kv_model *m)
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
    return expand_selectors(m);
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

/* A deep copy of n into *out. 0 or -ENOMEM (*out cleared). */
static int copy_node(const struct kvm_node *n, struct kvm_node *out)
{
    memset(out, 0, sizeof(*out));
    out->eligible = n->eligible;
    if (!(out->cluster = strdup(n->cluster)) || !(out->name = strdup(n->name)) ||
        (n->n_addresses && !(out->addresses = calloc(n->n_addresses, sizeof(char *)))))
        goto fail;
    for (; out->n_addresses < n->n_addresses; out->n_addresses++)
        if (!(out->addresses[out->n_addresses] = strdup(n->addresses[out->n_addresses])))
            goto fail;
    if (n->zone && !(out->zone = strdup(n->zone)))
        goto fail;
    return 0;
fail:
    kvm_node_clear(out);
    memset(out, 0, sizeof(*out));
    return -ENOMEM;
}

int kv_model_reuse_node(struct kv_model *m, const struct kv_model *prev, const char *cluster,
                        const char *name)
{
    struct kvm_node nd;
    int rc;

    if (!prev || !prev->n_nodes)
        return 0;
    struct kvm_node want = {.cluster = (char *)cluster, .name = (char *)name};
    const struct kvm_node *old = bsearch(&want, prev->nodes, prev->n_nodes, sizeof(want), cmp_node);
    if (!old)
        return 0; /* bad or not consumed last time: decode again, with its message */
    if ((rc = copy_node(old, &nd)) < 0 ||
        (rc = grow((void **)&m->nodes, &m->cap_nodes, m->n_nodes, sizeof(nd))) < 0) {
        kvm_node_clear(&nd);
        return rc;
    }
    m->nodes[m->n_nodes++] = nd;
    return 1;
}
