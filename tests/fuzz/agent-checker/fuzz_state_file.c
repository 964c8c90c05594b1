/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: the state file the watcher renders. Any input is
 * either rejected with a message or yields a table whose every key can be
 * looked up and answered with a well-formed reply. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_reply.h"
#include "agent_state.h"

static void answer_ok(const struct agent_answer *a)
{
    char reply[AGENT_REPLY_MAX];
    int n = agent_reply_format(a, reply, sizeof(reply));
    if (n <= 0 || reply[n - 1] != '\n' || memchr(reply, '\n', (size_t)n - 1))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct agent_state *st = NULL;
    struct agent_state_error err;
    struct agent_answer a;
    struct agent_request req;

    int rc = agent_state_parse((const char *)data, size, &st, &err);
    if (rc != 0) {
        if (st || !err.text[0] || err.line < 0 || err.column < 0)
            abort();
        return 0;
    }
    /* Look every server key of the file up again: at the earliest "now"
     * nothing has expired, so each must be found. */
    json_t *root = json_loadb((const char *)data, size, 0, NULL);
    json_t *servers = root ? json_object_get(root, "servers") : NULL;
    const char *key;
    json_t *val;
    json_object_foreach(servers, key, val)
    {
        memset(&req, 0, sizeof(req));
        snprintf(req.key, sizeof(req.key), "%s", key);
        enum agent_match m = agent_state_lookup(st, &req, INT64_MIN, &a);
        if (strlen(key) == strlen(req.key) && m != AGENT_MATCH_SERVER)
            abort();
        answer_ok(&a);
    }
    json_decref(root);
    memset(&req, 0, sizeof(req));
    strcpy(req.key, "be/s");
    strcpy(req.address, "[::1]:80");
    if (agent_state_lookup(st, &req, INT64_MAX / 2, &a) != AGENT_MATCH_NONE)
        answer_ok(&a);
    agent_state_free(st);
    return 0;
}
