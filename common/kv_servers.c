/* SPDX-License-Identifier: Apache-2.0 */
/* kv_servers: the servers of one backend. See kv_servers.h. */
#include "kv_servers.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Append n bytes of p at *at, as far as buf[len] holds them with its NUL. */
static void id_put(char *buf, size_t len, size_t *at, const char *p, size_t n)
{
    if (*at + 1 >= len)
        return;
    if (n > len - 1 - *at)
        n = len - 1 - *at;
    memcpy(buf + *at, p, n);
    *at += n;
}

/* What snprintf "%s:%u" (IPv6: "[%s]:%u") writes, truncation included,
 * without the format parser: it runs for every server of every backend of
 * every snapshot build. */
void kv_server_id(const char *addr, uint16_t port, char *buf, size_t len)
{
    char digits[5];
    size_t at = 0, nd = 0;
    bool v6 = strchr(addr, ':') != NULL;

    if (!len)
        return;
    do
        digits[sizeof(digits) - ++nd] = (char)('0' + port % 10);
    while ((port /= 10) != 0);
    if (v6)
        id_put(buf, len, &at, "[", 1);
    id_put(buf, len, &at, addr, strlen(addr));
    id_put(buf, len, &at, v6 ? "]:" : ":", v6 ? 2 : 1);
    id_put(buf, len, &at, digits + sizeof(digits) - nd, nd);
    buf[at] = '\0';
}

static int cmp_server(const void *a, const void *b)
{
    const struct kv_server *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    /* equal ids: the earlier candidate first, so it is the one kept */
    return c ? c : (x->seq < y->seq ? -1 : x->seq > y->seq);
}

int kv_backend_servers(const struct kvm_backend *be, kv_kube_lookup_fn lookup, void *arg,
                       const struct kvm_node *nodes, size_t n_nodes, struct kv_server **out,
                       size_t *n)
{
    size_t cap = be->n_servers, k = 0;
    const struct kvm_kube_service **ks = calloc(be->n_kube + 1, sizeof(*ks));

    *out = NULL;
    *n = 0;
    if (!ks)
        return -ENOMEM;
    for (size_t r = 0; r < be->n_kube; r++) {
        ks[r] = lookup(arg, &be->kube[r]);
        for (size_t i = 0; ks[r] && i < n_nodes; i++)
            cap++;
    }
    struct kv_server *v = calloc(cap ? cap : 1, sizeof(*v));
    if (!v) {
        free(ks);
        return -ENOMEM;
    }
    for (size_t i = 0; i < be->n_servers; i++) {
        const struct kvm_static_server *st = &be->servers[i];
        v[k] = (struct kv_server){
            .addr = st->address, .port = st->port, .weight = st->weight, .static_name = st->name};
        kv_server_id(st->address, st->port, v[k].id, sizeof(v[k].id));
        v[k].seq = k;
        k++;
    }
    for (size_t r = 0; r < be->n_kube; r++) {
        for (size_t i = 0; ks[r] && i < n_nodes; i++) {
            const struct kvm_node *nd = &nodes[i];
            const char *addr = kvm_node_server_address(nd);
            if (!nd->eligible || !addr || strcmp(nd->cluster, be->kube[r].cluster) != 0)
                continue;
            v[k] = (struct kv_server){.addr = addr,
                                      .port = ks[r]->node_port,
                                      .weight = KV_HAPROXY_DEFAULT_WEIGHT,
                                      .node = nd->name,
                                      .node_cluster = nd->cluster,
                                      .zone = nd->zone};
            kv_server_id(addr, ks[r]->node_port, v[k].id, sizeof(v[k].id));
            v[k].seq = k;
            k++;
        }
    }
    free(ks);
    if (k > 1)
        qsort(v, k, sizeof(*v), cmp_server);
    size_t w = 0;
    for (size_t i = 0; i < k; i++)
        if (w == 0 || strcmp(v[w - 1].id, v[i].id) != 0)
            v[w++] = v[i];
    *out = v;
    *n = w;
    return 0;
}
