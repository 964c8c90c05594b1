/* SPDX-License-Identifier: Apache-2.0 */
/*
 * leader: leader election among exporter replicas of one cluster through
 * a Consul session lock on R kube/<cluster>/leader.
 *
 * A replica creates a session (TTL, behaviour release, lock-delay set
 * explicitly), renews it every session TTL/2 and tries `?acquire=` on the
 * key: whoever holds it is the leader and the only one that writes.
 * Followers watch the key (blocking query) and try again as soon as it is
 * free, and every second while Consul's lock-delay still refuses them.
 * Consul invalidates a session twice its TTL after the last renewal, so
 * the session TTL is half the configured leader TTL: a dead holder's lock
 * is free within the leader TTL, and a follower takes over within the
 * leader TTL plus the lock-delay (0 by default: writes are fenced by
 * check-session, not by the delay).
 *
 * Leadership ends at once, with a new generation number, when the
 * session is gone (renew says not found), when the key shows another
 * holder, or when the session could not be renewed for nearly a TTL (a
 * leader cut off from Consul must assume it lost the lock), or when a
 * fenced write was refused (leader_recheck). Writers compare the
 * generation before every write (sync_set_writer) and fence every txn
 * batch with check-session on the key and leader_session(), so even a
 * batch already in flight when the lock goes away is refused by Consul.
 */
#ifndef DROVER_EXPORTER_LEADER_H
#define DROVER_EXPORTER_LEADER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "consul.h"

#define LEADER_TTL_MIN_S     20
#define LEADER_TTL_DEFAULT_S 20

struct leader_config {
    const char *key;       /* R kube/<cluster>/leader */
    const char *holder;    /* pod or host name, written into the key */
    const char *version;   /* exporter version, written into the key */
    unsigned ttl_s;        /* failover bound, >= 20 (session TTL = ttl_s/2); 0 = 20 */
    unsigned lock_delay_s; /* Consul lock-delay after an invalidation */
    unsigned retry_ms;     /* acquire retry while the lock is free; 0 = 1000. A failed
                            * Consul call is retried after a jittered backoff
                            * from retry_ms / 2 up to 10 s. */
};

struct leader_stats {
    uint64_t sessions_created;
    uint64_t acquisitions;     /* became leader */
    uint64_t losses;           /* stopped being leader (any reason) */
    uint64_t renew_failures;   /* renew requests that failed */
    uint64_t acquire_attempts; /* ?acquire= requests */
};

/* leader: whether this replica may write now; generation moves on every
 * change. Called on the loop, never from inside leader_* calls except
 * leader_recheck (its step-down). */
typedef void (*leader_change_cb)(void *arg, bool leader, uint64_t generation);

struct leader;

int leader_new(uv_loop_t *loop, struct consul_client *consul, const struct leader_config *cfg,
               leader_change_cb cb, void *arg, struct leader **out);
void leader_start(struct leader *l);
bool leader_is_leader(const struct leader *l);
/* The session holding the lock while leader, else NULL. Valid until the
 * next leader change callback. Writers fence their txns with it
 * (check-session on the leader key). */
const char *leader_session(const struct leader *l);
/* A writer learned that the lock may be lost (Consul refused a fenced
 * write): step down now (cb with false, new generation), check the
 * session with a renew (gone: start over with a new one) and try to
 * acquire again; a lock that is still ours is re-taken with yet another
 * generation, which makes the writer re-read before writing. */
void leader_recheck(struct leader *l, const char *why);
uint64_t leader_generation(const struct leader *l);
/* True while the session is known alive (created or renewed within its
 * deadline); a follower without it cannot take over and is not ready.
 * Changes are passed to cb (leader false, same generation). */
bool leader_session_ok(const struct leader *l);
/* True once the first acquire attempt was answered (leader or follower). */
bool leader_decided(const struct leader *l);
const struct leader_stats *leader_stats(const struct leader *l);

/* Graceful stop: leadership ends now (cb with false), then the lock is
 * released and the session destroyed so a follower takes over without
 * waiting for the TTL. done runs when that finished or failed. */
void leader_shutdown(struct leader *l, void (*done)(void *arg), void *arg);
/* After leader_shutdown's done (or without it) and before freeing the
 * Consul client. Frees asynchronously. */
void leader_free(struct leader *l);

#endif
