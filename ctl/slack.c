/* SPDX-License-Identifier: Apache-2.0 */
/* slack: see slack.h. */
#include "slack.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errmsg.h"
#include "hex.h"

struct slack_replay_entry {
    char sig[72]; /* "v0=" + 64 hex + NUL fits; longer ones are never accepted */
    int64_t ts;
};

/* ---- form ------------------------------------------------------------ */

/* Decode s[0..n) into a new string. */
static int decode(const char *s, size_t n, char **out, char *err, size_t errlen)
{
    char *o = malloc(n + 1), *d = o;

    if (!o)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            *d++ = ' ';
        } else if (s[i] == '%') {
            int hi = i + 2 < n ? hex_digit_value(s[i + 1]) : -1;
            int lo = i + 2 < n ? hex_digit_value(s[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                errmsg_set(err, errlen, "form body: bad %%-escape at offset %zu", i);
                free(o);
                return -EINVAL;
            }
            char c = (char)(hi << 4 | lo);
            if (c == '\0') {
                errmsg_set(err, errlen, "form body: %%00 (NUL byte) at offset %zu", i);
                free(o);
                return -EINVAL;
            }
            *d++ = c;
            i += 2;
        } else if (s[i] == '\0') {
            errmsg_set(err, errlen, "form body: NUL byte at offset %zu", i);
            free(o);
            return -EINVAL;
        } else {
            *d++ = s[i];
        }
    }
    *d = '\0';
    *out = o;
    return 0;
}

void slack_form_free(struct slack_form *form)
{
    for (size_t i = 0; i < form->n; i++) {
        free(form->keys[i]);
        free(form->values[i]);
    }
    form->n = 0;
}

int slack_form_parse(const char *body, size_t len, struct slack_form *form, char *err,
                     size_t errlen)
{
    size_t i = 0;
    int rc;

    memset(form, 0, sizeof(*form));
    while (i < len) {
        size_t end = i, eq;
        while (end < len && body[end] != '&')
            end++;
        if (end == i) { /* empty field ("a=1&&b=2"): nothing to decode */
            i = end + 1;
            continue;
        }
        eq = i;
        while (eq < end && body[eq] != '=')
            eq++;
        if (form->n == SLACK_FORM_MAX_KEYS) {
            errmsg_set(err, errlen, "form body: more than %d fields", SLACK_FORM_MAX_KEYS);
            return -EINVAL;
        }
        char *k = NULL, *v = NULL;
        if ((rc = decode(body + i, eq - i, &k, err, errlen)) < 0)
            return rc;
        rc = decode(body + (eq < end ? eq + 1 : end), eq < end ? end - eq - 1 : 0, &v, err, errlen);
        if (rc < 0) {
            free(k);
            return rc;
        }
        if (slack_form_get(form, k)) {
            errmsg_set(err, errlen, "form body: field '%.32s' given twice", k);
            free(k);
            free(v);
            return -EINVAL;
        }
        form->keys[form->n] = k;
        form->values[form->n] = v;
        form->n++;
        i = end + 1;
    }
    return 0;
}

const char *slack_form_get(const struct slack_form *form, const char *key)
{
    for (size_t i = 0; i < form->n; i++)
        if (!strcmp(form->keys[i], key))
            return form->values[i];
    return NULL;
}

/* ---- signatures -------------------------------------------------------- */

int slack_signature_hex(const void *secret, size_t secret_len, const char *timestamp,
                        const char *body, size_t body_len, char out[65])
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    size_t tl = strlen(timestamp);
    size_t n = 3 + tl + 1 + body_len;
    char *msg = malloc(n ? n : 1);
    int rc = 0;

    if (!msg)
        return -ENOMEM;
    memcpy(msg, "v0:", 3);
    memcpy(msg + 3, timestamp, tl);
    msg[3 + tl] = ':';
    if (body_len)
        memcpy(msg + 4 + tl, body, body_len);
    if (!HMAC(EVP_sha256(), secret, (int)secret_len, (const unsigned char *)msg, n, mac, &maclen) ||
        maclen != 32) {
        rc = -EIO;
        goto out;
    }
    hex_encode(mac, 32, out);
out:
    free(msg);
    return rc;
}

int slack_verify(const void *secret, size_t secret_len, const char *timestamp,
                 const char *signature, const char *body, size_t body_len, int64_t now, char *err,
                 size_t errlen)
{
    char want[3 + 65];
    char *end;
    long long ts;

    if (!timestamp || !signature) {
        errmsg_set(err, errlen, "unsigned request: %s header missing",
                   !timestamp ? "X-Slack-Request-Timestamp" : "X-Slack-Signature");
        return -EACCES;
    }
    errno = 0;
    ts = strtoll(timestamp, &end, 10);
    if (errno || end == timestamp || *end || timestamp[0] < '0' || timestamp[0] > '9' ||
        strlen(timestamp) > 12) {
        errmsg_set(err, errlen, "bad X-Slack-Request-Timestamp '%.20s'", timestamp);
        return -EACCES;
    }
    if (ts < now - SLACK_WINDOW_S || ts > now + SLACK_WINDOW_S) {
        errmsg_set(err, errlen,
                   "stale request: timestamp %lld is %lld s away from now (window %d s)", ts,
                   (long long)(ts > now ? ts - now : now - ts), SLACK_WINDOW_S);
        return -ETIME;
    }
    memcpy(want, "v0=", 3);
    if (slack_signature_hex(secret, secret_len, timestamp, body, body_len, want + 3) < 0) {
        errmsg_set(err, errlen, "cannot compute HMAC-SHA256, refusing the request");
        return -EACCES;
    }
    /* Compare equal lengths only; the length of a correct signature is
     * public, so leaking a length mismatch reveals nothing. */
    if (strlen(signature) != 67 || CRYPTO_memcmp(signature, want, 67) != 0) {
        errmsg_set(err, errlen, "bad request signature");
        return -EACCES;
    }
    return 0;
}

/* ---- replay cache ---------------------------------------------------------- */

int slack_replay_check(struct slack_replay *r, const char *sig, int64_t ts, int64_t now)
{
    size_t max = r->max ? r->max : SLACK_REPLAY_MAX;
    size_t j = 0;

    if (strlen(sig) >= sizeof(((struct slack_replay_entry *)0)->sig))
        return -EINVAL;
    /* Drop entries whose timestamp left the window: a replay of those is
     * refused as stale by slack_verify anyway. */
    for (size_t i = 0; i < r->n; i++)
        if (r->items[i].ts >= now - SLACK_WINDOW_S)
            r->items[j++] = r->items[i];
    r->n = j;
    for (size_t i = 0; i < r->n; i++)
        if (!strcmp(r->items[i].sig, sig))
            return -EALREADY;
    if (r->n >= max)
        return -ENOSPC;
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 64;
        struct slack_replay_entry *it = realloc(r->items, cap * sizeof(*it));
        if (!it)
            return -ENOMEM;
        r->items = it;
        r->cap = cap;
    }
    snprintf(r->items[r->n].sig, sizeof(r->items[r->n].sig), "%s", sig);
    r->items[r->n].ts = ts;
    r->n++;
    return 0;
}

void slack_replay_free(struct slack_replay *r)
{
    free(r->items);
    r->items = NULL;
    r->n = r->cap = 0;
}

/* ---- answers ------------------------------------------------------------------ */

bool slack_allowed(char *const *list, size_t n, const char *item)
{
    if (!item || !*item)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(list[i], "*") || !strcmp(list[i], item))
            return true;
    return false;
}

char *slack_answer_json(bool in_channel, const char *text)
{
    json_t *o = json_pack("{s:s, s:s}", "response_type", in_channel ? "in_channel" : "ephemeral",
                          "text", text ? text : "");
    char *s = NULL;

    if (o) {
        s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(o);
    }
    return s;
}
