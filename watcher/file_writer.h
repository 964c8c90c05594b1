/* SPDX-License-Identifier: Apache-2.0 */
/*
 * file_writer: durable file writes (atomic_file_write: temp file, fsync,
 * rename, directory fsync) off the libuv loop, on its threadpool. An fsync
 * costs milliseconds (tens under I/O load); the watcher's loop must not
 * stall on one while a route or server change waits to reach HAProxy.
 *
 * Writes run one batch at a time, in the order queued; a write queued for
 * a path that already waits replaces the waiting content (only the newest
 * content of a file matters), so a path is never written out of order.
 * A path the loop also writes (atomic_file_replace: rename without fsync,
 * to be visible at once) must only be synced here (file_writer_sync), never written.
 * Failures are logged with the path and counted; the caller queues the
 * file again with its next change. Contents are copied: the caller keeps
 * its buffer.
 */
#ifndef DROVER_WATCHER_FILE_WRITER_H
#define DROVER_WATCHER_FILE_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

struct file_writer;

/* 0 or -ENOMEM. */
int file_writer_new(uv_loop_t *loop, struct file_writer **out);

/* Queue len bytes of data for path (copied). 0 or -ENOMEM (nothing
 * queued). */
int file_writer_write(struct file_writer *w, const char *path, const void *data, size_t len,
                      mode_t mode);

/* Called on the loop once the content queued with it, or a newer content
 * of the same path that replaced it while it waited, is written (status 0)
 * or failed (negative errno). */
typedef void (*file_writer_done_fn)(void *arg, int status);

/* file_writer_write, and done(arg, status) once written: for a caller that
 * must not go on before the file is in place (a reload reads it). done
 * runs exactly once unless file_writer_cancel(w, arg) ran first or w is
 * closed first (file_writer_close drops the callbacks still waiting). 0 or
 * -ENOMEM (nothing queued, done not called). */
int file_writer_write_then(struct file_writer *w, const char *path, const void *data, size_t len,
                           mode_t mode, file_writer_done_fn done, void *arg);

/* Like file_writer_write_then, but the file is renamed into place without
 * any fsync: visible to readers at once, whole, not yet durable (a file
 * the watcher rewrites after a restart anyway, made durable later with
 * file_writer_sync). */
int file_writer_replace_then(struct file_writer *w, const char *path, const void *data, size_t len,
                             mode_t mode, file_writer_done_fn done, void *arg);

/* Forget every callback with this arg (its owner goes away); the writes
 * themselves still happen. */
void file_writer_cancel(struct file_writer *w, void *arg);

/* Queue an fsync of path as it is (and of its directory): for files the
 * loop renames into place without fsync, to be visible at once. Never
 * writes content, so it cannot put an older content back. 0 or -ENOMEM. */
int file_writer_sync(struct file_writer *w, const char *path);

/* Remove path now, in the caller's thread, and queue the fsync of its
 * directory that makes the removal durable. For a path the loop owns (it
 * writes the content; see file_writer_sync): a write of it still queued
 * is dropped first, so it cannot put the file back after the removal (its
 * callbacks are told -ECANCELED), and a sync of it in flight is not
 * counted as failed for finding it gone. A write queued later takes the
 * removal's place as usual. 0; a negative errno from unlink (the file
 * stays; ENOENT is no error) or -ENOMEM (removed, not made durable). */
int file_writer_remove(struct file_writer *w, const char *path);

/* Nothing queued or being written. */
bool file_writer_idle(const struct file_writer *w);

/* Write failures so far. */
uint64_t file_writer_failures(const struct file_writer *w);

/* Write what is queued synchronously, then free w once the batch in
 * flight (if any) is done: the loop must run until then. Callbacks still
 * waiting are not called: their owners cancel or stop first. NULL ok. */
void file_writer_close(struct file_writer *w);

#endif
