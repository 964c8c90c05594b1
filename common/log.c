/* SPDX-License-Identifier: Apache-2.0 */
#include "log.h"

#include <bpf/libbpf.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>

#include "timefmt.h"

static const char *log_component = "drover";
static enum log_level log_threshold = LOGL_INFO;
static FILE *log_stream;
static enum log_format log_fmt = LOG_FORMAT_AUTO;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = {"debug", "info", "warn", "error"};
static const char *const format_names[] = {"auto", "logfmt", "journal", "json"};
/* syslog priorities of the levels (journald's PRIORITY=) */
static const int level_priority[] = {7, 6, 4, 3};

int log_parse_format(const char *text, enum log_format *out)
{
    for (unsigned i = 0; i < sizeof(format_names) / sizeof(format_names[0]); i++) {
        if (text && strcasecmp(text, format_names[i]) == 0) {
            *out = (enum log_format)i;
            return 0;
        }
    }
    return -EINVAL;
}

void log_set_format(enum log_format format)
{
    log_fmt = format;
}

/* systemd sets $JOURNAL_STREAM to "<dev>:<inode>" of the stream it
 * connects a unit's stdout/stderr to; a match means out goes to journald
 * (a redirect inside the unit would not match). */
static bool to_journal(FILE *out)
{
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;

    if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2 || fstat(fileno(out), &st) < 0)
        return false;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_set_component(const char *name)
{
    log_component = name ? name : "drover";
}

void log_set_level(enum log_level level)
{
    log_threshold = level;
}

enum log_level log_get_level(void)
{
    return log_threshold;
}

void log_set_stream(FILE *stream)
{
    log_stream = stream;
}

const char *log_level_name(enum log_level level)
{
    if ((unsigned)level > LOGL_ERROR)
        return "unknown";
    return level_names[level];
}

int log_parse_level(const char *text, enum log_level *out)
{
    for (unsigned i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (text && strcasecmp(text, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    if (text && strcasecmp(text, "warning") == 0) {
        *out = LOGL_WARN;
        return 0;
    }
    return -EINVAL;
}

/* Copy src into dst as the inside of a logfmt (json false) or JSON (json
 * true) quoted string. Control characters become \n, \t or \xNN (JSON:
 * \u00NN) so one message is always one line. */
static void escape_into(char *dst, size_t cap, const char *src, bool json)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;

    for (; *src && o + 5 < cap; src++) {
        unsigned char c = (unsigned char)*src;
        if (c == '"' || c == '\\') {
            dst[o++] = '\\';
            dst[o++] = (char)c;
        } else if (c == '\n') {
            dst[o++] = '\\';
            dst[o++] = 'n';
        } else if (c == '\t') {
            dst[o++] = '\\';
            dst[o++] = 't';
        } else if (json && (c < 0x20 || c == 0x7f)) {
            if (o + 7 >= cap)
                break;
            memcpy(dst + o, "\\u00", 4);
            o += 4;
            dst[o++] = hex[c >> 4];
            dst[o++] = hex[c & 15];
        } else if (c < 0x20 || c == 0x7f) {
            dst[o++] = '\\';
            dst[o++] = 'x';
            dst[o++] = hex[c >> 4];
            dst[o++] = hex[c & 15];
        } else {
            dst[o++] = (char)c;
        }
    }
    dst[o] = '\0';
}

void log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
    char text[2048], escaped[4096], ts[TIMEFMT_BUF_SIZE];
    struct timeval tv;

    if (level < log_threshold)
        return;
    vsnprintf(text, sizeof(text), fmt, ap);
    /* Trailing newlines are the caller's habit, not part of the message. */
    size_t len = strlen(text);
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
        text[--len] = '\0';
    escape_into(escaped, sizeof(escaped), text, log_fmt == LOG_FORMAT_JSON);

    gettimeofday(&tv, NULL);
    timefmt_format_rfc3339_ms((int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000, ts, sizeof(ts));

    pthread_mutex_lock(&log_lock);
    FILE *out = log_stream ? log_stream : stderr;
    enum log_format form = log_fmt;
    if (form == LOG_FORMAT_AUTO)
        form = to_journal(out) ? LOG_FORMAT_JOURNAL : LOG_FORMAT_LOGFMT;
    if (form == LOG_FORMAT_JSON)
        fprintf(out, "{\"ts\":\"%s\",\"level\":\"%s\",\"comp\":\"%s\",\"msg\":\"%s\"}\n", ts,
                log_level_name(level), log_component, escaped);
    else if (form == LOG_FORMAT_JOURNAL)
        fprintf(out, "<%d>level=%s comp=%s msg=\"%s\"\n",
                level_priority[(unsigned)level <= LOGL_ERROR ? level : LOGL_ERROR],
                log_level_name(level), log_component, escaped);
    else
        fprintf(out, "ts=%s level=%s comp=%s msg=\"%s\"\n", ts, log_level_name(level),
                log_component, escaped);
    fflush(out);
    pthread_mutex_unlock(&log_lock);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_vmsg(level, fmt, ap);
    va_end(ap);
}

/* libbpf hands us its own printf format; it is trusted library text, not
 * outside input, so the non-literal format is fine here. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
    enum log_level ours = LOGL_DEBUG;
    char text[1024];

    if (level == LIBBPF_WARN)
        ours = LOGL_WARN;
    else if (level == LIBBPF_INFO)
        ours = LOGL_INFO;
    if (ours < log_threshold)
        return 0;
    vsnprintf(text, sizeof(text), fmt, ap);
    log_msg(ours, "libbpf: %s", text);
    return 0;
}
#pragma GCC diagnostic pop

void log_route_libbpf(void)
{
    libbpf_set_print(libbpf_print);
}

bool log_ratelimit_allow(struct log_ratelimit *rl, uint64_t now_ms, uint64_t *suppressed)
{
    uint64_t interval = rl->interval_ms ? rl->interval_ms : 10000;

    if (rl->started && now_ms - rl->last_ms < interval) {
        rl->suppressed++;
        return false;
    }
    if (suppressed)
        *suppressed = rl->suppressed;
    rl->suppressed = 0;
    rl->last_ms = now_ms;
    rl->started = true;
    return true;
}

uint64_t log_monotonic_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}
