/* SPDX-License-Identifier: Apache-2.0 */
/* file_writer: durable writes off the loop, newest content per path, in
 * order; syncs never write; close flushes what waits; callbacks after the
 * write (or the newer one that replaced it), never after a cancel. */
#include <check.h>
#include <stdbool.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "atomic_file.h"
#include "file_writer.h"
#include "render.h"
#include "../common/suite_main.h"

static char dir[64];

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/test_file_writer.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static char *content(const char *name)
{
    char p[PATH_MAX], *text = NULL;
    size_t len;
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    if (render_read_file(p, &text, &len) < 0)
        return NULL;
    return text;
}

START_TEST(test_newest_content_wins)
{
    uv_loop_t loop;
    struct file_writer *w;
    char a[PATH_MAX], b[PATH_MAX];
    snprintf(a, sizeof(a), "%s/a", dir);
    snprintf(b, sizeof(b), "%s/b", dir);
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    ck_assert_int_eq(file_writer_new(&loop, &w), 0);
    /* the first batch starts at once; the next three wait and coalesce */
    ck_assert_int_eq(file_writer_write(w, a, "1", 1, 0644), 0);
    ck_assert_int_eq(file_writer_write(w, a, "2", 1, 0644), 0);
    ck_assert_int_eq(file_writer_write(w, b, "x", 1, 0600), 0);
    ck_assert_int_eq(file_writer_write(w, a, "3", 1, 0644), 0);
    /* a sync of a path with a write waiting is that write */
    ck_assert_int_eq(file_writer_sync(w, a), 0);
    ck_assert(!file_writer_idle(w));
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert(file_writer_idle(w));
    char *t = content("a");
    ck_assert_str_eq(t, "3");
    free(t);
    t = content("b");
    ck_assert_str_eq(t, "x");
    free(t);
    ck_assert_uint_eq(file_writer_failures(w), 0);

    /* a sync keeps the content the loop renamed into place */
    FILE *f = fopen(b, "w");
    fputs("renamed", f);
    fclose(f);
    ck_assert_int_eq(file_writer_sync(w, b), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    t = content("b");
    ck_assert_str_eq(t, "renamed");
    free(t);

    /* failures are counted: a missing directory, a missing file to sync */
    snprintf(a, sizeof(a), "%s/missing/a", dir);
    ck_assert_int_eq(file_writer_write(w, a, "1", 1, 0644), 0);
    snprintf(b, sizeof(b), "%s/missing-file", dir);
    ck_assert_int_eq(file_writer_sync(w, b), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_uint_eq(file_writer_failures(w), 2);
    file_writer_close(w);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

START_TEST(test_close_flushes)
{
    uv_loop_t loop;
    struct file_writer *w;
    char a[PATH_MAX];
    snprintf(a, sizeof(a), "%s/a", dir);
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    /* closed while a batch is in flight: what waits is written after it */
    ck_assert_int_eq(file_writer_new(&loop, &w), 0);
    ck_assert_int_eq(file_writer_write(w, a, "old", 3, 0644), 0);
    ck_assert_int_eq(file_writer_write(w, a, "new", 3, 0644), 0);
    file_writer_close(w);
    uv_run(&loop, UV_RUN_DEFAULT);
    char *t = content("a");
    ck_assert_str_eq(t, "new");
    free(t);
    /* closed idle with nothing in flight: nothing to wait for */
    ck_assert_int_eq(file_writer_new(&loop, &w), 0);
    file_writer_close(w);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

struct done_rec {
    int calls, status;
    char seen[16]; /* the file's content when the callback ran */
    const char *path;
};

static void on_done(void *arg, int status)
{
    struct done_rec *r = arg;
    char *text = NULL;
    size_t len;
    r->calls++;
    r->status = status;
    if (render_read_file(r->path, &text, &len) == 0)
        snprintf(r->seen, sizeof(r->seen), "%s", text);
    free(text);
}

START_TEST(test_callbacks_after_the_write)
{
    uv_loop_t loop;
    struct file_writer *w;
    char a[PATH_MAX], bad[PATH_MAX];
    snprintf(a, sizeof(a), "%s/a", dir);
    snprintf(bad, sizeof(bad), "%s/missing/a", dir);
    struct done_rec first = {.path = a}, replaced = {.path = a}, newest = {.path = a},
                    cancelled = {.path = a}, failed = {.path = bad};
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    ck_assert_int_eq(file_writer_new(&loop, &w), 0);
    /* in flight at once; then one waiting content replaced by a newer one:
     * the replaced one's callback comes with the newer content written */
    ck_assert_int_eq(file_writer_write_then(w, a, "1", 1, 0644, on_done, &first), 0);
    ck_assert_int_eq(file_writer_write_then(w, a, "2", 1, 0644, on_done, &replaced), 0);
    ck_assert_int_eq(file_writer_write_then(w, a, "3", 1, 0644, on_done, &newest), 0);
    ck_assert_int_eq(file_writer_write_then(w, a, "3", 1, 0644, on_done, &cancelled), 0);
    file_writer_cancel(w, &cancelled);
    ck_assert_int_eq(file_writer_write_then(w, bad, "x", 1, 0644, on_done, &failed), 0);
    ck_assert_int_eq(first.calls + replaced.calls + newest.calls, 0); /* never from the call */
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(first.calls, 1);
    ck_assert_int_eq(first.status, 0);
    ck_assert_str_eq(first.seen, "1");
    ck_assert_int_eq(replaced.calls, 1);
    ck_assert_int_eq(replaced.status, 0);
    ck_assert_str_eq(replaced.seen, "3");
    ck_assert_int_eq(newest.calls, 1);
    ck_assert_str_eq(newest.seen, "3");
    ck_assert_int_eq(cancelled.calls, 0);
    ck_assert_int_eq(failed.calls, 1);
    ck_assert_int_eq(failed.status, -ENOENT);
    ck_assert_uint_eq(file_writer_failures(w), 1);

    /* renamed into place without fsync: there, whole, when done runs */
    struct done_rec visible = {.path = a};
    ck_assert_int_eq(file_writer_replace_then(w, a, "4", 1, 0600, on_done, &visible), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(visible.calls, 1);
    ck_assert_int_eq(visible.status, 0);
    ck_assert_str_eq(visible.seen, "4");
    struct stat st;
    ck_assert_int_eq(stat(a, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0600);
    ck_assert_int_eq(atomic_file_replace(bad, "x", 1, 0644), -ENOENT);
    file_writer_close(w);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

static bool present(const char *path)
{
    return access(path, F_OK) == 0;
}

/* A removal: the file goes at once; a write of it still queued does not
 * put it back (its callback told -ECANCELED); a sync of it in flight is
 * not a failure for finding it gone; a write queued after the removal
 * puts it back. */
START_TEST(test_remove)
{
    uv_loop_t loop;
    struct file_writer *w;
    char m[PATH_MAX];
    snprintf(m, sizeof(m), "%s/web.fe.map", dir);
    struct done_rec stale = {.path = m};
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    ck_assert_int_eq(file_writer_new(&loop, &w), 0);
    ck_assert_int_eq(atomic_file_replace(m, "a b\n", 4, 0644), 0);
    ck_assert_int_eq(file_writer_sync(w, m), 0); /* in flight at once */
    ck_assert_int_eq(file_writer_write_then(w, m, "stale", 5, 0644, on_done, &stale), 0);
    ck_assert_int_eq(file_writer_remove(w, m), 0);
    ck_assert(!present(m));
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_msg(!present(m), "the queued write put the removed file back");
    ck_assert_int_eq(stale.calls, 1);
    ck_assert_int_eq(stale.status, -ECANCELED);
    ck_assert_uint_eq(file_writer_failures(w), 0);
    /* nothing there: still no error, nothing queued is left */
    ck_assert_int_eq(file_writer_remove(w, m), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_uint_eq(file_writer_failures(w), 0);
    /* a write after the removal wins, as the newest content does */
    ck_assert_int_eq(file_writer_remove(w, m), 0);
    ck_assert_int_eq(file_writer_sync(w, m), 0);
    ck_assert_int_eq(file_writer_write(w, m, "new", 3, 0644), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    char *t = content("web.fe.map");
    ck_assert_ptr_nonnull(t);
    ck_assert_str_eq(t, "new");
    free(t);
    ck_assert_uint_eq(file_writer_failures(w), 0);
    /* a removal that cannot be done says so (unlink of a directory) */
    char sub[PATH_MAX];
    snprintf(sub, sizeof(sub), "%s/full", dir);
    ck_assert_int_eq(mkdir(sub, 0755), 0);
    snprintf(m, sizeof(m), "%s/full/x", dir);
    ck_assert_int_eq(atomic_file_replace(m, "x", 1, 0644), 0);
    ck_assert_int_eq(file_writer_remove(w, sub), -EISDIR);
    uv_run(&loop, UV_RUN_DEFAULT);
    file_writer_close(w);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("file_writer");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_newest_content_wins);
    tcase_add_test(tc, test_close_flushes);
    tcase_add_test(tc, test_callbacks_after_the_write);
    tcase_add_test(tc, test_remove);
    suite_add_tcase(s, tc);
    return suite_main_run(s);
}
