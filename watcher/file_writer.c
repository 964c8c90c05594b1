/* SPDX-License-Identifier: Apache-2.0 */
/*
 * file_writer: durable writes on the libuv threadpool (file_writer.h).
 */
#include "file_writer.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "atomic_file.h"
#include "log.h"

struct fw_file {
    char *path;
    void *data; /* NULL: make the file as it is durable (fsync) */
    size_t len;
    mode_t mode;
    int rc; /* set by the worker */
};

struct fw_batch {
    struct fw_file *v;
    size_t n;
};

struct file_writer {
    uv_loop_t *loop;
    struct fw_batch queued;   /* waiting, one entry per path */
    struct fw_batch inflight; /* owned by the worker while `busy` */
    uv_work_t work;
    bool busy, closing;
    uint64_t failures;
};

static void batch_free(struct fw_batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        free(b->v[i].path);
        free(b->v[i].data);
    }
    free(b->v);
    b->v = NULL;
    b->n = 0;
}

static int fsync_path(const char *path, int flags)
{
    int fd = open(path, flags | O_CLOEXEC), rc = 0;
    if (fd < 0)
        return -errno;
    if (fsync(fd) < 0)
        rc = -errno;
    close(fd);
    return rc;
}

/* The file and its directory entry durable, whatever content it has now. */
static int sync_file(const char *path)
{
    char dir[PATH_MAX];
    int rc = fsync_path(path, O_RDONLY);
    snprintf(dir, sizeof(dir), "%s", path);
    return rc < 0 ? rc : fsync_path(dirname(dir), O_RDONLY | O_DIRECTORY);
}

static void write_batch(struct fw_batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        struct fw_file *f = &b->v[i];
        f->rc = f->data ? atomic_file_write(f->path, f->data, f->len, f->mode) : sync_file(f->path);
    }
}

static void report(struct file_writer *w, const struct fw_batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        if (b->v[i].rc == 0)
            continue;
        w->failures++;
        log_error("watcher: cannot write %s: %s; written again with its next change", b->v[i].path,
                  strerror(-b->v[i].rc));
    }
}

static void on_work(uv_work_t *req)
{
    struct file_writer *w = req->data;
    write_batch(&w->inflight);
}

static void start(struct file_writer *w);
static void flush_and_free(struct file_writer *w);

static void after_work(uv_work_t *req, int status)
{
    struct file_writer *w = req->data;
    (void)status;
    report(w, &w->inflight);
    batch_free(&w->inflight);
    w->busy = false;
    if (w->closing) {
        flush_and_free(w);
        return;
    }
    start(w);
}

static void start(struct file_writer *w)
{
    if (w->busy || w->queued.n == 0)
        return;
    w->inflight = w->queued;
    w->queued = (struct fw_batch){0};
    w->busy = true;
    w->work.data = w;
    if (uv_queue_work(w->loop, &w->work, on_work, after_work) < 0) {
        /* cannot happen with a valid loop; write here rather than lose it */
        write_batch(&w->inflight);
        report(w, &w->inflight);
        batch_free(&w->inflight);
        w->busy = false;
    }
}

int file_writer_new(uv_loop_t *loop, struct file_writer **out)
{
    struct file_writer *w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    w->loop = loop;
    *out = w;
    return 0;
}

static int enqueue(struct file_writer *w, const char *path, const void *data, size_t len,
                   mode_t mode)
{
    struct fw_file f = {.mode = mode};
    if (!(f.path = strdup(path)) || (data && !(f.data = malloc(len ? len : 1)))) {
        free(f.path);
        return -ENOMEM;
    }
    if (data)
        memcpy(f.data, data, len);
    f.len = len;
    for (size_t i = 0; i < w->queued.n; i++) {
        if (strcmp(w->queued.v[i].path, path) != 0)
            continue;
        if (!data && w->queued.v[i].data) { /* the waiting write syncs too */
            free(f.path);
            return 0;
        }
        free(w->queued.v[i].path);
        free(w->queued.v[i].data);
        w->queued.v[i] = f;
        start(w);
        return 0;
    }
    struct fw_file *v = realloc(w->queued.v, (w->queued.n + 1) * sizeof(*v));
    if (!v) {
        free(f.path);
        free(f.data);
        return -ENOMEM;
    }
    w->queued.v = v;
    v[w->queued.n++] = f;
    start(w);
    return 0;
}

int file_writer_write(struct file_writer *w, const char *path, const void *data, size_t len,
                      mode_t mode)
{
    return enqueue(w, path, data ? data : "", len, mode);
}

int file_writer_sync(struct file_writer *w, const char *path)
{
    return enqueue(w, path, NULL, 0, 0);
}

bool file_writer_idle(const struct file_writer *w)
{
    return !w->busy && w->queued.n == 0;
}

uint64_t file_writer_failures(const struct file_writer *w)
{
    return w->failures;
}

/* Write what waits now, in the caller's thread (the daemon stops). */
static void flush_and_free(struct file_writer *w)
{
    write_batch(&w->queued);
    report(w, &w->queued);
    batch_free(&w->queued);
    free(w);
}

void file_writer_close(struct file_writer *w)
{
    if (!w)
        return;
    if (w->busy)
        w->closing = true; /* after_work writes the queue after the batch in flight */
    else
        flush_and_free(w);
}
