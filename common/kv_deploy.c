/* SPDX-License-Identifier: Apache-2.0 */
/* kv_deploy: staged changes and config history (kv_deploy.h, docs/kv-schema.md). */
#include "kv_deploy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_util.h"
#include "kv_key.h"
#include "timefmt.h"

char *kv_deploy_canary_key(const char *root, const char *cluster)
{
    if (!kv_valid_cluster(cluster))
        return NULL;
    return kv_key_printf("%shaproxy/%s/canary", root ? root : KV_DEFAULT_ROOT, cluster);
}

char *kv_deploy_history_prefix(const char *root, const char *cluster)
{
    if (!kv_valid_cluster(cluster))
        return NULL;
    return kv_key_printf("%sdeploy/%s/history/", root ? root : KV_DEFAULT_ROOT, cluster);
}

char *kv_deploy_history_key(const char *root, const char *cluster, uint64_t version)
{
    if (!kv_valid_cluster(cluster) || version == 0 || version > KV_DEPLOY_VERSION_MAX)
        return NULL;
    return kv_key_printf("%sdeploy/%s/history/%010llu", root ? root : KV_DEFAULT_ROOT, cluster,
                         (unsigned long long)version);
}

int kv_deploy_history_version(const char *rel, uint64_t *version)
{
    uint64_t v = 0;
    if (!rel || strlen(rel) != 10)
        return -EINVAL;
    for (const char *p = rel; *p; p++) {
        if (*p < '0' || *p > '9')
            return -EINVAL;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (v == 0)
        return -EINVAL;
    *version = v;
    return 0;
}

bool kv_deploy_key_ok(const char *cluster, const char *rel)
{
    struct kv_key k;
    char *full = kv_key_printf("%s%s", KV_DEFAULT_ROOT, rel ? rel : "");
    if (!full || !cluster)
        return free(full), false;
    kv_key_parse(KV_DEFAULT_ROOT, full, &k);
    bool ok = (k.kind == KV_KEY_HAPROXY_SERVICE || k.kind == KV_KEY_HAPROXY_FORCE) &&
              strcmp(k.seg[0], cluster) == 0;
    free(full);
    return ok;
}

bool kv_deploy_has_canary(const struct kv_deploy_rec *r, const char *host)
{
    for (size_t i = 0; host && i < r->n_canary; i++)
        if (strcmp(r->canary[i], host) == 0)
            return true;
    return false;
}

json_t *kv_deploy_encode(const struct kv_deploy_rec *r)
{
    char when[40];
    json_t *o = json_object(), *hosts = json_array();
    int rc = !o || !hosts;
    if (timefmt_format_rfc3339(r->time_unix, when, sizeof(when)) < 0)
        when[0] = '\0';
    for (size_t i = 0; !rc && i < r->n_canary; i++)
        rc |= json_array_append_new(hosts, json_string(r->canary[i]));
    rc |= json_object_set_new(o, "version", json_integer((json_int_t)r->version)) ||
          json_object_set_new(o, "cluster", json_string(r->cluster ? r->cluster : "")) ||
          json_object_set_new(o, "canary", hosts) ||
          json_object_set_new(o, "author", json_string(r->author ? r->author : "")) ||
          json_object_set_new(o, "time", json_string(when)) ||
          json_object_set_new(o, "keys", r->keys ? json_incref(r->keys) : json_object());
    hosts = NULL;
    if (!rc && r->reason)
        rc |= json_object_set_new(o, "reason", json_string(r->reason));
    if (!rc && r->rollback_of)
        rc |= json_object_set_new(o, "rollback_of", json_integer((json_int_t)r->rollback_of));
    if (!rc && r->staged)
        rc |= json_object_set_new(o, "base", r->base ? json_incref(r->base) : json_object());
    if (rc) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* keys (and base) of a record: every key an operator HAProxy record of
 * the cluster; a value is JSON (null only when staged); a base index for
 * every staged key and no other. */
static int check_keys(const struct kv_deploy_rec *r, const char *where, char *err, size_t errlen)
{
    const char *k;
    json_t *v;
    json_object_foreach(r->keys, k, v)
    {
        if (!kv_deploy_key_ok(r->cluster, k)) {
            snprintf(err, errlen,
                     "%s: keys: \"%.200s\" is not haproxy/%s/services/<name> or "
                     "haproxy/%s/force-removal/<backend>",
                     where, k, r->cluster, r->cluster);
            return -EINVAL;
        }
        if (!json_is_object(v) && !(r->staged && json_is_null(v))) {
            snprintf(err, errlen, "%s: keys: %.200s: expected %s, got %s", where, k,
                     r->staged ? "an object or null" : "an object", json_type_desc(v));
            return -EINVAL;
        }
        json_t *b = r->staged ? json_object_get(r->base, k) : NULL;
        if (r->staged && (!json_is_integer(b) || json_integer_value(b) < 0)) {
            snprintf(err, errlen, "%s: base: %.200s: expected the ModifyIndex (integer >= 0)",
                     where, k);
            return -EINVAL;
        }
    }
    if (r->staged && json_object_size(r->base) != json_object_size(r->keys)) {
        snprintf(err, errlen, "%s: base: lists keys that are not staged", where);
        return -EINVAL;
    }
    if (r->staged && json_object_size(r->keys) == 0) {
        snprintf(err, errlen, "%s: keys: a staged change changes at least one key", where);
        return -EINVAL;
    }
    return 0;
}

static int decode_fields(const json_t *o, const char *where, struct kv_deploy_rec *r, char *err,
                         size_t errlen)
{
    const char *s = NULL;
    int64_t n = 0;
    json_t *obj = NULL;
    int rc;
    if ((rc = json_get_int(o, where, "version", &n, 1, (int64_t)KV_DEPLOY_VERSION_MAX, true, err,
                           errlen)) < 0)
        return rc;
    r->version = (uint64_t)n;
    n = 0;
    if ((rc = json_get_int(o, where, "rollback_of", &n, 0, (int64_t)KV_DEPLOY_VERSION_MAX, false,
                           err, errlen)) < 0)
        return rc;
    r->rollback_of = (uint64_t)n;
    if ((rc = json_get_string(o, where, "cluster", &s, true, err, errlen)) < 0)
        return rc;
    if (!kv_valid_cluster(s)) {
        snprintf(err, errlen, "%s: cluster: \"%.80s\" is not a cluster name", where, s);
        return -EINVAL;
    }
    if (!(r->cluster = strdup(s)))
        return -ENOMEM;
    if ((rc = json_get_string_array(o, where, "canary", &r->canary, &r->n_canary, true, err,
                                    errlen)) < 0)
        return rc;
    for (size_t i = 0; i < r->n_canary; i++)
        if (!kv_valid_segment(r->canary[i])) {
            snprintf(err, errlen, "%s: canary[%zu]: \"%.80s\" is not a host name", where, i,
                     r->canary[i]);
            return -EINVAL;
        }
    if (r->staged && r->n_canary == 0) {
        snprintf(err, errlen, "%s: canary: a staged change names at least one host", where);
        return -EINVAL;
    }
    if ((rc = json_get_string(o, where, "author", &s, true, err, errlen)) < 0)
        return rc;
    if (!(r->author = strdup(s)))
        return -ENOMEM;
    s = NULL;
    if ((rc = json_get_string(o, where, "reason", &s, false, err, errlen)) < 0)
        return rc;
    if (s && !(r->reason = strdup(s)))
        return -ENOMEM;
    if ((rc = json_get_string(o, where, "time", &s, true, err, errlen)) < 0)
        return rc;
    if (timefmt_parse_rfc3339(s, &r->time_unix) < 0) {
        snprintf(err, errlen, "%s: time: not an RFC 3339 time: \"%.40s\"", where, s);
        return -EINVAL;
    }
    if ((rc = json_get_object(o, where, "keys", &obj, true, err, errlen)) < 0)
        return rc;
    r->keys = json_incref(obj);
    if (r->staged) {
        if ((rc = json_get_object(o, where, "base", &obj, true, err, errlen)) < 0)
            return rc;
        r->base = json_incref(obj);
    }
    return check_keys(r, where, err, errlen);
}

int kv_deploy_decode(const char *buf, size_t len, const char *key, bool staged,
                     struct kv_deploy_rec *out, char *err, size_t errlen)
{
    json_t *o = NULL;
    const char *where = key ? key : (staged ? "canary" : "history");
    int rc;

    memset(out, 0, sizeof(*out));
    out->staged = staged;
    if (!buf || !len)
        rc = (snprintf(err, errlen, "%s: empty value", where), -EINVAL);
    else if ((rc = json_from_buffer(buf, len, where, &o, err, errlen)) == 0 && !json_is_object(o))
        rc = (snprintf(err, errlen, "%s: not a JSON object", where), -EINVAL);
    if (rc == 0)
        rc = decode_fields(o, where, out, err, errlen);
    json_decref(o);
    if (rc < 0)
        kv_deploy_clear(out);
    return rc;
}

void kv_deploy_clear(struct kv_deploy_rec *r)
{
    free(r->cluster);
    json_string_array_free(r->canary);
    free(r->author);
    free(r->reason);
    json_decref(r->keys);
    json_decref(r->base);
    bool staged = r->staged;
    memset(r, 0, sizeof(*r));
    r->staged = staged;
}
