/* SPDX-License-Identifier: Apache-2.0 */
/* fake_master_cli: see fake_master_cli.h. */
#include "fake_master_cli.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* One connection: the command up to the client's shutdown, then the
 * answer. A command longer than the buffer is answered as read so far. */
static void serve_one(struct fake_master_cli *m, int c)
{
    char cmd[256];
    size_t len = 0;
    ssize_t r;

    while (len < sizeof(cmd) - 1 && (r = read(c, cmd + len, sizeof(cmd) - 1 - len)) > 0)
        len += (size_t)r;
    cmd[len] = 0;
    const char *ans = m->answer(m->arg, cmd);
    if (ans && write(c, ans, strlen(ans)) < 0)
        perror("fake master CLI write");
}

static void *serve(void *arg)
{
    struct fake_master_cli *m = arg;

    /* a short poll, so that stop is seen soon without a wake-up pipe */
    while (!atomic_load(&m->stop)) {
        struct pollfd p = {.fd = m->lfd, .events = POLLIN};
        if (poll(&p, 1, 10) <= 0)
            continue;
        int c = accept(m->lfd, NULL, NULL);
        if (c < 0)
            continue;
        serve_one(m, c);
        close(c);
    }
    return NULL;
}

int fake_master_cli_start(struct fake_master_cli *m, const char *path,
                          fake_master_cli_answer_fn answer, void *arg)
{
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    int rc;

    memset(m, 0, sizeof(*m));
    if (strlen(path) >= sizeof(m->path) || strlen(path) >= sizeof(un.sun_path))
        return -ENAMETOOLONG;
    strcpy(m->path, path);
    strcpy(un.sun_path, path);
    m->answer = answer;
    m->arg = arg;
    atomic_init(&m->stop, false);
    unlink(path);
    m->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (m->lfd < 0)
        return -errno;
    if (bind(m->lfd, (struct sockaddr *)&un, sizeof(un)) < 0 || listen(m->lfd, 16) < 0)
        goto fail;
    rc = pthread_create(&m->thread, NULL, serve, m);
    if (rc != 0) {
        errno = rc;
        goto fail;
    }
    return 0;
fail:
    rc = -errno;
    close(m->lfd);
    unlink(path);
    return rc;
}

void fake_master_cli_stop(struct fake_master_cli *m)
{
    atomic_store(&m->stop, true);
    pthread_join(m->thread, NULL);
    close(m->lfd);
    unlink(m->path);
}
