/* SPDX-License-Identifier: Apache-2.0 */
/* frontdoor_agent: decisions -> BIRD, logs, metrics, state file (see
 * frontdoor_agent.h). */
#include "frontdoor_agent.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "atomic_file.h"
#include "errmsg.h"
#include "frontdoor_bird.h"
#include "json_util.h"
#include "log.h"
#include "metrics.h"

struct job {
    uv_work_t req;
    struct frontdoor_agent *a;     /* NULL once the agent is gone */
    struct frontdoor_agent_opts o; /* strings: the job's own copies below */
    char *sock, *include, *bin;
    char *text;
    int rc;
    bool changed;
    char err[1600];
};

struct frontdoor_agent {
    uv_loop_t *loop;
    struct frontdoor_agent_opts o;
    char *bird_socket, *bird_include, *bird_bin, *state_file;
    struct frontdoor *fd;
    char *installed; /* text BIRD has (installed and configured) */
    char *wanted;    /* text of the last round */
    struct job *job; /* in flight */
    bool failing;
    char last_error[1600];
    struct metrics_counter *m_announces, *m_withdrawals, *m_bird_errors, *m_configures;
};

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static int64_t wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static void write_state(struct frontdoor_agent *a, bool stopped);

static void collect(struct metrics_emitter *em, void *arg)
{
    struct frontdoor_agent *a = arg;
    const struct frontdoor_vip_status *st;
    size_t n = frontdoor_list(a->fd, &st);

    for (size_t i = 0; i < n; i++) {
        metrics_emit(em, "drover_watcher_frontdoor_vip_announced",
                     "1 while this host announces the VIP to its routers (also during a graceful "
                     "shutdown), 0 while withdrawn.",
                     METRICS_GAUGE, st[i].route != FRONTDOOR_WITHDRAWN ? 1.0 : 0.0, "vip",
                     st[i].address, NULL);
        metrics_emit(em, "drover_watcher_frontdoor_vip_graceful_shutdown",
                     "1 while the VIP is announced with the graceful-shutdown community.",
                     METRICS_GAUGE, st[i].route == FRONTDOOR_SHUTDOWN ? 1.0 : 0.0, "vip",
                     st[i].address, NULL);
        metrics_emit(em, "drover_watcher_frontdoor_vip_suppressed",
                     "1 while a flapping VIP is held withdrawn (damping).", METRICS_GAUGE,
                     st[i].suppressed ? 1.0 : 0.0, "vip", st[i].address, NULL);
    }
    metrics_emit(em, "drover_watcher_frontdoor_drained", "1 while this host is drained.",
                 METRICS_GAUGE, frontdoor_drained(a->fd) ? 1.0 : 0.0, NULL);
    metrics_emit(em, "drover_watcher_frontdoor_bird_in_sync",
                 "1 when BIRD has the routes decided last (include installed and configured).",
                 METRICS_GAUGE, frontdoor_agent_in_sync(a) ? 1.0 : 0.0, NULL);
}

int frontdoor_agent_new(uv_loop_t *loop, const struct frontdoor_agent_opts *o,
                        struct metrics_registry *metrics, struct frontdoor_agent **out)
{
    struct frontdoor_agent *a = calloc(1, sizeof(*a));
    int rc;

    if (!a)
        return -ENOMEM;
    a->loop = loop;
    a->o = *o;
    a->bird_socket = dup_or_null(o->bird_socket);
    a->bird_include = dup_or_null(o->bird_include);
    a->bird_bin = strdup(o->bird_bin && *o->bird_bin ? o->bird_bin : "bird");
    a->state_file = o->state_file && *o->state_file ? strdup(o->state_file) : NULL;
    a->o.bird_socket = a->bird_socket;
    a->o.bird_include = a->bird_include;
    a->o.bird_bin = a->bird_bin;
    a->o.state_file = a->state_file;
    if (!a->o.bird_timeout_ms)
        a->o.bird_timeout_ms = 5000;
    if (!a->bird_socket || !a->bird_include || !a->bird_bin ||
        (rc = frontdoor_new(&o->params, &a->fd)) < 0) {
        frontdoor_agent_free(a);
        return -ENOMEM;
    }
    if (metrics) {
        a->m_announces =
            metrics_counter(metrics, "drover_watcher_frontdoor_announces_total",
                            "VIP announcements decided (withdrawn -> announced).", NULL);
        a->m_withdrawals =
            metrics_counter(metrics, "drover_watcher_frontdoor_withdrawals_total",
                            "VIP withdrawals decided (announced -> withdrawn).", NULL);
        a->m_bird_errors = metrics_counter(
            metrics, "drover_watcher_frontdoor_bird_errors_total",
            "Failed attempts to give BIRD the routes (check, write, socket, BIRD's answer).", NULL);
        a->m_configures = metrics_counter(metrics, "drover_watcher_frontdoor_bird_configures_total",
                                          "Include files installed and BIRD reconfigured.", NULL);
        metrics_add_collector(metrics, collect, a);
    }
    *out = a;
    return 0;
}

void frontdoor_agent_free(struct frontdoor_agent *a)
{
    if (!a)
        return;
    if (a->state_file)
        write_state(a, true);
    if (a->job)
        a->job->a = NULL; /* after_job frees it */
    frontdoor_free(a->fd);
    free(a->installed);
    free(a->wanted);
    free(a->bird_socket);
    free(a->bird_include);
    free(a->bird_bin);
    free(a->state_file);
    free(a);
}

/* Install text and reconfigure BIRD: blocking, for the thread pool and the
 * guard. */
static int give_bird(const struct frontdoor_agent_opts *o, const char *text, bool *changed,
                     char *err, size_t errlen)
{
    struct frontdoor_bird_reply r;
    int rc = frontdoor_bird_install(o->bird_bin ? o->bird_bin : "bird", o->bird_include, text,
                                    changed, err, errlen);
    if (rc < 0)
        return rc;
    return frontdoor_bird_command(o->bird_socket, "configure", o->bird_timeout_ms, &r, err, errlen);
}

static void job_free(struct job *j)
{
    free(j->text);
    free(j->sock);
    free(j->include);
    free(j->bin);
    free(j);
}

static void work_cb(uv_work_t *req)
{
    struct job *j = req->data;
    j->rc = give_bird(&j->o, j->text, &j->changed, j->err, sizeof(j->err));
}

static void after_job(uv_work_t *req, int status)
{
    struct job *j = req->data;
    struct frontdoor_agent *a = j->a;

    if (a) {
        a->job = NULL;
        if (status < 0 || j->rc < 0) {
            metrics_counter_inc(a->m_bird_errors);
            if (strcmp(a->last_error, j->err) != 0 || !a->failing)
                log_error("frontdoor: %s; routes unchanged in BIRD, retrying every round",
                          status < 0 ? "job cancelled" : j->err);
            snprintf(a->last_error, sizeof(a->last_error), "%s", j->err);
            a->failing = true;
        } else {
            metrics_counter_inc(a->m_configures);
            if (a->failing)
                log_info("frontdoor: BIRD has the routes again (%s)", a->o.bird_socket);
            log_debug("frontdoor: BIRD reconfigured with %s", a->o.bird_include);
            a->failing = false;
            a->last_error[0] = '\0';
            free(a->installed);
            a->installed = j->text;
            j->text = NULL;
        }
    }
    job_free(j);
}

static void start_job(struct frontdoor_agent *a)
{
    if (a->job || !a->wanted)
        return;
    struct job *j = calloc(1, sizeof(*j));
    if (!j || !(j->text = strdup(a->wanted)) || !(j->sock = strdup(a->bird_socket)) ||
        !(j->include = strdup(a->bird_include)) || !(j->bin = strdup(a->bird_bin))) {
        if (j)
            job_free(j);
        log_error("frontdoor: out of memory starting a BIRD update; retrying next round");
        return;
    }
    j->a = a;
    j->o = a->o;
    j->o.bird_socket = j->sock;
    j->o.bird_include = j->include;
    j->o.bird_bin = j->bin;
    j->o.state_file = NULL;
    j->req.data = j;
    if (uv_queue_work(a->loop, &j->req, work_cb, after_job) < 0) {
        job_free(j);
        return;
    }
    a->job = j;
}

/* stopped: the lease ends now (refreshed 0), so the guard takes over at
 * once instead of after --frontdoor-lease. */
static void write_state(struct frontdoor_agent *a, bool stopped)
{
    const struct frontdoor_vip_status *st;
    size_t n = frontdoor_list(a->fd, &st);
    json_t *root = json_object(), *vips = json_array();
    char *text = NULL;
    int64_t now = wall_ms();

    if (!root || !vips)
        goto out;
    for (size_t i = 0; i < n; i++) {
        json_t *v =
            json_pack("{s:s, s:s, s:s, s:b, s:I, s:I}", "address", st[i].address, "route",
                      frontdoor_route_name(st[i].route), "reason", st[i].reason, "suppressed",
                      st[i].suppressed, "announces", (json_int_t)st[i].announces, "withdrawals",
                      (json_int_t)st[i].withdrawals);
        if (v)
            json_array_append_new(vips, v);
    }
    json_object_set_new(root, "refreshed_unix_ms", json_integer(stopped ? 0 : now));
    json_object_set_new(root, "stopped", json_boolean(stopped));
    json_object_set_new(root, "drained", json_boolean(frontdoor_drained(a->fd)));
    json_object_set_new(root, "bird_in_sync", json_boolean(frontdoor_agent_in_sync(a)));
    json_object_set_new(root, "bird_error", json_string(a->last_error));
    json_object_set(root, "vips", vips);
    text = json_dumps(root, JSON_SORT_KEYS | JSON_COMPACT);
    if (text) {
        int rc = atomic_file_write(a->state_file, text, strlen(text), 0644);
        if (rc < 0)
            log_warn("frontdoor: cannot write state file %s: %s; the guard will act as if we "
                     "were dead once the lease runs out",
                     a->state_file, strerror(-rc));
    }
out:
    free(text);
    json_decref(vips);
    json_decref(root);
}

static int render_current(struct frontdoor_agent *a, char **out)
{
    const struct frontdoor_vip_status *st;
    size_t n = frontdoor_list(a->fd, &st), k = 0;
    struct frontdoor_bird_route *r = calloc(n + 1, sizeof(*r));
    int rc;

    if (!r)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (st[i].route == FRONTDOOR_WITHDRAWN)
            continue;
        r[k].address = st[i].address;
        r[k].shutdown = st[i].route == FRONTDOOR_SHUTDOWN;
        k++;
    }
    rc = frontdoor_bird_render(r, k, out);
    free(r);
    return rc;
}

void frontdoor_agent_round(struct frontdoor_agent *a, const struct frontdoor_verdict *v, size_t n,
                           int64_t now_ms)
{
    const struct frontdoor_change *c;
    size_t nc;
    char *text = NULL;
    int rc = frontdoor_update(a->fd, v, n, now_ms, &c, &nc);

    if (rc < 0) {
        log_error("frontdoor: out of memory deciding announcements; keeping the routes");
        return;
    }
    for (size_t i = 0; i < nc; i++) {
        log_info("frontdoor: VIP %s %s (was %s): %s", c[i].address, frontdoor_route_name(c[i].to),
                 frontdoor_route_name(c[i].from), c[i].reason);
        if (c[i].to == FRONTDOOR_WITHDRAWN)
            metrics_counter_inc(a->m_withdrawals);
        else if (c[i].from == FRONTDOOR_WITHDRAWN)
            metrics_counter_inc(a->m_announces);
    }
    if ((rc = render_current(a, &text)) < 0) {
        log_error("frontdoor: cannot render the BIRD include: %s; keeping the routes",
                  strerror(-rc));
    } else {
        free(a->wanted);
        a->wanted = text;
        if (!frontdoor_agent_in_sync(a))
            start_job(a);
    }
    if (a->state_file)
        write_state(a, false);
}

void frontdoor_agent_set_drain(struct frontdoor_agent *a, bool drained, int64_t now_ms)
{
    if (drained != frontdoor_drained(a->fd))
        log_info("frontdoor: host %s", drained ? "drained: graceful shutdown, then withdraw"
                                               : "undrained: announcing again");
    frontdoor_set_drain(a->fd, drained, now_ms);
}

size_t frontdoor_agent_announced(struct frontdoor_agent *a)
{
    const struct frontdoor_vip_status *st;
    size_t n = frontdoor_list(a->fd, &st), k = 0;
    for (size_t i = 0; i < n; i++)
        k += st[i].route != FRONTDOOR_WITHDRAWN;
    return k;
}

bool frontdoor_agent_in_sync(const struct frontdoor_agent *a)
{
    return a->wanted && a->installed && !a->failing && strcmp(a->wanted, a->installed) == 0;
}

bool frontdoor_agent_drained(const struct frontdoor_agent *a)
{
    return frontdoor_drained(a->fd);
}

size_t frontdoor_agent_list(struct frontdoor_agent *a, const struct frontdoor_vip_status **out)
{
    return frontdoor_list(a->fd, out);
}

int frontdoor_agent_state_time(const char *state_file, int64_t *refreshed_unix_ms)
{
    json_t *root = NULL;
    char err[256];
    int64_t t = 0;
    int rc = json_load_file_strict(state_file, &root, err, sizeof(err));

    if (rc < 0)
        return rc;
    rc = json_get_int(root, state_file, "refreshed_unix_ms", &t, 0, INT64_MAX, true, err,
                      sizeof(err));
    json_decref(root);
    if (rc < 0)
        return rc;
    *refreshed_unix_ms = t;
    return 0;
}

int frontdoor_agent_guard(const struct frontdoor_agent_opts *o, int64_t lease_ms,
                          bool still_serving, bool *acted, char *err, size_t errlen)
{
    int64_t t = 0;
    char *text = NULL;
    bool changed;
    int rc;

    *acted = false;
    if (o->state_file && frontdoor_agent_state_time(o->state_file, &t) == 0 &&
        wall_ms() - t <= lease_ms)
        return 0; /* the daemon is alive and in charge */
    if (still_serving)
        return 0; /* dead daemon, but the host forwards with the table in force */
    if ((rc = frontdoor_bird_render(NULL, 0, &text)) < 0) {
        errmsg_set(err, errlen, "cannot render an empty include: %s", strerror(-rc));
        return rc;
    }
    struct frontdoor_agent_opts oo = *o;
    if (!oo.bird_timeout_ms)
        oo.bird_timeout_ms = 5000;
    rc = give_bird(&oo, text, &changed, err, errlen);
    free(text);
    if (rc == 0)
        *acted = true;
    return rc;
}
