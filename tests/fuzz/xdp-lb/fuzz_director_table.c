/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target for director_table_build: the input describes a small fleet
 * (ids of arbitrary bytes, addresses picked from a list that includes bad
 * and duplicate ones, states including invalid values, health, weights)
 * plus the build knobs. Whatever the input, the builder must either reject
 * it with -EINVAL and a message, or return a table that keeps every
 * invariant, and the same fleet in reverse order must give the same table
 * (and work counter).
 *
 * Every table's work counter must also stay within the bound that
 * docs/director-table.md ("Cost") gives independently of weights and draw
 * depth: the fuzzer finds the fleets that blow the builder up (issue 19)
 * as a failed check, not only as a timeout.
 *
 * Layout: byte 0 load factor, byte 1 draw depth (low 4 bits) and table
 * size (high 4 bits, see table_rows()), byte 2 seed length, the seed, then
 * per proxy: id length (0..9), id bytes, address index, state, flags (bit
 * 0 healthy), weight (0..255, so one build stays well inside the 10 s per
 * input; weights up to 65,535 and their validation are covered by the unit
 * tests and bench).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "director_table.h"

#define MAX_FLEET 12
/* docs/director-table.md, "Cost": at most 8 x MAX_LAMBDA steps per row */
#define WORK_PER_ROW_BOUND 512u

static const char *const addresses[] = {
    "10.0.0.1", "10.0.0.2",     "10.0.0.3",    "10.0.0.4",        "10.0.0.5",
    "10.0.0.6", "2001:db8::1",  "2001:db8::2", "::ffff:10.0.0.1", "10.0.0.256",
    "",         "fe80::1%eth0", "10.0.0.7",    "10.0.0.8",
};

/* Rows of the table an input builds, from the high 4 bits of byte 1: 15
 * is the production size; anything else a table of 256 to 1,024 rows,
 * where every rule of the builder holds alike (one block of drawing up to
 * four) at about 1/64 to 1/256 of the cost. So about one random input in
 * 16 is built at full size, and the fuzzer explores the rest hundreds of
 * times faster. The issue-19 seeds (draining_heavier_than_active*) carry
 * 15: they stay full-size regression inputs. */
static uint32_t table_rows(uint8_t knob)
{
    unsigned size = knob >> 4;
    if (size == 15)
        return DIRECTOR_TABLE_ROWS;
    return DIRECTOR_TABLE_MIN_ROWS << (size % 3);
}

static void check(const struct director_table *t, uint32_t rows)
{
    if (t->checksum != director_table_checksum(t) || t->row_count != rows)
        abort();
    if (t->work > (uint64_t)WORK_PER_ROW_BOUND * rows) {
        fprintf(stderr, "work %llu above the bound of %u per row of %u rows\n",
                (unsigned long long)t->work, WORK_PER_ROW_BOUND, rows);
        abort();
    }
    for (uint32_t r = 0; r < rows; r++) {
        const struct director_table_row *row = &t->rows[r];
        if (t->tier == DIRECTOR_TIER_EMPTY) {
            if (row->primary != DIRECTOR_TABLE_NONE || row->secondary != DIRECTOR_TABLE_NONE)
                abort();
            continue;
        }
        if (row->primary >= t->proxy_count || !t->proxies[row->primary].primary_eligible ||
            row->secondary == row->primary)
            abort();
        if (row->secondary != DIRECTOR_TABLE_NONE &&
            (row->secondary >= t->proxy_count ||
             t->proxies[row->secondary].state == DIRECTOR_PROXY_INACTIVE))
            abort();
        if (t->tier <= DIRECTOR_TIER_HEALTHY_STANDBY &&
            (!t->proxies[row->primary].healthy ||
             (row->secondary != DIRECTOR_TABLE_NONE && !t->proxies[row->secondary].healthy)))
            abort();
    }
    for (uint32_t p = 0; p < t->proxy_count; p++)
        if (t->proxies[p].primary_rows > t->proxies[p].capacity)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct director_proxy_input in[MAX_FLEET], rev[MAX_FLEET];
    char ids[MAX_FLEET][10];
    /* One drawing thread: helper threads bumping the same coverage
     * counters as the building one doubled the CPU per input (0.6 -> 1.2
     * s). That the thread count changes nothing is checked by the unit
     * test test_same_table_for_every_thread_count. */
    struct director_table_config cfg = {.threads = 1};
    size_t at = 0, n = 0;

    if (size < 3)
        return 0;
    cfg.load_permille = data[0] * 20u; /* 0 (default) .. 5100 */
    cfg.draw_per_row = data[1] % 16;   /* small depths force redraws */
    cfg.rows = table_rows(data[1]);
    cfg.seed_len = data[2] % 17;
    at = 3;
    if (size - at < cfg.seed_len)
        return 0;
    cfg.seed = data + at;
    at += cfg.seed_len;
    while (n < MAX_FLEET && at < size) {
        size_t len = data[at++] % 10;
        if (size - at < len + 4)
            break;
        memcpy(ids[n], data + at, len);
        ids[n][len] = 0; /* an embedded NUL just shortens the id */
        at += len;
        in[n] = (struct director_proxy_input){
            .id = ids[n],
            .address = addresses[data[at] % (sizeof(addresses) / sizeof(addresses[0]))],
            .state = (enum director_proxy_state)(data[at + 1] % 5), /* 4 is invalid */
            .healthy = data[at + 2] & 1,
            .weight = data[at + 3],
        };
        at += 4;
        n++;
    }

    struct director_table *t = NULL, *u = NULL;
    char err[256];
    int rc = director_table_build(&cfg, in, n, &t, err, sizeof(err));
    if (rc == -EINVAL) {
        if (t || !err[0])
            abort();
        return 0;
    }
    if ((rc != 0 && rc != -ENOENT) || !t)
        abort();
    check(t, cfg.rows);

    /* reversed input: the same bytes and work */
    for (size_t i = 0; i < n; i++)
        rev[i] = in[n - 1 - i];
    if (director_table_build(&cfg, rev, n, &u, err, sizeof(err)) != rc || !u)
        abort();
    if (u->checksum != t->checksum || u->work != t->work ||
        memcmp(u->rows, t->rows, cfg.rows * sizeof(*t->rows)) != 0)
        abort();
    director_table_free(u);
    director_table_free(t);
    return 0;
}
