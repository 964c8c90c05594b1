/* SPDX-License-Identifier: Apache-2.0 */
/*
 * director_metrics: BPF counters into a metrics collector. See
 * director_metrics.h.
 */
#include "director_metrics.h"

#include "director_counters.h"
#include "director_publish.h"
#include "metrics.h"

static void emit_outcomes(struct metrics_emitter *em, const struct director_stat *st, size_t n,
                          const char *dev, bool decap)
{
    const char *name = decap ? "drover_decap_packets_total" : "drover_director_packets_total";
    const char *help = decap ? "Packets seen by the decap XDP program by outcome (rx: all), "
                               "summed over CPUs (drover-director decap stats)."
                             : "Packets seen by the director XDP program by outcome (rx: all), "
                               "summed over CPUs (drover-director stats).";

    for (size_t i = 0; i < n; i++)
        metrics_emit(em, name, help, METRICS_COUNTER, (double)st[i].value, "dev", dev, "outcome",
                     st[i].name, NULL);
}

static void emit_traffic(struct metrics_emitter *em, const struct director_traffic *t,
                         const char *dev)
{
    for (size_t i = 0; i < t->n_vips; i++) {
        const struct director_traffic_entry *e = &t->vips[i];
        metrics_emit(em, "drover_director_vip_packets_total",
                     "Packets to the VIP the director encapsulated and sent.", METRICS_COUNTER,
                     (double)e->packets, "dev", dev, "vip", e->name, NULL);
        metrics_emit(em, "drover_director_vip_bytes_total",
                     "Bytes (from the client's IP header on) of the VIP's packets sent.",
                     METRICS_COUNTER, (double)e->bytes, "dev", dev, "vip", e->name, NULL);
        metrics_emit(em, "drover_director_vip_drops_total",
                     "Packets to the VIP the director dropped (no proxy, no source address, "
                     "no headroom).",
                     METRICS_COUNTER, (double)e->drops, "dev", dev, "vip", e->name, NULL);
    }
    for (size_t i = 0; i < t->n_proxies; i++) {
        const struct director_traffic_entry *e = &t->proxies[i];
        metrics_emit(em, "drover_director_proxy_packets_total",
                     "Packets the director sent to the proxy as first hop (active generation's "
                     "proxies).",
                     METRICS_COUNTER, (double)e->packets, "dev", dev, "proxy", e->name, NULL);
        metrics_emit(em, "drover_director_proxy_bytes_total",
                     "Bytes (from the client's IP header on) sent to the proxy as first hop.",
                     METRICS_COUNTER, (double)e->bytes, "dev", dev, "proxy", e->name, NULL);
    }
}

void director_metrics_emit(struct metrics_emitter *em, const char *pin_dir, const char *dev,
                           bool decap)
{
    struct director_stat st[DIRECTOR_STATS_MAX];
    struct director_traffic t;
    size_t n = 0;
    int ok = director_stats_read_pinned(pin_dir, decap, st, &n) == 0;

    if (ok)
        emit_outcomes(em, st, n, dev, decap);
    if (ok && !decap) {
        ok = director_traffic_read_pinned(pin_dir, &t) == 0;
        if (ok)
            emit_traffic(em, &t, dev);
        director_traffic_free(&t);
    }
    metrics_emit(em, decap ? "drover_decap_maps_readable" : "drover_director_maps_readable",
                 "1 when the program's pinned maps could be read at this scrape.", METRICS_GAUGE,
                 ok ? 1.0 : 0.0, "dev", dev, NULL);
}
