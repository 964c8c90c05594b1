/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for agent_checker: reload keeps the previous state on a bad or
 * missing file, fallback and readiness, staleness, and the full answer
 * path from request bytes to reply line. Runs without a loop (reloads are
 * called directly); the integration test covers inotify and SIGHUP. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent_checker.h"
#include "log.h"

static char dir[64], path[128];
static int ready_calls;
static bool last_ready;
static char last_reason[512];
static FILE *devnull;

static void on_ready(void *arg, bool ready, const char *reason)
{
    ready_calls++;
    last_ready = ready;
    snprintf(last_reason, sizeof(last_reason), "%s", reason);
}

static void write_state(const char *json)
{
    char tmp[160];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    ck_assert_ptr_nonnull(f);
    fputs(json, f);
    fclose(f);
    ck_assert_int_eq(rename(tmp, path), 0);
}

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/agent-checker-test-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/state.json", dir);
    ready_calls = 0;
    last_ready = false;
    last_reason[0] = '\0';
    /* the checker logs every failed reload; keep test output readable */
    devnull = fopen("/dev/null", "w");
    log_set_stream(devnull);
}

static void teardown(void)
{
    unlink(path);
    rmdir(dir);
    log_set_stream(NULL);
    if (devnull)
        fclose(devnull);
    devnull = NULL;
}

static struct agent_checker *new_checker(const char *fallback, int64_t stale)
{
    struct agent_checker_config cfg = {
        .state_path = path, .fallback = fallback, .stale_after_s = stale};
    struct agent_checker *ck = NULL;
    ck_assert_int_eq(agent_checker_new(NULL, &cfg, on_ready, NULL, &ck), 0);
    return ck;
}

static const char *answer(struct agent_checker *ck, const char *req, enum agent_req_end end)
{
    static char out[AGENT_REPLY_MAX];
    int n = agent_checker_answer(ck, req, strlen(req), end, out, sizeof(out));
    ck_assert_int_gt(n, 0);
    return out;
}

START_TEST(test_missing_at_start_then_good)
{
    struct agent_checker *ck = new_checker("ready up", 0);
    const char *reason;
    ck_assert(!agent_checker_ready(ck, &reason));
    ck_assert_ptr_nonnull(strstr(reason, "missing"));
    ck_assert_ptr_nonnull(strstr(last_reason, path));
    ck_assert_str_eq(answer(ck, "be/s\n", AGENT_REQ_LINE), "ready up #drover: no state loaded\n");
    ck_assert_uint_eq(agent_checker_counters(ck)->fallback_no_state, 1);
    ck_assert_uint_eq(agent_checker_counters(ck)->reloads[AGENT_RELOAD_MISSING], 1);
    ck_assert(agent_checker_state_age(ck) < 0);

    write_state("{\"version\":1,\"servers\":{\"be/s\":{\"admin\":\"drain\",\"weight\":10,"
                "\"reason\":\"disk swap\",\"author\":\"alice\"}}}");
    ck_assert_int_eq(agent_checker_reload(ck, "test"), AGENT_RELOAD_OK);
    ck_assert(agent_checker_ready(ck, NULL));
    ck_assert(last_ready);
    ck_assert_str_eq(answer(ck, "be/s\n", AGENT_REQ_LINE), "drain up 10% #disk swap (by alice)\n");
    /* no entry and no default in the file: configured fallback */
    ck_assert_str_eq(answer(ck, "be/t\n", AGENT_REQ_LINE), "ready up #drover: no entry\n");
    ck_assert_uint_eq(agent_checker_counters(ck)->matches[AGENT_MATCH_SERVER], 1);
    ck_assert_uint_eq(agent_checker_counters(ck)->replies[AGENT_ADMIN_DRAIN][AGENT_HEALTH_UP], 1);
    ck_assert_uint_eq(agent_checker_state_entries(ck), 1);
    /* no "generated": age from the file's mtime, so small */
    ck_assert(agent_checker_state_age(ck) >= 0 && agent_checker_state_age(ck) < 60);
    agent_checker_free(ck);
}
END_TEST

START_TEST(test_bad_file_keeps_previous)
{
    write_state("{\"version\":1,\"servers\":{\"be/s\":{\"admin\":\"maint\"}}}");
    struct agent_checker *ck = new_checker("ready up", 0);
    ck_assert(agent_checker_ready(ck, NULL));
    ck_assert_str_eq(answer(ck, "be/s\n", AGENT_REQ_LINE), "maint up #\n");

    write_state("{\"version\":1,\n\"servers\":{\"be/s\":{\"admin\":\"ready\"}\n");
    ck_assert_int_eq(agent_checker_reload(ck, "test"), AGENT_RELOAD_INVALID);
    ck_assert_str_eq(answer(ck, "be/s\n", AGENT_REQ_LINE), "maint up #\n");
    const char *reason;
    ck_assert(!agent_checker_ready(ck, &reason));
    ck_assert_ptr_nonnull(strstr(reason, "line 3"));
    ck_assert_ptr_nonnull(strstr(reason, path));
    ck_assert_uint_eq(agent_checker_counters(ck)->parse_errors, 1);

    /* wrong types are rejected the same way */
    write_state("{\"version\":1,\"servers\":{\"be/s\":{\"weight\":\"lots\"}}}");
    ck_assert_int_eq(agent_checker_reload(ck, "test"), AGENT_RELOAD_INVALID);
    ck_assert_str_eq(answer(ck, "be/s\n", AGENT_REQ_LINE), "maint up #\n");
    ck_assert_uint_eq(agent_checker_counters(ck)->parse_errors, 2);

    /* the file vanishing keeps the state too */
    unlink(path);
    ck_assert_int_eq(agent_checker_reload(ck, "test"), AGENT_RELOAD_MISSING);
    ck_assert_str_eq(answer(ck, "be/s\n", AGENT_REQ_LINE), "maint up #\n");

    write_state("{\"version\":1,\"default\":{\"admin\":\"drain\",\"reason\":\"all\"}}");
    ck_assert_int_eq(agent_checker_reload(ck, "test"), AGENT_RELOAD_OK);
    ck_assert(agent_checker_ready(ck, NULL));
    ck_assert_str_eq(answer(ck, "be/s\n", AGENT_REQ_LINE), "drain up #all\n");
    agent_checker_free(ck);
}
END_TEST

START_TEST(test_garbage_and_partial_get_default)
{
    write_state("{\"version\":1,\"default\":{\"reason\":\"default\"},"
                "\"servers\":{\"be/web-1\":{\"admin\":\"maint\"},\"be/web-10\":{}}}");
    struct agent_checker *ck = new_checker("ready up", 0);
    ck_assert_str_eq(answer(ck, "", AGENT_REQ_TIMEOUT), "ready up #default\n");
    ck_assert_str_eq(answer(ck, "", AGENT_REQ_EOF), "ready up #default\n");
    ck_assert_uint_eq(agent_checker_counters(ck)->bad_requests, 0);
    /* a fragment at timeout is not trusted, even if it names a server */
    ck_assert_str_eq(answer(ck, "be/web-1", AGENT_REQ_TIMEOUT), "ready up #default\n");
    /* the same bytes ended by EOF are complete */
    ck_assert_str_eq(answer(ck, "be/web-1", AGENT_REQ_EOF), "maint up #\n");
    ck_assert_str_eq(answer(ck, "GET / HTTP/1.0\r\n", AGENT_REQ_LINE), "ready up #default\n");
    ck_assert_str_eq(answer(ck, "be/web-1", AGENT_REQ_OVERSIZE), "ready up #default\n");
    ck_assert_uint_eq(agent_checker_counters(ck)->bad_requests, 3);
    agent_checker_free(ck);
}
END_TEST

START_TEST(test_stale_state_uses_fallback)
{
    write_state("{\"version\":1,\"generated\":\"2020-01-01T00:00:00Z\","
                "\"servers\":{\"be/s\":{\"admin\":\"drain\"}}}");
    struct agent_checker *ck = new_checker("maint up #safe", 60);
    const char *reason;
    ck_assert(!agent_checker_ready(ck, &reason));
    ck_assert_ptr_nonnull(strstr(reason, "stale"));
    ck_assert_str_eq(answer(ck, "be/s\n", AGENT_REQ_LINE),
                     "maint up #drover: state is stale - safe\n");
    ck_assert_uint_eq(agent_checker_counters(ck)->fallback_stale, 1);
    ck_assert(agent_checker_state_age(ck) > 60);
    agent_checker_free(ck);

    /* without a limit the same file is served */
    ck = new_checker("ready up", 0);
    ck_assert(agent_checker_ready(ck, NULL));
    ck_assert_str_eq(answer(ck, "be/s\n", AGENT_REQ_LINE), "drain up #\n");
    agent_checker_free(ck);
}
END_TEST

START_TEST(test_bad_fallback_refused)
{
    struct agent_checker_config cfg = {.state_path = path, .fallback = "ready sideways"};
    struct agent_checker *ck = NULL;
    ck_assert_int_eq(agent_checker_new(NULL, &cfg, NULL, NULL, &ck), -EINVAL);
    ck_assert_ptr_null(ck);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("agent_checker");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_missing_at_start_then_good);
    tcase_add_test(tc, test_bad_file_keeps_previous);
    tcase_add_test(tc, test_garbage_and_partial_get_default);
    tcase_add_test(tc, test_stale_state_uses_fallback);
    tcase_add_test(tc, test_bad_fallback_refused);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
