/* SPDX-License-Identifier: Apache-2.0 */
#include "agent_wait.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent_reply.h"

/* Closed connections kept for reuse: a burst of slow clients (HAProxy
 * checks after a stall) should not cost a malloc/free each. */
#define FREE_CONNS_MAX 256

struct conn {
    uv_tcp_t tcp;
    struct agent_wait *w;
    struct conn *prev, *next; /* waiting list (accept order); inbox and free list via next */
    int fd;                   /* until adopted */
    size_t *active;           /* the accepting side's connection count */
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

struct agent_wait {
    uv_loop_t *loop;
    uint64_t timeout_ms;
    agent_answer_fn fn;
    void *ctx;
    uv_timer_t timer;
    uv_async_t inbox_async;
    struct conn *head, *tail; /* waiting, oldest first */
    /* Hand-overs from the answering threads, and the free list they take
     * from: the slow path, so one mutex is fine. */
    pthread_mutex_t lock;
    struct conn *inbox, *inbox_tail;
    struct conn *free_conns;
    size_t nfree;
    bool closing; /* under lock */
    struct agent_server_stats stats;
};

static void list_remove(struct agent_wait *w, struct conn *c)
{
    if (!c->waiting)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        w->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        w->tail = c->prev;
    c->prev = c->next = NULL;
    c->waiting = false;
}

/* Return c to the free list (or free it); its connection has ended. */
static void conn_release(struct agent_wait *w, struct conn *c)
{
    __atomic_sub_fetch(c->active, 1, __ATOMIC_RELAXED);
    pthread_mutex_lock(&w->lock);
    if (w->nfree < FREE_CONNS_MAX && !w->closing) {
        c->next = w->free_conns;
        w->free_conns = c;
        w->nfree++;
        c = NULL;
    }
    pthread_mutex_unlock(&w->lock);
    free(c);
}

static void on_conn_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    AGENT_STAT_ADD(c->w->stats.active, (size_t)-1);
    conn_release(c->w, c);
}

static void conn_close(struct conn *c)
{
    list_remove(c->w, c);
    if (!uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static void on_timer(uv_timer_t *t);

static void list_append(struct agent_wait *w, struct conn *c)
{
    c->deadline = uv_now(w->loop) + w->timeout_ms;
    c->waiting = true;
    c->next = NULL;
    c->prev = w->tail;
    if (w->tail)
        w->tail->next = c;
    else
        w->head = c;
    w->tail = c;
    if (!uv_is_active((uv_handle_t *)&w->timer))
        uv_timer_start(&w->timer, on_timer, w->timeout_ms, 0);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)req;
    (void)status; /* the close that follows reports nothing either */
}

static void on_drain_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct conn *c = h->data;
    (void)suggested;
    buf->base = c->buf;
    buf->len = sizeof(c->buf);
}

/* Discard what an oversize client still sends until it closes (or the
 * timeout/budget runs out), so our close is a FIN, not a reset that could
 * destroy the reply before the client read it. */
static void on_drain_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    (void)buf;
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
    if (!c->linger || c->w->closing) {
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
    list_append(c->w, c);
}

static void on_written(uv_write_t *req, int status)
{
    struct conn *c = req->data;
    if (status < 0) {
        AGENT_STAT_INC(c->w->stats.write_errors);
        conn_close(c);
        return;
    }
    conn_finish(c);
}

static void conn_answer(struct conn *c, enum agent_req_end end)
{
    struct agent_wait *w = c->w;

    list_remove(w, c);
    uv_read_stop((uv_stream_t *)&c->tcp);
    AGENT_STAT_INC(w->stats.ends[end]);
    c->linger = end == AGENT_REQ_OVERSIZE;
    c->buf[c->len] = '\0'; /* callers may treat it as a string */
    int n = w->fn(w->ctx, c->buf, c->len, end, c->reply, sizeof(c->reply));
    if (n <= 0) {
        conn_close(c);
        return;
    }
    /* The reply is far below the socket buffer: it is written at once in
     * practice and the queued write is only the fallback. */
    int wr =
        uv_try_write((uv_stream_t *)&c->tcp, &(uv_buf_t){.base = c->reply, .len = (size_t)n}, 1);
    if (wr == n) {
        conn_finish(c);
        return;
    }
    if (wr < 0 && wr != UV_EAGAIN) {
        AGENT_STAT_INC(w->stats.write_errors);
        conn_close(c);
        return;
    }
    size_t done = wr > 0 ? (size_t)wr : 0;
    uv_buf_t rest = {.base = c->reply + done, .len = (size_t)n - done};
    c->wreq.data = c;
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &rest, 1, on_written) < 0) {
        AGENT_STAT_INC(w->stats.write_errors);
        conn_close(c);
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct conn *c = h->data;
    (void)suggested;
    /* One byte beyond the limit so an oversize request is detected. */
    buf->base = c->buf + c->len;
    buf->len = AGENT_REQUEST_MAX + 1 - c->len;
}

/* Account for n fresh bytes at the end of c->buf: answer when they
 * complete the request. true when answered. */
static bool conn_took(struct conn *c, size_t n)
{
    char *fresh = c->buf + c->len;
    c->len += n;
    if (memchr(fresh, '\n', n)) {
        conn_answer(c, AGENT_REQ_LINE);
        return true;
    }
    if (c->len > AGENT_REQUEST_MAX) {
        conn_answer(c, AGENT_REQ_OVERSIZE);
        return true;
    }
    return false;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    (void)buf;

    if (nread == UV_EOF) {
        conn_answer(c, AGENT_REQ_EOF);
        return;
    }
    if (nread < 0) {
        AGENT_STAT_INC(c->w->stats.read_errors);
        conn_close(c);
        return;
    }
    if (nread > 0)
        conn_took(c, (size_t)nread);
}

/* Read what the socket holds now, without waiting. Returns true when the
 * request is complete and has been answered (or the connection closed). */
static bool conn_read_now(struct conn *c)
{
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0)
        return false;
    ssize_t n = recv(fd, c->buf + c->len, AGENT_REQUEST_MAX + 1 - c->len, MSG_DONTWAIT);
    if (n > 0)
        return conn_took(c, (size_t)n);
    if (n == 0) {
        conn_answer(c, AGENT_REQ_EOF);
        return true;
    }
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        AGENT_STAT_INC(c->w->stats.read_errors);
        conn_close(c);
        return true;
    }
    return false;
}

static void on_timer(uv_timer_t *t)
{
    struct agent_wait *w = t->data;
    uint64_t now = uv_now(w->loop);

    while (w->head && w->head->deadline <= now) {
        struct conn *c = w->head;
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
    if (w->head && !w->closing)
        uv_timer_start(&w->timer, on_timer, w->head->deadline - now, 0);
}

/* On the loop: make a handed-over connection a libuv handle that waits
 * for the rest of its request (or the timeout). */
static void conn_adopt(struct agent_wait *w, struct conn *c)
{
    c->prev = c->next = NULL;
    c->waiting = c->linger = c->lingering = false;
    uv_tcp_init(w->loop, &c->tcp);
    c->tcp.data = c;
    AGENT_STAT_INC(w->stats.active);
    if (uv_tcp_open(&c->tcp, c->fd) != 0) {
        AGENT_STAT_INC(w->stats.read_errors);
        close(c->fd);
        conn_close(c);
        return;
    }
    list_append(w, c);
    if (c->len > AGENT_REQUEST_MAX) {
        conn_answer(c, AGENT_REQ_OVERSIZE);
        return;
    }
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0) {
        AGENT_STAT_INC(w->stats.read_errors);
        conn_close(c);
    }
}

static void on_inbox(uv_async_t *a)
{
    struct agent_wait *w = a->data;
    pthread_mutex_lock(&w->lock);
    struct conn *c = w->inbox;
    w->inbox = w->inbox_tail = NULL;
    pthread_mutex_unlock(&w->lock);
    while (c) {
        struct conn *next = c->next;
        conn_adopt(w, c);
        c = next;
    }
}

int agent_wait_handoff(struct agent_wait *w, int fd, const char *data, size_t len, size_t *active)
{
    pthread_mutex_lock(&w->lock);
    struct conn *c = w->free_conns;
    if (c) {
        w->free_conns = c->next;
        w->nfree--;
    }
    pthread_mutex_unlock(&w->lock);
    if (!c)
        c = malloc(sizeof(*c));
    if (!c) {
        close(fd);
        __atomic_sub_fetch(active, 1, __ATOMIC_RELAXED);
        return -ENOMEM;
    }
    c->w = w;
    c->fd = fd;
    c->active = active;
    c->len = len < AGENT_REQUEST_MAX + 1 ? len : AGENT_REQUEST_MAX + 1;
    memcpy(c->buf, data, c->len);
    c->next = NULL;

    pthread_mutex_lock(&w->lock);
    bool closing = w->closing;
    if (!closing) {
        if (w->inbox_tail)
            w->inbox_tail->next = c;
        else
            w->inbox = c;
        w->inbox_tail = c;
        /* under the lock: agent_wait_close cannot close the handle
         * between the check and the send */
        uv_async_send(&w->inbox_async);
    }
    pthread_mutex_unlock(&w->lock);
    if (closing) {
        close(fd);
        __atomic_sub_fetch(active, 1, __ATOMIC_RELAXED);
        free(c);
        return -ESHUTDOWN;
    }
    return 0;
}

int agent_wait_new(uv_loop_t *loop, uint64_t request_timeout_ms, agent_answer_fn fn, void *ctx,
                   struct agent_wait **out)
{
    struct agent_wait *w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    int rc = uv_async_init(loop, &w->inbox_async, on_inbox);
    if (rc < 0) {
        free(w);
        return rc;
    }
    w->loop = loop;
    w->timeout_ms = request_timeout_ms ? request_timeout_ms : 1;
    w->fn = fn;
    w->ctx = ctx;
    pthread_mutex_init(&w->lock, NULL);
    uv_timer_init(loop, &w->timer);
    w->timer.data = w;
    w->inbox_async.data = w;
    *out = w;
    return 0;
}

void agent_wait_stats_add(const struct agent_wait *w, struct agent_server_stats *to)
{
    agent_server_stats_sum(&w->stats, to);
}

void agent_wait_close(struct agent_wait *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    bool was = w->closing;
    w->closing = true;
    struct conn *c = w->inbox;
    w->inbox = w->inbox_tail = NULL;
    pthread_mutex_unlock(&w->lock);
    if (was)
        return;
    /* hand-overs the loop had not adopted yet */
    while (c) {
        struct conn *next = c->next;
        close(c->fd);
        __atomic_sub_fetch(c->active, 1, __ATOMIC_RELAXED);
        free(c);
        c = next;
    }
    uv_close((uv_handle_t *)&w->inbox_async, NULL);
    uv_close((uv_handle_t *)&w->timer, NULL);
    while (w->head)
        conn_close(w->head);
}

void agent_wait_free(struct agent_wait *w)
{
    if (!w)
        return;
    while (w->free_conns) {
        struct conn *c = w->free_conns;
        w->free_conns = c->next;
        free(c);
    }
    pthread_mutex_destroy(&w->lock);
    free(w);
}
