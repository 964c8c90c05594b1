/* SPDX-License-Identifier: Apache-2.0 */
/*
 * director_build: director_table -> the director's map layout. See
 * director_build.h.
 */
#include "director_build.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "director_config.h"

_Static_assert(DIRECTOR_TABLE_ROWS == DROVER_TABLE_ROWS, "table sizes differ");
_Static_assert(DIRECTOR_TABLE_MAX_PROXIES == DROVER_MAX_PROXIES, "proxy limits differ");
_Static_assert(DIRECTOR_TABLE_NONE == DROVER_ROW_NONE, "empty row markers differ");
_Static_assert((int)DIRECTOR_PROXY_FILLING == (int)DROVER_PROXY_FILLING &&
                   (int)DIRECTOR_PROXY_DRAINING == (int)DROVER_PROXY_DRAINING &&
                   (int)DIRECTOR_PROXY_ACTIVE == (int)DROVER_PROXY_ACTIVE,
               "proxy states differ");

void director_build_seed(const __u64 key[2], uint8_t seed[16])
{
    for (int i = 0; i < 8; i++) {
        seed[i] = (uint8_t)(key[0] >> (8 * i));
        seed[8 + i] = (uint8_t)(key[1] >> (8 * i));
    }
}

int director_build_table(const __u64 key[2], const struct director_proxy_input *in, size_t n,
                         struct director_table **out, char *err, size_t errlen)
{
    uint8_t seed[16];

    director_build_seed(key, seed);
    struct director_table_config cfg = {.seed = seed, .seed_len = sizeof(seed)};
    return director_table_build(&cfg, in, n, out, err, errlen);
}

void director_build_to_maps(const struct director_table *t, struct drover_proxy *proxies,
                            struct drover_row *rows)
{
    for (uint32_t i = 0; i < t->proxy_count; i++) {
        const struct director_table_proxy *p = &t->proxies[i];
        memset(&proxies[i], 0, sizeof(proxies[i]));
        proxies[i].family = p->family == AF_INET6 ? DROVER_AF_INET6 : DROVER_AF_INET;
        memcpy(proxies[i].addr, p->addr, p->family == AF_INET6 ? 16 : 4);
        proxies[i].state = (__u8)p->state;
    }
    for (uint32_t r = 0; r < DROVER_TABLE_ROWS; r++) {
        rows[r].primary = t->rows[r].primary;
        rows[r].secondary = t->rows[r].secondary;
        rows[r].reserved = 0;
    }
}

int director_build_from_config(const struct director_config *cfg, struct drover_proxy *proxies,
                               struct drover_row *rows, __u32 *proxy_count,
                               struct director_table **out, char *err, size_t errlen)
{
    struct director_proxy_input *in = calloc(cfg->n_proxies + 1, sizeof(*in));
    char(*addr)[INET6_ADDRSTRLEN] = calloc(cfg->n_proxies + 1, sizeof(*addr));
    struct director_table *t = NULL;
    int rc = -ENOMEM;

    if (out)
        *out = NULL;
    if (!in || !addr)
        goto out;
    for (size_t i = 0; i < cfg->n_proxies; i++) {
        const struct drover_proxy *p = &cfg->proxies[i];
        director_format_addr(p->family, p->addr, addr[i], sizeof(addr[i]));
        in[i].address = addr[i];
        in[i].id = cfg->proxy_names && cfg->proxy_names[i] ? cfg->proxy_names[i] : addr[i];
        in[i].state = (enum director_proxy_state)p->state;
        in[i].healthy = true;
        in[i].weight = cfg->proxy_weights ? cfg->proxy_weights[i] : 0;
    }
    rc = director_build_table(cfg->hash_key, in, cfg->n_proxies, &t, err, errlen);
    if (rc == -ENOENT)
        rc = 0; /* nothing live: an all-empty table is still a table */
    if (rc < 0)
        goto out;
    director_build_to_maps(t, proxies, rows);
    *proxy_count = t->proxy_count;
    if (out) {
        *out = t;
        t = NULL;
    }
out:
    director_table_free(t);
    free(in);
    free(addr);
    return rc;
}

int director_build_proxies(const __u64 key[2], struct drover_proxy *proxies, size_t n,
                           struct drover_row *rows)
{
    struct director_config cfg = {.proxies = proxies, .n_proxies = n};
    struct drover_proxy *out = calloc(n + 1, sizeof(*out));
    char err[256];
    __u32 count = 0;
    int rc;

    if (!out)
        return -ENOMEM;
    cfg.hash_key[0] = key[0];
    cfg.hash_key[1] = key[1];
    rc = director_build_from_config(&cfg, out, rows, &count, NULL, err, sizeof(err));
    if (rc == 0)
        memcpy(proxies, out, n * sizeof(*proxies));
    free(out);
    return rc;
}
