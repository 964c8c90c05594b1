/* SPDX-License-Identifier: Apache-2.0 */
/* director_apply: a snapshot that cannot be written is reported in the
 * stats (reason, count) that make the director watcher not ready, and
 * cleared by the next write that succeeds. No BPF: the inputs come from a
 * snapshot (director_apply_load) and publishing to a pin dir without maps
 * fails, which still writes the snapshot (as a real failing run does). */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "director_apply.h"
#include "director_snapshot.h"
#include "log.h"
#include "../common/suite_main.h"

static struct director_inputs *inputs(void)
{
    static const char *const kv[][2] = {
        {"config", "{\"hash_key\":\"00112233445566778899aabbccddeeff\"}"},
        {"proxies/proxy-a", "{\"address\":\"10.0.0.1\",\"state\":\"active\"}"},
        {"proxies/proxy-b", "{\"address\":\"10.0.0.2\",\"state\":\"active\"}"},
        {"vips/web", "{\"address\":\"192.0.2.1\",\"ports\":[80],\"protocol\":\"tcp\"}"},
    };
    struct director_inputs *in = calloc(1, sizeof(*in));
    char err[256];

    ck_assert_ptr_nonnull(in);
    for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++)
        ck_assert_msg(director_inputs_add_entry(in, kv[i][0], kv[i][1], strlen(kv[i][1]), err,
                                                sizeof(err)) == 0,
                      "%s", err);
    director_inputs_finish(in);
    return in;
}

START_TEST(test_unwritable_snapshot_is_reported_until_written)
{
    char dir[] = "/tmp/drover-test-dsnapw.XXXXXX", state[300], moved[300], path[320], pins[300],
         err[512];
    struct director_inputs *in = inputs(), *loaded = NULL;
    struct director_inputs *no_config = calloc(1, sizeof(*no_config));
    struct director_saved_proxy px[2] = {{true, 0, 0}, {true, 0, 0}};
    struct director_saved s = {.inputs = in, .proxies = px, .cluster = "east", .dev = "eth0"};
    struct director_apply *a = NULL;
    enum director_apply_outcome out;
    bool *healthy = NULL;

    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(state, sizeof(state), "%s/state", dir);
    snprintf(moved, sizeof(moved), "%s/moved", dir);
    snprintf(path, sizeof(path), "%s/director.pb", state);
    snprintf(pins, sizeof(pins), "%s/no-pins", dir);
    ck_assert_int_eq(mkdir(state, 0700), 0);
    ck_assert_int_eq(director_snapshot_save(&s, path, err, sizeof(err)), 0);

    struct director_apply_opts o = {.pin_dir = pins,
                                    .snapshot_path = path,
                                    .cluster = "east",
                                    .dev = "eth0",
                                    .default_max_moved_share = 1};
    ck_assert_int_eq(director_apply_new(&o, &a), 0);
    ck_assert_int_eq(director_apply_load(a, &loaded, &healthy), 0);
    const struct director_apply_stats *st = director_apply_get_stats(a);
    ck_assert_str_eq(st->snapshot_error, "");

    /* the snapshot's directory is gone (root ignores modes, so not chmod):
     * a run (here one whose publish fails: no maps) cannot write it */
    director_inputs_finish(no_config);
    ck_assert_int_eq(rename(state, moved), 0);
    ck_assert_int_lt(director_apply_run(a, no_config, NULL, NULL, 1000, &out), 0);
    ck_assert_uint_eq(st->snapshot_errors, 1);
    ck_assert_msg(strstr(st->snapshot_error, path) != NULL, "reason '%s' names no path",
                  st->snapshot_error);
    ck_assert_int_lt(director_apply_run(a, no_config, NULL, NULL, 1001, &out), 0);
    ck_assert_uint_eq(st->snapshot_errors, 2); /* every failed write counts */
    ck_assert_str_ne(st->snapshot_error, "");

    /* writable again: the next run writes it and clears the reason */
    ck_assert_int_eq(rename(moved, state), 0);
    ck_assert_int_lt(director_apply_run(a, no_config, NULL, NULL, 1002, &out), 0);
    ck_assert_str_eq(st->snapshot_error, "");
    ck_assert_uint_eq(st->snapshot_errors, 2);
    ck_assert_int_eq(access(path, F_OK), 0);

    director_apply_free(a);
    director_inputs_free(loaded);
    free(healthy);
    director_inputs_free(no_config);
    director_inputs_free(in);
    unlink(path);
    rmdir(state);
    rmdir(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("director_snapshot_write");
    TCase *tc = tcase_create("core");

    log_set_level(LOGL_ERROR);
    tcase_add_test(tc, test_unwritable_snapshot_is_reported_until_written);
    suite_add_tcase(s, tc);
    return suite_main_run(s);
}
