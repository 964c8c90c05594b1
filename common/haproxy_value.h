/* SPDX-License-Identifier: Apache-2.0 */
/*
 * haproxy_value: what a value from outside (a Consul KV field, a Kubernetes
 * name) may look like once it is written into an HAProxy configuration
 * file, per context. Every template interpolation goes through exactly one
 * kind; the kind decides which bytes are allowed and how the value is
 * written (canonical IP text, brackets around IPv6, strong quoting).
 *
 * Common to every kind: no control characters (NUL, CR, LF, TAB, 0x01-0x1f,
 * 0x7f), so a value can never end a config line and start a directive of
 * its own. Apart from `quoted`, no kind allows a space, a quote, a backslash,
 * '#' (comment) or '$' (environment expansion inside double quotes), so a
 * value is always exactly one HAProxy word.
 *
 * Kinds (names as written in templates, see docs/templates.md):
 *   word      default: printable ASCII, no space " ' \ # $; may be empty
 *   name      proxy/server/ACL identifier: [A-Za-z0-9._:-], 1..127 bytes
 *   ip        IPv4 or IPv6 literal, written in canonical form
 *   addr      like ip, IPv6 written as [..] so ":port" may follow
 *   port      decimal 1..65535
 *   uint      decimal 0..2^63-1, no sign, no leading zero
 *   int       like uint with an optional leading '-'
 *   weight    decimal 0..256 (HAProxy server weight)
 *   duration  HAProxy time: digits with optional unit us|ms|s|m|h|d
 *   host      DNS host name (RFC 1123 labels), for Host/SNI matching
 *   path      URL path: starts with '/', RFC 3986 path/query characters
 *   file      absolute file system path: [A-Za-z0-9._/+@=,:-], no ".."
 *   quoted    any text without control characters, written in single
 *             quotes (HAProxy strong quoting; ' becomes '\'')
 *
 * HAPROXY_VALUE_UNCHECKED writes the value as it is. It has no name, so a
 * template cannot select it; only a caller may make it the default (tests,
 * output that is not HAProxy configuration). No state, no allocation.
 */
#ifndef DROVER_HAPROXY_VALUE_H
#define DROVER_HAPROXY_VALUE_H

#include <stddef.h>

enum haproxy_value_kind {
    HAPROXY_VALUE_WORD = 0,
    HAPROXY_VALUE_NAME,
    HAPROXY_VALUE_IP,
    HAPROXY_VALUE_ADDR,
    HAPROXY_VALUE_PORT,
    HAPROXY_VALUE_UINT,
    HAPROXY_VALUE_INT,
    HAPROXY_VALUE_WEIGHT,
    HAPROXY_VALUE_DURATION,
    HAPROXY_VALUE_HOST,
    HAPROXY_VALUE_PATH,
    HAPROXY_VALUE_FILE,
    HAPROXY_VALUE_QUOTED,
    HAPROXY_VALUE_UNCHECKED, /* not selectable by name */
};

/* Longest name a kind may have, as a bound for parsers. */
#define HAPROXY_VALUE_NAME_MAX 127

/* Map a kind name (len bytes, not NUL-terminated) to its kind: 0, or
 * -EINVAL for an unknown name (including the unnamed UNCHECKED kind). */
int haproxy_value_kind_from_name(const char *name, size_t len, enum haproxy_value_kind *out);

/* Name of a kind ("unchecked" for HAPROXY_VALUE_UNCHECKED); static string. */
const char *haproxy_value_kind_name(enum haproxy_value_kind kind);

/* Bytes haproxy_value_format may write for a value of len bytes, including
 * the terminating NUL. */
size_t haproxy_value_format_size(size_t len);

/* Check `value` (len bytes; may contain NUL, which is refused) for `kind`
 * and write its configuration text to out (cap bytes, NUL-terminated),
 * setting *out_len. Returns 0; -EINVAL if the value is refused, with *why
 * set to a static reason ("contains a newline", "not a port number", ...);
 * -ENOSPC if cap is smaller than haproxy_value_format_size(len). */
int haproxy_value_format(enum haproxy_value_kind kind, const char *value, size_t len, char *out,
                         size_t cap, size_t *out_len, const char **why);

/* Only the check of haproxy_value_format: 0 or -EINVAL with *why. */
int haproxy_value_check(enum haproxy_value_kind kind, const char *value, size_t len,
                        const char **why);

#endif
