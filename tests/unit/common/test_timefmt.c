/* SPDX-License-Identifier: Apache-2.0 */
/*
 * timefmt: RFC 3339 parsing (Z, offsets, fractions, calendar checks,
 * everything that must be refused) and the UTC formatters, cross-checked
 * with values from `date -u -d ... +%s`.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "timefmt.h"
#include "suite_main.h"

#define T_1500 INT64_C(1795446000) /* 2026-11-23T15:00:00Z */

START_TEST(test_parse_good)
{
    static const struct {
        const char *text;
        int64_t unix_s, unix_ms;
    } good[] = {
        {"2026-11-23T15:00:00Z", T_1500, T_1500 * 1000},
        {"2026-11-23t15:00:00z", T_1500, T_1500 * 1000},
        {"2026-11-23T15:00:00.123456Z", T_1500, T_1500 * 1000 + 123},
        {"2026-11-23T15:00:00.5Z", T_1500, T_1500 * 1000 + 500},
        {"2026-11-23T10:00:00-05:00", T_1500, T_1500 * 1000},
        {"2026-11-23T16:30:00.250+01:30", T_1500, T_1500 * 1000 + 250},
        {"1970-01-01T00:00:00Z", 0, 0},
        {"1969-12-31T23:59:59Z", -1, -1000},
        {"1969-12-31T23:59:59.500Z", -1, -500},
        {"2024-02-29T00:00:00Z", 1709164800, INT64_C(1709164800000)},
        {"2000-02-29T00:00:00Z", 951782400, INT64_C(951782400000)},
        {"9999-12-31T23:59:59Z", INT64_C(253402300799), INT64_C(253402300799000)},
        {"0000-01-01T00:00:00Z", INT64_C(-62167219200), INT64_C(-62167219200000)},
        /* a leap second counts as the next second */
        {"2016-12-31T23:59:60Z", 1483228800, INT64_C(1483228800000)},
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        int64_t s = 42, ms = 42;
        ck_assert_msg(timefmt_parse_rfc3339(good[i].text, &s) == 0, "refused '%s'", good[i].text);
        ck_assert_msg(s == good[i].unix_s, "'%s': %lld s", good[i].text, (long long)s);
        ck_assert_int_eq(timefmt_parse_rfc3339_ms(good[i].text, &ms), 0);
        ck_assert_msg(ms == good[i].unix_ms, "'%s': %lld ms", good[i].text, (long long)ms);
    }
}
END_TEST

START_TEST(test_parse_bad)
{
    static const char *const bad[] = {
        "",
        "2026",
        "2026-11-23",
        "2026-11-23T15:00",
        "2026-11-23T15:00:00",       /* no zone */
        "2026-11-23 15:00:00Z",      /* space separator: not accepted */
        "2026-11-23T25:00:00Z",      /* hour */
        "2026-11-23T15:60:00Z",      /* minute */
        "2026-11-23T15:00:61Z",      /* second */
        "2026-13-23T15:00:00Z",      /* month */
        "2026-00-23T15:00:00Z",      /* month */
        "2026-11-00T15:00:00Z",      /* day */
        "2026-11-31T15:00:00Z",      /* November has 30 */
        "2026-02-29T00:00:00Z",      /* not a leap year */
        "1900-02-29T00:00:00Z",      /* not a leap year either */
        "2026-11-23T15:00:00Zjunk",  /* trailing text */
        "2026-11-23T15:00:00+0100",  /* offset without colon */
        "2026-11-23T15:00:00+01",    /* short offset */
        "2026-11-23T15:00:00+24:00", /* offset hours */
        "2026-11-23T15:00:00+01:60", /* offset minutes */
        "2026-11-23T15:00:00.Z",     /* empty fraction */
        "2026-11-23T15:00:00,5Z",    /* comma fraction */
        "20261123T150000Z",          /* basic format */
        " 2026-11-23T15:00:00Z",     /* leading space */
        "+026-11-23T15:00:00Z",      /* signed year */
        "2026-1-23T15:00:00Z",       /* one-digit month */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t t = 42;
        ck_assert_msg(timefmt_parse_rfc3339(bad[i], &t) == -EINVAL, "accepted '%s'", bad[i]);
        ck_assert_msg(timefmt_parse_rfc3339_ms(bad[i], &t) == -EINVAL, "accepted '%s'", bad[i]);
        ck_assert_int_eq(t, 42);
    }
    int64_t t;
    ck_assert_int_eq(timefmt_parse_rfc3339(NULL, &t), -EINVAL);
    ck_assert_int_eq(timefmt_parse_rfc3339_ms(NULL, &t), -EINVAL);
}
END_TEST

START_TEST(test_format)
{
    char buf[TIMEFMT_BUF_SIZE];

    ck_assert_int_eq(timefmt_format_rfc3339(T_1500, buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, "2026-11-23T15:00:00Z");
    ck_assert_int_eq(timefmt_format_rfc3339(0, buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, "1970-01-01T00:00:00Z");
    ck_assert_int_eq(timefmt_format_rfc3339(-1, buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, "1969-12-31T23:59:59Z");
    ck_assert_int_eq(timefmt_format_rfc3339(1709164800, buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, "2024-02-29T00:00:00Z");

    ck_assert_int_eq(timefmt_format_rfc3339_ms(T_1500 * 1000 + 45, buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, "2026-11-23T15:00:00.045Z");
    ck_assert_int_eq(timefmt_format_rfc3339_ms(-1, buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, "1969-12-31T23:59:59.999Z");

    ck_assert_int_eq(timefmt_format_stamp_ms(T_1500 * 1000 + 4005 * 1000 + 123, buf, sizeof(buf)),
                     0);
    ck_assert_str_eq(buf, "20261123T160645.123Z");
}
END_TEST

START_TEST(test_format_limits)
{
    char buf[TIMEFMT_BUF_SIZE], small[20];

    /* "2026-11-23T15:00:00Z" is 20 characters: 20 bytes leave no room for the NUL */
    memset(small, 'x', sizeof(small));
    ck_assert_int_eq(timefmt_format_rfc3339(T_1500, small, sizeof(small)), -ENOSPC);
    ck_assert_str_eq(small, "");
    ck_assert_int_eq(timefmt_format_rfc3339(T_1500, buf, 21), 0);
    ck_assert_int_eq(timefmt_format_rfc3339(INT64_C(253402300800), buf, sizeof(buf)), -ERANGE);
    ck_assert_str_eq(buf, "");
    ck_assert_int_eq(timefmt_format_rfc3339(INT64_MAX, buf, sizeof(buf)), -ERANGE);
    ck_assert_int_eq(timefmt_format_rfc3339(INT64_MIN, buf, sizeof(buf)), -ERANGE);
    ck_assert_int_eq(timefmt_format_rfc3339_ms(INT64_MIN, buf, sizeof(buf)), -ERANGE);
    ck_assert_int_eq(timefmt_format_stamp_ms(INT64_MAX, buf, sizeof(buf)), -ERANGE);
}
END_TEST

/* Every second of a few years (sampled) survives format -> parse. */
START_TEST(test_round_trip)
{
    char buf[TIMEFMT_BUF_SIZE];
    for (int64_t t = INT64_C(-2208988800); t < INT64_C(4102444800); t += 86400 * 7 + 3661) {
        int64_t back = 0, back_ms = 0;
        ck_assert_int_eq(timefmt_format_rfc3339(t, buf, sizeof(buf)), 0);
        ck_assert_int_eq(timefmt_parse_rfc3339(buf, &back), 0);
        ck_assert_msg(back == t, "%lld -> %s -> %lld", (long long)t, buf, (long long)back);
        ck_assert_int_eq(timefmt_format_rfc3339_ms(t * 1000 + 7, buf, sizeof(buf)), 0);
        ck_assert_int_eq(timefmt_parse_rfc3339_ms(buf, &back_ms), 0);
        ck_assert_msg(back_ms == t * 1000 + 7, "%s -> %lld", buf, (long long)back_ms);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("timefmt");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_parse_good);
    tcase_add_test(tc, test_parse_bad);
    tcase_add_test(tc, test_format);
    tcase_add_test(tc, test_format_limits);
    tcase_add_test(tc, test_round_trip);
    suite_add_tcase(s, tc);
    return suite_main_run(s);
}
