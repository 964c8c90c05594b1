/* SPDX-License-Identifier: Apache-2.0 */
/*
 * haproxy_runtime internals, shared by the client's files only:
 *
 *   haproxy_runtime.c         request queue and socket exchanges, lifecycle
 *   haproxy_runtime_apply.c   show servers state, the apply chain
 *   haproxy_runtime_reload.c  show proc, the reload state machine
 *
 * The parsers they use are pure and public (haproxy_answers.h).
 */
#ifndef DROVER_WATCHER_HAPROXY_RUNTIME_INTERNAL_H
#define DROVER_WATCHER_HAPROXY_RUNTIME_INTERNAL_H

#include "file_writer.h"
#include "haproxy_runtime.h"
#include "metrics.h"

struct rt_request;
struct rt_exchange;
struct reload_op;
struct save_op;

struct rt_backend {
    char *name;
    struct slot_assignment applied;
    /* The backend's `show servers state` as it was after this client's
     * last exchange with it (see haproxy_runtime_apply): the next apply
     * diffs against it instead of dumping again while it is fresh. */
    struct slot_live *live;
    size_t n_live;
    uint64_t live_ms; /* uv_now when dumped; live == NULL: none */
    size_t applying;  /* applies of this backend queued or running */
};

/* Where an exchange waits for its turn: one exchange at a time per lane.
 * A ping (haproxy_runtime_ping) changes nothing and orders with nothing,
 * so it has a lane of its own on the stats socket: a stuck worker is seen
 * in the ping's bound, not after the command timeout of an apply ahead of
 * it. */
enum rt_lane {
    RT_LANE_STATS = HAPROXY_SOCKET_STATS,
    RT_LANE_MASTER = HAPROXY_SOCKET_MASTER,
    RT_LANE_PING,
    RT_LANES
};

struct haproxy_runtime {
    uv_loop_t *loop;
    struct loop_lag *lag;                  /* a timeout after our own stall is not HAProxy's */
    struct metrics_counter *stall_counter; /* mirrors st.stall_retries; NULL: none */
    char *stats_path, *master_path, *state_path;
    struct file_writer *writer; /* state file writes off the loop; NULL: on it */
    uint64_t cmd_timeout_ms, reload_timeout_ms;
    struct rt_request *head, *tail;
    /* the exchange in flight on each lane (enum rt_lane): the stats
     * socket, the master CLI and pings are separate lanes */
    struct rt_exchange *cur[RT_LANES];
    bool reload_active;
    bool freeing;
    struct reload_op *reload_op; /* the reload in flight, if any */
    struct save_op *saves;       /* state file saves waiting for the writer */
    struct rt_backend *backends;
    size_t n_backends;
    struct haproxy_runtime_stats st;
};

/* haproxy_runtime.c */

/* Whether a wait of timeout_ms that began when loop_lag_stalled_ms() read
 * stall_at_start timed out because this process could not act
 * (loop_lag_own_fault). If so it is counted, logged naming what (a printf
 * argument: "stats socket exchange", "reload") and true: the caller waits
 * once more instead of failing. */
bool rt_stall_excuses(struct haproxy_runtime *rt, uint64_t stall_at_start, uint64_t timeout_ms,
                      const char *what);

/* How a request runs beside others. */
enum rt_kind {
    RT_PLAIN,       /* beside an exchange on the other socket */
    RT_SOLO,        /* alone (a reload's baseline): nothing else in flight,
                     * nothing queued behind it starts first */
    RT_RELOAD_STEP, /* alone, and while a reload holds the queue */
};

/* Queue cmds[0..n) (copied, already checked) for sock. front: before
 * everything queued (the next step of a chain: nothing queued by someone
 * else may run in between on that socket). cb runs exactly once unless
 * this fails. 0, -ECANCELED (client shutting down) or -ENOMEM. */
int rt_enqueue(struct haproxy_runtime *rt, enum haproxy_socket sock, const char *const *cmds,
               size_t n, bool front, enum rt_kind kind, haproxy_runtime_exec_cb cb, void *arg);
/* Start the next runnable request of each socket that has none in flight. */
void rt_kick(struct haproxy_runtime *rt);

/* haproxy_runtime_apply.c */

/* The backend's record (created when create), NULL if absent or on ENOMEM. */
struct rt_backend *rt_backend_get(struct haproxy_runtime *rt, const char *name, bool create);
/* Apply a to backend: state dump, diff, commands (haproxy_runtime_apply).
 * reload_step: part of a reload (queued in front, runs while the reload
 * holds the queue); restore_only: only the slots the state file could not
 * restore (see haproxy_runtime_reload). 0, -EINVAL or -ENOMEM. */
int rt_apply_start(struct haproxy_runtime *rt, const char *backend, const struct slot_assignment *a,
                   bool reload_step, bool restore_only, haproxy_runtime_apply_cb cb, void *arg);
/* Free every backend record (haproxy_runtime_free). */
void rt_backends_free(struct haproxy_runtime *rt);

/* haproxy_runtime_reload.c */

/* `show proc` on the master CLI (front/kind as for rt_enqueue). */
int rt_show_proc(struct haproxy_runtime *rt, bool front, enum rt_kind kind,
                 haproxy_runtime_proc_cb cb, void *arg);
/* Finish the reload in flight with -ECANCELED (haproxy_runtime_free). */
void rt_reload_cancel(struct reload_op *op);
/* Finish the state file saves waiting for the writer with -ECANCELED. */
void rt_saves_cancel(struct haproxy_runtime *rt);

#endif
