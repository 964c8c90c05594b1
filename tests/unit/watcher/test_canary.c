/* SPDX-License-Identifier: Apache-2.0 */
/* canary_overlay (watcher/canary.h): the staged change on the snapshot
 * inputs of a canary host, of another host, and when it is bad. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "canary.h"
#include "../common/suite_main.h"

#define R      "drover/v1/"
#define WEB    R "haproxy/edge/services/web"
#define API    R "haproxy/edge/services/api"
#define STAGED R "haproxy/edge/canary"

static const struct kv_model_opts opts = {.root = R, .haproxy_cluster = "edge"};

/* web (live), api (live), a kube node, and the staged record text */
static struct snapshot_entry *entries(const char *staged, size_t *n)
{
    const char *kv[][2] = {{WEB, "{\"live\":1}"},
                           {API, "{\"live\":2}"},
                           {R "kube/c/nodes/n1", "{}"},
                           {STAGED, staged}};
    struct snapshot_entry *e = calloc(4, sizeof(*e));
    *n = staged ? 4 : 3;
    for (size_t i = 0; i < *n; i++) {
        e[i].key = strdup(kv[i][0]);
        e[i].value = strdup(kv[i][1]);
        e[i].len = strlen(kv[i][1]);
    }
    return e;
}

static const char *value_of(const struct snapshot_entry *e, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(e[i].key, key))
            return e[i].value;
    return NULL;
}

/* web changed, api deleted, on proxy-a; version 4 */
static const char *rec =
    "{\"author\":\"a\",\"base\":{\"haproxy/edge/services/api\":3,\"haproxy/edge/services/web\":"
    "2},\"canary\":[\"proxy-a\"],\"cluster\":\"edge\",\"keys\":{\"haproxy/edge/services/api\":"
    "null,\"haproxy/edge/services/web\":{\"z\":1,\"a\":[2]}},\"time\":\"2026-11-23T15:04:05Z\","
    "\"version\":4}";

START_TEST(test_canary_host_overlays)
{
    size_t n;
    struct snapshot_entry *e = entries(rec, &n);
    struct canary_result cr;
    ck_assert_int_eq(canary_overlay(&opts, "proxy-a", &e, &n, &cr), 0);
    ck_assert_uint_eq(cr.version, 4);
    ck_assert(!cr.bad);
    ck_assert_uint_eq(n, 2);
    /* canonical bytes: compact, keys sorted (what promote writes) */
    ck_assert_str_eq(value_of(e, n, WEB), "{\"a\":[2],\"z\":1}");
    ck_assert_ptr_null(value_of(e, n, API));
    ck_assert_ptr_null(value_of(e, n, STAGED));
    ck_assert_ptr_nonnull(value_of(e, n, R "kube/c/nodes/n1"));
    snapshot_entries_free(e, n);
}
END_TEST

START_TEST(test_other_host_sees_live_only)
{
    size_t n;
    struct snapshot_entry *e = entries(rec, &n);
    struct canary_result cr;
    ck_assert_int_eq(canary_overlay(&opts, "proxy-b", &e, &n, &cr), 0);
    ck_assert_uint_eq(cr.version, 0);
    ck_assert_uint_eq(n, 3);
    ck_assert_str_eq(value_of(e, n, WEB), "{\"live\":1}");
    ck_assert_str_eq(value_of(e, n, API), "{\"live\":2}");
    ck_assert_ptr_null(value_of(e, n, STAGED));
    snapshot_entries_free(e, n);
    /* no host name: never a canary */
    e = entries(rec, &n);
    ck_assert_int_eq(canary_overlay(&opts, NULL, &e, &n, &cr), 0);
    ck_assert_uint_eq(cr.version, 0);
    ck_assert_uint_eq(n, 3);
    snapshot_entries_free(e, n);
}
END_TEST

START_TEST(test_bad_record_skipped_and_counted)
{
    const char *bad[] = {
        "not json",
        /* a key of another cluster */
        "{\"author\":\"a\",\"base\":{\"haproxy/other/services/web\":0},\"canary\":[\"proxy-a\"],"
        "\"cluster\":\"edge\",\"keys\":{\"haproxy/other/services/web\":{}},\"time\":"
        "\"2026-11-23T15:04:05Z\",\"version\":4}",
        /* a key without its base index */
        "{\"author\":\"a\",\"base\":{},\"canary\":[\"proxy-a\"],\"cluster\":\"edge\",\"keys\":{"
        "\"haproxy/edge/services/web\":{}},\"time\":\"2026-11-23T15:04:05Z\",\"version\":4}",
        /* no canary host */
        "{\"author\":\"a\",\"base\":{\"haproxy/edge/services/web\":0},\"canary\":[],\"cluster\":"
        "\"edge\",\"keys\":{\"haproxy/edge/services/web\":{}},\"time\":\"2026-11-23T15:04:05Z\","
        "\"version\":4}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t n;
        struct snapshot_entry *e = entries(bad[i], &n);
        struct canary_result cr;
        ck_assert_int_eq(canary_overlay(&opts, "proxy-a", &e, &n, &cr), 0);
        ck_assert_msg(cr.bad, "case %zu not counted", i);
        ck_assert_uint_eq(cr.version, 0);
        ck_assert_uint_eq(n, 3);
        ck_assert_str_eq(value_of(e, n, WEB), "{\"live\":1}");
        snapshot_entries_free(e, n);
    }
}
END_TEST

START_TEST(test_nothing_staged)
{
    size_t n;
    struct snapshot_entry *e = entries(NULL, &n);
    struct canary_result cr;
    ck_assert_int_eq(canary_overlay(&opts, "proxy-a", &e, &n, &cr), 0);
    ck_assert_uint_eq(n, 3);
    ck_assert_uint_eq(cr.version, 0);
    ck_assert(!cr.bad);
    snapshot_entries_free(e, n);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("canary");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_canary_host_overlays);
    tcase_add_test(tc, test_other_host_sees_live_only);
    tcase_add_test(tc, test_bad_record_skipped_and_counted);
    tcase_add_test(tc, test_nothing_staged);
    suite_add_tcase(s, tc);
    return suite_main_run(s);
}
