/* SPDX-License-Identifier: Apache-2.0 */
/*
 * droverctl: drain, maintenance, weight and director state changes through
 * Consul KV, from the command line or (droverctl serve) from Slack. This
 * file reads options, builds the command with ctl_args and runs it with
 * ctl_execute; `serve` wires the Slack endpoint to the same code.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "commands.h"
#include "config.h"
#include "config_check.h"
#include "consul_options.h"
#include "ctl_args.h"
#include "daemon.h"
#include "kv_frontdoor.h"
#include "log.h"
#include "metrics.h"
#include "serve.h"

struct options {
    struct consul_options consul;
    struct config_strlist cluster;
    char *haproxy_cluster;
    char *director_cluster;
    char *author;
    int64_t max_ttl_ms;
    double max_out_share;
    bool json;
    char *listen;
    char *secret_file;
    struct config_strlist allow_users;
    struct config_strlist allow_channels;
    char *template_dir, *haproxy_bin;
    char *config_dir;
};

#ifndef DROVER_TEMPLATE_DIR
#define DROVER_TEMPLATE_DIR "/usr/local/share/drover/haproxy-templates"
#endif

static struct options opt;

static const struct config_option options[] = {
    {.name = "kube-cluster",
     .alias = "cluster",
     .type = CONFIG_STRLIST,
     .target.list = &opt.cluster,
     .metavar = "NAME",
     .help = "Kubernetes cluster bare node names are looked up in (repeatable; none = all)"},
    CONFIG_OPT_STRING("haproxy-cluster", &opt.haproxy_cluster, NULL,
                      "proxy-fleet cluster whose haproxy/<cluster>/services define backends "
                      "(none = all)"),
    CONFIG_OPT_STRING("director-cluster", &opt.director_cluster, NULL,
                      "cluster of director/<cluster>/proxies/ for `director` commands"),
    CONFIG_OPT_STRING(
        "author", &opt.author, NULL,
        "author recorded in entries and the audit trail (default $SUDO_USER or $USER)"),
    CONFIG_OPT_DURATION("max-ttl", &opt.max_ttl_ms, "7d", "longest --ttl accepted"),
    CONFIG_OPT_DOUBLE("max-out-share", &opt.max_out_share, "0.5",
                      "refuse a change leaving more than this share of a backend's servers out "
                      "of service (0..1), unless --force"),
    CONFIG_OPT_BOOL("json", &opt.json, "false", "print JSON instead of text"),
    CONFIG_OPT_STRING("listen", &opt.listen, "127.0.0.1:8088",
                      "serve: HTTP address for Slack (POST /slack/command, /metrics, /healthz)"),
    CONFIG_OPT_STRING("slack-signing-secret-file", &opt.secret_file, NULL,
                      "serve: file holding the Slack app's signing secret"),
    CONFIG_OPT_STRLIST("allow-users", &opt.allow_users, NULL,
                       "serve: Slack user IDs allowed to run commands (\"*\" = all)"),
    CONFIG_OPT_STRLIST("allow-channels", &opt.allow_channels, NULL,
                       "serve: Slack channel IDs commands are accepted from (\"*\" = all)"),
    CONFIG_OPT_STRING("template-dir", &opt.template_dir, DROVER_TEMPLATE_DIR,
                      "config check: the watcher's templates (NAME.mustache, partials/)"),
    CONFIG_OPT_STRING("haproxy-bin", &opt.haproxy_bin, "haproxy",
                      "config check: haproxy binary for `haproxy -c` (skipped when not found)"),
    CONFIG_OPT_STRING("config-dir", &opt.config_dir, NULL,
                      "serve: directory of the config files `config apply NAME` names from Slack "
                      "(none: apply from Slack refused)"),
    CONFIG_OPT_END,
};

static const struct config_group groups[] = {
    CONSUL_OPTION_GROUP(&opt.consul),
    CONFIG_GROUP_END,
};

static const struct config_program program = {
    .name = "droverctl",
    .summary = "Drain, maintenance, weight and director state through Consul KV (CLI and Slack).",
    .args_usage = "COMMAND [ARGS] [--reason TEXT] [--ttl D] [--force] [--json] | serve | init | "
                  "config check|diff|apply FILE... | config promote|abort|history|rollback ...",
    .options = options,
    .groups = groups,
    .epilog = ctl_usage,
};

static char root[512];

static int setup_root(char *err, size_t errlen)
{
    const char *p = opt.consul.kv_prefix ? opt.consul.kv_prefix : "drover/v1/";
    size_t n = strlen(p);

    if (!n || p[0] == '/' || n + 2 > sizeof(root)) {
        snprintf(err, errlen, "--kv-prefix '%s' must be non-empty and not start with '/'", p);
        return -EINVAL;
    }
    snprintf(root, sizeof(root), "%s%s", p, p[n - 1] == '/' ? "" : "/");
    return 0;
}

static int read_secret(const char *path, char **out, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "re");
    char buf[512];
    size_t n;

    if (!f) {
        snprintf(err, errlen, "--slack-signing-secret-file %s: %s", path, strerror(errno));
        return -errno;
    }
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        n--;
    if (!n) {
        snprintf(err, errlen, "--slack-signing-secret-file %s: empty", path);
        return -EINVAL;
    }
    *out = malloc(n);
    if (!*out)
        return -ENOMEM;
    memcpy(*out, buf, n);
    *len = n;
    return 0;
}

static struct daemon_signals sigs;
static struct ctl_serve *served;

static void on_stop(void *arg, int signum)
{
    (void)arg;
    (void)signum;
    ctl_serve_stop(served);
    served = NULL;
    daemon_signals_close(&sigs);
}

static int run_serve(const struct ctl_settings *s, const struct ctl_limits *lim,
                     const struct consul_config *cc)
{
    char err[512];
    char *secret = NULL;
    size_t secret_len = 0;
    uv_loop_t *loop = uv_default_loop();
    struct metrics_registry *reg = metrics_registry_new();
    int rc;

    if (!opt.secret_file) {
        fprintf(stderr, "droverctl serve: --slack-signing-secret-file is required\n");
        return 2;
    }
    if (!opt.allow_users.count || !opt.allow_channels.count) {
        fprintf(stderr, "droverctl serve: --allow-users and --allow-channels are required (use "
                        "\"*\" to allow all explicitly)\n");
        return 2;
    }
    if ((rc = read_secret(opt.secret_file, &secret, &secret_len, err, sizeof(err))) < 0) {
        fprintf(stderr, "droverctl serve: %s\n", err);
        return 2;
    }
    struct ctl_serve_opts so = {
        .listen = opt.listen,
        .secret = secret,
        .secret_len = secret_len,
        .allow_users = opt.allow_users.items,
        .n_allow_users = opt.allow_users.count,
        .allow_channels = opt.allow_channels.items,
        .n_allow_channels = opt.allow_channels.count,
        .settings = s,
        .limits = lim,
        .consul = cc,
        .metrics = reg,
    };
    rc = ctl_serve_start(loop, &so, &served, err, sizeof(err));
    memset(secret, 0, secret_len);
    free(secret);
    if (rc < 0) {
        fprintf(stderr, "droverctl serve: %s\n", err);
        uv_run(loop, UV_RUN_DEFAULT);
        metrics_registry_free(reg);
        return 1;
    }
    /* stdout line for scripts and tests that listen on port 0 */
    printf("droverctl serve: listening on port %d\n", ctl_serve_port(served));
    fflush(stdout);
    log_info("droverctl serve: Slack endpoint on %s (POST /slack/command), Consul %s", opt.listen,
             cc->address);
    struct daemon_signal_opts sopts = {.component = "droverctl serve", .on_stop = on_stop};
    if (daemon_signals_start(loop, &sigs, &sopts) < 0) {
        ctl_serve_stop(served);
        served = NULL;
        uv_run(loop, UV_RUN_DEFAULT);
        metrics_registry_free(reg);
        return 1;
    }
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    metrics_registry_free(reg);
    return 0;
}

/* droverctl config check|diff FILE... (config_check.h) */
static int run_config(int n, char **args, const struct consul_config *cc)
{
    char *text = NULL, *json = NULL, err[1024];
    struct ctl_kv *kv = NULL;
    const char *host = NULL;
    bool diff = n >= 1 && !strcmp(args[0], "diff");
    /* diff --host HOST: the one host whose rendered diff is shown */
    if (diff && n >= 3 && !strcmp(args[n - 2], "--host")) {
        host = args[n - 1];
        n -= 2;
    }
    if (n < 2 || (strcmp(args[0], "check") != 0 && !diff)) {
        fprintf(stderr, "droverctl: usage: droverctl [--template-dir DIR] [--haproxy-bin BIN] "
                        "[--json] config check FILE... | config diff FILE... [--host HOST]\n");
        return 2;
    }
    for (int i = 1; i < n; i++)
        if (args[i][0] == '-') {
            fprintf(stderr, "droverctl config: unknown option '%s' (options go before `config`)\n",
                    args[i]);
            return 2;
        }
    struct ctl_check_opts co = {.root = root,
                                .template_dir = opt.template_dir,
                                .haproxy_bin = opt.haproxy_bin,
                                .host = host,
                                .kube_clusters = opt.cluster.items,
                                .n_kube_clusters = opt.cluster.count};
    if (diff && ctl_kv_open(cc, &kv, err, sizeof(err)) < 0) {
        fprintf(stderr, "droverctl: %s\n", err);
        return 1;
    }
    int rc = diff ? ctl_config_diff(kv, &co, n - 1, args + 1, &text, &json)
                  : ctl_config_check(&co, n - 1, args + 1, &text, &json);
    ctl_kv_close(kv);
    if (rc < 0) {
        fprintf(stderr, "droverctl config: out of memory\n");
        return 1;
    }
    fputs(opt.json ? json : text, rc == 1 && !opt.json ? stderr : stdout);
    if (opt.json)
        fputs("\n", stdout);
    free(text);
    free(json);
    return rc;
}

/* droverctl init: the folder keys of the prefixes every host watches and
 * droverctl owns. A blocking query on an empty prefix is answered with the
 * index of the whole KV store, so on a fleet that never wrote a
 * maintenance entry every watcher woke on every KV write anywhere
 * (docs/kv-schema.md, "What a watcher watches"). Create-only (cas 0):
 * running it again, or after droverctl wrote the keys with a change, is a
 * no-op. Not a change of any record, so not audited. */
static int run_init(int n, const struct consul_config *cc)
{
    static const char *const folders[] = {"maintenance/", KV_FRONTDOOR_HOSTS};
    char err[1024];
    struct ctl_kv *kv = NULL;
    json_t *out = json_array();
    int status = 0;

    if (n > 0) {
        fprintf(stderr, "droverctl: usage: droverctl [--kv-prefix PREFIX] [--json] init\n");
        json_decref(out);
        return 2;
    }
    if (!out || ctl_kv_open(cc, &kv, err, sizeof(err)) < 0) {
        fprintf(stderr, "droverctl: %s\n", out ? err : "out of memory");
        json_decref(out);
        return 1;
    }
    for (size_t i = 0; i < sizeof(folders) / sizeof(folders[0]); i++) {
        char key[600];
        snprintf(key, sizeof(key), "%s%s", root, folders[i]);
        struct consul_txn_op op = {.verb = CONSUL_TXN_CAS, .key = key, .value = "", .index = 0};
        int rc = ctl_kv_txn(kv, &op, 1, err, sizeof(err));
        const char *what = rc == 0 ? "created" : rc == -ECANCELED ? "present" : NULL;
        if (!what) {
            fprintf(stderr, "droverctl init: writing folder key %s: %s\n", key, err);
            status = 1;
            break;
        }
        if (opt.json)
            json_array_append_new(out, json_pack("{s:s, s:s}", "key", key, "state", what));
        else
            printf("%s %s\n", what, key);
    }
    if (opt.json && status == 0) {
        char *text = json_dumps(out, JSON_COMPACT);
        if (text)
            puts(text);
        free(text);
    }
    json_decref(out);
    ctl_kv_close(kv);
    return status;
}

int main(int argc, char **argv)
{
    char err[1024];
    int first = argc, rc, status = 1;
    struct ctl_command cmd = {0};
    struct ctl_result res = {0};
    struct ctl_kv *kv = NULL;
    char **argv2 = NULL;

    log_set_component("droverctl");
    log_set_level(LOGL_WARN);
    rc = config_parse(&program, argc, argv, &first, err, sizeof(err));
    if (rc == CONFIG_HELP_SHOWN)
        return 0;
    if (rc < 0) {
        fprintf(stderr, "droverctl: %s\n", err);
        return 2;
    }
    bool serve = first < argc && !strcmp(argv[first], "serve");
    if (serve) {
        /* serve takes the global options after the word too: parse again
         * without it */
        argv2 = calloc((size_t)argc + 1, sizeof(*argv2));
        if (!argv2)
            return 1;
        int n = 0;
        for (int i = 0; i < argc; i++)
            if (i != first)
                argv2[n++] = argv[i];
        config_free(&program);
        int first2 = n;
        rc = config_parse(&program, n, argv2, &first2, err, sizeof(err));
        if (rc == 0 && first2 < n) {
            snprintf(err, sizeof(err), "serve: unexpected argument '%s'", argv2[first2]);
            rc = -EINVAL;
        }
        if (rc != 0) {
            if (rc < 0)
                fprintf(stderr, "droverctl: %s\n", err);
            free(argv2);
            config_free(&program);
            return rc < 0 ? 2 : 0;
        }
    }
    if (setup_root(err, sizeof(err)) < 0 || opt.max_out_share < 0 || opt.max_out_share > 1) {
        fprintf(stderr, "droverctl: %s\n", root[0] ? "--max-out-share must be within 0..1" : err);
        goto out_usage;
    }
    struct ctl_check_opts check = {
        .root = root, .template_dir = opt.template_dir, .haproxy_bin = opt.haproxy_bin};
    const char *author = opt.author && *opt.author                     ? opt.author
                         : getenv("SUDO_USER") && *getenv("SUDO_USER") ? getenv("SUDO_USER")
                                                                       : getenv("USER");
    struct ctl_settings s = {
        .root = root,
        .clusters = opt.cluster.items,
        .n_clusters = opt.cluster.count,
        .haproxy_cluster = opt.haproxy_cluster,
        .director_cluster = opt.director_cluster,
        .default_author = author ? author : "unknown",
        .max_out_share = opt.max_out_share,
        .check = &check,
        .config_dir = opt.config_dir,
    };
    struct ctl_limits lim = {.max_ttl_ms = opt.max_ttl_ms};
    struct consul_config cc = {0};
    if (consul_options_config(&opt.consul, &cc, err, sizeof(err)) < 0) {
        fprintf(stderr, "droverctl: %s\n", err);
        goto out_usage;
    }

    if (serve) {
        status = run_serve(&s, &lim, &cc);
        goto out;
    }
    if (first >= argc) {
        fprintf(stderr, "droverctl: no command given\n%s", ctl_usage());
        goto out_usage;
    }
    if (!strcmp(argv[first], "init")) {
        status = run_init(argc - first - 1, &cc);
        goto out;
    }
    if (!strcmp(argv[first], "config") && first + 1 < argc &&
        (!strcmp(argv[first + 1], "check") || !strcmp(argv[first + 1], "diff"))) {
        status = run_config(argc - first - 1, argv + first + 1, &cc);
        goto out;
    }
    if (ctl_command_parse(argc - first, argv + first, CTL_SOURCE_CLI, &lim, &cmd, err,
                          sizeof(err)) < 0) {
        fprintf(stderr, "droverctl: %s\n", err);
        goto out_usage;
    }
    if (cmd.verb == CTL_VERB_HELP) {
        fputs(ctl_usage_of(cmd.help_verb), stdout);
        status = 0;
        goto out;
    }
    if (ctl_kv_open(&cc, &kv, err, sizeof(err)) < 0) {
        fprintf(stderr, "droverctl: %s\n", err);
        goto out;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ctl_execute(kv, &s, &cmd, (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, &res) < 0) {
        fprintf(stderr, "droverctl: out of memory\n");
        goto out;
    }
    bool json = cmd.json || opt.json;
    const char *text = json ? res.json : res.text;
    FILE *to = res.outcome == CTL_OK || json ? stdout : stderr;
    if (text)
        fprintf(to, "%s%s", text, *text && text[strlen(text) - 1] == '\n' ? "" : "\n");
    status = res.outcome == CTL_OK ? 0 : 1;
    goto out;
out_usage:
    status = 2;
out:
    ctl_result_free(&res);
    ctl_command_free(&cmd);
    ctl_kv_close(kv);
    config_free(&program);
    free(argv2);
    return status;
}
