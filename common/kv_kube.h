/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kv_kube: the schema module of R kube/<cluster>/... (contract:
 * docs/kv-schema.md), written by drover-exporter and read by drover-watcher
 * and droverctl:
 *
 *   services/<namespace>/<service>/<port>  one Service port
 *   nodes/<node>                           one Node
 *   meta                                   summary of the last sync
 *
 * Encoding (the exporter) takes a record of borrowed fields and produces
 * the canonical bytes: compact JSON, object keys sorted at every depth,
 * optional fields left out when unset, so equal content is equal bytes.
 * Decoding (the watcher, droverctl) validates the fields readers use and
 * ignores the others.
 *
 * The one rule for a node's server address: `addresses[0]` (the exporter
 * writes every address, `address` being a copy of the first); `address`
 * is read only when `addresses` is absent or empty (older writers).
 * `eligible` is required: a node entry without it is a bad entry, never
 * taken as eligible or ineligible by guess.
 */
#ifndef DROVER_KV_KUBE_H
#define DROVER_KV_KUBE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KV_SCHEMA_VERSION 1

/* ---- canonical bytes ---- */

/* Canonical bytes of a JSON value: compact, keys sorted at every depth.
 * Caller frees. NULL on ENOMEM. */
char *kv_canonical(const json_t *v);
/* Hex of the first 64 bits of SHA-256 over data; hex has 17 bytes. */
void kv_hash64_hex(const void *data, size_t len, char hex[17]);

/* ---- kube/<cluster>/services/<namespace>/<service>/<port> ---- */

/* What the exporter writes (fields borrowed; NULL/0 = optional and unset). */
struct kv_kube_service_rec {
    const char *cluster, *namespace, *service, *port_name;
    const char *type;     /* "NodePort" | "LoadBalancer" */
    const char *protocol; /* "TCP" | "UDP" | "SCTP" */
    int port, node_port, health_check_port;
    const char *health_check_source; /* "annotation" | "healthCheckNodePort" | "nodePort" */
    const char *health_check_path;   /* optional */
    const char *load_balancer_class; /* optional */
    const char *backend_protocol;    /* NULL: "tcp" */
    bool proxy_protocol;
    const char *dns_name; /* optional */
    int listen_port;      /* 0: unset */
    const json_t *labels, *custom_attrs;
    const char *hash; /* 16 hex digits; used only with_hash */
};

/* The value as a JSON object ("hash" only when with_hash). New reference,
 * NULL on ENOMEM. */
json_t *kv_kube_service_json(const struct kv_kube_service_rec *r, bool with_hash);
/* The canonical value (with "hash"): the bytes of kv_canonical() of
 * kv_kube_service_json(r, true), written without building the object.
 * Caller frees; NULL on ENOMEM or a string that is not valid UTF-8. */
char *kv_kube_service_encode(const struct kv_kube_service_rec *r);
/* The record's hash: kv_hash64_hex of its canonical bytes without "hash".
 * 0 or -ENOMEM. */
int kv_kube_service_hash(const struct kv_kube_service_rec *r, char hex[17]);

/* What readers use of a service port entry (owned strings). */
struct kvm_kube_service {
    char *cluster, *namespace, *service, *port_name; /* from the key */
    uint16_t node_port;
    uint16_t health_check_port; /* 0 if absent */
    char *health_check_path;    /* NULL: TCP check */
    bool proxy_protocol;
    /* What class selectors match and generate from (kv_haproxy.h). Kept as
     * written: they are checked only when a selector picks the entry, so a
     * bad one never spoils the entry for definitions naming it. */
    char *load_balancer_class; /* NULL if absent */
    char *backend_protocol;    /* NULL if absent (= tcp) */
    char *dns_name;            /* NULL if absent */
    int64_t listen_port;       /* 0 if absent; unchecked */
    json_t *labels;            /* object or NULL */
};

/* Decode a service port value; the names come from the key. 0, -EINVAL
 * (err names the field) or -ENOMEM. Release with kvm_kube_service_clear,
 * also on failure. */
int kvm_kube_service_decode(const json_t *root, const char *cluster, const char *ns,
                            const char *svc, const char *port, struct kvm_kube_service *k,
                            char *err, size_t errlen);
void kvm_kube_service_clear(struct kvm_kube_service *k);

/* ---- kube/<cluster>/nodes/<node> ---- */

struct kv_kube_node_rec {
    const char *name, *cluster;
    const char *const *addresses;
    size_t n_addresses;
    bool ready, schedulable, excluded, selected, eligible;
    const json_t *labels; /* NULL: {} */
    const char *zone;     /* NULL: field left out */
};

/* Canonical bytes of a node value. Caller frees; NULL on ENOMEM. */
char *kv_kube_node_encode(const struct kv_kube_node_rec *r);

struct kvm_node {
    char *cluster, *name; /* from the key */
    char **addresses;     /* canonical IP texts */
    size_t n_addresses;
    bool eligible;
    char *zone; /* NULL: unknown (zone-aware backends treat it as another zone) */
};

int kvm_node_decode(const json_t *root, const char *cluster, const char *name, struct kvm_node *nd,
                    char *err, size_t errlen);
void kvm_node_clear(struct kvm_node *nd);
/* The address servers on this node get (addresses[0]), NULL if none. */
const char *kvm_node_server_address(const struct kvm_node *nd);
/* Whether ip (canonical text) is one of the node's addresses. */
bool kvm_node_has_address(const struct kvm_node *nd, const char *ip);

/* ---- kube/<cluster>/meta ---- */

struct kv_kube_meta_rec {
    const char *cluster;
    const char *exporter_version; /* NULL: "unknown" */
    int64_t last_full_sync_unix;
    size_t services, service_ports, nodes, eligible_nodes, skipped_services;
    bool kse_compat;
};

/* Canonical bytes of the meta value. Caller frees; NULL on ENOMEM. */
char *kv_kube_meta_encode(const struct kv_kube_meta_rec *m);

#endif
