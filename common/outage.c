/* SPDX-License-Identifier: Apache-2.0 */
#include "outage.h"

#include <inttypes.h>

enum log_level outage_fail_level(struct outage *o, uint64_t now_ms, enum log_level level)
{
    o->failures++;
    if (o->failing)
        return LOGL_DEBUG;
    o->failing = true;
    o->since_ms = now_ms;
    o->outages++;
    return level;
}

bool outage_ok(struct outage *o, uint64_t now_ms, const char *what)
{
    if (!o->failing)
        return false;
    uint64_t ms = now_ms >= o->since_ms ? now_ms - o->since_ms : 0;
    log_info("%s: answering again after %" PRIu64 " failed attempt%s in %.1fs", what, o->failures,
             o->failures == 1 ? "" : "s", (double)ms / 1000.0);
    o->failing = false;
    o->failures = 0;
    return true;
}
