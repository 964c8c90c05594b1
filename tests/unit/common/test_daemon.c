/* SPDX-License-Identifier: Apache-2.0 */
/*
 * daemon: signals reach the stop callback exactly once (a second SIGTERM
 * or SIGINT during the stop is ignored), SIGHUP reaches its callback until
 * the stop, the metrics server starts, is skipped, or fails cleanly and
 * is stopped again, and the option parsing every main() starts with tells
 * go on / exit 0 / exit 2 apart.
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "daemon.h"
#include "suite_main.h"

struct sig_test {
    struct daemon_signals sigs;
    uv_timer_t step;
    int stops, last_signum, hups, ticks;
    int hups_at_stop;
};

static void on_stop(void *arg, int signum)
{
    struct sig_test *t = arg;
    t->stops++;
    t->last_signum = signum;
    t->hups_at_stop = t->hups;
}

static void on_hup(void *arg)
{
    ((struct sig_test *)arg)->hups++;
}

/* Sends the signals on the first tick; then waits (bounded) until the
 * loop has dispatched them, and closes everything. */
static void on_step(uv_timer_t *h)
{
    struct sig_test *t = h->data;
    if (t->ticks++ == 0) {
        kill(getpid(), SIGHUP);
        kill(getpid(), SIGTERM);
        return;
    }
    if (t->ticks == 2) {
        /* a second stop signal and a HUP while stopping: both ignored */
        kill(getpid(), SIGINT);
        kill(getpid(), SIGHUP);
        return;
    }
    if (t->ticks < 200 && t->stops == 0)
        return;
    daemon_signals_close(&t->sigs);
    daemon_signals_close(&t->sigs); /* twice is harmless */
    /* stopping: a repeated stop signal must not kill the process now */
    kill(getpid(), SIGTERM);
    kill(getpid(), SIGINT);
    uv_timer_stop(h);
    uv_close((uv_handle_t *)h, NULL);
}

START_TEST(test_signals)
{
    uv_loop_t loop;
    struct sig_test t = {0};

    unsetenv("NOTIFY_SOCKET");
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    struct daemon_signal_opts o = {.component = "test",
                                   .stop_note = "(note)",
                                   .on_stop = on_stop,
                                   .on_hup = on_hup,
                                   .arg = &t};
    ck_assert_int_eq(daemon_signals_start(&loop, &t.sigs, &o), 0);
    uv_timer_init(&loop, &t.step);
    t.step.data = &t;
    uv_timer_start(&t.step, on_step, 5, 5);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    ck_assert_int_eq(t.stops, 1);
    ck_assert_int_eq(t.last_signum, SIGTERM);
    ck_assert_int_eq(t.hups_at_stop, 1);
    ck_assert_int_eq(t.hups, 1);
    ck_assert(t.sigs.stopping);
}
END_TEST

START_TEST(test_close_unstarted)
{
    struct daemon_signals s = {0};
    daemon_signals_close(&s); /* never started: nothing to close */
}
END_TEST

START_TEST(test_http_start)
{
    uv_loop_t loop;
    struct metrics_registry *m = metrics_registry_new();
    struct http_server *srv = (void *)1;

    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    ck_assert_int_eq(daemon_http_start(&loop, "test", "", m, &srv), 0);
    ck_assert_ptr_null(srv);
    srv = (void *)1;
    ck_assert_int_eq(daemon_http_start(&loop, "test", NULL, m, &srv), 0);
    ck_assert_ptr_null(srv);
    srv = (void *)1;
    ck_assert_int_eq(daemon_http_start(&loop, "test", "not an address", m, &srv), -EINVAL);
    ck_assert_ptr_null(srv);
    ck_assert_int_eq(daemon_http_start(&loop, "test", "127.0.0.1:0", m, &srv), 0);
    ck_assert_ptr_nonnull(srv);
    ck_assert_int_gt(http_server_port(srv), 0);
    http_server_close(srv);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    metrics_registry_free(m);
}
END_TEST

START_TEST(test_serving_stop)
{
    uv_loop_t loop;
    struct metrics_registry *m = metrics_registry_new();
    struct http_server *srv = NULL;

    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    ck_assert_int_eq(daemon_http_start(&loop, "test", "127.0.0.1:0", m, &srv), 0);
    ck_assert_ptr_nonnull(srv);
    daemon_serving_stop(&srv, NULL); /* a daemon without a watchdog */
    ck_assert_ptr_null(srv);
    daemon_serving_stop(&srv, NULL); /* already stopped: nothing to do */
    ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    metrics_registry_free(m);
}
END_TEST

static bool parse_flag;
static const struct config_option parse_options[] = {
    CONFIG_OPT_BOOL("flag", &parse_flag, "false", "a flag"),
    CONFIG_OPT_END,
};
static const struct config_program parse_program = {
    .name = "test-daemon",
    .options = parse_options,
};

static bool parse(int argc, char **argv, int *status)
{
    *status = -1;
    bool go_on = daemon_config_parse(&parse_program, "test", argc, argv, status);
    config_free(&parse_program);
    return go_on;
}

START_TEST(test_config_parse)
{
    char *good[] = {"test-daemon", "--flag", NULL};
    char *bad[] = {"test-daemon", "--no-such-option", NULL};
    char *help[] = {"test-daemon", "--help", NULL};
    int status;

    signal(SIGPIPE, SIG_DFL);
    ck_assert(parse(2, good, &status));
    ck_assert_int_eq(status, -1); /* untouched when the daemon goes on */
    ck_assert_ptr_eq(signal(SIGPIPE, SIG_DFL), SIG_IGN);
    ck_assert(!parse(2, bad, &status));
    ck_assert_int_eq(status, 2);
    ck_assert(!parse(2, help, &status));
    ck_assert_int_eq(status, 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("daemon");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_signals);
    tcase_add_test(tc, test_close_unstarted);
    tcase_add_test(tc, test_http_start);
    tcase_add_test(tc, test_serving_stop);
    tcase_add_test(tc, test_config_parse);
    suite_add_tcase(s, tc);
    return suite_main_run(s);
}
