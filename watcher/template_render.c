/* SPDX-License-Identifier: Apache-2.0 */
/*
 * template_render: the mustache renderer over the compiled nodes of
 * template.c (see template.h for the contract and the limits: output size,
 * steps, partial depth; values checked by their haproxy_value kind).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "template_internal.h"

/* ---- renderer ---------------------------------------------------------- */

struct render {
    const struct template_set *set;
    struct template_buf *out;
    size_t out_start;
    struct template_error *err;
    const json_t **stack;
    size_t depth;
    size_t cap;
    struct template_buf indent; /* current indentation is [ind_start, len) */
    size_t ind_start;
    unsigned partial_depth;
    uint64_t steps;
    char *scratch; /* formatted value */
    size_t scratch_cap;
};

static int r_append(struct render *r, const struct template *t, const struct node *n, const char *s,
                    size_t len)
{
    if (len == 0)
        return 0;
    if (r->out->len - r->out_start + len > r->set->opts.max_output)
        return template_set_error(r->err, -EINVAL, t->name, n->line, n->col, NULL, 0,
                                  "output larger than the limit of %zu bytes",
                                  r->set->opts.max_output);
    if (template_buf_reserve(r->out, len) < 0)
        return template_set_error(r->err, -ENOMEM, t->name, n->line, n->col, NULL, 0,
                                  "out of memory");
    memcpy(r->out->data + r->out->len, s, len);
    r->out->len += len;
    r->out->data[r->out->len] = '\0';
    return 0;
}

static int r_push(struct render *r, const json_t *v)
{
    if (r->depth == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        const json_t **stack = realloc(r->stack, cap * sizeof(*stack));
        if (!stack)
            return -ENOMEM;
        r->stack = stack;
        r->cap = cap;
    }
    r->stack[r->depth++] = v;
    return 0;
}

/* drover's extension: a decimal segment after a list picks an element
 * ("routes.0"), so a template can test whether a list is empty. */
static const json_t *array_item(const json_t *list, const char *seg, size_t len)
{
    size_t idx = 0;

    if (len == 0 || len > 9)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        if (seg[i] < '0' || seg[i] > '9')
            return NULL;
        idx = idx * 10 + (size_t)(seg[i] - '0');
    }
    return json_array_get(list, idx);
}

/* Context stack lookup per the spec: the first segment is searched from
 * the innermost context outwards; later segments only inside the value
 * the first one found (a broken chain is a miss, not a further search). */
static const json_t *lookup(const struct render *r, const char *name, size_t len)
{
    const json_t *v = NULL;
    size_t seg;

    if (r->depth == 0)
        return NULL;
    if (len == 1 && name[0] == '.')
        return r->stack[r->depth - 1];
    const char *dot = memchr(name, '.', len);
    seg = dot ? (size_t)(dot - name) : len;
    for (size_t d = r->depth; d-- > 0;) {
        if (json_is_object(r->stack[d]) && (v = json_object_getn(r->stack[d], name, seg)))
            break;
    }
    while (v && dot) {
        name = dot + 1;
        len -= seg + 1;
        dot = memchr(name, '.', len);
        seg = dot ? (size_t)(dot - name) : len;
        if (json_is_object(v))
            v = json_object_getn(v, name, seg);
        else if (json_is_array(v))
            v = array_item(v, name, seg);
        else
            v = NULL;
    }
    return v;
}

/* Falsey: missing, null, false, empty list, empty string, zero. */
static bool truthy(const json_t *v)
{
    if (!v)
        return false;
    switch (json_typeof(v)) {
    case JSON_NULL:
    case JSON_FALSE:
        return false;
    case JSON_ARRAY:
        return json_array_size(v) > 0;
    case JSON_STRING:
        return json_string_length(v) > 0;
    case JSON_INTEGER:
        return json_integer_value(v) != 0;
    case JSON_REAL:
        return json_real_value(v) != 0.0;
    default:
        return true;
    }
}

/* Shortest "%g" text that reads back as the same double (1.210 -> 1.21). */
static void format_real(double d, char *buf, size_t size)
{
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, size, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            return;
    }
}

static void excerpt(const char *s, size_t len, char *out, size_t size)
{
    size_t o = 0;

    for (size_t i = 0; i < len && i < VALUE_EXCERPT && o + 5 < size; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\')
            o += (size_t)snprintf(out + o, size - o, "\\x%02x", c);
        else
            out[o++] = (char)c;
    }
    if (len > VALUE_EXCERPT && o + 4 < size) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

static int render_var(struct render *r, const struct template *t, const struct node *n)
{
    const char *key = t->src + n->off;
    const json_t *v = lookup(r, key, n->len);
    enum haproxy_value_kind kind =
        n->kind_explicit ? (enum haproxy_value_kind)n->kind : r->set->opts.default_kind;
    char num[64];
    const char *text = "";
    size_t len = 0;

    if (!v || json_is_null(v)) {
        if (r->set->opts.strict_variables)
            return template_set_error(r->err, -EINVAL, t->name, n->line, n->col, key, n->len,
                                      v ? "value is null" : "no such key in the data");
    } else if (json_is_string(v)) {
        text = json_string_value(v);
        len = json_string_length(v);
    } else if (json_is_integer(v)) {
        len = (size_t)snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        text = num;
    } else if (json_is_real(v)) {
        format_real(json_real_value(v), num, sizeof(num));
        text = num;
        len = strlen(num);
    } else if (json_is_boolean(v)) {
        text = json_is_true(v) ? "true" : "false";
        len = strlen(text);
    } else {
        return template_set_error(r->err, -EINVAL, t->name, n->line, n->col, key, n->len,
                                  "value is %s, not a string, number or boolean",
                                  json_is_object(v) ? "an object" : "a list");
    }

    size_t need = kind == HAPROXY_VALUE_UNCHECKED ? len + 1 : haproxy_value_format_size(len);
    if (need > r->scratch_cap) {
        char *s = realloc(r->scratch, need);
        if (!s)
            return template_set_error(r->err, -ENOMEM, t->name, n->line, n->col, key, n->len,
                                      "out of memory");
        r->scratch = s;
        r->scratch_cap = need;
    }
    const char *why = NULL;
    size_t out_len = 0;
    int rc = haproxy_value_format(kind, text, len, r->scratch, r->scratch_cap, &out_len, &why);
    if (rc < 0) {
        char ex[VALUE_EXCERPT * 4 + 8];
        excerpt(text, len, ex, sizeof(ex));
        return template_set_error(r->err, -EINVAL, t->name, n->line, n->col, key, n->len,
                                  "value \"%s\" refused by filter %s: %s", ex,
                                  haproxy_value_kind_name(kind), why ? why : "cannot be formatted");
    }
    return r_append(r, t, n, r->scratch, out_len);
}

static int render_nodes(struct render *r, const struct template *t, size_t from, size_t to);

static int render_partial(struct render *r, const struct template *t, const struct node *n)
{
    const char *name = t->src + n->off;
    const struct template *p = template_set_find(r->set, name, n->len);
    int rc;

    if (!p) {
        if (r->set->opts.missing_partial_is_empty)
            return 0;
        return template_set_error(r->err, -EINVAL, t->name, n->line, n->col, name, n->len,
                                  "unknown partial");
    }
    if (r->partial_depth >= r->set->opts.max_partial_depth)
        return template_set_error(r->err, -EINVAL, t->name, n->line, n->col, name, n->len,
                                  "partials nested deeper than %u (recursive partial?)",
                                  r->set->opts.max_partial_depth);
    size_t saved_start = r->ind_start, saved_len = r->indent.len;
    if (n->standalone) {
        if (template_buf_reserve(&r->indent, n->ind_len) < 0)
            return template_set_error(r->err, -ENOMEM, t->name, n->line, n->col, name, n->len,
                                      "out of memory");
        memcpy(r->indent.data + r->indent.len, t->src + n->ind_off, n->ind_len);
        r->indent.len += n->ind_len;
    } else {
        /* an inline partial is not indented, whatever surrounds it */
        r->ind_start = r->indent.len;
    }
    r->partial_depth++;
    rc = render_nodes(r, p, 0, p->n_nodes);
    r->partial_depth--;
    r->ind_start = saved_start;
    r->indent.len = saved_len;
    return rc;
}

static int render_section(struct render *r, const struct template *t, const struct node *n,
                          size_t first_child)
{
    const json_t *v = lookup(r, t->src + n->off, n->len);
    int rc = 0;

    if (n->type == NODE_INVERTED)
        return truthy(v) ? 0 : render_nodes(r, t, first_child, n->end);
    if (!truthy(v))
        return 0;
    if (json_is_array(v)) {
        size_t i;
        const json_t *item;
        json_array_foreach(v, i, item)
        {
            if (r_push(r, item) < 0)
                return template_set_error(r->err, -ENOMEM, t->name, n->line, n->col, NULL, 0,
                                          "out of memory");
            rc = render_nodes(r, t, first_child, n->end);
            r->depth--;
            if (rc < 0)
                return rc;
        }
        return 0;
    }
    if (r_push(r, v) < 0)
        return template_set_error(r->err, -ENOMEM, t->name, n->line, n->col, NULL, 0,
                                  "out of memory");
    rc = render_nodes(r, t, first_child, n->end);
    r->depth--;
    return rc;
}

static int render_nodes(struct render *r, const struct template *t, size_t from, size_t to)
{
    int rc = 0;

    for (size_t i = from; i < to && rc == 0; i++) {
        const struct node *n = &t->nodes[i];
        if (++r->steps > r->set->opts.max_steps)
            return template_set_error(r->err, -EINVAL, t->name, n->line, n->col, NULL, 0,
                                      "render needs more than %llu steps (runaway partials?)",
                                      (unsigned long long)r->set->opts.max_steps);
        switch (n->type) {
        case NODE_TEXT:
            rc = r_append(r, t, n, t->src + n->off, n->len);
            break;
        case NODE_LINE_START:
            if (r->indent.len > r->ind_start) /* data is NULL until a first indent */
                rc = r_append(r, t, n, r->indent.data + r->ind_start, r->indent.len - r->ind_start);
            break;
        case NODE_VAR:
            rc = render_var(r, t, n);
            break;
        case NODE_SECTION:
        case NODE_INVERTED:
            rc = render_section(r, t, n, i + 1);
            i = n->end - 1;
            break;
        case NODE_PARTIAL:
            rc = render_partial(r, t, n);
            break;
        }
    }
    return rc;
}

int template_render(const struct template_set *set, const char *name, const json_t *data,
                    struct template_buf *out, struct template_error *err)
{
    struct render r;
    const struct template *t;
    int rc;

    if (!set || !name || !out)
        return template_set_error(err, -EINVAL, name, 0, 0, NULL, 0, "bad arguments");
    if (!(t = template_set_find(set, name, strlen(name))))
        return template_set_error(err, -ENOENT, name, 0, 0, NULL, 0, "no such template");
    memset(&r, 0, sizeof(r));
    r.set = set;
    r.out = out;
    r.out_start = out->len;
    r.err = err;
    if (template_buf_reserve(out, 0) < 0)
        return template_set_error(err, -ENOMEM, name, 0, 0, NULL, 0, "out of memory");
    out->data[out->len] = '\0';
    if (data && r_push(&r, data) < 0) {
        rc = template_set_error(err, -ENOMEM, name, 0, 0, NULL, 0, "out of memory");
        goto out;
    }
    rc = render_nodes(&r, t, 0, t->n_nodes);
out:
    if (rc < 0) {
        out->len = r.out_start;
        out->data[out->len] = '\0';
    }
    free(r.stack);
    free(r.scratch);
    template_buf_free(&r.indent);
    return rc;
}
