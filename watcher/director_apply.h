/* SPDX-License-Identifier: Apache-2.0 */
/*
 * director_apply: turns director inputs (KV) and proxy health into the
 * forwarding table the XDP director uses, and gets it into the kernel:
 *
 *   build (director_table) -> moved-share guard -> publish the inactive
 *   generation of the maps pinned by drover-director and flip it
 *   (libxdplb, atomic) -> read the generation back and compare checksums
 *   -> persist the applied inputs (director_snapshot).
 *
 * Guard: when the KV inputs changed since the last apply, the table built
 * from the new inputs is compared with the table the old inputs give under
 * the same health; if more than max_moved_share of the rows would get a
 * new primary and director/<cluster>/force is absent or expired, the KV
 * change is held back (reported, counted) and the old inputs stay in force
 * - health changes still go through, so a held change never pins traffic
 * on a dead proxy. Health-only changes are never held.
 *
 * The generation's tunnel settings (outer source addresses, MACs, egress
 * device) belong to drover-director's own config and are taken from the
 * active generation; the watcher sets hash key, hash fields, GUE port,
 * proxies, table and VIP set.
 *
 * Owns: the last applied inputs and table.
 */
#ifndef DROVER_WATCHER_DIRECTOR_APPLY_H
#define DROVER_WATCHER_DIRECTOR_APPLY_H

#include <stdbool.h>
#include <stdint.h>

#include "director_feed.h"
#include "director_table.h"

/* ---- guard (pure) ---- */

struct director_guard_result {
    uint32_t moved_rows; /* rows whose primary proxy differs */
    double moved_share;  /* moved_rows / rows */
    bool over;           /* moved_share > max_share */
    bool held;           /* over or shrunk, and not forced */
    /* the shrink guard (director_guard_shrink) */
    size_t base_proxies, cand_proxies, base_vips, cand_vips; /* VIPs: address:port pairs */
    bool shrunk; /* lost more of either than max_share, or all of either */
};

/* Compare baseline (what the old KV inputs give now; NULL = nothing to
 * compare with, never held) with candidate. */
void director_guard_check(const struct director_table *baseline,
                          const struct director_table *candidate, double max_share, bool forced,
                          struct director_guard_result *out);

/* The shrink guard, on top of director_guard_check's result: a candidate
 * with fewer proxies or VIP ports than the inputs in force, by more than
 * max_share of them, or with none of either when the inputs in force had
 * some, is held unless forced (a director/ tree emptied or restored key by
 * key must never publish 0 VIPs or 0 proxies). Sets the counts and
 * shrunk, and ORs into over/held. */
void director_guard_shrink(const struct director_inputs *base, const struct director_inputs *cand,
                           double max_share, bool forced, struct director_guard_result *out);

typedef bool (*director_health_lookup_fn)(void *arg, const char *host);

/* Build the table for in (hash key as seed) with health from lookup (NULL =
 * all healthy). -ENODATA when in has no valid config (no hash key); else
 * as director_table_build (-ENOENT still returns an all-empty table). */
int director_apply_build(const struct director_inputs *in, director_health_lookup_fn lookup,
                         void *arg, struct director_table **out, char *err, size_t errlen);
/* director_apply_build() of a table of `rows` rows (director_table_config.
 * rows; 0 = DIRECTOR_TABLE_ROWS, what directors publish): the fuzz target
 * checks on small tables what the feed accepts. */
int director_apply_build_rows(const struct director_inputs *in, director_health_lookup_fn lookup,
                              void *arg, uint32_t rows, struct director_table **out, char *err,
                              size_t errlen);

/* ---- applier ---- */

struct director_apply_opts {
    const char *pin_dir;                 /* <pin root>/<dev>: the maps drover-director pinned */
    const char *snapshot_path;           /* NULL: do not persist */
    const char *kv_root, *cluster, *dev; /* recorded in the snapshot */
    double default_max_moved_share;      /* when the KV config has none */
};

enum director_apply_outcome {
    DIRECTOR_APPLY_APPLIED = 0, /* a new generation is active and verified */
    DIRECTOR_APPLY_UNCHANGED,   /* the maps already hold this table (verified) */
    DIRECTOR_APPLY_ERROR,       /* nothing changed in the maps; retry later */
};

struct director_apply_stats {
    uint64_t applies;   /* generations published and verified */
    uint64_t unchanged; /* runs that found the maps already right */
    uint64_t held;      /* runs that held a KV change back */
    uint64_t errors;    /* failed runs */
    uint64_t verify_failures;
    uint64_t snapshot_errors; /* snapshot writes that failed */
    /* why the last snapshot write failed; "" once one succeeds. While set,
     * a restart could not re-apply what is in force: not ready. */
    char snapshot_error[512];
    bool held_now;
    double held_moved_share;
    int64_t held_since_unix;
    int64_t last_change_unix, applied_unix;
    uint32_t generation;
    uint64_t generation_checksum;
    char last_error[256];
};

struct director_apply;

int director_apply_new(const struct director_apply_opts *o, struct director_apply **out);
void director_apply_free(struct director_apply *a);

/* Make the maps forward by in (subject to the guard) and health. in is
 * borrowed. Returns 0 with *outcome, or a negative errno (the maps keep
 * the last good generation; the message is logged and kept in stats). */
int director_apply_run(struct director_apply *a, const struct director_inputs *in,
                       director_health_lookup_fn lookup, void *arg, int64_t now_unix,
                       enum director_apply_outcome *outcome);

/* Restart path: load the snapshot, seed the last applied inputs from it
 * and return a copy of them in *in (caller frees) with their health in
 * healthy[i] per proxy (malloc'd, caller frees). -ENOENT: no snapshot. */
int director_apply_load(struct director_apply *a, struct director_inputs **in, bool **healthy);

const struct director_table *director_apply_table(const struct director_apply *a);
const struct director_inputs *director_apply_inputs(const struct director_apply *a);
const struct director_apply_stats *director_apply_get_stats(const struct director_apply *a);

#endif
