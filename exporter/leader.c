/* SPDX-License-Identifier: Apache-2.0 */
/*
 * leader: Consul session lock election (see leader.h). Three timers: the
 * session renewal (session TTL/2), the deadline after which an unrenewed
 * leader steps down (session TTL minus a margin), and the acquire retry.
 */
#include "leader.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backoff.h"
#include "log.h"
#include "timefmt.h"

struct leader {
    uv_loop_t *loop;
    struct consul_client *consul;
    char *key, *holder, *version;
    unsigned ttl_s;         /* failover bound: a dead holder keeps the lock at most this */
    unsigned session_ttl_s; /* Consul session TTL: ttl_s / 2 (Consul waits 2x it) */
    unsigned lock_delay_s, retry_ms;
    leader_change_cb cb;
    void *arg;

    char *session;
    bool creating; /* session create in flight */
    bool acquiring;
    bool leader;
    bool decided;
    bool announced;  /* the first verdict was passed to cb */
    bool session_ok; /* session renewed within its deadline */
    bool stopping;
    bool freed;    /* leader_free ran: callbacks from the client's teardown are ignored */
    bool key_free; /* the watch last saw no holder */
    uint64_t generation;
    struct consul_watch *watch;
    uv_timer_t renew_timer, deadline_timer, retry_timer;
    /* after a failed Consul call: replicas restarted together must not
     * retry in lockstep */
    struct backoff bo;
    int closing;
    void (*done)(void *);
    void *done_arg;
    struct leader_stats stats;
};

static void create_session(struct leader *l);
static void try_acquire(struct leader *l);

static void set_leader(struct leader *l, bool leader, const char *why)
{
    if (l->leader == leader)
        return;
    l->leader = leader;
    l->generation++;
    if (leader) {
        l->stats.acquisitions++;
        log_info("exporter: leader for %s (%s), generation %llu", l->key, l->holder,
                 (unsigned long long)l->generation);
    } else {
        l->stats.losses++;
        log_warn("exporter: no longer leader for %s: %s; writes stop now", l->key, why);
    }
    if (l->cb)
        l->cb(l->arg, leader, l->generation);
}

static void on_retry_timer(uv_timer_t *t)
{
    struct leader *l = t->data;
    if (!l->session)
        create_session(l);
    else
        try_acquire(l);
}

static void retry_in(struct leader *l, uint64_t ms)
{
    if (l->stopping)
        return;
    uv_timer_start(&l->retry_timer, on_retry_timer, ms, 0);
}

/* Whether the session is known alive (renewed within the deadline). A
 * follower's change is passed on too: it decides its readiness. */
static void set_session_ok(struct leader *l, bool ok)
{
    if (l->session_ok == ok)
        return;
    l->session_ok = ok;
    if (!l->leader && l->announced && l->cb)
        l->cb(l->arg, false, l->generation);
}

static void lose_session(struct leader *l, const char *why)
{
    set_session_ok(l, false);
    set_leader(l, false, why);
    free(l->session);
    l->session = NULL;
    uv_timer_stop(&l->renew_timer);
    uv_timer_stop(&l->deadline_timer);
    retry_in(l, 0);
}

/* ---- session ---- */

static void on_deadline(uv_timer_t *t)
{
    struct leader *l = t->data;
    set_session_ok(l, false);
    set_leader(l, false, "session not renewed for nearly its TTL (Consul unreachable?)");
}

static void arm_deadline(struct leader *l)
{
    uint64_t ttl_ms = (uint64_t)l->session_ttl_s * 1000;
    uint64_t margin = ttl_ms / 5 > 2000 ? 2000 : ttl_ms / 5;
    uv_timer_start(&l->deadline_timer, on_deadline, ttl_ms - margin, 0);
}

static void on_renew_timer(uv_timer_t *t);

static void on_renewed(void *arg, struct consul_response *resp)
{
    struct leader *l = arg;
    if (l->stopping || !l->session)
        return;
    if (consul_session_gone(resp)) {
        lose_session(l, "session expired or was destroyed");
        return;
    }
    if (resp->err < 0) {
        l->stats.renew_failures++;
        /* Soon (the session lives only a TTL without a renew), but spread:
         * not a growing backoff, which could outlast the TTL. */
        uint64_t d = backoff_rand_range(&l->bo, 500, 1500);
        log_warn("exporter: renewing session %s failed: %s, retrying in %llu ms", l->session,
                 resp->errmsg ? resp->errmsg : strerror(-resp->err), (unsigned long long)d);
        uv_timer_start(&l->renew_timer, on_renew_timer, d, (uint64_t)l->session_ttl_s * 500);
        return;
    }
    arm_deadline(l);
    set_session_ok(l, true);
    /* Stepped down while Consul was unreachable, but the session
     * survived: the lock may still be ours. */
    if (!l->leader)
        try_acquire(l);
}

static void on_renew_timer(uv_timer_t *t)
{
    struct leader *l = t->data;
    if (!l->session || l->stopping)
        return;
    if (consul_session_renew(l->consul, l->session, on_renewed, l) < 0)
        l->stats.renew_failures++;
}

static void on_session(void *arg, struct consul_response *resp)
{
    struct leader *l = arg;
    l->creating = false;
    if (l->stopping)
        return;
    if (resp->err < 0 || !resp->session_id) {
        uint64_t d = backoff_next(&l->bo);
        log_warn("exporter: creating a Consul session for %s failed: %s, retrying in %llu ms",
                 l->key, resp->errmsg ? resp->errmsg : "no ID", (unsigned long long)d);
        retry_in(l, d);
        return;
    }
    l->session = strdup(resp->session_id);
    if (!l->session) {
        retry_in(l, backoff_next(&l->bo));
        return;
    }
    backoff_reset(&l->bo);
    l->stats.sessions_created++;
    log_info("exporter: session %s (TTL %u s, lock-delay %u s, failover within %u s) for %s",
             l->session, l->session_ttl_s, l->lock_delay_s, l->ttl_s + l->lock_delay_s, l->key);
    uint64_t every = (uint64_t)l->session_ttl_s * 500;
    uv_timer_start(&l->renew_timer, on_renew_timer, every, every);
    arm_deadline(l);
    set_session_ok(l, true);
    try_acquire(l);
}

static void create_session(struct leader *l)
{
    char name[256];
    if (l->creating || l->session || l->stopping)
        return;
    snprintf(name, sizeof(name), "drover-exporter %s", l->holder);
    struct consul_session_opts o = {
        .name = name,
        .ttl_s = l->session_ttl_s,
        .lock_delay_s = l->lock_delay_s,
        .lock_delay_set = true,
    };
    l->creating = true;
    if (consul_session_create(l->consul, &o, on_session, l) < 0) {
        l->creating = false;
        retry_in(l, backoff_next(&l->bo));
    }
}

/* ---- lock ---- */

static void on_acquired(void *arg, struct consul_response *resp)
{
    struct leader *l = arg;
    l->acquiring = false;
    if (l->stopping)
        return;
    if (resp->err < 0) {
        uint64_t d = backoff_next(&l->bo);
        log_warn("exporter: acquiring %s failed: %s, checking the session, retrying in %llu ms",
                 l->key, resp->errmsg ? resp->errmsg : strerror(-resp->err), (unsigned long long)d);
        /* Consul refuses an acquire with an invalidated session: the lock
         * cannot be ours any more. A renew tells whether to start over
         * with a new session. */
        set_leader(l, false, "re-acquiring the lock failed");
        on_renew_timer(&l->renew_timer);
        retry_in(l, d);
        return;
    }
    backoff_reset(&l->bo);
    l->decided = true;
    if (resp->ok) {
        l->announced = true;
        set_leader(l, true, NULL);
        return;
    }
    if (l->leader)
        set_leader(l, false, "re-acquiring the lock was refused (released, or lock-delay)");
    else if (!l->announced && l->cb)
        l->cb(l->arg, false, l->generation); /* decided: follower */
    l->announced = true;
    /* Held elsewhere, or refused during lock-delay: the watch wakes us
     * when it is free; retry anyway in case the lock-delay refused us. */
    retry_in(l, l->key_free ? l->retry_ms : (uint64_t)l->session_ttl_s * 500);
}

static void try_acquire(struct leader *l)
{
    char value[512], when[TIMEFMT_BUF_SIZE];
    if (!l->session || l->acquiring || l->stopping)
        return;
    timefmt_format_rfc3339((int64_t)time(NULL), when, sizeof(when));
    snprintf(value, sizeof(value), "{\"acquired\":\"%s\",\"holder\":\"%s\",\"version\":\"%s\"}",
             when, l->holder, l->version);
    l->acquiring = true;
    l->stats.acquire_attempts++;
    if (consul_lock_acquire(l->consul, l->key, l->session, value, strlen(value), on_acquired, l) <
        0) {
        l->acquiring = false;
        retry_in(l, backoff_next(&l->bo));
    }
}

static void on_key_change(void *arg, struct consul_response *resp)
{
    struct leader *l = arg;
    const char *holder = NULL;
    if (l->stopping)
        return;
    for (size_t i = 0; resp->kv && i < resp->kv->n; i++)
        if (strcmp(resp->kv->items[i].key, l->key) == 0)
            holder = resp->kv->items[i].session;
    l->key_free = holder == NULL;
    if (l->leader && holder && (!l->session || strcmp(holder, l->session) != 0)) {
        log_warn("exporter: %s is held by session %s, not ours (%s)", l->key, holder,
                 l->session ? l->session : "none");
        set_leader(l, false, "the lock is held by another session");
        retry_in(l, 0);
        return;
    }
    /* Free while we lead: an older read, or someone released it; acquiring
     * again with our session confirms or ends the leadership. */
    if (!holder)
        retry_in(l, 0);
}

/* ---- lifecycle ---- */

int leader_new(uv_loop_t *loop, struct consul_client *consul, const struct leader_config *cfg,
               leader_change_cb cb, void *arg, struct leader **out)
{
    struct leader *l = calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    l->loop = loop;
    l->consul = consul;
    l->key = strdup(cfg->key);
    l->holder = strdup(cfg->holder ? cfg->holder : "unknown");
    l->version = strdup(cfg->version ? cfg->version : "");
    /* Consul invalidates a session that was not renewed for twice its
     * TTL (never earlier than its TTL), and takes no TTL below 10 s: a
     * session of half the configured TTL, renewed every quarter of it,
     * frees the lock of a dead holder within the configured TTL. */
    l->ttl_s = cfg->ttl_s ? cfg->ttl_s : LEADER_TTL_DEFAULT_S;
    if (l->ttl_s < LEADER_TTL_MIN_S) {
        log_warn("exporter: leader TTL %u s is below the %u s Consul allows (a 10 s session "
                 "TTL, invalidated after twice that), using %u s",
                 l->ttl_s, LEADER_TTL_MIN_S, LEADER_TTL_MIN_S);
        l->ttl_s = LEADER_TTL_MIN_S;
    }
    l->session_ttl_s = l->ttl_s / 2;
    l->lock_delay_s = cfg->lock_delay_s;
    l->retry_ms = cfg->retry_ms ? cfg->retry_ms : 1000;
    /* failures: jittered from retry_ms / 2 (decorrelated: even the first
     * retry is spread), up to 10 s */
    backoff_init(&l->bo, l->retry_ms / 2 ? l->retry_ms / 2 : 1, 10000, BACKOFF_DECORRELATED);
    l->cb = cb;
    l->arg = arg;
    if (!l->key || !l->holder || !l->version) {
        free(l->key);
        free(l->holder);
        free(l->version);
        free(l);
        return -ENOMEM;
    }
    uv_timer_init(loop, &l->renew_timer);
    uv_timer_init(loop, &l->deadline_timer);
    uv_timer_init(loop, &l->retry_timer);
    l->renew_timer.data = l->deadline_timer.data = l->retry_timer.data = l;
    *out = l;
    return 0;
}

void leader_start(struct leader *l)
{
    struct consul_watch_opts w = {
        .kind = CONSUL_WATCH_KV_PREFIX,
        .target = l->key,
        .wait_s = 60,
        .on_change = on_key_change,
        .arg = l,
    };
    if (consul_watch_start(l->consul, &w, &l->watch) < 0) {
        log_warn("exporter: cannot watch %s; relying on periodic acquire attempts", l->key);
        l->watch = NULL;
    }
    create_session(l);
}

bool leader_is_leader(const struct leader *l)
{
    return l->leader;
}

uint64_t leader_generation(const struct leader *l)
{
    return l->generation;
}

const char *leader_session(const struct leader *l)
{
    return l->leader ? l->session : NULL;
}

void leader_recheck(struct leader *l, const char *why)
{
    if (l->stopping)
        return;
    set_leader(l, false, why);
    if (l->session)
        on_renew_timer(&l->renew_timer); /* 404: lose_session starts over */
    retry_in(l, l->retry_ms);
}

bool leader_session_ok(const struct leader *l)
{
    return l->session_ok;
}

bool leader_decided(const struct leader *l)
{
    return l->decided;
}

const struct leader_stats *leader_stats(const struct leader *l)
{
    return &l->stats;
}

static void shutdown_done(struct leader *l)
{
    void (*done)(void *) = l->done;
    l->done = NULL;
    if (done)
        done(l->done_arg);
}

static void on_destroyed(void *arg, struct consul_response *resp)
{
    struct leader *l = arg;
    if (l->freed)
        return;
    if (resp->err < 0)
        log_warn("exporter: destroying session %s failed: %s (it expires after its TTL)",
                 l->session, resp->errmsg ? resp->errmsg : strerror(-resp->err));
    shutdown_done(l);
}

static void destroy_session(struct leader *l)
{
    if (!l->session || consul_session_destroy(l->consul, l->session, on_destroyed, l) < 0)
        shutdown_done(l);
}

static void on_released(void *arg, struct consul_response *resp)
{
    struct leader *l = arg;
    if (l->freed)
        return;
    if (resp->err < 0)
        log_warn("exporter: releasing %s failed: %s", l->key,
                 resp->errmsg ? resp->errmsg : strerror(-resp->err));
    destroy_session(l);
}

void leader_shutdown(struct leader *l, void (*done)(void *arg), void *arg)
{
    bool was_leader = l->leader;
    set_leader(l, false, "shutting down");
    l->stopping = true;
    l->done = done;
    l->done_arg = arg;
    uv_timer_stop(&l->renew_timer);
    uv_timer_stop(&l->deadline_timer);
    uv_timer_stop(&l->retry_timer);
    if (l->watch) {
        consul_watch_stop(l->watch);
        l->watch = NULL;
    }
    if (was_leader && l->session &&
        consul_lock_release(l->consul, l->key, l->session, on_released, l) == 0)
        return;
    destroy_session(l);
}

static void on_closed(uv_handle_t *h)
{
    struct leader *l = h->data;
    if (--l->closing > 0)
        return;
    free(l->session);
    free(l->key);
    free(l->holder);
    free(l->version);
    free(l);
}

void leader_free(struct leader *l)
{
    if (!l)
        return;
    l->stopping = true;
    l->freed = true;
    if (l->watch)
        consul_watch_stop(l->watch);
    l->watch = NULL;
    l->closing = 3;
    uv_close((uv_handle_t *)&l->renew_timer, on_closed);
    uv_close((uv_handle_t *)&l->deadline_timer, on_closed);
    uv_close((uv_handle_t *)&l->retry_timer, on_closed);
}
