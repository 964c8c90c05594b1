/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers shared by the Consul integration tests: run the loop until a
 * condition holds (bounded), read the fixture's state directory, and a
 * callback that stores a response for later assertions.
 */
#ifndef DROVER_CONSUL_TEST_UTIL_H
#define DROVER_CONSUL_TEST_UTIL_H

#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "consul.h"

struct got {
    bool done;
    int err;
    char errmsg[1024];
    long http_status;
    uint64_t index;
    bool found;
    bool ok;
    char session_id[128];
    size_t n; /* kv / keys / health entries */
    char first_key[512];
    char first_value[4096];
    char first_session[128];
    uint64_t first_modify_index;
    struct consul_txn_result txn; /* copied counters only */
    size_t txn_first_error_op;
    bool txn_first_error_guard;
    char txn_first_error[512];
};

static inline void got_cb(void *arg, struct consul_response *r)
{
    struct got *g = arg;
    memset(g, 0, sizeof(*g));
    g->done = true;
    g->err = r->err;
    if (r->errmsg)
        snprintf(g->errmsg, sizeof(g->errmsg), "%s", r->errmsg);
    g->http_status = r->http_status;
    g->index = r->index;
    g->found = r->found;
    g->ok = r->ok;
    if (r->session_id)
        snprintf(g->session_id, sizeof(g->session_id), "%s", r->session_id);
    if (r->kv) {
        g->n = r->kv->n;
        if (r->kv->n) {
            const struct consul_kv *kv = &r->kv->items[0];
            snprintf(g->first_key, sizeof(g->first_key), "%s", kv->key);
            if (kv->value)
                snprintf(g->first_value, sizeof(g->first_value), "%s", (char *)kv->value);
            if (kv->session)
                snprintf(g->first_session, sizeof(g->first_session), "%s", kv->session);
            g->first_modify_index = kv->modify_index;
        }
    }
    if (r->keys) {
        g->n = r->keys->n;
        if (r->keys->n)
            snprintf(g->first_key, sizeof(g->first_key), "%s", r->keys->keys[0]);
    }
    if (r->health) {
        g->n = r->health->n;
        if (r->health->n)
            snprintf(g->first_key, sizeof(g->first_key), "%s", r->health->items[0].service_id);
    }
    if (r->txn) {
        g->txn.ops_total = r->txn->ops_total;
        g->txn.ops_applied = r->txn->ops_applied;
        g->txn.batches_total = r->txn->batches_total;
        g->txn.batches_applied = r->txn->batches_applied;
        g->txn.n_errors = r->txn->n_errors;
        g->txn.guard_failed = r->txn->guard_failed;
        if (r->txn->n_errors) {
            g->txn_first_error_op = r->txn->errors[0].op_index;
            g->txn_first_error_guard = r->txn->errors[0].guard;
            snprintf(g->txn_first_error, sizeof(g->txn_first_error), "%s", r->txn->errors[0].what);
        }
    }
}

static bool deadline_hit;
static const bool *until_flag;

static inline void on_deadline(uv_timer_t *t)
{
    deadline_hit = true;
}

/* Before every poll: stop once the flag is set. (uv_run(UV_RUN_ONCE) is
 * not enough: a callback run from a timer at the start of an iteration
 * would still be followed by a blocking poll.) */
static inline void on_prepare(uv_prepare_t *p)
{
    if (*until_flag || deadline_hit)
        uv_stop(p->loop);
}

/* Run loop until *flag is true or max_ms passed; returns *flag. */
static inline bool run_until(uv_loop_t *loop, const bool *flag, unsigned max_ms)
{
    uv_timer_t t;
    uv_prepare_t p;
    deadline_hit = false;
    until_flag = flag;
    uv_timer_init(loop, &t);
    uv_timer_start(&t, on_deadline, max_ms, 0);
    uv_prepare_init(loop, &p);
    uv_prepare_start(&p, on_prepare);
    while (!*flag && !deadline_hit)
        uv_run(loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&t, NULL);
    uv_close((uv_handle_t *)&p, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return *flag;
}

/* Run the loop for ms, whatever happens (used only to bound "no spin"). */
static inline void run_for(uv_loop_t *loop, unsigned ms)
{
    bool never = false;
    run_until(loop, &never, ms);
}

/* Close everything still open and check nothing leaked a handle. */
static inline void drain_loop(uv_loop_t *loop)
{
    for (int i = 0; i < 100 && uv_run(loop, UV_RUN_NOWAIT); i++)
        ;
}

/* Run a suite, return the exit status for main(). */
static inline int run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

/* $DROVER_CONSUL_STATE/<file>, first line, or NULL. Caller frees. */
static inline char *state_file(const char *file)
{
    const char *dir = getenv("DROVER_CONSUL_STATE");
    if (!dir)
        return NULL;
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char line[512] = "";
    if (!fgets(line, sizeof(line), f))
        line[0] = '\0';
    fclose(f);
    line[strcspn(line, "\r\n")] = '\0';
    return strdup(line);
}

#endif
