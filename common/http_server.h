/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http_server: the small HTTP/1.1 server every daemon runs on its libuv
 * loop for Prometheus and health checks, parsing with http-parser.
 *
 *   GET /metrics  text exposition 0.0.4 of a metrics registry
 *   GET /healthz  200 "ok" while the loop runs
 *   GET /readyz   200 "ready", or 503 with the reason set by
 *                 http_server_set_ready(srv, false, "...")
 *   other paths   handlers added with http_server_add_handler (longest
 *                 prefix wins), else 404; built-in paths answer 405 to
 *                 methods other than GET/HEAD.
 *
 * Listens on "127.0.0.1:9100", "[::1]:9100", ":9100" (all addresses,
 * IPv6 dual-stack) or port 0 (kernel picks; see http_server_port). Keeps
 * connections alive. Single-threaded: call everything from the loop's
 * thread.
 *
 * Hostile clients (see docs/observability.md, "HTTP server limits"):
 *  - Pipelined requests are answered one at a time: after a request the
 *    parser stops until its answer has left the server's write queue
 *    (into the kernel's socket buffer), and nothing more is read from the
 *    socket meanwhile. Memory per connection is therefore bounded by
 *    about 2 KiB of state + one read chunk (HTTP_SERVER_READ_CHUNK) + the
 *    request being received (max_request_bytes) + one answer (for
 *    /metrics, the size of the exposition).
 *  - A request is limited in size (413/431) and in headers
 *    (HTTP_SERVER_MAX_HEADERS, 431); its head lines must end in CRLF (a
 *    bare LF is refused with 400). Its head must arrive within
 *    header_timeout_ms of the connection opening (or of the request's
 *    first byte on a kept-alive connection) and its body within
 *    read_timeout_ms after that; a kept-alive connection with nothing to
 *    say is closed after idle_timeout_ms.
 *  - At max_connections, the connection that has been quiet longest (no
 *    answer owed) is closed to admit the new one, so idle or slow
 *    connections can never lock probes out; only when every connection is
 *    being answered is the new one refused. Both are counted in
 *    drover_http_connections_closed_total{reason} (with the timeouts) and
 *    logged at most once per 10 s as a summary.
 */
#ifndef DROVER_HTTP_SERVER_H
#define DROVER_HTTP_SERVER_H

#define HTTP_SERVER_MAX_HEADERS 100
#define HTTP_SERVER_READ_CHUNK  65536

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct metrics_registry;
struct http_server;

struct http_server_options {
    const char *listen;               /* required, see above */
    struct metrics_registry *metrics; /* may be NULL: /metrics is then empty */
    size_t max_request_bytes;         /* head + body; 0 = 1 MiB */
    uint64_t header_timeout_ms;       /* request head (or first bytes) within; 0 = 5 s */
    uint64_t read_timeout_ms;         /* then the body within; 0 = 10 s */
    uint64_t idle_timeout_ms;         /* keep-alive idle close; 0 = 60 s */
    unsigned max_connections;         /* 0 = 256; then the quietest is closed */
};

struct http_request {
    const char *method; /* "GET", "POST", ... */
    const char *path;   /* raw path without the query, e.g. "/slack/command" */
    const char *query;  /* raw query after '?', "" if none */
    const char *body;   /* NUL-terminated copy of the body ("" if none) */
    size_t body_len;
    const char *remote_addr; /* "127.0.0.1:53412" */
    const void *priv;        /* server internals (headers) */
};

/* Header value by case-insensitive name, NULL if absent. Valid during the
 * handler call. */
const char *http_request_header(const struct http_request *req, const char *name);

struct http_response {
    int status;               /* default 200; outside 200..599 becomes 500 */
    const char *content_type; /* static string; default "text/plain; charset=utf-8" */
    char *body;               /* malloc'd; freed by the server */
    size_t body_len;
    char *
        headers; /* extra "Name: value\r\n" lines (http_response_add_header); freed by the server */
};

/* Set the body to a printf-formatted string (replacing any previous one).
 * 0 or -ENOMEM. */
int http_response_printf(struct http_response *resp, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Copy len bytes as the body. 0 or -ENOMEM. */
int http_response_set_body(struct http_response *resp, const void *data, size_t len);
/* Add a response header. Content-Type, Content-Length and Connection are
 * the server's. 0, -EINVAL (bad name, CR/LF in the value) or -ENOMEM. */
int http_response_add_header(struct http_response *resp, const char *name, const char *value);

/* Called synchronously for every request whose path starts with the
 * handler's prefix, for any method; it fills resp. */
typedef void (*http_handler_fn)(const struct http_request *req, struct http_response *resp,
                                void *arg);

/*
 * Deferred responses, for handlers that must wait for something (a Consul
 * round trip, a worker thread) before they can answer. Inside the handler
 * call http_response_defer(req); the server then sends nothing when the
 * handler returns, stops reading from that connection and answers when
 * http_request_complete() is called later on the loop's thread, with
 * "Connection: close". Exactly one http_request_complete per pending
 * request, even if the client has gone away meanwhile (then the call only
 * frees the pending request). A client still waiting after the server's
 * read timeout is disconnected. NULL: out of memory (the handler should
 * answer at once instead).
 */
struct http_pending;
struct http_pending *http_response_defer(const struct http_request *req);
/* Send resp (status, content type, body, headers; the body and headers are
 * taken over and freed) and free p. */
void http_request_complete(struct http_pending *p, struct http_response *resp);

/* Bind and listen. 0, or negative errno with a message naming the listen
 * address in err (after a bind/listen failure the loop must run once to
 * release the listener). Sets SIGPIPE to ignored if it still has its
 * default disposition, so a client hanging up cannot kill the daemon.
 * /readyz answers 503 "starting up" until http_server_set_ready(true). */
int http_server_start(uv_loop_t *loop, const struct http_server_options *opts,
                      struct http_server **out, char *err, size_t errlen);
/* Bound TCP port (useful with port 0). */
int http_server_port(const struct http_server *srv);
/* Readiness for /readyz; reason is copied (NULL ok). */
void http_server_set_ready(struct http_server *srv, bool ready, const char *reason);
/* A line /readyz adds under "ready" (200): something an operator should
 * see that does not make the daemon unready; copied, NULL or "" none. */
void http_server_set_ready_detail(struct http_server *srv, const char *detail);
/* Register a handler for paths starting with prefix ("/slack/"). Built-in
 * paths can be overridden by an exact-prefix registration. 0, -EINVAL,
 * -ENOMEM. */
int http_server_add_handler(struct http_server *srv, const char *prefix, http_handler_fn fn,
                            void *arg);
/* Stop listening, close every connection and free the server once the
 * loop has run the close callbacks. NULL ok. */
void http_server_close(struct http_server *srv);

#endif
