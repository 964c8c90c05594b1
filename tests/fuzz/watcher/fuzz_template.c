/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target for the mustache parser and renderer. The input is split at
 * NUL bytes: template "main", then partial "p", then JSON data (a fixed
 * object when absent or invalid). Limits are lowered so that runaway
 * templates end quickly; any crash, leak or sanitizer report is a bug.
 * Invariant checked: with the default (word) kind, rendered output contains
 * a newline only where the templates themselves have one.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "template.h"

static const char fallback[] =
    "{\"a\":\"x\",\"n\":3,\"b\":true,\"l\":[1,\"two\",{\"a\":\"in\"}],\"o\":{\"a\":{\"b\":\"c\"}},"
    "\"bad\":\"line\\nbreak\",\"z\":null,\"f\":1.5}";

static size_t count_newlines(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += s[i] == '\n';
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    const char *chunk[3] = {"", "", NULL};
    size_t len[3] = {0, 0, 0};
    size_t start = 0, k = 0;

    for (size_t i = 0; i <= size && k < 3; i++) {
        if (i == size || in[i] == '\0') {
            chunk[k] = in + start;
            len[k] = i - start;
            k++;
            start = i + 1;
        }
    }

    struct template_options opts;
    template_options_init(&opts);
    opts.max_output = 1 << 20;
    opts.max_steps = 200000;
    opts.max_partial_depth = 8;
    opts.missing_partial_is_empty = size & 1;

    json_t *json = NULL;
    if (chunk[2])
        json = json_loadb(chunk[2], len[2], JSON_DECODE_ANY, NULL);
    if (!json)
        json = json_loads(fallback, 0, NULL);

    struct template_set *set = NULL;
    struct template_error err;
    struct template_buf out = {0};
    char msg[512];
    if (template_set_new(&opts, &set) < 0)
        goto out;
    if (template_set_add(set, "main", chunk[0], len[0], &err) < 0) {
        template_error_format(&err, msg, sizeof(msg));
        goto out;
    }
    if (template_set_add(set, "p", chunk[1], len[1], &err) < 0)
        template_error_format(&err, msg, sizeof(msg));
    (void)template_set_check(set, &err);
    if (template_render(set, "main", json, &out, &err) == 0) {
        /* Every rendered newline comes from template text: at most one per
         * template newline per visit; a cheap sanity bound is that output
         * without any template newline has none. */
        if (count_newlines(chunk[0], len[0]) == 0 && count_newlines(chunk[1], len[1]) == 0 &&
            count_newlines(out.data, out.len) != 0)
            abort();
    } else {
        template_error_format(&err, msg, sizeof(msg));
    }
out:
    template_buf_free(&out);
    template_set_free(set);
    json_decref(json);
    return 0;
}
