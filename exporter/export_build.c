/* SPDX-License-Identifier: Apache-2.0 */
/*
 * export_build: stores -> desired KV entries. See export_build.h.
 */
#include "export_build.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

struct grace_entry {
    char *name;
    struct node_grace_state st;
};

/* Sorted by name; rebuilt on every build from the nodes present, so the
 * states of deleted nodes go away with them. */
struct node_grace_table {
    struct grace_entry *v;
    size_t n;
};

struct node_grace_table *node_grace_table_new(void)
{
    return calloc(1, sizeof(struct node_grace_table));
}

static void grace_entries_free(struct grace_entry *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].name);
    free(v);
}

void node_grace_table_free(struct node_grace_table *t)
{
    if (!t)
        return;
    grace_entries_free(t->v, t->n);
    free(t);
}

size_t node_grace_table_count(const struct node_grace_table *t)
{
    return t->n;
}

static int grace_cmp(const void *a, const void *b)
{
    return strcmp(((const struct grace_entry *)a)->name, ((const struct grace_entry *)b)->name);
}

static const struct node_grace_state *grace_find(const struct node_grace_table *t, const char *name)
{
    struct grace_entry probe = {.name = (char *)name};
    const struct grace_entry *e =
        t->n ? bsearch(&probe, t->v, t->n, sizeof(t->v[0]), grace_cmp) : NULL;
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
    struct kv_map *desired;
    struct export_build_result *res;
    export_skip_cb on_skip;
    void *arg;
};

static int add_service(const char *key, json_t *svc, void *arg)
{
    struct svc_ctx *c = arg;
    struct export_record *recs = NULL;
    size_t n = 0;
    struct kube_reason why;
    int rc = kube_service_to_records(svc, c->p->service_opts, &recs, &n, &why);
    if (rc == -ENOMEM)
        return rc;
    if (rc < 0) {
        c->res->skipped_services++;
        report_skip(c->on_skip, c->arg, "Service", key, &why);
        return 0;
    }
    if (n == 0) {
        c->res->not_exported++;
        return 0;
    }
    /* all ports or none: a port that cannot form a key refuses the Service */
    size_t before = c->desired->n;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = kv_layout_add_service(c->p->layout, c->desired, &recs[i]);
    if (rc == -EINVAL) {
        while (c->desired->n > before) {
            c->desired->n--;
            free(c->desired->v[c->desired->n].key);
            free(c->desired->v[c->desired->n].value);
        }
        snprintf(why.reason, sizeof(why.reason), "InvalidObject");
        snprintf(why.message, sizeof(why.message),
                 "Service %s: a namespace, name or port name cannot form a KV key", key);
        c->res->skipped_services++;
        report_skip(c->on_skip, c->arg, "Service", key, &why);
        rc = 0;
    } else if (rc == 0) {
        c->res->services++;
        c->res->service_ports += n;
    }
    export_records_free(recs, n);
    return rc;
}

struct node_ctx {
    const struct export_build_params *p;
    const struct node_grace_table *old;
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
                         const struct kube_store *nodes, struct node_grace_table *grace,
                         struct kv_map *desired, struct export_build_result *res,
                         export_skip_cb on_skip, void *arg)
{
    memset(res, 0, sizeof(*res));
    res->recheck_at = INT64_MAX;

    struct svc_ctx sc = {.p = p, .desired = desired, .res = res, .on_skip = on_skip, .arg = arg};
    int rc = kube_store_foreach(services, add_service, &sc);
    if (rc)
        return rc;

    struct node_ctx nc = {.p = p, .old = grace, .res = res, .on_skip = on_skip, .arg = arg};
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
    /* the new grace table: exactly the nodes present now */
    if (nc.n > 1)
        qsort(nc.states, nc.n, sizeof(nc.states[0]), grace_cmp);
    grace_entries_free(grace->v, grace->n);
    grace->v = nc.states;
    grace->n = nc.n;
    return 0;
}
