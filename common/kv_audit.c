/* SPDX-License-Identifier: Apache-2.0 */
/* kv_audit: audit trail keys and values. See kv_audit.h. */
#include "kv_audit.h"

#include <stdio.h>

#include "timefmt.h"

void kv_audit_key(const char *root, int64_t now_ms, const unsigned char rnd[4], char *out,
                  size_t outlen)
{
    char stamp[40];
    timefmt_format_stamp_ms(now_ms, stamp, sizeof(stamp));
    snprintf(out, outlen, "%saudit/%s-%02x%02x%02x%02x", root, stamp, rnd[0], rnd[1], rnd[2],
             rnd[3]);
}

json_t *kv_audit_encode(const struct kv_audit_rec *r)
{
    char t[TIMEFMT_BUF_SIZE];
    timefmt_format_rfc3339(r->time_ms / 1000, t, sizeof(t));
    json_t *a = json_pack("{s:s, s:s, s:s, s:s, s:s, s:O?, s:O?}", "time", t, "author", r->author,
                          "source", r->source, "action", r->action, "target", r->target, "before",
                          r->before, "after", r->after);
    int rc = a ? 0 : -1;
    if (a && !r->before)
        rc |= json_object_set_new(a, "before", json_null());
    if (a && !r->after)
        rc |= json_object_set_new(a, "after", json_null());
    if (a && r->reason)
        rc |= json_object_set_new(a, "reason", json_string(r->reason));
    if (a && r->force)
        rc |= json_object_set_new(a, "force", json_true());
    if (rc) {
        json_decref(a);
        return NULL;
    }
    return a;
}
