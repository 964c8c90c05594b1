/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config: declarative command-line / environment / JSON-file options for
 * every drover daemon and tool. A program describes its options once in a
 * table of struct config_option (name, type, target variable, default,
 * help); config_parse() fills the targets from, in order of precedence:
 *
 *   1. command-line flags      --consul-addr VALUE  or  --consul-addr=VALUE
 *   2. environment variables   DROVER_CONSUL_ADDR
 *   3. a JSON config file      --config FILE (or DROVER_CONFIG), key "consul-addr"
 *   4. the built-in default
 *
 * An option may also have a former name (alias: flag, DROVER_ variable
 * and file key, kept when an option is renamed) and another tool's
 * environment variable read after drover's own (env_alt: CONSUL_HTTP_ADDR).
 * Options shared by several programs are declared once as a struct
 * config_group (consul_options.h) that each program lists in .groups.
 *
 * Every program also gets --help, --version, --config and --log-level
 * (wired to log_set_level). Without .commands, parsing stops at the first
 * positional argument or after "--"; its index is returned so the program
 * parses the rest itself (`droverctl drain NODE --reason x`). With
 * .commands, the first positional argument must be one of the command
 * words; options may come before and after it, the command's own options
 * (flags only) after it, and `PROGRAM COMMAND --help` shows that command's
 * help. Errors never exit: config_parse returns -EINVAL and writes a
 * message naming the input and its source ("DROVER_WAIT_MIN: bad duration
 * 'x'") into a caller buffer.
 *
 * The duration/size/bool parsers (config_value.c) are public so other
 * modules reuse them.
 */
#ifndef DROVER_CONFIG_H
#define DROVER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "log.h"

enum config_type {
    CONFIG_STRING,   /* char *           (malloc'd, freed by config_free) */
    CONFIG_INT,      /* int64_t, checked against [min, max] unless both 0 */
    CONFIG_BOOL,     /* bool: flag alone = true; true/false/1/0/yes/no/on/off */
    CONFIG_DURATION, /* int64_t milliseconds: "200ms", "2s", "1m30s", "2h", "1.5s" */
    CONFIG_DOUBLE,   /* double */
    CONFIG_STRLIST,  /* struct config_strlist: repeatable flag; env/file comma list or JSON array */
    CONFIG_LOGLEVEL, /* enum log_level: debug|info|warn|error */
    CONFIG_SIZE,     /* uint64_t bytes: "512", "64KiB", "1MB", "2G" */
};

/* A list of strings (CONFIG_STRLIST). Items are malloc'd and owned by the
 * config module until config_free(). */
struct config_strlist {
    char **items;
    size_t count;
};

struct config_option {
    const char *name; /* "consul-addr": flag --consul-addr, env DROVER_CONSUL_ADDR */
    enum config_type type;
    union {
        char **str;
        int64_t *i64; /* CONFIG_INT and CONFIG_DURATION (ms) */
        bool *b;
        double *d;
        struct config_strlist *list;
        enum log_level *level;
        uint64_t *size;
    } target;
    const char *def;     /* default in the option's text syntax; NULL = unset (NULL/0/empty) */
    const char *help;    /* one line for --help */
    int64_t min, max;    /* CONFIG_INT (and DURATION, in ms) range; both 0 = unchecked */
    const char *metavar; /* word shown in --help ("ADDR"); NULL = derived from type */
    const char *alias;   /* former name, still read as flag, DROVER_ variable and file key */
    const char *env_alt; /* read after DROVER_<NAME> (another tool's, "CONSUL_HTTP_ADDR") */
};

/* Table helpers: { CONFIG_OPT_STRING("consul-addr", &opt.consul_addr,
 * "127.0.0.1:8500", "Consul HTTP address"), ..., CONFIG_OPT_END } */
#define CONFIG_OPT_STRING(name_, ptr_, def_, help_)                                                \
    {                                                                                              \
        .name = (name_), .type = CONFIG_STRING, .target.str = (ptr_), .def = (def_),               \
        .help = (help_)                                                                            \
    }
#define CONFIG_OPT_INT(name_, ptr_, def_, lo_, hi_, help_)                                         \
    {                                                                                              \
        .name = (name_), .type = CONFIG_INT, .target.i64 = (ptr_), .def = (def_), .help = (help_), \
        .min = (lo_), .max = (hi_)                                                                 \
    }
#define CONFIG_OPT_BOOL(name_, ptr_, def_, help_)                                                  \
    {                                                                                              \
        .name = (name_), .type = CONFIG_BOOL, .target.b = (ptr_), .def = (def_), .help = (help_)   \
    }
#define CONFIG_OPT_DURATION(name_, ptr_, def_, help_)                                              \
    {                                                                                              \
        .name = (name_), .type = CONFIG_DURATION, .target.i64 = (ptr_), .def = (def_),             \
        .help = (help_)                                                                            \
    }
#define CONFIG_OPT_DOUBLE(name_, ptr_, def_, help_)                                                \
    {                                                                                              \
        .name = (name_), .type = CONFIG_DOUBLE, .target.d = (ptr_), .def = (def_), .help = (help_) \
    }
#define CONFIG_OPT_STRLIST(name_, ptr_, def_, help_)                                               \
    {                                                                                              \
        .name = (name_), .type = CONFIG_STRLIST, .target.list = (ptr_), .def = (def_),             \
        .help = (help_)                                                                            \
    }
#define CONFIG_OPT_SIZE(name_, ptr_, def_, help_)                                                  \
    {                                                                                              \
        .name = (name_), .type = CONFIG_SIZE, .target.size = (ptr_), .def = (def_),                \
        .help = (help_)                                                                            \
    }
#define CONFIG_OPT_END                                                                             \
    {                                                                                              \
        .name = NULL                                                                               \
    }

/* Options several programs share (the Consul block), declared once. */
struct config_group {
    const char *title;                   /* heading in --help: "Consul" */
    const struct config_option *options; /* terminated by CONFIG_OPT_END; NULL ends a list */
};
#define CONFIG_GROUP_END                                                                           \
    {                                                                                              \
        .title = NULL, .options = NULL                                                             \
    }

/* A command word: `drover-watcher render --diff`. */
struct config_command {
    const char *name;       /* "render" */
    const char *args_usage; /* shown after the word in usage ("--diff | --out DIR"); may be NULL */
    const char *summary;    /* one line in the program's and the command's --help */
    /* The command's own options: flags after the word only (no environment,
     * no config file key), defaults applied whichever command runs. May be
     * NULL. Names may repeat across commands, not with global options. */
    const struct config_option *options;
    /* Everything after the word belongs to the command, which parses it
     * itself (first_arg points right after the word); options and --help
     * there are not looked at. */
    bool own_args;
};
#define CONFIG_COMMAND_END                                                                         \
    {                                                                                              \
        .name = NULL                                                                               \
    }

struct config_program {
    const char *name;                      /* "drover-watcher", shown in usage */
    const char *summary;                   /* one line shown under usage; may be NULL */
    const char *args_usage;                /* e.g. "[render [--diff]]"; NULL = no positional args */
    const struct config_option *options;   /* terminated by CONFIG_OPT_END */
    const struct config_group *groups;     /* ended by CONFIG_GROUP_END; NULL = none */
    const struct config_command *commands; /* ended by CONFIG_COMMAND_END; NULL = none */
    const char *(*epilog)(void);           /* text printed at the end of --help; NULL = none */
};

/* config_parse result when --help or --version was given: the text was
 * printed to stdout and the caller should exit 0 without doing anything
 * else. */
#define CONFIG_HELP_SHOWN 1

/*
 * Fill every option target of prog from argv, the environment (getenv),
 * the JSON file named by --config / DROVER_CONFIG, and defaults. Also
 * applies the built-in --log-level with log_set_level().
 *
 * *first_arg (may be NULL) receives the index in argv of the first
 * positional argument (argc if none); a "--" is skipped.
 * Returns 0, CONFIG_HELP_SHOWN, or -EINVAL / -ENOMEM with a message in
 * err[0..errlen). Targets must be zero or hold values from an earlier
 * config_parse of the same table that was released with config_free().
 */
int config_parse(const struct config_program *prog, int argc, char **argv, int *first_arg,
                 char *err, size_t errlen);

/* config_parse for a program with .commands: *command (may be NULL)
 * receives the index in prog->commands of the command word given, or -1
 * when none was (the program's default). An unknown command word, or a
 * positional argument after a command without own_args, is -EINVAL. */
int config_parse_command(const struct config_program *prog, int argc, char **argv, int *command,
                         int *first_arg, char *err, size_t errlen);

/* Write the --help text to out: usage, summary, commands, then every
 * option (groups under their titles) with metavar, help, default and
 * environment variables. command >= 0: that command's help (its usage,
 * summary and own options first, then the global options). */
void config_print_help(const struct config_program *prog, FILE *out);
void config_print_command_help(const struct config_program *prog, int command, FILE *out);

/* Free strings and lists config_parse allocated into the targets (of the
 * program's options, groups and commands) and reset them to NULL / empty. */
void config_free(const struct config_program *prog);

/* Environment variable name of an option: "consul-addr" -> "DROVER_CONSUL_ADDR". */
void config_env_name(const char *option, char *buf, size_t buflen);

/* ---- config_value.c ---- */

/* "250ms", "2s", "1m30s", "2h", "1.5s", "0"; units ms s m h d, one or
 * more terms, no sign. 0 or -EINVAL (bad syntax) / -ERANGE (overflow). */
int config_parse_duration_ms(const char *text, int64_t *out_ms);
/* Format ms the way config_parse_duration_ms reads it ("1m30s", "250ms"). */
void config_format_duration(int64_t ms, char *buf, size_t buflen);
/* Bytes: "4096", "64k"/"64KiB" (1024), "1KB" (1000), M/MiB/MB, G/GiB/GB, T.
 * 0, -EINVAL, -ERANGE. */
int config_parse_size(const char *text, uint64_t *out);
/* true/false, 1/0, yes/no, on/off (case-insensitive). 0 or -EINVAL. */
int config_parse_bool(const char *text, bool *out);

#endif
