/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for agent_server and agent_wait on loopback: the server's
 * accept loop in one thread, the wait's libuv loop in the test's thread,
 * clients in a third. The answer callback reports how the request ended
 * and what it held, so each case checks the framing: line, EOF, timeout,
 * oversize (with the reply surviving the extra input), which side
 * answered (at once, or handed over to wait for the line), the connection
 * cap, shutdown with connections open (ASan: no leaks) and shutdown of a
 * thread blocked in accept4 or poll. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "agent_reply.h"
#include "agent_server.h"
#include "agent_wait.h"
#include "../common/suite_main.h"

struct fixture {
    uv_loop_t loop;
    uv_async_t done;
    struct agent_server *srv;
    struct agent_wait *wait;
    pthread_t serve_thread;
    size_t active;
    int port;
    void (*client)(struct fixture *);
    int failures;
    char failure[256];
};

static int answer(void *ctx, const char *req, size_t len, enum agent_req_end end, char *out,
                  size_t cap)
{
    /* "<end> <len> <first line>\n" */
    const char *nl = memchr(req, '\n', len);
    size_t line = nl ? (size_t)(nl - req) : len;
    if (req[len] != '\0')
        return -1; /* the server promises a terminator */
    if (line > 40)
        line = 40;
    return snprintf(out, cap, "%s %zu %.*s\n", agent_req_end_name(end), len, (int)line, req);
}

static int client_connect(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Read until EOF; returns bytes read, -errno on error. */
static ssize_t read_all(int fd, char *buf, size_t cap)
{
    size_t got = 0;
    while (got < cap - 1) {
        ssize_t n = read(fd, buf + got, cap - 1 - got);
        if (n == 0)
            break;
        if (n < 0)
            return -errno;
        got += (size_t)n;
    }
    buf[got] = '\0';
    return (ssize_t)got;
}

static void expect(struct fixture *f, bool ok, const char *what)
{
    if (!ok && !f->failures++)
        snprintf(f->failure, sizeof(f->failure), "%s", what);
}

static void put(struct fixture *f, int fd, const char *data, size_t len)
{
    expect(f, write(fd, data, len) == (ssize_t)len, "client write");
}

/* Counters of both sides. */
static struct agent_server_stats stats_of(struct fixture *f)
{
    struct agent_server_stats st = {0};
    agent_server_stats_add(f->srv, &st);
    agent_wait_stats_add(f->wait, &st);
    return st;
}

/* Answered at once by the accepting thread (as opposed to the wait). */
static uint64_t answered_at_once(struct fixture *f, enum agent_req_end end)
{
    struct agent_server_stats st = {0};
    agent_server_stats_add(f->srv, &st);
    return st.ends[end];
}

/* Wait until the wait holds n connections: the accept thread hands them
 * over and the wait's loop adopts them, both in other threads. Each step
 * is a few microseconds; 5 s is for a machine busy with other work. */
static void wait_active(struct fixture *f, size_t n)
{
    for (int i = 0; i < 500 && stats_of(f).active != n; i++)
        usleep(10000);
    expect(f, stats_of(f).active == n, "5 s for the wait to hold the connections");
}

static void *client_thread(void *arg)
{
    struct fixture *f = arg;
    f->client(f);
    uv_async_send(&f->done);
    return NULL;
}

static void *serve_thread(void *arg)
{
    agent_server_serve(arg);
    return NULL;
}

/* The clients are done: stop accepting (the serving thread wakes from
 * accept4), then close what the wait still holds. */
static void on_done(uv_async_t *a)
{
    struct fixture *f = a->data;
    agent_server_stop(f->srv);
    pthread_join(f->serve_thread, NULL);
    agent_wait_close(f->wait);
    uv_close((uv_handle_t *)&f->done, NULL);
}

static void run_with(void (*client)(struct fixture *), uint64_t timeout_ms, size_t max_conns)
{
    struct fixture f = {.client = client};
    pthread_t th;

    ck_assert_int_eq(uv_loop_init(&f.loop), 0);
    ck_assert_int_eq(agent_wait_new(&f.loop, timeout_ms, answer, NULL, &f.wait), 0);
    struct agent_server_config cfg = {
        .max_connections = max_conns, .shared_active = &f.active, .wait = f.wait};
    ck_assert_int_eq(agent_server_new(&cfg, answer, NULL, &f.srv), 0);
    ck_assert_int_eq(agent_server_listen(f.srv, "127.0.0.1:0"), 0);
    f.port = agent_server_port(f.srv, 0);
    ck_assert_int_gt(f.port, 0);
    uv_async_init(&f.loop, &f.done, on_done);
    f.done.data = &f;
    ck_assert_int_eq(pthread_create(&f.serve_thread, NULL, serve_thread, f.srv), 0);
    ck_assert_int_eq(pthread_create(&th, NULL, client_thread, &f), 0);
    uv_run(&f.loop, UV_RUN_DEFAULT);
    pthread_join(th, NULL);
    ck_assert_int_eq(stats_of(&f).active, 0);
    ck_assert_uint_eq(f.active, 0);
    agent_server_free(f.srv);
    agent_wait_free(f.wait);
    ck_assert_int_eq(uv_loop_close(&f.loop), 0);
    ck_assert_msg(f.failures == 0, "%d failures, first: %s", f.failures, f.failure);
}

static void client_line(struct fixture *f)
{
    char buf[256];
    int fd = client_connect(f->port);
    expect(f, fd >= 0, "connect");
    put(f, fd, "be/s\nrest", 9);
    ssize_t n = read_all(fd, buf, sizeof(buf));
    expect(f, n > 0 && strcmp(buf, "line 9 be/s\n") == 0, "line reply");
    close(fd);

    /* a line arriving in pieces: handed over to the wait, which answers
     * once the rest is there; meanwhile the accepting thread answers a
     * check whose line is complete without waiting for it */
    fd = client_connect(f->port);
    put(f, fd, "be/", 3);
    wait_active(f, 1);
    int quick = client_connect(f->port);
    put(f, quick, "be/q\n", 5);
    read_all(quick, buf, sizeof(buf));
    expect(f, strcmp(buf, "line 5 be/q\n") == 0, "a complete line is not held up by a slow one");
    close(quick);
    wait_active(f, 1); /* the slow client is still waiting */
    put(f, fd, "s\n", 2);
    read_all(fd, buf, sizeof(buf));
    expect(f, strcmp(buf, "line 5 be/s\n") == 0, "line in pieces");
    close(fd);
    /* the one in pieces by the wait; the others at once unless they were
     * accepted before their line arrived (a race with the client's write,
     * see test_stop_while_blocked_* for the deterministic case) */
    expect(f, answered_at_once(f, AGENT_REQ_LINE) <= 2 && stats_of(f).ends[AGENT_REQ_LINE] == 3,
           "three lines, at most two answered at once");
}

START_TEST(test_line)
{
    run_with(client_line, 5000, 100);
}
END_TEST

static void client_eof_and_timeout(struct fixture *f)
{
    char buf[256];
    int fd = client_connect(f->port);
    put(f, fd, "be/s", 4);
    shutdown(fd, SHUT_WR);
    read_all(fd, buf, sizeof(buf));
    expect(f, strcmp(buf, "eof 4 be/s\n") == 0, "eof reply");
    close(fd);

    fd = client_connect(f->port);
    put(f, fd, "be/s", 4);
    read_all(fd, buf, sizeof(buf));
    expect(f, strcmp(buf, "timeout 4 be/s\n") == 0, "timeout reply");
    close(fd);

    fd = client_connect(f->port);
    read_all(fd, buf, sizeof(buf));
    expect(f, strcmp(buf, "timeout 0 \n") == 0, "silent client reply");
    close(fd);
}

START_TEST(test_eof_and_timeout)
{
    run_with(client_eof_and_timeout, 50, 100);
}
END_TEST

static void client_oversize(struct fixture *f)
{
    char big[8192], buf[256];
    memset(big, 'x', sizeof(big));
    int fd = client_connect(f->port);
    put(f, fd, big, sizeof(big));
    /* the reply arrives intact despite the input we never read... */
    ssize_t n = read_all(fd, buf, sizeof(buf));
    char want[64];
    snprintf(want, sizeof(want), "oversize %d xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
             AGENT_REQUEST_MAX + 1);
    expect(f, n > 0 && strcmp(buf, want) == 0, "oversize reply");
    close(fd);
}

START_TEST(test_oversize)
{
    run_with(client_oversize, 2000, 100);
}
END_TEST

static void client_cap(struct fixture *f)
{
    char buf[256];
    int held[3];
    for (int i = 0; i < 3; i++)
        held[i] = client_connect(f->port);
    wait_active(f, 3);
    int fd = client_connect(f->port);
    ssize_t n = read_all(fd, buf, sizeof(buf));
    expect(f, n == 0 || n == -ECONNRESET, "over the cap: closed without a reply");
    close(fd);
    expect(f, stats_of(f).refused == 1, "refused counted");
    for (int i = 0; i < 3; i++) {
        put(f, held[i], "a/b\n", 4);
        n = read_all(held[i], buf, sizeof(buf));
        expect(f, n > 0 && strcmp(buf, "line 4 a/b\n") == 0, "held connection answered");
        close(held[i]);
    }
}

START_TEST(test_connection_cap)
{
    run_with(client_cap, 5000, 3);
}
END_TEST

static void client_leave_open(struct fixture *f)
{
    /* connections still open when the server closes must not leak */
    for (int i = 0; i < 5; i++) {
        int fd = client_connect(f->port);
        put(f, fd, "be/", 3);
        /* leaked on purpose until the process ends: the server side is
         * what is being checked */
        (void)fd;
    }
    wait_active(f, 5);
}

START_TEST(test_close_with_open_connections)
{
    run_with(client_leave_open, 10000, 100);
}
END_TEST

START_TEST(test_listen_addresses)
{
    struct agent_server *srv;
    struct agent_server_config cfg = {.request_timeout_ms = 100, .max_connections = 10};
    struct sockaddr_storage ss;

    ck_assert_int_eq(agent_server_parse_addr("127.0.0.1:80", &ss), 0);
    ck_assert_int_eq(ss.ss_family, AF_INET);
    ck_assert_int_eq(agent_server_parse_addr("[::1]:80", &ss), 0);
    ck_assert_int_eq(ss.ss_family, AF_INET6);
    ck_assert_int_eq(agent_server_parse_addr("localhost:80", &ss), -EINVAL);
    ck_assert_int_eq(agent_server_parse_addr("::1:80", &ss), -EINVAL);
    ck_assert_int_eq(agent_server_parse_addr("127.0.0.1", &ss), -EINVAL);
    ck_assert_int_eq(agent_server_parse_addr("127.0.0.1:65536", &ss), -EINVAL);
    ck_assert_int_eq(agent_server_parse_addr("127.0.0.1:", &ss), -EINVAL);
    ck_assert_int_eq(agent_server_parse_addr("[::1]80", &ss), -EINVAL);
    ck_assert_int_eq(agent_server_parse_addr(NULL, &ss), -EINVAL);

    ck_assert_int_eq(agent_server_new(&cfg, answer, NULL, &srv), 0);
    /* no listener, no wait: nothing to serve */
    ck_assert_int_eq(agent_server_serve(srv), -EINVAL);
    ck_assert_int_eq(agent_server_listen(srv, "127.0.0.1:0"), 0);
    /* the same port again is in use */
    char again[32];
    snprintf(again, sizeof(again), "127.0.0.1:%d", agent_server_port(srv, 0));
    ck_assert_int_eq(agent_server_listen(srv, again), -EADDRINUSE);
    ck_assert_int_eq(agent_server_port(srv, 5), 0);
    agent_server_free(srv);
}
END_TEST

/* Wait until the peer's TCP has acknowledged everything written on fd
 * (the unacknowledged bytes, SIOCOUTQ, are 0): then the line is queued on
 * the server side. Loopback delivers within the write unless a busy
 * machine defers the softirq; 5 s is for that. */
static bool delivered(int fd)
{
    for (int i = 0; i < 5000; i++) {
        int unacked = -1;
        if (ioctl(fd, SIOCOUTQ, &unacked) == 0 && unacked == 0)
            return true;
        usleep(1000);
    }
    return false;
}

/* Connections whose line is queued before the serving thread starts are
 * answered at once by it (no wait: its loop does not even run here), on
 * every listener; then the thread, asleep in accept4 (one listener) or
 * poll (two), wakes when the server is stopped, with no connection
 * arriving. The join is bounded: waking takes microseconds, 10 s leaves
 * room for a busy machine. */
static void stop_blocked(size_t nlisteners)
{
    uv_loop_t loop;
    struct agent_wait *wait;
    struct agent_server *srv;
    size_t active = 0;
    int fds[2];
    char buf[256];
    pthread_t th;

    ck_assert_int_eq(uv_loop_init(&loop), 0);
    ck_assert_int_eq(agent_wait_new(&loop, 100, answer, NULL, &wait), 0);
    struct agent_server_config cfg = {
        .max_connections = 10, .shared_active = &active, .wait = wait};
    ck_assert_int_eq(agent_server_new(&cfg, answer, NULL, &srv), 0);
    for (size_t i = 0; i < nlisteners; i++) {
        ck_assert_int_eq(agent_server_listen(srv, "127.0.0.1:0"), 0);
        fds[i] = client_connect(agent_server_port(srv, i));
        ck_assert_int_ge(fds[i], 0);
        ck_assert_int_eq(write(fds[i], "be/s\n", 5), 5);
    }
    for (size_t i = 0; i < nlisteners; i++)
        ck_assert_msg(delivered(fds[i]), "5 s for the line of listener %zu to be delivered", i);
    ck_assert_int_eq(pthread_create(&th, NULL, serve_thread, srv), 0);
    for (size_t i = 0; i < nlisteners; i++) {
        ck_assert_int_gt(read_all(fds[i], buf, sizeof(buf)), 0);
        ck_assert_str_eq(buf, "line 5 be/s\n");
        close(fds[i]);
    }
    usleep(50000); /* asleep again */
    struct timespec deadline;
    agent_server_stop(srv);
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 10;
    int rc = pthread_timedjoin_np(th, NULL, &deadline);
    ck_assert_msg(rc == 0,
                  "the serving thread (%zu listeners) did not return within 10 s of "
                  "agent_server_stop: %s",
                  nlisteners, strerror(rc));
    /* stopped: a new connection is refused, serve returns at once */
    ck_assert_int_lt(client_connect(agent_server_port(srv, 0)), 0);
    ck_assert_int_eq(agent_server_serve(srv), 0);
    struct agent_server_stats st = {0};
    agent_server_stats_add(srv, &st);
    ck_assert_uint_eq(st.accept_errors, 0);
    ck_assert_uint_eq(st.ends[AGENT_REQ_LINE], nlisteners);
    ck_assert_uint_eq(active, 0);
    agent_server_free(srv);
    agent_wait_close(wait);
    uv_run(&loop, UV_RUN_DEFAULT);
    agent_wait_free(wait);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}

START_TEST(test_stop_while_blocked_in_accept)
{
    stop_blocked(1);
}
END_TEST

START_TEST(test_stop_while_blocked_in_poll)
{
    stop_blocked(2);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("agent_server");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_line);
    tcase_add_test(tc, test_eof_and_timeout);
    tcase_add_test(tc, test_oversize);
    tcase_add_test(tc, test_connection_cap);
    tcase_add_test(tc, test_close_with_open_connections);
    tcase_add_test(tc, test_listen_addresses);
    tcase_add_test(tc, test_stop_while_blocked_in_accept);
    tcase_add_test(tc, test_stop_while_blocked_in_poll);
    suite_add_tcase(s, tc);
    return suite_main_run(s);
}
