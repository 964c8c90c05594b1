/* SPDX-License-Identifier: Apache-2.0 */
/* director_health: the state machine (rise/fall, first result, flap
 * damping) driven by a fake clock. */
#include <check.h>
#include <stdbool.h>
#include <stdint.h>

#include "director_health.h"
#include "fixture.h"
#include "log.h"

static struct director_health_params params(void)
{
    struct director_health_params p = {
        .interval_ms = 2000, .timeout_ms = 1000, .rise = 3, .fall = 3};
    director_health_params_defaults(&p);
    return p;
}

/* Feed n results of one kind, 2 s apart from *now; returns how many
 * changed the effective health. */
static int feed(struct director_health_sm *sm, const struct director_health_params *p, bool ok,
                int n, int64_t *now)
{
    int changes = 0;
    for (int i = 0; i < n; i++) {
        *now += p->interval_ms;
        changes += director_health_sm_result(sm, p, ok, *now);
    }
    return changes;
}

START_TEST(test_defaults)
{
    struct director_health_params p = {0};
    director_health_params_defaults(&p);
    ck_assert_int_eq(p.interval_ms, 2000);
    ck_assert_int_eq(p.timeout_ms, 1000);
    ck_assert_uint_eq(p.rise, 3);
    ck_assert_uint_eq(p.fall, 3);
}
END_TEST

START_TEST(test_unknown_is_healthy_and_first_result_settles)
{
    struct director_health_params p = params();
    struct director_health_sm sm;
    int64_t now = 0;

    director_health_sm_init(&sm);
    ck_assert(director_health_sm_healthy(&sm));
    ck_assert_int_eq(feed(&sm, &p, false, 1, &now), 1); /* one failure settles it down */
    ck_assert_int_eq(sm.state, DIRECTOR_HEALTH_DOWN);
    ck_assert(!director_health_sm_healthy(&sm));
    ck_assert_uint_eq(sm.changes, 0); /* settling is not a flap */

    director_health_sm_init(&sm);
    ck_assert_int_eq(feed(&sm, &p, true, 1, &now), 0); /* unknown -> up: still healthy */
    ck_assert_int_eq(sm.state, DIRECTOR_HEALTH_UP);
}
END_TEST

START_TEST(test_fall_and_rise)
{
    struct director_health_params p = params();
    struct director_health_sm sm;
    int64_t now = 0;

    director_health_sm_init(&sm);
    feed(&sm, &p, true, 1, &now);
    ck_assert_int_eq(feed(&sm, &p, false, 2, &now), 0);
    ck_assert(director_health_sm_healthy(&sm));
    /* a success in between resets the failure run */
    feed(&sm, &p, true, 1, &now);
    ck_assert_int_eq(feed(&sm, &p, false, 2, &now), 0);
    ck_assert_int_eq(feed(&sm, &p, false, 1, &now), 1);
    ck_assert_int_eq(sm.state, DIRECTOR_HEALTH_DOWN);
    ck_assert_int_eq(feed(&sm, &p, true, 2, &now), 0);
    ck_assert_int_eq(feed(&sm, &p, false, 1, &now), 0);
    ck_assert_int_eq(feed(&sm, &p, true, 2, &now), 0);
    ck_assert(!director_health_sm_healthy(&sm));
    ck_assert_int_eq(feed(&sm, &p, true, 1, &now), 1);
    ck_assert_int_eq(sm.state, DIRECTOR_HEALTH_UP);
    ck_assert_uint_eq(sm.changes, 2);
}
END_TEST

START_TEST(test_flapping_is_suppressed_then_released)
{
    struct director_health_params p = params();
    struct director_health_sm sm;
    int64_t now = 0;

    p.rise = p.fall = 1; /* every result is a change: worst case flapping */
    director_health_sm_init(&sm);
    feed(&sm, &p, true, 1, &now);
    feed(&sm, &p, false, 1, &now); /* change 1 */
    feed(&sm, &p, true, 1, &now);  /* change 2 */
    ck_assert(director_health_sm_healthy(&sm));
    ck_assert(!sm.suppressed);
    feed(&sm, &p, false, 1, &now); /* change 3: penalty ~2900 > 2500 */
    ck_assert(sm.suppressed);
    /* up again, but suppressed: still unhealthy for the table */
    ck_assert_int_eq(feed(&sm, &p, true, 1, &now), 0);
    ck_assert_int_eq(sm.state, DIRECTOR_HEALTH_UP);
    ck_assert(!director_health_sm_healthy(&sm));
    /* stable: the penalty decays (half-life 30 s) below reuse (1000) */
    double pen = director_health_sm_penalty(&sm, &p, now);
    ck_assert(pen > 3000);
    int64_t release = now;
    while (director_health_sm_penalty(&sm, &p, release) >= p.flap_reuse)
        release += 1000;
    ck_assert(release - now > 30000); /* damped for a while */
    ck_assert(!director_health_sm_tick(&sm, &p, release - 1000));
    ck_assert(director_health_sm_tick(&sm, &p, release));
    ck_assert(!sm.suppressed);
    ck_assert(director_health_sm_healthy(&sm));
}
END_TEST

START_TEST(test_slow_changes_not_suppressed)
{
    struct director_health_params p = params();
    struct director_health_sm sm;
    int64_t now = 0;

    p.rise = p.fall = 1;
    director_health_sm_init(&sm);
    feed(&sm, &p, true, 1, &now);
    for (int i = 0; i < 10; i++) {
        now += 120000; /* one change every two minutes: a real outage pattern */
        director_health_sm_result(&sm, &p, i % 2 == 0 ? false : true, now);
        ck_assert(!sm.suppressed);
    }
    ck_assert_uint_eq(sm.changes, 10);
}
END_TEST

START_TEST(test_time_going_backwards_is_harmless)
{
    struct director_health_params p = params();
    struct director_health_sm sm;

    p.rise = p.fall = 1;
    director_health_sm_init(&sm);
    director_health_sm_result(&sm, &p, true, 100000);
    director_health_sm_result(&sm, &p, false, 101000);
    double before = director_health_sm_penalty(&sm, &p, 101000);
    /* earlier time: no negative decay (penalty must not grow) */
    ck_assert(director_health_sm_penalty(&sm, &p, 50000) <= before);
    ck_assert(!director_health_sm_tick(&sm, &p, 50000));
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("director_health");
    TCase *tc = tcase_create("state machine");
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_unknown_is_healthy_and_first_result_settles);
    tcase_add_test(tc, test_fall_and_rise);
    tcase_add_test(tc, test_flapping_is_suppressed_then_released);
    tcase_add_test(tc, test_slow_changes_not_suppressed);
    tcase_add_test(tc, test_time_going_backwards_is_harmless);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return fixture_run_quiet(suite());
}
