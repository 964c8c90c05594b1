/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kube_client: list + watch of one Kubernetes resource into a kube_store
 * over libcurl on libuv (see kube_client.h). Each reflector owns one easy
 * handle, used for one request at a time: list pages, then a long watch,
 * and a timer for retries, so there is never a thread per watch.
 */
#include "kube_client.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backoff.h"
#include "log.h"
#include "kube_prune.h"
#include "loop_lag.h"
#include "outage.h"

struct kube_client {
    uv_loop_t *loop;
    struct curl_uv *cu;
    char *api_url;
    char *token_file;
    char *ca_file;
    bool insecure;
    char *token; /* NULL without a token file */
    unsigned page_limit, watch_min_s, watch_max_s, backoff_base_ms, backoff_cap_ms;
    unsigned request_timeout_s;
    size_t max_list_bytes;
    uint64_t token_reloads;
    uv_timer_t token_timer;
    struct loop_lag *lag; /* a timeout after our own stall is not the API server's */
};

enum reflector_action {
    ACT_LIST,
    ACT_WATCH,
};

struct kube_reflector {
    struct kube_client *kc;
    struct outage outage; /* failures logged once per outage (outage.h) */
    char *path;
    char name[32]; /* "services", for log lines */
    struct kube_store *store;
    kube_reflector_change_cb cb;
    void *arg;

    CURL *easy;
    struct curl_slist *headers;
    bool in_flight;
    uint64_t timeout_ms;     /* of the request in flight (CURLOPT_TIMEOUT) */
    uint64_t stall_at_start; /* loop_lag_stalled_ms() when it was sent */
    bool stall_retried;      /* it is the one retry after our own stall */
    struct curl_uv_buf buf;  /* list body, or a non-200 watch body */
    struct kube_watch_stream *ws;
    char *continue_token; /* next list page, NULL for the first */
    bool synced;          /* a list completed once */
    bool watching;        /* a watch answered 200 */
    long watch_code;      /* HTTP code of the running watch, 0 until known */
    int watch_abort;      /* negative errno that stopped the stream */
    uint64_t watch_started_ms;
    uint64_t watch_events;  /* events of the running watch */
    bool after_list;        /* the next watch follows a list directly */
    unsigned list_expiries; /* continue tokens expired since the last complete list */

    uv_timer_t timer;
    enum reflector_action pending;
    struct backoff bo;
    struct backoff relist_bo; /* relists after lost events or expiry */
    struct kube_reflector_stats stats;
};

/* ---- token and configuration ---- */

static int read_token(const char *path, char **out)
{
    char buf[16384];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    int err = n < 0 ? -errno : 0;
    close(fd);
    if (err)
        return err;
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        n--;
    buf[n] = '\0';
    if (n == 0)
        return -ENODATA;
    *out = strdup(buf);
    return *out ? 0 : -ENOMEM;
}

int kube_client_reload_token(struct kube_client *kc)
{
    char *tok = NULL;
    if (!kc->token_file)
        return 0;
    int rc = read_token(kc->token_file, &tok);
    if (rc < 0) {
        log_warn("kube: reading token file %s failed: %s, keeping the previous token",
                 kc->token_file, strerror(-rc));
        return rc;
    }
    if (kc->token && strcmp(kc->token, tok) == 0) {
        free(tok);
        return 0;
    }
    free(kc->token);
    kc->token = tok;
    kc->token_reloads++;
    log_info("kube: bearer token re-read from %s (changed)", kc->token_file);
    return 1;
}

uint64_t kube_client_token_reloads(const struct kube_client *kc)
{
    return kc->token_reloads;
}

static void on_token_timer(uv_timer_t *t)
{
    kube_client_reload_token(t->data);
}

int kube_client_config_in_cluster(struct kube_client_config *cfg, char *url_buf, size_t url_len)
{
    if (!cfg->api_url) {
        const char *host = getenv("KUBERNETES_SERVICE_HOST");
        const char *port = getenv("KUBERNETES_SERVICE_PORT");
        if (!host || !*host) {
            log_error("kube: no --kube-api given and KUBERNETES_SERVICE_HOST is not set "
                      "(not running in a cluster)");
            return -ENOENT;
        }
        if (!port || !*port)
            port = "443";
        bool v6 = strchr(host, ':') != NULL;
        snprintf(url_buf, url_len, "https://%s%s%s:%s", v6 ? "[" : "", host, v6 ? "]" : "", port);
        cfg->api_url = url_buf;
        if (!cfg->token_file)
            cfg->token_file = KUBE_SA_DIR "/token";
        if (!cfg->ca_file && !cfg->insecure_skip_tls)
            cfg->ca_file = KUBE_SA_DIR "/ca.crt";
    }
    return 0;
}

static unsigned or_default(unsigned v, unsigned def)
{
    return v ? v : def;
}

static void client_free_fields(struct kube_client *kc)
{
    loop_lag_unref(kc->lag);
    free(kc->api_url);
    free(kc->token_file);
    free(kc->ca_file);
    free(kc->token);
    free(kc);
}

int kube_client_new(uv_loop_t *loop, struct curl_uv *cu, const struct kube_client_config *cfg,
                    struct kube_client **out)
{
    if (!cfg->api_url ||
        (strncmp(cfg->api_url, "https://", 8) != 0 && strncmp(cfg->api_url, "http://", 7) != 0)) {
        log_error("kube: API URL '%s' is not http:// or https://",
                  cfg->api_url ? cfg->api_url : "(none)");
        return -EINVAL;
    }
    struct kube_client *kc = calloc(1, sizeof(*kc));
    if (!kc)
        return -ENOMEM;
    kc->loop = loop;
    kc->cu = cu;
    kc->api_url = strdup(cfg->api_url);
    kc->token_file = cfg->token_file ? strdup(cfg->token_file) : NULL;
    kc->ca_file = cfg->ca_file ? strdup(cfg->ca_file) : NULL;
    kc->insecure = cfg->insecure_skip_tls;
    kc->page_limit = or_default(cfg->page_limit, 500);
    kc->watch_min_s = or_default(cfg->watch_min_s, 300);
    kc->watch_max_s = or_default(cfg->watch_max_s, 600);
    if (kc->watch_max_s < kc->watch_min_s)
        kc->watch_max_s = kc->watch_min_s;
    kc->backoff_base_ms = or_default(cfg->backoff_base_ms, 250);
    kc->backoff_cap_ms = or_default(cfg->backoff_cap_ms, 30000);
    kc->request_timeout_s = or_default(cfg->request_timeout_s, 60);
    kc->max_list_bytes = cfg->max_list_bytes ? cfg->max_list_bytes : CURL_UV_BUF_DEFAULT_MAX;
    if (cfg->loop_lag)
        kc->lag = loop_lag_ref(cfg->loop_lag);
    if (!kc->api_url || (cfg->token_file && !kc->token_file) || (cfg->ca_file && !kc->ca_file) ||
        (!kc->lag && loop_lag_new(loop, &kc->lag) < 0))
        goto nomem;
    size_t ul = strlen(kc->api_url);
    while (ul > 0 && kc->api_url[ul - 1] == '/')
        kc->api_url[--ul] = '\0';
    if (kc->token_file) {
        int rc = read_token(kc->token_file, &kc->token);
        if (rc < 0) {
            log_error("kube: reading token file %s failed: %s", kc->token_file, strerror(-rc));
            client_free_fields(kc);
            return rc;
        }
    }
    uv_timer_init(loop, &kc->token_timer);
    kc->token_timer.data = kc;
    uint64_t every = (uint64_t)or_default(cfg->token_reread_s, 60) * 1000;
    if (kc->token_file)
        uv_timer_start(&kc->token_timer, on_token_timer, every, every);
    *out = kc;
    return 0;
nomem:
    client_free_fields(kc);
    return -ENOMEM;
}

static void on_client_closed(uv_handle_t *h)
{
    client_free_fields(h->data);
}

void kube_client_free(struct kube_client *kc)
{
    if (!kc)
        return;
    uv_timer_stop(&kc->token_timer);
    uv_close((uv_handle_t *)&kc->token_timer, on_client_closed);
}

/* ---- requests ---- */

static void schedule(struct kube_reflector *r, enum reflector_action act, uint64_t delay_ms);
static void start_list(struct kube_reflector *r);
static void start_watch(struct kube_reflector *r);

static int prepare(struct kube_reflector *r, const char *url)
{
    struct kube_client *kc = r->kc;
    char auth[16500];

    curl_easy_reset(r->easy);
    r->stall_at_start = loop_lag_stalled_ms(kc->lag);
    curl_slist_free_all(r->headers);
    r->headers = NULL;
    struct curl_slist *h = curl_slist_append(NULL, "Accept: application/json");
    if (h && kc->token) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", kc->token);
        struct curl_slist *h2 = curl_slist_append(h, auth);
        if (!h2) {
            curl_slist_free_all(h);
            h = NULL;
        } else {
            h = h2;
        }
    }
    if (!h)
        return -ENOMEM;
    r->headers = h;
    curl_easy_setopt(r->easy, CURLOPT_URL, url);
    curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->headers);
    curl_easy_setopt(r->easy, CURLOPT_USERAGENT, "drover-exporter");
    curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(r->easy, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(r->easy, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(r->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    if (kc->ca_file)
        curl_easy_setopt(r->easy, CURLOPT_CAINFO, kc->ca_file);
    if (kc->insecure) {
        curl_easy_setopt(r->easy, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(r->easy, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    return 0;
}

static char *escape(struct kube_reflector *r, const char *s)
{
    return curl_easy_escape(r->easy, s, 0);
}

/* What to do after a failed request; returns the delay before retrying
 * (0 = now). Logs the failure with the request kind. */
/* Appended to the line that begins an outage: the next ones are quiet. */
#define QUIET_NOTE " (further failures are logged at debug level until the API answers)"

/* A list completed or a watch stream opened: ends an outage with one line. */
static void reflector_answered(struct kube_reflector *r)
{
    char what[160];
    if (!r->outage.failing)
        return;
    snprintf(what, sizeof(what), "kube: %s%s", r->kc->api_url, r->path);
    outage_ok(&r->outage, uv_now(r->kc->loop), what);
}

static uint64_t failure_delay(struct kube_reflector *r, const char *what, CURLcode res, long code,
                              const struct kube_status *st)
{
    const char *msg = st && st->message ? st->message : "";
    uint64_t delay;
    /* the first failure of an outage at warn, the retries at debug */
    enum log_level lvl = outage_fail_level(&r->outage, uv_now(r->kc->loop), LOGL_WARN);
    const char *quiet = r->outage.failures == 1 ? QUIET_NOTE : "";
    if (lvl == LOGL_WARN)
        r->stats.outages++;
    if (res != CURLE_OK && code == 0) {
        r->stats.transport_errors++;
        delay = backoff_next(&r->bo);
        log_msg(lvl, "kube: %s %s%s failed: %s, retrying in %llu ms%s", what, r->kc->api_url,
                r->path, curl_easy_strerror(res), (unsigned long long)delay, quiet);
        return delay;
    }
    if (code == 401) {
        r->stats.unauthorized++;
        int changed = kube_client_reload_token(r->kc);
        delay = changed == 1 ? 0 : backoff_next(&r->bo);
        log_msg(lvl, "kube: %s %s%s: HTTP 401 Unauthorized, token %s, retrying in %llu ms%s", what,
                r->kc->api_url, r->path, changed == 1 ? "re-read (changed)" : "unchanged",
                (unsigned long long)delay, quiet);
        return delay;
    }
    if (code == 429) {
        curl_off_t ra = 0;
        r->stats.throttled++;
        curl_easy_getinfo(r->easy, CURLINFO_RETRY_AFTER, &ra);
        delay = ra > 0 ? (uint64_t)(ra > 120 ? 120 : ra) * 1000 : backoff_next(&r->bo);
        log_msg(lvl,
                "kube: %s %s%s: HTTP 429 Too Many Requests (Retry-After %lld s), retrying in "
                "%llu ms%s",
                what, r->kc->api_url, r->path, (long long)ra, (unsigned long long)delay, quiet);
        return delay;
    }
    if (code == 0)
        r->stats.transport_errors++;
    else
        r->stats.server_errors++;
    delay = backoff_next(&r->bo);
    log_msg(lvl, "kube: %s %s%s: HTTP %ld%s%s, retrying in %llu ms%s", what, r->kc->api_url,
            r->path, code, *msg ? ": " : "", msg, (unsigned long long)delay, quiet);
    return delay;
}

/* Called as each request ends. A request that timed out while this
 * process could not act for a large part of it (loop_lag_own_fault: stopped,
 * starved of CPU) says nothing about the API server: libcurl checks its
 * timeout before it reads the socket, so the answer may sit there unread.
 * true: send it again once (a list page with the same continue token, a
 * watch from the last resourceVersion; both are reads), counted in
 * stall_retries, instead of counting a transport error, backing off and,
 * for a list, starting over from the first page. */
static bool stall_retry(struct kube_reflector *r, CURLcode res, const char *what)
{
    bool retried = r->stall_retried;
    uint64_t stalled = loop_lag_stalled_ms(r->kc->lag) - r->stall_at_start;

    r->stall_retried = false;
    if (res != CURLE_OPERATION_TIMEDOUT || retried || !loop_lag_own_fault(stalled, r->timeout_ms))
        return false;
    r->stall_retried = true;
    r->stats.stall_retries++;
    log_info("kube: %s %s%s timed out while this process could not act for %llu ms (stopped or "
             "starved); sending it again",
             what, r->kc->api_url, r->path, (unsigned long long)stalled);
    return true;
}

/* ---- list ---- */

static void on_list_done(CURL *easy, CURLcode res, void *arg);

static void send_list_page(struct kube_reflector *r)
{
    char url[8192];
    char *ct = NULL;
    if (r->continue_token) {
        ct = escape(r, r->continue_token);
        if (!ct)
            goto fail;
    }
    snprintf(url, sizeof(url), "%s%s?limit=%u%s%s", r->kc->api_url, r->path, r->kc->page_limit,
             ct ? "&continue=" : "", ct ? ct : "");
    curl_free(ct);
    if (prepare(r, url) < 0)
        goto fail;
    curl_uv_buf_reset(&r->buf);
    r->buf.max = r->kc->max_list_bytes;
    curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, curl_uv_buf_write);
    curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, &r->buf);
    /* A Content-Length over the limit fails the request before any of
     * the body is received; a chunked body fails in curl_uv_buf_write. */
    curl_easy_setopt(r->easy, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)r->kc->max_list_bytes);
    curl_easy_setopt(r->easy, CURLOPT_TIMEOUT, (long)r->kc->request_timeout_s);
    r->timeout_ms = (uint64_t)r->kc->request_timeout_s * 1000;
    if (curl_uv_add(r->kc->cu, r->easy, on_list_done, r) < 0)
        goto fail;
    r->in_flight = true;
    return;
fail:;
    uint64_t d = backoff_next(&r->bo);
    log_error("kube: cannot start the list of %s, retrying in %llu ms", r->path,
              (unsigned long long)d);
    kube_store_list_abort(r->store);
    schedule(r, ACT_LIST, d);
}

static void start_list(struct kube_reflector *r)
{
    free(r->continue_token);
    r->continue_token = NULL;
    if (kube_store_list_begin(r->store) < 0) {
        uint64_t d = backoff_next(&r->bo);
        log_error("kube: out of memory starting the list of %s, retrying in %llu ms", r->path,
                  (unsigned long long)d);
        schedule(r, ACT_LIST, d);
        return;
    }
    send_list_page(r);
}

static void list_failed(struct kube_reflector *r, uint64_t delay)
{
    kube_store_list_abort(r->store);
    free(r->continue_token);
    r->continue_token = NULL;
    r->stats.list_restarts++;
    schedule(r, ACT_LIST, delay);
}

static void on_list_done(CURL *easy, CURLcode res, void *arg)
{
    struct kube_reflector *r = arg;
    long code = 0;
    char err[256];
    r->in_flight = false;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code);

    if (stall_retry(r, res, "list")) {
        send_list_page(r); /* the same page: the list goes on */
        return;
    }
    if (r->buf.overflow || res == CURLE_FILESIZE_EXCEEDED) {
        /* A truncated body is never parsed (a 200 MiB list would cost
         * gigabytes as JSON); the memory it took is given back now. */
        r->stats.list_too_large++;
        uint64_t d = backoff_next(&r->bo);
        log_warn("kube: list %s%s: HTTP %ld body over the %zu-byte limit (--kube-list-max-bytes), "
                 "not parsed; lower --kube-page-size or raise the limit; restarting the list in "
                 "%llu ms",
                 r->kc->api_url, r->path, code, r->kc->max_list_bytes, (unsigned long long)d);
        curl_uv_buf_free(&r->buf);
        r->buf.overflow = false;
        list_failed(r, d);
        return;
    }
    if (res == CURLE_OK && code == 200) {
        struct kube_list page;
        size_t len = r->buf.len;
        /* A slimmed store keeps none of what pruning cuts, and parsing the
         * cut text is most of a list's CPU. A scan that fails leaves the
         * body as it was, for the parser to judge. */
        if (kube_store_slimmed(r->store))
            (void)kube_list_prune(r->buf.data, &len);
        if (kube_list_parse(r->buf.data, len, &page, err, sizeof(err)) < 0) {
            r->stats.server_errors++;
            uint64_t d = backoff_next(&r->bo);
            log_warn("kube: list %s%s: bad body: %s, restarting the list in %llu ms",
                     r->kc->api_url, r->path, err, (unsigned long long)d);
            list_failed(r, d);
            return;
        }
        r->stats.pages++;
        bool more = page.continue_token && *page.continue_token;
        if (more) {
            free(r->continue_token);
            r->continue_token = strdup(page.continue_token);
            if (!r->continue_token) {
                kube_list_clear(&page);
                list_failed(r, backoff_next(&r->bo));
                return;
            }
            /* Ask for the next page before storing this one, so the API
             * server prepares it while this one is slimmed: the parsed
             * page no longer needs the body buffer. A request that could
             * not start has already aborted the list and scheduled it. */
            send_list_page(r);
            if (!r->in_flight) {
                kube_list_clear(&page);
                return;
            }
        }
        int rc = kube_store_list_page(r->store, &page);
        if (rc < 0) {
            kube_list_clear(&page);
            if (r->in_flight) {
                curl_uv_remove(r->kc->cu, r->easy);
                r->in_flight = false;
            }
            list_failed(r, backoff_next(&r->bo));
            return;
        }
        if (more) {
            kube_list_clear(&page);
            return;
        }
        rc = kube_store_list_end(r->store, page.resource_version);
        log_info("kube: listed %zu %s at resourceVersion %s%s", kube_store_count(r->store), r->name,
                 page.resource_version, rc == 1 ? " (changed)" : "");
        kube_list_clear(&page);
        if (rc < 0) {
            list_failed(r, backoff_next(&r->bo));
            return;
        }
        r->stats.lists++;
        if (r->synced)
            r->stats.relists++;
        r->synced = true;
        r->list_expiries = 0;
        backoff_reset(&r->bo);
        reflector_answered(r);
        r->after_list = true;
        if (r->cb)
            r->cb(r->arg, rc == 1);
        start_watch(r);
        return;
    }

    struct kube_status st = {0};
    if (code != 0)
        kube_status_parse(r->buf.data, r->buf.len, &st);
    if (code == 410 || (code != 0 && kube_status_is_expired(&st))) {
        r->stats.expired++;
        /* The first restart is immediate; if tokens keep expiring (a list
         * slower than the server's compaction) back off instead of looping. */
        uint64_t d = r->list_expiries++ ? backoff_next(&r->bo) : 0;
        log_info("kube: list %s%s: continue token expired (410 %s), restarting the list in "
                 "%llu ms",
                 r->kc->api_url, r->path, st.reason ? st.reason : "Gone", (unsigned long long)d);
        kube_status_clear(&st);
        list_failed(r, d);
        return;
    }
    uint64_t d = failure_delay(r, "list", res, code, &st);
    kube_status_clear(&st);
    list_failed(r, d);
}

/* ---- watch ---- */

static int on_event(const struct kube_event *ev, void *arg)
{
    struct kube_reflector *r = arg;
    r->stats.events[ev->type]++;
    r->watch_events++;
    int rc = kube_store_apply(r->store, ev);
    if (rc == 1 && r->cb)
        r->cb(r->arg, true);
    if (rc == -ESTALE)
        return -ESTALE;
    if (rc == -EPROTO && ev->type == KUBE_EVENT_ERROR) {
        log_warn("kube: watch %s: ERROR event %ld %s: %s, re-watching", r->name, ev->status.code,
                 ev->status.reason ? ev->status.reason : "",
                 ev->status.message ? ev->status.message : "");
        return -EPROTO;
    }
    if (rc == -ENOMEM)
        return -ENOMEM;
    /* -EPROTO for an object without a name was logged by the store and
     * skipped; the watch goes on. */
    return 0;
}

static size_t watch_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct kube_reflector *r = userdata;
    size_t len = size * nmemb;
    if (r->watch_code == 0) {
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->watch_code);
        if (r->watch_code == 200) {
            r->watching = true;
            reflector_answered(r);
        }
    }
    if (r->watch_code != 200)
        return curl_uv_buf_write(ptr, size, nmemb, &r->buf);
    int rc = kube_watch_stream_feed(r->ws, ptr, len);
    if (rc < 0) {
        r->watch_abort = rc;
        return 0; /* abort the transfer; on_watch_done decides */
    }
    return len;
}

static void on_watch_done(CURL *easy, CURLcode res, void *arg);

static void start_watch(struct kube_reflector *r)
{
    char url[4096];
    const char *rv = kube_store_resource_version(r->store);
    if (!rv) {
        start_list(r);
        return;
    }
    char *erv = escape(r, rv);
    if (!erv)
        goto fail;
    unsigned t = r->kc->watch_min_s;
    if (r->kc->watch_max_s > t)
        t = (unsigned)backoff_rand_range(&r->bo, r->kc->watch_min_s, r->kc->watch_max_s);
    snprintf(url, sizeof(url),
             "%s%s?watch=1&resourceVersion=%s&allowWatchBookmarks=true&timeoutSeconds=%u",
             r->kc->api_url, r->path, erv, t);
    curl_free(erv);
    if (prepare(r, url) < 0)
        goto fail;
    curl_uv_buf_reset(&r->buf);
    kube_watch_stream_reset(r->ws);
    r->watch_code = 0;
    r->watch_abort = 0;
    r->watching = false;
    r->watch_events = 0;
    r->watch_started_ms = uv_now(r->kc->loop);
    curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, watch_write);
    curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r);
    /* The server ends the stream after t seconds; a stream silent far
     * beyond that is dead. */
    curl_easy_setopt(r->easy, CURLOPT_TIMEOUT, (long)t + 60);
    r->timeout_ms = ((uint64_t)t + 60) * 1000;
    if (curl_uv_add(r->kc->cu, r->easy, on_watch_done, r) < 0)
        goto fail;
    r->in_flight = true;
    r->stats.watches++;
    if (!r->after_list)
        r->stats.watch_restarts++;
    r->after_list = false;
    log_debug("kube: watching %s from resourceVersion %s (timeout %u s)", r->name, rv, t);
    return;
fail:;
    uint64_t d = backoff_next(&r->bo);
    log_error("kube: cannot start the watch of %s, retrying in %llu ms", r->path,
              (unsigned long long)d);
    schedule(r, ACT_WATCH, d);
}

/* Relists wait for their own jittered backoff, reset only by a watch that
 * ended cleanly: a stream that loses an event on every watch (an
 * over-long object, a server that keeps expiring) would otherwise relist
 * many times a second, each a full list. */
static void relist(struct kube_reflector *r, const char *why)
{
    uint64_t d = backoff_next(&r->relist_bo);
    log_info("kube: %s: %s, relisting in %llu ms", r->name, why, (unsigned long long)d);
    schedule(r, ACT_LIST, d);
}

static void on_watch_done(CURL *easy, CURLcode res, void *arg)
{
    struct kube_reflector *r = arg;
    long code = r->watch_code;
    r->in_flight = false;
    r->watching = false;
    if (code == 0)
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code);

    if (stall_retry(r, res, "watch")) {
        start_watch(r); /* from the last resourceVersion the store holds */
        return;
    }
    if (code == 200) {
        int rc = r->watch_abort;
        if (rc == 0 && res == CURLE_OK)
            rc = kube_watch_stream_finish(r->ws);
        if (rc == -ESTALE) {
            r->stats.expired++;
            relist(r, "watch resourceVersion expired (410 in the stream)");
            return;
        }
        if (rc == -EMSGSIZE || rc == -ENOMEM) {
            relist(r, "an event was lost (over-long line or out of memory)");
            return;
        }
        if (rc == -EPROTO) {
            r->stats.server_errors++;
            schedule(r, ACT_WATCH, backoff_next(&r->bo));
            return;
        }
        if (res == CURLE_OK) {
            uint64_t lived = uv_now(r->kc->loop) - r->watch_started_ms;
            /* A clean end after the timeout: re-watch at once. One that
             * ends at once with nothing in it must not spin. */
            if (r->watch_events > 0 || lived >= 1000) {
                backoff_reset(&r->bo);
                backoff_reset(&r->relist_bo);
                schedule(r, ACT_WATCH, 0);
            } else {
                schedule(r, ACT_WATCH, backoff_next(&r->bo));
            }
            return;
        }
        r->stats.transport_errors++;
        if (r->watch_events > 0)
            backoff_reset(&r->bo);
        uint64_t d = backoff_next(&r->bo);
        log_warn("kube: watch %s%s broke: %s, re-watching from resourceVersion %s in %llu ms",
                 r->kc->api_url, r->path, curl_easy_strerror(res),
                 kube_store_resource_version(r->store), (unsigned long long)d);
        schedule(r, ACT_WATCH, d);
        return;
    }

    struct kube_status st = {0};
    if (code != 0)
        kube_status_parse(r->buf.data, r->buf.len, &st);
    if (code == 410 || (code != 0 && kube_status_is_expired(&st))) {
        r->stats.expired++;
        kube_status_clear(&st);
        relist(r, "watch resourceVersion expired (HTTP 410)");
        return;
    }
    uint64_t d = failure_delay(r, "watch", res, code, &st);
    kube_status_clear(&st);
    schedule(r, ACT_WATCH, d);
}

/* ---- scheduling ---- */

static void on_timer(uv_timer_t *t)
{
    struct kube_reflector *r = t->data;
    if (r->in_flight)
        return;
    r->stall_retried = false; /* a new request, not the retry */
    if (r->pending == ACT_LIST)
        start_list(r);
    else
        start_watch(r);
}

static void schedule(struct kube_reflector *r, enum reflector_action act, uint64_t delay_ms)
{
    r->pending = act;
    uv_timer_start(&r->timer, on_timer, delay_ms, 0);
}

/* ---- reflector ---- */

int kube_reflector_new(struct kube_client *kc, const char *path, struct kube_store *store,
                       kube_reflector_change_cb cb, void *arg, struct kube_reflector **out)
{
    struct kube_reflector *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->kc = kc;
    r->store = store;
    r->cb = cb;
    r->arg = arg;
    r->path = strdup(path);
    const char *slash = strrchr(path, '/');
    snprintf(r->name, sizeof(r->name), "%s", slash ? slash + 1 : path);
    r->easy = curl_easy_init();
    r->ws = kube_watch_stream_new(r->name, 0, on_event, r);
    if (!r->path || !r->easy || !r->ws) {
        free(r->path);
        if (r->easy)
            curl_easy_cleanup(r->easy);
        kube_watch_stream_free(r->ws);
        free(r);
        return -ENOMEM;
    }
    backoff_init(&r->bo, kc->backoff_base_ms, kc->backoff_cap_ms, BACKOFF_FULL);
    backoff_init(&r->relist_bo, kc->backoff_base_ms, kc->backoff_cap_ms, BACKOFF_FULL);
    uv_timer_init(kc->loop, &r->timer);
    r->timer.data = r;
    *out = r;
    return 0;
}

void kube_reflector_start(struct kube_reflector *r)
{
    schedule(r, ACT_LIST, 0);
}

void kube_reflector_relist(struct kube_reflector *r)
{
    if (kube_store_listing(r->store) && r->in_flight)
        return;
    if (r->in_flight) {
        curl_uv_remove(r->kc->cu, r->easy);
        r->in_flight = false;
        r->watching = false;
    }
    schedule(r, ACT_LIST, 0);
}

static void on_reflector_closed(uv_handle_t *h)
{
    struct kube_reflector *r = h->data;
    curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->headers);
    curl_uv_buf_free(&r->buf);
    kube_watch_stream_free(r->ws);
    free(r->continue_token);
    free(r->path);
    free(r);
}

void kube_reflector_free(struct kube_reflector *r)
{
    if (!r)
        return;
    if (r->in_flight)
        curl_uv_remove(r->kc->cu, r->easy);
    uv_timer_stop(&r->timer);
    uv_close((uv_handle_t *)&r->timer, on_reflector_closed);
}

const struct kube_reflector_stats *kube_reflector_stats(const struct kube_reflector *r)
{
    return &r->stats;
}

bool kube_reflector_synced(const struct kube_reflector *r)
{
    return r->synced;
}

bool kube_reflector_watching(const struct kube_reflector *r)
{
    return r->watching;
}
