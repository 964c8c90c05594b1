/* SPDX-License-Identifier: Apache-2.0 */
/*
 * director_publish: tables into the director maps, and back. See
 * director_publish.h.
 */
#include "director_publish.h"

#include <arpa/inet.h>
#include <assert.h>
#include <bpf/bpf.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "director_build.h"
#include "director_config.h"
#include "director_maps.h"
#include "errmsg.h"
#include "log.h"

_Static_assert(DIRECTOR_TABLE_ROWS == DROVER_TABLE_ROWS, "table sizes differ");
_Static_assert(DIRECTOR_TABLE_MAX_PROXIES == DROVER_MAX_PROXIES, "proxy limits differ");
_Static_assert(DIRECTOR_TABLE_NONE == DROVER_ROW_NONE, "empty row markers differ");
_Static_assert((int)DIRECTOR_PROXY_FILLING == (int)DROVER_PROXY_FILLING &&
                   (int)DIRECTOR_PROXY_DRAINING == (int)DROVER_PROXY_DRAINING &&
                   (int)DIRECTOR_PROXY_ACTIVE == (int)DROVER_PROXY_ACTIVE,
               "proxy states differ");
_Static_assert(DIRECTOR_ADDR_TEXT >= INET6_ADDRSTRLEN, "address text too short");
_Static_assert(DIRECTOR_STATS_MAX >= DROVER_STAT_MAX, "DIRECTOR_STATS_MAX too small");

int director_pin_dir(const char *root, const char *dev, char *buf, size_t len)
{
    if (!dev || !*dev || strchr(dev, '/') || strcmp(dev, ".") == 0 || strcmp(dev, "..") == 0)
        return -EINVAL;
    int n = snprintf(buf, len, "%s/%s", root ? root : DIRECTOR_PIN_ROOT, dev);

    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* ---- map layout ---- */

void director_publish_to_maps(const struct director_table *t, struct drover_proxy *proxies,
                              struct drover_row *rows)
{
    /* smaller tables (director_table_config.rows) are for tests only */
    assert(t->row_count == DROVER_TABLE_ROWS);
    for (uint32_t i = 0; i < t->proxy_count; i++) {
        const struct director_table_proxy *p = &t->proxies[i];
        memset(&proxies[i], 0, sizeof(proxies[i]));
        proxies[i].family = p->family == AF_INET6 ? DROVER_AF_INET6 : DROVER_AF_INET;
        memcpy(proxies[i].addr, p->addr, p->family == AF_INET6 ? 16 : 4);
        proxies[i].state = (__u8)p->state;
    }
    for (uint32_t r = 0; r < DROVER_TABLE_ROWS; r++) {
        rows[r].primary = t->rows[r].primary;
        rows[r].secondary = t->rows[r].secondary;
        rows[r].reserved = 0;
    }
}

int director_publish_build_proxies(const __u64 key[2], struct drover_proxy *proxies, size_t n,
                                   struct drover_row *rows)
{
    struct director_config cfg = {.n_proxies = n};
    struct director_table *t = NULL;
    char err[256];
    int rc;

    cfg.proxies = calloc(n + 1, sizeof(*cfg.proxies));
    if (!cfg.proxies)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        memcpy(cfg.proxies[i].addr, proxies[i].addr, sizeof(cfg.proxies[i].addr));
        cfg.proxies[i].family = proxies[i].family;
        cfg.proxies[i].state = proxies[i].state;
    }
    cfg.hash_key[0] = key[0];
    cfg.hash_key[1] = key[1];
    rc = director_build_from_config(&cfg, &t, err, sizeof(err));
    if (rc == 0) {
        memset(proxies, 0, n * sizeof(*proxies));
        director_publish_to_maps(t, proxies, rows);
    }
    director_table_free(t);
    free(cfg.proxies);
    return rc;
}

/* The generation config of a standalone config; src_mac and egress come
 * from the device. */
static void config_to_gen(const struct director_config *cfg,
                          const struct director_publish_device *dev, struct drover_gen_config *gen)
{
    memset(gen, 0, sizeof(*gen));
    gen->version = DROVER_MAPS_VERSION;
    gen->hash_key[0] = cfg->hash_key[0];
    gen->hash_key[1] = cfg->hash_key[1];
    gen->hash_fields = cfg->hash_fields;
    gen->gue_port = htons(cfg->gue_port);
    gen->src_v4 = cfg->src_v4;
    memcpy(gen->src_v6, cfg->src_v6, sizeof(gen->src_v6));
    memcpy(gen->gw_mac, cfg->gw_mac, sizeof(gen->gw_mac));
    memcpy(gen->src_mac, dev->src_mac, sizeof(gen->src_mac));
    gen->egress_ifindex = dev->egress_ifindex;
}

/* ---- publish ---- */

/* One generation as the maps hold it. */
struct image {
    struct drover_gen_config cfg;
    struct drover_proxy *proxies; /* DROVER_MAX_PROXIES */
    struct drover_row *rows;      /* DROVER_TABLE_ROWS */
};

static int image_alloc(struct image *img)
{
    memset(img, 0, sizeof(*img));
    img->proxies = calloc(DROVER_MAX_PROXIES, sizeof(*img->proxies));
    img->rows = calloc(DROVER_TABLE_ROWS, sizeof(*img->rows));
    return img->proxies && img->rows ? 0 : -ENOMEM;
}

static void image_free(struct image *img)
{
    free(img->proxies);
    free(img->rows);
}

/* The VIP keys of vips[0..n), deduplicated; unparsable addresses are
 * skipped (the callers validated them). *out: malloc'd. */
static int vip_keys(const struct director_vip *vips, size_t n, struct drover_vip_key **out,
                    size_t *nkeys)
{
    struct drover_vip_key *keys = calloc(n + 1, sizeof(*keys));
    size_t k = 0;

    if (!keys)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        struct drover_vip_key key = {0};
        bool dup = false;
        if (director_parse_addr(vips[i].address, &key.family, key.addr) < 0)
            continue;
        key.proto = vips[i].protocol;
        key.port = htons(vips[i].port);
        for (size_t x = 0; x < k && !dup; x++)
            dup = memcmp(&keys[x], &key, sizeof(key)) == 0;
        if (!dup)
            keys[k++] = key;
    }
    *out = keys;
    *nkeys = k;
    return 0;
}

/* Flip img in (unless active already holds it), verify, then make the VIP
 * set keys[0..nkeys). The caller holds the publish lock, so with active
 * given - img keeps settings of that generation, read under the lock -
 * nobody flipped anything in since. */
static int publish_image(struct director_maps *m, const char *where, struct image *img,
                         const __u32 *active, const struct drover_vip_key *keys, size_t nkeys,
                         bool vips_changed, struct director_publish_result *res, char *err,
                         size_t errlen)
{
    __u32 gen = 0;
    __u64 want, got = 0;
    size_t live = 0;
    int rc;

    director_gen_derive(&img->cfg);
    want = director_generation_checksum(&img->cfg, img->proxies, img->rows);
    if (active && director_maps_checksum(m, *active, &got) == 0 && got == want) {
        gen = *active;
    } else {
        rc = director_maps_publish(m, &img->cfg, img->proxies, img->rows, &gen);
        if (rc < 0) {
            errmsg_set(err, errlen,
                       "publishing a generation into %s failed: %s; the previous one stays active",
                       where, strerror(-rc));
            return rc;
        }
        rc = director_maps_checksum(m, gen, &got);
        if (rc < 0 || got != want) {
            res->verify_failed = true;
            errmsg_set(err, errlen,
                       "generation %u in %s reads back with checksum %016llx, wrote %016llx", gen,
                       where, (unsigned long long)got, (unsigned long long)want);
            return rc < 0 ? rc : -EIO;
        }
        res->gen_written = true;
    }
    res->have_generation = true;
    res->generation = gen;
    /* an apply may have replaced the set (under the lock, before ours): a
     * different count is the cheap sign of it */
    if (director_maps_count_vips(m, &live) < 0)
        live = SIZE_MAX;
    if (vips_changed || live != nkeys) {
        rc = director_maps_set_vips(m, keys, nkeys);
        if (rc < 0) {
            errmsg_set(err, errlen, "writing %zu VIP keys into %s failed: %s", nkeys, where,
                       strerror(-rc));
            return rc;
        }
        res->vips_written = true;
    }
    res->checksum = want;
    return 0;
}

/* Read the active generation into img, with the lock held: the tunnel
 * settings a table publish keeps are the ones no other publisher can
 * change before the flip. -EAGAIN when it is not of this maps version. */
static int keep_active_settings(struct director_maps *m, const char *pin_dir, struct image *img,
                                __u32 *active, char *err, size_t errlen)
{
    int rc;

    if ((rc = director_maps_active(m, active)) < 0 ||
        (rc = director_maps_read_gen(m, *active, &img->cfg, img->proxies)) < 0) {
        errmsg_set(err, errlen, "reading the active generation in %s failed: %s", pin_dir,
                   strerror(-rc));
        return rc;
    }
    if (img->cfg.version != DROVER_MAPS_VERSION) {
        errmsg_set(err, errlen,
                   "%s holds no usable generation (version %u): attach drover-director with its "
                   "tunnel settings first, or apply with this version's drover-director after "
                   "another version's; nothing written",
                   pin_dir, img->cfg.version);
        return -EAGAIN;
    }
    return 0;
}

/* Take m's publish lock, the one hold under which a publish reads, writes
 * and verifies. On failure err names the pin directory - where itself, or
 * the one of device where - and says nothing was written. */
static int publish_lock(struct director_maps *m, bool where_is_device, const char *where, char *err,
                        size_t errlen)
{
    int rc = director_maps_lock(m);

    if (rc < 0)
        errmsg_set(err, errlen, "locking the pin directory %s%s failed: %s; nothing written",
                   where_is_device ? "of " : "", where, strerror(-rc));
    return rc;
}

/* The table publish with the lock held: settings of the active
 * generation, the rest from p. */
static int publish_table_locked(struct director_maps *m, const char *pin_dir,
                                const struct director_publish_table *p, struct image *img,
                                const struct drover_vip_key *keys, size_t nkeys,
                                struct director_publish_result *res, char *err, size_t errlen)
{
    __u32 active = 0;
    int rc = keep_active_settings(m, pin_dir, img, &active, err, errlen);

    if (rc < 0)
        return rc;
    img->cfg.hash_key[0] = p->hash_key[0];
    img->cfg.hash_key[1] = p->hash_key[1];
    img->cfg.hash_fields = p->hash_fields;
    img->cfg.gue_port = htons(p->gue_port);
    memset(img->proxies, 0, DROVER_MAX_PROXIES * sizeof(*img->proxies));
    director_publish_to_maps(p->table, img->proxies, img->rows);
    img->cfg.proxy_count = p->table->proxy_count;
    return publish_image(m, pin_dir, img, &active, keys, nkeys, p->vips_changed, res, err, errlen);
}

int director_publish_table(const char *pin_dir, const struct director_publish_table *p,
                           struct director_publish_result *res, char *err, size_t errlen)
{
    struct director_maps m;
    struct drover_vip_key *keys = NULL;
    struct image img;
    size_t nkeys = 0;
    int rc;

    memset(res, 0, sizeof(*res));
    if (image_alloc(&img) < 0 || vip_keys(p->vips, p->n_vips, &keys, &nkeys) < 0) {
        image_free(&img);
        errmsg_set(err, errlen, "publishing into %s: out of memory", pin_dir);
        return -ENOMEM;
    }
    rc = director_maps_open_pinned(pin_dir, &m);
    if (rc < 0) {
        errmsg_set(err, errlen,
                   "opening the director maps in %s failed: %s (%s); keeping the tables in the "
                   "kernel",
                   pin_dir, strerror(-rc),
                   rc == -EPROTO ? "pinned by another maps version: the map and its sizes are "
                                   "logged; attach this version's drover-director"
                                 : "is drover-director attached?");
        goto out_free;
    }
    rc = publish_lock(&m, false, pin_dir, err, errlen);
    if (rc == 0) {
        rc = publish_table_locked(&m, pin_dir, p, &img, keys, nkeys, res, err, errlen);
        director_maps_unlock(&m);
    }
    director_maps_close(&m);
out_free:
    free(keys);
    image_free(&img);
    return rc;
}

int director_publish_config(struct director_maps *m, const char *where,
                            const struct director_config *cfg,
                            const struct director_publish_device *dev,
                            struct director_publish_result *res, char *err, size_t errlen)
{
    struct drover_vip_key *keys = calloc(cfg->n_vips + 1, sizeof(*keys));
    struct director_table *t = NULL;
    struct image img;
    char berr[256];
    int rc;

    memset(res, 0, sizeof(*res));
    if (image_alloc(&img) < 0 || !keys) {
        rc = -ENOMEM;
        errmsg_set(err, errlen, "%s: out of memory", where);
        goto out;
    }
    config_to_gen(cfg, dev, &img.cfg);
    /* the one table builder (director_build.h): the same proxies give the
     * same table here and in a watcher-fed director */
    rc = director_build_from_config(cfg, &t, berr, sizeof(berr));
    if (rc < 0) {
        errmsg_set(err, errlen, "building the forwarding table failed: %s",
                   rc == -ENOMEM ? "out of memory" : berr);
        goto out;
    }
    director_publish_to_maps(t, img.proxies, img.rows);
    img.cfg.proxy_count = t->proxy_count;
    for (size_t i = 0; i < cfg->n_vips; i++) {
        memcpy(keys[i].addr, cfg->vips[i].addr, sizeof(keys[i].addr));
        keys[i].port = cfg->vips[i].port;
        keys[i].proto = cfg->vips[i].proto;
        keys[i].family = cfg->vips[i].family;
    }
    /* generation and VIP set under one hold of the lock, as the table
     * publish does: no other publisher's write falls between them */
    rc = publish_lock(m, true, where, err, errlen);
    if (rc < 0)
        goto out;
    rc = publish_image(m, where, &img, NULL, keys, cfg->n_vips, true, res, err, errlen);
    director_maps_unlock(m);
out:
    director_table_free(t);
    free(keys);
    image_free(&img);
    return rc;
}

/* ---- what the kernel forwards with ---- */

void director_live_count(struct director_live *l, const struct director_live_row *rows)
{
    uint32_t n = l->n_listed;

    l->rows_without_proxy = 0;
    for (uint32_t i = 0; i < n; i++)
        l->proxies[i].primary_rows = l->proxies[i].secondary_rows = 0;
    for (uint32_t r = 0; r < DIRECTOR_TABLE_ROWS; r++) {
        if (rows[r].primary < n)
            l->proxies[rows[r].primary].primary_rows++;
        else
            l->rows_without_proxy++;
        if (rows[r].secondary < n)
            l->proxies[rows[r].secondary].secondary_rows++;
    }
}

void director_live_free(struct director_live *l)
{
    free(l->proxies);
    free(l->rows);
    l->proxies = NULL;
    l->rows = NULL;
}

int director_live_read(const char *pin_dir, bool want_rows, struct director_live *out)
{
    struct director_maps m;
    struct drover_gen_config cfg;
    struct drover_proxy *proxies = calloc(DROVER_MAX_PROXIES, sizeof(*proxies));
    struct director_live_row *rows = calloc(DROVER_TABLE_ROWS, sizeof(*rows));
    __u32 gen = 0;
    __u64 sum = 0;
    int rc;

    memset(out, 0, sizeof(*out));
    out->proxies = calloc(DROVER_MAX_PROXIES, sizeof(*out->proxies));
    if (!proxies || !rows || !out->proxies) {
        free(proxies);
        free(rows);
        director_live_free(out);
        return -ENOMEM;
    }
    rc = director_maps_open_pinned(pin_dir, &m);
    if (rc < 0)
        goto fail;
    if ((rc = director_maps_active(&m, &gen)) < 0 ||
        (rc = director_maps_read_gen(&m, gen, &cfg, proxies)) < 0 ||
        (rc = director_maps_checksum(&m, gen, &sum)) < 0) {
        director_maps_close(&m);
        goto fail;
    }
    for (uint32_t r = 0; r < DROVER_TABLE_ROWS; r++) {
        const struct drover_row *row = &m.table[(size_t)gen * DROVER_TABLE_ROWS + r];
        rows[r].primary = row->primary;
        rows[r].secondary = row->secondary;
    }
    director_maps_count_vips(&m, &out->n_vips);
    director_maps_close(&m);
    out->generation = gen;
    out->maps_version = cfg.version;
    out->proxy_count = cfg.proxy_count;
    out->n_listed = cfg.proxy_count < DROVER_MAX_PROXIES ? cfg.proxy_count : DROVER_MAX_PROXIES;
    out->gue_port = ntohs(cfg.gue_port);
    out->checksum = sum;
    for (uint32_t i = 0; i < DROVER_MAX_PROXIES; i++) {
        director_format_addr(proxies[i].family, proxies[i].addr, out->proxies[i].address,
                             sizeof(out->proxies[i].address));
        out->proxies[i].state = director_state_name(proxies[i].state);
    }
    director_live_count(out, rows);
    free(proxies);
    if (want_rows)
        out->rows = rows;
    else
        free(rows);
    return 0;
fail:
    free(proxies);
    free(rows);
    director_live_free(out);
    return rc;
}

int director_stats_read_pinned(const char *pin_dir, bool decap, struct director_stat *out,
                               size_t *n)
{
    __u64 v[DROVER_STAT_MAX];
    char path[512];
    int fd, rc;

    *n = 0;
    snprintf(path, sizeof(path), "%s/%s", pin_dir, decap ? DECAP_MAP_STATS : DIRECTOR_MAP_STATS);
    fd = bpf_obj_get(path);
    if (fd < 0) {
        rc = -errno;
        log_error("cannot open pinned map %s: %s", path, strerror(errno));
        return rc;
    }
    rc = director_stats_read(fd, v);
    close(fd);
    if (rc < 0)
        return rc;
    for (int i = 0; i < DROVER_STAT_MAX; i++) {
        if (decap ? !director_stat_in_decap(i) : !director_stat_in_director(i))
            continue;
        out[*n].name = director_stat_name(i);
        out[(*n)++].value = v[i];
    }
    return 0;
}
