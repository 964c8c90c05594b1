/* SPDX-License-Identifier: Apache-2.0 */
/* config_render: rendered HAProxy configs and their diff (config_render.h). */
#include "config_render.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "atomic_file.h"
#include "canary.h"
#include "consul_feed.h"
#include "file_diff.h"
#include "json_util.h"
#include "kv_deploy.h"
#include "kv_key.h"
#include "kv_status.h"
#include "render_files.h"

int config_render_service(const struct template_set *set, const struct snapshot *snap,
                          const struct snapshot_service *svc, const char *cluster, const char *dir,
                          const char *map_dir, struct template_buf *buf, char *err, size_t errlen)
{
    char stats[PATH_MAX], state[PATH_MAX];
    json_t *data = NULL;
    snprintf(stats, sizeof(stats), "%s/%s.sock", dir, svc->def->name);
    snprintf(state, sizeof(state), "%s/%s.state", dir, svc->def->name);
    /* the watcher's defaults; a host's own paths do not change validity */
    struct snapshot_render_opts ro = {.haproxy_cluster = cluster,
                                      .stats_socket = stats,
                                      .server_state_file = state,
                                      .maxconn = 50000,
                                      .agent_addr = "127.0.0.1",
                                      .agent_port = 5555,
                                      .agent_inter_ms = 2000,
                                      .timeout_connect_ms = 5000,
                                      .timeout_client_ms = 30000,
                                      .timeout_server_ms = 30000,
                                      .map_dir = map_dir};
    int rc = snapshot_service_json(snap, svc, &ro, NULL, NULL, false, &data);
    if (rc < 0) {
        snprintf(err, errlen, "template data: %s", strerror(-rc));
        return rc;
    }
    rc = render_text(set, svc->def->template_name, data, buf, err, errlen);
    json_decref(data);
    return rc;
}

/* ---- what the diff needs from KV ---------------------------------------------------- */

static int read_hosts(struct ctl_kv *kv, const char *root, json_t **out, char *err, size_t errlen)
{
    struct consul_kv_list *l = NULL;
    char *prefix = kv_key_printf("%sstatus/", root);
    json_t *by = json_object();
    int rc = prefix && by ? ctl_kv_list(kv, prefix, &l, err, errlen) : -ENOMEM;
    for (size_t i = 0; rc == 0 && l && i < l->n; i++) {
        char host[256], role[16], e[256];
        json_t *v = NULL;
        struct kv_status_rec st;
        if (kv_status_key_parse(l->items[i].key + strlen(prefix), host, role) < 0 ||
            strcmp(role, KV_STATUS_ROLE_HAPROXY) != 0 ||
            json_from_buffer((const char *)l->items[i].value, l->items[i].value_len,
                             l->items[i].key, &v, e, sizeof(e)) < 0 ||
            kv_status_decode(v, &st, e, sizeof(e)) < 0) {
            json_decref(v);
            continue; /* `droverctl status` lists bad entries */
        }
        json_decref(v);
        json_t *arr = json_object_get(by, st.cluster);
        if (!arr)
            json_object_set_new(by, st.cluster, arr = json_array());
        json_array_append_new(arr, json_string(host));
        kv_status_free(&st);
    }
    consul_kv_list_free(l);
    free(prefix);
    if (rc < 0) {
        json_decref(by);
        return rc;
    }
    *out = by;
    return 0;
}

/* The kube cluster names under kube/ (the watcher consumes those it is
 * told; droverctl takes every one present), NULL-terminated, malloc'd. */
static int kube_clusters(const char *root, const struct consul_kv_list *l, char ***out)
{
    char **v = calloc(l->n + 1, sizeof(*v));
    size_t k = 0;
    if (!v)
        return -ENOMEM;
    for (size_t i = 0; i < l->n; i++) {
        struct kv_key key;
        bool seen = false;
        kv_key_parse(root, l->items[i].key, &key);
        if (key.kind != KV_KEY_KUBE_SERVICE && key.kind != KV_KEY_KUBE_NODE)
            continue;
        for (size_t j = 0; j < k && !seen; j++)
            seen = strcmp(v[j], key.seg[0]) == 0;
        if (!seen && !(v[k++] = strdup(key.seg[0]))) {
            json_string_array_free(v);
            return -ENOMEM;
        }
    }
    *out = v;
    return 0;
}

/* ---- rendering both sides -------------------------------------------------------------- */

/* The snapshot a host builds from lists, with values (rel -> value) of
 * cluster applied when given, and the staged change as host sees it. */
static int build(const struct kv_model_opts *mo, const struct consul_kv_list *const *lists,
                 size_t n_lists, const json_t *values, const char *host, struct snapshot **out)
{
    struct snapshot_entry *e = NULL;
    size_t n = 0;
    struct canary_result cr;
    const char *rel;
    json_t *v;
    int rc = consul_feed_entries(lists, n_lists, &e, &n);
    json_object_foreach((json_t *)values, rel, v)
    {
        if (rc < 0)
            break;
        if (!kv_deploy_key_ok(mo->haproxy_cluster, rel))
            continue;
        char *full = kv_key_printf("%s%s", mo->root, rel);
        rc = full ? canary_set_entry(&e, &n, full, v) : -ENOMEM;
        free(full);
    }
    if (rc < 0) {
        snapshot_entries_free(e, n);
        return rc;
    }
    if ((rc = canary_overlay(mo, host, &e, &n, &cr)) < 0)
        return rc;
    return snapshot_build(mo, e, n, (int64_t)time(NULL), NULL, out);
}

static const struct snapshot_service *find_service(const struct snapshot *s, const char *name)
{
    for (size_t i = 0; i < s->n_services; i++)
        if (strcmp(s->services[i].def->name, name) == 0)
            return &s->services[i];
    return NULL;
}

/* Copy the output of `diff -u` of files a and b (labelled la and lb; a
 * missing one is /dev/null) into t, indented; a diff that cannot run says
 * why in its place. */
static void unified_diff(FILE *t, const char *a, const char *la, const char *b, const char *lb)
{
    char err[PATH_MAX * 2 + 128];
    struct file_diff_opts o = {.label_a = la, .label_b = lb, .out = t, .prefix = "    "};
    if (file_diff_unified(a, b, &o, err, sizeof(err)) < 0)
        fprintf(t, "    (%s)\n", err);
}

/* unified_diff of a and b labelled "live PATH" and "with-the-files PATH"
 * with the paths the configs name (la, lb; NULL: /dev/null). */
static void diff_labelled(FILE *t, const char *a, const char *la, const char *b, const char *lb)
{
    char x[PATH_MAX + 16], y[PATH_MAX + 16];
    snprintf(x, sizeof(x), "%s%s", la ? "live " : "/dev/null", la ? la : "");
    snprintf(y, sizeof(y), "%s%s", lb ? "with-the-files " : "/dev/null", lb ? lb : "");
    unified_diff(t, a, x, b, y);
}

/* Whether files a and b (either may be NULL or missing) differ. */
static bool files_differ(const char *a, const char *b)
{
    char *x = NULL, *y = NULL;
    size_t xl = 0, yl = 0;
    bool hx = a && render_read_file(a, &x, &xl) == 0, hy = b && render_read_file(b, &y, &yl) == 0;
    bool differ = hx != hy || xl != yl || (hx && memcmp(x, y, xl) != 0);
    free(x);
    free(y);
    return differ;
}

static const struct kvm_frontend *find_frontend(const struct snapshot_service *s, const char *name)
{
    for (size_t i = 0; s && i < s->def->n_frontends; i++)
        if (strcmp(s->def->frontends[i].name, name) == 0)
            return &s->def->frontends[i];
    return NULL;
}

typedef char *(*file_path_fn)(const char *dir, const struct kvm_service *d,
                              const struct kvm_frontend *f);

/* One side's file of frontend name (path_fn in dir), malloc'd; NULL when
 * that side has no such file. */
static char *side_file(file_path_fn path_fn, const char *dir, const struct snapshot_service *s,
                       const char *name)
{
    const struct kvm_frontend *f = find_frontend(s, name);
    return f ? path_fn(dir, s->def, f) : NULL;
}

/* The route maps and crt-lists of a (written into da by render_files) and
 * b (into db) that differ, frontend by frontend: listed in t as diffs
 * labelled with the path the config names (print false: only counted).
 * Returns how many differ. */
static int diff_files(const struct snapshot_service *a, const char *da,
                      const struct snapshot_service *b, const char *db, bool print, FILE *t)
{
    const file_path_fn kinds[] = {snapshot_map_path, snapshot_crt_list_path};
    int n = 0;
    for (int side = 0; side < 2; side++) {
        const struct snapshot_service *s = side ? b : a;
        for (size_t i = 0; s && i < s->def->n_frontends; i++) {
            const char *name = s->def->frontends[i].name;
            if (side && find_frontend(a, name))
                continue; /* seen with a */
            for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
                char *fa = side_file(kinds[k], da, a, name), *fb = side_file(kinds[k], db, b, name);
                char *la = side_file(kinds[k], RENDER_CONFIG_DIR_DEFAULT, a, name);
                char *lb = side_file(kinds[k], RENDER_CONFIG_DIR_DEFAULT, b, name);
                if ((fa || fb) && files_differ(fa, fb)) {
                    n++;
                    if (print)
                        diff_labelled(t, fa, la, fb, lb);
                }
                free(fa);
                free(fb);
                free(la);
                free(lb);
            }
        }
    }
    return n;
}

/* Side s rendered into buf, naming its route maps and crt-lists in the
 * watcher's default config dir, and those files written into side_dir. */
static int render_side(const struct template_set *set, const struct snapshot *snap,
                       const struct snapshot_service *s, const char *cluster, const char *dir,
                       const char *side_dir, struct template_buf *buf, char *err, size_t errlen)
{
    int rc;
    if (!s)
        return 0;
    if (mkdir(side_dir, 0700) < 0 && errno != EEXIST) {
        rc = -errno;
        snprintf(err, errlen, "mkdir %s: %s", side_dir, strerror(errno));
        return rc;
    }
    if ((rc = render_files_write(side_dir, s->def, err, errlen)) < 0)
        return rc;
    return config_render_service(set, snap, s, cluster, dir, RENDER_CONFIG_DIR_DEFAULT, buf, err,
                                 errlen);
}

static void remove_side(const struct snapshot_service *s, const char *side_dir)
{
    if (s)
        render_files_remove(side_dir, s->def);
    rmdir(side_dir);
}

/* Render name on both sides; "unchanged", "changed", "new", "removed" or
 * "error" (message into t). The configs name their route maps and
 * crt-lists as a watcher with the default --config-dir installs them, and
 * those files are compared too: a route, an SNI filter or an ALPN change
 * shows as its own diff. */
static const char *diff_service(const struct template_set *set, const struct snapshot *before,
                                const struct snapshot *after, const char *cluster, const char *name,
                                const char *dir, FILE *t)
{
    const struct snapshot_service *a = find_service(before, name), *b = find_service(after, name);
    struct template_buf x = {0}, y = {0};
    char err[1024], pa[PATH_MAX], pb[PATH_MAX], da[PATH_MAX], db[PATH_MAX], named[PATH_MAX];
    const char *state = "unchanged";
    snprintf(da, sizeof(da), "%s/live", dir);
    snprintf(db, sizeof(db), "%s/with-the-files", dir);
    if (render_side(set, before, a, cluster, dir, da, &x, err, sizeof(err)) < 0 ||
        render_side(set, after, b, cluster, dir, db, &y, err, sizeof(err)) < 0) {
        fprintf(t, "  %s: cannot render it: %s\n", name, err);
        state = "error";
        goto out;
    }
    bool same_cfg = x.len == y.len && (!x.len || memcmp(x.data, y.data, x.len) == 0);
    if (same_cfg && diff_files(a, da, b, db, false, t) == 0) {
        fprintf(t, "  %s: no change\n", name);
        goto out;
    }
    state = !a ? "new" : !b ? "removed" : "changed";
    snprintf(pa, sizeof(pa), "%s/live.cfg", dir);
    snprintf(pb, sizeof(pb), "%s/new.cfg", dir);
    fprintf(t, "  %s: %s\n", name, state);
    snprintf(named, sizeof(named), "%s/%s.cfg", RENDER_CONFIG_DIR_DEFAULT, name);
    if (!same_cfg && atomic_file_write(pa, x.data ? x.data : "", x.len, 0600) == 0 &&
        atomic_file_write(pb, y.data ? y.data : "", y.len, 0600) == 0)
        diff_labelled(t, a ? pa : NULL, a ? named : NULL, b ? pb : NULL, b ? named : NULL);
    diff_files(a, da, b, db, true, t);
    unlink(pa);
    unlink(pb);
out:
    remove_side(a, da);
    remove_side(b, db);
    template_buf_free(&x);
    template_buf_free(&y);
    return state;
}

/* One group of hosts that see the same inputs: host (NULL: the live ones). */
static int diff_group(const struct kv_model_opts *mo, const struct consul_kv_list *const *lists,
                      const json_t *values, const char *host, json_t *hosts,
                      const struct template_set *set, const char *dir, FILE *t, json_t *out,
                      bool *changed, bool *failed)
{
    struct snapshot *before = NULL, *after = NULL;
    int rc;
    if ((rc = build(mo, lists, 2, NULL, host, &before)) < 0 ||
        (rc = build(mo, lists, 2, values, host, &after)) < 0) {
        snapshot_free(before);
        return rc;
    }
    fprintf(t, "rendered, cluster %s, ", mo->haproxy_cluster);
    if (!json_array_size(hosts))
        fprintf(t, "no host reports it");
    for (size_t i = 0; i < json_array_size(hosts); i++)
        fprintf(t, "%s%s", i ? ", " : "", json_string_value(json_array_get(hosts, i)));
    fprintf(t, "%s:\n", host ? " (canary of the staged change)" : "");
    json_t *svcs = json_object();
    for (int side = 0; side < 2; side++) {
        const struct snapshot *s = side ? after : before;
        for (size_t i = 0; i < s->n_services; i++) {
            const char *name = s->services[i].def->name;
            if (json_object_get(svcs, name))
                continue;
            const char *st = diff_service(set, before, after, mo->haproxy_cluster, name, dir, t);
            *changed |= strcmp(st, "unchanged") != 0 && strcmp(st, "error") != 0;
            *failed |= strcmp(st, "error") == 0;
            json_object_set_new(svcs, name, json_string(st));
        }
    }
    json_array_append_new(out, json_pack("{s:s, s:O, s:s?, s:o}", "cluster", mo->haproxy_cluster,
                                         "hosts", hosts, "canary", host, "services", svcs));
    snapshot_free(before);
    snapshot_free(after);
    return 0;
}

/* Every group of hosts of cluster (or o->host alone). */
static int diff_cluster(struct ctl_kv *kv, const struct config_render_diff_opts *o,
                        const char *cluster, const struct consul_kv_list *kube, char *const *kcs,
                        size_t n_kcs, const json_t *values, const json_t *hosts,
                        const struct template_set *set, const char *dir, FILE *t, json_t *out,
                        bool *changed, bool *failed, char *err, size_t errlen)
{
    char prefix[400];
    struct consul_kv_list *hp = NULL;
    struct kv_deploy_rec staged = {0};
    bool have_staged = false;
    int rc;
    snprintf(prefix, sizeof(prefix), "%shaproxy/%s/", o->root, cluster);
    if ((rc = ctl_kv_list(kv, prefix, &hp, err, errlen)) < 0)
        return rc;
    char *ckey = kv_deploy_canary_key(o->root, cluster);
    for (size_t i = 0; ckey && i < hp->n; i++) {
        char e[256];
        if (!strcmp(hp->items[i].key, ckey) &&
            kv_deploy_decode((const char *)hp->items[i].value, hp->items[i].value_len, ckey, true,
                             &staged, e, sizeof(e)) == 0)
            have_staged = true;
    }
    free(ckey);
    struct kv_model_opts mo = {.root = o->root,
                               .haproxy_cluster = cluster,
                               .kube_clusters = (const char *const *)kcs,
                               .n_kube_clusters = n_kcs};
    const struct consul_kv_list *lists[2] = {kube, hp};
    json_t *live = json_array(), *all = json_object_get(hosts, cluster);
    for (size_t i = 0; i < json_array_size(all); i++) {
        const char *h = json_string_value(json_array_get(all, i));
        if (!(have_staged && kv_deploy_has_canary(&staged, h)) && (!o->host || !strcmp(o->host, h)))
            json_array_append(live, json_array_get(all, i));
    }
    if (!o->host || json_array_size(live))
        rc = diff_group(&mo, lists, values, NULL, live, set, dir, t, out, changed, failed);
    for (size_t i = 0; rc == 0 && have_staged && i < staged.n_canary; i++) {
        if (o->host && strcmp(o->host, staged.canary[i]) != 0)
            continue;
        json_t *one = json_pack("[s]", staged.canary[i]);
        rc = diff_group(&mo, lists, values, staged.canary[i], one, set, dir, t, out, changed,
                        failed);
        json_decref(one);
    }
    json_decref(live);
    if (have_staged)
        kv_deploy_clear(&staged);
    consul_kv_list_free(hp);
    if (rc < 0)
        snprintf(err, errlen, "rendering cluster %s: %s", cluster, strerror(-rc));
    return rc;
}

int config_render_diff(struct ctl_kv *kv, const struct config_render_diff_opts *o,
                       const json_t *values, FILE *t, json_t *out, bool *changed, bool *failed,
                       char *err, size_t errlen)
{
    struct template_set *set = NULL;
    struct consul_kv_list *kube = NULL;
    json_t *hosts = NULL, *clusters = json_object(), *rendered = json_array();
    char **kcs = NULL; /* owned unless it is o->kube_clusters */
    size_t n_kcs = 0;
    char dir[] = "/tmp/droverctl-diff.XXXXXX", prefix[400];
    const char *rel, *cluster;
    json_t *v;
    int rc = clusters && rendered ? 0 : -ENOMEM;

    json_object_foreach((json_t *)values, rel, v)
    {
        struct kv_key k;
        char *full = kv_key_printf("%s%s", o->root, rel);
        if (full)
            kv_key_parse(o->root, full, &k);
        if (full && (k.kind == KV_KEY_HAPROXY_SERVICE || k.kind == KV_KEY_HAPROXY_FORCE))
            json_object_set_new(clusters, k.seg[0], json_true());
        free(full);
    }
    if (rc < 0 || !json_object_size(clusters))
        goto out;
    snprintf(prefix, sizeof(prefix), "%skube/", o->root);
    if (render_load_templates(o->template_dir, &set, err, errlen) < 0) {
        /* the per-key diff stands on its own; say why there is no render */
        fprintf(t, "rendered: skipped: %s (--template-dir)\n", err);
        goto out;
    }
    if ((rc = read_hosts(kv, o->root, &hosts, err, errlen)) < 0 ||
        (rc = ctl_kv_list(kv, prefix, &kube, err, errlen)) < 0)
        goto out;
    if (o->n_kube_clusters) {
        kcs = (char **)o->kube_clusters;
        n_kcs = o->n_kube_clusters;
    } else if ((rc = kube_clusters(o->root, kube, &kcs)) < 0) {
        goto out;
    } else {
        while (kcs[n_kcs])
            n_kcs++;
    }
    if (o->host) {
        const char *hc = NULL;
        json_object_foreach(hosts, cluster, v)
        {
            for (size_t i = 0; i < json_array_size(v); i++)
                if (!strcmp(json_string_value(json_array_get(v, i)), o->host))
                    hc = cluster;
        }
        if (!hc) {
            snprintf(err, errlen, "--host %s is not in the fleet (no readable status/%s/haproxy)",
                     o->host, o->host);
            rc = -ENOENT;
            goto out;
        }
        if (!json_object_get(clusters, hc)) {
            fprintf(t, "rendered, host %s (cluster %s): no key of its cluster changes\n", o->host,
                    hc);
            goto out;
        }
    }
    if (!mkdtemp(dir)) {
        rc = -errno;
        snprintf(err, errlen, "mkdtemp %s: %s", dir, strerror(errno));
        goto out;
    }
    json_object_foreach(clusters, cluster, v)
    {
        if (rc == 0)
            rc = diff_cluster(kv, o, cluster, kube, kcs, n_kcs, values, hosts, set, dir, t,
                              rendered, changed, failed, err, errlen);
    }
    rmdir(dir);
out:
    json_object_set_new(out, "rendered", rendered);
    if (kcs != (char **)o->kube_clusters)
        json_string_array_free(kcs);
    consul_kv_list_free(kube);
    json_decref(hosts);
    json_decref(clusters);
    template_set_free(set);
    return rc;
}
