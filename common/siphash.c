/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SipHash-2-4, written from the description in the SipHash paper
 * (https://131002.net/siphash/siphash.pdf): 2 compression rounds per 8-byte
 * word, 4 finalisation rounds, the message length in the top byte of the
 * last word.
 */
#include "siphash.h"

#include <string.h>

static inline uint64_t rotl64(uint64_t x, unsigned b)
{
    return (x << b) | (x >> (64 - b));
}

static inline uint64_t load_le64(const uint8_t *p)
{
    /* Byte by byte so the result is independent of host endianness. */
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
           (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 |
           (uint64_t)p[7] << 56;
}

static inline void sip_round(struct siphash_state *st)
{
    st->v0 += st->v1;
    st->v1 = rotl64(st->v1, 13);
    st->v1 ^= st->v0;
    st->v0 = rotl64(st->v0, 32);
    st->v2 += st->v3;
    st->v3 = rotl64(st->v3, 16);
    st->v3 ^= st->v2;
    st->v0 += st->v3;
    st->v3 = rotl64(st->v3, 21);
    st->v3 ^= st->v0;
    st->v2 += st->v1;
    st->v1 = rotl64(st->v1, 17);
    st->v1 ^= st->v2;
    st->v2 = rotl64(st->v2, 32);
}

static inline void sip_absorb(struct siphash_state *st, uint64_t m)
{
    st->v3 ^= m;
    sip_round(st);
    sip_round(st);
    st->v0 ^= m;
}

void siphash24_init(struct siphash_state *st, const uint8_t key[SIPHASH_KEY_LEN])
{
    uint64_t k0 = load_le64(key), k1 = load_le64(key + 8);

    /* "somepseudorandomlygeneratedbytes" */
    st->v0 = k0 ^ 0x736f6d6570736575ULL;
    st->v1 = k1 ^ 0x646f72616e646f6dULL;
    st->v2 = k0 ^ 0x6c7967656e657261ULL;
    st->v3 = k1 ^ 0x7465646279746573ULL;
    st->tail = 0;
    st->tail_len = 0;
    st->total_len = 0;
}

void siphash24_update(struct siphash_state *st, const void *data, size_t len)
{
    const uint8_t *p = data;

    st->total_len += len;
    /* Top up a partial word first. */
    while (len > 0 && st->tail_len > 0) {
        st->tail |= (uint64_t)*p++ << (8 * st->tail_len);
        len--;
        if (++st->tail_len == 8) {
            sip_absorb(st, st->tail);
            st->tail = 0;
            st->tail_len = 0;
        }
    }
    for (; len >= 8; len -= 8, p += 8)
        sip_absorb(st, load_le64(p));
    for (; len > 0; len--)
        st->tail |= (uint64_t)*p++ << (8 * st->tail_len++);
}

uint64_t siphash24_final(struct siphash_state *st)
{
    sip_absorb(st, st->tail | (st->total_len & 0xff) << 56);
    st->v2 ^= 0xff;
    for (int i = 0; i < 4; i++)
        sip_round(st);
    return st->v0 ^ st->v1 ^ st->v2 ^ st->v3;
}

uint64_t siphash24(const uint8_t key[SIPHASH_KEY_LEN], const void *data, size_t len)
{
    struct siphash_state st;

    siphash24_init(&st, key);
    siphash24_update(&st, data, len);
    return siphash24_final(&st);
}
