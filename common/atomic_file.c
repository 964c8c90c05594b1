/* SPDX-License-Identifier: Apache-2.0 */
#include "atomic_file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

/* Written in chunks so a huge file never needs one giant write() and the
 * test hook can interrupt between chunks. */
#define CHUNK (1u << 20)

static atomic_file_hook_fn test_hook;

void atomic_file_set_test_hook(atomic_file_hook_fn hook)
{
    test_hook = hook;
}

static void hook(const char *stage, size_t written)
{
    if (test_hook)
        test_hook(stage, written);
}

int atomic_file_make_dirs(const char *dir, mode_t mode)
{
    char buf[PATH_MAX];
    struct stat st;
    size_t len = strlen(dir);

    if (len == 0)
        return 0;
    if (len >= sizeof(buf))
        return -ENAMETOOLONG;
    memcpy(buf, dir, len + 1);
    /* Each prefix ending before a '/', then the whole path. */
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(buf, mode) < 0 && errno != EEXIST)
            return -errno;
        if (stat(buf, &st) < 0)
            return -errno;
        if (!S_ISDIR(st.st_mode))
            return -ENOTDIR;
        *p = c;
        if (c == '\0')
            return 0;
    }
}

int atomic_file_make_parent_dirs(const char *path, mode_t mode)
{
    char buf[PATH_MAX];
    const char *slash = strrchr(path, '/');

    if (!slash || slash == path)
        return 0;
    if ((size_t)(slash - path) >= sizeof(buf))
        return -ENAMETOOLONG;
    memcpy(buf, path, (size_t)(slash - path));
    buf[slash - path] = '\0';
    return atomic_file_make_dirs(buf, mode);
}

/* Split path into its directory and base name (both copied into the
 * caller's buffers). */
static int split_path(const char *path, char *dir, size_t dirlen, char *base, size_t baselen)
{
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    int n;

    if (*name == '\0')
        return -EISDIR;
    if (!slash)
        n = snprintf(dir, dirlen, ".");
    else if (slash == path)
        n = snprintf(dir, dirlen, "/");
    else
        n = snprintf(dir, dirlen, "%.*s", (int)(slash - path), path);
    if (n < 0 || (size_t)n >= dirlen)
        return -ENAMETOOLONG;
    n = snprintf(base, baselen, "%s", name);
    if (n < 0 || (size_t)n >= baselen)
        return -ENAMETOOLONG;
    return 0;
}

static int write_all(int fd, const char *data, size_t len)
{
    size_t off = 0;

    while (off < len) {
        size_t want = len - off > CHUNK ? CHUNK : len - off;
        ssize_t n = write(fd, data + off, want);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        off += (size_t)n;
        hook("write", off);
    }
    return 0;
}

/* Temp file, rename over path; with durable, the fsyncs of both (see
 * atomic_file.h). */
static int replace(const char *path, const void *data, size_t len, mode_t mode, bool durable)
{
    char dir[PATH_MAX], base[NAME_MAX + 1], tmp[PATH_MAX];
    int fd = -1, dfd = -1, rc;
    int created = 0;

    rc = split_path(path, dir, sizeof(dir), base, sizeof(base));
    if (rc < 0)
        return rc;
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return -errno;

    /* Unique hidden name: pid for stale clean-up, random against reuse of
     * a name left by an earlier crash of a process with the same pid. */
    for (int tries = 0; tries < 16 && fd < 0; tries++) {
        uint32_t r = 0;
        if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
            r = (uint32_t)rand();
        int n = snprintf(tmp, sizeof(tmp), ".%s.tmp.%ld.%08x", base, (long)getpid(), r);
        if (n < 0 || (size_t)n >= sizeof(tmp) || (size_t)n > NAME_MAX) {
            rc = -ENAMETOOLONG;
            goto out;
        }
        fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode & 07777);
        if (fd < 0 && errno != EEXIST) {
            rc = -errno;
            goto out;
        }
    }
    if (fd < 0) {
        rc = -EEXIST;
        goto out;
    }
    created = 1;
    hook("open", 0);
    /* O_CREAT's mode is filtered by the umask; callers ask for an exact mode. */
    if (fchmod(fd, mode & 07777) < 0) {
        rc = -errno;
        goto out;
    }
    rc = write_all(fd, data, len);
    if (rc < 0)
        goto out;
    if (durable && fsync(fd) < 0) {
        rc = -errno;
        goto out;
    }
    if (durable)
        hook("fsync", len);
    if (close(fd) < 0) {
        fd = -1;
        rc = -errno;
        goto out;
    }
    fd = -1;
    if (renameat(dfd, tmp, dfd, base) < 0) {
        rc = -errno;
        goto out;
    }
    created = 0;
    hook("rename", len);
    /* Make the rename itself durable. */
    if (durable && fsync(dfd) < 0) {
        rc = -errno;
        goto out;
    }
    if (durable)
        hook("dirsync", len);
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    if (created)
        unlinkat(dfd, tmp, 0);
    close(dfd);
    return rc;
}

int atomic_file_write(const char *path, const void *data, size_t len, mode_t mode)
{
    return replace(path, data, len, mode, true);
}

int atomic_file_replace(const char *path, const void *data, size_t len, mode_t mode)
{
    return replace(path, data, len, mode, false);
}

/* The pid and target of a temp name of ours: ".<target>.tmp.<pid>.<8 hex>"
 * (replace above) or "<target>.tmp.<pid>" (what the watcher's file writer
 * made before it used replace: left by a watcher killed mid-write before
 * an upgrade). */
bool atomic_file_temp_name(const char *name, char *target, size_t target_len, long *pid)
{
    const char *tag = NULL, *end;
    bool hidden = name[0] == '.';
    /* the last ".tmp." is the tag: a target name may hold ".tmp." itself */
    for (const char *p = name + hidden; (p = strstr(p, ".tmp.")); p++)
        tag = p;
    if (!tag || tag == name + hidden)
        return false;
    const char *digits = tag + 5;
    size_t nd = strspn(digits, "0123456789");
    if (nd == 0 || nd > 9 || digits[0] == '0')
        return false;
    end = digits + nd;
    if (hidden ? (end[0] != '.' || strlen(end + 1) != 8 || strspn(end + 1, "0123456789abcdef") != 8)
               : end[0] != '\0')
        return false;
    size_t tl = (size_t)(tag - name) - hidden;
    if (tl >= target_len)
        return false;
    memcpy(target, name + hidden, tl);
    target[tl] = '\0';
    *pid = strtol(digits, NULL, 10);
    return true;
}

/* Whether the writer pid of a temp file is gone: dead, or ourselves when
 * ours_too (nothing of ours writes yet). */
static bool writer_gone(long pid, bool ours_too)
{
    if (pid == (long)getpid())
        return ours_too;
    return kill((pid_t)pid, 0) < 0 && errno == ESRCH;
}

int atomic_file_sweep(const char *dir, atomic_file_target_fn want, void *arg, bool ours_too)
{
    char target[NAME_MAX + 1];
    struct dirent *de;
    long pid;
    int removed = 0;
    DIR *d = opendir(dir);
    if (!d)
        return -errno;
    while ((de = readdir(d)) != NULL) {
        if (!atomic_file_temp_name(de->d_name, target, sizeof(target), &pid) ||
            !want(target, arg) || !writer_gone(pid, ours_too))
            continue;
        if (unlinkat(dirfd(d), de->d_name, 0) == 0)
            removed++;
    }
    closedir(d);
    return removed;
}

static bool same_name(const char *target, void *arg)
{
    return strcmp(target, arg) == 0;
}

int atomic_file_remove_stale(const char *path)
{
    char dir[PATH_MAX], base[NAME_MAX + 1];
    int rc = split_path(path, dir, sizeof(dir), base, sizeof(base));
    return rc < 0 ? rc : atomic_file_sweep(dir, same_name, base, false);
}
