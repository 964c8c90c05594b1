/* SPDX-License-Identifier: Apache-2.0 */
/*
 * agent_server: the answering threads' side of the agent-checker.
 *
 * Owns one answering thread's listening sockets (IPv4 and IPv6, any
 * number) and the accept loop that thread runs. HAProxy opens one
 * connection per check, sends its agent-send string and waits for one
 * line, so the line has usually arrived by the time the connection is
 * accepted: agent_server_serve blocks in accept4 (in poll() only when the
 * thread has more than one listener) and answers such a check with one
 * read, one write and a close -- the system calls of the most trivial
 * server, with no event loop, epoll registration or timer. Anything else
 * (no line yet, part of one, EOF handling, oversize input) goes to an
 * agent_wait (agent_wait.h), which waits on a libuv loop with the request
 * timeout. What to answer is not this module's business.
 *
 * It caps concurrent connections (extra ones are accepted and reset at
 * once, which HAProxy treats as "agent unreachable": no state change).
 */
#ifndef DROVER_AGENT_SERVER_H
#define DROVER_AGENT_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Why the request is considered complete. */
enum agent_req_end {
    AGENT_REQ_LINE = 0, /* a '\n' arrived: buf holds the line and the '\n' */
    AGENT_REQ_EOF,      /* client half-closed: buf holds all it sent */
    AGENT_REQ_TIMEOUT,  /* nothing complete in time: buf holds a fragment */
    AGENT_REQ_OVERSIZE, /* AGENT_REQUEST_MAX bytes without '\n' */
    AGENT_REQ_END_COUNT,
};

const char *agent_req_end_name(enum agent_req_end end);

/* Build the reply for the request req[0..len) (NUL-terminated after len
 * bytes; it may hold NUL bytes itself) into out (cap >= AGENT_REPLY_MAX).
 * Returns the reply length, or a negative value to close without reply. */
typedef int (*agent_answer_fn)(void *ctx, const char *req, size_t len, enum agent_req_end end,
                               char *out, size_t cap);

struct agent_wait;

struct agent_server_config {
    uint64_t request_timeout_ms; /* answer a silent/partial client after this (agent_wait) */
    size_t max_connections;      /* concurrent connections; more are refused */
    bool reuseport; /* SO_REUSEPORT listeners: several servers (threads) share a port */
    /* TCP_DEFER_ACCEPT seconds (0 = off): the kernel hands over a
     * connection once its first bytes are there (or after about this
     * long), so a check whose line follows its connect - HAProxy sends
     * agent-send once connected - wakes no thread before the line and
     * never takes the waiting path. */
    unsigned defer_accept_s;
    /* Servers sharing max_connections point at one counter (updated
     * atomically); NULL: this server's own count. */
    size_t *shared_active;
    /* Where connections that must wait for their line go (required for
     * agent_server_serve); not owned. */
    struct agent_wait *wait;
};

/* A counter written by one thread and read by the metrics collector on
 * another: a relaxed atomic load and store, a plain add on x86 (no lock on
 * the hot path). */
#define AGENT_STAT_ADD(field, n)                                                                   \
    __atomic_store_n(&(field), __atomic_load_n(&(field), __ATOMIC_RELAXED) + (n), __ATOMIC_RELAXED)
#define AGENT_STAT_INC(field) AGENT_STAT_ADD(field, 1)

struct agent_server_stats {
    uint64_t accepted;
    uint64_t refused; /* over max_connections */
    uint64_t ends[AGENT_REQ_END_COUNT];
    uint64_t read_errors;  /* connection reset etc. before an answer */
    uint64_t write_errors; /* reply could not be written */
    uint64_t accept_errors;
    size_t active; /* connections held by an agent_wait (answered-at-once ones are not) */
};

struct agent_server;

/* Allocate a server answering through fn(ctx, ...) on the thread that
 * runs agent_server_serve. 0 or -ENOMEM; *out owned by the caller. */
int agent_server_new(const struct agent_server_config *cfg, agent_answer_fn fn, void *ctx,
                     struct agent_server **out);

/* Listen on "IPv4:port", "[IPv6]:port" (port 0 = pick one). IPv6 sockets
 * are v6-only so "0.0.0.0:P" and "[::]:P" can both be given. 0 or a
 * negative errno (-EINVAL for a bad address, -E2BIG when the server has
 * all the listeners it can hold: agent_server_listen_sa checks that, else
 * the socket call's). */
int agent_server_listen(struct agent_server *srv, const char *addr);

/* Listen on ss. With cfg.reuseport: join=false first checks that nothing
 * listens on the port yet (-EADDRINUSE otherwise; port 0 picks a free
 * one), join=true adds this server to the group already bound there (the
 * other threads of the same daemon). */
int agent_server_listen_sa(struct agent_server *srv, const struct sockaddr_storage *ss, bool join);

/* Port of the i-th listener (for port 0); 0 if there is none. */
int agent_server_port(const struct agent_server *srv, size_t i);
/* Bound address of the i-th listener; 0 or -ENOENT. */
int agent_server_sockname(const struct agent_server *srv, size_t i, struct sockaddr_storage *out);

/* Accept and answer on the calling thread until agent_server_stop; then
 * return 0. Connections that must wait go to cfg.wait. -EINVAL without
 * listeners or a wait. */
int agent_server_serve(struct agent_server *srv);

/* Any thread: make agent_server_serve return (now, or at once when it is
 * called later) and stop accepting. A thread blocked in accept4 or poll
 * is woken by shutdown(2) of the listening sockets; connections still in
 * their accept queues are reset, which HAProxy counts as an unreachable
 * agent (no state change). */
void agent_server_stop(struct agent_server *srv);

/* Add the counters *from (written by one other thread with relaxed
 * atomic stores) to *to. */
void agent_server_stats_sum(const struct agent_server_stats *from, struct agent_server_stats *to);

/* Add the server's counters to *to; safe from another thread while it
 * serves. */
void agent_server_stats_add(const struct agent_server *srv, struct agent_server_stats *to);

/* Close the listeners and free; after agent_server_serve has returned
 * (or was never called). */
void agent_server_free(struct agent_server *srv);

/* Parse "1.2.3.4:80" / "[::1]:80" into a sockaddr; 0 or -EINVAL. */
int agent_server_parse_addr(const char *text, struct sockaddr_storage *out);

#endif
