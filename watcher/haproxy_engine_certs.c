/* SPDX-License-Identifier: Apache-2.0 */
/*
 * haproxy_engine, certificates: frontends that terminate TLS name their
 * certificate files in the definition (frontends[].tls.certs, served
 * through a generated crt-list: `bind ... ssl crt-list FILE`; before a
 * structural install the files are checked and the lists written,
 * engine_prepare_tls and tls_files.h). The files belong to whoever renews them
 * (an ACME client, cert-manager, an operator); the engine watches them and
 * hands a changed file to the running HAProxy with `set ssl cert FILE <<`
 * + `commit ssl cert FILE` on the stats socket: a renewed certificate
 * costs 0 reloads and is served by the next TLS handshake.
 *
 * Watching is a stat() of every certificate of every installed
 * configuration each --cert-poll-interval; only a changed stat (inode,
 * size, mtime, ctime) reads the file, and only a changed content is sent.
 * A file that does not parse or whose key does not match its certificate
 * (tls_cert.h) is refused with the file and the reason logged once, and
 * counted; HAProxy keeps the certificate in force. HAProxy's own refusal
 * at commit is handled the same way, the open transaction aborted.
 *
 * Only certificates of the configuration HAProxy runs (the service's
 * installed structure) are sent: a certificate a pending reload adds is
 * read from disk by that reload. A certificate seen for the first time
 * (watcher start, new in the configuration) is sent once: that is
 * idempotent, and it closes the window between HAProxy reading the file
 * and the watcher first looking at it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <uv.h>

#include "haproxy_engine_internal.h"
#include "kv_kube.h"
#include "log.h"
#include "render.h"
#include "tls_cert.h"
#include "tls_files.h"

/* Something changed in a directory holding certificates: check soon. The
 * short delay lets a writer that renames several files finish; the poll
 * stays as the safety net (events can be missed: a directory replaced, a
 * network file system). */
#define CERT_EVENT_DELAY_MS 5
/* What engine_service_refused is told when the TLS files of a definition
 * are refused: the poll retries only these refusals. */
#define TLS_FILES_REFUSED "tls files"

static void on_cert_kick(uv_timer_t *t);

struct swap_ctx {
    struct haproxy_engine *e;
    struct service_state *s;
    char *path; /* the cert may be dropped from the list while in flight */
    struct tls_cert_info info;
};

static struct service_cert *find_cert(struct service_state *s, const char *path)
{
    for (size_t i = 0; i < s->n_certs; i++)
        if (strcmp(s->certs[i].path, path) == 0)
            return &s->certs[i];
    return NULL;
}

static bool same_stat(const struct stat *a, const struct stat *b)
{
    return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
           a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

static void on_aborted(struct haproxy_runtime *rt, int status, const char *const *answers, size_t n,
                       const char *err, void *arg)
{
    (void)rt;
    (void)status;
    (void)answers;
    (void)n;
    (void)err;
    free(arg);
}

/* HAProxy's answer to set (0) and commit (1): created/updated, Success. */
static const char *swap_error(int status, const char *const *answers, size_t n, const char *err)
{
    if (status < 0)
        return err ? err : strerror(-status);
    if (n < 2 || !answers[0] || !answers[1])
        return "no answer";
    if (!strstr(answers[0], "Transaction created") && !strstr(answers[0], "Transaction updated"))
        return answers[0];
    if (!strstr(answers[1], "Success!"))
        return answers[1];
    return NULL;
}

static void on_swapped(struct haproxy_runtime *rt, int status, const char *const *answers, size_t n,
                       const char *err, void *arg)
{
    struct swap_ctx *c = arg;
    struct haproxy_engine *e = c->e;
    struct service_cert *sc = e->stopping ? NULL : find_cert(c->s, c->path);
    const char *why = swap_error(status, answers, n, err);
    if (!sc)
        goto out;
    sc->in_flight = false;
    if (!why) {
        memcpy(sc->hash, sc->pending, sizeof(sc->hash));
        sc->known = true;
        e->cert_swaps++;
        metrics_counter_inc(e->m_cert_swaps);
        log_info("watcher: service %s: certificate %s swapped through the runtime API in %.1f ms, "
                 "no reload (subject %s, not after %s, sha1 %s)",
                 c->s->name, c->path, (double)(uv_hrtime() - sc->detected_ns) / 1e6,
                 c->info.subject, c->info.not_after, c->info.sha1);
    } else if (status < 0) {
        /* HAProxy not up (yet): the next poll sends it again */
        memset(&sc->st, 0, sizeof(sc->st));
        log_debug("watcher: service %s: certificate %s not sent: %.200s; retried", c->s->name,
                  c->path, why);
    } else {
        char *path = strdup(c->path);
        const char *cmd[1];
        char *abort_cmd = NULL;
        memcpy(sc->refused, sc->pending, sizeof(sc->refused));
        e->cert_failures++;
        metrics_counter_inc(e->m_cert_failures);
        log_error("watcher: service %s: HAProxy refused certificate %s: %.200s; it keeps "
                  "serving the certificate in force",
                  c->s->name, c->path, why);
        /* a failed commit leaves the transaction open: close it */
        if (path && asprintf(&abort_cmd, "abort ssl cert %s", path) >= 0) {
            cmd[0] = abort_cmd;
            if (haproxy_runtime_exec(rt, HAPROXY_SOCKET_STATS, cmd, 1, on_aborted, path) == 0)
                path = NULL;
        }
        free(abort_cmd);
        free(path);
    }
out:
    /* a change that came while this one was in flight */
    if (!e->stopping)
        uv_timer_start(&e->cert_kick, on_cert_kick, CERT_EVENT_DELAY_MS, 0);
    free(c->path);
    free(c);
}

static void refuse(struct haproxy_engine *e, struct service_state *s, struct service_cert *sc,
                   const char *hash, const char *why)
{
    memcpy(sc->refused, hash, sizeof(sc->refused));
    e->cert_failures++;
    metrics_counter_inc(e->m_cert_failures);
    log_error("watcher: service %s: certificate %s refused: %s; HAProxy keeps serving the "
              "certificate in force",
              s->name, sc->path, why);
}

/* Send the file's content when it changed; refuse it when it is bad. */
static void check_cert(struct haproxy_engine *e, struct service_state *s, struct service_cert *sc)
{
    struct stat st;
    char *text = NULL, *payload = NULL, *set = NULL, *commit = NULL, hash[17], err[256];
    size_t len = 0;
    int rc;

    if (sc->in_flight || !s->rt)
        return;
    if (stat(sc->path, &st) < 0) {
        if (sc->st.st_ino) /* said once per disappearance */
            log_warn("watcher: service %s: certificate %s: %s; HAProxy keeps serving the one it "
                     "has",
                     s->name, sc->path, strerror(errno));
        memset(&sc->st, 0, sizeof(sc->st));
        return;
    }
    /* the stat shortcut is for polls only: a file renamed over another
     * can get the freed inode number back, with the same size and, with
     * coarse file system timestamps, the same times; after a directory
     * event the content decides */
    if (!e->cert_event && sc->st.st_ino && same_stat(&st, &sc->st))
        return;
    uint64_t t0 = uv_hrtime();
    sc->st = st;
    if ((rc = render_read_file(sc->path, &text, &len)) < 0) {
        log_warn("watcher: service %s: certificate %s: cannot read it: %s; retried", s->name,
                 sc->path, strerror(-rc));
        memset(&sc->st, 0, sizeof(sc->st));
        return;
    }
    kv_hash64_hex(text, len, hash);
    if ((sc->known && strcmp(hash, sc->hash) == 0) || strcmp(hash, sc->refused) == 0)
        goto out;
    struct swap_ctx *c = calloc(1, sizeof(*c));
    if (!c || !(c->path = strdup(sc->path))) {
        free(c);
        memset(&sc->st, 0, sizeof(sc->st));
        goto out;
    }
    if (tls_cert_payload(text, len, &payload, &c->info, err, sizeof(err)) < 0) {
        refuse(e, s, sc, hash, err);
        free(c->path);
        free(c);
        goto out;
    }
    const char *cmds[2];
    if (asprintf(&set, "set ssl cert %s <<\n%s", sc->path, payload) < 0)
        set = NULL;
    if (asprintf(&commit, "commit ssl cert %s", sc->path) < 0)
        commit = NULL;
    cmds[0] = set;
    cmds[1] = commit;
    c->e = e;
    c->s = s;
    rc = set && commit ? haproxy_runtime_exec(s->rt, HAPROXY_SOCKET_STATS, cmds, 2, on_swapped, c)
                       : -ENOMEM;
    if (rc < 0) {
        log_warn("watcher: service %s: certificate %s: cannot queue it: %s; retried", s->name,
                 sc->path, strerror(-rc));
        memset(&sc->st, 0, sizeof(sc->st));
        free(c->path);
        free(c);
        goto out;
    }
    memcpy(sc->pending, hash, sizeof(sc->pending));
    sc->detected_ns = t0;
    sc->in_flight = true;
out:
    free(set);
    free(commit);
    free(payload);
    free(text);
}

/* Mark (adding if new) every certificate of s's installed structure. */
static void collect_certs(struct service_state *s)
{
    json_t *fe, *cert;
    size_t i, k;
    for (i = 0; i < s->n_certs; i++)
        s->certs[i].seen = false;
    json_array_foreach(json_object_get(s->structure, "frontends"), i, fe)
    {
        json_array_foreach(json_object_get(json_object_get(fe, "tls"), "certs"), k, cert)
        {
            const char *path = json_string_value(json_object_get(cert, "file"));
            struct service_cert *sc = path ? find_cert(s, path) : NULL, *v;
            if (!sc && path && (v = realloc(s->certs, (s->n_certs + 1) * sizeof(*v)))) {
                s->certs = v;
                sc = &v[s->n_certs];
                memset(sc, 0, sizeof(*sc));
                if (!(sc->path = strdup(path)))
                    sc = NULL;
                else
                    s->n_certs++;
            }
            if (sc)
                sc->seen = true;
        }
    }
    /* drop certificates the configuration no longer names */
    for (i = 0; i < s->n_certs;) {
        if (s->certs[i].seen) {
            i++;
            continue;
        }
        free(s->certs[i].path);
        s->certs[i] = s->certs[--s->n_certs];
    }
}

static void on_cert_poll(uv_timer_t *t)
{
    engine_check_certs(t->data);
}

static void on_cert_kick(uv_timer_t *t)
{
    struct haproxy_engine *e = t->data;
    e->cert_event = true;
    engine_check_certs(e);
    e->cert_event = false;
}

static void on_dir_event(uv_fs_event_t *h, const char *file, int events, int status)
{
    struct haproxy_engine *e = h->data;
    (void)file;
    (void)events;
    (void)status;
    if (!e->stopping)
        uv_timer_start(&e->cert_kick, on_cert_kick, CERT_EVENT_DELAY_MS, 0);
}

/* Watch the directory of path (once per directory, until the engine
 * stops). A directory that cannot be watched is left to the poll. */
static void watch_dir(struct haproxy_engine *e, const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t n = slash && slash > path ? (size_t)(slash - path) : 1;
    for (size_t i = 0; i < e->n_cert_dirs; i++)
        if (strlen(e->cert_dirs[i].path) == n && strncmp(e->cert_dirs[i].path, path, n) == 0)
            return;
    struct cert_dir *v = realloc(e->cert_dirs, (e->n_cert_dirs + 1) * sizeof(*v));
    if (!v)
        return;
    e->cert_dirs = v;
    struct cert_dir *d = &v[e->n_cert_dirs];
    d->path = strndup(path, n);
    d->h = calloc(1, sizeof(*d->h));
    if (!d->path || !d->h || uv_fs_event_init(e->loop, d->h) < 0) {
        free(d->path);
        free(d->h);
        return;
    }
    d->h->data = e;
    e->n_cert_dirs++;
    int rc = uv_fs_event_start(d->h, on_dir_event, d->path, 0);
    if (rc < 0)
        log_warn("watcher: cannot watch certificate directory %s: %s; polled every %lld ms",
                 d->path, uv_strerror(rc), (long long)e->o.cert_poll_ms);
}

/* Append the crt-list paths a structure names to keep. */
static void crt_lists_of(const json_t *structure, const char **keep, size_t cap, size_t *n)
{
    json_t *fe;
    size_t i;
    json_array_foreach(json_object_get(structure, "frontends"), i, fe)
    {
        const char *p = json_string_value(json_object_get(json_object_get(fe, "tls"), "crt_list"));
        if (p && *n < cap)
            keep[(*n)++] = p;
    }
}

/* Drop the crt-lists of s that neither the running config nor the one
 * coming (st) names: each change of a list is a new file. */
static void remove_stale_crt_lists(struct haproxy_engine *e, struct service_state *s, json_t *st)
{
    size_t nf = json_array_size(json_object_get(st, "frontends")) +
                json_array_size(json_object_get(s->structure, "frontends"));
    const char **keep = calloc(nf + 1, sizeof(*keep));
    size_t n = 0;
    if (!keep)
        return; /* left for the next change */
    crt_lists_of(st, keep, nf, &n);
    crt_lists_of(s->structure, keep, nf, &n);
    int removed = tls_files_remove_stale(e->o.config_dir, s->name, keep, n);
    if (removed > 0)
        log_debug("watcher: service %s: %d crt-list file(s) no config names removed", s->name,
                  removed);
    free(keep);
}

int engine_prepare_tls(struct haproxy_engine *e, struct service_state *s,
                       const struct snapshot_service *svc, json_t *st)
{
    char err[512];
    size_t n = 0;
    int rc;
    if ((rc = tls_files_check(svc->def, err, sizeof(err))) < 0 ||
        (rc = tls_files_write_crt_lists(e->o.config_dir, svc->def, &n, err, sizeof(err))) < 0) {
        s->reload_pending = false;
        engine_service_refused(e, s, json_incref(st), TLS_FILES_REFUSED, err);
        return rc;
    }
    if (n)
        log_info("watcher: service %s: %zu crt-list file(s) written for the coming reload", s->name,
                 n);
    if (s->structure) /* unknown at start: cleaned at the next change */
        remove_stale_crt_lists(e, s, st);
    return 0;
}

void engine_remove_crt_lists(struct haproxy_engine *e, const struct service_state *s)
{
    char err[512];
    if (tls_files_remove_service(e->o.config_dir, s->name, err, sizeof(err)) < 0)
        log_warn("watcher: service %s: %s; tried again at the watcher's next start", s->name, err);
}

bool engine_service_served(void *arg, const char *service)
{
    const struct service_state *s = engine_service_state(arg, service);
    return s && !s->retired;
}

void engine_sweep_crt_lists(struct haproxy_engine *e)
{
    int n = tls_files_sweep(e->o.config_dir, engine_service_served, e);
    if (n > 0)
        log_info("watcher: %d crt-list director%s of services without a config removed "
                 "(left by a watcher stopped while retiring them)",
                 n, n == 1 ? "y" : "ies");
}

/* A structure refused for its TLS files (missing, bad) is tried again
 * once they are good: the files belong to whoever deploys them, who may
 * well put them in place after the definition names them. */
static void retry_tls_files(struct haproxy_engine *e, struct service_state *s)
{
    const struct snapshot_service *svc = e->snap ? snapshot_service(e->snap, s->name) : NULL;
    size_t n = strlen(TLS_FILES_REFUSED);
    char err[512];
    if (!svc || !s->refused || !s->error || strncmp(s->error, TLS_FILES_REFUSED ":", n + 1) != 0 ||
        s->busy || s->checking || tls_files_check(svc->def, err, sizeof(err)) < 0)
        return;
    json_t *st = json_incref(s->refused);
    engine_service_accepted(e, s, "its certificate and CA files are good now");
    s->reload_pending = true;
    if (engine_prepare_tls(e, s, svc, st) == 0)
        quiesce_timer_kick(e->struct_q);
    json_decref(st);
}

void engine_check_certs(struct haproxy_engine *e)
{
    for (size_t i = 0; i < e->n_svcs && !e->stopping; i++)
        if (!e->svcs[i]->retired)
            retry_tls_files(e, e->svcs[i]);
    for (size_t i = 0; i < e->n_svcs && !e->stopping; i++) {
        struct service_state *s = e->svcs[i];
        /* a structural change in flight reloads from the files anyway */
        if (s->retired || !s->structure || s->busy)
            continue;
        collect_certs(s);
        for (size_t k = 0; k < s->n_certs; k++) {
            watch_dir(e, s->certs[k].path);
            check_cert(e, s, &s->certs[k]);
        }
    }
    /* last: whatever this look started is pending when the count moves */
    metrics_counter_inc(e->m_cert_checks);
}

void engine_certs_init(struct haproxy_engine *e)
{
    uv_timer_init(e->loop, &e->cert_poll);
    uv_timer_init(e->loop, &e->cert_kick);
    e->cert_poll.data = e->cert_kick.data = e;
    if (e->o.cert_poll_ms > 0)
        uv_timer_start(&e->cert_poll, on_cert_poll, (uint64_t)e->o.cert_poll_ms,
                       (uint64_t)e->o.cert_poll_ms);
}

static void free_handle(uv_handle_t *h)
{
    free(h);
}

void engine_certs_stop(struct haproxy_engine *e)
{
    uv_close((uv_handle_t *)&e->cert_poll, NULL);
    uv_close((uv_handle_t *)&e->cert_kick, NULL);
    for (size_t i = 0; i < e->n_cert_dirs; i++) {
        uv_close((uv_handle_t *)e->cert_dirs[i].h, free_handle);
        free(e->cert_dirs[i].path);
    }
    free(e->cert_dirs);
    e->cert_dirs = NULL;
    e->n_cert_dirs = 0;
}

void engine_free_certs(struct service_state *s)
{
    for (size_t i = 0; i < s->n_certs; i++)
        free(s->certs[i].path);
    free(s->certs);
    s->certs = NULL;
    s->n_certs = 0;
}
