/* SPDX-License-Identifier: Apache-2.0 */
/*
 * consul_metrics: turns struct consul_stats into Prometheus counters from
 * inside a daemon's metrics collector, so every daemon names them alike:
 * drover_<component>_consul_<field>_total.
 */
#include <errno.h>
#include <stdio.h>

#include "consul.h"
#include "consul_internal.h"
#include "metrics.h"

int consul_stats_emit(const struct consul_stats *st, struct metrics_emitter *em,
                      const char *component)
{
    const struct {
        const char *name;
        const char *help;
        uint64_t value;
    } rows[] = {
        {"requests", "Consul HTTP requests started", st->requests},
        {"errors", "Consul requests answered with an error", st->errors},
        {"retries", "Consul watch retries after an error", st->retries},
        {"index_resets", "Consul watch index resets (went backwards or 0)", st->index_resets},
        {"token_reloads", "Consul ACL token file changes picked up", st->token_reloads},
        {"watch_wakeups", "Consul blocking query answers", st->watch_wakeups},
        {"watch_unchanged", "Consul blocking query answers without a change", st->watch_unchanged},
        {"watch_deliveries", "Consul watch changes delivered", st->watch_deliveries},
        {"stale_retries", "Consul stale reads over --consul-max-stale, re-read from the leader",
         st->stale_retries},
        {"stall_retries",
         "Consul reads that timed out while this process could not act (stopped, starved), "
         "sent again instead of counted as errors",
         st->stall_retries},
        {"stale_behind",
         "Consul stale watch answers older than the data already held, re-read from the leader",
         st->stale_behind},
        {"bytes_received", "Bytes received from Consul (headers and bodies as sent, compressed)",
         st->bytes_received},
        {"watch_entries_parsed", "KV entries of watch answers parsed", st->watch_entries_parsed},
        {"watch_entries_reused",
         "KV entries of watch answers copied from the previous answer "
         "(same JSON text)",
         st->watch_entries_reused},
        {"outages",
         "Consul watch outages begun (a watch's first failure after answers; logged once, its "
         "retries are counted in retries)",
         st->outages},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        char name[128];
        snprintf(name, sizeof(name), "drover_%s_consul_%s_total", component, rows[i].name);
        int rc = metrics_emit(em, name, rows[i].help, METRICS_COUNTER, (double)rows[i].value,
                              (const char *)NULL);
        if (rc)
            return rc;
    }
    return 0;
}

int consul_client_observe_latency(struct consul_client *c, struct metrics_registry *reg,
                                  const char *component)
{
    char name[128];

    if (!c || !reg || !component)
        return -EINVAL;
    snprintf(name, sizeof(name), "drover_%s_consul_request_duration_seconds", component);
    c->latency = metrics_histogram(reg, name,
                                   "Duration of Consul HTTP requests, blocking queries that "
                                   "wait for a change left out",
                                   NULL, metrics_latency_buckets, metrics_latency_buckets_n);
    return c->latency ? 0 : -ENOMEM;
}
