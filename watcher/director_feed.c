/* SPDX-License-Identifier: Apache-2.0 */
/*
 * director_feed: KV entries under director/<cluster>/ -> director_inputs,
 * and the blocking-query watch that delivers them. See director_feed.h.
 */
#include "director_feed.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "director_config.h"
#include "json_util.h"
#include "log.h"
#include "siphash.h"
#include "timefmt.h"

/* ---- freeing and copying ---- */

static void proxy_clear(struct director_proxy_spec *p)
{
    free(p->host);
    free(p->address);
    free(p->health_path);
    memset(p, 0, sizeof(*p));
}

static void vip_clear(struct director_vip_spec *v)
{
    free(v->name);
    free(v->address);
    free(v->ports);
    memset(v, 0, sizeof(*v));
}

static void force_clear(struct director_force *f)
{
    free(f->author);
    free(f->reason);
    memset(f, 0, sizeof(*f));
}

void director_inputs_free(struct director_inputs *in)
{
    if (!in)
        return;
    for (size_t i = 0; i < in->n_proxies; i++)
        proxy_clear(&in->proxies[i]);
    for (size_t i = 0; i < in->n_vips; i++)
        vip_clear(&in->vips[i]);
    force_clear(&in->force);
    free(in->proxies);
    free(in->vips);
    free(in);
}

static char *dup_or_null(const char *s, bool *fail)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *fail = true;
    return d;
}

static int proxy_copy(struct director_proxy_spec *dst, const struct director_proxy_spec *src)
{
    bool fail = false;

    *dst = *src;
    dst->host = dup_or_null(src->host, &fail);
    dst->address = dup_or_null(src->address, &fail);
    dst->health_path = dup_or_null(src->health_path, &fail);
    if (fail) {
        proxy_clear(dst);
        return -ENOMEM;
    }
    return 0;
}

static int vip_copy(struct director_vip_spec *dst, const struct director_vip_spec *src)
{
    bool fail = false;

    *dst = *src;
    dst->name = dup_or_null(src->name, &fail);
    dst->address = dup_or_null(src->address, &fail);
    dst->ports = NULL;
    if (src->n_ports) {
        dst->ports = malloc(src->n_ports * sizeof(*dst->ports));
        if (dst->ports)
            memcpy(dst->ports, src->ports, src->n_ports * sizeof(*dst->ports));
        else
            fail = true;
    }
    if (fail) {
        vip_clear(dst);
        return -ENOMEM;
    }
    return 0;
}

static int force_copy(struct director_force *dst, const struct director_force *src)
{
    bool fail = false;

    *dst = *src;
    dst->author = dup_or_null(src->author, &fail);
    dst->reason = dup_or_null(src->reason, &fail);
    if (fail) {
        force_clear(dst);
        return -ENOMEM;
    }
    return 0;
}

struct director_inputs *director_inputs_dup(const struct director_inputs *in)
{
    struct director_inputs *d = calloc(1, sizeof(*d));

    if (!d)
        return NULL;
    d->config = in->config;
    d->hash = in->hash;
    d->proxies = calloc(in->n_proxies + 1, sizeof(*d->proxies));
    d->vips = calloc(in->n_vips + 1, sizeof(*d->vips));
    if (!d->proxies || !d->vips)
        goto fail;
    for (size_t i = 0; i < in->n_proxies; i++, d->n_proxies++)
        if (proxy_copy(&d->proxies[i], &in->proxies[i]) < 0)
            goto fail;
    for (size_t i = 0; i < in->n_vips; i++, d->n_vips++)
        if (vip_copy(&d->vips[i], &in->vips[i]) < 0)
            goto fail;
    if (force_copy(&d->force, &in->force) < 0)
        goto fail;
    return d;
fail:
    director_inputs_free(d);
    return NULL;
}

const struct director_proxy_spec *director_inputs_proxy(const struct director_inputs *in,
                                                        const char *host)
{
    for (size_t i = 0; in && i < in->n_proxies; i++)
        if (strcmp(in->proxies[i].host, host) == 0)
            return &in->proxies[i];
    return NULL;
}

bool director_force_active(const struct director_force *f, int64_t now_unix)
{
    return f->present && f->expires_unix > now_unix;
}

/* ---- parsing one entry ---- */

/* Canonical text of an IPv4/IPv6 address: 0, or -EINVAL. */
static int canon_addr(const char *text, char *buf, size_t len)
{
    unsigned char a[16];

    if (inet_pton(AF_INET, text, a) == 1)
        return inet_ntop(AF_INET, a, buf, (socklen_t)len) ? 0 : -EINVAL;
    if (inet_pton(AF_INET6, text, a) == 1)
        return inet_ntop(AF_INET6, a, buf, (socklen_t)len) ? 0 : -EINVAL;
    return -EINVAL;
}

/* A key segment usable as a table id: printable ASCII, no '/', no space. */
static bool good_segment(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > DIRECTOR_TABLE_ID_MAX)
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

static int parse_proxy(const json_t *v, const char *host, const char *where,
                       struct director_proxy_spec *p, char *err, size_t errlen)
{
    const char *addr = NULL, *state = NULL, *path = NULL;
    json_t *health = NULL;
    int64_t weight = 0, port = 0;
    char canon[INET6_ADDRSTRLEN];
    int rc;

    if (!good_segment(host)) {
        snprintf(err, errlen, "%s: host name must be 1..%u printable characters", where,
                 DIRECTOR_TABLE_ID_MAX);
        return -EINVAL;
    }
    if ((rc = json_get_string(v, where, "address", &addr, true, err, errlen)) < 0 ||
        (rc = json_get_string(v, where, "state", &state, true, err, errlen)) < 0 ||
        (rc = json_get_int(v, where, "weight", &weight, 1, DIRECTOR_TABLE_MAX_WEIGHT, false, err,
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
    if (canon_addr(addr, canon, sizeof(canon)) < 0) {
        snprintf(err, errlen, "%s.address: '%s' is not an IPv4 or IPv6 address", where, addr);
        return -EINVAL;
    }
    if (director_proxy_state_parse(state, &p->state) < 0) {
        snprintf(err, errlen, "%s.state: expected filling|active|draining|inactive, got '%s'",
                 where, state);
        return -EINVAL;
    }
    p->weight = (uint32_t)weight;
    p->health_port = (uint16_t)port;
    p->host = strdup(host);
    p->address = strdup(canon);
    p->health_path = path ? strdup(path) : NULL;
    if (!p->host || !p->address || (path && !p->health_path)) {
        proxy_clear(p);
        return -ENOMEM;
    }
    return 0;
}

static int parse_vip(const json_t *v, const char *name, const char *where,
                     struct director_vip_spec *out, char *err, size_t errlen)
{
    const char *addr = NULL, *proto = NULL;
    json_t *ports = NULL;
    char canon[INET6_ADDRSTRLEN];
    __u8 pr;
    int rc;

    if (!good_segment(name)) {
        snprintf(err, errlen, "%s: VIP name must be printable without '/'", where);
        return -EINVAL;
    }
    if ((rc = json_get_string(v, where, "address", &addr, true, err, errlen)) < 0 ||
        (rc = json_get_string(v, where, "protocol", &proto, true, err, errlen)) < 0 ||
        (rc = json_get_array(v, where, "ports", &ports, true, err, errlen)) < 0)
        return rc;
    if (canon_addr(addr, canon, sizeof(canon)) < 0) {
        snprintf(err, errlen, "%s.address: '%s' is not an IPv4 or IPv6 address", where, addr);
        return -EINVAL;
    }
    if (director_parse_proto(proto, &pr) < 0) {
        snprintf(err, errlen, "%s.protocol: expected tcp|udp, got '%s'", where, proto);
        return -EINVAL;
    }
    size_t n = json_array_size(ports);
    if (n == 0 || n > 1024) {
        snprintf(err, errlen, "%s.ports: expected 1..1024 ports, got %zu", where, n);
        return -EINVAL;
    }
    uint16_t *pv = calloc(n, sizeof(*pv));
    if (!pv)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(ports, i);
        json_int_t port = json_is_integer(e) ? json_integer_value(e) : 0;
        if (port < 1 || port > 65535) {
            snprintf(err, errlen, "%s.ports[%zu]: expected integer 1..65535, got %s", where, i,
                     json_is_integer(e) ? "out of range" : json_type_desc(e));
            free(pv);
            return -EINVAL;
        }
        for (size_t j = 0; j < i; j++) {
            if (pv[j] == port) {
                snprintf(err, errlen, "%s.ports[%zu]: duplicate port %d", where, i, (int)port);
                free(pv);
                return -EINVAL;
            }
        }
        pv[i] = (uint16_t)port;
    }
    out->name = strdup(name);
    out->address = strdup(canon);
    out->ports = pv;
    out->n_ports = n;
    out->protocol = pr;
    if (!out->name || !out->address) {
        vip_clear(out);
        return -ENOMEM;
    }
    return 0;
}

static int parse_config(const json_t *v, const char *where, struct director_kv_config *c, char *err,
                        size_t errlen)
{
    const char *key = NULL, *fields = NULL;
    int64_t port = DROVER_GUE_PORT_DEFAULT;
    double share = 0;
    int rc = 0, has_share = 0;

    memset(c, 0, sizeof(*c));
    if ((rc = json_get_string(v, where, "hash_key", &key, true, err, errlen)) < 0 ||
        (rc = json_get_int(v, where, "gue_port", &port, 1, 65535, false, err, errlen)) < 0 ||
        (rc = json_get_string(v, where, "hash_fields", &fields, false, err, errlen)) < 0 ||
        (has_share = json_get_double(v, where, "max_moved_share", &share, false, err, errlen)) < 0)
        return has_share < 0 ? has_share : rc;
    if (director_parse_hash_key(key, c->hash_key) < 0) {
        snprintf(err, errlen, "%s.hash_key: expected 32 hex digits", where);
        return -EINVAL;
    }
    if (fields && director_parse_hash_fields(fields, &c->hash_fields) < 0) {
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
    c->present = true;
    return 0;
}

static int parse_force(const json_t *v, const char *where, struct director_force *f, char *err,
                       size_t errlen)
{
    const char *expires = NULL, *author = NULL, *reason = NULL;
    int rc;

    memset(f, 0, sizeof(*f));
    if ((rc = json_get_string(v, where, "expires", &expires, true, err, errlen)) < 0 ||
        (rc = json_get_string(v, where, "author", &author, false, err, errlen)) < 0 ||
        (rc = json_get_string(v, where, "reason", &reason, false, err, errlen)) < 0)
        return rc;
    if (timefmt_parse_rfc3339(expires, &f->expires_unix) < 0) {
        snprintf(err, errlen, "%s.expires: expected an RFC 3339 time, got '%s'", where, expires);
        return -EINVAL;
    }
    f->author = author ? strdup(author) : NULL;
    f->reason = reason ? strdup(reason) : NULL;
    if ((author && !f->author) || (reason && !f->reason)) {
        force_clear(f);
        return -ENOMEM;
    }
    f->present = true;
    return 0;
}

static int push_proxy(struct director_inputs *in, struct director_proxy_spec *p)
{
    void *n = realloc(in->proxies, (in->n_proxies + 1) * sizeof(*in->proxies));
    if (!n)
        return -ENOMEM;
    in->proxies = n;
    in->proxies[in->n_proxies++] = *p;
    return 0;
}

static int push_vip(struct director_inputs *in, struct director_vip_spec *v)
{
    void *n = realloc(in->vips, (in->n_vips + 1) * sizeof(*in->vips));
    if (!n)
        return -ENOMEM;
    in->vips = n;
    in->vips[in->n_vips++] = *v;
    return 0;
}

int director_inputs_add_entry(struct director_inputs *in, const char *rel, const char *value,
                              size_t len, char *err, size_t errlen)
{
    json_t *root = NULL;
    const char *seg = NULL;
    enum { PROXY, VIP, CONFIG, FORCE } kind;
    int rc;

    if (strncmp(rel, "proxies/", 8) == 0) {
        kind = PROXY;
        seg = rel + 8;
    } else if (strncmp(rel, "vips/", 5) == 0) {
        kind = VIP;
        seg = rel + 5;
    } else if (strcmp(rel, "config") == 0) {
        kind = CONFIG;
    } else if (strcmp(rel, "force") == 0) {
        kind = FORCE;
    } else {
        return 0; /* not ours (folders, future keys) */
    }
    if (seg && *seg == '\0')
        return 0; /* the folder key itself ("proxies/") */
    if (!value || len == 0) {
        snprintf(err, errlen, "%s: empty value", rel);
        return -EINVAL;
    }
    rc = json_from_buffer(value, len, rel, &root, err, errlen);
    if (rc < 0)
        return -EINVAL;
    if (!json_is_object(root)) {
        snprintf(err, errlen, "%s: expected a JSON object, got %s", rel, json_type_desc(root));
        rc = -EINVAL;
        goto out;
    }
    switch (kind) {
    case PROXY: {
        struct director_proxy_spec p = {0};
        if (director_inputs_proxy(in, seg)) {
            snprintf(err, errlen, "%s: duplicate host", rel);
            rc = -EINVAL;
            break;
        }
        rc = parse_proxy(root, seg, rel, &p, err, errlen);
        if (rc == 0 && (rc = push_proxy(in, &p)) < 0)
            proxy_clear(&p);
        break;
    }
    case VIP: {
        struct director_vip_spec v = {0};
        rc = parse_vip(root, seg, rel, &v, err, errlen);
        if (rc == 0 && (rc = push_vip(in, &v)) < 0)
            vip_clear(&v);
        break;
    }
    case CONFIG:
        rc = parse_config(root, rel, &in->config, err, errlen);
        break;
    case FORCE:
        force_clear(&in->force);
        rc = parse_force(root, rel, &in->force, err, errlen);
        break;
    }
out:
    json_decref(root);
    return rc;
}

/* Keep the last good value of rel from prev (if any) after its new value
 * turned out bad. 1 = kept, 0 = nothing to keep, -ENOMEM. */
static int keep_previous(struct director_inputs *in, const struct director_inputs *prev,
                         const char *rel)
{
    if (!prev)
        return 0;
    if (strncmp(rel, "proxies/", 8) == 0) {
        const struct director_proxy_spec *p = director_inputs_proxy(prev, rel + 8);
        struct director_proxy_spec c;
        if (!p || director_inputs_proxy(in, p->host))
            return 0;
        if (proxy_copy(&c, p) < 0)
            return -ENOMEM;
        if (push_proxy(in, &c) < 0) {
            proxy_clear(&c);
            return -ENOMEM;
        }
        return 1;
    }
    if (strncmp(rel, "vips/", 5) == 0) {
        for (size_t i = 0; i < prev->n_vips; i++) {
            if (strcmp(prev->vips[i].name, rel + 5) != 0)
                continue;
            struct director_vip_spec c;
            if (vip_copy(&c, &prev->vips[i]) < 0)
                return -ENOMEM;
            if (push_vip(in, &c) < 0) {
                vip_clear(&c);
                return -ENOMEM;
            }
            return 1;
        }
        return 0;
    }
    if (strcmp(rel, "config") == 0 && prev->config.present) {
        in->config = prev->config;
        return 1;
    }
    if (strcmp(rel, "force") == 0 && prev->force.present) {
        force_clear(&in->force);
        return force_copy(&in->force, &prev->force) < 0 ? -ENOMEM : 1;
    }
    return 0;
}

static int cmp_proxy(const void *a, const void *b)
{
    return strcmp(((const struct director_proxy_spec *)a)->host,
                  ((const struct director_proxy_spec *)b)->host);
}

static int cmp_vip(const void *a, const void *b)
{
    return strcmp(((const struct director_vip_spec *)a)->name,
                  ((const struct director_vip_spec *)b)->name);
}

static void hash_str(struct siphash_state *st, const char *s)
{
    uint32_t n = s ? (uint32_t)strlen(s) + 1 : 0;
    siphash24_update(st, &n, sizeof(n));
    if (s)
        siphash24_update(st, s, n);
}

static void hash_u64(struct siphash_state *st, uint64_t v)
{
    siphash24_update(st, &v, sizeof(v));
}

void director_inputs_finish(struct director_inputs *in)
{
    static const uint8_t zero[SIPHASH_KEY_LEN];
    struct siphash_state st;

    if (in->n_proxies)
        qsort(in->proxies, in->n_proxies, sizeof(*in->proxies), cmp_proxy);
    if (in->n_vips)
        qsort(in->vips, in->n_vips, sizeof(*in->vips), cmp_vip);
    siphash24_init(&st, zero);
    hash_u64(&st, in->n_proxies);
    for (size_t i = 0; i < in->n_proxies; i++) {
        const struct director_proxy_spec *p = &in->proxies[i];
        hash_str(&st, p->host);
        hash_str(&st, p->address);
        hash_str(&st, p->health_path);
        hash_u64(&st, (uint64_t)p->state << 48 | (uint64_t)p->health_port << 32 | p->weight);
    }
    hash_u64(&st, in->n_vips);
    for (size_t i = 0; i < in->n_vips; i++) {
        const struct director_vip_spec *v = &in->vips[i];
        hash_str(&st, v->name);
        hash_str(&st, v->address);
        hash_u64(&st, v->protocol);
        hash_u64(&st, v->n_ports);
        for (size_t j = 0; j < v->n_ports; j++)
            hash_u64(&st, v->ports[j]);
    }
    const struct director_kv_config *c = &in->config;
    hash_u64(&st, c->present);
    hash_u64(&st, c->hash_key[0]);
    hash_u64(&st, c->hash_key[1]);
    hash_u64(&st, (uint64_t)c->hash_fields << 32 | c->gue_port);
    hash_u64(&st, c->has_max_moved_share);
    hash_u64(&st, (uint64_t)(c->max_moved_share * 1e9));
    hash_u64(&st, in->force.present);
    hash_u64(&st, (uint64_t)in->force.expires_unix);
    hash_str(&st, in->force.author);
    hash_str(&st, in->force.reason);
    in->hash = siphash24_final(&st);
}

/* The table builder refuses two live proxies on one address and more than
 * DIRECTOR_TABLE_MAX_PROXIES proxies; those are entry errors here, so one
 * bad entry cannot fail the whole table. Drops the later entries (in host
 * order) and returns how many. */
static unsigned drop_conflicts(struct director_inputs *in)
{
    unsigned dropped = 0;
    size_t w = 0;

    for (size_t i = 0; i < in->n_proxies; i++) {
        struct director_proxy_spec *p = &in->proxies[i];
        const char *why = NULL;
        if (w >= DIRECTOR_TABLE_MAX_PROXIES)
            why = "more than the 1024 proxies a table can hold";
        for (size_t j = 0; !why && p->state != DIRECTOR_PROXY_INACTIVE && j < w; j++)
            if (in->proxies[j].state != DIRECTOR_PROXY_INACTIVE &&
                strcmp(in->proxies[j].address, p->address) == 0)
                why = "address already used by another live proxy";
        if (why) {
            log_warn("director: KV proxies/%s: %s (%s); entry skipped", p->host, why, p->address);
            proxy_clear(p);
            dropped++;
            continue;
        }
        in->proxies[w++] = *p;
    }
    in->n_proxies = w;
    return dropped;
}

int director_inputs_parse(const struct consul_kv_list *kv, const char *prefix,
                          const struct director_inputs *previous, struct director_inputs **out,
                          unsigned *bad_out)
{
    struct director_inputs *in = calloc(1, sizeof(*in));
    size_t plen = strlen(prefix);
    unsigned bad = 0;
    char err[512];

    if (!in)
        return -ENOMEM;
    for (size_t i = 0; kv && i < kv->n; i++) {
        const struct consul_kv *e = &kv->items[i];
        if (strncmp(e->key, prefix, plen) != 0)
            continue;
        const char *rel = e->key + plen;
        int rc = director_inputs_add_entry(in, rel, (const char *)e->value, e->value_len, err,
                                           sizeof(err));
        if (rc == -ENOMEM)
            goto nomem;
        if (rc == 0)
            continue;
        bad++;
        int kept = keep_previous(in, previous, rel);
        if (kept < 0)
            goto nomem;
        log_warn("director: KV %s: %s; %s", e->key, err,
                 kept ? "keeping its last good value" : "entry skipped");
    }
    director_inputs_finish(in); /* sorts: conflicts resolve the same way everywhere */
    bad += drop_conflicts(in);
    director_inputs_finish(in);
    *out = in;
    if (bad_out)
        *bad_out = bad;
    return 0;
nomem:
    director_inputs_free(in);
    return -ENOMEM;
}

/* ---- the watch ---- */

struct director_feed {
    struct consul_watch *watch;
    struct director_feed_opts o;
    char *prefix;
    struct director_feed_stats st;
};

static void on_change(void *arg, struct consul_response *resp)
{
    struct director_feed *f = arg;
    const struct director_inputs *cur = f->o.current ? f->o.current(f->o.arg) : NULL;
    struct director_inputs *in = NULL;
    unsigned bad = 0;

    if (director_inputs_parse(resp->kv, f->prefix, cur, &in, &bad) < 0) {
        f->st.errors++;
        log_error("director: parsing KV %s: out of memory; keeping the inputs in force", f->prefix);
        return;
    }
    f->st.deliveries++;
    f->st.bad_entries += bad;
    f->st.delivered = true;
    f->st.healthy = true;
    f->o.on_inputs(f->o.arg, in, bad);
}

static void on_error(void *arg, struct consul_response *resp)
{
    struct director_feed *f = arg;

    f->st.errors++;
    f->st.healthy = false;
    if (f->o.on_error)
        f->o.on_error(f->o.arg, resp->err, resp->errmsg ? resp->errmsg : "unknown error");
}

int director_feed_start(struct consul_client *c, const struct director_feed_opts *o,
                        struct director_feed **out)
{
    struct director_feed *f = calloc(1, sizeof(*f));
    int rc;

    if (!f)
        return -ENOMEM;
    f->o = *o;
    f->prefix = strdup(o->prefix);
    if (!f->prefix) {
        free(f);
        return -ENOMEM;
    }
    struct consul_watch_opts wo = {
        .kind = CONSUL_WATCH_KV_PREFIX,
        .target = f->prefix,
        .wait_s = o->wait_s,
        .on_change = on_change,
        .on_error = on_error,
        .arg = f,
    };
    rc = consul_watch_start(c, &wo, &f->watch);
    if (rc < 0) {
        free(f->prefix);
        free(f);
        return rc;
    }
    *out = f;
    return 0;
}

void director_feed_stop(struct director_feed *f)
{
    if (!f)
        return;
    consul_watch_stop(f->watch);
    free(f->prefix);
    free(f);
}

void director_feed_get_stats(const struct director_feed *f, struct director_feed_stats *out)
{
    *out = f->st;
}
