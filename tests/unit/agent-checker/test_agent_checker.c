/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for agent_checker: reload keeps the previous state on a bad or
 * missing file, fallback and readiness, staleness, and the full answer
 * path from request bytes to reply line. Runs without a loop (reloads are
 * called directly); the integration test covers inotify and SIGHUP. The
 * reader cases give answering threads their own loops: a reader answers
 * from one whole state until its loop takes the next, and old states are
 * freed only after the last reader let go (ASan in the debug preset). */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent_checker.h"
#include "log.h"
#include "../common/suite_main.h"

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

static const char *state_a = "{\"version\":1,\"servers\":{\"be/s\":{\"admin\":\"drain\","
                             "\"reason\":\"A\"}}}";
static const char *state_b = "{\"version\":1,\"servers\":{\"be/s\":{\"admin\":\"maint\","
                             "\"reason\":\"B\"}}}";
#define REPLY_A "drain up #A\n"
#define REPLY_B "maint up #B\n"

static const char *reader_answer(struct agent_reader *r, char *out, size_t cap)
{
    int n = agent_reader_answer(r, "be/s\n", 5, AGENT_REQ_LINE, out, cap);
    ck_assert_int_gt(n, 0);
    return out;
}

START_TEST(test_reader_switches_at_its_next_answer)
{
    char out[AGENT_REPLY_MAX];
    struct agent_reader *r = NULL, *idle = NULL;
    write_state(state_a);
    struct agent_checker *ck = new_checker("ready up", 0);
    ck_assert_int_eq(agent_checker_reader_new(ck, &r), 0);
    ck_assert_int_eq(agent_checker_reader_new(ck, &idle), 0);
    ck_assert_str_eq(reader_answer(r, out, sizeof(out)), REPLY_A);

    write_state(state_b);
    ck_assert_int_eq(agent_checker_reload(ck, "test"), AGENT_RELOAD_OK);
    /* the checker's own answers and the reader's next one come from the
     * new file, with no loop or wake-up in between */
    ck_assert_str_eq(answer(ck, "be/s\n", AGENT_REQ_LINE), REPLY_B);
    ck_assert_str_eq(reader_answer(r, out, sizeof(out)), REPLY_B);
    /* a reader that did not answer across two reloads (a thread idle in
     * accept4) holds the first file until it answers: then the newest */
    write_state(state_a);
    ck_assert_int_eq(agent_checker_reload(ck, "test"), AGENT_RELOAD_OK);
    ck_assert_str_eq(reader_answer(idle, out, sizeof(out)), REPLY_A);
    ck_assert_str_eq(reader_answer(r, out, sizeof(out)), REPLY_A);
    /* its answers are in the totals, also after it is freed */
    ck_assert_uint_eq(agent_checker_counters(ck)->matches[AGENT_MATCH_SERVER], 5);
    agent_checker_reader_free(r);
    agent_checker_reader_free(idle);
    ck_assert_uint_eq(agent_checker_counters(ck)->replies[AGENT_ADMIN_DRAIN][AGENT_HEALTH_UP], 3);
    ck_assert_uint_eq(agent_checker_counters(ck)->replies[AGENT_ADMIN_MAINT][AGENT_HEALTH_UP], 2);
    agent_checker_free(ck);
}
END_TEST

struct hammer {
    struct agent_reader *r;
    volatile bool stop;
    int bad, answers;
    char bad_reply[AGENT_REPLY_MAX];
};

static void *hammer_main(void *arg)
{
    struct hammer *h = arg;
    char out[AGENT_REPLY_MAX];
    while (!h->stop) {
        int n = agent_reader_answer(h->r, "be/s\n", 5, AGENT_REQ_LINE, out, sizeof(out));
        h->answers++;
        if (n <= 0 || (strcmp(out, REPLY_A) != 0 && strcmp(out, REPLY_B) != 0)) {
            if (!h->bad++)
                snprintf(h->bad_reply, sizeof(h->bad_reply), "%s", n > 0 ? out : "(none)");
        }
    }
    return NULL;
}

/* Two threads answer while the checker reloads 200 times: every answer is
 * one whole file's, and no state is freed under a reader taking it (ASan,
 * and TSan-style races on the view pointer would show as mixed answers or
 * use after free). */
START_TEST(test_readers_in_threads_during_reloads)
{
    struct hammer h[2];
    pthread_t th[2];
    write_state(state_a);
    struct agent_checker *ck = new_checker("ready up", 0);
    for (int i = 0; i < 2; i++) {
        memset(&h[i], 0, sizeof(h[i]));
        ck_assert_int_eq(agent_checker_reader_new(ck, &h[i].r), 0);
        ck_assert_int_eq(pthread_create(&th[i], NULL, hammer_main, &h[i]), 0);
    }
    for (int k = 0; k < 200; k++) {
        write_state(k % 2 ? state_a : state_b);
        ck_assert_int_eq(agent_checker_reload(ck, "test"), AGENT_RELOAD_OK);
    }
    for (int i = 0; i < 2; i++) {
        h[i].stop = true;
        pthread_join(th[i], NULL);
        /* the next answer after the last reload (state A) is A's */
        char out[AGENT_REPLY_MAX];
        ck_assert_str_eq(reader_answer(h[i].r, out, sizeof(out)), REPLY_A);
        agent_checker_reader_free(h[i].r);
        ck_assert_msg(h[i].bad == 0, "thread %d: %d of %d answers mixed, first: %s", i, h[i].bad,
                      h[i].answers, h[i].bad_reply);
        ck_assert_int_gt(h[i].answers, 0);
    }
    agent_checker_free(ck);
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
    tcase_add_test(tc, test_reader_switches_at_its_next_answer);
    tcase_add_test(tc, test_readers_in_threads_during_reloads);
    suite_add_tcase(s, tc);
    return suite_main_run(s);
}
