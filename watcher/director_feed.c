/* SPDX-License-Identifier: Apache-2.0 */
/*
 * director_feed: KV entries under director/<cluster>/ -> director_inputs,
 * and the blocking-query watch that delivers them. See director_feed.h.
 */
#include "director_feed.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "director_config.h"
#include "kv_director.h"
#include "json_util.h"
#include "log.h"
#include "siphash.h"

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

/* The schema module's vocabulary is numbered as the table's and the maps'. */
_Static_assert((int)KV_DIRECTOR_INACTIVE == (int)DIRECTOR_PROXY_INACTIVE &&
                   (int)KV_DIRECTOR_ACTIVE == (int)DIRECTOR_PROXY_ACTIVE &&
                   (int)KV_DIRECTOR_FILLING == (int)DIRECTOR_PROXY_FILLING &&
                   (int)KV_DIRECTOR_DRAINING == (int)DIRECTOR_PROXY_DRAINING,
               "director proxy states");
_Static_assert((int)KV_DIRECTOR_HASH_SRC == (int)DROVER_HASH_SRC &&
                   (int)KV_DIRECTOR_HASH_SRC_DPORT == (int)DROVER_HASH_SRC_DPORT &&
                   (int)KV_DIRECTOR_HASH_5TUPLE == (int)DROVER_HASH_5TUPLE,
               "director hash fields");
_Static_assert(KV_DIRECTOR_HOST_MAX == DIRECTOR_TABLE_ID_MAX &&
                   KV_DIRECTOR_MAX_WEIGHT == DIRECTOR_TABLE_MAX_WEIGHT &&
                   KV_DIRECTOR_GUE_PORT == DROVER_GUE_PORT_DEFAULT,
               "director limits");

static int parse_proxy(const json_t *v, const char *host, const char *where,
                       struct director_proxy_spec *p, char *err, size_t errlen)
{
    struct kv_director_proxy k;
    int rc = kv_director_proxy_decode(v, host, where, &k, err, errlen);

    if (rc == 0) {
        p->state = (enum director_proxy_state)k.state;
        p->weight = k.weight;
        p->health_port = k.health_port;
        p->host = strdup(host);
        p->address = strdup(k.address);
        p->health_path = k.health_path;
        k.health_path = NULL;
        if (!p->host || !p->address) {
            proxy_clear(p);
            rc = -ENOMEM;
        }
    }
    kv_director_proxy_clear(&k);
    return rc;
}

static int parse_vip(const json_t *v, const char *name, const char *where,
                     struct director_vip_spec *out, char *err, size_t errlen)
{
    struct kv_director_vip k;
    int rc = kv_director_vip_decode(v, name, where, &k, err, errlen);

    if (rc == 0) {
        out->name = strdup(name);
        out->address = strdup(k.address);
        out->ports = k.ports;
        out->n_ports = k.n_ports;
        out->protocol = k.protocol;
        k.ports = NULL;
        if (!out->name || !out->address) {
            vip_clear(out);
            rc = -ENOMEM;
        }
    }
    kv_director_vip_clear(&k);
    return rc;
}

static int parse_config(const json_t *v, const char *where, struct director_kv_config *c, char *err,
                        size_t errlen)
{
    struct kv_director_config k;
    int rc = kv_director_config_decode(v, where, &k, err, errlen);

    memset(c, 0, sizeof(*c));
    if (rc < 0)
        return rc;
    /* two little-endian key words (bytes 0-7, 8-15), as drover_gen_config */
    for (int i = 7; i >= 0; i--) {
        c->hash_key[0] = c->hash_key[0] << 8 | k.hash_key[i];
        c->hash_key[1] = c->hash_key[1] << 8 | k.hash_key[8 + i];
    }
    c->hash_fields = (uint32_t)k.hash_fields;
    c->gue_port = k.gue_port;
    c->has_max_moved_share = k.has_max_moved_share;
    c->max_moved_share = k.max_moved_share;
    c->present = true;
    return 0;
}

static int parse_force(const json_t *v, const char *where, struct director_force *f, char *err,
                       size_t errlen)
{
    struct kv_director_force k;
    int rc = kv_director_force_decode(v, where, &k, err, errlen);

    memset(f, 0, sizeof(*f));
    if (rc == 0) {
        f->expires_unix = k.expires;
        f->author = k.author;
        f->reason = k.reason;
        f->present = true;
    } else {
        kv_director_force_clear(&k);
    }
    return rc;
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
    enum kv_director_kind kind = kv_director_key_parse(rel, &seg);
    int rc;

    if (kind == KV_DIRECTOR_OTHER)
        return 0; /* not ours (folders, future keys) */
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
    case KV_DIRECTOR_PROXY: {
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
    case KV_DIRECTOR_VIP: {
        struct director_vip_spec v = {0};
        rc = parse_vip(root, seg, rel, &v, err, errlen);
        if (rc == 0 && (rc = push_vip(in, &v)) < 0)
            vip_clear(&v);
        break;
    }
    case KV_DIRECTOR_CONFIG:
        rc = parse_config(root, rel, &in->config, err, errlen);
        break;
    case KV_DIRECTOR_FORCE:
        force_clear(&in->force);
        rc = parse_force(root, rel, &in->force, err, errlen);
        break;
    case KV_DIRECTOR_OTHER:
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
    const char *name;
    enum kv_director_kind kind = kv_director_key_parse(rel, &name);

    if (!prev)
        return 0;
    if (kind == KV_DIRECTOR_PROXY) {
        const struct director_proxy_spec *p = director_inputs_proxy(prev, name);
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
    if (kind == KV_DIRECTOR_VIP) {
        for (size_t i = 0; i < prev->n_vips; i++) {
            if (strcmp(prev->vips[i].name, name) != 0)
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
    if (kind == KV_DIRECTOR_CONFIG && prev->config.present) {
        in->config = prev->config;
        return 1;
    }
    if (kind == KV_DIRECTOR_FORCE && prev->force.present) {
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
