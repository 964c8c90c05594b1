/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The director's HTTP checker when its own process stalls: a reply that
 * arrived while the loop was blocked counts as an answer in time, a check
 * during which the loop could not act is not judged, and a proxy that
 * really does not answer still goes down.
 *
 * The proxy is tests/lib/fake_http on its own loop and thread, so it
 * keeps answering while the test blocks the checker's loop. Server and
 * loop hand over with atomics, so the reply is in the socket before the
 * stall ends and after the check's deadline has passed, whatever the
 * machine's load.
 */
#include <check.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "curl_uv.h"
#include "director_feed.h"
#include "director_health.h"
#include "fake_http.h"
#include "loop_lag.h"
#include "loop_stall.h"
#include "test_sleep.h"
#include "../common/suite_main.h"

#define TIMEOUT_MS  200
#define INTERVAL_MS 300
#define ROUNDS      4

/* ---- the proxy: answers or hangs, on its own thread ---- */

struct proxy {
    struct fake_http_thread *http;
    int port;
    bool answer;         /* false: read requests, never reply */
    bool wait_for_stall; /* reply only once the checker's loop is blocked */
    atomic_uint seen;    /* requests read */
    atomic_uint stalled; /* stalls the loop began (set by the loop) */
    atomic_bool stop;    /* releases a handler waiting for a stall */
};

static void proxy_handler(void *arg, const struct fake_http_req *req, struct fake_http_reply *rep)
{
    struct proxy *p = arg;
    unsigned n = atomic_fetch_add(&p->seen, 1) + 1;

    (void)req;
    if (!p->answer) {
        rep->hang = true;
        return;
    }
    while (p->wait_for_stall && atomic_load(&p->stalled) < n && !atomic_load(&p->stop))
        sleep_ms(1);
    rep->body = strdup("ok");
}

static void proxy_start(struct proxy *p, bool answer, bool wait_for_stall)
{
    memset(p, 0, sizeof(*p));
    p->answer = answer;
    p->wait_for_stall = wait_for_stall;
    ck_assert_int_eq(fake_http_thread_start(proxy_handler, p, &p->http, &p->port), 0);
}

static void proxy_stop(struct proxy *p)
{
    atomic_store(&p->stop, true);
    fake_http_thread_stop(p->http);
}

/* ---- the checker's loop ---- */

struct fixture {
    uv_loop_t loop;
    struct curl_uv *cu;
    struct director_health *h;
    struct proxy proxy;
    struct loop_stall stall; /* the loop blocked for 2 timeouts after each request */
    uv_timer_t poll_timer, give_up;
    bool judged_only; /* stop after ROUNDS judged checks, not counting late ones */
    bool gave_up;
};

/* Once the proxy read a new request, block the loop past the check's
 * deadline. When the proxy answers, it does so only after the stall
 * began, and the stall lasts until the reply was written. The next loop
 * iteration then runs the due deadline timer before it polls for I/O, as
 * after a SIGCONT or CPU starvation. */
static bool stall_on_request(void *arg)
{
    struct fixture *f = arg;
    struct proxy *p = &f->proxy;
    unsigned n = f->stall.stalls + 1;

    if (atomic_load(&p->seen) < n)
        return false;
    atomic_store(&p->stalled, n);
    while (p->answer && fake_http_thread_replies_sent(p->http) < n)
        sleep_ms(1);
    sleep_ms(2 * TIMEOUT_MS);
    return true;
}

static void status(struct fixture *f, struct director_health_status *out)
{
    struct director_health_status *s;

    ck_assert_uint_eq(director_health_list(f->h, &s), 1);
    *out = s[0];
}

/* Stop once ROUNDS checks were judged or counted late. */
static void on_poll_timer(uv_timer_t *timer)
{
    struct fixture *f = timer->data;
    struct director_health_status s;

    status(f, &s);
    if (s.checks + (f->judged_only ? 0 : s.late) >= ROUNDS)
        uv_stop(&f->loop);
}

static void on_give_up(uv_timer_t *timer)
{
    struct fixture *f = timer->data;

    f->gave_up = true;
    uv_stop(&f->loop);
}

static void start(struct fixture *f, bool answer, bool stall, bool judged_only)
{
    char key_val[128];
    struct director_health_opts o = {
        .params = {.interval_ms = INTERVAL_MS, .timeout_ms = TIMEOUT_MS, .rise = 1, .fall = 1},
        .default_path = "/health",
    };
    struct director_inputs *in = calloc(1, sizeof(*in));
    char err[128];

    memset(f, 0, sizeof(*f));
    f->judged_only = judged_only;
    proxy_start(&f->proxy, answer, stall);
    ck_assert_int_eq(uv_loop_init(&f->loop), 0);
    ck_assert_int_eq(curl_uv_new(&f->loop, &f->cu), 0);
    o.default_port = (uint16_t)f->proxy.port;
    /* the loop's measurement, owned here as a daemon's main does */
    ck_assert_int_eq(loop_lag_new(&f->loop, &o.loop_lag), 0);
    ck_assert_int_eq(director_health_new(&f->loop, f->cu, &o, &f->h), 0);
    loop_lag_unref(o.loop_lag);
    snprintf(key_val, sizeof(key_val), "{\"address\":\"127.0.0.1\",\"state\":\"active\"}");
    ck_assert_msg(director_inputs_add_entry(in, "proxies/p1", key_val, strlen(key_val), err,
                                            sizeof(err)) == 0,
                  "%s", err);
    director_inputs_finish(in);
    ck_assert_int_eq(director_health_set_targets(f->h, in, NULL), 0);
    director_inputs_free(in);

    if (stall)
        loop_stall_start(&f->stall, &f->loop, stall_on_request, f, 0);
    uv_timer_init(&f->loop, &f->poll_timer);
    uv_timer_init(&f->loop, &f->give_up);
    f->poll_timer.data = f->give_up.data = f;
    uv_timer_start(&f->poll_timer, on_poll_timer, 10, 10);
    /* each round takes an interval plus, with a stall, two timeouts; allow
     * ten times that for a loaded machine */
    uv_timer_start(&f->give_up, on_give_up, 10ull * ROUNDS * (INTERVAL_MS + 2 * TIMEOUT_MS), 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    ck_assert_msg(!f->gave_up, "gave up waiting for %d checks of the proxy to end", ROUNDS);
}

static void finish(struct fixture *f)
{
    loop_stall_close(&f->stall);
    uv_close((uv_handle_t *)&f->poll_timer, NULL);
    uv_close((uv_handle_t *)&f->give_up, NULL);
    director_health_free(f->h);
    curl_uv_free(f->cu);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&f->loop), 0);
    proxy_stop(&f->proxy);
}

START_TEST(test_reply_read_after_stall_counts)
{
    struct fixture f;
    struct director_health_status s;

    start(&f, true, true, false);
    status(&f, &s);
    ck_assert_uint_ge(f.stall.stalls, ROUNDS - 1);
    ck_assert_msg(s.failures == 0 && s.late == 0,
                  "replies sat in the socket during %u stalls, yet %llu checks failed (%s) and "
                  "%llu were not judged",
                  f.stall.stalls, (unsigned long long)s.failures, s.last_error,
                  (unsigned long long)s.late);
    ck_assert_uint_ge(s.checks, ROUNDS);
    ck_assert(s.healthy);
    finish(&f);
}
END_TEST

START_TEST(test_stalled_check_is_not_judged)
{
    struct fixture f;
    struct director_health_status s;

    start(&f, false, true, false);
    status(&f, &s);
    ck_assert_msg(s.failures == 0, "%llu checks failed although the loop was blocked in each",
                  (unsigned long long)s.failures);
    ck_assert_uint_ge(s.late, ROUNDS);
    ck_assert(s.healthy);
    finish(&f);
}
END_TEST

START_TEST(test_silent_proxy_goes_down)
{
    struct fixture f;
    struct director_health_status s;

    /* The loop is never blocked here, but on a loaded machine this process
     * may wait half a timeout for a CPU now and then, and a check that ran
     * out in such a wait is rightly not judged. So it waits for ROUNDS
     * judged checks (a checker that judged none gives up) and allows fewer
     * late checks than judged ones. */
    start(&f, false, false, true);
    status(&f, &s);
    ck_assert_msg(s.late < s.checks,
                  "%llu checks not judged against %llu judged, with a loop never blocked",
                  (unsigned long long)s.late, (unsigned long long)s.checks);
    ck_assert_uint_ge(s.failures, ROUNDS - 1);
    ck_assert_str_eq(s.last_error, "no answer within 200 ms");
    ck_assert(!s.healthy);
    finish(&f);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("director_health_stall");
    TCase *tc = tcase_create("checker");
    tcase_add_test(tc, test_reply_read_after_stall_counts);
    tcase_add_test(tc, test_stalled_check_is_not_judged);
    tcase_add_test(tc, test_silent_proxy_goes_down);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return suite_main_run(suite());
}
