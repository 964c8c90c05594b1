/* SPDX-License-Identifier: Apache-2.0 */
/*
 * director_counters: slots and sums of the per-VIP and per-proxy traffic
 * counters. See director_counters.h.
 */
#include "director_counters.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "director_config.h"
#include "director_maps.h"
#include "log.h"

int director_counters_assign(int32_t *ids, size_t n, const bool *used_before, size_t limit,
                             uint32_t *fresh, size_t *nfresh)
{
    bool *taken = calloc(limit ? limit : 1, sizeof(*taken));
    size_t next = 0;
    int rc = 0;

    *nfresh = 0;
    if (!taken)
        return -ENOMEM;
    /* Keepers first, so a newcomer earlier in the list cannot take the
     * slot of a proxy that had it. */
    for (size_t i = 0; i < n; i++) {
        if (ids[i] >= 0 && (size_t)ids[i] < limit && !taken[ids[i]])
            taken[ids[i]] = true;
        else
            ids[i] = -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (ids[i] >= 0)
            continue;
        while (next < limit && (taken[next] || (used_before && used_before[next])))
            next++;
        if (next == limit) {
            rc = -ENOSPC;
            break;
        }
        taken[next] = true;
        ids[i] = (int32_t)next;
        fresh[(*nfresh)++] = (uint32_t)next;
    }
    free(taken);
    return rc;
}

static int ncpus(void)
{
    int n = libbpf_num_possible_cpus();
    return n > 0 ? n : -EINVAL;
}

int director_counters_zero(int fd, const uint32_t *ids, size_t n, size_t value_size)
{
    int ncpu = ncpus();

    if (ncpu < 0)
        return ncpu;
    /* per-CPU values are laid out at an 8-byte stride */
    void *zero = calloc((size_t)ncpu, (value_size + 7) & ~(size_t)7);
    if (!zero)
        return -ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (bpf_map_update_elem(fd, &ids[i], zero, BPF_ANY) < 0) {
            rc = -errno;
            log_error("director: zeroing counter slot %u (map fd %d) failed: %s", ids[i], fd,
                      strerror(errno));
        }
    }
    free(zero);
    return rc;
}

/* Zero entries [0..entries) of per-CPU array fd. */
static int zero_all(int fd, uint32_t entries, size_t value_size)
{
    uint32_t *ids = calloc(entries, sizeof(*ids));
    int rc;

    if (!ids)
        return -ENOMEM;
    for (uint32_t i = 0; i < entries; i++)
        ids[i] = i;
    rc = director_counters_zero(fd, ids, entries, value_size);
    free(ids);
    return rc;
}

int director_counters_reset(int vip_ctr_fd, int proxy_ctr_fd)
{
    int rc = zero_all(vip_ctr_fd, DROVER_MAX_VIPS, sizeof(struct drover_vip_counters));

    return rc < 0
               ? rc
               : zero_all(proxy_ctr_fd, DROVER_MAX_PROXIES, sizeof(struct drover_proxy_counters));
}

int director_counters_sum(int fd, uint32_t id, uint64_t *words, size_t nwords)
{
    int ncpu = ncpus();

    if (ncpu < 0)
        return ncpu;
    uint64_t *per = calloc((size_t)ncpu * nwords, sizeof(*per));
    if (!per)
        return -ENOMEM;
    int rc = 0;
    if (bpf_map_lookup_elem(fd, &id, per) < 0) {
        rc = -errno;
        log_error("director: read of counter slot %u (map fd %d) failed: %s", id, fd,
                  strerror(errno));
    } else {
        memset(words, 0, nwords * sizeof(*words));
        for (int c = 0; c < ncpu; c++)
            for (size_t w = 0; w < nwords; w++)
                words[w] += per[(size_t)c * nwords + w];
    }
    free(per);
    return rc;
}

static bool same_proxy(const struct drover_proxy *a, const struct drover_proxy *b)
{
    return a->family == b->family && memcmp(a->addr, b->addr, sizeof(a->addr)) == 0;
}

int director_counters_proxy_slots(int ctr_fd, const struct drover_proxy *prev, size_t nprev,
                                  struct drover_proxy *proxies, size_t n)
{
    bool *used = calloc(DROVER_MAX_PROXIES, sizeof(*used));
    int32_t *ids = calloc(n ? n : 1, sizeof(*ids));
    uint32_t *fresh = calloc(n ? n : 1, sizeof(*fresh));
    size_t nfresh = 0;
    int rc = -ENOMEM;

    if (!used || !ids || !fresh)
        goto out;
    for (size_t j = 0; j < nprev; j++)
        if (prev[j].family != DROVER_AF_NONE && prev[j].stat_slot < DROVER_MAX_PROXIES)
            used[prev[j].stat_slot] = true;
    for (size_t i = 0; i < n; i++) {
        ids[i] = -1;
        for (size_t j = 0; j < nprev && ids[i] < 0; j++)
            if (prev[j].family != DROVER_AF_NONE && same_proxy(&prev[j], &proxies[i]))
                ids[i] = prev[j].stat_slot;
    }
    rc = director_counters_assign(ids, n, used, DROVER_MAX_PROXIES, fresh, &nfresh);
    if (rc < 0) {
        log_error("director: no free proxy counter slot for %zu proxies", n);
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        proxies[i].stat_slot = (__u16)ids[i];
    rc = director_counters_zero(ctr_fd, fresh, nfresh, sizeof(struct drover_proxy_counters));
out:
    free(used);
    free(ids);
    free(fresh);
    return rc;
}

void director_vip_name(const struct drover_vip_key *k, char *buf, size_t len)
{
    char addr[INET6_ADDRSTRLEN];
    const char *proto = k->proto == IPPROTO_TCP ? "tcp" : k->proto == IPPROTO_UDP ? "udp" : "?";

    director_format_addr(k->family, k->addr, addr, sizeof(addr));
    snprintf(buf, len, k->family == DROVER_AF_INET6 ? "[%s]:%u/%s" : "%s:%u/%s", addr,
             ntohs(k->port), proto);
}

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const struct director_traffic_entry *)a)->name,
                  ((const struct director_traffic_entry *)b)->name);
}

static int read_vips(const struct director_maps *m, struct director_traffic *out)
{
    struct drover_vip_key cur, next;
    struct drover_vip_value v;
    int more = bpf_map_get_next_key(m->vips_fd, NULL, &cur) == 0;

    out->vips = calloc(DROVER_MAX_VIPS, sizeof(*out->vips));
    if (!out->vips)
        return -ENOMEM;
    while (more && out->n_vips < DROVER_MAX_VIPS) {
        uint64_t w[3];
        if (bpf_map_lookup_elem(m->vips_fd, &cur, &v) == 0 && v.vip_id < DROVER_MAX_VIPS &&
            director_counters_sum(m->vip_ctr_fd, v.vip_id, w, 3) == 0) {
            struct director_traffic_entry *e = &out->vips[out->n_vips++];
            director_vip_name(&cur, e->name, sizeof(e->name));
            e->packets = w[0];
            e->bytes = w[1];
            e->drops = w[2];
        }
        more = bpf_map_get_next_key(m->vips_fd, &cur, &next) == 0;
        cur = next;
    }
    qsort(out->vips, out->n_vips, sizeof(*out->vips), entry_cmp);
    return 0;
}

static int read_proxies(const struct director_maps *m, struct director_traffic *out)
{
    struct drover_gen_config cfg;
    struct drover_proxy *px = calloc(DROVER_MAX_PROXIES, sizeof(*px));
    __u32 gen;
    int rc;

    out->proxies = calloc(DROVER_MAX_PROXIES, sizeof(*out->proxies));
    if (!px || !out->proxies) {
        free(px);
        return -ENOMEM;
    }
    if ((rc = director_maps_active(m, &gen)) < 0 ||
        (rc = director_maps_read_gen(m, gen, &cfg, px)) < 0)
        goto out;
    for (__u32 i = 0; i < cfg.proxy_count && i < DROVER_MAX_PROXIES; i++) {
        uint64_t w[2];
        if (px[i].family == DROVER_AF_NONE ||
            director_counters_sum(m->proxy_ctr_fd, px[i].stat_slot, w, 2) < 0)
            continue;
        struct director_traffic_entry *e = &out->proxies[out->n_proxies++];
        director_format_addr(px[i].family, px[i].addr, e->name, sizeof(e->name));
        e->packets = w[0];
        e->bytes = w[1];
    }
    qsort(out->proxies, out->n_proxies, sizeof(*out->proxies), entry_cmp);
out:
    free(px);
    return rc;
}

_Static_assert(sizeof(struct drover_vip_counters) == 3 * sizeof(uint64_t), "VIP counter words");
_Static_assert(sizeof(struct drover_proxy_counters) == 2 * sizeof(uint64_t), "proxy counter words");

int director_traffic_read(const struct director_maps *m, struct director_traffic *out)
{
    int rc;

    memset(out, 0, sizeof(*out));
    if ((rc = read_vips(m, out)) < 0)
        return rc;
    return read_proxies(m, out);
}

int director_traffic_read_pinned(const char *pin_dir, struct director_traffic *out)
{
    struct director_maps m;
    int rc;

    memset(out, 0, sizeof(*out));
    if ((rc = director_maps_open_pinned(pin_dir, &m)) < 0)
        return rc;
    rc = director_traffic_read(&m, out);
    director_maps_close(&m);
    return rc;
}

void director_traffic_free(struct director_traffic *t)
{
    free(t->vips);
    free(t->proxies);
    memset(t, 0, sizeof(*t));
}
