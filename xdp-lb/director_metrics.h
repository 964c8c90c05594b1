/* SPDX-License-Identifier: Apache-2.0 */
/*
 * director_metrics: the BPF programs' counters as Prometheus samples, for
 * the /metrics of the daemon that runs next to them (the director watcher
 * for the director, the HAProxy-side watcher for decap). Read from the
 * pinned maps at every scrape and summed over CPUs; nothing is cached, so
 * the figures are the ones `drover-director stats` prints at that moment.
 */
#ifndef DROVER_DIRECTOR_METRICS_H
#define DROVER_DIRECTOR_METRICS_H

#include <stdbool.h>

struct metrics_emitter;

/* From a metrics collector: emit the counters of the program pinned in
 * pin_dir, labelled dev="<dev>". Director (decap false):
 * drover_director_packets_total{outcome}, drover_director_vip_*_total{vip},
 * drover_director_proxy_*_total{proxy}; decap: drover_decap_packets_total
 * {outcome}. Both: drover_<prog>_maps_readable (0 when the pins cannot be
 * read, e.g. the program is not attached; the error is logged). */
void director_metrics_emit(struct metrics_emitter *em, const char *pin_dir, const char *dev,
                           bool decap);

#endif
