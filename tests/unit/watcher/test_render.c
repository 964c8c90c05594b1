/* SPDX-License-Identifier: Apache-2.0 */
/* render: the haproxy -c gate, atomic install, rollback (runs the real
 * haproxy binary for the check, nothing is started). */
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "render.h"
#include "../common/suite_main.h"

static const char *good = "global\n    maxconn 100\ndefaults\n    timeout connect 1s\n"
                          "    timeout client 1s\n    timeout server 1s\nfrontend f\n"
                          "    bind 127.0.0.1:1\n    default_backend b\nbackend b\n"
                          "    server s1 127.0.0.1:2\n";
static const char *good2 = "global\n    maxconn 200\ndefaults\n    timeout connect 1s\n"
                           "    timeout client 1s\n    timeout server 1s\nfrontend f\n"
                           "    bind 127.0.0.1:1\n    default_backend b\nbackend b\n"
                           "    server s1 127.0.0.1:3\n";
static const char *bad = "global\n    maxconn 100\nfrontend f\n    no-such-directive\n";

static char dir[64];

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/test_render.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/web.cfg", dir);
    unlink(p);
    snprintf(p, sizeof(p), "%s/web.cfg.prev", dir);
    unlink(p);
    snprintf(p, sizeof(p), "%s/web.cfg.removed", dir);
    unlink(p);
    rmdir(dir);
}

static char *installed(const char *suffix)
{
    char p[PATH_MAX], *text = NULL;
    size_t len;
    snprintf(p, sizeof(p), "%s/web.cfg%s", dir, suffix);
    if (render_read_file(p, &text, &len) < 0)
        return NULL;
    return text;
}

START_TEST(test_install_check_rollback)
{
    char err[2048] = "";
    bool changed = false;
    ck_assert_int_eq(
        render_install("haproxy", dir, "web", good, strlen(good), &changed, err, sizeof(err)), 0);
    ck_assert(changed);
    char *t = installed("");
    ck_assert_str_eq(t, good);
    free(t);
    /* same text: nothing written */
    ck_assert_int_eq(
        render_install("haproxy", dir, "web", good, strlen(good), &changed, err, sizeof(err)), 0);
    ck_assert(!changed);
    /* refused by haproxy -c: the old file stays, the error says why */
    ck_assert_int_eq(
        render_install("haproxy", dir, "web", bad, strlen(bad), &changed, err, sizeof(err)),
        -EINVAL);
    ck_assert(!changed);
    ck_assert_ptr_nonnull(strstr(err, "no-such-directive"));
    t = installed("");
    ck_assert_str_eq(t, good);
    free(t);
    /* empty: never installed over a working config */
    ck_assert_int_eq(render_install("haproxy", dir, "web", "", 0, &changed, err, sizeof(err)),
                     -ENODATA);
    t = installed("");
    ck_assert_str_eq(t, good);
    free(t);
    /* a new good one keeps the previous for rollback */
    ck_assert_int_eq(
        render_install("haproxy", dir, "web", good2, strlen(good2), &changed, err, sizeof(err)), 0);
    ck_assert(changed);
    t = installed(".prev");
    ck_assert_str_eq(t, good);
    free(t);
    ck_assert_int_eq(render_rollback(dir, "web", err, sizeof(err)), 0);
    t = installed("");
    ck_assert_str_eq(t, good);
    free(t);
}
END_TEST

struct result {
    int calls, status;
    bool changed;
    char err[2048];
};

static void on_done(void *arg, int status, bool changed, const char *err)
{
    struct result *r = arg;
    r->calls++;
    r->status = status;
    r->changed = changed;
    snprintf(r->err, sizeof(r->err), "%s", err ? err : "");
}

static struct result run_async(const char *text)
{
    uv_loop_t loop;
    struct result r = {0};
    uv_loop_init(&loop);
    ck_assert_int_eq(
        render_install_async(&loop, "haproxy", dir, "web", text, strlen(text), on_done, &r), 0);
    ck_assert_int_eq(r.calls, 0); /* never from inside the call */
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    ck_assert_int_eq(r.calls, 1);
    return r;
}

START_TEST(test_install_async)
{
    struct result r = run_async(good);
    ck_assert_int_eq(r.status, 0);
    ck_assert(r.changed);
    r = run_async(good);
    ck_assert_int_eq(r.status, 0);
    ck_assert(!r.changed);
    r = run_async(bad);
    ck_assert_int_eq(r.status, -EINVAL);
    ck_assert_ptr_nonnull(strstr(r.err, "no-such-directive"));
    r = run_async("");
    ck_assert_int_eq(r.status, -ENODATA);
    char *t = installed("");
    ck_assert_str_eq(t, good);
    free(t);
}
END_TEST

/* a removed service's config is moved aside (kept for the operator), not
 * deleted; a second retire has nothing to move */
START_TEST(test_retire)
{
    char err[2048] = "";
    bool changed = false;
    ck_assert_int_eq(
        render_install("haproxy", dir, "web", good, strlen(good), &changed, err, sizeof(err)), 0);
    ck_assert_int_eq(render_retire(dir, "web", err, sizeof(err)), 0);
    ck_assert_ptr_null(installed(""));
    char *t = installed(".removed");
    ck_assert_ptr_nonnull(t);
    ck_assert_str_eq(t, good);
    free(t);
    ck_assert_int_eq(render_retire(dir, "web", err, sizeof(err)), -ENOENT);
    ck_assert_ptr_nonnull(strstr(err, "web.cfg"));
    /* the service comes back and goes again: the newer file is kept */
    ck_assert_int_eq(
        render_install("haproxy", dir, "web", good2, strlen(good2), &changed, err, sizeof(err)), 0);
    ck_assert_int_eq(render_retire(dir, "web", err, sizeof(err)), 0);
    t = installed(".removed");
    ck_assert_str_eq(t, good2);
    free(t);
}
END_TEST

/* A staging directory "dir/<prefix><pid>.<rand>" holding a config, as a
 * check in progress has it; its path into path. */
static void make_staging(char *path, size_t len, const char *prefix, long pid, const char *rand)
{
    char cfg[PATH_MAX + 16];
    FILE *f;

    snprintf(path, len, "%s/%s%ld.%s", dir, prefix, pid, rand);
    ck_assert_int_eq(mkdir(path, 0700), 0);
    snprintf(cfg, sizeof(cfg), "%s/web.cfg", path);
    ck_assert_ptr_nonnull(f = fopen(cfg, "w"));
    fputs(good, f);
    fclose(f);
}

static bool exists(const char *path)
{
    return access(path, F_OK) == 0;
}

static void remove_staging(const char *path)
{
    char cfg[PATH_MAX + 16];

    snprintf(cfg, sizeof(cfg), "%s/web.cfg", path);
    unlink(cfg);
    rmdir(path);
}

/* A dead writer's staging directory goes; a live one's stays, ours only
 * goes when asked (a start), and names that are not staging directories
 * of this format stay. */
START_TEST(test_sweep_staging)
{
    char dead[PATH_MAX], live[PATH_MAX], ours[PATH_MAX], other[PATH_MAX], old[PATH_MAX];
    pid_t child = fork();

    ck_assert_int_ge(child, 0);
    if (child == 0)
        _exit(0);
    ck_assert_int_eq(waitpid(child, NULL, 0), child); /* reaped: its pid is gone */
    make_staging(dead, sizeof(dead), RENDER_STAGING_PREFIX, child, "aB3dEf");
    make_staging(live, sizeof(live), RENDER_STAGING_PREFIX, getppid(), "gH5jKl");
    make_staging(ours, sizeof(ours), RENDER_STAGING_PREFIX, getpid(), "mN7pQr");
    make_staging(other, sizeof(other), "drover-render-diff.", child, "sT9vWx");
    snprintf(old, sizeof(old), "%s/%sYz1aBc", dir, RENDER_STAGING_PREFIX);
    ck_assert_int_eq(mkdir(old, 0700), 0);

    ck_assert_int_eq(render_sweep_staging(dir, false), 1);
    ck_assert_msg(!exists(dead), "%s of a dead process kept", dead);
    ck_assert_msg(exists(live) && exists(ours), "a live process's staging directory removed");
    ck_assert_msg(exists(other) && exists(old), "a name not of this format removed");
    ck_assert_int_eq(render_sweep_staging(dir, true), 1);
    ck_assert_msg(!exists(ours), "our own staging directory kept at a start");
    ck_assert(exists(live));
    ck_assert_int_eq(render_sweep_staging("/nonexistent-drover-dir", true), -ENOENT);
    remove_staging(live);
    remove_staging(other);
    rmdir(old);
}
END_TEST

int main(void)
{
    if (system("haproxy -v >/dev/null 2>&1") != 0) {
        fprintf(stderr, "SKIP: haproxy not installed\n");
        return 77;
    }
    Suite *s = suite_create("render");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_install_check_rollback);
    tcase_add_test(tc, test_install_async);
    tcase_add_test(tc, test_retire);
    tcase_add_test(tc, test_sweep_staging);
    suite_add_tcase(s, tc);
    return suite_main_run(s);
}
