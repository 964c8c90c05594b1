/* SPDX-License-Identifier: Apache-2.0 */
/*
 * director_main internals, shared by the director daemon's files only:
 *
 *   director_main.c         options, `run` wiring (metrics, status entry,
 *                           front door, signals), frontdoor-guard, entry
 *   director_main_apply.c   the apply job on the thread pool and the
 *                           feed/health callbacks that schedule it
 *   director_main_status.c  the `director status` subcommand
 */
#ifndef DROVER_WATCHER_DIRECTOR_MAIN_INTERNAL_H
#define DROVER_WATCHER_DIRECTOR_MAIN_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "backoff.h"
#include "consul.h"
#include "curl_uv.h"
#include "daemon.h"
#include "director_apply.h"
#include "director_feed.h"
#include "director_health.h"
#include "frontdoor_agent.h"
#include "frontdoor_kv.h"
#include "host_status.h"
#include "http_server.h"
#include "metrics.h"
#include "sdnotify.h"

/* The state of `director run`, on its loop. */
struct dw {
    uv_loop_t *loop;
    struct consul_client *consul;
    struct curl_uv *cu;
    struct director_feed *feed;
    struct consul_watch *chealth;
    struct director_health *health;
    struct director_apply *apply;
    struct director_inputs *in; /* latest inputs (KV or snapshot) */
    /* the inputs in force (held changes leave them), copied on the loop
     * after each job: their proxies stay health-checked and looked up */
    struct director_inputs *applied;
    bool from_kv;
    uv_timer_t due, verify;
    uint64_t wait_ms; /* --apply-wait */
    struct daemon_signals sig;
    struct backoff retry;
    bool stopping, failing;
    struct http_server *http;
    struct metrics_registry *metrics;
    struct metrics_counter *m_applies, *m_held, *m_errors, *m_bad, *m_verify, *m_snap_errors;
    struct metrics_gauge *m_held_now, *m_ready, *m_moved;
    struct sdnotify_watchdog *wd;
    bool busy, again; /* an apply job runs on the thread pool; run again after it */
    uint64_t held_seen, snap_errors_seen;
    /* what the collector shows, copied after each job (see cache_table) */
    struct {
        char id[DIRECTOR_TABLE_ID_MAX + 1];
        uint32_t primary, secondary;
    } * rows;
    uint32_t n_rows;
    char checksum[17];
    const char *tier;
    double balance;
    bool have_table;
    int64_t last_change;
    uint32_t generation;
    /* front door */
    struct frontdoor_agent *frontdoor;
    uv_timer_t fd_timer;
    struct frontdoor_kv *fd_kv; /* drain record watched, status record put */
    uint64_t gen_checksum;      /* generation the last good apply put in force */
    bool applied_ok;
    char *pin_dir;
    /* the status entry R status/<host>/director */
    struct host_status *status;
    int64_t started_unix, status_unix;
    char last_error[512];
};

/* director_main_apply.c: the apply state machine. */
void director_main_status_changed(struct dw *w);
void director_main_on_verify(uv_timer_t *t);
const struct director_inputs *director_main_feed_current(void *arg);
void director_main_on_inputs(void *arg, struct director_inputs *in, unsigned bad);
void director_main_on_feed_error(void *arg, int err, const char *msg);
void director_main_on_health_change(void *arg, const char *host, bool healthy);
void director_main_on_consul_health(void *arg, struct consul_response *resp);
/* Re-apply the snapshot at start (snapshot_file only names it in the log). */
void director_main_load_snapshot(struct dw *w, const char *snapshot_file);

/* director_main_status.c: `director status`; exit status 0, 1 or 2. */
int director_main_status(const char *dev, const char *pin_root, const char *snapshot_file,
                         bool json);

#endif
