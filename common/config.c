/* SPDX-License-Identifier: Apache-2.0 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_internal.h"
#include "errmsg.h"
#include "json_util.h"
#include "version.h"

/* Built-in options every program has, handled here rather than in the
 * program's table so they behave identically everywhere. */
#define OPT_CONFIG     "config"
#define OPT_LOG_LEVEL  "log-level"
#define OPT_LOG_FORMAT "log-format"
#define OPT_HELP       "help"
#define OPT_VERSION    "version"

/* Where the winning value of one option came from. */
struct source {
    const char *flag_text;  /* last --name value (NULL: not on the command line) */
    bool flag_seen;         /* for bools given as a bare flag */
    const char **flag_list; /* CONFIG_STRLIST: every --name value */
    size_t flag_list_n;
};

void config_env_name(const char *option, char *buf, size_t buflen)
{
    size_t o = 0;
    const char *prefix = "DROVER_";

    if (buflen == 0)
        return;
    for (; *prefix && o + 1 < buflen; prefix++)
        buf[o++] = *prefix;
    for (; option && *option && o + 1 < buflen; option++) {
        unsigned char c = (unsigned char)*option;
        buf[o++] = (c == '-' || c == '.') ? '_' : (char)toupper(c);
    }
    buf[o] = '\0';
}

/* ---- the table --------------------------------------------------------- */

/* Where an entry of the table comes from (help prints them in this order). */
#define FROM_PROGRAM -1 /* the program's own options */
#define FROM_BUILTIN -2 /* --config, --log-level */
#define FROM_COMMAND -3 /* a command's own options (cmd[i] says which) */

/* Every option one parse knows: the program's own, each group's, the
 * built-ins, then every command's own. */
struct table {
    struct config_option *opts;
    int *cmd;  /* owning command, -1: global */
    int *from; /* FROM_* or the index of the group */
    size_t n;
    size_t i_config; /* the built-ins */
    size_t i_level;
};

static void table_free(struct table *t)
{
    free(t->opts);
    free(t->cmd);
    free(t->from);
    memset(t, 0, sizeof(*t));
}

static bool name_is(const char *name, const char *s, size_t len)
{
    return name && strlen(name) == len && strncmp(name, s, len) == 0;
}

static bool option_is(const struct config_option *o, const char *s, size_t len)
{
    return name_is(o->name, s, len) || name_is(o->alias, s, len);
}

static bool names_clash(const struct config_option *a, const struct config_option *b)
{
    return option_is(b, a->name, strlen(a->name)) ||
           (a->alias && option_is(b, a->alias, strlen(a->alias)));
}

static bool name_valid(const char *name)
{
    static const char *const reserved[] = {OPT_CONFIG, OPT_LOG_LEVEL, OPT_LOG_FORMAT, OPT_HELP,
                                           OPT_VERSION};

    if (!name)
        return true; /* no alias */
    if (!*name || name[0] == '-' || strchr(name, '=') || strchr(name, ' '))
        return false;
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
        if (strcmp(name, reserved[i]) == 0)
            return false;
    return true;
}

static size_t count_options(const struct config_option *opts)
{
    size_t n = 0;
    while (opts && opts[n].name)
        n++;
    return n;
}

static void table_add(struct table *t, const struct config_option *o, int cmd, int from)
{
    t->opts[t->n] = *o;
    t->cmd[t->n] = cmd;
    t->from[t->n] = from;
    t->n++;
}

static int table_build(const struct config_program *prog, struct table *t, char **config_path,
                       enum log_level *level, char **log_format, char *err, size_t errlen)
{
    size_t n = count_options(prog->options) + 3;

    memset(t, 0, sizeof(*t));
    for (size_t g = 0; prog->groups && prog->groups[g].options; g++)
        n += count_options(prog->groups[g].options);
    for (size_t c = 0; prog->commands && prog->commands[c].name; c++)
        n += count_options(prog->commands[c].options);
    t->opts = calloc(n, sizeof(*t->opts));
    t->cmd = calloc(n, sizeof(*t->cmd));
    t->from = calloc(n, sizeof(*t->from));
    if (!t->opts || !t->cmd || !t->from) {
        table_free(t);
        return -ENOMEM;
    }
    for (size_t i = 0; prog->options && prog->options[i].name; i++)
        table_add(t, &prog->options[i], -1, FROM_PROGRAM);
    for (size_t g = 0; prog->groups && prog->groups[g].options; g++)
        for (size_t i = 0; prog->groups[g].options[i].name; i++)
            table_add(t, &prog->groups[g].options[i], -1, (int)g);
    t->i_config = t->n;
    table_add(t,
              &(struct config_option){.name = OPT_CONFIG,
                                      .type = CONFIG_STRING,
                                      .target.str = config_path,
                                      .help = "JSON config file (keys are option names)",
                                      .metavar = "FILE"},
              -1, FROM_BUILTIN);
    t->i_level = t->n;
    table_add(t,
              &(struct config_option){.name = OPT_LOG_LEVEL,
                                      .type = CONFIG_LOGLEVEL,
                                      .target.level = level,
                                      .def = "info",
                                      .help = "log level: debug, info, warn or error"},
              -1, FROM_BUILTIN);
    table_add(t,
              &(struct config_option){.name = OPT_LOG_FORMAT,
                                      .type = CONFIG_STRING,
                                      .target.str = log_format,
                                      .def = "auto",
                                      .help = "log lines: logfmt, journal (<N> priority prefix, "
                                              "no time stamp), json (one object a line), or "
                                              "auto: journal when stderr is systemd's journal, "
                                              "else logfmt",
                                      .metavar = "FORMAT"},
              -1, FROM_BUILTIN);
    for (size_t c = 0; prog->commands && prog->commands[c].name; c++)
        for (size_t i = 0; prog->commands[c].options && prog->commands[c].options[i].name; i++)
            table_add(t, &prog->commands[c].options[i], (int)c, FROM_COMMAND);

    for (size_t i = 0; i < t->n; i++) {
        const struct config_option *o = &t->opts[i];
        if (t->from[i] != FROM_BUILTIN && (!name_valid(o->name) || !name_valid(o->alias))) {
            errmsg_set(err, errlen, "config: option name '%s' (alias '%s') is reserved or invalid",
                       o->name, o->alias ? o->alias : "");
            table_free(t);
            return -EINVAL;
        }
        for (size_t k = 0; k < i; k++) {
            /* global names are unique; a command's own only among the
             * global ones and its other options */
            if ((t->cmd[k] == -1 || t->cmd[k] == t->cmd[i]) && names_clash(o, &t->opts[k])) {
                errmsg_set(err, errlen, "config: option '%s' defined twice", o->name);
                table_free(t);
                return -EINVAL;
            }
        }
    }
    return 0;
}

/* The option called name (or by its alias) that is valid with command cmd
 * (-1: none given yet). *other is set to the command owning an option of
 * that name which is not valid here (-1: none). */
static const struct config_option *table_find(const struct table *t, const char *name, size_t len,
                                              int cmd, size_t *idx, int *other)
{
    if (other)
        *other = -1;
    for (size_t i = 0; i < t->n; i++) {
        if (!option_is(&t->opts[i], name, len))
            continue;
        if (t->cmd[i] == -1 || t->cmd[i] == cmd) {
            *idx = i;
            return &t->opts[i];
        }
        if (other && *other < 0)
            *other = t->cmd[i];
    }
    return NULL;
}

static int command_find(const struct config_program *prog, const char *word)
{
    for (int c = 0; prog->commands && prog->commands[c].name; c++)
        if (strcmp(prog->commands[c].name, word) == 0)
            return c;
    return -1;
}

/* "run, render, director" */
static void command_names(const struct config_program *prog, char *buf, size_t buflen)
{
    size_t o = 0;

    buf[0] = '\0';
    for (size_t c = 0; prog->commands && prog->commands[c].name && o < buflen; c++) {
        int w = snprintf(buf + o, buflen - o, "%s%s", c ? ", " : "", prog->commands[c].name);
        if (w < 0)
            break;
        o += (size_t)w;
    }
}

/* ---- help -------------------------------------------------------------- */

static void print_option(FILE *out, const struct config_option *o, bool has_env)
{
    char env[128];

    if (o->type == CONFIG_BOOL)
        fprintf(out, "  --%s[=BOOL]", o->name);
    else
        fprintf(out, "  --%s %s", o->name, config_metavar(o));
    if (o->type == CONFIG_STRLIST)
        fprintf(out, " (repeatable)");
    fprintf(out, "\n      %s [%s", o->help ? o->help : "", config_type_word(o->type));
    if (o->type == CONFIG_INT && (o->min || o->max))
        fprintf(out, " %" PRId64 "..%" PRId64, o->min, o->max);
    fprintf(out, "]\n      default: %s", o->def && *o->def ? o->def : "(none)");
    if (has_env) {
        config_env_name(o->name, env, sizeof(env));
        fprintf(out, "   env: %s", env);
        if (o->env_alt)
            fprintf(out, ", then %s", o->env_alt);
    }
    fprintf(out, "\n");
    if (o->alias) {
        fprintf(out, "      old name: --%s", o->alias);
        if (has_env) {
            config_env_name(o->alias, env, sizeof(env));
            fprintf(out, " (%s)", env);
        }
        fprintf(out, "\n");
    }
}

static void print_help(const struct config_program *prog, int cmd, FILE *out)
{
    const char *name = prog->name ? prog->name : "drover";
    const struct config_command *c = cmd >= 0 ? &prog->commands[cmd] : NULL;
    char *config_path = NULL, *log_format = NULL;
    enum log_level level = LOGL_INFO;
    struct table t;

    if (table_build(prog, &t, &config_path, &level, &log_format, NULL, 0) < 0)
        return;
    if (c) {
        fprintf(out, "Usage: %s [OPTIONS] %s%s%s\n", name, c->name, c->args_usage ? " " : "",
                c->args_usage ? c->args_usage : "");
        if (c->summary)
            fprintf(out, "%s\n", c->summary);
        if (c->options && c->options[0].name) {
            fprintf(out, "\nOptions of '%s' (after the word; flags only):\n", c->name);
            for (size_t i = 0; i < t.n; i++)
                if (t.cmd[i] == cmd)
                    print_option(out, &t.opts[i], false);
        }
    } else {
        const char *args = prog->args_usage ? prog->args_usage
                           : prog->commands ? "[COMMAND]"
                                            : NULL;
        fprintf(out, "Usage: %s [OPTIONS]%s%s\n", name, args ? " " : "", args ? args : "");
        if (prog->summary)
            fprintf(out, "%s\n", prog->summary);
        if (prog->commands) {
            fprintf(out, "\nCommands (`%s COMMAND --help` for one):\n", name);
            for (size_t k = 0; prog->commands[k].name; k++)
                fprintf(out, "  %-12s %s\n", prog->commands[k].name,
                        prog->commands[k].summary ? prog->commands[k].summary : "");
        }
    }
    fprintf(out, "\nOptions (precedence: flag > environment > --config file > default):\n");
    for (size_t i = 0; i < t.n; i++)
        if (t.from[i] == FROM_PROGRAM)
            print_option(out, &t.opts[i], true);
    for (size_t g = 0; prog->groups && prog->groups[g].options; g++) {
        fprintf(out, "\n%s options:\n", prog->groups[g].title ? prog->groups[g].title : "More");
        for (size_t i = 0; i < t.n; i++)
            if (t.from[i] == (int)g)
                print_option(out, &t.opts[i], true);
    }
    fprintf(out, "\nCommon options:\n");
    for (size_t i = 0; i < t.n; i++)
        if (t.from[i] == FROM_BUILTIN)
            print_option(out, &t.opts[i], true);
    fprintf(out, "  -h, --help\n      show this help and exit\n"
                 "  --version\n      print the version and exit\n");
    fprintf(out, "\nDurations: 200ms, 2s, 1m30s, 2h. Sizes: 4096, 64KiB, 1MB. "
                 "Bools: true/false, 1/0, yes/no.\n");
    if (prog->epilog)
        fprintf(out, "\n%s", prog->epilog());
    table_free(&t);
}

void config_print_help(const struct config_program *prog, FILE *out)
{
    print_help(prog, -1, out);
}

void config_print_command_help(const struct config_program *prog, int command, FILE *out)
{
    int n = 0;

    while (prog->commands && prog->commands[n].name)
        n++;
    print_help(prog, command >= 0 && command < n ? command : -1, out);
}

/* ---- parsing ----------------------------------------------------------- */

static void free_targets(const struct config_option *opts)
{
    for (size_t i = 0; opts && opts[i].name; i++) {
        const struct config_option *o = &opts[i];
        if (o->type == CONFIG_STRING) {
            free(*o->target.str);
            *o->target.str = NULL;
        } else if (o->type == CONFIG_STRLIST) {
            config_list_free(o->target.list);
        }
    }
}

void config_free(const struct config_program *prog)
{
    free_targets(prog->options);
    for (size_t g = 0; prog->groups && prog->groups[g].options; g++)
        free_targets(prog->groups[g].options);
    for (size_t c = 0; prog->commands && prog->commands[c].name; c++)
        free_targets(prog->commands[c].options);
}

/* What scan_args found besides option values. */
struct scan {
    int first_arg;
    int cmd; /* command word given, -1: none */
    bool help, version;
};

/* A positional argument: the end of options, or (with commands) the
 * command word. 1: stop scanning, 0: go on, -EINVAL. */
static int scan_positional(const struct config_program *prog, char **argv, int *i, struct scan *sc,
                           char *err, size_t errlen)
{
    char names[256];
    const char *a = argv[*i];

    if (!prog->commands)
        return 1;
    if (sc->cmd >= 0) {
        errmsg_set(err, errlen, "unexpected argument '%s' after '%s' (see %s --help)", a,
                   prog->commands[sc->cmd].name, prog->commands[sc->cmd].name);
        return -EINVAL;
    }
    sc->cmd = command_find(prog, a);
    if (sc->cmd < 0) {
        command_names(prog, names, sizeof(names));
        errmsg_set(err, errlen, "unknown command '%s' (%s)", a, names);
        return -EINVAL;
    }
    if (prog->commands[sc->cmd].own_args) {
        (*i)++; /* the rest is the command's */
        return 1;
    }
    return 0;
}

/* Scan argv into per-option sources. 0, or -EINVAL/-ENOMEM. */
static int scan_args(const struct config_program *prog, const struct table *t, int argc,
                     char **argv, struct source *src, struct scan *sc, char *err, size_t errlen)
{
    int i, rc;

    sc->cmd = -1;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *name, *eq, *val = NULL;
        const struct config_option *o;
        size_t idx, len;
        bool negated = false;
        int other;

        if (strcmp(a, "--") == 0) {
            i++;
            if (prog->commands && i < argc) {
                errmsg_set(err, errlen, "unexpected argument '%s' after '--'", argv[i]);
                return -EINVAL;
            }
            break;
        }
        if (a[0] != '-' || a[1] == '\0') {
            rc = scan_positional(prog, argv, &i, sc, err, errlen);
            if (rc < 0)
                return rc;
            if (rc > 0)
                break;
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            sc->help = true;
            continue;
        }
        if (strcmp(a, "--" OPT_VERSION) == 0) {
            sc->version = true;
            continue;
        }
        if (a[1] != '-') {
            errmsg_set(err, errlen, "unknown option '%s' (see --help)", a);
            return -EINVAL;
        }
        name = a + 2;
        eq = strchr(name, '=');
        len = eq ? (size_t)(eq - name) : strlen(name);
        o = table_find(t, name, len, sc->cmd, &idx, &other);
        if (!o && len > 3 && strncmp(name, "no-", 3) == 0 && !eq) {
            o = table_find(t, name + 3, len - 3, sc->cmd, &idx, NULL);
            if (o && o->type != CONFIG_BOOL)
                o = NULL;
            negated = o != NULL;
        }
        if (!o) {
            if (other >= 0)
                errmsg_set(err, errlen, "option '--%.*s' belongs to '%s' and goes after it",
                           (int)len, name, prog->commands[other].name);
            else
                errmsg_set(err, errlen, "unknown option '--%.*s' (see --help)", (int)len, name);
            return -EINVAL;
        }
        if (eq) {
            val = eq + 1;
        } else if (negated) {
            val = "false";
        } else if (o->type == CONFIG_BOOL) {
            val = "true"; /* a bare bool flag never swallows the next argument */
        } else if (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0) {
            val = argv[++i];
        } else {
            errmsg_set(err, errlen, "option '--%s' needs a value (%s)", o->name,
                       config_type_word(o->type));
            return -EINVAL;
        }
        src[idx].flag_text = val;
        src[idx].flag_seen = true;
        if (o->type == CONFIG_STRLIST) {
            const char **l = realloc(src[idx].flag_list, (src[idx].flag_list_n + 1) * sizeof(*l));
            if (!l)
                return -ENOMEM;
            l[src[idx].flag_list_n++] = val;
            src[idx].flag_list = l;
        }
    }
    sc->first_arg = i > argc ? argc : i;
    return 0;
}

/* The environment text of o and the variable it came from: DROVER_<NAME>,
 * DROVER_<ALIAS>, then env_alt. NULL when none is set. */
static const char *env_text(const struct config_option *o, char *var, size_t varlen)
{
    const char *text;

    config_env_name(o->name, var, varlen);
    if ((text = getenv(var)) != NULL)
        return text;
    if (o->alias) {
        config_env_name(o->alias, var, varlen);
        if ((text = getenv(var)) != NULL)
            return text;
    }
    if (o->env_alt && (text = getenv(o->env_alt)) != NULL) {
        snprintf(var, varlen, "%s", o->env_alt);
        return text;
    }
    return NULL;
}

/* The config file's value of o, under its name or its alias (not both). */
static int file_value(const struct config_option *o, const json_t *file, const char *file_path,
                      json_t **out, const char **key, char *err, size_t errlen)
{
    json_t *a = o->alias ? json_object_get(file, o->alias) : NULL;

    *out = json_object_get(file, o->name);
    *key = o->name;
    if (*out && a) {
        errmsg_set(err, errlen, "%s: keys \"%s\" and \"%s\" are the same option: keep one",
                   file_path, o->name, o->alias);
        return -EINVAL;
    }
    if (a) {
        *out = a;
        *key = o->alias;
    }
    return 0;
}

/* Resolve one option from its sources in precedence order and store it.
 * flag_only: a command's own option (no environment, no file). */
static int resolve(const struct config_option *o, const struct source *s, bool flag_only,
                   const json_t *file, const char *file_path, char *err, size_t errlen)
{
    char env[128], why[256];
    const char *text = NULL, *key = NULL;
    json_t *jv = NULL;
    union config_value v;
    int rc;

    memset(&v, 0, sizeof(v));
    why[0] = '\0';
    if (!s->flag_seen && !flag_only) {
        text = env_text(o, env, sizeof(env));
        if (!text && file && (rc = file_value(o, file, file_path, &jv, &key, err, errlen)) < 0)
            return rc;
    }
    if (s->flag_seen) {
        if (o->type == CONFIG_STRLIST) {
            for (size_t k = 0; k < s->flag_list_n; k++) {
                rc = config_list_push_csv(&v.list, s->flag_list[k]);
                if (rc < 0) {
                    config_list_free(&v.list);
                    return rc;
                }
            }
            rc = 0;
        } else {
            rc = config_value_from_text(o, s->flag_text, &v, why, sizeof(why));
        }
        if (rc < 0) {
            errmsg_set(err, errlen, "--%s: %s", o->name, why);
            return rc;
        }
    } else if (text) {
        rc = config_value_from_text(o, text, &v, why, sizeof(why));
        if (rc < 0) {
            errmsg_set(err, errlen, "%s: %s", env, why);
            return rc;
        }
    } else if (jv) {
        rc = config_value_from_json(o, jv, &v, why, sizeof(why));
        if (rc < 0) {
            errmsg_set(err, errlen, "%s: key \"%s\": %s", file_path, key, why);
            return rc;
        }
    } else if (o->def) {
        rc = config_value_from_text(o, o->def, &v, why, sizeof(why));
        if (rc < 0) {
            errmsg_set(err, errlen, "config: default of --%s: %s", o->name, why);
            return rc;
        }
    } else {
        config_value_store_unset(o);
        return 0;
    }
    config_value_store(o, &v);
    config_value_free(o->type, &v);
    return 0;
}

/* Load the --config file: a JSON object whose keys are global options. */
static int load_file(const struct config_program *prog, const struct table *t, const char *path,
                     json_t **out, char *err, size_t errlen)
{
    char jerr[512];
    const char *key;
    json_t *val;
    int rc = json_load_file_strict(path, out, jerr, sizeof(jerr));

    if (rc < 0) {
        errmsg_set(err, errlen, "config file: %s", jerr);
        return -EINVAL;
    }
    if (!json_is_object(*out)) {
        errmsg_set(err, errlen, "%s: expected a JSON object of options, got %s", path,
                   json_type_desc(*out));
        return -EINVAL;
    }
    json_object_foreach(*out, key, val)
    {
        size_t idx;
        if (!table_find(t, key, strlen(key), -1, &idx, NULL) || idx == t->i_config) {
            errmsg_set(err, errlen, "%s: unknown key \"%s\" (not an option of %s)", path, key,
                       prog->name ? prog->name : "this program");
            return -EINVAL;
        }
    }
    return 0;
}

int config_parse_command(const struct config_program *prog, int argc, char **argv, int *command,
                         int *first_arg, char *err, size_t errlen)
{
    char *config_path = NULL, *log_format = NULL;
    enum log_level level = LOGL_INFO;
    enum log_format format;
    struct source *src = NULL;
    json_t *file = NULL;
    struct table t = {0};
    struct scan sc = {.first_arg = argc, .cmd = -1};
    int rc;

    if (first_arg)
        *first_arg = argc;
    if (command)
        *command = -1;
    if (errlen)
        err[0] = '\0';
    rc = table_build(prog, &t, &config_path, &level, &log_format, err, errlen);
    if (rc < 0)
        return rc;
    src = calloc(t.n, sizeof(*src));
    if (!src) {
        rc = -ENOMEM;
        goto out;
    }
    rc = scan_args(prog, &t, argc, argv, src, &sc, err, errlen);
    if (rc < 0)
        goto out;
    if (first_arg)
        *first_arg = sc.first_arg;
    if (command)
        *command = sc.cmd;
    if (sc.help || sc.version) {
        if (sc.help)
            print_help(prog, sc.cmd, stdout);
        else
            drover_version_print(prog->name, stdout);
        fflush(stdout);
        rc = CONFIG_HELP_SHOWN;
        goto out;
    }

    /* The config file's own location: flag, then environment. */
    rc = resolve(&t.opts[t.i_config], &src[t.i_config], false, NULL, NULL, err, errlen);
    if (rc < 0)
        goto out;
    if (config_path && *config_path) {
        rc = load_file(prog, &t, config_path, &file, err, errlen);
        if (rc < 0)
            goto out;
    }
    for (size_t i = 0; i < t.n; i++) {
        if (i == t.i_config)
            continue; /* done above */
        rc = resolve(&t.opts[i], &src[i], t.cmd[i] >= 0, file, config_path, err, errlen);
        if (rc < 0)
            goto out;
    }
    if (log_parse_format(log_format, &format) < 0) {
        errmsg_set(err, errlen, "config: --log-format '%s': want auto, logfmt, journal or json",
                   log_format ? log_format : "");
        rc = -EINVAL;
        goto out;
    }
    log_set_level(level);
    log_set_format(format);
    rc = 0;
out:
    if (rc < 0 && rc != -EINVAL && errlen && !err[0])
        errmsg_set(err, errlen, "config: %s", strerror(-rc));
    if (rc < 0)
        config_free(prog);
    if (src) {
        for (size_t i = 0; i < t.n; i++)
            free(src[i].flag_list);
    }
    free(src);
    free(config_path);
    free(log_format);
    json_decref(file);
    table_free(&t);
    return rc;
}

int config_parse(const struct config_program *prog, int argc, char **argv, int *first_arg,
                 char *err, size_t errlen)
{
    return config_parse_command(prog, argc, argv, NULL, first_arg, err, errlen);
}
