/* SPDX-License-Identifier: Apache-2.0 */
/*
 * frontdoor: which VIPs this host announces to its routers (BGP through
 * BIRD 2, docs/frontdoor.md). Pure and clock-driven: the caller evaluates
 * its serving conditions (on a director: XDP attached, generation in force
 * equal to the one built from Consul, a healthy proxy) into one verdict per
 * VIP and feeds it here every interval; this module decides what is
 * announced and why, without flapping:
 *   - every VIP runs director_health's state machine (the same code damps
 *     flapping proxies): the first verdict settles a new VIP at once, then
 *     `fall` consecutive bad verdicts withdraw it and `rise` good ones
 *     announce it again; a VIP whose announcement flaps is held withdrawn
 *     until its flap penalty decays (damping);
 *   - a VIP no longer configured is withdrawn at once;
 *   - a drained host: every VIP carries the BGP graceful-shutdown community
 *     (65535:0) until drain_withdraw_ms after the drain began, then is
 *     withdrawn; undrain announces again (subject to the verdicts).
 * The BIRD side (frontdoor_bird) turns the result into routes.
 *
 * Owns: copies of the VIP addresses and reasons; everything returned
 * points into the frontdoor and is valid until the next call into it.
 */
#ifndef DROVER_WATCHER_FRONTDOOR_H
#define DROVER_WATCHER_FRONTDOOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "director_health.h"

struct frontdoor_params {
    unsigned rise;             /* default 2 */
    unsigned fall;             /* default 2 */
    int64_t drain_withdraw_ms; /* graceful shutdown before withdraw; default 10 s */
    /* flap damping as director_health (0 = its defaults) */
    int64_t flap_half_life_ms;
    unsigned flap_suppress;
    unsigned flap_reuse;
};

void frontdoor_params_defaults(struct frontdoor_params *p);

/* One VIP's verdict this round: ok, or why not. */
struct frontdoor_verdict {
    const char *address; /* canonical IPv4/IPv6 text */
    bool ok;
    const char *reason; /* why not ok (NULL when ok) */
};

enum frontdoor_route {
    FRONTDOOR_WITHDRAWN = 0,
    FRONTDOOR_ANNOUNCED,
    FRONTDOOR_SHUTDOWN, /* announced with the graceful-shutdown community */
};

struct frontdoor_vip_status {
    const char *address;
    enum frontdoor_route route;
    const char *reason; /* why the route is what it is */
    bool suppressed;    /* held withdrawn by damping */
    uint64_t announces, withdrawals;
    int64_t changed_ms;
};

/* One change of a VIP's route in the last update. */
struct frontdoor_change {
    const char *address;
    enum frontdoor_route from, to;
    const char *reason;
};

struct frontdoor;

int frontdoor_new(const struct frontdoor_params *p, struct frontdoor **out);
void frontdoor_free(struct frontdoor *f);

/* Drain on (since now_ms) or off. */
void frontdoor_set_drain(struct frontdoor *f, bool drained, int64_t now_ms);
bool frontdoor_drained(const struct frontdoor *f);

/* One round: verdicts for every configured VIP (any order; VIPs absent
 * from v are withdrawn and forgotten). *changes lists what changed (may be
 * 0 long). 0 or -ENOMEM (the previous state is kept). */
int frontdoor_update(struct frontdoor *f, const struct frontdoor_verdict *v, size_t n,
                     int64_t now_ms, const struct frontdoor_change **changes, size_t *n_changes);

/* Every known VIP sorted by address; *out valid until the next call. */
size_t frontdoor_list(struct frontdoor *f, const struct frontdoor_vip_status **out);

const char *frontdoor_route_name(enum frontdoor_route r);

#endif
