/* SPDX-License-Identifier: Apache-2.0 */
/*
 * loop_stall: block a libuv loop on purpose, as SIGSTOP, CPU starvation
 * or a long table build would, at the moment a test picks - typically
 * once the peer (a fake server on a thread of its own) has the request,
 * so that its answer arrives while the loop cannot read it and the
 * request's timeout is due when the loop goes on.
 *
 * fn runs after every I/O wait of the loop (a check handle) until it has
 * stalled max times (0: no limit); it blocks the loop itself (sleep_ms)
 * when the moment has come and says whether it did. A 1 ms timer makes
 * the loop go round, so fn runs soon after the peer got the request
 * however long the client's own timers are.
 */
#ifndef DROVER_TEST_LOOP_STALL_H
#define DROVER_TEST_LOOP_STALL_H

#include <stdbool.h>
#include <uv.h>

struct loop_stall {
    uv_check_t check;
    uv_timer_t wake;
    bool (*fn)(void *arg); /* block the loop now if due; true if it did */
    void *arg;
    unsigned max;    /* stalls at most; 0: no limit */
    unsigned stalls; /* stalls so far */
    bool started;
};

/* Start stalling loop through fn(arg), at most max times. s must stay
 * where it is until loop_stall_close and the loop's next run. */
void loop_stall_start(struct loop_stall *s, uv_loop_t *loop, bool (*fn)(void *arg), void *arg,
                      unsigned max);

/* Close both handles (their close completes on the loop's next run); a
 * no-op for s never started (zeroed). s->stalls stays readable. */
void loop_stall_close(struct loop_stall *s);

#endif
