/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target for the director side's KV parsing (director_feed). Input:
 * lines of "<key relative to director/<cluster>/>\t<value>" (a tab-free
 * key, the rest of the line is the value; a repeated key is dropped, as
 * Consul never returns one twice). Properties checked:
 *  - parsing never crashes or leaks, whatever keys and values;
 *  - what it accepts builds a table (or a clean -ENODATA/-ENOENT): the
 *    feed's validation is at least as strict as the table builder's, so
 *    one bad entry can never fail the whole table;
 *  - the inputs survive a duplicate and a reparse with themselves as the
 *    previous inputs unchanged (same hash).
 * The table is built at its production size for one input in 64 (by
 * length, see table_rows()) and else with DIRECTOR_TABLE_MIN_ROWS rows:
 * what the builder rejects does not depend on the size, and a full build
 * costs about 0.2 s of CPU here, a small one about a millisecond (with
 * one in 16, the full builds still took most of the CPU). The seed
 * full_production_rows is one that builds at full size.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "director_apply.h"
#include "director_feed.h"
#include "log.h"

#define PFX "drover/v1/director/fz/"

static uint32_t table_rows(size_t input_size)
{
    return input_size % 64 == 63 ? DIRECTOR_TABLE_ROWS : DIRECTOR_TABLE_MIN_ROWS;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct consul_kv items[16];
    struct consul_kv_list list = {.items = items, .n = 0};
    const char *p = (const char *)data, *end = p + size;

    log_set_level(LOGL_ERROR + 1);
    while (p < end && list.n < 16) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = nl ? nl : end;
        const char *tab = memchr(p, '\t', (size_t)(line_end - p));
        /* A recursive KV read never returns a key twice: model that. */
        bool dup = false;
        for (size_t i = 0; tab && i < list.n; i++) {
            size_t kl = (size_t)(tab - p);
            dup = dup || (strlen(items[i].key) == sizeof(PFX) - 1 + kl &&
                          memcmp(items[i].key + sizeof(PFX) - 1, p, kl) == 0);
        }
        if (tab && !dup) {
            struct consul_kv *e = &items[list.n++];
            memset(e, 0, sizeof(*e));
            size_t kl = (size_t)(tab - p), vl = (size_t)(line_end - tab - 1);
            e->key = malloc(sizeof(PFX) + kl);
            memcpy(e->key, PFX, sizeof(PFX) - 1);
            memcpy(e->key + sizeof(PFX) - 1, p, kl);
            e->key[sizeof(PFX) - 1 + kl] = '\0';
            e->value = malloc(vl + 1);
            memcpy(e->value, tab + 1, vl);
            e->value[vl] = '\0';
            e->value_len = vl;
        }
        p = line_end + 1;
    }
    struct director_inputs *in = NULL, *again = NULL;
    if (director_inputs_parse(&list, PFX, NULL, &in, NULL) == 0) {
        struct director_table *t = NULL;
        char err[256];
        int rc = director_apply_build_rows(in, NULL, NULL, table_rows(size), &t, err, sizeof(err));
        if (rc < 0 && rc != -ENODATA && rc != -ENOENT && rc != -ENOMEM) {
            fprintf(stderr, "accepted inputs do not build: %d %s\n", rc, err);
            abort();
        }
        director_table_free(t);
        struct director_inputs *d = director_inputs_dup(in);
        if (d && d->hash != in->hash)
            abort();
        director_inputs_free(d);
        if (director_inputs_parse(&list, PFX, in, &again, NULL) == 0 && again->hash != in->hash)
            abort();
        director_inputs_free(again);
        director_inputs_free(in);
    }
    for (size_t i = 0; i < list.n; i++) {
        free(items[i].key);
        free(items[i].value);
    }
    return 0;
}
