/* SPDX-License-Identifier: Apache-2.0 */
/*
 * director_config: the JSON configuration that lets drover-director run on
 * its own (tests, demo): VIPs, proxies, hash key, GUE port, outer source
 * addresses, gateway MAC, optional egress device. Parsing is pure (no
 * kernel access) so it can be fuzzed; errors name the field path.
 *
 *   {
 *     "hash_key": "000102030405060708090a0b0c0d0e0f",   (32 hex digits)
 *     "hash_fields": "src" | "src+dport" | "5tuple",      (default "src")
 *     "gue_port": 19523,
 *     "source_v4": "192.0.2.1", "source_v6": "2001:db8::1",
 *     "gateway_mac": "02:00:00:00:00:01",
 *     "egress": "eth1",                                   (optional)
 *     "vips": [ {"address": "198.51.100.1", "port": 80, "protocol": "tcp"} ],
 *     "proxies": [ {"address": "192.0.2.10", "state": "active",
 *                   "name": "proxy-a", "weight": 100} ]      (name, weight optional)
 *   }
 *
 * A proxy's "name" is its id in the forwarding table (director_build.h):
 * give proxies the names they have under director/<cluster>/proxies/ in
 * Consul and this director builds the same table as a watcher-fed one.
 * Without a name the address text is the id.
 *
 * There is no default hash key: a config without one is rejected.
 */
#ifndef DROVER_DIRECTOR_CONFIG_H
#define DROVER_DIRECTOR_CONFIG_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>

#include "drover_maps.h"

/* A VIP of the config, as the director matches it (director_publish
 * copies it into the VIP map's key). */
struct director_config_vip {
    __u32 addr[4]; /* network order; IPv4 in addr[0] */
    __u16 port;    /* network order */
    __u8 proto;    /* IPPROTO_TCP or IPPROTO_UDP */
    __u8 family;   /* DROVER_AF_INET or DROVER_AF_INET6 */
};

/* A proxy of the config (its name and weight: proxy_names, proxy_weights). */
struct director_config_proxy {
    __u32 addr[4]; /* network order; IPv4 in addr[0] */
    __u8 family;   /* DROVER_AF_INET or DROVER_AF_INET6 */
    __u8 state;    /* enum director_proxy_state */
};

struct director_config {
    __u64 hash_key[2];
    __u32 hash_fields; /* enum drover_hash_fields */
    __u16 gue_port;    /* host order */
    __u32 src_v4;      /* network order, 0 = none */
    __u32 src_v6[4];
    __u8 gw_mac[6];
    char egress[IF_NAMESIZE]; /* "" = XDP_TX on the attach device */
    struct director_config_vip *vips;
    size_t n_vips;
    struct director_config_proxy *proxies;
    size_t n_proxies;
    char **proxy_names;   /* per proxy: table id, NULL = address text */
    __u32 *proxy_weights; /* per proxy: 0 = default weight */
};

/* Parse JSON text. name labels messages ("director.json"). On success the
 * caller owns *out and frees it with director_config_free(). Returns 0 or
 * -EINVAL (message in err) / -ENOMEM. */
int director_config_parse(const char *text, size_t len, const char *name,
                          struct director_config *out, char *err, size_t errlen);
/* Read and parse a file; -errno when it cannot be read. */
int director_config_load(const char *path, struct director_config *out, char *err, size_t errlen);
void director_config_free(struct director_config *cfg);

/* Helpers shared with the CLI: "tcp"/"udp", "active"/..., "src"/... */
int director_parse_proto(const char *text, __u8 *out);
int director_parse_state(const char *text, __u8 *out);
const char *director_state_name(__u8 state);
int director_parse_hash_fields(const char *text, __u32 *out);
/* 32 hex digits -> two little-endian key words (bytes 0-7, 8-15), as in
 * drover_gen_config.hash_key. 0 or -EINVAL. */
int director_parse_hash_key(const char *text, __u64 key[2]);
/* Address text to (family, addr[4]) as stored in the maps. */
int director_parse_addr(const char *text, __u8 *family, __u32 addr[4]);
/* Format (family, addr) into buf (INET6_ADDRSTRLEN bytes). */
const char *director_format_addr(__u8 family, const __u32 addr[4], char *buf, size_t len);

#endif
