/* SPDX-License-Identifier: Apache-2.0 */
/*
 * timefmt: the time formats of drover's KV contract, in one place so the
 * writer (droverctl, exporter, watcher) and the readers (watcher,
 * agent-checker) agree on what a valid time is. RFC 3339 strings
 * ("2026-11-23T15:00:00Z", fraction and +hh:mm/-hh:mm offset allowed on
 * input, always UTC "Z" on output) and the compact stamp of audit keys
 * ("20261123T150405.123Z"), which sorts like time. Pure computation, no
 * timezone state: the civil calendar is converted by arithmetic, not by
 * timegm()/TZ.
 */
#ifndef DROVER_TIMEFMT_H
#define DROVER_TIMEFMT_H

#include <stddef.h>
#include <stdint.h>

/* Room for every string the formatters below write. */
#define TIMEFMT_BUF_SIZE 40

/*
 * Parse an RFC 3339 date-time: "YYYY-MM-DDThh:mm:ss", 'T' or 't', an
 * optional fraction ".d+", then 'Z'/'z' or "+hh:mm"/"-hh:mm", nothing
 * after. The day is checked against its month (leap years included); a
 * leap second ":60" is accepted and counts as the next second.
 * *unix_s = seconds since the epoch (fraction dropped); *unix_ms (if the
 * _ms variant) = milliseconds (fraction truncated to ms).
 * 0, or -EINVAL (text NULL or not such a time; *out untouched).
 */
int timefmt_parse_rfc3339(const char *text, int64_t *unix_s);
int timefmt_parse_rfc3339_ms(const char *text, int64_t *unix_ms);

/*
 * Unix seconds -> "2026-11-23T15:00:00Z"; unix milliseconds ->
 * "2026-11-23T15:00:00.123Z" (_ms); unix milliseconds -> the audit-key
 * stamp "20261123T150405.123Z" (_stamp_ms). buf is always NUL-terminated
 * ("" on failure). 0, -ERANGE (year outside 0..9999) or -ENOSPC (buflen
 * too small; TIMEFMT_BUF_SIZE always suffices).
 */
int timefmt_format_rfc3339(int64_t unix_s, char *buf, size_t buflen);
int timefmt_format_rfc3339_ms(int64_t unix_ms, char *buf, size_t buflen);
int timefmt_format_stamp_ms(int64_t unix_ms, char *buf, size_t buflen);

#endif
