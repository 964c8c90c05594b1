/* SPDX-License-Identifier: Apache-2.0 */
/* canary: the staged change on a canary host (canary.h). */
#include "canary.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kv_deploy.h"
#include "kv_key.h"
#include "kv_kube.h"
#include "log.h"

static void drop(struct snapshot_entry *e, size_t *n, size_t i)
{
    free(e[i].key);
    free(e[i].value);
    e[i] = e[--*n];
}

static size_t find(const struct snapshot_entry *e, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(e[i].key, key) == 0)
            return i;
    return n;
}

int canary_set_entry(struct snapshot_entry **e, size_t *n, const char *key, const json_t *v)
{
    size_t i = find(*e, *n, key);
    if (json_is_null(v)) {
        if (i < *n)
            drop(*e, n, i);
        return 0;
    }
    char *val = kv_canonical(v);
    if (!val)
        return -ENOMEM;
    if (i == *n) {
        struct snapshot_entry *g = realloc(*e, (*n + 1) * sizeof(**e));
        char *k = strdup(key);
        if (g)
            *e = g;
        if (!g || !k) {
            free(k);
            free(val);
            return -ENOMEM;
        }
        (*e)[i].key = k;
        ++*n;
    } else {
        free((*e)[i].value);
    }
    (*e)[i].value = val;
    (*e)[i].len = strlen(val);
    return 0;
}

int canary_overlay(const struct kv_model_opts *o, const char *host, struct snapshot_entry **e,
                   size_t *n, struct canary_result *out)
{
    struct kv_deploy_rec r;
    char err[512];
    int rc = 0;

    memset(out, 0, sizeof(*out));
    char *key = kv_deploy_canary_key(o->root, o->haproxy_cluster);
    if (!key)
        return 0; /* no cluster of ours can be staged */
    size_t i = find(*e, *n, key);
    if (i == *n) {
        free(key);
        return 0;
    }
    rc = kv_deploy_decode((*e)[i].value, (*e)[i].len, key, true, &r, err, sizeof(err));
    drop(*e, n, i);
    free(key);
    if (rc == -ENOMEM)
        goto fail;
    if (rc < 0 || strcmp(r.cluster, o->haproxy_cluster) != 0) {
        if (rc == 0)
            kv_deploy_clear(&r);
        log_warn("watcher: skipping the staged change: %s; the live definitions apply",
                 rc < 0 ? err : "it names another cluster");
        out->bad = true;
        return 0;
    }
    if (kv_deploy_has_canary(&r, host)) {
        const char *rel;
        json_t *v;
        json_object_foreach(r.keys, rel, v)
        {
            char *full = kv_key_printf("%s%s", o->root, rel);
            rc = full ? canary_set_entry(e, n, full, v) : -ENOMEM;
            free(full);
            if (rc < 0) {
                kv_deploy_clear(&r);
                goto fail;
            }
        }
        out->version = r.version;
    }
    kv_deploy_clear(&r);
    return 0;
fail:
    snapshot_entries_free(*e, *n);
    *e = NULL;
    *n = 0;
    return -ENOMEM;
}
