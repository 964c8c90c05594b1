/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http_server: the connection side of the metrics/health/Slack HTTP
 * server - listener, admission at the connection cap (the quietest
 * connection is evicted), header/request/idle timers, reading one request
 * at a time and writing its answer. Parsing, routing and the response
 * helpers are in http_message.c; both share http_internal.h.
 */
#include "http_internal.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <http_parser.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "errmsg.h"
#include "log.h"
#include "metrics.h"

static const char *const shed_names[HTTP_SHED_REASONS] = {"evicted", "refused", "header_timeout",
                                                          "request_timeout", "idle_timeout"};

/* ---- connection life cycle ------------------------------------------- */

static void server_maybe_free(struct http_server *srv);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

void http_conn_reset_request(struct conn *c)
{
    free(c->url);
    c->url = NULL;
    c->url_len = 0;
    for (size_t i = 0; i < c->nheaders; i++) {
        free(c->headers[i].name);
        free(c->headers[i].value);
        c->headers[i].name = NULL;
        c->headers[i].value = NULL;
    }
    c->nheaders = 0;
    c->in_value = false;
    free(c->body);
    c->body = NULL;
    c->body_len = 0;
    c->req_bytes = 0;
    c->headers_done = false;
    c->reject_status = 0;
}

static void conn_handle_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    struct http_server *srv = c->srv;

    if (--c->handles_open > 0)
        return;
    if (c->pending)
        c->pending->conn = NULL;
    http_conn_reset_request(c);
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    srv->nconns--;
    free(c);
    server_maybe_free(srv);
}

static void conn_close(struct conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    c->srv->live_conns--;
    free(c->in);
    c->in = NULL;
    c->in_off = c->in_len = 0;
    uv_timer_stop(&c->timer);
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_close((uv_handle_t *)&c->tcp, conn_handle_closed);
    uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
}

/* Count a connection the server closed; evictions and refusals are also
 * logged, as one summary line per interval at most (a flood of
 * connections must not become a flood of log lines). */
static void count_shed(struct http_server *srv, enum shed_reason why)
{
    char labels[48];
    uint64_t swallowed = 0;

    if (srv->metrics) {
        snprintf(labels, sizeof(labels), "reason=\"%s\"", shed_names[why]);
        metrics_counter_inc(metrics_counter(
            srv->metrics, "drover_http_connections_closed_total",
            "Connections the metrics/health HTTP server closed: evicted or refused at the "
            "connection limit, or timed out.",
            labels));
    }
    if (why != SHED_EVICTED && why != SHED_REFUSED)
        return;
    srv->shed_since_log[why]++;
    if (!log_ratelimit_allow(&srv->shed_log, uv_now(srv->loop), &swallowed))
        return;
    log_warn("http: at the limit of %u connections on %s: closed %llu quiet connection(s) to "
             "admit new ones and refused %llu new one(s) since the last report; counted in "
             "drover_http_connections_closed_total, next report in %u s at the earliest",
             srv->max_conns, srv->listen, (unsigned long long)srv->shed_since_log[SHED_EVICTED],
             (unsigned long long)srv->shed_since_log[SHED_REFUSED], SHED_LOG_INTERVAL_MS / 1000);
    srv->shed_since_log[SHED_EVICTED] = srv->shed_since_log[SHED_REFUSED] = 0;
}

static void on_timeout(uv_timer_t *t)
{
    struct conn *c = t->data;
    enum shed_reason why = c->timer_kind == TIMER_HEADER    ? SHED_HEADER_TIMEOUT
                           : c->timer_kind == TIMER_REQUEST ? SHED_REQUEST_TIMEOUT
                                                            : SHED_IDLE_TIMEOUT;

    log_debug("http: closing connection from %s: %s", c->peer,
              why == SHED_HEADER_TIMEOUT    ? "no complete request head in time"
              : why == SHED_REQUEST_TIMEOUT ? "request (or its answer) not done in time"
                                            : "idle keep-alive timed out");
    count_shed(c->srv, why);
    conn_close(c);
}

void http_conn_arm_timer(struct conn *c, enum conn_timer kind)
{
    const struct http_server *srv = c->srv;
    uint64_t ms = kind == TIMER_HEADER    ? srv->header_timeout_ms
                  : kind == TIMER_REQUEST ? srv->read_timeout_ms
                                          : srv->idle_timeout_ms;

    c->timer_kind = kind;
    if (!c->closing)
        uv_timer_start(&c->timer, on_timeout, ms, 0);
}

static void conn_parse_input(struct conn *c);

/* Whether an answer is still in our write queue (or owed by a deferred
 * handler): until it has gone, nothing more is parsed or read. */
static bool answer_outstanding(struct conn *c)
{
    return c->pending || uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) > 0;
}

/* Read from the socket exactly when there is nothing buffered to parse,
 * no answer outstanding and the connection is to stay open. */
void http_conn_update_reading(struct conn *c)
{
    bool want = !c->closing && !c->close_after_write && !c->in && !answer_outstanding(c);

    if (want && !c->reading) {
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0) {
            conn_close(c);
            return;
        }
        c->reading = true;
    } else if (!want && c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
}

void http_conn_on_written(uv_write_t *req, int status)
{
    struct write_req *w = (struct write_req *)req;
    struct conn *c = w->conn;

    free(w->buf);
    free(w);
    if (c->closing)
        return;
    if (status < 0) {
        log_debug("http: write to %s failed: %s, closing", c->peer, uv_strerror(status));
        conn_close(c);
        return;
    }
    if (answer_outstanding(c))
        return; /* more to write, or a deferred answer still owed */
    if (c->close_after_write) {
        conn_close(c);
        return;
    }
    /* The answer has gone: the next pipelined request may be parsed. */
    conn_parse_input(c);
}

static void count_response(struct http_server *srv, int status)
{
    char labels[32];

    if (!srv->metrics)
        return;
    snprintf(labels, sizeof(labels), "code=\"%d\"", status);
    metrics_counter_inc(metrics_counter(srv->metrics, "drover_http_requests_total",
                                        "Requests answered by the metrics/health HTTP server.",
                                        labels));
}

static const char *reason_phrase(int status)
{
    const char *r = http_status_str((enum http_status)status);
    return r && strcmp(r, "<unknown>") != 0 ? r : "Unknown";
}

/* Queue one response. head_only: HEAD request, send headers only. */
void http_conn_send_response(struct conn *c, int status, const char *ctype, const char *body,
                             size_t body_len, bool head_only, bool keep_alive, const char *extra)
{
    struct write_req *w = NULL;
    char *head = NULL;
    int hn;

    if (c->closing)
        return;
    hn = asprintf(&head,
                  "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                  "Connection: %s\r\n%s\r\n",
                  status, reason_phrase(status), ctype, body_len,
                  keep_alive ? "keep-alive" : "close", extra ? extra : "");
    size_t total = hn < 0 ? 0 : (size_t)hn + (head_only ? 0 : body_len);
    if (hn >= 0)
        w = calloc(1, sizeof(*w));
    if (w)
        w->buf = malloc(total);
    if (!w || !w->buf) {
        free(w);
        if (hn >= 0)
            free(head);
        log_warn("http: out of memory answering %s, closing the connection", c->peer);
        conn_close(c);
        return;
    }
    memcpy(w->buf, head, (size_t)hn);
    free(head);
    if (!head_only && body_len)
        memcpy(w->buf + hn, body, body_len);
    w->conn = c;
    uv_buf_t buf = uv_buf_init(w->buf, (unsigned)total);
    if (!keep_alive)
        c->close_after_write = true;
    count_response(c->srv, status);
    int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, http_conn_on_written);
    if (rc < 0) {
        free(w->buf);
        free(w);
        conn_close(c);
        return;
    }
    /* Until the client has taken this response, read nothing more from
     * it: one that pipelines requests without reading the answers stalls
     * itself (and meets the idle timeout) instead of growing our queue. */
    http_conn_update_reading(c);
}

void http_conn_send_error(struct conn *c, int status, const char *text)
{
    http_conn_send_response(c, status, CT_TEXT, text, strlen(text), false, false, NULL);
    http_conn_update_reading(c);
}

/* ---- socket I/O -------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    if (suggested > READ_CHUNK)
        suggested = READ_CHUNK;
    buf->base = malloc(suggested);
    buf->len = buf->base ? suggested : 0;
}

/* Check the request head in buf for line endings: every line must end in
 * CRLF (RFC 9112 2.2 lets a server refuse a bare LF, and one that reaches
 * a proxy that reads LF differently is a smuggling vector). Stops at the
 * blank line that ends the head; the body is not looked at. -EPROTO on a
 * bare LF. */
static int check_head_line_endings(struct conn *c, const char *buf, size_t len)
{
    for (size_t i = 0; i < len && !c->body_next; i++) {
        char b = buf[i];
        if (b == '\n') {
            if (!c->head_cr)
                return -EPROTO;
            if (c->head_line == 0 && c->head_lines > 0)
                c->body_next = true; /* blank line: the head is complete */
            else if (c->head_line > 0)
                c->head_lines++;
            c->head_line = 0;
        } else if (b != '\r') {
            c->head_line++;
        }
        c->head_cr = b == '\r';
    }
    return 0;
}

/* Parse buffered input up to the end of the next request (or until it is
 * used up, or the connection is to close); read again only once all was
 * parsed and answered. */
static void conn_parse_input(struct conn *c)
{
    while (c->in && c->in_off < c->in_len && !c->closing && !c->close_after_write &&
           !answer_outstanding(c)) {
        size_t n = c->in_len - c->in_off;
        if (check_head_line_endings(c, c->in + c->in_off, n) < 0) {
            log_debug("http: rejecting request from %s: 400 (bare LF in the request head)",
                      c->peer);
            http_conn_send_error(c, 400, "bad request: request head lines must end in CRLF\n");
            break;
        }
        size_t done = http_parser_execute(&c->parser, &http_parser_callbacks, c->in + c->in_off, n);
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);

        c->in_off += done;
        if (c->close_after_write || c->closing || c->pending)
            break;
        if (e == HPE_PAUSED) {
            /* A request was answered. The next one waits for this
             * answer's write callback (a later loop turn, even when the
             * kernel took it at once), so each connection gets one request
             * per turn and a pipelining client cannot starve the others. */
            http_parser_pause(&c->parser, 0);
            break;
        }
        if (c->parser.upgrade) {
            conn_close(c);
            break;
        }
        if (done != n || e != HPE_OK) {
            int status = c->reject_status ? c->reject_status : 400;
            if (e == HPE_HEADER_OVERFLOW)
                status = 431;
            log_debug("http: rejecting request from %s: %d (%s)", c->peer, status,
                      http_errno_name(e));
            http_conn_send_error(c, status,
                                 status == 413   ? "request too large\n"
                                 : status == 431 ? "request headers too large\n"
                                                 : "bad request\n");
            break;
        }
    }
    if (c->in && (c->in_off >= c->in_len || c->closing || c->close_after_write || c->pending)) {
        /* used up, or nothing after this point will be parsed */
        free(c->in);
        c->in = NULL;
        c->in_off = c->in_len = 0;
    }
    if (!c->closing)
        http_conn_update_reading(c);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = s->data;

    if (nread < 0) {
        free(buf->base);
        /* The client is done sending (or gone). Answers still queued are
         * delivered first: clients that half-close after their request
         * expect the full response. */
        if (nread == UV_EOF && answer_outstanding(c) && !c->pending) {
            c->close_after_write = true;
            http_conn_update_reading(c);
        } else {
            conn_close(c);
        }
        return;
    }
    if (nread == 0 || c->closing || c->close_after_write || c->pending || c->in) {
        free(buf->base);
        return;
    }
    c->in = buf->base; /* owned by the connection until parsed */
    c->in_off = 0;
    c->in_len = (size_t)nread;
    conn_parse_input(c);
}

/* At the connection limit: the quietest connection that owes no answer
 * (sent nothing yet, kept alive between requests, or still trickling a
 * request in), longest quiet first. NULL if all are being answered. */
static struct conn *pick_victim(struct http_server *srv, const struct conn *except)
{
    struct conn *best = NULL;

    for (struct conn *c = srv->conns; c; c = c->next) {
        if (c == except || c->closing || c->close_after_write || answer_outstanding(c))
            continue;
        if (!best || c->last_active < best->last_active)
            best = c;
    }
    return best;
}

static void on_connection(uv_stream_t *listener, int status)
{
    struct http_server *srv = listener->data;
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    struct conn *c;

    if (status < 0) {
        uint64_t swallowed = 0;
        if (log_ratelimit_allow(&srv->accept_log, uv_now(srv->loop), &swallowed))
            log_warn("http: accept on %s failed: %s (%llu more failures not logged since the "
                     "last report), still listening",
                     srv->listen, uv_strerror(status), (unsigned long long)swallowed);
        return;
    }
    c = calloc(1, sizeof(*c));
    if (!c) {
        log_warn("http: out of memory accepting on %s, connection dropped", srv->listen);
        return;
    }
    c->srv = srv;
    uv_tcp_init(srv->loop, &c->tcp);
    uv_timer_init(srv->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->handles_open = 2;
    c->last_active = uv_now(srv->loop);
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->nconns++;
    srv->live_conns++;
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) < 0) {
        conn_close(c);
        return;
    }
    if (srv->live_conns > srv->max_conns) {
        /* Probes and scrapes must get through however many idle or slow
         * connections are held: the quietest one makes room. */
        struct conn *victim = pick_victim(srv, c);
        if (victim) {
            count_shed(srv, SHED_EVICTED);
            conn_close(victim);
        } else {
            count_shed(srv, SHED_REFUSED);
            conn_close(c);
            return;
        }
    }
    snprintf(c->peer, sizeof(c->peer), "?");
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
        char ip[INET6_ADDRSTRLEN] = "";
        if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            uv_ip6_name(a, ip, sizeof(ip));
            snprintf(c->peer, sizeof(c->peer), "[%s]:%u", ip, ntohs(a->sin6_port));
        } else if (ss.ss_family == AF_INET) {
            struct sockaddr_in *a = (struct sockaddr_in *)&ss;
            uv_ip4_name(a, ip, sizeof(ip));
            snprintf(c->peer, sizeof(c->peer), "%s:%u", ip, ntohs(a->sin_port));
        }
    }
    uv_tcp_nodelay(&c->tcp, 1);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    http_conn_arm_timer(c, TIMER_HEADER); /* a connection that says nothing goes soon */
    http_conn_update_reading(c);
}

/* ---- server -------------------------------------------------------------- */

/* "127.0.0.1:9100", "[::1]:9100", ":9100". */
static int parse_listen(const char *text, struct sockaddr_storage *ss, bool *any)
{
    char host[INET6_ADDRSTRLEN + 2];
    const char *colon, *port_s;
    char *end;
    size_t hlen;

    *any = false;
    if (!text)
        return -EINVAL;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close || close[1] != ':')
            return -EINVAL;
        hlen = (size_t)(close - text - 1);
        if (hlen == 0 || hlen >= sizeof(host))
            return -EINVAL;
        memcpy(host, text + 1, hlen);
        host[hlen] = '\0';
        port_s = close + 2;
    } else {
        colon = strrchr(text, ':');
        if (!colon)
            return -EINVAL;
        hlen = (size_t)(colon - text);
        if (hlen >= sizeof(host))
            return -EINVAL;
        memcpy(host, text, hlen);
        host[hlen] = '\0';
        port_s = colon + 1;
    }
    if (!*port_s)
        return -EINVAL;
    long port = strtol(port_s, &end, 10);
    if (*end || port < 0 || port > 65535)
        return -EINVAL;
    memset(ss, 0, sizeof(*ss));
    if (host[0] == '\0') {
        *any = true;
        return uv_ip6_addr("::", (int)port, (struct sockaddr_in6 *)ss) < 0 ? -EINVAL : 0;
    }
    if (text[0] == '[')
        return uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)ss) < 0 ? -EINVAL : 0;
    return uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss) < 0 ? -EINVAL : 0;
}

static bool ipv6_available(void)
{
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return false;
    close(fd);
    return true;
}

static void server_free(struct http_server *srv)
{
    for (size_t i = 0; i < srv->nhandlers; i++)
        free(srv->handlers[i].prefix);
    free(srv->handlers);
    free(srv->not_ready_reason);
    free(srv->ready_detail);
    free(srv);
}

static void listener_closed(uv_handle_t *h)
{
    struct http_server *srv = h->data;

    srv->listener.data = NULL; /* marks the listener as gone */
    server_maybe_free(srv);
}

static void server_maybe_free(struct http_server *srv)
{
    if (srv->closing && srv->nconns == 0 && srv->listener.data == NULL)
        server_free(srv);
}

static int bind_listen(struct http_server *srv, const struct sockaddr *sa, char *err, size_t errlen)
{
    int rc;

    uv_tcp_init(srv->loop, &srv->listener);
    srv->listener.data = srv;
    rc = uv_tcp_bind(&srv->listener, sa, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&srv->listener, 128, on_connection);
    if (rc < 0)
        errmsg_set(err, errlen, "http: cannot listen on %s: %s", srv->listen, uv_strerror(rc));
    return rc;
}

int http_server_start(uv_loop_t *loop, const struct http_server_options *opts,
                      struct http_server **out, char *err, size_t errlen)
{
    struct sockaddr_storage ss, bound;
    struct http_server *srv;
    int len = sizeof(bound);
    bool any;
    int rc;

    *out = NULL;
    if (!opts || parse_listen(opts->listen, &ss, &any) < 0) {
        errmsg_set(err, errlen,
                   "http: bad listen address '%s' (want IP:PORT, [IPv6]:PORT or :PORT)",
                   opts && opts->listen ? opts->listen : "(null)");
        return -EINVAL;
    }
    /* A client that hangs up while we write must not kill the daemon with
     * SIGPIPE; libuv reports EPIPE instead once the signal is ignored.
     * A disposition the program chose itself is left alone. */
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
        signal(SIGPIPE, SIG_IGN);
    srv = calloc(1, sizeof(*srv));
    if (!srv)
        return -ENOMEM;
    srv->loop = loop;
    srv->metrics = opts->metrics;
    srv->max_request = opts->max_request_bytes ? opts->max_request_bytes : DEFAULT_MAX_REQUEST;
    srv->header_timeout_ms =
        opts->header_timeout_ms ? opts->header_timeout_ms : DEFAULT_HEADER_TIMEOUT;
    srv->read_timeout_ms = opts->read_timeout_ms ? opts->read_timeout_ms : DEFAULT_READ_TIMEOUT;
    srv->shed_log.interval_ms = SHED_LOG_INTERVAL_MS;
    srv->accept_log.interval_ms = SHED_LOG_INTERVAL_MS;
    srv->idle_timeout_ms = opts->idle_timeout_ms ? opts->idle_timeout_ms : DEFAULT_IDLE_TIMEOUT;
    srv->max_conns = opts->max_connections ? opts->max_connections : DEFAULT_MAX_CONNS;
    srv->not_ready_reason = strdup("starting up");
    snprintf(srv->listen, sizeof(srv->listen), "%s", opts->listen);

    if (any && !ipv6_available()) {
        /* ":PORT" on a host without IPv6: all IPv4 addresses instead. */
        int port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        uv_ip4_addr("0.0.0.0", port, (struct sockaddr_in *)&ss);
    }
    rc = bind_listen(srv, (struct sockaddr *)&ss, err, errlen);
    if (rc < 0) {
        srv->closing = true;
        uv_close((uv_handle_t *)&srv->listener, listener_closed);
        return rc;
    }
    if (uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&bound, &len) == 0)
        srv->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                      : ((struct sockaddr_in *)&bound)->sin_port);
    log_info("http: serving /metrics, /healthz, /readyz on %s (port %d)", srv->listen, srv->port);
    *out = srv;
    return 0;
}

int http_server_port(const struct http_server *srv)
{
    return srv ? srv->port : 0;
}

void http_server_set_ready(struct http_server *srv, bool ready, const char *reason)
{
    if (!srv)
        return;
    if (ready != srv->ready)
        log_info("http: readiness now %s%s%s", ready ? "ready" : "not ready", reason ? ": " : "",
                 reason ? reason : "");
    srv->ready = ready;
    free(srv->not_ready_reason);
    srv->not_ready_reason = reason ? strdup(reason) : NULL;
}

void http_server_set_ready_detail(struct http_server *srv, const char *detail)
{
    if (!srv)
        return;
    free(srv->ready_detail);
    srv->ready_detail = detail && *detail ? strdup(detail) : NULL;
}

int http_server_add_handler(struct http_server *srv, const char *prefix, http_handler_fn fn,
                            void *arg)
{
    struct handler *hs;

    if (!srv || !prefix || prefix[0] != '/' || !fn)
        return -EINVAL;
    hs = realloc(srv->handlers, (srv->nhandlers + 1) * sizeof(*hs));
    if (!hs)
        return -ENOMEM;
    srv->handlers = hs;
    hs[srv->nhandlers].prefix = strdup(prefix);
    if (!hs[srv->nhandlers].prefix)
        return -ENOMEM;
    hs[srv->nhandlers].prefix_len = strlen(prefix);
    hs[srv->nhandlers].fn = fn;
    hs[srv->nhandlers].arg = arg;
    srv->nhandlers++;
    return 0;
}

void http_server_close(struct http_server *srv)
{
    if (!srv || srv->closing)
        return;
    srv->closing = true;
    for (struct conn *c = srv->conns; c; c = c->next)
        conn_close(c);
    uv_close((uv_handle_t *)&srv->listener, listener_closed);
}
