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
#include <arpa/inet.h>

#include "director_config.h"

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
    return director_build_table_rows(key, in, n, 0, out, err, errlen);
}

int director_build_table_rows(const __u64 key[2], const struct director_proxy_input *in, size_t n,
                              uint32_t rows, struct director_table **out, char *err, size_t errlen)
{
    uint8_t seed[16];

    director_build_seed(key, seed);
    struct director_table_config cfg = {.seed = seed, .seed_len = sizeof(seed), .rows = rows};
    return director_table_build(&cfg, in, n, out, err, errlen);
}

int director_build_from_config(const struct director_config *cfg, struct director_table **out,
                               char *err, size_t errlen)
{
    struct director_proxy_input *in = calloc(cfg->n_proxies + 1, sizeof(*in));
    char(*addr)[INET6_ADDRSTRLEN] = calloc(cfg->n_proxies + 1, sizeof(*addr));
    int rc = -ENOMEM;

    *out = NULL;
    if (!in || !addr)
        goto out;
    for (size_t i = 0; i < cfg->n_proxies; i++) {
        const struct director_config_proxy *p = &cfg->proxies[i];
        director_format_addr(p->family, p->addr, addr[i], sizeof(addr[i]));
        in[i].address = addr[i];
        in[i].id = cfg->proxy_names && cfg->proxy_names[i] ? cfg->proxy_names[i] : addr[i];
        in[i].state = (enum director_proxy_state)p->state;
        in[i].healthy = true;
        in[i].weight = cfg->proxy_weights ? cfg->proxy_weights[i] : 0;
    }
    rc = director_build_table(cfg->hash_key, in, cfg->n_proxies, out, err, errlen);
    if (rc == -ENOENT)
        rc = 0; /* nothing live: an all-empty table is still a table */
    if (rc < 0) {
        director_table_free(*out);
        *out = NULL;
    }
out:
    free(in);
    free(addr);
    return rc;
}
