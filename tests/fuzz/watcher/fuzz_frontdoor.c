/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target for the front door's outside input: BIRD's control-socket
 * replies (frontdoor_bird_parse) and the KV drain record
 * and status records (kv_frontdoor), and an anycast host's HAProxy config +
 * `show stat` (frontdoor_anycast); the first byte picks which. A reply is
 * complete only with a consumed length inside the input, and its text never
 * holds a control byte (it goes into one log line).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frontdoor_anycast.h"
#include "kv_frontdoor.h"
#include "frontdoor_bird.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const char *in = (const char *)data + 1;
    size_t len = size - 1;

    if (data[0] & 2) {
        /* a service's config and its HAProxy's `show stat`, split at the
         * first NUL */
        const char *nul = memchr(in, '\0', len);
        size_t clen = nul ? (size_t)(nul - in) : len;
        struct frontdoor_anycast *a = NULL;
        const struct frontdoor_verdict *v;
        size_t n;
        if (frontdoor_anycast_new(&a) < 0)
            return 0;
        if (frontdoor_anycast_add_service(a, "s", in, clen, nul ? nul + 1 : NULL,
                                          nul ? len - clen - 1 : 0) == 0 &&
            frontdoor_anycast_verdicts(a, &v, &n) == 0)
            for (size_t i = 0; i < n; i++)
                if (!v[i].address || (!v[i].ok && !v[i].reason))
                    abort();
        frontdoor_anycast_free(a);
        return 0;
    }
    if (data[0] & 1) {
        struct kv_frontdoor_host h;
        struct kv_frontdoor_status st;
        char err[256];
        if (kv_frontdoor_host_decode(in, len, &h, err, sizeof(err)) == 0)
            kv_frontdoor_host_clear(&h);
        if (kv_frontdoor_status_decode(in, len, &st, err, sizeof(err)) == 0) {
            /* what decodes encodes, and decodes again to the same */
            char *again = kv_frontdoor_status_encode(&st);
            struct kv_frontdoor_status st2;
            if (again &&
                kv_frontdoor_status_decode(again, strlen(again), &st2, err, sizeof(err)) < 0)
                abort();
            if (again)
                kv_frontdoor_status_clear(&st2);
            free(again);
            kv_frontdoor_status_clear(&st);
        }
        return 0;
    }
    struct frontdoor_bird_reply r;
    size_t used = 0;
    if (frontdoor_bird_parse(in, len, &r, &used) == 0 && r.complete) {
        if (used == 0 || used > len)
            abort();
        for (const char *p = r.text; *p; p++)
            if ((unsigned char)*p < 0x20)
                abort();
    }
    return 0;
}
