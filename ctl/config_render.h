/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config_render: HAProxy configs as droverctl renders them, with the
 * watcher's own code (snapshot build, template data, templates) and the
 * watcher's default options (a host's own paths and ports are the same on
 * both sides of a diff, so they never show in one).
 *
 * `config check` renders every service of its files; `config diff` renders
 * what a host runs now and what it would run with the files applied, and
 * prints the unified diff per service. What a host runs is the live KV as
 * its watcher reads it: haproxy/<cluster>/ (with the staged change
 * overlaid when the host is one of its canary hosts, watcher/canary.c) and
 * the kube data of the kube clusters present (or --kube-cluster). Slots
 * are placed afresh on both sides (a host keeps its own placement: the
 * diff shows what changes, not in which slot). The configs name their
 * route maps and crt-lists in the watcher's default config dir
 * (RENDER_CONFIG_DIR_DEFAULT); those files, written per side by
 * render_files into the private directory, are compared too.
 */
#ifndef DROVER_CTL_CONFIG_RENDER_H
#define DROVER_CTL_CONFIG_RENDER_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

#include "ctl_kv.h"
#include "render.h"
#include "snapshot.h"

/* Render service svc of snap (cluster) into buf, its sockets and state
 * file named in dir. map_dir: where its route maps and crt-lists are named
 * (render_files.h writes them there), or NULL: none (routes of selectors
 * left out, certificates as plain `crt` words). 0, or -errno with err. */
int config_render_service(const struct template_set *set, const struct snapshot *snap,
                          const struct snapshot_service *svc, const char *cluster, const char *dir,
                          const char *map_dir, struct template_buf *buf, char *err, size_t errlen);

struct config_render_diff_opts {
    const char *root;
    const char *template_dir;
    const char *host;           /* NULL: every host of each cluster */
    char *const *kube_clusters; /* NULL/0: every kube cluster in KV */
    size_t n_kube_clusters;
};

/*
 * The rendered diff of applying values (rel key -> value, the checked
 * files) to the live KV, per HAProxy cluster the values touch: once for
 * the hosts that run the live definitions and once per canary host of a
 * staged change (or for o->host only). Text into t; into out (an object):
 * "rendered": [{"cluster", "hosts": [...], "services": {NAME: "unchanged" |
 * "changed" | "new" | "removed" | "error"}}]. *changed: some host would
 * install other bytes; *failed: a service did not render (message in t).
 * 0, or -errno with err (Consul, templates, an unknown host).
 */
int config_render_diff(struct ctl_kv *kv, const struct config_render_diff_opts *o,
                       const json_t *values, FILE *t, json_t *out, bool *changed, bool *failed,
                       char *err, size_t errlen);

#endif
