/* SPDX-License-Identifier: Apache-2.0 */
#include "metrics.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "version.h"

/* Handles are the atomic cells themselves, so updates never lock. */
struct metrics_counter {
    _Atomic uint64_t value;
};

struct metrics_gauge {
    _Atomic uint64_t bits; /* a double's bit pattern */
};

/* Per-bucket counts are not cumulative, so an observation touches one
 * cell; the scrape adds them up. The count is their total, so _count and
 * the +Inf bucket always agree. */
struct metrics_histogram {
    size_t n;
    double bounds[METRICS_HISTOGRAM_MAX_BUCKETS];
    _Atomic uint64_t buckets[METRICS_HISTOGRAM_MAX_BUCKETS + 1]; /* last: +Inf */
    struct metrics_gauge sum;
};

struct series {
    struct series *next;
    char *labels; /* "" or k="v",... */
    union {
        struct metrics_counter c;
        struct metrics_gauge g;
        struct metrics_histogram *h; /* owned */
    } u;
};

const double metrics_latency_buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                          0.5,   1,      2.5,   5,    10,    30,   60};
const size_t metrics_latency_buckets_n =
    sizeof(metrics_latency_buckets) / sizeof(metrics_latency_buckets[0]);

struct family {
    struct family *next;
    char *name;
    char *help;
    enum metrics_type type;
    struct series *series;
    struct series **series_tail;
};

struct collector {
    struct collector *next;
    metrics_collect_fn fn;
    void *arg;
};

struct metrics_registry {
    pthread_mutex_t lock; /* registration and scrape snapshot */
    struct family *families;
    struct family **families_tail;
    struct collector *collectors;
    struct collector **collectors_tail;
};

/* ---- a growing string buffer --------------------------------------------- */

struct sbuf {
    char *buf;
    size_t len, cap;
    int err;
};

static void sb_reserve(struct sbuf *sb, size_t more)
{
    if (sb->err || sb->len + more + 1 <= sb->cap)
        return;
    size_t cap = sb->cap ? sb->cap : 256;
    while (cap < sb->len + more + 1)
        cap *= 2;
    char *nb = realloc(sb->buf, cap);
    if (!nb) {
        sb->err = -ENOMEM;
        return;
    }
    sb->buf = nb;
    sb->cap = cap;
}

static void sb_putn(struct sbuf *sb, const char *s, size_t n)
{
    sb_reserve(sb, n);
    if (sb->err)
        return;
    memcpy(sb->buf + sb->len, s, n);
    sb->len += n;
    sb->buf[sb->len] = '\0';
}

static void sb_puts(struct sbuf *sb, const char *s)
{
    sb_putn(sb, s, strlen(s));
}

static void sb_putc(struct sbuf *sb, char c)
{
    sb_putn(sb, &c, 1);
}

/* Escape for a label value (\\, \", \n) or, with quotes=false, for HELP
 * text (\\ and \n only), as the exposition format requires. */
static void sb_escaped(struct sbuf *sb, const char *s, bool quotes)
{
    for (; *s; s++) {
        if (*s == '\\')
            sb_puts(sb, "\\\\");
        else if (*s == '\n')
            sb_puts(sb, "\\n");
        else if (*s == '"' && quotes)
            sb_puts(sb, "\\\"");
        else
            sb_putc(sb, *s);
    }
}

/* ---- validation ---------------------------------------------------------- */

static bool valid_metric_name(const char *s)
{
    if (!s || !(isalpha((unsigned char)*s) || *s == '_' || *s == ':'))
        return false;
    for (s++; *s; s++)
        if (!(isalnum((unsigned char)*s) || *s == '_' || *s == ':'))
            return false;
    return true;
}

static bool valid_label_name(const char *s, size_t n)
{
    if (n == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
        return false;
    if (n >= 2 && s[0] == '_' && s[1] == '_')
        return false; /* reserved for Prometheus itself */
    for (size_t i = 1; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_'))
            return false;
    return true;
}

/* A pre-formatted constant label set: k="v"(,k="v")*, values escaped. */
static bool valid_label_set(const char *s)
{
    while (*s) {
        const char *eq = strchr(s, '=');
        if (!eq || !valid_label_name(s, (size_t)(eq - s)) || eq[1] != '"')
            return false;
        const char *p = eq + 2;
        for (; *p && *p != '"'; p++) {
            if (*p == '\n')
                return false;
            if (*p == '\\') {
                if (p[1] != '\\' && p[1] != '"' && p[1] != 'n')
                    return false;
                p++;
            }
        }
        if (*p != '"')
            return false;
        p++;
        if (*p == ',')
            p++;
        else if (*p)
            return false;
        s = p;
    }
    return true;
}

static int labels_va(struct sbuf *sb, va_list ap)
{
    const char *k, *v;
    bool first = true;

    while ((k = va_arg(ap, const char *)) != NULL) {
        v = va_arg(ap, const char *);
        if (!valid_label_name(k, strlen(k)) || !v)
            return -EINVAL;
        if (!first)
            sb_putc(sb, ',');
        first = false;
        sb_puts(sb, k);
        sb_puts(sb, "=\"");
        sb_escaped(sb, v, true);
        sb_putc(sb, '"');
    }
    return sb->err;
}

int metrics_format_labels(char *buf, size_t buflen, ...)
{
    struct sbuf sb = {0};
    va_list ap;
    int rc;

    va_start(ap, buflen);
    rc = labels_va(&sb, ap);
    va_end(ap);
    if (rc == 0 && sb.len + 1 > buflen)
        rc = -ENOSPC;
    if (rc == 0) {
        memcpy(buf, sb.buf ? sb.buf : "", sb.len + 1);
    }
    free(sb.buf);
    return rc;
}

void metrics_format_value(double v, char *buf, size_t buflen)
{
    if (isnan(v)) {
        snprintf(buf, buflen, "NaN");
    } else if (isinf(v)) {
        snprintf(buf, buflen, "%s", v > 0 ? "+Inf" : "-Inf");
    } else if (v == floor(v) && fabs(v) < 1e15) {
        snprintf(buf, buflen, "%.0f", v);
    } else {
        /* Shortest of %.15g..%.17g that reads back to the same double. */
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(buf, buflen, "%.*g", prec, v);
            if (strtod(buf, NULL) == v)
                break;
        }
    }
}

/* ---- registry -------------------------------------------------------------- */

struct metrics_registry *metrics_registry_new(void)
{
    struct metrics_registry *reg = calloc(1, sizeof(*reg));

    if (!reg)
        return NULL;
    pthread_mutex_init(&reg->lock, NULL);
    reg->families_tail = &reg->families;
    reg->collectors_tail = &reg->collectors;
    /* every daemon says what it runs: the first series of each /metrics */
    char labels[256];
    if (metrics_format_labels(labels, sizeof(labels), "version", drover_version(), "revision",
                              drover_revision(), NULL) == 0)
        metrics_gauge_set(metrics_gauge(reg, "drover_build_info",
                                        "Version of the running program (value always 1).", labels),
                          1);
    return reg;
}

void metrics_registry_free(struct metrics_registry *reg)
{
    if (!reg)
        return;
    for (struct family *f = reg->families, *fn; f; f = fn) {
        fn = f->next;
        for (struct series *s = f->series, *sn; s; s = sn) {
            sn = s->next;
            if (f->type == METRICS_HISTOGRAM)
                free(s->u.h);
            free(s->labels);
            free(s);
        }
        free(f->name);
        free(f->help);
        free(f);
    }
    for (struct collector *c = reg->collectors, *cn; c; c = cn) {
        cn = c->next;
        free(c);
    }
    pthread_mutex_destroy(&reg->lock);
    free(reg);
}

static const char *type_name(enum metrics_type t)
{
    switch (t) {
    case METRICS_COUNTER:
        return "counter";
    case METRICS_GAUGE:
        return "gauge";
    case METRICS_HISTOGRAM:
        return "histogram";
    default:
        return "untyped";
    }
}

/* Find or create the series (name, labels) of the given type. */
static struct series *get_series(struct metrics_registry *reg, const char *name, const char *help,
                                 const char *labels, enum metrics_type type)
{
    struct family *f;
    struct series *s = NULL;

    if (!reg)
        return NULL;
    if (!labels)
        labels = "";
    if (!valid_metric_name(name) || !valid_label_set(labels)) {
        log_error("metrics: bad metric name '%s' or label set '%s', metric not registered",
                  name ? name : "(null)", labels);
        return NULL;
    }
    pthread_mutex_lock(&reg->lock);
    for (f = reg->families; f; f = f->next)
        if (strcmp(f->name, name) == 0)
            break;
    if (f && f->type != type) {
        log_error("metrics: %s registered as %s, not as %s; metric not registered", name,
                  type_name(f->type), type_name(type));
        goto out;
    }
    if (!f) {
        f = calloc(1, sizeof(*f));
        if (!f)
            goto out;
        f->name = strdup(name);
        f->help = strdup(help ? help : "");
        if (!f->name || !f->help) {
            free(f->name);
            free(f->help);
            free(f);
            goto out;
        }
        f->type = type;
        f->series_tail = &f->series;
        *reg->families_tail = f;
        reg->families_tail = &f->next;
    }
    for (s = f->series; s; s = s->next)
        if (strcmp(s->labels, labels) == 0)
            goto out;
    s = calloc(1, sizeof(*s));
    if (!s)
        goto out;
    s->labels = strdup(labels);
    if (type == METRICS_HISTOGRAM)
        s->u.h = calloc(1, sizeof(*s->u.h));
    if (!s->labels || (type == METRICS_HISTOGRAM && !s->u.h)) {
        free(s->labels);
        free(s->u.h);
        free(s);
        s = NULL;
        goto out;
    }
    *f->series_tail = s;
    f->series_tail = &s->next;
out:
    pthread_mutex_unlock(&reg->lock);
    return s;
}

struct metrics_counter *metrics_counter(struct metrics_registry *reg, const char *name,
                                        const char *help, const char *labels)
{
    struct series *s = get_series(reg, name, help, labels, METRICS_COUNTER);
    return s ? &s->u.c : NULL;
}

void metrics_counter_inc(struct metrics_counter *c)
{
    metrics_counter_add(c, 1);
}

void metrics_counter_add(struct metrics_counter *c, uint64_t n)
{
    if (c)
        atomic_fetch_add_explicit(&c->value, n, memory_order_relaxed);
}

uint64_t metrics_counter_value(const struct metrics_counter *c)
{
    return c ? atomic_load_explicit(&((struct metrics_counter *)c)->value, memory_order_relaxed)
             : 0;
}

struct metrics_gauge *metrics_gauge(struct metrics_registry *reg, const char *name,
                                    const char *help, const char *labels)
{
    struct series *s = get_series(reg, name, help, labels, METRICS_GAUGE);
    return s ? &s->u.g : NULL;
}

static uint64_t d2u(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof(u));
    return u;
}

static double u2d(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof(d));
    return d;
}

void metrics_gauge_set(struct metrics_gauge *g, double v)
{
    if (g)
        atomic_store_explicit(&g->bits, d2u(v), memory_order_relaxed);
}

void metrics_gauge_add(struct metrics_gauge *g, double delta)
{
    if (!g)
        return;
    uint64_t old = atomic_load_explicit(&g->bits, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&g->bits, &old, d2u(u2d(old) + delta),
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

double metrics_gauge_value(const struct metrics_gauge *g)
{
    return g ? u2d(atomic_load_explicit(&((struct metrics_gauge *)g)->bits, memory_order_relaxed))
             : 0.0;
}

static bool valid_bounds(const double *bounds, size_t n)
{
    if (!bounds || n == 0 || n > METRICS_HISTOGRAM_MAX_BUCKETS)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1]))
            return false;
    return true;
}

struct metrics_histogram *metrics_histogram(struct metrics_registry *reg, const char *name,
                                            const char *help, const char *labels,
                                            const double *bounds, size_t n)
{
    if (!valid_bounds(bounds, n)) {
        log_error("metrics: %s: %zu bucket bounds, want 1..%d finite increasing ones; metric "
                  "not registered",
                  name ? name : "(null)", n, METRICS_HISTOGRAM_MAX_BUCKETS);
        return NULL;
    }
    struct series *s = get_series(reg, name, help, labels, METRICS_HISTOGRAM);
    if (!s)
        return NULL;
    pthread_mutex_lock(&reg->lock);
    if (s->u.h->n == 0) { /* first registration sets the bounds */
        memcpy(s->u.h->bounds, bounds, n * sizeof(*bounds));
        s->u.h->n = n;
    }
    pthread_mutex_unlock(&reg->lock);
    return s->u.h;
}

void metrics_histogram_observe(struct metrics_histogram *h, double v)
{
    size_t i = 0;

    if (!h || isnan(v))
        return;
    while (i < h->n && v > h->bounds[i]) /* le: a value on a bound counts in it */
        i++;
    atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
    metrics_gauge_add(&h->sum, v);
}

uint64_t metrics_histogram_count(const struct metrics_histogram *h)
{
    uint64_t total = 0;

    if (!h)
        return 0;
    for (size_t i = 0; i <= h->n; i++)
        total += atomic_load_explicit(&((struct metrics_histogram *)h)->buckets[i],
                                      memory_order_relaxed);
    return total;
}

double metrics_histogram_sum(const struct metrics_histogram *h)
{
    return h ? metrics_gauge_value(&h->sum) : 0.0;
}

int metrics_add_collector(struct metrics_registry *reg, metrics_collect_fn fn, void *arg)
{
    struct collector *c;

    if (!reg || !fn)
        return -EINVAL;
    c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->fn = fn;
    c->arg = arg;
    pthread_mutex_lock(&reg->lock);
    *reg->collectors_tail = c;
    reg->collectors_tail = &c->next;
    pthread_mutex_unlock(&reg->lock);
    return 0;
}

/* ---- scrape ---------------------------------------------------------------- */

/* A scrape builds a snapshot of every family (static and emitted) and then
 * prints it, so samples of one family stay together whatever their
 * source. */
struct snap_family {
    const char *name; /* borrowed from the registry or owned (emitted) */
    const char *help;
    char *owned_name, *owned_help;
    enum metrics_type type;
    struct sbuf samples; /* already formatted lines */
};

struct metrics_emitter {
    struct snap_family *fams;
    size_t n, cap;
    int err;
};

static struct snap_family *snap_family(struct metrics_emitter *em, const char *name,
                                       const char *help, enum metrics_type type, bool copy)
{
    for (size_t i = 0; i < em->n; i++)
        if (strcmp(em->fams[i].name, name) == 0)
            return &em->fams[i];
    if (em->n == em->cap) {
        size_t cap = em->cap ? em->cap * 2 : 16;
        struct snap_family *nf = realloc(em->fams, cap * sizeof(*nf));
        if (!nf)
            return NULL;
        em->fams = nf;
        em->cap = cap;
    }
    struct snap_family *f = &em->fams[em->n];
    memset(f, 0, sizeof(*f));
    f->type = type;
    if (copy) {
        f->owned_name = strdup(name);
        f->owned_help = strdup(help ? help : "");
        if (!f->owned_name || !f->owned_help) {
            free(f->owned_name);
            free(f->owned_help);
            return NULL;
        }
        f->name = f->owned_name;
        f->help = f->owned_help;
    } else {
        f->name = name;
        f->help = help;
    }
    em->n++;
    return f;
}

/* One sample line: name + suffix ("_bucket" or ""), the labels and, for a
 * histogram bucket, le="<le>" after them. */
static void snap_sample_le(struct snap_family *f, const char *suffix, const char *labels,
                           const char *le, const char *value)
{
    bool any = labels && *labels;

    sb_puts(&f->samples, f->name);
    sb_puts(&f->samples, suffix);
    if (any || le) {
        sb_putc(&f->samples, '{');
        if (any)
            sb_puts(&f->samples, labels);
        if (le) {
            sb_puts(&f->samples, any ? ",le=\"" : "le=\"");
            sb_puts(&f->samples, le);
            sb_putc(&f->samples, '"');
        }
        sb_putc(&f->samples, '}');
    }
    sb_putc(&f->samples, ' ');
    sb_puts(&f->samples, value);
    sb_putc(&f->samples, '\n');
}

static void snap_sample(struct snap_family *f, const char *labels, const char *value)
{
    snap_sample_le(f, "", labels, NULL, value);
}

/* The cumulative buckets, _sum and _count of one histogram series. The
 * cells are read once each, so the buckets are monotonic and _count equals
 * the +Inf bucket even while other threads observe. */
static void snap_histogram(struct snap_family *f, const char *labels,
                           const struct metrics_histogram *h)
{
    char num[64], le[64];
    uint64_t cum = 0;

    for (size_t i = 0; i <= h->n; i++) {
        cum += atomic_load_explicit(&((struct metrics_histogram *)h)->buckets[i],
                                    memory_order_relaxed);
        if (i < h->n)
            metrics_format_value(h->bounds[i], le, sizeof(le));
        else
            snprintf(le, sizeof(le), "+Inf");
        snprintf(num, sizeof(num), "%" PRIu64, cum);
        snap_sample_le(f, "_bucket", labels, le, num);
    }
    metrics_format_value(metrics_gauge_value(&h->sum), num, sizeof(num));
    snap_sample_le(f, "_sum", labels, NULL, num);
    snprintf(num, sizeof(num), "%" PRIu64, cum);
    snap_sample_le(f, "_count", labels, NULL, num);
}

int metrics_emit(struct metrics_emitter *em, const char *name, const char *help,
                 enum metrics_type type, double value, ...)
{
    struct sbuf labels = {0};
    struct snap_family *f;
    char num[64];
    va_list ap;
    int rc;

    if (!em || !valid_metric_name(name) || type == METRICS_HISTOGRAM)
        return -EINVAL;
    va_start(ap, value);
    rc = labels_va(&labels, ap);
    va_end(ap);
    if (rc < 0)
        goto out;
    f = snap_family(em, name, help, type, true);
    if (!f) {
        rc = -ENOMEM;
        goto out;
    }
    if (f->type != type) {
        rc = -EINVAL;
        goto out;
    }
    metrics_format_value(value, num, sizeof(num));
    snap_sample(f, labels.buf, num);
    rc = f->samples.err;
out:
    if (rc < 0 && rc != -EINVAL && !em->err)
        em->err = rc;
    free(labels.buf);
    return rc;
}

int metrics_render(struct metrics_registry *reg, char **out, size_t *len)
{
    struct metrics_emitter em = {0};
    struct collector *cols = NULL;
    size_t ncols = 0;
    struct sbuf sb = {0};
    char num[64];
    int rc = 0;

    *out = NULL;
    if (len)
        *len = 0;
    if (!reg)
        return -EINVAL;

    /* Static series: names and help are stable for the registry's life,
     * so the snapshot borrows them; values are read atomically. */
    pthread_mutex_lock(&reg->lock);
    for (struct family *f = reg->families; f; f = f->next) {
        struct snap_family *sf = snap_family(&em, f->name, f->help, f->type, false);
        if (!sf) {
            rc = -ENOMEM;
            break;
        }
        for (struct series *s = f->series; s; s = s->next) {
            if (f->type == METRICS_HISTOGRAM) {
                snap_histogram(sf, s->labels, s->u.h);
                continue;
            }
            if (f->type == METRICS_COUNTER)
                snprintf(num, sizeof(num), "%" PRIu64, metrics_counter_value(&s->u.c));
            else
                metrics_format_value(metrics_gauge_value(&s->u.g), num, sizeof(num));
            snap_sample(sf, s->labels, num);
        }
    }
    for (struct collector *c = reg->collectors; c; c = c->next)
        ncols++;
    if (ncols) {
        cols = calloc(ncols, sizeof(*cols));
        if (cols) {
            size_t i = 0;
            for (struct collector *c = reg->collectors; c; c = c->next)
                cols[i++] = *c;
        } else {
            rc = -ENOMEM;
        }
    }
    pthread_mutex_unlock(&reg->lock);

    /* Collectors run unlocked so they may register series themselves. */
    for (size_t i = 0; rc == 0 && i < ncols; i++)
        cols[i].fn(&em, cols[i].arg);
    if (rc == 0)
        rc = em.err;

    for (size_t i = 0; rc == 0 && i < em.n; i++) {
        struct snap_family *f = &em.fams[i];
        if (f->samples.err) {
            rc = f->samples.err;
            break;
        }
        if (f->samples.len == 0)
            continue;
        if (f->help && *f->help) {
            sb_puts(&sb, "# HELP ");
            sb_puts(&sb, f->name);
            sb_putc(&sb, ' ');
            sb_escaped(&sb, f->help, false);
            sb_putc(&sb, '\n');
        }
        sb_puts(&sb, "# TYPE ");
        sb_puts(&sb, f->name);
        sb_putc(&sb, ' ');
        sb_puts(&sb, type_name(f->type));
        sb_putc(&sb, '\n');
        sb_putn(&sb, f->samples.buf, f->samples.len);
    }
    if (rc == 0 && sb.err)
        rc = sb.err;
    if (rc == 0 && !sb.buf) {
        sb.buf = strdup("");
        if (!sb.buf)
            rc = -ENOMEM;
    }
    for (size_t i = 0; i < em.n; i++) {
        free(em.fams[i].samples.buf);
        free(em.fams[i].owned_name);
        free(em.fams[i].owned_help);
    }
    free(em.fams);
    free(cols);
    if (rc < 0) {
        free(sb.buf);
        return rc;
    }
    *out = sb.buf;
    if (len)
        *len = sb.len;
    return 0;
}
