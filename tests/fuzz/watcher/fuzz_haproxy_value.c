/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target for haproxy_value: the first byte picks a kind, the rest is
 * the value. Whatever the input, an accepted value must come out as text
 * that cannot break out of its place in a config line: no control byte
 * ever, and no space, quote, '#' or '$' outside the quoted kind.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "haproxy_value.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    enum haproxy_value_kind kind =
        (enum haproxy_value_kind)(data[0] % HAPROXY_VALUE_UNCHECKED); /* never UNCHECKED */
    const char *v = (const char *)data + 1;
    size_t len = size - 1;
    size_t cap = haproxy_value_format_size(len);
    char *out = malloc(cap);
    size_t n = 0;
    const char *why = NULL;

    if (!out)
        return 0;
    int rc = haproxy_value_format(kind, v, len, out, cap, &n, &why);
    int check = haproxy_value_check(kind, v, len, &why);
    if ((rc == 0) != (check == 0))
        abort();
    if (rc == 0) {
        if (n >= cap || out[n] != '\0')
            abort();
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)out[i];
            if (c < 0x20 || c == 0x7f)
                abort();
            if (kind != HAPROXY_VALUE_QUOTED && strchr(" \"'\\#$", c))
                abort();
        }
        if (kind == HAPROXY_VALUE_QUOTED && (n < 2 || out[0] != '\'' || out[n - 1] != '\''))
            abort();
    } else if (!why) {
        abort();
    }
    free(out);
    return 0;
}
