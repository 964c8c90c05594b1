/* SPDX-License-Identifier: Apache-2.0 */
/* director_config (JSON parser) and drover_hash (SipHash-1-3) unit tests. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "director_config.h"
#include "drover_hash.h"
#include "log.h"
#include "../common/suite_main.h"

#define BASE_HEAD                                                                                  \
    "{\"hash_key\": \"000102030405060708090a0b0c0d0e0f\", \"gateway_mac\": \"02:00:00:00:00:01\","

static int parse(const char *text, struct director_config *c, char *err)
{
    return director_config_parse(text, strlen(text), "t.json", c, err, 256);
}

START_TEST(test_valid_config)
{
    struct director_config c;
    char err[256] = "";
    const char *text = BASE_HEAD
        "\"source_v4\": \"192.0.2.1\", \"source_v6\": \"2001:db8::1\", \"hash_fields\": "
        "\"5tuple\", \"gue_port\": 6080, \"egress\": \"eth1\","
        "\"vips\": [{\"address\": \"198.51.100.1\", \"port\": 80},"
        "           {\"address\": \"2001:db8::80\", \"port\": 53, \"protocol\": \"udp\"}],"
        "\"proxies\": [{\"address\": \"192.0.2.10\"},"
        "              {\"address\": \"2001:db8::10\", \"state\": \"draining\"}],"
        "\"unknown_field\": true}";

    ck_assert_int_eq(parse(text, &c, err), 0);
    ck_assert_uint_eq(c.hash_key[0], 0x0706050403020100ULL);
    ck_assert_uint_eq(c.hash_key[1], 0x0f0e0d0c0b0a0908ULL);
    ck_assert_uint_eq(c.hash_fields, DROVER_HASH_5TUPLE);
    ck_assert_uint_eq(c.gue_port, 6080);
    ck_assert_str_eq(c.egress, "eth1");
    ck_assert_uint_eq(c.n_vips, 2);
    ck_assert_uint_eq(c.vips[0].family, DROVER_AF_INET);
    ck_assert_uint_eq(c.vips[0].port, htons(80));
    ck_assert_uint_eq(c.vips[0].proto, 6);
    ck_assert_uint_eq(c.vips[1].family, DROVER_AF_INET6);
    ck_assert_uint_eq(c.vips[1].proto, 17);
    ck_assert_uint_eq(c.n_proxies, 2);
    ck_assert_uint_eq(c.proxies[0].state, DROVER_PROXY_ACTIVE);
    ck_assert_uint_eq(c.proxies[1].state, DROVER_PROXY_DRAINING);
    ck_assert_uint_eq(c.gw_mac[5], 1);
    director_config_free(&c);
}
END_TEST

START_TEST(test_defaults)
{
    struct director_config c;
    char err[256];
    ck_assert_int_eq(parse(BASE_HEAD "\"vips\": [], \"proxies\": []}", &c, err), 0);
    ck_assert_uint_eq(c.gue_port, DROVER_GUE_PORT_DEFAULT);
    ck_assert_uint_eq(c.hash_fields, DROVER_HASH_SRC);
    ck_assert_str_eq(c.egress, "");
    director_config_free(&c);
}
END_TEST

/* Each bad input is rejected with a message naming the field. */
START_TEST(test_errors_name_the_field)
{
    static const struct {
        const char *text, *needle;
    } bad[] = {
        {"{\"gateway_mac\": \"02:00:00:00:00:01\", \"vips\": [], \"proxies\": []}", "hash_key"},
        {"{\"hash_key\": \"00\", \"gateway_mac\": \"02:00:00:00:00:01\", \"vips\": [], "
         "\"proxies\": []}",
         "hash_key"},
        {"{\"hash_key\": \"00000000000000000000000000000000\", \"gateway_mac\": "
         "\"02:00:00:00:00:01\", \"vips\": [], \"proxies\": []}",
         "all zero"},
        {"{\"hash_key\": \"000102030405060708090a0b0c0d0e0g\", \"gateway_mac\": "
         "\"02:00:00:00:00:01\", \"vips\": [], \"proxies\": []}",
         "hash_key"},
        {BASE_HEAD "\"vips\": [{\"address\": \"1.2.3.4\", \"port\": 1}, {\"address\": \"x\", "
                   "\"port\": 1}], \"proxies\": []}",
         "vips[1].address"},
        {BASE_HEAD "\"vips\": [{\"address\": \"1.2.3.4\", \"port\": 70000}], \"proxies\": []}",
         "vips[0].port"},
        {BASE_HEAD "\"vips\": [{\"address\": \"1.2.3.4\", \"port\": 1, \"protocol\": \"sctp\"}], "
                   "\"proxies\": []}",
         "vips[0].protocol"},
        {BASE_HEAD "\"vips\": [{\"address\": \"1.2.3.4\", \"port\": 1}, {\"address\": "
                   "\"1.2.3.4\", \"port\": 1}], \"proxies\": []}",
         "duplicate"},
        {BASE_HEAD "\"vips\": [], \"proxies\": [{\"address\": \"2001:db8::1\"}]}", "source_v6"},
        {BASE_HEAD "\"source_v4\": \"1.1.1.1\", \"vips\": [], \"proxies\": [{\"address\": "
                   "\"10.0.0.1\", \"state\": \"up\"}]}",
         "proxies[0].state"},
        {BASE_HEAD "\"vips\": [], \"proxies\": [], \"gue_port\": \"x\"}", "gue_port"},
        {BASE_HEAD "\"vips\": [], \"proxies\": [], \"hash_fields\": \"dst\"}", "hash_fields"},
        {BASE_HEAD "\"vips\": [], \"proxies\": [], \"source_v4\": \"2001:db8::1\"}", "source_v4"},
        {"{\"hash_key\": \"000102030405060708090a0b0c0d0e0f\", \"gateway_mac\": \"02:00\", "
         "\"vips\": [], \"proxies\": []}",
         "gateway_mac"},
        {BASE_HEAD "\"vips\": {}, \"proxies\": []}", "vips"},
        {BASE_HEAD "\"vips\": [], \"proxies\": [7]}", "proxies[0]"},
        {"[1, 2]", "top level"},
        {"{\"hash_key\": ", "t.json"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct director_config c;
        char err[256] = "";
        ck_assert_msg(parse(bad[i].text, &c, err) < 0, "case %zu accepted", i);
        ck_assert_msg(strstr(err, bad[i].needle) != NULL, "case %zu: '%s' lacks '%s'", i, err,
                      bad[i].needle);
    }
}
END_TEST

START_TEST(test_load_missing_file)
{
    struct director_config c;
    char err[256];
    ck_assert_int_eq(director_config_load("/nonexistent/director.json", &c, err, sizeof(err)),
                     -ENOENT);
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent/director.json"));
}
END_TEST

/* Reference values: CPython's bytes hash is SipHash-1-3, and with
 * PYTHONHASHSEED=0 its key is all zero. hash(bytes(range(n))). */
START_TEST(test_siphash13_reference)
{
    const __u64 key[2] = {0, 0};
    __u64 m[6];
    for (int w = 0; w < 6; w++) {
        m[w] = 0;
        for (int b = 7; b >= 0; b--)
            m[w] = m[w] << 8 | (__u64)(w * 8 + b);
    }
    ck_assert_uint_eq(drover_siphash13(key, m, 1, 0, 8), 0xead411e67ebe2eeaULL);
    ck_assert_uint_eq(drover_siphash13(key, m, 2, 0, 16), 0x8972188433a5c5b7ULL);
    ck_assert_uint_eq(drover_siphash13(key, m, 5, 0, 40), 0x95bc321ab41d8206ULL);
    /* partial last blocks: 6 = 0 words + 6 bytes, 20 = 2 words + 4, 37 = 4 + 5 */
    ck_assert_uint_eq(drover_siphash13(key, m, 0, m[0] & 0xffffffffffffULL, 6),
                      0xe3c25f87624f1cdbULL);
    ck_assert_uint_eq(drover_siphash13(key, m, 2, m[2] & 0xffffffffULL, 20), 0x639e355ae68c0100ULL);
    ck_assert_uint_eq(drover_siphash13(key, m, 4, m[4] & 0xffffffffffULL, 37),
                      0x422a9751192ff266ULL);
}
END_TEST

START_TEST(test_flow_hash_fields)
{
    const __u64 key[2] = {0x1234, 0x5678};
    struct drover_flow a = {.family = DROVER_AF_INET, .proto = 6}, b;
    a.src[0] = 0x0100000a;
    a.dst[0] = 0x010000c0;
    a.sport = htons(1000);
    a.dport = htons(80);
    b = a;
    b.dport = htons(443);
    b.dst[0] = 0x020000c0;
    /* source only: destination does not matter */
    ck_assert_uint_eq(drover_flow_hash(key, &a, DROVER_HASH_SRC),
                      drover_flow_hash(key, &b, DROVER_HASH_SRC));
    ck_assert_uint_ne(drover_flow_hash(key, &a, DROVER_HASH_SRC_DPORT),
                      drover_flow_hash(key, &b, DROVER_HASH_SRC_DPORT));
    ck_assert_uint_ne(drover_flow_hash(key, &a, DROVER_HASH_5TUPLE),
                      drover_flow_hash(key, &b, DROVER_HASH_5TUPLE));
    /* the key matters */
    const __u64 other[2] = {0x1234, 0x5679};
    ck_assert_uint_ne(drover_flow_hash(key, &a, DROVER_HASH_SRC),
                      drover_flow_hash(other, &a, DROVER_HASH_SRC));
    ck_assert_uint_ge(drover_hash_sport(drover_flow_hash(key, &a, 0)), DROVER_GUE_SPORT_BASE);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("director_config");
    TCase *tc = tcase_create("core");
    log_set_level(LOGL_ERROR);
    tcase_add_test(tc, test_valid_config);
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_errors_name_the_field);
    tcase_add_test(tc, test_load_missing_file);
    tcase_add_test(tc, test_siphash13_reference);
    tcase_add_test(tc, test_flow_hash_fields);
    suite_add_tcase(s, tc);
    return suite_main_run(s);
}
