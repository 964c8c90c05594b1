/* SPDX-License-Identifier: Apache-2.0 */
/*
 * watcher-runtime integration test: haproxy_runtime + slots against a real
 * HAProxy 2.6 in master-worker mode (-W -S), with a stats socket at level
 * admin, a server-state file, four slots with agent-check + agent-send on
 * every server, loopback HTTP backends and an agent that always answers
 * "ready up" (fixture.py).
 *
 * Proves: add/remove/readdress/reweight through the runtime API, checked
 * with `show servers state` and with real HTTP requests through HAProxy,
 * with the master's reload counter unchanged; a free slot stays in maint
 * while the agent answers `ready` (and, as a control, that the agent does
 * lift a runtime maint when its agent is enabled); a reload through the
 * master CLI keeps runtime-set addresses and `show proc` shows the new
 * worker; a config that fails to load is reported as a failed reload and
 * the old worker keeps serving; errors come back quickly for a missing
 * socket, a dead HAProxy and a socket that never answers.
 *
 * Usage: test_watcher_runtime FIXTURE.py. Everything lives in a temp dir;
 * HAProxy and the fixture die with this process (PR_SET_PDEATHSIG) and are
 * killed and reaped on every exit path.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "haproxy_runtime.h"
#include "log.h"
#include "slots.h"

#define NSLOTS 4
#define NBACK  4

static char dir[PATH_MAX];
static char cfg_path[PATH_MAX + 32], stats_path[PATH_MAX + 32], master_path[PATH_MAX + 32],
    state_path[PATH_MAX + 32], agent_log[PATH_MAX + 32];
static pid_t haproxy_pid = -1, fixture_pid = -1;
static int fixture_stdin = -1;
static int http_ports[NBACK], agent_port, fe_port;
static uv_loop_t loop;
static int failures;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                        \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            failures++;                                                                            \
            goto fail;                                                                             \
        }                                                                                          \
    } while (0)

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static pid_t seen_workers[64];
static size_t n_seen_workers;

static void cleanup(void)
{
    if (haproxy_pid > 0) {
        /* the master stops its workers on SIGTERM; SIGKILL if it hangs */
        kill(haproxy_pid, SIGTERM);
        double end = now_ms() + 3000;
        while (waitpid(haproxy_pid, NULL, WNOHANG) == 0 && now_ms() < end)
            usleep(20000);
        if (kill(haproxy_pid, SIGKILL) == 0)
            waitpid(haproxy_pid, NULL, 0);
        haproxy_pid = -1;
    }
    /* workers of a master that was SIGKILLed exit on their own; make sure */
    for (size_t i = 0; i < n_seen_workers; i++)
        kill(seen_workers[i], SIGKILL);
    n_seen_workers = 0;
    if (fixture_stdin >= 0)
        close(fixture_stdin);
    if (fixture_pid > 0) {
        kill(fixture_pid, SIGKILL);
        waitpid(fixture_pid, NULL, 0);
        fixture_pid = -1;
    }
    if (dir[0]) {
        char cmd[PATH_MAX + 16];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", dir);
        dir[0] = 0;
    }
}

static void on_signal(int sig)
{
    cleanup();
    signal(sig, SIG_DFL);
    raise(sig);
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

static int start_fixture(const char *script)
{
    int in[2], out[2];
    if (pipe(in) < 0 || pipe(out) < 0)
        return -1;
    fixture_pid = fork();
    if (fixture_pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[1]);
        close(out[0]);
        char n[8];
        snprintf(n, sizeof(n), "%d", NBACK);
        execlp("python3", "python3", script, n, "ready up", agent_log, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    fixture_stdin = in[1];
    FILE *f = fdopen(out[0], "r");
    char line[256] = "";
    if (!f || !fgets(line, sizeof(line), f))
        return -1;
    fclose(f);
    if (sscanf(line, "PORTS %d %d %d %d %d", &http_ports[0], &http_ports[1], &http_ports[2],
               &http_ports[3], &agent_port) != 5)
        return -1;
    return 0;
}

/* Slots rendered occupied (port on 127.0.0.1), 0 = rendered free. */
static int cfg_slot_port[NSLOTS];

static int write_config(bool broken)
{
    FILE *f = fopen(cfg_path, "w");
    if (!f)
        return -1;
    fprintf(f,
            "global\n"
            "    stats socket %s mode 600 level admin expose-fd listeners\n"
            "    stats timeout 30s\n"
            "    server-state-file %s\n"
            "defaults\n"
            "    mode http\n"
            "    load-server-state-from-file global\n"
            "    timeout connect 1s\n"
            "    timeout client 5s\n"
            "    timeout server 5s\n"
            "frontend fe\n"
            "    bind 127.0.0.1:%d\n"
            "    default_backend be\n"
            "backend be\n"
            "    balance roundrobin\n",
            stats_path, state_path, fe_port);
    for (int s = 1; s <= NSLOTS; s++) {
        if (cfg_slot_port[s - 1])
            fprintf(f, "    server slot%d 127.0.0.1:%d weight 10", s, cfg_slot_port[s - 1]);
        else
            fprintf(f, "    server slot%d 0.0.0.0:0 disabled weight 10", s);
        fprintf(f,
                " agent-check agent-addr 127.0.0.1 agent-port %d agent-inter 100ms agent-send "
                "\"be/slot%d\\n\"\n",
                agent_port, s);
    }
    if (broken)
        fprintf(f, "    this_is_not_a_keyword\n");
    return fclose(f);
}

static int start_haproxy(void)
{
    haproxy_pid = fork();
    if (haproxy_pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int devnull = open("/dev/null", O_RDWR);
        dup2(devnull, 0);
        execlp("haproxy", "haproxy", "-W", "-S", master_path, "-f", cfg_path, (char *)NULL);
        _exit(127);
    }
    return haproxy_pid > 0 ? 0 : -1;
}

/* ---- running the loop until a callback said so ---- */

static bool done_flag;
static void deadline_cb(uv_timer_t *t)
{
    (void)t;
}

static bool run_until_done(double timeout_ms)
{
    uv_timer_t t;
    uv_timer_init(&loop, &t);
    uv_timer_start(&t, deadline_cb, 50, 50);
    double end = now_ms() + timeout_ms;
    while (!done_flag && now_ms() < end)
        uv_run(&loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    bool ok = done_flag;
    done_flag = false;
    return ok;
}

static struct slot_live live[64];
static size_t n_live;
static int last_status;
static char last_err[HAPROXY_RUNTIME_MSG_MAX];

static void state_cb(struct haproxy_runtime *rt, int status, const struct slot_live *l, size_t n,
                     const char *err, void *arg)
{
    last_status = status;
    snprintf(last_err, sizeof(last_err), "%s", err);
    n_live = 0;
    for (size_t i = 0; i < n && i < 64; i++)
        live[n_live++] = l[i];
    done_flag = true;
}

static int show_state(struct haproxy_runtime *rt)
{
    if (haproxy_runtime_show_servers_state(rt, "be", state_cb, NULL) < 0 || !run_until_done(5000))
        return -ETIMEDOUT;
    return last_status;
}

static const struct slot_live *slot_live(size_t s)
{
    char name[16];
    slots_name(s, name, sizeof(name));
    for (size_t i = 0; i < n_live; i++)
        if (strcmp(live[i].name, name) == 0)
            return &live[i];
    return NULL;
}

static struct haproxy_proc_list procs;
static void proc_cb(struct haproxy_runtime *rt, int status, const struct haproxy_proc_list *p,
                    const char *err, void *arg)
{
    last_status = status;
    snprintf(last_err, sizeof(last_err), "%s", err);
    haproxy_proc_list_free(&procs);
    if (status == 0) {
        procs = *p;
        procs.workers = malloc(p->n_workers * sizeof(*p->workers) + 1);
        memcpy(procs.workers, p->workers, p->n_workers * sizeof(*p->workers));
        for (size_t i = 0; i < p->n_workers; i++) {
            bool known = false;
            for (size_t j = 0; j < n_seen_workers; j++)
                known |= seen_workers[j] == p->workers[i].pid;
            if (!known && n_seen_workers < 64)
                seen_workers[n_seen_workers++] = p->workers[i].pid;
        }
    }
    done_flag = true;
}

static int show_proc(struct haproxy_runtime *rt)
{
    if (haproxy_runtime_show_proc(rt, proc_cb, NULL) < 0 || !run_until_done(5000))
        return -ETIMEDOUT;
    return last_status;
}

static struct haproxy_apply_result apply_res;
static void apply_cb(struct haproxy_runtime *rt, const struct haproxy_apply_result *r, void *arg)
{
    apply_res = *r;
    done_flag = true;
}

static int apply(struct haproxy_runtime *rt, const struct slot_assignment *a)
{
    memset(&apply_res, 0, sizeof(apply_res));
    if (haproxy_runtime_apply(rt, "be", a, apply_cb, NULL) < 0 || !run_until_done(10000))
        return -ETIMEDOUT;
    return apply_res.status;
}

static struct haproxy_reload_result reload_res;
static void reload_cb(struct haproxy_runtime *rt, const struct haproxy_reload_result *r, void *arg)
{
    reload_res = *r;
    done_flag = true;
}

static int reload(struct haproxy_runtime *rt)
{
    memset(&reload_res, 0, sizeof(reload_res));
    if (haproxy_runtime_reload(rt, reload_cb, NULL) < 0 || !run_until_done(30000))
        return -ETIMEDOUT;
    return reload_res.status;
}

/* ---- HTTP through HAProxy ---- */

/* One GET through the frontend: the backend index (1..NBACK) that answered,
 * 0 for an HAProxy error page (503: no server), -1 on a socket error. */
static int http_get(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)fe_port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {.tv_sec = 3};
    char buf[4096];
    size_t len = 0;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        close(fd);
        return -1;
    }
    const char *req = "GET / HTTP/1.0\r\nHost: test\r\n\r\n";
    if (write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
        close(fd);
        return -1;
    }
    for (ssize_t r; len < sizeof(buf) - 1 && (r = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0;)
        len += (size_t)r;
    close(fd);
    buf[len] = 0;
    if (strncmp(buf, "HTTP/1.", 7) != 0)
        return -1;
    if (strncmp(buf + 9, "200", 3) != 0)
        return 0;
    char *body = strstr(buf, "\r\n\r\n");
    int b;
    if (!body || sscanf(body + 4, "b%d", &b) != 1)
        return -1;
    return b;
}

/* counts[b] for n requests (b = 0 for error pages, -1 counted in [NBACK+1]) */
static void http_spread(int n, int counts[NBACK + 2])
{
    memset(counts, 0, sizeof(int) * (NBACK + 2));
    for (int i = 0; i < n; i++) {
        int b = http_get();
        counts[b < 0 ? NBACK + 1 : b]++;
    }
}

/* ---- assignments ---- */

static struct slot_assignment cur;

static int place(const char *const *keys, const int *backends, const int *weights, size_t n)
{
    struct slot_server d[NBACK];
    char addr[] = "127.0.0.1";
    for (size_t i = 0; i < n; i++)
        d[i] = (struct slot_server){(char *)keys[i], addr, (uint16_t)http_ports[backends[i] - 1],
                                    weights[i], false};
    struct slot_assignment next;
    size_t need;
    slot_assignment_init(&next);
    int rc = slots_assign(&cur, d, n, NSLOTS, &next, &need);
    if (rc == 0 && need)
        rc = -ENOSPC;
    slot_assignment_free(&cur);
    cur = next;
    return rc;
}

static long agent_lines(const char *server)
{
    FILE *f = fopen(agent_log, "r");
    char line[256];
    long n = 0;
    if (!f)
        return 0;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, server, strlen(server)) == 0 && line[strlen(server)] == '\n')
            n++;
    fclose(f);
    return n;
}

/* Wait (bounded) until the agent has been asked `more` more times about
 * server: proof that agent checks ran in between. */
static bool wait_agent(const char *server, long more, double timeout_ms)
{
    long base = agent_lines(server);
    double end = now_ms() + timeout_ms;
    while (now_ms() < end) {
        if (agent_lines(server) >= base + more)
            return true;
        usleep(20000);
    }
    return false;
}

static void exec_cb(struct haproxy_runtime *r, int st, const char *const *ans, size_t n,
                    const char *e, void *arg)
{
    int *ok = arg;
    for (size_t i = 0; st == 0 && i < n; i++)
        *ok += ans[i][0] == 0;
    if (st != 0)
        fprintf(stderr, "exec failed: %s\n", e);
    done_flag = true;
}

static int big_status, big_errors, big_misplaced;
static size_t big_n;
static void big_cb(struct haproxy_runtime *r, int st, const char *const *ans, size_t n,
                   const char *e, void *arg)
{
    big_status = st;
    big_n = n;
    for (size_t i = 0; st == 0 && i < n; i++) {
        bool failed = strcmp(ans[i], "No such server.\n") == 0;
        big_errors += failed;
        big_misplaced += failed != (i % 997 == 0) || (!failed && ans[i][0]);
    }
    if (st != 0)
        fprintf(stderr, "big batch failed: %s\n", e);
    done_flag = true;
}

static int n_multi;
static char multi_order[4];
static struct haproxy_reload_result multi_reload[2];
static struct haproxy_apply_result multi_apply;
static int n_multi_reload;
static void multi_reload_cb(struct haproxy_runtime *r, const struct haproxy_reload_result *res,
                            void *arg)
{
    if (n_multi_reload < 2)
        multi_reload[n_multi_reload++] = *res;
    if (n_multi < 3)
        multi_order[n_multi++] = 'R';
    done_flag = true;
}
static void multi_apply_cb(struct haproxy_runtime *r, const struct haproxy_apply_result *res,
                           void *arg)
{
    multi_apply = *res;
    if (n_multi < 3)
        multi_order[n_multi++] = 'A';
    done_flag = true;
}

/* ---- the test ---- */

static int ticks;
static void count_tick(uv_timer_t *t)
{
    (void)t;
    ticks++;
}

int main(int argc, char **argv)
{
    struct haproxy_runtime *rt = NULL, *rt_bad = NULL;
    int counts[NBACK + 2];
    int rc;

    if (argc != 2) {
        fprintf(stderr, "usage: %s fixture.py\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN); /* as the daemon does: a closed CLI is an error code */
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    log_set_component("test-watcher-runtime");
    snprintf(dir, sizeof(dir), "/tmp/drover-wrt-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(cfg_path, sizeof(cfg_path), "%s/haproxy.cfg", dir);
    snprintf(stats_path, sizeof(stats_path), "%s/stats.sock", dir);
    snprintf(master_path, sizeof(master_path), "%s/master.sock", dir);
    snprintf(state_path, sizeof(state_path), "%s/server-state", dir);
    snprintf(agent_log, sizeof(agent_log), "%s/agent.log", dir);
    uv_loop_init(&loop);
    slot_assignment_init(&cur);

    CHECK(start_fixture(argv[1]) == 0, "fixture did not start");
    fe_port = free_port();
    CHECK(fe_port > 0, "no free port");
    CHECK(write_config(false) == 0, "cannot write %s", cfg_path);
    CHECK(start_haproxy() == 0, "cannot start haproxy");
    CHECK(haproxy_runtime_new(&loop, stats_path, master_path, state_path, NULL, &rt) == 0, "new");

    /* HAProxy is up when the master answers and the worker is listed. */
    double end = now_ms() + 10000;
    while (now_ms() < end) {
        if (show_proc(rt) == 0 && procs.n_workers > 0 && show_state(rt) == 0)
            break;
        usleep(50000);
    }
    CHECK(last_status == 0 && procs.n_workers == 1, "haproxy did not come up: %s", last_err);
    int reloads0 = procs.master.reloads, worker0 = procs.workers[0].pid;
    printf("haproxy up: master %d, worker %d, reloads %d\n", procs.master.pid, worker0, reloads0);

    /* Control: free slots are written `disabled`, and an agent `ready`
     * takes them out of maintenance (the reason free slots get their agent
     * disabled). */
    end = now_ms() + 5000;
    while (now_ms() < end) {
        CHECK(show_state(rt) == 0, "%s", last_err);
        if (slot_live(3) && !(slot_live(3)->admin & SLOTS_ADMF_FMAINT))
            break;
        usleep(50000);
    }
    CHECK(slot_live(3) && !(slot_live(3)->admin & SLOTS_ADMF_MAINT),
          "agent 'ready' did not lift the config maint of slot4 (admin %u)",
          slot_live(3) ? slot_live(3)->admin : 0);
    printf("control: agent 'ready' lifted a disabled free slot (admin %u)\n", slot_live(3)->admin);

    /* 1. add web1 -> backend 1 */
    {
        const char *k[] = {"web1"};
        int b[] = {1}, w[] = {10};
        CHECK(place(k, b, w, 1) == 0, "place");
    }
    CHECK(apply(rt, &cur) == 0, "apply: %s", apply_res.message);
    printf("apply add web1: %zu commands\n", apply_res.commands);
    CHECK(show_state(rt) == 0, "%s", last_err);
    CHECK(slot_live(0)->port == http_ports[0] && strcmp(slot_live(0)->address, "127.0.0.1") == 0,
          "slot1 at %s:%u", slot_live(0)->address, slot_live(0)->port);
    CHECK(!(slot_live(0)->admin & SLOTS_ADMF_MAINT), "slot1 admin %u", slot_live(0)->admin);
    for (size_t s = 1; s < NSLOTS; s++) {
        CHECK(slot_live(s)->admin & SLOTS_ADMF_FMAINT, "free slot%zu admin %u", s + 1,
              slot_live(s)->admin);
        CHECK(!(slot_live(s)->agent_state & SLOTS_CHK_ENABLED), "free slot%zu agent %u", s + 1,
              slot_live(s)->agent_state);
    }
    http_spread(10, counts);
    CHECK(counts[1] == 10, "web1 got %d of 10 (errors %d, 503s %d)", counts[1], counts[NBACK + 1],
          counts[0]);

    /* 2. a free slot stays in maint while the agent keeps saying ready:
     * the agent is asked about slot1 again and again meanwhile */
    CHECK(wait_agent("be/slot1", 10, 10000), "agent not asked about slot1");
    CHECK(show_state(rt) == 0, "%s", last_err);
    for (size_t s = 1; s < NSLOTS; s++)
        CHECK(slot_live(s)->admin & SLOTS_ADMF_FMAINT, "free slot%zu left maint (admin %u)", s + 1,
              slot_live(s)->admin);
    CHECK(!(slot_live(0)->admin & SLOTS_ADMF_MAINT), "slot1 admin %u", slot_live(0)->admin);

    /* 3. add web2, web3 */
    {
        const char *k[] = {"web1", "web2", "web3"};
        int b[] = {1, 2, 3}, w[] = {10, 10, 10};
        CHECK(place(k, b, w, 3) == 0, "place");
    }
    CHECK(apply(rt, &cur) == 0, "apply: %s", apply_res.message);
    http_spread(30, counts);
    CHECK(counts[1] == 10 && counts[2] == 10 && counts[3] == 10, "spread %d/%d/%d (503 %d, err %d)",
          counts[1], counts[2], counts[3], counts[0], counts[NBACK + 1]);

    /* 4. remove web1: its slot goes back to maint, no request reaches it */
    {
        const char *k[] = {"web2", "web3"};
        int b[] = {2, 3}, w[] = {10, 10};
        CHECK(place(k, b, w, 2) == 0, "place");
    }
    CHECK(apply(rt, &cur) == 0, "apply: %s", apply_res.message);
    CHECK(apply_res.commands == 2, "remove took %zu commands", apply_res.commands);
    http_spread(20, counts);
    CHECK(counts[1] == 0 && counts[2] == 10 && counts[3] == 10, "after remove %d/%d/%d", counts[1],
          counts[2], counts[3]);
    CHECK(wait_agent("be/slot2", 5, 10000), "agent not asked about slot2");
    CHECK(show_state(rt) == 0, "%s", last_err);
    CHECK(slot_live(0)->admin & SLOTS_ADMF_FMAINT, "removed slot1 admin %u", slot_live(0)->admin);

    /* 5. readdress web2 to backend 4 (same key: same slot) */
    {
        const char *k[] = {"web2", "web3"};
        int b[] = {4, 3}, w[] = {10, 10};
        CHECK(place(k, b, w, 2) == 0, "place");
    }
    CHECK(apply(rt, &cur) == 0, "apply: %s", apply_res.message);
    CHECK(apply_res.commands == 1, "readdress took %zu commands", apply_res.commands);
    http_spread(20, counts);
    CHECK(counts[2] == 0 && counts[4] == 10 && counts[3] == 10, "after readdress %d/%d/%d",
          counts[2], counts[3], counts[4]);

    /* 6. reweight web3 to 0: all traffic to web2 (backend 4) */
    {
        const char *k[] = {"web2", "web3"};
        int b[] = {4, 3}, w[] = {10, 0};
        CHECK(place(k, b, w, 2) == 0, "place");
    }
    CHECK(apply(rt, &cur) == 0, "apply: %s", apply_res.message);
    CHECK(show_state(rt) == 0, "%s", last_err);
    long s3 = slot_assignment_find(&cur, "web3");
    CHECK(s3 >= 0 && slot_live((size_t)s3)->uweight == 0, "web3 uweight %d",
          slot_live((size_t)s3)->uweight);
    http_spread(10, counts);
    CHECK(counts[4] == 10, "after reweight web2 got %d of 10", counts[4]);

    /* unchanged assignment: nothing to send */
    CHECK(apply(rt, &cur) == 0 && apply_res.commands == 0, "re-apply sent %zu commands",
          apply_res.commands);

    /* 6b. back to back: the second apply diffs against the dump that ended
     * the first one's commands, one exchange instead of two (unless the
     * machine took longer than the dump may be old) */
    {
        const char *k[] = {"web2", "web3"};
        int b[] = {4, 3}, w[] = {10, 5};
        struct haproxy_runtime_stats st0, st1;
        CHECK(place(k, b, w, 2) == 0, "place");
        haproxy_runtime_get_stats(rt, &st0);
        double t0 = now_ms();
        CHECK(apply(rt, &cur) == 0 && apply_res.commands == 1, "reweight: %zu commands, %s",
              apply_res.commands, apply_res.message);
        haproxy_runtime_get_stats(rt, &st1);
        CHECK(now_ms() - t0 > HAPROXY_RUNTIME_LIVE_MAX_AGE_MS || st1.exchanges - st0.exchanges == 1,
              "apply right after an apply took %llu exchanges",
              (unsigned long long)(st1.exchanges - st0.exchanges));
        CHECK(show_state(rt) == 0, "%s", last_err);
        CHECK(slot_live((size_t)s3)->uweight == 5, "web3 uweight %d",
              slot_live((size_t)s3)->uweight);
        w[1] = 0;
        CHECK(place(k, b, w, 2) == 0, "place");
        CHECK(apply(rt, &cur) == 0, "apply: %s", apply_res.message);
    }

    /* 6c. agents later (the engine's early apply, sent while the agent
     * state file is written): web1 comes back into a free slot and serves
     * at once with its agent off; the full apply after it only enables
     * the agent. Taking web1 out again leaves nothing for later. */
    {
        const char *k[] = {"web1", "web2", "web3"};
        int b[] = {1, 4, 3}, w[] = {10, 10, 0};
        CHECK(place(k, b, w, 3) == 0, "place");
        memset(&apply_res, 0, sizeof(apply_res));
        CHECK(haproxy_runtime_apply_agents_later(rt, "be", &cur, apply_cb, NULL) == 0 &&
                  run_until_done(10000) && apply_res.status == 0,
              "early apply: %s", apply_res.message);
        CHECK(apply_res.agents_deferred == 1, "early apply left %zu agents off",
              apply_res.agents_deferred);
        long s1 = slot_assignment_find(&cur, "web1");
        CHECK(s1 >= 0 && show_state(rt) == 0, "web1 slot %ld: %s", s1, last_err);
        CHECK(!(slot_live((size_t)s1)->admin & SLOTS_ADMF_MAINT) &&
                  !(slot_live((size_t)s1)->agent_state & SLOTS_CHK_ENABLED),
              "after the early apply web1's slot has admin %u, agent %u",
              slot_live((size_t)s1)->admin, slot_live((size_t)s1)->agent_state);
        http_spread(10, counts);
        CHECK(counts[1] > 0 && counts[1] + counts[4] == 10, "web1 %d, web2 %d of 10 (errors %d)",
              counts[1], counts[4], counts[NBACK + 1]);
        CHECK(apply(rt, &cur) == 0 && apply_res.commands == 1,
              "full apply after the early one: %zu commands, %s", apply_res.commands,
              apply_res.message);
        CHECK(show_state(rt) == 0, "%s", last_err);
        CHECK(slot_live((size_t)s1)->agent_state & SLOTS_CHK_ENABLED, "web1's agent %u",
              slot_live((size_t)s1)->agent_state);
        CHECK(place(k + 1, b + 1, w + 1, 2) == 0, "place");
        memset(&apply_res, 0, sizeof(apply_res));
        CHECK(haproxy_runtime_apply_agents_later(rt, "be", &cur, apply_cb, NULL) == 0 &&
                  run_until_done(10000) && apply_res.status == 0 && apply_res.agents_deferred == 0,
              "early removal: %zu agents left off, %s", apply_res.agents_deferred,
              apply_res.message);
        CHECK(show_state(rt) == 0, "%s", last_err);
        CHECK((slot_live((size_t)s1)->admin & SLOTS_ADMF_FMAINT) &&
                  !(slot_live((size_t)s1)->agent_state & SLOTS_CHK_ENABLED),
              "freed slot admin %u, agent %u", slot_live((size_t)s1)->admin,
              slot_live((size_t)s1)->agent_state);
        CHECK(apply(rt, &cur) == 0 && apply_res.commands == 0,
              "full apply after an early removal sent %zu commands", apply_res.commands);
    }

    /* no reload happened for any of this */
    CHECK(show_proc(rt) == 0, "%s", last_err);
    CHECK(procs.master.reloads == reloads0, "reloads moved %d -> %d", reloads0,
          procs.master.reloads);

    /* 7. a pipelined batch vs one connection per command (figures only) */
    {
        enum { N = 200 };
        static char texts[N][64];
        const char *cmds[N];
        for (int i = 0; i < N; i++) {
            snprintf(texts[i], sizeof(texts[i]), "set server be/slot%ld weight 0", s3 + 1);
            cmds[i] = texts[i];
        }
        double t0 = now_ms();
        static int ok;
        ok = 0;
        CHECK(haproxy_runtime_exec(rt, HAPROXY_SOCKET_STATS, cmds, N, exec_cb, &ok) == 0, "exec");
        CHECK(run_until_done(10000) && ok == N, "batch: %d of %d answered empty", ok, N);
        double batch = now_ms() - t0;
        ok = 0;
        t0 = now_ms();
        for (int i = 0; i < N; i++)
            CHECK(haproxy_runtime_exec(rt, HAPROXY_SOCKET_STATS, &cmds[i], 1, exec_cb, &ok) == 0,
                  "exec");
        while (ok < N && run_until_done(10000))
            ;
        double single = now_ms() - t0;
        CHECK(ok == N, "singles: %d of %d", ok, N);
        printf("FIGURE %d commands: pipelined in one prompt-mode connection %.1f ms, one "
               "connection each %.1f ms\n",
               N, batch, single);
    }

    /* 7b. a big pipelined batch keeps answers aligned with commands: the
     * failing commands' answers sit exactly at their positions */
    {
        enum { N = 20000 };
        static char texts[N][64];
        static const char *cmds[N];
        for (int i = 0; i < N; i++) {
            if (i % 997 == 0)
                snprintf(texts[i], sizeof(texts[i]), "set server be/nosuch%d weight 0", i);
            else
                snprintf(texts[i], sizeof(texts[i]), "set server be/slot%ld weight 0", s3 + 1);
            cmds[i] = texts[i];
        }
        big_errors = 0;
        big_misplaced = 0;
        double t0 = now_ms();
        CHECK(haproxy_runtime_exec(rt, HAPROXY_SOCKET_STATS, cmds, N, big_cb, NULL) == 0, "exec");
        CHECK(run_until_done(20000) && big_status == 0, "big batch: %d", big_status);
        CHECK(big_n == N && big_misplaced == 0 && big_errors == (N + 996) / 997,
              "big batch: %zu answers, %d errors, %d misplaced", big_n, big_errors, big_misplaced);
        printf("FIGURE %d pipelined commands (%d failing) in %.1f ms\n", N, big_errors,
               now_ms() - t0);
    }

    /* 8. reload through the master CLI: state file, new worker, runtime
     * addresses kept */
    {
        struct slot_live before[NSLOTS];
        CHECK(show_state(rt) == 0, "%s", last_err);
        for (size_t s = 0; s < NSLOTS; s++)
            before[s] = *slot_live(s);
        CHECK(reload(rt) == 0, "reload: %s", reload_res.message);
        printf("reload: %s\n", reload_res.message);
        CHECK(reload_res.state_saved, "state not saved");
        CHECK(reload_res.reloads_after == reloads0 + 1, "reloads %d", reload_res.reloads_after);
        CHECK(reload_res.new_worker_pid > 0 && reload_res.new_worker_pid != worker0,
              "new worker %d (old %d)", reload_res.new_worker_pid, worker0);
        CHECK(show_proc(rt) == 0, "%s", last_err);
        bool listed = false;
        for (size_t i = 0; i < procs.n_workers; i++)
            listed |= procs.workers[i].pid == reload_res.new_worker_pid;
        CHECK(listed, "new worker not in show proc");
        CHECK(show_state(rt) == 0, "%s", last_err);
        for (size_t s = 0; s < NSLOTS; s++) {
            const struct slot_live *l = slot_live(s);
            /* HAProxy 2.6 applies the state of a server whose agent is
             * disabled only partially ("server-state partially applied
             * ... agent checks are not enabled"): a free slot may come
             * back at 0.0.0.0. Free slots' addresses do not matter. */
            CHECK(!cur.slots[s].used ||
                      (strcmp(l->address, before[s].address) == 0 && l->port == before[s].port),
                  "slot%zu %s:%u after reload, was %s:%u", s + 1, l->address, l->port,
                  before[s].address, before[s].port);
            CHECK((l->admin & SLOTS_ADMF_FMAINT) == (before[s].admin & SLOTS_ADMF_FMAINT),
                  "slot%zu admin %u after reload, was %u", s + 1, l->admin, before[s].admin);
            CHECK(l->uweight == before[s].uweight, "slot%zu weight %d, was %d", s + 1, l->uweight,
                  before[s].uweight);
            CHECK((l->agent_state & SLOTS_CHK_ENABLED) ==
                      (before[s].agent_state & SLOTS_CHK_ENABLED),
                  "slot%zu agent %u, was %u", s + 1, l->agent_state, before[s].agent_state);
        }
        for (size_t s = 0; s < NSLOTS; s++)
            printf("after reload slot%zu %s:%u op %d admin %u weight %d/%d agent %u\n", s + 1,
                   slot_live(s)->address, slot_live(s)->port, slot_live(s)->op_state,
                   slot_live(s)->admin, slot_live(s)->uweight, slot_live(s)->iweight,
                   slot_live(s)->agent_state);
        http_spread(10, counts);
        CHECK(counts[4] == 10, "after reload web2 got %d of 10 (503 %d, err %d)", counts[4],
              counts[0], counts[NBACK + 1]);
        /* what was applied is still what runs: nothing to send */
        CHECK(apply(rt, &cur) == 0 && apply_res.commands == 0, "post-reload apply sent %zu",
              apply_res.commands);
        worker0 = reload_res.new_worker_pid;
    }

    /* 8b. two reloads asked at once with an apply between them: they run
     * one after the other, the apply waits for the first to finish */
    {
        n_multi = 0;
        CHECK(haproxy_runtime_reload(rt, multi_reload_cb, NULL) == 0, "reload 1");
        CHECK(haproxy_runtime_apply(rt, "be", &cur, multi_apply_cb, NULL) == 0, "apply");
        CHECK(haproxy_runtime_reload(rt, multi_reload_cb, NULL) == 0, "reload 2");
        end = now_ms() + 30000;
        while (n_multi < 3 && now_ms() < end)
            run_until_done(1000);
        CHECK(n_multi == 3, "only %d of 3 callbacks", n_multi);
        CHECK(multi_order[0] == 'R' && multi_order[1] == 'A' && multi_order[2] == 'R', "order %.3s",
              multi_order);
        CHECK(multi_reload[0].status == 0 && multi_reload[1].status == 0, "reloads %d %d: %s",
              multi_reload[0].status, multi_reload[1].status, multi_reload[1].message);
        CHECK(multi_reload[1].reloads_after == multi_reload[0].reloads_after + 1 &&
                  multi_reload[1].new_worker_pid != multi_reload[0].new_worker_pid,
              "second reload %d -> %d, worker %d/%d", multi_reload[0].reloads_after,
              multi_reload[1].reloads_after, multi_reload[0].new_worker_pid,
              multi_reload[1].new_worker_pid);
        CHECK(multi_apply.status == 0 && multi_apply.commands == 0, "apply between: %d %zu %s",
              multi_apply.status, multi_apply.commands, multi_apply.message);
        http_spread(10, counts);
        CHECK(counts[4] == 10, "after two reloads web2 got %d of 10", counts[4]);
        reloads0 += 2;
    }

    /* 8c. a reload whose config carries a newer placement (web2 back on
     * backend 2, web3 at full weight), rendered into the slots as the
     * watcher does. The state file keeps only the slot lines that match
     * that placement: otherwise HAProxy 2.6 would combine the config's
     * address with the state file's port. A plain reload shows the problem
     * first (control). */
    {
        long s2 = slot_assignment_find(&cur, "web2");
        CHECK(s2 >= 0, "web2 placed");
        struct slot_assignment before;
        slot_assignment_init(&before);
        CHECK(slot_assignment_copy(&before, &cur) == 0, "copy");
        {
            const char *k[] = {"web2", "web3"};
            int b[] = {2, 3}, w[] = {10, 10};
            CHECK(place(k, b, w, 2) == 0, "place");
        }
        CHECK(slot_assignment_find(&cur, "web2") == s2 && slot_assignment_find(&cur, "web3") == s3,
              "slots moved");
        cfg_slot_port[s2] = http_ports[1];
        cfg_slot_port[s3] = http_ports[2];
        CHECK(write_config(false) == 0, "write");

        CHECK(reload(rt) == 0, "plain reload: %s", reload_res.message);
        CHECK(show_state(rt) == 0, "%s", last_err);
        printf("control: plain reload puts web2's slot at %s:%u (config %d, state file %d)\n",
               slot_live((size_t)s2)->address, slot_live((size_t)s2)->port, http_ports[1],
               http_ports[3]);
        CHECK(slot_live((size_t)s2)->port == http_ports[3],
              "expected the state file's port to win (HAProxy 2.6), got %u",
              slot_live((size_t)s2)->port);
        /* back to the old placement as the running state, as before */
        CHECK(apply(rt, &before) == 0, "apply: %s", apply_res.message);
        slot_assignment_free(&before);

        struct haproxy_placement pl = {"be", &cur};
        memset(&reload_res, 0, sizeof(reload_res));
        CHECK(haproxy_runtime_reload_placed(rt, &pl, 1, reload_cb, NULL) == 0 &&
                  run_until_done(30000) && reload_res.status == 0,
              "placed reload: %s", reload_res.message);
        printf("placed reload: %s\n", reload_res.message);
        CHECK(show_state(rt) == 0, "%s", last_err);
        CHECK(slot_live((size_t)s2)->port == http_ports[1] &&
                  strcmp(slot_live((size_t)s2)->address, "127.0.0.1") == 0,
              "web2's slot at %s:%u", slot_live((size_t)s2)->address, slot_live((size_t)s2)->port);
        CHECK(slot_live((size_t)s3)->port == http_ports[2] && slot_live((size_t)s3)->uweight == 10,
              "web3's slot at %s:%u weight %d", slot_live((size_t)s3)->address,
              slot_live((size_t)s3)->port, slot_live((size_t)s3)->uweight);
        for (size_t s = 0; s < NSLOTS; s++)
            if (!cur.slots[s].used)
                CHECK((slot_live(s)->admin & SLOTS_ADMF_FMAINT) &&
                          !(slot_live(s)->agent_state & SLOTS_CHK_ENABLED),
                      "free slot%zu admin %u agent %u", s + 1, slot_live(s)->admin,
                      slot_live(s)->agent_state);
        CHECK(haproxy_runtime_applied(rt, "be") != NULL, "placed reload records the placement");
        CHECK(apply(rt, &cur) == 0 && apply_res.commands == 0, "apply after placed reload: %zu",
              apply_res.commands);
        http_spread(20, counts);
        CHECK(counts[2] == 10 && counts[3] == 10, "after placed reload %d/%d/%d", counts[2],
              counts[3], counts[4]);
        cfg_slot_port[s2] = cfg_slot_port[s3] = 0;
        reloads0 += 2;
    }

    /* 9. a config HAProxy cannot load: the reload fails, the old worker
     * keeps serving (the watcher gates with haproxy -c; this is the
     * belt-and-braces check of the verification) */
    CHECK(write_config(true) == 0, "write");
    rc = reload(rt);
    CHECK(rc == -EIO, "broken reload gave %d: %s", rc, reload_res.message);
    printf("broken reload: %s\n", reload_res.message);
    http_spread(5, counts);
    CHECK(counts[2] + counts[3] == 5, "after failed reload web2/web3 got %d+%d of 5", counts[2],
          counts[3]);
    CHECK(write_config(false) == 0, "write");

    /* 10. HAProxy errors are reported with the command and the answer */
    {
        struct slot_assignment big;
        struct slot_server d = {"x", "127.0.0.1", 80, 1, false};
        size_t need;
        slot_assignment_init(&big);
        CHECK(slots_assign(NULL, &d, 1, NSLOTS + 2, &big, &need) == 0, "assign");
        rc = apply(rt, &big);
        CHECK(rc == -ENOENT && strstr(apply_res.message, "slot5"), "apply to 6 slots: %d %s", rc,
              apply_res.message);
        slot_assignment_free(&big);
        CHECK(haproxy_runtime_applied(rt, "be") == NULL, "failed apply kept 'applied'");
        CHECK(haproxy_runtime_apply(rt, "nosuchbackend", &cur, apply_cb, NULL) == 0, "apply");
        CHECK(run_until_done(5000) && apply_res.status == -ENOENT, "unknown backend: %d %s",
              apply_res.status, apply_res.message);
        /* after the failed applies, the live state alone drives the diff:
         * still nothing to do */
        CHECK(apply(rt, &cur) == 0 && apply_res.commands == 0, "apply after failure: %zu %s",
              apply_res.commands, apply_res.message);
    }

    /* 11. failure paths come back quickly and do not block the loop */
    {
        int sfd = socket(AF_UNIX, SOCK_STREAM, 0);
        struct sockaddr_un un = {.sun_family = AF_UNIX};
        char mute[PATH_MAX + 32];
        snprintf(mute, sizeof(mute), "%s/mute.sock", dir);
        CHECK(strlen(mute) < sizeof(un.sun_path), "path too long");
        memcpy(un.sun_path, mute, strlen(mute) + 1);
        CHECK(bind(sfd, (struct sockaddr *)&un, sizeof(un)) == 0 && listen(sfd, 4) == 0,
              "mute socket");
        CHECK(haproxy_runtime_new(&loop, mute, NULL, NULL, NULL, &rt_bad) == 0, "new");
        haproxy_runtime_set_timeouts(rt_bad, 300, 0);
        /* a timer on the same loop keeps firing while the exchange waits:
         * a client blocking in connect/read would starve it */
        uv_timer_t tick;
        uv_timer_init(&loop, &tick);
        uv_timer_start(&tick, count_tick, 10, 10);
        ticks = 0;
        double t0 = now_ms();
        rc = apply(rt_bad, &cur);
        double took = now_ms() - t0;
        int ticks_seen = ticks;
        uv_close((uv_handle_t *)&tick, NULL);
        CHECK(rc == -ETIMEDOUT, "mute socket gave %d: %s", rc, apply_res.message);
        CHECK(ticks_seen >= 5, "loop timer fired %d times while waiting %.0f ms", ticks_seen, took);
        printf("mute socket: %s after %.0f ms\n", apply_res.message, took);
        haproxy_runtime_free(rt_bad);
        rt_bad = NULL;
        close(sfd);

        char missing[PATH_MAX + 32];
        snprintf(missing, sizeof(missing), "%s/missing.sock", dir);
        CHECK(haproxy_runtime_new(&loop, missing, missing, state_path, NULL, &rt_bad) == 0, "new");
        t0 = now_ms();
        rc = apply(rt_bad, &cur);
        took = now_ms() - t0;
        CHECK(rc == -ENOENT, "missing socket gave %d: %s", rc, apply_res.message);
        printf("missing socket: %s after %.1f ms\n", apply_res.message, took);
        rc = reload(rt_bad);
        CHECK(rc == -ENOENT, "reload via missing socket gave %d: %s", rc, reload_res.message);
        haproxy_runtime_free(rt_bad);
        rt_bad = NULL;

        /* HAProxy dead: its sockets stay on disk, nobody listens */
        kill(haproxy_pid, SIGKILL);
        waitpid(haproxy_pid, NULL, 0);
        haproxy_pid = -1;
        end = now_ms() + 5000;
        /* the worker may answer, or reset a connection, while it dies */
        do {
            rc = apply(rt, &cur);
        } while (rc != -ECONNREFUSED && rc != -ENOENT && now_ms() < end && usleep(50000) == 0);
        CHECK(rc == -ECONNREFUSED || rc == -ENOENT, "dead haproxy gave %d: %s", rc,
              apply_res.message);
        printf("dead haproxy: %s\n", apply_res.message);
        rc = reload(rt);
        CHECK(rc == -ECONNREFUSED || rc == -ENOENT, "reload of dead haproxy gave %d: %s", rc,
              reload_res.message);
    }

    struct haproxy_runtime_stats st;
    haproxy_runtime_get_stats(rt, &st);
    printf("stats: exchanges %llu commands %llu command_errors %llu io_errors %llu timeouts %llu "
           "applies %llu/%llu reloads %llu/%llu\n",
           (unsigned long long)st.exchanges, (unsigned long long)st.commands_sent,
           (unsigned long long)st.command_errors, (unsigned long long)st.io_errors,
           (unsigned long long)st.timeouts, (unsigned long long)st.applies_ok,
           (unsigned long long)st.applies_failed, (unsigned long long)st.reloads_ok,
           (unsigned long long)st.reloads_failed);
    CHECK(st.reloads_ok == 5 && st.reloads_failed == 2, "reload counters %llu/%llu",
          (unsigned long long)st.reloads_ok, (unsigned long long)st.reloads_failed);
    CHECK(st.queued == 0, "queue not empty");

fail:
    if (rt_bad)
        haproxy_runtime_free(rt_bad);
    if (rt)
        haproxy_runtime_free(rt);
    uv_run(&loop, UV_RUN_NOWAIT);
    haproxy_proc_list_free(&procs);
    slot_assignment_free(&cur);
    cleanup();
    if (uv_loop_close(&loop) != 0)
        fprintf(stderr, "note: loop still had handles at exit\n");
    printf(failures ? "FAILED\n" : "PASSED\n");
    return failures ? 1 : 0;
}
