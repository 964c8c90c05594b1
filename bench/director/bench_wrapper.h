/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench_wrapper.h: the map values bench/director/wrapper.bpf.c shares with
 * bench_director.c (the packet the wrapper restores before every run, the
 * keys and the result of the flow-hash programs, the VIP of the non-VIP
 * floor).
 */
#ifndef DROVER_BENCH_WRAPPER_H
#define DROVER_BENCH_WRAPPER_H

#include "drover_maps.h"

struct bench_packet {
    __u32 len;
    __u8 data[DROVER_BENCH_MAX_PKT];
};

struct bench_hash_io {
    __u64 sip_state[4]; /* drover_siphash_init() of the key */
    __u64 mul_key[4];   /* odd multipliers of the multiply-shift */
    __u64 out;
};

/* The one VIP bench_nonvip_floor compares with, in network byte order. */
struct bench_floor_vip {
    __u32 v4;
    __u32 pad;
    __u64 v6[2];
};

#endif
