// SPDX-License-Identifier: Apache-2.0
/*
 * Benchmark wrapper for BPF_PROG_TEST_RUN with repeat > 1. The kernel reruns
 * a program on the packet the previous run left behind, so an encapsulating
 * (or decapsulating) program would measure garbage after the first run.
 * bench_wrapper first puts the original packet back (length via
 * bpf_xdp_adjust_head, bytes from bench_pkt) and then tail-calls the program
 * under test in bench_progs[0]. bench_null is the "program that just
 * returns": wrapper + bench_null is the wrapper's own cost, subtracted from
 * every figure; wrapper + bench_tx (returns XDP_TX) is the baseline of the
 * director's ratios.
 */
#include "vmlinux.h"
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "drover_hash.h"
#include "drover_maps.h"

#include "bench_wrapper.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct bench_packet);
} bench_pkt SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PROG_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u32);
} bench_progs SEC(".maps");

SEC("xdp")
int bench_wrapper(struct xdp_md *ctx)
{
    __u32 zero = 0;
    struct bench_packet *p = bpf_map_lookup_elem(&bench_pkt, &zero);

    if (!p)
        return XDP_ABORTED;
    __u32 len = p->len;
    if (len == 0 || len > DROVER_BENCH_MAX_PKT)
        return XDP_ABORTED;
    int cur = (int)(ctx->data_end - ctx->data);
    if (cur != (int)len) {
        /* data_end never moves: only the head did */
        if (bpf_xdp_adjust_head(ctx, cur - (int)len))
            return XDP_ABORTED;
    }
    if (bpf_xdp_store_bytes(ctx, 0, p->data, len))
        return XDP_ABORTED;
    bpf_tail_call(ctx, &bench_progs, 0);
    return XDP_ABORTED;
}

SEC("xdp")
int bench_null(struct xdp_md *ctx)
{
    return XDP_PASS;
}

/* The baseline of the ratios: a program that only sends the packet back
 * out (issue 19: the director's raw cost per VIP packet against this). */
SEC("xdp")
int bench_tx(struct xdp_md *ctx)
{
    return XDP_TX;
}

/* The floor of any GUE director (issue 19, the cost model in
 * docs/director.md "Tests and benchmark"): what a director that did
 * nothing but encapsulate would pay - one array lookup for its settings,
 * bpf_xdp_adjust_head for the 44 bytes of outer IPv4/UDP/GUE/hop list,
 * 56 bytes of outer headers written from the map value in 8-byte words,
 * XDP_TX - with no parse, VIP check, hash, table or counters. Its raw cost
 * over bench_tx's is the part of director_syn_ratio no code change in the
 * director can remove (the wrapper's head adjust back included, as for
 * the director). */
SEC("xdp")
int bench_encap_floor(struct xdp_md *ctx)
{
    __u32 zero = 0;
    const struct bench_packet *tmpl = bpf_map_lookup_elem(&bench_pkt, &zero);

    if (!tmpl || bpf_xdp_adjust_head(ctx, -44))
        return XDP_ABORTED;
    __u64 *w = (void *)(long)ctx->data;
    if ((void *)(w + 7) > (void *)(long)ctx->data_end)
        return XDP_ABORTED;
    const __u64 *t = (const __u64 *)(tmpl->data + 4); /* 8-byte aligned in the value */
    w[0] = t[0];
    w[1] = t[1];
    w[2] = t[2];
    w[3] = t[3];
    w[4] = t[4];
    w[5] = t[5];
    w[6] = t[6];
    return XDP_TX;
}

/* The floor of any director for a packet that is not for it (issue 19,
 * docs/director.md "The non-VIP path"): read data/data_end, one per-CPU RX
 * counter, the Ethernet type, the IPv4 or IPv6 header's bounds and
 * version, the destination compared with one VIP address, XDP_PASS - no
 * VLAN tags, ports, protocol, fragments, VIP set or generation. The VIP is
 * a global (.bss: a map value the program addresses directly, no lookup),
 * written by bench_director; a packet to it returns XDP_TX, so the bench
 * can check that the compare is made. Its raw cost over bench_tx's, in
 * turn with the director on the same non-VIP packet, is the part of
 * director_nonvip_over_baseline_ns no change to the director can remove. */
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
} bench_floor_rx SEC(".maps");

struct bench_floor_vip bench_floor_vip;

static const __u32 floor_key = 0;

SEC("xdp")
int bench_nonvip_floor(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
    __u64 *rx = bpf_map_lookup_elem(&bench_floor_rx, &floor_key);

    if (!rx)
        return XDP_PASS;
    (*rx)++;
    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > end)
        return XDP_PASS;
    if (eth->h_proto == bpf_htons(0x0800)) {
        struct iphdr *ip = (void *)(eth + 1);
        if ((void *)(ip + 1) > end || ip->version != 4)
            return XDP_PASS;
        return ip->daddr == bench_floor_vip.v4 ? XDP_TX : XDP_PASS;
    }
    if (eth->h_proto == bpf_htons(0x86DD)) {
        struct ipv6hdr *ip6 = (void *)(eth + 1);
        if ((void *)(ip6 + 1) > end || ip6->version != 6)
            return XDP_PASS;
        const __u64 *d = (const __u64 *)&ip6->daddr;
        return d[0] == bench_floor_vip.v6[0] && d[1] == bench_floor_vip.v6[1] ? XDP_TX : XDP_PASS;
    }
    return XDP_PASS;
}

/* The flow hash alone (issue 19: what the keyed hash costs per packet, for
 * the choice in docs/director.md "Flow hash"). The three programs read the
 * source address and port of an untagged TCP packet (IPv4 or IPv6, no
 * options) the same way and store a 64-bit result the same way; only the
 * combining differs: bench_hash_ctl XORs the words (the control),
 * bench_hash_sip is the director's SipHash-1-3 from a keyed state
 * (drover_flow_hash_state, mode src, per family as director.bpf.c does),
 * bench_hash_mul a keyed multilinear multiply-shift (the cheap linear
 * alternative that docs/director.md rejects). */
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct bench_hash_io);
} bench_hash SEC(".maps");

static __always_inline int bench_read_flow(struct xdp_md *ctx, struct drover_flow *f)
{
    void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;

    if ((void *)(eth + 1) > end)
        return -1;
    if (eth->h_proto == bpf_htons(0x0800)) {
        struct iphdr *ip = (void *)(eth + 1);
        __be16 *ports = (void *)(ip + 1);
        if ((void *)(ports + 2) > end)
            return -1;
        f->family = DROVER_AF_INET;
        f->src[0] = ip->saddr;
        f->sport = ports[0];
        return 0;
    }
    struct ipv6hdr *ip6 = (void *)(eth + 1);
    __be16 *ports = (void *)(ip6 + 1);
    if ((void *)(ports + 2) > end)
        return -1;
    f->family = DROVER_AF_INET6;
    __builtin_memcpy(f->src, &ip6->saddr, 16);
    f->sport = ports[0];
    return 0;
}

/* The map value and the flow of the packet; NULL when either is missing. */
static __always_inline struct bench_hash_io *bench_hash_input(struct xdp_md *ctx,
                                                              struct drover_flow *f)
{
    __u32 zero = 0;
    struct bench_hash_io *io = bpf_map_lookup_elem(&bench_hash, &zero);

    if (!io || bench_read_flow(ctx, f) < 0)
        return NULL;
    return io;
}

SEC("xdp")
int bench_hash_ctl(struct xdp_md *ctx)
{
    struct drover_flow f = {};
    struct bench_hash_io *io = bench_hash_input(ctx, &f);

    if (!io)
        return XDP_ABORTED;
    io->out = ((__u64)f.src[0] | ((__u64)f.src[1] << 32)) ^
              ((__u64)f.src[2] | ((__u64)f.src[3] << 32)) ^ f.sport;
    return XDP_TX;
}

SEC("xdp")
int bench_hash_sip(struct xdp_md *ctx)
{
    struct drover_flow f = {};
    struct bench_hash_io *io = bench_hash_input(ctx, &f);

    if (!io)
        return XDP_ABORTED;
    if (f.family == DROVER_AF_INET) {
        f.family = DROVER_AF_INET;
        io->out = drover_flow_hash_state(io->sip_state, &f, DROVER_HASH_SRC);
    } else {
        f.family = DROVER_AF_INET6;
        io->out = drover_flow_hash_state(io->sip_state, &f, DROVER_HASH_SRC);
    }
    return XDP_TX;
}

SEC("xdp")
int bench_hash_mul(struct xdp_md *ctx)
{
    struct drover_flow f = {};
    struct bench_hash_io *io = bench_hash_input(ctx, &f);

    if (!io)
        return XDP_ABORTED;
    const __u64 *k = io->mul_key;
    __u64 h;
    if (f.family == DROVER_AF_INET)
        h = k[0] + k[1] * ((__u64)f.src[0] | ((__u64)f.sport << 32));
    else
        h = k[0] + k[1] * ((__u64)f.src[0] | ((__u64)f.src[1] << 32)) +
            k[2] * ((__u64)f.src[2] | ((__u64)f.src[3] << 32)) + k[3] * f.sport;
    io->out = h >> 48; /* the row: the high bits are the well-mixed ones */
    return XDP_TX;
}

/* Counts what arrives at the far end of the veth in the packets/s
 * measurement, then drops it. */
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
} bench_rx SEC(".maps");

SEC("xdp")
int bench_count(struct xdp_md *ctx)
{
    __u32 zero = 0;
    __u64 *n = bpf_map_lookup_elem(&bench_rx, &zero);

    if (n)
        (*n)++;
    return XDP_DROP;
}
