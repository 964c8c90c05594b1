/* SPDX-License-Identifier: Apache-2.0 */
/* The request queue of haproxy_runtime without HAProxy: refused commands,
 * cancel on free, prompt framing against a fake socket. The parsers are in
 * test_haproxy_answers.c; the whole client runs against a real HAProxy in
 * tests/integration/watcher-runtime. */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include "haproxy_runtime.h"
#include "../common/suite_main.h"

static void never_cb(struct haproxy_runtime *rt, int status, const char *const *answers, size_t n,
                     const char *err, void *arg)
{
    ck_abort_msg("callback after a refused request");
}

static int cancelled;
static void cancel_cb(struct haproxy_runtime *rt, int status, const char *const *answers, size_t n,
                      const char *err, void *arg)
{
    ck_assert_int_eq(status, -ECANCELED);
    cancelled++;
}

START_TEST(test_exec_refuses_bad_commands_and_cancels)
{
    uv_loop_t loop;
    struct haproxy_runtime *rt;
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    ck_assert_int_eq(haproxy_runtime_new(&loop, "/nonexistent/stats.sock", NULL, NULL, NULL, &rt),
                     0);
    const char *nl[] = {"set server be/slot1 weight 3\nshutdown sessions server be/slot1"};
    const char *cr[] = {"show info\r"};
    const char *quit[] = {"quit"};
    const char *ok[] = {"show info"};
    /* payloads: only after " <<", no empty line (it would end the payload
     * early and run the rest as commands), no trailing newline, not on the
     * master socket */
    const char *bad_payloads[][1] = {{"show info\nx"},
                                     {"set ssl cert /c.pem <<\nA\n\nshow info"},
                                     {"set ssl cert /c.pem <<\nA\n"},
                                     {"set ssl cert /c.pem <<\nA\r\nB"}};
    for (size_t i = 0; i < 4; i++)
        ck_assert_int_eq(
            haproxy_runtime_exec(rt, HAPROXY_SOCKET_STATS, bad_payloads[i], 1, never_cb, NULL),
            -EINVAL);
    ck_assert_int_eq(haproxy_runtime_exec(rt, HAPROXY_SOCKET_STATS, nl, 1, never_cb, NULL),
                     -EINVAL);
    ck_assert_int_eq(haproxy_runtime_exec(rt, HAPROXY_SOCKET_STATS, cr, 1, never_cb, NULL),
                     -EINVAL);
    ck_assert_int_eq(haproxy_runtime_exec(rt, HAPROXY_SOCKET_STATS, quit, 1, never_cb, NULL),
                     -EINVAL);
    ck_assert_int_eq(haproxy_runtime_exec(rt, HAPROXY_SOCKET_STATS, ok, 0, never_cb, NULL),
                     -EINVAL);
    ck_assert_int_eq(haproxy_runtime_exec(rt, HAPROXY_SOCKET_MASTER, ok, 1, never_cb, NULL),
                     -ENOTSUP);
    ck_assert_int_eq(haproxy_runtime_reload(rt, NULL, NULL), -ENOTSUP);
    struct slot_assignment a;
    slot_assignment_init(&a);
    ck_assert_int_eq(haproxy_runtime_apply(rt, "be;show info", &a, NULL, NULL), -EINVAL);
    ck_assert_int_eq(haproxy_runtime_apply(rt, "be\nx", &a, NULL, NULL), -EINVAL);
    /* queued twice: both callbacks run with -ECANCELED on free */
    ck_assert_int_eq(haproxy_runtime_exec(rt, HAPROXY_SOCKET_STATS, ok, 1, cancel_cb, NULL), 0);
    ck_assert_int_eq(haproxy_runtime_exec(rt, HAPROXY_SOCKET_STATS, ok, 1, cancel_cb, NULL), 0);
    haproxy_runtime_free(rt);
    ck_assert_int_eq(cancelled, 2);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

/* A fake stats socket: accepts one connection, reads the request up to
 * "quit\n", writes a canned answer (once a byte arrives on release, if
 * not -1) and closes. */
struct fake {
    int lfd;
    char path[108];
    const char *answer;
    int release;
    char request[4096];
};

static void *fake_serve(void *arg)
{
    struct fake *f = arg;
    int c = accept(f->lfd, NULL, NULL);
    size_t len = 0;
    if (c < 0)
        return NULL;
    while (len < sizeof(f->request) - 1) {
        ssize_t r = read(c, f->request + len, sizeof(f->request) - 1 - len);
        if (r <= 0)
            break;
        len += (size_t)r;
        f->request[len] = 0;
        if (strstr(f->request, "quit\n"))
            break;
    }
    char byte;
    if ((f->release < 0 || read(f->release, &byte, 1) == 1) &&
        write(c, f->answer, strlen(f->answer)) < 0)
        perror("fake write");
    close(c);
    return NULL;
}

/* A listening fake socket /tmp/drover-fake-WHAT-PID.sock. */
static void fake_listen(struct fake *f, const char *what)
{
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    snprintf(f->path, sizeof(f->path), "/tmp/drover-fake-%s-%d.sock", what, (int)getpid());
    unlink(f->path);
    memcpy(un.sun_path, f->path, strlen(f->path) + 1);
    f->request[0] = 0;
    f->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    ck_assert_int_ge(f->lfd, 0);
    ck_assert_int_eq(bind(f->lfd, (struct sockaddr *)&un, sizeof(un)), 0);
    ck_assert_int_eq(listen(f->lfd, 2), 0);
}

static void fake_start(struct fake *f, pthread_t *t, const char *answer)
{
    fake_listen(f, "stats");
    f->answer = answer;
    f->release = -1;
    ck_assert_int_eq(pthread_create(t, NULL, fake_serve, f), 0);
}

static int ex_status, ex_done;
static size_t ex_n;
static char ex_answers[4][128];
static void ex_cb(struct haproxy_runtime *rt, int status, const char *const *answers, size_t n,
                  const char *err, void *arg)
{
    ex_status = status;
    ex_n = n;
    for (size_t i = 0; i < n && i < 4; i++)
        snprintf(ex_answers[i], sizeof(ex_answers[i]), "%s", answers[i]);
    ex_done = 1;
}

static int run_exchange(const char *answer, const char *const *cmds, size_t n, struct fake *f)
{
    uv_loop_t loop;
    struct haproxy_runtime *rt;
    pthread_t t;
    fake_start(f, &t, answer);
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    ck_assert_int_eq(haproxy_runtime_new(&loop, f->path, NULL, NULL, NULL, &rt), 0);
    haproxy_runtime_set_timeouts(rt, 5000, 0);
    ex_done = 0;
    ck_assert_int_eq(haproxy_runtime_exec(rt, HAPROXY_SOCKET_STATS, cmds, n, ex_cb, NULL), 0);
    while (!ex_done)
        uv_run(&loop, UV_RUN_ONCE);
    haproxy_runtime_free(rt);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    pthread_join(t, NULL);
    close(f->lfd);
    unlink(f->path);
    return ex_status;
}

START_TEST(test_prompt_framing)
{
    struct fake f;
    const char *two[] = {"set server be/slot1 weight 3", "set server be/x weight 3"};
    /* prompt's own empty answer, then one per command */
    ck_assert_int_eq(run_exchange("\n> \n> No such server.\n\n> ", two, 2, &f), 0);
    ck_assert_str_eq(f.request, "prompt\nset server be/slot1 weight 3\nset server be/x weight "
                                "3\nquit\n");
    ck_assert_uint_eq(ex_n, 2);
    ck_assert_str_eq(ex_answers[0], "");
    ck_assert_str_eq(ex_answers[1], "No such server.\n");
    /* a multi-line answer keeps its lines */
    const char *one[] = {"show servers state be"};
    ck_assert_int_eq(run_exchange("\n> 1\n# be_name\n\n> ", one, 1, &f), 0);
    ck_assert_str_eq(ex_answers[0], "1\n# be_name\n");
    /* closed before the last answer: not a success */
    ck_assert_int_eq(run_exchange("\n> \n> ", two, 2, &f), -EPIPE);
    ck_assert_int_eq(run_exchange("", one, 1, &f), -EPIPE);
    ck_assert_int_eq(run_exchange("\n> 1\n# be_name\n", one, 1, &f), -EPIPE);
    /* a payload is followed by the empty line that ends it; HAProxy's "+ "
     * continuation prompts stay in that command's answer */
    const char *payload[] = {"set ssl cert /c.pem <<\nA\nB", "commit ssl cert /c.pem"};
    ck_assert_int_eq(run_exchange("\n> + + Transaction created for certificate /c.pem!\n\n> "
                                  "Committing /c.pem.\nSuccess!\n\n> ",
                                  payload, 2, &f),
                     0);
    ck_assert_str_eq(f.request,
                     "prompt\nset ssl cert /c.pem <<\nA\nB\n\ncommit ssl cert /c.pem\nquit\n");
    ck_assert_str_eq(ex_answers[0], "+ + Transaction created for certificate /c.pem!\n");
}
END_TEST

/* Lanes: a stats exchange held by its socket does not hold a `show proc`
 * on the master CLI (the supervisor's probe) nor a ping, but a reload's baseline
 * waits for it (a reload's exchanges run alone). The stats fake holds its
 * answer until a byte arrives on release; the master fake answers each
 * connection at once (a reply the reload refuses: it stops there). */
struct lanes {
    struct fake stats, master;
    int release[2];
    int master_accepted; /* __atomic: the test thread reads it */
    pthread_t ts, tm;
};

static void *master_serve(void *arg)
{
    struct lanes *l = arg;
    for (int i = 0; i < 2; i++) {
        char buf[256];
        int fd = accept(l->master.lfd, NULL, NULL);
        if (fd < 0)
            return NULL;
        __atomic_add_fetch(&l->master_accepted, 1, __ATOMIC_SEQ_CST);
        while (read(fd, buf, sizeof(buf)) > 0)
            ; /* the master CLI answers once our side is shut */
        if (write(fd, "not a show proc answer\n", 23) < 0)
            perror("master fake write");
        close(fd);
    }
    return NULL;
}

static int order, stats_at, proc_at, reload_at;
static void lane_stats_cb(struct haproxy_runtime *rt, int status, const char *const *answers,
                          size_t n, const char *err, void *arg)
{
    ck_assert_msg(status == 0, "held stats exchange: %s", err);
    stats_at = ++order;
}

static void lane_proc_cb(struct haproxy_runtime *rt, int status,
                         const struct haproxy_proc_list *procs, const char *err, void *arg)
{
    proc_at = ++order; /* the reply is refused: what counts is that it ran */
}

static void lane_reload_cb(struct haproxy_runtime *rt, const struct haproxy_reload_result *res,
                           void *arg)
{
    ck_assert_int_ne(res->status, 0); /* the fake's show proc reply is refused */
    reload_at = ++order;
}

static int ping_done, ping_status;
static void lane_ping_cb(struct haproxy_runtime *rt, int status, const char *const *answers,
                         size_t n, const char *err, void *arg)
{
    ping_status = status;
    ping_done = 1;
}

/* Run loop until *flag is set, at most bound_ms; false if it was not. */
static bool run_until(uv_loop_t *loop, const int *flag, uint64_t bound_ms)
{
    uint64_t deadline = uv_now(loop) + bound_ms;
    while (!*flag && uv_now(loop) < deadline) {
        uv_run(loop, UV_RUN_NOWAIT);
        usleep(1000);
        uv_update_time(loop);
    }
    return *flag != 0;
}

START_TEST(test_master_lane_beside_stats)
{
    struct lanes l = {0};
    uv_loop_t loop;
    struct haproxy_runtime *rt;
    const char *cmds[] = {"show info"};
    int none = 0;
    order = stats_at = proc_at = reload_at = 0;
    ck_assert_int_eq(pipe(l.release), 0);
    fake_listen(&l.stats, "stats");
    fake_listen(&l.master, "master");
    l.stats.answer = "\n> \n> "; /* prompt, then show info's (empty) answer */
    l.stats.release = l.release[0];
    ck_assert_int_eq(pthread_create(&l.ts, NULL, fake_serve, &l.stats), 0);
    ck_assert_int_eq(pthread_create(&l.tm, NULL, master_serve, &l), 0);
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    ck_assert_int_eq(haproxy_runtime_new(&loop, l.stats.path, l.master.path, NULL, NULL, &rt), 0);
    haproxy_runtime_set_timeouts(rt, 10000, 10000);
    ck_assert_int_eq(haproxy_runtime_exec(rt, HAPROXY_SOCKET_STATS, cmds, 1, lane_stats_cb, NULL),
                     0);
    ck_assert_int_eq(haproxy_runtime_show_proc(rt, lane_proc_cb, NULL), 0);
    /* bound: two local exchanges, with room for a busy machine */
    ck_assert_msg(run_until(&loop, &proc_at, 5000),
                  "show proc on the master CLI did not complete within 5 s beside a held stats "
                  "exchange");
    ck_assert_int_eq(stats_at, 0);
    /* a ping has a lane of its own: it does not wait for the held
     * exchange (the fake serves that one connection only, so the ping
     * waits in the backlog and runs out its 100 ms, twice at most) */
    ping_done = 0;
    ck_assert_int_eq(haproxy_runtime_ping(rt, 100, lane_ping_cb, NULL), 0);
    ck_assert_msg(run_until(&loop, &ping_done, 5000),
                  "a ping bounded by 100 ms did not end within 5 s beside a held stats exchange");
    ck_assert_int_eq(ping_status, -ETIMEDOUT);
    ck_assert_int_eq(stats_at, 0);
    ck_assert_int_eq(haproxy_runtime_reload(rt, lane_reload_cb, NULL), 0);
    /* the baseline waits for the held exchange: 100 ms without a connect */
    run_until(&loop, &none, 100);
    ck_assert_int_eq(__atomic_load_n(&l.master_accepted, __ATOMIC_SEQ_CST), 1);
    ck_assert_int_eq(write(l.release[1], "x", 1), 1);
    ck_assert_msg(run_until(&loop, &reload_at, 5000),
                  "the reload did not finish within 5 s of the stats exchange's release");
    ck_assert_int_eq(stats_at, 2);
    ck_assert_int_eq(reload_at, 3);
    ck_assert_int_eq(__atomic_load_n(&l.master_accepted, __ATOMIC_SEQ_CST), 2);
    haproxy_runtime_free(rt);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    pthread_join(l.ts, NULL);
    pthread_join(l.tm, NULL);
    close(l.stats.lfd);
    close(l.master.lfd);
    close(l.release[0]);
    close(l.release[1]);
    unlink(l.stats.path);
    unlink(l.master.path);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("haproxy_runtime");
    TCase *tc = tcase_create("queue");
    tcase_add_test(tc, test_exec_refuses_bad_commands_and_cancels);
    tcase_add_test(tc, test_prompt_framing);
    tcase_add_test(tc, test_master_lane_beside_stats);
    tcase_set_timeout(tc, 15); /* above the lanes test's two 5 s bounds */
    suite_add_tcase(s, tc);
    return suite_main_run(s);
}
