/* SPDX-License-Identifier: Apache-2.0 */
/*
 * frontdoor_anycast: the front door of a proxy host without a director tier
 * (anycast, Booking.com/Paderborn style; docs/frontdoor.md). A VIP is
 * served while every HAProxy frontend (or listen section) bound to it is
 * OPEN and each backend it uses has a server UP. Pure: the caller hands in
 * the HAProxy configuration files (as the watcher renders them into
 * --config-dir) and the answer of `show stat`; out come one verdict per VIP
 * for frontdoor.h.
 *
 * Owns: everything it returns (free with frontdoor_anycast_free).
 */
#ifndef DROVER_WATCHER_FRONTDOOR_ANYCAST_H
#define DROVER_WATCHER_FRONTDOOR_ANYCAST_H

#include <stddef.h>
#include <stdint.h>

#include "frontdoor.h"

struct frontdoor_anycast;

/* Empty set. 0 or -ENOMEM. */
int frontdoor_anycast_new(struct frontdoor_anycast **out);
void frontdoor_anycast_free(struct frontdoor_anycast *a);

/* Add one HAProxy service (its own HAProxy process, as the watcher runs
 * them): the frontends of its configuration file - `frontend`/`listen`
 * sections, their `bind ADDR:PORT` lines (IP addresses only; wildcards and
 * unix sockets bind no VIP) and `default_backend`/`use_backend` names (a
 * listen section is its own backend) - judged by stat, the answer of its
 * `show stat` (CSV); stat NULL: that HAProxy did not answer. 0 or -ENOMEM. */
int frontdoor_anycast_add_service(struct frontdoor_anycast *a, const char *service,
                                  const char *config, size_t config_len, const char *stat,
                                  size_t stat_len);

/* Cumulative sessions (`stot`) of the frontends that bind a VIP, summed
 * over the services added: the host's packet counter for droverctl host
 * drain --wait (it stands still once no client arrives). */
uint64_t frontdoor_anycast_sessions(const struct frontdoor_anycast *a);

/* One verdict per VIP bound by any service, sorted: ok when every frontend
 * bound to it is OPEN and each of their backends has a server UP.
 * *v[0..*n) valid until the next call or free. 0 or -ENOMEM. */
int frontdoor_anycast_verdicts(struct frontdoor_anycast *a, const struct frontdoor_verdict **v,
                               size_t *n);

#endif
