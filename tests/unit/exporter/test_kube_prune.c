/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kube_prune: the text scan removes exactly what kube_list_prune_tree()
 * removes from the parsed list, keeps the text valid JSON wherever the
 * removed members sit (first, middle, last, only, several in a row), and
 * leaves text it cannot follow untouched. On the fixture's own pages a
 * slimmed store holds the same bytes with and without pruning.
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "kube_objects.h"
#include "kube_prune.h"
#include "kube_store.h"
#include "kube_watch_stream.h"
#include "../common/suite_main.h"

/* Prunes a copy of text and checks it against the tree reference; returns
 * the pruned length. */
static size_t prune_matches_tree(const char *text)
{
    size_t len = strlen(text);
    char *buf = strdup(text);
    ck_assert_ptr_nonnull(buf);
    json_error_t err;
    json_t *want = json_loads(text, 0, &err);
    ck_assert_msg(want != NULL, "case is not JSON: %s: %s", err.text, text);
    kube_list_prune_tree(want);
    ck_assert_int_eq(kube_list_prune(buf, &len), 0);
    json_t *got = json_loadb(buf, len, 0, &err);
    ck_assert_msg(got != NULL, "pruned text is not JSON (%s): %.*s", err.text, (int)len, buf);
    ck_assert_msg(json_equal(got, want), "pruned: %.*s", (int)len, buf);
    json_decref(got);
    json_decref(want);
    free(buf);
    return len;
}

START_TEST(test_members_anywhere)
{
    static const char *const cases[] = {
        /* only member, first, middle, last */
        "{\"items\":[{\"metadata\":{\"managedFields\":[{\"a\":1}]}}]}",
        "{\"items\":[{\"metadata\":{\"managedFields\":[],\"name\":\"x\"}}]}",
        "{\"items\":[{\"metadata\":{\"name\":\"x\",\"managedFields\":{},\"uid\":\"u\"}}]}",
        "{\"items\":[{\"metadata\":{\"name\":\"x\",\"managedFields\":null}}]}",
        /* several removed members in a row, with whitespace everywhere */
        "{ \"items\" : [ { \"metadata\" : { \"managedFields\" : [ 1 , 2 ] , \"annotations\" : "
        "{ \"kubectl.kubernetes.io/last-applied-configuration\" : \"{\\\"a\\\":\\\"}\\\"}\" "
        "} } , \"status\" : { \"images\" : [ { \"names\" : [ \"n\" ] } ] } } ] }",
        "{\"items\":[{\"status\":{\"images\":[],\"images\":[1],\"addresses\":[]}}]}",
        "{\"items\":[{\"status\":{\"capacity\":{\"cpu\":\"4\"},\"conditions\":[],\"nodeInfo\":{},"
        "\"allocatable\":{},\"daemonEndpoints\":{},\"volumesInUse\":[\"v\"],\"volumesAttached\":[]}"
        "}]}",
        "{\"items\":[{\"status\":{\"addresses\":[],\"images\":[],\"images\":[1]}}]}",
        /* annotations kept around the removed one; escaped quotes and
         * backslashes inside strings */
        "{\"items\":[{\"metadata\":{\"annotations\":{\"a\":\"\\\\\",\"kubectl.kubernetes.io/"
        "last-applied-configuration\":\"x\\\\\\\"}\",\"drover.io/exported\":\"true\"}}}]}",
        /* the same names elsewhere are kept */
        "{\"metadata\":{\"managedFields\":1},\"items\":[{\"spec\":{\"managedFields\":2},"
        "\"metadata\":{\"labels\":{\"managedFields\":\"3\"}}}]}",
        /* items of other shapes, an empty list, no items */
        "{\"items\":[1,\"s\",null,[{\"metadata\":{\"managedFields\":1}}],{}]}",
        "{\"kind\":\"NodeList\",\"items\":[]}",
        "{\"kind\":\"Status\",\"code\":410}",
        "{\"items\":null}",
        "{\"items\":{\"metadata\":{\"managedFields\":1}}}",
        "{\"items\":[{\"metadata\":5,\"status\":\"x\"}],\"items\":[{\"metadata\":{"
        "\"managedFields\":1,\"name\":\"n\"}}]}",
        "{\"items\":[{\"metadata\":{\"name\":\"a\"}},{\"metadata\":{\"name\":\"b\","
        "\"managedFields\":"
        "[{\"x\":[[[]]],\"y\":\"]}\"}]}}],\"metadata\":{\"resourceVersion\":\"7\"}}",
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        prune_matches_tree(cases[i]);
}
END_TEST

/* Text the scan cannot follow is left byte for byte as it was. */
START_TEST(test_unfollowable_text_unchanged)
{
    static const char *const cases[] = {
        "",
        "[]",
        "{\"items\":[{\"metadata\":{\"managedFields\":[1,2}}]}", /* unterminated */
        "{\"items\":[{\"metadata\":{\"managedFields\":\"abc}}]}",
        "{\"items\":[{\"metadata\" {}}]}",
        "{\"items\":[{\"metadata\":{}} {}]}",
        "{\"it\\u0065ms\":[{\"metadata\":{\"managedFields\":1}}]}", /* escaped key */
        "{\"items\":[{\"metadata\":{\"managedFields\":1,}}]}",
        "{\"items\":[{\"metadata\":{\"managedFields\":}}]}",
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t len = strlen(cases[i]);
        char *buf = strdup(cases[i]);
        int rc = kube_list_prune(buf, &len);
        ck_assert_msg(rc == -EINVAL, "case %zu: %d", i, rc);
        ck_assert_uint_eq(len, strlen(cases[i]));
        ck_assert_str_eq(buf, cases[i]);
        free(buf);
    }
}
END_TEST

/* The object of item (from one store) is in the other store, equal. */
static int same_in_other(const struct kube_store_item *item, void *arg)
{
    struct kube_store *other = arg;
    json_t *mine = json_loadb(item->json, item->json_len, 0, NULL);
    json_t *theirs = kube_store_load(other, item->key);
    ck_assert_msg(mine && theirs && json_equal(mine, theirs), "%s differs", item->key);
    json_decref(mine);
    json_decref(theirs);
    return 0;
}

/* A slimmed store cannot tell a pruned page from the whole one. */
static void assert_store_same(const char *file, bool namespaced, kube_store_slim_fn slim,
                              size_t min_saved)
{
    size_t len;
    char *text = fixture_read(file, &len);
    size_t orig = len;
    struct kube_store *s[2];
    for (int pruned = 0; pruned < 2; pruned++) {
        char *buf = malloc(orig);
        memcpy(buf, text, orig);
        len = orig;
        if (pruned) {
            ck_assert_int_eq(kube_list_prune(buf, &len), 0);
            ck_assert_msg(orig - len >= min_saved, "%s: %zu of %zu bytes cut", file, orig - len,
                          orig);
        }
        struct kube_list page;
        char err[256];
        ck_assert_int_eq(kube_list_parse(buf, len, &page, err, sizeof(err)), 0);
        s[pruned] = kube_store_new("x", namespaced);
        kube_store_set_slim(s[pruned], slim);
        ck_assert(kube_store_slimmed(s[pruned]));
        ck_assert_int_eq(kube_store_list_begin(s[pruned]), 0);
        ck_assert_int_eq(kube_store_list_page(s[pruned], &page), 0);
        ck_assert_int_eq(kube_store_list_end(s[pruned], page.resource_version), 1);
        kube_list_clear(&page);
        free(buf);
    }
    ck_assert_uint_gt(kube_store_count(s[0]), 0);
    ck_assert_uint_eq(kube_store_count(s[0]), kube_store_count(s[1]));
    ck_assert_int_eq(kube_store_foreach(s[0], same_in_other, s[1]), 0);
    kube_store_free(s[0]);
    kube_store_free(s[1]);
    free(text);
}

START_TEST(test_slim_store_unchanged)
{
    assert_store_same("list-services-fixture.json", true, kube_service_slim, 1000);
    assert_store_same("list-nodes-fixture.json", false, kube_node_slim, 3000);
    assert_store_same("service-list.json", true, kube_service_slim, 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("kube_prune");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_members_anywhere);
    tcase_add_test(tc, test_unfollowable_text_unchanged);
    tcase_add_test(tc, test_slim_store_unchanged);
    suite_add_tcase(s, tc);
    return suite_main_run(s);
}
