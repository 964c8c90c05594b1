/* SPDX-License-Identifier: Apache-2.0 */
/*
 * curl_uv against the fake HTTP server (no Consul): completion callbacks,
 * keep-alive reuse across easy handles, streaming bodies through the
 * caller's write function (and aborting a stream from it), cancellation
 * without callback, and freeing the glue from inside a done callback.
 */
#include <errno.h>

#include "consul_test_util.h"
#include "curl_uv.h"
#include "fake_http.h"

#define BIG (1u << 20)

static uv_loop_t loop;
static struct fake_http *srv;
static char base[64];
static struct curl_uv *cu;

static void handler(void *arg, const struct fake_http_req *req, struct fake_http_reply *rep)
{
    if (strstr(req->url, "/hang")) {
        rep->hang = true;
    } else if (strstr(req->url, "/big")) {
        rep->body = malloc(BIG + 1);
        memset(rep->body, 'x', BIG);
        rep->body[BIG] = '\0';
    } else {
        rep->body = strdup("hello");
    }
}

static void setup(void)
{
    int port;
    uv_loop_init(&loop);
    ck_assert_int_eq(fake_http_start(&loop, handler, NULL, &srv, &port), 0);
    snprintf(base, sizeof(base), "http://127.0.0.1:%d", port);
    ck_assert_int_eq(curl_uv_new(&loop, &cu), 0);
}

static void teardown(void)
{
    curl_uv_free(cu);
    fake_http_stop(srv);
    drain_loop(&loop);
    ck_assert_int_eq(uv_loop_close(&loop), 0); /* no handle left behind */
}

struct xfer {
    CURL *easy;
    struct curl_uv_buf buf;
    bool done;
    CURLcode result;
    long connects;
    size_t chunks, bytes, abort_after;
    bool free_glue;
};

static void on_done(CURL *easy, CURLcode result, void *arg)
{
    struct xfer *x = arg;
    x->done = true;
    x->result = result;
    curl_easy_getinfo(easy, CURLINFO_NUM_CONNECTS, &x->connects);
    if (x->free_glue) {
        curl_uv_free(cu);
        cu = NULL;
    }
}

static void start(struct xfer *x, const char *path)
{
    char url[128];
    snprintf(url, sizeof(url), "%s%s", base, path);
    x->easy = curl_easy_init();
    curl_easy_setopt(x->easy, CURLOPT_URL, url);
    curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, curl_uv_buf_write);
    curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, &x->buf);
    ck_assert_int_eq(curl_uv_add(cu, x->easy, on_done, x), 0);
}

static void finish(struct xfer *x)
{
    curl_easy_cleanup(x->easy);
    curl_uv_buf_free(&x->buf);
}

START_TEST(test_buffered_and_keepalive)
{
    struct xfer a = {0}, b = {0};
    start(&a, "/one");
    ck_assert_uint_eq(curl_uv_active(cu), 1);
    ck_assert(run_until(&loop, &a.done, 10000));
    ck_assert_int_eq(a.result, CURLE_OK);
    ck_assert_str_eq(a.buf.data, "hello");
    ck_assert_int_eq(a.connects, 1);
    ck_assert_uint_eq(curl_uv_active(cu), 0);
    start(&b, "/two"); /* another easy handle: the pooled connection is reused */
    ck_assert(run_until(&loop, &b.done, 10000));
    ck_assert_str_eq(b.buf.data, "hello");
    ck_assert_int_eq(b.connects, 0);
    finish(&a);
    finish(&b);
}
END_TEST

static size_t stream_write(char *ptr, size_t size, size_t n, void *arg)
{
    struct xfer *x = arg;
    x->chunks++;
    x->bytes += size * n;
    if (x->abort_after && x->bytes >= x->abort_after)
        return 0; /* abort the stream from inside libcurl */
    return size * n;
}

START_TEST(test_streaming_and_abort)
{
    struct xfer s = {0}, ab = {0};
    start(&s, "/big");
    curl_easy_setopt(s.easy, CURLOPT_WRITEFUNCTION, stream_write);
    curl_easy_setopt(s.easy, CURLOPT_WRITEDATA, &s);
    ck_assert(run_until(&loop, &s.done, 10000));
    ck_assert_int_eq(s.result, CURLE_OK);
    ck_assert_uint_eq(s.bytes, BIG);
    ck_assert_uint_gt(s.chunks, 1); /* delivered as it arrived, not as one body */

    ab.abort_after = 1000;
    start(&ab, "/big");
    curl_easy_setopt(ab.easy, CURLOPT_WRITEFUNCTION, stream_write);
    curl_easy_setopt(ab.easy, CURLOPT_WRITEDATA, &ab);
    ck_assert(run_until(&loop, &ab.done, 10000));
    ck_assert_int_eq(ab.result, CURLE_WRITE_ERROR);
    ck_assert_uint_lt(ab.bytes, BIG);
    finish(&s);
    finish(&ab);
}
END_TEST

START_TEST(test_cancel_without_callback)
{
    struct xfer h = {0}, ok = {0};
    start(&h, "/hang");
    run_for(&loop, 100);
    curl_uv_remove(cu, h.easy);
    curl_uv_remove(cu, h.easy); /* second remove is a no-op */
    ck_assert_uint_eq(curl_uv_active(cu), 0);
    start(&ok, "/after");
    ck_assert(run_until(&loop, &ok.done, 10000));
    ck_assert_str_eq(ok.buf.data, "hello");
    run_for(&loop, 50);
    ck_assert(!h.done);
    finish(&h);
    finish(&ok);
}
END_TEST

START_TEST(test_free_inside_callback)
{
    struct xfer a = {0}, h = {0};
    start(&h, "/hang"); /* still running when the glue goes away */
    start(&a, "/one");
    a.free_glue = true;
    ck_assert(run_until(&loop, &a.done, 10000));
    ck_assert_ptr_null(cu);
    ck_assert(!h.done);
    finish(&a);
    finish(&h);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("curl_uv");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_buffered_and_keepalive);
    tcase_add_test(tc, test_streaming_and_abort);
    tcase_add_test(tc, test_cancel_without_callback);
    tcase_add_test(tc, test_free_inside_callback);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
