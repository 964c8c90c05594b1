/* SPDX-License-Identifier: Apache-2.0 */
/* ctl_model: target resolution, server enumeration, out-of-service share;
 * commands: the next maintenance value and the GLB transitions. (The time
 * formats are common/timefmt, tested in tests/unit/common/test_timefmt.c.) */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "ctl_model.h"
#include "kv_key.h"
#include "../common/suite_main.h"

#define NOW 1795957200 /* 2026-11-29T13:00:00Z */
#define R   "drover/v1/"

static void add(struct ctl_model *m, const char *key, const char *value, int want)
{
    char err[256] = "";
    int rc =
        ctl_model_add(m, R, "edge", key, value, value ? strlen(value) : 0, 7, err, sizeof(err));
    ck_assert_msg(rc == want, "%s: rc %d (%s)", key, rc, err);
}

static const char *node_json(const char *name, const char *cluster, const char *addr, bool eligible)
{
    static char buf[4][256];
    static int k;
    char *b = buf[k++ % 4];
    snprintf(b, 256,
             "{\"name\":\"%s\",\"cluster\":\"%s\",\"addresses\":[\"%s\"],\"address\":\"%s\","
             "\"eligible\":%s}",
             name, cluster, addr, addr, eligible ? "true" : "false");
    return b;
}

/* prod-a: node-a..node-d (node-d not eligible); prod-b: node-a (same name)
 * and node-x. Backend be_web = kube web/http in prod-a (3 eligible
 * servers) + static-1; be_api = static api-1, api-2; be_b = prod-b svc. */
static void fixture(struct ctl_model *m)
{
    ctl_model_init(m, NOW);
    add(m, R "kube/prod-a/nodes/node-a", node_json("node-a", "prod-a", "10.0.0.1", true), 1);
    add(m, R "kube/prod-a/nodes/node-b", node_json("node-b", "prod-a", "10.0.0.2", true), 1);
    add(m, R "kube/prod-a/nodes/node-c", node_json("node-c", "prod-a", "10.0.0.3", true), 1);
    add(m, R "kube/prod-a/nodes/node-d", node_json("node-d", "prod-a", "10.0.0.4", false), 1);
    add(m, R "kube/prod-b/nodes/node-a", node_json("node-a", "prod-b", "10.9.0.1", true), 1);
    add(m, R "kube/prod-b/nodes/node-x", node_json("node-x", "prod-b", "fd00::0:1", true), 1);
    add(m, R "kube/prod-a/services/default/web/http", "{\"node_port\":30080}", 1);
    add(m, R "kube/prod-b/services/default/b/http", "{\"node_port\":31000}", 1);
    add(m, R "kube/prod-a/meta", "{}", 0);
    /* valid service definitions: droverctl decodes them as the watcher does */
    add(m, R "haproxy/edge/services/web",
        "{\"frontends\":[{\"name\":\"fe_web\",\"bind\":[\"0.0.0.0:80\"],"
        "\"default_backend\":\"be_web\"}],\"backends\":[{\"name\":\"be_web\",\"kube\":[{"
        "\"cluster\":\"prod-a\",\"namespace\":"
        "\"default\",\"service\":\"web\",\"port\":\"http\"},{\"cluster\":\"prod-a\","
        "\"namespace\":\"default\",\"service\":\"gone\",\"port\":\"http\"}],\"servers\":[{"
        "\"name\":\"static-1\",\"address\":\"10.1.2.3\",\"port\":8080}],\"slots\":8},"
        "{\"name\":\"be_api\",\"servers\":[{\"name\":\"api-1\",\"address\":\"10.1.3.1\","
        "\"port\":80},{\"name\":\"api-2\",\"address\":\"10.1.3.2\",\"port\":80}]}]}",
        1);
    add(m, R "haproxy/edge/services/b",
        "{\"frontends\":[{\"name\":\"fe_b\",\"bind\":[\"0.0.0.0:81\"],"
        "\"default_backend\":\"be_b\"}],\"backends\":[{\"name\":\"be_b\",\"kube\":[{\"cluster\":"
        "\"prod-b\",\"namespace\":"
        "\"default\",\"service\":\"b\",\"port\":\"http\"}]}]}",
        1);
    /* another proxy fleet's services are not ours */
    add(m, R "haproxy/other/services/x", "{\"backends\":[{\"name\":\"be_other\"}]}", 0);
}

START_TEST(test_bad_entries_skipped)
{
    struct ctl_model m;
    fixture(&m);
    add(&m, R "kube/prod-a/nodes/bad", "{\"address\":\"not-an-ip\"}", -EINVAL);
    add(&m, R "kube/prod-a/nodes/bad2", "[1,2]", -EINVAL);
    add(&m, R "kube/prod-a/services/default/bad/http", "{\"node_port\":0}", -EINVAL);
    add(&m, R "haproxy/edge/services/bad", "{\"backends\":[{\"servers\":[]}]}", -EINVAL);
    add(&m, R "maintenance/node/prod-a/node-a", "{\"state\":\"sleep\"}", -EINVAL);
    add(&m, R "maintenance/node/prod-a/node-a", "{\"state\":\"drain\",\"weight\":300}", -EINVAL);
    add(&m, R "maintenance/addr/banana", "{\"state\":\"drain\"}", -EINVAL);
    add(&m, R "maintenance/node/prod-a", "{\"state\":\"drain\"}", -EINVAL);
    add(&m, "elsewhere/kube/prod-a/nodes/z", "{}", 0);
    ck_assert_uint_eq(m.bad, 8);
    ck_assert_uint_eq(m.n_nodes, 6);
    ck_assert_uint_eq(m.n_maint, 0);
    ctl_model_clear(&m);
}
END_TEST

static int resolve(struct ctl_model *m, const char *text, char *const *cl, size_t n,
                   struct ctl_target *t, char *err)
{
    return ctl_model_resolve(m, text, cl, n, t, err, 512);
}

START_TEST(test_resolve)
{
    struct ctl_model m;
    struct ctl_target t;
    char err[512];
    char *prod_a[] = {"prod-a"};
    fixture(&m);

    ck_assert_int_eq(resolve(&m, "node/prod-a/node-b", NULL, 0, &t, err), 0);
    ck_assert_str_eq(t.id, "node/prod-a/node-b");
    ck_assert_int_eq(t.kind, CTL_TARGET_NODE);
    /* bare names: unique, ambiguous, or limited by --cluster */
    ck_assert_int_eq(resolve(&m, "node-b", NULL, 0, &t, err), 0);
    ck_assert_str_eq(t.id, "node/prod-a/node-b");
    ck_assert_int_eq(resolve(&m, "node-a", NULL, 0, &t, err), -EEXIST);
    ck_assert_ptr_nonnull(strstr(err, "node/prod-a/node-a"));
    ck_assert_ptr_nonnull(strstr(err, "node/prod-b/node-a"));
    ck_assert_int_eq(resolve(&m, "node-a", prod_a, 1, &t, err), 0);
    ck_assert_str_eq(t.id, "node/prod-a/node-a");
    ck_assert_int_eq(resolve(&m, "node-x", prod_a, 1, &t, err), -ENOENT);
    ck_assert_ptr_nonnull(strstr(err, "--cluster"));
    /* addresses: bare, addr/, canonicalised, must be known */
    ck_assert_int_eq(resolve(&m, "10.0.0.3", NULL, 0, &t, err), 0);
    ck_assert_str_eq(t.id, "addr/10.0.0.3");
    ck_assert_int_eq(resolve(&m, "addr/fd00:0::1", NULL, 0, &t, err), 0);
    ck_assert_str_eq(t.id, "addr/fd00::1");
    ck_assert_int_eq(resolve(&m, "10.1.2.3", NULL, 0, &t, err), 0); /* a static server */
    ck_assert_int_eq(resolve(&m, "10.7.7.7", NULL, 0, &t, err), -ENOENT);
    ck_assert_ptr_nonnull(strstr(err, "unknown target addr/10.7.7.7"));
    ck_assert_int_eq(resolve(&m, "addr/banana", NULL, 0, &t, err), -EINVAL);
    /* backend/server */
    ck_assert_int_eq(resolve(&m, "be_web/static-1", NULL, 0, &t, err), 0);
    ck_assert_str_eq(t.id, "server/be_web/static-1");
    ck_assert_int_eq(resolve(&m, "server/be_api/api-2", NULL, 0, &t, err), 0);
    /* slots as the watcher names them: slot1..slotN, N = "slots" (8 here) */
    ck_assert_int_eq(resolve(&m, "be_web/slot8", NULL, 0, &t, err), 0);
    ck_assert_str_eq(t.id, "server/be_web/slot8");
    ck_assert_int_eq(resolve(&m, "be_web/slot9", NULL, 0, &t, err), -ENOENT);
    ck_assert_int_eq(resolve(&m, "be_web/slot0", NULL, 0, &t, err), -ENOENT);
    ck_assert_int_eq(resolve(&m, "be_web/slot01", NULL, 0, &t, err), -ENOENT);
    ck_assert_int_eq(resolve(&m, "be_web/be_web-1", NULL, 0, &t, err), -ENOENT);
    /* default 16 slots, static servers live in slots too */
    ck_assert_int_eq(resolve(&m, "be_api/slot16", NULL, 0, &t, err), 0);
    ck_assert_int_eq(resolve(&m, "be_api/slot17", NULL, 0, &t, err), -ENOENT);
    ck_assert_int_eq(resolve(&m, "be_nope/x", NULL, 0, &t, err), -ENOENT);
    ck_assert_ptr_nonnull(strstr(err, "no backend 'be_nope'"));
    ck_assert_int_eq(resolve(&m, "be_other/x", NULL, 0, &t, err), -ENOENT);
    /* unknown nodes and malformed targets */
    ck_assert_int_eq(resolve(&m, "node/prod-a/node-z", NULL, 0, &t, err), -ENOENT);
    ck_assert_ptr_nonnull(strstr(err, "no kube/prod-a/nodes/node-z in KV"));
    ck_assert_int_eq(resolve(&m, "ghost", NULL, 0, &t, err), -ENOENT);
    ck_assert_int_eq(resolve(&m, "a/b/c", NULL, 0, &t, err), -EINVAL);
    ck_assert_int_eq(resolve(&m, "node/x", NULL, 0, &t, err), -EINVAL);
    ck_assert_int_eq(resolve(&m, "", NULL, 0, &t, err), -EINVAL);
    ctl_model_clear(&m);
}
END_TEST

static struct ctl_maint entry(const char *id, const char *json)
{
    struct ctl_maint e;
    char err[256];
    ck_assert_int_eq(ctl_maint_parse(id, json, strlen(json), &e, err, sizeof(err)), 0);
    return e;
}

static void share_of(struct ctl_model *m, const char *be, const struct ctl_override *ov,
                     size_t total, size_t before, size_t after)
{
    for (size_t i = 0; i < m->n_backends; i++) {
        if (strcmp(m->backends[i].name, be))
            continue;
        struct ctl_share s;
        ctl_model_backend_share(m, &m->backends[i], ov, &s);
        ck_assert_msg(s.total == total && s.out_before == before && s.out_after == after,
                      "%s: got %zu/%zu/%zu want %zu/%zu/%zu", be, s.total, s.out_before,
                      s.out_after, total, before, after);
        return;
    }
    ck_abort_msg("no backend %s", be);
}

START_TEST(test_share)
{
    struct ctl_model m;
    struct ctl_share worst;
    fixture(&m);

    /* be_web: node-a, node-b, node-c (node-d not eligible, "gone" service
     * missing) + static-1 = 4 servers */
    share_of(&m, "be_web", NULL, 4, 0, 0);
    share_of(&m, "be_api", NULL, 2, 0, 0);
    add(&m, R "maintenance/node/prod-a/node-a", "{\"state\":\"drain\"}", 1);
    add(&m, R "maintenance/addr/10.0.0.2", "{\"state\":\"ready\",\"weight\":0}", 1);
    /* expired: ignored */
    add(&m, R "maintenance/node/prod-a/node-c",
        "{\"state\":\"maint\",\"expires\":\"2026-11-29T12:59:59Z\"}", 1);
    share_of(&m, "be_web", NULL, 4, 2, 2);

    /* draining node-c now would be 3 of 4 */
    struct ctl_maint c = entry("node/prod-a/node-c", "{\"state\":\"drain\"}");
    struct ctl_override ov = {.id = "node/prod-a/node-c", .entry = &c};
    share_of(&m, "be_web", &ov, 4, 2, 3);
    ck_assert_int_eq(ctl_model_check_share(&m, &ov, 0.5, &worst), 1);
    ck_assert_str_eq(worst.backend, "be_web");
    ck_assert_int_eq(ctl_model_check_share(&m, &ov, 0.75, &worst), 0);
    ctl_maint_clear(&c);

    /* a server entry beats the addr entry: static-1 ready again */
    struct ctl_maint s1 = entry("server/be_web/static-1", "{\"state\":\"maint\"}");
    ov = (struct ctl_override){.id = "server/be_web/static-1", .entry = &s1};
    share_of(&m, "be_web", &ov, 4, 2, 3);
    add(&m, R "maintenance/addr/10.1.2.3", "{\"state\":\"drain\"}", 1);
    share_of(&m, "be_web", NULL, 4, 3, 3);
    struct ctl_maint s1r = entry("server/be_web/static-1", "{\"state\":\"ready\",\"weight\":50}");
    ov.entry = &s1r;
    share_of(&m, "be_web", &ov, 4, 3, 2);
    /* a change that reduces the outage is never refused */
    ck_assert_int_eq(ctl_model_check_share(&m, &ov, 0.1, &worst), 0);
    ctl_maint_clear(&s1);
    ctl_maint_clear(&s1r);

    /* removing node-a's entry (undrain) */
    ov = (struct ctl_override){.id = "node/prod-a/node-a", .entry = NULL};
    share_of(&m, "be_web", &ov, 4, 3, 2);

    /* slot entries count one server each */
    struct ctl_maint sl = entry("server/be_b/slot1", "{\"state\":\"maint\"}");
    ov = (struct ctl_override){.id = "server/be_b/slot1", .entry = &sl};
    share_of(&m, "be_b", &ov, 2, 0, 1);
    ctl_maint_clear(&sl);

    /* be_api: one of two static servers, then both */
    struct ctl_maint a1 = entry("server/be_api/api-1", "{\"state\":\"drain\"}");
    ov = (struct ctl_override){.id = "server/be_api/api-1", .entry = &a1};
    ck_assert_int_eq(ctl_model_check_share(&m, &ov, 0.5, &worst), 0); /* 50% is not > 50% */
    add(&m, R "maintenance/server/be_api/api-1", "{\"state\":\"drain\"}", 1);
    struct ctl_maint a2 = entry("server/be_api/api-2", "{\"state\":\"maint\"}");
    ov = (struct ctl_override){.id = "server/be_api/api-2", .entry = &a2};
    ck_assert_int_eq(ctl_model_check_share(&m, &ov, 0.5, &worst), 1);
    ck_assert_str_eq(worst.backend, "be_api");
    ck_assert_uint_eq(worst.out_after, 2);
    ctl_maint_clear(&a1);
    ctl_maint_clear(&a2);
    ctl_model_clear(&m);
}
END_TEST

struct seen {
    char text[1024];
};

static void collect(void *arg, const char *backend, const char *server)
{
    struct seen *s = arg;
    snprintf(s->text + strlen(s->text), sizeof(s->text) - strlen(s->text), "[%s|%s]", backend,
             server);
}

/* A node in both layouts (an exporter moving to the shards) counts once,
 * as its shard says, whichever entry is read first (kv_key.h). */
START_TEST(test_node_in_both_layouts)
{
    struct ctl_model m;
    fixture(&m);
    char *shard_d = kv_key_kube_node(R, "prod-a", "node-d");
    char *shard_c = kv_key_kube_node(R, "prod-a", "node-c");
    /* node-d: flat read first (ineligible), its shard says eligible */
    add(&m, shard_d, node_json("node-d", "prod-a", "10.0.0.4", true), 1);
    /* node-c: its shard (ineligible) first, then the flat entry again */
    add(&m, shard_c, node_json("node-c", "prod-a", "10.0.0.3", false), 1);
    add(&m, R "kube/prod-a/nodes/node-c", node_json("node-c", "prod-a", "10.0.0.3", true), 0);
    ck_assert_uint_eq(m.n_nodes, 6);
    ck_assert_uint_eq(m.bad, 0);
    /* be_web: node-a, node-b, node-d + static-1 */
    share_of(&m, "be_web", NULL, 4, 0, 0);
    free(shard_c);
    free(shard_d);
    ctl_model_clear(&m);
}
END_TEST

START_TEST(test_affected)
{
    struct ctl_model m;
    struct ctl_target t;
    struct seen s = {""};
    fixture(&m);

    ctl_target_from_id("node/prod-a/node-b", &t);
    ctl_model_affected(&m, &t, collect, &s);
    ck_assert_str_eq(s.text, "[be_web|node-b 10.0.0.2:30080]");
    s.text[0] = '\0';
    ctl_target_from_id("addr/fd00::1", &t);
    ctl_model_affected(&m, &t, collect, &s);
    ck_assert_str_eq(s.text, "[be_b|node-x [fd00::1]:31000]");
    s.text[0] = '\0';
    ctl_target_from_id("server/be_api/api-2", &t);
    ctl_model_affected(&m, &t, collect, &s);
    ck_assert_str_eq(s.text, "[be_api|api-2 10.1.3.2:80]");
    s.text[0] = '\0';
    ctl_target_from_id("server/be_web/slot3", &t);
    ctl_model_affected(&m, &t, collect, &s);
    ck_assert_str_eq(s.text, "[be_web|slot3]");
    s.text[0] = '\0';
    ctl_target_from_id("node/prod-a/node-d", &t); /* not eligible: in no backend */
    ctl_model_affected(&m, &t, collect, &s);
    ck_assert_str_eq(s.text, "");
    ctl_model_clear(&m);
}
END_TEST

static char *next_json(const char *text, const char *cur_json, int want)
{
    struct ctl_command c = {.weight = -1};
    char **w;
    int n;
    char err[256];
    struct ctl_limits lim = {0};
    struct ctl_maint cur;
    json_t *out = NULL;

    ck_assert_int_eq(ctl_split_words(text, strlen(text), &w, &n, err, sizeof(err)), 0);
    ck_assert_int_eq(ctl_command_parse(n, w, CTL_SOURCE_CLI, &lim, &c, err, sizeof(err)), 0);
    ctl_words_free(w);
    if (cur_json)
        cur = entry("node/c/n", cur_json);
    int rc = ctl_maint_next(&c, "node/c/n", cur_json ? &cur : NULL, "alice", NOW, &out);
    ck_assert_msg(rc == want, "%s on %s: %d", text, cur_json ? cur_json : "nothing", rc);
    char *s = out ? json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(out);
    if (cur_json)
        ctl_maint_clear(&cur);
    ctl_command_free(&c);
    return s;
}

START_TEST(test_maint_next)
{
    char *s;

    s = next_json("drain n --reason 'disk swap' --ttl 2h", NULL, 1);
    ck_assert_str_eq(s, "{\"author\":\"alice\",\"created\":\"2026-11-29T13:00:00Z\",\"expires\":"
                        "\"2026-11-29T15:00:00Z\",\"reason\":\"disk swap\",\"state\":\"drain\","
                        "\"target\":\"node/c/n\"}");
    free(s);
    /* drain keeps an earlier weight and reason */
    s = next_json("maint n", "{\"state\":\"ready\",\"weight\":30,\"reason\":\"slow\"}", 1);
    ck_assert_str_eq(s, "{\"author\":\"alice\",\"created\":\"2026-11-29T13:00:00Z\",\"reason\":"
                        "\"slow\",\"state\":\"maint\",\"target\":\"node/c/n\",\"weight\":30}");
    free(s);
    /* undrain keeps the weight; ready drops everything */
    s = next_json("undrain n", "{\"state\":\"drain\",\"weight\":30}", 1);
    ck_assert_ptr_nonnull(strstr(s, "\"state\":\"ready\""));
    ck_assert_ptr_nonnull(strstr(s, "\"weight\":30"));
    free(s);
    ck_assert_ptr_null(next_json("undrain n", "{\"state\":\"drain\"}", 0));
    ck_assert_ptr_null(next_json("ready n", "{\"state\":\"drain\",\"weight\":30}", 0));
    /* nothing to do */
    ck_assert_ptr_null(next_json("undrain n", NULL, 2));
    ck_assert_ptr_null(next_json("ready n", NULL, 2));
    ck_assert_ptr_null(next_json("drain n", "{\"state\":\"drain\"}", 2));
    ck_assert_ptr_null(next_json("weight n 100%", NULL, 2));
    /* a new reason is a change */
    free(next_json("drain n --reason other", "{\"state\":\"drain\",\"reason\":\"x\"}", 1));
    /* weight 100 on a ready entry removes it */
    ck_assert_ptr_null(next_json("weight n 100%", "{\"state\":\"ready\",\"weight\":50}", 0));
    s = next_json("weight n 0", "{\"state\":\"drain\"}", 1);
    ck_assert_ptr_nonnull(strstr(s, "\"state\":\"drain\""));
    ck_assert_ptr_nonnull(strstr(s, "\"weight\":0"));
    free(s);
    /* an expired entry counts as absent */
    ck_assert_ptr_null(
        next_json("undrain n", "{\"state\":\"drain\",\"expires\":\"2026-11-29T12:00:00Z\"}", 2));
    s = next_json("drain n", "{\"state\":\"drain\",\"expires\":\"2026-11-29T12:00:00Z\"}", 1);
    ck_assert_ptr_null(strstr(s, "expires"));
    free(s);
}
END_TEST

START_TEST(test_director_transitions)
{
    ck_assert(ctl_director_step_allowed("inactive", CTL_DIR_FILL));
    ck_assert(ctl_director_step_allowed("filling", CTL_DIR_ACTIVATE));
    ck_assert(ctl_director_step_allowed("active", CTL_DIR_DRAIN));
    ck_assert(ctl_director_step_allowed("draining", CTL_DIR_DEACTIVATE));
    ck_assert(!ctl_director_step_allowed("inactive", CTL_DIR_ACTIVATE));
    ck_assert(!ctl_director_step_allowed("active", CTL_DIR_DEACTIVATE));
    ck_assert(!ctl_director_step_allowed("filling", CTL_DIR_DRAIN));
    ck_assert(!ctl_director_step_allowed("draining", CTL_DIR_FILL));
    ck_assert(!ctl_director_step_allowed(NULL, CTL_DIR_FILL));
    ck_assert_str_eq(ctl_director_target_state(CTL_DIR_FILL), "filling");
    ck_assert_str_eq(ctl_director_target_state(CTL_DIR_DEACTIVATE), "inactive");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ctl_model");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_bad_entries_skipped);
    tcase_add_test(tc, test_resolve);
    tcase_add_test(tc, test_share);
    tcase_add_test(tc, test_affected);
    tcase_add_test(tc, test_node_in_both_layouts);
    tcase_add_test(tc, test_maint_next);
    tcase_add_test(tc, test_director_transitions);
    suite_add_tcase(s, tc);
    return suite_main_run(s);
}
