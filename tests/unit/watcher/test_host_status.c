/* SPDX-License-Identifier: Apache-2.0 */
/*
 * host_status keeps its session alive against a scripted fake Consul
 * (tests/lib/fake_http): a failed renewal is retried within 1-1.5 s, and a
 * renewal due while a slow write is in flight goes out when the write is
 * answered. Either used to wait a whole TTL/3 for the next tick, so two
 * unlucky ticks in a row cost the session (seen at load 17 in the bench).
 * A write refused because another session holds the key (the watcher's
 * previous run, killed) keeps the live session and waits for the tick; it
 * used to make a new session per write (faults_process_death, after
 * director_kill).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consul.h"
#include "fake_http.h"
#include "host_status.h"
#include "../common/suite_main.h"

#define TTL_S   10 /* the smallest Consul allows: a tick every 3.33 s */
#define TICK_MS (TTL_S * 1000 / 3)

struct fake {
    uv_loop_t loop;
    struct fake_http *srv;
    struct consul_client *c;
    struct host_status *hs;
    bool fail_first_renew;
    bool lose_session;      /* the first renewal: 404, Consul restarted without it */
    unsigned lost;          /* session_lost calls */
    unsigned refuse_writes; /* answer this many acquires "false" */
    unsigned n_creates, n_writes;
    uint64_t writes[4];     /* loop times of the writes */
    unsigned slow_write_ms; /* the write after `changed` fires is answered this late */
    bool slow_write_armed;
    uint64_t slow_write_answered; /* loop time it was answered at */
    uint64_t renews[4];           /* loop times of the renewals */
    unsigned n_renews;
    unsigned want_renews; /* run until this many renewals (0: 2) */
    int counter;
    uv_timer_t change, give_up, churn;
    bool gave_up, stopped;
};

static void handler(void *arg, const struct fake_http_req *req, struct fake_http_reply *rep)
{
    struct fake *f = arg;
    uint64_t now = uv_now(&f->loop);

    if (strncmp(req->url, "/v1/session/create", 18) == 0) {
        f->n_creates++;
        rep->body = strdup("{\"ID\":\"s1\"}");
    } else if (strncmp(req->url, "/v1/session/renew/s1", 20) == 0) {
        if (f->n_renews < 4)
            f->renews[f->n_renews] = now;
        if (f->n_renews++ == 0 && f->fail_first_renew) {
            rep->status = 500;
            rep->body = strdup("rpc error making call: No cluster leader");
        } else if (f->n_renews == 1 && f->lose_session) {
            rep->status = 404; /* Consul 1.8's words */
            rep->body = strdup("Session id 's1' not found");
        } else {
            rep->body = strdup("[{\"ID\":\"s1\"}]");
        }
    } else if (strncmp(req->url, "/v1/kv/", 7) == 0) {
        if (f->n_writes < 4)
            f->writes[f->n_writes] = now;
        rep->body = strdup(f->n_writes++ < f->refuse_writes ? "false" : "true");
        if (f->slow_write_armed) {
            f->slow_write_armed = false;
            rep->delay_ms = f->slow_write_ms;
            f->slow_write_answered = now + f->slow_write_ms;
        }
    } else {
        rep->body = strdup("true"); /* session/destroy */
    }
}

static void on_lost(void *arg)
{
    ((struct fake *)arg)->lost++;
}

static json_t *fill(void *arg)
{
    struct fake *f = arg;
    return json_pack("{s:i}", "n", f->counter);
}

/* Just before the first tick: change the record, and make its write slow
 * enough to be in flight when the tick comes. */
static void on_change(uv_timer_t *t)
{
    struct fake *f = t->data;
    f->counter++;
    f->slow_write_armed = true;
    host_status_changed(f->hs);
}

/* Something reported changes every 300 ms (the director's health and
 * table updates do): none may bring a refused write back before the tick. */
static void on_churn(uv_timer_t *t)
{
    struct fake *f = t->data;
    f->counter++;
    host_status_changed(f->hs);
}

static void on_give_up(uv_timer_t *t)
{
    struct fake *f = t->data;
    f->gave_up = true;
    uv_stop(&f->loop);
}

static void on_stopped(void *arg)
{
    struct fake *f = arg;
    f->stopped = true;
}

/* Run until the renewals the test judges (want_renews, by default the
 * second: the one after the first) have come, or give up after three
 * ticks: by then the slowest correct behaviour, the tick, has renewed
 * twice. */
static void run(struct fake *f)
{
    char addr[64];
    int port = 0;

    ck_assert_int_eq(uv_loop_init(&f->loop), 0);
    ck_assert_int_eq(fake_http_start(&f->loop, handler, f, &f->srv, &port), 0);
    snprintf(addr, sizeof(addr), "http://127.0.0.1:%d", port);
    struct consul_config cfg = {.address = addr, .request_timeout_ms = 5000};
    ck_assert_int_eq(consul_client_new(&f->loop, &cfg, &f->c), 0);
    struct host_status_opts o = {.key = "drover/v1/status/h1/watcher",
                                 .ttl_s = TTL_S,
                                 .fill = fill,
                                 .session_lost = on_lost,
                                 .arg = f};
    ck_assert_int_eq(host_status_start(&f->loop, f->c, &o, &f->hs), 0);
    uv_timer_init(&f->loop, &f->change);
    uv_timer_init(&f->loop, &f->give_up);
    uv_timer_init(&f->loop, &f->churn);
    f->change.data = f->give_up.data = f->churn.data = f;
    if (f->slow_write_ms)
        uv_timer_start(&f->change, on_change, TICK_MS - 200, 0);
    if (f->refuse_writes)
        uv_timer_start(&f->churn, on_churn, 300, 300);
    uv_timer_start(&f->give_up, on_give_up, 3 * TICK_MS + 1000, 0);
    unsigned renews = f->want_renews ? f->want_renews : 2;
    /* refusals: until the write after them went through; a lost session:
     * until the write with the new one */
    while (!f->gave_up && (f->refuse_writes  ? f->n_writes <= f->refuse_writes
                           : f->lose_session ? f->n_creates < 2 || f->n_writes < 2
                                             : f->n_renews < renews))
        uv_run(&f->loop, UV_RUN_ONCE);
    host_status_stop(f->hs, on_stopped, f);
    uv_close((uv_handle_t *)&f->change, NULL);
    uv_close((uv_handle_t *)&f->give_up, NULL);
    uv_close((uv_handle_t *)&f->churn, NULL);
    while (!f->stopped)
        uv_run(&f->loop, UV_RUN_ONCE);
    consul_client_free(f->c);
    fake_http_stop(f->srv);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&f->loop), 0);
}

START_TEST(test_failed_renewal_is_retried_soon)
{
    struct fake f = {.fail_first_renew = true};

    run(&f);
    ck_assert_msg(f.n_renews >= 2, "gave up waiting for a second renewal (%u seen)", f.n_renews);
    uint64_t gap = f.renews[1] - f.renews[0];
    /* the retry comes after 1000-1500 ms; the next tick would be 3333 ms */
    ck_assert_msg(gap >= 900 && gap < 2500,
                  "renewal retried %llu ms after it failed (expected 1000-1500, a tick is %d)",
                  (unsigned long long)gap, TICK_MS);
}
END_TEST

START_TEST(test_renewal_not_skipped_behind_a_slow_write)
{
    /* only the first renewal is judged: the second tick's adds ~2 s */
    struct fake f = {.slow_write_ms = 1500, .want_renews = 1};

    run(&f);
    ck_assert_msg(f.n_renews >= 1 && f.slow_write_answered, "no renewal (%u) or no slow write",
                  f.n_renews);
    /* the write was in flight at the first tick; the renewal must follow
     * its answer at once, not wait for the second tick 2 s later */
    ck_assert_msg(
        f.renews[0] >= f.slow_write_answered && f.renews[0] - f.slow_write_answered < 1000,
        "first renewal at %llu ms, the slow write answered at %llu ms (tick %d ms)",
        (unsigned long long)f.renews[0], (unsigned long long)f.slow_write_answered, TICK_MS);
}
END_TEST

START_TEST(test_refused_write_keeps_the_session)
{
    struct fake f = {.refuse_writes = 1};

    run(&f);
    ck_assert_msg(f.n_writes >= 2, "gave up waiting for the write after the refusal (%u writes)",
                  f.n_writes);
    ck_assert_msg(f.n_creates == 1, "%u sessions created: a live one was dropped", f.n_creates);
    ck_assert_msg(f.n_renews >= 1, "the session was not checked after the refusal");
    /* the write again at the tick, not at the next change (300 ms) */
    uint64_t gap = f.writes[1] - f.writes[0];
    ck_assert_msg(gap >= TICK_MS - 500 && gap < TICK_MS + 1500,
                  "written again %llu ms after the refusal (expected at the tick, %d ms)",
                  (unsigned long long)gap, TICK_MS);
}
END_TEST

/* The renewal says the session is gone (Consul restarted empty): a new
 * session and the entry written with it, not renewals of the lost one
 * until the end of time (faults_consul_loss, session 9). */
START_TEST(test_lost_session_is_replaced)
{
    struct fake f = {.lose_session = true};

    run(&f);
    ck_assert_msg(f.n_creates >= 2, "no new session after the renewal answered 404 (%u renewals)",
                  f.n_renews);
    ck_assert_msg(f.n_writes >= 2, "the entry was not written again with the new session");
    ck_assert_msg(f.n_renews == 1, "%u renewals: the lost session was renewed again", f.n_renews);
    /* the watcher reads its watches afresh on it */
    ck_assert_msg(f.lost == 1, "session_lost called %u times, not once", f.lost);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("host_status");
    TCase *tc = tcase_create("renewal");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_failed_renewal_is_retried_soon);
    tcase_add_test(tc, test_renewal_not_skipped_behind_a_slow_write);
    tcase_add_test(tc, test_refused_write_keeps_the_session);
    tcase_add_test(tc, test_lost_session_is_replaced);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return suite_main_run(suite());
}
