/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kv_schema: the machine-readable KV schema (docs/kv-schema.json is
 * generated from it, tests/unit/common/test_kv_schema.c checks it against
 * the kv_* decoders and the checked-in file, tests/kv/ checks
 * docs/kv-schema.md and the Python fixtures against that file).
 *
 * One record per key kind: key pattern below the root, writer, readers,
 * and the top-level fields of its value with their JSON type and two
 * flags: `required` (readers refuse a value without it) and `always`
 * (its writer always writes it; other fields are left out when unset).
 * Nested fields are described in docs/kv-schema.md.
 */
#ifndef DROVER_KV_SCHEMA_H
#define DROVER_KV_SCHEMA_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct kv_schema_field {
    const char *name;
    const char *type; /* JSON type: string integer number boolean object array, "a|b" */
    bool required;
    bool always;
};

struct kv_schema_record {
    const char *name;    /* "kube_service", ... */
    const char *key;     /* pattern below the root: "kube/<cluster>/nodes/<node>" */
    const char *writer;  /* program (or "operators") */
    const char *readers; /* comma-separated */
    const char *example; /* a valid value, compact JSON */
    const struct kv_schema_field *fields;
    size_t n_fields;
    const char *reserved; /* non-NULL: a prefix kept for a later issue */
};

extern const struct kv_schema_record kv_schema_records[];
extern const size_t kv_schema_n_records;

const struct kv_schema_record *kv_schema_record(const char *name);

/* The whole schema as a JSON document (new reference, NULL on ENOMEM). */
json_t *kv_schema_json(void);

#endif
