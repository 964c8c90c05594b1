/* SPDX-License-Identifier: Apache-2.0 */
/*
 * director_counters: the director's per-VIP and per-proxy traffic
 * counters (drover_vip_ctr, drover_proxy_ctr; per-CPU arrays written by
 * the BPF program without atomics) seen from user space: who gets which
 * counter slot, and reading them summed over CPUs.
 *
 * Slots are stable: a VIP keeps its vip_id and a proxy (by address) its
 * stat_slot for as long as it stays, so a table change does not move
 * counts between proxies. A slot given to a newcomer is one no live
 * generation uses, and it is zeroed before the generation that uses it is
 * published, so a newcomer starts at 0 (a counter reset to Prometheus).
 */
#ifndef DROVER_DIRECTOR_COUNTERS_H
#define DROVER_DIRECTOR_COUNTERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "drover_maps.h"

/* Assign ids[0..n): an id >= 0 already there (the item's previous slot) is
 * kept unless an earlier item took it or it is >= limit; every other item
 * gets the lowest id below limit that is neither in used_before[] (bool per
 * id: slots a live generation still uses) nor given to an earlier item.
 * Those new ids are appended to fresh[] (*nfresh; room for n). Pure.
 * 0, or -ENOSPC when limit ids do not suffice (ids then partly assigned). */
int director_counters_assign(int32_t *ids, size_t n, const bool *used_before, size_t limit,
                             uint32_t *fresh, size_t *nfresh);

/* Give proxies[0..n) their stat_slot from prev[0..nprev) (the generation
 * still live; NULL/0 when none) and zero the counters of new slots in the
 * per-CPU map ctr_fd. 0 or -errno (logged). */
int director_counters_proxy_slots(int ctr_fd, const struct drover_proxy *prev, size_t nprev,
                                  struct drover_proxy *proxies, size_t n);

/* Zero entries ids[0..n) of per-CPU array fd with values of value_size. */
int director_counters_zero(int fd, const uint32_t *ids, size_t n, size_t value_size);

/* Zero every VIP counter (vip_ctr_fd, drover_vip_ctr) and every proxy
 * counter (proxy_ctr_fd, drover_proxy_ctr): counts from before a period
 * the maps were not counted in. 0 or -errno (logged). */
int director_counters_reset(int vip_ctr_fd, int proxy_ctr_fd);

/* Entry id of per-CPU array fd, summed over CPUs as nwords 64-bit words. */
int director_counters_sum(int fd, uint32_t id, uint64_t *words, size_t nwords);

/* One VIP's or proxy's counters as drover-director stats and /metrics show
 * them; name is "192.0.2.1:443/tcp", "[2001:db8::1]:443/udp" or a proxy
 * address. */
struct director_traffic_entry {
    char name[64];
    uint64_t packets, bytes, drops; /* drops: VIPs only */
};

struct director_traffic {
    struct director_traffic_entry *vips, *proxies; /* malloc'd */
    size_t n_vips, n_proxies;
};

struct director_maps;

/* Read every VIP's counters and those of the active generation's proxies
 * (lists sorted by name) from m, or from the maps pinned in pin_dir. 0 or
 * -errno (logged, naming the map or pin). Free with director_traffic_free(),
 * also after a failure. */
int director_traffic_read(const struct director_maps *m, struct director_traffic *out);
int director_traffic_read_pinned(const char *pin_dir, struct director_traffic *out);
void director_traffic_free(struct director_traffic *t);

/* "192.0.2.1:443/tcp" for k. */
void director_vip_name(const struct drover_vip_key *k, char *buf, size_t len);

#endif
