/* SPDX-License-Identifier: Apache-2.0 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "kube_objects.h"
#include "kube_store.h"
#include "log.h"
#include "../common/suite_main.h"

static struct kube_store *listed_services(void)
{
    size_t len;
    char err[256];
    char *body = fixture_read("service-list.json", &len);
    struct kube_list page;
    ck_assert_int_eq(kube_list_parse(body, len, &page, err, sizeof(err)), 0);
    struct kube_store *s = kube_store_new("services", true);
    ck_assert_int_eq(kube_store_list_begin(s), 0);
    ck_assert_int_eq(kube_store_list_page(s, &page), 0);
    ck_assert_int_eq(kube_store_list_end(s, page.resource_version), 1);
    kube_list_clear(&page);
    free(body);
    return s;
}

struct apply_ctx {
    struct kube_store *s;
    int rc[8];
    size_t n;
};

static int apply_cb(const struct kube_event *ev, void *arg)
{
    struct apply_ctx *c = arg;
    c->rc[c->n++] = kube_store_apply(c->s, ev);
    return 0;
}

static void feed_fixture(struct apply_ctx *c, const char *name)
{
    size_t len;
    char *buf = fixture_read(name, &len);
    struct kube_watch_stream *ws = kube_watch_stream_new("services", 0, apply_cb, c);
    ck_assert_int_eq(kube_watch_stream_feed(ws, buf, len), 0);
    kube_watch_stream_free(ws);
    free(buf);
}

START_TEST(test_list_then_watch)
{
    struct kube_store *s = listed_services();
    ck_assert(kube_store_complete(s));
    ck_assert(!kube_store_listing(s));
    ck_assert_uint_eq(kube_store_count(s), 2);
    ck_assert_str_eq(kube_store_resource_version(s), "184470");
    ck_assert_uint_eq(kube_store_generation(s), 1);
    json_t *web = kube_store_load(s, "shop/web");
    ck_assert_ptr_nonnull(web);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(web, "metadata"), "uid")),
                     "5b1f3c3e-7f1e-4d8e-9a55-0e6f2a7c9d10");
    json_decref(web);
    ck_assert_uint_eq(kube_store_loads(s), 1);

    struct apply_ctx c = {.s = s};
    feed_fixture(&c, "watch-services.jsonl");
    ck_assert_uint_eq(c.n, 4);
    ck_assert_int_eq(c.rc[0], 0); /* ADDED at the resourceVersion already listed */
    ck_assert_int_eq(c.rc[1], 1); /* MODIFIED */
    ck_assert_int_eq(c.rc[2], 0); /* BOOKMARK */
    ck_assert_int_eq(c.rc[3], 1); /* DELETED */
    ck_assert_uint_eq(kube_store_generation(s), 3);
    ck_assert_str_eq(kube_store_resource_version(s), "184501");
    ck_assert_ptr_null(kube_store_load(s, "shop/web"));
    ck_assert_uint_eq(kube_store_count(s), 1);
    ck_assert(kube_store_complete(s));
    kube_store_free(s);
}
END_TEST

START_TEST(test_relist_semantics)
{
    struct kube_store *s = listed_services();
    char err[256];
    size_t len;
    char *body = fixture_read("service-list.json", &len);
    struct kube_list page;
    ck_assert_int_eq(kube_list_parse(body, len, &page, err, sizeof(err)), 0);

    /* the same list again changes nothing */
    ck_assert_int_eq(kube_store_list_begin(s), 0);
    ck_assert(!kube_store_complete(s));
    ck_assert_int_eq(kube_store_list_page(s, &page), 0);
    ck_assert_int_eq(kube_store_list_end(s, "184470"), 0);
    ck_assert_uint_eq(kube_store_generation(s), 1);
    ck_assert(kube_store_complete(s));

    /* a relist that fails half-way keeps everything, but incomplete */
    ck_assert_int_eq(kube_store_list_begin(s), 0);
    struct kube_event ev = {.type = KUBE_EVENT_DELETED, .object = json_array_get(page.items, 0)};
    ck_assert_int_eq(kube_store_apply(s, &ev), -EBUSY);
    kube_store_list_abort(s);
    ck_assert(!kube_store_complete(s));
    ck_assert_uint_eq(kube_store_count(s), 2);
    ck_assert_int_eq(kube_store_list_page(s, &page), -EINVAL);
    ck_assert_int_eq(kube_store_list_end(s, "1"), -EINVAL);

    /* a relist without one object removes it */
    ck_assert_int_eq(kube_store_list_begin(s), 0);
    json_array_remove(page.items, 0);
    ck_assert_int_eq(kube_store_list_page(s, &page), 0);
    ck_assert_int_eq(kube_store_list_end(s, "184600"), 1);
    ck_assert_uint_eq(kube_store_count(s), 1);
    ck_assert_ptr_null(kube_store_load(s, "infra/resolver"));
    ck_assert_str_eq(kube_store_resource_version(s), "184600");
    ck_assert(kube_store_complete(s));

    /* items without a name are skipped and counted */
    ck_assert_int_eq(kube_store_list_begin(s), 0);
    json_array_append_new(page.items, json_pack("{s:{s:s}}", "metadata", "namespace", "x"));
    json_array_append_new(page.items, json_integer(3));
    log_set_level(LOGL_ERROR);
    ck_assert_int_eq(kube_store_list_page(s, &page), 0);
    log_set_level(LOGL_INFO);
    ck_assert_int_eq(kube_store_list_end(s, "184601"), 0);
    ck_assert_uint_eq(kube_store_skipped(s), 2);
    kube_list_clear(&page);
    free(body);
    kube_store_free(s);
}
END_TEST

START_TEST(test_errors_in_watch)
{
    struct kube_store *s = listed_services();
    struct apply_ctx c = {.s = s};
    feed_fixture(&c, "watch-410.jsonl");
    ck_assert_uint_eq(c.n, 1);
    ck_assert_int_eq(c.rc[0], -ESTALE);
    ck_assert(!kube_store_complete(s));
    ck_assert_str_eq(kube_store_resource_version(s), "184470");

    json_t *status =
        json_pack("{s:s,s:i,s:s}", "kind", "Status", "code", 500, "reason", "InternalError");
    struct kube_event ev = {.type = KUBE_EVENT_ERROR, .object = status};
    kube_status_from_json(status, &ev.status);
    log_set_level(LOGL_ERROR);
    ck_assert_int_eq(kube_store_apply(s, &ev), -EPROTO);
    json_t *nameless = json_pack("{s:{s:s}}", "metadata", "resourceVersion", "9");
    struct kube_event ev2 = {.type = KUBE_EVENT_ADDED, .object = nameless};
    ck_assert_int_eq(kube_store_apply(s, &ev2), -EPROTO);
    log_set_level(LOGL_INFO);
    json_decref(status);
    json_decref(nameless);
    kube_store_free(s);
}
END_TEST

START_TEST(test_cluster_scoped_keys)
{
    struct kube_store *s = kube_store_new("nodes", false);
    json_t *node = fixture_json("node-dualstack.json");
    char key[64];
    ck_assert_int_eq(kube_store_key(s, node, key, sizeof(key)), 0);
    ck_assert_str_eq(key, "worker-a1.dc1.example.net");
    ck_assert_int_eq(kube_store_key(s, node, key, 8), -ENAMETOOLONG);
    struct kube_event ev = {.type = KUBE_EVENT_ADDED, .object = node, .resource_version = "201334"};
    ck_assert_int_eq(kube_store_apply(s, &ev), 1);
    ck_assert(!kube_store_complete(s)); /* never listed */
    ck_assert_int_eq(kube_store_apply(s, &ev), 0);
    /* a new resourceVersion is a change (events carry fresh objects) */
    json_t *node2 = json_deep_copy(node);
    json_object_set_new(json_object_get(node2, "metadata"), "resourceVersion",
                        json_string("201400"));
    ev.object = node2;
    ev.type = KUBE_EVENT_MODIFIED;
    ck_assert_int_eq(kube_store_apply(s, &ev), 1);
    ev.type = KUBE_EVENT_DELETED;
    ck_assert_int_eq(kube_store_apply(s, &ev), 1);
    ck_assert_int_eq(kube_store_apply(s, &ev), 0);
    ck_assert_uint_eq(kube_store_count(s), 0);
    json_decref(node2);
    json_decref(node);
    kube_store_free(s);
}
END_TEST

START_TEST(test_slim_store)
{
    struct kube_store *s = kube_store_new("services", true);
    kube_store_set_slim(s, kube_service_slim);
    struct apply_ctx c = {.s = s};
    feed_fixture(&c, "watch-services.jsonl");
    ck_assert_int_eq(c.rc[0], 1); /* ADDED */
    ck_assert_int_eq(c.rc[1], 1); /* MODIFIED */
    ck_assert_int_eq(c.rc[3], 1); /* DELETED */
    ck_assert_uint_eq(kube_store_count(s), 0);
    /* re-adding the same version through the slim copy is no change */
    json_t *svc = fixture_json("svc-lb-local.json");
    struct kube_event ev = {.type = KUBE_EVENT_ADDED, .object = svc};
    ck_assert_int_eq(kube_store_apply(s, &ev), 1);
    ck_assert_int_eq(kube_store_apply(s, &ev), 0);
    json_t *kept = kube_store_load(s, "shop/web");
    ck_assert_ptr_null(json_object_get(json_object_get(kept, "metadata"), "managedFields"));
    ck_assert_ptr_nonnull(json_object_get(
        json_object_get(json_object_get(kept, "metadata"), "annotations"), "drover.io/exported"));
    json_decref(kept);
    json_decref(svc);
    kube_store_free(s);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("kube_store");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_list_then_watch);
    tcase_add_test(tc, test_relist_semantics);
    tcase_add_test(tc, test_errors_in_watch);
    tcase_add_test(tc, test_cluster_scoped_keys);
    tcase_add_test(tc, test_slim_store);
    suite_add_tcase(s, tc);
    return suite_main_run(s);
}
