/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kube_objects: what the exporter publishes, decided from one Kubernetes
 * object at a time, without I/O or clocks.
 *
 * - A Service becomes zero or more export records, one per spec.ports[]
 *   entry, when it is of type NodePort or LoadBalancer and opted in
 *   (annotation `drover.io/exported`, or kube-service-exporter's
 *   `kube-service-exporter.github.com/exported`; drover's wins when both
 *   are present; otherwise export_options.export_by_default). Annotations
 *   of both families are read, drover's winning per setting. A Service
 *   with any invalid annotation (or a malformed object) yields no record
 *   at all and a Kubernetes-style reason: never exported half-way.
 * - A Node becomes a node record: addresses of the configured type (every
 *   one, for dual stack), ready, schedulable, excluded, selected by the
 *   optional label selector, and eligible = all of these plus an address.
 * - node_grace_apply(): the NotReady grace period, as a pure function of
 *   the previous state, the new record and the time.
 *
 * Implemented by kube_services.c (with kube_annotations.c), kube_nodes.c,
 * kube_slim.c and kube_names.c; kube_fields.c holds what they share.
 *
 * Records own their memory (export_record_clear / node_record_clear).
 * docs/kv-schema.md describes every field as it lands in Consul.
 */
#ifndef DROVER_EXPORTER_KUBE_OBJECTS_H
#define DROVER_EXPORTER_KUBE_OBJECTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "kv_kube.h"
#include "label_selector.h"

#define KUBE_ANN_DROVER_PREFIX   "drover.io/"
#define KUBE_ANN_KSE_PREFIX      "kube-service-exporter.github.com/"
#define KUBE_NODE_EXCLUDE_LABEL  "node.kubernetes.io/exclude-from-external-load-balancers"
#define KUBE_NODE_ZONE_LABEL     "topology.kubernetes.io/zone"
#define KUBE_NODE_ZONE_LABEL_OLD "failure-domain.beta.kubernetes.io/zone"
/* Path kube-proxy answers on spec.healthCheckNodePort. */
#define KUBE_PROXY_HEALTHZ_PATH "/healthz"

/* Why an object was not exported, in the Kubernetes Status style:
 * reason is a CamelCase word ("NotExported", "UnsupportedType",
 * "InvalidAnnotation", "InvalidObject", "MissingNodePort"), message a
 * sentence naming the object, the field or annotation and its value. */
struct kube_reason {
    char reason[32];
    char message[512];
};

struct export_options {
    const char *cluster;    /* required: the --cluster name */
    bool export_by_default; /* export Services without an `exported` annotation */
    /* Service labels copied into each record (others are left out so a
     * label churn does not rewrite KV). */
    const char *const *label_keys;
    size_t n_label_keys;
};

struct export_record {
    char *cluster;
    char *namespace;
    char *service;
    char *port_name;         /* spec.ports[].name, or the service port number */
    char *type;              /* "NodePort" | "LoadBalancer" */
    char *protocol;          /* "TCP" | "UDP" | "SCTP" */
    int port;                /* spec.ports[].port (the service port) */
    int node_port;           /* spec.ports[].nodePort */
    int health_check_port;   /* annotation > healthCheckNodePort (LB+Local) > node_port */
    char *health_check_path; /* annotation > "/healthz" with healthCheckNodePort > NULL */
    /* "annotation" | "healthCheckNodePort" | "nodePort": where the port came from */
    const char *health_check_source;
    char *load_balancer_class; /* NULL when not set */
    char *backend_protocol;    /* NULL when not set (KV: "tcp") */
    bool proxy_protocol;
    char *dns_name;               /* NULL when not set */
    int listen_port;              /* 0 when not set */
    bool kse_service_per_cluster; /* KSE id includes the cluster (KSE default: true) */
    char *kse_id_prefix;          /* KSE `id-prefix` annotation, or NULL */
    json_t *labels;               /* object: the selected labels present */
    json_t *custom_attrs;         /* object ({} when not set) */
    char hash[17];                /* 16 hex digits: first 64 bits of SHA-256 of the record */
};

/*
 * Service JSON (as the API returns it, or a watch event's object) ->
 * records. Returns:
 *   0 with *n >= 1: exported, *out is an array the caller frees with
 *     export_records_free(*out, *n);
 *   0 with *n == 0: not exported by choice (reason NotExported or
 *     UnsupportedType in why);
 *   -EINVAL: invalid (InvalidAnnotation / InvalidObject / MissingNodePort
 *     in why): nothing may be exported for this Service;
 *   -ENOMEM.
 */
int kube_service_to_records(const json_t *svc, const struct export_options *opt,
                            struct export_record **out, size_t *n, struct kube_reason *why);

/* Kubernetes' name rules, which the exporter applies before a name becomes
 * a KV key segment (namespaces, Service names and port names: DNS-1123
 * labels, [a-z0-9]([-a-z0-9]*[a-z0-9])? up to 63; Node names: DNS-1123
 * subdomains, such labels joined by dots, up to 253). An object with
 * another name is refused (InvalidObject): the API server never makes one,
 * so it can only come from a hostile or broken API. */
bool kube_name_is_dns1123_label(const char *s);
bool kube_name_is_dns1123_subdomain(const char *s);

void export_record_clear(struct export_record *r);
void export_records_free(struct export_record *recs, size_t n);

/* The record as a JSON object with every field of the drover KV value
 * (docs/kv-schema.md), "hash" included when with_hash: the record's fields
 * encoded by the schema module kv_kube.h. New reference. */
json_t *export_record_to_json(const struct export_record *r, bool with_hash);
/* The same with the hash as canonical text (the KV value), written
 * directly (kv_kube_service_encode). Caller frees; NULL on ENOMEM. */
char *export_record_value(const struct export_record *r);

/* Copies of a Service / Node with only the fields the exporter reads
 * (name, namespace, uid, resourceVersion, labels, drover and KSE
 * annotations; Service type, ports, externalTrafficPolicy,
 * healthCheckNodePort; Node unschedulable, Ready condition, addresses),
 * for kube_store to keep instead of the full object: managedFields, the
 * last-applied annotation, node images and the like are most of an
 * object's size. The records built from a slim copy equal those built
 * from the full object. New reference; NULL on ENOMEM or when obj is not
 * an object. */
json_t *kube_service_slim(const json_t *svc);
json_t *kube_node_slim(const json_t *node);

struct node_options {
    const char *address_type;              /* NULL = "InternalIP" */
    const struct label_selector *selector; /* NULL = every node selected */
    const char *const *label_keys;         /* labels copied into the record */
    size_t n_label_keys;
};

struct node_record {
    char *name;
    char **addresses; /* every status.addresses[] of the configured type, API order */
    size_t n_addresses;
    bool ready;       /* condition Ready is "True" */
    bool schedulable; /* !spec.unschedulable */
    bool excluded;    /* exclude-from-external-load-balancers label, value != "false" */
    bool selected;    /* matches the node selector */
    bool eligible;    /* all of the above and at least one address */
    /* What the KV says: eligible, or kept eligible during the NotReady
     * grace period (node_grace_apply). Set to eligible by the parser. */
    bool effective_eligible;
    json_t *labels; /* object: the selected labels present */
    /* topology.kubernetes.io/zone (else the deprecated
     * failure-domain.beta.kubernetes.io/zone) when it is a valid name, else
     * NULL: what zone-aware backends compare with the proxy host's zone. */
    char *zone;
};

/* Node JSON -> record. -EINVAL (reason InvalidObject in why) when the
 * object has no metadata.name; -ENOMEM. */
int kube_node_to_record(const json_t *node, const struct node_options *opt, struct node_record *out,
                        struct kube_reason *why);
void node_record_clear(struct node_record *r);

/*
 * NotReady grace period. One state per node, kept by the caller between
 * events (zeroed for a node never seen). A node that was effectively
 * eligible and becomes ineligible *only* because it is NotReady stays
 * eligible until not_ready_since + grace; any other cause (cordon,
 * exclusion label, selector, no address) takes effect at once, as does
 * NotReady for a node that was not eligible before. Times are in any
 * monotonic unit (the caller's), grace in the same unit.
 */
struct node_grace_state {
    bool known;              /* state holds a previous verdict */
    bool effective_eligible; /* previous verdict */
    bool in_grace;           /* currently kept eligible by the grace period */
    int64_t not_ready_since; /* when the grace period started (valid if in_grace) */
};

/* Updates st, returns the effective eligibility. When the result relies on
 * the grace period, *recheck_at (if non-NULL) is the time at which the
 * caller must evaluate again (it expires then); otherwise INT64_MAX. */
bool node_grace_apply(struct node_grace_state *st, const struct node_record *rec, int64_t now,
                      int64_t grace, int64_t *recheck_at);

#endif
