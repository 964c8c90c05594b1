/* SPDX-License-Identifier: Apache-2.0 */
/* A fake systemd: a datagram socket named by $NOTIFY_SOCKET. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "sdnotify.h"
#include "suite_main.h"

static char sock_dir[64];
static char sock_path[96];
static int sock_fd = -1;

static void setup(void)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};

    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    snprintf(sock_dir, sizeof(sock_dir), "/tmp/drover-sdn-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(sock_dir));
    snprintf(sock_path, sizeof(sock_path), "%s/notify", sock_dir);
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", sock_path);
    sock_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(sock_fd, 0);
    ck_assert_int_eq(bind(sock_fd, (struct sockaddr *)&a, sizeof(a)), 0);
}

static void teardown(void)
{
    if (sock_fd >= 0)
        close(sock_fd);
    unlink(sock_path);
    rmdir(sock_dir);
}

static void recv_msg(char *buf, size_t cap)
{
    ssize_t n = recv(sock_fd, buf, cap - 1, 0);
    ck_assert_int_gt(n, 0);
    buf[n] = '\0';
}

START_TEST(test_noop_outside_systemd)
{
    uv_loop_t loop;
    struct sdnotify_watchdog *wd = (void *)1;

    ck_assert_int_eq(sdnotify_ready(), 0);
    ck_assert_int_eq(sdnotify_status("x %d", 1), 0);
    ck_assert_int_eq(sdnotify_stopping(), 0);
    uv_loop_init(&loop);
    ck_assert_int_eq(sdnotify_watchdog_start(&loop, &wd), 0);
    ck_assert_ptr_null(wd);
    ck_assert_uint_eq(sdnotify_watchdog_interval_usec(wd), 0);
    sdnotify_watchdog_stop(NULL);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

START_TEST(test_ready_status_stopping)
{
    char buf[256];

    setenv("NOTIFY_SOCKET", sock_path, 1);
    ck_assert_int_eq(sdnotify_ready(), 1);
    recv_msg(buf, sizeof(buf));
    ck_assert_str_eq(buf, "READY=1");
    ck_assert_int_eq(sdnotify_status("watching %d prefixes\nREADY=1", 3), 1);
    recv_msg(buf, sizeof(buf));
    /* the newline cannot smuggle a second assignment in */
    ck_assert_str_eq(buf, "STATUS=watching 3 prefixes READY=1");
    ck_assert_int_eq(sdnotify_stopping(), 1);
    recv_msg(buf, sizeof(buf));
    ck_assert_str_eq(buf, "STOPPING=1");
}
END_TEST

static int pings;
static struct sdnotify_watchdog *the_wd;

static void on_notify(uv_poll_t *p, int status, int events)
{
    char buf[256];

    ck_assert_int_eq(status, 0);
    recv_msg(buf, sizeof(buf));
    ck_assert_str_eq(buf, "WATCHDOG=1");
    if (++pings == 2) {
        sdnotify_watchdog_stop(the_wd);
        uv_close((uv_handle_t *)p, NULL);
    }
}

static void on_deadline(uv_timer_t *t)
{
    ck_abort_msg("no two watchdog pings within 20 s");
}

/* A receiver that never reads must not block the sender: the daemon's
 * event loop sends these. With the default queue length (10) the first few
 * are queued, then every further one fails at once with -EAGAIN. The test
 * would hang (and time out) if a send waited. */
START_TEST(test_stalled_receiver_never_blocks)
{
    int sent = 0, refused = 0;

    setenv("NOTIFY_SOCKET", sock_path, 1);
    log_set_level(LOGL_ERROR);
    for (int i = 0; i < 2000; i++) {
        int rc = sdnotify_status("ping %d", i);
        if (rc == 1)
            sent++;
        else
            refused++;
    }
    log_set_level(LOGL_INFO);
    ck_assert_int_gt(sent, 0);
    ck_assert_int_gt(refused, 0);
}
END_TEST

START_TEST(test_watchdog_pings_at_half_interval)
{
    uv_loop_t loop;
    uv_poll_t poll;
    uv_timer_t deadline;
    char pid[32];

    setenv("NOTIFY_SOCKET", sock_path, 1);
    setenv("WATCHDOG_USEC", "200000", 1);
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    setenv("WATCHDOG_PID", pid, 1);
    uv_loop_init(&loop);
    ck_assert_int_eq(sdnotify_watchdog_start(&loop, &the_wd), 1);
    ck_assert_ptr_nonnull(the_wd);
    ck_assert_uint_eq(sdnotify_watchdog_interval_usec(the_wd), 100000);
    uv_poll_init(&loop, &poll, sock_fd);
    uv_poll_start(&poll, UV_READABLE, on_notify);
    uv_timer_init(&loop, &deadline);
    uv_timer_start(&deadline, on_deadline, 20000, 0);
    uv_unref((uv_handle_t *)&deadline);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(pings, 2);
    uv_close((uv_handle_t *)&deadline, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);

    /* watchdog meant for another process (WATCHDOG_PID): no timer */
    setenv("WATCHDOG_PID", "1", 1);
    uv_loop_init(&loop);
    ck_assert_int_eq(sdnotify_watchdog_start(&loop, &the_wd), 0);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sdnotify");
    TCase *tc = tcase_create("core");

    log_set_level(LOGL_WARN);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_noop_outside_systemd);
    tcase_add_test(tc, test_ready_status_stopping);
    tcase_add_test(tc, test_watchdog_pings_at_half_interval);
    tcase_add_test(tc, test_stalled_receiver_never_blocks);
    suite_add_tcase(s, tc);
    return suite_main_run(s);
}
