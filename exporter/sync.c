/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sync: stores -> desired KV -> diff against Consul -> check-and-set txn
 * batches (see sync.h). One round at a time; changes arriving during a
 * round set `dirty` and start another round when it ends.
 */
#include "sync.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backoff.h"
#include "log.h"
#include "siphash.h"

enum sync_phase {
    PH_IDLE,
    PH_READ_OWN,
    PH_READ_KSE,
    PH_WRITE,
};

struct sync {
    uv_loop_t *loop;
    struct consul_client *consul;
    struct kube_store *services, *nodes;
    struct sync_config cfg;
    sync_skip_cb on_skip;
    sync_synced_cb on_synced;
    void *arg;

    struct export_state *state;
    struct kv_map current; /* cached view of our prefixes */
    bool have_current;
    bool writer;
    uint64_t generation;
    char *session;   /* leader session: the fence of every batch */
    char *fence_key; /* own copy of cfg->fence_key */
    bool stopped;

    enum sync_phase phase;
    bool dirty; /* a change arrived during a round */
    uint64_t round_gen;
    struct kv_map reading; /* a full read in progress */

    /* the round being written */
    struct kv_map desired;
    struct kv_ops ops;
    struct consul_txn_op *txn;
    size_t n_txn, next_batch, batch_len;
    struct kv_map written; /* key -> value, index from the txn results */
    bool written_incomplete;
    bool round_complete;
    char *meta_value;
    char *meta_key;
    int closing; /* timers still to close in sync_free */

    size_t batch_max;        /* ops per batch; halved after a 413 */
    struct refused *refused; /* entries Consul refused alone, not sent again */
    size_t n_refused;

    uv_timer_t kick_timer, grace_timer, resync_timer;
    struct backoff bo;
    struct sync_stats stats;
};

/* An entry Consul refused as too large, by key and value hash: the same
 * value for the key is not sent again (it would only be refused again);
 * a new value is. */
struct refused {
    char *key;
    uint64_t hash;
};

#define REFUSED_MAX 4096 /* bound on remembered entries; beyond, forget all */

static void start_round(struct sync *s);

static void on_kick_timer(uv_timer_t *t)
{
    start_round(t->data);
}

void sync_kick(struct sync *s)
{
    if (s->stopped)
        return;
    if (s->phase != PH_IDLE) {
        s->dirty = true;
        return;
    }
    if (!uv_is_active((uv_handle_t *)&s->kick_timer))
        uv_timer_start(&s->kick_timer, on_kick_timer, s->cfg.coalesce_ms, 0);
}

static void retry_later(struct sync *s)
{
    uint64_t d = backoff_next(&s->bo);
    if (!uv_is_active((uv_handle_t *)&s->kick_timer) || d < uv_timer_get_due_in(&s->kick_timer))
        uv_timer_start(&s->kick_timer, on_kick_timer, d, 0);
}

void sync_resync(struct sync *s)
{
    s->have_current = false;
    sync_kick(s);
}

static void on_resync_timer(uv_timer_t *t)
{
    struct sync *s = t->data;
    log_debug("exporter: periodic resync: re-reading Consul");
    sync_resync(s);
}

static void on_grace_timer(uv_timer_t *t)
{
    sync_kick(t->data);
}

void sync_set_writer(struct sync *s, bool may_write, uint64_t generation, const char *session)
{
    char *copy = session ? strdup(session) : NULL;
    if (may_write && s->cfg.fence_key && !copy) {
        log_error("exporter: leadership generation %llu without a session to fence writes "
                  "on %s (%s); not writing",
                  (unsigned long long)generation, s->cfg.fence_key,
                  session ? "out of memory" : "none given");
        may_write = false;
    }
    free(s->session);
    s->session = copy;
    bool gained = may_write && (!s->writer || s->generation != generation);
    s->writer = may_write;
    s->generation = generation;
    if (gained)
        sync_resync(s);
}

bool sync_is_writer(const struct sync *s)
{
    return s->writer;
}

const struct sync_stats *sync_stats(const struct sync *s)
{
    return &s->stats;
}

static bool may_write(const struct sync *s)
{
    return !s->stopped && s->writer && s->generation == s->round_gen;
}

static void round_reset(struct sync *s)
{
    kv_ops_clear(&s->ops);
    kv_map_clear(&s->desired);
    kv_map_clear(&s->written);
    free(s->txn);
    s->txn = NULL;
    s->n_txn = s->next_batch = s->batch_len = 0;
    free(s->meta_value);
    s->meta_value = NULL;
    free(s->meta_key);
    s->meta_key = NULL;
    s->written_incomplete = false;
}

/* A round ended (successfully or not): run the next one if something
 * changed meanwhile. */
static void round_end(struct sync *s, bool ok)
{
    round_reset(s);
    s->phase = PH_IDLE;
    if (!ok) {
        s->dirty = false;
        retry_later(s);
        return;
    }
    backoff_reset(&s->bo);
    if (s->dirty) {
        s->dirty = false;
        sync_kick(s);
    }
}

static void round_synced(struct sync *s)
{
    if (!s->round_complete)
        return;
    s->stats.last_sync_unix = (int64_t)time(NULL);
    if (s->on_synced)
        s->on_synced(s->arg);
}

/* ---- writing ---- */

static void send_batch(struct sync *s);

static bool is_set(const struct consul_txn_op *op)
{
    return op->verb == CONSUL_TXN_SET || op->verb == CONSUL_TXN_CAS;
}

static uint64_t value_hash(const struct consul_txn_op *op)
{
    static const uint8_t key[SIPHASH_KEY_LEN]; /* not a secret: identity only */
    return siphash24(key, op->value, op->value_len);
}

static struct refused *find_refused(const struct sync *s, const char *key)
{
    for (size_t i = 0; i < s->n_refused; i++)
        if (strcmp(s->refused[i].key, key) == 0)
            return &s->refused[i];
    return NULL;
}

static void forget_refused(struct sync *s)
{
    for (size_t i = 0; i < s->n_refused; i++)
        free(s->refused[i].key);
    free(s->refused);
    s->refused = NULL;
    s->n_refused = 0;
}

static void remember_refused(struct sync *s, const struct consul_txn_op *op)
{
    struct refused *r = find_refused(s, op->key);
    if (r) {
        r->hash = value_hash(op);
        return;
    }
    if (s->n_refused == REFUSED_MAX)
        forget_refused(s); /* they are merely tried (and refused) once more */
    struct refused *v = realloc(s->refused, (s->n_refused + 1) * sizeof(*v));
    char *k = strdup(op->key);
    if (!v || !k) {
        free(k);
        if (v)
            s->refused = v;
        return; /* not remembered: sent (and refused) again next round */
    }
    s->refused = v;
    v[s->n_refused].key = k;
    v[s->n_refused].hash = value_hash(op);
    s->n_refused++;
}

/* Drop the sets Consul already refused with this very value; count what
 * stays refused. Returns the new number of ops. */
static size_t drop_refused(struct sync *s, struct consul_txn_op *ops, size_t n)
{
    size_t out = 0, skipped = 0;
    for (size_t i = 0; i < n; i++) {
        const struct refused *r = is_set(&ops[i]) ? find_refused(s, ops[i].key) : NULL;
        if (r && r->hash == value_hash(&ops[i])) {
            log_debug("exporter: not writing %s again: Consul refused this value as too large",
                      ops[i].key);
            skipped++;
            continue;
        }
        ops[out++] = ops[i];
    }
    s->stats.kv_refused_now = skipped;
    return out;
}

/* Consul answered 413 for the batch first..first+n-1: split it (false:
 * the first half is on its way), or skip the one entry that is too large
 * on its own (true: the caller goes on after it). */
static bool batch_too_large(struct sync *s, size_t first, size_t n, const char *why)
{
    if (n > 1) {
        s->stats.txn_splits++;
        s->batch_max = n / 2;
        log_info("exporter: Consul refused KV ops %zu-%zu of %zu as too large (%s); retrying "
                 "them in batches of %zu to find the entry",
                 first, first + n - 1, s->n_txn, why, s->batch_max);
        send_batch(s);
        return false;
    }
    const struct consul_txn_op *op = &s->txn[first];
    s->stats.kv_refused++;
    s->stats.kv_refused_now++;
    remember_refused(s, op);
    log_warn("exporter: Consul refused KV entry %s (%zu-byte value) as too large (%s); skipped "
             "and counted in drover_exporter_kv_refused_total, the other entries are written; "
             "it is tried again when its value changes",
             op->key, op->value_len, why);
    s->next_batch += 1;
    s->batch_max = CONSUL_TXN_MAX_OPS;
    return true;
}

/* After the last batch: fold what was written into the cached view. */
static int fold_written(struct sync *s)
{
    struct kv_map next, deleted;
    int rc = 0;
    kv_map_init(&next);
    kv_map_init(&deleted);
    for (size_t i = 0; i < s->ops.n && rc == 0; i++)
        if (s->ops.v[i].kind == KV_OP_DELETE)
            rc = kv_map_put(&deleted, s->ops.v[i].key, "", 0);
    if (rc == 0)
        rc = kv_map_sort(&deleted);
    if (rc == 0)
        rc = kv_map_sort(&s->written);
    for (size_t i = 0; i < s->current.n && rc == 0; i++) {
        const struct kv_entry *e = &s->current.v[i];
        if (kv_map_find(&deleted, e->key) || kv_map_find(&s->written, e->key))
            continue;
        rc = kv_map_put(&next, e->key, e->value, e->modify_index);
    }
    for (size_t i = 0; i < s->written.n && rc == 0; i++)
        rc = kv_map_put(&next, s->written.v[i].key, s->written.v[i].value,
                        s->written.v[i].modify_index);
    kv_map_clear(&deleted);
    if (rc < 0) {
        kv_map_clear(&next);
        return rc;
    }
    kv_map_clear(&s->current);
    s->current = next;
    return 0;
}

static void on_batch_done(void *arg, struct consul_response *resp)
{
    struct sync *s = arg;
    if (s->stopped)
        return;
    size_t first = s->next_batch, n = s->batch_len;
    if (resp->err < 0 && resp->txn && resp->txn->guard_failed) {
        /* Not a conflict to retry: the lock is gone, so is our right to
         * write. Nothing of this batch was written. */
        s->stats.txn_failures++;
        s->stats.fence_refusals++;
        log_warn("exporter: Consul refused KV ops %zu-%zu of %zu: %s is no longer locked by "
                 "session %s; nothing of the batch written, writes stop, re-checking leadership",
                 first, first + n - 1, s->n_txn, s->cfg.fence_key, s->session);
        s->writer = false;
        s->have_current = false;
        round_end(s, true);
        if (s->cfg.on_fence_lost)
            s->cfg.on_fence_lost(s->arg);
        return;
    }
    if (resp->err == -E2BIG) {
        /* Not a failure of the round: one entry is refused, the rest is
         * written (see sync.h). */
        if (!batch_too_large(s, first, n, resp->errmsg ? resp->errmsg : "HTTP 413"))
            return;
        if (s->next_batch < s->n_txn) {
            send_batch(s);
            return;
        }
        goto written;
    }
    if (resp->err < 0) {
        s->stats.txn_failures++;
        if (resp->err == -ECANCELED)
            s->stats.txn_conflicts++;
        log_warn("exporter: KV write of ops %zu-%zu of %zu failed: %s; re-reading %s and "
                 "retrying",
                 first, first + n - 1, s->n_txn, resp->errmsg ? resp->errmsg : strerror(-resp->err),
                 s->cfg.layout->own);
        s->have_current = false;
        round_end(s, false);
        return;
    }
    s->stats.txns++;
    /* Record each written key with the ModifyIndex Consul gave it. */
    for (size_t i = first; i < first + n; i++) {
        const struct consul_txn_op *op = &s->txn[i];
        if (op->verb == CONSUL_TXN_DELETE_CAS || op->verb == CONSUL_TXN_DELETE) {
            s->stats.kv_deletes++;
            continue;
        }
        s->stats.kv_sets++;
        uint64_t idx = 0;
        const struct consul_kv_list *res = resp->txn ? &resp->txn->results : NULL;
        for (size_t j = 0; res && j < res->n; j++) {
            if (strcmp(res->items[j].key, op->key) == 0) {
                idx = res->items[j].modify_index;
                break;
            }
        }
        if (idx == 0 || kv_map_put(&s->written, op->key, op->value, idx) < 0)
            s->written_incomplete = true;
    }
    s->next_batch += n;
    if (s->batch_max < CONSUL_TXN_MAX_OPS)
        s->batch_max *= 2; /* after a split: grow back while batches pass */
    if (s->next_batch < s->n_txn) {
        send_batch(s);
        return;
    }
written:
    if (s->written_incomplete || fold_written(s) < 0)
        s->have_current = false;
    log_debug("exporter: wrote %zu sets and %zu deletes in %zu ops", s->ops.sets, s->ops.deletes,
              s->n_txn);
    round_synced(s);
    round_end(s, true);
}

static void send_batch(struct sync *s)
{
    if (!may_write(s)) {
        s->stats.aborted_not_leader++;
        log_warn("exporter: leadership lost, dropping %zu of %zu KV ops not yet written",
                 s->n_txn - s->next_batch, s->n_txn);
        s->have_current = false;
        round_end(s, true); /* a change meanwhile (new leadership) runs a round */
        return;
    }
    /* Fenced: the guard takes one op of each batch. */
    struct consul_txn_op guard = {
        .verb = CONSUL_TXN_CHECK_SESSION, .key = s->cfg.fence_key, .session = s->session};
    size_t n_guard = s->cfg.fence_key ? 1 : 0;
    size_t n = s->n_txn - s->next_batch;
    if (n > CONSUL_TXN_MAX_OPS - n_guard)
        n = CONSUL_TXN_MAX_OPS - n_guard;
    if (n > s->batch_max)
        n = s->batch_max;
    s->batch_len = n;
    s->phase = PH_WRITE;
    int rc =
        consul_txn_guarded(s->consul, &guard, n_guard, s->txn + s->next_batch, n, on_batch_done, s);
    if (rc < 0) {
        s->stats.txn_failures++;
        log_warn("exporter: cannot start a KV txn: %s, retrying", strerror(-rc));
        s->have_current = false;
        round_end(s, false);
    }
}

/* ---- building ---- */

static void on_build_skip(const char *kind, const char *key, const struct kube_reason *why,
                          void *arg)
{
    struct sync *s = arg;
    if (s->on_skip)
        s->on_skip(kind, key, why, s->arg);
}

static void build_and_write(struct sync *s)
{
    const struct kv_layout *l = s->cfg.layout;
    struct export_build_result res;
    int64_t now = (int64_t)uv_now(s->loop);
    struct export_build_params p = {
        .layout = l,
        .service_opts = s->cfg.service_opts,
        .node_opts = s->cfg.node_opts,
        .now = now,
        .grace = s->cfg.grace_ms,
    };
    s->stats.rounds++;
    kv_map_init(&s->desired);
    int rc = export_build_desired(&p, s->services, s->nodes, s->state, &s->desired, &res,
                                  on_build_skip, s);
    if (rc < 0) {
        log_error("exporter: building the desired KV failed: %s, retrying", strerror(-rc));
        round_end(s, false);
        return;
    }
    s->stats.last = res;
    if (res.recheck_at != INT64_MAX) {
        int64_t d = res.recheck_at > now ? res.recheck_at - now : 0;
        uv_timer_start(&s->grace_timer, on_grace_timer, (uint64_t)d + 1, 0);
    } else {
        uv_timer_stop(&s->grace_timer);
    }
    s->round_complete = kube_store_complete(s->services) && kube_store_complete(s->nodes);
    rc = kv_layout_diff(l, &s->desired, &s->current, s->round_complete, &s->ops);
    if (rc < 0) {
        log_error("exporter: diff of %s failed: %s, not writing this round", l->own, strerror(-rc));
        round_end(s, false);
        return;
    }

    /* meta: only for a complete view, and only when needed */
    bool with_meta = false;
    char *mkey = NULL;
    if (s->round_complete) {
        struct kv_meta m = {
            .exporter_version = s->cfg.version,
            .last_full_sync_unix = (int64_t)time(NULL),
            .services = res.services,
            .service_ports = res.service_ports,
            .nodes = res.nodes,
            .eligible_nodes = res.eligible_nodes,
            .skipped_services = res.skipped_services,
        };
        mkey = kv_layout_meta_key(l);
        const struct kv_entry *cur = mkey ? kv_map_find(&s->current, mkey) : NULL;
        if (mkey && kv_layout_meta_needs_write(l, cur ? cur->value : NULL, &m, s->ops.n)) {
            s->meta_value = kv_layout_meta_value(l, &m);
            with_meta = s->meta_value != NULL;
        }
    }
    size_t n = s->ops.n + (with_meta ? 1 : 0);
    if (n == 0) {
        free(mkey);
        s->stats.noop_rounds++;
        round_synced(s);
        round_end(s, true);
        return;
    }
    struct consul_txn_op *ops = NULL;
    if (kv_ops_to_txn(&s->ops, &ops) < 0 || !(s->txn = calloc(n, sizeof(*s->txn)))) {
        free(ops);
        free(mkey);
        round_end(s, false);
        return;
    }
    memcpy(s->txn, ops, s->ops.n * sizeof(*ops));
    free(ops);
    if (with_meta) {
        struct consul_txn_op *m = &s->txn[s->ops.n];
        s->meta_key = mkey;
        mkey = NULL;
        m->verb = CONSUL_TXN_SET;
        m->key = s->meta_key;
        m->value = s->meta_value;
        m->value_len = strlen(s->meta_value);
    }
    free(mkey);
    n = drop_refused(s, s->txn, n);
    if (n == 0) {
        s->stats.noop_rounds++;
        round_synced(s);
        round_end(s, true);
        return;
    }
    s->n_txn = n;
    s->next_batch = 0;
    s->batch_max = CONSUL_TXN_MAX_OPS;
    log_info("exporter: writing %zu sets and %zu deletes%s to %s (%zu services, %zu nodes%s)",
             s->ops.sets, s->ops.deletes, with_meta ? " and meta" : "", l->own, res.services,
             res.nodes, s->round_complete ? "" : ", incomplete view: no deletes");
    send_batch(s);
}

/* ---- reading ---- */

static void on_read(void *arg, struct consul_response *resp)
{
    struct sync *s = arg;
    if (s->stopped)
        return;
    if (resp->err < 0) {
        s->stats.read_failures++;
        log_warn("exporter: reading %s from Consul failed: %s, retrying",
                 s->phase == PH_READ_OWN ? s->cfg.layout->own : s->cfg.layout->kse_prefix,
                 resp->errmsg ? resp->errmsg : strerror(-resp->err));
        kv_map_clear(&s->reading);
        round_end(s, false);
        return;
    }
    if (resp->kv && kv_map_add_consul(&s->reading, resp->kv) < 0) {
        kv_map_clear(&s->reading);
        round_end(s, false);
        return;
    }
    if (s->phase == PH_READ_OWN && s->cfg.layout->kse_prefix) {
        char prefix[512];
        snprintf(prefix, sizeof(prefix), "%s/", s->cfg.layout->kse_prefix);
        s->phase = PH_READ_KSE;
        if (consul_kv_get_prefix(s->consul, prefix, on_read, s) < 0) {
            kv_map_clear(&s->reading);
            round_end(s, false);
        }
        return;
    }
    s->stats.reads++;
    kv_map_clear(&s->current);
    s->current = s->reading;
    kv_map_init(&s->reading);
    s->have_current = true;
    if (!may_write(s)) {
        round_end(s, true);
        return;
    }
    build_and_write(s);
}

static void start_round(struct sync *s)
{
    if (s->stopped || s->phase != PH_IDLE)
        return;
    if (!s->writer)
        return; /* followers neither read nor write */
    /* Nothing is written before both resources were listed once. */
    if (!kube_store_resource_version(s->services) || !kube_store_resource_version(s->nodes))
        return;
    s->round_gen = s->generation;
    s->dirty = false;
    if (s->have_current) {
        build_and_write(s);
        return;
    }
    s->phase = PH_READ_OWN;
    kv_map_init(&s->reading);
    if (consul_kv_get_prefix(s->consul, s->cfg.layout->own, on_read, s) < 0) {
        log_warn("exporter: cannot start reading %s from Consul, retrying", s->cfg.layout->own);
        round_end(s, false);
    }
}

/* ---- lifecycle ---- */

int sync_new(uv_loop_t *loop, struct consul_client *consul, struct kube_store *services,
             struct kube_store *nodes, const struct sync_config *cfg, sync_skip_cb on_skip,
             sync_synced_cb on_synced, void *arg, struct sync **out)
{
    struct sync *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->state = export_state_new();
    if (!s->state) {
        free(s);
        return -ENOMEM;
    }
    s->loop = loop;
    s->consul = consul;
    s->services = services;
    s->nodes = nodes;
    s->cfg = *cfg;
    if (cfg->fence_key && !(s->fence_key = strdup(cfg->fence_key))) {
        export_state_free(s->state);
        free(s);
        return -ENOMEM;
    }
    s->cfg.fence_key = s->fence_key;
    if (!s->cfg.coalesce_ms)
        s->cfg.coalesce_ms = 5;
    s->on_skip = on_skip;
    s->on_synced = on_synced;
    s->arg = arg;
    kv_map_init(&s->current);
    kv_map_init(&s->desired);
    kv_map_init(&s->written);
    kv_map_init(&s->reading);
    backoff_init(&s->bo, cfg->retry_base_ms ? cfg->retry_base_ms : 200,
                 cfg->retry_cap_ms ? cfg->retry_cap_ms : 10000, BACKOFF_FULL);
    uv_timer_init(loop, &s->kick_timer);
    uv_timer_init(loop, &s->grace_timer);
    uv_timer_init(loop, &s->resync_timer);
    s->kick_timer.data = s->grace_timer.data = s->resync_timer.data = s;
    if (cfg->resync_ms > 0)
        uv_timer_start(&s->resync_timer, on_resync_timer, (uint64_t)cfg->resync_ms,
                       (uint64_t)cfg->resync_ms);
    *out = s;
    return 0;
}

void sync_stop(struct sync *s)
{
    if (!s)
        return;
    s->stopped = true;
    uv_timer_stop(&s->kick_timer);
    uv_timer_stop(&s->grace_timer);
    uv_timer_stop(&s->resync_timer);
}

static void on_timer_closed(uv_handle_t *h)
{
    struct sync *s = h->data;
    if (--s->closing > 0)
        return;
    round_reset(s);
    kv_map_clear(&s->current);
    kv_map_clear(&s->reading);
    export_state_free(s->state);
    forget_refused(s);
    free(s->session);
    free(s->fence_key);
    free(s);
}

void sync_free(struct sync *s)
{
    if (!s)
        return;
    sync_stop(s);
    s->closing = 3;
    uv_close((uv_handle_t *)&s->kick_timer, on_timer_closed);
    uv_close((uv_handle_t *)&s->grace_timer, on_timer_closed);
    uv_close((uv_handle_t *)&s->resync_timer, on_timer_closed);
}
