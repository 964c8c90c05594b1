/* SPDX-License-Identifier: Apache-2.0 */
/*
 * template_internal: the compiled form of a template shared by the parser
 * (template.c: sets, loading, parsing, checks) and the renderer
 * (template_render.c). Nothing outside those two files includes it.
 */
#ifndef DROVER_WATCHER_TEMPLATE_INTERNAL_H
#define DROVER_WATCHER_TEMPLATE_INTERNAL_H

#include <stdint.h>

#include "template.h"

#define TEMPLATE_MAX_SOURCE   (16u << 20) /* bytes per template */
#define TEMPLATE_MAX_SECTIONS 64          /* nesting inside one template */
#define TEMPLATE_MAX_DELIM    16
#define TEMPLATE_NAME_MAX     95
#define DEFAULT_PARTIAL_DEPTH 32
#define DEFAULT_MAX_OUTPUT    ((size_t)256 << 20)
#define DEFAULT_MAX_STEPS     1000000000ull
#define VALUE_EXCERPT         40

enum node_type {
    NODE_TEXT,
    NODE_LINE_START,
    NODE_VAR,
    NODE_SECTION,
    NODE_INVERTED,
    NODE_PARTIAL,
};

struct node {
    uint8_t type;
    uint8_t kind;              /* NODE_VAR: enum haproxy_value_kind */
    uint8_t kind_explicit;     /* NODE_VAR: "| kind" was given */
    uint8_t standalone;        /* NODE_PARTIAL: indentation applies */
    uint32_t off, len;         /* TEXT: the text; others: the name */
    uint32_t ind_off, ind_len; /* PARTIAL: whitespace before a standalone tag */
    uint32_t end;              /* SECTION/INVERTED: index after the last child */
    uint32_t line, col;        /* of the tag */
};

struct template
{
    char *name;
    char *src;
    size_t src_len;
    struct node *nodes;
    size_t n_nodes;
    size_t cap_nodes;
};

struct template_set {
    struct template_options opts;
    struct template **tpls;
    size_t n;
    size_t cap;
};

/* Owned by the set; NULL when absent. */
const struct template *template_set_find(const struct template_set *set, const char *name,
                                         size_t len);
/* Grow buf for extra more bytes (and a NUL); 0 or -ENOMEM. */
int template_buf_reserve(struct template_buf *buf, size_t extra);
/* Fill err (when not NULL) and return code. */
__attribute__((format(printf, 8, 9))) int template_set_error(struct template_error *err, int code,
                                                             const char *tname, unsigned line,
                                                             unsigned col, const char *key,
                                                             size_t key_len, const char *fmt, ...);

#endif
