/* SPDX-License-Identifier: Apache-2.0 */
/*
 * director_table: builds the director's forwarding table - 65,536 rows of
 * {primary, secondary} proxy - from the proxies' admin state, health and
 * weight. Pure functions: no I/O, no globals, no logging; the same input
 * (in any order) gives the byte-identical table on every host, so all
 * directors of a cluster agree and operators can compare checksums.
 *
 * Method (docs/director-table.md has the full definition and reasoning):
 * every proxy owns a keyed pseudo-random "arrival time" in every row
 * (weighted rendezvous / exponential race, generated sparsely so a build
 * costs about the same for 16 or 1,024 proxies); each row prefers the
 * proxies that arrive first, each proxy accepts at most a capacity of
 * rows (1.10 x its weighted share), and rows are assigned by the unique
 * stable matching of those preferences. The secondary is the proxy that
 * keeps existing flows alive through second chance: the former primary of
 * a draining proxy's rows, the future primary while a proxy fills, and
 * otherwise the proxy the row would move to if its primary disappeared.
 *
 * Owns: the table it returns (free with director_table_free()).
 */
#ifndef DROVER_DIRECTOR_TABLE_H
#define DROVER_DIRECTOR_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DIRECTOR_TABLE_ROWS 65536u
/* The smallest table director_table_config.rows allows (one block of
 * candidate drawing, docs/director-table.md "Cost"). */
#define DIRECTOR_TABLE_MIN_ROWS 256u
/* Matches DROVER_MAX_PROXIES in xdp-lb/bpf/drover_maps.h (the proxies map
 * holds that many per generation); row indices are below it. */
#define DIRECTOR_TABLE_MAX_PROXIES 1024u
/* Row entry meaning "no proxy" (= DROVER_ROW_NONE): not a valid index for
 * the XDP program, which then sends the packet with one hop (secondary) or
 * drops it and counts it (primary). */
#define DIRECTOR_TABLE_NONE 0xffffu
/* Proxy ids are KV host names: 1..253 printable ASCII bytes. */
#define DIRECTOR_TABLE_ID_MAX 253u
/* Weight 0 in the input means "unset" and becomes the default. */
#define DIRECTOR_TABLE_DEFAULT_WEIGHT 100u
#define DIRECTOR_TABLE_MAX_WEIGHT     65535u
/* Capacity of a proxy as primary, in per mille of its weighted share. */
#define DIRECTOR_TABLE_DEFAULT_LOAD_PERMILLE 1100u
/* Larger values are clamped: capacity no longer binds long before. */
#define DIRECTOR_TABLE_MAX_LOAD_PERMILLE 100000u
/* Larger thread counts are clamped (a block of rows is the unit of work). */
#define DIRECTOR_TABLE_MAX_THREADS 16u

/* GLB admin states. Values equal enum drover_proxy_state of
 * xdp-lb/bpf/drover_maps.h so they can be copied into the proxies map. */
enum director_proxy_state {
    DIRECTOR_PROXY_INACTIVE = 0,
    DIRECTOR_PROXY_ACTIVE = 1,
    DIRECTOR_PROXY_FILLING = 2,
    DIRECTOR_PROXY_DRAINING = 3,
};

/* Which proxies the builder could use as primaries (see the docs: the first
 * non-empty tier wins). Anything but TIER_HEALTHY_ACTIVE deserves a warning
 * and a metric from the caller. */
enum director_table_tier {
    DIRECTOR_TIER_HEALTHY_ACTIVE = 0,   /* normal */
    DIRECTOR_TIER_HEALTHY_STANDBY = 1,  /* no healthy active: healthy filling/draining */
    DIRECTOR_TIER_UNHEALTHY_ACTIVE = 2, /* nothing healthy: fail open to active */
    DIRECTOR_TIER_UNHEALTHY_ANY = 3,    /* nothing healthy or active: any non-inactive */
    DIRECTOR_TIER_EMPTY = 4,            /* no proxy that is not inactive */
};

struct director_proxy_input {
    const char *id;      /* KV host name, unique, the hash input */
    const char *address; /* IPv4 or IPv6 text */
    enum director_proxy_state state;
    bool healthy;
    uint32_t weight; /* 0 = DIRECTOR_TABLE_DEFAULT_WEIGHT */
};

struct director_table_config {
    /* Table seed, e.g. the cluster's hash key: different seeds give
     * unrelated tables. May be empty (seed_len 0). */
    const uint8_t *seed;
    size_t seed_len;
    /* Primary capacity in per mille of the weighted share; 0 = default
     * (1100, i.e. max/mean <= 1.10). Values below 1000 are raised to 1000
     * plus enough to fit every row; values above 100000 are clamped. */
    unsigned load_permille;
    /* Tuning only: mean candidates per row drawn before any row asks for
     * more (0 = default 12). The table never depends on it. */
    unsigned draw_per_row;
    /* Threads that draw the candidate lists, the calling one included
     * (with 2 or more, the second half of the failover cascades also runs
     * on a thread of its own, on a copy of the lists): 0 = the online
     * CPUs, at most 4; 1 = no other thread and no copy; at most
     * DIRECTOR_TABLE_MAX_THREADS. Cost only: the table and its checksum
     * are the same for every value, the work counter for every value
     * above 1 (with 1 the cascades share one copy of the lists and take
     * other steps, mostly fewer, see docs/director-table.md, "Threads"). */
    unsigned threads;
    /* Rows of the table: 0 = DIRECTOR_TABLE_ROWS, the size of the XDP
     * table map and the only size directors build and publish. Else a
     * power of two from DIRECTOR_TABLE_MIN_ROWS to DIRECTOR_TABLE_ROWS:
     * the same rules on fewer rows at a fraction of the cost, for tests
     * and fuzzing (tests/fuzz/xdp-lb/fuzz_director_table.c). */
    uint32_t rows;
};

/* One proxy of the table, in canonical order (ascending id bytes). */
struct director_table_proxy {
    char id[DIRECTOR_TABLE_ID_MAX + 1];
    int family;       /* AF_INET or AF_INET6 */
    uint8_t addr[16]; /* network order; IPv4 in the first 4 bytes */
    enum director_proxy_state state;
    bool healthy;
    uint32_t weight;         /* effective weight */
    bool primary_eligible;   /* member of the tier's primary set */
    uint32_t capacity;       /* max rows as primary (0 if not eligible) */
    uint32_t primary_rows;   /* rows where it is primary */
    uint32_t secondary_rows; /* rows where it is secondary */
};

/* Copy field by field into struct drover_row (which is padded to 8 bytes
 * for the mmapped array map); indices and NONE mean the same there. */
struct director_table_row {
    uint16_t primary;   /* index into proxies[], or DIRECTOR_TABLE_NONE */
    uint16_t secondary; /* index into proxies[], or DIRECTOR_TABLE_NONE */
};

struct director_table {
    uint32_t proxy_count;
    struct director_table_proxy *proxies; /* proxy_count entries, canonical order */
    struct director_table_row *rows;      /* row_count entries */
    uint32_t row_count;                   /* DIRECTOR_TABLE_ROWS unless config.rows said less */
    enum director_table_tier tier;
    uint32_t primary_eligible; /* proxies in the primary set */
    /* max over primary-eligible proxies of primary_rows / weighted share;
     * 1.0 is perfect balance, 0 when the table is empty */
    double balance_max_over_mean;
    uint64_t checksum; /* director_table_checksum() of this table */
    /* cost of the build, for benchmarks and debug logs */
    uint32_t blocks_extended; /* row blocks drawn again further (rows ran short) */
    uint64_t candidates;      /* (row, proxy) candidates drawn, redraws included */
    /* steps of the build: draws, candidates looked at, proxies scanned;
     * bounded independently of weights (docs/director-table.md, "Cost") */
    uint64_t work;
    uint32_t threads; /* threads that drew lists (config.threads, or the default) */
};

/* Build the table. On success returns 0 and *out owns a new table. Returns
 * -ENOENT when no proxy is filling, active or draining: *out is still a
 * complete table whose rows are all DIRECTOR_TABLE_NONE (and tier is
 * DIRECTOR_TIER_EMPTY), so the caller can decide whether to install it.
 * Returns -EINVAL for invalid input (duplicate id or address, empty or
 * non-printable id, bad address, bad state or weight, more than
 * DIRECTOR_TABLE_MAX_PROXIES proxies, a row count that config.rows does
 * not allow) with a message naming the proxy in
 * err (if err_len > 0) and *out NULL; -ENOMEM on allocation failure. */
int director_table_build(const struct director_table_config *cfg,
                         const struct director_proxy_input *proxies, size_t count,
                         struct director_table **out, char *err, size_t err_len);

void director_table_free(struct director_table *table);

/* 64-bit checksum of what the table forwards to: SipHash-2-4 under an
 * all-zero key of the canonical serialisation (docs/director-table.md):
 * version, proxies (id, family, address) in canonical order, then every
 * row's primary and secondary as little-endian 16-bit indices. Directors
 * built from the same input report the same value. */
uint64_t director_table_checksum(const struct director_table *table);

/* Index of the proxy with this id, or -1. */
int director_table_find(const struct director_table *table, const char *id);

/* Row-by-row comparison of two tables of the same row count (proxies
 * matched by id, so the tables may have different proxy lists). */
struct director_table_diff {
    uint32_t primary_moved;   /* rows whose primary proxy changed */
    uint32_t secondary_moved; /* rows whose secondary proxy changed */
    /* rows whose old primary is neither the new primary nor the new
     * secondary: flows established there lose their proxy */
    uint32_t flows_broken;
};
void director_table_diff(const struct director_table *before, const struct director_table *after,
                         struct director_table_diff *out);

const char *director_proxy_state_name(enum director_proxy_state state);
/* "inactive"|"filling"|"active"|"draining" (case-insensitive): 0 or -EINVAL. */
int director_proxy_state_parse(const char *text, enum director_proxy_state *out);
const char *director_table_tier_name(enum director_table_tier tier);

#endif
