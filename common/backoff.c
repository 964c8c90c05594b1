/* SPDX-License-Identifier: Apache-2.0 */
#include "backoff.h"

#include <stdbool.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/* splitmix64 expands one seed word into the xoshiro state, which must not
 * be all zero. */
static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t xoshiro_next(uint64_t s[4])
{
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;

    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

void backoff_seed(struct backoff *b, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        b->rng[i] = splitmix64(&seed);
}

void backoff_init(struct backoff *b, uint64_t base_ms, uint64_t cap_ms, enum backoff_jitter jitter)
{
    uint64_t seed;

    b->base_ms = base_ms ? base_ms : 1;
    b->cap_ms = cap_ms < b->base_ms ? b->base_ms : cap_ms;
    b->jitter = jitter;
    if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed)) {
        /* No entropy yet (early boot): time and pid still spread a fleet. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ ((uint64_t)getpid() << 40);
    }
    backoff_seed(b, seed);
    backoff_reset(b);
}

void backoff_reset(struct backoff *b)
{
    b->attempt = 0;
    b->prev_ms = b->base_ms;
}

uint64_t backoff_rand_range(struct backoff *b, uint64_t lo, uint64_t hi)
{
    uint64_t span = hi - lo;

    if (hi <= lo)
        return lo;
    if (span == UINT64_MAX)
        return xoshiro_next(b->rng);
    span++;
    /* Rejection sampling keeps the distribution uniform. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % span;
    uint64_t r;
    do {
        r = xoshiro_next(b->rng);
    } while (r >= limit);
    return lo + r % span;
}

uint64_t backoff_peek_max(const struct backoff *b)
{
    if (b->jitter == BACKOFF_DECORRELATED) {
        uint64_t hi = b->prev_ms > b->cap_ms / 3 ? b->cap_ms : b->prev_ms * 3;
        return hi < b->base_ms ? b->base_ms : hi;
    }
    /* base * 2^attempt, saturating at cap without overflowing. */
    uint64_t hi = b->base_ms;
    for (unsigned i = 0; i < b->attempt && hi < b->cap_ms; i++)
        hi = hi > b->cap_ms / 2 ? b->cap_ms : hi * 2;
    return hi > b->cap_ms ? b->cap_ms : hi;
}

uint64_t backoff_next(struct backoff *b)
{
    uint64_t hi = backoff_peek_max(b);
    uint64_t d = backoff_rand_range(b, b->base_ms, hi);

    b->prev_ms = d;
    if (b->attempt < UINT32_MAX)
        b->attempt++;
    return d;
}
