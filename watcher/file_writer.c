/* SPDX-License-Identifier: Apache-2.0 */
/*
 * file_writer: durable writes on the libuv threadpool (file_writer.h).
 */
#include "file_writer.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomic_file.h"
#include "log.h"

struct fw_waiter {
    file_writer_done_fn done; /* NULL once cancelled */
    void *arg;
};

struct fw_file {
    char *path;
    void *data; /* NULL: make the file as it is durable (fsync) */
    size_t len;
    mode_t mode;
    bool visible_only; /* renamed into place without fsync */
    bool removal;      /* data NULL: only the directory (the path was removed) */
    /* set by the loop when it removes the path while this sync is in
     * flight: the worker then does not count a missing file as failure */
    atomic_bool gone;
    int rc; /* set by the worker */
    /* the loop's only (the worker never reads them): called when done */
    struct fw_waiter *waiters;
    size_t n_waiters;
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
        free(b->v[i].waiters);
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

/* The file and its directory entry durable, whatever content it has now.
 * A missing file is a removal to make durable (its directory) when f is
 * one, or when the loop removed the path while this sync ran: `gone` is
 * read after the open failed, because the loop sets it before it unlinks
 * (read before the open, an unlink in between counted as a failure). */
static int sync_file(const struct fw_file *f)
{
    char dir[PATH_MAX];
    const char *path = f->path;
    int rc = fsync_path(path, O_RDONLY);
    if (rc == -ENOENT && (f->removal || atomic_load(&f->gone)))
        rc = 0;
    snprintf(dir, sizeof(dir), "%s", path);
    return rc < 0 ? rc : fsync_path(dirname(dir), O_RDONLY | O_DIRECTORY);
}

static void write_batch(struct fw_batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        struct fw_file *f = &b->v[i];
        if (!f->data)
            f->rc = sync_file(f);
        else if (f->visible_only)
            f->rc = atomic_file_replace(f->path, f->data, f->len, f->mode);
        else
            f->rc = atomic_file_write(f->path, f->data, f->len, f->mode);
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

/* The batch's callbacks, once it is no longer the writer's: a callback
 * may queue the next write. */
static void call_waiters(struct fw_batch *b)
{
    for (size_t i = 0; i < b->n; i++)
        for (size_t k = 0; k < b->v[i].n_waiters; k++)
            if (b->v[i].waiters[k].done)
                b->v[i].waiters[k].done(b->v[i].waiters[k].arg,
                                        b->v[i].removal ? -ECANCELED : b->v[i].rc);
}

static void after_work(uv_work_t *req, int status)
{
    struct file_writer *w = req->data;
    struct fw_batch done = w->inflight;
    (void)status;
    report(w, &done);
    w->inflight = (struct fw_batch){0};
    w->busy = false;
    if (w->closing) {
        batch_free(&done); /* callbacks dropped: see file_writer_close */
        flush_and_free(w);
        return;
    }
    call_waiters(&done);
    batch_free(&done);
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
        struct fw_batch done = w->inflight;
        w->inflight = (struct fw_batch){0};
        write_batch(&done);
        report(w, &done);
        w->busy = false;
        call_waiters(&done);
        batch_free(&done);
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

/* Add a callback to f (done may be NULL: nothing to add). */
static int add_waiter(struct fw_file *f, file_writer_done_fn done, void *arg)
{
    if (!done)
        return 0;
    struct fw_waiter *v = realloc(f->waiters, (f->n_waiters + 1) * sizeof(*v));
    if (!v)
        return -ENOMEM;
    f->waiters = v;
    v[f->n_waiters++] = (struct fw_waiter){done, arg};
    return 0;
}

/* removal: data NULL, the sync of a removed path (see file_writer_remove). */
static int enqueue(struct file_writer *w, const char *path, const void *data, size_t len,
                   mode_t mode, bool visible_only, bool removal, file_writer_done_fn done,
                   void *arg)
{
    struct fw_file f = {.mode = mode, .visible_only = visible_only, .removal = removal};
    if (!(f.path = strdup(path)) || (data && !(f.data = malloc(len ? len : 1)))) {
        free(f.path);
        return -ENOMEM;
    }
    if (data)
        memcpy(f.data, data, len);
    f.len = len;
    for (size_t i = 0; i < w->queued.n; i++) {
        struct fw_file *q = &w->queued.v[i];
        if (strcmp(q->path, path) != 0)
            continue;
        if (!data && (q->data || q->removal)) { /* the waiting write syncs too */
            free(f.path);
            return 0;
        }
        if (add_waiter(q, done, arg) < 0) {
            free(f.path);
            free(f.data);
            return -ENOMEM;
        }
        /* the newer content takes the older one's place and its callbacks */
        free(q->path);
        free(q->data);
        q->path = f.path;
        q->data = f.data;
        q->len = f.len;
        q->mode = f.mode;
        q->visible_only = f.visible_only;
        q->removal = false; /* written again: a plain write from now on */
        start(w);
        return 0;
    }
    struct fw_file *v = realloc(w->queued.v, (w->queued.n + 1) * sizeof(*v));
    if (!v || add_waiter(&f, done, arg) < 0) {
        if (v)
            w->queued.v = v;
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
    return enqueue(w, path, data ? data : "", len, mode, false, false, NULL, NULL);
}

int file_writer_write_then(struct file_writer *w, const char *path, const void *data, size_t len,
                           mode_t mode, file_writer_done_fn done, void *arg)
{
    return enqueue(w, path, data ? data : "", len, mode, false, false, done, arg);
}

int file_writer_replace_then(struct file_writer *w, const char *path, const void *data, size_t len,
                             mode_t mode, file_writer_done_fn done, void *arg)
{
    return enqueue(w, path, data ? data : "", len, mode, true, false, done, arg);
}

static void cancel_in(struct fw_batch *b, void *arg)
{
    for (size_t i = 0; i < b->n; i++)
        for (size_t k = 0; k < b->v[i].n_waiters; k++)
            if (b->v[i].waiters[k].arg == arg)
                b->v[i].waiters[k].done = NULL;
}

void file_writer_cancel(struct file_writer *w, void *arg)
{
    if (!w)
        return;
    cancel_in(&w->queued, arg);
    cancel_in(&w->inflight, arg);
}

int file_writer_sync(struct file_writer *w, const char *path)
{
    return enqueue(w, path, NULL, 0, 0, false, false, NULL, NULL);
}

/* Turn the waiting entry of path into the sync of its removal: a content
 * waiting would put the file back. Its callbacks stay, told -ECANCELED. */
static bool removal_replaces(struct file_writer *w, const char *path)
{
    for (size_t i = 0; i < w->queued.n; i++) {
        struct fw_file *q = &w->queued.v[i];
        if (strcmp(q->path, path) != 0)
            continue;
        free(q->data);
        q->data = NULL;
        q->len = 0;
        q->removal = true;
        return true;
    }
    return false;
}

int file_writer_remove(struct file_writer *w, const char *path)
{
    bool queued = removal_replaces(w, path);
    for (size_t i = 0; i < w->inflight.n; i++) /* read by the worker: atomic */
        if (strcmp(w->inflight.v[i].path, path) == 0)
            atomic_store(&w->inflight.v[i].gone, true);
    if (unlink(path) < 0 && errno != ENOENT)
        return -errno;
    if (queued)
        return 0;
    return enqueue(w, path, NULL, 0, 0, false, true, NULL, NULL);
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
