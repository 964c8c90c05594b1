/* SPDX-License-Identifier: Apache-2.0 */
/*
 * director_rendezvous: builds the 65,536-row forwarding table from a proxy list
 * by rendezvous hashing (highest keyed score wins), so adding, removing or
 * changing the state of one proxy moves only the rows that proxy ranks on.
 * Scores depend on the proxy's address, not its position in the list.
 *
 * States: active and filling proxies can be primary; a draining proxy is
 * never primary but stays secondary for the rows it ranked first on, so its
 * open connections survive through second chance while new ones go
 * elsewhere; inactive proxies get no rows. A row with no usable proxy has
 * primary = secondary = DROVER_ROW_NONE (the director drops and counts).
 *
 * This is the simple builder drover-director uses for its standalone JSON
 * config; the watcher has its own weighted, health-aware builder
 * (watcher/director_table.h) and publishes through director_maps.h.
 */
#ifndef DROVER_DIRECTOR_RENDEZVOUS_H
#define DROVER_DIRECTOR_RENDEZVOUS_H

#include <stddef.h>

#include "drover_maps.h"

/* Fill rows[DROVER_TABLE_ROWS]. key is the rendezvous key (the generation's
 * hash key). Returns 0 or -EINVAL (n > DROVER_MAX_PROXIES). */
int director_rendezvous_build(const __u64 key[2], const struct drover_proxy *proxies, size_t n,
                              struct drover_row *rows);

/* FNV-1a 64 checksum of a generation as the director sees it: config,
 * the first proxy_count proxies and all rows. The same function runs over
 * what user space meant to write and what it reads back from the maps. */
__u64 director_generation_checksum(const struct drover_gen_config *cfg,
                                   const struct drover_proxy *proxies,
                                   const struct drover_row *rows);

#endif
