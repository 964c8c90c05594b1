/* SPDX-License-Identifier: Apache-2.0 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "atomic_file.h"
#include "suite_main.h"

static char dir[64];
static char target[128];

static void rm_rf_dir(void)
{
    DIR *d = opendir(dir);
    struct dirent *de;

    if (!d)
        return;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
            char p[512];
            snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
            if (unlink(p) < 0)
                rmdir(p);
        }
    }
    closedir(d);
    rmdir(dir);
}

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/drover-atomic-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(target, sizeof(target), "%s/state.json", dir);
}

static void teardown(void)
{
    rm_rf_dir();
}

/* Version v of the content: distinct byte and distinct length, so any
 * mix or truncation of two versions is detected. */
static char *version(int v, size_t *len)
{
    *len = (2u << 20) + (size_t)v * 4099;
    char *buf = malloc(*len);
    ck_assert_ptr_nonnull(buf);
    memset(buf, 'a' + v % 26, *len);
    return buf;
}

static char *slurp(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY);
    struct stat st;

    if (fd < 0)
        return NULL;
    ck_assert_int_eq(fstat(fd, &st), 0);
    char *buf = malloc((size_t)st.st_size + 1);
    ssize_t n, off = 0;
    while ((n = read(fd, buf + off, (size_t)st.st_size - (size_t)off)) > 0)
        off += n;
    close(fd);
    *len = (size_t)off;
    return buf;
}

/* Which version the target holds completely; -1 if it is anything else. */
static int target_version(int a, int b)
{
    size_t len;
    char *got = slurp(target, &len);
    int which = -1;

    ck_assert_ptr_nonnull(got);
    for (int i = 0; i < 2 && which < 0; i++) {
        int v = i ? b : a;
        size_t vlen;
        char *want = version(v, &vlen);
        if (vlen == len && memcmp(want, got, len) == 0)
            which = v;
        free(want);
    }
    free(got);
    return which;
}

/* Names in dir other than the target. */
static int count_others(int *hidden_tmp)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;

    *hidden_tmp = 0;
    while ((de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
            !strcmp(de->d_name, "state.json"))
            continue;
        n++;
        if (strncmp(de->d_name, ".state.json.tmp.", 16) == 0)
            (*hidden_tmp)++;
    }
    closedir(d);
    return n;
}

static void write_version(int v)
{
    size_t len;
    char *buf = version(v, &len);
    ck_assert_int_eq(atomic_file_write(target, buf, len, 0644), 0);
    free(buf);
}

START_TEST(test_write_replace_and_mode)
{
    size_t len;
    struct stat st;
    int tmp;

    mode_t old = umask(077);
    ck_assert_int_eq(atomic_file_write(target, "one", 3, 0640), 0);
    umask(old);
    char *got = slurp(target, &len);
    ck_assert_uint_eq(len, 3);
    ck_assert_mem_eq(got, "one", 3);
    free(got);
    ck_assert_int_eq(stat(target, &st), 0);
    ck_assert_int_eq(st.st_mode & 07777, 0640);

    ck_assert_int_eq(atomic_file_write(target, "", 0, 0600), 0);
    ck_assert_int_eq(stat(target, &st), 0);
    ck_assert_int_eq(st.st_size, 0);
    ck_assert_int_eq(count_others(&tmp), 0);
}
END_TEST

START_TEST(test_failures_leave_old_file)
{
    char sub[160];
    int tmp;

    write_version(1);
    /* missing directory */
    snprintf(sub, sizeof(sub), "%s/missing/x", dir);
    ck_assert_int_eq(atomic_file_write(sub, "x", 1, 0644), -ENOENT);
    /* target is a directory: rename fails, the temp file is removed */
    snprintf(sub, sizeof(sub), "%s/adir", dir);
    ck_assert_int_eq(mkdir(sub, 0755), 0);
    ck_assert_int_lt(atomic_file_write(sub, "x", 1, 0644), 0);
    ck_assert_int_eq(count_others(&tmp), 1); /* only "adir" */
    ck_assert_int_eq(tmp, 0);
    ck_assert_int_eq(atomic_file_write("", "x", 1, 0644), -EISDIR);

    /* a write error half-way (file size limit): old content untouched */
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct rlimit rl = {.rlim_cur = 1 << 20, .rlim_max = 1 << 20};
        size_t len;
        char *buf = version(2, &len);
        signal(SIGXFSZ, SIG_IGN);
        setrlimit(RLIMIT_FSIZE, &rl);
        _exit(atomic_file_write(target, buf, len, 0644) == -EFBIG ? 0 : 1);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ck_assert_int_eq(target_version(1, 2), 1);
    ck_assert_int_eq(count_others(&tmp), 1);
    ck_assert_int_eq(tmp, 0);
}
END_TEST

/* Crash at a chosen step: the child kills itself from the test hook. */
static const char *kill_stage;
static size_t kill_after;

static void kill_hook(const char *stage, size_t written)
{
    if (strcmp(stage, kill_stage) == 0 && written >= kill_after)
        raise(SIGKILL);
}

static void crash_at(const char *stage, size_t after, int old_v, int new_v, int want_v)
{
    int tmp, status;
    pid_t pid = fork();

    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        size_t len;
        char *buf = version(new_v, &len);
        kill_stage = stage;
        kill_after = after;
        atomic_file_set_test_hook(kill_hook);
        atomic_file_write(target, buf, len, 0644);
        _exit(3); /* hook did not fire */
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "stage %s", stage);
    ck_assert_msg(target_version(old_v, new_v) == want_v, "stage %s: target is not version %d",
                  stage, want_v);
    /* A temp file may remain, but only under its hidden temp name, and
     * the stale clean-up removes it now that its writer is dead. */
    int others = count_others(&tmp);
    ck_assert_int_eq(others, tmp);
    ck_assert_int_eq(atomic_file_remove_stale(target), tmp);
    ck_assert_int_eq(count_others(&tmp), 0);
}

START_TEST(test_crash_at_every_stage)
{
    write_version(0);
    crash_at("open", 0, 0, 1, 0);
    crash_at("write", 1, 0, 1, 0);        /* after the first chunk */
    crash_at("write", 2u << 20, 0, 1, 0); /* after all data, before fsync */
    crash_at("fsync", 0, 0, 1, 0);
    crash_at("rename", 0, 0, 1, 1); /* rename done: the new version is in place */
    crash_at("dirsync", 0, 1, 2, 2);
}
END_TEST

static void slow_hook(const char *stage, size_t written)
{
    (void)stage;
    (void)written;
    /* Widen the window so random kills land inside the write. */
    struct timespec ts = {0, 300000};
    nanosleep(&ts, NULL);
}

/* Kill a writer at random moments; the reader must always find a whole
 * version and never a temp file under the target's name. */
START_TEST(test_random_sigkill)
{
    int current = 0, tmp;
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();

    /* Calibrate: how long one slowed-down write takes here, so the kill
     * moments spread over the whole write (not an assertion on time). */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    atomic_file_set_test_hook(slow_hook);
    write_version(0);
    atomic_file_set_test_hook(NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long span_us = (t1.tv_sec - t0.tv_sec) * 1000000L + (t1.tv_nsec - t0.tv_nsec) / 1000;
    span_us = span_us * 3 / 2 + 500; /* plus fork and buffer set-up in the child */
    if (span_us > 999999)
        span_us = 999999;

    for (int i = 1; i <= 40; i++) {
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            size_t len;
            char *buf = version(i, &len);
            atomic_file_set_test_hook(slow_hook);
            _exit(atomic_file_write(target, buf, len, 0644) == 0 ? 0 : 1);
        }
        struct timespec ts = {0, (long)(rand_r(&seed) % (unsigned)span_us) * 1000};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int status;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        int v = target_version(current, i);
        ck_assert_msg(v == current || v == i, "round %d: torn or foreign content", i);
        if (WIFEXITED(status))
            ck_assert_int_eq(WEXITSTATUS(status), 0);
        current = v;
        ck_assert_int_eq(count_others(&tmp), tmp);
        atomic_file_remove_stale(target);
    }
    ck_assert_int_eq(count_others(&tmp), 0);
}
END_TEST

START_TEST(test_remove_stale_spares_live_writers)
{
    char live[256], dead[256];
    int tmp;

    /* our own pid is alive: its temp file must survive */
    snprintf(live, sizeof(live), "%s/.state.json.tmp.%ld.0000abcd", dir, (long)getppid());
    /* pid beyond pid_max never exists */
    snprintf(dead, sizeof(dead), "%s/.state.json.tmp.%ld.0000abcd", dir, 99999999L);
    close(open(live, O_CREAT | O_WRONLY, 0600));
    close(open(dead, O_CREAT | O_WRONLY, 0600));
    ck_assert_int_eq(atomic_file_remove_stale(target), 1);
    ck_assert_int_eq(access(live, F_OK), 0);
    ck_assert_int_eq(access(dead, F_OK), -1);
    ck_assert_int_eq(count_others(&tmp), 1);
}
END_TEST

static void touch(const char *name)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    int fd = open(p, O_CREAT | O_WRONLY, 0600);
    ck_assert_int_ge(fd, 0);
    close(fd);
}

static bool exists(const char *name)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    return access(p, F_OK) == 0;
}

static bool map_target(const char *t, void *arg)
{
    (void)arg;
    size_t n = strlen(t);
    return n > 4 && strcmp(t + n - 4, ".map") == 0;
}

/* The start-up sweep: the temps of targets it is given (both name forms)
 * of dead writers and, at start-up, of our own pid; never a live other
 * process's, never another target's, never a name that only looks like
 * one. A pid that exited (a reaped child) is dead. */
START_TEST(test_sweep)
{
    char name[160];
    long pid;
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0)
        _exit(0);
    ck_assert_int_eq(waitpid(child, NULL, 0), child);
    long dead = (long)child, live = (long)getppid(), me = (long)getpid();
    const struct {
        const char *pre; /* the name: pre, the pid, post */
        long pid;
        const char *post;
        bool gone_at_start, gone_later;
    } c[] = {
        {".a.fe.map.tmp.", dead, ".0000abcd", true, true},
        {"a.fe.map.tmp.", dead, "", true, true}, /* the file writer's former name */
        {".a.fe.map.tmp.", live, ".0000abcd", false, false},
        {"b.fe.map.tmp.", live, "", false, false},
        {".c.fe.map.tmp.", me, ".0000abcd", true, false},
        {".a.cfg.tmp.", dead, ".0000abcd", false, false}, /* not a target it sweeps */
        {"a.fe.map.tmp.", dead, ".x", false, false},      /* not a temp name */
        {".a.fe.map.tmp.", dead, ".0000ABCD", false, false},
    };
    const size_t n = sizeof(c) / sizeof(c[0]);
    for (int start = 0; start < 2; start++) {
        int want = 0;
        for (size_t i = 0; i < n; i++) {
            snprintf(name, sizeof(name), "%s%ld%s", c[i].pre, c[i].pid, c[i].post);
            touch(name);
            want += start ? c[i].gone_at_start : c[i].gone_later;
        }
        ck_assert_int_eq(atomic_file_sweep(dir, map_target, NULL, start), want);
        for (size_t i = 0; i < n; i++) {
            snprintf(name, sizeof(name), "%s%ld%s", c[i].pre, c[i].pid, c[i].post);
            ck_assert_msg(exists(name) == !(start ? c[i].gone_at_start : c[i].gone_later), "%s",
                          name);
        }
    }
    ck_assert(atomic_file_temp_name(".x.tmp.y.tmp.12.0000abcd", name, sizeof(name), &pid));
    ck_assert_str_eq(name, "x.tmp.y");
    ck_assert_int_eq(pid, 12);
    ck_assert(!atomic_file_temp_name(".tmp.12", name, sizeof(name), &pid));
    ck_assert(!atomic_file_temp_name("x.tmp.012", name, sizeof(name), &pid));
    ck_assert_int_eq(atomic_file_sweep("/nonexistent-drover-dir", map_target, NULL, true), -ENOENT);
}
END_TEST

/* atomic_file_replace: the new content at once, the mode asked for, no
 * temp file left. */
START_TEST(test_replace_without_fsync)
{
    int tmp;
    ck_assert_int_eq(atomic_file_replace(target, "one", 3, 0600), 0);
    ck_assert_int_eq(atomic_file_replace(target, "two!", 4, 0640), 0);
    struct stat st;
    ck_assert_int_eq(stat(target, &st), 0);
    ck_assert_int_eq(st.st_size, 4);
    ck_assert_uint_eq(st.st_mode & 0777, 0640);
    ck_assert_int_eq(count_others(&tmp), 0);
}
END_TEST

/* The watcher makes its config dir and the parents of its state files;
 * rm_rf_dir removes one level, so the test cleans its nested dirs itself. */
START_TEST(test_make_dirs)
{
    char deep[256], file[320], path[256];
    struct stat st;

    snprintf(deep, sizeof(deep), "%s/a/b/c", dir);
    ck_assert_int_eq(atomic_file_make_dirs(deep, 0755), 0);
    ck_assert_int_eq(stat(deep, &st), 0);
    ck_assert(S_ISDIR(st.st_mode));
    ck_assert_int_eq(atomic_file_make_dirs(deep, 0755), 0); /* exists: fine */
    snprintf(path, sizeof(path), "%s/a/b/c/", dir);         /* trailing slash */
    ck_assert_int_eq(atomic_file_make_dirs(path, 0755), 0);

    snprintf(file, sizeof(file), "%s/x/y/state.json", dir);
    ck_assert_int_eq(atomic_file_make_parent_dirs(file, 0755), 0);
    ck_assert_int_eq(atomic_file_write(file, "{}", 2, 0644), 0);
    ck_assert_int_eq(atomic_file_make_parent_dirs("state.json", 0755), 0);

    /* A file where a directory should be is named, not papered over. */
    ck_assert_int_eq(atomic_file_write(target, "x", 1, 0644), 0);
    snprintf(path, sizeof(path), "%s/sub", target);
    ck_assert_int_eq(atomic_file_make_dirs(path, 0755), -ENOTDIR);

    unlink(file);
    const char *rm[] = {"x/y", "x", "a/b/c", "a/b", "a"};
    for (size_t i = 0; i < sizeof(rm) / sizeof(rm[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, rm[i]);
        ck_assert_int_eq(rmdir(path), 0);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("atomic_file");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_write_replace_and_mode);
    tcase_add_test(tc, test_failures_leave_old_file);
    tcase_add_test(tc, test_crash_at_every_stage);
    tcase_add_test(tc, test_random_sigkill);
    tcase_add_test(tc, test_remove_stale_spares_live_writers);
    tcase_add_test(tc, test_make_dirs);
    tcase_add_test(tc, test_sweep);
    tcase_add_test(tc, test_replace_without_fsync);
    suite_add_tcase(s, tc);
    return suite_main_run(s);
}
