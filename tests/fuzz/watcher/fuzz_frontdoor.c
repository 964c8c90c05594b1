/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target for the front door's outside input: BIRD's control-socket
 * replies (frontdoor_bird_parse) and the KV drain record
 * and status records (kv_frontdoor); the first byte picks which. A reply is
 * complete only with a consumed length inside the input, and its text never
 * holds a control byte (it goes into one log line).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kv_frontdoor.h"
#include "frontdoor_bird.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const char *in = (const char *)data + 1;
    size_t len = size - 1;

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
