/* SPDX-License-Identifier: Apache-2.0 */
#include "director_rendezvous.h"

#include <errno.h>
#include <string.h>

#include "drover_hash.h"

static __u64 score(const __u64 key[2], __u32 row, const struct drover_proxy *p)
{
    __u64 w[3] = {
        (__u64)row | ((__u64)p->family << 32),
        (__u64)p->addr[0] | ((__u64)p->addr[1] << 32),
        (__u64)p->addr[2] | ((__u64)p->addr[3] << 32),
    };

    return drover_siphash13(key, w, 3, 0, 24);
}

static int usable(const struct drover_proxy *p)
{
    return p->family != DROVER_AF_NONE && p->state != DROVER_PROXY_INACTIVE;
}

int director_rendezvous_build(const __u64 key[2], const struct drover_proxy *proxies, size_t n,
                              struct drover_row *rows)
{
    if (n > DROVER_MAX_PROXIES)
        return -EINVAL;
    for (__u32 r = 0; r < DROVER_TABLE_ROWS; r++) {
        /* best: best usable overall; prim: best that may be primary. */
        int best = -1, second = -1, prim = -1;
        __u64 s_best = 0, s_second = 0, s_prim = 0;

        for (size_t i = 0; i < n; i++) {
            if (!usable(&proxies[i]))
                continue;
            __u64 s = score(key, r, &proxies[i]);
            if (best < 0 || s > s_best) {
                second = best;
                s_second = s_best;
                best = (int)i;
                s_best = s;
            } else if (second < 0 || s > s_second) {
                second = (int)i;
                s_second = s;
            }
            if (proxies[i].state != DROVER_PROXY_DRAINING && (prim < 0 || s > s_prim)) {
                prim = (int)i;
                s_prim = s;
            }
        }
        if (best < 0) {
            rows[r].primary = rows[r].secondary = DROVER_ROW_NONE;
            rows[r].reserved = 0;
            continue;
        }
        if (prim < 0)
            prim = best; /* only draining proxies left: better than nothing */
        /* Secondary: the best-ranked other proxy, which is the draining
         * top-ranked one when it lost the primary slot. */
        int sec = prim == best ? second : best;
        rows[r].primary = (__u16)prim;
        rows[r].secondary = (__u16)(sec < 0 ? prim : sec);
        rows[r].reserved = 0;
    }
    return 0;
}
