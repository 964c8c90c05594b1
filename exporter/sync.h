/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sync: the exporter's reconciler. It turns the Service and Node stores
 * (kept current by kube_client's reflectors) into this cluster's Consul KV
 * entries and writes only the differences:
 *
 *   desired  export_build_desired() over both stores (grace state kept)
 *   current  a recursive read of R kube/<cluster>/ (and the KSE prefix),
 *            then kept up to date from the results of our own writes, so
 *            an event costs one build + diff + one small txn, not a
 *            re-read; re-read in full on a resync, on gaining leadership
 *            and after any failed write (a 409 means someone else wrote)
 *   write    kv_layout_diff() ops as check-and-set /v1/txn batches of at
 *            most 64, sent one after the other; before each batch the
 *            writer generation is checked, so a leader that lost its lock
 *            stops between batches at once. With fence_key set, each
 *            batch is 63 ops + a check-session guard on the leader key,
 *            so Consul itself refuses the batch in flight when the lock
 *            went away meanwhile; such a refusal is not a cas conflict:
 *            writing stops and on_fence_lost asks the leader to step
 *            down and re-check. A batch Consul refuses as too large
 *            (413: over txn_max_req_len / kv_max_value_size) is split in
 *            halves until the entry that alone is too large is found;
 *            that entry is skipped, counted and logged naming its key,
 *            the rest is written and the round counts as a success (so
 *            /readyz is unaffected). The same key with the same value is
 *            not sent again until its value changes. Deletes only when both stores
 *            hold a complete view. `meta` goes along per
 *            kv_layout_meta_needs_write(), so a resync that changes
 *            nothing writes nothing.
 *
 * Changes are coalesced for a few milliseconds; a NotReady node's grace
 * period end arms a timer for the rebuild that withdraws it.
 */
#ifndef DROVER_EXPORTER_SYNC_H
#define DROVER_EXPORTER_SYNC_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "consul.h"
#include "export_build.h"
#include "kube_store.h"
#include "kv_layout.h"

struct sync_config {
    const struct kv_layout *layout;
    const struct export_options *service_opts;
    const struct node_options *node_opts;
    int64_t grace_ms;       /* NotReady grace period; 0 = none */
    unsigned coalesce_ms;   /* wait after a change before a round; 0 = 5 */
    int64_t resync_ms;      /* full re-read of Consul + diff this often; 0 = never */
    const char *version;    /* exporter version for meta */
    unsigned retry_base_ms; /* after a failed read/write; 0 = 200 */
    unsigned retry_cap_ms;  /* 0 = 10000 */
    /* Leader key: every write batch carries a check-session guard on it
     * with the session given to sync_set_writer(), so Consul refuses the
     * batch of a leader whose lock is gone. NULL: unfenced (no election). */
    const char *fence_key;
    /* Consul refused a batch because fence_key is no longer locked by our
     * session: this process stopped writing; the leader must step down
     * and re-check (leader_recheck). Called with sync_new's arg. */
    void (*on_fence_lost)(void *arg);
};

struct sync_stats {
    uint64_t rounds;      /* build + diff rounds */
    uint64_t noop_rounds; /* rounds that had nothing to write */
    uint64_t reads;       /* full recursive reads of the prefixes */
    uint64_t read_failures;
    uint64_t txns;          /* /v1/txn batches committed */
    uint64_t txn_failures;  /* batches that failed (any reason) */
    uint64_t txn_conflicts; /* of which 409: someone else wrote */
    uint64_t kv_sets;       /* entries written (meta included) */
    uint64_t kv_deletes;
    uint64_t aborted_not_leader; /* rounds or batches dropped: leadership lost */
    uint64_t fence_refusals;     /* batches Consul refused: lock not held by our session */
    uint64_t txn_splits;         /* batches split after a 413 (request too large) */
    uint64_t kv_refused;         /* entries Consul refused alone (413): skipped */
    uint64_t kv_refused_now;     /* entries currently skipped (refused, unchanged since) */
    int64_t last_sync_unix;      /* last round that left KV equal to a complete view; 0 = never */
    struct export_build_result last; /* counts of the last build */
};

/* A Service or Node refused by the build (see export_skip_cb). */
typedef void (*sync_skip_cb)(const char *kind, const char *key, const struct kube_reason *why,
                             void *arg);
/* After every round that left KV equal to a complete view. */
typedef void (*sync_synced_cb)(void *arg);

struct sync;

int sync_new(uv_loop_t *loop, struct consul_client *consul, struct kube_store *services,
             struct kube_store *nodes, const struct sync_config *cfg, sync_skip_cb on_skip,
             sync_synced_cb on_synced, void *arg, struct sync **out);
/* A store changed (or completed a list): a round runs after coalesce_ms. */
void sync_kick(struct sync *s);
/* Forget the cached KV view: the next round re-reads the prefixes. */
void sync_resync(struct sync *s);
/* Whether this process may write, the leadership generation that allows
 * it and the session holding the leader lock (copied; the fence of every
 * batch when cfg.fence_key is set, which then requires it to write).
 * Gaining it triggers a full resync; losing it stops any write in
 * progress before its next batch. */
void sync_set_writer(struct sync *s, bool may_write, uint64_t generation, const char *session);
bool sync_is_writer(const struct sync *s);
const struct sync_stats *sync_stats(const struct sync *s);
/* Stop timers and ignore callbacks still to come (call before freeing the
 * Consul client, whose cancellations run our callbacks). */
void sync_stop(struct sync *s);
/* After the Consul client is freed. Frees asynchronously. */
void sync_free(struct sync *s);

#endif
