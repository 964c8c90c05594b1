/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kube_watch_stream: the Kubernetes API's response bodies, without any I/O.
 *
 * - A watch body (`?watch=1`) is a stream of JSON objects, one per line:
 *   {"type":"ADDED|MODIFIED|DELETED|BOOKMARK|ERROR","object":{...}}.
 *   kube_watch_stream takes the bytes exactly as libcurl delivers them
 *   (split anywhere: inside a line, inside a UTF-8 sequence) and calls back
 *   once per complete event. A line that is not a valid event is logged
 *   with its line number and byte offset, counted, and skipped; parsing
 *   goes on with the next line. A line longer than the limit is discarded
 *   up to its newline and reported as -EMSGSIZE (an event was lost: the
 *   caller should relist).
 * - A list body (ServiceList, NodeList): items, metadata.resourceVersion,
 *   metadata.continue.
 * - A Status object, as returned with non-2xx codes and inside ERROR
 *   events (code 410 / reason Expired = resourceVersion too old: relist).
 */
#ifndef DROVER_EXPORTER_KUBE_WATCH_STREAM_H
#define DROVER_EXPORTER_KUBE_WATCH_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* Default limit for one watch line: far above any real object (etcd's
 * request limit is 1.5 MiB) yet bounded. */
#define KUBE_WATCH_DEFAULT_MAX_LINE (16u * 1024 * 1024)

enum kube_event_type {
    KUBE_EVENT_ADDED,
    KUBE_EVENT_MODIFIED,
    KUBE_EVENT_DELETED,
    KUBE_EVENT_BOOKMARK,
    KUBE_EVENT_ERROR,
};

/* A metav1.Status. Strings point into `root` (owned, from
 * kube_status_parse) or into the event object (borrowed, in an event). */
struct kube_status {
    long code;           /* 0 when absent */
    const char *status;  /* "Failure"/"Success" or NULL */
    const char *reason;  /* "Expired", "Gone", "Unauthorized", ... or NULL */
    const char *message; /* or NULL */
    json_t *root;        /* owned only when filled by kube_status_parse */
};

struct kube_event {
    enum kube_event_type type;
    /* The event's object (a Service, Node, or Status for ERROR); borrowed
     * for the duration of the callback: json_incref() it to keep it. */
    json_t *object;
    /* object.metadata.resourceVersion, or NULL (borrowed like object). */
    const char *resource_version;
    /* For ERROR events whose object is a Status; code 0 otherwise. */
    struct kube_status status;
    uint64_t line_no; /* 1-based line of the stream */
};

/* Called once per complete event, in stream order. Return 0 to continue;
 * a negative errno stops kube_watch_stream_feed, which returns it (the
 * rest of that chunk is dropped: reset or discard the stream). */
typedef int (*kube_watch_event_cb)(const struct kube_event *ev, void *arg);

struct kube_watch_stats {
    uint64_t lines;           /* complete lines seen, blank ones included */
    uint64_t events;          /* events delivered */
    uint64_t bad_lines;       /* invalid JSON or not an event: skipped */
    uint64_t oversized_lines; /* longer than max_line: discarded */
    uint64_t bytes;           /* bytes fed */
};

struct kube_watch_stream;

/* max_line 0 = KUBE_WATCH_DEFAULT_MAX_LINE. Returns NULL on ENOMEM.
 * `name` (copied) names the stream in log lines, e.g. "services". */
struct kube_watch_stream *kube_watch_stream_new(const char *name, size_t max_line,
                                                kube_watch_event_cb cb, void *arg);
void kube_watch_stream_free(struct kube_watch_stream *s);

/* Feed the next chunk. Returns 0; -EMSGSIZE if a line exceeded the limit
 * (reported once per such line; parsing continues after its newline);
 * -ENOMEM; or the callback's negative return. */
int kube_watch_stream_feed(struct kube_watch_stream *s, const void *data, size_t len);

/* End of body. Bytes after the last newline are a truncated line: parsed
 * if they form a complete event (lenient), otherwise counted as a bad
 * line. Returns like feed, or -EPIPE when a truncated line was dropped. */
int kube_watch_stream_finish(struct kube_watch_stream *s);

/* Forget buffered bytes and line numbering (new connection). Stats stay. */
void kube_watch_stream_reset(struct kube_watch_stream *s);

/* Bytes of an incomplete line currently buffered. */
size_t kube_watch_stream_pending(const struct kube_watch_stream *s);

const struct kube_watch_stats *kube_watch_stream_stats(const struct kube_watch_stream *s);

const char *kube_event_type_name(enum kube_event_type t);
/* "ADDED" -> KUBE_EVENT_ADDED; -EINVAL for anything else. */
int kube_event_type_parse(const char *text, enum kube_event_type *out);

/* A list response (kind ends in "List"). Strings point into root. */
struct kube_list {
    json_t *root;                 /* owned */
    json_t *items;                /* borrowed from root; always an array */
    const char *kind;             /* e.g. "ServiceList", or NULL */
    const char *resource_version; /* metadata.resourceVersion (required) */
    const char *continue_token;   /* metadata.continue, NULL when last page */
    long long remaining_items;    /* metadata.remainingItemCount or -1 */
};

/* Parse a 200 list body. -EINVAL with a message in err (naming the field)
 * when the body is not JSON, is a Status, or lacks items/resourceVersion.
 * Items that are not objects are left for the caller to skip. */
int kube_list_parse(const void *body, size_t len, struct kube_list *out, char *err, size_t errlen);
void kube_list_clear(struct kube_list *l);

/* Parse a Status body (non-2xx answers). -EINVAL if the body is not a
 * JSON object with kind "Status" (then *out is zeroed: callers fall back
 * to the HTTP code). */
int kube_status_parse(const void *body, size_t len, struct kube_status *out);
void kube_status_clear(struct kube_status *st);

/* Fill st from a Status object (borrowed strings). -EINVAL if obj is not
 * a Status. */
int kube_status_from_json(const json_t *obj, struct kube_status *st);

/* True when the status says the resourceVersion (or continue token) is too
 * old: code 410, or reason "Expired"/"Gone". The caller must relist. */
bool kube_status_is_expired(const struct kube_status *st);

#endif
