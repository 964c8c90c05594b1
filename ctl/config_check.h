/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config_check: `droverctl config check FILE...`, offline validation of
 * operator definitions with the watcher's own code, no Consul needed (a
 * CI step). A FILE is a JSON object whose members are KV keys below the
 * root and their values:
 *
 *   {"haproxy/edge/services/web": {...}, "director/dc1/vips/web": {...}}
 *
 * Keys must be operator records of docs/kv-schema.md (haproxy services and
 * force-removal entries, director proxies, vips, config, force); values are
 * decoded by the schema library's decoders, exactly as the watchers do.
 * Every HAProxy service is then built into a snapshot (no kube data: kube
 * backends render with free slots), rendered with the watcher's templates
 * and, when HAProxy is installed, checked with `haproxy -c`.
 */
#ifndef DROVER_CTL_CONFIG_CHECK_H
#define DROVER_CTL_CONFIG_CHECK_H

#include <stdbool.h>

#include "ctl_kv.h"

struct ctl_check_opts {
    const char *root;         /* ends in '/' */
    const char *template_dir; /* the watcher's templates */
    const char *haproxy_bin;  /* "" or not found: `haproxy -c` skipped (said so) */
    /* config diff: the host whose rendered diff is shown (NULL: every
     * group of hosts), the kube clusters read (NULL/0: all in KV) */
    const char *host;
    char *const *kube_clusters;
    size_t n_kube_clusters;
};

/* Check files[0..n). *text / *json: the report (malloc'd). Returns 0
 * when everything passed, 1 when something was refused, -ENOMEM. */
int ctl_config_check(const struct ctl_check_opts *o, int n, char *const *files, char **text,
                     char **json);

/* `droverctl config diff FILE...`: the files are checked as above
 * (without rendering); each key is then compared with its live value
 * (canonical JSON): "new", "unchanged" or "changed" with the top-level
 * fields that differ; then the HAProxy configs the hosts would install
 * are rendered before and after and diffed (config_render.h). Returns 0
 * when nothing would change, 3 when something would, 1 when a file was
 * refused, a render failed or Consul failed, -ENOMEM. */
int ctl_config_diff(struct ctl_kv *kv, const struct ctl_check_opts *o, int n, char *const *files,
                    char **text, char **json);

#endif
