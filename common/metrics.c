/* SPDX-License-Identifier: Apache-2.0 */
/* Placeholder so the API links; the real implementation follows. */
#include "metrics.h"

#include <errno.h>
#include <stdio.h>

struct metrics_registry *metrics_registry_new(void)
{
    return NULL;
}
void metrics_registry_free(struct metrics_registry *reg)
{
}
struct metrics_counter *metrics_counter(struct metrics_registry *reg, const char *name,
                                        const char *help, const char *labels)
{
    return NULL;
}
void metrics_counter_inc(struct metrics_counter *c)
{
}
void metrics_counter_add(struct metrics_counter *c, uint64_t n)
{
}
uint64_t metrics_counter_value(const struct metrics_counter *c)
{
    return 0;
}
struct metrics_gauge *metrics_gauge(struct metrics_registry *reg, const char *name,
                                    const char *help, const char *labels)
{
    return NULL;
}
void metrics_gauge_set(struct metrics_gauge *g, double v)
{
}
void metrics_gauge_add(struct metrics_gauge *g, double delta)
{
}
double metrics_gauge_value(const struct metrics_gauge *g)
{
    return 0;
}
int metrics_add_collector(struct metrics_registry *reg, metrics_collect_fn fn, void *arg)
{
    return -ENOSYS;
}
int metrics_emit(struct metrics_emitter *em, const char *name, const char *help,
                 enum metrics_type type, double value, ...)
{
    return -ENOSYS;
}
int metrics_format_labels(char *buf, size_t buflen, ...)
{
    return -ENOSYS;
}
int metrics_render(struct metrics_registry *reg, char **out, size_t *len)
{
    return -ENOSYS;
}
void metrics_format_value(double v, char *buf, size_t buflen)
{
    snprintf(buf, buflen, "%g", v);
}
