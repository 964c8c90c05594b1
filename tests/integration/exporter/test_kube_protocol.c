/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The exporter's pure modules against the Kubernetes API fixture
 * (tests/kube) over TLS with a bearer token: paginated lists into
 * kube_store, watch streams as libcurl delivers them into
 * kube_watch_stream, 410 Expired in all three forms (ERROR event, HTTP
 * 410, expired continue token), 401, and the KV entries export_build and
 * kv_layout_diff derive from it all. Each test starts its own fixture in
 * a temporary directory and stops it in teardown.
 */
#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "export_build.h"
#include "log.h"

struct fx {
    char dir[256];
    char addr[128];
    char control[128];
    char token[256];
    char ca[300];
};

static struct fx fx;
/* Every fixture lives in a directory below this one, so main() can stop
 * whatever a failed test (whose teardown check skips) left running. */
static char base_dir[128];

static char *read_file(const char *dir, const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot read %s", path);
    char *buf = calloc(1, 4096);
    size_t n = fread(buf, 1, 4095, f);
    fclose(f);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    return buf;
}

static void setup(void)
{
    char cmd[1024];
    snprintf(fx.dir, sizeof(fx.dir), "%s/fx-XXXXXX", base_dir);
    ck_assert_ptr_nonnull(mkdtemp(fx.dir));
    rmdir(fx.dir); /* kube-fixture.sh start creates it */
    snprintf(cmd, sizeof(cmd), "%s start %s --tls --seed empty --max-lifetime 300 >/dev/null",
             KUBE_FIXTURE_SH, fx.dir);
    ck_assert_msg(system(cmd) == 0, "cannot start the kube fixture: %s", cmd);
    char *s = read_file(fx.dir, "addr");
    snprintf(fx.addr, sizeof(fx.addr), "%s", s);
    free(s);
    s = read_file(fx.dir, "control");
    snprintf(fx.control, sizeof(fx.control), "%s", s);
    free(s);
    s = read_file(fx.dir, "token");
    snprintf(fx.token, sizeof(fx.token), "Authorization: Bearer %s", s);
    free(s);
    snprintf(fx.ca, sizeof(fx.ca), "%s/ca.crt", fx.dir);
    log_set_level(LOGL_ERROR);
}

static void teardown(void)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "%s stop %s >/dev/null 2>&1", KUBE_FIXTURE_SH, fx.dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not stop the kube fixture in %s\n", fx.dir);
}

struct body {
    char *data;
    size_t len;
};

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    struct body *b = arg;
    size_t len = size * n;
    char *d = realloc(b->data, b->len + len + 1);
    if (!d)
        return 0;
    memcpy(d + b->len, p, len);
    b->len += len;
    d[b->len] = '\0';
    b->data = d;
    return len;
}

static size_t on_stream(char *p, size_t size, size_t n, void *arg)
{
    /* exactly what the daemon's write callback will do */
    int rc = kube_watch_stream_feed(arg, p, size * n);
    return rc == 0 || rc == -EMSGSIZE ? size * n : 0;
}

/* One request; returns the HTTP status. API requests carry TLS + token. */
static long request(const char *url, const char *post, bool api, const char *auth,
                    curl_write_callback write, void *arg)
{
    CURL *c = curl_easy_init();
    struct curl_slist *h = NULL;
    long code = 0;
    ck_assert_ptr_nonnull(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, arg);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    if (api) {
        curl_easy_setopt(c, CURLOPT_CAINFO, fx.ca);
        h = curl_slist_append(h, auth ? auth : fx.token);
    }
    if (post) {
        h = curl_slist_append(h, "Content-Type: application/json");
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, post);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    CURLcode rc = curl_easy_perform(c);
    ck_assert_msg(rc == CURLE_OK, "%s: %s", url, curl_easy_strerror(rc));
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return code;
}

static void ctl(const char *op, const char *json)
{
    char url[256];
    struct body b = {0};
    snprintf(url, sizeof(url), "%s/v1/%s", fx.control, op);
    long code = request(url, json, false, NULL, on_body, &b);
    ck_assert_msg(code == 200, "control %s: %ld %s", op, code, b.data ? b.data : "");
    free(b.data);
}

static long api_get(const char *path, struct body *b)
{
    char url[1024];
    snprintf(url, sizeof(url), "%s%s", fx.addr, path);
    memset(b, 0, sizeof(*b));
    return request(url, NULL, true, NULL, on_body, b);
}

/* A full paginated list of path into store; 0, or the HTTP status of a
 * failed page (the list is aborted then). */
static long list_into(struct kube_store *s, const char *path, int limit)
{
    char url[512], err[256];
    char *cont = NULL;
    ck_assert_int_eq(kube_store_list_begin(s), 0);
    for (int page = 0;; page++) {
        struct body b;
        if (cont)
            snprintf(url, sizeof(url), "%s?limit=%d&continue=%s", path, limit, cont);
        else
            snprintf(url, sizeof(url), "%s?limit=%d", path, limit);
        long code = api_get(url, &b);
        free(cont);
        cont = NULL;
        if (code != 200) {
            kube_store_list_abort(s);
            free(b.data);
            return code;
        }
        struct kube_list l;
        ck_assert_msg(kube_list_parse(b.data, b.len, &l, err, sizeof(err)) == 0, "%s", err);
        ck_assert_int_eq(kube_store_list_page(s, &l), 0);
        if (!l.continue_token) {
            ck_assert_int_ge(kube_store_list_end(s, l.resource_version), 0);
            kube_list_clear(&l);
            free(b.data);
            return 0;
        }
        cont = curl_easy_escape(NULL, l.continue_token, 0);
        char *dup = strdup(cont);
        curl_free(cont);
        cont = dup;
        kube_list_clear(&l);
        free(b.data);
        ck_assert_int_lt(page, 100);
    }
}

struct watch_result {
    struct kube_store *store;
    int applied[32];
    enum kube_event_type type[32];
    size_t n;
};

static int on_event(const struct kube_event *ev, void *arg)
{
    struct watch_result *w = arg;
    ck_assert_uint_lt(w->n, 32);
    w->type[w->n] = ev->type;
    w->applied[w->n++] = kube_store_apply(w->store, ev);
    return 0;
}

/* Watch path from the store's resourceVersion for `seconds`; events go
 * into the store. Returns the HTTP status; *finish gets the stream's
 * end-of-body verdict. */
static long watch(struct watch_result *w, const char *path, int seconds, int *finish)
{
    char url[512];
    snprintf(url, sizeof(url),
             "%s%s?watch=1&resourceVersion=%s&allowWatchBookmarks=true&"
             "timeoutSeconds=%d",
             fx.addr, path, kube_store_resource_version(w->store), seconds);
    struct kube_watch_stream *ws = kube_watch_stream_new(path, 0, on_event, w);
    long code = request(url, NULL, true, NULL, on_stream, ws);
    *finish = kube_watch_stream_finish(ws);
    ck_assert_uint_eq(kube_watch_stream_stats(ws)->bad_lines, 0);
    kube_watch_stream_free(ws);
    return code;
}

static const char *SVC_LB = "{\"namespace\":\"shop\",\"name\":\"web\",\"type\":\"LoadBalancer\","
                            "\"externalTrafficPolicy\":\"Local\",\"ports\":[{\"name\":\"http\","
                            "\"port\":80},{\"name\":\"https\",\"port\":443}],\"annotations\":{"
                            "\"drover.io/exported\":\"true\",\"drover.io/load-balancer-class\":"
                            "\"public\"}}";
static const char *SVC_KSE =
    "{\"namespace\":\"robots\",\"name\":\"megatron\",\"type\":\"NodePort\",\"ports\":[{\"name\":"
    "\"http\",\"port\":8080}],\"annotations\":{\"kube-service-exporter.github.com/exported\":"
    "\"true\",\"kube-service-exporter.github.com/load-balancer-service-per-cluster\":\"false\","
    "\"kube-service-exporter.github.com/custom-attrs\":\"{\\\"tier\\\":1}\"}}";
static const char *SVC_PLAIN =
    "{\"namespace\":\"default\",\"name\":\"internal\",\"type\":\"ClusterIP\",\"ports\":[80]}";

static struct kv_layout layout;
static struct export_options sopts = {.cluster = "it"};
static struct node_options nopts;

static void build(struct kube_store *svcs, struct kube_store *nodes, struct export_state *st,
                  struct kv_map *m, struct export_build_result *res)
{
    struct export_build_params p = {
        .layout = &layout, .service_opts = &sopts, .node_opts = &nopts, .grace = 0};
    kv_map_init(m);
    ck_assert_int_eq(export_build_desired(&p, svcs, nodes, st, m, res, NULL, NULL), 0);
    ck_assert_int_eq(kv_map_sort(m), 0);
}

START_TEST(test_list_watch_export)
{
    ck_assert_int_eq(kv_layout_init(&layout, NULL, "it", "kse"), 0);
    ctl("add_service", SVC_LB);
    ctl("add_service", SVC_KSE);
    ctl("add_service", SVC_PLAIN);
    ctl("add_node", "{\"name\":\"n1\",\"ip\":\"10.1.0.1\",\"ipv6\":\"fd00::1\"}");
    ctl("add_node", "{\"name\":\"n2\",\"ip\":\"10.1.0.2\",\"ready\":false}");

    struct kube_store *svcs = kube_store_new("services", true);
    struct kube_store *nodes = kube_store_new("nodes", false);
    ck_assert_int_eq(list_into(svcs, "/api/v1/services", 1), 0); /* three pages */
    ck_assert_int_eq(list_into(nodes, "/api/v1/nodes", 500), 0);
    ck_assert_uint_eq(kube_store_count(svcs), 3);
    ck_assert_uint_eq(kube_store_count(nodes), 2);
    ck_assert(kube_store_complete(svcs) && kube_store_complete(nodes));

    struct export_state *st = export_state_new();
    struct kv_map first, second;
    struct export_build_result res;
    build(svcs, nodes, st, &first, &res);
    ck_assert_uint_eq(res.services, 2);
    ck_assert_uint_eq(res.service_ports, 3);
    ck_assert_uint_eq(res.not_exported, 1);
    ck_assert_uint_eq(res.nodes, 2);
    ck_assert_uint_eq(res.eligible_nodes, 1);
    const struct kv_entry *e = kv_map_find(&first, "drover/v1/kube/it/services/shop/web/https");
    ck_assert_ptr_nonnull(e);
    /* the fixture allocated a healthCheckNodePort for LoadBalancer + Local */
    ck_assert_ptr_nonnull(strstr(e->value, "\"health_check_source\":\"healthCheckNodePort\""));
    ck_assert_ptr_nonnull(strstr(e->value, "\"health_check_path\":\"/healthz\""));
    e = kv_map_find(&first, "kse/services/robots-megatron-http/clusters/it");
    ck_assert_ptr_nonnull(e);
    ck_assert_ptr_nonnull(strstr(e->value, "\"custom_attrs\":{\"tier\":1}"));
    char *n1_key = kv_key_kube_node("drover/v1/", "it", "n1");
    e = kv_map_find(&first, n1_key);
    free(n1_key);
    ck_assert_ptr_nonnull(e);
    ck_assert_ptr_nonnull(strstr(e->value, "\"addresses\":[\"10.1.0.1\",\"fd00::1\"]"));
    e = kv_map_find(&first, "kse/nodes/it");
    ck_assert_str_eq(e->value, "[{\"Address\":\"10.1.0.1\",\"Name\":\"n1\"},"
                               "{\"Address\":\"fd00::1\",\"Name\":\"n1\"}]");

    /* changes while nobody watches; the watch replays them from our RV */
    ctl("annotate", "{\"namespace\":\"shop\",\"name\":\"web\",\"annotations\":"
                    "{\"drover.io/dns-name\":\"shop.example.com\"}}");
    ctl("delete_service", "{\"namespace\":\"robots\",\"name\":\"megatron\"}");
    ctl("set_node_ready", "{\"name\":\"n2\",\"ready\":true}");
    ctl("cordon", "{\"name\":\"n1\"}");
    struct watch_result ws = {.store = svcs};
    int fin;
    ck_assert_int_eq(watch(&ws, "/api/v1/services", 1, &fin), 200);
    ck_assert_int_eq(fin, 0);
    ck_assert_uint_ge(ws.n, 2);
    ck_assert_int_eq(ws.type[0], KUBE_EVENT_MODIFIED);
    ck_assert_int_eq(ws.applied[0], 1);
    ck_assert_int_eq(ws.type[1], KUBE_EVENT_DELETED);
    ck_assert_int_eq(ws.applied[1], 1);
    struct watch_result wn = {.store = nodes};
    ck_assert_int_eq(watch(&wn, "/api/v1/nodes", 1, &fin), 200);
    ck_assert_uint_ge(wn.n, 2);

    build(svcs, nodes, st, &second, &res);
    ck_assert_uint_eq(res.services, 1);
    ck_assert_uint_eq(res.eligible_nodes, 1); /* n2 ready, n1 cordoned */
    struct kv_ops ops;
    ck_assert_int_eq(kv_layout_diff(&layout, &second, &first, true, &ops), 0);
    /* web's two ports x two layouts (dns_name), n1, n2, KSE node list */
    ck_assert_uint_eq(ops.sets, 7);
    /* megatron: drover key and KSE key */
    ck_assert_uint_eq(ops.deletes, 2);
    kv_ops_clear(&ops);

    /* nothing changed since: a rebuild diffs to nothing */
    struct kv_map third;
    build(svcs, nodes, st, &third, &res);
    ck_assert_int_eq(kv_layout_diff(&layout, &third, &second, true, &ops), 0);
    ck_assert_uint_eq(ops.n, 0);
    kv_ops_clear(&ops);

    kv_map_clear(&first);
    kv_map_clear(&second);
    kv_map_clear(&third);
    export_state_free(st);
    kube_store_free(svcs);
    kube_store_free(nodes);
    kv_layout_clear(&layout);
}
END_TEST

START_TEST(test_expired_three_ways)
{
    ctl("add_service", SVC_LB);
    ctl("add_service", SVC_KSE);
    struct kube_store *svcs = kube_store_new("services", true);
    ck_assert_int_eq(list_into(svcs, "/api/v1/services", 500), 0);

    /* 1: ERROR event with a 410 Status inside a 200 stream */
    ctl("force_410", "{\"mode\":\"event\",\"count\":1}");
    struct watch_result w = {.store = svcs};
    int fin;
    ck_assert_int_eq(watch(&w, "/api/v1/services", 5, &fin), 200);
    ck_assert_uint_eq(w.n, 1);
    ck_assert_int_eq(w.type[0], KUBE_EVENT_ERROR);
    ck_assert_int_eq(w.applied[0], -ESTALE);
    ck_assert(!kube_store_complete(svcs));
    ck_assert_int_eq(list_into(svcs, "/api/v1/services", 500), 0);
    ck_assert(kube_store_complete(svcs));

    /* 2: a plain HTTP 410 with a Status body */
    ctl("force_410", "{\"mode\":\"http\",\"count\":1}");
    char path[256];
    struct body b;
    snprintf(path, sizeof(path), "/api/v1/services?watch=1&resourceVersion=%s",
             kube_store_resource_version(svcs));
    ck_assert_int_eq(api_get(path, &b), 410);
    struct kube_status status;
    ck_assert_int_eq(kube_status_parse(b.data, b.len, &status), 0);
    ck_assert(kube_status_is_expired(&status));
    kube_status_clear(&status);
    free(b.data);

    /* 3: an expired continue token in the middle of a list */
    ck_assert_int_eq(api_get("/api/v1/services?limit=1", &b), 200);
    struct kube_list l;
    char err[256];
    ck_assert_int_eq(kube_list_parse(b.data, b.len, &l, err, sizeof(err)), 0);
    ck_assert_ptr_nonnull(l.continue_token);
    char *cont = curl_easy_escape(NULL, l.continue_token, 0);
    snprintf(path, sizeof(path), "/api/v1/services?limit=1&continue=%s", cont);
    curl_free(cont);
    kube_list_clear(&l);
    free(b.data);
    ctl("expire_continue", "{}");
    ck_assert_int_eq(api_get(path, &b), 410);
    ck_assert_int_eq(kube_list_parse(b.data, b.len, &l, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "Status (code 410, reason Expired)"));
    ck_assert_int_eq(kube_status_parse(b.data, b.len, &status), 0);
    ck_assert(kube_status_is_expired(&status));
    kube_status_clear(&status);
    free(b.data);
    kube_store_free(svcs);
}
END_TEST

START_TEST(test_unauthorized_status)
{
    struct body b = {0};
    char url[256];
    snprintf(url, sizeof(url), "%s/api/v1/nodes", fx.addr);
    long code = request(url, NULL, true, "Authorization: Bearer wrong", on_body, &b);
    ck_assert_int_eq(code, 401);
    struct kube_status st;
    ck_assert_int_eq(kube_status_parse(b.data, b.len, &st), 0);
    ck_assert_int_eq(st.code, 401);
    ck_assert_str_eq(st.reason, "Unauthorized");
    ck_assert(!kube_status_is_expired(&st));
    kube_status_clear(&st);
    free(b.data);
}
END_TEST

int main(void)
{
    if (system("command -v python3 >/dev/null 2>&1") != 0) {
        fprintf(stderr, "python3 not found: the kube fixture cannot run\n");
        return 77;
    }
    snprintf(base_dir, sizeof(base_dir), "/tmp/drover-exporter-kube-XXXXXX");
    if (!mkdtemp(base_dir)) {
        perror("mkdtemp");
        return 1;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    Suite *s = suite_create("exporter_kube_protocol");
    TCase *tc = tcase_create("fixture");
    tcase_set_timeout(tc, 90);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_list_watch_export);
    tcase_add_test(tc, test_expired_three_ways);
    tcase_add_test(tc, test_unauthorized_status);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    curl_global_cleanup();
    /* stop fixtures of failed tests (stop removes their directory) */
    char cmd[512];
    snprintf(cmd, sizeof(cmd),
             "for d in %s/fx-*; do [ -d \"$d\" ] && %s stop \"$d\" >/dev/null 2>&1; done; "
             "rm -rf %s",
             base_dir, KUBE_FIXTURE_SH, base_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cleanup of %s failed\n", base_dir);
    return failed ? 1 : 0;
}
