/* SPDX-License-Identifier: Apache-2.0 */
/*
 * render: check-then-install of HAProxy configuration files (see render.h).
 */
#include "render.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "atomic_file.h"
#include "errmsg.h"

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
    int pipefd[2];
    pid_t pid;
    posix_spawn_file_actions_t fa;
    char *argv[] = {(char *)haproxy_bin, "-c", "-f", (char *)path, NULL};
    char out[4096];
    size_t n = 0;
    int status, rc;

    if (pipe2(pipefd, O_CLOEXEC) < 0)
        return -errno;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
    rc = posix_spawnp(&pid, haproxy_bin, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(pipefd[1]);
    if (rc != 0) {
        close(pipefd[0]);
        errmsg_set(err, errlen, "%s -c -f %s: cannot run: %s", haproxy_bin, path, strerror(rc));
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
    errmsg_set(err, errlen, "haproxy -c -f %s refused it (exit %d): %.1500s", path,
               WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), out);
    return -EINVAL;
}

int render_install(const char *haproxy_bin, const char *config_dir, const char *name,
                   const char *text, size_t len, bool *changed, char *err, size_t errlen)
{
    char target[PATH_MAX], prev[PATH_MAX], tmpdir[] = "/tmp/drover-render.XXXXXX", staged[PATH_MAX];
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
    if (!mkdtemp(tmpdir)) {
        rc = -errno;
        errmsg_set(err, errlen, "service %s: cannot create a staging directory: %s", name,
                   strerror(errno));
        free(old);
        return rc;
    }
    snprintf(staged, sizeof(staged), "%s/%s.cfg", tmpdir, name);
    if ((rc = atomic_file_write(staged, text, len, 0644)) < 0) {
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
