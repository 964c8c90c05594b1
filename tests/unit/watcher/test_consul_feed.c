/* SPDX-License-Identifier: Apache-2.0 */
/*
 * consul_feed's choice of prefixes (consul_feed.h): the fixed ones, and the
 * kube services the definitions reference - one prefix per service, per
 * namespace past the budget, kube/<c>/services/ whole only for class
 * selectors, a budget of 0 or too many namespaces.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consul_feed.h"
#include "kv_key.h"
#include "../common/suite_main.h"

static const char *const clusters[] = {"prod-a"};
static const struct kv_model_opts opts = {
    .root = "drover/v1/",
    .haproxy_cluster = "edge",
    .kube_clusters = clusters,
    .n_kube_clusters = 1,
};

/* A definition with one backend fed by the kube services ns/svc[i]. */
static char *definition(const char *ns, const char *const *svc, size_t n)
{
    char refs[1024] = "";
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(refs);
        snprintf(refs + len, sizeof(refs) - len,
                 "%s{\"cluster\":\"prod-a\",\"namespace\":\"%s\",\"service\":\"%s\","
                 "\"port\":\"http\"}",
                 i ? "," : "", ns, svc[i]);
    }
    char *v = NULL;
    ck_assert_int_gt(asprintf(&v,
                              "{\"frontends\":[{\"name\":\"fe\",\"bind\":[\"127.0.0.1:80\"],"
                              "\"default_backend\":\"be\"}],\"backends\":[{\"name\":\"be\","
                              "\"slots\":4,\"kube\":[%s]}]}",
                              refs),
                     0);
    return v;
}

static const char *svc_public =
    "{\"frontends\":[{\"name\":\"fe\",\"bind\":[\"127.0.0.1:81\"]}],\"backends\":[],"
    "\"select\":[{\"class\":\"public\",\"frontend\":\"fe\"}]}";

/* prefixes for the definitions values[0..n) under haproxy/edge/services/ */
static void prefixes(const char *const *values, size_t n, unsigned budget, char ***out,
                     size_t *n_out)
{
    struct consul_kv items[4] = {0};
    char keys[4][64];
    ck_assert_uint_le(n, 4);
    for (size_t i = 0; i < n; i++) {
        snprintf(keys[i], sizeof(keys[i]), "drover/v1/haproxy/edge/services/s%zu", i);
        items[i].key = keys[i];
        items[i].value = (unsigned char *)values[i];
        items[i].value_len = strlen(values[i]);
    }
    struct consul_kv_list defs = {.items = items, .n = n};
    ck_assert_int_eq(consul_feed_service_prefixes(&opts, NULL, budget, &defs, NULL, out, n_out), 0);
}

static void strv_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

START_TEST(test_fixed)
{
    char **v = NULL;
    size_t n = 0;
    ck_assert_int_eq(consul_feed_fixed_prefixes(&opts, &v, &n), 0);
    ck_assert_uint_eq(n, 3 + KV_NODE_SHARDS); /* the node shards are fixed prefixes too */
    ck_assert_str_eq(v[0], "drover/v1/haproxy/edge/");
    ck_assert_str_eq(v[1], "drover/v1/maintenance/");
    ck_assert_str_eq(v[2], "drover/v1/kube/prod-a/nodes/");
    ck_assert_str_eq(v[3], "drover/v1/kube/prod-a/node-shards/00/");
    ck_assert_str_eq(v[2 + KV_NODE_SHARDS], "drover/v1/kube/prod-a/node-shards/0f/");
    strv_free(v, n);
}
END_TEST

/* A definition that decodes names its services, not kube/<c>/ whole (a
 * decoded definition once counted as a class selector). */
START_TEST(test_referenced_services_only)
{
    const char *const svcs[] = {"web", "api"};
    char *def = definition("shop", svcs, 2);
    const char *const values[] = {def};
    char **v = NULL;
    size_t n = 0;
    prefixes(values, 1, 32, &v, &n);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(v[0], "drover/v1/kube/prod-a/services/shop/api/");
    ck_assert_str_eq(v[1], "drover/v1/kube/prod-a/services/shop/web/");
    strv_free(v, n);
    /* past the budget: the namespace */
    prefixes(values, 1, 1, &v, &n);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(v[0], "drover/v1/kube/prod-a/services/shop/");
    strv_free(v, n);
    free(def);
}
END_TEST

START_TEST(test_whole)
{
    const char *const svcs[] = {"web"};
    char *def = definition("shop", svcs, 1);
    const char *const with_selector[] = {def, svc_public};
    char **v = NULL;
    size_t n = 0;
    /* a class selector may pick any Service */
    prefixes(with_selector, 2, 32, &v, &n);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(v[0], "drover/v1/kube/prod-a/services/");
    strv_free(v, n);
    /* service watches 0 */
    prefixes(with_selector, 1, 0, &v, &n);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(v[0], "drover/v1/kube/prod-a/services/");
    strv_free(v, n);
    free(def);
}
END_TEST

/* A definition that does not decode references nothing (without a
 * snapshot in force to take its last good references from). */
START_TEST(test_bad_definition)
{
    const char *const values[] = {"{not json"};
    char **v = NULL;
    size_t n = 0;
    prefixes(values, 1, 32, &v, &n);
    ck_assert_uint_eq(n, 0);
    strv_free(v, n);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("consul_feed");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_fixed);
    tcase_add_test(tc, test_referenced_services_only);
    tcase_add_test(tc, test_whole);
    tcase_add_test(tc, test_bad_definition);
    suite_add_tcase(s, tc);
    return suite_main_run(s);
}
