/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kv_servers: the servers of one backend of an HAProxy service definition
 * (docs/kv-schema.md, haproxy/ section), as drover-watcher renders them and
 * droverctl counts them: every static server, plus, for each kube
 * reference whose service port is in KV, one server per eligible node of
 * that cluster at the node's server address (kvm_node_server_address)
 * and the port's node_port, weight 100. A server's identity is
 * "address:port" ("[v6]:port"); the first of several with one identity
 * stands (static servers first, then kube references in order).
 */
#ifndef DROVER_KV_SERVERS_H
#define DROVER_KV_SERVERS_H

#include <stddef.h>
#include <stdint.h>

#include "kv_haproxy.h"
#include "kv_kube.h"

struct kv_server {
    char id[80];      /* "addr:port" or "[addr]:port" */
    const char *addr; /* canonical IP, borrowed from the inputs */
    uint16_t port;
    int weight;
    const char *node, *node_cluster; /* kube servers; NULL for static ones */
    const char *static_name;         /* static servers; NULL for kube ones */
    const char *zone;                /* the node's zone; NULL: unknown or static */
    size_t seq;                      /* enumeration order */
};

/* The kube service port a reference names, or NULL when not in KV. */
typedef const struct kvm_kube_service *(*kv_kube_lookup_fn)(void *arg,
                                                            const struct kvm_kube_ref *ref);

/* Servers of be, sorted by id, each id once. *out malloc'd (free it; its
 * strings are borrowed from be and nodes). 0 or -ENOMEM. */
int kv_backend_servers(const struct kvm_backend *be, kv_kube_lookup_fn lookup, void *arg,
                       const struct kvm_node *nodes, size_t n_nodes, struct kv_server **out,
                       size_t *n);

/* Format a server id into buf (at least sizeof(struct kv_server).id). */
void kv_server_id(const char *addr, uint16_t port, char *buf, size_t len);

#endif
