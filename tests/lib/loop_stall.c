/* SPDX-License-Identifier: Apache-2.0 */
/* loop_stall: see loop_stall.h. */
#include "loop_stall.h"

static void on_wake(uv_timer_t *t)
{
    (void)t; /* only makes the loop go round every millisecond */
}

static void on_check(uv_check_t *h)
{
    struct loop_stall *s = h->data;

    if (s->max && s->stalls >= s->max)
        return;
    if (s->fn(s->arg))
        s->stalls++;
}

void loop_stall_start(struct loop_stall *s, uv_loop_t *loop, bool (*fn)(void *arg), void *arg,
                      unsigned max)
{
    *s = (struct loop_stall){.fn = fn, .arg = arg, .max = max, .started = true};
    uv_check_init(loop, &s->check);
    uv_timer_init(loop, &s->wake);
    s->check.data = s;
    uv_check_start(&s->check, on_check);
    uv_timer_start(&s->wake, on_wake, 1, 1);
}

void loop_stall_close(struct loop_stall *s)
{
    if (!s->started)
        return;
    s->started = false;
    uv_close((uv_handle_t *)&s->check, NULL);
    uv_close((uv_handle_t *)&s->wake, NULL);
}
