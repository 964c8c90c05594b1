/* SPDX-License-Identifier: Apache-2.0 */
/*
 * poll_deadline: wait for one file descriptor until a deadline, for the
 * few blocking exchanges drover makes (BIRD's control socket, HAProxy's
 * stats socket). A deadline that passed while this thread was not running
 * (stopped, starved, the loop busy) says nothing about the peer: what it
 * sent meanwhile is in the socket. So a passed deadline is only declared
 * after one last look that does not block.
 */
#ifndef DROVER_POLL_DEADLINE_H
#define DROVER_POLL_DEADLINE_H

#include <poll.h>
#include <stdint.h>

/* Poll p until deadline_ms (CLOCK_MONOTONIC milliseconds, as
 * log_monotonic_ms()). 1: p->revents is set; 0: nothing came by the
 * deadline, not even in the last look; negative errno on a poll error.
 * EINTR is retried. */
int poll_deadline(struct pollfd *p, uint64_t deadline_ms);

#endif
