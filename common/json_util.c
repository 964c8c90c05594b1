/* SPDX-License-Identifier: Apache-2.0 */
#include "json_util.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errmsg.h"

const char *json_type_desc(const json_t *value)
{
    if (!value)
        return "nothing";
    switch (json_typeof(value)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
        return "integer";
    case JSON_REAL:
        return "real";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    case JSON_NULL:
        return "null";
    }
    return "unknown";
}

json_t *json_path_get(const json_t *obj, const char *path)
{
    const char *p = path;
    json_t *cur = (json_t *)obj;

    if (!obj || !path || !*path)
        return NULL;
    while (*p && cur) {
        if (*p == '[') {
            char *end;
            if (!isdigit((unsigned char)p[1]))
                return NULL;
            unsigned long long idx = strtoull(p + 1, &end, 10);
            if (*end != ']' || !json_is_array(cur))
                return NULL;
            cur = json_array_get(cur, (size_t)idx);
            p = end + 1;
            if (*p == '.')
                p++;
            continue;
        }
        size_t len = strcspn(p, ".[");
        if (len == 0 || !json_is_object(cur))
            return NULL;
        cur = json_object_getn(cur, p, len);
        p += len;
        if (*p == '.')
            p++;
    }
    return cur;
}

/* Look up field below obj: a literal key first (so "a.b/c" label keys
 * work), then as a path. NULL and JSON null both mean absent. */
static json_t *lookup(const json_t *obj, const char *field)
{
    json_t *v = NULL;

    if (json_is_object(obj))
        v = json_object_get(obj, field);
    if (!v)
        v = json_path_get(obj, field);
    return json_is_null(v) ? NULL : v;
}

/* "where.field" (or "where[2]" when field starts with an index). */
static void full_path(char *buf, size_t len, const char *where, const char *field)
{
    if (where && *where)
        snprintf(buf, len, "%s%s%s", where, field[0] == '[' ? "" : ".", field);
    else
        snprintf(buf, len, "%s", field);
}

/* Common prologue: find the value, or report absence. Returns 1 with *v
 * set, 0 when absent and optional, -EINVAL when absent and required. */
static int fetch(const json_t *obj, const char *where, const char *field, bool required,
                 const char *expected, json_t **v, char *err, size_t errlen)
{
    char path[256];

    *v = lookup(obj, field);
    if (*v)
        return 1;
    if (!required)
        return 0;
    full_path(path, sizeof(path), where, field);
    errmsg_set(err, errlen, "%s: missing, expected %s", path, expected);
    return -EINVAL;
}

static int type_error(const char *where, const char *field, const char *expected, const json_t *v,
                      char *err, size_t errlen)
{
    char path[256];

    full_path(path, sizeof(path), where, field);
    errmsg_set(err, errlen, "%s: expected %s, got %s", path, expected, json_type_desc(v));
    return -EINVAL;
}

int json_get_string(const json_t *obj, const char *where, const char *field, const char **out,
                    bool required, char *err, size_t errlen)
{
    json_t *v;
    int rc = fetch(obj, where, field, required, "string", &v, err, errlen);

    if (rc <= 0)
        return rc;
    if (!json_is_string(v))
        return type_error(where, field, "string", v, err, errlen);
    *out = json_string_value(v);
    return 1;
}

int json_get_int(const json_t *obj, const char *where, const char *field, int64_t *out, int64_t min,
                 int64_t max, bool required, char *err, size_t errlen)
{
    char expected[80], path[256];
    json_t *v;
    int rc;

    if (min == INT64_MIN && max == INT64_MAX)
        snprintf(expected, sizeof(expected), "integer");
    else if (max == INT64_MAX)
        snprintf(expected, sizeof(expected), "integer >= %" PRId64, min);
    else
        snprintf(expected, sizeof(expected), "integer %" PRId64 "..%" PRId64, min, max);
    rc = fetch(obj, where, field, required, expected, &v, err, errlen);
    if (rc <= 0)
        return rc;
    if (!json_is_integer(v))
        return type_error(where, field, expected, v, err, errlen);
    json_int_t n = json_integer_value(v);
    if (n < min || n > max) {
        full_path(path, sizeof(path), where, field);
        errmsg_set(err, errlen, "%s: expected %s, got %" JSON_INTEGER_FORMAT, path, expected, n);
        return -EINVAL;
    }
    *out = n;
    return 1;
}

int json_get_bool(const json_t *obj, const char *where, const char *field, bool *out, bool required,
                  char *err, size_t errlen)
{
    json_t *v;
    int rc = fetch(obj, where, field, required, "boolean", &v, err, errlen);

    if (rc <= 0)
        return rc;
    if (!json_is_boolean(v))
        return type_error(where, field, "boolean", v, err, errlen);
    *out = json_is_true(v);
    return 1;
}

int json_get_double(const json_t *obj, const char *where, const char *field, double *out,
                    bool required, char *err, size_t errlen)
{
    json_t *v;
    int rc = fetch(obj, where, field, required, "number", &v, err, errlen);

    if (rc <= 0)
        return rc;
    if (!json_is_number(v))
        return type_error(where, field, "number", v, err, errlen);
    *out = json_number_value(v);
    return 1;
}

int json_get_object(const json_t *obj, const char *where, const char *field, json_t **out,
                    bool required, char *err, size_t errlen)
{
    json_t *v;
    int rc = fetch(obj, where, field, required, "object", &v, err, errlen);

    if (rc <= 0)
        return rc;
    if (!json_is_object(v))
        return type_error(where, field, "object", v, err, errlen);
    *out = v;
    return 1;
}

int json_get_array(const json_t *obj, const char *where, const char *field, json_t **out,
                   bool required, char *err, size_t errlen)
{
    json_t *v;
    int rc = fetch(obj, where, field, required, "array", &v, err, errlen);

    if (rc <= 0)
        return rc;
    if (!json_is_array(v))
        return type_error(where, field, "array", v, err, errlen);
    *out = v;
    return 1;
}

void json_string_array_free(char **strv)
{
    if (!strv)
        return;
    for (char **p = strv; *p; p++)
        free(*p);
    free(strv);
}

int json_get_string_array(const json_t *obj, const char *where, const char *field, char ***out,
                          size_t *count, bool required, char *err, size_t errlen)
{
    char path[256], item_path[300];
    json_t *v, *item;
    char **strv;
    size_t i, n;
    int rc = fetch(obj, where, field, required, "array of strings", &v, err, errlen);

    if (rc <= 0)
        return rc;
    if (!json_is_array(v))
        return type_error(where, field, "array of strings", v, err, errlen);
    n = json_array_size(v);
    strv = calloc(n + 1, sizeof(*strv));
    if (!strv)
        return -ENOMEM;
    json_array_foreach(v, i, item)
    {
        if (!json_is_string(item)) {
            full_path(path, sizeof(path), where, field);
            snprintf(item_path, sizeof(item_path), "%s[%zu]", path, i);
            errmsg_set(err, errlen, "%s: expected string, got %s", item_path, json_type_desc(item));
            json_string_array_free(strv);
            return -EINVAL;
        }
        strv[i] = strndup(json_string_value(item), json_string_length(item));
        if (!strv[i]) {
            json_string_array_free(strv);
            return -ENOMEM;
        }
    }
    *out = strv;
    if (count)
        *count = n;
    return 1;
}

static void decode_error(const char *name, const json_error_t *je, char *err, size_t errlen)
{
    if (je->line > 0)
        errmsg_set(err, errlen, "%s:%d:%d: %s", name, je->line, je->column, je->text);
    else
        errmsg_set(err, errlen, "%s: %s", name, je->text);
}

/* Duplicate keys are almost always an editing mistake in a config file
 * or a bug in a writer; JSON_DECODE_ANY lets callers check the type. */
#define STRICT_FLAGS (JSON_REJECT_DUPLICATES | JSON_DECODE_ANY)

int json_load_file_strict(const char *path, json_t **out, char *err, size_t errlen)
{
    json_error_t je;
    FILE *f;
    int rc = 0;

    *out = NULL;
    f = fopen(path, "re");
    if (!f) {
        rc = -errno;
        errmsg_set(err, errlen, "%s: %s", path, strerror(-rc));
        return rc;
    }
    *out = json_loadf(f, STRICT_FLAGS, &je);
    if (!*out) {
        if (ferror(f)) {
            rc = -EIO;
            errmsg_set(err, errlen, "%s: read error", path);
        } else {
            rc = -EINVAL;
            decode_error(path, &je, err, errlen);
        }
    }
    fclose(f);
    return rc;
}

int json_from_buffer(const char *buf, size_t len, const char *name, json_t **out, char *err,
                     size_t errlen)
{
    json_error_t je;

    *out = json_loadb(buf ? buf : "", buf ? len : 0, STRICT_FLAGS, &je);
    if (!*out) {
        decode_error(name ? name : "<buffer>", &je, err, errlen);
        return -EINVAL;
    }
    return 0;
}
