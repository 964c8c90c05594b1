/* SPDX-License-Identifier: Apache-2.0 */
/*
 * director_main_apply: the apply state machine of `drover-watcher director
 * run`. Inputs (KV through director_feed, or the snapshot at start) and
 * health changes schedule an apply; it runs as one job on the thread pool
 * (director_apply_run) and its result is taken back on the loop: metrics,
 * readiness, the inputs in force, retries with backoff.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "director_main_internal.h"
#include "log.h"

void director_main_status_changed(struct dw *w)
{
    w->status_unix = time(NULL);
    host_status_changed(w->status);
}

/* One apply on the thread pool: table builds take tens of milliseconds for
 * a thousand proxies (far more under sanitizers), and the loop must keep
 * answering health checks and Consul meanwhile. The job owns copies of the
 * inputs and of the health it was started with; the applier is touched by
 * the worker only while w->busy. */
struct job {
    uv_work_t req;
    struct dw *w;
    struct director_inputs *in;
    char **hosts;
    bool *healthy;
    size_t n;
    int rc;
    enum director_apply_outcome out;
};

static bool job_lookup(void *arg, const char *host)
{
    const struct job *j = arg;
    for (size_t i = 0; i < j->n; i++)
        if (strcmp(j->hosts[i], host) == 0)
            return j->healthy[i];
    return true;
}

static void job_free(struct job *j)
{
    for (size_t i = 0; i < j->n; i++)
        free(j->hosts[i]);
    free(j->hosts);
    free(j->healthy);
    director_inputs_free(j->in);
    free(j);
}

static void work_cb(uv_work_t *req)
{
    struct job *j = req->data;
    j->rc = director_apply_run(j->w->apply, j->in, job_lookup, j, (int64_t)time(NULL), &j->out);
}

static void on_due(uv_timer_t *t);
static void schedule(struct dw *w, uint64_t ms);

/* Copy what the metrics collector shows, on the loop, between jobs. */
static void cache_table(struct dw *w)
{
    const struct director_table *t = director_apply_table(w->apply);

    if (!t)
        return;
    void *p = realloc(w->rows, (t->proxy_count + 1) * sizeof(*w->rows));
    if (!p)
        return;
    w->rows = p;
    w->n_rows = t->proxy_count;
    for (uint32_t i = 0; i < t->proxy_count; i++) {
        snprintf(w->rows[i].id, sizeof(w->rows[i].id), "%s", t->proxies[i].id);
        w->rows[i].primary = t->proxies[i].primary_rows;
        w->rows[i].secondary = t->proxies[i].secondary_rows;
    }
    snprintf(w->checksum, sizeof(w->checksum), "%016llx", (unsigned long long)t->checksum);
    w->tier = director_table_tier_name(t->tier);
    w->balance = t->balance_max_over_mean;
    w->have_table = true;
}

static void after_work(uv_work_t *req, int status)
{
    struct job *j = req->data;
    struct dw *w = j->w;
    const struct director_apply_stats *st = director_apply_get_stats(w->apply);

    w->busy = false;
    if (status < 0 || w->stopping) {
        job_free(j);
        return;
    }
    metrics_gauge_set(w->m_held_now, st->held_now ? 1 : 0);
    metrics_gauge_set(w->m_moved, st->held_moved_share);
    if (st->held > w->held_seen)
        metrics_counter_add(w->m_held, st->held - w->held_seen);
    w->held_seen = st->held;
    if (st->snapshot_errors > w->snap_errors_seen)
        metrics_counter_add(w->m_snap_errors, st->snapshot_errors - w->snap_errors_seen);
    w->snap_errors_seen = st->snapshot_errors;
    w->last_change = st->last_change_unix;
    w->generation = st->generation;
    w->gen_checksum = st->generation_checksum;
    w->applied_ok = j->rc == 0 && st->generation_checksum != 0;
    cache_table(w);
    const struct director_inputs *force_in = director_apply_inputs(w->apply);
    if (force_in && (!w->applied || w->applied->hash != force_in->hash)) {
        struct director_inputs *copy = director_inputs_dup(force_in);
        if (copy) {
            director_inputs_free(w->applied);
            w->applied = copy;
            if (director_health_set_targets(w->health, w->in, w->applied) < 0)
                log_error(
                    "director: out of memory updating the health checks; keeping the old set");
        }
    }
    if (j->rc < 0)
        snprintf(w->last_error, sizeof(w->last_error), "apply: %s", st->last_error);
    director_main_status_changed(w);
    if (j->rc < 0) {
        metrics_counter_inc(w->m_errors);
        uint64_t d = backoff_next(&w->retry);
        log_warn("director: apply failed; retry in %llu ms", (unsigned long long)d);
        schedule(w, d);
        daemon_set_ready(w->http, w->m_ready, false, st->last_error);
    } else {
        /* forwarding by the table in force goes on (fail static), but
         * while its snapshot cannot be written a restart without Consul
         * could not re-apply it: not ready, no READY=1, until a write
         * succeeds (every run, at least each verify, retries it) */
        bool ready = !st->snapshot_error[0];
        backoff_reset(&w->retry);
        if (j->out == DIRECTOR_APPLY_APPLIED)
            metrics_counter_inc(w->m_applies);
        daemon_set_ready(w->http, w->m_ready, ready, st->snapshot_error);
        if (ready)
            sdnotify_ready();
    }
    job_free(j);
    if (w->again) {
        w->again = false;
        schedule(w, 0);
    }
}

static void schedule(struct dw *w, uint64_t ms)
{
    if (w->stopping)
        return;
    /* an earlier due time wins: never postpone a pending apply */
    uint64_t left =
        uv_is_active((uv_handle_t *)&w->due) ? uv_timer_get_due_in(&w->due) : UINT64_MAX;
    if (ms < left)
        uv_timer_start(&w->due, on_due, ms, 0);
}

static void run_apply(struct dw *w)
{
    struct job *j;

    if (!w->in || w->stopping)
        return;
    if (w->busy) {
        w->again = true; /* inputs changed while a job runs: once more after it */
        return;
    }
    size_t n_applied = w->applied ? w->applied->n_proxies : 0;
    j = calloc(1, sizeof(*j));
    if (!j || !(j->in = director_inputs_dup(w->in)) ||
        !(j->hosts = calloc(w->in->n_proxies + n_applied + 1, sizeof(*j->hosts))) ||
        !(j->healthy = calloc(w->in->n_proxies + n_applied + 1, sizeof(*j->healthy)))) {
        log_error("director: out of memory starting an apply; retrying");
        if (j)
            job_free(j);
        schedule(w, 1000);
        return;
    }
    /* the health of the proxies in KV and of those in force: a held
     * change (or an emptied director/) is built from the latter */
    for (size_t i = 0; i < w->in->n_proxies + n_applied; i++) {
        const char *host = i < w->in->n_proxies ? w->in->proxies[i].host
                                                : w->applied->proxies[i - w->in->n_proxies].host;
        if (i >= w->in->n_proxies && director_inputs_proxy(w->in, host))
            continue;
        if (!(j->hosts[j->n] = strdup(host)))
            break;
        j->healthy[j->n++] = director_health_healthy(w->health, host);
    }
    j->w = w;
    j->req.data = j;
    if (uv_queue_work(w->loop, &j->req, work_cb, after_work) < 0) {
        job_free(j);
        schedule(w, 1000);
        return;
    }
    w->busy = true;
}

static void on_due(uv_timer_t *t)
{
    run_apply(t->data);
}

void director_main_on_verify(uv_timer_t *t)
{
    struct dw *w = t->data;
    metrics_counter_inc(w->m_verify);
    run_apply(w);
}

const struct director_inputs *director_main_feed_current(void *arg)
{
    struct dw *w = arg;
    return w->from_kv ? w->in : NULL;
}

void director_main_on_inputs(void *arg, struct director_inputs *in, unsigned bad)
{
    struct dw *w = arg;

    metrics_counter_add(w->m_bad, bad);
    if (w->in && w->from_kv && w->in->hash == in->hash) {
        director_inputs_free(in);
        return; /* same content: spurious wake-up */
    }
    log_info("director: KV inputs %016llx: %zu proxies, %zu VIPs, config %s, force %s, %u bad "
             "entries",
             (unsigned long long)in->hash, in->n_proxies, in->n_vips,
             in->config.present ? "ok" : "missing", in->force.present ? "present" : "absent", bad);
    director_inputs_free(w->in);
    w->in = in;
    w->from_kv = true;
    if (director_health_set_targets(w->health, in, w->applied) < 0)
        log_error("director: out of memory updating the health checks; keeping the old set");
    schedule(w, w->wait_ms);
}

void director_main_on_feed_error(void *arg, int err, const char *msg)
{
    struct dw *w = arg;
    (void)err;
    snprintf(w->last_error, sizeof(w->last_error), "consul: %s", msg);
    director_main_status_changed(w);
    /* counted by the Consul client (drover_watcher_director_consul_errors_total);
     * the watch logs an outage once when it begins and once when it ends
     * (common/outage.h), so each retry only at debug level here */
    log_debug("director: %s; forwarding with the table in force", msg);
}

void director_main_on_health_change(void *arg, const char *host, bool healthy)
{
    (void)host;
    (void)healthy;
    /* within the interval: the next loop turn builds the new table */
    schedule(arg, 0);
}

void director_main_on_consul_health(void *arg, struct consul_response *resp)
{
    struct dw *w = arg;
    director_health_set_consul(w->health, resp->health);
}

void director_main_load_snapshot(struct dw *w, const char *snapshot_file)
{
    struct director_inputs *in = NULL;
    bool *healthy = NULL;
    int rc = director_apply_load(w->apply, &in, &healthy);

    if (rc == -ENOENT) {
        log_info("director: no snapshot %s yet; waiting for Consul", snapshot_file);
        return;
    }
    if (rc < 0)
        return;
    for (size_t i = 0; i < in->n_proxies; i++)
        director_health_seed(w->health, in->proxies[i].host, healthy[i]);
    free(healthy);
    w->in = in;
    w->from_kv = false;
    director_health_set_targets(w->health, in, NULL);
    log_info("director: re-applying the snapshot until Consul answers");
    run_apply(w);
}
