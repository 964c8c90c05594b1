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
#include <uv.h>

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

/* ---- asynchronous install ---- */

struct render_job {
    uv_process_t proc;
    uv_pipe_t out;
    int pending_handles;
    char *config_dir, *name, *text, *staged, *tmpdir, *old, *haproxy_bin;
    size_t len, old_len;
    char output[4096];
    size_t output_len;
    int64_t exit_status;
    int term_signal;
    bool exited, eof;
    render_install_cb cb;
    void *arg;
    uv_timer_t later; /* for answers decided before spawning */
    int early_status;
    uv_work_t install; /* the checked file written into place, off the loop */
    int install_status;
    char err[2048];
};

static void job_free(struct render_job *j)
{
    if (j->staged)
        unlink(j->staged);
    if (j->tmpdir)
        rmdir(j->tmpdir);
    free(j->config_dir);
    free(j->name);
    free(j->text);
    free(j->staged);
    free(j->tmpdir);
    free(j->old);
    free(j->haproxy_bin);
    free(j);
}

static void job_handle_closed(uv_handle_t *h)
{
    struct render_job *j = h->data;
    if (--j->pending_handles == 0)
        job_free(j);
}

static void job_close(struct render_job *j)
{
    j->pending_handles = 0;
    if (!uv_is_closing((uv_handle_t *)&j->out) && j->out.loop) {
        j->pending_handles++;
        uv_close((uv_handle_t *)&j->out, job_handle_closed);
    }
    if (j->proc.loop && !uv_is_closing((uv_handle_t *)&j->proc)) {
        j->pending_handles++;
        uv_close((uv_handle_t *)&j->proc, job_handle_closed);
    }
    if (j->later.loop && !uv_is_closing((uv_handle_t *)&j->later)) {
        j->pending_handles++;
        uv_close((uv_handle_t *)&j->later, job_handle_closed);
    }
    if (j->pending_handles == 0)
        job_free(j);
}

/* On the threadpool: `.prev` kept, the checked text installed, each
 * durable (atomic_file_write: four fsyncs, tens of ms on a busy disk that
 * the loop must not wait for). Only this job touches j meanwhile. */
static void job_install(uv_work_t *req)
{
    struct render_job *j = req->data;
    char target[PATH_MAX], prev[PATH_MAX];
    int rc;

    snprintf(target, sizeof(target), "%s/%s.cfg", j->config_dir, j->name);
    snprintf(prev, sizeof(prev), "%s/%s.cfg.prev", j->config_dir, j->name);
    if (j->old && (rc = atomic_file_write(prev, j->old, j->old_len, 0644)) < 0) {
        errmsg_set(j->err, sizeof(j->err), "service %s: cannot keep the previous config in %s: %s",
                   j->name, prev, strerror(-rc));
    } else if ((rc = atomic_file_write(target, j->text, j->len, 0644)) < 0) {
        errmsg_set(j->err, sizeof(j->err), "service %s: cannot install %s: %s", j->name, target,
                   strerror(-rc));
    }
    j->install_status = rc;
}

static void job_installed(uv_work_t *req, int status)
{
    struct render_job *j = req->data;
    int rc = status < 0 ? status : j->install_status;
    if (status < 0)
        errmsg_set(j->err, sizeof(j->err), "service %s: config install cancelled: %s", j->name,
                   uv_strerror(status));
    j->cb(j->arg, rc, rc == 0, rc < 0 ? j->err : NULL);
    job_close(j);
}

/* Both the exit status and the end of the output are in: decide. */
static void job_finish(struct render_job *j)
{
    int rc;

    if (!j->exited || !j->eof)
        return;
    j->output[j->output_len] = '\0';
    if (j->exit_status != 0 || j->term_signal) {
        for (char *p = j->output; *p; p++)
            if (*p == '\n')
                *p = ' ';
        errmsg_set(j->err, sizeof(j->err), "haproxy -c -f %s refused it (exit %d): %.1500s",
                   j->staged, j->term_signal ? 128 + j->term_signal : (int)j->exit_status,
                   j->output);
        j->cb(j->arg, -EINVAL, false, j->err);
        job_close(j);
        return;
    }
    j->install.data = j;
    if ((rc = uv_queue_work(j->proc.loop, &j->install, job_install, job_installed)) < 0) {
        job_install(&j->install); /* cannot happen with a valid loop: write here */
        job_installed(&j->install, 0);
    }
}

static void job_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char sink[4096];
    struct render_job *j = h->data;
    (void)suggested;
    size_t room = sizeof(j->output) - 1 - j->output_len;
    if (room == 0) { /* keep reading (and dropping) so the child never blocks */
        *buf = uv_buf_init(sink, sizeof(sink));
        return;
    }
    *buf = uv_buf_init(j->output + j->output_len, (unsigned)room);
}

static void job_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct render_job *j = s->data;
    if (n > 0 && buf->base == j->output + j->output_len)
        j->output_len += (size_t)n;
    if (n < 0) {
        uv_read_stop(s);
        j->eof = true;
        job_finish(j);
    }
}

static void job_exit(uv_process_t *p, int64_t status, int sig)
{
    struct render_job *j = p->data;
    j->exit_status = status;
    j->term_signal = sig;
    j->exited = true;
    job_finish(j);
}

static void job_early(uv_timer_t *t)
{
    struct render_job *j = t->data;
    j->cb(j->arg, j->early_status, false, j->early_status < 0 ? j->err : NULL);
    job_close(j);
}

int render_install_async(uv_loop_t *loop, const char *haproxy_bin, const char *config_dir,
                         const char *name, const char *text, size_t len, render_install_cb cb,
                         void *arg)
{
    struct render_job *j = calloc(1, sizeof(*j));
    char target[PATH_MAX], tmpl[] = "/tmp/drover-render.XXXXXX";
    int rc;

    if (!j)
        return -ENOMEM;
    j->cb = cb;
    j->arg = arg;
    j->len = len;
    j->proc.data = j->out.data = j->later.data = j;
    if (!(j->config_dir = strdup(config_dir)) || !(j->name = strdup(name)) ||
        !(j->haproxy_bin = strdup(haproxy_bin)) || !(j->text = malloc(len + 1))) {
        job_free(j);
        return -ENOMEM;
    }
    memcpy(j->text, text, len);
    j->text[len] = '\0';
    if ((rc = uv_timer_init(loop, &j->later)) < 0) {
        job_free(j);
        return rc;
    }
    snprintf(target, sizeof(target), "%s/%s.cfg", config_dir, name);
    if (len == 0) {
        errmsg_set(j->err, sizeof(j->err),
                   "service %s: rendered configuration is empty; not installed", name);
        j->early_status = -ENODATA;
        goto early;
    }
    if (render_read_file(target, &j->old, &j->old_len) == 0 && j->old_len == len &&
        memcmp(j->old, text, len) == 0) {
        j->early_status = 0; /* unchanged */
        goto early;
    }
    if (!mkdtemp(tmpl) || !(j->tmpdir = strdup(tmpl)) ||
        asprintf(&j->staged, "%s/%s.cfg", tmpl, name) < 0) {
        j->staged = NULL;
        errmsg_set(j->err, sizeof(j->err), "service %s: cannot create a staging file: %s", name,
                   strerror(errno));
        j->early_status = -EIO;
        goto early;
    }
    /* staging needs no fsync: it is thrown away either way */
    FILE *f = fopen(j->staged, "we");
    if (!f || fwrite(text, 1, len, f) != len || fclose(f) != 0) {
        if (f)
            fclose(f);
        errmsg_set(j->err, sizeof(j->err), "service %s: cannot write %s", name, j->staged);
        j->early_status = -EIO;
        goto early;
    }
    if ((rc = uv_pipe_init(loop, &j->out, 0)) < 0)
        goto fail_spawn;
    char *argv[] = {j->haproxy_bin, "-c", "-f", j->staged, NULL};
    /* HAProxy writes its alerts to stderr; stdout only says "valid" */
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_IGNORE},
        {.flags = UV_IGNORE},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&j->out},
    };
    uv_process_options_t po = {
        .exit_cb = job_exit,
        .file = j->haproxy_bin,
        .args = argv,
        .stdio_count = 3,
        .stdio = stdio,
    };
    if ((rc = uv_spawn(loop, &j->proc, &po)) < 0)
        goto fail_spawn;
    if ((rc = uv_read_start((uv_stream_t *)&j->out, job_alloc, job_read)) < 0) {
        j->eof = true; /* the exit callback still comes */
    }
    return 0;
fail_spawn:
    errmsg_set(j->err, sizeof(j->err), "%s -c -f %s: cannot run: %s", haproxy_bin, j->staged,
               uv_strerror(rc));
    j->early_status = rc;
early:
    uv_timer_start(&j->later, job_early, 0, 0);
    return 0;
}
