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
 * A path the loop also writes (rename without fsync, to be visible at
 * once) must only be synced here (file_writer_sync), never written.
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

/* Queue an fsync of path as it is (and of its directory): for files the
 * loop renames into place without fsync, to be visible at once. Never
 * writes content, so it cannot put an older content back. 0 or -ENOMEM. */
int file_writer_sync(struct file_writer *w, const char *path);

/* Nothing queued or being written. */
bool file_writer_idle(const struct file_writer *w);

/* Write failures so far. */
uint64_t file_writer_failures(const struct file_writer *w);

/* Write what is queued synchronously, then free w once the batch in
 * flight (if any) is done: the loop must run until then. NULL ok. */
void file_writer_close(struct file_writer *w);

#endif
