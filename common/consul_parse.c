/* SPDX-License-Identifier: Apache-2.0 */
/*
 * consul_parse: turns Consul HTTP answers (KV lists, key lists, health
 * service lists, session create, txn results) into C structures, plus the
 * txn request encoder and the content hashes. Pure functions over bytes:
 * everything here is reachable from the fuzz target, so every field is
 * type-checked and every failure names the element that was wrong.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consul.h"
#include "json_util.h"

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

static json_t *load(const char *body, size_t len, char *err, size_t errlen)
{
    json_error_t je;
    json_t *root = json_loadb(body, len, JSON_DECODE_ANY, &je);
    if (!root)
        fail(err, errlen, -EBADMSG, "invalid JSON at line %d column %d: %s", je.line, je.column,
             je.text);
    return root;
}

/* String field (a json_util path) copied into *out; NULL when absent or
 * null and not required. */
static int dup_field(const json_t *o, const char *field, bool required, char **out, char *err,
                     size_t errlen)
{
    const char *v = NULL;
    *out = NULL;
    int rc = json_get_string(o, NULL, field, &v, required, err, errlen);
    if (rc < 0)
        return -EBADMSG;
    if (rc == 0)
        return 0;
    *out = strdup(v);
    return *out ? 0 : -ENOMEM;
}

/* Raft indexes and flags: non-negative integers, 0 when absent. */
static int get_u64(const json_t *o, const char *field, uint64_t *out, char *err, size_t errlen)
{
    int64_t v = 0;
    if (json_get_int(o, NULL, field, &v, 0, INT64_MAX, false, err, errlen) < 0)
        return -EBADMSG;
    *out = (uint64_t)v;
    return 0;
}

int consul_base64_decode(const char *in, size_t len, unsigned char **out, size_t *out_len)
{
    static const signed char map[256] = {
        ['A'] = 1,  ['B'] = 2,  ['C'] = 3,  ['D'] = 4,  ['E'] = 5,  ['F'] = 6,  ['G'] = 7,
        ['H'] = 8,  ['I'] = 9,  ['J'] = 10, ['K'] = 11, ['L'] = 12, ['M'] = 13, ['N'] = 14,
        ['O'] = 15, ['P'] = 16, ['Q'] = 17, ['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21,
        ['V'] = 22, ['W'] = 23, ['X'] = 24, ['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28,
        ['c'] = 29, ['d'] = 30, ['e'] = 31, ['f'] = 32, ['g'] = 33, ['h'] = 34, ['i'] = 35,
        ['j'] = 36, ['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40, ['o'] = 41, ['p'] = 42,
        ['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48, ['w'] = 49,
        ['x'] = 50, ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56,
        ['4'] = 57, ['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61, ['9'] = 62, ['+'] = 63,
        ['/'] = 64,
    }; /* value + 1; 0 = not in the alphabet */
    if (len % 4 != 0)
        return -EBADMSG;
    unsigned char *buf = malloc(len / 4 * 3 + 1);
    if (!buf)
        return -ENOMEM;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        unsigned v[4];
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            unsigned char ch = (unsigned char)in[i + k];
            if (ch == '=' && i + 4 == len && k >= 2) {
                pad++;
                v[k] = 0;
                continue;
            }
            if (pad || map[ch] == 0) /* data after padding, or bad char */
                goto bad;
            v[k] = (unsigned)(map[ch] - 1);
        }
        uint32_t w = v[0] << 18 | v[1] << 12 | v[2] << 6 | v[3];
        buf[o++] = (unsigned char)(w >> 16);
        if (pad < 2)
            buf[o++] = (unsigned char)(w >> 8);
        if (pad < 1)
            buf[o++] = (unsigned char)w;
    }
    buf[o] = '\0';
    *out = buf;
    *out_len = o;
    return 0;
bad:
    free(buf);
    return -EBADMSG;
}

static void kv_clear(struct consul_kv *kv)
{
    free(kv->key);
    free(kv->value);
    free(kv->session);
    memset(kv, 0, sizeof(*kv));
}

/* Fill kv from one Consul KV object; err names the problem. */
static int kv_from_json(json_t *o, struct consul_kv *kv, char *err, size_t errlen)
{
    char sub[200] = "";
    int rc;
    memset(kv, 0, sizeof(*kv));
    if (!json_is_object(o))
        return fail(err, errlen, -EBADMSG, "entry is not an object");
    rc = dup_field(o, "Key", true, &kv->key, err, errlen);
    if (rc)
        return rc;
    if (get_u64(o, "Flags", &kv->flags, sub, sizeof(sub)) ||
        get_u64(o, "CreateIndex", &kv->create_index, sub, sizeof(sub)) ||
        get_u64(o, "ModifyIndex", &kv->modify_index, sub, sizeof(sub)) ||
        get_u64(o, "LockIndex", &kv->lock_index, sub, sizeof(sub)) ||
        dup_field(o, "Session", false, &kv->session, sub, sizeof(sub))) {
        fail(err, errlen, -EBADMSG, "key %.200s: %s", kv->key, sub);
        goto bad;
    }
    json_t *v = json_object_get(o, "Value");
    if (v && !json_is_null(v)) {
        if (!json_is_string(v)) {
            fail(err, errlen, -EBADMSG, "key %.200s: Value: expected string, got %s", kv->key,
                 json_type_desc(v));
            goto bad;
        }
        rc = consul_base64_decode(json_string_value(v), json_string_length(v), &kv->value,
                                  &kv->value_len);
        if (rc) {
            fail(err, errlen, rc, "key %.200s: Value is not valid base64", kv->key);
            goto bad;
        }
    }
    return 0;
bad:
    kv_clear(kv);
    return -EBADMSG;
}

/* Parse a JSON array answer into *items (n elements of item_size, filled
 * by fill). On failure *items and *n hold what was filled so far, for the
 * caller's list free function. */
typedef int (*fill_fn)(json_t *elem, void *item, char *err, size_t errlen);

static int parse_array(const char *body, size_t len, const char *what, size_t item_size,
                       fill_fn fill, void **items, size_t *n, char *err, size_t errlen)
{
    int rc = 0;
    json_t *root = load(body, len, err, errlen);
    if (!root)
        return -EBADMSG;
    if (!json_is_array(root)) {
        rc = fail(err, errlen, -EBADMSG, "%s answer is not a JSON array", what);
        goto out;
    }
    size_t count = json_array_size(root);
    *items = calloc(count ? count : 1, item_size);
    if (!*items) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < count; i++) {
        char sub[200] = "";
        rc = fill(json_array_get(root, i), (char *)*items + i * item_size, sub, sizeof(sub));
        if (rc) {
            fail(err, errlen, rc, "%s entry %zu: %s", what, i, sub);
            goto out;
        }
        (*n)++;
    }
out:
    json_decref(root);
    return rc;
}

static int kv_fill(json_t *elem, void *item, char *err, size_t errlen)
{
    return kv_from_json(elem, item, err, errlen);
}

int consul_parse_kv_list(const char *body, size_t len, struct consul_kv_list **out, char *err,
                         size_t errlen)
{
    struct consul_kv_list *l = calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    int rc = parse_array(body, len, "KV", sizeof(*l->items), kv_fill, (void **)&l->items, &l->n,
                         err, errlen);
    if (rc) {
        consul_kv_list_free(l);
        return rc;
    }
    *out = l;
    return 0;
}

/* ---- KV lists parsed against the previous answer ---- */

struct consul_kv_text {
    char *body; /* a copy of the answer */
    size_t n;
    size_t *off, *len; /* entry i's JSON text: body[off[i], off[i] + len[i]) */
    uint64_t *hash;
    size_t *slot; /* open addressing over hash: entry index + 1, 0 = empty */
    size_t n_slots;
};

void consul_kv_text_free(struct consul_kv_text *t)
{
    if (!t)
        return;
    free(t->body);
    free(t->off);
    free(t->len);
    free(t->hash);
    free(t->slot);
    free(t);
}

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/*
 * Split a JSON array of objects into the text of each object, honouring
 * strings and escapes; no validation beyond the structure (each piece is
 * parsed by jansson or compared byte for byte with one that was). 0, or
 * -EBADMSG when the body is not shaped like that (the caller then parses
 * it whole, for the error message), -ENOMEM.
 */
static int split_objects(const char *body, size_t blen, struct consul_kv_text *t)
{
    const char *p = skip_ws(body, body + blen), *end = body + blen;
    size_t cap = 0;
    if (p == end || *p++ != '[')
        return -EBADMSG;
    p = skip_ws(p, end);
    if (p < end && *p == ']') {
        p++;
        return skip_ws(p, end) == end ? 0 : -EBADMSG;
    }
    for (;;) {
        p = skip_ws(p, end);
        if (p == end || *p != '{')
            return -EBADMSG;
        const char *start = p;
        unsigned depth = 0;
        bool in_str = false;
        for (; p < end; p++) {
            char c = *p;
            if (in_str) {
                if (c == '\\')
                    p++; /* the escaped character, whatever it is */
                else if (c == '"')
                    in_str = false;
            } else if (c == '"') {
                in_str = true;
            } else if (c == '{' || c == '[') {
                depth++;
            } else if (c == '}' || c == ']') {
                if (--depth == 0) {
                    p++;
                    break;
                }
            }
        }
        if (depth != 0 || p > end)
            return -EBADMSG;
        if (t->n == cap) {
            size_t nc = cap * 2 + 64;
            size_t *no = realloc(t->off, nc * sizeof(*no));
            if (no)
                t->off = no;
            size_t *nl = no ? realloc(t->len, nc * sizeof(*nl)) : NULL;
            if (nl)
                t->len = nl;
            if (!no || !nl)
                return -ENOMEM;
            cap = nc;
        }
        t->off[t->n] = (size_t)(start - body);
        t->len[t->n] = (size_t)(p - start);
        t->n++;
        p = skip_ws(p, end);
        if (p < end && *p == ',') {
            p++;
            continue;
        }
        if (p < end && *p == ']')
            return skip_ws(p + 1, end) == end ? 0 : -EBADMSG;
        return -EBADMSG;
    }
}

static uint64_t text_hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

/* Index of prev's entry whose text is exactly s[0..n), or -1. */
static ssize_t text_find(const struct consul_kv_text *prev, const char *s, size_t n, uint64_t h)
{
    if (!prev || !prev->n_slots)
        return -1;
    for (size_t i = (size_t)h & (prev->n_slots - 1);; i = (i + 1) & (prev->n_slots - 1)) {
        size_t e = prev->slot[i];
        if (!e)
            return -1;
        e--;
        if (prev->hash[e] == h && prev->len[e] == n && memcmp(prev->body + prev->off[e], s, n) == 0)
            return (ssize_t)e;
    }
}

static int kv_copy(const struct consul_kv *a, struct consul_kv *b)
{
    *b = *a;
    b->key = strdup(a->key);
    b->value = a->value ? malloc(a->value_len + 1) : NULL;
    b->session = a->session ? strdup(a->session) : NULL;
    if (!b->key || (a->value && !b->value) || (a->session && !b->session)) {
        kv_clear(b);
        return -ENOMEM;
    }
    if (a->value)
        memcpy(b->value, a->value, a->value_len + 1);
    return 0;
}

int consul_parse_kv_list_delta(const char *body, size_t len, const struct consul_kv_list *prev,
                               const struct consul_kv_text *prev_text, struct consul_kv_list **out,
                               struct consul_kv_text **text_out, size_t *reused, char *err,
                               size_t errlen)
{
    struct consul_kv_text *t = calloc(1, sizeof(*t));
    struct consul_kv_list *l = calloc(1, sizeof(*l));
    int rc = -ENOMEM;

    *reused = 0;
    if (prev && prev_text && prev->n != prev_text->n)
        prev_text = NULL; /* not each other's: parse everything */
    if (!t || !l || !(t->body = malloc(len + 1)))
        goto fail;
    memcpy(t->body, body, len);
    t->body[len] = '\0';
    if ((rc = split_objects(t->body, len, t)) < 0) {
        if (rc == -ENOMEM)
            goto fail;
        /* not a plain array of objects: the whole parse says why */
        consul_kv_text_free(t);
        free(l);
        *text_out = NULL;
        return consul_parse_kv_list(body, len, out, err, errlen);
    }
    for (t->n_slots = 1; t->n_slots < 2 * t->n; t->n_slots *= 2)
        ;
    if (!(l->items = calloc(t->n ? t->n : 1, sizeof(*l->items))) ||
        !(t->hash = calloc(t->n ? t->n : 1, sizeof(*t->hash))) ||
        !(t->slot = calloc(t->n_slots, sizeof(*t->slot)))) {
        rc = -ENOMEM;
        goto fail;
    }
    for (size_t i = 0; i < t->n; i++) {
        const char *s = t->body + t->off[i];
        uint64_t h = text_hash(s, t->len[i]);
        ssize_t j = prev ? text_find(prev_text, s, t->len[i], h) : -1;
        t->hash[i] = h;
        if (j >= 0) {
            if ((rc = kv_copy(&prev->items[j], &l->items[i])) < 0)
                goto fail;
            (*reused)++;
        } else {
            char sub[200] = "";
            json_t *o = load(s, t->len[i], sub, sizeof(sub));
            rc = o ? kv_from_json(o, &l->items[i], sub, sizeof(sub)) : -EBADMSG;
            json_decref(o);
            if (rc) {
                fail(err, errlen, rc, "KV entry %zu: %s", i, sub);
                goto fail;
            }
        }
        l->n++;
        size_t k = (size_t)h & (t->n_slots - 1);
        while (t->slot[k])
            k = (k + 1) & (t->n_slots - 1);
        t->slot[k] = i + 1;
    }
    *out = l;
    *text_out = t;
    return 0;
fail:
    consul_kv_list_free(l);
    consul_kv_text_free(t);
    return rc;
}

static int key_fill(json_t *elem, void *item, char *err, size_t errlen)
{
    if (!json_is_string(elem))
        return fail(err, errlen, -EBADMSG, "not a string");
    char **key = item;
    *key = strndup(json_string_value(elem), json_string_length(elem));
    return *key ? 0 : -ENOMEM;
}

int consul_parse_keys(const char *body, size_t len, struct consul_key_list **out, char *err,
                      size_t errlen)
{
    struct consul_key_list *l = calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    int rc = parse_array(body, len, "keys", sizeof(*l->keys), key_fill, (void **)&l->keys, &l->n,
                         err, errlen);
    if (rc) {
        consul_key_list_free(l);
        return rc;
    }
    *out = l;
    return 0;
}

static void health_clear(struct consul_health_entry *e)
{
    free(e->node);
    free(e->node_address);
    free(e->service_id);
    free(e->service_name);
    free(e->service_address);
    json_string_array_free(e->tags);
    memset(e, 0, sizeof(*e));
}

static int health_from_json(json_t *o, struct consul_health_entry *e, char *err, size_t errlen)
{
    int64_t port = 0;
    json_t *checks = NULL;
    memset(e, 0, sizeof(*e));
    if (!json_is_object(o))
        return fail(err, errlen, -EBADMSG, "entry is not an object");
    /* json_util paths: "Service.Port" is o["Service"]["Port"] */
    if (dup_field(o, "Node.Node", true, &e->node, err, errlen) ||
        dup_field(o, "Node.Address", false, &e->node_address, err, errlen) ||
        dup_field(o, "Service.ID", true, &e->service_id, err, errlen) ||
        dup_field(o, "Service.Service", true, &e->service_name, err, errlen) ||
        dup_field(o, "Service.Address", false, &e->service_address, err, errlen) ||
        json_get_int(o, NULL, "Service.Port", &port, 0, 65535, false, err, errlen) < 0 ||
        json_get_string_array(o, NULL, "Service.Tags", &e->tags, &e->n_tags, false, err, errlen) <
            0 ||
        json_get_array(o, NULL, "Checks", &checks, false, err, errlen) < 0)
        goto bad;
    e->port = (int)port;
    if ((!e->service_address && !(e->service_address = strdup(""))) ||
        (!e->node_address && !(e->node_address = strdup(""))))
        goto bad;
    for (size_t i = 0; checks && i < json_array_size(checks); i++) {
        char where[32];
        const char *st = NULL;
        snprintf(where, sizeof(where), "Checks[%zu]", i);
        if (json_get_string(json_array_get(checks, i), where, "Status", &st, true, err, errlen) < 0)
            goto bad;
        enum consul_health_status h = CONSUL_HEALTH_CRITICAL; /* also maintenance, unknown */
        if (strcmp(st, "passing") == 0)
            h = CONSUL_HEALTH_PASSING;
        else if (strcmp(st, "warning") == 0)
            h = CONSUL_HEALTH_WARNING;
        if (h > e->status)
            e->status = h;
    }
    return 0;
bad:
    health_clear(e);
    return -EBADMSG;
}

static int health_fill(json_t *elem, void *item, char *err, size_t errlen)
{
    return health_from_json(elem, item, err, errlen);
}

int consul_parse_health(const char *body, size_t len, struct consul_health_list **out, char *err,
                        size_t errlen)
{
    struct consul_health_list *l = calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    int rc = parse_array(body, len, "health", sizeof(*l->items), health_fill, (void **)&l->items,
                         &l->n, err, errlen);
    if (rc) {
        consul_health_list_free(l);
        return rc;
    }
    *out = l;
    return 0;
}

int consul_parse_session_id(const char *body, size_t len, char **out, char *err, size_t errlen)
{
    *out = NULL;
    json_t *root = load(body, len, err, errlen);
    if (!root)
        return -EBADMSG;
    int rc = 0;
    char sub[200] = "";
    if (!json_is_object(root) || dup_field(root, "ID", true, out, sub, sizeof(sub)) || !**out) {
        free(*out);
        *out = NULL;
        rc = fail(err, errlen, -EBADMSG, "session answer without string ID");
    }
    json_decref(root);
    return rc;
}

static int kv_list_append(struct consul_kv_list *l, struct consul_kv *kv)
{
    struct consul_kv *items = realloc(l->items, (l->n + 1) * sizeof(*items));
    if (!items)
        return -ENOMEM;
    l->items = items;
    l->items[l->n++] = *kv;
    return 0;
}

int consul_parse_txn(const char *body, size_t len, size_t op_base, struct consul_txn_result *acc,
                     char *err, size_t errlen)
{
    int rc = 0;
    json_t *root = load(body, len, err, errlen);
    if (!root)
        return -EBADMSG;
    if (!json_is_object(root)) {
        rc = fail(err, errlen, -EBADMSG, "txn answer is not a JSON object");
        goto out;
    }
    json_t *results = json_object_get(root, "Results");
    json_t *errors = json_object_get(root, "Errors");
    if ((results && !json_is_null(results) && !json_is_array(results)) ||
        (errors && !json_is_null(errors) && !json_is_array(errors))) {
        rc = fail(err, errlen, -EBADMSG, "txn answer: Results/Errors are not arrays");
        goto out;
    }
    for (size_t i = 0; i < json_array_size(results); i++) {
        json_t *kvj = json_object_get(json_array_get(results, i), "KV");
        if (!kvj)
            continue; /* non-KV results (node, service) are not used */
        struct consul_kv kv;
        char sub[200] = "";
        rc = kv_from_json(kvj, &kv, sub, sizeof(sub));
        if (rc) {
            fail(err, errlen, rc, "txn result %zu: %s", i, sub);
            goto out;
        }
        rc = kv_list_append(&acc->results, &kv);
        if (rc) {
            kv_clear(&kv);
            goto out;
        }
    }
    for (size_t i = 0; i < json_array_size(errors); i++) {
        json_t *e = json_array_get(errors, i);
        json_t *idx = json_object_get(e, "OpIndex");
        json_t *what = json_object_get(e, "What");
        if (!json_is_integer(idx) || json_integer_value(idx) < 0 || !json_is_string(what)) {
            rc = fail(err, errlen, -EBADMSG, "txn error %zu lacks OpIndex/What", i);
            goto out;
        }
        struct consul_txn_error *arr =
            realloc(acc->errors, (acc->n_errors + 1) * sizeof(*acc->errors));
        if (!arr) {
            rc = -ENOMEM;
            goto out;
        }
        acc->errors = arr;
        arr[acc->n_errors].op_index = op_base + (size_t)json_integer_value(idx);
        arr[acc->n_errors].guard = false;
        arr[acc->n_errors].what = strndup(json_string_value(what), json_string_length(what));
        if (!arr[acc->n_errors].what) {
            rc = -ENOMEM;
            goto out;
        }
        acc->n_errors++;
    }
out:
    json_decref(root);
    return rc;
}

int consul_parse_bool(const char *body, size_t len, bool *out)
{
    while (len && (body[len - 1] == '\n' || body[len - 1] == ' ' || body[len - 1] == '\r'))
        len--;
    if (len == 4 && memcmp(body, "true", 4) == 0)
        *out = true;
    else if (len == 5 && memcmp(body, "false", 5) == 0)
        *out = false;
    else
        return -EBADMSG;
    return 0;
}

int consul_parse_index(const char *text, size_t len, uint64_t *out)
{
    size_t i = 0;
    while (i < len && (text[i] == ' ' || text[i] == '\t'))
        i++;
    while (len > i && (text[len - 1] == ' ' || text[len - 1] == '\t' || text[len - 1] == '\r' ||
                       text[len - 1] == '\n'))
        len--;
    if (i == len)
        return -EBADMSG;
    uint64_t v = 0;
    for (; i < len; i++) {
        if (text[i] < '0' || text[i] > '9')
            return -EBADMSG;
        unsigned d = (unsigned)(text[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -ERANGE;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

static char *base64_encode(const void *data, size_t len)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *p = data;
    char *out = malloc((len + 2) / 3 * 4 + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t w = (uint32_t)p[i] << 16;
        if (i + 1 < len)
            w |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < len)
            w |= p[i + 2];
        out[o++] = tbl[(w >> 18) & 63];
        out[o++] = tbl[(w >> 12) & 63];
        out[o++] = i + 1 < len ? tbl[(w >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? tbl[w & 63] : '=';
    }
    out[o] = '\0';
    return out;
}

static const char *verb_name(enum consul_txn_verb v)
{
    switch (v) {
    case CONSUL_TXN_SET:
        return "set";
    case CONSUL_TXN_CAS:
        return "cas";
    case CONSUL_TXN_GET:
        return "get";
    case CONSUL_TXN_DELETE:
        return "delete";
    case CONSUL_TXN_DELETE_CAS:
        return "delete-cas";
    case CONSUL_TXN_DELETE_TREE:
        return "delete-tree";
    case CONSUL_TXN_CHECK_INDEX:
        return "check-index";
    case CONSUL_TXN_CHECK_NOT_EXISTS:
        return "check-not-exists";
    case CONSUL_TXN_LOCK:
        return "lock";
    case CONSUL_TXN_UNLOCK:
        return "unlock";
    case CONSUL_TXN_CHECK_SESSION:
        return "check-session";
    }
    return NULL;
}

int consul_txn_encode(const struct consul_txn_op *ops, size_t n, char **out)
{
    int rc = -ENOMEM;
    if (n == 0 || n > CONSUL_TXN_MAX_OPS || !ops)
        return -EINVAL;
    json_t *arr = json_array();
    if (!arr)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const struct consul_txn_op *op = &ops[i];
        const char *verb = verb_name(op->verb);
        bool has_value =
            op->verb == CONSUL_TXN_SET || op->verb == CONSUL_TXN_CAS || op->verb == CONSUL_TXN_LOCK;
        bool has_index = op->verb == CONSUL_TXN_CAS || op->verb == CONSUL_TXN_DELETE_CAS ||
                         op->verb == CONSUL_TXN_CHECK_INDEX;
        bool has_session = op->verb == CONSUL_TXN_LOCK || op->verb == CONSUL_TXN_UNLOCK ||
                           op->verb == CONSUL_TXN_CHECK_SESSION;
        if (!verb || !op->key || (has_session && (!op->session || !*op->session)) ||
            (op->value_len && !op->value)) {
            rc = -EINVAL;
            goto out;
        }
        json_t *kv = json_pack("{s:s, s:s}", "Verb", verb, "Key", op->key);
        if (!kv || json_array_append_new(arr, json_pack("{s:o}", "KV", kv)) != 0)
            goto out;
        if (has_value) {
            char *b64 = base64_encode(op->value ? op->value : "", op->value_len);
            if (!b64 || json_object_set_new(kv, "Value", json_string(b64)) != 0) {
                free(b64);
                goto out;
            }
            free(b64);
            if (op->flags && json_object_set_new(kv, "Flags", json_integer((json_int_t)op->flags)))
                goto out;
        }
        if (has_index && json_object_set_new(kv, "Index", json_integer((json_int_t)op->index)))
            goto out;
        if (has_session && json_object_set_new(kv, "Session", json_string(op->session)))
            goto out;
    }
    *out = json_dumps(arr, JSON_COMPACT);
    rc = *out ? 0 : -ENOMEM;
out:
    json_decref(arr);
    return rc;
}

/* FNV-1a over length-prefixed fields, so ("ab","c") != ("a","bc"). */
static uint64_t fnv(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t l = len;
    for (size_t i = 0; i < sizeof(l); i++) {
        h ^= (l >> (8 * i)) & 0xff;
        h *= 0x100000001b3ULL;
    }
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static uint64_t fnv_str(uint64_t h, const char *s)
{
    return s ? fnv(h, s, strlen(s)) : fnv(h, "\xff", 1);
}

#define FNV_BASIS 0xcbf29ce484222325ULL

uint64_t consul_kv_list_hash(const struct consul_kv_list *l)
{
    uint64_t h = FNV_BASIS;
    if (!l)
        return h;
    h = fnv(h, &l->n, sizeof(l->n));
    for (size_t i = 0; i < l->n; i++) {
        const struct consul_kv *kv = &l->items[i];
        h = fnv_str(h, kv->key);
        h = kv->value ? fnv(h, kv->value, kv->value_len) : fnv(h, "\xff", 1);
        h = fnv(h, &kv->flags, sizeof(kv->flags));
        h = fnv_str(h, kv->session);
    }
    return h;
}

uint64_t consul_health_list_hash(const struct consul_health_list *l)
{
    uint64_t h = FNV_BASIS;
    if (!l)
        return h;
    h = fnv(h, &l->n, sizeof(l->n));
    for (size_t i = 0; i < l->n; i++) {
        const struct consul_health_entry *e = &l->items[i];
        h = fnv_str(h, e->node);
        h = fnv_str(h, e->node_address);
        h = fnv_str(h, e->service_id);
        h = fnv_str(h, e->service_name);
        h = fnv_str(h, e->service_address);
        h = fnv(h, &e->port, sizeof(e->port));
        h = fnv(h, &e->status, sizeof(e->status));
        h = fnv(h, &e->n_tags, sizeof(e->n_tags));
        for (size_t t = 0; t < e->n_tags; t++)
            h = fnv_str(h, e->tags[t]);
    }
    return h;
}

void consul_kv_list_free(struct consul_kv_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++)
        kv_clear(&l->items[i]);
    free(l->items);
    free(l);
}

void consul_key_list_free(struct consul_key_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++)
        free(l->keys[i]);
    free(l->keys);
    free(l);
}

void consul_health_list_free(struct consul_health_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++)
        health_clear(&l->items[i]);
    free(l->items);
    free(l);
}

void consul_txn_result_clear(struct consul_txn_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->results.n; i++)
        kv_clear(&r->results.items[i]);
    free(r->results.items);
    for (size_t i = 0; i < r->n_errors; i++)
        free(r->errors[i].what);
    free(r->errors);
    memset(r, 0, sizeof(*r));
}
