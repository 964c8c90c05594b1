/* SPDX-License-Identifier: Apache-2.0 */
/*
 * export_build: the complete desired KV entries of one cluster, built from
 * the Service and Node stores (kube_store) with kube_objects and
 * kv_layout, plus the counts that go into `meta` and the metrics. Pure:
 * the caller passes the time.
 *
 * Between builds it keeps an export_state: the per-node NotReady grace
 * state (a node's state lives as long as the node is in the store) and
 * every Service's KV entries, cached by the Service's resourceVersion, so
 * a rebuild after one event recomputes only what changed. The result says
 * when a grace period ends (recheck_at), so the daemon can arm a timer and
 * rebuild then. A state belongs to one layout and one set of options:
 * create a new one when they change.
 *
 * A Service whose new version is invalid keeps its last good entries
 * (fail static, like a controller that keeps the last applied config):
 * the keys it had are put in the desired map as keep entries, so the
 * diff neither rewrites nor deletes them, and it is counted in
 * skipped_services and kept_services. The last good entries come from
 * the state and, after a restart, from the Service's own ports (its
 * drover keys; its KSE keys are known only from the state). Deleting the
 * Service, or opting it out, removes its entries as usual.
 */
#ifndef DROVER_EXPORTER_EXPORT_BUILD_H
#define DROVER_EXPORTER_EXPORT_BUILD_H

#include <stddef.h>
#include <stdint.h>

#include "kube_objects.h"
#include "kube_store.h"
#include "kv_layout.h"

struct export_state;

struct export_state *export_state_new(void);
void export_state_free(struct export_state *st);
/* Nodes with a grace state (the nodes of the last build). */
size_t export_state_nodes(const struct export_state *st);
/* Services whose entries are cached (those of the last build). */
size_t export_state_services(const struct export_state *st);

struct export_build_params {
    const struct kv_layout *layout;
    const struct export_options *service_opts;
    const struct node_options *node_opts;
    int64_t now;   /* monotonic, any unit */
    int64_t grace; /* NotReady grace period, same unit; 0 = none */
};

struct export_build_result {
    size_t services;         /* Services exported */
    size_t service_ports;    /* their port records */
    size_t not_exported;     /* not opted in, or of another type */
    size_t skipped_services; /* invalid: nothing new exported for them */
    size_t kept_services;    /* of those, keeping their last good entries */
    size_t nodes;
    size_t eligible_nodes; /* effectively eligible (grace included) */
    size_t nodes_in_grace; /* eligible only thanks to the grace period */
    size_t skipped_nodes;
    int64_t recheck_at; /* earliest end of a grace period, INT64_MAX if none */
};

/* Called for a refused (invalid) Service or Node, with its store key and
 * the reason; the daemon logs and counts it. A Service is reported once
 * per resourceVersion (cached verdicts are not reported again; they stay
 * in res->skipped_services); a Node on every build (nodes are not
 * cached, and a Node is refused only without a name). NULL: refused
 * objects are logged at debug level. */
typedef void (*export_skip_cb)(const char *kind, const char *key, const struct kube_reason *why,
                               void *arg);

/* Adds every desired entry to desired (which the caller initialised and
 * later diffs with kv_layout_diff), fills res. Updates state.
 * -ENOMEM; entries already added stay in desired (the caller drops it). */
int export_build_desired(const struct export_build_params *p, const struct kube_store *services,
                         const struct kube_store *nodes, struct export_state *state,
                         struct kv_map *desired, struct export_build_result *res,
                         export_skip_cb on_skip, void *arg);

#endif
