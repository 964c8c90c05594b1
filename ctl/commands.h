/* SPDX-License-Identifier: Apache-2.0 */
/*
 * commands: executes one struct ctl_command against Consul KV. This is
 * the single code path behind both the droverctl command line and the
 * Slack endpoint: the front ends only parse and render.
 *
 * A change (drain, undrain, maint, ready, weight, director ...) is a
 * read-decide-write loop: read the KV the watcher reads into a ctl_model,
 * resolve and validate the target, apply the refusal rules, then write the
 * entry with its ModifyIndex as cas (0 = create only) and the audit entry
 * in ONE /v1/txn, so an audit entry exists exactly when the change
 * happened. A cas conflict (someone else wrote in between) re-reads and
 * decides again, a few times, before giving up with a clear message.
 */
#ifndef DROVER_CTL_COMMANDS_H
#define DROVER_CTL_COMMANDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctl_args.h"
#include "ctl_kv.h"
#include "config_check.h"
#include "ctl_model.h"

#define CTL_CAS_ATTEMPTS 5

struct ctl_settings {
    const char *root;      /* "drover/v1/" (ends in '/') */
    char *const *clusters; /* kube clusters bare node names resolve in (n == 0: all) */
    size_t n_clusters;
    const char *haproxy_cluster; /* NULL or "": backends of every haproxy/<cluster>/ */
    const char *director_cluster;
    const char *default_author; /* used when the command has no author */
    double max_out_share;       /* 0..1 */
    int cas_attempts;           /* 0: CTL_CAS_ATTEMPTS */
    /* config apply: how files are checked (templates, haproxy -c); and
     * where files named from Slack are (NULL: apply from Slack refused) */
    const struct ctl_check_opts *check;
    const char *config_dir;
    /* Test hook: called after the read and before the write of each
     * attempt (lets a test slip a concurrent write in). NULL in normal use. */
    void (*before_write)(void *arg, int attempt);
    void *before_write_arg;
};

enum ctl_outcome {
    CTL_OK = 0,  /* done (changed or nothing to do) */
    CTL_REFUSED, /* a rule refused the command; nothing changed */
    CTL_FAILED,  /* Consul or another error; nothing changed */
};

struct ctl_result {
    enum ctl_outcome outcome;
    bool changed;
    char *text; /* human-readable answer (malloc'd), always set */
    char *json; /* JSON answer (malloc'd), always set */
};

/* Run cmd at wall-clock time now_ms. Fills *res (free with
 * ctl_result_free); returns 0 or -ENOMEM. */
int ctl_execute(struct ctl_kv *kv, const struct ctl_settings *s, const struct ctl_command *cmd,
                int64_t now_ms, struct ctl_result *res);
void ctl_result_free(struct ctl_result *res);

/* Build the value of a maintenance entry for cmd applied to the current
 * entry cur (NULL = none) at now (unix s). Returns 1 with *out (new
 * reference) for a write, 0 with *out = NULL when the entry should be
 * deleted, 2 when nothing changes. Exposed for unit tests. */
int ctl_maint_next(const struct ctl_command *cmd, const char *id, const struct ctl_maint *cur,
                   const char *author, int64_t now, json_t **out);

/* GLB transition check: the state action leads to, and whether cur may
 * make that step without --force. */
const char *ctl_director_target_state(enum ctl_director_action a);
bool ctl_director_step_allowed(const char *cur, enum ctl_director_action a);

#endif
