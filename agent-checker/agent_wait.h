/* SPDX-License-Identifier: Apache-2.0 */
/*
 * agent_wait: the connections that must wait for their request line.
 *
 * The answering threads (agent_server) answer a check whose line has
 * arrived by the time it is accepted without any event loop. The rest --
 * no line yet, part of a line, a slow or silent client, an oversize
 * request whose extra input must be drained -- is handed over to an
 * agent_wait, which runs on a libuv loop of its own (one shared by all
 * answering threads). It collects the request until the first '\n',
 * EOF/half-close, AGENT_REQUEST_MAX bytes or the request timeout --
 * whichever comes first -- asks the answer callback for the reply,
 * writes it and closes. It never waits on a client beyond the timeout.
 *
 * All deadlines share one timer: connections are kept in adoption order
 * and the timeout is the same for all, so the oldest is always the next
 * to expire.
 */
#ifndef DROVER_AGENT_WAIT_H
#define DROVER_AGENT_WAIT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "agent_server.h"

struct agent_wait;

/* A waiting side on loop, answering through fn(ctx, ...) on that loop's
 * thread. 0 or a negative errno; *out owned by the caller. */
int agent_wait_new(uv_loop_t *loop, uint64_t request_timeout_ms, agent_answer_fn fn, void *ctx,
                   struct agent_wait **out);

/* Any thread: hand over the accepted, non-blocking socket fd with the len
 * (<= AGENT_REQUEST_MAX + 1) bytes already read from it. The fd is owned
 * by the wait from here on, also when this fails. *active counts the
 * connection (the caller incremented it) and is decremented when the
 * connection ends. 0, or -ENOMEM / -ESHUTDOWN: the fd was closed and
 * *active decremented. */
int agent_wait_handoff(struct agent_wait *w, int fd, const char *data, size_t len, size_t *active);

/* Add the wait's counters (ends, read/write errors, active) to *to; safe
 * from another thread while the loop runs. */
void agent_wait_stats_add(const struct agent_wait *w, struct agent_server_stats *to);

/* On the loop's thread: refuse further hand-overs, close every
 * connection; the handles finish closing as the loop runs. Call
 * agent_wait_free after the loop has run. */
void agent_wait_close(struct agent_wait *w);
void agent_wait_free(struct agent_wait *w);

#endif
