/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config beyond one flat table: option groups (the Consul block), former
 * names (aliases), another tool's environment variable (env_alt), command
 * words with their own flags and help, --version; and the Consul block's
 * builder (consul_options_config).
 */
#include <check.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "config_fixture.h"
#include "consul_options.h"
#include "log.h"
#include "version.h"
#include "suite_main.h"

static struct {
    struct consul_options consul;
    struct config_strlist clusters;
    bool json;
} o;

static struct {
    bool diff;
    char *out;
} r;

static const struct config_option opts[] = {
    {.name = "kube-cluster",
     .alias = "cluster",
     .type = CONFIG_STRLIST,
     .target.list = &o.clusters,
     .help = "Kubernetes clusters"},
    CONFIG_OPT_BOOL("json", &o.json, "false", "JSON output"),
    CONFIG_OPT_END,
};

static const struct config_group groups[] = {
    CONSUL_OPTION_GROUP(&o.consul),
    CONFIG_GROUP_END,
};

static const struct config_option render_opts[] = {
    CONFIG_OPT_BOOL("diff", &r.diff, "false", "diff"),
    CONFIG_OPT_STRING("out", &r.out, NULL, "output directory"),
    CONFIG_OPT_END,
};

enum { CMD_RUN, CMD_STATUS, CMD_RENDER, CMD_DIRECTOR };
static const struct config_command commands[] = {
    [CMD_RUN] = {.name = "run", .summary = "run the daemon"},
    [CMD_STATUS] = {.name = "status", .args_usage = "[--json]", .summary = "show status"},
    [CMD_RENDER] = {.name = "render",
                    .args_usage = "--diff | --out DIR",
                    .summary = "render once",
                    .options = render_opts},
    [CMD_DIRECTOR] = {.name = "director", .summary = "hand over", .own_args = true},
    CONFIG_COMMAND_END,
};

static const struct config_program prog = {
    .name = "drover-test",
    .summary = "groups and commands",
    .options = opts,
    .groups = groups,
    .commands = commands,
};

static const char *const vars[] = {
    "DROVER_CONSUL_ADDR",     "CONSUL_HTTP_ADDR",
    "DROVER_CONSUL_CA_FILE",  "CONSUL_CACERT",
    "DROVER_KUBE_CLUSTER",    "DROVER_CLUSTER",
    "DROVER_CONFIG",          "DROVER_DIFF",
    "CONSUL_HTTP_SSL",        "CONSUL_HTTP_TOKEN",
    "CONSUL_HTTP_TOKEN_FILE", "DROVER_CONSUL_TOKEN_FILE",
    "CONSUL_TLS_SERVER_NAME", "DROVER_CONSUL_TLS_SERVER_NAME",
    "DROVER_KV_PREFIX",
};

static void setup(void)
{
    fixture_setup(vars, sizeof(vars) / sizeof(vars[0]));
    /* --help and --version write to stdout: keep the test output readable */
    ck_assert_ptr_nonnull(freopen("/dev/null", "w", stdout));
}

static void teardown(void)
{
    config_free(&prog);
    fixture_teardown();
    log_set_level(LOGL_INFO);
}

/* Parse a NULL-terminated argument vector; *cmd and *first get the
 * command and the first positional argument. */
static int parse(char *err, size_t errlen, int *cmd, int *first, ...)
{
    char *argv[32];
    va_list ap;
    va_start(ap, first);
    int argc = fixture_argv(argv, ap);
    va_end(ap);
    config_free(&prog);
    return config_parse_command(&prog, argc, argv, cmd, first, err, errlen);
}

static char *help_text(int cmd)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);

    config_print_command_help(&prog, cmd, mem);
    fclose(mem);
    return buf;
}

START_TEST(test_group_options_parse_and_show)
{
    char err[256];
    int cmd;

    ck_assert_int_eq(parse(err, sizeof(err), &cmd, NULL, "--consul-addr", "https://c:8501",
                           "--consul-tls-server-name", "consul.test", "--kv-prefix", "x/", NULL),
                     0);
    ck_assert_int_eq(cmd, -1);
    ck_assert_str_eq(o.consul.address, "https://c:8501");
    ck_assert_str_eq(o.consul.tls_server_name, "consul.test");
    ck_assert_str_eq(o.consul.kv_prefix, "x/");
    ck_assert_ptr_null(o.consul.ca_file);

    char *h = help_text(-1);
    static const char *const want[] = {
        "Usage: drover-test [OPTIONS] [COMMAND]",
        "Commands (`drover-test COMMAND --help` for one):",
        "  render       render once",
        "Consul options:",
        "--consul-addr URL",
        "default: http://127.0.0.1:8500   env: DROVER_CONSUL_ADDR, then CONSUL_HTTP_ADDR",
        "--consul-ca-file FILE",
        "env: DROVER_CONSUL_CA_FILE, then CONSUL_CACERT",
        "--consul-tls-server-name NAME",
        "env: DROVER_CONSUL_TLS_SERVER_NAME, then CONSUL_TLS_SERVER_NAME",
        "env: DROVER_CONSUL_TOKEN_FILE, then CONSUL_HTTP_TOKEN_FILE",
        "default: drover/v1/   env: DROVER_KV_PREFIX",
        "--kube-cluster LIST (repeatable)",
        "old name: --cluster (DROVER_CLUSTER)",
        "--version",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        ck_assert_msg(strstr(h, want[i]), "help lacks '%s':\n%s", want[i], h);
    ck_assert_ptr_null(strstr(h, "--diff")); /* render's own, not global */
    free(h);
}
END_TEST

START_TEST(test_env_alt_after_drover_variable)
{
    char err[256];

    write_cfg("{\"consul-addr\": \"http://from-file:8500\"}");
    setenv("DROVER_CONFIG", cfgpath, 1);
    ck_assert_int_eq(parse(err, sizeof(err), NULL, NULL, NULL), 0);
    ck_assert_str_eq(o.consul.address, "http://from-file:8500");
    /* Consul's own variable is environment: above the file */
    setenv("CONSUL_HTTP_ADDR", "http://consul-env:8500", 1);
    ck_assert_int_eq(parse(err, sizeof(err), NULL, NULL, NULL), 0);
    ck_assert_str_eq(o.consul.address, "http://consul-env:8500");
    /* drover's own variable first */
    setenv("DROVER_CONSUL_ADDR", "http://drover-env:8500", 1);
    ck_assert_int_eq(parse(err, sizeof(err), NULL, NULL, NULL), 0);
    ck_assert_str_eq(o.consul.address, "http://drover-env:8500");
    /* the flag above all */
    ck_assert_int_eq(parse(err, sizeof(err), NULL, NULL, "--consul-addr", "http://flag:1", NULL),
                     0);
    ck_assert_str_eq(o.consul.address, "http://flag:1");
    setenv("CONSUL_CACERT", "/etc/consul/ca.pem", 1);
    ck_assert_int_eq(parse(err, sizeof(err), NULL, NULL, NULL), 0);
    ck_assert_str_eq(o.consul.ca_file, "/etc/consul/ca.pem");
}
END_TEST

START_TEST(test_alias_everywhere)
{
    char err[256];

    ck_assert_int_eq(
        parse(err, sizeof(err), NULL, NULL, "--cluster", "a", "--kube-cluster", "b", NULL), 0);
    ck_assert_uint_eq(o.clusters.count, 2);
    ck_assert_str_eq(o.clusters.items[0], "a");
    ck_assert_str_eq(o.clusters.items[1], "b");
    setenv("DROVER_CLUSTER", "old", 1);
    ck_assert_int_eq(parse(err, sizeof(err), NULL, NULL, NULL), 0);
    ck_assert_str_eq(o.clusters.items[0], "old");
    setenv("DROVER_KUBE_CLUSTER", "new", 1); /* the current name wins */
    ck_assert_int_eq(parse(err, sizeof(err), NULL, NULL, NULL), 0);
    ck_assert_str_eq(o.clusters.items[0], "new");
    unsetenv("DROVER_CLUSTER");
    unsetenv("DROVER_KUBE_CLUSTER");
    write_cfg("{\"cluster\": [\"f\"]}");
    setenv("DROVER_CONFIG", cfgpath, 1);
    ck_assert_int_eq(parse(err, sizeof(err), NULL, NULL, NULL), 0);
    ck_assert_str_eq(o.clusters.items[0], "f");
    write_cfg("{\"cluster\": [\"f\"], \"kube-cluster\": \"g\"}");
    ck_assert_int_eq(parse(err, sizeof(err), NULL, NULL, NULL), -EINVAL);
    ck_assert_msg(strstr(err, "keys \"kube-cluster\" and \"cluster\" are the same option"), "%s",
                  err);
}
END_TEST

START_TEST(test_options_before_and_after_command)
{
    char err[256];
    int cmd, first;

    /* the bug of `drover-watcher director --director-cluster d1 status` */
    ck_assert_int_eq(
        parse(err, sizeof(err), &cmd, &first, "--kube-cluster", "d1", "status", "--json", NULL), 0);
    ck_assert_int_eq(cmd, CMD_STATUS);
    ck_assert(o.json);
    ck_assert_str_eq(o.clusters.items[0], "d1");
    ck_assert_int_eq(parse(err, sizeof(err), &cmd, &first, NULL), 0);
    ck_assert_int_eq(cmd, -1);
    ck_assert_int_eq(parse(err, sizeof(err), &cmd, &first, "status", "extra", NULL), -EINVAL);
    ck_assert_msg(strstr(err, "unexpected argument 'extra' after 'status'"), "%s", err);
    ck_assert_int_eq(parse(err, sizeof(err), &cmd, &first, "stauts", NULL), -EINVAL);
    ck_assert_msg(strstr(err, "unknown command 'stauts' (run, status, render, director)"), "%s",
                  err);
    ck_assert_int_eq(parse(err, sizeof(err), &cmd, &first, "--", "x", NULL), -EINVAL);
}
END_TEST

START_TEST(test_command_own_flags)
{
    char err[256];
    int cmd;

    setenv("DROVER_DIFF", "true", 1); /* flags only: no environment */
    ck_assert_int_eq(parse(err, sizeof(err), &cmd, NULL, "render", "--out", "/tmp/x", NULL), 0);
    ck_assert_int_eq(cmd, CMD_RENDER);
    ck_assert(!r.diff);
    ck_assert_str_eq(r.out, "/tmp/x");
    ck_assert_int_eq(parse(err, sizeof(err), &cmd, NULL, "render", "--diff", "--json", NULL), 0);
    ck_assert(r.diff && o.json);
    ck_assert_ptr_null(r.out);
    ck_assert_int_eq(parse(err, sizeof(err), &cmd, NULL, "--diff", "render", NULL), -EINVAL);
    ck_assert_msg(strstr(err, "option '--diff' belongs to 'render' and goes after it"), "%s", err);
    ck_assert_int_eq(parse(err, sizeof(err), &cmd, NULL, "status", "--diff", NULL), -EINVAL);
    /* a config file cannot set a command's flag */
    write_cfg("{\"diff\": true}");
    setenv("DROVER_CONFIG", cfgpath, 1);
    ck_assert_int_eq(parse(err, sizeof(err), &cmd, NULL, "render", NULL), -EINVAL);
    ck_assert_msg(strstr(err, "unknown key \"diff\""), "%s", err);
}
END_TEST

START_TEST(test_own_args_command)
{
    char err[256];
    int cmd, first;

    ck_assert_int_eq(
        parse(err, sizeof(err), &cmd, &first, "--json", "director", "--whatever", "run", NULL), 0);
    ck_assert_int_eq(cmd, CMD_DIRECTOR);
    ck_assert_int_eq(first, 3); /* argv[3] = "--whatever", the command's */
}
END_TEST

START_TEST(test_command_help_and_version)
{
    char err[256];
    int cmd;

    ck_assert_int_eq(parse(err, sizeof(err), &cmd, NULL, "render", "--help", NULL),
                     CONFIG_HELP_SHOWN);
    ck_assert_int_eq(cmd, CMD_RENDER);
    ck_assert_int_eq(parse(err, sizeof(err), &cmd, NULL, "--version", NULL), CONFIG_HELP_SHOWN);
    char *h = help_text(CMD_RENDER);
    static const char *const want[] = {
        "Usage: drover-test [OPTIONS] render --diff | --out DIR",
        "render once",
        "Options of 'render' (after the word; flags only):",
        "--diff[=BOOL]",
        "--out STRING",
        "Consul options:",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        ck_assert_msg(strstr(h, want[i]), "render help lacks '%s':\n%s", want[i], h);
    ck_assert_ptr_null(strstr(h, "Commands"));
    free(h);

    char *buf = NULL, want_v[128];
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    drover_version_print("drover-test", mem);
    fclose(mem);
    snprintf(want_v, sizeof(want_v), "drover-test %s", drover_version());
    ck_assert_msg(strncmp(buf, want_v, strlen(want_v)) == 0, "%s", buf);
    ck_assert(*drover_version() >= '0' && *drover_version() <= '9');
    free(buf);
}
END_TEST

START_TEST(test_consul_options_config)
{
    char err[256];
    struct consul_config cc;

    ck_assert_int_eq(parse(err, sizeof(err), NULL, NULL, "--consul-addr", "10.0.0.5:8500",
                           "--kv-prefix", "drover/v2", "--consul-ca-file", "", NULL),
                     0);
    memset(&cc, 0, sizeof(cc));
    ck_assert_int_eq(consul_options_config(&o.consul, &cc, err, sizeof(err)), 0);
    ck_assert_str_eq(cc.address, "http://10.0.0.5:8500");
    ck_assert_str_eq(o.consul.kv_prefix, "drover/v2/");
    ck_assert_ptr_null(cc.ca_file); /* empty = none */
    ck_assert_ptr_null(cc.token_file);
    ck_assert_ptr_null(cc.token);
    ck_assert_uint_eq(cc.max_stale_ms, 2000); /* stale reads bounded by 2 s by default */
    ck_assert_int_eq(parse(err, sizeof(err), NULL, NULL, "--consul-max-stale", "0", NULL), 0);
    ck_assert_int_eq(consul_options_config(&o.consul, &cc, err, sizeof(err)), 0);
    ck_assert_uint_eq(cc.max_stale_ms, 0); /* leader reads only */
    ck_assert_int_eq(parse(err, sizeof(err), NULL, NULL, "--consul-max-stale", "11m", NULL), 0);
    ck_assert_int_eq(consul_options_config(&o.consul, &cc, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "--consul-max-stale"));

    /* Consul's CLI: HOST:PORT plus CONSUL_HTTP_SSL=true is https */
    setenv("CONSUL_HTTP_SSL", "true", 1);
    setenv("CONSUL_HTTP_ADDR", "consul.test:8501", 1);
    setenv("CONSUL_HTTP_TOKEN", "s3cret", 1);
    ck_assert_int_eq(parse(err, sizeof(err), NULL, NULL, NULL), 0);
    ck_assert_int_eq(consul_options_config(&o.consul, &cc, err, sizeof(err)), 0);
    ck_assert_str_eq(cc.address, "https://consul.test:8501");
    ck_assert_str_eq(cc.token, "s3cret");
    /* a token file wins over the token, as in Consul */
    setenv("CONSUL_HTTP_TOKEN_FILE", "/run/consul.token", 1);
    ck_assert_int_eq(parse(err, sizeof(err), NULL, NULL, NULL), 0);
    ck_assert_int_eq(consul_options_config(&o.consul, &cc, err, sizeof(err)), 0);
    ck_assert_str_eq(cc.token_file, "/run/consul.token");
    ck_assert_ptr_null(cc.token);

    setenv("CONSUL_HTTP_SSL", "maybe", 1);
    ck_assert_int_eq(parse(err, sizeof(err), NULL, NULL, NULL), 0);
    ck_assert_int_eq(consul_options_config(&o.consul, &cc, err, sizeof(err)), -EINVAL);
    ck_assert_msg(strstr(err, "CONSUL_HTTP_SSL"), "%s", err);
    unsetenv("CONSUL_HTTP_SSL");
    ck_assert_int_eq(
        parse(err, sizeof(err), NULL, NULL, "--consul-addr", "unix:///run/c.sock", NULL), 0);
    ck_assert_int_eq(consul_options_config(&o.consul, &cc, err, sizeof(err)), -EINVAL);
    ck_assert_msg(strstr(err, "unix sockets are not supported"), "%s", err);
    ck_assert_int_eq(parse(err, sizeof(err), NULL, NULL, "--kv-prefix", "/abs", NULL), 0);
    ck_assert_int_eq(consul_options_config(&o.consul, &cc, err, sizeof(err)), -EINVAL);
    ck_assert_msg(strstr(err, "--kv-prefix '/abs' must not start with '/'"), "%s", err);
}
END_TEST

/* An alias clashing with a group's option (the group macro works at file
 * scope only: its option table is a compound literal). */
static char *clash_s;
static const struct config_option clash[] = {
    {.name = "kv-root", .alias = "kv-prefix", .type = CONFIG_STRING, .target.str = &clash_s},
    CONFIG_OPT_END,
};
static struct consul_options clash_c;
static const struct config_group clash_g[] = {CONSUL_OPTION_GROUP(&clash_c), CONFIG_GROUP_END};

START_TEST(test_clashing_names_rejected)
{
    static char *s;
    static const struct config_program p = {.name = "x", .options = clash, .groups = clash_g};
    static const struct config_option vers[] = {
        CONFIG_OPT_BOOL("version", (bool *)&s, "false", "clash"),
        CONFIG_OPT_END,
    };
    static const struct config_program pv = {.name = "x", .options = vers};
    char err[128];
    char *argv[] = {"x", NULL};

    ck_assert_int_eq(config_parse(&p, 1, argv, NULL, err, sizeof(err)), -EINVAL);
    ck_assert_msg(strstr(err, "defined twice"), "%s", err);
    ck_assert_int_eq(config_parse(&pv, 1, argv, NULL, err, sizeof(err)), -EINVAL);
    ck_assert_msg(strstr(err, "reserved"), "%s", err);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("config_groups");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_group_options_parse_and_show);
    tcase_add_test(tc, test_env_alt_after_drover_variable);
    tcase_add_test(tc, test_alias_everywhere);
    tcase_add_test(tc, test_options_before_and_after_command);
    tcase_add_test(tc, test_command_own_flags);
    tcase_add_test(tc, test_own_args_command);
    tcase_add_test(tc, test_command_help_and_version);
    tcase_add_test(tc, test_consul_options_config);
    tcase_add_test(tc, test_clashing_names_rejected);
    suite_add_tcase(s, tc);
    return suite_main_run(s);
}
