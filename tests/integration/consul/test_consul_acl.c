/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ACL token file against a real dev agent with ACLs on and default deny
 * (fixture consul_acl, master token in $DROVER_CONSUL_STATE/master-token):
 * no token -> 403 reported as -EACCES, a guarded txn's ACL-refused guard
 * not taken for a lost fence; token file -> works; a token file
 * rotated after a 403 is re-read and the request retried.
 */
#include <errno.h>
#include <unistd.h>

#include "consul_test_util.h"

#define CALL(g, expr)                                                                              \
    do {                                                                                           \
        (g).done = false;                                                                          \
        ck_assert_int_eq((expr), 0);                                                               \
        ck_assert_msg(run_until(&loop, &(g).done, 15000), "no answer within 15 s");                \
    } while (0)

START_TEST(test_acl_token_file)
{
    char *addr = state_file("addr");
    char *master = state_file("master-token");
    ck_assert_msg(addr && master, "run under the consul_acl CTest fixture");
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct got g;

    /* no token: default deny */
    struct consul_client *anon;
    struct consul_config cfg = {.address = addr};
    ck_assert_int_eq(consul_client_new(&loop, &cfg, &anon), 0);
    CALL(g, consul_kv_put(anon, "acl/k", "v", 1, NULL, got_cb, &g));
    ck_assert_int_eq(g.err, -EACCES);
    ck_assert_int_eq(g.http_status, 403);
    ck_assert_ptr_nonnull(strstr(g.errmsg, "PUT /v1/kv/acl/k: HTTP 403"));
    /* a guard refused by the ACLs is not a lost fence */
    struct consul_txn_op guard = {
        .verb = CONSUL_TXN_CHECK_SESSION, .key = "acl/lock", .session = "not-checked"};
    struct consul_txn_op op = {
        .verb = CONSUL_TXN_SET, .key = "acl/k", .value = "v", .value_len = 1};
    CALL(g, consul_txn_guarded(anon, &guard, 1, &op, 1, got_cb, &g));
    ck_assert_int_eq(g.err, -ECANCELED);
    ck_assert_uint_ge(g.txn.n_errors, 1);
    ck_assert_msg(g.txn_first_error_guard, "first error: op %zu %s", g.txn_first_error_op,
                  g.txn_first_error);
    ck_assert_ptr_nonnull(strcasestr(g.txn_first_error, "permission denied"));
    ck_assert(!g.txn.guard_failed);
    consul_client_free(anon);

    /* a token file that holds a wrong token first, the master token later */
    char path[] = "/tmp/drover-acl-token-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "00000000-0000-0000-0000-000000000000\n", 37), 37);
    close(fd);
    struct consul_client *c;
    cfg.token_file = path;
    ck_assert_int_eq(consul_client_new(&loop, &cfg, &c), 0);
    CALL(g, consul_kv_put(c, "acl/k", "v", 1, NULL, got_cb, &g));
    ck_assert_int_eq(g.err, -EACCES);
    FILE *f = fopen(path, "w");
    fprintf(f, "%s\n", master);
    fclose(f);
    CALL(g, consul_kv_put(c, "acl/k", "v", 1, NULL, got_cb, &g));
    ck_assert_msg(g.err == 0, "%s", g.errmsg);
    ck_assert(g.ok);
    CALL(g, consul_kv_get(c, "acl/k", got_cb, &g));
    ck_assert_int_eq(g.err, 0);
    ck_assert_str_eq(g.first_value, "v");
    ck_assert_uint_eq(consul_client_stats(c)->token_reloads, 1);
    consul_client_free(c);
    unlink(path);
    drain_loop(&loop);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    free(addr);
    free(master);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("consul_acl");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_acl_token_file);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
