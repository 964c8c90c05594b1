/* SPDX-License-Identifier: Apache-2.0 */
/*
 * director_maps: user-space access to the director's and the decap
 * program's BPF maps, by fd or through their pins in the pin directory
 * (director_pin_dir: one file per map, named as the map). The lower layer
 * of director_publish, which is what the programs call.
 *
 * Publishing a generation: write the inactive generation's config, proxies
 * and table rows, then flip drover_active (one 4-byte store). Packets read
 * the active index first, so each sees either the old or the new generation
 * whole. director_maps_activate() then waits for an RCU grace period
 * (membarrier), so when it returns no packet still reads the old generation
 * and the next publish may overwrite it. director_maps_publish() does all
 * of it; director_publish verifies with director_maps_checksum() against
 * director_generation_checksum() of what it meant to write.
 */
#ifndef DROVER_DIRECTOR_MAPS_H
#define DROVER_DIRECTOR_MAPS_H

#include <stddef.h>

#include "drover_maps.h"

struct bpf_object;

/* Map names; the pin file names are the same. */
#define DIRECTOR_MAP_VIPS      "drover_vips"
#define DIRECTOR_MAP_TABLE     "drover_table"
#define DIRECTOR_MAP_PROXIES   "drover_proxies"
#define DIRECTOR_MAP_GEN_CFG   "drover_gen_cfg"
#define DIRECTOR_MAP_ACTIVE    "drover_active"
#define DIRECTOR_MAP_STATS     "drover_stats"
#define DIRECTOR_MAP_VIP_IDX   "drover_vip_idx"
#define DIRECTOR_MAP_VIP_ACT   "drover_vip_act"
#define DIRECTOR_MAP_VIP_CTR   "drover_vip_ctr"
#define DIRECTOR_MAP_PROXY_CTR "drover_proxy_ctr"
#define DECAP_MAP_CONFIG       "decap_config"
#define DECAP_MAP_STATS        "decap_stats"

struct director_maps {
    int vips_fd, table_fd, proxies_fd, gen_cfg_fd, active_fd, stats_fd, vip_idx_fd, vip_act_fd;
    int vip_ctr_fd, proxy_ctr_fd;      /* traffic counters (director_counters.h) */
    struct drover_row *table;          /* mmap of drover_table (both generations) */
    struct drover_vip_slot *vip_index; /* mmap of drover_vip_idx (both halves) */
    int owns_fds;
    int lock_fd; /* the pin directory, flock()ed while publishing; -1 if none.
                  * Owned (closed by director_maps_close) when set. */
    int locked;  /* director_maps_lock() holds the lock: the calls below do
                  * not take it again */
};

/* What must match for a pinned map to be shared: the kernel's map type,
 * key and value size, max entries and map flags (what libbpf compares
 * before it reuses a pin). */
struct director_map_layout {
    __u32 type, key_size, value_size, max_entries, flags;
};
/* 0 if the map fd (pinned at path) has layout want; else -EPROTO (or the
 * -errno of reading its info), logged naming path and, for every field
 * that differs, both values. */
int director_map_check_layout(int fd, const char *path, const struct director_map_layout *want);

/* Open the pins in dir (e.g. /sys/fs/bpf/drover/eth0). 0 or -errno; the
 * error is logged naming the pin. Close with director_maps_close(). */
int director_maps_open_pinned(const char *dir, struct director_maps *m);
/* Use the maps of a loaded director BPF object (skel->obj); the object
 * keeps owning their fds. */
int director_maps_from_object(struct director_maps *m, struct bpf_object *obj);
void director_maps_close(struct director_maps *m);

int director_maps_active(const struct director_maps *m, __u32 *gen);
/* Write generation gen (not the active one, unless nothing is active
 * yet): cfg, proxies[0..cfg->proxy_count), rows[DROVER_TABLE_ROWS]. Unused
 * proxy slots are cleared. The proxies' stat_slot given here is ignored:
 * each keeps the counter slot its address has in the active generation, a
 * new one gets a zeroed free slot (director_counters.h). */
int director_maps_write_gen(struct director_maps *m, __u32 gen, const struct drover_gen_config *cfg,
                            const struct drover_proxy *proxies, const struct drover_row *rows);
int director_maps_activate(struct director_maps *m, __u32 gen);

/* The publish lock: an exclusive flock on the pin directory (none for maps
 * without one). Publishers (watcher, `drover-director attach/apply`) hold
 * it across everything a publish reads and writes - the active generation
 * whose settings or version they go by, the generation, the VIP set - so
 * nothing another publisher writes falls between their read and their
 * write. While it is held, director_maps_publish() and
 * director_maps_set_vips() do not take it again. 0 or -errno (logged);
 * unlock only after a lock that returned 0. */
int director_maps_lock(struct director_maps *m);
void director_maps_unlock(struct director_maps *m);

/* Write the inactive generation and activate it; *gen_out = new active.
 * Takes the publish lock unless the caller holds it. Over an active
 * generation of another maps version (or none written yet) the traffic
 * counter maps are zeroed first: they may have outlived a period of a
 * version that does not count (a rollback to version 2, whose detach
 * leaves them pinned), and their counts are not this run's. */
int director_maps_publish(struct director_maps *m, const struct drover_gen_config *cfg,
                          const struct drover_proxy *proxies, const struct drover_row *rows,
                          __u32 *gen_out);
/* Read generation gen back and checksum it (director_generation_checksum). */
int director_maps_checksum(const struct director_maps *m, __u32 gen, __u64 *sum);
/* Read one generation's config and proxies (proxies: DROVER_MAX_PROXIES). */
int director_maps_read_gen(const struct director_maps *m, __u32 gen, struct drover_gen_config *cfg,
                           struct drover_proxy *proxies);

/* Make the VIP set exactly keys[0..n): add the missing ones to the hash
 * map, rebuild the VIP index in its inactive half and flip it (same RCU
 * wait as a generation), then delete the stale keys. A VIP that stays
 * keeps its vip_id (its counters); a new one gets a zeroed free one.
 * Takes the publish lock unless the caller holds it. */
int director_maps_set_vips(struct director_maps *m, const struct drover_vip_key *keys, size_t n);
int director_maps_count_vips(const struct director_maps *m, size_t *n);

/* Fill the derived fields of a generation config (sip_init,
 * ip4_csum_base) from the others. director_maps_write_gen() calls it on
 * its own copy, so callers never have to. */
void director_gen_derive(struct drover_gen_config *cfg);

/* FNV-1a 64 checksum of a generation as the director sees it: config
 * (with derived fields), the first proxy_count proxies (without their
 * stat_slot, which is per director) and all rows. The
 * same function runs over what user space meant to write and over what it
 * reads back from the maps. */
__u64 director_generation_checksum(const struct drover_gen_config *cfg,
                                   const struct drover_proxy *proxies,
                                   const struct drover_row *rows);

/* Sum a per-CPU drover_stats map over CPUs into out[DROVER_STAT_MAX]. */
int director_stats_read(int stats_fd, __u64 out[DROVER_STAT_MAX]);
const char *director_stat_name(int stat);
/* Whether a counter belongs to the decap program (else: the director).
 * rx and pass_no_config belong to both. */
int director_stat_in_decap(int stat);
int director_stat_in_director(int stat);

/* Decap side: write the config map (gue_port in host order). */
int decap_maps_configure(int config_fd, __u16 gue_port);

#endif
