/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kv_frontdoor: the front door's KV records (docs/kv-schema.md), encoded
 * and decoded here only, so droverctl and drover-watcher cannot disagree:
 *
 *   R frontdoor/hosts/<host>   written by droverctl (host drain/undrain),
 *                              read by drover-watcher on <host>
 *   R frontdoor/status/<host>  written by drover-watcher on <host> (front
 *                              door on), read by droverctl (status, host
 *                              drain --wait) and operators
 *
 * Encoders return canonical JSON (compact, keys sorted; optional fields left
 * out), malloc'd, NULL on allocation failure. Decoders return 0 or -EBADMSG
 * with err naming what is wrong; the caller owns what they fill and frees
 * it with the matching _clear().
 */
#ifndef DROVER_KV_FRONTDOOR_H
#define DROVER_KV_FRONTDOOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KV_FRONTDOOR_HOSTS  "frontdoor/hosts/"
#define KV_FRONTDOOR_STATUS "frontdoor/status/"

struct kv_frontdoor_host {
    bool drained; /* required */
    char *author; /* optional */
    char *reason; /* optional */
    char *since;  /* optional, RFC 3339 */
};

int kv_frontdoor_host_decode(const char *json, size_t len, struct kv_frontdoor_host *out, char *err,
                             size_t errlen);
char *kv_frontdoor_host_encode(const struct kv_frontdoor_host *h);
void kv_frontdoor_host_clear(struct kv_frontdoor_host *h);

struct kv_frontdoor_vip {
    char *vip;   /* address text */
    char *route; /* "announced", "graceful-shutdown", "withdrawn" */
    char *reason;
};

struct kv_frontdoor_status {
    char *cluster;        /* director cluster */
    char *table_checksum; /* 16 hex digits, "" before a table is applied */
    bool drained;
    bool bird_in_sync;
    uint64_t packets; /* packets the host's director forwarded (since attach) */
    char *updated;    /* RFC 3339 */
    struct kv_frontdoor_vip *vips;
    size_t n_vips;
};

int kv_frontdoor_status_decode(const char *json, size_t len, struct kv_frontdoor_status *out,
                               char *err, size_t errlen);
char *kv_frontdoor_status_encode(const struct kv_frontdoor_status *s);
void kv_frontdoor_status_clear(struct kv_frontdoor_status *s);

#endif
