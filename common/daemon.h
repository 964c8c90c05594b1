/* SPDX-License-Identifier: Apache-2.0 */
/*
 * daemon: the process plumbing every drover daemon repeated in its main.c:
 * SIGTERM/SIGINT (and SIGHUP if wanted) handled on the libuv loop, with
 * the stop logged, STOPPING=1 sent to systemd and the daemon's own stop
 * callback run exactly once; and the /metrics /healthz /readyz server
 * started from a --metrics-addr option (empty = none) and logged. What a
 * daemon does to stop, and when its loop may end, stays in its main.c.
 */
#ifndef DROVER_DAEMON_H
#define DROVER_DAEMON_H

#include <stdbool.h>
#include <uv.h>

#include "config.h"
#include "http_server.h"
#include "metrics.h"
#include "sdnotify.h"

/*
 * The first steps of a daemon's main(): name the log component, parse
 * argv and the environment into program's targets, and ignore SIGPIPE
 * (a peer that hangs up must not kill the daemon). Returns true when the
 * daemon should go on; false when it should return *exit_status at once:
 * 0 after --help/--version, 2 after a bad option (logged as
 * "<component>: why, exiting").
 */
bool daemon_config_parse(const struct config_program *program, const char *component, int argc,
                         char **argv, int *exit_status);

struct daemon_signal_opts {
    const char *component; /* log prefix: "exporter" */
    const char *stop_note; /* appended to the stop line, e.g. "(HAProxy keeps running)"; NULL ok */
    /* First SIGTERM/SIGINT, after the log line and STOPPING=1. Later ones
     * are ignored: a stop already under way is not restarted. */
    void (*on_stop)(void *arg, int signum);
    void (*on_hup)(void *arg); /* NULL: SIGHUP is not handled */
    void *arg;
};

/* Embedded in the daemon's state; must not move while started. */
struct daemon_signals {
    struct daemon_signal_opts opts;
    uv_signal_t term, intr, hup;
    bool started, stopping;
};

/* Start the handlers on loop. 0 or a negative libuv error (logged; the
 * handlers that did start are closed again). */
int daemon_signals_start(uv_loop_t *loop, struct daemon_signals *s,
                         const struct daemon_signal_opts *opts);
/* Close the handles so the loop can end: call it once the stop is under
 * way (it does nothing if not started or already closed). After a stop,
 * SIGTERM and SIGINT stay ignored until the process exits. */
void daemon_signals_close(struct daemon_signals *s);

/*
 * Start the metrics and health server on addr ("host:port", port 0 =
 * any) with metrics, and log "<component>: metrics and health on ADDR
 * (port N)". addr NULL or "" means none: *out = NULL, 0. On failure logs
 * "<component>: --metrics-addr: why, exiting" and returns a negative
 * errno (the caller exits). Close *out with http_server_close().
 * Requests are limited to DAEMON_HTTP_MAX_REQUEST bytes (head + body);
 * the other limits are http_server's defaults.
 */
#define DAEMON_HTTP_MAX_REQUEST (16 * 1024)
int daemon_http_start(uv_loop_t *loop, const char *component, const char *addr,
                      struct metrics_registry *metrics, struct http_server **out);

/*
 * The daemon's readiness, said the same way in both places a probe or a
 * scrape looks: /readyz of http (503 with reason while not ready; http
 * may be NULL: no server) and the ready gauge (1/0; NULL: none).
 */
void daemon_set_ready(struct http_server *http, struct metrics_gauge *ready_gauge, bool ready,
                      const char *reason);

/*
 * The stop-side of the above: close the metrics server and stop the
 * systemd watchdog, leaving both pointers NULL (either may be NULL
 * already, and watchdog may itself be NULL for a daemon without one).
 * The loop must run once more to finish the closes.
 */
void daemon_serving_stop(struct http_server **http, struct sdnotify_watchdog **watchdog);

/*
 * daemon_http_start(), then not ready with not_ready_reason until the
 * daemon calls daemon_set_ready(): how every daemon with a readiness
 * condition starts serving its metrics.
 */
int daemon_metrics_start(uv_loop_t *loop, const char *component, const char *addr,
                         struct metrics_registry *metrics, struct metrics_gauge *ready_gauge,
                         const char *not_ready_reason, struct http_server **out);

#endif
