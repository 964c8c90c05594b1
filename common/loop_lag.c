/* SPDX-License-Identifier: Apache-2.0 */
/*
 * loop_lag: stall accounting around the loop's I/O wait. See loop_lag.h.
 *
 * One loop iteration is: timers, pending, idle, prepare, I/O wait (plus
 * the I/O callbacks it runs), check, closing. Between check and the next
 * prepare, and for the I/O callbacks inside the wait, the loop is busy:
 * all of that counts as stalled. Of the time blocked in the kernel only
 * what ran past the wait's own timeout counts. libuv updates the loop's
 * clock (uv_now) right after the kernel returns, before it runs the I/O
 * callbacks, which tells the two parts of the wait apart. (libuv's
 * idle-time metric would too, but 1.44 misses the first wait after it is
 * switched on.)
 */
#include "loop_lag.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#define NS_PER_MS 1000000ull

struct loop_lag {
    uv_loop_t *loop;
    uv_prepare_t prepare;
    uv_check_t check;
    uv_timer_t no_block; /* makes a wait of unknown timeout not block */
    unsigned open_handles;
    unsigned refs;
    bool in_wait;         /* between prepare and check */
    uint64_t prepared_ns; /* uv_hrtime() at prepare */
    int64_t wait_timeout; /* ms the wait may block, -1: unbounded */
    uint64_t checked_ns;  /* uv_hrtime() at the last check, 0 before */
    uint64_t stalled_ns;  /* completed stretches */
};

static uint64_t sub0(uint64_t a, uint64_t b)
{
    return a > b ? a - b : 0;
}

/* Stall inside the current I/O wait up to now_ns: the callbacks it ran and
 * the blocked time past the timeout. */
static uint64_t wait_stall_ns(const struct loop_lag *lag, uint64_t now_ns)
{
    uint64_t woke_ns = uv_now(lag->loop) * NS_PER_MS; /* set when the kernel returned */
    uint64_t blocked = sub0(woke_ns, lag->prepared_ns);
    /* uv_now is whole milliseconds: the first one of the callbacks' time
     * is rounding, not a stall */
    uint64_t busy =
        sub0(sub0(now_ns, woke_ns > lag->prepared_ns ? woke_ns : lag->prepared_ns), NS_PER_MS);
    uint64_t overrun =
        lag->wait_timeout < 0 ? 0 : sub0(blocked, (uint64_t)lag->wait_timeout * NS_PER_MS);
    return busy + overrun;
}

static void on_no_block(uv_timer_t *t)
{
    (void)t; /* its being due was all it was for */
}

static void on_prepare(uv_prepare_t *p)
{
    struct loop_lag *lag = p->data;
    uint64_t now = uv_hrtime();

    if (lag->checked_ns)
        lag->stalled_ns += sub0(now, lag->checked_ns);
    lag->prepared_ns = now;
    /* uv_backend_timeout() says 0 while watchers wait to be registered
     * with the kernel (libuv 1.44: a socket that just started connecting),
     * although uv_run then blocks until the next timer, for as long as
     * this process is stopped. So a 0 is made true: a timer due now keeps
     * this wait from blocking, and the next wait, the watchers
     * registered, has a timeout that is known again. Taking 0 for "no
     * bound" instead missed a SIGSTOP during such a wait entirely. */
    int timeout = uv_backend_timeout(lag->loop);
    if (timeout == 0)
        uv_timer_start(&lag->no_block, on_no_block, 0, 0);
    lag->wait_timeout = timeout;
    lag->in_wait = true;
}

static void on_check(uv_check_t *c)
{
    struct loop_lag *lag = c->data;
    uint64_t now = uv_hrtime();

    if (lag->in_wait)
        lag->stalled_ns += wait_stall_ns(lag, now);
    lag->in_wait = false;
    lag->checked_ns = now;
}

uint64_t loop_lag_stalled_ms(const struct loop_lag *lag)
{
    uint64_t now = uv_hrtime(), ns = lag->stalled_ns;

    if (lag->in_wait)
        ns += wait_stall_ns(lag, now);
    else if (lag->checked_ns)
        ns += sub0(now, lag->checked_ns);
    return ns / NS_PER_MS;
}

int loop_lag_new(uv_loop_t *loop, struct loop_lag **out)
{
    struct loop_lag *lag = calloc(1, sizeof(*lag));

    if (!lag)
        return -ENOMEM;
    lag->loop = loop;
    uv_prepare_init(loop, &lag->prepare);
    uv_check_init(loop, &lag->check);
    uv_timer_init(loop, &lag->no_block);
    lag->prepare.data = lag->check.data = lag->no_block.data = lag;
    lag->open_handles = 3;
    lag->refs = 1;
    uv_prepare_start(&lag->prepare, on_prepare);
    uv_check_start(&lag->check, on_check);
    uv_unref((uv_handle_t *)&lag->prepare);
    uv_unref((uv_handle_t *)&lag->check);
    uv_unref((uv_handle_t *)&lag->no_block);
    *out = lag;
    return 0;
}

static void handle_closed(uv_handle_t *h)
{
    struct loop_lag *lag = h->data;

    if (--lag->open_handles == 0)
        free(lag);
}

struct loop_lag *loop_lag_ref(struct loop_lag *lag)
{
    lag->refs++;
    return lag;
}

bool loop_lag_own_fault(uint64_t stalled_ms, uint64_t timeout_ms)
{
    uint64_t enough = timeout_ms / 2 < 1000 ? timeout_ms / 2 : 1000;

    return stalled_ms >= enough;
}

void loop_lag_unref(struct loop_lag *lag)
{
    if (!lag || --lag->refs > 0)
        return;
    uv_close((uv_handle_t *)&lag->prepare, handle_closed);
    uv_close((uv_handle_t *)&lag->check, handle_closed);
    uv_close((uv_handle_t *)&lag->no_block, handle_closed);
}
