/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fake_http: a tiny scriptable HTTP/1.1 server on a libuv loop for tests
 * that need a misbehaving peer (a Consul that returns a lower or zero
 * X-Consul-Index, 5xx, hangs, 409s...). It listens on 127.0.0.1 with a
 * kernel-picked port, parses requests with http-parser (keep-alive
 * supported) and asks a handler callback, on the loop, how to answer.
 *
 * fake_http_thread_start() runs one on its own loop and thread, for tests
 * that block the client's loop (a stall) while the server must go on
 * answering; its handler then runs on that thread.
 */
#ifndef DROVER_FAKE_HTTP_H
#define DROVER_FAKE_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct fake_http;

struct fake_http_req {
    char method[16];
    char url[2048];            /* path and query */
    char token[256];           /* X-Consul-Token, "" if absent */
    char accept_encoding[128]; /* Accept-Encoding, "" if absent */
    char *body;                /* NUL-terminated */
    size_t body_len;
    unsigned seq; /* 0, 1, 2... over the server's lifetime */
};

struct fake_http_reply {
    int status;     /* 0: 200 */
    bool has_index; /* send an X-Consul-Index header */
    uint64_t index;
    bool lowercase_header; /* spell it x-consul-index */
    const char *headers;   /* more header lines, each ending in \r\n (not freed); NULL: none */
    char *body;            /* malloc'ed by the handler, freed by the server; NULL: "" */
    unsigned delay_ms;     /* answer after this long */
    bool hang;             /* never answer (client must time out) */
};

typedef void (*fake_http_handler)(void *arg, const struct fake_http_req *req,
                                  struct fake_http_reply *reply);

/* Listen on 127.0.0.1:0; *port is the port picked. 0 or negative errno. */
int fake_http_start(uv_loop_t *loop, fake_http_handler handler, void *arg, struct fake_http **out,
                    int *port);
/* Close the listener and every connection; freed once the loop ran. */
void fake_http_stop(struct fake_http *s);

/* Replies written into a socket so far (counted once the write is done,
 * so the peer can read them). Safe to call from any thread. */
unsigned fake_http_replies_sent(const struct fake_http *s);

struct fake_http_thread;

/* fake_http_start on a loop of its own, run by a new thread. 0 or a
 * negative errno. */
int fake_http_thread_start(fake_http_handler handler, void *arg, struct fake_http_thread **out,
                           int *port);
/* fake_http_replies_sent of the threaded server. */
unsigned fake_http_thread_replies_sent(const struct fake_http_thread *t);
/* Stop the server, end its thread and free everything. A handler that is
 * blocked waiting on the caller must be released first (the thread is
 * joined). NULL is a no-op. */
void fake_http_thread_stop(struct fake_http_thread *t);

#endif
