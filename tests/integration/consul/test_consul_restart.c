/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Consul killed mid-watch (fixture consul_restart, its own agent since the
 * test kills it): the watch reports errors through on_error, backs off,
 * keeps the last delivered value and delivers nothing while Consul is
 * gone; after Consul restarts on the same port it resumes and delivers
 * the next change.
 */
#include <errno.h>

#include "consul_test_util.h"

struct state {
    struct consul_watch *w;
    unsigned changes, errors;
    char value[64];
    bool have_1, have_2, two_errors;
    bool bad_error;  /* error without message or retry delay */
    bool lost_value; /* last value gone during an error */
};

static void on_change(void *arg, struct consul_response *r)
{
    struct state *s = arg;
    s->changes++;
    s->value[0] = '\0';
    for (size_t i = 0; i < r->kv->n; i++) {
        if (strcmp(r->kv->items[i].key, "restart/a") == 0 && r->kv->items[i].value)
            snprintf(s->value, sizeof(s->value), "%s", (char *)r->kv->items[i].value);
    }
    s->have_1 = strcmp(s->value, "1") == 0;
    s->have_2 = strcmp(s->value, "2") == 0;
}

static void on_error(void *arg, struct consul_response *r)
{
    struct state *s = arg;
    s->errors++;
    s->two_errors = s->errors >= 2;
    if (r->err >= 0 || !r->errmsg || !*r->errmsg || r->retry_in_ms == 0)
        s->bad_error = true;
    const struct consul_kv_list *last = consul_watch_last_kv(s->w);
    if (!last || last->n != 1 || strcmp((char *)last->items[0].value, "1") != 0)
        s->lost_value = true;
}

static int script(const char *cmd)
{
    char line[2048];
    snprintf(line, sizeof(line), "%s %s %s", getenv("DROVER_CONSUL_DEV"), cmd,
             getenv("DROVER_CONSUL_STATE"));
    return system(line);
}

START_TEST(test_kill_and_restart_mid_watch)
{
    char *addr = state_file("addr");
    ck_assert_msg(addr && getenv("DROVER_CONSUL_DEV"), "run under the consul_restart fixture");
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct consul_client *c;
    struct consul_config cfg = {.address = addr, .request_timeout_ms = 3000};
    ck_assert_int_eq(consul_client_new(&loop, &cfg, &c), 0);
    struct state s = {0};
    struct consul_watch_opts o = {.kind = CONSUL_WATCH_KV_PREFIX,
                                  .target = "restart/",
                                  .wait_s = 60,
                                  .retry_min_ms = 100,
                                  .retry_max_ms = 1000,
                                  .on_change = on_change,
                                  .on_error = on_error,
                                  .arg = &s};
    ck_assert_int_eq(consul_watch_start(c, &o, &s.w), 0);
    struct got g = {0};
    ck_assert_int_eq(consul_kv_put(c, "restart/a", "1", 1, NULL, got_cb, &g), 0);
    ck_assert_msg(run_until(&loop, &s.have_1, 20000), "first value not delivered");

    /* let the blocking query reach Consul, then kill it */
    bool never = false;
    run_until(&loop, &never, 300);
    unsigned changes_before = s.changes;
    ck_assert_int_eq(script("kill"), 0);
    ck_assert_msg(run_until(&loop, &s.two_errors, 30000), "no error reported after the kill");
    ck_assert(!s.bad_error);
    ck_assert(!s.lost_value);
    ck_assert_uint_eq(s.changes, changes_before); /* nothing delivered while down */
    ck_assert_str_eq(s.value, "1");
    ck_assert_uint_ge(consul_client_stats(c)->retries, 2);

    ck_assert_int_eq(script("restart"), 0);
    g.done = false;
    /* the dev agent restarts empty; write the change the watch must see */
    for (int i = 0; i < 20; i++) {
        g.done = false;
        ck_assert_int_eq(consul_kv_put(c, "restart/a", "2", 1, NULL, got_cb, &g), 0);
        ck_assert(run_until(&loop, &g.done, 15000));
        if (g.err == 0)
            break;
        run_until(&loop, &never, 250);
    }
    ck_assert_msg(g.err == 0, "put after restart: %s", g.errmsg);
    ck_assert_msg(run_until(&loop, &s.have_2, 30000), "watch did not resume after restart");
    ck_assert_str_eq(s.value, "2");

    consul_watch_stop(s.w);
    consul_client_free(c);
    drain_loop(&loop);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    free(addr);
}
END_TEST

int main(void)
{
    Suite *su = suite_create("consul_restart");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_kill_and_restart_mid_watch);
    suite_add_tcase(su, tc);
    return run_suite(su);
}
