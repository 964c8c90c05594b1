/* SPDX-License-Identifier: Apache-2.0 */
/* director_feed: KV entries under director/<cluster>/ -> director_inputs. */
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "director_feed.h"
#include "fixture.h"
#include "log.h"

#define PFX "drover/v1/director/east/"

struct kvb {
    struct consul_kv items[32];
    struct consul_kv_list list;
};

static void kv_add(struct kvb *b, const char *rel, const char *value)
{
    struct consul_kv *e = &b->items[b->list.n++];
    memset(e, 0, sizeof(*e));
    if (asprintf(&e->key, "%s%s", PFX, rel) < 0)
        abort();
    e->value = value ? (unsigned char *)strdup(value) : NULL;
    e->value_len = value ? strlen(value) : 0;
    b->list.items = b->items;
}

static void kv_free(struct kvb *b)
{
    for (size_t i = 0; i < b->list.n; i++) {
        free(b->items[i].key);
        free(b->items[i].value);
    }
    b->list.n = 0;
}

static struct director_inputs *parse(struct kvb *b, const struct director_inputs *prev,
                                     unsigned *bad)
{
    struct director_inputs *in = NULL;
    ck_assert_int_eq(director_inputs_parse(&b->list, PFX, prev, &in, bad), 0);
    return in;
}

static const char *CONFIG = "{\"hash_key\":\"000102030405060708090a0b0c0d0e0f\","
                            "\"gue_port\":6080,\"hash_fields\":\"src+dport\","
                            "\"max_moved_share\":0.25}";

START_TEST(test_full_parse)
{
    struct kvb b = {0};
    unsigned bad = 99;
    kv_add(&b, "config", CONFIG);
    kv_add(&b, "proxies/p2", "{\"address\":\"10.0.0.2\",\"state\":\"filling\"}");
    kv_add(&b, "proxies/p1",
           "{\"address\":\"10.0.0.1\",\"state\":\"active\",\"weight\":50,"
           "\"health\":{\"port\":8080,\"path\":\"/hc\"},\"unknown\":1}");
    kv_add(&b, "proxies/", NULL); /* folder key */
    kv_add(&b, "vips/web",
           "{\"address\":\"2001:db8:0::1\",\"ports\":[80,443],\"protocol\":\"tcp\"}");
    kv_add(&b, "force",
           "{\"expires\":\"2026-11-23T15:00:00Z\",\"author\":\"al\",\"reason\":\"x\"}");
    kv_add(&b, "other/thing", "garbage");
    struct director_inputs *in = parse(&b, NULL, &bad);
    ck_assert_uint_eq(bad, 0);
    ck_assert_uint_eq(in->n_proxies, 2);
    ck_assert_str_eq(in->proxies[0].host, "p1"); /* sorted */
    ck_assert_int_eq(in->proxies[0].state, DIRECTOR_PROXY_ACTIVE);
    ck_assert_uint_eq(in->proxies[0].weight, 50);
    ck_assert_uint_eq(in->proxies[0].health_port, 8080);
    ck_assert_str_eq(in->proxies[0].health_path, "/hc");
    ck_assert_int_eq(in->proxies[1].state, DIRECTOR_PROXY_FILLING);
    ck_assert_ptr_null(in->proxies[1].health_path);
    ck_assert_uint_eq(in->n_vips, 1);
    ck_assert_str_eq(in->vips[0].address, "2001:db8::1"); /* canonical */
    ck_assert_uint_eq(in->vips[0].n_ports, 2);
    ck_assert_uint_eq(in->vips[0].protocol, IPPROTO_TCP);
    ck_assert(in->config.present);
    ck_assert_uint_eq(in->config.gue_port, 6080);
    ck_assert_uint_eq(in->config.hash_key[0], 0x0706050403020100ull);
    ck_assert_uint_eq(in->config.hash_key[1], 0x0f0e0d0c0b0a0908ull);
    ck_assert(in->config.has_max_moved_share);
    ck_assert(in->config.max_moved_share == 0.25);
    ck_assert(in->force.present);
    ck_assert(director_force_active(&in->force, 1795000000 - 100000));
    ck_assert(!director_force_active(&in->force, 1795446001));
    director_inputs_free(in);
    kv_free(&b);
}
END_TEST

START_TEST(test_bad_entries_skipped_and_counted)
{
    static const char *bad_proxies[] = {
        "{\"address\":\"10.0.0.300\",\"state\":\"active\"}",
        "{\"address\":\"10.0.0.3\",\"state\":\"sleeping\"}",
        "{\"address\":\"10.0.0.3\"}",
        "{\"address\":\"10.0.0.3\",\"state\":\"active\",\"weight\":0}",
        "{\"address\":\"10.0.0.3\",\"state\":\"active\",\"weight\":\"5\"}",
        "{\"address\":\"10.0.0.3\",\"state\":\"active\",\"health\":{\"port\":70000}}",
        "{\"address\":\"10.0.0.3\",\"state\":\"active\",\"health\":{\"path\":\"no-slash\"}}",
        "[1,2]",
        "not json",
        "",
    };
    for (size_t i = 0; i < sizeof(bad_proxies) / sizeof(*bad_proxies); i++) {
        struct kvb b = {0};
        unsigned bad = 0;
        kv_add(&b, "config", CONFIG);
        kv_add(&b, "proxies/good", "{\"address\":\"10.0.0.1\",\"state\":\"active\"}");
        kv_add(&b, "proxies/bad", bad_proxies[i]);
        struct director_inputs *in = parse(&b, NULL, &bad);
        ck_assert_msg(bad == 1, "case %zu: bad=%u", i, bad);
        ck_assert_uint_eq(in->n_proxies, 1);
        ck_assert_str_eq(in->proxies[0].host, "good");
        director_inputs_free(in);
        kv_free(&b);
    }
    static const char *bad_other[][2] = {
        {"vips/v", "{\"address\":\"10.1.1.1\",\"ports\":[],\"protocol\":\"tcp\"}"},
        {"vips/v", "{\"address\":\"10.1.1.1\",\"ports\":[80,80],\"protocol\":\"tcp\"}"},
        {"vips/v", "{\"address\":\"10.1.1.1\",\"ports\":[0],\"protocol\":\"tcp\"}"},
        {"vips/v", "{\"address\":\"10.1.1.1\",\"ports\":[80],\"protocol\":\"sctp\"}"},
        {"config", "{\"hash_key\":\"0011\"}"},
        {"config", "{\"hash_key\":\"000102030405060708090a0b0c0d0e0f\",\"max_moved_share\":2}"},
        {"config", "{\"hash_key\":\"000102030405060708090a0b0c0d0e0f\",\"hash_fields\":\"x\"}"},
        {"force", "{\"expires\":\"tomorrow\"}"},
    };
    for (size_t i = 0; i < sizeof(bad_other) / sizeof(*bad_other); i++) {
        struct kvb b = {0};
        unsigned bad = 0;
        kv_add(&b, bad_other[i][0], bad_other[i][1]);
        struct director_inputs *in = parse(&b, NULL, &bad);
        ck_assert_msg(bad == 1, "other case %zu: bad=%u", i, bad);
        ck_assert_uint_eq(in->n_vips, 0);
        ck_assert(!in->config.present);
        ck_assert(!in->force.present);
        director_inputs_free(in);
        kv_free(&b);
    }
}
END_TEST

START_TEST(test_bad_update_keeps_last_good)
{
    struct kvb b = {0};
    unsigned bad = 0;
    kv_add(&b, "config", CONFIG);
    kv_add(&b, "proxies/p1", "{\"address\":\"10.0.0.1\",\"state\":\"active\"}");
    kv_add(&b, "vips/web", "{\"address\":\"10.9.9.9\",\"ports\":[80],\"protocol\":\"udp\"}");
    struct director_inputs *good = parse(&b, NULL, &bad);
    kv_free(&b);
    kv_add(&b, "config", "{\"hash_key\":\"zz\"}");
    kv_add(&b, "proxies/p1", "{\"address\":\"10.0.0.1\",\"state\":\"bogus\"}");
    kv_add(&b, "proxies/p9", "{\"address\":\"bogus\",\"state\":\"active\"}");
    kv_add(&b, "vips/web", "{}");
    struct director_inputs *in = parse(&b, good, &bad);
    ck_assert_uint_eq(bad, 4);
    ck_assert_uint_eq(in->n_proxies, 1); /* p1 kept, p9 never was good */
    ck_assert_str_eq(in->proxies[0].address, "10.0.0.1");
    ck_assert_int_eq(in->proxies[0].state, DIRECTOR_PROXY_ACTIVE);
    ck_assert_uint_eq(in->n_vips, 1);
    ck_assert(in->config.present);
    ck_assert_uint_eq(in->hash, good->hash); /* nothing changed in effect */
    director_inputs_free(in);
    director_inputs_free(good);
    kv_free(&b);
}
END_TEST

START_TEST(test_duplicate_live_address)
{
    struct kvb b = {0};
    unsigned bad = 0;
    kv_add(&b, "proxies/b", "{\"address\":\"10.0.0.1\",\"state\":\"active\"}");
    kv_add(&b, "proxies/a", "{\"address\":\"10.0.0.1\",\"state\":\"draining\"}");
    kv_add(&b, "proxies/c", "{\"address\":\"10.0.0.1\",\"state\":\"inactive\"}");
    struct director_inputs *in = parse(&b, NULL, &bad);
    ck_assert_uint_eq(bad, 1);
    ck_assert_uint_eq(in->n_proxies, 2); /* "a" wins (host order), inactive "c" harmless */
    ck_assert_str_eq(in->proxies[0].host, "a");
    ck_assert_str_eq(in->proxies[1].host, "c");
    director_inputs_free(in);
    kv_free(&b);
}
END_TEST

START_TEST(test_hash_order_independent_and_dup)
{
    struct kvb a = {0}, b = {0};
    kv_add(&a, "config", CONFIG);
    kv_add(&a, "proxies/x", "{\"address\":\"10.0.0.1\",\"state\":\"active\"}");
    kv_add(&a, "proxies/y", "{\"address\":\"10.0.0.2\",\"state\":\"active\"}");
    kv_add(&b, "proxies/y", "{\"state\":\"active\",\"address\":\"10.0.0.2\"}");
    kv_add(&b, "proxies/x", "{\"address\":\"10.0.0.1\",\"state\":\"active\"}");
    kv_add(&b, "config", CONFIG);
    struct director_inputs *ia = parse(&a, NULL, NULL), *ib = parse(&b, NULL, NULL);
    ck_assert_uint_eq(ia->hash, ib->hash);
    struct director_inputs *d = director_inputs_dup(ia);
    ck_assert_ptr_nonnull(d);
    ck_assert_uint_eq(d->hash, ia->hash);
    ck_assert_str_eq(d->proxies[1].host, "y");
    /* a state change changes the hash */
    kv_free(&b);
    kv_add(&b, "config", CONFIG);
    kv_add(&b, "proxies/x", "{\"address\":\"10.0.0.1\",\"state\":\"draining\"}");
    kv_add(&b, "proxies/y", "{\"address\":\"10.0.0.2\",\"state\":\"active\"}");
    struct director_inputs *ic = parse(&b, NULL, NULL);
    ck_assert_uint_ne(ic->hash, ia->hash);
    director_inputs_free(ia);
    director_inputs_free(ib);
    director_inputs_free(ic);
    director_inputs_free(d);
    kv_free(&a);
    kv_free(&b);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("director_feed");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_full_parse);
    tcase_add_test(tc, test_bad_entries_skipped_and_counted);
    tcase_add_test(tc, test_bad_update_keeps_last_good);
    tcase_add_test(tc, test_duplicate_live_address);
    tcase_add_test(tc, test_hash_order_independent_and_dup);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return fixture_run_quiet(suite());
}
