/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ctl_args: the droverctl command language, shared by the command line and
 * the Slack endpoint. It owns shell-like word splitting of a Slack `text`
 * field, parsing the words of one command (verb, target, weight, and the
 * per-command flags --reason --ttl --author --force --json --limit) into a
 * struct ctl_command, and the input rules that never depend on KV state:
 * reason length and characters, TTL against --max-ttl, weight 0..256 %.
 *
 * Both front ends build a struct ctl_command here and hand it to
 * ctl_execute() (commands.h), so a rule cannot differ between them.
 */
#ifndef DROVER_CTL_ARGS_H
#define DROVER_CTL_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* HAProxy keeps about 127 characters of an agent-check #text. */
#define CTL_REASON_MAX      127
#define CTL_WEIGHT_MAX      256
#define CTL_MAX_WORDS       64
#define CTL_HISTORY_DEFAULT 20

enum ctl_verb {
    CTL_VERB_DRAIN = 0,
    CTL_VERB_UNDRAIN,
    CTL_VERB_MAINT,
    CTL_VERB_READY,
    CTL_VERB_WEIGHT,
    CTL_VERB_DIRECTOR,
    CTL_VERB_STATUS,
    CTL_VERB_HISTORY,
    CTL_VERB_HELP,
    CTL_VERB_HOST,    /* host drain|undrain HOST: the front door (docs/frontdoor.md) */
    CTL_VERB_CONFIG,  /* config apply|promote|abort|history|rollback (commands_deploy.c) */
    CTL_VERB_KV_LOSS, /* kv-loss force CLUSTER --ttl D: end a KV-loss episode early */
};

/* The config lifecycle (docs/droverctl.md, "Config changes"); `config
 * check|diff` run offline in the command line front end only. */
enum ctl_config_action {
    CTL_CONFIG_APPLY = 0, /* stage FILE... on --canary hosts */
    CTL_CONFIG_PROMOTE,   /* the staged change goes live (cas) */
    CTL_CONFIG_ABORT,     /* the staged change is dropped */
    CTL_CONFIG_HISTORY,   /* the versions kept */
    CTL_CONFIG_ROLLBACK,  /* stage (or --now: make live) a version again */
};

#define CTL_CONFIG_WAIT_DEFAULT_MS 30000 /* apply: how long the canary is watched */

/* GLB proxy states, in the order of the normal cycle. */
enum ctl_director_action {
    CTL_DIR_FILL = 0,   /* inactive -> filling */
    CTL_DIR_ACTIVATE,   /* filling -> active */
    CTL_DIR_DRAIN,      /* active -> draining */
    CTL_DIR_DEACTIVATE, /* draining -> inactive */
};

/* Where a command comes from: decides the audit "source" and which flags
 * are allowed (Slack callers cannot choose their author). */
enum ctl_source {
    CTL_SOURCE_CLI = 0,
    CTL_SOURCE_SLACK,
};

struct ctl_limits {
    int64_t max_ttl_ms; /* --max-ttl; 0 = no limit */
};

/* One parsed command. Strings are malloc'd and owned by the struct
 * (ctl_command_free). */
struct ctl_command {
    enum ctl_verb verb;
    enum ctl_director_action dir_action; /* CTL_VERB_DIRECTOR */
    enum ctl_source source;
    char *target;   /* raw TARGET / PROXY; NULL when absent (status, history) */
    int weight;     /* 0..256 percent; -1 = not given */
    char *reason;   /* NULL = not given */
    int64_t ttl_ms; /* 0 = no expiry */
    char *author;   /* NULL = caller's default */
    bool force;
    bool json;
    bool host_undrain; /* CTL_VERB_HOST: undrain (else drain) */
    int64_t wait_ms;   /* CTL_VERB_HOST drain: wait this long for the host to be idle */
    long limit;        /* history: entries shown */
    /* CTL_VERB_CONFIG */
    enum ctl_config_action config_action;
    char **files; /* apply: FILE... (NULL-terminated, n_files) */
    size_t n_files;
    char **canary; /* --canary HOST[,HOST]: NULL-terminated, n_canary */
    size_t n_canary;
    uint64_t version; /* rollback VERSION */
    bool now;         /* rollback --now: no canary */
    int64_t soak_ms;  /* config --canary: watch the error counters this long after applied */
    bool wait_given;  /* --wait was given (config: 0 = do not watch) */
    /* CTL_VERB_HELP: the command `VERB --help` asked about; CTL_VERB_HELP
     * for `help` (every command) */
    enum ctl_verb help_verb;
};

const char *ctl_verb_name(enum ctl_verb v);
const char *ctl_director_action_name(enum ctl_director_action a);
const char *ctl_config_action_name(enum ctl_config_action a);
const char *ctl_source_name(enum ctl_source s);

/* Split text into words like a POSIX shell without expansions: blanks
 * separate words; '...' is literal; "..." allows \" and \\; a backslash
 * outside quotes escapes the next character. Slack's typographic quotes
 * (U+2018/2019 and U+201C/201D) count as ' and ". At most CTL_MAX_WORDS
 * words. On success *out is a malloc'd NULL-terminated vector of malloc'd
 * words (free with ctl_words_free) and *count its length. 0, -EINVAL
 * (unterminated quote, too many words, NUL byte; message in err), -ENOMEM. */
int ctl_split_words(const char *text, size_t len, char ***out, int *count, char *err,
                    size_t errlen);
void ctl_words_free(char **words);

/* Parse words[0..n) (words[0] is the verb) into *cmd for a command from
 * source. Checks every rule that needs no KV: known verb and flags, the
 * right number of arguments, weight "N" or "N%" in 0..256, TTL syntax and
 * limit, reason rules. 0, -EINVAL with a message saying what was refused
 * and why, -ENOMEM. A --help or -h among the words makes it CTL_VERB_HELP
 * (words after it are not checked). *cmd is zeroed first and must be freed with
 * ctl_command_free whatever the result. */
int ctl_command_parse(int n, char *const *words, enum ctl_source source,
                      const struct ctl_limits *lim, struct ctl_command *cmd, char *err,
                      size_t errlen);
void ctl_command_free(struct ctl_command *cmd);

/* A reason must be at most CTL_REASON_MAX bytes, valid UTF-8 and free of
 * control characters (it ends up in an agent-check reply line). */
int ctl_reason_check(const char *reason, char *err, size_t errlen);

/* Usage text of the command language (for --help and Slack "help"). */
const char *ctl_usage(void);
/* Usage of one command (`drain --help`); every command's for CTL_VERB_HELP.
 * Static storage. */
const char *ctl_usage_of(enum ctl_verb v);

#endif
