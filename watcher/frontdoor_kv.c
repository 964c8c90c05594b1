/* SPDX-License-Identifier: Apache-2.0 */
/*
 * frontdoor_kv: the drain record watched, the status record published (see
 * frontdoor_kv.h). Shared by the director and the anycast daemon so both
 * hosts drain and report the same way.
 */
#include "frontdoor_kv.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "consul.h"
#include "frontdoor_agent.h"
#include "kv_frontdoor.h"
#include "kv_key.h"
#include "log.h"
#include "metrics.h"
#include "timefmt.h"

#define REPUBLISH_MS 2000 /* the packet counter moves: put at least this often */

struct frontdoor_kv {
    struct consul_client *consul; /* NULL once stopped */
    struct frontdoor_agent *agent;
    struct metrics_counter *m_bad;
    struct consul_watch *watch;
    char *drain_prefix, *drain_key, *status_key;
    char *published; /* last status put, without packets and time */
    uint64_t published_ms;
    bool put_busy;
};

static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000;
}

/* frontdoor/hosts/<host>: drained or not. A bad record keeps the last
 * good state; no record is not drained. */
static void on_drain_record(void *arg, struct consul_response *resp)
{
    struct frontdoor_kv *k = arg;
    struct kv_frontdoor_host rec;
    bool drained = false;
    char err[256];

    for (size_t i = 0; resp->kv && i < resp->kv->n; i++) {
        const struct consul_kv *kv = &resp->kv->items[i];
        if (strcmp(kv->key, k->drain_key) != 0)
            continue;
        if (kv_frontdoor_host_decode(kv->value ? (const char *)kv->value : "",
                                     kv->value ? kv->value_len : 0, &rec, err, sizeof(err)) < 0) {
            if (k->m_bad)
                metrics_counter_inc(k->m_bad);
            log_warn("frontdoor: KV %s: %s; keeping the drain state as it was", kv->key, err);
            return;
        }
        drained = rec.drained;
        kv_frontdoor_host_clear(&rec);
    }
    frontdoor_agent_set_drain(k->agent, drained, (int64_t)now_ms());
}

int frontdoor_kv_start(struct consul_client *c, const struct frontdoor_kv_opts *o,
                       struct frontdoor_kv **out)
{
    struct frontdoor_kv *k;
    char host[256] = "";
    int rc;

    *out = NULL;
    if (o->host && *o->host)
        snprintf(host, sizeof(host), "%s", o->host);
    else if (gethostname(host, sizeof(host) - 1) < 0)
        host[0] = '\0';
    if (!kv_valid_segment(host)) {
        log_error("frontdoor: host name '%s' (--host-name, default the system's) is not a valid KV "
                  "key segment",
                  host);
        return -EINVAL;
    }
    if (!(k = calloc(1, sizeof(*k))))
        return -ENOMEM;
    k->consul = c;
    k->agent = o->agent;
    k->m_bad = o->m_bad;
    if (asprintf(&k->drain_prefix, "%s" KV_FRONTDOOR_HOSTS, o->kv_prefix) < 0)
        k->drain_prefix = NULL;
    if (asprintf(&k->drain_key, "%s" KV_FRONTDOOR_HOSTS "%s", o->kv_prefix, host) < 0)
        k->drain_key = NULL;
    if (asprintf(&k->status_key, "%s" KV_FRONTDOOR_STATUS "%s", o->kv_prefix, host) < 0)
        k->status_key = NULL;
    if (!k->drain_prefix || !k->drain_key || !k->status_key) {
        frontdoor_kv_free(k);
        return -ENOMEM;
    }
    /* The whole hosts/ prefix, not this host's key: a key that does not
     * exist (a host never drained) is an empty prefix, which Consul wakes
     * on every KV write; droverctl keeps the folder key hosts/ (kv-schema). */
    struct consul_watch_opts wo = {
        .kind = CONSUL_WATCH_KV_PREFIX,
        .target = k->drain_prefix,
        .wait_s = o->wait_s,
        .on_change = on_drain_record,
        .arg = k,
    };
    if ((rc = consul_watch_start(c, &wo, &k->watch)) < 0)
        log_warn("frontdoor: cannot watch %s: %s; drains of this host are not seen",
                 k->drain_prefix, strerror(-rc));
    *out = k;
    return 0;
}

static void on_status_put(void *arg, struct consul_response *resp)
{
    struct frontdoor_kv *k = arg;
    k->put_busy = false;
    if (resp->err) {
        /* counted by the Consul client; the next round tries again */
        log_debug("frontdoor: PUT %s: %s", k->status_key, resp->errmsg);
        free(k->published);
        k->published = NULL;
    }
}

void frontdoor_kv_publish(struct frontdoor_kv *k, const char *cluster, const char *checksum,
                          uint64_t packets)
{
    struct kv_frontdoor_status st = {0};
    const struct frontdoor_vip_status *vs;
    char updated[40];

    if (!k || !k->consul || k->put_busy)
        return;
    size_t n = frontdoor_agent_list(k->agent, &vs);
    struct kv_frontdoor_vip *v = calloc(n + 1, sizeof(*v));
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        v[i] = (struct kv_frontdoor_vip){.vip = (char *)vs[i].address,
                                         .route = (char *)frontdoor_route_name(vs[i].route),
                                         .reason = (char *)vs[i].reason};
    st.cluster = (char *)cluster;
    st.table_checksum = (char *)checksum;
    st.drained = frontdoor_agent_drained(k->agent);
    st.bird_in_sync = frontdoor_agent_in_sync(k->agent);
    st.vips = v;
    st.n_vips = n;
    char *same = kv_frontdoor_status_encode(&st); /* what changes only with a decision */
    st.packets = packets;
    timefmt_format_rfc3339((int64_t)time(NULL), updated, sizeof(updated));
    st.updated = updated;
    char *value = kv_frontdoor_status_encode(&st);
    free(v);
    bool changed = !k->published || !same || strcmp(same, k->published) != 0;
    if (value && same && (changed || now_ms() - k->published_ms >= REPUBLISH_MS) &&
        consul_kv_put(k->consul, k->status_key, value, strlen(value), NULL, on_status_put, k) ==
            0) {
        k->put_busy = true;
        k->published_ms = now_ms();
        free(k->published);
        k->published = same;
        same = NULL;
    }
    free(same);
    free(value);
}

void frontdoor_kv_stop(struct frontdoor_kv *k)
{
    if (!k)
        return;
    if (k->watch)
        consul_watch_stop(k->watch);
    k->watch = NULL;
    k->consul = NULL;
}

void frontdoor_kv_free(struct frontdoor_kv *k)
{
    if (!k)
        return;
    frontdoor_kv_stop(k);
    free(k->drain_prefix);
    free(k->drain_key);
    free(k->status_key);
    free(k->published);
    free(k);
}
