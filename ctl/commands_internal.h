/* SPDX-License-Identifier: Apache-2.0 */
/*
 * commands internals, shared by its two files only: commands.c (the
 * changes: maintenance, director, host drain; the entry point) and
 * commands_status.c (the read-only commands: status and history).
 * Nothing outside the commands module includes this.
 */
#ifndef DROVER_CTL_COMMANDS_INTERNAL_H
#define DROVER_CTL_COMMANDS_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "commands.h"

#define ERRLEN 1024

/* Set the result to an error/refusal message (text and {"ok":false,...}). */
int commands_fail(struct ctl_result *res, enum ctl_outcome o, const char *msg);
/* Set the result to CTL_OK with text (taken) and j (reference taken). */
int commands_succeed(struct ctl_result *res, char *text, json_t *j);

/* growing text buffer */
struct sbuf {
    char *s;
    size_t len, cap;
    bool oom;
};

__attribute__((format(printf, 2, 3))) void commands_sb_printf(struct sbuf *b, const char *fmt, ...);
/* The text (malloc'd; "" when empty), or NULL after an allocation failure. */
char *commands_sb_take(struct sbuf *b);

/* Read the KV the watcher reads (kube/, haproxy/, maintenance/) into m. */
int commands_load_model(struct ctl_kv *kv, const struct ctl_settings *s, struct ctl_model *m,
                        int64_t now, char *err, size_t errlen);

/* A fresh audit key R audit/<time>-<random> (written create-only, so a
 * collision is a refused write, never an overwrite). */
void commands_audit_key(const struct ctl_settings *s, int64_t now_ms, char *out, size_t outlen);
/* The audit record of cmd's action on target (before/after: the values,
 * NULL for none). New reference, NULL on ENOMEM. */
json_t *commands_audit_value(const struct ctl_command *cmd, const char *author, const char *action,
                             const char *target, int64_t now_ms, const json_t *before,
                             const json_t *after);
/* The author of cmd: its own, else the settings' default, else "unknown". */
const char *commands_author(const struct ctl_command *cmd, const struct ctl_settings *s);

/* ctl_model_affected callback: appends "backend: server" to text and an
 * object to arr (either may be NULL), counting in n. */
struct affect_list {
    struct sbuf *text;
    json_t *arr;
    size_t n;
};
void commands_on_affected(void *arg, const char *backend, const char *server);

/* commands_status.c */
int commands_exec_status(struct ctl_kv *kv, const struct ctl_settings *s,
                         const struct ctl_command *cmd, int64_t now_ms, struct ctl_result *res);
/* commands_deploy.c: config apply|promote|abort|history|rollback */
int commands_exec_config(struct ctl_kv *kv, const struct ctl_settings *s,
                         const struct ctl_command *cmd, int64_t now_ms, struct ctl_result *res);
/* The config lines of `status` for --haproxy-cluster (nothing without
 * one): the version live (or "applied without canary") and what is
 * staged, into b and out["config"]. 0 or -errno. */
int commands_deploy_status(struct ctl_kv *kv, const struct ctl_settings *s, struct sbuf *b,
                           json_t *out);
int commands_exec_history(struct ctl_kv *kv, const struct ctl_settings *s,
                          const struct ctl_command *cmd, struct ctl_result *res);

#endif
