/* SPDX-License-Identifier: Apache-2.0 */
/* ctl_args: see ctl_args.h. */
#include "ctl_args.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "errmsg.h"
#include "kv_key.h"

static const char *const verb_names[] = {
    [CTL_VERB_DRAIN] = "drain",   [CTL_VERB_UNDRAIN] = "undrain", [CTL_VERB_MAINT] = "maint",
    [CTL_VERB_READY] = "ready",   [CTL_VERB_WEIGHT] = "weight",   [CTL_VERB_DIRECTOR] = "director",
    [CTL_VERB_STATUS] = "status", [CTL_VERB_HISTORY] = "history", [CTL_VERB_HELP] = "help",
    [CTL_VERB_HOST] = "host",     [CTL_VERB_CONFIG] = "config",   [CTL_VERB_KV_LOSS] = "kv-loss",
};

static const char *const config_names[] = {
    [CTL_CONFIG_APPLY] = "apply",       [CTL_CONFIG_PROMOTE] = "promote",
    [CTL_CONFIG_ABORT] = "abort",       [CTL_CONFIG_HISTORY] = "history",
    [CTL_CONFIG_ROLLBACK] = "rollback",
};

static const char *const dir_names[] = {
    [CTL_DIR_FILL] = "fill",
    [CTL_DIR_ACTIVATE] = "activate",
    [CTL_DIR_DRAIN] = "drain",
    [CTL_DIR_DEACTIVATE] = "deactivate",
};

const char *ctl_verb_name(enum ctl_verb v)
{
    return (unsigned)v < sizeof(verb_names) / sizeof(verb_names[0]) ? verb_names[v] : "?";
}

const char *ctl_director_action_name(enum ctl_director_action a)
{
    return (unsigned)a < sizeof(dir_names) / sizeof(dir_names[0]) ? dir_names[a] : "?";
}

const char *ctl_config_action_name(enum ctl_config_action a)
{
    return (unsigned)a < sizeof(config_names) / sizeof(config_names[0]) ? config_names[a] : "?";
}

const char *ctl_source_name(enum ctl_source s)
{
    return s == CTL_SOURCE_SLACK ? "slack" : "cli";
}

/* One line per command of the language, and the notes they refer to:
 * ctl_usage() is all of them, ctl_usage_of() one command's. */
#define U_DRAIN    "  drain|maint TARGET [--reason TEXT] [--ttl DURATION] [--force]\n"
#define U_UNDRAIN  "  undrain|ready TARGET [--reason TEXT] [--force]\n"
#define U_WEIGHT   "  weight TARGET N% [--reason TEXT] [--ttl DURATION] [--force]\n"
#define U_DIRECTOR "  director fill|activate|drain|deactivate PROXY [--reason TEXT] [--force]\n"
#define U_HOST     "  host drain|undrain HOST [--reason TEXT] [--wait DURATION]\n"
#define U_KV_LOSS  "  kv-loss force CLUSTER --ttl DURATION [--reason TEXT]\n"
#define U_STATUS   "  status [TARGET] [--json]\n"
#define U_HISTORY  "  history [--limit N] [--json]\n"
#define U_CONFIG                                                                                   \
    "  config apply FILE... --canary HOST[,HOST] [--wait D] [--soak D] [--reason TEXT]\n"          \
    "  config promote|abort [--reason TEXT]\n"                                                     \
    "  config history [--limit N]\n"                                                               \
    "  config rollback VERSION (--canary HOSTS [--wait D] [--soak D] | --now) [--reason TEXT]\n"   \
    "  (config check|diff FILE...: command line only, see droverctl --help)\n"
#define U_TARGET                                                                                   \
    "TARGET: node/<cluster>/<node>, a kube node name, addr/<ip>, an IP address,\n"                 \
    "        <backend>/<server> or server/<backend>/<server>\n"
#define U_AUTHOR "--author NAME (command line only) records another author in the audit trail.\n"

const char *ctl_usage(void)
{
    return "commands:\n" U_DRAIN U_UNDRAIN U_WEIGHT U_DIRECTOR U_HOST U_KV_LOSS U_STATUS U_HISTORY
        U_CONFIG U_TARGET U_AUTHOR;
}

const char *ctl_usage_of(enum ctl_verb v)
{
    static const char *const of[] = {
        [CTL_VERB_DRAIN] = ("usage:\n" U_DRAIN U_TARGET U_AUTHOR),
        [CTL_VERB_MAINT] = ("usage:\n" U_DRAIN U_TARGET U_AUTHOR),
        [CTL_VERB_UNDRAIN] = ("usage:\n" U_UNDRAIN U_TARGET U_AUTHOR),
        [CTL_VERB_READY] = ("usage:\n" U_UNDRAIN U_TARGET U_AUTHOR),
        [CTL_VERB_WEIGHT] = ("usage:\n" U_WEIGHT U_TARGET U_AUTHOR),
        [CTL_VERB_DIRECTOR] = ("usage:\n" U_DIRECTOR U_AUTHOR),
        [CTL_VERB_HOST] = ("usage:\n" U_HOST U_AUTHOR),
        [CTL_VERB_KV_LOSS] = ("usage:\n" U_KV_LOSS U_AUTHOR),
        [CTL_VERB_STATUS] = ("usage:\n" U_STATUS U_TARGET),
        [CTL_VERB_HISTORY] = ("usage:\n" U_HISTORY),
        [CTL_VERB_CONFIG] = ("usage:\n" U_CONFIG U_AUTHOR),
    };
    return (unsigned)v < sizeof(of) / sizeof(of[0]) && of[v] ? of[v] : ctl_usage();
}

/* ---- word splitting ------------------------------------------------------ */

struct wordbuf {
    char *buf;
    size_t len, cap;
};

static int wb_put(struct wordbuf *w, const char *s, size_t n)
{
    if (w->len + n + 1 > w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 64;
        while (cap < w->len + n + 1)
            cap *= 2;
        char *b = realloc(w->buf, cap);
        if (!b)
            return -ENOMEM;
        w->buf = b;
        w->cap = cap;
    }
    memcpy(w->buf + w->len, s, n);
    w->len += n;
    w->buf[w->len] = '\0';
    return 0;
}

/* Typographic quotes Slack clients substitute for ' and " (UTF-8). */
static int quote_at(const char *p, size_t left, size_t *qlen)
{
    *qlen = 1;
    if (*p == '\'' || *p == '"')
        return *p;
    if (left >= 3 && (unsigned char)p[0] == 0xe2 && (unsigned char)p[1] == 0x80) {
        unsigned char c = (unsigned char)p[2];
        *qlen = 3;
        if (c == 0x98 || c == 0x99)
            return '\'';
        if (c == 0x9c || c == 0x9d)
            return '"';
    }
    *qlen = 1;
    return 0;
}

/* Move the word being built into words[*n]. */
static int push_word(char **words, int *n, struct wordbuf *w, char *err, size_t errlen)
{
    if (*n == CTL_MAX_WORDS) {
        errmsg_set(err, errlen, "command has more than %d words", CTL_MAX_WORDS);
        return -EINVAL;
    }
    words[(*n)++] = w->buf;
    *w = (struct wordbuf){0};
    return 0;
}

void ctl_words_free(char **words)
{
    for (size_t i = 0; words && words[i]; i++)
        free(words[i]);
    free(words);
}

int ctl_split_words(const char *text, size_t len, char ***out, int *count, char *err, size_t errlen)
{
    char **words = calloc(CTL_MAX_WORDS + 1, sizeof(*words));
    struct wordbuf w = {0};
    int n = 0, rc = 0;
    bool in_word = false;
    size_t i = 0;

    *out = NULL;
    *count = 0;
    if (!words)
        return -ENOMEM;
    while (i < len) {
        char ch = text[i];
        size_t ql;
        int q = quote_at(text + i, len - i, &ql);

        if (ch == '\0') {
            errmsg_set(err, errlen, "command text contains a NUL byte at offset %zu", i);
            rc = -EINVAL;
            goto fail;
        }
        if (!q && (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r')) {
            if (in_word) {
                if ((rc = push_word(words, &n, &w, err, errlen)) < 0)
                    goto fail;
                in_word = false;
            }
            i++;
            continue;
        }
        in_word = true;
        if (!w.buf && (rc = wb_put(&w, "", 0)) < 0)
            goto fail;
        if (ch == '\\' && !q) {
            if (i + 1 < len) {
                if ((rc = wb_put(&w, text + i + 1, 1)) < 0)
                    goto fail;
                i += 2;
            } else {
                i++; /* a trailing backslash stands for nothing */
            }
            continue;
        }
        if (!q) {
            if ((rc = wb_put(&w, &ch, 1)) < 0)
                goto fail;
            i++;
            continue;
        }
        /* quoted section: up to the matching quote of the same kind */
        size_t start = i;
        i += ql;
        for (;;) {
            size_t cl;
            if (i >= len) {
                errmsg_set(err, errlen, "unterminated %s quote starting at offset %zu",
                           q == '"' ? "double" : "single", start);
                rc = -EINVAL;
                goto fail;
            }
            if (text[i] == '\0') {
                errmsg_set(err, errlen, "command text contains a NUL byte at offset %zu", i);
                rc = -EINVAL;
                goto fail;
            }
            if (quote_at(text + i, len - i, &cl) == q) {
                i += cl;
                break;
            }
            if (q == '"' && text[i] == '\\' && i + 1 < len &&
                (text[i + 1] == '"' || text[i + 1] == '\\')) {
                if ((rc = wb_put(&w, text + i + 1, 1)) < 0)
                    goto fail;
                i += 2;
                continue;
            }
            if ((rc = wb_put(&w, text + i, 1)) < 0)
                goto fail;
            i++;
        }
    }
    if (in_word && (rc = push_word(words, &n, &w, err, errlen)) < 0)
        goto fail;
    *out = words;
    *count = n;
    return 0;
fail:
    free(w.buf);
    ctl_words_free(words);
    return rc;
}

/* ---- validation ------------------------------------------------------------ */

/* Length of the valid UTF-8 sequence at p (1..4), 0 if invalid. */
static size_t utf8_seq(const unsigned char *p, size_t left)
{
    size_t n;
    uint32_t cp;

    if (p[0] < 0x80)
        return 1;
    if ((p[0] & 0xe0) == 0xc0) {
        n = 2;
        cp = p[0] & 0x1f;
    } else if ((p[0] & 0xf0) == 0xe0) {
        n = 3;
        cp = p[0] & 0x0f;
    } else if ((p[0] & 0xf8) == 0xf0) {
        n = 4;
        cp = p[0] & 0x07;
    } else {
        return 0;
    }
    if (n > left)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
        cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    if (cp >= 0x80 && cp < 0xa0) /* C1 controls */
        return 0;
    return n;
}

int ctl_reason_check(const char *reason, char *err, size_t errlen)
{
    size_t len = strlen(reason);

    if (len > CTL_REASON_MAX) {
        errmsg_set(err, errlen,
                   "refused: reason is %zu bytes long, at most %d are allowed (HAProxy shows "
                   "about 127 characters of an agent-check reason)",
                   len, CTL_REASON_MAX);
        return -EINVAL;
    }
    for (size_t i = 0; i < len;) {
        const unsigned char *p = (const unsigned char *)reason + i;
        if (*p < 0x20 || *p == 0x7f) {
            errmsg_set(err, errlen,
                       "refused: reason contains control character 0x%02x at offset %zu "
                       "(it must fit on one agent-check reply line)",
                       *p, i);
            return -EINVAL;
        }
        size_t n = utf8_seq(p, len - i);
        if (!n) {
            errmsg_set(err, errlen,
                       "refused: reason is not valid UTF-8 (or has a control character) at "
                       "offset %zu",
                       i);
            return -EINVAL;
        }
        i += n;
    }
    return 0;
}

static int parse_weight(const char *text, int *out, char *err, size_t errlen)
{
    char *end;
    long v;

    if (!text[0] || text[0] < '0' || text[0] > '9')
        goto bad;
    errno = 0;
    v = strtol(text, &end, 10);
    if (errno || (*end && strcmp(end, "%") != 0))
        goto bad;
    if (v < 0 || v > CTL_WEIGHT_MAX) {
        errmsg_set(err, errlen, "refused: weight %ld%% is outside 0..%d%%", v, CTL_WEIGHT_MAX);
        return -EINVAL;
    }
    *out = (int)v;
    return 0;
bad:
    errmsg_set(err, errlen, "refused: weight '%s' is not a percentage (e.g. 50%%)", text);
    return -EINVAL;
}

static int dup_into(char **dst, const char *s)
{
    free(*dst);
    *dst = strdup(s);
    return *dst ? 0 : -ENOMEM;
}

void ctl_command_free(struct ctl_command *cmd)
{
    if (!cmd)
        return;
    free(cmd->target);
    free(cmd->reason);
    free(cmd->author);
    ctl_words_free(cmd->files);
    ctl_words_free(cmd->canary);
    memset(cmd, 0, sizeof(*cmd));
}

/* --canary HOST[,HOST]: host names as status entries name them. */
static int parse_hosts(const char *val, struct ctl_command *cmd, char *err, size_t errlen)
{
    char *copy = strdup(val), *save = NULL;
    size_t n = 0;
    if (!copy)
        return -ENOMEM;
    ctl_words_free(cmd->canary);
    cmd->n_canary = 0;
    cmd->canary = calloc(strlen(val) / 2 + 2, sizeof(*cmd->canary));
    for (char *h = strtok_r(copy, ",", &save); cmd->canary && h; h = strtok_r(NULL, ",", &save)) {
        if (!kv_valid_segment(h) || strlen(h) > 253) {
            errmsg_set(err, errlen, "--canary: '%.100s' is not a host name", h);
            free(copy);
            return -EINVAL;
        }
        if (!(cmd->canary[n++] = strdup(h)))
            break;
    }
    free(copy);
    if (!cmd->canary || (n && !cmd->canary[n - 1]))
        return -ENOMEM;
    if (!n) {
        errmsg_set(err, errlen, "--canary: no host named (HOST[,HOST])");
        return -EINVAL;
    }
    cmd->n_canary = n;
    return 0;
}

/* The words after `config`: the action, then its arguments. */
static int parse_config(int npos, const char *const *pos, struct ctl_command *cmd, char *err,
                        size_t errlen)
{
    size_t k, nc = sizeof(config_names) / sizeof(config_names[0]);
    for (k = 0; k < nc; k++)
        if (!strcmp(pos[0], config_names[k]))
            break;
    if (k == nc) {
        errmsg_set(err, errlen,
                   "config: unknown action '%.40s' (apply, promote, abort, history or rollback; "
                   "check and diff run from the command line)",
                   pos[0]);
        return -EINVAL;
    }
    cmd->config_action = (enum ctl_config_action)k;
    bool apply = k == CTL_CONFIG_APPLY, rollback = k == CTL_CONFIG_ROLLBACK;
    int want = apply ? -1 : rollback ? 1 : 0; /* -1: at least one */
    if ((want < 0 && npos < 2) || (want >= 0 && npos - 1 != want)) {
        errmsg_set(err, errlen, "usage: config %s%s (got %d argument%s)", config_names[k],
                   apply      ? " FILE..."
                   : rollback ? " VERSION"
                              : "",
                   npos - 1, npos == 2 ? "" : "s");
        return -EINVAL;
    }
    if ((apply || (rollback && !cmd->now)) && !cmd->n_canary) {
        errmsg_set(err, errlen, "config %s: --canary HOST[,HOST] is required%s", config_names[k],
                   rollback ? " (or --now to skip the canary)" : "");
        return -EINVAL;
    }
    if ((cmd->n_canary && !apply && !rollback) || (cmd->now && !rollback) ||
        (cmd->now && cmd->n_canary)) {
        errmsg_set(err, errlen,
                   "config %s: --canary is for apply and rollback, --now for rollback without "
                   "--canary",
                   config_names[k]);
        return -EINVAL;
    }
    if (cmd->wait_given && !cmd->n_canary) {
        errmsg_set(err, errlen, "config %s: --wait is for a change with --canary", config_names[k]);
        return -EINVAL;
    }
    if (cmd->soak_ms && !cmd->n_canary) {
        errmsg_set(err, errlen, "config %s: --soak is for a change with --canary", config_names[k]);
        return -EINVAL;
    }
    if (cmd->n_canary && !cmd->wait_given && cmd->source == CTL_SOURCE_CLI)
        cmd->wait_ms = CTL_CONFIG_WAIT_DEFAULT_MS;
    if (rollback) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(pos[1], &end, 10);
        if (errno || *end || end == pos[1] || pos[1][0] == '-' || v == 0 || v > 9999999999ull) {
            errmsg_set(err, errlen, "config rollback: '%.40s' is not a version number", pos[1]);
            return -EINVAL;
        }
        cmd->version = v;
    }
    if (apply) {
        if (!(cmd->files = calloc((size_t)npos, sizeof(*cmd->files))))
            return -ENOMEM;
        for (int i = 1; i < npos; i++)
            if (!(cmd->files[cmd->n_files++] = strdup(pos[i])))
                return -ENOMEM;
    }
    return 0;
}

static bool verb_takes(enum ctl_verb v, const char *flag)
{
    bool change = v <= CTL_VERB_WEIGHT || v == CTL_VERB_DIRECTOR || v == CTL_VERB_HOST ||
                  v == CTL_VERB_CONFIG || v == CTL_VERB_KV_LOSS;

    if (!strcmp(flag, "--json"))
        return true;
    if (!strcmp(flag, "--reason") || !strcmp(flag, "--author"))
        return change;
    if (!strcmp(flag, "--force"))
        return change && v != CTL_VERB_KV_LOSS; /* it is the force */
    if (!strcmp(flag, "--ttl"))
        return v == CTL_VERB_DRAIN || v == CTL_VERB_MAINT || v == CTL_VERB_WEIGHT ||
               v == CTL_VERB_KV_LOSS;
    if (!strcmp(flag, "--limit"))
        return v == CTL_VERB_HISTORY || v == CTL_VERB_CONFIG;
    if (!strcmp(flag, "--wait"))
        return v == CTL_VERB_HOST || v == CTL_VERB_CONFIG;
    if (!strcmp(flag, "--canary") || !strcmp(flag, "--now") || !strcmp(flag, "--soak"))
        return v == CTL_VERB_CONFIG;
    return false;
}

int ctl_command_parse(int n, char *const *words, enum ctl_source source,
                      const struct ctl_limits *lim, struct ctl_command *cmd, char *err,
                      size_t errlen)
{
    const char *pos[CTL_MAX_WORDS] = {NULL};
    int npos = 0, rc;
    size_t nv = sizeof(verb_names) / sizeof(verb_names[0]);
    size_t k;

    memset(cmd, 0, sizeof(*cmd));
    cmd->weight = -1;
    cmd->source = source;
    cmd->limit = CTL_HISTORY_DEFAULT;
    if (n < 1 || !words[0]) {
        errmsg_set(err, errlen, "no command given; try 'help'");
        return -EINVAL;
    }
    for (k = 0; k < nv; k++)
        if (!strcmp(words[0], verb_names[k]))
            break;
    if (k == nv) {
        errmsg_set(err, errlen, "unknown command '%s'; try 'help'", words[0]);
        return -EINVAL;
    }
    cmd->verb = (enum ctl_verb)k;
    cmd->help_verb = CTL_VERB_HELP; /* `help`: every command */

    for (int i = 1; i < n; i++) {
        const char *w = words[i];
        const char *val = NULL;
        char flag[16];

        /* `drain --help` asks for help; never a target named "-h" */
        if (!strcmp(w, "--help") || !strcmp(w, "-h")) {
            cmd->help_verb = cmd->verb;
            cmd->verb = CTL_VERB_HELP;
            return 0;
        }
        if (!strcmp(w, "--")) {
            errmsg_set(err, errlen, "'--' is not supported; quote arguments instead");
            return -EINVAL;
        }
        if (strncmp(w, "--", 2) != 0) {
            if (npos == (cmd->verb == CTL_VERB_CONFIG ? CTL_MAX_WORDS : 3)) {
                errmsg_set(err, errlen, "%s: unexpected argument '%s'", words[0], w);
                return -EINVAL;
            }
            pos[npos++] = w;
            continue;
        }
        const char *eq = strchr(w, '=');
        size_t fl = eq ? (size_t)(eq - w) : strlen(w);
        if (fl >= sizeof(flag)) {
            errmsg_set(err, errlen, "%s: unknown option '%.*s'", words[0], (int)(fl > 40 ? 40 : fl),
                       w);
            return -EINVAL;
        }
        memcpy(flag, w, fl);
        flag[fl] = '\0';
        if (!verb_takes(cmd->verb, flag)) {
            errmsg_set(err, errlen,
                       "%s: unknown option '%s' (global options such as --consul-addr go "
                       "before the command)",
                       words[0], flag);
            return -EINVAL;
        }
        if (!strcmp(flag, "--force") || !strcmp(flag, "--json") || !strcmp(flag, "--now")) {
            bool b = true;
            if (eq && config_parse_bool(eq + 1, &b) < 0) {
                errmsg_set(err, errlen, "%s: bad boolean '%s'", flag, eq + 1);
                return -EINVAL;
            }
            if (flag[2] == 'f')
                cmd->force = b;
            else if (flag[2] == 'n')
                cmd->now = b;
            else
                cmd->json = b;
            continue;
        }
        if (eq) {
            val = eq + 1;
        } else if (i + 1 < n) {
            val = words[++i];
        } else {
            errmsg_set(err, errlen, "%s: option %s needs a value", words[0], flag);
            return -EINVAL;
        }
        if (!strcmp(flag, "--reason")) {
            if ((rc = ctl_reason_check(val, err, errlen)) < 0)
                return rc;
            if ((rc = dup_into(&cmd->reason, val)) < 0)
                return rc;
        } else if (!strcmp(flag, "--author")) {
            if (source == CTL_SOURCE_SLACK) {
                errmsg_set(err, errlen,
                           "refused: --author cannot be set from Slack (the author is the "
                           "Slack user)");
                return -EINVAL;
            }
            if (!val[0] || strlen(val) > 64 || strpbrk(val, " \t\r\n\"\\")) {
                errmsg_set(err, errlen,
                           "refused: author '%.64s' must be 1-64 characters without blanks, "
                           "quotes or backslashes",
                           val);
                return -EINVAL;
            }
            if ((rc = dup_into(&cmd->author, val)) < 0)
                return rc;
        } else if (!strcmp(flag, "--ttl")) {
            int64_t ms;
            if (config_parse_duration_ms(val, &ms) < 0 || ms <= 0) {
                errmsg_set(err, errlen, "refused: --ttl '%s' is not a positive duration (e.g. 2h)",
                           val);
                return -EINVAL;
            }
            if (lim && lim->max_ttl_ms > 0 && ms > lim->max_ttl_ms) {
                char a[32], b[32];
                config_format_duration(ms, a, sizeof(a));
                config_format_duration(lim->max_ttl_ms, b, sizeof(b));
                errmsg_set(err, errlen,
                           "refused: --ttl %s is longer than the maximum %s (--max-ttl)", a, b);
                return -EINVAL;
            }
            cmd->ttl_ms = ms;
        } else if (!strcmp(flag, "--canary")) {
            if ((rc = parse_hosts(val, cmd, err, errlen)) < 0)
                return rc;
        } else if (!strcmp(flag, "--wait")) {
            int64_t ms;
            if (source == CTL_SOURCE_SLACK) {
                errmsg_set(err, errlen, "refused: --wait is for the command line only");
                return -EINVAL;
            }
            if (config_parse_duration_ms(val, &ms) < 0 || ms < 0 || ms > 3600000) {
                errmsg_set(err, errlen, "refused: --wait '%s' is not a duration up to 1h", val);
                return -EINVAL;
            }
            cmd->wait_ms = ms;
            cmd->wait_given = true;
        } else if (!strcmp(flag, "--soak")) {
            int64_t ms;
            if (source == CTL_SOURCE_SLACK) {
                errmsg_set(err, errlen, "refused: --soak is for the command line only");
                return -EINVAL;
            }
            if (config_parse_duration_ms(val, &ms) < 0 || ms < 0 || ms > 3600000) {
                errmsg_set(err, errlen, "refused: --soak '%s' is not a duration up to 1h", val);
                return -EINVAL;
            }
            cmd->soak_ms = ms;
        } else if (!strcmp(flag, "--limit")) {
            char *end;
            errno = 0;
            long v = strtol(val, &end, 10);
            if (errno || *end || end == val || v < 1 || v > 10000) {
                errmsg_set(err, errlen, "--limit '%s' must be 1..10000", val);
                return -EINVAL;
            }
            cmd->limit = v;
        }
    }

    /* positional arguments per verb */
    int want_min = 0, want_max = 0;
    switch (cmd->verb) {
    case CTL_VERB_DRAIN:
    case CTL_VERB_UNDRAIN:
    case CTL_VERB_MAINT:
    case CTL_VERB_READY:
        want_min = want_max = 1;
        break;
    case CTL_VERB_WEIGHT:
    case CTL_VERB_DIRECTOR:
    case CTL_VERB_HOST:
    case CTL_VERB_KV_LOSS:
        want_min = want_max = 2;
        break;
    case CTL_VERB_STATUS:
        want_max = 1;
        break;
    case CTL_VERB_HISTORY:
    case CTL_VERB_HELP:
        break;
    case CTL_VERB_CONFIG:
        want_min = 1;
        want_max = CTL_MAX_WORDS;
        break;
    }
    if (npos < want_min || npos > want_max) {
        static const char *const shape[] = {
            [CTL_VERB_DRAIN] = "drain TARGET",
            [CTL_VERB_UNDRAIN] = "undrain TARGET",
            [CTL_VERB_MAINT] = "maint TARGET",
            [CTL_VERB_READY] = "ready TARGET",
            [CTL_VERB_WEIGHT] = "weight TARGET N%",
            [CTL_VERB_DIRECTOR] = "director fill|activate|drain|deactivate PROXY",
            [CTL_VERB_STATUS] = "status [TARGET]",
            [CTL_VERB_HISTORY] = "history",
            [CTL_VERB_HELP] = "help",
            [CTL_VERB_HOST] = "host drain|undrain HOST",
            [CTL_VERB_CONFIG] = "config apply|promote|abort|history|rollback ...",
            [CTL_VERB_KV_LOSS] = "kv-loss force CLUSTER --ttl DURATION",
        };
        errmsg_set(err, errlen, "usage: %s (got %d argument%s)", shape[cmd->verb], npos,
                   npos == 1 ? "" : "s");
        return -EINVAL;
    }
    if (cmd->verb == CTL_VERB_DIRECTOR) {
        size_t nd = sizeof(dir_names) / sizeof(dir_names[0]);
        for (k = 0; k < nd; k++)
            if (!strcmp(pos[0], dir_names[k]))
                break;
        if (k == nd) {
            errmsg_set(err, errlen,
                       "director: unknown action '%s' (fill, activate, drain or deactivate)",
                       pos[0]);
            return -EINVAL;
        }
        cmd->dir_action = (enum ctl_director_action)k;
        return dup_into(&cmd->target, pos[1]);
    }
    if (cmd->verb == CTL_VERB_HOST) {
        if (strcmp(pos[0], "drain") != 0 && strcmp(pos[0], "undrain") != 0) {
            errmsg_set(err, errlen, "host: unknown action '%s' (drain or undrain)", pos[0]);
            return -EINVAL;
        }
        cmd->host_undrain = pos[0][0] == 'u';
        return dup_into(&cmd->target, pos[1]);
    }
    if (cmd->verb == CTL_VERB_CONFIG)
        return parse_config(npos, pos, cmd, err, errlen);
    if (cmd->verb == CTL_VERB_KV_LOSS) {
        if (strcmp(pos[0], "force") != 0) {
            errmsg_set(err, errlen, "kv-loss: unknown action '%s' (force)", pos[0]);
            return -EINVAL;
        }
        if (cmd->ttl_ms <= 0) {
            /* an override without an end would outlive the episode */
            errmsg_set(err, errlen, "refused: kv-loss force needs --ttl (when the force ends)");
            return -EINVAL;
        }
        return dup_into(&cmd->target, pos[1]);
    }
    if (cmd->verb == CTL_VERB_WEIGHT && (rc = parse_weight(pos[1], &cmd->weight, err, errlen)) < 0)
        return rc;
    if (npos >= 1 && (rc = dup_into(&cmd->target, pos[0])) < 0)
        return rc;
    return 0;
}
