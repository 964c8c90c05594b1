/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target for the front door's outside input: BIRD's control-socket
 * replies (frontdoor_bird_parse) and the KV drain record
 * (frontdoor_host_record_parse); the first byte picks which. A reply is
 * complete only with a consumed length inside the input, and its text never
 * holds a control byte (it goes into one log line).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frontdoor.h"
#include "frontdoor_bird.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const char *in = (const char *)data + 1;
    size_t len = size - 1;

    if (data[0] & 1) {
        bool drained;
        char err[256];
        (void)frontdoor_host_record_parse(in, len, &drained, err, sizeof(err));
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
