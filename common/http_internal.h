/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http_internal: what the two halves of the HTTP server share. The
 * connection side (http_server.c: listener, sockets, timers, admission,
 * writing answers) and the message side (http_message.c: http-parser
 * callbacks, routing, the built-in endpoints, response helpers) both see
 * struct conn and struct http_server; nothing outside common/ includes
 * this header.
 */
#ifndef DROVER_COMMON_HTTP_INTERNAL_H
#define DROVER_COMMON_HTTP_INTERNAL_H

#include <arpa/inet.h>
#include <http_parser.h>
#include <stdbool.h>
#include <stdint.h>

#include "http_server.h"
#include "log.h"

#define DEFAULT_MAX_REQUEST    (1u << 20)
#define DEFAULT_HEADER_TIMEOUT 5000
#define DEFAULT_READ_TIMEOUT   10000
#define DEFAULT_IDLE_TIMEOUT   60000
#define DEFAULT_MAX_CONNS      256
#define MAX_HEADERS            HTTP_SERVER_MAX_HEADERS
#define READ_CHUNK             HTTP_SERVER_READ_CHUNK
#define SHED_LOG_INTERVAL_MS   10000
#define CT_TEXT                "text/plain; charset=utf-8"
#define CT_METRICS             "text/plain; version=0.0.4; charset=utf-8"

/* Why a connection was closed by the server (metric label). */
enum shed_reason {
    SHED_EVICTED,         /* quietest connection closed at the cap */
    SHED_REFUSED,         /* new connection closed at the cap: all busy */
    SHED_HEADER_TIMEOUT,  /* no complete request head in time */
    SHED_REQUEST_TIMEOUT, /* body (or a deferred answer) not done in time */
    SHED_IDLE_TIMEOUT,    /* kept-alive and quiet */
    HTTP_SHED_REASONS
};

struct handler {
    char *prefix;
    size_t prefix_len;
    http_handler_fn fn;
    void *arg;
};

struct header {
    char *name;
    char *value;
};

struct conn {
    struct conn *next, *prev;
    struct http_server *srv;
    uv_tcp_t tcp;
    uv_timer_t timer;
    http_parser parser;
    char peer[INET6_ADDRSTRLEN + 8];

    /* the request being parsed */
    char *url;
    size_t url_len;
    struct header headers[MAX_HEADERS];
    size_t nheaders;
    bool in_value; /* last header callback was a value */
    char *body;
    size_t body_len;
    size_t req_bytes;
    bool headers_done;
    int reject_status; /* set by a callback that aborts parsing */

    /* Bytes read but not parsed yet: parsing stops after each request
     * until its answer has left our write queue, so a client pipelining
     * requests without reading the answers holds at most one read chunk
     * and one answer here (see http_server.h). */
    char *in;
    size_t in_off, in_len;
    uint64_t last_active; /* loop time of accept or of the last complete request */
    /* Line endings of the request head, checked before the parser sees
     * the bytes (http-parser alone accepts a bare LF): */
    bool body_next;    /* head of this request seen to its blank line */
    bool head_cr;      /* last head byte was CR */
    size_t head_line;  /* bytes in the current head line */
    size_t head_lines; /* non-empty head lines so far */

    bool close_after_write;
    bool reading;                 /* uv_read_start is in effect */
    int timer_kind;               /* enum conn_timer of the armed timer */
    struct http_pending *pending; /* a deferred response is owed */
    bool defer_requested;         /* set by http_response_defer during dispatch */
    bool closing;
    int handles_open;
};

struct http_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    struct metrics_registry *metrics;
    size_t max_request;
    uint64_t read_timeout_ms;
    uint64_t idle_timeout_ms;
    uint64_t header_timeout_ms;
    unsigned max_conns;
    unsigned live_conns; /* open and not closing */
    int port;
    char listen[128];

    bool ready;
    char *not_ready_reason;
    char *ready_detail; /* /readyz's second line when ready, NULL none */

    struct handler *handlers;
    size_t nhandlers;

    struct conn *conns;
    unsigned nconns;
    bool closing;

    /* connections closed at the cap (evicted, refused) or by a timeout:
     * counted per reason, logged as a summary at most every 10 s */
    struct log_ratelimit shed_log, accept_log;
    uint64_t shed_since_log[HTTP_SHED_REASONS];
};

/* Outlives its connection: the handler's owner completes it later. */
struct http_pending {
    struct conn *conn; /* NULL once the connection is gone */
    bool head;
};

struct write_req {
    uv_write_t req;
    struct conn *conn;
    char *buf;
};

enum conn_timer {
    TIMER_HEADER,
    TIMER_REQUEST,
    TIMER_IDLE,
};

/* connection side (http_server.c) */
void http_conn_reset_request(struct conn *c);
void http_conn_arm_timer(struct conn *c, enum conn_timer kind);
void http_conn_update_reading(struct conn *c);
void http_conn_on_written(uv_write_t *req, int status);
void http_conn_send_response(struct conn *c, int status, const char *ctype, const char *body,
                             size_t len, bool head, bool keep_alive, const char *extra_headers);
void http_conn_send_error(struct conn *c, int status, const char *text);

/* message side (http_message.c): the parser callbacks, which dispatch
 * each complete request */
extern const http_parser_settings http_parser_callbacks;

#endif
