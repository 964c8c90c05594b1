/* SPDX-License-Identifier: Apache-2.0 */
/*
 * frontdoor_kv: a front-door host's two KV records (docs/kv-schema.md),
 * for every daemon that runs a front door (the director, `drover-watcher
 * director run`; an anycast proxy host, `drover-watcher anycast run`):
 *
 *   R frontdoor/hosts/<host>   watched (the whole hosts/ prefix, which
 *                              droverctl keeps non-empty with its folder
 *                              key); drained or not goes to the
 *                              frontdoor agent (droverctl host drain). No
 *                              record is not drained; a bad one keeps the
 *                              last good state, logged and counted.
 *   R frontdoor/status/<host>  published: what the host announces and why,
 *                              its table checksum and its packet counter
 *                              (droverctl status, host drain --wait). Put
 *                              when it changed, else every 2 s (the
 *                              counter moves).
 *
 * Owns its keys and the watch. The Consul client and the agent are the
 * caller's and must outlive frontdoor_kv_stop(); frontdoor_kv_free() may
 * come after the client is freed (a put cancelled then is harmless).
 */
#ifndef DROVER_WATCHER_FRONTDOOR_KV_H
#define DROVER_WATCHER_FRONTDOOR_KV_H

#include <stdint.h>

struct consul_client;
struct frontdoor_agent;
struct metrics_counter;

struct frontdoor_kv_opts {
    const char *kv_prefix; /* "drover/v1/" */
    const char *host;      /* <host> (droverctl host drain); NULL or "": gethostname() */
    unsigned wait_s;       /* blocking query wait */
    struct frontdoor_agent *agent;
    struct metrics_counter *m_bad; /* bad drain records; may be NULL */
};

struct frontdoor_kv;

/* Start watching the drain record. 0 or -errno (-EINVAL: the host name is
 * not a valid key segment, logged naming it); a watch that cannot start is
 * logged, not fatal. */
int frontdoor_kv_start(struct consul_client *c, const struct frontdoor_kv_opts *o,
                       struct frontdoor_kv **out);
/* Publish the status record: cluster ("" on an anycast host), table
 * checksum ("" when none), packets (the host's forwarding counter). */
void frontdoor_kv_publish(struct frontdoor_kv *k, const char *cluster, const char *checksum,
                          uint64_t packets);
/* Stop the watch and further puts (the daemon is stopping). */
void frontdoor_kv_stop(struct frontdoor_kv *k);
void frontdoor_kv_free(struct frontdoor_kv *k);

#endif
