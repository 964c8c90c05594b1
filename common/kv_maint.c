/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kv_maint: maintenance ids, values and precedence. See kv_maint.h and
 * docs/kv-schema.md.
 */
#include "kv_maint.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errmsg.h"
#include "json_util.h"
#include "kv_field.h"
#include "kv_key.h"
#include "timefmt.h"

const char *kvm_admin_name(enum kvm_admin a)
{
    switch (a) {
    case KVM_ADMIN_DRAIN:
        return "drain";
    case KVM_ADMIN_MAINT:
        return "maint";
    default:
        return "ready";
    }
}

int kv_maint_id_parse(const char *id, struct kv_maint_id *out, char *err, size_t errlen)
{
    char seg[3][KV_KEY_SEG_MAX + 1];
    int n = kv_key_split(id, seg, 3);

    memset(out, 0, sizeof(*out));
    if (n == 3 && strcmp(seg[0], "node") == 0) {
        out->kind = KVM_MAINT_NODE;
    } else if (n == 2 && strcmp(seg[0], "addr") == 0) {
        char *ip = NULL;
        const char *why = "not an IP address";
        if (kv_canon_ip(seg[1], strlen(seg[1]), &ip, &why) < 0) {
            errmsg_set(err, errlen, "address '%.60s' in the key: %s", seg[1], why);
            return -EINVAL;
        }
        out->kind = KVM_MAINT_ADDR;
        snprintf(out->a, sizeof(out->a), "%s", ip);
        free(ip);
        snprintf(out->id, sizeof(out->id), "addr/%s", out->a);
        return 0;
    } else if (n == 3 && strcmp(seg[0], "server") == 0) {
        out->kind = KVM_MAINT_SERVER;
    } else {
        errmsg_set(err, errlen,
                   "expected maintenance/node/<cluster>/<node>, maintenance/addr/<ip> or "
                   "maintenance/server/<backend>/<server>");
        return -EINVAL;
    }
    snprintf(out->a, sizeof(out->a), "%s", seg[1]);
    snprintf(out->b, sizeof(out->b), "%s", seg[2]);
    snprintf(out->id, sizeof(out->id), "%s/%s/%s", out->kind == KVM_MAINT_NODE ? "node" : "server",
             seg[1], seg[2]);
    return 0;
}

void kvm_maint_clear(struct kvm_maint *x)
{
    free(x->a);
    free(x->b);
    free(x->reason);
    free(x->author);
    memset(x, 0, sizeof(*x));
}

bool kvm_maint_expired(int64_t expires, int64_t now)
{
    return expires > 0 && expires <= now;
}

bool kvm_maint_takes_out(enum kvm_admin admin, int weight)
{
    return admin != KVM_ADMIN_READY || weight == 0;
}

int kvm_maint_decode(const json_t *root, struct kvm_maint *x, char *err, size_t errlen)
{
    static const char *const states[] = {"ready", "drain", "maint", NULL};
    char *state = NULL;
    int64_t weight = -1;
    int rc;
    x->weight = -1;
    if (!json_is_object(root)) {
        errmsg_set(err, errlen, "expected a JSON object, got %s", json_type_desc(root));
        return -EINVAL;
    }
    if (!json_object_get(root, "state")) {
        errmsg_set(err, errlen, "state: required field missing");
        return -EINVAL;
    }
    if ((rc = kv_get_one_of(root, NULL, "state", states, "ready", &state, err, errlen)) < 0)
        return rc;
    x->admin = !strcmp(state, "maint")   ? KVM_ADMIN_MAINT
               : !strcmp(state, "drain") ? KVM_ADMIN_DRAIN
                                         : KVM_ADMIN_READY;
    free(state);
    if ((rc = json_get_int(root, NULL, "weight", &weight, 0, 256, false, err, errlen)) < 0)
        return rc;
    x->weight = (int)weight;
    return kv_get_expiry_fields(root, &x->expires, &x->author, &x->reason, err, errlen);
}

const void *kv_maint_resolve(kv_maint_find_fn find, void *arg, const char *backend,
                             const char *const *names, size_t n_names, const char *addr,
                             const char *node_cluster, const char *node)
{
    const void *x;
    for (size_t i = 0; i < n_names; i++)
        if (names[i] && (x = find(arg, KVM_MAINT_SERVER, backend, names[i])))
            return x;
    if (addr && (x = find(arg, KVM_MAINT_ADDR, addr, NULL)))
        return x;
    if (node && node_cluster && (x = find(arg, KVM_MAINT_NODE, node_cluster, node)))
        return x;
    return NULL;
}

json_t *kv_maint_encode(const struct kv_maint_rec *r)
{
    char t[TIMEFMT_BUF_SIZE];
    timefmt_format_rfc3339(r->created, t, sizeof(t));
    json_t *v = json_pack("{s:s, s:s, s:s, s:s}", "target", r->target, "state",
                          kvm_admin_name(r->admin), "author", r->author, "created", t);
    int rc = v ? 0 : -1;
    if (v && r->weight >= 0)
        rc |= json_object_set_new(v, "weight", json_integer(r->weight));
    if (v && r->reason && *r->reason)
        rc |= json_object_set_new(v, "reason", json_string(r->reason));
    if (v && r->expires > 0) {
        timefmt_format_rfc3339(r->expires, t, sizeof(t));
        rc |= json_object_set_new(v, "expires", json_string(t));
    }
    if (rc) {
        json_decref(v);
        return NULL;
    }
    return v;
}
