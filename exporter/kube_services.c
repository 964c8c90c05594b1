/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kube_services: a Service -> its export records (one per port), declared in
 * kube_objects.h.
 */
#include "kube_objects.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube_annotations.h"
#include "kube_fields.h"

void export_record_clear(struct export_record *r)
{
    if (!r)
        return;
    free(r->cluster);
    free(r->namespace);
    free(r->service);
    free(r->port_name);
    free(r->type);
    free(r->protocol);
    free(r->health_check_path);
    free(r->load_balancer_class);
    free(r->backend_protocol);
    free(r->dns_name);
    free(r->kse_id_prefix);
    json_decref(r->labels);
    json_decref(r->custom_attrs);
    memset(r, 0, sizeof(*r));
}

void export_records_free(struct export_record *recs, size_t n)
{
    if (!recs)
        return;
    for (size_t i = 0; i < n; i++)
        export_record_clear(&recs[i]);
    free(recs);
}

static int dup_opt(char **dst, const char *src)
{
    *dst = NULL;
    if (!src)
        return 0;
    *dst = strdup(src);
    return *dst ? 0 : -ENOMEM;
}

static struct kv_kube_service_rec record_rec(const struct export_record *r)
{
    return (struct kv_kube_service_rec){
        .cluster = r->cluster,
        .namespace = r->namespace,
        .service = r->service,
        .port_name = r->port_name,
        .type = r->type,
        .protocol = r->protocol,
        .port = r->port,
        .node_port = r->node_port,
        .health_check_port = r->health_check_port,
        .health_check_source = r->health_check_source,
        .health_check_path = r->health_check_path,
        .load_balancer_class = r->load_balancer_class,
        .backend_protocol = r->backend_protocol,
        .proxy_protocol = r->proxy_protocol,
        .dns_name = r->dns_name,
        .listen_port = r->listen_port,
        .labels = r->labels,
        .custom_attrs = r->custom_attrs,
        .hash = r->hash,
    };
}

json_t *export_record_to_json(const struct export_record *r, bool with_hash)
{
    struct kv_kube_service_rec rec = record_rec(r);
    return kv_kube_service_json(&rec, with_hash);
}

char *export_record_value(const struct export_record *r)
{
    struct kv_kube_service_rec rec = record_rec(r);
    return kv_kube_service_encode(&rec);
}

static int record_hash(struct export_record *r)
{
    struct kv_kube_service_rec rec = record_rec(r);
    return kv_kube_service_hash(&rec, r->hash);
}

static int port_num(const json_t *port, const char *key, int *out)
{
    json_t *v = json_object_get(port, key);
    if (!json_is_integer(v))
        return -ENOENT;
    json_int_t i = json_integer_value(v);
    if (i < 1 || i > 65535)
        return -ERANGE;
    *out = (int)i;
    return 0;
}

static int build_record(struct export_record *r, const struct export_options *opt, const char *ns,
                        const char *name, const char *type, const json_t *labels,
                        const struct kube_svc_settings *st, const json_t *port,
                        int lb_local_hc_port)
{
    char numbuf[16];
    const char *pname = kube_obj_str(port, "name");
    const char *proto = kube_obj_str(port, "protocol");

    if (port_num(port, "port", &r->port) < 0 || port_num(port, "nodePort", &r->node_port) < 0)
        return -EINVAL; /* checked by the caller */
    if (!pname || !pname[0]) {
        /* the service port, not the nodePort: it is the same in every cluster */
        snprintf(numbuf, sizeof(numbuf), "%d", r->port);
        pname = numbuf;
    }
    if (!proto || !proto[0])
        proto = "TCP";

    if (st->have_hc_port) {
        r->health_check_port = st->hc_port;
        r->health_check_source = "annotation";
    } else if (lb_local_hc_port) {
        r->health_check_port = lb_local_hc_port;
        r->health_check_source = "healthCheckNodePort";
    } else {
        r->health_check_port = r->node_port;
        r->health_check_source = "nodePort";
    }
    const char *path = st->hc_path;
    if (!path && !st->have_hc_port && lb_local_hc_port)
        path = KUBE_PROXY_HEALTHZ_PATH;

    r->proxy_protocol = st->proxy_protocol;
    r->listen_port = st->listen_port;
    r->kse_service_per_cluster = st->per_cluster;
    if (dup_opt(&r->cluster, opt->cluster) || dup_opt(&r->namespace, ns) ||
        dup_opt(&r->service, name) || dup_opt(&r->port_name, pname) || dup_opt(&r->type, type) ||
        dup_opt(&r->protocol, proto) || dup_opt(&r->health_check_path, path) ||
        dup_opt(&r->load_balancer_class, st->class_) ||
        dup_opt(&r->backend_protocol, st->backend) || dup_opt(&r->dns_name, st->dns_name) ||
        dup_opt(&r->kse_id_prefix, st->id_prefix))
        return -ENOMEM;
    r->labels = kube_select_labels(labels, opt->label_keys, opt->n_label_keys);
    r->custom_attrs = json_deep_copy(st->custom_attrs);
    if (!r->labels || !r->custom_attrs)
        return -ENOMEM;
    return record_hash(r);
}

int kube_service_to_records(const json_t *svc, const struct export_options *opt,
                            struct export_record **out, size_t *n, struct kube_reason *why)
{
    struct kube_svc_settings st = {0};
    struct export_record *recs = NULL;
    size_t nrec = 0;
    int rc = 0;

    *out = NULL;
    *n = 0;
    if (why)
        why->reason[0] = why->message[0] = '\0';

    json_t *meta = json_is_object(svc) ? json_object_get(svc, "metadata") : NULL;
    const char *ns = json_is_object(meta) ? kube_obj_str(meta, "namespace") : NULL;
    const char *name = json_is_object(meta) ? kube_obj_str(meta, "name") : NULL;
    if (!ns || !name || !ns[0] || !name[0]) {
        kube_reason_set(why, "InvalidObject",
                        "Service without metadata.namespace/metadata.name; skipping it");
        return -EINVAL;
    }
    if (!kube_name_is_dns1123_label(ns) || !kube_name_is_dns1123_label(name)) {
        /* They become KV key segments: only what Kubernetes itself allows
         * (no "%2e%2e%2f", spaces, "?&=") ever gets that far. */
        kube_reason_set(why, "InvalidObject",
                        "Service \"%.64s/%.64s\": namespace and name must be DNS-1123 labels "
                        "(Kubernetes never makes others); skipping it",
                        ns, name);
        return -EINVAL;
    }
    if (!opt || !opt->cluster || !opt->cluster[0]) {
        kube_reason_set(why, "InvalidObject", "Service %s/%s: no cluster name configured", ns,
                        name);
        return -EINVAL;
    }
    json_t *spec = json_object_get(svc, "spec");
    if (!json_is_object(spec)) {
        kube_reason_set(why, "InvalidObject", "Service %s/%s has no spec object; skipping it", ns,
                        name);
        return -EINVAL;
    }
    const char *type = kube_obj_str(spec, "type");
    if (!type)
        type = "ClusterIP"; /* the API server's default */

    struct kube_ann_ctx c = {
        .anns = json_object_get(meta, "annotations"), .ns = ns, .name = name, .why = why};
    if (c.anns && !json_is_object(c.anns)) {
        kube_reason_set(why, "InvalidObject",
                        "Service %s/%s: metadata.annotations is not an object", ns, name);
        return -EINVAL;
    }
    bool exported;
    rc = kube_ann_read_exported(&c, opt, &exported);
    if (rc)
        goto out;
    if (!exported) {
        kube_reason_set(why, "NotExported", "Service %s/%s is not opted in for export", ns, name);
        goto out;
    }
    bool is_lb = strcmp(type, "LoadBalancer") == 0;
    if (!is_lb && strcmp(type, "NodePort") != 0) {
        kube_reason_set(why, "UnsupportedType",
                        "Service %s/%s is of type %s; only NodePort and LoadBalancer are exported",
                        ns, name, type);
        goto out;
    }
    rc = kube_ann_read_settings(&c, &st);
    if (rc)
        goto out;

    int hc_node_port = 0;
    const char *etp = kube_obj_str(spec, "externalTrafficPolicy");
    if (is_lb && etp && strcmp(etp, "Local") == 0) {
        int r2 = port_num(spec, "healthCheckNodePort", &hc_node_port);
        if (r2 < 0) {
            kube_reason_set(
                why, "InvalidObject",
                "Service %s/%s: LoadBalancer with externalTrafficPolicy Local but no valid "
                "spec.healthCheckNodePort; skipping it",
                ns, name);
            rc = -EINVAL;
            goto out;
        }
    }

    json_t *ports = json_object_get(spec, "ports");
    if (!json_is_array(ports) || json_array_size(ports) == 0) {
        kube_reason_set(why, "InvalidObject", "Service %s/%s has no spec.ports; skipping it", ns,
                        name);
        rc = -EINVAL;
        goto out;
    }
    size_t np = json_array_size(ports);
    recs = calloc(np, sizeof(*recs));
    if (!recs) {
        rc = -ENOMEM;
        goto out;
    }
    json_t *labels = json_object_get(meta, "labels");
    for (size_t i = 0; i < np; i++) {
        json_t *port = json_array_get(ports, i);
        int tmp;
        if (!json_is_object(port) || port_num(port, "port", &tmp) < 0) {
            kube_reason_set(
                why, "InvalidObject",
                "Service %s/%s: spec.ports[%zu] has no valid port; skipping the Service", ns, name,
                i);
            rc = -EINVAL;
            goto out;
        }
        const char *pname = kube_obj_str(port, "name");
        if (pname && pname[0] && !kube_name_is_dns1123_label(pname)) {
            kube_reason_set(why, "InvalidObject",
                            "Service %s/%s: spec.ports[%zu].name \"%.64s\" is not a DNS-1123 label "
                            "(Kubernetes never makes one); skipping the Service",
                            ns, name, i, pname);
            rc = -EINVAL;
            goto out;
        }
        if (port_num(port, "nodePort", &tmp) < 0) {
            kube_reason_set(why, "MissingNodePort",
                            "Service %s/%s: spec.ports[%zu] has no nodePort (allocateLoadBalancer"
                            "NodePorts=false?); skipping the Service",
                            ns, name, i);
            rc = -EINVAL;
            goto out;
        }
        rc = build_record(&recs[i], opt, ns, name, type, labels, &st, port, hc_node_port);
        nrec = i + 1;
        if (rc)
            goto out;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(recs[j].port_name, recs[i].port_name) == 0) {
                kube_reason_set(why, "InvalidObject",
                                "Service %s/%s: two ports named \"%s\"; skipping the Service", ns,
                                name, recs[i].port_name);
                rc = -EINVAL;
                goto out;
            }
        }
    }
    *out = recs;
    *n = nrec;
    recs = NULL;
out:
    if (rc == -ENOMEM)
        kube_reason_set(why, "InternalError", "Service %s/%s: out of memory", ns, name);
    export_records_free(recs, nrec);
    json_decref(st.custom_attrs);
    return rc;
}
