/* SPDX-License-Identifier: Apache-2.0 */
/*
 * quiesce: wait-min/wait-max coalescing (see quiesce.h).
 */
#include "quiesce.h"

#include <errno.h>
#include <stdlib.h>

void quiesce_init(struct quiesce *q, int64_t wait_min_ms, int64_t wait_max_ms)
{
    q->wait_min_ms = wait_min_ms < 0 ? 0 : wait_min_ms;
    q->wait_max_ms = wait_max_ms < q->wait_min_ms ? q->wait_min_ms : wait_max_ms;
    q->leading = q->acted = false;
    q->acted_ms = 0;
    quiesce_reset(q);
}

void quiesce_set_leading(struct quiesce *q, bool on)
{
    q->leading = on;
}

void quiesce_event_busy(struct quiesce *q, int64_t now_ms, bool busy)
{
    if (!q->pending) {
        q->pending = true;
        q->first_ms = now_ms;
        q->lead = q->leading && !busy && (!q->acted || now_ms >= q->acted_ms + q->wait_min_ms);
    }
    q->last_ms = now_ms;
}

void quiesce_event(struct quiesce *q, int64_t now_ms)
{
    quiesce_event_busy(q, now_ms, false);
}

int64_t quiesce_deadline(const struct quiesce *q)
{
    if (!q->pending)
        return -1;
    if (q->lead)
        return q->first_ms;
    int64_t a = q->last_ms + q->wait_min_ms, b = q->first_ms + q->wait_max_ms;
    return a < b ? a : b;
}

bool quiesce_due(const struct quiesce *q, int64_t now_ms)
{
    return q->pending && now_ms >= quiesce_deadline(q);
}

bool quiesce_quiet(const struct quiesce *q, int64_t now_ms)
{
    return q->pending && now_ms >= q->last_ms + q->wait_min_ms;
}

void quiesce_reset(struct quiesce *q)
{
    q->pending = q->lead = false;
    q->first_ms = q->last_ms = 0;
}

void quiesce_done(struct quiesce *q, int64_t now_ms)
{
    quiesce_reset(q);
    q->acted = true;
    q->acted_ms = now_ms;
}

struct quiesce_timer {
    uv_timer_t timer;
    struct quiesce q;
    quiesce_fire_fn fire;
    void *arg;
    quiesce_busy_fn busy; /* leading edge: the last action still in flight */
    void *busy_arg;
    uint64_t fired;
    bool fired_quiet; /* the last burst ended quiet (quiesce_quiet) */
};

static void on_timer(uv_timer_t *h)
{
    struct quiesce_timer *t = h->data;
    int64_t now = (int64_t)uv_now(h->loop);
    if (!quiesce_due(&t->q, now)) {
        int64_t d = quiesce_deadline(&t->q);
        if (d >= 0)
            uv_timer_start(&t->timer, on_timer, (uint64_t)(d - now), 0);
        return;
    }
    t->fired_quiet = quiesce_quiet(&t->q, now);
    quiesce_done(&t->q, now);
    t->fired++;
    t->fire(t->arg);
}

int quiesce_timer_new(uv_loop_t *loop, int64_t wait_min_ms, int64_t wait_max_ms,
                      quiesce_fire_fn fire, void *arg, struct quiesce_timer **out)
{
    struct quiesce_timer *t = calloc(1, sizeof(*t));
    int rc;
    if (!t)
        return -ENOMEM;
    if ((rc = uv_timer_init(loop, &t->timer)) < 0) {
        free(t);
        return rc;
    }
    t->timer.data = t;
    quiesce_init(&t->q, wait_min_ms, wait_max_ms);
    t->fire = fire;
    t->arg = arg;
    *out = t;
    return 0;
}

void quiesce_timer_kick(struct quiesce_timer *t)
{
    int64_t now = (int64_t)uv_now(t->timer.loop);
    quiesce_event_busy(&t->q, now, t->busy && t->busy(t->busy_arg));
    int64_t d = quiesce_deadline(&t->q);
    uv_timer_start(&t->timer, on_timer, (uint64_t)(d > now ? d - now : 0), 0);
}

void quiesce_timer_set_leading(struct quiesce_timer *t, quiesce_busy_fn busy, void *arg)
{
    quiesce_set_leading(&t->q, true);
    t->busy = busy;
    t->busy_arg = arg;
}

bool quiesce_timer_pending(const struct quiesce_timer *t)
{
    return t->q.pending;
}

bool quiesce_timer_fired_quiet(const struct quiesce_timer *t)
{
    return t->fired_quiet;
}

uint64_t quiesce_timer_fired(const struct quiesce_timer *t)
{
    return t->fired;
}

static void on_close(uv_handle_t *h)
{
    free(h->data);
}

void quiesce_timer_free(struct quiesce_timer *t)
{
    if (!t)
        return;
    uv_timer_stop(&t->timer);
    uv_close((uv_handle_t *)&t->timer, on_close);
}
