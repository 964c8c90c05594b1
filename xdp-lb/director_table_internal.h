/* SPDX-License-Identifier: Apache-2.0 */
/*
 * director_table_internal: the builder state shared by director_table.c
 * (validation, canonical order, the public API, stats and checksums) and
 * director_table_match.c (sets, candidate generation, the stable matching,
 * failover secondaries and row assembly). Nothing else includes it.
 */
#ifndef DROVER_XDPLB_DIRECTOR_TABLE_INTERNAL_H
#define DROVER_XDPLB_DIRECTOR_TABLE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "director_table.h"

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
#define MAX_LAMBDA 64u
/* Draws (work steps) of block extensions undone with a failover cascade,
 * at most, for the cascades on one copy of the lists: one more list
 * drawing to MAX_LAMBDA (twice with more than one thread, where each half
 * of the cascades has its own copy, see failover()). Beyond it, cascades
 * draw blocks for every member open at the end of the matching, which is
 * never undone. */
#define JOURNAL_BUDGET(b) ((uint64_t)(b)->rows * MAX_LAMBDA)
#define LOG2_TAB_BITS     10
#define LOG2_TAB_SIZE     (1u << LOG2_TAB_BITS)

/* Rows are drawn in blocks of 256 so a block's lists stay in cache and a
 * block whose rows ran short can be redrawn alone. */
#define BLOCK_BITS 8
#define BLOCK_ROWS (1u << BLOCK_BITS)
#define MAX_BLOCKS (DIRECTOR_TABLE_ROWS / BLOCK_ROWS)
_Static_assert(BLOCK_ROWS == DIRECTOR_TABLE_MIN_ROWS, "the smallest table is one block");

/* Threads that draw lists when the caller leaves it to the builder
 * (director_table_config.threads 0): the online CPUs, at most this many;
 * past four the drawing is no longer what a build waits for (each
 * matching runs on the calling thread, the failover cascades on two). */
#define DEFAULT_MAX_THREADS 4u

/* Lists of members open at the end of a matching kept at once: one per
 * horizon a block can have (FIRST_LAMBDA >= 1 doubled up to MAX_LAMBDA). */
#define FIN_CACHED 8

struct block {
    uint64_t horizon; /* arrivals of the open proxies drawn up to here (Q16.48) */
    uint64_t full;    /* arrivals of every proxy the lists hold drawn up to here */
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

/* a block as it was before a failover cascade drew it further */
struct saved_block {
    uint32_t k;
    uint64_t horizon, full;
    uint64_t *cand; /* the old list array, NULL if it was not replaced */
    uint32_t cap;
    uint32_t gen_from, gen_count; /* its proxies' process state in jgen */
};

struct saved_gen {
    uint32_t at; /* index into gen_i, gen_e, gen_row */
    uint32_t i;
    uint64_t e;
    uint8_t row;
};

/* What drawing a block writes besides the block's own lists, process
 * state and row layout: buffers and counters. The building thread has
 * one; each helper thread of a parallel list drawing has its own, so the
 * threads share nothing they write (docs/director-table.md, "Cost"). */
struct drawer {
    uint64_t *scratch; /* the next block array, see generate_block() */
    uint32_t scratch_cap;
    /* candidates of the block being drawn, in drawing order */
    uint64_t *pt_cand; /* with the row within the block in the top bits */
    size_t pt_cap;
    uint64_t work, candidates; /* added to the builder's at the end of a drawing */
};

struct builder {
    uint32_t n;
    uint32_t rows, nblocks;          /* of this table (director_table_config.rows) */
    struct director_table_proxy *px; /* canonical, owned by the table */
    uint64_t *k1, *k2;               /* per proxy stream keys */
    uint64_t *recip;                 /* per proxy 2^32 / weight */
    uint32_t log2_tab[LOG2_TAB_SIZE + 1];
    unsigned load_permille;

    uint8_t *in_b, *in_d, *in_f, *in_h; /* set membership per proxy */
    uint8_t *in_draw;                   /* the proxies the lists hold */
    bool lists_whole;                   /* ... in every block */
    uint32_t nb, nd, nf, nh;
    uint64_t wsum_b;

    /* per block and proxy: the next draw and the arrival so far, so that a
     * block drawn further only draws what is new */
    uint32_t *gen_i;
    uint64_t *gen_e;
    uint8_t *gen_row;
    struct drawer dw; /* the building thread's */
    /* threads that draw a set's lists (see draw_lists()); 1: no helper
     * thread. helpers[] has threads - 1 drawers, NULL until first used. */
    uint32_t threads;
    struct drawer *helpers;

    /* row r's candidates: blocks[r / BLOCK_ROWS].cand[row_start[r] ..
     * row_start[r] + row_len[r]) */
    struct block blocks[MAX_BLOCKS]; /* nblocks used */
    uint32_t *row_start, *row_len;
    uint32_t *row_sorted; /* leading entries already in final order */
    uint32_t pick_max;    /* unsorted entries row_at() picks from, at most */
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
    uint64_t *ofinal;     /* otree at the end of the matching, for failover */
    uint32_t *open_now;   /* n, see row_short_open() */
    uint32_t *open_final; /* FIN_CACHED x n, see open_final() */
    struct {
        uint64_t key, wsum;
        uint32_t count;
    } fin[FIN_CACHED];
    uint32_t nfin;
    struct held *heap;
    size_t heap_cap;
    uint32_t *stack;

    /* undo journal of a failover cascade */
    bool journaling;
    uint32_t epoch;
    uint32_t *row_epoch, *px_epoch;
    struct saved_row *jrow; /* rows */
    size_t njrow;
    struct saved_len *jlen; /* n */
    size_t njlen;
    struct saved_slot *jslot; /* grows */
    size_t njslot, jslot_cap;
    struct saved_block *jblk; /* nblocks */
    uint32_t *jblk_rows;      /* per saved block: row_start, row_len, row_sorted */
    size_t njblk;
    uint32_t *blk_epoch;    /* per block: the cascade that saved it last */
    uint32_t *blk_jidx;     /* per block: its entry in jblk then */
    uint64_t journal_work;  /* see JOURNAL_BUDGET */
    struct saved_gen *jgen; /* grows */
    size_t njgen, jgen_cap;

    /* per-row results */
    uint16_t *prim, *fo, *dr, *fr;
};

/* director_table_match.c, in the order director_table_build calls them */
void table_log2_table_init(uint32_t tab[LOG2_TAB_SIZE + 1]);
enum director_table_tier table_choose_sets(struct builder *b);
void table_derive_keys(struct builder *b, const struct director_table_config *cfg);
void table_set_use(struct builder *b, const uint8_t *a, const uint8_t *c);
int table_set_capacities(struct builder *b);
int table_builder_alloc(struct builder *b, uint32_t n, uint32_t rows);
int table_build_rows(struct builder *b, struct director_table_row *rows);
void table_builder_free(struct builder *b);

#endif
