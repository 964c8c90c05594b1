/* SPDX-License-Identifier: Apache-2.0 */
/*
 * poll_deadline: what arrived before a passed deadline is still taken, a
 * silent peer times out after (not before) the deadline.
 */
#include <check.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "poll_deadline.h"
#include "suite_main.h"

START_TEST(test_passed_deadline_still_takes_what_is_there)
{
    int sv[2];

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    ck_assert_int_eq(write(sv[1], "0003 Reconfigured\n", 18), 18);
    /* the thread "woke up" a second after its deadline */
    struct pollfd p = {.fd = sv[0], .events = POLLIN};
    ck_assert_int_eq(poll_deadline(&p, log_monotonic_ms() - 1000), 1);
    ck_assert(p.revents & POLLIN);
    close(sv[0]);
    close(sv[1]);
}
END_TEST

START_TEST(test_silent_peer_times_out_at_the_deadline)
{
    int sv[2];

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct pollfd p = {.fd = sv[0], .events = POLLIN};
    uint64_t start = log_monotonic_ms();
    ck_assert_int_eq(poll_deadline(&p, start + 50), 0);
    ck_assert_uint_ge(log_monotonic_ms(), start + 50);
    ck_assert_int_eq(poll_deadline(&p, start), 0); /* passed and nothing there */
    close(sv[0]);
    close(sv[1]);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("poll_deadline");
    TCase *tc = tcase_create("poll_deadline");
    tcase_add_test(tc, test_passed_deadline_still_takes_what_is_there);
    tcase_add_test(tc, test_silent_peer_times_out_at_the_deadline);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return suite_main_run(suite());
}
