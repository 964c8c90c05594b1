/* SPDX-License-Identifier: Apache-2.0 */
/* director_publish, the parts that need no BPF: the pin folder rule, the
 * rows-per-proxy count of a live generation, the error paths when no maps
 * are pinned (message names the directory, nothing is half-filled), and
 * the map layout of a table.
 * Publishing into real maps is covered by bpf_director and the director
 * integration tests. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "director_build.h"
#include "director_config.h"
#include "director_publish.h"
#include "drover_maps.h"
#include "../common/suite_main.h"

START_TEST(test_pin_dir_rule)
{
    char buf[64];

    ck_assert_int_eq(director_pin_dir(NULL, "eth0", buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, DIRECTOR_PIN_ROOT "/eth0");
    ck_assert_str_eq(buf, "/sys/fs/bpf/drover/eth0");
    ck_assert_int_eq(director_pin_dir("/run/drover/bpffs", "veth-a", buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, "/run/drover/bpffs/veth-a");
    /* a name that would leave the root, or none */
    ck_assert_int_eq(director_pin_dir(NULL, NULL, buf, sizeof(buf)), -EINVAL);
    ck_assert_int_eq(director_pin_dir(NULL, "", buf, sizeof(buf)), -EINVAL);
    ck_assert_int_eq(director_pin_dir(NULL, "a/b", buf, sizeof(buf)), -EINVAL);
    ck_assert_int_eq(director_pin_dir(NULL, "..", buf, sizeof(buf)), -EINVAL);
    ck_assert_int_eq(director_pin_dir(NULL, ".", buf, sizeof(buf)), -EINVAL);
    /* exactly fitting, one byte short */
    ck_assert_int_eq(director_pin_dir("/r", "abcd", buf, 8), 0);
    ck_assert_str_eq(buf, "/r/abcd");
    ck_assert_int_eq(director_pin_dir("/r", "abcde", buf, 8), -ENAMETOOLONG);
}
END_TEST

START_TEST(test_live_count)
{
    static struct director_live_row rows[DIRECTOR_TABLE_ROWS];
    struct director_live_proxy px[4];
    struct director_live l = {.proxies = px, .n_listed = 3};

    memset(px, 0, sizeof(px));
    for (uint32_t r = 0; r < DIRECTOR_TABLE_ROWS; r++) {
        rows[r].primary = r % 4; /* 3 is past n_listed: no proxy */
        rows[r].secondary = (r + 1) % 4;
    }
    rows[0].primary = DIRECTOR_TABLE_NONE;
    rows[0].secondary = DIRECTOR_TABLE_NONE;
    director_live_count(&l, rows);
    uint32_t quarter = DIRECTOR_TABLE_ROWS / 4;
    ck_assert_uint_eq(px[0].primary_rows, quarter - 1);
    ck_assert_uint_eq(px[1].primary_rows, quarter);
    ck_assert_uint_eq(px[2].primary_rows, quarter);
    ck_assert_uint_eq(px[3].primary_rows, 0); /* not listed: untouched */
    ck_assert_uint_eq(l.rows_without_proxy, quarter + 1);
    ck_assert_uint_eq(px[0].secondary_rows, quarter);
    ck_assert_uint_eq(px[1].secondary_rows, quarter - 1);
    ck_assert_uint_eq(px[2].secondary_rows, quarter);
    /* counting again starts from zero */
    director_live_count(&l, rows);
    ck_assert_uint_eq(px[1].primary_rows, quarter);
    ck_assert_uint_eq(l.rows_without_proxy, quarter + 1);
    /* nothing listed: every row is without a proxy */
    l.n_listed = 0;
    director_live_count(&l, rows);
    ck_assert_uint_eq(l.rows_without_proxy, DIRECTOR_TABLE_ROWS);
}
END_TEST

START_TEST(test_no_maps_pinned)
{
    const char *dir = "/nonexistent/drover-test-pins/eth9";
    struct director_publish_result res;
    struct director_live l;
    struct director_stat st[DIRECTOR_STATS_MAX];
    size_t n = 7;
    char err[512];

    struct director_publish_table p = {.gue_port = 19523};
    ck_assert_int_eq(director_publish_table(dir, &p, &res, err, sizeof(err)), -ENOENT);
    ck_assert_ptr_nonnull(strstr(err, dir));
    ck_assert_ptr_nonnull(strstr(err, "is drover-director attached?"));
    ck_assert(!res.have_generation && !res.gen_written && !res.vips_written);
    ck_assert_int_eq(director_live_read(dir, true, &l), -ENOENT);
    ck_assert_ptr_null(l.proxies);
    ck_assert_ptr_null(l.rows);
    /* -ENOENT as root; -EPERM where unprivileged bpf() is off */
    ck_assert_int_lt(director_stats_read_pinned(dir, false, st, &n), 0);
    ck_assert_uint_eq(n, 0);
}
END_TEST

static const char *CONFIG =
    "{\"hash_key\":\"00112233445566778899aabbccddeeff\",\"source_v4\":\"10.0.0.254\","
    "\"source_v6\":\"fd00::fe\",\"gateway_mac\":\"02:00:00:00:00:01\",\"vips\":[],"
    "\"proxies\":[{\"address\":\"10.0.0.3\",\"name\":\"c\"},"
    "{\"address\":\"fd00::1\",\"name\":\"a\",\"weight\":200},"
    "{\"address\":\"10.0.0.2\",\"name\":\"b\",\"state\":\"draining\"},"
    "{\"address\":\"10.0.0.9\",\"name\":\"d\",\"state\":\"filling\"}]}";

START_TEST(test_map_layout)
{
    struct director_config cfg;
    char err[256], a[64];
    static struct drover_row rows[DROVER_TABLE_ROWS];
    struct drover_proxy px[DROVER_MAX_PROXIES];
    struct director_table *t = NULL;

    ck_assert_int_eq(director_config_parse(CONFIG, strlen(CONFIG), "t", &cfg, err, sizeof(err)), 0);
    ck_assert_int_eq(director_build_from_config(&cfg, &t, err, sizeof(err)), 0);
    memset(px, 0xff, sizeof(px));
    director_publish_to_maps(t, px, rows);
    /* canonical (id) order: a, b, c, d; address, family and state kept */
    ck_assert_uint_eq(px[0].family, DROVER_AF_INET6);
    ck_assert_str_eq(director_format_addr(px[0].family, px[0].addr, a, sizeof(a)), "fd00::1");
    ck_assert_uint_eq(px[1].family, DROVER_AF_INET);
    ck_assert_str_eq(director_format_addr(px[1].family, px[1].addr, a, sizeof(a)), "10.0.0.2");
    ck_assert_uint_eq(px[1].addr[1], 0); /* IPv4: the other words are zero */
    ck_assert_uint_eq(px[1].state, DROVER_PROXY_DRAINING);
    ck_assert_uint_eq(px[3].state, DROVER_PROXY_FILLING);
    for (__u32 r = 0; r < DROVER_TABLE_ROWS; r++) {
        ck_assert_uint_eq(rows[r].primary, t->rows[r].primary);
        ck_assert_uint_eq(rows[r].secondary, t->rows[r].secondary);
        ck_assert_uint_eq(rows[r].reserved, 0);
    }
    director_table_free(t);
    director_config_free(&cfg);
}
END_TEST

START_TEST(test_names_default_to_addresses_and_empty_is_a_table)
{
    static struct drover_row rows[DROVER_TABLE_ROWS];
    struct drover_proxy px[4] = {0};
    const __u64 key[2] = {1, 2};
    __u8 fam;

    director_parse_addr("10.0.0.2", &fam, px[0].addr);
    director_parse_addr("10.0.0.1", &fam, px[1].addr);
    px[0].family = px[1].family = fam;
    px[0].state = px[1].state = DROVER_PROXY_ACTIVE;
    ck_assert_int_eq(director_publish_build_proxies(key, px, 2, rows), 0);
    /* sorted by address text: 10.0.0.1 first */
    char a[64];
    ck_assert_str_eq(director_format_addr(px[0].family, px[0].addr, a, sizeof(a)), "10.0.0.1");
    /* nothing live: all rows empty, still success */
    px[0].state = px[1].state = DROVER_PROXY_INACTIVE;
    ck_assert_int_eq(director_publish_build_proxies(key, px, 2, rows), 0);
    for (__u32 r = 0; r < DROVER_TABLE_ROWS; r++)
        ck_assert_uint_eq(rows[r].primary, DROVER_ROW_NONE);
    /* two live proxies on one address are refused */
    px[1] = px[0];
    px[0].state = px[1].state = DROVER_PROXY_ACTIVE;
    ck_assert_int_eq(director_publish_build_proxies(key, px, 2, rows), -EINVAL);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("director_publish");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_pin_dir_rule);
    tcase_add_test(tc, test_live_count);
    tcase_add_test(tc, test_no_maps_pinned);
    tcase_add_test(tc, test_map_layout);
    tcase_add_test(tc, test_names_default_to_addresses_and_empty_is_a_table);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return suite_main_run(suite());
}
