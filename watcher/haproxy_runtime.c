/* SPDX-License-Identifier: Apache-2.0 */
/*
 * haproxy_runtime: asynchronous stats-socket and master-CLI client (see
 * haproxy_runtime.h). Structure:
 *
 *   request queue -> one exchange at a time (connect, write all commands,
 *   read to EOF, split answers, callback) -> next request.
 *
 * Multi-step operations (apply, reload) are chains of exchanges whose later
 * steps are pushed to the FRONT of the queue, so nothing queued by someone
 * else can run between "dump state" and "send commands" or "reload". While
 * a reload is in flight (from its `show proc` baseline until the new worker
 * is confirmed and repaired) only the reload's own exchanges run: a runtime
 * command sent to the old worker in that window would be lost, since the
 * new worker has already loaded the state file.
 */
#include "haproxy_runtime.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomic_file.h"
#include "errmsg.h"
#include "haproxy_value.h"
#include "log.h"

/* An answer bigger than this is refused (a 10,000-server state dump is
 * about 2 MiB). */
#define RT_MAX_ANSWER (64u << 20)

struct rt_request {
    struct rt_request *next;
    enum haproxy_socket sock;
    char **cmds;
    size_t n;
    bool reload_step; /* may run while a reload holds the queue */
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
    bool done; /* callback ran */
};

struct rt_backend {
    char *name;
    struct slot_assignment applied;
};

struct haproxy_runtime {
    uv_loop_t *loop;
    char *stats_path, *master_path, *state_path;
    uint64_t cmd_timeout_ms, reload_timeout_ms;
    struct rt_request *head, *tail;
    struct rt_exchange *cur;
    bool reload_active;
    bool freeing;
    struct reload_op *reload_op; /* the reload in flight, if any */
    struct rt_backend *backends;
    size_t n_backends;
    struct haproxy_runtime_stats st;
};

struct reload_op;
static void rt_kick(struct haproxy_runtime *rt);
static void reload_cancel(struct reload_op *op);

/* ---- small helpers ------------------------------------------------------ */

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

/* First line of an answer, for messages (static buffer per call site is
 * not needed: callers copy it right away into err). */
static void first_line(const char *answer, char *buf, size_t len)
{
    size_t n = strcspn(answer, "\n");
    if (n >= len)
        n = len - 1;
    memcpy(buf, answer, n);
    buf[n] = 0;
}

/* ---- exchange ----------------------------------------------------------- */

static void exchange_on_close(uv_handle_t *h)
{
    struct rt_exchange *x = h->data;
    if (--x->pending_closes > 0)
        return;
    struct haproxy_runtime *rt = x->rt;
    request_free(x->req);
    free(x->out);
    free(x->in);
    free(x);
    if (rt) {
        rt->cur = NULL;
        rt_kick(rt);
    }
}

/* Split a prompt-mode stream into answers. Each answer ends with "\n> "
 * right at its start (empty answer) or after a blank line ("\n\n> "); the
 * answer keeps its last "\n". Returns how many answers were complete. */
static size_t split_prompt_answers(char *buf, size_t len, char **answers, size_t want)
{
    size_t pos = 0, k = 0;
    while (k < want && pos < len) {
        if (len - pos >= 3 && memcmp(buf + pos, "\n> ", 3) == 0) {
            buf[pos] = 0;
            answers[k++] = buf + pos;
            pos += 3;
            continue;
        }
        char *end = memmem(buf + pos, len - pos, "\n\n> ", 4);
        if (!end)
            break;
        end[1] = 0; /* keep the answer's own "\n" */
        answers[k++] = buf + pos;
        pos = (size_t)(end - buf) + 4;
    }
    return k;
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
            n_ans = x->in ? split_prompt_answers(x->in, x->in_len, answers, want) : 0;
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

static void exchange_on_timeout(uv_timer_t *t)
{
    struct rt_exchange *x = t->data;
    exchange_finish(x, -ETIMEDOUT, "haproxy: %s %s: no complete answer within %llu ms",
                    sock_name(x->req->sock), exchange_path(x),
                    (unsigned long long)(x->rt ? x->rt->cmd_timeout_ms : 0));
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

static int build_payload(const struct rt_request *req, char **out, size_t *len)
{
    size_t total = 0;
    bool stats = req->sock == HAPROXY_SOCKET_STATS;
    for (size_t i = 0; i < req->n; i++)
        total += strlen(req->cmds[i]) + 1;
    total += stats ? sizeof("prompt\nquit\n") : 1;
    char *p = malloc(total), *w = p;
    if (!p)
        return -ENOMEM;
    if (stats)
        w = stpcpy(w, "prompt\n");
    for (size_t i = 0; i < req->n; i++) {
        w = stpcpy(w, req->cmds[i]);
        *w++ = '\n';
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
    rt->cur = x;
    rt->st.exchanges++;
    if (req->sock == HAPROXY_SOCKET_STATS)
        rt->st.commands_sent += req->n;
    uv_timer_start(&x->timer, exchange_on_timeout, rt->cmd_timeout_ms, 0);
    uv_pipe_connect(&x->connect, &x->pipe, path, exchange_on_connect);
}

/* Start the next runnable request if nothing is in flight. */
static void rt_kick(struct haproxy_runtime *rt)
{
    while (!rt->freeing && !rt->cur && rt->head) {
        struct rt_request **pp = &rt->head, *r;
        if (rt->reload_active) {
            while (*pp && !(*pp)->reload_step)
                pp = &(*pp)->next;
            if (!*pp)
                return;
        }
        r = *pp;
        *pp = r->next;
        if (rt->tail == r) {
            struct rt_request *t = rt->head;
            while (t && t->next)
                t = t->next;
            rt->tail = t;
        }
        r->next = NULL;
        rt->st.queued--;
        rt_start(rt, r);
    }
}

static int rt_enqueue(struct haproxy_runtime *rt, enum haproxy_socket sock, const char *const *cmds,
                      size_t n, bool front, bool reload_step, haproxy_runtime_exec_cb cb, void *arg)
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
    r->reload_step = reload_step;
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

static int check_commands(enum haproxy_socket sock, const char *const *cmds, size_t n)
{
    if (n == 0 || (sock == HAPROXY_SOCKET_MASTER && n != 1))
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (!cmds[i] || !cmds[i][0] || strpbrk(cmds[i], "\r\n"))
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
    return rt_enqueue(rt, sock, cmds, n, false, false, cb, arg);
}

/* ---- lifecycle ---------------------------------------------------------- */

int haproxy_runtime_new(uv_loop_t *loop, const char *stats_socket, const char *master_socket,
                        const char *server_state_file, struct haproxy_runtime **out)
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
    if (!rt->stats_path || (master_socket && !rt->master_path) ||
        (server_state_file && !rt->state_path)) {
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
    if (rt->cur) {
        struct rt_exchange *x = rt->cur;
        exchange_finish(x, -ECANCELED, "haproxy: client shut down");
        x->rt = NULL;
        rt->cur = NULL;
    }
    /* a reload waiting on its poll timer (not on a request) */
    if (rt->reload_op)
        reload_cancel(rt->reload_op);
    for (size_t i = 0; i < rt->n_backends; i++) {
        free(rt->backends[i].name);
        slot_assignment_free(&rt->backends[i].applied);
    }
    free(rt->backends);
    free(rt->stats_path);
    free(rt->master_path);
    free(rt->state_path);
    free(rt);
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

/* ---- answers ------------------------------------------------------------ */

static bool starts_with(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

int haproxy_runtime_check_answer(const char *cmd, const char *answer, char *err, size_t errlen)
{
    const char *p = answer;
    while (*p == '\n' || *p == ' ')
        p++;
    if (!*p)
        return 0;
    /* `set server B/S addr` reports what it changed (or that nothing had
     * to), prefixed by what changed; failures say "Invalid ..." */
    if (starts_with(cmd, "set server ") && strstr(cmd, " addr ") &&
        (starts_with(p, "IP changed from") || starts_with(p, "port changed from") ||
         starts_with(p, "no need to change")))
        return 0;
    if (starts_with(cmd, "show ") &&
        !(starts_with(p, "No such") || starts_with(p, "Can't find") ||
          starts_with(p, "Unknown command") || starts_with(p, "Permission denied")))
        return 0;
    char line[200];
    first_line(p, line, sizeof(line));
    errmsg_set(err, errlen, "haproxy: `%s`: %s", cmd, line);
    return -EINVAL;
}

/* ---- show servers state ------------------------------------------------- */

enum ss_col {
    SS_BE_NAME,
    SS_SRV_NAME,
    SS_ADDR,
    SS_OP,
    SS_ADMIN,
    SS_UWEIGHT,
    SS_IWEIGHT,
    SS_AGENT,
    SS_PORT,
    SS_NCOLS,
};
static const char *const ss_names[SS_NCOLS] = {
    "be_name",     "srv_name",    "srv_addr",        "srv_op_state", "srv_admin_state",
    "srv_uweight", "srv_iweight", "srv_agent_state", "srv_port",
};

#define SS_MAX_FIELDS 64

static size_t split_words(char *line, char **w, size_t max)
{
    size_t n = 0;
    char *save = NULL;
    for (char *t = strtok_r(line, " \t", &save); t && n < max; t = strtok_r(NULL, " \t", &save))
        w[n++] = t;
    return n;
}

static int parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    if (*s == '+') /* HAProxy prints port 0 of a 0.0.0.0:0 server as "+0" at times */
        s++;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -EINVAL;
    *out = v;
    return 0;
}

int haproxy_parse_servers_state(const char *text, size_t len, const char *backend,
                                struct slot_live **out, size_t *n, char *err, size_t errlen)
{
    char *copy = strndup(text, len), *save = NULL;
    int idx[SS_NCOLS];
    bool have_version = false, have_header = false;
    struct slot_live *v = NULL;
    size_t nv = 0, cap = 0, lineno = 0;
    int rc = -EINVAL;

    *out = NULL;
    *n = 0;
    if (!copy)
        return -ENOMEM;
    for (int c = 0; c < SS_NCOLS; c++)
        idx[c] = -1;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *w[SS_MAX_FIELDS];
        size_t nw;
        lineno++;
        if (!have_version) {
            if (strcmp(line, "1") != 0) {
                errmsg_set(err, errlen,
                           "haproxy: show servers state: format version \"%.20s\", expected 1",
                           line);
                goto out;
            }
            have_version = true;
            continue;
        }
        if (line[0] == '#') {
            nw = split_words(line + 1, w, SS_MAX_FIELDS);
            for (size_t i = 0; i < nw; i++)
                for (int c = 0; c < SS_NCOLS; c++)
                    if (strcmp(w[i], ss_names[c]) == 0)
                        idx[c] = (int)i;
            for (int c = 0; c < SS_NCOLS; c++)
                if (idx[c] < 0) {
                    errmsg_set(err, errlen,
                               "haproxy: show servers state: no column %s in the header",
                               ss_names[c]);
                    goto out;
                }
            have_header = true;
            continue;
        }
        if (!have_header) {
            errmsg_set(err, errlen, "haproxy: show servers state: line %zu before the header",
                       lineno);
            goto out;
        }
        nw = split_words(line, w, SS_MAX_FIELDS);
        if (nw == 0)
            continue;
        bool short_line = false;
        for (int c = 0; c < SS_NCOLS; c++)
            short_line |= (size_t)idx[c] >= nw;
        if (short_line) {
            errmsg_set(err, errlen, "haproxy: show servers state: line %zu has %zu fields", lineno,
                       nw);
            goto out;
        }
        if (backend && strcmp(w[idx[SS_BE_NAME]], backend) != 0)
            continue;
        if (nv == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            struct slot_live *nvp = realloc(v, ncap * sizeof(*v));
            if (!nvp) {
                rc = -ENOMEM;
                goto out;
            }
            v = nvp;
            cap = ncap;
        }
        struct slot_live *l = &v[nv];
        long op, adm, uw, iw, ag, port;
        memset(l, 0, sizeof(*l));
        if (strlen(w[idx[SS_SRV_NAME]]) >= sizeof(l->name) ||
            strlen(w[idx[SS_ADDR]]) >= sizeof(l->address) ||
            parse_int(w[idx[SS_OP]], 0, 255, &op) < 0 ||
            parse_int(w[idx[SS_ADMIN]], 0, 0xffff, &adm) < 0 ||
            parse_int(w[idx[SS_UWEIGHT]], 0, 256, &uw) < 0 ||
            parse_int(w[idx[SS_IWEIGHT]], 0, 256, &iw) < 0 ||
            parse_int(w[idx[SS_AGENT]], 0, 0xffff, &ag) < 0 ||
            parse_int(w[idx[SS_PORT]], 0, 65535, &port) < 0) {
            errmsg_set(err, errlen, "haproxy: show servers state: bad field on line %zu", lineno);
            goto out;
        }
        strcpy(l->name, w[idx[SS_SRV_NAME]]);
        strcpy(l->address, w[idx[SS_ADDR]]);
        l->op_state = (int)op;
        l->admin = (unsigned)adm;
        l->uweight = (int)uw;
        l->iweight = (int)iw;
        l->agent_state = (unsigned)ag;
        l->port = (uint16_t)port;
        nv++;
    }
    if (!have_version) {
        errmsg_set(err, errlen, "haproxy: show servers state: empty answer");
        goto out;
    }
    *out = v;
    *n = nv;
    v = NULL;
    rc = 0;
out:
    free(v);
    free(copy);
    return rc;
}

/* Answer of `show servers state <backend>`: "Can't find backend." is
 * -ENOENT, other HAProxy errors -EINVAL, else the parsed servers. */
static int state_answer(const char *cmd, const char *answer, const char *backend,
                        struct slot_live **live, size_t *n, char *err, size_t errlen)
{
    if (starts_with(answer, "Can't find backend") || starts_with(answer, "No such backend")) {
        errmsg_set(err, errlen, "haproxy: `%s`: no backend %s in the running config", cmd, backend);
        return -ENOENT;
    }
    int rc = haproxy_runtime_check_answer(cmd, answer, err, errlen);
    if (rc < 0)
        return rc;
    return haproxy_parse_servers_state(answer, strlen(answer), backend, live, n, err, errlen);
}

/* Check backend and write "show servers state <backend>" to cmd and the
 * name to name (both HAPROXY_VALUE_NAME_MAX-sized buffers or larger). */
static int state_command(const char *backend, char *cmd, size_t len, char *name, size_t name_len)
{
    const char *why;
    if (!backend || haproxy_value_check(HAPROXY_VALUE_NAME, backend, strlen(backend), &why) < 0)
        return -EINVAL;
    int n = snprintf(cmd, len, "show servers state %s", backend);
    if (n < 0 || (size_t)n >= len)
        return -EINVAL;
    n = snprintf(name, name_len, "%s", backend);
    return (n < 0 || (size_t)n >= name_len) ? -EINVAL : 0;
}

/* For the public call the backend filter is the command's own argument,
 * so HAProxy does the filtering; "Can't find backend." becomes -ENOENT. */
struct state_pub {
    haproxy_runtime_state_cb cb;
    void *arg;
    char backend[HAPROXY_VALUE_NAME_MAX + 1];
    char cmd[HAPROXY_VALUE_NAME_MAX + 32];
};

static void state_pub_done(struct haproxy_runtime *rt, int status, const char *const *answers,
                           size_t n, const char *err, void *arg)
{
    struct state_pub *op = arg;
    struct slot_live *live = NULL;
    size_t nl = 0;
    char msg[HAPROXY_RUNTIME_MSG_MAX];
    if (status < 0) {
        op->cb(rt, status, NULL, 0, err, op->arg);
    } else {
        status = state_answer(op->cmd, answers[0], op->backend, &live, &nl, msg, sizeof(msg));
        op->cb(rt, status, live, nl, status < 0 ? msg : "", op->arg);
    }
    free(live);
    free(op);
}

int haproxy_runtime_show_servers_state(struct haproxy_runtime *rt, const char *backend,
                                       haproxy_runtime_state_cb cb, void *arg)
{
    struct state_pub *op = calloc(1, sizeof(*op));
    if (!op)
        return -ENOMEM;
    if (state_command(backend, op->cmd, sizeof(op->cmd), op->backend, sizeof(op->backend)) < 0) {
        free(op);
        return -EINVAL;
    }
    op->cb = cb;
    op->arg = arg;
    const char *cmds[] = {op->cmd};
    int rc = rt_enqueue(rt, HAPROXY_SOCKET_STATS, cmds, 1, false, false, state_pub_done, op);
    if (rc < 0)
        free(op);
    return rc;
}

/* ---- apply -------------------------------------------------------------- */

static struct rt_backend *backend_get(struct haproxy_runtime *rt, const char *name, bool create)
{
    for (size_t i = 0; i < rt->n_backends; i++)
        if (strcmp(rt->backends[i].name, name) == 0)
            return &rt->backends[i];
    if (!create)
        return NULL;
    struct rt_backend *v = realloc(rt->backends, (rt->n_backends + 1) * sizeof(*v));
    if (!v)
        return NULL;
    rt->backends = v;
    struct rt_backend *b = &v[rt->n_backends];
    b->name = strdup(name);
    if (!b->name)
        return NULL;
    slot_assignment_init(&b->applied);
    rt->n_backends++;
    return b;
}

const struct slot_assignment *haproxy_runtime_applied(const struct haproxy_runtime *rt,
                                                      const char *backend)
{
    for (size_t i = 0; i < rt->n_backends; i++)
        if (strcmp(rt->backends[i].name, backend) == 0)
            return rt->backends[i].applied.nslots || rt->backends[i].applied.slots
                       ? &rt->backends[i].applied
                       : NULL;
    return NULL;
}

void haproxy_runtime_forget(struct haproxy_runtime *rt, const char *backend)
{
    struct rt_backend *b = backend_get(rt, backend, false);
    if (b)
        slot_assignment_free(&b->applied);
}

struct apply_op {
    haproxy_runtime_apply_cb cb;
    void *arg;
    char backend[HAPROXY_VALUE_NAME_MAX + 1];
    char cmd[HAPROXY_VALUE_NAME_MAX + 32];
    struct slot_assignment a;
    struct slot_cmds cmds;
    struct haproxy_apply_result res;
    bool reload_step;  /* part of a reload: runs while the reload holds the queue */
    bool restore_only; /* after a reload: only slots the state file broke */
};

static void apply_finish(struct haproxy_runtime *rt, struct apply_op *op)
{
    if (rt) {
        if (op->res.status == 0 && op->restore_only) {
            /* applied stays: the slots left alone follow the new config */
        } else if (op->res.status == 0) {
            rt->st.applies_ok++;
            struct rt_backend *b = backend_get(rt, op->backend, true);
            if (b) {
                slot_assignment_free(&b->applied);
                b->applied = op->a; /* ownership moves */
                slot_assignment_init(&op->a);
            }
        } else {
            if (!op->restore_only)
                rt->st.applies_failed++;
            haproxy_runtime_forget(rt, op->backend);
        }
    }
    if (op->cb)
        op->cb(rt, &op->res, op->arg);
    slot_assignment_free(&op->a);
    slot_cmds_free(&op->cmds);
    free(op);
}

static void apply_cmds_done(struct haproxy_runtime *rt, int status, const char *const *answers,
                            size_t n, const char *err, void *arg)
{
    struct apply_op *op = arg;
    op->res.commands = op->cmds.n;
    if (status < 0) {
        op->res.status = status;
        snprintf(op->res.message, sizeof(op->res.message), "%s", err);
        apply_finish(rt, op);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        char msg[HAPROXY_RUNTIME_MSG_MAX];
        if (haproxy_runtime_check_answer(op->cmds.v[i].text, answers[i], msg, sizeof(msg)) == 0)
            continue;
        if (rt)
            rt->st.command_errors++;
        if (op->res.failed_commands++ == 0) {
            op->res.status = -EINVAL;
            snprintf(op->res.message, sizeof(op->res.message), "%s", msg);
        }
    }
    if (op->res.failed_commands > 1) {
        size_t l = strlen(op->res.message);
        snprintf(op->res.message + l, sizeof(op->res.message) - l, " (and %zu more failed)",
                 op->res.failed_commands - 1);
    }
    apply_finish(rt, op);
}

/*
 * After a reload, keep only the commands for slots that HAProxy restored
 * serving (not in maintenance) at an unspecified address while the applied
 * assignment has a server there: the state file carried the slot's port and
 * admin state but not its address (haproxy/haproxy#3265), so it would send
 * traffic to 0.0.0.0 in port-mapping mode. Every other slot shows what the
 * new config says; the caller's next apply decides about those (the config
 * may carry a newer placement than the one applied before the reload).
 */
static void keep_restorable(struct apply_op *op, const struct slot_live *live, size_t nl)
{
    size_t w = 0;
    for (size_t i = 0; i < op->cmds.n; i++) {
        size_t s = op->cmds.v[i].slot;
        char name[32];
        bool keep = false;
        slots_name(s, name, sizeof(name));
        for (size_t k = 0; k < nl && !keep; k++) {
            const struct slot_live *l = &live[k];
            keep = strcmp(l->name, name) == 0 && s < op->a.nslots && op->a.slots[s].used &&
                   !(l->admin & SLOTS_ADMF_MAINT) &&
                   (strcmp(l->address, "0.0.0.0") == 0 || strcmp(l->address, "::") == 0);
        }
        if (keep)
            op->cmds.v[w++] = op->cmds.v[i];
    }
    op->cmds.n = w;
}

static void apply_state_done(struct haproxy_runtime *rt, int status, const char *const *answers,
                             size_t n, const char *err, void *arg)
{
    struct apply_op *op = arg;
    struct slot_live *live = NULL;
    size_t nl = 0;

    if (status < 0) {
        op->res.status = status;
        snprintf(op->res.message, sizeof(op->res.message), "%s", err);
        apply_finish(rt, op);
        return;
    }
    status = state_answer(op->cmd, answers[0], op->backend, &live, &nl, op->res.message,
                          sizeof(op->res.message));
    if (status == 0) {
        struct rt_backend *b = backend_get(rt, op->backend, false);
        const struct slot_assignment *applied = b && b->applied.slots ? &b->applied : NULL;
        status = slots_diff(op->backend, &op->a, applied, live, nl, &op->cmds, op->res.message,
                            sizeof(op->res.message));
        if (status == 0 && op->restore_only)
            keep_restorable(op, live, nl);
    }
    free(live);
    if (status == 0 && op->cmds.n > 0) {
        const char **cmds = calloc(op->cmds.n, sizeof(*cmds));
        status = -ENOMEM;
        if (cmds) {
            for (size_t i = 0; i < op->cmds.n; i++)
                cmds[i] = op->cmds.v[i].text;
            /* front: nothing may run between the dump and these commands */
            status = rt_enqueue(rt, HAPROXY_SOCKET_STATS, cmds, op->cmds.n, true, op->reload_step,
                                apply_cmds_done, op);
            free(cmds);
        }
        if (status == 0)
            return;
        snprintf(op->res.message, sizeof(op->res.message),
                 "haproxy: out of memory queueing %zu commands for backend %s", op->cmds.n,
                 op->backend);
    }
    op->res.status = status;
    apply_finish(rt, op);
}

static int apply_start(struct haproxy_runtime *rt, const char *backend,
                       const struct slot_assignment *a, bool reload_step, bool restore_only,
                       haproxy_runtime_apply_cb cb, void *arg)
{
    struct apply_op *op = calloc(1, sizeof(*op));
    int rc;
    if (!op)
        return -ENOMEM;
    slot_assignment_init(&op->a);
    if (state_command(backend, op->cmd, sizeof(op->cmd), op->backend, sizeof(op->backend)) < 0) {
        free(op);
        return -EINVAL;
    }
    op->cb = cb;
    op->arg = arg;
    op->reload_step = reload_step;
    op->restore_only = restore_only;
    rc = slot_assignment_copy(&op->a, a);
    if (rc == 0) {
        const char *cmds[] = {op->cmd};
        rc = rt_enqueue(rt, HAPROXY_SOCKET_STATS, cmds, 1, reload_step, reload_step,
                        apply_state_done, op);
    }
    if (rc < 0) {
        slot_assignment_free(&op->a);
        free(op);
    }
    return rc;
}

int haproxy_runtime_apply(struct haproxy_runtime *rt, const char *backend,
                          const struct slot_assignment *a, haproxy_runtime_apply_cb cb, void *arg)
{
    return apply_start(rt, backend, a, false, false, cb, arg);
}

/* ---- state file filter --------------------------------------------------- */

enum sf_col { SF_BE, SF_SRV, SF_ADDR, SF_PORT, SF_ADMIN, SF_NCOLS };
static const char *const sf_names[SF_NCOLS] = {"be_name", "srv_name", "srv_addr", "srv_port",
                                               "srv_admin_state"};

/* Keep a state line of a placed backend? See haproxy_runtime_reload_placed. */
static bool sf_keep(const struct slot_assignment *a, char **w, const int *idx)
{
    size_t s;
    long port, admin;
    if (slots_parse_name(w[idx[SF_SRV]], &s) < 0 || s >= a->nslots)
        return true; /* not a slot of this placement: HAProxy sorts it out */
    if (parse_int(w[idx[SF_PORT]], 0, 65535, &port) < 0 ||
        parse_int(w[idx[SF_ADMIN]], 0, 0xffff, &admin) < 0)
        return false;
    if (!a->slots[s].used)
        return admin & SLOTS_ADMF_FMAINT;
    const struct slot_server *d = &a->slots[s].srv;
    char ip[64];
    size_t iplen;
    const char *why;
    if (haproxy_value_format(HAPROXY_VALUE_IP, d->address, strlen(d->address), ip, sizeof(ip),
                             &iplen, &why) < 0)
        return false;
    return strcmp(w[idx[SF_ADDR]], ip) == 0 && port == d->port;
}

int haproxy_state_filter(const char *text, size_t len, const struct haproxy_placement *p, size_t n,
                         char **out, size_t *dropped)
{
    char *res = malloc(len + 1), *w_at = res;
    char *line_copy = NULL;
    int idx[SF_NCOLS];
    bool have_version = false, have_header = false;
    size_t pos = 0;
    int rc = -EINVAL;

    *out = NULL;
    *dropped = 0;
    if (!res)
        return -ENOMEM;
    for (int c = 0; c < SF_NCOLS; c++)
        idx[c] = -1;
    while (pos < len) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t ll = nl ? (size_t)(nl - line) : len - pos;
        size_t with_nl = nl ? ll + 1 : ll;
        bool keep = true;

        pos += with_nl;
        free(line_copy);
        line_copy = strndup(line, ll);
        if (!line_copy) {
            rc = -ENOMEM;
            goto out;
        }
        if (!have_version) {
            if (strcmp(line_copy, "1") != 0)
                goto out;
            have_version = true;
        } else if (line_copy[0] == '#') {
            char *w[SS_MAX_FIELDS];
            size_t nw = split_words(line_copy + 1, w, SS_MAX_FIELDS);
            for (size_t i = 0; i < nw; i++)
                for (int c = 0; c < SF_NCOLS; c++)
                    if (strcmp(w[i], sf_names[c]) == 0)
                        idx[c] = (int)i;
            for (int c = 0; c < SF_NCOLS; c++)
                if (idx[c] < 0)
                    goto out;
            have_header = true;
        } else if (ll > 0) {
            char *w[SS_MAX_FIELDS];
            size_t nw;
            if (!have_header)
                goto out;
            nw = split_words(line_copy, w, SS_MAX_FIELDS);
            for (int c = 0; c < SF_NCOLS && nw; c++)
                if ((size_t)idx[c] >= nw)
                    goto out;
            for (size_t i = 0; nw && i < n; i++)
                if (strcmp(w[idx[SF_BE]], p[i].backend) == 0) {
                    keep = sf_keep(p[i].a, w, idx);
                    break;
                }
        }
        if (keep) {
            memcpy(w_at, line, with_nl);
            w_at += with_nl;
        } else {
            (*dropped)++;
        }
    }
    if (!have_version)
        goto out;
    *w_at = 0;
    *out = res;
    res = NULL;
    rc = 0;
out:
    free(line_copy);
    free(res);
    return rc;
}

/* ---- show proc ---------------------------------------------------------- */

void haproxy_proc_list_free(struct haproxy_proc_list *l)
{
    free(l->workers);
    memset(l, 0, sizeof(*l));
}

enum proc_col { PC_PID, PC_TYPE, PC_RELPID, PC_RELOADS, PC_UPTIME, PC_VERSION, PC_OTHER };

int haproxy_parse_show_proc(const char *text, size_t len, struct haproxy_proc_list *out, char *err,
                            size_t errlen)
{
    char *copy = strndup(text, len), *save = NULL;
    enum proc_col cols[16];
    size_t ncols = 0, cap = 0;
    bool have_master = false;
    int section = 0; /* 0 master, 1 workers, 2 programs/other */
    int rc = -EINVAL;

    memset(out, 0, sizeof(*out));
    if (!copy)
        return -ENOMEM;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *w[24];
        size_t nw;
        if (line[0] == '#') {
            if (strncmp(line, "#<", 2) == 0) {
                /* header: "#<PID> <type> [<relative PID>] <reloads> <uptime> <version>" */
                char *r = strstr(line, "<relative PID>");
                if (r)
                    r[9] = '_';
                nw = split_words(line + 1, w, 16);
                ncols = 0;
                for (size_t i = 0; i < nw; i++) {
                    enum proc_col c = PC_OTHER;
                    if (strcmp(w[i], "<PID>") == 0)
                        c = PC_PID;
                    else if (strcmp(w[i], "<type>") == 0)
                        c = PC_TYPE;
                    else if (strcmp(w[i], "<relative_PID>") == 0)
                        c = PC_RELPID;
                    else if (strcmp(w[i], "<reloads>") == 0)
                        c = PC_RELOADS;
                    else if (strcmp(w[i], "<uptime>") == 0)
                        c = PC_UPTIME;
                    else if (strcmp(w[i], "<version>") == 0)
                        c = PC_VERSION;
                    cols[ncols++] = c;
                }
            } else if (strstr(line, "workers")) {
                section = 1;
            } else {
                section = 2;
            }
            continue;
        }
        if (section == 2)
            continue;
        if (ncols == 0) {
            errmsg_set(err, errlen, "haproxy: show proc: process line before the header");
            goto out;
        }
        nw = split_words(line, w, 24);
        if (nw == 0)
            continue;
        struct haproxy_proc p;
        memset(&p, 0, sizeof(p));
        size_t wi = 0;
        for (size_t c = 0; c < ncols && wi < nw; c++, wi++) {
            long v;
            switch (cols[c]) {
            case PC_PID:
                if (parse_int(w[wi], 1, 0x7fffffff, &v) < 0)
                    goto bad;
                p.pid = (int)v;
                break;
            case PC_TYPE:
                snprintf(p.type, sizeof(p.type), "%s", w[wi]);
                break;
            case PC_RELPID:
                if (parse_int(w[wi], 0, 0x7fffffff, &v) == 0)
                    p.relative_pid = (int)v;
                break;
            case PC_RELOADS:
                if (parse_int(w[wi], 0, 0x7fffffff, &v) < 0)
                    goto bad;
                p.reloads = (int)v;
                /* the master adds "[failed: N]" */
                if (wi + 2 < nw && strcmp(w[wi + 1], "[failed:") == 0) {
                    char *end;
                    long f = strtol(w[wi + 2], &end, 10);
                    if (end == w[wi + 2] || strcmp(end, "]") != 0 || f < 0)
                        goto bad;
                    p.failed_reloads = (int)f;
                    wi += 2;
                }
                break;
            case PC_UPTIME:
                snprintf(p.uptime, sizeof(p.uptime), "%s", w[wi]);
                break;
            case PC_VERSION:
                snprintf(p.version, sizeof(p.version), "%s", w[wi]);
                break;
            case PC_OTHER:
                break;
            }
        }
        if (!p.pid)
            goto bad;
        if (strcmp(p.type, "master") == 0) {
            out->master = p;
            have_master = true;
        } else if (strcmp(p.type, "worker") == 0) {
            if (out->n_workers == cap) {
                size_t ncap = cap ? cap * 2 : 4;
                struct haproxy_proc *nv = realloc(out->workers, ncap * sizeof(*nv));
                if (!nv) {
                    rc = -ENOMEM;
                    goto out;
                }
                out->workers = nv;
                cap = ncap;
            }
            out->workers[out->n_workers++] = p;
        }
        continue;
    bad:
        errmsg_set(err, errlen, "haproxy: show proc: cannot parse \"%.80s\"", line);
        goto out;
    }
    if (!have_master) {
        errmsg_set(err, errlen, "haproxy: show proc: no master line");
        goto out;
    }
    rc = 0;
out:
    if (rc < 0)
        haproxy_proc_list_free(out);
    free(copy);
    return rc;
}

struct proc_op {
    haproxy_runtime_proc_cb cb;
    void *arg;
};

static void proc_done(struct haproxy_runtime *rt, int status, const char *const *answers, size_t n,
                      const char *err, void *arg)
{
    struct proc_op *op = arg;
    struct haproxy_proc_list l = {0};
    char msg[HAPROXY_RUNTIME_MSG_MAX];
    if (status < 0) {
        op->cb(rt, status, NULL, err, op->arg);
    } else {
        status = haproxy_parse_show_proc(answers[0], strlen(answers[0]), &l, msg, sizeof(msg));
        op->cb(rt, status, status == 0 ? &l : NULL, status < 0 ? msg : "", op->arg);
        haproxy_proc_list_free(&l);
    }
    free(op);
}

static int show_proc_internal(struct haproxy_runtime *rt, bool front, bool reload_step,
                              haproxy_runtime_proc_cb cb, void *arg)
{
    if (!rt->master_path)
        return -ENOTSUP;
    struct proc_op *op = calloc(1, sizeof(*op));
    if (!op)
        return -ENOMEM;
    op->cb = cb;
    op->arg = arg;
    const char *cmds[] = {"show proc"};
    int rc = rt_enqueue(rt, HAPROXY_SOCKET_MASTER, cmds, 1, front, reload_step, proc_done, op);
    if (rc < 0)
        free(op);
    return rc;
}

int haproxy_runtime_show_proc(struct haproxy_runtime *rt, haproxy_runtime_proc_cb cb, void *arg)
{
    return show_proc_internal(rt, false, false, cb, arg);
}

/* ---- reload ------------------------------------------------------------- */

struct rt_placed {
    char *backend;
    struct slot_assignment a;
};

struct reload_op {
    struct haproxy_runtime *rt;
    haproxy_runtime_reload_cb cb;
    void *arg;
    struct haproxy_reload_result res;
    int *old_pids;
    size_t n_old;
    uint64_t started, deadline;
    uv_timer_t poll;
    bool poll_init;
    size_t reapply_next;      /* index into rt->backends */
    struct rt_placed *placed; /* haproxy_runtime_reload_placed */
    size_t n_placed, placed_next;
    char done_msg[HAPROXY_RUNTIME_MSG_MAX];
    char last_err[HAPROXY_RUNTIME_MSG_MAX];
};

static void reload_reapply_next(struct reload_op *op);

static void reload_op_free(struct reload_op *op)
{
    for (size_t i = 0; i < op->n_placed; i++) {
        free(op->placed[i].backend);
        slot_assignment_free(&op->placed[i].a);
    }
    free(op->placed);
    free(op->old_pids);
    free(op);
}

static void reload_free(uv_handle_t *h)
{
    reload_op_free(h->data);
}

static void reload_finish(struct reload_op *op, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void reload_finish(struct reload_op *op, int status, const char *fmt, ...)
{
    struct haproxy_runtime *rt = op->rt;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(op->res.message, sizeof(op->res.message), fmt, ap);
    va_end(ap);
    op->res.status = status;
    if (rt) {
        op->res.elapsed_ms = uv_now(rt->loop) - op->started;
        if (rt->reload_op == op) {
            rt->reload_active = false;
            rt->reload_op = NULL;
        }
        if (status == 0)
            rt->st.reloads_ok++;
        else
            rt->st.reloads_failed++;
    }
    if (status == 0)
        log_info("%s", op->res.message);
    else
        log_error("%s", op->res.message);
    if (op->cb)
        op->cb(rt, &op->res, op->arg);
    if (op->poll_init) {
        uv_timer_stop(&op->poll);
        uv_close((uv_handle_t *)&op->poll, reload_free);
    } else {
        reload_op_free(op);
    }
    if (rt)
        rt_kick(rt); /* requests held back during the reload */
}

static void reload_poll_proc(struct haproxy_runtime *rt, int status,
                             const struct haproxy_proc_list *procs, const char *err, void *arg);

static void reload_poll_tick(uv_timer_t *t)
{
    struct reload_op *op = t->data;
    int rc = show_proc_internal(op->rt, true, true, reload_poll_proc, op);
    if (rc < 0)
        reload_finish(op, rc, "haproxy: reload: cannot queue show proc: %s", strerror(-rc));
}

static void reload_poll_proc(struct haproxy_runtime *rt, int status,
                             const struct haproxy_proc_list *procs, const char *err, void *arg)
{
    struct reload_op *op = arg;
    if (status == -ECANCELED) {
        reload_finish(op, status, "%s; reload not verified", err);
        return;
    }
    if (status == 0) {
        op->res.reloads_after = procs->master.reloads;
        op->res.failed_after = procs->master.failed_reloads;
        if (procs->master.failed_reloads > op->res.failed_before) {
            reload_finish(op, -EIO,
                          "haproxy: reload failed: the master counts %d failed reloads (was "
                          "%d); the previous workers keep serving",
                          procs->master.failed_reloads, op->res.failed_before);
            return;
        }
        if (procs->master.reloads > op->res.reloads_before) {
            for (size_t i = 0; i < procs->n_workers; i++) {
                bool old = false;
                for (size_t j = 0; j < op->n_old; j++)
                    old |= procs->workers[i].pid == op->old_pids[j];
                if (!old) {
                    op->res.new_worker_pid = procs->workers[i].pid;
                    snprintf(op->done_msg, sizeof(op->done_msg),
                             "haproxy: reload %d done: new worker pid %d after %llu ms "
                             "(%zu worker(s) listed)",
                             procs->master.reloads, procs->workers[i].pid,
                             (unsigned long long)(uv_now(rt->loop) - op->started),
                             procs->n_workers);
                    reload_reapply_next(op);
                    return;
                }
            }
        }
    } else {
        /* the master re-executes during a reload: its CLI may be gone for
         * a moment */
        snprintf(op->last_err, sizeof(op->last_err), "%s", err);
    }
    if (uv_now(rt->loop) >= op->deadline) {
        reload_finish(op, -ETIMEDOUT,
                      "haproxy: reload not confirmed within %llu ms: master reloads %d -> %d, "
                      "no new worker in show proc%s%s",
                      (unsigned long long)rt->reload_timeout_ms, op->res.reloads_before,
                      op->res.reloads_after, op->last_err[0] ? "; last error: " : "", op->last_err);
        return;
    }
    uv_timer_start(&op->poll, reload_poll_tick, HAPROXY_RUNTIME_PROC_POLL_MS, 0);
}

static void reload_sent(struct haproxy_runtime *rt, int status, const char *const *answers,
                        size_t n, const char *err, void *arg)
{
    struct reload_op *op = arg;
    /* Connect failures mean no reload was asked for; anything after that
     * (closed mid-answer, timeout) may still have reloaded: verify. */
    if (status == -ENOENT || status == -ECONNREFUSED || status == -ECANCELED) {
        reload_finish(op, status, "%s; nothing reloaded", err);
        return;
    }
    if (status == 0 && n > 0 && answers[0][0] && strncmp(answers[0], "\n", 1) != 0)
        log_warn("haproxy: master CLI answered reload with \"%.100s\"; verifying with show proc",
                 answers[0]);
    uv_timer_start(&op->poll, reload_poll_tick, HAPROXY_RUNTIME_PROC_POLL_MS, 0);
}

static void reload_send(struct reload_op *op)
{
    const char *cmds[] = {"reload"};
    int rc = rt_enqueue(op->rt, HAPROXY_SOCKET_MASTER, cmds, 1, true, true, reload_sent, op);
    if (rc < 0)
        reload_finish(op, rc, "haproxy: reload: cannot queue the reload command");
}

static void reload_state_dumped(struct haproxy_runtime *rt, int status, const char *const *answers,
                                size_t n, const char *err, void *arg)
{
    struct reload_op *op = arg;
    char msg[HAPROXY_RUNTIME_MSG_MAX];
    struct slot_live *live = NULL;
    size_t nl = 0;

    if (status < 0) {
        reload_finish(op, status, "%s; not reloading (runtime state would be lost)", err);
        return;
    }
    /* Make sure it is a state dump before HAProxy reads it back. */
    status = haproxy_parse_servers_state(answers[0], strlen(answers[0]), NULL, &live, &nl, msg,
                                         sizeof(msg));
    free(live);
    if (status < 0) {
        reload_finish(op, status, "%s; not reloading (runtime state would be lost)", msg);
        return;
    }
    char *filtered = NULL;
    size_t dropped = 0;
    if (op->n_placed) {
        struct haproxy_placement *pl = calloc(op->n_placed, sizeof(*pl));
        status = pl ? 0 : -ENOMEM;
        for (size_t i = 0; pl && i < op->n_placed; i++)
            pl[i] = (struct haproxy_placement){op->placed[i].backend, &op->placed[i].a};
        if (pl)
            status = haproxy_state_filter(answers[0], strlen(answers[0]), pl, op->n_placed,
                                          &filtered, &dropped);
        free(pl);
        if (status < 0) {
            reload_finish(op, status,
                          "haproxy: cannot filter the server state for the new placement: %s; "
                          "not reloading",
                          strerror(-status));
            return;
        }
        if (dropped)
            log_info("haproxy: %zu slot(s) taken from the new config, not from the state file",
                     dropped);
    }
    const char *text = filtered ? filtered : answers[0];
    status = atomic_file_write(rt->state_path, text, strlen(text), 0600);
    free(filtered);
    if (status < 0) {
        reload_finish(op, status,
                      "haproxy: cannot write server-state file %s: %s; not reloading (runtime "
                      "state would be lost)",
                      rt->state_path, strerror(-status));
        return;
    }
    op->res.state_saved = true;
    reload_send(op);
}

static void reload_baseline(struct haproxy_runtime *rt, int status,
                            const struct haproxy_proc_list *procs, const char *err, void *arg)
{
    struct reload_op *op = arg;
    if (status < 0) {
        reload_finish(op, status, "%s; not reloading", err);
        return;
    }
    op->res.reloads_before = op->res.reloads_after = procs->master.reloads;
    op->res.failed_before = op->res.failed_after = procs->master.failed_reloads;
    op->old_pids = calloc(procs->n_workers ? procs->n_workers : 1, sizeof(int));
    if (!op->old_pids) {
        reload_finish(op, -ENOMEM, "haproxy: reload: out of memory");
        return;
    }
    for (size_t i = 0; i < procs->n_workers; i++)
        op->old_pids[i] = procs->workers[i].pid;
    op->n_old = procs->n_workers;
    op->deadline = uv_now(rt->loop) + rt->reload_timeout_ms;
    /* From here on only this reload's exchanges run (a second reload asked
     * meanwhile waits with its baseline in the queue). */
    rt->reload_active = true;
    rt->reload_op = op;
    if (rt->state_path) {
        const char *cmds[] = {"show servers state"};
        int rc = rt_enqueue(rt, HAPROXY_SOCKET_STATS, cmds, 1, true, true, reload_state_dumped, op);
        if (rc < 0)
            reload_finish(op, rc, "haproxy: reload: cannot queue the state dump");
        return;
    }
    reload_send(op);
}

int haproxy_runtime_reload(struct haproxy_runtime *rt, haproxy_runtime_reload_cb cb, void *arg)
{
    return haproxy_runtime_reload_placed(rt, NULL, 0, cb, arg);
}

int haproxy_runtime_reload_placed(struct haproxy_runtime *rt, const struct haproxy_placement *p,
                                  size_t n, haproxy_runtime_reload_cb cb, void *arg)
{
    if (!rt->master_path)
        return -ENOTSUP;
    struct reload_op *op = calloc(1, sizeof(*op));
    if (!op)
        return -ENOMEM;
    if (n) {
        op->placed = calloc(n, sizeof(*op->placed));
        if (!op->placed) {
            free(op);
            return -ENOMEM;
        }
    }
    for (size_t i = 0; i < n; i++) {
        const char *why;
        struct rt_placed *d = &op->placed[op->n_placed];
        if (!p[i].backend || !p[i].a ||
            haproxy_value_check(HAPROXY_VALUE_NAME, p[i].backend, strlen(p[i].backend), &why) < 0) {
            reload_op_free(op);
            return -EINVAL;
        }
        slot_assignment_init(&d->a);
        d->backend = strdup(p[i].backend);
        op->n_placed++;
        if (!d->backend || slot_assignment_copy(&d->a, p[i].a) < 0) {
            reload_op_free(op);
            return -ENOMEM;
        }
    }
    op->rt = rt;
    op->cb = cb;
    op->arg = arg;
    op->started = uv_now(rt->loop);
    int rc = uv_timer_init(rt->loop, &op->poll);
    if (rc < 0) {
        reload_op_free(op);
        return rc;
    }
    op->poll.data = op;
    op->poll_init = true;
    /* The baseline waits its turn behind queued work; from then on the
     * reload holds the queue. */
    rc = show_proc_internal(rt, false, false, reload_baseline, op);
    if (rc < 0) {
        uv_close((uv_handle_t *)&op->poll, reload_free);
        return rc;
    }
    return 0;
}

/* HAProxy 2.6 does not restore the address of a server written with an IP
 * literal from the server-state file (port, weights and admin/agent state
 * it does restore; haproxy/haproxy#3265), whatever init-addr says. So once
 * the new worker runs, still holding the queue, every backend with an
 * applied assignment gets the address of each slot that came back serving
 * at 0.0.0.0 (keep_restorable); nothing else is touched. */
static void reload_reapplied(struct haproxy_runtime *rt, const struct haproxy_apply_result *res,
                             void *arg)
{
    struct reload_op *op = arg;
    op->res.reapplied_commands += res->commands;
    if (res->status < 0) {
        op->res.reapply_failed++;
        log_warn("haproxy: re-applying slots after the reload failed: %s; the next apply "
                 "compares with the live state",
                 res->message);
    }
    if (res->status == -ECANCELED) {
        reload_finish(op, -ECANCELED, "%s; re-apply cancelled", op->done_msg);
        return;
    }
    reload_reapply_next(op);
}

static bool reload_placed_has(const struct reload_op *op, const char *backend)
{
    for (size_t i = 0; i < op->n_placed; i++)
        if (strcmp(op->placed[i].backend, backend) == 0)
            return true;
    return false;
}

static void reload_reapply_next(struct reload_op *op)
{
    struct haproxy_runtime *rt = op->rt;
    while (op->placed_next < op->n_placed) {
        struct rt_placed *p = &op->placed[op->placed_next++];
        int rc = apply_start(rt, p->backend, &p->a, true, false, reload_reapplied, op);
        if (rc == 0)
            return;
        op->res.reapply_failed++;
        haproxy_runtime_forget(rt, p->backend);
    }
    while (op->reapply_next < rt->n_backends) {
        struct rt_backend *b = &rt->backends[op->reapply_next++];
        if (!b->applied.slots || reload_placed_has(op, b->name))
            continue;
        int rc = apply_start(rt, b->name, &b->applied, true, true, reload_reapplied, op);
        if (rc == 0)
            return;
        op->res.reapply_failed++;
        haproxy_runtime_forget(rt, b->name);
    }
    reload_finish(op, 0, "%s; %zu command(s) re-applied%s", op->done_msg,
                  op->res.reapplied_commands,
                  op->res.reapply_failed ? ", some backends failed (see above)" : "");
}

static void reload_cancel(struct reload_op *op)
{
    reload_finish(op, -ECANCELED, "haproxy: reload: client shut down before it was verified");
}
