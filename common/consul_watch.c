/* SPDX-License-Identifier: Apache-2.0 */
/*
 * consul_watch: blocking queries on a KV prefix or a health service.
 *
 * Loop: full read (no index) -> deliver -> blocking query with
 * index=<last X-Consul-Index>&wait=<wait>s -> deliver if the content hash
 * changed -> repeat. The rules (Consul's blocking-query contract):
 *  - the client timeout is wait*17/16 (Consul's own jitter) + a margin +
 *    our jitter, so a healthy query never times out on our side;
 *  - an index that goes backwards or is 0 resets to a full read; a second
 *    reset in a row waits a backoff delay first, so a server that keeps
 *    answering 0 can never make us spin;
 *  - wake-ups without a content change are counted, not delivered;
 *  - a ?stale answer older than the value held (X-Consul-Index below the
 *    index of the last answer taken) is never delivered: a server that lags
 *    the one that answered before would step the watcher back in time. The
 *    same read goes once to the leader, whose answer is taken as it is;
 *  - errors (refused, timeout, 5xx, bad body) call on_error, keep the last
 *    delivered value, and retry forever after a jittered backoff with a
 *    full read (the server may have restarted at a lower index).
 * The watch owns the last delivered list and frees it on stop.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backoff.h"
#include "consul_internal.h"
#include "outage.h"
#include "log.h"

#define WAIT_MARGIN_MS 5000

struct consul_watch {
    struct consul_client *c;
    struct consul_watch *next, *prev;
    enum consul_watch_kind kind;
    char *target;
    bool passing_only;
    unsigned wait_s;
    unsigned empty_pause_ms; /* consul_watch_opts.empty_pause_ms */
    consul_cb on_change;
    consul_cb on_error;
    consul_cb on_reset;
    void *arg;
    uint64_t index;   /* index for the next query; 0 = full read */
    uint64_t sent;    /* index of the request in flight */
    uint64_t held;    /* X-Consul-Index of the last answer taken */
    bool leader_next; /* the next read without ?stale: a stale answer lagged */
    bool have_value;
    uint64_t hash;
    struct consul_kv_list *last_kv;
    struct consul_kv_text *last_text;   /* last_kv's entries as JSON text */
    struct consul_kv_text *answer_text; /* the answer in flight's, until delivered */
    struct consul_health_list *last_health;
    struct consul_request *req;
    uv_timer_t timer;
    struct backoff backoff;
    unsigned resets_in_row;
    bool stopped;
    struct outage outage; /* logged once per outage, not per retry */
};

static void watch_issue(struct consul_watch *w);

/* Appended to the line that begins an outage: the next ones are quiet. */
#define QUIET_NOTE " (further failures of this watch are logged at debug level until it answers)"

/* The level of a failed attempt's log line: level for the first of an
 * outage (counted in consul_stats.outages), debug for the others. */
static enum log_level watch_fail_level(struct consul_watch *w, enum log_level level)
{
    enum log_level l = outage_fail_level(&w->outage, uv_now(w->c->loop), level);
    if (l == level)
        w->c->stats.outages++;
    return l;
}

/* Consul answered the watch: ends an outage with one line. */
static void watch_answered(struct consul_watch *w)
{
    char what[160];
    if (!w->outage.failing)
        return;
    snprintf(what, sizeof(what), "consul: watch %s", w->target);
    outage_ok(&w->outage, uv_now(w->c->loop), what);
}

static void on_timer(uv_timer_t *t)
{
    watch_issue(t->data);
}

static void schedule(struct consul_watch *w, uint64_t delay_ms)
{
    uv_timer_start(&w->timer, on_timer, delay_ms, 0);
}

static void on_answer(void *arg, struct consul_response *resp)
{
    struct consul_watch *w = arg;
    struct consul_client *c = w->c;
    w->req = NULL;
    if (resp->err || !resp->kv) {
        consul_kv_text_free(w->answer_text); /* nothing it belongs to */
        w->answer_text = NULL;
    }

    if (resp->err) {
        uint64_t delay = backoff_next(&w->backoff);
        c->stats.retries++;
        resp->retry_in_ms = (unsigned)delay;
        log_msg(watch_fail_level(w, LOGL_WARN),
                "%s, keeping last good state (index %" PRIu64 "), retry in %.1fs%s", resp->errmsg,
                w->index, (double)delay / 1000.0, w->outage.failures == 1 ? QUIET_NOTE : "");
        /* Re-read in full after an error: a restarted or replaced Consul
         * may be at a lower index, and a blocking query on our old index
         * would then sleep for the whole wait before saying so. The hash
         * keeps an unchanged re-read from being delivered. */
        w->index = 0;
        if (w->on_error)
            w->on_error(w->arg, resp);
        if (!w->stopped)
            schedule(w, delay);
        return;
    }
    c->stats.watch_wakeups++;
    watch_answered(w); /* any answer ends an outage, an index reset too */
    uint64_t sent = w->sent, got = resp->index;
    if (resp->stale && got > 0 && got < w->held) {
        /* This server lags the one that answered before (the leader after
         * a stale retry, or the cluster before a failover): never go back
         * in time on its word. Read again from the leader; an index lower
         * there too is a real reset (restore, reaped tombstones). */
        c->stats.stale_behind++;
        log_debug("consul: watch %s: stale answer at index %" PRIu64 " is older than the %" PRIu64
                  " held, reading from the leader",
                  w->target, got, w->held);
        consul_kv_text_free(w->answer_text);
        w->answer_text = NULL;
        w->index = 0;
        w->leader_next = true;
        watch_issue(w);
        return;
    }
    bool deliver_ok = true, empty_unchanged = false, went_back = sent > 0 && got < sent;
    if (got == 0 || went_back) {
        /* Consul restored a snapshot, changed leader or the endpoint has no
         * index: start over with a full read instead of blocking on a
         * number that will not come back. */
        c->stats.index_resets++;
        w->resets_in_row++;
        log_msg(w->resets_in_row == 1 ? LOGL_INFO : LOGL_DEBUG,
                "consul: watch %s: index went from %" PRIu64 " to %" PRIu64
                ", resetting to a full read",
                w->target, sent, got);
        w->index = 0;
        deliver_ok = sent == 0; /* a full read's body is current even with index 0 */
    } else {
        w->index = got;
        w->resets_in_row = 0;
        backoff_reset(&w->backoff);
    }

    if (deliver_ok) {
        w->held = got;
        uint64_t h = w->kind == CONSUL_WATCH_KV_PREFIX ? consul_kv_list_hash(resp->kv)
                                                       : consul_health_list_hash(resp->health);
        if (!w->have_value || h != w->hash) {
            w->have_value = true;
            w->hash = h;
            consul_kv_list_free(w->last_kv);
            consul_health_list_free(w->last_health);
            consul_kv_text_free(w->last_text);
            w->last_text = w->answer_text; /* kept in step with last_kv */
            w->answer_text = NULL;
            w->last_kv = resp->kv; /* the watch owns them from here on */
            w->last_health = resp->health;
            resp->kv = NULL;
            resp->health = NULL;
            c->stats.watch_deliveries++;
            /* the first mark of a change's way through the watcher (the
             * benchmarks split latency on these lines) */
            log_debug("consul: watch %s: changed at index %" PRIu64, w->target, got);
            struct consul_response out = *resp;
            out.kv = w->last_kv;
            out.health = w->last_health;
            w->on_change(w->arg, &out);
            if (w->stopped)
                return;
        } else {
            c->stats.watch_unchanged++;
            empty_unchanged = w->kind == CONSUL_WATCH_KV_PREFIX && w->last_kv && w->last_kv->n == 0;
        }
    }
    if (w->answer_text) { /* not delivered: last_text stays last_kv's */
        consul_kv_text_free(w->answer_text);
        w->answer_text = NULL;
    }
    if (went_back && w->on_reset) {
        w->on_reset(w->arg, resp);
        if (w->stopped)
            return;
    }
    if (w->resets_in_row > 1)
        schedule(w, backoff_next(&w->backoff)); /* never spin on resets */
    else if (empty_unchanged && w->empty_pause_ms)
        schedule(w, w->empty_pause_ms); /* see consul_watch_opts */
    else
        watch_issue(w);
}

static void watch_issue(struct consul_watch *w)
{
    char query[160];
    const char *base = w->kind == CONSUL_WATCH_KV_PREFIX ? "recurse" : "";
    const char *pass = w->kind == CONSUL_WATCH_HEALTH_SERVICE && w->passing_only ? "passing" : "";
    long timeout = 0;
    if (w->index > 0) {
        snprintf(query, sizeof(query), "%s%s%s%sindex=%" PRIu64 "&wait=%us", base, *base ? "&" : "",
                 pass, *pass ? "&" : "", w->index, w->wait_s);
        uint64_t wait_ms = (uint64_t)w->wait_s * 1000;
        timeout = (long)(wait_ms * 17 / 16 + WAIT_MARGIN_MS +
                         backoff_rand_range(&w->backoff, 0, wait_ms / 32));
    } else {
        snprintf(query, sizeof(query), "%s%s", base, pass);
    }
    char *path =
        consul_path(w->kind == CONSUL_WATCH_KV_PREFIX ? "kv" : "health/service", w->target, query);
    /* ?stale when the client allows it: any server answers a watch, so
     * a fleet's wake-ups are spread over all servers, not the leader */
    enum consul_req_kind kind =
        w->kind == CONSUL_WATCH_KV_PREFIX ? CONSUL_REQ_KV_LIST : CONSUL_REQ_HEALTH;
    int rc =
        !path ? -ENOMEM
        : w->leader_next
            ? consul_req_start(w->c, "GET", path, NULL, 0, kind, timeout, on_answer, w, &w->req)
            : consul_req_start_stale(w->c, path, kind, timeout, on_answer, w, &w->req);
    if (rc == 0)
        w->leader_next = false;
    free(path);
    if (rc == 0)
        w->req->blocking = w->index > 0;
    if (rc == 0 && w->kind == CONSUL_WATCH_KV_PREFIX) {
        w->req->prev_kv = w->last_kv;
        w->req->prev_text = w->last_text;
        w->req->text_out = &w->answer_text;
    }
    w->sent = w->index;
    if (rc) {
        uint64_t delay = backoff_next(&w->backoff);
        w->c->stats.retries++;
        log_msg(watch_fail_level(w, LOGL_ERROR),
                "consul: watch %s: cannot start query: %s, retry in %.1fs%s", w->target,
                strerror(-rc), (double)delay / 1000.0, w->outage.failures == 1 ? QUIET_NOTE : "");
        schedule(w, delay);
    }
}

int consul_watch_start(struct consul_client *c, const struct consul_watch_opts *o,
                       struct consul_watch **out)
{
    if (!c || !o || !o->target || !o->on_change ||
        (o->kind != CONSUL_WATCH_KV_PREFIX && o->kind != CONSUL_WATCH_HEALTH_SERVICE))
        return -EINVAL;
    struct consul_watch *w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    w->target = strdup(o->target);
    if (!w->target) {
        free(w);
        return -ENOMEM;
    }
    w->c = c;
    w->kind = o->kind;
    w->passing_only = o->passing_only;
    w->wait_s = o->wait_s ? o->wait_s : CONSUL_WAIT_DEFAULT_S;
    if (w->wait_s > CONSUL_WAIT_MAX_S)
        w->wait_s = CONSUL_WAIT_MAX_S;
    w->empty_pause_ms = o->empty_pause_ms;
    w->on_change = o->on_change;
    w->on_error = o->on_error;
    w->on_reset = o->on_reset;
    w->arg = o->arg;
    backoff_init(&w->backoff, o->retry_min_ms ? o->retry_min_ms : 250,
                 o->retry_max_ms ? o->retry_max_ms : 30000, BACKOFF_DECORRELATED);
    uv_timer_init(c->loop, &w->timer);
    w->timer.data = w;
    w->next = c->watches;
    if (c->watches)
        c->watches->prev = w;
    c->watches = w;
    watch_issue(w);
    *out = w;
    return 0;
}

static void watch_closed(uv_handle_t *h)
{
    struct consul_watch *w = h->data;
    consul_kv_list_free(w->last_kv);
    consul_kv_text_free(w->last_text);
    consul_kv_text_free(w->answer_text);
    consul_health_list_free(w->last_health);
    free(w->target);
    free(w);
}

void consul_watch_stop(struct consul_watch *w)
{
    if (!w || w->stopped)
        return;
    w->stopped = true;
    struct consul_client *c = w->c;
    if (w->prev)
        w->prev->next = w->next;
    else if (c->watches == w)
        c->watches = w->next;
    if (w->next)
        w->next->prev = w->prev;
    if (w->req) {
        consul_req_cancel(w->req);
        w->req = NULL;
    }
    uv_timer_stop(&w->timer);
    uv_close((uv_handle_t *)&w->timer, watch_closed); /* freed when libuv is done */
}

void consul_watch_detach_all(struct consul_client *c)
{
    while (c->watches) {
        log_warn("consul: watch %s still running at client shutdown, stopping it",
                 c->watches->target);
        consul_watch_stop(c->watches);
    }
}

void consul_watch_reread(struct consul_watch *w)
{
    if (!w || w->stopped || w->index == 0)
        return;
    if (w->req) { /* its answer could only be from before the break */
        consul_req_cancel(w->req);
        w->req = NULL;
    }
    uv_timer_stop(&w->timer); /* a pause before the next blocking query */
    w->index = 0;
    log_debug("consul: watch %s: reading it afresh", w->target);
    watch_issue(w);
}

uint64_t consul_watch_index(const struct consul_watch *w)
{
    return w->index;
}

const struct consul_kv_list *consul_watch_last_kv(const struct consul_watch *w)
{
    return w->last_kv;
}

const struct consul_health_list *consul_watch_last_health(const struct consul_watch *w)
{
    return w->last_health;
}
