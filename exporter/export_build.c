/* SPDX-License-Identifier: Apache-2.0 */
/*
 * export_build: stores -> desired KV entries. See export_build.h.
 *
 * The state is two arrays sorted by store key, rebuilt on every build
 * from the objects present (so deleted objects' entries go away):
 * Services with their finished KV entries, Nodes with their parsed record
 * and NotReady grace state. An entry is reused when the object's
 * resourceVersion is the one it was computed from; only then is the
 * stored object not parsed at all.
 */
#include "export_build.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array_grow.h"
#include "log.h"

enum svc_kind {
    SVC_EXPORTED,
    SVC_NOT_EXPORTED,
    SVC_SKIPPED,
};

struct svc_entry {
    char *key;  /* first member: key_cmp */
    bool moved; /* reused by the next build, which now owns key and all */
    char *rv;
    enum svc_kind kind;
    size_t ports;
    struct kube_reason why; /* SVC_SKIPPED */
    char **kv;              /* key, value, key, value, ... (SVC_EXPORTED) */
    size_t n_kv;
    char **keep; /* SVC_SKIPPED: keys of the last good entries */
    size_t n_keep;
};

struct node_entry {
    char *key; /* first member: key_cmp */
    bool moved;
    char *rv;
    bool valid; /* rec holds a record; otherwise why says why not */
    struct node_record rec;
    struct kube_reason why;
    struct node_grace_state grace;
};

struct export_state {
    struct svc_entry *svc;
    size_t n_svc;
    struct node_entry *node;
    size_t n_node;
};

struct export_state *export_state_new(void)
{
    return calloc(1, sizeof(struct export_state));
}

static void svc_entry_clear(struct svc_entry *e)
{
    if (e->moved)
        return;
    free(e->key);
    free(e->rv);
    for (size_t i = 0; i < e->n_kv; i++)
        free(e->kv[i]);
    free(e->kv);
    for (size_t i = 0; i < e->n_keep; i++)
        free(e->keep[i]);
    free(e->keep);
    memset(e, 0, sizeof(*e));
}

static void node_entry_clear(struct node_entry *e)
{
    if (e->moved)
        return;
    free(e->key);
    free(e->rv);
    node_record_clear(&e->rec);
    memset(e, 0, sizeof(*e));
}

static void svc_entries_free(struct svc_entry *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        svc_entry_clear(&v[i]);
    free(v);
}

static void node_entries_free(struct node_entry *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        node_entry_clear(&v[i]);
    free(v);
}

void export_state_free(struct export_state *st)
{
    if (!st)
        return;
    svc_entries_free(st->svc, st->n_svc);
    node_entries_free(st->node, st->n_node);
    free(st);
}

size_t export_state_nodes(const struct export_state *st)
{
    return st->n_node;
}

size_t export_state_services(const struct export_state *st)
{
    return st->n_svc;
}

/* Both entry types start with `char *key`. */
static int key_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void *find_entry(void *v, size_t n, size_t size, const char *key)
{
    const char *probe = key;
    return n ? bsearch(&probe, v, n, size, key_cmp) : NULL;
}

static bool same_rv(const char *cached, const char *rv)
{
    return cached && rv && rv[0] && strcmp(cached, rv) == 0;
}

static void report_skip(export_skip_cb cb, void *arg, const char *kind, const char *key,
                        const struct kube_reason *why)
{
    if (cb)
        cb(kind, key, why, arg);
    else
        log_debug("export: %s %s skipped: %s: %s", kind, key, why->reason, why->message);
}

/* ---- services ----------------------------------------------------------- */

struct svc_ctx {
    const struct export_build_params *p;
    const struct kube_store *store;
    struct export_state *old;
    struct svc_entry *v;
    size_t n, cap;
    struct kv_map *desired;
    struct export_build_result *res;
    export_skip_cb on_skip;
    void *arg;
};

static int keep_add(struct svc_entry *e, const char *key)
{
    for (size_t i = 0; i < e->n_keep; i++)
        if (strcmp(e->keep[i], key) == 0)
            return 0;
    char **v = realloc(e->keep, (e->n_keep + 1) * sizeof(*v));
    if (!v)
        return -ENOMEM;
    e->keep = v;
    if (!(v[e->n_keep] = strdup(key)))
        return -ENOMEM;
    e->n_keep++;
    return 0;
}

/* The keys an invalid Service keeps: those of its last good version (from
 * the previous state entry) and the drover keys its ports name, which
 * also protects it across an exporter restart. */
static int collect_keep(const struct svc_ctx *c, struct svc_entry *e, const struct svc_entry *old,
                        const json_t *svc)
{
    int rc = 0;
    if (old && old->kind == SVC_EXPORTED)
        for (size_t i = 0; rc == 0 && i + 1 < old->n_kv; i += 2)
            rc = keep_add(e, old->kv[i]);
    if (old && old->kind == SVC_SKIPPED)
        for (size_t i = 0; rc == 0 && i < old->n_keep; i++)
            rc = keep_add(e, old->keep[i]);
    json_t *meta = json_object_get(svc, "metadata");
    const char *ns = json_string_value(json_object_get(meta, "namespace"));
    const char *name = json_string_value(json_object_get(meta, "name"));
    json_t *ports = json_object_get(json_object_get(svc, "spec"), "ports");
    size_t i;
    json_t *port;
    json_array_foreach(ports, i, port)
    {
        if (rc || !ns || !name)
            break;
        char num[16];
        const char *pname = json_string_value(json_object_get(port, "name"));
        json_t *pn = json_object_get(port, "port");
        if (!pname || !pname[0]) {
            if (!json_is_integer(pn))
                continue;
            snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(pn));
            pname = num;
        }
        struct export_record r = {
            .namespace = (char *)ns, .service = (char *)name, .port_name = (char *)pname};
        char *key = kv_layout_service_key(c->p->layout, &r);
        if (key)
            rc = keep_add(e, key);
        free(key);
    }
    return rc;
}

/* Fill e (key set) from the Service; old is its previous entry or NULL.
 * -ENOMEM only. */
static int compute_service(const struct svc_ctx *c, struct svc_entry *e,
                           const struct svc_entry *old, const json_t *svc)
{
    struct export_record *recs = NULL;
    size_t n = 0;
    int rc = kube_service_to_records(svc, c->p->service_opts, &recs, &n, &e->why);
    if (rc == -ENOMEM)
        return rc;
    if (rc < 0) {
        e->kind = SVC_SKIPPED;
        return collect_keep(c, e, old, svc);
    }
    if (n == 0) {
        e->kind = SVC_NOT_EXPORTED;
        return 0;
    }
    /* all ports or none: a port that cannot form a key refuses the Service */
    struct kv_map tmp;
    kv_map_init(&tmp);
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = kv_layout_add_service(c->p->layout, &tmp, &recs[i]);
    export_records_free(recs, n);
    if (rc == -EINVAL) {
        e->kind = SVC_SKIPPED;
        snprintf(e->why.reason, sizeof(e->why.reason), "InvalidObject");
        snprintf(e->why.message, sizeof(e->why.message),
                 "Service %s: a namespace, name or port name cannot form a KV key", e->key);
        rc = collect_keep(c, e, old, svc);
    } else if (rc == 0) {
        e->kind = SVC_EXPORTED;
        e->ports = n;
        e->kv = calloc(2 * tmp.n + 1, sizeof(char *));
        if (!e->kv) {
            rc = -ENOMEM;
        } else {
            /* steal the strings */
            for (size_t i = 0; i < tmp.n; i++) {
                e->kv[e->n_kv++] = tmp.v[i].key;
                e->kv[e->n_kv++] = tmp.v[i].value;
                tmp.v[i].key = tmp.v[i].value = NULL;
            }
        }
    }
    kv_map_clear(&tmp);
    return rc;
}

static int add_service(const struct kube_store_item *item, void *arg)
{
    struct svc_ctx *c = arg;
    int rc = array_grow((void **)&c->v, &c->cap, c->n, sizeof(*c->v));
    if (rc)
        return rc;
    struct svc_entry *e = &c->v[c->n];
    struct svc_entry *old = find_entry(c->old->svc, c->old->n_svc, sizeof(*old), item->key);
    bool fresh = !(old && !old->moved && same_rv(old->rv, item->resource_version));
    if (!fresh) {
        /* an unchanged resourceVersion means unchanged content: reuse.
         * The old slot keeps its key pointer for bsearch, flagged moved. */
        *e = *old;
        old->moved = true;
        c->n++;
    } else {
        memset(e, 0, sizeof(*e));
        e->key = strdup(item->key);
        c->n++; /* counted now so the cleanup path frees it */
        if (!e->key)
            return -ENOMEM;
        json_t *svc = kube_store_item_load(c->store, item);
        rc = svc ? compute_service(c, e, old && !old->moved ? old : NULL, svc) : -ENOMEM;
        json_decref(svc);
        if (rc)
            return rc; /* rv stays NULL: the next build recomputes it */
        e->rv = strdup(item->resource_version);
        if (!e->rv)
            return -ENOMEM;
    }
    switch (e->kind) {
    case SVC_EXPORTED:
        for (size_t i = 0; i + 1 < e->n_kv; i += 2) {
            rc = kv_map_put(c->desired, e->kv[i], e->kv[i + 1], 0);
            if (rc)
                return rc;
        }
        c->res->services++;
        c->res->service_ports += e->ports;
        break;
    case SVC_NOT_EXPORTED:
        c->res->not_exported++;
        break;
    case SVC_SKIPPED:
        for (size_t i = 0; i < e->n_keep; i++) {
            rc = kv_map_put_keep(c->desired, e->keep[i]);
            if (rc)
                return rc;
        }
        c->res->skipped_services++;
        c->res->kept_services += e->n_keep > 0;
        if (fresh) /* once per Service version, not on every build */
            report_skip(c->on_skip, c->arg, "Service", e->key, &e->why);
        break;
    }
    return 0;
}

/* ---- nodes -------------------------------------------------------------- */

struct node_ctx {
    const struct export_build_params *p;
    const struct kube_store *store;
    struct export_state *old;
    struct node_entry *v;
    size_t n, cap;
    struct export_build_result *res;
    export_skip_cb on_skip;
    void *arg;
};

static int add_node(const struct kube_store_item *item, void *arg)
{
    struct node_ctx *c = arg;
    int rc = array_grow((void **)&c->v, &c->cap, c->n, sizeof(*c->v));
    if (rc)
        return rc;
    struct node_entry *e = &c->v[c->n];
    struct node_entry *old = find_entry(c->old->node, c->old->n_node, sizeof(*old), item->key);
    memset(e, 0, sizeof(*e));
    if (old && !old->moved && same_rv(old->rv, item->resource_version)) {
        *e = *old;
        old->moved = true;
        c->n++;
    } else {
        e->key = strdup(item->key);
        if (old && !old->moved) /* the grace state outlives a node version */
            e->grace = old->grace;
        c->n++;
        if (!e->key)
            return -ENOMEM;
        json_t *node = kube_store_item_load(c->store, item);
        rc = node ? kube_node_to_record(node, c->p->node_opts, &e->rec, &e->why) : -ENOMEM;
        json_decref(node);
        if (rc == -ENOMEM)
            return rc;
        e->valid = rc == 0;
        e->rv = strdup(item->resource_version);
        if (!e->rv)
            return -ENOMEM;
    }
    if (!e->valid) {
        c->res->skipped_nodes++;
        report_skip(c->on_skip, c->arg, "Node", e->key, &e->why);
        return 0;
    }
    int64_t recheck;
    e->rec.effective_eligible =
        node_grace_apply(&e->grace, &e->rec, c->p->now, c->p->grace, &recheck);
    if (recheck < c->res->recheck_at)
        c->res->recheck_at = recheck;
    c->res->nodes++;
    c->res->eligible_nodes += e->rec.effective_eligible;
    c->res->nodes_in_grace += e->rec.effective_eligible && !e->rec.eligible;
    return 0;
}

/* kv_layout_add_nodes wants a contiguous array of records. */
static int add_node_entries(const struct export_build_params *p, struct kv_map *desired,
                            const struct node_entry *v, size_t n)
{
    struct node_record *recs = calloc(n ? n : 1, sizeof(*recs));
    if (!recs)
        return -ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (v[i].valid)
            recs[k++] = v[i].rec; /* shallow: borrowed for the call */
    int rc = kv_layout_add_nodes(p->layout, desired, recs, k);
    free(recs);
    return rc;
}

int export_build_desired(const struct export_build_params *p, const struct kube_store *services,
                         const struct kube_store *nodes, struct export_state *state,
                         struct kv_map *desired, struct export_build_result *res,
                         export_skip_cb on_skip, void *arg)
{
    memset(res, 0, sizeof(*res));
    res->recheck_at = INT64_MAX;

    struct svc_ctx sc = {.p = p,
                         .store = services,
                         .old = state,
                         .desired = desired,
                         .res = res,
                         .on_skip = on_skip,
                         .arg = arg};
    int rc = kube_store_foreach(services, add_service, &sc);
    struct node_ctx nc = {
        .p = p, .store = nodes, .old = state, .res = res, .on_skip = on_skip, .arg = arg};
    if (rc == 0)
        rc = kube_store_foreach(nodes, add_node, &nc);
    if (rc == 0)
        rc = add_node_entries(p, desired, nc.v, nc.n);

    /* The new arrays replace the old ones either way: entries moved out
     * of the old arrays must not be freed twice, and after a failure the
     * next build simply recomputes what is missing. */
    svc_entries_free(state->svc, state->n_svc);
    node_entries_free(state->node, state->n_node);
    if (sc.n > 1)
        qsort(sc.v, sc.n, sizeof(sc.v[0]), key_cmp);
    if (nc.n > 1)
        qsort(nc.v, nc.n, sizeof(nc.v[0]), key_cmp);
    state->svc = sc.v;
    state->n_svc = sc.n;
    state->node = nc.v;
    state->n_node = nc.n;
    return rc;
}
