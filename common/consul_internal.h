/* SPDX-License-Identifier: Apache-2.0 */
/*
 * consul_internal: the request machinery shared by the files of the
 * Consul client (consul_client.c, consul_txn.c, consul_watch.c). Not a
 * public header: daemons include consul.h only.
 */
#ifndef DROVER_CONSUL_INTERNAL_H
#define DROVER_CONSUL_INTERNAL_H

#include "consul.h"
#include "curl_uv.h"

enum consul_req_kind {
    CONSUL_REQ_NONE,    /* body ignored (session renew/destroy) */
    CONSUL_REQ_KV_ONE,  /* KV list, 404 = not found */
    CONSUL_REQ_KV_LIST, /* KV list, 404 = empty */
    CONSUL_REQ_KEYS,    /* key list, 404 = empty */
    CONSUL_REQ_BOOL,    /* true/false */
    CONSUL_REQ_SESSION, /* {"ID": ...} */
    CONSUL_REQ_HEALTH,  /* health list */
    CONSUL_REQ_TXN,     /* txn answer, 409 parsed too (into req->txn_acc) */
};

struct consul_watch;

struct consul_request {
    struct consul_client *c;
    struct consul_request *next, *prev;
    CURL *easy;
    struct curl_slist *headers;
    struct curl_slist *connect_to_list; /* CURLOPT_CONNECT_TO */
    struct curl_uv_buf body;
    char method[8];
    char *path; /* "/v1/kv/a?recurse" for messages and the URL */
    char *payload;
    size_t payload_len;
    enum consul_req_kind kind;
    long timeout_ms;
    uint64_t index;  /* X-Consul-Index of the answer */
    bool index_seen; /* the answer carried X-Consul-Index (Consul's 404s do) */
    bool token_retried;
    bool stall_retried;       /* sent again after a timeout this process caused */
    uint64_t stall_at_start;  /* loop_lag_stalled_ms() when it was (re)sent */
    bool stale;               /* sent with ?stale: check the answer's staleness */
    bool blocking;            /* a blocking query (index > 0): no latency observed */
    bool known_leader;        /* X-Consul-KnownLeader of the answer (true when absent) */
    uint64_t last_contact_ms; /* X-Consul-LastContact of the answer */
    /* KV watch answers: parsed against the watch's last value (prev_kv,
     * prev_text, may be NULL), the answer's text stored in *text_out;
     * text_out NULL: plain parse */
    const struct consul_kv_list *prev_kv;
    const struct consul_kv_text *prev_text;
    struct consul_kv_text **text_out;
    /* txn: accumulator and the op offset of this batch */
    struct consul_txn_result *txn_acc;
    size_t txn_base;
    consul_cb cb;
    void *arg;
    char errmsg[1024];
};

struct consul_client {
    uv_loop_t *loop;
    struct curl_uv *cu;
    struct loop_lag *lag; /* a timeout after our own stall is not Consul's */
    char *base_url;       /* scheme://host:port used in URLs */
    char *connect_to;     /* CURLOPT_CONNECT_TO entry when verifying another name */
    char *token_file;
    char *token;
    char *ca_file;
    char *datacenter;
    unsigned request_timeout_ms;
    unsigned token_reread_s;
    unsigned max_stale_ms;
    bool no_gzip;
    uint64_t token_read_at; /* uv_now() of the last read */
    struct consul_request *reqs;
    struct consul_watch *watches;
    struct consul_stats stats;
    struct metrics_histogram *latency; /* consul_client_observe_latency; may be NULL */
};

/* Start a request. path_query is "/v1/..." (with its own query string);
 * ?dc= is appended when configured. payload is copied. timeout_ms 0 uses
 * the client's request timeout. On success *out (may be NULL) is the
 * request, valid until its callback has run or consul_req_cancel(). */
int consul_req_start(struct consul_client *c, const char *method, const char *path_query,
                     const void *payload, size_t payload_len, enum consul_req_kind kind,
                     long timeout_ms, consul_cb cb, void *arg, struct consul_request **out);
/* A read that may be answered by any server (?stale appended) when the
 * client allows stale reads; an answer staler than max_stale_ms is
 * re-read in the default mode before the callback sees it. Otherwise as
 * consul_req_start. */
int consul_req_start_stale(struct consul_client *c, const char *path_query,
                           enum consul_req_kind kind, long timeout_ms, consul_cb cb, void *arg,
                           struct consul_request **out);
/* Drop a request silently (its callback never runs). */
void consul_req_cancel(struct consul_request *r);

/* Append key, percent-encoding everything but unreserved characters and
 * '/', to a malloc'ed "/v1/<area>/" prefix. NULL on ENOMEM. */
char *consul_path(const char *area, const char *key, const char *query);

/* Watches are tracked by the client so consul_client_free() stops them. */
void consul_watch_detach_all(struct consul_client *c);

#endif
