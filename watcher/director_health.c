/* SPDX-License-Identifier: Apache-2.0 */
/*
 * director_health: health state machine with flap damping and the HTTP
 * checker that feeds it. See director_health.h.
 */
#include "director_health.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "curl_uv.h"
#include "director_feed.h"
#include "log.h"
#include "loop_lag.h"

#define FLAP_PENALTY 1000.0

void director_health_params_defaults(struct director_health_params *p)
{
    if (p->interval_ms <= 0)
        p->interval_ms = 2000;
    if (p->timeout_ms <= 0)
        p->timeout_ms = 1000;
    if (!p->rise)
        p->rise = 3;
    if (!p->fall)
        p->fall = 3;
    if (p->flap_half_life_ms <= 0)
        p->flap_half_life_ms = 30000;
    if (!p->flap_suppress)
        p->flap_suppress = 2500;
    if (!p->flap_reuse)
        p->flap_reuse = 1000;
}

/* ---- state machine ---- */

void director_health_sm_init(struct director_health_sm *sm)
{
    memset(sm, 0, sizeof(*sm));
}

bool director_health_sm_healthy(const struct director_health_sm *sm)
{
    return sm->state != DIRECTOR_HEALTH_DOWN && !sm->suppressed;
}

const char *director_health_state_name(enum director_health_state s)
{
    switch (s) {
    case DIRECTOR_HEALTH_UP:
        return "up";
    case DIRECTOR_HEALTH_DOWN:
        return "down";
    default:
        return "unknown";
    }
}

double director_health_sm_penalty(const struct director_health_sm *sm,
                                  const struct director_health_params *p, int64_t now_ms)
{
    if (sm->penalty <= 0 || now_ms <= sm->penalty_ms)
        return sm->penalty;
    return sm->penalty * exp2(-(double)(now_ms - sm->penalty_ms) / (double)p->flap_half_life_ms);
}

static void decay(struct director_health_sm *sm, const struct director_health_params *p,
                  int64_t now_ms)
{
    sm->penalty = director_health_sm_penalty(sm, p, now_ms);
    if (now_ms > sm->penalty_ms)
        sm->penalty_ms = now_ms;
    if (sm->suppressed && sm->penalty < p->flap_reuse)
        sm->suppressed = false;
}

bool director_health_sm_tick(struct director_health_sm *sm, const struct director_health_params *p,
                             int64_t now_ms)
{
    bool before = director_health_sm_healthy(sm);

    decay(sm, p, now_ms);
    return director_health_sm_healthy(sm) != before;
}

bool director_health_sm_result(struct director_health_sm *sm,
                               const struct director_health_params *p, bool ok, int64_t now_ms)
{
    bool before = director_health_sm_healthy(sm);
    enum director_health_state next = sm->state;

    decay(sm, p, now_ms);
    if (ok) {
        sm->fail_run = 0;
        sm->ok_run++;
    } else {
        sm->ok_run = 0;
        sm->fail_run++;
    }
    switch (sm->state) {
    case DIRECTOR_HEALTH_UNKNOWN:
        next = ok ? DIRECTOR_HEALTH_UP : DIRECTOR_HEALTH_DOWN;
        break;
    case DIRECTOR_HEALTH_UP:
        if (!ok && sm->fail_run >= p->fall)
            next = DIRECTOR_HEALTH_DOWN;
        break;
    case DIRECTOR_HEALTH_DOWN:
        if (ok && sm->ok_run >= p->rise)
            next = DIRECTOR_HEALTH_UP;
        break;
    }
    if (next != sm->state) {
        /* settling an unknown proxy is not a flap */
        if (sm->state != DIRECTOR_HEALTH_UNKNOWN) {
            sm->changes++;
            sm->penalty += FLAP_PENALTY;
            if (sm->penalty > p->flap_suppress)
                sm->suppressed = true;
        }
        sm->state = next;
        sm->changed_ms = now_ms;
        sm->ok_run = sm->fail_run = 0;
    }
    return director_health_sm_healthy(sm) != before;
}

/* ---- checker ---- */

struct target {
    struct director_health *h;
    char *host, *url;
    struct director_health_sm sm;
    bool consul_critical;
    uv_timer_t timer;    /* every interval: start a check */
    uv_timer_t deadline; /* timeout after the start: judge it */
    unsigned open_handles;
    CURL *easy;
    bool running;            /* transfer in flight */
    uint64_t start_stall_ms; /* loop_lag_stalled_ms() when it started */
    uint64_t checks, failures, late;
    char last_error[128];
    struct target *next;
};

struct seed {
    char *host;
    bool healthy;
    struct seed *next;
};

struct director_health {
    uv_loop_t *loop;
    struct curl_uv *cu;
    struct loop_lag *lag;
    struct director_health_opts o;
    char *default_path;
    struct target *targets;
    struct seed *seeds;
    struct director_health_status *status;
    size_t status_cap;
    uint64_t jitter;
};

static bool effective(const struct target *t)
{
    return director_health_sm_healthy(&t->sm) && !t->consul_critical;
}

static void notify(struct target *t, bool before)
{
    bool now = effective(t);

    if (now == before)
        return;
    log_warn("director: proxy %s is now %s (checks %s%s%s%s%s); updating the table", t->host,
             now ? "healthy" : "unhealthy", director_health_state_name(t->sm.state),
             t->sm.suppressed ? ", flapping: suppressed" : "",
             t->consul_critical ? ", critical in Consul" : "", t->last_error[0] ? ", last: " : "",
             t->last_error);
    if (t->h->o.on_change)
        t->h->o.on_change(t->h->o.arg, t->host, now);
}

/* Feed one judged check into the state machine. */
static void judge(struct target *t, bool ok)
{
    bool before = effective(t);

    t->checks++;
    if (!ok) {
        t->failures++;
        log_debug("director: health check %s (%s) failed: %s", t->host, t->url, t->last_error);
    }
    director_health_sm_result(&t->sm, &t->h->o.params, ok, (int64_t)uv_now(t->h->loop));
    notify(t, before);
}

static void on_done(CURL *easy, CURLcode result, void *arg)
{
    struct target *t = arg;
    long code = 0;

    t->running = false;
    uv_timer_stop(&t->deadline);
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code);
    if (result != CURLE_OK)
        snprintf(t->last_error, sizeof(t->last_error), "%s", curl_easy_strerror(result));
    else if (code < 200 || code >= 400)
        snprintf(t->last_error, sizeof(t->last_error), "HTTP %ld", code);
    else
        t->last_error[0] = '\0';
    judge(t, t->last_error[0] == '\0');
}

/* The check's time is up. Only now read what already arrived (libuv ran
 * this timer before polling for I/O): a reply that sits in the socket is
 * an answer in time. A check still unanswered is a failure, unless this
 * process itself could not act during the check for long enough
 * (loop_lag_own_fault: stopped, starved, busy loop): then nobody knows whether the proxy
 * would have answered, and the check is counted late, not judged. */
static void on_deadline(uv_timer_t *timer)
{
    struct target *t = timer->data;
    struct director_health *h = t->h;

    curl_uv_read_ready(h->cu);
    if (!t->running)
        return; /* answered (judged in on_done), or the target went away */
    curl_uv_remove(h->cu, t->easy);
    t->running = false;
    uint64_t stalled = loop_lag_stalled_ms(h->lag) - t->start_stall_ms;
    if (loop_lag_own_fault(stalled, (uint64_t)h->o.params.timeout_ms)) {
        t->late++;
        log_info("director: health check %s not judged: this process could not act for %llu ms "
                 "of its %lld ms timeout (stopped or starved); checking again in %lld ms",
                 t->host, (unsigned long long)stalled, (long long)h->o.params.timeout_ms,
                 (long long)h->o.params.interval_ms);
        return;
    }
    snprintf(t->last_error, sizeof(t->last_error), "no answer within %lld ms",
             (long long)h->o.params.timeout_ms);
    judge(t, false);
}

static void on_timer(uv_timer_t *timer)
{
    struct target *t = timer->data;
    bool before = effective(t);

    director_health_sm_tick(&t->sm, &t->h->o.params, (int64_t)uv_now(t->h->loop));
    notify(t, before);
    if (t->running)
        return; /* the previous check is still within its timeout */
    if (curl_uv_add(t->h->cu, t->easy, on_done, t) != 0)
        return;
    t->running = true;
    t->start_stall_ms = loop_lag_stalled_ms(t->h->lag);
    uv_timer_start(&t->deadline, on_deadline, (uint64_t)t->h->o.params.timeout_ms, 0);
}

static void free_target_cb(uv_handle_t *handle)
{
    struct target *t = handle->data;

    if (--t->open_handles > 0)
        return;
    curl_easy_cleanup(t->easy);
    free(t->host);
    free(t->url);
    free(t);
}

static void target_free(struct target *t)
{
    if (t->running)
        curl_uv_remove(t->h->cu, t->easy);
    t->running = false;
    uv_close((uv_handle_t *)&t->timer, free_target_cb);
    uv_close((uv_handle_t *)&t->deadline, free_target_cb);
}

static char *make_url(const struct director_health *h, const struct director_proxy_spec *p)
{
    char *url = NULL;
    unsigned port = p->health_port ? p->health_port : h->o.default_port;
    const char *path = p->health_path ? p->health_path : h->default_path;
    bool v6 = strchr(p->address, ':') != NULL;

    if (asprintf(&url, "http://%s%s%s:%u%s", v6 ? "[" : "", p->address, v6 ? "]" : "", port, path) <
        0)
        return NULL;
    return url;
}

static struct target *find(const struct director_health *h, const char *host)
{
    for (struct target *t = h->targets; t; t = t->next)
        if (strcmp(t->host, host) == 0)
            return t;
    return NULL;
}

static size_t discard(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    (void)ptr;
    (void)userdata;
    return size * nmemb;
}

static int target_new(struct director_health *h, const char *host, char *url, struct target **out)
{
    struct target *t = calloc(1, sizeof(*t));

    if (!t)
        return -ENOMEM;
    t->h = h;
    t->host = strdup(host);
    t->url = url;
    t->easy = curl_easy_init();
    if (!t->host || !t->easy) {
        curl_easy_cleanup(t->easy);
        free(t->host);
        free(t);
        return -ENOMEM;
    }
    director_health_sm_init(&t->sm);
    /* a seed counts once: a proxy removed and added again later starts
     * unknown, not with what the snapshot said long ago */
    for (struct seed **sp = &h->seeds; *sp; sp = &(*sp)->next) {
        struct seed *s = *sp;
        if (strcmp(s->host, host) == 0) {
            t->sm.state = s->healthy ? DIRECTOR_HEALTH_UP : DIRECTOR_HEALTH_DOWN;
            *sp = s->next;
            free(s->host);
            free(s);
            break;
        }
    }
    curl_easy_setopt(t->easy, CURLOPT_URL, t->url);
    /* No CURLOPT_TIMEOUT_MS: libcurl checks its timeout before it reads the
     * socket, so after a stall it would fail a check whose reply already
     * arrived. The deadline timer (on_deadline) decides instead; libcurl's
     * own connect timeout (300 s) is only a backstop. */
    curl_easy_setopt(t->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(t->easy, CURLOPT_NOBODY, 0L);
    /* only the status matters; the body is read and dropped */
    curl_easy_setopt(t->easy, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(t->easy, CURLOPT_USERAGENT, "drover-watcher-director/1");
    curl_easy_setopt(t->easy, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(t->easy, CURLOPT_NOPROXY, "*");
    uv_timer_init(h->loop, &t->timer);
    uv_timer_init(h->loop, &t->deadline);
    t->timer.data = t->deadline.data = t;
    t->open_handles = 2;
    /* spread the first checks over the interval, so a hundred proxies are
     * not checked in one burst */
    h->jitter = h->jitter * 6364136223846793005ull + 1442695040888963407ull;
    uint64_t first = (h->jitter >> 33) % (uint64_t)h->o.params.interval_ms;
    uv_timer_start(&t->timer, on_timer, first / 4, (uint64_t)h->o.params.interval_ms);
    *out = t;
    return 0;
}

/* the spec that decides host's check: in's, else also's */
static const struct director_proxy_spec *
target_spec(const struct director_inputs *in, const struct director_inputs *also, const char *host)
{
    const struct director_proxy_spec *p = director_inputs_proxy(in, host);
    return p || !also ? p : director_inputs_proxy(also, host);
}

static int add_targets(struct director_health *h, const struct director_inputs *in,
                       const struct director_inputs *also, const struct director_inputs *from)
{
    for (size_t i = 0; from && i < from->n_proxies; i++) {
        const struct director_proxy_spec *p = target_spec(in, also, from->proxies[i].host);
        if (p->state == DIRECTOR_PROXY_INACTIVE || find(h, p->host))
            continue;
        char *url = make_url(h, p);
        struct target *t;
        if (!url || target_new(h, p->host, url, &t) < 0) {
            free(url);
            return -ENOMEM;
        }
        t->next = h->targets;
        h->targets = t;
        log_info("director: checking proxy %s at %s every %lld ms", p->host, url,
                 (long long)h->o.params.interval_ms);
    }
    return 0;
}

int director_health_set_targets(struct director_health *h, const struct director_inputs *in,
                                const struct director_inputs *also)
{
    /* drop targets that are gone or changed */
    struct target **pp = &h->targets;
    while (*pp) {
        struct target *t = *pp;
        const struct director_proxy_spec *p = target_spec(in, also, t->host);
        char *url = p && p->state != DIRECTOR_PROXY_INACTIVE ? make_url(h, p) : NULL;
        bool keep = url && strcmp(url, t->url) == 0;
        free(url);
        if (keep) {
            pp = &t->next;
            continue;
        }
        *pp = t->next;
        log_info("director: stop checking proxy %s (%s)", t->host, t->url);
        target_free(t);
    }
    int rc = add_targets(h, in, also, in);
    return rc < 0 ? rc : add_targets(h, in, also, also);
}

void director_health_seed(struct director_health *h, const char *host, bool healthy)
{
    struct seed *s = calloc(1, sizeof(*s));

    if (!s || !(s->host = strdup(host))) {
        free(s);
        return; /* a missing seed only means "unknown" */
    }
    s->healthy = healthy;
    s->next = h->seeds;
    h->seeds = s;
}

static bool addr_equal(const char *a, const char *b)
{
    unsigned char x[16], y[16];
    int fa = strchr(a, ':') ? AF_INET6 : AF_INET, fb = strchr(b, ':') ? AF_INET6 : AF_INET;

    if (fa != fb || inet_pton(fa, a, x) != 1 || inet_pton(fb, b, y) != 1)
        return false;
    return memcmp(x, y, fa == AF_INET ? 4 : 16) == 0;
}

void director_health_set_consul(struct director_health *h, const struct consul_health_list *l)
{
    for (struct target *t = h->targets; t; t = t->next) {
        bool before = effective(t), seen = false, passing = false;
        /* the address is between "http://" (maybe "[") and ":port" */
        char addr[64];
        const char *a = t->url + 7;
        if (*a == '[')
            a++;
        size_t n = strcspn(a, "]");
        if (!strchr(a, ']'))
            n = strcspn(a, ":");
        snprintf(addr, sizeof(addr), "%.*s", (int)n, a);
        for (size_t i = 0; l && i < l->n; i++) {
            const struct consul_health_entry *e = &l->items[i];
            const char *ea =
                e->service_address && *e->service_address ? e->service_address : e->node_address;
            if (!ea || !addr_equal(ea, addr))
                continue;
            seen = true;
            if (e->status != CONSUL_HEALTH_CRITICAL)
                passing = true;
        }
        t->consul_critical = seen && !passing;
        notify(t, before);
    }
}

bool director_health_healthy(const struct director_health *h, const char *host)
{
    const struct target *t = find(h, host);

    return t ? effective(t) : true;
}

size_t director_health_list(struct director_health *h, struct director_health_status **out)
{
    size_t n = 0;

    for (struct target *t = h->targets; t; t = t->next)
        n++;
    if (n > h->status_cap) {
        void *p = realloc(h->status, n * sizeof(*h->status));
        if (!p) {
            *out = NULL;
            return 0;
        }
        h->status = p;
        h->status_cap = n;
    }
    n = 0;
    for (struct target *t = h->targets; t; t = t->next, n++) {
        struct director_health_status *s = &h->status[n];
        s->host = t->host;
        s->state = t->sm.state;
        s->healthy = effective(t);
        s->suppressed = t->sm.suppressed;
        s->consul_critical = t->consul_critical;
        s->checks = t->checks;
        s->failures = t->failures;
        s->late = t->late;
        s->changes = t->sm.changes;
        snprintf(s->last_error, sizeof(s->last_error), "%s", t->last_error);
    }
    *out = h->status;
    return n;
}

int director_health_new(uv_loop_t *loop, struct curl_uv *cu, const struct director_health_opts *o,
                        struct director_health **out)
{
    struct director_health *h = calloc(1, sizeof(*h));

    if (!h)
        return -ENOMEM;
    h->loop = loop;
    h->cu = cu;
    h->o = *o;
    director_health_params_defaults(&h->o.params);
    if (!h->o.default_port)
        h->o.default_port = 80;
    h->default_path = strdup(o->default_path ? o->default_path : "/");
    if (!h->default_path) {
        free(h);
        return -ENOMEM;
    }
    h->o.default_path = h->default_path;
    int rc = 0;
    if (o->loop_lag)
        h->lag = loop_lag_ref(o->loop_lag);
    else if ((rc = loop_lag_new(loop, &h->lag)) < 0) {
        free(h->default_path);
        free(h);
        return rc;
    }
    h->o.loop_lag = NULL; /* h->lag is the reference kept */
    h->jitter = (uint64_t)uv_hrtime();
    *out = h;
    return 0;
}

void director_health_free(struct director_health *h)
{
    if (!h)
        return;
    while (h->targets) {
        struct target *t = h->targets;
        h->targets = t->next;
        target_free(t);
    }
    while (h->seeds) {
        struct seed *s = h->seeds;
        h->seeds = s->next;
        free(s->host);
        free(s);
    }
    loop_lag_unref(h->lag);
    free(h->default_path);
    free(h->status);
    free(h);
}
