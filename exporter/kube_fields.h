/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kube_fields: what every kube_objects module needs when it reads one
 * Kubernetes object: a string field, the selected labels, and a struct
 * kube_reason filled when the object is not exported. Internal to the
 * exporter library; the public interface is kube_objects.h.
 */
#ifndef DROVER_EXPORTER_KUBE_FIELDS_H
#define DROVER_EXPORTER_KUBE_FIELDS_H

#include <stddef.h>

#include <jansson.h>

#include "kube_objects.h"

/* Fill why (NULL: nothing) with reason and a printf-style message
 * (truncated to the struct's buffers). */
void kube_reason_set(struct kube_reason *why, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* obj[key] when it is a JSON string, else NULL; borrowed from obj. */
const char *kube_obj_str(const json_t *obj, const char *key);

/* A new object with labels[key] for each of keys that labels holds as a
 * string (shared references); NULL when out of memory. Caller owns it. */
json_t *kube_select_labels(const json_t *labels, const char *const *keys, size_t n);

#endif
