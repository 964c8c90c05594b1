/* SPDX-License-Identifier: Apache-2.0 */
/* fake_http: see fake_http.h. Test code: allocation failures abort. */
#include "fake_http.h"

#include <errno.h>
#include <http_parser.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct conn;

struct fake_http {
    uv_tcp_t listener;
    fake_http_handler handler;
    void *arg;
    unsigned seq;
    struct conn *conns;
    struct pending *pendings;
    unsigned open; /* listener + connections + timers not yet closed */
    bool stopping;
    atomic_uint sent; /* replies written, read by other threads */
};

struct pending {
    struct pending *next;
    struct conn *conn;
    uv_timer_t timer;
    char *data;
    size_t len;
};

struct conn {
    uv_tcp_t tcp;
    struct fake_http *srv;
    struct conn *next;
    http_parser parser;
    struct fake_http_req req;
    size_t body_cap;
    char hdr_field[64];
    bool in_token;
    bool in_accept_encoding;
    bool closing;
    unsigned refs; /* the tcp handle + delayed replies not yet fired */
};

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n);
    if (!p)
        abort();
    return p;
}

static void srv_unref(struct fake_http *s)
{
    if (--s->open == 0)
        free(s);
}

static void conn_unref(struct conn *c)
{
    if (--c->refs > 0)
        return;
    struct fake_http *s = c->srv;
    for (struct conn **pp = &s->conns; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    free(c->req.body);
    free(c);
    srv_unref(s);
}

static void conn_closed(uv_handle_t *h)
{
    conn_unref(h->data);
}

static void conn_close(struct conn *c)
{
    if (!c->closing) {
        c->closing = true;
        uv_close((uv_handle_t *)&c->tcp, conn_closed);
    }
}

static void write_done(uv_write_t *w, int status)
{
    struct conn *c = w->handle->data;

    if (status == 0)
        atomic_fetch_add(&c->srv->sent, 1);
    free(w->data);
    free(w);
}

static void send_bytes(struct conn *c, char *data, size_t len)
{
    if (c->closing) {
        free(data);
        return;
    }
    uv_write_t *w = xrealloc(NULL, sizeof(*w));
    uv_buf_t b = uv_buf_init(data, (unsigned)len);
    w->data = data;
    if (uv_write(w, (uv_stream_t *)&c->tcp, &b, 1, write_done) != 0) {
        free(data);
        free(w);
        conn_close(c);
    }
}

static void pending_closed(uv_handle_t *h)
{
    struct pending *p = h->data;
    struct fake_http *s = p->conn->srv;
    for (struct pending **pp = &s->pendings; *pp; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    }
    conn_unref(p->conn);
    free(p->data);
    free(p);
}

static void pending_fire(uv_timer_t *t)
{
    struct pending *p = t->data;
    send_bytes(p->conn, p->data, p->len);
    p->data = NULL;
    uv_close((uv_handle_t *)&p->timer, pending_closed);
}

static const char *reason(int st)
{
    switch (st) {
    case 200:
        return "OK";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 409:
        return "Conflict";
    case 500:
        return "Internal Server Error";
    default:
        return "Whatever";
    }
}

static int on_message_complete(http_parser *p)
{
    struct conn *c = p->data;
    struct fake_http *s = c->srv;
    struct fake_http_reply r = {0};
    snprintf(c->req.method, sizeof(c->req.method), "%s", http_method_str(p->method));
    if (!c->req.body)
        c->req.body = xrealloc(NULL, 1);
    c->req.body[c->req.body_len] = '\0';
    c->req.seq = s->seq++;
    s->handler(s->arg, &c->req, &r);
    int st = r.status ? r.status : 200;
    const char *body = r.body ? r.body : "";
    char *out = NULL;
    char idx[80] = "";
    if (r.has_index)
        snprintf(idx, sizeof(idx), "%s: %" PRIu64 "\r\n",
                 r.lowercase_header ? "x-consul-index" : "X-Consul-Index", r.index);
    int n = asprintf(&out,
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n%s%s"
                     "Content-Length: %zu\r\n\r\n%s",
                     st, reason(st), idx, r.headers ? r.headers : "", strlen(body), body);
    free(r.body);
    if (n < 0)
        abort();
    /* reset for the next request on this connection */
    free(c->req.body);
    c->req.body = NULL;
    c->req.body_len = 0;
    c->body_cap = 0;
    c->req.url[0] = c->req.token[0] = c->req.accept_encoding[0] = '\0';
    if (r.hang) {
        free(out);
        return 0;
    }
    if (r.delay_ms) {
        struct pending *pd = xrealloc(NULL, sizeof(*pd));
        pd->conn = c;
        pd->data = out;
        pd->len = (size_t)n;
        uv_timer_init(c->tcp.loop, &pd->timer);
        pd->timer.data = pd;
        pd->next = s->pendings;
        s->pendings = pd;
        c->refs++;
        uv_timer_start(&pd->timer, pending_fire, r.delay_ms, 0);
        return 0;
    }
    send_bytes(c, out, (size_t)n);
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    size_t cur = strlen(c->req.url);
    if (cur + len < sizeof(c->req.url)) {
        memcpy(c->req.url + cur, at, len);
        c->req.url[cur + len] = '\0';
    }
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    snprintf(c->hdr_field, sizeof(c->hdr_field), "%.*s", (int)len, at);
    c->in_token = strcasecmp(c->hdr_field, "X-Consul-Token") == 0;
    c->in_accept_encoding = strcasecmp(c->hdr_field, "Accept-Encoding") == 0;
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    if (c->in_token)
        snprintf(c->req.token, sizeof(c->req.token), "%.*s", (int)len, at);
    if (c->in_accept_encoding)
        snprintf(c->req.accept_encoding, sizeof(c->req.accept_encoding), "%.*s", (int)len, at);
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    if (c->req.body_len + len + 1 > c->body_cap) {
        c->body_cap = (c->req.body_len + len + 1) * 2;
        c->req.body = xrealloc(c->req.body, c->body_cap);
    }
    memcpy(c->req.body + c->req.body_len, at, len);
    c->req.body_len += len;
    return 0;
}

static const http_parser_settings settings = {
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    buf->base = xrealloc(NULL, suggested);
    buf->len = suggested;
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = st->data;
    if (nread < 0) {
        conn_close(c);
    } else if (nread > 0) {
        size_t used = http_parser_execute(&c->parser, &settings, buf->base, (size_t)nread);
        if (used != (size_t)nread || HTTP_PARSER_ERRNO(&c->parser) != HPE_OK)
            conn_close(c);
    }
    free(buf->base);
}

static void on_connection(uv_stream_t *l, int status)
{
    struct fake_http *s = l->data;
    if (status < 0)
        return;
    struct conn *c = calloc(1, sizeof(*c));
    if (!c)
        abort();
    c->srv = s;
    c->refs = 1;
    s->open++;
    uv_tcp_init(l->loop, &c->tcp);
    c->tcp.data = c;
    c->next = s->conns;
    s->conns = c;
    if (uv_accept(l, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, on_read);
}

int fake_http_start(uv_loop_t *loop, fake_http_handler handler, void *arg, struct fake_http **out,
                    int *port)
{
    struct fake_http *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->handler = handler;
    s->arg = arg;
    s->open = 1;
    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", 0, &sa);
    int rc = uv_tcp_bind(&s->listener, (const struct sockaddr *)&sa, 0);
    if (!rc)
        rc = uv_listen((uv_stream_t *)&s->listener, 64, on_connection);
    if (rc) {
        uv_close((uv_handle_t *)&s->listener, (uv_close_cb)free);
        return rc;
    }
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    uv_tcp_getsockname(&s->listener, (struct sockaddr *)&ss, &len);
    *port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    *out = s;
    return 0;
}

static void listener_closed(uv_handle_t *h)
{
    srv_unref(h->data);
}

void fake_http_stop(struct fake_http *s)
{
    if (!s || s->stopping)
        return;
    s->stopping = true;
    for (struct pending *p = s->pendings; p; p = p->next) {
        if (!uv_is_closing((uv_handle_t *)&p->timer)) {
            uv_timer_stop(&p->timer);
            uv_close((uv_handle_t *)&p->timer, pending_closed);
        }
    }
    for (struct conn *c = s->conns; c; c = c->next)
        conn_close(c);
    uv_close((uv_handle_t *)&s->listener, listener_closed);
}

unsigned fake_http_replies_sent(const struct fake_http *s)
{
    return atomic_load(&s->sent);
}

struct fake_http_thread {
    uv_loop_t loop;
    uv_async_t stop;
    struct fake_http *http;
    pthread_t thread;
};

static void thread_on_stop(uv_async_t *a)
{
    struct fake_http_thread *t = a->data;

    fake_http_stop(t->http);
    uv_close((uv_handle_t *)a, NULL);
}

static void *thread_main(void *arg)
{
    struct fake_http_thread *t = arg;

    uv_run(&t->loop, UV_RUN_DEFAULT); /* until thread_on_stop closed everything */
    return NULL;
}

int fake_http_thread_start(fake_http_handler handler, void *arg, struct fake_http_thread **out,
                           int *port)
{
    struct fake_http_thread *t = calloc(1, sizeof(*t));
    int rc;

    if (!t)
        return -ENOMEM;
    if ((rc = uv_loop_init(&t->loop)) < 0) {
        free(t);
        return rc;
    }
    if ((rc = fake_http_start(&t->loop, handler, arg, &t->http, port)) < 0)
        goto fail;
    uv_async_init(&t->loop, &t->stop, thread_on_stop);
    t->stop.data = t;
    if ((rc = -pthread_create(&t->thread, NULL, thread_main, t)) < 0) {
        thread_on_stop(&t->stop);
        goto fail;
    }
    *out = t;
    return 0;
fail:
    uv_run(&t->loop, UV_RUN_DEFAULT); /* the closes started above */
    uv_loop_close(&t->loop);
    free(t);
    return rc;
}

unsigned fake_http_thread_replies_sent(const struct fake_http_thread *t)
{
    return fake_http_replies_sent(t->http);
}

void fake_http_thread_stop(struct fake_http_thread *t)
{
    if (!t)
        return;
    uv_async_send(&t->stop);
    pthread_join(t->thread, NULL);
    uv_loop_close(&t->loop);
    free(t);
}
