/* SPDX-License-Identifier: Apache-2.0 */
/*
 * director_health: the director host's own health checks of every proxy
 * (HTTP GET http://<address>:<port><path> through curl_uv on the libuv
 * loop), optionally combined with Consul's health of the proxy service.
 *
 * Per proxy a pure state machine decides what the table sees:
 *   - the first result settles an unknown proxy at once (a new proxy is
 *     assumed healthy until then, so adding one is not delayed);
 *   - afterwards `fall` consecutive failures take it down and `rise`
 *     consecutive successes bring it back;
 *   - flapping is damped like BGP route flap damping: every up/down change
 *     adds a penalty (1000) that halves every half-life; above the suppress
 *     threshold the proxy is reported unhealthy until the penalty decays
 *     below the reuse threshold, whatever its checks say.
 * The state machine takes the time as an argument (tests drive it with a
 * fake clock). A check answers OK with HTTP 200..399 within the timeout.
 * The timeout is judged only after what already arrived was read, and a
 * check during which this process itself could not act for half the
 * timeout or a second, whichever is less (stopped, starved, a long
 * callback on the loop: loop_lag_own_fault in loop_lag.h) is counted late
 * and not judged either way.
 *
 * Owns: its timers and curl handles; on_change runs on the loop whenever
 * the effective health of a proxy changes.
 */
#ifndef DROVER_WATCHER_DIRECTOR_HEALTH_H
#define DROVER_WATCHER_DIRECTOR_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "consul.h"

struct curl_uv;
struct director_inputs;

struct director_health_params {
    int64_t interval_ms; /* default 2000 */
    int64_t timeout_ms;  /* default 1000 */
    unsigned rise;       /* default 3 */
    unsigned fall;       /* default 3 */
    /* flap damping; 0 = defaults 30 s, 2500, 1000 (penalty per change 1000) */
    int64_t flap_half_life_ms;
    unsigned flap_suppress;
    unsigned flap_reuse;
};

/* Fill zero fields with the defaults. */
void director_health_params_defaults(struct director_health_params *p);

enum director_health_state {
    DIRECTOR_HEALTH_UNKNOWN = 0,
    DIRECTOR_HEALTH_UP = 1,
    DIRECTOR_HEALTH_DOWN = 2,
};

struct director_health_sm {
    enum director_health_state state;
    unsigned ok_run, fail_run; /* consecutive results of the other kind */
    double penalty;            /* at penalty_ms */
    int64_t penalty_ms;
    bool suppressed;
    uint64_t changes; /* up/down changes */
    int64_t changed_ms;
};

void director_health_sm_init(struct director_health_sm *sm);
/* One check result at now_ms. Returns true when director_health_sm_healthy
 * changed. */
bool director_health_sm_result(struct director_health_sm *sm,
                               const struct director_health_params *p, bool ok, int64_t now_ms);
/* Decay the flap penalty to now_ms (ends suppression when it fell below
 * reuse). Returns true when director_health_sm_healthy changed. */
bool director_health_sm_tick(struct director_health_sm *sm, const struct director_health_params *p,
                             int64_t now_ms);
/* What the table uses: unknown and up count as healthy unless suppressed. */
bool director_health_sm_healthy(const struct director_health_sm *sm);
double director_health_sm_penalty(const struct director_health_sm *sm,
                                  const struct director_health_params *p, int64_t now_ms);
const char *director_health_state_name(enum director_health_state s);

/* ---- the checker ---- */

struct director_health;
typedef void (*director_health_change_fn)(void *arg, const char *host, bool healthy);

struct director_health_opts {
    struct director_health_params params;
    uint16_t default_port;    /* when the proxy entry has none */
    const char *default_path; /* copied */
    director_health_change_fn on_change;
    void *arg;
    /* The loop's stall measurement (loop_lag.h), shared with the Consul
     * client on the same loop; a reference is kept. NULL: measure the
     * loop here. */
    struct loop_lag *loop_lag;
};

struct director_health_status {
    const char *host;
    enum director_health_state state;
    bool healthy; /* effective (includes suppression and Consul) */
    bool suppressed;
    bool consul_critical;
    uint64_t checks, failures, changes;
    uint64_t late; /* checks not judged: this process stalled (not in checks) */
    char last_error[128];
};

/* 0, -ENOMEM or a negative libuv error. */
int director_health_new(uv_loop_t *loop, struct curl_uv *cu, const struct director_health_opts *o,
                        struct director_health **out);
/* Check exactly the proxies of in and of also (may be NULL: the inputs in
 * force, so that a KV view emptied or held back by the guard never stops
 * the checks of the proxies that carry traffic) that are not inactive
 * (new ones start, removed ones stop; a changed address/port/path
 * restarts the proxy's state; in wins over also for the same host).
 * 0 or -ENOMEM. */
int director_health_set_targets(struct director_health *h, const struct director_inputs *in,
                                const struct director_inputs *also);
/* Start a proxy known from a snapshot in this state instead of unknown
 * (call before set_targets). */
void director_health_seed(struct director_health *h, const char *host, bool healthy);
/* Consul's view of the proxy service: a proxy whose address appears only
 * in critical entries counts as unhealthy. NULL clears it. */
void director_health_set_consul(struct director_health *h, const struct consul_health_list *l);
/* Effective health of host (true for unknown hosts). */
bool director_health_healthy(const struct director_health *h, const char *host);
/* Status of every checked proxy; *out valid until the next call into h. */
size_t director_health_list(struct director_health *h, struct director_health_status **out);
void director_health_free(struct director_health *h);

#endif
