/* SPDX-License-Identifier: Apache-2.0 */
/*
 * drover-director: command-line front end of xdp-lb. Loads, attaches and
 * inspects the director XDP program (director hosts) and the GUE decap
 * program (proxy hosts). See docs/director.md.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "director_config.h"
#include "director_counters.h"
#include "director_loader.h"
#include "director_publish.h"
#include "log.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: drover-director COMMAND [options]   (COMMAND --help: its options)\n"
                 "  attach --dev IF --director-config FILE [--mode native|generic] [--force]\n"
                 "  apply  --dev IF --director-config FILE     publish a new table generation\n"
                 "  detach --dev IF [--force]\n"
                 "  status --dev IF\n"
                 "  stats  --dev IF [--json]\n"
                 "  table dump --dev IF\n"
                 "  check-config --director-config FILE\n"
                 "  decap attach --dev IF [--gue-port N] [--mode native|generic] [--force]\n"
                 "  decap detach --dev IF [--force]\n"
                 "  decap stats --dev IF [--json]\n"
                 "common: --pin-root DIR (default " DIRECTOR_PIN_ROOT "), --log-level LEVEL,\n"
                 "  --config FILE (JSON file of options); every option also as DROVER_<NAME>\n"
                 "  (DROVER_DEV, DROVER_DIRECTOR_CONFIG, ...), see docs/configuration.md\n");
}

/* ---- options (common/config: flag > DROVER_<NAME> > --config file > default) ---- */

static struct {
    char *dev, *director_config, *mode, *pin_root;
    bool force, json;
    int64_t gue_port;
} opt;

#define STR_(x) #x
#define STR(x)  STR_(x)

#define OPT_DEV CONFIG_OPT_STRING("dev", &opt.dev, NULL, "network device (required)")
#define OPT_PIN_ROOT                                                                               \
    CONFIG_OPT_STRING("pin-root", &opt.pin_root, DIRECTOR_PIN_ROOT,                                \
                      "bpffs directory; maps and programs are pinned in <pin-root>/<dev>/")
#define OPT_DIRECTOR_CONFIG                                                                        \
    CONFIG_OPT_STRING("director-config", &opt.director_config, NULL,                               \
                      "director JSON config: VIPs, proxies, hash key, tunnel (required; "          \
                      "docs/director.md)")
#define OPT_MODE                                                                                   \
    CONFIG_OPT_STRING("mode", &opt.mode, "auto",                                                   \
                      "XDP mode: auto (the kernel's choice), native or generic")
#define OPT_FORCE                                                                                  \
    CONFIG_OPT_BOOL("force", &opt.force, "false",                                                  \
                    "replace or remove an XDP program that is not drover's")
#define OPT_JSON CONFIG_OPT_BOOL("json", &opt.json, "false", "one JSON object instead of lines")
#define OPT_GUE_PORT                                                                               \
    CONFIG_OPT_INT("gue-port", &opt.gue_port, STR(DROVER_GUE_PORT_DEFAULT), 1, 65535,              \
                   "UDP port of the GUE tunnel the decap program takes")

static const struct config_option attach_opts[] = {OPT_DEV,   OPT_DIRECTOR_CONFIG, OPT_MODE,
                                                   OPT_FORCE, OPT_PIN_ROOT,        CONFIG_OPT_END};
static const struct config_option apply_opts[] = {OPT_DEV, OPT_DIRECTOR_CONFIG, OPT_PIN_ROOT,
                                                  CONFIG_OPT_END};
static const struct config_option detach_opts[] = {OPT_DEV, OPT_FORCE, OPT_PIN_ROOT,
                                                   CONFIG_OPT_END};
static const struct config_option status_opts[] = {OPT_DEV, OPT_PIN_ROOT, CONFIG_OPT_END};
static const struct config_option stats_opts[] = {OPT_DEV, OPT_JSON, OPT_PIN_ROOT, CONFIG_OPT_END};
static const struct config_option check_opts[] = {OPT_DIRECTOR_CONFIG, CONFIG_OPT_END};
static const struct config_option decap_attach_opts[] = {OPT_DEV,   OPT_GUE_PORT, OPT_MODE,
                                                         OPT_FORCE, OPT_PIN_ROOT, CONFIG_OPT_END};

/* Per-VIP and per-proxy counters: "vip NAME packets N bytes N drops N"
 * lines, or ,"vips":{NAME:{...}},"proxies":{...} inside the JSON object. */
static void print_traffic(const struct director_traffic *t, int json)
{
    for (int list = 0; list < 2; list++) {
        const struct director_traffic_entry *e = list ? t->proxies : t->vips;
        size_t n = list ? t->n_proxies : t->n_vips;
        if (json)
            printf(",\"%s\":{", list ? "proxies" : "vips");
        for (size_t i = 0; i < n; i++) {
            if (json && list)
                printf("%s\"%s\":{\"packets\":%llu,\"bytes\":%llu}", i ? "," : "", e[i].name,
                       (unsigned long long)e[i].packets, (unsigned long long)e[i].bytes);
            else if (json)
                printf("%s\"%s\":{\"packets\":%llu,\"bytes\":%llu,\"drops\":%llu}", i ? "," : "",
                       e[i].name, (unsigned long long)e[i].packets, (unsigned long long)e[i].bytes,
                       (unsigned long long)e[i].drops);
            else if (list)
                printf("proxy %s packets %llu bytes %llu\n", e[i].name,
                       (unsigned long long)e[i].packets, (unsigned long long)e[i].bytes);
            else
                printf("vip %s packets %llu bytes %llu drops %llu\n", e[i].name,
                       (unsigned long long)e[i].packets, (unsigned long long)e[i].bytes,
                       (unsigned long long)e[i].drops);
        }
        if (json)
            printf("}");
    }
}

static int print_stats(const char *dir, int json, bool decap, const char *dev)
{
    struct director_stat st[DIRECTOR_STATS_MAX];
    struct director_traffic t = {0};
    size_t n = 0;
    int rc = director_stats_read_pinned(dir, decap, st, &n);

    if (rc == 0 && !decap)
        rc = director_traffic_read_pinned(dir, &t);
    if (rc < 0) {
        director_traffic_free(&t);
        return rc;
    }
    if (json)
        printf("{\"dev\":\"%s\"", dev);
    for (size_t i = 0; i < n; i++) {
        if (json)
            printf(",\"%s\":%llu", st[i].name, (unsigned long long)st[i].value);
        else
            printf("%-24s %llu\n", st[i].name, (unsigned long long)st[i].value);
    }
    if (!decap)
        print_traffic(&t, json);
    if (json)
        printf("}\n");
    director_traffic_free(&t);
    return 0;
}

static int cmd_status(const struct director_attach_opts *o, const char *dir)
{
    struct director_live l;
    __u32 attached, ours;
    int rc = director_loader_prog_ids(o, DIRECTOR_PROG_PIN, &attached, &ours);

    if (rc < 0)
        return rc;
    printf("dev %s\nxdp_prog_id %u\ndirector_prog_id %u\nattached %s\n", o->dev, attached, ours,
           attached && attached == ours ? "yes"
           : attached                   ? "foreign"
                                        : "no");
    rc = director_live_read(dir, false, &l);
    if (rc < 0)
        return rc;
    printf("generation %u\nmaps_version %u\ngue_port %u\nvips %zu\nproxies %u\nchecksum "
           "%016llx\n",
           l.generation, l.maps_version, l.gue_port, l.n_vips, l.proxy_count,
           (unsigned long long)l.checksum);
    for (uint32_t i = 0; i < l.n_listed; i++)
        printf("proxy %u %s %s\n", i, l.proxies[i].address, l.proxies[i].state);
    director_live_free(&l);
    return 0;
}

static int cmd_table_dump(const char *dir)
{
    struct director_live l;
    int rc = director_live_read(dir, true, &l);

    if (rc < 0)
        return rc;
    printf("# generation %u: row primary secondary\n", l.generation);
    for (uint32_t r = 0; r < DIRECTOR_TABLE_ROWS; r++) {
        const struct director_live_row *row = &l.rows[r];
        printf("%u %s %s\n", r,
               row->primary < DIRECTOR_TABLE_MAX_PROXIES ? l.proxies[row->primary].address : "-",
               row->secondary < DIRECTOR_TABLE_MAX_PROXIES ? l.proxies[row->secondary].address
                                                           : "-");
    }
    director_live_free(&l);
    return 0;
}

/* ---- commands ---- */

enum cmd_id {
    C_ATTACH,
    C_APPLY,
    C_DETACH,
    C_STATUS,
    C_STATS,
    C_DUMP,
    C_CHECK,
    C_DATTACH,
    C_DDETACH,
    C_DSTATS
};

struct command {
    const char *group; /* "decap", "table" or NULL */
    const char *word;
    enum cmd_id id;
    struct config_program prog;
};

#define CMD(group_, word_, id_, full_, opts_, summary_)                                            \
    {                                                                                              \
        .group = (group_), .word = (word_), .id = (id_), .prog = {                                 \
            .name = "drover-director " full_,                                                      \
            .summary = (summary_),                                                                 \
            .options = (opts_)                                                                     \
        }                                                                                          \
    }

static const struct command commands[] = {
    CMD(NULL, "attach", C_ATTACH, "attach", attach_opts,
        "Load the director XDP program on a device, pin its maps and publish the config."),
    CMD(NULL, "apply", C_APPLY, "apply", apply_opts,
        "Publish the config as a new table generation into the pinned maps (no reload)."),
    CMD(NULL, "detach", C_DETACH, "detach", detach_opts,
        "Detach the director XDP program and remove its pins."),
    CMD(NULL, "status", C_STATUS, "status", status_opts,
        "Attached program and the active generation of the pinned maps."),
    CMD(NULL, "stats", C_STATS, "stats", stats_opts, "The director's counters, summed over CPUs."),
    CMD("table", "dump", C_DUMP, "table dump", status_opts,
        "Every row of the active generation: row, primary, secondary."),
    CMD(NULL, "check-config", C_CHECK, "check-config", check_opts,
        "Parse and validate a director config; touches nothing."),
    CMD("decap", "attach", C_DATTACH, "decap attach", decap_attach_opts,
        "Load the GUE decap XDP program on a proxy host's device."),
    CMD("decap", "detach", C_DDETACH, "decap detach", detach_opts,
        "Detach the decap XDP program and remove its pins."),
    CMD("decap", "stats", C_DSTATS, "decap stats", stats_opts,
        "The decap program's counters, summed over CPUs."),
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static bool is_help(const char *arg)
{
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0 || strcmp(arg, "help") == 0;
}

static bool is_group(const char *word)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (commands[i].group && strcmp(commands[i].group, word) == 0)
            return true;
    return false;
}

static const struct command *find_command(const char *group, const char *word)
{
    for (size_t i = 0; i < NCOMMANDS; i++) {
        const struct command *c = &commands[i];
        if ((group ? c->group && strcmp(c->group, group) == 0 : !c->group) &&
            strcmp(c->word, word) == 0)
            return c;
    }
    return NULL;
}

/* Exit codes (docs/configuration.md): 0 done, 1 failed, 2 usage. */
#define EXIT_FAILED 1
#define EXIT_USAGE  2

static bool need(const char *what, const char *value)
{
    if (value && *value)
        return true;
    log_error("missing required option --%s (or DROVER_%s)", what,
              strcmp(what, "dev") == 0 ? "DEV" : "DIRECTOR_CONFIG");
    return false;
}

static int load_config(struct director_config *cfg)
{
    char err[512];
    int rc = director_config_load(opt.director_config, cfg, err, sizeof(err));

    if (rc < 0)
        log_error("director config: %s; nothing changed", err);
    return rc;
}

static int parse_mode(enum director_xdp_mode *mode)
{
    if (!opt.mode || strcmp(opt.mode, "auto") == 0)
        *mode = DIRECTOR_MODE_AUTO;
    else if (strcmp(opt.mode, "native") == 0)
        *mode = DIRECTOR_MODE_NATIVE;
    else if (strcmp(opt.mode, "generic") == 0)
        *mode = DIRECTOR_MODE_GENERIC;
    else {
        log_error("--mode: expected auto, native or generic, got '%s'", opt.mode);
        return -EINVAL;
    }
    return 0;
}

/* The options a command needs are there and valid: o and dir filled. */
static bool usable(const struct command *c, struct director_attach_opts *o, char *dir, size_t len)
{
    int rc;

    if ((c->id == C_CHECK || c->id == C_ATTACH || c->id == C_APPLY) &&
        !need("director-config", opt.director_config))
        return false;
    if (c->id == C_CHECK)
        return true;
    if (!need("dev", opt.dev) || parse_mode(&o->mode) < 0)
        return false;
    if ((rc = director_pin_dir(opt.pin_root, opt.dev, dir, len)) < 0) {
        log_error("--dev %s: no pin directory for it under %s: %s", opt.dev, opt.pin_root,
                  strerror(-rc));
        return false;
    }
    return true;
}

/* Run a command whose options are usable. 0 or -errno (logged). */
static int dispatch(const struct command *c, const struct director_attach_opts *o, const char *dir)
{
    struct director_config cfg = {0};
    int rc;

    switch (c->id) {
    case C_CHECK:
        if ((rc = load_config(&cfg)) < 0)
            return rc;
        printf("%s: ok, %zu VIPs, %zu proxies\n", opt.director_config, cfg.n_vips, cfg.n_proxies);
        director_config_free(&cfg);
        return 0;
    case C_ATTACH:
    case C_APPLY:
        if ((rc = load_config(&cfg)) < 0)
            return rc;
        rc = c->id == C_ATTACH ? director_loader_attach(o, &cfg) : director_loader_apply(o, &cfg);
        director_config_free(&cfg);
        return rc;
    case C_DETACH:
        return director_loader_detach(o);
    case C_STATUS:
        return cmd_status(o, dir);
    case C_STATS:
        return print_stats(dir, opt.json, false, opt.dev);
    case C_DUMP:
        return cmd_table_dump(dir);
    case C_DATTACH:
        return decap_loader_attach(o, (__u16)opt.gue_port);
    case C_DDETACH:
        return decap_loader_detach(o);
    case C_DSTATS:
        return print_stats(dir, opt.json, true, opt.dev);
    }
    return -EINVAL;
}

/* drover-director [GROUP] COMMAND [options]: the command words come first,
 * then that command's options (its --help lists them). Returns the exit
 * code. */
static int run(int argc, char **argv)
{
    const struct command *c;
    const char *group = NULL;
    char err[512], dir[4096] = "";
    int w = 1, first = 0, rc;

    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (is_help(argv[1])) {
        usage(stdout);
        return 0;
    }
    if (argv[1][0] == '-') {
        /* only common/config's built-ins (--version, --log-level) can come
         * first; command options go after the command */
        static const struct config_option none[] = {CONFIG_OPT_END};
        static const struct config_program global = {.name = "drover-director", .options = none};
        rc = config_parse(&global, argc, argv, &first, err, sizeof(err));
        if (rc == CONFIG_HELP_SHOWN)
            return 0;
        if (rc == 0)
            config_free(&global);
        log_error("%s%sthe command comes first: drover-director COMMAND [options]",
                  rc < 0 ? err : "", rc < 0 ? "; " : "");
        usage(stderr);
        return EXIT_USAGE;
    }
    if (is_group(argv[1])) {
        group = argv[w++];
        if (w >= argc) {
            usage(stderr);
            return EXIT_USAGE;
        }
        if (is_help(argv[w])) {
            usage(stdout);
            return 0;
        }
    }
    c = find_command(group, argv[w]);
    if (!c) {
        log_error("unknown command '%s%s%s'", group ? group : "", group ? " " : "", argv[w]);
        usage(stderr);
        return EXIT_USAGE;
    }
    /* config_parse sees "drover-director COMMAND" as argv[0] */
    rc = config_parse(&c->prog, argc - w, argv + w, &first, err, sizeof(err));
    if (rc == CONFIG_HELP_SHOWN)
        return 0;
    if (rc < 0) {
        log_error("%s: %s", c->prog.name, err);
        if (strstr(err, "unknown key"))
            log_error("note: --config FILE names a JSON file of options (keys as the flags); the "
                      "VIPs/proxies config is --director-config FILE");
        return EXIT_USAGE;
    }
    struct director_attach_opts o = {.dev = opt.dev, .pin_root = opt.pin_root, .force = opt.force};
    if (first < argc - w) {
        log_error("%s: unexpected argument '%s'", c->prog.name, argv[w + first]);
        rc = EXIT_USAGE;
    } else if (!usable(c, &o, dir, sizeof(dir))) {
        rc = EXIT_USAGE;
    } else {
        rc = dispatch(c, &o, dir) < 0 ? EXIT_FAILED : 0;
    }
    config_free(&c->prog);
    return rc;
}

int main(int argc, char **argv)
{
    log_set_component("director");
    log_route_libbpf();
    return run(argc, argv);
}
