/* SPDX-License-Identifier: Apache-2.0 */
/*
 * slack: the pieces of the Slack slash-command protocol droverctl serve
 * needs, free of I/O so they are unit-tested and fuzzed directly:
 *
 *   - application/x-www-form-urlencoded decoding of the request body;
 *   - request signature verification: X-Slack-Signature must equal
 *     "v0=" + hex(HMAC-SHA256(secret, "v0:" + timestamp + ":" + body)),
 *     compared in constant time, with the timestamp within a window of
 *     the local clock (both directions);
 *   - a replay cache remembering every accepted signature until it falls
 *     out of the window, so a captured request cannot be sent twice;
 *   - allow-list checks and the JSON answer format
 *     {"response_type": "in_channel"|"ephemeral", "text": ...}.
 */
#ifndef DROVER_CTL_SLACK_H
#define DROVER_CTL_SLACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SLACK_WINDOW_S      300 /* Slack's documented 5-minute window */
#define SLACK_REPLAY_MAX    8192
#define SLACK_FORM_MAX_KEYS 64

/* Decoded form fields; keys and values malloc'd, NUL-terminated. */
struct slack_form {
    char *keys[SLACK_FORM_MAX_KEYS];
    char *values[SLACK_FORM_MAX_KEYS];
    size_t n;
};

/* Decode body (len bytes). '+' is a space, %XX a byte; a bad escape, a
 * NUL byte, a repeated key or more than SLACK_FORM_MAX_KEYS fields is
 * -EINVAL (message in err). 0 or -EINVAL/-ENOMEM; free with
 * slack_form_free whatever the result. */
int slack_form_parse(const char *body, size_t len, struct slack_form *form, char *err,
                     size_t errlen);
/* Value of key, NULL if absent (borrowed). */
const char *slack_form_get(const struct slack_form *form, const char *key);
void slack_form_free(struct slack_form *form);

/* Verify one request at wall-clock time now (unix seconds). timestamp and
 * signature are the raw header values (NULL if absent). Returns 0, or
 * -EACCES (missing or wrong signature, bad timestamp syntax) or -ETIME
 * (timestamp outside the window), with a message in err. */
int slack_verify(const void *secret, size_t secret_len, const char *timestamp,
                 const char *signature, const char *body, size_t body_len, int64_t now, char *err,
                 size_t errlen);

/* Lower-case hex HMAC-SHA256 of "v0:" timestamp ":" body into out (65
 * bytes incl. NUL). 0 or -EIO. */
int slack_signature_hex(const void *secret, size_t secret_len, const char *timestamp,
                        const char *body, size_t body_len, char out[65]);

/* Signatures seen within the window. */
struct slack_replay {
    struct slack_replay_entry *items;
    size_t n, cap;
    size_t max; /* 0 = SLACK_REPLAY_MAX */
};

/* Remember sig (the header value) of a request stamped ts, at time now.
 * 0 when new; -EALREADY when seen within the window (a replay); -ENOSPC
 * when the cache holds max live entries (refuse the request rather than
 * forget one that could then be replayed); -ENOMEM. Entries older than
 * the window are dropped on the way. */
int slack_replay_check(struct slack_replay *r, const char *sig, int64_t ts, int64_t now);
void slack_replay_free(struct slack_replay *r);

/* Is item in the comma-free list (exact match, "*" matches all)? */
bool slack_allowed(char *const *list, size_t n, const char *item);

/* {"response_type":..,"text":..} as a malloc'd string (NULL on ENOMEM). */
char *slack_answer_json(bool in_channel, const char *text);

#endif
