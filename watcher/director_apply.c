/* SPDX-License-Identifier: Apache-2.0 */
/*
 * director_apply: build -> guard -> publish -> verify -> persist. See
 * director_apply.h.
 */
#include "director_apply.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "director_build.h"
#include "director_publish.h"
#include "director_snapshot.h"
#include "log.h"

/* ---- pure parts ---- */

void director_guard_check(const struct director_table *baseline,
                          const struct director_table *candidate, double max_share, bool forced,
                          struct director_guard_result *out)
{
    struct director_table_diff d = {0};

    memset(out, 0, sizeof(*out));
    if (!baseline)
        return;
    director_table_diff(baseline, candidate, &d);
    out->moved_rows = d.primary_moved;
    out->moved_share = (double)d.primary_moved / DIRECTOR_TABLE_ROWS;
    out->over = out->moved_share > max_share;
    out->held = out->over && !forced;
}

static size_t vip_ports(const struct director_inputs *in)
{
    size_t n = 0;
    for (size_t i = 0; i < in->n_vips; i++)
        n += in->vips[i].n_ports;
    return n;
}

static bool lost_too_many(size_t base, size_t cand, double max_share)
{
    if (cand >= base)
        return false;
    return cand == 0 || (double)(base - cand) / (double)base > max_share;
}

void director_guard_shrink(const struct director_inputs *base, const struct director_inputs *cand,
                           double max_share, bool forced, struct director_guard_result *out)
{
    if (!base || !cand)
        return;
    out->base_proxies = base->n_proxies;
    out->cand_proxies = cand->n_proxies;
    out->base_vips = vip_ports(base);
    out->cand_vips = vip_ports(cand);
    out->shrunk = lost_too_many(out->base_proxies, out->cand_proxies, max_share) ||
                  lost_too_many(out->base_vips, out->cand_vips, max_share);
    out->over = out->over || out->shrunk;
    out->held = out->over && !forced;
}

int director_apply_build(const struct director_inputs *in, director_health_lookup_fn lookup,
                         void *arg, struct director_table **out, char *err, size_t errlen)
{
    return director_apply_build_rows(in, lookup, arg, 0, out, err, errlen);
}

int director_apply_build_rows(const struct director_inputs *in, director_health_lookup_fn lookup,
                              void *arg, uint32_t rows, struct director_table **out, char *err,
                              size_t errlen)
{
    struct director_proxy_input *pi;
    int rc;

    *out = NULL;
    if (!in->config.present) {
        snprintf(err, errlen, "no valid director config entry (hash_key)");
        return -ENODATA;
    }
    pi = calloc(in->n_proxies + 1, sizeof(*pi));
    if (!pi)
        return -ENOMEM;
    for (size_t i = 0; i < in->n_proxies; i++) {
        const struct director_proxy_spec *p = &in->proxies[i];
        pi[i].id = p->host;
        pi[i].address = p->address;
        pi[i].state = p->state;
        pi[i].weight = p->weight;
        pi[i].healthy = lookup ? lookup(arg, p->host) : true;
    }
    rc = director_build_table_rows(in->config.hash_key, pi, in->n_proxies, rows, out, err, errlen);
    free(pi);
    return rc;
}

/* ---- applier ---- */

struct director_apply {
    struct director_apply_opts o;
    char *pin_dir, *snapshot_path, *kv_root, *cluster, *dev;
    struct director_inputs *applied; /* KV inputs in force */
    bool *applied_health;            /* per applied->proxies[i] */
    struct director_table *table;    /* last applied table */
    uint64_t vip_hash;               /* VIP set last written */
    bool vips_written;
    struct director_apply_stats st;
    uint64_t held_hash; /* inputs hash of the held change (log once) */
};

static char *dup_opt(const char *s, bool *fail)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *fail = true;
    return d;
}

int director_apply_new(const struct director_apply_opts *o, struct director_apply **out)
{
    struct director_apply *a = calloc(1, sizeof(*a));
    bool fail = false;

    if (!a)
        return -ENOMEM;
    a->o = *o;
    a->pin_dir = dup_opt(o->pin_dir, &fail);
    a->snapshot_path = dup_opt(o->snapshot_path, &fail);
    a->kv_root = dup_opt(o->kv_root, &fail);
    a->cluster = dup_opt(o->cluster, &fail);
    a->dev = dup_opt(o->dev, &fail);
    if (fail || !a->pin_dir) {
        director_apply_free(a);
        return fail ? -ENOMEM : -EINVAL;
    }
    *out = a;
    return 0;
}

void director_apply_free(struct director_apply *a)
{
    if (!a)
        return;
    director_inputs_free(a->applied);
    free(a->applied_health);
    director_table_free(a->table);
    free(a->pin_dir);
    free(a->snapshot_path);
    free(a->kv_root);
    free(a->cluster);
    free(a->dev);
    free(a);
}

const struct director_table *director_apply_table(const struct director_apply *a)
{
    return a->table;
}

const struct director_inputs *director_apply_inputs(const struct director_apply *a)
{
    return a->applied;
}

const struct director_apply_stats *director_apply_get_stats(const struct director_apply *a)
{
    return &a->st;
}

static void set_error(struct director_apply *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void set_error(struct director_apply *a, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(a->st.last_error, sizeof(a->st.last_error), fmt, ap);
    va_end(ap);
    log_error("director: %s", a->st.last_error);
}

static uint64_t vip_set_hash(const struct director_inputs *in)
{
    uint64_t h = 1469598103934665603ull;

    for (size_t i = 0; i < in->n_vips; i++) {
        const struct director_vip_spec *v = &in->vips[i];
        for (const char *c = v->address; *c; c++)
            h = (h ^ (uint8_t)*c) * 1099511628211ull;
        h = (h ^ v->protocol) * 1099511628211ull;
        for (size_t j = 0; j < v->n_ports; j++)
            h = (h ^ v->ports[j]) * 1099511628211ull;
    }
    return h;
}

/* The VIPs of in, one per address, port and protocol. */
static int vip_list(const struct director_inputs *in, struct director_vip **out, size_t *n)
{
    size_t total = 0, k = 0;

    for (size_t i = 0; i < in->n_vips; i++)
        total += in->vips[i].n_ports;
    struct director_vip *vips = calloc(total + 1, sizeof(*vips));
    if (!vips)
        return -ENOMEM;
    for (size_t i = 0; i < in->n_vips; i++) {
        const struct director_vip_spec *v = &in->vips[i];
        for (size_t j = 0; j < v->n_ports; j++)
            vips[k++] = (struct director_vip){
                .address = v->address, .protocol = v->protocol, .port = v->ports[j]};
    }
    *out = vips;
    *n = k;
    return 0;
}

/* Publish table + config (+ VIPs if needed) into the pinned maps, verified
 * (director_publish). */
static int publish(struct director_apply *a, const struct director_inputs *in,
                   const struct director_table *t, bool *changed)
{
    struct director_publish_result res;
    struct director_vip *vips = NULL;
    uint64_t vh = vip_set_hash(in);
    size_t nvips = 0;
    char err[512];
    int rc;

    *changed = false;
    if ((rc = vip_list(in, &vips, &nvips)) < 0) {
        set_error(a, "out of memory listing the VIPs; retrying");
        return rc;
    }
    struct director_publish_table p = {
        .table = t,
        .hash_key = {in->config.hash_key[0], in->config.hash_key[1]},
        .hash_fields = in->config.hash_fields,
        .gue_port = in->config.gue_port,
        .vips = vips,
        .n_vips = nvips,
        .vips_changed = !a->vips_written || vh != a->vip_hash,
    };
    rc = director_publish_table(a->pin_dir, &p, &res, err, sizeof(err));
    free(vips);
    if (res.have_generation)
        a->st.generation = res.generation;
    if (res.verify_failed)
        a->st.verify_failures++;
    *changed = res.gen_written || res.vips_written;
    if (res.vips_written) {
        a->vips_written = true;
        a->vip_hash = vh;
    }
    if (rc < 0) {
        set_error(a, "%s; retrying", err);
        return rc;
    }
    a->st.generation_checksum = res.checksum;
    return 0;
}

static void save(struct director_apply *a, int64_t now)
{
    struct director_saved s = {0};
    char err[512];

    if (!a->snapshot_path || !a->applied)
        return;
    s.inputs = a->applied;
    s.proxies = calloc(a->applied->n_proxies + 1, sizeof(*s.proxies));
    if (!s.proxies) {
        log_error("director: saving snapshot %s: out of memory; keeping the previous file",
                  a->snapshot_path);
        a->st.snapshot_errors++;
        snprintf(a->st.snapshot_error, sizeof(a->st.snapshot_error),
                 "saving snapshot %s: out of memory", a->snapshot_path);
        return;
    }
    for (size_t i = 0; i < a->applied->n_proxies; i++) {
        s.proxies[i].healthy = a->applied_health ? a->applied_health[i] : true;
        int k = a->table ? director_table_find(a->table, a->applied->proxies[i].host) : -1;
        if (k >= 0) {
            s.proxies[i].primary_rows = a->table->proxies[k].primary_rows;
            s.proxies[i].secondary_rows = a->table->proxies[k].secondary_rows;
        }
    }
    s.kv_root = a->kv_root;
    s.cluster = a->cluster;
    s.dev = a->dev;
    s.table_checksum = a->table ? a->table->checksum : 0;
    s.generation_checksum = a->st.generation_checksum;
    s.generation = a->st.generation;
    s.saved_unix = now;
    s.applied_unix = a->st.applied_unix;
    s.last_change_unix = a->st.last_change_unix;
    s.held = a->st.held_now;
    s.held_moved_share = a->st.held_moved_share;
    s.held_since_unix = a->st.held_since_unix;
    s.last_error = a->st.last_error;
    s.tier = a->table ? (char *)director_table_tier_name(a->table->tier) : NULL;
    s.balance = a->table ? a->table->balance_max_over_mean : 0;
    if (director_snapshot_save(&s, a->snapshot_path, err, sizeof(err)) < 0) {
        /* every verify retries: log when the reason changes, count each */
        if (strcmp(err, a->st.snapshot_error) != 0)
            log_error("director: %s; the previous snapshot stays on disk, not ready until a "
                      "write succeeds (forwarding goes on)",
                      err);
        a->st.snapshot_errors++;
        snprintf(a->st.snapshot_error, sizeof(a->st.snapshot_error), "%s", err);
    } else {
        if (a->st.snapshot_error[0])
            log_info("director: snapshot %s written again", a->snapshot_path);
        a->st.snapshot_error[0] = '\0';
    }
    free(s.proxies);
}

int director_apply_run(struct director_apply *a, const struct director_inputs *in,
                       director_health_lookup_fn lookup, void *arg, int64_t now_unix,
                       enum director_apply_outcome *outcome)
{
    struct director_table *cand = NULL, *base = NULL;
    const struct director_inputs *use = in;
    struct director_guard_result g = {0};
    bool changed = false, held = false;
    char err[512];
    int rc;

    *outcome = DIRECTOR_APPLY_ERROR;
    if (!in->config.present && a->applied) {
        /* a KV view without config cannot key the table: keep the inputs
         * in force (health still applies) */
        log_warn("director: KV has no valid %sdirector/%s/config; keeping the applied inputs",
                 a->kv_root ? a->kv_root : "", a->cluster ? a->cluster : "");
        use = a->applied;
    }
    rc = director_apply_build(use, lookup, arg, &cand, err, sizeof(err));
    if (rc < 0 && rc != -ENOENT) {
        set_error(a, "building the table failed: %s; keeping the table in force", err);
        goto fail;
    }
    if (a->applied && use != a->applied && use->hash != a->applied->hash) {
        rc = director_apply_build(a->applied, lookup, arg, &base, err, sizeof(err));
        if (rc < 0 && rc != -ENOENT) {
            director_table_free(base);
            base = NULL; /* the old inputs no longer build: nothing to compare */
        }
        double max = use->config.has_max_moved_share ? use->config.max_moved_share
                                                     : a->o.default_max_moved_share;
        bool forced = director_force_active(&use->force, now_unix);
        director_guard_check(base, cand, max, forced, &g);
        director_guard_shrink(a->applied, use, max, forced, &g);
        if (g.held && g.shrunk) {
            held = true;
            if (a->held_hash != use->hash) {
                log_warn("director: KV change leaves %zu of %zu proxies and %zu of %zu VIP ports "
                         "(more than max_moved_share %.1f%% gone, or none left); held back "
                         "until %sdirector/%s/ is restored or force allows it",
                         g.cand_proxies, g.base_proxies, g.cand_vips, g.base_vips, 100 * max,
                         a->kv_root, a->cluster);
                a->held_hash = use->hash;
                a->st.held_since_unix = now_unix;
            }
            a->st.held++;
            director_table_free(cand);
            cand = base;
            base = NULL;
            use = a->applied;
        } else if (g.held) {
            held = true;
            if (a->held_hash != use->hash) {
                log_warn("director: KV change would move %.1f%% of the rows (%u) to other "
                         "proxies, more than max_moved_share %.1f%%; held back until it shrinks "
                         "or %sdirector/%s/force allows it",
                         100 * g.moved_share, g.moved_rows, 100 * max, a->kv_root, a->cluster);
                a->held_hash = use->hash;
                a->st.held_since_unix = now_unix;
            }
            a->st.held++;
            director_table_free(cand);
            cand = base;
            base = NULL;
            use = a->applied;
        } else if (g.over) {
            log_warn("director: KV change moves %.1f%% of the rows (%zu of %zu proxies, %zu of "
                     "%zu VIP ports), allowed by force (%s: %s)",
                     100 * g.moved_share, g.cand_proxies, g.base_proxies, g.cand_vips, g.base_vips,
                     use->force.author ? use->force.author : "?",
                     use->force.reason ? use->force.reason : "");
        }
        director_table_free(base); /* NULL when it became the candidate */
        base = NULL;
    }
    if (!cand) {
        set_error(a, "no table to apply; keeping the table in force");
        rc = -EINVAL;
        goto fail;
    }
    a->st.held_now = held;
    a->st.held_moved_share = held ? g.moved_share : 0;
    if (!held) {
        a->held_hash = 0;
        a->st.held_since_unix = 0;
    }
    rc = publish(a, use, cand, &changed);
    if (rc < 0)
        goto fail;
    if (use != a->applied) {
        struct director_inputs *copy = director_inputs_dup(use);
        if (!copy) {
            rc = -ENOMEM;
            set_error(a, "out of memory keeping the applied inputs");
            goto fail;
        }
        director_inputs_free(a->applied);
        a->applied = copy;
    }
    bool *health = calloc(a->applied->n_proxies + 1, sizeof(*health));
    if (health) {
        for (size_t i = 0; i < a->applied->n_proxies; i++)
            health[i] = lookup ? lookup(arg, a->applied->proxies[i].host) : true;
        free(a->applied_health);
        a->applied_health = health;
    }
    bool table_changed = !a->table || a->table->checksum != cand->checksum;
    director_table_free(a->table);
    a->table = cand;
    cand = NULL;
    a->st.applied_unix = now_unix;
    a->st.last_error[0] = '\0';
    if (changed) {
        a->st.applies++;
        if (table_changed)
            a->st.last_change_unix = now_unix;
        log_info("director: generation %u active on %s: %u proxies (%s), table checksum "
                 "%016llx, max/mean %.3f",
                 a->st.generation, a->dev ? a->dev : a->pin_dir, a->table->proxy_count,
                 director_table_tier_name(a->table->tier), (unsigned long long)a->table->checksum,
                 a->table->balance_max_over_mean);
        *outcome = DIRECTOR_APPLY_APPLIED;
    } else {
        a->st.unchanged++;
        *outcome = DIRECTOR_APPLY_UNCHANGED;
    }
    save(a, now_unix);
    return 0;
fail:
    a->st.errors++;
    director_table_free(cand);
    director_table_free(base);
    save(a, now_unix);
    return rc;
}

int director_apply_load(struct director_apply *a, struct director_inputs **in, bool **healthy)
{
    struct director_saved s;
    char err[512];
    int rc;

    if (!a->snapshot_path)
        return -ENOENT;
    rc = director_snapshot_load(a->snapshot_path, &s, err, sizeof(err));
    if (rc < 0) {
        if (rc != -ENOENT)
            log_warn("director: %s; starting without it", err);
        return rc;
    }
    bool *h = calloc(s.inputs->n_proxies + 1, sizeof(*h));
    struct director_inputs *copy = director_inputs_dup(s.inputs);
    if (!h || !copy) {
        free(h);
        director_inputs_free(copy);
        director_saved_clear(&s);
        return -ENOMEM;
    }
    for (size_t i = 0; i < s.inputs->n_proxies; i++)
        h[i] = s.proxies[i].healthy;
    /* these inputs were applied: a restart compares KV changes with them */
    director_inputs_free(a->applied);
    a->applied = s.inputs;
    s.inputs = NULL;
    a->st.last_change_unix = s.last_change_unix;
    log_info("director: snapshot %s: %zu proxies, %zu VIPs, table checksum %016llx (saved %lld)",
             a->snapshot_path, copy->n_proxies, copy->n_vips, (unsigned long long)s.table_checksum,
             (long long)s.saved_unix);
    director_saved_clear(&s);
    *in = copy;
    *healthy = h;
    return 0;
}
