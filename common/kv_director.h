/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kv_director: the schema module of R director/<cluster>/... (contract:
 * docs/kv-schema.md), written by operators (droverctl changes a proxy's
 * state) and read by drover-watcher on director hosts:
 *
 *   proxies/<host>  {"address", "state", "health": {"port", "path"}, "weight"}
 *   vips/<name>     {"address", "ports": [..], "protocol": "tcp"|"udp"}
 *   config          {"hash_key", "gue_port", "hash_fields", "max_moved_share"}
 *   force           {"expires", "author", "reason"}
 *
 * Owns the key codec below director/<cluster>/, the GLB state vocabulary
 * and the order droverctl steps through it, and the decoding of each value
 * into plain records (the watcher turns them into table and map inputs).
 */
#ifndef DROVER_KV_DIRECTOR_H
#define DROVER_KV_DIRECTOR_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KV_DIRECTOR_HOST_MAX   253u /* bytes of a proxy host / VIP name */
#define KV_DIRECTOR_MAX_WEIGHT 65535u
#define KV_DIRECTOR_MAX_PORTS  1024u
#define KV_DIRECTOR_GUE_PORT   19523u /* default GUE destination port */

/* GLB proxy states; numbered as the table builder's. */
enum kv_director_state {
    KV_DIRECTOR_INACTIVE = 0,
    KV_DIRECTOR_ACTIVE = 1,
    KV_DIRECTOR_FILLING = 2,
    KV_DIRECTOR_DRAINING = 3,
};
/* "inactive" | "active" | "filling" | "draining" (case-insensitive). 0 or
 * -EINVAL. */
int kv_director_state_parse(const char *text, enum kv_director_state *out);
const char *kv_director_state_name(enum kv_director_state s);
/* The cycle droverctl walks: inactive -> filling -> active -> draining ->
 * inactive. The state before `to` in it. */
enum kv_director_state kv_director_state_before(enum kv_director_state to);

/* What the flow hash covers; numbered as the BPF maps' enum. */
enum kv_director_hash_fields {
    KV_DIRECTOR_HASH_SRC = 0,
    KV_DIRECTOR_HASH_SRC_DPORT = 1,
    KV_DIRECTOR_HASH_5TUPLE = 2,
};

enum kv_director_kind {
    KV_DIRECTOR_OTHER = 0, /* not a director record (folder keys, future keys) */
    KV_DIRECTOR_PROXY,
    KV_DIRECTOR_VIP,
    KV_DIRECTOR_CONFIG,
    KV_DIRECTOR_FORCE,
};

/* A proxy host or VIP name (one key segment, the table's proxy id):
 * 1..KV_DIRECTOR_HOST_MAX printable ASCII characters, no '/', no space. */
bool kv_director_valid_name(const char *s);

/* Classify a key below director/<cluster>/; *name (proxy host, VIP name)
 * points into rel, NULL for config and force. */
enum kv_director_kind kv_director_key_parse(const char *rel, const char **name);

struct kv_director_proxy {
    char address[64]; /* canonical IPv4/IPv6 text */
    enum kv_director_state state;
    uint32_t weight;      /* 0 = unset */
    uint16_t health_port; /* 0 = unset */
    char *health_path;    /* NULL = unset; malloc'd */
};

struct kv_director_vip {
    char address[64];
    uint16_t *ports; /* malloc'd */
    size_t n_ports;
    uint8_t protocol; /* IPPROTO_TCP or IPPROTO_UDP */
};

struct kv_director_config {
    uint8_t hash_key[16];
    enum kv_director_hash_fields hash_fields;
    uint16_t gue_port;
    bool has_max_moved_share;
    double max_moved_share;
};

struct kv_director_force {
    int64_t expires; /* unix seconds */
    char *author, *reason;
};

/* Decoders: v is the parsed value, where names it in messages ("proxies/p1"),
 * name is the key's last segment. 0, -EINVAL (err names the field), or
 * -ENOMEM. The out records are zeroed first; clear them on success and
 * failure alike. */
int kv_director_proxy_decode(const json_t *v, const char *host, const char *where,
                             struct kv_director_proxy *p, char *err, size_t errlen);
void kv_director_proxy_clear(struct kv_director_proxy *p);
int kv_director_vip_decode(const json_t *v, const char *name, const char *where,
                           struct kv_director_vip *out, char *err, size_t errlen);
void kv_director_vip_clear(struct kv_director_vip *v);
int kv_director_config_decode(const json_t *v, const char *where, struct kv_director_config *c,
                              char *err, size_t errlen);
int kv_director_force_decode(const json_t *v, const char *where, struct kv_director_force *f,
                             char *err, size_t errlen);
void kv_director_force_clear(struct kv_director_force *f);

#endif
