/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kube_annotations: a Service's drover.io/ and kube-service-exporter
 * annotations, read and validated. drover's annotation wins over KSE's
 * per setting; any invalid value makes the whole Service invalid (a
 * reason names the annotation and its value), so a Service is never
 * exported half-way. Internal to the exporter library (kube_services.c
 * is its user); the public interface is kube_objects.h.
 */
#ifndef DROVER_EXPORTER_KUBE_ANNOTATIONS_H
#define DROVER_EXPORTER_KUBE_ANNOTATIONS_H

#include <stdbool.h>

#include <jansson.h>

#include "kube_objects.h"

struct kube_ann_ctx {
    const json_t *anns; /* metadata.annotations or NULL */
    const char *ns, *name;
    struct kube_reason *why;
};

/* Service-wide settings from annotations, validated once for all ports. */
struct kube_svc_settings {
    bool have_hc_port;
    int hc_port;
    const char *hc_path;
    const char *class_;
    const char *backend;
    bool proxy_protocol;
    const char *dns_name;
    int listen_port;
    bool per_cluster;
    const char *id_prefix;
    json_t *custom_attrs; /* owned */
};

/* The opt-in decision alone (annotation, else opt->export_by_default):
 * Services that are not exported are not validated further (their other
 * annotations are not our business). 0, or -EINVAL with c->why set. */
int kube_ann_read_exported(struct kube_ann_ctx *c, const struct export_options *opt,
                           bool *exported);

/* Every other setting into *st, validated once for all ports. 0, or
 * -EINVAL (c->why set) / -ENOMEM. st->custom_attrs is set on success
 * and may be set on failure: the caller json_decref()s it either way. */
int kube_ann_read_settings(struct kube_ann_ctx *c, struct kube_svc_settings *st);

#endif
