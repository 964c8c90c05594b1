/* SPDX-License-Identifier: Apache-2.0 */
#include "agent_server.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

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

struct agent_server {
    uv_loop_t *loop;
    struct agent_server_config cfg;
    agent_answer_fn fn;
    void *ctx;
    uv_tcp_t listeners[MAX_LISTENERS];
    size_t nlisteners;
    uv_timer_t timer;
    struct conn *head, *tail;
    struct conn *free_conns; /* linked through ->next */
    size_t nfree;
    struct agent_server_stats stats;
    bool closing;
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
    srv->stats.active--;
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
        c->srv->stats.write_errors++;
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
    srv->stats.ends[end]++;
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
        srv->stats.write_errors++;
        conn_close(c);
        return;
    }
    size_t done = w > 0 ? (size_t)w : 0;
    uv_buf_t rest = {.base = c->reply + done, .len = (size_t)n - done};
    c->wreq.data = c;
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &rest, 1, on_written) < 0) {
        srv->stats.write_errors++;
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
        c->srv->stats.read_errors++;
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
        c->srv->stats.read_errors++;
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

static void on_refused_closed(uv_handle_t *h)
{
    free(h);
}

static void on_connection(uv_stream_t *listener, int status)
{
    struct agent_server *srv = listener->data;

    if (status < 0) {
        srv->stats.accept_errors++;
        log_warn("agent-checker: accept failed: %s, continuing", uv_strerror(status));
        return;
    }
    if (srv->stats.active >= srv->cfg.max_connections) {
        /* Accept and drop: leaving it in the backlog would only make
         * HAProxy wait for its own check timeout. */
        uv_tcp_t *t = malloc(sizeof(*t));
        if (!t)
            return;
        uv_tcp_init(srv->loop, t);
        if (uv_accept(listener, (uv_stream_t *)t) == 0) {
            srv->stats.refused++;
            /* A reset, so HAProxy fails this check at once. */
            if (uv_tcp_close_reset(t, on_refused_closed) == 0)
                return;
        }
        uv_close((uv_handle_t *)t, on_refused_closed);
        return;
    }
    struct conn *c = srv->free_conns;
    if (c) {
        srv->free_conns = c->next;
        srv->nfree--;
    } else {
        c = malloc(sizeof(*c));
    }
    if (!c) {
        srv->stats.accept_errors++;
        return;
    }
    c->srv = srv;
    c->len = 0;
    c->prev = c->next = NULL;
    c->waiting = c->linger = c->lingering = false;
    uv_tcp_init(srv->loop, &c->tcp);
    c->tcp.data = c;
    srv->stats.active++;
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        srv->stats.accept_errors++;
        conn_close(c);
        return;
    }
    srv->stats.accepted++;
    list_append(srv, c);
    if (!uv_is_active((uv_handle_t *)&srv->timer))
        uv_timer_start(&srv->timer, on_timer, srv->cfg.request_timeout_ms, 0);
    /* HAProxy sends its line right after connecting, so it has usually
     * arrived by the time we accept: answering from one direct read saves
     * registering the socket with epoll and a loop iteration per check. */
    if (conn_read_now(c))
        return;
    int rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (rc < 0) {
        srv->stats.read_errors++;
        conn_close(c);
    }
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
    *out = srv;
    return 0;
}

int agent_server_listen(struct agent_server *srv, const char *addr)
{
    struct sockaddr_storage ss;
    int rc;

    if (srv->nlisteners == MAX_LISTENERS)
        return -E2BIG;
    if (agent_server_parse_addr(addr, &ss) < 0)
        return -EINVAL;
    uv_tcp_t *l = &srv->listeners[srv->nlisteners];
    uv_tcp_init(srv->loop, l);
    l->data = srv;
    rc = uv_tcp_bind(l, (struct sockaddr *)&ss, ss.ss_family == AF_INET6 ? UV_TCP_IPV6ONLY : 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)l, LISTEN_BACKLOG, on_connection);
    if (rc < 0) {
        uv_close((uv_handle_t *)l, NULL);
        return rc;
    }
    srv->nlisteners++;
    return 0;
}

int agent_server_port(const struct agent_server *srv, size_t i)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);

    if (i >= srv->nlisteners ||
        uv_tcp_getsockname(&srv->listeners[i], (struct sockaddr *)&ss, &len) != 0)
        return 0;
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

const struct agent_server_stats *agent_server_stats(const struct agent_server *srv)
{
    return &srv->stats;
}

void agent_server_close(struct agent_server *srv)
{
    if (!srv || srv->closing)
        return;
    srv->closing = true;
    for (size_t i = 0; i < srv->nlisteners; i++)
        uv_close((uv_handle_t *)&srv->listeners[i], NULL);
    uv_close((uv_handle_t *)&srv->timer, NULL);
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
