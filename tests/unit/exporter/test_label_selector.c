/* SPDX-License-Identifier: Apache-2.0 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "label_selector.h"
#include "../common/suite_main.h"

static json_t *labels;

static void setup(void)
{
    labels = json_pack("{s:s, s:s, s:s, s:s}", "role", "lb", "zone", "dc1-a",
                       "node-role.kubernetes.io/lb-backend", "", "tier", "edge");
}

static void teardown(void)
{
    json_decref(labels);
}

static bool match(const char *text)
{
    char err[256];
    struct label_selector *sel = NULL;
    int rc = label_selector_parse(text, &sel, err, sizeof(err));
    ck_assert_msg(rc == 0, "parse \"%s\" failed: %s", text ? text : "(null)", err);
    bool m = label_selector_matches(sel, labels);
    label_selector_free(sel);
    return m;
}

static void parse_error(const char *text, const char *fragment)
{
    char err[256];
    struct label_selector *sel = (void *)1;
    ck_assert_int_eq(label_selector_parse(text, &sel, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_null(sel);
    ck_assert_msg(strstr(err, fragment), "error for \"%s\" is \"%s\", expected \"%s\"", text, err,
                  fragment);
}

START_TEST(test_equality)
{
    ck_assert(match("role=lb"));
    ck_assert(match("role==lb"));
    ck_assert(match(" role = lb "));
    ck_assert(!match("role=proxy"));
    ck_assert(!match("missing=lb"));
    ck_assert(match("role!=proxy"));
    ck_assert(!match("role!=lb"));
    ck_assert(match("missing!=x")); /* absent key matches != */
    ck_assert(match("node-role.kubernetes.io/lb-backend="));
    ck_assert(!match("zone="));
}
END_TEST

START_TEST(test_existence)
{
    ck_assert(match("role"));
    ck_assert(match("node-role.kubernetes.io/lb-backend"));
    ck_assert(!match("gpu"));
    ck_assert(match("!gpu"));
    ck_assert(match("! gpu"));
    ck_assert(!match("!role"));
}
END_TEST

START_TEST(test_sets)
{
    ck_assert(match("zone in (dc1-a,dc1-b)"));
    ck_assert(match("zone in(dc1-b, dc1-a)"));
    ck_assert(!match("zone in (dc2-a)"));
    ck_assert(!match("missing in (x)"));
    ck_assert(match("zone notin (dc2-a)"));
    ck_assert(!match("zone notin (dc1-a,dc2-a)"));
    ck_assert(match("missing notin (x)"));
    ck_assert(match("node-role.kubernetes.io/lb-backend in (,x)"));
}
END_TEST

START_TEST(test_and)
{
    ck_assert(match("role=lb,zone in (dc1-a),!gpu,tier"));
    ck_assert(!match("role=lb,zone in (dc1-b)"));
    ck_assert(!match("role=lb,gpu"));
    ck_assert(match(""));
    ck_assert(match("   "));
    ck_assert(match(NULL));
    struct label_selector *sel;
    char err[64];
    ck_assert_int_eq(label_selector_parse("a,b=c,d in (e)", &sel, err, sizeof(err)), 0);
    ck_assert_uint_eq(label_selector_count(sel), 3);
    label_selector_free(sel);
    ck_assert(label_selector_matches(NULL, labels));
}
END_TEST

START_TEST(test_null_labels)
{
    json_decref(labels);
    labels = NULL;
    ck_assert(!match("role=lb"));
    ck_assert(match("!role"));
    ck_assert(match("role!=lb"));
    labels = json_object();
}
END_TEST

START_TEST(test_errors)
{
    parse_error("role=lb,", "at offset 8: expected a label key");
    parse_error("role=lb zone=x", "expected ',' or end of selector");
    parse_error("zone in dc1", "expected '(' after \"in\"");
    parse_error("zone in (a b)", "expected ',' or ')' in value set");
    parse_error("zone in ()", "empty value set");
    parse_error("zone notin (a", "expected ',' or ')'");
    parse_error("=x", "expected a label key");
    parse_error("-bad=x", "invalid label key \"-bad\"");
    parse_error("Upper.Case/x=y", "invalid label key");
    parse_error("a/b/c=y", "invalid label key");
    parse_error("role=-lb", "invalid label value \"-lb\"");
    parse_error("cpu>4", "operator '>' is not supported");
    parse_error("!role=lb", "expected ',' or end after \"!role\"");
    parse_error("role lb", "expected an operator");
    parse_error("role=lb,,zone", "at offset 8: expected a label key");
    char long_value[100];
    memset(long_value, 'a', sizeof(long_value));
    snprintf(long_value, sizeof(long_value), "k=%070d", 0);
    parse_error(long_value, "invalid label value");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("label_selector");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_equality);
    tcase_add_test(tc, test_existence);
    tcase_add_test(tc, test_sets);
    tcase_add_test(tc, test_and);
    tcase_add_test(tc, test_null_labels);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    return suite_main_run(s);
}
