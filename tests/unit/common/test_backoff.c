/* SPDX-License-Identifier: Apache-2.0 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "backoff.h"
#include "suite_main.h"

#define ROUNDS 2000

START_TEST(test_full_bounds_and_growth)
{
    struct backoff b;
    uint64_t max_seen[12] = {0};

    backoff_init(&b, 100, 30000, BACKOFF_FULL);
    /* Many independent retry sequences with different seeds. */
    for (uint64_t seed = 1; seed <= ROUNDS; seed++) {
        backoff_seed(&b, seed);
        backoff_reset(&b);
        for (unsigned n = 0; n < 12; n++) {
            uint64_t window = backoff_peek_max(&b);
            uint64_t d = backoff_next(&b);
            ck_assert_uint_ge(d, 100);
            ck_assert_uint_le(d, 30000);
            ck_assert_uint_le(d, window);
            /* window = base * 2^n capped */
            uint64_t want = 100ULL << n;
            ck_assert_uint_eq(window, want > 30000 ? 30000 : want);
            if (d > max_seen[n])
                max_seen[n] = d;
        }
    }
    /* The spread grows with the attempt until the cap. */
    for (unsigned n = 1; n < 9; n++)
        ck_assert_uint_gt(max_seen[n], max_seen[n - 1]);
    /* with 2000 draws the window's top is approached */
    ck_assert_uint_gt(max_seen[11], 29000);
}
END_TEST

START_TEST(test_decorrelated_bounds_and_growth)
{
    struct backoff b;
    uint64_t sum_first = 0, sum_late = 0;

    backoff_init(&b, 50, 10000, BACKOFF_DECORRELATED);
    for (uint64_t seed = 1; seed <= ROUNDS; seed++) {
        backoff_seed(&b, seed * 7919);
        backoff_reset(&b);
        uint64_t prev = 50;
        for (unsigned n = 0; n < 20; n++) {
            uint64_t d = backoff_next(&b);
            ck_assert_uint_ge(d, 50);
            ck_assert_uint_le(d, 10000);
            ck_assert_uint_le(d, prev * 3);
            prev = d;
            if (n == 0)
                sum_first += d;
            if (n == 19)
                sum_late += d;
        }
    }
    /* first delay is in [50,150]; after 20 steps it is near the cap */
    ck_assert_uint_le(sum_first / ROUNDS, 150);
    ck_assert_uint_gt(sum_late / ROUNDS, 1000);
}
END_TEST

START_TEST(test_reset_after_success)
{
    struct backoff b;

    backoff_init(&b, 100, 60000, BACKOFF_FULL);
    backoff_seed(&b, 42);
    for (int i = 0; i < 30; i++)
        backoff_next(&b);
    ck_assert_uint_eq(backoff_peek_max(&b), 60000);
    backoff_reset(&b);
    ck_assert_uint_eq(b.attempt, 0);
    ck_assert_uint_eq(backoff_peek_max(&b), 100);
    ck_assert_uint_eq(backoff_next(&b), 100); /* window [100,100] */

    backoff_init(&b, 100, 60000, BACKOFF_DECORRELATED);
    for (int i = 0; i < 30; i++)
        backoff_next(&b);
    backoff_reset(&b);
    ck_assert_uint_le(backoff_next(&b), 300);
}
END_TEST

START_TEST(test_seed_is_deterministic_and_init_random)
{
    struct backoff a, b;
    uint64_t va[16], vb[16];

    backoff_init(&a, 10, 100000, BACKOFF_FULL);
    backoff_init(&b, 10, 100000, BACKOFF_FULL);
    backoff_seed(&a, 99);
    backoff_seed(&b, 99);
    for (int i = 0; i < 16; i++) {
        va[i] = backoff_next(&a);
        vb[i] = backoff_next(&b);
    }
    ck_assert_mem_eq(va, vb, sizeof(va));

    /* getrandom seeding: two instances differ (2^-256 chance of a false failure) */
    backoff_init(&a, 10, 100000, BACKOFF_FULL);
    backoff_init(&b, 10, 100000, BACKOFF_FULL);
    ck_assert(memcmp(a.rng, b.rng, sizeof(a.rng)) != 0);
}
END_TEST

START_TEST(test_degenerate_parameters)
{
    struct backoff b;

    backoff_init(&b, 0, 0, BACKOFF_FULL);
    ck_assert_uint_eq(backoff_next(&b), 1);
    backoff_init(&b, 500, 100, BACKOFF_DECORRELATED); /* cap below base: clamped */
    for (int i = 0; i < 10; i++)
        ck_assert_uint_eq(backoff_next(&b), 500);
    backoff_init(&b, 1, UINT64_MAX, BACKOFF_FULL);
    for (int i = 0; i < 200; i++)
        ck_assert_uint_ge(backoff_next(&b), 1);
    ck_assert_uint_eq(backoff_peek_max(&b), UINT64_MAX);
    ck_assert_uint_eq(backoff_rand_range(&b, 5, 5), 5);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("backoff");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_full_bounds_and_growth);
    tcase_add_test(tc, test_decorrelated_bounds_and_growth);
    tcase_add_test(tc, test_reset_after_success);
    tcase_add_test(tc, test_seed_is_deterministic_and_init_random);
    tcase_add_test(tc, test_degenerate_parameters);
    suite_add_tcase(s, tc);
    return suite_main_run(s);
}
