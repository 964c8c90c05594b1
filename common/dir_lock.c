/* SPDX-License-Identifier: Apache-2.0 */
#include "dir_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "errmsg.h"

/* The pid the holder wrote, 0 when unreadable (it may be between its
 * flock and its write). */
static long read_holder(int fd)
{
    char buf[32];
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    char *end;
    long pid = strtol(buf, &end, 10);
    return end != buf && (*end == '\n' || *end == '\0') && pid > 0 ? pid : 0;
}

static int write_pid(int fd)
{
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)n, 0) != n)
        return -errno;
    return 0;
}

int dir_lock_take(const char *dir, const char *name, int *fd, long *holder, char *err,
                  size_t errlen)
{
    char path[PATH_MAX];
    int rc;
    *fd = -1;
    *holder = 0;
    if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path)) {
        errmsg_set(err, errlen, "lock file in %s: name too long", dir);
        return -ENAMETOOLONG;
    }
    int lfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lfd < 0) {
        rc = -errno;
        errmsg_set(err, errlen, "cannot open the lock file %s: %s", path, strerror(-rc));
        return rc;
    }
    if (flock(lfd, LOCK_EX | LOCK_NB) < 0) {
        rc = errno == EWOULDBLOCK ? -EWOULDBLOCK : -errno;
        if (rc == -EWOULDBLOCK && (*holder = read_holder(lfd)) > 0)
            errmsg_set(err, errlen, "%s is in use by another process (pid %ld, lock file %s)", dir,
                       *holder, path);
        else if (rc == -EWOULDBLOCK)
            errmsg_set(err, errlen, "%s is in use by another process (lock file %s)", dir, path);
        else
            errmsg_set(err, errlen, "cannot lock %s: %s", path, strerror(-rc));
        close(lfd);
        return rc;
    }
    if ((rc = write_pid(lfd)) < 0) {
        /* locked all the same: only the name of the holder is missing */
        errmsg_set(err, errlen, "lock file %s: cannot write our pid: %s", path, strerror(-rc));
    }
    *fd = lfd;
    return 0;
}

void dir_lock_release(int fd)
{
    if (fd >= 0)
        close(fd);
}
