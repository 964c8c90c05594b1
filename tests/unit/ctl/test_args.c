/* SPDX-License-Identifier: Apache-2.0 */
/* droverctl command language: word splitting, parsing, input refusals. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_args.h"
#include "../common/suite_main.h"

static char **split(const char *text, int *n)
{
    char **w = NULL;
    char err[256];
    ck_assert_int_eq(ctl_split_words(text, strlen(text), &w, n, err, sizeof(err)), 0);
    return w;
}

START_TEST(test_split_quotes)
{
    int n;
    char **w = split("  drain node-a --reason \"disk swap\" --ttl=2h  ", &n);
    ck_assert_int_eq(n, 5);
    ck_assert_str_eq(w[0], "drain");
    ck_assert_str_eq(w[3], "disk swap");
    ck_assert_str_eq(w[4], "--ttl=2h");
    ck_assert_ptr_null(w[5]);
    ctl_words_free(w);

    w = split("a'b c'\"d\\\"e\\\\\"f\\ g 'it\\s' \"\"", &n);
    ck_assert_int_eq(n, 3);
    ck_assert_str_eq(w[0], "ab cd\"e\\f g");
    ck_assert_str_eq(w[1], "it\\s");
    ck_assert_str_eq(w[2], ""); /* an empty quoted word is a word */
    ctl_words_free(w);

    /* Slack's typographic quotes */
    w = split("drain node-a --reason \xe2\x80\x9c"
              "disk swap\xe2\x80\x9d x\xe2\x80\x98y z\xe2\x80\x99",
              &n);
    ck_assert_int_eq(n, 5);
    ck_assert_str_eq(w[3], "disk swap");
    ck_assert_str_eq(w[4], "xy z");
    ctl_words_free(w);

    w = split(" \t\n", &n);
    ck_assert_int_eq(n, 0);
    ck_assert_ptr_null(w[0]);
    ctl_words_free(w);
}
END_TEST

START_TEST(test_split_errors)
{
    char **w;
    int n;
    char err[256];

    ck_assert_int_eq(ctl_split_words("drain 'x", 8, &w, &n, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "unterminated single quote"));
    ck_assert_int_eq(ctl_split_words("drain \"x", 8, &w, &n, err, sizeof(err)), -EINVAL);
    ck_assert_int_eq(ctl_split_words("a\0b", 3, &w, &n, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_null(w);
    char many[400] = "";
    for (int i = 0; i < CTL_MAX_WORDS + 1; i++)
        strcat(many, "x ");
    ck_assert_int_eq(ctl_split_words(many, strlen(many), &w, &n, err, sizeof(err)), -EINVAL);
    ck_assert_int_eq(ctl_split_words(many, 2 * CTL_MAX_WORDS, &w, &n, err, sizeof(err)), 0);
    ck_assert_int_eq(n, CTL_MAX_WORDS);
    ctl_words_free(w);
}
END_TEST

static int parse(const char *text, enum ctl_source src, struct ctl_command *cmd, char *err)
{
    char **w;
    int n;
    struct ctl_limits lim = {.max_ttl_ms = 7LL * 86400 * 1000};
    ck_assert_int_eq(ctl_split_words(text, strlen(text), &w, &n, err, 256), 0);
    int rc = ctl_command_parse(n, w, src, &lim, cmd, err, 256);
    ctl_words_free(w);
    return rc;
}

START_TEST(test_parse_commands)
{
    struct ctl_command c;
    char err[256];

    ck_assert_int_eq(parse("drain node-a --reason 'disk swap' --ttl 2h --author bob --force",
                           CTL_SOURCE_CLI, &c, err),
                     0);
    ck_assert_int_eq(c.verb, CTL_VERB_DRAIN);
    ck_assert_str_eq(c.target, "node-a");
    ck_assert_str_eq(c.reason, "disk swap");
    ck_assert_int_eq(c.ttl_ms, 7200000);
    ck_assert_str_eq(c.author, "bob");
    ck_assert(c.force);
    ck_assert_int_eq(c.weight, -1);
    ctl_command_free(&c);

    ck_assert_int_eq(parse("weight be_web/static-1 50%", CTL_SOURCE_SLACK, &c, err), 0);
    ck_assert_int_eq(c.weight, 50);
    ck_assert_int_eq(c.source, CTL_SOURCE_SLACK);
    ctl_command_free(&c);
    ck_assert_int_eq(parse("weight 10.0.0.1 256", CTL_SOURCE_CLI, &c, err), 0);
    ck_assert_int_eq(c.weight, 256);
    ctl_command_free(&c);
    ck_assert_int_eq(parse("weight x 0%", CTL_SOURCE_CLI, &c, err), 0);
    ck_assert_int_eq(c.weight, 0);
    ctl_command_free(&c);

    ck_assert_int_eq(parse("director drain proxy-3 --force", CTL_SOURCE_CLI, &c, err), 0);
    ck_assert_int_eq(c.verb, CTL_VERB_DIRECTOR);
    ck_assert_int_eq(c.dir_action, CTL_DIR_DRAIN);
    ck_assert_str_eq(c.target, "proxy-3");
    ctl_command_free(&c);

    ck_assert_int_eq(parse("host drain dir-1 --reason upgrade --wait 1m", CTL_SOURCE_CLI, &c, err),
                     0);
    ck_assert_int_eq(c.verb, CTL_VERB_HOST);
    ck_assert(!c.host_undrain);
    ck_assert_str_eq(c.target, "dir-1");
    ck_assert_int_eq(c.wait_ms, 60000);
    ctl_command_free(&c);
    ck_assert_int_eq(parse("host undrain dir-1", CTL_SOURCE_SLACK, &c, err), 0);
    ck_assert(c.host_undrain);
    ck_assert_int_eq(c.wait_ms, 0);
    ctl_command_free(&c);

    ck_assert_int_eq(
        parse("kv-loss force edge --ttl 30m --reason restored", CTL_SOURCE_SLACK, &c, err), 0);
    ck_assert_int_eq(c.verb, CTL_VERB_KV_LOSS);
    ck_assert_str_eq(c.target, "edge");
    ck_assert_int_eq(c.ttl_ms, 30 * 60000);
    ctl_command_free(&c);
    /* the force needs an end, is the force itself, and has one action */
    ck_assert_int_eq(parse("kv-loss force edge", CTL_SOURCE_CLI, &c, err), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "--ttl"));
    ctl_command_free(&c);
    ck_assert_int_eq(parse("kv-loss force edge --ttl 1h --force", CTL_SOURCE_CLI, &c, err),
                     -EINVAL);
    ctl_command_free(&c);
    ck_assert_int_eq(parse("kv-loss end edge --ttl 1h", CTL_SOURCE_CLI, &c, err), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "unknown action"));
    ctl_command_free(&c);

    ck_assert_int_eq(parse("status --json", CTL_SOURCE_CLI, &c, err), 0);
    ck_assert(c.json);
    ck_assert_ptr_null(c.target);
    ctl_command_free(&c);
    ck_assert_int_eq(parse("history --limit=5", CTL_SOURCE_CLI, &c, err), 0);
    ck_assert_int_eq(c.limit, 5);
    ctl_command_free(&c);
    ck_assert_int_eq(parse("history", CTL_SOURCE_CLI, &c, err), 0);
    ck_assert_int_eq(c.limit, CTL_HISTORY_DEFAULT);
    ctl_command_free(&c);
}
END_TEST

struct refusal {
    const char *text;
    enum ctl_source src;
    const char *why; /* substring of the message */
};

START_TEST(test_refusals)
{
    static const struct refusal cases[] = {
        {"", CTL_SOURCE_CLI, "no command"},
        {"explode node-a", CTL_SOURCE_CLI, "unknown command 'explode'"},
        {"drain", CTL_SOURCE_CLI, "usage: drain TARGET"},
        {"drain a b", CTL_SOURCE_CLI, "usage: drain TARGET"},
        {"weight a", CTL_SOURCE_CLI, "usage: weight TARGET N%"},
        {"weight a 257%", CTL_SOURCE_CLI, "outside 0..256"},
        {"weight a -1%", CTL_SOURCE_CLI, "not a percentage"},
        {"weight a 5x", CTL_SOURCE_CLI, "not a percentage"},
        {"weight a 99999999999999999999", CTL_SOURCE_CLI, "not a percentage"},
        {"drain a --ttl 8d", CTL_SOURCE_CLI, "longer than the maximum 168h"},
        {"drain a --ttl 0", CTL_SOURCE_CLI, "not a positive duration"},
        {"drain a --ttl soon", CTL_SOURCE_CLI, "not a positive duration"},
        {"undrain a --ttl 1h", CTL_SOURCE_CLI, "unknown option '--ttl'"},
        {"drain a --consul-addr x", CTL_SOURCE_CLI, "go before the command"},
        {"drain a --reason", CTL_SOURCE_CLI, "needs a value"},
        {"drain a --reason 'bad\nline'", CTL_SOURCE_CLI, "control character 0x0a"},
        {"drain a --reason \"tab\there\"", CTL_SOURCE_CLI, "control character 0x09"},
        {"drain a --reason \xff", CTL_SOURCE_CLI, "not valid UTF-8"},
        {"drain a --author eve", CTL_SOURCE_SLACK, "cannot be set from Slack"},
        {"drain a --author 'two words'", CTL_SOURCE_CLI, "without blanks"},
        {"status --force", CTL_SOURCE_CLI, "unknown option '--force'"},
        {"status a b", CTL_SOURCE_CLI, "usage: status"},
        {"history --limit 0", CTL_SOURCE_CLI, "1..10000"},
        {"director explode p", CTL_SOURCE_CLI, "unknown action 'explode'"},
        {"director fill", CTL_SOURCE_CLI, "usage: director"},
        {"drain a -- b", CTL_SOURCE_CLI, "'--' is not supported"},
        {"host reboot dir-1", CTL_SOURCE_CLI, "unknown action 'reboot'"},
        {"host drain", CTL_SOURCE_CLI, "usage: host drain|undrain HOST"},
        {"host drain d --wait 2h", CTL_SOURCE_CLI, "up to 1h"},
        {"host drain d --wait 10s", CTL_SOURCE_SLACK, "command line only"},
        {"drain a --wait 10s", CTL_SOURCE_CLI, "unknown option '--wait'"},
        {"config", CTL_SOURCE_CLI, "usage: config apply|promote"},
        {"config deploy", CTL_SOURCE_CLI, "unknown action 'deploy'"},
        {"config check a.json", CTL_SOURCE_SLACK, "run from the command line"},
        {"config apply --canary h", CTL_SOURCE_CLI, "usage: config apply FILE..."},
        {"config apply a.json", CTL_SOURCE_CLI, "--canary HOST[,HOST] is required"},
        {"config apply a.json --canary ,", CTL_SOURCE_CLI, "no host named"},
        {"config apply a.json --canary a/b", CTL_SOURCE_CLI, "'a/b' is not a host name"},
        {"config apply a.json --canary h --now", CTL_SOURCE_CLI, "--now for rollback"},
        {"config promote --canary h", CTL_SOURCE_CLI, "--canary is for apply and rollback"},
        {"config promote x", CTL_SOURCE_CLI, "usage: config promote (got 1 argument)"},
        {"config rollback", CTL_SOURCE_CLI, "usage: config rollback VERSION"},
        {"config rollback 0 --now", CTL_SOURCE_CLI, "'0' is not a version number"},
        {"config rollback -3 --now", CTL_SOURCE_CLI, "not a version number"},
        {"config rollback 12345678901 --now", CTL_SOURCE_CLI, "not a version number"},
        {"config rollback 3", CTL_SOURCE_CLI, "(or --now to skip the canary)"},
        {"config rollback 3 --now --wait 5s", CTL_SOURCE_CLI, "--wait is for a change with"},
        {"config apply a.json --canary h --wait 5s", CTL_SOURCE_SLACK, "command line only"},
        {"config apply a.json --canary h --soak 5s", CTL_SOURCE_SLACK, "command line only"},
        {"config apply a.json --canary h --soak 2h", CTL_SOURCE_CLI, "--soak '2h' is not a"},
        {"config rollback 3 --now --soak 5s", CTL_SOURCE_CLI, "--soak is for a change with"},
        {"drain a --soak 5s", CTL_SOURCE_CLI, "unknown option '--soak'"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ctl_command c;
        char err[256] = "";
        int rc = parse(cases[i].text, cases[i].src, &c, err);
        ck_assert_msg(rc == -EINVAL, "'%s' was accepted", cases[i].text);
        ck_assert_msg(strstr(err, cases[i].why), "'%s': message '%s' lacks '%s'", cases[i].text,
                      err, cases[i].why);
        ctl_command_free(&c);
    }
}
END_TEST

START_TEST(test_parse_config)
{
    struct ctl_command c;
    char err[256] = "";
    ck_assert_int_eq(
        parse("config apply a.json b.json --canary p1,p2 --reason r", CTL_SOURCE_CLI, &c, err), 0);
    ck_assert_int_eq(c.verb, CTL_VERB_CONFIG);
    ck_assert_int_eq(c.config_action, CTL_CONFIG_APPLY);
    ck_assert_uint_eq(c.n_files, 2);
    ck_assert_str_eq(c.files[1], "b.json");
    ck_assert_uint_eq(c.n_canary, 2);
    ck_assert_str_eq(c.canary[0], "p1");
    ck_assert_str_eq(c.canary[1], "p2");
    ck_assert_int_eq(c.wait_ms, CTL_CONFIG_WAIT_DEFAULT_MS); /* watched by default */
    ctl_command_free(&c);
    ck_assert_int_eq(parse("config apply a.json --canary p1 --wait 0", CTL_SOURCE_CLI, &c, err), 0);
    ck_assert_int_eq(c.wait_ms, 0); /* --wait 0: not watched */
    ck_assert_int_eq(c.soak_ms, 0); /* no soak unless asked */
    ctl_command_free(&c);
    ck_assert_int_eq(parse("config apply a.json --canary p1 --soak 90s", CTL_SOURCE_CLI, &c, err),
                     0);
    ck_assert_int_eq(c.soak_ms, 90000);
    ck_assert_int_eq(c.wait_ms, CTL_CONFIG_WAIT_DEFAULT_MS);
    ctl_command_free(&c);
    /* from Slack: never watched (Slack waits 3 s for an answer) */
    ck_assert_int_eq(parse("config apply a.json --canary p1", CTL_SOURCE_SLACK, &c, err), 0);
    ck_assert_int_eq(c.wait_ms, 0);
    ctl_command_free(&c);
    ck_assert_int_eq(parse("config rollback 7 --now", CTL_SOURCE_CLI, &c, err), 0);
    ck_assert_int_eq(c.config_action, CTL_CONFIG_ROLLBACK);
    ck_assert_uint_eq(c.version, 7);
    ck_assert(c.now);
    ctl_command_free(&c);
    ck_assert_int_eq(parse("config history --limit 3", CTL_SOURCE_CLI, &c, err), 0);
    ck_assert_int_eq(c.config_action, CTL_CONFIG_HISTORY);
    ck_assert_int_eq(c.limit, 3);
    ctl_command_free(&c);
}
END_TEST

START_TEST(test_reason_limits)
{
    char err[256], r[200];

    memset(r, 'x', CTL_REASON_MAX);
    r[CTL_REASON_MAX] = '\0';
    ck_assert_int_eq(ctl_reason_check(r, err, sizeof(err)), 0);
    r[CTL_REASON_MAX] = 'x';
    r[CTL_REASON_MAX + 1] = '\0';
    ck_assert_int_eq(ctl_reason_check(r, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "128 bytes long, at most 127"));
    ck_assert_int_eq(ctl_reason_check("Plattentausch \xc3\xa4 \xe2\x9c\x93", err, sizeof(err)), 0);
    ck_assert_int_eq(ctl_reason_check("del\x7f", err, sizeof(err)), -EINVAL);
    ck_assert_int_eq(ctl_reason_check("c1 \xc2\x85", err, sizeof(err)), -EINVAL); /* NEL */
    ck_assert_int_eq(ctl_reason_check("overlong \xc0\xaf", err, sizeof(err)), -EINVAL);
    ck_assert_int_eq(ctl_reason_check("surrogate \xed\xa0\x80", err, sizeof(err)), -EINVAL);
    ck_assert_int_eq(ctl_reason_check("cut \xe2\x9c", err, sizeof(err)), -EINVAL);
}
END_TEST

/* `drain --help` is a request for help, never a drain of a target "-h",
 * and the help is that command's */
START_TEST(test_help_after_verb)
{
    static const struct {
        const char *line;
        enum ctl_verb about;
        const char *shows, *not_shows;
    } cases[] = {
        {"drain --help", CTL_VERB_DRAIN, "drain|maint TARGET", "history"},
        {"drain -h", CTL_VERB_DRAIN, "TARGET: node/", "weight"},
        {"weight node-a -h", CTL_VERB_WEIGHT, "weight TARGET N%", "drain|maint"},
        {"director fill --help", CTL_VERB_DIRECTOR, "director fill|activate", "TARGET:"},
        {"status --json --help", CTL_VERB_STATUS, "status [TARGET] [--json]", "--ttl"},
        {"drain node-a --reason 'r' --help", CTL_VERB_DRAIN, "--reason TEXT", "status"},
        {"history --help", CTL_VERB_HISTORY, "history [--limit N]", "drain"},
        {"help", CTL_VERB_HELP, "history [--limit N]", NULL},
    };
    struct ctl_command c;
    char err[256];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *line = cases[i].line;
        ck_assert_msg(parse(line, CTL_SOURCE_CLI, &c, err) == 0, "%s: %s", line, err);
        ck_assert_msg(c.verb == CTL_VERB_HELP, "%s: verb %d", line, (int)c.verb);
        ck_assert_msg(c.help_verb == cases[i].about, "%s: help about %d", line, (int)c.help_verb);
        const char *u = ctl_usage_of(c.help_verb);
        ck_assert_msg(strstr(u, cases[i].shows), "%s: usage lacks '%s':\n%s", line, cases[i].shows,
                      u);
        ck_assert_msg(!cases[i].not_shows || !strstr(u, cases[i].not_shows),
                      "%s: usage has '%s':\n%s", line, cases[i].not_shows, u);
        ctl_command_free(&c);
    }
    ck_assert_str_eq(ctl_usage_of(CTL_VERB_HELP), ctl_usage());
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ctl_args");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_split_quotes);
    tcase_add_test(tc, test_split_errors);
    tcase_add_test(tc, test_parse_commands);
    tcase_add_test(tc, test_refusals);
    tcase_add_test(tc, test_parse_config);
    tcase_add_test(tc, test_reason_limits);
    tcase_add_test(tc, test_help_after_verb);
    suite_add_tcase(s, tc);
    return suite_main_run(s);
}
