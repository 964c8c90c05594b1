/* SPDX-License-Identifier: Apache-2.0 */
#include "agent_checker.h"

#include <errno.h>
#include <libgen.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "log.h"

/* Coalesce the burst of inotify events one rename produces. */
#define DEBOUNCE_MS 10
#define TICK_MS     1000

/* Counters of answers are written by one thread (the reader's): AGENT_STAT_INC. */

/* One loaded state as the answering threads see it: immutable once
 * published, freed when the last reader lets go of it. */
struct agent_view {
    struct agent_state *state;       /* NULL: no good file loaded yet */
    int64_t state_time;              /* "generated", or the file's mtime */
    unsigned refs;                   /* atomic */
    struct agent_view *retired_next; /* ck->retired_views */
};

struct agent_reader {
    struct agent_checker *ck;
    struct agent_view *view;                /* one reference held */
    int taking;                             /* atomic: between loading ck->view and its ref */
    struct agent_checker_counters counters; /* answer fields only */
    struct agent_reader *next;              /* ck->readers, under ck->lock */
};

struct agent_checker {
    uv_loop_t *loop;
    struct agent_checker_config cfg;
    char *dir, *base;
    struct agent_answer fallback;
    char fallback_text[AGENT_TEXT_MAX + 1];
    /* cut to AGENT_TEXT_MAX when the reply is built */
    char no_state_text[2 * AGENT_TEXT_MAX];
    char stale_text[2 * AGENT_TEXT_MAX];

    /* The published view (atomic pointer): replaced, never changed, on a
     * reload; every reader compares it with its own at each answer and
     * takes the new one then. The reference it holds is dropped only
     * after a grace: once no reader is between loading the pointer and
     * taking its own reference (views in `retired_views` until then). */
    struct agent_view *view;
    struct agent_view *retired_views;
    pthread_mutex_t lock; /* the readers list */
    struct agent_reader own;
    struct agent_reader *readers;
    struct agent_checker_counters retired; /* answers of freed readers */
    struct agent_checker_counters sum;     /* what agent_checker_counters returns */
    struct stat seen;                      /* identity of the file last tried */
    bool seen_valid;

    bool ready;
    char reason[320];
    char last_error[320]; /* why the newest file was not loaded; "" if it was */
    agent_ready_fn ready_fn;
    void *ready_arg;

    struct agent_checker_counters counters;

    uv_fs_event_t fsev;
    uv_signal_t sighup;
    uv_timer_t debounce, tick;
    uint64_t last_poll;
    bool watching;
};

static const char *const reload_names[AGENT_RELOAD_COUNT] = {"ok", "missing", "invalid", "error"};

const char *agent_reload_result_name(enum agent_reload_result r)
{
    return (unsigned)r < AGENT_RELOAD_COUNT ? reload_names[r] : "?";
}

static int64_t wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    return ts.tv_sec;
}

static bool is_stale(const struct agent_checker *ck, const struct agent_view *v, int64_t now)
{
    return v->state && ck->cfg.stale_after_s > 0 && now - v->state_time > ck->cfg.stale_after_s;
}

static struct agent_view *view_new(struct agent_state *st, int64_t state_time)
{
    struct agent_view *v = calloc(1, sizeof(*v));
    if (!v)
        return NULL;
    v->state = st;
    v->state_time = state_time;
    v->refs = 1;
    return v;
}

static void view_ref(struct agent_view *v)
{
    __atomic_add_fetch(&v->refs, 1, __ATOMIC_RELAXED);
}

static void view_unref(struct agent_view *v)
{
    if (!v || __atomic_sub_fetch(&v->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    bool big = agent_state_count(v->state) > 0;
    agent_state_free(v->state);
    free(v);
    /* jansson's tree for a big file is much larger than the table:
     * hand the freed pages back so RSS reflects the table. */
    if (big)
        malloc_trim(0);
}

/* Point r at the published view if it has changed: one atomic load on
 * every answer, no lock. Between loading the pointer and taking a
 * reference r is marked "taking", so the checker does not drop the
 * view's last reference in that window (release_retired). The stores
 * and loads on both sides are sequentially consistent: the checker either
 * sees the mark, or r loads the newer pointer. Reader's thread. */
static void reader_refresh(struct agent_reader *r)
{
    struct agent_checker *ck = r->ck;
    if (__atomic_load_n(&ck->view, __ATOMIC_ACQUIRE) == r->view)
        return;
    __atomic_store_n(&r->taking, 1, __ATOMIC_SEQ_CST);
    struct agent_view *v = __atomic_load_n(&ck->view, __ATOMIC_SEQ_CST);
    view_ref(v);
    __atomic_store_n(&r->taking, 0, __ATOMIC_RELEASE);
    struct agent_view *old = r->view;
    r->view = v;
    view_unref(old); /* the last reader of a replaced view frees it */
}

/* Drop the checker's references to replaced views once no reader is in
 * the middle of taking one (a window of a few instructions; a reader
 * preempted there is retried on the next tick or reload). Checker's
 * thread. */
static void release_retired(struct agent_checker *ck)
{
    if (!ck->retired_views)
        return;
    bool taking = false;
    pthread_mutex_lock(&ck->lock);
    for (struct agent_reader *r = ck->readers; r && !taking; r = r->next)
        taking = __atomic_load_n(&r->taking, __ATOMIC_SEQ_CST);
    pthread_mutex_unlock(&ck->lock);
    if (taking)
        return;
    while (ck->retired_views) {
        struct agent_view *v = ck->retired_views;
        ck->retired_views = v->retired_next;
        view_unref(v);
    }
}

/* Make v the published view (the caller's reference moves to the
 * checker); readers take it at their next answer. Checker's thread. */
static void publish(struct agent_checker *ck, struct agent_view *v)
{
    struct agent_view *old = ck->view;
    __atomic_store_n(&ck->view, v, __ATOMIC_SEQ_CST);
    old->retired_next = ck->retired_views;
    ck->retired_views = old;
    reader_refresh(&ck->own);
    release_retired(ck);
}

/* Recompute readiness; tell the owner when it changes. */
static void update_ready(struct agent_checker *ck, const char *why_not)
{
    bool ready;
    char reason[sizeof(ck->reason)];
    int64_t now = wall_now();

    if (!ck->view->state) {
        ready = false;
        snprintf(reason, sizeof(reason), "%s", why_not ? why_not : ck->reason);
    } else if (ck->last_error[0]) {
        /* Still answering from the previous file, which is right, but the
         * file on disk is not what we serve: say so. */
        ready = false;
        snprintf(reason, sizeof(reason), "%.250s; serving the previous state", ck->last_error);
    } else if (is_stale(ck, ck->view, now)) {
        ready = false;
        snprintf(reason, sizeof(reason), "state file %s is stale: generated %llds ago, limit %llds",
                 ck->cfg.state_path, (long long)(now - ck->view->state_time),
                 (long long)ck->cfg.stale_after_s);
    } else {
        ready = true;
        reason[0] = '\0';
    }
    if (ready == ck->ready && strcmp(reason, ck->reason) == 0)
        return;
    ck->ready = ready;
    memcpy(ck->reason, reason, sizeof(reason));
    if (ck->ready_fn)
        ck->ready_fn(ck->ready_arg, ready, reason);
}

enum agent_reload_result agent_checker_reload(struct agent_checker *ck, const char *why)
{
    struct agent_state_error err;
    struct agent_state *st = NULL;
    enum agent_reload_result res;
    char reason[sizeof(ck->reason)];
    struct stat sb;

    /* Remember what we looked at, good or bad, so the poll does not retry
     * the same broken file every tick. */
    if (stat(ck->cfg.state_path, &sb) == 0) {
        ck->seen = sb;
        ck->seen_valid = true;
    } else {
        ck->seen_valid = false;
    }

    int rc = agent_state_load(ck->cfg.state_path, &st, &err);
    struct agent_view *v = NULL;
    if (rc == 0) {
        int64_t gen = agent_state_generated(st);
        v = view_new(st,
                     gen ? gen : (ck->seen_valid ? (int64_t)ck->seen.st_mtim.tv_sec : wall_now()));
        if (!v) {
            agent_state_free(st);
            snprintf(err.text, sizeof(err.text), "out of memory");
            rc = -ENOMEM;
        }
    }
    if (rc == 0) {
        publish(ck, v);
        /* jansson's tree for a big file is much larger than the table:
         * hand the freed pages back so RSS reflects the table. */
        malloc_trim(0);
        res = AGENT_RELOAD_OK;
        ck->last_error[0] = '\0';
        log_info("agent-checker: loaded state file %s (%s): %zu entries", ck->cfg.state_path, why,
                 agent_state_count(st));
        update_ready(ck, NULL);
    } else if (rc == -ENOENT) {
        res = AGENT_RELOAD_MISSING;
        snprintf(reason, sizeof(reason), "state file %s missing", ck->cfg.state_path);
        log_warn("agent-checker: state file %s (%s): missing, %s", ck->cfg.state_path, why,
                 ck->view->state ? "keeping previous state" : "answering the fallback");
    } else if (rc == -EINVAL) {
        res = AGENT_RELOAD_INVALID;
        ck->counters.parse_errors++;
        if (err.line > 0)
            snprintf(reason, sizeof(reason), "state file %s rejected: line %d column %d: %s",
                     ck->cfg.state_path, err.line, err.column, err.text);
        else
            snprintf(reason, sizeof(reason), "state file %s rejected: %s", ck->cfg.state_path,
                     err.text);
        log_error("agent-checker: %s (%s), %s", reason, why,
                  ck->view->state ? "keeping previous state" : "answering the fallback");
    } else {
        res = AGENT_RELOAD_ERROR;
        snprintf(reason, sizeof(reason), "state file %s unreadable: %s", ck->cfg.state_path,
                 err.text[0] ? err.text : strerror(-rc));
        log_error("agent-checker: %s (%s), %s", reason, why,
                  ck->view->state ? "keeping previous state" : "answering the fallback");
    }
    if (res != AGENT_RELOAD_OK) {
        memcpy(ck->last_error, reason, sizeof(reason));
        update_ready(ck, reason);
    }
    ck->counters.reloads[res]++;
    return res;
}

static enum agent_match reader_lookup(struct agent_reader *r, const struct agent_request *req,
                                      int64_t now, struct agent_answer *out)
{
    struct agent_checker *ck = r->ck;
    reader_refresh(r);
    const struct agent_view *v = r->view;
    if (!v->state) {
        *out = ck->fallback;
        out->text = ck->no_state_text;
        AGENT_STAT_INC(r->counters.fallback_no_state);
        return AGENT_MATCH_NONE;
    }
    if (is_stale(ck, v, now)) {
        *out = ck->fallback;
        out->text = ck->stale_text;
        AGENT_STAT_INC(r->counters.fallback_stale);
        return AGENT_MATCH_NONE;
    }
    enum agent_match m = agent_state_lookup(v->state, req, now, out);
    if (m == AGENT_MATCH_NONE)
        *out = ck->fallback;
    return m;
}

enum agent_match agent_checker_lookup(struct agent_checker *ck, const struct agent_request *req,
                                      int64_t now, struct agent_answer *out)
{
    return reader_lookup(&ck->own, req, now, out);
}

int agent_reader_answer(void *ctx, const char *req, size_t len, enum agent_req_end end, char *out,
                        size_t cap)
{
    struct agent_reader *rd = ctx;
    struct agent_request r;
    struct agent_answer a;

    /* A fragment cut by the timeout is not trusted: "be/web-1" may be the
     * start of "be/web-10". Such requests get the default answer. */
    if (end == AGENT_REQ_TIMEOUT || end == AGENT_REQ_OVERSIZE ||
        agent_request_parse(req, len, &r) < 0) {
        if (len > 0 || end == AGENT_REQ_OVERSIZE)
            AGENT_STAT_INC(rd->counters.bad_requests);
        r.key[0] = r.address[0] = '\0';
    }
    enum agent_match m = reader_lookup(rd, &r, wall_now(), &a);
    AGENT_STAT_INC(rd->counters.matches[m]);
    AGENT_STAT_INC(rd->counters.replies[a.admin][a.health]);
    return agent_reply_format(&a, out, cap);
}

int agent_checker_answer(void *ctx, const char *req, size_t len, enum agent_req_end end, char *out,
                         size_t cap)
{
    struct agent_checker *ck = ctx;
    return agent_reader_answer(&ck->own, req, len, end, out, cap);
}

int agent_checker_reader_new(struct agent_checker *ck, struct agent_reader **out)
{
    struct agent_reader *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->ck = ck;
    r->view = ck->view; /* checker's thread: no reload can run meanwhile */
    view_ref(r->view);
    pthread_mutex_lock(&ck->lock);
    r->next = ck->readers;
    ck->readers = r;
    pthread_mutex_unlock(&ck->lock);
    *out = r;
    return 0;
}

static void counters_add(struct agent_checker_counters *to, const struct agent_checker_counters *c)
{
    for (int a = 0; a < AGENT_ADMIN_COUNT; a++)
        for (int h = 0; h < AGENT_HEALTH_COUNT; h++)
            to->replies[a][h] += __atomic_load_n(&c->replies[a][h], __ATOMIC_RELAXED);
    for (int m = 0; m < AGENT_MATCH_COUNT; m++)
        to->matches[m] += __atomic_load_n(&c->matches[m], __ATOMIC_RELAXED);
    to->bad_requests += __atomic_load_n(&c->bad_requests, __ATOMIC_RELAXED);
    to->fallback_no_state += __atomic_load_n(&c->fallback_no_state, __ATOMIC_RELAXED);
    to->fallback_stale += __atomic_load_n(&c->fallback_stale, __ATOMIC_RELAXED);
}

void agent_checker_reader_free(struct agent_reader *r)
{
    if (!r)
        return;
    struct agent_checker *ck = r->ck;
    pthread_mutex_lock(&ck->lock);
    for (struct agent_reader **p = &ck->readers; *p; p = &(*p)->next) {
        if (*p == r) {
            *p = r->next;
            break;
        }
    }
    counters_add(&ck->retired, &r->counters);
    pthread_mutex_unlock(&ck->lock);
    view_unref(r->view);
    free(r);
}

static void on_debounce(uv_timer_t *t)
{
    agent_checker_reload(t->data, "inotify");
}

static void on_fs_event(uv_fs_event_t *h, const char *filename, int events, int status)
{
    struct agent_checker *ck = h->data;

    if (status < 0) {
        log_warn("agent-checker: watching %s failed: %s, relying on the %llums poll", ck->dir,
                 uv_strerror(status), (unsigned long long)ck->cfg.poll_interval_ms);
        return;
    }
    if (filename && strcmp(filename, ck->base) != 0)
        return;
    uv_timer_start(&ck->debounce, on_debounce, DEBOUNCE_MS, 0);
}

static void on_sighup(uv_signal_t *s, int signum)
{
    agent_checker_reload(s->data, "sighup");
}

static bool same_file(const struct stat *a, const struct stat *b)
{
    return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

static void on_tick(uv_timer_t *t)
{
    struct agent_checker *ck = t->data;
    uint64_t now = uv_now(ck->loop);

    if (ck->cfg.poll_interval_ms && now - ck->last_poll >= ck->cfg.poll_interval_ms) {
        struct stat sb;
        bool exists = stat(ck->cfg.state_path, &sb) == 0;
        ck->last_poll = now;
        if (exists != ck->seen_valid || (exists && !same_file(&sb, &ck->seen)))
            agent_checker_reload(ck, "poll");
    }
    release_retired(ck);
    update_ready(ck, NULL);
}

int agent_checker_new(uv_loop_t *loop, const struct agent_checker_config *cfg,
                      agent_ready_fn ready_fn, void *ready_arg, struct agent_checker **out)
{
    struct agent_checker *ck = calloc(1, sizeof(*ck));
    char *d = NULL, *b = NULL;
    int rc = -ENOMEM;

    if (!ck)
        return -ENOMEM;
    ck->loop = loop;
    ck->cfg = *cfg;
    ck->view = view_new(NULL, 0);
    if (!ck->view) {
        free(ck);
        return -ENOMEM;
    }
    pthread_mutex_init(&ck->lock, NULL);
    ck->own.ck = ck;
    ck->own.view = ck->view;
    view_ref(ck->view);
    ck->ready_fn = ready_fn;
    ck->ready_arg = ready_arg;
    snprintf(ck->reason, sizeof(ck->reason), "state file %s not loaded yet", cfg->state_path);
    if (agent_reply_parse(cfg->fallback ? cfg->fallback : "ready up", &ck->fallback,
                          ck->fallback_text, sizeof(ck->fallback_text)) < 0) {
        log_error("agent-checker: fallback answer '%s' is not a valid agent reply "
                  "(words: ready|drain|maint up|down|stopped|fail N%% maxconn:N #text)",
                  cfg->fallback);
        rc = -EINVAL;
        goto fail;
    }
    /* The operator sees in HAProxy why the fallback was sent. */
    snprintf(ck->no_state_text, sizeof(ck->no_state_text), "drover: no state loaded%s%s",
             ck->fallback_text[0] ? " - " : "", ck->fallback_text);
    snprintf(ck->stale_text, sizeof(ck->stale_text), "drover: state is stale%s%s",
             ck->fallback_text[0] ? " - " : "", ck->fallback_text);
    if (!ck->fallback_text[0])
        snprintf(ck->fallback_text, sizeof(ck->fallback_text), "drover: no entry");

    d = strdup(cfg->state_path);
    b = strdup(cfg->state_path);
    if (!d || !b)
        goto fail;
    ck->dir = strdup(dirname(d));
    ck->base = strdup(basename(b));
    if (!ck->dir || !ck->base)
        goto fail;

    agent_checker_reload(ck, "start");
    update_ready(ck, NULL);

    if (loop) {
        uv_timer_init(loop, &ck->debounce);
        uv_timer_init(loop, &ck->tick);
        uv_signal_init(loop, &ck->sighup);
        uv_fs_event_init(loop, &ck->fsev);
        ck->debounce.data = ck->tick.data = ck->sighup.data = ck->fsev.data = ck;
        ck->watching = true;
        ck->last_poll = uv_now(loop);
        int w = uv_fs_event_start(&ck->fsev, on_fs_event, ck->dir, 0);
        if (w < 0)
            log_warn("agent-checker: cannot watch directory %s: %s, relying on the %llums poll "
                     "and SIGHUP",
                     ck->dir, uv_strerror(w), (unsigned long long)cfg->poll_interval_ms);
        uv_signal_start(&ck->sighup, on_sighup, SIGHUP);
        uv_timer_start(&ck->tick, on_tick, TICK_MS, TICK_MS);
    }
    free(d);
    free(b);
    *out = ck;
    return 0;
fail:
    free(d);
    free(b);
    free(ck->dir);
    free(ck->base);
    view_unref(ck->own.view);
    view_unref(ck->view);
    pthread_mutex_destroy(&ck->lock);
    free(ck);
    return rc;
}

const struct agent_checker_counters *agent_checker_counters(struct agent_checker *ck)
{
    struct agent_checker_counters *sum = &ck->sum;
    memset(sum, 0, sizeof(*sum));
    memcpy(sum->reloads, ck->counters.reloads, sizeof(sum->reloads));
    sum->parse_errors = ck->counters.parse_errors;
    pthread_mutex_lock(&ck->lock);
    counters_add(sum, &ck->own.counters);
    counters_add(sum, &ck->retired);
    for (const struct agent_reader *r = ck->readers; r; r = r->next)
        counters_add(sum, &r->counters);
    pthread_mutex_unlock(&ck->lock);
    return sum;
}

bool agent_checker_ready(const struct agent_checker *ck, const char **reason)
{
    if (reason)
        *reason = ck->reason;
    return ck->ready;
}

double agent_checker_state_age(const struct agent_checker *ck)
{
    if (!ck->view->state)
        return -1;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)(ts.tv_sec - ck->view->state_time) + ts.tv_nsec / 1e9;
}

size_t agent_checker_state_entries(const struct agent_checker *ck)
{
    return agent_state_count(ck->view->state);
}

void agent_checker_close(struct agent_checker *ck)
{
    if (!ck || !ck->watching)
        return;
    ck->watching = false;
    uv_close((uv_handle_t *)&ck->fsev, NULL);
    uv_close((uv_handle_t *)&ck->sighup, NULL);
    uv_close((uv_handle_t *)&ck->debounce, NULL);
    uv_close((uv_handle_t *)&ck->tick, NULL);
}

void agent_checker_free(struct agent_checker *ck)
{
    if (!ck)
        return;
    /* worker readers are freed before the checker: nobody is taking */
    release_retired(ck);
    view_unref(ck->own.view);
    view_unref(ck->view);
    pthread_mutex_destroy(&ck->lock);
    free(ck->dir);
    free(ck->base);
    free(ck);
}
