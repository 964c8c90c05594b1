/* SPDX-License-Identifier: Apache-2.0 */
/*
 * log: the one logger of every drover program. Writes one logfmt line per
 * message to stderr (or a FILE set by log_set_stream):
 *
 *   ts=2026-11-23T12:00:00.123Z level=warn comp=watcher msg="consul: ..."
 *
 * The message text is quoted and escaped so a value from outside (a KV
 * key, a Kubernetes name) can never forge extra fields or lines.
 *
 * Other formats (log_set_format, --log-format): "journal", for stderr
 * connected to systemd's journal, prefixes the line with the syslog
 * priority (<3> error, <4> warn, <6> info, <7> debug: journald takes it as
 * PRIORITY and strips it) and leaves the time stamp to journald; "json" is
 * one JSON object a line, {"ts":...,"level":...,"comp":...,"msg":...};
 * "auto" (the default) is journal when $JOURNAL_STREAM names the output's
 * file (as systemd sets it for a unit's stderr), else logfmt. libbpf's
 * own output is routed here by log_route_libbpf(). Safe to call from any
 * thread; never allocates.
 */
#ifndef DROVER_LOG_H
#define DROVER_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum log_level {
    LOGL_DEBUG = 0,
    LOGL_INFO = 1,
    LOGL_WARN = 2,
    LOGL_ERROR = 3,
};

enum log_format {
    LOG_FORMAT_AUTO = 0,
    LOG_FORMAT_LOGFMT,
    LOG_FORMAT_JOURNAL,
    LOG_FORMAT_JSON,
};

/* Parse "auto"|"logfmt"|"journal"|"json"; 0 or -EINVAL. */
int log_parse_format(const char *text, enum log_format *out);
/* The format of the following lines; AUTO is resolved against the output
 * stream at each line (log_set_stream may change it). */
void log_set_format(enum log_format format);

/* Component name printed as comp=...; the string must outlive the logger. */
void log_set_component(const char *name);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Redirect output (tests); NULL restores stderr. */
void log_set_stream(FILE *stream);
/* Parse "debug"|"info"|"warn"|"error"; 0 or -EINVAL. */
int log_parse_level(const char *text, enum log_level *out);
const char *log_level_name(enum log_level level);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vmsg(enum log_level level, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

#define log_debug(...) log_msg(LOGL_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(LOGL_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOGL_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOGL_ERROR, __VA_ARGS__)

/*
 * At most one line per interval for events that can come in floods from
 * outside (refused connections, unsigned requests): call
 * log_ratelimit_allow() for every event; it answers whether to log this
 * one and, when it does, how many events were swallowed since the last
 * line it allowed (to be said in that line, so nothing is silently lost).
 * The first event always logs. now_ms from any monotonic clock (uv_now,
 * log_monotonic_ms). One instance per event kind; not thread-safe.
 */
struct log_ratelimit {
    uint64_t interval_ms; /* 0 = 10 s */
    uint64_t last_ms;
    uint64_t suppressed;
    bool started;
};
bool log_ratelimit_allow(struct log_ratelimit *rl, uint64_t now_ms, uint64_t *suppressed);
/* CLOCK_MONOTONIC in milliseconds. */
uint64_t log_monotonic_ms(void);

/* Send libbpf's messages through this logger (warn -> warn, info -> info,
 * debug -> debug), trimming their trailing newline. */
void log_route_libbpf(void);

#endif
