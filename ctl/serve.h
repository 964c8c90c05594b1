/* SPDX-License-Identifier: Apache-2.0 */
/*
 * serve: droverctl's HTTP endpoint for Slack slash commands. A POST to
 * /slack/command is checked in this order, and anything refused changes
 * nothing:
 *
 *   1. signature and timestamp (slack_verify)          -> 401
 *   2. replay of a signature seen within the window      -> 401
 *   3. form body, then user_id / channel_id allow-lists  -> 400 / 403
 *   4. `text` split and parsed as a droverctl command (source "slack",
 *      author = the Slack user name); a bad command is answered 200 with
 *      an ephemeral message, as Slack expects.
 *
 * The command then runs through ctl_execute() on libuv's thread pool
 * (blocking Consul calls on a private loop per command) while the HTTP
 * response waits, deferred (http_response_defer), so the server's loop is
 * never blocked. Changes are answered "in_channel" so the channel sees
 * them; everything else is "ephemeral".
 */
#ifndef DROVER_CTL_SERVE_H
#define DROVER_CTL_SERVE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "commands.h"
#include "consul.h"

struct ctl_serve;
struct metrics_registry;

struct ctl_serve_opts {
    const char *listen;
    const void *secret; /* signing secret bytes (copied) */
    size_t secret_len;
    char *const *allow_users; /* Slack user IDs; "*" = anyone */
    size_t n_allow_users;
    char *const *allow_channels; /* channel IDs; "*" = any channel */
    size_t n_allow_channels;
    const struct ctl_settings *settings; /* borrowed: must outlive the server */
    const struct ctl_limits *limits;     /* borrowed */
    const struct consul_config *consul;  /* borrowed */
    struct metrics_registry *metrics;    /* may be NULL */
};

int ctl_serve_start(uv_loop_t *loop, const struct ctl_serve_opts *o, struct ctl_serve **out,
                    char *err, size_t errlen);
int ctl_serve_port(const struct ctl_serve *s);
/* Stop listening; commands still running finish and their answers are
 * dropped if the client is gone. Frees s once the loop has run. */
void ctl_serve_stop(struct ctl_serve *s);

#endif
