/* SPDX-License-Identifier: Apache-2.0 */
/* kv_frontdoor: see kv_frontdoor.h. */
#include "kv_frontdoor.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "errmsg.h"
#include "json_util.h"

static char *dump(json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(j);
    return s;
}

/* An optional string field: absent is fine, anything but a string is not. */
static int opt_string(const json_t *o, const char *where, const char *field, char **out, char *err,
                      size_t errlen)
{
    const json_t *v = json_object_get(o, field);
    if (!v)
        return 0;
    if (!json_is_string(v)) {
        errmsg_set(err, errlen, "%s: \"%s\" must be a string", where, field);
        return -EBADMSG;
    }
    return (*out = strdup(json_string_value(v))) ? 0 : -ENOMEM;
}

static int load(const char *json, size_t len, const char *where, json_t **root, char *err,
                size_t errlen)
{
    if (json_from_buffer(json, len, where, root, err, errlen) < 0)
        return -EBADMSG;
    if (!json_is_object(*root)) {
        errmsg_set(err, errlen, "%s: not a JSON object", where);
        json_decref(*root);
        *root = NULL;
        return -EBADMSG;
    }
    return 0;
}

int kv_frontdoor_host_decode(const char *json, size_t len, struct kv_frontdoor_host *out, char *err,
                             size_t errlen)
{
    const char *where = "frontdoor host record";
    json_t *root = NULL;
    int rc;

    memset(out, 0, sizeof(*out));
    if ((rc = load(json, len, where, &root, err, errlen)) < 0)
        return rc;
    if (json_get_bool(root, where, "drained", &out->drained, true, err, errlen) < 0 ||
        opt_string(root, where, "author", &out->author, err, errlen) < 0 ||
        opt_string(root, where, "reason", &out->reason, err, errlen) < 0 ||
        opt_string(root, where, "since", &out->since, err, errlen) < 0) {
        kv_frontdoor_host_clear(out);
        rc = -EBADMSG;
    }
    json_decref(root);
    return rc;
}

char *kv_frontdoor_host_encode(const struct kv_frontdoor_host *h)
{
    json_t *o = json_pack("{s:b}", "drained", h->drained);
    if (o && h->author)
        json_object_set_new(o, "author", json_string(h->author));
    if (o && h->reason)
        json_object_set_new(o, "reason", json_string(h->reason));
    if (o && h->since)
        json_object_set_new(o, "since", json_string(h->since));
    return dump(o);
}

void kv_frontdoor_host_clear(struct kv_frontdoor_host *h)
{
    free(h->author);
    free(h->reason);
    free(h->since);
    memset(h, 0, sizeof(*h));
}

int kv_frontdoor_status_decode(const char *json, size_t len, struct kv_frontdoor_status *out,
                               char *err, size_t errlen)
{
    const char *where = "frontdoor status record";
    json_t *root = NULL, *vips;
    int64_t packets = 0;
    int rc;

    memset(out, 0, sizeof(*out));
    if ((rc = load(json, len, where, &root, err, errlen)) < 0)
        return rc;
    rc = -EBADMSG;
    if (opt_string(root, where, "cluster", &out->cluster, err, errlen) < 0 ||
        opt_string(root, where, "table_checksum", &out->table_checksum, err, errlen) < 0 ||
        opt_string(root, where, "updated", &out->updated, err, errlen) < 0 ||
        json_get_bool(root, where, "drained", &out->drained, false, err, errlen) < 0 ||
        json_get_bool(root, where, "bird_in_sync", &out->bird_in_sync, false, err, errlen) < 0 ||
        json_get_int(root, where, "packets", &packets, 0, INT64_MAX, false, err, errlen) < 0)
        goto out;
    out->packets = (uint64_t)packets;
    vips = json_object_get(root, "vips");
    if (vips && !json_is_array(vips)) {
        errmsg_set(err, errlen, "%s: \"vips\" must be an array", where);
        goto out;
    }
    size_t n = vips ? json_array_size(vips) : 0;
    if (n && !(out->vips = calloc(n, sizeof(*out->vips)))) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(vips, i);
        struct kv_frontdoor_vip *d = &out->vips[out->n_vips];
        const char *w = "frontdoor status record vip";
        if (!json_is_object(v)) {
            errmsg_set(err, errlen, "%s: vips[%zu] is not an object", where, i);
            goto out;
        }
        out->n_vips++;
        if (opt_string(v, w, "vip", &d->vip, err, errlen) < 0 ||
            opt_string(v, w, "route", &d->route, err, errlen) < 0 ||
            opt_string(v, w, "reason", &d->reason, err, errlen) < 0)
            goto out;
        if (!d->vip || !d->route) {
            errmsg_set(err, errlen, "%s: vips[%zu] needs \"vip\" and \"route\"", where, i);
            goto out;
        }
    }
    rc = 0;
out:
    if (rc < 0)
        kv_frontdoor_status_clear(out);
    json_decref(root);
    return rc;
}

char *kv_frontdoor_status_encode(const struct kv_frontdoor_status *s)
{
    json_t *o =
        json_pack("{s:s, s:s, s:b, s:b, s:I, s:s, s:[]}", "cluster", s->cluster ? s->cluster : "",
                  "table_checksum", s->table_checksum ? s->table_checksum : "", "drained",
                  s->drained, "bird_in_sync", s->bird_in_sync, "packets", (json_int_t)s->packets,
                  "updated", s->updated ? s->updated : "", "vips");
    json_t *arr = o ? json_object_get(o, "vips") : NULL;

    for (size_t i = 0; arr && i < s->n_vips; i++) {
        json_t *v = json_pack("{s:s, s:s}", "vip", s->vips[i].vip, "route", s->vips[i].route);
        if (v && s->vips[i].reason)
            json_object_set_new(v, "reason", json_string(s->vips[i].reason));
        if (!v || json_array_append_new(arr, v) < 0) {
            json_decref(o);
            return NULL;
        }
    }
    return dump(o);
}

void kv_frontdoor_status_clear(struct kv_frontdoor_status *s)
{
    for (size_t i = 0; i < s->n_vips; i++) {
        free(s->vips[i].vip);
        free(s->vips[i].route);
        free(s->vips[i].reason);
    }
    free(s->vips);
    free(s->cluster);
    free(s->table_checksum);
    free(s->updated);
    memset(s, 0, sizeof(*s));
}
