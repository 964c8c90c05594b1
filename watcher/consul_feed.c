/* SPDX-License-Identifier: Apache-2.0 */
/*
 * consul_feed: prefix watches -> snapshots (see consul_feed.h).
 */
#include "consul_feed.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

struct feed_watch {
    struct consul_feed *feed;
    char *prefix;
    struct consul_watch *w;
    bool delivered;
    bool failing;
};

struct consul_feed {
    struct consul_feed_opts o;
    struct feed_watch *watches;
    size_t n;
    uint64_t last_hash;
    bool have_last;
    struct consul_feed_stats st;
};

int consul_feed_prefixes(const struct kv_model_opts *o, char ***out, size_t *n)
{
    size_t cnt = o->n_kube_clusters + 2;
    char **v = calloc(cnt, sizeof(*v));
    if (!v)
        return -ENOMEM;
    for (size_t i = 0; i < o->n_kube_clusters; i++)
        if (asprintf(&v[i], "%skube/%s/", o->root, o->kube_clusters[i]) < 0)
            goto fail;
    if (asprintf(&v[o->n_kube_clusters], "%shaproxy/%s/", o->root, o->haproxy_cluster) < 0 ||
        asprintf(&v[o->n_kube_clusters + 1], "%smaintenance/", o->root) < 0)
        goto fail;
    *out = v;
    *n = cnt;
    return 0;
fail:
    for (size_t i = 0; i < cnt; i++)
        free(v[i]);
    free(v);
    return -ENOMEM;
}

int consul_feed_entries(const struct consul_kv_list *const *lists, size_t n_lists,
                        struct snapshot_entry **out, size_t *n)
{
    size_t total = 0, k = 0;
    for (size_t i = 0; i < n_lists; i++)
        total += lists[i] ? lists[i]->n : 0;
    struct snapshot_entry *e = calloc(total + 1, sizeof(*e));
    if (!e)
        return -ENOMEM;
    for (size_t i = 0; i < n_lists; i++) {
        for (size_t j = 0; lists[i] && j < lists[i]->n; j++) {
            const struct consul_kv *kv = &lists[i]->items[j];
            e[k].key = strdup(kv->key);
            e[k].value = malloc(kv->value_len + 1);
            if (!e[k].key || !e[k].value) {
                snapshot_entries_free(e, k + 1);
                return -ENOMEM;
            }
            if (kv->value_len)
                memcpy(e[k].value, kv->value, kv->value_len);
            e[k].value[kv->value_len] = '\0';
            e[k].len = kv->value_len;
            k++;
        }
    }
    *out = e;
    *n = k;
    return 0;
}

static void rebuild(struct consul_feed *f)
{
    const struct consul_kv_list *lists[64];
    struct snapshot_entry *e = NULL;
    struct snapshot *snap = NULL;
    size_t n = 0;
    int rc;

    for (size_t i = 0; i < f->n; i++) {
        if (!f->watches[i].delivered)
            return; /* never a partial view */
        lists[i] = consul_watch_last_kv(f->watches[i].w);
    }
    f->st.complete = true;
    if ((rc = consul_feed_entries(lists, f->n, &e, &n)) < 0 ||
        (rc = snapshot_build(f->o.model, e, n, (int64_t)time(NULL),
                             f->o.current ? f->o.current(f->o.arg) : NULL, &snap)) < 0) {
        log_error("watcher: cannot build a snapshot from Consul's answer: %s; keeping the last "
                  "good snapshot, next change retries",
                  strerror(-rc));
        return;
    }
    if (f->have_last && snap->inputs_hash == f->last_hash) {
        f->st.unchanged++;
        snapshot_free(snap);
        return;
    }
    f->last_hash = snap->inputs_hash;
    f->have_last = true;
    f->st.snapshots++;
    f->o.on_snapshot(f->o.arg, snap);
}

static void on_change(void *arg, struct consul_response *resp)
{
    struct feed_watch *w = arg;
    (void)resp;
    w->delivered = true;
    w->failing = false;
    rebuild(w->feed);
}

static void on_error(void *arg, struct consul_response *resp)
{
    struct feed_watch *w = arg;
    struct consul_feed *f = w->feed;
    char msg[600];
    w->failing = true;
    f->st.errors++;
    snprintf(msg, sizeof(msg),
             "consul: watch %s: %s; HAProxy keeps its current state (fail static), retry in "
             "%u ms",
             w->prefix, resp->errmsg ? resp->errmsg : strerror(-resp->err), resp->retry_in_ms);
    log_warn("%s", msg);
    if (f->o.on_error)
        f->o.on_error(f->o.arg, w->prefix, resp->err, msg);
}

int consul_feed_start(struct consul_client *c, const struct consul_feed_opts *o,
                      struct consul_feed **out)
{
    struct consul_feed *f = calloc(1, sizeof(*f));
    char **prefixes = NULL;
    size_t n = 0;
    int rc;

    if (!f)
        return -ENOMEM;
    f->o = *o;
    if ((rc = consul_feed_prefixes(o->model, &prefixes, &n)) < 0) {
        free(f);
        return rc;
    }
    if (n > 64) {
        rc = -E2BIG;
        goto fail;
    }
    if (!(f->watches = calloc(n, sizeof(*f->watches)))) {
        rc = -ENOMEM;
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        struct feed_watch *w = &f->watches[i];
        w->feed = f;
        w->prefix = prefixes[i];
        prefixes[i] = NULL;
        f->n++;
        struct consul_watch_opts wo = {
            .kind = CONSUL_WATCH_KV_PREFIX,
            .target = w->prefix,
            .wait_s = o->wait_s,
            .on_change = on_change,
            .on_error = on_error,
            .arg = w,
        };
        if ((rc = consul_watch_start(c, &wo, &w->w)) < 0) {
            log_error("consul: cannot watch %s: %s", w->prefix, strerror(-rc));
            goto fail;
        }
        log_info("consul: watching %s", w->prefix);
    }
    free(prefixes);
    *out = f;
    return 0;
fail:
    for (size_t i = 0; i < n; i++)
        free(prefixes[i]);
    free(prefixes);
    consul_feed_stop(f);
    return rc;
}

void consul_feed_stop(struct consul_feed *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->n; i++) {
        if (f->watches[i].w)
            consul_watch_stop(f->watches[i].w);
        free(f->watches[i].prefix);
    }
    free(f->watches);
    free(f);
}

void consul_feed_get_stats(const struct consul_feed *f, struct consul_feed_stats *out)
{
    *out = f->st;
    out->healthy = true;
    for (size_t i = 0; i < f->n; i++)
        if (f->watches[i].failing || !f->watches[i].delivered)
            out->healthy = false;
}
