/* SPDX-License-Identifier: Apache-2.0 */
/* kube_fields: see kube_fields.h. */
#include "kube_fields.h"

#include <stdarg.h>
#include <stdio.h>

void kube_reason_set(struct kube_reason *why, const char *reason, const char *fmt, ...)
{
    if (!why)
        return;
    snprintf(why->reason, sizeof(why->reason), "%s", reason);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why->message, sizeof(why->message), fmt, ap);
    va_end(ap);
}

const char *kube_obj_str(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

json_t *kube_select_labels(const json_t *labels, const char *const *keys, size_t n)
{
    json_t *out = json_object();
    if (!out)
        return NULL;
    for (size_t i = 0; i < n && json_is_object(labels); i++) {
        json_t *v = json_object_get(labels, keys[i]);
        if (json_is_string(v) && json_object_set(out, keys[i], v) < 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}
