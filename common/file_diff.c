/* SPDX-License-Identifier: Apache-2.0 */
#include "file_diff.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdbool.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "errmsg.h"

extern char **environ;

static const char *side(const char *path)
{
    return path && access(path, R_OK) == 0 ? path : "/dev/null";
}

/* Copy what fd delivers into out, line by line, each behind prefix. */
static void copy_lines(int fd, FILE *out, const char *prefix)
{
    FILE *in = fdopen(fd, "r");
    char line[4096];
    bool at_start = true;
    if (!in) {
        close(fd);
        return;
    }
    while (fgets(line, sizeof(line), in)) {
        if (at_start)
            fputs(prefix, out);
        fputs(line, out);
        at_start = strchr(line, '\n') != NULL; /* a longer line goes on */
    }
    if (!at_start)
        fputc('\n', out);
    fclose(in);
}

/* diff's message on stderr (its first line, for err). */
static void read_message(int fd, char *buf, size_t len)
{
    size_t n = 0;
    ssize_t r;
    while (n + 1 < len && (r = read(fd, buf + n, len - n - 1)) != 0) {
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
    char sink[512]; /* the rest, so diff never blocks on a full pipe */
    while ((r = read(fd, sink, sizeof(sink))) > 0 || (r < 0 && errno == EINTR))
        ;
    close(fd);
}

/* posix_spawnp diff with stdout to out_fd (-1: ours) and stderr to
 * err_fd. 0 with *pid, or a positive errno. */
static int spawn_diff(char *const argv[], int out_fd, int err_fd, pid_t *pid)
{
    posix_spawn_file_actions_t fa;
    int rc = posix_spawn_file_actions_init(&fa);
    if (rc)
        return rc;
    if (out_fd >= 0)
        rc = posix_spawn_file_actions_adddup2(&fa, out_fd, STDOUT_FILENO);
    if (!rc)
        rc = posix_spawn_file_actions_adddup2(&fa, err_fd, STDERR_FILENO);
    if (!rc)
        rc = posix_spawnp(pid, "diff", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    return rc;
}

int file_diff_unified(const char *a, const char *b, const struct file_diff_opts *o, char *err,
                      size_t errlen)
{
    const char *argv[9];
    size_t n = 0;
    int out[2] = {-1, -1}, errp[2] = {-1, -1}, rc, status;
    char msg[512];
    pid_t pid;
    argv[n++] = "diff";
    argv[n++] = "-u";
    if (o->label_a && o->label_b) {
        argv[n++] = "--label";
        argv[n++] = o->label_a;
        argv[n++] = "--label";
        argv[n++] = o->label_b;
    }
    argv[n++] = side(a);
    argv[n++] = side(b);
    argv[n] = NULL;
    if ((o->out && pipe2(out, O_CLOEXEC) < 0) || pipe2(errp, O_CLOEXEC) < 0) {
        rc = -errno;
        errmsg_set(err, errlen, "diff: cannot make a pipe: %s", strerror(-rc));
        goto out;
    }
    if (!o->out)
        fflush(stdout); /* what we printed comes before diff's output */
    if ((rc = spawn_diff((char *const *)argv, out[1], errp[1], &pid)) != 0) {
        if (rc == ENOENT)
            errmsg_set(err, errlen, "diff: not found in PATH (install diffutils)");
        else
            errmsg_set(err, errlen, "diff: cannot start it: %s", strerror(rc));
        rc = -rc;
        goto out;
    }
    close(errp[1]);
    errp[1] = -1;
    if (o->out) {
        close(out[1]);
        out[1] = -1;
        copy_lines(out[0], o->out, o->prefix ? o->prefix : "");
        out[0] = -1;
    }
    read_message(errp[0], msg, sizeof(msg));
    errp[0] = -1;
    while ((rc = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
        ;
    if (rc < 0) {
        rc = -errno;
        errmsg_set(err, errlen, "diff -u %s %s: %s", argv[n - 2], argv[n - 1], strerror(-rc));
    } else if (WIFEXITED(status) && WEXITSTATUS(status) <= 1) {
        rc = WEXITSTATUS(status);
    } else {
        rc = -EIO;
        errmsg_set(err, errlen, "diff -u %s %s: %s", argv[n - 2], argv[n - 1],
                   msg[0]              ? msg
                   : WIFEXITED(status) ? "failed (exit 2)"
                                       : "killed by a signal");
    }
out:
    for (int i = 0; i < 2; i++) {
        if (out[i] >= 0)
            close(out[i]);
        if (errp[i] >= 0)
            close(errp[i]);
    }
    return rc;
}
