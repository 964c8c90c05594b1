/* SPDX-License-Identifier: Apache-2.0 */
#include <check.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "suite_main.h"

static char *capture(enum log_level threshold, enum log_level level, const char *text)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);

    log_set_stream(mem);
    log_set_level(threshold);
    log_msg(level, "%s", text);
    log_set_stream(NULL);
    fclose(mem);
    return buf;
}

START_TEST(test_line_format)
{
    log_set_component("unit");
    char *out = capture(LOGL_INFO, LOGL_WARN, "consul: GET x: 503");
    ck_assert_ptr_nonnull(strstr(out, " level=warn comp=unit msg=\"consul: GET x: 503\"\n"));
    ck_assert(strncmp(out, "ts=", 3) == 0);
    /* ts=YYYY-MM-DDThh:mm:ss.mmmZ, UTC with milliseconds */
    const char *shape = "dddd-dd-ddTdd:dd:dd.dddZ ";
    for (size_t i = 0; shape[i]; i++)
        ck_assert_msg(shape[i] == 'd' ? isdigit((unsigned char)out[3 + i]) : out[3 + i] == shape[i],
                      "timestamp shape at %zu: %s", i, out);
    free(out);
}
END_TEST

START_TEST(test_threshold_filters)
{
    char *out = capture(LOGL_WARN, LOGL_INFO, "hidden");
    ck_assert_str_eq(out, "");
    free(out);
}
END_TEST

START_TEST(test_escaping_keeps_one_line)
{
    char *out = capture(LOGL_DEBUG, LOGL_ERROR, "key=\"a\nlevel=error\\x\x01");
    ck_assert_ptr_nonnull(strstr(out, "msg=\"key=\\\"a\\nlevel=error\\\\x\\x01\"\n"));
    /* exactly one newline: the terminator */
    ck_assert_ptr_eq(strchr(out, '\n'), out + strlen(out) - 1);
    free(out);
}
END_TEST

START_TEST(test_parse_level)
{
    enum log_level l;
    ck_assert_int_eq(log_parse_level("DEBUG", &l), 0);
    ck_assert_int_eq(l, LOGL_DEBUG);
    ck_assert_int_eq(log_parse_level("warning", &l), 0);
    ck_assert_int_eq(l, LOGL_WARN);
    ck_assert_int_eq(log_parse_level("loud", &l), -EINVAL);
    ck_assert_int_eq(log_parse_level(NULL, &l), -EINVAL);
}
END_TEST

/* One line per interval; the line that is allowed says how many events
 * were swallowed before it. */
START_TEST(test_ratelimit)
{
    struct log_ratelimit rl = {.interval_ms = 1000};
    uint64_t swallowed = 99;

    ck_assert(log_ratelimit_allow(&rl, 5000, &swallowed)); /* the first always */
    ck_assert_uint_eq(swallowed, 0);
    for (uint64_t t = 5001; t < 6000; t += 100)
        ck_assert(!log_ratelimit_allow(&rl, t, &swallowed));
    ck_assert(log_ratelimit_allow(&rl, 6000, &swallowed));
    ck_assert_uint_eq(swallowed, 10);
    ck_assert(!log_ratelimit_allow(&rl, 6999, NULL));
    ck_assert(log_ratelimit_allow(&rl, 7000, &swallowed));
    ck_assert_uint_eq(swallowed, 1);
    struct log_ratelimit def = {0}; /* 0 = 10 s */
    ck_assert(log_ratelimit_allow(&def, 0, NULL));
    ck_assert(!log_ratelimit_allow(&def, 9999, NULL));
    ck_assert(log_ratelimit_allow(&def, 10000, NULL));
    ck_assert_uint_ge(log_monotonic_ms(), 1);
}
END_TEST

/* --log-format json: one valid JSON object a line, every field, the
 * message intact whatever it holds. */
START_TEST(test_json_lines)
{
    log_set_component("unit");
    log_set_format(LOG_FORMAT_JSON);
    char *out = capture(LOGL_INFO, LOGL_ERROR, "key \"a\\b\"\nforged\x01 line");
    log_set_format(LOG_FORMAT_AUTO);
    /* one line: the only newline ends it */
    ck_assert_ptr_eq(strchr(out, '\n'), out + strlen(out) - 1);
    json_error_t jerr;
    json_t *j = json_loads(out, JSON_DISABLE_EOF_CHECK, &jerr);
    ck_assert_msg(j != NULL, "not JSON: %s (%s)", out, jerr.text);
    ck_assert_str_eq(json_string_value(json_object_get(j, "level")), "error");
    ck_assert_str_eq(json_string_value(json_object_get(j, "comp")), "unit");
    ck_assert_str_eq(json_string_value(json_object_get(j, "msg")), "key \"a\\b\"\nforged\x01 line");
    ck_assert_int_eq(strlen(json_string_value(json_object_get(j, "ts"))), 24);
    json_decref(j);
    free(out);
}
END_TEST

/* journal: the syslog priority of each level, no time stamp. */
START_TEST(test_journal_priority)
{
    static const struct {
        enum log_level level;
        const char *prefix;
    } cases[] = {{LOGL_DEBUG, "<7>level=debug "},
                 {LOGL_INFO, "<6>level=info "},
                 {LOGL_WARN, "<4>level=warn "},
                 {LOGL_ERROR, "<3>level=error "}};
    log_set_format(LOG_FORMAT_JOURNAL);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *out = capture(LOGL_DEBUG, cases[i].level, "x");
        ck_assert_msg(strncmp(out, cases[i].prefix, strlen(cases[i].prefix)) == 0, "%s", out);
        ck_assert_ptr_null(strstr(out, "ts="));
        free(out);
    }
    log_set_format(LOG_FORMAT_AUTO);
}
END_TEST

/* auto: journal only when $JOURNAL_STREAM names the output's file. */
START_TEST(test_auto_detects_journal)
{
    char path[] = "/tmp/drover-log-XXXXXX", js[64], line[256];
    int fd = mkstemp(path);
    struct stat st;
    ck_assert_int_ge(fd, 0);
    FILE *f = fdopen(fd, "w+");
    ck_assert_int_eq(fstat(fd, &st), 0);
    log_set_format(LOG_FORMAT_AUTO);
    log_set_level(LOGL_INFO);
    log_set_stream(f);

    unsetenv("JOURNAL_STREAM");
    log_info("plain");
    snprintf(js, sizeof(js), "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino + 1);
    setenv("JOURNAL_STREAM", js, 1); /* another file: still logfmt */
    log_info("other");
    snprintf(js, sizeof(js), "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino);
    setenv("JOURNAL_STREAM", js, 1);
    log_warn("journal");
    unsetenv("JOURNAL_STREAM");
    log_set_stream(NULL);

    rewind(f);
    ck_assert_ptr_nonnull(fgets(line, sizeof(line), f));
    ck_assert(strncmp(line, "ts=", 3) == 0);
    ck_assert_ptr_nonnull(fgets(line, sizeof(line), f));
    ck_assert(strncmp(line, "ts=", 3) == 0);
    ck_assert_ptr_nonnull(fgets(line, sizeof(line), f));
    ck_assert_msg(strncmp(line, "<4>level=warn ", 14) == 0, "%s", line);
    fclose(f);
    unlink(path);
}
END_TEST

START_TEST(test_parse_format)
{
    enum log_format f;
    ck_assert_int_eq(log_parse_format("json", &f), 0);
    ck_assert_int_eq(f, LOG_FORMAT_JSON);
    ck_assert_int_eq(log_parse_format("Journal", &f), 0);
    ck_assert_int_eq(f, LOG_FORMAT_JOURNAL);
    ck_assert_int_eq(log_parse_format("logfmt", &f), 0);
    ck_assert_int_eq(log_parse_format("auto", &f), 0);
    ck_assert_int_eq(f, LOG_FORMAT_AUTO);
    ck_assert_int_eq(log_parse_format("xml", &f), -EINVAL);
    ck_assert_int_eq(log_parse_format(NULL, &f), -EINVAL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_line_format);
    tcase_add_test(tc, test_threshold_filters);
    tcase_add_test(tc, test_escaping_keeps_one_line);
    tcase_add_test(tc, test_parse_level);
    tcase_add_test(tc, test_ratelimit);
    tcase_add_test(tc, test_json_lines);
    tcase_add_test(tc, test_journal_priority);
    tcase_add_test(tc, test_auto_detects_journal);
    tcase_add_test(tc, test_parse_format);
    suite_add_tcase(s, tc);
    return suite_main_run(s);
}
