/* SPDX-License-Identifier: Apache-2.0 */
/*
 * consul_txn: /v1/txn for any number of operations. Consul 1.8 takes at
 * most 64 operations per transaction, so the ops are encoded up front into
 * batches of CONSUL_TXN_MAX_OPS and sent one after the other. Each batch
 * is atomic; the set is not. The first failing batch stops the sequence
 * and the caller learns how far it got (ops_applied) and which ops failed
 * (per-op errors of a 409, with indexes into the caller's whole array).
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

static void on_batch(void *arg, struct consul_response *resp)
{
    struct txn_state *st = arg;
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
    r->txn_base = st->next * CONSUL_TXN_MAX_OPS;
    return 0;
}

int consul_txn(struct consul_client *c, const struct consul_txn_op *ops, size_t n, consul_cb cb,
               void *arg)
{
    if (!c || !ops || n == 0)
        return -EINVAL;
    int rc = -ENOMEM;
    struct txn_state *st = calloc(1, sizeof(*st));
    if (!st)
        return -ENOMEM;
    st->c = c;
    st->cb = cb;
    st->arg = arg;
    size_t nb = (n + CONSUL_TXN_MAX_OPS - 1) / CONSUL_TXN_MAX_OPS;
    st->bodies = calloc(nb, sizeof(*st->bodies));
    st->counts = calloc(nb, sizeof(*st->counts));
    if (!st->bodies || !st->counts)
        goto fail;
    for (size_t b = 0; b < nb; b++) {
        size_t first = b * CONSUL_TXN_MAX_OPS;
        size_t cnt = n - first < CONSUL_TXN_MAX_OPS ? n - first : CONSUL_TXN_MAX_OPS;
        rc = consul_txn_encode(ops + first, cnt, &st->bodies[b]);
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
