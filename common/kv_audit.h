/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kv_audit: the schema module of R audit/<timestamp>-<id> (contract:
 * docs/kv-schema.md): the append-only trail droverctl writes in the same
 * transaction as every change it makes.
 */
#ifndef DROVER_KV_AUDIT_H
#define DROVER_KV_AUDIT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* R audit/<UTC time like 20261123T150405.123Z>-<8 hex of rnd>. */
void kv_audit_key(const char *root, int64_t now_ms, const unsigned char rnd[4], char *out,
                  size_t outlen);

/* Fields borrowed; reason NULL and force false are left out; before/after
 * NULL are written as null (no entry before / entry deleted). */
struct kv_audit_rec {
    int64_t time_ms;
    const char *author;
    const char *source; /* "cli" | "slack" */
    const char *action; /* "drain", ..., "director-fill", ... */
    const char *target; /* maintenance id or director/<cluster>/proxies/<host> */
    const char *reason;
    const json_t *before, *after;
    int force; /* boolean */
};

/* New reference, NULL on ENOMEM. */
json_t *kv_audit_encode(const struct kv_audit_rec *r);

#endif
