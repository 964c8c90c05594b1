/* SPDX-License-Identifier: Apache-2.0 */
#include "sdnotify.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "log.h"

struct sdnotify_watchdog {
    uv_timer_t timer;
    uint64_t interval_usec;
};

/* Send one datagram to $NOTIFY_SOCKET without ever waiting. libsystemd's
 * sd_notify() uses a blocking socket: when nothing drains the receiver's
 * queue (net.unix.max_dgram_qlen is small), it would freeze the daemon's
 * event loop inside a watchdog ping. A message that cannot be queued at
 * once is dropped and logged instead. Returns 1 sent, 0 not under systemd,
 * or -errno. */
static int notify(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    socklen_t salen;
    int fd, rc = 1;

    if (!path || !*path)
        return 0;
    size_t len = strlen(path);
    if ((path[0] != '/' && path[0] != '@') || len >= sizeof(sa.sun_path)) {
        log_warn("sdnotify: NOTIFY_SOCKET '%s' is not a usable socket path, continuing without it",
                 path);
        return -EINVAL;
    }
    memcpy(sa.sun_path, path, len);
    if (path[0] == '@')
        sa.sun_path[0] = '\0'; /* abstract namespace */
    salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);

    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    if (sendto(fd, state, strlen(state), MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&sa,
               salen) < 0) {
        rc = -errno;
        log_warn("sdnotify: sending '%s' to %s failed: %s, continuing without it", state, path,
                 strerror(-rc));
    }
    close(fd);
    return rc;
}

int sdnotify_ready(void)
{
    return notify("READY=1");
}

int sdnotify_stopping(void)
{
    return notify("STOPPING=1");
}

int sdnotify_status(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    int n;

    memcpy(buf, "STATUS=", 7);
    va_start(ap, fmt);
    n = vsnprintf(buf + 7, sizeof(buf) - 7, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -EINVAL;
    /* A newline would start a new assignment in the notify protocol. */
    for (char *p = buf; *p; p++)
        if (*p == '\n')
            *p = ' ';
    return notify(buf);
}

static void watchdog_closed(uv_handle_t *h)
{
    free(h->data);
}

static void watchdog_ping(uv_timer_t *timer)
{
    (void)timer;
    notify("WATCHDOG=1");
}

int sdnotify_watchdog_start(uv_loop_t *loop, struct sdnotify_watchdog **out)
{
    uint64_t usec = 0;
    struct sdnotify_watchdog *wd;
    int rc;

    *out = NULL;
    rc = sd_watchdog_enabled(0, &usec);
    if (rc < 0) {
        log_warn("sdnotify: bad watchdog settings from systemd (WATCHDOG_USEC): %s, running "
                 "without watchdog pings",
                 strerror(-rc));
        return 0;
    }
    if (rc == 0 || usec == 0)
        return 0;
    wd = calloc(1, sizeof(*wd));
    if (!wd)
        return -ENOMEM;
    wd->interval_usec = usec / 2;
    uint64_t ms = wd->interval_usec / 1000;
    if (ms == 0)
        ms = 1;
    uv_timer_init(loop, &wd->timer);
    rc = uv_timer_start(&wd->timer, watchdog_ping, 0, ms);
    if (rc < 0) {
        sdnotify_watchdog_stop(wd);
        return rc;
    }
    /* The ping timer alone must not keep the loop alive. */
    uv_unref((uv_handle_t *)&wd->timer);
    log_info("sdnotify: systemd watchdog every %llu ms, pinging every %llu ms",
             (unsigned long long)(usec / 1000), (unsigned long long)ms);
    *out = wd;
    return 1;
}

uint64_t sdnotify_watchdog_interval_usec(const struct sdnotify_watchdog *wd)
{
    return wd ? wd->interval_usec : 0;
}

void sdnotify_watchdog_stop(struct sdnotify_watchdog *wd)
{
    if (!wd)
        return;
    uv_timer_stop(&wd->timer);
    wd->timer.data = wd;
    uv_close((uv_handle_t *)&wd->timer, watchdog_closed);
}
