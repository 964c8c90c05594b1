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
 *    needs more candidates than were drawn gets its block drawn on to
 *    twice the horizon (row_short_open: only for the members that could
 *    still take it, undone with a failover cascade where needed;
 *    row_short: for all); old lists are prefixes of the new ones, so
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
#include "director_table_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "siphash.h"

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

/* ---- public ------------------------------------------------------------- */

static void finish_stats(struct director_table *t)
{
    uint64_t wsum = 0;
    for (uint32_t p = 0; p < t->proxy_count; p++) {
        t->proxies[p].primary_rows = t->proxies[p].secondary_rows = 0;
        if (t->proxies[p].primary_eligible)
            wsum += t->proxies[p].weight;
    }
    for (uint32_t r = 0; r < t->row_count; r++) {
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
        double share = (double)t->row_count * x->weight / (double)wsum;
        double ratio = x->primary_rows / share;
        if (ratio > t->balance_max_over_mean)
            t->balance_max_over_mean = ratio;
    }
    t->checksum = director_table_checksum(t);
}

/* Threads for drawing lists: the caller's choice, else one per online
 * CPU up to DEFAULT_MAX_THREADS (a director rebuilds on a fleet change
 * while its cores idle; the build's wall time delays the new table). */
static uint32_t draw_thread_count(const struct director_table_config *cfg)
{
    long cpus;

    if (cfg && cfg->threads)
        return cfg->threads < DIRECTOR_TABLE_MAX_THREADS ? cfg->threads
                                                         : DIRECTOR_TABLE_MAX_THREADS;
    cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (cpus < 1)
        return 1;
    return (uint32_t)cpus < DEFAULT_MAX_THREADS ? (uint32_t)cpus : DEFAULT_MAX_THREADS;
}

/* The row count config asks for: 0 = the production size; else a power
 * of two within [DIRECTOR_TABLE_MIN_ROWS, DIRECTOR_TABLE_ROWS], or 0 if not. */
static uint32_t table_row_count(const struct director_table_config *cfg)
{
    uint32_t rows = cfg && cfg->rows ? cfg->rows : DIRECTOR_TABLE_ROWS;
    bool power_of_two = (rows & (rows - 1)) == 0;
    if (!power_of_two || rows < DIRECTOR_TABLE_MIN_ROWS || rows > DIRECTOR_TABLE_ROWS)
        return 0;
    return rows;
}

int director_table_build(const struct director_table_config *cfg,
                         const struct director_proxy_input *proxies, size_t count,
                         struct director_table **out, char *err, size_t err_len)
{
    struct director_table *t = NULL;
    struct builder b = {0};
    uint32_t *order = NULL;
    uint32_t rows = table_row_count(cfg);
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
    if (!rows)
        return fail(err, err_len, -EINVAL,
                    "director table: %u rows asked, not a power of two from %u to %u",
                    (unsigned)cfg->rows, DIRECTOR_TABLE_MIN_ROWS, DIRECTOR_TABLE_ROWS);

    rc = -ENOMEM;
    t = calloc(1, sizeof(*t));
    order = calloc(count ? count : 1, sizeof(*order));
    if (!t || !order)
        goto nomem;
    t->proxies = calloc(count ? count : 1, sizeof(*t->proxies));
    t->rows = malloc(rows * sizeof(*t->rows));
    if (!t->proxies || !t->rows)
        goto nomem;
    t->proxy_count = (uint32_t)count;
    t->row_count = rows;

    rc = canonicalize(proxies, count, t->proxies, order, err, err_len);
    if (rc < 0)
        goto out;
    if (table_builder_alloc(&b, (uint32_t)count, rows) < 0)
        goto nomem;
    b.px = t->proxies;
    b.load_permille =
        cfg && cfg->load_permille ? cfg->load_permille : DIRECTOR_TABLE_DEFAULT_LOAD_PERMILLE;
    if (b.load_permille > DIRECTOR_TABLE_MAX_LOAD_PERMILLE)
        b.load_permille = DIRECTOR_TABLE_MAX_LOAD_PERMILLE;

    t->tier = table_choose_sets(&b);
    if (t->tier == DIRECTOR_TIER_EMPTY) {
        for (uint32_t r = 0; r < rows; r++)
            t->rows[r].primary = t->rows[r].secondary = NONE;
        finish_stats(t);
        rc = -ENOENT;
        goto done;
    }
    table_log2_table_init(b.log2_tab);
    table_derive_keys(&b, cfg);

    for (uint32_t p = 0; p < b.n; p++)
        b.recip[p] = (1ULL << 32) / t->proxies[p].weight;
    b.threads = draw_thread_count(cfg);
    t->threads = b.threads;
    b.first_lambda = cfg && cfg->draw_per_row ? cfg->draw_per_row : FIRST_LAMBDA;
    if (b.first_lambda > MAX_LAMBDA)
        b.first_lambda = MAX_LAMBDA;
    rc = table_build_rows(&b, t->rows);
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
    table_set_use(&b, b.in_b, NULL);
    if (table_set_capacities(&b) < 0)
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
    table_builder_free(&b);
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
    for (uint32_t r = 0; r < t->row_count; r += 256) {
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
    uint32_t rows = a->row_count < b->row_count ? a->row_count : b->row_count;
    for (uint32_t r = 0; r < rows; r++) {
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
