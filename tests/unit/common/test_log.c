/* SPDX-License-Identifier: Apache-2.0 */
#include <check.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static char *capture(enum log_level threshold, enum log_level level, const char *text)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);

    log_set_stream(mem);
    log_set_level(threshold);
    log_msg(level, "%s", text);
    log_set_stream(NULL);
    fclose(mem);
    return buf;
}

START_TEST(test_line_format)
{
    log_set_component("unit");
    char *out = capture(LOGL_INFO, LOGL_WARN, "consul: GET x: 503");
    ck_assert_ptr_nonnull(strstr(out, " level=warn comp=unit msg=\"consul: GET x: 503\"\n"));
    ck_assert(strncmp(out, "ts=", 3) == 0);
    /* ts=YYYY-MM-DDThh:mm:ss.mmmZ, UTC with milliseconds */
    const char *shape = "dddd-dd-ddTdd:dd:dd.dddZ ";
    for (size_t i = 0; shape[i]; i++)
        ck_assert_msg(shape[i] == 'd' ? isdigit((unsigned char)out[3 + i]) : out[3 + i] == shape[i],
                      "timestamp shape at %zu: %s", i, out);
    free(out);
}
END_TEST

START_TEST(test_threshold_filters)
{
    char *out = capture(LOGL_WARN, LOGL_INFO, "hidden");
    ck_assert_str_eq(out, "");
    free(out);
}
END_TEST

START_TEST(test_escaping_keeps_one_line)
{
    char *out = capture(LOGL_DEBUG, LOGL_ERROR, "key=\"a\nlevel=error\\x\x01");
    ck_assert_ptr_nonnull(strstr(out, "msg=\"key=\\\"a\\nlevel=error\\\\x\\x01\"\n"));
    /* exactly one newline: the terminator */
    ck_assert_ptr_eq(strchr(out, '\n'), out + strlen(out) - 1);
    free(out);
}
END_TEST

START_TEST(test_parse_level)
{
    enum log_level l;
    ck_assert_int_eq(log_parse_level("DEBUG", &l), 0);
    ck_assert_int_eq(l, LOGL_DEBUG);
    ck_assert_int_eq(log_parse_level("warning", &l), 0);
    ck_assert_int_eq(l, LOGL_WARN);
    ck_assert_int_eq(log_parse_level("loud", &l), -EINVAL);
    ck_assert_int_eq(log_parse_level(NULL, &l), -EINVAL);
}
END_TEST

/* One line per interval; the line that is allowed says how many events
 * were swallowed before it. */
START_TEST(test_ratelimit)
{
    struct log_ratelimit rl = {.interval_ms = 1000};
    uint64_t swallowed = 99;

    ck_assert(log_ratelimit_allow(&rl, 5000, &swallowed)); /* the first always */
    ck_assert_uint_eq(swallowed, 0);
    for (uint64_t t = 5001; t < 6000; t += 100)
        ck_assert(!log_ratelimit_allow(&rl, t, &swallowed));
    ck_assert(log_ratelimit_allow(&rl, 6000, &swallowed));
    ck_assert_uint_eq(swallowed, 10);
    ck_assert(!log_ratelimit_allow(&rl, 6999, NULL));
    ck_assert(log_ratelimit_allow(&rl, 7000, &swallowed));
    ck_assert_uint_eq(swallowed, 1);
    struct log_ratelimit def = {0}; /* 0 = 10 s */
    ck_assert(log_ratelimit_allow(&def, 0, NULL));
    ck_assert(!log_ratelimit_allow(&def, 9999, NULL));
    ck_assert(log_ratelimit_allow(&def, 10000, NULL));
    ck_assert_uint_ge(log_monotonic_ms(), 1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_line_format);
    tcase_add_test(tc, test_threshold_filters);
    tcase_add_test(tc, test_escaping_keeps_one_line);
    tcase_add_test(tc, test_parse_level);
    tcase_add_test(tc, test_ratelimit);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
