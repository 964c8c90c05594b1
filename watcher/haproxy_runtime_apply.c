/* SPDX-License-Identifier: Apache-2.0 */
/*
 * haproxy_runtime, the apply chain: `show servers state <backend>` ->
 * slots_diff against the live state and what this client last applied ->
 * the commands in one exchange pushed to the front of the queue (nothing
 * runs in between) -> every answer checked. Owns the per-backend record of
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
    int rc = rt_enqueue(rt, HAPROXY_SOCKET_STATS, cmds, 1, false, false, state_pub_done, op);
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
    b->name = strdup(name);
    if (!b->name)
        return NULL;
    slot_assignment_init(&b->applied);
    rt->n_backends++;
    return b;
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
    if (b)
        slot_assignment_free(&b->applied);
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
};

static void apply_finish(struct haproxy_runtime *rt, struct apply_op *op)
{
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
    }
    free(live);
    if (status == 0 && op->cmds.n > 0) {
        const char **cmds = calloc(op->cmds.n, sizeof(*cmds));
        status = -ENOMEM;
        if (cmds) {
            for (size_t i = 0; i < op->cmds.n; i++)
                cmds[i] = op->cmds.v[i].text;
            /* front: nothing may run between the dump and these commands */
            status = rt_enqueue(rt, HAPROXY_SOCKET_STATS, cmds, op->cmds.n, true, op->reload_step,
                                apply_cmds_done, op);
            free(cmds);
        }
        if (status == 0)
            return;
        snprintf(op->res.message, sizeof(op->res.message),
                 "haproxy: out of memory queueing %zu commands for backend %s", op->cmds.n,
                 op->backend);
    }
    op->res.status = status;
    apply_finish(rt, op);
}

int rt_apply_start(struct haproxy_runtime *rt, const char *backend, const struct slot_assignment *a,
                   bool reload_step, bool restore_only, haproxy_runtime_apply_cb cb, void *arg)
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
    rc = slot_assignment_copy(&op->a, a);
    if (rc == 0) {
        const char *cmds[] = {op->cmd};
        rc = rt_enqueue(rt, HAPROXY_SOCKET_STATS, cmds, 1, reload_step, reload_step,
                        apply_state_done, op);
    }
    if (rc < 0) {
        slot_assignment_free(&op->a);
        free(op);
    }
    return rc;
}

int haproxy_runtime_apply(struct haproxy_runtime *rt, const char *backend,
                          const struct slot_assignment *a, haproxy_runtime_apply_cb cb, void *arg)
{
    return rt_apply_start(rt, backend, a, false, false, cb, arg);
}

void rt_backends_free(struct haproxy_runtime *rt)
{
    for (size_t i = 0; i < rt->n_backends; i++) {
        free(rt->backends[i].name);
        slot_assignment_free(&rt->backends[i].applied);
    }
    free(rt->backends);
    rt->backends = NULL;
    rt->n_backends = 0;
}
