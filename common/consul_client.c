/* SPDX-License-Identifier: Apache-2.0 */
/*
 * consul_client: the client object (address, TLS, ACL token), the generic
 * HTTP request path on curl_uv (headers, X-Consul-Index, timeouts, error
 * messages and errno mapping, one transparent retry after a 403 when the
 * token file changed) and the simple endpoints: KV, sessions, locks,
 * health. Transactions are in consul_txn.c, watches in consul_watch.c.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "consul_internal.h"
#include "metrics.h"
#include "log.h"
#include "loop_lag.h"

#define DEFAULT_ADDRESS    "http://127.0.0.1:8500"
#define DEFAULT_TIMEOUT_MS 10000
#define DEFAULT_REREAD_S   60
#define ERRBODY_MAX        300 /* bytes of Consul's error body kept in messages */

/* ---- token ---- */

static int read_token(const char *file, char **out)
{
    char buf[4096];
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    int saved = errno;
    close(fd);
    if (n < 0)
        return -saved;
    buf[n] = '\0';
    /* trim surrounding whitespace: token files usually end with \n */
    char *s = buf;
    while (*s && isspace((unsigned char)*s))
        s++;
    size_t len = strlen(s);
    while (len && isspace((unsigned char)s[len - 1]))
        s[--len] = '\0';
    for (size_t i = 0; i < len; i++) {
        if (!isprint((unsigned char)s[i]))
            return -EINVAL; /* would break the header */
    }
    *out = strdup(s);
    return *out ? 0 : -ENOMEM;
}

int consul_client_reload_token(struct consul_client *c)
{
    if (!c->token_file)
        return 0;
    char *tok = NULL;
    c->token_read_at = uv_now(c->loop);
    int rc = read_token(c->token_file, &tok);
    if (rc) {
        log_warn("consul: reading token file %s: %s, keeping the previous token", c->token_file,
                 strerror(-rc));
        return rc;
    }
    if (!c->token || strcmp(tok, c->token) != 0) {
        if (c->token)
            log_info("consul: token file %s changed, using the new token", c->token_file);
        c->stats.token_reloads++;
        free(c->token);
        c->token = tok;
        return 0;
    }
    free(tok);
    return 0;
}

/* ---- address ---- */

/* Split "scheme://host[:port][/]" into base URL and, with tls_server_name,
 * a CONNECT_TO entry so curl connects to host but verifies the name. */
static int parse_address(struct consul_client *c, const char *addr, const char *server_name)
{
    const char *scheme = "http";
    const char *rest = addr;
    if (strncmp(addr, "http://", 7) == 0) {
        rest = addr + 7;
    } else if (strncmp(addr, "https://", 8) == 0) {
        scheme = "https";
        rest = addr + 8;
    } else if (strstr(addr, "://")) {
        log_error("consul: address %s: scheme must be http or https, client not created", addr);
        return -EINVAL;
    }
    size_t len = strcspn(rest, "/");
    if (len == 0 || (rest[len] && strcmp(rest + len, "/") != 0)) {
        log_error("consul: address %s: expected scheme://host[:port], client not created", addr);
        return -EINVAL;
    }
    char host[256], port[16];
    const char *colon;
    if (rest[0] == '[') {
        const char *close = memchr(rest, ']', len);
        if (!close || (size_t)(close - rest + 1) >= sizeof(host)) {
            log_error("consul: address %s: bad IPv6 literal, client not created", addr);
            return -EINVAL;
        }
        snprintf(host, sizeof(host), "%.*s", (int)(close - rest + 1), rest);
        colon = close[1] == ':' ? close + 1 : NULL;
    } else {
        colon = memchr(rest, ':', len);
        size_t hl = colon ? (size_t)(colon - rest) : len;
        if (hl == 0 || hl >= sizeof(host)) {
            log_error("consul: address %s: bad host, client not created", addr);
            return -EINVAL;
        }
        snprintf(host, sizeof(host), "%.*s", (int)hl, rest);
    }
    if (colon) {
        size_t pl = len - (size_t)(colon + 1 - rest);
        if (pl == 0 || pl >= sizeof(port) || strspn(colon + 1, "0123456789") < pl) {
            log_error("consul: address %s: bad port, client not created", addr);
            return -EINVAL;
        }
        snprintf(port, sizeof(port), "%.*s", (int)pl, colon + 1);
    } else {
        /* Consul's conventional ports, not the URL scheme's. */
        snprintf(port, sizeof(port), "%s", strcmp(scheme, "https") == 0 ? "8501" : "8500");
    }
    const char *url_host = host;
    if (server_name && *server_name && strcmp(scheme, "https") == 0) {
        url_host = server_name;
        if (asprintf(&c->connect_to, "%s:%s:%s:%s", server_name, port, host, port) < 0)
            return -ENOMEM;
    }
    if (asprintf(&c->base_url, "%s://%s:%s", scheme, url_host, port) < 0)
        return -ENOMEM;
    return 0;
}

/* ---- client ---- */

int consul_client_new(uv_loop_t *loop, const struct consul_config *cfg, struct consul_client **out)
{
    int rc = -ENOMEM;
    struct consul_client *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->loop = loop;
    c->request_timeout_ms = cfg->request_timeout_ms ? cfg->request_timeout_ms : DEFAULT_TIMEOUT_MS;
    c->token_reread_s = cfg->token_reread_s ? cfg->token_reread_s : DEFAULT_REREAD_S;
    c->max_stale_ms = cfg->max_stale_ms;
    c->no_gzip = cfg->no_gzip;
    if ((cfg->token_file && !(c->token_file = strdup(cfg->token_file))) ||
        (cfg->ca_file && !(c->ca_file = strdup(cfg->ca_file))) ||
        (cfg->datacenter && !(c->datacenter = strdup(cfg->datacenter))) ||
        (!cfg->token_file && cfg->token && !(c->token = strdup(cfg->token))))
        goto fail;
    rc = parse_address(c, cfg->address ? cfg->address : DEFAULT_ADDRESS, cfg->tls_server_name);
    if (rc)
        goto fail;
    if (c->token_file) {
        rc = read_token(c->token_file, &c->token);
        if (rc) {
            log_error("consul: reading token file %s: %s, client not created", c->token_file,
                      strerror(-rc));
            goto fail;
        }
        c->token_read_at = uv_now(loop);
    }
    rc = curl_uv_new(loop, &c->cu);
    if (rc)
        goto fail;
    if (cfg->loop_lag) {
        c->lag = loop_lag_ref(cfg->loop_lag);
    } else if ((rc = loop_lag_new(loop, &c->lag)) < 0) {
        curl_uv_free(c->cu);
        goto fail;
    }
    *out = c;
    return 0;
fail:
    free(c->token_file);
    free(c->token);
    free(c->ca_file);
    free(c->datacenter);
    free(c->base_url);
    free(c->connect_to);
    free(c);
    return rc;
}

const struct consul_stats *consul_client_stats(const struct consul_client *c)
{
    return &c->stats;
}

static void req_unlink(struct consul_request *r)
{
    struct consul_client *c = r->c;
    if (r->prev)
        r->prev->next = r->next;
    else if (c->reqs == r)
        c->reqs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->next = r->prev = NULL;
}

static void req_free(struct consul_request *r)
{
    if (r->easy)
        curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->headers);
    curl_slist_free_all(r->connect_to_list);
    curl_uv_buf_free(&r->body);
    free(r->path);
    free(r->payload);
    free(r);
}

void consul_req_cancel(struct consul_request *r)
{
    if (!r)
        return;
    curl_uv_remove(r->c->cu, r->easy);
    req_unlink(r);
    req_free(r);
}

void consul_client_free(struct consul_client *c)
{
    if (!c)
        return;
    consul_watch_detach_all(c);
    while (c->reqs) {
        struct consul_request *r = c->reqs;
        curl_uv_remove(c->cu, r->easy);
        req_unlink(r);
        struct consul_response resp = {.err = -ECANCELED};
        snprintf(r->errmsg, sizeof(r->errmsg), "consul: %s %s: cancelled, client shut down",
                 r->method, r->path);
        resp.errmsg = r->errmsg;
        r->c = NULL;
        if (r->cb)
            r->cb(r->arg, &resp);
        req_free(r);
    }
    curl_uv_free(c->cu);
    loop_lag_unref(c->lag);
    free(c->token_file);
    free(c->token);
    free(c->ca_file);
    free(c->datacenter);
    free(c->base_url);
    free(c->connect_to);
    free(c);
}

/* ---- requests ---- */

/* The value of header line buf (len bytes) if its name is name (with
 * the colon, lower case), else NULL; *vlen is the value's length. */
static const char *header_value(const char *buf, size_t len, const char *name, size_t *vlen)
{
    size_t n = strlen(name);
    if (len <= n || strncasecmp(buf, name, n) != 0)
        return NULL;
    *vlen = len - n;
    return buf + n;
}

static size_t on_header(char *buf, size_t size, size_t n, void *userdata)
{
    struct consul_request *r = userdata;
    size_t len = size * n, vlen;
    const char *v;
    uint64_t num;
    if (len > 5 && strncmp(buf, "HTTP/", 5) == 0) {
        r->index = 0; /* a new response (after 100-continue or a redirect) */
        r->index_seen = false;
        r->known_leader = true;
        r->last_contact_ms = 0;
    } else if ((v = header_value(buf, len, "x-consul-index:", &vlen))) {
        if (consul_parse_index(v, vlen, &num) == 0) {
            r->index = num;
            r->index_seen = true;
        }
    } else if ((v = header_value(buf, len, "x-consul-lastcontact:", &vlen))) {
        /* milliseconds since the answering server heard from the leader;
         * unparsable counts as infinitely stale */
        r->last_contact_ms = consul_parse_index(v, vlen, &num) == 0 ? num : UINT64_MAX;
    } else if ((v = header_value(buf, len, "x-consul-knownleader:", &vlen))) {
        while (vlen && (*v == ' ' || *v == '\t'))
            v++, vlen--;
        r->known_leader = vlen >= 4 && strncasecmp(v, "true", 4) == 0;
    }
    return len;
}

static int setup_easy(struct consul_request *r)
{
    struct consul_client *c = r->c;
    char *url = NULL;
    if (asprintf(&url, "%s%s", c->base_url, r->path) < 0)
        return -ENOMEM;
    r->stall_at_start = loop_lag_stalled_ms(c->lag);
    if (!r->easy)
        r->easy = curl_easy_init();
    else
        curl_easy_reset(r->easy);
    if (!r->easy) {
        free(url);
        return -ENOMEM;
    }
    curl_slist_free_all(r->headers);
    r->headers = NULL;
    struct curl_slist *h = curl_slist_append(NULL, "Accept: application/json");
    if (h && r->payload)
        h = curl_slist_append(h, "Content-Type: application/json");
    if (h)
        h = curl_slist_append(h, "Expect:"); /* no 100-continue round trip */
    if (h && c->token) {
        char *line = NULL;
        if (asprintf(&line, "X-Consul-Token: %s", c->token) < 0) {
            curl_slist_free_all(h);
            h = NULL;
        } else {
            struct curl_slist *h2 = curl_slist_append(h, line);
            free(line);
            if (!h2)
                curl_slist_free_all(h);
            h = h2;
        }
    }
    if (!h) {
        free(url);
        return -ENOMEM;
    }
    r->headers = h;
    CURL *e = r->easy;
    curl_easy_setopt(e, CURLOPT_URL, url);
    free(url); /* libcurl copies the URL */
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r->method);
    if (strcmp(r->method, "PUT") == 0 || r->payload) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->payload ? r->payload : "");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->payload_len);
    }
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, curl_uv_buf_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &r->body);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, r->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    /* Every encoding curl decodes ("": gzip/deflate at least); Consul
     * gzips bodies over a few hundred bytes, a prefix read 40x smaller. */
    if (!c->no_gzip)
        curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    if (c->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_file);
    if (c->connect_to) {
        curl_slist_free_all(r->connect_to_list);
        r->connect_to_list = curl_slist_append(NULL, c->connect_to);
        if (!r->connect_to_list)
            return -ENOMEM;
        curl_easy_setopt(e, CURLOPT_CONNECT_TO, r->connect_to_list);
    }
    curl_uv_buf_reset(&r->body);
    r->index = 0;
    r->index_seen = false;
    r->known_leader = true;
    r->last_contact_ms = 0;
    return 0;
}

static int curl_to_errno(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_CONNECT:
        return -ECONNREFUSED;
    case CURLE_OPERATION_TIMEDOUT:
        return -ETIMEDOUT;
    case CURLE_COULDNT_RESOLVE_HOST:
        return -EHOSTUNREACH;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
        return -EPROTO;
    case CURLE_OUT_OF_MEMORY:
        return -ENOMEM;
    case CURLE_WRITE_ERROR:
        return -EFBIG; /* body above the buffer cap */
    default:
        return -EIO;
    }
}

static int http_to_errno(long status)
{
    switch (status) {
    case 400:
        return -EINVAL;
    case 401:
    case 403:
        return -EACCES;
    case 404:
        return -ENOENT;
    case 409:
        return -ECANCELED;
    case 413:
        return -E2BIG;
    case 429:
        return -EBUSY;
    default:
        return -EIO;
    }
}

/* Consul's error body, one line, at most ERRBODY_MAX bytes. */
static void body_excerpt(const struct curl_uv_buf *b, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; b->data && i < b->len && o + 1 < outlen && i < ERRBODY_MAX; i++) {
        char ch = b->data[i];
        out[o++] = (ch == '\n' || ch == '\r' || ch == '\t') ? ' ' : ch;
    }
    while (o && out[o - 1] == ' ')
        o--;
    out[o] = '\0';
}

static bool is_read(enum consul_req_kind k)
{
    return k == CONSUL_REQ_KV_ONE || k == CONSUL_REQ_KV_LIST || k == CONSUL_REQ_KEYS ||
           k == CONSUL_REQ_HEALTH;
}

/* Parse a 200 answer (or an empty result for 404 on reads) into resp. */
static int parse_body(struct consul_request *r, struct consul_response *resp, bool empty)
{
    char perr[400] = "";
    const char *body = empty ? "[]" : (r->body.data ? r->body.data : "");
    size_t len = empty ? 2 : r->body.len;
    int rc = 0;
    switch (r->kind) {
    case CONSUL_REQ_NONE:
        break;
    case CONSUL_REQ_KV_ONE:
    case CONSUL_REQ_KV_LIST:
        if (r->kind == CONSUL_REQ_KV_LIST && r->text_out) {
            size_t reused = 0;
            rc = consul_parse_kv_list_delta(body, len, r->prev_kv, r->prev_text, &resp->kv,
                                            r->text_out, &reused, perr, sizeof(perr));
            if (rc == 0) {
                r->c->stats.watch_entries_reused += reused;
                r->c->stats.watch_entries_parsed += resp->kv->n - reused;
            }
        } else {
            rc = consul_parse_kv_list(body, len, &resp->kv, perr, sizeof(perr));
        }
        break;
    case CONSUL_REQ_KEYS:
        rc = consul_parse_keys(body, len, &resp->keys, perr, sizeof(perr));
        break;
    case CONSUL_REQ_HEALTH:
        rc = consul_parse_health(body, len, &resp->health, perr, sizeof(perr));
        break;
    case CONSUL_REQ_BOOL:
        rc = consul_parse_bool(body, len, &resp->ok);
        if (rc)
            snprintf(perr, sizeof(perr), "expected true or false");
        break;
    case CONSUL_REQ_SESSION: {
        char *id = NULL;
        rc = consul_parse_session_id(body, len, &id, perr, sizeof(perr));
        if (!rc)
            resp->session_id = id; /* freed by the caller of parse_body */
        break;
    }
    case CONSUL_REQ_TXN:
        rc = consul_parse_txn(body, len, r->txn_base, r->txn_acc, perr, sizeof(perr));
        resp->txn = r->txn_acc;
        break;
    }
    if (rc) {
        char ex[ERRBODY_MAX + 1];
        body_excerpt(&r->body, ex, sizeof(ex));
        snprintf(r->errmsg, sizeof(r->errmsg), "consul: %s %s: HTTP %ld: bad answer: %s: %s",
                 r->method, r->path, resp->http_status, perr, ex);
    }
    return rc;
}

static void on_done(CURL *easy, CURLcode result, void *arg);

static void count_bytes(struct consul_client *c, CURL *easy)
{
    curl_off_t body = 0;
    long head = 0;
    /* the download size counts body bytes as received, before curl
     * decodes gzip: what Consul sent */
    if (curl_easy_getinfo(easy, CURLINFO_SIZE_DOWNLOAD_T, &body) == CURLE_OK && body > 0)
        c->stats.bytes_received += (uint64_t)body;
    if (curl_easy_getinfo(easy, CURLINFO_HEADER_SIZE, &head) == CURLE_OK && head > 0)
        c->stats.bytes_received += (uint64_t)head;
}

/* Remove the query word "stale" from path in place. */
static void strip_stale(char *path)
{
    char *q = strchr(path, '?');
    for (char *p = q; p && *p;) {
        char *end = p + 1 + strcspn(p + 1, "&");
        if (end - (p + 1) == 5 && strncmp(p + 1, "stale", 5) == 0) {
            if (*end) /* "?stale&x" -> "?x", "&stale&x" -> "&x" */
                memmove(p + 1, end + 1, strlen(end + 1) + 1);
            else /* last word: drop it with its separator */
                *p = '\0';
            return;
        }
        p = *end ? end : NULL;
    }
}

/* A ?stale answer from a server that lost the leader or heard from it
 * longer than max_stale_ms ago: send the same read again in the default
 * mode (the leader answers). true when the retry was started; false:
 * the answer is fresh enough, or the retry could not start (the stale
 * answer is used then, as Consul's own clients do). */
static bool stale_retry(struct consul_request *r)
{
    struct consul_client *c = r->c;
    if (r->known_leader && r->last_contact_ms <= c->max_stale_ms)
        return false;
    log_debug("consul: %s %s: answer is stale (last contact with the leader %" PRIu64
              " ms ago, max %u, known leader %s), reading from the leader",
              r->method, r->path, r->last_contact_ms, c->max_stale_ms,
              r->known_leader ? "yes" : "no");
    strip_stale(r->path);
    r->stale = false;
    c->stats.stale_retries++;
    if (setup_easy(r) == 0 && curl_uv_add(c->cu, r->easy, on_done, r) == 0) {
        c->stats.requests++;
        return true;
    }
    return false;
}

/* A read that timed out while this process itself could not act
 * (loop_lag_own_fault: half its timeout, or a second if that is less) says
 * nothing about Consul: libcurl checks its timeout before it reads the
 * socket, so the answer may well be sitting there. Send it once more (a blocking
 * query with the same index answers at once if the data moved) instead of
 * reporting an error, which would start a backoff and count an outage.
 * true when the retry was started. */
static bool stall_retry(struct consul_request *r)
{
    struct consul_client *c = r->c;
    uint64_t stalled = loop_lag_stalled_ms(c->lag) - r->stall_at_start;
    if (r->stall_retried || !is_read(r->kind) || !loop_lag_own_fault(stalled, r->timeout_ms))
        return false;
    log_info("consul: %s %s timed out while this process could not act for %" PRIu64
             " ms (stopped or starved); sending it again",
             r->method, r->path, stalled);
    r->stall_retried = true;
    c->stats.stall_retries++;
    if (setup_easy(r) == 0 && curl_uv_add(c->cu, r->easy, on_done, r) == 0) {
        c->stats.requests++;
        return true;
    }
    return false;
}

/* One HTTP exchange's duration into the client's histogram (curl counts
 * from the start of the transfer to its end, failures included). */
static void observe_latency(const struct consul_request *r, CURL *easy)
{
    curl_off_t us = 0;

    if (!r->c->latency || r->blocking ||
        curl_easy_getinfo(easy, CURLINFO_TOTAL_TIME_T, &us) != CURLE_OK)
        return;
    metrics_histogram_observe(r->c->latency, (double)us / 1e6);
}

static void on_done(CURL *easy, CURLcode result, void *arg)
{
    struct consul_request *r = arg;
    struct consul_client *c = r->c;
    struct consul_response resp = {0};
    resp.index = r->index;
    observe_latency(r, easy);

    if (result == CURLE_OPERATION_TIMEDOUT && stall_retry(r))
        return;
    if (result != CURLE_OK) {
        resp.err = curl_to_errno(result);
        snprintf(r->errmsg, sizeof(r->errmsg), "consul: %s %s: %s", r->method, r->path,
                 curl_easy_strerror(result));
    } else {
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &resp.http_status);
        long st = resp.http_status;
        count_bytes(c, easy);
        if (r->stale && (st == 200 || st == 404) && stale_retry(r))
            return;
        resp.stale = r->stale; /* false once re-read from the leader */
        if ((st == 403 || st == 401) && c->token_file && !r->token_retried) {
            /* A rotated token: re-read the file and retry once if it changed. */
            char *old = c->token ? strdup(c->token) : NULL;
            consul_client_reload_token(c);
            bool changed = c->token && (!old || strcmp(old, c->token) != 0);
            free(old);
            r->token_retried = true;
            if (changed && setup_easy(r) == 0 && curl_uv_add(c->cu, r->easy, on_done, r) == 0) {
                c->stats.requests++;
                return;
            }
        }
        if (st == 200) {
            resp.found = true;
            resp.err = parse_body(r, &resp, false);
        } else if (st == 404 && is_read(r->kind) && r->index_seen) {
            resp.err = parse_body(r, &resp, true); /* found stays false */
        } else if (st == 404 && is_read(r->kind)) {
            /* Consul answers a missing key or prefix with 404 and its index;
             * a 404 without one comes from something else (a proxy, another
             * service on the port, a wrong path): never an all-clear. */
            char ex[ERRBODY_MAX + 1];
            body_excerpt(&r->body, ex, sizeof(ex));
            resp.err = -EBADMSG;
            snprintf(r->errmsg, sizeof(r->errmsg),
                     "consul: %s %s: HTTP 404 without X-Consul-Index, not an answer from "
                     "Consul: %s",
                     r->method, r->path, ex[0] ? ex : "(empty body)");
        } else if (st == 409 && r->kind == CONSUL_REQ_TXN) {
            resp.err = parse_body(r, &resp, false);
            if (!resp.err) {
                resp.err = -ECANCELED;
                snprintf(r->errmsg, sizeof(r->errmsg),
                         "consul: %s %s: HTTP 409: transaction rolled back, %zu op(s) failed",
                         r->method, r->path, r->txn_acc->n_errors);
            }
        } else {
            char ex[ERRBODY_MAX + 1];
            body_excerpt(&r->body, ex, sizeof(ex));
            resp.err = http_to_errno(st);
            snprintf(r->errmsg, sizeof(r->errmsg), "consul: %s %s: HTTP %ld: %s", r->method,
                     r->path, st, ex[0] ? ex : "(empty body)");
        }
    }
    if (resp.err) {
        c->stats.errors++;
        resp.errmsg = r->errmsg;
    }
    req_unlink(r);
    r->c = NULL;
    char *session_id = (char *)resp.session_id;
    if (r->cb)
        r->cb(r->arg, &resp); /* may free the client: do not touch c below */
    consul_kv_list_free(resp.kv);
    consul_key_list_free(resp.keys);
    consul_health_list_free(resp.health);
    free(session_id);
    req_free(r);
}

int consul_req_start(struct consul_client *c, const char *method, const char *path_query,
                     const void *payload, size_t payload_len, enum consul_req_kind kind,
                     long timeout_ms, consul_cb cb, void *arg, struct consul_request **out)
{
    if (!c || !method || !path_query ||
        strlen(method) >= sizeof(((struct consul_request *)0)->method))
        return -EINVAL;
    struct consul_request *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    int rc = -ENOMEM;
    r->c = c;
    snprintf(r->method, sizeof(r->method), "%s", method);
    r->kind = kind;
    r->cb = cb;
    r->arg = arg;
    r->timeout_ms = timeout_ms > 0 ? timeout_ms : (long)c->request_timeout_ms;
    if (c->datacenter) {
        if (asprintf(&r->path, "%s%cdc=%s", path_query, strchr(path_query, '?') ? '&' : '?',
                     c->datacenter) < 0)
            r->path = NULL;
    } else {
        r->path = strdup(path_query);
    }
    if (!r->path)
        goto fail;
    if (payload) {
        r->payload = malloc(payload_len + 1);
        if (!r->payload)
            goto fail;
        memcpy(r->payload, payload, payload_len);
        r->payload[payload_len] = '\0';
        r->payload_len = payload_len;
    }
    if (c->token_file && uv_now(c->loop) - c->token_read_at >= (uint64_t)c->token_reread_s * 1000)
        consul_client_reload_token(c);
    rc = setup_easy(r);
    if (rc)
        goto fail;
    rc = curl_uv_add(c->cu, r->easy, on_done, r);
    if (rc)
        goto fail;
    r->next = c->reqs;
    if (c->reqs)
        c->reqs->prev = r;
    c->reqs = r;
    c->stats.requests++;
    if (out)
        *out = r;
    return 0;
fail:
    log_error("consul: %s %s: cannot start request: %s", method, path_query, strerror(-rc));
    req_free(r);
    return rc;
}

int consul_req_start_stale(struct consul_client *c, const char *path_query,
                           enum consul_req_kind kind, long timeout_ms, consul_cb cb, void *arg,
                           struct consul_request **out)
{
    struct consul_request *r = NULL;
    char *path = NULL;
    int rc;
    if (!c || !path_query)
        return -EINVAL;
    if (c->max_stale_ms == 0)
        return consul_req_start(c, "GET", path_query, NULL, 0, kind, timeout_ms, cb, arg, out);
    if (asprintf(&path, "%s%cstale", path_query, strchr(path_query, '?') ? '&' : '?') < 0)
        return -ENOMEM;
    rc = consul_req_start(c, "GET", path, NULL, 0, kind, timeout_ms, cb, arg, &r);
    free(path);
    if (rc == 0) {
        r->stale = true;
        if (out)
            *out = r;
    }
    return rc;
}

/* ---- paths ---- */

static int append_encoded(char **buf, size_t *len, size_t *cap, const char *s, bool keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (*len + 4 > *cap) {
            size_t ncap = *cap * 2 + 64;
            char *nb = realloc(*buf, ncap);
            if (!nb)
                return -ENOMEM;
            *buf = nb;
            *cap = ncap;
        }
        if (isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~' ||
            (keep_slash && ch == '/')) {
            (*buf)[(*len)++] = (char)ch;
        } else {
            (*buf)[(*len)++] = '%';
            (*buf)[(*len)++] = hex[ch >> 4];
            (*buf)[(*len)++] = hex[ch & 15];
        }
    }
    (*buf)[*len] = '\0';
    return 0;
}

char *consul_path(const char *area, const char *key, const char *query)
{
    size_t cap = strlen(area) + 64, len = 0;
    char *buf = malloc(cap);
    if (!buf)
        return NULL;
    len = (size_t)snprintf(buf, cap, "/v1/%s/", area);
    if (key && append_encoded(&buf, &len, &cap, key, true)) {
        free(buf);
        return NULL;
    }
    if (query && *query) {
        char *full = NULL;
        if (asprintf(&full, "%s?%s", buf, query) < 0)
            full = NULL;
        free(buf);
        return full;
    }
    return buf;
}

/* Percent-encode a query value (session ids, separators). */
static char *encode_value(const char *s)
{
    size_t cap = strlen(s) * 3 + 1, len = 0;
    char *buf = malloc(cap);
    if (!buf)
        return NULL;
    buf[0] = '\0';
    if (append_encoded(&buf, &len, &cap, s, false)) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* ---- endpoints ---- */

static int simple(struct consul_client *c, const char *method, const char *area, const char *key,
                  const char *query, const void *payload, size_t len, enum consul_req_kind kind,
                  consul_cb cb, void *arg)
{
    if (!c || !key)
        return -EINVAL;
    char *path = consul_path(area, key, query);
    if (!path)
        return -ENOMEM;
    int rc = consul_req_start(c, method, path, payload, len, kind, 0, cb, arg, NULL);
    free(path);
    return rc;
}

int consul_kv_get(struct consul_client *c, const char *key, consul_cb cb, void *arg)
{
    return simple(c, "GET", "kv", key, NULL, NULL, 0, CONSUL_REQ_KV_ONE, cb, arg);
}

int consul_kv_get_prefix(struct consul_client *c, const char *prefix, consul_cb cb, void *arg)
{
    return simple(c, "GET", "kv", prefix, "recurse", NULL, 0, CONSUL_REQ_KV_LIST, cb, arg);
}

int consul_kv_keys(struct consul_client *c, const char *prefix, const char *separator, consul_cb cb,
                   void *arg)
{
    char *query = NULL;
    if (separator && *separator) {
        char *sep = encode_value(separator);
        if (!sep || asprintf(&query, "keys&separator=%s", sep) < 0) {
            free(sep);
            return -ENOMEM;
        }
        free(sep);
    }
    int rc =
        simple(c, "GET", "kv", prefix, query ? query : "keys", NULL, 0, CONSUL_REQ_KEYS, cb, arg);
    free(query);
    return rc;
}

int consul_kv_put(struct consul_client *c, const char *key, const void *value, size_t len,
                  const struct consul_put_opts *opts, consul_cb cb, void *arg)
{
    static const struct consul_put_opts plain = {0};
    if (!opts)
        opts = &plain;
    char query[256] = "";
    size_t q = 0;
    if (opts->flags)
        q += (size_t)snprintf(query + q, sizeof(query) - q, "flags=%" PRIu64 "&", opts->flags);
    switch (opts->mode) {
    case CONSUL_PUT_PLAIN:
        break;
    case CONSUL_PUT_CAS:
        q += (size_t)snprintf(query + q, sizeof(query) - q, "cas=%" PRIu64 "&", opts->cas);
        break;
    case CONSUL_PUT_ACQUIRE:
    case CONSUL_PUT_RELEASE: {
        if (!opts->session)
            return -EINVAL;
        char *s = encode_value(opts->session);
        if (!s)
            return -ENOMEM;
        q += (size_t)snprintf(query + q, sizeof(query) - q, "%s=%s&",
                              opts->mode == CONSUL_PUT_ACQUIRE ? "acquire" : "release", s);
        free(s);
        break;
    }
    default:
        return -EINVAL;
    }
    if (q >= sizeof(query))
        return -EINVAL;
    if (q)
        query[q - 1] = '\0'; /* drop the trailing '&' */
    return simple(c, "PUT", "kv", key, query, value ? value : "", value ? len : 0, CONSUL_REQ_BOOL,
                  cb, arg);
}

int consul_kv_delete(struct consul_client *c, const char *key, bool recurse, bool has_cas,
                     uint64_t cas, consul_cb cb, void *arg)
{
    char query[64] = "";
    if (recurse && has_cas)
        return -EINVAL; /* Consul ignores cas with recurse */
    if (recurse)
        snprintf(query, sizeof(query), "recurse");
    else if (has_cas)
        snprintf(query, sizeof(query), "cas=%" PRIu64, cas);
    return simple(c, "DELETE", "kv", key, query, NULL, 0, CONSUL_REQ_BOOL, cb, arg);
}

int consul_session_create(struct consul_client *c, const struct consul_session_opts *opts,
                          consul_cb cb, void *arg)
{
    if (!c || !opts || (opts->ttl_s && (opts->ttl_s < 10 || opts->ttl_s > 86400)))
        return -EINVAL;
    char body[1024];
    size_t n = 0;
    n += (size_t)snprintf(body + n, sizeof(body) - n, "{\"Behavior\":\"%s\"",
                          opts->behavior_delete ? "delete" : "release");
    if (opts->ttl_s)
        n += (size_t)snprintf(body + n, sizeof(body) - n, ",\"TTL\":\"%us\"", opts->ttl_s);
    if (opts->lock_delay_set)
        n += (size_t)snprintf(body + n, sizeof(body) - n, ",\"LockDelay\":\"%us\"",
                              opts->lock_delay_s);
    if (opts->name) {
        for (const char *p = opts->name; *p; p++) {
            if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20)
                return -EINVAL; /* keep the hand-built JSON valid */
        }
        n += (size_t)snprintf(body + n, sizeof(body) - n, ",\"Name\":\"%s\"", opts->name);
    }
    n += (size_t)snprintf(body + n, sizeof(body) - n, "}");
    if (n >= sizeof(body))
        return -EINVAL;
    return consul_req_start(c, "PUT", "/v1/session/create", body, n, CONSUL_REQ_SESSION, 0, cb, arg,
                            NULL);
}

int consul_session_renew(struct consul_client *c, const char *id, consul_cb cb, void *arg)
{
    return simple(c, "PUT", "session/renew", id, NULL, "", 0, CONSUL_REQ_NONE, cb, arg);
}

bool consul_session_gone(const struct consul_response *resp)
{
    /* Consul answers a renewal of a session it does not know with 404 */
    return resp->err == -ENOENT;
}

int consul_session_destroy(struct consul_client *c, const char *id, consul_cb cb, void *arg)
{
    return simple(c, "PUT", "session/destroy", id, NULL, "", 0, CONSUL_REQ_BOOL, cb, arg);
}

int consul_lock_acquire(struct consul_client *c, const char *key, const char *session,
                        const void *value, size_t len, consul_cb cb, void *arg)
{
    struct consul_put_opts o = {.mode = CONSUL_PUT_ACQUIRE, .session = session};
    return consul_kv_put(c, key, value, len, &o, cb, arg);
}

int consul_lock_release(struct consul_client *c, const char *key, const char *session, consul_cb cb,
                        void *arg)
{
    struct consul_put_opts o = {.mode = CONSUL_PUT_RELEASE, .session = session};
    return consul_kv_put(c, key, NULL, 0, &o, cb, arg);
}

int consul_health_service(struct consul_client *c, const char *service, bool passing_only,
                          consul_cb cb, void *arg)
{
    return simple(c, "GET", "health/service", service, passing_only ? "passing" : NULL, NULL, 0,
                  CONSUL_REQ_HEALTH, cb, arg);
}
