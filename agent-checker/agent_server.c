/* SPDX-License-Identifier: Apache-2.0 */
#include "agent_server.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent_reply.h"
#include "log.h"

#define MAX_LISTENERS  16
#define LISTEN_BACKLOG 4096
/* Closed connections kept for reuse: malloc/free of ~1 KiB per check
 * showed up in profiles at tens of thousands of checks per second. */
#define FREE_CONNS_MAX 1024

struct conn {
    uv_tcp_t tcp;
    struct agent_server *srv;
    struct conn *prev, *next; /* waiting list, accept order */
    uint64_t deadline;
    uv_write_t wreq;
    uv_shutdown_t sreq;
    bool waiting;
    bool linger;    /* oversize request: drain it after the reply */
    bool lingering; /* reply sent, discarding input until EOF */
    size_t len;
    char buf[AGENT_REQUEST_MAX + 2];
    char reply[AGENT_REPLY_MAX];
};

/* A listening socket polled for readability; connections are accepted
 * with accept4 directly so that one whose line is already there is
 * answered and closed without ever becoming a libuv handle. */
struct listener {
    uv_poll_t poll;
    int fd;
    struct agent_server *srv;
    bool drain;           /* accept until EAGAIN (connections are queueing) */
    uint64_t returned_ns; /* uv_hrtime() when on_listener last returned */
};

struct agent_server {
    uv_loop_t *loop;
    struct agent_server_config cfg;
    agent_answer_fn fn;
    void *ctx;
    struct listener listeners[MAX_LISTENERS];
    size_t nlisteners;
    uv_timer_t timer;
    uv_timer_t accept_pause; /* out of file descriptors: stop accepting a moment */
    bool paused;
    char scratch[AGENT_REQUEST_MAX + 2]; /* request of a connection answered at once */
    char reply[AGENT_REPLY_MAX];
    struct conn *head, *tail;
    struct conn *free_conns; /* linked through ->next */
    size_t nfree;
    struct agent_server_stats stats;
    bool closing;
};

/* Stats are written on the server's loop and read by the metrics
 * collector on another thread: relaxed atomics (a plain add on x86). */
#define STAT_ADD(field, n)                                                                         \
    __atomic_store_n(&(field), __atomic_load_n(&(field), __ATOMIC_RELAXED) + (n), __ATOMIC_RELAXED)
#define STAT_INC(field) STAT_ADD(field, 1)

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

static void list_remove(struct agent_server *srv, struct conn *c)
{
    if (!c->waiting)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        srv->tail = c->prev;
    c->prev = c->next = NULL;
    c->waiting = false;
}

static void on_conn_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    struct agent_server *srv = c->srv;
    STAT_ADD(srv->stats.active, (size_t)-1);
    if (srv->cfg.shared_active)
        __atomic_sub_fetch(srv->cfg.shared_active, 1, __ATOMIC_RELAXED);
    if (srv->nfree < FREE_CONNS_MAX && !srv->closing) {
        c->next = srv->free_conns;
        srv->free_conns = c;
        srv->nfree++;
        return;
    }
    free(c);
}

static void conn_close(struct conn *c)
{
    list_remove(c->srv, c);
    if (!uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static void on_timer(uv_timer_t *t);

static void list_append(struct agent_server *srv, struct conn *c)
{
    c->deadline = uv_now(srv->loop) + srv->cfg.request_timeout_ms;
    c->waiting = true;
    c->next = NULL;
    c->prev = srv->tail;
    if (srv->tail)
        srv->tail->next = c;
    else
        srv->head = c;
    srv->tail = c;
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)req;
    (void)status; /* the close that follows reports nothing either */
}

static void on_drain_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct conn *c = h->data;
    buf->base = c->buf;
    buf->len = sizeof(c->buf);
}

/* Discard what an oversize client still sends until it closes (or the
 * timeout/budget runs out), so our close is a FIN, not a reset that could
 * destroy the reply before the client read it. */
static void on_drain_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    if (nread < 0) {
        conn_close(c);
        return;
    }
    c->len += (size_t)nread;
    if (c->len > 64 * AGENT_REQUEST_MAX)
        conn_close(c);
}

/* The reply is out: close, or for an oversize request linger first. */
static void conn_finish(struct conn *c)
{
    struct agent_server *srv = c->srv;
    if (!c->linger || srv->closing) {
        conn_close(c);
        return;
    }
    c->lingering = true;
    c->len = 0;
    if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, on_shutdown) < 0 ||
        uv_read_start((uv_stream_t *)&c->tcp, on_drain_alloc, on_drain_read) < 0) {
        conn_close(c);
        return;
    }
    list_append(srv, c);
    if (!uv_is_active((uv_handle_t *)&srv->timer))
        uv_timer_start(&srv->timer, on_timer, srv->cfg.request_timeout_ms, 0);
}

static void on_written(uv_write_t *req, int status)
{
    struct conn *c = req->data;
    if (status < 0) {
        STAT_INC(c->srv->stats.write_errors);
        conn_close(c);
        return;
    }
    conn_finish(c);
}

static void conn_answer(struct conn *c, enum agent_req_end end)
{
    struct agent_server *srv = c->srv;

    list_remove(srv, c);
    uv_read_stop((uv_stream_t *)&c->tcp);
    STAT_INC(srv->stats.ends[end]);
    c->linger = end == AGENT_REQ_OVERSIZE;
    c->buf[c->len] = '\0'; /* callers may treat it as a string */
    int n = srv->fn(srv->ctx, c->buf, c->len, end, c->reply, sizeof(c->reply));
    if (n <= 0) {
        conn_close(c);
        return;
    }
    /* The reply is far below the socket buffer: it is written at once in
     * practice and the queued write is only the fallback. */
    int w =
        uv_try_write((uv_stream_t *)&c->tcp, &(uv_buf_t){.base = c->reply, .len = (size_t)n}, 1);
    if (w == n) {
        conn_finish(c);
        return;
    }
    if (w < 0 && w != UV_EAGAIN) {
        STAT_INC(srv->stats.write_errors);
        conn_close(c);
        return;
    }
    size_t done = w > 0 ? (size_t)w : 0;
    uv_buf_t rest = {.base = c->reply + done, .len = (size_t)n - done};
    c->wreq.data = c;
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &rest, 1, on_written) < 0) {
        STAT_INC(srv->stats.write_errors);
        conn_close(c);
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct conn *c = h->data;
    /* One byte beyond the limit so an oversize request is detected. */
    buf->base = c->buf + c->len;
    buf->len = AGENT_REQUEST_MAX + 1 - c->len;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = s->data;

    if (nread == UV_EOF) {
        conn_answer(c, AGENT_REQ_EOF);
        return;
    }
    if (nread < 0) {
        STAT_INC(c->srv->stats.read_errors);
        conn_close(c);
        return;
    }
    if (nread == 0)
        return;
    char *fresh = c->buf + c->len;
    c->len += (size_t)nread;
    if (memchr(fresh, '\n', (size_t)nread))
        conn_answer(c, AGENT_REQ_LINE);
    else if (c->len > AGENT_REQUEST_MAX)
        conn_answer(c, AGENT_REQ_OVERSIZE);
}

/* Read what the socket holds now, without waiting. Returns true when the
 * request is complete and has been answered (or the connection closed). */
static bool conn_read_now(struct conn *c)
{
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0)
        return false;
    ssize_t n = recv(fd, c->buf + c->len, AGENT_REQUEST_MAX + 1 - c->len, MSG_DONTWAIT);
    if (n > 0) {
        char *fresh = c->buf + c->len;
        c->len += (size_t)n;
        if (memchr(fresh, '\n', (size_t)n)) {
            conn_answer(c, AGENT_REQ_LINE);
            return true;
        }
        if (c->len > AGENT_REQUEST_MAX) {
            conn_answer(c, AGENT_REQ_OVERSIZE);
            return true;
        }
        return false;
    }
    if (n == 0) {
        conn_answer(c, AGENT_REQ_EOF);
        return true;
    }
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        STAT_INC(c->srv->stats.read_errors);
        conn_close(c);
        return true;
    }
    return false;
}

static void on_timer(uv_timer_t *t)
{
    struct agent_server *srv = t->data;
    uint64_t now = uv_now(srv->loop);

    while (srv->head && srv->head->deadline <= now) {
        struct conn *c = srv->head;
        if (c->lingering) {
            conn_close(c);
            continue;
        }
        /* libuv runs expired timers before it polls: after a stall (the
         * process stopped, a slow host) the line may be waiting in the
         * socket with its read event not yet seen. The real answer wins
         * whenever a line is readable; the default is only for a client
         * that really sent nothing complete. */
        if (!conn_read_now(c))
            conn_answer(c, AGENT_REQ_TIMEOUT);
    }
    if (srv->head && !srv->closing)
        uv_timer_start(&srv->timer, on_timer, srv->head->deadline - now, 0);
}

/* Over the connection cap: a reset, so HAProxy fails this check at once
 * (leaving it in the backlog would only make it wait for its timeout). */
static void refuse(struct agent_server *srv, int fd)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    STAT_INC(srv->stats.refused);
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);
}

/* The request is incomplete: make fd a libuv connection that waits for
 * the rest (or the timeout), holding the len bytes already read. */
static void conn_adopt(struct agent_server *srv, int fd, const char *data, size_t len)
{
    struct conn *c = srv->free_conns;
    if (c) {
        srv->free_conns = c->next;
        srv->nfree--;
    } else {
        c = malloc(sizeof(*c));
    }
    if (!c) {
        STAT_INC(srv->stats.accept_errors);
        if (srv->cfg.shared_active)
            __atomic_sub_fetch(srv->cfg.shared_active, 1, __ATOMIC_RELAXED);
        close(fd);
        return;
    }
    c->srv = srv;
    memcpy(c->buf, data, len);
    c->len = len;
    c->prev = c->next = NULL;
    c->waiting = c->linger = c->lingering = false;
    uv_tcp_init(srv->loop, &c->tcp);
    c->tcp.data = c;
    STAT_INC(srv->stats.active);
    if (uv_tcp_open(&c->tcp, fd) != 0) {
        STAT_INC(srv->stats.accept_errors);
        close(fd);
        conn_close(c);
        return;
    }
    list_append(srv, c);
    if (!uv_is_active((uv_handle_t *)&srv->timer))
        uv_timer_start(&srv->timer, on_timer, srv->cfg.request_timeout_ms, 0);
    if (c->len > AGENT_REQUEST_MAX) {
        conn_answer(c, AGENT_REQ_OVERSIZE);
        return;
    }
    int rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (rc < 0) {
        STAT_INC(srv->stats.read_errors);
        conn_close(c);
    }
}

/* One accepted connection. HAProxy sends its line right after connecting,
 * so it has usually arrived by the time we accept: then it is answered
 * from one read, one write and a close -- the syscalls of the most
 * trivial server -- with no libuv handle, epoll registration or loop
 * iteration of its own. */
static void on_accepted(struct agent_server *srv, int fd)
{
    size_t *total = srv->cfg.shared_active;
    bool full = total ? __atomic_add_fetch(total, 1, __ATOMIC_RELAXED) > srv->cfg.max_connections
                      : srv->stats.active >= srv->cfg.max_connections;
    if (full) {
        if (total)
            __atomic_sub_fetch(total, 1, __ATOMIC_RELAXED);
        refuse(srv, fd);
        return;
    }
    STAT_INC(srv->stats.accepted);
    ssize_t n = recv(fd, srv->scratch, AGENT_REQUEST_MAX + 1, MSG_DONTWAIT);
    enum agent_req_end end;
    if (n > 0 && memchr(srv->scratch, '\n', (size_t)n)) {
        end = AGENT_REQ_LINE;
    } else if (n == 0) {
        end = AGENT_REQ_EOF;
    } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        STAT_INC(srv->stats.read_errors);
        if (total)
            __atomic_sub_fetch(total, 1, __ATOMIC_RELAXED);
        close(fd);
        return;
    } else {
        conn_adopt(srv, fd, srv->scratch, n > 0 ? (size_t)n : 0);
        return;
    }
    size_t len = (size_t)n;
    STAT_INC(srv->stats.ends[end]);
    srv->scratch[len] = '\0'; /* callers may treat it as a string */
    int r = srv->fn(srv->ctx, srv->scratch, len, end, srv->reply, sizeof(srv->reply));
    /* A few hundred bytes into the empty send buffer of a new connection:
     * written whole or the connection is broken. */
    if (r > 0 && send(fd, srv->reply, (size_t)r, MSG_NOSIGNAL | MSG_DONTWAIT) != r)
        STAT_INC(srv->stats.write_errors);
    close(fd);
    if (total)
        __atomic_sub_fetch(total, 1, __ATOMIC_RELAXED);
}

static void on_listener(uv_poll_t *p, int status, int events);

static void on_accept_pause(uv_timer_t *t)
{
    struct agent_server *srv = t->data;
    srv->paused = false;
    for (size_t i = 0; i < srv->nlisteners && !srv->closing; i++)
        uv_poll_start(&srv->listeners[i].poll, UV_READABLE, on_listener);
}

/* At most this many accepts per wake-up, so timers and open connections
 * get their turn under a flood (the poll is level-triggered). */
#define ACCEPT_BATCH 64

/* Back in on_listener this soon after it returned: the poll did not sleep,
 * so connections are queueing. A wake-up after a sleep takes longer (the
 * next connection's arrival), a loop iteration that finds the listener
 * still readable a few microseconds. */
#define REWAKE_NS 10000

/* How many connections to accept in this wake-up. Draining the accept
 * queue until accept4 fails with EAGAIN costs that failed call on every
 * wake-up; when checks come one at a time (HAProxy spreads them over
 * agent-inter) the daemon sleeps between checks and that is one system
 * call per check more than a blocking accept makes. So after a sleep take
 * one connection and return to the loop: a second one already queued
 * wakes it again at once, which switches to draining until a drain finds
 * at most one connection. */
static int accept_budget(struct listener *l)
{
    if (!l->drain && uv_hrtime() - l->returned_ns < REWAKE_NS)
        l->drain = true;
    return l->drain ? ACCEPT_BATCH : 1;
}

static void on_listener(uv_poll_t *p, int status, int events)
{
    struct listener *l = p->data;
    struct agent_server *srv = l->srv;
    (void)events;

    if (status < 0) {
        STAT_INC(srv->stats.accept_errors);
        log_warn("agent-checker: polling a listener failed: %s, continuing", uv_strerror(status));
        return;
    }
    int budget = accept_budget(l), accepted = 0;
    for (int i = 0; i < budget && !srv->closing; i++) {
        int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            on_accepted(srv, fd);
            accepted++;
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            l->drain = accepted > 1; /* the queue had at most one: back to one per wake-up */
            break;
        }
        if (errno == EINTR || errno == ECONNABORTED)
            continue;
        /* EMFILE, ENFILE, ENOBUFS...: the connection stays in the backlog
         * and the socket stays readable; pause instead of spinning. */
        STAT_INC(srv->stats.accept_errors);
        if (!srv->paused)
            log_warn("agent-checker: accept failed: %s, pausing accepts for 100 ms",
                     strerror(errno));
        srv->paused = true;
        for (size_t k = 0; k < srv->nlisteners; k++)
            uv_poll_stop(&srv->listeners[k].poll);
        uv_timer_start(&srv->accept_pause, on_accept_pause, 100, 0);
        return;
    }
    l->returned_ns = uv_hrtime();
}

int agent_server_new(uv_loop_t *loop, const struct agent_server_config *cfg, agent_answer_fn fn,
                     void *ctx, struct agent_server **out)
{
    struct agent_server *srv = calloc(1, sizeof(*srv));
    if (!srv)
        return -ENOMEM;
    srv->loop = loop;
    srv->cfg = *cfg;
    if (srv->cfg.max_connections == 0)
        srv->cfg.max_connections = 1;
    srv->fn = fn;
    srv->ctx = ctx;
    uv_timer_init(loop, &srv->timer);
    srv->timer.data = srv;
    uv_timer_init(loop, &srv->accept_pause);
    srv->accept_pause.data = srv;
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
 * when asked. */
static int listen_socket(const struct sockaddr_storage *ss, bool reuseport, int *out)
{
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), one = 1;
    if (fd < 0)
        return -errno;
    socklen_t len =
        ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) ||
        (ss->ss_family == AF_INET6 &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
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
        rc = listen_socket(ss, srv->cfg.reuseport, &fd);
    if (rc < 0)
        return rc;
    struct listener *l = &srv->listeners[srv->nlisteners];
    l->fd = fd;
    l->srv = srv;
    rc = uv_poll_init(srv->loop, &l->poll, fd);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    l->poll.data = l;
    rc = uv_poll_start(&l->poll, UV_READABLE, on_listener);
    if (rc < 0) {
        uv_close((uv_handle_t *)&l->poll, NULL);
        close(fd);
        return rc;
    }
    srv->nlisteners++;
    return 0;
}

int agent_server_listen(struct agent_server *srv, const char *addr)
{
    struct sockaddr_storage ss;

    if (srv->nlisteners == MAX_LISTENERS)
        return -E2BIG;
    if (agent_server_parse_addr(addr, &ss) < 0)
        return -EINVAL;
    return agent_server_listen_sa(srv, &ss, false);
}

int agent_server_sockname(const struct agent_server *srv, size_t i, struct sockaddr_storage *out)
{
    socklen_t len = sizeof(*out);
    if (i >= srv->nlisteners ||
        getsockname(srv->listeners[i].fd, (struct sockaddr *)out, &len) != 0)
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

const struct agent_server_stats *agent_server_stats(const struct agent_server *srv)
{
    return &srv->stats;
}

void agent_server_stats_add(const struct agent_server *srv, struct agent_server_stats *to)
{
    const struct agent_server_stats *s = &srv->stats;
    to->accepted += __atomic_load_n(&s->accepted, __ATOMIC_RELAXED);
    to->refused += __atomic_load_n(&s->refused, __ATOMIC_RELAXED);
    for (int e = 0; e < AGENT_REQ_END_COUNT; e++)
        to->ends[e] += __atomic_load_n(&s->ends[e], __ATOMIC_RELAXED);
    to->read_errors += __atomic_load_n(&s->read_errors, __ATOMIC_RELAXED);
    to->write_errors += __atomic_load_n(&s->write_errors, __ATOMIC_RELAXED);
    to->accept_errors += __atomic_load_n(&s->accept_errors, __ATOMIC_RELAXED);
    to->active += __atomic_load_n(&s->active, __ATOMIC_RELAXED);
}

void agent_server_close(struct agent_server *srv)
{
    if (!srv || srv->closing)
        return;
    srv->closing = true;
    for (size_t i = 0; i < srv->nlisteners; i++) {
        /* uv_close takes the fd out of epoll at once: closing it after is safe */
        uv_close((uv_handle_t *)&srv->listeners[i].poll, NULL);
        close(srv->listeners[i].fd);
    }
    uv_close((uv_handle_t *)&srv->timer, NULL);
    uv_close((uv_handle_t *)&srv->accept_pause, NULL);
    while (srv->head)
        conn_close(srv->head);
}

void agent_server_free(struct agent_server *srv)
{
    if (!srv)
        return;
    while (srv->free_conns) {
        struct conn *c = srv->free_conns;
        srv->free_conns = c->next;
        free(c);
    }
    free(srv);
}
