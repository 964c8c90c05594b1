/* SPDX-License-Identifier: Apache-2.0 */
/* The HTTP server runs on a libuv loop in its own thread; the test talks
 * to it with real HTTP requests through libcurl and raw sockets. */
#include <arpa/inet.h>
#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http_server.h"
#include "log.h"
#include "metrics.h"
#include "suite_main.h"

/* ---- server thread ------------------------------------------------------- */

static struct {
    pthread_t thread;
    uv_loop_t loop;
    uv_async_t async;
    struct http_server *srv;
    struct metrics_registry *reg;
    struct http_server_options opts;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int port;
    int start_rc;
    bool started;
    void (*cmd)(void *);
    void *cmd_arg;
    bool cmd_done;
    bool stop;
} fx;

static void on_async(uv_async_t *a)
{
    pthread_mutex_lock(&fx.mu);
    if (fx.cmd) {
        fx.cmd(fx.cmd_arg);
        fx.cmd = NULL;
        fx.cmd_done = true;
        pthread_cond_broadcast(&fx.cv);
    }
    bool stop = fx.stop;
    pthread_mutex_unlock(&fx.mu);
    if (stop) {
        http_server_close(fx.srv);
        uv_close((uv_handle_t *)a, NULL);
    }
}

static void echo_handler(const struct http_request *req, struct http_response *resp, void *arg)
{
    const char *x = http_request_header(req, "x-test");
    resp->status = 201;
    resp->content_type = "application/json";
    ck_assert_int_eq(http_response_add_header(resp, "X-Consul-Index", "42"), 0);
    ck_assert_int_eq(http_response_add_header(resp, "X-Bad", "a\r\nInjected: 1"), -EINVAL);
    ck_assert_int_eq(http_response_add_header(resp, "Bad Name", "1"), -EINVAL);
    ck_assert_int_eq(http_response_add_header(resp, "content-length", "1"), -EINVAL);
    http_response_printf(resp, "%s %s q=%s h=%s len=%zu body=%s tag=%s", req->method, req->path,
                         req->query, x ? x : "-", req->body_len, req->body, (const char *)arg);
}

#define BIG_LEN (8u << 20)

static int big_calls; /* answers /big has built (loop thread writes, test reads) */

static void big_handler(const struct http_request *req, struct http_response *resp, void *arg)
{
    __atomic_add_fetch(&big_calls, 1, __ATOMIC_SEQ_CST);
    resp->body = malloc(BIG_LEN);
    ck_assert_ptr_nonnull(resp->body);
    memset(resp->body, 'z', BIG_LEN);
    resp->body_len = BIG_LEN;
}

/* Deferred answers: the handler parks the request; the test completes it
 * later through on_loop(complete_cmd). */
static struct http_pending *parked;
static char parked_body[64];

static void defer_handler(const struct http_request *req, struct http_response *resp, void *arg)
{
    snprintf(parked_body, sizeof(parked_body), "%s", req->body);
    parked = http_response_defer(req);
    ck_assert_ptr_nonnull(parked);
    ck_assert_ptr_null(http_response_defer(req)); /* only once */
    http_response_printf(resp, "must not be sent");
}

static void complete_cmd(void *arg)
{
    struct http_response resp = {.status = 202, .content_type = "application/json"};
    http_response_printf(&resp, "{\"later\":\"%s\"}", parked_body);
    http_response_add_header(&resp, "X-Deferred", "yes");
    http_request_complete(parked, &resp);
    parked = NULL;
}

static void *server_main(void *arg)
{
    char err[256];
    (void)arg;

    uv_loop_init(&fx.loop);
    uv_async_init(&fx.loop, &fx.async, on_async);
    int rc = http_server_start(&fx.loop, &fx.opts, &fx.srv, err, sizeof(err));
    if (rc == 0) {
        http_server_add_handler(fx.srv, "/echo", echo_handler, "short");
        http_server_add_handler(fx.srv, "/echo/long", echo_handler, "long");
        http_server_add_handler(fx.srv, "/big", big_handler, NULL);
        http_server_add_handler(fx.srv, "/defer", defer_handler, NULL);
    } else {
        fprintf(stderr, "%s\n", err);
        uv_close((uv_handle_t *)&fx.async, NULL);
    }
    pthread_mutex_lock(&fx.mu);
    fx.start_rc = rc;
    fx.port = http_server_port(fx.srv);
    fx.started = true;
    pthread_cond_broadcast(&fx.cv);
    pthread_mutex_unlock(&fx.mu);
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&fx.loop), 0); /* every handle was closed */
    return NULL;
}

/* Limits for the next start_server only (then back to defaults). */
static struct http_server_options next_limits;

static void start_server(const char *listen, size_t max_request, uint64_t read_timeout_ms)
{
    struct http_server_options limits = next_limits;

    memset(&next_limits, 0, sizeof(next_limits));
    big_calls = 0;
    memset(&fx, 0, sizeof(fx));
    pthread_mutex_init(&fx.mu, NULL);
    pthread_cond_init(&fx.cv, NULL);
    fx.reg = metrics_registry_new();
    metrics_counter_add(metrics_counter(fx.reg, "drover_test_total", "A test counter.", NULL), 7);
    fx.opts = (struct http_server_options){.listen = listen,
                                           .metrics = fx.reg,
                                           .max_request_bytes = max_request,
                                           .read_timeout_ms = read_timeout_ms,
                                           .header_timeout_ms = limits.header_timeout_ms,
                                           .max_connections = limits.max_connections};
    ck_assert_int_eq(pthread_create(&fx.thread, NULL, server_main, NULL), 0);
    pthread_mutex_lock(&fx.mu);
    while (!fx.started)
        pthread_cond_wait(&fx.cv, &fx.mu);
    pthread_mutex_unlock(&fx.mu);
    ck_assert_int_eq(fx.start_rc, 0);
    ck_assert_int_gt(fx.port, 0);
}

/* Run fn on the loop thread and wait for it. */
static void on_loop(void (*fn)(void *), void *arg)
{
    pthread_mutex_lock(&fx.mu);
    fx.cmd = fn;
    fx.cmd_arg = arg;
    fx.cmd_done = false;
    uv_async_send(&fx.async);
    while (!fx.cmd_done)
        pthread_cond_wait(&fx.cv, &fx.mu);
    pthread_mutex_unlock(&fx.mu);
}

static void stop_server(void)
{
    pthread_mutex_lock(&fx.mu);
    fx.stop = true;
    uv_async_send(&fx.async);
    pthread_mutex_unlock(&fx.mu);
    pthread_join(fx.thread, NULL);
    metrics_registry_free(fx.reg);
}

/* ---- client side ------------------------------------------------------- */

struct reply {
    long status;
    char body[8192];
    size_t len;
    char headers[4096];
    size_t hlen;
    long connects;
};

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    struct reply *r = arg;
    size_t len = size * n;
    size_t room = sizeof(r->body) - 1 - r->len;
    memcpy(r->body + r->len, p, len < room ? len : room);
    r->len += len < room ? len : room;
    r->body[r->len] = '\0';
    return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    struct reply *r = arg;
    size_t len = size * n;
    size_t room = sizeof(r->headers) - 1 - r->hlen;
    memcpy(r->headers + r->hlen, p, len < room ? len : room);
    r->hlen += len < room ? len : room;
    r->headers[r->hlen] = '\0';
    return len;
}

static CURL *new_easy(void)
{
    CURL *c = curl_easy_init();
    ck_assert_ptr_nonnull(c);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*"); /* loopback only, whatever the environment says */
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    return c;
}

static void do_request(CURL *c, const char *method, const char *host, const char *path,
                       const char *body, struct curl_slist *hdrs, struct reply *r)
{
    char url[256];

    memset(r, 0, sizeof(*r));
    snprintf(url, sizeof(url), "http://%s:%d%s", host, fx.port, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_NOBODY, (long)(strcmp(method, "HEAD") == 0));
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    } else if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    }
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, strcmp(method, "HEAD") ? method : NULL);
    CURLcode rc = curl_easy_perform(c);
    ck_assert_msg(rc == CURLE_OK, "%s %s: %s", method, path, curl_easy_strerror(rc));
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &r->connects);
}

static void get(const char *path, struct reply *r)
{
    CURL *c = new_easy();
    do_request(c, "GET", "127.0.0.1", path, NULL, NULL, r);
    curl_easy_cleanup(c);
}

static int raw_connect(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)fx.port)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    ck_assert_int_ge(fd, 0);
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

/* Read until the server closes the connection (bounded by 20 s). */
static size_t raw_read_all(int fd, char *buf, size_t cap)
{
    size_t len = 0;

    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        ck_assert_msg(poll(&p, 1, 20000) == 1, "server did not answer or close in 20 s");
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        if (len == cap - 1)
            break;
    }
    buf[len] = '\0';
    return len;
}

/* ---- tests ----------------------------------------------------------- */

static void set_ready_cmd(void *arg)
{
    http_server_set_ready(fx.srv, arg != NULL, arg);
}

static void set_not_ready_cmd(void *arg)
{
    http_server_set_ready(fx.srv, false, arg);
}

START_TEST(test_builtin_endpoints)
{
    struct reply r;

    start_server("127.0.0.1:0", 0, 0);
    get("/healthz", &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "ok\n");

    get("/readyz", &r);
    ck_assert_int_eq(r.status, 503);
    ck_assert_str_eq(r.body, "starting up\n");
    on_loop(set_ready_cmd, "ready now");
    get("/readyz", &r);
    ck_assert_int_eq(r.status, 200);
    on_loop(set_not_ready_cmd, "no snapshot and Consul unreachable");
    get("/readyz", &r);
    ck_assert_int_eq(r.status, 503);
    ck_assert_str_eq(r.body, "no snapshot and Consul unreachable\n");

    get("/metrics", &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(
        strstr(r.headers, "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
    ck_assert_ptr_nonnull(strstr(r.body, "# HELP drover_test_total A test counter.\n"
                                         "# TYPE drover_test_total counter\n"
                                         "drover_test_total 7\n"));
    /* the server counts its own answers: the five above */
    ck_assert_ptr_nonnull(strstr(r.body, "drover_http_requests_total{code=\"200\"} 2\n"));
    ck_assert_ptr_nonnull(strstr(r.body, "drover_http_requests_total{code=\"503\"} 2\n"));

    get("/nope", &r);
    ck_assert_int_eq(r.status, 404);
    get("/metrics/", &r);
    ck_assert_int_eq(r.status, 404);

    CURL *c = new_easy();
    do_request(c, "POST", "127.0.0.1", "/metrics", "x=1", NULL, &r);
    ck_assert_int_eq(r.status, 405);
    ck_assert_ptr_nonnull(strstr(r.headers, "Allow: GET, HEAD\r\n"));
    do_request(c, "DELETE", "127.0.0.1", "/healthz", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 405);
    do_request(c, "HEAD", "127.0.0.1", "/healthz", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_uint_eq(r.len, 0);
    ck_assert_ptr_nonnull(strstr(r.headers, "Content-Length: 3\r\n"));
    do_request(c, "GET", "127.0.0.1", "/healthz?verbose=1", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    curl_easy_cleanup(c);
    stop_server();
}
END_TEST

START_TEST(test_keep_alive_reuses_connection)
{
    struct reply r;
    CURL *c;

    start_server("127.0.0.1:0", 0, 0);
    c = new_easy();
    do_request(c, "GET", "127.0.0.1", "/healthz", NULL, NULL, &r);
    ck_assert_int_eq(r.connects, 1);
    ck_assert_ptr_nonnull(strstr(r.headers, "Connection: keep-alive\r\n"));
    for (int i = 0; i < 5; i++) {
        do_request(c, "GET", "127.0.0.1", i % 2 ? "/metrics" : "/nope", NULL, NULL, &r);
        ck_assert_int_eq(r.connects, 0); /* no new connection: reused */
    }
    curl_easy_cleanup(c);

    /* HTTP/1.0 without keep-alive and "Connection: close" end the connection */
    int fd = raw_connect();
    const char req[] = "GET /healthz HTTP/1.0\r\n\r\n";
    ck_assert_int_eq(write(fd, req, sizeof(req) - 1), (ssize_t)sizeof(req) - 1);
    char buf[2048];
    raw_read_all(fd, buf, sizeof(buf));
    ck_assert_ptr_nonnull(strstr(buf, "Connection: close\r\n"));
    ck_assert_ptr_nonnull(strstr(buf, "\r\n\r\nok\n"));
    close(fd);
    stop_server();
}
END_TEST

START_TEST(test_pipelined_requests)
{
    char buf[4096];

    start_server("127.0.0.1:0", 0, 0);
    int fd = raw_connect();
    const char reqs[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                        "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
                        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    ck_assert_int_eq(write(fd, reqs, sizeof(reqs) - 1), (ssize_t)sizeof(reqs) - 1);
    raw_read_all(fd, buf, sizeof(buf));
    char *a = strstr(buf, "HTTP/1.1 200 OK\r\n");
    ck_assert_ptr_nonnull(a);
    char *b = strstr(a + 1, "HTTP/1.1 404 Not Found\r\n");
    ck_assert_ptr_nonnull(b);
    char *d = strstr(b + 1, "HTTP/1.1 200 OK\r\n");
    ck_assert_ptr_nonnull(d);
    ck_assert_ptr_nonnull(strstr(d, "Connection: close\r\n"));
    close(fd);
    stop_server();
}
END_TEST

/* Large responses to pipelined requests from a client that half-closes
 * its side right away: every response arrives complete, in order. */
START_TEST(test_large_pipelined_responses_after_half_close)
{
    size_t cap = 3 * (BIG_LEN + 1024), len = 0;
    char *buf = malloc(cap);

    start_server("127.0.0.1:0", 0, 0);
    int fd = raw_connect();
    const char reqs[] = "GET /big HTTP/1.1\r\nHost: x\r\n\r\n"
                        "GET /big HTTP/1.1\r\nHost: x\r\n\r\n"
                        "GET /big HTTP/1.1\r\nHost: x\r\n\r\n";
    ck_assert_int_eq(write(fd, reqs, sizeof(reqs) - 1), (ssize_t)sizeof(reqs) - 1);
    ck_assert_int_eq(shutdown(fd, SHUT_WR), 0);
    len = raw_read_all(fd, buf, cap);
    close(fd);
    /* three heads and three full bodies */
    size_t heads = 0, zs = 0;
    for (char *p = buf; (p = strstr(p, "HTTP/1.1 200 OK\r\n")) != NULL; p++)
        heads++;
    for (size_t i = 0; i < len; i++)
        zs += buf[i] == 'z';
    ck_assert_uint_eq(heads, 3);
    ck_assert_uint_eq(zs, 3 * (size_t)BIG_LEN);
    free(buf);
    stop_server();
}
END_TEST

START_TEST(test_custom_handler_gets_request)
{
    struct reply r;
    struct curl_slist *h = curl_slist_append(NULL, "X-Test: hello");
    char big[3000];

    start_server("127.0.0.1:0", 0, 0);
    CURL *c = new_easy();
    do_request(c, "POST", "127.0.0.1", "/echo/cmd?team=ops&x=1", "text=drain+node-1", h, &r);
    ck_assert_int_eq(r.status, 201);
    ck_assert_ptr_nonnull(strstr(r.headers, "Content-Type: application/json\r\n"));
    ck_assert_ptr_nonnull(strstr(r.headers, "\r\nX-Consul-Index: 42\r\n"));
    ck_assert_ptr_null(strstr(r.headers, "Injected"));
    ck_assert_str_eq(r.body, "POST /echo/cmd q=team=ops&x=1 h=hello len=17 "
                             "body=text=drain+node-1 tag=short");
    /* longest prefix wins */
    do_request(c, "PUT", "127.0.0.1", "/echo/long", "", NULL, &r);
    ck_assert_str_eq(r.body, "PUT /echo/long q= h=- len=0 body= tag=long");
    /* a body large enough for curl to send "Expect: 100-continue" */
    memset(big, 'b', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    do_request(c, "POST", "127.0.0.1", "/echo", big, NULL, &r);
    ck_assert_int_eq(r.status, 201);
    ck_assert_ptr_nonnull(strstr(r.body, "len=2999 "));
    curl_easy_cleanup(c);
    curl_slist_free_all(h);
    stop_server();
}
END_TEST

START_TEST(test_oversized_and_bad_requests)
{
    struct reply r;
    char body[9000], buf[2048];
    CURL *c;

    start_server("127.0.0.1:0", 4096, 0);
    memset(body, 'x', sizeof(body) - 1);
    body[sizeof(body) - 1] = '\0';
    c = new_easy();
    do_request(c, "POST", "127.0.0.1", "/echo", body, NULL, &r);
    ck_assert_int_eq(r.status, 413);
    curl_easy_cleanup(c);

    /* a huge header */
    char hdr[6000];
    memset(hdr, 'h', sizeof(hdr) - 1);
    hdr[sizeof(hdr) - 1] = '\0';
    memcpy(hdr, "X-Big: ", 7);
    struct curl_slist *h = curl_slist_append(NULL, hdr);
    c = new_easy();
    do_request(c, "GET", "127.0.0.1", "/healthz", NULL, h, &r);
    ck_assert_int_eq(r.status, 431);
    curl_easy_cleanup(c);
    curl_slist_free_all(h);

    /* a chunked body without Content-Length over the limit */
    int fd = raw_connect();
    const char head[] = "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    ck_assert_int_eq(write(fd, head, sizeof(head) - 1), (ssize_t)sizeof(head) - 1);
    for (int i = 0; i < 3; i++) {
        char chunk[2100];
        int n = snprintf(chunk, sizeof(chunk), "7d0\r\n%2000d\r\n", 0);
        if (write(fd, chunk, (size_t)n) < 0)
            break; /* server may already have closed */
    }
    raw_read_all(fd, buf, sizeof(buf));
    ck_assert_ptr_nonnull(strstr(buf, "HTTP/1.1 413 "));
    close(fd);

    /* garbage */
    fd = raw_connect();
    const char junk[] = "HELLO\x01\x02 /\r\n\r\n";
    ck_assert_int_eq(write(fd, junk, sizeof(junk) - 1), (ssize_t)sizeof(junk) - 1);
    raw_read_all(fd, buf, sizeof(buf));
    ck_assert_ptr_nonnull(strstr(buf, "HTTP/1.1 400 "));
    close(fd);

    /* the server still works */
    get("/healthz", &r);
    ck_assert_int_eq(r.status, 200);
    stop_server();
}
END_TEST

START_TEST(test_slow_client_does_not_block)
{
    struct reply r;
    char buf[1024];

    /* The slow client's head is cut off by the header timeout: 2 s, not
     * the default 5 s, is still far more than three local requests take
     * (milliseconds; under ASan on a busy machine, tens). */
    next_limits.header_timeout_ms = 2000;
    start_server("127.0.0.1:0", 0, 500);
    /* a client that sends half a request and then stalls */
    int slow = raw_connect();
    const char part[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n";
    ck_assert_int_eq(write(slow, part, sizeof(part) - 1), (ssize_t)sizeof(part) - 1);
    /* meanwhile other clients are served */
    for (int i = 0; i < 3; i++) {
        get("/healthz", &r);
        ck_assert_int_eq(r.status, 200);
    }
    /* while the slow one is still open: served beside it, not after it */
    struct pollfd p = {.fd = slow, .events = POLLIN};
    ck_assert_msg(poll(&p, 1, 0) == 0,
                  "the stalled connection was closed or answered before "
                  "the other requests were done (revents 0x%x)",
                  (unsigned)p.revents);
    /* and then cut off by the header timeout, not answered */
    size_t n = raw_read_all(slow, buf, sizeof(buf));
    ck_assert_uint_eq(n, 0);
    close(slow);
    stop_server();
}
END_TEST

static void noop_cmd(void *arg)
{
    (void)arg;
}

/* A client that pipelines requests and never reads the answers costs the
 * server one answer, not one per request: parsing stops until the answer
 * has left the write queue. Once it reads, every answer arrives in order. */
START_TEST(test_pipelining_holds_one_answer)
{
    enum { N = 8 };
    size_t cap = N * (BIG_LEN + 1024), len = 0;
    char *buf = malloc(cap);
    char reqs[N * 64];
    size_t rl = 0;

    ck_assert_ptr_nonnull(buf);
    start_server("127.0.0.1:0", 0, 0);
    int fd = raw_connect();
    for (int i = 0; i < N; i++)
        rl +=
            (size_t)snprintf(reqs + rl, sizeof(reqs) - rl, "GET /big HTTP/1.1\r\nHost: x\r\n%s\r\n",
                             i == N - 1 ? "Connection: close\r\n" : "");
    ck_assert_int_eq(write(fd, reqs, rl), (ssize_t)rl);
    /* Wait for the first answer to be built (bounded: 20 s), then let the
     * loop run a few more turns: a server that went on parsing would build
     * the other answers right away, all from the one read. */
    for (int i = 0; i < 2000 && __atomic_load_n(&big_calls, __ATOMIC_SEQ_CST) < 1; i++)
        usleep(10000);
    ck_assert_int_eq(__atomic_load_n(&big_calls, __ATOMIC_SEQ_CST), 1);
    for (int i = 0; i < 5; i++)
        on_loop(noop_cmd, NULL);
    ck_assert_msg(__atomic_load_n(&big_calls, __ATOMIC_SEQ_CST) == 1,
                  "%d answers built for a client that reads nothing (want 1)",
                  __atomic_load_n(&big_calls, __ATOMIC_SEQ_CST));
    len = raw_read_all(fd, buf, cap);
    close(fd);
    size_t heads = 0, zs = 0;
    for (char *p = buf; (p = memmem(p, len - (size_t)(p - buf), "HTTP/1.1 200 OK\r\n", 17)) != NULL;
         p++)
        heads++;
    for (size_t i = 0; i < len; i++)
        zs += buf[i] == 'z';
    ck_assert_uint_eq(heads, N);
    ck_assert_uint_eq(zs, N * (size_t)BIG_LEN);
    free(buf);
    stop_server();
}
END_TEST

static void keepalive_healthz(int fd)
{
    const char req[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    char buf[1024];

    ck_assert_int_eq(write(fd, req, sizeof(req) - 1), (ssize_t)sizeof(req) - 1);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    ck_assert_msg(poll(&p, 1, 20000) == 1, "no answer to /healthz in 20 s");
    ck_assert_int_gt(read(fd, buf, sizeof(buf) - 1), 0);
}

/* At the connection limit the connection quiet for longest makes room:
 * held connections never lock a probe out. Counted in a metric. */
START_TEST(test_cap_evicts_quietest)
{
    struct reply r;
    char buf[256];
    int held[3];

    next_limits.max_connections = 3;
    start_server("127.0.0.1:0", 0, 0);
    for (int i = 0; i < 3; i++) {
        held[i] = raw_connect();
        keepalive_healthz(held[i]); /* accepted, answered, now idle */
        usleep(2000);               /* distinct activity times (ms clock) */
    }
    get("/healthz", &r); /* a fourth: admitted */
    ck_assert_int_eq(r.status, 200);
    /* the oldest idle one was closed for it; the newest still works */
    ck_assert_uint_eq(raw_read_all(held[0], buf, sizeof(buf)), 0);
    keepalive_healthz(held[2]);
    get("/metrics", &r);
    ck_assert_ptr_nonnull(
        strstr(r.body, "drover_http_connections_closed_total{reason=\"evicted\"}"));
    for (int i = 0; i < 3; i++)
        close(held[i]);
    stop_server();
}
END_TEST

/* A connection that sends nothing is closed after the header timeout,
 * long before the keep-alive idle timeout. */
START_TEST(test_silent_connection_header_timeout)
{
    struct reply r;
    char buf[256];

    next_limits.header_timeout_ms = 200;
    start_server("127.0.0.1:0", 0, 0);
    int fd = raw_connect();
    ck_assert_uint_eq(raw_read_all(fd, buf, sizeof(buf)), 0); /* closed, nothing sent */
    close(fd);
    get("/metrics", &r);
    ck_assert_ptr_nonnull(
        strstr(r.body, "drover_http_connections_closed_total{reason=\"header_timeout\"} 1"));
    stop_server();
}
END_TEST

/* Request head lines must end in CRLF: a bare LF (which http-parser alone
 * would accept) is refused, in the request line, a header or the blank
 * line, also in a pipelined request; a body may hold any bytes. */
START_TEST(test_bare_lf_refused)
{
    static const char *const bad[] = {
        "GET /healthz HTTP/1.1\nHost: x\r\n\r\n",
        "GET /healthz HTTP/1.1\r\nHost: x\nX-A: 1\r\n\r\n",
        "GET /healthz HTTP/1.1\r\nHost: x\r\n\n",
        "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\nHost: x\r\n\r\n",
    };
    char buf[4096];

    start_server("127.0.0.1:0", 0, 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int fd = raw_connect();
        ck_assert_int_eq(write(fd, bad[i], strlen(bad[i])), (ssize_t)strlen(bad[i]));
        raw_read_all(fd, buf, sizeof(buf));
        ck_assert_msg(strstr(buf, "HTTP/1.1 400 Bad Request\r\n") != NULL, "case %zu: %s", i, buf);
        ck_assert_msg(strstr(buf, "must end in CRLF") != NULL, "case %zu: %s", i, buf);
        close(fd);
    }
    int fd = raw_connect();
    const char ok[] = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                      "Connection: close\r\n\r\na\nb";
    ck_assert_int_eq(write(fd, ok, sizeof(ok) - 1), (ssize_t)sizeof(ok) - 1);
    raw_read_all(fd, buf, sizeof(buf));
    ck_assert_msg(strstr(buf, "HTTP/1.1 201 Created\r\n") != NULL, "%s", buf);
    ck_assert_ptr_nonnull(strstr(buf, "body=a\nb"));
    close(fd);
    stop_server();
}
END_TEST

START_TEST(test_listen_addresses)
{
    struct reply r;
    char err[256];
    uv_loop_t loop;
    struct http_server *srv;

    start_server(":0", 0, 0);
    get("/healthz", &r);
    ck_assert_int_eq(r.status, 200);
    stop_server();

    int fd6 = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 lo6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    bool have_v6 = fd6 >= 0 && bind(fd6, (struct sockaddr *)&lo6, sizeof(lo6)) == 0;
    if (fd6 >= 0)
        close(fd6);
    if (have_v6) {
        start_server("[::1]:0", 0, 0);
        CURL *c = new_easy();
        do_request(c, "GET", "[::1]", "/healthz", NULL, NULL, &r);
        ck_assert_int_eq(r.status, 200);
        curl_easy_cleanup(c);
        stop_server();
    }

    uv_loop_init(&loop);
    static const char *const bad[] = {
        "9100",      "localhost:9100", "127.0.0.1:",   "1.2.3.4:70000",
        "[::1]9100", "[]:1",           "127.0.0.1:12x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct http_server_options o = {.listen = bad[i]};
        ck_assert_int_eq(http_server_start(&loop, &o, &srv, err, sizeof(err)), -EINVAL);
        ck_assert_ptr_nonnull(strstr(err, bad[i]));
        ck_assert_ptr_null(srv);
    }

    /* a port in use */
    start_server("127.0.0.1:0", 0, 0);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", fx.port);
    struct http_server_options o = {.listen = addr};
    ck_assert_int_eq(http_server_start(&loop, &o, &srv, err, sizeof(err)), UV_EADDRINUSE);
    ck_assert_ptr_nonnull(strstr(err, addr));
    uv_run(&loop, UV_RUN_DEFAULT); /* release the failed listener */
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    stop_server();
}
END_TEST

static void parked_cmd(void *arg)
{
    *(bool *)arg = parked != NULL;
}

static void wait_parked(void)
{
    bool have = false;
    for (int i = 0; i < 2000 && !have; i++) { /* bounded: 20 s */
        on_loop(parked_cmd, &have);
        if (!have)
            usleep(10000);
    }
    ck_assert_msg(have, "the deferring handler never ran");
}

/* A deferred request is answered when completed, with Connection: close;
 * the loop keeps serving other clients meanwhile, and a request pipelined
 * behind the deferred one is not answered. */
START_TEST(test_deferred_response)
{
    char buf[4096];
    struct reply r;

    start_server("127.0.0.1:0", 0, 0);
    int fd = raw_connect();
    const char reqs[] = "POST /defer HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
                        "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    ck_assert_int_eq(write(fd, reqs, sizeof(reqs) - 1), (ssize_t)sizeof(reqs) - 1);
    wait_parked();
    get("/healthz", &r); /* another client is served while one waits */
    ck_assert_int_eq(r.status, 200);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    ck_assert_int_eq(poll(&p, 1, 0), 0); /* nothing sent yet */
    on_loop(complete_cmd, NULL);
    raw_read_all(fd, buf, sizeof(buf));
    close(fd);
    ck_assert_ptr_nonnull(strstr(buf, "HTTP/1.1 202 Accepted\r\n"));
    ck_assert_ptr_nonnull(strstr(buf, "Connection: close\r\n"));
    ck_assert_ptr_nonnull(strstr(buf, "X-Deferred: yes\r\n"));
    ck_assert_ptr_nonnull(strstr(buf, "\r\n\r\n{\"later\":\"hello\"}"));
    ck_assert_ptr_null(strstr(buf, "must not be sent"));
    ck_assert_ptr_null(strstr(buf, "200 OK")); /* the pipelined request was not served */
    stop_server();
}
END_TEST

/* A client that waits longer than the read timeout is disconnected; the
 * late completion only frees the pending request (ASan checks the rest). */
START_TEST(test_deferred_timeout_then_complete)
{
    char buf[1024];

    start_server("127.0.0.1:0", 0, 200);
    int fd = raw_connect();
    const char req[] = "POST /defer HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi";
    ck_assert_int_eq(write(fd, req, sizeof(req) - 1), (ssize_t)sizeof(req) - 1);
    wait_parked();
    ck_assert_uint_eq(raw_read_all(fd, buf, sizeof(buf)), 0); /* closed, no answer */
    close(fd);
    on_loop(complete_cmd, NULL);
    /* a client that hangs up first: completion after the close is harmless */
    fd = raw_connect();
    ck_assert_int_eq(write(fd, req, sizeof(req) - 1), (ssize_t)sizeof(req) - 1);
    wait_parked();
    close(fd);
    on_loop(complete_cmd, NULL);
    stop_server();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("http_server");
    TCase *tc = tcase_create("core");

    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    log_set_level(LOGL_WARN);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_builtin_endpoints);
    tcase_add_test(tc, test_keep_alive_reuses_connection);
    tcase_add_test(tc, test_pipelined_requests);
    tcase_add_test(tc, test_custom_handler_gets_request);
    tcase_add_test(tc, test_large_pipelined_responses_after_half_close);
    tcase_add_test(tc, test_oversized_and_bad_requests);
    tcase_add_test(tc, test_slow_client_does_not_block);
    tcase_add_test(tc, test_listen_addresses);
    tcase_add_test(tc, test_pipelining_holds_one_answer);
    tcase_add_test(tc, test_cap_evicts_quietest);
    tcase_add_test(tc, test_silent_connection_header_timeout);
    tcase_add_test(tc, test_bare_lf_refused);
    tcase_add_test(tc, test_deferred_response);
    tcase_add_test(tc, test_deferred_timeout_then_complete);
    suite_add_tcase(s, tc);
    int rc = suite_main_run(s);
    curl_global_cleanup();
    return rc;
}
