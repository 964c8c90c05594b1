/* SPDX-License-Identifier: Apache-2.0 */
/*
 * consul_feed: the watcher's view of Consul. Blocking-query watches on
 * prefixes (never one per key: Consul caps connections per client), cut
 * so that a change wakes only the watchers it concerns
 * (docs/kv-schema.md, "What a watcher watches"):
 *
 *   <root>haproxy/<cluster>/           the proxy-fleet cluster served
 *   <root>maintenance/
 *   <root>kube/<c>/node-shards/<shard>/  for every consumed kube cluster <c>,
 *   <root>kube/<c>/nodes/              its 16 node shards and the flat layout
 *   <root>kube/<c>/services/<ns>/<svc>/  one per kube service the HAProxy
 *                                      service definitions reference
 *
 * The service watches follow the definitions: when haproxy/<cluster>/
 * changes, the referenced services are derived again, new prefixes are
 * watched and unreferenced ones stopped. More than service_watches of
 * them are watched per namespace (kube/<c>/services/<ns>/), and if that
 * is still too many, as kube/<c>/services/ whole.
 *
 * Once every watch has delivered (a partial view is never turned into a
 * snapshot: a missing prefix would look like "everything removed", so a
 * newly referenced service is read before the definition that references
 * it takes effect), each change rebuilds one immutable snapshot from all
 * the prefixes' last values and hands it to on_snapshot. Errors (Consul
 * down, 5xx, ACL) are retried with backoff by the watches themselves and
 * reported through on_error; the last good snapshot stays in force (fail
 * static). After an error or an index reset (Consul restarted, restored
 * from a snapshot, answering from another server) a watch reads its
 * prefix in full again; no snapshot is built until every fixed prefix
 * (haproxy/<cluster>/, maintenance/, every node prefix) has answered that
 * re-read, so a tree half from before and half from after
 * a loss (maintenance/ read empty while the services still show) is
 * never handed on.
 */
#ifndef DROVER_WATCHER_CONSUL_FEED_H
#define DROVER_WATCHER_CONSUL_FEED_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "consul.h"
#include "kv_model.h"
#include "snapshot.h"

struct consul_feed;

/* --service-watches default: leaves most of Consul's 200 connections per
 * client to the host's other programs. */
#define CONSUL_FEED_SERVICE_WATCHES_DEFAULT 32

/* snap is owned by the callee. */
typedef void (*consul_feed_snapshot_fn)(void *arg, struct snapshot *snap);
/* A watch failed (message names prefix and error; retried automatically). */
typedef void (*consul_feed_error_fn)(void *arg, const char *prefix, int err, const char *msg);

struct consul_feed_opts {
    uv_loop_t *loop;                   /* the Consul client's loop */
    const struct kv_model_opts *model; /* borrowed; must outlive the feed */
    unsigned wait_s;                   /* blocking query wait, 0 = default */
    /* Most kube service prefixes watched one service (then one namespace)
     * each; 0: every consumed cluster's kube/<c>/services/ whole. */
    unsigned service_watches;
    consul_feed_snapshot_fn on_snapshot;
    consul_feed_error_fn on_error;
    /* The snapshot in force (bad entries fall back to its values); may be
     * NULL. */
    const struct snapshot *(*current)(void *arg);
    /* This host's name: a staged change naming it as a canary host is
     * applied here (canary.h); NULL: never a canary. Borrowed. */
    const char *host;
    /* The canary version in force changed while the inputs did not (no
     * snapshot to deliver): the status entry has news. May be NULL. */
    void (*on_canary)(void *arg);
    void *arg;
};

struct consul_feed_stats {
    uint64_t snapshots;      /* built and delivered */
    uint64_t unchanged;      /* rebuilds skipped: same inputs */
    uint64_t errors;         /* watch errors */
    uint64_t reread_waits;   /* times snapshots waited for re-reads after an error or reset */
    uint64_t forced_rereads; /* times the fixed prefixes were made to read afresh (a watch's
                              * error, a fixed one's index gone back, consul_feed_reread) */
    bool complete;           /* every prefix delivered at least once */
    bool healthy;            /* no watch in error since its last delivery */
    size_t watches;          /* prefixes watched now */
    uint64_t kv_index;       /* highest ModifyIndex of the entries of the last snapshot delivered */
    uint64_t canary_version; /* staged version this host runs as a canary (0: none) */
    uint64_t canary_bad;     /* staged records skipped: they did not decode */
};

int consul_feed_start(struct consul_client *c, const struct consul_feed_opts *o,
                      struct consul_feed **out);
/* Stops every watch; the feed is freed once the loop closed its timer. */
void consul_feed_stop(struct consul_feed *f);
/* Read every fixed prefix afresh (no snapshot until each has answered):
 * the caller learned that Consul may have lost or restored its state
 * (why: for the log line), e.g. a session of the host is gone. A watch
 * error or an index gone back does the same by itself. */
void consul_feed_reread(struct consul_feed *f, const char *why);
void consul_feed_get_stats(const struct consul_feed *f, struct consul_feed_stats *out);

/* The prefixes every feed for these options watches, in this order:
 * haproxy/<cluster>/ (the definitions), maintenance/, then per consumed
 * cluster kube/<c>/nodes/ and kube/<c>/node-shards/<shard>/ for every
 * shard in order (kv_key.h). Caller frees each string and the array. 0 or -ENOMEM. */
int consul_feed_fixed_prefixes(const struct kv_model_opts *o, char ***out, size_t *n);

/* The kube service prefixes the definitions defs (the answer for
 * haproxy/<cluster>/) reference, sorted and unique, at the finest
 * granularity that fits service_watches (see top; 0: every consumed
 * cluster's kube/<c>/services/ whole). A definition that does not decode
 * is what snapshot_build replaces by its last good value: its references
 * are taken from cur, the snapshot in force (may be NULL). host: this
 * host's name, so that a staged change naming it as a canary host counts
 * (NULL: never a canary, as `render` reads). A feed and a
 * one-shot read (`render`) read the same prefixes this way. Caller frees
 * each string and the array. 0 or -ENOMEM. */
int consul_feed_service_prefixes(const struct kv_model_opts *o, const char *host,
                                 unsigned service_watches, const struct consul_kv_list *defs,
                                 const struct snapshot *cur, char ***out, size_t *n);

/* Entries of several KV lists as snapshot input (copies). 0 or -ENOMEM. */
int consul_feed_entries(const struct consul_kv_list *const *lists, size_t n_lists,
                        struct snapshot_entry **out, size_t *n);

#endif
