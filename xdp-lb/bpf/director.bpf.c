// SPDX-License-Identifier: Apache-2.0
/*
 * director: the XDP forwarding program of drover-director (GLB's director
 * design). For a packet to a VIP it hashes the client flow with the
 * generation's SipHash key, picks a row of the 65,536-row table and
 * encapsulates the packet in GUE towards the row's primary proxy, with the
 * hop list [primary, secondary] in the GUE private data for second chance.
 * Everything that is not for a VIP leaves with XDP_PASS untouched; every
 * outcome is counted in the per-CPU drover_stats map, and what a VIP's
 * packets became (sent, dropped) per VIP and per primary proxy in
 * drover_vip_ctr and drover_proxy_ctr.
 *
 * Maps and wire format: drover_maps.h. The table, proxies and tunnel
 * settings are double-buffered by generation; drover_active names the live
 * one and is written last by user space, so each packet reads one
 * consistent generation.
 */
#include "vmlinux.h"
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "drover_hash.h"
#include "drover_maps.h"
#include "drover_parse.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, DROVER_MAX_VIPS);
    __type(key, struct drover_vip_key);
    __type(value, struct drover_vip_value);
} drover_vips SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, DROVER_GENERATIONS *DROVER_VIP_SLOTS);
    __uint(map_flags, BPF_F_MMAPABLE);
    __type(key, __u32);
    __type(value, struct drover_vip_slot);
} drover_vip_idx SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct drover_vip_active);
} drover_vip_act SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, DROVER_GENERATIONS *DROVER_TABLE_ROWS);
    __uint(map_flags, BPF_F_MMAPABLE);
    __type(key, __u32);
    __type(value, struct drover_row);
} drover_table SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, DROVER_GENERATIONS *DROVER_MAX_PROXIES);
    __type(key, __u32);
    __type(value, struct drover_proxy);
} drover_proxies SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, DROVER_GENERATIONS);
    __type(key, __u32);
    __type(value, struct drover_gen_config);
} drover_gen_cfg SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct drover_active);
} drover_active SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct drover_stats);
} drover_stats SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, DROVER_MAX_VIPS);
    __type(key, __u32);
    __type(value, struct drover_vip_counters);
} drover_vip_ctr SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, DROVER_MAX_PROXIES);
    __type(key, __u32);
    __type(value, struct drover_proxy_counters);
} drover_proxy_ctr SEC(".maps");

/* bench/director builds this program a second time with
 * DROVER_NO_TRAFFIC_COUNTERS to measure what the per-VIP and per-proxy
 * counters cost; drover-director never does. */
#ifdef DROVER_NO_TRAFFIC_COUNTERS
#define COUNT_TRAFFIC 0
#else
#define COUNT_TRAFFIC 1
#endif

/* A packet to VIP vip_id was dropped. */
static __always_inline void count_vip_drop(__u32 vip_id)
{
    if (!COUNT_TRAFFIC)
        return;
    struct drover_vip_counters *vc = bpf_map_lookup_elem(&drover_vip_ctr, &vip_id);
    if (vc)
        vc->drops++;
}

/* A packet of len bytes (from the client's IP header on) to VIP vip_id
 * was sent to proxy stat_slot. Per-CPU values: plain increments. */
static __always_inline void count_sent(__u32 vip_id, __u32 stat_slot, __u64 len)
{
    if (!COUNT_TRAFFIC)
        return;
    struct drover_vip_counters *vc = bpf_map_lookup_elem(&drover_vip_ctr, &vip_id);
    if (vc) {
        vc->sent.packets++;
        vc->sent.bytes += len;
    }
    struct drover_proxy_counters *pc = bpf_map_lookup_elem(&drover_proxy_ctr, &stat_slot);
    if (pc) {
        pc->sent.packets++;
        pc->sent.bytes += len;
    }
}

/* Outer headers after the new Ethernet header, for each outer family. The
 * hop list always has room for DROVER_DIRECTOR_HOPS addresses so the
 * offsets are constants; hop_count says how many are valid. */
#define OUTER4_LEN                                                                                 \
    (sizeof(struct iphdr) + sizeof(struct udphdr) + sizeof(struct drover_gue_hdr) +                \
     sizeof(struct drover_gue_hops) + DROVER_DIRECTOR_HOPS * 4)
#define OUTER6_LEN                                                                                 \
    (sizeof(struct ipv6hdr) + sizeof(struct udphdr) + sizeof(struct drover_gue_hdr) +              \
     sizeof(struct drover_gue_hops) + DROVER_DIRECTOR_HOPS * 16)

/* The key of the one-entry maps, in .rodata rather than on the stack: a
 * lookup passes its address (one instruction) and nothing has to store a
 * zero first (the verifier accepts a read-only map value as a key). */
static const __u32 zero_key = 0;

/* Parse results: 0 = a flow to look up, otherwise the counter of the
 * XDP_PASS reason. */
#define PARSE_OK 0

/* Branch hints: the compiler lays the expected side out as the fall-through
 * (the JIT keeps that layout), so the forwarding path runs straight. */
#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* Count a packet as received and as reason (a DROVER_STAT_*), where its
 * outcome is known. The per-CPU stats are looked up at each exit rather
 * than once on entry: a pointer taken on entry stays live across the
 * parse, the VIP index read and the hash, which the compiler treats as
 * calls, so it was kept in a callee-saved register or spilled
 * (bench/director jit_paths.py). The verifier inlines the lookup. */
static __always_inline void count_outcome(__u32 reason)
{
    struct drover_stats *st = bpf_map_lookup_elem(&drover_stats, &zero_key);

    if (st) {
        st->count[DROVER_STAT_RX]++;
        if (reason < DROVER_STAT_MAX)
            st->count[reason]++;
    }
}

/* One more count for a packet whose outcome is counted elsewhere. */
static __always_inline void count_also(__u32 which)
{
    struct drover_stats *st = bpf_map_lookup_elem(&drover_stats, &zero_key);

    if (st)
        st->count[which]++;
}

/* A packet leaves with XDP_PASS for reason (a DROVER_STAT_PASS_*). */
static __always_inline int pass_counted(__u32 reason)
{
    count_outcome(reason);
    return XDP_PASS;
}

/* A packet to VIP vip_id is dropped for reason (a DROVER_STAT_DROP_*). */
static __always_inline int drop_counted(__u32 reason, __u32 vip_id)
{
    count_outcome(reason);
    count_vip_drop(vip_id);
    return XDP_DROP;
}

/* Ports of a TCP or UDP header: the first four bytes of both. */
struct l4_ports {
    __be16 source;
    __be16 dest;
};

/* Where a packet's flow is, as the parse found it: pointers into the
 * packet (valid until bpf_xdp_adjust_head) rather than a copy, so a packet
 * for no VIP reads only the VIP side and the client side is read only for
 * the hash. For an ICMP error the client side is the destination of the
 * header it quotes (that header runs VIP -> client). */
struct flow_ref {
    const void *client; /* client address: 4 or 16 bytes */
    const void *vip;    /* VIP address */
    __be16 client_port;
    __be16 vip_port;
    __u8 proto;
    __u8 icmp; /* an ICMP error quoting the flow */
};

static __always_inline void flow_ref_set(struct flow_ref *r, const void *client, const void *vip,
                                         const struct l4_ports *client_to_vip, __u8 proto)
{
    r->client = client;
    r->vip = vip;
    r->client_port = client_to_vip->source;
    r->vip_port = client_to_vip->dest;
    r->proto = proto;
}

/* ICMP "fragmentation needed" quoting a packet the VIP sent: the quoted
 * header runs VIP -> client, so the client side is its destination. */
static __always_inline int parse_icmp4(void *icmp, void *data_end, struct flow_ref *r)
{
    struct icmphdr *ic = icmp;

    if ((void *)(ic + 1) > data_end)
        return DROVER_STAT_PASS_MALFORMED;
    if (ic->type != ICMP_DEST_UNREACH || ic->code != ICMP_FRAG_NEEDED)
        return DROVER_STAT_PASS_NON_VIP;
    struct iphdr *in = (void *)(ic + 1);
    if ((void *)(in + 1) > data_end)
        return DROVER_STAT_PASS_MALFORMED;
    if (in->version != 4 || in->ihl < 5)
        return DROVER_STAT_PASS_MALFORMED;
    __u8 proto = in->protocol;
    if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
        return DROVER_STAT_PASS_NON_VIP;
    struct l4_ports *p = (void *)in + in->ihl * 4;
    if ((void *)(p + 1) > data_end)
        return DROVER_STAT_PASS_MALFORMED;
    struct l4_ports client_to_vip = {.source = p->dest, .dest = p->source};
    flow_ref_set(r, &in->daddr, &in->saddr, &client_to_vip, proto);
    r->icmp = 1;
    return PARSE_OK;
}

/* The TCP or UDP header at l4, which the director insists on in full (a
 * truncated one is passed as malformed). Called with proto a constant:
 * testing TCP, then UDP, and bounding each with its own constant leaves
 * fewer values to keep than a length chosen by protocol (3-4 instructions
 * less on every path, bench/director/jit_paths.py). */
static __always_inline int parse_l4(void *l4, void *data_end, const void *client, const void *vip,
                                    const __u8 proto, struct flow_ref *r)
{
    __u32 need = proto == IPPROTO_TCP ? sizeof(struct tcphdr) : sizeof(struct udphdr);

    if (unlikely(l4 + need > data_end))
        return DROVER_STAT_PASS_MALFORMED;
    flow_ref_set(r, client, vip, l4, proto);
    return PARSE_OK;
}

static __always_inline int parse_v4(void *l3, void *data_end, struct flow_ref *r)
{
    struct iphdr *iph = l3;

    if (unlikely((void *)(iph + 1) > data_end))
        return DROVER_STAT_PASS_MALFORMED;
    /* version 4 and a header length of at least 5 words: 0x45..0x4f */
    __u8 vihl = *(__u8 *)iph;
    if (unlikely((__u8)(vihl - 0x45) > 0x0a))
        return DROVER_STAT_PASS_MALFORMED;
    if (unlikely(iph->frag_off & bpf_htons(IP_MF | IP_OFFSET)))
        return DROVER_STAT_PASS_FRAGMENT;
    void *l4 = (void *)iph + (vihl & 0x0f) * 4;
    __u8 proto = iph->protocol;
    if (likely(proto == IPPROTO_TCP))
        return parse_l4(l4, data_end, &iph->saddr, &iph->daddr, IPPROTO_TCP, r);
    if (proto == IPPROTO_UDP)
        return parse_l4(l4, data_end, &iph->saddr, &iph->daddr, IPPROTO_UDP, r);
    if (proto == IPPROTO_ICMP)
        return parse_icmp4(l4, data_end, r);
    return DROVER_STAT_PASS_NON_VIP;
}

static __always_inline int parse_icmp6(void *icmp, void *data_end, struct flow_ref *r)
{
    struct icmp6hdr *ic = icmp;

    if ((void *)(ic + 1) > data_end)
        return DROVER_STAT_PASS_MALFORMED;
    if (ic->icmp6_type != ICMPV6_PKT_TOOBIG)
        return DROVER_STAT_PASS_NON_VIP;
    struct ipv6hdr *in = (void *)(ic + 1);
    if ((void *)(in + 1) > data_end)
        return DROVER_STAT_PASS_MALFORMED;
    __u8 proto = in->nexthdr;
    if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
        return DROVER_STAT_PASS_NON_VIP;
    struct l4_ports *p = (void *)(in + 1);
    if ((void *)(p + 1) > data_end)
        return DROVER_STAT_PASS_MALFORMED;
    struct l4_ports client_to_vip = {.source = p->dest, .dest = p->source};
    flow_ref_set(r, &in->daddr, &in->saddr, &client_to_vip, proto);
    r->icmp = 1;
    return PARSE_OK;
}

static __always_inline int parse_v6(void *l3, void *data_end, struct flow_ref *r)
{
    struct ipv6hdr *ip6 = l3;

    if (unlikely((void *)(ip6 + 1) > data_end))
        return DROVER_STAT_PASS_MALFORMED;
    if (unlikely(ip6->version != 6))
        return DROVER_STAT_PASS_MALFORMED;
    void *l4 = ip6 + 1;
    __u8 proto = ip6->nexthdr;
    if (likely(proto == IPPROTO_TCP))
        return parse_l4(l4, data_end, &ip6->saddr, &ip6->daddr, IPPROTO_TCP, r);
    if (proto == IPPROTO_UDP)
        return parse_l4(l4, data_end, &ip6->saddr, &ip6->daddr, IPPROTO_UDP, r);
    if (proto == IPPROTO_ICMPV6)
        return parse_icmp6(l4, data_end, r);
    if (proto == 44 /* fragment header */)
        return DROVER_STAT_PASS_FRAGMENT;
    return DROVER_STAT_PASS_NON_VIP;
}

/* The words of a drover_vip_slot as the director compares them: the
 * address as two 8-byte words, then port, protocol, family, flags and
 * vip_id in the third. Unions rather than shifts, so the layout (and the
 * byte order) is the struct's. */
union vip_addr_words {
    __u32 addr[4];
    __u64 w[2];
};
union vip_slot_tail {
    struct {
        __u16 port;
        __u8 proto;
        __u8 family;
        __u16 flags;
        __u16 vip_id;
    } f;
    __u64 w;
};
_Static_assert(sizeof(struct drover_vip_slot) == 24 &&
                   __builtin_offsetof(struct drover_vip_slot, key.port) == 16 &&
                   __builtin_offsetof(struct drover_vip_slot, flags) == 20 &&
                   __builtin_offsetof(struct drover_vip_slot, vip_id) == 22,
               "drover_vip_slot: three 8-byte words, as vip_lookup() reads it");

/* The VIP a flow is for in the hash map, for a VIP index slot that
 * several VIPs share (rare: the index is 4x sparse). */
static __always_inline int vip_lookup_shared(const union vip_addr_words *a,
                                             const union vip_slot_tail *t)
{
    struct drover_vip_key k = {
        .port = t->f.port,
        .proto = t->f.proto,
        .family = t->f.family,
    };
    __builtin_memcpy(k.addr, a->addr, sizeof(k.addr));
    struct drover_vip_value *v = bpf_map_lookup_elem(&drover_vips, &k);
    return v ? (int)(v->vip_id & 0x7fffffff) : -1;
}

/* Is the flow's destination a VIP? Its vip_id if so, else -1. One array
 * read for most packets, compared in three words straight from the
 * packet's fields: the VIP index slot either holds this VIP, holds another
 * or nothing (not a VIP), or says several VIPs share it (ask the hash
 * map). vip_half is drover_vip_act's gen, the live half of the index. */
static __always_inline int vip_lookup(const struct flow_ref *r, const __u8 family, __u32 vip_half)
{
    union vip_addr_words a = {};
    union vip_slot_tail want = {.f = {.port = r->vip_port,
                                      .proto = r->proto,
                                      .family = family,
                                      .flags = DROVER_VIP_SLOT_USED}};
    const union vip_slot_tail mask = {
        .f = {.port = 0xffff, .proto = 0xff, .family = 0xff, .flags = DROVER_VIP_SLOT_USED}};

    if (family == DROVER_AF_INET) {
        a.addr[0] = *(const __u32 *)r->vip;
    } else {
        a.w[0] = ((const __u64 *)r->vip)[0];
        a.w[1] = ((const __u64 *)r->vip)[1];
    }
    __u64 fold = a.w[0] ^ a.w[1];
    __u32 idx =
        (vip_half & (DROVER_GENERATIONS - 1)) * DROVER_VIP_SLOTS +
        drover_vip_slot_of((__u32)fold ^ (__u32)(fold >> 32), r->vip_port, r->proto, family);
    const __u64 *slot = bpf_map_lookup_elem(&drover_vip_idx, &idx);
    if (unlikely(!slot))
        return -1;
    /* The address first, on its own branch: a packet for no VIP (an empty
     * slot, or another VIP's) leaves after one compare instead of folding
     * all three words together (15-16 instructions less on a miss, 4-7 on
     * a hit; bench/director/jit_paths.py). */
    union vip_slot_tail got = {.w = slot[2]};
    if (likely(slot[0] == a.w[0]) && likely(slot[1] == a.w[1]) &&
        likely(((got.w ^ want.w) & mask.w) == 0))
        return got.f.vip_id;
    if (unlikely(got.f.flags & DROVER_VIP_SLOT_MORE))
        return vip_lookup_shared(&a, &want);
    return -1;
}

/* drover_flow_hash_state() with the family and the mode as constants: each
 * of the six cases compiles to its own straight-line SipHash over a message
 * of known length, instead of one body that keeps every case alive in
 * registers and on the stack (the hash was the largest part of a VIP
 * packet's cost). Same value as drover_flow_hash_state(). */
static __always_inline __u64 flow_hash(const __u64 init[4], const struct drover_flow *f, __u32 mode)
{
    struct drover_flow g = *f;

    if (f->family == DROVER_AF_INET) {
        g.family = DROVER_AF_INET;
        if (mode == DROVER_HASH_SRC_DPORT)
            return drover_flow_hash_state(init, &g, DROVER_HASH_SRC_DPORT);
        if (mode == DROVER_HASH_5TUPLE)
            return drover_flow_hash_state(init, &g, DROVER_HASH_5TUPLE);
        return drover_flow_hash_state(init, &g, DROVER_HASH_SRC);
    }
    g.family = DROVER_AF_INET6;
    if (mode == DROVER_HASH_SRC_DPORT)
        return drover_flow_hash_state(init, &g, DROVER_HASH_SRC_DPORT);
    if (mode == DROVER_HASH_5TUPLE)
        return drover_flow_hash_state(init, &g, DROVER_HASH_5TUPLE);
    return drover_flow_hash_state(init, &g, DROVER_HASH_SRC);
}

/* A packet from its IP header on, for one family: called with the family
 * as a constant, so each family compiles to its own straight-line path and
 * the fields of the other one are not kept alive (and spilled to the
 * stack) across the parse, the VIP check and the hash. */
static __always_inline int director_ip(struct xdp_md *ctx, void *data, void *data_end,
                                       __u32 vip_half, __u32 l3off, const __u8 family)
{
    struct flow_ref r = {};
    int rc;

    if (family == DROVER_AF_INET)
        rc = parse_v4(data + l3off, data_end, &r);
    else
        rc = parse_v6(data + l3off, data_end, &r);
    if (unlikely(rc != PARSE_OK))
        return pass_counted((__u32)rc);

    int vip = vip_lookup(&r, family, vip_half);
    if (vip < 0)
        return pass_counted(DROVER_STAT_PASS_NON_VIP);
    __u32 vip_id = (__u32)vip;

    struct drover_active *act = bpf_map_lookup_elem(&drover_active, &zero_key);
    if (unlikely(!act))
        return pass_counted(DROVER_STAT_PASS_NO_CONFIG);
    __u32 gen = act->gen & (DROVER_GENERATIONS - 1);
    struct drover_gen_config *cfg = bpf_map_lookup_elem(&drover_gen_cfg, &gen);
    if (unlikely(!cfg || cfg->version != DROVER_MAPS_VERSION))
        return pass_counted(DROVER_STAT_PASS_NO_CONFIG);

    /* Only now the client side: a packet for no VIP never reads it. */
    struct drover_flow f = {
        .sport = r.client_port, .dport = r.vip_port, .proto = r.proto, .family = family};
    if (family == DROVER_AF_INET) {
        f.src[0] = *(const __u32 *)r.client;
        f.dst[0] = *(const __u32 *)r.vip;
    } else {
        /* in 4-byte words, as struct in6_addr would be (from a void *
         * the compiler copies byte by byte: 40 instructions) */
        __builtin_memcpy(f.src, (const __u32 *)r.client, 16);
        __builtin_memcpy(f.dst, (const __u32 *)r.vip, 16);
    }
    __u64 hash = flow_hash(cfg->sip_init, &f, cfg->hash_fields);
    __u32 ri = gen * DROVER_TABLE_ROWS + drover_hash_row(hash);
    struct drover_row *row = bpf_map_lookup_elem(&drover_table, &ri);
    if (unlikely(!row || row->primary >= DROVER_MAX_PROXIES))
        return drop_counted(DROVER_STAT_DROP_NO_PROXY, vip_id);
    __u16 primary = row->primary, secondary = row->secondary;
    __u32 pi = gen * DROVER_MAX_PROXIES + primary;
    struct drover_proxy *pri = bpf_map_lookup_elem(&drover_proxies, &pi);
    if (unlikely(!pri || pri->family == DROVER_AF_NONE))
        return drop_counted(DROVER_STAT_DROP_NO_PROXY, vip_id);
    /* The second hop: another proxy of the primary's family, or none (one
     * hop; counted when it exists but has the other family). */
    const struct drover_proxy *sec = NULL;
    if (likely(secondary < DROVER_MAX_PROXIES && secondary != primary)) {
        __u32 si = gen * DROVER_MAX_PROXIES + secondary;
        const struct drover_proxy *p = bpf_map_lookup_elem(&drover_proxies, &si);
        if (likely(p && p->family == pri->family))
            sec = p;
        else if (p && p->family != DROVER_AF_NONE)
            count_also(DROVER_STAT_HOPS_FAMILY);
    }
    __u8 hop_count = sec ? 2 : 1;

    __u32 inner_len = (__u32)(data_end - data) - l3off;
    __u32 stat_slot = pri->stat_slot;
    int outer = pri->family == DROVER_AF_INET ? (int)OUTER4_LEN : (int)OUTER6_LEN;
    if (unlikely(pri->family == DROVER_AF_INET
                     ? cfg->src_v4 == 0
                     : (cfg->src_v6[0] | cfg->src_v6[1] | cfg->src_v6[2] | cfg->src_v6[3]) == 0))
        return drop_counted(DROVER_STAT_DROP_NO_SOURCE, vip_id);
    if (unlikely(bpf_xdp_adjust_head(ctx, (int)l3off - (int)sizeof(struct ethhdr) - outer)))
        return drop_counted(DROVER_STAT_DROP_ADJUST, vip_id);
    data = (void *)(long)ctx->data;
    data_end = (void *)(long)ctx->data_end;
    __u8 *o = data;
    __u8 gue_proto = family == DROVER_AF_INET ? IPPROTO_IPIP : IPPROTO_IPV6;
    __u16 sport = bpf_htons(drover_hash_sport(hash));

    /* The generation's template of the outer headers in 8-byte words,
     * then the fields that depend on the packet. */
    if (pri->family == DROVER_AF_INET) {
        if (unlikely((void *)(o + sizeof(struct ethhdr) + OUTER4_LEN) > data_end))
            return drop_counted(DROVER_STAT_DROP_ADJUST, vip_id);
        const __u64 *t = (const __u64 *)cfg->outer4;
        __u64 *w = (__u64 *)o;
        w[0] = t[0];
        w[1] = t[1];
        w[2] = t[2];
        w[3] = t[3];
        w[4] = t[4];
        w[5] = t[5];
        _Static_assert(DROVER_OUTER4_HDRS == sizeof(struct ethhdr) + OUTER4_LEN - 8 &&
                           DROVER_OUTER4_HDRS == 48 + 2,
                       "IPv4 template: 6 words, then hop count and next hop");
        o[48] = hop_count;
        o[49] = 1; /* next_hop */
        struct iphdr *iph = (void *)(o + sizeof(struct ethhdr));
        __u16 tot_len = bpf_htons(OUTER4_LEN + inner_len);
        __u32 daddr = pri->addr[0];
        iph->tot_len = tot_len;
        iph->daddr = daddr;
        /* summed in 64 bits: no wrap to mask away before the fold */
        iph->check = drover_csum_fold((__u64)cfg->ip4_csum_base + tot_len + (daddr & 0xffff) +
                                      (daddr >> 16));
        struct udphdr *udp = (void *)(iph + 1);
        udp->source = sport;
        udp->len = bpf_htons(OUTER4_LEN - sizeof(*iph) + inner_len);
        o[43] = gue_proto;
        __u32 *addrs = (void *)(o + DROVER_OUTER4_HDRS);
        addrs[0] = daddr;
        addrs[1] = sec ? sec->addr[0] : 0;
    } else {
        if (unlikely((void *)(o + sizeof(struct ethhdr) + OUTER6_LEN) > data_end))
            return drop_counted(DROVER_STAT_DROP_ADJUST, vip_id);
        const __u64 *t = (const __u64 *)cfg->outer6;
        __u64 *w = (__u64 *)o;
        w[0] = t[0];
        w[1] = t[1];
        w[2] = t[2];
        w[3] = t[3];
        w[4] = t[4];
        w[5] = t[5];
        w[6] = t[6];
        w[7] = t[7];
        _Static_assert(DROVER_OUTER6_HDRS == 64 + 6,
                       "IPv6 template: 8 words, GUE flags, hops version and family, then "
                       "hop count and next hop");
        *(__u32 *)(o + 64) = *(const __u32 *)(cfg->outer6 + 64);
        o[68] = hop_count;
        o[69] = 1; /* next_hop */
        struct ipv6hdr *ip6 = (void *)(o + sizeof(struct ethhdr));
        /* version 6, traffic class 0, flow label from the flow hash */
        *(__be32 *)ip6 = bpf_htonl(0x60000000 | ((__u32)hash & 0xfffff));
        ip6->payload_len = bpf_htons(OUTER6_LEN - sizeof(*ip6) + inner_len);
        __u64 *da = (__u64 *)&ip6->daddr, *pa = (__u64 *)(o + DROVER_OUTER6_HDRS);
        const __u64 *pr = (const __u64 *)pri->addr;
        da[0] = pr[0];
        da[1] = pr[1];
        struct udphdr *udp = (void *)(ip6 + 1);
        udp->source = sport;
        udp->len = bpf_htons(OUTER6_LEN - sizeof(*ip6) + inner_len);
        o[63] = gue_proto;
        pa[0] = pr[0];
        pa[1] = pr[1];
        if (sec) {
            const __u64 *sa = (const __u64 *)sec->addr;
            pa[2] = sa[0];
            pa[3] = sa[1];
        } else {
            pa[2] = 0;
            pa[3] = 0;
        }
    }
    count_outcome(pri->family == DROVER_AF_INET ? DROVER_STAT_ENCAP_V4 : DROVER_STAT_ENCAP_V6);
    if (unlikely(r.icmp))
        count_also(DROVER_STAT_ENCAP_ICMP);
    count_sent(vip_id, stat_slot, inner_len);
    if (cfg->egress_ifindex)
        return bpf_redirect(cfg->egress_ifindex, 0);
    return XDP_TX;
}

SEC("xdp")
int drover_director(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;

    /* The live half of the VIP index, read first while nothing else is
     * live: after the parse, every field of the packet the VIP path needs
     * would have to outlive one more map lookup (kept in the few registers
     * a call preserves, or spilled). The stats are looked up where the
     * packet's outcome is known (pass_counted()). */
    struct drover_vip_active *va = bpf_map_lookup_elem(&drover_vip_act, &zero_key);
    if (!va)
        return pass_counted(DROVER_STAT_PASS_NON_VIP);
    __u32 vip_half = va->gen;

    __u16 proto;
    __u32 l3off;
    if (drover_parse_l2(data, data_end, &proto, &l3off) < 0)
        return pass_counted(DROVER_STAT_PASS_MALFORMED);
    if (proto == bpf_htons(ETH_P_IP))
        return director_ip(ctx, data, data_end, vip_half, l3off, DROVER_AF_INET);
    if (proto == bpf_htons(ETH_P_IPV6))
        return director_ip(ctx, data, data_end, vip_half, l3off, DROVER_AF_INET6);
    return pass_counted(DROVER_STAT_PASS_NOT_IP);
}
