/* SPDX-License-Identifier: Apache-2.0 */
/* daemon: see daemon.h. */
#include "daemon.h"

#include <signal.h>
#include <string.h>

#include "log.h"
#include "sdnotify.h"

bool daemon_config_parse(const struct config_program *program, const char *component, int argc,
                         char **argv, int *exit_status)
{
    char err[512];
    int rc;

    log_set_component(component);
    rc = config_parse(program, argc, argv, NULL, err, sizeof(err));
    if (rc == CONFIG_HELP_SHOWN) {
        *exit_status = 0;
        return false;
    }
    if (rc < 0) {
        log_error("%s: %s, exiting", component, err);
        *exit_status = 2;
        return false;
    }
    signal(SIGPIPE, SIG_IGN);
    return true;
}

static void on_stop_signal(uv_signal_t *h, int signum)
{
    struct daemon_signals *s = h->data;
    if (s->stopping)
        return;
    s->stopping = true;
    log_info("%s: %s received, stopping%s%s", s->opts.component, strsignal(signum),
             s->opts.stop_note ? " " : "", s->opts.stop_note ? s->opts.stop_note : "");
    sdnotify_stopping();
    if (s->opts.on_stop)
        s->opts.on_stop(s->opts.arg, signum);
}

static void on_hup_signal(uv_signal_t *h, int signum)
{
    struct daemon_signals *s = h->data;
    (void)signum;
    if (!s->stopping && s->opts.on_hup)
        s->opts.on_hup(s->opts.arg);
}

int daemon_signals_start(uv_loop_t *loop, struct daemon_signals *s,
                         const struct daemon_signal_opts *opts)
{
    int rc;
    memset(s, 0, sizeof(*s));
    s->opts = *opts;
    uv_signal_init(loop, &s->term);
    uv_signal_init(loop, &s->intr);
    uv_signal_init(loop, &s->hup);
    s->term.data = s->intr.data = s->hup.data = s;
    s->started = true;
    if ((rc = uv_signal_start(&s->term, on_stop_signal, SIGTERM)) < 0 ||
        (rc = uv_signal_start(&s->intr, on_stop_signal, SIGINT)) < 0 ||
        (opts->on_hup && (rc = uv_signal_start(&s->hup, on_hup_signal, SIGHUP)) < 0)) {
        log_error("%s: cannot handle signals: %s", opts->component, uv_strerror(rc));
        daemon_signals_close(s);
        return rc;
    }
    return 0;
}

void daemon_signals_close(struct daemon_signals *s)
{
    if (!s->started)
        return;
    s->started = false;
    uv_close((uv_handle_t *)&s->term, NULL);
    uv_close((uv_handle_t *)&s->intr, NULL);
    uv_close((uv_handle_t *)&s->hup, NULL);
    /* Closing the last watcher gives the signal its default action back;
     * during a stop that would let a repeated SIGTERM (a service manager
     * or test insisting) kill a daemon that is about to exit cleanly. */
    if (s->stopping) {
        signal(SIGTERM, SIG_IGN);
        signal(SIGINT, SIG_IGN);
    }
}

int daemon_http_start(uv_loop_t *loop, const char *component, const char *addr,
                      struct metrics_registry *metrics, struct http_server **out)
{
    char err[512];
    *out = NULL;
    if (!addr || !*addr)
        return 0;
    /* Only GET/HEAD of the built-in paths: a small request limit keeps the
     * memory a connection can pin small (see http_server.h). */
    struct http_server_options hopts = {
        .listen = addr, .metrics = metrics, .max_request_bytes = DAEMON_HTTP_MAX_REQUEST};
    int rc = http_server_start(loop, &hopts, out, err, sizeof(err));
    if (rc < 0) {
        log_error("%s: --metrics-addr: %s, exiting", component, err);
        *out = NULL;
        return rc;
    }
    log_info("%s: metrics and health on %s (port %d)", component, addr, http_server_port(*out));
    return 0;
}

void daemon_set_ready(struct http_server *http, struct metrics_gauge *ready_gauge, bool ready,
                      const char *reason)
{
    metrics_gauge_set(ready_gauge, ready ? 1 : 0);
    if (http)
        http_server_set_ready(http, ready, ready ? NULL : reason);
}

int daemon_metrics_start(uv_loop_t *loop, const char *component, const char *addr,
                         struct metrics_registry *metrics, struct metrics_gauge *ready_gauge,
                         const char *not_ready_reason, struct http_server **out)
{
    int rc = daemon_http_start(loop, component, addr, metrics, out);

    if (rc == 0)
        daemon_set_ready(*out, ready_gauge, false, not_ready_reason);
    return rc;
}

void daemon_serving_stop(struct http_server **http, struct sdnotify_watchdog **watchdog)
{
    http_server_close(*http);
    *http = NULL;
    if (watchdog) {
        sdnotify_watchdog_stop(*watchdog);
        *watchdog = NULL;
    }
}
