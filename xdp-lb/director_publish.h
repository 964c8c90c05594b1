/* SPDX-License-Identifier: Apache-2.0 */
/*
 * director_publish: the one way user space gets a forwarding table into the
 * XDP director's maps and reads back what the kernel forwards with. Both
 * publishers use it - `drover-director attach/apply` (its JSON config) and
 * the watcher's director side (tables built from Consul KV and health) -
 * and both status commands (`drover-director status/table dump/stats`,
 * `drover-watcher director status`) read through it.
 *
 * With its lower layer director_maps (map fds, generation flip, VIP index)
 * it is the only user-space code that knows the BPF map structs of
 * xdp-lb/bpf/drover_maps.h (tests and benchmarks of the BPF programs
 * aside): callers speak in director_table, director_config, text
 * addresses and the neutral structs below; the map layout of a table
 * (director_publish_to_maps) is written here only.
 *
 * Pin rule: a device's maps and programs are pinned in <pin root>/<dev>/,
 * one file per map named as the map; DIRECTOR_PIN_ROOT when no root is
 * given. director_pin_dir() is the only place that rule is written.
 *
 * Publishing: the generation image (config, proxies, rows) is composed,
 * its checksum computed, the inactive generation written and flipped
 * (director_maps_publish), read back and compared; then the VIP set is
 * made exact. All of it - with the read of the active generation a table
 * publish keeps settings from and checks the version of - happens under
 * one hold of the publish lock (director_maps_lock: a flock on the pin
 * directory), so no other publisher's write falls in between. Errors are
 * returned as a negative errno with a message in err naming the pin
 * directory and what failed; the active generation is never torn.
 */
#ifndef DROVER_DIRECTOR_PUBLISH_H
#define DROVER_DIRECTOR_PUBLISH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>

#include "director_table.h"

#define DIRECTOR_PIN_ROOT "/sys/fs/bpf/drover"
/* The programs' pins in the pin directory (the maps': their names). */
#define DIRECTOR_PROG_PIN "director_prog"
#define DECAP_PROG_PIN    "decap_prog"

struct director_config;
struct director_maps;

/* ---- pins ---- */

/* <root>/<dev> into buf; root NULL = DIRECTOR_PIN_ROOT. 0, or -EINVAL
 * (no device, or a device name with '/' or "." / ".."), -ENAMETOOLONG. */
int director_pin_dir(const char *root, const char *dev, char *buf, size_t len);

/* ---- publish ---- */

/* One VIP as the watcher knows it: address text, IPPROTO_TCP/UDP, port in
 * host order. */
struct director_vip {
    const char *address;
    uint8_t protocol;
    uint16_t port;
};

/* A table for the maps the director attached with its own tunnel settings
 * (outer sources, MACs, egress): those are kept from the active
 * generation; everything else comes from here. */
struct director_publish_table {
    const struct director_table *table;
    uint64_t hash_key[2]; /* little-endian words of the 16 key bytes */
    uint32_t hash_fields; /* director_parse_hash_fields() */
    uint16_t gue_port;    /* host order */
    const struct director_vip *vips;
    size_t n_vips;
    /* rewrite the VIP set even when the live one has as many keys (the
     * caller's VIPs changed since it last wrote them) */
    bool vips_changed;
};

struct director_publish_result {
    bool have_generation; /* generation is the active one (verified) */
    uint32_t generation;
    uint64_t checksum;  /* director_generation_checksum of what is active */
    bool gen_written;   /* a new generation was flipped in */
    bool vips_written;  /* the VIP set was rewritten */
    bool verify_failed; /* the flipped generation read back differently */
};

/* Make the maps pinned in pin_dir forward by p->table: when the active
 * generation already holds exactly this image nothing is flipped, else
 * the inactive one is written, flipped and verified. The tunnel settings
 * kept and the version checked are the active generation's as read under
 * the publish lock, so an apply that got the lock first is built on, not
 * written over. -EAGAIN, with neither generation nor VIP set written,
 * when the maps hold no usable generation (drover-director not attached
 * with its settings, or a generation of another maps version active).
 * err gets "what failed in pin_dir" without what the caller does next. */
int director_publish_table(const char *pin_dir, const struct director_publish_table *p,
                           struct director_publish_result *res, char *err, size_t errlen);

/* The device-dependent parts of a config's generation (director_loader). */
struct director_publish_device {
    uint8_t src_mac[6];      /* MAC of the device packets leave by */
    uint32_t egress_ifindex; /* 0 = XDP_TX on the attach device */
};

/* Publish drover-director's own config into m (pinned or just loaded):
 * always a new generation (flipped and verified), and exactly cfg's VIPs,
 * under one hold of m's publish lock. Over a generation of another maps
 * version the traffic counters start from zero (director_maps_publish).
 * where labels messages (the device). */
int director_publish_config(struct director_maps *m, const char *where,
                            const struct director_config *cfg,
                            const struct director_publish_device *dev,
                            struct director_publish_result *res, char *err, size_t errlen);

/* ---- map layout (tests and benchmarks of the BPF programs) ---- */

struct drover_proxy;
struct drover_row;

/* Fill proxies[0..t->proxy_count) and rows[DIRECTOR_TABLE_ROWS], one
 * generation in map layout: proxies in the table's canonical order, rows
 * as indices into them. */
void director_publish_to_maps(const struct director_table *t, struct drover_proxy *proxies,
                              struct drover_row *rows);

/* For callers that hold proxies in map layout: build with every proxy
 * healthy, id = address text, and rewrite proxies[0..n) into the table's
 * order so rows index them. 0, -EINVAL, -ENOMEM. */
int director_publish_build_proxies(const __u64 key[2], struct drover_proxy *proxies, size_t n,
                                   struct drover_row *rows);

/* ---- what the kernel forwards with ---- */

#define DIRECTOR_ADDR_TEXT 46 /* INET6_ADDRSTRLEN */

struct director_live_proxy {
    char address[DIRECTOR_ADDR_TEXT]; /* "-" for an empty slot */
    const char *state;                /* director_state_name() */
    uint32_t primary_rows, secondary_rows;
};

struct director_live_row {
    uint32_t primary, secondary; /* proxy slot, DIRECTOR_TABLE_NONE = none */
};

struct director_live {
    uint32_t generation; /* the active one */
    uint32_t maps_version;
    uint32_t proxy_count; /* as the generation config says */
    uint32_t n_listed;    /* proxies[0..n_listed): proxy_count, at most the slots */
    uint16_t gue_port;    /* host order */
    size_t n_vips;
    uint64_t checksum;
    uint32_t rows_without_proxy;
    struct director_live_proxy *proxies; /* every slot (DIRECTOR_TABLE_MAX_PROXIES) */
    struct director_live_row *rows;      /* DIRECTOR_TABLE_ROWS, or NULL if not asked */
};

/* Read the active generation from the maps pinned in pin_dir: config,
 * proxies (addresses as text), rows per proxy, checksum, VIP count; the
 * rows themselves too when want_rows. 0 or -errno (logged, naming the
 * pin). Free with director_live_free(). */
int director_live_read(const char *pin_dir, bool want_rows, struct director_live *out);
void director_live_free(struct director_live *l);

/* Count rows per listed proxy and rows without one (pure; director_live_read
 * does it). rows: DIRECTOR_TABLE_ROWS. */
void director_live_count(struct director_live *l, const struct director_live_row *rows);

/* One counter of a program (director or decap) summed over CPUs. */
struct director_stat {
    const char *name;
    uint64_t value;
};

#define DIRECTOR_STATS_MAX 64

/* Read the director's (decap false) or the decap program's counters from
 * pin_dir into out[0..*n) in the order the programs define them. */
int director_stats_read_pinned(const char *pin_dir, bool decap, struct director_stat *out,
                               size_t *n);

#endif
