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

#include "errmsg.h"
#include "json_util.h"

/* Built-in options every program has, handled here rather than in the
 * program's table so they behave identically everywhere. */
#define OPT_CONFIG    "config"
#define OPT_LOG_LEVEL "log-level"
#define OPT_HELP      "help"

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

/* ---- scalar parsers ---------------------------------------------------- */

int config_parse_bool(const char *text, bool *out)
{
    static const char *const yes[] = {"true", "1", "yes", "on"};
    static const char *const no[] = {"false", "0", "no", "off"};

    if (!text)
        return -EINVAL;
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(text, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(text, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -EINVAL;
}

int config_parse_duration_ms(const char *text, int64_t *out_ms)
{
    static const struct {
        const char *name;
        int64_t ns;
    } units[] = {
        /* "ms" before "m" so the longest unit name matches first. */
        {"ms", 1000000LL},      {"s", 1000000000LL},     {"m", 60000000000LL},
        {"h", 3600000000000LL}, {"d", 86400000000000LL},
    };
    /* Sum in nanoseconds so "1.5s" and "0.25m" stay exact; __int128
     * leaves room to detect overflow instead of wrapping. */
    __int128 total = 0;
    const __int128 limit = (__int128)INT64_MAX * 1000000;
    const char *p = text;

    if (!text || !*text)
        return -EINVAL;
    if (strcmp(text, "0") == 0) {
        *out_ms = 0;
        return 0;
    }
    while (*p) {
        __int128 whole = 0, frac = 0, scale = 1;
        int digits = 0;

        if (!isdigit((unsigned char)*p) && *p != '.')
            return -EINVAL;
        while (isdigit((unsigned char)*p)) {
            whole = whole * 10 + (*p++ - '0');
            digits++;
            if (whole > limit)
                return -ERANGE;
        }
        if (*p == '.') {
            p++;
            while (isdigit((unsigned char)*p)) {
                if (scale < 1000000000000000000LL) { /* ignore digits beyond 1e-18 */
                    frac = frac * 10 + (*p - '0');
                    scale *= 10;
                }
                p++;
                digits++;
            }
        }
        if (digits == 0)
            return -EINVAL;
        size_t u;
        for (u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
            size_t n = strlen(units[u].name);
            if (strncmp(p, units[u].name, n) == 0 && !isalpha((unsigned char)p[n]))
                break;
        }
        if (u == sizeof(units) / sizeof(units[0]))
            return -EINVAL; /* missing or unknown unit */
        p += strlen(units[u].name);
        if (whole > limit / units[u].ns)
            return -ERANGE;
        total += whole * units[u].ns + frac * units[u].ns / scale;
        if (total > limit)
            return -ERANGE;
    }
    /* Round down to whole milliseconds: nothing in drover needs finer. */
    *out_ms = (int64_t)(total / 1000000);
    return 0;
}

void config_format_duration(int64_t ms, char *buf, size_t buflen)
{
    static const struct {
        const char *name;
        int64_t ms;
    } units[] = {{"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1}};
    size_t o = 0;

    if (buflen == 0)
        return;
    buf[0] = '\0';
    if (ms <= 0) {
        snprintf(buf, buflen, "%s", ms == 0 ? "0" : "invalid");
        return;
    }
    for (size_t u = 0; u < sizeof(units) / sizeof(units[0]) && ms > 0; u++) {
        int64_t n = ms / units[u].ms;
        if (n == 0)
            continue;
        ms -= n * units[u].ms;
        int w = snprintf(buf + o, buflen - o, "%" PRId64 "%s", n, units[u].name);
        if (w < 0 || (size_t)w >= buflen - o)
            return;
        o += (size_t)w;
    }
}

int config_parse_size(const char *text, uint64_t *out)
{
    static const struct {
        const char *name;
        uint64_t mult;
    } units[] = {
        {"", 1},
        {"b", 1},
        {"k", 1ULL << 10},
        {"ki", 1ULL << 10},
        {"kib", 1ULL << 10},
        {"kb", 1000ULL},
        {"m", 1ULL << 20},
        {"mi", 1ULL << 20},
        {"mib", 1ULL << 20},
        {"mb", 1000000ULL},
        {"g", 1ULL << 30},
        {"gi", 1ULL << 30},
        {"gib", 1ULL << 30},
        {"gb", 1000000000ULL},
        {"t", 1ULL << 40},
        {"ti", 1ULL << 40},
        {"tib", 1ULL << 40},
        {"tb", 1000000000000ULL},
    };
    uint64_t n = 0;
    const char *p = text;

    if (!text || !isdigit((unsigned char)*p))
        return -EINVAL;
    for (; isdigit((unsigned char)*p); p++) {
        if (n > (UINT64_MAX - 9) / 10)
            return -ERANGE;
        n = n * 10 + (uint64_t)(*p - '0');
    }
    for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
        if (strcasecmp(p, units[u].name) == 0) {
            if (n != 0 && units[u].mult > UINT64_MAX / n)
                return -ERANGE;
            *out = n * units[u].mult;
            return 0;
        }
    }
    return -EINVAL;
}

/* ---- option values ---------------------------------------------------- */

/* One parsed value before it is stored into the target. */
union value {
    char *str;
    int64_t i64;
    bool b;
    double d;
    struct config_strlist list;
    enum log_level level;
    uint64_t size;
};

static const char *type_word(enum config_type t)
{
    switch (t) {
    case CONFIG_STRING:
        return "string";
    case CONFIG_INT:
        return "integer";
    case CONFIG_BOOL:
        return "bool";
    case CONFIG_DURATION:
        return "duration";
    case CONFIG_DOUBLE:
        return "number";
    case CONFIG_STRLIST:
        return "list";
    case CONFIG_LOGLEVEL:
        return "log level";
    case CONFIG_SIZE:
        return "size";
    }
    return "value";
}

static const char *metavar(const struct config_option *o)
{
    if (o->metavar)
        return o->metavar;
    switch (o->type) {
    case CONFIG_STRING:
        return "STRING";
    case CONFIG_INT:
        return "INT";
    case CONFIG_BOOL:
        return "BOOL";
    case CONFIG_DURATION:
        return "DURATION";
    case CONFIG_DOUBLE:
        return "NUMBER";
    case CONFIG_STRLIST:
        return "LIST";
    case CONFIG_LOGLEVEL:
        return "LEVEL";
    case CONFIG_SIZE:
        return "SIZE";
    }
    return "VALUE";
}

static void list_free(struct config_strlist *l)
{
    for (size_t i = 0; i < l->count; i++)
        free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->count = 0;
}

static int list_push(struct config_strlist *l, const char *s, size_t len)
{
    char **items = realloc(l->items, (l->count + 1) * sizeof(*items));
    if (!items)
        return -ENOMEM;
    l->items = items;
    items[l->count] = strndup(s, len);
    if (!items[l->count])
        return -ENOMEM;
    l->count++;
    return 0;
}

/* Append the comma-separated items of text, trimmed, skipping empty ones. */
static int list_push_csv(struct config_strlist *l, const char *text)
{
    const char *p = text;

    while (*p) {
        const char *end = strchr(p, ',');
        const char *stop = end ? end : p + strlen(p);
        const char *a = p, *b = stop;
        while (a < b && isspace((unsigned char)*a))
            a++;
        while (b > a && isspace((unsigned char)b[-1]))
            b--;
        if (b > a) {
            int rc = list_push(l, a, (size_t)(b - a));
            if (rc < 0)
                return rc;
        }
        if (!end)
            break;
        p = end + 1;
    }
    return 0;
}

static void value_free(enum config_type t, union value *v)
{
    if (t == CONFIG_STRING) {
        free(v->str);
        v->str = NULL;
    } else if (t == CONFIG_STRLIST) {
        list_free(&v->list);
    }
}

/* Parse option text into v. On failure writes the reason (without the
 * source) into why. */
static int parse_text(const struct config_option *o, const char *text, union value *v, char *why,
                      size_t whylen)
{
    char *end;
    int rc;

    memset(v, 0, sizeof(*v));
    switch (o->type) {
    case CONFIG_STRING:
        v->str = strdup(text);
        return v->str ? 0 : -ENOMEM;
    case CONFIG_INT: {
        errno = 0;
        long long n = strtoll(text, &end, 0);
        if (!*text || *end || errno) {
            errmsg_set(why, whylen, "bad integer '%s'", text);
            return -EINVAL;
        }
        if ((o->min || o->max) && (n < o->min || n > o->max)) {
            errmsg_set(why, whylen, "%lld out of range %" PRId64 "..%" PRId64, n, o->min, o->max);
            return -EINVAL;
        }
        v->i64 = n;
        return 0;
    }
    case CONFIG_BOOL:
        if (config_parse_bool(text, &v->b) < 0) {
            errmsg_set(why, whylen, "bad bool '%s' (want true/false/1/0/yes/no)", text);
            return -EINVAL;
        }
        return 0;
    case CONFIG_DURATION:
        rc = config_parse_duration_ms(text, &v->i64);
        if (rc < 0) {
            errmsg_set(why, whylen, "%s duration '%s' (want e.g. 200ms, 2s, 1m30s, 2h)",
                       rc == -ERANGE ? "too large" : "bad", text);
            return -EINVAL;
        }
        if ((o->min || o->max) && (v->i64 < o->min || v->i64 > o->max)) {
            char lo[32], hi[32];
            config_format_duration(o->min, lo, sizeof(lo));
            config_format_duration(o->max, hi, sizeof(hi));
            errmsg_set(why, whylen, "duration '%s' out of range %s..%s", text, lo, hi);
            return -EINVAL;
        }
        return 0;
    case CONFIG_DOUBLE:
        errno = 0;
        v->d = strtod(text, &end);
        if (!*text || *end || errno || isspace((unsigned char)*text)) {
            errmsg_set(why, whylen, "bad number '%s'", text);
            return -EINVAL;
        }
        return 0;
    case CONFIG_STRLIST:
        rc = list_push_csv(&v->list, text);
        if (rc < 0)
            list_free(&v->list);
        return rc;
    case CONFIG_LOGLEVEL:
        if (log_parse_level(text, &v->level) < 0) {
            errmsg_set(why, whylen, "bad log level '%s' (want debug, info, warn or error)", text);
            return -EINVAL;
        }
        return 0;
    case CONFIG_SIZE:
        rc = config_parse_size(text, &v->size);
        if (rc < 0) {
            errmsg_set(why, whylen, "%s size '%s' (want e.g. 4096, 64KiB, 1MB)",
                       rc == -ERANGE ? "too large" : "bad", text);
            return -EINVAL;
        }
        return 0;
    }
    errmsg_set(why, whylen, "unsupported option type");
    return -EINVAL;
}

/* Parse a JSON config-file value. Strings always go through the text
 * parser (so "2s" and "64KiB" work); native JSON types are taken where
 * they mean the same thing. */
static int parse_json(const struct config_option *o, const json_t *j, union value *v, char *why,
                      size_t whylen)
{
    char num[64];

    memset(v, 0, sizeof(*v));
    if (json_is_string(j))
        return parse_text(o, json_string_value(j), v, why, whylen);
    switch (o->type) {
    case CONFIG_INT:
    case CONFIG_SIZE:
        if (json_is_integer(j)) {
            if (o->type == CONFIG_SIZE && json_integer_value(j) < 0)
                break;
            snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(j));
            return parse_text(o, num, v, why, whylen);
        }
        break;
    case CONFIG_BOOL:
        if (json_is_boolean(j)) {
            v->b = json_is_true(j);
            return 0;
        }
        break;
    case CONFIG_DOUBLE:
        if (json_is_number(j)) {
            v->d = json_number_value(j);
            return 0;
        }
        break;
    case CONFIG_STRLIST:
        if (json_is_array(j)) {
            size_t i;
            json_t *item;
            json_array_foreach(j, i, item)
            {
                if (!json_is_string(item)) {
                    errmsg_set(why, whylen, "item %zu: expected string, got %s", i,
                               json_type_desc(item));
                    list_free(&v->list);
                    return -EINVAL;
                }
                if (list_push(&v->list, json_string_value(item), json_string_length(item)) < 0) {
                    list_free(&v->list);
                    return -ENOMEM;
                }
            }
            return 0;
        }
        break;
    default:
        break;
    }
    errmsg_set(why, whylen, "expected %s%s, got %s", type_word(o->type),
               o->type == CONFIG_STRLIST    ? " (array of strings or comma-separated string)"
               : o->type == CONFIG_DURATION ? " string like \"2s\""
                                            : "",
               json_type_desc(j));
    return -EINVAL;
}

static void store(const struct config_option *o, union value *v)
{
    switch (o->type) {
    case CONFIG_STRING:
        free(*o->target.str);
        *o->target.str = v->str;
        v->str = NULL;
        break;
    case CONFIG_INT:
    case CONFIG_DURATION:
        *o->target.i64 = v->i64;
        break;
    case CONFIG_BOOL:
        *o->target.b = v->b;
        break;
    case CONFIG_DOUBLE:
        *o->target.d = v->d;
        break;
    case CONFIG_STRLIST:
        list_free(o->target.list);
        *o->target.list = v->list;
        v->list.items = NULL;
        v->list.count = 0;
        break;
    case CONFIG_LOGLEVEL:
        *o->target.level = v->level;
        break;
    case CONFIG_SIZE:
        *o->target.size = v->size;
        break;
    }
}

/* Clear a target to its "unset" value (no default given). */
static void store_unset(const struct config_option *o)
{
    union value v;

    memset(&v, 0, sizeof(v));
    if (o->type == CONFIG_LOGLEVEL)
        v.level = LOGL_INFO;
    store(o, &v);
}

/* ---- the table --------------------------------------------------------- */

struct table {
    const struct config_option *opts; /* user options then built-ins */
    size_t n;
    struct config_option *owned;
};

static int table_build(const struct config_program *prog, struct table *t, char **config_path,
                       enum log_level *level, char *err, size_t errlen)
{
    size_t n = 0;

    while (prog->options && prog->options[n].name)
        n++;
    t->owned = calloc(n + 2, sizeof(*t->owned));
    if (!t->owned)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const char *name = prog->options[i].name;
        if (strcmp(name, OPT_CONFIG) == 0 || strcmp(name, OPT_LOG_LEVEL) == 0 ||
            strcmp(name, OPT_HELP) == 0 || !*name || name[0] == '-' || strchr(name, '=')) {
            errmsg_set(err, errlen, "config: option name '%s' is reserved or invalid", name);
            free(t->owned);
            return -EINVAL;
        }
        for (size_t k = 0; k < i; k++) {
            if (strcmp(prog->options[k].name, name) == 0) {
                errmsg_set(err, errlen, "config: option '%s' defined twice", name);
                free(t->owned);
                return -EINVAL;
            }
        }
        t->owned[i] = prog->options[i];
    }
    t->owned[n] = (struct config_option){.name = OPT_CONFIG,
                                         .type = CONFIG_STRING,
                                         .target.str = config_path,
                                         .help = "JSON config file (keys are option names)",
                                         .metavar = "FILE"};
    t->owned[n + 1] = (struct config_option){.name = OPT_LOG_LEVEL,
                                             .type = CONFIG_LOGLEVEL,
                                             .target.level = level,
                                             .def = "info",
                                             .help = "log level: debug, info, warn or error"};
    t->opts = t->owned;
    t->n = n + 2;
    return 0;
}

static const struct config_option *table_find(const struct table *t, const char *name, size_t len,
                                              size_t *idx)
{
    for (size_t i = 0; i < t->n; i++) {
        if (strlen(t->opts[i].name) == len && strncmp(t->opts[i].name, name, len) == 0) {
            *idx = i;
            return &t->opts[i];
        }
    }
    return NULL;
}

/* ---- help -------------------------------------------------------------- */

static void print_option(FILE *out, const struct config_option *o, bool has_env)
{
    char env[128];

    if (o->type == CONFIG_BOOL)
        fprintf(out, "  --%s[=BOOL]", o->name);
    else
        fprintf(out, "  --%s %s", o->name, metavar(o));
    if (o->type == CONFIG_STRLIST)
        fprintf(out, " (repeatable)");
    fprintf(out, "\n      %s [%s", o->help ? o->help : "", type_word(o->type));
    if (o->type == CONFIG_INT && (o->min || o->max))
        fprintf(out, " %" PRId64 "..%" PRId64, o->min, o->max);
    fprintf(out, "]\n      default: %s", o->def && *o->def ? o->def : "(none)");
    if (has_env) {
        config_env_name(o->name, env, sizeof(env));
        fprintf(out, "   env: %s", env);
    }
    fprintf(out, "\n");
}

void config_print_help(const struct config_program *prog, FILE *out)
{
    char *config_path = NULL;
    enum log_level level = LOGL_INFO;
    struct table t;

    fprintf(out, "Usage: %s [OPTIONS]%s%s\n", prog->name ? prog->name : "drover",
            prog->args_usage ? " " : "", prog->args_usage ? prog->args_usage : "");
    if (prog->summary)
        fprintf(out, "%s\n", prog->summary);
    fprintf(out, "\nOptions (precedence: flag > DROVER_* environment > --config file > "
                 "default):\n");
    if (table_build(prog, &t, &config_path, &level, NULL, 0) < 0)
        return;
    for (size_t i = 0; i < t.n; i++)
        print_option(out, &t.opts[i], true);
    fprintf(out, "  -h, --help\n      show this help and exit\n");
    fprintf(out, "\nDurations: 200ms, 2s, 1m30s, 2h. Sizes: 4096, 64KiB, 1MB. "
                 "Bools: true/false, 1/0, yes/no.\n");
    free(t.owned);
}

/* ---- parsing ----------------------------------------------------------- */

void config_free(const struct config_program *prog)
{
    for (size_t i = 0; prog->options && prog->options[i].name; i++) {
        const struct config_option *o = &prog->options[i];
        if (o->type == CONFIG_STRING) {
            free(*o->target.str);
            *o->target.str = NULL;
        } else if (o->type == CONFIG_STRLIST) {
            list_free(o->target.list);
        }
    }
}

/* Scan argv into per-option sources. Returns 0, CONFIG_HELP_SHOWN-marker
 * via *help, or -EINVAL/-ENOMEM. */
static int scan_args(const struct table *t, int argc, char **argv, struct source *src,
                     int *first_arg, bool *help, char *err, size_t errlen)
{
    int i;

    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *name, *eq, *val = NULL;
        const struct config_option *o;
        size_t idx, len;
        bool negated = false;

        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (a[0] != '-' || a[1] == '\0')
            break; /* first positional argument */
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            *help = true;
            continue;
        }
        if (a[1] != '-') {
            errmsg_set(err, errlen, "unknown option '%s' (see --help)", a);
            return -EINVAL;
        }
        name = a + 2;
        eq = strchr(name, '=');
        len = eq ? (size_t)(eq - name) : strlen(name);
        o = table_find(t, name, len, &idx);
        if (!o && len > 3 && strncmp(name, "no-", 3) == 0 && !eq) {
            o = table_find(t, name + 3, len - 3, &idx);
            if (o && o->type != CONFIG_BOOL)
                o = NULL;
            negated = o != NULL;
        }
        if (!o) {
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
                       type_word(o->type));
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
    if (first_arg)
        *first_arg = i > argc ? argc : i;
    return 0;
}

/* Resolve one option from its sources in precedence order and store it. */
static int resolve(const struct config_option *o, const struct source *s, const json_t *file,
                   const char *file_path, char *err, size_t errlen)
{
    char env[128], why[256];
    const char *text;
    json_t *jv;
    union value v;
    int rc;

    memset(&v, 0, sizeof(v));
    why[0] = '\0';
    config_env_name(o->name, env, sizeof(env));
    if (s->flag_seen) {
        if (o->type == CONFIG_STRLIST) {
            for (size_t k = 0; k < s->flag_list_n; k++) {
                rc = list_push_csv(&v.list, s->flag_list[k]);
                if (rc < 0) {
                    list_free(&v.list);
                    return rc;
                }
            }
            rc = 0;
        } else {
            rc = parse_text(o, s->flag_text, &v, why, sizeof(why));
        }
        if (rc < 0) {
            errmsg_set(err, errlen, "--%s: %s", o->name, why);
            return rc;
        }
    } else if ((text = getenv(env)) != NULL) {
        rc = parse_text(o, text, &v, why, sizeof(why));
        if (rc < 0) {
            errmsg_set(err, errlen, "%s: %s", env, why);
            return rc;
        }
    } else if (file && (jv = json_object_get(file, o->name)) != NULL) {
        rc = parse_json(o, jv, &v, why, sizeof(why));
        if (rc < 0) {
            errmsg_set(err, errlen, "%s: key \"%s\": %s", file_path, o->name, why);
            return rc;
        }
    } else if (o->def) {
        rc = parse_text(o, o->def, &v, why, sizeof(why));
        if (rc < 0) {
            errmsg_set(err, errlen, "config: default of --%s: %s", o->name, why);
            return rc;
        }
    } else {
        store_unset(o);
        return 0;
    }
    store(o, &v);
    value_free(o->type, &v);
    return 0;
}

int config_parse(const struct config_program *prog, int argc, char **argv, int *first_arg,
                 char *err, size_t errlen)
{
    char *config_path = NULL;
    enum log_level level = LOGL_INFO;
    struct source *src = NULL;
    json_t *file = NULL;
    struct table t = {0};
    bool help = false;
    int rc;

    if (first_arg)
        *first_arg = argc;
    if (errlen)
        err[0] = '\0';
    rc = table_build(prog, &t, &config_path, &level, err, errlen);
    if (rc < 0)
        return rc;
    src = calloc(t.n, sizeof(*src));
    if (!src) {
        rc = -ENOMEM;
        goto out;
    }
    rc = scan_args(&t, argc, argv, src, first_arg, &help, err, errlen);
    if (rc < 0)
        goto out;
    if (help) {
        config_print_help(prog, stdout);
        fflush(stdout);
        rc = CONFIG_HELP_SHOWN;
        goto out;
    }

    /* The config file's own location: flag, then environment. */
    const struct config_option *copt = &t.opts[t.n - 2];
    rc = resolve(copt, &src[t.n - 2], NULL, NULL, err, errlen);
    if (rc < 0)
        goto out;
    if (config_path && *config_path) {
        char jerr[512];
        const char *key;
        json_t *val;

        rc = json_load_file_strict(config_path, &file, jerr, sizeof(jerr));
        if (rc < 0) {
            errmsg_set(err, errlen, "config file: %s", jerr);
            rc = -EINVAL;
            goto out;
        }
        if (!json_is_object(file)) {
            errmsg_set(err, errlen, "%s: expected a JSON object of options, got %s", config_path,
                       json_type_desc(file));
            rc = -EINVAL;
            goto out;
        }
        json_object_foreach(file, key, val)
        {
            size_t idx;
            if (!table_find(&t, key, strlen(key), &idx) || strcmp(key, OPT_CONFIG) == 0) {
                errmsg_set(err, errlen, "%s: unknown key \"%s\" (not an option of %s)", config_path,
                           key, prog->name ? prog->name : "this program");
                rc = -EINVAL;
                goto out;
            }
        }
    }
    for (size_t i = 0; i < t.n; i++) {
        if (i == t.n - 2)
            continue; /* --config itself, done above */
        rc = resolve(&t.opts[i], &src[i], file, config_path, err, errlen);
        if (rc < 0)
            goto out;
    }
    log_set_level(level);
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
    json_decref(file);
    free(t.owned);
    return rc;
}
