/* SPDX-License-Identifier: Apache-2.0 */
/*
 * haproxy_runtime, the apply chain: `show servers state <backend>` ->
 * slots_diff against the live state and what this client last applied ->
 * the commands in one exchange pushed to the front of the queue (nothing
 * runs in between), ending with the backend's dump -> every answer
 * checked, the dump kept: the next apply diffs against it while it is
 * fresh and skips its own dump exchange. Owns the per-backend record of
 * what was applied (haproxy_runtime_applied / _forget) and the
 * restore-only variant a reload runs for the slots its state file could
 * not restore. See haproxy_runtime.h for the contract.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "haproxy_runtime_internal.h"
#include "haproxy_value.h"

/* Check backend and write "show servers state <backend>" to cmd and the
 * name to name (both HAPROXY_VALUE_NAME_MAX-sized buffers or larger). */
static int state_command(const char *backend, char *cmd, size_t len, char *name, size_t name_len)
{
    const char *why;
    if (!backend || haproxy_value_check(HAPROXY_VALUE_NAME, backend, strlen(backend), &why) < 0)
        return -EINVAL;
    int n = snprintf(cmd, len, "show servers state %s", backend);
    if (n < 0 || (size_t)n >= len)
        return -EINVAL;
    n = snprintf(name, name_len, "%s", backend);
    return (n < 0 || (size_t)n >= name_len) ? -EINVAL : 0;
}

/* For the public call the backend filter is the command's own argument,
 * so HAProxy does the filtering; "Can't find backend." becomes -ENOENT. */
struct state_pub {
    haproxy_runtime_state_cb cb;
    void *arg;
    char backend[HAPROXY_VALUE_NAME_MAX + 1];
    char cmd[HAPROXY_VALUE_NAME_MAX + 32];
};

static void state_pub_done(struct haproxy_runtime *rt, int status, const char *const *answers,
                           size_t n, const char *err, void *arg)
{
    struct state_pub *op = arg;
    struct slot_live *live = NULL;
    size_t nl = 0;
    char msg[HAPROXY_RUNTIME_MSG_MAX];
    if (status < 0) {
        op->cb(rt, status, NULL, 0, err, op->arg);
    } else {
        status = haproxy_parse_servers_state_answer(op->cmd, answers[0], op->backend, &live, &nl,
                                                    msg, sizeof(msg));
        op->cb(rt, status, live, nl, status < 0 ? msg : "", op->arg);
    }
    free(live);
    free(op);
}

int haproxy_runtime_show_servers_state(struct haproxy_runtime *rt, const char *backend,
                                       haproxy_runtime_state_cb cb, void *arg)
{
    struct state_pub *op = calloc(1, sizeof(*op));
    if (!op)
        return -ENOMEM;
    if (state_command(backend, op->cmd, sizeof(op->cmd), op->backend, sizeof(op->backend)) < 0) {
        free(op);
        return -EINVAL;
    }
    op->cb = cb;
    op->arg = arg;
    const char *cmds[] = {op->cmd};
    int rc = rt_enqueue(rt, HAPROXY_SOCKET_STATS, cmds, 1, false, RT_PLAIN, state_pub_done, op);
    if (rc < 0)
        free(op);
    return rc;
}

/* ---- apply -------------------------------------------------------------- */

struct rt_backend *rt_backend_get(struct haproxy_runtime *rt, const char *name, bool create)
{
    for (size_t i = 0; i < rt->n_backends; i++)
        if (strcmp(rt->backends[i].name, name) == 0)
            return &rt->backends[i];
    if (!create)
        return NULL;
    struct rt_backend *v = realloc(rt->backends, (rt->n_backends + 1) * sizeof(*v));
    if (!v)
        return NULL;
    rt->backends = v;
    struct rt_backend *b = &v[rt->n_backends];
    *b = (struct rt_backend){.name = strdup(name)};
    if (!b->name)
        return NULL;
    slot_assignment_init(&b->applied);
    rt->n_backends++;
    return b;
}

static void live_drop(struct rt_backend *b)
{
    free(b->live);
    b->live = NULL;
    b->n_live = 0;
}

/* live (taken over) is backend's state as of now. */
static void live_keep(struct haproxy_runtime *rt, const char *backend, struct slot_live *live,
                      size_t n)
{
    struct rt_backend *b = rt_backend_get(rt, backend, true);
    if (!b) {
        free(live);
        return;
    }
    live_drop(b);
    b->live = live;
    b->n_live = n;
    b->live_ms = uv_now(rt->loop);
}

void haproxy_runtime_drop_live(struct haproxy_runtime *rt)
{
    for (size_t i = 0; i < rt->n_backends; i++)
        live_drop(&rt->backends[i]);
}

const struct slot_assignment *haproxy_runtime_applied(const struct haproxy_runtime *rt,
                                                      const char *backend)
{
    for (size_t i = 0; i < rt->n_backends; i++)
        if (strcmp(rt->backends[i].name, backend) == 0)
            return rt->backends[i].applied.nslots || rt->backends[i].applied.slots
                       ? &rt->backends[i].applied
                       : NULL;
    return NULL;
}

void haproxy_runtime_forget(struct haproxy_runtime *rt, const char *backend)
{
    struct rt_backend *b = rt_backend_get(rt, backend, false);
    if (b) {
        slot_assignment_free(&b->applied);
        live_drop(b);
    }
}

struct apply_op {
    haproxy_runtime_apply_cb cb;
    void *arg;
    char backend[HAPROXY_VALUE_NAME_MAX + 1];
    char cmd[HAPROXY_VALUE_NAME_MAX + 32];
    struct slot_assignment a;
    struct slot_cmds cmds;
    struct haproxy_apply_result res;
    bool reload_step;  /* part of a reload: runs while the reload holds the queue */
    bool restore_only; /* after a reload: only slots the state file broke */
    bool trailing;     /* the commands exchange ends with the backend's dump */
    bool agents_later; /* haproxy_runtime_apply_agents_later */
};

/* For haproxy_runtime_apply_agents_later: drop the `enable agent` commands
 * (slots that change hands) and count them in res.agents_deferred. The
 * slot keeps its agent off, which slots_diff reads as "a slot changing
 * hands": the next apply enables it. */
static void leave_agents_off(struct apply_op *op)
{
    static const char verb[] = "enable agent ";
    size_t w = 0;
    if (!op->agents_later)
        return;
    for (size_t i = 0; i < op->cmds.n; i++) {
        if (strncmp(op->cmds.v[i].text, verb, sizeof(verb) - 1) == 0) {
            op->res.agents_deferred++;
            continue;
        }
        op->cmds.v[w++] = op->cmds.v[i];
    }
    op->cmds.n = w;
}

static void apply_finish(struct haproxy_runtime *rt, struct apply_op *op)
{
    struct rt_backend *counted = rt ? rt_backend_get(rt, op->backend, false) : NULL;
    if (counted && counted->applying)
        counted->applying--;
    if (rt) {
        if (op->res.status == 0 && op->restore_only) {
            /* applied stays: the slots left alone follow the new config */
        } else if (op->res.status == 0) {
            rt->st.applies_ok++;
            struct rt_backend *b = rt_backend_get(rt, op->backend, true);
            if (b) {
                slot_assignment_free(&b->applied);
                b->applied = op->a; /* ownership moves */
                slot_assignment_init(&op->a);
            }
        } else {
            if (!op->restore_only)
                rt->st.applies_failed++;
            haproxy_runtime_forget(rt, op->backend);
        }
    }
    if (op->cb)
        op->cb(rt, &op->res, op->arg);
    slot_assignment_free(&op->a);
    slot_cmds_free(&op->cmds);
    free(op);
}

/* The dump that ended a successful commands exchange: the backend as the
 * commands left it, for the next apply. */
static void keep_trailing(struct haproxy_runtime *rt, struct apply_op *op, const char *answer)
{
    struct slot_live *live = NULL;
    size_t nl = 0;
    char msg[HAPROXY_RUNTIME_MSG_MAX];
    if (haproxy_parse_servers_state_answer(op->cmd, answer, op->backend, &live, &nl, msg,
                                           sizeof(msg)) == 0)
        live_keep(rt, op->backend, live, nl);
    else
        free(live);
}

static void apply_cmds_done(struct haproxy_runtime *rt, int status, const char *const *answers,
                            size_t n, const char *err, void *arg)
{
    struct apply_op *op = arg;
    op->res.commands = op->cmds.n;
    if (status < 0) {
        op->res.status = status;
        snprintf(op->res.message, sizeof(op->res.message), "%s", err);
        apply_finish(rt, op);
        return;
    }
    if (op->trailing && n > op->cmds.n) {
        n = op->cmds.n; /* the dump is no command to check */
        if (rt)
            keep_trailing(rt, op, answers[n]);
    }
    for (size_t i = 0; i < n; i++) {
        char msg[HAPROXY_RUNTIME_MSG_MAX];
        if (haproxy_runtime_check_answer(op->cmds.v[i].text, answers[i], msg, sizeof(msg)) == 0)
            continue;
        if (rt)
            rt->st.command_errors++;
        if (op->res.failed_commands++ == 0) {
            op->res.status = -EINVAL;
            snprintf(op->res.message, sizeof(op->res.message), "%s", msg);
        }
    }
    if (op->res.failed_commands > 1) {
        size_t l = strlen(op->res.message);
        snprintf(op->res.message + l, sizeof(op->res.message) - l, " (and %zu more failed)",
                 op->res.failed_commands - 1);
    }
    apply_finish(rt, op);
}

/*
 * After a reload, keep only the commands for slots that HAProxy restored
 * serving (not in maintenance) at an unspecified address while the applied
 * assignment has a server there: the state file carried the slot's port and
 * admin state but not its address (haproxy/haproxy#3265), so it would send
 * traffic to 0.0.0.0 in port-mapping mode. Every other slot shows what the
 * new config says; the caller's next apply decides about those (the config
 * may carry a newer placement than the one applied before the reload).
 */
static void keep_restorable(struct apply_op *op, const struct slot_live *live, size_t nl)
{
    size_t w = 0;
    for (size_t i = 0; i < op->cmds.n; i++) {
        size_t s = op->cmds.v[i].slot;
        char name[32];
        bool keep = false;
        slots_name(s, name, sizeof(name));
        for (size_t k = 0; k < nl && !keep; k++) {
            const struct slot_live *l = &live[k];
            keep = strcmp(l->name, name) == 0 && s < op->a.nslots && op->a.slots[s].used &&
                   !(l->admin & SLOTS_ADMF_MAINT) &&
                   (strcmp(l->address, "0.0.0.0") == 0 || strcmp(l->address, "::") == 0);
        }
        if (keep)
            op->cmds.v[w++] = op->cmds.v[i];
    }
    op->cmds.n = w;
}

static int queue_commands(struct haproxy_runtime *rt, struct apply_op *op, bool front);

static void apply_state_done(struct haproxy_runtime *rt, int status, const char *const *answers,
                             size_t n, const char *err, void *arg)
{
    struct apply_op *op = arg;
    struct slot_live *live = NULL;
    size_t nl = 0;

    if (status < 0) {
        op->res.status = status;
        snprintf(op->res.message, sizeof(op->res.message), "%s", err);
        apply_finish(rt, op);
        return;
    }
    status = haproxy_parse_servers_state_answer(op->cmd, answers[0], op->backend, &live, &nl,
                                                op->res.message, sizeof(op->res.message));
    if (status == 0) {
        struct rt_backend *b = rt_backend_get(rt, op->backend, false);
        const struct slot_assignment *applied = b && b->applied.slots ? &b->applied : NULL;
        status = slots_diff(op->backend, &op->a, applied, live, nl, &op->cmds, op->res.message,
                            sizeof(op->res.message));
        if (status == 0 && op->restore_only)
            keep_restorable(op, live, nl);
        if (status == 0)
            leave_agents_off(op);
    }
    if (status == 0 && !op->reload_step) {
        live_keep(rt, op->backend, live, nl); /* current until the commands run */
        live = NULL;
    }
    free(live);
    if (status == 0 && op->cmds.n > 0) {
        /* front: nothing may run between the dump and these commands */
        status = queue_commands(rt, op, true);
        if (status == 0)
            return;
    }
    op->res.status = status;
    apply_finish(rt, op);
}

/* Queue op's commands (and, outside reloads, the backend's dump after
 * them: op->trailing). 0 or -ENOMEM (message set). */
static int queue_commands(struct haproxy_runtime *rt, struct apply_op *op, bool front)
{
    const char **cmds = calloc(op->cmds.n + 1, sizeof(*cmds));
    int status = -ENOMEM;
    if (cmds) {
        size_t n = 0;
        for (size_t i = 0; i < op->cmds.n; i++)
            cmds[n++] = op->cmds.v[i].text;
        op->trailing = !op->reload_step;
        if (op->trailing)
            cmds[n++] = op->cmd;
        status = rt_enqueue(rt, HAPROXY_SOCKET_STATS, cmds, n, front,
                            op->reload_step ? RT_RELOAD_STEP : RT_PLAIN, apply_cmds_done, op);
        free(cmds);
    }
    if (status < 0)
        snprintf(op->res.message, sizeof(op->res.message),
                 "haproxy: out of memory queueing %zu commands for backend %s", op->cmds.n,
                 op->backend);
    return status;
}

/* The backend's kept dump, if the next apply may diff against it instead
 * of dumping (haproxy_runtime_apply in haproxy_runtime.h); NULL if not. */
static const struct rt_backend *fresh_live(struct haproxy_runtime *rt, const char *backend)
{
    const struct rt_backend *b = rt_backend_get(rt, backend, false);
    if (!b || !b->live || b->applying || rt->reload_active)
        return NULL;
    return uv_now(rt->loop) - b->live_ms <= HAPROXY_RUNTIME_LIVE_MAX_AGE_MS ? b : NULL;
}

/* Diff against the kept dump and queue the commands (with the dump that
 * refreshes it; alone when nothing differs: the callback never runs from
 * inside the caller's call). 0, or negative errno: use the dump path. */
static int apply_from_live(struct haproxy_runtime *rt, struct apply_op *op,
                           const struct rt_backend *b)
{
    const struct slot_assignment *applied = b->applied.slots ? &b->applied : NULL;
    int rc = slots_diff(op->backend, &op->a, applied, b->live, b->n_live, &op->cmds,
                        op->res.message, sizeof(op->res.message));
    if (rc == 0) {
        leave_agents_off(op);
        rc = queue_commands(rt, op, false);
    }
    if (rc < 0) {
        slot_cmds_free(&op->cmds);
        op->res.message[0] = '\0';
    }
    return rc;
}

static int apply_start(struct haproxy_runtime *rt, const char *backend,
                       const struct slot_assignment *a, bool reload_step, bool restore_only,
                       bool agents_later, haproxy_runtime_apply_cb cb, void *arg)
{
    struct apply_op *op = calloc(1, sizeof(*op));
    int rc;
    if (!op)
        return -ENOMEM;
    slot_assignment_init(&op->a);
    if (state_command(backend, op->cmd, sizeof(op->cmd), op->backend, sizeof(op->backend)) < 0) {
        free(op);
        return -EINVAL;
    }
    op->cb = cb;
    op->arg = arg;
    op->reload_step = reload_step;
    op->restore_only = restore_only;
    op->agents_later = agents_later;
    rc = slot_assignment_copy(&op->a, a);
    const struct rt_backend *fresh =
        rc == 0 && !reload_step && !restore_only ? fresh_live(rt, backend) : NULL;
    struct rt_backend *b = rc == 0 ? rt_backend_get(rt, backend, true) : NULL;
    if (rc == 0 && !b)
        rc = -ENOMEM;
    if (rc == 0) {
        b->applying++; /* before queueing: apply_finish counts it down */
        if (!(fresh && apply_from_live(rt, op, fresh) == 0)) {
            const char *cmds[] = {op->cmd};
            rc = rt_enqueue(rt, HAPROXY_SOCKET_STATS, cmds, 1, reload_step,
                            reload_step ? RT_RELOAD_STEP : RT_PLAIN, apply_state_done, op);
        }
        if (rc < 0 && (b = rt_backend_get(rt, backend, false)) && b->applying)
            b->applying--;
    }
    if (rc < 0) {
        slot_assignment_free(&op->a);
        free(op);
    }
    return rc;
}

int rt_apply_start(struct haproxy_runtime *rt, const char *backend, const struct slot_assignment *a,
                   bool reload_step, bool restore_only, haproxy_runtime_apply_cb cb, void *arg)
{
    return apply_start(rt, backend, a, reload_step, restore_only, false, cb, arg);
}

int haproxy_runtime_apply(struct haproxy_runtime *rt, const char *backend,
                          const struct slot_assignment *a, haproxy_runtime_apply_cb cb, void *arg)
{
    return apply_start(rt, backend, a, false, false, false, cb, arg);
}

int haproxy_runtime_apply_agents_later(struct haproxy_runtime *rt, const char *backend,
                                       const struct slot_assignment *a, haproxy_runtime_apply_cb cb,
                                       void *arg)
{
    return apply_start(rt, backend, a, false, false, true, cb, arg);
}

void rt_backends_free(struct haproxy_runtime *rt)
{
    for (size_t i = 0; i < rt->n_backends; i++) {
        free(rt->backends[i].name);
        slot_assignment_free(&rt->backends[i].applied);
        live_drop(&rt->backends[i]);
    }
    free(rt->backends);
    rt->backends = NULL;
    rt->n_backends = 0;
}
