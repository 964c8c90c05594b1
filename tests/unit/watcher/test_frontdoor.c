/* SPDX-License-Identifier: Apache-2.0 */
/* frontdoor: announcement decisions rule by rule (fake clock), the BIRD
 * include file, BIRD's control-socket replies. */
#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "frontdoor.h"
#include "frontdoor_bird.h"

#define VIP "10.0.0.1"

static struct frontdoor *make(void)
{
    struct frontdoor_params p = {.rise = 2, .fall = 2, .drain_withdraw_ms = 5000};
    struct frontdoor *f = NULL;
    ck_assert_int_eq(frontdoor_new(&p, &f), 0);
    return f;
}

/* One round for VIP; returns its route afterwards and how many changed. */
static enum frontdoor_route round1(struct frontdoor *f, bool ok, int64_t now, size_t *nchanged)
{
    struct frontdoor_verdict v = {.address = VIP, .ok = ok, .reason = ok ? NULL : "broken"};
    const struct frontdoor_change *c;
    const struct frontdoor_vip_status *st;
    size_t n;

    ck_assert_int_eq(frontdoor_update(f, &v, 1, now, &c, &n), 0);
    if (nchanged)
        *nchanged = n;
    ck_assert_uint_eq(frontdoor_list(f, &st), 1);
    return st[0].route;
}

START_TEST(test_first_good_verdict_announces)
{
    struct frontdoor *f = make();
    size_t n;
    ck_assert_int_eq(round1(f, true, 1000, &n), FRONTDOOR_ANNOUNCED);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(round1(f, true, 2000, &n), FRONTDOOR_ANNOUNCED);
    ck_assert_uint_eq(n, 0);
    frontdoor_free(f);
}
END_TEST

START_TEST(test_not_serving_at_start_is_no_flap)
{
    struct frontdoor *f = make();
    const struct frontdoor_vip_status *st;
    int64_t t = 0;
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(round1(f, false, t += 1000, NULL), FRONTDOOR_WITHDRAWN);
    ck_assert_int_eq(round1(f, true, t += 1000, NULL), FRONTDOOR_ANNOUNCED);
    frontdoor_list(f, &st);
    ck_assert_str_eq(st[0].reason, "serving");
    ck_assert(!st[0].suppressed);
    frontdoor_free(f);
}
END_TEST

START_TEST(test_fall_then_rise)
{
    struct frontdoor *f = make();
    const struct frontdoor_vip_status *st;
    int64_t t = 0;
    round1(f, true, t += 1000, NULL);
    /* one bad round: still announced, the reason says so */
    ck_assert_int_eq(round1(f, false, t += 1000, NULL), FRONTDOOR_ANNOUNCED);
    frontdoor_list(f, &st);
    ck_assert_ptr_nonnull(strstr(st[0].reason, "broken"));
    ck_assert_int_eq(round1(f, false, t += 1000, NULL), FRONTDOOR_WITHDRAWN);
    frontdoor_list(f, &st);
    ck_assert_str_eq(st[0].reason, "broken");
    ck_assert_uint_eq(st[0].withdrawals, 1);
    ck_assert_int_eq(round1(f, true, t += 1000, NULL), FRONTDOOR_WITHDRAWN);
    ck_assert_int_eq(round1(f, true, t += 1000, NULL), FRONTDOOR_ANNOUNCED);
    frontdoor_free(f);
}
END_TEST

START_TEST(test_flapping_vip_is_held_withdrawn)
{
    struct frontdoor *f = make();
    const struct frontdoor_vip_status *st;
    int64_t t = 0;
    round1(f, true, t += 100, NULL);
    /* down, up, down: three changes in a second exceed the suppress limit */
    for (int k = 0; k < 3; k++) {
        bool ok = k % 2 == 1;
        round1(f, ok, t += 100, NULL);
        round1(f, ok, t += 100, NULL);
    }
    frontdoor_list(f, &st);
    ck_assert(st[0].suppressed);
    /* serving again, but held withdrawn by damping */
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(round1(f, true, t += 100, NULL), FRONTDOOR_WITHDRAWN);
    frontdoor_list(f, &st);
    ck_assert_ptr_nonnull(strstr(st[0].reason, "flapping"));
    /* the penalty decays (half-life 30 s): back after a few minutes */
    t += 120000;
    ck_assert_int_eq(round1(f, true, t, NULL), FRONTDOOR_ANNOUNCED);
    frontdoor_free(f);
}
END_TEST

START_TEST(test_drain_graceful_shutdown_then_withdraw)
{
    struct frontdoor *f = make();
    int64_t t = 0;
    round1(f, true, t += 1000, NULL);
    frontdoor_set_drain(f, true, t);
    ck_assert_int_eq(round1(f, true, t += 1000, NULL), FRONTDOOR_SHUTDOWN);
    ck_assert_int_eq(round1(f, true, t += 3000, NULL), FRONTDOOR_SHUTDOWN);
    ck_assert_int_eq(round1(f, true, t += 1000, NULL), FRONTDOOR_WITHDRAWN);
    /* draining again while drained keeps the original start */
    frontdoor_set_drain(f, true, t);
    ck_assert_int_eq(round1(f, true, t += 1000, NULL), FRONTDOOR_WITHDRAWN);
    frontdoor_set_drain(f, false, t);
    ck_assert_int_eq(round1(f, true, t += 1000, NULL), FRONTDOOR_ANNOUNCED);
    frontdoor_free(f);
}
END_TEST

START_TEST(test_drain_never_announces_a_broken_vip)
{
    struct frontdoor *f = make();
    int64_t t = 0;
    round1(f, false, t += 1000, NULL);
    frontdoor_set_drain(f, true, t);
    ck_assert_int_eq(round1(f, false, t += 1000, NULL), FRONTDOOR_WITHDRAWN);
    frontdoor_free(f);
}
END_TEST

START_TEST(test_removed_vip_withdrawn_at_once)
{
    struct frontdoor *f = make();
    struct frontdoor_verdict v[2] = {{.address = "10.0.0.2", .ok = true},
                                     {.address = VIP, .ok = true}};
    const struct frontdoor_change *c;
    const struct frontdoor_vip_status *st;
    size_t n;

    ck_assert_int_eq(frontdoor_update(f, v, 2, 1000, &c, &n), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_uint_eq(frontdoor_list(f, &st), 2);
    ck_assert_str_eq(st[0].address, VIP); /* sorted */
    ck_assert_int_eq(frontdoor_update(f, v, 1, 2000, &c, &n), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(c[0].address, VIP);
    ck_assert_int_eq(c[0].to, FRONTDOOR_WITHDRAWN);
    ck_assert_str_eq(c[0].reason, "no longer configured");
    ck_assert_uint_eq(frontdoor_list(f, &st), 1);
    frontdoor_free(f);
}
END_TEST

START_TEST(test_render)
{
    struct frontdoor_bird_route r[3] = {
        {.address = "10.0.0.1"}, {.address = "fd00::1"}, {.address = "10.0.0.2", .shutdown = true}};
    char *text = NULL;

    ck_assert_int_eq(frontdoor_bird_render(r, 3, &text), 0);
    ck_assert_ptr_nonnull(strstr(text,
                                 "protocol static drover_vips {\n    ipv4;\n"
                                 "    route 10.0.0.1/32 blackhole;\n"
                                 "    route 10.0.0.2/32 blackhole { bgp_community.add((65535, "
                                 "0)); };\n}\n"));
    ck_assert_ptr_nonnull(strstr(text, "protocol static drover_vips6 {\n    ipv6;\n"
                                       "    route fd00::1/128 blackhole;\n}\n"));
    free(text);
    ck_assert_int_eq(frontdoor_bird_render(NULL, 0, &text), 0);
    ck_assert_ptr_nonnull(strstr(text, "drover_vips6"));
    free(text);
    /* never anything but an address into BIRD's config */
    struct frontdoor_bird_route bad = {.address = "10.0.0.1/32 via \"x\"; route 0.0.0.0"};
    ck_assert_int_eq(frontdoor_bird_render(&bad, 1, &text), -EINVAL);
    ck_assert_ptr_null(text);
}
END_TEST

static const struct {
    const char *in;
    int rc;
    bool complete;
    int code;
    const char *text;
} replies[] = {
    {"0001 BIRD 2.0.12 ready.\n", 0, true, 1, "BIRD 2.0.12 ready."},
    {"0002-Reading configuration from /etc/bird.conf\n0003 Reconfigured\n", 0, true, 3,
     "Reading configuration from /etc/bird.conf; Reconfigured"},
    {"0002-Reading configuration from x\n8002 x:1:54 syntax error\n", 0, true, 8002,
     "Reading configuration from x; x:1:54 syntax error"},
    {"1007-a\n b\n+0099 notice\n0000 \n", 0, true, 0, "a; b; "},
    {"0002-Reading", 0, false, 0, ""},
    {"0002-Reading\n", 0, false, 0, "Reading"},
    {"hello\n", -EPROTO, false, 0, ""},
    {"00a1 x\n", -EPROTO, false, 0, ""},
    {"0001\n", -EPROTO, false, 0, ""},
};

START_TEST(test_parse_reply)
{
    struct frontdoor_bird_reply r;
    size_t used;
    int rc = frontdoor_bird_parse(replies[_i].in, strlen(replies[_i].in), &r, &used);

    ck_assert_int_eq(rc, replies[_i].rc);
    if (rc < 0)
        return;
    ck_assert_int_eq(r.complete, replies[_i].complete);
    ck_assert_int_eq(r.code, replies[_i].code);
    ck_assert_str_eq(r.text, replies[_i].text);
    ck_assert_uint_eq(used, replies[_i].complete ? strlen(replies[_i].in) : 0);
}
END_TEST

START_TEST(test_failed_codes)
{
    ck_assert(!frontdoor_bird_failed(3));
    ck_assert(!frontdoor_bird_failed(1007));
    ck_assert(frontdoor_bird_failed(8002));
    ck_assert(frontdoor_bird_failed(9001));
}
END_TEST

START_TEST(test_command_missing_socket)
{
    struct frontdoor_bird_reply r;
    char err[256];
    int rc =
        frontdoor_bird_command("/nonexistent/bird.ctl", "configure", 500, &r, err, sizeof(err));
    ck_assert_int_eq(rc, -ENOENT);
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent/bird.ctl"));
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("frontdoor");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_first_good_verdict_announces);
    tcase_add_test(tc, test_not_serving_at_start_is_no_flap);
    tcase_add_test(tc, test_fall_then_rise);
    tcase_add_test(tc, test_flapping_vip_is_held_withdrawn);
    tcase_add_test(tc, test_drain_graceful_shutdown_then_withdraw);
    tcase_add_test(tc, test_drain_never_announces_a_broken_vip);
    tcase_add_test(tc, test_removed_vip_withdrawn_at_once);
    tcase_add_test(tc, test_render);
    tcase_add_loop_test(tc, test_parse_reply, 0, (int)(sizeof(replies) / sizeof(replies[0])));
    tcase_add_test(tc, test_failed_codes);
    tcase_add_test(tc, test_command_missing_socket);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return suite_main_run(suite());
}
