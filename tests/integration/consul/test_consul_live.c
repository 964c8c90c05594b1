/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Consul client against a real `consul agent -dev` (fixture consul_dev,
 * address in $DROVER_CONSUL_STATE/addr): KV operations incl. cas, blocking
 * query wake-up, a 150-op txn in 3 batches, a txn fenced by check-session
 * (every batch; refused once the session is destroyed or the lock
 * released), session locks between two clients, health service queries and a health watch.
 */
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>

#include "consul_test_util.h"

static uv_loop_t loop;
static struct consul_client *cl;
static char *addr;

static void setup(void)
{
    addr = state_file("addr");
    ck_assert_msg(addr != NULL, "DROVER_CONSUL_STATE/addr missing: run under the CTest fixture");
    uv_loop_init(&loop);
    struct consul_config cfg = {.address = addr};
    ck_assert_int_eq(consul_client_new(&loop, &cfg, &cl), 0);
}

static void teardown(void)
{
    consul_client_free(cl);
    drain_loop(&loop);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    free(addr);
}

#define WAIT(g) ck_assert_msg(run_until(&loop, &(g).done, 15000), "no answer within 15 s")
#define CALL(g, expr)                                                                              \
    do {                                                                                           \
        (g).done = false;                                                                          \
        ck_assert_int_eq((expr), 0);                                                               \
        WAIT(g);                                                                                   \
    } while (0)

START_TEST(test_kv_roundtrip_and_cas)
{
    struct got g;
    CALL(g, consul_kv_put(cl, "live/kv/a b", "v1", 2, NULL, got_cb, &g));
    ck_assert_msg(g.err == 0, "%s", g.errmsg);
    ck_assert(g.ok);
    CALL(g, consul_kv_get(cl, "live/kv/a b", got_cb, &g));
    ck_assert_int_eq(g.err, 0);
    ck_assert(g.found);
    ck_assert_str_eq(g.first_key, "live/kv/a b");
    ck_assert_str_eq(g.first_value, "v1");
    ck_assert_uint_gt(g.index, 0);
    uint64_t mi = g.first_modify_index;

    struct consul_put_opts create_only = {.mode = CONSUL_PUT_CAS, .cas = 0, .flags = 7};
    CALL(g, consul_kv_put(cl, "live/kv/a b", "v2", 2, &create_only, got_cb, &g));
    ck_assert_int_eq(g.err, 0);
    ck_assert(!g.ok); /* exists: cas=0 refused */
    struct consul_put_opts stale = {.mode = CONSUL_PUT_CAS, .cas = mi + 1000};
    CALL(g, consul_kv_put(cl, "live/kv/a b", "v2", 2, &stale, got_cb, &g));
    ck_assert(!g.ok);
    struct consul_put_opts right = {.mode = CONSUL_PUT_CAS, .cas = mi, .flags = 7};
    CALL(g, consul_kv_put(cl, "live/kv/a b", "v2", 2, &right, got_cb, &g));
    ck_assert(g.ok);
    CALL(g, consul_kv_put(cl, "live/kv/new", "n", 1, &create_only, got_cb, &g));
    ck_assert(g.ok);
    CALL(g, consul_kv_put(cl, "live/kv/sub/x", "x", 1, NULL, got_cb, &g));

    CALL(g, consul_kv_get_prefix(cl, "live/kv/", got_cb, &g));
    ck_assert_uint_eq(g.n, 3);
    ck_assert_str_eq(g.first_key, "live/kv/a b");
    ck_assert_str_eq(g.first_value, "v2");
    CALL(g, consul_kv_keys(cl, "live/kv/", "/", got_cb, &g));
    ck_assert_uint_eq(g.n, 3); /* "a b", "new", "sub/" */

    CALL(g, consul_kv_get(cl, "live/kv/missing", got_cb, &g));
    ck_assert_int_eq(g.err, 0);
    ck_assert(!g.found);
    ck_assert_uint_eq(g.n, 0);
    ck_assert_uint_gt(g.index, 0); /* 404 carries the index */
    CALL(g, consul_kv_get_prefix(cl, "live/nothing/", got_cb, &g));
    ck_assert_int_eq(g.err, 0);
    ck_assert_uint_eq(g.n, 0);

    CALL(g, consul_kv_delete(cl, "live/kv/new", false, true, 1, got_cb, &g));
    ck_assert(!g.ok); /* stale cas */
    CALL(g, consul_kv_delete(cl, "live/kv/", true, false, 0, got_cb, &g));
    ck_assert(g.ok);
    CALL(g, consul_kv_get_prefix(cl, "live/kv/", got_cb, &g));
    ck_assert_uint_eq(g.n, 0);
}
END_TEST

struct wake {
    unsigned changes;
    uint64_t index[4];
    char value[4][64];
    size_t n[4];
    bool second;
};

static void on_wake(void *arg, struct consul_response *r)
{
    struct wake *w = arg;
    if (w->changes < 4) {
        w->index[w->changes] = r->index;
        w->n[w->changes] = r->kv->n;
        if (r->kv->n && r->kv->items[0].value)
            snprintf(w->value[w->changes], sizeof(w->value[0]), "%s",
                     (char *)r->kv->items[0].value);
    }
    w->changes++;
    w->second = w->changes >= 2;
}

START_TEST(test_blocking_query_wakes_before_wait)
{
    struct got g0;
    CALL(g0, consul_kv_delete(cl, "live/wake/", true, false, 0, got_cb, &g0)); /* reruns */
    struct wake w = {0};
    struct consul_watch *cw;
    struct consul_watch_opts o = {.kind = CONSUL_WATCH_KV_PREFIX,
                                  .target = "live/wake/",
                                  .wait_s = 60,
                                  .on_change = on_wake,
                                  .arg = &w};
    ck_assert_int_eq(consul_watch_start(cl, &o, &cw), 0);
    bool first = false;
    for (int i = 0; i < 300 && !first; i++) {
        run_for(&loop, 10);
        first = w.changes >= 1;
    }
    ck_assert_uint_eq(w.changes, 1);
    ck_assert_uint_eq(w.n[0], 0); /* empty prefix: delivered empty, with an index */
    ck_assert_uint_gt(w.index[0], 0);
    /* let the blocking query reach Consul, then change the prefix */
    run_for(&loop, 200);
    ck_assert_uint_gt(consul_watch_index(cw), 0);
    uint64_t t0 = uv_now(&loop);
    struct got g = {0};
    ck_assert_int_eq(consul_kv_put(cl, "live/wake/k", "changed", 7, NULL, got_cb, &g), 0);
    /* bounded well below the 60 s wait: only a real wake-up can pass */
    ck_assert_msg(run_until(&loop, &w.second, 30000), "blocking query did not wake");
    ck_assert_uint_lt(uv_now(&loop) - t0, 60000);
    ck_assert_uint_eq(w.n[1], 1);
    ck_assert_str_eq(w.value[1], "changed");
    ck_assert_uint_gt(w.index[1], w.index[0]);
    const struct consul_stats *st = consul_client_stats(cl);
    ck_assert_uint_ge(st->watch_wakeups, 2);
    ck_assert_uint_eq(st->watch_deliveries, 2);
    consul_watch_stop(cw);
}
END_TEST

START_TEST(test_txn_150_ops_in_3_batches)
{
    static struct consul_txn_op ops[150];
    static char keys[150][64], vals[150][16];
    for (int i = 0; i < 150; i++) {
        snprintf(keys[i], sizeof(keys[i]), "live/txn/k%03d", i);
        snprintf(vals[i], sizeof(vals[i]), "v%d", i);
        ops[i] = (struct consul_txn_op){
            .verb = CONSUL_TXN_SET, .key = keys[i], .value = vals[i], .value_len = strlen(vals[i])};
    }
    struct got g;
    CALL(g, consul_txn(cl, ops, 150, got_cb, &g));
    ck_assert_msg(g.err == 0, "%s", g.errmsg);
    ck_assert_uint_eq(g.txn.batches_total, 3);
    ck_assert_uint_eq(g.txn.batches_applied, 3);
    ck_assert_uint_eq(g.txn.ops_applied, 150);

    /* every key present with its value */
    struct consul_kv_list *all = NULL;
    struct {
        bool done;
        struct consul_kv_list **out;
    } take = {false, &all};
    (void)take;
    CALL(g, consul_kv_keys(cl, "live/txn/", NULL, got_cb, &g));
    ck_assert_uint_eq(g.n, 150);
    CALL(g, consul_kv_get(cl, "live/txn/k149", got_cb, &g));
    ck_assert_str_eq(g.first_value, "v149");
    CALL(g, consul_kv_get(cl, "live/txn/k064", got_cb, &g));
    ck_assert_str_eq(g.first_value, "v64");

    /* a failing check in batch 2 (op 70) rolls back batch 2 only */
    ops[70] = (struct consul_txn_op){.verb = CONSUL_TXN_CHECK_NOT_EXISTS, .key = keys[0]};
    for (int i = 0; i < 150; i++) {
        if (i != 70)
            ops[i].value = "w";
        ops[i].value_len = i != 70 ? 1 : 0;
    }
    CALL(g, consul_txn(cl, ops, 150, got_cb, &g));
    ck_assert_int_eq(g.err, -ECANCELED);
    ck_assert_uint_eq(g.txn.batches_applied, 1);
    ck_assert_uint_eq(g.txn.ops_applied, 64);
    ck_assert_uint_ge(g.txn.n_errors, 1);
    ck_assert_uint_eq(g.txn_first_error_op, 70);
    CALL(g, consul_kv_get(cl, "live/txn/k000", got_cb, &g));
    ck_assert_str_eq(g.first_value, "w"); /* batch 1 applied */
    CALL(g, consul_kv_get(cl, "live/txn/k100", got_cb, &g));
    ck_assert_str_eq(g.first_value, "v100"); /* batch 2 rolled back, 3 not sent */
    CALL(g, consul_kv_delete(cl, "live/txn/", true, false, 0, got_cb, &g));
}
END_TEST

/* consul_txn_guarded with a check-session guard on a lock key: 130 ops
 * go in batches of 63 + guard; an op error maps to the caller's index;
 * after the lock is released, or the session destroyed, the txn answers
 * 409 with guard_failed and writes nothing. */
START_TEST(test_txn_fenced_by_check_session)
{
    static struct consul_txn_op ops[130];
    static char keys[130][64];
    struct consul_session_opts so = {
        .name = "drover-fence-test", .ttl_s = 30, .lock_delay_s = 0, .lock_delay_set = true};
    struct got g;
    char sess[128], sess2[128];
    CALL(g, consul_kv_delete(cl, "live/fence/", true, false, 0, got_cb, &g)); /* reruns */
    CALL(g, consul_session_create(cl, &so, got_cb, &g));
    ck_assert_msg(g.err == 0, "%s", g.errmsg);
    snprintf(sess, sizeof(sess), "%s", g.session_id);
    CALL(g, consul_lock_acquire(cl, "live/fence/leader", sess, "me", 2, got_cb, &g));
    ck_assert(g.ok);
    struct consul_txn_op guard = {
        .verb = CONSUL_TXN_CHECK_SESSION, .key = "live/fence/leader", .session = sess};
    for (int i = 0; i < 130; i++) {
        snprintf(keys[i], sizeof(keys[i]), "live/fence/k%03d", i);
        ops[i] = (struct consul_txn_op){
            .verb = CONSUL_TXN_SET, .key = keys[i], .value = "a", .value_len = 1};
    }

    /* held: every batch (63 ops + the guard) commits */
    CALL(g, consul_txn_guarded(cl, &guard, 1, ops, 130, got_cb, &g));
    ck_assert_msg(g.err == 0, "%s", g.errmsg);
    ck_assert_uint_eq(g.txn.batches_total, 3);
    ck_assert_uint_eq(g.txn.batches_applied, 3);
    ck_assert_uint_eq(g.txn.ops_total, 130);
    ck_assert_uint_eq(g.txn.ops_applied, 130);
    ck_assert(!g.txn.guard_failed);
    CALL(g, consul_kv_keys(cl, "live/fence/k", NULL, got_cb, &g));
    ck_assert_uint_eq(g.n, 130);

    /* an op error in batch 2 is reported at its index in ops, not as the guard */
    ops[70] = (struct consul_txn_op){.verb = CONSUL_TXN_CHECK_NOT_EXISTS, .key = keys[0]};
    CALL(g, consul_txn_guarded(cl, &guard, 1, ops, 130, got_cb, &g));
    ck_assert_int_eq(g.err, -ECANCELED);
    ck_assert_uint_eq(g.txn.batches_applied, 1);
    ck_assert_uint_eq(g.txn.ops_applied, 63);
    ck_assert_uint_eq(g.txn_first_error_op, 70);
    ck_assert(!g.txn_first_error_guard);
    ck_assert(!g.txn.guard_failed);
    ops[70] = (struct consul_txn_op){
        .verb = CONSUL_TXN_SET, .key = keys[70], .value = "a", .value_len = 1};
    CALL(g, consul_kv_delete(cl, "live/fence/k", true, false, 0, got_cb, &g));

    /* released (the session lives on): refused, nothing written */
    CALL(g, consul_lock_release(cl, "live/fence/leader", sess, got_cb, &g));
    ck_assert(g.ok);
    CALL(g, consul_txn_guarded(cl, &guard, 1, ops, 130, got_cb, &g));
    ck_assert_int_eq(g.err, -ECANCELED);
    ck_assert_int_eq(g.http_status, 409);
    ck_assert(g.txn.guard_failed);
    ck_assert(g.txn_first_error_guard);
    ck_assert_uint_eq(g.txn_first_error_op, 0);
    ck_assert_uint_eq(g.txn.batches_applied, 0);
    ck_assert_uint_eq(g.txn.ops_applied, 0);
    CALL(g, consul_kv_keys(cl, "live/fence/k", NULL, got_cb, &g));
    ck_assert(!g.found);

    /* held by another session: refused as well */
    CALL(g, consul_session_create(cl, &so, got_cb, &g));
    snprintf(sess2, sizeof(sess2), "%s", g.session_id);
    CALL(g, consul_lock_acquire(cl, "live/fence/leader", sess2, "you", 3, got_cb, &g));
    ck_assert(g.ok);
    CALL(g, consul_txn_guarded(cl, &guard, 1, ops, 10, got_cb, &g));
    ck_assert_int_eq(g.err, -ECANCELED);
    ck_assert(g.txn.guard_failed);
    CALL(g, consul_session_destroy(cl, sess2, got_cb, &g));

    /* re-acquired, then the session destroyed: refused, nothing written */
    CALL(g, consul_lock_acquire(cl, "live/fence/leader", sess, "me", 2, got_cb, &g));
    ck_assert(g.ok);
    CALL(g, consul_txn_guarded(cl, &guard, 1, ops, 10, got_cb, &g));
    ck_assert_msg(g.err == 0, "%s", g.errmsg);
    ck_assert_uint_eq(g.txn.batches_total, 1);
    CALL(g, consul_kv_delete(cl, "live/fence/k", true, false, 0, got_cb, &g));
    CALL(g, consul_session_destroy(cl, sess, got_cb, &g));
    ck_assert(g.ok);
    CALL(g, consul_txn_guarded(cl, &guard, 1, ops, 130, got_cb, &g));
    ck_assert_int_eq(g.err, -ECANCELED);
    ck_assert_int_eq(g.http_status, 409);
    ck_assert(g.txn.guard_failed);
    ck_assert_uint_eq(g.txn.ops_applied, 0);
    CALL(g, consul_kv_keys(cl, "live/fence/k", NULL, got_cb, &g));
    ck_assert(!g.found);

    /* guard count limits */
    ck_assert_int_eq(consul_txn_guarded(cl, &guard, CONSUL_TXN_MAX_OPS, ops, 1, got_cb, &g),
                     -EINVAL);
    ck_assert_int_eq(consul_txn_guarded(cl, NULL, 1, ops, 1, got_cb, &g), -EINVAL);
    CALL(g, consul_kv_delete(cl, "live/fence/", true, false, 0, got_cb, &g));
}
END_TEST

START_TEST(test_session_lock_between_clients)
{
    struct consul_client *cl2;
    struct consul_config cfg = {.address = addr};
    ck_assert_int_eq(consul_client_new(&loop, &cfg, &cl2), 0);
    struct consul_session_opts so = {
        .name = "drover-test", .ttl_s = 30, .lock_delay_s = 0, .lock_delay_set = true};
    struct got g;
    char s1[128], s2[128];
    CALL(g, consul_session_create(cl, &so, got_cb, &g));
    ck_assert_msg(g.err == 0, "%s", g.errmsg);
    snprintf(s1, sizeof(s1), "%s", g.session_id);
    CALL(g, consul_session_create(cl2, &so, got_cb, &g));
    snprintf(s2, sizeof(s2), "%s", g.session_id);
    ck_assert_str_ne(s1, s2);

    CALL(g, consul_lock_acquire(cl, "live/lock", s1, "me", 2, got_cb, &g));
    ck_assert(g.ok);
    CALL(g, consul_lock_acquire(cl2, "live/lock", s2, "you", 3, got_cb, &g));
    ck_assert_int_eq(g.err, 0);
    ck_assert(!g.ok); /* held by s1 */
    CALL(g, consul_kv_get(cl2, "live/lock", got_cb, &g));
    ck_assert_str_eq(g.first_session, s1);
    ck_assert_str_eq(g.first_value, "me");

    CALL(g, consul_session_renew(cl, s1, got_cb, &g));
    ck_assert_int_eq(g.err, 0);
    CALL(g, consul_session_destroy(cl, s1, got_cb, &g));
    ck_assert(g.ok);
    CALL(g, consul_kv_get(cl2, "live/lock", got_cb, &g));
    ck_assert_str_eq(g.first_session, ""); /* released with the session */
    CALL(g, consul_lock_acquire(cl2, "live/lock", s2, "you", 3, got_cb, &g));
    ck_assert(g.ok); /* lock-delay 0: acquirable at once */
    CALL(g, consul_lock_release(cl2, "live/lock", s2, got_cb, &g));
    ck_assert(g.ok);
    CALL(g, consul_session_renew(cl, s1, got_cb, &g));
    ck_assert(!g.found); /* destroyed session: 404 */
    ck_assert_int_eq(g.err, -ENOENT);
    CALL(g, consul_session_destroy(cl2, s2, got_cb, &g));
    consul_client_free(cl2);
}
END_TEST

/* Blocking libcurl call: fine in a test, the loop has nothing to do. */
static void agent_put(const char *path, const char *json)
{
    char url[256];
    snprintf(url, sizeof(url), "%s%s", addr, path);
    CURL *e = curl_easy_init();
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "PUT");
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, json);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, 10L);
    ck_assert_int_eq(curl_easy_perform(e), CURLE_OK);
    long st = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &st);
    ck_assert_int_eq(st, 200);
    curl_easy_cleanup(e);
}

struct hw {
    unsigned changes;
    size_t n;
    bool got_two;
};

static void on_health(void *arg, struct consul_response *r)
{
    struct hw *h = arg;
    h->changes++;
    h->n = r->health->n;
    h->got_two = h->n == 2;
}

static void register_service(const char *json)
{
    agent_put("/v1/agent/service/register", json);
}

START_TEST(test_health_service)
{
    agent_put("/v1/agent/service/deregister/live2", ""); /* reruns */
    register_service("{\"Name\":\"livesvc\",\"ID\":\"live1\",\"Port\":8080,\"Tags\":[\"t\"]}");
    struct got g;
    CALL(g, consul_health_service(cl, "livesvc", true, got_cb, &g));
    ck_assert_msg(g.err == 0, "%s", g.errmsg);
    ck_assert_uint_eq(g.n, 1);
    ck_assert_str_eq(g.first_key, "live1");
    CALL(g, consul_health_service(cl, "nosuchsvc", false, got_cb, &g));
    ck_assert_int_eq(g.err, 0);
    ck_assert_uint_eq(g.n, 0);

    struct hw h = {0};
    struct consul_watch *w;
    struct consul_watch_opts o = {.kind = CONSUL_WATCH_HEALTH_SERVICE,
                                  .target = "livesvc",
                                  .passing_only = true,
                                  .wait_s = 60,
                                  .on_change = on_health,
                                  .arg = &h};
    ck_assert_int_eq(consul_watch_start(cl, &o, &w), 0);
    for (int i = 0; i < 300 && h.changes == 0; i++)
        run_for(&loop, 10);
    ck_assert_uint_eq(h.n, 1);
    run_for(&loop, 200);
    register_service("{\"Name\":\"livesvc\",\"ID\":\"live2\",\"Port\":8081}");
    ck_assert_msg(run_until(&loop, &h.got_two, 30000), "health watch did not wake");
    consul_watch_stop(w);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("consul_live");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_kv_roundtrip_and_cas);
    tcase_add_test(tc, test_blocking_query_wakes_before_wait);
    tcase_add_test(tc, test_txn_150_ops_in_3_batches);
    tcase_add_test(tc, test_txn_fenced_by_check_session);
    tcase_add_test(tc, test_session_lock_between_clients);
    tcase_add_test(tc, test_health_service);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
