/* SPDX-License-Identifier: Apache-2.0 */
/*
 * atomic_file: replace a file so that readers (HAProxy, the agent-checker,
 * a restarted watcher) only ever see the complete old or the complete new
 * content, even if we crash or lose power half-way:
 *
 *   write to ".<name>.tmp.<pid>.<random>" in the same directory (O_EXCL),
 *   fsync it, rename() over the target, fsync the directory.
 *
 * On any failure the temp file is removed and the old file is untouched.
 * A process killed mid-write can leave a hidden temp file behind; its name
 * never matches the target or a "*.<ext>" glob of the target's extension,
 * and atomic_file_remove_stale() deletes those of dead processes.
 */
#ifndef DROVER_ATOMIC_FILE_H
#define DROVER_ATOMIC_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* 0 or negative errno (-ENOENT for a missing directory, -ENOSPC, ...).
 * mode is applied to the new file (not subject to the umask). */
int atomic_file_write(const char *path, const void *data, size_t len, mode_t mode);

/* The same replacement without either fsync: readers see the whole old
 * or the whole new content at once, but a crash may lose the new one (for
 * a file rewritten after a restart anyway, made durable later by an fsync
 * of the file and its directory). 0 or negative errno (path untouched). */
int atomic_file_replace(const char *path, const void *data, size_t len, mode_t mode);

/* Remove temp files atomic_file_write left next to path when its process
 * died (the pid in the name no longer exists). Returns how many were
 * removed, or negative errno if the directory cannot be read. */
int atomic_file_remove_stale(const char *path);

/* Whether a directory entry's name is one of the temp names written
 * here, with the name of its target (copied into target) and the pid of
 * its writer. Also accepts "<target>.tmp.<pid>", the name drover-watcher's
 * file writer used before (a temp left behind across an upgrade). */
bool atomic_file_temp_name(const char *name, char *target, size_t target_len, long *pid);

/* Whether a temp file of this target (a name in the directory) is the
 * sweeper's to remove. */
typedef bool (*atomic_file_target_fn)(const char *target, void *arg);

/* Remove from dir every temp file (atomic_file_temp_name) of a target
 * want accepts whose writer is gone: its pid no longer exists, or is ours
 * and ours_too (a daemon's start-up sweep, before it writes anything: a
 * restarted container reuses pids). A temp of a live process other than
 * us is kept: it may be mid-write. Returns how many were removed, or a
 * negative errno if dir cannot be read. */
int atomic_file_sweep(const char *dir, atomic_file_target_fn want, void *arg, bool ours_too);

/* Create directory dir and every missing parent (like `mkdir -p`), new
 * directories with mode (subject to the umask). 0 when dir exists or was
 * made, else negative errno (-ENOTDIR when a component is a file). */
int atomic_file_make_dirs(const char *dir, mode_t mode);

/* atomic_file_make_dirs() on the directory part of path; 0 when path has
 * none ("state.json"). */
int atomic_file_make_parent_dirs(const char *path, mode_t mode);

/* Test hook: called at each step of atomic_file_write with a stage name
 * ("open", "write" after every chunk, "fsync", "rename", "dirsync") so a
 * test can kill the process there. NULL (default) = no hook. */
typedef void (*atomic_file_hook_fn)(const char *stage, size_t written);
void atomic_file_set_test_hook(atomic_file_hook_fn hook);

#endif
