/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz the metrics/health HTTP server with raw client bytes: each input is
 * written to a fresh loopback connection, the client half-closes, and the
 * loop runs until the server has answered and closed. Catches memory
 * errors in request assembly, routing, limits and pipelining. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "http_server.h"
#include "log.h"
#include "metrics.h"

static uv_loop_t loop;
static struct http_server *srv;
static struct metrics_registry *reg;
static int port;

static void echo(const struct http_request *req, struct http_response *resp, void *arg)
{
    const char *h = http_request_header(req, "content-type");
    http_response_printf(resp, "%s %s %s %s %zu", req->method, req->path, req->query, h ? h : "-",
                         req->body_len);
}

static void init(void)
{
    char err[256];
    struct http_server_options o = {
        .listen = "127.0.0.1:0", .max_request_bytes = 16384, .read_timeout_ms = 2000};

    log_set_stream(fopen("/dev/null", "w"));
    uv_loop_init(&loop);
    reg = metrics_registry_new();
    metrics_counter_inc(metrics_counter(reg, "drover_fuzz_total", "fuzz", "a=\"b\""));
    o.metrics = reg;
    if (http_server_start(&loop, &o, &srv, err, sizeof(err)) < 0)
        abort();
    http_server_add_handler(srv, "/echo", echo, NULL);
    http_server_set_ready(srv, false, "fuzzing");
    port = http_server_port(srv);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    char buf[65536];
    int fd;

    if (!srv)
        init();
    a.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        abort();
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0 && errno != EINPROGRESS)
        abort();
    size_t off = 0;
    bool shut = false, eof = false;
    while (!eof) {
        uv_run(&loop, UV_RUN_NOWAIT);
        if (off < size) {
            ssize_t n = send(fd, data + off, size - off, MSG_NOSIGNAL);
            if (n > 0)
                off += (size_t)n;
            else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
                off = size; /* server closed early (limit hit): fine */
        } else if (!shut) {
            shutdown(fd, SHUT_WR);
            shut = true;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 0) > 0) {
            ssize_t n = recv(fd, buf, sizeof(buf), 0);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
                eof = true;
        }
    }
    close(fd);
    uv_run(&loop, UV_RUN_NOWAIT); /* let the server finish closing its side */
    return 0;
}
