/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kube_names: Kubernetes' own name rules (RFC 1123 labels and
 * subdomains), declared in kube_objects.h.
 */
#include "kube_objects.h"

#include <string.h>

static bool dns_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* [a-z0-9]([-a-z0-9]*[a-z0-9])? of exactly len bytes. */
static bool dns1123_part(const char *s, size_t len)
{
    if (len == 0 || !dns_alnum(s[0]) || !dns_alnum(s[len - 1]))
        return false;
    for (size_t i = 1; i + 1 < len; i++)
        if (!dns_alnum(s[i]) && s[i] != '-')
            return false;
    return true;
}

bool kube_name_is_dns1123_label(const char *s)
{
    size_t len = s ? strlen(s) : 0;
    return len <= 63 && dns1123_part(s, len);
}

bool kube_name_is_dns1123_subdomain(const char *s)
{
    size_t len = s ? strlen(s) : 0;
    if (len == 0 || len > 253)
        return false;
    for (const char *p = s;;) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (!dns1123_part(p, n))
            return false;
        if (!dot)
            return true;
        p = dot + 1;
    }
}
