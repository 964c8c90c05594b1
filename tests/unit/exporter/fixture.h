/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fixture: loads the Kubernetes JSON fixtures of tests/unit/exporter/data
 * (full objects as the API server returns them) for the exporter suites.
 */
#ifndef DROVER_TEST_EXPORTER_FIXTURE_H
#define DROVER_TEST_EXPORTER_FIXTURE_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#include <jansson.h>

/* Whole file as a NUL-terminated buffer; *len without the NUL. */
static inline char *fixture_read(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", EXPORTER_TEST_DATA, name);
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open fixture %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_int_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    if (len)
        *len = (size_t)n;
    return buf;
}

static inline json_t *fixture_json(const char *name)
{
    json_error_t err;
    char *text = fixture_read(name, NULL);
    json_t *v = json_loads(text, 0, &err);
    ck_assert_msg(v != NULL, "fixture %s: %s", name, err.text);
    free(text);
    return v;
}

/* Set metadata.annotations[key] = value (NULL removes it). */
static inline void fixture_annotate(json_t *obj, const char *key, const char *value)
{
    json_t *meta = json_object_get(obj, "metadata");
    json_t *anns = json_object_get(meta, "annotations");
    if (!anns) {
        anns = json_object();
        json_object_set_new(meta, "annotations", anns);
    }
    if (value)
        json_object_set_new(anns, key, json_string(value));
    else
        json_object_del(anns, key);
}

#endif
