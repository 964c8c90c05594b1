/* SPDX-License-Identifier: Apache-2.0 */
/* kv_frontdoor: the front door's KV records, both ways. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kv_frontdoor.h"
#include "suite_main.h"

START_TEST(test_host_round_trip)
{
    struct kv_frontdoor_host h = {.drained = true, .author = "ops", .reason = "upgrade"}, d;
    char err[256], *text = kv_frontdoor_host_encode(&h);

    ck_assert_str_eq(text, "{\"author\":\"ops\",\"drained\":true,\"reason\":\"upgrade\"}");
    ck_assert_int_eq(kv_frontdoor_host_decode(text, strlen(text), &d, err, sizeof(err)), 0);
    ck_assert(d.drained);
    ck_assert_str_eq(d.author, "ops");
    ck_assert_ptr_null(d.since);
    kv_frontdoor_host_clear(&d);
    free(text);
}
END_TEST

static const char *const bad_hosts[] = {
    "", "[]", "{}", "{\"drained\":1}", "{\"drained\":true,\"author\":5}", "{\"drained\":tru",
};

START_TEST(test_host_bad)
{
    struct kv_frontdoor_host d;
    char err[256] = "";
    const char *in = bad_hosts[_i];
    ck_assert_int_eq(kv_frontdoor_host_decode(in, strlen(in), &d, err, sizeof(err)), -EBADMSG);
    ck_assert_ptr_nonnull(strstr(err, "frontdoor host record"));
}
END_TEST

START_TEST(test_status_round_trip)
{
    struct kv_frontdoor_vip v[2] = {{.vip = "10.0.0.1", .route = "announced", .reason = "serving"},
                                    {.vip = "10.0.0.2", .route = "withdrawn"}};
    struct kv_frontdoor_status s = {.cluster = "dc1",
                                    .table_checksum = "00112233aabbccdd",
                                    .drained = false,
                                    .bird_in_sync = true,
                                    .packets = 12345,
                                    .updated = "2026-12-07T01:00:00Z",
                                    .vips = v,
                                    .n_vips = 2},
                               d;
    char err[256], *text = kv_frontdoor_status_encode(&s);

    ck_assert_ptr_nonnull(text);
    ck_assert_int_eq(kv_frontdoor_status_decode(text, strlen(text), &d, err, sizeof(err)), 0);
    ck_assert_str_eq(d.cluster, "dc1");
    ck_assert_str_eq(d.table_checksum, "00112233aabbccdd");
    ck_assert(d.bird_in_sync && !d.drained);
    ck_assert_uint_eq(d.packets, 12345);
    ck_assert_uint_eq(d.n_vips, 2);
    ck_assert_str_eq(d.vips[1].route, "withdrawn");
    ck_assert_ptr_null(d.vips[1].reason);
    char *again = kv_frontdoor_status_encode(&d);
    ck_assert_str_eq(again, text); /* canonical */
    free(again);
    kv_frontdoor_status_clear(&d);
    free(text);
}
END_TEST

static const char *const bad_status[] = {
    "[1]",
    "{\"vips\":{}}",
    "{\"vips\":[1]}",
    "{\"vips\":[{\"vip\":\"10.0.0.1\"}]}",
    "{\"packets\":-1}",
    "{\"drained\":\"yes\"}",
};

START_TEST(test_status_bad)
{
    struct kv_frontdoor_status d;
    char err[256];
    const char *in = bad_status[_i];
    ck_assert_int_eq(kv_frontdoor_status_decode(in, strlen(in), &d, err, sizeof(err)), -EBADMSG);
    ck_assert_ptr_null(d.vips);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("kv_frontdoor");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_host_round_trip);
    tcase_add_loop_test(tc, test_host_bad, 0, (int)(sizeof(bad_hosts) / sizeof(bad_hosts[0])));
    tcase_add_test(tc, test_status_round_trip);
    tcase_add_loop_test(tc, test_status_bad, 0, (int)(sizeof(bad_status) / sizeof(bad_status[0])));
    suite_add_tcase(s, tc);
    return suite_main_run(s);
}
