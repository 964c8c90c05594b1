/* SPDX-License-Identifier: Apache-2.0 */
/*
 * json_writer: compact JSON text written straight into a growing buffer,
 * for records whose fields are known in advance (the kv_kube service
 * value): the caller writes the keys in sorted order itself, so the bytes
 * equal jansson's json_dumps(JSON_COMPACT | JSON_SORT_KEYS) of the same
 * object without building the object first. Strings are escaped exactly
 * as jansson escapes them (", \, \b \f \n \r \t, other controls as
 * \u00XX, everything else as is) and must be valid UTF-8, as jansson
 * requires of its strings.
 *
 * Errors are sticky: after an out-of-memory or an invalid string every
 * call does nothing and json_writer_take() returns NULL, so a caller
 * writes a whole record and checks once.
 */
#ifndef DROVER_JSON_WRITER_H
#define DROVER_JSON_WRITER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_writer {
    char *buf;
    size_t len, cap;
    bool failed;
};

void json_writer_init(struct json_writer *w);
/* Bytes as they are (punctuation, literal keys written by the caller). */
void json_writer_raw(struct json_writer *w, const char *text, size_t len);
/* A JSON string; NULL or invalid UTF-8 fails the writer. */
void json_writer_string(struct json_writer *w, const char *s);
void json_writer_int(struct json_writer *w, int64_t v);
void json_writer_bool(struct json_writer *w, bool v);
/* Any jansson value, canonical (compact, keys sorted at every depth). */
void json_writer_value(struct json_writer *w, const json_t *v);
/* The NUL-terminated text (caller frees), or NULL if any call failed.
 * The writer is empty again afterwards. */
char *json_writer_take(struct json_writer *w);

#endif
