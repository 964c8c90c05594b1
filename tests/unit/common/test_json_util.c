/* SPDX-License-Identifier: Apache-2.0 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json_util.h"
#include "suite_main.h"

static json_t *doc;

static void setup(void)
{
    char err[256];
    static const char text[] =
        "{\"name\": \"web\", \"port\": 443, \"weight\": 0.5, \"enabled\": true,"
        " \"nothing\": null, \"labels\": {\"node.kubernetes.io/role\": \"lb\"},"
        " \"tags\": [\"a\", \"b\"], \"mixed\": [\"a\", 3],"
        " \"services\": [{\"node_port\": 30080}, {\"node_port\": 30081},"
        "                {\"node_port\": \"30082\"}]}";

    ck_assert_int_eq(json_from_buffer(text, strlen(text), "doc", &doc, err, sizeof(err)), 0);
}

static void teardown(void)
{
    json_decref(doc);
}

START_TEST(test_present_values)
{
    char err[256];
    const char *s = NULL;
    int64_t n = 0;
    double d = 0;
    bool b = false;
    json_t *j = NULL;

    ck_assert_int_eq(json_get_string(doc, NULL, "name", &s, true, err, sizeof(err)), 1);
    ck_assert_str_eq(s, "web");
    ck_assert_int_eq(json_get_int(doc, NULL, "port", &n, 1, 65535, true, err, sizeof(err)), 1);
    ck_assert_int_eq(n, 443);
    ck_assert_int_eq(json_get_double(doc, NULL, "weight", &d, true, err, sizeof(err)), 1);
    ck_assert_double_eq(d, 0.5);
    ck_assert_int_eq(json_get_double(doc, NULL, "port", &d, true, err, sizeof(err)), 1);
    ck_assert_double_eq(d, 443.0);
    ck_assert_int_eq(json_get_bool(doc, NULL, "enabled", &b, true, err, sizeof(err)), 1);
    ck_assert(b);
    ck_assert_int_eq(json_get_object(doc, NULL, "labels", &j, true, err, sizeof(err)), 1);
    ck_assert(json_is_object(j));
    ck_assert_int_eq(json_get_array(doc, NULL, "services", &j, true, err, sizeof(err)), 1);
    ck_assert_uint_eq(json_array_size(j), 3);
    /* a literal key containing dots */
    ck_assert_int_eq(json_get_string(json_object_get(doc, "labels"), "labels",
                                     "node.kubernetes.io/role", &s, true, err, sizeof(err)),
                     1);
    ck_assert_str_eq(s, "lb");
    /* a path */
    ck_assert_int_eq(
        json_get_int(doc, NULL, "services[1].node_port", &n, 1, 65535, true, err, sizeof(err)), 1);
    ck_assert_int_eq(n, 30081);
}
END_TEST

START_TEST(test_absent_optional_untouched)
{
    char err[256] = "";
    const char *s = "default";
    int64_t n = 7;

    ck_assert_int_eq(json_get_string(doc, NULL, "missing", &s, false, err, sizeof(err)), 0);
    ck_assert_str_eq(s, "default");
    ck_assert_int_eq(json_get_int(doc, NULL, "nothing", &n, 0, 10, false, err, sizeof(err)), 0);
    ck_assert_int_eq(n, 7);
    ck_assert_str_eq(err, "");
}
END_TEST

START_TEST(test_error_messages)
{
    char err[256];
    const char *s;
    int64_t n;
    bool b;
    json_t *j;
    json_t *svc = json_array_get(json_object_get(doc, "services"), 2);

    ck_assert_int_eq(
        json_get_int(svc, "services[2]", "node_port", &n, 1, 65535, true, err, sizeof(err)),
        -EINVAL);
    ck_assert_str_eq(err, "services[2].node_port: expected integer 1..65535, got string");
    ck_assert_int_eq(
        json_get_int(doc, NULL, "services[2].node_port", &n, 1, 65535, true, err, sizeof(err)),
        -EINVAL);
    ck_assert_str_eq(err, "services[2].node_port: expected integer 1..65535, got string");
    ck_assert_int_eq(json_get_int(doc, NULL, "port", &n, 1, 100, true, err, sizeof(err)), -EINVAL);
    ck_assert_str_eq(err, "port: expected integer 1..100, got 443");
    ck_assert_int_eq(json_get_int(doc, NULL, "weight", &n, 0, INT64_MAX, true, err, sizeof(err)),
                     -EINVAL);
    ck_assert_str_eq(err, "weight: expected integer >= 0, got real");
    ck_assert_int_eq(json_get_string(doc, "svc", "missing", &s, true, err, sizeof(err)), -EINVAL);
    ck_assert_str_eq(err, "svc.missing: missing, expected string");
    ck_assert_int_eq(json_get_string(doc, NULL, "nothing", &s, true, err, sizeof(err)), -EINVAL);
    ck_assert_str_eq(err, "nothing: missing, expected string");
    ck_assert_int_eq(json_get_bool(doc, NULL, "name", &b, true, err, sizeof(err)), -EINVAL);
    ck_assert_str_eq(err, "name: expected boolean, got string");
    ck_assert_int_eq(json_get_object(doc, NULL, "tags", &j, true, err, sizeof(err)), -EINVAL);
    ck_assert_str_eq(err, "tags: expected object, got array");
    ck_assert_int_eq(json_get_array(doc, NULL, "labels", &j, true, err, sizeof(err)), -EINVAL);
    ck_assert_str_eq(err, "labels: expected array, got object");
    ck_assert_int_eq(json_get_double(doc, NULL, "enabled", NULL, true, err, sizeof(err)), -EINVAL);
    ck_assert_str_eq(err, "enabled: expected number, got boolean");
    ck_assert_int_eq(json_get_int(doc, "x", "[0]", &n, 0, 1, true, err, sizeof(err)), -EINVAL);
    ck_assert_str_eq(err, "x[0]: missing, expected integer 0..1");
}
END_TEST

START_TEST(test_string_array)
{
    char err[256];
    char **v = NULL;
    size_t n = 0;

    ck_assert_int_eq(json_get_string_array(doc, NULL, "tags", &v, &n, true, err, sizeof(err)), 1);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(v[0], "a");
    ck_assert_str_eq(v[1], "b");
    ck_assert_ptr_null(v[2]);
    json_string_array_free(v);
    v = NULL;
    ck_assert_int_eq(json_get_string_array(doc, "spec", "mixed", &v, &n, true, err, sizeof(err)),
                     -EINVAL);
    ck_assert_str_eq(err, "spec.mixed[1]: expected string, got integer");
    ck_assert_ptr_null(v);
    ck_assert_int_eq(json_get_string_array(doc, NULL, "name", &v, &n, true, err, sizeof(err)),
                     -EINVAL);
    ck_assert_str_eq(err, "name: expected array of strings, got string");
}
END_TEST

START_TEST(test_path_get)
{
    ck_assert_int_eq(json_integer_value(json_path_get(doc, "services[0].node_port")), 30080);
    ck_assert_ptr_null(json_path_get(doc, "services[9].node_port"));
    ck_assert_ptr_null(json_path_get(doc, "services.node_port"));
    ck_assert_ptr_null(json_path_get(doc, "name[0]"));
    ck_assert_ptr_null(json_path_get(doc, "services[x]"));
    ck_assert_ptr_null(json_path_get(doc, "services[0"));
    ck_assert_ptr_null(json_path_get(doc, ""));
    ck_assert_ptr_eq(json_path_get(doc, "tags[1]"),
                     json_array_get(json_object_get(doc, "tags"), 1));
    ck_assert_str_eq(json_type_desc(json_path_get(doc, "nothing")), "null");
    ck_assert_str_eq(json_type_desc(NULL), "nothing");
}
END_TEST

START_TEST(test_load_errors_name_position)
{
    char err[256], path[] = "/tmp/drover-json-XXXXXX";
    json_t *j = NULL;
    int fd = mkstemp(path);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "{\n  \"a\": 1,\n  \"b\": tru\n}\n", 25), 25);
    close(fd);
    ck_assert_int_eq(json_load_file_strict(path, &j, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_null(j);
    char want[128];
    snprintf(want, sizeof(want), "%s:3:", path);
    ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "%s", err);

    /* duplicate keys are rejected */
    ck_assert_int_eq(json_from_buffer("{\"a\":1,\"a\":2}", 13, "consul KV x", &j, err, sizeof(err)),
                     -EINVAL);
    ck_assert_msg(strncmp(err, "consul KV x:1:", 14) == 0, "%s", err);
    ck_assert_ptr_nonnull(strstr(err, "duplicate"));

    /* scalars decode (callers check the type) */
    ck_assert_int_eq(json_from_buffer("42", 2, "n", &j, err, sizeof(err)), 0);
    ck_assert_int_eq(json_integer_value(j), 42);
    json_decref(j);

    unlink(path);
    ck_assert_int_eq(json_load_file_strict(path, &j, err, sizeof(err)), -ENOENT);
    ck_assert_ptr_nonnull(strstr(err, path));
    ck_assert_ptr_nonnull(strstr(err, "No such file"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("json_util");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_present_values);
    tcase_add_test(tc, test_absent_optional_untouched);
    tcase_add_test(tc, test_error_messages);
    tcase_add_test(tc, test_string_array);
    tcase_add_test(tc, test_path_get);
    tcase_add_test(tc, test_load_errors_name_position);
    suite_add_tcase(s, tc);
    return suite_main_run(s);
}
