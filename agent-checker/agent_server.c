/* SPDX-License-Identifier: Apache-2.0 */
#include "agent_server.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/tcp.h>
#include <unistd.h>
#include <uv.h>

#include "agent_reply.h"
#include "agent_wait.h"
#include "log.h"

#define MAX_LISTENERS  16
#define LISTEN_BACKLOG 4096
/* Out of file descriptors (or kernel memory): the connection stays in the
 * backlog, so accepting again at once would spin. */
#define ACCEPT_PAUSE_MS 100

struct agent_server {
    struct agent_server_config cfg;
    agent_answer_fn fn;
    void *ctx;
    int listeners[MAX_LISTENERS];
    size_t nlisteners;
    size_t own_active; /* max_connections count without a shared one */
    int stopping;      /* atomic: agent_server_stop was called */
    bool paused;       /* the last accept failed for lack of resources */
    char scratch[AGENT_REQUEST_MAX + 2];
    char reply[AGENT_REPLY_MAX];
    struct agent_server_stats stats;
};

static const char *const end_names[AGENT_REQ_END_COUNT] = {"line", "eof", "timeout", "oversize"};

const char *agent_req_end_name(enum agent_req_end end)
{
    return (unsigned)end < AGENT_REQ_END_COUNT ? end_names[end] : "?";
}

int agent_server_parse_addr(const char *text, struct sockaddr_storage *out)
{
    char host[64];
    const char *colon, *port_s;
    size_t hl;

    memset(out, 0, sizeof(*out));
    if (!text)
        return -EINVAL;
    if (text[0] == '[') {
        const char *rb = strchr(text, ']');
        if (!rb || rb[1] != ':')
            return -EINVAL;
        hl = (size_t)(rb - text - 1);
        if (hl >= sizeof(host))
            return -EINVAL;
        memcpy(host, text + 1, hl);
        port_s = rb + 2;
    } else {
        colon = strrchr(text, ':');
        if (!colon || strchr(text, ':') != colon)
            return -EINVAL;
        hl = (size_t)(colon - text);
        if (hl >= sizeof(host))
            return -EINVAL;
        memcpy(host, text, hl);
        port_s = colon + 1;
    }
    host[hl] = '\0';
    char *end;
    long port = strtol(port_s, &end, 10);
    if (!*port_s || *end || port < 0 || port > 65535)
        return -EINVAL;
    if (text[0] == '[') {
        if (uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)out) != 0)
            return -EINVAL;
    } else if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)out) != 0) {
        return -EINVAL;
    }
    return 0;
}

/* Over the connection cap: a reset, so HAProxy fails this check at once
 * (leaving it in the backlog would only make it wait for its timeout). */
static void refuse(struct agent_server *srv, int fd)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    AGENT_STAT_INC(srv->stats.refused);
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);
}

/* Answer the complete request in srv->scratch[0..len) and close. A few
 * hundred bytes into the empty send buffer of a new connection: written
 * whole or the connection is broken. */
static void answer_now(struct agent_server *srv, int fd, size_t len, enum agent_req_end end)
{
    AGENT_STAT_INC(srv->stats.ends[end]);
    srv->scratch[len] = '\0'; /* callers may treat it as a string */
    int r = srv->fn(srv->ctx, srv->scratch, len, end, srv->reply, sizeof(srv->reply));
    if (r > 0 && send(fd, srv->reply, (size_t)r, MSG_NOSIGNAL | MSG_DONTWAIT) != r)
        AGENT_STAT_INC(srv->stats.write_errors);
    close(fd);
}

/* One accepted connection. HAProxy sends its line right after connecting,
 * so it has usually arrived by now: then it is answered from one read, one
 * write and a close. Otherwise (nothing yet, part of a line, more than
 * AGENT_REQUEST_MAX bytes to drain) agent_wait takes it over. */
static void on_accepted(struct agent_server *srv, int fd)
{
    size_t *active = srv->cfg.shared_active;
    if (__atomic_add_fetch(active, 1, __ATOMIC_RELAXED) > srv->cfg.max_connections) {
        __atomic_sub_fetch(active, 1, __ATOMIC_RELAXED);
        refuse(srv, fd);
        return;
    }
    AGENT_STAT_INC(srv->stats.accepted);
    ssize_t n = recv(fd, srv->scratch, AGENT_REQUEST_MAX + 1, MSG_DONTWAIT);
    if (n > 0 && memchr(srv->scratch, '\n', (size_t)n)) {
        answer_now(srv, fd, (size_t)n, AGENT_REQ_LINE);
    } else if (n == 0) {
        answer_now(srv, fd, 0, AGENT_REQ_EOF);
    } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        AGENT_STAT_INC(srv->stats.read_errors);
        close(fd);
    } else {
        /* the wait owns fd and the count from here, also on failure */
        if (agent_wait_handoff(srv->cfg.wait, fd, srv->scratch, n > 0 ? (size_t)n : 0, active) < 0)
            AGENT_STAT_INC(srv->stats.accept_errors);
        return;
    }
    __atomic_sub_fetch(active, 1, __ATOMIC_RELAXED);
}

static bool stopping(const struct agent_server *srv)
{
    return __atomic_load_n(&srv->stopping, __ATOMIC_ACQUIRE);
}

/* accept4 failed with err on a listener. */
static void accept_failed(struct agent_server *srv, int err)
{
    switch (err) {
    case EAGAIN:       /* poll said readable, another accept was faster (or the peer reset) */
    case EINTR:        /* a signal */
    case ECONNABORTED: /* reset while queued */
    case EPROTO:
    case EPERM: /* a firewall rule */
        return;
    default:
        break;
    }
    if (stopping(srv)) /* EINVAL from a listener shut down by agent_server_stop */
        return;
    /* EMFILE, ENFILE, ENOBUFS, ENOMEM...: the connection stays in the
     * backlog and the socket stays readable; pause instead of spinning. */
    AGENT_STAT_INC(srv->stats.accept_errors);
    if (!srv->paused)
        log_warn("agent-checker: accept failed: %s, pausing accepts for %d ms", strerror(err),
                 ACCEPT_PAUSE_MS);
    srv->paused = true;
    poll(NULL, 0, ACCEPT_PAUSE_MS);
}

static void accept_one(struct agent_server *srv, int lfd)
{
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
        accept_failed(srv, errno);
        return;
    }
    srv->paused = false;
    on_accepted(srv, fd);
}

/* One listener: sleep in accept4 itself, like the most trivial server.
 * Several: sleep in poll() and accept one connection from each readable
 * listener per wake-up (the listeners are non-blocking then). */
int agent_server_serve(struct agent_server *srv)
{
    struct pollfd pfds[MAX_LISTENERS];
    size_t n = srv->nlisteners;

    if (n == 0 || !srv->cfg.wait)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        pfds[i] = (struct pollfd){.fd = srv->listeners[i], .events = POLLIN};
        int fl = fcntl(srv->listeners[i], F_GETFL);
        if (fl >= 0)
            fcntl(srv->listeners[i], F_SETFL, n == 1 ? fl & ~O_NONBLOCK : fl | O_NONBLOCK);
    }
    while (!stopping(srv)) {
        if (n == 1) {
            accept_one(srv, srv->listeners[0]);
            continue;
        }
        if (poll(pfds, n, -1) < 0) {
            if (errno != EINTR)
                accept_failed(srv, errno);
            continue;
        }
        for (size_t i = 0; i < n && !stopping(srv); i++)
            if (pfds[i].revents)
                accept_one(srv, pfds[i].fd);
    }
    return 0;
}

void agent_server_stop(struct agent_server *srv)
{
    if (!srv)
        return;
    __atomic_store_n(&srv->stopping, 1, __ATOMIC_RELEASE);
    /* A listening socket that is shut down leaves the listening state:
     * accept4 blocked on it returns EINVAL and poll reports POLLHUP, so
     * the thread wakes without a self-pipe. */
    for (size_t i = 0; i < srv->nlisteners; i++)
        shutdown(srv->listeners[i], SHUT_RDWR);
}

int agent_server_new(const struct agent_server_config *cfg, agent_answer_fn fn, void *ctx,
                     struct agent_server **out)
{
    struct agent_server *srv = calloc(1, sizeof(*srv));
    if (!srv)
        return -ENOMEM;
    srv->cfg = *cfg;
    if (srv->cfg.max_connections == 0)
        srv->cfg.max_connections = 1;
    if (!srv->cfg.shared_active)
        srv->cfg.shared_active = &srv->own_active;
    srv->fn = fn;
    srv->ctx = ctx;
    *out = srv;
    return 0;
}

/* Whether ss can be bound by a socket without SO_REUSEPORT: with it, a
 * second daemon (or anything else) on the port would otherwise silently
 * share the checks. 0 or the bind error. */
static int probe_free(const struct sockaddr_storage *ss)
{
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1, rc = 0;
    if (fd < 0)
        return -errno;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (ss->ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    socklen_t len =
        ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    if (bind(fd, (const struct sockaddr *)ss, len) < 0)
        rc = -errno;
    close(fd);
    return rc;
}

/* A bound, listening, non-blocking socket; SO_REUSEPORT set before bind
 * when asked, TCP_DEFER_ACCEPT when defer_s > 0. */
static int listen_socket(const struct sockaddr_storage *ss, bool reuseport, unsigned defer_s,
                         int *out)
{
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), one = 1;
    int defer = (int)defer_s;
    if (fd < 0)
        return -errno;
    socklen_t len =
        ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) ||
        (ss->ss_family == AF_INET6 &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
        (defer > 0 && setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer, sizeof(defer)) < 0) ||
        bind(fd, (const struct sockaddr *)ss, len) < 0 || listen(fd, LISTEN_BACKLOG) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    *out = fd;
    return 0;
}

int agent_server_listen_sa(struct agent_server *srv, const struct sockaddr_storage *ss, bool join)
{
    int rc = 0, fd = -1;

    if (srv->nlisteners == MAX_LISTENERS)
        return -E2BIG;
    if (srv->cfg.reuseport && !join) {
        bool any_port = ss->ss_family == AF_INET6
                            ? ((const struct sockaddr_in6 *)ss)->sin6_port == 0
                            : ((const struct sockaddr_in *)ss)->sin_port == 0;
        if (!any_port)
            rc = probe_free(ss);
    }
    if (rc == 0)
        rc = listen_socket(ss, srv->cfg.reuseport, srv->cfg.defer_accept_s, &fd);
    if (rc < 0)
        return rc;
    srv->listeners[srv->nlisteners++] = fd;
    return 0;
}

int agent_server_listen(struct agent_server *srv, const char *addr)
{
    struct sockaddr_storage ss;

    if (agent_server_parse_addr(addr, &ss) < 0)
        return -EINVAL;
    return agent_server_listen_sa(srv, &ss, false);
}

int agent_server_sockname(const struct agent_server *srv, size_t i, struct sockaddr_storage *out)
{
    socklen_t len = sizeof(*out);
    if (i >= srv->nlisteners || getsockname(srv->listeners[i], (struct sockaddr *)out, &len) != 0)
        return -ENOENT;
    return 0;
}

int agent_server_port(const struct agent_server *srv, size_t i)
{
    struct sockaddr_storage ss;

    if (agent_server_sockname(srv, i, &ss) < 0)
        return 0;
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

void agent_server_stats_sum(const struct agent_server_stats *from, struct agent_server_stats *to)
{
    to->accepted += __atomic_load_n(&from->accepted, __ATOMIC_RELAXED);
    to->refused += __atomic_load_n(&from->refused, __ATOMIC_RELAXED);
    for (int e = 0; e < AGENT_REQ_END_COUNT; e++)
        to->ends[e] += __atomic_load_n(&from->ends[e], __ATOMIC_RELAXED);
    to->read_errors += __atomic_load_n(&from->read_errors, __ATOMIC_RELAXED);
    to->write_errors += __atomic_load_n(&from->write_errors, __ATOMIC_RELAXED);
    to->accept_errors += __atomic_load_n(&from->accept_errors, __ATOMIC_RELAXED);
    to->active += __atomic_load_n(&from->active, __ATOMIC_RELAXED);
}

void agent_server_stats_add(const struct agent_server *srv, struct agent_server_stats *to)
{
    agent_server_stats_sum(&srv->stats, to);
}

void agent_server_free(struct agent_server *srv)
{
    if (!srv)
        return;
    for (size_t i = 0; i < srv->nlisteners; i++)
        close(srv->listeners[i]);
    free(srv);
}
