/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz the director's JSON config parser: no crash, no leak, and anything
 * accepted respects the limits the BPF maps rely on. */
#include <stdint.h>
#include <stdlib.h>

#include "director_config.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct director_config c;
    char err[256];

    log_set_level(LOGL_ERROR);
    if (director_config_parse((const char *)data, size, "fuzz", &c, err, sizeof(err)) != 0)
        return 0;
    if (c.n_vips > DROVER_MAX_VIPS || c.n_proxies > DROVER_MAX_PROXIES || c.gue_port == 0 ||
        (c.hash_key[0] == 0 && c.hash_key[1] == 0))
        abort();
    for (size_t i = 0; i < c.n_vips; i++)
        if ((c.vips[i].family != DROVER_AF_INET && c.vips[i].family != DROVER_AF_INET6) ||
            c.vips[i].port == 0)
            abort();
    for (size_t i = 0; i < c.n_proxies; i++)
        if (c.proxies[i].state > DROVER_PROXY_DRAINING)
            abort();
    director_config_free(&c);
    return 0;
}
