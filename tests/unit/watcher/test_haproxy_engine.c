/* SPDX-License-Identifier: Apache-2.0 */
/* haproxy_engine without Consul and without HAProxy: snapshots are built
 * from KV entries in the test, `haproxy -c` is /bin/true (or /bin/false),
 * and the HAProxy sockets do not exist, so a reload finds no master (the
 * checked file stays installed) and a runtime apply finds no stats socket.
 * What the engine decides (placements, guards, retirements, installs) is
 * asserted; the same engine against a real HAProxy and Consul runs in
 * tests/integration/watcher. */
#include <check.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "atomic_file.h"
#include "fake_master_cli.h"
#include "haproxy_engine.h"
#include "haproxy_engine_internal.h"
#include "render.h"
#include "slots.h"
#include "../common/suite_main.h"

#define WAIT_MIN_MS     5
#define WAIT_MAX_MS     20
#define RUNTIME_WAIT_MS 1
/* one `haproxy -c` child (here /bin/true) on a loaded machine */
#define CHECK_BOUND_MS 5000

static const char *const clusters[] = {"prod-a"};

struct fx {
    uv_loop_t loop;
    char dir[64];
    char cfg_dir[128], agent[128], snapfile[128];
    char stats[128], master[128], state[128];
    struct kv_model_opts m;
    struct metrics_registry *reg;
    struct haproxy_engine_opts o;
    struct haproxy_engine *e;
    int applied_calls;
    int64_t wait_min_ms, wait_max_ms; /* 0: WAIT_MIN_MS, WAIT_MAX_MS */
    int64_t probe_ms;                 /* supervision's probe interval; 0: none */
    bool ready;                       /* the last on_health verdict */
};

static void on_health(void *arg, bool ready, const char *reason)
{
    struct fx *f = arg;
    (void)reason;
    f->ready = ready;
}

static void on_applied(void *arg, const struct snapshot *snap)
{
    struct fx *f = arg;
    ck_assert_ptr_nonnull(snap);
    f->applied_calls++;
}

static void fx_engine(struct fx *f, const char *haproxy_bin)
{
    struct template_set *set = NULL;
    char err[1024];
    ck_assert_msg(render_load_templates(DROVER_TEMPLATE_DIR, &set, err, sizeof(err)) == 0, "%s",
                  err);
    f->reg = metrics_registry_new();
    ck_assert_ptr_nonnull(f->reg);
    f->o = (struct haproxy_engine_opts){
        .model = &f->m,
        .haproxy_cluster = "edge",
        .config_dir = f->cfg_dir,
        .haproxy_bin = haproxy_bin,
        .master_socket = f->master,
        .stats_socket = f->stats,
        .state_file = f->state,
        .agent_state_file = f->agent,
        .agent_addr = "127.0.0.1",
        .agent_port = 5555,
        .agent_interval_ms = 2000,
        .snapshot_file = f->snapfile,
        .wait_min_ms = f->wait_min_ms ? f->wait_min_ms : WAIT_MIN_MS,
        .wait_max_ms = f->wait_max_ms ? f->wait_max_ms : WAIT_MAX_MS,
        .runtime_wait_ms = RUNTIME_WAIT_MS,
        .max_removal_share = 0.5,
        .maxconn = 1000,
        .timeout_connect_ms = 5000,
        .timeout_client_ms = 30000,
        .timeout_server_ms = 30000,
        .metrics = f->reg,
        .probe_ms = f->probe_ms,
        .on_health = on_health,
        .on_applied = on_applied,
        .arg = f,
    };
    ck_assert_int_eq(haproxy_engine_new(&f->loop, &f->o, set, &f->e), 0);
}

/* An engine whose supervision probes every probe_ms (0: none). */
static void fx_init_probed(struct fx *f, const char *haproxy_bin, int64_t probe_ms)
{
    memset(f, 0, sizeof(*f));
    f->probe_ms = probe_ms;
    f->ready = true; /* the engine's start: on_health tells changes only */
    snprintf(f->dir, sizeof(f->dir), "/tmp/drover-engine.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(f->dir));
    snprintf(f->cfg_dir, sizeof(f->cfg_dir), "%s/cfg", f->dir);
    snprintf(f->agent, sizeof(f->agent), "%s/agent.json", f->dir);
    snprintf(f->snapfile, sizeof(f->snapfile), "%s/snapshot.pb", f->dir);
    /* sockets nobody listens on: no HAProxy runs */
    snprintf(f->stats, sizeof(f->stats), "%s/{service}.sock", f->dir);
    snprintf(f->master, sizeof(f->master), "%s/{service}.master", f->dir);
    snprintf(f->state, sizeof(f->state), "%s/{service}.state", f->dir);
    f->m = (struct kv_model_opts){
        .root = "drover/v1/",
        .haproxy_cluster = "edge",
        .kube_clusters = clusters,
        .n_kube_clusters = 1,
    };
    ck_assert_int_eq(uv_loop_init(&f->loop), 0);
    fx_engine(f, haproxy_bin);
}

static void fx_init(struct fx *f, const char *haproxy_bin)
{
    fx_init_probed(f, haproxy_bin, 0);
}

static void fx_stop_engine(struct fx *f)
{
    haproxy_engine_stop(f->e);
    uv_run(&f->loop, UV_RUN_DEFAULT); /* closes the engine's handles */
    haproxy_engine_free(f->e);
    metrics_registry_free(f->reg);
    f->e = NULL;
    f->reg = NULL;
}

static void fx_free(struct fx *f)
{
    char cmd[128];
    if (f->e)
        fx_stop_engine(f);
    ck_assert_int_eq(uv_loop_close(&f->loop), 0);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* Run the loop until the engine has nothing left to do. Bound: both
 * quiescence windows (twice: a plan may queue a second round), one
 * config check and the server-state file's window. */
#define FX_SETTLE_BOUND_MS                                                                         \
    (2 * (WAIT_MAX_MS + RUNTIME_WAIT_MS * 3) + CHECK_BOUND_MS + HAPROXY_ENGINE_STATE_MAX_MS)

static void fx_settle(struct fx *f)
{
    uint64_t bound = FX_SETTLE_BOUND_MS;
    uint64_t deadline = uv_now(&f->loop) + bound;
    while (!haproxy_engine_idle(f->e)) {
        ck_assert_msg(uv_now(&f->loop) < deadline,
                      "engine not idle within %llu ms (plan, check, install, reload)",
                      (unsigned long long)bound);
        uv_run(&f->loop, UV_RUN_NOWAIT);
        usleep(1000);
        uv_update_time(&f->loop);
    }
}

/* ---- KV inputs ---- */

struct kv {
    const char *k, *v;
};

#define SVC_WEB                                                                                    \
    "{\"template\":\"http\",\"frontends\":[{\"name\":\"fe_web\",\"bind\":[\"127.0.0.1:18080\"],"   \
    "\"default_backend\":\"be_web\"}],\"backends\":[{\"name\":\"be_web\",\"slots\":4,\"kube\":[{"  \
    "\"cluster\":\"prod-a\",\"namespace\":\"default\",\"service\":\"web\",\"port\":\"http\"}]}]}"
#define SVC_API                                                                                    \
    "{\"template\":\"http\",\"frontends\":[{\"name\":\"fe_api\",\"bind\":[\"127.0.0.1:18081\"],"   \
    "\"default_backend\":\"be_api\"}],\"backends\":[{\"name\":\"be_api\",\"servers\":[{\"name\":"  \
    "\"s1\",\"address\":\"10.9.0.1\",\"port\":8080}],\"check\":{\"type\":\"none\"}}]}"
#define K_WEB     "drover/v1/haproxy/edge/services/web"
#define K_API     "drover/v1/haproxy/edge/services/api"
#define K_KUBE    "drover/v1/kube/prod-a/services/default/web/http"
#define V_KUBE    "{\"node_port\":30080}"
#define K_NODE(n) "drover/v1/kube/prod-a/nodes/n" #n
#define V_NODE(n) "{\"addresses\":[\"10.0.0." #n "\"],\"eligible\":true}"
#define FORCED    "{\"expires\":\"2099-01-01T00:00:00Z\",\"author\":\"test\"}"

/* Build a snapshot of kv[0..n) now and hand it to the engine. */
static void fx_take(struct fx *f, const struct kv *kv, size_t n, bool complete)
{
    struct snapshot_entry *e = calloc(n + 1, sizeof(*e));
    struct snapshot *s = NULL;
    ck_assert_ptr_nonnull(e);
    for (size_t i = 0; i < n; i++) {
        e[i].key = strdup(kv[i].k);
        e[i].value = strdup(kv[i].v);
        e[i].len = strlen(kv[i].v);
    }
    ck_assert_int_eq(
        snapshot_build(&f->m, e, n, (int64_t)time(NULL), haproxy_engine_snapshot(f->e), &s), 0);
    haproxy_engine_take_snapshot(f->e, s, complete);
}

#define TAKE(f, complete, ...)                                                                     \
    do {                                                                                           \
        const struct kv kv_[] = {__VA_ARGS__};                                                     \
        fx_take(f, kv_, sizeof(kv_) / sizeof(kv_[0]), complete);                                   \
        fx_settle(f);                                                                              \
    } while (0)

static char *slurp(const char *path)
{
    char *text = NULL;
    size_t len;
    return render_read_file(path, &text, &len) == 0 ? text : NULL;
}

static char *cfg_text(struct fx *f, const char *service)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%.64s.cfg", f->cfg_dir, service);
    return slurp(path);
}

static char *slurp_in(struct fx *f, const char *name)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%.64s", f->cfg_dir, name);
    return slurp(path);
}

static bool cfg_exists(struct fx *f, const char *name)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%.64s", f->cfg_dir, name);
    return access(path, F_OK) == 0;
}

static const char *slot_key(const struct slot_assignment *a, size_t i)
{
    return i < a->nslots && a->slots[i].used ? a->slots[i].srv.key : "";
}

static struct haproxy_engine_stats stats(struct fx *f)
{
    struct haproxy_engine_stats st;
    haproxy_engine_get_stats(f->e, &st);
    return st;
}

/* ---- tests ---- */

START_TEST(test_first_snapshot_installs_checked_config)
{
    struct fx f;
    fx_init(&f, "/bin/true");
    TAKE(&f, true, {K_WEB, SVC_WEB}, {K_KUBE, V_KUBE}, {K_NODE(1), V_NODE(1)},
         {K_NODE(2), V_NODE(2)}, {K_NODE(3), V_NODE(3)});
    struct haproxy_engine_stats st = stats(&f);
    ck_assert_uint_eq(st.snapshots, 1);
    ck_assert_uint_eq(st.plans, 1);
    ck_assert_uint_eq(st.installs, 1);
    ck_assert_uint_eq(st.render_failures, 0);
    ck_assert_uint_eq(st.reloads, 0); /* no master socket: the file stays for HAProxy's start */
    ck_assert_uint_eq(st.reload_failures, 0);
    ck_assert_uint_eq(st.servers, 3);
    ck_assert_int_ge(f.applied_calls, 1);
    const struct slot_assignment *a = haproxy_engine_committed(f.e, "be_web");
    ck_assert_ptr_nonnull(a);
    ck_assert_uint_eq(a->nslots, 4);
    ck_assert_str_eq(slot_key(a, 0), "10.0.0.1:30080");
    ck_assert_str_eq(slot_key(a, 2), "10.0.0.3:30080");
    ck_assert(!a->slots[3].used);
    /* the rendered config carries the placement; the agent state its slots */
    char *cfg = cfg_text(&f, "web");
    ck_assert_ptr_nonnull(cfg);
    ck_assert_ptr_nonnull(strstr(cfg, "10.0.0.3"));
    ck_assert_ptr_nonnull(strstr(cfg, "fe_web"));
    free(cfg);
    char *agent = slurp(f.agent);
    ck_assert_ptr_nonnull(agent);
    ck_assert_ptr_nonnull(strstr(agent, "be_web/slot4"));
    free(agent);
    /* the snapshot file holds inputs and placement for a restart */
    struct snapshot *snap = NULL;
    struct snapshot_saved_slots *saved = NULL;
    size_t n_saved = 0;
    char err[256];
    ck_assert_int_eq(snapshot_load(f.snapfile, &f.m, (int64_t)time(NULL), &snap, &saved, &n_saved,
                                   err, sizeof(err)),
                     0);
    ck_assert_uint_eq(n_saved, 1);
    ck_assert_str_eq(saved[0].backend, "be_web");
    ck_assert_uint_eq(slot_assignment_used(&saved[0].a), 3);
    snapshot_saved_slots_free(saved, n_saved);
    snapshot_free(snap);
    fx_free(&f);
}
END_TEST

START_TEST(test_member_change_is_runtime_only)
{
    struct fx f;
    fx_init(&f, "/bin/true");
    TAKE(&f, true, {K_WEB, SVC_WEB}, {K_KUBE, V_KUBE}, {K_NODE(1), V_NODE(1)},
         {K_NODE(2), V_NODE(2)}, {K_NODE(3), V_NODE(3)});
    /* n3 replaced by n4: same slot count, same structure */
    TAKE(&f, true, {K_WEB, SVC_WEB}, {K_KUBE, V_KUBE}, {K_NODE(1), V_NODE(1)},
         {K_NODE(2), V_NODE(2)}, {K_NODE(4), V_NODE(4)});
    struct haproxy_engine_stats st = stats(&f);
    ck_assert_uint_eq(st.plans, 2);
    ck_assert_uint_eq(st.installs, 1);  /* no second reload */
    ck_assert_uint_eq(st.refreshes, 1); /* the file follows, no reload */
    /* the runtime apply was tried: no stats socket, counted as a failure */
    ck_assert_uint_eq(st.applies + st.apply_failures, 1);
    ck_assert_uint_eq(st.apply_failures, 1);
    const struct slot_assignment *a = haproxy_engine_committed(f.e, "be_web");
    ck_assert_str_eq(slot_key(a, 0), "10.0.0.1:30080"); /* kept servers keep their slots */
    ck_assert_str_eq(slot_key(a, 1), "10.0.0.2:30080");
    ck_assert_str_eq(slot_key(a, 2), "10.0.0.4:30080"); /* the new one: lowest free slot */
    char *cfg = cfg_text(&f, "web");
    ck_assert_ptr_nonnull(strstr(cfg, "10.0.0.4"));
    ck_assert_ptr_null(strstr(cfg, "10.0.0.3"));
    free(cfg);
    fx_free(&f);
}
END_TEST

START_TEST(test_more_servers_than_slots_reloads)
{
    struct fx f;
    fx_init(&f, "/bin/true");
    TAKE(&f, true, {K_WEB, SVC_WEB}, {K_KUBE, V_KUBE}, {K_NODE(1), V_NODE(1)});
    TAKE(&f, true, {K_WEB, SVC_WEB}, {K_KUBE, V_KUBE}, {K_NODE(1), V_NODE(1)},
         {K_NODE(2), V_NODE(2)}, {K_NODE(3), V_NODE(3)}, {K_NODE(4), V_NODE(4)},
         {K_NODE(5), V_NODE(5)}, {K_NODE(6), V_NODE(6)});
    struct haproxy_engine_stats st = stats(&f);
    ck_assert_uint_eq(st.installs, 2);
    const struct slot_assignment *a = haproxy_engine_committed(f.e, "be_web");
    ck_assert_uint_ge(a->nslots, 6);
    ck_assert_uint_eq(slot_assignment_used(a), 6);
    ck_assert_str_eq(slot_key(a, 0), "10.0.0.1:30080");
    fx_free(&f);
}
END_TEST

START_TEST(test_removal_guard_holds_until_forced)
{
    struct fx f;
    fx_init(&f, "/bin/true");
    TAKE(&f, true, {K_WEB, SVC_WEB}, {K_KUBE, V_KUBE}, {K_NODE(1), V_NODE(1)},
         {K_NODE(2), V_NODE(2)}, {K_NODE(3), V_NODE(3)}, {K_NODE(4), V_NODE(4)});
    /* 3 of 4 servers gone at once: more than the share of 0.5 */
    TAKE(&f, true, {K_WEB, SVC_WEB}, {K_KUBE, V_KUBE}, {K_NODE(1), V_NODE(1)});
    struct haproxy_engine_stats st = stats(&f);
    ck_assert(haproxy_engine_backend_held(f.e, "be_web"));
    ck_assert_uint_eq(st.backends_held, 1);
    ck_assert_uint_eq(st.removals_held_total, 1);
    ck_assert_uint_eq(slot_assignment_used(haproxy_engine_committed(f.e, "be_web")), 4);
    /* still held by the next snapshot: counted once per held change */
    TAKE(&f, true, {K_WEB, SVC_WEB}, {K_KUBE, V_KUBE}, {K_NODE(1), V_NODE(1)},
         {"drover/v1/maintenance/addr/10.0.0.9", "{\"state\":\"drain\"}"});
    ck_assert_uint_eq(stats(&f).removals_held_total, 1);
    ck_assert_uint_eq(slot_assignment_used(haproxy_engine_committed(f.e, "be_web")), 4);
    /* a force-removal entry lets it through */
    TAKE(&f, true, {K_WEB, SVC_WEB}, {K_KUBE, V_KUBE}, {K_NODE(1), V_NODE(1)},
         {"drover/v1/haproxy/edge/force-removal/be_web", FORCED});
    ck_assert(!haproxy_engine_backend_held(f.e, "be_web"));
    const struct slot_assignment *a = haproxy_engine_committed(f.e, "be_web");
    ck_assert_uint_eq(slot_assignment_used(a), 1);
    ck_assert_str_eq(slot_key(a, 0), "10.0.0.1:30080");
    ck_assert_uint_eq(stats(&f).backends_held, 0);
    fx_free(&f);
}
END_TEST

START_TEST(test_backend_share_overrides_default)
{
    struct fx f;
    fx_init(&f, "/bin/true");
    TAKE(&f, true, {K_WEB, SVC_WEB}, {K_KUBE, V_KUBE}, {K_NODE(1), V_NODE(1)},
         {K_NODE(2), V_NODE(2)}, {K_NODE(3), V_NODE(3)}, {K_NODE(4), V_NODE(4)});
    /* the same removal of 3 of 4 with the backend's own share of 0.8 */
    const char *svc = "{\"template\":\"http\",\"frontends\":[{\"name\":\"fe_web\",\"bind\":[\"127."
                      "0.0.1:18080\"],\"default_backend\":\"be_web\"}],\"backends\":[{\"name\":"
                      "\"be_web\",\"slots\":4,\"max_removal_share\":0.8,\"kube\":[{\"cluster\":"
                      "\"prod-a\",\"namespace\":\"default\",\"service\":\"web\",\"port\":"
                      "\"http\"}]}]}";
    TAKE(&f, true, {K_WEB, svc}, {K_KUBE, V_KUBE}, {K_NODE(1), V_NODE(1)});
    ck_assert(!haproxy_engine_backend_held(f.e, "be_web"));
    ck_assert_uint_eq(slot_assignment_used(haproxy_engine_committed(f.e, "be_web")), 1);
    /* but never down to no server at all without a force-removal */
    TAKE(&f, true, {K_WEB, svc}, {K_KUBE, V_KUBE});
    ck_assert(haproxy_engine_backend_held(f.e, "be_web"));
    ck_assert_uint_eq(slot_assignment_used(haproxy_engine_committed(f.e, "be_web")), 1);
    fx_free(&f);
}
END_TEST

START_TEST(test_removed_service_is_retired)
{
    struct fx f;
    fx_init(&f, "/bin/true");
    TAKE(&f, true, {K_WEB, SVC_WEB}, {K_API, SVC_API}, {K_KUBE, V_KUBE}, {K_NODE(1), V_NODE(1)});
    ck_assert(cfg_exists(&f, "api.cfg"));
    ck_assert_ptr_nonnull(haproxy_engine_committed(f.e, "be_api"));
    /* api gone from a complete read: 1 of 2 services is within the share */
    TAKE(&f, true, {K_WEB, SVC_WEB}, {K_KUBE, V_KUBE}, {K_NODE(1), V_NODE(1)});
    struct haproxy_engine_stats st = stats(&f);
    ck_assert(haproxy_engine_service_retired(f.e, "api"));
    ck_assert(!haproxy_engine_service_retired(f.e, "web"));
    ck_assert_uint_eq(st.services_removed, 1);
    ck_assert_uint_eq(st.services_retired, 1);
    ck_assert(!cfg_exists(&f, "api.cfg"));
    ck_assert(cfg_exists(&f, "api.cfg.removed"));
    ck_assert(cfg_exists(&f, "web.cfg"));
    ck_assert_ptr_null(haproxy_engine_committed(f.e, "be_api")); /* placement forgotten */
    /* the last service going is held: it would remove every service */
    TAKE(&f, true, {K_KUBE, V_KUBE}, {K_NODE(1), V_NODE(1)});
    st = stats(&f);
    ck_assert(st.service_removal_held);
    ck_assert_uint_eq(st.service_removals_held_total, 1);
    ck_assert(!haproxy_engine_service_retired(f.e, "web"));
    ck_assert(cfg_exists(&f, "web.cfg"));
    /* ... until its force-removal entry lets it go */
    TAKE(&f, true, {K_KUBE, V_KUBE}, {K_NODE(1), V_NODE(1)},
         {"drover/v1/haproxy/edge/force-removal/web", FORCED});
    st = stats(&f);
    ck_assert(!st.service_removal_held);
    ck_assert(haproxy_engine_service_retired(f.e, "web"));
    ck_assert(!cfg_exists(&f, "web.cfg"));
    ck_assert_uint_eq(st.services_removed, 2);
    /* a service defined again is rendered again from scratch */
    TAKE(&f, true, {K_API, SVC_API});
    ck_assert(!haproxy_engine_service_retired(f.e, "api"));
    ck_assert(cfg_exists(&f, "api.cfg"));
    fx_free(&f);
}
END_TEST

static void count_held_maint(void *arg, const char *id)
{
    ck_assert_str_eq(id, "addr/10.0.0.2");
    (*(int *)arg)++;
}

static int held_maint(struct fx *f)
{
    int n = 0;
    haproxy_engine_each_held_maint(f->e, count_held_maint, &n);
    return n;
}

/* Consul back empty: a KV-loss episode keeps the services and the drain
 * (operator intent); haproxy/<cluster>/force-kv-loss (droverctl kv-loss
 * force) ends it early: the empty tree is served as it is. */
START_TEST(test_kv_loss_episode_and_its_force)
{
    struct fx f;
    fx_init(&f, "/bin/true");
    TAKE(&f, true, {K_WEB, SVC_WEB}, {K_API, SVC_API}, {K_KUBE, V_KUBE}, {K_NODE(1), V_NODE(1)},
         {K_NODE(2), V_NODE(2)}, {"drover/v1/maintenance/addr/10.0.0.2", "{\"state\":\"drain\"}"});
    ck_assert_int_eq(held_maint(&f), 0);
    /* Consul restarted empty; the exporter wrote the nodes back */
    TAKE(&f, true, {K_NODE(1), V_NODE(1)}, {K_NODE(2), V_NODE(2)});
    struct haproxy_engine_stats st = stats(&f);
    ck_assert(st.kv_loss);
    ck_assert(!st.kv_loss_forced);
    ck_assert_uint_eq(st.maint_held, 1);
    ck_assert_int_eq(held_maint(&f), 1);
    ck_assert(!haproxy_engine_service_retired(f.e, "web"));
    ck_assert(!haproxy_engine_service_retired(f.e, "api"));
    char *agent = slurp(f.agent);
    ck_assert_ptr_nonnull(strstr(agent, "drain")); /* the agent state keeps the drain */
    free(agent);
    /* one service back: still the episode, nothing retired */
    TAKE(&f, true, {K_API, SVC_API}, {K_NODE(1), V_NODE(1)}, {K_NODE(2), V_NODE(2)});
    st = stats(&f);
    ck_assert(st.kv_loss);
    ck_assert(!haproxy_engine_service_retired(f.e, "web"));
    /* the operator forces it: web goes, the drain is no longer held */
    TAKE(&f, true, {K_API, SVC_API}, {K_NODE(1), V_NODE(1)}, {K_NODE(2), V_NODE(2)},
         {"drover/v1/haproxy/edge/force-kv-loss", FORCED});
    st = stats(&f);
    ck_assert(!st.kv_loss);
    ck_assert(st.kv_loss_forced);
    ck_assert_uint_eq(st.maint_held, 0);
    ck_assert_int_eq(held_maint(&f), 0);
    ck_assert(haproxy_engine_service_retired(f.e, "web"));
    ck_assert(!haproxy_engine_service_retired(f.e, "api"));
    fx_free(&f);
}
END_TEST

START_TEST(test_snapshot_not_from_complete_read_retires_nothing)
{
    struct fx f;
    fx_init(&f, "/bin/true");
    TAKE(&f, false, {K_WEB, SVC_WEB}, {K_API, SVC_API}, {K_KUBE, V_KUBE}, {K_NODE(1), V_NODE(1)});
    TAKE(&f, false, {K_WEB, SVC_WEB}, {K_KUBE, V_KUBE}, {K_NODE(1), V_NODE(1)});
    ck_assert(!haproxy_engine_service_retired(f.e, "api"));
    ck_assert(cfg_exists(&f, "api.cfg"));
    ck_assert_uint_eq(stats(&f).services_removed, 0);
    /* the first complete read does */
    TAKE(&f, true, {K_WEB, SVC_WEB}, {K_KUBE, V_KUBE}, {K_NODE(1), V_NODE(1)});
    ck_assert(haproxy_engine_service_retired(f.e, "api"));
    fx_free(&f);
}
END_TEST

START_TEST(test_failed_check_installs_nothing)
{
    struct fx f;
    fx_init(&f, "/bin/false");
    TAKE(&f, true, {K_WEB, SVC_WEB}, {K_KUBE, V_KUBE}, {K_NODE(1), V_NODE(1)});
    struct haproxy_engine_stats st = stats(&f);
    ck_assert_uint_eq(st.installs, 1);
    ck_assert_uint_eq(st.render_failures, 1);
    ck_assert(!cfg_exists(&f, "web.cfg"));
    ck_assert_int_eq(f.applied_calls, 0); /* nothing applied: not ready */
    /* the placement is committed all the same (the agent state has it) */
    ck_assert_ptr_nonnull(haproxy_engine_committed(f.e, "be_web"));
    fx_free(&f);
}
END_TEST

/* A definition haproxy -c refuses (here: a check script that refuses any
 * config naming fe_refused) keeps the running config, is checked once,
 * and the node churn meanwhile still reaches HAProxy through the runtime
 * API (issue 13, item 5); the refusal shows in the service status until a
 * definition renders to the running config again. */
#define SVC_WEB_REFUSED                                                                            \
    "{\"template\":\"http\",\"frontends\":[{\"name\":\"fe_web\",\"bind\":[\"127.0.0.1:18080\"],"   \
    "\"default_backend\":\"be_web\"},{\"name\":\"fe_refused\",\"bind\":[\"127.0.0.1:18082\"],"     \
    "\"default_backend\":\"be_web\"}],\"backends\":[{\"name\":\"be_web\",\"slots\":4,\"kube\":[{"  \
    "\"cluster\":\"prod-a\",\"namespace\":\"default\",\"service\":\"web\",\"port\":\"http\"}]}]}"

static void refused_status(void *arg, const struct haproxy_engine_service_status *s)
{
    const char **error = arg;
    if (strcmp(s->name, "web") == 0)
        *error = s->refused ? s->error : NULL;
}

START_TEST(test_refused_definition_keeps_runtime_changes)
{
    struct fx f;
    char check[160];
    const char *error = NULL;
    fx_init(&f, "/bin/true");
    snprintf(check, sizeof(check), "%s/haproxy-check.sh", f.dir);
    FILE *sh = fopen(check, "w");
    ck_assert_ptr_nonnull(sh);
    fputs("#!/bin/sh\nfor a in \"$@\"; do\n  [ -f \"$a\" ] && grep -q fe_refused \"$a\" && "
          "{ echo \"[ALERT] duplicate frontend\" >&2; exit 1; }\ndone\nexit 0\n",
          sh);
    ck_assert_int_eq(fclose(sh), 0);
    ck_assert_int_eq(chmod(check, 0755), 0);
    fx_stop_engine(&f);
    fx_engine(&f, check);
    TAKE(&f, true, {K_WEB, SVC_WEB}, {K_KUBE, V_KUBE}, {K_NODE(1), V_NODE(1)},
         {K_NODE(2), V_NODE(2)}, {K_NODE(3), V_NODE(3)});
    struct haproxy_engine_stats st = stats(&f);
    ck_assert_uint_eq(st.installs, 1);
    ck_assert_uint_eq(st.render_failures, 0);
    uint64_t tried = st.applies + st.apply_failures;

    TAKE(&f, true, {K_WEB, SVC_WEB_REFUSED}, {K_KUBE, V_KUBE}, {K_NODE(1), V_NODE(1)},
         {K_NODE(2), V_NODE(2)}, {K_NODE(3), V_NODE(3)});
    st = stats(&f);
    ck_assert_uint_eq(st.installs, 2);
    ck_assert_uint_eq(st.render_failures, 1);
    ck_assert_uint_eq(st.services_refused, 1);
    haproxy_engine_each_service(f.e, refused_status, &error);
    ck_assert_ptr_nonnull(error);
    ck_assert_ptr_nonnull(strstr(error, "check: "));
    char *cfg = cfg_text(&f, "web");
    ck_assert_ptr_null(strstr(cfg, "fe_refused")); /* the running config stays */
    free(cfg);
    tried = stats(&f).applies + stats(&f).apply_failures;

    /* n3 replaced by n4 while the definition is refused */
    TAKE(&f, true, {K_WEB, SVC_WEB_REFUSED}, {K_KUBE, V_KUBE}, {K_NODE(1), V_NODE(1)},
         {K_NODE(2), V_NODE(2)}, {K_NODE(4), V_NODE(4)});
    st = stats(&f);
    ck_assert_uint_eq(st.installs, 2);                            /* not checked again */
    ck_assert_uint_eq(st.render_failures, 1);                     /* nor counted or logged again */
    ck_assert_uint_eq(st.applies + st.apply_failures, tried + 1); /* the runtime apply */
    const struct slot_assignment *a = haproxy_engine_committed(f.e, "be_web");
    ck_assert_str_eq(slot_key(a, 2), "10.0.0.4:30080");
    haproxy_engine_each_service(f.e, refused_status, &error);
    ck_assert_ptr_nonnull(error);

    /* the operator puts the running definition back */
    TAKE(&f, true, {K_WEB, SVC_WEB}, {K_KUBE, V_KUBE}, {K_NODE(1), V_NODE(1)},
         {K_NODE(2), V_NODE(2)}, {K_NODE(4), V_NODE(4)});
    st = stats(&f);
    ck_assert_uint_eq(st.services_refused, 0);
    ck_assert_uint_eq(st.installs, 2);
    haproxy_engine_each_service(f.e, refused_status, &error);
    ck_assert_ptr_null(error);
    fx_free(&f);
}
END_TEST

START_TEST(test_restart_from_snapshot_file)
{
    struct fx f;
    fx_init(&f, "/bin/true");
    TAKE(&f, true, {K_WEB, SVC_WEB}, {K_KUBE, V_KUBE}, {K_NODE(1), V_NODE(3)},
         {K_NODE(2), V_NODE(1)});
    char *before = cfg_text(&f, "web");
    ck_assert_ptr_nonnull(before);
    /* a new engine (a restarted watcher) without Consul */
    fx_stop_engine(&f);
    fx_engine(&f, "/bin/true");
    ck_assert_int_eq(haproxy_engine_load_saved(f.e), 0);
    const struct slot_assignment *a = haproxy_engine_committed(f.e, "be_web");
    ck_assert_ptr_nonnull(a); /* the saved placement, before any plan */
    ck_assert_str_eq(slot_key(a, 0), "10.0.0.1:30080");
    ck_assert_str_eq(slot_key(a, 1), "10.0.0.3:30080");
    fx_settle(&f);
    struct haproxy_engine_stats st = stats(&f);
    ck_assert_uint_eq(st.snapshots, 1);
    ck_assert_uint_eq(st.installs, 1); /* checked; the same text: nothing new installed */
    ck_assert_int_ge(f.applied_calls, 1);
    char *after = cfg_text(&f, "web");
    ck_assert_str_eq(before, after);
    free(before);
    free(after);
    /* a snapshot file never retires: the next file-less snapshot lacks web */
    TAKE(&f, false, {K_API, SVC_API});
    ck_assert(!haproxy_engine_service_retired(f.e, "web"));
    fx_free(&f);
}
END_TEST

START_TEST(test_new_templates_rerender_every_service)
{
    struct fx f;
    struct template_set *set = NULL;
    char err[512];
    fx_init(&f, "/bin/true");
    TAKE(&f, true, {K_WEB, SVC_WEB}, {K_API, SVC_API}, {K_KUBE, V_KUBE}, {K_NODE(1), V_NODE(1)});
    ck_assert_uint_eq(stats(&f).installs, 2);
    ck_assert_int_eq(render_load_templates(DROVER_TEMPLATE_DIR, &set, err, sizeof(err)), 0);
    haproxy_engine_set_templates(f.e, set);
    fx_settle(&f);
    ck_assert_uint_eq(stats(&f).installs, 4);
    ck_assert_uint_eq(stats(&f).render_failures, 0);
    fx_free(&f);
}
END_TEST

/* admin word of key in the agent state file, "" if absent */
static void agent_admin(struct fx *f, const char *key, char *out, size_t len)
{
    char *text = slurp(f->agent);
    json_error_t jerr;
    json_t *root = text ? json_loads(text, 0, &jerr) : NULL;
    const char *v = json_string_value(
        json_object_get(json_object_get(json_object_get(root, "servers"), key), "admin"));
    snprintf(out, len, "%s", v ? v : "");
    json_decref(root);
    free(text);
}

START_TEST(test_expired_maintenance_replans_by_itself)
{
    struct fx f;
    char maint[128], stamp[32], admin[16];
    time_t until = time(NULL) + 2;
    struct tm tm;
    fx_init(&f, "/bin/true");
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&until, &tm));
    snprintf(maint, sizeof(maint), "{\"state\":\"drain\",\"expires\":\"%s\"}", stamp);
    TAKE(&f, true, {K_WEB, SVC_WEB}, {K_KUBE, V_KUBE}, {K_NODE(1), V_NODE(1)},
         {"drover/v1/maintenance/node/prod-a/n1", maint});
    agent_admin(&f, "be_web/slot1", admin, sizeof(admin));
    ck_assert_str_eq(admin, "drain");
    /* no KV change: the engine rebuilds the snapshot once the entry
     * expired (its timer: the expiry second + 100 ms) */
    uint64_t bound = (uint64_t)(until - time(NULL) + 2) * 1000;
    uint64_t deadline = uv_now(&f.loop) + bound;
    while (stats(&f).snapshots < 2) {
        ck_assert_msg(uv_now(&f.loop) < deadline,
                      "no snapshot rebuilt within %llu ms of the maintenance expiry",
                      (unsigned long long)bound);
        uv_run(&f.loop, UV_RUN_NOWAIT);
        usleep(5000);
        uv_update_time(&f.loop);
    }
    fx_settle(&f);
    agent_admin(&f, "be_web/slot1", admin, sizeof(admin));
    ck_assert_str_eq(admin, "ready");
    ck_assert_uint_eq(stats(&f).plans, 2);
    fx_free(&f);
}
END_TEST

START_TEST(test_expand_and_render_opts)
{
    char *s = haproxy_engine_expand("/run/haproxy-{service}.sock", "web");
    ck_assert_str_eq(s, "/run/haproxy-web.sock");
    free(s);
    s = haproxy_engine_expand("/run/haproxy.sock", "web");
    ck_assert_str_eq(s, "/run/haproxy.sock");
    free(s);
    struct haproxy_engine_opts o = {.haproxy_cluster = "edge",
                                    .stats_socket = "/s/{service}",
                                    .state_file = "/st/{service}.state",
                                    .agent_port = 5555,
                                    .maxconn = 7};
    struct snapshot_render_opts ro;
    char *stats_path, *state_path;
    ck_assert_int_eq(haproxy_engine_render_opts(&o, "api", &ro, &stats_path, &state_path), 0);
    ck_assert_str_eq(ro.stats_socket, "/s/api");
    ck_assert_str_eq(ro.server_state_file, "/st/api.state");
    ck_assert_str_eq(ro.haproxy_cluster, "edge");
    ck_assert_int_eq(ro.maxconn, 7);
    ck_assert_uint_eq(ro.agent_port, 5555);
    free(stats_path);
    free(state_path);
}
END_TEST

/* A stats socket that takes every connection and answers nothing. The
 * connections it holds keep their runtime exchanges in flight until the
 * test releases them (mute_release); from then on it closes each new
 * connection once its request is in, so later exchanges fail without
 * waiting. What is
 * held is the test's choice, not a time: on a loaded machine a fixed hold
 * ran out before the changes meant to arrive during it had been planned. */
#define MUTE_MAX_HELD 8

struct mute {
    uv_pipe_t server;
    uv_pipe_t *held[MUTE_MAX_HELD];
    size_t n_held;
    uint64_t first_held_ms; /* uv_now when the first connection was held */
    bool released;
};

static void mute_closed(uv_handle_t *h)
{
    free(h);
}

static void mute_alloc(uv_handle_t *h, size_t n, uv_buf_t *buf)
{
    static char sink[4096];
    (void)h;
    (void)n;
    *buf = uv_buf_init(sink, sizeof(sink));
}

static void mute_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    const struct mute *m = st->data;
    (void)buf; /* requests are read and never answered */
    /* once released: closed when the request is in (closed before, the
     * engine's write would raise SIGPIPE) */
    if (m->released && n != 0 && !uv_is_closing((uv_handle_t *)st))
        uv_close((uv_handle_t *)st, mute_closed);
}

static void mute_accept(uv_stream_t *server, int status)
{
    struct mute *m = server->data;
    uv_pipe_t *c = calloc(1, sizeof(*c));
    ck_assert_int_eq(status, 0);
    ck_assert_ptr_nonnull(c);
    uv_pipe_init(server->loop, c, 0);
    c->data = m;
    ck_assert_int_eq(uv_accept(server, (uv_stream_t *)c), 0);
    uv_read_start((uv_stream_t *)c, mute_alloc, mute_read);
    if (m->released)
        return;
    ck_assert_uint_lt(m->n_held, MUTE_MAX_HELD);
    if (!m->n_held)
        m->first_held_ms = uv_now(server->loop);
    m->held[m->n_held++] = c;
}

/* Close what is held (each exchange fails) and every connection after. */
static void mute_release(struct mute *m)
{
    m->released = true;
    for (size_t i = 0; i < m->n_held; i++)
        uv_close((uv_handle_t *)m->held[i], mute_closed);
    m->n_held = 0;
}

/* The engine planned `plans` windows since st0 and has nothing left to
 * do but the runtime applies in flight: what haproxy_engine_idle waits
 * for, bar those. Work still pending when the held apply ends (an agent
 * file write, the config file refresh) would send an apply of its own. */
static bool fx_planned_and_held(struct fx *f, const struct haproxy_engine_stats *st0,
                                uint64_t plans)
{
    const struct haproxy_engine *e = f->e;
    if (stats(f).plans - st0->plans < plans || quiesce_timer_pending(e->runtime_q) ||
        quiesce_timer_pending(e->struct_q) || !file_writer_idle(e->agent_writer) ||
        !engine_agent_file_current(e))
        return false;
    for (size_t i = 0; i < e->n_svcs; i++)
        if (e->svcs[i]->apply_wanted || e->svcs[i]->checking || e->svcs[i]->busy)
            return false;
    return true;
}

/* Run the loop until change `plans` is planned while the first apply is
 * held. Bounds: until an apply is held, what fx_settle gives the engine;
 * then the runtime command timeout, after which the held exchange ends
 * by itself and with it the apply the changes must wait for. */
static void fx_plan_during_hold(struct fx *f, const struct haproxy_engine_stats *st0,
                                const struct mute *m, uint64_t plans)
{
    uint64_t deadline = uv_now(&f->loop) + FX_SETTLE_BOUND_MS;
    while (!(m->n_held && fx_planned_and_held(f, st0, plans))) {
        uint64_t now = uv_now(&f->loop);
        ck_assert_msg(m->n_held || now < deadline,
                      "no runtime apply came to the stats socket within %d ms of change %llu",
                      FX_SETTLE_BOUND_MS, (unsigned long long)plans);
        ck_assert_msg(!m->n_held || now < m->first_held_ms + HAPROXY_RUNTIME_CMD_TIMEOUT_MS,
                      "change %llu not planned (%llu were) within the %d ms the held apply's "
                      "exchange waits for an answer",
                      (unsigned long long)plans, (unsigned long long)(stats(f).plans - st0->plans),
                      HAPROXY_RUNTIME_CMD_TIMEOUT_MS);
        uv_run(&f->loop, UV_RUN_NOWAIT);
        usleep(1000);
        uv_update_time(&f->loop);
    }
}

/* Changes that arrive while an apply is in the runtime queue wait for it
 * and go out in one apply, not one apply each behind each other. */
START_TEST(test_changes_during_an_apply_coalesce)
{
    struct fx f;
    struct mute m = {0};
    char path[PATH_MAX];
    fx_init(&f, "/bin/true");
    snprintf(path, sizeof(path), "%s/web.sock", f.dir);
    ck_assert_int_eq(uv_pipe_init(&f.loop, &m.server, 0), 0);
    m.server.data = &m;
    ck_assert_int_eq(uv_pipe_bind(&m.server, path), 0);
    ck_assert_int_eq(uv_listen((uv_stream_t *)&m.server, 16, mute_accept), 0);
    TAKE(&f, true, {K_WEB, SVC_WEB}, {K_KUBE, V_KUBE}, {K_NODE(1), V_NODE(1)});
    struct haproxy_engine_stats st0 = stats(&f);
    /* node 2 comes: its apply is held by the mute socket; nodes 3 and 4
     * come while it is, each planned in its own runtime window */
    const struct kv base[] = {{K_WEB, SVC_WEB},       {K_KUBE, V_KUBE},
                              {K_NODE(1), V_NODE(1)}, {K_NODE(2), V_NODE(2)},
                              {K_NODE(3), V_NODE(3)}, {K_NODE(4), V_NODE(4)}};
    for (size_t n = 4; n <= 6; n++) {
        fx_take(&f, base, n, true);
        fx_plan_during_hold(&f, &st0, &m, n - 3);
    }
    mute_release(&m);
    fx_settle(&f);
    struct haproxy_engine_stats st = stats(&f);
    ck_assert_uint_eq(st.plans - st0.plans, 3);
    /* the first change's apply, then one for the other two (not counting
     * the retries of these failed applies: see test_agents_enabled_after_the_socket_failed) */
    ck_assert_uint_eq(st.applies + st.apply_failures - st.apply_retries - st0.applies -
                          st0.apply_failures + st0.apply_retries,
                      2);
    const struct slot_assignment *a = haproxy_engine_committed(f.e, "be_web");
    ck_assert_str_eq(slot_key(a, 3), "10.0.0.4:30080"); /* the newest placement went out */
    uv_close((uv_handle_t *)&m.server, NULL);
    fx_free(&f);
}
END_TEST

/* Run the loop for ms. */
static void fx_run_for(struct fx *f, uint64_t ms)
{
    uint64_t until = uv_now(&f->loop) + ms;
    while (uv_now(&f->loop) < until) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        usleep(1000);
        uv_update_time(&f->loop);
    }
}

/* A steady stream of runtime-only changes: the config file refresh (a
 * `haproxy -c`) waits for its end instead of running each time wait_max
 * cuts the structural window. Windows of 400 / 800 ms and a change every
 * 100 ms for 1.2 s: wait_max cuts the window, it is never quiet. */
START_TEST(test_refresh_waits_for_the_stream_end)
{
    struct fx f;
    fx_init(&f, "/bin/true");
    fx_stop_engine(&f);
    f.wait_min_ms = 400;
    f.wait_max_ms = 800;
    fx_engine(&f, "/bin/true");
    TAKE(&f, true, {K_WEB, SVC_WEB}, {K_KUBE, V_KUBE}, {K_NODE(1), V_NODE(1)},
         {K_NODE(2), V_NODE(2)});
    struct haproxy_engine_stats st0 = stats(&f);
    const struct kv two[] = {{K_WEB, SVC_WEB},
                             {K_KUBE, V_KUBE},
                             {K_NODE(1), V_NODE(1)},
                             {K_NODE(2), V_NODE(2)}},
                    three[] = {{K_WEB, SVC_WEB},
                               {K_KUBE, V_KUBE},
                               {K_NODE(1), V_NODE(1)},
                               {K_NODE(3), V_NODE(3)}};
    for (int i = 0; i < 12; i++) {
        fx_take(&f, i % 2 ? two : three, 4, true);
        fx_run_for(&f, 100);
    }
    struct haproxy_engine_stats st = stats(&f);
    ck_assert_uint_eq(st.plans - st0.plans, 12);
    ck_assert_uint_eq(st.refreshes - st0.refreshes, 0); /* put off while changes came */
    fx_settle(&f);
    st = stats(&f);
    ck_assert_uint_eq(st.refreshes - st0.refreshes, 1); /* once, at the end */
    ck_assert_uint_eq(st.installs, st0.installs);       /* no reload */
    char *cfg = cfg_text(&f, "web");
    ck_assert_ptr_nonnull(strstr(cfg, "10.0.0.2")); /* the last change: n2 back */
    ck_assert_ptr_null(strstr(cfg, "10.0.0.3"));
    free(cfg);
    fx_free(&f);
}
END_TEST

/* Route maps: the runtime commands between two map texts. */
/* Two frontends a class selector routes into, each with its route map. */
#define SVC_SEL(frontends, selects)                                                                \
    "{\"template\":\"http\",\"frontends\":[" frontends "],\"backends\":[],\"select\":[" selects "]}"
#define FE_A  "{\"name\":\"fe_a\",\"bind\":[\"127.0.0.1:18090\"]}"
#define FE_B  "{\"name\":\"fe_b\",\"bind\":[\"127.0.0.1:18091\"]}"
#define SEL_A "{\"class\":\"public\",\"frontend\":\"fe_a\",\"labels\":{\"team\":\"a\"}}"
#define SEL_B "{\"class\":\"public\",\"frontend\":\"fe_b\",\"labels\":{\"team\":\"b\"}}"
#define K_SEL "drover/v1/haproxy/edge/services/sel"
#define K_KUBE_TEAM(t)                                                                             \
    "drover/v1/kube/prod-a/services/shop/" t "/http",                                              \
        "{\"node_port\":30090,\"load_balancer_class\":\"public\",\"backend_protocol\":\"http\","   \
        "\"dns_name\":\"" t ".example.com\",\"labels\":{\"team\":\"" t "\"}}"

/* A frontend removed from a service that stays: its route map goes once
 * the config without it is installed (not before: a HAProxy started from
 * the previous config reads it), the other frontend's stays, another
 * service's map whose name could read as this service's stays. */
START_TEST(test_removed_frontend_map_goes)
{
    struct fx f;
    fx_init(&f, "/bin/true");
    TAKE(&f, true, {K_SEL, SVC_SEL(FE_A "," FE_B, SEL_A "," SEL_B)}, {K_KUBE_TEAM("a")},
         {K_KUBE_TEAM("b")}, {K_NODE(1), V_NODE(1)});
    ck_assert(cfg_exists(&f, "sel.cfg"));
    ck_assert(cfg_exists(&f, "sel.fe_a.map"));
    ck_assert(cfg_exists(&f, "sel.fe_b.map"));
    /* "sel.x.fe.map" is also service "sel.x"'s frontend "fe" */
    char other[PATH_MAX];
    snprintf(other, sizeof(other), "%s/sel.x.fe.map", f.cfg_dir);
    ck_assert_int_eq(atomic_file_write(other, "", 0, 0644), 0);
    snprintf(other, sizeof(other), "%s/sel.x.cfg", f.cfg_dir);
    ck_assert_int_eq(atomic_file_write(other, "", 0, 0644), 0);
    TAKE(&f, true, {K_SEL, SVC_SEL(FE_A, SEL_A)}, {K_KUBE_TEAM("a")}, {K_KUBE_TEAM("b")},
         {K_NODE(1), V_NODE(1)});
    ck_assert_uint_eq(stats(&f).installs, 2);
    ck_assert(cfg_exists(&f, "sel.fe_a.map"));
    ck_assert_msg(!cfg_exists(&f, "sel.fe_b.map"), "the map of the removed frontend stayed");
    ck_assert(cfg_exists(&f, "sel.x.fe.map"));
    /* the frontend back: its map written anew */
    TAKE(&f, true, {K_SEL, SVC_SEL(FE_A "," FE_B, SEL_A "," SEL_B)}, {K_KUBE_TEAM("a")},
         {K_KUBE_TEAM("b")}, {K_NODE(1), V_NODE(1)});
    char *map = slurp_in(&f, "sel.fe_b.map");
    ck_assert_ptr_nonnull(map);
    ck_assert_msg(strstr(map, "b.example.com"), "%s", map);
    free(map);
    fx_free(&f);
}
END_TEST

static ino_t inode_of(const char *path)
{
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    return st.st_ino;
}

/* The structural window makes a map renamed on the loop durable by an
 * fsync only; the file is written again only when that rename failed. */
START_TEST(test_persist_maps_writes_only_what_failed)
{
    struct fx f;
    fx_init(&f, "/bin/true");
    struct service_state s = {.e = f.e, .name = "t"};
    struct service_map m = {.durable_pending = true};
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/t.fe.map", f.cfg_dir);
    m.path = path;
    m.text = "a.example.com be_a\n";
    ck_assert_int_eq(atomic_file_replace(path, m.text, strlen(m.text), 0644), 0);
    s.maps = &m;
    s.n_maps = 1;
    ino_t before = inode_of(path);
    engine_persist_maps(&s);
    ck_assert_msg(inode_of(path) == before, "a map already in place was written again");
    ck_assert(!m.durable_pending);
    engine_persist_maps(&s); /* nothing pending: nothing at all */
    /* its rename on the loop failed: written now */
    m.text = "b.example.com be_b\n";
    m.durable_pending = m.visible_pending = true;
    engine_persist_maps(&s);
    ck_assert(!m.durable_pending && !m.visible_pending);
    char *text = slurp(path);
    ck_assert_str_eq(text, "b.example.com be_b\n");
    free(text);
    fx_settle(&f);
    fx_free(&f);
}
END_TEST

/* One engine per config dir: a second one is refused while the first
 * holds it, sweeps nothing, and leaks nothing (the debug preset's
 * LeakSanitizer checks the writers it had made). The first one's start
 * removed the temp files of writers that are gone, not a live one's. */
START_TEST(test_config_dir_is_one_engines)
{
    struct fx f;
    char dead[PATH_MAX], live[PATH_MAX], old[PATH_MAX], other[PATH_MAX];
    fx_init(&f, "/bin/true");
    fx_stop_engine(&f);
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0)
        _exit(0);
    ck_assert_int_eq(waitpid(child, NULL, 0), child);
    snprintf(dead, sizeof(dead), "%s/.web.cfg.tmp.%d.0000abcd", f.cfg_dir, (int)child);
    snprintf(old, sizeof(old), "%s/web.fe.map.tmp.%d", f.cfg_dir, (int)child);
    snprintf(live, sizeof(live), "%s/.web.fe.map.tmp.%d.0000abcd", f.cfg_dir, (int)getppid());
    snprintf(other, sizeof(other), "%s/.agent.json.tmp.%d.0000abcd", f.dir, (int)child);
    const char *files[] = {dead, old, live, other};
    for (size_t i = 0; i < 4; i++)
        ck_assert_int_eq(atomic_file_write(files[i], "x", 1, 0644), 0);
    fx_engine(&f, "/bin/true");
    ck_assert_msg(access(dead, F_OK) < 0 && access(old, F_OK) < 0 && access(other, F_OK) < 0,
                  "temp files of a dead writer stayed");
    ck_assert_int_eq(access(live, F_OK), 0);
    /* a second engine on the same config dir, the first one running */
    ck_assert_int_eq(atomic_file_write(dead, "x", 1, 0644), 0);
    struct template_set *set = NULL;
    char err[1024];
    ck_assert_msg(render_load_templates(DROVER_TEMPLATE_DIR, &set, err, sizeof(err)) == 0, "%s",
                  err);
    struct haproxy_engine *second = NULL;
    ck_assert_int_eq(haproxy_engine_new(&f.loop, &f.o, set, &second), -EWOULDBLOCK);
    ck_assert_ptr_null(second);
    ck_assert_msg(access(dead, F_OK) == 0, "a refused engine swept the config dir");
    fx_free(&f);
}
END_TEST

START_TEST(test_map_commands)
{
    char **cmds = NULL;
    size_t n = 0;
    const char *old = "a.example.com be_a\nb.example.com be_b\nc.example.com be_c\n";
    const char *new = "aa.example.com be_a\nb.example.com be_x\nc.example.com be_c\n";
    ck_assert_int_eq(engine_map_commands("/m.map", old, new, &cmds, &n), 0);
    ck_assert_uint_eq(n, 3);
    ck_assert_str_eq(cmds[0], "del map /m.map a.example.com");
    ck_assert_str_eq(cmds[1], "add map /m.map aa.example.com be_a");
    ck_assert_str_eq(cmds[2], "set map /m.map b.example.com be_x");
    for (size_t i = 0; i < n; i++)
        free(cmds[i]);
    free(cmds);
    ck_assert_int_eq(engine_map_commands("/m.map", old, old, &cmds, &n), 0);
    ck_assert_uint_eq(n, 0);
    free(cmds);
    ck_assert_int_eq(engine_map_commands("/m.map", "", old, &cmds, &n), 0);
    ck_assert_uint_eq(n, 3);
    ck_assert_str_eq(cmds[2], "add map /m.map c.example.com be_c");
    for (size_t i = 0; i < n; i++)
        free(cmds[i]);
    free(cmds);
}
END_TEST

/* ---- a stateful fake of HAProxy's stats socket ---- */

/* be_web's 4 slots as HAProxy keeps them: what `show servers state`
 * dumps and the runtime commands change. Every `enable agent` is checked
 * against the agent state file at that moment: an agent enabled before
 * the file shows its slot's occupant answers from the older file (maint,
 * the slot was free) and takes the server out. */
#define FAKE_SLOTS    4
#define FAKE_HOLD_MAX 4

struct fake_srv {
    char addr[64];
    unsigned port, admin, agent;
    int uweight;
};

struct fake_conn {
    uv_pipe_t pipe;
    struct fake_haproxy *h;
    char req[8192];
    size_t len;
    char *answer;
    uv_write_t w;
};

struct fake_haproxy {
    struct fx *f;
    char path[108];    /* sun_path */
    uv_pipe_t *server; /* NULL while "down" */
    struct fake_srv srv[FAKE_SLOTS];
    int early_enables;     /* `enable agent` of a slot the agent file did not show ready */
    int command_exchanges; /* exchanges that changed something, answered */
    int down_after;        /* > 0: stop listening once this many were answered */
    bool hold;             /* hold exchanges that change something until released */
    bool hold_info;        /* hold `show info` (a ping) until released */
    bool mute_info;        /* never answer `show info`: the client's close ends it */
    int pings;             /* `show info` exchanges answered */
    struct fake_conn *held[FAKE_HOLD_MAX];
    int n_held;
};

static void fake_closed(uv_handle_t *h)
{
    struct fake_conn *c = h->data;
    free(c->answer);
    free(c);
}

static void fake_written(uv_write_t *w, int status)
{
    struct fake_conn *c = w->data;
    (void)status;
    uv_close((uv_handle_t *)&c->pipe, fake_closed);
}

static int fake_slot(const char *cmd, const char *verb)
{
    size_t n = strlen(verb);
    int slot;
    if (strncmp(cmd, verb, n) != 0 || sscanf(cmd + n, "be_web/slot%d", &slot) != 1 || slot < 1 ||
        slot > FAKE_SLOTS)
        return -1;
    return slot - 1;
}

static void fake_dump(struct fake_haproxy *h, char *out, size_t len)
{
    size_t o = (size_t)snprintf(
        out, len,
        "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight "
        "srv_iweight srv_time_since_last_change srv_check_status srv_check_result "
        "srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id "
        "srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr "
        "srv_agent_port\n");
    for (int i = 0; i < FAKE_SLOTS && o < len; i++) {
        const struct fake_srv *v = &h->srv[i];
        o += (size_t)snprintf(out + o, len - o,
                              "3 be_web %d slot%d %s 2 %u %d 100 3 1 0 0 8 %u 0 0 - %u - 0 0 - "
                              "127.0.0.1 5555\n",
                              i + 1, i + 1, v->addr, v->admin, v->uweight, v->agent, v->port);
    }
}

/* Run one command on the fake; its answer (without the prompt) to out. */
static void fake_command(struct fake_haproxy *h, const char *cmd, char *out, size_t len, bool *chg)
{
    char addr[64], state[16], key[32], admin[16];
    unsigned port;
    int slot, weight;
    out[0] = '\0';
    if (strcmp(cmd, "show info") == 0) {
        h->pings++;
        snprintf(out, len, "Name: HAProxy\nVersion: 2.6.12\n");
        return;
    }
    if (strncmp(cmd, "show servers state", 18) == 0) {
        fake_dump(h, out, len);
        return;
    }
    *chg = true;
    if ((slot = fake_slot(cmd, "enable agent ")) >= 0) {
        snprintf(key, sizeof(key), "be_web/slot%d", slot + 1);
        agent_admin(h->f, key, admin, sizeof(admin));
        h->early_enables += strcmp(admin, "ready") != 0;
        h->srv[slot].agent |= SLOTS_CHK_ENABLED;
    } else if ((slot = fake_slot(cmd, "disable agent ")) >= 0) {
        h->srv[slot].agent &= ~(unsigned)SLOTS_CHK_ENABLED;
    } else if ((slot = fake_slot(cmd, "set server ")) >= 0) {
        const char *arg = strchr(cmd + strlen("set server "), ' ');
        struct fake_srv *v = &h->srv[slot];
        if (sscanf(arg, " addr %63s port %u", addr, &port) == 2) {
            snprintf(v->addr, sizeof(v->addr), "%s", addr);
            v->port = port;
        } else if (sscanf(arg, " weight %d", &weight) == 1) {
            v->uweight = weight;
        } else if (sscanf(arg, " state %15s", state) == 1 && strcmp(state, "ready") == 0) {
            v->admin &= ~(unsigned)(SLOTS_ADMF_FMAINT | SLOTS_ADMF_FDRAIN);
        } else if (strcmp(state, "maint") == 0) {
            v->admin |= SLOTS_ADMF_FMAINT;
        } else {
            snprintf(out, len, "Unknown command.\n");
        }
    } else {
        snprintf(out, len, "Unknown command.\n");
    }
}

static void fake_down(struct fake_haproxy *h)
{
    if (!h->server)
        return;
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    uv_close((uv_handle_t *)h->server, (uv_close_cb)free); /* unlinks the path */
    h->server = NULL;
    /* a socket file nobody listens on, as a killed HAProxy leaves it:
     * connections are refused */
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    snprintf(un.sun_path, sizeof(un.sun_path), "%s", h->path);
    unlink(h->path);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&un, sizeof(un)), 0);
    close(fd);
}

/* Answer c's request: the prompt, then each command's answer and prompt. */
static void fake_answer(struct fake_conn *c)
{
    struct fake_haproxy *h = c->h;
    size_t cap = 64 * 1024, o = 0;
    char *line, *save = NULL, one[4096];
    bool changed = false;
    c->answer = malloc(cap);
    ck_assert_ptr_nonnull(c->answer);
    o += (size_t)snprintf(c->answer, cap, "\n> ");
    for (line = strtok_r(c->req, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (strcmp(line, "prompt") == 0 || strcmp(line, "quit") == 0)
            continue;
        fake_command(h, line, one, sizeof(one), &changed);
        o += (size_t)snprintf(c->answer + o, cap - o, "%s\n> ", one);
        ck_assert_uint_lt(o, cap);
    }
    uv_buf_t b = uv_buf_init(c->answer, (unsigned)o);
    c->w.data = c;
    ck_assert_int_eq(uv_write(&c->w, (uv_stream_t *)&c->pipe, &b, 1, fake_written), 0);
    if (changed && ++h->command_exchanges == h->down_after)
        fake_down(h); /* "dies" right after it answered */
}

static void fake_alloc(uv_handle_t *hd, size_t n, uv_buf_t *buf)
{
    struct fake_conn *c = hd->data;
    (void)n;
    *buf = uv_buf_init(c->req + c->len, (unsigned)(sizeof(c->req) - 1 - c->len));
}

static void fake_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    struct fake_conn *c = st->data;
    struct fake_haproxy *h = c->h;
    (void)buf;
    if (n < 0) {
        uv_close((uv_handle_t *)&c->pipe, fake_closed);
        return;
    }
    c->len += (size_t)n;
    c->req[c->len] = '\0';
    if (!strstr(c->req, "quit\n"))
        return;
    bool info = strstr(c->req, "show info") != NULL;
    if (info && h->mute_info)
        return; /* a worker that accepts and never answers */
    uv_read_stop(st);
    bool changes = strstr(c->req, "set server") || strstr(c->req, " agent ");
    if (((h->hold && changes) || (h->hold_info && info)) && h->n_held < FAKE_HOLD_MAX) {
        h->held[h->n_held++] = c;
        return;
    }
    fake_answer(c);
}

static void fake_accept(uv_stream_t *server, int status)
{
    struct fake_haproxy *h = server->data;
    struct fake_conn *c = calloc(1, sizeof(*c));
    ck_assert_int_eq(status, 0);
    ck_assert_ptr_nonnull(c);
    c->h = h;
    uv_pipe_init(server->loop, &c->pipe, 0);
    c->pipe.data = c;
    ck_assert_int_eq(uv_accept(server, (uv_stream_t *)&c->pipe), 0);
    uv_read_start((uv_stream_t *)&c->pipe, fake_alloc, fake_read);
}

/* Listen at <dir>/web.sock (the engine's stats socket for service web). */
static void fake_up(struct fake_haproxy *h)
{
    h->server = malloc(sizeof(*h->server));
    ck_assert_ptr_nonnull(h->server);
    uv_pipe_init(&h->f->loop, h->server, 0);
    h->server->data = h;
    unlink(h->path);
    ck_assert_int_eq(uv_pipe_bind(h->server, h->path), 0);
    ck_assert_int_eq(uv_listen((uv_stream_t *)h->server, 16, fake_accept), 0);
}

/* Every slot free, as the config renders them: maint, agent off. */
static void fake_start(struct fake_haproxy *h, struct fx *f)
{
    memset(h, 0, sizeof(*h));
    h->f = f;
    signal(SIGPIPE, SIG_IGN); /* a client gone before its answer */
    snprintf(h->path, sizeof(h->path), "%s/web.sock", f->dir);
    for (int i = 0; i < FAKE_SLOTS; i++)
        h->srv[i] = (struct fake_srv){.addr = "0.0.0.0",
                                      .port = 1,
                                      .admin = SLOTS_ADMF_FMAINT | SLOTS_ADMF_CMAINT,
                                      .agent = SLOTS_CHK_CONFIGURED,
                                      .uweight = 100};
    fake_up(h);
}

static void fake_release(struct fake_haproxy *h)
{
    h->hold = false;
    for (int i = 0; i < h->n_held; i++)
        fake_answer(h->held[i]);
    h->n_held = 0;
}

/* The slots that serve (ready, an address) have their agent on. */
static int fake_agents_missing(const struct fake_haproxy *h)
{
    int missing = 0;
    for (int i = 0; i < FAKE_SLOTS; i++)
        missing += !(h->srv[i].admin & SLOTS_ADMF_FMAINT) && !(h->srv[i].agent & SLOTS_CHK_ENABLED);
    return missing;
}

static int fake_serving(const struct fake_haproxy *h)
{
    int n = 0;
    for (int i = 0; i < FAKE_SLOTS; i++)
        n += !(h->srv[i].admin & SLOTS_ADMF_FMAINT);
    return n;
}

/* Run the loop until done(h) or bound_ms; false if the bound ran out. */
static bool fake_run_until(struct fake_haproxy *h, bool (*done)(const struct fake_haproxy *),
                           uint64_t bound_ms)
{
    uint64_t deadline = uv_now(&h->f->loop) + bound_ms;
    while (!done(h)) {
        if (uv_now(&h->f->loop) >= deadline)
            return false;
        uv_run(&h->f->loop, UV_RUN_NOWAIT);
        usleep(1000);
        uv_update_time(&h->f->loop);
    }
    return true;
}

static void fake_stop(struct fake_haproxy *h)
{
    fake_release(h);
    fake_down(h);
}

/* How long a failed apply may wait for its retry: the repair backoff's
 * cap (5 s) twice, for the failures while the socket was down. */
#define REPAIR_BOUND_MS 10000
/* The fake stays down this long: several retries fail meanwhile. */
#define FAKE_DOWN_MS 300

static bool fake_two_serve_with_agents(const struct fake_haproxy *h)
{
    return fake_serving(h) == 2 && fake_agents_missing(h) == 0;
}

static bool fake_changed_once(const struct fake_haproxy *h)
{
    return h->command_exchanges >= 1;
}

/* The early apply (agents of filled slots off while the agent file is
 * written) gets through, then HAProxy's socket goes away before the
 * apply that enables those agents: once it is back, the agents are
 * enabled without a new change and without the periodic resync (off
 * here). */
START_TEST(test_agents_enabled_after_the_socket_failed)
{
    struct fx f;
    struct fake_haproxy h;
    fx_init(&f, "/bin/true");
    fake_start(&h, &f);
    TAKE(&f, true, {K_WEB, SVC_WEB}, {K_KUBE, V_KUBE}); /* installs the config, no server */
    h.down_after = 1;
    const struct kv two[] = {
        {K_WEB, SVC_WEB}, {K_KUBE, V_KUBE}, {K_NODE(1), V_NODE(1)}, {K_NODE(2), V_NODE(2)}};
    fx_take(&f, two, 4, true);
    ck_assert_msg(fake_run_until(&h, fake_changed_once, REPAIR_BOUND_MS),
                  "no runtime apply reached the fake stats socket within %d ms", REPAIR_BOUND_MS);
    fx_run_for(&f, FAKE_DOWN_MS);
    ck_assert_int_eq(fake_serving(&h), 2);        /* the early apply: both serve... */
    ck_assert_int_eq(fake_agents_missing(&h), 2); /* ...with their agents still off */
    ck_assert_uint_gt(stats(&f).apply_failures, 0);
    fake_up(&h);
    ck_assert_msg(fake_run_until(&h, fake_two_serve_with_agents, REPAIR_BOUND_MS),
                  "the agents of the 2 filled slots still off %d ms after the stats socket came "
                  "back (%d missing)",
                  REPAIR_BOUND_MS, fake_agents_missing(&h));
    ck_assert_int_eq(h.early_enables, 0);
    fake_stop(&h);
    fx_free(&f);
}
END_TEST

/* Block every libuv threadpool thread (the agent file's writer runs
 * there) until released. */
struct pool_block {
    uv_work_t w[128];
    int n;
    atomic_int running;
    sem_t go;
};

static void block_work(uv_work_t *w)
{
    struct pool_block *b = w->data;
    atomic_fetch_add(&b->running, 1);
    sem_wait(&b->go);
}

static void block_after(uv_work_t *w, int status)
{
    (void)w;
    (void)status;
}

static void pool_block(struct pool_block *b, uv_loop_t *loop)
{
    const char *env = getenv("UV_THREADPOOL_SIZE");
    b->n = env && atoi(env) > 0 ? atoi(env) : 4;
    ck_assert_int_le(b->n, 128);
    atomic_init(&b->running, 0);
    ck_assert_int_eq(sem_init(&b->go, 0, 0), 0);
    for (int i = 0; i < b->n; i++) {
        b->w[i].data = b;
        ck_assert_int_eq(uv_queue_work(loop, &b->w[i], block_work, block_after), 0);
    }
    uint64_t deadline = uv_now(loop) + CHECK_BOUND_MS;
    while (atomic_load(&b->running) < b->n) {
        ck_assert_msg(uv_now(loop) < deadline, "%d threadpool threads not busy within %d ms", b->n,
                      CHECK_BOUND_MS);
        usleep(1000);
        uv_update_time(loop);
    }
}

static void pool_release(struct pool_block *b)
{
    for (int i = 0; i < b->n; i++)
        sem_post(&b->go);
}

static bool fake_one_held(const struct fake_haproxy *h)
{
    return h->n_held == 1;
}

/* A plan whose agent file is still being written when the apply in flight
 * ends: the follow-up apply that carries it leaves the agents of the
 * slots it fills off, and they are enabled once the file shows them. */
START_TEST(test_no_agent_enabled_before_its_file)
{
    struct fx f;
    struct fake_haproxy h;
    struct pool_block pb;
    char admin[16];
    fx_init(&f, "/bin/true");
    fake_start(&h, &f);
    TAKE(&f, true, {K_WEB, SVC_WEB}, {K_KUBE, V_KUBE});
    /* node 1: its early apply is held by the socket while its agent file
     * is written */
    h.hold = true;
    const struct kv one[] = {{K_WEB, SVC_WEB}, {K_KUBE, V_KUBE}, {K_NODE(1), V_NODE(1)}},
                    two[] = {{K_WEB, SVC_WEB},
                             {K_KUBE, V_KUBE},
                             {K_NODE(1), V_NODE(1)},
                             {K_NODE(2), V_NODE(2)}};
    fx_take(&f, one, 3, true);
    ck_assert_msg(fake_run_until(&h, fake_one_held, CHECK_BOUND_MS),
                  "node 1's apply did not reach the fake stats socket within %d ms",
                  CHECK_BOUND_MS);
    uint64_t deadline = uv_now(&f.loop) + CHECK_BOUND_MS;
    do {
        ck_assert_msg(uv_now(&f.loop) < deadline, "agent file without node 1 after %d ms",
                      CHECK_BOUND_MS);
        fx_run_for(&f, 5);
        agent_admin(&f, "be_web/slot1", admin, sizeof(admin));
    } while (strcmp(admin, "ready") != 0);
    fx_run_for(&f, 20); /* its callback: the full apply waits for the held one */
    /* node 2 while node 1's apply is held and its agent file cannot be
     * written */
    pool_block(&pb, &f.loop);
    fx_take(&f, two, 4, true);
    fx_run_for(&f, 20); /* > the runtime window: node 2 is planned */
    agent_admin(&f, "be_web/slot2", admin, sizeof(admin));
    ck_assert_str_eq(admin, "maint"); /* the file still shows slot 2 free */
    fake_release(&h);
    h.hold = true; /* the follow-up is held too: nothing changes meanwhile */
    ck_assert_msg(fake_run_until(&h, fake_one_held, CHECK_BOUND_MS),
                  "no follow-up apply within %d ms", CHECK_BOUND_MS);
    fake_release(&h);
    fx_run_for(&f, 20);
    pool_release(&pb);
    ck_assert_msg(fake_run_until(&h, fake_two_serve_with_agents, CHECK_BOUND_MS),
                  "slots 1 and 2 not serving with their agents on within %d ms (%d serve, %d "
                  "agents off)",
                  CHECK_BOUND_MS, fake_serving(&h), fake_agents_missing(&h));
    ck_assert_int_eq(h.early_enables, 0);
    fx_settle(&f);
    ck_assert_int_eq(sem_destroy(&pb.go), 0);
    fake_stop(&h);
    fx_free(&f);
}
END_TEST

/* ---- a fake master CLI (fake_master_cli.h): `show proc` lists one worker ---- */

/* Every command gets the list: the worker pid is no child of this
 * process, so the /proc probe finds nothing stopped. */
static const char *master_answer(void *arg, const char *cmd)
{
    (void)arg;
    (void)cmd;
    return "#<PID>          <type>          <reloads>       <uptime>        <version>\n"
           "1000000         master          0               0d00h00m09s     2.6.12\n"
           "# workers\n"
           "1000001         worker          0               0d00h00m09s     2.6.12\n";
}

/* Listen at <dir>/web.master (the engine's master socket for web). */
static void master_up(struct fake_master_cli *m, struct fx *f)
{
    char path[sizeof(m->path)];
    snprintf(path, sizeof(path), "%s/web.master", f->dir);
    ck_assert_int_eq(fake_master_cli_start(m, path, master_answer, NULL), 0);
}

static void tick(uv_timer_t *t)
{
    (void)t; /* wakes the loop: the caller looks at its condition */
}

/* Run f's loop until f->ready is want or bound_ms ran out; false then.
 * The loop waits for I/O in between, as the watcher's does: a loop run
 * with UV_RUN_NOWAIT and a sleep counts as stalled (loop_lag.h), and the
 * client would give every ping a second timeout. */
static bool fx_run_until_ready(struct fx *f, bool want, uint64_t bound_ms)
{
    uv_timer_t t;
    uint64_t deadline = uv_now(&f->loop) + bound_ms;
    ck_assert_int_eq(uv_timer_init(&f->loop, &t), 0);
    uv_timer_start(&t, tick, 5, 5);
    while (f->ready != want && uv_now(&f->loop) < deadline)
        uv_run(&f->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT); /* t closed */
    return f->ready == want;
}

static bool fake_info_held(const struct fake_haproxy *h)
{
    return h->n_held == 1;
}

#define LIVE_PROBE_MS 50
/* the ping's bound the engine derives from LIVE_PROBE_MS (4 intervals) */
#define LIVE_PING_MS (4 * LIVE_PROBE_MS)

/* A worker that the master lists and that accepts on its stats socket but
 * never answers (stuck in D state, a loop, a blocking call: nothing /proc
 * shows) makes the host not ready after 3 missed pings; one that answers
 * late but within the ping's bound stays ready; one answer and it is
 * ready again. */
START_TEST(test_worker_that_never_answers_is_not_ready)
{
    struct fx f;
    struct fake_haproxy h;
    struct fake_master_cli m;
    fx_init_probed(&f, "/bin/true", LIVE_PROBE_MS);
    fake_start(&h, &f);
    TAKE(&f, true, {K_WEB, SVC_WEB}, {K_KUBE, V_KUBE}); /* installs the config */
    master_up(&m, &f);
    ck_assert_msg(fx_run_until_ready(&f, true, CHECK_BOUND_MS),
                  "not ready within %d ms of the master CLI listing a worker", CHECK_BOUND_MS);
    /* late answers: each ping held a quarter of its bound, four in a row
     * (more than the misses that make a worker mute) */
    for (int i = 0; i < 4; i++) {
        h.hold_info = true;
        ck_assert_msg(fake_run_until(&h, fake_info_held, CHECK_BOUND_MS),
                      "late answer %d: no ping reached the stats socket within %d ms", i,
                      CHECK_BOUND_MS);
        fx_run_for(&f, LIVE_PING_MS / 4);
        fake_release(&h);
        ck_assert_msg(f.ready, "not ready after a ping answered in %d of its %d ms",
                      LIVE_PING_MS / 4, LIVE_PING_MS);
    }
    fx_run_for(&f, 2 * LIVE_PROBE_MS);
    ck_assert(f.ready);
    /* no answer at all: not ready, but only once 3 pings in a row ran out */
    h.mute_info = true;
    uint64_t muted_at = uv_now(&f.loop);
    ck_assert_msg(fx_run_until_ready(&f, false, CHECK_BOUND_MS),
                  "still ready %d ms after the stats socket stopped answering", CHECK_BOUND_MS);
    /* the first of the 3 may have been sent just before the mute; the
     * other two waited their whole bound after it */
    ck_assert_uint_ge(uv_now(&f.loop) - muted_at, 2 * LIVE_PING_MS);
    h.mute_info = false;
    int pings = h.pings;
    ck_assert_msg(fx_run_until_ready(&f, true, CHECK_BOUND_MS),
                  "not ready again within %d ms of the stats socket answering", CHECK_BOUND_MS);
    ck_assert_int_gt(h.pings, pings);
    fake_master_cli_stop(&m);
    fake_stop(&h);
    fx_free(&f);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("haproxy_engine");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_first_snapshot_installs_checked_config);
    tcase_add_test(tc, test_map_commands);
    tcase_add_test(tc, test_removed_frontend_map_goes);
    tcase_add_test(tc, test_persist_maps_writes_only_what_failed);
    tcase_add_test(tc, test_config_dir_is_one_engines);
    tcase_add_test(tc, test_member_change_is_runtime_only);
    tcase_add_test(tc, test_more_servers_than_slots_reloads);
    tcase_add_test(tc, test_removal_guard_holds_until_forced);
    tcase_add_test(tc, test_backend_share_overrides_default);
    tcase_add_test(tc, test_removed_service_is_retired);
    tcase_add_test(tc, test_snapshot_not_from_complete_read_retires_nothing);
    tcase_add_test(tc, test_failed_check_installs_nothing);
    tcase_add_test(tc, test_kv_loss_episode_and_its_force);
    tcase_add_test(tc, test_refused_definition_keeps_runtime_changes);
    tcase_add_test(tc, test_restart_from_snapshot_file);
    tcase_add_test(tc, test_new_templates_rerender_every_service);
    tcase_add_test(tc, test_expired_maintenance_replans_by_itself);
    tcase_add_test(tc, test_expand_and_render_opts);
    tcase_add_test(tc, test_changes_during_an_apply_coalesce);
    tcase_add_test(tc, test_refresh_waits_for_the_stream_end);
    tcase_add_test(tc, test_agents_enabled_after_the_socket_failed);
    tcase_add_test(tc, test_no_agent_enabled_before_its_file);
    tcase_add_test(tc, test_worker_that_never_answers_is_not_ready);
    suite_add_tcase(s, tc);
    return suite_main_run(s);
}
