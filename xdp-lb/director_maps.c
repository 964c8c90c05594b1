/* SPDX-License-Identifier: Apache-2.0 */
#include "director_maps.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/membarrier.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "director_counters.h"
#include "drover_hash.h"
#include "log.h"

#define TABLE_BYTES ((size_t)DROVER_GENERATIONS * DROVER_TABLE_ROWS * sizeof(struct drover_row))

static const char *const stat_names[DROVER_STAT_MAX] = {
    [DROVER_STAT_RX] = "rx",
    [DROVER_STAT_PASS_NOT_IP] = "pass_not_ip",
    [DROVER_STAT_PASS_NON_VIP] = "pass_non_vip",
    [DROVER_STAT_PASS_MALFORMED] = "pass_malformed",
    [DROVER_STAT_PASS_FRAGMENT] = "pass_fragment",
    [DROVER_STAT_PASS_NO_CONFIG] = "pass_no_config",
    [DROVER_STAT_ENCAP_V4] = "encap_v4",
    [DROVER_STAT_ENCAP_V6] = "encap_v6",
    [DROVER_STAT_ENCAP_ICMP] = "encap_icmp",
    [DROVER_STAT_DROP_NO_PROXY] = "drop_no_proxy",
    [DROVER_STAT_DROP_NO_SOURCE] = "drop_no_source",
    [DROVER_STAT_DROP_ADJUST] = "drop_adjust_head",
    [DROVER_STAT_HOPS_FAMILY] = "hops_family_mismatch",
    [DROVER_STAT_DECAP_PASS_NOT_GUE] = "decap_pass_not_gue",
    [DROVER_STAT_DECAP_LOCAL] = "decap_local",
    [DROVER_STAT_DECAP_SYN_LOCAL] = "decap_syn_local",
    [DROVER_STAT_DECAP_SOCKET_LOCAL] = "decap_socket_local",
    [DROVER_STAT_DECAP_HOPS_DONE] = "decap_hops_exhausted",
    [DROVER_STAT_SECOND_CHANCE] = "second_chance",
    [DROVER_STAT_SECOND_CHANCE_PASS] = "second_chance_pass",
    [DROVER_STAT_DROP_BAD_GUE] = "drop_bad_gue",
    [DROVER_STAT_DROP_BAD_INNER] = "drop_bad_inner",
    [DROVER_STAT_DROP_TTL] = "drop_ttl_expired",
};

const char *director_stat_name(int stat)
{
    if (stat < 0 || stat >= DROVER_STAT_MAX || !stat_names[stat])
        return "unknown";
    return stat_names[stat];
}

int director_stat_in_decap(int stat)
{
    return stat == DROVER_STAT_RX || stat == DROVER_STAT_PASS_NO_CONFIG ||
           (stat >= DROVER_STAT_DECAP_PASS_NOT_GUE && stat < DROVER_STAT_MAX);
}

int director_stat_in_director(int stat)
{
    return stat >= 0 && stat < DROVER_STAT_DECAP_PASS_NOT_GUE;
}

/* The outer header templates of cfg (see struct drover_gen_config): the
 * bytes the director writes before the hop addresses, per-packet fields
 * zero. */
_Static_assert(DROVER_OUTER4_HDRS == 14 + 20 + 8 + 4 + 4 &&
                   DROVER_OUTER4_TMPL >= DROVER_OUTER4_HDRS,
               "IPv4 outer header template");
_Static_assert(DROVER_OUTER6_HDRS == 14 + 40 + 8 + 4 + 4 &&
                   DROVER_OUTER6_TMPL >= DROVER_OUTER6_HDRS,
               "IPv6 outer header template");

static void outer_templates(struct drover_gen_config *cfg)
{
    for (int v6 = 0; v6 < 2; v6++) {
        __u8 *t = v6 ? cfg->outer6 : cfg->outer4;
        size_t ip = v6 ? 40 : 20, o = 0;

        memset(t, 0, v6 ? sizeof(cfg->outer6) : sizeof(cfg->outer4));
        memcpy(t, cfg->gw_mac, 6);
        memcpy(t + 6, cfg->src_mac, 6);
        t[12] = v6 ? 0x86 : 0x08;
        t[13] = v6 ? 0xdd : 0x00;
        o = 14;
        if (v6) {
            /* version, class and flow label (per packet), payload length (per packet) */
            t[o + 6] = 17; /* next header: UDP */
            t[o + 7] = DROVER_OUTER_TTL;
            memcpy(t + o + 8, cfg->src_v6, 16);
        } else {
            t[o] = 0x45;
            t[o + 8] = DROVER_OUTER_TTL;
            t[o + 9] = 17;
            memcpy(t + o + 12, &cfg->src_v4, 4);
        }
        o += ip;
        memcpy(t + o + 2, &cfg->gue_port, 2); /* UDP destination, network order */
        o += 8;
        t[o] = DROVER_GUE_HLEN(DROVER_DIRECTOR_HOPS, v6 ? 16 : 4);
        o += 4;
        t[o] = DROVER_HOPS_VERSION;
        t[o + 1] = v6 ? DROVER_AF_INET6 : DROVER_AF_INET;
        t[o + 3] = 1; /* next_hop */
    }
}

void director_gen_derive(struct drover_gen_config *cfg)
{
    /* The outer IPv4 header as the director writes it, with the per-packet
     * words (total length, destination) and the checksum left zero. */
    struct {
        __u8 ver_ihl, tos;
        __u16 tot_len, id, frag_off;
        __u8 ttl, protocol;
        __u16 check;
        __u32 saddr, daddr;
    } __attribute__((packed)) h = {0x45, 0, 0, 0, 0, DROVER_OUTER_TTL, 17, 0, cfg->src_v4, 0};
    __u16 words[10];
    __u32 sum = 0;

    memcpy(words, &h, sizeof(words));
    for (int i = 0; i < 10; i++)
        sum += words[i];
    cfg->ip4_csum_base = sum;
    drover_siphash_init(cfg->hash_key, cfg->sip_init);
    outer_templates(cfg);
}

static __u64 fnv(__u64 h, const void *data, size_t len)
{
    const unsigned char *p = data;

    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

__u64 director_generation_checksum(const struct drover_gen_config *cfg,
                                   const struct drover_proxy *proxies,
                                   const struct drover_row *rows)
{
    struct drover_gen_config c = *cfg;
    __u64 h = 0xcbf29ce484222325ULL;
    __u32 n = c.proxy_count > DROVER_MAX_PROXIES ? DROVER_MAX_PROXIES : c.proxy_count;

    director_gen_derive(&c);
    h = fnv(h, &c, sizeof(c));
    for (__u32 i = 0; i < n; i++) {
        struct drover_proxy p = proxies[i];
        p.stat_slot = 0;
        h = fnv(h, &p, sizeof(p));
    }
    h = fnv(h, rows, DROVER_TABLE_ROWS * sizeof(*rows));
    return h;
}

#define VIP_INDEX_BYTES                                                                            \
    ((size_t)DROVER_GENERATIONS * DROVER_VIP_SLOTS * sizeof(struct drover_vip_slot))

/* Every director map: name (= pin name), the layout this build gives it
 * (bpf/director.bpf.c) and where its fd lives in struct director_maps. */
#define ARRAY(n, value, entries, flags)                                                            \
    n,                                                                                             \
    {                                                                                              \
        BPF_MAP_TYPE_ARRAY, 4, sizeof(value), entries, flags                                       \
    }
#define PERCPU(n, value, entries)                                                                  \
    n,                                                                                             \
    {                                                                                              \
        BPF_MAP_TYPE_PERCPU_ARRAY, 4, sizeof(value), entries, 0                                    \
    }
static const struct {
    const char *name;
    struct director_map_layout layout;
    size_t fd_offset;
} map_defs[] = {
    {DIRECTOR_MAP_VIPS,
     {BPF_MAP_TYPE_HASH, sizeof(struct drover_vip_key), sizeof(struct drover_vip_value),
      DROVER_MAX_VIPS, 0},
     offsetof(struct director_maps, vips_fd)},
    {ARRAY(DIRECTOR_MAP_TABLE, struct drover_row, DROVER_GENERATIONS *DROVER_TABLE_ROWS,
           BPF_F_MMAPABLE),
     offsetof(struct director_maps, table_fd)},
    {ARRAY(DIRECTOR_MAP_PROXIES, struct drover_proxy, DROVER_GENERATIONS *DROVER_MAX_PROXIES, 0),
     offsetof(struct director_maps, proxies_fd)},
    {ARRAY(DIRECTOR_MAP_GEN_CFG, struct drover_gen_config, DROVER_GENERATIONS, 0),
     offsetof(struct director_maps, gen_cfg_fd)},
    {ARRAY(DIRECTOR_MAP_ACTIVE, struct drover_active, 1, 0),
     offsetof(struct director_maps, active_fd)},
    {PERCPU(DIRECTOR_MAP_STATS, struct drover_stats, 1), offsetof(struct director_maps, stats_fd)},
    {ARRAY(DIRECTOR_MAP_VIP_IDX, struct drover_vip_slot, DROVER_GENERATIONS *DROVER_VIP_SLOTS,
           BPF_F_MMAPABLE),
     offsetof(struct director_maps, vip_idx_fd)},
    {ARRAY(DIRECTOR_MAP_VIP_ACT, struct drover_vip_active, 1, 0),
     offsetof(struct director_maps, vip_act_fd)},
    {PERCPU(DIRECTOR_MAP_VIP_CTR, struct drover_vip_counters, DROVER_MAX_VIPS),
     offsetof(struct director_maps, vip_ctr_fd)},
    {PERCPU(DIRECTOR_MAP_PROXY_CTR, struct drover_proxy_counters, DROVER_MAX_PROXIES),
     offsetof(struct director_maps, proxy_ctr_fd)},
};
#define NMAPS (sizeof(map_defs) / sizeof(map_defs[0]))

static int *fd_of(struct director_maps *m, size_t i)
{
    return (int *)((char *)m + map_defs[i].fd_offset);
}

static void *map_mem(int fd, size_t bytes, const char *name)
{
    void *mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

    if (mem == MAP_FAILED) {
        log_error("director: mmap of map %s (fd %d) failed: %s; it cannot be written", name, fd,
                  strerror(errno));
        return NULL;
    }
    return mem;
}

static void maps_reset(struct director_maps *m)
{
    memset(m, 0, sizeof(*m));
    for (size_t i = 0; i < NMAPS; i++)
        *fd_of(m, i) = -1;
    m->lock_fd = -1;
}

/* mmap the table and the VIP index (written by user space directly). */
static int maps_finish(struct director_maps *m)
{
    m->table = map_mem(m->table_fd, TABLE_BYTES, DIRECTOR_MAP_TABLE);
    m->vip_index = map_mem(m->vip_idx_fd, VIP_INDEX_BYTES, DIRECTOR_MAP_VIP_IDX);
    return m->table && m->vip_index ? 0 : -ENOMEM;
}

int director_maps_from_object(struct director_maps *m, struct bpf_object *obj)
{
    int rc;

    maps_reset(m);
    for (size_t i = 0; i < NMAPS; i++) {
        struct bpf_map *map = bpf_object__find_map_by_name(obj, map_defs[i].name);
        *fd_of(m, i) = map ? bpf_map__fd(map) : -1;
        if (*fd_of(m, i) < 0) {
            log_error("director: BPF object %s has no loaded map %s", bpf_object__name(obj),
                      map_defs[i].name);
            return -ENOENT;
        }
    }
    rc = maps_finish(m);
    if (rc < 0)
        director_maps_close(m);
    return rc;
}

/* Append ", <what> <have>, this build's <want>" to buf when they differ. */
static void layout_diff(char *buf, size_t len, const char *what, __u32 have, __u32 want)
{
    size_t used = strlen(buf);

    if (have != want && used < len)
        snprintf(buf + used, len - used, "%s%s %u (this build's: %u)", used ? ", " : "", what, have,
                 want);
}

int director_map_check_layout(int fd, const char *path, const struct director_map_layout *want)
{
    struct bpf_map_info info = {0};
    __u32 len = sizeof(info);
    char diff[256] = "";
    int rc;

    if (bpf_obj_get_info_by_fd(fd, &info, &len) < 0) {
        rc = -errno;
        log_error("director: cannot read info of pinned map %s: %s", path, strerror(errno));
        return rc;
    }
    layout_diff(diff, sizeof(diff), "type", info.type, want->type);
    layout_diff(diff, sizeof(diff), "key size", info.key_size, want->key_size);
    layout_diff(diff, sizeof(diff), "value size", info.value_size, want->value_size);
    layout_diff(diff, sizeof(diff), "max entries", info.max_entries, want->max_entries);
    layout_diff(diff, sizeof(diff), "flags", info.map_flags, want->flags);
    if (!diff[0])
        return 0;
    log_error("director: pinned map %s has another layout than this build (maps version %d): "
              "%s; refusing it, nothing changed (left by another drover version? detach and "
              "attach again)",
              path, DROVER_MAPS_VERSION, diff);
    return -EPROTO;
}

/* Open a pinned map and check that its layout is the one this build
 * knows: a map pinned by another drover version is refused, not misread. */
static int open_pin(const char *dir, size_t i, int *fd)
{
    char path[512];
    int rc;

    snprintf(path, sizeof(path), "%s/%s", dir, map_defs[i].name);
    *fd = bpf_obj_get(path);
    if (*fd < 0) {
        rc = -errno;
        log_error("director: cannot open pinned map %s: %s (is the director attached?)", path,
                  strerror(errno));
        return rc;
    }
    return director_map_check_layout(*fd, path, &map_defs[i].layout);
}

int director_maps_open_pinned(const char *dir, struct director_maps *m)
{
    int rc = 0;

    maps_reset(m);
    m->owns_fds = 1;
    m->lock_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (m->lock_fd < 0) {
        rc = -errno;
        log_error("director: cannot open pin directory %s: %s", dir, strerror(errno));
        goto fail;
    }
    for (size_t i = 0; i < NMAPS; i++) {
        rc = open_pin(dir, i, fd_of(m, i));
        if (rc < 0)
            goto fail;
    }
    rc = maps_finish(m);
    if (rc < 0)
        goto fail;
    return 0;
fail:
    director_maps_close(m);
    return rc;
}

void director_maps_close(struct director_maps *m)
{
    if (m->table)
        munmap(m->table, TABLE_BYTES);
    if (m->vip_index)
        munmap(m->vip_index, VIP_INDEX_BYTES);
    m->table = NULL;
    m->vip_index = NULL;
    if (m->owns_fds) {
        for (size_t i = 0; i < NMAPS; i++)
            if (*fd_of(m, i) >= 0)
                close(*fd_of(m, i));
    }
    if (m->lock_fd >= 0) /* always ours */
        close(m->lock_fd);
    m->owns_fds = 0;
    m->lock_fd = -1; /* closing it released the lock */
    m->locked = 0;
}

int director_maps_active(const struct director_maps *m, __u32 *gen)
{
    struct drover_active act;
    __u32 zero = 0;

    if (bpf_map_lookup_elem(m->active_fd, &zero, &act) < 0) {
        int rc = -errno;
        log_error("director: read of map %s failed: %s", DIRECTOR_MAP_ACTIVE, strerror(errno));
        return rc;
    }
    *gen = act.gen & (DROVER_GENERATIONS - 1);
    return 0;
}

/* Counter slots for slots[0..n) of generation gen: kept from the active
 * generation when it is another one with this layout (the one packets use
 * while gen is written), else all new. */
static int give_stat_slots(struct director_maps *m, __u32 gen, struct drover_proxy *slots, size_t n)
{
    static struct drover_proxy prev[DROVER_MAX_PROXIES];
    struct drover_gen_config cur;
    size_t nprev = 0;
    __u32 active = 0;
    int rc;

    if ((rc = director_maps_active(m, &active)) < 0)
        return rc;
    if (active != gen && director_maps_read_gen(m, active, &cur, prev) == 0 &&
        cur.version == DROVER_MAPS_VERSION)
        nprev = cur.proxy_count < DROVER_MAX_PROXIES ? cur.proxy_count : DROVER_MAX_PROXIES;
    return director_counters_proxy_slots(m->proxy_ctr_fd, prev, nprev, slots, n);
}

int director_maps_write_gen(struct director_maps *m, __u32 gen, const struct drover_gen_config *cfg,
                            const struct drover_proxy *proxies, const struct drover_row *rows)
{
    __u32 keys[DROVER_MAX_PROXIES];
    static struct drover_proxy slots[DROVER_MAX_PROXIES];
    __u32 count = DROVER_MAX_PROXIES;
    int rc;

    if (gen >= DROVER_GENERATIONS || cfg->proxy_count > DROVER_MAX_PROXIES)
        return -EINVAL;
    memset(slots, 0, sizeof(slots));
    memcpy(slots, proxies, cfg->proxy_count * sizeof(*proxies));
    if ((rc = give_stat_slots(m, gen, slots, cfg->proxy_count)) < 0)
        return rc;
    for (__u32 i = 0; i < DROVER_MAX_PROXIES; i++)
        keys[i] = gen * DROVER_MAX_PROXIES + i;
    if (bpf_map_update_batch(m->proxies_fd, keys, slots, &count, NULL) < 0) {
        rc = -errno;
        log_error("director: batch update of map %s (generation %u) failed: %s",
                  DIRECTOR_MAP_PROXIES, gen, strerror(errno));
        return rc;
    }
    memcpy(m->table + (size_t)gen * DROVER_TABLE_ROWS, rows,
           DROVER_TABLE_ROWS * sizeof(struct drover_row));
    struct drover_gen_config full = *cfg;
    director_gen_derive(&full);
    if (bpf_map_update_elem(m->gen_cfg_fd, &gen, &full, BPF_ANY) < 0) {
        rc = -errno;
        log_error("director: update of map %s (generation %u) failed: %s", DIRECTOR_MAP_GEN_CFG,
                  gen, strerror(errno));
        return rc;
    }
    return 0;
}

/* After the flip, programs that read the old index may still be running
 * on other CPUs. XDP runs inside an RCU read-side section, and
 * membarrier(MEMBARRIER_CMD_GLOBAL) waits for an RCU grace period, so
 * once it returns the old generation is unused and may be rewritten. */
static void wait_for_readers(void)
{
    if (syscall(__NR_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0) == 0)
        return;
    /* nohz_full kernels refuse; a packet takes microseconds. */
    struct timespec ts = {.tv_sec = 0, .tv_nsec = 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

int director_maps_activate(struct director_maps *m, __u32 gen)
{
    struct drover_active act = {.gen = gen};
    __u32 zero = 0;

    if (gen >= DROVER_GENERATIONS)
        return -EINVAL;
    /* The table was written through the mmap; make those stores visible
     * before the index that publishes them. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (bpf_map_update_elem(m->active_fd, &zero, &act, BPF_ANY) < 0) {
        int rc = -errno;
        log_error("director: update of map %s to generation %u failed: %s", DIRECTOR_MAP_ACTIVE,
                  gen, strerror(errno));
        return rc;
    }
    wait_for_readers();
    return 0;
}

int director_maps_lock(struct director_maps *m)
{
    if (m->lock_fd >= 0 && flock(m->lock_fd, LOCK_EX) < 0) {
        int rc = -errno;
        log_error("director: cannot lock the pin directory: %s; not publishing", strerror(errno));
        return rc;
    }
    m->locked = 1;
    return 0;
}

void director_maps_unlock(struct director_maps *m)
{
    if (m->locked && m->lock_fd >= 0)
        flock(m->lock_fd, LOCK_UN);
    m->locked = 0;
}

/* Take the publish lock for one call unless the caller holds it; *took
 * says whether to release it. */
static int lock_for_call(struct director_maps *m, bool *took)
{
    int rc = 0;

    *took = !m->locked;
    if (*took)
        rc = director_maps_lock(m);
    if (rc < 0)
        *took = false;
    return rc;
}

static void unlock_after_call(struct director_maps *m, bool took)
{
    if (took)
        director_maps_unlock(m);
}

/* The generation to write next: 0 in a fresh map set (nothing written,
 * generation 0 active), else the inactive one. Over an active generation
 * of another version (or none), the counters are zeroed first. */
static int prepare_next(struct director_maps *m, __u32 *next)
{
    struct drover_gen_config cur;
    __u32 active = 0;
    int rc = director_maps_active(m, &active);

    if (rc < 0)
        return rc;
    if (bpf_map_lookup_elem(m->gen_cfg_fd, &active, &cur) < 0) {
        rc = -errno;
        log_error("director: read of map %s (generation %u) failed: %s; not publishing",
                  DIRECTOR_MAP_GEN_CFG, active, strerror(errno));
        return rc;
    }
    *next = cur.version == 0 && active == 0 ? 0 : active ^ 1;
    if (cur.version == DROVER_MAPS_VERSION)
        return 0;
    if (cur.version != 0)
        log_info("director: generation %u of maps version %u is active, this build writes %d: "
                 "traffic counters start from zero (counts from before that version's period "
                 "are not this run's)",
                 active, cur.version, DROVER_MAPS_VERSION);
    return director_counters_reset(m->vip_ctr_fd, m->proxy_ctr_fd);
}

int director_maps_publish(struct director_maps *m, const struct drover_gen_config *cfg,
                          const struct drover_proxy *proxies, const struct drover_row *rows,
                          __u32 *gen_out)
{
    __u32 next = 0;
    bool took;
    int rc = lock_for_call(m, &took);

    if (rc < 0)
        return rc;
    if ((rc = prepare_next(m, &next)) < 0 ||
        (rc = director_maps_write_gen(m, next, cfg, proxies, rows)) < 0 ||
        (rc = director_maps_activate(m, next)) < 0)
        goto out;
    if (gen_out)
        *gen_out = next;
out:
    unlock_after_call(m, took);
    return rc;
}

int director_maps_read_gen(const struct director_maps *m, __u32 gen, struct drover_gen_config *cfg,
                           struct drover_proxy *proxies)
{
    int rc;

    if (gen >= DROVER_GENERATIONS)
        return -EINVAL;
    if (bpf_map_lookup_elem(m->gen_cfg_fd, &gen, cfg) < 0) {
        rc = -errno;
        log_error("director: read of map %s (generation %u) failed: %s", DIRECTOR_MAP_GEN_CFG, gen,
                  strerror(errno));
        return rc;
    }
    for (__u32 i = 0; i < DROVER_MAX_PROXIES; i++) {
        __u32 key = gen * DROVER_MAX_PROXIES + i;
        if (bpf_map_lookup_elem(m->proxies_fd, &key, &proxies[i]) < 0) {
            rc = -errno;
            log_error("director: read of map %s key %u failed: %s", DIRECTOR_MAP_PROXIES, key,
                      strerror(errno));
            return rc;
        }
    }
    return 0;
}

int director_maps_checksum(const struct director_maps *m, __u32 gen, __u64 *sum)
{
    struct drover_gen_config cfg;
    struct drover_proxy *proxies = calloc(DROVER_MAX_PROXIES, sizeof(*proxies));
    int rc;

    if (!proxies)
        return -ENOMEM;
    rc = director_maps_read_gen(m, gen, &cfg, proxies);
    if (rc == 0)
        *sum =
            director_generation_checksum(&cfg, proxies, m->table + (size_t)gen * DROVER_TABLE_ROWS);
    free(proxies);
    return rc;
}

static int vip_cmp(const void *a, const void *b)
{
    return memcmp(a, b, sizeof(struct drover_vip_key));
}

/* Fill one half of the VIP index with keys[0..n) and their ids. */
static void build_vip_index(struct drover_vip_slot *half, const struct drover_vip_key *keys,
                            const int32_t *ids, size_t n)
{
    memset(half, 0, DROVER_VIP_SLOTS * sizeof(*half));
    for (size_t i = 0; i < n; i++) {
        struct drover_vip_slot *s = &half[drover_vip_slot(&keys[i])];
        if (s->flags == 0) {
            s->key = keys[i];
            s->flags = DROVER_VIP_SLOT_USED;
            s->vip_id = (__u16)ids[i];
        } else {
            /* shared: the director asks the hash map */
            memset(&s->key, 0, sizeof(s->key));
            s->flags = DROVER_VIP_SLOT_MORE;
            s->vip_id = 0;
        }
    }
}

/* A VIP in the hash map and its counter slot. Key first: vip_cmp works. */
struct vip_had {
    struct drover_vip_key key;
    int32_t id;
};

/* ids[0..n) for want[0..n): the vip_id a VIP already has in the hash map
 * (have[0..nhave)), else a free one, zeroed: the old VIP index half is
 * live until the flip, so the ids of every VIP in have stay untouched. */
static int give_vip_ids(struct director_maps *m, const struct drover_vip_key *have, size_t nhave,
                        const struct drover_vip_key *want, size_t n, int32_t *ids)
{
    struct vip_had *had = calloc(nhave ? nhave : 1, sizeof(*had));
    bool *used = calloc(DROVER_MAX_VIPS, sizeof(*used));
    uint32_t *fresh = calloc(n ? n : 1, sizeof(*fresh));
    size_t nfresh = 0;
    int rc = -ENOMEM;

    if (!had || !used || !fresh)
        goto out;
    for (size_t i = 0; i < nhave; i++) {
        struct drover_vip_value v;
        had[i].key = have[i];
        had[i].id = -1;
        if (bpf_map_lookup_elem(m->vips_fd, &have[i], &v) == 0 && v.vip_id < DROVER_MAX_VIPS) {
            had[i].id = (int32_t)v.vip_id;
            used[v.vip_id] = true;
        }
    }
    qsort(had, nhave, sizeof(*had), vip_cmp);
    for (size_t i = 0; i < n; i++) {
        const struct vip_had *h = bsearch(&want[i], had, nhave, sizeof(*had), vip_cmp);
        ids[i] = h ? h->id : -1;
    }
    rc = director_counters_assign(ids, n, used, DROVER_MAX_VIPS, fresh, &nfresh);
    if (rc == 0)
        rc = director_counters_zero(m->vip_ctr_fd, fresh, nfresh,
                                    sizeof(struct drover_vip_counters));
out:
    free(had);
    free(used);
    free(fresh);
    return rc;
}

int director_maps_set_vips(struct director_maps *m, const struct drover_vip_key *keys, size_t n)
{
    struct drover_vip_key *want = NULL, *have = NULL, cur, next;
    int32_t *ids = NULL;
    struct drover_vip_active va = {0};
    size_t nhave = 0;
    __u32 zero = 0;
    bool took = false;
    int rc = 0, more;

    if (n > DROVER_MAX_VIPS)
        return -E2BIG;
    want = malloc((n ? n : 1) * sizeof(*want));
    have = malloc(DROVER_MAX_VIPS * sizeof(*have));
    ids = malloc((n ? n : 1) * sizeof(*ids));
    if (!want || !have || !ids) {
        rc = -ENOMEM;
        goto out;
    }
    if (n)
        memcpy(want, keys, n * sizeof(*want));
    qsort(want, n, sizeof(*want), vip_cmp);
    if ((rc = lock_for_call(m, &took)) < 0)
        goto out;
    /* Collect the current keys first: deleting while walking a hash map
     * can restart or skip the walk. */
    more = bpf_map_get_next_key(m->vips_fd, NULL, &cur) == 0;
    while (more && nhave < DROVER_MAX_VIPS) {
        have[nhave++] = cur;
        more = bpf_map_get_next_key(m->vips_fd, &cur, &next) == 0;
        cur = next;
    }
    if ((rc = give_vip_ids(m, have, nhave, want, n, ids)) < 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        struct drover_vip_value v = {.version = DROVER_MAPS_VERSION, .vip_id = (__u32)ids[i]};
        if (bpf_map_update_elem(m->vips_fd, &want[i], &v, BPF_ANY) < 0) {
            rc = -errno;
            log_error("director: update of map %s (VIP #%zu) failed: %s", DIRECTOR_MAP_VIPS, i,
                      strerror(errno));
            goto out;
        }
    }
    if (bpf_map_lookup_elem(m->vip_act_fd, &zero, &va) < 0) {
        rc = -errno;
        log_error("director: read of map %s failed: %s", DIRECTOR_MAP_VIP_ACT, strerror(errno));
        goto out;
    }
    __u32 half = (va.gen & (DROVER_GENERATIONS - 1)) ^ 1;
    build_vip_index(m->vip_index + (size_t)half * DROVER_VIP_SLOTS, want, ids, n);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    va.gen = half;
    if (bpf_map_update_elem(m->vip_act_fd, &zero, &va, BPF_ANY) < 0) {
        rc = -errno;
        log_error("director: update of map %s failed: %s", DIRECTOR_MAP_VIP_ACT, strerror(errno));
        goto out;
    }
    wait_for_readers(); /* nobody reads the old half or the stale keys now */
    for (size_t i = 0; i < nhave; i++) {
        if (bsearch(&have[i], want, n, sizeof(*want), vip_cmp))
            continue;
        if (bpf_map_delete_elem(m->vips_fd, &have[i]) < 0 && errno != ENOENT) {
            rc = -errno;
            log_error("director: delete from map %s failed: %s", DIRECTOR_MAP_VIPS,
                      strerror(errno));
            goto out;
        }
    }
out:
    unlock_after_call(m, took);
    free(want);
    free(have);
    free(ids);
    return rc;
}

int director_maps_count_vips(const struct director_maps *m, size_t *n)
{
    struct drover_vip_key cur, next;
    int more = bpf_map_get_next_key(m->vips_fd, NULL, &cur) == 0;

    *n = 0;
    while (more) {
        (*n)++;
        more = bpf_map_get_next_key(m->vips_fd, &cur, &next) == 0;
        cur = next;
    }
    return 0;
}

int director_stats_read(int stats_fd, __u64 out[DROVER_STAT_MAX])
{
    int ncpu = libbpf_num_possible_cpus();
    __u32 zero = 0;
    int rc = 0;

    if (ncpu <= 0)
        return ncpu < 0 ? ncpu : -EINVAL;
    struct drover_stats *per = calloc((size_t)ncpu, sizeof(*per));
    if (!per)
        return -ENOMEM;
    if (bpf_map_lookup_elem(stats_fd, &zero, per) < 0) {
        rc = -errno;
        log_error("director: read of stats map (fd %d) failed: %s", stats_fd, strerror(errno));
        goto out;
    }
    memset(out, 0, DROVER_STAT_MAX * sizeof(__u64));
    for (int c = 0; c < ncpu; c++)
        for (int i = 0; i < DROVER_STAT_MAX; i++)
            out[i] += per[c].count[i];
out:
    free(per);
    return rc;
}

int decap_maps_configure(int config_fd, __u16 gue_port)
{
    struct drover_decap_config cfg = {.version = DROVER_MAPS_VERSION, .gue_port = htons(gue_port)};
    __u32 zero = 0;

    if (bpf_map_update_elem(config_fd, &zero, &cfg, BPF_ANY) < 0) {
        int rc = -errno;
        log_error("decap: update of map %s failed: %s", DECAP_MAP_CONFIG, strerror(errno));
        return rc;
    }
    return 0;
}
