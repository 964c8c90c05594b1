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
 * Every program also gets --help, --config and --log-level (wired to
 * log_set_level). Parsing stops at the first positional argument or after
 * "--"; its index is returned so subcommands (`droverctl render --diff`)
 * can parse the rest themselves. Errors never exit: config_parse returns
 * -EINVAL and writes a message naming the input and its source
 * ("DROVER_WAIT_MIN: bad duration 'x'") into a caller buffer.
 *
 * The duration/size/bool parsers are public so other modules reuse them.
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

struct config_program {
    const char *name;                    /* "drover-watcher", shown in usage */
    const char *summary;                 /* one line shown under usage; may be NULL */
    const char *args_usage;              /* e.g. "[render [--diff]]"; NULL = no positional args */
    const struct config_option *options; /* terminated by CONFIG_OPT_END */
};

/* config_parse result when --help was given: help was printed to stdout
 * and the caller should exit 0. */
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

/* Write the --help text to out: usage, summary, then every option with
 * metavar, help, default and environment variable name. */
void config_print_help(const struct config_program *prog, FILE *out);

/* Free strings and lists config_parse allocated into the targets and
 * reset them to NULL / empty. */
void config_free(const struct config_program *prog);

/* Environment variable name of an option: "consul-addr" -> "DROVER_CONSUL_ADDR". */
void config_env_name(const char *option, char *buf, size_t buflen);

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
