/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kv_field: typed readers of the fields of a KV value (a JSON object), for
 * the kv_* schema modules (docs/kv-schema.md). Every reader names the
 * field path ("backends[0].check.path") in err when it refuses a value.
 *
 * Readers return 1 (present and valid), 0 (absent and optional),
 * -EINVAL (bad: message in err) or -ENOMEM; where (may be NULL) is the
 * path of obj.
 */
#ifndef DROVER_KV_FIELD_H
#define DROVER_KV_FIELD_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "haproxy_value.h"

/* Elements per list (frontends, backends, binds, routes, servers). */
#define KV_MAX_ITEMS 4096

/* A string checked against an HAProxy value kind; *out is a malloc'd copy
 * of the canonical text (an IP without brackets; others unchanged). */
int kv_get_kind(const json_t *obj, const char *where, const char *field,
                enum haproxy_value_kind kind, bool required, char **out, char *err, size_t errlen);
/* A duration string ("200ms", "2s", "1m30s"), 1 ms..INT32_MAX ms. */
int kv_get_duration(const json_t *obj, const char *where, const char *field, int64_t *out,
                    char *err, size_t errlen);
/* One of allowed (NULL-terminated); def when absent (*out is a copy). */
int kv_get_one_of(const json_t *obj, const char *where, const char *field,
                  const char *const *allowed, const char *def, char **out, char *err,
                  size_t errlen);
/* An array of at most KV_MAX_ITEMS elements: *arr borrowed, *n its size. */
int kv_get_list(const json_t *obj, const char *where, const char *field, bool required,
                json_t **arr, size_t *n, char *err, size_t errlen);
/* "1.2.3.4:80" or "[::1]:80" into a canonical address (malloc'd) and a
 * port. 0 or -EINVAL / -ENOMEM. */
int kv_parse_hostport(const char *text, char **addr, uint16_t *port);
/* The optional "expires" (RFC 3339, into unix seconds; left alone when
 * absent), "author" and "reason" of a maintenance or override value. 0,
 * -EINVAL, -ENOMEM. */
int kv_get_expiry_fields(const json_t *root, int64_t *expires, char **author, char **reason,
                         char *err, size_t errlen);
/* Canonical text (inet_ntop) of an IPv4/IPv6 literal into out (at least
 * INET6_ADDRSTRLEN bytes). 0 or -EINVAL. */
int kv_ip_canonical(const char *text, char *out, size_t outlen);
/* Canonical text of the IP address text[0..len) into *out (malloc'd).
 * 0, -EINVAL (*why says why) or -ENOMEM. */
int kv_canon_ip(const char *text, size_t len, char **out, const char **why);

#endif
