/* SPDX-License-Identifier: Apache-2.0 */
/* config_value: the text syntax of scalar option values (durations, sizes,
 * bools), public so other modules read values the way options do. See
 * config.h. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "config_internal.h"
#include "errmsg.h"
#include "json_util.h"
#include <math.h>
#include <stdlib.h>

int config_parse_bool(const char *text, bool *out)
{
    static const char *const yes[] = {"true", "1", "yes", "on"};
    static const char *const no[] = {"false", "0", "no", "off"};

    if (!text)
        return -EINVAL;
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(text, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(text, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -EINVAL;
}

int config_parse_duration_ms(const char *text, int64_t *out_ms)
{
    static const struct {
        const char *name;
        int64_t ns;
    } units[] = {
        /* "ms" before "m" so the longest unit name matches first. */
        {"ms", 1000000LL},      {"s", 1000000000LL},     {"m", 60000000000LL},
        {"h", 3600000000000LL}, {"d", 86400000000000LL},
    };
    /* Sum in nanoseconds so "1.5s" and "0.25m" stay exact; __int128
     * leaves room to detect overflow instead of wrapping. */
    __int128 total = 0;
    const __int128 limit = (__int128)INT64_MAX * 1000000;
    const char *p = text;

    if (!text || !*text)
        return -EINVAL;
    if (strcmp(text, "0") == 0) {
        *out_ms = 0;
        return 0;
    }
    while (*p) {
        __int128 whole = 0, frac = 0, scale = 1;
        int digits = 0;

        if (!isdigit((unsigned char)*p) && *p != '.')
            return -EINVAL;
        while (isdigit((unsigned char)*p)) {
            whole = whole * 10 + (*p++ - '0');
            digits++;
            if (whole > limit)
                return -ERANGE;
        }
        if (*p == '.') {
            p++;
            while (isdigit((unsigned char)*p)) {
                if (scale < 1000000000000000000LL) { /* ignore digits beyond 1e-18 */
                    frac = frac * 10 + (*p - '0');
                    scale *= 10;
                }
                p++;
                digits++;
            }
        }
        if (digits == 0)
            return -EINVAL;
        size_t u;
        for (u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
            size_t n = strlen(units[u].name);
            if (strncmp(p, units[u].name, n) == 0 && !isalpha((unsigned char)p[n]))
                break;
        }
        if (u == sizeof(units) / sizeof(units[0]))
            return -EINVAL; /* missing or unknown unit */
        p += strlen(units[u].name);
        if (whole > limit / units[u].ns)
            return -ERANGE;
        total += whole * units[u].ns + frac * units[u].ns / scale;
        if (total > limit)
            return -ERANGE;
    }
    /* Round down to whole milliseconds: nothing in drover needs finer. */
    *out_ms = (int64_t)(total / 1000000);
    return 0;
}

void config_format_duration(int64_t ms, char *buf, size_t buflen)
{
    static const struct {
        const char *name;
        int64_t ms;
    } units[] = {{"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1}};
    size_t o = 0;

    if (buflen == 0)
        return;
    buf[0] = '\0';
    if (ms <= 0) {
        snprintf(buf, buflen, "%s", ms == 0 ? "0" : "invalid");
        return;
    }
    for (size_t u = 0; u < sizeof(units) / sizeof(units[0]) && ms > 0; u++) {
        int64_t n = ms / units[u].ms;
        if (n == 0)
            continue;
        ms -= n * units[u].ms;
        int w = snprintf(buf + o, buflen - o, "%" PRId64 "%s", n, units[u].name);
        if (w < 0 || (size_t)w >= buflen - o)
            return;
        o += (size_t)w;
    }
}

int config_parse_size(const char *text, uint64_t *out)
{
    static const struct {
        const char *name;
        uint64_t mult;
    } units[] = {
        {"", 1},
        {"b", 1},
        {"k", 1ULL << 10},
        {"ki", 1ULL << 10},
        {"kib", 1ULL << 10},
        {"kb", 1000ULL},
        {"m", 1ULL << 20},
        {"mi", 1ULL << 20},
        {"mib", 1ULL << 20},
        {"mb", 1000000ULL},
        {"g", 1ULL << 30},
        {"gi", 1ULL << 30},
        {"gib", 1ULL << 30},
        {"gb", 1000000000ULL},
        {"t", 1ULL << 40},
        {"ti", 1ULL << 40},
        {"tib", 1ULL << 40},
        {"tb", 1000000000000ULL},
    };
    uint64_t n = 0;
    const char *p = text;

    if (!text || !isdigit((unsigned char)*p))
        return -EINVAL;
    for (; isdigit((unsigned char)*p); p++) {
        if (n > (UINT64_MAX - 9) / 10)
            return -ERANGE;
        n = n * 10 + (uint64_t)(*p - '0');
    }
    for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
        if (strcasecmp(p, units[u].name) == 0) {
            if (n != 0 && units[u].mult > UINT64_MAX / n)
                return -ERANGE;
            *out = n * units[u].mult;
            return 0;
        }
    }
    return -EINVAL;
}

/* ---- option values ---------------------------------------------------- */

const char *config_type_word(enum config_type t)
{
    switch (t) {
    case CONFIG_STRING:
        return "string";
    case CONFIG_INT:
        return "integer";
    case CONFIG_BOOL:
        return "bool";
    case CONFIG_DURATION:
        return "duration";
    case CONFIG_DOUBLE:
        return "number";
    case CONFIG_STRLIST:
        return "list";
    case CONFIG_LOGLEVEL:
        return "log level";
    case CONFIG_SIZE:
        return "size";
    }
    return "value";
}

const char *config_metavar(const struct config_option *o)
{
    if (o->metavar)
        return o->metavar;
    switch (o->type) {
    case CONFIG_STRING:
        return "STRING";
    case CONFIG_INT:
        return "INT";
    case CONFIG_BOOL:
        return "BOOL";
    case CONFIG_DURATION:
        return "DURATION";
    case CONFIG_DOUBLE:
        return "NUMBER";
    case CONFIG_STRLIST:
        return "LIST";
    case CONFIG_LOGLEVEL:
        return "LEVEL";
    case CONFIG_SIZE:
        return "SIZE";
    }
    return "VALUE";
}

void config_list_free(struct config_strlist *l)
{
    for (size_t i = 0; i < l->count; i++)
        free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->count = 0;
}

static int config_list_push(struct config_strlist *l, const char *s, size_t len)
{
    char **items = realloc(l->items, (l->count + 1) * sizeof(*items));
    if (!items)
        return -ENOMEM;
    l->items = items;
    items[l->count] = strndup(s, len);
    if (!items[l->count])
        return -ENOMEM;
    l->count++;
    return 0;
}

/* Append the comma-separated items of text, trimmed, skipping empty ones. */
int config_list_push_csv(struct config_strlist *l, const char *text)
{
    const char *p = text;

    while (*p) {
        const char *end = strchr(p, ',');
        const char *stop = end ? end : p + strlen(p);
        const char *a = p, *b = stop;
        while (a < b && isspace((unsigned char)*a))
            a++;
        while (b > a && isspace((unsigned char)b[-1]))
            b--;
        if (b > a) {
            int rc = config_list_push(l, a, (size_t)(b - a));
            if (rc < 0)
                return rc;
        }
        if (!end)
            break;
        p = end + 1;
    }
    return 0;
}

void config_value_free(enum config_type t, union config_value *v)
{
    if (t == CONFIG_STRING) {
        free(v->str);
        v->str = NULL;
    } else if (t == CONFIG_STRLIST) {
        config_list_free(&v->list);
    }
}

/* Parse option text into v. On failure writes the reason (without the
 * source) into why. */
int config_value_from_text(const struct config_option *o, const char *text, union config_value *v,
                           char *why, size_t whylen)
{
    char *end;
    int rc;

    memset(v, 0, sizeof(*v));
    switch (o->type) {
    case CONFIG_STRING:
        v->str = strdup(text);
        return v->str ? 0 : -ENOMEM;
    case CONFIG_INT: {
        errno = 0;
        long long n = strtoll(text, &end, 0);
        if (!*text || *end || errno) {
            errmsg_set(why, whylen, "bad integer '%s'", text);
            return -EINVAL;
        }
        if ((o->min || o->max) && (n < o->min || n > o->max)) {
            errmsg_set(why, whylen, "%lld out of range %" PRId64 "..%" PRId64, n, o->min, o->max);
            return -EINVAL;
        }
        v->i64 = n;
        return 0;
    }
    case CONFIG_BOOL:
        if (config_parse_bool(text, &v->b) < 0) {
            errmsg_set(why, whylen, "bad bool '%s' (want true/false/1/0/yes/no)", text);
            return -EINVAL;
        }
        return 0;
    case CONFIG_DURATION:
        rc = config_parse_duration_ms(text, &v->i64);
        if (rc < 0) {
            errmsg_set(why, whylen, "%s duration '%s' (want e.g. 200ms, 2s, 1m30s, 2h)",
                       rc == -ERANGE ? "too large" : "bad", text);
            return -EINVAL;
        }
        if ((o->min || o->max) && (v->i64 < o->min || v->i64 > o->max)) {
            char lo[32], hi[32];
            config_format_duration(o->min, lo, sizeof(lo));
            config_format_duration(o->max, hi, sizeof(hi));
            errmsg_set(why, whylen, "duration '%s' out of range %s..%s", text, lo, hi);
            return -EINVAL;
        }
        return 0;
    case CONFIG_DOUBLE:
        errno = 0;
        v->d = strtod(text, &end);
        if (!*text || *end || errno || isspace((unsigned char)*text)) {
            errmsg_set(why, whylen, "bad number '%s'", text);
            return -EINVAL;
        }
        return 0;
    case CONFIG_STRLIST:
        rc = config_list_push_csv(&v->list, text);
        if (rc < 0)
            config_list_free(&v->list);
        return rc;
    case CONFIG_LOGLEVEL:
        if (log_parse_level(text, &v->level) < 0) {
            errmsg_set(why, whylen, "bad log level '%s' (want debug, info, warn or error)", text);
            return -EINVAL;
        }
        return 0;
    case CONFIG_SIZE:
        rc = config_parse_size(text, &v->size);
        if (rc < 0) {
            errmsg_set(why, whylen, "%s size '%s' (want e.g. 4096, 64KiB, 1MB)",
                       rc == -ERANGE ? "too large" : "bad", text);
            return -EINVAL;
        }
        return 0;
    }
    errmsg_set(why, whylen, "unsupported option type");
    return -EINVAL;
}

/* Parse a JSON config-file value. Strings always go through the text
 * parser (so "2s" and "64KiB" work); native JSON types are taken where
 * they mean the same thing. */
int config_value_from_json(const struct config_option *o, const json_t *j, union config_value *v,
                           char *why, size_t whylen)
{
    char num[64];

    memset(v, 0, sizeof(*v));
    if (json_is_string(j))
        return config_value_from_text(o, json_string_value(j), v, why, whylen);
    switch (o->type) {
    case CONFIG_INT:
    case CONFIG_SIZE:
        if (json_is_integer(j)) {
            if (o->type == CONFIG_SIZE && json_integer_value(j) < 0)
                break;
            snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(j));
            return config_value_from_text(o, num, v, why, whylen);
        }
        break;
    case CONFIG_BOOL:
        if (json_is_boolean(j)) {
            v->b = json_is_true(j);
            return 0;
        }
        break;
    case CONFIG_DOUBLE:
        if (json_is_number(j)) {
            v->d = json_number_value(j);
            return 0;
        }
        break;
    case CONFIG_STRLIST:
        if (json_is_array(j)) {
            size_t i;
            json_t *item;
            json_array_foreach(j, i, item)
            {
                if (!json_is_string(item)) {
                    errmsg_set(why, whylen, "item %zu: expected string, got %s", i,
                               json_type_desc(item));
                    config_list_free(&v->list);
                    return -EINVAL;
                }
                if (config_list_push(&v->list, json_string_value(item), json_string_length(item)) <
                    0) {
                    config_list_free(&v->list);
                    return -ENOMEM;
                }
            }
            return 0;
        }
        break;
    default:
        break;
    }
    errmsg_set(why, whylen, "expected %s%s, got %s", config_type_word(o->type),
               o->type == CONFIG_STRLIST    ? " (array of strings or comma-separated string)"
               : o->type == CONFIG_DURATION ? " string like \"2s\""
                                            : "",
               json_type_desc(j));
    return -EINVAL;
}

void config_value_store(const struct config_option *o, union config_value *v)
{
    switch (o->type) {
    case CONFIG_STRING:
        free(*o->target.str);
        *o->target.str = v->str;
        v->str = NULL;
        break;
    case CONFIG_INT:
    case CONFIG_DURATION:
        *o->target.i64 = v->i64;
        break;
    case CONFIG_BOOL:
        *o->target.b = v->b;
        break;
    case CONFIG_DOUBLE:
        *o->target.d = v->d;
        break;
    case CONFIG_STRLIST:
        config_list_free(o->target.list);
        *o->target.list = v->list;
        v->list.items = NULL;
        v->list.count = 0;
        break;
    case CONFIG_LOGLEVEL:
        *o->target.level = v->level;
        break;
    case CONFIG_SIZE:
        *o->target.size = v->size;
        break;
    }
}

/* Clear a target to its "unset" value (no default given). */
void config_value_store_unset(const struct config_option *o)
{
    union config_value v;

    memset(&v, 0, sizeof(v));
    if (o->type == CONFIG_LOGLEVEL)
        v.level = LOGL_INFO;
    config_value_store(o, &v);
}
