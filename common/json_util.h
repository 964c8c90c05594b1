/* SPDX-License-Identifier: Apache-2.0 */
/*
 * json_util: typed access to jansson values with error messages that name
 * the field path and what was expected versus found, e.g.
 *
 *   services[2].node_port: expected integer 1..65535, got string
 *
 * The field argument of every json_get_* is a literal key of obj or, if
 * there is no such key, a path below obj: "node_port",
 * "spec.ports[0].nodePort". A caller walking an array itself passes the
 * element's own path as "where" ("services[2]") so that messages still
 * name the whole path; NULL when obj is the root.
 *
 * Return convention of json_get_*: 1 = present and stored in *out,
 * 0 = absent (or JSON null) and not required (*out untouched, so callers
 * preset their default), -EINVAL = wrong type, out of range, or required
 * but missing (message in err). Returned json_t pointers are borrowed from
 * obj; string pointers live as long as obj.
 *
 * Also loads JSON text strictly (duplicate keys rejected) with errors that
 * name file, line and column.
 */
#ifndef DROVER_JSON_UTIL_H
#define DROVER_JSON_UTIL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* All getters: where = message prefix for obj's own path, or NULL. */
int json_get_string(const json_t *obj, const char *where, const char *field, const char **out,
                    bool required, char *err, size_t errlen);
/* Integer in [min, max] (inclusive). A real or string is a type error. */
int json_get_int(const json_t *obj, const char *where, const char *field, int64_t *out, int64_t min,
                 int64_t max, bool required, char *err, size_t errlen);
int json_get_bool(const json_t *obj, const char *where, const char *field, bool *out, bool required,
                  char *err, size_t errlen);
/* Accepts JSON integers and reals. */
int json_get_double(const json_t *obj, const char *where, const char *field, double *out,
                    bool required, char *err, size_t errlen);
int json_get_object(const json_t *obj, const char *where, const char *field, json_t **out,
                    bool required, char *err, size_t errlen);
int json_get_array(const json_t *obj, const char *where, const char *field, json_t **out,
                   bool required, char *err, size_t errlen);
/* Array of strings: *out is a malloc'd NULL-terminated vector of malloc'd
 * copies (free with json_string_array_free), *count its length (may be
 * NULL). An element of another type names its index in the error. */
int json_get_string_array(const json_t *obj, const char *where, const char *field, char ***out,
                          size_t *count, bool required, char *err, size_t errlen);
void json_string_array_free(char **strv);

/* Resolve a path ("a.b[2].c") below obj; NULL if any step is missing.
 * Borrowed reference. */
json_t *json_path_get(const json_t *obj, const char *path);

/* "string", "integer", "real", "boolean", "null", "object", "array". */
const char *json_type_desc(const json_t *value);

/* Parse a whole file strictly (JSON_REJECT_DUPLICATES). *out is a new
 * reference. Errors: "FILE:LINE:COL: message" or "FILE: <strerror>".
 * 0, -errno from open/read, or -EINVAL for bad JSON. */
int json_load_file_strict(const char *path, json_t **out, char *err, size_t errlen);
/* Same for a buffer; name is used in messages (e.g. "consul KV drover/v1/x"). */
int json_from_buffer(const char *buf, size_t len, const char *name, json_t **out, char *err,
                     size_t errlen);

#endif
