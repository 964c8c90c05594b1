/* SPDX-License-Identifier: Apache-2.0 */
/*
 * director_build: the one way a forwarding table is made for the XDP
 * director. Both drover-director's standalone config and the watcher's
 * director side build through here, so the same proxies under the same
 * hash key give the byte-identical table whichever path fed the maps.
 *
 *   director_table (rendezvous + bounded load, GLB states, health)
 *     seeded with the 16 bytes of the generation's SipHash key
 *   -> director_publish writes it in map layout: proxies in the table's
 *      canonical order (sorted by id), rows as indices into them.
 *
 * Owns nothing beyond the table it returns (director_table_free).
 */
#ifndef DROVER_DIRECTOR_BUILD_H
#define DROVER_DIRECTOR_BUILD_H

#include <stddef.h>
#include <stdint.h>

#include "director_table.h"
#include "drover_maps.h"

struct director_config;

/* The table seed for a hash key: its 16 bytes as written in hex. */
void director_build_seed(const __u64 key[2], uint8_t seed[16]);

/* director_table_build() with the seed of key; same returns. */
int director_build_table(const __u64 key[2], const struct director_proxy_input *in, size_t n,
                         struct director_table **out, char *err, size_t errlen);
/* The same with director_table_config.rows = rows (0 = DIRECTOR_TABLE_ROWS,
 * the only size publish takes; smaller ones are for tests and fuzzing). */
int director_build_table_rows(const __u64 key[2], const struct director_proxy_input *in, size_t n,
                              uint32_t rows, struct director_table **out, char *err, size_t errlen);

/* The table of a standalone config: every proxy healthy, id = its "name"
 * (default: the address text). On success *out owns the table
 * (director_table_free). 0, -EINVAL (err), -ENOMEM. An empty proxy set
 * gives an all-empty table (0). The map layout of a table is
 * director_publish's business. */
int director_build_from_config(const struct director_config *cfg, struct director_table **out,
                               char *err, size_t errlen);

#endif
