/* SPDX-License-Identifier: Apache-2.0 */
/*
 * label_selector: a small recursive-descent parser for Kubernetes label
 * selectors and the matcher over metadata.labels. See label_selector.h.
 */
#include "label_selector.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum ls_op {
    LS_EQ,
    LS_NEQ,
    LS_IN,
    LS_NOTIN,
    LS_EXISTS,
    LS_NOT_EXISTS,
};

struct ls_req {
    enum ls_op op;
    char *key;
    char **values;
    size_t n_values;
};

struct label_selector {
    struct ls_req *reqs;
    size_t n;
};

struct ls_parser {
    const char *text;
    size_t pos;
    char *err;
    size_t errlen;
};

static int ls_fail(struct ls_parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int ls_fail(struct ls_parser *p, const char *fmt, ...)
{
    if (p->err && p->errlen) {
        char what[160];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(what, sizeof(what), fmt, ap);
        va_end(ap);
        snprintf(p->err, p->errlen, "label selector \"%s\": at offset %zu: %s", p->text, p->pos,
                 what);
    }
    return -EINVAL;
}

static void ls_skip_ws(struct ls_parser *p)
{
    while (p->text[p->pos] == ' ' || p->text[p->pos] == '\t')
        p->pos++;
}

/* Characters that may appear in a key or value token; validation of the
 * exact shape happens afterwards so errors can say what is wrong. */
static bool ls_token_char(char c)
{
    return isalnum((unsigned char)c) || c == '-' || c == '_' || c == '.' || c == '/';
}

/* name part of a key, or a value: ([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9], <= 63 */
static bool ls_valid_name(const char *s, size_t len, bool allow_empty)
{
    if (len == 0)
        return allow_empty;
    if (len > 63)
        return false;
    if (!isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[len - 1]))
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!isalnum((unsigned char)c) && c != '-' && c != '_' && c != '.')
            return false;
    }
    return true;
}

bool label_dns_subdomain_valid(const char *s, size_t len, bool allow_upper)
{
    if (len == 0 || len > 253)
        return false;
    size_t label = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '.') {
            if (label == 0 || s[i - 1] == '-')
                return false;
            label = 0;
            continue;
        }
        bool ok = islower(c) || isdigit(c) || c == '-' || (allow_upper && isupper(c));
        if (!ok || (label == 0 && c == '-') || ++label > 63)
            return false;
    }
    return label > 0 && s[len - 1] != '-';
}

static bool ls_valid_key(const char *s, size_t len)
{
    const char *slash = memchr(s, '/', len);
    if (!slash)
        return ls_valid_name(s, len, false);
    size_t plen = (size_t)(slash - s);
    if (memchr(slash + 1, '/', len - plen - 1))
        return false;
    return label_dns_subdomain_valid(s, plen, false) &&
           ls_valid_name(slash + 1, len - plen - 1, false);
}

/* Reads a token of ls_token_char; returns its length (may be 0). */
static size_t ls_token(struct ls_parser *p, const char **start)
{
    *start = p->text + p->pos;
    size_t n = 0;
    while (ls_token_char(p->text[p->pos + n]))
        n++;
    p->pos += n;
    return n;
}

static int ls_add_value(struct ls_req *r, const char *s, size_t len)
{
    char **v = realloc(r->values, (r->n_values + 1) * sizeof(*v));
    if (!v)
        return -ENOMEM;
    r->values = v;
    v[r->n_values] = strndup(s, len);
    if (!v[r->n_values])
        return -ENOMEM;
    r->n_values++;
    return 0;
}

static int ls_parse_value(struct ls_parser *p, struct ls_req *r, bool allow_empty)
{
    const char *s;
    size_t start = p->pos;
    size_t len = ls_token(p, &s);
    if (!ls_valid_name(s, len, allow_empty)) {
        p->pos = start;
        return ls_fail(p,
                       "invalid label value \"%.*s\" (at most 63 characters of "
                       "[A-Za-z0-9-_.], starting and ending alphanumeric)",
                       (int)len, s);
    }
    return ls_add_value(r, s, len);
}

static int ls_parse_set(struct ls_parser *p, struct ls_req *r)
{
    ls_skip_ws(p);
    if (p->text[p->pos] != '(')
        return ls_fail(p, "expected '(' after \"%s\"", r->op == LS_IN ? "in" : "notin");
    p->pos++;
    for (;;) {
        ls_skip_ws(p);
        int rc = ls_parse_value(p, r, true);
        if (rc)
            return rc;
        ls_skip_ws(p);
        char c = p->text[p->pos];
        if (c == ',') {
            p->pos++;
            continue;
        }
        if (c == ')') {
            p->pos++;
            break;
        }
        return ls_fail(p, "expected ',' or ')' in value set");
    }
    /* "k in ()" parses one empty value; Kubernetes rejects an empty set. */
    if (r->n_values == 1 && r->values[0][0] == '\0')
        return ls_fail(p, "empty value set for key \"%s\"", r->key);
    return 0;
}

static int ls_parse_req(struct ls_parser *p, struct ls_req *r)
{
    ls_skip_ws(p);
    bool negated = false;
    if (p->text[p->pos] == '!') {
        negated = true;
        p->pos++;
        ls_skip_ws(p);
    }
    const char *ks;
    size_t kstart = p->pos;
    size_t klen = ls_token(p, &ks);
    if (klen == 0)
        return ls_fail(p, "expected a label key");
    if (!ls_valid_key(ks, klen)) {
        p->pos = kstart;
        return ls_fail(p, "invalid label key \"%.*s\"", (int)klen, ks);
    }
    r->key = strndup(ks, klen);
    if (!r->key)
        return -ENOMEM;
    ls_skip_ws(p);
    const char *rest = p->text + p->pos;
    if (negated) {
        r->op = LS_NOT_EXISTS;
        if (*rest != ',' && *rest != '\0')
            return ls_fail(p, "expected ',' or end after \"!%s\"", r->key);
        return 0;
    }
    if (*rest == ',' || *rest == '\0') {
        r->op = LS_EXISTS;
        return 0;
    }
    if (rest[0] == '!' && rest[1] == '=') {
        r->op = LS_NEQ;
        p->pos += 2;
    } else if (rest[0] == '=' && rest[1] == '=') {
        r->op = LS_EQ;
        p->pos += 2;
    } else if (rest[0] == '=') {
        r->op = LS_EQ;
        p->pos += 1;
    } else if (rest[0] == '>' || rest[0] == '<') {
        return ls_fail(p, "operator '%c' is not supported", rest[0]);
    } else if (strncmp(rest, "notin", 5) == 0 && !ls_token_char(rest[5])) {
        r->op = LS_NOTIN;
        p->pos += 5;
        return ls_parse_set(p, r);
    } else if (strncmp(rest, "in", 2) == 0 && !ls_token_char(rest[2])) {
        r->op = LS_IN;
        p->pos += 2;
        return ls_parse_set(p, r);
    } else {
        return ls_fail(p,
                       "expected an operator (=, ==, !=, in, notin), ',' or end after key "
                       "\"%s\"",
                       r->key);
    }
    ls_skip_ws(p);
    return ls_parse_value(p, r, true);
}

static void ls_req_clear(struct ls_req *r)
{
    free(r->key);
    for (size_t i = 0; i < r->n_values; i++)
        free(r->values[i]);
    free(r->values);
}

void label_selector_free(struct label_selector *sel)
{
    if (!sel)
        return;
    for (size_t i = 0; i < sel->n; i++)
        ls_req_clear(&sel->reqs[i]);
    free(sel->reqs);
    free(sel);
}

int label_selector_parse(const char *text, struct label_selector **out, char *err, size_t errlen)
{
    struct ls_parser p = {.text = text ? text : "", .err = err, .errlen = errlen};
    struct label_selector *sel = calloc(1, sizeof(*sel));
    int rc = 0;

    *out = NULL;
    if (err && errlen)
        err[0] = '\0';
    if (!sel)
        return -ENOMEM;
    ls_skip_ws(&p);
    if (p.text[p.pos] == '\0')
        goto done;
    for (;;) {
        struct ls_req *reqs = realloc(sel->reqs, (sel->n + 1) * sizeof(*reqs));
        if (!reqs) {
            rc = -ENOMEM;
            goto done;
        }
        sel->reqs = reqs;
        memset(&reqs[sel->n], 0, sizeof(reqs[0]));
        sel->n++;
        rc = ls_parse_req(&p, &reqs[sel->n - 1]);
        if (rc)
            goto done;
        ls_skip_ws(&p);
        if (p.text[p.pos] == '\0')
            break;
        if (p.text[p.pos] != ',') {
            rc = ls_fail(&p, "expected ',' or end of selector");
            goto done;
        }
        p.pos++;
    }
done:
    if (rc) {
        label_selector_free(sel);
        return rc;
    }
    *out = sel;
    return 0;
}

static bool ls_in_set(const struct ls_req *r, const char *v)
{
    for (size_t i = 0; i < r->n_values; i++)
        if (strcmp(r->values[i], v) == 0)
            return true;
    return false;
}

bool label_selector_matches(const struct label_selector *sel, const json_t *labels)
{
    if (!sel)
        return true;
    for (size_t i = 0; i < sel->n; i++) {
        const struct ls_req *r = &sel->reqs[i];
        json_t *jv = json_is_object(labels) ? json_object_get(labels, r->key) : NULL;
        const char *v = json_is_string(jv) ? json_string_value(jv) : NULL;
        bool ok;
        switch (r->op) {
        case LS_EXISTS:
            ok = jv != NULL;
            break;
        case LS_NOT_EXISTS:
            ok = jv == NULL;
            break;
        case LS_EQ:
        case LS_IN:
            ok = v && ls_in_set(r, v);
            break;
        case LS_NEQ:
        case LS_NOTIN:
            ok = !v || !ls_in_set(r, v);
            break;
        default:
            ok = false;
        }
        if (!ok)
            return false;
    }
    return true;
}

size_t label_selector_count(const struct label_selector *sel)
{
    return sel ? sel->n : 0;
}
