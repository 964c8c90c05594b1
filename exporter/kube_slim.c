/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kube_slim: the slimmed copies of Services and Nodes that the object cache
 * keeps (only what the record builders read), declared in kube_objects.h.
 */
#include "kube_objects.h"

#include <errno.h>
#include <string.h>

#include "kube_fields.h"
#include "str_affix.h"

/* dst[key] = src[key] (shared reference) for each present key. */
static int copy_keys(json_t *dst, const json_t *src, const char *const *keys)
{
    for (; *keys; keys++) {
        json_t *v = json_object_get(src, *keys);
        if (v && json_object_set(dst, *keys, v) < 0)
            return -ENOMEM;
    }
    return 0;
}

static json_t *slim_metadata(const json_t *meta, bool annotations)
{
    static const char *const keep[] = {"name",   "namespace", "uid", "resourceVersion",
                                       "labels", NULL};
    json_t *m = json_object();
    if (!m || copy_keys(m, meta, keep) < 0)
        goto fail;
    json_t *anns = json_object_get(meta, "annotations");
    if (annotations && json_is_object(anns)) {
        json_t *a = json_object();
        const char *k;
        json_t *v;
        if (!a || json_object_set_new(m, "annotations", a) < 0)
            goto fail;
        json_object_foreach(anns, k, v)
        {
            if ((str_has_prefix(k, KUBE_ANN_DROVER_PREFIX) ||
                 str_has_prefix(k, KUBE_ANN_KSE_PREFIX)) &&
                json_object_set(a, k, v) < 0)
                goto fail;
        }
    } else if (anns && annotations && json_object_set(m, "annotations", anns) < 0) {
        goto fail; /* not an object: keep it so validation still refuses it */
    }
    return m;
fail:
    json_decref(m);
    return NULL;
}

json_t *kube_service_slim(const json_t *svc)
{
    static const char *const spec_keep[] = {"type", "externalTrafficPolicy", "healthCheckNodePort",
                                            NULL};
    static const char *const port_keep[] = {"name", "protocol", "port", "nodePort", NULL};
    if (!json_is_object(svc))
        return NULL;
    json_t *o = json_object();
    /* a metadata that is not an object is kept as is: still invalid */
    json_t *meta_in = json_object_get(svc, "metadata");
    json_t *meta = json_is_object(meta_in) ? slim_metadata(meta_in, true) : json_incref(meta_in);
    json_t *spec_in = json_object_get(svc, "spec");
    json_t *spec = json_object();
    if (!o || !spec || (meta_in && !meta))
        goto fail;
    if (meta && json_object_set_new(o, "metadata", meta) < 0) {
        meta = NULL;
        goto fail;
    }
    meta = NULL;
    if (json_is_object(spec_in)) {
        if (copy_keys(spec, spec_in, spec_keep) < 0)
            goto fail;
        json_t *ports_in = json_object_get(spec_in, "ports");
        if (json_is_array(ports_in)) {
            json_t *ports = json_array();
            size_t i;
            json_t *p;
            if (!ports || json_object_set_new(spec, "ports", ports) < 0)
                goto fail;
            json_array_foreach(ports_in, i, p)
            {
                json_t *q = json_is_object(p) ? json_object() : json_incref(p);
                if (!q || (json_is_object(p) && copy_keys(q, p, port_keep) < 0) ||
                    json_array_append_new(ports, q) < 0)
                    goto fail;
            }
        } else if (ports_in && json_object_set(spec, "ports", ports_in) < 0) {
            goto fail;
        }
        if (json_object_set_new(o, "spec", spec) < 0) {
            spec = NULL;
            goto fail;
        }
        spec = NULL;
    } else if (spec_in && json_object_set(o, "spec", spec_in) < 0) {
        goto fail;
    }
    json_decref(spec);
    return o;
fail:
    json_decref(meta);
    json_decref(spec);
    json_decref(o);
    return NULL;
}

json_t *kube_node_slim(const json_t *node)
{
    if (!json_is_object(node))
        return NULL;
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_t *meta_in = json_object_get(node, "metadata");
    if (json_is_object(meta_in)) {
        json_t *meta = slim_metadata(meta_in, false);
        if (!meta || json_object_set_new(o, "metadata", meta) < 0)
            goto fail;
    }
    json_t *spec_in = json_object_get(node, "spec");
    json_t *unsched = json_is_object(spec_in) ? json_object_get(spec_in, "unschedulable") : NULL;
    if (unsched && json_object_set_new(o, "spec", json_pack("{s:O}", "unschedulable", unsched)) < 0)
        goto fail;
    json_t *status_in = json_object_get(node, "status");
    if (json_is_object(status_in)) {
        json_t *status = json_object();
        if (!status || json_object_set_new(o, "status", status) < 0)
            goto fail;
        json_t *addrs = json_object_get(status_in, "addresses");
        if (addrs && json_object_set(status, "addresses", addrs) < 0)
            goto fail;
        /* only the Ready condition's type and status: heartbeat times
         * change on every kubelet update and are not used */
        json_t *conds = json_object_get(status_in, "conditions");
        json_t *c;
        size_t i;
        json_array_foreach(conds, i, c)
        {
            const char *t = kube_obj_str(c, "type");
            if (!t || strcmp(t, "Ready") != 0)
                continue;
            json_t *ready =
                json_pack("[{s:s, s:O?}]", "type", "Ready", "status", json_object_get(c, "status"));
            if (!ready || json_object_set_new(status, "conditions", ready) < 0)
                goto fail;
            break;
        }
    }
    return o;
fail:
    json_decref(o);
    return NULL;
}
