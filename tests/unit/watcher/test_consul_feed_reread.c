/* SPDX-License-Identifier: Apache-2.0 */
/*
 * consul_feed against a scripted fake Consul (tests/lib/fake_http): after
 * Consul comes back from a loss (errors, then an emptier tree at a lower
 * index), no snapshot mixes prefixes read before the loss with prefixes
 * read after it, and a re-read that comes back unchanged still lets the
 * next snapshot through.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consul_feed.h"
#include "consul_test_util.h"
#include "fake_http.h"
#include "log.h"
#include "str_affix.h"

#define ROOT    "drover/v1/"
#define P_DEFS  ROOT "haproxy/edge/"
#define P_MAINT ROOT "maintenance/"
#define P_NODES ROOT "kube/prod-a/nodes/"
#define P_SHARD ROOT "kube/prod-a/node-shards/0a/"
#define K_WEB   P_DEFS "services/web"
#define K_API   P_DEFS "services/api"
#define K_DRAIN P_MAINT "addr/10.0.0.2"

static const char *const clusters[] = {"prod-a"};
static const struct kv_model_opts model = {
    .root = ROOT, .haproxy_cluster = "edge", .kube_clusters = clusters, .n_kube_clusters = 1};

enum phase {
    PHASE_UP,     /* the tree in `keys` */
    PHASE_DOWN,   /* every request: 500 (Consul lost) */
    PHASE_AFTER,  /* back at a lower index: `keys`, prefix `slow` answered late */
    PHASE_SILENT, /* back at a lower index without an error in between: a
                   * blocking query on an index from before waits (Consul
                   * answers it when its own index passes it or the wait
                   * ends); only maintenance/'s next query sees the break */
};

#define SILENT_HOLD_MS 4000 /* PHASE_SILENT: how long a query on an old index waits */

struct fake {
    uv_loop_t loop;
    struct fake_http *srv;
    struct consul_client *c;
    struct consul_feed *feed;
    enum phase phase;
    const char *keys[4]; /* present now (NULL-terminated) */
    const char *slow;    /* PHASE_AFTER: this prefix's full read answers late */
    unsigned slow_ms;
    uint64_t slow_due; /* loop time the late full read is answered at, 0: not yet sent */
    bool check_mixed;
    unsigned errors_seen;
    /* snapshots delivered */
    unsigned snaps;
    bool mixed;           /* a snapshot had web but not its drain */
    bool got_empty;       /* a snapshot with no entry at all */
    bool got_api;         /* a snapshot with api */
    bool api_before_slow; /* ... built before the slow re-read answered */
    bool down_errors;     /* every fixed watch failed at least once */
    bool break_by_reset;  /* PHASE_SILENT: maintenance/ sees the index go back, not an error */
    bool maint_broke;     /* PHASE_SILENT: maintenance/ saw the break */
    bool no_break;        /* PHASE_SILENT: no watch sees it (all wait) */
};

/* The KV list body for prefix under the keys present now. */
static char *kv_body(const struct fake *f, const char *prefix)
{
    char buf[4096];
    size_t o = (size_t)snprintf(buf, sizeof(buf), "[");
    bool first = true;
    for (size_t i = 0; f->keys[i]; i++) {
        if (!str_has_prefix(f->keys[i], prefix))
            continue;
        /* the value, base64: {"state":"drain"} for maintenance, "x" else */
        const char *v = str_has_prefix(f->keys[i], P_MAINT) ? "eyJzdGF0ZSI6ImRyYWluIn0=" : "eA==";
        o += (size_t)snprintf(buf + o, sizeof(buf) - o,
                              "%s{\"Key\":\"%s\",\"Value\":\"%s\",\"ModifyIndex\":7}",
                              first ? "" : ",", f->keys[i], v);
        first = false;
    }
    snprintf(buf + o, sizeof(buf) - o, "]");
    return strdup(buf);
}

static void handler(void *arg, const struct fake_http_req *req, struct fake_http_reply *rep)
{
    struct fake *f = arg;
    const char *prefix = req->url + strlen("/v1/kv/");
    char p[256];
    snprintf(p, sizeof(p), "%.*s", (int)strcspn(prefix, "?"), prefix);
    bool blocking = strstr(req->url, "index=") != NULL;
    rep->has_index = true;
    if (f->phase == PHASE_DOWN) {
        rep->status = 500;
        rep->body = strdup("rpc error making call: No cluster leader");
        f->errors_seen++;
        return;
    }
    if (f->phase == PHASE_SILENT && strcmp(p, P_MAINT) == 0 && !f->maint_broke && !f->no_break) {
        f->maint_broke = true;
        if (!f->break_by_reset) {
            rep->status = 500;
            rep->body = strdup("rpc error making call: No cluster leader");
            return;
        }
        /* answered at once with the new, lower index: a reset */
    } else if (f->phase == PHASE_SILENT && blocking &&
               strtoull(strstr(req->url, "index=") + 6, NULL, 10) > 5) {
        rep->index = 5;
        rep->body = kv_body(f, p);
        rep->delay_ms = SILENT_HOLD_MS;
        return;
    }
    /* before the loss at index 100, after it at 5 (Consul restarted) */
    rep->index = f->phase == PHASE_UP ? 100 : 5;
    rep->body = kv_body(f, p);
    if (blocking) {
        rep->delay_ms = 30; /* an unchanged wake-up, then the next query */
    } else if (f->phase == PHASE_AFTER && f->slow && strcmp(p, f->slow) == 0) {
        rep->delay_ms = f->slow_ms;
        f->slow_due = uv_now(&f->loop) + f->slow_ms;
    }
    if (rep->status == 0 && strcmp(rep->body, "[]") == 0)
        rep->status = 404; /* Consul: an empty prefix is a 404 with an index */
}

static bool snap_has(const struct snapshot *s, const char *key)
{
    for (size_t i = 0; i < s->n_entries; i++)
        if (strcmp(s->entries[i].key, key) == 0)
            return true;
    return false;
}

static void on_snapshot(void *arg, struct snapshot *s)
{
    struct fake *f = arg;
    f->snaps++;
    f->mixed |= f->check_mixed && snap_has(s, K_WEB) && !snap_has(s, K_DRAIN);
    f->got_empty |= s->n_entries == 0;
    if (snap_has(s, K_API)) {
        f->got_api = true;
        f->api_before_slow |= !f->slow_due || uv_now(&f->loop) < f->slow_due;
    }
    snapshot_free(s);
}

static struct fake *fake_new(const char *const *keys)
{
    struct fake *f = calloc(1, sizeof(*f));
    int port;
    char addr[64];
    ck_assert_ptr_nonnull(f);
    for (size_t i = 0; keys[i]; i++)
        f->keys[i] = keys[i];
    uv_loop_init(&f->loop);
    ck_assert_int_eq(fake_http_start(&f->loop, handler, f, &f->srv, &port), 0);
    snprintf(addr, sizeof(addr), "http://127.0.0.1:%d", port);
    struct consul_config cfg = {.address = addr, .request_timeout_ms = 5000};
    ck_assert_int_eq(consul_client_new(&f->loop, &cfg, &f->c), 0);
    struct consul_feed_opts o = {.loop = &f->loop,
                                 .model = &model,
                                 .wait_s = 1,
                                 .service_watches = 8,
                                 .on_snapshot = on_snapshot,
                                 .arg = f};
    ck_assert_int_eq(consul_feed_start(f->c, &o, &f->feed), 0);
    return f;
}

/* Run the loop until the predicate holds; bounded, names what it waited for. */
#define WAIT_FOR(f, cond, ms, what)                                                                \
    do {                                                                                           \
        unsigned waited_ = 0;                                                                      \
        while (!(cond) && waited_ < (ms)) {                                                        \
            run_for(&(f)->loop, 20);                                                               \
            waited_ += 20;                                                                         \
        }                                                                                          \
        ck_assert_msg((cond), "gave up after %u ms waiting for %s", (unsigned)(ms), what);         \
    } while (0)

static void fake_free(struct fake *f)
{
    consul_feed_stop(f->feed);
    consul_client_free(f->c);
    fake_http_stop(f->srv);
    drain_loop(&f->loop);
    ck_assert_int_eq(uv_loop_close(&f->loop), 0); /* every handle closed */
    free(f);
}

/* Consul lost, back empty; maintenance/ answers at once, the definitions
 * late: the drain must never be gone while web is still there. */
START_TEST(test_no_mixed_tree_after_loss)
{
    const char *const before[] = {K_WEB, K_DRAIN, NULL};
    struct fake *f = fake_new(before);
    f->check_mixed = true;
    WAIT_FOR(f, f->snaps == 1, 3000, "the first snapshot");
    f->phase = PHASE_DOWN;
    /* the watches' next blocking query (30 ms) fails, each of the 3 */
    WAIT_FOR(f, f->errors_seen >= 3, 3000, "every watch to fail once");
    f->keys[0] = NULL; /* restarted empty */
    f->slow = P_DEFS;
    f->slow_ms = 600;
    f->phase = PHASE_AFTER;
    /* backoff (<= 1 s) + the slow answer */
    WAIT_FOR(f, f->got_empty, 5000, "the empty tree's snapshot");
    ck_assert_msg(!f->mixed, "a snapshot had the definitions from before the loss without the "
                             "maintenance entry");
    struct consul_feed_stats st;
    consul_feed_get_stats(f->feed, &st);
    ck_assert_uint_ge(st.reread_waits, 1);
    ck_assert(st.healthy);
    fake_free(f);
}
END_TEST

/* How the watcher learns of the restart: maintenance/'s next query fails,
 * or answers with the index gone back; or no watch sees it (every query
 * on an old index waits) and something else tells the feed (its host
 * status session is gone: consul_feed_reread). */
enum seen_by { SEEN_ERROR, SEEN_RESET, SEEN_ELSEWHERE };

/* Consul restarted empty; the definitions' blocking query on the old
 * index just waits. The feed must read every fixed prefix afresh: no
 * snapshot with web from before and maintenance/ read empty, and the
 * empty tree well before the old query would have ended by itself. */
static void silent_restart(enum seen_by seen)
{
    const char *const before[] = {K_WEB, K_DRAIN, NULL};
    struct fake *f = fake_new(before);
    f->check_mixed = true;
    WAIT_FOR(f, f->snaps == 1, 3000, "the first snapshot");
    f->keys[0] = NULL; /* restarted empty */
    f->break_by_reset = seen == SEEN_RESET;
    f->no_break = seen == SEEN_ELSEWHERE;
    f->phase = PHASE_SILENT;
    if (seen == SEEN_ELSEWHERE) {
        run_for(&f->loop, 200); /* every watch's next query (<= 30 ms) now waits */
        ck_assert_msg(!f->got_empty, "a watch read the new tree by itself");
        consul_feed_reread(f->feed, "the test says so");
    }
    /* maintenance/: its next query (<= 30 ms), a retry after an error
     * (<= 1 s); the others' re-reads answer at once */
    WAIT_FOR(f, f->got_empty || f->mixed, SILENT_HOLD_MS - 1000,
             "the empty tree's snapshot (before the old blocking queries end)");
    ck_assert_msg(!f->mixed, "a snapshot had the definitions from before the restart without "
                             "the maintenance entry");
    struct consul_feed_stats st;
    consul_feed_get_stats(f->feed, &st);
    ck_assert_uint_ge(st.forced_rereads, 1);
    fake_free(f);
}

START_TEST(test_silent_restart_error_rereads_all)
{
    silent_restart(SEEN_ERROR);
}
END_TEST

START_TEST(test_silent_restart_reset_rereads_all)
{
    silent_restart(SEEN_RESET);
}
END_TEST

START_TEST(test_silent_restart_reread_on_request)
{
    silent_restart(SEEN_ELSEWHERE);
}
END_TEST

/* The last re-read (of slow) comes back unchanged (no callback): the
 * snapshot with the change read meanwhile still gets through, once it
 * answered, and not before. */
static void unchanged_reread_releases(const char *slow)
{
    const char *const before[] = {K_WEB, NULL};
    struct fake *f = fake_new(before);
    WAIT_FOR(f, f->snaps == 1, 3000, "the first snapshot");
    f->phase = PHASE_DOWN;
    WAIT_FOR(f, f->errors_seen >= 3, 3000, "every watch to fail once");
    f->keys[1] = K_API;
    f->slow = slow; /* empty before and after */
    f->slow_ms = 600;
    f->phase = PHASE_AFTER;
    WAIT_FOR(f, f->got_api, 5000, "the snapshot with api after the unchanged re-read");
    ck_assert_msg(!f->api_before_slow, "a snapshot was built before %s was read again", slow);
    fake_free(f);
}

START_TEST(test_unchanged_reread_releases)
{
    unchanged_reread_releases(P_MAINT);
}
END_TEST

/* A node shard is a fixed prefix like the flat nodes/: no snapshot
 * before it was read again either. */
START_TEST(test_node_shard_reread_holds)
{
    unchanged_reread_releases(P_SHARD);
}
END_TEST

int main(void)
{
    log_set_level(LOGL_WARN);
    Suite *s = suite_create("consul_feed_reread");
    TCase *tc = tcase_create("reread");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_no_mixed_tree_after_loss);
    tcase_add_test(tc, test_unchanged_reread_releases);
    tcase_add_test(tc, test_node_shard_reread_holds);
    tcase_add_test(tc, test_silent_restart_error_rereads_all);
    tcase_add_test(tc, test_silent_restart_reset_rereads_all);
    tcase_add_test(tc, test_silent_restart_reread_on_request);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
