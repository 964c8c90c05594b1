/* SPDX-License-Identifier: Apache-2.0 */
/*
 * consul_txn: /v1/txn for any number of operations. Consul 1.8 takes at
 * most 64 operations per transaction, so the ops are encoded up front into
 * batches of CONSUL_TXN_MAX_OPS and sent one after the other. Each batch
 * is atomic; the set is not. The first failing batch stops the sequence
 * and the caller learns how far it got (ops_applied) and which ops failed
 * (per-op errors of a 409, with indexes into the caller's whole array).
 *
 * consul_txn_guarded() prepends the same guard ops to every batch, so a
 * fence (check-session on the leader key) covers each batch and not only
 * the first: the batch size shrinks by the number of guard ops. Consul
 * numbers errors within the batch body; on_batch maps them back to the
 * caller's op array or flags them as guard errors.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "consul_internal.h"
#include "log.h"

struct txn_state {
    struct consul_client *c;
    char **bodies; /* one JSON body per batch */
    size_t *counts;
    size_t n_batches;
    size_t n_guard;
    size_t per_batch;   /* ops (not guards) per batch */
    size_t first_error; /* errors before this one belong to earlier batches */
    size_t next;
    struct consul_txn_result res;
    consul_cb cb;
    void *arg;
};

static void txn_state_free(struct txn_state *st)
{
    for (size_t i = 0; i < st->n_batches; i++)
        free(st->bodies[i]);
    free(st->bodies);
    free(st->counts);
    consul_txn_result_clear(&st->res);
    free(st);
}

static int send_batch(struct txn_state *st);

static void finish(struct txn_state *st, struct consul_response *resp)
{
    resp->txn = &st->res;
    if (st->cb)
        st->cb(st->arg, resp);
    txn_state_free(st);
}

/* Map the OpIndex of this batch's errors (relative to the batch body,
 * guard ops first) to the caller's arrays. */
static void map_errors(struct txn_state *st)
{
    for (size_t i = st->first_error; i < st->res.n_errors; i++) {
        struct consul_txn_error *e = &st->res.errors[i];
        if (e->op_index < st->n_guard) {
            e->guard = true;
            /* An ACL refusal of the guard says nothing about the guarded
             * condition: report it as an error, not as a lost fence. */
            if (!e->what || !strcasestr(e->what, "permission denied"))
                st->res.guard_failed = true;
        } else {
            e->op_index = st->next * st->per_batch + e->op_index - st->n_guard;
        }
    }
    st->first_error = st->res.n_errors;
}

static void on_batch(void *arg, struct consul_response *resp)
{
    struct txn_state *st = arg;
    map_errors(st);
    if (resp->err) {
        finish(st, resp);
        return;
    }
    st->res.batches_applied++;
    st->res.ops_applied += st->counts[st->next];
    st->next++;
    if (st->next == st->n_batches) {
        finish(st, resp);
        return;
    }
    int rc = send_batch(st);
    if (rc) {
        struct consul_response r = {.err = rc,
                                    .errmsg = "consul: PUT /v1/txn: cannot start the "
                                              "next batch, later batches not sent"};
        finish(st, &r);
    }
}

static int send_batch(struct txn_state *st)
{
    struct consul_request *r = NULL;
    const char *body = st->bodies[st->next];
    int rc = consul_req_start(st->c, "PUT", "/v1/txn", body, strlen(body), CONSUL_REQ_TXN, 0,
                              on_batch, st, &r);
    if (rc)
        return rc;
    r->txn_acc = &st->res;
    r->txn_base = 0; /* map_errors shifts them */
    return 0;
}

/* Encode guard + ops[0..n) as one batch body. */
static int encode_batch(const struct consul_txn_op *guard, size_t n_guard,
                        const struct consul_txn_op *ops, size_t n, char **out)
{
    struct consul_txn_op buf[CONSUL_TXN_MAX_OPS];
    if (n_guard == 0)
        return consul_txn_encode(ops, n, out);
    memcpy(buf, guard, n_guard * sizeof(*guard));
    memcpy(buf + n_guard, ops, n * sizeof(*ops));
    return consul_txn_encode(buf, n_guard + n, out);
}

int consul_txn(struct consul_client *c, const struct consul_txn_op *ops, size_t n, consul_cb cb,
               void *arg)
{
    return consul_txn_guarded(c, NULL, 0, ops, n, cb, arg);
}

int consul_txn_guarded(struct consul_client *c, const struct consul_txn_op *guard, size_t n_guard,
                       const struct consul_txn_op *ops, size_t n, consul_cb cb, void *arg)
{
    if (!c || !ops || n == 0 || n_guard >= CONSUL_TXN_MAX_OPS || (n_guard && !guard))
        return -EINVAL;
    int rc = -ENOMEM;
    struct txn_state *st = calloc(1, sizeof(*st));
    if (!st)
        return -ENOMEM;
    st->c = c;
    st->cb = cb;
    st->arg = arg;
    st->n_guard = n_guard;
    st->per_batch = CONSUL_TXN_MAX_OPS - n_guard;
    size_t nb = (n + st->per_batch - 1) / st->per_batch;
    st->bodies = calloc(nb, sizeof(*st->bodies));
    st->counts = calloc(nb, sizeof(*st->counts));
    if (!st->bodies || !st->counts)
        goto fail;
    for (size_t b = 0; b < nb; b++) {
        size_t first = b * st->per_batch;
        size_t cnt = n - first < st->per_batch ? n - first : st->per_batch;
        rc = encode_batch(guard, n_guard, ops + first, cnt, &st->bodies[b]);
        if (rc) {
            log_error("consul: txn ops %zu..%zu: cannot encode (%s), nothing sent", first,
                      first + cnt - 1, strerror(-rc));
            goto fail;
        }
        st->counts[b] = cnt;
        st->n_batches++;
    }
    st->res.ops_total = n;
    st->res.batches_total = nb;
    rc = send_batch(st);
    if (rc)
        goto fail;
    return 0;
fail:
    txn_state_free(st);
    return rc;
}
