/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kv_model: the typed view of the Consul KV entries drover-watcher reads
 * (contract: docs/kv-schema.md). It owns the parsing and validation of
 *
 *   R haproxy/<cluster>/services/<name>          HAProxy service definitions
 *   R haproxy/<cluster>/force-removal/<backend>  mass-removal overrides
 *   R kube/<cluster>/services/<ns>/<svc>/<port>  exporter service ports
 *   R kube/<cluster>/nodes/<node>                exporter nodes
 *   R maintenance/{node,addr,server}/...         droverctl maintenance
 *
 * Every field that can reach HAProxy configuration is checked here with the
 * same value kinds the templates use (haproxy_value.h), so a bad value is
 * refused with a message naming the key long before a render. A bad entry
 * is skipped and counted per prefix (never failing the whole model); keys
 * the watcher does not consume (meta, leader, other clusters) are ignored.
 *
 * A model is filled entry by entry (kv_model_add) and then only read.
 * Strings are owned by the model; kv_model_free releases everything.
 */
#ifndef DROVER_WATCHER_KV_MODEL_H
#define DROVER_WATCHER_KV_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Which keys this watcher consumes. Strings are borrowed. */
struct kv_model_opts {
    const char *root;            /* "drover/v1/" (ends in '/') */
    const char *haproxy_cluster; /* <cluster> of haproxy/<cluster>/ */
    const char *const *kube_clusters;
    size_t n_kube_clusters;
};

enum kvm_check_type {
    KVM_CHECK_NONE = 0, /* no "check": kube services' health check port applies */
    KVM_CHECK_TCP,
    KVM_CHECK_HTTP,
    KVM_CHECK_MYSQL,
    KVM_CHECK_OFF, /* "type": "none": explicitly no health check */
};

enum kvm_admin {
    KVM_ADMIN_READY = 0,
    KVM_ADMIN_DRAIN,
    KVM_ADMIN_MAINT,
};

struct kvm_bind {
    char *addr; /* canonical IP text */
    uint16_t port;
};

struct kvm_route {
    char *host;    /* Host header (http) or SNI (tcp) name */
    bool sni;      /* given as "sni" rather than "host" */
    char *backend; /* a backend of the same service */
};

struct kvm_frontend {
    char *name;
    char *mode; /* "http" | "tcp" */
    struct kvm_bind *binds;
    size_t n_binds;
    struct kvm_route *routes;
    size_t n_routes;
    char *default_backend; /* NULL if none */
    int64_t maxconn;       /* 0 = unset */
};

struct kvm_kube_ref {
    char *cluster, *namespace, *service, *port;
};

struct kvm_static_server {
    char *name;
    char *address; /* canonical IP text */
    uint16_t port;
    int weight;
};

struct kvm_check {
    enum kvm_check_type type;
    char *path;         /* http */
    char *user;         /* mysql */
    uint16_t port;      /* 0 = the server's port */
    int64_t inter_ms;   /* default 2000 */
    int64_t rise, fall; /* default 2 / 3 */
};

struct kvm_backend {
    char *name;
    char *mode;    /* "http" | "tcp" */
    char *balance; /* roundrobin, leastconn, ... */
    struct kvm_kube_ref *kube;
    size_t n_kube;
    struct kvm_static_server *servers;
    size_t n_servers;
    struct kvm_check check;
    uint16_t agent_port;    /* 0 = the watcher's --agent-port */
    int64_t agent_inter_ms; /* 0 = the watcher's default */
    int64_t slots;          /* server slots (>= number of servers; default 16) */
    int64_t timeout_connect_ms, timeout_server_ms, timeout_check_ms; /* 0 = unset */
    double max_removal_share; /* < 0: --max-removal-share applies */
};

struct kvm_service {
    char *key; /* the KV key it came from */
    char *name;
    char *template_name;
    struct kvm_frontend *frontends;
    size_t n_frontends;
    struct kvm_backend *backends;
    size_t n_backends;
    int64_t timeout_client_ms, timeout_connect_ms, timeout_server_ms; /* 0 = unset */
};

struct kvm_kube_service {
    char *cluster, *namespace, *service, *port_name;
    uint16_t node_port;
    uint16_t health_check_port; /* 0 if absent */
    char *health_check_path;    /* NULL: TCP check */
    bool proxy_protocol;
};

struct kvm_node {
    char *cluster, *name;
    char **addresses; /* canonical IP texts */
    size_t n_addresses;
    bool eligible;
};

enum kvm_maint_kind {
    KVM_MAINT_NODE = 0, /* a = cluster, b = node */
    KVM_MAINT_ADDR,     /* a = canonical ip, b = NULL */
    KVM_MAINT_SERVER,   /* a = backend, b = server */
};

struct kvm_maint {
    enum kvm_maint_kind kind;
    char *a, *b;
    enum kvm_admin admin;
    int weight; /* 0..256 percent, -1 = unset */
    char *reason, *author;
    int64_t expires; /* unix seconds, 0 = never */
};

struct kvm_force {
    char *backend;
    int64_t expires; /* unix seconds */
    char *author, *reason;
};

/* Bad-entry counters by prefix (metric label "prefix"). */
enum kvm_prefix {
    KVM_PREFIX_HAPROXY = 0,
    KVM_PREFIX_KUBE,
    KVM_PREFIX_MAINTENANCE,
    KVM_PREFIX_COUNT,
};
const char *kvm_prefix_name(enum kvm_prefix p);

struct kv_model {
    struct kvm_service *services;
    size_t n_services, cap_services;
    struct kvm_kube_service *kube_services;
    size_t n_kube_services, cap_kube_services;
    struct kvm_node *nodes;
    size_t n_nodes, cap_nodes;
    struct kvm_maint *maint;
    size_t n_maint, cap_maint;
    struct kvm_force *forces;
    size_t n_forces, cap_forces;
    uint64_t bad[KVM_PREFIX_COUNT];
    uint64_t ignored; /* keys not consumed (meta, leader, foreign) */
};

void kv_model_init(struct kv_model *m);
void kv_model_clear(struct kv_model *m);

/*
 * Parse one KV entry (value: len bytes, may be NULL) at wall-clock time now
 * (unix seconds; expired maintenance and force entries are dropped).
 * Returns 1 when the entry was added, 0 when the key is not one the
 * watcher consumes (or an expired entry), -EINVAL for a bad entry (counted
 * in m->bad, message naming the key in err), -ENOMEM.
 */
int kv_model_add(struct kv_model *m, const struct kv_model_opts *o, const char *key,
                 const char *value, size_t len, int64_t now, char *err, size_t errlen);

/* Sort every array by its key so equal inputs give equal models whatever
 * order Consul listed them in. Call once after the last kv_model_add. */
void kv_model_finish(struct kv_model *m);

/* Lookups on a finished model (NULL if absent). */
const struct kvm_kube_service *kv_model_kube_service(const struct kv_model *m, const char *cluster,
                                                     const char *ns, const char *svc,
                                                     const char *port);
const struct kvm_force *kv_model_force(const struct kv_model *m, const char *backend);

/* "ready" | "drain" | "maint". */
const char *kvm_admin_name(enum kvm_admin a);

#endif
