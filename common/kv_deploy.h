/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kv_deploy: the schema module of the operator config lifecycle
 * (`droverctl config apply/promote/abort/history/rollback`; contract:
 * docs/kv-schema.md, "Config changes"):
 *
 *   R haproxy/<cluster>/canary               the staged change (at most one)
 *   R deploy/<cluster>/history/<version>     the versions, newest kept
 *
 * A staged change lives inside haproxy/<cluster>/, the prefix every
 * watcher of the cluster already watches, so it costs no extra watch: a
 * watcher whose --status-host is in "canary" overlays the staged values
 * on the live ones; every other watcher drops the entry. History lives
 * outside what watchers watch, so recording a version wakes nobody.
 *
 * Keys inside records are relative to the root ("haproxy/edge/services/
 * web") and must be operator HAProxy records of the record's cluster
 * (services and force-removal entries). Values are kept as JSON; a staged
 * null means "delete this key". Encoders write what decoders take back.
 */
#ifndef DROVER_KV_DEPLOY_H
#define DROVER_KV_DEPLOY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Versions kept under deploy/<cluster>/history/ (older ones are deleted
 * in the transaction that records a new one). */
#define KV_DEPLOY_HISTORY_KEEP 20
#define KV_DEPLOY_VERSION_MAX  9999999999ull /* 10 digits in the key */

/* R haproxy/<cluster>/canary; NULL when cluster is not a valid segment or
 * on ENOMEM. Caller frees. */
char *kv_deploy_canary_key(const char *root, const char *cluster);
/* R deploy/<cluster>/history/ (ends in '/'), and one version's key in it
 * (the version zero-padded to 10 digits so keys sort by version). NULL as
 * above. Caller frees. */
char *kv_deploy_history_prefix(const char *root, const char *cluster);
char *kv_deploy_history_key(const char *root, const char *cluster, uint64_t version);
/* The version of a key below the history prefix ("0000000007"). 0 or
 * -EINVAL. */
int kv_deploy_history_version(const char *rel, uint64_t *version);
/* Whether rel (below the root) is an operator HAProxy record of cluster:
 * haproxy/<cluster>/services/<name> or haproxy/<cluster>/force-removal/<b>. */
bool kv_deploy_key_ok(const char *cluster, const char *rel);

/*
 * One record: a staged change (staged = true) or a version of history.
 * keys: rel key -> value (JSON null: delete; only in a staged change).
 * A staged change lists only what it changes, with base: rel key -> the
 * ModifyIndex the live key had when it was staged (0: absent), which is
 * the check-and-set index of promote. A version lists the cluster's whole
 * operator state after the change, so a rollback restores it exactly.
 * encode borrows everything; decode fills owned fields (kv_deploy_clear).
 */
struct kv_deploy_rec {
    bool staged;
    uint64_t version;     /* staged: the version promote makes of it */
    uint64_t rollback_of; /* 0: none; else the version it restores */
    char *cluster;
    char **canary; /* hosts (staged: at least one; version: who ran it first) */
    size_t n_canary;
    char *author, *reason; /* reason may be NULL */
    int64_t time_unix;     /* staged / recorded */
    json_t *keys;
    json_t *base; /* staged only */
};

/* The value as a JSON object. New reference, NULL on ENOMEM. */
json_t *kv_deploy_encode(const struct kv_deploy_rec *r);
/* Decode a value read from key (named in messages). staged says which
 * record is expected. 0, -EINVAL (err names the field) or -ENOMEM; on
 * failure *out is left empty. */
int kv_deploy_decode(const char *buf, size_t len, const char *key, bool staged,
                     struct kv_deploy_rec *out, char *err, size_t errlen);
void kv_deploy_clear(struct kv_deploy_rec *r);
/* Whether host is one of the record's canary hosts. */
bool kv_deploy_has_canary(const struct kv_deploy_rec *r, const char *host);

#endif
