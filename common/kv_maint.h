/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kv_maint: the schema module of R maintenance/... (contract:
 * docs/kv-schema.md), written by droverctl and read by drover-watcher
 * (which resolves it per server into the agent-checker state) and
 * droverctl.
 *
 *   maintenance/node/<cluster>/<node>    every server on that kube node
 *   maintenance/addr/<ip>                every server with that address
 *   maintenance/server/<backend>/<name>  one server (a slot or static name)
 *
 * Owns the maintenance id codec (the key below maintenance/, the IP of an
 * addr/ id canonicalised), the value's decoding and the one precedence
 * rule: server > addr > node (one key per level, so never a tie), expired
 * entries ignored.
 */
#ifndef DROVER_KV_MAINT_H
#define DROVER_KV_MAINT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum kvm_admin {
    KVM_ADMIN_READY = 0,
    KVM_ADMIN_DRAIN,
    KVM_ADMIN_MAINT,
};

/* "ready" | "drain" | "maint". */
const char *kvm_admin_name(enum kvm_admin a);

enum kvm_maint_kind {
    KVM_MAINT_NODE = 0, /* a = cluster, b = node */
    KVM_MAINT_ADDR,     /* a = canonical ip, b = "" */
    KVM_MAINT_SERVER,   /* a = backend, b = server */
};

/* A maintenance id: the key below R maintenance/. */
#define KV_MAINT_SEG_MAX 256
struct kv_maint_id {
    enum kvm_maint_kind kind;
    char a[KV_MAINT_SEG_MAX], b[KV_MAINT_SEG_MAX];
    char id[2 * KV_MAINT_SEG_MAX + 16]; /* canonical: "node/c/n", "addr/ip", "server/b/s" */
};

/* Parse an id ("node/<cluster>/<node>", "addr/<ip>",
 * "server/<backend>/<server>"). 0, or -EINVAL with err naming what is
 * wrong (err may be NULL). */
int kv_maint_id_parse(const char *id, struct kv_maint_id *out, char *err, size_t errlen);

struct kvm_maint {
    enum kvm_maint_kind kind;
    char *a, *b; /* as in kv_maint_id; b NULL for addr */
    enum kvm_admin admin;
    int weight; /* 0..256 percent, -1 = unset */
    char *reason, *author;
    int64_t expires; /* unix seconds, 0 = never */
};

/* Decode a value (state required; weight, reason, author, expires
 * optional; other fields ignored). kind/a/b are left to the caller.
 * 0, -EINVAL (err names the field), -ENOMEM. Release with
 * kvm_maint_clear, also on failure. */
int kvm_maint_decode(const json_t *root, struct kvm_maint *x, char *err, size_t errlen);
void kvm_maint_clear(struct kvm_maint *x);
/* Expired at now (unix seconds)? */
bool kvm_maint_expired(int64_t expires, int64_t now);
/* Out of service: drain, maint, or weight 0. */
bool kvm_maint_takes_out(enum kvm_admin admin, int weight);

/* What droverctl writes (fields borrowed; optional ones NULL / < 0 / 0). */
struct kv_maint_rec {
    const char *target; /* the maintenance id (informational) */
    enum kvm_admin admin;
    int weight; /* -1: unset */
    const char *author, *reason;
    int64_t created; /* unix seconds */
    int64_t expires; /* unix seconds, 0: never */
};

/* The value as a JSON object (fields as in docs/kv-schema.md; an empty
 * reason is left out). New reference, NULL on ENOMEM. */
json_t *kv_maint_encode(const struct kv_maint_rec *r);

/*
 * The precedence rule. find(arg, kind, a, b) returns the (unexpired)
 * entry of that id or NULL; b is NULL for addr. For one server: the
 * entries server/<backend>/<name> for each of names[0..n_names) (slot
 * name, static name; NULL ones skipped), then addr/<addr>, then
 * node/<node_cluster>/<node> (node NULL: a static server). Returns the
 * first found, NULL if none.
 */
typedef const void *(*kv_maint_find_fn)(void *arg, enum kvm_maint_kind kind, const char *a,
                                        const char *b);
const void *kv_maint_resolve(kv_maint_find_fn find, void *arg, const char *backend,
                             const char *const *names, size_t n_names, const char *addr,
                             const char *node_cluster, const char *node);

#endif
