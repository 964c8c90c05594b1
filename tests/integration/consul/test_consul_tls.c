/* SPDX-License-Identifier: Apache-2.0 */
/*
 * HTTPS against a real dev agent (fixture consul_tls): its certificate is
 * signed by a throw-away CA and valid only for a DNS name, not for
 * 127.0.0.1. With ca_file + tls_server_name the client works; without the
 * server name, or without the CA, verification fails with -EPROTO.
 */
#include <errno.h>

#include "consul_test_util.h"

static uv_loop_t loop;

static int put_with(const char *addr, const char *ca, const char *name, struct got *g)
{
    struct consul_client *c;
    struct consul_config cfg = {.address = addr, .ca_file = ca, .tls_server_name = name};
    ck_assert_int_eq(consul_client_new(&loop, &cfg, &c), 0);
    g->done = false;
    ck_assert_int_eq(consul_kv_put(c, "tls/k", "v", 1, NULL, got_cb, g), 0);
    ck_assert(run_until(&loop, &g->done, 15000));
    consul_client_free(c);
    return g->err;
}

START_TEST(test_tls_verify)
{
    char *addr = state_file("https_addr");
    char *ca = state_file("ca.pem");
    char *name = state_file("tls_server_name");
    ck_assert_msg(addr && ca && name, "run under the consul_tls CTest fixture");
    free(ca);
    char ca_path[1024];
    snprintf(ca_path, sizeof(ca_path), "%s/ca.pem", getenv("DROVER_CONSUL_STATE"));
    uv_loop_init(&loop);
    struct got g;

    ck_assert_msg(put_with(addr, ca_path, name, &g) == 0, "%s", g.errmsg);
    ck_assert(g.ok);
    ck_assert_int_eq(put_with(addr, ca_path, NULL, &g), -EPROTO); /* 127.0.0.1 not in cert */
    ck_assert_ptr_nonnull(strstr(g.errmsg, "PUT /v1/kv/tls/k"));
    ck_assert_int_eq(put_with(addr, NULL, name, &g), -EPROTO); /* unknown CA */

    drain_loop(&loop);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    free(addr);
    free(name);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("consul_tls");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_tls_verify);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
