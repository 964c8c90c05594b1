/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kv_field: typed readers of KV value fields shared by the kv_* schema
 * modules. See kv_field.h.
 */
#include "kv_field.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "config.h"
#include "errmsg.h"
#include "json_util.h"
#include "timefmt.h"

/* A string field checked against a value kind; *out is a malloc'd copy of
 * the canonical text (NULL when absent and optional). 1, 0 or -EINVAL. */
int kv_get_kind(const json_t *obj, const char *where, const char *field,
                enum haproxy_value_kind kind, bool required, char **out, char *err, size_t errlen)
{
    const char *s = NULL, *why = NULL;
    int rc = json_get_string(obj, where, field, &s, required, err, errlen);
    if (rc <= 0)
        return rc;
    size_t len = strlen(s);
    size_t cap = haproxy_value_format_size(len);
    char *buf = malloc(cap);
    size_t olen;
    if (!buf)
        return -ENOMEM;
    if (haproxy_value_format(kind, s, len, buf, cap, &olen, &why) < 0) {
        errmsg_set(err, errlen, "%s%s%s: %s (expected %s)", where ? where : "", where ? "." : "",
                   field, why, haproxy_value_kind_name(kind));
        free(buf);
        return -EINVAL;
    }
    /* ip: canonical text without brackets; others unchanged */
    *out = buf;
    return 1;
}

int kv_get_duration(const json_t *obj, const char *where, const char *field, int64_t *out,
                    char *err, size_t errlen)
{
    const char *s;
    int rc = json_get_string(obj, where, field, &s, false, err, errlen);
    if (rc <= 0)
        return rc;
    int64_t ms;
    if (config_parse_duration_ms(s, &ms) < 0 || ms <= 0 || ms > INT32_MAX) {
        errmsg_set(err, errlen, "%s%s%s: bad duration '%.40s' (expected e.g. \"200ms\", \"2s\")",
                   where ? where : "", where ? "." : "", field, s);
        return -EINVAL;
    }
    *out = ms;
    return 1;
}

int kv_get_one_of(const json_t *obj, const char *where, const char *field,
                  const char *const *allowed, const char *def, char **out, char *err, size_t errlen)
{
    const char *s = def;
    int rc = json_get_string(obj, where, field, &s, false, err, errlen);
    if (rc < 0)
        return rc;
    for (size_t i = 0; allowed[i]; i++) {
        if (strcmp(s, allowed[i]) == 0) {
            *out = strdup(s);
            return *out ? 1 : -ENOMEM;
        }
    }
    errmsg_set(err, errlen, "%s%s%s: '%.40s' is not one of the allowed values", where ? where : "",
               where ? "." : "", field, s);
    return -EINVAL;
}

/* "1.2.3.4:80" or "[::1]:80" into a canonical address and port. */
int kv_parse_hostport(const char *text, char **addr, uint16_t *port)
{
    const char *colon, *a = text;
    size_t alen;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close || close[1] != ':')
            return -EINVAL;
        a = text + 1;
        alen = (size_t)(close - a);
        colon = close + 1;
    } else {
        colon = strrchr(text, ':');
        if (!colon || memchr(text, ':', (size_t)(colon - text)))
            return -EINVAL;
        alen = (size_t)(colon - text);
    }
    const char *why;
    char pbuf[8];
    size_t plen = strlen(colon + 1);
    if (plen == 0 || plen >= sizeof(pbuf) ||
        haproxy_value_check(HAPROXY_VALUE_PORT, colon + 1, plen, &why) < 0)
        return -EINVAL;
    char *buf = malloc(haproxy_value_format_size(alen));
    size_t olen;
    if (!buf)
        return -ENOMEM;
    if (haproxy_value_format(HAPROXY_VALUE_IP, a, alen, buf, haproxy_value_format_size(alen), &olen,
                             &why) < 0) {
        free(buf);
        return -EINVAL;
    }
    *addr = buf;
    *port = (uint16_t)atoi(colon + 1);
    return 0;
}

/* Iterate a JSON array field; returns the array (borrowed) or NULL and the
 * count in *n. rc as json_get_array. */
int kv_get_list(const json_t *obj, const char *where, const char *field, bool required,
                json_t **arr, size_t *n, char *err, size_t errlen)
{
    *arr = NULL;
    *n = 0;
    int rc = json_get_array(obj, where, field, arr, required, err, errlen);
    if (rc <= 0)
        return rc;
    *n = json_array_size(*arr);
    if (*n > KV_MAX_ITEMS) {
        errmsg_set(err, errlen, "%s%s%s: more than %d elements", where ? where : "",
                   where ? "." : "", field, KV_MAX_ITEMS);
        return -EINVAL;
    }
    return 1;
}

int kv_get_expiry_fields(const json_t *root, int64_t *expires, char **author, char **reason,
                         char *err, size_t errlen)
{
    const char *s = NULL;
    int rc;
    if ((rc = json_get_string(root, NULL, "expires", &s, false, err, errlen)) < 0)
        return rc;
    if (rc == 1 && timefmt_parse_rfc3339(s, expires) < 0) {
        errmsg_set(err, errlen, "expires: '%.40s' is not an RFC 3339 time", s);
        return -EINVAL;
    }
    s = NULL;
    if ((rc = json_get_string(root, NULL, "author", &s, false, err, errlen)) < 0)
        return rc;
    if (s && !(*author = strdup(s)))
        return -ENOMEM;
    s = NULL;
    if ((rc = json_get_string(root, NULL, "reason", &s, false, err, errlen)) < 0)
        return rc;
    if (s && !(*reason = strdup(s)))
        return -ENOMEM;
    return 0;
}

int kv_ip_canonical(const char *text, char *out, size_t outlen)
{
    unsigned char bin[16];

    if (inet_pton(AF_INET, text, bin) == 1)
        return inet_ntop(AF_INET, bin, out, (socklen_t)outlen) ? 0 : -EINVAL;
    if (inet_pton(AF_INET6, text, bin) == 1)
        return inet_ntop(AF_INET6, bin, out, (socklen_t)outlen) ? 0 : -EINVAL;
    return -EINVAL;
}

int kv_canon_ip(const char *text, size_t len, char **out, const char **why)
{
    char in[INET6_ADDRSTRLEN], buf[INET6_ADDRSTRLEN];

    if (len == 0 || len >= sizeof(in) || memchr(text, '\0', len)) {
        *why = "is not an IPv4 or IPv6 address";
        return -EINVAL;
    }
    memcpy(in, text, len);
    in[len] = '\0';
    if (kv_ip_canonical(in, buf, sizeof(buf)) < 0) {
        *why = "is not an IPv4 or IPv6 address";
        return -EINVAL;
    }
    *out = strdup(buf);
    return *out ? 0 : -ENOMEM;
}
