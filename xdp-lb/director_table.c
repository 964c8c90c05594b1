/* SPDX-License-Identifier: Apache-2.0 */
/*
 * director_table: the forwarding table builder. docs/director-table.md is
 * the specification; this comment only maps it onto the code.
 *
 * 1. canonicalize(): validation and canonical order (proxies sorted by id).
 * 2. choose_sets(): the primary set B (first non-empty health/state tier),
 *    draining set D, filling set F, and H = every proxy the table may use.
 * 3. generate_block(): each proxy of H owns, in every block of 256 rows, a
 *    Poisson process of (row, arrival) points with intensity = weight per
 *    row, drawn from a keyed stream (SipHash-derived key per proxy). Only
 *    arrivals up to a horizon are drawn and filed per row unsorted;
 *    row_at() puts a row in order only as far as it is read. A row that
 *    needs more candidates than were drawn gets its block redrawn to twice
 *    the horizon (row_short); old lists are prefixes of the new ones, so
 *    nothing already computed changes and results never depend on the
 *    horizon.
 * 4. match(): the stable matching of rows (preferring early arrivals) to
 *    proxies (capacity-limited, preferring rows where they arrive early),
 *    by deferred acceptance. With one common order of (row, proxy) pairs
 *    this matching is unique, whatever order rows propose in.
 * 5. failover(): for each primary P, the rows of P re-propose with P
 *    removed and every other proxy keeping its rows and capacity; where
 *    they land is their failover secondary. Undone after each P.
 * 6. build_rows() combines the secondary rules; finish_stats() counts and
 *    checksums.
 *
 * Everything is integer arithmetic on fixed-width types, so the table is
 * the same on every platform and compiler.
 */
#include "director_table.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "siphash.h"

#define ROWS DIRECTOR_TABLE_ROWS
#define NONE DIRECTOR_TABLE_NONE

#define CHECKSUM_VERSION 1u
/* Arrival times are drawn as fixed point with 48 fraction bits (Q16.48);
 * a candidate is the arrival rounded down to 2^-38 with the proxy index in
 * the low PROXY_BITS, so one 64-bit compare orders (arrival, proxy). */
#define ARRIVAL_FRAC_BITS 48
#define PROXY_BITS        10
#define PROXY_MASK        ((1u << PROXY_BITS) - 1)
_Static_assert(DIRECTOR_TABLE_MAX_PROXIES <= (1u << PROXY_BITS), "proxy index must fit PROXY_BITS");
/* Mean arrivals per row of primary-set proxies drawn at first (default of
 * draw_per_row). Rows that need more get their block drawn further
 * (row_short); this only trades drawing against redrawing, results never
 * depend on it. */
#define FIRST_LAMBDA 12u
/* Rows look at arrivals up to a horizon of MAX_LAMBDA primary-set arrivals
 * per row at most. Only very unequal weights get there (a row that must
 * find one of a few light proxies among heavy ones); such a row then
 * counts as finding no proxy: no failover secondary (rule 4 applies), or,
 * for a primary, the direct race of fallback_primary(). This bounds the
 * work at about MAX_LAMBDA candidates per row. */
#define MAX_LAMBDA    64u
#define LOG2_TAB_BITS 10
#define LOG2_TAB_SIZE (1u << LOG2_TAB_BITS)

/* Rows are drawn in blocks of 256 so a block's lists stay in cache and a
 * block whose rows ran short can be redrawn alone. */
#define BLOCK_BITS 8
#define BLOCK_ROWS (1u << BLOCK_BITS)
#define BLOCKS     (ROWS / BLOCK_ROWS)

struct block {
    uint64_t horizon; /* arrivals up to here are drawn (Q16.48) */
    uint64_t *cand;   /* candidates of the block's rows, see PROXY_BITS */
    uint32_t cap;
};

struct held {
    uint64_t cand; /* the candidate (arrival, proxy) that placed the row */
    uint32_t row;
};

struct saved_row {
    uint32_t row, pos;
    uint16_t assign;
};

struct saved_len {
    uint32_t proxy, len;
};

struct saved_slot {
    uint32_t slot; /* index into heap[] */
    struct held old;
};

struct builder {
    uint32_t n;
    struct director_table_proxy *px; /* canonical, owned by the table */
    uint64_t *k1, *k2;               /* per proxy stream keys */
    uint64_t *recip;                 /* per proxy 2^32 / weight */
    uint32_t log2_tab[LOG2_TAB_SIZE + 1];
    unsigned load_permille;

    uint8_t *in_b, *in_d, *in_f, *in_h; /* set membership per proxy */
    uint8_t *in_draw;                   /* the proxies the lists hold */
    uint32_t nb, nd, nf, nh;
    uint64_t wsum_b;

    /* per block and proxy: the next draw and the arrival so far, so that a
     * block drawn further only draws what is new */
    uint32_t *gen_i;
    uint64_t *gen_e;
    uint8_t *gen_row;
    uint64_t *scratch; /* the next block array, see generate_block() */
    uint32_t scratch_cap;
    /* candidates of the block being drawn, in drawing order */
    uint64_t *pt_cand;
    uint8_t *pt_row; /* row within the block */
    size_t pt_len, pt_cap;

    /* row r's candidates: blocks[r / BLOCK_ROWS].cand[row_start[r] ..
     * row_start[r] + row_len[r]) */
    struct block blocks[BLOCKS];
    uint32_t *row_start, *row_len;
    uint32_t *row_sorted; /* leading entries already in final order */
    uint32_t blocks_extended;
    uint32_t *stamp, *slot; /* per proxy, for row_sort_all() */
    uint32_t stamp_seq;
    uint64_t horizon_max;  /* see MAX_LAMBDA */
    uint64_t first_lambda; /* draw_per_row */
    uint64_t work;         /* steps taken, see director_table.work */
    uint64_t candidates;   /* points drawn, redraws included */

    /* matching state: row -> proxy, and per proxy a max-heap of its rows */
    uint8_t *in_set;
    uint32_t set_size;
    uint16_t *assign;
    uint32_t *pos; /* index in the row's list of assign[] (or next to try) */
    uint32_t *cap, *hoff, *hlen;
    /* max tree over proxies of open_key(), for set_open_beyond(): otn
     * leaves (a power of two) at otree[otn + q] */
    uint64_t *otree;
    uint32_t otn;
    struct held *heap;
    size_t heap_cap;
    uint32_t *stack;

    /* undo journal of a failover cascade */
    bool journaling;
    uint32_t epoch;
    uint32_t *row_epoch, *px_epoch;
    struct saved_row *jrow; /* ROWS */
    size_t njrow;
    struct saved_len *jlen; /* n */
    size_t njlen;
    struct saved_slot *jslot; /* grows */
    size_t njslot, jslot_cap;

    /* per-row results */
    uint16_t *prim, *fo, *dr, *fr;
};

/* ---- errors --------------------------------------------------------- */

static int fail(char *err, size_t err_len, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t err_len, int rc, const char *fmt, ...)
{
    if (err && err_len > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_len, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* Copy of an id safe to print: at most 64 bytes, odd bytes as '?'. */
static const char *printable_id(const char *id, char buf[72])
{
    size_t i = 0;
    if (!id)
        return "(null)";
    for (; id[i] && i < 64; i++)
        buf[i] = (id[i] >= 0x21 && id[i] <= 0x7e) ? id[i] : '?';
    if (id[i]) {
        memcpy(buf + i, "...", 3);
        i += 3;
    }
    buf[i] = 0;
    return buf;
}

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

static void log2_table_init(uint32_t tab[LOG2_TAB_SIZE + 1])
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
    uint64_t lg = ((uint64_t)msb << 32) + frac;
    uint64_t top = 48ULL << 32;
    return lg >= top ? 0 : top - lg;
}

/* ---- validation and canonical order ------------------------------------ */

static int cmp_id(const void *a, const void *b, void *arg)
{
    const struct director_proxy_input *in = arg;
    const uint32_t *x = a, *y = b;
    return strcmp(in[*x].id, in[*y].id);
}

static int cmp_addr(const void *a, const void *b, void *arg)
{
    const struct director_table_proxy *px = arg;
    const uint32_t *x = a, *y = b;
    if (px[*x].family != px[*y].family)
        return px[*x].family < px[*y].family ? -1 : 1;
    return memcmp(px[*x].addr, px[*y].addr, 16);
}

static int validate_one(const struct director_proxy_input *p, size_t i, char *err, size_t err_len)
{
    char buf[72];
    size_t len;

    if (!p->id || !p->id[0])
        return fail(err, err_len, -EINVAL, "proxy #%zu: empty id", i);
    len = strlen(p->id);
    if (len > DIRECTOR_TABLE_ID_MAX)
        return fail(err, err_len, -EINVAL, "proxy #%zu \"%s\": id longer than %u bytes", i,
                    printable_id(p->id, buf), DIRECTOR_TABLE_ID_MAX);
    for (size_t k = 0; k < len; k++) {
        unsigned char c = (unsigned char)p->id[k];
        if (c < 0x21 || c > 0x7e)
            return fail(err, err_len, -EINVAL,
                        "proxy #%zu \"%s\": id has a byte 0x%02x that is not printable ASCII", i,
                        printable_id(p->id, buf), c);
    }
    if ((unsigned)p->state > DIRECTOR_PROXY_DRAINING)
        return fail(err, err_len, -EINVAL, "proxy \"%s\": unknown state %d",
                    printable_id(p->id, buf), (int)p->state);
    if (p->weight > DIRECTOR_TABLE_MAX_WEIGHT)
        return fail(err, err_len, -EINVAL, "proxy \"%s\": weight %u above %u",
                    printable_id(p->id, buf), p->weight, DIRECTOR_TABLE_MAX_WEIGHT);
    return 0;
}

static int parse_address(const char *text, struct director_table_proxy *out)
{
    if (!text)
        return -EINVAL;
    memset(out->addr, 0, sizeof(out->addr));
    if (inet_pton(AF_INET, text, out->addr) == 1) {
        out->family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, text, out->addr) == 1) {
        out->family = AF_INET6;
        return 0;
    }
    return -EINVAL;
}

/* Validates the input and fills px[] in canonical order; order[c] is the
 * input index of canonical proxy c. */
static int canonicalize(const struct director_proxy_input *in, size_t count,
                        struct director_table_proxy *px, uint32_t *order, char *err, size_t err_len)
{
    char b1[72], b2[72];
    uint32_t *byaddr = NULL;
    uint32_t nlive = 0;
    int rc;

    for (size_t i = 0; i < count; i++) {
        rc = validate_one(&in[i], i, err, err_len);
        if (rc < 0)
            return rc;
        order[i] = (uint32_t)i;
    }
    qsort_r(order, count, sizeof(*order), cmp_id, (void *)in);
    for (size_t c = 0; c < count; c++) {
        const struct director_proxy_input *p = &in[order[c]];
        if (c > 0 && strcmp(in[order[c - 1]].id, p->id) == 0)
            return fail(err, err_len, -EINVAL, "proxies #%u and #%u: duplicate id \"%s\"",
                        order[c - 1], order[c], printable_id(p->id, b1));
        memset(&px[c], 0, sizeof(px[c]));
        memcpy(px[c].id, p->id, strlen(p->id) + 1);
        if (parse_address(p->address, &px[c]) < 0)
            return fail(err, err_len, -EINVAL,
                        "proxy \"%s\": address \"%s\" is neither IPv4 nor IPv6",
                        printable_id(p->id, b1), printable_id(p->address, b2));
        px[c].state = p->state;
        px[c].healthy = p->healthy;
        px[c].weight = p->weight ? p->weight : DIRECTOR_TABLE_DEFAULT_WEIGHT;
    }

    /* Two live proxies on one address would split that host's share into
     * two and make second chance loop back to itself. An inactive entry
     * may share an address (a host being renamed). */
    byaddr = malloc((count ? count : 1) * sizeof(*byaddr));
    if (!byaddr)
        return fail(err, err_len, -ENOMEM, "out of memory checking %zu proxy addresses", count);
    for (uint32_t c = 0; c < count; c++)
        if (px[c].state != DIRECTOR_PROXY_INACTIVE)
            byaddr[nlive++] = c;
    qsort_r(byaddr, nlive, sizeof(*byaddr), cmp_addr, px);
    rc = 0;
    for (uint32_t k = 1; k < nlive; k++) {
        if (cmp_addr(&byaddr[k - 1], &byaddr[k], px) == 0) {
            char text[INET6_ADDRSTRLEN];
            inet_ntop(px[byaddr[k]].family, px[byaddr[k]].addr, text, sizeof(text));
            rc = fail(err, err_len, -EINVAL, "proxies \"%s\" and \"%s\": same address %s",
                      printable_id(px[byaddr[k - 1]].id, b1), printable_id(px[byaddr[k]].id, b2),
                      text);
            break;
        }
    }
    free(byaddr);
    return rc;
}

/* ---- sets --------------------------------------------------------------- */

/* Picks the primary set B by tier and the draining/filling/usable sets. */
static enum director_table_tier choose_sets(struct builder *b)
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

static void derive_keys(struct builder *b, const struct director_table_config *cfg)
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

static int points_reserve(struct builder *b, size_t want)
{
    if (want <= b->pt_cap)
        return 0;
    size_t cap = b->pt_cap ? b->pt_cap : 1u << 14;
    while (cap < want)
        cap *= 2;
    uint64_t *e = realloc(b->pt_cand, cap * sizeof(*e));
    if (!e)
        return -ENOMEM;
    b->pt_cand = e;
    uint8_t *r = realloc(b->pt_row, cap * sizeof(*r));
    if (!r)
        return -ENOMEM;
    b->pt_row = r;
    b->pt_cap = cap;
    return 0;
}

/* Draws every arrival up to the block's horizon of every usable proxy in
 * the rows of block k, and files them per row (unsorted).
 *
 * Draw i of proxy p in block k is x = mix64((k1 + (k * 2^40 + i) * golden)
 * ^ k2): bits 63..56 pick the row within the block, bits 47..0 a uniform u
 * whose -log2(u), divided by weight * 256, is the gap to p's previous
 * arrival in the block. So each row sees arrivals of p at rate weight(p),
 * independently of every other row and proxy. Working block by block keeps
 * the scatter and the sort in cache. */
static int generate_block(struct builder *b, uint32_t k, bool fresh)
{
    struct block *bk = &b->blocks[k];
    uint32_t *start = b->row_start + k * BLOCK_ROWS, *len = b->row_len + k * BLOCK_ROWS;
    uint32_t *gi = b->gen_i + (size_t)k * b->n;
    uint64_t *ge = b->gen_e + (size_t)k * b->n;
    int rc;

    if (fresh) {
        memset(len, 0, BLOCK_ROWS * sizeof(*len));
        memset(b->row_sorted + k * BLOCK_ROWS, 0, BLOCK_ROWS * sizeof(*b->row_sorted));
    }
    b->pt_len = 0;
    for (uint32_t p = 0; p < b->n; p++) {
        if (!b->in_draw[p])
            continue;
        uint64_t recip = b->recip[p], k1 = b->k1[p], k2 = b->k2[p], base = (uint64_t)k << 40;
        /* gi/ge/grow: draw gi of p, the first not filed yet, its arrival
         * and its row (fresh: draw 0 is computed first) */
        uint32_t i = fresh ? UINT32_MAX : gi[p];
        uint64_t e = fresh ? 0 : ge[p];
        uint8_t row = fresh ? 0 : b->gen_row[(size_t)k * b->n + p];
        for (;;) {
            if (i != UINT32_MAX) {
                if (e > bk->horizon) {
                    gi[p] = i;
                    ge[p] = e;
                    b->gen_row[(size_t)k * b->n + p] = row;
                    break;
                }
                if (b->pt_len == b->pt_cap && (rc = points_reserve(b, b->pt_len + 1)) < 0)
                    return rc;
                b->pt_cand[b->pt_len] = (e >> PROXY_BITS) << PROXY_BITS | p;
                b->pt_row[b->pt_len] = row;
                b->pt_len++;
            }
            i++;
            uint64_t x = mix64((k1 + (base + i) * 0x9e3779b97f4a7c15ULL) ^ k2);
            uint64_t u = (x & ((1ULL << 48) - 1)) + 1;
            /* Q8.24 exponential times 2^32/w, >> 16: the Q16.48 gap for
             * rate w per row over the block's 2^8 rows; below 2^62, and
             * e stays below 2^63 (it is at most the horizon before) */
            e += ((neglog2_q32(b->log2_tab, u) >> 8) * recip) >> 16;
            row = (uint8_t)(x >> 56);
            b->work++;
        }
    }
    b->candidates += b->pt_len;

    /* New layout: each row's list as it is (its order and the drops of
     * row_at() included), then its new points, which all arrive later. */
    uint32_t add[BLOCK_ROWS] = {0}, total = 0;
    for (size_t i = 0; i < b->pt_len; i++)
        add[b->pt_row[i]]++;
    for (uint32_t r = 0; r < BLOCK_ROWS; r++)
        total += len[r] + add[r];
    if (total > b->scratch_cap) {
        uint32_t cap = total + total / 4;
        uint64_t *c = realloc(b->scratch, cap * sizeof(*c));
        if (!c)
            return -ENOMEM;
        b->scratch = c;
        b->scratch_cap = cap;
    }
    uint64_t *out = b->scratch;
    uint32_t acc = 0;
    for (uint32_t r = 0; r < BLOCK_ROWS; r++) {
        if (len[r])
            memcpy(out + acc, bk->cand + start[r], len[r] * sizeof(*out));
        start[r] = acc;
        acc += len[r] + add[r];
        add[r] = start[r] + len[r]; /* next free slot of row r */
    }
    for (size_t i = 0; i < b->pt_len; i++) {
        uint32_t r = b->pt_row[i];
        out[add[r]++] = b->pt_cand[i];
        len[r]++;
    }
    /* swap: the block keeps the new array, the old one is the next scratch */
    b->scratch = bk->cand;
    bk->cand = out;
    uint32_t cap = bk->cap;
    bk->cap = b->scratch_cap;
    b->scratch_cap = cap;
    return 0;
}

/* Draws the lists of the members of a (and c, if given) but `except`, and
 * only those, for the blocks in want (all if NULL). The horizon is in arrivals of that set:
 * FIRST_LAMBDA (draw_per_row) per row on average up front, MAX_LAMBDA at
 * most, whatever the weights of proxies outside the set (a draining proxy
 * of weight 63 next to an active one of weight 1 no longer makes the
 * primary matching draw 63 times as much). */
static int draw_lists(struct builder *b, const uint8_t *a, const uint8_t *c, uint16_t except,
                      const uint8_t *want)
{
    uint64_t wsum = 0;
    int rc;

    for (uint32_t p = 0; p < b->n; p++) {
        b->in_draw[p] = (a[p] || (c && c[p])) && p != except;
        if (b->in_draw[p])
            wsum += b->px[p].weight;
    }
    /* horizon * wsum * ln 2 = lambda arrivals per row (Q16.48, 1/ln 2 ~ 1.4427) */
    uint64_t horizon = (b->first_lambda << ARRIVAL_FRAC_BITS) / wsum / 1000 * 1443;
    b->horizon_max = ((uint64_t)MAX_LAMBDA << ARRIVAL_FRAC_BITS) / wsum / 1000 * 1443;
    for (uint32_t k = 0; k < BLOCKS; k++) {
        if (want && !want[k])
            continue;
        b->blocks[k].horizon = horizon;
        if ((rc = generate_block(b, k, true)) < 0)
            return rc;
    }
    return 0;
}

/* ---- matching ------------------------------------------------------- */

static void set_use(struct builder *b, const uint8_t *a, const uint8_t *c)
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
    b->otree[i] = open_key(b, q);
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
 * needed so the capacities add up to at least ROWS. */
static int set_capacities(struct builder *b)
{
    uint64_t wsum = 0, total = 0;
    uint64_t permille = b->load_permille;

    for (uint32_t p = 0; p < b->n; p++)
        if (b->in_set[p])
            wsum += b->px[p].weight;
    uint64_t floor_pm = 1000 + (1000ULL * b->set_size + ROWS - 1) / ROWS;
    if (permille < floor_pm)
        permille = floor_pm;
    for (uint32_t p = 0; p < b->n; p++) {
        b->hlen[p] = 0;
        b->hoff[p] = (uint32_t)total;
        if (!b->in_set[p]) {
            b->cap[p] = 0;
            continue;
        }
        uint64_t c = permille * ROWS * b->px[p].weight / (1000 * wsum);
        b->cap[p] = (uint32_t)(c == 0 ? 1 : c > ROWS ? ROWS : c);
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
    if ((i >= 8 && sorted < b->row_len[r]) || b->row_len[r] - sorted > 16) {
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
        b->work += len - sorted;
        for (uint32_t k = sorted + 1; k < len; k++)
            if (c[k] < c[m])
                m = k;
        uint64_t v = c[m];
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

/* Row r needs candidates beyond its block's horizon: redraw the block to
 * twice the horizon (1), unless it is at the limit (0). Every new arrival is later than every old
 * one, so each row's old list is a prefix of its new list: positions into the lists and the
 * matching built so far stay valid. */
static int row_short(struct builder *b, uint32_t r)
{
    struct block *bk = &b->blocks[r >> BLOCK_BITS];
    if (bk->horizon >= b->horizon_max)
        return 0; /* the row gives up, see MAX_LAMBDA */
    bk->horizon = bk->horizon > b->horizon_max / 2 ? b->horizon_max : 2 * bk->horizon;
    b->blocks_extended++;
    int rc = generate_block(b, r >> BLOCK_BITS, false);
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
                rc = set_open_beyond(b, r) ? row_short(b, r) : 0;
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

/* The stable matching of all rows to the current set, copied to result. */
static int match(struct builder *b, uint16_t *result)
{
    int rc = set_capacities(b);
    if (rc < 0)
        return rc;
    for (uint32_t r = 0; r < ROWS; r++) {
        b->assign[r] = NONE;
        b->pos[r] = 0;
        b->stack[r] = ROWS - 1 - r;
    }
    b->journaling = false;
    rc = propose(b, ROWS);
    if (rc < 0)
        return rc;
    memcpy(result, b->assign, ROWS * sizeof(*result));
    return 0;
}

/* With the matching of B in place: for each member P, where P's rows go
 * when P is removed and every other proxy keeps its rows and capacity. */
static int failover(struct builder *b)
{
    int rc = 0;

    for (uint32_t r = 0; r < ROWS; r++)
        b->fo[r] = NONE;
    b->journaling = true;
    for (uint32_t p = 0; p < b->n && rc == 0; p++) {
        if (!b->in_set[p] || b->hlen[p] == 0)
            continue;
        /* P's heap is not touched while P is out of the set */
        const struct held *mine = b->heap + b->hoff[p];
        uint32_t nmine = b->hlen[p], sp = 0;

        b->epoch++;
        b->njrow = b->njlen = b->njslot = 0;
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
        b->in_set[p] = 1;
        b->set_size++;
        open_rebuild(b);
    }
    b->journaling = false;
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
        uint64_t x = mix64((b->k1[q] + ((1ULL << 63) + r) * 0x9e3779b97f4a7c15ULL) ^ b->k2[q]);
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
    uint64_t c;

    for (uint32_t i = 0;; i++) {
        b->work++;
        if (row_at(b, r, i, &c)) {
            if (cand_proxy(c) == except)
                continue;
            *out = (uint16_t)cand_proxy(c);
            return 0;
        }
        int rc = row_short(b, r);
        if (rc <= 0) {
            *out = NONE;
            return rc;
        }
        i--; /* position i again, in the longer list */
    }
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
    uint8_t want[BLOCKS];
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
        memset(want, 0, sizeof(want));
        for (uint32_t r = 0; r < ROWS; r++)
            if (rows[r].secondary == NONE && (rows[r].primary == d) == (pass == 1))
                any = (want[r >> BLOCK_BITS] = 1);
        if (!any)
            continue;
        if ((rc = draw_lists(b, b->in_h, NULL, pass ? d : NONE, want)) < 0)
            return rc;
        for (uint32_t r = 0; r < ROWS; r++) {
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
static int build_rows(struct builder *b, struct director_table_row *rows)
{
    int rc = 0;

    if ((rc = draw_lists(b, b->in_b, NULL, NONE, NULL)) < 0)
        return rc;
    set_use(b, b->in_b, NULL);
    rc = match(b, b->prim);
    /* A row the matching left without a primary (only when weights are so
     * unequal that MAX_LAMBDA cut its search short): the member of B first
     * in the row, capacity aside. */
    for (uint32_t r = 0; r < ROWS && rc == 0; r++) {
        if (b->prim[r] != NONE)
            continue;
        rc = list_first(b, r, NONE, &b->prim[r]);
        if (rc == 0 && b->prim[r] == NONE)
            b->prim[r] = race_first(b, r, b->in_b, NONE);
    }
    if (rc == 0)
        rc = failover(b);
    if (rc == 0 && b->nd && (rc = draw_lists(b, b->in_b, b->in_d, NONE, NULL)) == 0) {
        set_use(b, b->in_b, b->in_d);
        rc = match(b, b->dr);
    }
    if (rc == 0 && b->nf && (rc = draw_lists(b, b->in_b, b->in_f, NONE, NULL)) == 0) {
        set_use(b, b->in_b, b->in_f);
        rc = match(b, b->fr);
    }
    if (rc < 0)
        return rc;

    for (uint32_t r = 0; r < ROWS; r++) {
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

static void builder_free(struct builder *b)
{
    free(b->k1);
    free(b->in_b);
    free(b->pt_cand);
    free(b->pt_row);
    free(b->row_start);
    for (uint32_t k = 0; k < BLOCKS; k++)
        free(b->blocks[k].cand);
    free(b->assign);
    free(b->cap);
    free(b->otree);
    free(b->gen_i);
    free(b->gen_e);
    free(b->gen_row);
    free(b->scratch);
    free(b->heap);
    free(b->stack);
    free(b->jrow);
    free(b->px_epoch);
    free(b->jlen);
    free(b->jslot);
    free(b->prim);
}

static int builder_alloc(struct builder *b, uint32_t n)
{
    size_t np = n ? n : 1;
    b->n = n;
    b->k1 = calloc(3 * np, sizeof(uint64_t));
    b->in_b = calloc(6 * np, 1);
    b->row_start = calloc(5 * (size_t)ROWS, sizeof(uint32_t));
    b->px_epoch = calloc(3 * np, sizeof(uint32_t));
    b->assign = calloc(ROWS, sizeof(uint16_t));
    b->cap = calloc(3 * np, sizeof(uint32_t));
    for (b->otn = 1; b->otn < np; b->otn *= 2)
        ;
    b->otree = calloc(2 * (size_t)b->otn, sizeof(uint64_t));
    b->gen_i = calloc((size_t)BLOCKS * np, sizeof(uint32_t));
    b->gen_e = calloc((size_t)BLOCKS * np, sizeof(uint64_t));
    b->gen_row = calloc((size_t)BLOCKS * np, 1);
    b->stack = calloc(ROWS, sizeof(uint32_t));
    b->jrow = calloc(ROWS, sizeof(struct saved_row));
    b->jlen = calloc(np, sizeof(struct saved_len));
    b->prim = calloc(4 * (size_t)ROWS, sizeof(uint16_t));
    if (!b->k1 || !b->in_b || !b->otree || !b->gen_i || !b->gen_e || !b->gen_row || !b->row_start ||
        !b->px_epoch || !b->assign || !b->cap || !b->stack || !b->jrow || !b->jlen || !b->prim)
        return -ENOMEM;
    b->k2 = b->k1 + np;
    b->recip = b->k1 + 2 * np;
    b->in_d = b->in_b + np;
    b->in_f = b->in_b + 2 * np;
    b->in_h = b->in_b + 3 * np;
    b->in_set = b->in_b + 4 * np;
    b->in_draw = b->in_b + 5 * np;
    b->row_len = b->row_start + ROWS;
    b->pos = b->row_start + 2 * (size_t)ROWS;
    b->row_epoch = b->row_start + 3 * (size_t)ROWS;
    b->row_sorted = b->row_start + 4 * (size_t)ROWS;
    b->stamp = b->px_epoch + np;
    b->slot = b->px_epoch + 2 * np;
    b->hoff = b->cap + np;
    b->hlen = b->cap + 2 * np;
    b->fo = b->prim + ROWS;
    b->dr = b->prim + 2 * (size_t)ROWS;
    b->fr = b->prim + 3 * (size_t)ROWS;
    return 0;
}

/* ---- public ------------------------------------------------------------- */

static void finish_stats(struct director_table *t)
{
    uint64_t wsum = 0;
    for (uint32_t p = 0; p < t->proxy_count; p++) {
        t->proxies[p].primary_rows = t->proxies[p].secondary_rows = 0;
        if (t->proxies[p].primary_eligible)
            wsum += t->proxies[p].weight;
    }
    for (uint32_t r = 0; r < ROWS; r++) {
        if (t->rows[r].primary != NONE)
            t->proxies[t->rows[r].primary].primary_rows++;
        if (t->rows[r].secondary != NONE)
            t->proxies[t->rows[r].secondary].secondary_rows++;
    }
    t->balance_max_over_mean = 0;
    for (uint32_t p = 0; p < t->proxy_count; p++) {
        const struct director_table_proxy *x = &t->proxies[p];
        if (!x->primary_eligible)
            continue;
        double share = (double)ROWS * x->weight / (double)wsum;
        double ratio = x->primary_rows / share;
        if (ratio > t->balance_max_over_mean)
            t->balance_max_over_mean = ratio;
    }
    t->checksum = director_table_checksum(t);
}

int director_table_build(const struct director_table_config *cfg,
                         const struct director_proxy_input *proxies, size_t count,
                         struct director_table **out, char *err, size_t err_len)
{
    struct director_table *t = NULL;
    struct builder b = {0};
    uint32_t *order = NULL;
    int rc;

    if (err && err_len)
        err[0] = 0;
    if (!out)
        return fail(err, err_len, -EINVAL, "director table: no output pointer");
    *out = NULL;
    if (count > DIRECTOR_TABLE_MAX_PROXIES)
        return fail(err, err_len, -EINVAL, "director table: %zu proxies, at most %u supported",
                    count, DIRECTOR_TABLE_MAX_PROXIES);
    if (count && !proxies)
        return fail(err, err_len, -EINVAL, "director table: %zu proxies but no array", count);
    if (cfg && cfg->seed_len && !cfg->seed)
        return fail(err, err_len, -EINVAL, "director table: seed length %zu but no seed",
                    cfg->seed_len);

    rc = -ENOMEM;
    t = calloc(1, sizeof(*t));
    order = calloc(count ? count : 1, sizeof(*order));
    if (!t || !order)
        goto nomem;
    t->proxies = calloc(count ? count : 1, sizeof(*t->proxies));
    t->rows = malloc(ROWS * sizeof(*t->rows));
    if (!t->proxies || !t->rows)
        goto nomem;
    t->proxy_count = (uint32_t)count;

    rc = canonicalize(proxies, count, t->proxies, order, err, err_len);
    if (rc < 0)
        goto out;
    if (builder_alloc(&b, (uint32_t)count) < 0)
        goto nomem;
    b.px = t->proxies;
    b.load_permille =
        cfg && cfg->load_permille ? cfg->load_permille : DIRECTOR_TABLE_DEFAULT_LOAD_PERMILLE;
    if (b.load_permille > DIRECTOR_TABLE_MAX_LOAD_PERMILLE)
        b.load_permille = DIRECTOR_TABLE_MAX_LOAD_PERMILLE;

    t->tier = choose_sets(&b);
    if (t->tier == DIRECTOR_TIER_EMPTY) {
        for (uint32_t r = 0; r < ROWS; r++)
            t->rows[r].primary = t->rows[r].secondary = NONE;
        finish_stats(t);
        rc = -ENOENT;
        goto done;
    }
    log2_table_init(b.log2_tab);
    derive_keys(&b, cfg);

    for (uint32_t p = 0; p < b.n; p++)
        b.recip[p] = (1ULL << 32) / t->proxies[p].weight;
    b.first_lambda = cfg && cfg->draw_per_row ? cfg->draw_per_row : FIRST_LAMBDA;
    if (b.first_lambda > MAX_LAMBDA)
        b.first_lambda = MAX_LAMBDA;
    rc = build_rows(&b, t->rows);
    t->blocks_extended = b.blocks_extended;
    t->candidates = b.candidates;
    t->work = b.work;
    if (rc == -ENOMEM)
        goto nomem;
    if (rc < 0) {
        rc =
            fail(err, err_len, rc, "director table: cannot draw candidates for %zu proxies", count);
        goto out;
    }
    for (uint32_t p = 0; p < t->proxy_count; p++) {
        t->proxies[p].primary_eligible = b.in_b[p];
        t->proxies[p].capacity = 0;
    }
    set_use(&b, b.in_b, NULL);
    if (set_capacities(&b) < 0)
        goto nomem;
    for (uint32_t p = 0; p < t->proxy_count; p++)
        t->proxies[p].capacity = b.cap[p];
    t->primary_eligible = b.nb;
    finish_stats(t);
    rc = 0;
    goto done;

nomem:
    rc = fail(err, err_len, -ENOMEM, "director table: out of memory for %zu proxies", count);
out:
    director_table_free(t);
    t = NULL;
done:
    builder_free(&b);
    free(order);
    *out = t;
    return rc;
}

void director_table_free(struct director_table *table)
{
    if (!table)
        return;
    free(table->proxies);
    free(table->rows);
    free(table);
}

static void put_le(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

uint64_t director_table_checksum(const struct director_table *t)
{
    static const uint8_t zero[SIPHASH_KEY_LEN];
    struct siphash_state st;
    uint8_t buf[1024];

    siphash24_init(&st, zero);
    put_le(buf, CHECKSUM_VERSION, 4);
    put_le(buf + 4, t->proxy_count, 4);
    siphash24_update(&st, buf, 8);
    for (uint32_t p = 0; p < t->proxy_count; p++) {
        const struct director_table_proxy *x = &t->proxies[p];
        size_t len = strlen(x->id);
        buf[0] = (uint8_t)len;
        memcpy(buf + 1, x->id, len);
        buf[1 + len] = x->family == AF_INET6 ? 6 : 4;
        memcpy(buf + 2 + len, x->addr, 16);
        siphash24_update(&st, buf, len + 18);
    }
    for (uint32_t r = 0; r < ROWS; r += 256) {
        for (uint32_t k = 0; k < 256; k++) {
            put_le(buf + 4 * k, t->rows[r + k].primary, 2);
            put_le(buf + 4 * k + 2, t->rows[r + k].secondary, 2);
        }
        siphash24_update(&st, buf, 1024);
    }
    return siphash24_final(&st);
}

int director_table_find(const struct director_table *t, const char *id)
{
    uint32_t lo = 0, hi = t->proxy_count;
    if (!id)
        return -1;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int c = strcmp(t->proxies[mid].id, id);
        if (c == 0)
            return (int)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

void director_table_diff(const struct director_table *a, const struct director_table *b,
                         struct director_table_diff *out)
{
    uint16_t map[DIRECTOR_TABLE_MAX_PROXIES];

    memset(out, 0, sizeof(*out));
    for (uint32_t p = 0; p < a->proxy_count; p++) {
        int q = director_table_find(b, a->proxies[p].id);
        map[p] = q < 0 ? NONE - 1 : (uint16_t)q; /* NONE - 1: gone, matches nothing */
    }
    for (uint32_t r = 0; r < ROWS; r++) {
        uint16_t ap = a->rows[r].primary, as = a->rows[r].secondary;
        uint16_t mp = ap == NONE ? NONE : map[ap];
        uint16_t ms = as == NONE ? NONE : map[as];
        const struct director_table_row *nb = &b->rows[r];
        out->primary_moved += mp != nb->primary;
        out->secondary_moved += ms != nb->secondary;
        if (ap != NONE && mp != nb->primary && mp != nb->secondary)
            out->flows_broken++;
    }
}

static const char *const state_names[] = {
    [DIRECTOR_PROXY_INACTIVE] = "inactive",
    [DIRECTOR_PROXY_ACTIVE] = "active",
    [DIRECTOR_PROXY_FILLING] = "filling",
    [DIRECTOR_PROXY_DRAINING] = "draining",
};

const char *director_proxy_state_name(enum director_proxy_state state)
{
    if ((unsigned)state < sizeof(state_names) / sizeof(state_names[0]))
        return state_names[state];
    return "unknown";
}

int director_proxy_state_parse(const char *text, enum director_proxy_state *out)
{
    if (!text)
        return -EINVAL;
    for (unsigned i = 0; i < sizeof(state_names) / sizeof(state_names[0]); i++) {
        if (strcasecmp(text, state_names[i]) == 0) {
            *out = (enum director_proxy_state)i;
            return 0;
        }
    }
    return -EINVAL;
}

const char *director_table_tier_name(enum director_table_tier tier)
{
    switch (tier) {
    case DIRECTOR_TIER_HEALTHY_ACTIVE:
        return "healthy-active";
    case DIRECTOR_TIER_HEALTHY_STANDBY:
        return "healthy-standby";
    case DIRECTOR_TIER_UNHEALTHY_ACTIVE:
        return "unhealthy-active";
    case DIRECTOR_TIER_UNHEALTHY_ANY:
        return "unhealthy-any";
    case DIRECTOR_TIER_EMPTY:
        return "empty";
    }
    return "unknown";
}
