/* SPDX-License-Identifier: Apache-2.0 */
/* frontdoor_anycast: VIP verdicts of an anycast proxy host from the services'
 * configuration files and their HAProxy's `show stat`. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "frontdoor_anycast.h"
#include "../common/suite_main.h"

static const char cfg_a[] = "global\n"
                            "    stats socket /run/a.sock level admin\n"
                            "frontend fe_a # the web VIP\n"
                            "    bind 192.0.2.1:80,192.0.2.1:443\n"
                            "    bind :8080\n"
                            "    bind ipv6@[2001:db8::1]:80\n"
                            "    use_backend be_api if { path_beg /api }\n"
                            "    default_backend be_web\n"
                            "backend be_web\n"
                            "    server s1 10.0.0.1:80 check\n"
                            "backend be_api\n"
                            "    server s1 10.0.0.2:80 check\n";

static const char cfg_b[] = "listen li_b\n"
                            "    bind 192.0.2.2:25\n"
                            "    server s1 10.0.0.3:25\n";

#define HDR "# pxname,svname,qcur,status,weight\n"

static const char *verdict_of(const struct frontdoor_verdict *v, size_t n, const char *vip)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(v[i].address, vip))
            return v[i].ok ? "ok" : v[i].reason;
    return NULL;
}

static void judge(const char *stat_a, const char *stat_b, const char *want1, const char *want6,
                  const char *want2)
{
    struct frontdoor_anycast *a = NULL;
    const struct frontdoor_verdict *v;
    size_t n;

    ck_assert_int_eq(frontdoor_anycast_new(&a), 0);
    ck_assert_int_eq(frontdoor_anycast_add_service(a, "a", cfg_a, strlen(cfg_a), stat_a,
                                                   stat_a ? strlen(stat_a) : 0),
                     0);
    ck_assert_int_eq(frontdoor_anycast_add_service(a, "b", cfg_b, strlen(cfg_b), stat_b,
                                                   stat_b ? strlen(stat_b) : 0),
                     0);
    ck_assert_int_eq(frontdoor_anycast_verdicts(a, &v, &n), 0);
    ck_assert_uint_eq(n, 3); /* the wildcard bind is no VIP; 192.0.2.1 once */
    ck_assert_str_eq(v[0].address, "192.0.2.1");
    ck_assert_ptr_nonnull(strstr(verdict_of(v, n, "192.0.2.1"), want1));
    ck_assert_ptr_nonnull(strstr(verdict_of(v, n, "2001:db8::1"), want6));
    ck_assert_ptr_nonnull(strstr(verdict_of(v, n, "192.0.2.2"), want2));
    frontdoor_anycast_free(a);
}

START_TEST(test_all_up)
{
    judge(HDR "fe_a,FRONTEND,0,OPEN,\nbe_web,s1,0,UP,1\nbe_web,BACKEND,0,UP,1\n"
              "be_api,s1,0,UP 2/3,1\n",
          HDR "li_b,FRONTEND,0,OPEN,\nli_b,s1,0,no check,1\nli_b,BACKEND,0,UP,1\n", "ok", "ok",
          "ok");
}
END_TEST

START_TEST(test_backend_without_up_server)
{
    judge(HDR "fe_a,FRONTEND,0,OPEN,\nbe_web,s1,0,UP,1\nbe_api,s1,0,DOWN,1\n"
              "be_api,s2,0,MAINT,1\nbe_api,BACKEND,0,DOWN,0\n",
          HDR "li_b,FRONTEND,0,OPEN,\nli_b,s1,0,UP,1\n", "backend be_api of frontend fe_a",
          "backend be_api", "ok");
}
END_TEST

START_TEST(test_stopped_frontend_and_dead_haproxy)
{
    judge(HDR "fe_a,FRONTEND,0,STOP,\nbe_web,s1,0,UP,1\nbe_api,s1,0,UP,1\n", NULL,
          "frontend fe_a is STOP", "frontend fe_a is STOP", "HAProxy of service b does not answer");
    judge(HDR "be_web,s1,0,UP,1\n", "garbage\n\n,,,\n", "fe_a is not running",
          "fe_a is not running", "li_b is not running");
}
END_TEST

/* The drain counter: cumulative sessions of the frontends that bind a VIP
 * (fe_a, li_b), not of other proxies; a stat without the column counts 0. */
START_TEST(test_sessions_of_vip_frontends)
{
    static const char stat_a[] = "# pxname,svname,status,stot\nfe_a,FRONTEND,OPEN,40\n"
                                 "be_web,s1,UP,39\nstats,FRONTEND,OPEN,1000\n";
    static const char stat_b[] = "# pxname,svname,status,stot\nli_b,FRONTEND,OPEN,2\n";
    static const char cfg_stats[] = "frontend stats\n    bind :9000\n";
    struct frontdoor_anycast *a = NULL;

    ck_assert_int_eq(frontdoor_anycast_new(&a), 0);
    ck_assert_int_eq(
        frontdoor_anycast_add_service(a, "a", cfg_a, strlen(cfg_a), stat_a, strlen(stat_a)), 0);
    ck_assert_int_eq(
        frontdoor_anycast_add_service(a, "s", cfg_stats, strlen(cfg_stats), stat_a, strlen(stat_a)),
        0);
    ck_assert_int_eq(
        frontdoor_anycast_add_service(a, "b", cfg_b, strlen(cfg_b), stat_b, strlen(stat_b)), 0);
    ck_assert_uint_eq(frontdoor_anycast_sessions(a), 42);
    frontdoor_anycast_free(a);
    ck_assert_int_eq(frontdoor_anycast_new(&a), 0);
    ck_assert_int_eq(frontdoor_anycast_add_service(a, "b", cfg_b, strlen(cfg_b),
                                                   HDR "li_b,FRONTEND,0,OPEN,\n",
                                                   strlen(HDR "li_b,FRONTEND,0,OPEN,\n")),
                     0);
    ck_assert_uint_eq(frontdoor_anycast_sessions(a), 0);
    frontdoor_anycast_free(a);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("frontdoor_anycast");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_all_up);
    tcase_add_test(tc, test_backend_without_up_server);
    tcase_add_test(tc, test_stopped_frontend_and_dead_haproxy);
    tcase_add_test(tc, test_sessions_of_vip_frontends);
    suite_add_tcase(s, tc);
    return suite_main_run(s);
}
