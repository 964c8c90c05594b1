/* SPDX-License-Identifier: Apache-2.0 */
/* str_affix: prefixes and suffixes, at the edges (equal, empty, longer). */
#include <check.h>

#include "str_affix.h"
#include "suite_main.h"

START_TEST(test_prefix)
{
    ck_assert(str_has_prefix("haproxy/web", "haproxy/"));
    ck_assert(str_has_prefix("haproxy/", "haproxy/"));
    ck_assert(str_has_prefix("anything", ""));
    ck_assert(!str_has_prefix("haproxy", "haproxy/"));
    ck_assert(!str_has_prefix("xhaproxy/", "haproxy/"));
    ck_assert(!str_has_prefix("", "h"));
}
END_TEST

START_TEST(test_suffix)
{
    ck_assert(str_has_suffix("web.cfg", ".cfg"));
    ck_assert(str_has_suffix(".cfg", ".cfg"));
    ck_assert(str_has_suffix("anything", ""));
    ck_assert(!str_has_suffix("cfg", ".cfg"));
    ck_assert(!str_has_suffix("web.cfg.prev", ".cfg"));
    ck_assert(!str_has_suffix("web.cfgx", ".cfg"));
    ck_assert(!str_has_suffix("", "g"));
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("str_affix");
    TCase *tc = tcase_create("affix");
    tcase_add_test(tc, test_prefix);
    tcase_add_test(tc, test_suffix);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return suite_main_run(suite());
}
