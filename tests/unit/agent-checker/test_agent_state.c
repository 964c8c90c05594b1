/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for agent_state: the state-file format (the contract with the
 * watcher), its error reporting, lookup order and expiry. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent_state.h"
#include "../common/suite_main.h"

/* 2026-11-23T15:00:00Z */
#define T_1500 1795446000LL

static struct agent_state *parse_ok(const char *json)
{
    struct agent_state *st = NULL;
    struct agent_state_error err;
    int rc = agent_state_parse(json, strlen(json), &st, &err);
    ck_assert_msg(rc == 0, "rejected: %s (line %d col %d)", err.text, err.line, err.column);
    return st;
}

static struct agent_state_error parse_bad(const char *json)
{
    struct agent_state *st = (struct agent_state *)1;
    struct agent_state_error err;
    ck_assert_int_eq(agent_state_parse(json, strlen(json), &st, &err), -EINVAL);
    ck_assert_ptr_null(st);
    ck_assert(err.text[0] != '\0');
    return err;
}

static enum agent_match look(const struct agent_state *st, const char *key, const char *addr,
                             int64_t now, struct agent_answer *a)
{
    struct agent_request r = {{0}, {0}};
    snprintf(r.key, sizeof(r.key), "%s", key ? key : "");
    snprintf(r.address, sizeof(r.address), "%s", addr ? addr : "");
    return agent_state_lookup(st, &r, now, a);
}

static const char *example =
    "{\"version\":1,\"generated\":\"2026-11-23T14:00:00Z\","
    " \"default\":{\"admin\":\"ready\",\"health\":\"up\",\"reason\":\"no maintenance\"},"
    " \"servers\":{"
    "   \"be_web/web-1\":{\"admin\":\"drain\",\"weight\":50,\"reason\":\"disk swap\","
    "                     \"author\":\"alice\",\"expires\":\"2026-11-23T15:00:00Z\"},"
    "   \"be_web/web-2\":{\"admin\":\"maint\",\"health\":\"down\",\"maxconn\":5},"
    "   \"be_web/web-3\":{\"admin\":\"ready\",\"created\":\"x\",\"future\":{\"a\":[1]}}},"
    " \"addresses\":{\"10.0.0.7\":{\"admin\":\"maint\",\"reason\":\"node reboot\"},"
    "                \"10.0.0.8:30080\":{\"admin\":\"drain\"},"
    "                \"2001:db8::9\":{\"admin\":\"drain\",\"reason\":\"v6\"}},"
    " \"backends\":{\"be_api\":{\"weight\":0,\"reason\":\"backend off\"}},"
    " \"unknown_top\":[1,2,3]}";

START_TEST(test_example_file)
{
    struct agent_state *st = parse_ok(example);
    struct agent_answer a;
    ck_assert_uint_eq(agent_state_count(st), 7);
    ck_assert_int_eq(agent_state_generated(st), T_1500 - 3600);

    ck_assert_int_eq(look(st, "be_web/web-1", NULL, T_1500 - 1, &a), AGENT_MATCH_SERVER);
    ck_assert_int_eq(a.admin, AGENT_ADMIN_DRAIN);
    ck_assert_int_eq(a.health, AGENT_HEALTH_UP);
    ck_assert_int_eq(a.weight, 50);
    ck_assert_int_eq(a.maxconn, -1);
    ck_assert_str_eq(a.text, "disk swap (by alice)");

    ck_assert_int_eq(look(st, "be_web/web-2", NULL, 0, &a), AGENT_MATCH_SERVER);
    ck_assert_int_eq(a.admin, AGENT_ADMIN_MAINT);
    ck_assert_int_eq(a.health, AGENT_HEALTH_DOWN);
    ck_assert_int_eq(a.maxconn, 5);
    ck_assert_str_eq(a.text, "");

    /* unknown fields ignored, missing words default to ready/up */
    ck_assert_int_eq(look(st, "be_web/web-3", NULL, 0, &a), AGENT_MATCH_SERVER);
    ck_assert_int_eq(a.admin, AGENT_ADMIN_READY);
    ck_assert_int_eq(a.health, AGENT_HEALTH_UP);
    agent_state_free(st);
}
END_TEST

START_TEST(test_lookup_order)
{
    struct agent_state *st = parse_ok(example);
    struct agent_answer a;

    /* exact server beats address */
    ck_assert_int_eq(look(st, "be_web/web-2", "10.0.0.7:80", 0, &a), AGENT_MATCH_SERVER);
    ck_assert_int_eq(a.admin, AGENT_ADMIN_MAINT);
    ck_assert_int_eq(a.maxconn, 5);
    /* address with port falls back to the bare address */
    ck_assert_int_eq(look(st, "be_web/other", "10.0.0.7:30080", 0, &a), AGENT_MATCH_ADDRESS);
    ck_assert_str_eq(a.text, "node reboot");
    ck_assert_int_eq(look(st, NULL, "10.0.0.7", 0, &a), AGENT_MATCH_ADDRESS);
    /* address:port entry matches only that port */
    ck_assert_int_eq(look(st, "x/y", "10.0.0.8:30080", 0, &a), AGENT_MATCH_ADDRESS);
    ck_assert_int_eq(a.admin, AGENT_ADMIN_DRAIN);
    ck_assert_int_eq(look(st, "x/y", "10.0.0.8:30081", 0, &a), AGENT_MATCH_DEFAULT);
    /* IPv6 in brackets with a port finds the bare address */
    ck_assert_int_eq(look(st, "x/y", "[2001:db8::9]:443", 0, &a), AGENT_MATCH_ADDRESS);
    ck_assert_str_eq(a.text, "v6");
    ck_assert_int_eq(look(st, "x/y", "2001:db8::9", 0, &a), AGENT_MATCH_ADDRESS);
    /* backend-wide entry */
    ck_assert_int_eq(look(st, "be_api/any", NULL, 0, &a), AGENT_MATCH_BACKEND);
    ck_assert_int_eq(a.weight, 0);
    ck_assert_str_eq(a.text, "backend off");
    /* address beats backend */
    ck_assert_int_eq(look(st, "be_api/any", "10.0.0.7", 0, &a), AGENT_MATCH_ADDRESS);
    /* default */
    ck_assert_int_eq(look(st, "be_web/web-9", NULL, 0, &a), AGENT_MATCH_DEFAULT);
    ck_assert_int_eq(a.admin, AGENT_ADMIN_READY);
    ck_assert_str_eq(a.text, "no maintenance");
    ck_assert_int_eq(look(st, NULL, NULL, 0, &a), AGENT_MATCH_DEFAULT);
    /* keys are exact: a prefix of a key is not the key */
    ck_assert_int_eq(look(st, "be_web/web-", NULL, 0, &a), AGENT_MATCH_DEFAULT);
    ck_assert_int_eq(look(st, "be_web/web-10", NULL, 0, &a), AGENT_MATCH_DEFAULT);
    agent_state_free(st);
}
END_TEST

START_TEST(test_expiry_at_lookup_time)
{
    struct agent_state *st = parse_ok(example);
    struct agent_answer a;
    ck_assert_int_eq(look(st, "be_web/web-1", NULL, T_1500 - 1, &a), AGENT_MATCH_SERVER);
    /* the same table, one second later: the entry no longer applies */
    ck_assert_int_eq(look(st, "be_web/web-1", NULL, T_1500, &a), AGENT_MATCH_DEFAULT);
    ck_assert_int_eq(a.admin, AGENT_ADMIN_READY);
    agent_state_free(st);

    /* an expired server entry falls through to the address entry */
    st = parse_ok("{\"version\":1,\"servers\":{\"b/s\":{\"admin\":\"drain\","
                  "\"expires\":\"2026-11-23T16:00:00+01:00\"}},"
                  "\"addresses\":{\"1.2.3.4\":{\"admin\":\"maint\"}}}");
    ck_assert_int_eq(look(st, "b/s", "1.2.3.4", T_1500 - 1, &a), AGENT_MATCH_SERVER);
    ck_assert_int_eq(look(st, "b/s", "1.2.3.4", T_1500, &a), AGENT_MATCH_ADDRESS);
    ck_assert_int_eq(a.admin, AGENT_ADMIN_MAINT);
    /* no default in the file: nothing applies */
    ck_assert_int_eq(look(st, "b/s", NULL, T_1500, &a), AGENT_MATCH_NONE);
    agent_state_free(st);

    /* the epoch is a time like any other, not "never" */
    st = parse_ok("{\"version\":1,\"servers\":{\"b/s\":{\"admin\":\"drain\","
                  "\"expires\":\"1970-01-01T00:00:00Z\"}}}");
    ck_assert_int_eq(look(st, "b/s", NULL, -1, &a), AGENT_MATCH_SERVER);
    ck_assert_int_eq(look(st, "b/s", NULL, 0, &a), AGENT_MATCH_NONE);
    agent_state_free(st);
}
END_TEST

START_TEST(test_minimal_and_empty)
{
    struct agent_state *st = parse_ok("{\"version\":1}");
    struct agent_answer a;
    ck_assert_uint_eq(agent_state_count(st), 0);
    ck_assert_int_eq(agent_state_generated(st), 0);
    ck_assert_int_eq(look(st, "a/b", "1.1.1.1", 0, &a), AGENT_MATCH_NONE);
    agent_state_free(st);
    st = parse_ok("{\"version\":1,\"servers\":{},\"addresses\":null,\"default\":null}");
    ck_assert_uint_eq(agent_state_count(st), 0);
    agent_state_free(st);
}
END_TEST

START_TEST(test_bad_json_has_position)
{
    struct agent_state_error e = parse_bad("{\"version\":1,\n  \"servers\": {\n    \"a/b\": }\n}");
    ck_assert_int_eq(e.line, 3);
    ck_assert_int_gt(e.column, 0);
    e = parse_bad("");
    ck_assert_int_ge(e.line, 1);
    e = parse_bad("{\"version\":1,\"servers\":{\"a/b\":{},\"a/b\":{}}}"); /* duplicate */
    ck_assert_int_ge(e.line, 1);
    e = parse_bad("{\"version\":1} trailing");
    ck_assert_int_ge(e.line, 1);
}
END_TEST

START_TEST(test_wrong_types_rejected_with_path)
{
    static const struct {
        const char *json, *path;
    } cases[] = {
        {"[]", "top level"},
        {"{}", "version"},
        {"{\"version\":2}", "version"},
        {"{\"version\":\"1\"}", "version"},
        {"{\"version\":1,\"generated\":\"yesterday\"}", "generated"},
        {"{\"version\":1,\"servers\":[]}", "servers"},
        {"{\"version\":1,\"servers\":{\"a/b\":\"drain\"}}", "servers[\"a/b\"]"},
        {"{\"version\":1,\"servers\":{\"a/b\":{\"admin\":\"sleep\"}}}", "servers[\"a/b\"].admin"},
        {"{\"version\":1,\"servers\":{\"a/b\":{\"admin\":1}}}", "servers[\"a/b\"].admin"},
        {"{\"version\":1,\"servers\":{\"a/b\":{\"health\":\"ok\"}}}", "servers[\"a/b\"].health"},
        {"{\"version\":1,\"servers\":{\"a/b\":{\"weight\":257}}}", "servers[\"a/b\"].weight"},
        {"{\"version\":1,\"servers\":{\"a/b\":{\"weight\":-1}}}", "servers[\"a/b\"].weight"},
        {"{\"version\":1,\"servers\":{\"a/b\":{\"weight\":\"50\"}}}", "servers[\"a/b\"].weight"},
        {"{\"version\":1,\"servers\":{\"a/b\":{\"weight\":5.5}}}", "servers[\"a/b\"].weight"},
        {"{\"version\":1,\"servers\":{\"a/b\":{\"maxconn\":-3}}}", "servers[\"a/b\"].maxconn"},
        {"{\"version\":1,\"servers\":{\"a/b\":{\"reason\":7}}}", "servers[\"a/b\"].reason"},
        {"{\"version\":1,\"servers\":{\"a/b\":{\"author\":[]}}}", "servers[\"a/b\"].author"},
        {"{\"version\":1,\"servers\":{\"a/b\":{\"expires\":\"2026-13-01T00:00:00Z\"}}}",
         "servers[\"a/b\"].expires"},
        {"{\"version\":1,\"servers\":{\"a/b\":{\"expires\":1795446000}}}",
         "servers[\"a/b\"].expires"},
        {"{\"version\":1,\"addresses\":{\"1.2.3.4\":{\"admin\":\"x\"}}}",
         "addresses[\"1.2.3.4\"].admin"},
        {"{\"version\":1,\"backends\":{\"be\":{\"health\":true}}}", "backends[\"be\"].health"},
        {"{\"version\":1,\"default\":{\"admin\":\"no\"}}", "default.admin"},
        {"{\"version\":1,\"servers\":{\"\":{}}}", "servers[\"\"]"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct agent_state_error e = parse_bad(cases[i].json);
        ck_assert_int_eq(e.line, 0);
        ck_assert_msg(strncmp(e.text, cases[i].path, strlen(cases[i].path)) == 0,
                      "case %zu: '%s' does not start with '%s'", i, e.text, cases[i].path);
    }
}
END_TEST

START_TEST(test_reason_sanitised_and_cut)
{
    char json[1024];
    char reason[301];
    memset(reason, 'x', 300);
    reason[300] = '\0';
    snprintf(json, sizeof(json),
             "{\"version\":1,\"servers\":{\"a/b\":{\"reason\":\"evil\\nready up\\r\\u0001\","
             "\"author\":\"mallory\"},\"a/c\":{\"reason\":\"%s\"}}}",
             reason);
    struct agent_state *st = parse_ok(json);
    struct agent_answer a;
    look(st, "a/b", NULL, 0, &a);
    ck_assert_str_eq(a.text, "evil ready up (by mallory)");
    look(st, "a/c", NULL, 0, &a);
    ck_assert_uint_eq(strlen(a.text), AGENT_TEXT_MAX);
    agent_state_free(st);
}
END_TEST

START_TEST(test_load_file)
{
    char dir[] = "/tmp/agent-state-test-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof(path), "%s/state.json", dir);

    struct agent_state *st = NULL;
    struct agent_state_error err;
    ck_assert_int_eq(agent_state_load(path, &st, &err), -ENOENT);
    ck_assert_ptr_null(st);

    FILE *f = fopen(path, "w");
    fputs(example, f);
    fclose(f);
    ck_assert_int_eq(agent_state_load(path, &st, &err), 0);
    ck_assert_uint_eq(agent_state_count(st), 7);
    agent_state_free(st);

    f = fopen(path, "w");
    fputs("{\"version\":1,\n\"servers\":{", f);
    fclose(f);
    ck_assert_int_eq(agent_state_load(path, &st, &err), -EINVAL);
    ck_assert_int_eq(err.line, 2);

    /* a directory is not a state file */
    ck_assert_int_eq(agent_state_load(dir, &st, &err), -EINVAL);
    unlink(path);
    rmdir(dir);
}
END_TEST

START_TEST(test_many_servers)
{
    /* 50k entries: every one found, none confused with another */
    enum { N = 50000 };
    size_t cap = (size_t)N * 64 + 64, len = 0;
    char *json = malloc(cap);
    len += (size_t)snprintf(json + len, cap - len, "{\"version\":1,\"servers\":{");
    for (int i = 0; i < N; i++)
        len += (size_t)snprintf(json + len, cap - len, "%s\"be_%d/srv-%d\":{\"weight\":%d}",
                                i ? "," : "", i % 97, i, i % 257);
    len += (size_t)snprintf(json + len, cap - len, "}}");
    struct agent_state *st = parse_ok(json);
    free(json);
    ck_assert_uint_eq(agent_state_count(st), N);
    struct agent_answer a;
    char key[64];
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "be_%d/srv-%d", i % 97, i);
        ck_assert_int_eq(look(st, key, NULL, 0, &a), AGENT_MATCH_SERVER);
        ck_assert_int_eq(a.weight, i % 257);
    }
    ck_assert_int_eq(look(st, "be_0/srv-50000", NULL, 0, &a), AGENT_MATCH_NONE);
    agent_state_free(st);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("agent_state");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_example_file);
    tcase_add_test(tc, test_lookup_order);
    tcase_add_test(tc, test_expiry_at_lookup_time);
    tcase_add_test(tc, test_minimal_and_empty);
    tcase_add_test(tc, test_bad_json_has_position);
    tcase_add_test(tc, test_wrong_types_rejected_with_path);
    tcase_add_test(tc, test_reason_sanitised_and_cut);
    tcase_add_test(tc, test_load_file);
    tcase_add_test(tc, test_many_servers);
    suite_add_tcase(s, tc);
    return suite_main_run(s);
}
