/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kube_client without a network: in-cluster defaults from the
 * environment, URL validation, the token file (read at start, re-read
 * only counted when it changed, kept when it becomes unreadable). The
 * list/watch behaviour is tested end to end against the API fixture in
 * tests/integration/exporter/test_exporter.py.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "curl_uv.h"
#include "kube_client.h"
#include "../common/suite_main.h"

START_TEST(test_in_cluster_ipv4)
{
    struct kube_client_config cfg = {0};
    char url[128];
    setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    ck_assert_int_eq(kube_client_config_in_cluster(&cfg, url, sizeof(url)), 0);
    ck_assert_str_eq(cfg.api_url, "https://10.96.0.1:443");
    ck_assert_str_eq(cfg.token_file, KUBE_SA_DIR "/token");
    ck_assert_str_eq(cfg.ca_file, KUBE_SA_DIR "/ca.crt");
}
END_TEST

START_TEST(test_in_cluster_ipv6_and_explicit_files)
{
    struct kube_client_config cfg = {.token_file = "/t", .insecure_skip_tls = true};
    char url[128];
    setenv("KUBERNETES_SERVICE_HOST", "fd00:10::1", 1);
    unsetenv("KUBERNETES_SERVICE_PORT");
    ck_assert_int_eq(kube_client_config_in_cluster(&cfg, url, sizeof(url)), 0);
    ck_assert_str_eq(cfg.api_url, "https://[fd00:10::1]:443");
    ck_assert_str_eq(cfg.token_file, "/t");
    ck_assert_ptr_null(cfg.ca_file); /* not forced when verification is off */
}
END_TEST

START_TEST(test_not_in_cluster)
{
    struct kube_client_config cfg = {0};
    char url[128];
    unsetenv("KUBERNETES_SERVICE_HOST");
    ck_assert_int_eq(kube_client_config_in_cluster(&cfg, url, sizeof(url)), -ENOENT);
    /* an explicit URL needs no environment */
    cfg.api_url = "https://k8s.example:6443";
    ck_assert_int_eq(kube_client_config_in_cluster(&cfg, url, sizeof(url)), 0);
    ck_assert_str_eq(cfg.api_url, "https://k8s.example:6443");
}
END_TEST

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

START_TEST(test_token_file)
{
    char dir[] = "/tmp/drover-kc-XXXXXX", path[64];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/token", dir);
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct curl_uv *cu;
    ck_assert_int_eq(curl_uv_new(&loop, &cu), 0);
    struct kube_client *kc = NULL;
    struct kube_client_config cfg = {.api_url = "https://127.0.0.1:1/", .token_file = path};

    /* missing file: refused at start */
    ck_assert_int_eq(kube_client_new(&loop, cu, &cfg, &kc), -ENOENT);
    /* not a URL */
    write_file(path, "first\n");
    cfg.api_url = "127.0.0.1:6443";
    ck_assert_int_eq(kube_client_new(&loop, cu, &cfg, &kc), -EINVAL);
    cfg.api_url = "https://127.0.0.1:1/";
    ck_assert_int_eq(kube_client_new(&loop, cu, &cfg, &kc), 0);
    ck_assert_int_eq(kube_client_reload_token(kc), 0); /* unchanged (newline trimmed) */
    write_file(path, "second");
    ck_assert_int_eq(kube_client_reload_token(kc), 1);
    ck_assert_uint_eq(kube_client_token_reloads(kc), 1);
    write_file(path, ""); /* empty: kept */
    ck_assert_int_lt(kube_client_reload_token(kc), 0);
    unlink(path);
    ck_assert_int_lt(kube_client_reload_token(kc), 0);
    ck_assert_uint_eq(kube_client_token_reloads(kc), 1);

    kube_client_free(kc);
    curl_uv_free(cu);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    rmdir(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("kube_client");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_in_cluster_ipv4);
    tcase_add_test(tc, test_in_cluster_ipv6_and_explicit_files);
    tcase_add_test(tc, test_not_in_cluster);
    tcase_add_test(tc, test_token_file);
    suite_add_tcase(s, tc);
    return suite_main_run(s);
}
