/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ctl_time: the time formats of the KV contract. RFC 3339 UTC strings
 * ("2026-11-23T15:00:00Z") in values, and the audit key stamp
 * "20261123T150405.123Z", which sorts like time.
 */
#ifndef DROVER_CTL_TIME_H
#define DROVER_CTL_TIME_H

#include <stddef.h>
#include <stdint.h>

/* "2026-11-23T15:00:00Z", optional fraction, "Z" or +hh:mm/-hh:mm offset.
 * 0 or -EINVAL. */
int ctl_time_parse(const char *text, int64_t *out);
/* unix seconds -> "2026-11-23T15:00:00Z" (buf >= 21 bytes). */
void ctl_time_format(int64_t t, char *buf, size_t buflen);
/* unix milliseconds -> "20261123T150405.123Z" (buf >= 21 bytes). */
void ctl_time_stamp(int64_t ms, char *buf, size_t buflen);

#endif
