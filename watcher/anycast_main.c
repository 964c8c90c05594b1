/* SPDX-License-Identifier: Apache-2.0 */
/*
 * drover-watcher anycast run: every --frontdoor-interval, read the HAProxy
 * services' configuration files (<config-dir>/<service>.cfg, as the watcher
 * renders them), ask each service's HAProxy `show stat` on its stats
 * socket, judge every VIP (frontdoor_anycast) and hand the verdicts to the
 * front door (frontdoor_agent: decisions, BIRD, state file, metrics); the
 * host's drain record and status record in Consul (frontdoor_kv), as on a
 * director.
 */
#include "anycast_main.h"

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include "config.h"
#include "consul.h"
#include "consul_options.h"
#include "daemon.h"
#include "frontdoor_agent.h"
#include "frontdoor_anycast.h"
#include "frontdoor_kv.h"
#include "http_server.h"
#include "log.h"
#include "metrics.h"
#include "poll_deadline.h"
#include "render.h"
#include "sdnotify.h"

struct aopts {
    char *config_dir, *stats_socket, *metrics_addr;
    char *bird_socket, *bird_include, *bird_bin, *state_file, *host_name;
    int64_t interval_ms, rise, fall, half_life_ms, stat_timeout_ms, drain_ms, consul_wait_ms;
    struct consul_options consul;
};

static struct aopts aopt;

static const struct config_option aoptions[] = {
    CONFIG_OPT_STRING("config-dir", &aopt.config_dir, RENDER_CONFIG_DIR_DEFAULT,
                      "the HAProxy services' configuration files (<service>.cfg)"),
    CONFIG_OPT_STRING("haproxy-stats-socket", &aopt.stats_socket,
                      "/run/drover/haproxy-{service}.sock",
                      "stats socket of each service's HAProxy; {service} = its name"),
    CONFIG_OPT_DURATION("stat-timeout", &aopt.stat_timeout_ms, "1s",
                        "a HAProxy that does not answer `show stat` within this fails its VIPs"),
    CONFIG_OPT_STRING("bird-socket", &aopt.bird_socket, "/run/bird/bird.ctl",
                      "BIRD 2 control socket"),
    CONFIG_OPT_STRING("bird-include", &aopt.bird_include, "/etc/bird/drover/vips.conf",
                      "the include file drover owns (bird.conf includes it)"),
    CONFIG_OPT_STRING("bird-bin", &aopt.bird_bin, "bird", "checks the include (bird -p -c)"),
    CONFIG_OPT_STRING("frontdoor-state", &aopt.state_file, "/run/drover/frontdoor-anycast.json",
                      "state file, rewritten every round"),
    CONFIG_OPT_DURATION("frontdoor-interval", &aopt.interval_ms, "1s", "one round"),
    CONFIG_OPT_INT("frontdoor-rise", &aopt.rise, "2", 1, 100, "good rounds to announce again"),
    CONFIG_OPT_INT("frontdoor-fall", &aopt.fall, "2", 1, 100, "bad rounds to withdraw"),
    CONFIG_OPT_DURATION("frontdoor-flap-half-life", &aopt.half_life_ms, "30s",
                        "half-life of a VIP's flap penalty"),
    CONFIG_OPT_DURATION("frontdoor-drain-withdraw", &aopt.drain_ms, "10s",
                        "graceful shutdown (65535:0) this long before a drained host withdraws"),
    CONFIG_OPT_STRING("host-name", &aopt.host_name, NULL,
                      "this host's name in frontdoor/hosts/<host> (droverctl host drain) and "
                      "frontdoor/status/<host>; default the system's host name"),
    CONFIG_OPT_DURATION("consul-wait", &aopt.consul_wait_ms, "5m", "blocking query wait"),
    CONFIG_OPT_STRING("metrics-addr", &aopt.metrics_addr, "127.0.0.1:9110",
                      "address for /metrics, /healthz, /readyz; empty = none"),
    CONFIG_OPT_END,
};

static const struct config_group agroups[] = {
    CONSUL_OPTION_GROUP(&aopt.consul),
    CONFIG_GROUP_END,
};

/* built from aopt.consul once the options are parsed */
static struct consul_config aconsul_cfg;

enum { ACMD_RUN };
static const struct config_command acommands[] = {
    [ACMD_RUN] = {.name = "run",
                  .summary = "announce the VIPs of the HAProxy services through BIRD while they "
                             "are served (the default)"},
    CONFIG_COMMAND_END,
};

static const struct config_program aprogram = {
    .name = "drover-watcher anycast",
    .summary = "Front door of an anycast proxy host: VIPs announced through BIRD 2 only while "
               "their HAProxy services serve them.",
    .options = aoptions,
    .groups = agroups,
    .commands = acommands,
};

struct aw {
    uv_loop_t *loop;
    uv_timer_t timer;
    struct daemon_signals sig;
    struct frontdoor_agent *agent;
    struct metrics_registry *metrics;
    struct metrics_gauge *m_ready; /* 1 once a round has judged the VIPs */
    struct http_server *http;
    struct consul_client *consul;
    struct frontdoor_kv *kv; /* drain record watched, status record put */
    struct sdnotify_watchdog *wd;
    bool notified_ready; /* READY=1 sent to systemd (once, after the first round) */
};

/* `show stat` from the stats socket at path within timeout_ms; *out
 * malloc'd. 0 or -errno. */
static int show_stat(const char *path, int timeout_ms, char **out, size_t *len)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    char *buf = NULL;
    size_t n = 0, cap = 0;
    int fd, rc = 0;
    uint64_t deadline = log_monotonic_ms() + (uint64_t)timeout_ms;

    *out = NULL;
    if (strlen(path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        send(fd, "show stat\n", 10, MSG_NOSIGNAL) != 10) {
        rc = -errno;
        goto out;
    }
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int ready = poll_deadline(&p, deadline);
        if (ready <= 0) {
            rc = ready < 0 ? ready : -ETIMEDOUT;
            goto out;
        }
        if (n + 4096 + 1 > cap) {
            char *q = realloc(buf, cap += 65536);
            if (!q) {
                rc = -ENOMEM;
                goto out;
            }
            buf = q;
        }
        ssize_t k = read(fd, buf + n, cap - n - 1);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            rc = -errno;
            goto out;
        }
        if (k == 0)
            break; /* HAProxy closes after a non-interactive command */
        n += (size_t)k;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    buf = NULL;
out:
    free(buf);
    close(fd);
    return rc;
}

/* The stats socket of service: the pattern with {service} replaced. */
static void socket_of(const char *service, char *buf, size_t len)
{
    const char *p = strstr(aopt.stats_socket, "{service}");
    if (!p)
        snprintf(buf, len, "%s", aopt.stats_socket);
    else
        snprintf(buf, len, "%.*s%s%s", (int)(p - aopt.stats_socket), aopt.stats_socket, service,
                 p + strlen("{service}"));
}

static void on_round(uv_timer_t *t)
{
    struct aw *w = t->data;
    struct frontdoor_anycast *a = NULL;
    const struct frontdoor_verdict *v = NULL;
    size_t n = 0;
    DIR *d = opendir(aopt.config_dir);

    if (!d) {
        log_warn("anycast: cannot read --config-dir %s: %s; keeping the routes this round",
                 aopt.config_dir, strerror(errno));
        return;
    }
    if (frontdoor_anycast_new(&a) < 0)
        goto out;
    for (struct dirent *e; (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        char path[4096], sock[4096], service[256], *text = NULL, *stat = NULL;
        size_t tlen = 0, slen = 0;
        if (len <= 4 || strcmp(e->d_name + len - 4, ".cfg") != 0 || e->d_name[0] == '.')
            continue;
        snprintf(service, sizeof(service), "%.*s", (int)(len - 4), e->d_name);
        snprintf(path, sizeof(path), "%s/%s", aopt.config_dir, e->d_name);
        if (render_read_file(path, &text, &tlen) < 0)
            continue;
        socket_of(service, sock, sizeof(sock));
        int rc = show_stat(sock, (int)aopt.stat_timeout_ms, &stat, &slen);
        if (rc < 0)
            log_debug("anycast: service %s: show stat on %s: %s", service, sock, strerror(-rc));
        if (frontdoor_anycast_add_service(a, service, text, tlen, rc == 0 ? stat : NULL, slen) < 0)
            log_error("anycast: out of memory reading service %s", service);
        free(text);
        free(stat);
    }
    if (frontdoor_anycast_verdicts(a, &v, &n) < 0) {
        log_error("anycast: out of memory judging the VIPs; keeping the routes this round");
        goto out;
    }
    frontdoor_agent_round(w->agent, v, n, (int64_t)(uv_hrtime() / 1000000));
    daemon_set_ready(w->http, w->m_ready, true, NULL);
    if (!w->notified_ready) {
        sdnotify_ready();
        w->notified_ready = true;
    }
    frontdoor_kv_publish(w->kv, "", "", frontdoor_anycast_sessions(a));
out:
    frontdoor_anycast_free(a);
    closedir(d);
}

static void on_stop(void *arg, int signum)
{
    struct aw *w = arg;
    (void)signum;
    uv_close((uv_handle_t *)&w->timer, NULL);
    frontdoor_kv_stop(w->kv);
    consul_client_free(w->consul);
    w->consul = NULL;
    frontdoor_agent_free(w->agent);
    w->agent = NULL;
    daemon_serving_stop(&w->http, &w->wd);
    daemon_signals_close(&w->sig);
}

/* The Consul client's counters, named like every daemon's
 * (drover_watcher_anycast_consul_*_total). */
static void collect(struct metrics_emitter *em, void *arg)
{
    struct aw *w = arg;
    if (w->consul)
        consul_stats_emit(consul_client_stats(w->consul), em, "watcher_anycast");
}

static int run(void)
{
    struct aw w = {0};
    struct frontdoor_agent_opts o = {
        .bird_socket = aopt.bird_socket,
        .bird_include = aopt.bird_include,
        .bird_bin = aopt.bird_bin,
        .state_file = aopt.state_file,
        .params = {.rise = (unsigned)aopt.rise,
                   .fall = (unsigned)aopt.fall,
                   .drain_withdraw_ms = aopt.drain_ms,
                   .flap_half_life_ms = aopt.half_life_ms},
    };
    int rc;

    w.loop = uv_default_loop();
    if (!(w.metrics = metrics_registry_new()))
        return 1;
    if ((rc = frontdoor_agent_new(w.loop, &o, w.metrics, &w.agent)) < 0) {
        log_error("anycast: cannot start: %s", strerror(-rc));
        return 1;
    }
    w.m_ready = metrics_gauge(w.metrics, "drover_watcher_anycast_ready",
                              "1 once a round has judged the VIPs and set the routes.", NULL);
    if (daemon_metrics_start(w.loop, "anycast", aopt.metrics_addr, w.metrics, w.m_ready,
                             "no round has judged the VIPs yet", &w.http) < 0)
        return 1;
    struct frontdoor_kv_opts ko = {
        .kv_prefix = aopt.consul.kv_prefix,
        .host = aopt.host_name,
        .wait_s = (unsigned)(aopt.consul_wait_ms / 1000),
        .agent = w.agent,
        .m_bad = metrics_counter(w.metrics, "drover_watcher_anycast_kv_bad_entries_total",
                                 "Front-door drain records in KV that could not be decoded "
                                 "(the last good state stays).",
                                 NULL),
    };
    if ((rc = consul_client_new(w.loop, &aconsul_cfg, &w.consul)) < 0) {
        log_error("anycast: consul client for %s: %s; cannot start", aconsul_cfg.address,
                  strerror(-rc));
        return 1;
    }
    metrics_add_collector(w.metrics, collect, &w);
    if ((rc = frontdoor_kv_start(w.consul, &ko, &w.kv)) < 0) {
        log_error("anycast: front door records: %s; cannot start", strerror(-rc));
        return 1;
    }
    sdnotify_watchdog_start(w.loop, &w.wd);
    uv_timer_init(w.loop, &w.timer);
    w.timer.data = &w;
    uv_timer_start(&w.timer, on_round, 0, (uint64_t)aopt.interval_ms);
    struct daemon_signal_opts so = {.component = "anycast",
                                    .stop_note = "(the routes stay as they are)",
                                    .on_stop = on_stop,
                                    .arg = &w};
    if (daemon_signals_start(w.loop, &w.sig, &so) < 0)
        return 1;
    log_info("anycast: announcing the VIPs of %s through BIRD %s every %lld ms", aopt.config_dir,
             aopt.bird_socket, (long long)aopt.interval_ms);
    uv_run(w.loop, UV_RUN_DEFAULT);
    frontdoor_kv_free(w.kv);
    metrics_registry_free(w.metrics);
    uv_loop_close(w.loop);
    return 0;
}

int anycast_main(int argc, char **argv)
{
    char err[512];
    int cmd = -1, rc;

    log_set_component("watcher-anycast");
    rc = config_parse_command(&aprogram, argc, argv, &cmd, NULL, err, sizeof(err));
    if (rc == CONFIG_HELP_SHOWN)
        return 0;
    if (rc == 0)
        rc = consul_options_config(&aopt.consul, &aconsul_cfg, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "drover-watcher anycast: %s\n", err);
        config_free(&aprogram);
        return 2;
    }
    rc = run();
    config_free(&aprogram);
    return rc;
}
