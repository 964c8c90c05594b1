/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz atomic_file_temp_name, which reads directory entries at a
 * watcher's start to decide what to remove: a name it accepts must be
 * exactly one of the two temp forms built back from what it returned
 * (".<target>.tmp.<pid>.<8 hex>" or "<target>.tmp.<pid>"), with a
 * positive pid and a non-empty target; a target too long for the buffer
 * is refused, never cut. */
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomic_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char name[NAME_MAX + 1], target[NAME_MAX + 1], small[8], back[NAME_MAX + 64];
    long pid;
    if (size > NAME_MAX || memchr(data, '\0', size))
        return 0;
    memcpy(name, data, size);
    name[size] = '\0';
    if (atomic_file_temp_name(name, target, sizeof(target), &pid)) {
        if (pid <= 0 || !target[0])
            abort();
        const char *hex = strrchr(name, '.');
        if (name[0] == '.')
            snprintf(back, sizeof(back), ".%s.tmp.%ld%s", target, pid, hex);
        else
            snprintf(back, sizeof(back), "%s.tmp.%ld", target, pid);
        if (strcmp(back, name) != 0)
            abort();
    }
    if (atomic_file_temp_name(name, small, sizeof(small), &pid) && strlen(small) >= sizeof(small))
        abort();
    return 0;
}
