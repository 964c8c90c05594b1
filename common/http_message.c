/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http_message: the request side of the HTTP server - http-parser
 * callbacks with the request size limits, routing to handlers and the
 * built-in /metrics, /healthz and /readyz, deferred answers and the
 * response helpers of http_server.h. Connections, timers and writing are
 * http_server.c's.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_internal.h"
#include "metrics.h"

/* ---- responses ------------------------------------------------------- */

int http_response_set_body(struct http_response *resp, const void *data, size_t len)
{
    char *b = malloc(len + 1);

    if (!b)
        return -ENOMEM;
    if (len)
        memcpy(b, data, len);
    b[len] = '\0';
    free(resp->body);
    resp->body = b;
    resp->body_len = len;
    return 0;
}

int http_response_printf(struct http_response *resp, const char *fmt, ...)
{
    char *b = NULL;
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vasprintf(&b, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -ENOMEM;
    free(resp->body);
    resp->body = b;
    resp->body_len = (size_t)n;
    return 0;
}

int http_response_add_header(struct http_response *resp, const char *name, const char *value)
{
    size_t old = resp->headers ? strlen(resp->headers) : 0;
    char *h;

    if (!name || !*name || !value || strpbrk(value, "\r\n"))
        return -EINVAL;
    for (const char *p = name; *p; p++) /* RFC 9110 token characters */
        if (!isalnum((unsigned char)*p) && !strchr("!#$%&'*+-.^_`|~", *p))
            return -EINVAL;
    if (!strcasecmp(name, "Content-Type") || !strcasecmp(name, "Content-Length") ||
        !strcasecmp(name, "Connection") || !strcasecmp(name, "Transfer-Encoding"))
        return -EINVAL;
    h = realloc(resp->headers, old + strlen(name) + strlen(value) + 5);
    if (!h)
        return -ENOMEM;
    sprintf(h + old, "%s: %s\r\n", name, value);
    resp->headers = h;
    return 0;
}

const char *http_request_header(const struct http_request *req, const char *name)
{
    const struct conn *c = req->priv;

    for (size_t i = 0; c && i < c->nheaders; i++)
        if (c->headers[i].name && strcasecmp(c->headers[i].name, name) == 0)
            return c->headers[i].value ? c->headers[i].value : "";
    return NULL;
}

/* ---- deferred responses ------------------------------------------------ */

struct http_pending *http_response_defer(const struct http_request *req)
{
    struct conn *c = (struct conn *)req->priv;
    struct http_pending *p;

    if (!c || c->pending)
        return NULL; /* not inside a handler, or deferred twice */
    p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->conn = c;
    c->pending = p;
    c->defer_requested = true;
    return p;
}

void http_request_complete(struct http_pending *p, struct http_response *resp)
{
    struct conn *c = p ? p->conn : NULL;

    if (c && !c->closing) {
        int status = resp->status < 200 || resp->status > 599 ? 500 : resp->status;
        c->pending = NULL;
        http_conn_send_response(c, status, resp->content_type ? resp->content_type : CT_TEXT,
                                resp->body ? resp->body : "", resp->body_len, p->head, false,
                                resp->headers);
        if (!c->closing)
            http_conn_arm_timer(c, TIMER_IDLE);
    } else if (c) {
        c->pending = NULL;
    }
    free(resp->body);
    free(resp->headers);
    resp->body = NULL;
    resp->headers = NULL;
    free(p);
}

/* ---- routing --------------------------------------------------------- */

static const struct handler *find_handler(const struct http_server *srv, const char *path,
                                          bool exact)
{
    const struct handler *best = NULL;

    for (size_t i = 0; i < srv->nhandlers; i++) {
        const struct handler *h = &srv->handlers[i];
        if (exact ? strcmp(path, h->prefix) != 0 : strncmp(path, h->prefix, h->prefix_len) != 0)
            continue;
        if (!best || h->prefix_len > best->prefix_len)
            best = h;
    }
    return best;
}

static bool is_builtin(const char *path)
{
    return !strcmp(path, "/metrics") || !strcmp(path, "/healthz") || !strcmp(path, "/readyz");
}

static void builtin(struct http_server *srv, const char *path, struct http_response *resp)
{
    if (!strcmp(path, "/healthz")) {
        http_response_printf(resp, "ok\n");
    } else if (!strcmp(path, "/readyz")) {
        if (srv->ready) {
            http_response_printf(resp, "ready\n%s%s", srv->ready_detail ? srv->ready_detail : "",
                                 srv->ready_detail ? "\n" : "");
        } else {
            resp->status = 503;
            http_response_printf(resp, "%s\n",
                                 srv->not_ready_reason ? srv->not_ready_reason : "not ready");
        }
    } else { /* /metrics */
        char *text = NULL;
        size_t len = 0;
        int rc = srv->metrics ? metrics_render(srv->metrics, &text, &len) : 0;
        if (rc < 0) {
            resp->status = 500;
            http_response_printf(resp, "metrics: rendering failed: %s\n", strerror(-rc));
            log_warn("http: rendering /metrics failed: %s, answered 500", strerror(-rc));
            return;
        }
        resp->content_type = CT_METRICS;
        free(resp->body);
        resp->body = text;
        resp->body_len = len;
    }
}

/* Split the request target into path and query (pointers into buf). */
static int split_target(char *url, size_t len, char **path, char **query)
{
    struct http_parser_url u;

    if (len > 0 && url[0] == '/') {
        char *q = strchr(url, '?');
        char *frag = strchr(url, '#');
        if (frag)
            *frag = '\0';
        *path = url;
        *query = "";
        if (q) {
            *q = '\0';
            *query = q + 1;
        }
        return 0;
    }
    /* absolute-form ("http://host/path?q"): let http-parser take it apart */
    http_parser_url_init(&u);
    if (http_parser_parse_url(url, len, 0, &u) != 0 || !(u.field_set & (1 << UF_PATH)))
        return -EINVAL;
    char *p = url + u.field_data[UF_PATH].off;
    p[u.field_data[UF_PATH].len] = '\0';
    *path = p;
    *query = "";
    if (u.field_set & (1 << UF_QUERY)) {
        char *q = url + u.field_data[UF_QUERY].off;
        q[u.field_data[UF_QUERY].len] = '\0';
        *query = q;
    }
    return 0;
}

static void dispatch(struct conn *c)
{
    struct http_server *srv = c->srv;
    struct http_response resp = {.status = 200, .content_type = CT_TEXT};
    const char *method = http_method_str((enum http_method)c->parser.method);
    bool keep_alive = http_should_keep_alive(&c->parser) && !c->parser.upgrade && !srv->closing;
    bool head = c->parser.method == HTTP_HEAD;
    char *path, *query;

    if (!c->url || split_target(c->url, c->url_len, &path, &query) < 0) {
        http_conn_send_error(c, 400, "bad request target\n");
        return;
    }
    const struct handler *h = find_handler(srv, path, true);
    if (!h && !is_builtin(path))
        h = find_handler(srv, path, false);
    if (h) {
        struct http_request req = {
            .method = method,
            .path = path,
            .query = query,
            .body = c->body ? c->body : "",
            .body_len = c->body_len,
            .remote_addr = c->peer,
            .priv = c,
        };
        h->fn(&req, &resp, h->arg);
        if (c->defer_requested) {
            /* The answer comes later through http_request_complete. Read
             * nothing more (a pipelined request would overtake it) and
             * close after that answer. The read timeout bounds the wait. */
            c->defer_requested = false;
            c->pending->head = head;
            free(resp.body);
            free(resp.headers);
            http_conn_update_reading(c);
            return;
        }
        if (resp.status < 200 || resp.status > 599)
            resp.status = 500;
        if (!resp.content_type)
            resp.content_type = CT_TEXT;
    } else if (is_builtin(path)) {
        if (c->parser.method == HTTP_GET || head) {
            builtin(srv, path, &resp);
        } else {
            resp.status = 405;
            http_response_add_header(&resp, "Allow", "GET, HEAD");
            http_response_printf(&resp, "method %s not allowed on %s\n", method, path);
        }
    } else {
        resp.status = 404;
        http_response_printf(&resp, "not found: %s\n", path);
    }
    http_conn_send_response(c, resp.status, resp.content_type, resp.body ? resp.body : "",
                            resp.body_len, head, keep_alive, resp.headers);
    free(resp.body);
    free(resp.headers);
}

/* ---- http-parser callbacks ------------------------------------------- */

static int over_limit(struct conn *c, size_t more)
{
    c->req_bytes += more;
    if (c->req_bytes <= c->srv->max_request)
        return 0;
    c->reject_status = c->headers_done ? 413 : 431;
    return -1;
}

static int append(char **dst, size_t *len, const char *at, size_t n)
{
    char *p = realloc(*dst, *len + n + 1);
    if (!p)
        return -1;
    memcpy(p + *len, at, n);
    *len += n;
    p[*len] = '\0';
    *dst = p;
    return 0;
}

static int on_message_begin(http_parser *p)
{
    struct conn *c = p->data;

    http_conn_reset_request(c);
    /* The head must arrive within the header timeout, however slowly its
     * bytes trickle in; the body then gets the read timeout. */
    http_conn_arm_timer(c, TIMER_HEADER);
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
    struct conn *c = p->data;

    if (over_limit(c, n))
        return -1;
    return append(&c->url, &c->url_len, at, n);
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
    struct conn *c = p->data;
    size_t len;

    if (over_limit(c, n))
        return -1;
    if (c->in_value || c->nheaders == 0) {
        if (c->nheaders == MAX_HEADERS) {
            c->reject_status = 431;
            return -1;
        }
        c->nheaders++;
        c->in_value = false;
    }
    struct header *h = &c->headers[c->nheaders - 1];
    len = h->name ? strlen(h->name) : 0;
    return append(&h->name, &len, at, n);
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
    struct conn *c = p->data;
    size_t len;

    if (over_limit(c, n) || c->nheaders == 0)
        return -1;
    c->in_value = true;
    struct header *h = &c->headers[c->nheaders - 1];
    len = h->value ? strlen(h->value) : 0;
    return append(&h->value, &len, at, n);
}

static int on_headers_complete(http_parser *p)
{
    struct conn *c = p->data;
    struct http_request req = {.priv = c};

    c->headers_done = true;
    if (p->content_length != ULLONG_MAX && p->content_length > c->srv->max_request) {
        c->reject_status = 413;
        return -1;
    }
    http_conn_arm_timer(c, TIMER_REQUEST);
    const char *expect = http_request_header(&req, "Expect");
    if (expect && strcasecmp(expect, "100-continue") == 0 && !c->closing) {
        static char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        struct write_req *w = calloc(1, sizeof(*w));
        if (w && (w->buf = strdup(cont)) != NULL) {
            uv_buf_t buf = uv_buf_init(w->buf, sizeof(cont) - 1);
            w->conn = c;
            if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, http_conn_on_written) < 0) {
                free(w->buf);
                free(w);
            }
        } else {
            free(w);
        }
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    struct conn *c = p->data;

    if (over_limit(c, n))
        return -1;
    return append(&c->body, &c->body_len, at, n);
}

static int on_message_complete(http_parser *p)
{
    struct conn *c = p->data;

    c->last_active = uv_now(c->srv->loop);
    c->body_next = false; /* the next bytes are a new head */
    c->head_cr = false;
    c->head_line = c->head_lines = 0;
    dispatch(c);
    http_conn_reset_request(c);
    if (c->pending) {
        http_conn_arm_timer(c, TIMER_REQUEST);
        return -1; /* stop parsing: nothing after a deferred request is read */
    }
    if (!c->closing)
        http_conn_arm_timer(c, TIMER_IDLE);
    if (c->close_after_write)
        return -1; /* stop parsing after a "close" response */
    /* One request at a time: conn_parse_input goes on with the next
     * pipelined one only once this answer has left the write queue. */
    http_parser_pause(p, 1);
    return 0;
}

const http_parser_settings http_parser_callbacks = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};
