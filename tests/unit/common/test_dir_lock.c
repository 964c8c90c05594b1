/* SPDX-License-Identifier: Apache-2.0 */
/* dir_lock: one holder at a time, the refused one told the holder's pid;
 * released by close or by the holder's exit. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dir_lock.h"
#include "suite_main.h"

static char dir[64];

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/drover-lock-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* In a child: try the lock; exit 0 taken, 1 refused naming want_holder
 * in both the pid and the message, 2 otherwise. */
static int try_in_child(long want_holder)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        char err[512] = "", who[32];
        long holder = -1;
        int fd, rc = dir_lock_take(dir, ".lock", &fd, &holder, err, sizeof(err));
        snprintf(who, sizeof(who), "pid %ld", want_holder);
        if (rc == 0)
            _exit(0);
        _exit(rc == -EWOULDBLOCK && holder == want_holder && strstr(err, dir) && strstr(err, who)
                  ? 1
                  : 2);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    return WEXITSTATUS(status);
}

START_TEST(test_one_holder)
{
    char err[512] = "";
    long holder = -1;
    int fd;
    ck_assert_int_eq(dir_lock_take(dir, ".lock", &fd, &holder, err, sizeof(err)), 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(try_in_child((long)getpid()), 1);
    /* a second open in the same process is refused too: one owner */
    int fd2;
    ck_assert_int_eq(dir_lock_take(dir, ".lock", &fd2, &holder, err, sizeof(err)), -EWOULDBLOCK);
    ck_assert_int_eq(holder, (long)getpid());
    ck_assert_int_eq(fd2, -1);
    dir_lock_release(fd);
    ck_assert_int_eq(try_in_child(0), 0); /* released: taken (and dropped at its exit) */
    ck_assert_int_eq(dir_lock_take(dir, ".lock", &fd, &holder, err, sizeof(err)), 0);
    dir_lock_release(fd);
    /* a directory that does not exist is named */
    ck_assert_int_eq(dir_lock_take("/nonexistent-drover", ".lock", &fd, &holder, err, sizeof(err)),
                     -ENOENT);
    ck_assert_msg(strstr(err, "/nonexistent-drover/.lock"), "%s", err);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("dir_lock");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_one_holder);
    suite_add_tcase(s, tc);
    return suite_main_run(s);
}
