/* SPDX-License-Identifier: Apache-2.0 */
/*
 * str_affix: whether a string starts or ends with another, the one copy
 * of the checks that file names ("<service>.cfg", "<frontend>.crtlist"),
 * KV keys and HAProxy's answers are matched with. A string equal to the
 * affix has it; the empty affix is in every string.
 */
#ifndef DROVER_STR_AFFIX_H
#define DROVER_STR_AFFIX_H

#include <stdbool.h>
#include <string.h>

static inline bool str_has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static inline bool str_has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);

    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

#endif
