/* SPDX-License-Identifier: Apache-2.0 */
/*
 * commands_status: the read-only commands of droverctl. `status` lists the
 * maintenance entries with the HAProxy servers each affects, then (without
 * a target) the front door (every host's announcements, directors that
 * disagree on their table) and the fleet view; with a server target also
 * the slot each HAProxy host put it in; `history` lists the audit log.
 * Nothing here writes to Consul. The changes and the entry point
 * ctl_execute live in commands.c; the helpers both share are in
 * commands_internal.h.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands_internal.h"
#include "fleet.h"
#include "kv_frontdoor.h"
#include "kv_key.h"
#include "kv_status.h"

static int cmp_maint(const void *a, const void *b)
{
    return strcmp(((const struct ctl_maint *)a)->id, ((const struct ctl_maint *)b)->id);
}

static int cmp_kv_key(const void *a, const void *b)
{
    return strcmp(((const struct consul_kv *)a)->key, ((const struct consul_kv *)b)->key);
}

/* The front door lines of `status`: every host's announcements, and a line
 * per director cluster whose hosts run different tables. */
static void frontdoor_status(struct ctl_kv *kv, const struct ctl_settings *s, struct sbuf *b,
                             json_t *out)
{
    char prefix[400], err[ERRLEN];
    struct consul_kv_list *l = NULL;

    snprintf(prefix, sizeof(prefix), "%s" KV_FRONTDOOR_STATUS, s->root);
    if (ctl_kv_list(kv, prefix, &l, err, sizeof(err)) < 0 || !l || !l->n) {
        consul_kv_list_free(l);
        return;
    }
    qsort(l->items, l->n, sizeof(*l->items), cmp_kv_key);
    struct kv_frontdoor_status *st = calloc(l->n, sizeof(*st));
    bool *ok = calloc(l->n, sizeof(*ok));
    if (!st || !ok)
        goto out;
    commands_sb_printf(b, "front door:\n");
    for (size_t i = 0; i < l->n; i++) {
        const char *host = l->items[i].key + strlen(prefix);
        if (!l->items[i].value ||
            kv_frontdoor_status_decode((const char *)l->items[i].value, l->items[i].value_len,
                                       &st[i], err, sizeof(err)) < 0) {
            commands_sb_printf(b, "  %s: bad status entry (%s)\n", host, err);
            continue;
        }
        ok[i] = true;
        if (*st[i].cluster) /* a director */
            commands_sb_printf(b, "  %s (cluster %s, table %s%s%s): ", host, st[i].cluster,
                               *st[i].table_checksum ? st[i].table_checksum : "none",
                               st[i].drained ? ", DRAINED" : "",
                               st[i].bird_in_sync ? "" : ", BIRD OUT OF SYNC");
        else /* an anycast proxy host: no director table */
            commands_sb_printf(b, "  %s (anycast%s%s): ", host, st[i].drained ? ", DRAINED" : "",
                               st[i].bird_in_sync ? "" : ", BIRD OUT OF SYNC");
        json_t *o = json_pack("{s:s, s:s, s:s, s:b, s:b, s:[]}", "host", host, "cluster",
                              st[i].cluster, "table_checksum", st[i].table_checksum, "drained",
                              st[i].drained, "bird_in_sync", st[i].bird_in_sync, "vips");
        for (size_t k = 0; k < st[i].n_vips; k++) {
            commands_sb_printf(
                b, "%s%s %s%s%s", k ? "; " : "", st[i].vips[k].vip, st[i].vips[k].route,
                strcmp(st[i].vips[k].route, "announced") && st[i].vips[k].reason ? ": " : "",
                strcmp(st[i].vips[k].route, "announced") && st[i].vips[k].reason
                    ? st[i].vips[k].reason
                    : "");
            if (o)
                json_array_append_new(json_object_get(o, "vips"),
                                      json_pack("{s:s, s:s, s:s?}", "vip", st[i].vips[k].vip,
                                                "route", st[i].vips[k].route, "reason",
                                                st[i].vips[k].reason));
        }
        commands_sb_printf(b, "%s\n", st[i].n_vips ? "" : "no VIPs");
        if (o)
            json_array_append_new(json_object_get(out, "hosts"), o);
    }
    /* directors agree: one table checksum per cluster */
    for (size_t i = 0; i < l->n; i++) {
        if (!ok[i] || !*st[i].table_checksum)
            continue;
        bool first = true, differ = false;
        for (size_t k = 0; k < i && first; k++)
            first = !(ok[k] && !strcmp(st[k].cluster, st[i].cluster));
        if (!first)
            continue;
        for (size_t k = i + 1; k < l->n; k++)
            differ |= ok[k] && !strcmp(st[k].cluster, st[i].cluster) && *st[k].table_checksum &&
                      strcmp(st[k].table_checksum, st[i].table_checksum) != 0;
        if (differ) {
            commands_sb_printf(
                b, "  ALERT: directors of cluster %s run different tables:", st[i].cluster);
            for (size_t k = i; k < l->n; k++)
                if (ok[k] && !strcmp(st[k].cluster, st[i].cluster))
                    commands_sb_printf(b, " %s=%s", l->items[k].key + strlen(prefix),
                                       st[k].table_checksum);
            commands_sb_printf(b, "\n");
            json_array_append_new(json_object_get(out, "disagree"), json_string(st[i].cluster));
        }
    }
out:
    for (size_t i = 0; st && i < l->n; i++)
        if (ok[i])
            kv_frontdoor_status_clear(&st[i]);
    free(st);
    free(ok);
    consul_kv_list_free(l);
}

static int fleet_status(struct ctl_kv *kv, const struct ctl_settings *s, json_t **view, char **text,
                        char *err, size_t errlen)
{
    struct consul_kv_list *st = NULL, *defs = NULL;
    char *sp = kv_key_printf("%sstatus/", s->root), *hp = kv_key_printf("%shaproxy/", s->root);
    int rc = sp && hp ? 0 : -ENOMEM;
    if (rc == 0 && (rc = ctl_kv_list(kv, sp, &st, err, errlen)) == 0 &&
        (rc = ctl_kv_list(kv, hp, &defs, err, errlen)) == 0 &&
        (rc = ctl_fleet_view(s->root, st, defs, view, text)) < 0)
        snprintf(err, errlen, "fleet view: %s", strerror(-rc));
    consul_kv_list_free(st);
    consul_kv_list_free(defs);
    free(sp);
    free(hp);
    return rc;
}

/* The slots HAProxy hosts put server t (<backend>/<name>) in, from their
 * status entries (R status/<host>/haproxy, "slots" of each service; hosts
 * of --haproxy-cluster only when it is set): "  slots: proxy-a be/slot2,
 * ..." and [{"host", "slot"}] in out. A static server's slot is the
 * watcher's choice and may differ between hosts; HAProxy and the
 * agent-checker state file know only the slot. */
static void server_slots(struct ctl_kv *kv, const struct ctl_settings *s,
                         const struct ctl_target *t, struct sbuf *b, json_t *out)
{
    char prefix[400], err[ERRLEN], want[520];
    struct consul_kv_list *l = NULL;
    size_t shown = 0;

    snprintf(prefix, sizeof(prefix), "%sstatus/", s->root);
    snprintf(want, sizeof(want), "%s/%s", t->a, t->b);
    if (ctl_kv_list(kv, prefix, &l, err, sizeof(err)) < 0) {
        commands_sb_printf(b, "  slots: unknown (%s)\n", err);
        return;
    }
    if (l->n)
        qsort(l->items, l->n, sizeof(*l->items), cmp_kv_key);
    for (size_t i = 0; i < l->n; i++) {
        struct kv_status_rec r;
        json_error_t je;
        json_t *v = l->items[i].value
                        ? json_loadb((const char *)l->items[i].value, l->items[i].value_len, 0, &je)
                        : NULL;
        int rc = v ? kv_status_decode(v, &r, err, sizeof(err)) : -EINVAL;
        json_decref(v);
        if (rc < 0)
            continue; /* droverctl status without a target reports bad entries */
        bool mine =
            !strcmp(r.role, KV_STATUS_ROLE_HAPROXY) &&
            (!s->haproxy_cluster || !*s->haproxy_cluster || !strcmp(r.cluster, s->haproxy_cluster));
        for (size_t k = 0; mine && k < r.n_services; k++)
            for (size_t j = 0; j < r.services[k].n_slots; j++) {
                const struct kv_status_slot *e = &r.services[k].slots[j];
                if (strcmp(e->server, want))
                    continue;
                commands_sb_printf(b, "%s %s %s/%s", shown++ ? "," : "  slots:", r.host, t->a,
                                   e->slot);
                json_t *o = json_pack("{s:s, s:s, s:s}", "host", r.host, "service",
                                      r.services[k].name, "slot", e->slot);
                if (o)
                    json_array_append_new(out, o);
            }
        kv_status_free(&r);
    }
    if (shown)
        commands_sb_printf(b, "\n");
    else
        commands_sb_printf(b, "  slots: no HAProxy host reports %s in a slot\n", want);
    consul_kv_list_free(l);
}

int commands_exec_status(struct ctl_kv *kv, const struct ctl_settings *s,
                         const struct ctl_command *cmd, int64_t now_ms, struct ctl_result *res)
{
    char err[ERRLEN];
    struct ctl_model m;
    struct ctl_target only;
    bool filter = cmd->target != NULL;
    struct sbuf b = {0};
    json_t *entries = json_array();
    size_t shown = 0;
    int rc;

    if ((rc = commands_load_model(kv, s, &m, now_ms / 1000, err, sizeof(err))) < 0) {
        json_decref(entries);
        return commands_fail(res, CTL_FAILED, err);
    }
    /* An id of an existing entry is shown even if its target left the KV. */
    if (filter && !(ctl_target_from_id(cmd->target, &only) == 0 && ctl_model_maint(&m, only.id)) &&
        ctl_model_resolve(&m, cmd->target, s->clusters, s->n_clusters, &only, err, sizeof(err)) <
            0) {
        ctl_model_clear(&m);
        json_decref(entries);
        return commands_fail(res, CTL_REFUSED, err);
    }
    if (m.n_maint) /* qsort(NULL, 0) is undefined */
        qsort(m.maint, m.n_maint, sizeof(*m.maint), cmp_maint);
    for (size_t i = 0; i < m.n_maint; i++) {
        const struct ctl_maint *e = &m.maint[i];
        struct ctl_target t;
        bool expired = ctl_maint_expired(e, m.now);

        if (filter && strcmp(e->id, only.id))
            continue;
        ctl_target_from_id(e->id, &t);
        commands_sb_printf(&b, "%s: %s", e->id, ctl_state_name(e->state));
        if (e->weight >= 0)
            commands_sb_printf(&b, ", weight %d%%", e->weight);
        commands_sb_printf(&b, ", by %s", e->author ? e->author : "?");
        if (e->created)
            commands_sb_printf(&b, " at %s", e->created);
        if (e->expires)
            commands_sb_printf(&b, ", expires %s%s", e->expires,
                               expired ? " (EXPIRED, ignored)" : "");
        if (e->reason)
            commands_sb_printf(&b, ", reason: %s", e->reason);
        commands_sb_printf(&b, "\n  affects: ");
        json_t *arr = json_array();
        struct affect_list al = {.text = &b, .arr = arr};
        ctl_model_affected(&m, &t, commands_on_affected, &al);
        if (!al.n)
            commands_sb_printf(&b, "no HAProxy server");
        commands_sb_printf(&b, "\n");
        json_t *o = json_pack("{s:s, s:s, s:b, s:o}", "target", e->id, "state",
                              ctl_state_name(e->state), "expired", expired, "affects", arr);
        if (o) {
            if (e->weight >= 0)
                json_object_set_new(o, "weight", json_integer(e->weight));
            if (e->reason)
                json_object_set_new(o, "reason", json_string(e->reason));
            if (e->author)
                json_object_set_new(o, "author", json_string(e->author));
            if (e->created)
                json_object_set_new(o, "created", json_string(e->created));
            if (e->expires)
                json_object_set_new(o, "expires", json_string(e->expires));
            json_array_append_new(entries, o);
        }
        shown++;
    }
    if (!shown) {
        if (filter) {
            commands_sb_printf(&b, "%s: ready (no maintenance entry)\n  affects: ", only.id);
            struct affect_list al = {.text = &b};
            ctl_model_affected(&m, &only, commands_on_affected, &al);
            if (!al.n)
                commands_sb_printf(&b, "no HAProxy server");
            commands_sb_printf(&b, "\n");
        } else {
            commands_sb_printf(&b, "no maintenance entries\n");
        }
    }
    json_t *slots = NULL;
    if (filter && only.kind == CTL_TARGET_SERVER && (slots = json_array()))
        server_slots(kv, s, &only, &b, slots);
    if (m.bad)
        commands_sb_printf(&b, "(%zu bad KV entries skipped; see the log)\n", m.bad);
    ctl_model_clear(&m);
    json_t *fd = json_pack("{s:[], s:[]}", "hosts", "disagree");
    if (!filter && fd)
        frontdoor_status(kv, s, &b, fd);
    if (filter)
        return commands_succeed(res, commands_sb_take(&b),
                                json_pack("{s:b, s:o, s:o*, s:o*}", "ok", 1, "entries", entries,
                                          "frontdoor", fd, "slots", slots));
    /* the whole fleet: what every watcher reports against the live definitions */
    json_t *fleet = NULL;
    char *ftext = NULL;
    if ((rc = fleet_status(kv, s, &fleet, &ftext, err, sizeof(err))) < 0) {
        free(commands_sb_take(&b));
        json_decref(entries);
        json_decref(fd);
        return commands_fail(res, CTL_FAILED, err);
    }
    bool fleet_ok = json_is_true(json_object_get(fleet, "ok"));
    commands_sb_printf(&b, "%s", ftext);
    free(ftext);
    json_t *top = json_pack("{s:b, s:o, s:o, s:o*}", "ok", fleet_ok, "entries", entries, "fleet",
                            fleet, "frontdoor", fd);
    /* the config versions: what is live, staged, or applied without canary */
    if (top && commands_deploy_status(kv, s, &b, top) < 0)
        commands_sb_printf(&b, "config: cannot read the config history\n");
    rc = commands_succeed(res, commands_sb_take(&b), top);
    if (!fleet_ok)
        res->outcome = CTL_REFUSED; /* exit 1: something is off (the view is the answer) */
    return rc;
}

int commands_exec_history(struct ctl_kv *kv, const struct ctl_settings *s,
                          const struct ctl_command *cmd, struct ctl_result *res)
{
    char err[ERRLEN], prefix[400];
    struct consul_kv_list *l = NULL;
    struct sbuf b = {0};
    json_t *arr = json_array();
    int rc;

    snprintf(prefix, sizeof(prefix), "%saudit/", s->root);
    if ((rc = ctl_kv_list(kv, prefix, &l, err, sizeof(err))) < 0) {
        json_decref(arr);
        return commands_fail(res, CTL_FAILED, err);
    }
    if (l->n)
        qsort(l->items, l->n, sizeof(*l->items), cmp_kv_key);
    size_t first = l->n > (size_t)cmd->limit ? l->n - (size_t)cmd->limit : 0;
    for (size_t i = first; i < l->n; i++) {
        json_error_t je;
        json_t *v = l->items[i].value
                        ? json_loadb((const char *)l->items[i].value, l->items[i].value_len, 0, &je)
                        : NULL;
        if (!json_is_object(v)) {
            commands_sb_printf(&b, "%s: (not a JSON object)\n", l->items[i].key + strlen(prefix));
            json_decref(v);
            continue;
        }
        const char *reason = json_string_value(json_object_get(v, "reason"));
        commands_sb_printf(&b, "%s %s (%s) %s %s%s%s%s\n",
                           json_string_value(json_object_get(v, "time")) ?: "?",
                           json_string_value(json_object_get(v, "author")) ?: "?",
                           json_string_value(json_object_get(v, "source")) ?: "?",
                           json_string_value(json_object_get(v, "action")) ?: "?",
                           json_string_value(json_object_get(v, "target")) ?: "?",
                           json_is_true(json_object_get(v, "force")) ? " [forced]" : "",
                           reason ? ": " : "", reason ? reason : "");
        json_object_set_new(v, "key", json_string(l->items[i].key + strlen(prefix)));
        json_array_append_new(arr, v);
    }
    if (!l->n)
        commands_sb_printf(&b, "no audit entries\n");
    consul_kv_list_free(l);
    return commands_succeed(res, commands_sb_take(&b),
                            json_pack("{s:b, s:o}", "ok", 1, "entries", arr));
}
