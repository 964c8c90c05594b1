/* SPDX-License-Identifier: Apache-2.0 */
/* file_diff: diff(1)'s exit status read as 0 same / 1 different / error,
 * its output captured with a prefix or passed through to stdout, a
 * missing side as /dev/null, and clear errors when diff fails or is not
 * installed. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file_diff.h"
#include "suite_main.h"

static char dir[64], a[128], b[128], same[128];

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/drover-diff-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(a, sizeof(a), "%s/a's file", dir); /* a quote: no shell in between */
    snprintf(b, sizeof(b), "%s/b", dir);
    snprintf(same, sizeof(same), "%s/same", dir);
    put(a, "one\ntwo\n");
    put(b, "one\nthree\n");
    put(same, "one\ntwo\n");
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* Run file_diff_unified capturing into a memory stream; the text in *text. */
static int run(const char *x, const char *y, const char *la, const char *lb, char **text, char *err,
               size_t errlen)
{
    size_t len = 0;
    FILE *m = open_memstream(text, &len);
    ck_assert_ptr_nonnull(m);
    struct file_diff_opts o = {.label_a = la, .label_b = lb, .out = m, .prefix = "    "};
    int rc = file_diff_unified(x, y, &o, err, errlen);
    fclose(m);
    return rc;
}

START_TEST(test_same_and_different)
{
    char *t = NULL, err[256] = "";
    ck_assert_int_eq(run(a, same, NULL, NULL, &t, err, sizeof(err)), 0);
    ck_assert_str_eq(t, "");
    free(t);
    ck_assert_int_eq(run(a, b, "live web.cfg", "new web.cfg", &t, err, sizeof(err)), 1);
    ck_assert_msg(strstr(t, "    --- live web.cfg") && strstr(t, "    +++ new web.cfg") &&
                      strstr(t, "\n    -two\n") && strstr(t, "\n    +three\n"),
                  "%s", t);
    free(t);
    /* a new file: against /dev/null */
    ck_assert_int_eq(run(NULL, b, NULL, NULL, &t, err, sizeof(err)), 1);
    ck_assert_msg(strstr(t, "    --- /dev/null") && strstr(t, "\n    +three\n"), "%s", t);
    free(t);
}
END_TEST

START_TEST(test_errors)
{
    char *t = NULL, err[256] = "";
    /* a directory against a file: diff looks for the file's name in it
     * and fails (exit 2) */
    ck_assert_int_eq(run(dir, "/etc/hostname", NULL, NULL, &t, err, sizeof(err)), -EIO);
    ck_assert_msg(strstr(err, "diff -u") && strstr(err, dir), "%s", err);
    free(t);
    /* no diff installed */
    char *path = getenv("PATH") ? strdup(getenv("PATH")) : NULL;
    ck_assert_int_eq(setenv("PATH", dir, 1), 0);
    ck_assert_int_eq(run(a, b, NULL, NULL, &t, err, sizeof(err)), -ENOENT);
    ck_assert_msg(strstr(err, "diff: not found in PATH"), "%s", err);
    free(t);
    if (path)
        setenv("PATH", path, 1);
    free(path);
}
END_TEST

/* Without out: diff writes to our stdout, after what we printed. */
START_TEST(test_pass_through)
{
    char out[160], err[256] = "", buf[512] = "";
    snprintf(out, sizeof(out), "%s/stdout", dir);
    fflush(stdout);
    int saved = dup(STDOUT_FILENO), fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_ge(dup2(fd, STDOUT_FILENO), 0);
    close(fd);
    printf("before\n");
    struct file_diff_opts o = {0};
    int rc = file_diff_unified(a, b, &o, err, sizeof(err));
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    ck_assert_int_eq(rc, 1);
    FILE *f = fopen(out, "r");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    ck_assert_msg(strncmp(buf, "before\n--- ", 11) == 0 && strstr(buf, "\n+three\n"), "%s", buf);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("file_diff");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_same_and_different);
    tcase_add_test(tc, test_errors);
    tcase_add_test(tc, test_pass_through);
    suite_add_tcase(s, tc);
    return suite_main_run(s);
}
