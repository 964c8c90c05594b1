/* SPDX-License-Identifier: Apache-2.0 */
/*
 * haproxy_runtime: asynchronous client of a running HAProxy (2.6, master-
 * worker mode) on the watcher's libuv loop. It owns
 *
 *   - the stats socket (runtime API, `level admin`): every exchange is one
 *     connection in `prompt` mode with the commands pipelined and `quit`
 *     last, answers split at the prompts (docs/watcher.md, "Runtime API and
 *     slots", says why and what it costs);
 *   - the master CLI socket (`-S`): `show proc` and `reload`;
 *   - the server-state file written from `show servers state` right before
 *     every reload (atomic_file_write), the only way runtime-set addresses,
 *     weights and admin states survive a reload.
 *
 * Exchanges are queued and run one at a time per socket (HAProxy applies
 * commands in order anyway, and an apply must not interleave with a state
 * dump that precedes a reload); the stats socket and the master CLI are
 * separate lanes, so a `show proc` probe never holds an apply, except that
 * a reload's exchanges, from its `show proc` baseline on, run alone. Each
 * has a timeout; nothing blocks the loop. Pings (haproxy_runtime_ping)
 * have a lane of their own beside those two. A connect failure (socket
 * missing, HAProxy dead) fails at once.
 *
 * A timeout after the watcher's own stall: libuv runs due timers before it
 * reads sockets, so a watcher stopped or starved past an exchange's
 * timeout would fail an exchange whose answer sits in the socket. When the
 * loop could not act for a large part of the wait (loop_lag_own_fault), the
 * exchange gets one more timeout on the same connection instead (counted
 * in stall_retries); so does a reload whose confirmation deadline passed
 * that way. Nothing is sent twice, so this holds for every exchange,
 * `reload` and certificate commits included; only a second timeout fails.
 *
 * Every value written into a command passes haproxy_value checks, so a KV
 * value can never carry a newline or a `;` (command separator) into the
 * CLI. Errors from HAProxy ("No such server.", "Unknown command", ...) are
 * -EINVAL with a message naming the command and the answer.
 *
 * Callbacks run on the loop, exactly once per accepted request (with
 * -ECANCELED from haproxy_runtime_free for requests still queued). Data
 * passed to callbacks is only valid during the callback.
 *
 * Files: haproxy_runtime.c (request queue, socket exchanges, lifecycle),
 * haproxy_runtime_apply.c (show servers state, the apply chain),
 * haproxy_runtime_reload.c (show proc, the reload state machine); the
 * answers they read are parsed by the pure haproxy_answers.h.
 */
#ifndef DROVER_WATCHER_HAPROXY_RUNTIME_H
#define DROVER_WATCHER_HAPROXY_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "haproxy_answers.h"
#include "slots.h"

struct haproxy_runtime;

#define HAPROXY_RUNTIME_MSG_MAX 512

/* Defaults of the timeouts (haproxy_runtime_set_timeouts). */
#define HAPROXY_RUNTIME_CMD_TIMEOUT_MS    3000
#define HAPROXY_RUNTIME_RELOAD_TIMEOUT_MS 15000
#define HAPROXY_RUNTIME_PROC_POLL_MS      50

/*
 * Create a client. stats_socket: the `stats socket` path (level admin);
 * master_socket: the `-S` path (NULL: reloads and show proc are -ENOTSUP);
 * server_state_file: the global `server-state-file` path (NULL: reloads do
 * not save state); lag: the loop's stall measurement (loop_lag.h), shared
 * with the other modules on the loop, the client keeping a reference
 * (NULL: the client measures the loop itself). Strings are copied.
 * Nothing connects until a request. 0, -EINVAL or -ENOMEM.
 */
struct loop_lag;
int haproxy_runtime_new(uv_loop_t *loop, const char *stats_socket, const char *master_socket,
                        const char *server_state_file, struct loop_lag *lag,
                        struct haproxy_runtime **out);

/* Cancel queued requests (their callbacks run with -ECANCELED before this
 * returns), close the connection in flight, free everything. The loop must
 * run once more to finish closing handles (uv_run(loop, UV_RUN_NOWAIT)). */
void haproxy_runtime_free(struct haproxy_runtime *rt);

/* Forget every backend's dump kept for the next apply: the next applies
 * dump again (a periodic resync repairing drift must see HAProxy now). */
void haproxy_runtime_drop_live(struct haproxy_runtime *rt);

/* Write the server-state file (saves and reloads) through w, off the loop
 * and in order (file_writer.h); NULL (the default): on the loop. w must
 * outlive rt. */
struct file_writer;
void haproxy_runtime_set_writer(struct haproxy_runtime *rt, struct file_writer *w);

/* Count every stall retry (see "a timeout after the watcher's own stall"
 * above) in c as well as in the stats; NULL: stats only. c must outlive
 * rt. */
struct metrics_counter;
void haproxy_runtime_set_stall_counter(struct haproxy_runtime *rt, struct metrics_counter *c);

/* cmd_ms: one exchange (connect + commands + answers); reload_ms: reload
 * until the new worker shows in `show proc`. 0 keeps the current value. */
void haproxy_runtime_set_timeouts(struct haproxy_runtime *rt, uint64_t cmd_ms, uint64_t reload_ms);

/* ---- counters (metrics) --------------------------------------------- */
struct haproxy_runtime_stats {
    uint64_t exchanges;      /* connections made to either socket */
    uint64_t commands_sent;  /* commands written (prompt/quit not counted) */
    uint64_t command_errors; /* commands HAProxy answered with an error */
    uint64_t io_errors;      /* connect/read/write failures */
    uint64_t timeouts;
    uint64_t stall_retries; /* timeouts of our own stall, waited out once more */
    uint64_t applies_ok, applies_failed;
    uint64_t reloads_ok, reloads_failed;
    uint64_t queued; /* requests waiting now (gauge) */
};
void haproxy_runtime_get_stats(const struct haproxy_runtime *rt, struct haproxy_runtime_stats *out);

/* ---- raw commands --------------------------------------------------- */
enum haproxy_socket {
    HAPROXY_SOCKET_STATS = 0,
    HAPROXY_SOCKET_MASTER,
};

/* answers[i] is the text HAProxy returned for cmds[i] (may be ""). status
 * is 0 when every answer was read (errors in answers are NOT checked: use
 * haproxy_runtime_check_answer), -ETIMEDOUT, -ECONNREFUSED/-ENOENT (no
 * HAProxy), -EPIPE/-EIO, -ECANCELED. err names what failed. */
typedef void (*haproxy_runtime_exec_cb)(struct haproxy_runtime *rt, int status,
                                        const char *const *answers, size_t n, const char *err,
                                        void *arg);

/* Queue cmds (n >= 1, copied) on one connection to `sock`. A command must
 * be one line: a CR, LF or NUL is -EINVAL here, except on the stats socket
 * for a command with a payload: a first line ending in " <<" and payload
 * lines after it, none empty and no trailing newline (the empty line that
 * ends the payload is added here); `set ssl cert F <<` uses it. On the
 * master socket only one command per exchange is allowed (n == 1). 0,
 * -EINVAL, -ENOTSUP or -ENOMEM (callback not called on error). */
int haproxy_runtime_exec(struct haproxy_runtime *rt, enum haproxy_socket sock,
                         const char *const *cmds, size_t n, haproxy_runtime_exec_cb cb, void *arg);

/* ---- liveness ------------------------------------------------------- */

/* What a ping asks: answered by the worker's own event loop, a few hundred
 * bytes, no lock on servers or proxies. */
#define HAPROXY_RUNTIME_PING_CMD "show info"

/* Whether the worker that accepts on the stats socket runs its event loop:
 * one HAPROXY_RUNTIME_PING_CMD exchange bounded by timeout_ms (> 0) instead
 * of the client's command timeout, in a lane of its own (it orders with
 * nothing, so it never waits behind an apply that a stuck worker holds to
 * the command timeout), but like every exchange never during a reload,
 * which runs alone, and given one more timeout after the watcher's own
 * stall. cb gets 0
 * (answered), -ETIMEDOUT (accepted, no answer in time), a connect or read
 * error, or -ECANCELED. 0, -EINVAL (timeout 0), -ECANCELED or -ENOMEM. */
int haproxy_runtime_ping(struct haproxy_runtime *rt, uint64_t timeout_ms,
                         haproxy_runtime_exec_cb cb, void *arg);

/* ---- show servers state --------------------------------------------- */

typedef void (*haproxy_runtime_state_cb)(struct haproxy_runtime *rt, int status,
                                         const struct slot_live *live, size_t n, const char *err,
                                         void *arg);
/* Dump and parse the servers of backend (a checked name). "No such
 * backend." is -ENOENT. 0, -EINVAL or -ENOMEM (callback not called). */
int haproxy_runtime_show_servers_state(struct haproxy_runtime *rt, const char *backend,
                                       haproxy_runtime_state_cb cb, void *arg);

/* ---- apply a slot assignment ---------------------------------------- */

struct haproxy_apply_result {
    int status;             /* 0, -EINVAL (bad value / HAProxy error), -ENOENT, -ETIMEDOUT, ... */
    size_t commands;        /* commands sent */
    size_t failed_commands; /* answered with an error */
    size_t agents_deferred; /* haproxy_runtime_apply_agents_later: agents left off */
    char message[HAPROXY_RUNTIME_MSG_MAX];
};
typedef void (*haproxy_runtime_apply_cb)(struct haproxy_runtime *rt,
                                         const struct haproxy_apply_result *res, void *arg);

/* How old the state left by this client's last exchange with a backend
 * may be for the next apply to diff against it rather than dump again. */
#define HAPROXY_RUNTIME_LIVE_MAX_AGE_MS 500

/*
 * Bring backend's slots to assignment a: dump `show servers state
 * backend`, compute slots_diff against it and what this client last applied
 * to the backend, send the commands in one exchange, check every answer.
 * The commands exchange ends with the backend's dump, which the next apply
 * uses instead of a dump exchange of its own when it is younger than
 * HAPROXY_RUNTIME_LIVE_MAX_AGE_MS, no other apply of the backend is queued
 * and nothing since could have moved its servers (a reload, a failed
 * apply, haproxy_runtime_drop_live): at a steady rate of changes, one
 * exchange per apply instead of two.
 * `a` is copied at call time. When every command succeeded, a becomes the
 * backend's "applied" assignment (haproxy_runtime_applied). When some
 * failed, the backend's applied assignment is dropped so the next apply
 * compares with the live state only. No guard here: the caller runs
 * slots_guard first. 0, -EINVAL (bad backend name) or -ENOMEM.
 */
int haproxy_runtime_apply(struct haproxy_runtime *rt, const char *backend,
                          const struct slot_assignment *a, haproxy_runtime_apply_cb cb, void *arg);
/*
 * haproxy_runtime_apply without the `enable agent` of the slots that
 * change hands (counted in res.agents_deferred): for placements whose
 * agent-checker state file is still being written. A slot being filled
 * then serves at once with its agent off, so an agent answering from the
 * old file (maint: the slot was free) cannot take it out; a later
 * haproxy_runtime_apply of the same placement sends only those `enable
 * agent` commands (slots_diff reads an agent that is off as a slot
 * changing hands). Freeing a slot needs no agent file (its agent is
 * switched off), so a plan that only frees slots is done in one apply.
 */
int haproxy_runtime_apply_agents_later(struct haproxy_runtime *rt, const char *backend,
                                       const struct slot_assignment *a, haproxy_runtime_apply_cb cb,
                                       void *arg);

/* What the last successful apply of backend installed, or NULL. Owned by
 * rt, valid until the next apply of that backend or haproxy_runtime_free. */
const struct slot_assignment *haproxy_runtime_applied(const struct haproxy_runtime *rt,
                                                      const char *backend);
/* Forget what was applied (e.g. the caller rendered a config with other
 * slot counts); next apply diffs against the live state only. */
void haproxy_runtime_forget(struct haproxy_runtime *rt, const char *backend);

/* ---- server-state file between reloads ------------------------------ */

/* status 0 (file written, changed = lines whose admin state was set) or
 * the failure, named in err; the file is then left as it was. */
typedef void (*haproxy_runtime_saved_cb)(struct haproxy_runtime *rt, int status, size_t changed,
                                         const char *err, void *arg);

/*
 * Keep the server-state file current between reloads, so that a HAProxy
 * that starts cold (crash, boot) loads what runs now: queue `show servers
 * state` behind everything queued (applies included), set each server's
 * forced maintenance / drain bits to what admin(arg, backend, server) says
 * when the answer is in (haproxy_state_set_admin: the desired state, even
 * before the agent check told HAProxy) and write the file atomically. The
 * same arg goes to admin and cb. 0, -ENOTSUP (no state file), -EINVAL or
 * -ENOMEM (cb not called).
 */
int haproxy_runtime_save_state(struct haproxy_runtime *rt, haproxy_admin_fn admin,
                               haproxy_runtime_saved_cb cb, void *arg);

/* ---- master CLI: show proc, reload ---------------------------------- */

typedef void (*haproxy_runtime_proc_cb)(struct haproxy_runtime *rt, int status,
                                        const struct haproxy_proc_list *procs, const char *err,
                                        void *arg);
int haproxy_runtime_show_proc(struct haproxy_runtime *rt, haproxy_runtime_proc_cb cb, void *arg);

struct haproxy_reload_result {
    int status; /* 0; -EIO (HAProxy counted a failed reload); -ETIMEDOUT; ... */
    int reloads_before, reloads_after;
    int failed_before, failed_after;
    int new_worker_pid; /* 0 if none seen */
    uint64_t elapsed_ms;
    bool state_saved;          /* server-state file written before the reload */
    size_t reapplied_commands; /* repairs sent after the reload (see below) */
    size_t reapply_failed;     /* backends whose repair failed (status stays 0) */
    char message[HAPROXY_RUNTIME_MSG_MAX];
};
typedef void (*haproxy_runtime_reload_cb)(struct haproxy_runtime *rt,
                                          const struct haproxy_reload_result *res, void *arg);

/*
 * Reload HAProxy with the configuration files it was started with (the
 * caller has already checked and installed them): `show proc` (baseline),
 * `show servers state` -> server-state file (atomic write; a failure to
 * dump or write aborts the reload: reloading without it would put every
 * runtime-set slot back to its config state), `reload` on the master CLI
 * (2.6 answers nothing), then `show proc` every HAPROXY_RUNTIME_PROC_POLL_MS
 * until the master's reload counter moved and a worker not in the baseline
 * is listed (old workers may linger while draining): success. A moved
 * "failed" counter is -EIO; no new worker within the reload timeout is
 * -ETIMEDOUT. Then, still before anything else queued runs, the slots
 * the state file could not restore are repaired: HAProxy 2.6 restores
 * port, weights, admin and agent state but not the address of a server
 * written with an IP literal (haproxy/haproxy#3265), so a slot rendered
 * free (0.0.0.0:0) but occupied at runtime comes back serving at 0.0.0.0.
 * Each such slot that the backend's applied assignment occupies gets its
 * address back (`set server addr`); every other slot is left as the new
 * config made it, and the caller's next apply brings the backend to its
 * current placement. A failed repair leaves status 0 (the reload worked),
 * counts in reapply_failed and drops that backend's applied assignment.
 * 0, -ENOTSUP (no master socket) or -ENOMEM.
 */
int haproxy_runtime_reload(struct haproxy_runtime *rt, haproxy_runtime_reload_cb cb, void *arg);

/*
 * Like haproxy_runtime_reload, for a config whose slots were rendered from
 * placements p[0..n) (copied). The server-state file then keeps a backend's
 * slot line only where the running slot already is what the config says
 * (same address and port for an occupied slot; in maintenance for a free
 * one); other lines are dropped so that HAProxy takes those slots from the
 * config. Without that, HAProxy 2.6 would combine the config's address with
 * the state file's port (the port is restored, the address is not) and
 * bring back a slot the config frees. After the new worker is confirmed,
 * each placed backend is applied (its placement becomes the applied one);
 * other backends get the repair described above.
 */
int haproxy_runtime_reload_placed(struct haproxy_runtime *rt, const struct haproxy_placement *p,
                                  size_t n, haproxy_runtime_reload_cb cb, void *arg);

#endif
