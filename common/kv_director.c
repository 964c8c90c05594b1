/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kv_director: keys and values below director/<cluster>/. See
 * kv_director.h and docs/kv-schema.md.
 */
#include "kv_director.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hex.h"
#include "json_util.h"
#include "kv_field.h"
#include "timefmt.h"

static const char *const state_names[] = {
    [KV_DIRECTOR_INACTIVE] = "inactive",
    [KV_DIRECTOR_ACTIVE] = "active",
    [KV_DIRECTOR_FILLING] = "filling",
    [KV_DIRECTOR_DRAINING] = "draining",
};

int kv_director_state_parse(const char *text, enum kv_director_state *out)
{
    for (unsigned i = 0; text && i < sizeof(state_names) / sizeof(state_names[0]); i++) {
        if (strcasecmp(text, state_names[i]) == 0) {
            *out = (enum kv_director_state)i;
            return 0;
        }
    }
    return -EINVAL;
}

const char *kv_director_state_name(enum kv_director_state s)
{
    return (unsigned)s < sizeof(state_names) / sizeof(state_names[0]) ? state_names[s] : "unknown";
}

enum kv_director_state kv_director_state_before(enum kv_director_state to)
{
    switch (to) {
    case KV_DIRECTOR_FILLING:
        return KV_DIRECTOR_INACTIVE;
    case KV_DIRECTOR_ACTIVE:
        return KV_DIRECTOR_FILLING;
    case KV_DIRECTOR_DRAINING:
        return KV_DIRECTOR_ACTIVE;
    default:
        return KV_DIRECTOR_DRAINING;
    }
}

enum kv_director_kind kv_director_key_parse(const char *rel, const char **name)
{
    *name = NULL;
    if (strncmp(rel, "proxies/", 8) == 0 && rel[8]) {
        *name = rel + 8;
        return KV_DIRECTOR_PROXY;
    }
    if (strncmp(rel, "vips/", 5) == 0 && rel[5]) {
        *name = rel + 5;
        return KV_DIRECTOR_VIP;
    }
    if (strcmp(rel, "config") == 0)
        return KV_DIRECTOR_CONFIG;
    if (strcmp(rel, "force") == 0)
        return KV_DIRECTOR_FORCE;
    return KV_DIRECTOR_OTHER; /* folder keys ("proxies/"), future keys */
}

/* A key segment usable as a table id: printable ASCII, no '/', no space. */
bool kv_director_valid_name(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > KV_DIRECTOR_HOST_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] <= ' ' || s[i] > '~' || s[i] == '/')
            return false;
    return true;
}

static bool good_path(const char *p)
{
    if (p[0] != '/' || strlen(p) > 1024)
        return false;
    for (; *p; p++)
        if (*p <= ' ' || *p > '~')
            return false;
    return true;
}

void kv_director_proxy_clear(struct kv_director_proxy *p)
{
    free(p->health_path);
    memset(p, 0, sizeof(*p));
}

int kv_director_proxy_decode(const json_t *v, const char *host, const char *where,
                             struct kv_director_proxy *p, char *err, size_t errlen)
{
    const char *addr = NULL, *state = NULL, *path = NULL;
    json_t *health = NULL;
    int64_t weight = 0, port = 0;
    int rc;

    memset(p, 0, sizeof(*p));
    if (!kv_director_valid_name(host)) {
        snprintf(err, errlen, "%s: host name must be 1..%u printable characters", where,
                 KV_DIRECTOR_HOST_MAX);
        return -EINVAL;
    }
    if ((rc = json_get_string(v, where, "address", &addr, true, err, errlen)) < 0 ||
        (rc = json_get_string(v, where, "state", &state, true, err, errlen)) < 0 ||
        (rc = json_get_int(v, where, "weight", &weight, 1, KV_DIRECTOR_MAX_WEIGHT, false, err,
                           errlen)) < 0 ||
        (rc = json_get_object(v, where, "health", &health, false, err, errlen)) < 0)
        return rc;
    if (health) {
        char hw[300];
        snprintf(hw, sizeof(hw), "%s.health", where);
        if ((rc = json_get_int(health, hw, "port", &port, 1, 65535, false, err, errlen)) < 0 ||
            (rc = json_get_string(health, hw, "path", &path, false, err, errlen)) < 0)
            return rc;
        if (path && !good_path(path)) {
            snprintf(err, errlen, "%s.path: expected an absolute URL path without spaces, got '%s'",
                     hw, path);
            return -EINVAL;
        }
    }
    if (kv_ip_canonical(addr, p->address, sizeof(p->address)) < 0) {
        snprintf(err, errlen, "%s.address: '%s' is not an IPv4 or IPv6 address", where, addr);
        return -EINVAL;
    }
    if (kv_director_state_parse(state, &p->state) < 0) {
        snprintf(err, errlen, "%s.state: expected filling|active|draining|inactive, got '%s'",
                 where, state);
        return -EINVAL;
    }
    p->weight = (uint32_t)weight;
    p->health_port = (uint16_t)port;
    if (path && !(p->health_path = strdup(path)))
        return -ENOMEM;
    return 0;
}

void kv_director_vip_clear(struct kv_director_vip *v)
{
    free(v->ports);
    memset(v, 0, sizeof(*v));
}

int kv_director_vip_decode(const json_t *v, const char *name, const char *where,
                           struct kv_director_vip *out, char *err, size_t errlen)
{
    const char *addr = NULL, *proto = NULL;
    json_t *ports = NULL;
    int rc;

    memset(out, 0, sizeof(*out));
    if (!kv_director_valid_name(name)) {
        snprintf(err, errlen, "%s: VIP name must be printable without '/'", where);
        return -EINVAL;
    }
    if ((rc = json_get_string(v, where, "address", &addr, true, err, errlen)) < 0 ||
        (rc = json_get_string(v, where, "protocol", &proto, true, err, errlen)) < 0 ||
        (rc = json_get_array(v, where, "ports", &ports, true, err, errlen)) < 0)
        return rc;
    if (kv_ip_canonical(addr, out->address, sizeof(out->address)) < 0) {
        snprintf(err, errlen, "%s.address: '%s' is not an IPv4 or IPv6 address", where, addr);
        return -EINVAL;
    }
    if (strcmp(proto, "tcp") == 0) {
        out->protocol = IPPROTO_TCP;
    } else if (strcmp(proto, "udp") == 0) {
        out->protocol = IPPROTO_UDP;
    } else {
        snprintf(err, errlen, "%s.protocol: expected tcp|udp, got '%s'", where, proto);
        return -EINVAL;
    }
    size_t n = json_array_size(ports);
    if (n == 0 || n > KV_DIRECTOR_MAX_PORTS) {
        snprintf(err, errlen, "%s.ports: expected 1..%u ports, got %zu", where,
                 KV_DIRECTOR_MAX_PORTS, n);
        return -EINVAL;
    }
    if (!(out->ports = calloc(n, sizeof(*out->ports))))
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(ports, i);
        json_int_t port = json_is_integer(e) ? json_integer_value(e) : 0;
        if (port < 1 || port > 65535) {
            snprintf(err, errlen, "%s.ports[%zu]: expected integer 1..65535, got %s", where, i,
                     json_is_integer(e) ? "out of range" : json_type_desc(e));
            return -EINVAL;
        }
        for (size_t j = 0; j < i; j++) {
            if (out->ports[j] == port) {
                snprintf(err, errlen, "%s.ports[%zu]: duplicate port %d", where, i, (int)port);
                return -EINVAL;
            }
        }
        out->ports[out->n_ports++] = (uint16_t)port;
    }
    return 0;
}

int kv_director_config_decode(const json_t *v, const char *where, struct kv_director_config *c,
                              char *err, size_t errlen)
{
    const char *key = NULL, *fields = NULL;
    int64_t port = KV_DIRECTOR_GUE_PORT;
    double share = 0;
    int rc = 0, has_share = 0;

    memset(c, 0, sizeof(*c));
    if ((rc = json_get_string(v, where, "hash_key", &key, true, err, errlen)) < 0 ||
        (rc = json_get_int(v, where, "gue_port", &port, 1, 65535, false, err, errlen)) < 0 ||
        (rc = json_get_string(v, where, "hash_fields", &fields, false, err, errlen)) < 0 ||
        (has_share = json_get_double(v, where, "max_moved_share", &share, false, err, errlen)) < 0)
        return has_share < 0 ? has_share : rc;
    if (hex_decode(key, strlen(key), c->hash_key, sizeof(c->hash_key)) < 0) {
        snprintf(err, errlen, "%s.hash_key: expected 32 hex digits", where);
        return -EINVAL;
    }
    if (!fields || strcmp(fields, "src") == 0) {
        c->hash_fields = KV_DIRECTOR_HASH_SRC;
    } else if (strcmp(fields, "src+dport") == 0) {
        c->hash_fields = KV_DIRECTOR_HASH_SRC_DPORT;
    } else if (strcmp(fields, "5tuple") == 0) {
        c->hash_fields = KV_DIRECTOR_HASH_5TUPLE;
    } else {
        snprintf(err, errlen, "%s.hash_fields: expected src|src+dport|5tuple, got '%s'", where,
                 fields);
        return -EINVAL;
    }
    if (has_share && !(share >= 0 && share <= 1)) {
        snprintf(err, errlen, "%s.max_moved_share: expected a number 0..1, got %g", where, share);
        return -EINVAL;
    }
    c->gue_port = (uint16_t)port;
    c->has_max_moved_share = has_share > 0;
    c->max_moved_share = share;
    return 0;
}

void kv_director_force_clear(struct kv_director_force *f)
{
    free(f->author);
    free(f->reason);
    memset(f, 0, sizeof(*f));
}

int kv_director_force_decode(const json_t *v, const char *where, struct kv_director_force *f,
                             char *err, size_t errlen)
{
    const char *expires = NULL, *author = NULL, *reason = NULL;
    int rc;

    memset(f, 0, sizeof(*f));
    if ((rc = json_get_string(v, where, "expires", &expires, true, err, errlen)) < 0 ||
        (rc = json_get_string(v, where, "author", &author, false, err, errlen)) < 0 ||
        (rc = json_get_string(v, where, "reason", &reason, false, err, errlen)) < 0)
        return rc;
    if (timefmt_parse_rfc3339(expires, &f->expires) < 0) {
        snprintf(err, errlen, "%s.expires: expected an RFC 3339 time, got '%s'", where, expires);
        return -EINVAL;
    }
    if ((author && !(f->author = strdup(author))) || (reason && !(f->reason = strdup(reason))))
        return -ENOMEM;
    return 0;
}
