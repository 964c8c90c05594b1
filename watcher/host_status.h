/* SPDX-License-Identifier: Apache-2.0 */
/*
 * host_status: keeps this watcher's R status/<host>/<role> entry
 * (kv_status.h, docs/kv-schema.md) in Consul. The entry is written with
 * ?acquire= on a session of its own (TTL, behavior "delete", no lock
 * delay), so it disappears when the host does: Consul deletes it once the
 * session is not renewed (Consul may take up to twice the TTL) or when
 * the watcher stops (the session is destroyed).
 *
 * The caller says when something it reports changed; the entry is
 * rewritten (coalesced, only when its bytes differ) and the session renewed
 * every TTL/3. A renewal goes before any write and is never skipped: one
 * due while a write is in flight goes out when the write is answered, and
 * a failed one is retried within 1-1.5 s, so the session survives a few
 * seconds of starvation or a slow Consul (TTL/3 per renewal to spare).
 * Other Consul failures are logged and retried at the next tick; a lost
 * session (Consul restarted, TTL missed) is created again. A write refused
 * because another session holds the key (this watcher's previous run,
 * killed: its session lives until its TTL runs out) keeps the session once
 * a renewal shows it alive, and is tried again every TTL/3.
 */
#ifndef DROVER_WATCHER_HOST_STATUS_H
#define DROVER_WATCHER_HOST_STATUS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "consul.h"

struct host_status;

/* Build the record now (kv_status_encode): new reference, NULL to skip. */
typedef json_t *(*host_status_fill_fn)(void *arg);

struct host_status_opts {
    const char *key; /* the full key (kv_status_key) */
    unsigned ttl_s;  /* session TTL, 10..86400 */
    host_status_fill_fn fill;
    /* A renewal said the session is gone: Consul lost it (restarted
     * empty, restored) or it expired while Consul was out of reach.
     * Either way what was read from Consul before may be from another
     * history: the caller reads its watches afresh. May be NULL. */
    void (*session_lost)(void *arg);
    void *arg;
};

/* --host-name (alias --status-host) / --status-ttl as both watcher modes take them: *host
 * set to the hostname when unset or empty (malloc'd), then checked to be
 * one key segment; ttl_ms within Consul's 10s..24h. 0, -EINVAL (err says
 * which option) or -ENOMEM. */
int host_status_check_opts(char **host, int64_t ttl_ms, char *err, size_t errlen);

/* Start on loop with client c (borrowed; must outlive the publisher until
 * host_status_stop's callback). 0, -EINVAL or -ENOMEM. */
int host_status_start(uv_loop_t *loop, struct consul_client *c, const struct host_status_opts *o,
                      struct host_status **out);
/* Something reported changed: rewrite the entry soon. NULL ok. */
void host_status_changed(struct host_status *hs);
/* Destroy the session (Consul deletes the entry), then call done (also
 * when that fails or there is no session) and free hs. NULL hs: done runs
 * at once. */
void host_status_stop(struct host_status *hs, void (*done)(void *arg), void *arg);

#endif
