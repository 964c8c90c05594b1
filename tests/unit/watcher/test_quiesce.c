/* SPDX-License-Identifier: Apache-2.0 */
#include <check.h>
#include <stdlib.h>
#include <uv.h>

#include "quiesce.h"
#include "../common/suite_main.h"

START_TEST(test_single_change_waits_min)
{
    struct quiesce q;
    quiesce_init(&q, 200, 2000);
    ck_assert_int_eq(quiesce_deadline(&q), -1);
    ck_assert(!quiesce_due(&q, 100000));
    quiesce_event(&q, 1000);
    ck_assert_int_eq(quiesce_deadline(&q), 1200);
    ck_assert(!quiesce_due(&q, 1199));
    ck_assert(quiesce_due(&q, 1200));
    quiesce_reset(&q);
    ck_assert(!quiesce_due(&q, 5000));
}
END_TEST

START_TEST(test_burst_extends_until_max)
{
    struct quiesce q;
    quiesce_init(&q, 200, 2000);
    /* a change every 150 ms keeps pushing the deadline... */
    for (int64_t t = 0; t <= 1800; t += 150) {
        quiesce_event(&q, t);
        ck_assert(!quiesce_due(&q, t));
    }
    /* ...but never past first + wait_max */
    ck_assert_int_eq(quiesce_deadline(&q), 2000);
    quiesce_event(&q, 1950);
    ck_assert_int_eq(quiesce_deadline(&q), 2000);
    ck_assert(quiesce_due(&q, 2000));
}
END_TEST

/* quiet: the burst ended (wait_min without a change), not cut by
 * wait_max while changes still came */
START_TEST(test_quiet_only_after_wait_min)
{
    struct quiesce q;
    quiesce_init(&q, 200, 2000);
    ck_assert(!quiesce_quiet(&q, 5000)); /* nothing pending */
    for (int64_t t = 0; t <= 1950; t += 150)
        quiesce_event(&q, t);
    ck_assert(quiesce_due(&q, 2000));
    ck_assert(!quiesce_quiet(&q, 2000)); /* due by wait_max, last change 1950 */
    ck_assert(!quiesce_quiet(&q, 2149));
    ck_assert(quiesce_quiet(&q, 2150));
}
END_TEST

START_TEST(test_max_below_min)
{
    struct quiesce q;
    quiesce_init(&q, 500, 100);
    quiesce_event(&q, 0);
    ck_assert_int_eq(quiesce_deadline(&q), 500);
}
END_TEST

/* Leading edge: a change that finds the rule idle is due at once; what
 * follows within wait_min of that action waits for the window, bounded
 * by wait_max as without it. */
START_TEST(test_leading_first_change_at_once)
{
    struct quiesce q;
    quiesce_init(&q, 200, 500);
    quiesce_set_leading(&q, true);
    quiesce_event(&q, 1000);
    ck_assert_int_eq(quiesce_deadline(&q), 1000);
    ck_assert(quiesce_due(&q, 1000));
    quiesce_done(&q, 1000);
    /* 50 ms after the action: the window, not the leading edge */
    quiesce_event(&q, 1050);
    ck_assert_int_eq(quiesce_deadline(&q), 1250);
    for (int64_t t = 1100; t <= 1500; t += 100)
        quiesce_event(&q, t);
    ck_assert_int_eq(quiesce_deadline(&q), 1550); /* first + wait_max */
    quiesce_done(&q, 1550);
    /* wait_min after the last action: at once again */
    quiesce_event(&q, 1750);
    ck_assert_int_eq(quiesce_deadline(&q), 1750);
}
END_TEST

START_TEST(test_leading_waits_while_busy)
{
    struct quiesce q;
    quiesce_init(&q, 200, 500);
    quiesce_set_leading(&q, true);
    quiesce_event_busy(&q, 1000, true); /* an action still in flight */
    ck_assert_int_eq(quiesce_deadline(&q), 1200);
    quiesce_event_busy(&q, 1100, false); /* only a burst's first change decides */
    ck_assert_int_eq(quiesce_deadline(&q), 1300);
    quiesce_done(&q, 1300);
    quiesce_set_leading(&q, false);
    quiesce_event(&q, 5000);
    ck_assert_int_eq(quiesce_deadline(&q), 5200);
}
END_TEST

struct fire_count {
    int n;
    struct quiesce_timer *t;
    int kicks;
    uv_timer_t kicker;
};

static void on_fire(void *arg)
{
    ((struct fire_count *)arg)->n++;
}

static void on_kick(uv_timer_t *h)
{
    struct fire_count *fc = h->data;
    quiesce_timer_kick(fc->t);
    if (++fc->kicks == 10)
        uv_timer_stop(h);
}

/* Ten changes 5 ms apart with wait_min 500 ms (slack for loaded CI
 * machines): one callback. */
START_TEST(test_timer_fires_once_per_burst)
{
    uv_loop_t loop;
    struct fire_count fc = {0};
    uv_loop_init(&loop);
    ck_assert_int_eq(quiesce_timer_new(&loop, 500, 5000, on_fire, &fc, &fc.t), 0);
    uv_timer_init(&loop, &fc.kicker);
    fc.kicker.data = &fc;
    uv_timer_start(&fc.kicker, on_kick, 0, 5);
    while (fc.n == 0 && uv_run(&loop, UV_RUN_ONCE))
        ;
    ck_assert_int_eq(fc.n, 1);
    ck_assert_int_eq(fc.kicks, 10);
    ck_assert(!quiesce_timer_pending(fc.t));
    ck_assert_uint_eq(quiesce_timer_fired(fc.t), 1);
    ck_assert(quiesce_timer_fired_quiet(fc.t)); /* 45 ms of changes, 5 s wait_max */
    quiesce_timer_free(fc.t);
    uv_close((uv_handle_t *)&fc.kicker, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(fc.n, 1);
    uv_loop_close(&loop);
}
END_TEST

static bool never_busy(void *arg)
{
    (void)arg;
    return false;
}

/* With the leading edge a change fires in the loop's next timer pass, not
 * wait_min (5 s here) later; a second change right after waits for it. */
START_TEST(test_timer_leading_fires_at_once)
{
    uv_loop_t loop;
    struct fire_count fc = {0};
    uv_loop_init(&loop);
    ck_assert_int_eq(quiesce_timer_new(&loop, 5000, 10000, on_fire, &fc, &fc.t), 0);
    quiesce_timer_set_leading(fc.t, never_busy, NULL);
    uint64_t t0 = uv_now(&loop);
    quiesce_timer_kick(fc.t);
    while (fc.n == 0 && uv_run(&loop, UV_RUN_ONCE))
        ;
    ck_assert_int_eq(fc.n, 1);
    ck_assert_msg(uv_now(&loop) - t0 < 5000, "fired after %llu ms, the whole window",
                  (unsigned long long)(uv_now(&loop) - t0));
    quiesce_timer_kick(fc.t); /* within wait_min of the action */
    ck_assert(quiesce_timer_pending(fc.t));
    ck_assert_int_eq(fc.n, 1);
    quiesce_timer_free(fc.t);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(fc.n, 1);
    uv_loop_close(&loop);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("quiesce");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_single_change_waits_min);
    tcase_add_test(tc, test_burst_extends_until_max);
    tcase_add_test(tc, test_quiet_only_after_wait_min);
    tcase_add_test(tc, test_max_below_min);
    tcase_add_test(tc, test_timer_fires_once_per_burst);
    tcase_add_test(tc, test_leading_first_change_at_once);
    tcase_add_test(tc, test_leading_waits_while_busy);
    tcase_add_test(tc, test_timer_leading_fires_at_once);
    suite_add_tcase(s, tc);
    return suite_main_run(s);
}
