/* SPDX-License-Identifier: Apache-2.0 */
/*
 * frontdoor_agent: the front door inside a running daemon (docs/frontdoor.md).
 * The daemon evaluates its serving conditions into verdicts every interval
 * and hands them to frontdoor_agent_round(); the agent decides through
 * frontdoor.h, logs every announce/withdraw with its reason, counts them,
 * and when the routes changed (or the last attempt failed) renders the
 * BIRD include, checks and installs it and asks BIRD to reconfigure
 * (frontdoor_bird) on the libuv thread pool, retrying every round while
 * BIRD is missing, refusing or answering an error (logged with BIRD's
 * words). Every round also rewrites the state file: what is announced and
 * why, plus the time of the round, which is the lease the guard
 * (frontdoor_agent_guard, `drover-watcher director frontdoor-guard`) reads
 * to know whether the daemon is alive.
 *
 * Owns: its copies of the options, the frontdoor and the in-flight job.
 */
#ifndef DROVER_WATCHER_FRONTDOOR_AGENT_H
#define DROVER_WATCHER_FRONTDOOR_AGENT_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "frontdoor.h"

struct metrics_emitter;
struct metrics_registry;

struct frontdoor_agent_opts {
    const char *bird_socket;  /* BIRD's control socket */
    const char *bird_include; /* the file drover owns */
    const char *bird_bin;     /* for `bird -p -c`; NULL = "bird" */
    const char *state_file;   /* NULL = none (no guard possible) */
    int bird_timeout_ms;      /* per control-socket exchange; 0 = 5000 */
    struct frontdoor_params params;
};

struct frontdoor_agent;

int frontdoor_agent_new(uv_loop_t *loop, const struct frontdoor_agent_opts *o,
                        struct metrics_registry *metrics, struct frontdoor_agent **out);
/* Stop: waits for nothing (a job in flight finishes on its own and is then
 * freed); the routes stay as they are (see docs/frontdoor.md), and the
 * state file says "stopped" so the guard is in charge at once. */
void frontdoor_agent_free(struct frontdoor_agent *a);

/* One round of verdicts at now_ms (monotonic or wall, as long as it is one
 * clock). */
void frontdoor_agent_round(struct frontdoor_agent *a, const struct frontdoor_verdict *v, size_t n,
                           int64_t now_ms);
void frontdoor_agent_set_drain(struct frontdoor_agent *a, bool drained, int64_t now_ms);

/* Announced (or in graceful shutdown) VIP count, and whether BIRD has what
 * was decided. */
size_t frontdoor_agent_announced(struct frontdoor_agent *a);
bool frontdoor_agent_in_sync(const struct frontdoor_agent *a);
bool frontdoor_agent_drained(const struct frontdoor_agent *a);
/* Every VIP's status (frontdoor_list); valid until the next call into a. */
size_t frontdoor_agent_list(struct frontdoor_agent *a, const struct frontdoor_vip_status **out);

/* The guard, for a host whose daemon may be dead: when state_file was
 * refreshed within lease_ms, the daemon is in charge (0, *acted false).
 * Otherwise, when still_serving is false, every route is withdrawn (empty
 * include, BIRD reconfigured; *acted true). 0 or -errno with err. */
int frontdoor_agent_guard(const struct frontdoor_agent_opts *o, int64_t lease_ms,
                          bool still_serving, bool *acted, char *err, size_t errlen);

/* Read the state file: the time of the last round (unix ms). */
int frontdoor_agent_state_time(const char *state_file, int64_t *refreshed_unix_ms);

#endif
