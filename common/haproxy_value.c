/* SPDX-License-Identifier: Apache-2.0 */
/*
 * haproxy_value: per-context validation and writing of values that reach
 * HAProxy configuration. See haproxy_value.h for the kinds and their rules.
 * The rules are deliberately narrower than what HAProxy's parser accepts:
 * a value that needs anything unusual must be quoted by the template.
 */
#include "haproxy_value.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "hex.h"

static const char *const kind_names[] = {
    [HAPROXY_VALUE_WORD] = "word",
    [HAPROXY_VALUE_NAME] = "name",
    [HAPROXY_VALUE_IP] = "ip",
    [HAPROXY_VALUE_ADDR] = "addr",
    [HAPROXY_VALUE_PORT] = "port",
    [HAPROXY_VALUE_UINT] = "uint",
    [HAPROXY_VALUE_INT] = "int",
    [HAPROXY_VALUE_WEIGHT] = "weight",
    [HAPROXY_VALUE_DURATION] = "duration",
    [HAPROXY_VALUE_HOST] = "host",
    [HAPROXY_VALUE_PATH] = "path",
    [HAPROXY_VALUE_FILE] = "file",
    [HAPROXY_VALUE_QUOTED] = "quoted",
    [HAPROXY_VALUE_UNCHECKED] = "unchecked",
};

#define NAME_MAX_LEN 127
#define HOST_MAX_LEN 253
#define PATH_MAX_LEN 2048
#define FILE_MAX_LEN 4096

int haproxy_value_kind_from_name(const char *name, size_t len, enum haproxy_value_kind *out)
{
    if (!name || !out)
        return -EINVAL;
    /* UNCHECKED is excluded on purpose: templates must not opt out. */
    for (int k = HAPROXY_VALUE_WORD; k < HAPROXY_VALUE_UNCHECKED; k++) {
        if (strlen(kind_names[k]) == len && memcmp(kind_names[k], name, len) == 0) {
            *out = (enum haproxy_value_kind)k;
            return 0;
        }
    }
    return -EINVAL;
}

const char *haproxy_value_kind_name(enum haproxy_value_kind kind)
{
    if ((unsigned)kind > HAPROXY_VALUE_UNCHECKED)
        return "?";
    return kind_names[kind];
}

size_t haproxy_value_format_size(size_t len)
{
    /* quoted is the widest: 'x' plus '\'' (4 bytes) per quote, plus NUL;
     * canonical IPv6 text with brackets fits in 64. */
    size_t n = len * 4 + 3;
    return n < 64 ? 64 : n;
}

/* The rule shared by every checked kind: one config line stays one line. */
static int check_controls(const char *v, size_t len, const char **why)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c == '\n') {
            *why = "contains a newline";
            return -EINVAL;
        }
        if (c == '\r') {
            *why = "contains a carriage return";
            return -EINVAL;
        }
        if (c == 0) {
            *why = "contains a NUL byte";
            return -EINVAL;
        }
        if (c < 0x20 || c == 0x7f) {
            *why = "contains a control character";
            return -EINVAL;
        }
    }
    return 0;
}

/* One unquoted HAProxy word that means the same inside double quotes. */
static int check_word(const char *v, size_t len, const char **why)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c == ' ') {
            *why = "contains a space (use the quoted filter for free text)";
            return -EINVAL;
        }
        if (c >= 0x80) {
            *why = "contains a non-ASCII byte";
            return -EINVAL;
        }
        if (c == '"' || c == '\'' || c == '\\') {
            *why = "contains a quote or backslash";
            return -EINVAL;
        }
        if (c == '#') {
            *why = "contains '#', which would start a comment";
            return -EINVAL;
        }
        if (c == '$') {
            *why = "contains '$', which HAProxy expands inside double quotes";
            return -EINVAL;
        }
    }
    return 0;
}

static bool is_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static int check_name(const char *v, size_t len, const char **why)
{
    if (len == 0) {
        *why = "is empty";
        return -EINVAL;
    }
    if (len > NAME_MAX_LEN) {
        *why = "is longer than 127 bytes";
        return -EINVAL;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];
        if (!is_alnum(c) && c != '.' && c != '_' && c != ':' && c != '-') {
            *why = "is not an identifier ([A-Za-z0-9._:-] only)";
            return -EINVAL;
        }
    }
    return 0;
}

/* Decimal without sign or leading zero, at most INT64_MAX. */
static int parse_decimal(const char *v, size_t len, uint64_t *out)
{
    uint64_t n = 0;

    if (len == 0 || len > 19 || (len > 1 && v[0] == '0'))
        return -EINVAL;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -EINVAL;
        n = n * 10 + (uint64_t)(v[i] - '0');
    }
    if (n > (uint64_t)INT64_MAX)
        return -EINVAL;
    *out = n;
    return 0;
}

static int check_number(enum haproxy_value_kind kind, const char *v, size_t len, const char **why)
{
    uint64_t n;

    switch (kind) {
    case HAPROXY_VALUE_PORT:
        if (parse_decimal(v, len, &n) < 0 || n < 1 || n > 65535) {
            *why = "is not a port number (1-65535)";
            return -EINVAL;
        }
        return 0;
    case HAPROXY_VALUE_WEIGHT:
        if (parse_decimal(v, len, &n) < 0 || n > 256) {
            *why = "is not a server weight (0-256)";
            return -EINVAL;
        }
        return 0;
    case HAPROXY_VALUE_INT:
        if (len > 0 && v[0] == '-') {
            v++;
            len--;
            /* "-0" is refused along with other non-canonical forms */
            if (parse_decimal(v, len, &n) < 0 || n == 0) {
                *why = "is not a decimal integer";
                return -EINVAL;
            }
            return 0;
        }
        if (parse_decimal(v, len, &n) < 0) {
            *why = "is not a decimal integer";
            return -EINVAL;
        }
        return 0;
    default:
        if (parse_decimal(v, len, &n) < 0) {
            *why = "is not an unsigned decimal integer";
            return -EINVAL;
        }
        return 0;
    }
}

/* HAProxy time format; the number must fit HAProxy's 32-bit timers. */
static int check_duration(const char *v, size_t len, const char **why)
{
    size_t digits = 0;
    uint64_t n;

    while (digits < len && v[digits] >= '0' && v[digits] <= '9')
        digits++;
    if (digits == 0 || digits > 10 || parse_decimal(v, digits, &n) < 0 || n > INT32_MAX) {
        *why = "is not a duration (number with unit us, ms, s, m, h or d)";
        return -EINVAL;
    }
    const char *unit = v + digits;
    size_t ulen = len - digits;
    static const char *const units[] = {"", "us", "ms", "s", "m", "h", "d"};
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strlen(units[i]) == ulen && memcmp(units[i], unit, ulen) == 0)
            return 0;
    }
    *why = "is not a duration (number with unit us, ms, s, m, h or d)";
    return -EINVAL;
}

static int check_host(const char *v, size_t len, const char **why)
{
    size_t label = 0;

    if (len == 0 || len > HOST_MAX_LEN) {
        *why = "is not a host name (1-253 bytes)";
        return -EINVAL;
    }
    for (size_t i = 0; i <= len; i++) {
        if (i == len || v[i] == '.') {
            if (label == 0 || label > 63 || v[i - 1] == '-' || v[i - label] == '-') {
                *why = "is not a host name (labels of 1-63 letters, digits, inner '-')";
                return -EINVAL;
            }
            label = 0;
            continue;
        }
        if (!is_alnum((unsigned char)v[i]) && v[i] != '-') {
            *why = "is not a host name (labels of 1-63 letters, digits, inner '-')";
            return -EINVAL;
        }
        label++;
    }
    return 0;
}

static int check_path(const char *v, size_t len, const char **why)
{
    if (len == 0 || v[0] != '/' || len > PATH_MAX_LEN) {
        *why = "is not a URL path (must start with '/', at most 2048 bytes)";
        return -EINVAL;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c == '%') {
            if (i + 2 >= len || hex_digit_value(v[i + 1]) < 0 || hex_digit_value(v[i + 2]) < 0) {
                *why = "has a '%' not followed by two hex digits";
                return -EINVAL;
            }
            i += 2;
            continue;
        }
        if (is_alnum(c) || strchr("-._~!&()*+,;=:@/?", c))
            continue;
        *why = "has a character not allowed in a URL path (percent-encode it)";
        return -EINVAL;
    }
    return 0;
}

static int check_file(const char *v, size_t len, const char **why)
{
    if (len == 0 || v[0] != '/' || len > FILE_MAX_LEN) {
        *why = "is not an absolute file path";
        return -EINVAL;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];
        if (!is_alnum(c) && !strchr("._/+@=,:-", c)) {
            *why = "has a character not allowed in a file path ([A-Za-z0-9._/+@=,:-])";
            return -EINVAL;
        }
        if (c == '/' && len - i >= 3 && v[i + 1] == '.' && v[i + 2] == '.' &&
            (i + 3 == len || v[i + 3] == '/')) {
            *why = "contains a '..' component";
            return -EINVAL;
        }
    }
    return 0;
}

/* Canonical text of an IP literal; brackets around IPv6 when asked. */
static int format_ip(const char *v, size_t len, bool brackets, char *out, size_t cap,
                     size_t *out_len, const char **why)
{
    char in[INET6_ADDRSTRLEN];
    char text[INET6_ADDRSTRLEN];
    unsigned char bin[sizeof(struct in6_addr)];
    int family = AF_INET;

    if (len == 0 || len >= sizeof(in)) {
        *why = "is not an IPv4 or IPv6 address";
        return -EINVAL;
    }
    memcpy(in, v, len);
    in[len] = '\0';
    if (inet_pton(AF_INET, in, bin) != 1) {
        family = AF_INET6;
        if (inet_pton(AF_INET6, in, bin) != 1) {
            *why = "is not an IPv4 or IPv6 address";
            return -EINVAL;
        }
    }
    if (!inet_ntop(family, bin, text, sizeof(text))) {
        *why = "is not an IPv4 or IPv6 address";
        return -EINVAL;
    }
    size_t n = strlen(text);
    bool wrap = brackets && family == AF_INET6;
    if (n + (wrap ? 2 : 0) + 1 > cap)
        return -ENOSPC;
    size_t o = 0;
    if (wrap)
        out[o++] = '[';
    memcpy(out + o, text, n);
    o += n;
    if (wrap)
        out[o++] = ']';
    out[o] = '\0';
    *out_len = o;
    return 0;
}

/* HAProxy strong quoting: nothing inside '...' is interpreted, so only
 * the quote itself needs care; close, escape it, reopen (HAProxy joins
 * adjacent quoted and escaped parts into one word). */
static size_t format_quoted(const char *v, size_t len, char *out)
{
    size_t o = 0;

    out[o++] = '\'';
    for (size_t i = 0; i < len; i++) {
        if (v[i] == '\'') {
            memcpy(out + o, "'\\''", 4);
            o += 4;
        } else {
            out[o++] = v[i];
        }
    }
    out[o++] = '\'';
    out[o] = '\0';
    return o;
}

static int check_kind(enum haproxy_value_kind kind, const char *v, size_t len, const char **why)
{
    int rc = check_controls(v, len, why);
    if (rc < 0)
        return rc;
    switch (kind) {
    case HAPROXY_VALUE_WORD:
        return check_word(v, len, why);
    case HAPROXY_VALUE_NAME:
        return check_name(v, len, why);
    case HAPROXY_VALUE_PORT:
    case HAPROXY_VALUE_UINT:
    case HAPROXY_VALUE_INT:
    case HAPROXY_VALUE_WEIGHT:
        return check_number(kind, v, len, why);
    case HAPROXY_VALUE_DURATION:
        return check_duration(v, len, why);
    case HAPROXY_VALUE_HOST:
        return check_host(v, len, why);
    case HAPROXY_VALUE_PATH:
        return check_path(v, len, why);
    case HAPROXY_VALUE_FILE:
        return check_file(v, len, why);
    case HAPROXY_VALUE_QUOTED:
    case HAPROXY_VALUE_IP: /* checked while formatting */
    case HAPROXY_VALUE_ADDR:
        return 0;
    default:
        *why = "has an unknown value kind";
        return -EINVAL;
    }
}

int haproxy_value_format(enum haproxy_value_kind kind, const char *value, size_t len, char *out,
                         size_t cap, size_t *out_len, const char **why)
{
    const char *dummy;
    int rc;

    if (!why)
        why = &dummy;
    *why = NULL;
    if ((!value && len) || !out || !out_len)
        return -EINVAL;
    if (kind == HAPROXY_VALUE_UNCHECKED) {
        if (cap < len + 1)
            return -ENOSPC;
        if (len)
            memcpy(out, value, len);
        out[len] = '\0';
        *out_len = len;
        return 0;
    }
    if (cap < haproxy_value_format_size(len))
        return -ENOSPC;
    rc = check_kind(kind, value, len, why);
    if (rc < 0)
        return rc;
    switch (kind) {
    case HAPROXY_VALUE_IP:
    case HAPROXY_VALUE_ADDR:
        return format_ip(value, len, kind == HAPROXY_VALUE_ADDR, out, cap, out_len, why);
    case HAPROXY_VALUE_QUOTED:
        *out_len = format_quoted(value, len, out);
        return 0;
    default:
        if (len)
            memcpy(out, value, len);
        out[len] = '\0';
        *out_len = len;
        return 0;
    }
}

int haproxy_value_check(enum haproxy_value_kind kind, const char *value, size_t len,
                        const char **why)
{
    char buf[64];
    size_t n;
    const char *dummy;
    int rc;

    if (!why)
        why = &dummy;
    *why = NULL;
    if (!value && len)
        return -EINVAL;
    if (kind == HAPROXY_VALUE_UNCHECKED)
        return 0;
    if (kind == HAPROXY_VALUE_IP || kind == HAPROXY_VALUE_ADDR) {
        rc = check_controls(value, len, why);
        if (rc < 0)
            return rc;
        return format_ip(value, len, false, buf, sizeof(buf), &n, why) == 0 ? 0 : -EINVAL;
    }
    return check_kind(kind, value, len, why);
}
