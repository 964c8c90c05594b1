/* SPDX-License-Identifier: Apache-2.0 */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"
#include "version.h"
#include "suite_main.h"

/* The registry's text after drover_build_info, which every registry
 * starts with (checked here). Caller frees. */
static char *render(struct metrics_registry *reg)
{
    char *out = NULL, want[512];
    size_t len = 0;

    ck_assert_int_eq(metrics_render(reg, &out, &len), 0);
    ck_assert_uint_eq(len, strlen(out));
    snprintf(want, sizeof(want),
             "# HELP drover_build_info Version of the running program (value always 1).\n"
             "# TYPE drover_build_info gauge\n"
             "drover_build_info{version=\"%s\",revision=\"%s\"} 1\n",
             drover_version(), drover_revision());
    ck_assert_msg(strncmp(out, want, strlen(want)) == 0, "no build info first: %s", out);
    char *rest = strdup(out + strlen(want));
    free(out);
    return rest;
}

static void collect_backends(struct metrics_emitter *em, void *arg)
{
    int *calls = arg;
    (*calls)++;
    ck_assert_int_eq(metrics_emit(em, "drover_backend_up", "Backend is up.", METRICS_GAUGE, 1,
                                  "backend", "web\"a\\b\nc", NULL),
                     0);
    ck_assert_int_eq(metrics_emit(em, "drover_backend_up", "Backend is up.", METRICS_GAUGE, 0,
                                  "backend", "api", NULL),
                     0);
    /* per-CPU counters merged into a family that also has static series */
    ck_assert_int_eq(metrics_emit(em, "drover_consul_requests_total", "ignored help",
                                  METRICS_COUNTER, 5, "code", "500", NULL),
                     0);
    /* same name with another type is refused */
    ck_assert_int_eq(metrics_emit(em, "drover_backend_up", "x", METRICS_COUNTER, 1, NULL), -EINVAL);
    ck_assert_int_eq(metrics_emit(em, "bad name", "x", METRICS_GAUGE, 1, NULL), -EINVAL);
    ck_assert_int_eq(metrics_emit(em, "drover_x", "x", METRICS_GAUGE, 1, "0bad", "v", NULL),
                     -EINVAL);
}

START_TEST(test_exact_text)
{
    struct metrics_registry *reg = metrics_registry_new();
    int calls = 0;

    struct metrics_counter *ok = metrics_counter(reg, "drover_consul_requests_total",
                                                 "Consul HTTP requests by status.", "code=\"200\"");
    struct metrics_counter *nf = metrics_counter(reg, "drover_consul_requests_total",
                                                 "Consul HTTP requests by status.", "code=\"404\"");
    struct metrics_gauge *g = metrics_gauge(reg, "drover_watcher_snapshot_age_seconds",
                                            "Age of the snapshot.\nIn s \\", NULL);
    struct metrics_gauge *inf =
        metrics_gauge(reg, "drover_test_values", "Odd values.", "v=\"inf\"");
    struct metrics_gauge *ninf = metrics_gauge(reg, "drover_test_values", "", "v=\"-inf\"");
    struct metrics_gauge *nan = metrics_gauge(reg, "drover_test_values", "", "v=\"nan\"");
    struct metrics_gauge *small = metrics_gauge(reg, "drover_test_values", "", "v=\"small\"");
    struct metrics_gauge *big = metrics_gauge(reg, "drover_test_values", "", "v=\"big\"");

    ck_assert_ptr_nonnull(ok);
    ck_assert_ptr_nonnull(nf);
    ck_assert_ptr_ne(ok, nf);
    /* asking again returns the same series */
    ck_assert_ptr_eq(metrics_counter(reg, "drover_consul_requests_total", "x", "code=\"200\""), ok);

    metrics_counter_inc(ok);
    metrics_counter_add(ok, 41);
    metrics_counter_inc(nf);
    metrics_gauge_set(g, 12.5);
    metrics_gauge_add(g, -2.25);
    metrics_gauge_set(inf, INFINITY);
    metrics_gauge_set(ninf, -INFINITY);
    metrics_gauge_set(nan, NAN);
    metrics_gauge_set(small, 0.1);
    metrics_gauge_set(big, 1e21);
    ck_assert_int_eq(metrics_add_collector(reg, collect_backends, &calls), 0);

    char *out = render(reg);
    ck_assert_str_eq(out,
                     "# HELP drover_consul_requests_total Consul HTTP requests by status.\n"
                     "# TYPE drover_consul_requests_total counter\n"
                     "drover_consul_requests_total{code=\"200\"} 42\n"
                     "drover_consul_requests_total{code=\"404\"} 1\n"
                     "drover_consul_requests_total{code=\"500\"} 5\n"
                     "# HELP drover_watcher_snapshot_age_seconds Age of the snapshot.\\nIn s \\\\\n"
                     "# TYPE drover_watcher_snapshot_age_seconds gauge\n"
                     "drover_watcher_snapshot_age_seconds 10.25\n"
                     "# HELP drover_test_values Odd values.\n"
                     "# TYPE drover_test_values gauge\n"
                     "drover_test_values{v=\"inf\"} +Inf\n"
                     "drover_test_values{v=\"-inf\"} -Inf\n"
                     "drover_test_values{v=\"nan\"} NaN\n"
                     "drover_test_values{v=\"small\"} 0.1\n"
                     "drover_test_values{v=\"big\"} 1e+21\n"
                     "# HELP drover_backend_up Backend is up.\n"
                     "# TYPE drover_backend_up gauge\n"
                     "drover_backend_up{backend=\"web\\\"a\\\\b\\nc\"} 1\n"
                     "drover_backend_up{backend=\"api\"} 0\n");
    ck_assert_int_eq(calls, 1);
    free(out);
    /* collectors run on every scrape */
    out = render(reg);
    ck_assert_int_eq(calls, 2);
    free(out);
    metrics_registry_free(reg);
}
END_TEST

START_TEST(test_rejects_bad_registrations)
{
    struct metrics_registry *reg = metrics_registry_new();

    log_set_level(LOGL_ERROR + 1); /* silence the expected errors */
    ck_assert_ptr_null(metrics_counter(reg, "1bad", "x", NULL));
    ck_assert_ptr_null(metrics_counter(reg, "ok_name", "x", "code=200"));
    ck_assert_ptr_null(metrics_counter(reg, "ok_name", "x", "code=\"200\"x"));
    ck_assert_ptr_null(metrics_counter(reg, "ok_name", "x", "__x=\"1\""));
    ck_assert_ptr_null(metrics_counter(reg, "ok_name", "x", "a=\"\\q\""));
    ck_assert_ptr_nonnull(metrics_counter(reg, "ok_name", "x", "a=\"1\",b=\"\\\"\""));
    ck_assert_ptr_null(metrics_gauge(reg, "ok_name", "x", NULL)); /* type clash */
    /* NULL handles are harmless */
    metrics_counter_inc(NULL);
    metrics_gauge_set(NULL, 1);
    metrics_gauge_add(NULL, 1);
    ck_assert_uint_eq(metrics_counter_value(NULL), 0);
    log_set_level(LOGL_INFO);
    char *out = render(reg);
    ck_assert_str_eq(out, "# HELP ok_name x\n# TYPE ok_name counter\n"
                          "ok_name{a=\"1\",b=\"\\\"\"} 0\n");
    free(out);
    metrics_registry_free(reg);
}
END_TEST

START_TEST(test_format_helpers)
{
    char buf[64];

    ck_assert_int_eq(metrics_format_labels(buf, sizeof(buf), "cpu", "3", "path", "a\"b", NULL), 0);
    ck_assert_str_eq(buf, "cpu=\"3\",path=\"a\\\"b\"");
    ck_assert_int_eq(metrics_format_labels(buf, 8, "cpu", "3", "path", "x", NULL), -ENOSPC);
    ck_assert_int_eq(metrics_format_labels(buf, sizeof(buf), "a-b", "3", NULL), -EINVAL);
    ck_assert_int_eq(metrics_format_labels(buf, sizeof(buf), NULL), 0);
    ck_assert_str_eq(buf, "");
    metrics_format_value(3, buf, sizeof(buf));
    ck_assert_str_eq(buf, "3");
    metrics_format_value(-0.5, buf, sizeof(buf));
    ck_assert_str_eq(buf, "-0.5");
    metrics_format_value(1.0 / 3.0, buf, sizeof(buf));
    ck_assert_double_eq(strtod(buf, NULL), 1.0 / 3.0);
    metrics_format_value(123456789012345.0, buf, sizeof(buf));
    ck_assert_str_eq(buf, "123456789012345");
}
END_TEST

static void *hammer(void *arg)
{
    struct metrics_registry *reg = arg;
    struct metrics_counter *c = metrics_counter(reg, "drover_hits_total", "h", NULL);
    struct metrics_gauge *g = metrics_gauge(reg, "drover_level", "l", NULL);

    for (int i = 0; i < 100000; i++) {
        metrics_counter_inc(c);
        metrics_gauge_add(g, 1);
    }
    return NULL;
}

START_TEST(test_concurrent_updates)
{
    struct metrics_registry *reg = metrics_registry_new();
    pthread_t t[4];

    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, hammer, reg), 0);
    for (int i = 0; i < 2; i++)
        free(render(reg)); /* scrapes while writers run */
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    ck_assert_uint_eq(metrics_counter_value(metrics_counter(reg, "drover_hits_total", "h", NULL)),
                      400000);
    ck_assert_double_eq(metrics_gauge_value(metrics_gauge(reg, "drover_level", "l", NULL)),
                        400000.0);
    metrics_registry_free(reg);
}
END_TEST

/* Exact exposition: cumulative buckets with le after the constant labels,
 * a value on a bound counted in that bucket, _sum and _count. */
START_TEST(test_histogram_text)
{
    struct metrics_registry *reg = metrics_registry_new();
    static const double bounds[] = {0.1, 1, 2.5};
    struct metrics_histogram *h = metrics_histogram(reg, "drover_x_apply_seconds", "Apply latency.",
                                                    "kind=\"runtime\"", bounds, 3);
    struct metrics_histogram *empty = metrics_histogram(
        reg, "drover_x_apply_seconds", "Apply latency.", "kind=\"reload\"", bounds, 3);

    ck_assert_ptr_nonnull(h);
    ck_assert_ptr_nonnull(empty);
    ck_assert_ptr_eq(metrics_histogram(reg, "drover_x_apply_seconds", "Apply latency.",
                                       "kind=\"runtime\"", bounds, 3),
                     h);
    metrics_histogram_observe(h, 0.05);
    metrics_histogram_observe(h, 1); /* on a bound: le="1" */
    metrics_histogram_observe(h, 2);
    metrics_histogram_observe(h, 7.5); /* only +Inf */
    metrics_histogram_observe(h, NAN); /* ignored */
    metrics_histogram_observe(NULL, 1);
    ck_assert_uint_eq(metrics_histogram_count(h), 4);
    ck_assert_double_eq(metrics_histogram_sum(h), 10.55);
    char *text = render(reg);
    ck_assert_str_eq(text, "# HELP drover_x_apply_seconds Apply latency.\n"
                           "# TYPE drover_x_apply_seconds histogram\n"
                           "drover_x_apply_seconds_bucket{kind=\"runtime\",le=\"0.1\"} 1\n"
                           "drover_x_apply_seconds_bucket{kind=\"runtime\",le=\"1\"} 2\n"
                           "drover_x_apply_seconds_bucket{kind=\"runtime\",le=\"2.5\"} 3\n"
                           "drover_x_apply_seconds_bucket{kind=\"runtime\",le=\"+Inf\"} 4\n"
                           "drover_x_apply_seconds_sum{kind=\"runtime\"} 10.55\n"
                           "drover_x_apply_seconds_count{kind=\"runtime\"} 4\n"
                           "drover_x_apply_seconds_bucket{kind=\"reload\",le=\"0.1\"} 0\n"
                           "drover_x_apply_seconds_bucket{kind=\"reload\",le=\"1\"} 0\n"
                           "drover_x_apply_seconds_bucket{kind=\"reload\",le=\"2.5\"} 0\n"
                           "drover_x_apply_seconds_bucket{kind=\"reload\",le=\"+Inf\"} 0\n"
                           "drover_x_apply_seconds_sum{kind=\"reload\"} 0\n"
                           "drover_x_apply_seconds_count{kind=\"reload\"} 0\n");
    free(text);
    metrics_registry_free(reg);
}
END_TEST

START_TEST(test_histogram_unlabelled_and_refusals)
{
    struct metrics_registry *reg = metrics_registry_new();
    static const double bounds[] = {1, 2};
    static const double unsorted[] = {2, 1};
    static const double inf[] = {1, INFINITY};
    double many[METRICS_HISTOGRAM_MAX_BUCKETS + 1];

    for (size_t i = 0; i < sizeof(many) / sizeof(many[0]); i++)
        many[i] = (double)i;
    log_set_level(LOGL_ERROR + 1); /* the refusals below log errors */
    ck_assert_ptr_null(metrics_histogram(reg, "drover_h_seconds", "h", NULL, unsorted, 2));
    ck_assert_ptr_null(metrics_histogram(reg, "drover_h_seconds", "h", NULL, inf, 2));
    ck_assert_ptr_null(metrics_histogram(reg, "drover_h_seconds", "h", NULL, bounds, 0));
    ck_assert_ptr_null(metrics_histogram(reg, "drover_h_seconds", "h", NULL, many,
                                         METRICS_HISTOGRAM_MAX_BUCKETS + 1));
    ck_assert_ptr_nonnull(
        metrics_histogram(reg, "drover_h_seconds", "h", NULL, many, METRICS_HISTOGRAM_MAX_BUCKETS));
    /* a name taken by a counter, and a histogram name as a counter */
    metrics_counter(reg, "drover_c_total", "c", NULL);
    ck_assert_ptr_null(metrics_histogram(reg, "drover_c_total", "c", NULL, bounds, 2));
    ck_assert_ptr_null(metrics_counter(reg, "drover_h_seconds", "h", NULL));
    log_set_level(LOGL_INFO);
    ck_assert_ptr_nonnull(metrics_histogram(reg, "drover_latency_seconds", "l", NULL,
                                            metrics_latency_buckets, metrics_latency_buckets_n));
    metrics_histogram_observe(metrics_histogram(reg, "drover_latency_seconds", "l", NULL,
                                                metrics_latency_buckets, metrics_latency_buckets_n),
                              0.003);
    char *text = render(reg);
    ck_assert_msg(strstr(text, "drover_latency_seconds_bucket{le=\"0.0025\"} 0\n"
                               "drover_latency_seconds_bucket{le=\"0.005\"} 1\n"),
                  "%s", text);
    ck_assert_msg(strstr(text, "drover_latency_seconds_count 1\n"), "%s", text);
    free(text);
    metrics_registry_free(reg);
}
END_TEST

static void *observe_many(void *arg)
{
    for (int i = 0; i < 100000; i++)
        metrics_histogram_observe(arg, (i % 4) * 0.5);
    return NULL;
}

/* Concurrent observations and scrapes: nothing lost, every scrape's
 * buckets monotonic with _count equal to +Inf. */
START_TEST(test_histogram_concurrent)
{
    struct metrics_registry *reg = metrics_registry_new();
    static const double bounds[] = {0.25, 0.75, 1.25};
    struct metrics_histogram *h = metrics_histogram(reg, "drover_c_seconds", "c", NULL, bounds, 3);
    pthread_t t[4];

    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, observe_many, h), 0);
    for (int i = 0; i < 3; i++) {
        char *text = render(reg);
        unsigned long prev = 0, v, inf = 0, count = 0;
        const char *p = text;
        while ((p = strstr(p, "_bucket{le=\"")) != NULL) {
            p = strchr(p, '}') + 2;
            v = strtoul(p, NULL, 10);
            ck_assert_uint_ge(v, prev);
            prev = inf = v;
        }
        ck_assert_int_eq(
            sscanf(strstr(text, "drover_c_seconds_count "), "drover_c_seconds_count %lu", &count),
            1);
        ck_assert_uint_eq(count, inf);
        free(text);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    ck_assert_uint_eq(metrics_histogram_count(h), 400000);
    ck_assert_double_eq(metrics_histogram_sum(h), 4 * 25000 * (0 + 0.5 + 1 + 1.5));
    metrics_registry_free(reg);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_exact_text);
    tcase_add_test(tc, test_rejects_bad_registrations);
    tcase_add_test(tc, test_format_helpers);
    tcase_add_test(tc, test_concurrent_updates);
    tcase_add_test(tc, test_histogram_text);
    tcase_add_test(tc, test_histogram_unlabelled_and_refusals);
    tcase_add_test(tc, test_histogram_concurrent);
    suite_add_tcase(s, tc);
    return suite_main_run(s);
}
