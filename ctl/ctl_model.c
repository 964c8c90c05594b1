/* SPDX-License-Identifier: Apache-2.0 */
/* ctl_model: see ctl_model.h. */
#include "ctl_model.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errmsg.h"
#include "kv_field.h"
#include "kv_key.h"
#include "kv_servers.h"
#include "log.h"

_Static_assert((int)CTL_TARGET_NODE == (int)KVM_MAINT_NODE &&
                   (int)CTL_TARGET_ADDR == (int)KVM_MAINT_ADDR &&
                   (int)CTL_TARGET_SERVER == (int)KVM_MAINT_SERVER &&
                   (int)CTL_STATE_READY == (int)KVM_ADMIN_READY &&
                   (int)CTL_STATE_DRAIN == (int)KVM_ADMIN_DRAIN &&
                   (int)CTL_STATE_MAINT == (int)KVM_ADMIN_MAINT,
               "droverctl's target kinds and states are the schema's");

const char *ctl_state_name(enum ctl_state s)
{
    return (unsigned)s <= CTL_STATE_MAINT ? kvm_admin_name((enum kvm_admin)s) : "?";
}

void ctl_model_init(struct ctl_model *m, int64_t now)
{
    memset(m, 0, sizeof(*m));
    m->now = now;
}

void ctl_maint_clear(struct ctl_maint *e)
{
    free(e->id);
    free(e->a);
    free(e->b);
    free(e->reason);
    free(e->author);
    free(e->created);
    free(e->expires);
    json_decref(e->value);
    memset(e, 0, sizeof(*e));
}

void ctl_model_clear(struct ctl_model *m)
{
    for (size_t i = 0; i < m->n_nodes; i++)
        kvm_node_clear(&m->nodes[i]);
    for (size_t i = 0; i < m->n_ports; i++)
        kvm_kube_service_clear(&m->ports[i]);
    for (size_t i = 0; i < m->n_services; i++) {
        kvm_service_clear(m->services[i]);
        free(m->services[i]);
    }
    for (size_t i = 0; i < m->n_maint; i++)
        ctl_maint_clear(&m->maint[i]);
    free(m->nodes);
    free(m->ports);
    free(m->services);
    free(m->backends);
    free(m->maint);
    ctl_model_init(m, m->now);
}

bool ctl_maint_expired(const struct ctl_maint *e, int64_t now)
{
    return e->expires_unix > 0 && e->expires_unix <= now;
}

/* ---- helpers ------------------------------------------------------------ */

static int grow(void **arr, size_t n, size_t size)
{
    /* capacity doubles at powers of two, so n alone says when to grow */
    if (n && (n & (n - 1)))
        return 0;
    void *p = realloc(*arr, (n ? n * 2 : 4) * size);
    if (!p)
        return -ENOMEM;
    *arr = p;
    return 0;
}

static char *jstr(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? strdup(s) : NULL;
}

/* ---- maintenance values ------------------------------------------------- */

int ctl_target_from_id(const char *id, struct ctl_target *out)
{
    struct kv_maint_id k;

    memset(out, 0, sizeof(*out));
    if (kv_maint_id_parse(id, &k, NULL, 0) < 0)
        return -EINVAL;
    out->kind = (enum ctl_target_kind)k.kind;
    snprintf(out->a, sizeof(out->a), "%s", k.a);
    snprintf(out->b, sizeof(out->b), "%s", k.b);
    snprintf(out->id, sizeof(out->id), "%s", k.id);
    return 0;
}

int ctl_maint_parse(const char *id, const char *value, size_t len, struct ctl_maint *e, char *err,
                    size_t errlen)
{
    struct ctl_target t;
    struct kvm_maint x = {0};
    json_error_t je;
    json_t *v = NULL;
    char msg[300];
    int rc = -EINVAL;

    memset(e, 0, sizeof(*e));
    e->weight = -1;
    if (ctl_target_from_id(id, &t) < 0) {
        errmsg_set(err, errlen, "maintenance/%s: not a node/, addr/ or server/ key", id);
        return -EINVAL;
    }
    if (!value || !(v = json_loadb(value, len, JSON_REJECT_DUPLICATES, &je)) ||
        !json_is_object(v)) {
        errmsg_set(err, errlen, "maintenance/%s: value is not a JSON object%s%s", id, v ? "" : ": ",
                   v ? "" : (value ? je.text : "empty"));
        goto out;
    }
    if ((rc = kvm_maint_decode(v, &x, msg, sizeof(msg))) < 0) {
        errmsg_set(err, errlen, "maintenance/%s: %s", id, msg);
        goto out;
    }
    e->state = (enum ctl_state)x.admin;
    e->weight = x.weight;
    e->expires_unix = x.expires;
    e->reason = x.reason;
    e->author = x.author;
    x.reason = x.author = NULL;
    e->expires = jstr(v, "expires");
    e->id = strdup(t.id);
    e->kind = t.kind;
    e->a = strdup(t.a);
    e->b = t.kind == CTL_TARGET_ADDR ? NULL : strdup(t.b);
    e->created = jstr(v, "created");
    e->value = v;
    v = NULL;
    rc = (!e->id || !e->a || (t.kind != CTL_TARGET_ADDR && !e->b)) ? -ENOMEM : 0;
out:
    kvm_maint_clear(&x);
    json_decref(v);
    if (rc < 0)
        ctl_maint_clear(e);
    return rc;
}

/* ---- adding entries --------------------------------------------------------- */

static int add_service(struct ctl_model *m, const char *name, const json_t *v, char *err,
                       size_t errlen, const char *key)
{
    struct kvm_service *s = calloc(1, sizeof(*s));
    char msg[300];
    int rc;

    if (!s || grow((void **)&m->services, m->n_services, sizeof(*m->services)) < 0) {
        free(s);
        return -ENOMEM;
    }
    if ((rc = kvm_service_decode(v, name, s, msg, sizeof(msg))) < 0) {
        if (rc == -EINVAL)
            errmsg_set(err, errlen, "%s: %s", key, msg);
        kvm_service_clear(s);
        free(s);
        return rc;
    }
    m->services[m->n_services++] = s;
    for (size_t i = 0; i < s->n_backends; i++) {
        if (grow((void **)&m->backends, m->n_backends, sizeof(*m->backends)) < 0)
            return -ENOMEM;
        m->backends[m->n_backends++] = (struct ctl_backend){
            .service = s->name, .name = s->backends[i].name, .def = &s->backends[i]};
    }
    return 1;
}

/* A node entry (either layout, kv_key.h). While the exporter moves to
 * the sharded layout a node may be in both: the shard is the newer
 * writer's and wins, as in the watcher's snapshot. 1 added, 0 superseded,
 * -EINVAL (msg says why), -ENOMEM. */
static int add_node(struct ctl_model *m, const struct kv_key *k, json_t *v, char *msg,
                    size_t msglen)
{
    struct kvm_node nd = {0};
    size_t i = 0;
    int rc;
    while (i < m->n_nodes && (strcmp(m->nodes[i].cluster, k->seg[0]) != 0 ||
                              strcmp(m->nodes[i].name, k->seg[1]) != 0))
        i++;
    if (i < m->n_nodes && !k->node_sharded)
        return 0;
    if ((rc = grow((void **)&m->nodes, m->n_nodes, sizeof(*m->nodes))) < 0 ||
        (rc = kvm_node_decode(v, k->seg[0], k->seg[1], &nd, msg, msglen)) < 0) {
        kvm_node_clear(&nd);
        return rc;
    }
    if (i < m->n_nodes)
        kvm_node_clear(&m->nodes[i]); /* the flat entry it supersedes */
    else
        m->n_nodes++;
    m->nodes[i] = nd;
    return 1;
}

int ctl_model_add(struct ctl_model *m, const char *root, const char *haproxy_cluster,
                  const char *key, const char *value, size_t len, uint64_t modify_index, char *err,
                  size_t errlen)
{
    struct kv_key k;
    json_t *v = NULL;
    json_error_t je;
    char msg[300];
    int rc = 0;

    kv_key_parse(root, key, &k);
    switch (k.kind) {
    case KV_KEY_MAINTENANCE: {
        struct ctl_maint e;
        if ((rc = ctl_maint_parse(k.rel, value, len, &e, err, errlen)) < 0) {
            m->bad++;
            return rc;
        }
        if (grow((void **)&m->maint, m->n_maint, sizeof(*m->maint)) < 0) {
            ctl_maint_clear(&e);
            return -ENOMEM;
        }
        e.modify_index = modify_index;
        m->maint[m->n_maint++] = e;
        return 1;
    }
    case KV_KEY_HAPROXY_SERVICE:
        if (haproxy_cluster && *haproxy_cluster && strcmp(k.seg[0], haproxy_cluster))
            return 0;
        break;
    case KV_KEY_KUBE_NODE:
    case KV_KEY_KUBE_SERVICE:
        break;
    default:
        return 0;
    }
    if (!value || !(v = json_loadb(value, len, 0, &je)) || !json_is_object(v)) {
        errmsg_set(err, errlen, "%s: value is not a JSON object", key);
        rc = -EINVAL;
    } else if (k.kind == KV_KEY_HAPROXY_SERVICE) {
        rc = add_service(m, k.seg[1], v, err, errlen, key);
    } else if (k.kind == KV_KEY_KUBE_NODE) {
        rc = add_node(m, &k, v, msg, sizeof(msg));
    } else {
        struct kvm_kube_service ks = {0};
        rc = grow((void **)&m->ports, m->n_ports, sizeof(*m->ports));
        if (rc == 0)
            rc = kvm_kube_service_decode(v, k.seg[0], k.seg[1], k.seg[2], k.seg[3], &ks, msg,
                                         sizeof(msg));
        if (rc == 0) {
            m->ports[m->n_ports++] = ks;
            rc = 1;
        } else {
            kvm_kube_service_clear(&ks);
        }
    }
    if (rc == -EINVAL && k.kind != KV_KEY_HAPROXY_SERVICE && v && json_is_object(v))
        errmsg_set(err, errlen, "%s: %s", key, msg);
    json_decref(v);
    if (rc == -EINVAL)
        m->bad++;
    return rc;
}

/* ---- lookups ------------------------------------------------------------------ */

const struct ctl_maint *ctl_model_maint(const struct ctl_model *m, const char *id)
{
    for (size_t i = 0; i < m->n_maint; i++)
        if (!strcmp(m->maint[i].id, id))
            return &m->maint[i];
    return NULL;
}

static const struct kvm_node *find_node(const struct ctl_model *m, const char *c, const char *n)
{
    for (size_t i = 0; i < m->n_nodes; i++)
        if (!strcmp(m->nodes[i].cluster, c) && !strcmp(m->nodes[i].name, n))
            return &m->nodes[i];
    return NULL;
}

static const struct kvm_kube_service *kube_lookup(void *arg, const struct kvm_kube_ref *r)
{
    const struct ctl_model *m = arg;
    for (size_t i = 0; i < m->n_ports; i++) {
        const struct kvm_kube_service *p = &m->ports[i];
        if (!strcmp(p->cluster, r->cluster) && !strcmp(p->namespace, r->namespace) &&
            !strcmp(p->service, r->service) && !strcmp(p->port_name, r->port))
            return p;
    }
    return NULL;
}

typedef void (*server_fn)(void *arg, const struct ctl_backend *be, const struct kv_server *s);
static void for_each_server(const struct ctl_model *m, const struct ctl_backend *be, server_fn fn,
                            void *arg);

static void count_server(void *arg, const struct ctl_backend *be, const struct kv_server *s)
{
    (void)be;
    (void)s;
    (*(size_t *)arg)++;
}

/* Is name one of be's HAProxy server slots? The watcher renders them as
 * "slot1".."slotN" (watcher/slots.h), N = the backend's "slots", grown
 * when the backend has more servers than that. */
static bool is_slot(const struct ctl_model *m, const struct ctl_backend *be, const char *name)
{
    size_t servers = 0;
    char *end;

    if (strncmp(name, "slot", 4) || name[4] < '1' || name[4] > '9')
        return false;
    errno = 0;
    long k = strtol(name + 4, &end, 10);
    if (*end || errno)
        return false;
    for_each_server(m, be, count_server, &servers);
    int64_t limit = be->def->slots > 0 ? be->def->slots : KV_HAPROXY_DEFAULT_SLOTS;
    if ((int64_t)servers > limit)
        limit = (int64_t)servers;
    return k >= 1 && k <= limit;
}

int ctl_model_resolve(const struct ctl_model *m, const char *text, char *const *clusters, size_t n,
                      struct ctl_target *out, char *err, size_t errlen)
{
    char ip[64];
    const char *slash = strchr(text, '/');
    size_t slashes = 0;

    memset(out, 0, sizeof(*out));
    for (const char *p = text; *p; p++)
        slashes += *p == '/';
    if (!*text || strlen(text) > 500) {
        errmsg_set(err, errlen, "refused: target '%.60s' is empty or too long", text);
        return -EINVAL;
    }
    /* an IP address, bare or addr/<ip> */
    if (kv_ip_canonical(text, ip, sizeof(ip)) == 0 ||
        (!strncmp(text, "addr/", 5) && kv_ip_canonical(text + 5, ip, sizeof(ip)) == 0)) {
        bool known = false;
        for (size_t i = 0; i < m->n_nodes && !known; i++)
            known = kvm_node_has_address(&m->nodes[i], ip);
        for (size_t i = 0; i < m->n_backends && !known; i++)
            for (size_t k = 0; k < m->backends[i].def->n_servers && !known; k++)
                known = !strcmp(m->backends[i].def->servers[k].address, ip);
        if (!known) {
            errmsg_set(err, errlen,
                       "refused: unknown target addr/%s: no kube node and no static server "
                       "has that address",
                       ip);
            return -ENOENT;
        }
        out->kind = CTL_TARGET_ADDR;
        snprintf(out->a, sizeof(out->a), "%s", ip);
        snprintf(out->id, sizeof(out->id), "addr/%s", ip);
        return 0;
    }
    if (!strncmp(text, "addr/", 5)) {
        errmsg_set(err, errlen, "refused: '%s' is not addr/<IP address>", text);
        return -EINVAL;
    }
    if (!strncmp(text, "node/", 5)) {
        if (ctl_target_from_id(text, out) < 0) {
            errmsg_set(err, errlen, "refused: '%s' is not node/<cluster>/<node>", text);
            return -EINVAL;
        }
        if (!find_node(m, out->a, out->b)) {
            errmsg_set(err, errlen, "refused: unknown target %s: no kube/%s/nodes/%s in KV",
                       out->id, out->a, out->b);
            return -ENOENT;
        }
        return 0;
    }
    if (!strncmp(text, "server/", 7) || (slash && slashes == 1)) {
        char id[600];
        if (strncmp(text, "server/", 7))
            snprintf(id, sizeof(id), "server/%s", text);
        else
            snprintf(id, sizeof(id), "%s", text);
        if (ctl_target_from_id(id, out) < 0) {
            errmsg_set(err, errlen, "refused: '%s' is not <backend>/<server>", text);
            return -EINVAL;
        }
        const struct ctl_backend *be = NULL;
        bool found_server = false;
        for (size_t i = 0; i < m->n_backends; i++) {
            const struct ctl_backend *b = &m->backends[i];
            if (strcmp(b->name, out->a))
                continue;
            be = b;
            for (size_t k = 0; k < b->def->n_servers && !found_server; k++)
                found_server = !strcmp(b->def->servers[k].name, out->b);
            found_server = found_server || is_slot(m, b, out->b);
        }
        if (!be) {
            errmsg_set(err, errlen,
                       "refused: unknown target %s: no backend '%s' in the HAProxy service "
                       "definitions",
                       out->id, out->a);
            return -ENOENT;
        }
        if (!found_server) {
            errmsg_set(err, errlen,
                       "refused: unknown target %s: backend %s has no static server '%s' and "
                       "no slot of that name (slot1..slotN)",
                       out->id, out->a, out->b);
            return -ENOENT;
        }
        return 0;
    }
    if (slash) {
        errmsg_set(err, errlen,
                   "refused: cannot read target '%s' (node/<cluster>/<node>, <node>, "
                   "addr/<ip>, <ip>, <backend>/<server> or server/<backend>/<server>)",
                   text);
        return -EINVAL;
    }
    /* a bare kube node name */
    const struct kvm_node *hit[8];
    size_t nhit = 0, total = 0;
    for (size_t i = 0; i < m->n_nodes; i++) {
        const struct kvm_node *nd = &m->nodes[i];
        bool in = n == 0;
        for (size_t k = 0; k < n && !in; k++)
            in = !strcmp(clusters[k], nd->cluster);
        if (!in || strcmp(nd->name, text))
            continue;
        if (nhit < 8)
            hit[nhit++] = nd;
        total++;
    }
    if (total == 0) {
        errmsg_set(err, errlen,
                   "refused: unknown target '%s': no kube node of that name in %s, and it is "
                   "not an IP address or <backend>/<server>",
                   text, n ? "the configured clusters (--cluster)" : "any cluster in KV");
        return -ENOENT;
    }
    if (total > 1) {
        char list[400] = "";
        for (size_t i = 0; i < nhit; i++) {
            size_t l = strlen(list);
            snprintf(list + l, sizeof(list) - l, "%snode/%s/%s", i ? ", " : "", hit[i]->cluster,
                     hit[i]->name);
        }
        errmsg_set(err, errlen, "refused: ambiguous target '%s' matches %zu nodes: %s%s", text,
                   total, list, total > nhit ? ", ..." : "");
        return -EEXIST;
    }
    out->kind = CTL_TARGET_NODE;
    snprintf(out->a, sizeof(out->a), "%s", hit[0]->cluster);
    snprintf(out->b, sizeof(out->b), "%s", hit[0]->name);
    snprintf(out->id, sizeof(out->id), "node/%s/%s", out->a, out->b);
    return 0;
}

/* ---- servers and shares --------------------------------------------------------- */

static const struct ctl_maint *entry_for(const struct ctl_model *m, const char *id,
                                         const struct ctl_override *ov)
{
    const struct ctl_maint *e;

    if (ov && !strcmp(ov->id, id))
        e = ov->entry;
    else
        e = ctl_model_maint(m, id);
    return e && !ctl_maint_expired(e, m->now) ? e : NULL;
}

static bool entry_out(const struct ctl_maint *e)
{
    return e && (e->state != CTL_STATE_READY || e->weight == 0);
}

struct find_ctx {
    const struct ctl_model *m;
    const struct ctl_override *ov;
};

static const void *find_entry(void *arg, enum kvm_maint_kind kind, const char *a, const char *b)
{
    const struct find_ctx *f = arg;
    char id[600];

    if (kind == KVM_MAINT_ADDR)
        snprintf(id, sizeof(id), "addr/%s", a);
    else
        snprintf(id, sizeof(id), "%s/%s/%s", kind == KVM_MAINT_NODE ? "node" : "server", a, b);
    return entry_for(f->m, id, f->ov);
}

/* Effective entry of one server: the precedence of kv_maint.h. */
static const struct ctl_maint *effective(const struct ctl_model *m, const struct ctl_backend *be,
                                         const struct kv_server *s, const struct ctl_override *ov)
{
    struct find_ctx f = {.m = m, .ov = ov};
    const char *names[1] = {s->static_name};
    return kv_maint_resolve(find_entry, &f, be->name, names, 1, s->addr, s->node_cluster, s->node);
}

static void for_each_server(const struct ctl_model *m, const struct ctl_backend *be, server_fn fn,
                            void *arg)
{
    struct kv_server *v;
    size_t n;

    /* a kube service not in KV contributes no server, as in the watcher */
    if (kv_backend_servers(be->def, kube_lookup, (void *)m, m->nodes, m->n_nodes, &v, &n) < 0) {
        log_error("droverctl: out of memory listing the servers of backend %s", be->name);
        return;
    }
    for (size_t i = 0; i < n; i++)
        fn(arg, be, &v[i]);
    free(v);
}

struct count_ctx {
    const struct ctl_model *m;
    const struct ctl_override *ov;
    size_t total, before, after;
};

static void count_one(void *arg, const struct ctl_backend *be, const struct kv_server *s)
{
    struct count_ctx *c = arg;
    c->total++;
    c->before += entry_out(effective(c->m, be, s, NULL));
    c->after += entry_out(effective(c->m, be, s, c->ov));
}

/* server/<be>/<slot> entries: the slot-to-node mapping is the watcher's,
 * so each such entry counts as one more server out of service. */
static size_t slot_outs(const struct ctl_model *m, const struct ctl_backend *be,
                        const struct ctl_override *ov)
{
    size_t n = 0;
    char id[600];

    for (size_t i = 0; i < m->n_maint; i++) {
        const struct ctl_maint *e = &m->maint[i];
        if (e->kind == CTL_TARGET_SERVER && !strcmp(e->a, be->name) && is_slot(m, be, e->b) &&
            !(ov && !strcmp(ov->id, e->id)))
            n += entry_out(entry_for(m, e->id, NULL));
    }
    if (ov && ov->entry && ov->entry->kind == CTL_TARGET_SERVER &&
        !strcmp(ov->entry->a, be->name) && is_slot(m, be, ov->entry->b)) {
        snprintf(id, sizeof(id), "%s", ov->id);
        n += entry_out(entry_for(m, id, ov));
    }
    return n;
}

void ctl_model_backend_share(const struct ctl_model *m, const struct ctl_backend *be,
                             const struct ctl_override *ov, struct ctl_share *out)
{
    struct count_ctx c = {.m = m, .ov = ov};

    for_each_server(m, be, count_one, &c);
    c.before += slot_outs(m, be, NULL);
    c.after += slot_outs(m, be, ov);
    out->backend = be->name;
    out->total = c.total;
    out->out_before = c.before < c.total ? c.before : c.total;
    out->out_after = c.after < c.total ? c.after : c.total;
}

int ctl_model_check_share(const struct ctl_model *m, const struct ctl_override *ov,
                          double max_share, struct ctl_share *worst)
{
    int found = 0;
    double worst_share = -1;

    for (size_t i = 0; i < m->n_backends; i++) {
        struct ctl_share s;
        ctl_model_backend_share(m, &m->backends[i], ov, &s);
        if (!s.total || s.out_after <= s.out_before)
            continue;
        double share = (double)s.out_after / (double)s.total;
        if (share > max_share && share > worst_share) {
            *worst = s;
            worst_share = share;
            found = 1;
        }
    }
    return found;
}

struct affect_ctx {
    const struct ctl_target *t;
    ctl_affect_fn fn;
    void *arg;
};

static void affect_one(void *arg, const struct ctl_backend *be, const struct kv_server *s)
{
    struct affect_ctx *a = arg;
    const struct ctl_target *t = a->t;
    char desc[400];
    bool hit = false;

    switch (t->kind) {
    case CTL_TARGET_NODE:
        hit = s->node && !strcmp(s->node_cluster, t->a) && !strcmp(s->node, t->b);
        break;
    case CTL_TARGET_ADDR:
        hit = !strcmp(s->addr, t->a);
        break;
    case CTL_TARGET_SERVER:
        hit = s->static_name && !strcmp(be->name, t->a) && !strcmp(s->static_name, t->b);
        break;
    }
    if (!hit)
        return;
    snprintf(desc, sizeof(desc), "%s %s", s->static_name ? s->static_name : s->node, s->id);
    a->fn(a->arg, be->name, desc);
}

void ctl_model_affected(const struct ctl_model *m, const struct ctl_target *t, ctl_affect_fn fn,
                        void *arg)
{
    struct affect_ctx a = {.t = t, .fn = fn, .arg = arg};

    for (size_t i = 0; i < m->n_backends; i++) {
        const struct ctl_backend *be = &m->backends[i];
        if (t->kind == CTL_TARGET_SERVER && !strcmp(be->name, t->a) && is_slot(m, be, t->b)) {
            fn(arg, be->name, t->b);
            continue;
        }
        for_each_server(m, be, affect_one, &a);
    }
}
