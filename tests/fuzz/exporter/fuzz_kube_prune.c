/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_kube_prune: the list-body pruner on arbitrary bytes. It must never
 * read or write outside the text; on text jansson accepts as a JSON object
 * it must succeed and give text that parses to exactly what
 * kube_list_prune_tree() makes of the whole text; when it fails, the text
 * must be unchanged.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "kube_prune.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    size_t len = size;
    int rc = kube_list_prune(buf, &len);
    if (rc == -ENOMEM) {
        free(buf);
        return 0;
    }
    if (rc < 0 && (len != size || memcmp(buf, data, size) != 0))
        abort(); /* a failed scan changed the text */
    if (len > size)
        abort();
    /* keys with a backslash stop the scan on purpose (kube_prune.h); a
     * NUL byte is in no JSON text, but jansson's reader passes over one
     * between tokens ({"a":1<NUL>} loads), so it is no oracle there: the
     * scanner refusing such a text is right (the parser then judges it) */
    json_t *want = json_loadb((const char *)data, size, 0, NULL);
    if (json_is_object(want) && !memchr(data, '\\', size) && !memchr(data, '\0', size) && rc != 0)
        abort(); /* valid JSON it could have followed */
    if (want && rc == 0) {
        kube_list_prune_tree(want);
        json_t *got = json_loadb(buf, len, 0, NULL);
        if (!got || !json_equal(got, want))
            abort();
        json_decref(got);
    }
    json_decref(want);
    free(buf);
    return 0;
}
