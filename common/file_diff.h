/* SPDX-License-Identifier: Apache-2.0 */
/*
 * file_diff: `diff -u` of two files, the one way drover shows an operator
 * what a change would do (`drover-watcher render --diff` prints it,
 * `droverctl config diff` copies it into its report). diff(1) from
 * diffutils is run directly (no shell: paths are passed as they are), its
 * output passed through to stdout or captured line by line, and its exit
 * status read as diff defines it: 0 same, 1 different, 2 trouble.
 */
#ifndef DROVER_FILE_DIFF_H
#define DROVER_FILE_DIFF_H

#include <stddef.h>
#include <stdio.h>

struct file_diff_opts {
    /* --label of each side (NULL: diff prints the path it was given) */
    const char *label_a, *label_b;
    /* NULL: diff writes to our stdout (flushed first). Else every line of
     * its output is copied into out, each preceded by prefix (NULL: ""). */
    FILE *out;
    const char *prefix;
};

/* `diff -u a b`; a side that is NULL or not readable is /dev/null (a new
 * or removed file). 0 when the files are the same, 1 when they differ, or
 * a negative errno with err saying why: -ENOENT when diff is not
 * installed (not in PATH), -EIO when diff failed (exit 2: its own message
 * in err), another errno when it cannot be started. */
int file_diff_unified(const char *a, const char *b, const struct file_diff_opts *o, char *err,
                      size_t errlen);

#endif
