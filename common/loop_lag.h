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
 * Measured with a prepare/check handle pair around the I/O wait (and a
 * timer that keeps a wait whose timeout libuv cannot tell from blocking).
 * The handles are unreferenced: they never keep a loop alive.
 *
 * One measurement serves a loop: whoever owns the loop makes it and hands
 * it to every module on that loop that judges timeouts (the Consul client,
 * the director's health checks, the Kubernetes client and the HAProxy
 * runtime clients take it in their options or haproxy_runtime_new), each
 * keeping a reference. loop_lag_own_fault() is the one rule they judge by.
 */
#ifndef DROVER_LOOP_LAG_H
#define DROVER_LOOP_LAG_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct loop_lag;

/* Start measuring loop; the caller holds the one reference. 0 or -ENOMEM. */
int loop_lag_new(uv_loop_t *loop, struct loop_lag **out);

/* One more reference to lag (a module that keeps it); returns lag. */
struct loop_lag *loop_lag_ref(struct loop_lag *lag);

/* Milliseconds the loop has been stalled since loop_lag_new, including the
 * stretch in progress when called from a callback. Monotonic: callers take
 * the difference between two readings. */
uint64_t loop_lag_stalled_ms(const struct loop_lag *lag);

/* Whether a wait of timeout_ms that ran out while this process could not
 * act for stalled_ms (the difference of two loop_lag_stalled_ms readings)
 * is this process's own doing rather than the peer's: the stall lasted
 * half the timeout, or a second, whichever is less. Half the timeout: the
 * peer then had less than half the time it was given. A second at most:
 * a blocking Consul read waits minutes, and a second's stall is already
 * long enough for an answer to arrive unseen (libcurl checks its timeout
 * before it reads the socket). Callers do the cheap thing on true: send a
 * read again, or leave a health check unjudged until the next one. */
bool loop_lag_own_fault(uint64_t stalled_ms, uint64_t timeout_ms);

/* Drop one reference; the last one stops measuring, the memory freed once
 * the loop ran again (handle close callbacks). NULL is a no-op. */
void loop_lag_unref(struct loop_lag *lag);

#endif
