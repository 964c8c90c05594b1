/* SPDX-License-Identifier: Apache-2.0 */
/*
 * director_table_match: steps 2-6 of the table builder described at the
 * top of director_table.c (and in docs/director-table.md): sets, keyed
 * candidate generation, the stable matching, failover secondaries, the
 * last-resort rules and row assembly, with their bounded work counter.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "director_table_internal.h"
#include "siphash.h"

/* ---- arithmetic ------------------------------------------------------ */

/* Stafford's "Mix13" 64-bit finaliser: every input bit affects every
 * output bit; cheap enough to run once per candidate. */
static inline uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* log2(x / 2^31) for x in [2^31, 2^32), as Q32, by repeated squaring:
 * exact integer steps, so every platform gets the same table. */
static uint32_t log2_frac_q32(uint64_t x)
{
    uint32_t r = 0;
    for (int bit = 31; bit >= 0; bit--) {
        x = (x * x) >> 31;
        if (x >= (1ULL << 32)) {
            x >>= 1;
            r |= 1u << bit;
        }
    }
    return r;
}

void table_log2_table_init(uint32_t tab[LOG2_TAB_SIZE + 1])
{
    for (uint32_t i = 0; i < LOG2_TAB_SIZE; i++)
        tab[i] = log2_frac_q32((1ULL << 31) + ((uint64_t)i << (31 - LOG2_TAB_BITS)));
    tab[LOG2_TAB_SIZE] = 0xffffffffu; /* log2(2) = 1.0, saturated into 32 bits */
}

/* -log2(u / 2^48) as Q32, for u in [1, 2^48]: an exponential variate (in
 * units of ln 2) from a uniform one. Table plus linear interpolation;
 * absolute error below 2^-21, far below what could bias a row. */
static inline uint64_t neglog2_q32(const uint32_t *tab, uint64_t u)
{
    unsigned msb = 63u - (unsigned)__builtin_clzll(u);
    uint64_t m = u << (63 - msb); /* 1.f with the 1 at bit 63 */
    uint32_t idx = (uint32_t)(m >> (63 - LOG2_TAB_BITS)) & (LOG2_TAB_SIZE - 1);
    uint64_t t = (m >> (63 - LOG2_TAB_BITS - 32)) & 0xffffffffu;
    uint64_t lo = tab[idx], hi = tab[idx + 1];
    uint64_t frac = lo + (((hi - lo) * t) >> 32);
    /* u <= 2^48: msb is 48 only for u = 2^48, where frac = tab[0] = 0,
     * so this never goes below 0 */
    return ((uint64_t)(48 - msb) << 32) - frac;
}

/* ---- sets --------------------------------------------------------------- */

/* Picks the primary set B by tier and the draining/filling/usable sets. */
enum director_table_tier table_choose_sets(struct builder *b)
{
    enum director_table_tier tier;
    uint32_t healthy_active = 0, healthy_live = 0, active = 0, live = 0;

    for (uint32_t p = 0; p < b->n; p++) {
        const struct director_table_proxy *x = &b->px[p];
        if (x->state == DIRECTOR_PROXY_INACTIVE)
            continue;
        live++;
        active += x->state == DIRECTOR_PROXY_ACTIVE;
        healthy_live += x->healthy;
        healthy_active += x->healthy && x->state == DIRECTOR_PROXY_ACTIVE;
    }
    if (healthy_active)
        tier = DIRECTOR_TIER_HEALTHY_ACTIVE;
    else if (healthy_live)
        tier = DIRECTOR_TIER_HEALTHY_STANDBY;
    else if (active)
        tier = DIRECTOR_TIER_UNHEALTHY_ACTIVE;
    else if (live)
        tier = DIRECTOR_TIER_UNHEALTHY_ANY;
    else
        return DIRECTOR_TIER_EMPTY;

    b->nb = b->nd = b->nf = b->nh = 0;
    b->wsum_b = 0;
    for (uint32_t p = 0; p < b->n; p++) {
        const struct director_table_proxy *x = &b->px[p];
        bool live_p = x->state != DIRECTOR_PROXY_INACTIVE;
        /* healthy tiers only ever use healthy proxies */
        bool usable = live_p && (x->healthy || tier >= DIRECTOR_TIER_UNHEALTHY_ACTIVE);
        bool in_b, in_d = false, in_f = false;

        switch (tier) {
        case DIRECTOR_TIER_HEALTHY_ACTIVE:
        case DIRECTOR_TIER_UNHEALTHY_ACTIVE:
            in_b = usable && x->state == DIRECTOR_PROXY_ACTIVE;
            in_d = usable && x->state == DIRECTOR_PROXY_DRAINING;
            in_f = usable && x->state == DIRECTOR_PROXY_FILLING;
            break;
        default: /* standby tiers: every usable proxy is a primary */
            in_b = usable;
            break;
        }
        b->in_b[p] = in_b;
        b->in_d[p] = in_d;
        b->in_f[p] = in_f;
        b->in_h[p] = usable;
        b->nb += in_b;
        b->nd += in_d;
        b->nf += in_f;
        b->nh += usable;
        if (in_b)
            b->wsum_b += x->weight;
    }
    return tier;
}

/* ---- candidate generation ------------------------------------------- */

void table_derive_keys(struct builder *b, const struct director_table_config *cfg)
{
    static const uint8_t zero[SIPHASH_KEY_LEN];
    uint8_t table_key[SIPHASH_KEY_LEN];
    struct siphash_state st;

    /* The seed may have any length: reduce it to a SipHash key, one
     * domain-separated hash per half. */
    for (int half = 0; half < 2; half++) {
        uint8_t tag = (uint8_t)(half + 1);
        siphash24_init(&st, zero);
        siphash24_update(&st, &tag, 1);
        if (cfg && cfg->seed_len)
            siphash24_update(&st, cfg->seed, cfg->seed_len);
        uint64_t v = siphash24_final(&st);
        for (int k = 0; k < 8; k++)
            table_key[half * 8 + k] = (uint8_t)(v >> (8 * k));
    }
    for (uint32_t p = 0; p < b->n; p++) {
        size_t len = strlen(b->px[p].id);
        for (int half = 0; half < 2; half++) {
            uint8_t tag = (uint8_t)(half + 1);
            siphash24_init(&st, table_key);
            siphash24_update(&st, &tag, 1);
            siphash24_update(&st, b->px[p].id, len);
            uint64_t v = siphash24_final(&st);
            if (half == 0)
                b->k1[p] = v;
            else
                b->k2[p] = v;
        }
    }
}

/* Arrivals filed in a block stay below 2^56 (they are at most the
 * horizon limit, MAX_LAMBDA / ln 2 arrivals of a set of weight >= 1, in
 * Q16.48), so a new point carries its row within the block in the top 8
 * bits until generate_block() files it. */
#define POINT_ROW_SHIFT 56
_Static_assert((uint64_t)MAX_LAMBDA * 1443 / 1000 < (1u << (POINT_ROW_SHIFT - ARRIVAL_FRAC_BITS)),
               "arrivals up to the horizon limit must leave the top 8 bits free");

static int points_reserve(struct drawer *dw, size_t want)
{
    if (want <= dw->pt_cap)
        return 0;
    size_t cap = dw->pt_cap ? dw->pt_cap : 1u << 14;
    while (cap < want)
        cap *= 2;
    uint64_t *e = realloc(dw->pt_cand, cap * sizeof(*e));
    if (!e)
        return -ENOMEM;
    dw->pt_cand = e;
    dw->pt_cap = cap;
    return 0;
}

/* Draw i of proxy p in block k: x = mix64(s_i ^ k2) with s_i = k1 + (k *
 * 2^40 + i) * golden (mod 2^64); bits 63..56 of x pick the row within the
 * block, bits 47..0 a uniform u whose -log2(u), divided by weight * 256,
 * is the gap to p's previous arrival in the block. So each row sees
 * arrivals of p at rate weight(p), independently of every other row and
 * proxy. The stream input steps by golden from one draw to the next. */
#define STREAM_STEP 0x9e3779b97f4a7c15ULL

static inline uint64_t stream_input(uint64_t k1, uint32_t k, uint32_t i)
{
    return k1 + (((uint64_t)k << 40) + i) * STREAM_STEP;
}

/* The Q16.48 gap that draw x adds to its proxy's arrival: a Q8.24
 * exponential times 2^32/w, >> 16, i.e. rate w per row over the block's
 * 2^8 rows; below 2^62, and an arrival stays below 2^63 (it is at most
 * the horizon before). */
static inline uint64_t draw_gap(const uint32_t *tab, uint64_t x, uint64_t recip)
{
    return ((neglog2_q32(tab, (x & ((1ULL << 48) - 1)) + 1) >> 8) * recip) >> 16;
}

/* The points of the block being drawn (each a candidate with its row in
 * the top bits), in locals of generate_block() while it draws: stores
 * through the builder would alias the 64-bit points and force reloads in
 * the draw loop. */
struct points {
    uint64_t *cand;
    size_t len, cap;
    uint64_t draws;
    uint32_t per_row[BLOCK_ROWS]; /* new points per row of the block */
};

static int points_grow(struct drawer *dw, struct points *pt)
{
    int rc = points_reserve(dw, pt->len + 1);
    pt->cand = dw->pt_cand;
    pt->cap = dw->pt_cap;
    return rc;
}

/* Draws the arrivals of proxy p in the rows of block k from where its
 * process stopped up to the block's horizon (fresh: from the start), and
 * appends them to pt. */
static inline __attribute__((always_inline)) int draw_proxy(const struct builder *b,
                                                            struct drawer *dw, struct points *pt,
                                                            uint32_t k, uint32_t p, bool fresh)
{
    const uint64_t horizon = b->blocks[k].horizon;
    const size_t at = (size_t)k * b->n + p;
    const uint64_t recip = b->recip[p], k2 = b->k2[p];
    const uint32_t *tab = b->log2_tab;
    /* draw i of p, the first not filed yet, its arrival and its row */
    uint32_t i = 0;
    uint64_t e, x;
    uint8_t row;

    if (fresh) {
        x = mix64(stream_input(b->k1[p], k, 0) ^ k2);
        e = draw_gap(tab, x, recip);
        row = (uint8_t)(x >> 56);
        pt->draws++;
    } else {
        i = b->gen_i[at];
        e = b->gen_e[at];
        row = b->gen_row[at];
    }
    if (e <= horizon) {
        uint64_t s = stream_input(b->k1[p], k, i);
        uint64_t *out = pt->cand + pt->len, *end = pt->cand + pt->cap;
        uint32_t *per_row = pt->per_row;
        uint32_t i0 = i;
        do {
            if (out == end) {
                pt->len = (size_t)(out - pt->cand);
                int rc = points_grow(dw, pt);
                if (rc < 0)
                    return rc;
                out = pt->cand + pt->len;
                end = pt->cand + pt->cap;
            }
            *out++ = (uint64_t)row << POINT_ROW_SHIFT | (e >> PROXY_BITS) << PROXY_BITS | p;
            per_row[row]++;
            i++;
            s += STREAM_STEP;
            x = mix64(s ^ k2);
            e += draw_gap(tab, x, recip);
            row = (uint8_t)(x >> 56);
        } while (e <= horizon);
        pt->len = (size_t)(out - pt->cand);
        pt->draws += i - i0;
    }
    b->gen_i[at] = i;
    b->gen_e[at] = e;
    b->gen_row[at] = row;
    return 0;
}

/* Draws every arrival up to the block's horizon of the listed proxies (who,
 * nwho; all the lists hold if who is NULL) in the rows of block k into pt. */
static int draw_block(const struct builder *b, struct drawer *dw, struct points *pt, uint32_t k,
                      bool fresh, const uint32_t *who, uint32_t nwho)
{
    int rc = 0;

    if (who) {
        /* (an open member whose next point lies beyond the new horizon
         * has nothing to add: no call) */
        const uint64_t *ge = b->gen_e + (size_t)k * b->n;
        uint64_t horizon = b->blocks[k].horizon;
        for (uint32_t j = 0; j < nwho && rc == 0; j++)
            if (ge[who[j]] <= horizon)
                rc = draw_proxy(b, dw, pt, k, who[j], fresh);
    } else {
        for (uint32_t p = 0; p < b->n && rc == 0; p++)
            if (b->in_draw[p])
                rc = draw_proxy(b, dw, pt, k, p, fresh);
    }
    dw->work += pt->draws;
    return rc;
}

/* Room for `total` candidates in dw's scratch array. Its old contents are
 * a block's former lists, of no further use: a new array replaces it
 * rather than a realloc(), which would copy them (most of the memory
 * traffic of block extensions). A quarter more than asked, so a block
 * drawn a little further next time fits. Not inlined: inside draw_into()
 * it changed the draw loop's code (+0.6-0.9 % instructions in
 * callgrind.sh). */
static __attribute__((noinline)) int scratch_reserve(struct drawer *dw, uint32_t total)
{
    if (total <= dw->scratch_cap)
        return 0;
    uint32_t cap = total + total / 4;
    free(dw->scratch);
    dw->scratch_cap = 0;
    dw->scratch = malloc(cap * sizeof(*dw->scratch));
    if (!dw->scratch)
        return -ENOMEM;
    dw->scratch_cap = cap;
    return 0;
}

/* Draws every arrival up to the block's horizon of the listed proxies (who,
 * nwho; all the lists hold if who is NULL) in the rows of block k, and
 * files them per row (unsorted) after the points already there. Working
 * block by block keeps the scatter and the sort in cache. Writes only
 * block k's part of the builder (its lists, row layout and process
 * state) and dw, so threads with their own drawers can draw different
 * blocks at once. */
static int draw_into(struct builder *b, struct drawer *dw, uint32_t k, bool fresh,
                     const uint32_t *who, uint32_t nwho)
{
    struct block *bk = &b->blocks[k];
    uint32_t *start = b->row_start + k * BLOCK_ROWS, *len = b->row_len + k * BLOCK_ROWS;
    struct points pt;
    int rc;

    /* a buffer from the start: the draw loop computes its end pointer */
    if ((rc = points_reserve(dw, 1)) < 0)
        return rc;
    pt = (struct points){.cand = dw->pt_cand, .cap = dw->pt_cap};
    if (fresh) {
        memset(len, 0, BLOCK_ROWS * sizeof(*len));
        memset(b->row_sorted + k * BLOCK_ROWS, 0, BLOCK_ROWS * sizeof(*b->row_sorted));
    }
    if ((rc = draw_block(b, dw, &pt, k, fresh, who, nwho)) < 0)
        return rc;
    dw->candidates += pt.len;
    if (pt.len == 0)
        return 0; /* nothing new: the lists stay as they are */

    /* New layout: each row's list as it is (its order and the drops of
     * row_at() included), then its new points, which all arrive later. */
    uint32_t *add = pt.per_row, total = 0;
    for (uint32_t r = 0; r < BLOCK_ROWS; r++)
        total += len[r] + add[r];
    if ((rc = scratch_reserve(dw, total)) < 0)
        return rc;
    uint64_t *out = dw->scratch;
    uint32_t acc = 0;
    for (uint32_t r = 0; r < BLOCK_ROWS; r++) {
        if (len[r])
            memcpy(out + acc, bk->cand + start[r], len[r] * sizeof(*out));
        start[r] = acc;
        acc += len[r] + add[r];
        add[r] = start[r] + len[r]; /* next free slot of row r */
    }
    for (size_t i = 0; i < pt.len; i++) {
        uint64_t v = pt.cand[i];
        out[add[v >> POINT_ROW_SHIFT]++] = v & ((1ULL << POINT_ROW_SHIFT) - 1);
    }
    for (uint32_t r = 0; r < BLOCK_ROWS; r++)
        len[r] = add[r] - start[r];
    /* swap: the block keeps the new array, the old one is the next scratch */
    dw->scratch = bk->cand;
    bk->cand = out;
    uint32_t cap = bk->cap;
    bk->cap = dw->scratch_cap;
    dw->scratch_cap = cap;
    return 0;
}

/* A drawer's counters into the builder's. */
static void drawer_settle(struct builder *b, struct drawer *dw)
{
    b->work += dw->work;
    b->candidates += dw->candidates;
    dw->work = dw->candidates = 0;
}

/* draw_into() on the building thread (extensions during a matching). */
static int generate_block(struct builder *b, uint32_t k, bool fresh, const uint32_t *who,
                          uint32_t nwho)
{
    int rc = draw_into(b, &b->dw, k, fresh, who, nwho);
    drawer_settle(b, &b->dw);
    return rc;
}

/* ---- drawing lists on several threads ----------------------------- */

/* One list drawing shared out by block: each thread takes the next block
 * not taken yet (one atomic add per block of 256 rows, nothing shared in
 * the draw loop) and draws it with its own drawer. A block's lists depend
 * only on the block's inputs, never on which thread draws it or when, so
 * the table is the same for every thread count.
 *
 * The calling thread does not wait for the whole drawing before it
 * matches: the matching proposes rows in ascending order and a row reads
 * only its own block's lists, so it can start on block k as soon as that
 * block is drawn (draw_wait_block()), while the helpers draw the blocks
 * after it. */
struct draw_job {
    struct builder *b;
    const uint8_t *want; /* blocks to draw, all if NULL */
    uint64_t horizon;
    atomic_uint next;             /* the next block to take; the block count after an error */
    atomic_int failed;            /* a helper's error, 0 while none */
    atomic_bool done[MAX_BLOCKS]; /* block k drawn (release: its lists are written) */
    struct draw_helper {
        struct draw_job *job;
        struct drawer *dw;
        pthread_t tid;
        int rc;
    } helper[DIRECTOR_TABLE_MAX_THREADS];
    uint32_t nhelp;
};

/* Takes the next block nobody has taken and draws it with dw: 1 if one
 * was drawn (or skipped: not wanted), 0 if none was left, < 0 on error. */
static int draw_take(struct draw_job *job, struct drawer *dw)
{
    uint32_t k = atomic_fetch_add_explicit(&job->next, 1, memory_order_relaxed);
    if (k >= job->b->nblocks)
        return 0;
    if (!job->want || job->want[k]) {
        job->b->blocks[k].horizon = job->b->blocks[k].full = job->horizon;
        int rc = draw_into(job->b, dw, k, true, NULL, 0);
        if (rc < 0) {
            atomic_store_explicit(&job->next, job->b->nblocks, memory_order_relaxed);
            atomic_store_explicit(&job->failed, rc, memory_order_release);
            return rc;
        }
    }
    atomic_store_explicit(&job->done[k], true, memory_order_release);
    return 1;
}

static int draw_share(struct draw_job *job, struct drawer *dw)
{
    int rc;
    while ((rc = draw_take(job, dw)) > 0)
        ;
    return rc;
}

static void *draw_helper_main(void *arg)
{
    struct draw_helper *h = arg;
    h->rc = draw_share(h->job, h->dw);
    return NULL;
}

/* Threads worth starting for `blocks` blocks: a thread costs tens of
 * microseconds to start and join, a block of typical lists about a tenth
 * of a millisecond to draw, so a thread gets four blocks at least. */
static uint32_t draw_threads(const struct builder *b, uint32_t blocks)
{
    uint32_t t = blocks / 4 ? blocks / 4 : 1;
    return t < b->threads ? t : b->threads;
}

/* Starts drawing every wanted block (all if want is NULL) from the start
 * up to `horizon` on up to b->threads - 1 helper threads; the calling
 * thread takes its share in draw_wait_block() and draw_finish(), which
 * must follow. A helper that cannot be started leaves its blocks to the
 * others. */
static void draw_start(struct builder *b, struct draw_job *job, const uint8_t *want,
                       uint64_t horizon)
{
    uint32_t blocks = 0;

    job->b = b;
    job->want = want;
    job->horizon = horizon;
    job->nhelp = 0;
    atomic_init(&job->next, 0);
    atomic_init(&job->failed, 0);
    for (uint32_t k = 0; k < b->nblocks; k++) {
        atomic_init(&job->done[k], false);
        blocks += !want || want[k];
    }
    uint32_t threads = draw_threads(b, blocks);
    if (threads > 1 && !b->helpers) {
        b->helpers = calloc(b->threads - 1, sizeof(*b->helpers));
        if (!b->helpers)
            threads = 1;
    }
    for (; job->nhelp + 1 < threads; job->nhelp++) {
        struct draw_helper *h = &job->helper[job->nhelp];
        *h = (struct draw_helper){.job = job, .dw = &b->helpers[job->nhelp]};
        if (pthread_create(&h->tid, NULL, draw_helper_main, h) != 0)
            break;
    }
}

/* Returns once block k is drawn: the calling thread draws blocks nobody
 * has taken yet meanwhile (block k itself, or later ones while a helper
 * draws k), and only yields when every block is taken. < 0 if a thread
 * failed (draw_finish() still joins them). */
static int draw_wait_block(struct draw_job *job, uint32_t k)
{
    while (!atomic_load_explicit(&job->done[k], memory_order_acquire)) {
        int rc = atomic_load_explicit(&job->failed, memory_order_acquire);
        if (rc < 0)
            return rc;
        rc = draw_take(job, &job->b->dw);
        if (rc < 0)
            return rc;
        if (rc == 0)
            sched_yield(); /* a helper is drawing k: a few hundred µs */
    }
    return 0;
}

/* Draws what is left, joins the helpers and adds up their counters. */
static int draw_finish(struct draw_job *job)
{
    struct builder *b = job->b;
    int rc = draw_share(job, &b->dw);

    drawer_settle(b, &b->dw);
    for (uint32_t j = 0; j < job->nhelp; j++) {
        pthread_join(job->helper[j].tid, NULL);
        drawer_settle(b, job->helper[j].dw);
        if (rc == 0)
            rc = job->helper[j].rc;
    }
    job->nhelp = 0;
    return rc;
}

/* Draws the lists of the members of a (and c, if given) but `except`, and
 * only those, for the blocks in want (all if NULL). The horizon is in arrivals of that set:
 * FIRST_LAMBDA (draw_per_row) per row on average up front, MAX_LAMBDA at
 * most, whatever the weights of proxies outside the set (a draining proxy
 * of weight 63 next to an active one of weight 1 no longer makes the
 * primary matching draw 63 times as much). Only starts the drawing: see
 * draw_start(). */
static void draw_lists_start(struct builder *b, struct draw_job *job, const uint8_t *a,
                             const uint8_t *c, uint16_t except, const uint8_t *want,
                             uint64_t lambda)
{
    uint64_t wsum = 0, wmax = 0;

    for (uint32_t p = 0; p < b->n; p++) {
        b->in_draw[p] = (a[p] || (c && c[p])) && p != except;
        if (b->in_draw[p]) {
            wsum += b->px[p].weight;
            wmax = b->px[p].weight > wmax ? b->px[p].weight : wmax;
        }
    }
    /* A proxy with more than an eighth of the weight arrives several times
     * in most rows: its later arrivals would cost a pick each to drop, so
     * lists longer than 16 are sorted at once. Otherwise a row needs few
     * picks (two or three reads in a matching), cheaper than a sort up to
     * about twice the usual length (at most 32, which keeps a pick's scan
     * bounded). Cost only: the order read is the same either way. */
    b->pick_max = 8 * wmax > wsum ? 16 : lambda >= 12 ? 32 : 2 * (uint32_t)lambda + 8;
    b->lists_whole = want == NULL;
    /* horizon * wsum * ln 2 = lambda arrivals per row (Q16.48, 1/ln 2 ~ 1.4427) */
    uint64_t horizon = (lambda << ARRIVAL_FRAC_BITS) / wsum / 1000 * 1443;
    b->horizon_max = ((uint64_t)MAX_LAMBDA << ARRIVAL_FRAC_BITS) / wsum / 1000 * 1443;
    draw_start(b, job, want, horizon);
}

/* draw_lists_start() and the whole drawing, joined before returning. */
static int draw_lists(struct builder *b, const uint8_t *a, const uint8_t *c, uint16_t except,
                      const uint8_t *want, uint64_t lambda)
{
    struct draw_job job;

    draw_lists_start(b, &job, a, c, except, want, lambda);
    return draw_finish(&job);
}

/* ---- matching ------------------------------------------------------- */

void table_set_use(struct builder *b, const uint8_t *a, const uint8_t *c)
{
    b->set_size = 0;
    for (uint32_t p = 0; p < b->n; p++) {
        b->in_set[p] = a[p] || (c && c[p]);
        b->set_size += b->in_set[p];
    }
}

/* Whether proxy q of the current set could still take a row with a
 * candidate key k: below capacity (key "infinity") or holding a row whose
 * candidate comes after k (key: the latest such candidate). 0 outside the
 * set; horizon keys are far above 0, so 0 never counts as open. */
static inline uint64_t open_key(const struct builder *b, uint32_t q)
{
    if (!b->in_set[q])
        return 0;
    if (b->hlen[q] < b->cap[q])
        return UINT64_MAX;
    return b->heap[b->hoff[q]].cand;
}

static void open_update(struct builder *b, uint32_t q)
{
    uint32_t i = b->otn + q;
    uint64_t key = open_key(b, q);
    if (b->otree[i] == key)
        return; /* e.g. a row more for a member still below capacity */
    b->otree[i] = key;
    for (i >>= 1; i > 0; i >>= 1) {
        uint64_t l = b->otree[2 * i], r = b->otree[2 * i + 1], v = l > r ? l : r;
        if (b->otree[i] == v)
            break; /* nothing above changes */
        b->otree[i] = v;
    }
}

static void open_rebuild(struct builder *b)
{
    for (uint32_t q = 0; q < b->otn; q++)
        b->otree[b->otn + q] = q < b->n ? open_key(b, q) : 0;
    for (uint32_t i = b->otn - 1; i > 0; i--) {
        uint64_t l = b->otree[2 * i], r = b->otree[2 * i + 1];
        b->otree[i] = l > r ? l : r;
    }
    b->work += 2 * b->otn;
}

/* Capacity of each set member: its weighted share of the rows times the
 * load factor, rounded down, at least 1. The load factor is raised if
 * needed so the capacities add up to at least the rows. */
int table_set_capacities(struct builder *b)
{
    uint64_t wsum = 0, total = 0;
    uint64_t permille = b->load_permille;

    for (uint32_t p = 0; p < b->n; p++)
        if (b->in_set[p])
            wsum += b->px[p].weight;
    uint64_t floor_pm = 1000 + (1000ULL * b->set_size + b->rows - 1) / b->rows;
    if (permille < floor_pm)
        permille = floor_pm;
    for (uint32_t p = 0; p < b->n; p++) {
        b->hlen[p] = 0;
        b->hoff[p] = (uint32_t)total;
        if (!b->in_set[p]) {
            b->cap[p] = 0;
            continue;
        }
        uint64_t c = permille * b->rows * b->px[p].weight / (1000 * wsum);
        b->cap[p] = (uint32_t)(c == 0 ? 1 : c > b->rows ? b->rows : c);
        total += b->cap[p];
    }
    if (total > b->heap_cap) {
        struct held *h = realloc(b->heap, total * sizeof(*h));
        if (!h)
            return -ENOMEM;
        b->heap = h;
        b->heap_cap = total;
    }
    open_rebuild(b);
    return 0;
}

static void journal_row(struct builder *b, uint32_t r)
{
    if (!b->journaling || b->row_epoch[r] == b->epoch)
        return;
    b->row_epoch[r] = b->epoch;
    b->jrow[b->njrow++] = (struct saved_row){.row = r, .pos = b->pos[r], .assign = b->assign[r]};
}

static void journal_len(struct builder *b, uint32_t q)
{
    if (!b->journaling || b->px_epoch[q] == b->epoch)
        return;
    b->px_epoch[q] = b->epoch;
    b->jlen[b->njlen++] = (struct saved_len){.proxy = q, .len = b->hlen[q]};
}

/* Every heap write goes through here so a cascade can be undone. */
static int heap_set(struct builder *b, uint32_t slot, uint64_t cand, uint32_t row)
{
    if (b->journaling) {
        if (b->njslot == b->jslot_cap) {
            size_t cap = b->jslot_cap ? 2 * b->jslot_cap : 4096;
            struct saved_slot *j = realloc(b->jslot, cap * sizeof(*j));
            if (!j)
                return -ENOMEM;
            b->jslot = j;
            b->jslot_cap = cap;
        }
        b->jslot[b->njslot++] = (struct saved_slot){.slot = slot, .old = b->heap[slot]};
    }
    b->heap[slot].cand = cand;
    b->heap[slot].row = row;
    return 0;
}

static inline bool held_after(uint64_t c1, uint32_t r1, uint64_t c2, uint32_t r2)
{
    return c1 > c2 || (c1 == c2 && r1 > r2);
}

/* Proxy q's rows form a max-heap by (candidate, row): the top is the row
 * q gives up first. */
static int heap_push(struct builder *b, uint32_t q, uint64_t cand, uint32_t row)
{
    struct held *h = b->heap + b->hoff[q];
    uint32_t i;
    int rc;

    journal_len(b, q);
    i = b->hlen[q]++;
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (!held_after(cand, row, h[parent].cand, h[parent].row))
            break;
        if ((rc = heap_set(b, b->hoff[q] + i, h[parent].cand, h[parent].row)) < 0)
            return rc;
        i = parent;
    }
    if ((rc = heap_set(b, b->hoff[q] + i, cand, row)) < 0)
        return rc;
    open_update(b, q);
    return 0;
}

static int heap_replace_top(struct builder *b, uint32_t q, uint64_t cand, uint32_t row)
{
    const struct held *h = b->heap + b->hoff[q];
    uint32_t len = b->hlen[q], i = 0;
    int rc;

    journal_len(b, q); /* the length stays, but the top moves: see failover() */
    for (;;) {
        uint32_t l = 2 * i + 1, m = i;
        uint64_t mc = cand;
        uint32_t mr = row;
        if (l < len && held_after(h[l].cand, h[l].row, mc, mr)) {
            m = l;
            mc = h[l].cand;
            mr = h[l].row;
        }
        if (l + 1 < len && held_after(h[l + 1].cand, h[l + 1].row, mc, mr))
            m = l + 1;
        if (m == i)
            break;
        if ((rc = heap_set(b, b->hoff[q] + i, h[m].cand, h[m].row)) < 0)
            return rc;
        i = m;
    }
    if ((rc = heap_set(b, b->hoff[q] + i, cand, row)) < 0)
        return rc;
    open_update(b, q);
    return 0;
}

static inline uint32_t cand_proxy(uint64_t cand)
{
    return (uint32_t)(cand & PROXY_MASK);
}

/* Ascending sort of distinct keys: insertion sort for short runs,
 * quicksort (median of three) above; lists are at most a few hundred. */
static void sort_u64(uint64_t *a, uint32_t n)
{
    while (n > 16) {
        uint64_t x = a[0], y = a[n / 2], z = a[n - 1];
        uint64_t pivot = x < y ? (y < z ? y : (x < z ? z : x)) : (x < z ? x : (y < z ? z : y));
        uint32_t i = 0, j = n - 1;
        for (;;) {
            while (a[i] < pivot)
                i++;
            while (a[j] > pivot)
                j--;
            if (i >= j)
                break;
            uint64_t t = a[i];
            a[i++] = a[j];
            a[j--] = t;
        }
        /* [0, j] <= pivot <= [j + 1, n): recurse into the smaller part */
        if (j + 1 < n - j - 1) {
            sort_u64(a, j + 1);
            a += j + 1;
            n -= j + 1;
        } else {
            sort_u64(a + j + 1, n - j - 1);
            n = j + 1;
        }
    }
    for (uint32_t k = 1; k < n; k++) {
        uint64_t v = a[k];
        uint32_t m = k;
        for (; m > 0 && a[m - 1] > v; m--)
            a[m] = a[m - 1];
        a[m] = v;
    }
}

/* Puts all of row r in order at once: for the rare rows walked far, where
 * picking one entry at a time would cost the square of the length. */
static void row_sort_all(struct builder *b, uint32_t r, uint64_t *c)
{
    uint32_t sorted = b->row_sorted[r], len = b->row_len[r], out = sorted;
    uint32_t stamp = ++b->stamp_seq;

    /* keep each proxy's first arrival only, then sort what is left */
    b->work += len - sorted;
    for (uint32_t k = 0; k < sorted; k++) {
        b->stamp[cand_proxy(c[k])] = stamp;
        b->slot[cand_proxy(c[k])] = UINT32_MAX; /* listed: later arrivals go */
    }
    for (uint32_t k = sorted; k < len; k++) {
        uint32_t p = cand_proxy(c[k]);
        if (b->stamp[p] == stamp) {
            if (b->slot[p] != UINT32_MAX && c[k] < c[b->slot[p]])
                c[b->slot[p]] = c[k];
            continue;
        }
        b->stamp[p] = stamp;
        b->slot[p] = out;
        c[out++] = c[k];
    }
    sort_u64(c + sorted, out - sorted);
    b->row_len[r] = b->row_sorted[r] = out;
}

/* Candidate i of row r in the row's order: ascending (arrival, proxy),
 * each proxy once (its first arrival). Lists are filed unsorted and put in
 * order only as far as someone looks: most rows never need more than their
 * first two or three. Returns false past the end of the drawn list. */
static bool row_at(struct builder *b, uint32_t r, uint32_t i, uint64_t *out)
{
    uint64_t *c = b->blocks[r >> BLOCK_BITS].cand + b->row_start[r];
    uint32_t sorted = b->row_sorted[r];

    /* deep reads, and long lists (a heavy proxy arrives many times per
     * row): sort all at once rather than one pick per read */
    if ((i >= 8 && sorted < b->row_len[r]) || b->row_len[r] - sorted > b->pick_max) {
        row_sort_all(b, r, c);
        sorted = b->row_sorted[r];
    }

    for (uint32_t picks = 0; sorted <= i; picks++) {
        uint32_t len = b->row_len[r];
        if (sorted == len) {
            b->row_sorted[r] = sorted;
            return false;
        }
        if (picks == 8 && len - sorted > 16) {
            /* many later arrivals of listed proxies (a heavy proxy's row):
             * picking one at a time would cost the square of the length */
            b->row_sorted[r] = sorted;
            row_sort_all(b, r, c);
            sorted = b->row_sorted[r];
            continue;
        }
        uint32_t m = sorted;
        uint64_t v = c[m];
        b->work += len - sorted;
        for (uint32_t k = sorted + 1; k < len; k++) {
            bool less = c[k] < v; /* a select, not a branch: lists are random */
            v = less ? c[k] : v;
            m = less ? k : m;
        }
        bool listed = false;
        for (uint32_t k = 0; k < sorted && !listed; k++)
            listed = cand_proxy(c[k]) == cand_proxy(v);
        if (listed) {
            /* a later arrival of a proxy already in the row: drop it */
            c[m] = c[len - 1];
            b->row_len[r] = len - 1;
            continue;
        }
        c[m] = c[sorted];
        c[sorted++] = v;
    }
    b->row_sorted[r] = sorted;
    *out = c[i];
    return true;
}

/* Whether some member of the current set could still accept row r with a
 * candidate that is not drawn yet. Undrawn candidates arrive after the
 * block's horizon, so a member is out of the question when it is full of
 * rows that all arrived before the horizon (a proxy only gets pickier while
 * a matching runs). Deciding this without drawing matters when weights are
 * very unequal: a weight-1 proxy next to weight-65,535 ones may not appear
 * in a row until 65,535 times the usual horizon. */
static bool set_open_beyond(struct builder *b, uint32_t r)
{
    uint64_t horizon_key = (b->blocks[r >> BLOCK_BITS].horizon >> PROXY_BITS) << PROXY_BITS;
    b->work++;
    return b->otree[1] >= horizon_key;
}

/* The members whose key in the max tree t (open_key() now, or at the end
 * of the matching) is at least key, into out: a walk down the tree that
 * skips closed subtrees, so it costs about log2(n) steps per open member,
 * not n. Returns their number; *wsum gets their total weight. */
static uint32_t open_members(struct builder *b, const uint64_t *t, uint64_t key, uint32_t *out,
                             uint64_t *wsum)
{
    uint32_t todo[2 * (PROXY_BITS + 1)], ntodo = 0, nopen = 0;

    *wsum = 0;
    if (t[1] < key)
        return 0;
    todo[ntodo++] = 1;
    while (ntodo > 0) {
        uint32_t i = todo[--ntodo];
        b->work++;
        if (i >= b->otn) {
            out[nopen++] = i - b->otn;
            *wsum += b->px[i - b->otn].weight;
            continue;
        }
        /* right first, so members come out in ascending index order */
        if (t[2 * i + 1] >= key)
            todo[ntodo++] = 2 * i + 1;
        if (t[2 * i] >= key)
            todo[ntodo++] = 2 * i;
    }
    return nopen;
}

/* The block's horizon doubled, at most the limit. */
static void horizon_double(struct builder *b, struct block *bk)
{
    bk->horizon = bk->horizon > b->horizon_max / 2 ? b->horizon_max : 2 * bk->horizon;
    b->blocks_extended++;
}

/* Before a failover cascade first draws block k further: keeps what
 * undoing the cascade needs to give the block back exactly as it was - its
 * horizons, row layout and list array (generate_block() writes a new one)
 * and the process state of the proxies about to be drawn. The proxies
 * drawn by later extensions in the same cascade are among these (members
 * only get pickier during a cascade). */
static int journal_block(struct builder *b, uint32_t k, uint64_t horizon, uint32_t nopen)
{
    const struct block *bk = &b->blocks[k];
    struct saved_block *sb = &b->jblk[b->njblk++];

    b->blk_epoch[k] = b->epoch;
    b->blk_jidx[k] = (uint32_t)(sb - b->jblk);
    *sb = (struct saved_block){.k = k,
                               .horizon = horizon,
                               .full = bk->full,
                               .cand = NULL,
                               .cap = 0,
                               .gen_from = (uint32_t)b->njgen,
                               .gen_count = nopen};
    uint32_t *rows = b->jblk_rows + (size_t)(sb - b->jblk) * 3 * BLOCK_ROWS;
    memcpy(rows, b->row_start + k * BLOCK_ROWS, BLOCK_ROWS * sizeof(*rows));
    memcpy(rows + BLOCK_ROWS, b->row_len + k * BLOCK_ROWS, BLOCK_ROWS * sizeof(*rows));
    memcpy(rows + 2 * BLOCK_ROWS, b->row_sorted + k * BLOCK_ROWS, BLOCK_ROWS * sizeof(*rows));
    if (b->njgen + nopen > b->jgen_cap) {
        size_t cap = b->jgen_cap ? 2 * b->jgen_cap : 4096;
        while (cap < b->njgen + nopen)
            cap *= 2;
        struct saved_gen *g = realloc(b->jgen, cap * sizeof(*g));
        if (!g)
            return -ENOMEM;
        b->jgen = g;
        b->jgen_cap = cap;
    }
    for (uint32_t j = 0; j < nopen; j++) {
        size_t at = (size_t)k * b->n + b->open_now[j];
        b->jgen[b->njgen++] = (struct saved_gen){
            .at = (uint32_t)at, .i = b->gen_i[at], .e = b->gen_e[at], .row = b->gen_row[at]};
    }
    return 0;
}

/* Takes a list array that is no longer needed as dw's scratch array when
 * it is the larger, so the next extension need not allocate one. */
static void drawer_recycle(struct drawer *dw, uint64_t *cand, uint32_t cap)
{
    if (cap > dw->scratch_cap) {
        free(dw->scratch);
        dw->scratch = cand;
        dw->scratch_cap = cap;
    } else {
        free(cand);
    }
}

/* Undoes the block extensions of a failover cascade. */
static void blocks_restore(struct builder *b)
{
    for (size_t j = 0; j < b->njblk; j++) {
        const struct saved_block *sb = &b->jblk[j];
        struct block *bk = &b->blocks[sb->k];
        const uint32_t *rows = b->jblk_rows + j * 3 * BLOCK_ROWS;

        if (sb->cand) {
            drawer_recycle(&b->dw, bk->cand, bk->cap);
            bk->cand = sb->cand;
            bk->cap = sb->cap;
        }
        bk->horizon = sb->horizon;
        bk->full = sb->full;
        memcpy(b->row_start + sb->k * BLOCK_ROWS, rows, BLOCK_ROWS * sizeof(*rows));
        memcpy(b->row_len + sb->k * BLOCK_ROWS, rows + BLOCK_ROWS, BLOCK_ROWS * sizeof(*rows));
        memcpy(b->row_sorted + sb->k * BLOCK_ROWS, rows + 2 * BLOCK_ROWS,
               BLOCK_ROWS * sizeof(*rows));
        for (uint32_t g = 0; g < sb->gen_count; g++) {
            const struct saved_gen *sg = &b->jgen[sb->gen_from + g];
            b->gen_i[sg->at] = sg->i;
            b->gen_e[sg->at] = sg->e;
            b->gen_row[sg->at] = sg->row;
        }
    }
    b->njblk = b->njgen = 0;
}

/* The members open at the end of the matching for key (see
 * open_members()), in *who: the same few keys come up in every cascade
 * (all blocks start at one horizon and double alike), so each list is
 * made once per failover() and kept. */
static uint32_t open_final(struct builder *b, uint64_t key, uint32_t **who, uint64_t *wsum)
{
    uint32_t j = 0;
    while (j < b->nfin && b->fin[j].key != key)
        j++;
    if (j == b->nfin) {
        if (j == FIN_CACHED)
            j--; /* not expected: reuse the last slot */
        else
            b->nfin++;
        b->fin[j].key = key;
        b->fin[j].count =
            open_members(b, b->ofinal, key, b->open_final + (size_t)j * b->n, &b->fin[j].wsum);
    }
    *who = b->open_final + (size_t)j * b->n;
    *wsum = b->fin[j].wsum;
    return b->fin[j].count;
}

/* Steps an extension of a block by `grow` (Q16.48) costs for proxies of
 * total weight w: one pending draw each, plus their new points. Only
 * steers the choice in row_short_open(), never a result. */
static double extension_cost(uint32_t count, uint64_t w, uint64_t grow)
{
    return count +
           (double)grow / (double)(1ULL << ARRIVAL_FRAC_BITS) * (double)w * BLOCK_ROWS * 0.6931;
}

/* Row r needs candidates beyond its block's horizon during a matching:
 * draw the block on to twice the horizon (1), unless it is at the limit
 * (0), but only for the members that could still take one of the new
 * points: the open ones (see set_open_beyond). A member closed now stays
 * closed for the rest of the matching and in the failover cascades, which
 * start from the matching's end and only make members pickier; so its
 * points beyond its last horizon would only ever be skipped, and the rows
 * read the same candidates in the same order as with complete lists.
 *
 * In a failover cascade, members closed in it may be open in the next
 * one. The block is either drawn for every member open at the end of the
 * matching (b->ofinal), and stays so, or - when that would cost much more,
 * e.g. the removed proxy or a heavy one that has just filled up - only
 * for the members open in the cascade, and given back as it was when the
 * cascade is undone (journal_block()). Every new point is later than every
 * old one: positions into the lists and the matching built so far stay
 * valid. */
static int row_short_open(struct builder *b, uint32_t r)
{
    uint32_t k = r >> BLOCK_BITS;
    struct block *bk = &b->blocks[k];
    uint64_t old = bk->horizon, key = (old >> PROXY_BITS) << PROXY_BITS, w, w_final;
    uint32_t *who = b->open_now, nopen;
    int rc;

    if (old >= b->horizon_max)
        return 0; /* the row gives up, see MAX_LAMBDA */
    nopen = open_members(b, b->otree, key, b->open_now, &w);
    uint64_t grow = b->horizon_max - old;
    bool journaled = b->journaling && b->blk_epoch[k] == b->epoch;
    if (b->journaling && !journaled) {
        uint32_t nfinal = open_final(b, key, &who, &w_final);
        /* undone work is done again by the next cascade that needs it:
         * worth it only when much cheaper, and within a budget that keeps
         * the bound on a build's work (see JOURNAL_BUDGET) */
        journaled = b->journal_work < JOURNAL_BUDGET(b) &&
                    4 * extension_cost(nopen, w, grow) < extension_cost(nfinal, w_final, grow);
        if (journaled && (rc = journal_block(b, k, old, nopen)) < 0)
            return rc;
        if (journaled) {
            who = b->open_now;
        } else {
            nopen = nfinal;
            w = w_final;
        }
    }
    /* Doubling the horizon keeps the points drawn in vain few when there
     * are many; when even the limit holds fewer than one new point per row
     * (a few light members left open), going there at once saves the
     * walks and block rewrites of the steps in between. */
    if (extension_cost(0, w, grow) <= BLOCK_ROWS) {
        bk->horizon = b->horizon_max;
        b->blocks_extended++;
    } else {
        horizon_double(b, bk);
    }
    const uint64_t *cand = bk->cand;
    uint64_t work = b->work;
    if ((rc = generate_block(b, k, false, who, nopen)) < 0)
        return rc;
    if (journaled)
        b->journal_work += b->work - work;
    struct saved_block *sb = journaled ? &b->jblk[b->blk_jidx[k]] : NULL;
    if (sb && !sb->cand && bk->cand != cand) {
        /* the journal keeps the block's first list array, which
         * generate_block() has just replaced */
        sb->cand = b->dw.scratch;
        sb->cap = b->dw.scratch_cap;
        b->dw.scratch = NULL;
        b->dw.scratch_cap = 0;
    }
    return 1;
}

/* Draws the proxies that row_short_open() left behind in block k up to
 * the block's horizon. Their points are filed after later ones, so the
 * block's rows are put in order again from the start: only once no
 * position into the lists matters any more (after the failover cascades
 * of the primary matching). */
static int block_complete(struct builder *b, uint32_t k)
{
    struct block *bk = &b->blocks[k];
    int rc = generate_block(b, k, false, NULL, 0);
    if (rc < 0)
        return rc;
    memset(b->row_sorted + k * BLOCK_ROWS, 0, BLOCK_ROWS * sizeof(*b->row_sorted));
    bk->full = bk->horizon;
    return 0;
}

/* Row r needs candidates beyond what every proxy of its block's lists is
 * drawn to: complete the block if some were left behind, else draw it on
 * to twice the horizon; 1 if there is something new, 0 at the limit. */
static int row_short(struct builder *b, uint32_t r)
{
    uint32_t k = r >> BLOCK_BITS;
    struct block *bk = &b->blocks[k];
    int rc;

    if (bk->full < bk->horizon)
        return (rc = block_complete(b, k)) < 0 ? rc : 1;
    if (bk->horizon >= b->horizon_max)
        return 0; /* the row gives up, see MAX_LAMBDA */
    horizon_double(b, bk);
    bk->full = bk->horizon;
    rc = generate_block(b, k, false, NULL, 0);
    return rc < 0 ? rc : 1;
}

/* Deferred acceptance for the rows on the stack: each proposes to its next
 * candidate in the set; a proxy under capacity accepts, a full one keeps
 * the earlier of the newcomer and its latest row and releases the other.
 * A row that runs out of drawn candidates gets its block drawn further. */
static int propose(struct builder *b, uint32_t sp)
{
    int rc;

    while (sp > 0) {
        uint32_t r = b->stack[--sp];
        uint32_t i = b->pos[r];
        uint64_t c;

        journal_row(b, r);
        for (;; i++) {
            bool more;
            b->work++;
            while ((more = row_at(b, r, i, &c)) && !b->in_set[cand_proxy(c)])
                i++;
            if (!more) {
                /* every member is full of better rows, or more must be drawn */
                rc = set_open_beyond(b, r) ? row_short_open(b, r) : 0;
                if (rc < 0)
                    return rc;
                if (rc == 0) {
                    b->pos[r] = i;
                    b->assign[r] = NONE;
                    break;
                }
                i--; /* retry position i with the longer list */
                continue;
            }
            uint32_t q = cand_proxy(c);
            const struct held *top = b->heap + b->hoff[q];
            if (b->hlen[q] < b->cap[q]) {
                if ((rc = heap_push(b, q, c, r)) < 0)
                    return rc;
            } else if (held_after(top->cand, top->row, c, r)) {
                uint32_t out = top->row;
                journal_row(b, out);
                if ((rc = heap_replace_top(b, q, c, r)) < 0)
                    return rc;
                b->assign[out] = NONE;
                b->pos[out]++;
                b->stack[sp++] = out;
            } else {
                continue;
            }
            b->assign[r] = (uint16_t)q;
            b->pos[r] = i;
            break;
        }
    }
    return 0;
}

/* The stable matching of all rows to the current set, copied to result,
 * while job draws the set's lists (joined before returning, error or not).
 * Rows propose in ascending order, each with the cascade of rows it
 * displaces resolved before the next (the stack), and a row only reads its
 * own block's lists and the rows before it: so block k's rows can propose
 * as soon as block k is drawn, and the steps are the same whether the
 * drawing is over or not (the same table and work counter). */
static int match(struct builder *b, struct draw_job *job, uint16_t *result)
{
    int rc = table_set_capacities(b);
    for (uint32_t r = 0; r < b->rows; r++) {
        b->assign[r] = NONE;
        b->pos[r] = 0;
    }
    b->journaling = false;
    for (uint32_t k = 0; k < b->nblocks && rc == 0; k++) {
        rc = draw_wait_block(job, k);
        for (uint32_t r = k * BLOCK_ROWS; r < (k + 1) * BLOCK_ROWS && rc == 0; r++) {
            b->stack[0] = r;
            rc = propose(b, 1);
        }
    }
    int rc_draw = draw_finish(job);
    if (rc < 0 || rc_draw < 0)
        return rc < 0 ? rc : rc_draw;
    memcpy(result, b->assign, b->rows * sizeof(*result));
    return 0;
}

/* The failover cascades of the members who[0 .. count) (see failover()),
 * with the matching of B in place and b->ofinal its open members. */
static int failover_members(struct builder *b, const uint32_t *who, uint32_t count)
{
    int rc = 0;

    b->nfin = 0;
    b->journaling = true;
    for (uint32_t j = 0; j < count && rc == 0; j++) {
        uint32_t p = who[j];
        /* P's heap is not touched while P is out of the set */
        const struct held *mine = b->heap + b->hoff[p];
        uint32_t nmine = b->hlen[p], sp = 0;

        b->epoch++;
        b->njrow = b->njlen = b->njslot = b->njblk = b->njgen = 0;
        b->in_set[p] = 0;
        b->set_size--;
        open_update(b, p);
        /* the rows are scattered over the table: start all their cache
         * misses at once rather than one per proposal */
        for (uint32_t k = 0; k < nmine; k++) {
            uint32_t r = mine[k].row;
            __builtin_prefetch(&b->blocks[r >> BLOCK_BITS].cand[b->row_start[r]]);
            __builtin_prefetch(&b->row_epoch[r], 1);
            __builtin_prefetch(&b->pos[r], 1);
        }
        for (uint32_t k = 0; k < nmine; k++) {
            uint32_t r = mine[k].row;
            journal_row(b, r);
            b->assign[r] = NONE;
            b->pos[r]++;
            b->stack[sp++] = r;
        }
        rc = propose(b, sp);
        for (uint32_t k = 0; k < nmine && rc == 0; k++)
            b->fo[mine[k].row] = b->assign[mine[k].row];
        /* undo, newest first */
        for (size_t k = b->njslot; k-- > 0;)
            b->heap[b->jslot[k].slot] = b->jslot[k].old;
        for (size_t k = 0; k < b->njlen; k++)
            b->hlen[b->jlen[k].proxy] = b->jlen[k].len;
        for (size_t k = 0; k < b->njrow; k++) {
            b->pos[b->jrow[k].row] = b->jrow[k].pos;
            b->assign[b->jrow[k].row] = b->jrow[k].assign;
        }
        blocks_restore(b);
        b->in_set[p] = 1;
        b->set_size++;
        /* the max tree again: the members whose heap the cascade touched
         * (all journaled), and p */
        for (size_t k = 0; k < b->njlen; k++)
            open_update(b, b->jlen[k].proxy);
        open_update(b, p);
    }
    b->journaling = false;
    return rc;
}

/* ---- failover cascades, in two halves with more than one thread ----- */

/* The failover cascades of the members are independent of each other:
 * each starts from the end of the matching and is undone, and what one
 * leaves behind (blocks drawn further for the members open at the end of
 * the matching, rows put in order further) only changes the work of the
 * next ones, mostly saving some; the rows read the same candidates either
 * way (see row_short_open()).
 * So with more than one thread the members are split in two halves by the
 * rows they hold, and the second half's cascades run on a copy of
 * everything a cascade writes - the lists, the row layout, the process
 * state, the matching and the journal - on a thread of their own. With
 * one thread nothing runs beside the cascades: they all run on the
 * builder, one after the other, with no copy. The table is the same
 * either way; t->work is not (what the first half leaves behind saves the
 * second half's steps, and the journal budget is spent once, not once per
 * half): it is the same for every thread count above one, and for one
 * about the same or lower (docs/director-table.md, "Threads"). */

/* A copy of n elements of `size` bytes, NULL on failure (or if n is 0). */
static void *dup_array(const void *src, size_t n, size_t size)
{
    if (n == 0 || !src)
        return NULL;
    void *dst = malloc(n * size);
    if (dst)
        memcpy(dst, src, n * size);
    return dst;
}

/* The views into a builder's per-build allocations: several arrays share
 * one allocation each (table_builder_alloc() sizes them; builder_clone()
 * copies them and lays the views out the same way). */
static void builder_set_views(struct builder *b, size_t np)
{
    b->stamp = b->px_epoch + np;
    b->slot = b->px_epoch + 2 * np;
    b->in_d = b->in_b + np;
    b->in_f = b->in_b + 2 * np;
    b->in_h = b->in_b + 3 * np;
    b->in_set = b->in_b + 4 * np;
    b->in_draw = b->in_b + 5 * np;
    b->row_len = b->row_start + b->rows;
    b->pos = b->row_start + 2 * (size_t)b->rows;
    b->row_epoch = b->row_start + 3 * (size_t)b->rows;
    b->row_sorted = b->row_start + 4 * (size_t)b->rows;
    b->hoff = b->cap + np;
    b->hlen = b->cap + 2 * np;
    b->ofinal = b->otree + 2 * (size_t)b->otn;
    b->open_final = b->open_now + np;
    b->blk_jidx = b->blk_epoch + b->nblocks;
}

/* Frees what builder_clone() allocated (shared inputs stay). */
static void builder_clone_free(struct builder *c)
{
    if (!c)
        return;
    for (uint32_t k = 0; k < c->nblocks; k++)
        free(c->blocks[k].cand);
    free(c->in_b);
    free(c->gen_i);
    free(c->gen_e);
    free(c->gen_row);
    free(c->dw.pt_cand);
    free(c->dw.scratch);
    free(c->row_start);
    free(c->px_epoch);
    free(c->assign);
    free(c->cap);
    free(c->otree);
    free(c->open_now);
    free(c->heap);
    free(c->stack);
    free(c->jrow);
    free(c->jlen);
    free(c->jslot);
    free(c->jblk);
    free(c->jblk_rows);
    free(c->blk_epoch);
    free(c->jgen);
    free(c);
}

/* A copy of b for failover cascades: the same inputs (keys, weights,
 * sets) and results (fo, written for the rows of the copy's members
 * only), its own copy of everything a cascade reads and writes. NULL if
 * out of memory. */
static struct builder *builder_clone(const struct builder *b)
{
    size_t np = b->n ? b->n : 1;
    struct builder *c = malloc(sizeof(*c));
    if (!c)
        return NULL;
    *c = *b;
    c->dw = (struct drawer){0};
    c->helpers = NULL;
    c->threads = 1;
    c->jslot = NULL;
    c->njslot = c->jslot_cap = 0;
    c->jgen = NULL;
    c->njgen = c->jgen_cap = 0;
    bool ok = true;
    for (uint32_t k = 0; k < b->nblocks; k++) {
        /* the used part only: rows are laid out in order */
        const uint32_t *start = b->row_start + k * BLOCK_ROWS, *len = b->row_len + k * BLOCK_ROWS;
        uint32_t used = 0;
        for (uint32_t r = 0; r < BLOCK_ROWS; r++)
            used = start[r] + len[r] > used ? start[r] + len[r] : used;
        c->blocks[k].cand = dup_array(b->blocks[k].cand, used, sizeof(uint64_t));
        c->blocks[k].cap = c->blocks[k].cand ? used : 0;
        ok = ok && (c->blocks[k].cand || used == 0);
    }
    c->in_b = dup_array(b->in_b, 6 * np, 1);
    c->gen_i = dup_array(b->gen_i, (size_t)b->nblocks * np, sizeof(uint32_t));
    c->gen_e = dup_array(b->gen_e, (size_t)b->nblocks * np, sizeof(uint64_t));
    c->gen_row = dup_array(b->gen_row, (size_t)b->nblocks * np, 1);
    c->row_start = dup_array(b->row_start, 5 * (size_t)b->rows, sizeof(uint32_t));
    c->px_epoch = dup_array(b->px_epoch, 3 * np, sizeof(uint32_t));
    c->assign = dup_array(b->assign, b->rows, sizeof(uint16_t));
    c->cap = dup_array(b->cap, 3 * np, sizeof(uint32_t));
    c->otree = dup_array(b->otree, 4 * (size_t)b->otn, sizeof(uint64_t));
    c->open_now = dup_array(b->open_now, (1 + FIN_CACHED) * np, sizeof(uint32_t));
    c->heap = dup_array(b->heap, b->heap_cap, sizeof(struct held));
    c->stack = malloc(b->rows * sizeof(*c->stack));
    c->jrow = malloc(b->rows * sizeof(*c->jrow));
    c->jlen = malloc(np * sizeof(*c->jlen));
    c->jblk = malloc(b->nblocks * sizeof(*c->jblk));
    c->jblk_rows = malloc(3 * (size_t)b->rows * sizeof(*c->jblk_rows));
    c->blk_epoch = dup_array(b->blk_epoch, 2 * b->nblocks, sizeof(uint32_t));
    if (!ok || !c->in_b || !c->gen_i || !c->gen_e || !c->gen_row || !c->row_start || !c->px_epoch ||
        !c->assign || !c->cap || !c->otree || !c->open_now || (!c->heap && b->heap_cap) ||
        !c->stack || !c->jrow || !c->jlen || !c->jblk || !c->jblk_rows || !c->blk_epoch) {
        builder_clone_free(c);
        return NULL;
    }
    builder_set_views(c, np); /* into the copied allocations */
    return c;
}

struct failover_half {
    struct builder *c;
    const uint32_t *who;
    uint32_t count;
    int rc;
};

static void *failover_half_main(void *arg)
{
    struct failover_half *h = arg;
    h->rc = failover_members(h->c, h->who, h->count);
    return NULL;
}

static int key_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* The members that hold rows, in two halves that hold about as many rows
 * each (a cascade costs about in proportion to the rows of the member
 * removed): the heaviest first, each to the half with fewer rows so far.
 * who[0 .. return) is the first half, who[return .. *count) the second.
 * keys: room for n. */
static uint32_t failover_split(const struct builder *b, uint64_t *keys, uint32_t *who,
                               uint32_t *count)
{
    uint32_t m = 0, first = 0, rows[2] = {0, 0};

    for (uint32_t p = 0; p < b->n; p++)
        if (b->in_set[p] && b->hlen[p] > 0)
            keys[m++] = (uint64_t)(b->rows - b->hlen[p]) << 32 | p; /* most rows first */
    qsort(keys, m, sizeof(*keys), key_cmp);
    uint32_t *second_half = who + m;
    for (uint32_t j = 0; j < m; j++) {
        uint32_t p = (uint32_t)keys[j], h = rows[1] < rows[0];
        rows[h] += b->hlen[p];
        if (h)
            *--second_half = p;
        else
            who[first++] = p;
    }
    *count = m;
    return first;
}

/* The second half of the members (see failover()) on a copy of b, on a
 * thread of its own unless one cannot be started, while the calling thread
 * runs the first half on b; the copy's steps are added to b's. */
static int failover_halves(struct builder *b, const uint32_t *who, uint32_t count, uint32_t first)
{
    struct failover_half half = {.who = who + first, .count = count - first};
    pthread_t tid;
    bool threaded;
    int rc;

    if (half.count == 0)
        return failover_members(b, who, first);
    /* the copy's counters start where b's are now */
    const uint64_t work = b->work, candidates = b->candidates;
    const uint32_t extended = b->blocks_extended;
    if (!(half.c = builder_clone(b)))
        return -ENOMEM;
    threaded = pthread_create(&tid, NULL, failover_half_main, &half) == 0;
    rc = failover_members(b, who, first);
    if (threaded)
        pthread_join(tid, NULL);
    else
        half.rc = failover_members(half.c, half.who, half.count);
    /* the copy's steps, from where the copy started */
    b->work += half.c->work - work;
    b->candidates += half.c->candidates - candidates;
    b->blocks_extended += half.c->blocks_extended - extended;
    builder_clone_free(half.c);
    return rc < 0 ? rc : half.rc;
}

/* With the matching of B in place: for each member P, where P's rows go
 * when P is removed and every other proxy keeps its rows and capacity.
 * With more than one thread the second half of the members runs on a
 * copy, on a thread of its own (see builder_clone()); with one, every
 * member runs on b, in the order of who[] (the first half, then the
 * second). */
static int failover(struct builder *b)
{
    size_t np = b->n ? b->n : 1;
    uint64_t *keys = malloc(np * (sizeof(uint64_t) + sizeof(uint32_t)));
    uint32_t *who = (uint32_t *)(keys + np), count, first;
    int rc;

    if (!keys)
        return -ENOMEM;
    for (uint32_t r = 0; r < b->rows; r++)
        b->fo[r] = NONE;
    /* who is open at the end of the matching, for row_short_open() */
    memcpy(b->ofinal, b->otree, 2 * (size_t)b->otn * sizeof(*b->ofinal));
    first = failover_split(b, keys, who, &count);
    if (b->threads > 1)
        rc = failover_halves(b, who, count, first);
    else
        rc = failover_members(b, who, count);
    free(keys);
    return rc;
}

/* The member of `set` other than `except` first in a separate weighted
 * race, F(q, r) = -log2(u) / w(q) with u from draw 2^63 + r of q's stream
 * (never used by the blocks). One draw per proxy: only for a row whose
 * list holds no proxy to take up to the horizon limit, which happens with
 * a probability below e^-32 per row (see last_resort()). */
static uint16_t race_first(struct builder *b, uint32_t r, const uint8_t *set, uint16_t except)
{
    uint16_t best = NONE;
    uint64_t best_f = UINT64_MAX;

    b->work += b->n;
    for (uint32_t q = 0; q < b->n; q++) {
        if (!set[q] || q == except)
            continue;
        uint64_t x = mix64((b->k1[q] + ((1ULL << 63) + r) * STREAM_STEP) ^ b->k2[q]);
        uint64_t f = (neglog2_q32(b->log2_tab, (x & ((1ULL << 48) - 1)) + 1) >> 8) * b->recip[q];
        if (f < best_f) { /* ties: lowest index, as everywhere */
            best_f = f;
            best = (uint16_t)q;
        }
    }
    return best;
}

/* The first proxy of row r's list (of the set the lists hold) other than
 * `except`, capacity aside, drawing the row's block further up to the
 * horizon limit if needed; NONE if there is none up to there. */
static int list_first(struct builder *b, uint32_t r, uint16_t except, uint16_t *out)
{
    const struct block *bk = &b->blocks[r >> BLOCK_BITS];
    uint64_t c;
    int rc;

    for (uint32_t i = 0;; i++) {
        b->work++;
        if (row_at(b, r, i, &c)) {
            if (cand_proxy(c) == except)
                continue;
            if (bk->full < bk->horizon && c >= ((bk->full >> PROXY_BITS) << PROXY_BITS)) {
                /* a proxy left behind may arrive before c */
                if ((rc = block_complete(b, r >> BLOCK_BITS)) < 0)
                    return rc;
                i = UINT32_MAX; /* from the start, in the completed list */
                continue;
            }
            *out = (uint16_t)cand_proxy(c);
            return 0;
        }
        rc = row_short(b, r);
        if (rc <= 0) {
            *out = NONE;
            return rc;
        }
        i = UINT32_MAX; /* from the start: a completed list is reordered */
    }
}

/* Whether the lists of every block hold exactly the proxies of set a. */
static bool lists_hold_all(const struct builder *b, const uint8_t *a)
{
    if (!b->lists_whole)
        return false;
    for (uint32_t p = 0; p < b->n; p++)
        if (!b->in_draw[p] != !a[p])
            return false;
    return true;
}

/* The secondary of last resort, for rows whose primary's other proxies
 * have no room (two or three proxies, or very unequal weights): the usable
 * proxy other than the primary that arrives first in the row, capacity
 * aside (plain weighted rendezvous over H). Read from lists of H, drawn
 * only for the blocks that need it; rows whose primary d weighs more than
 * all other usable proxies together read lists of H without d instead, so
 * that a dominant weight never makes a row draw far. Either way a row
 * finds its proxy within MAX_LAMBDA arrivals per row except with a
 * probability below e^-32; then the direct race_first() decides. */
static int last_resort(struct builder *b, struct director_table_row *rows)
{
    uint64_t wsum = 0;
    uint16_t d = NONE;
    uint8_t want[MAX_BLOCKS];
    int rc;

    if (b->nh < 2)
        return 0;
    for (uint32_t p = 0; p < b->n; p++)
        if (b->in_h[p])
            wsum += b->px[p].weight;
    for (uint32_t p = 0; p < b->n; p++)
        if (b->in_h[p] && 2 * (uint64_t)b->px[p].weight > wsum)
            d = (uint16_t)p;
    for (int pass = 0; pass < 2; pass++) {
        /* pass 0: primary not d, lists of H; pass 1: primary d, H - {d} */
        bool any = false;
        uint64_t w_prim = 0; /* the heaviest primary of these rows */
        memset(want, 0, sizeof(want));
        for (uint32_t r = 0; r < b->rows; r++) {
            if (rows[r].secondary == NONE && (rows[r].primary == d) == (pass == 1)) {
                any = (want[r >> BLOCK_BITS] = 1);
                if (b->px[rows[r].primary].weight > w_prim)
                    w_prim = b->px[rows[r].primary].weight;
            }
        }
        if (!any)
            continue;
        /* A row reads one or two entries here, but a block is drawn
         * further for all its rows when one of them needs it, so start
         * deep enough for few blocks to need it: in lists without d any
         * entry will do (a third of the arrivals of a matching); in lists
         * of H a row needs one of the others, who arrive at the rate of
         * the weight beyond its primary's (three quarters of a matching's
         * arrivals of those). */
        uint64_t lambda =
            pass ? b->first_lambda / 3 : b->first_lambda * 3 * wsum / (4 * (wsum - w_prim));
        lambda = lambda < 1 ? 1 : lambda > MAX_LAMBDA ? MAX_LAMBDA : lambda;
        /* The lists of the last matching hold H already when its set is H
         * (no filling proxy, say): the same processes, drawn to the same
         * limit, so they read the same (see list_first()). */
        if (!(pass == 0 && lists_hold_all(b, b->in_h)) &&
            (rc = draw_lists(b, b->in_h, NULL, pass ? d : NONE, want, lambda)) < 0)
            return rc;
        for (uint32_t r = 0; r < b->rows; r++) {
            if (rows[r].secondary != NONE || (rows[r].primary == d) != (pass == 1))
                continue;
            uint16_t s;
            if ((rc = list_first(b, r, rows[r].primary, &s)) < 0)
                return rc;
            rows[r].secondary = s != NONE ? s : race_first(b, r, b->in_h, rows[r].primary);
        }
    }
    return 0;
}

/* Every result, rows filled in. */
int table_build_rows(struct builder *b, struct director_table_row *rows)
{
    struct draw_job job;
    int rc = 0;

    draw_lists_start(b, &job, b->in_b, NULL, NONE, NULL, b->first_lambda);
    table_set_use(b, b->in_b, NULL);
    rc = match(b, &job, b->prim);
    if (rc == 0)
        rc = failover(b);
    /* A row the matching left without a primary (only when weights are so
     * unequal that MAX_LAMBDA cut its search short): the member of B first
     * in the row, capacity aside. After the failover cascades, which need
     * the lists as the matching left them (list_first() may reorder them),
     * and which never move such a row: it is in no member's heap. */
    for (uint32_t r = 0; r < b->rows && rc == 0; r++) {
        if (b->prim[r] != NONE)
            continue;
        rc = list_first(b, r, NONE, &b->prim[r]);
        if (rc == 0 && b->prim[r] == NONE)
            b->prim[r] = race_first(b, r, b->in_b, NONE);
    }
    if (rc == 0 && b->nd) {
        draw_lists_start(b, &job, b->in_b, b->in_d, NONE, NULL, b->first_lambda);
        table_set_use(b, b->in_b, b->in_d);
        rc = match(b, &job, b->dr);
    }
    if (rc == 0 && b->nf) {
        draw_lists_start(b, &job, b->in_b, b->in_f, NONE, NULL, b->first_lambda);
        table_set_use(b, b->in_b, b->in_f);
        rc = match(b, &job, b->fr);
    }
    if (rc < 0)
        return rc;

    for (uint32_t r = 0; r < b->rows; r++) {
        uint16_t p = b->prim[r], s = NONE;
        /* 1. a draining proxy keeps the rows it had as primary */
        if (b->nd && b->dr[r] != p)
            s = b->dr[r];
        /* 2. a filling proxy gets the rows it will have as primary */
        if (s == NONE && b->nf && b->fr[r] != p)
            s = b->fr[r];
        /* 3. where the row goes if its primary fails */
        if (s == NONE)
            s = b->fo[r];
        rows[r].primary = p;
        rows[r].secondary = s;
    }
    /* 4. last resort: a usable proxy other than the primary */
    return last_resort(b, rows);
}

void table_builder_free(struct builder *b)
{
    free(b->k1);
    free(b->in_b);
    free(b->dw.pt_cand);
    free(b->dw.scratch);
    for (uint32_t j = 0; b->helpers && j + 1 < b->threads; j++) {
        free(b->helpers[j].pt_cand);
        free(b->helpers[j].scratch);
    }
    free(b->helpers);
    free(b->row_start);
    for (uint32_t k = 0; k < b->nblocks; k++)
        free(b->blocks[k].cand);
    free(b->assign);
    free(b->cap);
    free(b->otree);
    free(b->open_now);
    free(b->gen_i);
    free(b->gen_e);
    free(b->gen_row);
    free(b->heap);
    free(b->stack);
    free(b->jrow);
    free(b->px_epoch);
    free(b->jlen);
    free(b->jslot);
    free(b->jblk);
    free(b->jblk_rows);
    free(b->blk_epoch);
    free(b->jgen);
    free(b->prim);
}

int table_builder_alloc(struct builder *b, uint32_t n, uint32_t rows)
{
    size_t np = n ? n : 1;
    b->n = n;
    b->rows = rows;
    b->nblocks = rows / BLOCK_ROWS;
    b->k1 = calloc(3 * np, sizeof(uint64_t));
    b->in_b = calloc(6 * np, 1);
    b->row_start = calloc(5 * (size_t)b->rows, sizeof(uint32_t));
    b->px_epoch = calloc(3 * np, sizeof(uint32_t));
    b->assign = calloc(b->rows, sizeof(uint16_t));
    b->cap = calloc(3 * np, sizeof(uint32_t));
    for (b->otn = 1; b->otn < np; b->otn *= 2)
        ;
    b->otree = calloc(4 * (size_t)b->otn, sizeof(uint64_t));
    b->open_now = calloc((1 + FIN_CACHED) * np, sizeof(uint32_t));
    b->gen_i = calloc((size_t)b->nblocks * np, sizeof(uint32_t));
    b->gen_e = calloc((size_t)b->nblocks * np, sizeof(uint64_t));
    b->gen_row = calloc((size_t)b->nblocks * np, 1);
    b->stack = calloc(b->rows, sizeof(uint32_t));
    b->jrow = calloc(b->rows, sizeof(struct saved_row));
    b->jlen = calloc(np, sizeof(struct saved_len));
    b->jblk = calloc(b->nblocks, sizeof(struct saved_block));
    b->jblk_rows = calloc(3 * (size_t)b->rows, sizeof(uint32_t));
    b->blk_epoch = calloc(2 * b->nblocks, sizeof(uint32_t));
    b->prim = calloc(4 * (size_t)b->rows, sizeof(uint16_t));
    if (!b->k1 || !b->in_b || !b->otree || !b->open_now || !b->gen_i || !b->gen_e || !b->gen_row ||
        !b->row_start || !b->px_epoch || !b->assign || !b->cap || !b->stack || !b->jrow ||
        !b->jlen || !b->prim || !b->jblk || !b->jblk_rows || !b->blk_epoch)
        return -ENOMEM;
    b->k2 = b->k1 + np;
    b->recip = b->k1 + 2 * np;
    builder_set_views(b, np);
    b->fo = b->prim + b->rows;
    b->dr = b->prim + 2 * (size_t)b->rows;
    b->fr = b->prim + 3 * (size_t)b->rows;
    return 0;
}
