/* SPDX-License-Identifier: Apache-2.0 */
/* The cas retry loop of ctl_execute against a real Consul dev agent: a
 * writer that slips in between droverctl's read and its write makes the
 * transaction fail; droverctl reads again and applies its change on top,
 * or gives up after its attempts with nothing written. The interleaving
 * is forced with the settings' before_write hook, so it is deterministic. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "ctl_args.h"
#include "ctl_kv.h"

static char addr[256];
static char root[128];
static struct ctl_kv *kv;

static void put(const char *key, const char *value)
{
    char full[512], err[512];
    snprintf(full, sizeof(full), "%s%s", root, key);
    struct consul_txn_op op = {
        .verb = CONSUL_TXN_SET, .key = full, .value = value, .value_len = strlen(value)};
    ck_assert_msg(ctl_kv_txn(kv, &op, 1, err, sizeof(err)) == 0, "%s", err);
}

static size_t count(const char *sub)
{
    char prefix[512], err[512];
    struct consul_kv_list *l;
    snprintf(prefix, sizeof(prefix), "%s%s", root, sub);
    ck_assert_msg(ctl_kv_list(kv, prefix, &l, err, sizeof(err)) == 0, "%s", err);
    size_t n = l->n;
    consul_kv_list_free(l);
    return n;
}

static char *get(const char *key)
{
    char full[512], err[512];
    struct consul_kv_list *l;
    snprintf(full, sizeof(full), "%s%s", root, key);
    ck_assert_msg(ctl_kv_get(kv, full, &l, err, sizeof(err)) == 0, "%s", err);
    if (!l)
        return NULL;
    char *v = strdup((const char *)l->items[0].value);
    consul_kv_list_free(l);
    return v;
}

struct intruder {
    int every; /* 1: write before every attempt; 0: only before the first */
    int calls;
    const char *key;
    const char *value;
};

/* value holds one %d: Consul does not bump ModifyIndex for a write of
 * identical bytes, so every intrusion writes something new. */
static void intrude(void *arg, int attempt)
{
    struct intruder *in = arg;
    char v[256];
    in->calls++;
    const char *at = strstr(in->value, "%d");
    ck_assert_ptr_nonnull(at);
    snprintf(v, sizeof(v), "%.*s%d%s", (int)(at - in->value), in->value, in->calls, at + 2);
    if (attempt == 1 || in->every)
        put(in->key, v);
}

static void run(const char *text, struct ctl_settings *s, struct ctl_result *res)
{
    struct ctl_command cmd;
    char **w, err[256];
    int n;
    ck_assert_int_eq(ctl_split_words(text, strlen(text), &w, &n, err, sizeof(err)), 0);
    ck_assert_msg(ctl_command_parse(n, w, CTL_SOURCE_CLI, NULL, &cmd, err, sizeof(err)) == 0, "%s",
                  err);
    ctl_words_free(w);
    ck_assert_int_eq(ctl_execute(kv, s, &cmd, (int64_t)time(NULL) * 1000, res), 0);
    ctl_command_free(&cmd);
}

static void setup(void)
{
    char path[512], err[512];
    const char *state = getenv("DROVER_CONSUL_STATE");
    FILE *f;

    ck_assert_msg(state != NULL, "DROVER_CONSUL_STATE not set (run through ctest)");
    snprintf(path, sizeof(path), "%s/addr", state);
    f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_nonnull(fgets(addr, sizeof(addr), f));
    fclose(f);
    addr[strcspn(addr, "\n")] = '\0';
    snprintf(root, sizeof(root), "test-ctl-cas-%d-%ld/", (int)getpid(), (long)time(NULL));
    struct consul_config cc = {.address = addr};
    ck_assert_msg(ctl_kv_open(&cc, &kv, err, sizeof(err)) == 0, "%s", err);
    put("kube/k/nodes/n1", "{\"name\":\"n1\",\"address\":\"10.0.0.1\",\"eligible\":true}");
    put("director/dc/proxies/p1", "{\"address\":\"10.0.1.1\",\"state\":\"active\"}");
}

static void teardown(void)
{
    char err[512];
    struct consul_txn_op op = {.verb = CONSUL_TXN_DELETE_TREE, .key = root};
    ctl_kv_txn(kv, &op, 1, err, sizeof(err));
    ctl_kv_close(kv);
}

START_TEST(test_conflict_then_retry)
{
    struct intruder in = {.key = "maintenance/node/k/n1",
                          .value = "{\"state\":\"maint\",\"reason\":\"other writer %d\","
                                   "\"target\":\"node/k/n1\"}"};
    struct ctl_settings s = {.root = root,
                             .max_out_share = 1,
                             .default_author = "t",
                             .before_write = intrude,
                             .before_write_arg = &in};
    struct ctl_result res;

    run("drain node/k/n1 --reason mine", &s, &res);
    ck_assert_msg(res.outcome == CTL_OK && res.changed, "%s", res.text);
    ck_assert_int_eq(in.calls, 2); /* first attempt lost the race, second won */
    char *v = get("maintenance/node/k/n1");
    ck_assert_ptr_nonnull(strstr(v, "\"reason\":\"mine\""));
    ck_assert_ptr_nonnull(strstr(v, "\"state\":\"drain\""));
    free(v);
    ck_assert_uint_eq(count("audit/"), 1);
    /* the audit entry's "before" is what the other writer left */
    ck_assert_ptr_nonnull(strstr(res.json, "\"before\":{\"reason\":\"other writer 1\""));
    ctl_result_free(&res);
}
END_TEST

START_TEST(test_conflict_gives_up)
{
    struct intruder in = {.every = 1,
                          .key = "maintenance/node/k/n1",
                          .value = "{\"state\":\"maint\",\"reason\":\"busy %d\"}"};
    struct ctl_settings s = {.root = root,
                             .max_out_share = 1,
                             .default_author = "t",
                             .cas_attempts = 3,
                             .before_write = intrude,
                             .before_write_arg = &in};
    struct ctl_result res;

    run("drain node/k/n1 --reason mine", &s, &res);
    ck_assert_int_eq(res.outcome, CTL_FAILED);
    ck_assert_ptr_nonnull(strstr(res.text, "cas conflict 3 times in a row"));
    ck_assert_ptr_nonnull(strstr(res.text, "nothing was written"));
    ck_assert_int_eq(in.calls, 3);
    ck_assert_uint_eq(count("audit/"), 0);
    char *v = get("maintenance/node/k/n1");
    ck_assert_str_eq(v, "{\"state\":\"maint\",\"reason\":\"busy 3\"}");
    free(v);
    ctl_result_free(&res);

    /* the same for the director state */
    in.key = "director/dc/proxies/p1";
    in.value = "{\"address\":\"10.0.1.1\",\"state\":\"active\",\"weight\":%d}";
    s.director_cluster = "dc";
    in.calls = 0;
    run("director drain p1", &s, &res);
    ck_assert_int_eq(res.outcome, CTL_FAILED);
    ck_assert_int_eq(in.calls, 3);
    ck_assert_uint_eq(count("audit/"), 0);
    ctl_result_free(&res);
    in.every = 0;
    in.calls = 0;
    run("director drain p1", &s, &res);
    ck_assert_msg(res.outcome == CTL_OK && res.changed, "%s", res.text);
    v = get("director/dc/proxies/p1");
    ck_assert_str_eq(v, "{\"address\":\"10.0.1.1\",\"state\":\"draining\",\"weight\":1}");
    free(v);
    ck_assert_uint_eq(count("audit/"), 1);
    ctl_result_free(&res);
}
END_TEST

int main(void)
{
    Suite *su = suite_create("ctl_cas");
    TCase *tc = tcase_create("live");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_conflict_then_retry);
    tcase_add_test(tc, test_conflict_gives_up);
    suite_add_tcase(su, tc);
    SRunner *sr = srunner_create(su);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
