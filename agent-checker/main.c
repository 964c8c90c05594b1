/* SPDX-License-Identifier: Apache-2.0 */
/*
 * drover-agent-checker: answers HAProxy agent checks from the state file
 * the watcher renders. This file only wires the modules together: options,
 * the agent TCP server, the checker (state + reload), Prometheus metrics,
 * /healthz + /readyz, systemd notification and signals.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <uv.h>

#include "agent_checker.h"
#include "agent_server.h"
#include "agent_workers.h"
#include "config.h"
#include "daemon.h"
#include "http_server.h"
#include "log.h"
#include "metrics.h"
#include "sdnotify.h"

struct options {
    struct config_strlist listen;
    char *state_file;
    char *metrics_addr;
    char *fallback;
    int64_t request_timeout_ms;
    int64_t defer_accept_ms;
    int64_t max_connections;
    int64_t stale_after_ms;
    int64_t poll_interval_ms;
    int64_t threads;
};

static struct options opt;

static const struct config_option options[] = {
    CONFIG_OPT_STRLIST("listen", &opt.listen, "127.0.0.1:5555",
                       "agent-check address, IPv4:port or [IPv6]:port"),
    CONFIG_OPT_STRING("state-file", &opt.state_file, "/var/lib/drover/agent-checker/state.json",
                      "state file rendered by drover-watcher (replaced by atomic rename)"),
    CONFIG_OPT_STRING("metrics-addr", &opt.metrics_addr, "127.0.0.1:9107",
                      "address for /metrics, /healthz and /readyz; empty = none"),
    CONFIG_OPT_STRING("fallback", &opt.fallback, "ready up",
                      "answer while no state is loaded or it is stale (agent reply words)"),
    CONFIG_OPT_DURATION("request-timeout", &opt.request_timeout_ms, "100ms",
                        "answer a client that sent no full line within this time"),
    CONFIG_OPT_DURATION("defer-accept", &opt.defer_accept_ms, "1s",
                        "TCP_DEFER_ACCEPT: the kernel hands over a connection once its line "
                        "arrives, or after about this long (whole seconds, rounded up; a client "
                        "that sends nothing is answered that much later); 0 = at once"),
    CONFIG_OPT_INT("max-connections", &opt.max_connections, "4096", 1, 1000000,
                   "concurrent agent connections; more are closed at once and counted"),
    CONFIG_OPT_DURATION("stale-after", &opt.stale_after_ms, "0",
                        "state older than this (by its \"generated\" time) is stale; 0 = never"),
    CONFIG_OPT_DURATION("poll-interval", &opt.poll_interval_ms, "5s",
                        "stat() the state file this often in case an inotify event is missed"),
    CONFIG_OPT_INT("threads", &opt.threads, "0", 0, 1024,
                   "answering threads, each with its own SO_REUSEPORT listeners; "
                   "0 = one per CPU the process may run on"),
    CONFIG_OPT_END,
};

static const struct config_program program = {
    .name = "drover-agent-checker",
    .summary = "Answer HAProxy agent checks (drain/maint/weight) from drover's state file.",
    .options = options,
};

struct daemon {
    uv_loop_t *loop;
    struct agent_workers *workers;
    struct agent_checker *checker;
    struct http_server *http;
    struct metrics_registry *metrics;
    struct sdnotify_watchdog *watchdog;
    struct daemon_signals sigs;
};

static void on_ready_change(void *arg, bool ready, const char *reason)
{
    struct daemon *d = arg;
    if (d->http)
        http_server_set_ready(d->http, ready, reason);
    sdnotify_status("%s", ready ? "serving agent checks from the state file" : reason);
}

static void emit_u64(struct metrics_emitter *em, const char *name, const char *help,
                     enum metrics_type type, uint64_t v)
{
    metrics_emit(em, name, help, type, (double)v, NULL);
}

static void collect(struct metrics_emitter *em, void *arg)
{
    struct daemon *d = arg;
    const struct agent_checker_counters *c = agent_checker_counters(d->checker);
    struct agent_server_stats stats;
    const struct agent_server_stats *s = &stats;
    agent_workers_stats(d->workers, &stats);

    for (int a = 0; a < AGENT_ADMIN_COUNT; a++) {
        for (int h = 0; h < AGENT_HEALTH_COUNT; h++) {
            metrics_emit(em, "drover_agent_checker_replies_total",
                         "Agent checks answered, by the admin and health words sent.",
                         METRICS_COUNTER, (double)c->replies[a][h], "admin",
                         agent_admin_name((enum agent_admin)a), "health",
                         agent_health_name((enum agent_health)h), NULL);
        }
    }
    for (int m = 0; m < AGENT_MATCH_COUNT; m++) {
        metrics_emit(em, "drover_agent_checker_lookups_total",
                     "Answers by what matched: server, address, backend, default, none "
                     "(configured fallback).",
                     METRICS_COUNTER, (double)c->matches[m], "match",
                     agent_match_name((enum agent_match)m), NULL);
    }
    for (int e = 0; e < AGENT_REQ_END_COUNT; e++) {
        metrics_emit(em, "drover_agent_checker_requests_total",
                     "Requests by how they ended: line, eof, timeout, oversize.", METRICS_COUNTER,
                     (double)s->ends[e], "end", agent_req_end_name((enum agent_req_end)e), NULL);
    }
    metrics_emit(em, "drover_agent_checker_fallback_replies_total",
                 "Checks answered with the configured fallback because no state was loaded or "
                 "it was stale.",
                 METRICS_COUNTER, (double)c->fallback_no_state, "reason", "no_state", NULL);
    metrics_emit(em, "drover_agent_checker_fallback_replies_total",
                 "Checks answered with the configured fallback because no state was loaded or "
                 "it was stale.",
                 METRICS_COUNTER, (double)c->fallback_stale, "reason", "stale", NULL);
    emit_u64(em, "drover_agent_checker_bad_requests_total",
             "Requests that were garbage, oversize or cut by the timeout (answered the default).",
             METRICS_COUNTER, c->bad_requests);
    emit_u64(em, "drover_agent_checker_connections_refused_total",
             "Connections closed at once because max-connections were open.", METRICS_COUNTER,
             s->refused);
    emit_u64(em, "drover_agent_checker_connections_accepted_total", "Agent connections accepted.",
             METRICS_COUNTER, s->accepted);
    static const char *const err_help = "Connection errors before or while answering.";
    metrics_emit(em, "drover_agent_checker_connection_errors_total", err_help, METRICS_COUNTER,
                 (double)s->read_errors, "op", "read", NULL);
    metrics_emit(em, "drover_agent_checker_connection_errors_total", err_help, METRICS_COUNTER,
                 (double)s->write_errors, "op", "write", NULL);
    metrics_emit(em, "drover_agent_checker_connection_errors_total", err_help, METRICS_COUNTER,
                 (double)s->accept_errors, "op", "accept", NULL);
    emit_u64(em, "drover_agent_checker_connections_active", "Agent connections open now.",
             METRICS_GAUGE, s->active);
    emit_u64(em, "drover_agent_checker_threads", "Threads answering agent checks.", METRICS_GAUGE,
             agent_workers_count(d->workers));
    for (int r = 0; r < AGENT_RELOAD_COUNT; r++) {
        metrics_emit(em, "drover_agent_checker_state_reloads_total",
                     "State file loads by result; anything but ok keeps the previous state.",
                     METRICS_COUNTER, (double)c->reloads[r], "result",
                     agent_reload_result_name((enum agent_reload_result)r), NULL);
    }
    emit_u64(em, "drover_agent_checker_state_parse_errors_total",
             "State files rejected for a syntax or type error.", METRICS_COUNTER, c->parse_errors);
    emit_u64(em, "drover_agent_checker_state_entries", "Entries in the loaded state.",
             METRICS_GAUGE, agent_checker_state_entries(d->checker));
    metrics_emit(em, "drover_agent_checker_state_age_seconds",
                 "Seconds since the loaded state was generated (-1: no state loaded).",
                 METRICS_GAUGE, agent_checker_state_age(d->checker), NULL);
    metrics_emit(em, "drover_agent_checker_ready", "1 when a good, fresh state is loaded.",
                 METRICS_GAUGE, agent_checker_ready(d->checker, NULL) ? 1.0 : 0.0, NULL);
}

static void on_stop(void *arg, int signum)
{
    struct daemon *d = arg;
    (void)signum;
    agent_workers_stop(d->workers);
    agent_checker_close(d->checker);
    daemon_serving_stop(&d->http, &d->watchdog);
    daemon_signals_close(&d->sigs);
}

/* Agent connections are file descriptors: let max-connections use what
 * the service manager allows. */
static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            log_warn("agent-checker: raising RLIMIT_NOFILE failed: %s, keeping %llu",
                     strerror(errno), (unsigned long long)rl.rlim_cur);
    }
}

int main(int argc, char **argv)
{
    struct daemon d = {0};
    char err[512];
    int rc, status = 1;

    if (!daemon_config_parse(&program, "agent-checker", argc, argv, &status))
        return status;
    status = 1;
    if (opt.defer_accept_ms < 0 || opt.defer_accept_ms > 60000) {
        log_error("agent-checker: --defer-accept %lld ms: must be 0 to 60s",
                  (long long)opt.defer_accept_ms);
        config_free(&program);
        return 2;
    }
    raise_nofile();
    d.loop = uv_default_loop();

    struct agent_checker_config ccfg = {
        .state_path = opt.state_file,
        .fallback = opt.fallback,
        .stale_after_s = opt.stale_after_ms / 1000,
        .poll_interval_ms = (uint64_t)opt.poll_interval_ms,
    };
    if (agent_checker_new(d.loop, &ccfg, on_ready_change, &d, &d.checker) < 0)
        goto out_config;

    struct agent_server_config scfg = {
        .request_timeout_ms = opt.request_timeout_ms > 0 ? (uint64_t)opt.request_timeout_ms : 1,
        .max_connections = (size_t)opt.max_connections,
        .defer_accept_s = (unsigned)((opt.defer_accept_ms + 999) / 1000),
    };
    if (opt.listen.count == 0) {
        log_error("agent-checker: no --listen address given, exiting");
        goto out_checker;
    }
    unsigned nthreads = opt.threads > 0 ? (unsigned)opt.threads : agent_workers_default_count();
    rc = agent_workers_start(d.checker, &scfg, opt.listen.items, opt.listen.count, nthreads,
                             &d.workers, err, sizeof(err));
    if (rc < 0) {
        log_error("agent-checker: %s, exiting", err);
        goto out_checker;
    }
    for (size_t i = 0; i < opt.listen.count; i++)
        log_info("agent-checker: answering agent checks on %s (port %d) with %u thread%s",
                 opt.listen.items[i], agent_workers_port(d.workers, i), nthreads,
                 nthreads == 1 ? "" : "s");

    d.metrics = metrics_registry_new();
    if (!d.metrics || metrics_add_collector(d.metrics, collect, &d) < 0) {
        log_error("agent-checker: out of memory creating metrics, exiting");
        goto out_server;
    }
    const char *reason;
    bool ready = agent_checker_ready(d.checker, &reason);
    if (daemon_http_start(d.loop, "agent-checker", opt.metrics_addr, d.metrics, &d.http) < 0)
        goto out_server;
    if (d.http)
        http_server_set_ready(d.http, ready, reason);

    struct daemon_signal_opts sopts = {.component = "agent-checker", .on_stop = on_stop, .arg = &d};
    if (daemon_signals_start(d.loop, &d.sigs, &sopts) < 0)
        goto out_server;
    sdnotify_watchdog_start(d.loop, &d.watchdog);
    /* READY means "accepting checks": even with no state file we answer
     * (with the fallback), so this is not tied to /readyz. */
    sdnotify_ready();
    sdnotify_status("%s", ready ? "serving agent checks from the state file" : reason);

    uv_run(d.loop, UV_RUN_DEFAULT);
    status = 0;
    goto out_closed;

out_server:
    agent_workers_stop(d.workers);
out_checker:
    agent_checker_close(d.checker);
    http_server_close(d.http);
out_closed:
    uv_run(d.loop, UV_RUN_DEFAULT); /* let close callbacks run */
    agent_workers_stop(d.workers);  /* no-op after on_stop */
    agent_workers_free(d.workers);
    agent_checker_free(d.checker);
    metrics_registry_free(d.metrics);
    uv_loop_close(d.loop);
out_config:
    config_free(&program);
    return status;
}
