/* SPDX-License-Identifier: Apache-2.0 */
/* proc_stat: see proc_stat.h. */
#include "proc_stat.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>

int proc_stat_parse(const char *text, size_t len, char *state, int *ppid)
{
    const char *close = NULL;
    for (size_t i = 0; i < len; i++)
        if (text[i] == ')')
            close = text + i;
    /* after the command: " S 1234 ..." (state, then the parent pid) */
    if (!close || (size_t)(text + len - close) < 5 || close[1] != ' ' || close[3] != ' ')
        return -EINVAL;
    char c = close[2];
    if (c < 'A' || c > 'z' || (c > 'Z' && c < 'a'))
        return -EINVAL;
    long v = 0;
    const char *p = close + 4, *end = text + len;
    if (p >= end || *p < '0' || *p > '9')
        return -EINVAL;
    for (; p < end && *p >= '0' && *p <= '9'; p++) {
        v = v * 10 + (*p - '0');
        if (v > INT32_MAX)
            return -EINVAL;
    }
    if (p < end && *p != ' ' && *p != '\n')
        return -EINVAL;
    *state = c;
    *ppid = (int)v;
    return 0;
}

int proc_stat_read(int pid, char *state, int *ppid)
{
    /* state and parent follow the pid and the command name (a few dozen
     * bytes): the first 512 bytes hold them */
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return -errno;
    size_t n = fread(buf, 1, sizeof(buf), f);
    int rc = ferror(f) ? -EIO : 0;
    fclose(f);
    return rc < 0 ? rc : proc_stat_parse(buf, n, state, ppid);
}
