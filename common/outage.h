/* SPDX-License-Identifier: Apache-2.0 */
/*
 * outage: the failing/answering state of one upstream a retry loop talks
 * to (a Consul watch, a Kubernetes list/watch), so that an outage is
 * logged once when it begins and once when it ends, not once per retry:
 * a Consul down for an hour would otherwise write a line every few
 * seconds per watch on every host. The retry loop reports each attempt;
 * the first failure of an outage is logged at the caller's level, the
 * following ones only at debug level (outage_fail_level), and the first
 * success after them logs how many attempts failed and for how long
 * (outage_ok). Every failure still counts in the caller's retry counter.
 *
 * Pure state, no allocation: embed a struct outage zeroed (answering).
 * Times are in milliseconds of any monotonic clock (uv_now).
 */
#ifndef DROVER_OUTAGE_H
#define DROVER_OUTAGE_H

#include <stdbool.h>
#include <stdint.h>

#include "log.h"

struct outage {
    bool failing;
    uint64_t failures; /* attempts failed since the outage began */
    uint64_t since_ms; /* when it began */
    uint64_t outages;  /* outages begun, for a counter */
};

/* An attempt failed at now_ms. Returns level for the first failure of an
 * outage (which it begins: outages++) and LOGL_DEBUG for the others. */
enum log_level outage_fail_level(struct outage *o, uint64_t now_ms, enum log_level level);

/* An attempt succeeded at now_ms. If it ends an outage, logs at info
 * "<what>: answering again after N failed attempt(s) in X.Ys" and returns
 * true; otherwise does nothing and returns false. */
bool outage_ok(struct outage *o, uint64_t now_ms, const char *what);

#endif
