/* SPDX-License-Identifier: Apache-2.0 */
/*
 * commands_deploy: the config lifecycle of one HAProxy cluster (records:
 * kv_deploy.h; docs/droverctl.md, "Config changes"):
 *
 *   config apply FILE... --canary H   check the files, stage what differs
 *                                     from live in R haproxy/<c>/canary, watch
 *                                     the canary hosts' status entries
 *   config promote                    the staged values go live in one txn:
 *                                     cas on every key at the index it had
 *                                     when staged, the staged entry deleted,
 *                                     a version recorded, old ones pruned
 *   config abort                      the staged entry deleted (cas)
 *   config history                    the versions kept, and whether live
 *                                     still equals the newest one
 *   config rollback V (--canary H | --now)
 *                                     stage (or make live) version V again
 *
 * Every write carries its audit entry in the same transaction. A key
 * written by anyone else (a direct `consul kv put`) makes live differ from
 * the newest version: history and status say "applied without canary".
 */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commands_internal.h"
#include "json_util.h"
#include "kv_deploy.h"
#include "kv_key.h"
#include "kv_kube.h"
#include "kv_status.h"
#include "log.h"
#include "timefmt.h"

#define WATCH_POLL_MS 250

/* The cluster's operator records as they are in KV. */
struct live {
    json_t *values;    /* rel key -> value (JSON objects only) */
    json_t *index;     /* rel key -> ModifyIndex, every record */
    size_t unreadable; /* records whose value is no JSON object (not in values) */
};

/* The versions under R deploy/<cluster>/history/. */
struct history {
    struct kv_deploy_rec *v; /* the ones that decode, oldest first */
    size_t n;
    uint64_t *all; /* every version key, oldest first (pruning) */
    size_t n_all;
    size_t bad; /* entries that do not decode (or are no version key) */
};

static void live_clear(struct live *l)
{
    json_decref(l->values);
    json_decref(l->index);
    memset(l, 0, sizeof(*l));
}

static void history_clear(struct history *h)
{
    for (size_t i = 0; i < h->n; i++)
        kv_deploy_clear(&h->v[i]);
    free(h->v);
    free(h->all);
    memset(h, 0, sizeof(*h));
}

static uint64_t history_latest(const struct history *h)
{
    return h->n_all ? h->all[h->n_all - 1] : 0;
}

static const struct kv_deploy_rec *history_find(const struct history *h, uint64_t version)
{
    for (size_t i = 0; i < h->n; i++)
        if (h->v[i].version == version)
            return &h->v[i];
    return NULL;
}

static int read_live(struct ctl_kv *kv, const struct ctl_settings *s, const char *cluster,
                     struct live *l, char *err, size_t errlen)
{
    char prefix[400], jerr[256];
    struct consul_kv_list *list = NULL;
    int rc;

    l->values = json_object();
    l->index = json_object();
    snprintf(prefix, sizeof(prefix), "%shaproxy/%s/", s->root, cluster);
    if (!l->values || !l->index)
        return -ENOMEM;
    if ((rc = ctl_kv_list(kv, prefix, &list, err, errlen)) < 0)
        return rc;
    for (size_t i = 0; list && i < list->n; i++) {
        const struct consul_kv *it = &list->items[i];
        const char *rel = it->key + strlen(s->root);
        json_t *v = NULL;
        if (!kv_deploy_key_ok(cluster, rel))
            continue;
        json_object_set_new(l->index, rel, json_integer((json_int_t)it->modify_index));
        if (it->value &&
            json_from_buffer((const char *)it->value, it->value_len, it->key, &v, jerr,
                             sizeof(jerr)) == 0 &&
            json_is_object(v))
            json_object_set_new(l->values, rel, v);
        else {
            json_decref(v);
            l->unreadable++;
        }
    }
    consul_kv_list_free(list);
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_rec(const void *a, const void *b)
{
    return cmp_u64(&((const struct kv_deploy_rec *)a)->version,
                   &((const struct kv_deploy_rec *)b)->version);
}

static int read_history(struct ctl_kv *kv, const struct ctl_settings *s, const char *cluster,
                        struct history *h, char *err, size_t errlen)
{
    struct consul_kv_list *list = NULL;
    char *prefix = kv_deploy_history_prefix(s->root, cluster), e[512];
    int rc;

    if (!prefix)
        return -ENOMEM;
    if ((rc = ctl_kv_list(kv, prefix, &list, err, errlen)) < 0)
        goto out;
    size_t n = list ? list->n : 0;
    h->v = calloc(n + 1, sizeof(*h->v));
    h->all = calloc(n + 1, sizeof(*h->all));
    if (!h->v || !h->all) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const struct consul_kv *it = &list->items[i];
        uint64_t ver;
        if (kv_deploy_history_version(it->key + strlen(prefix), &ver) < 0) {
            h->bad++;
            continue;
        }
        h->all[h->n_all++] = ver;
        rc = kv_deploy_decode((const char *)it->value, it->value_len, it->key, false, &h->v[h->n],
                              e, sizeof(e));
        if (rc == -ENOMEM)
            goto out;
        if (rc == 0 && (h->v[h->n].version != ver || strcmp(h->v[h->n].cluster, cluster) != 0)) {
            kv_deploy_clear(&h->v[h->n]);
            snprintf(e, sizeof(e), "%s: version or cluster differ from its key", it->key);
            rc = -EINVAL;
        }
        if (rc < 0) {
            log_warn("droverctl: skipping bad history entry: %s", e);
            h->bad++;
            continue;
        }
        h->n++;
    }
    rc = 0;
    qsort(h->v, h->n, sizeof(*h->v), cmp_rec);
    qsort(h->all, h->n_all, sizeof(*h->all), cmp_u64);
out:
    consul_kv_list_free(list);
    free(prefix);
    return rc;
}

/* The staged change: 1 with *r and *index, 0 none, -EINVAL a record
 * that does not decode (err; *index set), or -errno. */
static int read_staged(struct ctl_kv *kv, const struct ctl_settings *s, const char *cluster,
                       struct kv_deploy_rec *r, uint64_t *index, char *err, size_t errlen)
{
    struct consul_kv_list *l = NULL;
    char *key = kv_deploy_canary_key(s->root, cluster);
    int rc;

    memset(r, 0, sizeof(*r));
    *index = 0;
    if (!key)
        return -ENOMEM;
    if ((rc = ctl_kv_get(kv, key, &l, err, errlen)) < 0 || !l || !l->n) {
        free(key);
        consul_kv_list_free(l);
        return rc < 0 ? rc : 0;
    }
    *index = l->items[0].modify_index;
    rc = kv_deploy_decode((const char *)l->items[0].value, l->items[0].value_len, key, true, r, err,
                          errlen);
    if (rc == 0 && strcmp(r->cluster, cluster) != 0) {
        snprintf(err, errlen, "%s: names cluster %s", key, r->cluster);
        kv_deploy_clear(r);
        rc = -EINVAL;
    }
    free(key);
    consul_kv_list_free(l);
    return rc < 0 ? rc : 1;
}

/* ---- results ---------------------------------------------------------------------- */

static char *dump(const json_t *j)
{
    return json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
}

/* A result with both text and JSON (j: reference taken), for answers that
 * are longer than one refusal line. */
static int finish(struct ctl_result *res, enum ctl_outcome o, bool changed, struct sbuf *b,
                  json_t *j)
{
    if (j) {
        json_object_set_new(j, "ok", json_boolean(o == CTL_OK));
        json_object_set_new(j, "changed", json_boolean(changed));
    }
    res->outcome = o;
    res->changed = changed;
    res->text = commands_sb_take(b);
    res->json = j ? dump(j) : NULL;
    json_decref(j);
    return res->text && res->json ? 0 : -ENOMEM;
}

static int refuse(struct ctl_result *res, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int refuse(struct ctl_result *res, const char *fmt, ...)
{
    char msg[ERRLEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return commands_fail(res, CTL_REFUSED, msg);
}

static json_t *strv_json(char *const *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

static void hosts_text(struct sbuf *b, char *const *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        commands_sb_printf(b, "%s%s", i ? "," : "", v[i]);
}

/* ---- writing ------------------------------------------------------------------------ */

/* The ops of one transaction and the strings they point to. */
struct txn {
    struct consul_txn_op ops[CONSUL_TXN_MAX_OPS];
    char *owned[2 * CONSUL_TXN_MAX_OPS];
    size_t n, n_owned;
    bool full, oom;
};

/* Add an op; key and value are taken (freed with the txn). */
static void txn_add(struct txn *t, enum consul_txn_verb verb, char *key, char *value,
                    uint64_t index)
{
    if (key)
        t->owned[t->n_owned++] = key;
    if (value)
        t->owned[t->n_owned++] = value;
    if (!key) {
        t->oom = true;
        return;
    }
    if (t->n == CONSUL_TXN_MAX_OPS) {
        t->full = true;
        return;
    }
    t->ops[t->n++] = (struct consul_txn_op){.verb = verb,
                                            .key = key,
                                            .value = value,
                                            .value_len = value ? strlen(value) : 0,
                                            .index = index};
}

static void txn_free(struct txn *t)
{
    for (size_t i = 0; i < t->n_owned; i++)
        free(t->owned[i]);
}

/* Run t (plus an audit entry of action on target) unless it overflowed. */
static int txn_run(struct ctl_kv *kv, const struct ctl_settings *s, const struct ctl_command *cmd,
                   int64_t now_ms, struct txn *t, const char *action, const char *target,
                   const json_t *before, const json_t *after, char *akey, size_t akeylen, char *err,
                   size_t errlen)
{
    commands_audit_key(s, now_ms, akey, akeylen);
    json_t *a =
        commands_audit_value(cmd, commands_author(cmd, s), action, target, now_ms, before, after);
    txn_add(t, CONSUL_TXN_CAS, strdup(akey), a ? dump(a) : NULL, 0);
    json_decref(a);
    if (!a || t->oom) {
        snprintf(err, errlen, "out of memory building the transaction");
        return -ENOMEM;
    }
    if (t->full) {
        snprintf(err, errlen,
                 "the change needs more than %d operations in one Consul transaction; split it "
                 "into smaller changes",
                 CONSUL_TXN_MAX_OPS);
        return -E2BIG;
    }
    if (s->before_write)
        s->before_write(s->before_write_arg, 1);
    return ctl_kv_txn(kv, t->ops, t->n, err, errlen);
}

/* Make keys (rel -> value or null) live with cas at base (rel -> index),
 * delete the staged entry (staged_index > 0), record version (the state
 * after, from live) and prune history, in one transaction. */
struct commit {
    const json_t *keys, *base;
    char *const *canary;
    size_t n_canary;
    uint64_t version, rollback_of, staged_index;
    const json_t *staged; /* the staged record (audit "before"), or NULL */
    const char *reason;   /* when the command has none (the staged change's) */
    const char *action;
};

static int commit(struct ctl_kv *kv, const struct ctl_settings *s, const struct ctl_command *cmd,
                  int64_t now_ms, const char *cluster, const struct commit *c, const struct live *l,
                  const struct history *h, char *akey, size_t akeylen, char *err, size_t errlen)
{
    struct txn t = {0};
    const char *rel;
    json_t *v, *after = json_deep_copy(l->values);
    int rc = -ENOMEM;

    if (!after)
        return rc;
    json_object_foreach((json_t *)c->keys, rel, v)
    {
        uint64_t base = (uint64_t)json_integer_value(json_object_get(c->base, rel));
        char *full = kv_key_printf("%s%s", s->root, rel);
        if (json_is_null(v)) {
            json_object_del(after, rel);
            if (base)
                txn_add(&t, CONSUL_TXN_DELETE_CAS, full, NULL, base);
            else
                txn_add(&t, CONSUL_TXN_CHECK_NOT_EXISTS, full, NULL, 0);
        } else {
            json_object_set(after, rel, v);
            txn_add(&t, CONSUL_TXN_CAS, full, kv_canonical(v), base);
        }
    }
    if (c->staged_index)
        txn_add(&t, CONSUL_TXN_DELETE_CAS, kv_deploy_canary_key(s->root, cluster), NULL,
                c->staged_index);
    struct kv_deploy_rec hr = {.version = c->version,
                               .rollback_of = c->rollback_of,
                               .cluster = (char *)cluster,
                               .canary = (char **)c->canary,
                               .n_canary = c->n_canary,
                               .author = (char *)commands_author(cmd, s),
                               .reason = cmd->reason ? cmd->reason : (char *)c->reason,
                               .time_unix = now_ms / 1000,
                               .keys = after};
    json_t *hj = kv_deploy_encode(&hr);
    char *hkey = kv_deploy_history_key(s->root, cluster, c->version);
    txn_add(&t, CONSUL_TXN_CAS, hkey ? strdup(hkey) : NULL, hj ? dump(hj) : NULL, 0);
    /* keep the newest KV_DEPLOY_HISTORY_KEEP, counting the one recorded */
    for (size_t i = 0; i + KV_DEPLOY_HISTORY_KEEP < h->n_all + 1; i++)
        txn_add(&t, CONSUL_TXN_DELETE, kv_deploy_history_key(s->root, cluster, h->all[i]), NULL, 0);
    json_t *summary = json_pack("{s:I, s:s?, s:O}", "version", (json_int_t)c->version, "history",
                                hkey, "keys", c->keys);
    if (hj && summary)
        rc = txn_run(kv, s, cmd, now_ms, &t, c->action, hkey ? hkey : "?", c->staged, summary, akey,
                     akeylen, err, errlen);
    json_decref(summary);
    json_decref(hj);
    json_decref(after);
    free(hkey);
    txn_free(&t);
    return rc;
}

/* ---- watching the canary hosts ----------------------------------------------------- */

static const struct kv_status_service *status_service(const struct kv_status_rec *st,
                                                      const char *name)
{
    for (size_t i = 0; i < st->n_services; i++)
        if (strcmp(st->services[i].name, name) == 0)
            return &st->services[i];
    return NULL;
}

/* Where host is with the staged change r: 1 applied (detail says what
 * it installed), -1 refused (detail: its error), 0 not yet (detail: why). */
static int canary_state(const struct kv_deploy_rec *r, const struct kv_status_rec *st, char *detail,
                        size_t len)
{
    const char *rel;
    json_t *v;
    size_t off = 0;

    if (st->canary_version != r->version) {
        snprintf(detail, len, "runs %s", st->canary_version ? "another staged version" : "live");
        return 0;
    }
    detail[0] = '\0';
    json_object_foreach(r->keys, rel, v)
    {
        const char *name = strrchr(rel, '/') + 1;
        char want[17];
        if (!strstr(rel, "/services/"))
            continue; /* force-removal entries show in no service */
        const struct kv_status_service *svc = status_service(st, name);
        if (svc && svc->error) {
            snprintf(detail, len, "%s: %s", name, svc->error);
            return -1;
        }
        if (json_is_null(v)) {
            if (svc) {
                snprintf(detail, len, "%s still installed", name);
                return 0;
            }
            off += (size_t)snprintf(detail + off, off < len ? len - off : 0, "%s%s: removed",
                                    off ? "; " : "", name);
            continue;
        }
        char *bytes = kv_canonical(v);
        if (!bytes)
            return 0;
        kv_hash64_hex(bytes, strlen(bytes), want);
        free(bytes);
        if (!svc || strcmp(svc->definition, want) != 0 || !*svc->config_hash) {
            snprintf(detail, len, "%s not installed yet", name);
            return 0;
        }
        off += (size_t)snprintf(detail + off, off < len ? len - off : 0,
                                "%s%s: config %s installed (haproxy -c passed, reload verified), "
                                "reloads %lld",
                                off ? "; " : "", name, svc->config_hash, (long long)svc->reloads);
    }
    return 1;
}

static int read_host_status(struct ctl_kv *kv, const struct ctl_settings *s, const char *host,
                            struct kv_status_rec *st)
{
    char err[ERRLEN];
    struct consul_kv_list *l = NULL;
    json_t *v = NULL;
    char *key = kv_status_key(s->root, host, KV_STATUS_ROLE_HAPROXY);
    int rc = -ENOENT;

    if (key && ctl_kv_get(kv, key, &l, err, sizeof(err)) == 0 && l && l->n &&
        json_from_buffer((const char *)l->items[0].value, l->items[0].value_len, key, &v, err,
                         sizeof(err)) == 0 &&
        kv_status_decode(v, st, err, sizeof(err)) == 0)
        rc = 0;
    json_decref(v);
    consul_kv_list_free(l);
    free(key);
    return rc;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Poll the canary hosts' status entries until each applied or refused r,
 * or wait_ms passed. Lines into b, {host: {state, detail}} into out.
 * true when every host applied it. */
static bool watch_canary(struct ctl_kv *kv, const struct ctl_settings *s,
                         const struct kv_deploy_rec *r, int64_t wait_ms, struct sbuf *b,
                         json_t *out)
{
    int *state = calloc(r->n_canary, sizeof(*state));
    char(*detail)[600] = calloc(r->n_canary, sizeof(*detail));
    int64_t t0 = mono_ms();
    bool all = state && detail;

    for (bool pending = all; pending;) {
        pending = false;
        for (size_t i = 0; i < r->n_canary; i++) {
            struct kv_status_rec st;
            if (state[i] != 0)
                continue;
            if (read_host_status(kv, s, r->canary[i], &st) < 0) {
                snprintf(detail[i], sizeof(detail[i]), "no status entry");
            } else {
                state[i] = canary_state(r, &st, detail[i], sizeof(detail[i]));
                kv_status_free(&st);
            }
            pending |= state[i] == 0;
        }
        if (pending && mono_ms() - t0 >= wait_ms)
            break;
        if (pending) {
            struct timespec p = {0, WATCH_POLL_MS * 1000000L};
            nanosleep(&p, NULL);
        }
    }
    for (size_t i = 0; all && i < r->n_canary; i++) {
        const char *word = state[i] > 0 ? "applied" : state[i] < 0 ? "refused" : "not applied";
        commands_sb_printf(b, "  %s: %s%s%s%s\n", r->canary[i], word,
                           state[i] == 0 ? " within the window (" : ": ", detail[i],
                           state[i] == 0 ? ")" : "");
        json_object_set_new(out, r->canary[i],
                            json_pack("{s:s, s:s}", "state", word, "detail", detail[i]));
        all &= state[i] > 0;
    }
    free(state);
    free(detail);
    return all;
}

/* ---- the canary hosts' HAProxy error counters ------------------------------------------ */

/* The status entries of the canary hosts, read before the change is
 * staged (st[i] zeroed when host i has none). Caller frees (errors_free). */
static struct kv_status_rec *errors_baseline(struct ctl_kv *kv, const struct ctl_settings *s,
                                             char *const *hosts, size_t n)
{
    struct kv_status_rec *st = calloc(n ? n : 1, sizeof(*st));
    for (size_t i = 0; st && i < n; i++)
        if (read_host_status(kv, s, hosts[i], &st[i]) < 0)
            memset(&st[i], 0, sizeof(st[i]));
    return st;
}

static void errors_free(struct kv_status_rec *st, size_t n)
{
    for (size_t i = 0; st && i < n; i++)
        kv_status_free(&st[i]);
    free(st);
}

/* What a service's counters did between the entries before and after:
 * the difference while the same worker counts, or everything the new
 * worker counted when it was reloaded or restarted (a counter went back)
 * meanwhile. true when `since_reload`. */
static bool errors_delta(const struct kv_status_service *before,
                         const struct kv_status_service *after, struct kv_status_errors *d)
{
    const struct kv_status_errors *b = &before->errors, *a = &after->errors;
    bool fresh = !before->have_errors || before->reloads != after->reloads ||
                 a->requests < b->requests || a->req_errors < b->req_errors ||
                 a->conn_errors < b->conn_errors || a->resp_errors < b->resp_errors ||
                 a->http_5xx < b->http_5xx;
    *d = *a;
    if (!fresh) {
        d->requests -= b->requests;
        d->req_errors -= b->req_errors;
        d->conn_errors -= b->conn_errors;
        d->resp_errors -= b->resp_errors;
        d->http_5xx -= b->http_5xx;
    }
    return fresh;
}

static int64_t errors_total(const struct kv_status_errors *e)
{
    return e->req_errors + e->conn_errors + e->resp_errors + e->http_5xx;
}

/* One canary host: its services' counters now against before, a line
 * into b and {service: {requests, ..., since_reload}} into out. true when
 * an error counter rose. */
static bool errors_host(const struct kv_status_rec *before, const struct kv_status_rec *now,
                        struct sbuf *b, json_t *out)
{
    static const struct kv_status_service none = {0};
    bool rose = false;
    size_t shown = 0;
    for (size_t k = 0; k < now->n_services; k++) {
        const struct kv_status_service *a = &now->services[k];
        const struct kv_status_service *p = status_service(before, a->name);
        struct kv_status_errors d;
        if (!a->have_errors) {
            commands_sb_printf(b, "%s%s: no counters yet", shown++ ? "; " : "", a->name);
            continue;
        }
        bool fresh = errors_delta(p ? p : &none, a, &d);
        rose |= errors_total(&d) > 0;
        commands_sb_printf(b,
                           "%s%s: %lld requests, 5xx +%lld, conn errors +%lld, resp errors "
                           "+%lld, req errors +%lld%s",
                           shown++ ? "; " : "", a->name, (long long)d.requests,
                           (long long)d.http_5xx, (long long)d.conn_errors,
                           (long long)d.resp_errors, (long long)d.req_errors,
                           fresh ? " (since its reload)" : "");
        json_t *dj = kv_status_errors_json(&d);
        json_object_set_new(dj, "since_reload", json_boolean(fresh));
        json_object_set_new(out, a->name, dj);
    }
    if (!shown)
        commands_sb_printf(b, "no HAProxy service");
    return rose;
}

/* After every canary host applied the change: wait soak_ms, then compare
 * each host's counters with before[] (lines into b, "errors" into each
 * host of hosts). true when no error counter rose on any canary host. */
static bool watch_errors(struct ctl_kv *kv, const struct ctl_settings *s,
                         const struct kv_deploy_rec *r, const struct kv_status_rec *before,
                         int64_t soak_ms, struct sbuf *b, json_t *hosts)
{
    bool calm = true;
    if (soak_ms > 0) {
        struct timespec p = {soak_ms / 1000, (soak_ms % 1000) * 1000000L};
        while (nanosleep(&p, &p) < 0 && errno == EINTR)
            ;
    }
    commands_sb_printf(b,
                       "HAProxy error counters of the canary hosts since the change (%lld ms "
                       "after applied):\n",
                       (long long)soak_ms);
    for (size_t i = 0; i < r->n_canary; i++) {
        struct kv_status_rec now;
        json_t *h = json_object_get(hosts, r->canary[i]), *e = json_object();
        commands_sb_printf(b, "  %s: ", r->canary[i]);
        if (read_host_status(kv, s, r->canary[i], &now) < 0) {
            commands_sb_printf(b, "no status entry\n");
            json_decref(e);
            calm = false;
            continue;
        }
        bool rose = errors_host(&before[i], &now, b, e);
        commands_sb_printf(b, "%s\n", rose ? " -- ERRORS RISING" : "");
        kv_status_free(&now);
        if (h) {
            json_object_set_new(h, "errors", e);
            json_object_set_new(h, "errors_rising", json_boolean(rose));
        } else {
            json_decref(e);
        }
        calm &= !rose;
    }
    return calm;
}

/* ---- stage (apply, rollback with --canary) ------------------------------------------- */

/* Every canary host runs a watcher of cluster (its status entry says so). */
static int check_canary_hosts(struct ctl_kv *kv, const struct ctl_settings *s,
                              const struct ctl_command *cmd, const char *cluster,
                              struct ctl_result *res)
{
    for (size_t i = 0; i < cmd->n_canary; i++) {
        struct kv_status_rec st;
        if (read_host_status(kv, s, cmd->canary[i], &st) < 0)
            return refuse(res,
                          "refused: canary host %s is not in the fleet (no readable "
                          "%sstatus/%s/haproxy); nothing was staged",
                          cmd->canary[i], s->root, cmd->canary[i]);
        bool ours = strcmp(st.cluster, cluster) == 0;
        kv_status_free(&st);
        if (!ours)
            return refuse(res,
                          "refused: canary host %s serves another cluster than %s; nothing was "
                          "staged",
                          cmd->canary[i], cluster);
    }
    return 1;
}

static int stage(struct ctl_kv *kv, const struct ctl_settings *s, const struct ctl_command *cmd,
                 int64_t now_ms, const char *cluster, json_t *keys, uint64_t rollback_of,
                 const struct live *l, const struct history *h, struct ctl_result *res)
{
    char err[ERRLEN], akey[400];
    const char *rel;
    json_t *v, *base = json_object();
    struct txn t = {0};
    struct sbuf b = {0};
    int rc;

    json_object_foreach(keys, rel, v) json_object_set_new(
        base, rel, json_integer(json_integer_value(json_object_get(l->index, rel))));
    struct kv_deploy_rec r = {.staged = true,
                              .version = history_latest(h) + 1,
                              .rollback_of = rollback_of,
                              .cluster = (char *)cluster,
                              .canary = cmd->canary,
                              .n_canary = cmd->n_canary,
                              .author = (char *)commands_author(cmd, s),
                              .reason = cmd->reason,
                              .time_unix = now_ms / 1000,
                              .keys = keys,
                              .base = base};
    json_t *rj = kv_deploy_encode(&r);
    char *ckey = kv_deploy_canary_key(s->root, cluster);
    struct kv_status_rec *before =
        cmd->wait_ms > 0 ? errors_baseline(kv, s, cmd->canary, cmd->n_canary) : NULL;
    txn_add(&t, CONSUL_TXN_CAS, ckey, rj ? dump(rj) : NULL, 0);
    rc = txn_run(kv, s, cmd, now_ms, &t, rollback_of ? "config-rollback" : "config-apply",
                 ckey ? ckey + strlen(s->root) : "?", NULL, rj, akey, sizeof(akey), err,
                 sizeof(err));
    txn_free(&t);
    if (rc < 0) {
        json_decref(rj);
        json_decref(base);
        errors_free(before, cmd->n_canary);
        if (rc == -ECANCELED)
            return refuse(res,
                          "refused: another change was staged for cluster %s meanwhile; "
                          "nothing was staged (see `droverctl config history`)",
                          cluster);
        return commands_fail(res, rc == -E2BIG ? CTL_REFUSED : CTL_FAILED, err);
    }
    commands_sb_printf(&b, "staged version %llu%s for cluster %s on canary ",
                       (unsigned long long)r.version, rollback_of ? " (a rollback)" : "", cluster);
    hosts_text(&b, cmd->canary, cmd->n_canary);
    commands_sb_printf(&b, ":\n");
    json_object_foreach(keys, rel, v)
        commands_sb_printf(&b, "  %s: %s\n", rel,
                           json_is_null(v)                           ? "delete"
                           : json_object_get(l->values, rel) != NULL ? "changed"
                                                                     : "new");
    json_t *j = json_pack("{s:s, s:s, s:I, s:O, s:o, s:s, s:s}", "action",
                          rollback_of ? "config-rollback" : "config-apply", "cluster", cluster,
                          "version", (json_int_t)r.version, "keys", keys, "canary",
                          strv_json(cmd->canary, cmd->n_canary), "audit", akey, "state", "staged");
    if (rollback_of && j)
        json_object_set_new(j, "rollback_of", json_integer((json_int_t)rollback_of));
    enum ctl_outcome o = CTL_OK;
    if (cmd->wait_ms > 0) {
        json_t *hosts = json_object();
        commands_sb_printf(&b, "watching the canary hosts for up to %lld ms:\n",
                           (long long)cmd->wait_ms);
        bool ok = watch_canary(kv, s, &r, cmd->wait_ms, &b, hosts);
        bool calm = ok && before ? watch_errors(kv, s, &r, before, cmd->soak_ms, &b, hosts) : ok;
        commands_sb_printf(&b, "%s%s\n",
                           ok && calm ? "canary: healthy; `droverctl config promote` makes it live"
                                      : "canary: NOT healthy; `droverctl config abort` returns the "
                                        "canary hosts to the live version",
                           ok && !calm ? " (HAProxy error counters rose on a canary host)" : "");
        ok &= calm;
        json_object_set_new(j, "hosts", hosts);
        json_object_set_new(j, "healthy", json_boolean(ok));
        o = ok ? CTL_OK : CTL_FAILED;
    } else {
        commands_sb_printf(&b, "the canary hosts apply it now; `droverctl status` shows them\n");
    }
    json_decref(rj);
    json_decref(base);
    errors_free(before, cmd->n_canary);
    return finish(res, o, true, &b, j);
}

/* ---- the actions ---------------------------------------------------------------------- */

/* The files of apply: from the command line as given; from Slack, plain
 * names inside the configured directory. paths: NULL-terminated, caller
 * frees (ctl_words_free). */
static int apply_paths(const struct ctl_settings *s, const struct ctl_command *cmd, char ***out,
                       struct ctl_result *res)
{
    char **p = calloc(cmd->n_files + 1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    for (size_t i = 0; i < cmd->n_files; i++) {
        if (cmd->source == CTL_SOURCE_SLACK &&
            (!s->config_dir || !kv_valid_segment(cmd->files[i]) || cmd->files[i][0] == '.')) {
            ctl_words_free(p);
            return s->config_dir
                       ? refuse(res,
                                "refused: '%.100s' is not a file name in the config "
                                "directory (plain names only from Slack)",
                                cmd->files[i])
                       : refuse(res, "refused: config apply from Slack needs --config-dir on "
                                     "the droverctl serve host");
        }
        if (cmd->source == CTL_SOURCE_SLACK)
            p[i] = kv_key_printf("%s/%s", s->config_dir, cmd->files[i]);
        else
            p[i] = strdup(cmd->files[i]);
        if (!p[i]) {
            ctl_words_free(p);
            return -ENOMEM;
        }
    }
    *out = p;
    return 1;
}

/* The files' keys and values (after `config check` passed them). */
static int load_files(char *const *paths, size_t n, const char *cluster, json_t *into,
                      struct ctl_result *res)
{
    char err[ERRLEN];
    for (size_t i = 0; i < n; i++) {
        json_t *doc = NULL, *v;
        const char *key;
        if (json_load_file_strict(paths[i], &doc, err, sizeof(err)) < 0)
            return refuse(res, "refused: %s", err);
        json_object_foreach(doc, key, v)
        {
            if (!kv_deploy_key_ok(cluster, key)) {
                json_decref(doc);
                return refuse(res,
                              "refused: %s: %s: config apply stages HAProxy records of cluster "
                              "%s only (haproxy/%s/services/<name>, haproxy/%s/force-removal/"
                              "<backend>); director records must be equal on every director "
                              "and are not canaried per host; nothing was staged",
                              paths[i], key, cluster, cluster, cluster);
            }
            json_object_set(into, key, v);
        }
        json_decref(doc);
    }
    return 1;
}

static int exec_apply(struct ctl_kv *kv, const struct ctl_settings *s,
                      const struct ctl_command *cmd, int64_t now_ms, const char *cluster,
                      const struct live *l, const struct history *h, struct ctl_result *res)
{
    char **paths = NULL, *text = NULL, *json = NULL;
    json_t *files = json_object(), *keys = json_object();
    int rc;

    if (!files || !keys || !s->check) {
        rc = -ENOMEM;
        goto out;
    }
    if ((rc = apply_paths(s, cmd, &paths, res)) <= 0)
        goto out;
    rc = ctl_config_check(s->check, (int)cmd->n_files, paths, &text, &json);
    if (rc < 0)
        goto out;
    if (rc == 1) {
        struct sbuf b = {0};
        commands_sb_printf(&b, "%srefused: config check failed; nothing was staged\n", text);
        rc =
            finish(res, CTL_REFUSED, false, &b, json_pack("{s:s}", "error", "config check failed"));
        goto out;
    }
    if ((rc = load_files(paths, cmd->n_files, cluster, files, res)) <= 0 ||
        (rc = check_canary_hosts(kv, s, cmd, cluster, res)) <= 0)
        goto out;
    const char *rel;
    json_t *v;
    json_object_foreach(files, rel, v)
    {
        if (!json_equal(json_object_get(l->values, rel), v))
            json_object_set(keys, rel, v);
    }
    if (!json_object_size(keys)) {
        struct sbuf b = {0};
        commands_sb_printf(&b, "no change: the files equal the live values; nothing was staged\n");
        rc = finish(res, CTL_OK, false, &b,
                    json_pack("{s:s, s:s}", "action", "config-apply", "cluster", cluster));
        goto out;
    }
    rc = stage(kv, s, cmd, now_ms, cluster, keys, 0, l, h, res);
out:
    ctl_words_free(paths);
    free(text);
    free(json);
    json_decref(files);
    json_decref(keys);
    return rc;
}

/* Keys of the staged change whose live record moved since it was staged. */
static void moved_keys(const struct kv_deploy_rec *r, const struct live *l, struct sbuf *b)
{
    const char *rel;
    json_t *base;
    json_object_foreach(r->base, rel, base)
    {
        json_int_t now = json_integer_value(json_object_get(l->index, rel));
        if (now != json_integer_value(base))
            commands_sb_printf(b, "  %s: ModifyIndex %lld when staged, %lld now\n", rel,
                               (long long)json_integer_value(base), (long long)now);
    }
}

/* Whether every canary host reports the staged change applied. */
static bool canary_applied(struct ctl_kv *kv, const struct ctl_settings *s,
                           const struct kv_deploy_rec *r, struct sbuf *why)
{
    bool all = true;
    for (size_t i = 0; i < r->n_canary; i++) {
        struct kv_status_rec st;
        char detail[600] = "no status entry";
        int state = 0;
        if (read_host_status(kv, s, r->canary[i], &st) == 0) {
            state = canary_state(r, &st, detail, sizeof(detail));
            kv_status_free(&st);
        }
        if (state <= 0) {
            commands_sb_printf(why, "  %s: %s\n", r->canary[i], detail);
            all = false;
        }
    }
    return all;
}

static int exec_promote(struct ctl_kv *kv, const struct ctl_settings *s,
                        const struct ctl_command *cmd, int64_t now_ms, const char *cluster,
                        const struct live *l, const struct history *h, struct ctl_result *res)
{
    char err[ERRLEN], akey[400];
    struct kv_deploy_rec r;
    uint64_t index;
    struct sbuf b = {0};
    int rc = read_staged(kv, s, cluster, &r, &index, err, sizeof(err));

    if (rc == 0)
        return refuse(res, "refused: nothing is staged for cluster %s", cluster);
    if (rc == -EINVAL)
        return refuse(res, "refused: the staged change does not decode (%s); abort it", err);
    if (rc < 0)
        return commands_fail(res, CTL_FAILED, err);
    moved_keys(&r, l, &b);
    if (b.len) {
        struct sbuf m = {0};
        commands_sb_printf(&m,
                           "refused: version %llu was staged from live values that changed "
                           "since (a direct write?); nothing was written:\n%s"
                           "abort it and stage the change again from the new live values\n",
                           (unsigned long long)r.version, b.s);
        free(b.s);
        kv_deploy_clear(&r);
        return finish(res, CTL_REFUSED, false, &m, json_pack("{s:s}", "error", "cas"));
    }
    if (!canary_applied(kv, s, &r, &b) && !cmd->force) {
        struct sbuf m = {0};
        commands_sb_printf(&m,
                           "refused: not every canary host applied version %llu:\n%suse --force "
                           "to promote anyway\n",
                           (unsigned long long)r.version, b.s);
        free(b.s);
        kv_deploy_clear(&r);
        return finish(res, CTL_REFUSED, false, &m, json_pack("{s:s}", "error", "canary"));
    }
    free(b.s);
    b = (struct sbuf){0};
    json_t *before = kv_deploy_encode(&r);
    struct commit c = {.keys = r.keys,
                       .base = r.base,
                       .canary = r.canary,
                       .n_canary = r.n_canary,
                       .version = r.version,
                       .rollback_of = r.rollback_of,
                       .staged_index = index,
                       .staged = before,
                       .reason = r.reason,
                       .action = "config-promote"};
    rc = commit(kv, s, cmd, now_ms, cluster, &c, l, h, akey, sizeof(akey), err, sizeof(err));
    json_decref(before);
    if (rc < 0) {
        kv_deploy_clear(&r);
        if (rc == -ECANCELED)
            return refuse(res,
                          "refused: the check-and-set failed (%s): a staged key, the staged "
                          "entry or the version changed while promoting; nothing was written",
                          err);
        return commands_fail(res, rc == -E2BIG ? CTL_REFUSED : CTL_FAILED, err);
    }
    commands_sb_printf(&b,
                       "version %llu of cluster %s is live (%zu key%s); every host applies it "
                       "now\n",
                       (unsigned long long)r.version, cluster, json_object_size(r.keys),
                       json_object_size(r.keys) == 1 ? "" : "s");
    json_t *j = json_pack("{s:s, s:s, s:I, s:O, s:s}", "action", "config-promote", "cluster",
                          cluster, "version", (json_int_t)r.version, "keys", r.keys, "audit", akey);
    kv_deploy_clear(&r);
    return finish(res, CTL_OK, true, &b, j);
}

static int exec_abort(struct ctl_kv *kv, const struct ctl_settings *s,
                      const struct ctl_command *cmd, int64_t now_ms, const char *cluster,
                      struct ctl_result *res)
{
    char err[ERRLEN], akey[400];
    struct kv_deploy_rec r;
    uint64_t index;
    struct txn t = {0};
    struct sbuf b = {0};
    int rc = read_staged(kv, s, cluster, &r, &index, err, sizeof(err));

    if (rc < 0 && rc != -EINVAL)
        return commands_fail(res, CTL_FAILED, err);
    if (rc == 0) {
        commands_sb_printf(&b, "no change: nothing is staged for cluster %s\n", cluster);
        return finish(res, CTL_OK, false, &b,
                      json_pack("{s:s, s:s}", "action", "config-abort", "cluster", cluster));
    }
    /* a staged entry that does not decode is aborted all the same */
    json_t *before = rc == 1 ? kv_deploy_encode(&r) : NULL;
    char *ckey = kv_deploy_canary_key(s->root, cluster);
    txn_add(&t, CONSUL_TXN_DELETE_CAS, ckey, NULL, index);
    rc = txn_run(kv, s, cmd, now_ms, &t, "config-abort", ckey ? ckey + strlen(s->root) : "?",
                 before, NULL, akey, sizeof(akey), err, sizeof(err));
    txn_free(&t);
    json_decref(before);
    if (rc < 0) {
        kv_deploy_clear(&r);
        if (rc == -ECANCELED)
            return refuse(res, "refused: the staged change was replaced or promoted meanwhile; "
                               "nothing was aborted (see `droverctl config history`)");
        return commands_fail(res, CTL_FAILED, err);
    }
    commands_sb_printf(&b, "aborted version %llu of cluster %s: canary ",
                       (unsigned long long)r.version, cluster);
    hosts_text(&b, r.canary, r.n_canary);
    commands_sb_printf(&b, " go%s back to the live version\n", r.n_canary == 1 ? "es" : "");
    json_t *j = json_pack("{s:s, s:s, s:I, s:o, s:s}", "action", "config-abort", "cluster", cluster,
                          "version", (json_int_t)r.version, "canary",
                          strv_json(r.canary, r.n_canary), "audit", akey);
    kv_deploy_clear(&r);
    return finish(res, CTL_OK, true, &b, j);
}

/* The keys that take live to the state of version v (null: delete). */
static json_t *rollback_keys(const struct kv_deploy_rec *v, const struct live *l)
{
    json_t *keys = json_object(), *x;
    const char *rel;
    json_object_foreach(v->keys, rel, x)
    {
        if (!json_equal(json_object_get(l->values, rel), x))
            json_object_set(keys, rel, x);
    }
    json_object_foreach(l->index, rel, x)
    {
        if (!json_object_get(v->keys, rel))
            json_object_set_new(keys, rel, json_null());
    }
    return keys;
}

static int exec_rollback(struct ctl_kv *kv, const struct ctl_settings *s,
                         const struct ctl_command *cmd, int64_t now_ms, const char *cluster,
                         const struct live *l, const struct history *h, struct ctl_result *res)
{
    char err[ERRLEN], akey[400];
    const struct kv_deploy_rec *v = history_find(h, cmd->version);
    struct sbuf b = {0};

    if (!v && h->n)
        return refuse(res,
                      "refused: version %llu of cluster %s does not exist (kept: %llu..%llu); "
                      "nothing was changed",
                      (unsigned long long)cmd->version, cluster,
                      (unsigned long long)h->v[0].version,
                      (unsigned long long)h->v[h->n - 1].version);
    if (!v)
        return refuse(res,
                      "refused: version %llu of cluster %s does not exist (no version recorded "
                      "yet); nothing was changed",
                      (unsigned long long)cmd->version, cluster);
    json_t *keys = rollback_keys(v, l);
    if (!keys)
        return -ENOMEM;
    if (!json_object_size(keys)) {
        json_decref(keys);
        commands_sb_printf(&b, "no change: the live values equal version %llu\n",
                           (unsigned long long)cmd->version);
        return finish(res, CTL_OK, false, &b,
                      json_pack("{s:s, s:s}", "action", "config-rollback", "cluster", cluster));
    }
    int rc;
    if (!cmd->now) {
        rc = check_canary_hosts(kv, s, cmd, cluster, res);
        if (rc > 0)
            rc = stage(kv, s, cmd, now_ms, cluster, keys, cmd->version, l, h, res);
        json_decref(keys);
        return rc;
    }
    json_t *base = json_object();
    const char *rel;
    json_t *x;
    json_object_foreach(keys, rel, x) json_object_set_new(
        base, rel, json_integer(json_integer_value(json_object_get(l->index, rel))));
    struct commit c = {.keys = keys,
                       .base = base,
                       .version = history_latest(h) + 1,
                       .rollback_of = cmd->version,
                       .action = "config-rollback"};
    rc = commit(kv, s, cmd, now_ms, cluster, &c, l, h, akey, sizeof(akey), err, sizeof(err));
    json_decref(base);
    if (rc < 0) {
        json_decref(keys);
        if (rc == -ECANCELED)
            return refuse(res,
                          "refused: the check-and-set failed (%s): a key changed while "
                          "rolling back; nothing was written",
                          err);
        return commands_fail(res, rc == -E2BIG ? CTL_REFUSED : CTL_FAILED, err);
    }
    commands_sb_printf(&b,
                       "version %llu of cluster %s is live: the state of version %llu (%zu key%s, "
                       "--now: no canary)\n",
                       (unsigned long long)c.version, cluster, (unsigned long long)cmd->version,
                       json_object_size(keys), json_object_size(keys) == 1 ? "" : "s");
    json_t *j = json_pack("{s:s, s:s, s:I, s:I, s:o, s:s}", "action", "config-rollback", "cluster",
                          cluster, "version", (json_int_t)c.version, "rollback_of",
                          (json_int_t)cmd->version, "keys", keys, "audit", akey);
    return finish(res, CTL_OK, true, &b, j);
}

/* ---- history and the summary `status` shows ------------------------------------------------ */

/* Keys whose live record differs from version v (all live keys when v is
 * NULL), as a JSON array. */
static json_t *direct_keys(const struct kv_deploy_rec *v, const struct live *l)
{
    json_t *out = json_array(), *x;
    const char *rel;
    json_object_foreach(l->index, rel, x)
    {
        json_t *live = json_object_get(l->values, rel);
        if (!v || !live || !json_equal(live, json_object_get(v->keys, rel)))
            json_array_append_new(out, json_string(rel));
    }
    json_object_foreach(v ? v->keys : NULL, rel, x)
    {
        if (!json_object_get(l->index, rel))
            json_array_append_new(out, json_string(rel));
    }
    return out;
}

/* The "live" and "staged" lines and fields shared by history and status. */
static void summary(struct ctl_kv *kv, const struct ctl_settings *s, const char *cluster,
                    const struct live *l, const struct history *h, struct sbuf *b, json_t *j)
{
    char err[ERRLEN];
    const struct kv_deploy_rec *latest = h->n ? &h->v[h->n - 1] : NULL;
    json_t *direct = direct_keys(latest, l);
    size_t nd = json_array_size(direct);

    if (!latest)
        commands_sb_printf(b, "  live: no version recorded yet%s\n",
                           nd ? " (everything live was applied without canary)" : "");
    else if (!nd)
        commands_sb_printf(b, "  live: version %llu\n", (unsigned long long)latest->version);
    else
        commands_sb_printf(b, "  live: APPLIED WITHOUT CANARY after version %llu:",
                           (unsigned long long)latest->version);
    for (size_t i = 0; latest && i < nd; i++)
        commands_sb_printf(b, " %s", json_string_value(json_array_get(direct, i)));
    if (latest && nd)
        commands_sb_printf(b, "\n");
    json_object_set_new(j, "live",
                        json_pack("{s:I, s:b, s:o}", "version",
                                  (json_int_t)(latest ? latest->version : 0), "without_canary",
                                  latest && nd, "direct_keys", direct));
    struct kv_deploy_rec r;
    uint64_t index;
    int rc = read_staged(kv, s, cluster, &r, &index, err, sizeof(err));
    if (rc == 1) {
        commands_sb_printf(b, "  staged: version %llu%s by %s on canary ",
                           (unsigned long long)r.version, r.rollback_of ? " (rollback)" : "",
                           r.author);
        hosts_text(b, r.canary, r.n_canary);
        commands_sb_printf(b, "\n");
        json_object_set_new(j, "staged", kv_deploy_encode(&r));
        kv_deploy_clear(&r);
    } else {
        if (rc == -EINVAL)
            commands_sb_printf(b, "  staged: bad entry (%s)\n", err);
        json_object_set_new(j, "staged", json_null());
    }
}

/* Keys that differ between versions a (NULL: none) and b. */
static json_t *changed_between(const struct kv_deploy_rec *a, const struct kv_deploy_rec *b)
{
    struct live l = {.values = b->keys, .index = b->keys};
    return direct_keys(a, &l);
}

static int exec_history(struct ctl_kv *kv, const struct ctl_settings *s,
                        const struct ctl_command *cmd, const char *cluster, const struct live *l,
                        const struct history *h, struct ctl_result *res)
{
    struct sbuf b = {0};
    json_t *j =
        json_pack("{s:s, s:s, s:i, s:[], s:I}", "action", "config-history", "cluster", cluster,
                  "keep", KV_DEPLOY_HISTORY_KEEP, "versions", "bad", (json_int_t)h->bad);
    if (!j)
        return -ENOMEM;
    commands_sb_printf(&b, "config history of cluster %s (the newest %d versions are kept):\n",
                       cluster, KV_DEPLOY_HISTORY_KEEP);
    summary(kv, s, cluster, l, h, &b, j);
    for (size_t i = h->n, shown = 0; i-- > 0 && shown < (size_t)cmd->limit; shown++) {
        const struct kv_deploy_rec *v = &h->v[i];
        char when[40];
        json_t *changed = changed_between(i ? &h->v[i - 1] : NULL, v);
        timefmt_format_rfc3339(v->time_unix, when, sizeof(when));
        commands_sb_printf(&b, "  v%llu  %s  %s  %s", (unsigned long long)v->version, when,
                           v->author, v->rollback_of ? "rollback to" : "change");
        if (v->rollback_of)
            commands_sb_printf(&b, " v%llu", (unsigned long long)v->rollback_of);
        commands_sb_printf(&b, " (%s", v->n_canary ? "canary " : "no canary");
        hosts_text(&b, v->canary, v->n_canary);
        commands_sb_printf(&b, ")%s%s%s:", v->reason ? " \"" : "", v->reason ? v->reason : "",
                           v->reason ? "\"" : "");
        for (size_t k = 0; k < json_array_size(changed); k++)
            commands_sb_printf(&b, " %s", json_string_value(json_array_get(changed, k)));
        commands_sb_printf(&b, "%s\n", json_array_size(changed) ? "" : " (no key changed)");
        json_t *o = kv_deploy_encode(v);
        if (o) {
            json_object_del(o, "keys"); /* the whole state: `--json` shows what changed */
            json_object_set_new(o, "changed", changed);
            json_array_append_new(json_object_get(j, "versions"), o);
        } else {
            json_decref(changed);
        }
    }
    if (h->bad)
        commands_sb_printf(&b, "  (%zu bad history entr%s skipped)\n", h->bad,
                           h->bad == 1 ? "y" : "ies");
    return finish(res, CTL_OK, false, &b, j);
}

int commands_deploy_status(struct ctl_kv *kv, const struct ctl_settings *s, struct sbuf *b,
                           json_t *out)
{
    char err[ERRLEN];
    struct live l = {0};
    struct history h = {0};
    const char *cluster = s->haproxy_cluster;
    int rc;

    if (!cluster || !*cluster)
        return 0;
    if ((rc = read_live(kv, s, cluster, &l, err, sizeof(err))) == 0 &&
        (rc = read_history(kv, s, cluster, &h, err, sizeof(err))) == 0) {
        json_t *j = json_object();
        commands_sb_printf(b, "config of cluster %s:\n", cluster);
        summary(kv, s, cluster, &l, &h, b, j);
        json_object_set_new(out, "config", j);
    }
    live_clear(&l);
    history_clear(&h);
    return rc;
}

int commands_exec_config(struct ctl_kv *kv, const struct ctl_settings *s,
                         const struct ctl_command *cmd, int64_t now_ms, struct ctl_result *res)
{
    char err[ERRLEN];
    const char *cluster = s->haproxy_cluster;
    struct live l = {0};
    struct history h = {0};
    int rc;

    if (!cluster || !kv_valid_cluster(cluster))
        return refuse(res,
                      "refused: config %s needs --haproxy-cluster (the cluster whose "
                      "definitions change)",
                      ctl_config_action_name(cmd->config_action));
    if ((rc = read_live(kv, s, cluster, &l, err, sizeof(err))) < 0 ||
        (rc = read_history(kv, s, cluster, &h, err, sizeof(err))) < 0) {
        live_clear(&l);
        history_clear(&h);
        return rc == -ENOMEM ? rc : commands_fail(res, CTL_FAILED, err);
    }
    switch (cmd->config_action) {
    case CTL_CONFIG_APPLY:
    case CTL_CONFIG_ROLLBACK: {
        struct kv_deploy_rec r;
        uint64_t index;
        rc = read_staged(kv, s, cluster, &r, &index, err, sizeof(err));
        if (rc == 1) {
            rc = refuse(res,
                        "refused: version %llu is already staged for cluster %s (by %s); promote "
                        "or abort it first",
                        (unsigned long long)r.version, cluster, r.author);
            kv_deploy_clear(&r);
        } else if (rc == -EINVAL) {
            rc = refuse(res,
                        "refused: a staged change is there but does not decode (%s); abort "
                        "it first",
                        err);
        } else if (rc < 0) {
            rc = commands_fail(res, CTL_FAILED, err);
        } else if (cmd->config_action == CTL_CONFIG_APPLY) {
            rc = exec_apply(kv, s, cmd, now_ms, cluster, &l, &h, res);
        } else {
            rc = exec_rollback(kv, s, cmd, now_ms, cluster, &l, &h, res);
        }
        break;
    }
    case CTL_CONFIG_PROMOTE:
        rc = exec_promote(kv, s, cmd, now_ms, cluster, &l, &h, res);
        break;
    case CTL_CONFIG_ABORT:
        rc = exec_abort(kv, s, cmd, now_ms, cluster, res);
        break;
    case CTL_CONFIG_HISTORY:
        rc = exec_history(kv, s, cmd, cluster, &l, &h, res);
        break;
    default:
        rc = commands_fail(res, CTL_FAILED, "unknown config action");
    }
    live_clear(&l);
    history_clear(&h);
    return rc;
}
