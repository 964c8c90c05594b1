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

#include "canary.h"
#include "kv_key.h"
#include "log.h"

/* While a re-read is awaited, how often the feed looks whether it came
 * back: an unchanged answer calls no callback (consul_watch delivers
 * changes only), so nothing else would say so. */
#define REREAD_POLL_MS 100

/* An empty prefix (often maintenance/, the flat nodes/ once the exporter
 * writes node shards, shards of a small cluster) is answered by Consul at
 * every KV write near it: each KV change cost every empty prefix a no-op
 * read. Its next query waits this long (consul_watch_opts.empty_pause_ms),
 * so the first key that appears in an empty prefix is seen up to this
 * much later; a prefix with keys is answered only for its own changes and
 * never waits. */
#define EMPTY_PREFIX_PAUSE_MS 100

struct feed_watch {
    struct consul_feed *feed;
    char *prefix;
    struct consul_watch *w;
    bool delivered;
    bool defs; /* haproxy/<cluster>/: its changes decide the service watches */
};

struct consul_feed {
    struct consul_feed_opts o;
    struct consul_client *c;
    /* [0, n_fixed): haproxy/<cluster>/, maintenance/, and per kube
     * cluster kube/<c>/nodes/ and kube/<c>/node-shards/<shard>/;
     * [n_fixed, n): the kube service prefixes the definitions reference */
    struct feed_watch **watches;
    size_t n, n_fixed, cap;
    bool refs_dirty; /* definitions changed: service watches to re-derive */
    uint64_t last_hash;
    bool have_last;
    uv_timer_t reread_poll; /* armed while a rebuild waits for re-reads */
    bool waiting_reread;    /* logged once per wait */
    struct consul_feed_stats st;
};

int consul_feed_fixed_prefixes(const struct kv_model_opts *o, char ***out, size_t *n)
{
    /* per consumed cluster: the flat nodes/ (older exporters, hand-written
     * keys) and every node shard; a snapshot holds the union */
    size_t per_cluster = 1 + KV_NODE_SHARDS;
    size_t cnt = 2 + o->n_kube_clusters * per_cluster;
    char **v = calloc(cnt, sizeof(*v));
    if (!v)
        return -ENOMEM;
    if (asprintf(&v[0], "%shaproxy/%s/", o->root, o->haproxy_cluster) < 0 ||
        asprintf(&v[1], "%smaintenance/", o->root) < 0)
        goto fail;
    for (size_t i = 0; i < o->n_kube_clusters; i++) {
        char **c = &v[2 + i * per_cluster];
        if (!(c[0] = kv_key_kube_node_flat_prefix(o->root, o->kube_clusters[i])))
            goto fail;
        for (unsigned s = 0; s < KV_NODE_SHARDS; s++)
            if (!(c[1 + s] = kv_key_kube_node_shard_prefix(o->root, o->kube_clusters[i], s)))
                goto fail;
    }
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

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool consumed_cluster(const struct kv_model_opts *o, const char *cluster)
{
    for (size_t i = 0; i < o->n_kube_clusters; i++)
        if (strcmp(o->kube_clusters[i], cluster) == 0)
            return true;
    return false;
}

/* Append the kube service prefix of every ref of svc to v at granularity
 * level (0: one service, 1: its namespace). 1 when svc has class
 * selectors: they can pick any kube service, so every consumed cluster's
 * services must be watched whole. */
static int add_refs(const struct kv_model_opts *o, const struct kvm_service *svc, int level,
                    char ***v, size_t *n, size_t *cap)
{
    if (svc->n_selectors)
        return 1;
    for (size_t b = 0; b < svc->n_backends; b++) {
        for (size_t k = 0; k < svc->backends[b].n_kube; k++) {
            const struct kvm_kube_ref *r = &svc->backends[b].kube[k];
            char *p = NULL;
            if (!consumed_cluster(o, r->cluster))
                continue; /* the model ignores it: nothing to watch */
            if (*n == *cap) {
                size_t nc = *cap * 2 + 16;
                char **nv = realloc(*v, nc * sizeof(*nv));
                if (!nv)
                    return -ENOMEM;
                *v = nv;
                *cap = nc;
            }
            if ((level == 0 ? asprintf(&p, "%skube/%s/services/%s/%s/", o->root, r->cluster,
                                       r->namespace, r->service)
                            : asprintf(&p, "%skube/%s/services/%s/", o->root, r->cluster,
                                       r->namespace)) < 0)
                return -ENOMEM;
            (*v)[(*n)++] = p;
        }
    }
    return 0;
}

static void strv_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/*
 * The kube service prefixes the definitions in defs reference, sorted and
 * unique, at the finest granularity that fits service_watches (see
 * consul_feed.h). A definition that does not decode is what the snapshot
 * replaces by its last good value (snapshot_build): its references are
 * taken from the snapshot in force, cur. 0 or -ENOMEM.
 */
int consul_feed_service_prefixes(const struct kv_model_opts *o, const char *host,
                                 unsigned service_watches, const struct consul_kv_list *defs,
                                 const struct snapshot *cur, char ***out, size_t *n_out)
{
    int64_t now = (int64_t)time(NULL);
    unsigned budget = service_watches;
    char **v = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    char err[256];

    /* the definitions as this host applies them: with a staged change
     * overlaid on a canary host, whose services must be read too */
    struct snapshot_entry *d = NULL;
    size_t nd = 0;
    struct canary_result cr;
    const struct consul_kv_list *one[1] = {defs};
    if ((rc = consul_feed_entries(one, 1, &d, &nd)) < 0 ||
        (rc = canary_overlay(o, host, &d, &nd, &cr)) < 0)
        return rc;
    bool whole = false; /* a definition selects by class */
    for (int level = 0; level < 2 && budget > 0 && !whole; level++) {
        struct kv_model m;
        kv_model_init(&m);
        for (size_t i = 0; rc == 0 && i < nd; i++) {
            rc = kv_model_add(&m, o, d[i].key, d[i].value, d[i].len, now, err, sizeof(err));
            if (rc == -EINVAL && cur) {
                rc = 0;
                for (size_t s = 0; s < cur->model.n_services; s++)
                    if (strcmp(cur->model.services[s].key, d[i].key) == 0)
                        rc = add_refs(o, &cur->model.services[s], level, &v, &n, &cap);
                whole |= rc == 1; /* add_refs: class selectors (kv_model_add: 1 = added) */
            }
            rc = rc == -ENOMEM ? rc : 0;
        }
        for (size_t s = 0; rc >= 0 && s < m.n_services; s++) {
            rc = add_refs(o, &m.services[s], level, &v, &n, &cap);
            whole |= rc == 1;
        }
        kv_model_clear(&m);
        if (rc < 0)
            goto fail;
        if (whole) {
            strv_free(v, n);
            v = NULL;
            n = cap = 0;
            break;
        }
        if (n > 1)
            qsort(v, n, sizeof(*v), str_cmp);
        size_t u = 0;
        for (size_t i = 0; i < n; i++) {
            if (u > 0 && strcmp(v[u - 1], v[i]) == 0)
                free(v[i]);
            else
                v[u++] = v[i];
        }
        n = u;
        if (n <= budget) {
            snapshot_entries_free(d, nd);
            *out = v;
            *n_out = n;
            return 0;
        }
        strv_free(v, n);
        v = NULL;
        n = cap = 0;
    }
    /* too many (or service_watches 0, or a class selector): every consumed
     * cluster's services */
    snapshot_entries_free(d, nd);
    d = NULL;
    nd = 0;
    if (!(v = calloc(o->n_kube_clusters + 1, sizeof(*v))))
        return -ENOMEM;
    for (n = 0; n < o->n_kube_clusters; n++)
        if (asprintf(&v[n], "%skube/%s/services/", o->root, o->kube_clusters[n]) < 0) {
            rc = -ENOMEM;
            goto fail;
        }
    *out = v;
    *n_out = n;
    return 0;
fail:
    snapshot_entries_free(d, nd);
    strv_free(v, n);
    return rc;
}

static void on_change(void *arg, struct consul_response *resp);
static void on_error(void *arg, struct consul_response *resp);
static void on_reset(void *arg, struct consul_response *resp);

static int watch_add(struct consul_feed *f, char *prefix, bool defs)
{
    struct feed_watch *w;
    int rc;
    if (f->n == f->cap) {
        size_t nc = f->cap * 2 + 8;
        struct feed_watch **nv = realloc(f->watches, nc * sizeof(*nv));
        if (!nv)
            return -ENOMEM;
        f->watches = nv;
        f->cap = nc;
    }
    if (!(w = calloc(1, sizeof(*w))))
        return -ENOMEM;
    w->feed = f;
    w->prefix = prefix;
    w->defs = defs;
    struct consul_watch_opts wo = {
        .kind = CONSUL_WATCH_KV_PREFIX,
        .target = prefix,
        .wait_s = f->o.wait_s,
        .empty_pause_ms = EMPTY_PREFIX_PAUSE_MS,
        .on_change = on_change,
        .on_error = on_error,
        .on_reset = on_reset,
        .arg = w,
    };
    if ((rc = consul_watch_start(f->c, &wo, &w->w)) < 0) {
        log_error("consul: cannot watch %s: %s", prefix, strerror(-rc));
        free(w);
        return rc;
    }
    log_debug("consul: watching %s", prefix);
    f->watches[f->n++] = w;
    return 0;
}

static void watch_free(struct feed_watch *w)
{
    if (w->w)
        consul_watch_stop(w->w);
    free(w->prefix);
    free(w);
}

/* Make the service watches [n_fixed, n) the prefixes of the current
 * definitions: keep those still wanted (with their value), stop the
 * others, start the new ones. 0 or -ENOMEM (the feed stays as it was). */
static int sync_service_watches(struct consul_feed *f)
{
    const struct consul_kv_list *defs = NULL;
    char **want = NULL;
    size_t n_want = 0;
    int rc;

    for (size_t i = 0; i < f->n_fixed; i++)
        if (f->watches[i]->defs)
            defs = consul_watch_last_kv(f->watches[i]->w);
    if ((rc = consul_feed_service_prefixes(f->o.model, f->o.host, f->o.service_watches, defs,
                                           f->o.current ? f->o.current(f->o.arg) : NULL, &want,
                                           &n_want)) < 0)
        return rc;
    /* both sorted: the service watches are kept in prefix order */
    size_t i = 0, j = 0, old_n = f->n;
    struct feed_watch **old = malloc((old_n - f->n_fixed + 1) * sizeof(*old));
    if (!old) {
        strv_free(want, n_want);
        return -ENOMEM;
    }
    memcpy(old, f->watches + f->n_fixed, (old_n - f->n_fixed) * sizeof(*old));
    f->n = f->n_fixed;
    size_t n_old = old_n - f->n_fixed, started = 0, stopped = 0;
    while (i < n_old || j < n_want) {
        int cmp = i == n_old ? 1 : j == n_want ? -1 : strcmp(old[i]->prefix, want[j]);
        if (cmp == 0) {
            f->watches[f->n++] = old[i++];
            free(want[j++]);
        } else if (cmp < 0) {
            watch_free(old[i++]);
            stopped++;
        } else {
            if ((rc = watch_add(f, want[j], false)) < 0) {
                /* keep going with what runs; the next definition change retries */
                log_error("watcher: cannot watch %s: %s; its servers stay as they were", want[j],
                          strerror(-rc));
                free(want[j]);
            } else {
                started++;
            }
            j++;
        }
    }
    free(old);
    free(want);
    if (started || stopped)
        log_info("consul: %zu kube service prefix(es) watched (%zu new, %zu stopped)",
                 f->n - f->n_fixed, started, stopped);
    return 0;
}

/* A delivered watch whose next query is a full read (index 0) is reading
 * its prefix afresh: it failed, or Consul's index went backwards (a
 * restart, a restored snapshot, another server). Until it answers, its
 * last value is from before, and joining it to prefixes already read
 * again would build a tree that never existed - maintenance/ empty while
 * the services are still there lifts every drain before the KV-loss
 * episode can begin. */
static bool watch_rereading(const struct feed_watch *w)
{
    return w->delivered && consul_watch_index(w->w) == 0;
}

static void rebuild(struct consul_feed *f);

static void on_reread_poll(uv_timer_t *t)
{
    rebuild(t->data);
}

/* Whether every fixed prefix has been read again since its last error
 * or index reset; if not, the snapshot in force stays, and a poll looks
 * again (the last re-read may come back unchanged, which calls nothing). */
static bool rereads_done(struct consul_feed *f)
{
    size_t waiting = 0;
    /* the fixed prefixes: a kube service prefix read empty first is what
     * the backends' server-removal guard is for, and with stale reads
     * answered by several servers some of the many service watches are
     * nearly always resetting */
    for (size_t i = 0; i < f->n_fixed; i++)
        waiting += watch_rereading(f->watches[i]);
    if (waiting == 0) {
        if (f->waiting_reread)
            log_info("consul: every fixed prefix read again; snapshots resume");
        f->waiting_reread = false;
        return true;
    }
    if (!f->waiting_reread) {
        log_warn("consul: %zu of %zu fixed prefix(es) are read again after an error or an "
                 "index reset; keeping the snapshot in force until all of them answered",
                 waiting, f->n_fixed);
        f->st.reread_waits++;
    }
    f->waiting_reread = true;
    uv_timer_start(&f->reread_poll, on_reread_poll, REREAD_POLL_MS, 0);
    return false;
}

static void rebuild(struct consul_feed *f)
{
    const struct consul_kv_list **lists = NULL;
    struct snapshot_entry *e = NULL;
    struct snapshot *snap = NULL;
    size_t n = 0;
    int rc;

    for (size_t i = 0; i < f->n_fixed; i++)
        if (!f->watches[i]->delivered)
            return; /* never a partial view */
    if (!rereads_done(f))
        return; /* never a view mixing reads from before and after a loss */
    if (f->refs_dirty) {
        if ((rc = sync_service_watches(f)) < 0) {
            log_error("watcher: cannot derive the kube services to watch: %s; keeping the last "
                      "good snapshot, next change retries",
                      strerror(-rc));
            return;
        }
        f->refs_dirty = false;
    }
    for (size_t i = f->n_fixed; i < f->n; i++)
        if (!f->watches[i]->delivered)
            return; /* a newly referenced service is read first: never a partial view */
    if (!(lists = calloc(f->n + 1, sizeof(*lists)))) {
        rc = -ENOMEM;
        goto fail;
    }
    for (size_t i = 0; i < f->n; i++)
        lists[i] = consul_watch_last_kv(f->watches[i]->w);
    f->st.complete = true;
    struct canary_result cr;
    if ((rc = consul_feed_entries(lists, f->n, &e, &n)) < 0 ||
        (rc = canary_overlay(f->o.model, f->o.host, &e, &n, &cr)) < 0 ||
        (rc = snapshot_build(f->o.model, e, n, (int64_t)time(NULL),
                             f->o.current ? f->o.current(f->o.arg) : NULL, &snap)) < 0)
        goto fail;
    uint64_t kv_index = 0; /* the status entry reports it (host_status) */
    for (size_t i = 0; i < f->n; i++)
        for (size_t k = 0; lists[i] && k < lists[i]->n; k++)
            if (lists[i]->items[k].modify_index > kv_index)
                kv_index = lists[i]->items[k].modify_index;
    free(lists);
    f->st.canary_bad += cr.bad;
    snap->model.bad[KVM_PREFIX_HAPROXY] += cr.bad; /* a bad entry of haproxy/<cluster>/ */
    bool canary_news = cr.version != f->st.canary_version;
    f->st.canary_version = cr.version;
    if (f->have_last && snap->inputs_hash == f->last_hash) {
        f->st.unchanged++;
        snapshot_free(snap);
        if (canary_news && f->o.on_canary)
            f->o.on_canary(f->o.arg);
        return;
    }
    f->last_hash = snap->inputs_hash;
    f->have_last = true;
    f->st.kv_index = kv_index;
    f->st.snapshots++;
    f->o.on_snapshot(f->o.arg, snap);
    return;
fail:
    free(lists);
    log_error("watcher: cannot build a snapshot from Consul's answer: %s; keeping the last "
              "good snapshot, next change retries",
              strerror(-rc));
}

static void on_change(void *arg, struct consul_response *resp)
{
    struct feed_watch *w = arg;
    struct consul_feed *f = w->feed;
    (void)resp;
    w->delivered = true;
    if (w->defs)
        f->refs_dirty = true;
    rebuild(f); /* may stop w: do not touch it below */
}

/*
 * Consul may have been restarted or restored. The fixed watches need not
 * have seen it: one whose next blocking query reached the new Consul (it
 * was pausing, or libcurl sent it again on a fresh connection) is
 * answered only when the new index passes its old one or the wait ends,
 * and meanwhile its value from before counts as read - joined to
 * maintenance/ read empty, the services still there would lift every
 * drain before the KV-loss episode could begin. So all of them (but
 * except, which reads afresh already) read afresh, and rereads_done holds
 * snapshots until every one has answered.
 */
static void reread_fixed(struct consul_feed *f, const struct feed_watch *except, const char *why)
{
    size_t n = 0;
    for (size_t i = 0; i < f->n_fixed; i++) {
        struct feed_watch *w = f->watches[i];
        if (w != except && consul_watch_index(w->w) > 0) {
            consul_watch_reread(w->w);
            n++;
        }
    }
    if (n == 0)
        return; /* all of them read afresh already */
    f->st.forced_rereads++;
    log_info("consul: %s; reading %zu fixed prefix(es) afresh (Consul may have restarted or "
             "been restored)",
             why, n);
}

void consul_feed_reread(struct consul_feed *f, const char *why)
{
    if (f)
        reread_fixed(f, NULL, why);
}

/* A watch failed (any: Consul failed), or Consul's index went back under
 * a fixed one (a kube service prefix's also goes back when Consul reaps
 * the tombstones of its deleted ports, which says nothing about the
 * rest). */
static void watch_broke(struct consul_feed *f, const struct feed_watch *w, bool reset)
{
    char why[300];
    bool fixed = false;
    for (size_t i = 0; i < f->n_fixed; i++)
        fixed |= f->watches[i] == w;
    if (reset && !fixed)
        return;
    snprintf(why, sizeof(why), "watch %s %s", w->prefix,
             reset ? "saw Consul's index go back" : "failed");
    reread_fixed(f, w, why);
}

static void on_reset(void *arg, struct consul_response *resp)
{
    struct feed_watch *w = arg;
    (void)resp;
    watch_broke(w->feed, w, true);
}

static void on_error(void *arg, struct consul_response *resp)
{
    struct feed_watch *w = arg;
    struct consul_feed *f = w->feed;
    char msg[600];
    f->st.errors++;
    watch_broke(f, w, false);
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
    struct consul_feed *f;
    char **fixed = NULL;
    size_t n_fixed = 0, i = 0;
    int rc = -ENOMEM;

    if (!o->loop)
        return -EINVAL;
    if (!(f = calloc(1, sizeof(*f))))
        return -ENOMEM;
    f->o = *o;
    f->c = c;
    f->refs_dirty = true;
    uv_timer_init(o->loop, &f->reread_poll);
    f->reread_poll.data = f;
    if ((rc = consul_feed_fixed_prefixes(o->model, &fixed, &n_fixed)) < 0)
        goto fail;
    for (; i < n_fixed; i++) {
        if ((rc = watch_add(f, fixed[i], i == 0)) < 0)
            goto fail;
        log_info("consul: watching %s", fixed[i]);
    }
    free(fixed);
    f->n_fixed = f->n;
    *out = f;
    return 0;
fail:
    for (; fixed && i < n_fixed; i++)
        free(fixed[i]); /* the ones before i belong to their watches */
    free(fixed);
    consul_feed_stop(f);
    return rc;
}

static void feed_closed(uv_handle_t *h)
{
    free(h->data);
}

void consul_feed_stop(struct consul_feed *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->n; i++)
        watch_free(f->watches[i]);
    free(f->watches);
    f->watches = NULL;
    f->n = 0;
    uv_close((uv_handle_t *)&f->reread_poll, feed_closed); /* frees f */
}

void consul_feed_get_stats(const struct consul_feed *f, struct consul_feed_stats *out)
{
    *out = f->st;
    out->healthy = true;
    out->watches = f->n;
    /* a watch in error (or reset) reads in full next: index 0 */
    for (size_t i = 0; i < f->n; i++)
        if (consul_watch_index(f->watches[i]->w) == 0 &&
            (f->watches[i]->delivered || i < f->n_fixed))
            out->healthy = false;
}
