/* SPDX-License-Identifier: Apache-2.0 */
/* fleet: the fleet view of droverctl status (fleet.h). */
#include "fleet.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_util.h"
#include "kv_deploy.h"
#include "kv_haproxy.h"
#include "kv_key.h"
#include "kv_kube.h"
#include "kv_status.h"

/* The live definition of cluster/name, or NULL. */
static const struct consul_kv *live_def(const char *root, const struct consul_kv_list *defs,
                                        const char *cluster, const char *name)
{
    char *key = kv_key_printf("%shaproxy/%s/services/%s", root, cluster, name);
    const struct consul_kv *hit = NULL;
    for (size_t i = 0; key && defs && i < defs->n; i++)
        if (strcmp(defs->items[i].key, key) == 0)
            hit = &defs->items[i];
    free(key);
    return hit;
}

/* Worse states rank higher. Compared by table index, not by inlined
 * strcmp of literals: gcc -O3 folds those into a false -Wstring-compare. */
static int rank(const char *state)
{
    static const char *const order[] = {"ok", "guarded", "behind", "refusing"};
    size_t len = strlen(state);
    for (int i = 3; i > 0; i--)
        if (len == strlen(order[i]) && memcmp(state, order[i], len) == 0)
            return i;
    return 0;
}

static const char *worse(const char *a, const char *b)
{
    return rank(b) > rank(a) ? b : a;
}

/* Whether the watcher's own decoder takes the live value of service name
 * (0), else -EINVAL with its message in err. */
static int live_valid(const struct consul_kv *d, const char *name, char *err, size_t errlen)
{
    json_t *v = NULL;
    struct kvm_service svc = {0};
    int rc = json_from_buffer((const char *)d->value, d->value_len, d->key, &v, err, errlen);
    if (rc == 0)
        rc = kvm_service_decode(v, name, &svc, err, errlen);
    kvm_service_clear(&svc);
    json_decref(v);
    return rc;
}

/* One HAProxy host's services against the live definitions. */
/* The staged value of service name (JSON null: staged for deletion), or
 * NULL when staged (the change a canary host runs, or NULL) leaves it. */
static const json_t *staged_def(const struct kv_deploy_rec *staged, const char *cluster,
                                const char *name)
{
    char *rel = staged ? kv_key_printf("haproxy/%s/services/%s", cluster, name) : NULL;
    const json_t *v = rel ? json_object_get(staged->keys, rel) : NULL;
    free(rel);
    return v;
}

/* A canary host's state for a staged service: "canary" when it runs the
 * staged value, else "behind". */
static const char *canary_state(const json_t *sv, const struct kv_status_service *s)
{
    char hex[17] = "", *bytes = json_is_null(sv) ? NULL : kv_canonical(sv);
    bool have = bytes != NULL;
    if (bytes)
        kv_hash64_hex(bytes, strlen(bytes), hex);
    free(bytes);
    return have && strcmp(hex, s->definition) == 0 ? "canary" : "behind";
}

static json_t *haproxy_services(const char *root, const struct kv_status_rec *r,
                                const struct consul_kv_list *defs,
                                const struct kv_deploy_rec *staged, const char **host_state)
{
    json_t *svcs = json_object();
    char live_hex[17];
    for (size_t i = 0; svcs && i < r->n_services; i++) {
        const struct kv_status_service *s = &r->services[i];
        const struct consul_kv *d = live_def(root, defs, r->cluster, s->name);
        const json_t *sv = staged_def(staged, r->cluster, s->name);
        const char *state;
        live_hex[0] = '\0';
        if (d)
            kv_hash64_hex(d->value, d->value_len, live_hex);
        char why[512] = "";
        if (sv) /* a canary host: compared with the staged value */
            state = s->error ? "refusing" : canary_state(sv, s);
        else if (d && live_valid(d, s->name, why, sizeof(why)) < 0)
            state = "refusing"; /* every watcher keeps the previous definition */
        else if (s->error)
            state = "refusing";
        else if (!d)
            state = "removed";
        else
            state = strcmp(live_hex, s->definition) == 0 ? "current" : "behind";
        *host_state =
            worse(*host_state, strcmp(state, "current") == 0 || !strcmp(state, "canary") ? "ok"
                               : strcmp(state, "removed") == 0                           ? "behind"
                                                                                         : state);
        json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:I}", "state", state, "definition",
                              s->definition, "live", live_hex, "config_hash", s->config_hash,
                              "reloads", (json_int_t)s->reloads);
        if (o && (s->error || why[0])) {
            char msg[1024];
            snprintf(msg, sizeof(msg), "%s%s", why[0] ? "definition refused: " : "",
                     why[0] ? why : s->error);
            json_object_set_new(o, "error", json_string(msg));
        }
        if (o && s->have_errors)
            json_object_set_new(o, "errors", kv_status_errors_json(&s->errors));
        json_object_set_new(svcs, s->name, o);
    }
    /* live services of its cluster it does not report */
    char *prefix = kv_key_printf("%shaproxy/%s/services/", root, r->cluster);
    size_t plen = prefix ? strlen(prefix) : 0;
    for (size_t i = 0; prefix && svcs && defs && i < defs->n; i++) {
        const char *name = defs->items[i].key;
        if (strncmp(name, prefix, plen) != 0 || !kv_valid_segment(name + plen) ||
            json_object_get(svcs, name + plen) ||
            json_is_null(staged_def(staged, r->cluster, name + plen)))
            continue;
        kv_hash64_hex(defs->items[i].value, defs->items[i].value_len, live_hex);
        json_object_set_new(
            svcs, name + plen,
            json_pack("{s:s, s:s, s:s}", "state", "behind", "definition", "", "live", live_hex));
        *host_state = worse(*host_state, "behind");
    }
    free(prefix);
    return svcs;
}

/* The staged change of cluster among defs: 0 with *out, or -ENOENT (none,
 * or one that does not decode: its hosts then count as behind). */
static int staged_of(const char *root, const struct consul_kv_list *defs, const char *cluster,
                     struct kv_deploy_rec *out)
{
    char err[256], *key = kv_deploy_canary_key(root, cluster);
    int rc = -ENOENT;
    for (size_t i = 0; key && defs && i < defs->n; i++)
        if (strcmp(defs->items[i].key, key) == 0 &&
            kv_deploy_decode((const char *)defs->items[i].value, defs->items[i].value_len, key,
                             true, out, err, sizeof(err)) == 0)
            rc = 0;
    free(key);
    return rc;
}

static json_t *strv(char **v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

static int cmp_kv(const void *a, const void *b)
{
    return strcmp(((const struct consul_kv *)a)->key, ((const struct consul_kv *)b)->key);
}

/* A service's HAProxy error counters (its "errors"; NULL: not read). */
static void print_errors(FILE *t, const json_t *e)
{
    if (!e)
        return;
    fprintf(t,
            "    HAProxy counters since its worker started: %lld requests, %lld 5xx, %lld "
            "conn errors, %lld resp errors, %lld req errors\n",
            (long long)json_integer_value(json_object_get(e, "requests")),
            (long long)json_integer_value(json_object_get(e, "http_5xx")),
            (long long)json_integer_value(json_object_get(e, "conn_errors")),
            (long long)json_integer_value(json_object_get(e, "resp_errors")),
            (long long)json_integer_value(json_object_get(e, "req_errors")));
}

int ctl_fleet_view(const char *root, const struct consul_kv_list *status,
                   const struct consul_kv_list *defs, json_t **out, char **text)
{
    json_t *view =
        json_pack("{s:b, s:[], s:[], s:[]}", "ok", 1, "hosts", "directors_disagree", "bad");
    json_t *dir_sums = json_object(); /* cluster -> first checksum seen */
    char *buf = NULL;
    size_t blen = 0;
    FILE *t = open_memstream(&buf, &blen);
    bool ok = true;
    size_t plen = strlen(root) + strlen("status/");
    struct consul_kv *items = NULL;
    size_t n = status ? status->n : 0;

    if (!view || !dir_sums || !t || (n && !(items = malloc(n * sizeof(*items))))) {
        json_decref(view);
        json_decref(dir_sums);
        if (t)
            fclose(t);
        free(buf);
        free(items);
        return -ENOMEM;
    }
    if (n) {
        memcpy(items, status->items, n * sizeof(*items));
        qsort(items, n, sizeof(*items), cmp_kv);
    }
    json_t *hosts = json_object_get(view, "hosts"), *bad = json_object_get(view, "bad");
    for (size_t i = 0; i < n; i++) {
        char err[512], host[256], role[16];
        struct kv_status_rec r;
        json_t *v = NULL;
        const char *key = items[i].key;
        if (strlen(key) <= plen || kv_status_key_parse(key + plen, host, role) < 0) {
            continue; /* folder keys and what a later version adds */
        }
        if (json_from_buffer((const char *)items[i].value, items[i].value_len, key, &v, err,
                             sizeof(err)) < 0 ||
            kv_status_decode(v, &r, err, sizeof(err)) < 0) {
            json_decref(v);
            fprintf(t, "%s: bad status entry: %s\n", key + plen, err);
            json_array_append_new(bad, json_pack("{s:s, s:s}", "key", key + plen, "error", err));
            ok = false;
            continue;
        }
        json_decref(v);
        const char *state = "ok";
        json_t *h = json_pack("{s:s, s:s, s:s, s:s, s:I, s:o}", "host", host, "role", role,
                              "cluster", r.cluster, "version", r.version, "kv_index",
                              (json_int_t)r.kv_index, "guards", strv(r.guards, r.n_guards));
        if (!h)
            goto next;
        if (strcmp(role, KV_STATUS_ROLE_HAPROXY) == 0) {
            struct kv_deploy_rec staged;
            bool canary = r.canary_version && staged_of(root, defs, r.cluster, &staged) == 0;
            if (canary &&
                (staged.version != r.canary_version || !kv_deploy_has_canary(&staged, host))) {
                kv_deploy_clear(&staged);
                canary = false; /* it runs a change no longer staged: behind */
            }
            json_object_set_new(h, "services",
                                haproxy_services(root, &r, defs, canary ? &staged : NULL, &state));
            if (r.canary_version)
                json_object_set_new(h, "canary", json_integer((json_int_t)r.canary_version));
            if (canary)
                kv_deploy_clear(&staged);
        }
        if (r.n_guards)
            state = worse(state, "guarded");
        if (r.last_error)
            json_object_set_new(h, "last_error", json_string(r.last_error));
        if (strcmp(role, KV_STATUS_ROLE_DIRECTOR) == 0) {
            json_object_set_new(h, "director",
                                json_pack("{s:s?, s:o}", "table_checksum", r.table_checksum, "vips",
                                          strv(r.vips, r.n_vips)));
            const char *first = json_string_value(json_object_get(dir_sums, r.cluster));
            const char *mine = r.table_checksum ? r.table_checksum : "";
            if (!first)
                json_object_set_new(dir_sums, r.cluster, json_string(mine));
            else if (strcmp(first, mine) != 0)
                json_array_append_new(json_object_get(view, "directors_disagree"),
                                      json_string(r.cluster));
        }
        json_object_set_new(h, "state", json_string(state));
        ok = ok && strcmp(state, "ok") == 0;
        /* text */
        fprintf(t, "%s (%s, cluster %s, drover %s): %s", host, role, r.cluster, r.version, state);
        if (r.canary_version)
            fprintf(t, " (canary of staged version %llu)", (unsigned long long)r.canary_version);
        fprintf(t, "\n");
        json_t *svcs = json_object_get(h, "services");
        const char *sname;
        json_t *so;
        json_object_foreach(svcs, sname, so)
        {
            const char *err_s = json_string_value(json_object_get(so, "error"));
            fprintf(t, "  %s: %s, definition %s, config %s, %lld reloads%s%s\n", sname,
                    json_string_value(json_object_get(so, "state")),
                    json_string_value(json_object_get(so, "definition")),
                    json_string_value(json_object_get(so, "config_hash"))
                        ? json_string_value(json_object_get(so, "config_hash"))
                        : "-",
                    (long long)json_integer_value(json_object_get(so, "reloads")),
                    err_s ? ": " : "", err_s ? err_s : "");
            print_errors(t, json_object_get(so, "errors"));
        }
        for (size_t g = 0; g < r.n_guards; g++)
            fprintf(t, "  guard held: %s\n", r.guards[g]);
        if (r.table_checksum)
            fprintf(t, "  director table %s, %zu VIPs\n", r.table_checksum, r.n_vips);
        if (r.last_error)
            fprintf(t, "  last error: %s\n", r.last_error);
        json_array_append_new(hosts, h);
    next:
        kv_status_free(&r);
    }
    /* a cluster is listed once however many directors differ */
    json_t *dis = json_object_get(view, "directors_disagree");
    for (size_t i = 0; i < json_array_size(dis); i++) {
        for (size_t k = i + 1; k < json_array_size(dis);)
            if (json_equal(json_array_get(dis, i), json_array_get(dis, k)))
                json_array_remove(dis, k);
            else
                k++;
        fprintf(t, "directors of cluster %s disagree on the table\n",
                json_string_value(json_array_get(dis, i)));
        ok = false;
    }
    if (!json_array_size(hosts) && !json_array_size(bad))
        fprintf(t, "no host reports a status entry\n");
    fprintf(t, "fleet: %s\n", ok ? "ok" : "NOT ok");
    json_object_set_new(view, "ok", json_boolean(ok));
    json_decref(dir_sums);
    free(items);
    if (fclose(t) != 0 || !buf) {
        free(buf);
        json_decref(view);
        return -ENOMEM;
    }
    *out = view;
    *text = buf;
    return 0;
}
