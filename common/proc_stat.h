/* SPDX-License-Identifier: Apache-2.0 */
/*
 * proc_stat: a process's run state and parent from /proc/<pid>/stat, the
 * one parser of that line (the watcher's check for a stopped HAProxy
 * worker, tests that wait for a process to sleep). The command name in
 * parentheses may hold spaces and ')', so the fields are read after the
 * last ')'.
 */
#ifndef DROVER_PROC_STAT_H
#define DROVER_PROC_STAT_H

#include <stddef.h>

/* The state letter ('R', 'S', 'T' stopped, 't' traced, ...) and the parent
 * pid of a /proc/<pid>/stat text (not NUL-terminated: len bytes). 0 or
 * -EINVAL; *state and *ppid are written only on 0. */
int proc_stat_parse(const char *text, size_t len, char *state, int *ppid);

/* proc_stat_parse() of /proc/<pid>/stat as it reads now: 0, -errno when it
 * cannot be read (-ENOENT: no such process) or -EINVAL. */
int proc_stat_read(int pid, char *state, int *ppid);

#endif
