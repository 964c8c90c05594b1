/* SPDX-License-Identifier: Apache-2.0 */
/* consul_stats_emit renders every Consul client counter through metrics.h. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "consul.h"
#include "metrics.h"
#include "suite_main.h"

static void collect(struct metrics_emitter *em, void *arg)
{
    ck_assert_int_eq(consul_stats_emit(arg, em, "watcher"), 0);
}

START_TEST(test_emit_counters)
{
    struct consul_stats st = {.requests = 12,
                              .errors = 3,
                              .retries = 2,
                              .index_resets = 1,
                              .token_reloads = 4,
                              .watch_wakeups = 9,
                              .watch_unchanged = 5,
                              .watch_deliveries = 4};
    struct metrics_registry *reg = metrics_registry_new();
    ck_assert_ptr_nonnull(reg);
    ck_assert_int_eq(metrics_add_collector(reg, collect, &st), 0);
    char *out = NULL;
    size_t len = 0;
    ck_assert_int_eq(metrics_render(reg, &out, &len), 0);
    ck_assert_ptr_nonnull(strstr(out, "# TYPE drover_watcher_consul_requests_total counter\n"));
    ck_assert_ptr_nonnull(strstr(out, "\ndrover_watcher_consul_requests_total 12\n"));
    ck_assert_ptr_nonnull(strstr(out, "\ndrover_watcher_consul_errors_total 3\n"));
    ck_assert_ptr_nonnull(strstr(out, "\ndrover_watcher_consul_index_resets_total 1\n"));
    ck_assert_ptr_nonnull(strstr(out, "\ndrover_watcher_consul_watch_unchanged_total 5\n"));
    ck_assert_ptr_nonnull(strstr(out, "\ndrover_watcher_consul_watch_deliveries_total 4\n"));
    free(out);
    metrics_registry_free(reg);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("consul_stats");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_emit_counters);
    suite_add_tcase(s, tc);
    return suite_main_run(s);
}
