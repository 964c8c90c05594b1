/* SPDX-License-Identifier: Apache-2.0 */
/*
 * errmsg: the caller-provided error buffer convention of libdrover.
 * Functions that can fail on outside input take (char *err, size_t errlen)
 * and return a negative errno; errmsg_set() fills the buffer, tolerating
 * err == NULL or errlen == 0 (caller not interested) and truncating long
 * messages.
 */
#ifndef DROVER_ERRMSG_H
#define DROVER_ERRMSG_H

#include <stddef.h>

void errmsg_set(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
