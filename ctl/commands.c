/* SPDX-License-Identifier: Apache-2.0 */
/* commands: see commands.h. This file holds the changes (maintenance,
 * director, host drain), the helpers they share with commands_status.c
 * (commands_internal.h) and the entry point ctl_execute. */
#include "commands.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "commands_internal.h"
#include "errmsg.h"
#include "kv_audit.h"
#include "kv_director.h"
#include "kv_frontdoor.h"
#include "kv_key.h"
#include "kv_maint.h"
#include "log.h"
#include "timefmt.h"

/* ---- results ---------------------------------------------------------------- */

void ctl_result_free(struct ctl_result *res)
{
    free(res->text);
    free(res->json);
    memset(res, 0, sizeof(*res));
}

static char *dump(const json_t *j)
{
    return json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
}

/* Set the result to an error/refusal message (text and {"ok":false,...}). */
int commands_fail(struct ctl_result *res, enum ctl_outcome o, const char *msg)
{
    json_t *j = json_pack("{s:b, s:s, s:s}", "ok", 0, "outcome",
                          o == CTL_REFUSED ? "refused" : "failed", "error", msg);
    free(res->text);
    free(res->json);
    res->outcome = o;
    res->changed = false;
    res->text = strdup(msg);
    res->json = j ? dump(j) : NULL;
    json_decref(j);
    return res->text && res->json ? 0 : -ENOMEM;
}

int commands_succeed(struct ctl_result *res, char *text, json_t *j)
{
    res->outcome = CTL_OK;
    res->text = text;
    res->json = j ? dump(j) : NULL;
    json_decref(j);
    return res->text && res->json ? 0 : -ENOMEM;
}

/* growing text buffer (struct sbuf: commands_internal.h) */
void commands_sb_printf(struct sbuf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (b->oom)
        return;
    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = true;
            return;
        }
        if (b->s && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap < b->len + (size_t)n + 1)
            cap *= 2;
        char *p = realloc(b->s, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->s = p;
        b->cap = cap;
    }
}

char *commands_sb_take(struct sbuf *b)
{
    if (b->oom) {
        free(b->s);
        return NULL;
    }
    return b->s ? b->s : strdup("");
}

/* ---- reading the model ---------------------------------------------------------- */

static int load_prefix(struct ctl_kv *kv, const struct ctl_settings *s, struct ctl_model *m,
                       const char *sub, char *err, size_t errlen)
{
    char prefix[512], e[256];
    struct consul_kv_list *l = NULL;
    int rc;

    snprintf(prefix, sizeof(prefix), "%s%s", s->root, sub);
    if ((rc = ctl_kv_list(kv, prefix, &l, err, errlen)) < 0)
        return rc;
    for (size_t i = 0; i < l->n; i++) {
        const struct consul_kv *it = &l->items[i];
        rc = ctl_model_add(m, s->root, s->haproxy_cluster, it->key, (const char *)it->value,
                           it->value_len, it->modify_index, e, sizeof(e));
        if (rc == -ENOMEM)
            break;
        if (rc == -EINVAL)
            log_warn("droverctl: skipping bad KV entry: %s", e);
        rc = 0;
    }
    consul_kv_list_free(l);
    if (rc == -ENOMEM)
        errmsg_set(err, errlen, "out of memory reading %s", prefix);
    return rc;
}

int commands_load_model(struct ctl_kv *kv, const struct ctl_settings *s, struct ctl_model *m,
                        int64_t now, char *err, size_t errlen)
{
    char hp[300];
    int rc;

    ctl_model_init(m, now);
    if (s->haproxy_cluster && *s->haproxy_cluster)
        snprintf(hp, sizeof(hp), "haproxy/%s/services/", s->haproxy_cluster);
    else
        snprintf(hp, sizeof(hp), "haproxy/");
    if ((rc = load_prefix(kv, s, m, "kube/", err, errlen)) < 0 ||
        (rc = load_prefix(kv, s, m, hp, err, errlen)) < 0 ||
        (rc = load_prefix(kv, s, m, "maintenance/", err, errlen)) < 0)
        ctl_model_clear(m);
    return rc;
}

/* ---- audit ---------------------------------------------------------------------- */

void commands_audit_key(const struct ctl_settings *s, int64_t now_ms, char *out, size_t outlen)
{
    unsigned char r[4] = {0};

    if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
        /* very unlikely; a clock-derived id still makes collisions rare and
         * the create-only cas turns one into a retry, not an overwrite */
        uint32_t x = (uint32_t)clock() ^ (uint32_t)now_ms * 2654435761u;
        memcpy(r, &x, sizeof(r));
    }
    kv_audit_key(s->root, now_ms, r, out, outlen);
}

json_t *commands_audit_value(const struct ctl_command *cmd, const char *author, const char *action,
                             const char *target, int64_t now_ms, const json_t *before,
                             const json_t *after)
{
    struct kv_audit_rec rec = {.time_ms = now_ms,
                               .author = author,
                               .source = ctl_source_name(cmd->source),
                               .action = action,
                               .target = target,
                               .reason = cmd->reason,
                               .before = before,
                               .after = after,
                               .force = cmd->force};
    return kv_audit_encode(&rec);
}

/* One audited change: key = value (NULL: delete) with cas index, and the
 * audit entry of action on target (before -> after). folder (or NULL): the
 * folder key of a prefix every host watches, set in the same transaction
 * so the prefix is never empty once droverctl wrote it (an empty prefix
 * wakes its watchers on every KV write: docs/kv-schema.md, "What a watcher
 * watches"). */
struct audited_write {
    const char *key;
    const char *value;
    uint64_t index;
    const char *author, *action, *target;
    const json_t *before, *after;
    const char *folder;
};

/* Encode the audit entry (its key into akey), run the test hook, then
 * write the change and the entry in ONE transaction. 0; -ECANCELED when the
 * cas lost (read again and retry); -ENOMEM when the audit entry cannot be
 * encoded; other -errno from Consul. err says what failed. */
static int write_audited(struct ctl_kv *kv, const struct ctl_settings *s,
                         const struct ctl_command *cmd, int64_t now_ms, int attempt,
                         const struct audited_write *w, char *akey, size_t akeylen, char *err,
                         size_t errlen)
{
    commands_audit_key(s, now_ms, akey, akeylen);
    json_t *audit =
        commands_audit_value(cmd, w->author, w->action, w->target, now_ms, w->before, w->after);
    char *avalue = audit ? dump(audit) : NULL;
    json_decref(audit);
    if (!avalue) {
        errmsg_set(err, errlen,
                   "failed: cannot encode the audit record of %s (out of memory, or an author "
                   "that is not UTF-8); nothing was written",
                   w->target);
        return -ENOMEM;
    }
    if (s->before_write)
        s->before_write(s->before_write_arg, attempt);
    struct consul_txn_op ops[3] = {
        {.verb = w->value ? CONSUL_TXN_CAS : CONSUL_TXN_DELETE_CAS,
         .key = w->key,
         .value = w->value,
         .value_len = w->value ? strlen(w->value) : 0,
         .index = w->index},
        {.verb = CONSUL_TXN_CAS, .key = akey, .value = avalue, .value_len = strlen(avalue)},
        {.verb = CONSUL_TXN_SET, .key = w->folder, .value = "", .value_len = 0},
    };
    int rc = ctl_kv_txn(kv, ops, w->folder ? 3 : 2, err, errlen);
    free(avalue);
    return rc;
}

/* The JSON result of a change write_audited() wrote (akey: its audit
 * entry's key); before/after null when absent. */
static json_t *changed_result(const struct audited_write *w, const char *akey)
{
    return json_pack("{s:b, s:b, s:s, s:s, s:s, s:s, s:O?, s:O?}", "ok", 1, "changed", 1, "action",
                     w->action, "target", w->target, "key", w->key, "audit", akey, "before",
                     (json_t *)w->before, "after", (json_t *)w->after);
}

/* After a lost cas race: log it and pause briefly (jittered, so two
 * writers that collided do not collide again) unless it was the last try. */
static void conflict_pause(const char *key, int attempt, int attempts)
{
    unsigned char r = 0;

    log_info("droverctl: %s changed while we were writing it (attempt %d of %d)%s", key, attempt,
             attempts, attempt < attempts ? ", reading again" : "");
    if (attempt >= attempts)
        return;
    if (getrandom(&r, 1, 0) != 1)
        r = 17;
    struct timespec ts = {0, (long)(5 + attempt * 10 + r % 20) * 1000000L};
    nanosleep(&ts, NULL);
}

static int fail_conflicts(struct ctl_result *res, const char *key, int attempts)
{
    char err[ERRLEN];

    snprintf(err, sizeof(err),
             "failed: %s kept changing under us (cas conflict %d times in a row); nothing was "
             "written, try again",
             key, attempts);
    return commands_fail(res, CTL_FAILED, err);
}

/* One try of an audited command ends here, rc being what write_audited()
 * returned. 0: the change succeeded; the result is text (taken over) and
 * changed_result() with affects (taken over, or NULL) added. -ECANCELED:
 * the cas lost; after conflict_pause() it returns AUDITED_AGAIN (read again
 * and retry). Otherwise the failure, err. text and affects are given only
 * for rc 0. */
#define AUDITED_AGAIN 1
static int audited_outcome(struct ctl_result *res, int rc, const struct audited_write *w,
                           const char *akey, char *text, json_t *affects, const char *err,
                           int attempt, int attempts)
{
    if (rc == 0) {
        json_t *j = changed_result(w, akey);
        if (j && affects)
            json_object_set_new(j, "affects", affects);
        else
            json_decref(affects);
        res->changed = true;
        return commands_succeed(res, text, j);
    }
    if (rc != -ECANCELED)
        return commands_fail(res, CTL_FAILED, err);
    conflict_pause(w->key, attempt, attempts);
    return AUDITED_AGAIN;
}

/* ---- maintenance changes ----------------------------------------------------------- */

const char *commands_author(const struct ctl_command *cmd, const struct ctl_settings *s)
{
    if (cmd->author && *cmd->author)
        return cmd->author;
    return s->default_author && *s->default_author ? s->default_author : "unknown";
}

int ctl_maint_next(const struct ctl_command *cmd, const char *id, const struct ctl_maint *cur,
                   const char *author, int64_t now, json_t **out)
{
    enum ctl_state state = CTL_STATE_READY;
    int weight = -1;
    const char *reason = cmd->reason;
    int64_t expires = 0;

    *out = NULL;
    if (cur && ctl_maint_expired(cur, now))
        cur = NULL; /* an expired entry counts as absent (but still gets replaced) */
    if (cur) {
        state = cur->state;
        weight = cur->weight;
        if (!reason)
            reason = cur->reason;
        expires = cur->expires_unix;
    }
    switch (cmd->verb) {
    case CTL_VERB_DRAIN:
        state = CTL_STATE_DRAIN;
        break;
    case CTL_VERB_MAINT:
        state = CTL_STATE_MAINT;
        break;
    case CTL_VERB_UNDRAIN:
        state = CTL_STATE_READY;
        break;
    case CTL_VERB_READY:
        state = CTL_STATE_READY;
        weight = -1;
        break;
    case CTL_VERB_WEIGHT:
        weight = cmd->weight;
        break;
    default:
        return -EINVAL;
    }
    if (cmd->ttl_ms > 0)
        expires = now + (cmd->ttl_ms + 999) / 1000;
    if (state == CTL_STATE_READY && (weight < 0 || weight == 100))
        return cur ? 0 : 2; /* the default: no entry at all */
    if (state == CTL_STATE_READY)
        expires = cmd->ttl_ms > 0 ? expires : (cur ? cur->expires_unix : 0);
    if (cur && cur->state == state && cur->weight == weight && cur->expires_unix == expires &&
        ((!cur->reason && !reason) || (cur->reason && reason && !strcmp(cur->reason, reason))))
        return 2;
    struct kv_maint_rec rec = {.target = id,
                               .admin = (enum kvm_admin)state,
                               .weight = weight,
                               .author = author,
                               .reason = reason,
                               .created = now,
                               .expires = expires};
    json_t *v = kv_maint_encode(&rec);
    if (!v)
        return -ENOMEM;
    *out = v;
    return 1;
}

void commands_on_affected(void *arg, const char *backend, const char *server)
{
    struct affect_list *a = arg;
    if (a->text)
        commands_sb_printf(a->text, "%s%s: %s", a->n ? ", " : "", backend, server);
    if (a->arr)
        json_array_append_new(a->arr,
                              json_pack("{s:s, s:s}", "backend", backend, "server", server));
    a->n++;
}

static const char *past_tense(enum ctl_verb v)
{
    switch (v) {
    case CTL_VERB_DRAIN:
        return "drained";
    case CTL_VERB_UNDRAIN:
        return "undrained";
    case CTL_VERB_MAINT:
        return "put in maintenance";
    case CTL_VERB_READY:
        return "made ready";
    case CTL_VERB_WEIGHT:
        return "re-weighted";
    default:
        return "changed";
    }
}

static int exec_maint(struct ctl_kv *kv, const struct ctl_settings *s,
                      const struct ctl_command *cmd, int64_t now_ms, struct ctl_result *res)
{
    char err[ERRLEN], key[700], akey[400];
    const char *author = commands_author(cmd, s);
    int attempts = s->cas_attempts > 0 ? s->cas_attempts : CTL_CAS_ATTEMPTS;
    int rc = 0;

    for (int attempt = 1; attempt <= attempts; attempt++) {
        struct ctl_model m;
        struct ctl_target t;
        json_t *next = NULL;
        char *value = NULL;

        if ((rc = commands_load_model(kv, s, &m, now_ms / 1000, err, sizeof(err))) < 0)
            return commands_fail(res, CTL_FAILED, err);
        if ((rc = ctl_model_resolve(&m, cmd->target, s->clusters, s->n_clusters, &t, err,
                                    sizeof(err))) < 0) {
            ctl_model_clear(&m);
            return commands_fail(res, CTL_REFUSED, err);
        }
        const struct ctl_maint *cur = ctl_model_maint(&m, t.id);
        rc = ctl_maint_next(cmd, t.id, cur, author, now_ms / 1000, &next);
        if (rc < 0) {
            ctl_model_clear(&m);
            return commands_fail(res, CTL_FAILED,
                                 "cannot build the maintenance entry (out of memory)");
        }
        if (rc == 2) {
            struct sbuf b = {0};
            commands_sb_printf(&b, "no change: %s is already %s", t.id,
                               cur && !ctl_maint_expired(cur, m.now)
                                   ? ctl_state_name(cur->state)
                                   : "ready (no maintenance entry)");
            if (cur && !ctl_maint_expired(cur, m.now) && cur->weight >= 0)
                commands_sb_printf(&b, " with weight %d%%", cur->weight);
            json_t *j = json_pack("{s:b, s:b, s:s, s:s}", "ok", 1, "changed", 0, "action",
                                  ctl_verb_name(cmd->verb), "target", t.id);
            ctl_model_clear(&m);
            return commands_succeed(res, commands_sb_take(&b), j);
        }
        /* the share rule */
        struct ctl_maint proposed = {0};
        struct ctl_override ov = {.id = t.id, .entry = NULL};
        if (next) {
            value = dump(next);
            if (!value ||
                ctl_maint_parse(t.id, value, strlen(value), &proposed, err, sizeof(err)) < 0) {
                json_decref(next);
                free(value);
                ctl_model_clear(&m);
                return commands_fail(res, CTL_FAILED, "cannot build the maintenance entry");
            }
            ov.entry = &proposed;
        }
        struct ctl_share worst;
        if (!cmd->force && ctl_model_check_share(&m, &ov, s->max_out_share, &worst)) {
            snprintf(err, sizeof(err),
                     "refused: %s %s would leave %zu of %zu servers of backend %s out of service "
                     "(%.0f%% > --max-out-share %.0f%%; %zu out now); use --force to override",
                     ctl_verb_name(cmd->verb), t.id, worst.out_after, worst.total, worst.backend,
                     100.0 * (double)worst.out_after / (double)worst.total,
                     100.0 * s->max_out_share, worst.out_before);
            ctl_maint_clear(&proposed);
            json_decref(next);
            free(value);
            ctl_model_clear(&m);
            return commands_fail(res, CTL_REFUSED, err);
        }
        ctl_maint_clear(&proposed);

        /* the write */
        snprintf(key, sizeof(key), "%smaintenance/%s", s->root, t.id);
        char folder[300];
        snprintf(folder, sizeof(folder), "%smaintenance/", s->root);
        struct audited_write aw = {.folder = folder,
                                   .key = key,
                                   .value = value,
                                   .index = cur ? cur->modify_index : 0,
                                   .author = author,
                                   .action = ctl_verb_name(cmd->verb),
                                   .target = t.id,
                                   .before = cur ? cur->value : NULL,
                                   .after = next};
        rc = write_audited(kv, s, cmd, now_ms, attempt, &aw, akey, sizeof(akey), err, sizeof(err));
        free(value);
        char *text = NULL;
        json_t *arr = NULL;
        if (rc == 0) {
            struct sbuf b = {0};
            arr = json_array();
            struct affect_list al = {.text = &b, .arr = arr};
            commands_sb_printf(&b, "%s %s", past_tense(cmd->verb), t.id);
            if (next) {
                json_t *w = json_object_get(next, "weight");
                commands_sb_printf(&b, " (state %s",
                                   json_string_value(json_object_get(next, "state")));
                if (w)
                    commands_sb_printf(&b, ", weight %d%%", (int)json_integer_value(w));
                if (json_object_get(next, "expires"))
                    commands_sb_printf(&b, ", expires %s",
                                       json_string_value(json_object_get(next, "expires")));
                commands_sb_printf(&b, ")");
            } else {
                commands_sb_printf(&b, " (maintenance entry removed)");
            }
            if (json_object_get(next, "reason"))
                commands_sb_printf(&b, ": %s", json_string_value(json_object_get(next, "reason")));
            commands_sb_printf(&b, "\naffects: ");
            ctl_model_affected(&m, &t, commands_on_affected, &al);
            if (!al.n)
                commands_sb_printf(&b, "no HAProxy server right now");
            text = commands_sb_take(&b);
        }
        rc = audited_outcome(res, rc, &aw, akey, text, arr, err, attempt, attempts);
        json_decref(next);
        ctl_model_clear(&m);
        if (rc != AUDITED_AGAIN)
            return rc;
    }
    return fail_conflicts(res, key, attempts);
}

/* ---- director -------------------------------------------------------------------------- */

/* The state each action leads to (ctl_director_action order); the step
 * before it is the schema's (kv_director_state_before). */
static const enum kv_director_state dir_target[] = {KV_DIRECTOR_FILLING, KV_DIRECTOR_ACTIVE,
                                                    KV_DIRECTOR_DRAINING, KV_DIRECTOR_INACTIVE};

const char *ctl_director_target_state(enum ctl_director_action a)
{
    return (unsigned)a < 4 ? kv_director_state_name(dir_target[a]) : "?";
}

bool ctl_director_step_allowed(const char *cur, enum ctl_director_action a)
{
    enum kv_director_state s;
    return (unsigned)a < 4 && cur && kv_director_state_parse(cur, &s) == 0 &&
           s == kv_director_state_before(dir_target[a]);
}

static int exec_director(struct ctl_kv *kv, const struct ctl_settings *s,
                         const struct ctl_command *cmd, int64_t now_ms, struct ctl_result *res)
{
    char err[ERRLEN], key[700], akey[400], target[600];
    const char *author = commands_author(cmd, s);
    const char *want = ctl_director_target_state(cmd->dir_action);
    int attempts = s->cas_attempts > 0 ? s->cas_attempts : CTL_CAS_ATTEMPTS;
    char action[40];

    if (!s->director_cluster || !*s->director_cluster)
        return commands_fail(res, CTL_REFUSED,
                             "refused: no director cluster configured (--director-cluster)");
    if (!kv_director_valid_name(cmd->target)) {
        snprintf(err, sizeof(err), "refused: '%.100s' is not a proxy host name", cmd->target);
        return commands_fail(res, CTL_REFUSED, err);
    }
    snprintf(action, sizeof(action), "director-%s", ctl_director_action_name(cmd->dir_action));
    snprintf(target, sizeof(target), "director/%s/proxies/%s", s->director_cluster, cmd->target);
    snprintf(key, sizeof(key), "%s%s", s->root, target);
    for (int attempt = 1; attempt <= attempts; attempt++) {
        struct consul_kv_list *l = NULL;
        json_error_t je;
        int rc;

        if ((rc = ctl_kv_get(kv, key, &l, err, sizeof(err))) < 0)
            return commands_fail(res, CTL_FAILED, err);
        if (!l) {
            snprintf(err, sizeof(err), "refused: unknown proxy %s: no %s in KV", cmd->target, key);
            return commands_fail(res, CTL_REFUSED, err);
        }
        uint64_t index = l->items[0].modify_index;
        json_t *cur = l->items[0].value ? json_loadb((const char *)l->items[0].value,
                                                     l->items[0].value_len, 0, &je)
                                        : NULL;
        consul_kv_list_free(l);
        const char *state = json_string_value(json_object_get(cur, "state"));
        struct kv_director_proxy pr;
        char why[200] = "not a JSON object";
        if (!json_is_object(cur) ||
            kv_director_proxy_decode(cur, cmd->target, "value", &pr, why, sizeof(why)) < 0) {
            json_decref(cur);
            snprintf(err, sizeof(err),
                     "refused: %s is not a valid proxy entry (%s); fix it by hand", key, why);
            return commands_fail(res, CTL_REFUSED, err);
        }
        bool same = pr.state == dir_target[cmd->dir_action];
        kv_director_proxy_clear(&pr);
        if (same) {
            char *text = NULL;
            if (asprintf(&text, "no change: proxy %s is already %s", cmd->target, want) < 0)
                text = NULL;
            json_decref(cur);
            return commands_succeed(res, text,
                                    json_pack("{s:b, s:b, s:s, s:s}", "ok", 1, "changed", 0,
                                              "action", action, "target", target));
        }
        bool allowed = ctl_director_step_allowed(state, cmd->dir_action);
        if (!allowed && !cmd->force) {
            snprintf(err, sizeof(err),
                     "refused: director %s %s: proxy is %s, and %s leads only from %s to %s "
                     "(cycle inactive -> filling -> active -> draining -> inactive); use --force "
                     "to override",
                     ctl_director_action_name(cmd->dir_action), cmd->target, state,
                     ctl_director_action_name(cmd->dir_action),
                     kv_director_state_name(kv_director_state_before(dir_target[cmd->dir_action])),
                     want);
            json_decref(cur);
            return commands_fail(res, CTL_REFUSED, err);
        }
        json_t *next = json_deep_copy(cur);
        if (next)
            json_object_set_new(next, "state", json_string(want));
        char *value = next ? dump(next) : NULL;
        if (!value) {
            json_decref(cur);
            json_decref(next);
            return commands_fail(res, CTL_FAILED, "out of memory building the director entry");
        }
        struct audited_write aw = {.key = key,
                                   .value = value,
                                   .index = index,
                                   .author = author,
                                   .action = action,
                                   .target = target,
                                   .before = cur,
                                   .after = next};
        rc = write_audited(kv, s, cmd, now_ms, attempt, &aw, akey, sizeof(akey), err, sizeof(err));
        free(value);
        char *text = NULL;
        if (rc == 0 && asprintf(&text, "proxy %s: %s -> %s%s", cmd->target, state, want,
                                allowed ? "" : " (forced)") < 0)
            text = NULL;
        rc = audited_outcome(res, rc, &aw, akey, text, NULL, err, attempt, attempts);
        json_decref(cur);
        json_decref(next);
        if (rc != AUDITED_AGAIN)
            return rc;
    }
    return fail_conflicts(res, key, attempts);
}
/* ---- the front door: host drain/undrain ----------------------------------------------- */

/* Read R frontdoor/status/<host>: 1 with *st, 0 when absent or bad. */
static int host_status(struct ctl_kv *kv, const struct ctl_settings *s, const char *host,
                       struct kv_frontdoor_status *st)
{
    char key[600], err[ERRLEN];
    struct consul_kv_list *l = NULL;
    int found = 0;

    snprintf(key, sizeof(key), "%s" KV_FRONTDOOR_STATUS "%s", s->root, host);
    if (ctl_kv_get(kv, key, &l, err, sizeof(err)) < 0 || !l)
        return 0;
    if (l->n && l->items[0].value &&
        kv_frontdoor_status_decode((const char *)l->items[0].value, l->items[0].value_len, st, err,
                                   sizeof(err)) == 0)
        found = 1;
    consul_kv_list_free(l);
    return found;
}

static size_t announced_count(const struct kv_frontdoor_status *st)
{
    size_t n = 0;
    for (size_t i = 0; i < st->n_vips; i++)
        n += strcmp(st->vips[i].route, "withdrawn") != 0;
    return n;
}

/* Wait until host announces nothing and its packet counter stood still for
 * two consecutive status updates; text says how it went. */
static bool host_wait_idle(struct ctl_kv *kv, const struct ctl_settings *s, const char *host,
                           int64_t wait_ms, struct sbuf *b)
{
    struct timespec t0, now;
    uint64_t last = 0;
    char last_updated[64] = "";
    int still = 0;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        struct kv_frontdoor_status st;
        if (host_status(kv, s, host, &st)) {
            bool fresh = st.updated && strcmp(st.updated, last_updated) != 0;
            if (fresh) {
                snprintf(last_updated, sizeof(last_updated), "%s", st.updated);
                still = announced_count(&st) == 0 && st.packets == last ? still + 1 : 0;
                last = st.packets;
            }
            kv_frontdoor_status_clear(&st);
            if (still >= 2) {
                commands_sb_printf(
                    b,
                    "host %s: nothing announced, packet counter still at %llu: it can be "
                    "worked on\n",
                    host, (unsigned long long)last);
                return true;
            }
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        int64_t ms = (now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000;
        if (ms >= wait_ms) {
            commands_sb_printf(
                b,
                "host %s: still busy after %lld ms (announcing, or packets moving: %llu); "
                "check its frontdoor status before working on it\n",
                host, (long long)wait_ms, (unsigned long long)last);
            return false;
        }
        struct timespec pause = {0, 250 * 1000000L};
        nanosleep(&pause, NULL);
    }
}

static int exec_host(struct ctl_kv *kv, const struct ctl_settings *s, const struct ctl_command *cmd,
                     int64_t now_ms, struct ctl_result *res)
{
    char err[ERRLEN], key[700], akey[400], target[600], since[40];
    const char *author = commands_author(cmd, s);
    const char *action = cmd->host_undrain ? "host-undrain" : "host-drain";
    int attempts = s->cas_attempts > 0 ? s->cas_attempts : CTL_CAS_ATTEMPTS;

    if (!kv_valid_segment(cmd->target) || strlen(cmd->target) > 253) {
        snprintf(err, sizeof(err), "refused: '%.100s' is not a host name", cmd->target);
        return commands_fail(res, CTL_REFUSED, err);
    }
    snprintf(target, sizeof(target), KV_FRONTDOOR_HOSTS "%s", cmd->target);
    snprintf(key, sizeof(key), "%s%s", s->root, target);
    timefmt_format_rfc3339(now_ms / 1000, since, sizeof(since));
    for (int attempt = 1; attempt <= attempts; attempt++) {
        struct consul_kv_list *l = NULL;
        struct kv_frontdoor_host cur = {0};
        json_error_t je;
        bool have = false, drained = false;
        uint64_t index = 0;
        int rc;

        if ((rc = ctl_kv_get(kv, key, &l, err, sizeof(err))) < 0)
            return commands_fail(res, CTL_FAILED, err);
        json_t *before = NULL;
        if (l && l->n) {
            index = l->items[0].modify_index;
            have = true;
            if (l->items[0].value &&
                kv_frontdoor_host_decode((const char *)l->items[0].value, l->items[0].value_len,
                                         &cur, err, sizeof(err)) == 0) {
                drained = cur.drained;
                kv_frontdoor_host_clear(&cur);
            }
            before = l->items[0].value ? json_loadb((const char *)l->items[0].value,
                                                    l->items[0].value_len, 0, &je)
                                       : NULL;
        }
        consul_kv_list_free(l);
        if (drained == !cmd->host_undrain && (have || cmd->host_undrain)) {
            json_decref(before);
            struct sbuf b = {0};
            commands_sb_printf(&b, "no change: host %s is already %s\n", cmd->target,
                               drained ? "drained" : "undrained");
            if (!cmd->host_undrain && cmd->wait_ms > 0)
                host_wait_idle(kv, s, cmd->target, cmd->wait_ms, &b);
            return commands_succeed(res, commands_sb_take(&b),
                                    json_pack("{s:b, s:b, s:s, s:s}", "ok", 1, "changed", 0,
                                              "action", action, "target", target));
        }
        char *value = NULL;
        json_t *after = NULL;
        if (!cmd->host_undrain) {
            struct kv_frontdoor_host h = {
                .drained = true, .author = (char *)author, .reason = cmd->reason, .since = since};
            value = kv_frontdoor_host_encode(&h);
            after = value ? json_loads(value, 0, &je) : NULL;
            if (!after) {
                free(value);
                json_decref(before);
                return commands_fail(res, CTL_FAILED, "out of memory building the host entry");
            }
        }
        char folder[300];
        snprintf(folder, sizeof(folder), "%s" KV_FRONTDOOR_HOSTS, s->root);
        struct audited_write aw = {.key = key,
                                   .value = value,
                                   .index = index,
                                   .author = author,
                                   .action = action,
                                   .target = target,
                                   .before = before,
                                   .after = after,
                                   .folder = folder};
        rc = write_audited(kv, s, cmd, now_ms, attempt, &aw, akey, sizeof(akey), err, sizeof(err));
        free(value);
        char *text = NULL;
        if (rc == 0) {
            struct sbuf b = {0};
            commands_sb_printf(&b, "host %s: %s (%s)\n", cmd->target,
                               cmd->host_undrain
                                   ? "undrained: its VIPs are announced again after rise"
                                   : "drained: graceful shutdown, then its VIPs are withdrawn",
                               key);
            if (!cmd->host_undrain && cmd->wait_ms > 0)
                host_wait_idle(kv, s, cmd->target, cmd->wait_ms, &b);
            text = commands_sb_take(&b);
        }
        rc = audited_outcome(res, rc, &aw, akey, text, NULL, err, attempt, attempts);
        json_decref(before);
        json_decref(after);
        if (rc != AUDITED_AGAIN)
            return rc;
    }
    return fail_conflicts(res, key, attempts);
}

/* ---- KV-loss force ------------------------------------------------------------------------- */

/* haproxy/<cluster>/force-kv-loss: the watchers of that cluster end a
 * KV-loss episode (and start none) until expires: the tree as it is now is
 * what the operator wants served (docs/kv-schema.md). Written whatever
 * was there before (a newer expiry replaces an older one), with the audit
 * entry in the same transaction. */
static int exec_kv_loss(struct ctl_kv *kv, const struct ctl_settings *s,
                        const struct ctl_command *cmd, int64_t now_ms, struct ctl_result *res)
{
    char err[ERRLEN], key[700], akey[400], target[600], expires[40];
    const char *author = commands_author(cmd, s);
    int attempts = s->cas_attempts > 0 ? s->cas_attempts : CTL_CAS_ATTEMPTS;

    if (!kv_valid_segment(cmd->target)) {
        snprintf(err, sizeof(err), "refused: '%.100s' is not a cluster name", cmd->target);
        return commands_fail(res, CTL_REFUSED, err);
    }
    snprintf(target, sizeof(target), "haproxy/%s/" KV_HAPROXY_FORCE_KV_LOSS, cmd->target);
    snprintf(key, sizeof(key), "%s%s", s->root, target);
    timefmt_format_rfc3339((now_ms + cmd->ttl_ms) / 1000, expires, sizeof(expires));
    for (int attempt = 1; attempt <= attempts; attempt++) {
        struct consul_kv_list *l = NULL;
        json_error_t je;
        uint64_t index = 0;
        int rc;

        if ((rc = ctl_kv_get(kv, key, &l, err, sizeof(err))) < 0)
            return commands_fail(res, CTL_FAILED, err);
        json_t *before = NULL;
        if (l && l->n) {
            index = l->items[0].modify_index;
            before = l->items[0].value ? json_loadb((const char *)l->items[0].value,
                                                    l->items[0].value_len, 0, &je)
                                       : NULL;
        }
        consul_kv_list_free(l);
        json_t *after = json_pack("{s:s, s:s, s:s?}", "expires", expires, "author", author,
                                  "reason", cmd->reason);
        char *value = after ? dump(after) : NULL;
        if (!value) {
            json_decref(before);
            json_decref(after);
            return commands_fail(res, CTL_FAILED, "out of memory building the force entry");
        }
        struct audited_write aw = {.key = key,
                                   .value = value,
                                   .index = index,
                                   .author = author,
                                   .action = "kv-loss-force",
                                   .target = target,
                                   .before = before,
                                   .after = after};
        rc = write_audited(kv, s, cmd, now_ms, attempt, &aw, akey, sizeof(akey), err, sizeof(err));
        free(value);
        char *text = NULL;
        if (rc == 0 && asprintf(&text,
                                "kv-loss force %s: until %s the watchers of cluster %s end a "
                                "KV-loss episode and serve the tree as it is (%s)\n",
                                cmd->target, expires, cmd->target, key) < 0)
            text = NULL;
        rc = audited_outcome(res, rc, &aw, akey, text, NULL, err, attempt, attempts);
        json_decref(before);
        json_decref(after);
        if (rc != AUDITED_AGAIN)
            return rc;
    }
    return fail_conflicts(res, key, attempts);
}

/* ---- entry point --------------------------------------------------------------------------- */

int ctl_execute(struct ctl_kv *kv, const struct ctl_settings *s, const struct ctl_command *cmd,
                int64_t now_ms, struct ctl_result *res)
{
    memset(res, 0, sizeof(*res));
    switch (cmd->verb) {
    case CTL_VERB_DRAIN:
    case CTL_VERB_UNDRAIN:
    case CTL_VERB_MAINT:
    case CTL_VERB_READY:
    case CTL_VERB_WEIGHT:
        return exec_maint(kv, s, cmd, now_ms, res);
    case CTL_VERB_DIRECTOR:
        return exec_director(kv, s, cmd, now_ms, res);
    case CTL_VERB_HOST:
        return exec_host(kv, s, cmd, now_ms, res);
    case CTL_VERB_KV_LOSS:
        return exec_kv_loss(kv, s, cmd, now_ms, res);
    case CTL_VERB_STATUS:
        return commands_exec_status(kv, s, cmd, now_ms, res);
    case CTL_VERB_HISTORY:
        return commands_exec_history(kv, s, cmd, res);
    case CTL_VERB_CONFIG:
        return commands_exec_config(kv, s, cmd, now_ms, res);
    case CTL_VERB_HELP:
        return commands_succeed(
            res, strdup(ctl_usage_of(cmd->help_verb)),
            json_pack("{s:b, s:s}", "ok", 1, "usage", ctl_usage_of(cmd->help_verb)));
    }
    return commands_fail(res, CTL_FAILED, "unknown command");
}
