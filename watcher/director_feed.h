/* SPDX-License-Identifier: Apache-2.0 */
/*
 * director_feed: the director side's view of Consul. One blocking-query
 * watch on <root>director/<cluster>/ (a prefix, never per key) whose every
 * delivery is parsed into one immutable struct director_inputs:
 *
 *   proxies/<host>  {"address", "state", "health": {"port", "path"}, "weight"}
 *   vips/<name>     {"address", "ports": [..], "protocol": "tcp"|"udp"}
 *   config          {"hash_key", "gue_port", "hash_fields", "max_moved_share"}
 *   force           {"expires", "author", "reason"}
 *
 * (docs/kv-schema.md, director/ section). Parsing is pure and public so
 * unit tests and fuzzers drive it without Consul. A bad entry is skipped,
 * logged and counted; when the same key had a good value in the inputs in
 * force, that value is kept instead (a typo in one proxy's entry must not
 * pull the proxy out of the table). Unknown keys and unknown fields are
 * ignored.
 *
 * Owns: the inputs it hands out (free with director_inputs_free()).
 */
#ifndef DROVER_WATCHER_DIRECTOR_FEED_H
#define DROVER_WATCHER_DIRECTOR_FEED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "consul.h"
#include "director_table.h"
#include "drover_maps.h"

struct director_proxy_spec {
    char *host;    /* KV key segment; the table's proxy id */
    char *address; /* canonical IPv4/IPv6 text */
    enum director_proxy_state state;
    uint32_t weight;      /* 0 = table default */
    uint16_t health_port; /* 0 = watcher default */
    char *health_path;    /* NULL = watcher default */
};

struct director_vip_spec {
    char *name;
    char *address; /* canonical text */
    uint16_t *ports;
    size_t n_ports;
    uint8_t protocol; /* IPPROTO_TCP or IPPROTO_UDP */
};

struct director_kv_config {
    bool present;         /* a valid config entry exists */
    __u64 hash_key[2];    /* little-endian words of the 16 key bytes (as drover_gen_config) */
    uint32_t hash_fields; /* enum drover_hash_fields */
    uint16_t gue_port;    /* host order */
    bool has_max_moved_share;
    double max_moved_share; /* 0..1 */
};

struct director_force {
    bool present;
    int64_t expires_unix;
    char *author, *reason;
};

struct director_inputs {
    struct director_proxy_spec *proxies; /* sorted by host */
    size_t n_proxies;
    struct director_vip_spec *vips; /* sorted by name */
    size_t n_vips;
    struct director_kv_config config;
    struct director_force force;
    uint64_t hash; /* of everything above; equal inputs have equal hashes */
};

/* Parse every entry of kv (keys are full Consul keys under prefix, which
 * ends in '/'). previous (may be NULL) supplies last good values for keys
 * whose new value is bad. *bad_out (may be NULL) receives the number of bad
 * entries. On success *out owns new inputs. 0 or -ENOMEM. */
int director_inputs_parse(const struct consul_kv_list *kv, const char *prefix,
                          const struct director_inputs *previous, struct director_inputs **out,
                          unsigned *bad_out);
/* One entry, for tests and fuzzers: 0 = parsed (or ignored), -EINVAL (err
 * names key and field). The entry is merged into in. */
int director_inputs_add_entry(struct director_inputs *in, const char *rel_key, const char *value,
                              size_t len, char *err, size_t errlen);
/* Sort, hash (call after adding entries by hand). */
void director_inputs_finish(struct director_inputs *in);
void director_inputs_free(struct director_inputs *in);
/* Deep copy; NULL on allocation failure. */
struct director_inputs *director_inputs_dup(const struct director_inputs *in);
const struct director_proxy_spec *director_inputs_proxy(const struct director_inputs *in,
                                                        const char *host);
/* Whether force allows a held change at now (present and not expired). */
bool director_force_active(const struct director_force *f, int64_t now_unix);

/* ---- the watch ---- */

struct director_feed;
/* in is owned by the callee. */
typedef void (*director_feed_fn)(void *arg, struct director_inputs *in, unsigned bad_entries);
typedef void (*director_feed_error_fn)(void *arg, int err, const char *msg);

struct director_feed_opts {
    const char *prefix; /* "<root>director/<cluster>/", copied */
    unsigned wait_s;    /* blocking query wait, 0 = default */
    director_feed_fn on_inputs;
    director_feed_error_fn on_error;
    /* inputs in force, for last-good fallback; may return NULL */
    const struct director_inputs *(*current)(void *arg);
    void *arg;
};

struct director_feed_stats {
    uint64_t deliveries;  /* inputs handed out */
    uint64_t bad_entries; /* bad entries seen, summed over deliveries */
    uint64_t errors;      /* watch errors */
    bool delivered;       /* at least one delivery */
    bool healthy;         /* no error since the last delivery */
};

int director_feed_start(struct consul_client *c, const struct director_feed_opts *o,
                        struct director_feed **out);
void director_feed_stop(struct director_feed *f);
void director_feed_get_stats(const struct director_feed *f, struct director_feed_stats *out);

#endif
