/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kube_nodes: a Node -> its node record, and the NotReady grace period
 * (node_grace_apply()), declared in kube_objects.h.
 */
#include "kube_objects.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "haproxy_value.h"
#include "kube_fields.h"

void node_record_clear(struct node_record *r)
{
    if (!r)
        return;
    free(r->name);
    for (size_t i = 0; i < r->n_addresses; i++)
        free(r->addresses[i]);
    free(r->addresses);
    json_decref(r->labels);
    free(r->zone);
    memset(r, 0, sizeof(*r));
}

/* The node's zone label, if it is a name HAProxy-side code may compare and
 * log (kind `name`); an absent or odd value gives no zone, never an error:
 * the node still serves, only without a zone. */
static const char *node_zone_label(const json_t *labels)
{
    static const char *const keys[] = {KUBE_NODE_ZONE_LABEL, KUBE_NODE_ZONE_LABEL_OLD};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        json_t *v = json_is_object(labels) ? json_object_get(labels, keys[i]) : NULL;
        const char *why = NULL;
        if (json_is_string(v) && haproxy_value_check(HAPROXY_VALUE_NAME, json_string_value(v),
                                                     json_string_length(v), &why) == 0)
            return json_string_value(v);
    }
    return NULL;
}

static bool is_ip_type(const char *type)
{
    return strcmp(type, "InternalIP") == 0 || strcmp(type, "ExternalIP") == 0;
}

static bool valid_ip(const char *s)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

int kube_node_to_record(const json_t *node, const struct node_options *opt, struct node_record *out,
                        struct kube_reason *why)
{
    const char *atype = opt && opt->address_type ? opt->address_type : "InternalIP";
    memset(out, 0, sizeof(*out));
    if (why)
        why->reason[0] = why->message[0] = '\0';

    json_t *meta = json_is_object(node) ? json_object_get(node, "metadata") : NULL;
    const char *name = json_is_object(meta) ? kube_obj_str(meta, "name") : NULL;
    if (!name || !name[0]) {
        kube_reason_set(why, "InvalidObject", "Node without metadata.name; skipping it");
        return -EINVAL;
    }
    if (!kube_name_is_dns1123_subdomain(name)) {
        kube_reason_set(
            why, "InvalidObject",
            "Node name \"%.64s\" is not a DNS-1123 subdomain (Kubernetes never makes one); "
            "skipping it",
            name);
        return -EINVAL;
    }
    out->name = strdup(name);
    if (!out->name)
        goto nomem;

    json_t *labels = json_object_get(meta, "labels");
    json_t *spec = json_object_get(node, "spec");
    json_t *status = json_object_get(node, "status");

    json_t *unsched = json_is_object(spec) ? json_object_get(spec, "unschedulable") : NULL;
    out->schedulable = !json_is_true(unsched);

    json_t *conds = json_is_object(status) ? json_object_get(status, "conditions") : NULL;
    size_t i;
    json_t *cond;
    json_array_foreach(conds, i, cond)
    {
        const char *t = kube_obj_str(cond, "type");
        if (t && strcmp(t, "Ready") == 0) {
            const char *s = kube_obj_str(cond, "status");
            out->ready = s && strcmp(s, "True") == 0;
            break;
        }
    }

    json_t *ex = json_is_object(labels) ? json_object_get(labels, KUBE_NODE_EXCLUDE_LABEL) : NULL;
    out->excluded = ex && !(json_is_string(ex) && strcmp(json_string_value(ex), "false") == 0);

    out->selected = label_selector_matches(opt ? opt->selector : NULL, labels);
    const char *zone = node_zone_label(labels);
    if (zone && !(out->zone = strdup(zone)))
        goto nomem;

    json_t *addrs = json_is_object(status) ? json_object_get(status, "addresses") : NULL;
    json_t *a;
    json_array_foreach(addrs, i, a)
    {
        const char *t = kube_obj_str(a, "type");
        const char *v = kube_obj_str(a, "address");
        if (!t || !v || strcmp(t, atype) != 0 || !v[0])
            continue;
        if (is_ip_type(atype) && !valid_ip(v))
            continue; /* never publish something HAProxy cannot connect to */
        bool dup = false;
        for (size_t k = 0; k < out->n_addresses; k++)
            dup = dup || strcmp(out->addresses[k], v) == 0;
        if (dup)
            continue;
        char **na = realloc(out->addresses, (out->n_addresses + 1) * sizeof(*na));
        if (!na)
            goto nomem;
        out->addresses = na;
        na[out->n_addresses] = strdup(v);
        if (!na[out->n_addresses])
            goto nomem;
        out->n_addresses++;
    }

    out->labels =
        kube_select_labels(labels, opt ? opt->label_keys : NULL, opt ? opt->n_label_keys : 0);
    if (!out->labels)
        goto nomem;
    out->eligible =
        out->ready && out->schedulable && !out->excluded && out->selected && out->n_addresses > 0;
    out->effective_eligible = out->eligible;
    return 0;
nomem:
    node_record_clear(out);
    kube_reason_set(why, "InternalError", "Node %s: out of memory", name);
    return -ENOMEM;
}

bool node_grace_apply(struct node_grace_state *st, const struct node_record *rec, int64_t now,
                      int64_t grace, int64_t *recheck_at)
{
    bool eff;
    if (recheck_at)
        *recheck_at = INT64_MAX;
    if (rec->eligible) {
        eff = true;
        st->in_grace = false;
    } else {
        /* only readiness is missing: the kubelet may just be flapping */
        bool only_not_ready = !rec->ready && rec->schedulable && !rec->excluded && rec->selected &&
                              rec->n_addresses > 0;
        if (only_not_ready && st->known && st->effective_eligible && !st->in_grace) {
            st->in_grace = true;
            st->not_ready_since = now;
        }
        if (only_not_ready && st->in_grace && grace > 0 && now - st->not_ready_since < grace) {
            eff = true;
            if (recheck_at)
                *recheck_at = st->not_ready_since + grace;
        } else {
            eff = false;
            st->in_grace = false;
        }
    }
    st->known = true;
    st->effective_eligible = eff;
    return eff;
}
