/* SPDX-License-Identifier: Apache-2.0 */
/*
 * loop_lag: how long a libuv loop could not react. A check that times out
 * says "the peer did not answer in time" only if this process was able to
 * read the answer during that time; a process that was stopped (SIGSTOP),
 * starved of CPU or busy on the loop (a long table build) was not, and
 * must not blame the peer.
 *
 * The loop counts as stalled while it runs callbacks (anything outside
 * its wait for I/O) and while its wait for I/O lasted past the timeout the
 * loop asked for (the process was not running when it should have woken).
 * Measured with a prepare/check handle pair around the I/O wait. The
 * handles are unreferenced: they never keep a loop alive.
 */
#ifndef DROVER_LOOP_LAG_H
#define DROVER_LOOP_LAG_H

#include <stdint.h>
#include <uv.h>

struct loop_lag;

/* Start measuring loop. 0 or -ENOMEM. */
int loop_lag_new(uv_loop_t *loop, struct loop_lag **out);

/* Milliseconds the loop has been stalled since loop_lag_new, including the
 * stretch in progress when called from a callback. Monotonic: callers take
 * the difference between two readings. */
uint64_t loop_lag_stalled_ms(const struct loop_lag *lag);

/* Stop measuring; the memory is freed once the loop ran again (handle
 * close callbacks). NULL is a no-op. */
void loop_lag_free(struct loop_lag *lag);

#endif
