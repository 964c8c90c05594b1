/* SPDX-License-Identifier: Apache-2.0 */
/*
 * director_snapshot: the director side's persisted state
 * (proto/director_snapshot.proto): the inputs of the last applied table,
 * the health it was built with, rows per proxy, checksums and the guard's
 * state. Written atomically by director_apply, read back on restart (to
 * re-apply without Consul) and by `drover-watcher director status`.
 *
 * Owns: everything inside a struct director_saved (director_saved_clear).
 */
#ifndef DROVER_WATCHER_DIRECTOR_SNAPSHOT_H
#define DROVER_WATCHER_DIRECTOR_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "director_feed.h"

struct director_saved_proxy {
    bool healthy;
    uint32_t primary_rows, secondary_rows;
};

struct director_saved {
    struct director_inputs *inputs;       /* applied inputs */
    struct director_saved_proxy *proxies; /* per inputs->proxies[i] */
    char *kv_root, *cluster, *dev;
    uint64_t table_checksum, generation_checksum;
    uint32_t generation;
    int64_t saved_unix, applied_unix, last_change_unix;
    bool held;
    double held_moved_share;
    int64_t held_since_unix;
    char *last_error; /* may be NULL */
    char *tier;       /* may be NULL */
    double balance;
};

/* 0 or negative errno; err names the file and what failed. */
int director_snapshot_save(const struct director_saved *s, const char *path, char *err,
                           size_t errlen);
/* -ENOENT when there is no file; -EBADMSG for a corrupt or foreign one. */
int director_snapshot_load(const char *path, struct director_saved *out, char *err, size_t errlen);
void director_saved_clear(struct director_saved *s);

#endif
