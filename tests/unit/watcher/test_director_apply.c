/* SPDX-License-Identifier: Apache-2.0 */
/* director_apply: table inputs, the moved-share guard, and the snapshot
 * round trip (the kernel part is covered by tests/integration/director). */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "director_apply.h"
#include "director_snapshot.h"
#include "fixture.h"
#include "log.h"

static void add(struct director_inputs *in, const char *key, const char *val)
{
    char err[256];
    ck_assert_msg(director_inputs_add_entry(in, key, val, strlen(val), err, sizeof(err)) == 0, "%s",
                  err);
}

static struct director_inputs *inputs(int n, int drain_index)
{
    char key[128], val[256];
    struct director_inputs *in = calloc(1, sizeof(*in));

    add(in, "config", "{\"hash_key\":\"00112233445566778899aabbccddeeff\"}");
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof(key), "proxies/proxy-%02d", i);
        snprintf(val, sizeof(val), "{\"address\":\"10.0.0.%d\",\"state\":\"%s\"}", i + 1,
                 i == drain_index ? "draining" : "active");
        add(in, key, val);
    }
    add(in, "vips/web", "{\"address\":\"192.0.2.1\",\"ports\":[80,443],\"protocol\":\"tcp\"}");
    director_inputs_finish(in);
    return in;
}

static struct director_table *build(const struct director_inputs *in, director_health_lookup_fn fn,
                                    void *arg)
{
    struct director_table *t = NULL;
    char err[256];
    int rc = director_apply_build(in, fn, arg, &t, err, sizeof(err));
    ck_assert_msg(rc == 0, "build: %d %s", rc, err);
    return t;
}

START_TEST(test_build_needs_config)
{
    struct director_inputs in = {0};
    struct director_table *t = (void *)1;
    char err[256];
    ck_assert_int_eq(director_apply_build(&in, NULL, NULL, &t, err, sizeof(err)), -ENODATA);
    ck_assert_ptr_null(t);
    ck_assert_ptr_nonnull(strstr(err, "hash_key"));
}
END_TEST

START_TEST(test_guard_small_change_passes)
{
    struct director_inputs *a = inputs(8, -1), *b = inputs(9, -1);
    struct director_table *ta = build(a, NULL, NULL), *tb = build(b, NULL, NULL);
    struct director_guard_result g;

    director_guard_check(ta, tb, 0.25, false, &g);
    /* adding one proxy to eight moves about 1/9 of the rows */
    ck_assert_msg(g.moved_share > 0.08 && g.moved_share < 0.15, "moved %f", g.moved_share);
    ck_assert(!g.over);
    ck_assert(!g.held);
    director_guard_check(NULL, tb, 0.0, false, &g); /* nothing to compare with */
    ck_assert(!g.held);
    ck_assert_uint_eq(g.moved_rows, 0);
    director_table_free(ta);
    director_table_free(tb);
    director_inputs_free(a);
    director_inputs_free(b);
}
END_TEST

START_TEST(test_guard_large_change_held_unless_forced)
{
    struct director_inputs *a = inputs(8, -1), *b = inputs(4, -1);
    struct director_table *ta = build(a, NULL, NULL), *tb = build(b, NULL, NULL);
    struct director_guard_result g;

    /* removing half of the proxies moves half of the rows */
    director_guard_check(ta, tb, 0.25, false, &g);
    ck_assert_msg(g.moved_share > 0.45 && g.moved_share < 0.56, "moved %f", g.moved_share);
    ck_assert(g.over);
    ck_assert(g.held);
    ck_assert_uint_eq(g.moved_rows, (uint32_t)(g.moved_share * DIRECTOR_TABLE_ROWS + 0.5));
    director_guard_check(ta, tb, 0.25, true, &g);
    ck_assert(g.over);
    ck_assert(!g.held);
    director_guard_check(ta, tb, 0.6, false, &g);
    ck_assert(!g.over);
    director_table_free(ta);
    director_table_free(tb);
    director_inputs_free(a);
    director_inputs_free(b);
}
END_TEST

START_TEST(test_drain_moves_primaries_only_of_that_proxy)
{
    struct director_inputs *a = inputs(4, -1), *b = inputs(4, 1);
    struct director_table *ta = build(a, NULL, NULL), *tb = build(b, NULL, NULL);
    struct director_guard_result g;
    int p1 = director_table_find(ta, "proxy-01");

    ck_assert_int_ge(p1, 0);
    director_guard_check(ta, tb, 1.0, false, &g);
    ck_assert_uint_eq(g.moved_rows, ta->proxies[p1].primary_rows);
    /* every row it was primary for keeps it as secondary (second chance) */
    int q1 = director_table_find(tb, "proxy-01");
    for (uint32_t r = 0; r < DIRECTOR_TABLE_ROWS; r++)
        if (ta->rows[r].primary == p1)
            ck_assert_uint_eq(tb->rows[r].secondary, q1);
    director_table_free(ta);
    director_table_free(tb);
    director_inputs_free(a);
    director_inputs_free(b);
}
END_TEST

static bool unhealthy_02(void *arg, const char *host)
{
    (void)arg;
    return strcmp(host, "proxy-02") != 0;
}

/* a director/ tree emptied or restored key by key: none of either after
 * some is held even when max_share allows everything; a share over
 * max_share is held; force lets it through; growing is never held */
START_TEST(test_shrink_guard)
{
    struct director_inputs *four = inputs(4, -1), *two = inputs(2, -1), *none = inputs(0, -1);
    struct director_inputs *novips = calloc(1, sizeof(*novips));
    struct director_guard_result g;

    add(novips, "config", "{\"hash_key\":\"00112233445566778899aabbccddeeff\"}");
    for (int i = 0; i < 4; i++) {
        char key[64], val[128];
        snprintf(key, sizeof(key), "proxies/proxy-%02d", i);
        snprintf(val, sizeof(val), "{\"address\":\"10.0.0.%d\",\"state\":\"active\"}", i + 1);
        add(novips, key, val);
    }
    director_inputs_finish(novips);

    memset(&g, 0, sizeof(g));
    director_guard_shrink(four, none, 1.0, false, &g);
    ck_assert(g.shrunk && g.held);
    ck_assert_uint_eq(g.base_proxies, 4);
    ck_assert_uint_eq(g.cand_proxies, 0);
    memset(&g, 0, sizeof(g));
    director_guard_shrink(four, novips, 1.0, false, &g);
    ck_assert(g.shrunk && g.held);
    ck_assert_uint_eq(g.base_vips, 2);
    ck_assert_uint_eq(g.cand_vips, 0);
    memset(&g, 0, sizeof(g));
    director_guard_shrink(four, two, 0.5, false, &g); /* half gone: allowed */
    ck_assert(!g.shrunk && !g.held);
    memset(&g, 0, sizeof(g));
    director_guard_shrink(four, two, 0.25, false, &g);
    ck_assert(g.shrunk && g.held);
    memset(&g, 0, sizeof(g));
    director_guard_shrink(four, none, 0.25, true, &g); /* forced */
    ck_assert(g.shrunk && g.over && !g.held);
    memset(&g, 0, sizeof(g));
    director_guard_shrink(two, four, 0.0, false, &g);
    ck_assert(!g.shrunk && !g.held);
    director_inputs_free(four);
    director_inputs_free(two);
    director_inputs_free(none);
    director_inputs_free(novips);
}
END_TEST

START_TEST(test_health_feeds_the_table)
{
    struct director_inputs *a = inputs(4, -1);
    struct director_table *t = build(a, unhealthy_02, NULL);
    int p2 = director_table_find(t, "proxy-02");

    ck_assert_int_ge(p2, 0);
    ck_assert(!t->proxies[p2].healthy);
    ck_assert_uint_eq(t->proxies[p2].primary_rows, 0);
    director_table_free(t);
    director_inputs_free(a);
}
END_TEST

START_TEST(test_snapshot_round_trip)
{
    char dir[] = "/tmp/drover-test-dsnap.XXXXXX", path[256], err[512];
    struct director_inputs *a = inputs(3, 2);
    struct director_saved s = {0}, r = {0};
    struct director_saved_proxy px[3] = {{true, 100, 200}, {false, 0, 5}, {true, 7, 8}};

    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/director.pb", dir);
    ck_assert_int_eq(director_snapshot_load(path, &r, err, sizeof(err)), -ENOENT);
    s.inputs = a;
    s.proxies = px;
    s.kv_root = "drover/v1/";
    s.cluster = "east";
    s.dev = "eth0";
    s.table_checksum = 0x1122334455667788ull;
    s.generation_checksum = 42;
    s.generation = 1;
    s.applied_unix = 1000;
    s.last_change_unix = 900;
    s.held = true;
    s.held_moved_share = 0.5;
    s.tier = "healthy-active";
    ck_assert_int_eq(director_snapshot_save(&s, path, err, sizeof(err)), 0);
    ck_assert_int_eq(director_snapshot_load(path, &r, err, sizeof(err)), 0);
    ck_assert_uint_eq(r.inputs->hash, a->hash); /* same inputs, bit for bit */
    ck_assert_uint_eq(r.inputs->config.hash_key[0], a->config.hash_key[0]);
    ck_assert_uint_eq(r.inputs->n_vips, 1);
    ck_assert_uint_eq(r.inputs->vips[0].n_ports, 2);
    ck_assert(!r.proxies[1].healthy);
    ck_assert_uint_eq(r.proxies[0].secondary_rows, 200);
    ck_assert_uint_eq(r.table_checksum, s.table_checksum);
    ck_assert_str_eq(r.cluster, "east");
    ck_assert(r.held);
    ck_assert(r.held_moved_share == 0.5);
    ck_assert_int_eq(r.last_change_unix, 900);
    director_saved_clear(&r);
    /* a corrupt file is refused, not half-loaded */
    FILE *f = fopen(path, "w");
    fputs("\xff\xff\xff garbage", f);
    fclose(f);
    ck_assert_int_eq(director_snapshot_load(path, &r, err, sizeof(err)), -EBADMSG);
    unlink(path);
    rmdir(dir);
    director_inputs_free(a);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("director_apply");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_build_needs_config);
    tcase_add_test(tc, test_guard_small_change_passes);
    tcase_add_test(tc, test_guard_large_change_held_unless_forced);
    tcase_add_test(tc, test_drain_moves_primaries_only_of_that_proxy);
    tcase_add_test(tc, test_shrink_guard);
    tcase_add_test(tc, test_health_feeds_the_table);
    tcase_add_test(tc, test_snapshot_round_trip);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return fixture_run_quiet(suite());
}
