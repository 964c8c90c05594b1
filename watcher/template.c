/* SPDX-License-Identifier: Apache-2.0 */
/*
 * template: mustache parser and renderer (see template.h).
 *
 * A template compiles into a flat array of nodes; a section node records
 * the index just past its children, so rendering is a loop over index
 * ranges and the compiled form holds no pointers into itself. Text and
 * names point into the template's own copy of its source.
 *
 * Partial indentation: the spec indents every line of a standalone
 * partial's template before rendering it. Instead of re-parsing a partial
 * per indentation, the parser inserts a LINE_START node before content
 * that begins a source line, and the renderer writes the current
 * indentation there. Values interpolated into the partial are therefore
 * not indented, exactly as the spec requires.
 */
#include "template_internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- errors and buffers ------------------------------------------------ */

static void copy_printable(char *dst, size_t size, const char *src, size_t len)
{
    size_t o = 0;

    for (size_t i = 0; i < len && o + 1 < size; i++) {
        unsigned char c = (unsigned char)src[i];
        dst[o++] = (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
    }
    dst[o] = '\0';
}

int template_set_error(struct template_error *err, int code, const char *tname, unsigned line,
                       unsigned col, const char *key, size_t key_len, const char *fmt, ...)
{
    va_list ap;

    if (!err)
        return code;
    memset(err, 0, sizeof(*err));
    err->code = code;
    if (tname)
        copy_printable(err->template_name, sizeof(err->template_name), tname, strlen(tname));
    err->line = line;
    err->column = col;
    if (key)
        copy_printable(err->key, sizeof(err->key), key, key_len);
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    return code;
}

const char *template_error_format(const struct template_error *err, char *buf, size_t size)
{
    size_t o = 0;
    int n;

    if (!buf || size == 0)
        return buf;
    buf[0] = '\0';
    if (!err)
        return buf;
    n = snprintf(buf, size, "template %s", err->template_name[0] ? err->template_name : "?");
    o = n > 0 ? (size_t)n : 0;
    if (err->line && o < size) {
        n = snprintf(buf + o, size - o, " line %u column %u", err->line, err->column);
        o += n > 0 ? (size_t)n : 0;
    }
    if (err->key[0] && o < size) {
        n = snprintf(buf + o, size - o, ": key '%s'", err->key);
        o += n > 0 ? (size_t)n : 0;
    }
    if (o < size)
        snprintf(buf + o, size - o, ": %s", err->message);
    return buf;
}

void template_buf_free(struct template_buf *buf)
{
    if (!buf)
        return;
    free(buf->data);
    buf->data = NULL;
    buf->len = buf->cap = 0;
}

int template_buf_reserve(struct template_buf *buf, size_t extra)
{
    if (buf->len + extra + 1 <= buf->cap)
        return 0;
    size_t cap = buf->cap ? buf->cap : 256;
    while (cap < buf->len + extra + 1) {
        if (cap > SIZE_MAX / 2)
            return -ENOMEM;
        cap *= 2;
    }
    char *data = realloc(buf->data, cap);
    if (!data)
        return -ENOMEM;
    buf->data = data;
    buf->cap = cap;
    return 0;
}

/* ---- options and sets -------------------------------------------------- */

void template_options_init(struct template_options *opts)
{
    memset(opts, 0, sizeof(*opts));
    opts->default_kind = HAPROXY_VALUE_WORD;
    opts->max_partial_depth = DEFAULT_PARTIAL_DEPTH;
    opts->max_output = DEFAULT_MAX_OUTPUT;
    opts->max_steps = DEFAULT_MAX_STEPS;
}

int template_set_new(const struct template_options *opts, struct template_set **out)
{
    struct template_set *set;

    if (!out)
        return -EINVAL;
    *out = NULL;
    set = calloc(1, sizeof(*set));
    if (!set)
        return -ENOMEM;
    if (opts) {
        set->opts = *opts;
        if ((unsigned)set->opts.default_kind > HAPROXY_VALUE_UNCHECKED) {
            free(set);
            return -EINVAL;
        }
        if (!set->opts.max_partial_depth)
            set->opts.max_partial_depth = DEFAULT_PARTIAL_DEPTH;
        if (!set->opts.max_output)
            set->opts.max_output = DEFAULT_MAX_OUTPUT;
        if (!set->opts.max_steps)
            set->opts.max_steps = DEFAULT_MAX_STEPS;
    } else {
        template_options_init(&set->opts);
    }
    *out = set;
    return 0;
}

static void template_free(struct template *t)
{
    if (!t)
        return;
    free(t->name);
    free(t->src);
    free(t->nodes);
    free(t);
}

void template_set_free(struct template_set *set)
{
    if (!set)
        return;
    for (size_t i = 0; i < set->n; i++)
        template_free(set->tpls[i]);
    free(set->tpls);
    free(set);
}

const struct template *template_set_find(const struct template_set *set, const char *name,
                                         size_t len)
{
    for (size_t i = 0; i < set->n; i++) {
        const struct template *t = set->tpls[i];
        if (strlen(t->name) == len && memcmp(t->name, name, len) == 0)
            return t;
    }
    return NULL;
}

bool template_set_has(const struct template_set *set, const char *name)
{
    return set && name && template_set_find(set, name, strlen(name));
}

/* ---- parser ------------------------------------------------------------ */

struct open_section {
    uint32_t node;
    uint32_t off, len;
    unsigned line, col;
};

struct parser {
    struct template *t;
    const char *src;
    size_t len;
    char open[TEMPLATE_MAX_DELIM + 1];
    size_t olen;
    char close[TEMPLATE_MAX_DELIM + 2]; /* room for the "}" of {{{ }}} */
    size_t clen;
    size_t lc_pos; /* line/column cache, offsets are visited in order */
    unsigned lc_line;
    size_t lc_line_start;
    struct open_section stack[TEMPLATE_MAX_SECTIONS];
    size_t depth;
    struct template_error *err;
};

static void line_col(struct parser *p, size_t off, unsigned *line, unsigned *col)
{
    if (off < p->lc_pos) {
        p->lc_pos = 0;
        p->lc_line = 1;
        p->lc_line_start = 0;
    }
    for (; p->lc_pos < off; p->lc_pos++) {
        if (p->src[p->lc_pos] == '\n') {
            p->lc_line++;
            p->lc_line_start = p->lc_pos + 1;
        }
    }
    *line = p->lc_line;
    *col = (unsigned)(off - p->lc_line_start + 1);
}

__attribute__((format(printf, 5, 6))) static int
parse_error(struct parser *p, size_t off, const char *key, size_t key_len, const char *fmt, ...)
{
    unsigned line, col;
    char msg[200];
    va_list ap;

    line_col(p, off, &line, &col);
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return template_set_error(p->err, -EINVAL, p->t->name, line, col, key, key_len, "%s", msg);
}

static struct node *push_node(struct parser *p, enum node_type type)
{
    struct template *t = p->t;

    if (t->n_nodes == t->cap_nodes) {
        size_t cap = t->cap_nodes ? t->cap_nodes * 2 : 64;
        struct node *nodes = realloc(t->nodes, cap * sizeof(*nodes));
        if (!nodes)
            return NULL;
        t->nodes = nodes;
        t->cap_nodes = cap;
    }
    struct node *n = &t->nodes[t->n_nodes++];
    memset(n, 0, sizeof(*n));
    n->type = (uint8_t)type;
    return n;
}

static bool at_line_start(const struct parser *p, size_t off)
{
    return off == 0 || p->src[off - 1] == '\n';
}

/* Text [a, b) as TEXT nodes, with a LINE_START before every piece that
 * begins a source line (a trailing newline marks nothing: what follows it
 * is emitted by the next token). */
static int emit_text(struct parser *p, size_t a, size_t b)
{
    struct node *n;

    while (a < b) {
        if (at_line_start(p, a)) {
            if (!push_node(p, NODE_LINE_START))
                return -ENOMEM;
        }
        const char *nl = memchr(p->src + a, '\n', b - a);
        size_t end = nl ? (size_t)(nl - p->src) + 1 : b;
        if (!(n = push_node(p, NODE_TEXT)))
            return -ENOMEM;
        n->off = (uint32_t)a;
        n->len = (uint32_t)(end - a);
        a = end;
    }
    return 0;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void trim(const char *src, size_t *a, size_t *b)
{
    while (*a < *b && is_space(src[*a]))
        (*a)++;
    while (*b > *a && is_space(src[*b - 1]))
        (*b)--;
}

/* Names: "." or dot-separated non-empty segments without space, control
 * characters or '|' (the filter separator). */
static bool valid_name(const char *s, size_t len, bool dotted)
{
    if (len == 0)
        return false;
    if (dotted && len == 1 && s[0] == '.')
        return true;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c == 0x7f || c == '|')
            return false;
        if (dotted && c == '.' && (i == 0 || i + 1 == len || s[i + 1] == '.'))
            return false;
    }
    return true;
}

static int parse_delimiters(struct parser *p, size_t tag, size_t a, size_t b)
{
    size_t o0, o1, c0, c1;

    trim(p->src, &a, &b);
    o0 = a;
    o1 = o0;
    while (o1 < b && !is_space(p->src[o1]))
        o1++;
    c0 = o1;
    while (c0 < b && is_space(p->src[c0]))
        c0++;
    c1 = c0;
    while (c1 < b && !is_space(p->src[c1]))
        c1++;
    if (o1 == o0 || c1 == c0 || c1 != b || o1 - o0 > TEMPLATE_MAX_DELIM ||
        c1 - c0 > TEMPLATE_MAX_DELIM || memchr(p->src + o0, '=', o1 - o0) ||
        memchr(p->src + c0, '=', c1 - c0))
        return parse_error(p, tag, NULL, 0,
                           "bad set-delimiter tag: need two delimiters of 1-%d characters, "
                           "without spaces or '=', e.g. {{=<%% %%>=}}",
                           TEMPLATE_MAX_DELIM);
    memcpy(p->open, p->src + o0, o1 - o0);
    p->open[o1 - o0] = '\0';
    p->olen = o1 - o0;
    memcpy(p->close, p->src + c0, c1 - c0);
    p->close[c1 - c0] = '\0';
    p->clen = c1 - c0;
    return 0;
}

static int parse_variable(struct parser *p, size_t tag, size_t a, size_t b)
{
    size_t na = a, nb = b, fa, fb;
    const char *bar = memchr(p->src + a, '|', b - a);
    enum haproxy_value_kind kind = HAPROXY_VALUE_WORD;
    bool explicit_kind = false;
    struct node *n;

    if (bar) {
        nb = (size_t)(bar - p->src);
        fa = nb + 1;
        fb = b;
        trim(p->src, &fa, &fb);
        if (haproxy_value_kind_from_name(p->src + fa, fb - fa, &kind) < 0)
            return parse_error(p, tag, p->src + fa, fb - fa,
                               "unknown filter (known: word name ip addr port uint int weight "
                               "duration host path file quoted)");
        explicit_kind = true;
    }
    trim(p->src, &na, &nb);
    if (!valid_name(p->src + na, nb - na, true))
        return parse_error(p, tag, p->src + na, nb - na, "bad variable name");
    if (!(n = push_node(p, NODE_VAR)))
        return -ENOMEM;
    n->off = (uint32_t)na;
    n->len = (uint32_t)(nb - na);
    n->kind = (uint8_t)kind;
    n->kind_explicit = explicit_kind;
    line_col(p, tag, &n->line, &n->col);
    return 0;
}

static int parse_open_section(struct parser *p, char type, size_t tag, size_t a, size_t b)
{
    struct node *n;

    if (!valid_name(p->src + a, b - a, true))
        return parse_error(p, tag, p->src + a, b - a,
                           "bad section name (filters are only allowed on variables)");
    if (p->depth == TEMPLATE_MAX_SECTIONS)
        return parse_error(p, tag, p->src + a, b - a, "sections nested deeper than %d",
                           TEMPLATE_MAX_SECTIONS);
    if (!(n = push_node(p, type == '#' ? NODE_SECTION : NODE_INVERTED)))
        return -ENOMEM;
    n->off = (uint32_t)a;
    n->len = (uint32_t)(b - a);
    line_col(p, tag, &n->line, &n->col);
    struct open_section *s = &p->stack[p->depth++];
    s->node = (uint32_t)(p->t->n_nodes - 1);
    s->off = n->off;
    s->len = n->len;
    s->line = n->line;
    s->col = n->col;
    return 0;
}

static int parse_close_section(struct parser *p, size_t tag, size_t a, size_t b)
{
    if (p->depth == 0)
        return parse_error(p, tag, p->src + a, b - a, "closing tag without an open section");
    struct open_section *s = &p->stack[p->depth - 1];
    if (s->len != b - a || memcmp(p->src + s->off, p->src + a, b - a) != 0) {
        char open_name[64];
        copy_printable(open_name, sizeof(open_name), p->src + s->off, s->len);
        return parse_error(p, tag, p->src + a, b - a,
                           "closing tag does not match the open section '%s' (line %u column %u)",
                           open_name, s->line, s->col);
    }
    p->t->nodes[s->node].end = (uint32_t)p->t->n_nodes;
    p->depth--;
    return 0;
}

static int parse_partial(struct parser *p, size_t tag, size_t a, size_t b, bool standalone,
                         size_t ind_off, size_t ind_len)
{
    struct node *n;

    if (!valid_name(p->src + a, b - a, false))
        return parse_error(p, tag, p->src + a, b - a, "bad partial name");
    if (!(n = push_node(p, NODE_PARTIAL)))
        return -ENOMEM;
    n->off = (uint32_t)a;
    n->len = (uint32_t)(b - a);
    n->standalone = standalone;
    n->ind_off = (uint32_t)ind_off;
    n->ind_len = (uint32_t)ind_len;
    line_col(p, tag, &n->line, &n->col);
    return 0;
}

static int parse(struct parser *p)
{
    size_t pos = 0, text_from = 0;
    int rc;

    while (pos < p->len) {
        const char *hit = memmem(p->src + pos, p->len - pos, p->open, p->olen);
        if (!hit)
            break;
        size_t tag = (size_t)(hit - p->src);
        size_t cstart = tag + p->olen;
        char type = cstart < p->len ? p->src[cstart] : '\0';
        char closer[TEMPLATE_MAX_DELIM + 2];
        size_t closer_len;

        /* Find where the tag ends; {{{x}}} and {{=a b=}} end with an extra
         * character before the closing delimiter. */
        if (type == '{' || type == '=') {
            closer[0] = type == '{' ? '}' : '=';
            memcpy(closer + 1, p->close, p->clen);
            closer_len = p->clen + 1;
        } else {
            memcpy(closer, p->close, p->clen);
            closer_len = p->clen;
        }
        if (type != '\0' && strchr("#^/!>=&{", type))
            cstart++;
        const char *chit = memmem(p->src + cstart, p->len - cstart, closer, closer_len);
        if (!chit)
            return parse_error(p, tag, NULL, 0, "unclosed tag: no '%.*s' after it", (int)closer_len,
                               closer);
        size_t cend = (size_t)(chit - p->src);
        size_t tag_end = cend + closer_len;
        size_t a = cstart, b = cend;
        trim(p->src, &a, &b);

        /* Standalone: a section, comment, partial or delimiter tag alone on
         * its line (only spaces/tabs around it) takes the line with it. */
        bool standalone = false;
        size_t ls = tag, next = tag_end;
        if (type && strchr("#^/!>=", type)) {
            while (ls > text_from && (p->src[ls - 1] == ' ' || p->src[ls - 1] == '\t'))
                ls--;
            if (at_line_start(p, ls)) {
                size_t e = tag_end;
                while (e < p->len && (p->src[e] == ' ' || p->src[e] == '\t'))
                    e++;
                if (e == p->len) {
                    standalone = true;
                    next = e;
                } else if (p->src[e] == '\n') {
                    standalone = true;
                    next = e + 1;
                } else if (p->src[e] == '\r' && e + 1 < p->len && p->src[e + 1] == '\n') {
                    standalone = true;
                    next = e + 2;
                }
            }
        }
        if ((rc = emit_text(p, text_from, standalone ? ls : tag)) < 0)
            return rc;
        if (!standalone && at_line_start(p, tag) && !push_node(p, NODE_LINE_START))
            return -ENOMEM;

        switch (type) {
        case '!':
            rc = 0;
            break;
        case '=':
            rc = parse_delimiters(p, tag, a, b);
            break;
        case '#':
        case '^':
            rc = parse_open_section(p, type, tag, a, b);
            break;
        case '/':
            rc = parse_close_section(p, tag, a, b);
            break;
        case '>':
            rc = parse_partial(p, tag, a, b, standalone, ls, tag - ls);
            break;
        default:
            rc = parse_variable(p, tag, a, b);
            break;
        }
        if (rc < 0)
            return rc;
        pos = text_from = next;
    }
    if ((rc = emit_text(p, text_from, p->len)) < 0)
        return rc;
    if (p->depth) {
        struct open_section *s = &p->stack[p->depth - 1];
        return template_set_error(p->err, -EINVAL, p->t->name, s->line, s->col, p->src + s->off,
                                  s->len, "section is never closed");
    }
    return 0;
}

int template_set_add(struct template_set *set, const char *name, const char *text, size_t len,
                     struct template_error *err)
{
    struct template *t = NULL;
    struct parser p;
    int rc;

    if (!set || !name || (!text && len))
        return template_set_error(err, -EINVAL, name, 0, 0, NULL, 0, "bad arguments");
    if (!*name || strlen(name) > TEMPLATE_NAME_MAX || !valid_name(name, strlen(name), false))
        return template_set_error(err, -EINVAL, name, 0, 0, NULL, 0,
                                  "bad template name (1-%d characters, no spaces or '|')",
                                  TEMPLATE_NAME_MAX);
    if (template_set_find(set, name, strlen(name)))
        return template_set_error(err, -EINVAL, name, 0, 0, NULL, 0,
                                  "a template of this name exists");
    if (len > TEMPLATE_MAX_SOURCE)
        return template_set_error(err, -EINVAL, name, 0, 0, NULL, 0,
                                  "template larger than %u bytes", TEMPLATE_MAX_SOURCE);
    if (set->n == set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 8;
        struct template **tpls = realloc(set->tpls, cap * sizeof(*tpls));
        if (!tpls)
            return template_set_error(err, -ENOMEM, name, 0, 0, NULL, 0, "out of memory");
        set->tpls = tpls;
        set->cap = cap;
    }
    rc = -ENOMEM;
    if (!(t = calloc(1, sizeof(*t))) || !(t->name = strdup(name)) || !(t->src = malloc(len + 1)))
        goto fail_nomem;
    if (len)
        memcpy(t->src, text, len);
    t->src[len] = '\0';
    t->src_len = len;

    memset(&p, 0, sizeof(p));
    p.t = t;
    p.src = t->src;
    p.len = len;
    memcpy(p.open, "{{", 3);
    p.olen = 2;
    memcpy(p.close, "}}", 3);
    p.clen = 2;
    p.lc_line = 1;
    p.err = err;
    rc = parse(&p);
    if (rc == -ENOMEM)
        goto fail_nomem;
    if (rc < 0)
        goto fail;
    set->tpls[set->n++] = t;
    return 0;

fail_nomem:
    template_set_error(err, -ENOMEM, name, 0, 0, NULL, 0, "out of memory while parsing");
fail:
    template_free(t);
    return rc;
}

static int read_file(const char *path, char **out, size_t *out_len)
{
    FILE *f = fopen(path, "rb");
    char *data = NULL;
    size_t len = 0, cap = 0;
    int rc = 0;

    if (!f)
        return -errno;
    for (;;) {
        if (cap - len < 4096) {
            cap = cap ? cap * 2 : 8192;
            if (cap > TEMPLATE_MAX_SOURCE + 8192) {
                rc = -EFBIG;
                goto out;
            }
            char *d = realloc(data, cap);
            if (!d) {
                rc = -ENOMEM;
                goto out;
            }
            data = d;
        }
        size_t n = fread(data + len, 1, cap - len, f);
        len += n;
        if (n == 0) {
            if (ferror(f))
                rc = -EIO;
            break;
        }
    }
out:
    fclose(f);
    if (rc < 0) {
        free(data);
        return rc;
    }
    *out = data;
    *out_len = len;
    return 0;
}

static int load_folder(struct template_set *set, const char *dir, bool required,
                       struct template_error *err)
{
    static const char ext[] = ".mustache";
    DIR *d = opendir(dir);
    struct dirent *de;
    int rc = 0;

    if (!d) {
        rc = -errno;
        if (!required && rc == -ENOENT)
            return 0;
        return template_set_error(err, rc, dir, 0, 0, NULL, 0, "cannot open template folder: %s",
                                  strerror(-rc));
    }
    while ((de = readdir(d))) {
        size_t n = strlen(de->d_name);
        char path[4096], name[TEMPLATE_NAME_MAX + 1];
        struct stat st;
        char *text = NULL;
        size_t len = 0;

        if (n <= sizeof(ext) - 1 || strcmp(de->d_name + n - (sizeof(ext) - 1), ext) != 0 ||
            de->d_name[0] == '.')
            continue;
        if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >= sizeof(path)) {
            rc = template_set_error(err, -ENAMETOOLONG, de->d_name, 0, 0, NULL, 0, "path too long");
            break;
        }
        if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
            continue;
        if (n - (sizeof(ext) - 1) > TEMPLATE_NAME_MAX) {
            rc = template_set_error(err, -EINVAL, path, 0, 0, NULL, 0, "template name too long");
            break;
        }
        memcpy(name, de->d_name, n - (sizeof(ext) - 1));
        name[n - (sizeof(ext) - 1)] = '\0';
        if ((rc = read_file(path, &text, &len)) < 0) {
            template_set_error(err, rc, path, 0, 0, NULL, 0, "cannot read template: %s",
                               strerror(-rc));
            break;
        }
        rc = template_set_add(set, name, text, len, err);
        free(text);
        if (rc < 0)
            break;
    }
    closedir(d);
    return rc;
}

int template_set_load_dir(struct template_set *set, const char *dir, struct template_error *err)
{
    char sub[4096];
    int rc;

    if (!set || !dir)
        return template_set_error(err, -EINVAL, dir, 0, 0, NULL, 0, "bad arguments");
    if ((rc = load_folder(set, dir, true, err)) < 0)
        return rc;
    if ((size_t)snprintf(sub, sizeof(sub), "%s/partials", dir) >= sizeof(sub))
        return template_set_error(err, -ENAMETOOLONG, dir, 0, 0, NULL, 0, "path too long");
    return load_folder(set, sub, false, err);
}

int template_set_check(const struct template_set *set, struct template_error *err)
{
    if (!set)
        return template_set_error(err, -EINVAL, NULL, 0, 0, NULL, 0, "bad arguments");
    if (set->opts.missing_partial_is_empty)
        return 0;
    for (size_t i = 0; i < set->n; i++) {
        const struct template *t = set->tpls[i];
        for (size_t j = 0; j < t->n_nodes; j++) {
            const struct node *n = &t->nodes[j];
            if (n->type == NODE_PARTIAL && !template_set_find(set, t->src + n->off, n->len))
                return template_set_error(err, -EINVAL, t->name, n->line, n->col, t->src + n->off,
                                          n->len, "unknown partial");
        }
    }
    return 0;
}
