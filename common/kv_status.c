/* SPDX-License-Identifier: Apache-2.0 */
/* kv_status: R status/<host>/<role> (kv_status.h, docs/kv-schema.md). */
#include "kv_status.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "json_util.h"
#include "kv_key.h"
#include "timefmt.h"

static bool valid_role(const char *role)
{
    return role && (strcmp(role, KV_STATUS_ROLE_HAPROXY) == 0 ||
                    strcmp(role, KV_STATUS_ROLE_DIRECTOR) == 0);
}

char *kv_status_key(const char *root, const char *host, const char *role)
{
    if (!kv_valid_segment(host) || !valid_role(role))
        return NULL;
    return kv_key_printf("%sstatus/%s/%s", root ? root : KV_DEFAULT_ROOT, host, role);
}

int kv_status_key_parse(const char *rel, char host[256], char role[16])
{
    char seg[3][KV_KEY_SEG_MAX + 1];
    if (!rel || kv_key_split(rel, seg, 3) != 2 || !valid_role(seg[1]))
        return -EINVAL;
    strcpy(host, seg[0]);
    strcpy(role, seg[1]);
    return 0;
}

static json_t *str_or_empty(const char *s)
{
    return json_string(s ? s : "");
}

static json_t *strv_json(char *const *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        if (json_array_append_new(a, json_string(v[i] ? v[i] : "")) < 0) {
            json_decref(a);
            return NULL;
        }
    return a;
}

static int set_time(json_t *o, const char *field, int64_t unix_s)
{
    char buf[40];
    if (timefmt_format_rfc3339(unix_s, buf, sizeof(buf)) < 0)
        buf[0] = '\0';
    return json_object_set_new(o, field, json_string(buf));
}

json_t *kv_status_errors_json(const struct kv_status_errors *e)
{
    return json_pack("{s:I, s:I, s:I, s:I, s:I}", "requests", (json_int_t)e->requests, "req_errors",
                     (json_int_t)e->req_errors, "conn_errors", (json_int_t)e->conn_errors,
                     "resp_errors", (json_int_t)e->resp_errors, "http_5xx",
                     (json_int_t)e->http_5xx);
}

json_t *kv_status_encode(const struct kv_status_rec *r)
{
    json_t *o = json_object(), *svcs = json_object();
    int rc = !o || !svcs;
    rc |= json_object_set_new(o, "host", str_or_empty(r->host)) ||
          json_object_set_new(o, "role", str_or_empty(r->role)) ||
          json_object_set_new(o, "cluster", str_or_empty(r->cluster)) ||
          json_object_set_new(o, "version", str_or_empty(r->version)) ||
          set_time(o, "started", r->started_unix) || set_time(o, "updated", r->updated_unix) ||
          json_object_set_new(o, "kv_index", json_integer((json_int_t)r->kv_index)) ||
          json_object_set_new(o, "snapshot", str_or_empty(r->snapshot)) ||
          json_object_set_new(o, "guards", strv_json(r->guards, r->n_guards));
    for (size_t i = 0; !rc && i < r->n_services; i++) {
        const struct kv_status_service *s = &r->services[i];
        json_t *so = json_pack("{s:s, s:s, s:I}", "definition", s->definition ? s->definition : "",
                               "config_hash", s->config_hash ? s->config_hash : "", "reloads",
                               (json_int_t)s->reloads);
        rc |= !so;
        if (!rc && s->error)
            rc |= json_object_set_new(so, "error", json_string(s->error));
        if (!rc && s->have_errors)
            rc |= json_object_set_new(so, "errors", kv_status_errors_json(&s->errors));
        if (!rc && s->n_slots) {
            json_t *sl = json_object();
            rc |= !sl;
            for (size_t k = 0; !rc && k < s->n_slots; k++)
                rc |= json_object_set_new(sl, s->slots[k].server, json_string(s->slots[k].slot));
            rc |= json_object_set_new(so, "slots", sl);
        }
        rc |= json_object_set_new(svcs, s->name, so);
    }
    if (!rc && r->last_error)
        rc |= json_object_set_new(o, "last_error", json_string(r->last_error));
    if (!rc && r->canary_version)
        rc |= json_object_set_new(o, "canary", json_integer((json_int_t)r->canary_version));
    if (!rc && r->role && strcmp(r->role, KV_STATUS_ROLE_DIRECTOR) == 0) {
        json_t *d = json_object();
        rc |= !d;
        if (!rc && r->table_checksum)
            rc |= json_object_set_new(d, "table_checksum", json_string(r->table_checksum));
        rc |= json_object_set_new(d, "vips", strv_json(r->vips, r->n_vips)) ||
              json_object_set_new(o, "director", d);
    }
    if (rc) {
        json_decref(o);
        json_decref(svcs);
        return NULL;
    }
    if (json_object_set_new(o, "services", svcs) < 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static int dup_field(const json_t *o, const char *where, const char *field, bool required,
                     char **out, char *err, size_t errlen)
{
    const char *s = NULL;
    int rc = json_get_string(o, where, field, &s, required, err, errlen);
    if (rc < 0)
        return rc;
    if (!s)
        return 0;
    return (*out = strdup(s)) ? 0 : -ENOMEM;
}

static int get_time(const json_t *o, const char *field, int64_t *out, char *err, size_t errlen)
{
    const char *s = NULL;
    int rc = json_get_string(o, "status", field, &s, true, err, errlen);
    if (rc < 0)
        return rc;
    char back[40];
    if (timefmt_parse_rfc3339(s, out) < 0 || timefmt_format_rfc3339(*out, back, sizeof(back)) < 0) {
        snprintf(err, errlen, "status: %s: not an RFC 3339 time in years 0000..9999: \"%.40s\"",
                 field, s);
        return -EINVAL;
    }
    return 0;
}

/* services.<name>.slots: {"<backend>/<server>": "slot<k>", ...}. */
static int decode_slots(const json_t *so, const char *where, struct kv_status_service *s, char *err,
                        size_t errlen)
{
    json_t *sl = NULL, *v;
    const char *server;
    int rc = json_get_object(so, where, "slots", &sl, false, err, errlen);

    if (rc < 0 || !sl)
        return rc;
    s->slots = calloc(json_object_size(sl) + 1, sizeof(*s->slots));
    if (!s->slots)
        return -ENOMEM;
    json_object_foreach(sl, server, v)
    {
        if (!json_is_string(v)) {
            snprintf(err, errlen, "%s: slots.%.200s: not a string", where, server);
            return -EINVAL;
        }
        struct kv_status_slot *e = &s->slots[s->n_slots++];
        if (!(e->server = strdup(server)) || !(e->slot = strdup(json_string_value(v))))
            return -ENOMEM;
    }
    return 0;
}

/* services.<name>.errors: every counter required, 0.. */
static int decode_errors(const json_t *so, const char *where, struct kv_status_service *s,
                         char *err, size_t errlen)
{
    json_t *eo = NULL;
    char w[340];
    int rc = json_get_object(so, where, "errors", &eo, false, err, errlen);
    if (rc < 0 || !eo)
        return rc;
    snprintf(w, sizeof(w), "%s.errors", where);
    struct {
        const char *name;
        int64_t *v;
    } f[] = {{"requests", &s->errors.requests},
             {"req_errors", &s->errors.req_errors},
             {"conn_errors", &s->errors.conn_errors},
             {"resp_errors", &s->errors.resp_errors},
             {"http_5xx", &s->errors.http_5xx}};
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
        if ((rc = json_get_int(eo, w, f[i].name, f[i].v, 0, INT64_MAX, true, err, errlen)) < 0)
            return rc;
    s->have_errors = true;
    return 0;
}

static int decode_services(const json_t *svcs, struct kv_status_rec *out, char *err, size_t errlen)
{
    const char *name;
    json_t *so;
    size_t n = json_object_size(svcs);
    out->services = calloc(n ? n : 1, sizeof(*out->services));
    if (!out->services)
        return -ENOMEM;
    json_object_foreach((json_t *)svcs, name, so)
    {
        struct kv_status_service *s = &out->services[out->n_services++];
        char where[300];
        int rc;
        snprintf(where, sizeof(where), "status: services.%.200s", name);
        if (!json_is_object(so)) {
            snprintf(err, errlen, "%s: not an object", where);
            return -EINVAL;
        }
        if (!(s->name = strdup(name)))
            return -ENOMEM;
        if ((rc = dup_field(so, where, "definition", true, &s->definition, err, errlen)) < 0 ||
            (rc = dup_field(so, where, "config_hash", true, &s->config_hash, err, errlen)) < 0 ||
            (rc = json_get_int(so, where, "reloads", &s->reloads, 0, INT64_MAX, true, err,
                               errlen)) < 0 ||
            (rc = dup_field(so, where, "error", false, &s->error, err, errlen)) < 0 ||
            (rc = decode_slots(so, where, s, err, errlen)) < 0 ||
            (rc = decode_errors(so, where, s, err, errlen)) < 0)
            return rc;
    }
    return 0;
}

int kv_status_decode(const json_t *v, struct kv_status_rec *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    json_t *svcs = NULL, *dir = NULL;
    int64_t idx = 0, canary = 0;
    int rc;
    if (!json_is_object(v)) {
        snprintf(err, errlen, "status: not a JSON object");
        return -EINVAL;
    }
    if ((rc = dup_field(v, "status", "host", true, &out->host, err, errlen)) < 0 ||
        (rc = dup_field(v, "status", "role", true, &out->role, err, errlen)) < 0 ||
        (rc = dup_field(v, "status", "cluster", true, &out->cluster, err, errlen)) < 0 ||
        (rc = dup_field(v, "status", "version", true, &out->version, err, errlen)) < 0 ||
        (rc = get_time(v, "started", &out->started_unix, err, errlen)) < 0 ||
        (rc = get_time(v, "updated", &out->updated_unix, err, errlen)) < 0 ||
        (rc = json_get_int(v, "status", "kv_index", &idx, 0, INT64_MAX, true, err, errlen)) < 0 ||
        (rc = json_get_int(v, "status", "canary", &canary, 0, INT64_MAX, false, err, errlen)) < 0 ||
        (rc = dup_field(v, "status", "snapshot", true, &out->snapshot, err, errlen)) < 0 ||
        (rc = json_get_string_array(v, "status", "guards", &out->guards, &out->n_guards, true, err,
                                    errlen)) < 0 ||
        (rc = json_get_object(v, "status", "services", &svcs, true, err, errlen)) < 0 ||
        (rc = dup_field(v, "status", "last_error", false, &out->last_error, err, errlen)) < 0 ||
        (rc = json_get_object(v, "status", "director", &dir, false, err, errlen)) < 0)
        goto fail;
    out->kv_index = (uint64_t)idx;
    out->canary_version = (uint64_t)canary;
    if (!valid_role(out->role)) {
        snprintf(err, errlen, "status: role: \"%.20s\" is not haproxy or director", out->role);
        rc = -EINVAL;
        goto fail;
    }
    if ((rc = decode_services(svcs, out, err, errlen)) < 0)
        goto fail;
    if (dir && ((rc = dup_field(dir, "status: director", "table_checksum", false,
                                &out->table_checksum, err, errlen)) < 0 ||
                (rc = json_get_string_array(dir, "status: director", "vips", &out->vips,
                                            &out->n_vips, false, err, errlen)) < 0))
        goto fail;
    return 0;
fail:
    kv_status_free(out);
    return rc;
}

void kv_status_free(struct kv_status_rec *r)
{
    if (!r)
        return;
    free(r->host);
    free(r->role);
    free(r->cluster);
    free(r->version);
    free(r->snapshot);
    for (size_t i = 0; i < r->n_services; i++) {
        free(r->services[i].name);
        free(r->services[i].definition);
        free(r->services[i].config_hash);
        free(r->services[i].error);
        for (size_t k = 0; k < r->services[i].n_slots; k++) {
            free(r->services[i].slots[k].server);
            free(r->services[i].slots[k].slot);
        }
        free(r->services[i].slots);
    }
    free(r->services);
    json_string_array_free(r->guards);
    free(r->last_error);
    free(r->table_checksum);
    json_string_array_free(r->vips);
    memset(r, 0, sizeof(*r));
}
