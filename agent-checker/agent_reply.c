/* SPDX-License-Identifier: Apache-2.0 */
#include "agent_reply.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const admin_names[AGENT_ADMIN_COUNT] = {"ready", "drain", "maint"};
static const char *const health_names[AGENT_HEALTH_COUNT] = {"up", "down", "stopped", "fail"};

const char *agent_admin_name(enum agent_admin admin)
{
    return (unsigned)admin < AGENT_ADMIN_COUNT ? admin_names[admin] : "?";
}

const char *agent_health_name(enum agent_health health)
{
    return (unsigned)health < AGENT_HEALTH_COUNT ? health_names[health] : "?";
}

int agent_admin_parse(const char *word, enum agent_admin *out)
{
    for (int i = 0; word && i < AGENT_ADMIN_COUNT; i++) {
        if (strcasecmp(word, admin_names[i]) == 0) {
            *out = (enum agent_admin)i;
            return 0;
        }
    }
    return -EINVAL;
}

int agent_health_parse(const char *word, enum agent_health *out)
{
    for (int i = 0; word && i < AGENT_HEALTH_COUNT; i++) {
        if (strcasecmp(word, health_names[i]) == 0) {
            *out = (enum agent_health)i;
            return 0;
        }
    }
    return -EINVAL;
}

/* Length of the longest prefix of s[0..len) that is at most max bytes and
 * does not end inside a UTF-8 sequence. */
static size_t utf8_cut(const unsigned char *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    size_t n = max;
    /* back off over continuation bytes to the lead byte of the cut char */
    while (n > 0 && (s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

/* Append src to dst[*len..cap-1) with control characters as spaces and
 * blank runs folded, never writing more than max bytes in total. */
static void text_append(char *dst, size_t *len, size_t max, const char *src)
{
    for (const unsigned char *p = (const unsigned char *)src; *p && *len < max; p++) {
        unsigned char c = *p;
        if (c < 0x20 || c == 0x7f)
            c = ' ';
        if (c == ' ' && (*len == 0 || dst[*len - 1] == ' '))
            continue;
        dst[(*len)++] = (char)c;
    }
}

size_t agent_text_build(const char *reason, const char *author, char *dst, size_t cap)
{
    /* Assemble generously (reasons from chat can be long), then cut once
     * on a character boundary so the author never splits a character. */
    char tmp[4 * AGENT_TEXT_MAX + 16];
    size_t len = 0, max = sizeof(tmp) - 1;

    if (cap == 0)
        return 0;
    if (reason)
        text_append(tmp, &len, max, reason);
    while (len > 0 && tmp[len - 1] == ' ')
        len--;
    if (author && *author) {
        size_t before = len;
        text_append(tmp, &len, max, len ? " (by " : "by ");
        size_t name_at = len;
        text_append(tmp, &len, max, author);
        while (len > name_at && tmp[len - 1] == ' ')
            len--;
        if (len == name_at)
            len = before; /* author was all blanks */
        else if (before)
            text_append(tmp, &len, max, ")");
    }
    while (len > 0 && tmp[len - 1] == ' ')
        len--;
    size_t limit = cap - 1 < AGENT_TEXT_MAX ? cap - 1 : AGENT_TEXT_MAX;
    len = utf8_cut((const unsigned char *)tmp, len, limit);
    while (len > 0 && tmp[len - 1] == ' ')
        len--;
    memcpy(dst, tmp, len);
    dst[len] = '\0';
    return len;
}

/* Append " <prefix><n><suffix>" for 0 <= n; callers leave room for it
 * (AGENT_REPLY_MAX covers every word plus the text). snprintf cost more
 * than the rest of the reply together. */
static size_t put_number(char *buf, size_t len, const char *prefix, unsigned n, char suffix)
{
    char digits[12];
    size_t nd = 0;
    buf[len++] = ' ';
    while (*prefix)
        buf[len++] = *prefix++;
    do {
        digits[nd++] = (char)('0' + n % 10);
        n /= 10;
    } while (n);
    while (nd)
        buf[len++] = digits[--nd];
    if (suffix)
        buf[len++] = suffix;
    return len;
}

int agent_reply_format(const struct agent_answer *a, char *buf, size_t cap)
{
    size_t len = 0;

    if (cap < AGENT_REPLY_MAX)
        return -ENOSPC;
    if ((unsigned)a->admin >= AGENT_ADMIN_COUNT || (unsigned)a->health >= AGENT_HEALTH_COUNT)
        return -EINVAL;

    /* Hand-rolled rather than snprintf: this runs once per check and is
     * the whole cost of an answer besides the syscalls. */
    const char *w = admin_names[a->admin];
    size_t wl = strlen(w);
    memcpy(buf, w, wl);
    len = wl;
    buf[len++] = ' ';
    w = health_names[a->health];
    wl = strlen(w);
    memcpy(buf + len, w, wl);
    len += wl;
    if (a->weight >= 0)
        len = put_number(buf, len, "",
                         (unsigned)(a->weight > AGENT_WEIGHT_MAX ? AGENT_WEIGHT_MAX : a->weight),
                         '%');
    if (a->maxconn >= 0)
        len = put_number(buf, len, "maxconn:", (unsigned)a->maxconn, '\0');
    buf[len++] = ' ';
    buf[len++] = '#';
    /* Re-sanitise: text is usually pre-built by agent_text_build, but this
     * function must be safe for any input (the fuzzers call it). The same
     * rules as agent_text_build(text, NULL), applied in place: one byte
     * beyond AGENT_TEXT_MAX is all utf8_cut needs to see where to cut. */
    size_t start = len, tl = 0;
    if (a->text)
        text_append(buf + start, &tl, AGENT_TEXT_MAX + 1, a->text);
    while (tl > 0 && buf[start + tl - 1] == ' ')
        tl--;
    tl = utf8_cut((const unsigned char *)buf + start, tl, AGENT_TEXT_MAX);
    while (tl > 0 && buf[start + tl - 1] == ' ')
        tl--;
    len += tl;
    buf[len++] = '\n';
    buf[len] = '\0';
    return (int)len;
}

static bool is_sep(char c)
{
    return c == ' ' || c == '\t' || c == ',';
}

int agent_reply_parse(const char *line, struct agent_answer *out, char *textbuf, size_t cap)
{
    char word[64];
    const char *p = line;

    *out = (struct agent_answer){AGENT_ADMIN_READY, AGENT_HEALTH_UP, -1, -1, ""};
    if (cap)
        textbuf[0] = '\0';
    out->text = textbuf;
    while (p && *p && *p != '\n' && *p != '\r') {
        if (is_sep(*p)) {
            p++;
            continue;
        }
        if (*p == '#') {
            const char *end = p + 1 + strcspn(p + 1, "\r\n");
            char raw[AGENT_REPLY_MAX];
            size_t n = (size_t)(end - p - 1);
            if (n >= sizeof(raw))
                n = sizeof(raw) - 1;
            memcpy(raw, p + 1, n);
            raw[n] = '\0';
            agent_text_build(raw, NULL, textbuf, cap);
            break;
        }
        size_t n = 0;
        while (p[n] && !is_sep(p[n]) && p[n] != '\n' && p[n] != '\r' && p[n] != '#')
            n++;
        if (n >= sizeof(word))
            return -EINVAL;
        memcpy(word, p, n);
        word[n] = '\0';
        p += n;

        char *end;
        if (agent_admin_parse(word, &out->admin) == 0 ||
            agent_health_parse(word, &out->health) == 0)
            continue;
        if (word[0] >= '0' && word[0] <= '9' && n > 1 && word[n - 1] == '%') {
            long v = strtol(word, &end, 10);
            if (*end != '%' || v > AGENT_WEIGHT_MAX)
                return -EINVAL;
            out->weight = (int)v;
            continue;
        }
        if (strncasecmp(word, "maxconn:", 8) == 0 && word[8] >= '0' && word[8] <= '9') {
            long v = strtol(word + 8, &end, 10);
            if (*end || v > 1000000)
                return -EINVAL;
            out->maxconn = (int)v;
            continue;
        }
        return -EINVAL;
    }
    return 0;
}

/* Character classes of a request, one table lookup per byte (the request
 * parser runs once per check). HAProxy proxy and server names: letters,
 * digits, '-', '_', '.', ':'; addresses: hex digits, '.', ':', '[', ']'. */
enum { CC_KEY = 1, CC_ADDR = 2, CC_BLANK = 4, CC_SLASH = 8 };
#define KEY(c)  [c] = CC_KEY
#define BOTH(c) [c] = CC_KEY | CC_ADDR
/* one row per kind of character */
/* clang-format off */
static const unsigned char char_class[256] = {
    BOTH('0'), BOTH('1'), BOTH('2'), BOTH('3'), BOTH('4'), BOTH('5'), BOTH('6'), BOTH('7'),
    BOTH('8'), BOTH('9'),
    BOTH('a'), BOTH('b'), BOTH('c'), BOTH('d'), BOTH('e'), BOTH('f'),
    BOTH('A'), BOTH('B'), BOTH('C'), BOTH('D'), BOTH('E'), BOTH('F'),
    BOTH('.'), BOTH(':'),
    KEY('g'), KEY('h'), KEY('i'), KEY('j'), KEY('k'), KEY('l'), KEY('m'), KEY('n'), KEY('o'),
    KEY('p'), KEY('q'), KEY('r'), KEY('s'), KEY('t'), KEY('u'), KEY('v'), KEY('w'), KEY('x'),
    KEY('y'), KEY('z'),
    KEY('G'), KEY('H'), KEY('I'), KEY('J'), KEY('K'), KEY('L'), KEY('M'), KEY('N'), KEY('O'),
    KEY('P'), KEY('Q'), KEY('R'), KEY('S'), KEY('T'), KEY('U'), KEY('V'), KEY('W'), KEY('X'),
    KEY('Y'), KEY('Z'),
    KEY('-'), KEY('_'),
    ['['] = CC_ADDR, [']'] = CC_ADDR,
    [' '] = CC_BLANK, ['\t'] = CC_BLANK,
    ['/'] = CC_SLASH,
};
/* clang-format on */
#undef KEY
#undef BOTH

/* The token tok[0..n) holding a '/' is a key: exactly "<name>/<name>",
 * both names non-empty. Else it is an address. Classes of every byte but
 * the slashes ANDed in `all`; the slash count and the last one's place. */
static bool valid_token(size_t n, unsigned all, size_t slashes, size_t slash_at)
{
    if (slashes)
        return slashes == 1 && slash_at > 0 && slash_at + 1 < n && (all & CC_KEY);
    return (all & CC_ADDR) != 0;
}

int agent_request_parse(const char *buf, size_t len, struct agent_request *out)
{
    out->key[0] = '\0';
    out->address[0] = '\0';
    if (len > AGENT_REQUEST_MAX)
        return -EINVAL;
    const char *nl = memchr(buf, '\n', len);
    if (nl)
        len = (size_t)(nl - buf);
    if (len > 0 && buf[len - 1] == '\r')
        len--;

    const unsigned char *u = (const unsigned char *)buf;
    size_t i = 0;
    int tokens = 0;
    while (i < len) {
        if (char_class[u[i]] & CC_BLANK) {
            i++;
            continue;
        }
        size_t start = i, slashes = 0, slash_at = 0;
        unsigned all = CC_KEY | CC_ADDR;
        for (; i < len; i++) {
            unsigned cc = char_class[u[i]];
            if (cc & CC_BLANK)
                break;
            if (cc & CC_SLASH) {
                slashes++;
                slash_at = i - start;
            } else {
                all &= cc;
            }
        }
        size_t n = i - start;
        if (++tokens > 2 || !valid_token(n, all, slashes, slash_at))
            goto garbage;
        char *field = slashes ? out->key : out->address;
        if (field[0] || n > (slashes ? AGENT_KEY_MAX : AGENT_ADDRESS_MAX))
            goto garbage;
        memcpy(field, buf + start, n);
        field[n] = '\0';
    }
    if (tokens == 0)
        goto garbage;
    return 0;
garbage:
    out->key[0] = '\0';
    out->address[0] = '\0';
    return -EINVAL;
}
