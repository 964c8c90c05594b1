/* SPDX-License-Identifier: Apache-2.0 */
/*
 * agent_server: the libuv TCP side of the agent-checker.
 *
 * Owns the listening sockets (IPv4 and IPv6, any number), the accepted
 * connections and their deadline. HAProxy opens one connection per check,
 * sends its agent-send string and waits for one line; this module collects
 * the request until the first '\n', EOF/half-close, AGENT_REQUEST_MAX bytes
 * or the request timeout -- whichever comes first -- asks the answer
 * callback for the reply, writes it and closes. It never waits on a client
 * beyond the timeout and caps concurrent connections (extra ones are
 * accepted and closed at once, which HAProxy treats as "agent unreachable":
 * no state change). What to answer is not this module's business.
 *
 * Listening sockets are polled and accepted from directly: a connection
 * whose line is already there is answered (read, write, close) without
 * becoming a libuv handle; only one that must wait becomes a uv_tcp_t.
 *
 * All deadlines share one timer: connections are kept in accept order and
 * the timeout is the same for all, so the oldest is always the next to
 * expire.
 */
#ifndef DROVER_AGENT_SERVER_H
#define DROVER_AGENT_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

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

struct agent_server_config {
    uint64_t request_timeout_ms; /* answer a silent/partial client after this */
    size_t max_connections;      /* concurrent connections; more are refused */
    bool reuseport; /* SO_REUSEPORT listeners: several servers (threads) share a port */
    /* Servers sharing max_connections point at one counter (updated
     * atomically); NULL: this server's own count. */
    size_t *shared_active;
};

struct agent_server_stats {
    uint64_t accepted;
    uint64_t refused; /* over max_connections */
    uint64_t ends[AGENT_REQ_END_COUNT];
    uint64_t read_errors;  /* connection reset etc. before an answer */
    uint64_t write_errors; /* reply could not be written */
    uint64_t accept_errors;
    size_t active;
};

struct agent_server;

/* Allocate a server on loop. 0 or -ENOMEM; *out owned by the caller. */
int agent_server_new(uv_loop_t *loop, const struct agent_server_config *cfg, agent_answer_fn fn,
                     void *ctx, struct agent_server **out);

/* Listen on "IPv4:port", "[IPv6]:port" (port 0 = pick one). IPv6 sockets
 * are v6-only so "0.0.0.0:P" and "[::]:P" can both be given. 0 or a
 * negative errno (-EINVAL for a bad address, libuv's error otherwise). */
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

/* The server's own counters (its loop's thread). */
const struct agent_server_stats *agent_server_stats(const struct agent_server *srv);
/* Add the counters to *to; safe from another thread while the loop runs. */
void agent_server_stats_add(const struct agent_server *srv, struct agent_server_stats *to);

/* Stop listening and close every connection; the handles finish closing
 * as the loop runs. Call agent_server_free after the loop has run. */
void agent_server_close(struct agent_server *srv);
void agent_server_free(struct agent_server *srv);

/* Parse "1.2.3.4:80" / "[::1]:80" into a sockaddr; 0 or -EINVAL. */
int agent_server_parse_addr(const char *text, struct sockaddr_storage *out);

#endif
