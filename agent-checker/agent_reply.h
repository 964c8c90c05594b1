/* SPDX-License-Identifier: Apache-2.0 */
/*
 * agent_reply: the HAProxy agent-check wire protocol, both directions.
 *
 * Owns the words of a reply (admin ready/drain/maint, health
 * up/down/stopped/fail, "N%" weight, "maxconn:N", "#text"), the building of
 * the one reply line the checker sends, the sanitising of the free-text
 * description (reason + author, at most AGENT_TEXT_MAX bytes, no control
 * characters, cut on a UTF-8 boundary), and the parsing of the request line
 * HAProxy sends (its agent-send string: "<backend>/<server>[ <address>]\n").
 * Pure functions, no allocation: the daemon, the tests and the fuzzers call
 * the same code.
 */
#ifndef DROVER_AGENT_REPLY_H
#define DROVER_AGENT_REPLY_H

#include <stdbool.h>
#include <stddef.h>

/* HAProxy keeps about 127 characters of the description. */
#define AGENT_TEXT_MAX 127
/* Longest request line we read; anything longer is garbage. */
#define AGENT_REQUEST_MAX 512
/* Longest reply line: words + '#' + text + '\n' + NUL fit comfortably. */
#define AGENT_REPLY_MAX 192
/* HAProxy caps agent weights at 256 % of the configured weight. */
#define AGENT_WEIGHT_MAX 256
/* Longest backend/server key and address we look up. */
#define AGENT_KEY_MAX     255
#define AGENT_ADDRESS_MAX 63

enum agent_admin {
    AGENT_ADMIN_READY = 0,
    AGENT_ADMIN_DRAIN,
    AGENT_ADMIN_MAINT,
    AGENT_ADMIN_COUNT,
};

enum agent_health {
    AGENT_HEALTH_UP = 0,
    AGENT_HEALTH_DOWN,
    AGENT_HEALTH_STOPPED,
    AGENT_HEALTH_FAIL,
    AGENT_HEALTH_COUNT,
};

/* What one reply says. text is borrowed (not owned); NULL or "" sends a
 * bare '#'-less reply only if the caller wants it -- agent_reply_format
 * always sends '#' followed by text, see there. */
struct agent_answer {
    enum agent_admin admin;
    enum agent_health health;
    int weight;  /* 0..AGENT_WEIGHT_MAX percent, -1 = leave unchanged */
    int maxconn; /* >= 0, -1 = leave unchanged */
    const char *text;
};

/* A parsed request line. Both fields are NUL-terminated copies; an empty
 * string means "not given". */
struct agent_request {
    char key[AGENT_KEY_MAX + 1];         /* "<backend>/<server>" */
    char address[AGENT_ADDRESS_MAX + 1]; /* "10.0.0.5", "10.0.0.5:30080", "[::1]:80" */
};

const char *agent_admin_name(enum agent_admin admin);
const char *agent_health_name(enum agent_health health);
/* Case-insensitive word -> enum; 0 or -EINVAL. */
int agent_admin_parse(const char *word, enum agent_admin *out);
int agent_health_parse(const char *word, enum agent_health *out);

/* Write the reply line for `a` into buf (cap bytes, NUL-terminated):
 *   "<admin> <health>[ <weight>%][ maxconn:<n>] #<text>\n"
 * Always both words and a '#' (HAProxy only shows a description when a
 * health word is present). a->text is sanitised and cut again here, so a
 * caller can never make the line longer than one line. Returns the length
 * without the NUL, or -ENOSPC if cap < AGENT_REPLY_MAX, -EINVAL on an
 * out-of-range enum. */
int agent_reply_format(const struct agent_answer *a, char *buf, size_t cap);

/* Build the description from an operator's reason and author into dst
 * (cap >= AGENT_TEXT_MAX + 1): "reason (by author)", "reason", or
 * "by author"; control characters (including CR/LF/TAB) become spaces, runs
 * of blanks are kept single, leading/trailing blanks dropped, and the result
 * is cut to AGENT_TEXT_MAX bytes without splitting a UTF-8 sequence.
 * Either input may be NULL. Returns the length of dst. */
size_t agent_text_build(const char *reason, const char *author, char *dst, size_t cap);

/* Parse a reply line (words in any order, separated by space, tab or comma,
 * '#' starts the text, as HAProxy reads them) into `out`; the text is
 * copied into textbuf (cap bytes) and out->text points at it. Used for the
 * configured fallback answer and by tests. A line without an admin word
 * gets READY, without a health word UP. 0 or -EINVAL on an unknown word or
 * a bad number. */
int agent_reply_parse(const char *line, struct agent_answer *out, char *textbuf, size_t cap);

/* Parse the request bytes buf[0..len) (without or with the trailing
 * newline; only the first line counts). Tokens are separated by blanks:
 * the one holding '/' is the backend/server key, another one the server
 * address. Returns 0 with at least one field set, or -EINVAL for garbage
 * (empty, too long, bad characters, too many tokens): the caller then
 * answers the default. */
int agent_request_parse(const char *buf, size_t len, struct agent_request *out);

#endif
