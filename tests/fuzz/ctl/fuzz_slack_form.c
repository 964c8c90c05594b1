/* SPDX-License-Identifier: Apache-2.0 */
/* A Slack request body as droverctl serve sees it: form decoding, then the
 * `text` field through word splitting and command parsing (Slack source),
 * plus the signature check over the raw bytes. Nothing here may crash,
 * leak or read out of bounds, whatever the bytes. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ctl_args.h"
#include "slack.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct slack_form form;
    char err[256];
    const char *body = (const char *)data;

    if (slack_form_parse(body, size, &form, err, sizeof(err)) == 0) {
        const char *text = slack_form_get(&form, "text");
        if (text) {
            char **words = NULL;
            int n = 0;
            if (ctl_split_words(text, strlen(text), &words, &n, err, sizeof(err)) == 0) {
                struct ctl_command cmd;
                struct ctl_limits lim = {.max_ttl_ms = 7LL * 86400 * 1000};
                ctl_command_parse(n, words, CTL_SOURCE_SLACK, &lim, &cmd, err, sizeof(err));
                ctl_command_free(&cmd);
                ctl_words_free(words);
            }
        }
    }
    slack_form_free(&form);

    /* the whole input also as raw command text (the CLI path) */
    char **words = NULL;
    int n = 0;
    if (ctl_split_words(body, size, &words, &n, err, sizeof(err)) == 0) {
        struct ctl_command cmd;
        ctl_command_parse(n, words, CTL_SOURCE_CLI, NULL, &cmd, err, sizeof(err));
        ctl_command_free(&cmd);
        ctl_words_free(words);
    }
    slack_verify("secret", 6, "1700000000", "v0=00", body, size, 1700000000, err, sizeof(err));
    return 0;
}
