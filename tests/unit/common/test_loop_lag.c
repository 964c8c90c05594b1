/* SPDX-License-Identifier: Apache-2.0 */
/* loop_lag: a blocked loop counts as stalled, a loop waiting for its next
 * timer does not. */
#include <check.h>
#include <stdbool.h>
#include <stdlib.h>

#include "../../lib/test_sleep.h"
#include "loop_lag.h"
#include "suite_main.h"

#define BLOCK_MS 300

struct run {
    struct loop_lag *lag;
    uint64_t at_start, at_end;
    unsigned ticks;
    bool block;
};

static void on_tick(uv_timer_t *t)
{
    struct run *r = t->data;

    if (r->ticks == 0)
        r->at_start = loop_lag_stalled_ms(r->lag);
    if (r->block && r->ticks == 1) {
        sleep_ms(BLOCK_MS);
    }
    if (++r->ticks == 4) {
        r->at_end = loop_lag_stalled_ms(r->lag);
        uv_timer_stop(t);
    }
}

/* Four ticks 100 ms apart, the second one blocking the loop when asked. */
static uint64_t stalled_over_run(bool block)
{
    uv_loop_t loop;
    uv_timer_t t;
    struct run r = {.block = block};

    ck_assert_int_eq(uv_loop_init(&loop), 0);
    ck_assert_int_eq(loop_lag_new(&loop, &r.lag), 0);
    uv_timer_init(&loop, &t);
    t.data = &r;
    uv_timer_start(&t, on_tick, 100, 100);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&t, NULL);
    loop_lag_unref(r.lag);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    return r.at_end - r.at_start;
}

START_TEST(test_blocked_loop_is_stalled)
{
    uint64_t ms = stalled_over_run(true);
    ck_assert_msg(ms >= BLOCK_MS, "blocked %d ms, counted %llu", BLOCK_MS, (unsigned long long)ms);
}
END_TEST

START_TEST(test_waiting_loop_is_not_stalled)
{
    /* 300 ms of waiting for timers; a loaded machine delays the wake-ups
     * somewhat (that is lag too), never by half the run */
    uint64_t ms = stalled_over_run(false);
    ck_assert_msg(ms < BLOCK_MS / 2, "an idle loop counted %llu ms stalled",
                  (unsigned long long)ms);
}
END_TEST

static void count_handle(uv_handle_t *h, void *arg)
{
    unsigned *n = arg;

    *n += uv_handle_get_type(h) == UV_PREPARE && !uv_is_closing(h);
}

static unsigned prepare_handles(uv_loop_t *loop)
{
    unsigned n = 0;

    uv_walk(loop, count_handle, &n);
    return n;
}

/* Shared by reference: measuring goes on until the last one is dropped. */
START_TEST(test_last_reference_stops_measuring)
{
    uv_loop_t loop;
    struct loop_lag *lag;

    ck_assert_int_eq(uv_loop_init(&loop), 0);
    ck_assert_int_eq(loop_lag_new(&loop, &lag), 0);
    ck_assert_ptr_eq(loop_lag_ref(lag), lag);
    loop_lag_unref(lag);
    ck_assert_uint_eq(prepare_handles(&loop), 1);
    loop_lag_unref(lag);
    ck_assert_uint_eq(prepare_handles(&loop), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

/* Half the timeout, or a second, whichever is less. */
START_TEST(test_own_fault_rule)
{
    static const struct {
        uint64_t timeout_ms, stalled_ms;
        bool own;
    } cases[] = {
        {200, 99, false},     {200, 100, true},     {1000, 499, false},  {1000, 500, true},
        {2000, 999, false},   {2000, 1000, true},   {10000, 999, false}, {10000, 1000, true},
        {330000, 999, false}, {330000, 1000, true}, {0, 0, true},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        ck_assert_msg(loop_lag_own_fault(cases[i].stalled_ms, cases[i].timeout_ms) == cases[i].own,
                      "timeout %llu ms, stalled %llu ms: want %s",
                      (unsigned long long)cases[i].timeout_ms,
                      (unsigned long long)cases[i].stalled_ms, cases[i].own ? "own" : "peer's");
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("loop_lag");
    TCase *tc = tcase_create("loop_lag");
    tcase_add_test(tc, test_blocked_loop_is_stalled);
    tcase_add_test(tc, test_waiting_loop_is_not_stalled);
    tcase_add_test(tc, test_last_reference_stops_measuring);
    tcase_add_test(tc, test_own_fault_rule);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return suite_main_run(suite());
}
