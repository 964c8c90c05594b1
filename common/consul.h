/* SPDX-License-Identifier: Apache-2.0 */
/*
 * consul: asynchronous Consul HTTP API client on a libuv loop (libcurl
 * multi through curl_uv, keep-alive connections, no threads). Owns the
 * whole conversation with Consul for every drover daemon: KV reads and
 * writes (cas, acquire/release), /v1/txn in batches of 64 (optionally
 * each fenced by guard ops such as check-session), sessions and
 * locks, health service queries, and blocking-query watches on a KV
 * prefix or a health service (struct consul_watch) that survive Consul
 * outages while keeping the last delivered value.
 *
 * Conventions:
 *  - Every operation returns 0 when the request was started (the callback
 *    will run exactly once, on the loop, never from inside the call) or a
 *    negative errno when it could not be started (no callback).
 *  - Callbacks get a struct consul_response. On failure resp->err is a
 *    negative errno and resp->errmsg names method, path, HTTP status and
 *    Consul's body, e.g. "consul: PUT /v1/kv/a?cas=3: HTTP 500: rpc error".
 *    errno mapping: transport -ECONNREFUSED/-ETIMEDOUT/-EHOSTUNREACH/-EIO,
 *    TLS -EPROTO, 400 -EINVAL, 401/403 -EACCES, 404 -ENOENT (reads: not an
 *    error, see found, when the 404 carries X-Consul-Index as Consul's do;
 *    a read's 404 without it is -EBADMSG: not Consul, never "no keys"),
 *    409 -ECANCELED (txn rolled back), 413 -E2BIG, 429 -EBUSY, 5xx -EIO,
 *    unparsable body -EBADMSG.
 *  - Everything a response points to belongs to the client and is freed
 *    when the callback returns, except resp->kv / resp->health of a plain
 *    (non-watch) read, which the callback may take by setting the field
 *    to NULL and freeing it later with consul_kv_list_free() /
 *    consul_health_list_free().
 *  - Nothing here aborts on runtime failure.
 *
 * The response parsers are public (consul_parse_*) so that unit tests and
 * the fuzz target tests/fuzz/common/fuzz_consul_response.c exercise them
 * without a network.
 */
#ifndef DROVER_CONSUL_H
#define DROVER_CONSUL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* Consul 1.8 rejects transactions with more than 64 operations. */
#define CONSUL_TXN_MAX_OPS 64
/* Blocking query wait: default and Consul's maximum. */
#define CONSUL_WAIT_DEFAULT_S 300
#define CONSUL_WAIT_MAX_S     600

struct consul_client;
struct consul_watch;

struct consul_config {
    const char *address;         /* "http://127.0.0.1:8500" (default), "https://h:8501" */
    const char *token_file;      /* ACL token, sent as X-Consul-Token; NULL: none */
    const char *token;           /* the token itself, used when token_file is NULL */
    const char *ca_file;         /* PEM bundle for https; NULL: system store */
    const char *tls_server_name; /* name to verify instead of the address' host */
    const char *datacenter;      /* ?dc= on every request; NULL: agent's own */
    unsigned request_timeout_ms; /* non-blocking requests; 0: 10000 */
    unsigned token_reread_s;     /* re-read token_file this often; 0: 60 */
    /* Blocking-query watches read with ?stale (any server answers, not
     * only the raft leader) while the answering server heard from the
     * leader at most this long ago (X-Consul-LastContact) and knows one
     * (X-Consul-KnownLeader); a staler answer is dropped and that read
     * is sent again in the default (leader) mode. 0: no stale reads. */
    unsigned max_stale_ms;
    bool no_gzip; /* do not ask for gzip bodies (benchmarks measure the difference) */
    /* The loop's stall measurement (loop_lag.h), shared with the other
     * modules on the loop; the client keeps a reference. NULL: the client
     * measures the loop itself (a program with no other such module). */
    struct loop_lag *loop_lag;
};

/* Counters for metrics (drover_<daemon>_consul_<field>_total). */
struct consul_stats {
    uint64_t requests;         /* HTTP requests started */
    uint64_t errors;           /* requests answered with an error */
    uint64_t retries;          /* watch retries after an error */
    uint64_t index_resets;     /* watch index went backwards or was 0 */
    uint64_t token_reloads;    /* token file read and changed */
    uint64_t watch_wakeups;    /* blocking query answers */
    uint64_t watch_unchanged;  /* wake-ups whose content was unchanged */
    uint64_t watch_deliveries; /* changes delivered to on_change */
    uint64_t stale_retries;    /* stale answers over max_stale_ms, re-read from the leader */
    uint64_t stall_retries;    /* reads timed out while this process stalled, sent again */
    uint64_t stale_behind;   /* stale watch answers older than data held, re-read from the leader */
    uint64_t bytes_received; /* bytes on the wire from Consul: headers + (compressed) bodies */
    uint64_t watch_entries_parsed; /* KV watch answers: entries parsed */
    uint64_t watch_entries_reused; /* ... and entries copied, their text unchanged */
    uint64_t outages;              /* watches that began failing (logged once, outage.h) */
};

/* One KV entry. value is decoded from base64 and NUL-terminated (the NUL
 * is not counted in value_len); NULL when the key has no value. */
struct consul_kv {
    char *key;
    unsigned char *value;
    size_t value_len;
    uint64_t flags;
    uint64_t create_index;
    uint64_t modify_index;
    uint64_t lock_index;
    char *session; /* lock holder, NULL if none */
};

struct consul_kv_list {
    struct consul_kv *items;
    size_t n;
};

struct consul_key_list {
    char **keys;
    size_t n;
};

enum consul_health_status {
    CONSUL_HEALTH_PASSING = 0,
    CONSUL_HEALTH_WARNING = 1,
    CONSUL_HEALTH_CRITICAL = 2, /* also maintenance and unknown states */
};

/* One service instance from /v1/health/service/NAME. status is the worst
 * of all its checks (node and service). */
struct consul_health_entry {
    char *node;
    char *node_address;
    char *service_id;
    char *service_name;
    char *service_address; /* "" when the service uses the node address */
    int port;
    char **tags;
    size_t n_tags;
    enum consul_health_status status;
};

struct consul_health_list {
    struct consul_health_entry *items;
    size_t n;
};

enum consul_txn_verb {
    CONSUL_TXN_SET,         /* key = value (flags) */
    CONSUL_TXN_CAS,         /* set if ModifyIndex == index (0: create only) */
    CONSUL_TXN_GET,         /* read key into results; fails if missing */
    CONSUL_TXN_DELETE,      /* delete key */
    CONSUL_TXN_DELETE_CAS,  /* delete if ModifyIndex == index */
    CONSUL_TXN_DELETE_TREE, /* delete every key under the prefix key */
    CONSUL_TXN_CHECK_INDEX, /* fail the txn unless ModifyIndex == index */
    CONSUL_TXN_CHECK_NOT_EXISTS,
    CONSUL_TXN_LOCK,   /* acquire with session */
    CONSUL_TXN_UNLOCK, /* release with session */
    /* Fail the txn unless key is locked by session (a fence: a writer that
     * lost its lock cannot commit). Consul returns the key, value blanked,
     * as a result of the check. */
    CONSUL_TXN_CHECK_SESSION,
};

/* A transaction operation. Strings and value are copied by consul_txn(). */
struct consul_txn_op {
    enum consul_txn_verb verb;
    const char *key;
    const void *value;
    size_t value_len;
    uint64_t flags;
    uint64_t index;
    const char *session;
};

/* One failed operation of a 409 answer; op_index counts from 0 over the
 * whole op array given to consul_txn(), not within its batch. For an
 * error of a guard op (consul_txn_guarded) guard is true and op_index
 * indexes the guard array instead. */
struct consul_txn_error {
    size_t op_index;
    char *what;
    bool guard;
};

struct consul_txn_result {
    size_t ops_total;
    size_t ops_applied; /* ops of the batches that committed */
    size_t batches_total;
    size_t batches_applied; /* batches commit in order; stops at the first failure */
    struct consul_txn_error *errors;
    size_t n_errors;
    /* A guard op failed (consul_txn_guarded): the batch was refused
     * because the guarded condition no longer holds - for a
     * check-session guard, the lock is no longer ours. Not a cas
     * conflict: do not retry blindly. An ACL refusal ("Permission
     * denied") of a guard op does not set it. */
    bool guard_failed;
    /* KV results of committed batches (GET, SET...), in op order; guard
     * ops that return an entry (check-session: the lock key) add it once
     * per committed batch, ahead of that batch's ops. */
    struct consul_kv_list results;
};

struct consul_response {
    int err;              /* 0 or negative errno (see top of file) */
    const char *errmsg;   /* when err != 0 */
    long http_status;     /* 0 when no HTTP answer arrived */
    uint64_t index;       /* X-Consul-Index, 0 if absent */
    bool found;           /* reads: false on Consul's 404 (err stays 0, lists empty) */
    bool ok;              /* put/delete/lock: Consul's true/false */
    bool stale;           /* answered with ?stale by any server: may lag an earlier answer */
    unsigned retry_in_ms; /* watch on_error: when the next attempt runs */
    struct consul_kv_list *kv;
    struct consul_key_list *keys;
    const char *session_id;
    struct consul_txn_result *txn;
    struct consul_health_list *health;
};

typedef void (*consul_cb)(void *arg, struct consul_response *resp);

/* ---- client ---- */

/* Validate cfg (address must be http:// or https://), read the token file
 * (a missing or unreadable file is an error: -errno), create the client
 * on loop. Strings of cfg are copied. */
int consul_client_new(uv_loop_t *loop, const struct consul_config *cfg, struct consul_client **out);
/* Cancel everything still running (callbacks run with -ECANCELED; watches
 * still running are stopped and freed silently, so do not call
 * consul_watch_stop() on them afterwards) and free the client. The loop must
 * run once more for libuv to close the handles. May be called from inside
 * any of the client's callbacks. NULL is a no-op. */
void consul_client_free(struct consul_client *c);
const struct consul_stats *consul_client_stats(const struct consul_client *c);
/* Re-read the token file now (also done periodically and after a 403).
 * 0, or -errno (the previous token is kept). */
int consul_client_reload_token(struct consul_client *c);

struct metrics_emitter;
/* From a daemon's metrics collector (metrics.h): emit every counter of st
 * as drover_<component>_consul_<field>_total. 0 or metrics_emit's error. */
int consul_stats_emit(const struct consul_stats *st, struct metrics_emitter *em,
                      const char *component);

struct metrics_registry;
/* Register drover_<component>_consul_request_duration_seconds in reg (a
 * histogram, metrics_latency_buckets) and make c observe the duration of
 * every HTTP exchange with Consul in it, from the request sent to the
 * answer or the failure; blocking queries that wait for a change are left
 * out (their duration is the wait). 0, -EINVAL or -ENOMEM (nothing
 * observed then). */
int consul_client_observe_latency(struct consul_client *c, struct metrics_registry *reg,
                                  const char *component);

/* ---- KV ---- */

/* GET /v1/kv/KEY: resp->kv has one entry, or found=false. */
int consul_kv_get(struct consul_client *c, const char *key, consul_cb cb, void *arg);
/* GET /v1/kv/PREFIX?recurse: every key under prefix; 404 = empty list. */
int consul_kv_get_prefix(struct consul_client *c, const char *prefix, consul_cb cb, void *arg);
/* GET /v1/kv/PREFIX?keys[&separator=SEP]: resp->keys. */
int consul_kv_keys(struct consul_client *c, const char *prefix, const char *separator, consul_cb cb,
                   void *arg);

enum consul_put_mode {
    CONSUL_PUT_PLAIN = 0,
    CONSUL_PUT_CAS,     /* only if ModifyIndex == cas (0: create only) */
    CONSUL_PUT_ACQUIRE, /* lock with session */
    CONSUL_PUT_RELEASE, /* unlock with session */
};

struct consul_put_opts {
    enum consul_put_mode mode;
    uint64_t cas;
    uint64_t flags;
    const char *session;
};

/* PUT /v1/kv/KEY; resp->ok is Consul's answer (false: cas mismatch or
 * lock held elsewhere). opts may be NULL (plain put, flags 0). */
int consul_kv_put(struct consul_client *c, const char *key, const void *value, size_t len,
                  const struct consul_put_opts *opts, consul_cb cb, void *arg);
/* DELETE /v1/kv/KEY[?recurse][?cas=N] (has_cas selects cas). */
int consul_kv_delete(struct consul_client *c, const char *key, bool recurse, bool has_cas,
                     uint64_t cas, consul_cb cb, void *arg);

/* PUT /v1/txn for any number of ops, split into batches of at most
 * CONSUL_TXN_MAX_OPS sent one after the other. Each batch is atomic on
 * its own; the whole set is NOT: when batch k fails (409 with per-op
 * errors, or any other error) batches 0..k-1 stay applied, later ones
 * are not sent, and resp->txn says how far it got (ops_applied) and
 * which ops failed. resp->txn is always set when n > 0. */
int consul_txn(struct consul_client *c, const struct consul_txn_op *ops, size_t n, consul_cb cb,
               void *arg);
/* consul_txn() with the n_guard ops of guard (1 <= n_guard <
 * CONSUL_TXN_MAX_OPS) put at the head of EVERY batch, so each batch
 * carries at most CONSUL_TXN_MAX_OPS - n_guard of ops and commits only
 * while the guard holds. Typical guard: one CONSUL_TXN_CHECK_SESSION on
 * the leader key with the leader's session, fencing every write of a
 * leader that may have lost its lock. A failed guard shows up as a 409
 * (-ECANCELED) with resp->txn->guard_failed set and errors flagged
 * guard; nothing of that batch is written. op_index, ops_total and
 * ops_applied count ops only, never guard ops. */
int consul_txn_guarded(struct consul_client *c, const struct consul_txn_op *guard, size_t n_guard,
                       const struct consul_txn_op *ops, size_t n, consul_cb cb, void *arg);

/* ---- sessions and locks ---- */

struct consul_session_opts {
    const char *name;
    unsigned ttl_s;        /* 10..86400; 0: no TTL */
    unsigned lock_delay_s; /* Consul's default is 15 s; set explicitly */
    bool lock_delay_set;   /* false: leave Consul's default */
    bool behavior_delete;  /* invalidation deletes held keys (default: release) */
};

/* PUT /v1/session/create: resp->session_id. */
int consul_session_create(struct consul_client *c, const struct consul_session_opts *opts,
                          consul_cb cb, void *arg);
/* PUT /v1/session/renew/ID; consul_session_gone(resp) says whether the
 * session no longer exists (Consul 1.8 answers 404, resp->err -ENOENT). */
int consul_session_renew(struct consul_client *c, const char *id, consul_cb cb, void *arg);
/* The answer to a renewal says the session is gone (expired, destroyed,
 * or Consul restarted without it): make a new one, renewing is futile. */
bool consul_session_gone(const struct consul_response *resp);
int consul_session_destroy(struct consul_client *c, const char *id, consul_cb cb, void *arg);
/* Acquire/release key with session; resp->ok. Consul stores the PUT body
 * in both cases: acquire writes value, release writes an empty value. */
int consul_lock_acquire(struct consul_client *c, const char *key, const char *session,
                        const void *value, size_t len, consul_cb cb, void *arg);
int consul_lock_release(struct consul_client *c, const char *key, const char *session, consul_cb cb,
                        void *arg);

/* ---- health ---- */

/* GET /v1/health/service/NAME[?passing]: resp->health. */
int consul_health_service(struct consul_client *c, const char *service, bool passing_only,
                          consul_cb cb, void *arg);

/* ---- blocking-query watches ---- */

enum consul_watch_kind {
    CONSUL_WATCH_KV_PREFIX,      /* /v1/kv/TARGET?recurse */
    CONSUL_WATCH_HEALTH_SERVICE, /* /v1/health/service/TARGET */
};

struct consul_watch_opts {
    enum consul_watch_kind kind;
    const char *target;
    bool passing_only;     /* health: ?passing */
    unsigned wait_s;       /* 0: 300; capped at 600 */
    unsigned retry_min_ms; /* first retry delay after an error; 0: 250 */
    unsigned retry_max_ms; /* cap; 0: 30000 */
    /* KV: after an answer that is empty and unchanged, wait this long
     * before the next blocking query (0: at once). Consul answers a
     * blocking query on a missing prefix at every write to the KV around
     * it (it watches a node of its radix tree above the prefix), so an
     * empty prefix costs a read per KV write; the pause bounds that to
     * one per pause. A key that appears meanwhile is read when it ends. */
    unsigned empty_pause_ms;
    /* A new value: resp->kv (KV) or resp->health (health), resp->index.
     * The list stays owned by the watch and valid until the next
     * on_change or consul_watch_stop(). */
    consul_cb on_change;
    /* A failed attempt: resp->err, resp->errmsg, resp->retry_in_ms. The
     * last value stays in place (never replaced by an empty one). May be
     * NULL. */
    consul_cb on_error;
    /* Consul's index went backwards under a blocking query (a restart at a
     * lower index, a restored snapshot): the watch reads in full next.
     * resp->index is the new index. May be NULL. */
    consul_cb on_reset;
    void *arg;
};

/* Start watching: a full read first (delivered even when empty), then
 * blocking queries forever, retrying errors with jittered backoff. */
int consul_watch_start(struct consul_client *c, const struct consul_watch_opts *opts,
                       struct consul_watch **out);
/* Stop and free; no callback runs afterwards. Safe inside its callbacks. */
void consul_watch_stop(struct consul_watch *w);
/* Read the target afresh now: a blocking query in flight (or a pause
 * before the next one) is dropped and a full read sent. A watch that
 * already reads in full next (index 0: never answered, or after an error
 * or a reset) is left as it is. Why: a Consul restarted or restored at a
 * lower index answers a blocking query on an old index only when its own
 * index passes it or the wait ends, so a watch that saw no error across
 * the restart keeps its value from before while others read the new
 * tree; a caller that joins several watches re-reads them all when one
 * of them saw the break. */
void consul_watch_reread(struct consul_watch *w);
/* Index the next blocking query will use (0 = full read). */
uint64_t consul_watch_index(const struct consul_watch *w);
/* Last delivered value (NULL before the first delivery). */
const struct consul_kv_list *consul_watch_last_kv(const struct consul_watch *w);
const struct consul_health_list *consul_watch_last_health(const struct consul_watch *w);

/* ---- parsing (no network; used by the client, unit tests, fuzzers) ----
 * Each returns 0 or -EBADMSG/-ENOMEM and on failure writes a message
 * naming what was wrong into err (errlen bytes, may be 0). On success
 * the caller owns *out and frees it with the matching _free(). */

int consul_parse_kv_list(const char *body, size_t len, struct consul_kv_list **out, char *err,
                         size_t errlen);
/*
 * consul_parse_kv_list for a watch that holds the previous answer: prev
 * and prev_text (may be NULL) are the list and the JSON text of each of
 * its entries, as this function returned them last time. An entry whose
 * text is byte for byte one of prev's is copied from prev instead of
 * parsed again (*reused counts them); so a blocking-query answer of 500
 * entries of which one changed parses one. The result is the same as
 * consul_parse_kv_list's, errors included. On success the caller owns
 * *out and *text_out (NULL when the body was parsed whole), freed with
 * consul_kv_list_free() and consul_kv_text_free().
 */
struct consul_kv_text;
int consul_parse_kv_list_delta(const char *body, size_t len, const struct consul_kv_list *prev,
                               const struct consul_kv_text *prev_text, struct consul_kv_list **out,
                               struct consul_kv_text **text_out, size_t *reused, char *err,
                               size_t errlen);
void consul_kv_text_free(struct consul_kv_text *t);
int consul_parse_keys(const char *body, size_t len, struct consul_key_list **out, char *err,
                      size_t errlen);
int consul_parse_health(const char *body, size_t len, struct consul_health_list **out, char *err,
                        size_t errlen);
int consul_parse_session_id(const char *body, size_t len, char **out, char *err, size_t errlen);
/* Parse a /v1/txn answer (200 or 409) and append to acc: results and
 * errors (OpIndex shifted by op_base). */
int consul_parse_txn(const char *body, size_t len, size_t op_base, struct consul_txn_result *acc,
                     char *err, size_t errlen);
/* "true"/"false" bodies of KV PUT/DELETE. */
int consul_parse_bool(const char *body, size_t len, bool *out);
/* A header value of X-Consul-Index (digits, surrounding blanks). */
int consul_parse_index(const char *text, size_t len, uint64_t *out);
/* Standard base64 with padding; *out NUL-terminated, caller frees. */
int consul_base64_decode(const char *in, size_t len, unsigned char **out, size_t *out_len);
/* Encode the JSON body of one /v1/txn batch (n <= CONSUL_TXN_MAX_OPS);
 * *out is malloc'ed, NUL-terminated. 0, -EINVAL or -ENOMEM. */
int consul_txn_encode(const struct consul_txn_op *ops, size_t n, char **out);

/* Content hashes used to suppress spurious wake-ups: key, value, flags
 * and session (KV); node, addresses, port, tags, status (health). Index
 * fields are not hashed. */
uint64_t consul_kv_list_hash(const struct consul_kv_list *l);
uint64_t consul_health_list_hash(const struct consul_health_list *l);

void consul_kv_list_free(struct consul_kv_list *l);         /* frees items and l */
void consul_key_list_free(struct consul_key_list *l);       /* frees keys and l */
void consul_health_list_free(struct consul_health_list *l); /* frees items and l */
void consul_txn_result_clear(struct consul_txn_result *r);  /* frees contents only */

#endif
