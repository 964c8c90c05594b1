/* SPDX-License-Identifier: Apache-2.0 */
/*
 * haproxy_engine, HAProxy's own error counters of each service (the
 * "errors" of the host's status entry, read by `droverctl config apply
 * --canary` and `droverctl status`):
 *
 *   every errors_ms: `show stat -1 3 -1` (frontend and backend rows) on
 *     the stats socket of each service that applied a definition, summed
 *     by haproxy_parse_stat_errors;
 *   counters that differ from the last read: on_status, so the entry is
 *     rewritten (at most once per errors_ms: the caller sets errors_ms to
 *     the entry's own renewal cadence, which bounds the Consul writes);
 *   a HAProxy that does not answer, or an answer that does not parse:
 *     the counters are dropped (the entry shows none) and logged at debug
 *     level; the supervision probe already reports a HAProxy that is down;
 *   a verified reload drops them too (haproxy_engine_apply.c): the new
 *     worker counts from 0, and the entry must never pair the new reload
 *     count with the old worker's counters.
 */
#include <errno.h>
#include <string.h>

#include "haproxy_engine_internal.h"
#include "log.h"

static void set_errors(struct service_state *s, bool have, const struct haproxy_error_counters *c)
{
    bool same = have == s->have_errors && (!have || memcmp(c, &s->errors, sizeof(*c)) == 0);
    s->have_errors = have;
    if (have)
        s->errors = *c;
    if (!same)
        engine_status_changed(s->e);
}

static void on_stat(struct haproxy_runtime *rt, int status, const char *const *answers, size_t n,
                    const char *err, void *arg)
{
    struct service_state *s = arg;
    struct haproxy_error_counters c;
    char perr[256];
    int rc;
    (void)rt;
    s->errors_reading = false;
    if (status == -ECANCELED || s->e->stopping)
        return;
    if (status < 0 || n < 1) {
        log_debug("watcher: service %s: %s: %s; error counters not reported", s->name,
                  HAPROXY_STAT_ERRORS_CMD, err && *err ? err : strerror(-status));
        set_errors(s, false, NULL);
        return;
    }
    if ((rc = haproxy_parse_stat_errors(answers[0], strlen(answers[0]), &c, perr, sizeof(perr))) <
        0) {
        log_debug("watcher: service %s: %s; error counters not reported", s->name,
                  rc == -ENOMEM ? "out of memory" : perr);
        set_errors(s, false, NULL);
        return;
    }
    set_errors(s, true, &c);
}

static void on_errors_due(uv_timer_t *t)
{
    struct haproxy_engine *e = t->data;
    static const char *const cmd[] = {HAPROXY_STAT_ERRORS_CMD};
    if (e->stopping)
        return;
    for (size_t i = 0; i < e->n_svcs; i++) {
        struct service_state *s = e->svcs[i];
        if (s->retired || !s->rt || s->errors_reading || !s->applied_def[0])
            continue;
        if (haproxy_runtime_exec(s->rt, HAPROXY_SOCKET_STATS, cmd, 1, on_stat, s) == 0)
            s->errors_reading = true;
    }
}

void engine_errors_init(struct haproxy_engine *e)
{
    uv_timer_init(e->loop, &e->errors_poll);
    e->errors_poll.data = e;
    if (e->o.errors_ms > 0)
        uv_timer_start(&e->errors_poll, on_errors_due, (uint64_t)e->o.errors_ms,
                       (uint64_t)e->o.errors_ms);
}

void engine_errors_stop(struct haproxy_engine *e)
{
    uv_close((uv_handle_t *)&e->errors_poll, NULL);
}
