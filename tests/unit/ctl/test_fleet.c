/* SPDX-License-Identifier: Apache-2.0 */
/* fleet: the fleet view of `droverctl status` from status entries and live
 * definitions (no Consul): every host and service state, guards, bad
 * entries, directors that disagree, and the fleet's verdict. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fleet.h"
#include "json_util.h"
#include "kv_kube.h"
#include "../common/suite_main.h"

#define R "drover/v1/"

struct kvs {
    struct consul_kv items[16];
    struct consul_kv_list l;
};

static void put(struct kvs *k, const char *key, const char *value)
{
    struct consul_kv *e = &k->items[k->l.n++];
    e->key = (char *)key;
    e->value = (unsigned char *)value;
    e->value_len = strlen(value);
    k->l.items = k->items;
}

static const char *DEF_WEB =
    "{\"template\":\"http\",\"frontends\":[{\"name\":\"fe\",\"bind\":["
    "\"127.0.0.1:80\"],\"default_backend\":\"be\"}],\"backends\":[{"
    "\"name\":\"be\",\"servers\":[{\"name\":\"s\",\"address\":\"10.0.0.1\","
    "\"port\":80}]}]}";

/* A haproxy status entry for host with service web at definition def. */
static char *haproxy_entry(const char *host, const char *def, const char *extra)
{
    char *out = NULL;
    if (asprintf(&out,
                 "{\"host\":\"%s\",\"role\":\"haproxy\",\"cluster\":\"edge\",\"version\":\"0.1.0\","
                 "\"started\":\"2026-11-23T13:00:00Z\",\"updated\":\"2026-11-23T13:00:00Z\","
                 "\"kv_index\":5,\"snapshot\":\"\",\"guards\":[%s],\"services\":{\"web\":{"
                 "\"definition\":\"%s\",\"config_hash\":\"00\",\"reloads\":1%s}}}",
                 host, strcmp(host, "g") == 0 ? "\"removal:be\"" : "", def, extra) < 0)
        abort();
    return out;
}

static json_t *host(json_t *view, const char *name)
{
    size_t i;
    json_t *h;
    json_array_foreach(
        json_object_get(view, "hosts"), i,
        h) if (!strcmp(json_string_value(json_object_get(h, "host")), name)) return h;
    ck_abort_msg("host %s not in the view", name);
    return NULL;
}

static const char *str(json_t *o, const char *path)
{
    return json_string_value(json_path_get(o, path));
}

START_TEST(test_states)
{
    char live[17];
    kv_hash64_hex(DEF_WEB, strlen(DEF_WEB), live);
    struct kvs st = {0}, defs = {0};
    char *ok = haproxy_entry("a", live, ""), *behind = haproxy_entry("b", "0123456789abcdef", "");
    char *refusing = haproxy_entry("c", live, ",\"error\":\"check: bad\"");
    char *guarded = haproxy_entry("g", live, "");
    put(&defs, R "haproxy/edge/services/web", DEF_WEB);
    put(&st, R "status/a/haproxy", ok);
    put(&st, R "status/b/haproxy", behind);
    put(&st, R "status/c/haproxy", refusing);
    put(&st, R "status/g/haproxy", guarded);
    put(&st, R "status/x/haproxy", "{\"host\":1}");
    put(&st, R "status/", ""); /* a folder key: ignored */
    json_t *view = NULL;
    char *text = NULL;
    ck_assert_int_eq(ctl_fleet_view(R, &st.l, &defs.l, &view, &text), 0);
    ck_assert(json_is_false(json_object_get(view, "ok")));
    ck_assert_str_eq(str(host(view, "a"), "state"), "ok");
    ck_assert_str_eq(str(host(view, "a"), "services.web.state"), "current");
    ck_assert_str_eq(str(host(view, "b"), "state"), "behind");
    ck_assert_str_eq(str(host(view, "c"), "state"), "refusing");
    ck_assert_str_eq(str(host(view, "c"), "services.web.error"), "check: bad");
    ck_assert_str_eq(str(host(view, "g"), "state"), "guarded");
    ck_assert_uint_eq(json_array_size(json_object_get(view, "hosts")), 4);
    ck_assert_uint_eq(json_array_size(json_object_get(view, "bad")), 1);
    ck_assert_str_eq(str(view, "bad[0].key"), "x/haproxy");
    ck_assert_ptr_nonnull(strstr(text, "fleet: NOT ok"));
    json_decref(view);
    free(text);

    /* only the current host: ok; a second live service it lacks: behind */
    struct kvs one = {0};
    put(&one, R "status/a/haproxy", ok);
    ck_assert_int_eq(ctl_fleet_view(R, &one.l, &defs.l, &view, &text), 0);
    ck_assert(json_is_true(json_object_get(view, "ok")));
    json_decref(view);
    free(text);
    put(&defs, R "haproxy/edge/services/api", DEF_WEB);
    ck_assert_int_eq(ctl_fleet_view(R, &one.l, &defs.l, &view, &text), 0);
    ck_assert_str_eq(str(host(view, "a"), "services.api.state"), "behind");
    ck_assert_str_eq(str(host(view, "a"), "state"), "behind");
    json_decref(view);
    free(text);
    /* the definition it runs was deleted: removed */
    struct kvs none = {0};
    ck_assert_int_eq(ctl_fleet_view(R, &one.l, &none.l, &view, &text), 0);
    ck_assert_str_eq(str(host(view, "a"), "services.web.state"), "removed");
    ck_assert(json_is_false(json_object_get(view, "ok")));
    json_decref(view);
    free(text);
    /* nothing reports: ok, and said */
    ck_assert_int_eq(ctl_fleet_view(R, &none.l, &none.l, &view, &text), 0);
    ck_assert(json_is_true(json_object_get(view, "ok")));
    ck_assert_ptr_nonnull(strstr(text, "no host reports"));
    json_decref(view);
    free(text);
    free(ok);
    free(behind);
    free(refusing);
    free(guarded);
}
END_TEST

START_TEST(test_directors)
{
#define DIRECTOR(host, sum)                                                                        \
    "{\"host\":\"" host "\",\"role\":\"director\",\"cluster\":\"dc1\",\"version\":\"1\","          \
    "\"started\":\"2026-11-23T13:00:00Z\",\"updated\":\"2026-11-23T13:00:00Z\",\"kv_index\":0,"    \
    "\"snapshot\":\"\",\"guards\":[],\"services\":{},\"director\":{\"table_checksum\":\"" sum      \
    "\",\"vips\":[]}}"
    const char *d1 = DIRECTOR("d1", "aaaa"), *d2 = DIRECTOR("d2", "aaaa"),
               *d3 = DIRECTOR("d3", "bbbb");
    struct kvs st = {0}, defs = {0};
    json_t *view;
    char *text;
    put(&st, R "status/d1/director", d1);
    put(&st, R "status/d2/director", d2);
    ck_assert_int_eq(ctl_fleet_view(R, &st.l, &defs.l, &view, &text), 0);
    ck_assert(json_is_true(json_object_get(view, "ok")));
    json_decref(view);
    free(text);
    put(&st, R "status/d3/director", d3);
    put(&st, R "status/d4/director", d3);
    ck_assert_int_eq(ctl_fleet_view(R, &st.l, &defs.l, &view, &text), 0);
    ck_assert(json_is_false(json_object_get(view, "ok")));
    ck_assert_uint_eq(json_array_size(json_object_get(view, "directors_disagree")), 1);
    ck_assert_str_eq(str(view, "directors_disagree[0]"), "dc1");
    json_decref(view);
    free(text);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ctl_fleet");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_states);
    tcase_add_test(tc, test_directors);
    suite_add_tcase(s, tc);
    return suite_main_run(s);
}
