/* SPDX-License-Identifier: Apache-2.0 */
/*
 * haproxy_engine, route maps: the routes class selectors generate
 * (kv_model.h) are served through one HAProxy map file per selected
 * frontend ("<config_dir>/<service>.<frontend>.map", read by
 * `use_backend %[...,map(FILE)]`). When the service needs no reload
 * anyway, a change is sent first as `add map` / `set map` / `del map`
 * through the runtime API (a route change on existing backends costs 0
 * reloads), then renamed into the file (visible for a reload) and made
 * durable (fsync) in the structural window; otherwise it is written
 * durably for the reload to read. A runtime update that fails falls back
 * to a reload, which reads the file.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomic_file.h"
#include "haproxy_engine_internal.h"
#include "log.h"
#include "render_files.h"
#include "snapshot.h"

struct map_ctx {
    struct haproxy_engine *e;
    struct service_state *s;
};

static void on_map_updated(struct haproxy_runtime *rt, int status, const char *const *answers,
                           size_t n, const char *err, void *arg)
{
    struct map_ctx *c = arg;
    struct haproxy_engine *e = c->e;
    const char *why = status < 0 ? (err ? err : strerror(-status)) : NULL;
    (void)rt;
    for (size_t i = 0; !why && i < n; i++)
        if (answers[i] && answers[i][strspn(answers[i], " \n")])
            why = answers[i]; /* HAProxy answers nothing on success */
    if (!why) {
        e->route_updates++;
        metrics_counter_inc(e->m_route_updates);
        log_debug("watcher: service %s: route map updated, %zu commands", c->s->name, n);
    } else if (!e->stopping) {
        log_warn("watcher: service %s: route map update through the runtime API failed: %.200s; "
                 "reloading, HAProxy reads the map file",
                 c->s->name, why);
        json_decref(c->s->structure);
        c->s->structure = NULL;
        c->s->reload_pending = true;
        quiesce_timer_kick(e->struct_q);
    }
    free(c);
}

/* Next "host backend" line of a map text: host and backend spans. */
static bool next_line(const char **p, const char **h, size_t *hl, const char **b, size_t *bl)
{
    if (!*p || !**p)
        return false;
    const char *sp = strchr(*p, ' '), *nl = strchr(*p, '\n');
    if (!sp || !nl || sp > nl)
        return false;
    *h = *p;
    *hl = (size_t)(sp - *p);
    *b = sp + 1;
    *bl = (size_t)(nl - sp - 1);
    *p = nl + 1;
    return true;
}

static int push(char ***cmds, size_t *n, char *cmd)
{
    char **v = cmd ? realloc(*cmds, (*n + 1) * sizeof(*v)) : NULL;
    if (!v) {
        free(cmd);
        return -ENOMEM;
    }
    *cmds = v;
    v[(*n)++] = cmd;
    return 0;
}

static char *fmt(const char *verb, const char *path, const char *h, size_t hl, const char *b,
                 size_t bl)
{
    char *c = NULL;
    if (b && asprintf(&c, "%s map %s %.*s %.*s", verb, path, (int)hl, h, (int)bl, b) < 0)
        return NULL;
    if (!b && asprintf(&c, "%s map %s %.*s", verb, path, (int)hl, h) < 0)
        return NULL;
    return c;
}

/* Commands taking a map from text old to text new (both sorted by host,
 * as snapshot_map_text writes them). 0 or -ENOMEM. */
int engine_map_commands(const char *path, const char *old, const char *new, char ***cmds, size_t *n)
{
    const char *po = old, *pn = new, *oh = NULL, *ob = NULL, *nh = NULL, *nb = NULL;
    size_t ohl = 0, obl = 0, nhl = 0, nbl = 0;
    bool ho = next_line(&po, &oh, &ohl, &ob, &obl), hn = next_line(&pn, &nh, &nhl, &nb, &nbl);
    int rc = 0;
    *cmds = NULL;
    *n = 0;
    while (rc == 0 && (ho || hn)) {
        int c = !ho ? 1 : !hn ? -1 : strncmp(oh, nh, ohl < nhl ? ohl : nhl);
        if (ho && hn && c == 0)
            c = ohl < nhl ? -1 : ohl > nhl ? 1 : 0;
        if (c < 0) {
            rc = push(cmds, n, fmt("del", path, oh, ohl, NULL, 0));
            ho = next_line(&po, &oh, &ohl, &ob, &obl);
        } else if (c > 0) {
            rc = push(cmds, n, fmt("add", path, nh, nhl, nb, nbl));
            hn = next_line(&pn, &nh, &nhl, &nb, &nbl);
        } else {
            if (obl != nbl || strncmp(ob, nb, obl) != 0)
                rc = push(cmds, n, fmt("set", path, nh, nhl, nb, nbl));
            ho = next_line(&po, &oh, &ohl, &ob, &obl);
            hn = next_line(&pn, &nh, &nhl, &nb, &nbl);
        }
    }
    return rc;
}

static struct service_map *find_map(struct service_state *s, const char *path)
{
    for (size_t i = 0; i < s->n_maps; i++)
        if (strcmp(s->maps[i].path, path) == 0)
            return &s->maps[i];
    return NULL;
}

static void send_commands(struct haproxy_engine *e, struct service_state *s, char **cmds, size_t n)
{
    struct map_ctx *c = calloc(1, sizeof(*c));
    int rc = c ? haproxy_runtime_exec(s->rt, HAPROXY_SOCKET_STATS, (const char *const *)cmds, n,
                                      on_map_updated, c)
               : -ENOMEM;
    if (rc < 0) {
        free(c);
        log_warn("watcher: service %s: cannot queue the route map update: %s; reloading", s->name,
                 strerror(-rc));
        json_decref(s->structure);
        s->structure = NULL;
        s->reload_pending = true;
        return;
    }
    c->e = e;
    c->s = s;
}

void engine_sync_maps(struct haproxy_engine *e, struct service_state *s,
                      const struct snapshot_service *svc, bool runtime)
{
    const struct kvm_service *d = svc->def;
    for (size_t i = 0; i < d->n_frontends; i++) {
        char *path = snapshot_map_path(e->o.config_dir, d, &d->frontends[i]);
        char *text = path ? snapshot_map_text(&d->frontends[i]) : NULL;
        struct service_map *m = path ? find_map(s, path) : NULL;
        char **cmds = NULL;
        size_t n = 0;
        int rc;
        if (!path || !text || (m && strcmp(m->text, text) == 0))
            goto next;
        /* runtime: HAProxy first (the route is what the change waits for),
         * then the file, visible at once for a reload but made durable only
         * in the structural window: an fsync here costs milliseconds on
         * every route change (a restarted watcher rewrites every map) */
        bool sent = false;
        if (runtime && m && s->rt) {
            if (engine_map_commands(path, m->text, text, &cmds, &n) < 0) {
                s->reload_pending = true; /* the reload reads the file */
            } else if (n) {
                send_commands(e, s, cmds, n);
                sent = true;
            }
        }
        rc = sent ? atomic_file_replace(path, text, strlen(text), 0644)
                  : atomic_file_write(path, text, strlen(text), 0644);
        if (rc < 0 && !sent) {
            log_error("watcher: service %s: cannot write route map %s: %s; routes stay as they "
                      "are, retried with the next change",
                      s->name, path, strerror(-rc));
            goto next;
        }
        if (rc < 0)
            log_error("watcher: service %s: cannot write route map %s: %s; HAProxy serves the "
                      "routes, the file is retried in the quiet window",
                      s->name, path, strerror(-rc));
        if (!m) {
            struct service_map *v = realloc(s->maps, (s->n_maps + 1) * sizeof(*v));
            if (!v)
                goto next;
            s->maps = v;
            m = &v[s->n_maps++];
            m->path = path;
            m->text = NULL;
            path = NULL;
        }
        free(m->text);
        m->text = text;
        m->durable_pending = sent;
        m->visible_pending = sent && rc < 0;
        text = NULL;
    next:
        for (size_t j = 0; j < n; j++)
            free(cmds[j]);
        free(cmds);
        free(path);
        free(text);
    }
}

void engine_persist_maps(struct service_state *s)
{
    for (size_t i = 0; i < s->n_maps; i++) {
        struct service_map *m = &s->maps[i];
        int rc;
        if (!m->durable_pending)
            continue;
        /* fsynced off the loop, never written there (see file_writer.h);
         * written again here only if its rename on the loop failed: the
         * file already holds m->text otherwise */
        rc = m->visible_pending ? atomic_file_replace(m->path, m->text, strlen(m->text), 0644) : 0;
        if (rc == 0)
            m->visible_pending = false;
        if (rc == 0)
            rc = file_writer_sync(s->e->writer, m->path);
        if (rc < 0) {
            log_error("watcher: service %s: cannot write route map %s: %s; retried in the next "
                      "quiet window",
                      s->name, m->path, strerror(-rc));
            continue;
        }
        m->durable_pending = false;
    }
}

void engine_free_maps(struct service_state *s)
{
    for (size_t i = 0; i < s->n_maps; i++) {
        free(s->maps[i].path);
        free(s->maps[i].text);
    }
    free(s->maps);
    s->maps = NULL;
    s->n_maps = 0;
}

void engine_remove_maps(struct haproxy_engine *e, struct service_state *s)
{
    int n = render_files_remove_maps(e->o.config_dir, s->name, engine_service_served, e, e->writer);
    engine_free_maps(s);
    if (n > 0)
        log_info("watcher: service %s: %d route map%s removed", s->name, n, n == 1 ? "" : "s");
}

/* What a prune keeps: the maps the installed config names (its
 * structure) and those of s's newest definition (its next install may
 * need them). Compared by name: the config dir may be spelt with a
 * trailing slash in one and not in the other. */
struct kept_maps {
    const json_t *structure;
    const struct kvm_service *def; /* NULL: retired meanwhile */
};

static bool map_kept(void *arg, const char *path)
{
    const struct kept_maps *k = arg;
    const json_t *fe;
    size_t i;
    json_array_foreach(json_object_get(k->structure, "frontends"), i, fe)
    {
        const char *m = json_string_value(json_object_get(fe, "map"));
        if (m && render_files_same_name(m, path))
            return true;
    }
    return k->def && render_files_names_map(k->def, path);
}

void engine_prune_maps(struct haproxy_engine *e, struct service_state *s, const json_t *structure)
{
    const struct snapshot_service *svc = e->snap ? snapshot_service(e->snap, s->name) : NULL;
    struct kept_maps k = {structure, svc ? svc->def : NULL};
    int n = render_files_prune_maps(e->o.config_dir, s->name, map_kept, &k, engine_service_served,
                                    e, e->writer);
    size_t kept = 0;
    for (size_t i = 0; i < s->n_maps; i++) {
        if (map_kept(&k, s->maps[i].path)) {
            s->maps[kept++] = s->maps[i];
            continue;
        }
        /* forgotten: a frontend that comes back has its map written anew */
        free(s->maps[i].path);
        free(s->maps[i].text);
    }
    s->n_maps = kept;
    if (n > 0)
        log_info("watcher: service %s: %d route map%s of frontends its config no longer has "
                 "removed",
                 s->name, n, n == 1 ? "" : "s");
}

void engine_sweep_maps(struct haproxy_engine *e)
{
    int n = render_files_remove_maps(e->o.config_dir, NULL, engine_service_served, e, e->writer);
    if (n > 0)
        log_info("watcher: %d route map%s of services without a config removed (left by a "
                 "watcher stopped while retiring them)",
                 n, n == 1 ? "" : "s");
}
