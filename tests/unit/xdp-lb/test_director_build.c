/* SPDX-License-Identifier: Apache-2.0 */
/* director_build: the standalone config path and the input path (the
 * watcher's) give the same table; seed from the hash key. (The map layout
 * is director_publish's: test_director_publish.c.) */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "director_build.h"
#include "director_config.h"
#include "../common/suite_main.h"

static const char *CONFIG =
    "{\"hash_key\":\"00112233445566778899aabbccddeeff\",\"source_v4\":\"10.0.0.254\","
    "\"source_v6\":\"fd00::fe\",\"gateway_mac\":\"02:00:00:00:00:01\",\"vips\":[],"
    "\"proxies\":[{\"address\":\"10.0.0.3\",\"name\":\"c\"},"
    "{\"address\":\"fd00::1\",\"name\":\"a\",\"weight\":200},"
    "{\"address\":\"10.0.0.2\",\"name\":\"b\",\"state\":\"draining\"},"
    "{\"address\":\"10.0.0.9\",\"name\":\"d\",\"state\":\"filling\"}]}";

START_TEST(test_seed_is_the_key_bytes)
{
    const __u64 key[2] = {0x7766554433221100ull, 0xffeeddccbbaa9988ull};
    uint8_t seed[16];
    director_build_seed(key, seed);
    for (int i = 0; i < 16; i++)
        ck_assert_uint_eq(seed[i], (uint8_t)(0x11 * i));
}
END_TEST

START_TEST(test_config_path_equals_input_path)
{
    struct director_config cfg;
    char err[256];
    struct director_table *t = NULL, *u = NULL;

    ck_assert_int_eq(director_config_parse(CONFIG, strlen(CONFIG), "t", &cfg, err, sizeof(err)), 0);
    ck_assert_int_eq(director_build_from_config(&cfg, &t, err, sizeof(err)), 0);
    ck_assert_uint_eq(t->proxy_count, 4);
    /* what the watcher hands in for the same proxies (in another order) */
    const struct director_proxy_input in[4] = {
        {.id = "d", .address = "10.0.0.9", .state = DIRECTOR_PROXY_FILLING, .healthy = true},
        {.id = "b", .address = "10.0.0.2", .state = DIRECTOR_PROXY_DRAINING, .healthy = true},
        {.id = "a",
         .address = "fd00::1",
         .state = DIRECTOR_PROXY_ACTIVE,
         .healthy = true,
         .weight = 200},
        {.id = "c", .address = "10.0.0.3", .state = DIRECTOR_PROXY_ACTIVE, .healthy = true},
    };
    ck_assert_int_eq(director_build_table(cfg.hash_key, in, 4, &u, err, sizeof(err)), 0);
    ck_assert_uint_eq(t->checksum, u->checksum);
    ck_assert_int_eq(memcmp(t->rows, u->rows, DIRECTOR_TABLE_ROWS * sizeof(*t->rows)), 0);
    /* canonical (id) order, states kept; only active proxies are
     * primaries here (a, c) */
    ck_assert_str_eq(t->proxies[0].id, "a");
    ck_assert_int_eq(t->proxies[1].state, DIRECTOR_PROXY_DRAINING);
    ck_assert_int_eq(t->proxies[3].state, DIRECTOR_PROXY_FILLING);
    for (__u32 r = 0; r < DIRECTOR_TABLE_ROWS; r++)
        ck_assert(t->rows[r].primary == 0 || t->rows[r].primary == 2);
    director_table_free(t);
    director_table_free(u);
    director_config_free(&cfg);
}
END_TEST

START_TEST(test_empty_config_is_a_table)
{
    struct director_config cfg = {.hash_key = {1, 2}};
    struct director_table *t = NULL;
    char err[256];

    ck_assert_int_eq(director_build_from_config(&cfg, &t, err, sizeof(err)), 0);
    ck_assert_ptr_nonnull(t);
    ck_assert_uint_eq(t->proxy_count, 0);
    for (__u32 r = 0; r < DIRECTOR_TABLE_ROWS; r++)
        ck_assert_uint_eq(t->rows[r].primary, DIRECTOR_TABLE_NONE);
    director_table_free(t);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("director_build");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_seed_is_the_key_bytes);
    tcase_add_test(tc, test_config_path_equals_input_path);
    tcase_add_test(tc, test_empty_config_is_a_table);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return suite_main_run(suite());
}
