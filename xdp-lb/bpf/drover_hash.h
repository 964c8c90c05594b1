/* SPDX-License-Identifier: Apache-2.0 */
/*
 * drover_hash: the keyed flow hash shared by the director BPF program and
 * user space (table builder, tests). SipHash-1-3 over whole 64-bit words:
 * one compression round per word, three finalisation rounds, the message
 * length in bytes in the top byte of the last block, as in the SipHash
 * paper. The key comes from the configuration; there is no default key.
 *
 * drover_flow_words() turns a flow into the words that are hashed, so the
 * kernel and user space agree on which fields count for each
 * enum drover_hash_fields mode.
 */
#ifndef DROVER_HASH_H
#define DROVER_HASH_H

#include "drover_maps.h"

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

#define DROVER_HASH_MAX_WORDS 5

#define DROVER_ROTL(x, b) (__u64)(((x) << (b)) | ((x) >> (64 - (b))))

#define DROVER_SIPROUND(v0, v1, v2, v3)                                                            \
    do {                                                                                           \
        v0 += v1;                                                                                  \
        v1 = DROVER_ROTL(v1, 13);                                                                  \
        v1 ^= v0;                                                                                  \
        v0 = DROVER_ROTL(v0, 32);                                                                  \
        v2 += v3;                                                                                  \
        v3 = DROVER_ROTL(v3, 16);                                                                  \
        v3 ^= v2;                                                                                  \
        v0 += v3;                                                                                  \
        v3 = DROVER_ROTL(v3, 21);                                                                  \
        v3 ^= v0;                                                                                  \
        v2 += v1;                                                                                  \
        v1 = DROVER_ROTL(v1, 17);                                                                  \
        v1 ^= v2;                                                                                  \
        v2 = DROVER_ROTL(v2, 32);                                                                  \
    } while (0)

/* The SipHash state after keying; the director keeps it per generation
 * (drover_gen_config.sip_init) instead of redoing it per packet. */
static __always_inline void drover_siphash_init(const __u64 key[2], __u64 v[4])
{
    v[0] = 0x736f6d6570736575ULL ^ key[0];
    v[1] = 0x646f72616e646f6dULL ^ key[1];
    v[2] = 0x6c7967656e657261ULL ^ key[0];
    v[3] = 0x7465646279746573ULL ^ key[1];
}

#define DROVER_SIP_WORD(v0, v1, v2, v3, m)                                                         \
    do {                                                                                           \
        v3 ^= (m);                                                                                 \
        DROVER_SIPROUND(v0, v1, v2, v3);                                                           \
        v0 ^= (m);                                                                                 \
    } while (0)

/* SipHash-1-3 from a keyed state over a message of len bytes (< 256):
 * nwords = len / 8 whole little-endian words in m, then the last len % 8
 * bytes in the low bytes of tail. Written without a loop over a stack array
 * so each message size compiles to straight-line code on registers: the
 * hash is a large part of the director's per-packet cost. */
static __always_inline __u64 drover_siphash13_state(const __u64 init[4], const __u64 *m, int nwords,
                                                    __u64 tail, __u32 len)
{
    __u64 v0 = init[0], v1 = init[1], v2 = init[2], v3 = init[3];

    if (nwords > 0)
        DROVER_SIP_WORD(v0, v1, v2, v3, m[0]);
    if (nwords > 1)
        DROVER_SIP_WORD(v0, v1, v2, v3, m[1]);
    if (nwords > 2)
        DROVER_SIP_WORD(v0, v1, v2, v3, m[2]);
    if (nwords > 3)
        DROVER_SIP_WORD(v0, v1, v2, v3, m[3]);
    if (nwords > 4)
        DROVER_SIP_WORD(v0, v1, v2, v3, m[4]);
    __u64 b = ((__u64)(len & 0xff) << 56) | tail;
    v3 ^= b;
    DROVER_SIPROUND(v0, v1, v2, v3);
    v0 ^= b;
    v2 ^= 0xff;
    DROVER_SIPROUND(v0, v1, v2, v3);
    DROVER_SIPROUND(v0, v1, v2, v3);
    DROVER_SIPROUND(v0, v1, v2, v3);
    return v0 ^ v1 ^ v2 ^ v3;
}

/* SipHash-1-3 with a key; same message layout. */
static __always_inline __u64 drover_siphash13(const __u64 key[2], const __u64 *m, int nwords,
                                              __u64 tail, __u32 len)
{
    __u64 v[4];

    drover_siphash_init(key, v);
    return drover_siphash13_state(v, m, nwords, tail, len);
}

/* A flow as the director sees it: src is the client, dst the VIP. Ports in
 * network order, addresses as in struct drover_vip_key. */
struct drover_flow {
    __u32 src[4];
    __u32 dst[4];
    __u16 sport;
    __u16 dport;
    __u8 proto;
    __u8 family;
};

/* The hashed message for a mode: the concatenation, in this order, of
 * source address (4 or 16 bytes), [destination address,] source port,
 * [destination port,] [protocol] - ports and addresses as they are on the
 * wire. Fills whole words into w[], the rest into *tail; returns the length
 * in bytes. Keeping the message exactly as long as its fields saves
 * SipHash rounds (an IPv4 source-only hash is a single block). */
static __always_inline __u32 drover_flow_message(const struct drover_flow *f, __u32 mode,
                                                 __u64 w[DROVER_HASH_MAX_WORDS], __u64 *tail)
{
    /* ports [+ dport] [+ proto], packed little-endian, and its length */
    __u64 tl = f->sport;
    __u32 tlen = 2;

    if (mode != DROVER_HASH_SRC) {
        tl |= (__u64)f->dport << 16;
        tlen = 4;
    }
    if (mode == DROVER_HASH_5TUPLE) {
        tl |= (__u64)f->proto << 32;
        tlen = 5;
    }
    if (f->family == DROVER_AF_INET) {
        if (mode == DROVER_HASH_5TUPLE) {
            w[0] = (__u64)f->src[0] | ((__u64)f->dst[0] << 32);
            *tail = tl;
            return 8 + tlen;
        }
        if (mode == DROVER_HASH_SRC_DPORT) {
            w[0] = (__u64)f->src[0] | (tl << 32);
            *tail = 0;
            return 8;
        }
        *tail = (__u64)f->src[0] | (tl << 32);
        return 4 + tlen;
    }
    w[0] = (__u64)f->src[0] | ((__u64)f->src[1] << 32);
    w[1] = (__u64)f->src[2] | ((__u64)f->src[3] << 32);
    if (mode == DROVER_HASH_5TUPLE) {
        w[2] = (__u64)f->dst[0] | ((__u64)f->dst[1] << 32);
        w[3] = (__u64)f->dst[2] | ((__u64)f->dst[3] << 32);
        *tail = tl;
        return 32 + tlen;
    }
    *tail = tl;
    return 16 + tlen;
}

static __always_inline __u64 drover_flow_hash(const __u64 key[2], const struct drover_flow *f,
                                              __u32 mode)
{
    __u64 w[DROVER_HASH_MAX_WORDS] = {0}, tail = 0;
    __u32 len = drover_flow_message(f, mode, w, &tail);

    return drover_siphash13(key, w, (int)(len / 8), tail, len);
}

/* Same, from a keyed state (drover_siphash_init). */
static __always_inline __u64 drover_flow_hash_state(const __u64 init[4],
                                                    const struct drover_flow *f, __u32 mode)
{
    __u64 w[DROVER_HASH_MAX_WORDS], tail = 0;
    __u32 len = drover_flow_message(f, mode, w, &tail);

    return drover_siphash13_state(init, w, (int)(len / 8), tail, len);
}

/* Slot of a VIP key in the VIP index: a cheap multiplicative hash (the
 * index is only a filter in front of the authoritative hash map; VIPs are
 * chosen by operators, not by whoever sends packets). addr_xor is the XOR
 * of the key's four address words: the director computes it from the
 * packet without building a key. */
static __always_inline __u32 drover_vip_slot_of(__u32 addr_xor, __u16 port, __u8 proto,
                                                __u8 family)
{
    __u32 x = addr_xor ^ (((__u32)port << 16) | ((__u32)proto << 8) | family);

    x *= 0x9E3779B1u;
    x ^= x >> 15;
    x *= 0x85EBCA77u;
    return x >> (32 - DROVER_VIP_SLOT_BITS);
}

static __always_inline __u32 drover_vip_slot(const struct drover_vip_key *k)
{
    return drover_vip_slot_of(k->addr[0] ^ k->addr[1] ^ k->addr[2] ^ k->addr[3], k->port,
                              k->proto, k->family);
}

static __always_inline __u32 drover_hash_row(__u64 h)
{
    return (__u32)(h & DROVER_TABLE_MASK);
}

/* Outer UDP source port (host order) for a flow hash: spreads the tunnel
 * over ECMP paths and RSS queues, stable per flow. */
static __always_inline __u16 drover_hash_sport(__u64 h)
{
    return (__u16)(DROVER_GUE_SPORT_BASE + ((h >> 32) & DROVER_GUE_SPORT_MASK));
}

#endif
