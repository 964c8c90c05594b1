/* SPDX-License-Identifier: Apache-2.0 */
/*
 * snapshot: services x eligible nodes x maintenance, and the two documents
 * rendered from it (template data, agent-checker state). See snapshot.h.
 */
#include "snapshot.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_writer.h"
#include "kv_key.h"
#include "kv_kube.h"
#include "kv_servers.h"
#include "log.h"
#include "timefmt.h"

#define DEFAULT_WEIGHT KV_HAPROXY_DEFAULT_WEIGHT

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const struct snapshot_entry *)a)->key, ((const struct snapshot_entry *)b)->key);
}

static int cmp_server(const void *a, const void *b)
{
    return strcmp(((const struct snapshot_server *)a)->id, ((const struct snapshot_server *)b)->id);
}

void snapshot_entries_free(struct snapshot_entry *e, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(e[i].key);
        free(e[i].value);
    }
    free(e);
}

void snapshot_free(struct snapshot *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n_services; i++) {
        struct snapshot_service *svc = &s->services[i];
        for (size_t j = 0; j < svc->n_backends; j++) {
            struct snapshot_backend *b = &svc->backends[j];
            for (size_t k = 0; k < b->n_servers; k++) {
                free(b->servers[k].id);
                free(b->servers[k].addr);
            }
            free(b->servers);
        }
        free(svc->backends);
    }
    free(s->services);
    kv_model_clear(&s->model);
    snapshot_entries_free(s->entries, s->n_entries);
    free(s->memo);
    free(s);
}

void snapshot_format_ms(int64_t ms, char *buf, size_t len)
{
    if (ms > 0 && ms % 1000 == 0)
        snprintf(buf, len, "%llds", (long long)(ms / 1000));
    else
        snprintf(buf, len, "%lldms", (long long)ms);
}

int snapshot_desired(const struct snapshot_backend *b, struct slot_server **out)
{
    struct slot_server *v = calloc(b->n_servers ? b->n_servers : 1, sizeof(*v));
    if (!v)
        return -ENOMEM;
    for (size_t i = 0; i < b->n_servers; i++) {
        v[i].key = b->servers[i].id;
        v[i].address = b->servers[i].addr;
        v[i].port = b->servers[i].port;
        v[i].weight = b->servers[i].weight;
        v[i].backup = b->def->prefer_local_zone && !b->servers[i].local;
    }
    *out = v;
    return 0;
}

int snapshot_assign(const struct snapshot_backend *b, const struct slot_assignment *prev,
                    const struct slot_server *desired, size_t nslots, struct slot_assignment *out,
                    size_t *need_slots)
{
    if (b->def->prefer_local_zone)
        return slots_assign_zoned(prev, desired, b->n_servers, nslots, out, need_slots);
    return slots_assign(prev, desired, b->n_servers, nslots, out, need_slots);
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++) {
        h ^= c[i];
        h *= 1099511628211ULL;
    }
    return h;
}

struct lookup_ctx {
    const struct kv_model *m;
    const struct kvm_service *svc;
    const struct kvm_backend *def;
};

static const struct kvm_kube_service *kube_lookup_quiet(void *arg, const struct kvm_kube_ref *r)
{
    return kv_model_kube_service(arg, r->cluster, r->namespace, r->service, r->port);
}

static const struct kvm_kube_service *kube_lookup(struct lookup_ctx *lk,
                                                  const struct kvm_kube_ref *r)
{
    const struct kvm_kube_service *ks = kube_lookup_quiet((void *)lk->m, r);
    if (!ks)
        log_debug("snapshot: backend %s of service %s: kube service %s/%s/%s port %s not in "
                  "KV (yet); it contributes no servers",
                  lk->def->name, lk->svc->name, r->cluster, r->namespace, r->service, r->port);
    return ks;
}

static int build_backend(struct snapshot *s, const char *zone, const struct kvm_service *svc,
                         const struct kvm_backend *def, struct snapshot_backend *b)
{
    const struct kv_model *m = &s->model;
    struct lookup_ctx lk = {.m = m, .svc = svc, .def = def};
    int rc;

    b->def = def;
    b->service = svc;
    /* a zone-aware backend has two pools of `slots`: local, then backups */
    b->slots = (size_t)def->slots * (def->prefer_local_zone ? 2 : 1);
    b->max_removal_share = def->max_removal_share;
    b->force_removal = kv_model_force(m, def->name) != NULL;
    b->check_type = def->check.type;
    b->check_port = def->check.port;
    b->check_path = def->check.path;

    const struct kvm_kube_service *first = NULL;
    for (size_t i = 0; i < def->n_kube; i++) {
        const struct kvm_kube_service *ks = kube_lookup(&lk, &def->kube[i]);
        if (!ks)
            continue;
        if (!first)
            first = ks;
        b->send_proxy = b->send_proxy || ks->proxy_protocol;
    }
    struct kv_server *v;
    size_t n;
    if ((rc = kv_backend_servers(def, kube_lookup_quiet, (void *)m, m->nodes, m->n_nodes, &v, &n)) <
        0)
        return rc;
    b->servers = calloc(n ? n : 1, sizeof(*b->servers));
    if (!b->servers) {
        free(v);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        struct snapshot_server *d = &b->servers[b->n_servers];
        d->id = strdup(v[i].id);
        d->addr = strdup(v[i].addr);
        if (!d->id || !d->addr) {
            free(d->id);
            free(d->addr);
            free(v);
            return -ENOMEM;
        }
        d->port = v[i].port;
        d->weight = v[i].weight;
        d->node = v[i].node;
        d->node_cluster = v[i].node_cluster;
        d->static_name = v[i].static_name;
        d->local = zone && v[i].zone && strcmp(zone, v[i].zone) == 0;
        b->n_servers++;
    }
    free(v);
    /* Without an explicit check, kube services bring theirs: kube-proxy's
     * healthCheckNodePort answers 200 only on nodes with local endpoints. */
    if (b->check_type == KVM_CHECK_NONE && first) {
        b->check_type = first->health_check_path ? KVM_CHECK_HTTP : KVM_CHECK_TCP;
        b->check_path = first->health_check_path;
        b->check_port = first->health_check_port != first->node_port ? first->health_check_port : 0;
    }
    return 0;
}

const struct snapshot_service *snapshot_service(const struct snapshot *s, const char *name)
{
    for (size_t i = 0; i < s->n_services; i++)
        if (strcmp(s->services[i].def->name, name) == 0)
            return &s->services[i];
    return NULL;
}

const struct snapshot_backend *snapshot_backend(const struct snapshot *s, const char *name)
{
    for (size_t i = 0; i < s->n_services; i++)
        for (size_t j = 0; j < s->services[i].n_backends; j++)
            if (strcmp(s->services[i].backends[j].def->name, name) == 0)
                return &s->services[i].backends[j];
    return NULL;
}

#define FNV_OFFSET 1469598103934665603ULL
/* A node entry under one of its layouts (docs/kv-schema.md): the cheap
 * test first, most entries are no node. */
static bool node_key(const char *root, const char *key, const char *dir, struct kv_key *k)
{
    if (!strstr(key, dir))
        return false;
    kv_key_parse(root, key, k);
    return k->kind == KV_KEY_KUBE_NODE;
}

/* key shaped "<head>/node-shards/<2 chars>/<node>" (no '/' in node): the
 * length of head and the node. A string test, not kv_key_parse: it runs
 * for every node entry of every rebuild. */
static bool sharded_node_key(const char *key, size_t *head, const char **node)
{
    static const char dir[] = "/node-shards/";
    const char *p = strstr(key, dir);
    if (!p)
        return false;
    const char *shard = p + sizeof(dir) - 1, *slash = strchr(shard, '/');
    if (!slash || slash - shard != 2 || !slash[1] || strchr(slash + 1, '/'))
        return false;
    *head = (size_t)(p - key);
    *node = slash + 1;
    return true;
}

/*
 * One entry's share of inputs_hash. A node in its shard hashes as its flat
 * key ("<head>/nodes/<node>"), so the same nodes make the same hash
 * whichever layout holds them (a watcher of a fleet half-way through the
 * upgrade to the sharded layout keeps its snapshot). The shares are
 * summed, so the order of the entries - which differs between the layouts
 * - does not matter either.
 */
static uint64_t entry_hash(const struct snapshot_entry *e)
{
    uint64_t h = FNV_OFFSET;
    size_t head;
    const char *node;
    if (sharded_node_key(e->key, &head, &node)) {
        h = fnv(h, e->key, head);
        h = fnv(h, "/nodes/", 7);
        h = fnv(h, node, strlen(node) + 1);
    } else {
        h = fnv(h, e->key, strlen(e->key) + 1);
    }
    h = fnv(h, e->value ? e->value : "", e->len);
    return fnv(h, "\n", 1);
}

/* Drop every flat node entry (kube/<c>/nodes/<node>) whose node also has
 * an entry in its shard: while the exporter moves to the sharded layout
 * both may exist, and the shard is the newer writer's. entries sorted;
 * returns the new count. */
static size_t drop_superseded_nodes(const char *root, struct snapshot_entry *entries, size_t n)
{
    const size_t superseded = (size_t)-1; /* marks an entry to drop: keys stay for bsearch */
    size_t out = 0, head;
    const char *node;
    bool any_sharded = false;
    /* one layout only (the usual case): nothing to drop, and no flat key
     * parsed and its shard key built and looked up at every rebuild (4 %
     * of the watcher's CPU at 100 changes/s with 100 flat node keys) */
    for (size_t i = 0; i < n && !any_sharded; i++)
        any_sharded = sharded_node_key(entries[i].key, &head, &node);
    if (!any_sharded)
        return n;
    for (size_t i = 0; i < n; i++) {
        struct kv_key k;
        char *sharded = NULL;
        if (node_key(root, entries[i].key, "/nodes/", &k) && !k.node_sharded &&
            (sharded = kv_key_kube_node(root, k.seg[0], k.seg[1]))) {
            struct snapshot_entry want = {.key = sharded};
            if (bsearch(&want, entries, n, sizeof(want), cmp_entry))
                entries[i].len = superseded;
            free(sharded);
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (entries[i].len == superseded) {
            free(entries[i].key);
            free(entries[i].value);
            continue;
        }
        entries[out++] = entries[i];
    }
    return out;
}

/* The entry of prev with key, or NULL. Both entry arrays are sorted by
 * key and looked up in that order, so a cursor (*at, from 0) walks prev
 * once per build instead of a search per entry. */
static const struct snapshot_entry *prev_entry(const struct snapshot *prev, size_t *at,
                                               const char *key)
{
    for (; prev && *at < prev->n_entries; ++*at) {
        int c = strcmp(prev->entries[*at].key, key);
        if (c == 0)
            return &prev->entries[*at];
        if (c > 0)
            break;
    }
    return NULL;
}

static bool same_value(const struct snapshot_entry *a, const struct snapshot_entry *b)
{
    return a->len == b->len &&
           memcmp(a->value ? a->value : "", b->value ? b->value : "", a->len) == 0;
}

/* The node record the last kv_model_add or kv_model_reuse_node made, if
 * it made one (n_nodes was `before`): what the next build reuses. */
static void memo_node(struct snapshot *s, size_t i, size_t before)
{
    if (s->model.n_nodes == before + 1) {
        s->memo[i].node_cluster = s->model.nodes[before].cluster;
        s->memo[i].node_name = s->model.nodes[before].name;
    }
}

/*
 * Decode entries[i] into s->model. was: prev's memo when the entry is
 * byte for byte the one prev decoded (its node record is copied, not
 * decoded again); old: prev's entry with the same key, whose value stands
 * in for a bad one. 0 or -ENOMEM.
 */
static int decode_entry(struct snapshot *s, const struct kv_model_opts *o,
                        const struct snapshot *prev, const struct snapshot_entry *old,
                        const struct snapshot_entry_memo *was, size_t i, int64_t now)
{
    struct snapshot_entry *e = &s->entries[i];
    size_t before = s->model.n_nodes;
    char err[512];
    int rc;

    if (was && was->node_name) {
        rc = kv_model_reuse_node(&s->model, &prev->model, was->node_cluster, was->node_name);
        memo_node(s, i, before);
        if (rc != 0)
            return rc < 0 ? rc : 0;
    }
    err[0] = '\0';
    rc = kv_model_add(&s->model, o, e->key, e->value, e->len, now, err, sizeof(err));
    memo_node(s, i, before);
    if (rc != -EINVAL)
        return rc == -ENOMEM ? rc : 0;
    char *copy = old ? malloc(old->len + 1) : NULL;
    uint64_t bad[KVM_PREFIX_COUNT];
    char err2[64];
    memcpy(bad, s->model.bad, sizeof(bad));
    if (copy) {
        memcpy(copy, old->value ? old->value : "", old->len);
        copy[old->len] = '\0';
    }
    if (copy && kv_model_add(&s->model, o, e->key, copy, old->len, now, err2, sizeof(err2)) == 1) {
        log_warn("watcher: %s; keeping the key's last good value", err);
        free(e->value);
        e->value = copy;
        e->len = old->len;
        memo_node(s, i, before);
        /* inputs_hash keeps the bad value's share (a new bad value is a new
         * snapshot); the memo describes the good value stored */
        s->memo[i].hash = entry_hash(e);
        return 0;
    }
    /* the old value was bad (or expired) too: count the key once */
    memcpy(s->model.bad, bad, sizeof(bad));
    free(copy);
    log_warn("watcher: %s; entry skipped, the rest of the snapshot is used", err);
    return 0;
}

int snapshot_build(const struct kv_model_opts *o, struct snapshot_entry *entries, size_t n,
                   int64_t now, const struct snapshot *prev, struct snapshot **out)
{
    struct snapshot *s = calloc(1, sizeof(*s));
    int rc = 0;

    if (!s) {
        snapshot_entries_free(entries, n);
        return -ENOMEM;
    }
    if (n > 1)
        qsort(entries, n, sizeof(*entries), cmp_entry);
    n = drop_superseded_nodes(o->root, entries, n);
    s->entries = entries;
    s->n_entries = n;
    s->built_unix = now;
    kv_model_init(&s->model);
    s->inputs_hash = FNV_OFFSET;
    if (!(s->memo = calloc(n ? n : 1, sizeof(*s->memo)))) {
        rc = -ENOMEM;
        goto fail;
    }
    for (size_t i = 0, at = 0; i < n; i++) {
        const struct snapshot_entry *old = prev_entry(prev, &at, entries[i].key);
        const struct snapshot_entry_memo *was = old && prev->memo && same_value(old, &entries[i])
                                                    ? &prev->memo[old - prev->entries]
                                                    : NULL;
        /* unchanged since the snapshot in force: the same hash share */
        s->memo[i].hash = was ? was->hash : entry_hash(&entries[i]);
        s->inputs_hash += s->memo[i].hash;
        if ((rc = decode_entry(s, o, prev, old, was, i, now)) < 0)
            goto fail;
    }
    if ((rc = kv_model_finish(&s->model)) < 0)
        goto fail;

    if (s->model.n_services && !(s->services = calloc(s->model.n_services, sizeof(*s->services)))) {
        rc = -ENOMEM;
        goto fail;
    }
    for (size_t i = 0; i < s->model.n_services; i++) {
        const struct kvm_service *def = &s->model.services[i];
        /* Backend names key the agent-checker state and maintenance
         * entries host-wide, so two services may not share one. */
        bool clash = false;
        for (size_t j = 0; j < def->n_backends && !clash; j++)
            clash = snapshot_backend(s, def->backends[j].name) != NULL;
        if (clash) {
            log_warn("watcher: key %s: a backend name is already used by another service; "
                     "service skipped",
                     def->key);
            s->skipped_services++;
            s->model.bad[KVM_PREFIX_HAPROXY]++;
            continue;
        }
        struct snapshot_service *svc = &s->services[s->n_services];
        svc->def = def;
        if (!(svc->backends = calloc(def->n_backends, sizeof(*svc->backends)))) {
            rc = -ENOMEM;
            goto fail;
        }
        s->n_services++;
        for (size_t j = 0; j < def->n_backends; j++) {
            svc->n_backends++;
            if ((rc = build_backend(s, o->zone, def, &def->backends[j], &svc->backends[j])) < 0)
                goto fail;
        }
    }
    *out = s;
    return 0;
fail:
    snapshot_free(s);
    return rc;
}

/* ---- maintenance ---- */

static const void *find_maint(void *arg, enum kvm_maint_kind kind, const char *a, const char *b)
{
    const struct kv_model *m = arg;
    /* the model is small next to the servers; a linear scan keeps this
     * simple and the arrays are sorted for a later bsearch if needed */
    for (size_t i = 0; i < m->n_maint; i++) {
        const struct kvm_maint *x = &m->maint[i];
        if (x->kind == kind && strcmp(x->a, a) == 0 && (!b || (x->b && strcmp(x->b, b) == 0)))
            return x;
    }
    return NULL;
}

const struct kvm_maint *snapshot_maint_for(const struct snapshot *s, const char *backend,
                                           const char *server_name,
                                           const struct snapshot_server *srv)
{
    const char *names[2] = {server_name, srv ? srv->static_name : NULL};
    if (!srv)
        return kv_maint_resolve(find_maint, (void *)&s->model, backend, names, 1, NULL, NULL, NULL);
    return kv_maint_resolve(find_maint, (void *)&s->model, backend, names, 2, srv->addr,
                            srv->node_cluster, srv->node);
}

/* ---- slot views ---- */

static const struct snapshot_server *server_by_id(const struct snapshot_backend *b, const char *id)
{
    struct snapshot_server key = {.id = (char *)id};
    if (!b->n_servers)
        return NULL;
    return bsearch(&key, b->servers, b->n_servers, sizeof(key), cmp_server);
}

/* Server in slot i (0-based) or NULL. Without an assignment: servers in
 * id order, then free slots. An assigned server the snapshot no longer has
 * (a removal held back by the guard) is described from the assignment
 * itself in *scratch: it still serves, so it must not look free. */
static const struct snapshot_server *slot_server(const struct snapshot_backend *b,
                                                 const struct slot_assignment *sl, size_t i,
                                                 struct snapshot_server *scratch)
{
    if (!sl)
        return i < b->n_servers ? &b->servers[i] : NULL;
    if (!sl->slots[i].used)
        return NULL;
    const struct snapshot_server *s = server_by_id(b, sl->slots[i].srv.key);
    if (s)
        return s;
    memset(scratch, 0, sizeof(*scratch));
    scratch->id = sl->slots[i].srv.key;
    scratch->addr = sl->slots[i].srv.address;
    scratch->port = sl->slots[i].srv.port;
    scratch->weight = sl->slots[i].srv.weight;
    return scratch;
}

static size_t slot_count(const struct snapshot_backend *b, const struct slot_assignment *sl)
{
    if (sl)
        return sl->nslots;
    return b->slots > b->n_servers ? b->slots : b->n_servers;
}

/* ---- template data ---- */

static int jset(json_t *obj, const char *k, json_t *v)
{
    return v ? json_object_set_new(obj, k, v) : -1;
}

static json_t *jdur(int64_t ms)
{
    char buf[32];
    snapshot_format_ms(ms, buf, sizeof(buf));
    return json_string(buf);
}

static bool frontend_selected(const struct kvm_service *d, const struct kvm_frontend *f)
{
    for (size_t i = 0; i < d->n_selectors; i++)
        if (strcmp(d->selectors[i].frontend, f->name) == 0)
            return true;
    return false;
}

char *snapshot_map_path(const char *map_dir, const struct kvm_service *d,
                        const struct kvm_frontend *f)
{
    char *p = NULL;
    if (!map_dir || !map_dir[0] || !frontend_selected(d, f))
        return NULL;
    size_t n = strlen(map_dir);
    bool slash = map_dir[n - 1] == '/';
    if (asprintf(&p, "%s%s%s.%s.map", map_dir, slash ? "" : "/", d->name, f->name) < 0)
        return NULL;
    return p;
}

static int cmp_route_host(const void *a, const void *b)
{
    return strcmp((*(const struct kvm_route *const *)a)->host,
                  (*(const struct kvm_route *const *)b)->host);
}

char *snapshot_map_text(const struct kvm_frontend *f)
{
    const struct kvm_route **v = calloc(f->n_routes + 1, sizeof(*v));
    size_t n = 0, len = 1;
    if (!v)
        return NULL;
    for (size_t i = 0; i < f->n_routes; i++) {
        if (f->routes[i].generated) {
            v[n++] = &f->routes[i];
            len += strlen(f->routes[i].host) + strlen(f->routes[i].backend) + 2;
        }
    }
    qsort(v, n, sizeof(*v), cmp_route_host);
    char *t = malloc(len), *p = t;
    for (size_t i = 0; t && i < n; i++)
        p += sprintf(p, "%s %s\n", v[i]->host, v[i]->backend);
    if (t)
        *p = '\0';
    free(v);
    return t;
}

char *snapshot_crt_list_dir(const char *dir, const char *service)
{
    char *p = NULL;
    if (!dir || !dir[0])
        return NULL;
    bool slash = dir[strlen(dir) - 1] == '/';
    if (asprintf(&p, "%s%s%s.crt-lists", dir, slash ? "" : "/", service) < 0)
        return NULL;
    return p;
}

char *snapshot_crt_list_path(const char *dir, const struct kvm_service *d,
                             const struct kvm_frontend *f)
{
    char *p = NULL, *sub = f->n_tls_certs ? snapshot_crt_list_dir(dir, d->name) : NULL;
    char *text = sub ? snapshot_crt_list_text(f) : NULL;
    char hash[17];
    if (text) {
        kv_hash64_hex(text, strlen(text), hash);
        if (asprintf(&p, "%s/%s.%s.crtlist", sub, f->name, hash) < 0)
            p = NULL;
    }
    free(text);
    free(sub);
    return p;
}

char *snapshot_crt_list_text(const struct kvm_frontend *f)
{
    size_t len = 1;
    for (size_t i = 0; i < f->n_tls_certs; i++) {
        const struct kvm_tls_cert *c = &f->tls_certs[i];
        len += strlen(c->file) + 1 + (c->alpn ? strlen(c->alpn) + 8 : 0);
        for (size_t k = 0; k < c->n_sni; k++)
            len += strlen(c->sni[k]) + 1;
    }
    char *t = malloc(len), *p = t;
    for (size_t i = 0; t && i < f->n_tls_certs; i++) {
        const struct kvm_tls_cert *c = &f->tls_certs[i];
        p += sprintf(p, "%s", c->file);
        if (c->alpn)
            p += sprintf(p, " [alpn %s]", c->alpn);
        for (size_t k = 0; k < c->n_sni; k++)
            p += sprintf(p, " %s", c->sni[k]);
        *p++ = '\n';
    }
    if (t)
        *p = '\0';
    return t;
}

/* The "tls" object of frontend f: its crt-list file (when the render has
 * a config dir) and its entries (the paths and options only: certificate
 * contents are swapped at runtime, haproxy_engine_certs.c, never part of
 * the structure; the entries are, so that a changed crt-list reloads).
 * NULL without memory. */
static json_t *tls_json(const struct kvm_service *d, const struct kvm_frontend *f,
                        const struct snapshot_render_opts *ro)
{
    json_t *tls = json_object(), *certs = json_array();
    int bad = !tls || !certs;
    for (size_t i = 0; i < f->n_tls_certs && !bad; i++) {
        const struct kvm_tls_cert *c = &f->tls_certs[i];
        json_t *cj = json_object(), *sni = c->n_sni ? json_array() : NULL;
        bad |= !cj || jset(cj, "file", json_string(c->file));
        for (size_t k = 0; sni && k < c->n_sni && !bad; k++)
            bad |= json_array_append_new(sni, json_string(c->sni[k]));
        if (sni)
            bad |= jset(cj, "sni", sni);
        if (c->alpn)
            bad |= jset(cj, "alpn", json_string(c->alpn));
        bad |= json_array_append_new(certs, cj);
    }
    bad |= jset(tls, "certs", certs);
    if (f->alpn)
        bad |= jset(tls, "alpn", json_string(f->alpn));
    char *list = snapshot_crt_list_path(ro->map_dir, d, f);
    if (list)
        bad |= jset(tls, "crt_list", json_string(list));
    free(list);
    if (bad) {
        json_decref(tls);
        return NULL;
    }
    return tls;
}

/* Append {"addr", "port"} objects to arr; nonzero on allocation failure. */
static int binds_append(json_t *arr, const struct kvm_bind *binds, size_t n)
{
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *b = json_object();
        bad |= !b || jset(b, "addr", json_string(binds[i].addr)) ||
               jset(b, "port", json_integer(binds[i].port)) || json_array_append_new(arr, b);
    }
    return bad;
}

static json_t *frontend_json(const struct kvm_service *d, const struct kvm_frontend *f,
                             const struct snapshot_render_opts *ro)
{
    json_t *fj = json_object(), *binds = json_array(), *routes = json_array();
    int bad = !fj || !binds || !routes;
    bad |= jset(fj, "name", json_string(f->name));
    if (f->maxconn)
        bad |= jset(fj, "maxconn", json_integer(f->maxconn));
    bad |= binds_append(binds, f->binds, f->n_binds);
    /* routes grouped by backend, in order of first appearance */
    for (size_t i = 0; i < f->n_routes; i++) {
        json_t *r = NULL, *hosts;
        size_t k;
        if (f->routes[i].generated)
            continue; /* in the map (contents never part of the structure) */
        json_array_foreach(routes, k, hosts)
        {
            if (!strcmp(json_string_value(json_object_get(hosts, "backend")), f->routes[i].backend))
                r = hosts;
        }
        if (!r) {
            r = json_object();
            bad |= !r || jset(r, "backend", json_string(f->routes[i].backend)) ||
                   jset(r, "hosts", json_array()) || json_array_append_new(routes, r);
            if (bad)
                break;
        }
        bad |= json_array_append_new(json_object_get(r, "hosts"), json_string(f->routes[i].host));
    }
    bad |= jset(fj, "binds", binds);
    bad |= jset(fj, "routes", routes);
    if (f->default_backend)
        bad |= jset(fj, "default_backend", json_string(f->default_backend));
    char *map = snapshot_map_path(ro->map_dir, d, f);
    if (map)
        bad |= jset(fj, "map", json_string(map));
    free(map);
    if (f->n_tls_certs && !bad)
        bad |= jset(fj, "tls", tls_json(d, f, ro));
    if (bad) {
        json_decref(fj);
        return NULL;
    }
    return fj;
}

/* {"ca_file", "verify_name"?} of verified TLS to the servers; NULL
 * without memory. */
static json_t *server_verify_json(const struct kvm_server_tls *t)
{
    json_t *v = json_object();
    if (v && (jset(v, "ca_file", json_string(t->ca_file)) ||
              (t->verify_name && jset(v, "verify_name", json_string(t->verify_name))))) {
        json_decref(v);
        return NULL;
    }
    return v;
}

/* Without an assignment (an offline render) a zone-aware backend still
 * needs its servers in the right pool: the placement a first plan makes. */
static int offline_zoned(const struct snapshot_backend *b, struct slot_assignment *out)
{
    struct slot_server *desired = NULL;
    size_t need = 0;
    int rc = snapshot_desired(b, &desired);
    if (rc == 0)
        rc = snapshot_assign(b, NULL, desired, b->slots, out, &need);
    if (rc == 0 && need)
        rc = snapshot_assign(b, NULL, desired, need, out, &need);
    free(desired);
    return rc;
}

static json_t *backend_json_placed(const struct snapshot_backend *b,
                                   const struct slot_assignment *sl,
                                   const struct snapshot_render_opts *ro, bool structure_only,
                                   int *rc);

static json_t *backend_json(const struct snapshot_backend *b, const struct slot_assignment *sl,
                            const struct snapshot_render_opts *ro, bool structure_only, int *rc)
{
    if (sl || !b->def->prefer_local_zone)
        return backend_json_placed(b, sl, ro, structure_only, rc);
    struct slot_assignment tmp;
    slot_assignment_init(&tmp);
    *rc = offline_zoned(b, &tmp);
    json_t *bj = *rc < 0 ? NULL : backend_json_placed(b, &tmp, ro, structure_only, rc);
    slot_assignment_free(&tmp);
    return bj;
}

static json_t *backend_json_placed(const struct snapshot_backend *b,
                                   const struct slot_assignment *sl,
                                   const struct snapshot_render_opts *ro, bool structure_only,
                                   int *rc)
{
    const struct kvm_backend *d = b->def;
    json_t *bj = json_object(), *servers = json_array();
    int bad = !bj || !servers;
    char name[160];

    *rc = -ENOMEM;
    bad |= jset(bj, "name", json_string(d->name)) || jset(bj, "balance", json_string(d->balance));
    if (b->send_proxy)
        bad |= jset(bj, "send_proxy", json_true());
    /* what the servers speak beyond plain TCP/HTTP/1 (backend_protocol) */
    bool ssl = d->protocol && (!strcmp(d->protocol, "https") || !strcmp(d->protocol, "h2"));
    if (ssl)
        bad |= jset(bj, "server_alpn", json_string(!strcmp(d->protocol, "h2") ? "h2" : "http/1.1"));
    if (ssl || d->server_tls.ca_file)
        bad |= jset(bj, "server_ssl", json_true());
    if (d->server_tls.ca_file)
        bad |= jset(bj, "server_verify", server_verify_json(&d->server_tls));
    if (d->protocol && !strcmp(d->protocol, "h2c"))
        bad |= jset(bj, "server_proto", json_string("h2"));
    if (b->check_type != KVM_CHECK_NONE && b->check_type != KVM_CHECK_OFF) {
        json_t *c = json_object();
        bad |= !c || jset(c, "inter", jdur(d->check.inter_ms ? d->check.inter_ms : 2000)) ||
               jset(c, "fall", json_integer(d->check.fall ? d->check.fall : 3)) ||
               jset(c, "rise", json_integer(d->check.rise ? d->check.rise : 2));
        if (!bad && b->check_port)
            bad |= jset(c, "port", json_integer(b->check_port));
        if (!bad && b->check_type == KVM_CHECK_HTTP) {
            json_t *h = json_object();
            bad |= !h || jset(h, "path", json_string(b->check_path ? b->check_path : "/")) ||
                   jset(c, "http", h);
        }
        if (!bad && b->check_type == KVM_CHECK_MYSQL) {
            json_t *my = json_object();
            bad |= !my || jset(my, "user", json_string(d->check.user)) || jset(c, "mysql", my);
        }
        bad |= jset(bj, "check", c);
    }
    if (d->agent_port || d->agent_inter_ms) {
        json_t *a = json_object();
        bad |= !a || jset(a, "addr", json_string(ro->agent_addr)) ||
               jset(a, "port", json_integer(d->agent_port ? d->agent_port : ro->agent_port)) ||
               jset(a, "inter", jdur(d->agent_inter_ms ? d->agent_inter_ms : ro->agent_inter_ms)) ||
               jset(bj, "agent", a);
    }
    size_t n = slot_count(b, sl);
    size_t placed = 0, free_slots = 0;
    /* zone-aware: the second half of the slots are backups, all used at
     * once when no local server is up (docs/watcher.md) */
    size_t backup_from = d->prefer_local_zone ? slots_backup_from(n) : n;
    if (d->prefer_local_zone)
        bad |= jset(bj, "allbackups", json_true());
    for (size_t i = 0; i < n && !bad; i++) {
        struct snapshot_server scratch;
        const struct snapshot_server *srv = slot_server(b, sl, i, &scratch);
        json_t *s = json_object();
        slots_name(i, name, sizeof(name));
        /* "id": the slot's number, the id HAProxy would give it by
         * position; written out, it spares haproxy -c and every reload a
         * search for free ids that grows with the square of the servers
         * (10,000 servers: 0.69 s of CPU, 0.08 s with ids) */
        bad |= !s || jset(s, "name", json_string(name)) ||
               jset(s, "id", json_integer((json_int_t)i + 1)) ||
               jset(s, "backend", json_string(d->name));
        if (i >= backup_from)
            bad |= jset(s, "backup", json_true());
        if (srv && srv != &scratch)
            placed++;
        free_slots += !srv;
        if (!srv || structure_only) {
            /* A free slot is written as a disabled server at 0.0.0.0:1, not
             * in the template's {"free": true} form (0.0.0.0:0): port 0
             * means "map the client's port" in HAProxy, and after a reload
             * the server-state file restores the old port number onto such
             * a server without clearing the mapping, so a later
             * `set server addr A port P` with the same P answers "no need
             * to change the port" and traffic goes to the wrong port (seen
             * with 2.6.12: 503 SC). */
            bad |= jset(s, "addr", json_string("0.0.0.0")) || jset(s, "port", json_integer(1)) ||
                   jset(s, "weight", json_integer(structure_only ? 1 : DEFAULT_WEIGHT));
        } else {
            bad |= jset(s, "addr", json_string(srv->addr)) ||
                   jset(s, "port", json_integer(srv->port)) ||
                   jset(s, "weight", json_integer(srv->weight)) || jset(s, "enabled", json_true());
        }
        bad |= json_array_append_new(servers, s);
    }
    bad |= jset(bj, "servers", servers);
    /* servers of the snapshot left out while no slot is free: the caller
     * must grow the slots (with a removal on hold, new servers may wait for
     * the free slots the placement still leaves) */
    if (!bad && placed < b->n_servers && free_slots == 0) {
        json_decref(bj);
        *rc = -ENOSPC;
        return NULL;
    }
    if (bad) {
        json_decref(bj);
        return NULL;
    }
    *rc = 0;
    return bj;
}

int snapshot_service_json(const struct snapshot *s, const struct snapshot_service *svc,
                          const struct snapshot_render_opts *ro, snapshot_slots_fn slots,
                          void *slots_arg, bool structure_only, json_t **out)
{
    const struct kvm_service *d = svc->def;
    json_t *root = json_object(), *v, *fes = json_array(), *bes = json_array();
    int bad = !root || !fes || !bes;
    int rc = -ENOMEM;
    (void)s;

    v = json_object();
    /* "template" is not read by templates; it makes a template switch a
     * structural change */
    bad |= !v || jset(v, "name", json_string(d->name)) ||
           jset(v, "cluster", json_string(ro->haproxy_cluster)) ||
           jset(v, "template", json_string(d->template_name)) || jset(root, "service", v);
    v = json_object();
    bad |= !v || jset(v, "maxconn", json_integer(ro->maxconn)) ||
           jset(v, "stats_socket", json_string(ro->stats_socket)) ||
           jset(v, "server_state_file", json_string(ro->server_state_file)) ||
           jset(root, "global", v);
    if (d->n_metrics_binds) {
        /* HAProxy's Prometheus exporter on its own frontend (templates.md) */
        json_t *mb = json_array();
        v = json_object();
        bad |= !v || !mb || binds_append(mb, d->metrics_binds, d->n_metrics_binds) ||
               jset(v, "name", json_string(KV_HAPROXY_METRICS_FRONTEND)) || jset(v, "binds", mb) ||
               jset(root, "metrics", v);
    }
    v = json_object();
    bad |= !v ||
           jset(v, "connect",
                jdur(d->timeout_connect_ms ? d->timeout_connect_ms : ro->timeout_connect_ms)) ||
           jset(v, "client",
                jdur(d->timeout_client_ms ? d->timeout_client_ms : ro->timeout_client_ms)) ||
           jset(v, "server",
                jdur(d->timeout_server_ms ? d->timeout_server_ms : ro->timeout_server_ms)) ||
           jset(root, "timeouts", v);
    v = json_object();
    bad |= !v || jset(v, "addr", json_string(ro->agent_addr)) ||
           jset(v, "port", json_integer(ro->agent_port)) ||
           jset(v, "inter", jdur(ro->agent_inter_ms)) || jset(root, "agent", v);
    for (size_t i = 0; i < d->n_frontends && !bad; i++)
        bad |= json_array_append_new(fes, frontend_json(d, &d->frontends[i], ro));
    for (size_t i = 0; i < svc->n_backends && !bad; i++) {
        const struct snapshot_backend *b = &svc->backends[i];
        const struct slot_assignment *sl = slots ? slots(slots_arg, b->def->name) : NULL;
        json_t *bj = backend_json(b, sl, ro, structure_only, &rc);
        if (!bj) {
            bad = 1;
            break;
        }
        bad |= json_array_append_new(bes, bj);
    }
    if (bad) {
        json_decref(root);
        json_decref(fes);
        json_decref(bes);
        return rc == -ENOSPC ? rc : -ENOMEM;
    }
    json_object_set_new(root, "frontends", fes);
    json_object_set_new(root, "backends", bes);
    *out = root;
    return 0;
}

/* ---- agent-checker state ---- */

/* HAProxy keeps the last weight an agent sent and a reply without `N%`
 * leaves it alone, so an entry without a weight of its own says 100 %
 * (of the configured weight): otherwise a server stays at 50 % after its
 * `weight 50%` maintenance entry is removed (docs/agent-checker.md,
 * "Weights"). */
#define AGENT_FULL_WEIGHT 100

static json_t *agent_entry(const struct kvm_maint *x, bool free_slot)
{
    json_t *e = json_object();
    char t[TIMEFMT_BUF_SIZE];
    int bad = !e;
    if (free_slot) {
        bad |= jset(e, "admin", json_string("maint")) || jset(e, "health", json_string("up")) ||
               jset(e, "reason", json_string("free slot"));
    } else if (x) {
        bad |= jset(e, "admin", json_string(kvm_admin_name(x->admin))) ||
               jset(e, "health", json_string("up"));
        bad |= jset(e, "weight", json_integer(x->weight >= 0 ? x->weight : AGENT_FULL_WEIGHT));
        if (x->reason)
            bad |= jset(e, "reason", json_string(x->reason));
        if (x->author)
            bad |= jset(e, "author", json_string(x->author));
        if (x->expires) {
            timefmt_format_rfc3339(x->expires, t, sizeof(t));
            bad |= jset(e, "expires", json_string(t));
        }
    } else {
        bad |= jset(e, "admin", json_string("ready")) || jset(e, "health", json_string("up")) ||
               jset(e, "weight", json_integer(AGENT_FULL_WEIGHT));
    }
    if (bad) {
        json_decref(e);
        return NULL;
    }
    return e;
}

int snapshot_slot_admin(const struct snapshot *s, snapshot_slots_fn slots, void *slots_arg,
                        const char *backend, const char *server)
{
    const struct snapshot_backend *b = s ? snapshot_backend(s, backend) : NULL;
    size_t k;
    if (!b || slots_parse_name(server, &k) < 0)
        return -ENOENT;
    const struct slot_assignment *sl = slots ? slots(slots_arg, backend) : NULL;
    if (k >= slot_count(b, sl))
        return -ENOENT;
    struct snapshot_server scratch;
    const struct snapshot_server *srv = slot_server(b, sl, k, &scratch);
    if (!srv)
        return KVM_ADMIN_MAINT; /* a free slot, as in the agent state */
    const struct kvm_maint *x = snapshot_maint_for(s, backend, server, srv);
    return x ? (int)x->admin : KVM_ADMIN_READY;
}

/* One slot's entry in the agent state file. */
struct agent_line {
    char *key;         /* "<backend>/slotN" */
    const char *entry; /* its canonical entry text (shared, or own) */
    char *own;         /* a maintenance entry's own text */
    size_t order;      /* insertion order: the last of equal keys wins */
};

static int agent_line_cmp(const void *pa, const void *pb)
{
    const struct agent_line *a = pa, *b = pb;
    int c = strcmp(a->key, b->key);
    return c ? c : (a->order > b->order) - (a->order < b->order);
}

/* The canonical text of agent_entry(x, free_slot); NULL on out of memory. */
static char *agent_entry_text(const struct kvm_maint *x, bool free_slot)
{
    json_t *e = agent_entry(x, free_slot);
    char *text = e ? json_dumps(e, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(e);
    return text;
}

/* Fill lines[] (n slots in all, counted by the caller) with every slot of
 * every backend; the shared texts for occupied and free slots. 0 or -ENOMEM. */
static int agent_lines(const struct snapshot *s, snapshot_slots_fn slots, void *slots_arg,
                       const char *ready, const char *free_slot, struct agent_line *lines,
                       size_t *n)
{
    char name[160];
    *n = 0;
    for (size_t i = 0; i < s->n_services; i++) {
        const struct snapshot_service *svc = &s->services[i];
        for (size_t j = 0; j < svc->n_backends; j++) {
            const struct snapshot_backend *b = &svc->backends[j];
            const struct slot_assignment *sl = slots ? slots(slots_arg, b->def->name) : NULL;
            for (size_t k = 0; k < slot_count(b, sl); k++) {
                struct snapshot_server scratch;
                const struct snapshot_server *srv = slot_server(b, sl, k, &scratch);
                struct agent_line *l = &lines[*n];
                slots_name(k, name, sizeof(name));
                const struct kvm_maint *x =
                    srv ? snapshot_maint_for(s, b->def->name, name, srv) : NULL;
                size_t len = strlen(b->def->name) + strlen(name) + 2;
                l->order = (*n)++;
                if (!(l->key = malloc(len)))
                    return -ENOMEM;
                snprintf(l->key, len, "%s/%s", b->def->name, name);
                l->entry = !srv ? free_slot : x ? (l->own = agent_entry_text(x, false)) : ready;
                if (!l->entry)
                    return -ENOMEM;
            }
        }
    }
    return 0;
}

static size_t agent_slot_total(const struct snapshot *s, snapshot_slots_fn slots, void *slots_arg)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n_services; i++)
        for (size_t j = 0; j < s->services[i].n_backends; j++) {
            const struct snapshot_backend *b = &s->services[i].backends[j];
            n += slot_count(b, slots ? slots(slots_arg, b->def->name) : NULL);
        }
    return n;
}

/*
 * Written with json_writer, the bytes of json_dumps(JSON_COMPACT |
 * JSON_SORT_KEYS) of the whole object, but one jansson object and dump
 * per distinct entry (occupied, free slot, each maintenance entry) rather
 * than one per slot plus a sort of the object: this runs at every plan
 * (100 a second at a steady stream of changes) and the per-slot objects
 * were 14 % of the watcher's CPU in `scripts/bench.sh watcher paced`.
 */
int snapshot_agent_state(const struct snapshot *s, snapshot_slots_fn slots, void *slots_arg,
                         int64_t now, char **out)
{
    char t[TIMEFMT_BUF_SIZE];
    size_t total = agent_slot_total(s, slots, slots_arg), n = 0;
    struct agent_line *lines = calloc(total ? total : 1, sizeof(*lines));
    char *ready = agent_entry_text(NULL, false), *free_slot = agent_entry_text(NULL, true);
    struct json_writer w;
    int rc = -ENOMEM;

    *out = NULL;
    json_writer_init(&w);
    if (!lines || !ready || !free_slot ||
        agent_lines(s, slots, slots_arg, ready, free_slot, lines, &n) < 0)
        goto out;
    qsort(lines, n, sizeof(*lines), agent_line_cmp);
    timefmt_format_rfc3339(now, t, sizeof(t));
    json_writer_raw(&w, "{\"default\":", 11);
    json_writer_raw(&w, ready, strlen(ready));
    json_writer_raw(&w, ",\"generated\":", 13);
    json_writer_string(&w, t);
    json_writer_raw(&w, ",\"servers\":{", 12);
    for (size_t i = 0, written = 0; i < n; i++) {
        if (i + 1 < n && strcmp(lines[i].key, lines[i + 1].key) == 0)
            continue; /* a later slot of the same name replaces it */
        if (written++)
            json_writer_raw(&w, ",", 1);
        json_writer_string(&w, lines[i].key);
        json_writer_raw(&w, ":", 1);
        json_writer_raw(&w, lines[i].entry, strlen(lines[i].entry));
    }
    json_writer_raw(&w, "},\"version\":1}", 14);
    *out = json_writer_take(&w);
    rc = *out ? 0 : -ENOMEM;
out:
    for (size_t i = 0; lines && i < total; i++) {
        free(lines[i].key);
        free(lines[i].own);
    }
    free(lines);
    free(ready);
    free(free_slot);
    if (rc < 0)
        free(json_writer_take(&w));
    return rc;
}
