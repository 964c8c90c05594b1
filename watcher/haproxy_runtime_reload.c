/* SPDX-License-Identifier: Apache-2.0 */
/*
 * haproxy_runtime, the reload state machine on the master CLI:
 *
 *   show proc (baseline) -> show servers state -> [filter for the placed
 *   backends] -> server-state file (atomic, through the file writer when
 *   set) -> reload -> show proc every
 *   HAPROXY_RUNTIME_PROC_POLL_MS until the reload counter moved and a new
 *   worker is listed (or the failed counter moved, or the timeout) ->
 *   apply the placed backends / repair the others -> done.
 *
 * From the baseline on the reload holds the queue: only its own steps run.
 * Owns `show proc` as a request and struct reload_op. See
 * haproxy_runtime_reload in haproxy_runtime.h for the contract.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomic_file.h"
#include "haproxy_runtime_internal.h"
#include "haproxy_value.h"
#include "log.h"
#include "loop_lag.h"

struct proc_op {
    haproxy_runtime_proc_cb cb;
    void *arg;
};

static void proc_done(struct haproxy_runtime *rt, int status, const char *const *answers, size_t n,
                      const char *err, void *arg)
{
    struct proc_op *op = arg;
    struct haproxy_proc_list l = {0};
    char msg[HAPROXY_RUNTIME_MSG_MAX];
    if (status < 0) {
        op->cb(rt, status, NULL, err, op->arg);
    } else {
        status = haproxy_parse_show_proc(answers[0], strlen(answers[0]), &l, msg, sizeof(msg));
        op->cb(rt, status, status == 0 ? &l : NULL, status < 0 ? msg : "", op->arg);
        haproxy_proc_list_free(&l);
    }
    free(op);
}

int rt_show_proc(struct haproxy_runtime *rt, bool front, enum rt_kind kind,
                 haproxy_runtime_proc_cb cb, void *arg)
{
    if (!rt->master_path)
        return -ENOTSUP;
    struct proc_op *op = calloc(1, sizeof(*op));
    if (!op)
        return -ENOMEM;
    op->cb = cb;
    op->arg = arg;
    const char *cmds[] = {"show proc"};
    int rc = rt_enqueue(rt, HAPROXY_SOCKET_MASTER, cmds, 1, front, kind, proc_done, op);
    if (rc < 0)
        free(op);
    return rc;
}

int haproxy_runtime_show_proc(struct haproxy_runtime *rt, haproxy_runtime_proc_cb cb, void *arg)
{
    return rt_show_proc(rt, false, RT_PLAIN, cb, arg);
}

/* ---- the server-state file ----------------------------------------------- */

/* Write the state file from text (copied), then done(arg, status): through
 * the writer (off the loop, in order with every earlier write of the file)
 * when one is set, else at once. The waiter must be cancelled
 * (state_write_cancel) if its owner goes away first. */
static int state_write(struct haproxy_runtime *rt, const char *text, file_writer_done_fn done,
                       void *arg)
{
    if (rt->writer)
        return file_writer_write_then(rt->writer, rt->state_path, text, strlen(text), 0600, done,
                                      arg);
    done(arg, atomic_file_write(rt->state_path, text, strlen(text), 0600));
    return 0;
}

static void state_write_cancel(struct haproxy_runtime *rt, void *arg)
{
    if (rt && rt->writer)
        file_writer_cancel(rt->writer, arg);
}

/* ---- server-state file between reloads ------------------------------------ */

struct save_op {
    struct haproxy_runtime *rt;
    haproxy_admin_fn admin;
    haproxy_runtime_saved_cb cb;
    void *arg;
    size_t changed;
    struct save_op *next; /* rt->saves: waiting for the writer */
};

static void save_unlink(struct save_op *op)
{
    for (struct save_op **p = &op->rt->saves; *p; p = &(*p)->next)
        if (*p == op) {
            *p = op->next;
            return;
        }
}

static void save_written(void *arg, int status)
{
    struct save_op *op = arg;
    char msg[HAPROXY_RUNTIME_MSG_MAX] = "";
    save_unlink(op);
    if (status < 0)
        snprintf(msg, sizeof(msg), "haproxy: cannot write server-state file %s: %s",
                 op->rt->state_path, strerror(-status));
    if (op->cb)
        op->cb(op->rt, status, op->changed, msg, op->arg);
    free(op);
}

void rt_saves_cancel(struct haproxy_runtime *rt)
{
    while (rt->saves) {
        struct save_op *op = rt->saves;
        rt->saves = op->next;
        state_write_cancel(rt, op);
        if (op->cb)
            op->cb(rt, -ECANCELED, 0, "haproxy: client shut down", op->arg);
        free(op);
    }
}

static void save_dumped(struct haproxy_runtime *rt, int status, const char *const *answers,
                        size_t n, const char *err, void *arg)
{
    struct save_op *op = arg;
    char msg[HAPROXY_RUNTIME_MSG_MAX] = "";
    struct slot_live *live = NULL;
    size_t nl = 0, changed = 0;
    char *text = NULL;
    (void)n;
    if (status < 0) {
        snprintf(msg, sizeof(msg), "%s", err);
        goto done;
    }
    /* only a real state dump goes where HAProxy reads it back */
    status = haproxy_parse_servers_state(answers[0], strlen(answers[0]), NULL, &live, &nl, msg,
                                         sizeof(msg));
    free(live);
    if (status < 0)
        goto done;
    status = haproxy_state_set_admin(answers[0], strlen(answers[0]), op->admin, op->arg, &text,
                                     &changed);
    if (status < 0) {
        snprintf(msg, sizeof(msg), "haproxy: cannot set admin states in the server state: %s",
                 strerror(-status));
        goto done;
    }
    /* on the waiting list first: a write without the writer is done at once */
    op->changed = changed;
    op->next = rt->saves;
    rt->saves = op;
    status = state_write(rt, text, save_written, op);
    free(text);
    text = NULL;
    if (status == 0)
        return;
    save_unlink(op);
    snprintf(msg, sizeof(msg), "haproxy: cannot queue the server-state file write: %s",
             strerror(-status));
done:
    free(text);
    if (op->cb)
        op->cb(rt, status, changed, msg, op->arg);
    free(op);
}

int haproxy_runtime_save_state(struct haproxy_runtime *rt, haproxy_admin_fn admin,
                               haproxy_runtime_saved_cb cb, void *arg)
{
    if (!rt->state_path)
        return -ENOTSUP;
    if (!admin)
        return -EINVAL;
    struct save_op *op = calloc(1, sizeof(*op));
    if (!op)
        return -ENOMEM;
    *op = (struct save_op){.rt = rt, .admin = admin, .cb = cb, .arg = arg};
    const char *cmds[] = {"show servers state"};
    int rc = rt_enqueue(rt, HAPROXY_SOCKET_STATS, cmds, 1, false, RT_PLAIN, save_dumped, op);
    if (rc < 0)
        free(op);
    return rc;
}

/* ---- reload ------------------------------------------------------------- */

struct rt_placed {
    char *backend;
    struct slot_assignment a;
};

struct reload_op {
    struct haproxy_runtime *rt;
    haproxy_runtime_reload_cb cb;
    void *arg;
    struct haproxy_reload_result res;
    int *old_pids;
    size_t n_old;
    uint64_t started, deadline;
    uint64_t stall_at_baseline; /* loop_lag_stalled_ms() when the deadline was set */
    bool stall_retried;         /* deadline moved once after our own stall */
    uv_timer_t poll;
    bool poll_init;
    bool writing;             /* the state file is with the writer */
    size_t reapply_next;      /* index into rt->backends */
    struct rt_placed *placed; /* haproxy_runtime_reload_placed */
    size_t n_placed, placed_next;
    char done_msg[HAPROXY_RUNTIME_MSG_MAX];
    char last_err[HAPROXY_RUNTIME_MSG_MAX];
};

static void reload_reapply_next(struct reload_op *op);

static void reload_op_free(struct reload_op *op)
{
    for (size_t i = 0; i < op->n_placed; i++) {
        free(op->placed[i].backend);
        slot_assignment_free(&op->placed[i].a);
    }
    free(op->placed);
    free(op->old_pids);
    free(op);
}

static void reload_free(uv_handle_t *h)
{
    reload_op_free(h->data);
}

static void reload_finish(struct reload_op *op, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void reload_finish(struct reload_op *op, int status, const char *fmt, ...)
{
    struct haproxy_runtime *rt = op->rt;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(op->res.message, sizeof(op->res.message), fmt, ap);
    va_end(ap);
    op->res.status = status;
    if (rt) {
        op->res.elapsed_ms = uv_now(rt->loop) - op->started;
        if (rt->reload_op == op) {
            rt->reload_active = false;
            rt->reload_op = NULL;
        }
        if (status == 0)
            rt->st.reloads_ok++;
        else
            rt->st.reloads_failed++;
    }
    if (status == 0)
        log_info("%s", op->res.message);
    else
        log_error("%s", op->res.message);
    if (op->cb)
        op->cb(rt, &op->res, op->arg);
    if (op->poll_init) {
        uv_timer_stop(&op->poll);
        uv_close((uv_handle_t *)&op->poll, reload_free);
    } else {
        reload_op_free(op);
    }
    if (rt)
        rt_kick(rt); /* requests held back during the reload */
}

static void reload_poll_proc(struct haproxy_runtime *rt, int status,
                             const struct haproxy_proc_list *procs, const char *err, void *arg);

static void reload_poll_tick(uv_timer_t *t)
{
    struct reload_op *op = t->data;
    int rc = rt_show_proc(op->rt, true, RT_RELOAD_STEP, reload_poll_proc, op);
    if (rc < 0)
        reload_finish(op, rc, "haproxy: reload: cannot queue show proc: %s", strerror(-rc));
}

/* The confirmation deadline passed: a reload whose time went to our own
 * stall (the deadline runs from the baseline: the state dump, the state
 * file and the `reload` command may have waited for us, and so may the
 * show proc polls) gets one more reload timeout. true when it does. */
static bool reload_stall_retry(struct reload_op *op)
{
    struct haproxy_runtime *rt = op->rt;

    if (op->stall_retried ||
        !rt_stall_excuses(rt, op->stall_at_baseline, rt->reload_timeout_ms, "reload confirmation"))
        return false;
    op->stall_retried = true;
    return true;
}

static void reload_poll_proc(struct haproxy_runtime *rt, int status,
                             const struct haproxy_proc_list *procs, const char *err, void *arg)
{
    struct reload_op *op = arg;
    if (status == -ECANCELED) {
        reload_finish(op, status, "%s; reload not verified", err);
        return;
    }
    if (status == 0) {
        op->res.reloads_after = procs->master.reloads;
        op->res.failed_after = procs->master.failed_reloads;
        if (procs->master.failed_reloads > op->res.failed_before) {
            reload_finish(op, -EIO,
                          "haproxy: reload failed: the master counts %d failed reloads (was "
                          "%d); the previous workers keep serving",
                          procs->master.failed_reloads, op->res.failed_before);
            return;
        }
        if (procs->master.reloads > op->res.reloads_before) {
            for (size_t i = 0; i < procs->n_workers; i++) {
                bool old = false;
                for (size_t j = 0; j < op->n_old; j++)
                    old |= procs->workers[i].pid == op->old_pids[j];
                if (!old) {
                    op->res.new_worker_pid = procs->workers[i].pid;
                    snprintf(op->done_msg, sizeof(op->done_msg),
                             "haproxy: reload %d done: new worker pid %d after %llu ms "
                             "(%zu worker(s) listed)",
                             procs->master.reloads, procs->workers[i].pid,
                             (unsigned long long)(uv_now(rt->loop) - op->started),
                             procs->n_workers);
                    reload_reapply_next(op);
                    return;
                }
            }
        }
    } else {
        /* the master re-executes during a reload: its CLI may be gone for
         * a moment */
        snprintf(op->last_err, sizeof(op->last_err), "%s", err);
    }
    if (uv_now(rt->loop) >= op->deadline && reload_stall_retry(op))
        op->deadline = uv_now(rt->loop) + rt->reload_timeout_ms;
    op->stall_at_baseline = loop_lag_stalled_ms(rt->lag);
    if (uv_now(rt->loop) >= op->deadline) {
        reload_finish(op, -ETIMEDOUT,
                      "haproxy: reload not confirmed within %llu ms: master reloads %d -> %d, "
                      "no new worker in show proc%s%s",
                      (unsigned long long)rt->reload_timeout_ms, op->res.reloads_before,
                      op->res.reloads_after, op->last_err[0] ? "; last error: " : "", op->last_err);
        return;
    }
    uv_timer_start(&op->poll, reload_poll_tick, HAPROXY_RUNTIME_PROC_POLL_MS, 0);
}

static void reload_sent(struct haproxy_runtime *rt, int status, const char *const *answers,
                        size_t n, const char *err, void *arg)
{
    struct reload_op *op = arg;
    /* Connect failures mean no reload was asked for; anything after that
     * (closed mid-answer, timeout) may still have reloaded: verify. */
    if (status == -ENOENT || status == -ECONNREFUSED || status == -ECANCELED) {
        reload_finish(op, status, "%s; nothing reloaded", err);
        return;
    }
    if (status == 0 && n > 0 && answers[0][0] && strncmp(answers[0], "\n", 1) != 0)
        log_warn("haproxy: master CLI answered reload with \"%.100s\"; verifying with show proc",
                 answers[0]);
    uv_timer_start(&op->poll, reload_poll_tick, HAPROXY_RUNTIME_PROC_POLL_MS, 0);
}

static void reload_send(struct reload_op *op)
{
    const char *cmds[] = {"reload"};
    int rc =
        rt_enqueue(op->rt, HAPROXY_SOCKET_MASTER, cmds, 1, true, RT_RELOAD_STEP, reload_sent, op);
    if (rc < 0)
        reload_finish(op, rc, "haproxy: reload: cannot queue the reload command");
}

static void reload_state_written(void *arg, int status)
{
    struct reload_op *op = arg;
    op->writing = false;
    if (status < 0) {
        reload_finish(op, status,
                      "haproxy: cannot write server-state file %s: %s; not reloading (runtime "
                      "state would be lost)",
                      op->rt->state_path, strerror(-status));
        return;
    }
    op->res.state_saved = true;
    reload_send(op);
}

static void reload_state_dumped(struct haproxy_runtime *rt, int status, const char *const *answers,
                                size_t n, const char *err, void *arg)
{
    struct reload_op *op = arg;
    char msg[HAPROXY_RUNTIME_MSG_MAX];
    struct slot_live *live = NULL;
    size_t nl = 0;

    if (status < 0) {
        reload_finish(op, status, "%s; not reloading (runtime state would be lost)", err);
        return;
    }
    /* Make sure it is a state dump before HAProxy reads it back. */
    status = haproxy_parse_servers_state(answers[0], strlen(answers[0]), NULL, &live, &nl, msg,
                                         sizeof(msg));
    free(live);
    if (status < 0) {
        reload_finish(op, status, "%s; not reloading (runtime state would be lost)", msg);
        return;
    }
    char *filtered = NULL;
    size_t dropped = 0;
    if (op->n_placed) {
        struct haproxy_placement *pl = calloc(op->n_placed, sizeof(*pl));
        status = pl ? 0 : -ENOMEM;
        for (size_t i = 0; pl && i < op->n_placed; i++)
            pl[i] = (struct haproxy_placement){op->placed[i].backend, &op->placed[i].a};
        if (pl)
            status = haproxy_state_filter(answers[0], strlen(answers[0]), pl, op->n_placed,
                                          &filtered, &dropped);
        free(pl);
        if (status < 0) {
            reload_finish(op, status,
                          "haproxy: cannot filter the server state for the new placement: %s; "
                          "not reloading",
                          strerror(-status));
            return;
        }
        if (dropped)
            log_info("haproxy: %zu slot(s) taken from the new config, not from the state file",
                     dropped);
    }
    const char *text = filtered ? filtered : answers[0];
    /* through the writer, after any earlier write of the file: an older
     * state landing after this one would be what the new worker loads */
    op->writing = true;
    status = state_write(rt, text, reload_state_written, op);
    free(filtered);
    if (status < 0) {
        op->writing = false;
        reload_finish(op, status, "haproxy: cannot queue the server-state file write: %s",
                      strerror(-status));
    }
}

static void reload_baseline(struct haproxy_runtime *rt, int status,
                            const struct haproxy_proc_list *procs, const char *err, void *arg)
{
    struct reload_op *op = arg;
    if (status < 0) {
        reload_finish(op, status, "%s; not reloading", err);
        return;
    }
    op->res.reloads_before = op->res.reloads_after = procs->master.reloads;
    op->res.failed_before = op->res.failed_after = procs->master.failed_reloads;
    op->old_pids = calloc(procs->n_workers ? procs->n_workers : 1, sizeof(int));
    if (!op->old_pids) {
        reload_finish(op, -ENOMEM, "haproxy: reload: out of memory");
        return;
    }
    for (size_t i = 0; i < procs->n_workers; i++)
        op->old_pids[i] = procs->workers[i].pid;
    op->n_old = procs->n_workers;
    op->deadline = uv_now(rt->loop) + rt->reload_timeout_ms;
    /* From here on only this reload's exchanges run (a second reload asked
     * meanwhile waits with its baseline in the queue). */
    rt->reload_active = true;
    rt->reload_op = op;
    haproxy_runtime_drop_live(rt); /* the new worker's servers are read again */
    if (rt->state_path) {
        const char *cmds[] = {"show servers state"};
        int rc = rt_enqueue(rt, HAPROXY_SOCKET_STATS, cmds, 1, true, RT_RELOAD_STEP,
                            reload_state_dumped, op);
        if (rc < 0)
            reload_finish(op, rc, "haproxy: reload: cannot queue the state dump");
        return;
    }
    reload_send(op);
}

int haproxy_runtime_reload(struct haproxy_runtime *rt, haproxy_runtime_reload_cb cb, void *arg)
{
    return haproxy_runtime_reload_placed(rt, NULL, 0, cb, arg);
}

int haproxy_runtime_reload_placed(struct haproxy_runtime *rt, const struct haproxy_placement *p,
                                  size_t n, haproxy_runtime_reload_cb cb, void *arg)
{
    if (!rt->master_path)
        return -ENOTSUP;
    struct reload_op *op = calloc(1, sizeof(*op));
    if (!op)
        return -ENOMEM;
    if (n) {
        op->placed = calloc(n, sizeof(*op->placed));
        if (!op->placed) {
            free(op);
            return -ENOMEM;
        }
    }
    for (size_t i = 0; i < n; i++) {
        const char *why;
        struct rt_placed *d = &op->placed[op->n_placed];
        if (!p[i].backend || !p[i].a ||
            haproxy_value_check(HAPROXY_VALUE_NAME, p[i].backend, strlen(p[i].backend), &why) < 0) {
            reload_op_free(op);
            return -EINVAL;
        }
        slot_assignment_init(&d->a);
        d->backend = strdup(p[i].backend);
        op->n_placed++;
        if (!d->backend || slot_assignment_copy(&d->a, p[i].a) < 0) {
            reload_op_free(op);
            return -ENOMEM;
        }
    }
    op->rt = rt;
    op->cb = cb;
    op->arg = arg;
    op->started = uv_now(rt->loop);
    int rc = uv_timer_init(rt->loop, &op->poll);
    if (rc < 0) {
        reload_op_free(op);
        return rc;
    }
    op->poll.data = op;
    op->poll_init = true;
    /* The baseline waits its turn behind queued work; from then on the
     * reload holds the queue. */
    /* alone: a reload must not begin beside an apply's exchange (its
     * commands would wait for the reload, diffed against the old worker) */
    rc = rt_show_proc(rt, false, RT_SOLO, reload_baseline, op);
    if (rc < 0) {
        uv_close((uv_handle_t *)&op->poll, reload_free);
        return rc;
    }
    return 0;
}

/* HAProxy 2.6 does not restore the address of a server written with an IP
 * literal from the server-state file (port, weights and admin/agent state
 * it does restore; haproxy/haproxy#3265), whatever init-addr says. So once
 * the new worker runs, still holding the queue, every backend with an
 * applied assignment gets the address of each slot that came back serving
 * at 0.0.0.0 (keep_restorable); nothing else is touched. */
static void reload_reapplied(struct haproxy_runtime *rt, const struct haproxy_apply_result *res,
                             void *arg)
{
    struct reload_op *op = arg;
    op->res.reapplied_commands += res->commands;
    if (res->status < 0) {
        op->res.reapply_failed++;
        log_warn("haproxy: re-applying slots after the reload failed: %s; the next apply "
                 "compares with the live state",
                 res->message);
    }
    if (res->status == -ECANCELED) {
        reload_finish(op, -ECANCELED, "%s; re-apply cancelled", op->done_msg);
        return;
    }
    reload_reapply_next(op);
}

static bool reload_placed_has(const struct reload_op *op, const char *backend)
{
    for (size_t i = 0; i < op->n_placed; i++)
        if (strcmp(op->placed[i].backend, backend) == 0)
            return true;
    return false;
}

static void reload_reapply_next(struct reload_op *op)
{
    struct haproxy_runtime *rt = op->rt;
    while (op->placed_next < op->n_placed) {
        struct rt_placed *p = &op->placed[op->placed_next++];
        int rc = rt_apply_start(rt, p->backend, &p->a, true, false, reload_reapplied, op);
        if (rc == 0)
            return;
        op->res.reapply_failed++;
        haproxy_runtime_forget(rt, p->backend);
    }
    while (op->reapply_next < rt->n_backends) {
        struct rt_backend *b = &rt->backends[op->reapply_next++];
        if (!b->applied.slots || reload_placed_has(op, b->name))
            continue;
        int rc = rt_apply_start(rt, b->name, &b->applied, true, true, reload_reapplied, op);
        if (rc == 0)
            return;
        op->res.reapply_failed++;
        haproxy_runtime_forget(rt, b->name);
    }
    reload_finish(op, 0, "%s; %zu command(s) re-applied%s", op->done_msg,
                  op->res.reapplied_commands,
                  op->res.reapply_failed ? ", some backends failed (see above)" : "");
}

void rt_reload_cancel(struct reload_op *op)
{
    if (op->writing)
        state_write_cancel(op->rt, op);
    reload_finish(op, -ECANCELED, "haproxy: reload: client shut down before it was verified");
}
