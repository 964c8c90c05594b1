/* SPDX-License-Identifier: Apache-2.0 */
/*
 * slots: stable slot placement, runtime diff and mass-removal guard (see
 * slots.h). Placement looks keys up through a sorted index so a 10,000-
 * server backend costs n log n, not n^2.
 */
#include "slots.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errmsg.h"
#include "haproxy_value.h"

void slot_assignment_init(struct slot_assignment *a)
{
    a->nslots = 0;
    a->slots = NULL;
}

static void slot_server_free(struct slot_server *s)
{
    free(s->key);
    free(s->address);
    s->key = NULL;
    s->address = NULL;
}

void slot_assignment_free(struct slot_assignment *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->nslots; i++)
        if (a->slots[i].used)
            slot_server_free(&a->slots[i].srv);
    free(a->slots);
    slot_assignment_init(a);
}

static int slot_server_dup(struct slot_server *dst, const struct slot_server *src)
{
    dst->key = strdup(src->key);
    dst->address = strdup(src->address ? src->address : "");
    dst->port = src->port;
    dst->weight = src->weight;
    dst->backup = src->backup;
    if (!dst->key || !dst->address) {
        slot_server_free(dst);
        return -ENOMEM;
    }
    return 0;
}

int slot_assignment_copy(struct slot_assignment *dst, const struct slot_assignment *src)
{
    struct slot_assignment tmp;
    slot_assignment_init(&tmp);
    if (src->nslots) {
        tmp.slots = calloc(src->nslots, sizeof(*tmp.slots));
        if (!tmp.slots)
            return -ENOMEM;
    }
    tmp.nslots = src->nslots;
    for (size_t i = 0; i < src->nslots; i++) {
        if (!src->slots[i].used)
            continue;
        if (slot_server_dup(&tmp.slots[i].srv, &src->slots[i].srv) < 0) {
            slot_assignment_free(&tmp);
            return -ENOMEM;
        }
        tmp.slots[i].used = true;
    }
    slot_assignment_free(dst);
    *dst = tmp;
    return 0;
}

size_t slot_assignment_used(const struct slot_assignment *a)
{
    size_t n = 0;
    for (size_t i = 0; i < a->nslots; i++)
        n += a->slots[i].used;
    return n;
}

long slot_assignment_find(const struct slot_assignment *a, const char *key)
{
    for (size_t i = 0; i < a->nslots; i++)
        if (a->slots[i].used && strcmp(a->slots[i].srv.key, key) == 0)
            return (long)i;
    return -1;
}

int slots_name(size_t index, char *buf, size_t len)
{
    int n = snprintf(buf, len, SLOTS_NAME_PREFIX "%zu", index + 1);
    return (n < 0 || (size_t)n >= len) ? -ENOSPC : 0;
}

int slots_parse_name(const char *name, size_t *index)
{
    size_t plen = strlen(SLOTS_NAME_PREFIX);
    if (strncmp(name, SLOTS_NAME_PREFIX, plen) != 0)
        return -EINVAL;
    const char *p = name + plen;
    if (*p < '1' || *p > '9')
        return -EINVAL;
    size_t v = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return -EINVAL;
        v = v * 10 + (size_t)(*p - '0');
        if (v > SLOTS_MAX)
            return -EINVAL;
    }
    *index = v - 1;
    return 0;
}

size_t slots_grow_target(size_t needed)
{
    size_t want = needed + (needed + 3) / 4;
    size_t n = SLOTS_GROW_MIN;
    while (n < want && n < SLOTS_MAX)
        n *= 2;
    return n;
}

/* ---- placement -------------------------------------------------------- */

struct key_ref {
    const char *key;
    size_t idx; /* desired index or slot index */
};

static int key_ref_cmp(const void *a, const void *b)
{
    const struct key_ref *x = a, *y = b;
    return strcmp(x->key, y->key);
}

static const struct key_ref *key_ref_find(const struct key_ref *v, size_t n, const char *key)
{
    struct key_ref probe = {.key = key};
    return n ? bsearch(&probe, v, n, sizeof(*v), key_ref_cmp) : NULL;
}

static int check_desired(const struct slot_server *d)
{
    if (!d->key || !d->key[0] || strlen(d->key) > SLOTS_KEY_MAX || !d->address)
        return -EINVAL;
    if (d->weight < 0 || d->weight > 256)
        return -EINVAL;
    return 0;
}

int slots_assign(const struct slot_assignment *prev, const struct slot_server *desired, size_t n,
                 size_t nslots, struct slot_assignment *out, size_t *need_slots)
{
    struct slot_assignment res;
    struct key_ref *want = NULL, *had = NULL;
    bool *placed = NULL;
    size_t n_had = 0, overflow = 0;
    int rc = -ENOMEM;

    slot_assignment_init(&res);
    slot_assignment_free(out);
    *need_slots = 0;
    if (nslots > SLOTS_MAX)
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (check_desired(&desired[i]) < 0)
            return -EINVAL;

    want = calloc(n ? n : 1, sizeof(*want));
    placed = calloc(n ? n : 1, sizeof(*placed));
    res.slots = calloc(nslots ? nslots : 1, sizeof(*res.slots));
    if (!want || !placed || !res.slots)
        goto out;
    res.nslots = nslots;
    for (size_t i = 0; i < n; i++)
        want[i] = (struct key_ref){desired[i].key, i};
    qsort(want, n, sizeof(*want), key_ref_cmp);
    for (size_t i = 1; i < n; i++)
        if (strcmp(want[i - 1].key, want[i].key) == 0) {
            rc = -EINVAL;
            goto out;
        }

    /* Kept servers first: they stay where they were. */
    if (prev && prev->nslots) {
        had = calloc(prev->nslots, sizeof(*had));
        if (!had)
            goto out;
        for (size_t s = 0; s < prev->nslots && s < nslots; s++)
            if (prev->slots[s].used)
                had[n_had++] = (struct key_ref){prev->slots[s].srv.key, s};
        qsort(had, n_had, sizeof(*had), key_ref_cmp);
        for (size_t i = 0; i < n; i++) {
            const struct key_ref *h = key_ref_find(had, n_had, want[i].key);
            if (!h)
                continue;
            if (slot_server_dup(&res.slots[h->idx].srv, &desired[want[i].idx]) < 0)
                goto out;
            res.slots[h->idx].used = true;
            placed[i] = true;
        }
    }

    /* New servers, in key order, into the lowest free slots. */
    size_t next_free = 0;
    for (size_t i = 0; i < n; i++) {
        if (placed[i])
            continue;
        while (next_free < nslots && res.slots[next_free].used)
            next_free++;
        if (next_free == nslots) {
            overflow++;
            continue;
        }
        if (slot_server_dup(&res.slots[next_free].srv, &desired[want[i].idx]) < 0)
            goto out;
        res.slots[next_free].used = true;
        placed[i] = true;
    }
    if (overflow)
        *need_slots = slots_grow_target(n);
    *out = res;
    slot_assignment_init(&res);
    rc = 0;
out:
    slot_assignment_free(&res);
    free(want);
    free(had);
    free(placed);
    return rc;
}

size_t slots_backup_from(size_t nslots)
{
    return (nslots + 1) / 2;
}

/* Half `half` (0 local, 1 backup) of a zone-aware placement, as a view
 * that shares prev's slots (slots_assign only reads its prev). */
static struct slot_assignment pool_view(const struct slot_assignment *prev, int half)
{
    struct slot_assignment v;
    slot_assignment_init(&v);
    if (!prev || !prev->nslots)
        return v;
    size_t from = slots_backup_from(prev->nslots);
    v.slots = prev->slots + (half ? from : 0);
    v.nslots = half ? prev->nslots - from : from;
    return v;
}

/* Place the servers of one pool (backup == half) into pool slots. */
static int assign_pool(const struct slot_assignment *prev, const struct slot_server *desired,
                       size_t n, int half, size_t pool, struct slot_assignment *out, size_t *need)
{
    struct slot_server *mine = calloc(n ? n : 1, sizeof(*mine));
    size_t k = 0;
    if (!mine)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        if ((int)desired[i].backup == half)
            mine[k++] = desired[i];
    struct slot_assignment view = pool_view(prev, half);
    int rc = slots_assign(view.nslots ? &view : NULL, mine, k, pool, out, need);
    free(mine);
    return rc;
}

int slots_assign_zoned(const struct slot_assignment *prev, const struct slot_server *desired,
                       size_t n, size_t nslots, struct slot_assignment *out, size_t *need_slots)
{
    struct slot_assignment pools[2];
    size_t need[2] = {0, 0}, pool = slots_backup_from(nslots);
    int rc = 0;

    *need_slots = 0;
    slot_assignment_free(out);
    if (nslots > SLOTS_MAX)
        return -EINVAL;
    for (int h = 0; h < 2; h++) {
        slot_assignment_init(&pools[h]);
        if (rc == 0)
            rc = assign_pool(prev, desired, n, h, pool, &pools[h], &need[h]);
    }
    if (rc == 0 && !(out->slots = calloc(pool ? 2 * pool : 1, sizeof(*out->slots))))
        rc = -ENOMEM;
    if (rc == 0) {
        /* move the pools' entries (and the strings they own) into out */
        out->nslots = 2 * pool;
        for (int h = 0; h < 2; h++) {
            memcpy(out->slots + (h ? pool : 0), pools[h].slots, pool * sizeof(*out->slots));
            free(pools[h].slots);
            slot_assignment_init(&pools[h]);
        }
        size_t grow = need[0] > need[1] ? need[0] : need[1];
        if (grow)
            *need_slots = 2 * (grow > pool ? grow : pool);
    }
    slot_assignment_free(&pools[0]);
    slot_assignment_free(&pools[1]);
    return rc;
}

size_t slots_count_removed(const struct slot_assignment *applied, const struct slot_assignment *a)
{
    struct key_ref *now;
    size_t n_now = 0, removed = 0;

    if (!applied)
        return 0;
    now = calloc(a->nslots ? a->nslots : 1, sizeof(*now));
    if (!now) /* cannot tell: report everything as removed so the guard holds */
        return slot_assignment_used(applied);
    for (size_t s = 0; s < a->nslots; s++)
        if (a->slots[s].used)
            now[n_now++] = (struct key_ref){a->slots[s].srv.key, s};
    qsort(now, n_now, sizeof(*now), key_ref_cmp);
    for (size_t s = 0; s < applied->nslots; s++)
        if (applied->slots[s].used && !key_ref_find(now, n_now, applied->slots[s].srv.key))
            removed++;
    free(now);
    return removed;
}

/* ---- adopt ------------------------------------------------------------- */

/* Canonical "ip|port" text of an address for comparisons; false if the
 * address is not an IP literal. */
static bool endpoint_text(const char *addr, uint16_t port, char *buf, size_t len)
{
    char ip[64];
    size_t iplen;
    const char *why;
    if (haproxy_value_format(HAPROXY_VALUE_IP, addr, strlen(addr), ip, sizeof(ip), &iplen, &why) <
        0)
        return false;
    int n = snprintf(buf, len, "%s|%u", ip, port);
    return n > 0 && (size_t)n < len;
}

int slots_adopt(const struct slot_live *live, size_t n_live, const struct slot_server *desired,
                size_t n, size_t nslots, struct slot_assignment *out)
{
    struct slot_assignment res;
    bool *taken = NULL;
    int rc = -ENOMEM;

    slot_assignment_init(&res);
    slot_assignment_free(out);
    if (nslots > SLOTS_MAX)
        return -EINVAL;
    res.slots = calloc(nslots ? nslots : 1, sizeof(*res.slots));
    taken = calloc(n ? n : 1, sizeof(*taken));
    if (!res.slots || !taken)
        goto out;
    res.nslots = nslots;
    for (size_t i = 0; i < n_live; i++) {
        const struct slot_live *l = &live[i];
        size_t s;
        char have[96], want[96];
        if (slots_parse_name(l->name, &s) < 0 || s >= nslots || res.slots[s].used)
            continue;
        if ((l->admin & SLOTS_ADMF_FMAINT) && (l->agent_state & SLOTS_CHK_CONFIGURED) &&
            !(l->agent_state & SLOTS_CHK_ENABLED))
            continue; /* a slot we freed */
        if (!endpoint_text(l->address, l->port, have, sizeof(have)))
            continue;
        for (size_t d = 0; d < n; d++) {
            if (taken[d] || !desired[d].key || !desired[d].address ||
                !endpoint_text(desired[d].address, desired[d].port, want, sizeof(want)) ||
                strcmp(have, want) != 0)
                continue;
            if (slot_server_dup(&res.slots[s].srv, &desired[d]) < 0)
                goto out;
            res.slots[s].used = true;
            taken[d] = true;
            break;
        }
    }
    *out = res;
    slot_assignment_init(&res);
    rc = 0;
out:
    slot_assignment_free(&res);
    free(taken);
    return rc;
}

/* ---- guard ------------------------------------------------------------- */

struct slots_guard_result slots_guard(size_t active, size_t removed, size_t remaining,
                                      double max_share, bool forced)
{
    struct slots_guard_result r = {.hold = false, .active = active, .removed = removed};

    if (isnan(max_share))
        max_share = SLOTS_DEFAULT_MAX_REMOVAL_SHARE;
    if (max_share < 0 || max_share > 1)
        max_share = 1;
    if (removed == 0 || active == 0) {
        r.reason = "nothing active is removed";
        return r;
    }
    if (forced) {
        r.reason = "removal forced by a force-removal entry";
        return r;
    }
    if (remaining == 0) {
        r.hold = true;
        r.reason = "change would leave the backend without servers";
        return r;
    }
    if ((double)removed > max_share * (double)active) {
        r.hold = true;
        r.reason = "change would remove more than the allowed share of active servers";
        return r;
    }
    r.reason = "removal within the allowed share";
    return r;
}

/* ---- diff -------------------------------------------------------------- */

void slot_cmds_free(struct slot_cmds *c)
{
    free(c->v);
    c->v = NULL;
    c->n = c->cap = 0;
}

static int __attribute__((format(printf, 3, 4)))
cmd_add(struct slot_cmds *c, size_t slot, const char *fmt, ...)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        struct slot_cmd *v = realloc(c->v, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        c->v = v;
        c->cap = cap;
    }
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(c->v[c->n].text, sizeof(c->v[c->n].text), fmt, ap);
    va_end(ap);
    if (len < 0 || (size_t)len >= sizeof(c->v[c->n].text))
        return -EINVAL; /* cannot happen with checked names and values */
    c->v[c->n].slot = slot;
    c->n++;
    return 0;
}

static const struct slot_live *live_of_slot(const struct slot_live **byslot, size_t nslots,
                                            size_t s)
{
    return s < nslots ? byslot[s] : NULL;
}

int slots_diff(const char *backend, const struct slot_assignment *a,
               const struct slot_assignment *applied, const struct slot_live *live, size_t n_live,
               struct slot_cmds *out, char *err, size_t errlen)
{
    const struct slot_live **byslot = NULL;
    const char *why = NULL;
    size_t start = out->n;
    int rc;

    if (haproxy_value_check(HAPROXY_VALUE_NAME, backend, strlen(backend), &why) < 0) {
        errmsg_set(err, errlen, "slots: backend name \"%s\" refused: %s", backend, why);
        return -EINVAL;
    }
    byslot = calloc(a->nslots ? a->nslots : 1, sizeof(*byslot));
    if (!byslot)
        return -ENOMEM;
    for (size_t i = 0; i < n_live; i++) {
        size_t s;
        if (slots_parse_name(live[i].name, &s) == 0 && s < a->nslots)
            byslot[s] = &live[i];
    }

    for (size_t s = 0; s < a->nslots; s++) {
        const struct slot_live *l = live_of_slot(byslot, a->nslots, s);
        const struct slot_entry *e = &a->slots[s];
        char name[32];
        slots_name(s, name, sizeof(name));
        if (!l) {
            errmsg_set(err, errlen,
                       "slots: backend %s has no server %s (the running config has fewer "
                       "slots than the assignment), a reload with more slots is needed",
                       backend, name);
            rc = -ENOENT;
            goto fail;
        }
        bool agent_cfg = l->agent_state & SLOTS_CHK_CONFIGURED;
        bool agent_on = agent_cfg && (l->agent_state & SLOTS_CHK_ENABLED);

        if (!e->used) {
            if (agent_on && (rc = cmd_add(out, s, "disable agent %s/%s", backend, name)) < 0)
                goto fail;
            if (!(l->admin & SLOTS_ADMF_FMAINT) &&
                (rc = cmd_add(out, s, "set server %s/%s state maint", backend, name)) < 0)
                goto fail;
            continue;
        }

        const struct slot_server *d = &e->srv;
        char ip[64];
        size_t iplen;
        if (haproxy_value_format(HAPROXY_VALUE_IP, d->address, strlen(d->address), ip, sizeof(ip),
                                 &iplen, &why) < 0) {
            errmsg_set(err, errlen, "slots: %s/%s: address \"%s\" of %s refused: %s", backend, name,
                       d->address, d->key, why ? why : "too long");
            rc = -EINVAL;
            goto fail;
        }
        if (d->port == 0 || d->weight < 0 || d->weight > 256) {
            errmsg_set(err, errlen, "slots: %s/%s: port %u or weight %d of %s out of range",
                       backend, name, d->port, d->weight, d->key);
            rc = -EINVAL;
            goto fail;
        }
        bool addr_differs = strcmp(l->address, ip) != 0 || l->port != d->port;
        const struct slot_entry *was = (applied && s < applied->nslots) ? &applied->slots[s] : NULL;
        bool same_occupant = was && was->used && strcmp(was->srv.key, d->key) == 0;
        /* A disabled agent is our mark of a slot we freed. Otherwise what we
         * applied last decides; without it (start, reload) a changed address
         * is the only hint that the slot changes hands. */
        bool new_occupant = (agent_cfg && !agent_on) || (applied ? !same_occupant : addr_differs);

        /* A slot rendered free ("0.0.0.0:0") is in port-mapping mode (port 0
         * = the client's port). `set server addr A port P` leaves that mode
         * only when P differs from the current port; after a reload the
         * state file restores the port but neither the address nor the end
         * of port mapping, and HAProxy then answers "no need to change the
         * port" and keeps connecting to <client port>+P. Nothing in the
         * dumps shows the mode, but an unspecified address with the
         * desired port is exactly that case: go through another port. */
        bool unspec = strcmp(l->address, "0.0.0.0") == 0 || strcmp(l->address, "::") == 0;
        if (addr_differs && unspec && l->port == d->port &&
            (rc = cmd_add(out, s, "set server %s/%s addr %s port %u", backend, name, ip,
                          d->port == 1 ? 2u : 1u)) < 0)
            goto fail;
        if (addr_differs && (rc = cmd_add(out, s, "set server %s/%s addr %s port %u", backend, name,
                                          ip, d->port)) < 0)
            goto fail;
        bool weight_differs = (same_occupant && !new_occupant) ? was->srv.weight != d->weight
                                                               : l->uweight != d->weight;
        if (weight_differs &&
            (rc = cmd_add(out, s, "set server %s/%s weight %d", backend, name, d->weight)) < 0)
            goto fail;
        if (!new_occupant)
            continue;
        if (agent_cfg && !agent_on &&
            (rc = cmd_add(out, s, "enable agent %s/%s", backend, name)) < 0)
            goto fail;
        if ((l->admin & (SLOTS_ADMF_FMAINT | SLOTS_ADMF_FDRAIN)) &&
            (rc = cmd_add(out, s, "set server %s/%s state ready", backend, name)) < 0)
            goto fail;
    }
    free(byslot);
    return 0;
fail:
    out->n = start;
    free(byslot);
    return rc;
}
