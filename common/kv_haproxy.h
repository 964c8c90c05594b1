/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kv_haproxy: the schema module of R haproxy/<cluster>/... (contract:
 * docs/kv-schema.md):
 *
 *   services/<name>          an HAProxy service definition (kvm_service)
 *   force-removal/<backend>  a mass-removal override (kvm_force)
 *
 * Decoding validates every field that can reach HAProxy configuration with
 * the value kinds of haproxy_value.h, so a bad value is refused with a
 * message naming the field path long before a render. drover-watcher and
 * droverctl decode service definitions here; the servers of a backend are
 * enumerated by kv_servers.h.
 */
#ifndef DROVER_KV_HAPROXY_H
#define DROVER_KV_HAPROXY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KV_HAPROXY_DEFAULT_SLOTS  16
#define KV_HAPROXY_MAX_SLOTS      4096
#define KV_HAPROXY_DEFAULT_WEIGHT 100
/* The frontend the templates render for HAProxy's Prometheus exporter
 * (service field "metrics"); no frontend of a definition may take it. */
#define KV_HAPROXY_METRICS_FRONTEND "drover_metrics"

enum kvm_check_type {
    KVM_CHECK_NONE = 0, /* no "check": kube services' health check port applies */
    KVM_CHECK_TCP,
    KVM_CHECK_HTTP,
    KVM_CHECK_MYSQL,
    KVM_CHECK_OFF, /* "type": "none": explicitly no health check */
};

struct kvm_bind {
    char *addr; /* canonical IP text */
    uint16_t port;
};

struct kvm_route {
    char *host;     /* Host header (http) or SNI (tcp) name */
    bool sni;       /* given as "sni" rather than "host" */
    char *backend;  /* a backend of the same service */
    bool generated; /* from a class selector: served through the frontend's map */
};

/* One entry of a TLS frontend's crt-list (docs/kv-schema.md, "TLS
 * termination"): a certificate file and what HAProxy may pick it for. */
struct kvm_tls_cert {
    char *file; /* absolute path of the PEM (chain + key) */
    char **sni; /* SNI filters (host words); none = the certificate's own names */
    size_t n_sni;
    char *alpn; /* "h2,http/1.1" style, NULL = the bind line's */
};

/* TLS from HAProxy to the servers with the servers' certificates verified
 * (docs/kv-schema.md, "Verified TLS to servers"). */
struct kvm_server_tls {
    char *ca_file;     /* CA bundle (PEM); NULL = not given */
    char *verify_name; /* name sent as SNI and checked in the certificate; NULL = none */
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
    /* TLS termination ("tls"): the crt-list entries every bind serves,
     * their files hot-swapped through the runtime API when they change;
     * none = plain TCP/HTTP */
    struct kvm_tls_cert *tls_certs;
    size_t n_tls_certs;
    char *alpn;     /* "h2,http/1.1" style, NULL = no ALPN offered */
    bool generated; /* a dedicated bind of a class selector (listen_port) */
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
    /* what the servers speak (generated backends: the kube entry's
     * backend_protocol): NULL, "http", "tcp", "tls" = as is; "https" and
     * "h2" = TLS to the server (ALPN http/1.1, h2), "h2c" = cleartext h2 */
    char *protocol;
    /* verified TLS to the servers ("server_tls", or the selector's for an
     * https/h2 generated backend); ca_file NULL = none (https/h2: verify none) */
    struct kvm_server_tls server_tls;
    /* Zone preference (docs/watcher.md#zone-aware-backends): servers on
     * nodes of the proxy host's zone take the traffic, the others are
     * HAProxy backups that all take over when none of those is up. */
    bool prefer_local_zone;
};

/* A class selector: every exported kube service port with this
 * load_balancer_class (and namespace, labels) gets a generated backend and
 * its route (docs/kv-schema.md, "Class selectors"). */
struct kvm_selector {
    char *lb_class;    /* load_balancer_class to match */
    char *namespace;   /* NULL = any namespace */
    char **label_keys; /* labels that must all be present with these values */
    char **label_values;
    size_t n_labels;
    char *frontend;         /* frontend receiving the routes (a frontend of the service) */
    char *balance;          /* of generated backends, default roundrobin */
    int64_t slots;          /* of generated backends, default 16 */
    bool prefer_local_zone; /* of generated backends */
    struct kvm_server_tls server_tls; /* of generated https/h2 backends */
};

struct kvm_service {
    char *key; /* the KV key it came from */
    char *name;
    char *template_name;
    struct kvm_frontend *frontends;
    size_t n_frontends;
    struct kvm_backend *backends;
    size_t n_backends;
    size_t n_explicit_backends; /* backends[0..n) from the definition, the rest generated */
    struct kvm_selector *selectors;
    size_t n_selectors;
    int64_t timeout_client_ms, timeout_connect_ms, timeout_server_ms; /* 0 = unset */
    struct kvm_bind *metrics_binds; /* HAProxy's Prometheus exporter; none = not served */
    size_t n_metrics_binds;
};

struct kvm_force {
    char *backend;
    int64_t expires; /* unix seconds */
    char *author, *reason;
};

/* Decode the value of haproxy/<cluster>/services/<name> (root: the parsed
 * JSON). name comes from the key and is validated too. 0, -EINVAL (err
 * names the field path) or -ENOMEM; *s is filled in part on failure:
 * release it with kvm_service_clear either way. */
int kvm_service_decode(const json_t *root, const char *name, struct kvm_service *s, char *err,
                       size_t errlen);
void kvm_service_clear(struct kvm_service *s);

/* Deep copies (0 or -ENOMEM; *out is empty on failure) and releases of
 * the TLS parts, for the watcher's generated frontends and backends. */
int kvm_tls_cert_copy(const struct kvm_tls_cert *c, struct kvm_tls_cert *out);
void kvm_tls_cert_clear(struct kvm_tls_cert *c);
int kvm_server_tls_copy(const struct kvm_server_tls *t, struct kvm_server_tls *out);
void kvm_server_tls_clear(struct kvm_server_tls *t);

/* Decode a force-removal value ("expires" required). 0, -EINVAL, -ENOMEM;
 * f->backend is left to the caller. Release with kvm_force_clear. */
int kvm_force_decode(const json_t *root, struct kvm_force *f, char *err, size_t errlen);
void kvm_force_clear(struct kvm_force *f);

#endif
