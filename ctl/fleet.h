/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fleet: the fleet view of `droverctl status`: every watcher's status
 * entry (R status/<host>/<role>, kv_status.h) compared with the live
 * service definitions (R haproxy/<cluster>/services/<name>).
 *
 * Per HAProxy service a host is "current" (its applied definition hashes
 * like the live value, kv_hash64_hex of the raw bytes), "behind" (another
 * definition, or a live service it does not report), "refusing" (its last
 * render, `haproxy -c` or reload of it failed, or the live value is one
 * the watcher's own decoder refuses, so it keeps the previous one) or "removed" (it still
 * reports a service no longer defined). A host is "ok", or the worst of
 * refusing > behind > guarded (a removal guard holds a change back).
 * Directors of one cluster disagree when their table checksums differ.
 * A canary host of the staged change (R haproxy/<cluster>/canary,
 * kv_deploy.h) that reports that version is compared with the staged
 * values for the staged services instead: "canary" when it runs them
 * (counts as ok), else "behind".
 * Anything but "ok" everywhere, or a disagreement, makes the fleet not ok.
 */
#ifndef DROVER_CTL_FLEET_H
#define DROVER_CTL_FLEET_H

#include <jansson.h>
#include <stdbool.h>

#include "consul.h"

/* status: the entries under R status/; defs: the entries under R haproxy/.
 * *out (new reference): {"ok", "hosts": [...], "directors_disagree": [...],
 * "bad": [...]} (docs/droverctl.md). *text: the human view (malloc'd).
 * 0 or -ENOMEM. */
int ctl_fleet_view(const char *root, const struct consul_kv_list *status,
                   const struct consul_kv_list *defs, json_t **out, char **text);

#endif
