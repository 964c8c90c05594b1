/* SPDX-License-Identifier: Apache-2.0 */
/*
 * haproxy_runtime when the watcher itself stalls: an exchange whose answer
 * arrived while the client's loop was blocked past the exchange timeout
 * succeeds (libuv would run the timeout before reading the socket), with
 * the stall counted once; an HAProxy that really does not answer still
 * times out, one timeout later if the client had stalled.
 *
 * The fake stats socket runs on its own thread, so it answers while the
 * test blocks the client's loop.
 */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include "fake_master_cli.h"
#include "haproxy_runtime.h"
#include "loop_lag.h"
#include "loop_stall.h"
#include "metrics.h"
#include "../../lib/test_sleep.h"
#include "../common/suite_main.h"

#define TIMEOUT_MS 300
/* well past the timeout, as SIGSTOP or a long table build would be */
#define STALL_MS (2 * TIMEOUT_MS + 100)

/* A fake stats socket: one connection; reads the request up to "quit\n",
 * then either answers (once the client's loop is stalled, when asked to)
 * and closes, or stays silent until the client hangs up. */
struct fake {
    int lfd;
    char path[108];
    bool silent;
    bool wait_for_stall;
    atomic_bool got_request; /* the whole request arrived */
    atomic_bool stalling;    /* set by the client as its stall begins */
    pthread_t thread;
};

static void read_request(int c)
{
    char req[1024];
    size_t len = 0;
    while (len < sizeof(req) - 1) {
        ssize_t r = read(c, req + len, sizeof(req) - 1 - len);
        if (r <= 0)
            return;
        len += (size_t)r;
        req[len] = 0;
        if (strstr(req, "quit\n"))
            return;
    }
}

static void *fake_serve(void *arg)
{
    struct fake *f = arg;
    int c = accept(f->lfd, NULL, NULL);
    char byte;

    if (c < 0)
        return NULL;
    read_request(c);
    atomic_store(&f->got_request, true);
    if (f->silent) {
        while (read(c, &byte, 1) > 0)
            ; /* until the client gives up and closes */
        close(c);
        return NULL;
    }
    /* the answer must arrive while the client cannot read it (bounded:
     * a client that never stalls gets it after 5 s) */
    for (int i = 0; f->wait_for_stall && !atomic_load(&f->stalling) && i < 5000; i++)
        sleep_ms(1);
    static const char answer[] = "\n> \n> "; /* prompt, then show info's (empty) answer */
    if (write(c, answer, sizeof(answer) - 1) < 0)
        perror("fake write");
    close(c);
    return NULL;
}

static void fake_start(struct fake *f, bool silent, bool wait_for_stall)
{
    struct sockaddr_un un = {.sun_family = AF_UNIX};

    memset(f, 0, sizeof(*f));
    f->silent = silent;
    f->wait_for_stall = wait_for_stall;
    snprintf(f->path, sizeof(f->path), "/tmp/drover-stall-%d.sock", (int)getpid());
    unlink(f->path);
    memcpy(un.sun_path, f->path, strlen(f->path) + 1);
    f->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    ck_assert_int_ge(f->lfd, 0);
    ck_assert_int_eq(bind(f->lfd, (struct sockaddr *)&un, sizeof(un)), 0);
    ck_assert_int_eq(listen(f->lfd, 2), 0);
    ck_assert_int_eq(pthread_create(&f->thread, NULL, fake_serve, f), 0);
}

static void fake_stop(struct fake *f)
{
    pthread_join(f->thread, NULL);
    close(f->lfd);
    unlink(f->path);
}

struct client {
    uv_loop_t loop;
    struct haproxy_runtime *rt;
    struct fake *fake;
    struct loop_stall stall;
    bool done;
    int status;
    uint64_t took_ms;
};

/* Once HAProxy has the request: block the loop past the exchange timeout.
 * The answer arrives meanwhile; the timeout is due when the loop goes on. */
static bool stall_on_request(void *arg)
{
    struct client *cl = arg;

    if (!atomic_load(&cl->fake->got_request))
        return false;
    atomic_store(&cl->fake->stalling, true);
    sleep_ms(STALL_MS);
    return true;
}

static void on_answer(struct haproxy_runtime *rt, int status, const char *const *answers, size_t n,
                      const char *err, void *arg)
{
    struct client *cl = arg;
    (void)rt;
    (void)answers;
    (void)n;
    (void)err;
    cl->status = status;
    cl->done = true;
}

/* One `show info` exchange against f, the loop stalled once if stall. */
static void run(struct client *cl, struct fake *f, bool stall, struct metrics_counter *counter)
{
    const char *cmds[] = {"show info"};

    memset(cl, 0, sizeof(*cl));
    cl->fake = f;
    ck_assert_int_eq(uv_loop_init(&cl->loop), 0);
    /* the loop's measurement, owned here as the watcher's main does */
    struct loop_lag *lag;
    ck_assert_int_eq(loop_lag_new(&cl->loop, &lag), 0);
    ck_assert_int_eq(haproxy_runtime_new(&cl->loop, f->path, NULL, NULL, lag, &cl->rt), 0);
    loop_lag_unref(lag);
    haproxy_runtime_set_timeouts(cl->rt, TIMEOUT_MS, 0);
    haproxy_runtime_set_stall_counter(cl->rt, counter);
    if (stall)
        loop_stall_start(&cl->stall, &cl->loop, stall_on_request, cl, 1);
    uint64_t t0 = uv_hrtime();
    ck_assert_int_eq(haproxy_runtime_exec(cl->rt, HAPROXY_SOCKET_STATS, cmds, 1, on_answer, cl), 0);
    /* each wait ends within its timeout (plus the one stall) */
    while (!cl->done)
        uv_run(&cl->loop, UV_RUN_ONCE);
    cl->took_ms = (uv_hrtime() - t0) / 1000000;
    loop_stall_close(&cl->stall);
}

static uint64_t stall_retries(const struct client *cl)
{
    struct haproxy_runtime_stats st;
    haproxy_runtime_get_stats(cl->rt, &st);
    return st.stall_retries;
}

static void finish(struct client *cl)
{
    haproxy_runtime_free(cl->rt);
    uv_run(&cl->loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&cl->loop), 0);
}

START_TEST(test_answer_read_after_stall)
{
    struct fake f;
    struct client cl;
    struct metrics_registry *reg = metrics_registry_new();
    struct metrics_counter *c = metrics_counter(reg, "drover_test_stall_retries_total", "t", NULL);

    fake_start(&f, false, true);
    run(&cl, &f, true, c);
    ck_assert_uint_eq(cl.stall.stalls, 1);
    ck_assert_msg(cl.status == 0,
                  "the answer was there after the stall, yet the exchange failed: %d (took %llu "
                  "ms)",
                  cl.status, (unsigned long long)cl.took_ms);
    ck_assert_uint_eq(stall_retries(&cl), 1);
    ck_assert_uint_eq(metrics_counter_value(c), 1);
    finish(&cl);
    fake_stop(&f);
    metrics_registry_free(reg);
}
END_TEST

START_TEST(test_silent_haproxy_still_times_out)
{
    struct fake f;
    struct client cl;

    fake_start(&f, true, false);
    run(&cl, &f, false, NULL);
    ck_assert_int_eq(cl.status, -ETIMEDOUT);
    ck_assert_uint_eq(stall_retries(&cl), 0);
    finish(&cl);
    fake_stop(&f);
}
END_TEST

START_TEST(test_silent_haproxy_after_stall_times_out_once_more)
{
    struct fake f;
    struct client cl;

    fake_start(&f, true, false);
    run(&cl, &f, true, NULL);
    ck_assert_uint_eq(cl.stall.stalls, 1);
    ck_assert_int_eq(cl.status, -ETIMEDOUT);
    ck_assert_uint_eq(stall_retries(&cl), 1);
    /* the second timeout was waited for in full, after the stall */
    ck_assert_uint_ge(cl.took_ms, STALL_MS + TIMEOUT_MS);
    finish(&cl);
    fake_stop(&f);
}
END_TEST

/* ---- the reload's confirmation deadline ---- */

#define RELOAD_TIMEOUT_MS 300
#define RELOAD_STALL_MS   (RELOAD_TIMEOUT_MS + 300)

/* The master CLI's answers (fake_master_cli.h): `show proc` lists the
 * new worker only from the second probe after the client's stall ended:
 * a reload whose confirmation deadline went by while the watcher stalled
 * still gets confirmed. */
struct master {
    struct fake_master_cli cli;
    atomic_bool got_reload;
    atomic_bool stall_over; /* set by the client after its stall */
    unsigned probes_after;  /* show proc received after the stall (its thread's) */
};

static const char proc_before[] = "#<PID> <type> <reloads> <uptime> <version>\n"
                                  "2000 master 0 0d00h00m01s 2.6.12\n"
                                  "# workers\n"
                                  "2001 worker 0 0d00h00m01s 2.6.12\n";
static const char proc_after[] = "#<PID> <type> <reloads> <uptime> <version>\n"
                                 "2000 master 1 0d00h00m02s 2.6.12\n"
                                 "# workers\n"
                                 "2002 worker 0 0d00h00m00s 2.6.12\n"
                                 "2001 worker 1 0d00h00m02s 2.6.12\n";

static const char *master_answer(void *arg, const char *cmd)
{
    struct master *m = arg;

    if (strncmp(cmd, "reload", 6) == 0) {
        atomic_store(&m->got_reload, true);
        return NULL; /* 2.6 answers nothing */
    }
    if (atomic_load(&m->stall_over))
        m->probes_after++;
    return m->probes_after >= 2 ? proc_after : proc_before;
}

struct reloader {
    struct master *m;
    struct loop_stall stall;
    bool done;
    struct haproxy_reload_result res;
};

/* Once the master has the reload command: block the loop past the reload
 * timeout (the confirmation deadline goes by meanwhile). */
static bool stall_on_reload(void *arg)
{
    struct reloader *rl = arg;

    if (!atomic_load(&rl->m->got_reload))
        return false;
    sleep_ms(RELOAD_STALL_MS);
    atomic_store(&rl->m->stall_over, true);
    return true;
}

static void on_reloaded(struct haproxy_runtime *rt, const struct haproxy_reload_result *res,
                        void *arg)
{
    struct reloader *rl = arg;
    (void)rt;
    rl->res = *res;
    rl->done = true;
}

START_TEST(test_reload_confirmed_after_stall)
{
    struct master m = {0};
    struct reloader rl = {.m = &m};
    uv_loop_t loop;
    struct haproxy_runtime *rt;
    char path[108];

    snprintf(path, sizeof(path), "/tmp/drover-stall-master-%d.sock", (int)getpid());
    ck_assert_int_eq(fake_master_cli_start(&m.cli, path, master_answer, &m), 0);

    ck_assert_int_eq(uv_loop_init(&loop), 0);
    /* no state file: baseline, reload, then show proc until confirmed; the
     * client measures the loop itself */
    ck_assert_int_eq(haproxy_runtime_new(&loop, "/nonexistent/stats.sock", path, NULL, NULL, &rt),
                     0);
    /* exchanges keep the default 3 s: only the reload's deadline is due */
    haproxy_runtime_set_timeouts(rt, 0, RELOAD_TIMEOUT_MS);
    loop_stall_start(&rl.stall, &loop, stall_on_reload, &rl, 1);
    ck_assert_int_eq(haproxy_runtime_reload(rt, on_reloaded, &rl), 0);
    /* bounded by the reload timeout, twice, plus the stall */
    while (!rl.done)
        uv_run(&loop, UV_RUN_ONCE);
    ck_assert_uint_eq(rl.stall.stalls, 1);
    ck_assert_msg(rl.res.status == 0, "reload not confirmed after the watcher's stall: %d: %s",
                  rl.res.status, rl.res.message);
    ck_assert_int_eq(rl.res.new_worker_pid, 2002);
    struct haproxy_runtime_stats st;
    haproxy_runtime_get_stats(rt, &st);
    ck_assert_uint_eq(st.stall_retries, 1);
    loop_stall_close(&rl.stall);
    haproxy_runtime_free(rt);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    fake_master_cli_stop(&m.cli);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("haproxy_runtime_stall");
    TCase *tc = tcase_create("stall");
    tcase_add_test(tc, test_answer_read_after_stall);
    tcase_add_test(tc, test_silent_haproxy_still_times_out);
    tcase_add_test(tc, test_silent_haproxy_after_stall_times_out_once_more);
    tcase_add_test(tc, test_reload_confirmed_after_stall);
    suite_add_tcase(s, tc);
    return suite_main_run(s);
}
