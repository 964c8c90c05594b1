/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench_agent_checker: checks/s, latency and memory of the real
 * drover-agent-checker, driven the way HAProxy drives it -- one new TCP
 * connection per check, the agent-send line "<backend>/<server>\n", read
 * until the checker closes.
 *
 * For each state size (1k, 10k, 50k servers in the state file):
 *   1. write the state file (every server with an entry, a third of them
 *      drained with a reason, some weighted) in a temp dir;
 *   2. start the daemon pinned to CPU 0 (sched_setaffinity before exec,
 *      like taskset -c 0), the load generator pinned to CPU 1 when there is
 *      one;
 *   3. load: CONCURRENCY connections in flight through epoll, each a fresh
 *      non-blocking connect, request for a random server of the file,
 *      reply checked (must start with the admin word written for it),
 *      closed with a reset (no TIME_WAIT, see slot_start); WARMUP_S
 *      discarded, then the given seconds measured;
 *   4. latency of each check: connect() start to the arrival of the reply
 *      (the kernel's receive timestamp, so the generator's own delay in
 *      reading it does not count), p50/p99 over all measured checks --
 *      under that load (queueing included), and again with one check at a
 *      time (LATENCY_S seconds), the service time HAProxy sees on a host
 *      that is not saturated;
 *   5. RSS: VmRSS of the daemon after the load.
 *   6. the ratio (issue 19): the checker with 50k servers and a trivial
 *      server (blocking accept, one read, fixed reply, close) on the same
 *      CPU, loaded in turn ROUNDS times; checks per CPU-second of each over
 *      the measured window; the median of the per-round ratios;
 *   7. open loop at 80 % of the checker's capacity on its core (the median
 *      of step 6), the checker and the trivial server in turn at that same
 *      rate PACED_ROUNDS times: both p99s side by side, with how late the
 *      generator started checks against its schedule and how much of its
 *      CPU it used -- whose tail it is.
 * Output: a table, then BENCH lines (the figures of the 50k run are the
 * headline ones).
 *
 * usage: bench_agent-checker [PATH/TO/drover-agent-checker [seconds]]
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CONCURRENCY 32
#define LATENCY_S   1.5
#define WARMUP_S    0.5
#define MAX_SAMPLES (8u << 20)
#define ROUNDS      5 /* checker and trivial server loaded in turn: median of the ratios */
/* Open loop: starts due within TICK_NS are made in one wake-up (a wake-up
 * costs the generator more than a check on this kind of VM); loads of
 * ON_NS separated by OFF_NS pauses (see schedule_next). */
#define TICK_NS      200000u
#define ON_NS        400000000u
#define OFF_NS       100000000u
#define PACED_ROUNDS 3
/* A request sent this long after its connect may meet the checker's
 * --request-timeout (100 ms) and rightly get the default answer. */
#define LATE_REQUEST_NS                                                                            \
    90000000u /* both open loop at the same rate in turn: median of the p99s                       \
               */
/* Real-time priority of the daemon, the trivial server and the generator:
 * SCHED_FIFO above every normal process, below the kernel's own real-time
 * threads (threaded IRQs and watchdogd run at 50, migration at 99). */
#define RT_PRIO 10

/* Longest an RT task of the bench may run without sleeping, in seconds
 * (RLIMIT_RTTIME: SIGXCPU, then SIGKILL at twice that): one measured
 * phase plus slack. Set in main from the phase length. */
static double rt_busy_limit_s = 10;
static bool rt_wanted = true;      /* DROVER_BENCH_NO_RT=1: the old method */
static const char *rt_failed = ""; /* why SCHED_FIFO was refused, if it was */
static bool rt_granted;            /* this process runs SCHED_FIFO RT_PRIO */
static int gen_cpu;                /* the CPU the generator is pinned to */

struct slot {
    int fd;
    bool sent;
    uint32_t server;
    uint64_t start_ns; /* now_ns() before connect() */
    uint64_t reply_ns; /* when the reply arrived (kernel timestamp), 0 = not yet */
    uint64_t sent_ns;  /* when send() of the request returned */
    size_t got;
    char reply[256];
};

struct run {
    size_t servers;
    double seconds;
    uint64_t checks, errors, bad_replies;
    uint64_t late_requests; /* sent too late for the checker's request timeout */
    uint32_t *lat_us;
    size_t nlat;
    double p50_ms, p99_ms, max_ms, checks_per_s, rss_mib;
    double daemon_cpu_s, checks_per_cpu_s; /* whole daemon life, incl. start and warm-up */
    uint64_t all_checks;
    pid_t pid;             /* server measured: CPU time over the measured window */
    bool trivial;          /* replies are not checked (the trivial server's) */
    double rate;           /* > 0: open loop, start checks at this rate per second */
    uint64_t window_done;  /* checks completed inside the measured window */
    double window_cpu_s;   /* server CPU time inside the measured window */
    double window_per_cpu; /* window_done / window_cpu_s */
    double window_user;    /* share of that CPU time in user space */
    double window_sleeps;  /* times the server went to sleep, per check answered */
    /* The generator itself over the measured window: a late or saturated
     * generator is the bench's own error, not the server's tail. */
    double gen_cpu_share;    /* its CPU time (softirq work done in its context included) / wall */
    double gen_core_busy;    /* its CPU's busy share from /proc/stat (everything on it) */
    double gen_us_per_check; /* its CPU time per check completed in the window */
    double softirqd_wait_ms; /* time ksoftirqd of the generator's CPU waited to run */
    double steal[2];         /* share of CPU 0 and of the generator's CPU the host took */
    uint64_t late_n;         /* open loop: checks started in the window */
    uint32_t *late_us;       /* open loop: how late each one started against its schedule */
    double late_p99_ms, late_max_ms;
    uint64_t behind; /* open loop: times the schedule was reset (more than 100 behind) */
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}

/* Server i: admin word expected in the reply. */
static const char *admin_of(uint32_t i)
{
    return i % 3 == 0 ? "drain" : (i % 3 == 1 ? "ready" : "maint");
}

static int write_state(const char *path, size_t n)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -errno;
    fprintf(f, "{\"version\":1,\"generated\":\"2026-11-23T12:00:00Z\","
               "\"default\":{\"admin\":\"ready\",\"health\":\"up\"},\"servers\":{");
    for (size_t i = 0; i < n; i++) {
        fprintf(f, "%s\"be_%zu/srv-%zu\":{\"admin\":\"%s\"", i ? "," : "", i % 200, i,
                admin_of((uint32_t)i));
        if (i % 3 == 0)
            fprintf(f, ",\"reason\":\"kernel upgrade ticket OPS-%zu\",\"author\":\"alice\"", i);
        if (i % 5 == 0)
            fprintf(f, ",\"weight\":%zu", i % 257);
        fputc('}', f);
    }
    fputs("}}\n", f);
    return fclose(f) == 0 ? 0 : -EIO;
}

static int free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

static void pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof(set), &set) < 0)
        fprintf(stderr, "bench: pinning to CPU %d failed: %s (continuing unpinned)\n", cpu,
                strerror(errno));
}

/* Make the calling task SCHED_FIFO at RT_PRIO (children and threads
 * inherit it), bounded by RLIMIT_RTTIME so a task that stops sleeping is
 * killed instead of holding its CPU; the kernel's RT throttling
 * (sched_rt_runtime_us) leaves other tasks 5 % of each CPU meanwhile. */
static void become_rt(void)
{
    if (!rt_wanted)
        return;
    rlim_t us = (rlim_t)(rt_busy_limit_s * 1e6);
    struct rlimit lim = {.rlim_cur = us, .rlim_max = 2 * us};
    struct sched_param sp = {.sched_priority = RT_PRIO};
    if (setrlimit(RLIMIT_RTTIME, &lim) < 0) {
        rt_failed = "setrlimit(RLIMIT_RTTIME) failed";
        return;
    }
    if (sched_setscheduler(0, SCHED_FIFO, &sp) < 0)
        rt_failed =
            errno == EPERM ? "sched_setscheduler: EPERM (not root?)" : "sched_setscheduler failed";
}

/* A child of the bench: dies with it, pinned to CPU 0, real-time. */
static void child_setup(void)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    pin(0);
    become_rt();
}

static pid_t start_daemon(const char *bin, const char *state, int port)
{
    char listen[64];
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
    pid_t pid = fork();
    if (pid == 0) {
        child_setup();
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0)
            dup2(null, STDOUT_FILENO);
        execl(bin, bin, "--listen", listen, "--state-file", state, "--metrics-addr", "",
              "--max-connections", "65536", "--log-level", "warn", (char *)NULL);
        _exit(127);
    }
    return pid;
}

static int wait_listening(int port, pid_t pid)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    for (int i = 0; i < 500; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        int rc = connect(fd, (struct sockaddr *)&a, sizeof(a));
        if (rc == 0) {
            /* a half-close gets an immediate answer: no timeout wait */
            shutdown(fd, SHUT_WR);
            char buf[256];
            while (read(fd, buf, sizeof(buf)) > 0)
                ;
            close(fd);
            return 0;
        }
        close(fd);
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return -ECHILD;
        usleep(10000);
    }
    return -ETIMEDOUT;
}

static double rss_mib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    double kib = -1;
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "VmRSS:", 6) == 0)
            kib = strtod(line + 6, NULL);
    }
    fclose(f);
    return kib / 1024.0;
}

/* CPU time of the whole process (every thread), in seconds: the sum of
 * the first field of /proc/PID/task/TID/schedstat (nanoseconds on a CPU;
 * /proc/PID/stat counts in clock ticks, too coarse for a few seconds). */
static double proc_cpu_s(pid_t pid)
{
    char path[96];
    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return -1;
    unsigned long long total = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "/proc/%d/task/%.20s/schedstat", (int)pid, e->d_name);
        FILE *f = fopen(path, "r");
        unsigned long long ns = 0;
        if (f) {
            if (fscanf(f, "%llu", &ns) == 1)
                total += ns;
            fclose(f);
        }
    }
    closedir(d);
    return (double)total / 1e9;
}

/* Where a server's CPU time goes: user and system time (clock ticks of
 * /proc/PID/task/TID/stat, split in proportion of the precise total) and
 * its voluntary context switches (each one a sleep: waiting for the next
 * connection). */
struct proc_usage {
    unsigned long long user_ticks, sys_ticks, sleeps;
};

static void proc_usage(pid_t pid, struct proc_usage *u)
{
    char path[96], line[512];
    memset(u, 0, sizeof(*u));
    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "/proc/%d/task/%.20s/stat", (int)pid, e->d_name);
        FILE *f = fopen(path, "r");
        if (f) {
            /* fields 14 and 15 (utime, stime) follow the ")" ending comm */
            char *p = fgets(line, sizeof(line), f) ? strrchr(line, ')') : NULL;
            unsigned long long ut, st;
            if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
                            &st) == 2) {
                u->user_ticks += ut;
                u->sys_ticks += st;
            }
            fclose(f);
        }
        snprintf(path, sizeof(path), "/proc/%d/task/%.20s/status", (int)pid, e->d_name);
        f = fopen(path, "r");
        while (f && fgets(line, sizeof(line), f))
            if (strncmp(line, "voluntary_ctxt_switches:", 24) == 0)
                u->sleeps += strtoull(line + 24, NULL, 10);
        if (f)
            fclose(f);
    }
    closedir(d);
}

/* Busy and total clock ticks of one CPU from /proc/stat (busy: all but
 * idle and iowait; steal counts as busy: the CPU was not ours). */
struct cpu_ticks {
    unsigned long long busy, total, steal;
};

static void cpu_ticks(int cpu, struct cpu_ticks *t)
{
    char line[512], want[16];
    FILE *f = fopen("/proc/stat", "r");
    memset(t, 0, sizeof(*t));
    if (!f)
        return;
    int wl = snprintf(want, sizeof(want), "cpu%d ", cpu);
    while (fgets(line, sizeof(line), f)) {
        unsigned long long v[8] = {0};
        if (strncmp(line, want, (size_t)wl) != 0)
            continue;
        if (sscanf(line + wl, "%llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                   &v[4], &v[5], &v[6], &v[7]) == 8) {
            for (int i = 0; i < 8; i++)
                t->total += v[i];
            t->busy = t->total - v[3] - v[4];
            t->steal = v[7];
        }
        break;
    }
    fclose(f);
}

/* CPU time of the calling thread (the generator), in seconds. Without
 * CONFIG_IRQ_TIME_ACCOUNTING it includes the softirq work the kernel did
 * in its context -- on loopback, the receive side of every packet it
 * sends -- which is also what the RT throttling counts. */
static double thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The baseline: the least a server can do per check -- blocking accept,
 * one read, a fixed reply, close; no parsing, no lookup, no timeout. */
static pid_t start_trivial(int port)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    child_setup();
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int one = 1, l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 4096) < 0)
        _exit(1);
    static const char reply[] = "drain up 50% #kernel upgrade ticket OPS-1234 (by alice)\n";
    char buf[512];
    for (;;) {
        int fd = accept4(l, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        if (recv(fd, buf, sizeof(buf), 0) >= 0)
            send(fd, reply, sizeof(reply) - 1, MSG_NOSIGNAL);
        close(fd);
    }
}

/* Start check idx on slot s: a fresh socket, connect, the request. The
 * generator pays more per check than the server on loopback (a packet's
 * receive side runs on the sender's CPU, so the whole handshake is
 * processed here), so it does as little as it can: no bind (the kernel
 * picks the source port in connect), and a close with a reset once the
 * reply is in (SO_LINGER 0), so no TIME_WAIT socket is made on either
 * side. The server's own work is the same either way: it has closed
 * before the reset arrives, and the reset is processed on this CPU. */
static int slot_start(int ep, struct slot *s, int port, size_t servers)
{
    struct sockaddr_in dst = {.sin_family = AF_INET,
                              .sin_port = htons((uint16_t)port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    int one = 1;

    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->fd < 0)
        return -errno;
    if (setsockopt(s->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) < 0 ||
        setsockopt(s->fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one)) < 0)
        return -errno;
    s->sent = false;
    s->got = 0;
    s->reply_ns = 0;
    s->server = rng() % (uint32_t)servers;
    s->start_ns = now_ns();
    if (connect(s->fd, (struct sockaddr *)&dst, sizeof(dst)) < 0 && errno != EINPROGRESS)
        return -errno;
    /* On loopback the handshake has usually completed inside connect():
     * send at once like HAProxy does once connected, and only wait for
     * writability when it has not. */
    char req[64];
    int len = snprintf(req, sizeof(req), "be_%u/srv-%u\n", s->server % 200, s->server);
    if (send(s->fd, req, (size_t)len, MSG_NOSIGNAL) == len)
        s->sent = true;
    s->sent_ns = now_ns();
    struct epoll_event ev = {.events = s->sent ? EPOLLIN | EPOLLRDHUP : EPOLLOUT, .data.ptr = s};
    return epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev) < 0 ? -errno : 0;
}

/* The connection of s became writable: send the request now. */
static bool slot_send_late(int ep, struct slot *s)
{
    char req[64];
    int err = 0;
    socklen_t el = sizeof(err);
    getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &el);
    int len = snprintf(req, sizeof(req), "be_%u/srv-%u\n", s->server % 200, s->server);
    if (err || send(s->fd, req, (size_t)len, MSG_NOSIGNAL) != len)
        return false;
    s->sent = true;
    s->sent_ns = now_ns();
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = s};
    epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &ev);
    return true;
}

/* Read what the server sent on s. The kernel's receive timestamp of the
 * reply (SO_TIMESTAMPNS, CLOCK_REALTIME; rt_off = realtime - monotonic)
 * says when it arrived, so a generator that looks late does not lengthen
 * the latency it measures. 1 = reply and EOF in, 0 = more to come, -1 =
 * failed. */
static int slot_read(struct slot *s, uint32_t events, int64_t rt_off)
{
    char cbuf[CMSG_SPACE(sizeof(struct timespec))];
    for (;;) {
        struct iovec iov = {s->reply + s->got, sizeof(s->reply) - 1 - s->got};
        struct msghdr mh = {
            .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
        ssize_t got = recvmsg(s->fd, &mh, 0);
        if (got == 0)
            return 1;
        if (got < 0)
            return errno == EAGAIN ? 0 : -1;
        s->got += (size_t)got;
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
            struct timespec ts;
            memcpy(&ts, CMSG_DATA(c), sizeof(ts));
            s->reply_ns = (uint64_t)((int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec - rt_off);
        }
        if (s->got == sizeof(s->reply) - 1)
            return -1;
        /* EOF already reported with the data: no read just to see it */
        if ((events & EPOLLRDHUP) && s->reply[s->got - 1] == '\n')
            return 1;
    }
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* The open loop's schedule: starts only in bursts of ON_NS of every
 * ON_NS + OFF_NS from t0, so the real-time generator never runs more
 * than 2 * ON_NS in any second, below the kernel's RT limit (950 ms of
 * each 1 s): the throttling's 50 ms pause never lands in a burst. */
static uint64_t schedule_next(uint64_t at, uint64_t t0)
{
    uint64_t in = (at - t0) % (ON_NS + OFF_NS);
    return in < ON_NS ? at : at + (ON_NS + OFF_NS - in);
}

/* Share of the time the generator loads the server: 1 closed loop. */
static double load_duty(const struct run *r)
{
    return r->rate > 0 ? (double)ON_NS / (ON_NS + OFF_NS) : 1.0;
}

/* realtime - monotonic, in ns: maps the kernel's receive timestamps
 * (CLOCK_REALTIME) onto now_ns(). */
static int64_t realtime_offset(void)
{
    struct timespec rt;
    uint64_t mono = now_ns();
    clock_gettime(CLOCK_REALTIME, &rt);
    return (int64_t)rt.tv_sec * 1000000000 + rt.tv_nsec - (int64_t)mono;
}

/* The check on s ended (done: the server closed after its reply). */
/* Whether the reply on s is the one written for its server: 1 yes, 0 the
 * request left so late that the default answer is the right one, -1 no. */
static int reply_verdict(struct run *r, struct slot *s)
{
    const char *want = admin_of(s->server);
    s->reply[s->got] = '\0';
    bool bad = s->got == 0 || s->reply[s->got - 1] != '\n' ||
               (!r->trivial && strncmp(s->reply, want, strlen(want)) != 0);
    if (!bad)
        return 1;
    if (s->sent_ns - s->start_ns >= LATE_REQUEST_NS) {
        /* the generator was stalled (the host took its CPU) between
         * connect and send for about the checker's request timeout */
        if (!r->late_requests++)
            fprintf(stderr, "bench: request sent %.0f ms after connect, answered \"%.*s\"\n",
                    (double)(s->sent_ns - s->start_ns) / 1e6, (int)strcspn(s->reply, "\n"),
                    s->reply);
        return 0;
    }
    if (!r->bad_replies++)
        fprintf(stderr, "bench: bad reply for be_%u/srv-%u: \"%.*s\"\n", s->server % 200, s->server,
                (int)strcspn(s->reply, "\n"), s->reply);
    return -1;
}

/* The check on s ended (done: the server closed after its reply). A late
 * request counts as an error of the generator, not as a check. */
static void slot_finish(struct run *r, struct slot *s, bool done, uint64_t measure_from,
                        uint64_t end)
{
    uint64_t fin = done && s->reply_ns > s->start_ns ? s->reply_ns : now_ns();
    if (done) {
        r->all_checks++;
        if (fin >= measure_from && fin < end)
            r->window_done++;
        done = reply_verdict(r, s) > 0;
    }
    if (s->start_ns >= measure_from && fin < end) {
        if (!done) {
            r->errors++;
        } else {
            r->checks++;
            if (r->nlat < MAX_SAMPLES)
                r->lat_us[r->nlat++] = (uint32_t)((fin - s->start_ns) / 1000);
        }
    }
    close(s->fd);
    s->fd = -1;
}

/* ksoftirqd of the generator's CPU: network receive work that overran
 * its budget in the generator's context is left to it, and it is a normal
 * task, so it waits behind the machine's other load whenever the
 * real-time generator sleeps; packets wait with it. 0 = not found. */
static pid_t softirqd_pid;

static pid_t find_softirqd(int cpu)
{
    char want[32], path[64], comm[32];
    snprintf(want, sizeof(want), "ksoftirqd/%d\n", cpu);
    DIR *d = opendir("/proc");
    pid_t found = 0;
    struct dirent *e;
    while (d && !found && (e = readdir(d))) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%.20s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (f && fgets(comm, sizeof(comm), f) && strcmp(comm, want) == 0)
            found = (pid_t)atoi(e->d_name);
        if (f)
            fclose(f);
    }
    if (d)
        closedir(d);
    return found;
}

/* Seconds ksoftirqd of the generator's CPU has waited on a run queue
 * (second field of its schedstat). */
static double softirqd_wait_s(void)
{
    char path[64];
    unsigned long long run, wait = 0;
    if (!softirqd_pid)
        return 0;
    snprintf(path, sizeof(path), "/proc/%d/schedstat", (int)softirqd_pid);
    FILE *f = fopen(path, "r");
    if (f) {
        if (fscanf(f, "%llu %llu", &run, &wait) != 2)
            wait = 0;
        fclose(f);
    }
    return (double)wait / 1e9;
}

/* What the server and the generator used over the measured window. */
struct window {
    uint64_t from;
    double server_cpu, gen_cpu, softirqd_wait;
    struct proc_usage use;
    struct cpu_ticks core, server_core;
};

static void window_open(struct window *w, pid_t pid, uint64_t t)
{
    w->server_cpu = proc_cpu_s(pid);
    proc_usage(pid, &w->use);
    w->gen_cpu = thread_cpu_s();
    cpu_ticks(gen_cpu, &w->core);
    cpu_ticks(0, &w->server_core);
    w->softirqd_wait = softirqd_wait_s();
    w->from = t;
}

static void window_close(const struct window *w, struct run *r)
{
    struct proc_usage use;
    struct cpu_ticks core;
    double cpu = proc_cpu_s(r->pid), gen = thread_cpu_s() - w->gen_cpu;
    proc_usage(r->pid, &use);
    r->softirqd_wait_ms = 1e3 * (softirqd_wait_s() - w->softirqd_wait);
    struct cpu_ticks server_core;
    cpu_ticks(0, &server_core);
    if (server_core.total > w->server_core.total)
        r->steal[0] = (double)(server_core.steal - w->server_core.steal) /
                      (double)(server_core.total - w->server_core.total);
    cpu_ticks(gen_cpu, &core);
    r->gen_cpu_share = gen / ((double)(now_ns() - w->from) / 1e9 * load_duty(r));
    if (r->window_done)
        r->gen_us_per_check = 1e6 * gen / (double)r->window_done;
    if (core.total > w->core.total)
        r->steal[1] = (double)(core.steal - w->core.steal) / (double)(core.total - w->core.total);
    if (core.total > w->core.total)
        r->gen_core_busy =
            (double)(core.busy - w->core.busy) / (double)(core.total - w->core.total);
    if (w->server_cpu >= 0 && cpu > w->server_cpu) {
        r->window_cpu_s = cpu - w->server_cpu;
        r->window_per_cpu = (double)r->window_done / r->window_cpu_s;
        unsigned long long ut = use.user_ticks - w->use.user_ticks;
        unsigned long long st = use.sys_ticks - w->use.sys_ticks;
        r->window_user = ut + st ? (double)ut / (double)(ut + st) : 0;
        r->window_sleeps =
            r->window_done ? (double)(use.sleeps - w->use.sleeps) / (double)r->window_done : 0;
    }
}

static void percentiles(uint32_t *v, size_t n, double *p50, double *p99, double *max)
{
    if (!n)
        return;
    qsort(v, n, sizeof(uint32_t), cmp_u32);
    if (p50)
        *p50 = v[n / 2] / 1000.0;
    *p99 = v[(size_t)((double)n * 0.99)] / 1000.0;
    *max = v[n - 1] / 1000.0;
}

/* Drive the server at port for WARMUP_S + r->seconds, measuring the last
 * r->seconds. Closed loop (r->rate 0): conc checks always in flight, each
 * ended one replaced at once; the generator sleeps in epoll until a reply
 * comes. Open loop: a check starts at each scheduled time (r->rate per
 * second) on a free slot; between starts the generator sleeps until the
 * next one and is not woken by replies (their arrival time comes from the
 * kernel's timestamps): one wake-up per start, the fewest it can do. */
static int load(struct run *r, int port, int conc)
{
    struct slot slots[CONCURRENCY];
    struct epoll_event evs[CONCURRENCY];
    if (conc > CONCURRENCY)
        conc = CONCURRENCY;
    /* Sleep a moment first: RLIMIT_RTTIME counts CPU time since the last
     * sleep, so the closed loop (which may never sleep while the server is
     * the bottleneck) is bounded per phase, not over all phases. */
    nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
    int ep = epoll_create1(EPOLL_CLOEXEC), rc;
    int64_t rt_off = realtime_offset();
    struct slot *idle[CONCURRENCY];
    int nidle = 0;

    for (int i = 0; i < conc; i++) {
        if (r->rate > 0) {
            slots[i].fd = -1;
            idle[nidle++] = &slots[i];
        } else if ((rc = slot_start(ep, &slots[i], port, r->servers)) < 0) {
            fprintf(stderr, "bench: connect failed: %s\n", strerror(-rc));
            return -1;
        }
    }
    uint64_t t0 = now_ns();
    uint64_t measure_from = t0 + (uint64_t)(WARMUP_S * 1e9);
    uint64_t end = measure_from + (uint64_t)(r->seconds * 1e9);
    uint64_t gap_ns = r->rate > 0 ? (uint64_t)(1e9 / r->rate) : 0, next_start = t0;
    struct window w = {0};
    while (1) {
        uint64_t t = now_ns();
        if (t >= end)
            break;
        if (!w.from && t >= measure_from)
            window_open(&w, r->pid, t);
        while (gap_ns && nidle && next_start <= t) {
            struct slot *s = idle[--nidle];
            if ((rc = slot_start(ep, s, port, r->servers)) < 0) {
                fprintf(stderr, "bench: connect failed: %s\n", strerror(-rc));
                return -1;
            }
            if (next_start >= measure_from && r->late_us && r->late_n < MAX_SAMPLES)
                r->late_us[r->late_n++] = (uint32_t)((s->start_ns - next_start) / 1000);
            next_start = schedule_next(next_start + gap_ns, t0);
        }
        if (gap_ns && !nidle && next_start + 100 * gap_ns < t) {
            next_start = t; /* all slots busy: do not queue a burst */
            if (t >= measure_from)
                r->behind++;
        }
        /* Never spin (the generator is real-time). Open loop with a free
         * slot: sleep to the next start, then collect what ended meanwhile
         * without waiting. Otherwise wait for a reply. */
        struct timespec timeout = {.tv_nsec = 100000000};
        if (gap_ns && nidle) {
            uint64_t wake = next_start > t + TICK_NS ? next_start : t + TICK_NS;
            struct timespec at = {.tv_sec = (time_t)(wake / 1000000000u),
                                  .tv_nsec = (long)(wake % 1000000000u)};
            clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL);
            timeout.tv_nsec = 0;
        }
        int n = epoll_pwait2(ep, evs, conc, &timeout, NULL);
        for (int k = 0; k < n; k++) {
            struct slot *s = evs[k].data.ptr;
            int st = 0;
            if (!s->sent)
                st = slot_send_late(ep, s) ? 0 : -1;
            else
                st = slot_read(s, evs[k].events, rt_off);
            if (st == 0)
                continue;
            slot_finish(r, s, st > 0, measure_from, end);
            if (gap_ns) {
                idle[nidle++] = s;
            } else if ((rc = slot_start(ep, s, port, r->servers)) < 0) {
                fprintf(stderr, "bench: connect failed: %s\n", strerror(-rc));
                return -1;
            }
        }
    }
    if (w.from)
        window_close(&w, r);
    for (int i = 0; i < conc; i++)
        if (slots[i].fd >= 0)
            close(slots[i].fd);
    close(ep);
    r->checks_per_s = (double)r->checks / (r->seconds * load_duty(r));
    percentiles(r->lat_us, r->nlat, &r->p50_ms, &r->p99_ms, &r->max_ms);
    percentiles(r->late_us, r->late_n, NULL, &r->late_p99_ms, &r->late_max_ms);
    return 0;
}

/* The load average, printed with the figures (the machine is shared). */
static void print_load(void)
{
    double avg[3];
    if (getloadavg(avg, 3) == 3)
        printf("load average: %.2f %.2f %.2f\n", avg[0], avg[1], avg[2]);
}

/* One of the two servers of the ratio and paced rounds. */
struct server {
    const char *name;
    pid_t pid;
    int port;
    size_t servers; /* state size asked for in requests */
    bool trivial;   /* replies are not checked */
};

/* Latencies and lateness of the current phase (one phase at a time). */
static uint32_t *lat_buf, *late_buf;

static double median(double *v, int n)
{
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
            double t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return n ? v[n / 2] : 0;
}

/* One phase against srv: closed loop (rate 0) or open loop at rate. */
static int run_phase(const struct server *srv, double seconds, double rate, struct run *x)
{
    memset(x, 0, sizeof(*x));
    x->servers = srv->servers;
    x->seconds = seconds;
    x->trivial = srv->trivial;
    x->pid = srv->pid;
    x->rate = rate;
    x->lat_us = lat_buf;
    x->late_us = rate > 0 ? late_buf : NULL;
    if (load(x, srv->port, CONCURRENCY) < 0 || x->bad_replies) {
        fprintf(stderr, "bench: %s run failed\n", srv->name);
        return 1;
    }
    return 0;
}

struct ratio_result {
    double median, best_chk, best_triv;
    double chk_median_per_cpu, chk_median_per_s; /* the checker's capacity */
};

/* The ratio: the checker and the trivial server, both on CPU 0, loaded in
 * turn ROUNDS times; each pair ran back to back, under about the same
 * disturbance, so the median of the per-round ratios is the figure; the
 * best checks/cpu-s of each is printed too. */
static int ratio_rounds(const struct server *chk_srv, const struct server *triv_srv, double seconds,
                        struct ratio_result *out)
{
    double ratios[ROUNDS], per_cpu[ROUNDS], per_s[ROUNDS];
    int n = 0;
    struct run chk, triv;
    for (int k = 0; k < ROUNDS; k++) {
        if (run_phase(chk_srv, seconds, 0, &chk) || run_phase(triv_srv, seconds, 0, &triv))
            return 1;
        printf("ratio round %d: checker %.0f, trivial %.0f checks/cpu-s; user share %.1f%% / "
               "%.1f%%, sleeps per check %.2f / %.2f; generator %.0f%% / %.0f%% of its CPU\n",
               k + 1, chk.window_per_cpu, triv.window_per_cpu, 100 * chk.window_user,
               100 * triv.window_user, chk.window_sleeps, triv.window_sleeps,
               100 * chk.gen_cpu_share, 100 * triv.gen_cpu_share);
        if (chk.window_per_cpu > 0 && triv.window_per_cpu > 0) {
            ratios[n] = chk.window_per_cpu / triv.window_per_cpu;
            per_cpu[n] = chk.window_per_cpu;
            per_s[n++] = chk.checks_per_s;
        }
        if (chk.window_per_cpu > out->best_chk)
            out->best_chk = chk.window_per_cpu;
        if (triv.window_per_cpu > out->best_triv)
            out->best_triv = triv.window_per_cpu;
    }
    out->median = median(ratios, n);
    out->chk_median_per_cpu = median(per_cpu, n);
    out->chk_median_per_s = median(per_s, n);
    return 0;
}

struct paced_result {
    double chk_p99_ms, chk_max_ms, triv_p99_ms, triv_max_ms;
    double late_p99_ms, late_max_ms, gen_cpu_share, gen_core_busy;
    double rate_held;        /* the smallest share of the scheduled rate done in a round */
    double softirqd_wait_ms; /* the most ksoftirqd waited in one round's window */
    double steal[2];         /* the most the host took of CPU 0 and of the generator's in a round */
    uint64_t behind;
};

/* Fold one open-loop phase's generator figures into the worst so far. */
static void paced_generator(const struct run *x, struct paced_result *out)
{
    double held = x->checks_per_s / x->rate;
    if (out->rate_held == 0 || held < out->rate_held)
        out->rate_held = held;
    if (x->late_p99_ms > out->late_p99_ms)
        out->late_p99_ms = x->late_p99_ms;
    if (x->late_max_ms > out->late_max_ms)
        out->late_max_ms = x->late_max_ms;
    if (x->gen_cpu_share > out->gen_cpu_share)
        out->gen_cpu_share = x->gen_cpu_share;
    if (x->gen_core_busy > out->gen_core_busy)
        out->gen_core_busy = x->gen_core_busy;
    out->behind += x->behind;
    if (x->softirqd_wait_ms > out->softirqd_wait_ms)
        out->softirqd_wait_ms = x->softirqd_wait_ms;
    for (int i = 0; i < 2; i++)
        if (x->steal[i] > out->steal[i])
            out->steal[i] = x->steal[i];
}

/* Whose tail is it: the checker and the trivial server driven open loop at
 * the same absolute rate, in turn PACED_ROUNDS times, with the generator's
 * own lateness and CPU use next to their latencies. */
static int paced_rounds(const struct server *chk_srv, const struct server *triv_srv, double rate,
                        double seconds, struct paced_result *out)
{
    double chk_p99[PACED_ROUNDS], triv_p99[PACED_ROUNDS];
    struct run chk, triv;
    for (int k = 0; k < PACED_ROUNDS; k++) {
        if (run_phase(chk_srv, seconds, rate, &chk) || run_phase(triv_srv, seconds, rate, &triv))
            return 1;
        printf("paced round %d at %.0f/s: checker %.0f/s done, p50 %.3f p99 %.3f max %.3f ms; "
               "trivial %.0f/s, p50 %.3f p99 %.3f max %.3f ms\n"
               "  generator: late p99 %.3f / %.3f ms, max %.3f / %.3f ms; %.0f%% / %.0f%% of its "
               "CPU (that CPU %.0f%% / %.0f%% busy), %.1f / %.1f us per check; schedule reset "
               "%llu / %llu times; ksoftirqd/%d waited %.1f / %.1f ms to run; the host took\n"
               "  %.1f%% / %.1f%% of CPU 0, %.1f%% / %.1f%% of the generator's (steal)\n",
               k + 1, rate, chk.checks_per_s, chk.p50_ms, chk.p99_ms, chk.max_ms, triv.checks_per_s,
               triv.p50_ms, triv.p99_ms, triv.max_ms, chk.late_p99_ms, triv.late_p99_ms,
               chk.late_max_ms, triv.late_max_ms, 100 * chk.gen_cpu_share, 100 * triv.gen_cpu_share,
               100 * chk.gen_core_busy, 100 * triv.gen_core_busy, chk.gen_us_per_check,
               triv.gen_us_per_check, (unsigned long long)chk.behind,
               (unsigned long long)triv.behind, gen_cpu, chk.softirqd_wait_ms,
               triv.softirqd_wait_ms, 100 * chk.steal[0], 100 * triv.steal[0], 100 * chk.steal[1],
               100 * triv.steal[1]);
        chk_p99[k] = chk.p99_ms;
        triv_p99[k] = triv.p99_ms;
        if (chk.max_ms > out->chk_max_ms)
            out->chk_max_ms = chk.max_ms;
        if (triv.max_ms > out->triv_max_ms)
            out->triv_max_ms = triv.max_ms;
        paced_generator(&chk, out);
        paced_generator(&triv, out);
    }
    out->chk_p99_ms = median(chk_p99, PACED_ROUNDS);
    out->triv_p99_ms = median(triv_p99, PACED_ROUNDS);
    return 0;
}

int main(int argc, char **argv)
{
    static const size_t sizes[] = {1000, 10000, 50000};
    struct run runs[3], idle[3];
    char dir[] = "/tmp/drover-bench-agent-XXXXXX", state[128];

#ifdef DAEMON_PATH
    const char *daemon = argc > 1 ? argv[1] : DAEMON_PATH;
#else
    if (argc < 2) {
        fprintf(stderr, "usage: %s PATH/TO/drover-agent-checker [seconds]\n", argv[0]);
        return 2;
    }
    const char *daemon = argv[1];
#endif
    double seconds = argc > 2 ? atof(argv[2]) : 3.0;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(state, sizeof(state), "%s/state.json", dir);
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0); /* what ran is on record if the alarm ends it */
    const char *no_rt = getenv("DROVER_BENCH_NO_RT");
    rt_wanted = !(no_rt && *no_rt && strcmp(no_rt, "0") != 0);
    /* The longest phase is WARMUP_S + seconds: an RT task of the bench
     * that runs that long plus 2 s without sleeping is a runaway. */
    rt_busy_limit_s = WARMUP_S + seconds + 2;
    /* Bound on the whole run (its phases take about 3 * (2.5 + s) +
     * (2 * ROUNDS + 2 * PACED_ROUNDS) * (0.5 + s) seconds plus
     * start-ups): SIGALRM ends the bench, and
     * PR_SET_PDEATHSIG the servers it started. */
    alarm((unsigned)(2 * (3 * (2.5 + seconds) +
                          (2 * ROUNDS + 2 * PACED_ROUNDS) * (WARMUP_S + seconds)) +
                     60));

    printf("method: drover-agent-checker pinned to CPU 0; load generator %s; one new TCP\n"
           "  connection per check (as HAProxy does), %d in flight, request \"be_N/srv-M\\n\"\n"
           "  for a random server of the state file, reply read until the checker closes\n"
           "  and verified, then a close with a reset (no TIME_WAIT on either side; the\n"
           "  server has closed already, and the reset is processed on the generator's CPU);\n"
           "  %.1fs warm-up then %.1fs measured per state size; latency = connect() start to\n"
           "  the reply's arrival (kernel receive timestamp, SO_TIMESTAMPNS: a generator\n"
           "  busy elsewhere does not lengthen it); RSS = daemon VmRSS after load.\n",
           cpus > 1 ? "pinned to CPU 1" : "on the same CPU (1 CPU only)", CONCURRENCY, WARMUP_S,
           seconds);
    printf("  Real time: the daemon (every thread), the trivial server and the generator\n"
           "  run SCHED_FIFO priority %d -- above every normal process, so other load on\n"
           "  the machine cannot queue in front of them, and below the kernel's own RT\n"
           "  threads (IRQ threads 50, migration 99). Guards: RLIMIT_RTTIME %.1fs (a task\n"
           "  running that long without sleeping is killed), the kernel's RT throttling\n"
           "  (sched_rt_runtime_us) leaves other tasks a share of each CPU, an alarm bounds\n"
           "  the whole run, servers die with the bench (PR_SET_PDEATHSIG), and the open-loop\n"
           "  generator sleeps to its next start instead of spinning.\n"
           "  DROVER_BENCH_NO_RT=1 runs without it (the old method).\n",
           RT_PRIO, rt_busy_limit_s);
    printf("  p50/p99/max are under that load (queueing included); p50_1/p99_1 with one\n"
           "  check at a time for %.1fs after it (the service time).\n"
           "  checks/cpu-s = checks answered / CPU time the daemon used in the measured\n"
           "  window (all threads, /proc/PID/task/*/schedstat): its capacity on one core\n"
           "  even when the machine is shared and the wall-clock checks/s is limited by\n"
           "  other load (BENCH agent_checks_per_cpu_s_* count from start-up instead).\n"
           "  Ratio: the checker (50k) and a trivial server (blocking accept, one read,\n"
           "  fixed reply, close; same CPU, same generator) loaded in turn %d times after\n"
           "  the table; agent_checker_per_cpu_ratio is the median of the per-round\n"
           "  ratios (each pair back to back), *_per_cpu_s the best of each.\n"
           "  Paced: open loop at 80%% of the checker's capacity on its core (median\n"
           "  checks/cpu-s of the ratio rounds), the checker and the trivial server in\n"
           "  turn %d times at that same rate. Checks start on a fixed schedule, those due\n"
           "  within %.1f ms in one wake-up (a wake-up costs the generator more than a\n"
           "  check here), in bursts of %.0f ms with %.0f ms pauses so the generator never\n"
           "  meets the RT throttling; between starts it sleeps and is not woken by\n"
           "  replies. Lateness = how much later than scheduled a check started: a late\n"
           "  generator offered less than 80%%, and its tail is the bench's, not the\n"
           "  server's. Generator CPU = its thread's CPU time over the bursts (softirq\n"
           "  work for the packets it sends included: on loopback it pays the handshake).\n",
           LATENCY_S, ROUNDS, PACED_ROUNDS, TICK_NS / 1e6, ON_NS / 1e6, OFF_NS / 1e6);
    /* tell whether real time was granted before any figure */
    if (rt_wanted) {
        become_rt();
        struct sched_param sp;
        int pol = sched_getscheduler(0);
        if (pol != SCHED_FIFO || sched_getparam(0, &sp) < 0 || sp.sched_priority != RT_PRIO)
            printf("real time: NOT granted (%s): figures include queueing behind other "
                   "processes\n",
                   *rt_failed ? rt_failed : "unknown");
        else
            rt_granted = true;
        if (rt_granted)
            printf("real time: SCHED_FIFO %d granted\n", RT_PRIO);
    } else {
        printf("real time: off (DROVER_BENCH_NO_RT)\n");
    }
    print_load();
    lat_buf = malloc(MAX_SAMPLES * sizeof(uint32_t));
    late_buf = malloc(MAX_SAMPLES * sizeof(uint32_t));
    if (!lat_buf || !late_buf) {
        fprintf(stderr, "bench: out of memory for the latency samples\n");
        return 1;
    }
    gen_cpu = cpus > 1 ? 1 : 0;
    softirqd_pid = find_softirqd(gen_cpu);
    if (cpus > 1)
        pin(gen_cpu);
    printf("%8s %10s %8s %8s %8s %8s %8s %8s %7s %12s\n", "servers", "checks/s", "p50_ms", "p99_ms",
           "max_ms", "p50_1", "p99_1", "rss_MiB", "errors", "checks/cpu-s");
    int status = 0;
    memset(runs, 0, sizeof(runs));
    memset(idle, 0, sizeof(idle));
    for (size_t i = 0; i < 3; i++) {
        struct run *r = &runs[i];
        memset(r, 0, sizeof(*r));
        r->servers = sizes[i];
        r->seconds = seconds;
        r->lat_us = lat_buf;
        int port = free_port();
        if (port < 0 || write_state(state, sizes[i]) < 0) {
            fprintf(stderr, "bench: setup failed\n");
            return 1;
        }
        pid_t pid = start_daemon(daemon, state, port);
        if (pid < 0 || wait_listening(port, pid) < 0) {
            fprintf(stderr, "bench: %s did not start listening on port %d\n", daemon, port);
            return 1;
        }
        r->pid = pid;
        int rc = load(r, port, CONCURRENCY);
        struct run *q = &idle[i];
        memset(q, 0, sizeof(*q));
        q->servers = r->servers;
        q->seconds = LATENCY_S;
        q->pid = pid;
        q->lat_us = lat_buf; /* r's figures are computed already */
        if (rc == 0)
            rc = load(q, port, 1);
        r->all_checks += q->all_checks;
        r->bad_replies += q->bad_replies;
        r->rss_mib = rss_mib(pid);
        kill(pid, SIGTERM);
        struct rusage ru;
        if (wait4(pid, NULL, 0, &ru) == pid) {
            r->daemon_cpu_s = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
                              (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
            if (r->daemon_cpu_s > 0)
                r->checks_per_cpu_s = (double)r->all_checks / r->daemon_cpu_s;
        }
        if (rc < 0 || r->bad_replies) {
            fprintf(stderr, "bench: run with %zu servers failed (%llu bad replies)\n", sizes[i],
                    (unsigned long long)r->bad_replies);
            status = 1;
        }
        printf("%8zu %10.0f %8.3f %8.3f %8.3f %8.3f %8.3f %8.2f %7llu %12.0f\n", r->servers,
               r->checks_per_s, r->p50_ms, r->p99_ms, r->max_ms, q->p50_ms, q->p99_ms, r->rss_mib,
               (unsigned long long)(r->errors + q->errors), r->window_per_cpu);
        printf("%8s generator: %.0f%% of its CPU, that CPU %.0f%% busy\n", "",
               100 * r->gen_cpu_share, 100 * r->gen_core_busy);
    }

    /* The checker (50k state) and the trivial server, both on CPU 0, run
     * side by side for the rest. */
    int tport = free_port(), cport = free_port();
    pid_t tpid = tport > 0 ? start_trivial(tport) : -1;
    pid_t cpid =
        cport > 0 && write_state(state, sizes[2]) == 0 ? start_daemon(daemon, state, cport) : -1;
    if (tpid < 0 || wait_listening(tport, tpid) < 0 || cpid < 0 ||
        wait_listening(cport, cpid) < 0) {
        fprintf(stderr, "bench: the trivial server or the checker did not start\n");
        return 1;
    }
    struct server chk_srv = {"checker", cpid, cport, sizes[2], false};
    struct server triv_srv = {"trivial", tpid, tport, 1000, true};
    struct ratio_result ratio = {0};
    struct paced_result paced = {0};
    if (status == 0)
        status = ratio_rounds(&chk_srv, &triv_srv, seconds, &ratio);
    /* one core's capacity: the checker's median checks per CPU-second over
     * the ratio rounds; without real time, when the CPU is shared and the
     * closed loop got fewer per second, that rate (the core is not the
     * daemon's then) */
    double cap = ratio.chk_median_per_cpu;
    if (!rt_granted && ratio.chk_median_per_s > 0 && ratio.chk_median_per_s < cap)
        cap = ratio.chk_median_per_s;
    if (status == 0 && cap > 0)
        status = paced_rounds(&chk_srv, &triv_srv, 0.8 * cap, seconds, &paced);
    kill(tpid, SIGKILL);
    kill(cpid, SIGTERM);
    waitpid(tpid, NULL, 0);
    waitpid(cpid, NULL, 0);
    /* On time: starts late by no more than the batching grain allows (two
     * ticks). Rate held: each round did 99 % of the checks scheduled. */
    bool on_time = paced.late_p99_ms <= 2 * TICK_NS / 1e6 && paced.behind == 0;
    bool held = paced.rate_held >= 0.99;
    printf(
        "paced at 80%% of the checker's capacity on its core (%.0f checks per CPU-second,\n"
        "  the median of the ratio rounds): %.0f checks/s scheduled, both servers in turn\n"
        "  %d times; p99 = median of the rounds, max = the largest:\n"
        "  checker p99 %.3f ms, max %.3f ms; trivial p99 %.3f ms, max %.3f ms;\n"
        "  generator: did at least %.1f%% of the schedule, late p99 up to %.3f ms, max %.3f\n"
        "  ms, schedule reset %llu times, up to %.0f%% of its CPU (that CPU up to %.0f%% busy);\n"
        "  ksoftirqd/%d (receive work left over on the generator's CPU; a normal task)\n"
        "  waited up to %.1f ms to run in a round; the host took up to %.1f%% of CPU 0\n"
        "  and %.1f%% of the generator's CPU in a round (steal) -- %s\n",
        cap, 0.8 * cap, PACED_ROUNDS, paced.chk_p99_ms, paced.chk_max_ms, paced.triv_p99_ms,
        paced.triv_max_ms, 100 * paced.rate_held, paced.late_p99_ms, paced.late_max_ms,
        (unsigned long long)paced.behind, 100 * paced.gen_cpu_share, 100 * paced.gen_core_busy,
        gen_cpu, paced.softirqd_wait_ms, 100 * paced.steal[0], 100 * paced.steal[1],
        !held     ? "it FELL BEHIND: it offered less than 80 %, so these figures do not\n"
                    "  answer the goal (compare the trivial server at the same rate)"
        : on_time ? "it kept to its schedule: the tails are the servers'"
                  : "it held the rate but started checks late, then in catch-up bursts (a\n"
                    "  harsher load than the even schedule): the tails are the servers' under it");
    print_load();
    unlink(state);
    rmdir(dir);
    for (size_t i = 0; i < 3; i++) {
        printf("BENCH agent_checks_per_s_%zuk %.0f\n", sizes[i] / 1000, runs[i].checks_per_s);
        printf("BENCH agent_p50_ms_%zuk %.3f\n", sizes[i] / 1000, idle[i].p50_ms);
        printf("BENCH agent_p99_ms_%zuk %.3f\n", sizes[i] / 1000, idle[i].p99_ms);
        printf("BENCH agent_p99_ms_loaded_%zuk %.3f\n", sizes[i] / 1000, runs[i].p99_ms);
        printf("BENCH agent_rss_mib_%zuk %.2f\n", sizes[i] / 1000, runs[i].rss_mib);
        printf("BENCH agent_checks_per_cpu_s_%zuk %.0f\n", sizes[i] / 1000,
               runs[i].checks_per_cpu_s);
    }
    printf("BENCH agent_checker_trivial_per_cpu_s %.0f\n", ratio.best_triv);
    printf("BENCH agent_checker_per_cpu_s %.0f\n", ratio.best_chk);
    printf("BENCH agent_checker_per_cpu_ratio %.3f\n", ratio.median);
    printf("BENCH agent_checker_p99_ms_at_80pct %.3f\n", paced.chk_p99_ms);
    printf("BENCH agent_checker_max_ms_at_80pct %.3f\n", paced.chk_max_ms);
    printf("BENCH agent_trivial_p99_ms_at_80pct %.3f\n", paced.triv_p99_ms);
    printf("BENCH agent_trivial_max_ms_at_80pct %.3f\n", paced.triv_max_ms);
    printf("BENCH agent_generator_late_p99_ms_at_80pct %.3f\n", paced.late_p99_ms);
    printf("BENCH agent_generator_late_max_ms_at_80pct %.3f\n", paced.late_max_ms);
    printf("BENCH agent_generator_cpu_pct_at_80pct %.1f\n", 100 * paced.gen_cpu_share);
    printf("BENCH agent_generator_rate_pct_at_80pct %.1f\n", 100 * paced.rate_held);
    printf("BENCH agent_generator_softirqd_wait_ms_at_80pct %.1f\n", paced.softirqd_wait_ms);
    printf("BENCH agent_host_steal_pct_at_80pct %.1f\n",
           100 * (paced.steal[0] > paced.steal[1] ? paced.steal[0] : paced.steal[1]));
    printf("BENCH agent_checks_per_s %.0f\n", runs[2].checks_per_s);
    printf("BENCH agent_p99_ms %.3f\n", idle[2].p99_ms);
    printf("BENCH agent_p99_ms_loaded %.3f\n", runs[2].p99_ms);
    printf("BENCH agent_rss_mib %.2f\n", runs[2].rss_mib);
    return status;
}
