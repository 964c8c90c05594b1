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
#include <bpf/bpf_helpers.h>

#include "drover_maps.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct bench_packet {
    __u32 len;
    __u8 data[DROVER_BENCH_MAX_PKT];
};

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
