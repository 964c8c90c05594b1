/* SPDX-License-Identifier: Apache-2.0 */
/* loop_lag: a blocked loop counts as stalled, a loop waiting for its next
 * timer does not, and neither does a process stopped in its wait for I/O. */
#include <check.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../lib/test_sleep.h"
#include "loop_lag.h"
#include "proc_stat.h"
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

/* ---- a process stopped while the loop waits for I/O ---- */

#define STOP_MS 500
#define TICK_MS 200

struct stopped {
    struct loop_lag *lag;
    uv_timer_t start, tick;
    uv_poll_t poll;
    int pipe[2];
    pid_t helper;
    uint64_t at_start, at_end;
};

/* Whether pid sleeps in the kernel (state S in /proc/PID/stat): its loop
 * is in its wait for I/O, the only place the test's loop sleeps. */
static bool sleeping(pid_t pid)
{
    char state;
    int ppid;

    return proc_stat_read((int)pid, &state, &ppid) == 0 && state == 'S';
}

/* The helper process: SIGSTOP pid as soon as it sleeps in its wait (within
 * 5 s), SIGCONT it STOP_MS later and tell it through fd that it is done. */
static void stop_in_wait(pid_t pid, int fd)
{
    for (int i = 0; i < 5000 && !sleeping(pid); i++)
        usleep(1000);
    kill(pid, SIGSTOP);
    sleep_ms(STOP_MS);
    kill(pid, SIGCONT);
    if (write(fd, "x", 1) != 1)
        _exit(1);
    _exit(0);
}

static void on_resumed(uv_poll_t *p, int status, int events)
{
    struct stopped *r = p->data;

    (void)status;
    (void)events;
    r->at_end = loop_lag_stalled_ms(r->lag);
    uv_poll_stop(p);
    uv_timer_stop(&r->tick);
}

static void on_bound_tick(uv_timer_t *t)
{
    (void)t; /* keeps every wait of the loop bounded by TICK_MS */
}

/* A new I/O watcher (as a health check's connecting socket is) and, while
 * the loop waits in the kernel right after, the process stops: libuv
 * 1.44's uv_backend_timeout() says 0 for that wait (the watcher is not yet
 * registered) although it blocks until the next tick. */
static void on_start(uv_timer_t *t)
{
    struct stopped *r = t->data;
    pid_t self = getpid();

    ck_assert_int_eq(uv_poll_start(&r->poll, UV_READABLE, on_resumed), 0);
    r->at_start = loop_lag_stalled_ms(r->lag);
    r->helper = fork();
    ck_assert_int_ge(r->helper, 0);
    if (r->helper == 0)
        stop_in_wait(self, r->pipe[1]);
}

START_TEST(test_stopped_in_wait_with_new_watcher_is_stalled)
{
    uv_loop_t loop;
    struct stopped r = {0};
    int status;

    ck_assert_int_eq(pipe(r.pipe), 0);
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    ck_assert_int_eq(loop_lag_new(&loop, &r.lag), 0);
    uv_timer_init(&loop, &r.start);
    uv_timer_init(&loop, &r.tick);
    uv_poll_init(&loop, &r.poll, r.pipe[0]);
    r.start.data = r.poll.data = &r;
    uv_timer_start(&r.start, on_start, 10, 0);
    uv_timer_start(&r.tick, on_bound_tick, TICK_MS, TICK_MS);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(waitpid(r.helper, &status, 0), r.helper);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the stopping helper failed");
    uv_close((uv_handle_t *)&r.start, NULL);
    uv_close((uv_handle_t *)&r.tick, NULL);
    uv_close((uv_handle_t *)&r.poll, NULL);
    loop_lag_unref(r.lag);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    close(r.pipe[0]);
    close(r.pipe[1]);
    /* of the STOP_MS stopped, at most one tick was within the wait's own
     * timeout */
    uint64_t ms = r.at_end - r.at_start;
    ck_assert_msg(ms >= STOP_MS - TICK_MS, "stopped %d ms in the wait, counted %llu", STOP_MS,
                  (unsigned long long)ms);
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
    tcase_add_test(tc, test_stopped_in_wait_with_new_watcher_is_stalled);
    tcase_add_test(tc, test_last_reference_stops_measuring);
    tcase_add_test(tc, test_own_fault_rule);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return suite_main_run(suite());
}
