/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for agent_reply: reply words, weights, description limits and
 * sanitising, reply parsing, request-line parsing. */
#include <check.h>
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "agent_reply.h"
#include "../common/suite_main.h"

static const char *fmt(const struct agent_answer *a)
{
    static char buf[AGENT_REPLY_MAX];
    int n = agent_reply_format(a, buf, sizeof(buf));
    ck_assert_int_gt(n, 0);
    ck_assert_int_eq((int)strlen(buf), n);
    /* exactly one line, ended by '\n' */
    ck_assert_ptr_eq(strchr(buf, '\n'), buf + n - 1);
    ck_assert_ptr_null(strchr(buf, '\r'));
    return buf;
}

START_TEST(test_every_word_pair)
{
    for (int a = 0; a < AGENT_ADMIN_COUNT; a++) {
        for (int h = 0; h < AGENT_HEALTH_COUNT; h++) {
            struct agent_answer ans = {a, h, -1, -1, "why"};
            char want[64];
            snprintf(want, sizeof(want), "%s %s #why\n", agent_admin_name(a), agent_health_name(h));
            ck_assert_str_eq(fmt(&ans), want);
        }
    }
}
END_TEST

START_TEST(test_word_names_and_parse)
{
    static const char *admins[] = {"ready", "drain", "maint"};
    static const char *healths[] = {"up", "down", "stopped", "fail"};
    enum agent_admin a;
    enum agent_health h;
    for (int i = 0; i < 3; i++) {
        ck_assert_str_eq(agent_admin_name(i), admins[i]);
        ck_assert_int_eq(agent_admin_parse(admins[i], &a), 0);
        ck_assert_int_eq(a, i);
    }
    for (int i = 0; i < 4; i++) {
        ck_assert_str_eq(agent_health_name(i), healths[i]);
        ck_assert_int_eq(agent_health_parse(healths[i], &h), 0);
        ck_assert_int_eq(h, i);
    }
    ck_assert_int_eq(agent_admin_parse("DRAIN", &a), 0);
    ck_assert_int_eq(a, AGENT_ADMIN_DRAIN);
    ck_assert_int_eq(agent_admin_parse("up", &a), -EINVAL);
    ck_assert_int_eq(agent_health_parse("drain", &h), -EINVAL);
    ck_assert_int_eq(agent_health_parse(NULL, &h), -EINVAL);
}
END_TEST

START_TEST(test_weight_range)
{
    struct agent_answer ans = {AGENT_ADMIN_READY, AGENT_HEALTH_UP, 0, -1, ""};
    char want[64];
    for (int w = 0; w <= AGENT_WEIGHT_MAX; w++) {
        ans.weight = w;
        snprintf(want, sizeof(want), "ready up %d%% #\n", w);
        ck_assert_str_eq(fmt(&ans), want);
    }
    ans.weight = 1000; /* capped as HAProxy would */
    ck_assert_str_eq(fmt(&ans), "ready up 256% #\n");
    ans.weight = -1;
    ck_assert_str_eq(fmt(&ans), "ready up #\n");
}
END_TEST

START_TEST(test_maxconn)
{
    struct agent_answer ans = {AGENT_ADMIN_DRAIN, AGENT_HEALTH_UP, 50, 30, "x"};
    ck_assert_str_eq(fmt(&ans), "drain up 50% maxconn:30 #x\n");
}
END_TEST

START_TEST(test_format_rejects_bad_input)
{
    char small[16], buf[AGENT_REPLY_MAX];
    struct agent_answer ans = {AGENT_ADMIN_READY, AGENT_HEALTH_UP, -1, -1, NULL};
    ck_assert_int_eq(agent_reply_format(&ans, small, sizeof(small)), -ENOSPC);
    ans.admin = AGENT_ADMIN_COUNT;
    ck_assert_int_eq(agent_reply_format(&ans, buf, sizeof(buf)), -EINVAL);
    ans.admin = AGENT_ADMIN_READY;
    ans.health = (enum agent_health)99;
    ck_assert_int_eq(agent_reply_format(&ans, buf, sizeof(buf)), -EINVAL);
    ans.health = AGENT_HEALTH_UP;
    ck_assert_str_eq(fmt(&ans), "ready up #\n"); /* NULL text */
}
END_TEST

START_TEST(test_text_reason_and_author)
{
    char t[AGENT_TEXT_MAX + 1];
    ck_assert_uint_eq(agent_text_build("disk swap", "alice", t, sizeof(t)),
                      strlen("disk swap (by alice)"));
    ck_assert_str_eq(t, "disk swap (by alice)");
    agent_text_build("disk swap", NULL, t, sizeof(t));
    ck_assert_str_eq(t, "disk swap");
    agent_text_build(NULL, "alice", t, sizeof(t));
    ck_assert_str_eq(t, "by alice");
    agent_text_build("", "", t, sizeof(t));
    ck_assert_str_eq(t, "");
    agent_text_build("  spaced   out  ", "  ", t, sizeof(t));
    ck_assert_str_eq(t, "spaced out");
}
END_TEST

START_TEST(test_text_sanitised)
{
    char t[AGENT_TEXT_MAX + 1];
    agent_text_build("line1\nline2\r\tx\x01y\x7fz", "bob\nmaint", t, sizeof(t));
    ck_assert_str_eq(t, "line1 line2 x y z (by bob maint)");
    for (const char *p = t; *p; p++)
        ck_assert((unsigned char)*p >= 0x20 && *p != 0x7f);

    /* a reason cannot inject words or a second line into the reply */
    struct agent_answer ans = {AGENT_ADMIN_DRAIN, AGENT_HEALTH_UP, -1, -1, "x\nready up\n"};
    ck_assert_str_eq(fmt(&ans), "drain up #x ready up\n");
}
END_TEST

START_TEST(test_text_truncated_at_127)
{
    char reason[400], t[AGENT_TEXT_MAX + 1];
    memset(reason, 'r', sizeof(reason) - 1);
    reason[sizeof(reason) - 1] = '\0';
    ck_assert_uint_eq(agent_text_build(reason, "alice", t, sizeof(t)), AGENT_TEXT_MAX);
    ck_assert_uint_eq(strlen(t), 127);

    /* exactly 127 is kept whole, 128 loses one byte */
    reason[127] = '\0';
    ck_assert_uint_eq(agent_text_build(reason, NULL, t, sizeof(t)), 127);
    reason[127] = 'r';
    reason[128] = '\0';
    ck_assert_uint_eq(agent_text_build(reason, NULL, t, sizeof(t)), 127);

    /* a small destination is honoured too */
    char small[10];
    ck_assert_uint_eq(agent_text_build("0123456789abc", NULL, small, sizeof(small)), 9);
    ck_assert_str_eq(small, "012345678");

    /* the whole reply stays within AGENT_REPLY_MAX */
    struct agent_answer ans = {AGENT_ADMIN_MAINT, AGENT_HEALTH_STOPPED, 256, 1000000, reason};
    const char *line = fmt(&ans);
    ck_assert_uint_lt(strlen(line), AGENT_REPLY_MAX);
    ck_assert_uint_eq(strlen(strchr(line, '#') + 1), 127 + 1); /* text + '\n' */
}
END_TEST

START_TEST(test_text_utf8_boundary)
{
    /* 126 ASCII bytes then a 3-byte character: keeping it would need 129
     * bytes, so it is dropped whole rather than split. */
    char reason[200], t[AGENT_TEXT_MAX + 1];
    memset(reason, 'a', 126);
    strcpy(reason + 126, "\xe2\x82\xac tail");
    ck_assert_uint_eq(agent_text_build(reason, NULL, t, sizeof(t)), 126);
    /* 124 + 3 = 127 fits exactly */
    memset(reason, 'a', 124);
    strcpy(reason + 124, "\xe2\x82\xac tail");
    ck_assert_uint_eq(agent_text_build(reason, NULL, t, sizeof(t)), 127);
    ck_assert_str_eq(t + 124, "\xe2\x82\xac");
}
END_TEST

/* The reply builder sanitises its text in place (no snprintf, no second
 * buffer); it must give exactly what agent_text_build gives, for texts
 * around the 127-byte cut with blanks, control bytes and multi-byte
 * characters where the cut falls. 20,000 generated texts. */
START_TEST(test_reply_text_matches_text_build)
{
    static const char *const pieces[] = {
        "a",  " ",   "  ", "\t", "\n", "\x7f", "\xe2\x82\xac", "\xc3\xa9", "\xf0\x9f\x98\x80",
        "bb", "\x01"};
    uint32_t seed = 12345;
    char text[600], want[AGENT_TEXT_MAX + 1], line[AGENT_REPLY_MAX];
    for (int i = 0; i < 20000; i++) {
        size_t len = 0;
        seed = seed * 1103515245u + 12345u;
        size_t target = 100 + (seed >> 16) % 60; /* around the cut */
        if (i % 10 == 0)
            target = (seed >> 16) % 400;
        while (len < target) {
            seed = seed * 1103515245u + 12345u;
            const char *p = pieces[(seed >> 16) % (sizeof(pieces) / sizeof(pieces[0]))];
            size_t pl = strlen(p);
            memcpy(text + len, p, pl);
            len += pl;
        }
        text[len] = '\0';
        size_t wl = agent_text_build(text, NULL, want, sizeof(want));
        struct agent_answer a = {AGENT_ADMIN_READY, AGENT_HEALTH_UP, -1, -1, text};
        int n = agent_reply_format(&a, line, sizeof(line));
        ck_assert_int_gt(n, 0);
        const char *got = strchr(line, '#') + 1;
        ck_assert_msg((size_t)(line + n - 1 - got) == wl && memcmp(got, want, wl) == 0,
                      "case %d: reply text differs from agent_text_build", i);
    }
}
END_TEST

START_TEST(test_reply_parse_roundtrip)
{
    struct agent_answer a;
    char text[AGENT_TEXT_MAX + 1];
    ck_assert_int_eq(agent_reply_parse("drain up 50% maxconn:10 #disk swap (by alice)\n", &a, text,
                                       sizeof(text)),
                     0);
    ck_assert_int_eq(a.admin, AGENT_ADMIN_DRAIN);
    ck_assert_int_eq(a.health, AGENT_HEALTH_UP);
    ck_assert_int_eq(a.weight, 50);
    ck_assert_int_eq(a.maxconn, 10);
    ck_assert_str_eq(a.text, "disk swap (by alice)");

    /* HAProxy's separators: comma and tab, any order, case-insensitive */
    ck_assert_int_eq(agent_reply_parse("DOWN,\tMAINT", &a, text, sizeof(text)), 0);
    ck_assert_int_eq(a.admin, AGENT_ADMIN_MAINT);
    ck_assert_int_eq(a.health, AGENT_HEALTH_DOWN);
    ck_assert_int_eq(a.weight, -1);
    ck_assert_str_eq(a.text, "");

    ck_assert_int_eq(agent_reply_parse("", &a, text, sizeof(text)), 0);
    ck_assert_int_eq(a.admin, AGENT_ADMIN_READY);
    ck_assert_int_eq(a.health, AGENT_HEALTH_UP);

    ck_assert_int_eq(agent_reply_parse("ready sideways", &a, text, sizeof(text)), -EINVAL);
    ck_assert_int_eq(agent_reply_parse("257%", &a, text, sizeof(text)), -EINVAL);
    ck_assert_int_eq(agent_reply_parse("5x%", &a, text, sizeof(text)), -EINVAL);
    ck_assert_int_eq(agent_reply_parse("maxconn:x", &a, text, sizeof(text)), -EINVAL);
}
END_TEST

START_TEST(test_request_key)
{
    struct agent_request r;
    ck_assert_int_eq(agent_request_parse("be_web/web-1\n", 13, &r), 0);
    ck_assert_str_eq(r.key, "be_web/web-1");
    ck_assert_str_eq(r.address, "");
    ck_assert_int_eq(agent_request_parse("be_web/web-1\r\n", 14, &r), 0);
    ck_assert_str_eq(r.key, "be_web/web-1");
    /* no newline (EOF-terminated) */
    ck_assert_int_eq(agent_request_parse("be.x:1/s_2", 10, &r), 0);
    ck_assert_str_eq(r.key, "be.x:1/s_2");
    /* only the first line counts */
    const char *two = "a/b\nc/d\n";
    ck_assert_int_eq(agent_request_parse(two, strlen(two), &r), 0);
    ck_assert_str_eq(r.key, "a/b");
}
END_TEST

START_TEST(test_request_address)
{
    struct agent_request r;
    const char *s = "be_web/web-1 10.0.0.5:30080\n";
    ck_assert_int_eq(agent_request_parse(s, strlen(s), &r), 0);
    ck_assert_str_eq(r.key, "be_web/web-1");
    ck_assert_str_eq(r.address, "10.0.0.5:30080");
    s = "\t[2001:db8::1]:80   be/s \n";
    ck_assert_int_eq(agent_request_parse(s, strlen(s), &r), 0);
    ck_assert_str_eq(r.key, "be/s");
    ck_assert_str_eq(r.address, "[2001:db8::1]:80");
    s = "10.0.0.5\n";
    ck_assert_int_eq(agent_request_parse(s, strlen(s), &r), 0);
    ck_assert_str_eq(r.key, "");
    ck_assert_str_eq(r.address, "10.0.0.5");
}
END_TEST

/* Every byte value against the documented character rules: in a key
 * (letters, digits, '-', '_', '.', ':') and in an address (hex digits,
 * '.', ':', '[', ']'); blanks separate tokens; nothing else anywhere. */
START_TEST(test_request_every_byte)
{
    for (int c = 0; c < 256; c++) {
        /* a blank ends the token, a CR before the LF is ignored */
        bool blank = c == ' ' || c == '\t' || c == '\r';
        bool key = isalnum(c) || c == '-' || c == '_' || c == '.' || c == ':';
        bool addr = isxdigit(c) || c == '.' || c == ':' || c == '[' || c == ']';
        char req[16];
        struct agent_request r;
        /* as the last byte of the server name */
        int n = snprintf(req, sizeof(req), "be/s%c\n", c ? c : '!');
        req[4] = (char)c;
        int rc = agent_request_parse(req, (size_t)n, &r);
        if (c == '\n' || blank || key)
            ck_assert_msg(rc == 0, "byte 0x%02x refused in a key", c);
        else
            ck_assert_msg(rc == -EINVAL, "byte 0x%02x accepted in a key", c);
        /* as the last byte of an address after a key */
        n = snprintf(req, sizeof(req), "be/s 10.0.0.5%c\n", c ? c : '!');
        req[13] = (char)c;
        rc = agent_request_parse(req, (size_t)n, &r);
        if (c == '\n' || blank || addr)
            ck_assert_msg(rc == 0 && strcmp(r.key, "be/s") == 0, "byte 0x%02x in an address", c);
        else
            ck_assert_msg(rc == -EINVAL, "byte 0x%02x accepted in an address", c);
    }
}
END_TEST

START_TEST(test_request_garbage)
{
    static const char *bad[] = {
        "",
        "\n",
        "   \n",
        "be/",
        "/srv",
        "a/b/c",
        "be/s\x01",
        "b e/s x y",
        "a/b c/d",
        "1.2.3.4 5.6.7.8",
        "be/s zz-top",
        "GET / HTTP/1.1\r\n",
        "be/s\0x",
    };
    struct agent_request r;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t len = strlen(bad[i]);
        if (i == sizeof(bad) / sizeof(bad[0]) - 1)
            len = 7; /* embedded NUL */
        ck_assert_msg(agent_request_parse(bad[i], len, &r) == -EINVAL, "accepted '%s'", bad[i]);
        ck_assert_str_eq(r.key, "");
        ck_assert_str_eq(r.address, "");
    }
    char big[AGENT_REQUEST_MAX + 2];
    memset(big, 'a', sizeof(big));
    big[1] = '/';
    ck_assert_int_eq(agent_request_parse(big, sizeof(big), &r), -EINVAL);
    /* key longer than AGENT_KEY_MAX but within the request limit */
    ck_assert_int_eq(agent_request_parse(big, AGENT_KEY_MAX + 1, &r), -EINVAL);
    ck_assert_int_eq(agent_request_parse(big, AGENT_KEY_MAX, &r), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("agent_reply");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_every_word_pair);
    tcase_add_test(tc, test_word_names_and_parse);
    tcase_add_test(tc, test_weight_range);
    tcase_add_test(tc, test_maxconn);
    tcase_add_test(tc, test_format_rejects_bad_input);
    tcase_add_test(tc, test_text_reason_and_author);
    tcase_add_test(tc, test_text_sanitised);
    tcase_add_test(tc, test_text_truncated_at_127);
    tcase_add_test(tc, test_text_utf8_boundary);
    tcase_add_test(tc, test_reply_parse_roundtrip);
    tcase_add_test(tc, test_request_key);
    tcase_add_test(tc, test_request_address);
    tcase_add_test(tc, test_request_garbage);
    tcase_add_test(tc, test_request_every_byte);
    tcase_add_test(tc, test_reply_text_matches_text_build);
    suite_add_tcase(s, tc);
    return suite_main_run(s);
}
