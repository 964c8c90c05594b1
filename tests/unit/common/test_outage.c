/* SPDX-License-Identifier: Apache-2.0 */
/* outage: one line when an outage begins and one when it ends, whatever
 * the number of retries in between. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "outage.h"

static char *captured;
static size_t captured_len;
static FILE *capture;

static void capture_start(void)
{
    capture = open_memstream(&captured, &captured_len);
    ck_assert_ptr_nonnull(capture);
    log_set_stream(capture);
    log_set_format(LOG_FORMAT_LOGFMT);
}

/* The captured text (caller frees); the log goes back to stderr. */
static char *capture_end(void)
{
    log_set_stream(stderr);
    fclose(capture);
    return captured;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

START_TEST(test_one_line_per_state_change)
{
    struct outage o = {0};

    capture_start();
    ck_assert(!outage_ok(&o, 0, "consul: watch x")); /* answering: nothing */
    ck_assert_int_eq(outage_fail_level(&o, 1000, LOGL_WARN), LOGL_WARN);
    for (int i = 0; i < 50; i++)
        ck_assert_int_eq(outage_fail_level(&o, 1000 + 100 * (uint64_t)i, LOGL_WARN), LOGL_DEBUG);
    ck_assert(o.failing);
    ck_assert_uint_eq(o.failures, 51);
    ck_assert_uint_eq(o.outages, 1);
    ck_assert(outage_ok(&o, 13500, "consul: watch x"));
    ck_assert(!outage_ok(&o, 14000, "consul: watch x"));
    /* a second outage begins at the caller's level again */
    ck_assert_int_eq(outage_fail_level(&o, 20000, LOGL_ERROR), LOGL_ERROR);
    ck_assert_uint_eq(o.outages, 2);
    ck_assert_uint_eq(o.failures, 1);
    ck_assert(outage_ok(&o, 20250, "kube: list"));
    char *text = capture_end();
    ck_assert_int_eq(count_lines(text), 2);
    ck_assert_msg(
        strstr(text, "consul: watch x: answering again after 51 failed attempts in 12.5s"), "%s",
        text);
    ck_assert_msg(strstr(text, "kube: list: answering again after 1 failed attempt in 0.2s"), "%s",
                  text);
    free(text);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("outage");
    TCase *tc = tcase_create("core");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_one_line_per_state_change);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
