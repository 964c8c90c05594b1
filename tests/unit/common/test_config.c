/* SPDX-License-Identifier: Apache-2.0 */
#include <check.h>
#include <stdarg.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "config_fixture.h"
#include "log.h"
#include "suite_main.h"

/* One option of every type, as a daemon would declare them. */
static struct {
    char *addr;
    int64_t port;
    bool verbose;
    int64_t wait_ms;
    double ratio;
    struct config_strlist tags;
    uint64_t max_body;
} o;

static const struct config_option opts[] = {
    CONFIG_OPT_STRING("consul-addr", &o.addr, "127.0.0.1:8500", "Consul HTTP address"),
    CONFIG_OPT_INT("port", &o.port, "9100", 1, 65535, "metrics port"),
    CONFIG_OPT_BOOL("verbose", &o.verbose, "false", "say more"),
    CONFIG_OPT_DURATION("wait-min", &o.wait_ms, "200ms", "quiescence minimum"),
    CONFIG_OPT_DOUBLE("ratio", &o.ratio, "0.5", "max share removed"),
    CONFIG_OPT_STRLIST("tag", &o.tags, "a,b", "tags"),
    CONFIG_OPT_SIZE("max-body", &o.max_body, "1MiB", "largest body"),
    CONFIG_OPT_END,
};

static const struct config_program prog = {
    .name = "drover-test",
    .summary = "unit test program",
    .args_usage = "[render [--diff]]",
    .options = opts,
};

static void setup(void)
{
    static const char *const vars[] = {"DROVER_CONSUL_ADDR", "DROVER_PORT",   "DROVER_VERBOSE",
                                       "DROVER_WAIT_MIN",    "DROVER_RATIO",  "DROVER_TAG",
                                       "DROVER_MAX_BODY",    "DROVER_CONFIG", "DROVER_LOG_LEVEL"};
    memset(&o, 0, sizeof(o));
    fixture_setup(vars, sizeof(vars) / sizeof(vars[0]));
}

static void teardown(void)
{
    config_free(&prog);
    fixture_teardown();
    log_set_level(LOGL_INFO);
}

/* Parse a NULL-terminated argument vector. */
static int parse(char *err, size_t errlen, int *first, ...)
{
    char *argv[32];
    va_list ap;
    va_start(ap, first);
    int argc = fixture_argv(argv, ap);
    va_end(ap);
    config_free(&prog);
    return config_parse(&prog, argc, argv, first, err, errlen);
}

START_TEST(test_defaults)
{
    char err[256];
    int first = -1;

    ck_assert_int_eq(parse(err, sizeof(err), &first, NULL), 0);
    ck_assert_str_eq(o.addr, "127.0.0.1:8500");
    ck_assert_int_eq(o.port, 9100);
    ck_assert(!o.verbose);
    ck_assert_int_eq(o.wait_ms, 200);
    ck_assert_double_eq(o.ratio, 0.5);
    ck_assert_uint_eq(o.tags.count, 2);
    ck_assert_str_eq(o.tags.items[0], "a");
    ck_assert_str_eq(o.tags.items[1], "b");
    ck_assert_uint_eq(o.max_body, 1048576);
    ck_assert_int_eq(first, 1);
}
END_TEST

/* Each type: flag beats env beats file beats default. */
START_TEST(test_precedence_each_type)
{
    char err[256];

    write_cfg("{\"consul-addr\": \"file:1\", \"port\": 1001, \"verbose\": true,"
              " \"wait-min\": \"3s\", \"ratio\": 0.3, \"tag\": [\"f1\", \"f2\"],"
              " \"max-body\": \"3KiB\", \"log-level\": \"error\"}");
    setenv("DROVER_CONFIG", cfgpath, 1);

    /* file over default */
    ck_assert_msg(parse(err, sizeof(err), NULL, NULL) == 0, "%s", err);
    ck_assert_str_eq(o.addr, "file:1");
    ck_assert_int_eq(o.port, 1001);
    ck_assert(o.verbose);
    ck_assert_int_eq(o.wait_ms, 3000);
    ck_assert_double_eq(o.ratio, 0.3);
    ck_assert_uint_eq(o.tags.count, 2);
    ck_assert_str_eq(o.tags.items[1], "f2");
    ck_assert_uint_eq(o.max_body, 3072);
    ck_assert_int_eq(log_get_level(), LOGL_ERROR);

    /* env over file */
    setenv("DROVER_CONSUL_ADDR", "env:2", 1);
    setenv("DROVER_PORT", "2002", 1);
    setenv("DROVER_VERBOSE", "no", 1);
    setenv("DROVER_WAIT_MIN", "1m30s", 1);
    setenv("DROVER_RATIO", "0.25", 1);
    setenv("DROVER_TAG", "e1, e2 ,e3", 1);
    setenv("DROVER_MAX_BODY", "2MB", 1);
    setenv("DROVER_LOG_LEVEL", "warn", 1);
    ck_assert_msg(parse(err, sizeof(err), NULL, NULL) == 0, "%s", err);
    ck_assert_str_eq(o.addr, "env:2");
    ck_assert_int_eq(o.port, 2002);
    ck_assert(!o.verbose);
    ck_assert_int_eq(o.wait_ms, 90000);
    ck_assert_double_eq(o.ratio, 0.25);
    ck_assert_uint_eq(o.tags.count, 3);
    ck_assert_str_eq(o.tags.items[0], "e1");
    ck_assert_str_eq(o.tags.items[1], "e2");
    ck_assert_uint_eq(o.max_body, 2000000);
    ck_assert_int_eq(log_get_level(), LOGL_WARN);

    /* flags over env */
    ck_assert_msg(parse(err, sizeof(err), NULL, "--consul-addr", "flag:3", "--port=3003",
                        "--verbose", "--wait-min", "2h", "--ratio=0.125", "--tag", "x", "--tag=y,z",
                        "--max-body", "4k", "--log-level", "debug", NULL) == 0,
                  "%s", err);
    ck_assert_str_eq(o.addr, "flag:3");
    ck_assert_int_eq(o.port, 3003);
    ck_assert(o.verbose);
    ck_assert_int_eq(o.wait_ms, 7200000);
    ck_assert_double_eq(o.ratio, 0.125);
    ck_assert_uint_eq(o.tags.count, 3);
    ck_assert_str_eq(o.tags.items[0], "x");
    ck_assert_str_eq(o.tags.items[2], "z");
    ck_assert_uint_eq(o.max_body, 4096);
    ck_assert_int_eq(log_get_level(), LOGL_DEBUG);

    /* --config flag beats DROVER_CONFIG */
    unsetenv("DROVER_CONSUL_ADDR");
    char other[160];
    snprintf(other, sizeof(other), "%s/other.json", tmpdir);
    FILE *f = fopen(other, "w");
    fputs("{\"consul-addr\": \"other\"}", f);
    fclose(f);
    ck_assert_msg(parse(err, sizeof(err), NULL, "--config", other, NULL) == 0, "%s", err);
    ck_assert_str_eq(o.addr, "other");
    unlink(other);
}
END_TEST

START_TEST(test_bool_forms)
{
    char err[256];

    ck_assert_int_eq(parse(err, sizeof(err), NULL, "--verbose=yes", NULL), 0);
    ck_assert(o.verbose);
    ck_assert_int_eq(parse(err, sizeof(err), NULL, "--verbose", "--no-verbose", NULL), 0);
    ck_assert(!o.verbose);
    ck_assert_int_eq(parse(err, sizeof(err), NULL, "--verbose=0", NULL), 0);
    ck_assert(!o.verbose);
    setenv("DROVER_VERBOSE", "1", 1);
    ck_assert_int_eq(parse(err, sizeof(err), NULL, NULL), 0);
    ck_assert(o.verbose);
    /* A bare bool flag does not eat the positional argument after it. */
    int first;
    ck_assert_int_eq(parse(err, sizeof(err), &first, "--verbose", "render", NULL), 0);
    ck_assert_int_eq(first, 2);
}
END_TEST

START_TEST(test_positional_and_double_dash)
{
    char err[256];
    int first;

    ck_assert_int_eq(parse(err, sizeof(err), &first, "--port", "1", "render", "--diff", NULL), 0);
    ck_assert_int_eq(first, 3); /* "render"; "--diff" belongs to the subcommand */
    ck_assert_int_eq(o.port, 1);
    ck_assert_int_eq(parse(err, sizeof(err), &first, "--verbose", "--", "--port", NULL), 0);
    ck_assert_int_eq(first, 3);
    ck_assert_int_eq(o.port, 9100);
    ck_assert_int_eq(parse(err, sizeof(err), &first, "--verbose", NULL), 0);
    ck_assert_int_eq(first, 2); /* == argc: no positional */
}
END_TEST

START_TEST(test_errors_name_input)
{
    char err[256];

    ck_assert_int_eq(parse(err, sizeof(err), NULL, "--bogus", NULL), -EINVAL);
    ck_assert_str_eq(err, "unknown option '--bogus' (see --help)");
    ck_assert_int_eq(parse(err, sizeof(err), NULL, "--bogus=1", NULL), -EINVAL);
    ck_assert_str_eq(err, "unknown option '--bogus' (see --help)");
    ck_assert_int_eq(parse(err, sizeof(err), NULL, "-x", NULL), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "'-x'"));
    ck_assert_int_eq(parse(err, sizeof(err), NULL, "--port", NULL), -EINVAL);
    ck_assert_str_eq(err, "option '--port' needs a value (integer)");
    ck_assert_int_eq(parse(err, sizeof(err), NULL, "--consul-addr", "--verbose", NULL), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "'--consul-addr' needs"));
    ck_assert_int_eq(parse(err, sizeof(err), NULL, "--port", "70000", NULL), -EINVAL);
    ck_assert_str_eq(err, "--port: 70000 out of range 1..65535");
    ck_assert_int_eq(parse(err, sizeof(err), NULL, "--port=12x", NULL), -EINVAL);
    ck_assert_str_eq(err, "--port: bad integer '12x'");
    ck_assert_int_eq(parse(err, sizeof(err), NULL, "--verbose=maybe", NULL), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "--verbose: bad bool 'maybe'"));
    ck_assert_int_eq(parse(err, sizeof(err), NULL, "--ratio", "lots", NULL), -EINVAL);
    ck_assert_str_eq(err, "--ratio: bad number 'lots'");
    ck_assert_int_eq(parse(err, sizeof(err), NULL, "--log-level", "loud", NULL), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "--log-level: bad log level 'loud'"));
    ck_assert_int_eq(parse(err, sizeof(err), NULL, "--max-body", "1XB", NULL), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "--max-body: bad size '1XB'"));

    setenv("DROVER_WAIT_MIN", "x", 1);
    ck_assert_int_eq(parse(err, sizeof(err), NULL, NULL), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "DROVER_WAIT_MIN: bad duration 'x'"));
    /* the flag wins, so the bad env value is never looked at */
    ck_assert_int_eq(parse(err, sizeof(err), NULL, "--wait-min", "1s", NULL), 0);
    ck_assert_int_eq(o.wait_ms, 1000);
    unsetenv("DROVER_WAIT_MIN");

    /* On error no allocated string is left behind. */
    ck_assert_int_eq(parse(err, sizeof(err), NULL, "--port", "0", NULL), -EINVAL);
    ck_assert_ptr_null(o.addr);
}
END_TEST

START_TEST(test_file_errors)
{
    char err[512], want[512];

    write_cfg("{\"consul-addr\": \"x\", \"consul_adr\": 1}");
    ck_assert_int_eq(parse(err, sizeof(err), NULL, "--config", cfgpath, NULL), -EINVAL);
    snprintf(want, sizeof(want), "%s: unknown key \"consul_adr\" (not an option of drover-test)",
             cfgpath);
    ck_assert_str_eq(err, want);

    write_cfg("{\"port\": \"80x\"}");
    ck_assert_int_eq(parse(err, sizeof(err), NULL, "--config", cfgpath, NULL), -EINVAL);
    snprintf(want, sizeof(want), "%s: key \"port\": bad integer '80x'", cfgpath);
    ck_assert_str_eq(err, want);

    write_cfg("{\"verbose\": 3}");
    ck_assert_int_eq(parse(err, sizeof(err), NULL, "--config", cfgpath, NULL), -EINVAL);
    snprintf(want, sizeof(want), "%s: key \"verbose\": expected bool, got integer", cfgpath);
    ck_assert_str_eq(err, want);

    write_cfg("{\"tag\": [\"a\", 2]}");
    ck_assert_int_eq(parse(err, sizeof(err), NULL, "--config", cfgpath, NULL), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "key \"tag\": item 1: expected string, got integer"));

    write_cfg("{\"port\": 80,\n \"port\": 81}");
    ck_assert_int_eq(parse(err, sizeof(err), NULL, "--config", cfgpath, NULL), -EINVAL);
    snprintf(want, sizeof(want), "config file: %s:2:", cfgpath);
    ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "%s", err);
    ck_assert_ptr_nonnull(strstr(err, "duplicate"));

    write_cfg("[1]");
    ck_assert_int_eq(parse(err, sizeof(err), NULL, "--config", cfgpath, NULL), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "expected a JSON object of options, got array"));

    unlink(cfgpath);
    ck_assert_int_eq(parse(err, sizeof(err), NULL, "--config", cfgpath, NULL), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "No such file"));
    ck_assert_ptr_nonnull(strstr(err, cfgpath));
}
END_TEST

START_TEST(test_help_lists_everything)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);

    config_print_help(&prog, mem);
    fclose(mem);
    static const char *const want[] = {
        "Usage: drover-test [OPTIONS] [render [--diff]]",
        "--consul-addr STRING",
        "default: 127.0.0.1:8500   env: DROVER_CONSUL_ADDR",
        "--port INT",
        "[integer 1..65535]",
        "default: 9100   env: DROVER_PORT",
        "--verbose[=BOOL]",
        "default: false   env: DROVER_VERBOSE",
        "--wait-min DURATION",
        "default: 200ms   env: DROVER_WAIT_MIN",
        "--ratio NUMBER",
        "default: 0.5   env: DROVER_RATIO",
        "--tag LIST (repeatable)",
        "default: a,b   env: DROVER_TAG",
        "--max-body SIZE",
        "default: 1MiB   env: DROVER_MAX_BODY",
        "--config FILE",
        "default: (none)   env: DROVER_CONFIG",
        "--log-level LEVEL",
        "default: info   env: DROVER_LOG_LEVEL",
        "-h, --help",
        "Consul HTTP address",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        ck_assert_msg(strstr(buf, want[i]), "help lacks '%s':\n%s", want[i], buf);
    free(buf);
}
END_TEST

START_TEST(test_help_flag_reports_shown)
{
    char err[256];
    /* stdout goes to /dev/null so the test output stays readable */
    ck_assert_ptr_nonnull(freopen("/dev/null", "w", stdout));
    ck_assert_int_eq(parse(err, sizeof(err), NULL, "--port", "5", "--help", NULL),
                     CONFIG_HELP_SHOWN);
    ck_assert_int_eq(parse(err, sizeof(err), NULL, "-h", NULL), CONFIG_HELP_SHOWN);
}
END_TEST

START_TEST(test_duration_parser)
{
    static const struct {
        const char *text;
        int64_t ms;
    } good[] = {
        {"0", 0},         {"0s", 0},
        {"200ms", 200},   {"2s", 2000},
        {"1m30s", 90000}, {"2h", 7200000},
        {"1.5s", 1500},   {"0.25m", 15000},
        {"1d", 86400000}, {"1h1m1s1ms", 3661001},
        {".5s", 500},     {"10ms5s", 5010},
    };
    static const char *const bad[] = {"",  "x",  "5",     "-1s", "1 s", "1sec",
                                      "s", "1.", "1..5s", "2hh", "1.5", "+1s"};
    int64_t ms;

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        ck_assert_msg(config_parse_duration_ms(good[i].text, &ms) == 0, "%s", good[i].text);
        ck_assert_msg(ms == good[i].ms, "%s -> %lld", good[i].text, (long long)ms);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(config_parse_duration_ms(bad[i], &ms) == -EINVAL, "'%s' accepted", bad[i]);
    ck_assert_int_eq(config_parse_duration_ms("99999999999999999999h", &ms), -ERANGE);
    ck_assert_int_eq(config_parse_duration_ms("9223372036854776s", &ms), -ERANGE);

    char buf[32];
    config_format_duration(90000, buf, sizeof(buf));
    ck_assert_str_eq(buf, "1m30s");
    config_format_duration(3661001, buf, sizeof(buf));
    ck_assert_str_eq(buf, "1h1m1s1ms");
    config_format_duration(0, buf, sizeof(buf));
    ck_assert_str_eq(buf, "0");
}
END_TEST

START_TEST(test_size_and_bool_parsers)
{
    uint64_t n;
    bool b;

    ck_assert_int_eq(config_parse_size("4096", &n), 0);
    ck_assert_uint_eq(n, 4096);
    ck_assert_int_eq(config_parse_size("64KiB", &n), 0);
    ck_assert_uint_eq(n, 65536);
    ck_assert_int_eq(config_parse_size("1kb", &n), 0);
    ck_assert_uint_eq(n, 1000);
    ck_assert_int_eq(config_parse_size("2G", &n), 0);
    ck_assert_uint_eq(n, 2147483648ULL);
    ck_assert_int_eq(config_parse_size("1x", &n), -EINVAL);
    ck_assert_int_eq(config_parse_size("", &n), -EINVAL);
    ck_assert_int_eq(config_parse_size("-1", &n), -EINVAL);
    ck_assert_int_eq(config_parse_size("99999999999TiB", &n), -ERANGE);
    ck_assert_int_eq(config_parse_bool("YES", &b), 0);
    ck_assert(b);
    ck_assert_int_eq(config_parse_bool("off", &b), 0);
    ck_assert(!b);
    ck_assert_int_eq(config_parse_bool("2", &b), -EINVAL);
}
END_TEST

START_TEST(test_env_name)
{
    char buf[64];
    config_env_name("consul-addr", buf, sizeof(buf));
    ck_assert_str_eq(buf, "DROVER_CONSUL_ADDR");
    config_env_name("wait-min", buf, 10);
    ck_assert_str_eq(buf, "DROVER_WA");
}
END_TEST

START_TEST(test_reserved_name_rejected)
{
    static char *s;
    static const struct config_option bad[] = {
        CONFIG_OPT_STRING("log-level", &s, NULL, "clash"),
        CONFIG_OPT_END,
    };
    static const struct config_program p = {.name = "x", .options = bad};
    char err[128];
    char *argv[] = {"x", NULL};

    ck_assert_int_eq(config_parse(&p, 1, argv, NULL, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "'log-level'"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_precedence_each_type);
    tcase_add_test(tc, test_bool_forms);
    tcase_add_test(tc, test_positional_and_double_dash);
    tcase_add_test(tc, test_errors_name_input);
    tcase_add_test(tc, test_file_errors);
    tcase_add_test(tc, test_help_lists_everything);
    tcase_add_test(tc, test_help_flag_reports_shown);
    tcase_add_test(tc, test_duration_parser);
    tcase_add_test(tc, test_size_and_bool_parsers);
    tcase_add_test(tc, test_env_name);
    tcase_add_test(tc, test_reserved_name_rejected);
    suite_add_tcase(s, tc);
    return suite_main_run(s);
}
