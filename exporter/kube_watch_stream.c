/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kube_watch_stream: line assembly and event decoding for watch bodies,
 * plus list and Status bodies. See kube_watch_stream.h.
 *
 * Lines are assembled as raw bytes, so a chunk boundary inside a UTF-8
 * sequence never matters: jansson only sees whole lines (and rejects
 * invalid UTF-8 itself). When the buffer is empty and a chunk holds whole
 * lines, they are parsed in place without copying.
 */
#include "kube_watch_stream.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

struct kube_watch_stream {
    char *name;
    kube_watch_event_cb cb;
    void *arg;
    size_t max_line;
    char *buf; /* the incomplete current line */
    size_t len, cap;
    bool skipping;       /* discarding the rest of an oversized line */
    uint64_t line_no;    /* lines completed on this connection */
    uint64_t pos;        /* bytes consumed on this connection */
    uint64_t line_start; /* offset of the current line's first byte */
    struct kube_watch_stats stats;
};

static const char *const event_names[] = {
    [KUBE_EVENT_ADDED] = "ADDED",     [KUBE_EVENT_MODIFIED] = "MODIFIED",
    [KUBE_EVENT_DELETED] = "DELETED", [KUBE_EVENT_BOOKMARK] = "BOOKMARK",
    [KUBE_EVENT_ERROR] = "ERROR",
};

const char *kube_event_type_name(enum kube_event_type t)
{
    if ((size_t)t < sizeof(event_names) / sizeof(event_names[0]))
        return event_names[t];
    return "UNKNOWN";
}

int kube_event_type_parse(const char *text, enum kube_event_type *out)
{
    if (!text)
        return -EINVAL;
    for (size_t i = 0; i < sizeof(event_names) / sizeof(event_names[0]); i++) {
        if (strcmp(text, event_names[i]) == 0) {
            *out = (enum kube_event_type)i;
            return 0;
        }
    }
    return -EINVAL;
}

static const char *obj_str(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

int kube_status_from_json(const json_t *obj, struct kube_status *st)
{
    memset(st, 0, sizeof(*st));
    if (!json_is_object(obj))
        return -EINVAL;
    const char *kind = obj_str(obj, "kind");
    if (!kind || strcmp(kind, "Status") != 0)
        return -EINVAL;
    json_t *code = json_object_get(obj, "code");
    if (json_is_integer(code))
        st->code = (long)json_integer_value(code);
    st->status = obj_str(obj, "status");
    st->reason = obj_str(obj, "reason");
    st->message = obj_str(obj, "message");
    return 0;
}

bool kube_status_is_expired(const struct kube_status *st)
{
    if (!st)
        return false;
    if (st->code == 410)
        return true;
    return st->reason && (strcmp(st->reason, "Expired") == 0 || strcmp(st->reason, "Gone") == 0);
}

int kube_status_parse(const void *body, size_t len, struct kube_status *out)
{
    memset(out, 0, sizeof(*out));
    json_t *root = json_loadb(body, len, 0, NULL);
    if (!root)
        return -EINVAL;
    if (kube_status_from_json(root, out) < 0) {
        json_decref(root);
        return -EINVAL;
    }
    out->root = root;
    return 0;
}

void kube_status_clear(struct kube_status *st)
{
    if (!st)
        return;
    json_decref(st->root);
    memset(st, 0, sizeof(*st));
}

struct kube_watch_stream *kube_watch_stream_new(const char *name, size_t max_line,
                                                kube_watch_event_cb cb, void *arg)
{
    struct kube_watch_stream *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->name = strdup(name ? name : "watch");
    if (!s->name) {
        free(s);
        return NULL;
    }
    s->cb = cb;
    s->arg = arg;
    s->max_line = max_line ? max_line : KUBE_WATCH_DEFAULT_MAX_LINE;
    return s;
}

void kube_watch_stream_free(struct kube_watch_stream *s)
{
    if (!s)
        return;
    free(s->buf);
    free(s->name);
    free(s);
}

void kube_watch_stream_reset(struct kube_watch_stream *s)
{
    s->len = 0;
    s->skipping = false;
    s->line_no = 0;
    s->pos = 0;
    s->line_start = 0;
}

size_t kube_watch_stream_pending(const struct kube_watch_stream *s)
{
    return s->len;
}

const struct kube_watch_stats *kube_watch_stream_stats(const struct kube_watch_stream *s)
{
    return &s->stats;
}

static void bad_line(struct kube_watch_stream *s, uint64_t line_no, uint64_t offset,
                     const char *why)
{
    s->stats.bad_lines++;
    log_warn("kube watch %s: line %llu (byte offset %llu): %s; skipping the line", s->name,
             (unsigned long long)line_no, (unsigned long long)offset, why);
}

/* Decode one complete line (without its '\n'). Returns 0 or the
 * callback's error; bad lines are counted and return 0. */
static int process_line(struct kube_watch_stream *s, const char *line, size_t n, uint64_t line_no,
                        uint64_t offset)
{
    char why[256];
    json_error_t jerr;

    s->stats.lines++;
    while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t'))
        n--;
    size_t lead = 0;
    while (lead < n && (line[lead] == ' ' || line[lead] == '\t'))
        lead++;
    if (lead == n)
        return 0; /* blank line: keep-alive padding, not an error */

    json_t *root = json_loadb(line, n, 0, &jerr);
    if (!root) {
        snprintf(why, sizeof(why), "invalid JSON at column %d: %s", jerr.column, jerr.text);
        bad_line(s, line_no, offset, why);
        return 0;
    }
    int rc = 0;
    struct kube_event ev = {.line_no = line_no};
    const char *type = json_is_object(root) ? obj_str(root, "type") : NULL;
    if (!json_is_object(root)) {
        bad_line(s, line_no, offset, "not a JSON object");
        goto out;
    }
    if (!type) {
        bad_line(s, line_no, offset, "no string field \"type\"");
        goto out;
    }
    if (kube_event_type_parse(type, &ev.type) < 0) {
        snprintf(why, sizeof(why), "unknown event type \"%.64s\"", type);
        bad_line(s, line_no, offset, why);
        goto out;
    }
    ev.object = json_object_get(root, "object");
    if (!json_is_object(ev.object)) {
        snprintf(why, sizeof(why), "%s event without an \"object\" object", type);
        bad_line(s, line_no, offset, why);
        goto out;
    }
    json_t *meta = json_object_get(ev.object, "metadata");
    ev.resource_version = json_is_object(meta) ? obj_str(meta, "resourceVersion") : NULL;
    if (ev.type == KUBE_EVENT_ERROR)
        (void)kube_status_from_json(ev.object, &ev.status);
    s->stats.events++;
    rc = s->cb ? s->cb(&ev, s->arg) : 0;
out:
    json_decref(root);
    return rc;
}

static int buf_append(struct kube_watch_stream *s, const char *p, size_t n)
{
    if (s->len + n > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < s->len + n)
            cap *= 2;
        char *b = realloc(s->buf, cap);
        if (!b)
            return -ENOMEM;
        s->buf = b;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, p, n);
    s->len += n;
    return 0;
}

/* Bound the idle buffer: one huge line must not pin its memory forever. */
static void buf_shrink(struct kube_watch_stream *s)
{
    if (s->len == 0 && s->cap > 1024 * 1024) {
        free(s->buf);
        s->buf = NULL;
        s->cap = 0;
    }
}

int kube_watch_stream_feed(struct kube_watch_stream *s, const void *data, size_t len)
{
    const char *p = data;
    const char *end = p + len;
    int ret = 0;

    s->stats.bytes += len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t seg = nl ? (size_t)(nl - p) : (size_t)(end - p);
        uint64_t line_no = s->line_no + 1;

        if (!s->skipping && s->len + seg > s->max_line) {
            s->stats.oversized_lines++;
            log_error("kube watch %s: line %llu (byte offset %llu) is longer than the limit of "
                      "%zu bytes; discarding it, the event is lost (relist needed)",
                      s->name, (unsigned long long)line_no, (unsigned long long)s->line_start,
                      s->max_line);
            s->len = 0;
            buf_shrink(s);
            s->skipping = true;
            ret = -EMSGSIZE;
        }
        if (s->skipping) {
            s->pos += seg;
            if (!nl)
                break;
            s->skipping = false;
        } else if (!nl) {
            int rc = buf_append(s, p, seg);
            if (rc)
                return rc;
            s->pos += seg;
            break;
        } else {
            int rc;
            s->pos += seg;
            if (s->len == 0) {
                rc = process_line(s, p, seg, line_no, s->line_start);
            } else {
                rc = buf_append(s, p, seg);
                if (rc == 0)
                    rc = process_line(s, s->buf, s->len, line_no, s->line_start);
                s->len = 0;
                buf_shrink(s);
            }
            if (rc) {
                s->line_no++;
                s->pos++;
                s->line_start = s->pos;
                return rc;
            }
        }
        /* p stands on the newline: the line is complete */
        s->line_no++;
        s->pos++;
        s->line_start = s->pos;
        p = nl + 1;
    }
    return ret;
}

int kube_watch_stream_finish(struct kube_watch_stream *s)
{
    if (s->skipping) {
        s->skipping = false;
        return 0; /* already reported as -EMSGSIZE */
    }
    if (s->len == 0)
        return 0;
    uint64_t bad_before = s->stats.bad_lines;
    int rc = process_line(s, s->buf, s->len, s->line_no + 1, s->line_start);
    s->line_no++;
    s->line_start = s->pos;
    s->len = 0;
    buf_shrink(s);
    if (rc)
        return rc;
    return s->stats.bad_lines > bad_before ? -EPIPE : 0;
}

int kube_list_parse(const void *body, size_t len, struct kube_list *out, char *err, size_t errlen)
{
    json_error_t jerr;

    memset(out, 0, sizeof(*out));
    out->remaining_items = -1;
    if (err && errlen)
        err[0] = '\0';
    json_t *root = json_loadb(body, len, 0, &jerr);
    if (!root) {
        if (err)
            snprintf(err, errlen, "list body is not JSON (line %d column %d: %s)", jerr.line,
                     jerr.column, jerr.text);
        return -EINVAL;
    }
    const char *msg = NULL;
    if (!json_is_object(root)) {
        msg = "list body is not a JSON object";
        goto bad;
    }
    const char *kind = obj_str(root, "kind");
    if (kind && strcmp(kind, "Status") == 0) {
        struct kube_status st;
        kube_status_from_json(root, &st);
        if (err)
            snprintf(err, errlen, "list body is a Status (code %ld, reason %s): %s", st.code,
                     st.reason ? st.reason : "-", st.message ? st.message : "-");
        json_decref(root);
        return -EINVAL;
    }
    json_t *meta = json_object_get(root, "metadata");
    if (!json_is_object(meta)) {
        msg = "list body has no \"metadata\" object";
        goto bad;
    }
    out->resource_version = obj_str(meta, "resourceVersion");
    if (!out->resource_version || !out->resource_version[0]) {
        msg = "list body has no \"metadata.resourceVersion\" string";
        goto bad;
    }
    const char *cont = obj_str(meta, "continue");
    out->continue_token = cont && cont[0] ? cont : NULL;
    json_t *rem = json_object_get(meta, "remainingItemCount");
    if (json_is_integer(rem))
        out->remaining_items = (long long)json_integer_value(rem);
    json_t *items = json_object_get(root, "items");
    if (json_is_null(items) || !items) {
        /* Go clients may encode an empty list as null */
        items = json_array();
        if (!items || json_object_set_new(root, "items", items) < 0) {
            json_decref(root);
            return -ENOMEM;
        }
    } else if (!json_is_array(items)) {
        msg = "list body's \"items\" is not an array";
        goto bad;
    }
    out->items = items;
    out->kind = kind;
    out->root = root;
    return 0;
bad:
    if (err)
        snprintf(err, errlen, "%s", msg);
    json_decref(root);
    memset(out, 0, sizeof(*out));
    out->remaining_items = -1;
    return -EINVAL;
}

void kube_list_clear(struct kube_list *l)
{
    if (!l)
        return;
    json_decref(l->root);
    memset(l, 0, sizeof(*l));
    l->remaining_items = -1;
}
