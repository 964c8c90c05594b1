/* SPDX-License-Identifier: Apache-2.0 */
/*
 * haproxy_runtime: asynchronous stats-socket and master-CLI client (see
 * haproxy_runtime.h). This file owns the request queue and the socket
 * exchanges:
 *
 *   request queue -> one exchange at a time per socket (connect, write all
 *   commands, read to EOF, split answers, callback) -> next request.
 *
 * The stats socket and the master CLI are two lanes: a `show proc` probe
 * of the master (every 200 ms by default) no longer holds an apply on the
 * stats socket, nor the other way round. Requests of one socket run in
 * queue order; nothing orders them against the other socket's except the
 * chains below, whose steps are queued one after another.
 *
 * Multi-step operations (apply: haproxy_runtime_apply.c; reload:
 * haproxy_runtime_reload.c) are chains of exchanges whose later steps are
 * pushed to the FRONT of the queue, so nothing queued by someone else can
 * run between "dump state" and "send commands" or "reload". While a reload
 * is in flight (from its `show proc` baseline until the new worker is
 * confirmed and repaired) only the reload's own exchanges run: a runtime
 * command sent to the old worker in that window would be lost, since the
 * new worker has already loaded the state file. Answers are framed and
 * parsed by haproxy_answers.c.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "haproxy_runtime_internal.h"
#include "log.h"
#include "loop_lag.h"

/* An answer bigger than this is refused (a 10,000-server state dump is
 * about 2 MiB). */
#define RT_MAX_ANSWER (64u << 20)

struct rt_request {
    struct rt_request *next;
    enum haproxy_socket sock;
    enum rt_lane lane;
    char **cmds;
    size_t n;
    enum rt_kind kind;
    uint64_t timeout_ms; /* the exchange's bound; 0: the client's cmd_timeout_ms */
    uint64_t queued_ns;  /* uv_hrtime when queued (the debug log's split) */
    haproxy_runtime_exec_cb cb;
    void *arg;
};

struct rt_exchange {
    struct haproxy_runtime *rt; /* NULL once rt is freed */
    struct rt_request *req;
    uv_pipe_t pipe;
    uv_connect_t connect;
    uv_write_t write;
    uv_shutdown_t shutdown;
    uv_timer_t timer;
    char *out; /* bytes to write */
    size_t out_len;
    char *in; /* bytes read */
    size_t in_len, in_cap;
    int pending_closes;
    bool done;               /* callback ran */
    bool stall_retried;      /* given a second timeout after our own stall */
    uint64_t timeout_ms;     /* each wait for the answer (request's or client's) */
    uint64_t started_ns;     /* uv_hrtime when started */
    uint64_t stall_at_start; /* loop_lag_stalled_ms() when started */
};

static void request_free(struct rt_request *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        free(r->cmds[i]);
    free(r->cmds);
    free(r);
}

static const char *sock_name(enum haproxy_socket s)
{
    return s == HAPROXY_SOCKET_MASTER ? "master CLI" : "stats socket";
}

/* ---- exchange ----------------------------------------------------------- */

static void exchange_on_close(uv_handle_t *h)
{
    struct rt_exchange *x = h->data;
    if (--x->pending_closes > 0)
        return;
    struct haproxy_runtime *rt = x->rt;
    enum rt_lane lane = x->req->lane;
    request_free(x->req);
    free(x->out);
    free(x->in);
    free(x);
    if (rt) {
        rt->cur[lane] = NULL;
        rt_kick(rt);
    }
}

static void exchange_finish(struct rt_exchange *x, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void exchange_finish(struct rt_exchange *x, int status, const char *fmt, ...)
{
    struct haproxy_runtime *rt = x->rt;
    struct rt_request *req = x->req;
    char err[HAPROXY_RUNTIME_MSG_MAX] = "";
    char **answers = NULL;
    size_t n_ans = 0;

    if (x->done)
        return;
    x->done = true;
    uv_timer_stop(&x->timer);
    /* where an apply's time goes: waiting for the socket, or the exchange
     * (connect, HAProxy running the commands, the answers) */
    log_debug("haproxy: %s exchange of %zu command(s) done, status %d, queued %.2f ms, took "
              "%.2f ms",
              sock_name(req->sock), req->n, status, (double)(x->started_ns - req->queued_ns) / 1e6,
              (double)(uv_hrtime() - x->started_ns) / 1e6);
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, sizeof(err), fmt, ap);
        va_end(ap);
    }
    if (status == 0) {
        /* +1: the answer to "prompt" on the stats socket */
        size_t want = req->sock == HAPROXY_SOCKET_STATS ? req->n + 1 : 1;
        answers = calloc(want, sizeof(*answers));
        if (!answers) {
            status = -ENOMEM;
            snprintf(err, sizeof(err), "haproxy: out of memory splitting answers");
        } else if (!x->in && req->sock == HAPROXY_SOCKET_MASTER) {
            /* nothing read: every answer empty (master `reload`) */
            static char empty[] = "";
            for (size_t i = 0; i < want; i++)
                answers[i] = empty;
            n_ans = want;
        } else if (req->sock == HAPROXY_SOCKET_STATS) {
            n_ans = x->in ? haproxy_split_prompt_answers(x->in, x->in_len, answers, want) : 0;
            if (n_ans < want) {
                status = -EPIPE;
                snprintf(err, sizeof(err),
                         "haproxy: %s %s closed the connection after %zu of %zu answers",
                         sock_name(req->sock), rt ? rt->stats_path : "?", n_ans ? n_ans - 1 : 0,
                         req->n);
            }
        } else {
            x->in[x->in_len] = 0;
            answers[0] = x->in;
            n_ans = 1;
        }
    }
    if (rt) {
        if (status == -ETIMEDOUT)
            rt->st.timeouts++;
        else if (status < 0 && status != -ECANCELED)
            rt->st.io_errors++;
    }
    if (req->cb) {
        const char *const *a = (const char *const *)answers;
        size_t off = (status == 0 && req->sock == HAPROXY_SOCKET_STATS) ? 1 : 0;
        if (status == 0)
            req->cb(rt, 0, a + off, req->n, "", req->arg);
        else
            req->cb(rt, status, NULL, 0, err, req->arg);
    }
    free(answers);
    if (!uv_is_closing((uv_handle_t *)&x->pipe))
        uv_close((uv_handle_t *)&x->pipe, exchange_on_close);
    if (!uv_is_closing((uv_handle_t *)&x->timer))
        uv_close((uv_handle_t *)&x->timer, exchange_on_close);
}

static const char *exchange_path(const struct rt_exchange *x)
{
    if (!x->rt)
        return "?";
    return x->req->sock == HAPROXY_SOCKET_MASTER ? x->rt->master_path : x->rt->stats_path;
}

bool rt_stall_excuses(struct haproxy_runtime *rt, uint64_t stall_at_start, uint64_t timeout_ms,
                      const char *what)
{
    uint64_t stalled = loop_lag_stalled_ms(rt->lag) - stall_at_start;

    if (!loop_lag_own_fault(stalled, timeout_ms))
        return false;
    rt->st.stall_retries++;
    if (rt->stall_counter)
        metrics_counter_inc(rt->stall_counter);
    log_info("haproxy: %s timed out while this process could not act for %llu ms (stopped or "
             "starved); waiting %llu ms more for the answer",
             what, (unsigned long long)stalled, (unsigned long long)timeout_ms);
    return true;
}

/* The timer runs before libuv reads the socket: after a stall of ours the
 * answer may be there unread. Waiting once more on the same connection
 * reads it (on the next turn of the loop) and sends nothing twice. */
static void exchange_on_timeout(uv_timer_t *t)
{
    struct rt_exchange *x = t->data;
    char what[64];

    snprintf(what, sizeof(what), "%s exchange", sock_name(x->req->sock));
    if (x->rt && !x->stall_retried &&
        rt_stall_excuses(x->rt, x->stall_at_start, x->timeout_ms, what)) {
        x->stall_retried = true;
        uv_timer_start(&x->timer, exchange_on_timeout, x->timeout_ms, 0);
        return;
    }
    exchange_finish(x, -ETIMEDOUT, "haproxy: %s %s: no complete answer within %llu ms",
                    sock_name(x->req->sock), exchange_path(x),
                    (unsigned long long)(x->stall_retried ? 2 * x->timeout_ms : x->timeout_ms));
}

static void exchange_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct rt_exchange *x = h->data;
    if (x->in_cap - x->in_len < 65536 + 1) {
        size_t cap = x->in_cap ? x->in_cap * 2 : 131072;
        char *p = cap <= RT_MAX_ANSWER + 65536 ? realloc(x->in, cap) : NULL;
        if (!p) {
            *buf = uv_buf_init(NULL, 0); /* read_cb gets UV_ENOBUFS */
            return;
        }
        x->in = p;
        x->in_cap = cap;
    }
    /* keep one byte for the terminating NUL */
    *buf = uv_buf_init(x->in + x->in_len, (unsigned)(x->in_cap - x->in_len - 1));
}

static void exchange_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct rt_exchange *x = s->data;
    if (nread > 0) {
        x->in_len += (size_t)nread;
        if (x->in_len > RT_MAX_ANSWER)
            exchange_finish(x, -EMSGSIZE, "haproxy: %s %s: answer larger than %u bytes",
                            sock_name(x->req->sock), exchange_path(x), RT_MAX_ANSWER);
        return;
    }
    if (nread == UV_EOF) {
        if (x->in)
            x->in[x->in_len] = 0;
        exchange_finish(x, 0, NULL);
    } else if (nread < 0) {
        exchange_finish(x, (int)nread, "haproxy: %s %s: read failed: %s", sock_name(x->req->sock),
                        exchange_path(x), uv_strerror((int)nread));
    }
}

static void exchange_on_shutdown(uv_shutdown_t *req, int status)
{
    (void)req;
    (void)status; /* an error shows up as a read error or a timeout */
}

static void exchange_on_write(uv_write_t *w, int status)
{
    struct rt_exchange *x = w->data;
    /* The master CLI answers one command and closes only once our side is
     * closed for writing (the stats socket closes on `quit`). */
    if (status == 0 && x->req->sock == HAPROXY_SOCKET_MASTER && !x->done)
        uv_shutdown(&x->shutdown, (uv_stream_t *)&x->pipe, exchange_on_shutdown);
    /* The master closes the CLI while re-executing for `reload`: a broken
     * write is not an error there, the reload is verified with show proc. */
    if (status < 0 && status != UV_ECANCELED && x->req->sock == HAPROXY_SOCKET_STATS)
        exchange_finish(x, status, "haproxy: %s %s: write failed: %s", sock_name(x->req->sock),
                        exchange_path(x), uv_strerror(status));
}

static void exchange_on_connect(uv_connect_t *c, int status)
{
    struct rt_exchange *x = c->data;
    if (x->done)
        return;
    if (status < 0) {
        exchange_finish(x, status, "haproxy: cannot connect to %s %s: %s", sock_name(x->req->sock),
                        exchange_path(x), uv_strerror(status));
        return;
    }
    uv_buf_t b = uv_buf_init(x->out, (unsigned)x->out_len);
    int rc = uv_read_start((uv_stream_t *)&x->pipe, exchange_alloc, exchange_on_read);
    if (rc == 0)
        rc = uv_write(&x->write, (uv_stream_t *)&x->pipe, &b, 1, exchange_on_write);
    if (rc < 0)
        exchange_finish(x, rc, "haproxy: %s %s: cannot start I/O: %s", sock_name(x->req->sock),
                        exchange_path(x), uv_strerror(rc));
}

/* cmd carries a payload: its first line ends with " <<" (checked by
 * check_commands: the payload lines that follow are not empty). */
static bool has_payload(const char *cmd)
{
    const char *nl = strchr(cmd, '\n');
    return nl && nl - cmd >= 3 && memcmp(nl - 3, " <<", 3) == 0;
}

static int build_payload(const struct rt_request *req, char **out, size_t *len)
{
    size_t total = 0;
    bool stats = req->sock == HAPROXY_SOCKET_STATS;
    for (size_t i = 0; i < req->n; i++)
        total += strlen(req->cmds[i]) + 2;
    total += stats ? sizeof("prompt\nquit\n") : 1;
    char *p = malloc(total), *w = p;
    if (!p)
        return -ENOMEM;
    if (stats)
        w = stpcpy(w, "prompt\n");
    for (size_t i = 0; i < req->n; i++) {
        w = stpcpy(w, req->cmds[i]);
        *w++ = '\n';
        if (has_payload(req->cmds[i]))
            *w++ = '\n'; /* the empty line that ends a payload */
    }
    if (stats)
        w = stpcpy(w, "quit\n");
    *out = p;
    *len = (size_t)(w - p);
    return 0;
}

static void rt_start(struct haproxy_runtime *rt, struct rt_request *req)
{
    struct rt_exchange *x = calloc(1, sizeof(*x));
    int rc;
    const char *path = req->sock == HAPROXY_SOCKET_MASTER ? rt->master_path : rt->stats_path;

    if (!x || build_payload(req, &x->out, &x->out_len) < 0) {
        free(x);
        rt->st.io_errors++;
        if (req->cb)
            req->cb(rt, -ENOMEM, NULL, 0, "haproxy: out of memory starting an exchange", req->arg);
        request_free(req);
        return;
    }
    x->rt = rt;
    x->req = req;
    x->timeout_ms = req->timeout_ms ? req->timeout_ms : rt->cmd_timeout_ms;
    x->started_ns = uv_hrtime();
    x->stall_at_start = loop_lag_stalled_ms(rt->lag);
    x->pipe.data = x->timer.data = x->connect.data = x->write.data = x;
    rc = uv_pipe_init(rt->loop, &x->pipe, 0);
    if (rc == 0) {
        rc = uv_timer_init(rt->loop, &x->timer);
        if (rc < 0) {
            uv_close((uv_handle_t *)&x->pipe, NULL);
        }
    }
    if (rc < 0) {
        /* only reachable on a broken loop; the pipe close above has no
         * callback, so x can go after the loop turned */
        rt->st.io_errors++;
        if (req->cb)
            req->cb(rt, rc, NULL, 0, "haproxy: cannot create handles", req->arg);
        request_free(req);
        free(x->out);
        free(x);
        return;
    }
    x->pending_closes = 2;
    rt->cur[req->lane] = x;
    rt->st.exchanges++;
    if (req->sock == HAPROXY_SOCKET_STATS)
        rt->st.commands_sent += req->n;
    uv_timer_start(&x->timer, exchange_on_timeout, x->timeout_ms, 0);
    uv_pipe_connect(&x->connect, &x->pipe, path, exchange_on_connect);
}

/* Whether x is in flight and runs alone (enum rt_kind). */
static bool solo_in_flight(const struct rt_exchange *x)
{
    return x && x->req->kind != RT_PLAIN;
}

/* The first request rt may start now, unlinked from the queue, or NULL:
 * the first of a socket with no exchange in flight; a solo one only with
 * nothing in flight (and none behind it first); while a reload holds the
 * queue, only the reload's own steps. */
static struct rt_request *next_runnable(struct haproxy_runtime *rt)
{
    struct rt_exchange *const *cur = rt->cur;
    struct rt_request **pp = &rt->head, *r;
    bool busy = false;
    for (size_t i = 0; i < RT_LANES; i++) {
        if (solo_in_flight(cur[i]))
            return NULL;
        busy = busy || cur[i];
    }
    for (; (r = *pp); pp = &r->next) {
        if (rt->reload_active && r->kind != RT_RELOAD_STEP)
            continue;
        if (r->kind != RT_PLAIN) {
            if (busy)
                return NULL;
            break;
        }
        if (!cur[r->lane])
            break;
    }
    if (!r)
        return NULL;
    *pp = r->next;
    if (rt->tail == r) {
        struct rt_request *t = rt->head;
        while (t && t->next)
            t = t->next;
        rt->tail = t;
    }
    r->next = NULL;
    return r;
}

void rt_kick(struct haproxy_runtime *rt)
{
    struct rt_request *r;
    while (!rt->freeing && (r = next_runnable(rt))) {
        rt->st.queued--;
        rt_start(rt, r);
    }
}

/* rt_enqueue on lane with the exchange's bound (0: the client's
 * cmd_timeout_ms) */
static int enqueue_within(struct haproxy_runtime *rt, enum rt_lane lane, enum haproxy_socket sock,
                          const char *const *cmds, size_t n, bool front, enum rt_kind kind,
                          uint64_t timeout_ms, haproxy_runtime_exec_cb cb, void *arg)
{
    if (rt->freeing)
        return -ECANCELED;
    struct rt_request *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->cmds = calloc(n, sizeof(*r->cmds));
    if (!r->cmds) {
        free(r);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        r->cmds[i] = strdup(cmds[i]);
        if (!r->cmds[i]) {
            r->n = i;
            request_free(r);
            return -ENOMEM;
        }
    }
    r->n = n;
    r->sock = sock;
    r->lane = lane;
    r->kind = kind;
    r->timeout_ms = timeout_ms;
    r->queued_ns = uv_hrtime();
    r->cb = cb;
    r->arg = arg;
    if (front) {
        r->next = rt->head;
        rt->head = r;
        if (!rt->tail)
            rt->tail = r;
    } else {
        if (rt->tail)
            rt->tail->next = r;
        else
            rt->head = r;
        rt->tail = r;
    }
    rt->st.queued++;
    rt_kick(rt);
    return 0;
}

int rt_enqueue(struct haproxy_runtime *rt, enum haproxy_socket sock, const char *const *cmds,
               size_t n, bool front, enum rt_kind kind, haproxy_runtime_exec_cb cb, void *arg)
{
    return enqueue_within(rt, (enum rt_lane)sock, sock, cmds, n, front, kind, 0, cb, arg);
}

static int check_commands(enum haproxy_socket sock, const char *const *cmds, size_t n)
{
    if (n == 0 || (sock == HAPROXY_SOCKET_MASTER && n != 1))
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (!cmds[i] || !cmds[i][0] || strchr(cmds[i], '\r'))
            return -EINVAL;
        /* a payload (stats socket only): lines after "... <<", none empty
         * (an empty line ends it) and no trailing newline */
        if (strchr(cmds[i], '\n') &&
            (sock != HAPROXY_SOCKET_STATS || !has_payload(cmds[i]) || strstr(cmds[i], "\n\n") ||
             cmds[i][strlen(cmds[i]) - 1] == '\n'))
            return -EINVAL;
        /* "prompt" and "quit" would break the answer framing */
        if (strcmp(cmds[i], "prompt") == 0 || strcmp(cmds[i], "quit") == 0)
            return -EINVAL;
    }
    return 0;
}

int haproxy_runtime_exec(struct haproxy_runtime *rt, enum haproxy_socket sock,
                         const char *const *cmds, size_t n, haproxy_runtime_exec_cb cb, void *arg)
{
    if (sock == HAPROXY_SOCKET_MASTER && !rt->master_path)
        return -ENOTSUP;
    if (check_commands(sock, cmds, n) < 0)
        return -EINVAL;
    return rt_enqueue(rt, sock, cmds, n, false, RT_PLAIN, cb, arg);
}

int haproxy_runtime_ping(struct haproxy_runtime *rt, uint64_t timeout_ms,
                         haproxy_runtime_exec_cb cb, void *arg)
{
    static const char *const cmds[] = {HAPROXY_RUNTIME_PING_CMD};
    if (timeout_ms == 0)
        return -EINVAL;
    return enqueue_within(rt, RT_LANE_PING, HAPROXY_SOCKET_STATS, cmds, 1, false, RT_PLAIN,
                          timeout_ms, cb, arg);
}

/* ---- lifecycle ---------------------------------------------------------- */

int haproxy_runtime_new(uv_loop_t *loop, const char *stats_socket, const char *master_socket,
                        const char *server_state_file, struct loop_lag *lag,
                        struct haproxy_runtime **out)
{
    struct haproxy_runtime *rt;
    if (!loop || !stats_socket || !stats_socket[0])
        return -EINVAL;
    rt = calloc(1, sizeof(*rt));
    if (!rt)
        return -ENOMEM;
    rt->loop = loop;
    rt->cmd_timeout_ms = HAPROXY_RUNTIME_CMD_TIMEOUT_MS;
    rt->reload_timeout_ms = HAPROXY_RUNTIME_RELOAD_TIMEOUT_MS;
    rt->stats_path = strdup(stats_socket);
    rt->master_path = master_socket ? strdup(master_socket) : NULL;
    rt->state_path = server_state_file ? strdup(server_state_file) : NULL;
    if (lag)
        rt->lag = loop_lag_ref(lag);
    if (!rt->stats_path || (master_socket && !rt->master_path) ||
        (server_state_file && !rt->state_path) || (!lag && loop_lag_new(loop, &rt->lag) < 0)) {
        haproxy_runtime_free(rt);
        return -ENOMEM;
    }
    *out = rt;
    return 0;
}

void haproxy_runtime_free(struct haproxy_runtime *rt)
{
    if (!rt)
        return;
    rt->freeing = true;
    struct rt_request *r = rt->head;
    rt->head = rt->tail = NULL;
    while (r) {
        struct rt_request *next = r->next;
        if (r->cb)
            r->cb(rt, -ECANCELED, NULL, 0, "haproxy: client shut down", r->arg);
        request_free(r);
        r = next;
    }
    for (size_t i = 0; i < sizeof(rt->cur) / sizeof(rt->cur[0]); i++) {
        struct rt_exchange *x = rt->cur[i];
        if (!x)
            continue;
        exchange_finish(x, -ECANCELED, "haproxy: client shut down");
        x->rt = NULL;
        rt->cur[i] = NULL;
    }
    /* a reload waiting on its poll timer (not on a request) */
    if (rt->reload_op)
        rt_reload_cancel(rt->reload_op);
    rt_saves_cancel(rt);
    rt_backends_free(rt);
    loop_lag_unref(rt->lag);
    free(rt->stats_path);
    free(rt->master_path);
    free(rt->state_path);
    free(rt);
}

void haproxy_runtime_set_writer(struct haproxy_runtime *rt, struct file_writer *w)
{
    rt->writer = w;
}

void haproxy_runtime_set_stall_counter(struct haproxy_runtime *rt, struct metrics_counter *c)
{
    rt->stall_counter = c;
}

void haproxy_runtime_set_timeouts(struct haproxy_runtime *rt, uint64_t cmd_ms, uint64_t reload_ms)
{
    if (cmd_ms)
        rt->cmd_timeout_ms = cmd_ms;
    if (reload_ms)
        rt->reload_timeout_ms = reload_ms;
}

void haproxy_runtime_get_stats(const struct haproxy_runtime *rt, struct haproxy_runtime_stats *out)
{
    *out = rt->st;
}
