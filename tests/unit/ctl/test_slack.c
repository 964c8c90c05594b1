/* SPDX-License-Identifier: Apache-2.0 */
/* Slack request verification, replay cache, form decoding and answers.
 * Signature vectors come from `openssl dgst -sha256 -hmac SECRET`; the
 * first is the example of Slack's "Verifying requests" documentation. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slack.h"
#include "../common/suite_main.h"

static const char doc_secret[] = "8f742231b10e8888abcd99yyyzzz85a5";
static const char doc_ts[] = "1531420618";
static const char doc_body[] =
    "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id="
    "G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-"
    "collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%"
    "2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121."
    "803a0bc887a14d10d2c447fce8b6703c";
static const char doc_sig[] = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

START_TEST(test_signature_vectors)
{
    char hex[65];

    ck_assert_int_eq(slack_signature_hex(doc_secret, strlen(doc_secret), doc_ts, doc_body,
                                         strlen(doc_body), hex),
                     0);
    ck_assert_str_eq(hex, doc_sig + 3);
    ck_assert_int_eq(slack_signature_hex("secret", 6, "1700000000", "text=drain+node-a", 17, hex),
                     0);
    ck_assert_str_eq(hex, "d45464658dfa8910115cf4b1932390d13e78d2f743a12743f1c481a6dfeae8da");
}
END_TEST

START_TEST(test_verify)
{
    char err[256];
    int64_t now = 1531420618 + 10;
    size_t bl = strlen(doc_body);

    ck_assert_int_eq(slack_verify(doc_secret, strlen(doc_secret), doc_ts, doc_sig, doc_body, bl,
                                  now, err, sizeof(err)),
                     0);
    /* one flipped byte anywhere: body, signature, secret, timestamp */
    char *body = strdup(doc_body);
    body[20] ^= 1;
    ck_assert_int_eq(slack_verify(doc_secret, strlen(doc_secret), doc_ts, doc_sig, body, bl, now,
                                  err, sizeof(err)),
                     -EACCES);
    ck_assert_str_eq(err, "bad request signature");
    free(body);
    char sig[sizeof(doc_sig)];
    memcpy(sig, doc_sig, sizeof(sig));
    sig[10] = sig[10] == 'a' ? 'b' : 'a';
    ck_assert_int_eq(slack_verify(doc_secret, strlen(doc_secret), doc_ts, sig, doc_body, bl, now,
                                  err, sizeof(err)),
                     -EACCES);
    ck_assert_int_eq(slack_verify("x", 1, doc_ts, doc_sig, doc_body, bl, now, err, sizeof(err)),
                     -EACCES);
    ck_assert_int_eq(slack_verify(doc_secret, strlen(doc_secret), "1531420619", doc_sig, doc_body,
                                  bl, now, err, sizeof(err)),
                     -EACCES);
    /* truncated, upper-case or unprefixed signatures */
    ck_assert_int_eq(slack_verify(doc_secret, strlen(doc_secret), doc_ts, "v0=a2114d", doc_body, bl,
                                  now, err, sizeof(err)),
                     -EACCES);
    ck_assert_int_eq(slack_verify(doc_secret, strlen(doc_secret), doc_ts, doc_sig + 3, doc_body, bl,
                                  now, err, sizeof(err)),
                     -EACCES);
    /* missing headers */
    ck_assert_int_eq(slack_verify(doc_secret, strlen(doc_secret), NULL, doc_sig, doc_body, bl, now,
                                  err, sizeof(err)),
                     -EACCES);
    ck_assert_ptr_nonnull(strstr(err, "X-Slack-Request-Timestamp"));
    ck_assert_int_eq(slack_verify(doc_secret, strlen(doc_secret), doc_ts, NULL, doc_body, bl, now,
                                  err, sizeof(err)),
                     -EACCES);
    ck_assert_ptr_nonnull(strstr(err, "X-Slack-Signature"));
    /* bad timestamps */
    ck_assert_int_eq(slack_verify(doc_secret, strlen(doc_secret), "-1", doc_sig, doc_body, bl, now,
                                  err, sizeof(err)),
                     -EACCES);
    ck_assert_int_eq(slack_verify(doc_secret, strlen(doc_secret), "15314x", doc_sig, doc_body, bl,
                                  now, err, sizeof(err)),
                     -EACCES);
}
END_TEST

START_TEST(test_window)
{
    char err[256];
    size_t bl = strlen(doc_body), sl = strlen(doc_secret);
    int64_t ts = 1531420618;

    /* exactly at the edges: accepted; one second beyond: stale */
    ck_assert_int_eq(
        slack_verify(doc_secret, sl, doc_ts, doc_sig, doc_body, bl, ts + 300, err, sizeof(err)), 0);
    ck_assert_int_eq(
        slack_verify(doc_secret, sl, doc_ts, doc_sig, doc_body, bl, ts - 300, err, sizeof(err)), 0);
    ck_assert_int_eq(
        slack_verify(doc_secret, sl, doc_ts, doc_sig, doc_body, bl, ts + 301, err, sizeof(err)),
        -ETIME);
    ck_assert_ptr_nonnull(strstr(err, "stale"));
    ck_assert_int_eq(
        slack_verify(doc_secret, sl, doc_ts, doc_sig, doc_body, bl, ts - 301, err, sizeof(err)),
        -ETIME);
}
END_TEST

START_TEST(test_replay_cache)
{
    struct slack_replay r = {.max = 3};
    int64_t now = 1000000;

    ck_assert_int_eq(slack_replay_check(&r, "v0=aa", now, now), 0);
    ck_assert_int_eq(slack_replay_check(&r, "v0=aa", now, now + 1), -EALREADY);
    ck_assert_int_eq(slack_replay_check(&r, "v0=bb", now - 299, now), 0);
    ck_assert_int_eq(slack_replay_check(&r, "v0=cc", now, now), 0);
    /* full: refuse rather than forget a live signature */
    ck_assert_int_eq(slack_replay_check(&r, "v0=dd", now, now), -ENOSPC);
    ck_assert_int_eq(slack_replay_check(&r, "v0=aa", now, now + 2), -EALREADY);
    /* bb's timestamp leaves the window: its slot is freed */
    ck_assert_int_eq(slack_replay_check(&r, "v0=dd", now, now + 2), 0);
    ck_assert_uint_eq(r.n, 3);
    /* everything ages out after the window */
    ck_assert_int_eq(slack_replay_check(&r, "v0=aa", now + 400, now + 400), 0);
    ck_assert_uint_eq(r.n, 1);
    slack_replay_free(&r);
}
END_TEST

START_TEST(test_form)
{
    struct slack_form f;
    char err[256];
    const char body[] = "text=drain+node-a+--reason+%22disk+swap%22&user_id=U1&user_name=alice&"
                        "channel_id=C1&empty=&flag&&command=%2Fdrover";

    ck_assert_int_eq(slack_form_parse(body, strlen(body), &f, err, sizeof(err)), 0);
    ck_assert_str_eq(slack_form_get(&f, "text"), "drain node-a --reason \"disk swap\"");
    ck_assert_str_eq(slack_form_get(&f, "user_name"), "alice");
    ck_assert_str_eq(slack_form_get(&f, "command"), "/drover");
    ck_assert_str_eq(slack_form_get(&f, "empty"), "");
    ck_assert_str_eq(slack_form_get(&f, "flag"), "");
    ck_assert_ptr_null(slack_form_get(&f, "response_url"));
    slack_form_free(&f);

    const char *bad[] = {"text=%zz", "text=%4", "text=%", "a=1&a=2", "text=%00x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_int_eq(slack_form_parse(bad[i], strlen(bad[i]), &f, err, sizeof(err)), -EINVAL);
        slack_form_free(&f);
    }
    ck_assert_int_eq(slack_form_parse("a\0b=1", 5, &f, err, sizeof(err)), -EINVAL);
    slack_form_free(&f);
    /* too many fields */
    char many[1024] = "";
    for (int i = 0; i < SLACK_FORM_MAX_KEYS + 1; i++)
        snprintf(many + strlen(many), sizeof(many) - strlen(many), "k%d=v&", i);
    ck_assert_int_eq(slack_form_parse(many, strlen(many), &f, err, sizeof(err)), -EINVAL);
    slack_form_free(&f);
}
END_TEST

START_TEST(test_allow_and_answer)
{
    char *users[] = {"U1", "U2"};
    char *any[] = {"*"};

    ck_assert(slack_allowed(users, 2, "U2"));
    ck_assert(!slack_allowed(users, 2, "U3"));
    ck_assert(!slack_allowed(users, 2, NULL));
    ck_assert(!slack_allowed(users, 2, ""));
    ck_assert(!slack_allowed(users, 0, "U1"));
    ck_assert(slack_allowed(any, 1, "C9"));
    char *j = slack_answer_json(true, "drained \"x\"");
    ck_assert_str_eq(j, "{\"response_type\":\"in_channel\",\"text\":\"drained \\\"x\\\"\"}");
    free(j);
    j = slack_answer_json(false, "no");
    ck_assert_str_eq(j, "{\"response_type\":\"ephemeral\",\"text\":\"no\"}");
    free(j);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ctl_slack");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_signature_vectors);
    tcase_add_test(tc, test_verify);
    tcase_add_test(tc, test_window);
    tcase_add_test(tc, test_replay_cache);
    tcase_add_test(tc, test_form);
    tcase_add_test(tc, test_allow_and_answer);
    suite_add_tcase(s, tc);
    return suite_main_run(s);
}
