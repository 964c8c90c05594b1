/* SPDX-License-Identifier: Apache-2.0 */
/* config_check: droverctl config check (config_check.h). */
#include "config_check.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "atomic_file.h"
#include "config_render.h"
#include "json_util.h"
#include "kv_director.h"
#include "kv_haproxy.h"
#include "kv_key.h"
#include "kv_kube.h"
#include "render.h"
#include "render_files.h"
#include "tls_files.h"
#include "snapshot.h"
#include "str_affix.h"

#define ERRLEN 2048

struct check {
    const struct ctl_check_opts *o;
    FILE *text; /* the report, into buf */
    char *buf;
    size_t blen;
    json_t *keys;   /* key -> {"file", "ok", "error"} */
    json_t *values; /* key -> value, the accepted ones */
    bool failed;
};

static void refuse(struct check *c, const char *key, const char *file, const char *msg)
{
    c->failed = true;
    fprintf(c->text, "%s: %s: %s\n", file, key ? key : "(file)", msg);
    json_object_set_new(c->keys, key ? key : file,
                        json_pack("{s:s, s:b, s:s}", "file", file, "ok", 0, "error", msg));
}

/* Decode one value with the decoder of its record; 0 or -EINVAL (err). */
static int decode(const struct kv_key *k, const json_t *v, char *err, size_t errlen)
{
    int rc = -EINVAL;
    const char *name = NULL;
    switch (k->kind) {
    case KV_KEY_HAPROXY_SERVICE: {
        struct kvm_service s = {0};
        rc = kvm_service_decode(v, k->seg[1], &s, err, errlen);
        kvm_service_clear(&s);
        break;
    }
    case KV_KEY_HAPROXY_FORCE:
    case KV_KEY_HAPROXY_FORCE_KV_LOSS: {
        struct kvm_force f = {0};
        rc = kvm_force_decode(v, &f, err, errlen);
        kvm_force_clear(&f);
        break;
    }
    case KV_KEY_DIRECTOR:
        switch (kv_director_key_parse(k->rel, &name)) {
        case KV_DIRECTOR_PROXY: {
            struct kv_director_proxy p;
            rc = kv_director_proxy_decode(v, name, k->rel, &p, err, errlen);
            kv_director_proxy_clear(&p);
            break;
        }
        case KV_DIRECTOR_VIP: {
            struct kv_director_vip x;
            rc = kv_director_vip_decode(v, name, k->rel, &x, err, errlen);
            kv_director_vip_clear(&x);
            break;
        }
        case KV_DIRECTOR_CONFIG: {
            struct kv_director_config cf;
            rc = kv_director_config_decode(v, k->rel, &cf, err, errlen);
            break;
        }
        case KV_DIRECTOR_FORCE: {
            struct kv_director_force f;
            rc = kv_director_force_decode(v, k->rel, &f, err, errlen);
            kv_director_force_clear(&f);
            break;
        }
        default:
            snprintf(err, errlen, "unknown key: not a record of docs/kv-schema.md");
        }
        break;
    default:
        snprintf(err, errlen,
                 "unknown key: operators define haproxy/<cluster>/services/<name>, "
                 "haproxy/<cluster>/force-removal/<backend>, haproxy/<cluster>/force-kv-loss "
                 "and director/<cluster>/"
                 "{proxies/<host>,vips/<name>,config,force}");
    }
    return rc;
}

static void check_file(struct check *c, const char *file)
{
    char err[ERRLEN];
    json_t *doc = NULL, *v;
    const char *key;
    if (json_load_file_strict(file, &doc, err, sizeof(err)) < 0) {
        refuse(c, NULL, file, err);
        return;
    }
    if (!json_is_object(doc)) {
        refuse(c, NULL, file, "not a JSON object of KV keys (below the root) and their values");
        json_decref(doc);
        return;
    }
    json_object_foreach(doc, key, v)
    {
        struct kv_key k;
        char *full = kv_key_printf("%s%s", c->o->root, key);
        if (!full) {
            refuse(c, key, file, "out of memory");
            continue;
        }
        kv_key_parse(c->o->root, full, &k); /* k.rel points into full */
        if (json_object_get(c->values, key) || json_object_get(c->keys, key)) {
            free(full);
            refuse(c, key, file, "defined twice");
            continue;
        }
        int rc = decode(&k, v, err, sizeof(err));
        free(full);
        if (rc < 0) {
            refuse(c, key, file, err);
            continue;
        }
        json_object_set(c->values, key, v);
        json_object_set_new(c->keys, key, json_pack("{s:s, s:b}", "file", file, "ok", 1));
    }
    json_decref(doc);
}

/* Render every HAProxy service of cluster and check it. */
static void render_cluster(struct check *c, const char *cluster, struct template_set *set,
                           const char *dir, bool run_check)
{
    char err[ERRLEN], prefix[300];
    struct snapshot_entry *e = calloc(json_object_size(c->values) + 1, sizeof(*e));
    size_t n = 0;
    const char *key;
    json_t *v;
    struct snapshot *snap = NULL;
    snprintf(prefix, sizeof(prefix), "haproxy/%s/", cluster);
    json_object_foreach(c->values, key, v)
    {
        if (!e || !str_has_prefix(key, prefix))
            continue;
        e[n].key = kv_key_printf("%s%s", c->o->root, key);
        e[n].value = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
        e[n].len = e[n].value ? strlen(e[n].value) : 0;
        n++;
    }
    struct kv_model_opts m = {.root = c->o->root, .haproxy_cluster = cluster};
    if (!e || snapshot_build(&m, e, n, (int64_t)time(NULL), NULL, &snap) < 0) {
        refuse(c, prefix, "render", "out of memory building the snapshot");
        return;
    }
    for (size_t i = 0; i < snap->n_services; i++) {
        const struct snapshot_service *svc = &snap->services[i];
        char path[PATH_MAX], rel[300];
        struct template_buf buf = {0};
        int rc;
        snprintf(rel, sizeof(rel), "haproxy/%s/services/%s", cluster, svc->def->name);
        snprintf(path, sizeof(path), "%s/%s.cfg", dir, svc->def->name);
        const char *json_file =
            json_string_value(json_object_get(json_object_get(c->keys, rel), "file"));
        /* as the watcher does before a reload: the certificate and CA
         * files checked (only with `haproxy -c`, which reads them too), the
         * route maps and crt-lists written next to the config and named
         * there, so `haproxy -c` reads every crt-list entry with its SNI
         * filters and ALPN */
        rc = run_check ? tls_files_check(svc->def, err, sizeof(err)) : 0;
        if (rc == 0)
            rc = render_files_write(dir, svc->def, err, sizeof(err));
        if (rc == 0)
            rc = config_render_service(set, snap, svc, cluster, dir, dir, &buf, err, sizeof(err));
        if (rc == 0 && (rc = atomic_file_write(path, buf.data ? buf.data : "", buf.len, 0644)) < 0)
            snprintf(err, sizeof(err), "writing %.1024s: %s", path, strerror(-rc));
        if (rc == 0 && run_check)
            rc = render_check_file(c->o->haproxy_bin, path, err, sizeof(err));
        if (rc < 0) {
            char *from = strdup(json_file ? json_file : "?"); /* json_file dies with the entry */
            json_object_del(c->keys, rel);
            refuse(c, rel, from ? from : "?", err);
            free(from);
        } else {
            json_object_set_new(json_object_get(c->keys, rel), "rendered", json_true());
            json_object_set_new(json_object_get(c->keys, rel), "haproxy_check",
                                json_boolean(run_check));
        }
        render_files_remove(dir, svc->def);
        unlink(path);
        template_buf_free(&buf);
    }
    snapshot_free(snap);
}

static bool on_path(const char *bin)
{
    if (!bin || !*bin)
        return false;
    if (strchr(bin, '/'))
        return access(bin, X_OK) == 0;
    const char *p = getenv("PATH");
    char dir[PATH_MAX];
    while (p && *p) {
        size_t len = strcspn(p, ":");
        snprintf(dir, sizeof(dir), "%.*s/%s", (int)len, p, bin);
        if (len && access(dir, X_OK) == 0)
            return true;
        p += len + (p[len] == ':');
    }
    return false;
}

/* Open the report of c and check every file into it (decoders only).
 * 0, or -ENOMEM with nothing left to free. */
static int check_begin(struct check *c, const struct ctl_check_opts *o, int n, char *const *files)
{
    *c = (struct check){.o = o, .keys = json_object(), .values = json_object()};
    c->text = open_memstream(&c->buf, &c->blen);
    if (!c->text || !c->keys || !c->values) {
        if (c->text)
            fclose(c->text);
        free(c->buf);
        json_decref(c->keys);
        json_decref(c->values);
        return -ENOMEM;
    }
    for (int i = 0; i < n; i++)
        check_file(c, files[i]);
    return 0;
}

/* Close the report of c: doc (reference taken) becomes *json, the text
 * *text (both malloc'd); c's objects are released. 0 or -ENOMEM. */
static int check_end(struct check *c, json_t *doc, char **text, char **json)
{
    *json = doc ? json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(doc);
    json_decref(c->keys);
    json_decref(c->values);
    if (fclose(c->text) != 0 || !c->buf || !*json) {
        free(c->buf);
        free(*json);
        return -ENOMEM;
    }
    *text = c->buf;
    return 0;
}

int ctl_config_check(const struct ctl_check_opts *o, int n, char *const *files, char **text,
                     char **json)
{
    struct check c;
    char err[ERRLEN], dir[] = "/tmp/droverctl-check.XXXXXX";
    struct template_set *set = NULL;
    bool run_check = on_path(o->haproxy_bin);
    if (check_begin(&c, o, n, files) < 0)
        return -ENOMEM;
    /* the clusters with HAProxy services */
    json_t *clusters = json_object();
    const char *key;
    json_t *v;
    json_object_foreach(c.values, key, v)
    {
        struct kv_key k;
        char *full = kv_key_printf("%s%s", o->root, key);
        if (full)
            kv_key_parse(o->root, full, &k);
        if (full && k.kind == KV_KEY_HAPROXY_SERVICE)
            json_object_set_new(clusters, k.seg[0], json_true());
        free(full);
    }
    if (json_object_size(clusters)) {
        if (render_load_templates(o->template_dir, &set, err, sizeof(err)) < 0) {
            refuse(&c, NULL, o->template_dir, err);
        } else if (!mkdtemp(dir)) {
            refuse(&c, NULL, dir, strerror(errno));
        } else {
            json_object_foreach(clusters, key, v) render_cluster(&c, key, set, dir, run_check);
            rmdir(dir);
        }
        if (!run_check)
            fprintf(c.text, "note: %s not found; `haproxy -c` skipped (rendering checked)\n",
                    o->haproxy_bin && *o->haproxy_bin ? o->haproxy_bin : "haproxy");
    }
    json_decref(clusters);
    template_set_free(set);
    json_object_foreach(c.keys, key, v) if (json_is_true(json_object_get(v, "ok")))
        fprintf(c.text, "%s: %s: ok%s\n", json_string_value(json_object_get(v, "file")), key,
                json_is_true(json_object_get(v, "haproxy_check")) ? " (rendered, haproxy -c passed)"
                : json_is_true(json_object_get(v, "rendered"))    ? " (rendered)"
                                                                  : "");
    fprintf(c.text, "%s\n", c.failed ? "check: REFUSED" : "check: ok");
    json_t *doc =
        json_pack("{s:b, s:O, s:b}", "ok", !c.failed, "keys", c.keys, "haproxy_check", run_check);
    bool failed = c.failed;
    if (check_end(&c, doc, text, json) < 0)
        return -ENOMEM;
    return failed ? 1 : 0;
}

/* The top-level fields of a and b (objects) that differ, as text lines. */
static void field_diff(FILE *t, json_t *arr, const json_t *a, const json_t *b)
{
    const char *f;
    json_t *v;
    json_t *both = json_object();
    json_object_update(both, (json_t *)a);
    json_object_update(both, (json_t *)b);
    json_object_foreach(both, f, v)
    {
        const json_t *x = json_object_get(a, f), *y = json_object_get(b, f);
        if (x && y && json_equal(x, y))
            continue;
        char *xs = x ? kv_canonical(x) : NULL, *ys = y ? kv_canonical(y) : NULL;
        fprintf(t, "  %s: %.200s -> %.200s\n", f, xs ? xs : "(none)", ys ? ys : "(none)");
        json_array_append_new(arr, json_string(f));
        free(xs);
        free(ys);
    }
    json_decref(both);
}

int ctl_config_diff(struct ctl_kv *kv, const struct ctl_check_opts *o, int n, char *const *files,
                    char **text, char **json)
{
    struct check c;
    char err[ERRLEN];
    bool changes = false, consul_failed = false;
    if (check_begin(&c, o, n, files) < 0)
        return -ENOMEM;
    const char *key;
    json_t *v;
    json_object_foreach(c.values, key, v)
    {
        struct consul_kv_list *l = NULL;
        char *full = kv_key_printf("%s%s", o->root, key);
        json_t *entry = json_object_get(c.keys, key), *live = NULL;
        if (!full || ctl_kv_get(kv, full, &l, err, sizeof(err)) < 0) {
            fprintf(c.text, "%s: cannot read the live value: %s\n", key, full ? err : "ENOMEM");
            consul_failed = true;
            free(full);
            continue;
        }
        free(full);
        if (!l || !l->n) {
            fprintf(c.text, "%s: new\n", key);
            json_object_set_new(entry, "change", json_string("new"));
            changes = true;
        } else if (json_from_buffer((const char *)l->items[0].value, l->items[0].value_len, key,
                                    &live, err, sizeof(err)) < 0 ||
                   !json_equal(live, v)) {
            json_t *fields = json_array();
            fprintf(c.text, "%s: changed\n", key);
            if (live && json_is_object(live) && json_is_object(v))
                field_diff(c.text, fields, live, v);
            else
                fprintf(c.text, "  (the live value is not a JSON object: replaced whole)\n");
            json_object_set_new(entry, "change", json_string("changed"));
            json_object_set_new(entry, "fields", fields);
            changes = true;
        } else {
            fprintf(c.text, "%s: unchanged\n", key);
            json_object_set_new(entry, "change", json_string("unchanged"));
        }
        json_decref(live);
        consul_kv_list_free(l);
    }
    /* what the hosts would install: only for files that passed */
    json_t *doc = json_object();
    bool rendered_changes = false, render_failed = false;
    if (!c.failed && !consul_failed && doc) {
        struct config_render_diff_opts ro = {.root = o->root,
                                             .template_dir = o->template_dir,
                                             .host = o->host,
                                             .kube_clusters = o->kube_clusters,
                                             .n_kube_clusters = o->n_kube_clusters};
        if (config_render_diff(kv, &ro, c.values, c.text, doc, &rendered_changes, &render_failed,
                               err, sizeof(err)) < 0) {
            fprintf(c.text, "rendered: %s\n", err);
            render_failed = true;
        }
    }
    changes |= rendered_changes;
    int rc = c.failed || consul_failed || render_failed ? 1 : changes ? 3 : 0;
    fprintf(c.text, "%s\n",
            rc == 1   ? "diff: REFUSED"
            : rc == 3 ? "diff: changes"
                      : "diff: no change");
    json_t *summary =
        json_pack("{s:b, s:b, s:O}", "ok", rc != 1, "changes", changes, "keys", c.keys);
    if (doc && summary)
        json_object_update(doc, summary);
    json_decref(summary);
    return check_end(&c, doc, text, json) < 0 ? -ENOMEM : rc;
}
