/* SPDX-License-Identifier: Apache-2.0 */
/*
 * template: the mustache engine that turns a JSON view of the watcher's
 * snapshot into HAProxy configuration. Templates are parsed once into a
 * compiled form held by a template set (which also resolves partials by
 * name) and rendered many times against jansson data.
 *
 * Supported: variables {{a.b.c}} and {{.}}, {{{x}}} and {{&x}}, sections,
 * inverted sections, comments, partials (standalone indentation applied to
 * every line), set delimiter, and the spec's standalone-line and
 * whitespace rules. Not supported: lambdas. There is NO HTML escaping:
 * {{x}}, {{{x}}} and {{&x}} write the same thing, because the output is
 * HAProxy configuration, not HTML.
 *
 * Instead every interpolation goes through a value kind of haproxy_value.h:
 * {{server.addr | addr}} selects one (drover's extension of the syntax);
 * without one, the set's default kind applies ("word": a single word with
 * no control character, space, quote, '#' or '$'). A refused value fails
 * the whole render; the error names the template, line, column, key and
 * reason. Nothing is global; nothing aborts; partial nesting, section
 * nesting, output size and work are bounded.
 */
#ifndef DROVER_TEMPLATE_H
#define DROVER_TEMPLATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "haproxy_value.h"

/* Growable output buffer; data is NUL-terminated when non-NULL. Zero it
 * before first use; free data with template_buf_free. */
struct template_buf {
    char *data;
    size_t len;
    size_t cap;
};

void template_buf_free(struct template_buf *buf);

/* Filled by every failing call. line/column are 1-based and point at the
 * tag (or the place) that failed; 0 when the error has no position. */
struct template_error {
    int code; /* the negative errno the call returned */
    char template_name[96];
    unsigned line;
    unsigned column;
    char key[128];     /* the variable/section/partial name, or "" */
    char message[256]; /* what is wrong */
};

/* One line: "template http line 12 column 5: key 'server.addr': value
 * refused by filter addr: is not an IPv4 or IPv6 address". Returns buf. */
const char *template_error_format(const struct template_error *err, char *buf, size_t size);

struct template_options {
    /* Kind applied to {{x}} without "| kind". Default HAPROXY_VALUE_WORD. */
    enum haproxy_value_kind default_kind;
    /* A variable that resolves to nothing (missing key or null) is an error
     * instead of the spec's empty string. Sections are not affected. */
    bool strict_variables;
    /* The spec renders an unknown partial as nothing; by default drover
     * refuses it in template_set_check and at render time. */
    bool missing_partial_is_empty;
    unsigned max_partial_depth; /* default 32 */
    size_t max_output;          /* bytes, default 256 MiB */
    uint64_t max_steps;         /* nodes visited per render, default 1e9 */
};

/* Defaults as documented on each field. */
void template_options_init(struct template_options *opts);

struct template_set;

/* New empty set; opts NULL means defaults. The options are copied.
 * Returns 0 or -ENOMEM/-EINVAL. Free with template_set_free. */
int template_set_new(const struct template_options *opts, struct template_set **out);
void template_set_free(struct template_set *set);

/* Parse `text` (len bytes) and add it as template `name` (also the name
 * partials use). The text is copied. Returns 0; -EINVAL for a syntax
 * error or a duplicate name, -ENOMEM; err (may be NULL) says where. */
int template_set_add(struct template_set *set, const char *name, const char *text, size_t len,
                     struct template_error *err);

/* Add every regular file DIR/<n>.mustache and DIR/partials/<n>.mustache
 * as template <n>. Names must be unique across both folders. Returns 0 or
 * a negative errno (-ENOENT for a missing DIR, parse errors as above). */
int template_set_load_dir(struct template_set *set, const char *dir, struct template_error *err);

/* Whether template `name` is in the set. */
bool template_set_has(const struct template_set *set, const char *name);

/* Verify that every partial any template names exists (unless the options
 * make missing partials empty). Call after adding all templates. Returns
 * 0 or -EINVAL naming the template, line and column of the first
 * unknown partial. */
int template_set_check(const struct template_set *set, struct template_error *err);

/* Render template `name` against `data` (any JSON value; the bottom of
 * the context stack), appending to out. Returns 0; -ENOENT for an unknown
 * template; -EINVAL for a refused or non-scalar value, an unknown partial,
 * partial recursion deeper than max_partial_depth, or output/work above
 * the limits; -ENOMEM. On failure out->len is restored to its value at the
 * call (the partial output is dropped) and err explains. */
int template_render(const struct template_set *set, const char *name, const json_t *data,
                    struct template_buf *out, struct template_error *err);

#endif
