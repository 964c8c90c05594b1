/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: the bytes HAProxy (or anyone reaching the agent port)
 * sends. Parses the request, answers it from a fixed state and checks the
 * reply invariants: one line, both words, the text within its limit, and
 * that HAProxy's reading of the reply gives back what was meant. Also
 * feeds the input to the reply parser (used for --fallback). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent_reply.h"
#include "agent_state.h"

static struct agent_state *state;

static void init_state(void)
{
    static const char json[] =
        "{\"version\":1,\"default\":{\"reason\":\"default\"},"
        "\"servers\":{\"be/s\":{\"admin\":\"drain\",\"weight\":50,\"reason\":\"r\\n#x\","
        "\"author\":\"a\"},\"be/t\":{\"admin\":\"maint\",\"health\":\"down\",\"maxconn\":3}},"
        "\"addresses\":{\"10.0.0.1\":{\"admin\":\"maint\"}},\"backends\":{\"be\":{\"weight\":0}}}";
    struct agent_state_error err;
    if (agent_state_parse(json, sizeof(json) - 1, &state, &err) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct agent_request req;
    struct agent_answer a, back;
    char reply[AGENT_REPLY_MAX], text[AGENT_TEXT_MAX + 1];

    if (!state)
        init_state();
    if (agent_request_parse((const char *)data, size, &req) == 0) {
        if (!req.key[0] && !req.address[0])
            abort();
        if (strlen(req.key) > AGENT_KEY_MAX || strlen(req.address) > AGENT_ADDRESS_MAX)
            abort();
    } else if (req.key[0] || req.address[0]) {
        abort(); /* garbage must leave nothing behind */
    }
    if (agent_state_lookup(state, &req, 0, &a) == AGENT_MATCH_NONE)
        abort(); /* the state has a default */
    int n = agent_reply_format(&a, reply, sizeof(reply));
    if (n <= 0 || (size_t)n >= sizeof(reply) || reply[n - 1] != '\n' ||
        memchr(reply, '\n', (size_t)n - 1) || memchr(reply, '\r', (size_t)n))
        abort();
    if (agent_reply_parse(reply, &back, text, sizeof(text)) != 0 || back.admin != a.admin ||
        back.health != a.health || back.weight != a.weight || back.maxconn != a.maxconn)
        abort();

    /* the same bytes as a reply line (the --fallback option) */
    char line[AGENT_REQUEST_MAX + 1];
    size_t len = size < AGENT_REQUEST_MAX ? size : AGENT_REQUEST_MAX;
    memcpy(line, data, len);
    line[len] = '\0';
    if (agent_reply_parse(line, &back, text, sizeof(text)) == 0) {
        if (strlen(text) > AGENT_TEXT_MAX)
            abort();
        n = agent_reply_format(&back, reply, sizeof(reply));
        if (n <= 0 || reply[n - 1] != '\n' || memchr(reply, '\n', (size_t)n - 1))
            abort();
    }
    /* the description builder on raw bytes */
    size_t half = len / 2;
    char reason[AGENT_REQUEST_MAX + 1];
    memcpy(reason, line, half);
    reason[half] = '\0';
    size_t tl = agent_text_build(reason, line + half, text, sizeof(text));
    if (tl > AGENT_TEXT_MAX || tl != strlen(text))
        abort();
    for (size_t i = 0; i < tl; i++) {
        if ((unsigned char)text[i] < 0x20 || text[i] == 0x7f)
            abort();
    }
    return 0;
}
