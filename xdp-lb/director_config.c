/* SPDX-License-Identifier: Apache-2.0 */
#include "director_config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errmsg.h"
#include "hex.h"
#include "json_util.h"

static const char *const state_names[] = {
    [DROVER_PROXY_INACTIVE] = "inactive",
    [DROVER_PROXY_ACTIVE] = "active",
    [DROVER_PROXY_FILLING] = "filling",
    [DROVER_PROXY_DRAINING] = "draining",
};

int director_parse_proto(const char *text, __u8 *out)
{
    if (strcmp(text, "tcp") == 0)
        *out = 6;
    else if (strcmp(text, "udp") == 0)
        *out = 17;
    else
        return -EINVAL;
    return 0;
}

int director_parse_state(const char *text, __u8 *out)
{
    for (unsigned i = 0; i < sizeof(state_names) / sizeof(state_names[0]); i++) {
        if (strcmp(text, state_names[i]) == 0) {
            *out = (__u8)i;
            return 0;
        }
    }
    return -EINVAL;
}

const char *director_state_name(__u8 state)
{
    if (state >= sizeof(state_names) / sizeof(state_names[0]))
        return "unknown";
    return state_names[state];
}

int director_parse_hash_fields(const char *text, __u32 *out)
{
    if (strcmp(text, "src") == 0)
        *out = DROVER_HASH_SRC;
    else if (strcmp(text, "src+dport") == 0)
        *out = DROVER_HASH_SRC_DPORT;
    else if (strcmp(text, "5tuple") == 0)
        *out = DROVER_HASH_5TUPLE;
    else
        return -EINVAL;
    return 0;
}

int director_parse_addr(const char *text, __u8 *family, __u32 addr[4])
{
    memset(addr, 0, 16);
    if (inet_pton(AF_INET, text, addr) == 1) {
        *family = DROVER_AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, text, addr) == 1) {
        *family = DROVER_AF_INET6;
        return 0;
    }
    return -EINVAL;
}

const char *director_format_addr(__u8 family, const __u32 addr[4], char *buf, size_t len)
{
    if (family == DROVER_AF_INET && inet_ntop(AF_INET, addr, buf, (socklen_t)len))
        return buf;
    if (family == DROVER_AF_INET6 && inet_ntop(AF_INET6, addr, buf, (socklen_t)len))
        return buf;
    snprintf(buf, len, "-");
    return buf;
}

/* 32 hex digits -> two little-endian key words (bytes 0-7, 8-15). */
int director_parse_hash_key(const char *text, __u64 key[2])
{
    __u8 bytes[16];

    if (hex_decode(text, strlen(text), bytes, sizeof(bytes)) < 0)
        return -EINVAL;
    key[0] = key[1] = 0;
    for (int i = 7; i >= 0; i--) {
        key[0] = key[0] << 8 | bytes[i];
        key[1] = key[1] << 8 | bytes[8 + i];
    }
    return 0;
}

static int parse_mac(const char *text, __u8 mac[6])
{
    unsigned v[6];
    char tail;

    if (sscanf(text, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
               &tail) != 6)
        return -EINVAL;
    for (int i = 0; i < 6; i++)
        mac[i] = (__u8)v[i];
    return 0;
}

static int parse_vips(const json_t *root, struct director_config *out, char *err, size_t errlen)
{
    json_t *arr = NULL;
    int rc = json_get_array(root, NULL, "vips", &arr, true, err, errlen);

    if (rc < 0)
        return rc;
    size_t n = json_array_size(arr);
    if (n > DROVER_MAX_VIPS) {
        snprintf(err, errlen, "vips: %zu entries, at most %d", n, DROVER_MAX_VIPS);
        return -EINVAL;
    }
    out->vips = calloc(n ? n : 1, sizeof(*out->vips));
    if (!out->vips)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const json_t *v = json_array_get(arr, i);
        struct director_config_vip *k = &out->vips[i];
        const char *addr = NULL, *proto = "tcp";
        int64_t port = 0;
        char where[32];

        snprintf(where, sizeof(where), "vips[%zu]", i);
        if (!json_is_object(v)) {
            snprintf(err, errlen, "%s: expected object, got %s", where, json_type_desc(v));
            return -EINVAL;
        }
        if ((rc = json_get_string(v, where, "address", &addr, true, err, errlen)) < 0 ||
            (rc = json_get_int(v, where, "port", &port, 1, 65535, true, err, errlen)) < 0 ||
            (rc = json_get_string(v, where, "protocol", &proto, false, err, errlen)) < 0)
            return rc;
        if (director_parse_addr(addr, &k->family, k->addr) < 0) {
            snprintf(err, errlen, "%s.address: '%s' is not an IPv4 or IPv6 address", where, addr);
            return -EINVAL;
        }
        if (director_parse_proto(proto, &k->proto) < 0) {
            snprintf(err, errlen, "%s.protocol: expected \"tcp\" or \"udp\", got '%s'", where,
                     proto);
            return -EINVAL;
        }
        k->port = htons((__u16)port);
        for (size_t j = 0; j < i; j++) {
            if (memcmp(&out->vips[j], k, sizeof(*k)) == 0) {
                snprintf(err, errlen, "%s: duplicate of vips[%zu]", where, j);
                return -EINVAL;
            }
        }
        out->n_vips++;
    }
    return 0;
}

static int parse_proxies(const json_t *root, struct director_config *out, char *err, size_t errlen)
{
    json_t *arr = NULL;
    int rc = json_get_array(root, NULL, "proxies", &arr, true, err, errlen);

    if (rc < 0)
        return rc;
    size_t n = json_array_size(arr);
    if (n > DROVER_MAX_PROXIES) {
        snprintf(err, errlen, "proxies: %zu entries, at most %d", n, DROVER_MAX_PROXIES);
        return -EINVAL;
    }
    out->proxies = calloc(n ? n : 1, sizeof(*out->proxies));
    out->proxy_names = calloc(n + 1, sizeof(*out->proxy_names)); /* +1: see _free */
    out->proxy_weights = calloc(n ? n : 1, sizeof(*out->proxy_weights));
    if (!out->proxies || !out->proxy_names || !out->proxy_weights)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const json_t *v = json_array_get(arr, i);
        struct director_config_proxy *p = &out->proxies[i];
        const char *addr = NULL, *state = "active", *name = NULL;
        int64_t weight = 0;
        char where[32];

        snprintf(where, sizeof(where), "proxies[%zu]", i);
        if (!json_is_object(v)) {
            snprintf(err, errlen, "%s: expected object, got %s", where, json_type_desc(v));
            return -EINVAL;
        }
        if ((rc = json_get_string(v, where, "address", &addr, true, err, errlen)) < 0 ||
            (rc = json_get_string(v, where, "state", &state, false, err, errlen)) < 0 ||
            (rc = json_get_string(v, where, "name", &name, false, err, errlen)) < 0 ||
            (rc = json_get_int(v, where, "weight", &weight, 1, 65535, false, err, errlen)) < 0)
            return rc;
        if (name) {
            size_t nl = strlen(name);
            bool ok = nl > 0 && nl <= 253;
            for (size_t k = 0; ok && k < nl; k++)
                ok = name[k] > ' ' && name[k] <= '~' && name[k] != '/';
            if (!ok) {
                snprintf(err, errlen, "%s.name: expected 1..253 printable characters without '/'",
                         where);
                return -EINVAL;
            }
            for (size_t j = 0; j < i; j++) {
                if (out->proxy_names[j] && strcmp(out->proxy_names[j], name) == 0) {
                    errmsg_set(err, errlen, "%s.name: '%s' duplicates proxies[%zu]", where, name,
                               j);
                    return -EINVAL;
                }
            }
            if (!(out->proxy_names[i] = strdup(name)))
                return -ENOMEM;
        }
        out->proxy_weights[i] = (__u32)weight;
        if (director_parse_addr(addr, &p->family, p->addr) < 0) {
            snprintf(err, errlen, "%s.address: '%s' is not an IPv4 or IPv6 address", where, addr);
            return -EINVAL;
        }
        if (director_parse_state(state, &p->state) < 0) {
            snprintf(err, errlen, "%s.state: expected active|filling|draining|inactive, got '%s'",
                     where, state);
            return -EINVAL;
        }
        for (size_t j = 0; j < i; j++) {
            if (out->proxies[j].family == p->family &&
                memcmp(out->proxies[j].addr, p->addr, sizeof(p->addr)) == 0) {
                snprintf(err, errlen, "%s: address %s duplicates proxies[%zu]", where, addr, j);
                return -EINVAL;
            }
        }
        out->n_proxies++;
    }
    return 0;
}

static int parse_root(const json_t *root, struct director_config *out, char *err, size_t errlen)
{
    const char *key = NULL, *fields = "src", *s4 = NULL, *s6 = NULL, *mac = NULL, *egress = NULL;
    int64_t port = DROVER_GUE_PORT_DEFAULT;
    __u8 fam;
    int rc;

    if (!json_is_object(root)) {
        snprintf(err, errlen, "top level: expected object, got %s", json_type_desc(root));
        return -EINVAL;
    }
    if ((rc = json_get_string(root, NULL, "hash_key", &key, true, err, errlen)) < 0 ||
        (rc = json_get_string(root, NULL, "hash_fields", &fields, false, err, errlen)) < 0 ||
        (rc = json_get_int(root, NULL, "gue_port", &port, 1, 65535, false, err, errlen)) < 0 ||
        (rc = json_get_string(root, NULL, "source_v4", &s4, false, err, errlen)) < 0 ||
        (rc = json_get_string(root, NULL, "source_v6", &s6, false, err, errlen)) < 0 ||
        (rc = json_get_string(root, NULL, "gateway_mac", &mac, true, err, errlen)) < 0 ||
        (rc = json_get_string(root, NULL, "egress", &egress, false, err, errlen)) < 0)
        return rc;
    if (director_parse_hash_key(key, out->hash_key) < 0) {
        snprintf(err, errlen, "hash_key: expected 32 hex digits (16 bytes)");
        return -EINVAL;
    }
    if (out->hash_key[0] == 0 && out->hash_key[1] == 0) {
        snprintf(err, errlen, "hash_key: all zero; generate a random key");
        return -EINVAL;
    }
    if (director_parse_hash_fields(fields, &out->hash_fields) < 0) {
        snprintf(err, errlen, "hash_fields: expected src|src+dport|5tuple, got '%s'", fields);
        return -EINVAL;
    }
    out->gue_port = (__u16)port;
    __u32 tmp[4];
    if (s4 && (director_parse_addr(s4, &fam, tmp) < 0 || fam != DROVER_AF_INET)) {
        snprintf(err, errlen, "source_v4: '%s' is not an IPv4 address", s4);
        return -EINVAL;
    }
    if (s4)
        out->src_v4 = tmp[0];
    if (s6 && (director_parse_addr(s6, &fam, out->src_v6) < 0 || fam != DROVER_AF_INET6)) {
        snprintf(err, errlen, "source_v6: '%s' is not an IPv6 address", s6);
        return -EINVAL;
    }
    if (parse_mac(mac, out->gw_mac) < 0) {
        snprintf(err, errlen, "gateway_mac: expected aa:bb:cc:dd:ee:ff, got '%s'", mac);
        return -EINVAL;
    }
    if (egress) {
        if (strlen(egress) == 0 || strlen(egress) >= sizeof(out->egress)) {
            snprintf(err, errlen, "egress: bad interface name '%s'", egress);
            return -EINVAL;
        }
        snprintf(out->egress, sizeof(out->egress), "%s", egress);
    }
    if ((rc = parse_vips(root, out, err, errlen)) < 0)
        return rc;
    if ((rc = parse_proxies(root, out, err, errlen)) < 0)
        return rc;
    /* Every proxy family needs an outer source address of that family. */
    for (size_t i = 0; i < out->n_proxies; i++) {
        int v4 = out->proxies[i].family == DROVER_AF_INET;
        if (v4 ? !s4 : !s6) {
            snprintf(err, errlen, "proxies[%zu]: an IPv%d proxy needs \"%s\"", i, v4 ? 4 : 6,
                     v4 ? "source_v4" : "source_v6");
            return -EINVAL;
        }
    }
    return 0;
}

int director_config_parse(const char *text, size_t len, const char *name,
                          struct director_config *out, char *err, size_t errlen)
{
    json_t *root = NULL;
    char inner[256];
    int rc;

    memset(out, 0, sizeof(*out));
    rc = json_from_buffer(text, len, name, &root, err, errlen);
    if (rc < 0)
        return rc;
    rc = parse_root(root, out, inner, sizeof(inner));
    if (rc < 0) {
        snprintf(err, errlen, "%s: %s", name, inner);
        director_config_free(out);
    }
    json_decref(root);
    return rc;
}

int director_config_load(const char *path, struct director_config *out, char *err, size_t errlen)
{
    FILE *f = fopen(path, "re");
    char *buf = NULL;
    size_t cap = 0, len = 0;
    int rc = 0;

    if (!f) {
        rc = -errno;
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return rc;
    }
    for (;;) {
        if (len + 4096 > cap) {
            char *nb = realloc(buf, cap + 65536);
            if (!nb) {
                rc = -ENOMEM;
                snprintf(err, errlen, "%s: out of memory", path);
                goto out;
            }
            buf = nb;
            cap += 65536;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
        if (len > (16u << 20)) {
            rc = -EFBIG;
            snprintf(err, errlen, "%s: larger than 16 MiB", path);
            goto out;
        }
    }
    if (ferror(f)) {
        rc = -EIO;
        snprintf(err, errlen, "%s: read error", path);
        goto out;
    }
    rc = director_config_parse(buf, len, path, out, err, errlen);
out:
    free(buf);
    fclose(f);
    return rc;
}

void director_config_free(struct director_config *cfg)
{
    for (size_t i = 0; cfg->proxy_names && i < cfg->n_proxies; i++)
        free(cfg->proxy_names[i]);
    /* a proxy that failed to parse after its name was copied */
    if (cfg->proxy_names && cfg->proxies)
        free(cfg->proxy_names[cfg->n_proxies]);
    free(cfg->proxy_names);
    free(cfg->proxy_weights);
    cfg->proxy_names = NULL;
    cfg->proxy_weights = NULL;
    free(cfg->vips);
    free(cfg->proxies);
    cfg->vips = NULL;
    cfg->proxies = NULL;
    cfg->n_vips = cfg->n_proxies = 0;
}
