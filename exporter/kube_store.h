/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kube_store: the exporter's copy of one Kubernetes resource (Services or
 * Nodes), as list + watch build it, without I/O.
 *
 * A (re)list fills a staging set page by page and replaces the store only
 * when its last page arrived (list_end), so a list that fails half-way
 * never removes anything. Watch events then update it in place. The store
 * knows whether its view is complete: true after a successful list, false
 * from the moment a relist starts (list_begin, e.g. after 410 Gone) until
 * that relist ends. Only a complete view may lead to KV deletions.
 *
 * Objects are kept keyed "namespace/name" (or "name" for cluster-scoped
 * resources) as compact JSON text of what the slim function keeps: parsed
 * jansson trees take about ten times the memory, and a build only parses
 * the objects whose resourceVersion it has not seen (export_build). A
 * generation counter moves on every change of content, so callers can
 * skip rebuilding when nothing changed; an object whose resourceVersion
 * did not change is unchanged.
 */
#ifndef DROVER_EXPORTER_KUBE_STORE_H
#define DROVER_EXPORTER_KUBE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "kube_watch_stream.h"

struct kube_store;

/* resource names the store in log lines ("services", "nodes"). */
struct kube_store *kube_store_new(const char *resource, bool namespaced);
void kube_store_free(struct kube_store *s);

/* What the store keeps of each object: slim(obj) (a new reference, NULL
 * on ENOMEM) instead of obj itself, e.g. kube_service_slim. Set before
 * the first list. */
typedef json_t *(*kube_store_slim_fn)(const json_t *obj);
void kube_store_set_slim(struct kube_store *s, kube_store_slim_fn slim);
/* Whether a slim function is set (list bodies may then be pruned first,
 * kube_prune.h). */
bool kube_store_slimmed(const struct kube_store *s);

/* Start a (re)list: drops any unfinished staging, marks the view
 * incomplete. -ENOMEM. */
int kube_store_list_begin(struct kube_store *s);
/* Add one page's items to the staging set. Items without a name (or of
 * the wrong shape) are skipped with a log line and counted. -EINVAL when
 * no list is in progress. */
int kube_store_list_page(struct kube_store *s, const struct kube_list *page);
/* The last page arrived: the staging set becomes the store (objects not
 * listed are gone), the view is complete, resource_version is the list's.
 * Returns 1 if the content changed, 0 if not, -EINVAL without a list. */
int kube_store_list_end(struct kube_store *s, const char *resource_version);
/* The list failed: staging is dropped, the store keeps its previous
 * objects and stays incomplete. */
void kube_store_list_abort(struct kube_store *s);

/* Apply one watch event. Returns 1 if the content changed, 0 if not
 * (same resourceVersion, BOOKMARK, delete of an unknown object), -ESTALE
 * for an expired resourceVersion (410: the view is marked incomplete and
 * the caller must relist), -EPROTO
 * for another ERROR event or an object without a name, -EBUSY while a
 * list is in progress. Every event except ERROR advances the store's
 * resource_version. */
int kube_store_apply(struct kube_store *s, const struct kube_event *ev);

/* Last resourceVersion seen (list or event), for the next watch; NULL
 * before the first list. Valid until the next call that changes it. */
const char *kube_store_resource_version(const struct kube_store *s);
bool kube_store_complete(const struct kube_store *s);
bool kube_store_listing(const struct kube_store *s);
size_t kube_store_count(const struct kube_store *s);
uint64_t kube_store_generation(const struct kube_store *s);
/* Items skipped by list pages since the store was created. */
uint64_t kube_store_skipped(const struct kube_store *s);

/* The stored object, parsed: a new reference (json_decref it), NULL if
 * absent or on ENOMEM. Counted in kube_store_loads. */
json_t *kube_store_load(struct kube_store *s, const char *key);

/* One stored object as the iteration sees it. */
struct kube_store_item {
    const char *key;
    const char *resource_version; /* "" when the object had none */
    const char *json;             /* compact JSON text */
    size_t json_len;
};

/* Calls cb for every object (unspecified order); a nonzero return stops
 * and is returned. The store must not be modified from cb; the item's
 * strings live until then. */
typedef int (*kube_store_iter_cb)(const struct kube_store_item *item, void *arg);
int kube_store_foreach(const struct kube_store *s, kube_store_iter_cb cb, void *arg);

/* Parse an item's JSON: a new reference, NULL on ENOMEM. Counted. */
json_t *kube_store_item_load(const struct kube_store *s, const struct kube_store_item *item);

/* Objects parsed back from text so far (kube_store_load/item_load): lets
 * tests see that an unchanged object was not looked at again. */
uint64_t kube_store_loads(const struct kube_store *s);

/* The store key of an object ("ns/name" or "name") into buf; -EINVAL if
 * the object has no name (or no namespace when namespaced), -ENAMETOOLONG. */
int kube_store_key(const struct kube_store *s, const json_t *obj, char *buf, size_t len);

#endif
