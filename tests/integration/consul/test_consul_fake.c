/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Consul client against a scripted fake Consul (tests/lib/fake_http): the
 * behaviour a real agent shows only in rare moments — the index going
 * backwards or to 0, 5xx, hanging queries, 409 in the middle of a batched
 * txn, a rotated ACL token — made to happen on purpose.
 */
#include <errno.h>
#include <jansson.h>
#include <unistd.h>

#include "consul_test_util.h"
#include "fake_http.h"

#define BODY_A "[{\"Key\":\"p/a\",\"Value\":\"YQ==\",\"ModifyIndex\":5}]"
#define BODY_B "[{\"Key\":\"p/a\",\"Value\":\"Yg==\",\"ModifyIndex\":9}]"

enum script {
    SCRIPT_BACKWARDS,
    SCRIPT_ZERO_FOREVER,
    SCRIPT_ERRORS,
    SCRIPT_404_LOWERCASE,
    SCRIPT_404_NOT_CONSUL,
    SCRIPT_HANG,
    SCRIPT_TXN,
    SCRIPT_TOKEN,
    SCRIPT_STALE,
    SCRIPT_STALE_BEHIND,
    SCRIPT_EMPTY_WAKEUPS,
};

struct fake {
    enum script script;
    unsigned n_req;
    char urls[64][2048];
    char tokens[64][256];
    char encodings[64][128];
    size_t txn_sizes[64];
    int txn_fail_batch; /* -1: none */
    uv_loop_t loop;
    struct fake_http *srv;
    char addr[64];
    struct consul_client *c;
    /* watch callbacks */
    unsigned changes, errors;
    char last_value[64];
    size_t last_n;
    bool last_found;
    int last_err;
    char last_errmsg[1024];
    char value_during_error[64];
    bool target_reached;
    struct consul_watch *w;
};

static bool has_index(const char *url)
{
    return strstr(url, "index=") != NULL;
}

static void handler(void *arg, const struct fake_http_req *req, struct fake_http_reply *rep)
{
    struct fake *f = arg;
    unsigned n = f->n_req++;
    if (n < 64) {
        snprintf(f->urls[n], sizeof(f->urls[n]), "%s", req->url);
        snprintf(f->tokens[n], sizeof(f->tokens[n]), "%s", req->token);
        snprintf(f->encodings[n], sizeof(f->encodings[n]), "%s", req->accept_encoding);
    }
    rep->has_index = true;
    switch (f->script) {
    case SCRIPT_BACKWARDS:
        /* full read -> 100; blocking at 100 -> answers 50 (backwards);
         * full read again -> 60 with new content; blocking at 60 hangs */
        if (n == 0) {
            rep->index = 100;
            rep->body = strdup(BODY_A);
        } else if (n == 1) {
            rep->index = 50;
            rep->body = strdup(BODY_B);
        } else if (!has_index(req->url)) {
            rep->index = 60;
            rep->body = strdup(BODY_B);
        } else {
            rep->hang = true;
        }
        break;
    case SCRIPT_ZERO_FOREVER:
        rep->index = 0;
        rep->body = strdup(BODY_A);
        break;
    case SCRIPT_ERRORS:
        if (n == 0) {
            rep->index = 10;
            rep->body = strdup(BODY_A);
        } else if (n <= 2) {
            rep->status = 500;
            rep->body = strdup("rpc error making call: No cluster leader");
        } else if (n == 3) {
            rep->index = 11;
            rep->body = strdup(BODY_B);
        } else {
            rep->hang = true;
        }
        break;
    case SCRIPT_404_LOWERCASE:
        if (n == 0) {
            rep->status = 404;
            rep->index = 42;
            rep->lowercase_header = true;
        } else {
            rep->hang = true;
        }
        break;
    case SCRIPT_404_NOT_CONSUL:
        /* a web server that is not Consul: 404 for every path, no index */
        rep->status = 404;
        rep->has_index = false;
        rep->body = strdup("<html>404 page not found</html>");
        break;
    case SCRIPT_EMPTY_WAKEUPS:
        /* an empty prefix in a busy KV: every query answered at once with
         * a higher index and still nothing (Consul watches a radix-tree
         * node above a missing prefix) */
        rep->status = 404;
        rep->index = 10 + n;
        break;
    case SCRIPT_HANG:
        if (n == 0) {
            rep->index = 7;
            rep->body = strdup(BODY_A);
        } else {
            rep->hang = true;
        }
        break;
    case SCRIPT_TXN: {
        json_t *j = json_loads(req->body, 0, NULL);
        if (n < 64)
            f->txn_sizes[n] = json_array_size(j);
        json_decref(j);
        if ((int)n == f->txn_fail_batch) {
            rep->status = 409;
            rep->body = strdup("{\"Results\":null,\"Errors\":[{\"OpIndex\":5,\"What\":"
                               "\"failed to set key \\\"k\\\", index is stale\"}]}");
        } else {
            rep->body = strdup("{\"Results\":[],\"Errors\":null}");
        }
        break;
    }
    case SCRIPT_STALE:
        /* 0: stale full read from a lagging server (5 s behind); 1: the
         * leader's re-read; 2: a fresh stale answer (20 ms) with B; 3: a
         * stale answer from a server without a leader; 4: the leader's
         * re-read hangs */
        if (n <= 2) {
            rep->index = n < 2 ? 10 : 11;
            rep->body = strdup(n < 2 ? BODY_A : BODY_B);
            rep->headers = n == 0   ? "X-Consul-LastContact: 5000\r\nX-Consul-KnownLeader: true\r\n"
                           : n == 1 ? "X-Consul-LastContact: 0\r\nX-Consul-KnownLeader: true\r\n"
                                    : "X-Consul-LastContact: 20\r\nX-Consul-KnownLeader: true\r\n";
        } else if (n == 3) {
            rep->index = 12;
            rep->body = strdup(BODY_A);
            rep->headers = "x-consul-lastcontact: 0\r\nx-consul-knownleader: false\r\n";
        } else {
            rep->hang = true;
        }
        break;
    case SCRIPT_STALE_BEHIND:
        /* 0: fresh stale full read, B at 20; 1: the blocking query at 20
         * answered by a server that lags (A at 12, older than B); 2: the
         * leader's full re-read, B at 21; 3: blocking at 21 hangs */
        rep->headers = "X-Consul-LastContact: 10\r\nX-Consul-KnownLeader: true\r\n";
        if (n <= 2) {
            rep->index = n == 0 ? 20 : n == 1 ? 12 : 21;
            rep->body = strdup(n == 1 ? BODY_A : BODY_B);
        } else {
            rep->hang = true;
        }
        break;
    case SCRIPT_TOKEN:
        if (strcmp(req->token, "good") == 0) {
            rep->index = 3;
            rep->body = strdup(BODY_A);
        } else {
            rep->status = 403;
            rep->body = strdup("ACL not found");
        }
        break;
    }
}

static void on_change(void *arg, struct consul_response *r)
{
    struct fake *f = arg;
    f->changes++;
    f->last_n = r->kv->n;
    f->last_found = r->found;
    f->last_value[0] = '\0';
    if (r->kv->n && r->kv->items[0].value)
        snprintf(f->last_value, sizeof(f->last_value), "%s", (char *)r->kv->items[0].value);
}

static void on_error(void *arg, struct consul_response *r)
{
    struct fake *f = arg;
    f->errors++;
    f->last_err = r->err;
    snprintf(f->last_errmsg, sizeof(f->last_errmsg), "%s", r->errmsg);
    const struct consul_kv_list *last = consul_watch_last_kv(f->w);
    f->value_during_error[0] = '\0';
    if (last && last->n && last->items[0].value)
        snprintf(f->value_during_error, sizeof(f->value_during_error), "%s",
                 (char *)last->items[0].value);
    ck_assert_uint_gt(r->retry_in_ms, 0);
}

static struct fake *fake_new(enum script s, const char *token_file)
{
    struct fake *f = calloc(1, sizeof(*f));
    ck_assert_ptr_nonnull(f);
    f->script = s;
    f->txn_fail_batch = -1;
    uv_loop_init(&f->loop);
    int port;
    ck_assert_int_eq(fake_http_start(&f->loop, handler, f, &f->srv, &port), 0);
    snprintf(f->addr, sizeof(f->addr), "http://127.0.0.1:%d", port);
    struct consul_config cfg = {.address = f->addr,
                                .token_file = token_file,
                                .request_timeout_ms = 5000,
                                .max_stale_ms =
                                    s == SCRIPT_STALE || s == SCRIPT_STALE_BEHIND ? 2000 : 0};
    ck_assert_int_eq(consul_client_new(&f->loop, &cfg, &f->c), 0);
    return f;
}

static struct consul_watch *watch_paused(struct fake *f, unsigned wait_s, unsigned empty_pause_ms)
{
    struct consul_watch_opts o = {
        .kind = CONSUL_WATCH_KV_PREFIX,
        .target = "p/",
        .wait_s = wait_s,
        .retry_min_ms = 50,
        .retry_max_ms = 200,
        .empty_pause_ms = empty_pause_ms,
        .on_change = on_change,
        .on_error = on_error,
        .arg = f,
    };
    ck_assert_int_eq(consul_watch_start(f->c, &o, &f->w), 0);
    return f->w;
}

static struct consul_watch *watch(struct fake *f, unsigned wait_s)
{
    return watch_paused(f, wait_s, 0);
}

static void fake_free(struct fake *f)
{
    if (f->w)
        consul_watch_stop(f->w);
    consul_client_free(f->c);
    fake_http_stop(f->srv);
    drain_loop(&f->loop);
    ck_assert_int_eq(uv_loop_close(&f->loop), 0); /* every handle closed */
    free(f);
}

static bool reached(struct fake *f, unsigned n_req)
{
    f->target_reached = f->n_req >= n_req;
    return f->target_reached;
}

START_TEST(test_index_backwards_resets_to_full_read)
{
    struct fake *f = fake_new(SCRIPT_BACKWARDS, NULL);
    watch(f, 60);
    /* wait for the 4th request: the blocking query at the new index */
    for (int i = 0; i < 100 && !reached(f, 4); i++)
        run_until(&f->loop, &f->target_reached, 50);
    ck_assert_uint_ge(f->n_req, 4);
    ck_assert(!has_index(f->urls[0]));
    ck_assert_ptr_nonnull(strstr(f->urls[1], "index=100"));
    ck_assert_ptr_nonnull(strstr(f->urls[1], "wait=60s"));
    ck_assert_msg(!has_index(f->urls[2]), "after index 100 -> 50 expected a full read, got %s",
                  f->urls[2]);
    ck_assert_ptr_nonnull(strstr(f->urls[3], "index=60"));
    const struct consul_stats *st = consul_client_stats(f->c);
    ck_assert_uint_eq(st->index_resets, 1);
    /* A delivered, the backwards answer not, B from the full read */
    ck_assert_uint_eq(f->changes, 2);
    ck_assert_str_eq(f->last_value, "b");
    ck_assert_uint_eq(consul_watch_index(f->w), 60);
    fake_free(f);
}
END_TEST

START_TEST(test_stale_reads_bounded_and_gzip)
{
    struct fake *f = fake_new(SCRIPT_STALE, NULL);
    watch(f, 60);
    for (int i = 0; i < 100 && !reached(f, 5); i++)
        run_until(&f->loop, &f->target_reached, 50);
    ck_assert_uint_ge(f->n_req, 5);
    ck_assert_msg(strstr(f->urls[0], "recurse&stale") != NULL, "stale full read, got %s",
                  f->urls[0]);
    ck_assert_msg(strstr(f->urls[1], "stale") == NULL,
                  "a 5 s stale answer (max 2 s) must be re-read from the leader, got %s",
                  f->urls[1]);
    ck_assert_msg(strstr(f->urls[2], "index=10") && strstr(f->urls[2], "stale"),
                  "blocking query stale again, got %s", f->urls[2]);
    ck_assert_msg(strstr(f->urls[3], "index=11") && strstr(f->urls[3], "stale"), "got %s",
                  f->urls[3]);
    ck_assert_msg(strstr(f->urls[4], "index=11") && !strstr(f->urls[4], "stale"),
                  "an answer without a known leader must be re-read from the leader, got %s",
                  f->urls[4]);
    const struct consul_stats *st = consul_client_stats(f->c);
    ck_assert_uint_eq(st->stale_retries, 2);
    ck_assert_uint_gt(st->bytes_received, 0);
    /* A from the leader's re-read, B from the fresh stale answer; the
     * leaderless answer (A again) never delivered */
    ck_assert_uint_eq(f->changes, 2);
    ck_assert_str_eq(f->last_value, "b");
    ck_assert_uint_eq(f->errors, 0);
    for (unsigned i = 0; i < 5; i++)
        ck_assert_msg(strstr(f->encodings[i], "gzip") != NULL,
                      "request %u must accept gzip, Accept-Encoding '%s'", i, f->encodings[i]);
    fake_free(f);
}
END_TEST

/* A stale answer older than the value held never replaces it: the read
 * goes to the leader once, and the watch never steps back in time. */
START_TEST(test_stale_answer_never_goes_back)
{
    struct fake *f = fake_new(SCRIPT_STALE_BEHIND, NULL);
    watch(f, 60);
    for (int i = 0; i < 100 && !reached(f, 4); i++)
        run_until(&f->loop, &f->target_reached, 50);
    ck_assert_uint_ge(f->n_req, 4);
    ck_assert_msg(strstr(f->urls[1], "index=20") && strstr(f->urls[1], "stale"), "got %s",
                  f->urls[1]);
    ck_assert_msg(!has_index(f->urls[2]) && !strstr(f->urls[2], "stale"),
                  "an answer older than the value held must be re-read from the leader, got %s",
                  f->urls[2]);
    ck_assert_msg(strstr(f->urls[3], "index=21") && strstr(f->urls[3], "stale"), "got %s",
                  f->urls[3]);
    const struct consul_stats *st = consul_client_stats(f->c);
    ck_assert_uint_eq(st->stale_behind, 1);
    ck_assert_uint_eq(f->changes, 1); /* B only: the older A never delivered */
    ck_assert_str_eq(f->last_value, "b");
    ck_assert_uint_eq(consul_watch_index(f->w), 21);
    fake_free(f);
}
END_TEST

START_TEST(test_index_zero_never_spins)
{
    struct fake *f = fake_new(SCRIPT_ZERO_FOREVER, NULL);
    watch(f, 60);
    run_for(&f->loop, 1500);
    /* A spinning client makes thousands of requests in 1.5 s; with the
     * reset backoff (50..200 ms here) it is a handful. */
    ck_assert_uint_ge(f->n_req, 2);
    ck_assert_uint_le(f->n_req, 40);
    for (unsigned i = 0; i < f->n_req && i < 64; i++)
        ck_assert_msg(!has_index(f->urls[i]), "request %u blocked on index 0: %s", i, f->urls[i]);
    ck_assert_uint_ge(consul_client_stats(f->c)->index_resets, 2);
    ck_assert_uint_eq(f->changes, 1); /* same content: delivered once */
    fake_free(f);
}
END_TEST

/* empty_pause_ms: an empty prefix answered at every write costs one read
 * per pause, not one per write; the answers are still taken (the index
 * follows them) and nothing is delivered twice. */
START_TEST(test_empty_prefix_pauses_between_wakeups)
{
    struct fake *f = fake_new(SCRIPT_EMPTY_WAKEUPS, NULL);
    watch_paused(f, 60, 200);
    run_for(&f->loop, 1000);
    /* without the pause: one request per loop turn, thousands in 1 s */
    ck_assert_msg(f->n_req >= 2 && f->n_req <= 8, "%u requests in 1 s with a 200 ms pause",
                  f->n_req);
    ck_assert_ptr_nonnull(strstr(f->urls[1], "index=10"));
    ck_assert_uint_eq(f->changes, 1);
    ck_assert_uint_ge(consul_client_stats(f->c)->watch_unchanged, 1);
    ck_assert_uint_ge(consul_watch_index(f->w), 10 + f->n_req - 2); /* the answers were taken */
    fake_free(f);
}
END_TEST

START_TEST(test_errors_keep_last_value_and_retry)
{
    struct fake *f = fake_new(SCRIPT_ERRORS, NULL);
    watch(f, 60);
    for (int i = 0; i < 100 && f->changes < 2; i++)
        run_for(&f->loop, 50);
    ck_assert_uint_eq(f->errors, 2);
    ck_assert_int_eq(f->last_err, -EIO);
    ck_assert_ptr_nonnull(strstr(f->last_errmsg, "GET /v1/kv/p/?recurse"));
    ck_assert_ptr_nonnull(strstr(f->last_errmsg, "HTTP 500"));
    ck_assert_ptr_nonnull(strstr(f->last_errmsg, "No cluster leader"));
    ck_assert_str_eq(f->value_during_error, "a"); /* last good value kept */
    ck_assert_uint_eq(f->changes, 2);
    ck_assert_str_eq(f->last_value, "b");
    /* after an error the watch re-reads in full (Consul may have restarted) */
    ck_assert(!has_index(f->urls[2]));
    ck_assert(!has_index(f->urls[3]));
    const struct consul_stats *st = consul_client_stats(f->c);
    ck_assert_uint_eq(st->retries, 2);
    ck_assert_uint_eq(st->errors, 2);
    fake_free(f);
}
END_TEST

START_TEST(test_404_is_empty_with_index_lowercase_header)
{
    struct fake *f = fake_new(SCRIPT_404_LOWERCASE, NULL);
    watch(f, 60);
    for (int i = 0; i < 100 && f->n_req < 2; i++)
        run_for(&f->loop, 20);
    ck_assert_uint_eq(f->changes, 1);
    ck_assert_uint_eq(f->last_n, 0);
    ck_assert(!f->last_found);
    ck_assert_uint_eq(f->errors, 0);
    ck_assert_ptr_nonnull(strstr(f->urls[1], "index=42"));
    fake_free(f);
}
END_TEST

/* A 404 without X-Consul-Index is not Consul's "no such key": every read
 * reports it as an error, and a watch keeps retrying instead of delivering
 * an empty prefix (which would read as "no maintenance entries"). */
START_TEST(test_404_without_index_is_an_error)
{
    struct fake *f = fake_new(SCRIPT_404_NOT_CONSUL, NULL);
    struct got g = {0};

    ck_assert_int_eq(consul_kv_get(f->c, "p/a", got_cb, &g), 0);
    ck_assert(run_until(&f->loop, &g.done, 10000));
    ck_assert_int_eq(g.err, -EBADMSG);
    ck_assert(!g.found);
    ck_assert_int_eq(g.http_status, 404);
    ck_assert_msg(strstr(g.errmsg, "GET /v1/kv/p/a: HTTP 404 without X-Consul-Index") != NULL,
                  "errmsg: %s", g.errmsg);
    g.done = false;
    ck_assert_int_eq(consul_kv_get_prefix(f->c, "p/", got_cb, &g), 0);
    ck_assert(run_until(&f->loop, &g.done, 10000));
    ck_assert_int_eq(g.err, -EBADMSG);
    g.done = false;
    ck_assert_int_eq(consul_kv_keys(f->c, "p/", "/", got_cb, &g), 0);
    ck_assert(run_until(&f->loop, &g.done, 10000));
    ck_assert_int_eq(g.err, -EBADMSG);

    watch(f, 60);
    for (int i = 0; i < 200 && f->errors < 2; i++)
        run_for(&f->loop, 20);
    ck_assert_uint_ge(f->errors, 2);
    ck_assert_uint_eq(f->changes, 0);
    ck_assert_int_eq(f->last_err, -EBADMSG);
    fake_free(f);
}
END_TEST

START_TEST(test_hanging_query_times_out)
{
    struct fake *f = fake_new(SCRIPT_HANG, NULL);
    watch(f, 1); /* client timeout = 1 s * 17/16 + 5 s margin + jitter */
    for (int i = 0; i < 200 && f->errors == 0; i++)
        run_for(&f->loop, 50);
    ck_assert_uint_eq(f->errors, 1);
    ck_assert_int_eq(f->last_err, -ETIMEDOUT);
    ck_assert_str_eq(f->value_during_error, "a");
    fake_free(f);
}
END_TEST

static void make_ops(struct consul_txn_op *ops, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ops[i] = (struct consul_txn_op){
            .verb = CONSUL_TXN_SET, .key = "k", .value = "v", .value_len = 1};
}

START_TEST(test_txn_batches_of_64)
{
    struct fake *f = fake_new(SCRIPT_TXN, NULL);
    struct consul_txn_op ops[150];
    make_ops(ops, 150);
    struct got g = {0};
    ck_assert_int_eq(consul_txn(f->c, ops, 150, got_cb, &g), 0);
    ck_assert(run_until(&f->loop, &g.done, 10000));
    ck_assert_int_eq(g.err, 0);
    ck_assert_uint_eq(f->n_req, 3);
    ck_assert_uint_eq(f->txn_sizes[0], 64);
    ck_assert_uint_eq(f->txn_sizes[1], 64);
    ck_assert_uint_eq(f->txn_sizes[2], 22);
    ck_assert_uint_eq(g.txn.ops_applied, 150);
    ck_assert_uint_eq(g.txn.batches_applied, 3);
    ck_assert_uint_eq(g.txn.batches_total, 3);
    fake_free(f);
}
END_TEST

START_TEST(test_txn_409_stops_and_names_op)
{
    struct fake *f = fake_new(SCRIPT_TXN, NULL);
    f->txn_fail_batch = 1;
    struct consul_txn_op ops[150];
    make_ops(ops, 150);
    struct got g = {0};
    ck_assert_int_eq(consul_txn(f->c, ops, 150, got_cb, &g), 0);
    ck_assert(run_until(&f->loop, &g.done, 10000));
    ck_assert_int_eq(g.err, -ECANCELED);
    ck_assert_uint_eq(f->n_req, 2); /* batch 3 never sent */
    ck_assert_uint_eq(g.txn.ops_applied, 64);
    ck_assert_uint_eq(g.txn.batches_applied, 1);
    ck_assert_uint_eq(g.txn.n_errors, 1);
    ck_assert_uint_eq(g.txn_first_error_op, 69); /* 64 + OpIndex 5 */
    ck_assert_ptr_nonnull(strstr(g.txn_first_error, "index is stale"));
    ck_assert_ptr_nonnull(strstr(g.errmsg, "409"));
    fake_free(f);
}
END_TEST

START_TEST(test_token_reread_on_403)
{
    char path[] = "/tmp/drover-token-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "old\n", 4), 4);
    close(fd);
    struct fake *f = fake_new(SCRIPT_TOKEN, path);
    struct got g = {0};
    /* unchanged token: the 403 is reported */
    ck_assert_int_eq(consul_kv_get(f->c, "p/a", got_cb, &g), 0);
    ck_assert(run_until(&f->loop, &g.done, 10000));
    ck_assert_int_eq(g.err, -EACCES);
    ck_assert_ptr_nonnull(strstr(g.errmsg, "GET /v1/kv/p/a: HTTP 403: ACL not found"));
    ck_assert_str_eq(f->tokens[0], "old");
    /* rotated token: re-read after the 403 and retried once, transparently */
    FILE *tf = fopen(path, "w");
    fputs("good\n", tf);
    fclose(tf);
    g.done = false;
    ck_assert_int_eq(consul_kv_get(f->c, "p/a", got_cb, &g), 0);
    ck_assert(run_until(&f->loop, &g.done, 10000));
    ck_assert_msg(g.err == 0, "%s (requests %u, last token %s)", g.errmsg, f->n_req,
                  f->tokens[f->n_req - 1]);
    ck_assert(g.found);
    ck_assert_str_eq(g.first_value, "a");
    ck_assert_str_eq(f->tokens[f->n_req - 1], "good");
    ck_assert_uint_eq(consul_client_stats(f->c)->token_reloads, 1); /* old -> good */
    unlink(path);
    fake_free(f);
}
END_TEST

START_TEST(test_free_cancels_pending)
{
    struct fake *f = fake_new(SCRIPT_HANG, NULL);
    f->n_req = 1; /* make the handler hang on the first request */
    struct got g = {0};
    ck_assert_int_eq(consul_kv_get(f->c, "p/a", got_cb, &g), 0);
    for (int i = 0; i < 100 && f->n_req < 2; i++)
        run_for(&f->loop, 10);
    consul_client_free(f->c);
    ck_assert(g.done);
    ck_assert_int_eq(g.err, -ECANCELED);
    f->c = NULL;
    fake_http_stop(f->srv);
    drain_loop(&f->loop);
    ck_assert_int_eq(uv_loop_close(&f->loop), 0);
    free(f);
}
END_TEST

static void free_client_on_change(void *arg, struct consul_response *r)
{
    struct fake *f = arg;
    f->changes++;
    consul_client_free(f->c); /* shutdown from inside a watch callback */
    f->c = NULL;
    f->w = NULL; /* stopped and freed by consul_client_free */
    f->target_reached = true;
}

START_TEST(test_free_client_inside_watch_callback)
{
    struct fake *f = fake_new(SCRIPT_HANG, NULL);
    struct consul_watch_opts o = {.kind = CONSUL_WATCH_KV_PREFIX,
                                  .target = "p/",
                                  .on_change = free_client_on_change,
                                  .arg = f};
    ck_assert_int_eq(consul_watch_start(f->c, &o, &f->w), 0);
    ck_assert(run_until(&f->loop, &f->target_reached, 10000));
    ck_assert_uint_eq(f->changes, 1);
    fake_http_stop(f->srv);
    drain_loop(&f->loop);
    ck_assert_int_eq(uv_loop_close(&f->loop), 0);
    free(f);
}
END_TEST

START_TEST(test_bad_config)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct consul_client *c = NULL;
    struct consul_config cfg = {.address = "ftp://x"};
    ck_assert_int_eq(consul_client_new(&loop, &cfg, &c), -EINVAL);
    cfg.address = "http://127.0.0.1:notaport";
    ck_assert_int_eq(consul_client_new(&loop, &cfg, &c), -EINVAL);
    cfg.address = "http://127.0.0.1:8500";
    cfg.token_file = "/nonexistent/token";
    ck_assert_int_eq(consul_client_new(&loop, &cfg, &c), -ENOENT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("consul_fake");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_index_backwards_resets_to_full_read);
    tcase_add_test(tc, test_stale_reads_bounded_and_gzip);
    tcase_add_test(tc, test_stale_answer_never_goes_back);
    tcase_add_test(tc, test_index_zero_never_spins);
    tcase_add_test(tc, test_errors_keep_last_value_and_retry);
    tcase_add_test(tc, test_empty_prefix_pauses_between_wakeups);
    tcase_add_test(tc, test_404_is_empty_with_index_lowercase_header);
    tcase_add_test(tc, test_404_without_index_is_an_error);
    tcase_add_test(tc, test_hanging_query_times_out);
    tcase_add_test(tc, test_txn_batches_of_64);
    tcase_add_test(tc, test_txn_409_stops_and_names_op);
    tcase_add_test(tc, test_token_reread_on_403);
    tcase_add_test(tc, test_free_cancels_pending);
    tcase_add_test(tc, test_free_client_inside_watch_callback);
    tcase_add_test(tc, test_bad_config);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
