/* SPDX-License-Identifier: Apache-2.0 */
/*
 * drover-director: command-line front end of xdp-lb. Loads, attaches and
 * inspects the director XDP program (director hosts) and the GUE decap
 * program (proxy hosts). See docs/director.md.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "director_config.h"
#include "director_loader.h"
#include "director_publish.h"
#include "log.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: drover-director COMMAND [options]\n"
                 "  attach --dev IF --config FILE [--mode native|generic] [--force]\n"
                 "  apply  --dev IF --config FILE     publish a new table generation\n"
                 "  detach --dev IF [--force]\n"
                 "  status --dev IF\n"
                 "  stats  --dev IF [--json]\n"
                 "  table dump --dev IF\n"
                 "  check-config --config FILE\n"
                 "  decap attach --dev IF [--gue-port N] [--mode native|generic] [--force]\n"
                 "  decap detach --dev IF [--force]\n"
                 "  decap stats --dev IF [--json]\n"
                 "common: --pin-root DIR (default " DIRECTOR_PIN_ROOT "), --log-level LEVEL\n");
}

struct cli {
    struct director_attach_opts o;
    const char *config;
    int json;
    long gue_port;
};

static int parse_opts(int argc, char **argv, struct cli *c)
{
    static const struct option opts[] = {
        {"dev", required_argument, NULL, 'd'},      {"config", required_argument, NULL, 'c'},
        {"mode", required_argument, NULL, 'm'},     {"force", no_argument, NULL, 'f'},
        {"pin-root", required_argument, NULL, 'p'}, {"json", no_argument, NULL, 'j'},
        {"gue-port", required_argument, NULL, 'g'}, {"log-level", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    int ch;

    c->gue_port = DROVER_GUE_PORT_DEFAULT;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "d:c:m:fp:jg:l:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'd':
            c->o.dev = optarg;
            break;
        case 'c':
            c->config = optarg;
            break;
        case 'm':
            if (strcmp(optarg, "native") == 0) {
                c->o.mode = DIRECTOR_MODE_NATIVE;
            } else if (strcmp(optarg, "generic") == 0) {
                c->o.mode = DIRECTOR_MODE_GENERIC;
            } else {
                log_error("--mode: expected native or generic, got '%s'", optarg);
                return -EINVAL;
            }
            break;
        case 'f':
            c->o.force = true;
            break;
        case 'p':
            c->o.pin_root = optarg;
            break;
        case 'j':
            c->json = 1;
            break;
        case 'g': {
            char *end;
            c->gue_port = strtol(optarg, &end, 10);
            if (*end || c->gue_port < 1 || c->gue_port > 65535) {
                log_error("--gue-port: expected 1..65535, got '%s'", optarg);
                return -EINVAL;
            }
            break;
        }
        case 'l': {
            enum log_level lvl;
            if (log_parse_level(optarg, &lvl) < 0) {
                log_error("--log-level: expected debug|info|warn|error, got '%s'", optarg);
                return -EINVAL;
            }
            log_set_level(lvl);
            break;
        }
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return -EINVAL;
        }
    }
    if (optind < argc) {
        log_error("unexpected argument '%s'", argv[optind]);
        return -EINVAL;
    }
    return 0;
}

static int need(const char *what, const void *value)
{
    if (!value) {
        log_error("missing required option %s", what);
        return -EINVAL;
    }
    return 0;
}

static int load_config(const char *path, struct director_config *cfg)
{
    char err[512];
    int rc = director_config_load(path, cfg, err, sizeof(err));

    if (rc < 0)
        log_error("config: %s; nothing changed", err);
    return rc;
}

static int print_stats(const char *dir, int json, bool decap, const char *dev)
{
    struct director_stat st[DIRECTOR_STATS_MAX];
    size_t n = 0;
    int rc = director_stats_read_pinned(dir, decap, st, &n);

    if (rc < 0)
        return rc;
    if (json)
        printf("{\"dev\":\"%s\"", dev);
    for (size_t i = 0; i < n; i++) {
        if (json)
            printf(",\"%s\":%llu", st[i].name, (unsigned long long)st[i].value);
        else
            printf("%-24s %llu\n", st[i].name, (unsigned long long)st[i].value);
    }
    if (json)
        printf("}\n");
    return 0;
}

static int cmd_status(const struct cli *c, const char *dir)
{
    struct director_live l;
    __u32 attached, ours;
    int rc = director_loader_prog_ids(&c->o, DIRECTOR_PROG_PIN, &attached, &ours);

    if (rc < 0)
        return rc;
    printf("dev %s\nxdp_prog_id %u\ndirector_prog_id %u\nattached %s\n", c->o.dev, attached, ours,
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

static bool is_help(const char *arg)
{
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0 || strcmp(arg, "help") == 0;
}

static int run(int argc, char **argv)
{
    struct cli c = {0};
    struct director_config cfg = {0};
    char dir[256];
    int decap = 0, rc;

    if (argc < 2) {
        usage(stderr);
        return -EINVAL;
    }
    const char *cmd = argv[1];
    int shift = 1;
    /* parse_opts() starts after the command word, so a --help in its
     * place is seen here: usage on stdout, success */
    if (is_help(cmd)) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "decap") == 0 || strcmp(cmd, "table") == 0) {
        if (argc < 3) {
            usage(stderr);
            return -EINVAL;
        }
        if (is_help(argv[2])) {
            usage(stdout);
            return 0;
        }
        decap = strcmp(cmd, "decap") == 0;
        if (!decap && strcmp(argv[2], "dump") != 0) {
            log_error("unknown command 'table %s'", argv[2]);
            return -EINVAL;
        }
        cmd = argv[2];
        shift = 2;
    }
    rc = parse_opts(argc - shift, argv + shift, &c);
    if (rc < 0)
        return rc;
    if (strcmp(cmd, "check-config") == 0) {
        if ((rc = need("--config", c.config)) < 0 || (rc = load_config(c.config, &cfg)) < 0)
            return rc;
        printf("%s: ok, %zu VIPs, %zu proxies\n", c.config, cfg.n_vips, cfg.n_proxies);
        director_config_free(&cfg);
        return 0;
    }
    if ((rc = need("--dev", c.o.dev)) < 0)
        return rc;
    if ((rc = director_pin_dir(c.o.pin_root, c.o.dev, dir, sizeof(dir))) < 0) {
        log_error("--dev %s: no pin directory for it: %s", c.o.dev, strerror(-rc));
        return rc;
    }
    if (decap) {
        if (strcmp(cmd, "attach") == 0)
            return decap_loader_attach(&c.o, (__u16)c.gue_port);
        if (strcmp(cmd, "detach") == 0)
            return decap_loader_detach(&c.o);
        if (strcmp(cmd, "stats") == 0)
            return print_stats(dir, c.json, true, c.o.dev);
        log_error("unknown command 'decap %s'", cmd);
        return -EINVAL;
    }
    if (strcmp(cmd, "attach") == 0 || strcmp(cmd, "apply") == 0) {
        if ((rc = need("--config", c.config)) < 0 || (rc = load_config(c.config, &cfg)) < 0)
            return rc;
        rc = strcmp(cmd, "attach") == 0 ? director_loader_attach(&c.o, &cfg)
                                        : director_loader_apply(&c.o, &cfg);
        director_config_free(&cfg);
        return rc;
    }
    if (strcmp(cmd, "detach") == 0)
        return director_loader_detach(&c.o);
    if (strcmp(cmd, "status") == 0)
        return cmd_status(&c, dir);
    if (strcmp(cmd, "stats") == 0)
        return print_stats(dir, c.json, false, c.o.dev);
    if (strcmp(cmd, "dump") == 0)
        return cmd_table_dump(dir);
    log_error("unknown command '%s'", cmd);
    usage(stderr);
    return -EINVAL;
}

int main(int argc, char **argv)
{
    log_set_component("director");
    log_route_libbpf();
    int rc = run(argc, argv);
    return rc < 0 ? 1 : 0;
}
