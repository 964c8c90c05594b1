/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz the duration and size parsers; a parsed duration must survive a
 * format/parse round trip. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    int64_t ms, again;
    uint64_t bytes;
    char buf[64];

    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    if (config_parse_duration_ms(text, &ms) == 0) {
        if (ms < 0)
            abort();
        config_format_duration(ms, buf, sizeof(buf));
        if (config_parse_duration_ms(buf, &again) != 0 || again != ms)
            abort();
    }
    (void)config_parse_size(text, &bytes);
    free(text);
    return 0;
}
