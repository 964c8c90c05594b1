/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dir_lock: one process at a time owns a directory. An exclusive flock(2)
 * on a lock file inside it, taken without waiting and held until the
 * process exits (the kernel drops it then, even after kill -9, so a stale
 * lock cannot outlive its holder). The holder writes its pid into the
 * file, so a refused second process can name it. The descriptor is
 * close-on-exec: a child the holder starts (haproxy -c, a detached
 * HAProxy) does not keep the directory locked after the holder is gone.
 */
#ifndef DROVER_DIR_LOCK_H
#define DROVER_DIR_LOCK_H

#include <stddef.h>

/* Lock "<dir>/<name>" (created 0644 when missing). 0 with *fd the lock's
 * descriptor; -EWOULDBLOCK when another process holds it (*holder its pid
 * as written in the file, or 0 when it cannot be read); another negative
 * errno when the file cannot be opened or locked. err (may be NULL) gets a
 * line naming the directory and, when known, the holder. */
int dir_lock_take(const char *dir, const char *name, int *fd, long *holder, char *err,
                  size_t errlen);

/* Release a lock dir_lock_take took (fd < 0: nothing). The file stays: a
 * process waiting to take it must find the same inode. */
void dir_lock_release(int fd);

#endif
