/* SPDX-License-Identifier: Apache-2.0 */
/*
 * siphash: SipHash-2-4 (Aumasson and Bernstein), the keyed 64-bit hash
 * drover uses wherever an outside party could otherwise choose inputs that
 * collide, and wherever several hosts must compute the same value from the
 * same key (the director's forwarding table, its checksum). Output is
 * defined on bytes, so it is the same on every platform and endianness.
 *
 * One-shot siphash24() and a streaming form (init/update/final) for inputs
 * that are built piece by piece. No allocation, no global state.
 */
#ifndef DROVER_SIPHASH_H
#define DROVER_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

#define SIPHASH_KEY_LEN 16

struct siphash_state {
    uint64_t v0, v1, v2, v3;
    uint64_t tail;      /* up to 7 pending bytes, little-endian */
    unsigned tail_len;  /* 0..7 */
    uint64_t total_len; /* bytes absorbed so far (only the low 8 bits matter) */
};

/* SipHash-2-4 of data[0..len) under the 16-byte key. */
uint64_t siphash24(const uint8_t key[SIPHASH_KEY_LEN], const void *data, size_t len);

void siphash24_init(struct siphash_state *st, const uint8_t key[SIPHASH_KEY_LEN]);
void siphash24_update(struct siphash_state *st, const void *data, size_t len);
/* Finish and return the hash; the state must be re-initialised to reuse. */
uint64_t siphash24_final(struct siphash_state *st);

#endif
