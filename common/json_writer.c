/* SPDX-License-Identifier: Apache-2.0 */
/*
 * json_writer: compact JSON into a buffer, byte-identical to jansson's
 * dump for the same value. See json_writer.h.
 */
#include "json_writer.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void json_writer_init(struct json_writer *w)
{
    memset(w, 0, sizeof(*w));
}

static bool reserve(struct json_writer *w, size_t more)
{
    if (w->failed)
        return false;
    if (w->len + more + 1 <= w->cap)
        return true;
    size_t cap = w->cap ? w->cap : 256;
    while (cap < w->len + more + 1)
        cap *= 2;
    char *b = realloc(w->buf, cap);
    if (!b) {
        w->failed = true;
        return false;
    }
    w->buf = b;
    w->cap = cap;
    return true;
}

void json_writer_raw(struct json_writer *w, const char *text, size_t len)
{
    if (!reserve(w, len))
        return;
    memcpy(w->buf + w->len, text, len);
    w->len += len;
}

/* Length of the valid UTF-8 sequence at s (1-4), or 0: the rules of
 * jansson's utf8 checks (no overlongs, no surrogates, at most U+10FFFF). */
static size_t utf8_seq(const unsigned char *s)
{
    unsigned char c = s[0];
    size_t n;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

/* The escape of an ASCII byte, or NULL when it is written as is. */
static const char *escape_of(unsigned char c, char tmp[7])
{
    switch (c) {
    case '"':
        return "\\\"";
    case '\\':
        return "\\\\";
    case '\b':
        return "\\b";
    case '\f':
        return "\\f";
    case '\n':
        return "\\n";
    case '\r':
        return "\\r";
    case '\t':
        return "\\t";
    default:
        break;
    }
    if (c >= 0x20)
        return NULL;
    snprintf(tmp, 7, "\\u%04X", c);
    return tmp;
}

void json_writer_string(struct json_writer *w, const char *s)
{
    if (!s) {
        w->failed = true;
        return;
    }
    json_writer_raw(w, "\"", 1);
    const unsigned char *p = (const unsigned char *)s;
    const unsigned char *run = p; /* start of bytes not yet copied */
    while (*p && !w->failed) {
        size_t n = utf8_seq(p);
        if (n == 0) {
            w->failed = true;
            return;
        }
        char tmp[7];
        const char *esc = n == 1 ? escape_of(*p, tmp) : NULL;
        if (esc) {
            json_writer_raw(w, (const char *)run, (size_t)(p - run));
            json_writer_raw(w, esc, strlen(esc));
            run = p + 1;
        }
        p += n;
    }
    json_writer_raw(w, (const char *)run, (size_t)(p - run));
    json_writer_raw(w, "\"", 1);
}

void json_writer_int(struct json_writer *w, int64_t v)
{
    char num[24];
    int n = snprintf(num, sizeof(num), "%" PRId64, v);
    json_writer_raw(w, num, (size_t)n);
}

void json_writer_bool(struct json_writer *w, bool v)
{
    if (v)
        json_writer_raw(w, "true", 4);
    else
        json_writer_raw(w, "false", 5);
}

void json_writer_value(struct json_writer *w, const json_t *v)
{
    if (json_is_object(v) && json_object_size(v) == 0) {
        json_writer_raw(w, "{}", 2); /* the common case: no labels */
        return;
    }
    char *text = v ? json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY) : NULL;
    if (!text) {
        w->failed = true;
        return;
    }
    json_writer_raw(w, text, strlen(text));
    free(text);
}

char *json_writer_take(struct json_writer *w)
{
    char *out = NULL;
    if (!w->failed && reserve(w, 0)) {
        w->buf[w->len] = '\0';
        out = w->buf;
        w->buf = NULL;
    }
    free(w->buf);
    json_writer_init(w);
    return out;
}
