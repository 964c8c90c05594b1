/* SPDX-License-Identifier: Apache-2.0 */
/*
 * render: check-then-install of HAProxy configuration files (see render.h).
 */
#include "render.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "atomic_file.h"
#include "errmsg.h"
#include "log.h"
#include "str_affix.h"

extern char **environ;

int render_load_templates(const char *dir, struct template_set **out, char *err, size_t errlen)
{
    struct template_options to;
    struct template_set *set = NULL;
    struct template_error terr;
    char msg[512];
    int rc;

    template_options_init(&to);
    to.strict_variables = true;
    if ((rc = template_set_new(&to, &set)) < 0) {
        errmsg_set(err, errlen, "templates %s: %s", dir, strerror(-rc));
        return rc;
    }
    if ((rc = template_set_load_dir(set, dir, &terr)) < 0 ||
        (rc = template_set_check(set, &terr)) < 0) {
        errmsg_set(err, errlen, "templates %s: %s", dir,
                   template_error_format(&terr, msg, sizeof(msg)));
        template_set_free(set);
        return rc;
    }
    *out = set;
    return 0;
}

int render_text(const struct template_set *set, const char *name, const json_t *data,
                struct template_buf *out, char *err, size_t errlen)
{
    struct template_error terr;
    char msg[512];
    if (!template_set_has(set, name)) {
        errmsg_set(err, errlen, "template '%s' does not exist in the template directory", name);
        return -ENOENT;
    }
    int rc = template_render(set, name, data, out, &terr);
    if (rc < 0)
        errmsg_set(err, errlen, "%s", template_error_format(&terr, msg, sizeof(msg)));
    return rc;
}

int render_read_file(const char *path, char **out, size_t *len)
{
    FILE *f = fopen(path, "re");
    char *buf = NULL;
    size_t cap = 0, n = 0;
    if (!f)
        return -errno;
    for (;;) {
        if (cap - n < 65536) {
            char *p = realloc(buf, cap + 65536 + 1);
            if (!p) {
                free(buf);
                fclose(f);
                return -ENOMEM;
            }
            buf = p;
            cap += 65536;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return -EIO;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

int render_check_file(const char *haproxy_bin, const char *path, char *err, size_t errlen)
{
    char *argv[] = {(char *)haproxy_bin, "-c", "-f", (char *)path, NULL};
    return render_run_checker(argv, err, errlen);
}

int render_run_checker(char *const argv[], char *err, size_t errlen)
{
    int pipefd[2];
    pid_t pid;
    posix_spawn_file_actions_t fa;
    char what[512];
    size_t w = 0;
    char out[4096];
    size_t n = 0;
    int status, rc;

    if (pipe2(pipefd, O_CLOEXEC) < 0)
        return -errno;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
    /* the command as it would be typed, for messages */
    what[0] = '\0';
    for (size_t i = 0; argv[i] && w < sizeof(what); i++) {
        int k = snprintf(what + w, sizeof(what) - w, "%s%s", i ? " " : "", argv[i]);
        if (k < 0)
            break;
        w += (size_t)k;
    }
    rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(pipefd[1]);
    if (rc != 0) {
        close(pipefd[0]);
        errmsg_set(err, errlen, "%s: cannot run: %s", what, strerror(rc));
        return -rc;
    }
    for (;;) {
        char tmp[4096];
        ssize_t r = read(pipefd[0], tmp, sizeof(tmp));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        size_t take = (size_t)r < sizeof(out) - 1 - n ? (size_t)r : sizeof(out) - 1 - n;
        memcpy(out + n, tmp, take);
        n += take;
    }
    out[n] = '\0';
    close(pipefd[0]);
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR)
            return -errno;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    /* keep the alert lines, on one line */
    for (char *p = out; *p; p++)
        if (*p == '\n')
            *p = ' ';
    errmsg_set(err, errlen, "%s refused it (exit %d): %.1500s", what,
               WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), out);
    return -EINVAL;
}

/* The file haproxy -c reads: thrown away either way, so no fsync. */
static int write_staged(const char *path, const char *text, size_t len)
{
    FILE *f = fopen(path, "we");
    int rc = 0;
    if (!f)
        return -errno;
    if (fwrite(text, 1, len, f) != len)
        rc = -EIO;
    if (fclose(f) != 0 && rc == 0)
        rc = -errno;
    return rc;
}

int render_install(const char *haproxy_bin, const char *config_dir, const char *name,
                   const char *text, size_t len, bool *changed, char *err, size_t errlen)
{
    char target[PATH_MAX], prev[PATH_MAX], tmpdir[64], staged[PATH_MAX];
    char *old = NULL;
    size_t old_len = 0;
    int rc;

    *changed = false;
    if (len == 0) {
        errmsg_set(err, errlen, "service %s: rendered configuration is empty; not installed", name);
        return -ENODATA;
    }
    snprintf(target, sizeof(target), "%s/%s.cfg", config_dir, name);
    snprintf(prev, sizeof(prev), "%s/%s.cfg.prev", config_dir, name);
    rc = render_read_file(target, &old, &old_len);
    if (rc == 0 && old_len == len && memcmp(old, text, len) == 0) {
        free(old);
        return 0;
    }
    snprintf(tmpdir, sizeof(tmpdir), "%s/%s%ld.XXXXXX", RENDER_STAGING_DIR, RENDER_STAGING_PREFIX,
             (long)getpid());
    if (!mkdtemp(tmpdir)) {
        rc = -errno;
        errmsg_set(err, errlen, "service %s: cannot create a staging directory %s: %s", name,
                   tmpdir, strerror(errno));
        free(old);
        return rc;
    }
    snprintf(staged, sizeof(staged), "%s/%s.cfg", tmpdir, name);
    if ((rc = write_staged(staged, text, len)) < 0) {
        errmsg_set(err, errlen, "service %s: cannot write %s: %s", name, staged, strerror(-rc));
        goto out;
    }
    if ((rc = render_check_file(haproxy_bin, staged, err, errlen)) < 0)
        goto out;
    if (old && (rc = atomic_file_write(prev, old, old_len, 0644)) < 0) {
        errmsg_set(err, errlen, "service %s: cannot keep the previous config in %s: %s", name, prev,
                   strerror(-rc));
        goto out;
    }
    if ((rc = atomic_file_write(target, text, len, 0644)) < 0) {
        errmsg_set(err, errlen, "service %s: cannot install %s: %s", name, target, strerror(-rc));
        goto out;
    }
    *changed = true;
out:
    unlink(staged);
    rmdir(tmpdir);
    free(old);
    return rc;
}

/* The pid in a staging directory's name ("drover-render.<pid>.XXXXXX"),
 * or 0 when the name is not one. */
static long staging_pid(const char *name)
{
    size_t k = strlen(RENDER_STAGING_PREFIX);
    char *end;

    if (!str_has_prefix(name, RENDER_STAGING_PREFIX) || name[k] < '1' || name[k] > '9')
        return 0;
    errno = 0;
    long pid = strtol(name + k, &end, 10);
    if (errno || pid <= 0 || pid > INT_MAX || *end != '.' || strlen(end + 1) != 6)
        return 0;
    return pid;
}

/* Whether process pid exists (EPERM: it does, owned by someone else). */
static bool pid_alive(long pid)
{
    return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

/* Remove staging directory name in dirfd and the files in it (the checks
 * write only files there). 0 or negative errno. */
static int remove_staging(int dfd, const char *name)
{
    int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *dh = fd < 0 ? NULL : fdopendir(fd);
    struct dirent *de;
    int rc = 0;

    if (!dh) {
        rc = -errno;
        if (fd >= 0)
            close(fd);
        return rc;
    }
    while ((de = readdir(dh)))
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0 &&
            unlinkat(fd, de->d_name, 0) < 0 && rc == 0)
            rc = -errno;
    closedir(dh);
    if (unlinkat(dfd, name, AT_REMOVEDIR) < 0 && rc == 0)
        rc = -errno;
    return rc;
}

int render_sweep_staging(const char *dir, bool ours_too)
{
    DIR *dh = opendir(dir);
    struct dirent *de;
    int removed = 0, rc;

    if (!dh)
        return -errno;
    while ((de = readdir(dh))) {
        long pid = staging_pid(de->d_name);
        if (!pid || (pid == (long)getpid() ? !ours_too : pid_alive(pid)))
            continue;
        if ((rc = remove_staging(dirfd(dh), de->d_name)) < 0)
            log_warn("watcher: cannot remove %s/%s, left by a stopped check: %s; tried again at "
                     "the next start",
                     dir, de->d_name, strerror(-rc));
        else
            removed++;
    }
    closedir(dh);
    return removed;
}

int render_rollback(const char *config_dir, const char *name, char *err, size_t errlen)
{
    char target[PATH_MAX], prev[PATH_MAX];
    char *old = NULL;
    size_t len = 0;
    int rc;
    snprintf(target, sizeof(target), "%s/%s.cfg", config_dir, name);
    snprintf(prev, sizeof(prev), "%s/%s.cfg.prev", config_dir, name);
    if ((rc = render_read_file(prev, &old, &len)) < 0) {
        errmsg_set(err, errlen, "service %s: no previous config %s to roll back to: %s", name, prev,
                   strerror(-rc));
        return rc;
    }
    rc = atomic_file_write(target, old, len, 0644);
    if (rc < 0)
        errmsg_set(err, errlen, "service %s: cannot restore %s: %s", name, target, strerror(-rc));
    free(old);
    return rc;
}

int render_retire(const char *config_dir, const char *name, char *err, size_t errlen)
{
    char target[PATH_MAX], aside[PATH_MAX];
    int rc = 0, fd;
    snprintf(target, sizeof(target), "%s/%s.cfg", config_dir, name);
    snprintf(aside, sizeof(aside), "%s/%s.cfg.removed", config_dir, name);
    if (rename(target, aside) < 0) {
        rc = -errno;
        errmsg_set(err, errlen, "service %s: cannot move %s to %s: %s", name, target, aside,
                   strerror(-rc));
        return rc;
    }
    /* the rename must survive a crash: a config that comes back on boot
     * would serve a service that was removed */
    if ((fd = open(config_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 || fsync(fd) < 0) {
        rc = -errno;
        errmsg_set(err, errlen, "service %s: %s moved, but syncing %s failed: %s", name, target,
                   config_dir, strerror(-rc));
    }
    if (fd >= 0)
        close(fd);
    return rc;
}

bool render_config_exists(int dfd, const char *name)
{
    char file[NAME_MAX + 1];
    struct stat st;
    int n = snprintf(file, sizeof(file), "%s.cfg", name);
    if (n < 0 || (size_t)n >= sizeof(file))
        return true; /* cannot tell: keep what it may name */
    return fstatat(dfd, file, &st, AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT;
}

/* ---- asynchronous install ---- */

/* render_install on libuv's threadpool: the check (posix_spawn of
 * `haproxy -c`, then waiting for it) and the durable writes of the install
 * (four fsyncs) block only a pool thread. uv_spawn on the loop waited
 * there until the child had exec'd, which took up to ~170 ms on a busy
 * machine, and the writes tens of ms: every runtime apply waited too. */
struct render_job {
    uv_work_t work;
    char *config_dir, *name, *text, *haproxy_bin;
    size_t len;
    render_install_cb cb;
    void *arg;
    int status;
    bool changed;
    char err[2048];
};

static void job_free(struct render_job *j)
{
    free(j->config_dir);
    free(j->name);
    free(j->text);
    free(j->haproxy_bin);
    free(j);
}

static void job_run(uv_work_t *req)
{
    struct render_job *j = req->data;
    j->status = render_install(j->haproxy_bin, j->config_dir, j->name, j->text, j->len, &j->changed,
                               j->err, sizeof(j->err));
}

static void job_done(uv_work_t *req, int status)
{
    struct render_job *j = req->data;
    if (status < 0) { /* cancelled before it ran: nothing was written */
        errmsg_set(j->err, sizeof(j->err), "service %s: config check cancelled: %s", j->name,
                   uv_strerror(status));
        j->status = status;
        j->changed = false;
    }
    j->cb(j->arg, j->status, j->changed, j->status < 0 ? j->err : NULL);
    job_free(j);
}

int render_install_async(uv_loop_t *loop, const char *haproxy_bin, const char *config_dir,
                         const char *name, const char *text, size_t len, render_install_cb cb,
                         void *arg)
{
    struct render_job *j = calloc(1, sizeof(*j));
    int rc;

    if (!j)
        return -ENOMEM;
    j->cb = cb;
    j->arg = arg;
    j->len = len;
    j->work.data = j;
    if (!(j->config_dir = strdup(config_dir)) || !(j->name = strdup(name)) ||
        !(j->haproxy_bin = strdup(haproxy_bin)) || !(j->text = malloc(len + 1))) {
        job_free(j);
        return -ENOMEM;
    }
    memcpy(j->text, text, len);
    j->text[len] = '\0';
    if ((rc = uv_queue_work(loop, &j->work, job_run, job_done)) < 0) {
        job_free(j);
        return rc;
    }
    return 0;
}
