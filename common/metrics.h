/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metrics: a small Prometheus registry shared by every daemon, rendered in
 * the text exposition format 0.0.4 by the HTTP server's /metrics.
 *
 * Static series: metrics_counter() / metrics_gauge() register a family
 * (name, help) plus one constant label set and return a handle; asking
 * again for the same name and labels returns the same handle, so modules
 * can look series up lazily. Updates are lock-free atomics, safe from any
 * thread or callback; registration takes a mutex.
 *
 * Dynamic series: a collector callback runs at every scrape and emits
 * samples (per-CPU BPF counters, per-backend gauges) with
 * metrics_emit(); families are merged by name so "# HELP"/"# TYPE" appear
 * once per family wherever its samples come from. Label values given to
 * metrics_emit are escaped here.
 *
 * Histograms: metrics_histogram() registers a series with fixed bucket
 * upper bounds; metrics_histogram_observe() is lock-free like counters.
 * A scrape prints the cumulative <name>_bucket{le} series, <name>_sum and
 * <name>_count (= the +Inf bucket) as Prometheus expects.
 *
 * Handles live as long as the registry; metrics_registry_free frees all.
 */
#ifndef DROVER_METRICS_H
#define DROVER_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct metrics_registry;
struct metrics_counter;
struct metrics_gauge;
struct metrics_histogram;
struct metrics_emitter;

enum metrics_type {
    METRICS_COUNTER,
    METRICS_GAUGE,
    METRICS_UNTYPED,
    METRICS_HISTOGRAM, /* registered series only; metrics_emit refuses it */
};

/* Most bucket bounds a histogram may have (the +Inf bucket not counted). */
#define METRICS_HISTOGRAM_MAX_BUCKETS 16

/* Bucket bounds in seconds for latencies drover cares about, from a Consul
 * answer on loopback (about a millisecond) to a slow HAProxy reload or a
 * change held by quiescence (tens of seconds). */
extern const double metrics_latency_buckets[];
extern const size_t metrics_latency_buckets_n;

/* A new registry already holds drover_build_info{version,revision} 1
 * (version.h), so every daemon's /metrics says what it runs. */
struct metrics_registry *metrics_registry_new(void);
void metrics_registry_free(struct metrics_registry *reg);

/*
 * labels: NULL/"" or a constant label set in exposition syntax,
 * e.g. "code=\"200\",method=\"GET\"" (values already escaped; build them
 * with metrics_format_labels when they come from outside).
 * Returns NULL (and logs) on a bad name or label set, on a name already
 * registered with another type, or on allocation failure; update
 * functions accept NULL handles and do nothing, so a daemon never crashes
 * because of a metric.
 */
struct metrics_counter *metrics_counter(struct metrics_registry *reg, const char *name,
                                        const char *help, const char *labels);
void metrics_counter_inc(struct metrics_counter *c);
void metrics_counter_add(struct metrics_counter *c, uint64_t n);
uint64_t metrics_counter_value(const struct metrics_counter *c);

struct metrics_gauge *metrics_gauge(struct metrics_registry *reg, const char *name,
                                    const char *help, const char *labels);
void metrics_gauge_set(struct metrics_gauge *g, double v);
void metrics_gauge_add(struct metrics_gauge *g, double delta);
double metrics_gauge_value(const struct metrics_gauge *g);

/*
 * A histogram series. bounds: n (1..METRICS_HISTOGRAM_MAX_BUCKETS) finite,
 * strictly increasing upper bounds, copied; the +Inf bucket is implied.
 * Asking again for the same name and labels returns the same handle (the
 * bounds of the first registration stay). NULL and a log line on a bad
 * name, label set or bounds, like metrics_counter.
 */
struct metrics_histogram *metrics_histogram(struct metrics_registry *reg, const char *name,
                                            const char *help, const char *labels,
                                            const double *bounds, size_t n);
/* Count one observation (NaN is ignored). NULL handle: nothing. */
void metrics_histogram_observe(struct metrics_histogram *h, double v);
/* Observations so far (the +Inf bucket), and their sum. */
uint64_t metrics_histogram_count(const struct metrics_histogram *h);
double metrics_histogram_sum(const struct metrics_histogram *h);

/* Collector: called on every render, from the rendering thread. */
typedef void (*metrics_collect_fn)(struct metrics_emitter *em, void *arg);
int metrics_add_collector(struct metrics_registry *reg, metrics_collect_fn fn, void *arg);

/* Emit one sample from a collector. Label pairs are (key, value) strings
 * ended by NULL; values are escaped. Returns 0, -EINVAL (bad name/label
 * key, or family known with another type/help) or -ENOMEM. */
int metrics_emit(struct metrics_emitter *em, const char *name, const char *help,
                 enum metrics_type type, double value, ...) __attribute__((sentinel));

/* Build "k1=\"v1\",k2=\"v2\"" from NULL-terminated pairs, escaping values.
 * 0, -EINVAL (bad key) or -ENOSPC (buffer too small). */
int metrics_format_labels(char *buf, size_t buflen, ...) __attribute__((sentinel));

/* Render the whole registry. *out is malloc'd (caller frees), *len its
 * length without the terminating NUL. 0 or -ENOMEM. */
int metrics_render(struct metrics_registry *reg, char **out, size_t *len);

/* Format a sample value as Prometheus expects ("3", "0.25", "+Inf", "NaN"). */
void metrics_format_value(double v, char *buf, size_t buflen);

#endif
