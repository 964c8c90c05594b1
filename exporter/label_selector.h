/* SPDX-License-Identifier: Apache-2.0 */
/*
 * label_selector: Kubernetes label-selector strings (the `-l` / `labelSelector`
 * syntax), parsed once and matched against an object's metadata.labels.
 *
 * Supported requirements, joined by ',' (AND):
 *   k=v  k==v  k!=v  k  !k  k in (a,b)  k notin (a,b)
 * `k!=v` and `k notin (...)` also match objects without the key, as in
 * Kubernetes. Keys are `[prefix/]name` (prefix a DNS subdomain, name up to
 * 63 characters); values up to 63 characters and may be empty. An empty
 * selector matches everything. The numeric `>`/`<` operators are rejected
 * with a named error (drover does not use them).
 */
#ifndef DROVER_EXPORTER_LABEL_SELECTOR_H
#define DROVER_EXPORTER_LABEL_SELECTOR_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

struct label_selector;

/* Parse text (NULL or "" = match everything). On success *out is a new
 * selector owned by the caller (label_selector_free). On a syntax error
 * returns -EINVAL and writes a message naming the offset and what was
 * expected into err (if errlen > 0). -ENOMEM on allocation failure. */
int label_selector_parse(const char *text, struct label_selector **out, char *err, size_t errlen);

/* labels: a JSON object of string values (metadata.labels) or NULL (no
 * labels). Non-string values never match a value requirement. */
bool label_selector_matches(const struct label_selector *sel, const json_t *labels);

/* Number of requirements (0 = matches everything). */
size_t label_selector_count(const struct label_selector *sel);

void label_selector_free(struct label_selector *sel);

/* DNS-1123 subdomain of len bytes: labels of [a-z0-9-] (and A-Z when
 * allow_upper), 1-63 each, not starting or ending with '-', joined by
 * '.', 253 at most. Label-key prefixes use it, and so do DNS-name
 * annotations (with allow_upper). */
bool label_dns_subdomain_valid(const char *s, size_t len, bool allow_upper);

#endif
