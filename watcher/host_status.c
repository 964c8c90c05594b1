/* SPDX-License-Identifier: Apache-2.0 */
/* host_status: this watcher's status entry, bound to a session (host_status.h). */
#include "host_status.h"

#include <errno.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "backoff.h"
#include "kv_key.h"
#include "log.h"

#define CHANGE_DELAY_MS 100 /* coalesce bursts of changes */
/* A failed renewal is tried again this soon (jittered by up to half as
 * much), not a TTL/3 later: two misses in a row must not cost the session. */
#define RENEW_RETRY_MS 1000

struct host_status {
    uv_loop_t *loop;
    struct consul_client *c;
    char *key;
    unsigned ttl_s;
    host_status_fill_fn fill;
    void (*session_lost)(void *arg);
    void *arg;
    uv_timer_t tick, soon;
    char *session;
    char *written;        /* bytes last written (NULL: none since the session began) */
    char *pending;        /* bytes of the write in flight */
    bool busy;            /* a Consul request is in flight */
    bool dirty;           /* fill again */
    bool renew_due;       /* the session needs renewing: goes before any write */
    bool write_held;      /* a write was refused: the next one waits for the tick */
    struct backoff retry; /* its PRNG spreads the renewal retries */
    bool stopping;
    int closing; /* handles still closing */
    void (*done)(void *);
    void *done_arg;
};

static void step(struct host_status *hs);
static void on_soon(uv_timer_t *t);

static void on_closed(uv_handle_t *h)
{
    struct host_status *hs = h->data;
    if (--hs->closing > 0)
        return;
    void (*done)(void *) = hs->done;
    void *arg = hs->done_arg;
    free(hs->key);
    free(hs->session);
    free(hs->written);
    free(hs->pending);
    free(hs);
    if (done)
        done(arg);
}

static void finish(struct host_status *hs)
{
    hs->closing = 2;
    uv_close((uv_handle_t *)&hs->tick, on_closed);
    uv_close((uv_handle_t *)&hs->soon, on_closed);
}

static void drop_session(struct host_status *hs)
{
    free(hs->session);
    hs->session = NULL;
    hs->renew_due = false;  /* a new session needs no renewal yet */
    hs->write_held = false; /* nor does its first write wait */
    free(hs->written);
    hs->written = NULL;
}

static void on_destroyed(void *arg, struct consul_response *resp)
{
    struct host_status *hs = arg;
    if (resp->err < 0)
        log_warn("host status: destroying session %s: %s; %s disappears when its TTL runs out",
                 hs->session, resp->errmsg ? resp->errmsg : strerror(-resp->err), hs->key);
    finish(hs);
}

static void on_written(void *arg, struct consul_response *resp)
{
    struct host_status *hs = arg;
    bool failed = false;
    hs->busy = false;
    if (resp->err == -ECANCELED)
        return;
    if (resp->err < 0) {
        log_warn("host status: writing %s: %s; retried in %u s", hs->key,
                 resp->errmsg ? resp->errmsg : strerror(-resp->err), hs->ttl_s / 3);
        hs->dirty = true;
        failed = true;
    } else if (!resp->ok) {
        /* Acquire refused: our session is gone, or another one holds the
         * key, typically the previous run of this watcher (killed, so its
         * session lives until its TTL runs out). A renewal tells which;
         * assuming "gone" made a new session per write, each left to
         * expire, until the other one did. */
        log_warn("host status: writing %s: refused (another session holds it, e.g. this "
                 "watcher's previous run until its TTL runs out, or ours is gone); checking "
                 "ours, writing again in %u s",
                 hs->key, hs->ttl_s / 3);
        hs->renew_due = true;
        hs->write_held = true;
        hs->dirty = true;
        free(hs->written); /* the key does not hold it now */
        hs->written = NULL;
        failed = true;
    } else {
        free(hs->written);
        hs->written = hs->pending;
        hs->pending = NULL;
    }
    free(hs->pending);
    hs->pending = NULL;
    if (hs->stopping)
        host_status_stop(hs, hs->done, hs->done_arg);
    else if (hs->renew_due || (hs->dirty && hs->session && !failed))
        /* A renewal the write held up goes out now. A failed write waits
         * for the tick: a Consul that lost our session (restarted empty:
         * 500 "invalid session") would otherwise be asked again at once,
         * hundreds of times a second, until the tick's renewal finds it
         * gone. */
        step(hs);
}

static void write_entry(struct host_status *hs)
{
    json_t *rec = hs->fill(hs->arg);
    char *text = rec ? json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(rec);
    hs->dirty = false;
    if (!text)
        return;
    if (hs->written && strcmp(text, hs->written) == 0) {
        free(text);
        return;
    }
    hs->pending = text;
    hs->busy = true;
    if (consul_lock_acquire(hs->c, hs->key, hs->session, text, strlen(text), on_written, hs) < 0) {
        hs->busy = false;
        free(hs->pending);
        hs->pending = NULL;
        hs->dirty = true;
    }
}

static void on_created(void *arg, struct consul_response *resp)
{
    struct host_status *hs = arg;
    hs->busy = false;
    if (resp->err == -ECANCELED)
        return;
    if (resp->err < 0 || !resp->session_id) {
        log_warn("host status: creating a session for %s: %s; retried in %u s", hs->key,
                 resp->errmsg ? resp->errmsg : strerror(-resp->err), hs->ttl_s / 3);
    } else if (!(hs->session = strdup(resp->session_id))) {
        log_warn("host status: out of memory; retried in %u s", hs->ttl_s / 3);
    } else {
        hs->dirty = true;
    }
    if (hs->stopping)
        host_status_stop(hs, hs->done, hs->done_arg);
    else if (hs->session)
        step(hs);
}

static void on_renewed(void *arg, struct consul_response *resp)
{
    struct host_status *hs = arg;
    hs->busy = false;
    if (resp->err == -ECANCELED)
        return;
    if (consul_session_gone(resp)) {
        /* Consul restarted empty, or the session expired while Consul
         * could not be reached: renewing it again would fail forever */
        log_warn("host status: session of %s is gone (%s); creating a new one", hs->key,
                 resp->errmsg ? resp->errmsg : "not found");
        drop_session(hs);
        if (hs->session_lost && !hs->stopping)
            hs->session_lost(hs->arg);
    } else if (resp->err < 0) {
        uint64_t d =
            backoff_rand_range(&hs->retry, RENEW_RETRY_MS, RENEW_RETRY_MS + RENEW_RETRY_MS / 2 - 1);
        log_warn("host status: renewing session of %s: %s; retried in %llu ms", hs->key,
                 resp->errmsg ? resp->errmsg : strerror(-resp->err), (unsigned long long)d);
        if (hs->stopping)
            host_status_stop(hs, hs->done, hs->done_arg);
        else
            uv_timer_start(&hs->soon, on_soon, d, 0); /* renew_due stays set */
        return;
    }
    hs->renew_due = false;
    if (hs->stopping)
        host_status_stop(hs, hs->done, hs->done_arg);
    else
        step(hs);
}

/* One request at a time: session first, then its renewal, then the entry
 * when dirty. */
static void step(struct host_status *hs)
{
    if (hs->busy || hs->stopping)
        return;
    if (hs->session && hs->renew_due) {
        hs->busy = consul_session_renew(hs->c, hs->session, on_renewed, hs) == 0;
        return;
    }
    if (!hs->session) {
        struct consul_session_opts so = {.name = hs->key,
                                         .ttl_s = hs->ttl_s,
                                         .lock_delay_s = 0,
                                         .lock_delay_set = true,
                                         .behavior_delete = true};
        hs->busy = consul_session_create(hs->c, &so, on_created, hs) == 0;
        return;
    }
    if (hs->dirty && !hs->write_held)
        write_entry(hs);
}

/* Every TTL/3. A request still in flight (a slow write) does not skip the
 * renewal: it goes out as soon as that request is answered. */
static void on_tick(uv_timer_t *t)
{
    struct host_status *hs = t->data;
    if (hs->stopping)
        return;
    if (hs->session) {
        hs->renew_due = true;
        hs->dirty = true; /* rewrite when the bytes differ ("updated" moves only then) */
    }
    hs->write_held = false;
    step(hs);
}

static void on_soon(uv_timer_t *t)
{
    step(t->data);
}

int host_status_start(uv_loop_t *loop, struct consul_client *c, const struct host_status_opts *o,
                      struct host_status **out)
{
    if (!o->key || !o->fill || o->ttl_s < 10 || o->ttl_s > 86400)
        return -EINVAL;
    struct host_status *hs = calloc(1, sizeof(*hs));
    if (!hs || !(hs->key = strdup(o->key))) {
        free(hs);
        return -ENOMEM;
    }
    hs->loop = loop;
    hs->c = c;
    hs->ttl_s = o->ttl_s;
    hs->fill = o->fill;
    hs->session_lost = o->session_lost;
    hs->arg = o->arg;
    uv_timer_init(loop, &hs->tick);
    uv_timer_init(loop, &hs->soon);
    hs->tick.data = hs->soon.data = hs;
    backoff_init(&hs->retry, RENEW_RETRY_MS, RENEW_RETRY_MS, BACKOFF_FULL);
    uint64_t every = (uint64_t)o->ttl_s * 1000 / 3;
    uv_timer_start(&hs->tick, on_tick, every, every);
    step(hs);
    *out = hs;
    return 0;
}

void host_status_changed(struct host_status *hs)
{
    if (!hs || hs->stopping)
        return;
    hs->dirty = true;
    if (!uv_is_active((uv_handle_t *)&hs->soon))
        uv_timer_start(&hs->soon, on_soon, CHANGE_DELAY_MS, 0);
}

void host_status_stop(struct host_status *hs, void (*done)(void *arg), void *arg)
{
    if (!hs) {
        if (done)
            done(arg);
        return;
    }
    hs->stopping = true;
    hs->done = done;
    hs->done_arg = arg;
    uv_timer_stop(&hs->tick);
    uv_timer_stop(&hs->soon);
    if (hs->busy)
        return; /* the callback in flight comes back here */
    if (hs->session && consul_session_destroy(hs->c, hs->session, on_destroyed, hs) == 0) {
        hs->busy = true;
        return;
    }
    finish(hs);
}

int host_status_check_opts(char **host, int64_t ttl_ms, char *err, size_t errlen)
{
    char name[256];
    if (!*host || !**host) {
        if (gethostname(name, sizeof(name)) < 0) {
            snprintf(err, errlen, "--host-name unset and gethostname failed: %s", strerror(errno));
            return -EINVAL;
        }
        name[sizeof(name) - 1] = '\0';
        free(*host);
        if (!(*host = strdup(name)))
            return -ENOMEM;
    }
    if (!kv_valid_segment(*host)) {
        snprintf(err, errlen, "--host-name \"%.80s\": not one key segment (no '/')", *host);
        return -EINVAL;
    }
    if (ttl_ms < 10000 || ttl_ms > 86400000) {
        snprintf(err, errlen, "--status-ttl: %lld ms is outside Consul's 10s..24h",
                 (long long)ttl_ms);
        return -EINVAL;
    }
    return 0;
}
