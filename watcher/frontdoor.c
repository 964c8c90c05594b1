/* SPDX-License-Identifier: Apache-2.0 */
/* frontdoor: announcement decisions per VIP (see frontdoor.h). */
#include "frontdoor.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REASON_MAX  160
#define ADDRESS_MAX 64

struct fvip {
    char address[ADDRESS_MAX];
    struct director_health_sm sm;
    enum frontdoor_route route;
    char reason[REASON_MAX];
    uint64_t announces, withdrawals;
    int64_t changed_ms;
    bool seen;
};

struct fchange {
    char address[ADDRESS_MAX];
    enum frontdoor_route from, to;
    char reason[REASON_MAX];
};

struct frontdoor {
    struct frontdoor_params p;
    struct director_health_params hp; /* rise/fall/damping for the state machine */
    struct fvip *vips;                /* sorted by address */
    size_t n, cap;
    struct frontdoor_vip_status *status;
    struct fchange *changes;
    struct frontdoor_change *pub_changes;
    size_t n_changes;
    bool drained;
    int64_t drain_since_ms;
};

void frontdoor_params_defaults(struct frontdoor_params *p)
{
    if (!p->rise)
        p->rise = 2;
    if (!p->fall)
        p->fall = 2;
    if (!p->drain_withdraw_ms)
        p->drain_withdraw_ms = 10000;
}

const char *frontdoor_route_name(enum frontdoor_route r)
{
    switch (r) {
    case FRONTDOOR_ANNOUNCED:
        return "announced";
    case FRONTDOOR_SHUTDOWN:
        return "graceful-shutdown";
    case FRONTDOOR_WITHDRAWN:
        break;
    }
    return "withdrawn";
}

int frontdoor_new(const struct frontdoor_params *p, struct frontdoor **out)
{
    struct frontdoor *f = calloc(1, sizeof(*f));

    if (!f)
        return -ENOMEM;
    f->p = *p;
    frontdoor_params_defaults(&f->p);
    f->hp.rise = f->p.rise;
    f->hp.fall = f->p.fall;
    f->hp.flap_half_life_ms = f->p.flap_half_life_ms;
    f->hp.flap_suppress = f->p.flap_suppress;
    f->hp.flap_reuse = f->p.flap_reuse;
    director_health_params_defaults(&f->hp);
    *out = f;
    return 0;
}

void frontdoor_free(struct frontdoor *f)
{
    if (!f)
        return;
    free(f->vips);
    free(f->status);
    free(f->changes);
    free(f->pub_changes);
    free(f);
}

void frontdoor_set_drain(struct frontdoor *f, bool drained, int64_t now_ms)
{
    if (drained && !f->drained)
        f->drain_since_ms = now_ms;
    f->drained = drained;
}

bool frontdoor_drained(const struct frontdoor *f)
{
    return f->drained;
}

static struct fvip *find(struct frontdoor *f, const char *address, size_t *at)
{
    size_t lo = 0, hi = f->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(f->vips[mid].address, address);
        if (c == 0) {
            *at = mid;
            return &f->vips[mid];
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *at = lo;
    return NULL;
}

static struct fvip *add(struct frontdoor *f, const char *address, size_t at)
{
    if (f->n == f->cap) {
        size_t cap = f->cap ? 2 * f->cap : 8;
        void *p = realloc(f->vips, cap * sizeof(*f->vips));
        if (!p)
            return NULL;
        f->vips = p;
        f->cap = cap;
    }
    memmove(&f->vips[at + 1], &f->vips[at], (f->n - at) * sizeof(*f->vips));
    f->n++;
    struct fvip *v = &f->vips[at];
    memset(v, 0, sizeof(*v));
    snprintf(v->address, sizeof(v->address), "%s", address);
    director_health_sm_init(&v->sm);
    snprintf(v->reason, sizeof(v->reason), "not evaluated yet");
    return v;
}

/* Set v's route, recording a change. */
static void set_route(struct frontdoor *f, struct fvip *v, enum frontdoor_route to,
                      const char *reason, int64_t now_ms)
{
    snprintf(v->reason, sizeof(v->reason), "%s", reason);
    if (v->route == to)
        return;
    struct fchange *c = &f->changes[f->n_changes++];
    snprintf(c->address, sizeof(c->address), "%s", v->address);
    snprintf(c->reason, sizeof(c->reason), "%s", reason);
    c->from = v->route;
    c->to = to;
    if (to == FRONTDOOR_WITHDRAWN)
        v->withdrawals++;
    else if (v->route == FRONTDOOR_WITHDRAWN)
        v->announces++;
    v->route = to;
    v->changed_ms = now_ms;
}

/* What v's route should be after this round's verdict. */
static void decide(struct frontdoor *f, struct fvip *v, const struct frontdoor_verdict *in,
                   int64_t now_ms)
{
    char why[REASON_MAX];

    if (v->sm.state == DIRECTOR_HEALTH_UNKNOWN && !in->ok) {
        /* not serving yet since we started (table not applied, BGP host
         * booting): withdrawn, but not a flap - the first good verdict
         * announces at once */
        set_route(f, v, FRONTDOOR_WITHDRAWN, in->reason ? in->reason : "not serving", now_ms);
        return;
    }
    director_health_sm_result(&v->sm, &f->hp, in->ok, now_ms);
    director_health_sm_tick(&v->sm, &f->hp, now_ms);
    if (v->sm.suppressed) {
        snprintf(why, sizeof(why), "flapping: held withdrawn until the damping penalty decays%s%s",
                 in->ok ? "" : "; ", in->ok ? "" : (in->reason ? in->reason : "not serving"));
        set_route(f, v, FRONTDOOR_WITHDRAWN, why, now_ms);
        return;
    }
    if (v->sm.state != DIRECTOR_HEALTH_UP) {
        if (!in->ok)
            snprintf(why, sizeof(why), "%s", in->reason ? in->reason : "not serving");
        else
            snprintf(why, sizeof(why), "serving again, %u of %u checks to rise", v->sm.ok_run,
                     f->hp.rise);
        set_route(f, v, FRONTDOOR_WITHDRAWN, why, now_ms);
        return;
    }
    if (f->drained) {
        if (now_ms - f->drain_since_ms < f->p.drain_withdraw_ms)
            set_route(f, v, FRONTDOOR_SHUTDOWN, "host drained: graceful shutdown (65535:0)",
                      now_ms);
        else
            set_route(f, v, FRONTDOOR_WITHDRAWN, "host drained", now_ms);
        return;
    }
    if (!in->ok) /* up, but failing: fall not reached yet */
        snprintf(why, sizeof(why), "serving (failing %u of %u checks to fall: %s)", v->sm.fail_run,
                 f->hp.fall, in->reason ? in->reason : "not serving");
    else
        snprintf(why, sizeof(why), "serving");
    set_route(f, v, FRONTDOOR_ANNOUNCED, why, now_ms);
}

int frontdoor_update(struct frontdoor *f, const struct frontdoor_verdict *v, size_t n,
                     int64_t now_ms, const struct frontdoor_change **changes, size_t *n_changes)
{
    size_t at, most = f->n + n;

    *changes = NULL;
    *n_changes = 0;
    /* room first, so a failure leaves the state as it was */
    void *c = realloc(f->changes, (most + 1) * sizeof(*f->changes));
    if (!c)
        return -ENOMEM;
    f->changes = c;
    c = realloc(f->pub_changes, (most + 1) * sizeof(*f->pub_changes));
    if (!c)
        return -ENOMEM;
    f->pub_changes = c;
    if (f->cap < most) {
        c = realloc(f->vips, most * sizeof(*f->vips));
        if (!c)
            return -ENOMEM;
        f->vips = c;
        f->cap = most;
    }
    f->n_changes = 0;
    for (size_t i = 0; i < f->n; i++)
        f->vips[i].seen = false;
    for (size_t i = 0; i < n; i++) {
        struct fvip *x = find(f, v[i].address, &at);
        if (!x && !(x = add(f, v[i].address, at)))
            return -ENOMEM; /* not reached: room was made above */
        if (x->seen)
            continue; /* the same address twice: the first verdict counts */
        x->seen = true;
        decide(f, x, &v[i], now_ms);
    }
    size_t keep = 0;
    for (size_t i = 0; i < f->n; i++) {
        struct fvip *x = &f->vips[i];
        if (!x->seen) {
            set_route(f, x, FRONTDOOR_WITHDRAWN, "no longer configured", now_ms);
            continue;
        }
        if (keep != i)
            f->vips[keep] = *x;
        keep++;
    }
    f->n = keep;
    for (size_t i = 0; i < f->n_changes; i++) {
        f->pub_changes[i] = (struct frontdoor_change){.address = f->changes[i].address,
                                                      .from = f->changes[i].from,
                                                      .to = f->changes[i].to,
                                                      .reason = f->changes[i].reason};
    }
    *changes = f->pub_changes;
    *n_changes = f->n_changes;
    return 0;
}

size_t frontdoor_list(struct frontdoor *f, const struct frontdoor_vip_status **out)
{
    struct frontdoor *m = f;
    void *p = realloc(m->status, (f->n + 1) * sizeof(*m->status));

    *out = NULL;
    if (!p)
        return 0;
    m->status = p;
    for (size_t i = 0; i < f->n; i++) {
        const struct fvip *v = &f->vips[i];
        m->status[i] = (struct frontdoor_vip_status){.address = v->address,
                                                     .route = v->route,
                                                     .reason = v->reason,
                                                     .suppressed = v->sm.suppressed,
                                                     .announces = v->announces,
                                                     .withdrawals = v->withdrawals,
                                                     .changed_ms = v->changed_ms};
    }
    *out = m->status;
    return f->n;
}
