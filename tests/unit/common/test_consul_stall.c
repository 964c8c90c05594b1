/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Consul client when its own process stalls: a read whose answer
 * arrived while the loop was blocked past the request timeout is sent
 * again and succeeds (libcurl would report a timeout: it checks its clock
 * before it reads the socket), while a Consul that really does not answer
 * still times out.
 *
 * The fake Consul (tests/lib/fake_http) runs on its own loop and thread, so
 * it answers while the test blocks the client's loop.
 */
#include <check.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consul.h"
#include "fake_http.h"
#include "loop_lag.h"
#include "loop_stall.h"
#include "suite_main.h"
#include "test_sleep.h"

#define TIMEOUT_MS 300

struct server {
    struct fake_http_thread *http;
    int port;
    bool hang;            /* never answer */
    bool wait_for_stall;  /* answer only once the client's loop is blocked */
    atomic_bool stalling; /* set by the client as its stall begins */
    atomic_uint seen;
};

static void handler(void *arg, const struct fake_http_req *req, struct fake_http_reply *rep)
{
    struct server *s = arg;

    (void)req;
    atomic_fetch_add(&s->seen, 1);
    /* the answer must arrive while the client cannot read it */
    for (int i = 0; s->wait_for_stall && !atomic_load(&s->stalling) && i < 5000; i++)
        sleep_ms(1);
    rep->has_index = true;
    rep->index = 7;
    rep->hang = s->hang;
    rep->body = strdup("[{\"Key\":\"drover/v1/x\",\"Value\":\"eA==\",\"ModifyIndex\":7}]");
}

static void server_start(struct server *s, bool hang, bool wait_for_stall)
{
    memset(s, 0, sizeof(*s));
    s->hang = hang;
    s->wait_for_stall = wait_for_stall;
    ck_assert_int_eq(fake_http_thread_start(handler, s, &s->http, &s->port), 0);
}

static void server_stop(struct server *s)
{
    fake_http_thread_stop(s->http);
}

struct client {
    uv_loop_t loop;
    struct consul_client *c;
    struct server *srv;
    struct loop_stall stall;
    bool done;
    int err;
};

/* Once Consul has the request: block the loop past the request timeout
 * (as SIGSTOP or a long table build would). The answer arrives meanwhile;
 * curl's timeout is due when the loop goes on. */
static bool stall_on_request(void *arg)
{
    struct client *cl = arg;

    if (atomic_load(&cl->srv->seen) == 0)
        return false;
    atomic_store(&cl->srv->stalling, true);
    sleep_ms(3 * TIMEOUT_MS + 1000);
    return true;
}

static void on_read(void *arg, struct consul_response *resp)
{
    struct client *cl = arg;
    cl->err = resp->err;
    cl->done = true;
}

static void run(struct client *cl, struct server *srv, bool stall)
{
    char addr[64];

    memset(cl, 0, sizeof(*cl));
    cl->srv = srv;
    ck_assert_int_eq(uv_loop_init(&cl->loop), 0);
    snprintf(addr, sizeof(addr), "http://127.0.0.1:%d", srv->port);
    struct consul_config cfg = {.address = addr, .request_timeout_ms = TIMEOUT_MS};
    /* the loop's measurement, owned here as a daemon's main does */
    ck_assert_int_eq(loop_lag_new(&cl->loop, &cfg.loop_lag), 0);
    ck_assert_int_eq(consul_client_new(&cl->loop, &cfg, &cl->c), 0);
    loop_lag_unref(cfg.loop_lag);
    if (stall)
        loop_stall_start(&cl->stall, &cl->loop, stall_on_request, cl, 1);
    ck_assert_int_eq(consul_kv_get_prefix(cl->c, "drover/v1/", on_read, cl), 0);
    /* each attempt ends within its timeout (plus the one stall) */
    while (!cl->done)
        uv_run(&cl->loop, UV_RUN_ONCE);
    loop_stall_close(&cl->stall);
}

static void finish(struct client *cl)
{
    consul_client_free(cl->c);
    uv_run(&cl->loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&cl->loop), 0);
}

START_TEST(test_answer_read_after_stall)
{
    struct server srv;
    struct client cl;

    server_start(&srv, false, true);
    run(&cl, &srv, true);
    ck_assert_uint_eq(cl.stall.stalls, 1);
    ck_assert_msg(cl.err == 0, "the answer was there after the stall, yet the read failed: %d",
                  cl.err);
    ck_assert_uint_eq(consul_client_stats(cl.c)->stall_retries, 1);
    ck_assert_uint_eq(consul_client_stats(cl.c)->errors, 0);
    finish(&cl);
    server_stop(&srv);
}
END_TEST

START_TEST(test_silent_consul_still_times_out)
{
    struct server srv;
    struct client cl;

    server_start(&srv, true, false);
    run(&cl, &srv, false);
    ck_assert_int_eq(cl.err, -ETIMEDOUT);
    ck_assert_uint_eq(consul_client_stats(cl.c)->stall_retries, 0);
    finish(&cl);
    server_stop(&srv);
}
END_TEST

START_TEST(test_silent_consul_after_stall_times_out_once_more)
{
    struct server srv;
    struct client cl;

    server_start(&srv, true, false);
    run(&cl, &srv, true);
    ck_assert_int_eq(cl.err, -ETIMEDOUT);
    ck_assert_uint_eq(consul_client_stats(cl.c)->stall_retries, 1);
    ck_assert_uint_eq(atomic_load(&srv.seen), 2);
    finish(&cl);
    server_stop(&srv);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("consul_stall");
    TCase *tc = tcase_create("stall");
    tcase_add_test(tc, test_answer_read_after_stall);
    tcase_add_test(tc, test_silent_consul_still_times_out);
    tcase_add_test(tc, test_silent_consul_after_stall_times_out_once_more);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return suite_main_run(suite());
}
