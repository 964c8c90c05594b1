/* SPDX-License-Identifier: Apache-2.0 */
/*
 * backoff: exponential retry delays with jitter for every reconnect and
 * retry loop (Consul watches, Kubernetes relists, HAProxy sockets).
 *
 *   BACKOFF_FULL:         delay_n uniform in [base, min(cap, base * 2^n)]
 *   BACKOFF_DECORRELATED: delay_n uniform in [base, min(cap, 3 * delay_{n-1})]
 *
 * (both never below base, never above cap). backoff_reset() after a
 * success starts again at base. Each instance has its own small PRNG
 * (xoshiro256**), seeded from getrandom() so a fleet of daemons restarted
 * together does not retry in lockstep; tests seed it explicitly. Not
 * thread-safe: one instance per retry loop.
 */
#ifndef DROVER_BACKOFF_H
#define DROVER_BACKOFF_H

#include <stdint.h>

enum backoff_jitter {
    BACKOFF_FULL,
    BACKOFF_DECORRELATED,
};

struct backoff {
    uint64_t base_ms;
    uint64_t cap_ms;
    enum backoff_jitter jitter;
    uint64_t prev_ms; /* last delay returned (decorrelated state) */
    unsigned attempt; /* delays handed out since init/reset */
    uint64_t rng[4];
};

/* base_ms >= 1 and cap_ms >= base_ms (else clamped). Seeds from getrandom(),
 * falling back to time and pid if that fails. */
void backoff_init(struct backoff *b, uint64_t base_ms, uint64_t cap_ms, enum backoff_jitter jitter);
/* Re-seed deterministically (tests). Does not reset the attempt count. */
void backoff_seed(struct backoff *b, uint64_t seed);
/* Next delay in milliseconds; advances the attempt count. */
uint64_t backoff_next(struct backoff *b);
/* After a success: the next delay starts again around base. */
void backoff_reset(struct backoff *b);
/* Upper bound of the next delay's window (for logs and tests). */
uint64_t backoff_peek_max(const struct backoff *b);
/* Uniform random number in [lo, hi] from b's PRNG (inclusive; lo <= hi). */
uint64_t backoff_rand_range(struct backoff *b, uint64_t lo, uint64_t hi);

#endif
