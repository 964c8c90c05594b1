/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the Consul answer parsers, txn encoding and hashes. */
#include <check.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consul.h"
#include "suite_main.h"

#define S(x) x, strlen(x)

/* Trimmed real answers of consul 1.8.7 -dev. */
static const char kv_answer[] =
    "[{\"LockIndex\":0,\"Key\":\"drover/v1/a\",\"Flags\":42,\"Value\":\"eyJ4IjoxfQ==\","
    "\"CreateIndex\":15,\"ModifyIndex\":17},"
    "{\"LockIndex\":1,\"Key\":\"drover/v1/leader\",\"Flags\":0,\"Value\":null,"
    "\"Session\":\"3498caac-5bd9-36e8-d07b-c699a6046b7e\",\"CreateIndex\":18,\"ModifyIndex\":19}]";

START_TEST(test_kv_list)
{
    struct consul_kv_list *l = NULL;
    char err[256];
    ck_assert_int_eq(consul_parse_kv_list(S(kv_answer), &l, err, sizeof(err)), 0);
    ck_assert_uint_eq(l->n, 2);
    ck_assert_str_eq(l->items[0].key, "drover/v1/a");
    ck_assert_uint_eq(l->items[0].value_len, 7);
    ck_assert_str_eq((char *)l->items[0].value, "{\"x\":1}");
    ck_assert_uint_eq(l->items[0].flags, 42);
    ck_assert_uint_eq(l->items[0].create_index, 15);
    ck_assert_uint_eq(l->items[0].modify_index, 17);
    ck_assert_ptr_null(l->items[0].session);
    ck_assert_ptr_null(l->items[1].value);
    ck_assert_str_eq(l->items[1].session, "3498caac-5bd9-36e8-d07b-c699a6046b7e");
    ck_assert_uint_eq(l->items[1].lock_index, 1);
    consul_kv_list_free(l);
}
END_TEST

START_TEST(test_kv_errors_name_the_entry)
{
    struct consul_kv_list *l = NULL;
    char err[256];
    ck_assert_int_eq(consul_parse_kv_list(S("{\"Key\":\"a\"}"), &l, err, sizeof(err)), -EBADMSG);
    ck_assert_ptr_nonnull(strstr(err, "not a JSON array"));
    ck_assert_int_eq(
        consul_parse_kv_list(S("[{\"Key\":\"a\"},{\"Flags\":1}]"), &l, err, sizeof(err)), -EBADMSG);
    ck_assert_ptr_nonnull(strstr(err, "entry 1"));
    ck_assert_int_eq(
        consul_parse_kv_list(S("[{\"Key\":\"k/x\",\"Value\":\"a$==\"}]"), &l, err, sizeof(err)),
        -EBADMSG);
    ck_assert_ptr_nonnull(strstr(err, "k/x"));
    ck_assert_ptr_nonnull(strstr(err, "base64"));
    ck_assert_int_eq(
        consul_parse_kv_list(S("[{\"Key\":\"k\",\"ModifyIndex\":\"7\"}]"), &l, err, sizeof(err)),
        -EBADMSG);
    ck_assert_ptr_nonnull(strstr(err, "ModifyIndex"));
    ck_assert_int_eq(consul_parse_kv_list(S("[{\"Key\":"), &l, err, sizeof(err)), -EBADMSG);
    ck_assert_ptr_nonnull(strstr(err, "invalid JSON"));
    ck_assert_ptr_null(l);
}
END_TEST

/* What a watch does with each answer: entries whose JSON text is
 * unchanged are copied from the previous answer, the others parsed; the
 * result is always the whole parse's. */
START_TEST(test_kv_list_delta)
{
#define E_A "{\"Key\":\"p/a\",\"Flags\":0,\"Value\":\"YQ==\",\"ModifyIndex\":5}"
#define E_B "{\"Key\":\"p/b}{[\\\"\",\"Value\":\"Yg==\",\"ModifyIndex\":6}"
#define E_C "{\"Key\":\"p/c\",\"Value\":null,\"ModifyIndex\":7,\"Session\":\"s-1\"}"
    static const char first[] = "[" E_A "," E_B "," E_C "]";
    static const char second[] = " [ " E_A ",\n" E_B ",{\"Key\":\"p/c\",\"Value\":\"Yw==\","
                                 "\"ModifyIndex\":9},{\"Key\":\"p/d\",\"ModifyIndex\":9} ]\n";
    struct consul_kv_list *l1 = NULL, *l2 = NULL, *whole = NULL;
    struct consul_kv_text *t1 = NULL, *t2 = NULL;
    size_t reused = 9;
    char err[256];
    ck_assert_int_eq(consul_parse_kv_list_delta(first, strlen(first), NULL, NULL, &l1, &t1, &reused,
                                                err, sizeof(err)),
                     0);
    ck_assert_uint_eq(reused, 0);
    ck_assert_uint_eq(l1->n, 3);
    ck_assert_str_eq(l1->items[1].key, "p/b}{[\""); /* braces and escapes inside strings */
    ck_assert_str_eq(l1->items[2].session, "s-1");
    ck_assert_int_eq(consul_parse_kv_list_delta(second, strlen(second), l1, t1, &l2, &t2, &reused,
                                                err, sizeof(err)),
                     0);
    ck_assert_uint_eq(reused, 2); /* a and b; c changed, d is new */
    ck_assert_int_eq(consul_parse_kv_list(second, strlen(second), &whole, err, sizeof(err)), 0);
    ck_assert_uint_eq(l2->n, 4);
    ck_assert_uint_eq(consul_kv_list_hash(l2), consul_kv_list_hash(whole));
    for (size_t i = 0; i < 4; i++) {
        ck_assert_str_eq(l2->items[i].key, whole->items[i].key);
        ck_assert_uint_eq(l2->items[i].modify_index, whole->items[i].modify_index);
    }
    ck_assert_str_eq((char *)l2->items[2].value, "c");
    ck_assert_ptr_null(l2->items[2].session);
    /* a body that is not a plain array of objects: the whole parse's error */
    struct consul_kv_list *bad = NULL;
    struct consul_kv_text *tb = NULL;
    static const char broken[] = "[" E_A ",42]";
    ck_assert_int_eq(consul_parse_kv_list_delta(broken, strlen(broken), l2, t2, &bad, &tb, &reused,
                                                err, sizeof(err)),
                     -EBADMSG);
    ck_assert_ptr_nonnull(strstr(err, "entry 1"));
    static const char truncated[] = "[" E_A ",{\"Key\":\"p/x\"";
    ck_assert_int_eq(consul_parse_kv_list_delta(truncated, strlen(truncated), l2, t2, &bad, &tb,
                                                &reused, err, sizeof(err)),
                     -EBADMSG);
    /* an entry that splits but is no good JSON names its entry */
    static const char inner[] = "[" E_A ",{\"Key\":\"p/x\",}]";
    ck_assert_int_eq(consul_parse_kv_list_delta(inner, strlen(inner), l2, t2, &bad, &tb, &reused,
                                                err, sizeof(err)),
                     -EBADMSG);
    ck_assert_ptr_nonnull(strstr(err, "entry 1"));
    consul_kv_list_free(whole);
    consul_kv_list_free(l1);
    consul_kv_list_free(l2);
    consul_kv_text_free(t1);
    consul_kv_text_free(t2);
#undef E_A
#undef E_B
#undef E_C
}
END_TEST

START_TEST(test_base64)
{
    unsigned char *out;
    size_t len;
    ck_assert_int_eq(consul_base64_decode(S(""), &out, &len), 0);
    ck_assert_uint_eq(len, 0);
    free(out);
    ck_assert_int_eq(consul_base64_decode(S("YQ=="), &out, &len), 0);
    ck_assert_uint_eq(len, 1);
    ck_assert_str_eq((char *)out, "a");
    free(out);
    ck_assert_int_eq(consul_base64_decode(S("YWI="), &out, &len), 0);
    ck_assert_str_eq((char *)out, "ab");
    free(out);
    ck_assert_int_eq(consul_base64_decode(S("AAEC/w=="), &out, &len), 0);
    ck_assert_uint_eq(len, 4);
    ck_assert(out[0] == 0 && out[1] == 1 && out[2] == 2 && out[3] == 0xff);
    free(out);
    ck_assert_int_eq(consul_base64_decode(S("YQ="), &out, &len), -EBADMSG);  /* length */
    ck_assert_int_eq(consul_base64_decode(S("Y==="), &out, &len), -EBADMSG); /* pad pos */
    ck_assert_int_eq(consul_base64_decode(S("YQ==YQ=="), &out, &len), -EBADMSG);
    ck_assert_int_eq(consul_base64_decode(S("Y Q="), &out, &len), -EBADMSG);
}
END_TEST

START_TEST(test_keys_and_session_and_bool)
{
    struct consul_key_list *k = NULL;
    char err[256];
    ck_assert_int_eq(consul_parse_keys(S("[\"a/\",\"b\"]"), &k, err, sizeof(err)), 0);
    ck_assert_uint_eq(k->n, 2);
    ck_assert_str_eq(k->keys[0], "a/");
    consul_key_list_free(k);
    ck_assert_int_eq(consul_parse_keys(S("[\"a\",1]"), &k, err, sizeof(err)), -EBADMSG);
    ck_assert_ptr_nonnull(strstr(err, "keys entry 1: not a string"));

    char *id = NULL;
    ck_assert_int_eq(consul_parse_session_id(S("{\"ID\":\"abc\"}"), &id, err, sizeof(err)), 0);
    ck_assert_str_eq(id, "abc");
    free(id);
    ck_assert_int_eq(consul_parse_session_id(S("{\"ID\":5}"), &id, err, sizeof(err)), -EBADMSG);
    ck_assert_int_eq(consul_parse_session_id(S("{\"ID\":\"\"}"), &id, err, sizeof(err)), -EBADMSG);

    bool b;
    ck_assert_int_eq(consul_parse_bool(S("true"), &b), 0);
    ck_assert(b);
    ck_assert_int_eq(consul_parse_bool(S("false\n"), &b), 0);
    ck_assert(!b);
    ck_assert_int_eq(consul_parse_bool(S("yes"), &b), -EBADMSG);
}
END_TEST

START_TEST(test_index_header)
{
    uint64_t v;
    ck_assert_int_eq(consul_parse_index(S(" 12345\r\n"), &v), 0);
    ck_assert_uint_eq(v, 12345);
    ck_assert_int_eq(consul_parse_index(S("0"), &v), 0);
    ck_assert_uint_eq(v, 0);
    ck_assert_int_eq(consul_parse_index(S("18446744073709551615"), &v), 0);
    ck_assert_int_eq(consul_parse_index(S("18446744073709551616"), &v), -ERANGE);
    ck_assert_int_eq(consul_parse_index(S("-1"), &v), -EBADMSG);
    ck_assert_int_eq(consul_parse_index(S("  \r\n"), &v), -EBADMSG);
}
END_TEST

START_TEST(test_health)
{
    static const char body[] =
        "[{\"Node\":{\"Node\":\"n1\",\"Address\":\"10.0.0.1\"},"
        "\"Service\":{\"ID\":\"web1\",\"Service\":\"web\",\"Tags\":[\"a\",\"b\"],"
        "\"Address\":\"\",\"Port\":8080},"
        "\"Checks\":[{\"Status\":\"passing\"},{\"Status\":\"warning\"}]},"
        "{\"Node\":{\"Node\":\"n2\",\"Address\":\"10.0.0.2\"},"
        "\"Service\":{\"ID\":\"web2\",\"Service\":\"web\",\"Tags\":null,"
        "\"Address\":\"10.9.9.9\",\"Port\":8081},"
        "\"Checks\":[{\"Status\":\"critical\"},{\"Status\":\"passing\"}]}]";
    struct consul_health_list *l = NULL;
    char err[256];
    ck_assert_int_eq(consul_parse_health(S(body), &l, err, sizeof(err)), 0);
    ck_assert_uint_eq(l->n, 2);
    ck_assert_str_eq(l->items[0].node, "n1");
    ck_assert_str_eq(l->items[0].node_address, "10.0.0.1");
    ck_assert_str_eq(l->items[0].service_address, "");
    ck_assert_int_eq(l->items[0].port, 8080);
    ck_assert_uint_eq(l->items[0].n_tags, 2);
    ck_assert_str_eq(l->items[0].tags[1], "b");
    ck_assert_int_eq(l->items[0].status, CONSUL_HEALTH_WARNING);
    ck_assert_int_eq(l->items[1].status, CONSUL_HEALTH_CRITICAL);
    ck_assert_str_eq(l->items[1].service_address, "10.9.9.9");
    consul_health_list_free(l);
    ck_assert_int_eq(consul_parse_health(S("[{\"Node\":{\"Node\":\"n\"},\"Service\":{\"ID\":\"x\","
                                           "\"Service\":\"x\",\"Port\":70000}}]"),
                                         &l, err, sizeof(err)),
                     -EBADMSG);
    ck_assert_ptr_nonnull(strstr(err, "Service.Port"));
}
END_TEST

START_TEST(test_txn_answers)
{
    struct consul_txn_result r = {0};
    char err[256];
    ck_assert_int_eq(consul_parse_txn(S("{\"Results\":[{\"KV\":{\"Key\":\"t/a\",\"Value\":null,"
                                        "\"ModifyIndex\":20}}],\"Errors\":null}"),
                                      0, &r, err, sizeof(err)),
                     0);
    ck_assert_uint_eq(r.results.n, 1);
    ck_assert_str_eq(r.results.items[0].key, "t/a");
    /* a 409 of the second batch: op indexes are shifted by the batch base */
    ck_assert_int_eq(
        consul_parse_txn(S("{\"Results\":null,\"Errors\":[{\"OpIndex\":3,\"What\":\"index is "
                           "stale\"},{\"OpIndex\":7,\"What\":\"key doesn't exist\"}]}"),
                         64, &r, err, sizeof(err)),
        0);
    ck_assert_uint_eq(r.n_errors, 2);
    ck_assert_uint_eq(r.errors[0].op_index, 67);
    ck_assert_uint_eq(r.errors[1].op_index, 71);
    ck_assert_str_eq(r.errors[0].what, "index is stale");
    ck_assert_int_eq(
        consul_parse_txn(S("{\"Errors\":[{\"What\":\"x\"}]}"), 0, &r, err, sizeof(err)), -EBADMSG);
    ck_assert_ptr_nonnull(strstr(err, "OpIndex"));
    consul_txn_result_clear(&r);
    ck_assert_uint_eq(r.n_errors, 0);
}
END_TEST

START_TEST(test_txn_encode)
{
    struct consul_txn_op ops[CONSUL_TXN_MAX_OPS + 1];
    memset(ops, 0, sizeof(ops));
    for (size_t i = 0; i < CONSUL_TXN_MAX_OPS + 1; i++) {
        ops[i].verb = CONSUL_TXN_SET;
        ops[i].key = "k";
        ops[i].value = "ab";
        ops[i].value_len = 2;
    }
    ops[1] = (struct consul_txn_op){
        .verb = CONSUL_TXN_CAS, .key = "c", .value = "x", .value_len = 1, .index = 0, .flags = 9};
    ops[2] = (struct consul_txn_op){.verb = CONSUL_TXN_DELETE_TREE, .key = "p/"};
    ops[3] = (struct consul_txn_op){.verb = CONSUL_TXN_LOCK, .key = "l", .session = "s1"};
    char *out = NULL;
    ck_assert_int_eq(consul_txn_encode(ops, CONSUL_TXN_MAX_OPS + 1, &out), -EINVAL);
    ck_assert_int_eq(consul_txn_encode(ops, 0, &out), -EINVAL);
    ck_assert_int_eq(consul_txn_encode(ops, CONSUL_TXN_MAX_OPS, &out), 0);
    json_t *j = json_loads(out, 0, NULL);
    ck_assert_ptr_nonnull(j);
    ck_assert_uint_eq(json_array_size(j), CONSUL_TXN_MAX_OPS);
    json_t *kv0 = json_object_get(json_array_get(j, 0), "KV");
    ck_assert_str_eq(json_string_value(json_object_get(kv0, "Verb")), "set");
    ck_assert_str_eq(json_string_value(json_object_get(kv0, "Value")), "YWI=");
    json_t *kv1 = json_object_get(json_array_get(j, 1), "KV");
    ck_assert_str_eq(json_string_value(json_object_get(kv1, "Verb")), "cas");
    /* cas=0 (create only) must be sent explicitly */
    ck_assert_ptr_nonnull(json_object_get(kv1, "Index"));
    ck_assert_int_eq(json_integer_value(json_object_get(kv1, "Index")), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(kv1, "Flags")), 9);
    json_t *kv2 = json_object_get(json_array_get(j, 2), "KV");
    ck_assert_str_eq(json_string_value(json_object_get(kv2, "Verb")), "delete-tree");
    ck_assert_ptr_null(json_object_get(kv2, "Value"));
    json_t *kv3 = json_object_get(json_array_get(j, 3), "KV");
    ck_assert_str_eq(json_string_value(json_object_get(kv3, "Session")), "s1");
    json_decref(j);
    free(out);
    ops[0].session = NULL;
    ops[0].verb = CONSUL_TXN_UNLOCK; /* unlock without session */
    ck_assert_int_eq(consul_txn_encode(ops, 1, &out), -EINVAL);
}
END_TEST

/* The check verbs: check-session carries Key and Session only,
 * check-index its Index (0 included), check-not-exists the Key only. */
START_TEST(test_txn_encode_checks)
{
    struct consul_txn_op ops[] = {
        {.verb = CONSUL_TXN_CHECK_SESSION, .key = "R/leader", .session = "sess-1", .index = 7},
        {.verb = CONSUL_TXN_CHECK_INDEX, .key = "a", .index = 0},
        {.verb = CONSUL_TXN_CHECK_INDEX, .key = "b", .index = 42},
        {.verb = CONSUL_TXN_CHECK_NOT_EXISTS, .key = "c", .value = "x", .value_len = 1},
    };
    char *out = NULL;
    ck_assert_int_eq(consul_txn_encode(ops, 4, &out), 0);
    json_t *j = json_loads(out, 0, NULL);
    ck_assert_ptr_nonnull(j);
    ck_assert_uint_eq(json_array_size(j), 4);
    json_t *kv = json_object_get(json_array_get(j, 0), "KV");
    ck_assert_uint_eq(json_object_size(kv), 3);
    ck_assert_str_eq(json_string_value(json_object_get(kv, "Verb")), "check-session");
    ck_assert_str_eq(json_string_value(json_object_get(kv, "Key")), "R/leader");
    ck_assert_str_eq(json_string_value(json_object_get(kv, "Session")), "sess-1");
    kv = json_object_get(json_array_get(j, 1), "KV");
    ck_assert_uint_eq(json_object_size(kv), 3);
    ck_assert_str_eq(json_string_value(json_object_get(kv, "Verb")), "check-index");
    ck_assert_ptr_nonnull(json_object_get(kv, "Index"));
    ck_assert_int_eq(json_integer_value(json_object_get(kv, "Index")), 0);
    kv = json_object_get(json_array_get(j, 2), "KV");
    ck_assert_int_eq(json_integer_value(json_object_get(kv, "Index")), 42);
    kv = json_object_get(json_array_get(j, 3), "KV");
    ck_assert_uint_eq(json_object_size(kv), 2);
    ck_assert_str_eq(json_string_value(json_object_get(kv, "Verb")), "check-not-exists");
    ck_assert_str_eq(json_string_value(json_object_get(kv, "Key")), "c");
    json_decref(j);
    free(out);

    /* a session check without a session would check nothing */
    ops[0].session = NULL;
    ck_assert_int_eq(consul_txn_encode(ops, 1, &out), -EINVAL);
    ops[0].session = "";
    ck_assert_int_eq(consul_txn_encode(ops, 1, &out), -EINVAL);
}
END_TEST

START_TEST(test_hash_ignores_indexes_not_content)
{
    struct consul_kv_list *a, *b, *c;
    char err[128];
    ck_assert_int_eq(consul_parse_kv_list(S("[{\"Key\":\"k\",\"Value\":\"YQ==\",\"ModifyIndex\""
                                            ":5}]"),
                                          &a, err, sizeof(err)),
                     0);
    ck_assert_int_eq(consul_parse_kv_list(S("[{\"Key\":\"k\",\"Value\":\"YQ==\",\"ModifyIndex\""
                                            ":9}]"),
                                          &b, err, sizeof(err)),
                     0);
    ck_assert_int_eq(consul_parse_kv_list(S("[{\"Key\":\"k\",\"Value\":\"Yg==\",\"ModifyIndex\""
                                            ":9}]"),
                                          &c, err, sizeof(err)),
                     0);
    ck_assert_uint_eq(consul_kv_list_hash(a), consul_kv_list_hash(b));
    ck_assert_uint_ne(consul_kv_list_hash(a), consul_kv_list_hash(c));
    struct consul_kv_list empty = {0};
    ck_assert_uint_ne(consul_kv_list_hash(&empty), consul_kv_list_hash(a));
    consul_kv_list_free(a);
    consul_kv_list_free(b);
    consul_kv_list_free(c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("consul_parse");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_kv_list);
    tcase_add_test(tc, test_kv_errors_name_the_entry);
    tcase_add_test(tc, test_kv_list_delta);
    tcase_add_test(tc, test_base64);
    tcase_add_test(tc, test_keys_and_session_and_bool);
    tcase_add_test(tc, test_index_header);
    tcase_add_test(tc, test_health);
    tcase_add_test(tc, test_txn_answers);
    tcase_add_test(tc, test_txn_encode);
    tcase_add_test(tc, test_txn_encode_checks);
    tcase_add_test(tc, test_hash_ignores_indexes_not_content);
    suite_add_tcase(s, tc);
    return suite_main_run(s);
}
