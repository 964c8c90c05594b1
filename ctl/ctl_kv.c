/* SPDX-License-Identifier: Apache-2.0 */
/* ctl_kv: see ctl_kv.h. */
#include "ctl_kv.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "errmsg.h"

struct ctl_kv {
    uv_loop_t loop;
    struct consul_client *client;
};

struct wait {
    bool done;
    int err;
    bool found;
    char *errbuf;
    size_t errlen;
    struct consul_kv_list *kv;
};

static void on_answer(void *arg, struct consul_response *resp)
{
    struct wait *w = arg;

    w->done = true;
    w->err = resp->err;
    w->found = resp->found;
    if (resp->err) {
        errmsg_set(w->errbuf, w->errlen, "%s", resp->errmsg ? resp->errmsg : strerror(-resp->err));
        if (resp->err == -ECANCELED && resp->txn && resp->txn->n_errors) {
            size_t l = w->errbuf ? strlen(w->errbuf) : 0;
            for (size_t i = 0; i < resp->txn->n_errors && w->errbuf && l + 1 < w->errlen; i++) {
                snprintf(w->errbuf + l, w->errlen - l, "%s op %zu: %s", i ? ";" : ":",
                         resp->txn->errors[i].op_index,
                         resp->txn->errors[i].what ? resp->txn->errors[i].what : "?");
                l = strlen(w->errbuf);
            }
            /* Consul answers an ACL refusal inside a txn with the same 409
             * as a failed cas; retrying cannot help, so say what it is. */
            for (size_t i = 0; i < resp->txn->n_errors; i++) {
                const char *what = resp->txn->errors[i].what;
                if (what && strcasestr(what, "permission denied"))
                    w->err = -EACCES;
            }
        }
    }
    if (resp->kv) {
        w->kv = resp->kv;
        resp->kv = NULL;
    }
}

static int run_until_done(struct ctl_kv *kv, struct wait *w, int started)
{
    if (started < 0) {
        if (!w->errbuf || !w->errbuf[0])
            errmsg_set(w->errbuf, w->errlen, "consul: cannot start request: %s",
                       strerror(-started));
        return started;
    }
    while (!w->done)
        uv_run(&kv->loop, UV_RUN_ONCE);
    return w->err;
}

int ctl_kv_open(const struct consul_config *cfg, struct ctl_kv **out, char *err, size_t errlen)
{
    struct ctl_kv *kv = calloc(1, sizeof(*kv));
    int rc;

    *out = NULL;
    if (!kv)
        return -ENOMEM;
    if ((rc = uv_loop_init(&kv->loop)) < 0) {
        errmsg_set(err, errlen, "cannot create an event loop: %s", uv_strerror(rc));
        free(kv);
        return -EIO;
    }
    if ((rc = consul_client_new(&kv->loop, cfg, &kv->client)) < 0) {
        errmsg_set(err, errlen, "consul: cannot create a client for %s (token file %s): %s",
                   cfg->address ? cfg->address : "(default)",
                   cfg->token_file ? cfg->token_file : "none", strerror(-rc));
        uv_run(&kv->loop, UV_RUN_DEFAULT);
        uv_loop_close(&kv->loop);
        free(kv);
        return rc;
    }
    *out = kv;
    return 0;
}

void ctl_kv_close(struct ctl_kv *kv)
{
    if (!kv)
        return;
    consul_client_free(kv->client);
    uv_run(&kv->loop, UV_RUN_DEFAULT); /* let the client's handles close */
    if (uv_loop_close(&kv->loop) != 0)
        return; /* a handle is still open: leak the loop rather than crash */
    free(kv);
}

int ctl_kv_list(struct ctl_kv *kv, const char *prefix, struct consul_kv_list **out, char *err,
                size_t errlen)
{
    struct wait w = {.errbuf = err, .errlen = errlen};
    int rc = run_until_done(kv, &w, consul_kv_get_prefix(kv->client, prefix, on_answer, &w));

    if (rc < 0) {
        consul_kv_list_free(w.kv);
        return rc;
    }
    if (!w.kv && !(w.kv = calloc(1, sizeof(*w.kv))))
        return -ENOMEM;
    *out = w.kv;
    return 0;
}

int ctl_kv_get(struct ctl_kv *kv, const char *key, struct consul_kv_list **out, char *err,
               size_t errlen)
{
    struct wait w = {.errbuf = err, .errlen = errlen};
    int rc = run_until_done(kv, &w, consul_kv_get(kv->client, key, on_answer, &w));

    *out = NULL;
    if (rc < 0 || !w.found || !w.kv || w.kv->n == 0) {
        consul_kv_list_free(w.kv);
        return rc < 0 ? rc : 0;
    }
    *out = w.kv;
    return 0;
}

int ctl_kv_txn(struct ctl_kv *kv, const struct consul_txn_op *ops, size_t n, char *err,
               size_t errlen)
{
    struct wait w = {.errbuf = err, .errlen = errlen};

    if (n > CONSUL_TXN_MAX_OPS)
        return -E2BIG; /* several batches would not be atomic together */
    int rc = run_until_done(kv, &w, consul_txn(kv->client, ops, n, on_answer, &w));
    consul_kv_list_free(w.kv);
    return rc;
}
