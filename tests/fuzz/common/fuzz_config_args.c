/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz command-line parsing of config_parse_command: the input is an
 * argument vector, words separated by newlines, against a program with an
 * option group (the Consul block), an alias, command words with their own
 * flags and a command that owns the rest of the line. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "consul_options.h"
#include "log.h"

static struct {
    struct consul_options consul;
    struct config_strlist clusters;
    int64_t wait_ms;
    bool json;
    bool diff;
    char *out;
} o;

static const struct config_option opts[] = {
    {.name = "kube-cluster",
     .alias = "cluster",
     .type = CONFIG_STRLIST,
     .target.list = &o.clusters},
    CONFIG_OPT_DURATION("wait-min", &o.wait_ms, "200ms", "wait"),
    CONFIG_OPT_BOOL("json", &o.json, "false", "json"),
    CONFIG_OPT_END,
};
static const struct config_group groups[] = {CONSUL_OPTION_GROUP(&o.consul), CONFIG_GROUP_END};
static const struct config_option render_opts[] = {
    CONFIG_OPT_BOOL("diff", &o.diff, "false", "diff"),
    CONFIG_OPT_STRING("out", &o.out, NULL, "out"),
    CONFIG_OPT_END,
};
static const struct config_command commands[] = {
    {.name = "run"},
    {.name = "render", .options = render_opts},
    {.name = "director", .own_args = true},
    CONFIG_COMMAND_END,
};
static const struct config_program prog = {
    .name = "fuzz", .options = opts, .groups = groups, .commands = commands};

#define MAX_WORDS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool init;
    char *argv[MAX_WORDS + 2], err[512];
    char *buf = malloc(size + 1);
    int argc = 0, cmd = -2, first = -1;

    if (!init) {
        log_set_stream(fopen("/dev/null", "w"));
        if (!freopen("/dev/null", "w", stdout)) /* --help and --version */
            abort();
        unsetenv("DROVER_CONFIG");
        init = true;
    }
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    argv[argc++] = "fuzz";
    for (char *p = buf, *nl; argc <= MAX_WORDS && p <= buf + size; p = nl + 1) {
        nl = strchr(p, '\n');
        if (!nl)
            nl = buf + size;
        *nl = '\0';
        argv[argc++] = p;
        if (nl == buf + size)
            break;
    }
    argv[argc] = NULL;
    int rc = config_parse_command(&prog, argc, argv, &cmd, &first, err, sizeof(err));
    if (rc != 0 && rc != CONFIG_HELP_SHOWN && rc != -EINVAL && rc != -ENOMEM)
        abort();
    if (rc < 0 && !err[0])
        abort(); /* every error is explained */
    if (rc == 0) {
        if (cmd < -1 || cmd > 2 || first < 1 || first > argc)
            abort();
        if (!o.consul.address || !o.consul.kv_prefix || o.wait_ms < 0)
            abort();
        if (cmd != 2 && first != argc)
            abort(); /* without own_args every word was consumed */
    }
    config_free(&prog);
    free(buf);
    return 0;
}
