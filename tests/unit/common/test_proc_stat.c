/* SPDX-License-Identifier: Apache-2.0 */
/* proc_stat: the /proc/<pid>/stat line as the kernel writes it, a command
 * name with spaces and ')', malformed lines; and a live read of a running,
 * a stopped and a vanished process. */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proc_stat.h"
#include "suite_main.h"

START_TEST(test_parse)
{
    char state = 0;
    int ppid = 0;
    /* a worker stopped by SIGSTOP, as the kernel writes it (trimmed) */
    const char *stopped = "1038 (haproxy) T 32288 32288 32288 0 -1 4194624 0 0\n";
    ck_assert_int_eq(proc_stat_parse(stopped, strlen(stopped), &state, &ppid), 0);
    ck_assert_int_eq(state, 'T');
    ck_assert_int_eq(ppid, 32288);
    /* the command may hold spaces and ')': the fields follow the last ')' */
    const char *odd = "7 (a) b) (c) S 1 7 7\n";
    ck_assert_int_eq(proc_stat_parse(odd, strlen(odd), &state, &ppid), 0);
    ck_assert_int_eq(state, 'S');
    ck_assert_int_eq(ppid, 1);
    /* the text may end right after the parent pid */
    ck_assert_int_eq(proc_stat_parse("9 (x) t 42", 10, &state, &ppid), 0);
    ck_assert_int_eq(state, 't');
    ck_assert_int_eq(ppid, 42);
    const char *bad[] = {
        "",
        "1038 haproxy T 1 2",             /* no command */
        "1038 (haproxy)",                 /* nothing after it */
        "1038 (haproxy) T",               /* no parent pid */
        "1038 (haproxy)T 1 2",            /* no space */
        "1038 (haproxy) 7 1 2",           /* not a state letter */
        "1038 (haproxy) TT 1 2",          /* two letters */
        "1038 (haproxy) T x 2",           /* parent pid not a number */
        "1038 (haproxy) T 12x 2",         /* trailing garbage */
        "1038 (haproxy) T 99999999999 2", /* beyond a pid */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(proc_stat_parse(bad[i], strlen(bad[i]), &state, &ppid) == -EINVAL,
                      "case %zu accepted", i);
}
END_TEST

START_TEST(test_read_live)
{
    char state = 0;
    int ppid = 0;
    /* this process reads its own line while it runs */
    ck_assert_int_eq(proc_stat_read(getpid(), &state, &ppid), 0);
    ck_assert_int_eq(state, 'R');
    ck_assert_int_eq(ppid, getppid());

    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        for (;;)
            pause();
    }
    ck_assert_int_eq(kill(child, SIGSTOP), 0);
    int status;
    ck_assert_int_eq(waitpid(child, &status, WUNTRACED), child); /* stopped now */
    ck_assert(WIFSTOPPED(status));
    ck_assert_int_eq(proc_stat_read(child, &state, &ppid), 0);
    ck_assert_int_eq(state, 'T');
    ck_assert_int_eq(ppid, getpid());
    kill(child, SIGKILL);
    ck_assert_int_eq(waitpid(child, &status, 0), child);
    /* reaped: its entry is gone */
    ck_assert_int_eq(proc_stat_read(child, &state, &ppid), -ENOENT);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("proc_stat");
    TCase *tc = tcase_create("proc_stat");
    tcase_add_test(tc, test_parse);
    tcase_add_test(tc, test_read_live);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return suite_main_run(suite());
}
