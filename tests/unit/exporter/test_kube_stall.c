/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The kube reflector when the exporter itself stalls: a list page whose
 * answer arrived while the loop was blocked past the request timeout is
 * sent again and the list completes (libcurl would report a timeout: it
 * checks its clock before it reads the socket), counted as a stall retry
 * and not as an API failure or a restarted list; an API server that really
 * does not answer still fails, one timeout later.
 *
 * The fake API server (tests/lib/fake_http) runs on its own loop and
 * thread, so it answers while the test blocks the exporter's loop.
 */
#include <check.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_http.h"
#include "kube_client.h"
#include "loop_lag.h"
#include "loop_stall.h"
#include "../common/suite_main.h"
#include "test_sleep.h"

#define TIMEOUT_S 1 /* kube_client_config.request_timeout_s: whole seconds */
/* well past the timeout, as SIGSTOP or CPU starvation would be */
#define STALL_MS (TIMEOUT_S * 1000 + 300)

struct server {
    struct fake_http_thread *http;
    int port;
    bool silent;          /* never answer a list */
    atomic_bool stalling; /* set by the client as its stall begins */
    atomic_uint lists;    /* list requests seen */
};

static void handler(void *arg, const struct fake_http_req *req, struct fake_http_reply *rep)
{
    struct server *s = arg;

    if (strstr(req->url, "watch=1")) {
        rep->hang = true; /* a watch that stays open: the test ends before */
        return;
    }
    atomic_fetch_add(&s->lists, 1);
    rep->hang = s->silent;
    /* the answer must arrive while the client cannot read it (bounded: a
     * client that never stalls gets it after 5 s) */
    for (int i = 0; !s->silent && !atomic_load(&s->stalling) && i < 5000; i++)
        sleep_ms(1);
    rep->body = strdup("{\"kind\":\"ServiceList\",\"apiVersion\":\"v1\",\"metadata\":"
                       "{\"resourceVersion\":\"5\"},\"items\":[]}");
}

static void server_start(struct server *s, bool silent)
{
    memset(s, 0, sizeof(*s));
    s->silent = silent;
    ck_assert_int_eq(fake_http_thread_start(handler, s, &s->http, &s->port), 0);
}

static void server_stop(struct server *s)
{
    fake_http_thread_stop(s->http);
}

struct client {
    uv_loop_t loop;
    struct curl_uv *cu;
    struct kube_client *kc;
    struct kube_store *store;
    struct kube_reflector *r;
    struct server *srv;
    struct loop_stall stall;
};

/* Once the API server has the list request: block the loop past the
 * request timeout. */
static bool stall_on_list(void *arg)
{
    struct client *cl = arg;

    if (atomic_load(&cl->srv->lists) == 0)
        return false;
    atomic_store(&cl->srv->stalling, true);
    sleep_ms(STALL_MS);
    return true;
}

static void start(struct client *cl, struct server *srv)
{
    char url[64];

    memset(cl, 0, sizeof(*cl));
    cl->srv = srv;
    ck_assert_int_eq(uv_loop_init(&cl->loop), 0);
    ck_assert_int_eq(curl_uv_new(&cl->loop, &cl->cu), 0);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", srv->port);
    struct kube_client_config cfg = {.api_url = url, .request_timeout_s = TIMEOUT_S};
    /* the loop's measurement, owned here as the exporter's main does */
    ck_assert_int_eq(loop_lag_new(&cl->loop, &cfg.loop_lag), 0);
    ck_assert_int_eq(kube_client_new(&cl->loop, cl->cu, &cfg, &cl->kc), 0);
    loop_lag_unref(cfg.loop_lag);
    cl->store = kube_store_new("services", true);
    ck_assert_ptr_nonnull(cl->store);
    ck_assert_int_eq(kube_reflector_new(cl->kc, "/api/v1/services", cl->store, NULL, NULL, &cl->r),
                     0);
    loop_stall_start(&cl->stall, &cl->loop, stall_on_list, cl, 1);
    kube_reflector_start(cl->r);
}

/* Run until the list completed or failed; each attempt ends within its
 * timeout (plus the one stall). */
static const struct kube_reflector_stats *run_until_list_ends(struct client *cl)
{
    const struct kube_reflector_stats *st = kube_reflector_stats(cl->r);
    while (st->lists == 0 && st->transport_errors == 0)
        uv_run(&cl->loop, UV_RUN_ONCE);
    return st;
}

static void finish(struct client *cl)
{
    loop_stall_close(&cl->stall);
    kube_reflector_free(cl->r);
    kube_client_free(cl->kc);
    uv_run(&cl->loop, UV_RUN_DEFAULT);
    curl_uv_free(cl->cu);
    uv_run(&cl->loop, UV_RUN_DEFAULT);
    kube_store_free(cl->store);
    ck_assert_int_eq(uv_loop_close(&cl->loop), 0);
}

START_TEST(test_list_read_after_stall)
{
    struct server srv;
    struct client cl;

    server_start(&srv, false);
    start(&cl, &srv);
    const struct kube_reflector_stats *st = run_until_list_ends(&cl);
    ck_assert_uint_eq(cl.stall.stalls, 1);
    ck_assert_msg(st->lists == 1,
                  "the list page was there after the stall, yet the list failed (%llu transport "
                  "errors)",
                  (unsigned long long)st->transport_errors);
    ck_assert_uint_eq(st->stall_retries, 1);
    ck_assert_uint_eq(st->transport_errors, 0);
    ck_assert_uint_eq(st->outages, 0);
    ck_assert_uint_eq(st->list_restarts, 0);
    ck_assert_uint_eq(atomic_load(&srv.lists), 2);
    finish(&cl);
    server_stop(&srv);
}
END_TEST

START_TEST(test_silent_api_after_stall_fails_once_more)
{
    struct server srv;
    struct client cl;

    server_start(&srv, true);
    start(&cl, &srv);
    const struct kube_reflector_stats *st = run_until_list_ends(&cl);
    ck_assert_uint_eq(cl.stall.stalls, 1);
    ck_assert_uint_eq(st->lists, 0);
    ck_assert_uint_eq(st->stall_retries, 1);
    ck_assert_uint_eq(st->transport_errors, 1);
    ck_assert_uint_eq(atomic_load(&srv.lists), 2);
    finish(&cl);
    server_stop(&srv);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("kube_stall");
    TCase *tc = tcase_create("stall");
    tcase_add_test(tc, test_list_read_after_stall);
    tcase_add_test(tc, test_silent_api_after_stall_fails_once_more);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return suite_main_run(suite());
}
