/* SPDX-License-Identifier: Apache-2.0 */
/*
 * export_build: stores -> desired KV entries. See export_build.h.
 */
#include "export_build.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

struct grace_entry {
    char *name;
    struct node_grace_state st;
};

/* What one build leaves for the next. grace: sorted by name, rebuilt on
 * every build from the nodes present, so deleted nodes' states go away.
 * services: store key -> {"rv","kind","ports","reason","message","kv"}
 * (kv = [key, value, key, value, ...]); replaced on every build, so
 * deleted Services' entries go away too. */
struct export_state {
    struct grace_entry *grace;
    size_t n_grace;
    json_t *services;
};

enum cached_kind {
    CACHED_EXPORTED = 0,
    CACHED_NOT_EXPORTED = 1,
    CACHED_SKIPPED = 2,
};

struct export_state *export_state_new(void)
{
    struct export_state *st = calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    st->services = json_object();
    if (!st->services) {
        free(st);
        return NULL;
    }
    return st;
}

static void grace_entries_free(struct grace_entry *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].name);
    free(v);
}

void export_state_free(struct export_state *st)
{
    if (!st)
        return;
    grace_entries_free(st->grace, st->n_grace);
    json_decref(st->services);
    free(st);
}

size_t export_state_nodes(const struct export_state *st)
{
    return st->n_grace;
}

size_t export_state_services(const struct export_state *st)
{
    return json_object_size(st->services);
}

static int grace_cmp(const void *a, const void *b)
{
    return strcmp(((const struct grace_entry *)a)->name, ((const struct grace_entry *)b)->name);
}

static const struct node_grace_state *grace_find(const struct export_state *t, const char *name)
{
    struct grace_entry probe = {.name = (char *)name};
    const struct grace_entry *e =
        t->n_grace ? bsearch(&probe, t->grace, t->n_grace, sizeof(t->grace[0]), grace_cmp) : NULL;
    return e ? &e->st : NULL;
}

static void report_skip(export_skip_cb cb, void *arg, const char *kind, const char *key,
                        const struct kube_reason *why)
{
    if (cb)
        cb(kind, key, why, arg);
    else
        log_debug("export: %s %s skipped: %s: %s", kind, key, why->reason, why->message);
}

struct svc_ctx {
    const struct export_build_params *p;
    const json_t *old_cache;
    json_t *new_cache;
    struct kv_map *desired;
    struct export_build_result *res;
    export_skip_cb on_skip;
    void *arg;
};

static json_t *cache_entry(enum cached_kind kind, const char *rv, size_t ports,
                           const struct kube_reason *why, json_t *kv)
{
    json_t *e = json_pack("{s:s, s:i, s:I, s:s, s:s, s:o}", "rv", rv ? rv : "", "kind", kind,
                          "ports", (json_int_t)ports, "reason", why ? why->reason : "", "message",
                          why ? why->message : "", "kv", kv ? kv : json_array());
    return e;
}

/* The cache entry of one Service, computed from scratch. NULL on ENOMEM. */
static json_t *compute_service(const struct svc_ctx *c, const char *key, const json_t *svc,
                               const char *rv)
{
    struct export_record *recs = NULL;
    size_t n = 0;
    struct kube_reason why;
    int rc = kube_service_to_records(svc, c->p->service_opts, &recs, &n, &why);
    if (rc == -ENOMEM)
        return NULL;
    if (rc < 0)
        return cache_entry(CACHED_SKIPPED, rv, 0, &why, NULL);
    if (n == 0)
        return cache_entry(CACHED_NOT_EXPORTED, rv, 0, &why, NULL);

    /* all ports or none: a port that cannot form a key refuses the Service */
    struct kv_map tmp;
    kv_map_init(&tmp);
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = kv_layout_add_service(c->p->layout, &tmp, &recs[i]);
    export_records_free(recs, n);
    json_t *entry = NULL;
    if (rc == -EINVAL) {
        snprintf(why.reason, sizeof(why.reason), "InvalidObject");
        snprintf(why.message, sizeof(why.message),
                 "Service %s: a namespace, name or port name cannot form a KV key", key);
        entry = cache_entry(CACHED_SKIPPED, rv, 0, &why, NULL);
    } else if (rc == 0) {
        json_t *kv = json_array();
        for (size_t i = 0; kv && i < tmp.n; i++) {
            if (json_array_append_new(kv, json_string(tmp.v[i].key)) < 0 ||
                json_array_append_new(kv, json_string(tmp.v[i].value)) < 0) {
                json_decref(kv);
                kv = NULL;
            }
        }
        entry = kv ? cache_entry(CACHED_EXPORTED, rv, n, NULL, kv) : NULL;
    }
    kv_map_clear(&tmp);
    return entry;
}

static int add_service(const char *key, json_t *svc, void *arg)
{
    struct svc_ctx *c = arg;
    json_t *rvj = json_object_get(json_object_get(svc, "metadata"), "resourceVersion");
    const char *rv = json_is_string(rvj) ? json_string_value(rvj) : NULL;

    /* an unchanged resourceVersion means unchanged content: reuse */
    json_t *entry = json_object_get(c->old_cache, key);
    const char *cached_rv = json_string_value(json_object_get(entry, "rv"));
    bool fresh = !(entry && rv && rv[0] && cached_rv && strcmp(cached_rv, rv) == 0);
    if (fresh)
        entry = compute_service(c, key, svc, rv);
    else
        json_incref(entry);
    if (!entry || json_object_set_new(c->new_cache, key, entry) < 0)
        return -ENOMEM;

    switch (json_integer_value(json_object_get(entry, "kind"))) {
    case CACHED_EXPORTED: {
        json_t *kv = json_object_get(entry, "kv");
        for (size_t i = 0; i + 1 < json_array_size(kv); i += 2) {
            int rc = kv_map_put(c->desired, json_string_value(json_array_get(kv, i)),
                                json_string_value(json_array_get(kv, i + 1)), 0);
            if (rc)
                return rc;
        }
        c->res->services++;
        c->res->service_ports += (size_t)json_integer_value(json_object_get(entry, "ports"));
        break;
    }
    case CACHED_NOT_EXPORTED:
        c->res->not_exported++;
        break;
    default: {
        struct kube_reason why;
        snprintf(why.reason, sizeof(why.reason), "%s",
                 json_string_value(json_object_get(entry, "reason")));
        snprintf(why.message, sizeof(why.message), "%s",
                 json_string_value(json_object_get(entry, "message")));
        c->res->skipped_services++;
        if (fresh) /* once per Service version, not on every build */
            report_skip(c->on_skip, c->arg, "Service", key, &why);
    }
    }
    return 0;
}

struct node_ctx {
    const struct export_build_params *p;
    const struct export_state *old;
    struct node_record *recs;
    struct grace_entry *states;
    size_t n, cap;
    struct export_build_result *res;
    export_skip_cb on_skip;
    void *arg;
};

static int add_node(const char *key, json_t *node, void *arg)
{
    struct node_ctx *c = arg;
    struct kube_reason why;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        struct node_record *r = realloc(c->recs, cap * sizeof(*r));
        if (!r)
            return -ENOMEM;
        c->recs = r;
        struct grace_entry *g = realloc(c->states, cap * sizeof(*g));
        if (!g)
            return -ENOMEM;
        c->states = g;
        c->cap = cap;
    }
    struct node_record *r = &c->recs[c->n];
    int rc = kube_node_to_record(node, c->p->node_opts, r, &why);
    if (rc == -ENOMEM)
        return rc;
    if (rc < 0) {
        c->res->skipped_nodes++;
        report_skip(c->on_skip, c->arg, "Node", key, &why);
        return 0;
    }
    struct grace_entry *g = &c->states[c->n];
    g->name = strdup(r->name);
    if (!g->name) {
        node_record_clear(r);
        return -ENOMEM;
    }
    const struct node_grace_state *prev = grace_find(c->old, r->name);
    g->st = prev ? *prev : (struct node_grace_state){0};
    int64_t recheck;
    r->effective_eligible = node_grace_apply(&g->st, r, c->p->now, c->p->grace, &recheck);
    if (recheck < c->res->recheck_at)
        c->res->recheck_at = recheck;
    c->res->nodes++;
    c->res->eligible_nodes += r->effective_eligible;
    c->res->nodes_in_grace += r->effective_eligible && !r->eligible;
    c->n++;
    return 0;
}

int export_build_desired(const struct export_build_params *p, const struct kube_store *services,
                         const struct kube_store *nodes, struct export_state *state,
                         struct kv_map *desired, struct export_build_result *res,
                         export_skip_cb on_skip, void *arg)
{
    memset(res, 0, sizeof(*res));
    res->recheck_at = INT64_MAX;

    struct svc_ctx sc = {.p = p,
                         .old_cache = state->services,
                         .new_cache = json_object(),
                         .desired = desired,
                         .res = res,
                         .on_skip = on_skip,
                         .arg = arg};
    if (!sc.new_cache)
        return -ENOMEM;
    int rc = kube_store_foreach(services, add_service, &sc);
    if (rc) {
        json_decref(sc.new_cache);
        return rc;
    }
    json_decref(state->services);
    state->services = sc.new_cache;

    struct node_ctx nc = {.p = p, .old = state, .res = res, .on_skip = on_skip, .arg = arg};
    rc = kube_store_foreach(nodes, add_node, &nc);
    if (rc == 0)
        rc = kv_layout_add_nodes(p->layout, desired, nc.recs, nc.n);
    for (size_t i = 0; i < nc.n; i++)
        node_record_clear(&nc.recs[i]);
    free(nc.recs);
    if (rc) {
        grace_entries_free(nc.states, nc.n);
        return rc;
    }
    /* the new grace states: exactly the nodes present now */
    if (nc.n > 1)
        qsort(nc.states, nc.n, sizeof(nc.states[0]), grace_cmp);
    grace_entries_free(state->grace, state->n_grace);
    state->grace = nc.states;
    state->n_grace = nc.n;
    return 0;
}
