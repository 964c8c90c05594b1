/* SPDX-License-Identifier: Apache-2.0 */
/*
 * drover_maps: every struct, constant and enum shared by the BPF programs
 * of xdp-lb (director, decap) and the user-space code that fills their maps
 * (drover-director, the watcher through libxdplb). One header, included by
 * both sides, so a layout change is one edit and DROVER_MAPS_VERSION bumps
 * with it. Wire formats (GUE header, hop list) live here too.
 *
 * All addresses are stored in network byte order; an IPv4 address occupies
 * addr[0] of a 4-word address with the other words zero. Ports are stored in
 * network byte order, as they appear in packets.
 */
#ifndef DROVER_MAPS_H
#define DROVER_MAPS_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Bumped whenever a struct below changes layout or meaning. User space
 * refuses pinned maps whose layout (type, key/value size, entries, flags)
 * differs from this build's (director_map_check_layout); the
 * director ignores a generation whose drover_gen_config.version differs
 * (pass_no_config), the decap program likewise for its config. */
#define DROVER_MAPS_VERSION 3

/* Forwarding table: 65,536 rows per generation, two generations. */
#define DROVER_TABLE_BITS  16
#define DROVER_TABLE_ROWS  (1u << DROVER_TABLE_BITS)
#define DROVER_TABLE_MASK  (DROVER_TABLE_ROWS - 1)
#define DROVER_GENERATIONS 2
#define DROVER_MAX_PROXIES 1024
#define DROVER_MAX_VIPS    4096
/* VIP index: a direct-mapped array in front of the VIP hash map, two
 * halves (one live, one being rebuilt). 4x the VIP limit keeps it sparse. */
#define DROVER_VIP_SLOT_BITS 14
#define DROVER_VIP_SLOTS     (1u << DROVER_VIP_SLOT_BITS)

/* GUE tunnel. */
#define DROVER_GUE_PORT_DEFAULT 19523
#define DROVER_HOPS_VERSION     1
#define DROVER_DIRECTOR_HOPS    2 /* primary, secondary */
#define DROVER_MAX_HOPS         4 /* the decap program accepts up to this many */
/* Outer UDP source ports are 49152 + (flow hash & 0x3fff). */
#define DROVER_GUE_SPORT_BASE 49152
#define DROVER_GUE_SPORT_MASK 0x3fff
#define DROVER_OUTER_TTL      64

/* Largest packet the benchmark wrapper can restore. */
#define DROVER_BENCH_MAX_PKT 256

enum drover_family {
    DROVER_AF_NONE = 0,
    DROVER_AF_INET = 4,
    DROVER_AF_INET6 = 6,
};

/* Which fields of the flow feed the keyed hash that picks a table row. */
enum drover_hash_fields {
    DROVER_HASH_SRC = 0,       /* source address + source port (default) */
    DROVER_HASH_SRC_DPORT = 1, /* + destination port */
    DROVER_HASH_5TUPLE = 2,    /* source, destination, ports, protocol */
};

/* GLB proxy states; the table builder decides what they mean for rows. */
enum drover_proxy_state {
    DROVER_PROXY_INACTIVE = 0,
    DROVER_PROXY_ACTIVE = 1,
    DROVER_PROXY_FILLING = 2,
    DROVER_PROXY_DRAINING = 3,
};

/* vips map (hash): key = (address, port, protocol). */
struct drover_vip_key {
    __u32 addr[4];
    __u16 port; /* network order */
    __u8 proto; /* IPPROTO_TCP or IPPROTO_UDP */
    __u8 family;
};

struct drover_vip_value {
    __u16 version;
    __u16 flags;  /* reserved, 0 */
    __u32 vip_id; /* index into drover_vip_ctr, < DROVER_MAX_VIPS; kept for as
                   * long as the VIP stays, so its counters survive changes */
};

/* vip_index map (array, mmapable): DROVER_GENERATIONS * DROVER_VIP_SLOTS
 * slots; half h of it is live when drover_vip_active.gen == h. A slot
 * holds the VIP whose drover_vip_slot() is its index; when several VIPs
 * share a slot it holds none of them and has DROVER_VIP_SLOT_MORE set, and
 * the director asks the drover_vips hash map. So a packet for no VIP costs
 * one array read, not a hash-map lookup. */
#define DROVER_VIP_SLOT_USED 1u
#define DROVER_VIP_SLOT_MORE 2u
struct drover_vip_slot {
    struct drover_vip_key key;
    __u16 flags;
    __u16 vip_id; /* drover_vip_value.vip_id of key when USED */
};

/* proxies map (array): DROVER_GENERATIONS * DROVER_MAX_PROXIES entries,
 * generation g uses indices [g * DROVER_MAX_PROXIES, (g+1) * ...). */
struct drover_proxy {
    __u32 addr[4];
    __u8 family; /* DROVER_AF_NONE marks an unused slot */
    __u8 state;
    /* Index into drover_proxy_ctr, < DROVER_MAX_PROXIES. User space keeps
     * a proxy's slot (by address) from generation to generation, so its
     * counters survive table changes; a slot is zeroed when it is given
     * to a new proxy. Not part of the generation checksum: directors with
     * different histories may number their counters differently. */
    __u16 stat_slot;
};

/* table map (array, mmapable): DROVER_GENERATIONS * DROVER_TABLE_ROWS rows,
 * indices into the same generation's proxies. 8 bytes because array maps
 * store elements at an 8-byte stride anyway, and user space writes the
 * table through mmap, which exposes that stride. */
struct drover_row {
    __u16 primary;
    __u16 secondary;
    __u32 reserved; /* 0 */
};
/* Row entry meaning "no proxy" (any index >= DROVER_MAX_PROXIES works). */
#define DROVER_ROW_NONE 0xffff

/* Bytes of the outer header templates of drover_gen_config (the headers
 * before the hop addresses, rounded up to 8): Ethernet 14 + IPv4 20 or
 * IPv6 40 + UDP 8 + GUE 4 + hop list header 4. */
#define DROVER_OUTER4_HDRS 50
#define DROVER_OUTER6_HDRS 70
#define DROVER_OUTER4_TMPL 56
#define DROVER_OUTER6_TMPL 72

/* gen_config map (array): one entry per generation. Everything a packet
 * needs besides the VIP lives in the generation, so one write of the
 * active map switches table, proxies, hash key and tunnel settings at once. */
struct drover_gen_config {
    __u32 version; /* DROVER_MAPS_VERSION; 0 = generation never written */
    __u32 proxy_count;
    __u64 hash_key[2]; /* SipHash-1-3 key */
    __u32 hash_fields; /* enum drover_hash_fields */
    __u16 gue_port;    /* network order */
    __u16 flags;
    __u32 egress_ifindex; /* 0: XDP_TX on the ingress device, else redirect */
    __u32 src_v4;         /* outer source addresses */
    __u32 src_v6[4];
    __u8 gw_mac[6];  /* outer destination MAC (the gateway) */
    __u8 src_mac[6]; /* outer source MAC (our egress device) */
    /* Derived from the fields above by director_gen_derive(), which
     * director_maps_write_gen() always calls: the per-packet work the
     * director does not have to repeat. */
    __u32 ip4_csum_base; /* one's complement sum of the constant outer IPv4 words */
    __u64 sip_init[4];   /* SipHash state after keying with hash_key */
    /* The outer headers up to the hop addresses - Ethernet, IPv4 or IPv6,
     * UDP, GUE, hop list header - with every field that does not depend on
     * the packet filled in; zero where it does (IPv4 total length,
     * checksum and destination; IPv6 flow label, payload length and
     * destination; UDP source port and length; GUE inner protocol; hop
     * count). The director copies one in 8-byte words and writes the rest:
     * a handful of stores instead of one per field. */
    __u8 outer4[DROVER_OUTER4_TMPL];
    __u8 outer6[DROVER_OUTER6_TMPL];
};

/* active map (array, one entry): the generation packets use. Written last,
 * and only this 4-byte value, so the swap is a single store. */
struct drover_active {
    __u32 gen;
};

/* drover_vip_active map (array, one entry): the live half of vip_index. */
struct drover_vip_active {
    __u32 gen;
};

/* decap_config map (array, one entry), proxy side. */
struct drover_decap_config {
    __u32 version;
    __u16 gue_port; /* network order */
    __u16 flags;
};

/* Per-CPU counters, one enum for both programs (each program has its own
 * stats map and uses its own subset). Keep drover_stat_names in sync. */
enum drover_stat {
    DROVER_STAT_RX = 0,         /* packets seen by the program */
    DROVER_STAT_PASS_NOT_IP,    /* not IPv4/IPv6: XDP_PASS */
    DROVER_STAT_PASS_NON_VIP,   /* no VIP matched: XDP_PASS */
    DROVER_STAT_PASS_MALFORMED, /* too short to tell: XDP_PASS */
    DROVER_STAT_PASS_FRAGMENT,  /* IP fragment: XDP_PASS */
    DROVER_STAT_PASS_NO_CONFIG, /* no active generation yet: XDP_PASS */
    DROVER_STAT_ENCAP_V4,       /* encapsulated, outer IPv4 */
    DROVER_STAT_ENCAP_V6,       /* encapsulated, outer IPv6 */
    DROVER_STAT_ENCAP_ICMP,     /* of which ICMP PTB / frag needed */
    DROVER_STAT_DROP_NO_PROXY,  /* table row points at an empty slot */
    DROVER_STAT_DROP_NO_SOURCE, /* no outer source address for family */
    DROVER_STAT_DROP_ADJUST,    /* bpf_xdp_adjust_head failed */
    DROVER_STAT_HOPS_FAMILY,    /* secondary of another family: sent with 1 hop */
    /* decap side */
    DROVER_STAT_DECAP_PASS_NOT_GUE, /* not UDP to the GUE port: XDP_PASS */
    DROVER_STAT_DECAP_LOCAL,        /* decapsulated to the local stack */
    DROVER_STAT_DECAP_SYN_LOCAL,    /* of which SYN with a local listener */
    DROVER_STAT_DECAP_SOCKET_LOCAL, /* of which non-SYN with a local socket */
    DROVER_STAT_DECAP_HOPS_DONE,    /* of which no hop left: local stack */
    DROVER_STAT_SECOND_CHANCE,      /* forwarded to the next hop */
    DROVER_STAT_SECOND_CHANCE_PASS, /* next hop not resolved: stack forwards */
    DROVER_STAT_DROP_BAD_GUE,       /* bad GUE/hop list: dropped */
    DROVER_STAT_DROP_BAD_INNER,     /* truncated inner packet: dropped */
    DROVER_STAT_DROP_TTL,           /* second chance with TTL/hop limit <= 1 */
    DROVER_STAT_MAX,
};

struct drover_stats {
    __u64 count[DROVER_STAT_MAX];
};

/* Per-VIP and per-proxy traffic counters (per-CPU arrays, summed by user
 * space). bytes are the client packet's bytes from its IP header on, as
 * received, without the tunnel headers the director adds. */
struct drover_traffic {
    __u64 packets; /* encapsulated and sent */
    __u64 bytes;
};

/* drover_vip_ctr map: DROVER_MAX_VIPS entries, by drover_vip_value.vip_id. */
struct drover_vip_counters {
    struct drover_traffic sent;
    __u64 drops; /* packets to the VIP dropped (drop_no_proxy, drop_no_source,
                  * drop_adjust) */
};

/* drover_proxy_ctr map: DROVER_MAX_PROXIES entries, by
 * drover_proxy.stat_slot; what the director sent to the proxy as primary
 * (the first hop). */
struct drover_proxy_counters {
    struct drover_traffic sent;
};

/* ---- wire format ---- */

/* GUE base header (draft-ietf-intarea-gue, variant 0): version 0, C = 0,
 * hlen = length of the private data in 32-bit words, proto_ctype = inner
 * IP protocol (4 IPv4, 41 IPv6), flags 0. */
struct drover_gue_hdr {
    __u8 hlen_c_ver; /* ver:2 (top) | C:1 | hlen:5 (bottom) */
    __u8 proto_ctype;
    __u16 flags;
};

/* GUE private data: the hop list. Followed by hop_count addresses of 4
 * (family 4) or 16 (family 6) bytes: primary first. next_hop indexes the
 * hop to try when the current one has no socket for a non-SYN. */
struct drover_gue_hops {
    __u8 version; /* DROVER_HOPS_VERSION */
    __u8 family;  /* enum drover_family of the addresses */
    __u8 hop_count;
    __u8 next_hop;
};

#define DROVER_GUE_HLEN(hops, alen) ((4 + (hops) * (alen)) / 4)

#endif
