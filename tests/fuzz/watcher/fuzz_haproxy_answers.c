/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Parsers of HAProxy's CLI answers (show servers state, show proc, command
 * answers, prompt framing, show stat error counters) and of a worker's
 * /proc/<pid>/stat (common/proc_stat.h) on arbitrary bytes, then
 * slots_adopt/slots_diff on whatever the state parser accepted. The first byte picks the parser so
 * one corpus serves all of them.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "haproxy_answers.h"
#include "proc_stat.h"
#include "slots.h"

/* every admin state by the server name's length */
static enum haproxy_admin fuzz_admin(void *arg, const char *backend, const char *server)
{
    (void)arg;
    (void)backend;
    return (enum haproxy_admin)((int)(strlen(server) % 4) - 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    if (size < 1)
        return 0;
    uint8_t sel = data[0];
    const char *text = (const char *)data + 1;
    size_t len = size - 1;

    if (sel % 3 == 0) {
        struct slot_live *live = NULL;
        size_t n = 0;
        {
            struct slot_server d0 = {.key = "a", .address = "127.0.0.1", .port = 80, .weight = 10};
            struct slot_entry e[2] = {{true, d0}, {false, {0}}};
            struct slot_assignment pa = {2, e};
            struct haproxy_placement pl = {"be", &pa};
            char *filtered;
            size_t dropped;
            if (haproxy_state_filter(text, len, &pl, 1, &filtered, &dropped) == 0)
                free(filtered);
            if (haproxy_state_set_admin(text, len, fuzz_admin, NULL, &filtered, &dropped) == 0)
                free(filtered);
        }
        if (haproxy_parse_servers_state(text, len, (sel & 4) ? "be" : NULL, &live, &n, err,
                                        sizeof(err)) == 0) {
            struct slot_server d[2] = {
                {.key = "a", .address = "127.0.0.1", .port = 80, .weight = 10},
                {.key = "b", .address = "::1", .port = 443, .weight = 1}};
            struct slot_assignment prev, a;
            struct slot_cmds c = {0};
            size_t need;
            slot_assignment_init(&prev);
            slot_assignment_init(&a);
            if (slots_adopt(live, n, d, 2, 4, &prev) == 0 &&
                slots_assign(&prev, d, 2, 4, &a, &need) == 0)
                slots_diff("be", &a, (sel & 8) ? &prev : NULL, live, n, &c, err, sizeof(err));
            slot_cmds_free(&c);
            slot_assignment_free(&a);
            slot_assignment_free(&prev);
            free(live);
        }
    } else if (sel % 3 == 1) {
        struct haproxy_proc_list l;
        struct haproxy_error_counters c;
        if (haproxy_parse_show_proc(text, len, &l, err, sizeof(err)) == 0)
            haproxy_proc_list_free(&l);
        haproxy_parse_stat_errors(text, len, &c, err, sizeof(err));
        char state;
        int ppid;
        proc_stat_parse(text, len, &state, &ppid);
    } else {
        char *answer = strndup(text, len), *stream = malloc(len + 1), *answers[8];
        if (answer) {
            haproxy_runtime_check_answer("set server be/slot1 addr 127.0.0.1 port 80", answer, err,
                                         sizeof(err));
            haproxy_runtime_check_answer("show servers state be", answer, err, sizeof(err));
            free(answer);
        }
        if (stream) {
            /* the bytes as read from the stats socket (may hold NULs) */
            memcpy(stream, text, len);
            stream[len] = 0;
            size_t got = haproxy_split_prompt_answers(stream, len, answers, 8);
            for (size_t i = 0; i < got; i++)
                if (answers[i] < stream || answers[i] + strlen(answers[i]) > stream + len)
                    abort();
            free(stream);
        }
    }
    return 0;
}
