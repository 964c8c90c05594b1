/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kube_client: the exporter's conversation with the Kubernetes API server,
 * on one libuv loop through curl_uv (no thread per watch).
 *
 * A kube_client holds what every request shares: the API URL, TLS
 * settings and the bearer token (re-read from its file at once after a
 * 401, and every minute regardless, because bound service-account tokens
 * rotate). A kube_reflector keeps one kube_store (Services or Nodes) in
 * step with the API server, the way client-go's reflector does:
 *
 *   list   GET PATH?limit=N[&continue=T], page after page into the store
 *          (kube_store_list_*); an expired continue token (410) restarts
 *          the list from the first page.
 *   watch  GET PATH?watch=1&resourceVersion=RV&allowWatchBookmarks=true
 *          &timeoutSeconds=T (T random in [min, max]), the chunked body fed
 *          as it arrives to kube_watch_stream and each event applied to the
 *          store. A clean end re-watches at once from the last RV; a
 *          dropped connection, 5xx or transport error re-watches from the
 *          last RV after a jittered backoff; 429 waits Retry-After; a 410
 *          (ERROR event in the stream, or plain HTTP) or a lost event
 *          (over-long line) relists after a jittered backoff of its own,
 *          reset only by a watch that ended cleanly, so a stream that
 *          keeps losing events cannot cause a relist storm.
 *
 * A list page whose body exceeds max_list_bytes (announced by
 * Content-Length, or found while receiving) is refused without being
 * parsed, logged naming the limit, counted (list_too_large) and listed
 * again after the jittered backoff. Every retry waits for a jittered
 * backoff, except a 401 answered with a changed token, a 429 (which
 * waits its Retry-After), the first restart after an expired continue
 * token, and a stall retry: a list page or watch that timed out while
 * this process itself could not act for a large part of it (stopped,
 * starved; loop_lag_own_fault) is sent again at once, once (the same page, or a
 * watch from the last RV), counted in stall_retries and not as an API
 * failure.
 *
 * The reflector tells its owner when the store's content changed, so the
 * owner can rebuild (coalesced) and write.
 */
#ifndef DROVER_EXPORTER_KUBE_CLIENT_H
#define DROVER_EXPORTER_KUBE_CLIENT_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "curl_uv.h"
#include "kube_store.h"
#include "kube_watch_stream.h"

#define KUBE_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

struct loop_lag;

struct kube_client_config {
    const char *api_url;        /* "https://10.0.0.1:443"; no trailing path */
    const char *token_file;     /* bearer token file; NULL = no Authorization */
    const char *ca_file;        /* PEM CA bundle; NULL = system store */
    bool insecure_skip_tls;     /* only when asked explicitly */
    unsigned page_limit;        /* list page size; 0 = 500 */
    unsigned watch_min_s;       /* timeoutSeconds range; 0 = 300 */
    unsigned watch_max_s;       /* 0 = 600 */
    unsigned token_reread_s;    /* 0 = 60 */
    unsigned backoff_base_ms;   /* 0 = 250 */
    unsigned backoff_cap_ms;    /* 0 = 30000 */
    unsigned request_timeout_s; /* one list page; 0 = 60 */
    size_t max_list_bytes;      /* one list page's body; 0 = 64 MiB */
    /* The loop's stall measurement (loop_lag.h), shared with the other
     * modules on the loop; the client keeps a reference. NULL: the client
     * measures the loop itself. */
    struct loop_lag *loop_lag;
};

/* In-cluster defaults: api_url from KUBERNETES_SERVICE_HOST/PORT (IPv6
 * hosts bracketed) into url_buf, token and CA from KUBE_SA_DIR, for the
 * fields that are NULL. -ENOENT (with a log line) when not in a cluster
 * and no URL was given. */
int kube_client_config_in_cluster(struct kube_client_config *cfg, char *url_buf, size_t url_len);

struct kube_client;

/* Reads the token file once (an unreadable file is an error: -errno).
 * Strings of cfg are copied. */
int kube_client_new(uv_loop_t *loop, struct curl_uv *cu, const struct kube_client_config *cfg,
                    struct kube_client **out);
/* Stop every reflector first. Frees asynchronously (the loop must run). */
void kube_client_free(struct kube_client *kc);
/* Re-read the token file now. 1 if it changed, 0 if not, -errno (the
 * previous token is kept). */
int kube_client_reload_token(struct kube_client *kc);
uint64_t kube_client_token_reloads(const struct kube_client *kc);

struct kube_reflector_stats {
    uint64_t lists;            /* complete lists (first one included) */
    uint64_t relists;          /* lists after the first (410, lost events) */
    uint64_t list_restarts;    /* lists restarted (expired continue, errors) */
    uint64_t pages;            /* list pages received */
    uint64_t watches;          /* watch requests started */
    uint64_t watch_restarts;   /* re-watches after a watch ended for any reason */
    uint64_t events[5];        /* by enum kube_event_type */
    uint64_t expired;          /* 410s seen (event, HTTP, continue) */
    uint64_t unauthorized;     /* 401s */
    uint64_t throttled;        /* 429s */
    uint64_t server_errors;    /* other non-2xx answers */
    uint64_t transport_errors; /* connection failures, drops, timeouts */
    uint64_t list_too_large;   /* list pages refused for their size, unparsed */
    uint64_t stall_retries;    /* timed out during our own stall, sent again */
    uint64_t outages;          /* failures after answers (logged once each, outage.h) */
};

/* Store content changed (a list ended with changes, or an event changed
 * it); also called with changed=false when a list completes without
 * changes, since completeness may have changed. */
typedef void (*kube_reflector_change_cb)(void *arg, bool changed);

struct kube_reflector;

/* path: "/api/v1/services" or "/api/v1/nodes"; the store is borrowed
 * and must outlive the reflector. */
int kube_reflector_new(struct kube_client *kc, const char *path, struct kube_store *store,
                       kube_reflector_change_cb cb, void *arg, struct kube_reflector **out);
/* Start listing (then watching). */
void kube_reflector_start(struct kube_reflector *r);
/* Relist now (e.g. operator request); no-op while a list is running. */
void kube_reflector_relist(struct kube_reflector *r);
/* Cancel everything and free (asynchronously: the loop must run). */
void kube_reflector_free(struct kube_reflector *r);
const struct kube_reflector_stats *kube_reflector_stats(const struct kube_reflector *r);
/* True once a list has completed at least once. */
bool kube_reflector_synced(const struct kube_reflector *r);
/* True while a watch stream is open (200 received). */
bool kube_reflector_watching(const struct kube_reflector *r);

#endif
