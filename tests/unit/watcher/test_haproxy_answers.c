/* SPDX-License-Identifier: Apache-2.0 */
/* The pure parsers of haproxy_answers on answers captured from HAProxy
 * 2.6.12: prompt framing, answer verdicts, show servers state, the state
 * filter, show proc. The socket side is tests/unit/watcher/
 * test_haproxy_runtime.c and, against a real HAProxy,
 * tests/integration/watcher-runtime. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "haproxy_answers.h"
#include "../common/suite_main.h"

static const char state_26[] =
    "1\n"
    "# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight "
    "srv_iweight srv_time_since_last_change srv_check_status srv_check_result "
    "srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id "
    "srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr "
    "srv_agent_port\n"
    "3 be 1 slot1 127.0.0.1 2 4 5 10 48 1 0 4 8 22 0 0 - 8080 - 0 0 - 127.0.0.1 40123\n"
    "3 be 2 slot2 0.0.0.0 0 5 10 10 3 1 0 0 8 18 0 0 - +0 - 0 0 - 127.0.0.1 35231\n"
    "4 other 1 web1 ::1 2 0 1 1 3 1 0 0 8 22 0 0 - 443 - 0 0 - 127.0.0.1 35231\n"
    "\n";

START_TEST(test_servers_state_parse)
{
    struct slot_live *l;
    size_t n;
    char err[256];
    ck_assert_int_eq(
        haproxy_parse_servers_state(state_26, strlen(state_26), "be", &l, &n, err, sizeof(err)), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(l[0].name, "slot1");
    ck_assert_str_eq(l[0].address, "127.0.0.1");
    ck_assert_uint_eq(l[0].port, 8080);
    ck_assert_int_eq(l[0].op_state, 2);
    ck_assert_uint_eq(l[0].admin, SLOTS_ADMF_CMAINT);
    ck_assert_int_eq(l[0].uweight, 5);
    ck_assert_int_eq(l[0].iweight, 10);
    ck_assert_uint_eq(l[0].agent_state & SLOTS_CHK_ENABLED, SLOTS_CHK_ENABLED);
    ck_assert_uint_eq(l[1].port, 0);
    ck_assert_uint_eq(l[1].admin, SLOTS_ADMF_FMAINT | SLOTS_ADMF_CMAINT);
    ck_assert_uint_eq(l[1].agent_state & SLOTS_CHK_ENABLED, 0);
    free(l);
    ck_assert_int_eq(
        haproxy_parse_servers_state(state_26, strlen(state_26), NULL, &l, &n, err, sizeof(err)), 0);
    ck_assert_uint_eq(n, 3);
    ck_assert_str_eq(l[2].address, "::1");
    free(l);
}
END_TEST

START_TEST(test_servers_state_columns_by_name)
{
    /* columns reordered and one added: still found by name */
    const char *t = "1\n# srv_port be_name new_col srv_name srv_addr srv_op_state "
                    "srv_admin_state srv_uweight srv_iweight srv_agent_state\n"
                    "80 be x slot3 10.0.0.3 2 0 7 7 22\n";
    struct slot_live *l;
    size_t n;
    char err[256];
    ck_assert_int_eq(haproxy_parse_servers_state(t, strlen(t), "be", &l, &n, err, sizeof(err)), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(l[0].name, "slot3");
    ck_assert_uint_eq(l[0].port, 80);
    ck_assert_int_eq(l[0].uweight, 7);
    free(l);
    /* an empty backend is fine */
    const char *empty = "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state "
                        "srv_admin_state srv_uweight srv_iweight srv_agent_state srv_port\n";
    ck_assert_int_eq(
        haproxy_parse_servers_state(empty, strlen(empty), "be", &l, &n, err, sizeof(err)), 0);
    ck_assert_uint_eq(n, 0);
    free(l);
}
END_TEST

START_TEST(test_servers_state_bad)
{
    struct slot_live *l;
    size_t n;
    char err[256];
    const char *bad[] = {
        "",
        "2\n# be_name\n",
        "1\n3 be 1 slot1\n",                 /* no header */
        "1\n# be_name srv_name\nbe slot1\n", /* columns missing */
        "1\n# be_name srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight "
        "srv_agent_state srv_port\nbe slot1 1.2.3.4 2 0 999 1 22 80\n", /* weight */
        "1\n# be_name srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight "
        "srv_agent_state srv_port\nbe slot1 1.2.3.4 2 0 1 1 22 70000\n", /* port */
        "1\n# be_name srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight "
        "srv_agent_state srv_port\nbe slot1 1.2.3.4 2 0 1\n", /* short line */
        "Can't find backend.\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = 0;
        ck_assert_msg(haproxy_parse_servers_state(bad[i], strlen(bad[i]), NULL, &l, &n, err,
                                                  sizeof(err)) == -EINVAL,
                      "case %zu accepted", i);
        ck_assert_msg(strstr(err, "show servers state") != NULL, "case %zu: %s", i, err);
    }
}
END_TEST

START_TEST(test_state_filter)
{
    /* be: slot1 serves 127.0.0.1:8080 (state above), slot2 is free in
     * maint; "other" is not placed */
    struct slot_assignment a;
    slot_assignment_init(&a);
    a.nslots = 3;
    a.slots = calloc(3, sizeof(*a.slots));
    a.slots[0].used = true;
    a.slots[0].srv = (struct slot_server){strdup("k1"), strdup("127.0.0.1"), 8080, 5, false};
    struct haproxy_placement p = {"be", &a};
    char *out;
    size_t dropped;
    ck_assert_int_eq(haproxy_state_filter(state_26, strlen(state_26), &p, 1, &out, &dropped), 0);
    ck_assert_uint_eq(dropped, 0); /* same endpoint; free slot in maint */
    ck_assert_str_eq(out, state_26);
    free(out);
    /* slot1 placed elsewhere, slot2 occupied: both lines go */
    a.slots[0].srv.port = 9090;
    a.slots[1].used = true;
    a.slots[1].srv = (struct slot_server){strdup("k2"), strdup("127.0.0.2"), 80, 1, false};
    ck_assert_int_eq(haproxy_state_filter(state_26, strlen(state_26), &p, 1, &out, &dropped), 0);
    ck_assert_uint_eq(dropped, 2);
    ck_assert_ptr_null(strstr(out, " slot1 "));
    ck_assert_ptr_null(strstr(out, " slot2 "));
    ck_assert_ptr_nonnull(strstr(out, " web1 "));
    ck_assert(strncmp(out, "1\n# be_id", 9) == 0);
    struct slot_live *l;
    size_t n;
    char err[256];
    ck_assert_int_eq(haproxy_parse_servers_state(out, strlen(out), NULL, &l, &n, err, sizeof(err)),
                     0);
    ck_assert_uint_eq(n, 1);
    free(l);
    free(out);
    /* a slot freed by the placement while it still serves: dropped */
    slot_assignment_free(&a);
    slot_assignment_init(&a);
    a.nslots = 2;
    a.slots = calloc(2, sizeof(*a.slots));
    ck_assert_int_eq(haproxy_state_filter(state_26, strlen(state_26), &p, 1, &out, &dropped), 0);
    ck_assert_uint_eq(dropped, 1);
    ck_assert_ptr_null(strstr(out, " slot1 "));
    ck_assert_ptr_nonnull(strstr(out, " slot2 "));
    free(out);
    ck_assert_int_eq(haproxy_state_filter("No such backend.\n", 17, &p, 1, &out, &dropped),
                     -EINVAL);
    slot_assignment_free(&a);
}
END_TEST

/* slot1 drained, slot2 ready, everything else left alone */
static enum haproxy_admin admin_of(void *arg, const char *backend, const char *server)
{
    (*(int *)arg)++;
    if (strcmp(backend, "be") != 0)
        return HAPROXY_ADMIN_KEEP;
    if (strcmp(server, "slot1") == 0)
        return HAPROXY_ADMIN_DRAIN;
    return strcmp(server, "slot2") == 0 ? HAPROXY_ADMIN_READY : HAPROXY_ADMIN_MAINT;
}

START_TEST(test_state_set_admin)
{
    char *out;
    size_t changed;
    int calls = 0;
    ck_assert_int_eq(
        haproxy_state_set_admin(state_26, strlen(state_26), admin_of, &calls, &out, &changed), 0);
    ck_assert_int_eq(calls, 3);
    ck_assert_uint_eq(changed, 2);
    /* slot1: config maint (4) kept, forced drain (8) added; slot2: forced
     * maint (1) lifted, config maint kept; web1 untouched, byte for byte */
    ck_assert_ptr_nonnull(strstr(out, "\n3 be 1 slot1 127.0.0.1 2 12 5 10 48 "));
    ck_assert_ptr_nonnull(strstr(out, "\n3 be 2 slot2 0.0.0.0 0 4 10 10 3 "));
    ck_assert_ptr_nonnull(strstr(out, "\n4 other 1 web1 ::1 2 0 1 1 3 1 0 0 8 22 0 0 - 443 -"));
    ck_assert(strncmp(out, state_26, strstr(state_26, "\n3 be") - state_26) == 0);
    struct slot_live *l;
    size_t n;
    char err[256];
    ck_assert_int_eq(haproxy_parse_servers_state(out, strlen(out), NULL, &l, &n, err, sizeof(err)),
                     0);
    ck_assert_uint_eq(n, 3);
    ck_assert_uint_eq(l[0].admin, 12);
    ck_assert_uint_eq(l[1].admin, 4);
    free(l);
    /* nothing to change: the same text */
    char *again;
    ck_assert_int_eq(haproxy_state_set_admin(out, strlen(out), admin_of, &calls, &again, &changed),
                     0);
    ck_assert_uint_eq(changed, 0);
    ck_assert_str_eq(again, out);
    free(again);
    free(out);
    ck_assert_int_eq(
        haproxy_state_set_admin("Unknown command\n", 16, admin_of, &calls, &out, &changed),
        -EINVAL);
}
END_TEST

static const char proc_26[] =
    "#<PID>          <type>          <reloads>       <uptime>        <version>      \n"
    "32288           master          2 [failed: 1]   0d00h02m01s     2.6.12-1+deb12u4\n"
    "# workers\n"
    "1038            worker          0               0d00h01m34s     2.6.12-1+deb12u4\n"
    "977             worker          1               0d00h03m00s     2.6.12-1+deb12u4\n"
    "# programs\n"
    "2000            sidecar         0               0d00h03m00s     -\n"
    "\n";

START_TEST(test_show_proc_parse)
{
    struct haproxy_proc_list l;
    char err[256];
    ck_assert_int_eq(haproxy_parse_show_proc(proc_26, strlen(proc_26), &l, err, sizeof(err)), 0);
    ck_assert_int_eq(l.master.pid, 32288);
    ck_assert_int_eq(l.master.reloads, 2);
    ck_assert_int_eq(l.master.failed_reloads, 1);
    ck_assert_str_eq(l.master.uptime, "0d00h02m01s");
    ck_assert_str_eq(l.master.version, "2.6.12-1+deb12u4");
    ck_assert_uint_eq(l.n_workers, 2);
    ck_assert_int_eq(l.workers[0].pid, 1038);
    ck_assert_int_eq(l.workers[0].reloads, 0);
    ck_assert_int_eq(l.workers[1].pid, 977);
    ck_assert_int_eq(l.workers[1].reloads, 1);
    ck_assert_int_eq(l.workers[1].relative_pid, 0);
    haproxy_proc_list_free(&l);
}
END_TEST

START_TEST(test_show_proc_relative_pid_and_errors)
{
    /* older layout with a relative PID column */
    const char *t = "#<PID>          <type>          <relative PID>  <reloads>       <uptime>\n"
                    "100             master          0               3               0d00h00m09s\n"
                    "# workers\n"
                    "101             worker          1               0               0d00h00m01s\n";
    struct haproxy_proc_list l;
    char err[256];
    ck_assert_int_eq(haproxy_parse_show_proc(t, strlen(t), &l, err, sizeof(err)), 0);
    ck_assert_int_eq(l.master.reloads, 3);
    ck_assert_uint_eq(l.n_workers, 1);
    ck_assert_int_eq(l.workers[0].relative_pid, 1);
    haproxy_proc_list_free(&l);
    const char *bad[] = {
        "",
        "# workers\n101 worker 0 0d\n",
        "#<PID> <type> <reloads>\nabc master 0\n",
        "#<PID> <type> <reloads>\n100 master 1 [failed: x]\n",
        "#<PID> <type> <reloads>\n# workers\n101 worker 0\n", /* no master */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(haproxy_parse_show_proc(bad[i], strlen(bad[i]), &l, err, sizeof(err)) ==
                          -EINVAL,
                      "case %zu accepted", i);
}
END_TEST

START_TEST(test_check_answer)
{
    char err[256];
    ck_assert_int_eq(
        haproxy_runtime_check_answer("set server be/slot1 weight 3", "", err, sizeof(err)), 0);
    ck_assert_int_eq(
        haproxy_runtime_check_answer(
            "set server be/slot1 addr 127.0.0.1 port 8080",
            "IP changed from '0.0.0.0' to '127.0.0.1', port changed from '+0' to '8080' by "
            "'stats socket command'\n",
            err, sizeof(err)),
        0);
    ck_assert_int_eq(haproxy_runtime_check_answer(
                         "set server be/slot1 addr 127.0.0.1 port 8080",
                         "no need to change the addr, no need to change the port by 'stats "
                         "socket command'\n",
                         err, sizeof(err)),
                     0);
    ck_assert_int_eq(haproxy_runtime_check_answer("set server be/slot1 addr 1.2.3 port 1",
                                                  "Invalid addr '1.2.3' by 'stats socket "
                                                  "command'\n",
                                                  err, sizeof(err)),
                     -EINVAL);
    ck_assert_int_eq(haproxy_runtime_check_answer("set server be/nope weight 3",
                                                  "No such server.\n", err, sizeof(err)),
                     -EINVAL);
    ck_assert_str_eq(err, "haproxy: `set server be/nope weight 3`: No such server.");
    ck_assert_int_eq(haproxy_runtime_check_answer("foo bar",
                                                  "Unknown command, but maybe one of the "
                                                  "following ones is a better match:\n  clear "
                                                  "acl\n",
                                                  err, sizeof(err)),
                     -EINVAL);
    ck_assert_str_eq(err, "haproxy: `foo bar`: Unknown command, but maybe one of the following "
                          "ones is a better match:");
    /* a weight change that says anything is an error */
    ck_assert_int_eq(haproxy_runtime_check_answer("set server be/slot1 weight 300",
                                                  "Absolute weight can only be between 0 and "
                                                  "256 inclusive.\n",
                                                  err, sizeof(err)),
                     -EINVAL);
    /* an addr-like answer to another command is not a success */
    ck_assert_int_eq(haproxy_runtime_check_answer("set server be/slot1 weight 3",
                                                  "IP changed from x\n", err, sizeof(err)),
                     -EINVAL);
    ck_assert_int_eq(haproxy_runtime_check_answer("show servers state nob", "Can't find backend.\n",
                                                  err, sizeof(err)),
                     -EINVAL);
    ck_assert_int_eq(haproxy_runtime_check_answer("show servers state", state_26, err, sizeof(err)),
                     0);
}
END_TEST

START_TEST(test_split_prompt_answers)
{
    /* "prompt" answers empty, then one answer with a blank-line end, then
     * an empty answer, then a cut-short answer */
    char buf[] = "\n> 1\n# be_id be_name\n\n> \n> No such server.\n";
    char *a[4];
    ck_assert_uint_eq(haproxy_split_prompt_answers(buf, strlen(buf), a, 4), 3);
    ck_assert_str_eq(a[0], "");
    ck_assert_str_eq(a[1], "1\n# be_id be_name\n");
    ck_assert_str_eq(a[2], "");
    /* asking for fewer stops there */
    char buf2[] = "\n> x\n\n> y\n\n> ";
    ck_assert_uint_eq(haproxy_split_prompt_answers(buf2, strlen(buf2), a, 2), 2);
    ck_assert_str_eq(a[1], "x\n");
    /* nothing complete */
    char buf3[] = "partial answer";
    ck_assert_uint_eq(haproxy_split_prompt_answers(buf3, strlen(buf3), a, 1), 0);
    ck_assert_uint_eq(haproxy_split_prompt_answers(buf3, 0, a, 1), 0);
}
END_TEST

START_TEST(test_servers_state_answer)
{
    struct slot_live *l = NULL;
    size_t n = 0;
    char err[256];
    ck_assert_int_eq(haproxy_parse_servers_state_answer("show servers state be", state_26, "be", &l,
                                                        &n, err, sizeof(err)),
                     0);
    ck_assert_uint_eq(n, 2);
    free(l);
    ck_assert_int_eq(haproxy_parse_servers_state_answer("show servers state nob",
                                                        "Can't find backend.\n", "nob", &l, &n, err,
                                                        sizeof(err)),
                     -ENOENT);
    ck_assert_str_eq(err,
                     "haproxy: `show servers state nob`: no backend nob in the running config");
    ck_assert_int_eq(haproxy_parse_servers_state_answer("show servers state be",
                                                        "Permission denied\n", "be", &l, &n, err,
                                                        sizeof(err)),
                     -EINVAL);
    ck_assert_int_eq(haproxy_parse_servers_state_answer("show servers state be", "2\n", "be", &l,
                                                        &n, err, sizeof(err)),
                     -EINVAL);
}
END_TEST

/* show stat: counters summed by row type, columns by header name */
START_TEST(test_stat_errors)
{
    struct haproxy_error_counters c;
    char err[256];
    /* two HTTP frontends, a TCP frontend (HTTP columns empty), a backend
     * and a server (server rows are in the backend's sums already) */
    const char *ok = "# pxname,svname,req_tot,ereq,econ,eresp,hrsp_5xx,\n"
                     "fe_web,FRONTEND,100,2,,,7,\n"
                     "fe_api,FRONTEND,50,1,,,3,\n"
                     "fe_tcp,FRONTEND,,0,,,,\n"
                     "be_web,slot1,,,4,5,6,\n"
                     "be_web,BACKEND,,,4,5,6,\n";
    ck_assert_int_eq(haproxy_parse_stat_errors(ok, strlen(ok), &c, err, sizeof(err)), 0);
    ck_assert_uint_eq(c.requests, 150);
    ck_assert_uint_eq(c.req_errors, 3);
    ck_assert_uint_eq(c.http_5xx, 10);
    ck_assert_uint_eq(c.conn_errors, 4);
    ck_assert_uint_eq(c.resp_errors, 5);
    /* columns in another order, extra ones, a short row */
    const char *moved = "# x,hrsp_5xx,svname,eresp,econ,ereq,req_tot,pxname\n"
                        "9,1,FRONTEND,,,2,3,fe\n"
                        "9,,BACKEND,4,5\n";
    ck_assert_int_eq(haproxy_parse_stat_errors(moved, strlen(moved), &c, err, sizeof(err)), 0);
    ck_assert_uint_eq(c.http_5xx, 1);
    ck_assert_uint_eq(c.req_errors, 2);
    ck_assert_uint_eq(c.requests, 3);
    ck_assert_uint_eq(c.resp_errors, 4);
    ck_assert_uint_eq(c.conn_errors, 5);
    static const struct {
        const char *text, *want;
    } bad[] = {
        {"", "no header"},
        {"Unknown command\n", "before the header"},
        {"# pxname,svname,req_tot,ereq,econ,eresp\n", "no column hrsp_5xx"},
        {"# svname,req_tot,ereq,econ,eresp,hrsp_5xx\nFRONTEND,x1,0,,,0\n", "req_tot \"x1\""},
        {"# svname,req_tot,ereq,econ,eresp,hrsp_5xx\nBACKEND,,,-1,,\n", "econ \"-1\""},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        ck_assert_int_eq(
            haproxy_parse_stat_errors(bad[i].text, strlen(bad[i].text), &c, err, sizeof(err)),
            -EINVAL);
        ck_assert_msg(strstr(err, bad[i].want), "case %zu: %s", i, err);
        ck_assert_uint_eq(c.requests + c.conn_errors, 0);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("haproxy_answers");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_split_prompt_answers);
    tcase_add_test(tc, test_servers_state_parse);
    tcase_add_test(tc, test_servers_state_columns_by_name);
    tcase_add_test(tc, test_servers_state_bad);
    tcase_add_test(tc, test_servers_state_answer);
    tcase_add_test(tc, test_state_filter);
    tcase_add_test(tc, test_state_set_admin);
    tcase_add_test(tc, test_show_proc_parse);
    tcase_add_test(tc, test_show_proc_relative_pid_and_errors);
    tcase_add_test(tc, test_check_answer);
    tcase_add_test(tc, test_stat_errors);
    suite_add_tcase(s, tc);
    return suite_main_run(s);
}
