/* SPDX-License-Identifier: Apache-2.0 */
/*
 * agent_workers: the answering threads of drover-agent-checker.
 *
 * N answering threads, each with its own agent_server and agent_reader
 * (see agent_checker.h for how they share one state), blocking in accept4
 * on their own listeners, and one waiting thread with a libuv loop and an
 * agent_wait for the connections of all of them that must wait for their
 * line. With more than one answering thread every listen address is bound
 * once per thread with SO_REUSEPORT, so the kernel spreads the
 * connections over the threads' accept queues and no thread wakes for
 * another's connection; before that, the address is checked to be free
 * without SO_REUSEPORT, so a second daemon on the same port is still
 * refused instead of silently sharing the checks. With one thread the
 * listeners are plain. Port 0 picks one port for all.
 *
 * max_connections counts the connections of all threads (one shared
 * atomic counter).
 */
#ifndef DROVER_AGENT_WORKERS_H
#define DROVER_AGENT_WORKERS_H

#include <stddef.h>

#include "agent_checker.h"
#include "agent_server.h"

struct agent_workers;

/* Number of CPUs this process may run on (its affinity mask), >= 1. */
unsigned agent_workers_default_count(void);

/* Start n threads answering on every address of addrs[0..naddrs). On
 * error nothing keeps running, *err says which address and why, and a
 * negative errno is returned (-EINVAL: an address is not IPv4:port or
 * [IPv6]:port). Call on the checker's thread. */
int agent_workers_start(struct agent_checker *ck, const struct agent_server_config *cfg,
                        char *const *addrs, size_t naddrs, unsigned n, struct agent_workers **out,
                        char *err, size_t errlen);

/* Port of the i-th address (the one port 0 picked). */
int agent_workers_port(const struct agent_workers *w, size_t i);
/* Sum of every thread's server counters. */
void agent_workers_stats(const struct agent_workers *w, struct agent_server_stats *out);
unsigned agent_workers_count(const struct agent_workers *w);

/* Stop every thread (the answering threads wake from accept4; waiting
 * connections are closed), wait for them, free their servers, the wait
 * and the readers; then free. Before agent_checker_free. */
void agent_workers_stop(struct agent_workers *w);
void agent_workers_free(struct agent_workers *w);

#endif
