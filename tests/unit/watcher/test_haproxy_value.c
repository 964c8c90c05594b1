/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of haproxy_value: for every kind, values it must accept (and
 * the text it writes) and values it must refuse, table-driven.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "haproxy_value.h"
#include "../common/suite_main.h"

struct value_case {
    enum haproxy_value_kind kind;
    const char *in;
    size_t len;       /* 0: strlen(in) */
    const char *want; /* NULL: must be refused */
};

#define OK(k, in, out)                                                                             \
    {                                                                                              \
        HAPROXY_VALUE_##k, in, 0, out                                                              \
    }
#define BAD(k, in)                                                                                 \
    {                                                                                              \
        HAPROXY_VALUE_##k, in, 0, NULL                                                             \
    }
#define BADN(k, in, len)                                                                           \
    {                                                                                              \
        HAPROXY_VALUE_##k, in, len, NULL                                                           \
    }

static const struct value_case cases[] = {
    /* word: the default for {{x}} */
    OK(WORD, "roundrobin", "roundrobin"),
    OK(WORD, "", ""),
    OK(WORD, "hdr(host)", "hdr(host)"),
    OK(WORD, "a:b/c-d_e.f@g%h", "a:b/c-d_e.f@g%h"),
    BAD(WORD, "two words"),
    BAD(WORD, "x\nbackend evil"),
    BAD(WORD, "x\r"),
    BAD(WORD, "tab\there"),
    BAD(WORD, "a#comment"),
    BAD(WORD, "\"quoted\""),
    BAD(WORD, "it's"),
    BAD(WORD, "back\\slash"),
    BAD(WORD, "${HOME}"),
    BAD(WORD, "caf\xc3\xa9"),
    BAD(WORD, "del\x7f"),
    BADN(WORD, "nul\0byte", 8),
    /* name */
    OK(NAME, "web-app_1.prod:443", "web-app_1.prod:443"),
    OK(NAME, "a", "a"),
    BAD(NAME, ""),
    BAD(NAME, "has space"),
    BAD(NAME, "slash/no"),
    BAD(NAME, "semi;colon"),
    BAD(NAME, "x\n"),
    BAD(NAME, "0123456789012345678901234567890123456789012345678901234567890123456789"
              "0123456789012345678901234567890123456789012345678901234567890"),
    /* ip and addr */
    OK(IP, "10.1.2.3", "10.1.2.3"),
    OK(IP, "2001:DB8:0:0::1", "2001:db8::1"),
    OK(IP, "::", "::"),
    OK(IP, "::ffff:10.0.0.1", "::ffff:10.0.0.1"),
    OK(ADDR, "10.1.2.3", "10.1.2.3"),
    OK(ADDR, "fe80::1", "[fe80::1]"),
    BAD(IP, ""),
    BAD(IP, "10.1.2"),
    BAD(IP, "10.1.2.256"),
    BAD(IP, "010.1.2.3"),
    BAD(IP, "[::1]"),
    BAD(IP, "fe80::1%eth0"),
    BAD(IP, "10.0.0.1:80"),
    BAD(ADDR, "localhost"),
    BAD(ADDR, "10.0.0.1 "),
    BAD(ADDR, "1111:2222:3333:4444:5555:6666:7777:8888:9999"),
    /* port */
    OK(PORT, "1", "1"),
    OK(PORT, "65535", "65535"),
    BAD(PORT, "0"),
    BAD(PORT, "65536"),
    BAD(PORT, "080"),
    BAD(PORT, "+80"),
    BAD(PORT, "80 "),
    BAD(PORT, ""),
    BAD(PORT, "http"),
    /* uint, int, weight */
    OK(UINT, "0", "0"),
    OK(UINT, "9223372036854775807", "9223372036854775807"),
    BAD(UINT, "9223372036854775808"),
    BAD(UINT, "-1"),
    BAD(UINT, "1.5"),
    BAD(UINT, "1e3"),
    OK(INT, "-42", "-42"),
    OK(INT, "42", "42"),
    BAD(INT, "-0"),
    BAD(INT, "-"),
    BAD(INT, "--1"),
    OK(WEIGHT, "0", "0"),
    OK(WEIGHT, "256", "256"),
    BAD(WEIGHT, "257"),
    BAD(WEIGHT, "50%"),
    /* duration */
    OK(DURATION, "5s", "5s"),
    OK(DURATION, "100ms", "100ms"),
    OK(DURATION, "250", "250"),
    OK(DURATION, "10us", "10us"),
    OK(DURATION, "3m", "3m"),
    OK(DURATION, "1h", "1h"),
    OK(DURATION, "7d", "7d"),
    BAD(DURATION, "s"),
    BAD(DURATION, "5 s"),
    BAD(DURATION, "5sec"),
    BAD(DURATION, "1.5s"),
    BAD(DURATION, "-5s"),
    BAD(DURATION, "99999999999ms"),
    BAD(DURATION, ""),
    /* host */
    OK(HOST, "example.com", "example.com"),
    OK(HOST, "a-b.C0.example", "a-b.C0.example"),
    OK(HOST, "localhost", "localhost"),
    BAD(HOST, ""),
    BAD(HOST, "-bad.example"),
    BAD(HOST, "bad-.example"),
    BAD(HOST, "a..b"),
    BAD(HOST, ".a"),
    BAD(HOST, "a."),
    BAD(HOST, "under_score.example"),
    BAD(HOST, "*.example.com"),
    BAD(HOST, "exa mple.com"),
    BAD(HOST, "host:443"),
    BAD(HOST, "0123456789012345678901234567890123456789012345678901234567890123.com"),
    /* path */
    OK(PATH, "/", "/"),
    OK(PATH, "/healthz", "/healthz"),
    OK(PATH, "/a/b%20c?x=1&y=2", "/a/b%20c?x=1&y=2"),
    OK(PATH, "/~user/(x)*+,;=:@!", "/~user/(x)*+,;=:@!"),
    BAD(PATH, ""),
    BAD(PATH, "healthz"),
    BAD(PATH, "/a b"),
    BAD(PATH, "/a#frag"),
    BAD(PATH, "/a%2"),
    BAD(PATH, "/a%zz"),
    BAD(PATH, "/a\"b"),
    BAD(PATH, "/a'b"),
    BAD(PATH, "/$x"),
    BAD(PATH, "/a\nGET /"),
    /* file */
    OK(FILE, "/run/drover/haproxy.sock", "/run/drover/haproxy.sock"),
    OK(FILE, "/var/lib/drover/state-1.v2", "/var/lib/drover/state-1.v2"),
    OK(FILE, "/a/..b", "/a/..b"),
    BAD(FILE, "relative/path"),
    BAD(FILE, "/a/../etc/passwd"),
    BAD(FILE, "/a/.."),
    BAD(FILE, "/with space"),
    BAD(FILE, "/semi;colon"),
    BAD(FILE, ""),
    /* quoted */
    OK(QUOTED, "free text, with spaces", "'free text, with spaces'"),
    OK(QUOTED, "", "''"),
    OK(QUOTED, "it's", "'it'\\''s'"),
    OK(QUOTED, "'", "''\\'''"),
    OK(QUOTED, "$HOME \\ # \"", "'$HOME \\ # \"'"),
    OK(QUOTED, "caf\xc3\xa9", "'caf\xc3\xa9'"),
    BAD(QUOTED, "line\nbreak"),
    BAD(QUOTED, "cr\r"),
    BAD(QUOTED, "tab\t"),
    BADN(QUOTED, "a\0b", 3),
    /* unchecked passes everything through */
    OK(UNCHECKED, "any\nthing \"at all\"", "any\nthing \"at all\""),
};

START_TEST(test_value_case)
{
    const struct value_case *c = &cases[_i];
    size_t len = c->len ? c->len : strlen(c->in);
    char out[1024];
    size_t out_len = 0;
    const char *why = NULL;
    int rc = haproxy_value_format(c->kind, c->in, len, out, sizeof(out), &out_len, &why);
    int check_rc = haproxy_value_check(c->kind, c->in, len, NULL);

    if (c->want) {
        ck_assert_msg(rc == 0, "%s [%s] refused: %s", haproxy_value_kind_name(c->kind), c->in,
                      why ? why : "?");
        ck_assert_str_eq(out, c->want);
        ck_assert_uint_eq(out_len, strlen(c->want));
        ck_assert_int_eq(check_rc, 0);
    } else {
        ck_assert_msg(rc == -EINVAL, "%s [%s] accepted as [%s]", haproxy_value_kind_name(c->kind),
                      c->in, rc == 0 ? out : "");
        ck_assert_ptr_nonnull(why);
        ck_assert_int_eq(check_rc, -EINVAL);
    }
}
END_TEST

START_TEST(test_reasons)
{
    const char *why = NULL;
    ck_assert_int_eq(haproxy_value_check(HAPROXY_VALUE_QUOTED, "a\nb", 3, &why), -EINVAL);
    ck_assert_str_eq(why, "contains a newline");
    ck_assert_int_eq(haproxy_value_check(HAPROXY_VALUE_WORD, "a b", 3, &why), -EINVAL);
    ck_assert_ptr_nonnull(strstr(why, "space"));
    ck_assert_int_eq(haproxy_value_check(HAPROXY_VALUE_WORD, "a\0b", 3, &why), -EINVAL);
    ck_assert_str_eq(why, "contains a NUL byte");
    ck_assert_int_eq(haproxy_value_check(HAPROXY_VALUE_PORT, "0", 1, &why), -EINVAL);
    ck_assert_ptr_nonnull(strstr(why, "port"));
}
END_TEST

START_TEST(test_kind_names)
{
    enum haproxy_value_kind k;
    for (int i = HAPROXY_VALUE_WORD; i < HAPROXY_VALUE_UNCHECKED; i++) {
        const char *name = haproxy_value_kind_name((enum haproxy_value_kind)i);
        ck_assert_int_eq(haproxy_value_kind_from_name(name, strlen(name), &k), 0);
        ck_assert_int_eq(k, i);
    }
    ck_assert_int_eq(haproxy_value_kind_from_name("unchecked", 9, &k), -EINVAL);
    ck_assert_int_eq(haproxy_value_kind_from_name("por", 3, &k), -EINVAL);
    ck_assert_int_eq(haproxy_value_kind_from_name("portx", 5, &k), -EINVAL);
    ck_assert_int_eq(haproxy_value_kind_from_name("addr", 4, &k), 0);
    ck_assert_int_eq(k, HAPROXY_VALUE_ADDR);
}
END_TEST

START_TEST(test_output_space)
{
    char out[64];
    size_t n;
    const char *why;
    char big[200];

    memset(big, 'a', sizeof(big));
    /* the documented size is always enough, a smaller buffer never overflows */
    ck_assert_uint_ge(haproxy_value_format_size(3), 64);
    ck_assert_uint_eq(haproxy_value_format_size(100), 403);
    ck_assert_int_eq(
        haproxy_value_format(HAPROXY_VALUE_QUOTED, big, sizeof(big), out, sizeof(out), &n, &why),
        -ENOSPC);
    char *wide = malloc(haproxy_value_format_size(sizeof(big)));
    memset(big, '\'', sizeof(big));
    ck_assert_int_eq(haproxy_value_format(HAPROXY_VALUE_QUOTED, big, sizeof(big), wide,
                                          haproxy_value_format_size(sizeof(big)), &n, &why),
                     0);
    ck_assert_uint_eq(n, sizeof(big) * 4 + 2);
    free(wide);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("haproxy_value");
    TCase *tc = tcase_create("core");
    tcase_add_loop_test(tc, test_value_case, 0, (int)(sizeof(cases) / sizeof(cases[0])));
    tcase_add_test(tc, test_reasons);
    tcase_add_test(tc, test_kind_names);
    tcase_add_test(tc, test_output_space);
    suite_add_tcase(s, tc);
    return suite_main_run(s);
}
