/* SPDX-License-Identifier: Apache-2.0 */
/* Placeholder so the API links; the real implementation follows. */
#include "config.h"

#include <errno.h>

int config_parse(const struct config_program *prog, int argc, char **argv, int *first_arg,
                 char *err, size_t errlen)
{
    if (first_arg)
        *first_arg = argc;
    if (errlen)
        snprintf(err, errlen, "config: not implemented yet");
    return -ENOSYS;
}

void config_print_help(const struct config_program *prog, FILE *out)
{
}

void config_free(const struct config_program *prog)
{
}

void config_env_name(const char *option, char *buf, size_t buflen)
{
    if (buflen)
        buf[0] = '\0';
}

int config_parse_duration_ms(const char *text, int64_t *out_ms)
{
    return -ENOSYS;
}

void config_format_duration(int64_t ms, char *buf, size_t buflen)
{
    snprintf(buf, buflen, "%lldms", (long long)ms);
}

int config_parse_size(const char *text, uint64_t *out)
{
    return -ENOSYS;
}

int config_parse_bool(const char *text, bool *out)
{
    return -ENOSYS;
}
