/* SPDX-License-Identifier: Apache-2.0 */
#include "log.h"

#include <bpf/libbpf.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

#include "timefmt.h"

static const char *log_component = "drover";
static enum log_level log_threshold = LOGL_INFO;
static FILE *log_stream;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

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

/* Copy src into dst as the inside of a logfmt quoted value. Control
 * characters become \n, \t or \xNN so one message is always one line. */
static void escape_into(char *dst, size_t cap, const char *src)
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
    escape_into(escaped, sizeof(escaped), text);

    gettimeofday(&tv, NULL);
    timefmt_format_rfc3339_ms((int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000, ts, sizeof(ts));

    pthread_mutex_lock(&log_lock);
    FILE *out = log_stream ? log_stream : stderr;
    fprintf(out, "ts=%s level=%s comp=%s msg=\"%s\"\n", ts, log_level_name(level), log_component,
            escaped);
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
