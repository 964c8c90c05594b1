/* SPDX-License-Identifier: Apache-2.0 */
/*
 * quiesce: coalescing of bursts of changes before acting on them, the
 * consul-template "wait" rule: act wait_min after the last change, but no
 * later than wait_max after the first change of the burst. The watcher
 * runs two: one with --wait-min/--wait-max for structural changes (render,
 * check, reload), one of a few milliseconds for runtime-API changes.
 *
 * The rule itself is pure (struct quiesce: feed it times in ms, ask for the
 * deadline) and unit-tested; struct quiesce_timer drives it with a libuv
 * timer and calls back once per burst.
 *
 * Leading edge (quiesce_set_leading, the runtime window only): a change
 * that finds the rule idle - nothing pending, the last action done
 * (not busy) and at least wait_min ago - is due at once; only what
 * arrives while an action is in flight or within wait_min of the last
 * one waits for the window. At a steady 100 changes/s each change came
 * 10 ms after the last and paid the whole 2 ms window for nothing to
 * coalesce. A burst still coalesces: its first change goes out alone, the
 * rest in one action at most wait_max later.
 */
#ifndef DROVER_WATCHER_QUIESCE_H
#define DROVER_WATCHER_QUIESCE_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct quiesce {
    int64_t wait_min_ms, wait_max_ms;
    bool pending;
    int64_t first_ms, last_ms; /* times of the first and last change of the burst */
    bool leading;              /* quiesce_set_leading */
    bool lead;                 /* this burst is due at its first change */
    bool acted;                /* acted_ms holds the last quiesce_done */
    int64_t acted_ms;
};

/* wait_max < wait_min is raised to wait_min. Trailing edge only. */
void quiesce_init(struct quiesce *q, int64_t wait_min_ms, int64_t wait_max_ms);
/* Turn the leading edge on or off (see the top of this file). */
void quiesce_set_leading(struct quiesce *q, bool on);
/* A change arrived at now_ms; busy: the action of an earlier burst is
 * still in flight (then it never leads). */
void quiesce_event_busy(struct quiesce *q, int64_t now_ms, bool busy);
/* quiesce_event_busy(q, now_ms, false). */
void quiesce_event(struct quiesce *q, int64_t now_ms);
/* When to act: min(last + wait_min, first + wait_max); -1 if nothing pending. */
int64_t quiesce_deadline(const struct quiesce *q);
/* True when something is pending and now_ms has reached the deadline. */
bool quiesce_due(const struct quiesce *q, int64_t now_ms);
/* True when the burst has been quiet for wait_min at now_ms (it ended),
 * false while changes still come (only wait_max would make it due). */
bool quiesce_quiet(const struct quiesce *q, int64_t now_ms);
/* The burst was handled: back to idle. */
void quiesce_reset(struct quiesce *q);
/* The burst was acted on at now_ms: back to idle, and the leading edge
 * waits until wait_min after now_ms. */
void quiesce_done(struct quiesce *q, int64_t now_ms);

struct quiesce_timer;
typedef void (*quiesce_fire_fn)(void *arg);

/* 0, -ENOMEM or a libuv error. */
int quiesce_timer_new(uv_loop_t *loop, int64_t wait_min_ms, int64_t wait_max_ms,
                      quiesce_fire_fn fire, void *arg, struct quiesce_timer **out);
/* Record a change now (uv_now) and (re)arm the timer; fire runs once per
 * burst, on the loop (a leading burst in the loop's next timer pass, so
 * changes that arrive in the same pass go together). */
void quiesce_timer_kick(struct quiesce_timer *t);
typedef bool (*quiesce_busy_fn)(void *arg);
/* Leading edge on; busy (may be NULL: never busy) says whether the
 * previous burst's action is still in flight. */
void quiesce_timer_set_leading(struct quiesce_timer *t, quiesce_busy_fn busy, void *arg);
bool quiesce_timer_pending(const struct quiesce_timer *t);
/* Whether the last burst fired because it went quiet (quiesce_quiet),
 * not because wait_max cut it: for work that can wait for the end of a
 * steady stream of changes. Meaningful inside fire. */
bool quiesce_timer_fired_quiet(const struct quiesce_timer *t);
/* Bursts fired so far. */
uint64_t quiesce_timer_fired(const struct quiesce_timer *t);
/* Stop and free once the loop closed the handle. NULL ok. */
void quiesce_timer_free(struct quiesce_timer *t);

#endif
